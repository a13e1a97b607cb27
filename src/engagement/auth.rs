//! Identity credentials: the raw `auth:` shapes of the engagement file and the validated
//! [`Auth`] kinds (fixed headers and cookies, HTTP Basic, API keys, login flows of one or
//! more steps with optional CSRF, OAuth2 token grants). Everything that holds a credential
//! is a [`Secret`].

use super::Secret;
use serde::Deserialize;
use std::collections::BTreeSet;

// ---- validated shape ------------------------------------------------------------------

#[derive(Debug, Clone)]
pub enum Auth {
    None,
    /// A header with a fixed value (`Authorization: Bearer …`, `X-Api-Key: …`).
    Header {
        name: String,
        value: Secret,
    },
    /// Several headers with fixed values, all sent on every request (a WFC `fixedHeaders`
    /// list of more than one: `Authorization` plus `X-Tenant-Id`, two API keys). They are
    /// omitted together, and never forged: there is no single token to imitate, and a
    /// forged header next to a genuine second key would still be let in.
    Headers(Vec<(String, Secret)>),
    Cookie {
        name: String,
        value: Secret,
    },
    /// HTTP Basic: `Authorization: Basic base64(username:password)`.
    Basic {
        username: String,
        password: Secret,
    },
    /// A static API key in a header, the query string or a cookie.
    ApiKey {
        location: KeyLocation,
        name: String,
        value: Secret,
    },
    Login(LoginFlow),
    OAuth2(OAuth2Flow),
}

impl Auth {
    /// Whether the live credential is a token a `bad-auth` forgery can imitate (a header
    /// token, usually a JWT). Basic credentials and API keys are not tokens.
    pub fn carries_token(&self) -> bool {
        match self {
            Auth::Header { .. } | Auth::OAuth2(_) => true,
            Auth::Login(flow) => matches!(flow.session, SessionUse::Header { .. }),
            Auth::None
            | Auth::Headers(_)
            | Auth::Cookie { .. }
            | Auth::Basic { .. }
            | Auth::ApiKey { .. } => false,
        }
    }

    /// Requests a login costs (0 for static credentials).
    pub fn login_requests(&self) -> usize {
        match self {
            Auth::Login(flow) => flow.steps.len(),
            Auth::OAuth2(_) => 1,
            _ => 0,
        }
    }

    /// A short name for the report: `basic`, `api_key (query)`, `login (steps, cookie+csrf)`.
    pub fn kind(&self) -> &'static str {
        match self {
            Auth::None => "none",
            Auth::Header { .. } => "header",
            Auth::Headers(_) => "headers",
            Auth::Cookie { .. } => "cookie",
            Auth::Basic { .. } => "basic",
            Auth::ApiKey { location, .. } => match location {
                KeyLocation::Header => "api_key (header)",
                KeyLocation::Query => "api_key (query)",
                KeyLocation::Cookie => "api_key (cookie)",
            },
            Auth::Login(flow) => {
                let multi = flow.steps.len() > 1;
                match (&flow.session, flow.csrf.is_some(), multi) {
                    (SessionUse::Header { .. }, _, false) => "login (token)",
                    (SessionUse::Header { .. }, _, true) => "login (steps, token)",
                    (SessionUse::Cookie { .. }, false, false) => "login (cookie)",
                    (SessionUse::Cookie { .. }, false, true) => "login (steps, cookie)",
                    (SessionUse::Cookie { .. }, true, false) => "login (cookie+csrf)",
                    (SessionUse::Cookie { .. }, true, true) => "login (steps, cookie+csrf)",
                }
            }
            Auth::OAuth2(flow) => match flow.grant {
                Grant::ClientCredentials => "oauth2 (client_credentials)",
                Grant::Password { .. } => "oauth2 (password)",
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyLocation {
    Header,
    Query,
    Cookie,
}

impl KeyLocation {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyLocation::Header => "header",
            KeyLocation::Query => "query",
            KeyLocation::Cookie => "cookie",
        }
    }
}

/// A login: one or more requests, each of which may capture values (`{name}`) that later
/// steps, the session credential and the CSRF token use. Cookies set by any step are kept
/// in a jar for the later steps.
#[derive(Debug, Clone)]
pub struct LoginFlow {
    pub steps: Vec<LoginStep>,
    pub session: SessionUse,
    pub csrf: Option<Csrf>,
}

#[derive(Debug, Clone)]
pub struct LoginStep {
    pub method: reqwest::Method,
    /// May hold `{name}` placeholders of earlier captures.
    pub path: String,
    pub headers: Vec<(String, Secret)>,
    pub body: Option<StepBody>,
    pub captures: Vec<(String, Capture)>,
}

/// A login body with every `${VAR}` substituted; it holds credentials. `{name}`
/// placeholders in its string values are filled from earlier captures when it is sent.
#[derive(Debug, Clone)]
pub enum StepBody {
    /// Serialized JSON.
    Json(Secret),
    /// `application/x-www-form-urlencoded` fields, in file order.
    Form(Vec<(String, Secret)>),
}

/// Where a value is read from a login answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capture {
    /// The first string (or number) at this JSONPath in the JSON body.
    Json(String),
    /// A response header.
    Header(String),
    /// A cookie set by this or an earlier step.
    Cookie(String),
}

/// How the logged-in identity presents itself on every probe.
#[derive(Debug, Clone)]
pub enum SessionUse {
    /// `name: template`, the template's `{capture}` placeholders filled.
    Header { name: String, template: String },
    /// The named cookie from the login's cookie jar.
    Cookie { name: String },
}

/// A CSRF token captured at login and sent back on unsafe methods.
#[derive(Debug, Clone)]
pub struct Csrf {
    pub source: CsrfSource,
    pub send_header: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CsrfSource {
    /// Read from the last step's answer (cookies from the whole login).
    Answer(Capture),
    /// A value captured by one of the steps.
    Captured(String),
}

#[derive(Debug, Clone)]
pub struct OAuth2Flow {
    /// A path on the target (joined like login paths) or an absolute http(s) URL.
    pub token_url: String,
    pub grant: Grant,
    pub client_id: String,
    pub client_secret: Option<Secret>,
    pub scope: Option<String>,
    pub client_auth: ClientAuth,
}

#[derive(Debug, Clone)]
pub enum Grant {
    ClientCredentials,
    Password { username: String, password: Secret },
}

impl Grant {
    pub fn as_str(&self) -> &'static str {
        match self {
            Grant::ClientCredentials => "client_credentials",
            Grant::Password { .. } => "password",
        }
    }
}

/// How the client authenticates to the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// `Authorization: Basic base64(client_id:client_secret)` (the default).
    #[default]
    Basic,
    /// `client_id` and `client_secret` as form fields.
    Body,
}

// ---- raw file shape -------------------------------------------------------------------

/// Exactly one of the fields is set (checked after parsing): YAML maps read more naturally
/// than the tagged enums serde_yaml_ng would require.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAuth {
    #[serde(default)]
    bearer: Option<String>,
    #[serde(default)]
    header: Option<RawNamedValue>,
    #[serde(default)]
    cookie: Option<RawNamedValue>,
    #[serde(default)]
    basic: Option<RawBasic>,
    #[serde(default)]
    api_key: Option<RawApiKey>,
    #[serde(default)]
    login: Option<RawLogin>,
    #[serde(default)]
    oauth2: Option<RawOAuth2>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNamedValue {
    name: String,
    value: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBasic {
    username: String,
    password: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApiKey {
    #[serde(rename = "in")]
    location: KeyLocation,
    name: String,
    value: String,
}

type RawMap = serde_json::Map<String, serde_json::Value>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLogin {
    // One-request form.
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    json: Option<serde_json::Value>,
    #[serde(default)]
    form: Option<RawMap>,
    #[serde(default)]
    headers: Option<RawMap>,
    /// JSONPath to the token in the response body.
    #[serde(default)]
    token: Option<String>,
    /// Response header that carries the token.
    #[serde(default)]
    token_header: Option<String>,
    /// Name of a cookie set by the response to use instead of a token.
    #[serde(default)]
    cookie: Option<String>,
    #[serde(default)]
    header: Option<String>,
    #[serde(default)]
    template: Option<String>,
    // Multi-step form.
    #[serde(default)]
    steps: Option<Vec<RawStep>>,
    #[serde(default, rename = "use")]
    session: Option<RawUse>,
    // Both.
    #[serde(default)]
    csrf: Option<RawCsrf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    #[serde(default)]
    method: Option<String>,
    path: String,
    #[serde(default)]
    json: Option<serde_json::Value>,
    #[serde(default)]
    form: Option<RawMap>,
    #[serde(default)]
    headers: Option<RawMap>,
    #[serde(default)]
    capture: Option<RawMap>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUse {
    #[serde(default)]
    header: Option<String>,
    #[serde(default)]
    template: Option<String>,
    #[serde(default)]
    cookie: Option<String>,
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum CsrfFrom {
    Cookie,
    Header,
    Body,
    Capture,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCsrf {
    from: CsrfFrom,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    json_path: Option<String>,
    #[serde(default)]
    send_header: Option<String>,
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum RawGrant {
    ClientCredentials,
    Password,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOAuth2 {
    token_url: String,
    grant: RawGrant,
    client_id: String,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    client_auth: Option<ClientAuth>,
}

// ---- validation -----------------------------------------------------------------------

/// What validation needs from the engagement parser: `${VAR}` expansion and errors that
/// point at a line of the identity's block.
pub(super) struct Ctx<'a, E> {
    pub identity: &'a str,
    pub expand: &'a dyn Fn(&str) -> Result<Secret, E>,
    /// An error at the first line holding the needle inside this identity's block.
    pub invalid: &'a dyn Fn(&str, String) -> E,
}

const KINDS: &str = "bearer, header, cookie, basic, api_key, login or oauth2";

impl RawAuth {
    pub(super) fn validate<E>(self, cx: &Ctx<'_, E>) -> Result<Auth, E> {
        let kinds = usize::from(self.bearer.is_some())
            + usize::from(self.header.is_some())
            + usize::from(self.cookie.is_some())
            + usize::from(self.basic.is_some())
            + usize::from(self.api_key.is_some())
            + usize::from(self.login.is_some())
            + usize::from(self.oauth2.is_some());
        if kinds != 1 {
            return Err((cx.invalid)(
                "auth:",
                format!(
                    "identity `{}` needs exactly one auth kind ({KINDS}), found {kinds}",
                    cx.identity
                ),
            ));
        }
        if let Some(value) = self.bearer {
            let token = (cx.expand)(&value)?;
            return Ok(Auth::Header {
                name: "Authorization".into(),
                value: Secret::new(format!("Bearer {}", token.expose())),
            });
        }
        if let Some(RawNamedValue { name, value }) = self.header {
            check_header_name(&name, cx)?;
            return Ok(Auth::Header {
                name,
                value: (cx.expand)(&value)?,
            });
        }
        if let Some(RawNamedValue { name, value }) = self.cookie {
            return Ok(Auth::Cookie {
                name,
                value: (cx.expand)(&value)?,
            });
        }
        if let Some(RawBasic { username, password }) = self.basic {
            let username = (cx.expand)(&username)?.expose().to_string();
            if username.contains(':') {
                return Err((cx.invalid)(
                    "username:",
                    "a Basic username cannot contain `:` (RFC 7617)".into(),
                ));
            }
            return Ok(Auth::Basic {
                username,
                password: (cx.expand)(&password)?,
            });
        }
        if let Some(RawApiKey {
            location,
            name,
            value,
        }) = self.api_key
        {
            if location == KeyLocation::Header {
                check_header_name(&name, cx)?;
            }
            if name.trim().is_empty() {
                return Err((cx.invalid)(
                    "api_key:",
                    "api_key needs a non-empty `name`".into(),
                ));
            }
            return Ok(Auth::ApiKey {
                location,
                name,
                value: (cx.expand)(&value)?,
            });
        }
        if let Some(oauth2) = self.oauth2 {
            return oauth2.validate(cx);
        }
        match self.login {
            Some(login) => login.validate(cx),
            None => unreachable!("exactly one auth kind was checked above"),
        }
    }
}

impl RawOAuth2 {
    fn validate<E>(self, cx: &Ctx<'_, E>) -> Result<Auth, E> {
        let token_url = (cx.expand)(&self.token_url)?.expose().to_string();
        if !token_url.starts_with('/') {
            let ok = url::Url::parse(&token_url)
                .map(|u| matches!(u.scheme(), "http" | "https"))
                .unwrap_or(false);
            if !ok {
                return Err((cx.invalid)(
                    "token_url:",
                    format!("oauth2 token_url `{token_url}` must be a path (/oauth/token) or an http(s) URL"),
                ));
            }
        }
        let grant = match (self.grant, self.username, self.password) {
            (RawGrant::ClientCredentials, None, None) => Grant::ClientCredentials,
            (RawGrant::ClientCredentials, _, _) => {
                return Err((cx.invalid)(
                    "grant:",
                    "the client_credentials grant takes no username or password; remove them or use `grant: password`".into(),
                ))
            }
            (RawGrant::Password, Some(username), Some(password)) => Grant::Password {
                username: (cx.expand)(&username)?.expose().to_string(),
                password: (cx.expand)(&password)?,
            },
            (RawGrant::Password, _, _) => {
                return Err((cx.invalid)(
                    "grant:",
                    "the password grant needs `username` and `password`".into(),
                ))
            }
        };
        let client_secret = match self.client_secret {
            Some(s) => Some((cx.expand)(&s)?),
            None => None,
        };
        if matches!(grant, Grant::ClientCredentials) && client_secret.is_none() {
            return Err((cx.invalid)(
                "grant:",
                "the client_credentials grant needs a `client_secret`".into(),
            ));
        }
        Ok(Auth::OAuth2(OAuth2Flow {
            token_url,
            grant,
            client_id: (cx.expand)(&self.client_id)?.expose().to_string(),
            client_secret,
            scope: self.scope,
            client_auth: self.client_auth.unwrap_or_default(),
        }))
    }
}

impl RawLogin {
    fn validate<E>(self, cx: &Ctx<'_, E>) -> Result<Auth, E> {
        let multi = self.steps.is_some();
        let single_fields = [
            ("method", self.method.is_some()),
            ("path", self.path.is_some()),
            ("json", self.json.is_some()),
            ("form", self.form.is_some()),
            ("headers", self.headers.is_some()),
            ("token", self.token.is_some()),
            ("token_header", self.token_header.is_some()),
            ("cookie", self.cookie.is_some()),
            ("header", self.header.is_some()),
            ("template", self.template.is_some()),
        ];
        let (steps, session) = if multi {
            if let Some((field, _)) = single_fields.iter().find(|(_, set)| *set) {
                return Err((cx.invalid)(
                    &format!("{field}:"),
                    format!(
                        "login of `{}` has `steps`, so `{field}` belongs inside a step (or in `use`)",
                        cx.identity
                    ),
                ));
            }
            let raw_steps = self.steps.unwrap_or_default();
            if raw_steps.is_empty() {
                return Err((cx.invalid)("steps:", "login `steps` is empty".into()));
            }
            let mut known = BTreeSet::new();
            let mut steps = Vec::new();
            for raw in raw_steps {
                let step = validate_step(
                    raw.method,
                    raw.path,
                    raw.json,
                    raw.form,
                    raw.headers,
                    cx,
                    &known,
                )?;
                let mut step = step;
                for (name, source) in raw.capture.unwrap_or_default() {
                    if !is_ident(&name) {
                        return Err((cx.invalid)(
                            &name,
                            format!("capture name `{name}` must be letters, digits and _"),
                        ));
                    }
                    let capture = parse_capture(&name, &source, cx)?;
                    known.insert(name.clone());
                    step.captures.push((name, capture));
                }
                steps.push(step);
            }
            let Some(raw_use) = self.session else {
                return Err((cx.invalid)(
                    "steps:",
                    format!(
                        "login of `{}` needs `use`: {{header: Authorization, template: \"Bearer {{name}}\"}} or {{cookie: NAME}}",
                        cx.identity
                    ),
                ));
            };
            let session = match raw_use {
                RawUse {
                    header,
                    template: Some(template),
                    cookie: None,
                } => {
                    let name = header.unwrap_or_else(|| "Authorization".into());
                    check_header_name(&name, cx)?;
                    check_placeholders(&template, &known, "template", cx)?;
                    if placeholders(&template).is_empty() {
                        return Err((cx.invalid)(
                            "template:",
                            "the `use` template must name a capture, like \"Bearer {token}\""
                                .into(),
                        ));
                    }
                    SessionUse::Header { name, template }
                }
                RawUse {
                    header: None,
                    template: None,
                    cookie: Some(name),
                } => SessionUse::Cookie { name },
                _ => {
                    return Err((cx.invalid)(
                        "use:",
                        "`use` is either {header, template} (template required) or {cookie}".into(),
                    ))
                }
            };
            (steps, session)
        } else {
            if self.session.is_some() {
                return Err((cx.invalid)(
                    "use:",
                    "`use` goes with `steps`; a one-request login uses token/token_header/cookie"
                        .into(),
                ));
            }
            let Some(path) = self.path else {
                return Err((cx.invalid)(
                    "login:",
                    format!("login of `{}` needs a `path` (or `steps`)", cx.identity),
                ));
            };
            let mut step = validate_step(
                self.method,
                path,
                self.json,
                self.form,
                self.headers,
                cx,
                &BTreeSet::new(),
            )?;
            let set = usize::from(self.token.is_some())
                + usize::from(self.token_header.is_some())
                + usize::from(self.cookie.is_some());
            if set != 1 {
                return Err((cx.invalid)(
                    "login:",
                    format!(
                        "login of `{}` needs exactly one of `token` (a JSONPath), `token_header` (a response header) or `cookie` (a cookie name)",
                        cx.identity
                    ),
                ));
            }
            let session = if let Some(name) = self.cookie {
                if self.header.is_some() || self.template.is_some() {
                    return Err((cx.invalid)(
                        "login:",
                        "`header` and `template` apply to tokens, not to a `cookie` session".into(),
                    ));
                }
                SessionUse::Cookie { name }
            } else {
                let capture = match (self.token, self.token_header) {
                    (Some(path), _) => {
                        check_json_path(&path, "login token path", cx)?;
                        Capture::Json(path)
                    }
                    (None, Some(header)) => Capture::Header(header),
                    (None, None) => unreachable!("one capture was checked above"),
                };
                step.captures.push(("token".into(), capture));
                let template = self.template.unwrap_or_else(|| "Bearer {token}".into());
                if !template.contains("{token}") {
                    return Err((cx.invalid)(
                        "template:",
                        "login template must contain {token}".into(),
                    ));
                }
                let name = self.header.unwrap_or_else(|| "Authorization".into());
                check_header_name(&name, cx)?;
                SessionUse::Header { name, template }
            };
            (vec![step], session)
        };
        let csrf = match self.csrf {
            None => None,
            Some(raw) => {
                if !matches!(session, SessionUse::Cookie { .. }) {
                    return Err((cx.invalid)(
                        "csrf:",
                        "`csrf` protects cookie sessions; this login sends a header token".into(),
                    ));
                }
                let known: BTreeSet<String> = steps
                    .iter()
                    .flat_map(|s| s.captures.iter().map(|(n, _)| n.clone()))
                    .collect();
                Some(raw.validate(cx, &known)?)
            }
        };
        Ok(Auth::Login(LoginFlow {
            steps,
            session,
            csrf,
        }))
    }
}

impl RawCsrf {
    fn validate<E>(self, cx: &Ctx<'_, E>, captures: &BTreeSet<String>) -> Result<Csrf, E> {
        let need_name =
            |what: &str| (cx.invalid)("csrf:", format!("csrf `from: {what}` needs `name`"));
        let source = match self.from {
            CsrfFrom::Cookie => CsrfSource::Answer(Capture::Cookie(
                self.name.ok_or_else(|| need_name("cookie"))?,
            )),
            CsrfFrom::Header => CsrfSource::Answer(Capture::Header(
                self.name.ok_or_else(|| need_name("header"))?,
            )),
            CsrfFrom::Body => {
                let Some(path) = self.json_path else {
                    return Err((cx.invalid)(
                        "csrf:",
                        "csrf `from: body` needs `json_path`".into(),
                    ));
                };
                check_json_path(&path, "csrf json_path", cx)?;
                CsrfSource::Answer(Capture::Json(path))
            }
            CsrfFrom::Capture => {
                let name = self.name.ok_or_else(|| need_name("capture"))?;
                if !captures.contains(&name) {
                    return Err((cx.invalid)(
                        "csrf:",
                        format!("csrf names capture `{name}`, which no step captures"),
                    ));
                }
                CsrfSource::Captured(name)
            }
        };
        let send_header = self.send_header.unwrap_or_else(|| "X-CSRF-Token".into());
        check_header_name(&send_header, cx)?;
        Ok(Csrf {
            source,
            send_header,
        })
    }
}

fn validate_step<E>(
    method: Option<String>,
    path: String,
    json: Option<serde_json::Value>,
    form: Option<RawMap>,
    headers: Option<RawMap>,
    cx: &Ctx<'_, E>,
    known: &BTreeSet<String>,
) -> Result<LoginStep, E> {
    let method_text = method.unwrap_or_else(|| "POST".into());
    let method =
        reqwest::Method::from_bytes(method_text.to_ascii_uppercase().as_bytes()).map_err(|_| {
            (cx.invalid)(
                "method:",
                format!("login method `{method_text}` is not an HTTP method"),
            )
        })?;
    if !path.starts_with('/') {
        return Err((cx.invalid)(
            "path:",
            format!("login path `{path}` must start with /"),
        ));
    }
    check_placeholders(&path, known, "path", cx)?;
    let body = match (json, form) {
        (Some(_), Some(_)) => {
            return Err((cx.invalid)(
                "form:",
                "a login request has either `json` or `form`, not both".into(),
            ))
        }
        (Some(json), None) => {
            let expanded = expand_json(&json, cx.expand)?;
            let mut texts = Vec::new();
            strings_of(&json, &mut texts);
            for text in texts {
                check_placeholders(&text, known, "json body", cx)?;
            }
            Some(StepBody::Json(expanded))
        }
        (None, Some(form)) => Some(StepBody::Form(scalar_pairs(form, "form", known, cx)?)),
        (None, None) => None,
    };
    let headers = match headers {
        Some(h) => {
            let pairs = scalar_pairs(h, "headers", known, cx)?;
            for (name, _) in &pairs {
                check_header_name(name, cx)?;
            }
            pairs
        }
        None => Vec::new(),
    };
    Ok(LoginStep {
        method,
        path,
        headers,
        body,
        captures: Vec::new(),
    })
}

/// `{name: scalar}` → expanded pairs, in file order.
fn scalar_pairs<E>(
    map: RawMap,
    what: &str,
    known: &BTreeSet<String>,
    cx: &Ctx<'_, E>,
) -> Result<Vec<(String, Secret)>, E> {
    let mut out = Vec::new();
    for (key, value) in map {
        let text = match value {
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            _ => {
                return Err((cx.invalid)(
                    &key,
                    format!("{what} field `{key}` must be a string, number or boolean"),
                ))
            }
        };
        check_placeholders(&text, known, what, cx)?;
        out.push((key, (cx.expand)(&text)?));
    }
    Ok(out)
}

fn parse_capture<E>(name: &str, source: &serde_json::Value, cx: &Ctx<'_, E>) -> Result<Capture, E> {
    let bad = || {
        (cx.invalid)(
            name,
            format!(
                "capture `{name}` is a JSONPath (\"$.token\") or one of {{json: PATH}}, {{header: NAME}}, {{cookie: NAME}}"
            ),
        )
    };
    let capture = match source {
        serde_json::Value::String(path) => Capture::Json(path.clone()),
        serde_json::Value::Object(map) if map.len() == 1 => {
            let (kind, value) = map.iter().next().ok_or_else(bad)?;
            let value = value.as_str().ok_or_else(bad)?.to_string();
            match kind.as_str() {
                "json" => Capture::Json(value),
                "header" => Capture::Header(value),
                "cookie" => Capture::Cookie(value),
                _ => return Err(bad()),
            }
        }
        _ => return Err(bad()),
    };
    if let Capture::Json(path) = &capture {
        check_json_path(path, &format!("capture `{name}`"), cx)?;
    }
    Ok(capture)
}

fn check_json_path<E>(path: &str, what: &str, cx: &Ctx<'_, E>) -> Result<(), E> {
    super::validate_json_path(path)
        .map_err(|e| (cx.invalid)(path, format!("{what} is not valid JSONPath: {e}")))
}

fn check_header_name<E>(name: &str, cx: &Ctx<'_, E>) -> Result<(), E> {
    reqwest::header::HeaderName::from_bytes(name.as_bytes())
        .map(|_| ())
        .map_err(|_| (cx.invalid)(name, format!("`{name}` is not a valid header name")))
}

fn check_placeholders<E>(
    text: &str,
    known: &BTreeSet<String>,
    what: &str,
    cx: &Ctx<'_, E>,
) -> Result<(), E> {
    for name in placeholders(text) {
        if !known.contains(name) {
            let hint = if known.is_empty() {
                "no earlier step captures anything".to_string()
            } else {
                format!(
                    "earlier steps capture: {}",
                    known.iter().cloned().collect::<Vec<_>>().join(", ")
                )
            };
            return Err((cx.invalid)(
                &format!("{{{name}}}"),
                format!("{what} uses `{{{name}}}`, which is not captured before it ({hint})"),
            ));
        }
    }
    Ok(())
}

fn is_ident(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The `{name}` placeholders in `text` (`${VAR}` is not one: it is expanded at load).
pub fn placeholders(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut at = 0;
    while let Some(open) = text[at..].find('{') {
        let start = at + open;
        let Some(close) = text[start..].find('}') else {
            break;
        };
        let name = &text[start + 1..start + close];
        let dollar = start > 0 && bytes[start - 1] == b'$';
        if !dollar && is_ident(name) {
            out.push(name);
        }
        at = start + 1;
    }
    out
}

/// Replaces every `{name}` whose name is in `values`; other text is left alone.
pub fn fill(text: &str, values: &[(String, Secret)]) -> String {
    let mut out = text.to_string();
    for (name, value) in values {
        out = out.replace(&format!("{{{name}}}"), value.expose());
    }
    out
}

fn strings_of(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|v| strings_of(v, out)),
        serde_json::Value::Object(o) => o.values().for_each(|v| strings_of(v, out)),
        _ => {}
    }
}

/// Expands `${VAR}` in every string of a JSON value; the result is serialized JSON.
pub(super) fn expand_json<E>(
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

/// Fills `{name}` placeholders in the string values of a serialized JSON body.
pub fn fill_json(body: &str, values: &[(String, Secret)]) -> Result<String, String> {
    fn walk(v: &mut serde_json::Value, values: &[(String, Secret)]) {
        match v {
            serde_json::Value::String(s) => *s = fill(s, values),
            serde_json::Value::Array(a) => a.iter_mut().for_each(|x| walk(x, values)),
            serde_json::Value::Object(o) => o.values_mut().for_each(|x| walk(x, values)),
            _ => {}
        }
    }
    let mut value: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("login body is not JSON: {e}"))?;
    walk(&mut value, values);
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_skip_env_references_and_non_names() {
        assert_eq!(placeholders("Bearer {token}"), vec!["token"]);
        assert_eq!(
            placeholders("${VAR} {a_1}{b} {} {x y} {9}"),
            vec!["a_1", "b"]
        );
    }

    #[test]
    fn fill_json_escapes_captured_values() {
        let values = vec![("r".to_string(), Secret::new("a\"b"))];
        let out = fill_json(r#"{"refresh_token":"{r}","n":1}"#, &values).expect("json");
        assert_eq!(out, r#"{"refresh_token":"a\"b","n":1}"#);
    }
}
