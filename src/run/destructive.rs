//! Which planned probes may be sent: the engagement's `destructive_operations` resolved
//! against the spec, and the plan without the probes that would really run one.

use super::ScanError;
use crate::engagement::Engagement;
use crate::plan::{self, PlanInput, Probe};
use crate::spec::Api;
use std::collections::BTreeSet;

/// The engagement's `destructive_operations` as operation indexes; an entry that names
/// no operation of the spec is an error pointing at its line.
pub(super) fn destructive_ops(
    api: &Api,
    engagement: &Engagement,
) -> Result<BTreeSet<usize>, ScanError> {
    let mut out = BTreeSet::new();
    for (text, line) in &engagement.destructive_operations {
        let wanted = match text.trim().split_once(' ') {
            Some((method, path)) => format!("{} {}", method.to_ascii_uppercase(), path.trim()),
            None => text.trim().to_string(),
        };
        let found = api
            .operations
            .iter()
            .position(|o| o.key() == wanted || o.operation_id.as_deref() == Some(text.trim()));
        match found {
            Some(op) => {
                out.insert(op);
            }
            None => {
                return Err(ScanError::Setup(format!(
                    "{}:{line}: destructive operation `{text}` is not in the spec; write it as `METHOD /path` (as in the matrix) or its operationId",
                    engagement.source.display()
                )))
            }
        }
    }
    Ok(out)
}

/// The plan without the probes that would really run a destructive operation: those
/// the matrix allows (a legitimate password change ends the caller's own sessions), and
/// malformed or mass-assignment bodies sent by an allowed caller (a body the API
/// accepts runs the operation). Probes the API must refuse are kept: refusing them is
/// the point. They come last, after every other probe (a reset the API wrongly lets
/// through must not wipe what later probes read), and the scheduler sends each alone
/// ([`runs_alone`]), as it does writes.
pub(super) fn sendable<'a>(
    input: &'a PlanInput<'a>,
    destructive: &'a BTreeSet<usize>,
) -> impl Iterator<Item = Probe> + 'a {
    let others = plan::plan(input).filter(move |p| !destructive.contains(&p.op));
    // Planned twice rather than held: the plan stays a lazy stream (planning is cheap
    // next to any request).
    let last = plan::plan(input).filter(move |p| {
        if !destructive.contains(&p.op) {
            return false;
        }
        let runs_as_allowed = p.access != crate::matrix::Access::Deny
            && matches!(
                p.attack,
                plan::Attack::Malformed | plan::Attack::MassAssignment
            );
        !p.expect_granted && !runs_as_allowed
    });
    others.chain(last)
}

/// Sent with nothing else in flight: writes (bracketed by the owner's read-back) and any
/// probe of a destructive operation, even a read-only one (`GET /admin/reset`).
pub(super) fn runs_alone(probe: &Probe, destructive: &BTreeSet<usize>) -> bool {
    probe.write.is_some() || destructive.contains(&probe.op)
}
