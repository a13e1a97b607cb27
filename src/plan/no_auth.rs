//! `no-auth`: the request sent with no credential at all, on every operation the matrix
//! denies to anonymous callers.

use super::{request_for, Attack, PlanInput, Probe};
use crate::matrix::Access;
use crate::request::Credential;

pub(super) fn plan(input: &PlanInput<'_>, op: usize, actor: usize, out: &mut Vec<Probe>) {
    if !input.identities[actor].is_anonymous() {
        return;
    }
    let anonymous = actor;
    {
        if !input.sendable(op) || input.access(op, anonymous) != Some(Access::Deny) {
            return;
        }
        let object = input
            .id_param(op)
            .map(|(_, r)| input.objects_for(op, anonymous, r).next());
        let object = match object {
            Some(None) => return,
            Some(Some(found)) => Some(found),
            None => None,
        };
        let Some((request, write)) = request_for(input, op, object.map(|(_, o)| o)) else {
            return;
        };
        out.push(Probe {
            id: 0,
            attack: Attack::NoAuth,
            op,
            actor: anonymous,
            credential: Credential::Omitted,
            object: object.map(|(i, _)| i),
            baseline: input.baseline_for(op, object.map(|(_, o)| o)),
            baseline_request: None,
            access: Access::Deny,
            expect_granted: false,
            request,
            write,
            malformed: None,
            detail: "no credentials".into(),
        });
    }
}
