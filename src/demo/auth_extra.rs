//! The portal's other ways in, beside `POST /auth/login`: refresh tokens, a form sign-in
//! that opens a CSRF-protected cookie session, logout, an OAuth2 token endpoint
//! (client_credentials for a service client, password and refresh_token grants), HTTP
//! Basic and API keys (header, query or cookie) on every route. All of it is secure in
//! every mode: no planted flaw lives here.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::rejection::FormRejection;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::Rng;
use serde::Deserialize;
use serde_json::json;

use super::data::{unix_now, User};
use super::jwt;
use super::server::{
    authenticate, open_session, presented, user_by_id, ApiError, ApiResult, AppState, JsonBody,
    Presented, Shared, SESSION_COOKIE,
};

/// The cookie that carries a form session's CSRF token (readable by page scripts).
pub const CSRF_COOKIE: &str = "portal_csrf";
/// The header unsafe requests of a form session must repeat the token in.
pub const CSRF_HEADER: &str = "X-CSRF-Token";
/// Where API keys are accepted: this header, the `api_key` query parameter or the
/// `portal_api_key` cookie.
pub const API_KEY_HEADER: &str = "X-Api-Key";
pub const API_KEY_QUERY: &str = "api_key";
pub const API_KEY_COOKIE: &str = "portal_api_key";
/// `POST /auth/login` repeats its bearer token in this response header.
pub const AUTH_TOKEN_HEADER: &str = "X-Auth-Token";
/// The portal's own public OAuth2 client (no secret): the password grant and the refresh
/// tokens of `POST /auth/login` belong to it.
pub const WEB_CLIENT: &str = "portal-web";
/// Refresh tokens outlive access tokens by far; a fixed day is plenty for a demo.
const REFRESH_TTL: Duration = Duration::from_secs(86_400);

/// A machine identity. Its secret (`DemoOptions.passwords[client_id]`) is both its API
/// key and its OAuth2 client secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoService {
    pub id: u64,
    pub client_id: &'static str,
    pub name: &'static str,
    pub role: &'static str,
    pub tenant: Option<&'static str>,
}

/// The seeded services: a reporting integration that acts as staff of `acme`.
pub const SERVICES: &[DemoService] = &[DemoService {
    id: 90,
    client_id: "acme-reports",
    name: "Acme reporting service",
    role: "staff",
    tenant: Some("acme"),
}];

/// Refresh tokens, by token.
#[derive(Default)]
pub(crate) struct AuthState {
    refresh: Mutex<HashMap<String, Refresh>>,
}

struct Refresh {
    principal: u64,
    client: String,
    expires: Instant,
}

impl AuthState {
    /// Revokes the refresh tokens of `principal` (of everyone when `None`).
    pub(crate) fn revoke_refresh(&self, principal: Option<u64>) {
        self.refresh()
            .retain(|_, r| principal.is_some_and(|p| r.principal != p));
    }

    fn refresh(&self) -> MutexGuard<'_, HashMap<String, Refresh>> {
        self.refresh.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// 32 random bytes, URL-safe: session ids, CSRF and refresh tokens.
pub(crate) fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::thread_rng().gen::<[u8; 32]>())
}

/// The user record of a service, for handlers that expect a `User`.
pub(crate) fn service_user(id: u64) -> Option<User> {
    SERVICES.iter().find(|s| s.id == id).map(|s| User {
        id: s.id,
        email: format!("{}@services.portal.test", s.client_id),
        name: s.name.to_string(),
        role: s.role.to_string(),
        tenant_id: s.tenant.map(str::to_string),
    })
}

fn password_ok(state: &AppState, key: &str, given: &str) -> bool {
    state.accounts.password_ok(key, given, &state.secret)
}

/// A user by email and password (case-insensitive email), as every sign-in checks it.
pub(crate) fn user_by_password(state: &AppState, email: &str, password: &str) -> Option<User> {
    let user = state
        .store()
        .users
        .iter()
        .find(|u| u.email.eq_ignore_ascii_case(email.trim()))
        .cloned()?;
    password_ok(state, &user.email, password).then_some(user)
}

fn service_by_secret(
    state: &AppState,
    client_id: &str,
    secret: &str,
) -> Option<&'static DemoService> {
    SERVICES
        .iter()
        .find(|s| s.client_id == client_id)
        .filter(|s| password_ok(state, s.client_id, secret))
}

/// `Authorization: Basic base64(email:password)` → the user's id.
pub(crate) fn basic_user(state: &AppState, encoded: &str) -> Option<u64> {
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (email, password) = decoded.split_once(':')?;
    user_by_password(state, email, password).map(|u| u.id)
}

/// An API key → the id of the service it belongs to.
pub(crate) fn api_key_user(state: &AppState, key: &str) -> Option<u64> {
    SERVICES
        .iter()
        .find(|s| password_ok(state, s.client_id, key))
        .map(|s| s.id)
}

fn issue_refresh(state: &AppState, principal: u64, client: &str) -> String {
    let token = random_token();
    let now = Instant::now();
    let mut refresh = state.auth.refresh();
    refresh.retain(|_, r| r.expires > now);
    refresh.insert(
        token.clone(),
        Refresh {
            principal,
            client: client.to_string(),
            expires: now + REFRESH_TTL,
        },
    );
    token
}

/// Takes a refresh token (rotation: each one works once) if it belongs to `client`.
fn redeem_refresh(state: &AppState, token: &str, client: &str) -> Option<u64> {
    let mut refresh = state.auth.refresh();
    let found = refresh.get(token)?;
    if found.client != client || found.expires <= Instant::now() {
        return None;
    }
    refresh.remove(token).map(|r| r.principal)
}

/// A bearer JWT for `user`, valid for the portal's token TTL.
pub(crate) fn access_token(state: &AppState, user: &User) -> String {
    let iat = unix_now();
    let token = jwt::sign(
        &jwt::Claims {
            sub: user.id.to_string(),
            email: user.email.clone(),
            role: user.role.clone(),
            tenant: user.tenant_id.clone(),
            iat,
            exp: jwt::expiry(iat, state.options.token_ttl),
        },
        &state.jwt_key,
    );
    state.accounts.issued(user.id, &token);
    token
}

/// What `POST /auth/login` adds to its answer: a refresh token for the body and the
/// token repeated in the `X-Auth-Token` header.
pub(crate) fn login_extras(
    state: &AppState,
    user: &User,
    token: &str,
) -> (String, (&'static str, HeaderValue)) {
    let refresh = issue_refresh(state, user.id, WEB_CLIENT);
    let value = HeaderValue::from_str(token).unwrap_or_else(|_| HeaderValue::from_static(""));
    (refresh, (AUTH_TOKEN_HEADER, value))
}

// ---------------------------------------------------------------- refresh and logout

#[derive(Deserialize)]
pub(crate) struct RefreshBody {
    refresh_token: String,
}

/// `POST /auth/refresh`: a refresh token from `/auth/login` → a new bearer token and a
/// new refresh token (the old one stops working).
pub(crate) async fn refresh(
    State(state): State<Shared>,
    JsonBody(body): JsonBody<RefreshBody>,
) -> ApiResult {
    let user = redeem_refresh(&state, &body.refresh_token, WEB_CLIENT)
        .and_then(|id| user_by_id(&state, id))
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "invalid refresh token"))?;
    let token = access_token(&state, &user);
    let refresh_token = issue_refresh(&state, user.id, WEB_CLIENT);
    Ok(Json(json!({
        "token": token,
        "token_type": "Bearer",
        "expires_in": state.options.token_ttl.as_secs(),
        "refresh_token": refresh_token,
    }))
    .into_response())
}

/// `POST /auth/logout`: a cookie session ends (its cookies are cleared); for any caller
/// the refresh tokens it holds are revoked. Bearer tokens are stateless and live out
/// their short TTL.
pub(crate) async fn logout(State(state): State<Shared>, headers: HeaderMap) -> ApiResult {
    let caller = authenticate(&state, &headers)?;
    if let Presented::Session(id) = presented(&headers) {
        state.sessions().remove(id);
    }
    state.auth.refresh().retain(|_, r| r.principal != caller.id);
    let clear = |name: &str| {
        HeaderValue::from_str(&format!("{name}=; Max-Age=0; Path=/"))
            .unwrap_or_else(|_| HeaderValue::from_static(""))
    };
    let mut response = StatusCode::NO_CONTENT.into_response();
    for name in [SESSION_COOKIE, CSRF_COOKIE] {
        response
            .headers_mut()
            .append(header::SET_COOKIE, clear(name));
    }
    Ok(response)
}

// ---------------------------------------------------------------- form session with CSRF

#[derive(Deserialize)]
pub(crate) struct SessionForm {
    email: String,
    password: String,
}

/// `POST /auth/session` (form): opens a cookie session whose unsafe requests must carry
/// `X-CSRF-Token`; the token comes back as the `portal_csrf` cookie, the `X-CSRF-Token`
/// header and `csrf_token` in the body.
pub(crate) async fn session_login(
    State(state): State<Shared>,
    form: Result<Form<SessionForm>, FormRejection>,
) -> ApiResult {
    let Form(form) = form.map_err(|r| ApiError::new(r.status(), r.body_text()))?;
    let user = user_by_password(&state, &form.email, &form.password)
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "invalid credentials"))?;
    let csrf = random_token();
    let session_id = open_session(&state, user.id, Some(csrf.clone()));
    let cookie = |text: String| {
        HeaderValue::from_str(&text)
            .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "session error"))
    };
    let session_cookie = cookie(format!(
        "{SESSION_COOKIE}={session_id}; HttpOnly; Path=/; SameSite=Lax"
    ))?;
    // Not HttpOnly: the page's scripts read it to fill the header (double submit).
    let csrf_cookie = cookie(format!("{CSRF_COOKIE}={csrf}; Path=/; SameSite=Strict"))?;
    let csrf_header = cookie(csrf.clone())?;
    let mut response = Json(json!({ "csrf_token": csrf, "user": user })).into_response();
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, session_cookie);
    headers.append(header::SET_COOKIE, csrf_cookie);
    headers.insert(CSRF_HEADER, csrf_header);
    Ok(response)
}

// ---------------------------------------------------------------- OAuth2 token endpoint

#[derive(Deserialize)]
pub(crate) struct TokenForm {
    grant_type: String,
    client_id: Option<String>,
    client_secret: Option<String>,
    username: Option<String>,
    password: Option<String>,
    refresh_token: Option<String>,
    #[allow(dead_code)] // accepted and ignored: the demo has no scopes
    scope: Option<String>,
}

/// An RFC 6749 §5.2 error answer.
fn oauth_error(status: StatusCode, error: &'static str, description: &'static str) -> Response {
    let body = Json(json!({ "error": error, "error_description": description }));
    if status == StatusCode::UNAUTHORIZED {
        (status, [(header::WWW_AUTHENTICATE, "Basic")], body).into_response()
    } else {
        (status, body).into_response()
    }
}

/// The client behind the request: HTTP Basic (`client_id:client_secret`, each
/// form-urlencoded) or the form's `client_id`/`client_secret`; `None` = `invalid_client`.
fn oauth_client(state: &AppState, headers: &HeaderMap, form: &TokenForm) -> Option<String> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, encoded)| encoded.trim().to_string());
    let (id, secret) = match basic {
        Some(encoded) => {
            let decoded = STANDARD
                .decode(encoded)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())?;
            let (id, secret) = decoded.split_once(':')?;
            let unescape = |s: &str| {
                url::form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            };
            (unescape(id), Some(unescape(secret)))
        }
        None => (form.client_id.clone()?, form.client_secret.clone()),
    };
    match secret {
        None if id == WEB_CLIENT => Some(id),
        Some(secret) if service_by_secret(state, &id, &secret).is_some() => Some(id),
        _ => None,
    }
}

/// `POST /oauth/token` (form): `client_credentials` (services only), `password` (portal
/// users, through any client) and `refresh_token` (for the client it was issued to).
pub(crate) async fn oauth_token(
    State(state): State<Shared>,
    headers: HeaderMap,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "send a form-encoded body with grant_type",
        );
    };
    let Some(client) = oauth_client(&state, &headers, &form) else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "unknown client or wrong secret",
        );
    };
    let user = match form.grant_type.as_str() {
        "client_credentials" => SERVICES
            .iter()
            .find(|s| s.client_id == client)
            .and_then(|s| service_user(s.id))
            .ok_or_else(|| {
                oauth_error(
                    StatusCode::BAD_REQUEST,
                    "unauthorized_client",
                    "a public client cannot use client_credentials",
                )
            }),
        "password" => match (&form.username, &form.password) {
            (Some(username), Some(password)) => user_by_password(&state, username, password)
                .ok_or_else(|| {
                    oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "wrong username or password",
                    )
                }),
            _ => Err(oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "the password grant needs username and password",
            )),
        },
        "refresh_token" => form
            .refresh_token
            .as_deref()
            .and_then(|t| redeem_refresh(&state, t, &client))
            .and_then(|id| user_by_id(&state, id))
            .ok_or_else(|| {
                oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "unknown, used or expired refresh token",
                )
            }),
        _ => Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "use client_credentials, password or refresh_token",
        )),
    };
    let user = match user {
        Ok(user) => user,
        Err(answer) => return answer,
    };
    let access = access_token(&state, &user);
    let refresh = issue_refresh(&state, user.id, &client);
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": state.options.token_ttl.as_secs(),
            "refresh_token": refresh,
        })),
    )
        .into_response()
}

// ---------------------------------------------------------------- middleware

/// Routes that open sessions rather than use them: a stale session cookie sent along
/// must not block a new sign-in.
const CSRF_EXEMPT: &[&str] = &[
    "/auth/login",
    "/auth/session",
    "/auth/refresh",
    "/oauth/token",
];

/// The value of cookie `name` in the request's `Cookie` headers.
pub(super) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (n, v) = pair.trim().split_once('=')?;
            (n == name).then_some(v)
        })
}

/// Runs before every route: an API key from the query or a cookie is moved to the
/// `X-Api-Key` header (so authentication reads one place), and an unsafe request on a
/// CSRF-protected cookie session must repeat the session's token in `X-CSRF-Token`.
/// Requests that authenticate with a header (bearer, Basic, API key) are exempt.
pub(crate) async fn guard(
    State(state): State<Shared>,
    mut request: Request,
    next: Next,
) -> Response {
    if !request.headers().contains_key(API_KEY_HEADER) {
        let from_query = request.uri().query().and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == API_KEY_QUERY)
                .map(|(_, v)| v.into_owned())
        });
        let key =
            from_query.or_else(|| cookie(request.headers(), API_KEY_COOKIE).map(str::to_string));
        if let Some(value) = key.and_then(|k| HeaderValue::from_str(&k).ok()) {
            request.headers_mut().insert(API_KEY_HEADER, value);
        }
    }
    let path = request.uri().path();
    if !request.method().is_safe() && !CSRF_EXEMPT.contains(&path) {
        if let Presented::Session(id) = presented(request.headers()) {
            let expected = state
                .sessions()
                .get(id)
                .filter(|s| s.expires > Instant::now())
                .and_then(|s| s.csrf.clone());
            if let Some(expected) = expected {
                let sent = request
                    .headers()
                    .get(CSRF_HEADER)
                    .and_then(|v| v.to_str().ok());
                if !sent.is_some_and(|s| jwt::secrets_equal(s, &expected, &state.secret)) {
                    return ApiError::new(StatusCode::FORBIDDEN, "csrf token missing or wrong")
                        .into_response();
                }
            }
        }
    }
    next.run(request).await
}
