//! `escalation`: a role calls an operation the matrix denies it (function-level access).

use super::{request_for, Attack, PlanInput, Probe};
use crate::matrix::Access;
use crate::request::Credential;

pub(super) fn plan(input: &PlanInput<'_>, op: usize, actor: usize, out: &mut Vec<Probe>) {
    {
        if !input.sendable(op) {
            return;
        }
        let resource = input.id_param(op).map(|(_, r)| r);
        {
            if input.identities[actor].is_anonymous()
                || input.access(op, actor) != Some(Access::Deny)
            {
                return;
            }
            // Aim at the actor's own object when it has one: the only question is the function.
            let object = resource.and_then(|r| input.object_for_function(op, r, actor));
            if resource.is_some() && object.is_none() {
                return;
            }
            let Some((request, write)) = request_for(input, op, object.map(|(_, o)| o)) else {
                return;
            };
            out.push(Probe {
                id: 0,
                attack: Attack::Escalation,
                op,
                actor,
                credential: Credential::Normal,
                object: object.map(|(i, _)| i),
                baseline: input.baseline_for(op, object.map(|(_, o)| o)),
                baseline_request: None,
                access: Access::Deny,
                expect_granted: false,
                request,
                write,
                malformed: None,
                detail: format!(
                    "role `{}` calls an operation it is denied",
                    input.identities[actor].role
                ),
            });
        }
    }
}
