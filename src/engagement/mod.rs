//! The engagement: target, identities with their credentials, scope and safety switches.
//! Raw YAML is read first (unknown keys are errors with file:line), then validated into
//! [`Engagement`], whose credentials are [`Secret`]s resolved from the environment.

mod auth;
mod detector;
pub(crate) mod lifecycle;
mod parse;
mod reach;
mod secret;
mod wfc;

pub use auth::{
    fill, fill_json, placeholders, Auth, Capture, ClientAuth, Csrf, CsrfSource, Grant, KeyLocation,
    LoginFlow, LoginStep, OAuth2Flow, SessionUse, StepBody,
};
pub use detector::{first_match, Answer, Detector, Means, Place};
pub use lifecycle::{Reprovision, ReprovisionRequest};
pub use reach::{
    check_concurrency, check_rate, ExtraHeader, Overrides, Tls, MAX_CONCURRENCY, USER_AGENT,
};
pub use secret::{Redactor, Secret, REDACTED};
pub use wfc::json_pointer_to_path;

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
    /// A command-line override that fails the check its engagement key passes.
    #[error("{flag}: {message}")]
    Flag { flag: &'static str, message: String },
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

/// Canary cap when the engagement names none: enough for a few resources × identities ×
/// one delete canary per (victim, attacker) pair, few enough to clean up in seconds.
pub const DEFAULT_MAX_CANARIES: usize = 64;

/// Default `max_body_bytes`: large enough for any page of JSON a scan reads whole.
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 << 20;

/// An object given in the engagement, for resources no operation lists.
#[derive(Debug, Clone)]
pub struct SeedObject {
    pub resource: String,
    pub id: serde_json::Value,
    /// Index into `Engagement::identities`.
    pub owner: usize,
}

/// Field names that commonly hold an object's owner in a listing.
pub const DEFAULT_OWNER_FIELDS: [&str; 8] = [
    "owner_id",
    "ownerId",
    "user_id",
    "userId",
    "created_by",
    "createdBy",
    "author_id",
    "owner",
];

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
    /// Origins besides the target's that requests may go to (`scope:`); nothing else is.
    pub scope: Vec<url::Url>,
    pub tls: Tls,
    /// `proxy:` or `--proxy`; without it, `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY` apply.
    pub proxy: Option<url::Url>,
    /// Extra headers on every request (`User-Agent` among them overrides rolegrid's).
    pub headers: Vec<ExtraHeader>,
    pub spec: PathBuf,
    pub matrix: PathBuf,
    pub allow_mutations: bool,
    /// The most canary objects one scan creates (writes and deletes go only to them).
    pub max_canaries: usize,
    /// For disposable targets: writes (never deletes) to resources the spec cannot create go
    /// to discovered objects instead of not being sent. Off by default.
    pub write_discovered_objects: bool,
    pub concurrency: usize,
    pub timeout: Duration,
    /// Answers are read up to this many bytes; the rest is cut and the exchange flagged
    /// (`truncated`), so a huge or endless body never fills memory.
    pub max_body_bytes: usize,
    pub p95_target_ms: u64,
    /// Requests per second across the whole run; `None` = as fast as concurrency allows.
    pub rate_limit: Option<f64>,
    pub missing_rows: MissingRows,
    /// resource → JSONPath that yields the IDs in that resource's collection responses.
    pub harvest: BTreeMap<String, String>,
    /// Owner fields to read in listings, and per identity (same order as `identities`)
    /// the values that mean "this identity owns it".
    pub owner_fields: Vec<String>,
    pub owner_values: Vec<Vec<String>>,
    pub seed_objects: Vec<SeedObject>,
    pub identities: Vec<Identity>,
    /// Detector rules, in file order (the first match wins).
    pub detectors: Vec<Detector>,
    /// Every value substituted for a `${VAR}`: all are treated as credentials.
    pub env_values: Vec<Secret>,
    /// `(operation as written, line)`: resolved against the spec when the scan starts.
    pub destructive_operations: Vec<(String, usize)>,
    /// `creates:`: (resource, operation as written, line), resolved against the spec when
    /// the inputs are loaded.
    pub creates: Vec<(String, String, usize)>,
    pub reprovision: Option<Reprovision>,
    /// `posture:`: which security-posture checks run.
    pub posture: crate::posture::PostureOptions,
}

#[derive(Debug, Clone)]
pub struct Identity {
    pub name: String,
    pub tenant: Option<String>,
    pub role: String,
    /// Facts about the identity from the engagement (`user_id`, `email`, `tenant_id`…):
    /// owner values, the subject a forged token claims, the tenant a header names.
    pub attributes: BTreeMap<String, serde_json::Value>,
    pub auth: Auth,
}

impl Identity {
    pub fn anonymous() -> Self {
        Identity {
            name: ANONYMOUS.to_string(),
            tenant: None,
            role: ANONYMOUS.to_string(),
            attributes: Default::default(),
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

impl Engagement {
    pub fn load(path: &Path, env: &EnvSource) -> Result<Engagement, EngagementError> {
        let text = std::fs::read_to_string(path).map_err(|source| EngagementError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path, env)
    }

    /// The identities a scan sends as: the engagement's, then `anonymous` (no credentials)
    /// last, the order every per-identity index of a run follows.
    pub fn identities_with_anonymous(&self) -> Vec<Identity> {
        let mut identities = self.identities.clone();
        identities.push(Identity::anonymous());
        identities
    }

    /// Reads and validates an engagement's text; errors point at `path`:line.
    pub fn parse(text: &str, path: &Path, env: &EnvSource) -> Result<Engagement, EngagementError> {
        parse::parse(text, path, env)
    }

    /// Every credential value this engagement holds, for the redactor.
    pub fn register_secrets(&self, redactor: &Redactor) {
        for identity in &self.identities {
            match &identity.auth {
                Auth::None => {}
                Auth::Header { value, .. }
                | Auth::Cookie { value, .. }
                | Auth::ApiKey { value, .. } => register_static(redactor, value),
                Auth::Headers(headers) => {
                    for (_, value) in headers {
                        register_static(redactor, value);
                    }
                }
                Auth::Basic { username, password } => {
                    redactor.register(password.expose());
                    // Its base64 form is what goes on the wire.
                    redactor.register(&format!("{username}:{}", password.expose()));
                }
                Auth::Login(flow) => {
                    for step in &flow.steps {
                        for (_, value) in &step.headers {
                            redactor.register(value.expose());
                        }
                    }
                }
                Auth::OAuth2(flow) => {
                    if let Some(secret) = &flow.client_secret {
                        redactor.register(secret.expose());
                        redactor.register(&format!("{}:{}", flow.client_id, secret.expose()));
                    }
                    if let Grant::Password { password, .. } = &flow.grant {
                        redactor.register(password.expose());
                    }
                }
            }
        }
        for value in &self.env_values {
            redactor.register(value.expose());
        }
        for header in self.headers.iter().filter(|h| h.secret) {
            redactor.register(header.value.expose());
        }
        if let Some((_, pem)) = &self.tls.client_identity {
            redactor.register(pem.expose());
        }
    }
}

/// A static credential value and, for `Bearer …`, the bare token (both can be echoed).
fn register_static(redactor: &Redactor, value: &Secret) {
    redactor.register(value.expose());
    if let Some(token) = value.expose().strip_prefix("Bearer ") {
        redactor.register(token);
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
        assert!(matches!(
            &flow.steps[0].body,
            Some(StepBody::Json(j)) if j.expose().contains("pw-abcdef")
        ));
        assert_eq!(
            flow.steps[0].captures,
            vec![("token".to_string(), Capture::Json("$.token".into()))]
        );
    }

    #[test]
    fn detectors_are_validated_with_file_and_line() {
        let env = EnvSource::default().with("TOK", "t").with("PW", "p");
        let good = format!(
            "{GOOD}detectors:\n  - name: html-denial\n    in: body\n    pattern: \"(?i)not permitted\"\n    means: denied\n  - name: gone\n    in: header:X-Session\n    pattern: expired\n    means: logged-out\n"
        );
        let e = Engagement::parse(&good, Path::new("e.yaml"), &env).expect("valid");
        assert_eq!(e.detectors.len(), 2);
        assert_eq!(e.detectors[1].place, Place::Header("X-Session".into()));
        let bad = good.replace("(?i)not permitted", "(unclosed");
        let msg = Engagement::parse(&bad, Path::new("e.yaml"), &env)
            .expect_err("bad regex")
            .to_string();
        assert!(msg.starts_with("e.yaml:18:"), "{msg}");
        assert!(
            msg.contains("html-denial") && msg.contains("not a valid regex"),
            "{msg}"
        );
        let bad = good.replace("means: denied", "means: maybe");
        let msg = Engagement::parse(&bad, Path::new("e.yaml"), &env)
            .expect_err("bad means")
            .to_string();
        assert!(msg.contains("e.yaml:") && msg.contains("maybe"), "{msg}");
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

    fn one(auth_yaml: &str, env: &EnvSource) -> Result<Auth, String> {
        let text = format!(
            "target: http://h\nspec: s.yaml\nmatrix: m.csv\nidentities:\n  - name: x\n    role: r\n    auth:\n{auth_yaml}scope: [\"https://idp.test\"]\n"
        );
        Engagement::parse(&text, Path::new("e.yaml"), env)
            .map(|mut e| e.identities.remove(0).auth)
            .map_err(|e| e.to_string())
    }

    /// A valid `login:` block: the auth, and its flow.
    fn login(auth_yaml: &str) -> (Auth, LoginFlow) {
        match one(auth_yaml, &env()) {
            Ok(Auth::Login(flow)) => (Auth::Login(flow.clone()), flow),
            other => panic!("a login expected, got {other:?}"),
        }
    }

    /// The `auth:` block is refused, and the message says `why`.
    fn refused(auth_yaml: &str, why: &str) {
        match one(auth_yaml, &env()) {
            Ok(auth) => panic!("accepted ({auth:?}), expected an error about {why}:\n{auth_yaml}"),
            Err(err) => assert!(err.contains(why), "{err}"),
        }
    }

    fn env() -> EnvSource {
        EnvSource::default()
            .with("PW", "pw-abcdef")
            .with("KEY", "key-123456")
            .with("SECRET", "client-secret-1")
    }

    #[test]
    fn basic_and_api_keys() {
        let basic = one(
            "      basic: {username: alice@acme.test, password: \"${PW}\"}\n",
            &env(),
        );
        assert!(
            matches!(&basic, Ok(Auth::Basic { username, password }) if username == "alice@acme.test" && password.expose() == "pw-abcdef"),
            "{basic:?}"
        );
        for (place, location) in [
            ("header", KeyLocation::Header),
            ("query", KeyLocation::Query),
            ("cookie", KeyLocation::Cookie),
        ] {
            let key = one(
                &format!("      api_key: {{in: {place}, name: X-Api-Key, value: \"${{KEY}}\"}}\n"),
                &env(),
            );
            assert!(
                matches!(&key, Ok(Auth::ApiKey { location: l, value, .. }) if *l == location && value.expose() == "key-123456"),
                "{key:?}"
            );
        }
        let bad = one("      api_key: {in: body, name: k, value: v}\n", &env())
            .expect_err("body is no key location");
        assert!(bad.starts_with("e.yaml:8:"), "{bad}");
        let two = one(
            "      basic: {username: u, password: p}\n      bearer: t\n",
            &env(),
        )
        .expect_err("two kinds");
        assert!(
            two.contains("exactly one auth kind") && two.contains("found 2"),
            "{two}"
        );
    }

    #[test]
    fn login_form_token_header_and_csrf() {
        let (auth, flow) = login(
            "      login:\n        path: /auth/session\n        form: {email: a@b, password: \"${PW}\"}\n        cookie: portal_session\n        csrf: {from: cookie, name: portal_csrf}\n",
        );
        assert!(matches!(&flow.steps[0].body, Some(StepBody::Form(f)) if f.len() == 2));
        assert!(matches!(&flow.session, SessionUse::Cookie { name } if name == "portal_session"));
        let csrf = flow.csrf.as_ref().expect("csrf");
        assert_eq!(csrf.send_header, "X-CSRF-Token");
        assert_eq!(
            csrf.source,
            CsrfSource::Answer(Capture::Cookie("portal_csrf".into()))
        );
        assert_eq!(auth.kind(), "login (cookie+csrf)");

        let (auth, flow) = login(
            "      login:\n        path: /auth/login\n        json: {p: \"${PW}\"}\n        token_header: X-Auth-Token\n",
        );
        assert_eq!(
            flow.steps[0].captures[0].1,
            Capture::Header("X-Auth-Token".into())
        );
        assert!(auth.carries_token());

        refused("      login:\n        path: /auth/login\n        token: $.token\n        csrf: {from: header, name: X-Csrf}\n", "cookie sessions");
        refused("      login:\n        path: /auth/login\n        json: {a: 1}\n        form: {a: 1}\n        token: $.t\n", "not both");
    }

    #[test]
    fn multi_step_login_checks_captures_in_order() {
        let good = "      login:\n        steps:\n          - path: /auth/login\n            json: {email: a@b, password: \"${PW}\"}\n            capture: {refresh: $.refresh_token, sid: {cookie: portal_session}}\n          - path: /auth/refresh\n            json: {refresh_token: \"{refresh}\"}\n            capture: {access: {json: $.token}, hdr: {header: X-Auth-Token}}\n        use: {header: Authorization, template: \"Bearer {access}\"}\n";
        let (auth, flow) = login(good);
        assert_eq!(flow.steps.len(), 2);
        assert_eq!(flow.steps[1].captures.len(), 2);
        assert_eq!(auth.kind(), "login (steps, token)");

        let early = good.replace("\"{refresh}\"", "\"{access}\"");
        let err = one(&early, &env()).expect_err("uses a later capture");
        assert!(
            err.contains("`{access}`") && err.contains("refresh"),
            "{err}"
        );
        assert!(err.starts_with("e.yaml:14:"), "{err}");

        let no_use = good.replace(
            "        use: {header: Authorization, template: \"Bearer {access}\"}\n",
            "",
        );
        assert!(one(&no_use, &env())
            .expect_err("no use")
            .contains("needs `use`"));
        let mixed = good.replace("        steps:\n", "        token: $.t\n        steps:\n");
        assert!(one(&mixed, &env())
            .expect_err("mixed")
            .contains("belongs inside a step"));
        let bad_capture = good.replace("{cookie: portal_session}", "{body: x}");
        assert!(one(&bad_capture, &env())
            .expect_err("bad capture")
            .contains("capture `sid`"));
    }

    #[test]
    fn oauth2_grants() {
        let cc = one(
            "      oauth2: {token_url: /oauth/token, grant: client_credentials, client_id: svc, client_secret: \"${SECRET}\", scope: read}\n",
            &env(),
        )
        .expect("valid");
        assert!(
            matches!(&cc, Auth::OAuth2(f) if matches!(f.grant, Grant::ClientCredentials) && f.client_auth == ClientAuth::Basic)
        );
        assert_eq!(cc.kind(), "oauth2 (client_credentials)");
        let pw = one(
            "      oauth2: {token_url: \"https://idp.test/token\", grant: password, client_id: web, username: a@b, password: \"${PW}\", client_auth: body}\n",
            &env(),
        )
        .expect("valid");
        assert!(matches!(&pw, Auth::OAuth2(f) if matches!(f.grant, Grant::Password { .. })));
        refused(
            "      oauth2: {token_url: /t, grant: password, client_id: web}\n",
            "username",
        );
        refused(
            "      oauth2: {token_url: /t, grant: client_credentials, client_id: svc}\n",
            "client_secret",
        );
        let err = one(
            "      oauth2: {token_url: /t, grant: implicit, client_id: svc}\n",
            &env(),
        )
        .expect_err("implicit");
        assert!(err.starts_with("e.yaml:8:"), "{err}");
    }

    #[test]
    fn every_kind_registers_its_secrets() {
        let redactor = Redactor::new();
        let text = "target: http://h\nspec: s.yaml\nmatrix: m.csv\nidentities:\n  - name: a\n    role: r\n    auth:\n      basic: {username: user1, password: literal-pass}\n  - name: b\n    role: r\n    auth:\n      api_key: {in: query, name: k, value: literal-key}\n  - name: c\n    role: r\n    auth:\n      oauth2: {token_url: /t, grant: client_credentials, client_id: svc, client_secret: literal-secret}\n";
        let e = Engagement::parse(text, Path::new("e.yaml"), &EnvSource::default()).expect("valid");
        e.register_secrets(&redactor);
        let basic = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            "user1:literal-pass",
        );
        let out = redactor.scrub(&format!("literal-pass literal-key literal-secret {basic}"));
        assert_eq!(out.matches(REDACTED).count(), 4, "{out}");
    }
}
