//! Discovery against a small paginated API served on 127.0.0.1:0: objects that only a
//! later page lists are found and attacked, following Link headers and page numbers.

mod common;

use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use rolegrid::engagement::{Engagement, EnvSource, Redactor};
use rolegrid::matrix::Policy;
use serde_json::{json, Value};
use std::collections::HashMap;

const SPEC: &str = r#"
openapi: 3.0.3
info: {title: paged notes, version: "1"}
components:
  securitySchemes:
    bearer: {type: http, scheme: bearer}
security: [{bearer: []}]
paths:
  /notes:
    get:
      operationId: listNotes
      parameters:
        - {name: page, in: query, schema: {type: integer}}
      responses: {"200": {description: a page of notes}}
  /notes/{noteId}:
    get:
      operationId: getNote
      parameters:
        - {name: noteId, in: path, required: true, schema: {type: integer}}
      responses: {"200": {description: a note}, "404": {description: not found}}
"#;

const MATRIX: &str = "operation,anonymous,user\nlistNotes,deny,own\ngetNote,deny,own\n";

/// Each user has 5 notes, two per page; the note-read endpoint forgets to check the owner.
fn owner_of(headers: &HeaderMap) -> Option<u64> {
    match headers.get("authorization")?.to_str().ok()? {
        "Bearer token-one-xxxxxxxx" => Some(1),
        "Bearer token-two-yyyyyyyy" => Some(2),
        _ => None,
    }
}

fn note(id: u64) -> Value {
    let owner = id / 100;
    json!({"id": id, "owner_id": owner, "text": format!("note {id} of user {owner}"), "tenant_id": format!("t{owner}")})
}

async fn list(headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    let Some(owner) = owner_of(&headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let page: u64 = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let ids: Vec<u64> = (1..=5).map(|n| owner * 100 + n).collect();
    let items: Vec<Value> = ids
        .iter()
        .skip(((page - 1) * 2) as usize)
        .take(2)
        .map(|&id| note(id))
        .collect();
    let mut response = Json(json!({"items": items})).into_response();
    if page < 3 {
        let link = format!("</notes?page={}>; rel=\"next\"", page + 1);
        if let Ok(v) = link.parse() {
            response.headers_mut().insert("link", v);
        }
    }
    response
}

async fn read(headers: HeaderMap, Path(id): Path<u64>) -> Response {
    if owner_of(&headers).is_none() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if !(1..=5).contains(&(id % 100)) || !(1..=2).contains(&(id / 100)) {
        return StatusCode::NOT_FOUND.into_response();
    }
    Json(note(id)).into_response()
}

#[tokio::test]
async fn objects_on_later_pages_are_discovered_and_attacked() {
    let app = Router::new()
        .route("/notes", get(list))
        .route("/notes/{noteId}", get(read));
    let addr = common::serve_addr(app).await;

    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("spec.yaml"), SPEC).expect("spec");
    std::fs::write(dir.path().join("matrix.csv"), MATRIX).expect("matrix");
    let engagement_text = format!(
        "target: http://{addr}\nspec: spec.yaml\nmatrix: matrix.csv\nidentities:\n  - name: one\n    tenant: t1\n    role: user\n    auth: {{bearer: \"${{T1}}\"}}\n  - name: two\n    tenant: t2\n    role: user\n    auth: {{bearer: \"${{T2}}\"}}\n"
    );
    let path = dir.path().join("engagement.yaml");
    std::fs::write(&path, &engagement_text).expect("engagement");
    let env = EnvSource::default()
        .with("T1", "token-one-xxxxxxxx")
        .with("T2", "token-two-yyyyyyyy");
    let engagement = Engagement::parse(&engagement_text, &path, &env).expect("engagement");
    let api = rolegrid::spec::load(&dir.path().join("spec.yaml")).expect("spec");
    let policy = Policy::load(
        &dir.path().join("matrix.csv"),
        &api,
        &["user".into()],
        false,
    )
    .expect("matrix");
    let scanned = common::scan(engagement, api, policy, 1, Redactor::new()).await;

    let report = &scanned.outcome.report;
    assert_eq!(
        report.stats.objects, 10,
        "all five notes of each user, over three pages"
    );
    let swap = report
        .findings
        .iter()
        .find(|f| f.operation == "GET /notes/{noteId}" && f.verdict == "violation")
        .expect("the missing owner check is found");
    assert_eq!(swap.attack, "id-swap");
    let text = scanned.file("report.json");
    assert!(!text.contains("token-one-xxxxxxxx") && !text.contains("token-two-yyyyyyyy"));
}
