//! What discovery learns about the identities themselves, with no engagement hints: the
//! name each logs in with, and what the API's own self-read (`GET /me`, `GET /profile`,
//! `GET /api/v2/users/current`) says about it (`user_id`, `username`, `team_id`, `role`).
//! These become attributes (owner values, the tenant a field names, body values).

use crate::engagement::{Auth, Identity};
use crate::spec::{Api, Method};
use serde_json::Value;
use std::collections::BTreeMap;

/// Last path segments that read the caller's own account.
const SELF_WORDS: [&str; 12] = [
    "me",
    "self",
    "profile",
    "myprofile",
    "account",
    "myaccount",
    "whoami",
    "current",
    "currentuser",
    "userinfo",
    "user",
    "session",
];

/// GET operations without parameters to fill whose path ends in a self word.
pub fn self_read_operations(api: &Api) -> Vec<usize> {
    api.operations
        .iter()
        .enumerate()
        .filter(|(_, op)| {
            op.method == Method::Get
                && op.path_params().next().is_none()
                && !op.parameters.iter().any(|p| p.required)
        })
        .filter(|(_, op)| is_self_path(&op.path))
        .map(|(i, _)| i)
        .collect()
}

/// Whether a path's last segment is a self word (`/me`, `/api/v2/profile`).
pub fn is_self_path(path: &str) -> bool {
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .map(|s| {
            s.chars()
                .filter(char::is_ascii_alphanumeric)
                .collect::<String>()
                .to_ascii_lowercase()
        })
        .is_some_and(|s| SELF_WORDS.contains(&s.as_str()))
}

/// The scalar facts of a self-read answer: its top-level strings and numbers, and those of
/// a single wrapped object (`{"user": {...}}`, `{"data": {...}}`).
pub fn facts_of(body: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let Some(top) = body.as_object() else {
        return out;
    };
    let scalars = |map: &serde_json::Map<String, Value>, out: &mut BTreeMap<String, Value>| {
        for (k, v) in map {
            if (v.is_string() || v.is_number()) && !out.contains_key(k) {
                out.insert(k.clone(), v.clone());
            }
        }
    };
    scalars(top, &mut out);
    let objects: Vec<&serde_json::Map<String, Value>> =
        top.values().filter_map(Value::as_object).collect();
    if let [only] = objects.as_slice() {
        scalars(only, &mut out);
        // JSON:API: `{"data": {"id": …, "attributes": {"org": …}}}`.
        if let Some(attributes) = only.get("attributes").and_then(Value::as_object) {
            scalars(attributes, &mut out);
        }
    }
    out
}

/// The name an identity logs in with: a Basic username, or the `username`, `email`,
/// `login` or `user` field of its login request. Not a secret, and often what the target
/// writes in owner fields.
pub fn login_name(identity: &Identity) -> Option<String> {
    const NAME_FIELDS: [&str; 6] = ["username", "user_name", "email", "login", "user", "name"];
    match &identity.auth {
        Auth::Basic { username, .. } => Some(username.clone()),
        Auth::Login(flow) => flow.steps.iter().find_map(|step| match &step.body {
            Some(crate::engagement::StepBody::Json(json)) => {
                let value: Value = serde_json::from_str(json.expose()).ok()?;
                NAME_FIELDS
                    .iter()
                    .find_map(|k| value.get(*k).and_then(Value::as_str).map(str::to_string))
            }
            Some(crate::engagement::StepBody::Form(fields)) => NAME_FIELDS.iter().find_map(|k| {
                fields
                    .iter()
                    .find(|(name, _)| name == k)
                    .map(|(_, v)| v.expose().to_string())
            }),
            None => None,
        }),
        _ => None,
    }
}

/// Whether a fact names the identity (and so may appear in owner fields of its objects):
/// its ID (MongoDB's `_id` too), name, email or login, not its role or its tenant.
pub fn is_identifying(field: &str) -> bool {
    let lower = field.to_ascii_lowercase();
    matches!(
        lower.as_str(),
        "id" | "_id" | "uuid" | "username" | "user_name" | "login" | "email" | "name" | "sub"
    ) || ((lower.ends_with("_id") || lower.ends_with("id"))
        && (lower.starts_with("user")
            || lower.starts_with("account")
            || lower.starts_with("member")))
}

/// Fields that name a tenant-like group an object belongs to.
pub const TENANT_FIELDS: [&str; 12] = [
    "tenant_id",
    "tenantId",
    "tenant",
    "org_id",
    "organization_id",
    "orgId",
    "team_id",
    "teamId",
    "team",
    "workspace_id",
    "workspaceId",
    "company_id",
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn facts_from_a_wrapped_profile() {
        let body = json!({"user": {"user_id": 5, "username": "ann", "team_id": 2}, "ok": true});
        let facts = facts_of(&body);
        assert_eq!(facts.get("user_id"), Some(&json!(5)));
        assert_eq!(facts.get("team_id"), Some(&json!(2)));
        assert!(is_identifying("user_id"));
        assert!(is_identifying("username"));
        assert!(!is_identifying("team_id"));
        assert!(!is_identifying("role"));
    }
}
