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
        let probe = Probe::new(Attack::NoAuth, op, anonymous, request)
            .credential(Credential::Omitted)
            .write(write)
            .detail("no credentials");
        out.push(input.aim(probe, object));
    }
}
