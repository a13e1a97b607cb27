//! Fixture D, "trackr": a project tracker's API in a fourth house style (JSON:API):
//! - documents are `{"data": …}` with resources as `{"type", "id", "attributes": {…}}`:
//!   the owner (`created_by`) and the organisation (`org`) live inside `attributes`, and
//!   creates send `{"data": {"type": "projects", "attributes": {"name": …}}}`;
//! - organisations are named in the path (`/v2/orgs/{org_slug}/projects`) and nothing
//!   lists them: each caller knows its own from its self-read (`GET /v2/me`);
//! - projects and tasks have UUIDs, notes small integers, and notes live under their
//!   project (`/v2/projects/{project_uuid}/notes/{note_id}`);
//! - the token comes from a nested JSON login (`{"user": {"login", "password"}}` answered
//!   `{"session": {"token"}}`) and goes in `X-Auth-Token`;
//! - roles viewer, editor and admin; another organisation's object is a 404.

use super::common::{self, planted_flaws, serve, signed_in, Server, SignIn};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

planted_flaws! {
    /// `GET /v2/projects/{project_uuid}` serves another organisation's project (BOLA): the
    /// UUIDs come from the other organisation's listing under `/v2/orgs/{org_slug}`.
    project_read_cross_org => ("GET /v2/projects/{project_uuid}", "id-swap"),
    /// `DELETE /v2/projects/{project_uuid}` lets a viewer delete a project of its own
    /// organisation (the matrix gives viewers no delete).
    project_delete_by_viewer => ("DELETE /v2/projects/{project_uuid}", "escalation"),
    /// `GET /v2/admin/users` checks the login but not the admin role.
    admin_users_open => ("GET /v2/admin/users", "escalation"),
    /// `GET /v2/projects/{project_uuid}/notes/{note_id}` checks the caller may see the
    /// project in the path, not that the note belongs to it: the caller's own project with
    /// another organisation's note ID serves that note.
    note_outside_project => ("GET /v2/projects/{project_uuid}/notes/{note_id}", "id-swap"),
    /// `POST /v2/orgs/{org_slug}/projects` creates a project in any organisation the path
    /// names, not only the caller's.
    project_create_in_foreign_org => ("POST /v2/orgs/{org_slug}/projects", "id-swap"),
    /// `DELETE /v2/projects/{project_uuid}/tasks/{task_uuid}` checks the project in the
    /// path, not that the task belongs to it: the caller's own project with another
    /// organisation's task UUID deletes that task.
    task_delete_outside_project => ("DELETE /v2/projects/{project_uuid}/tasks/{task_uuid}", "id-swap"),
}

/// (login, password, env variable) of the scan's identities.
pub const USERS: &[(&str, &str, &str)] = &[
    ("ann", "ann-kanban-4", "TRACKR_ANN_PASSWORD"),
    ("max", "max-backlog-7", "TRACKR_MAX_PASSWORD"),
    ("zoe", "zoe-sprint-2", "TRACKR_ZOE_PASSWORD"),
    ("root", "root-roadmap-9", "TRACKR_ROOT_PASSWORD"),
];

/// The organisations, by slug.
const ORGS: [&str; 2] = ["acme", "zenith"];

#[derive(Clone)]
struct User {
    uuid: String,
    login: String,
    org: String,
    role: String,
}

struct Project {
    org: String,
    name: String,
    created_by: String,
}

struct Data {
    users: Vec<User>,
    tokens: common::Sessions,
    projects: BTreeMap<String, Project>,
    /// task UUID → (project UUID, title, assignee UUID)
    tasks: BTreeMap<String, (String, String, String)>,
    /// note ID → (project UUID, body, author UUID)
    notes: BTreeMap<u64, (String, String, String)>,
    next: u64,
}

impl Data {
    /// A fresh UUID-shaped ID (deterministic: the same run gives the same IDs).
    fn uuid(&mut self, kind: u32) -> String {
        self.next += 1;
        format!("{kind:08x}-7a1c-4e2b-9d3f-{:012x}", self.next * 7919)
    }

    fn add_project(&mut self, org: &str, name: &str, by: &str) -> String {
        let id = self.uuid(0x9a0c);
        self.projects.insert(
            id.clone(),
            Project {
                org: org.into(),
                name: name.into(),
                created_by: by.into(),
            },
        );
        id
    }
}

type AppState = common::Fixture<Flaws, Data>;
type Shared = Arc<AppState>;
type Call = common::Call<AppState>;

fn seed() -> Data {
    let mut data = Data {
        users: Vec::new(),
        tokens: common::Sessions::default(),
        projects: BTreeMap::new(),
        tasks: BTreeMap::new(),
        notes: BTreeMap::new(),
        next: 0,
    };
    for (login, org, role) in [
        ("ann", "acme", "editor"),
        ("max", "acme", "viewer"),
        ("zoe", "zenith", "editor"),
        ("root", "acme", "admin"),
    ] {
        let uuid = data.uuid(0x05e4);
        data.users.push(User {
            uuid,
            login: login.into(),
            org: org.into(),
            role: role.into(),
        });
    }
    let seeded = [
        ("acme", "Website relaunch", 0),
        ("acme", "Payroll migration", 0),
        ("zenith", "Merger due diligence", 2),
        ("zenith", "Layoff planning", 2),
    ];
    for (org, name, by) in seeded {
        let author = data.users[by].uuid.clone();
        let project = data.add_project(org, name, &author);
        for n in 1..=2 {
            let task = data.uuid(0x7a5c);
            let title = format!("{name}: step {n}");
            data.tasks
                .insert(task, (project.clone(), title, author.clone()));
            let note = data.notes.len() as u64 + 1;
            let body = format!("{name}: confidential note {n}");
            data.notes
                .insert(note, (project.clone(), body, author.clone()));
        }
    }
    data
}

pub async fn spawn(flaws: Flaws) -> Server {
    let state = AppState::new(flaws, seed());
    let app = Router::new()
        .route("/v2/sessions", post(sign_in))
        .route("/v2/me", get(read_me))
        .route(
            "/v2/orgs/{org_slug}/projects",
            get(list_projects).post(create_project),
        )
        .route(
            "/v2/projects/{project_uuid}",
            get(read_project)
                .patch(update_project)
                .delete(delete_project),
        )
        .route(
            "/v2/projects/{project_uuid}/tasks",
            get(list_tasks).post(create_task),
        )
        .route(
            "/v2/projects/{project_uuid}/tasks/{task_uuid}",
            axum::routing::delete(delete_task),
        )
        .route("/v2/projects/{project_uuid}/notes", get(list_notes))
        .route(
            "/v2/projects/{project_uuid}/notes/{note_id}",
            get(read_note),
        )
        .route("/v2/tasks/{task_uuid}", get(read_task))
        .route("/v2/admin/users", get(admin_users))
        .with_state(state);
    serve(app).await
}

/// A JSON:API document with `status`.
fn document(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/vnd.api+json")],
        body.to_string(),
    )
        .into_response()
}

fn error(status: StatusCode, title: &str) -> Response {
    let code = status.as_u16().to_string();
    document(
        status,
        json!({"errors": [{"status": code, "title": title}]}),
    )
}

fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "Not found")
}

fn resource(kind: &str, id: Value, attributes: Value) -> Value {
    json!({"type": kind, "id": id, "attributes": attributes})
}

fn user_json(user: &User) -> Value {
    resource(
        "users",
        json!(user.uuid),
        json!({"login": user.login, "org": user.org, "role": user.role}),
    )
}

fn project_json(id: &str, p: &Project) -> Value {
    resource(
        "projects",
        json!(id),
        json!({"name": p.name, "org": p.org, "created_by": p.created_by}),
    )
}

impl SignIn for AppState {
    type Caller = User;

    fn caller(&self, headers: &HeaderMap) -> Result<User, Box<Response>> {
        let unauthorized = || Box::new(error(StatusCode::UNAUTHORIZED, "Authentication required"));
        let token = headers
            .get("x-auth-token")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(unauthorized)?;
        let data = self.data();
        data.tokens
            .user(token, &data.users)
            .ok_or_else(unauthorized)
    }
}

fn writes(user: &User) -> bool {
    user.role == "editor" || user.role == "admin"
}

async fn sign_in(State(state): State<Shared>, Json(body): Json<Value>) -> Response {
    let login = body.pointer("/user/login").and_then(Value::as_str);
    let password = body.pointer("/user/password").and_then(Value::as_str);
    let mut data = state.data();
    let signed = common::check_login(USERS, &data.users, |u| &u.login, login, password);
    let Some(index) = signed else {
        return error(StatusCode::UNAUTHORIZED, "Invalid login or password");
    };
    let token = data.tokens.open(&state.tokens, "trk_", index);
    let uuid = data.users[index].uuid.clone();
    document(
        StatusCode::CREATED,
        json!({"session": {"token": token, "user": uuid}}),
    )
}

async fn read_me(Call { who, .. }: Call) -> Response {
    let user = signed_in!(who);
    document(StatusCode::OK, json!({"data": user_json(&user)}))
}

async fn list_projects(Call { state, who }: Call, Path(org): Path<String>) -> Response {
    let user = signed_in!(who);
    if org != user.org {
        return not_found();
    }
    let data = state.data();
    let items: Vec<Value> = data
        .projects
        .iter()
        .filter(|(_, p)| p.org == org)
        .map(|(id, p)| project_json(id, p))
        .collect();
    document(
        StatusCode::OK,
        json!({"data": items, "meta": {"total": items.len()}}),
    )
}

/// The attribute `name` an editor's create or update sends (`{"data": {"attributes":
/// {"name": …}}}`), or the 403 for a viewer and the 422 for a body without it.
fn edited(user: &User, body: &Value, name: &str) -> Result<String, Box<Response>> {
    if !writes(user) {
        return Err(Box::new(error(StatusCode::FORBIDDEN, "Editors only")));
    }
    body.pointer(&format!("/data/attributes/{name}"))
        .and_then(Value::as_str)
        .filter(|value| !value.is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            let message = format!("data.attributes.{name} is required");
            Box::new(error(StatusCode::UNPROCESSABLE_ENTITY, &message))
        })
}

/// The 404 unless the caller's organisation owns `project`, then the 403 unless the
/// caller may write.
fn writable(data: &Data, user: &User, project: &str) -> Result<(), Box<Response>> {
    visible(data, user, project, false)?;
    if writes(user) {
        Ok(())
    } else {
        Err(Box::new(error(StatusCode::FORBIDDEN, "Editors only")))
    }
}

async fn create_project(
    Call { state, who }: Call,
    Path(org): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    let user = signed_in!(who);
    let foreign_allowed = state.flaws.project_create_in_foreign_org && ORGS.contains(&org.as_str());
    if org != user.org && !foreign_allowed {
        return not_found();
    }
    let name = match edited(&user, &body, "name") {
        Ok(name) => name,
        Err(refused) => return *refused,
    };
    let mut data = state.data();
    let id = data.add_project(&org, &name, &user.uuid);
    let created = project_json(&id, &data.projects[&id]);
    document(StatusCode::CREATED, json!({"data": created}))
}

/// The project `id` when `user`'s organisation owns it (or `any_org`), else the 404.
fn visible<'d>(
    data: &'d Data,
    user: &User,
    id: &str,
    any_org: bool,
) -> Result<&'d Project, Box<Response>> {
    data.projects
        .get(id)
        .filter(|p| any_org || p.org == user.org)
        .ok_or_else(|| Box::new(not_found()))
}

async fn read_project(Call { state, who }: Call, Path(id): Path<String>) -> Response {
    let user = signed_in!(who);
    let data = state.data();
    match visible(&data, &user, &id, state.flaws.project_read_cross_org) {
        Ok(project) => document(StatusCode::OK, json!({"data": project_json(&id, project)})),
        Err(refused) => *refused,
    }
}

async fn update_project(
    Call { state, who }: Call,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    let user = signed_in!(who);
    let mut data = state.data();
    if let Err(refused) = visible(&data, &user, &id, false) {
        return *refused;
    }
    let name = match edited(&user, &body, "name") {
        Ok(name) => name,
        Err(refused) => return *refused,
    };
    let Some(project) = data.projects.get_mut(&id) else {
        return not_found();
    };
    project.name = name;
    document(StatusCode::OK, json!({"data": project_json(&id, project)}))
}

async fn delete_project(Call { state, who }: Call, Path(id): Path<String>) -> Response {
    let user = signed_in!(who);
    let mut data = state.data();
    if let Err(refused) = visible(&data, &user, &id, false) {
        return *refused;
    }
    if !writes(&user) && !state.flaws.project_delete_by_viewer {
        return error(StatusCode::FORBIDDEN, "Editors only");
    }
    data.projects.remove(&id);
    StatusCode::NO_CONTENT.into_response()
}

async fn list_tasks(Call { state, who }: Call, Path(id): Path<String>) -> Response {
    let user = signed_in!(who);
    let data = state.data();
    children(&data, &user, &id, &data.tasks, |task, t| task_json(task, t))
}

/// The items of `project` in `items` (tasks or notes), when the caller's organisation
/// owns the project.
fn children<K>(
    data: &Data,
    user: &User,
    project: &str,
    items: &BTreeMap<K, (String, String, String)>,
    to_json: impl Fn(&K, &(String, String, String)) -> Value,
) -> Response {
    if let Err(refused) = visible(data, user, project, false) {
        return *refused;
    }
    let items: Vec<Value> = items
        .iter()
        .filter(|(_, item)| item.0 == project)
        .map(|(key, item)| to_json(key, item))
        .collect();
    document(StatusCode::OK, json!({"data": items}))
}

async fn create_task(
    Call { state, who }: Call,
    Path(project): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    let user = signed_in!(who);
    let mut data = state.data();
    let title = match writable(&data, &user, &project).and_then(|()| edited(&user, &body, "title"))
    {
        Ok(title) => title,
        Err(refused) => return *refused,
    };
    let id = data.uuid(0x7a5c);
    let task = (project, title, user.uuid.clone());
    let created = task_json(&id, &task);
    data.tasks.insert(id, task);
    document(StatusCode::CREATED, json!({"data": created}))
}

async fn delete_task(
    Call { state, who }: Call,
    Path((project, task)): Path<(String, String)>,
) -> Response {
    let user = signed_in!(who);
    let mut data = state.data();
    if let Err(refused) = writable(&data, &user, &project) {
        return *refused;
    }
    let outside = state.flaws.task_delete_outside_project;
    match data.tasks.get(&task) {
        Some(t) if t.0 == project || outside => {
            data.tasks.remove(&task);
            StatusCode::NO_CONTENT.into_response()
        }
        _ => not_found(),
    }
}

fn task_json(id: &str, task: &(String, String, String)) -> Value {
    child_json("tasks", json!(id), ["title", "assignee"], task)
}

/// A task or a note: its project, its text and its person under the names `labels`.
fn child_json(
    kind: &str,
    id: Value,
    labels: [&str; 2],
    (project, text, person): &(String, String, String),
) -> Value {
    let mut attributes = json!({ "project": project });
    attributes[labels[0]] = json!(text);
    attributes[labels[1]] = json!(person);
    resource(kind, id, attributes)
}

async fn read_task(Call { state, who }: Call, Path(id): Path<String>) -> Response {
    let user = signed_in!(who);
    let data = state.data();
    let Some(task) = data.tasks.get(&id) else {
        return not_found();
    };
    if let Err(refused) = visible(&data, &user, &task.0, false) {
        return *refused;
    }
    document(StatusCode::OK, json!({"data": task_json(&id, task)}))
}

fn note_json(id: u64, note: &(String, String, String)) -> Value {
    child_json("notes", json!(id), ["body", "author"], note)
}

async fn list_notes(Call { state, who }: Call, Path(id): Path<String>) -> Response {
    let user = signed_in!(who);
    let data = state.data();
    children(&data, &user, &id, &data.notes, |note, n| {
        note_json(*note, n)
    })
}

async fn read_note(
    Call { state, who }: Call,
    Path((project, note)): Path<(String, String)>,
) -> Response {
    let user = signed_in!(who);
    let data = state.data();
    if let Err(refused) = visible(&data, &user, &project, false) {
        return *refused;
    }
    let found = note
        .parse::<u64>()
        .ok()
        .and_then(|id| Some((id, data.notes.get(&id)?)))
        .filter(|(_, n)| n.0 == project || state.flaws.note_outside_project);
    match found {
        Some((id, n)) => document(StatusCode::OK, json!({"data": note_json(id, n)})),
        None => not_found(),
    }
}

async fn admin_users(Call { state, who }: Call) -> Response {
    let user = signed_in!(who);
    if user.role != "admin" && !state.flaws.admin_users_open {
        return error(StatusCode::FORBIDDEN, "Admins only");
    }
    let data = state.data();
    let items: Vec<Value> = data.users.iter().map(user_json).collect();
    document(StatusCode::OK, json!({"data": items}))
}
