//! The engagement: target, identities with their credentials, scope and safety switches.
//! Raw YAML is read first (unknown keys are errors with file:line), then validated into
//! [`Engagement`], whose credentials are [`Secret`]s resolved from the environment.

mod secret;

pub use secret::{Redactor, Secret, REDACTED};

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The role name of the identity without credentials; always present.
pub const ANONYMOUS: &str = "anonymous";

#[derive(Debug, thiserror::Error)]
pub enum EngagementError {
    #[error("cannot read engagement file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}\n  hint: see the engagement format in README.md")]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}:{line}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// Where `${VAR}` references are looked up: explicit values first (the demo passes its
/// generated passwords this way), then the process environment.
#[derive(Clone, Default)]
pub struct EnvSource {
    overrides: BTreeMap<String, Secret>,
    process_env: bool,
}

impl EnvSource {
    pub fn process() -> Self {
        EnvSource {
            overrides: BTreeMap::new(),
            process_env: true,
        }
    }

    pub fn with(mut self, name: &str, value: &str) -> Self {
        self.overrides.insert(name.to_string(), Secret::new(value));
        self
    }

    fn get(&self, name: &str) -> Option<Secret> {
        if let Some(v) = self.overrides.get(name) {
            return Some(v.clone());
        }
        if self.process_env {
            return std::env::var(name).ok().map(Secret::new);
        }
        None
    }
}

// ---- raw file shape -------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEngagement {
    target: String,
    spec: PathBuf,
    matrix: PathBuf,
    #[serde(default)]
    allow_mutations: bool,
    #[serde(default)]
    concurrency: Option<usize>,
    #[serde(default)]
    timeout_ms: Option<u64>,
    #[serde(default)]
    p95_target_ms: Option<u64>,
    #[serde(default)]
    rate_limit: Option<f64>,
    #[serde(default)]
    missing_rows: Option<MissingRows>,
    #[serde(default)]
    harvest: BTreeMap<String, String>,
    identities: Vec<RawIdentity>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdentity {
    name: String,
    #[serde(default)]
    tenant: Option<String>,
    role: String,
    #[serde(default)]
    auth: Option<RawAuth>,
}

/// Exactly one of the fields is set (checked after parsing): YAML maps read more naturally
/// than the tagged enums serde_yaml_ng would require.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    #[serde(default)]
    bearer: Option<String>,
    #[serde(default)]
    header: Option<RawNamedValue>,
    #[serde(default)]
    cookie: Option<RawNamedValue>,
    #[serde(default)]
    login: Option<RawLogin>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNamedValue {
    name: String,
    value: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLogin {
    method: Option<String>,
    path: String,
    #[serde(default)]
    json: Option<serde_json::Value>,
    /// JSONPath to the token in the response body.
    #[serde(default)]
    token: Option<String>,
    /// Name of a cookie set by the response to use instead of a token.
    #[serde(default)]
    cookie: Option<String>,
    #[serde(default)]
    header: Option<String>,
    #[serde(default)]
    template: Option<String>,
}

/// What to do with an operation that has no row in the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MissingRows {
    /// An error naming the operation (the default: a silent gap is a blind spot).
    #[default]
    Error,
    /// The operation is reported as untested.
    Untested,
}

// ---- validated shape ------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct Engagement {
    pub source: PathBuf,
    pub target: url::Url,
    pub spec: PathBuf,
    pub matrix: PathBuf,
    pub allow_mutations: bool,
    pub concurrency: usize,
    pub timeout: Duration,
    pub p95_target_ms: u64,
    /// Requests per second across the whole run; `None` = as fast as concurrency allows.
    pub rate_limit: Option<f64>,
    pub missing_rows: MissingRows,
    /// resource → JSONPath that yields the IDs in that resource's collection responses.
    pub harvest: BTreeMap<String, String>,
    pub identities: Vec<Identity>,
    /// Every value substituted for a `${VAR}`: all are treated as credentials.
    pub env_values: Vec<Secret>,
}

#[derive(Debug, Clone)]
pub struct Identity {
    pub name: String,
    pub tenant: Option<String>,
    pub role: String,
    pub auth: Auth,
}

impl Identity {
    pub fn anonymous() -> Self {
        Identity {
            name: ANONYMOUS.to_string(),
            tenant: None,
            role: ANONYMOUS.to_string(),
            auth: Auth::None,
        }
    }

    pub fn is_anonymous(&self) -> bool {
        matches!(self.auth, Auth::None)
    }

    /// The shell variable name used for this identity's credential in curl reproductions.
    pub fn credential_placeholder(&self) -> String {
        let mut name = String::from("ROLEGRID_");
        for c in self.name.chars() {
            name.push(if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            });
        }
        name.push_str("_CREDENTIAL");
        name
    }
}

#[derive(Debug, Clone)]
pub enum Auth {
    None,
    /// A header with a fixed value (`Authorization: Bearer …`, `X-Api-Key: …`).
    Header {
        name: String,
        value: Secret,
    },
    Cookie {
        name: String,
        value: Secret,
    },
    Login(LoginFlow),
}

#[derive(Debug, Clone)]
pub struct LoginFlow {
    pub method: reqwest::Method,
    pub path: String,
    /// The JSON body with every `${VAR}` already substituted; it holds credentials.
    pub json: Option<Secret>,
    pub capture: LoginCapture,
}

#[derive(Debug, Clone)]
pub enum LoginCapture {
    /// Token from the body via JSONPath, sent as `header: template` (`{token}` replaced).
    Token {
        json_path: String,
        header: String,
        template: String,
    },
    /// The named cookie from Set-Cookie, sent back as a cookie.
    Cookie { name: String },
}

impl Engagement {
    pub fn load(path: &Path, env: &EnvSource) -> Result<Engagement, EngagementError> {
        let text = std::fs::read_to_string(path).map_err(|source| EngagementError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path, env)
    }

    pub fn parse(text: &str, path: &Path, env: &EnvSource) -> Result<Engagement, EngagementError> {
        let raw: RawEngagement = serde_yaml_ng::from_str(text).map_err(|e| {
            let (line, column) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((1, 1));
            EngagementError::Syntax {
                path: path.to_path_buf(),
                line,
                column,
                message: e.to_string(),
            }
        })?;
        let invalid = |needle: &str, message: String| EngagementError::Invalid {
            path: path.to_path_buf(),
            line: line_of(text, needle),
            message,
        };
        let base_dir = path.parent().unwrap_or(Path::new("."));

        let target = url::Url::parse(&raw.target).map_err(|e| {
            invalid(
                "target:",
                format!(
                    "target `{}` is not a URL ({e}); write e.g. http://127.0.0.1:8080",
                    raw.target
                ),
            )
        })?;
        if !matches!(target.scheme(), "http" | "https") {
            return Err(invalid(
                "target:",
                format!("target `{target}` must be http or https"),
            ));
        }
        let concurrency = raw.concurrency.unwrap_or(8);
        if concurrency == 0 || concurrency > 1024 {
            return Err(invalid(
                "concurrency:",
                "concurrency must be between 1 and 1024".into(),
            ));
        }
        if let Some(rate) = raw.rate_limit {
            if !(rate.is_finite() && rate > 0.0) {
                return Err(invalid(
                    "rate_limit:",
                    format!(
                        "rate_limit must be a positive number of requests per second, not {rate}"
                    ),
                ));
            }
        }
        for (resource, json_path) in &raw.harvest {
            validate_json_path(json_path).map_err(|e| {
                invalid(
                    json_path,
                    format!("harvest path for `{resource}` is not valid JSONPath: {e}"),
                )
            })?;
        }

        let env_values = std::cell::RefCell::new(Vec::new());
        let mut identities = Vec::new();
        for raw_id in raw.identities {
            let at = format!("name: {}", raw_id.name);
            if raw_id.name.trim().is_empty() {
                return Err(invalid(
                    "identities:",
                    "an identity has an empty name".into(),
                ));
            }
            if identities.iter().any(|i: &Identity| i.name == raw_id.name) {
                return Err(invalid(
                    &at,
                    format!("identity `{}` is defined twice", raw_id.name),
                ));
            }
            if raw_id.name == ANONYMOUS {
                return Err(invalid(
                    &at,
                    "`anonymous` is built in (no credentials); remove this identity".into(),
                ));
            }
            let Some(raw_auth) = raw_id.auth else {
                return Err(invalid(
                    &at,
                    format!(
                        "identity `{}` has no `auth`; give bearer, header, cookie or login",
                        raw_id.name
                    ),
                ));
            };
            let expand_here = |value: &str| {
                expand_env(value, env, &mut env_values.borrow_mut()).map_err(|var| {
                    invalid(
                        &format!("${{{var}}}"),
                        format!(
                            "environment variable `{var}` (credential of identity `{}`) is not set; export it before running",
                            raw_id.name
                        ),
                    )
                })
            };
            let kinds = usize::from(raw_auth.bearer.is_some())
                + usize::from(raw_auth.header.is_some())
                + usize::from(raw_auth.cookie.is_some())
                + usize::from(raw_auth.login.is_some());
            if kinds != 1 {
                return Err(invalid(
                    &at,
                    format!(
                        "identity `{}` needs exactly one auth kind (bearer, header, cookie or login), found {kinds}",
                        raw_id.name
                    ),
                ));
            }
            let auth = match raw_auth {
                RawAuth {
                    bearer: Some(value),
                    ..
                } => Auth::Header {
                    name: "Authorization".into(),
                    value: Secret::new(format!("Bearer {}", expand_here(&value)?.expose())),
                },
                RawAuth {
                    header: Some(RawNamedValue { name, value }),
                    ..
                } => Auth::Header {
                    name,
                    value: expand_here(&value)?,
                },
                RawAuth {
                    cookie: Some(RawNamedValue { name, value }),
                    ..
                } => Auth::Cookie {
                    name,
                    value: expand_here(&value)?,
                },
                RawAuth {
                    login: Some(login), ..
                } => {
                    let method_text = login.method.unwrap_or_else(|| "POST".into());
                    let method =
                        reqwest::Method::from_bytes(method_text.to_ascii_uppercase().as_bytes())
                            .map_err(|_| {
                                invalid(
                                    "login:",
                                    format!("login method `{method_text}` is not an HTTP method"),
                                )
                            })?;
                    let json = match login.json {
                        Some(body) => Some(expand_json(&body, &expand_here)?),
                        None => None,
                    };
                    let capture = match (login.token, login.cookie) {
                        (Some(json_path), None) => {
                            validate_json_path(&json_path).map_err(|e| {
                                invalid(&json_path, format!("login token path is not valid JSONPath: {e}"))
                            })?;
                            let template = login.template.unwrap_or_else(|| "Bearer {token}".into());
                            if !template.contains("{token}") {
                                return Err(invalid("template:", "login template must contain {token}".into()));
                            }
                            LoginCapture::Token {
                                json_path,
                                header: login.header.unwrap_or_else(|| "Authorization".into()),
                                template,
                            }
                        }
                        (None, Some(name)) => LoginCapture::Cookie { name },
                        _ => {
                            return Err(invalid(
                                "login:",
                                format!(
                                    "login of `{}` needs exactly one of `token` (a JSONPath) or `cookie` (a cookie name)",
                                    raw_id.name
                                ),
                            ))
                        }
                    };
                    if !login.path.starts_with('/') {
                        return Err(invalid(
                            "path:",
                            format!("login path `{}` must start with /", login.path),
                        ));
                    }
                    Auth::Login(LoginFlow {
                        method,
                        path: login.path,
                        json,
                        capture,
                    })
                }
                RawAuth { .. } => unreachable!("exactly one auth kind was checked above"),
            };
            identities.push(Identity {
                name: raw_id.name,
                tenant: raw_id.tenant,
                role: raw_id.role,
                auth,
            });
        }
        if identities.is_empty() {
            return Err(invalid(
                "identities:",
                "at least one identity is needed".into(),
            ));
        }

        Ok(Engagement {
            source: path.to_path_buf(),
            target,
            spec: base_dir.join(raw.spec),
            matrix: base_dir.join(raw.matrix),
            allow_mutations: raw.allow_mutations,
            concurrency,
            timeout: Duration::from_millis(raw.timeout_ms.unwrap_or(10_000).max(1)),
            p95_target_ms: raw.p95_target_ms.unwrap_or(500),
            rate_limit: raw.rate_limit,
            missing_rows: raw.missing_rows.unwrap_or_default(),
            harvest: raw.harvest,
            identities,
            env_values: env_values.into_inner(),
        })
    }

    /// Every credential value this engagement holds, for the redactor.
    pub fn register_secrets(&self, redactor: &Redactor) {
        for identity in &self.identities {
            match &identity.auth {
                Auth::None => {}
                Auth::Header { value, .. } | Auth::Cookie { value, .. } => {
                    redactor.register(value.expose());
                    if let Some(token) = value.expose().strip_prefix("Bearer ") {
                        redactor.register(token);
                    }
                }
                Auth::Login(_) => {}
            }
        }
        for value in &self.env_values {
            redactor.register(value.expose());
        }
    }
}

pub fn validate_json_path(path: &str) -> Result<(), String> {
    use jsonpath_rust::JsonPath;
    serde_json::Value::Null
        .query(path)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Replaces every `${VAR}` with its value from `env`; returns the missing variable's name.
fn expand_env(value: &str, env: &EnvSource, used: &mut Vec<Secret>) -> Result<Secret, String> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let var = &after[..end];
        let Some(v) = env.get(var) else {
            return Err(var.to_string());
        };
        out.push_str(v.expose());
        used.push(v);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(Secret::new(out))
}

fn expand_json<E>(
    value: &serde_json::Value,
    expand: &dyn Fn(&str) -> Result<Secret, E>,
) -> Result<Secret, E> {
    fn walk<E>(
        v: &serde_json::Value,
        expand: &dyn Fn(&str) -> Result<Secret, E>,
    ) -> Result<serde_json::Value, E> {
        Ok(match v {
            serde_json::Value::String(s) => {
                serde_json::Value::String(expand(s)?.expose().to_string())
            }
            serde_json::Value::Array(a) => serde_json::Value::Array(
                a.iter()
                    .map(|x| walk(x, expand))
                    .collect::<Result<_, _>>()?,
            ),
            serde_json::Value::Object(o) => {
                let mut m = serde_json::Map::new();
                for (k, x) in o {
                    m.insert(k.clone(), walk(x, expand)?);
                }
                serde_json::Value::Object(m)
            }
            other => other.clone(),
        })
    }
    Ok(Secret::new(walk(value, expand)?.to_string()))
}

/// 1-based line of the first occurrence of `needle` in `text` (1 when absent).
pub fn line_of(text: &str, needle: &str) -> usize {
    text.find(needle)
        .map(|at| text[..at].matches('\n').count() + 1)
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "target: http://127.0.0.1:9\nspec: s.yaml\nmatrix: m.csv\nidentities:\n  - name: alice\n    tenant: acme\n    role: client\n    auth:\n      bearer: \"${TOK}\"\n  - name: bob\n    role: client\n    auth:\n      login:\n        path: /auth/login\n        json: {email: bob@x, password: \"${PW}\"}\n        token: $.token\n";

    #[test]
    fn parses_a_full_engagement_and_keeps_secrets_redacted() {
        let env = EnvSource::default()
            .with("TOK", "tok-123456")
            .with("PW", "pw-abcdef");
        let e = Engagement::parse(GOOD, Path::new("dir/e.yaml"), &env).expect("valid");
        assert_eq!(e.identities.len(), 2);
        assert_eq!(e.spec, Path::new("dir/s.yaml"));
        let debug = format!("{e:?}");
        assert!(
            !debug.contains("tok-123456") && !debug.contains("pw-abcdef"),
            "{debug}"
        );
        let Auth::Login(flow) = &e.identities[1].auth else {
            panic!("login expected")
        };
        assert!(flow
            .json
            .as_ref()
            .map(|j| j.expose().contains("pw-abcdef"))
            .unwrap_or(false));
    }

    #[test]
    fn unknown_key_is_an_error_with_file_and_line() {
        let text = GOOD.replace(
            "    role: client\n    auth:\n      login",
            "    role: client\n    colour: red\n    auth:\n      login",
        );
        let env = EnvSource::default().with("TOK", "t").with("PW", "p");
        let err = Engagement::parse(&text, Path::new("e.yaml"), &env).expect_err("unknown key");
        let msg = err.to_string();
        assert!(msg.starts_with("e.yaml:12:"), "{msg}");
        assert!(msg.contains("colour"), "{msg}");
    }

    #[test]
    fn missing_env_var_names_the_variable_and_the_line() {
        let env = EnvSource::default().with("TOK", "t");
        let err = Engagement::parse(GOOD, Path::new("e.yaml"), &env).expect_err("PW missing");
        let msg = err.to_string();
        assert!(msg.starts_with("e.yaml:15:"), "{msg}");
        assert!(msg.contains("`PW`"), "{msg}");
    }
}
