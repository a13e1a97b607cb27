//! What the engagement says about identities that can lose their login mid-scan: the
//! operations that end sessions or wipe data (`destructive_operations`, sent only where
//! the matrix says the caller must be refused), and the `reprovision` request that gives
//! a lost identity its password back so it can log in again.

use super::{expand_env, EngagementError, EnvSource, Secret};
use serde::Deserialize;
use std::collections::BTreeMap;

/// `reprovision:` as written: one request, templated per identity with its `attributes`
/// (`{user_id}`) and its `password` (`{password}`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReprovision {
    /// The identity that sends it (an admin, a provisioning service); anonymous when absent.
    #[serde(default, rename = "as")]
    actor: Option<String>,
    #[serde(default)]
    method: Option<String>,
    path: String,
    #[serde(default)]
    json: Option<serde_json::Value>,
}

/// The request that re-provisions one identity, with every placeholder filled. Its body
/// usually holds the identity's password: it is a [`Secret`].
#[derive(Debug, Clone)]
pub struct ReprovisionRequest {
    pub method: reqwest::Method,
    pub path: String,
    pub body: Option<Secret>,
}

/// The validated `reprovision:` flow.
#[derive(Debug, Clone)]
pub struct Reprovision {
    /// Index into the engagement's identities; `None` = sent without credentials.
    pub actor: Option<usize>,
    /// Per identity (same order as the engagement's): its request, or why it has none.
    pub requests: Vec<Result<ReprovisionRequest, String>>,
}

/// One identity as `reprovision` sees it: its name, attributes and password variable.
pub(super) struct Subject<'a> {
    pub name: &'a str,
    pub attributes: &'a BTreeMap<String, serde_json::Value>,
    /// `password:` of the identity, as written (`${VAR}`).
    pub password: Option<&'a str>,
}

/// `template` with each `{name}` of `values` replaced (also used by posture's role change).
pub(crate) fn fill(template: &str, values: &[(String, String)]) -> String {
    let mut out = template.to_string();
    for (name, value) in values {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

/// [`fill`] on every string of a JSON value.
pub(crate) fn fill_json(
    value: &serde_json::Value,
    values: &[(String, String)],
) -> serde_json::Value {
    match value {
        serde_json::Value::String(s) => serde_json::Value::String(fill(s, values)),
        serde_json::Value::Array(a) => a.iter().map(|v| fill_json(v, values)).collect(),
        serde_json::Value::Object(o) => o
            .iter()
            .map(|(k, v)| (k.clone(), fill_json(v, values)))
            .collect(),
        other => other.clone(),
    }
}

/// A `{name}` placeholder left after filling, if any (JSON's own braces are skipped:
/// a placeholder's name is letters, digits and `_` only).
pub(crate) fn unfilled(text: &str) -> Option<&str> {
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let end = after.find('}')?;
        let name = &after[..end];
        if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Some(name);
        }
        rest = after;
    }
    None
}

impl RawReprovision {
    /// Checks the flow and builds each identity's request. `invalid(needle, message)`
    /// points an error at the engagement line holding `needle`.
    pub(super) fn validate(
        self,
        subjects: &[Subject<'_>],
        names: &[String],
        env: &EnvSource,
        env_values: &mut Vec<Secret>,
        invalid: &dyn Fn(&str, String) -> EngagementError,
    ) -> Result<Reprovision, EngagementError> {
        let actor = match &self.actor {
            None => None,
            Some(name) => Some(names.iter().position(|n| n == name).ok_or_else(|| {
                invalid(
                    "reprovision:",
                    format!(
                        "reprovision `as: {name}` names no identity; use one of: {}",
                        names.join(", ")
                    ),
                )
            })?),
        };
        let method_text = self.method.as_deref().unwrap_or("POST");
        let method = reqwest::Method::from_bytes(method_text.to_ascii_uppercase().as_bytes())
            .map_err(|_| {
                invalid(
                    "reprovision:",
                    format!("reprovision method `{method_text}` is not an HTTP method"),
                )
            })?;
        if !self.path.starts_with('/') {
            return Err(invalid(
                "reprovision:",
                format!(
                    "reprovision path `{}` must start with `/` (it is sent to the target)",
                    self.path
                ),
            ));
        }
        let mut requests = Vec::with_capacity(subjects.len());
        for subject in subjects {
            let mut values: Vec<(String, String)> = subject
                .attributes
                .iter()
                .filter(|(_, v)| v.is_string() || v.is_number())
                .map(|(k, v)| (k.clone(), crate::request::value_text(v)))
                .collect();
            if let Some(raw) = subject.password {
                let password = expand_env(raw, env, env_values).map_err(|var| {
                    invalid(
                        &format!("${{{var}}}"),
                        format!(
                            "environment variable `{var}` (password of identity `{}`) is not set; export it before running",
                            subject.name
                        ),
                    )
                })?;
                values.push(("password".into(), password.expose().to_string()));
            }
            let path = fill(&self.path, &values);
            let body = self
                .json
                .as_ref()
                .map(|j| fill_json(j, &values).to_string());
            let left = unfilled(&path)
                .or_else(|| body.as_deref().and_then(unfilled))
                .map(str::to_string);
            requests.push(match left {
                Some(name) => Err(format!(
                    "its reprovision request needs `{{{name}}}`, which identity `{}` does not define (add it to `attributes`, or `password:`)",
                    subject.name
                )),
                None => Ok(ReprovisionRequest {
                    method: method.clone(),
                    path,
                    body: body.map(Secret::new),
                }),
            });
        }
        Ok(Reprovision { actor, requests })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_attributes_and_reports_what_is_missing() {
        let raw = RawReprovision {
            actor: Some("root".into()),
            method: Some("put".into()),
            path: "/accounts/{user_id}/password".into(),
            json: Some(serde_json::json!({"new_password": "{password}"})),
        };
        let attrs: BTreeMap<String, serde_json::Value> =
            [("user_id".to_string(), serde_json::json!(2))].into();
        let subjects = [
            Subject {
                name: "bob",
                attributes: &attrs,
                password: Some("${PW}"),
            },
            Subject {
                name: "eve",
                attributes: &attrs,
                password: None,
            },
        ];
        let names = vec!["bob".to_string(), "eve".to_string(), "root".to_string()];
        let env = EnvSource::default().with("PW", "s3cret-pw");
        let mut values = Vec::new();
        let invalid = |_: &str, m: String| EngagementError::Invalid {
            path: "e.yaml".into(),
            line: 1,
            message: m,
        };
        let flow = raw
            .validate(&subjects, &names, &env, &mut values, &invalid)
            .expect("valid");
        assert_eq!(flow.actor, Some(2));
        let bob = flow.requests[0].as_ref().expect("bob");
        assert_eq!(bob.path, "/accounts/2/password");
        assert_eq!(bob.method, reqwest::Method::PUT);
        assert!(bob
            .body
            .as_ref()
            .is_some_and(|b| b.expose().contains("s3cret-pw")));
        let eve = flow.requests[1].as_ref().err().cloned().unwrap_or_default();
        assert!(eve.contains("{password}") && eve.contains("eve"), "{eve}");
        assert!(
            values.iter().any(|v| v.expose() == "s3cret-pw"),
            "the password is registered as a credential"
        );
    }
}
