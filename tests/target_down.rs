//! A target that dies mid-scan: the fixture runs on its own runtime, which the test drops
//! after a number of requests (every connection closes, new ones are refused). The scan
//! must notice, re-check the identities' positive controls, stop, write a partial report
//! (`stopped.reason: target-down`, when, what did not run) and exit 3, in bounded time.
//! A target that only pauses (every answer late for a few seconds) must be waited for:
//! the scan resumes when a control answers again and completes.

mod common;

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Each user owns notes `user * 100 + 1..=20`.
const USERS: [&str; 4] = ["ann", "ben", "cat", "dan"];

fn owner(headers: &HeaderMap) -> Option<u64> {
    let auth = headers.get("authorization")?.to_str().ok()?;
    let name = auth.strip_prefix("Bearer tok-")?;
    USERS.iter().position(|u| *u == name).map(|i| i as u64 + 1)
}

fn note(id: u64) -> serde_json::Value {
    let user = USERS[(id / 100 - 1) as usize];
    serde_json::json!({"id": id, "owner_id": user, "text": "a note"})
}

async fn list(headers: HeaderMap) -> Response {
    match owner(&headers) {
        Some(u) => Json(
            serde_json::json!({"items": (1..=20).map(|k| note(u * 100 + k)).collect::<Vec<_>>()}),
        )
        .into_response(),
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}

async fn one(headers: HeaderMap, UrlPath(id): UrlPath<u64>) -> Response {
    match owner(&headers) {
        Some(u) if id / 100 == u && (1..=20).contains(&(id % 100)) => {
            Json(note(id)).into_response()
        }
        Some(_) => StatusCode::FORBIDDEN.into_response(),
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}

/// Fired once, by the request that ends the fixture's life.
type Killer = Arc<std::sync::Mutex<Option<std::sync::mpsc::Sender<()>>>>;

/// Serves on its own runtime; the runtime (every task and connection) is dropped after
/// `lives` requests.
fn serve_until(lives: usize) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let counter = hits.clone();
    std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
        else {
            return;
        };
        let (dead_tx, dead_rx) = std::sync::mpsc::channel::<()>();
        let dead_tx: Killer = Arc::new(std::sync::Mutex::new(Some(dead_tx)));
        runtime.spawn(async move {
            let app = Router::new()
                .route("/notes", get(list))
                .route("/notes/{note_id}", get(one))
                .layer(axum::middleware::from_fn_with_state(
                    (counter, dead_tx),
                    move |State((hits, dead)): State<(Arc<AtomicUsize>, Killer)>,
                          req: axum::extract::Request,
                          next: axum::middleware::Next| async move {
                        if hits.fetch_add(1, Ordering::SeqCst) + 1 >= lives {
                            if let Some(tx) = dead.lock().ok().and_then(|mut d| d.take()) {
                                let _ = tx.send(());
                            }
                        }
                        next.run(req).await
                    },
                ));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let _ = addr_tx.send(listener.local_addr().expect("addr"));
            let _ = axum::serve(listener, app).await;
        });
        let _ = dead_rx.recv();
        // The target dies: its listener and every open connection go with the runtime.
        runtime.shutdown_background();
    });
    let addr = addr_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the fixture starts");
    (format!("http://{addr}"), hits)
}

/// An engagement of the notes API at `target`, its four users each their own tenant, with
/// `options` (YAML lines) before the identities.
fn notes_engagement(target: &str, options: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let mut text = format!("{options}identities:\n");
    for name in USERS {
        text.push_str(&format!(
            "  - {{name: {name}, tenant: {name}, role: user, attributes: {{user_id: {name}}}, auth: {{bearer: tok-{name}}}}}\n"
        ));
    }
    common::write_engagement(common::NOTES_SPEC, common::NOTES_MATRIX, target, &text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_dies_stops_the_scan_with_a_partial_report_and_exit_3() {
    let (target, hits) = serve_until(60);
    let (dir, engagement) = notes_engagement(&target, "concurrency: 2\ntimeout_ms: 2000\n");
    let started = Instant::now();
    let (output, report) = common::scan_binary(&engagement, &dir.path().join("out"), &[]).await;
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(hits.load(Ordering::SeqCst) >= 60, "the target died early");
    assert!(stdout.contains("target stopped answering"), "{stdout}");
    // Eight failures, three re-checks (1 + 2 + 4 s), not one timeout per remaining probe.
    assert!(took < Duration::from_secs(30), "took {took:?}");
    assert_eq!(report["run"]["complete"], false);
    let stopped = &report["stopped"];
    assert_eq!(stopped["reason"], "target-down", "{stopped}");
    assert!(stopped["at_unix"].as_u64().unwrap_or(0) > 0, "{stopped}");
    let not_run = stopped["probes_not_run"].as_u64().unwrap_or(0);
    let judged = report["stats"]["probes"].as_u64().unwrap_or(0);
    assert!(not_run > 0, "{stopped}");
    assert_eq!(
        judged + not_run,
        stopped["probes_planned"].as_u64().unwrap_or(0),
        "{stopped}"
    );
    // The probes judged after the death are few: at most the run of failures that
    // triggered the check (and those in flight with it), not the rest of the plan.
    let inconclusive = report["stats"]["inconclusive"].as_u64().unwrap_or(0);
    assert!(inconclusive <= 12, "{inconclusive} inconclusive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_pauses_is_waited_for_and_the_scan_completes() {
    // From the 40th request on, every answer comes 2 s late (past the 300 ms timeout) for
    // 9 s: a failing probe (three attempts, and its baseline's) takes about 3 s, so four
    // at a time give eight failures in a row well inside the pause, the first re-checks
    // of the controls (after 1 and 2 s) fail too, and the last (after 4 s more) answers.
    let hits = Arc::new(AtomicUsize::new(0));
    let paused_at = Arc::new(std::sync::Mutex::new(None::<Instant>));
    let app = Router::new()
        .route("/notes", get(list))
        .route("/notes/{note_id}", get(one))
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let (hits, paused_at) = (hits.clone(), paused_at.clone());
                async move {
                    let n = hits.fetch_add(1, Ordering::SeqCst) + 1;
                    let since = {
                        let mut at = paused_at.lock().expect("pause clock");
                        if n == 40 {
                            *at = Some(Instant::now());
                        }
                        *at
                    };
                    if since.is_some_and(|t| t.elapsed() < Duration::from_secs(9)) {
                        tokio::time::sleep(Duration::from_secs(2)).await;
                    }
                    next.run(req).await
                }
            },
        ));
    let target = common::serve(app).await;
    let (dir, engagement) = notes_engagement(&target, "concurrency: 4\ntimeout_ms: 300\n");
    let started = Instant::now();
    let (output, report) = common::scan_binary(&engagement, &dir.path().join("out"), &[]).await;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(report["run"]["complete"], true, "{stdout}");
    assert!(report.get("stopped").is_none(), "{}", report["stopped"]);
    common::assert_warns(&report, "stopped answering 1 time(s) and came back");
}
