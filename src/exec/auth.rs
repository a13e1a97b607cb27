//! Getting credentials at run time: login flows of one or more steps (with a cookie jar,
//! captures and CSRF tokens) and OAuth2 token grants (refresh first, then a full grant).
//! Every value obtained here is registered with the redactor before anything can print it.

use crate::engagement::{
    fill, fill_json, Auth, Capture, ClientAuth, CsrfSource, Grant, Identity, KeyLocation,
    LoginFlow, OAuth2Flow, Redactor, Secret, SessionUse, StepBody,
};
use base64::Engine;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A credential obtained at run time, ready to attach.
#[derive(Clone, Default)]
pub(super) struct Live {
    pub credential: Attach,
    /// `(header, token)` sent on unsafe methods.
    pub csrf: Option<(String, Secret)>,
    /// From an OAuth2 token answer: tried before a full grant when the token runs out.
    pub refresh_token: Option<Secret>,
    /// When the credential should be renewed (shortly before the server's expiry).
    pub renew_at: Option<Instant>,
    /// The login answers' `Set-Cookie` lines, values withheld (for the posture checks).
    pub set_cookies: Vec<String>,
}

impl Live {
    fn attach(credential: Attach) -> Self {
        Live {
            credential,
            ..Live::default()
        }
    }

    pub fn due(&self, now: Instant) -> bool {
        self.renew_at.is_some_and(|at| now >= at)
    }
}

#[derive(Clone, Default)]
pub(super) enum Attach {
    #[default]
    None,
    /// One value where the API reads it: a header token, a session cookie, a query key.
    One {
        at: KeyLocation,
        name: String,
        value: Secret,
    },
    /// Several fixed headers, sent together ([`Auth::Headers`]).
    Headers(Vec<(String, Secret)>),
}

/// What a request carries for its credential.
#[derive(Default)]
pub(super) struct Parts {
    pub headers: Vec<(String, Secret)>,
    pub query: Vec<(String, Secret)>,
}

impl Parts {
    pub fn apply(self, mut builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        for (name, value) in &self.headers {
            builder = builder.header(name.as_str(), value.expose());
        }
        if !self.query.is_empty() {
            let pairs: Vec<(&str, &str)> = self
                .query
                .iter()
                .map(|(n, v)| (n.as_str(), v.expose()))
                .collect();
            builder = builder.query(&pairs);
        }
        builder
    }
}

impl Attach {
    pub fn header(name: &str, value: Secret) -> Self {
        Attach::One {
            at: KeyLocation::Header,
            name: name.to_string(),
            value,
        }
    }

    pub fn into_parts(self) -> Parts {
        let mut parts = Parts::default();
        match self {
            Attach::None => {}
            Attach::Headers(headers) => parts.headers.extend(headers),
            Attach::One { at, name, value } => match at {
                KeyLocation::Header => parts.headers.push((name, value)),
                KeyLocation::Cookie => parts.headers.push((
                    "cookie".into(),
                    Secret::new(format!("{name}={}", value.expose())),
                )),
                KeyLocation::Query => parts.query.push((name, value)),
            },
        }
        parts
    }
}

/// Where logins go: the shared client, the target's base URL, the other origins in scope
/// and the redactor.
pub(super) struct Authenticator<'a> {
    pub client: &'a reqwest::Client,
    pub base: &'a url::Url,
    /// `scope:` origins: an absolute login or token URL must be on one of them or the base's.
    pub scope: &'a [url::Url],
    pub redactor: &'a Redactor,
}

impl Authenticator<'_> {
    /// The identity's credential: static ones as they are, login flows and token grants
    /// run now. With `previous`, an OAuth2 refresh token is tried before a full grant.
    pub async fn obtain(
        &self,
        identity: &Identity,
        previous: Option<&Live>,
    ) -> Result<Live, String> {
        let live = match &identity.auth {
            Auth::None => Live::default(),
            Auth::Header { name, value } => Live::attach(Attach::header(name, value.clone())),
            Auth::Headers(headers) => Live::attach(Attach::Headers(headers.clone())),
            Auth::Cookie { name, value } => Live::attach(Attach::One {
                at: KeyLocation::Cookie,
                name: name.clone(),
                value: value.clone(),
            }),
            Auth::Basic { username, password } => {
                let pair = format!("{username}:{}", password.expose());
                let encoded = base64::engine::general_purpose::STANDARD.encode(&pair);
                self.redactor.register(&pair);
                self.redactor.register(&encoded);
                Live::attach(Attach::header(
                    "Authorization",
                    Secret::new(format!("Basic {encoded}")),
                ))
            }
            Auth::ApiKey {
                location,
                name,
                value,
            } => Live::attach(Attach::One {
                at: *location,
                name: name.clone(),
                value: value.clone(),
            }),
            Auth::Login(flow) => self.login(flow).await?,
            Auth::OAuth2(flow) => {
                let refresh = previous.and_then(|p| p.refresh_token.clone());
                match refresh {
                    Some(refresh) => match self.token(flow, Some(&refresh)).await {
                        Ok(live) => live,
                        // A refused refresh token is normal (rotated, revoked, expired).
                        Err(_) => self.token(flow, None).await?,
                    },
                    None => self.token(flow, None).await?,
                }
            }
        };
        Ok(live)
    }

    /// A path on the target, or an absolute URL on an origin in scope (an OAuth2
    /// `token_url`, a WFC `externalEndpointURL`). The engagement checked this when it
    /// loaded; the guard is repeated here, where credentials are about to be sent.
    fn url(&self, path: &str) -> Result<String, String> {
        if !(path.starts_with("http://") || path.starts_with("https://")) {
            return Ok(format!(
                "{}{path}",
                self.base.as_str().trim_end_matches('/')
            ));
        }
        let url = url::Url::parse(path).map_err(|e| format!("`{path}` is not a URL ({e})"))?;
        let origin = url.origin();
        if origin == self.base.origin() || self.scope.iter().any(|s| s.origin() == origin) {
            Ok(path.to_string())
        } else {
            Err(format!(
                "`{}` is outside the scope; not sent (add its origin to `scope:` to allow it)",
                origin.ascii_serialization()
            ))
        }
    }

    fn register(&self, value: &str) {
        self.redactor.register(value);
    }

    async fn login(&self, flow: &LoginFlow) -> Result<Live, String> {
        let mut captured: Vec<(String, Secret)> = Vec::new();
        let mut jar: BTreeMap<String, Secret> = BTreeMap::new();
        let mut last: Option<Answer> = None;
        let mut set_cookies = Vec::new();
        for (n, step) in flow.steps.iter().enumerate() {
            let label = if flow.steps.len() > 1 {
                format!("step {} ", n + 1)
            } else {
                String::new()
            };
            let path = fill(&step.path, &captured);
            let url = self.url(&path)?;
            let mut builder = self.client.request(step.method.clone(), &url);
            if !jar.is_empty() {
                let cookies: Vec<String> = jar
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.expose()))
                    .collect();
                builder = builder.header("cookie", cookies.join("; "));
            }
            for (name, value) in &step.headers {
                builder = builder.header(name.as_str(), fill(value.expose(), &captured));
            }
            match &step.body {
                None => {}
                Some(StepBody::Json(json)) => {
                    builder = builder
                        .header("content-type", "application/json")
                        .body(fill_json(json.expose(), &captured)?);
                }
                Some(StepBody::Form(fields)) => {
                    let body = url::form_urlencoded::Serializer::new(String::new())
                        .extend_pairs(
                            fields
                                .iter()
                                .map(|(k, v)| (k.as_str(), fill(v.expose(), &captured))),
                        )
                        .finish();
                    builder = builder
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(body);
                }
            }
            let method = &step.method;
            let (status, answer) = Answer::of(builder.send().await, || {
                format!("login {label}{method} {path}")
            })
            .await?;
            set_cookies.extend(
                answer
                    .headers
                    .get_all(reqwest::header::SET_COOKIE)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .map(crate::posture::cookies::withhold_value),
            );
            for (name, value) in &answer.cookies {
                self.register(value.expose());
                jar.insert(name.clone(), value.clone());
            }
            if !status.is_success() {
                return Err(format!(
                    "login {label}{method} {path} answered {status}; check the identity's credentials"
                ));
            }
            for (name, capture) in &step.captures {
                let value = answer.capture(capture, &jar).ok_or_else(|| {
                    format!(
                        "login {label}{method} {path}: {}",
                        missing(capture, &format!("capture `{name}`"))
                    )
                })?;
                self.register(value.expose());
                captured.retain(|(n, _)| n != name);
                captured.push((name.clone(), value));
            }
            last = Some(answer);
        }
        let credential = match &flow.session {
            SessionUse::Header { name, template } => {
                let value = fill(template, &captured);
                self.register(&value);
                Attach::header(name, Secret::new(value))
            }
            SessionUse::Cookie { name } => {
                let value = jar
                    .get(name)
                    .cloned()
                    .ok_or_else(|| format!("the login set no cookie `{name}`"))?;
                Attach::One {
                    at: KeyLocation::Cookie,
                    name: name.clone(),
                    value,
                }
            }
        };
        let csrf = match &flow.csrf {
            None => None,
            Some(csrf) => {
                let value = match &csrf.source {
                    CsrfSource::Captured(name) => captured
                        .iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, v)| v.clone()),
                    CsrfSource::Answer(capture) => {
                        last.as_ref().and_then(|a| a.capture(capture, &jar))
                    }
                }
                .ok_or_else(|| missing_csrf(&csrf.source))?;
                self.register(value.expose());
                Some((csrf.send_header.clone(), value))
            }
        };
        Ok(Live {
            credential,
            csrf,
            refresh_token: None,
            renew_at: None,
            set_cookies,
        })
    }

    /// One request to the token endpoint: the refresh_token grant when `refresh` is given,
    /// else the configured grant.
    async fn token(&self, flow: &OAuth2Flow, refresh: Option<&Secret>) -> Result<Live, String> {
        let url = self.url(&flow.token_url)?;
        let grant = if refresh.is_some() {
            "refresh_token"
        } else {
            flow.grant.as_str()
        };
        let mut form: Vec<(&str, &str)> = vec![("grant_type", grant)];
        match (refresh, &flow.grant) {
            (Some(token), _) => form.push(("refresh_token", token.expose())),
            (None, Grant::Password { username, password }) => {
                form.push(("username", username));
                form.push(("password", password.expose()));
            }
            (None, Grant::ClientCredentials) => {}
        }
        if let (Some(scope), None) = (&flow.scope, refresh) {
            form.push(("scope", scope));
        }
        let mut builder = self.client.post(&url);
        match (flow.client_auth, &flow.client_secret) {
            (ClientAuth::Basic, Some(secret)) => {
                // RFC 6749 §2.3.1: each part form-urlencoded before the Basic encoding.
                let enc = |s: &str| {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                };
                let pair = format!("{}:{}", enc(&flow.client_id), enc(secret.expose()));
                self.register(&pair);
                let encoded = base64::engine::general_purpose::STANDARD.encode(&pair);
                builder = builder.header("authorization", format!("Basic {encoded}"));
            }
            (ClientAuth::Body, Some(secret)) => {
                form.push(("client_id", &flow.client_id));
                form.push(("client_secret", secret.expose()));
            }
            (_, None) => form.push(("client_id", &flow.client_id)),
        }
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let sent_at = Instant::now();
        let sent = builder
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(body)
            .send()
            .await;
        let (status, answer) =
            Answer::of(sent, || format!("oauth2 {grant} grant at {url}")).await?;
        let json = answer.json.clone().unwrap_or_default();
        let text = |key: &str| json.get(key).and_then(|v| v.as_str()).map(str::to_string);
        // Tokens in a refusal are still tokens: register before building any message.
        for key in ["access_token", "refresh_token", "id_token"] {
            if let Some(value) = text(key) {
                self.register(&value);
            }
        }
        if !status.is_success() {
            let error = text("error").unwrap_or_else(|| "no `error` field".into());
            let description = text("error_description")
                .map(|d| format!(" ({d})"))
                .unwrap_or_default();
            return Err(format!(
                "oauth2 {grant} grant at {url} answered {status}: {error}{description}"
            ));
        }
        let access = text("access_token").ok_or_else(|| {
            format!("oauth2 {grant} grant at {url}: the answer has no `access_token`")
        })?;
        let token_type = text("token_type").unwrap_or_else(|| "Bearer".into());
        if !token_type.eq_ignore_ascii_case("bearer") {
            return Err(format!(
                "oauth2 {grant} grant at {url}: token_type `{token_type}` is not supported (only Bearer)"
            ));
        }
        let value = format!("Bearer {access}");
        self.register(&value);
        let renew_at = json
            .get("expires_in")
            .and_then(|v| v.as_f64().or_else(|| v.as_str()?.parse().ok()))
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|secs| sent_at + renew_after(Duration::from_secs_f64(secs.min(1e9))));
        Ok(Live {
            credential: Attach::header("Authorization", Secret::new(value)),
            csrf: None,
            // A refresh grant may leave the refresh token out: the old one stays good.
            refresh_token: text("refresh_token")
                .map(Secret::new)
                .or_else(|| refresh.cloned()),
            renew_at,
            set_cookies: Vec::new(),
        })
    }
}

/// Renew a fifth of the lifetime early (at most 30 s early), so no probe is sent with a
/// token that runs out on the way.
fn renew_after(lifetime: Duration) -> Duration {
    lifetime.saturating_sub((lifetime / 5).min(Duration::from_secs(30)))
}

fn missing(capture: &Capture, what: &str) -> String {
    match capture {
        Capture::Json(path) => format!("{what}: the answer has no string at `{path}`"),
        Capture::Header(name) => format!("{what}: the answer has no `{name}` header"),
        Capture::Cookie(name) => format!("{what}: the login set no cookie `{name}`"),
    }
}

fn missing_csrf(source: &CsrfSource) -> String {
    match source {
        CsrfSource::Captured(name) => format!("the csrf capture `{name}` is empty"),
        CsrfSource::Answer(capture) => missing(capture, "csrf token"),
    }
}

/// What a login step's answer offers for capture.
struct Answer {
    headers: reqwest::header::HeaderMap,
    cookies: Vec<(String, Secret)>,
    json: Option<serde_json::Value>,
}

impl Answer {
    /// The status and answer of a sent login or token request, or what kept it from
    /// being answered (`what` names the request).
    async fn of(
        sent: Result<reqwest::Response, reqwest::Error>,
        what: impl FnOnce() -> String,
    ) -> Result<(reqwest::StatusCode, Answer), String> {
        let response =
            sent.map_err(|e| format!("{}: {}", what(), super::client::describe_error(&e)))?;
        let status = response.status();
        Ok((status, Answer::read(response).await))
    }

    async fn read(response: reqwest::Response) -> Answer {
        let headers = response.headers().clone();
        let cookies = headers
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|cookie| {
                let pair = cookie.split(';').next()?;
                let (n, v) = pair.split_once('=')?;
                Some((n.trim().to_string(), Secret::new(v.trim())))
            })
            .collect();
        // Login answers are small; a body that cannot be read simply offers nothing.
        let json = response
            .bytes()
            .await
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        Answer {
            headers,
            cookies,
            json,
        }
    }

    fn capture(&self, capture: &Capture, jar: &BTreeMap<String, Secret>) -> Option<Secret> {
        let value = match capture {
            Capture::Json(path) => {
                use jsonpath_rust::JsonPath;
                let found = self.json.as_ref()?.query(path).ok()?;
                match found.first()? {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Number(n) => n.to_string(),
                    _ => return None,
                }
            }
            Capture::Header(name) => self.headers.get(name.as_str())?.to_str().ok()?.to_string(),
            Capture::Cookie(name) => return jar.get(name).cloned(),
        };
        (!value.is_empty()).then(|| Secret::new(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renews_early_but_not_too_early() {
        assert_eq!(renew_after(Duration::from_secs(10)), Duration::from_secs(8));
        assert_eq!(
            renew_after(Duration::from_secs(3600)),
            Duration::from_secs(3570)
        );
        assert_eq!(renew_after(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn query_keys_and_cookies_become_parts() {
        let parts = Attach::One {
            at: KeyLocation::Query,
            name: "api_key".into(),
            value: Secret::new("k-123456"),
        }
        .into_parts();
        assert!(parts.headers.is_empty());
        assert_eq!(parts.query.len(), 1);
        let parts = Attach::One {
            at: KeyLocation::Cookie,
            name: "sid".into(),
            value: Secret::new("v"),
        }
        .into_parts();
        assert_eq!(parts.headers[0].0, "cookie");
        assert_eq!(parts.headers[0].1.expose(), "sid=v");
    }

    /// An authenticator on `base` with no extra scope.
    fn authenticator<'a>(
        client: &'a reqwest::Client,
        base: &'a url::Url,
        redactor: &'a Redactor,
    ) -> Authenticator<'a> {
        Authenticator {
            client,
            base,
            scope: &[],
            redactor,
        }
    }

    #[test]
    fn absolute_login_urls_must_be_in_scope() {
        let client = reqwest::Client::new();
        let base = url::Url::parse("https://api.example.com/v2").expect("url");
        let scope = [url::Url::parse("https://idp.example.com").expect("url")];
        let redactor = Redactor::new();
        let mut auth = authenticator(&client, &base, &redactor);
        assert_eq!(
            auth.url("/auth/login").as_deref(),
            Ok("https://api.example.com/v2/auth/login")
        );
        assert!(auth.url("https://api.example.com/oauth/token").is_ok());
        let refused = auth
            .url("https://idp.example.com/token")
            .expect_err("not in scope");
        assert!(refused.contains("outside the scope"), "{refused}");
        auth.scope = &scope;
        assert!(auth.url("https://idp.example.com/token").is_ok());
        assert!(auth.url("http://idp.example.com/token").is_err());
    }

    /// The demo portal, and an authenticator pointed at it.
    async fn portal(
        ttl: Duration,
    ) -> (
        crate::demo::RunningDemo,
        std::collections::BTreeMap<String, String>,
        reqwest::Client,
        url::Url,
    ) {
        let passwords = crate::demo::DemoOptions::random_passwords();
        let mut options = crate::demo::DemoOptions::new(passwords.clone()).secure();
        options.token_ttl = ttl;
        let demo = crate::demo::spawn(options, "127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("portal");
        let base = url::Url::parse(&demo.base_url()).expect("url");
        (demo, passwords, reqwest::Client::new(), base)
    }

    fn identity(auth: Auth) -> Identity {
        Identity {
            name: "x".into(),
            tenant: None,
            role: "r".into(),
            attributes: Default::default(),
            auth,
        }
    }

    fn oauth_password(password: &str) -> Auth {
        Auth::OAuth2(OAuth2Flow {
            token_url: "/oauth/token".into(),
            grant: Grant::Password {
                username: "alice@acme.test".into(),
                password: Secret::new(password),
            },
            client_id: crate::demo::WEB_CLIENT.into(),
            client_secret: None,
            scope: None,
            client_auth: ClientAuth::Body,
        })
    }

    #[tokio::test]
    async fn oauth2_tries_the_refresh_token_before_a_full_grant() {
        let (demo, passwords, client, base) = portal(Duration::from_secs(10)).await;
        let redactor = Redactor::new();
        let auth = authenticator(&client, &base, &redactor);
        let good = identity(oauth_password(&passwords["alice@acme.test"]));
        let first = auth.obtain(&good, None).await.expect("password grant");
        let refresh = first.refresh_token.clone().expect("a refresh token");
        assert!(first.renew_at.is_some());
        // Every value the grant produced is registered before anyone can print it.
        assert_eq!(
            redactor.scrub(refresh.expose()),
            crate::engagement::REDACTED
        );
        let Attach::One {
            at: KeyLocation::Header,
            value,
            ..
        } = &first.credential
        else {
            panic!("bearer header expected")
        };
        assert_eq!(redactor.scrub(value.expose()), crate::engagement::REDACTED);

        // With a wrong password, only the refresh grant can succeed: it is tried first.
        let wrong = identity(oauth_password("not-the-password"));
        let renewed = auth
            .obtain(&wrong, Some(&first))
            .await
            .expect("refresh grant");
        let rotated = renewed.refresh_token.clone().expect("rotated");
        assert_ne!(rotated.expose(), refresh.expose());
        // The used refresh token no longer works, so the full grant runs (and fails here).
        let err = auth
            .obtain(&wrong, Some(&first))
            .await
            .err()
            .expect("refused");
        assert!(
            err.contains("password grant") && err.contains("invalid_grant"),
            "{err}"
        );
        // ...and with the right password the fallback succeeds.
        assert!(auth.obtain(&good, Some(&first)).await.is_ok());
        demo.shutdown().await;
    }

    #[tokio::test]
    async fn login_registers_cookies_csrf_and_captures() {
        let (demo, passwords, client, base) = portal(Duration::from_secs(10)).await;
        let redactor = Redactor::new();
        let auth = authenticator(&client, &base, &redactor);
        let text = format!(
            "target: {base}\nspec: s\nmatrix: m\nidentities:\n  - name: carol\n    role: staff\n    auth:\n      login:\n        path: /auth/session\n        form: {{email: carol@acme.test, password: \"${{PW}}\"}}\n        cookie: portal_session\n        csrf: {{from: header, name: X-CSRF-Token}}\n"
        );
        let env = crate::engagement::EnvSource::default().with("PW", &passwords["carol@acme.test"]);
        let engagement =
            crate::engagement::Engagement::parse(&text, std::path::Path::new("e.yaml"), &env)
                .expect("valid");
        let live = auth
            .obtain(&engagement.identities[0], None)
            .await
            .expect("login");
        let Attach::One {
            at: KeyLocation::Cookie,
            name,
            value,
        } = &live.credential
        else {
            panic!("cookie expected")
        };
        assert_eq!(name, "portal_session");
        assert_eq!(redactor.scrub(value.expose()), crate::engagement::REDACTED);
        let (header, csrf) = live.csrf.clone().expect("csrf");
        assert_eq!(header, "X-CSRF-Token");
        assert_eq!(redactor.scrub(csrf.expose()), crate::engagement::REDACTED);
        demo.shutdown().await;
    }
}
