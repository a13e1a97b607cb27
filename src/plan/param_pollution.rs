//! `param-pollution`: an ID query parameter sent twice, the caller's own ID and a victim's,
//! in both orders. A server that authorizes one copy and serves the other leaks the
//! victim's object; the baseline is the victim's owner asking for it plainly.

use super::{request_for, Attack, PlanInput, Probe};
use crate::spec::ParamLocation;
use std::collections::BTreeSet;

/// Plans the probes of one operation sent by one actor.
pub(super) fn plan(input: &PlanInput<'_>, op: usize, for_actor: usize, out: &mut Vec<Probe>) {
    for op in std::iter::once(op) {
        if !input.sendable(op) || !input.api.operations[op].method.is_safe() {
            continue;
        }
        let Some((param, resource)) = input.id_param(op) else {
            continue;
        };
        if param.location != ParamLocation::Query {
            continue;
        }
        for actor in std::iter::once(for_actor) {
            let Some(access) = input.limited_access(op, actor) else {
                continue;
            };
            let Some((_, own)) = input.own_object(op, actor, resource) else {
                continue;
            };
            // One victim object per other owner is enough to show the pattern.
            let mut owners = BTreeSet::new();
            for (index, victim) in input.objects_for(op, actor, resource) {
                if victim.owner == actor
                    || input.may_reach(op, actor, victim)
                    || !owners.insert(victim.owner)
                {
                    continue;
                }
                let Some((plain, _)) = request_for(input, op, Some(victim)) else {
                    continue;
                };
                let (mine, theirs) = (own.id_text(), victim.id_text());
                for (first, last, order) in [
                    (&mine, &theirs, "own ID first, victim's last"),
                    (&theirs, &mine, "victim's ID first, own last"),
                ] {
                    let mut request = plain.clone();
                    let at = request
                        .query
                        .iter()
                        .position(|(k, _)| *k == param.name)
                        .unwrap_or(request.query.len());
                    request.query.retain(|(k, _)| *k != param.name);
                    request.query.insert(
                        at.min(request.query.len()),
                        (param.name.clone(), last.clone()),
                    );
                    request.query.insert(
                        at.min(request.query.len()),
                        (param.name.clone(), first.clone()),
                    );
                    out.push(
                        Probe::new(Attack::ParamPollution, op, actor, request)
                            .object(index)
                            .baseline(input.baseline_for(op, Some(victim)))
                            .baseline_request(plain.clone())
                            .access(access)
                            .detail(format!("query parameter `{}` twice: {order}", param.name)),
                    );
                }
            }
        }
    }
}
