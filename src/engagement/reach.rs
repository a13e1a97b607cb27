//! Where requests may go and how they get there: the scope guard (the origins of `target`
//! and `scope`), TLS (`ca_cert`, `client_cert`/`client_key`, `insecure_skip_verify`), the
//! proxy, extra `headers`, and the CLI overrides, which pass the same checks as the file.

use super::{Auth, Engagement, EngagementError, Secret};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The most concurrent requests a run may keep in flight (scan and load mode alike).
pub const MAX_CONCURRENCY: usize = 1024;

/// What every request carries as `User-Agent` unless the engagement's `headers` name one.
pub const USER_AGENT: &str = concat!("rolegrid/", env!("CARGO_PKG_VERSION"));

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    #[serde(default)]
    ca_cert: Option<PathBuf>,
    #[serde(default)]
    client_cert: Option<PathBuf>,
    #[serde(default)]
    client_key: Option<PathBuf>,
    #[serde(default)]
    insecure_skip_verify: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHeader {
    name: String,
    value: String,
    #[serde(default)]
    secret: bool,
}

/// How rolegrid speaks TLS to the target (and to a proxy): PEM read when the engagement
/// is loaded, so a bad file is an error with file:line before anything is sent.
#[derive(Debug, Clone, Default)]
pub struct Tls {
    /// Extra trusted roots (a private CA, or the intercepting proxy's CA), PEM.
    pub ca_cert: Option<(PathBuf, Vec<u8>)>,
    /// Client certificate and key for mutual TLS, concatenated PEM (as reqwest wants it).
    pub client_identity: Option<(PathBuf, Secret)>,
    /// Certificates are not checked; warned about on every run and in the report.
    pub insecure_skip_verify: bool,
}

/// An extra header sent on every request.
#[derive(Debug, Clone)]
pub struct ExtraHeader {
    pub name: String,
    pub value: Secret,
    /// The value is a credential: registered with the redactor, never printed.
    pub secret: bool,
}

/// Values from the command line that replace the engagement's (CI pipelines).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub target: Option<String>,
    pub proxy: Option<String>,
    pub concurrency: Option<usize>,
    pub rate_limit: Option<f64>,
    pub p95_target_ms: Option<u64>,
}

pub(super) fn check_target(text: &str) -> Result<url::Url, String> {
    let target = url::Url::parse(text).map_err(|e| {
        format!("target `{text}` is not a URL ({e}); write e.g. https://staging.example.com")
    })?;
    if !matches!(target.scheme(), "http" | "https") {
        return Err(format!("target `{target}` must be http or https"));
    }
    if target.host().is_none() {
        return Err(format!("target `{target}` names no host"));
    }
    Ok(target)
}

/// The one check of a concurrency, for the file's key, `--concurrency` and load options.
pub fn check_concurrency(n: usize) -> Result<(), String> {
    if n == 0 || n > MAX_CONCURRENCY {
        return Err(format!(
            "concurrency must be between 1 and {MAX_CONCURRENCY}, not {n}"
        ));
    }
    Ok(())
}

/// The one check of a requests-per-second ceiling (`rate_limit`, `--rate-limit`).
pub fn check_rate(rate: f64) -> Result<(), String> {
    if !(rate.is_finite() && rate > 0.0) {
        return Err(format!(
            "rate_limit must be a positive number of requests per second, not {rate}"
        ));
    }
    Ok(())
}

pub(super) fn check_proxy(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|e| {
        format!("proxy `{text}` is not a URL ({e}); write e.g. http://127.0.0.1:8080 (Burp, ZAP)")
    })?;
    if !matches!(url.scheme(), "http" | "https" | "socks5" | "socks5h") || url.host().is_none() {
        return Err(format!(
            "proxy `{text}` must be an http(s) URL with a host, e.g. http://127.0.0.1:8080"
        ));
    }
    Ok(url)
}

/// `https://api.example.com:8443` → its origin; a path, query or fragment is refused so
/// nobody believes scope narrows by path.
pub(super) fn check_origin(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|e| {
        format!("scope entry `{text}` is not an origin ({e}); write scheme://host[:port], e.g. https://auth.example.com")
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!(
            "scope entry `{text}` must be an http(s) origin, e.g. https://auth.example.com"
        ));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "scope entry `{text}` has a path; scope lists origins (scheme://host[:port]), not paths"
        ));
    }
    Ok(url)
}

pub(super) fn headers(raw: Vec<RawHeader>) -> Result<Vec<ExtraHeader>, (String, String)> {
    let mut out = Vec::new();
    for h in raw {
        let at = format!("name: {}", h.name);
        if reqwest::header::HeaderName::from_bytes(h.name.as_bytes()).is_err() {
            return Err((
                at,
                format!("header name `{}` is not a valid HTTP header name", h.name),
            ));
        }
        if reqwest::header::HeaderValue::from_str(&h.value).is_err() {
            return Err((
                at,
                format!("the value of header `{}` is not a valid HTTP header value (control characters?)", h.name),
            ));
        }
        let lower = h.name.to_ascii_lowercase();
        if matches!(lower.as_str(), "authorization" | "cookie" | "host") {
            return Err((
                at,
                format!(
                    "header `{}` cannot be sent on every request: credentials belong to an identity's `auth` (the no-auth probes must go without them), and Host follows the target",
                    h.name
                ),
            ));
        }
        out.push(ExtraHeader {
            name: h.name,
            value: Secret::new(h.value),
            secret: h.secret,
        });
    }
    Ok(out)
}

/// Reads `tls:` files relative to the engagement; errors name the key that is wrong.
pub(super) fn tls(raw: Option<RawTls>, base_dir: &Path) -> Result<Tls, (String, String)> {
    let Some(raw) = raw else {
        return Ok(Tls::default());
    };
    let read = |key: &str, file: &Path| {
        let path = base_dir.join(file);
        std::fs::read(&path)
            .map(|bytes| (path.clone(), bytes))
            .map_err(|e| {
                (
                    format!("{key}:"),
                    format!("tls.{key}: cannot read {} ({e})", path.display()),
                )
            })
    };
    let ca_cert = match &raw.ca_cert {
        Some(file) => {
            let (path, pem) = read("ca_cert", file)?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                (
                    "ca_cert:".to_string(),
                    format!(
                        "tls.ca_cert: {} is not PEM certificates ({e})",
                        path.display()
                    ),
                )
            })?;
            if certs.is_empty() {
                return Err((
                    "ca_cert:".into(),
                    format!(
                        "tls.ca_cert: {} holds no `-----BEGIN CERTIFICATE-----` block",
                        path.display()
                    ),
                ));
            }
            Some((path, pem))
        }
        None => None,
    };
    let client_identity = match (&raw.client_cert, &raw.client_key) {
        (None, None) => None,
        (Some(_), None) | (None, Some(_)) => {
            return Err((
                if raw.client_cert.is_some() {
                    "client_cert:"
                } else {
                    "client_key:"
                }
                .into(),
                "tls: mutual TLS needs both `client_cert` and `client_key` (PEM files)".into(),
            ))
        }
        (Some(cert), Some(key)) => {
            let (cert_path, mut pem) = read("client_cert", cert)?;
            let (key_path, key_pem) = read("client_key", key)?;
            pem.push(b'\n');
            pem.extend_from_slice(&key_pem);
            if let Err(e) = reqwest::Identity::from_pem(&pem) {
                return Err((
                    "client_cert:".into(),
                    format!(
                        "tls: {} and {} are not a PEM certificate and its private key ({e})",
                        cert_path.display(),
                        key_path.display()
                    ),
                ));
            }
            let text = String::from_utf8(pem).map_err(|_| {
                (
                    "client_key:".to_string(),
                    format!("tls.client_key: {} is not PEM text", key_path.display()),
                )
            })?;
            Some((cert_path, Secret::new(text)))
        }
    };
    Ok(Tls {
        ca_cert,
        client_identity,
        insecure_skip_verify: raw.insecure_skip_verify,
    })
}

impl Engagement {
    /// Whether `url` may be sent to: its origin is the target's or one listed in `scope`.
    pub fn in_scope(&self, url: &url::Url) -> bool {
        let origin = url.origin();
        origin == self.target.origin() || self.scope.iter().any(|s| s.origin() == origin)
    }

    /// The origins requests may go to, for messages: the target's first.
    pub fn scope_text(&self) -> String {
        let mut all = vec![self.target.origin().ascii_serialization()];
        all.extend(self.scope.iter().map(|s| s.origin().ascii_serialization()));
        all.join(", ")
    }

    /// Every URL the engagement names outside the target (OAuth2 token endpoints, login
    /// URLs) must be in scope: they receive credentials.
    pub(super) fn check_scope(&self) -> Result<(), (String, String)> {
        for identity in &self.identities {
            let urls: Vec<(&str, &str)> = match &identity.auth {
                Auth::OAuth2(flow) => vec![("token_url", flow.token_url.as_str())],
                Auth::Login(flow) => flow
                    .steps
                    .iter()
                    .map(|s| ("externalEndpointURL", s.path.as_str()))
                    .collect(),
                _ => Vec::new(),
            };
            for (key, text) in urls {
                if text.starts_with('/') {
                    continue;
                }
                let Ok(url) = url::Url::parse(text) else {
                    continue;
                };
                if !self.in_scope(&url) {
                    return Err((
                        format!("name: {}", identity.name),
                        format!(
                            "identity `{}`: {key} `{}` is outside the scope ({}); it would receive credentials, so add its origin `{}` to `scope:` if you mean it",
                            identity.name,
                            url.origin().ascii_serialization(),
                            self.scope_text(),
                            url.origin().ascii_serialization()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Applies command-line values through the same checks as the file's.
    pub fn apply_overrides(&mut self, overrides: Overrides) -> Result<(), EngagementError> {
        let flag = |flag: &'static str, message: String| EngagementError::Flag { flag, message };
        if let Some(text) = overrides.target {
            self.target = check_target(&text).map_err(|m| flag("--target", m))?;
        }
        if let Some(text) = overrides.proxy {
            self.proxy = Some(check_proxy(&text).map_err(|m| flag("--proxy", m))?);
        }
        if let Some(n) = overrides.concurrency {
            check_concurrency(n).map_err(|m| flag("--concurrency", m))?;
            self.concurrency = n;
        }
        if let Some(rate) = overrides.rate_limit {
            check_rate(rate).map_err(|m| flag("--rate-limit", m))?;
            self.rate_limit = Some(rate);
        }
        if let Some(ms) = overrides.p95_target_ms {
            if ms == 0 {
                return Err(flag("--p95-target-ms", "must be at least 1 ms".into()));
            }
            self.p95_target_ms = ms;
        }
        self.check_scope().map_err(|(_, m)| {
            flag(
                "--target",
                format!("{m} (with the target given on the command line)"),
            )
        })
    }

    /// Whether the target is this machine (loopback); anything else is named on stdout
    /// before the first request.
    pub fn target_is_local(&self) -> bool {
        match self.target.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        }
    }

    /// Warnings every run repeats (stderr and the report's warnings).
    pub fn standing_warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.tls.insecure_skip_verify {
            out.push(
                "tls.insecure_skip_verify is on: the target's certificate is not checked, so anyone on the path can read and change this scan's traffic, credentials included"
                    .to_string(),
            );
        }
        out
    }
}

/// Replaces `${VAR}` in every string of the raw engagement except credentials (identities'
/// `auth` and `password`, `reprovision`), which are expanded where they are read and
/// treated as secrets. Returns the missing variable's name.
pub(super) fn expand_plain(
    value: &mut serde_yaml_ng::Value,
    env: &super::EnvSource,
    depth: usize,
    skip_credentials: bool,
) -> Result<(), String> {
    use serde_yaml_ng::Value;
    match value {
        Value::String(s) if s.contains("${") => {
            let mut ignored = Vec::new();
            let expanded = super::expand_env(s, env, &mut ignored)?;
            *s = expanded.expose().to_string();
        }
        Value::Sequence(items) => {
            for item in items {
                expand_plain(item, env, depth + 1, skip_credentials)?;
            }
        }
        Value::Mapping(map) => {
            for (key, v) in map.iter_mut() {
                let key = key.as_str().unwrap_or_default();
                let credential = match depth {
                    0 => key == "reprovision",
                    // an identity's fields
                    2 => skip_credentials && matches!(key, "auth" | "password"),
                    _ => false,
                };
                if credential {
                    continue;
                }
                let skip_below = depth == 0 && key == "identities";
                expand_plain(
                    v,
                    env,
                    depth + 1,
                    skip_below || (skip_credentials && depth > 0),
                )?;
            }
        }
        Value::Tagged(tagged) => expand_plain(&mut tagged.value, env, depth, skip_credentials)?,
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{EnvSource, REDACTED};
    use super::*;

    const BASE: &str = "target: ${TARGET}\nspec: s.yaml\nmatrix: m.csv\nidentities:\n  - name: a\n    tenant: ${TENANT}\n    role: r\n    auth:\n      bearer: \"${TOK}\"\n";

    fn env() -> EnvSource {
        EnvSource::default()
            .with("TARGET", "https://staging.example.com")
            .with("TENANT", "acme")
            .with("TOK", "tok-123456")
            .with("GW", "gateway-key-9876")
    }

    fn parse(text: &str) -> Result<Engagement, String> {
        Engagement::parse(text, Path::new("e.yaml"), &env()).map_err(|e| e.to_string())
    }

    /// The engagement is refused at line `line` of `e.yaml`, with a message that says
    /// `why`; the message.
    fn refused_at(text: &str, line: u32, why: &str) -> String {
        match parse(text) {
            Ok(_) => panic!("accepted, expected `{why}` at line {line}:\n{text}"),
            Err(err) => {
                assert!(
                    err.starts_with(&format!("e.yaml:{line}:")) && err.contains(why),
                    "{err}"
                );
                err
            }
        }
    }

    /// `text` as a report would show it once the engagement's secrets are registered.
    fn scrubbed(e: &Engagement, text: &str) -> String {
        let redactor = super::super::Redactor::new();
        e.register_secrets(&redactor);
        redactor.scrub(text)
    }

    #[test]
    fn variables_fill_every_string_and_only_credentials_are_secret() {
        let e = parse(BASE).expect("valid");
        assert_eq!(e.target.as_str(), "https://staging.example.com/");
        assert_eq!(e.identities[0].tenant.as_deref(), Some("acme"));
        assert_eq!(
            scrubbed(&e, "https://staging.example.com acme tok-123456"),
            format!("https://staging.example.com acme {REDACTED}")
        );
        refused_at(&BASE.replace("${TENANT}", "${NOPE}"), 6, "`NOPE`");
    }

    #[test]
    fn scope_lists_origins_and_guards_token_endpoints() {
        let oauth = "target: https://api.example.com\nspec: s.yaml\nmatrix: m.csv\nidentities:\n  - name: svc\n    role: r\n    auth:\n      oauth2: {token_url: \"https://idp.example.com/token\", grant: client_credentials, client_id: c, client_secret: s3cret-xyz}\n";
        let err = refused_at(oauth, 5, "outside the scope");
        assert!(!err.contains("s3cret-xyz"), "{err}");
        let scoped = oauth.replace(
            "identities:",
            "scope: [\"https://idp.example.com\"]\nidentities:",
        );
        let e = parse(&scoped).expect("in scope");
        assert!(e.in_scope(&url::Url::parse("https://idp.example.com/x").expect("url")));
        assert!(e.in_scope(&url::Url::parse("https://api.example.com/y").expect("url")));
        assert!(!e.in_scope(&url::Url::parse("http://api.example.com/y").expect("url")));
        assert!(!e.in_scope(&url::Url::parse("https://api.example.com:8443/").expect("url")));
        let err = parse(&scoped.replace("idp.example.com\"]", "idp.example.com/login\"]"))
            .expect_err("path in scope");
        assert!(err.contains("scope lists origins"), "{err}");
        // `--target` moving away makes the token endpoint's check run again.
        let mut e = parse(
            oauth
                .replace("https://idp.example.com/token", "/token")
                .as_str(),
        )
        .expect("relative token_url");
        e.apply_overrides(Overrides {
            target: Some("https://other.example.com".into()),
            ..Overrides::default()
        })
        .expect("relative follows the target");
        assert_eq!(e.target.host_str(), Some("other.example.com"));
    }

    #[test]
    fn overrides_pass_the_file_checks() {
        let mut e = parse(BASE).expect("valid");
        let err = e
            .apply_overrides(Overrides {
                concurrency: Some(5000),
                ..Overrides::default()
            })
            .expect_err("over the cap");
        assert!(
            err.to_string().starts_with("--concurrency:") && err.to_string().contains("1024"),
            "{err}"
        );
        let file = parse(&BASE.replace("identities:", "concurrency: 5000\nidentities:"))
            .expect_err("same cap in the file");
        assert!(file.contains("1024"), "{file}");
        for bad in [
            Overrides {
                rate_limit: Some(0.0),
                ..Overrides::default()
            },
            Overrides {
                target: Some("ftp://x".into()),
                ..Overrides::default()
            },
            Overrides {
                proxy: Some("not a url".into()),
                ..Overrides::default()
            },
        ] {
            assert!(e.apply_overrides(bad).is_err());
        }
        e.apply_overrides(Overrides {
            concurrency: Some(16),
            proxy: Some("http://127.0.0.1:8080".into()),
            ..Overrides::default()
        })
        .expect("valid");
        assert_eq!(e.concurrency, 16);
        assert!(e.proxy.is_some());
    }

    #[test]
    fn headers_are_checked_and_secret_ones_redacted() {
        let text = BASE.replace(
            "identities:",
            "headers:\n  - {name: X-Gateway-Key, value: \"${GW}\", secret: true}\n  - {name: User-Agent, value: rolegrid-ci}\nidentities:",
        );
        let e = parse(&text).expect("valid");
        assert_eq!(e.headers.len(), 2);
        assert_eq!(
            scrubbed(&e, "gateway-key-9876 rolegrid-ci"),
            format!("{REDACTED} rolegrid-ci")
        );
        refused_at(
            &text.replace("X-Gateway-Key", "Authorization"),
            5,
            "identity's `auth`",
        );
        refused_at(
            &BASE.replace("identities:", "tls: {ca_cert: no-such.pem}\nidentities:"),
            4,
            "tls.ca_cert",
        );
        let err = parse(&BASE.replace("identities:", "tls: {client_cert: c.pem}\nidentities:"))
            .expect_err("half mTLS");
        assert!(err.contains("both `client_cert` and `client_key`"), "{err}");
    }

    #[test]
    fn a_wfc_login_on_another_origin_needs_scope() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("wfc.yaml"),
            "auth:\n  - name: u\n    loginEndpointAuth:\n      externalEndpointURL: https://idp.example.com/login\n      verb: POST\n      token: {extractFrom: header, extractSelector: X-Auth-Token, sendIn: header, sendName: Authorization}\n",
        )
        .expect("write");
        let text = "target: https://api.example.com\nspec: s.yaml\nmatrix: m.csv\nauth_file: wfc.yaml\nauth_file_identities:\n  u: {role: client}\n";
        let path = dir.path().join("e.yaml");
        let err = Engagement::parse(text, &path, &EnvSource::default())
            .expect_err("outside scope")
            .to_string();
        assert!(
            err.contains("wfc.yaml:4:") && err.contains("outside the scope"),
            "{err}"
        );
        let scoped = format!("{text}scope: [\"https://idp.example.com\"]\n");
        let e = Engagement::parse(&scoped, &path, &EnvSource::default()).expect("in scope");
        let Auth::Login(flow) = &e.identities[0].auth else {
            panic!("login")
        };
        assert_eq!(flow.steps[0].path, "https://idp.example.com/login");
    }
}
