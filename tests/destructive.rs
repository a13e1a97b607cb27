//! Same target, same findings: a fixture whose `GET /admin/reset` (listed in the
//! engagement's `destructive_operations`, and wrongly open to every user) wipes its notes
//! and seeds new ones under new IDs. Its probes must run last and alone, so that no other
//! probe reads a half-reset API: three scans of the one fixture (reset by each scan) give
//! the same findings.

mod common;

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

// The reset comes first in the spec, so the plan meets it before the notes' probes; a GET,
// so it is planned among the reads (which run concurrently) even without mutations.
const SPEC: &str = r##"openapi: 3.0.3
info: {title: resettable notes, version: '1'}
components:
  securitySchemes: {bearer: {type: http, scheme: bearer}}
  schemas:
    Note: {type: object, properties: {id: {type: integer}, owner_id: {type: string}, text: {type: string}}}
security: [{bearer: []}]
paths:
  /admin/reset:
    get:
      operationId: resetData
      responses: {'200': {description: data wiped and seeded again}}
  /notes:
    get:
      operationId: listNotes
      responses: {'200': {description: the caller's notes, content: {application/json: {schema: {type: object, properties: {items: {type: array, items: {$ref: '#/components/schemas/Note'}}}}}}}}
  /notes/{note_id}:
    get:
      operationId: getNote
      parameters: [{name: note_id, in: path, required: true, schema: {type: integer}}]
      responses: {'200': {description: one note, content: {application/json: {schema: {$ref: '#/components/schemas/Note'}}}}}
"##;

const MATRIX: &str = "operation,anonymous,user\nGET /admin/reset,deny,deny\nGET /notes,deny,own\nGET /notes/{note_id},deny,own\n";

const USERS: [(&str, &str); 2] = [("alice", "tok-alice-reset-1"), ("bob", "tok-bob-reset-2")];

/// Notes are `generation * 100 + k` (k = 1 alice's, 2 bob's); a reset starts a new
/// generation, so every ID read before it is gone.
#[derive(Default)]
struct Notes {
    generation: AtomicU64,
}

fn caller(headers: &HeaderMap) -> Option<&'static str> {
    let auth = headers.get("authorization")?.to_str().ok()?;
    USERS
        .iter()
        .find(|(_, token)| auth == format!("Bearer {token}"))
        .map(|(name, _)| *name)
}

fn note(id: u64) -> serde_json::Value {
    let owner = if id % 100 == 1 { "alice" } else { "bob" };
    serde_json::json!({"id": id, "owner_id": owner, "text": format!("{owner}'s note")})
}

async fn reset(State(notes): State<Arc<Notes>>, headers: HeaderMap) -> Response {
    if caller(&headers).is_none() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    // The planted flaw: any user may reset.
    notes.generation.fetch_add(1, Ordering::SeqCst);
    Json(serde_json::json!({"reset": true})).into_response()
}

async fn list(State(notes): State<Arc<Notes>>, headers: HeaderMap) -> Response {
    let Some(who) = caller(&headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let base = notes.generation.load(Ordering::SeqCst) * 100;
    let own = if who == "alice" { base + 1 } else { base + 2 };
    Json(serde_json::json!({"items": [note(own)]})).into_response()
}

async fn one(
    State(notes): State<Arc<Notes>>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<u64>,
) -> Response {
    if caller(&headers).is_none() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let base = notes.generation.load(Ordering::SeqCst) * 100;
    // The planted BOLA: any user reads any current note.
    if id == base + 1 || id == base + 2 {
        Json(note(id)).into_response()
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}

async fn serve() -> (String, Arc<Notes>) {
    let notes = Arc::new(Notes::default());
    let app = Router::new()
        .route("/admin/reset", get(reset))
        .route("/notes", get(list))
        .route("/notes/{note_id}", get(one))
        .with_state(notes.clone());
    (common::serve(app).await, notes)
}

/// (operation, attack, verdict, actor, victim) of every finding: what must not change.
fn findings(report: &serde_json::Value) -> BTreeSet<String> {
    common::findings(report)
        .iter()
        .map(|f| {
            format!(
                "{} {} {} {} → {}",
                f["operation"].as_str().unwrap_or(""),
                f["attack"].as_str().unwrap_or(""),
                f["verdict"].as_str().unwrap_or(""),
                f["actor"]["identity"].as_str().unwrap_or(""),
                f["victim"]["identity"].as_str().unwrap_or("-"),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resetting_operation_runs_last_and_three_scans_agree() {
    let (target, notes) = serve().await;
    let mut text =
        String::from("concurrency: 4\ndestructive_operations: [GET /admin/reset]\nidentities:\n");
    for (name, token) in USERS {
        text.push_str(&format!(
            "  - {{name: {name}, tenant: {name}, role: user, attributes: {{user_id: {name}}}, auth: {{bearer: {token}}}}}\n"
        ));
    }
    let (dir, engagement) = common::write_engagement(SPEC, MATRIX, &target, &text);
    let mut seen = Vec::new();
    for run in 0..3 {
        let out = dir.path().join(format!("run{run}"));
        let (output, report) = common::scan_binary(&engagement, &out, &["--seed", "1"]).await;
        seen.push(findings(&report));
        assert_eq!(
            output.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // The resets happened (the flaw is real) and each scan found the BOLA on the notes.
    assert!(notes.generation.load(Ordering::SeqCst) >= 3);
    for f in &seen {
        assert!(
            f.iter()
                .any(|l| l.starts_with("GET /notes/{note_id} id-swap violation")),
            "{f:#?}"
        );
        assert!(
            f.iter().any(|l| l.starts_with("GET /admin/reset")),
            "{f:#?}"
        );
    }
    assert_eq!(seen[0], seen[1], "scan 1 and 2 differ");
    assert_eq!(seen[1], seen[2], "scan 2 and 3 differ");
}
