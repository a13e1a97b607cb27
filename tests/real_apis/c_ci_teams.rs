//! Fixture C, "ci teams": a CI service's API in a third house style (FastAPI-like):
//! - every object is named by a `<resource>_id` field (`job_id`, `build_error_id`,
//!   `team_id`, `user_id`), never `id`;
//! - lists are paged with `offset`/`limit` (two entries a page unless asked) and wrapped
//!   with the total: `{"jobs": [...], "total_entries": 3}`;
//! - teams (the tenants) have members (`member`) and owners (`owner`); every list must be
//!   filtered to the caller's team, and another team's object is a 404 like a missing one;
//! - a bearer token from a JSON login (`POST /api/auth/token`), errors as `{"detail": …}`;
//! - a self-update without an ID (`PATCH /api/me`) and a sign-up (`POST
//!   /api/users/register`) that must ignore privileged fields;
//! - writes that repeat the object's references in the body: a job is triggered for the
//!   caller's own `team_id`, and `PUT /api/jobs/{job_id}` must name the same `job_id` and
//!   `team_id` as the job it changes (else 422, as FastAPI validators answer).

use super::common::{self, planted_flaws, serve, signed_in, Server, SignIn};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

planted_flaws! {
    /// `GET /api/jobs/{job_id}` serves any team's job (BOLA): a member reads another team's
    /// job by `job_id`, learned from the other team's paged `{"jobs": [...],
    /// "total_entries": n}` list.
    job_read_bola => ("GET /api/jobs/{job_id}", "id-swap"),
    /// `GET /api/build_errors` lists every team's build errors, not only the caller's team's
    /// (blue's bob sees red's `build_error_id`s on the first page).
    build_errors_list_leak => ("GET /api/build_errors", "list-leak"),
    /// `PATCH /api/me` stores `role` and `is_admin` from the body (mass assignment): a
    /// self-update with no ID, whose caller's `GET /api/me` read-back shows the privileged
    /// field changed.
    me_mass_assignment => ("PATCH /api/me", "mass-assignment"),
    /// `POST /api/users/register` honours `is_admin` (or `admin`) in the body: the created
    /// user (the 201 answer) is an admin.
    register_admin_flag => ("POST /api/users/register", "mass-assignment"),
    /// `PUT /api/jobs/{job_id}` changes any team's job (BOLA on a write whose body must
    /// repeat the job's own `job_id` and `team_id`, else 422): blue's bob renames red's
    /// job, the probe taking both from the job itself.
    job_write_bola => ("PUT /api/jobs/{job_id}", "id-swap"),
}

/// (email, password, env variable) of the scan's identities.
pub const USERS: &[(&str, &str, &str)] = &[
    ("alice@ci.example", "alice-pipeline-2", "CI_ALICE_PASSWORD"),
    ("olga@ci.example", "olga-artifact-6", "CI_OLGA_PASSWORD"),
    ("bob@ci.example", "bob-runner-5", "CI_BOB_PASSWORD"),
];

#[derive(Clone)]
struct User {
    email: String,
    password: String,
    display_name: String,
    team_id: Option<u64>,
    role: String,
    is_admin: bool,
}

struct Data {
    users: BTreeMap<u64, User>,
    tokens: BTreeMap<String, u64>,
    teams: Vec<Value>,
    jobs: Vec<Value>,
    build_errors: Vec<Value>,
    audit: Vec<Value>,
    next_user: u64,
    next_job: u64,
}

type AppState = common::Fixture<Flaws, Data>;

type Shared = Arc<AppState>;
type Call = common::Call<AppState>;

fn seed() -> Data {
    // bram is no scan identity, so not in USERS.
    let password = |email: &str| {
        common::password_of(USERS, email)
            .unwrap_or("bram-cache-0")
            .to_string()
    };
    let user = |email: &str, name: &str, team: u64, role: &str| User {
        email: email.into(),
        password: password(email),
        display_name: name.into(),
        team_id: Some(team),
        role: role.into(),
        is_admin: false,
    };
    let users = BTreeMap::from([
        (101, user("alice@ci.example", "Alice", 10, "member")),
        (102, user("olga@ci.example", "Olga", 10, "owner")),
        (201, user("bob@ci.example", "Bob", 20, "member")),
        (202, user("bram@ci.example", "Bram", 20, "owner")),
    ]);
    let teams = vec![
        json!({"team_id": 10, "name": "red-platform", "plan": "enterprise"}),
        json!({"team_id": 20, "name": "blue-mobile", "plan": "team"}),
    ];
    let job = |job_id: u64, team: u64, pipeline: &str, status: &str, by: u64| json!({"job_id": job_id, "team_id": team, "pipeline": pipeline, "status": status, "triggered_by": by});
    let jobs = vec![
        job(501, 10, "api-server", "passed", 101),
        job(502, 10, "api-server", "failed", 102),
        job(503, 10, "web-console", "failed", 101),
        job(601, 20, "ios-app", "failed", 201),
        job(602, 20, "android-app", "passed", 202),
    ];
    let error = |id: u64, job: u64, team: u64, file: &str, message: &str| json!({"build_error_id": id, "job_id": job, "team_id": team, "file": file, "message": message});
    let build_errors = vec![
        error(
            9001,
            502,
            10,
            "src/auth/session.rs",
            "cannot find value `SIGNING_KEY` in this scope",
        ),
        error(
            9002,
            503,
            10,
            "web/src/billing.ts",
            "Property 'iban' does not exist on type 'Card'",
        ),
        error(
            9101,
            601,
            20,
            "ios/Payments/Keychain.swift",
            "use of unresolved identifier 'merchantSecret'",
        ),
    ];
    let audit = vec![
        json!({"event_id": 1, "team_id": 10, "actor_id": 102, "action": "secret.rotated"}),
        json!({"event_id": 2, "team_id": 20, "actor_id": 202, "action": "member.added"}),
    ];
    Data {
        users,
        tokens: BTreeMap::new(),
        teams,
        jobs,
        build_errors,
        audit,
        next_user: 1001,
        next_job: 900,
    }
}

pub async fn spawn(flaws: Flaws) -> Server {
    let state = AppState::new(flaws, seed());
    let app = Router::new()
        .route("/api/auth/token", post(token))
        .route("/api/users/register", post(register))
        .route("/api/me", get(read_me).patch(update_me))
        .route("/api/teams", get(list_teams))
        .route("/api/teams/{team_id}/members", get(list_members))
        .route("/api/teams/{team_id}/audit_log", get(audit_log))
        .route("/api/jobs", get(list_jobs).post(trigger_job))
        .route(
            "/api/jobs/{job_id}",
            get(read_job).put(update_job).delete(cancel_job),
        )
        .route("/api/build_errors", get(list_build_errors))
        .route("/api/build_errors/{build_error_id}", get(read_build_error))
        .with_state(state);
    serve(app).await
}

fn detail(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "detail": message }))).into_response()
}

fn not_found() -> Response {
    detail(StatusCode::NOT_FOUND, "Not found")
}

impl SignIn for AppState {
    /// The caller's user_id and a copy of its record.
    type Caller = (u64, User);

    fn caller(&self, headers: &HeaderMap) -> Result<(u64, User), Box<Response>> {
        let unauthorized = || {
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                Json(json!({"detail": "Not authenticated"})),
            )
                .into_response()
        };
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| Box::new(unauthorized()))?;
        let data = self.data();
        let id = *data
            .tokens
            .get(token.trim())
            .ok_or_else(|| Box::new(unauthorized()))?;
        let user = data
            .users
            .get(&id)
            .cloned()
            .ok_or_else(|| Box::new(unauthorized()))?;
        Ok((id, user))
    }
}

/// May `user` see objects of `team`? Its own team's, or every team's for an admin.
fn sees(user: &User, team: &Value) -> bool {
    user.is_admin || (user.team_id.is_some() && team.as_u64() == user.team_id)
}

fn me_json(id: u64, user: &User) -> Value {
    json!({
        "user_id": id,
        "email": user.email,
        "display_name": user.display_name,
        "team_id": user.team_id,
        "role": user.role,
        "is_admin": user.is_admin,
    })
}

#[derive(Deserialize)]
struct Paging {
    offset: Option<usize>,
    limit: Option<usize>,
}

/// The page size of the lists that are not paged (teams, audit events): all in one page.
const ONE_PAGE: Paging = Paging {
    offset: None,
    limit: Some(50),
};

/// One page of the `items` kept by `keep` under `key`, with `total_entries`.
fn page(key: &str, items: &[Value], keep: impl Fn(&Value) -> bool, paging: &Paging) -> Response {
    let items: Vec<&Value> = items.iter().filter(|item| keep(item)).collect();
    let offset = paging.offset.unwrap_or(0);
    let limit = paging.limit.unwrap_or(2).clamp(1, 50);
    let total = items.len();
    let slice: Vec<&Value> = items.into_iter().skip(offset).take(limit).collect();
    Json(json!({ key: slice, "total_entries": total, "offset": offset, "limit": limit }))
        .into_response()
}

#[derive(Deserialize)]
struct Credentials {
    email: String,
    password: String,
}

async fn token(State(state): State<Shared>, Json(body): Json<Credentials>) -> Response {
    let mut data = state.data();
    let found = data
        .users
        .iter()
        .find(|(_, u)| u.email == body.email && u.password == body.password)
        .map(|(id, _)| *id);
    let Some(id) = found else {
        return detail(StatusCode::UNAUTHORIZED, "Incorrect email or password");
    };
    let token = state.tokens.next("ci_");
    data.tokens.insert(token.clone(), id);
    Json(json!({"access_token": token, "token_type": "bearer", "expires_in": 3600})).into_response()
}

#[derive(Deserialize)]
struct Registration {
    email: String,
    password: String,
    display_name: String,
    #[serde(default)]
    is_admin: Option<bool>,
    #[serde(default)]
    admin: Option<bool>,
}

async fn register(State(state): State<Shared>, Json(body): Json<Registration>) -> Response {
    if !body.email.contains('@')
        || body.password.chars().count() < 8
        || body.display_name.is_empty()
    {
        return detail(
            StatusCode::UNPROCESSABLE_ENTITY,
            "email must contain @, password 8 characters or more, display_name not empty",
        );
    }
    let mut data = state.data();
    if data.users.values().any(|u| u.email == body.email) {
        return detail(StatusCode::CONFLICT, "Email already registered");
    }
    let is_admin = state.flaws.register_admin_flag
        && (body.is_admin == Some(true) || body.admin == Some(true));
    let id = data.next_user;
    data.next_user += 1;
    let user = User {
        email: body.email,
        password: body.password,
        display_name: body.display_name,
        team_id: None,
        role: "member".into(),
        is_admin,
    };
    let answer = me_json(id, &user);
    data.users.insert(id, user);
    (StatusCode::CREATED, Json(answer)).into_response()
}

async fn read_me(Call { who, .. }: Call) -> Response {
    let (id, user) = signed_in!(who);
    Json(me_json(id, &user)).into_response()
}

#[derive(Deserialize)]
struct MeUpdate {
    display_name: Option<String>,
    // Read only when `me_mass_assignment` is planted; the secure twin ignores them.
    role: Option<String>,
    is_admin: Option<bool>,
}

async fn update_me(Call { state, who }: Call, Json(body): Json<MeUpdate>) -> Response {
    let (id, _) = signed_in!(who);
    if let Some(name) = &body.display_name {
        if name.is_empty() || name.chars().count() > 64 {
            return detail(
                StatusCode::UNPROCESSABLE_ENTITY,
                "display_name must be 1 to 64 characters",
            );
        }
    }
    let mut data = state.data();
    let Some(user) = data.users.get_mut(&id) else {
        return not_found();
    };
    if let Some(name) = body.display_name {
        user.display_name = name;
    }
    if state.flaws.me_mass_assignment {
        if let Some(role) = body.role {
            user.role = role;
        }
        if let Some(flag) = body.is_admin {
            user.is_admin = flag;
        }
    }
    Json(me_json(id, user)).into_response()
}

async fn list_teams(Call { state, who }: Call) -> Response {
    let (_, me) = signed_in!(who);
    let data = state.data();
    page(
        "teams",
        &data.teams,
        |t| sees(&me, &t["team_id"]),
        &ONE_PAGE,
    )
}

async fn list_members(Call { state, who }: Call, Path(team_id): Path<u64>) -> Response {
    let (_, me) = signed_in!(who);
    if !sees(&me, &json!(team_id)) {
        return not_found();
    }
    let data = state.data();
    let members: Vec<Value> = data
        .users
        .iter()
        .filter(|(_, u)| u.team_id == Some(team_id))
        .map(|(id, u)| json!({"user_id": id, "display_name": u.display_name, "role": u.role}))
        .collect();
    Json(json!({"members": members, "total_entries": members.len()})).into_response()
}

async fn audit_log(Call { state, who }: Call, Path(team_id): Path<u64>) -> Response {
    let (_, me) = signed_in!(who);
    if me.role != "owner" && !me.is_admin {
        return detail(StatusCode::FORBIDDEN, "Team owners only");
    }
    if !sees(&me, &json!(team_id)) {
        return not_found();
    }
    let data = state.data();
    page(
        "events",
        &data.audit,
        |e| e["team_id"] == team_id,
        &ONE_PAGE,
    )
}

async fn list_jobs(Call { state, who }: Call, Query(paging): Query<Paging>) -> Response {
    let (_, me) = signed_in!(who);
    let data = state.data();
    page("jobs", &data.jobs, |j| sees(&me, &j["team_id"]), &paging)
}

async fn read_job(Call { state, who }: Call, Path(job_id): Path<u64>) -> Response {
    let (_, me) = signed_in!(who);
    let data = state.data();
    one(&data.jobs, "job_id", job_id, |j| {
        state.flaws.job_read_bola || sees(&me, &j["team_id"])
    })
}

/// The item whose `key` is `id`, when `shown`; otherwise 404, exactly like an ID that
/// exists nowhere.
fn one(items: &[Value], key: &str, id: u64, shown: impl Fn(&Value) -> bool) -> Response {
    match items.iter().find(|item| item[key] == id) {
        Some(item) if shown(item) => Json(item.clone()).into_response(),
        _ => not_found(),
    }
}

/// FastAPI's 422 shape: which body field failed and why.
fn invalid(field: &str, message: &str) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({"detail": [{"loc": ["body", field], "msg": message, "type": "value_error"}]})),
    )
        .into_response()
}

/// `POST /api/jobs {"team_id", "pipeline"}`: only into the caller's own team.
async fn trigger_job(Call { state, who }: Call, Json(body): Json<Value>) -> Response {
    let (id, me) = signed_in!(who);
    let (Some(team), Some(pipeline)) = (body["team_id"].as_u64(), body["pipeline"].as_str()) else {
        return invalid(
            "pipeline",
            "team_id (integer) and pipeline (string) are required",
        );
    };
    if me.team_id != Some(team) {
        return invalid("team_id", "jobs can only be triggered for your own team");
    }
    let mut data = state.data();
    let job_id = data.next_job;
    data.next_job += 1;
    let job = json!({"job_id": job_id, "team_id": team, "pipeline": pipeline, "status": "queued", "triggered_by": id});
    data.jobs.push(job.clone());
    (StatusCode::CREATED, Json(job)).into_response()
}

/// `PUT /api/jobs/{job_id} {"job_id", "team_id", "pipeline"}`: renames a job's pipeline;
/// the body must name the job it changes and that job's team.
async fn update_job(
    Call { state, who }: Call,
    Path(job_id): Path<u64>,
    Json(body): Json<Value>,
) -> Response {
    let (_, me) = signed_in!(who);
    let Some(pipeline) = body["pipeline"].as_str() else {
        return invalid("pipeline", "field required");
    };
    if body["job_id"].as_u64() != Some(job_id) {
        return invalid("job_id", "must match the job in the path");
    }
    let mut data = state.data();
    let Some(job) = data.jobs.iter_mut().find(|j| j["job_id"] == job_id) else {
        return not_found();
    };
    if !(state.flaws.job_write_bola || sees(&me, &job["team_id"])) {
        return not_found();
    }
    if body["team_id"] != job["team_id"] {
        return invalid("team_id", "a job cannot move to another team");
    }
    job["pipeline"] = json!(pipeline);
    Json(job.clone()).into_response()
}

/// `DELETE /api/jobs/{job_id}`: cancels a job of the caller's team.
async fn cancel_job(Call { state, who }: Call, Path(job_id): Path<u64>) -> Response {
    let (_, me) = signed_in!(who);
    let mut data = state.data();
    match data.jobs.iter().position(|j| j["job_id"] == job_id) {
        Some(at) if sees(&me, &data.jobs[at]["team_id"]) => {
            data.jobs.remove(at);
            StatusCode::NO_CONTENT.into_response()
        }
        _ => not_found(),
    }
}

async fn list_build_errors(Call { state, who }: Call, Query(paging): Query<Paging>) -> Response {
    let (_, me) = signed_in!(who);
    let data = state.data();
    page(
        "build_errors",
        &data.build_errors,
        |e| state.flaws.build_errors_list_leak || sees(&me, &e["team_id"]),
        &paging,
    )
}

async fn read_build_error(Call { state, who }: Call, Path(build_error_id): Path<u64>) -> Response {
    let (_, me) = signed_in!(who);
    let data = state.data();
    one(&data.build_errors, "build_error_id", build_error_id, |e| {
        sees(&me, &e["team_id"])
    })
}
