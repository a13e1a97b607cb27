//! No credential leaves rolegrid in any form. Whole scans run the real binary with canary
//! credentials against a fixture that echoes them back (the Authorization header and the
//! login body, plain, base64 and URL-encoded, in bodies that the scan reports as findings)
//! and against the demo portal; every byte rolegrid wrote (stdout, stderr, every file of the
//! report folder) is then searched for every form of every canary.

mod common;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use std::path::Path;
use std::sync::{Arc, Mutex};

// Canaries hold the characters that encodings change: quote, backslash, slash, space, `&`,
// `+`, `%`, non-ASCII.
const ALICE_PW: &str = "cnry-Alice\"pw/1 & \\ä+%";
const BOB_PW: &str = "cnry-Bob pw/2 <&> ü_#";
const CAROL_TOKEN: &str = "cnry-carol-static/Token+7=";
const ALICE_TOKEN: &str = "cnry-alice-issued-token-Qx81z";
const BOB_TOKEN: &str = "cnry-bob-issued-token-Wv27k";

// Flow-style: every answer is a note (or a list of them) whose `echo` quotes the caller.
const SPEC: &str = r##"openapi: 3.0.3
info: {title: echo notes, version: '1'}
security: [{bearer: []}]
components:
  securitySchemes: {bearer: {type: http, scheme: bearer}}
  schemas:
    Note: {type: object, properties: {id: {type: integer}, owner_id: {type: string}, text: {type: string}}}
    Notes: {type: object, properties: {items: {type: array, items: {$ref: '#/components/schemas/Note'}}}}
paths:
  /notes:
    get:
      operationId: listNotes
      responses: {'200': {description: every note, content: {application/json: {schema: {$ref: '#/components/schemas/Notes'}}}}}
  /notes/{note_id}:
    get:
      operationId: getNote
      parameters: [{name: note_id, in: path, required: true, schema: {type: integer}}]
      responses: {'200': {description: any note to anyone, content: {application/json: {schema: {$ref: '#/components/schemas/Note'}}}}}
"##;

const MATRIX: &str =
    "operation,anonymous,user\nGET /notes,deny,own\nGET /notes/{note_id},deny,own\n";

/// Login bodies as received, by token, so every later answer can echo them.
#[derive(Default)]
struct Echo {
    logins: Mutex<Vec<(String, String)>>,
}

fn encodings(text: &str) -> serde_json::Value {
    serde_json::json!({
        "plain": text,
        "b64": base64::engine::general_purpose::STANDARD.encode(text),
        "url": url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>(),
    })
}

async fn login(State(echo): State<Arc<Echo>>, body: Bytes) -> Response {
    let text = String::from_utf8_lossy(&body).into_owned();
    let token = if text.contains("alice") {
        ALICE_TOKEN
    } else if text.contains("bob") {
        BOB_TOKEN
    } else {
        return (axum::http::StatusCode::UNAUTHORIZED, text).into_response();
    };
    if let Ok(mut logins) = echo.logins.lock() {
        logins.push((token.to_string(), text.clone()));
    }
    let mut headers = HeaderMap::new();
    if let Ok(v) = base64::engine::general_purpose::STANDARD
        .encode(&text)
        .parse()
    {
        headers.insert("x-echo-body", v);
    }
    (
        headers,
        Json(serde_json::json!({"token": token, "you_sent": encodings(&text)})),
    )
        .into_response()
}

fn caller(headers: &HeaderMap) -> (Option<&'static str>, String) {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let who = if auth.contains(ALICE_TOKEN) {
        Some("alice")
    } else if auth.contains(BOB_TOKEN) {
        Some("bob")
    } else if auth.contains(CAROL_TOKEN) {
        Some("carol")
    } else {
        None
    };
    (who, auth)
}

/// What the caller sent, in every encoding, for a body that the scan will quote.
fn echoed(echo: &Echo, auth: &str) -> serde_json::Value {
    let login = echo
        .logins
        .lock()
        .ok()
        .and_then(|l| l.iter().find(|(t, _)| auth.contains(t.as_str())).cloned())
        .map(|(_, body)| body)
        .unwrap_or_default();
    serde_json::json!({"authorization": encodings(auth), "login_body": encodings(&login)})
}

fn note(id: u64, echo: &Echo, auth: &str) -> serde_json::Value {
    let owner = ["alice", "bob", "carol"][(id as usize + 2) % 3];
    serde_json::json!({"id": id, "owner_id": owner, "text": format!("note of {owner}"), "echo": echoed(echo, auth)})
}

async fn list(State(echo): State<Arc<Echo>>, headers: HeaderMap) -> Response {
    let (who, auth) = caller(&headers);
    if who.is_none() {
        return (
            axum::http::StatusCode::UNAUTHORIZED,
            format!("unknown {auth}"),
        )
            .into_response();
    }
    let items: Vec<_> = (1..=3).map(|id| note(id, &echo, &auth)).collect();
    Json(serde_json::json!({"items": items})).into_response()
}

async fn one(
    State(echo): State<Arc<Echo>>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Response {
    let (who, auth) = caller(&headers);
    match (who, id.parse::<u64>()) {
        (Some(_), Ok(id @ 1..=3)) => Json(note(id, &echo, &auth)).into_response(),
        (Some(_), _) => (
            axum::http::StatusCode::NOT_FOUND,
            format!("no note {id} for {auth}"),
        )
            .into_response(),
        (None, _) => (
            axum::http::StatusCode::UNAUTHORIZED,
            format!("who is {auth}?"),
        )
            .into_response(),
    }
}

async fn serve_echo() -> String {
    let app = Router::new()
        .route("/login", post(login))
        .route("/notes", get(list))
        .route("/notes/{note_id}", get(one))
        .with_state(Arc::new(Echo::default()));
    common::serve(app).await
}

/// Every spelling of `secret` searched for, computed here independently of the redactor:
/// plain; base64 (both alphabets, padded or not, and the characters only the secret
/// decides when it sits inside a longer encoded value, at each byte alignment);
/// URL-encoded (`+` or `%20`, either hex case); JSON-escaped (serde, `\/`, `\uXXXX`,
/// and escaped twice, as a body quoted inside report.json).
fn forms(secret: &str) -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let mut out = vec![secret.to_string()];
    for engine in [STANDARD, URL_SAFE, URL_SAFE_NO_PAD] {
        out.push(engine.encode(secret));
    }
    for lead in 0..3usize {
        let mut bytes = vec![b'x'; lead];
        bytes.extend_from_slice(secret.as_bytes());
        let text = STANDARD_NO_PAD.encode(&bytes);
        let inner: String = text
            .chars()
            .skip(lead * 4 / 3 + 1)
            .take(secret.len() * 4 / 3 - 2)
            .collect();
        out.push(inner.replace('+', "-").replace('/', "_"));
        out.push(inner);
    }
    let form: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    let pct = form.replace('+', "%20");
    out.push(form.to_lowercase());
    out.push(pct.to_lowercase());
    out.push(form);
    out.push(pct);
    let json = serde_json::to_string(secret).expect("a string");
    let json = json[1..json.len() - 1].to_string();
    let ascii: String = json
        .chars()
        .map(|c| {
            if c.is_ascii() {
                c.to_string()
            } else {
                format!("\\u{:04x}", c as u32)
            }
        })
        .collect();
    let twice = serde_json::to_string(&json).expect("a string");
    out.push(twice[1..twice.len() - 1].to_string());
    out.push(json.replace('/', "\\/"));
    out.push(ascii);
    out.push(json);
    out.sort();
    out.dedup();
    out
}

/// Runs the binary; returns its exit code and every byte it wrote: stdout, stderr and each
/// file under `out`.
fn run(mut cmd: std::process::Command, out: &Path) -> (Option<i32>, Vec<(String, String)>) {
    let output = cmd.output().expect("the binary runs");
    let mut written = vec![
        (
            "stdout".to_string(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        ),
        (
            "stderr".to_string(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ),
    ];
    let mut dirs = vec![out.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)
            .expect("the report folder")
            .flatten()
        {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let bytes = std::fs::read(&path).expect("a report file");
                written.push((
                    path.display().to_string(),
                    String::from_utf8_lossy(&bytes).into_owned(),
                ));
            }
        }
    }
    (output.status.code(), written)
}

fn assert_no_canary(written: &[(String, String)], canaries: &[&str]) {
    let mut leaks = Vec::new();
    for canary in canaries {
        for form in forms(canary) {
            for (name, text) in written {
                if let Some(at) = text.find(&form) {
                    let from = text[..at]
                        .char_indices()
                        .rev()
                        .nth(60)
                        .map_or(0, |(i, _)| i);
                    leaks.push(format!(
                        "{name}: {form:?} near …{}",
                        &text[from..(at + form.len()).min(text.len())]
                    ));
                }
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "credentials leaked:\n{}",
        leaks.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_echoing_target_gets_no_credential_into_any_output() {
    let target = serve_echo().await;
    let (dir, engagement) = common::write_engagement(
        SPEC,
        MATRIX,
        "${ECHO_TARGET}",
        "concurrency: 2\ntimeout_ms: 5000\n\
         identities:\n\
         \x20 - {name: alice, tenant: a, role: user, attributes: {user_id: alice},\n\
         \x20    auth: {login: {path: /login, json: {username: alice, password: \"${ECHO_ALICE_PW}\"}, token: $.token}}}\n\
         \x20 - {name: bob, tenant: b, role: user, attributes: {user_id: bob},\n\
         \x20    auth: {login: {path: /login, form: {username: bob, password: \"${ECHO_BOB_PW}\"}, token: $.token}}}\n\
         \x20 - {name: carol, tenant: c, role: user, attributes: {user_id: carol}, auth: {bearer: \"${ECHO_CAROL}\"}}\n",
    );
    let out = dir.path().join("out");
    let mut cmd = common::rolegrid_process();
    cmd.args(["scan", "--no-progress", "-c"])
        .arg(&engagement)
        .arg("-o")
        .arg(&out)
        .env("ECHO_TARGET", &target)
        .env("ECHO_ALICE_PW", ALICE_PW)
        .env("ECHO_BOB_PW", BOB_PW)
        .env("ECHO_CAROL", CAROL_TOKEN);
    let (code, written) = tokio::task::spawn_blocking(move || run(cmd, &out))
        .await
        .expect("joined");
    let report = written
        .iter()
        .find(|(name, _)| name.ends_with("report.json"))
        .map(|(_, text)| text.clone())
        .unwrap_or_default();
    // The scan really ran and quoted the echoing bodies: otherwise finding nothing proves nothing.
    assert_eq!(code, Some(1), "a scan with findings exits 1: {written:?}");
    let report: serde_json::Value = serde_json::from_str(&report).expect("report.json is JSON");
    let excerpts: Vec<&str> = report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["evidence"]["body_excerpt"].as_str())
        .collect();
    assert!(
        excerpts
            .iter()
            .any(|e| e.contains("login_body") && e.contains("(redacted)")),
        "no finding quoted an echoed credential (scrubbed): {excerpts:?}"
    );
    assert_no_canary(
        &written,
        &[ALICE_PW, BOB_PW, CAROL_TOKEN, ALICE_TOKEN, BOB_TOKEN],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_scan_writes_no_password_or_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let password = "cnry-demo\"pw/3 & ä+%";
    let mut cmd = common::rolegrid_process();
    cmd.args(["demo", "--no-progress", "--seed", "7", "-o"])
        .arg(&out)
        .env("ROLEGRID_DEMO_PASSWORD", password);
    let (code, written) = tokio::task::spawn_blocking(move || run(cmd, &out))
        .await
        .expect("joined");
    assert!(
        written
            .iter()
            .any(|(name, text)| name.ends_with("report.json") && text.contains("\"findings\"")),
        "the demo scan wrote no report ({code:?}): {written:?}"
    );
    assert_no_canary(&written, &[password]);
}
