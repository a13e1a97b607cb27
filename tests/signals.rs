//! Real signals sent to the real binary mid-scan: SIGTERM (like Ctrl-C) stops sending and
//! leaves a valid partial report that says what did not run; a second signal ends the
//! process at once with the report on disk still valid JSON. The demo is throttled
//! (`--rate-limit`) so the scan is still sending when the signal comes.

mod common;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A throttled demo scan into a fresh folder, sent `name` 4 s in (still probing then).
fn interrupted_demo(name: &str) -> (tempfile::TempDir, Child) {
    let dir = tempfile::tempdir().expect("tempdir");
    let child = common::rolegrid_process()
        .args(["demo", "--no-progress", "--rate-limit", "15", "-o"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    std::thread::sleep(Duration::from_secs(4));
    signal(&child, name);
    (dir, child)
}

fn signal(child: &Child, name: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{name} failed");
}

/// Waits at most `limit` for the child to exit; kills it and fails otherwise.
fn exit_within(mut child: Child, limit: Duration) -> (Option<i32>, String, Duration) {
    let started = Instant::now();
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("killed");
            panic!(
                "still running after {limit:?}:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let waited = started.elapsed();
    let out = child.wait_with_output().expect("exited");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text, waited)
}

fn count(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or(u64::MAX)
}

#[test]
fn sigterm_mid_scan_writes_a_partial_report_naming_what_did_not_run() {
    let (dir, child) = interrupted_demo("TERM");
    let (code, text, _) = exit_within(child, Duration::from_secs(60));
    assert_eq!(
        code,
        Some(3),
        "an interrupted scan is a run failure:\n{text}"
    );
    assert!(text.contains("interrupted"), "{text}");
    let report = common::read_report(dir.path());
    assert_eq!(report["run"]["complete"], false);
    let stopped = &report["stopped"];
    assert_eq!(stopped["reason"], "interrupted", "{stopped}");
    let judged = count(&report["stats"]["probes"]);
    let not_run = count(&stopped["probes_not_run"]);
    assert!(
        judged > 0 && not_run > 0,
        "{judged} judged, {not_run} not run"
    );
    assert_eq!(
        judged + not_run,
        count(&stopped["probes_planned"]),
        "every planned probe is either judged or listed as not run: {stopped}"
    );
    let listed: u64 = stopped["not_run"]
        .as_array()
        .expect("not_run rows")
        .iter()
        .map(|row| count(&row["probes"]))
        .sum();
    assert_eq!(listed, not_run, "{stopped}");
    // One signal: the cleanup ran to its end.
    assert_eq!(
        stopped["stages_not_run"],
        serde_json::json!([]),
        "{stopped}"
    );
    assert_eq!(report["canaries"]["left"], serde_json::json!([]));
}

#[test]
fn a_second_signal_exits_at_once_and_the_report_on_disk_stays_valid() {
    let (dir, child) = interrupted_demo("INT");
    // The partial report is written before the (throttled) canary cleanup starts.
    let started = Instant::now();
    while !dir.path().join("report.json").exists() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no partial report"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    signal(&child, "INT");
    let (code, text, waited) = exit_within(child, Duration::from_secs(30));
    assert_eq!(code, Some(3), "{text}");
    assert!(
        waited < Duration::from_secs(2),
        "the second signal took {waited:?} to end the run"
    );
    let report = common::read_report(dir.path());
    assert_eq!(report["run"]["complete"], false);
    assert_eq!(
        report["stopped"]["stages_not_run"],
        serde_json::json!(["canary cleanup"]),
        "the report on disk is the one written before the cleanup"
    );
    // No temporary file is left beside it.
    let stray: Vec<_> = std::fs::read_dir(dir.path())
        .expect("report folder")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}
