//! The demo portal's HTTP layer: shared state, authentication (bearer JWT or session
//! cookie), one handler per route, the planted flaws, and the router built from `ROUTES`.
//! The steps handlers share are here once: the `Caller`, `Admin`, `PathId` and `JsonBody`
//! extractors, `find`/`position` (a record or 404) and `tenant_check` (the check a planted
//! flaw skips).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get, patch, post, put, MethodRouter};
use axum::{Json, Router};
use rand::Rng;
use serde::Deserialize;
use serde_json::json;

use super::data::{
    now_rfc3339, unix_now, visible, visible_records, Note, Numbered, Owned, Store, Ticket, User,
};
use super::{accounts, auth_extra, jwt, DemoOptions, ROUTES};

pub(crate) type Shared = Arc<AppState>;

/// The session cookie's name, as declared in the spec's `cookieAuth` scheme.
pub(crate) const SESSION_COOKIE: &str = "portal_session";

/// The key of FLAW jwt-weak-secret: jwt.io's sample key, which tutorials paste.
const WEAK_JWT_KEY: &[u8] = b"your-256-bit-secret";

/// Stands in for "forever" when a configured TTL overflows `Instant`.
const FAR_FUTURE: Duration = Duration::from_secs(100 * 365 * 86_400);

/// The longest search text accepted, as the spec's `maxLength` says.
const MAX_QUERY_CHARS: usize = 200;

pub(crate) struct AppState {
    pub(crate) options: DemoOptions,
    /// Random per server start: the key of password comparisons, and of tokens unless
    /// `jwt-weak-secret` is on.
    pub(crate) secret: [u8; 32],
    /// The HS256 key tokens are signed and verified with. FLAW jwt-weak-secret: a
    /// framework's placeholder key left in production; securely, `secret` (random).
    pub(crate) jwt_key: Vec<u8>,
    store: Mutex<Store>,
    sessions: Mutex<HashMap<String, Session>>,
    pub(crate) auth: auth_extra::AuthState,
    /// Passwords and revoked tokens: they change at run time (password change, reset).
    pub(crate) accounts: accounts::Accounts,
    /// When recent logins failed: the login rate limit (see `posture.rs`).
    pub(crate) login_failures: Mutex<std::collections::VecDeque<Instant>>,
    /// When each caller's recent exports were served: the export rate limit (`posture.rs`).
    pub(crate) exports: Mutex<HashMap<String, std::collections::VecDeque<Instant>>>,
    /// The chaos layer's counters, when `options.chaos` is set.
    pub(crate) chaos: Option<super::chaos::ChaosState>,
}

pub(crate) struct Session {
    pub(crate) user_id: u64,
    pub(crate) expires: Instant,
    /// Set for form sessions (`POST /auth/session`): unsafe requests must repeat it.
    pub(crate) csrf: Option<String>,
}

impl AppState {
    pub(crate) fn new(options: DemoOptions) -> Self {
        let secret: [u8; 32] = rand::thread_rng().gen();
        let jwt_key = if options.has("jwt-weak-secret") {
            WEAK_JWT_KEY.to_vec()
        } else {
            secret.to_vec()
        };
        AppState {
            secret,
            jwt_key,
            store: Mutex::new(Store::seed()),
            sessions: Mutex::new(HashMap::new()),
            auth: Default::default(),
            accounts: accounts::Accounts::new(&options.passwords),
            login_failures: Mutex::new(Default::default()),
            exports: Mutex::new(HashMap::new()),
            chaos: options.chaos.as_ref().map(|_| Default::default()),
            options,
        }
    }

    // A handler that panicked mid-update cannot leave the store half-written in a way that
    // matters for a demo, so a poisoned lock is simply taken over.
    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn sessions(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn flaw(&self, id: &str) -> bool {
        self.options.has(id)
    }
}

/// An error answer: a status and `{"error": message}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: Cow<'static, str>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<Cow<'static, str>>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }
    fn unauthenticated() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "authentication required")
    }
    pub(crate) fn forbidden() -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden")
    }
    pub(crate) fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not found")
    }
    fn unprocessable(message: &'static str) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({ "error": self.message }));
        if self.status == StatusCode::UNAUTHORIZED {
            let challenge = [(header::WWW_AUTHENTICATE, "Bearer")];
            (self.status, challenge, body).into_response()
        } else {
            (self.status, body).into_response()
        }
    }
}

// Extractor rejections become JSON errors with axum's status (400, 415, 422) and message,
// so clients always get the same error shape.
impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        Self::new(rejection.status(), rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::new(rejection.status(), rejection.body_text())
    }
}

pub(crate) type ApiResult<T = Response> = Result<T, ApiError>;

/// A JSON body whose rejection is answered in the portal's error shape, for handlers
/// that read the body before anything else; the others take `Result<Json<T>, _>` and
/// judge it in their own order.
#[derive(FromRequest)]
#[from_request(via(Json), rejection(ApiError))]
pub(crate) struct JsonBody<T>(pub(crate) T);

/// What the request presented as credentials, before any checking.
pub(crate) enum Presented<'a> {
    Nothing,
    Bearer(&'a str),
    /// `Authorization: Basic …`, still base64-encoded.
    Basic(&'a str),
    /// `X-Api-Key` (query and cookie keys are moved there by `auth_extra::guard`).
    ApiKey(&'a str),
    /// An `Authorization` header that is not a bearer token.
    Malformed,
    Session(&'a str),
}

pub(crate) fn presented(headers: &HeaderMap) -> Presented<'_> {
    // An Authorization header, when present, decides alone: a bad token is not rescued by
    // a cookie, as in most real APIs.
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let Ok(value) = value.to_str() else {
            return Presented::Malformed;
        };
        return match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
                Presented::Bearer(token.trim())
            }
            Some((scheme, encoded)) if scheme.eq_ignore_ascii_case("basic") => {
                Presented::Basic(encoded.trim())
            }
            _ => Presented::Malformed,
        };
    }
    if let Some(key) = headers.get(auth_extra::API_KEY_HEADER) {
        return key.to_str().map_or(Presented::Malformed, Presented::ApiKey);
    }
    auth_extra::cookie(headers, SESSION_COOKIE).map_or(Presented::Nothing, Presented::Session)
}

/// A user or a service by id, as credentials name it.
pub(crate) fn user_by_id(state: &AppState, id: u64) -> Option<User> {
    let user = state.store().users.iter().find(|u| u.id == id).cloned();
    user.or_else(|| auth_extra::service_user(id))
}

/// The caller behind verified credentials, or 401.
pub(crate) fn authenticate(state: &AppState, headers: &HeaderMap) -> ApiResult<User> {
    // FLAW role-claim-trusted: the role of a token the portal issued is read from its
    // claim, as it was at login, so a demoted user's old token keeps the old role.
    // Securely, the role is the stored one, read at every request.
    let mut claimed_role = None;
    let user_id = match presented(headers) {
        Presented::Bearer(token) if state.accounts.is_revoked(token) => None,
        Presented::Bearer(token) => {
            jwt::verify(token, &state.jwt_key, unix_now()).and_then(|claims| {
                let id = claims.sub.parse::<u64>().ok()?;
                if state.flaw("role-claim-trusted")
                    && state.accounts.issued_to(id).iter().any(|t| t == token)
                {
                    claimed_role = Some(claims.role);
                }
                Some(id)
            })
        }
        Presented::Session(id) => {
            let mut sessions = state.sessions();
            match sessions.get(id) {
                Some(session) if session.expires > Instant::now() => Some(session.user_id),
                Some(_) => {
                    sessions.remove(id);
                    None
                }
                None => None,
            }
        }
        Presented::Basic(encoded) => auth_extra::basic_user(state, encoded),
        Presented::ApiKey(key) => auth_extra::api_key_user(state, key),
        Presented::Nothing | Presented::Malformed => None,
    };
    let mut user = user_id
        .and_then(|id| user_by_id(state, id))
        .ok_or_else(ApiError::unauthenticated)?;
    if let Some(role) = claimed_role {
        user.role = role;
    }
    Ok(user)
}

/// Ids in paths are parsed by hand so that a non-integer id is "not found", like a
/// missing one, rather than a 400 that tells a prober the id format.
fn path_id(path: Result<Path<String>, PathRejection>) -> ApiResult<u64> {
    path.ok()
        .and_then(|Path(raw)| raw.parse::<u64>().ok())
        .ok_or_else(ApiError::not_found)
}

/// The caller, authenticated as [`authenticate`] does, for handlers that take it as an
/// extractor: it runs before the handler body, so a 401 still comes before anything else.
pub(crate) struct Caller(pub(crate) User);

impl FromRequestParts<Shared> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> ApiResult<Self> {
        authenticate(state, &parts.headers).map(Caller)
    }
}

/// Proof that the caller is a platform admin, for the admin routes with no planted flaw,
/// whose role check comes first: 401 without valid credentials, then 403 for any other role.
pub(crate) struct Admin;

impl FromRequestParts<Shared> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> ApiResult<Self> {
        let user = authenticate(state, &parts.headers)?;
        if user.role != "admin" {
            return Err(ApiError::forbidden());
        }
        Ok(Admin)
    }
}

/// The record id of the route's path, parsed as [`path_id`] does. Handlers take it after
/// `Caller` or `Admin`, so a bad id is judged only once the caller is.
pub(crate) struct PathId(pub(crate) u64);

impl FromRequestParts<Shared> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> ApiResult<Self> {
        path_id(Path::from_request_parts(parts, state).await).map(PathId)
    }
}

/// Record `id` of `records`, or "not found".
pub(crate) fn find<T: Numbered>(records: &[T], id: u64) -> ApiResult<&T> {
    records
        .iter()
        .find(|r| r.id() == id)
        .ok_or_else(ApiError::not_found)
}

fn find_mut<T: Numbered>(records: &mut [T], id: u64) -> ApiResult<&mut T> {
    records
        .iter_mut()
        .find(|r| r.id() == id)
        .ok_or_else(ApiError::not_found)
}

/// Where record `id` stands in `records`, for routes that remove it or must let go of
/// the borrow; "not found" when it is missing.
fn position<T: Numbered>(records: &[T], id: u64) -> ApiResult<usize> {
    records
        .iter()
        .position(|r| r.id() == id)
        .ok_or_else(ApiError::not_found)
}

/// The tenant check of a route whose planted flaw `flaw` skips it. Securely a record the
/// caller may not see is refused with `denial`: "not found" on most routes, like a
/// missing record, so that nobody learns which ids exist.
fn tenant_check(
    state: &AppState,
    flaw: &str,
    caller: &User,
    record: &impl Owned,
    denial: fn() -> ApiError,
) -> ApiResult<()> {
    if state.flaw(flaw) || visible(caller, record) {
        Ok(())
    } else {
        Err(denial())
    }
}

pub(crate) fn list<T: serde::Serialize>(items: Vec<T>) -> Response {
    let total = items.len();
    Json(json!({ "items": items, "total": total })).into_response()
}

// ---------------------------------------------------------------- auth

#[derive(Deserialize)]
struct LoginBody {
    email: String,
    password: String,
}

async fn login(State(state): State<Shared>, JsonBody(body): JsonBody<LoginBody>) -> ApiResult {
    let Some(user) = auth_extra::user_by_password(&state, &body.email, &body.password) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid credentials",
        ));
    };
    let token = auth_extra::access_token(&state, &user);
    let session_id = open_session(&state, user.id, None);
    let cookie = format!("{SESSION_COOKIE}={session_id}; HttpOnly; Path=/; SameSite=Lax");
    let cookie = HeaderValue::from_str(&cookie)
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "session error"))?;
    let (refresh_token, token_header) = auth_extra::login_extras(&state, &user, &token);
    let body = json!({
        "token": token,
        "token_type": "Bearer",
        "expires_in": state.options.token_ttl.as_secs(),
        "refresh_token": refresh_token,
        "user": user,
    });
    Ok(([(header::SET_COOKIE, cookie)], [token_header], Json(body)).into_response())
}

/// Opens a cookie session for `user_id` that lasts the portal's token TTL and returns its
/// id; `csrf` is set for form sessions, whose unsafe requests must repeat it.
pub(crate) fn open_session(state: &AppState, user_id: u64, csrf: Option<String>) -> String {
    let session_id = auth_extra::random_token();
    let now = Instant::now();
    let mut sessions = state.sessions();
    // Expired sessions are swept on sign-in so a long scan cannot grow the map forever.
    sessions.retain(|_, session| session.expires > now);
    sessions.insert(
        session_id.clone(),
        Session {
            user_id,
            // A TTL too large for the clock means "never expires" rather than a panic.
            expires: now
                .checked_add(state.options.token_ttl)
                .unwrap_or(now + FAR_FUTURE),
            csrf,
        },
    );
    session_id
}

async fn me(State(state): State<Shared>, headers: HeaderMap) -> ApiResult {
    if state.flaw("jwt-unverified") {
        if let Presented::Bearer(token) = presented(&headers) {
            // FLAW jwt-unverified: trusts whatever `sub` the payload claims.
            return jwt::decode_unverified(token)
                .and_then(|id| user_by_id(&state, id))
                .map(|user| me_page(&user))
                .ok_or_else(ApiError::unauthenticated);
        }
    }
    let user = authenticate(&state, &headers)?;
    Ok(me_page(&user))
}

/// The caller's profile with a fresh `render_id` nonce on every answer: a volatile field
/// no name list knows, so the judge must learn it from two baselines to see that a
/// forged token got the same profile.
fn me_page(user: &User) -> Response {
    let mut body = serde_json::to_value(user).unwrap_or_default();
    if let Some(o) = body.as_object_mut() {
        let nonce: String = rand::thread_rng()
            .sample_iter(&rand::distributions::Alphanumeric)
            .take(24)
            .map(char::from)
            .collect();
        o.insert("render_id".into(), json!(nonce));
    }
    Json(body).into_response()
}

// ---------------------------------------------------------------- invoices

/// Invoices come a page at a time: the default page is small on purpose, so the seed data
/// spans pages and a scanner must follow the `Link: <…>; rel="next"` header.
const INVOICE_PAGE: usize = 2;

/// The `page` and `limit` of `GET /invoices`, checked before any invoice is read.
struct Paging {
    page: usize,
    limit: usize,
}

impl FromRequestParts<Shared> for Paging {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> ApiResult<Self> {
        let Query(query) = Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(ApiError::from)?;
        let number = |name: &str, default: usize, max: usize| -> ApiResult<usize> {
            match query.get(name) {
                None => Ok(default),
                Some(raw) => raw
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=max).contains(n))
                    .ok_or_else(|| {
                        ApiError::new(
                            StatusCode::BAD_REQUEST,
                            format!("`{name}` must be an integer from 1 to {max}"),
                        )
                    }),
            }
        };
        Ok(Paging {
            page: number("page", 1, 1_000_000)?,
            limit: number("limit", INVOICE_PAGE, 100)?,
        })
    }
}

async fn list_invoices(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Paging { page, limit }: Paging,
) -> ApiResult {
    let visible_items = visible_records(&caller, &state.store().invoices);
    let total = visible_items.len();
    let items: Vec<_> = visible_items
        .into_iter()
        .skip((page - 1).saturating_mul(limit))
        .take(limit)
        .collect();
    let body = Json(json!({ "items": items, "total": total, "page": page, "limit": limit }));
    if page.saturating_mul(limit) < total {
        let next = format!("</invoices?page={}&limit={limit}>; rel=\"next\"", page + 1);
        if let Ok(value) = HeaderValue::from_str(&next) {
            return Ok(([(header::LINK, value)], body).into_response());
        }
    }
    Ok(body.into_response())
}

async fn get_invoice(
    State(state): State<Shared>,
    Caller(caller): Caller,
    PathId(id): PathId,
) -> ApiResult {
    let store = state.store();
    let invoice = find(&store.invoices, id)?;
    // FLAW invoice-read-bola skips the check; securely, a foreign invoice is "not found".
    tenant_check(
        &state,
        "invoice-read-bola",
        &caller,
        invoice,
        ApiError::not_found,
    )?;
    Ok(Json(invoice).into_response())
}

/// An invoice as receipts and statements show it.
fn invoice_summary(invoice: &super::data::Invoice) -> serde_json::Value {
    json!({
        "id": invoice.id,
        "number": invoice.number,
        "customer": invoice.customer,
        "amount_cents": invoice.amount_cents,
        "currency": invoice.currency,
        "status": invoice.status,
    })
}

/// A receipt for one invoice. FLAW id-encoding-bypass: the guard (written for a
/// string-keyed cache of receipts) looks the raw path text up among invoice ids as text
/// and, finding none, lets the request through; the lookup then parses the text as a
/// number, so `02001` slips past the guard and loads invoice 2001. Securely, the guard
/// judges the invoice the lookup found, whatever the spelling.
async fn invoice_receipt(
    State(state): State<Shared>,
    Caller(caller): Caller,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let Ok(Path(raw)) = path else {
        return Err(ApiError::not_found());
    };
    let store = state.store();
    let bypass = state.flaw("id-encoding-bypass");
    if bypass {
        let by_text = store.invoices.iter().find(|i| i.id.to_string() == raw);
        if by_text.is_some_and(|i| !visible(&caller, i)) {
            return Err(ApiError::not_found());
        }
    }
    let id = raw.parse::<u64>().map_err(|_| ApiError::not_found())?;
    let invoice = find(&store.invoices, id)?;
    tenant_check(
        &state,
        "id-encoding-bypass",
        &caller,
        invoice,
        ApiError::not_found,
    )?;
    Ok(Json(json!({
        "receipt": {
            "number": format!("R-{}", invoice.number),
            "invoice": invoice_summary(invoice),
            "paid": invoice.status == "paid",
        }
    }))
    .into_response())
}

#[derive(Deserialize)]
struct StatementRequest {
    invoice_ids: Vec<u64>,
}

/// The most invoices one statement covers, as the spec's `maxItems` says.
const MAX_STATEMENT_INVOICES: usize = 50;

/// A statement of the invoices named in the body (a read sent as POST, marked
/// `x-rolegrid-safe` in the spec). Securely, an invoice the caller may not see is "not
/// found", like a missing one, and the whole statement is refused. FLAW body-id-bola:
/// only existence is checked, so any invoice id in the body is rendered.
async fn create_statement(
    State(state): State<Shared>,
    Caller(caller): Caller,
    JsonBody(body): JsonBody<StatementRequest>,
) -> ApiResult {
    if body.invoice_ids.is_empty() || body.invoice_ids.len() > MAX_STATEMENT_INVOICES {
        return Err(ApiError::unprocessable(
            "invoice_ids must name 1 to 50 invoices",
        ));
    }
    let store = state.store();
    let mut invoices = Vec::new();
    let mut total_cents: u64 = 0;
    for id in &body.invoice_ids {
        let invoice = find(&store.invoices, *id)?;
        tenant_check(
            &state,
            "body-id-bola",
            &caller,
            invoice,
            ApiError::not_found,
        )?;
        total_cents = total_cents.saturating_add(invoice.amount_cents);
        invoices.push(invoice_summary(invoice));
    }
    Ok(Json(json!({
        "statement": {
            "invoices": invoices,
            "total_cents": total_cents,
        }
    }))
    .into_response())
}

// ---------------------------------------------------------------- tickets

async fn list_tickets(State(state): State<Shared>, Caller(caller): Caller) -> ApiResult {
    Ok(list(visible_records(&caller, &state.store().tickets)))
}

async fn get_ticket(
    State(state): State<Shared>,
    Caller(caller): Caller,
    PathId(id): PathId,
) -> ApiResult {
    // FLAW ticket-existence-leak: 403 for another's ticket, 404 for a missing one, so
    // anyone learns which ticket ids exist. Securely, both are "not found".
    let leak = state.flaw("ticket-existence-leak");
    let store = state.store();
    let ticket = find(&store.tickets, id)?;
    if !visible(&caller, ticket) {
        return Err(if leak {
            ApiError::new(StatusCode::FORBIDDEN, "not your ticket")
        } else {
            ApiError::not_found()
        });
    }
    Ok(Json(ticket).into_response())
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum TicketStatus {
    Open,
    Closed,
}

impl TicketStatus {
    fn as_str(self) -> &'static str {
        match self {
            TicketStatus::Open => "open",
            TicketStatus::Closed => "closed",
        }
    }
}

#[derive(Deserialize)]
struct TicketPatch {
    subject: Option<String>,
    status: Option<TicketStatus>,
    /// Not part of `TicketUpdate`: read only so the mass-assignment flaw can bind them.
    tenant_id: Option<String>,
    owner_id: Option<u64>,
}

/// FLAW ticket-mass-assignment: the handler binds the whole body onto the ticket, so
/// `tenant_id` and `owner_id` (which only the platform may set) are taken from the caller.
/// Securely, fields outside `TicketUpdate` are ignored.
fn bind_privileged_ticket_fields(state: &AppState, ticket: &mut Ticket, patch: &TicketPatch) {
    if !state.flaw("ticket-mass-assignment") {
        return;
    }
    if let Some(tenant) = &patch.tenant_id {
        ticket.tenant_id = tenant.clone();
    }
    if let Some(owner) = patch.owner_id {
        ticket.owner_id = owner;
    }
}

async fn update_ticket(
    State(state): State<Shared>,
    Caller(caller): Caller,
    PathId(id): PathId,
    body: Result<Json<TicketPatch>, JsonRejection>,
) -> ApiResult {
    let mut store = state.store();
    let ticket = find_mut(&mut store.tickets, id)?;
    // Checked before the body so a foreign caller learns nothing from validation errors.
    // FLAW ticket-write-bola skips it.
    tenant_check(
        &state,
        "ticket-write-bola",
        &caller,
        ticket,
        ApiError::forbidden,
    )?;
    let Json(patch) = body?;
    if patch.subject.is_none() && patch.status.is_none() {
        return Err(ApiError::unprocessable("provide subject and/or status"));
    }
    if let Some(subject) = &patch.subject {
        // FLAW ticket-subject-unvalidated: stores the subject as sent, whatever its length.
        ticket.subject = if state.flaw("ticket-subject-unvalidated") {
            subject.clone()
        } else {
            valid_subject(subject)?
        };
    }
    if let Some(status) = patch.status {
        ticket.status = status.as_str().to_string();
    }
    bind_privileged_ticket_fields(&state, ticket, &patch);
    ticket.updated_at = now_rfc3339();
    Ok(Json(ticket.clone()).into_response())
}

/// A ticket subject, trimmed: 1 to 200 characters, else 422.
fn valid_subject(subject: &str) -> ApiResult<String> {
    let subject = subject.trim();
    if subject.is_empty() || subject.chars().count() > 200 {
        return Err(ApiError::unprocessable(
            "subject must be 1 to 200 characters",
        ));
    }
    Ok(subject.to_string())
}

#[derive(Deserialize)]
struct TicketCreate {
    subject: String,
    status: Option<TicketStatus>,
}

/// A new ticket in the caller's tenant, owned by the caller (a platform admin's lands
/// under "platform"). Fields outside `TicketCreate` are ignored in every mode.
async fn create_ticket(
    State(state): State<Shared>,
    Caller(caller): Caller,
    JsonBody(body): JsonBody<TicketCreate>,
) -> ApiResult {
    let subject = valid_subject(&body.subject)?;
    let mut store = state.store();
    let ticket = Ticket {
        id: store.next_ticket_id,
        tenant_id: caller
            .tenant_id
            .clone()
            .unwrap_or_else(|| "platform".into()),
        owner_id: caller.id,
        subject: subject.to_string(),
        status: body
            .status
            .unwrap_or(TicketStatus::Open)
            .as_str()
            .to_string(),
        notes: Vec::new(),
        updated_at: now_rfc3339(),
    };
    store.next_ticket_id += 1;
    store.tickets.push(ticket.clone());
    Ok(created(format!("/tickets/{}", ticket.id), ticket))
}

/// A 201 naming the new record in `Location`, with the record as the body.
fn created(location: String, record: impl serde::Serialize) -> Response {
    (
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(record),
    )
        .into_response()
}

/// Deletes a ticket the caller may see. Securely a ticket it may not see is a 404, as if
/// it did not exist. FLAW ticket-delete-bola skips the visibility check.
async fn delete_ticket(
    State(state): State<Shared>,
    Caller(caller): Caller,
    PathId(id): PathId,
) -> ApiResult {
    let mut store = state.store();
    let index = position(&store.tickets, id)?;
    let ticket = &store.tickets[index];
    tenant_check(
        &state,
        "ticket-delete-bola",
        &caller,
        ticket,
        ApiError::not_found,
    )?;
    store.tickets.remove(index);
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
struct NoteBody {
    text: String,
}

/// The note body from raw JSON. Securely a `text` of the wrong type is a 422, like
/// axum's own typed extractor answers. FLAW notes-malformed-500: the handler reads
/// `text` with an unchecked cast that fails as a 500 (the demo never panics: it answers
/// what a caught panic would).
fn note_body(state: &AppState, raw: serde_json::Value) -> ApiResult<NoteBody> {
    if state.flaw("notes-malformed-500") {
        if let Some(text) = raw.get("text") {
            if !text.is_string() {
                return Err(ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error: called `Option::unwrap()` on a `None` value",
                ));
            }
        }
    }
    serde_json::from_value(raw).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("invalid note: {e}"),
        )
    })
}

async fn add_ticket_note(
    State(state): State<Shared>,
    Caller(caller): Caller,
    PathId(id): PathId,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> ApiResult {
    let mut store = state.store();
    let index = position(&store.tickets, id)?;
    let Json(raw) = body?;
    let body = note_body(&state, raw)?;
    let text = body.text.trim();
    if text.is_empty() || text.chars().count() > 4000 {
        return Err(ApiError::unprocessable("text must be 1 to 4000 characters"));
    }
    let now = now_rfc3339();
    let note = Note {
        id: store.next_note_id,
        author_id: caller.id,
        text: text.to_string(),
        created_at: now.clone(),
    };
    store.next_note_id += 1;

    if visible(&caller, &store.tickets[index]) {
        let ticket = &mut store.tickets[index];
        ticket.notes.push(note.clone());
        ticket.updated_at = now;
    } else {
        // Secure, but answered 201: the note goes to a new ticket of the caller's own, so
        // the victim's ticket is untouched. Judges must read back the victim's ticket.
        let new_id = store.next_ticket_id;
        store.next_ticket_id += 1;
        store.tickets.push(Ticket {
            id: new_id,
            // A platform admin has no tenant; it sees every ticket and never gets here
            // unless demoted, in which case its tickets land under "platform".
            tenant_id: caller
                .tenant_id
                .clone()
                .unwrap_or_else(|| "platform".into()),
            owner_id: caller.id,
            subject: format!("Re: ticket #{id}"),
            status: "open".into(),
            notes: vec![note.clone()],
            updated_at: now,
        });
    }
    Ok((StatusCode::CREATED, Json(note)).into_response())
}

// ---------------------------------------------------------------- files

async fn list_files(State(state): State<Shared>, Caller(caller): Caller) -> ApiResult {
    let metas: Vec<_> = state.store().files.iter().map(|f| f.meta.clone()).collect();
    Ok(list(visible_records(&caller, &metas)))
}

/// Which `file_id` is authorized and which is served. Securely they are one: a repeated
/// `file_id` is a 400. FLAW file-download-param-pollution: the check reads the first
/// copy and the download the last, as when a gateway and a backend parse differently.
fn file_ids<'q>(state: &AppState, query: &'q [(String, String)]) -> ApiResult<(&'q str, &'q str)> {
    let ids: Vec<&str> = query
        .iter()
        .filter(|(k, _)| k == "file_id")
        .map(|(_, v)| v.as_str())
        .collect();
    match ids.as_slice() {
        [] => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "missing query parameter `file_id`",
        )),
        [one] => Ok((one, one)),
        [first, .., last] if state.flaw("file-download-param-pollution") => Ok((first, last)),
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "query parameter `file_id` given more than once",
        )),
    }
}

async fn download_file(
    State(state): State<Shared>,
    Caller(caller): Caller,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> ApiResult {
    let Query(query) = query?;
    let (checked_id, served_id) = file_ids(&state, &query)?;
    let store = state.store();
    let find = |id: &str| {
        store
            .files
            .iter()
            .find(|f| f.meta.id.eq_ignore_ascii_case(id))
            .ok_or_else(ApiError::not_found)
    };
    let checked = find(checked_id)?;
    // FLAW file-download-bola skips the check. Securely, another's file is "not found",
    // like a missing one: a 403 would tell which file ids exist.
    let meta = &checked.meta;
    tenant_check(
        &state,
        "file-download-bola",
        &caller,
        meta,
        ApiError::not_found,
    )?;
    let file = find(served_id)?;
    let disposition =
        HeaderValue::from_str(&format!("attachment; filename=\"{}\"", file.meta.name))
            .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        file.content.clone(),
    )
        .into_response())
}

// ---------------------------------------------------------------- search and export

async fn search(
    State(state): State<Shared>,
    Caller(caller): Caller,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> ApiResult {
    let Query(query) = query?;
    let q = query
        .get("q")
        .ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, "missing query parameter `q`"))?;
    if q.chars().count() > MAX_QUERY_CHARS {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "query parameter `q` must be at most 200 characters",
        ));
    }
    let needle = q.to_lowercase();
    // FLAW search-list-leak: every record is a candidate, whoever owns it.
    let leak = state.flaw("search-list-leak");
    let shown = |record: &dyn Owned| leak || visible(&caller, record);
    let store = state.store();
    let invoices = store
        .invoices
        .iter()
        .filter(|i| shown(*i))
        .filter(|i| {
            i.description.to_lowercase().contains(&needle)
                || i.number.to_lowercase().contains(&needle)
        })
        .map(|i| {
            json!({
                "type": "invoice",
                "id": i.id,
                "tenant_id": i.tenant_id,
                "owner_id": i.owner_id,
                "title": format!("{}: {}", i.number, i.description),
            })
        });
    let tickets = store
        .tickets
        .iter()
        .filter(|t| shown(*t))
        .filter(|t| t.subject.to_lowercase().contains(&needle))
        .map(|t| {
            json!({
                "type": "ticket",
                "id": t.id,
                "tenant_id": t.tenant_id,
                "owner_id": t.owner_id,
                "title": t.subject,
            })
        });
    let results: Vec<_> = invoices.chain(tickets).collect();
    Ok(Json(json!({ "query": q, "results": results })).into_response())
}

/// Quotes a CSV field when it holds a separator, a quote or a line break (RFC 4180).
fn csv_field(value: &str) -> Cow<'_, str> {
    if value.contains([',', '"', '\n', '\r']) {
        Cow::Owned(format!("\"{}\"", value.replace('"', "\"\"")))
    } else {
        Cow::Borrowed(value)
    }
}

async fn export_invoices(State(state): State<Shared>, headers: HeaderMap) -> ApiResult {
    // FLAW export-no-auth: a request with no credentials at all is served everything.
    // Requests that present credentials, even bad ones, go through normal authentication.
    let caller =
        if state.flaw("export-no-auth") && matches!(presented(&headers), Presented::Nothing) {
            None
        } else {
            Some(authenticate(&state, &headers)?)
        };
    let mut csv =
        String::from("id,number,tenant_id,owner_id,customer,amount_cents,currency,status\n");
    for i in state
        .store()
        .invoices
        .iter()
        .filter(|i| caller.as_ref().is_none_or(|c| visible(c, *i)))
    {
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},{}\n",
            i.id,
            csv_field(&i.number),
            csv_field(&i.tenant_id),
            i.owner_id,
            csv_field(&i.customer),
            i.amount_cents,
            csv_field(&i.currency),
            csv_field(&i.status),
        ));
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"invoices.csv\"",
            ),
        ],
        csv,
    )
        .into_response())
}

// ---------------------------------------------------------------- reports

/// The header that picks the tenant of `GET /reports/summary`.
const TENANT_HEADER: &str = "x-tenant-id";

/// Totals of one tenant. The tenant is the caller's own unless `X-Tenant-Id` names
/// another, which only platform admins may do. FLAW tenant-header-swap: the header picks
/// the tenant without being checked against the caller's; securely, a mismatch is 403.
async fn report_summary(
    State(state): State<Shared>,
    Caller(caller): Caller,
    headers: HeaderMap,
) -> ApiResult {
    let asked = headers
        .get(TENANT_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    let tenant = match (asked, &caller.tenant_id) {
        (None, own) => own.clone(),
        (Some(asked), Some(own)) if asked == own => Some(own.clone()),
        (Some(asked), _) if caller.role == "admin" || state.flaw("tenant-header-swap") => {
            Some(asked.to_string())
        }
        (Some(_), _) => return Err(ApiError::forbidden()),
    };
    let store = state.store();
    // A platform admin without the header gets the whole platform's totals.
    let mine = |t: &str| tenant.as_deref().is_none_or(|wanted| wanted == t);
    let (invoices, amount_cents) = store
        .invoices
        .iter()
        .filter(|i| mine(&i.tenant_id))
        .fold((0u64, 0u64), |(n, sum), i| {
            (n + 1, sum.saturating_add(i.amount_cents))
        });
    let open_tickets = store
        .tickets
        .iter()
        .filter(|t| mine(&t.tenant_id) && t.status == "open")
        .count();
    Ok(Json(json!({
        "tenant_id": tenant,
        "invoices": invoices,
        "amount_cents": amount_cents,
        "open_tickets": open_tickets,
    }))
    .into_response())
}

// ---------------------------------------------------------------- admin

async fn list_users(State(state): State<Shared>, Caller(caller): Caller) -> ApiResult {
    // FLAW admin-users-bfla: the role check is missing.
    if !state.flaw("admin-users-bfla") && caller.role != "admin" {
        return Err(ApiError::forbidden());
    }
    let users = state.store().users.clone();
    Ok(list(users))
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Role {
    Client,
    Staff,
    Admin,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Client => "client",
            Role::Staff => "staff",
            Role::Admin => "admin",
        }
    }
}

#[derive(Deserialize)]
struct RoleBody {
    role: Role,
}

/// The role route: `PUT` for admins (no flaw in any mode), and every other method, so
/// that neither flaw adds a route to `ROUTES`: both ride on the documented PUT path, and
/// the admin check is wired on PUT only. FLAW role-change-method-override: a legacy shim
/// forwards `POST` + `X-HTTP-Method-Override: PUT` to the role change, skipping the admin
/// check. Securely, the override is not honoured and the method is not allowed.
async fn role_route(
    State(state): State<Shared>,
    method: Method,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<RoleBody>, JsonRejection>,
) -> ApiResult {
    let override_put = headers
        .get("x-http-method-override")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("PUT"));
    let overridden =
        state.flaw("role-change-method-override") && method == Method::POST && override_put;
    // FLAW role-change-verb-swap: the framework also routes the undocumented PATCH to the
    // role change, and the admin check, wired on the PUT route only, never runs.
    // Securely, PATCH is not allowed.
    let swapped = state.flaw("role-change-verb-swap") && method == Method::PATCH;
    if method != Method::PUT && !overridden && !swapped {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed",
        ));
    }
    let caller = authenticate(&state, &headers)?;
    if method == Method::PUT && caller.role != "admin" {
        return Err(ApiError::forbidden());
    }
    let id = path_id(path)?;
    let mut store = state.store();
    let user = find_mut(&mut store.users, id)?;
    let Json(body) = body?;
    user.role = body.role.as_str().to_string();
    let user = user.clone();
    let audit = store.role_audit.entry(id).or_default();
    audit.role_changes += 1;
    audit.role_changed_by = Some(caller.id);
    Ok(Json(user).into_response())
}

/// What the audit view shows a non-admin, whichever user it names.
const NOT_PERMITTED_PAGE: &str = "<!doctype html><html><head><title>Portal</title></head>\
<body><h1>Access</h1><p>You are not permitted to view this page.</p></body></html>";
#[derive(Deserialize)]
struct UserCreate {
    email: String,
    name: String,
    role: Option<Role>,
    tenant_id: Option<String>,
}

/// A new portal user (admins only, no flaw in any mode). It has no password, so it can
/// never sign in: the route exists so a scanner has users of its own to write to.
async fn create_user(
    State(state): State<Shared>,
    _: Admin,
    JsonBody(body): JsonBody<UserCreate>,
) -> ApiResult {
    let (email, name) = (body.email.trim(), body.name.trim());
    if !email.contains('@') || email.len() > 200 || name.is_empty() || name.len() > 200 {
        return Err(ApiError::unprocessable(
            "email must contain @ and name must be 1 to 200 characters",
        ));
    }
    let mut store = state.store();
    let id = store.users.iter().map(|u| u.id).max().unwrap_or(0) + 1;
    let user = User {
        id,
        email: email.to_string(),
        name: name.to_string(),
        role: body.role.unwrap_or(Role::Client).as_str().to_string(),
        tenant_id: body.tenant_id.filter(|t| !t.trim().is_empty()),
    };
    store.users.push(user.clone());
    Ok(created(format!("/admin/users/{id}"), user))
}

/// Deletes a user (admins only, no flaw in any mode). Seeded users cannot be deleted:
/// the portal's logins depend on them.
async fn delete_user(State(state): State<Shared>, _: Admin, PathId(id): PathId) -> ApiResult {
    if super::USERS.iter().any(|u| u.id == id) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "seeded users cannot be deleted",
        ));
    }
    let mut store = state.store();
    let index = position(&store.users, id)?;
    store.users.remove(index);
    store.role_audit.remove(&id);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// One user with its role audit trail (admins only, no flaw in any mode).
async fn get_user(
    State(state): State<Shared>,
    Caller(caller): Caller,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult {
    if caller.role != "admin" {
        // Secure, but answered 200 with an HTML page: only the engagement's detector rule
        // (specs/demo-engagement.yaml) tells a judge this is a denial.
        return Ok((
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            NOT_PERMITTED_PAGE,
        )
            .into_response());
    }
    // The id is read after the role check: a non-admin gets the page whatever it names.
    let id = path_id(path)?;
    let store = state.store();
    let user = find(&store.users, id)?;
    let audit = store.role_audit.get(&id).cloned().unwrap_or_default();
    Ok(Json(json!({
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "role": user.role,
        "tenant_id": user.tenant_id,
        "role_changes": audit.role_changes,
        "role_changed_by": audit.role_changed_by,
    }))
    .into_response())
}

// ---------------------------------------------------------------- router

async fn no_such_route() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, super::posture::NO_SUCH_ROUTE)
}

/// The handler for one `ROUTES` entry; `None` for an entry with no handler, which the
/// integration test catches because that route then answers the router's 404.
fn method_router(method: &str, path: &str) -> Option<MethodRouter<Shared>> {
    Some(match (method, path) {
        ("POST", "/auth/login") => post(login),
        ("GET", "/me") => get(me),
        ("GET", "/invoices") => get(list_invoices),
        ("GET", "/invoices/{invoiceId}") => get(get_invoice),
        ("GET", "/invoices/{invoiceId}/receipt") => get(invoice_receipt),
        ("POST", "/statements") => post(create_statement),
        ("GET", "/tickets") => get(list_tickets),
        ("POST", "/tickets") => post(create_ticket),
        ("GET", "/tickets/{ticketId}") => get(get_ticket),
        ("PATCH", "/tickets/{ticketId}") => patch(update_ticket),
        ("DELETE", "/tickets/{ticketId}") => delete(delete_ticket),
        ("POST", "/tickets/{ticketId}/notes") => post(add_ticket_note),
        ("GET", "/files") => get(list_files),
        ("GET", "/files/download") => get(download_file),
        ("GET", "/search") => get(search),
        ("GET", "/export/invoices.csv") => get(export_invoices),
        ("GET", "/reports/summary") => get(report_summary),
        ("GET", "/admin/users") => get(list_users),
        ("POST", "/admin/users") => post(create_user),
        ("GET", "/admin/users/{userId}") => get(get_user),
        ("DELETE", "/admin/users/{userId}") => delete(delete_user),
        ("PUT", "/admin/users/{userId}/role") => any(role_route),
        ("POST", "/auth/session") => post(auth_extra::session_login),
        ("POST", "/auth/refresh") => post(auth_extra::refresh),
        ("POST", "/auth/logout") => post(auth_extra::logout),
        ("POST", "/oauth/token") => post(auth_extra::oauth_token),
        ("GET", "/accounts") => get(accounts::list_accounts),
        ("GET", "/accounts/{accountId}") => get(accounts::get_account),
        ("PUT", "/accounts/{accountId}/password") => put(accounts::reset_password),
        ("POST", "/me/password") => post(accounts::change_own_password),
        ("GET", "/admin/reset") => get(accounts::reset_status),
        ("POST", "/admin/reset") => post(accounts::reset_portal),
        _ => return None,
    })
}

/// The portal's router, built from [`ROUTES`] so the table and the server agree.
pub(crate) fn router(state: Shared) -> Router {
    let routes = ROUTES
        .iter()
        .filter_map(|&(method, path)| Some((path, method_router(method, path)?)))
        .fold(Router::new(), |router, (path, handler)| {
            router.route(path, handler)
        });
    super::latency::apply(routes, &state.options)
        .fallback(no_such_route)
        .layer(from_fn_with_state(state.clone(), auth_extra::guard))
        .layer(from_fn_with_state(state.clone(), super::posture::layer))
        // Outermost: a fault stands in for whatever the portal would have answered.
        .layer(from_fn_with_state(state.clone(), super::chaos::layer))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_has_a_handler() {
        for &(method, path) in ROUTES {
            assert!(method_router(method, path).is_some(), "{method} {path}");
        }
    }

    #[test]
    fn csv_quoting() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("Globex, Inc."), "\"Globex, Inc.\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
