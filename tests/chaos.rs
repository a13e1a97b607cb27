//! A scan of the demo portal behind its chaos layer (`demo --chaos`): connection resets,
//! stalls past the timeout, garbage and truncated bodies, 5xx storms, 429 with
//! Retry-After, a restart that forgets sessions and a data wipe. The scan must finish,
//! count every kind of fault against the probes that met it, and never judge a fault
//! `enforced` or `violation`.

mod common;

use rolegrid::demo::{ChaosOptions, DemoOptions};
use rolegrid::engagement::Redactor;
use rolegrid::fault::FaultKind;
use serde_json::Value;
use std::time::Duration;

/// The scanner's timeout in this test: short, so stalls cost little.
const TIMEOUT: Duration = Duration::from_secs(2);

fn chaos(seed: u64) -> ChaosOptions {
    // Denser than the CLI's schedule: some faults land on requests that are not probes
    // (discovery, baselines, controls), and every kind must still reach a probe.
    ChaosOptions {
        every: 9,
        max_per_kind: 8,
        restart_at: vec![300, 450, 600],
        ..ChaosOptions::new(seed, TIMEOUT)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_of_the_chaos_portal_finishes_and_never_judges_a_fault() {
    let (server, passwords) = common::portal(|o| DemoOptions {
        chaos: Some(chaos(3)),
        ..o
    })
    .await;
    let (mut engagement, api, policy) =
        rolegrid::demo_scan::demo_inputs(&server.base_url(), &passwords).expect("demo inputs");
    engagement.timeout = TIMEOUT;
    // Bounded: the chaos schedule caps every kind, so a scan that hangs is a bug.
    let scanned = tokio::time::timeout(
        Duration::from_secs(240),
        common::scan(engagement, api, policy, 7, Redactor::new()),
    )
    .await
    .expect("the scan of the chaos portal finishes within 240 s");
    let report = &scanned.report;
    let injected = server.chaos_injected();
    println!("injected by the portal: {injected:?}");
    println!("report.faults: {:#}", report["faults"]);
    println!("report.stats: {:#}", report["stats"]);
    println!("report.identities_lost: {:#}", report["identities_lost"]);

    // The portal injected every kind (or the test proves nothing).
    for kind in [
        "connection-reset",
        "timeout",
        "garbage-body",
        "truncated-body",
        "server-error",
        "rate-limited",
        "session-lost",
        "data-wiped",
    ] {
        assert!(
            injected.get(kind).is_some_and(|n| *n > 0),
            "the portal injected no {kind}: {injected:?}"
        );
    }

    // Every kind is counted against probes, with their IDs.
    let rows = report["faults"]["by_kind"]
        .as_array()
        .expect("report.faults.by_kind");
    let row = |kind: FaultKind| -> &Value {
        rows.iter()
            .find(|r| r["kind"] == kind.as_str())
            .unwrap_or_else(|| panic!("no {} row in {rows:#?}", kind.as_str()))
    };
    let mut total = 0;
    for kind in FaultKind::ALL {
        let r = row(kind);
        let count = r["count"].as_u64().unwrap_or(0);
        assert!(count > 0, "{}: {r}", kind.as_str());
        assert!(
            !r["probes"].as_array().is_none_or(Vec::is_empty),
            "{}: no probe ID",
            kind.as_str()
        );
        // A fault that was the judged answer is a server error (a 5xx) or inconclusive.
        for verdict in r["verdicts"].as_object().expect("verdicts").keys() {
            assert!(
                verdict == "inconclusive" || verdict == "server-error",
                "{} judged {verdict}",
                kind.as_str()
            );
        }
        total += count;
    }
    assert_eq!(report["faults"]["total"].as_u64(), Some(total));

    // Restarts forget sessions; every identity logs in again and none is lost.
    assert_eq!(report["identities_lost"], Value::Array(Vec::new()));
    // Faults on the wire were recorded, not crashes: the run is whole.
    assert_eq!(report["run"]["complete"], true, "{:#}", report["stopped"]);
    // No finding rests on a fault: its evidence is a real answer.
    for finding in common::findings(report) {
        let verdict = finding["verdict"].as_str().unwrap_or("");
        assert!(
            verdict != "inconclusive",
            "an inconclusive finding: {finding:#}"
        );
    }

    // report.json reads back with its faults section.
    let text = scanned.file("report.json");
    let back = rolegrid::report::parse_report(&text, std::path::Path::new("report.json"))
        .expect("report.json reads back");
    assert_eq!(
        back.faults.as_ref().map(|f| f.total as u64),
        Some(total),
        "faults read back"
    );
    // The counts per kind are in report.md and in the stdout summary too.
    let md = scanned.file("report.md");
    assert!(md.contains("## Faults of the target"), "{md}");
    assert!(md.contains("| data-wiped |"), "{md}");
    let summary = rolegrid::report::summary_text(&back);
    assert!(
        summary.contains(&format!("faults of the target met by probes: {total} (")),
        "{summary}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn the_portal_without_chaos_injects_nothing() {
    let (server, _) = common::portal(|o| o).await;
    let client = reqwest::Client::new();
    for _ in 0..30 {
        let answer = client
            .get(format!("{}/invoices", server.base_url()))
            .send()
            .await
            .expect("an answer");
        assert_eq!(answer.status(), 401);
    }
    assert!(server.chaos_injected().is_empty());
    server.shutdown().await;
}

#[test]
fn the_cli_schedule_outlasts_the_demo_engagements_timeout() {
    // `demo --chaos` sizes its stalls for the shipped engagement's timeout_ms.
    assert!(rolegrid::demo_scan::DEMO_ENGAGEMENT.contains("\ntimeout_ms: 10000\n"));
    assert!(ChaosOptions::new(0, Duration::from_secs(10)).stall > Duration::from_secs(10));
}

#[test]
fn demo_chaos_runs_from_the_command_line() {
    // The real binary with the shipped engagement (10 s timeout, so stalls of 11 s): the
    // scan finishes (exit 0: the demo's planted flaws fail no gate; 3 would be a run
    // failure) and prints the fault counts.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = common::rolegrid_process()
        .args(["demo", "--chaos", "--no-progress", "--seed", "5", "-o"])
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("rolegrid starts");
    // Bounded: the chaos schedule caps the stalls; kill a run that hangs.
    let started = std::time::Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > Duration::from_secs(180) {
            let _ = child.kill();
            panic!("`rolegrid demo --chaos` did not finish in 180 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let output = child.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("faults of the target met by probes:"),
        "{stdout}"
    );
    let report = common::read_report(dir.path());
    assert_eq!(report["run"]["complete"], true);
    assert!(report["faults"]["total"].as_u64().is_some_and(|n| n > 0));
    assert!(report["stats"]["violations"]
        .as_u64()
        .is_some_and(|n| n > 0));
}
