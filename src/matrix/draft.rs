//! A starting matrix drawn from the spec alone, for the product owner to correct: public
//! operations allowed to everyone, admin-looking paths to the last role only, everything
//! else scoped from the narrowest role (`own`) to the widest (`allow`). An operation that
//! names no object and lists none (`GET /me`, `POST /auth/logout`, a create) has nothing
//! to scope: it is `allow` to every signed-in role.

use crate::spec::{Api, Security};

/// Path segments that mark an operation as administrative.
const ADMIN_WORDS: [&str; 8] = [
    "admin",
    "internal",
    "manage",
    "management",
    "staff",
    "ops",
    "system",
    "superuser",
];

/// The CSV text of a draft matrix for `roles` (first `anonymous` if present, then from
/// the narrowest to the widest role).
pub fn draft(api: &Api, roles: &[String]) -> String {
    let mut out = String::from("operation");
    for role in roles {
        out.push(',');
        out.push_str(role);
    }
    out.push('\n');
    let authenticated: Vec<&String> = roles
        .iter()
        .filter(|r| r.as_str() != crate::engagement::ANONYMOUS)
        .collect();
    for op in &api.operations {
        let is_admin = op
            .path
            .split('/')
            .any(|seg| ADMIN_WORDS.contains(&seg.to_ascii_lowercase().as_str()))
            || op
                .tags
                .iter()
                .any(|t| ADMIN_WORDS.contains(&t.to_ascii_lowercase().as_str()));
        let public = op.security == Security::Public;
        // No ID in the path, query or body, and either a write (a create, a logout) or a
        // self read (`/me`): `own`/`tenant` would scope nothing. Other reads without an ID
        // (collections, searches, exports, summaries) keep their scope: their answers are.
        let takes_no_object = op.path_params().next().is_none()
            && op.id_param().is_none()
            && op.body_ids.is_empty()
            && (!op.method.is_safe() || crate::discover::facts::is_self_path(&op.path));
        out.push_str(&csv_field(&op.key()));
        for role in roles {
            let cell = if public {
                "allow"
            } else if role == crate::engagement::ANONYMOUS {
                "deny"
            } else {
                let rank = authenticated.iter().position(|r| *r == role).unwrap_or(0);
                let widest = rank + 1 == authenticated.len();
                match (is_admin, widest, rank) {
                    (true, true, _) => "allow",
                    (true, false, _) => "deny",
                    (false, true, _) => "allow",
                    (false, false, _) if takes_no_object => "allow",
                    (false, false, 0) => "own",
                    (false, false, _) => "tenant",
                }
            };
            out.push(',');
            out.push_str(cell);
        }
        out.push('\n');
    }
    out
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn the_demo_draft_is_close_to_the_declared_matrix_and_parses() {
        let api = crate::spec::demo_api();
        let roles: Vec<String> = ["anonymous", "client", "staff", "admin"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let text = draft(&api, &roles);
        assert!(text.starts_with("operation,anonymous,client,staff,admin\n"));
        assert!(
            text.contains("POST /auth/login,allow,allow,allow,allow\n"),
            "{text}"
        );
        assert!(
            text.contains("GET /invoices/{invoiceId},deny,own,tenant,allow\n"),
            "{text}"
        );
        assert!(
            text.contains("GET /admin/users,deny,deny,deny,allow\n"),
            "{text}"
        );
        // Nothing to scope: no object named, none listed.
        for row in ["GET /me", "POST /auth/logout", "POST /tickets"] {
            assert!(
                text.contains(&format!("{row},deny,allow,allow,allow\n")),
                "{row}: {text}"
            );
        }
        // Reads without an ID keep their scopes: the list must hold only the caller's own.
        assert!(
            text.contains("GET /tickets,deny,own,tenant,allow\n"),
            "{text}"
        );
        assert!(
            text.contains("GET /search,deny,own,tenant,allow\n"),
            "{text}"
        );
        let policy =
            crate::matrix::Policy::parse(&text, Path::new("draft.csv"), &api, &roles, false);
        assert!(
            policy.is_ok(),
            "the draft must be a valid matrix: {:?}",
            policy.err()
        );
    }
}
