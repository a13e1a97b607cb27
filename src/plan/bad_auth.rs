//! `bad-auth`: an identity's own request replayed with its credential broken (garbage,
//! `alg: none`, expired): a server that still answers with the identity's data does not
//! verify its tokens.

use super::{request_for, Attack, PlanInput, Probe};
use crate::matrix::Access;
use crate::request::{Credential, Forgery};

const FORGERIES: [Forgery; 3] = [Forgery::Garbage, Forgery::AlgNone, Forgery::Expired];

/// Called for every actor; only the operation's chosen actor plans anything.
pub(super) fn plan(input: &PlanInput<'_>, op: usize, for_actor: usize, out: &mut Vec<Probe>) {
    let anonymous = input.identities.iter().position(|i| i.is_anonymous());
    {
        if !input.sendable(op) || !input.api.operations[op].method.is_safe() {
            return;
        }
        if anonymous.is_some_and(|a| input.access(op, a) != Some(Access::Deny)) {
            return;
        }
        let resource = input.id_param(op).map(|(_, r)| r);
        // One actor per operation: the first token holder allowed to call it, on its own object.
        let chosen = (0..input.identities.len()).find_map(|actor| {
            let identity = &input.identities[actor];
            let access = input.access(op, actor)?;
            if access == Access::Deny || !identity.auth.carries_token() {
                return None;
            }
            match resource {
                None => Some((actor, access, None)),
                Some(r) => input
                    .objects_for(op, actor, r)
                    .find(|(_, o)| o.owner == actor)
                    .map(|(i, o)| (actor, access, Some((i, o)))),
            }
        });
        let Some((actor, access, object)) = chosen else {
            return;
        };
        if actor != for_actor {
            return;
        }
        let Some((request, _)) = request_for(input, op, object.map(|(_, o)| o)) else {
            return;
        };
        for forgery in FORGERIES {
            out.push(Probe {
                id: 0,
                attack: Attack::BadAuth,
                op,
                actor,
                credential: Credential::Forged(forgery),
                object: object.map(|(i, _)| i),
                baseline: Some(actor),
                baseline_request: None,
                access,
                expect_granted: false,
                request: request.clone(),
                write: None,
                malformed: None,
                detail: forgery.describe().to_string(),
            });
        }
    }
}
