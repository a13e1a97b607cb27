//! `escalation`: a role calls an operation the matrix denies it (function-level access).

use super::{request_for, Attack, PlanInput, Probe};
use crate::matrix::Access;

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
            let probe = Probe::new(Attack::Escalation, op, actor, request)
                .write(write)
                .detail(format!(
                    "role `{}` calls an operation it is denied",
                    input.identities[actor].role
                ));
            out.push(input.aim(probe, object));
        }
    }
}
