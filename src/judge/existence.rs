//! The existence oracle: the caller's answer for another owner's existing object against
//! its answer for an ID that exists nowhere. Both must be denials; a different status
//! (403 vs 404) or a clearly different body says which IDs exist.

use super::{is_error_shaped, json_similarity, Judgement, Verdict};
use crate::engagement::{first_match, Detector, Means};
use crate::exchange::Exchange;
use std::collections::BTreeSet;

/// Bodies less alike than this (after the IDs are set aside) are clearly different.
const DIFFERENT: f64 = 0.5;

/// Whether the answer refuses: a non-2xx, a 2xx with an error-shaped body, or one the
/// engagement's `denied` rules recognise (a `granted` rule overrides the heuristics).
pub(super) fn is_denial(exchange: &Exchange, detectors: &[Detector]) -> bool {
    if let Some(rule) = first_match(
        detectors,
        &exchange.answer(),
        &[Means::Denied, Means::Granted],
    ) {
        return rule.means == Means::Denied;
    }
    !exchange.is_success() || exchange.json().as_ref().is_some_and(is_error_shaped)
}

/// `foreign` names the other owner's object (`foreign_id`), `missing` the made-up ID.
pub(super) fn judge(
    detectors: &[Detector],
    foreign: &Exchange,
    foreign_id: &str,
    missing: Option<&Exchange>,
    missing_id: &str,
) -> Judgement {
    let status = foreign.status.unwrap_or_default();
    if !is_denial(foreign, detectors) {
        // Served: whether that is a leak is id-swap's question, not this one.
        return Judgement::new(
            Verdict::Enforced,
            format!("answered {status} for the foreign object; id-swap judges served objects"),
        );
    }
    let Some(missing) = missing.filter(|m| m.status.is_some()) else {
        return Judgement::new(
            Verdict::Inconclusive,
            "the request for a made-up ID got no answer to compare with",
        );
    };
    let missing_status = missing.status.unwrap_or_default();
    if !is_denial(missing, detectors) {
        return Judgement::new(
            Verdict::Enforced,
            format!("a made-up ID was answered {missing_status}; nothing to compare"),
        );
    }
    if missing_status != status {
        return Judgement::new(
            Verdict::Violation,
            format!(
                "answered {status} for another owner's existing object but {missing_status} for an ID that does not exist: the difference tells which IDs exist"
            ),
        );
    }
    let score = body_similarity(&foreign.body, foreign_id, &missing.body, missing_id);
    if score < DIFFERENT {
        let mut j = Judgement::new(
            Verdict::Violation,
            format!(
                "answered {status} for both, but the body for another owner's existing object is only {:.0}% like the one for an ID that does not exist",
                score * 100.0
            ),
        );
        j.similarity = Some(score);
        return j;
    }
    Judgement::new(
        Verdict::Enforced,
        format!("answered {status} alike for an existing foreign object and a made-up ID"),
    )
}

/// Similarity of two denial bodies once each one's ID is replaced by a placeholder (an
/// error that repeats the ID asked for says nothing about existence).
fn body_similarity(a: &[u8], a_id: &str, b: &[u8], b_id: &str) -> f64 {
    let neutral = |body: &[u8], id: &str| {
        let text = String::from_utf8_lossy(body);
        if id.is_empty() {
            text.into_owned()
        } else {
            text.replace(id, "{id}")
        }
    };
    let (ta, tb) = (neutral(a, a_id), neutral(b, b_id));
    if ta == tb {
        return 1.0;
    }
    match (
        serde_json::from_str::<serde_json::Value>(&ta),
        serde_json::from_str::<serde_json::Value>(&tb),
    ) {
        (Ok(ja), Ok(jb)) => json_similarity(&ja, &jb),
        // Other text: Jaccard of the word sets, so a nonce in an HTML page does not count.
        _ => {
            let words = |t: &str| -> BTreeSet<String> {
                t.split(|c: char| !c.is_alphanumeric())
                    .filter(|w| !w.is_empty())
                    .map(str::to_lowercase)
                    .collect()
            };
            let (wa, wb) = (words(&ta), words(&tb));
            let union = wa.union(&wb).count();
            if union == 0 {
                1.0
            } else {
                wa.intersection(&wb).count() as f64 / union as f64
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Exchange {
        Exchange {
            status: Some(status),
            body: body.as_bytes().to_vec(),
            ..Exchange::default()
        }
    }

    #[test]
    fn a_different_denial_is_a_leak() {
        let forbidden = answer(403, r#"{"error":"not your ticket"}"#);
        let missing = answer(404, r#"{"error":"not found"}"#);
        let j = judge(&[], &forbidden, "7", Some(&missing), "9999");
        assert_eq!(j.verdict, Verdict::Violation);
        assert!(
            j.reason.contains("403") && j.reason.contains("404"),
            "{}",
            j.reason
        );
        // Same status, clearly different body.
        let soft = answer(404, r#"{"error":"ticket belongs to another tenant"}"#);
        let j = judge(&[], &soft, "7", Some(&missing), "9999");
        assert_eq!(j.verdict, Verdict::Violation);
    }

    #[test]
    fn equal_denials_and_served_objects_are_not_existence_leaks() {
        let missing = answer(404, r#"{"error":"not found"}"#);
        let same = answer(404, r#"{"error":"not found"}"#);
        assert_eq!(
            judge(&[], &same, "7", Some(&missing), "9999").verdict,
            Verdict::Enforced
        );
        // The error repeats the ID asked for: not a difference.
        let a = answer(404, r#"{"error":"ticket 7 not found"}"#);
        let b = answer(404, r#"{"error":"ticket 9999 not found"}"#);
        assert_eq!(
            judge(&[], &a, "7", Some(&b), "9999").verdict,
            Verdict::Enforced
        );
        // A soft 200 denial for both is alike too.
        let soft = answer(200, r#"{"ok":false,"error":"ticket not available"}"#);
        assert_eq!(
            judge(&[], &soft, "7", Some(&soft), "9999").verdict,
            Verdict::Enforced
        );
        // Served: id-swap's finding, not this one.
        let served = answer(200, r#"{"id":7,"subject":"s"}"#);
        assert_eq!(
            judge(&[], &served, "7", Some(&missing), "9999").verdict,
            Verdict::Enforced
        );
        assert_eq!(
            judge(&[], &same, "7", None, "9999").verdict,
            Verdict::Inconclusive
        );
    }
}
