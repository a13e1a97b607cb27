//! Identities read from a Web Fuzzing Commons (WFC) auth document, the format EvoMaster
//! and Schemathesis read (`auth:` entries with `fixedHeaders` or `loginEndpointAuth`).
//! WFC has no tenant or role: the engagement gives them per entry in
//! `auth_file_identities`. Every value of the document that is sent as a credential is a
//! [`Secret`] and is registered for redaction, whether literal or `${VAR}`.

use super::{
    expand_env, line_of, Auth, Capture, EngagementError, EnvSource, Identity, LoginFlow, LoginStep,
    Secret, SessionUse, StepBody,
};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What the engagement says about one WFC entry: what WFC cannot.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWfcIdentity {
    role: String,
    #[serde(default)]
    tenant: Option<String>,
    #[serde(default)]
    attributes: BTreeMap<String, serde_json::Value>,
    /// For `expectCookies: true`: the cookie that carries the session.
    #[serde(default)]
    session_cookie: Option<String>,
}

// ---- WFC document shape ---------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct WfcDocument {
    #[serde(default)]
    #[allow(dead_code)]
    schema_version: Option<String>,
    auth: Vec<WfcEntry>,
    #[serde(default)]
    auth_template: Option<WfcEntry>,
    #[serde(default)]
    #[allow(dead_code)]
    configs: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct WfcEntry {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    require_mock_handling: Option<bool>,
    #[serde(default)]
    fixed_headers: Option<Vec<WfcHeader>>,
    #[serde(default)]
    login_endpoint_auth: Option<WfcLogin>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct WfcHeader {
    name: String,
    value: String,
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct WfcLogin {
    #[serde(default)]
    endpoint: Option<String>,
    #[serde(default, rename = "externalEndpointURL")]
    external_endpoint_url: Option<String>,
    #[serde(default)]
    payload_raw: Option<String>,
    #[serde(default)]
    payload_user_pwd: Option<WfcUserPwd>,
    #[serde(default)]
    headers: Option<Vec<WfcHeader>>,
    #[serde(default)]
    verb: Option<String>,
    #[serde(default)]
    content_type: Option<String>,
    #[serde(default)]
    token: Option<WfcToken>,
    #[serde(default)]
    expect_cookies: Option<bool>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct WfcUserPwd {
    username: String,
    password: String,
    username_field: String,
    password_field: String,
}

/// Both generations of WFC token handling: `extractFrom`/`extractSelector`/`send*`
/// (current) and `extractFromField`/`extractFromHeader`/`httpHeaderName`/`headerPrefix`/
/// `headerPostfix` (earlier schema versions).
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct WfcToken {
    #[serde(default)]
    extract_from: Option<String>,
    #[serde(default)]
    extract_selector: Option<String>,
    #[serde(default)]
    send_in: Option<String>,
    #[serde(default)]
    send_name: Option<String>,
    #[serde(default)]
    send_template: Option<String>,
    #[serde(default)]
    extract_from_field: Option<String>,
    #[serde(default)]
    extract_from_header: Option<String>,
    #[serde(default)]
    http_header_name: Option<String>,
    #[serde(default)]
    header_prefix: Option<String>,
    #[serde(default)]
    header_postfix: Option<String>,
}

macro_rules! merge_fields {
    ($entry:expr, $template:expr, $($field:ident),*) => {
        {
            $( if $entry.$field.is_none() { $entry.$field = $template.$field.clone(); } )*
        }
    };
}

impl WfcEntry {
    /// Applies `authTemplate`: what the entry does not give, the template does (field by
    /// field, inside `loginEndpointAuth` and its `token` too).
    fn merged(mut self, template: &WfcEntry) -> WfcEntry {
        merge_fields!(self, template, require_mock_handling, fixed_headers);
        match (&mut self.login_endpoint_auth, &template.login_endpoint_auth) {
            (Some(login), Some(t)) => {
                merge_fields!(
                    login,
                    t,
                    endpoint,
                    external_endpoint_url,
                    payload_raw,
                    payload_user_pwd,
                    headers,
                    verb,
                    content_type,
                    expect_cookies
                );
                match (&mut login.token, &t.token) {
                    (Some(token), Some(tt)) => {
                        merge_fields!(
                            token,
                            tt,
                            extract_from,
                            extract_selector,
                            send_in,
                            send_name,
                            send_template,
                            extract_from_field,
                            extract_from_header,
                            http_header_name,
                            header_prefix,
                            header_postfix
                        )
                    }
                    (None, Some(tt)) => login.token = Some(tt.clone()),
                    _ => {}
                }
            }
            (None, Some(t)) => self.login_endpoint_auth = Some(t.clone()),
            _ => {}
        }
        self
    }
}

// ---- loading --------------------------------------------------------------------------

/// Where the engagement points at the auth file (for errors in the engagement itself).
pub(super) struct Origin<'a> {
    pub engagement: &'a Path,
    pub engagement_text: &'a str,
    /// The engagement's `scope:` origins (besides the target's).
    pub scope: &'a [url::Url],
}

impl Origin<'_> {
    fn invalid(&self, needle: &str, message: String) -> EngagementError {
        EngagementError::Invalid {
            path: self.engagement.to_path_buf(),
            line: line_of(self.engagement_text, needle),
            message,
        }
    }

    /// The line of `key:` inside the `auth_file_identities:` block.
    fn invalid_in_map(&self, key: &str, message: String) -> EngagementError {
        let text = self.engagement_text;
        let from = text.find("auth_file_identities:").unwrap_or(0);
        let line = text[from..]
            .find(&format!("{key}:"))
            .map(|at| text[..from + at].matches('\n').count() + 1)
            .unwrap_or_else(|| line_of(text, "auth_file_identities:"));
        EngagementError::Invalid {
            path: self.engagement.to_path_buf(),
            line,
            message,
        }
    }
}

/// One identity from the auth file and the owner values of its attributes.
pub(super) struct Loaded {
    pub identity: Identity,
    pub attributes: BTreeMap<String, serde_json::Value>,
}

pub(super) fn load(
    origin: &Origin<'_>,
    auth_file: &Path,
    mut roles: BTreeMap<String, RawWfcIdentity>,
    target: &url::Url,
    env: &EnvSource,
    env_values: &mut Vec<Secret>,
) -> Result<Vec<Loaded>, EngagementError> {
    let base_dir = origin.engagement.parent().unwrap_or(Path::new("."));
    let path = base_dir.join(auth_file);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        origin.invalid(
            "auth_file:",
            format!("cannot read auth_file {}: {e}", path.display()),
        )
    })?;
    let doc: WfcDocument = serde_yaml_ng::from_str(&text).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((1, 1));
        EngagementError::Syntax {
            path: path.clone(),
            line,
            column,
            message: if e.to_string().contains("unknown field `createUsers`") {
                format!("{e}: `createUsers` is not part of the Web Fuzzing Commons auth schema (an entry has name, requireMockHandling, fixedHeaders, loginEndpointAuth) and rolegrid creates no users; create them in the target beforehand and give each with `fixedHeaders` or `loginEndpointAuth`")
            } else {
                format!("{e} (a Web Fuzzing Commons auth document)")
            },
        }
    })?;
    let file = WfcFile { path, text };
    if doc.auth.is_empty() {
        return Err(file.invalid("auth:", "the WFC `auth` list is empty".into()));
    }
    let template = doc.auth_template.unwrap_or_default();
    if template.name.is_some() {
        return Err(file.invalid(
            "authTemplate:",
            "`authTemplate` cannot give a `name`".into(),
        ));
    }
    let mut out: Vec<Loaded> = Vec::new();
    for entry in doc.auth {
        let entry = entry.merged(&template);
        let Some(name) = entry.name.clone() else {
            return Err(file.invalid("auth:", "a WFC `auth` entry has no `name`".into()));
        };
        if name.trim().is_empty() {
            return Err(file.invalid("auth:", "a WFC `auth` entry has an empty name".into()));
        }
        if out.iter().any(|l| l.identity.name == name) {
            return Err(file.invalid_at(
                &name,
                "name:",
                format!("WFC entry `{name}` is defined twice"),
            ));
        }
        let Some(given) = roles.remove(&name) else {
            return Err(origin.invalid(
                "auth_file:",
                format!(
                    "WFC entry `{name}` of {} has no role: add `{name}: {{role: ROLE, tenant: TENANT}}` under `auth_file_identities`",
                    file.path.display()
                ),
            ));
        };
        let auth = EntryCx {
            file: &file,
            scope: origin.scope,
            name: &name,
            env,
            env_values: &mut *env_values,
        }
        .auth(entry, &given, target)?;
        out.push(Loaded {
            identity: Identity {
                name,
                tenant: given.tenant,
                role: given.role,
                attributes: given.attributes.clone(),
                auth,
            },
            attributes: given.attributes,
        });
    }
    if let Some(unknown) = roles.keys().next() {
        let names: Vec<&str> = out.iter().map(|l| l.identity.name.as_str()).collect();
        return Err(origin.invalid_in_map(
            unknown,
            format!(
                "auth_file_identities names `{unknown}`, which is no entry of {} (entries: {})",
                file.path.display(),
                names.join(", ")
            ),
        ));
    }
    Ok(out)
}

struct WfcFile {
    path: PathBuf,
    text: String,
}

impl WfcFile {
    fn invalid(&self, needle: &str, message: String) -> EngagementError {
        EngagementError::Invalid {
            path: self.path.clone(),
            line: line_of(&self.text, needle),
            message,
        }
    }

    /// The first `needle` after the entry's `name: <entry>` line.
    fn invalid_at(&self, entry: &str, needle: &str, message: String) -> EngagementError {
        let text = &self.text;
        let from = text
            .find(&format!("name: {entry}"))
            .or_else(|| text.find(&format!("name: \"{entry}\"")))
            .unwrap_or(0);
        let line = text[from..]
            .find(needle)
            .map(|at| text[..from + at].matches('\n').count() + 1)
            .unwrap_or_else(|| text[..from].matches('\n').count() + 1);
        EngagementError::Invalid {
            path: self.path.clone(),
            line,
            message,
        }
    }
}

struct EntryCx<'a> {
    file: &'a WfcFile,
    scope: &'a [url::Url],
    name: &'a str,
    env: &'a EnvSource,
    env_values: &'a mut Vec<Secret>,
}

impl EntryCx<'_> {
    fn invalid(&self, needle: &str, message: String) -> EngagementError {
        self.file.invalid_at(
            self.name,
            needle,
            format!("WFC entry `{}`: {message}", self.name),
        )
    }

    /// `${VAR}` expanded, or an error naming the variable to export.
    fn expand(&mut self, value: &str) -> Result<Secret, EngagementError> {
        expand_env(value, self.env, self.env_values).map_err(|var| {
            self.invalid(
                &format!("${{{var}}}"),
                format!("environment variable `{var}` is not set; export it before running"),
            )
        })
    }

    /// `${VAR}` expanded; the result is a credential (registered for redaction).
    fn secret(&mut self, value: &str) -> Result<Secret, EngagementError> {
        let secret = self.expand(value)?;
        self.env_values.push(secret.clone());
        Ok(secret)
    }

    /// `${VAR}` expanded; not a credential by itself (a username, a field name).
    fn plain(&mut self, value: &str) -> Result<String, EngagementError> {
        Ok(self.expand(value)?.expose().to_string())
    }

    fn header_name(&self, name: &str) -> Result<(), EngagementError> {
        reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map(|_| ())
            .map_err(|_| self.invalid(name, format!("`{name}` is not a valid header name")))
    }

    fn auth(
        mut self,
        entry: WfcEntry,
        given: &RawWfcIdentity,
        target: &url::Url,
    ) -> Result<Auth, EngagementError> {
        if entry.require_mock_handling == Some(true) {
            return Err(self.invalid(
                "requireMockHandling:",
                "`requireMockHandling: true` needs white-box mocks, which rolegrid does not set up"
                    .into(),
            ));
        }
        match (entry.fixed_headers, entry.login_endpoint_auth) {
            (Some(_), Some(_)) => Err(self.invalid(
                "fixedHeaders:",
                "has both `fixedHeaders` and `loginEndpointAuth`; rolegrid takes one credential per identity".into(),
            )),
            (None, None) => Err(self.invalid(
                "name:",
                "needs `fixedHeaders` or `loginEndpointAuth`".into(),
            )),
            (Some(headers), None) => {
                if given.session_cookie.is_some() {
                    return Err(self.invalid(
                        "fixedHeaders:",
                        "`session_cookie` (in auth_file_identities) applies to `expectCookies` logins only".into(),
                    ));
                }
                match headers.as_slice() {
                    [] => Err(self.invalid("fixedHeaders:", "`fixedHeaders` is empty".into())),
                    [one] => {
                        self.header_name(&one.name)?;
                        let value = self.secret(&one.value)?;
                        Ok(Auth::Header {
                            name: one.name.clone(),
                            value,
                        })
                    }
                    many => {
                        let mut out: Vec<(String, Secret)> = Vec::with_capacity(many.len());
                        for header in many {
                            self.header_name(&header.name)?;
                            if out.iter().any(|(n, _)| n.eq_ignore_ascii_case(&header.name)) {
                                return Err(self.invalid(
                                    &header.name,
                                    format!(
                                        "`fixedHeaders` gives `{}` twice; give each header once",
                                        header.name
                                    ),
                                ));
                            }
                            let value = self.secret(&header.value)?;
                            out.push((header.name.clone(), value));
                        }
                        Ok(Auth::Headers(out))
                    }
                }
            }
            (None, Some(login)) => self.login(login, given, target),
        }
    }

    fn login(
        &mut self,
        login: WfcLogin,
        given: &RawWfcIdentity,
        target: &url::Url,
    ) -> Result<Auth, EngagementError> {
        let verb = login.verb.clone().ok_or_else(|| {
            self.invalid(
                "loginEndpointAuth:",
                "`loginEndpointAuth` needs `verb` (POST, GET, PATCH, DELETE or PUT)".into(),
            )
        })?;
        let method = match verb.to_ascii_uppercase().as_str() {
            "POST" | "GET" | "PATCH" | "DELETE" | "PUT" => {
                reqwest::Method::from_bytes(verb.to_ascii_uppercase().as_bytes())
                    .expect("a known method")
            }
            _ => {
                return Err(self.invalid(
                    "verb:",
                    format!("verb `{verb}` is not one of POST, GET, PATCH, DELETE, PUT"),
                ))
            }
        };
        let path = match (&login.endpoint, &login.external_endpoint_url) {
            (Some(_), Some(_)) => {
                return Err(self.invalid(
                    "externalEndpointURL:",
                    "give `endpoint` or `externalEndpointURL`, not both".into(),
                ))
            }
            (None, None) => {
                return Err(self.invalid(
                    "loginEndpointAuth:",
                    "`loginEndpointAuth` needs `endpoint` (a path like /login) or `externalEndpointURL`".into(),
                ))
            }
            (Some(endpoint), None) => {
                let endpoint = self.plain(endpoint)?;
                if !endpoint.starts_with('/') {
                    return Err(self.invalid(
                        "endpoint:",
                        format!("endpoint `{endpoint}` must be a path starting with /"),
                    ));
                }
                endpoint
            }
            (None, Some(url)) => {
                let url = self.plain(url)?;
                self.external_path(&url, target)?
            }
        };
        let mut headers = Vec::new();
        for header in login.headers.clone().unwrap_or_default() {
            self.header_name(&header.name)?;
            let value = self.secret(&header.value)?;
            headers.push((header.name, value));
        }
        let body = self.body(&login)?;
        let mut step = LoginStep {
            method,
            path,
            headers,
            body,
            captures: Vec::new(),
        };
        let cookies = login.expect_cookies == Some(true);
        let session = match (login.token, cookies) {
            (Some(_), true) => {
                return Err(self.invalid(
                    "expectCookies:",
                    "has both `token` and `expectCookies: true`; rolegrid uses one session credential: drop one".into(),
                ))
            }
            (None, false) => {
                return Err(self.invalid(
                    "loginEndpointAuth:",
                    "`loginEndpointAuth` needs `token` or `expectCookies: true`".into(),
                ))
            }
            (None, true) => {
                let Some(cookie) = given.session_cookie.clone() else {
                    return Err(self.invalid(
                        "expectCookies:",
                        format!(
                            "expects cookies, and rolegrid needs to know which one is the session: add `session_cookie: NAME` to `{}` under auth_file_identities",
                            self.name
                        ),
                    ));
                };
                SessionUse::Cookie { name: cookie }
            }
            (Some(token), false) => {
                if given.session_cookie.is_some() {
                    return Err(self.invalid(
                        "token:",
                        "`session_cookie` (in auth_file_identities) applies to `expectCookies` logins only".into(),
                    ));
                }
                let (capture, session) = self.token(token)?;
                step.captures.push(("token".into(), capture));
                session
            }
        };
        Ok(Auth::Login(LoginFlow {
            steps: vec![step],
            session,
            csrf: None,
        }))
    }

    /// An external login URL on the target's origin becomes a path on the target; one on
    /// another origin stays a URL, which the engagement's scope check must then allow.
    fn external_path(&self, url: &str, target: &url::Url) -> Result<String, EngagementError> {
        let parsed = url::Url::parse(url).map_err(|e| {
            self.invalid(
                "externalEndpointURL:",
                format!("externalEndpointURL `{url}` is not a URL ({e})"),
            )
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(self.invalid(
                "externalEndpointURL:",
                format!("externalEndpointURL `{url}` must be http or https"),
            ));
        }
        let base = target.as_str().trim_end_matches('/');
        match parsed.as_str().strip_prefix(base) {
            Some(rest) if parsed.origin() == target.origin() && rest.starts_with('/') => {
                return Ok(rest.to_string());
            }
            _ => {}
        }
        if self.scope.iter().any(|s| s.origin() == parsed.origin()) {
            return Ok(parsed.to_string());
        }
        let origin = parsed.origin().ascii_serialization();
        Err(self.invalid(
            "externalEndpointURL:",
            format!(
                "externalEndpointURL `{url}` is outside the scope (the target {}{}); it would receive credentials, so add `{origin}` to the engagement's `scope:` if you mean it, or use `endpoint` with a path on the target",
                target.origin().ascii_serialization(),
                if self.scope.is_empty() { String::new() } else {
                    format!(" and {}", self.scope.iter().map(|s| s.origin().ascii_serialization()).collect::<Vec<_>>().join(", "))
                }
            ),
        ))
    }

    fn body(&mut self, login: &WfcLogin) -> Result<Option<StepBody>, EngagementError> {
        if login.payload_raw.is_none() && login.payload_user_pwd.is_none() {
            return Ok(None);
        }
        if login.payload_raw.is_some() && login.payload_user_pwd.is_some() {
            return Err(self.invalid(
                "payloadRaw:",
                "give `payloadRaw` or `payloadUserPwd`, not both".into(),
            ));
        }
        let content_type = login.content_type.clone().unwrap_or_default();
        let media = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let json = media == "application/json" || media.ends_with("+json");
        let form = media == "application/x-www-form-urlencoded";
        if !json && !form {
            return Err(self.invalid(
                if login.content_type.is_some() { "contentType:" } else { "loginEndpointAuth:" },
                format!(
                    "contentType `{content_type}`: rolegrid sends login payloads as application/json or application/x-www-form-urlencoded; give one of them"
                ),
            ));
        }
        if let Some(up) = &login.payload_user_pwd {
            let username = self.plain(&up.username)?;
            let password = self.secret(&up.password)?;
            let user_field = self.plain(&up.username_field)?;
            let pass_field = self.plain(&up.password_field)?;
            return Ok(Some(if json {
                let mut map = serde_json::Map::new();
                map.insert(user_field, serde_json::Value::String(username));
                map.insert(
                    pass_field,
                    serde_json::Value::String(password.expose().to_string()),
                );
                StepBody::Json(Secret::new(serde_json::Value::Object(map).to_string()))
            } else {
                StepBody::Form(vec![
                    (user_field, Secret::new(username)),
                    (pass_field, password),
                ])
            }));
        }
        let raw = login.payload_raw.clone().unwrap_or_default();
        if json {
            let value: serde_json::Value = serde_json::from_str(&raw).map_err(|e| {
                self.invalid(
                    "payloadRaw:",
                    format!("payloadRaw is not JSON although contentType is {content_type}: {e}"),
                )
            })?;
            // Every string of a raw payload may be the password: all are credentials.
            let expanded = self.json_secrets(&value)?;
            let expanded = Secret::new(expanded.to_string());
            Ok(Some(StepBody::Json(expanded)))
        } else {
            let mut pairs = Vec::new();
            for (key, value) in url::form_urlencoded::parse(raw.trim().as_bytes()) {
                let value = self.secret(&value)?;
                pairs.push((key.into_owned(), value));
            }
            Ok(Some(StepBody::Form(pairs)))
        }
    }

    fn json_secrets(
        &mut self,
        value: &serde_json::Value,
    ) -> Result<serde_json::Value, EngagementError> {
        Ok(match value {
            serde_json::Value::String(s) => {
                serde_json::Value::String(self.secret(s)?.expose().to_string())
            }
            serde_json::Value::Array(a) => serde_json::Value::Array(
                a.iter()
                    .map(|x| self.json_secrets(x))
                    .collect::<Result<_, _>>()?,
            ),
            serde_json::Value::Object(o) => {
                let mut m = serde_json::Map::new();
                for (k, x) in o {
                    m.insert(k.clone(), self.json_secrets(x)?);
                }
                serde_json::Value::Object(m)
            }
            other => other.clone(),
        })
    }

    fn token(&self, token: WfcToken) -> Result<(Capture, SessionUse), EngagementError> {
        let current = token.extract_from.is_some()
            || token.extract_selector.is_some()
            || token.send_in.is_some()
            || token.send_name.is_some()
            || token.send_template.is_some();
        let legacy = token.extract_from_field.is_some()
            || token.extract_from_header.is_some()
            || token.http_header_name.is_some()
            || token.header_prefix.is_some()
            || token.header_postfix.is_some();
        if current && legacy {
            return Err(self.invalid(
                "token:",
                "`token` mixes extractFrom/extractSelector/send* with the older extractFromField/extractFromHeader/httpHeaderName/headerPrefix; use one set".into(),
            ));
        }
        let capture = if legacy {
            match (token.extract_from_field, token.extract_from_header) {
                (Some(pointer), None) => Capture::Json(self.pointer(&pointer)?),
                (None, Some(header)) => Capture::Header(header),
                _ => {
                    return Err(self.invalid(
                        "token:",
                        "`token` needs exactly one of `extractFromField` (a JSON Pointer) or `extractFromHeader`".into(),
                    ))
                }
            }
        } else {
            let Some(selector) = token.extract_selector.clone() else {
                return Err(self.invalid(
                    "token:",
                    "`token` needs `extractSelector` (a JSON Pointer like /token, or a header name)".into(),
                ));
            };
            match token.extract_from.as_deref() {
                Some("body") => Capture::Json(self.pointer(&selector)?),
                Some("header") => Capture::Header(selector),
                other => {
                    return Err(self.invalid(
                        "token:",
                        format!(
                            "`extractFrom` is `body` or `header`, not `{}`",
                            other.unwrap_or("(missing)")
                        ),
                    ))
                }
            }
        };
        if let Some(send_in) = &token.send_in {
            if send_in != "header" {
                return Err(self.invalid(
                    "sendIn:",
                    format!("sendIn `{send_in}` is not supported: rolegrid sends login tokens in a header"),
                ));
            }
        }
        let name = token
            .send_name
            .or(token.http_header_name)
            .unwrap_or_else(|| "Authorization".into());
        self.header_name(&name)?;
        let template = match token.send_template {
            Some(t) => t,
            None => format!(
                "{}{{token}}{}",
                token.header_prefix.unwrap_or_default(),
                token.header_postfix.unwrap_or_default()
            ),
        };
        if !template.contains("{token}") {
            return Err(self.invalid(
                "sendTemplate:",
                format!("sendTemplate `{template}` must contain {{token}}"),
            ));
        }
        Ok((capture, SessionUse::Header { name, template }))
    }

    fn pointer(&self, pointer: &str) -> Result<String, EngagementError> {
        let path = json_pointer_to_path(pointer).ok_or_else(|| {
            self.invalid(
                pointer,
                format!("`{pointer}` is not a JSON Pointer (RFC 6901); write e.g. /token or /data/access_token"),
            )
        })?;
        super::validate_json_path(&path).map_err(|e| {
            self.invalid(
                pointer,
                format!(
                    "JSON Pointer `{pointer}` gives JSONPath `{path}`, which is not valid: {e}"
                ),
            )
        })?;
        Ok(path)
    }
}

/// RFC 6901 JSON Pointer → JSONPath: `/data/0/access_token` → `$['data'][0]['access_token']`.
/// An all-digit segment is read as an array index. `""` (the whole body) → `$`.
pub fn json_pointer_to_path(pointer: &str) -> Option<String> {
    let mut out = String::from("$");
    if pointer.is_empty() {
        return Some(out);
    }
    let rest = pointer.strip_prefix('/')?;
    for raw in rest.split('/') {
        if raw.contains('~') {
            let ok = raw
                .match_indices('~')
                .all(|(i, _)| matches!(raw.as_bytes().get(i + 1), Some(b'0' | b'1')));
            if !ok {
                return None;
            }
        }
        let segment = raw.replace("~1", "/").replace("~0", "~");
        if !segment.is_empty()
            && segment.bytes().all(|b| b.is_ascii_digit())
            && (segment == "0" || !segment.starts_with('0'))
        {
            out.push_str(&format!("[{segment}]"));
        } else {
            let escaped = segment.replace('\\', "\\\\").replace('\'', "\\'");
            out.push_str(&format!("['{escaped}']"));
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_pointers_become_json_paths() {
        assert_eq!(
            json_pointer_to_path("/token").as_deref(),
            Some("$['token']")
        );
        assert_eq!(
            json_pointer_to_path("/data/0/a~1b~0c").as_deref(),
            Some("$['data'][0]['a/b~c']")
        );
        assert_eq!(json_pointer_to_path("").as_deref(), Some("$"));
        assert_eq!(json_pointer_to_path("token"), None);
        assert_eq!(json_pointer_to_path("/a~2"), None);
        for p in ["/token", "/data/0/x", "/it's"] {
            let path = json_pointer_to_path(p).expect("pointer");
            super::super::validate_json_path(&path).expect("valid JSONPath");
        }
        use jsonpath_rust::JsonPath;
        let body = serde_json::json!({"data": [{"access_token": "t1"}], "it's": "q"});
        let path = json_pointer_to_path("/data/0/access_token").expect("pointer");
        let found = body.query(&path).expect("query");
        assert_eq!(found, vec![&serde_json::json!("t1")]);
        let found = body
            .query(&json_pointer_to_path("/it's").expect("pointer"))
            .expect("query");
        assert_eq!(found, vec![&serde_json::json!("q")]);
    }
}
