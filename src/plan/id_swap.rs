//! `id-swap`: an identity asks for another identity's object by putting its ID where its
//! own would go (path or query), on operations the policy scopes to `own` or `tenant`.

use super::{request_for, Attack, PlanInput, Probe};
use crate::matrix::Access;
use crate::request::Credential;
use std::collections::BTreeMap;

/// Objects per (operation, actor, victim): two show a pattern, more add only time.
const PER_VICTIM: usize = 2;

pub(super) fn plan(input: &PlanInput<'_>, op: usize, actor: usize, out: &mut Vec<Probe>) {
    {
        if !input.sendable(op) {
            return;
        }
        let Some((param, resource)) = input.id_param(op) else {
            return;
        };
        {
            if input.identities[actor].is_anonymous() {
                return;
            }
            let Some(access) = input.access(op, actor) else {
                return;
            };
            if !matches!(access, Access::Own | Access::Tenant) {
                // `deny` is escalation's case; `allow` has nothing to swap.
                return;
            }
            let mut per_victim: BTreeMap<usize, usize> = BTreeMap::new();
            for (index, object) in input.objects_for(op, actor, resource) {
                if input.may_reach(op, actor, object) || object.owner == actor {
                    continue;
                }
                let count = per_victim.entry(object.owner).or_default();
                if *count >= PER_VICTIM {
                    continue;
                }
                let Some((request, write)) = request_for(input, op, Some(object)) else {
                    continue;
                };
                *count += 1;
                out.push(Probe {
                    id: 0,
                    attack: Attack::IdSwap,
                    op,
                    actor,
                    credential: Credential::Normal,
                    object: Some(index),
                    baseline: input.baseline_for(op, Some(object)),
                    baseline_request: None,
                    access,
                    expect_granted: false,
                    request,
                    write,
                    malformed: None,
                    detail: format!(
                        "{} parameter `{}`",
                        location_name(param.location),
                        param.name
                    ),
                });
            }
        }
    }
}

fn location_name(location: crate::spec::ParamLocation) -> &'static str {
    match location {
        crate::spec::ParamLocation::Path => "path",
        crate::spec::ParamLocation::Query => "query",
        crate::spec::ParamLocation::Header => "header",
        crate::spec::ParamLocation::Cookie => "cookie",
    }
}
