//! `verb-swap`: a write the matrix denies a role, sent with another write method the spec
//! does not declare for that path (a framework that routes `PATCH` to the `PUT` handler,
//! with the role check bound to the declared route only).
//!
//! Only writes are swapped, and only to POST, PUT and PATCH: a swapped write is judged by
//! the owner's read-back, as any write; a swapped read has no legitimate answer to compare
//! with (the spec declares none), so it could only ever be "suspicious". DELETE is never
//! sent, and a declared DELETE is not swapped either: another verb on it would not delete,
//! and nothing else it might do can be confirmed by the read-back.
//! A 404 or 405 is a denial. Bodies are kept idempotent as for `method-override`.

use super::{Attack, PlanInput, Probe};
use crate::spec::Method;

/// The methods a denied write is retried with, when the spec does not declare them.
const SWAPS: [Method; 3] = [Method::Post, Method::Put, Method::Patch];

pub(super) fn plan(input: &PlanInput<'_>, op: usize, actor: usize, out: &mut Vec<Probe>) {
    let declared = input.api.operations[op].method;
    if !input.allow_mutations || declared.is_safe() || declared == Method::Delete {
        return;
    }
    let Some((object, plain, write)) = super::denied_call(input, op, actor) else {
        return;
    };
    let path = &input.api.operations[op].path;
    for method in SWAPS {
        let in_spec = input
            .api
            .operations
            .iter()
            .any(|o| &o.path == path && o.method == method);
        if in_spec {
            continue;
        }
        let mut request = plain.clone();
        request.method = method;
        let probe = Probe::new(Attack::VerbSwap, op, actor, request)
            .write(write.clone())
            .detail(format!("{method} instead of the declared {declared}"));
        out.push(input.aim(probe, object));
    }
}
