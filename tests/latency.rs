//! Latency mode end to end, against real servers on 127.0.0.1:0: the demo portal's latency
//! knob, the load engine's counts, bounds and fixed-rate schedule, the coordinated-omission
//! correction (a stalled server), and the CLI's exit codes against a p95 target.

mod common;

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use common::rolegrid;
use rolegrid::demo::{self, DemoOptions, LatencyModel};
use rolegrid::engagement::{Engagement, EnvSource, Redactor};
use rolegrid::exec::load::{run_load, LoadOptions, LoadReport, LoadTarget, StopReason};
use rolegrid::exec::Executor;
use rolegrid::request::RequestSpec;
use rolegrid::spec::Method;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PASSWORD: &str = "Latency-Test-Passw0rd";

fn target(path: &str, operation: &str) -> LoadTarget {
    LoadTarget {
        request: RequestSpec {
            method: Method::Get,
            path: path.into(),
            query: vec![],
            headers: vec![],
            json: None,
        },
        identity: 0,
        identity_name: "tester".into(),
        operation: operation.into(),
    }
}

/// An executor for `base_url` with one identity: a bearer token, or alice's login.
async fn executor(base_url: &str, concurrency: usize, alice: bool) -> Executor {
    let auth = if alice {
        r#"{ login: { method: POST, path: /auth/login, json: { email: alice@acme.test, password: "${PW}" }, token: $.token, template: "Bearer {token}" } }"#
    } else {
        r#"{ bearer: "${PW}" }"#
    };
    let yaml = format!(
        "target: {base_url}\nspec: s.yaml\nmatrix: m.csv\nconcurrency: {concurrency}\ntimeout_ms: 5000\nidentities:\n  - name: tester\n    tenant: acme\n    role: client\n    auth: {auth}\n"
    );
    let env = EnvSource::default().with("PW", PASSWORD);
    let engagement = Engagement::parse(&yaml, Path::new("t.yaml"), &env).expect("engagement");
    common::logged_in(&engagement, &engagement.identities, "", Redactor::new()).await
}

/// A tiny server: `GET /hit` counts, `GET /slow` takes 20 ms, `GET /stall` answers at
/// once except the 60th call, which holds every other call back for 300 ms.
struct TestServer {
    base_url: String,
    hits: Arc<AtomicU64>,
}

async fn test_server() -> TestServer {
    #[derive(Clone)]
    struct S {
        hits: Arc<AtomicU64>,
        gate: Arc<tokio::sync::Mutex<()>>,
    }
    let state = S {
        hits: Arc::new(AtomicU64::new(0)),
        gate: Arc::new(tokio::sync::Mutex::new(())),
    };
    let hits = state.hits.clone();
    let app = Router::new()
        .route(
            "/hit",
            get(|State(s): State<S>| async move {
                s.hits.fetch_add(1, Ordering::SeqCst);
                "ok"
            }),
        )
        .route(
            "/slow",
            get(|State(s): State<S>| async move {
                s.hits.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                "ok"
            }),
        )
        .route(
            "/stall",
            get(|State(s): State<S>| async move {
                let n = s.hits.fetch_add(1, Ordering::SeqCst);
                let _held = s.gate.lock().await;
                if n == 60 {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                "ok"
            }),
        )
        .with_state(state);
    let addr = common::serve_addr(app).await;
    TestServer {
        base_url: format!("http://{addr}"),
        hits,
    }
}

/// The load engine against the test server: `targets` as (path, operation) within
/// `options`, from an executor as wide as `options.concurrency`. Returns the server (for
/// its hit count), the report, and how long the run itself took.
async fn load_test_server(
    targets: &[(&str, &str)],
    options: LoadOptions,
) -> (TestServer, LoadReport, Duration) {
    let server = test_server().await;
    let executor = executor(&server.base_url, options.concurrency, false).await;
    let targets: Vec<LoadTarget> = targets.iter().map(|(p, op)| target(p, op)).collect();
    let started = Instant::now();
    let report = run_load(&executor, &targets, &options).await;
    (server, report, started.elapsed())
}

/// Closed loop: `concurrency` workers, until `max_requests` or `max_duration`.
fn bounded(max_requests: u64, max_duration: Duration, concurrency: usize) -> LoadOptions {
    LoadOptions {
        max_requests,
        max_duration,
        concurrency,
        rate: None,
    }
}

/// Fixed rate: `rate` requests a second, `max_requests` of them, four in flight at most,
/// within five seconds.
fn fixed_rate(rate: f64, max_requests: u64) -> LoadOptions {
    LoadOptions {
        rate: Some(rate),
        ..bounded(max_requests, Duration::from_secs(5), 4)
    }
}

fn histogram_total(report: &LoadReport) -> u64 {
    report
        .cells
        .iter()
        .map(|c| c.latency.percentiles.count)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn knob_delays_follow_the_model() {
    let model = LatencyModel::new(20.0, 80.0).expect("model");
    let mut options = DemoOptions::new(
        demo::USERS
            .iter()
            .map(|u| (u.email.to_string(), PASSWORD.to_string()))
            .collect(),
    );
    options.latency.insert("GET /invoices".into(), model);
    options.latency_seed = Some(7);
    let portal = common::spawn_portal(options).await;
    let executor = executor(&portal.base_url(), 64, true).await;
    // Fixed rate well below capacity, so queueing does not add to the knob's delays.
    let load = LoadOptions {
        max_requests: 1000,
        max_duration: Duration::from_secs(10),
        concurrency: 64,
        rate: Some(500.0),
    };
    let targets = [
        target("/invoices", "GET /invoices"),
        target("/me", "GET /me"),
    ];
    let report = run_load(&executor, &targets, &load).await;
    portal.shutdown().await;
    assert_eq!(report.completed, 1000, "{report:?}");
    let ops = report.per_operation();
    let invoices = &ops
        .iter()
        .find(|(op, _)| op == "GET /invoices")
        .expect("row")
        .1;
    let me = &ops.iter().find(|(op, _)| op == "GET /me").expect("row").1;
    let truth = model.true_quantile(0.95);
    eprintln!(
        "knob: GET /invoices p95 {} ms, model {truth} ms",
        invoices.percentiles.p95_ms
    );
    // 500 draws: the sample p95 itself is within about ±6 % (one sigma) of the truth.
    assert!(
        (invoices.percentiles.p95_ms / truth - 1.0).abs() < 0.2,
        "p95 {} ms vs model {truth} ms",
        invoices.percentiles.p95_ms
    );
    // The other route is not delayed.
    assert!(
        me.percentiles.p50_ms < 10.0,
        "GET /me p50 {} ms",
        me.percentiles.p50_ms
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_equal_the_requests_sent() {
    let targets = [("/hit", "GET /hit"), ("/hit?x=1", "GET /hit2")];
    let (server, report, _) =
        load_test_server(&targets, bounded(200, Duration::from_secs(10), 8)).await;
    assert_eq!(report.stopped_by, StopReason::Requests);
    assert_eq!(report.requests, 200);
    assert_eq!(report.completed, 200);
    assert_eq!(server.hits.load(Ordering::SeqCst), 200);
    assert_eq!(histogram_total(&report), 200);
    // Round-robin: each target got half.
    for cell in &report.cells {
        assert_eq!(cell.requests, 100, "{}", cell.operation);
        assert_eq!(cell.statuses.get(&200), Some(&100));
    }
    // The JSON round-trips, histograms included.
    let json = serde_json::to_string(&report).expect("serialises");
    let back: LoadReport = serde_json::from_str(&json).expect("deserialises");
    assert_eq!(
        back.cells[0].latency.histogram.0,
        report.cells[0].latency.histogram.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_time_bound_stops_the_run() {
    let options = bounded(1_000_000, Duration::from_millis(500), 4);
    let (server, report, elapsed) = load_test_server(&[("/slow", "GET /slow")], options).await;
    // 500 ms of sending, then in-flight requests are cancelled: no waiting on them.
    assert!(elapsed < Duration::from_millis(1200), "{elapsed:?}");
    assert_eq!(report.stopped_by, StopReason::Duration);
    assert!(report.requests > 10 && report.requests < 1000, "{report:?}");
    assert_eq!(report.requests, report.completed + report.cancelled);
    assert_eq!(histogram_total(&report), report.completed);
    assert!(server.hits.load(Ordering::SeqCst) >= report.completed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_rate_follows_the_schedule() {
    let options = fixed_rate(100.0, 40);
    let (_, report, _) = load_test_server(&[("/hit", "GET /hit")], options).await;
    assert_eq!(report.requests, 40);
    // Request 39 is due at 390 ms; all 40 at 100/s take about 0.4 s, not less.
    assert!(
        report.elapsed_secs >= 0.38 && report.elapsed_secs < 1.5,
        "{}",
        report.elapsed_secs
    );
    assert!(report.cells[0].service_time.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_raises_the_corrected_p95_above_the_uncorrected() {
    let options = fixed_rate(200.0, 300);
    let (_, report, _) = load_test_server(&[("/stall", "GET /stall")], options).await;
    assert_eq!(report.completed, 300, "{report:?}");
    let cell = &report.cells[0];
    let corrected = cell.latency.percentiles.p95_ms;
    let uncorrected = cell
        .service_time
        .as_ref()
        .expect("fixed rate")
        .percentiles
        .p95_ms;
    // About 60 requests were due during the 300 ms stall: a fifth of the run waited, yet
    // only the few in flight saw it as service time.
    assert!(corrected > 100.0, "corrected p95 {corrected} ms");
    assert!(
        corrected > 5.0 * uncorrected,
        "corrected {corrected} ms vs uncorrected {uncorrected} ms"
    );
    assert!(report.max_schedule_lag_ms.unwrap_or(0.0) > 200.0);
}

#[test]
fn cli_exit_code_follows_the_p95_target() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |target_ms: &str| {
        rolegrid()
            .args(["demo", "--latency-mode", "--requests", "150"])
            .args(["--latency", "*=2:5", "--p95-target-ms", target_ms, "-o"])
            .arg(dir.path())
            .output()
            .expect("runs")
    };
    let pass = run("60000");
    let stdout = String::from_utf8_lossy(&pass.stdout);
    assert_eq!(pass.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("pass") && stdout.contains("GET /invoices"),
        "{stdout}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("latency.json")).expect("file"))
            .expect("JSON");
    assert_eq!(json["schema_version"], 1);
    assert_eq!(json["requests"], 150);

    // Every route sleeps a median 2 ms (p95 5 ms), so a 1 ms target must fail.
    let fail = run("1");
    let stdout = String::from_utf8_lossy(&fail.stdout);
    assert_eq!(fail.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAIL"), "{stdout}");

    let bad = rolegrid()
        .args(["demo", "--latency-mode", "--requests", "0"])
        .output()
        .expect("runs");
    assert_eq!(bad.status.code(), Some(2));
    let bad = rolegrid()
        .args(["demo", "--latency-mode", "--latency", "GET /nope=1:2"])
        .output()
        .expect("runs");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("GET /invoices"));
}
