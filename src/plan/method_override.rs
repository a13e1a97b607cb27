//! `method-override`: an operation the matrix denies a role, sent as a POST that names the
//! real method in `X-HTTP-Method-Override`, `X-HTTP-Method`, `X-Method-Override` or
//! `?_method=`. A layer that honours the override after the role checks ran (or with
//! checks bound to the real method only) lets the denied call through.
//!
//! Bodies are made idempotent: fields the target object already has are sent with their
//! current values, so a flawed target records the call (audit fields, counters) without
//! the object changing under the rest of the scan (no identity's role really moves).

use super::{keep_current_values, request_for, Attack, Confirm, PlanInput, Probe};
use crate::matrix::Access;
use crate::request::Credential;
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
    for op in std::iter::once(op) {
        let method = input.api.operations[op].method;
        if !input.sendable(op) || method == Method::Post {
            continue;
        }
        let resource = input.id_param(op).map(|(_, r)| r);
        for actor in std::iter::once(for_actor) {
            if input.identities[actor].is_anonymous()
                || input.access(op, actor) != Some(Access::Deny)
            {
                continue;
            }
            let object = resource.and_then(|r| input.object_for_function(op, r, actor));
            if resource.is_some() && object.is_none() {
                continue;
            }
            let Some((mut plain, mut write)) = request_for(input, op, object.map(|(_, o)| o))
            else {
                continue;
            };
            if let (Some(body), Some((_, o))) = (plain.json.as_mut(), object) {
                keep_current_values(body, o);
            }
            if let Some(w) = write.as_mut() {
                if w.readback.is_none() {
                    // A write nobody can read back would only ever be "suspicious".
                    continue;
                }
                let marked = plain
                    .json
                    .as_ref()
                    .is_some_and(|b| b.to_string().contains(&w.marker));
                w.confirm = if w.confirm == Confirm::Gone {
                    Confirm::Gone
                } else if marked {
                    Confirm::Marker
                } else {
                    Confirm::AnyChange
                };
            }
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
                out.push(Probe {
                    id: 0,
                    attack: Attack::MethodOverride,
                    op,
                    actor,
                    credential: Credential::Normal,
                    object: object.map(|(i, _)| i),
                    baseline: input.baseline_for(op, object.map(|(_, o)| o)),
                    baseline_request: write.is_none().then(|| plain.clone()),
                    access: Access::Deny,
                    expect_granted: false,
                    request,
                    write: write.clone(),
                    malformed: None,
                    detail,
                });
            }
        }
    }
}
