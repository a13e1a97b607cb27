//! A fault is not a verdict: a target whose every other answer is a 503 (load, a failing
//! replica behind a balancer) still gets its BOLA found, because a read answered 5xx is
//! sent once more before it is judged; and that retry is said in the finding's reason.

mod common;

use axum::extract::Path as UrlPath;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

fn who(headers: &HeaderMap) -> Option<u64> {
    match headers.get("authorization")?.to_str().ok()? {
        "Bearer tok-flaky-alice" => Some(1),
        "Bearer tok-flaky-bob" => Some(2),
        _ => None,
    }
}

fn note(id: u64) -> serde_json::Value {
    let owner = if id == 1 { "alice" } else { "bob" };
    serde_json::json!({"id": id, "owner_id": owner, "text": format!("{owner}'s private note")})
}

async fn serve() -> String {
    // Every second request to a note fails, whoever sends it.
    let calls = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .route(
            "/notes",
            get(|headers: HeaderMap| async move {
                match who(&headers) {
                    Some(u) => Json(serde_json::json!({"items": [note(u)]})).into_response(),
                    None => StatusCode::UNAUTHORIZED.into_response(),
                }
            }),
        )
        .route(
            "/notes/{note_id}",
            get(move |headers: HeaderMap, UrlPath(id): UrlPath<u64>| {
                let calls = calls.clone();
                async move {
                    if who(&headers).is_none() {
                        return StatusCode::UNAUTHORIZED.into_response();
                    }
                    if calls.fetch_add(1, Ordering::SeqCst) % 2 == 1 {
                        return (StatusCode::SERVICE_UNAVAILABLE, "try again").into_response();
                    }
                    match id {
                        1 | 2 => Json(note(id)).into_response(),
                        _ => StatusCode::NOT_FOUND.into_response(),
                    }
                }
            }),
        );
    common::serve(app).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_answered_5xx_is_sent_again_before_it_is_judged() {
    let target = serve().await;
    let (dir, engagement) = common::write_engagement(
        common::NOTES_SPEC,
        common::NOTES_MATRIX,
        &target,
        "concurrency: 1\nidentities:\n\
         \x20 - {name: alice, tenant: a, role: user, attributes: {user_id: alice}, auth: {bearer: tok-flaky-alice}}\n\
         \x20 - {name: bob, tenant: b, role: user, attributes: {user_id: bob}, auth: {bearer: tok-flaky-bob}}\n",
    );
    let (output, report) =
        common::scan_binary(&engagement, &dir.path().join("out"), &["--seed", "3"]).await;
    let findings = report["findings"].as_array().cloned().unwrap_or_default();
    let swaps: Vec<&serde_json::Value> = findings
        .iter()
        .filter(|f| f["operation"] == "GET /notes/{note_id}" && f["attack"] == "id-swap")
        .collect();
    assert!(
        swaps.iter().any(|f| f["verdict"] == "violation"),
        "the BOLA was lost to the 503s ({:?}): {findings:#?}",
        output.status.code()
    );
    assert!(
        findings.iter().all(|f| f["verdict"] != "server-error"),
        "a passing 503 was reported as a server error: {findings:#?}"
    );
    assert!(
        report
            .to_string()
            .contains("sent twice: the first answer was 503"),
        "the retry is not said anywhere"
    );
}

/// The README's account of `--flaw password-reset-bola`: bob (and carol once) are
/// re-provisioned through root; once root's own password is changed, root, alice and carol
/// are lost for good, probes turn inconclusive and canaries stay behind, all listed.
#[test]
fn password_reset_bola_loses_root_alice_and_carol_as_the_readme_says() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = common::rolegrid_process()
        .args([
            "demo",
            "--no-progress",
            "--flaw",
            "password-reset-bola",
            "-o",
        ])
        .arg(dir.path())
        .output()
        .expect("runs");
    let report = common::read_report(dir.path());
    let lost = report["identities_lost"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let names = |reprovisioned: bool| -> std::collections::BTreeSet<String> {
        lost.iter()
            .filter(|l| l["reprovisioned"] == reprovisioned)
            .filter_map(|l| l["identity"].as_str().map(String::from))
            .collect()
    };
    assert_eq!(
        names(false),
        ["alice", "carol", "root"].map(String::from).into(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(names(true).contains("bob"), "{lost:#?}");
    // A probe can depend on two lost identities (actor and read-back owner): count it once.
    let affected = lost
        .iter()
        .filter_map(|l| l["affected_probes"].as_array())
        .flatten()
        .map(|p| p.to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let inconclusive = report["stats"]["inconclusive"].as_u64().unwrap_or(0) as usize;
    assert!(
        affected > 0 && inconclusive >= affected,
        "{affected} of {inconclusive}"
    );
    let left = report["canaries"]["left"].as_array().map_or(0, Vec::len);
    assert!(left > 0, "the README says canaries stay behind");
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(summary.contains(&format!("{left} left")), "{summary}");
}
