//! `method-override`: an operation the matrix denies a role, sent as a POST that names the
//! real method in `X-HTTP-Method-Override`, `X-HTTP-Method`, `X-Method-Override` or
//! `?_method=`. A layer that honours the override after the role checks ran (or with
//! checks bound to the real method only) lets the denied call through.
//!
//! Bodies are made idempotent: fields the target object already has are sent with their
//! current values, so a flawed target records the call (audit fields, counters) without
//! the object changing under the rest of the scan (no identity's role really moves).

use super::{Attack, PlanInput, Probe};
use crate::spec::Method;

/// The ways of naming the real method: a header, or the `_method` query parameter.
const VARIANTS: [Variant; 4] = [
    Variant::Header("X-HTTP-Method-Override"),
    Variant::Header("X-HTTP-Method"),
    Variant::Header("X-Method-Override"),
    Variant::Query("_method"),
];

#[derive(Clone, Copy)]
enum Variant {
    Header(&'static str),
    Query(&'static str),
}

/// Plans the probes of one operation sent by one actor.
pub(super) fn plan(input: &PlanInput<'_>, op: usize, for_actor: usize, out: &mut Vec<Probe>) {
    // Every variant goes out as a POST, so only engagements that allow writes get them.
    if !input.allow_mutations {
        return;
    }
    let method = input.api.operations[op].method;
    if method == Method::Post {
        return;
    }
    let actor = for_actor;
    let Some((object, plain, write)) = super::denied_call(input, op, actor) else {
        return;
    };
    for variant in VARIANTS {
        let mut request = plain.clone();
        request.method = Method::Post;
        let detail = match variant {
            Variant::Header(name) => {
                request
                    .headers
                    .push((name.to_string(), method.as_str().to_string()));
                format!("POST with `{name}: {method}`")
            }
            Variant::Query(name) => {
                request
                    .query
                    .push((name.to_string(), method.as_str().to_string()));
                format!("POST with `?{name}={method}`")
            }
        };
        let probe = Probe::new(Attack::MethodOverride, op, actor, request)
            .baseline_request(write.is_none().then(|| plain.clone()))
            .write(write.clone())
            .detail(detail);
        out.push(input.aim(probe, object));
    }
}
