//! Verdicts that depend on what happened to the run itself (pure, no I/O): a login lost
//! during the scan, data reset under it, a write that took over its owner's account. The
//! run loop gathers the facts (who is dead, what the owner's read-back and the positive
//! control answered); the judgement and its reason are decided here.

use super::{Judgement, Verdict};
use crate::exchange::Exchange;
use crate::plan::Probe;

/// The status as a reader says it: the code, or "no answer".
pub fn status_text(e: &Exchange) -> String {
    e.status
        .map(|s| s.to_string())
        .unwrap_or_else(|| "no answer".to_string())
}

/// A granted write after which the object's owner can no longer log in: the write
/// took over the owner's account (a password reset, a session wipe). The owner read
/// its object just before, so its login worked until this write. `dead` is why the
/// owner's login is lost, if it is.
pub fn owner_lost_by_write(
    probe: &Probe,
    owner: usize,
    owner_name: &str,
    dead: Option<String>,
    exchange: &Exchange,
    before: &Exchange,
    after: &Exchange,
) -> Option<Judgement> {
    if probe.expect_granted || owner == probe.actor || !exchange.is_success() {
        return None;
    }
    if !before.is_success() || after.is_success() {
        return None;
    }
    let dead = dead?;
    Some(Judgement::new(
        Verdict::Violation,
        format!(
            "write answered {}, and right after it the owner `{owner_name}` could no longer log in ({dead}): the write changed the owner's account",
            status_text(exchange),
        ),
    ))
}

/// After sessions were lost or data wiped, a refused write proves nothing when the
/// owner's own read-back before it failed too: the object may be gone.
pub fn refused_write_in_doubt(before: &Exchange) -> Option<Judgement> {
    if before.is_success() {
        return None;
    }
    Some(Judgement::new(
        Verdict::Inconclusive,
        format!(
            "refused, but the owner's own read-back answered {} too: the object may be gone (sessions were lost or data reset during the scan)",
            status_text(before)
        ),
    ))
}

/// A refusal re-checked against a positive control (the legitimate caller `control_name`
/// sent the same request again, fresh): if the control fails too, the reason the refusal
/// proves nothing; `None` when the control still works.
pub fn refusal_in_doubt(
    exchange: &Exchange,
    control_name: &str,
    control: &Exchange,
) -> Option<String> {
    if control.is_success() {
        return None;
    }
    Some(format!(
        "refused with {}, but the positive control by `{control_name}` now answers {} too: the object or the session is gone (sessions were lost or data reset during the scan)",
        status_text(exchange),
        status_text(control)
    ))
}

/// A result that depends on an identity which lost its login (`reason`): evidence of
/// a breach stands; anything else is doubt.
pub fn after_lost_login(judgement: Judgement, name: &str, reason: &str) -> Judgement {
    if matches!(
        judgement.verdict,
        Verdict::Violation | Verdict::ServerError | Verdict::Inconclusive
    ) {
        return judgement;
    }
    Judgement::new(
        Verdict::Inconclusive,
        format!(
            "identity `{name}` lost its login during the scan ({reason}); was {}: {}",
            judgement.verdict.as_str(),
            judgement.reason
        ),
    )
}
