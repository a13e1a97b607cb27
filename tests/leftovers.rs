//! Nothing left behind: a probe that creates an object (here a viewer whose denied
//! `POST /notes` is wrongly accepted: 201 with a `Location`) leaves no object on the
//! target. The scan deletes it at the end, like its canaries, and reports it under
//! `probe_objects`; the fixture holds only its seed notes afterwards.

mod common;

use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::sync::{Arc, Mutex};

const SPEC: &str = r##"openapi: 3.0.3
info: {title: notes with writes, version: '1'}
security: [{bearer: []}]
components:
  schemas:
    Note: {type: object, properties: {id: {type: integer}, owner_id: {type: string}, text: {type: string}}}
  securitySchemes: {bearer: {type: http, scheme: bearer}}
paths:
  /notes:
    get:
      operationId: listNotes
      responses: {'200': {description: the caller's notes, content: {application/json: {schema: {type: array, items: {$ref: '#/components/schemas/Note'}}}}}}
    post:
      operationId: createNote
      requestBody: {content: {application/json: {schema: {type: object, properties: {text: {type: string}}}}}}
      responses: {'201': {description: created, content: {application/json: {schema: {$ref: '#/components/schemas/Note'}}}}}
  /notes/{note_id}:
    get:
      operationId: getNote
      parameters: [{name: note_id, in: path, required: true, schema: {type: integer}}]
      responses: {'200': {description: one note, content: {application/json: {schema: {$ref: '#/components/schemas/Note'}}}}}
    delete:
      operationId: deleteNote
      parameters: [{name: note_id, in: path, required: true, schema: {type: integer}}]
      responses: {'204': {description: deleted}}
"##;

const MATRIX: &str = "operation,anonymous,editor,viewer\n\
GET /notes,deny,own,own\nPOST /notes,deny,allow,deny\n\
GET /notes/{note_id},deny,own,own\nDELETE /notes/{note_id},deny,own,own\n";

/// (id, owner) of every note; 1 and 2 are the seeds.
type Store = Arc<Mutex<Vec<(u64, String)>>>;

fn caller(headers: &HeaderMap) -> Option<String> {
    let auth = headers.get("authorization")?.to_str().ok()?;
    ["ed", "vi"]
        .into_iter()
        .find(|who| auth == format!("Bearer tok-{who}"))
        .map(String::from)
}

fn note(id: u64, owner: &str) -> serde_json::Value {
    serde_json::json!({"id": id, "owner_id": owner, "text": "a note"})
}

async fn list(State(store): State<Store>, headers: HeaderMap) -> Response {
    let Some(who) = caller(&headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let notes = store.lock().map(|s| s.clone()).unwrap_or_default();
    let mine: Vec<_> = notes
        .iter()
        .filter(|(_, o)| *o == who)
        .map(|(id, o)| note(*id, o))
        .collect();
    Json(mine).into_response()
}

async fn create(State(store): State<Store>, headers: HeaderMap) -> Response {
    // The planted flaw: the viewer's create is accepted too.
    let Some(who) = caller(&headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let Ok(mut notes) = store.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let id = notes.iter().map(|(id, _)| *id).max().unwrap_or(0) + 1;
    notes.push((id, who.clone()));
    (
        StatusCode::CREATED,
        [(header::LOCATION, format!("/notes/{id}"))],
        Json(note(id, &who)),
    )
        .into_response()
}

/// `GET` or `DELETE` of one note (the route's method says which): only its owner may.
async fn one_note(
    method: Method,
    State(store): State<Store>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<u64>,
) -> Response {
    let Some(who) = caller(&headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let Ok(mut notes) = store.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let Some(i) = notes.iter().position(|(n, _)| *n == id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if notes[i].1 != who {
        return StatusCode::FORBIDDEN.into_response();
    }
    if method == Method::DELETE {
        notes.remove(i);
        return StatusCode::NO_CONTENT.into_response();
    }
    Json(note(id, &who)).into_response()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_created_by_probes_are_deleted_at_the_end() {
    let store: Store = Arc::new(Mutex::new(vec![(1, "ed".into()), (2, "vi".into())]));
    let app = Router::new()
        .route("/notes", get(list).post(create))
        .route("/notes/{note_id}", get(one_note).delete(one_note))
        .with_state(store.clone());
    let target = common::serve(app).await;
    let (dir, engagement) = common::write_engagement(
        SPEC,
        MATRIX,
        &target,
        "allow_mutations: true\nidentities:\n\
         \x20 - {name: ed, tenant: t, role: editor, attributes: {user_id: ed}, auth: {bearer: tok-ed}}\n\
         \x20 - {name: vi, tenant: t, role: viewer, attributes: {user_id: vi}, auth: {bearer: tok-vi}}\n",
    );
    let (output, report) =
        common::scan_binary(&engagement, &dir.path().join("out"), &["--seed", "2"]).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let objects = &report["probe_objects"];
    assert!(
        objects["created"].as_u64().unwrap_or(0) >= 1,
        "no probe-created object recorded: {stdout}"
    );
    assert_eq!(objects["left"], serde_json::json!([]), "{objects}");
    assert!(stdout.contains("objects created by probes:"), "{stdout}");
    let remaining = store.lock().map(|s| s.clone()).unwrap_or_default();
    assert_eq!(
        remaining,
        vec![(1, "ed".to_string()), (2, "vi".to_string())],
        "objects left on the target: {stdout}"
    );
}
