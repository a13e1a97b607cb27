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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Attack;
    use crate::request::RequestSpec;

    fn answered(status: u16) -> Exchange {
        Exchange {
            status: Some(status),
            ..Exchange::default()
        }
    }

    fn write_probe() -> Probe {
        let request = RequestSpec {
            method: crate::spec::Method::Patch,
            path: "/users/2".into(),
            query: vec![],
            headers: vec![],
            json: None,
        };
        Probe::new(Attack::IdSwap, 0, 0, request)
    }

    #[test]
    fn a_granted_write_that_ends_the_owners_login_is_a_violation() {
        let probe = write_probe();
        let dead = || Some("login answered 401".to_string());
        let j = owner_lost_by_write(
            &probe,
            1,
            "bob",
            dead(),
            &answered(200),
            &answered(200),
            &answered(401),
        )
        .expect("a violation");
        assert_eq!(j.verdict, Verdict::Violation);
        assert!(j.reason.contains("`bob`") && j.reason.contains("login answered 401"));
        // Not when the owner still logs in, the write was refused, the actor is the owner,
        // or the owner's read-back failed before the write too.
        let ok = answered(200);
        assert!(owner_lost_by_write(&probe, 1, "bob", None, &ok, &ok, &answered(401)).is_none());
        let refused = answered(403);
        let cases = [(1, &refused, &ok), (0, &ok, &ok), (1, &ok, &refused)];
        for (owner, exchange, before) in cases {
            assert!(owner_lost_by_write(
                &probe,
                owner,
                "bob",
                dead(),
                exchange,
                before,
                &answered(401)
            )
            .is_none());
        }
    }

    #[test]
    fn refusals_are_doubted_only_when_the_control_fails_too() {
        assert!(refused_write_in_doubt(&answered(200)).is_none());
        let doubt = refused_write_in_doubt(&answered(404)).expect("doubt");
        assert_eq!(doubt.verdict, Verdict::Inconclusive);
        assert!(doubt.reason.contains("404"));
        assert!(refusal_in_doubt(&answered(403), "alice", &answered(200)).is_none());
        let reason = refusal_in_doubt(&answered(403), "alice", &Exchange::default())
            .expect("the control failed");
        for part in ["`alice`", "no answer"] {
            assert!(reason.contains(part), "{reason}");
        }
    }

    #[test]
    fn a_lost_login_turns_only_non_evidence_into_doubt() {
        let enforced = Judgement::new(Verdict::Enforced, "refused with 403");
        let j = after_lost_login(enforced, "carol", "session expired");
        assert_eq!(j.verdict, Verdict::Inconclusive);
        assert!(
            j.reason.contains("`carol`") && j.reason.contains("was enforced: refused with 403")
        );
        for kept in [
            Verdict::Violation,
            Verdict::ServerError,
            Verdict::Inconclusive,
        ] {
            let j = after_lost_login(Judgement::new(kept, "x"), "carol", "gone");
            assert_eq!((j.verdict, j.reason.as_str()), (kept, "x"));
        }
    }
}
