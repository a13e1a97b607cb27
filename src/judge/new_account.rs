//! The verdict on a sign-up once its new account has logged in: what its own self-read
//! says it is, and whether it reads what its expected role is denied. This outranks the
//! sign-up's answer, which may echo a field the server never stored, or say nothing.

use super::disruption::status_text;
use super::{Judgement, Verdict};
use crate::exchange::Exchange;
use serde_json::Value;

/// What the new account showed once logged in.
pub enum AccountProof<'a> {
    /// The login with the sign-up's credentials failed (email confirmation, approval).
    LoginFailed(&'a str),
    LoggedIn {
        /// The API's self-read as the new account.
        self_read: Option<&'a Exchange>,
        /// (operation, answer to the new account, answer to an identity of the expected
        /// role) for reads that role is denied.
        denied_reads: Vec<(&'a str, &'a Exchange, &'a Exchange)>,
        /// The role a new account is expected to have.
        role: &'a str,
    },
}

/// `answer_judgement` (from the sign-up's own answer) revised by what the new account
/// showed once logged in with the `sent` privileged fields.
pub fn judge_new_account(
    sent: &[(String, Value)],
    answer_judgement: Judgement,
    proof: AccountProof<'_>,
) -> Judgement {
    let (self_read, denied_reads, role) = match proof {
        AccountProof::LoginFailed(why) => {
            let mut j = answer_judgement;
            j.reason
                .push_str(&format!("; logging in as the new account failed ({why})"));
            return j;
        }
        AccountProof::LoggedIn {
            self_read,
            denied_reads,
            role,
        } => (self_read, denied_reads, role),
    };
    let shown = self_read
        .filter(|e| e.is_success())
        .and_then(Exchange::json)
        .and_then(|v| match v {
            Value::Object(o) => Some(o),
            _ => None,
        });
    let honoured: Vec<String> = sent
        .iter()
        .filter(|(k, v)| shown.as_ref().and_then(|o| o.get(k)) == Some(v))
        .map(|(k, v)| format!("`{k}` = {v}"))
        .collect();
    if let Some(j) = violation_naming(
        "the new account logged in and its own self-read shows privileged field(s) set",
        &honoured,
    ) {
        return j;
    }
    let gained: Vec<String> = denied_reads
        .iter()
        .filter(|(_, new, expected)| {
            new.is_success() && !expected.is_success() && expected.status.is_some()
        })
        .map(|(op, new, expected)| {
            format!(
                "{op} ({} for it, {} for role `{role}`)",
                status_text(new),
                status_text(expected)
            )
        })
        .collect();
    if let Some(j) = violation_naming(
        &format!("the new account logged in and reads what role `{role}` is denied"),
        &gained,
    ) {
        return j;
    }
    // Logged in and shows no privilege: the self-read outranks an echoing answer.
    let refused = denied_reads
        .iter()
        .filter(|(_, new, _)| !new.is_success())
        .count();
    match (&shown, answer_judgement.verdict) {
        (Some(_), _) => Judgement::new(
            Verdict::Enforced,
            format!(
                "the new account logged in; its self-read shows none of the {} privileged field(s) sent, and it was refused {refused} read(s) its role is denied",
                sent.len()
            ),
        ),
        (None, Verdict::Violation) => answer_judgement,
        (None, _) if refused > 0 => Judgement::new(
            Verdict::Enforced,
            format!(
                "the new account logged in and was refused {refused} read(s) role `{role}` is denied"
            ),
        ),
        (None, _) => answer_judgement,
    }
}

/// A self-update's verdict revised by the reads its caller's role is denied, sent by the
/// caller before and after: one refused before and answered 2xx after is a privilege
/// the update gave (the self-read may not show the field at all).
pub fn judge_gained_privilege(
    judgement: Judgement,
    reads: &[(&str, &Exchange, &Exchange)],
    role: &str,
) -> Judgement {
    if judgement.verdict == Verdict::Violation {
        return judgement;
    }
    let opened: Vec<String> = reads
        .iter()
        .filter(|(_, before, after)| {
            before.status.is_some() && !before.is_success() && after.is_success()
        })
        .map(|(op, before, after)| {
            format!(
                "{op} ({} before, {} after)",
                status_text(before),
                status_text(after)
            )
        })
        .collect();
    violation_naming(
        &format!("after the update the caller reads what role `{role}` is denied"),
        &opened,
    )
    .unwrap_or(judgement)
}

/// A violation that names each piece of `evidence` after `finding`; none without evidence.
fn violation_naming(finding: &str, evidence: &[String]) -> Option<Judgement> {
    (!evidence.is_empty()).then(|| {
        Judgement::new(
            Verdict::Violation,
            format!("{finding}: {}", evidence.join(", ")),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer(status: u16, body: Value) -> Exchange {
        Exchange {
            status: Some(status),
            body: body.to_string().into_bytes(),
            ..Exchange::default()
        }
    }

    fn sent() -> Vec<(String, Value)> {
        vec![("admin".into(), json!(true))]
    }

    fn said_nothing() -> Judgement {
        Judgement::new(
            Verdict::Enforced,
            "answered 201; the new account shows none",
        )
    }

    /// The verdict on a sign-up of `sent()` whose new account, as a `user`, showed
    /// `self_read` and answered the `denied_reads`.
    fn judged_after_login(
        answer_judgement: Judgement,
        self_read: Option<&Exchange>,
        denied_reads: Vec<(&str, &Exchange, &Exchange)>,
    ) -> Judgement {
        let proof = AccountProof::LoggedIn {
            self_read,
            denied_reads,
            role: "user",
        };
        judge_new_account(&sent(), answer_judgement, proof)
    }

    #[test]
    fn the_self_read_or_a_denied_read_proves_the_privilege() {
        let me = answer(200, json!({"username": "rg", "admin": true}));
        let j = judged_after_login(said_nothing(), Some(&me), vec![]);
        assert_eq!(j.verdict, Verdict::Violation, "{}", j.reason);

        let (new, old) = (answer(200, json!([])), answer(403, json!({})));
        let j = judged_after_login(
            said_nothing(),
            None,
            vec![("GET /users/v1/_debug", &new, &old)],
        );
        assert_eq!(j.verdict, Verdict::Violation, "{}", j.reason);
        assert!(j.reason.contains("GET /users/v1/_debug (200 for it, 403"));
    }

    #[test]
    fn an_echoing_answer_is_overruled_by_the_self_read_and_a_denied_read_open_to_all_proves_nothing(
    ) {
        let echoed = Judgement::new(Verdict::Violation, "answered 201 with `admin` = true");
        let me = answer(200, json!({"username": "rg", "admin": false}));
        let j = judged_after_login(echoed, Some(&me), vec![]);
        assert_eq!(j.verdict, Verdict::Enforced, "{}", j.reason);

        let (new, old) = (answer(200, json!([])), answer(200, json!([])));
        let j = judged_after_login(said_nothing(), None, vec![("GET /reports", &new, &old)]);
        assert_eq!(j.verdict, Verdict::Enforced, "{}", j.reason);
        let (before, after) = (answer(403, json!({})), answer(200, json!([])));
        let j = judge_gained_privilege(said_nothing(), &[("GET /admin", &before, &after)], "user");
        assert_eq!(j.verdict, Verdict::Violation, "{}", j.reason);
        let j = judge_gained_privilege(said_nothing(), &[("GET /admin", &before, &before)], "user");
        assert_eq!(j.verdict, Verdict::Enforced, "{}", j.reason);
        let j = judge_new_account(&sent(), said_nothing(), AccountProof::LoginFailed("401"));
        assert!(j
            .reason
            .contains("logging in as the new account failed (401)"));
    }
}
