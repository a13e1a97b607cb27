//! The demo portal's security posture: its planted posture flaws ([`POSTURE_FLAWS`]) and
//! the outermost middleware that plants them or, with each off, serves the secure twin
//! (nosniff, `frame-ancestors 'none'`, `Cache-Control: no-store`, no version banner,
//! strict session cookies, plain errors, no CORS grant to unknown origins). Kept apart
//! from the handlers so the authorization flaws stay where they are.

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::server::Shared;
use super::FlawInfo;

/// Planted posture weaknesses; `attack` is the posture check that finds each one (the
/// `check` of a row in the report's `posture` section). All on by default; the two the
/// opt-in checks find are listed in [`OPT_IN_CHECK_FLAWS`].
pub const POSTURE_FLAWS: &[FlawInfo] = &[
    FlawInfo {
        id: "no-nosniff",
        operation: "*",
        attack: "missing-nosniff",
        description: "answers carry no `X-Content-Type-Options: nosniff`",
    },
    FlawInfo {
        id: "framing-allowed",
        operation: "*",
        attack: "missing-frame-protection",
        description: "answers carry neither `frame-ancestors` nor `X-Frame-Options`",
    },
    FlawInfo {
        id: "auth-cacheable",
        operation: "*",
        attack: "cacheable-authenticated",
        description: "authenticated answers say `Cache-Control: private, max-age=600`, \
                      not `no-store`",
    },
    FlawInfo {
        id: "version-banner",
        operation: "*",
        attack: "version-disclosure",
        description: "`Server: PortalServer/2.4.1` and `X-Powered-By: Express/4.17.1`",
    },
    FlawInfo {
        id: "session-cookie-weak",
        operation: "POST /auth/login",
        attack: "session-cookie",
        description: "the session cookie lacks HttpOnly and SameSite and lives 30 days",
    },
    FlawInfo {
        id: "debug-error-pages",
        operation: "*",
        attack: "error-disclosure",
        description: "server errors and unknown routes answer with a Python traceback and \
                      server file paths",
    },
    FlawInfo {
        id: "storage-key-header",
        operation: "GET /files",
        attack: "secret-in-response",
        description: "file answers carry the storage's AWS access key id in `X-Storage-Key`",
    },
    FlawInfo {
        id: "token-echo",
        operation: "*",
        attack: "credential-echo",
        description: "every bearer request's token comes back in `X-Debug-Session`",
    },
    FlawInfo {
        id: "user-password-hash",
        operation: "*",
        attack: "password-in-object",
        description: "every user object served (admin list, profile, accounts) includes a \
                      bcrypt `password_hash`",
    },
    FlawInfo {
        id: "cors-reflect-origin",
        operation: "*",
        attack: "cors",
        description: "any `Origin` is reflected with `Access-Control-Allow-Credentials: true`, \
                      preflights too",
    },
    FlawInfo {
        id: "no-hsts",
        operation: "*",
        attack: "missing-hsts",
        description: "no `Strict-Transport-Security` (found when the portal is served over \
                      https, as in the tests)",
    },
    FlawInfo {
        id: "logout-keeps-token",
        operation: "POST /auth/logout",
        attack: "session-after-logout",
        description: "a logout ends cookie sessions but leaves the bearer token valid \
                      (found when the engagement opts in to `posture: logout:`)",
    },
    FlawInfo {
        id: "password-change-keeps-token",
        operation: "PUT /accounts/{accountId}/password",
        attack: "session-after-password-change",
        description: "a password change leaves the user's bearer tokens valid (found when \
                      the engagement opts in to `posture: password_change:`)",
    },
    FlawInfo {
        id: "login-no-rate-limit",
        operation: "POST /auth/login",
        attack: "no-login-rate-limit",
        description: "failed logins are never limited; securely, ten within a minute \
                      answer 429 (found when the engagement opts in to `posture: login_burst:`)",
    },
    FlawInfo {
        id: "role-claim-trusted",
        operation: "PUT /admin/users/{userId}/role",
        attack: "session-after-role-change",
        description: "a token keeps the role it was issued with: after a demotion the old \
                      token still gets what the old role got (found when the engagement \
                      opts in to `posture: role_change:`)",
    },
    FlawInfo {
        id: "export-no-rate-limit",
        operation: "GET /export/invoices.csv",
        attack: "no-rate-limit",
        description: "exports are never limited; securely, a caller's 21st export within a \
                      minute answers 429 (found when the engagement opts in to \
                      `posture: operation_bursts:`)",
    },
    FlawInfo {
        id: "debug-route",
        operation: "GET /debug",
        attack: "undocumented-route",
        description: "an undocumented `GET /debug` answers anyone with build details",
    },
];

/// Flaws only an opt-in posture check (`logout:`, `password_change:`, `login_burst:`,
/// `role_change:`, `operation_bursts:`) finds.
pub const OPT_IN_CHECK_FLAWS: &[&str] = &[
    "logout-keeps-token",
    "password-change-keeps-token",
    "login-no-rate-limit",
    "role-claim-trusted",
    "export-no-rate-limit",
];

/// Flaws only a scan of the portal served over https finds.
pub const HTTPS_ONLY_FLAWS: &[&str] = &["no-hsts"];

/// Failed logins within [`LOGIN_WINDOW`] after which the secure portal answers 429.
const LOGIN_FAILURES_ALLOWED: usize = 10;
const LOGIN_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

/// Exports one caller (one credential) is served within [`LOGIN_WINDOW`] before the
/// secure portal answers 429: well above what a scan sends, well below a scrape.
const EXPORTS_ALLOWED: usize = 20;
const EXPORT_PATH: &str = "/export/invoices.csv";

/// The well-known example key from AWS's documentation: matches the key format, opens
/// nothing.
const EXAMPLE_AWS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";

/// The message of the portal's answer to a path no route serves.
pub(crate) const NO_SUCH_ROUTE: &str = "no such route";

const TRACE: &str = "Traceback (most recent call last):\n  File \"/srv/portal/app/views.py\", line 214, in dispatch\n    return handler(request)\nPermissionError: see above";

/// Wraps every answer of the portal: plants the posture flaws that are on, serves the
/// secure behaviour for the others.
pub(crate) async fn layer(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let on = |id: &str| state.options.has(id);
    let origin = request.headers().get(header::ORIGIN).cloned();
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .filter(|v| v.as_bytes().starts_with(b"Bearer "))
        .cloned();
    let path = request.uri().path().to_string();
    let get = request.method() == Method::GET;
    if on("cors-reflect-origin") && request.method() == Method::OPTIONS && origin.is_some() {
        let mut response = StatusCode::NO_CONTENT.into_response();
        cors(&mut response, origin.as_ref());
        return secure_headers(&state, response);
    }
    if on("debug-route") && get && path == "/debug" {
        let body = serde_json::json!({"debug": true, "build": "2026.12.1", "workers": 4});
        return secure_headers(&state, axum::Json(body).into_response());
    }
    let login = request.method() == Method::POST && path == "/auth/login";
    let limited = login && !on("login-no-rate-limit");
    if limited && recent_failures(&state, false) >= LOGIN_FAILURES_ALLOWED {
        let response = (StatusCode::TOO_MANY_REQUESTS, "too many failed logins").into_response();
        return secure_headers(&state, response);
    }
    // Keyed by the credential as sent: each session has its own budget.
    let export_caller = (get && path == EXPORT_PATH && !on("export-no-rate-limit"))
        .then(|| caller_key(request.headers()));
    if let Some(caller) = &export_caller {
        if recent_exports(&state, caller, false) >= EXPORTS_ALLOWED {
            let response = (StatusCode::TOO_MANY_REQUESTS, "too many exports").into_response();
            return secure_headers(&state, response);
        }
    }
    let logout = request.method() == Method::POST && path == "/auth/logout";
    // FLAW password-change-keeps-token: the tokens a password change revokes are made
    // valid again (noted before, re-issued after).
    let changed_user = (on("password-change-keeps-token")
        && request.method() == Method::PUT
        && path.starts_with("/accounts/")
        && path.ends_with("/password"))
    .then(|| path.split('/').nth(2)?.parse::<u64>().ok())
    .flatten();
    let kept = changed_user.map(|user| (user, state.accounts.issued_to(user)));
    let mut response = next.run(request).await;
    if let (Some((user, tokens)), true) = (kept, response.status().is_success()) {
        for token in tokens {
            state.accounts.issued(user, &token);
        }
    }
    if limited && response.status() == StatusCode::UNAUTHORIZED {
        recent_failures(&state, true);
    }
    if let (Some(caller), true) = (&export_caller, response.status().is_success()) {
        recent_exports(&state, caller, true);
    }
    // Securely, a logout revokes the bearer token it was sent with too; FLAW
    // logout-keeps-token leaves it valid until it expires.
    if let (true, false, Some(token)) = (logout, on("logout-keeps-token"), bearer.as_ref()) {
        if response.status().is_success() {
            if let Some(token) = token.to_str().ok().and_then(|t| t.strip_prefix("Bearer ")) {
                state.accounts.revoke(token);
            }
        }
    }
    if on("cors-reflect-origin") {
        cors(&mut response, origin.as_ref());
    }
    if let (true, Some(token)) = (on("token-echo"), bearer) {
        response
            .headers_mut()
            .insert(HeaderName::from_static("x-debug-session"), token);
    }
    if on("storage-key-header") && path.starts_with("/files") {
        response.headers_mut().insert(
            HeaderName::from_static("x-storage-key"),
            HeaderValue::from_static(EXAMPLE_AWS_KEY),
        );
    }
    if on("session-cookie-weak") {
        weaken_session_cookie(&mut response);
    } else {
        secure_session_cookie(&mut response);
    }
    let status = response.status();
    let hashes = on("user-password-hash") && get && status.is_success();
    // Server errors and unknown routes only: a trace on every refusal would make the
    // refusals of existing and missing objects differ, which is another flaw.
    let trace = on("debug-error-pages") && status.as_u16() >= 400;
    if hashes || trace {
        response = rewrite_json(response, |json| {
            let Some(o) = json.as_object_mut() else {
                return add_password_hashes(json);
            };
            let unknown_route = o.get("error").is_some_and(|e| e == NO_SUCH_ROUTE);
            if trace && (status.is_server_error() || unknown_route) {
                o.insert("trace".into(), TRACE.into());
            }
            if hashes {
                add_password_hashes(json);
            }
        })
        .await;
    }
    secure_headers(&state, response)
}

/// Failed logins within the window (older ones forgotten), after noting one if `failed`.
fn recent_failures(state: &Shared, failed: bool) -> usize {
    let mut failures = state
        .login_failures
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    within_window(&mut failures, failed)
}

/// Exports served to `caller` within the window, after noting one if `served`.
fn recent_exports(state: &Shared, caller: &str, served: bool) -> usize {
    let mut exports = state
        .exports
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    within_window(exports.entry(caller.to_string()).or_default(), served)
}

/// Forgets the events older than the window, notes one now if `add`, and counts them.
fn within_window(events: &mut std::collections::VecDeque<std::time::Instant>, add: bool) -> usize {
    let now = std::time::Instant::now();
    while events
        .front()
        .is_some_and(|at| now.duration_since(*at) > LOGIN_WINDOW)
    {
        events.pop_front();
    }
    if add {
        events.push_back(now);
    }
    events.len()
}

/// The credential a request presents (its `Authorization`, API key or cookies), as the
/// key of a per-caller limit; empty for none.
fn caller_key(headers: &axum::http::HeaderMap) -> String {
    [
        header::AUTHORIZATION.as_str(),
        "x-api-key",
        header::COOKIE.as_str(),
    ]
    .iter()
    .filter_map(|name| headers.get(*name))
    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    .collect::<Vec<_>>()
    .join("\n")
}

fn cors(response: &mut Response, origin: Option<&HeaderValue>) {
    let Some(origin) = origin else { return };
    let headers = response.headers_mut();
    // FLAW cors-reflect-origin: whatever site asks is trusted, with credentials.
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, PUT, PATCH, DELETE"),
    );
}

fn secure_headers(state: &Shared, mut response: Response) -> Response {
    let on = |id: &str| state.options.has(id);
    let headers = response.headers_mut();
    if !on("no-nosniff") {
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
    }
    if !on("framing-allowed") {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        );
    }
    // Every answer, authenticated or not: nothing the portal serves is for a shared cache.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if on("auth-cacheable") {
            "private, max-age=600"
        } else {
            "no-store"
        }),
    );
    if !on("no-hsts") {
        // Browsers ignore it over plain http; over https it pins the scheme for a year.
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    if on("version-banner") {
        headers.insert(
            header::SERVER,
            HeaderValue::from_static("PortalServer/2.4.1"),
        );
        headers.insert(
            HeaderName::from_static("x-powered-by"),
            HeaderValue::from_static("Express/4.17.1"),
        );
    }
    response
}

/// The secure twin's session cookie also carries `Secure` (browsers treat http on
/// localhost as secure, so the plain-http demo keeps working).
fn secure_session_cookie(response: &mut Response) {
    rewrite_session_cookie(response, |line| {
        (!line.contains("; Secure")).then(|| format!("{line}; Secure"))
    });
}

/// FLAW session-cookie-weak: the session cookie loses HttpOnly, SameSite and Secure, and
/// persists for 30 days.
fn weaken_session_cookie(response: &mut Response) {
    rewrite_session_cookie(response, |line| {
        let (pair, _) = line.split_once(';')?;
        Some(format!("{pair}; Path=/; Max-Age=2592000"))
    });
}

/// Rewrites the session cookie's `Set-Cookie` lines (not the ones that clear it) with
/// `edit`, which may leave a line as it is by answering `None`.
fn rewrite_session_cookie(response: &mut Response, edit: impl Fn(&str) -> Option<String>) {
    let prefix = format!("{}=", super::server::SESSION_COOKIE);
    let lines: Vec<HeaderValue> = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .cloned()
        .collect();
    if !lines
        .iter()
        .any(|v| v.to_str().is_ok_and(|t| t.starts_with(&prefix)))
    {
        return;
    }
    response.headers_mut().remove(header::SET_COOKIE);
    for line in lines {
        let text = line.to_str().unwrap_or_default();
        let edited = (text.starts_with(&prefix) && !text.contains("Max-Age=0"))
            .then(|| edit(text))
            .flatten()
            .and_then(|t| HeaderValue::from_str(&t).ok());
        response
            .headers_mut()
            .append(header::SET_COOKIE, edited.unwrap_or(line));
    }
}

/// FLAW user-password-hash: every user object gets a (made-up) bcrypt hash.
fn add_password_hashes(json: &mut serde_json::Value) {
    match json {
        serde_json::Value::Array(items) => items.iter_mut().for_each(add_password_hashes),
        serde_json::Value::Object(o) if o.contains_key("email") && o.contains_key("role") => {
            let id = o.get("id").and_then(serde_json::Value::as_u64).unwrap_or(0);
            o.insert(
                "password_hash".into(),
                format!("$2b$12${id:0>22}KQ9uyLlG1dWp0mJq7QeS1oHk2vGZk3N").into(),
            );
        }
        serde_json::Value::Object(o) => o.values_mut().for_each(add_password_hashes),
        _ => {}
    }
}

/// Re-renders a JSON answer after `edit`; other answers pass unchanged.
async fn rewrite_json(response: Response, edit: impl FnOnce(&mut serde_json::Value)) -> Response {
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, 4 << 20).await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "body too large").into_response();
    };
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    edit(&mut value);
    let text = value.to_string();
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_planted_hash_is_a_bcrypt_hash() {
        let mut users = serde_json::json!([{"id": 7, "email": "a@b.c", "role": "client"}]);
        add_password_hashes(&mut users);
        let hash = users[0]["password_hash"].as_str().unwrap_or("");
        assert!(hash.starts_with("$2b$12$") && hash.len() == 60, "{hash}");
    }

    #[test]
    fn posture_flaw_ids_do_not_clash_with_authorization_flaws() {
        for flaw in POSTURE_FLAWS {
            assert!(
                !super::super::FLAWS.iter().any(|f| f.id == flaw.id),
                "{}",
                flaw.id
            );
        }
    }
}
