//! End to end: the demo portal's planted posture weaknesses (headers, session cookie,
//! leaks, CORS, an undocumented route), each found by the scan's posture checks, and
//! each secure twin not flagged; the report's `posture` section never shows a credential.

mod common;

use common::{planted, violations};
use rolegrid::demo::{DemoOptions, POSTURE_FLAWS};
use rolegrid::demo_scan::{self, DemoScan};
use rolegrid::engagement::Redactor;
use serde_json::Value;
use std::collections::BTreeSet;

/// Scans a portal run with `options`; report.json and the text of every written file.
async fn scan(options: impl FnOnce(DemoOptions) -> DemoOptions) -> (Value, Vec<String>) {
    let (server, passwords) = common::portal(options).await;
    let dir = tempfile::tempdir().expect("tempdir");
    demo_scan::run(
        DemoScan {
            base_url: server.base_url(),
            passwords,
            output_dir: dir.path().to_path_buf(),
            progress: false,
            seed: Some(7),
            rate_limit: None,
        },
        Redactor::new(),
    )
    .await
    .expect("scan completes");
    server.shutdown().await;
    let mut texts = Vec::new();
    for entry in std::fs::read_dir(dir.path()).expect("dir") {
        texts.push(std::fs::read_to_string(entry.expect("entry").path()).expect("text"));
    }
    let text = std::fs::read_to_string(dir.path().join("report.json")).expect("report.json");
    (serde_json::from_str(&text).expect("JSON"), texts)
}

/// The posture checks the report's rows name.
fn checks(report: &Value) -> BTreeSet<String> {
    report["posture"]
        .as_array()
        .expect("a posture section")
        .iter()
        .map(|w| {
            assert_eq!(w["verdict"], "weakness", "{w:#}");
            w["check"].as_str().unwrap_or("").to_string()
        })
        .collect()
}

fn planted_checks(ids: &[&str]) -> BTreeSet<String> {
    POSTURE_FLAWS
        .iter()
        .filter(|f| ids.is_empty() || ids.contains(&f.id))
        .map(|f| f.attack.to_string())
        .collect()
}

#[tokio::test]
async fn every_planted_posture_weakness_is_found_and_nothing_else() {
    let (report, texts) = scan(|o| o).await;
    assert_eq!(
        checks(&report),
        planted_checks(&[]),
        "{:#}",
        report["posture"]
    );
    // The matrix findings are untouched by the posture flaws.
    assert_eq!(violations(&report), planted());
    let rows = report["posture"].as_array().expect("rows");
    let row = |check: &str| {
        rows.iter()
            .find(|w| w["check"] == check)
            .unwrap_or_else(|| panic!("no {check} row"))
    };
    assert_eq!(row("undocumented-route")["operation"], "GET /debug");
    assert_eq!(row("undocumented-route")["identity"], "anonymous");
    // One row per operation that serves user objects with their hash.
    let hashed: BTreeSet<&str> = rows
        .iter()
        .filter(|w| w["check"] == "password-in-object")
        .filter_map(|w| w["operation"].as_str())
        .collect();
    assert!(hashed.contains("GET /accounts"), "{hashed:?}");
    assert_eq!(row("session-cookie")["operation"], "login");
    for word in ["HttpOnly", "SameSite"] {
        assert!(
            row("session-cookie")["reason"]
                .as_str()
                .unwrap_or("")
                .contains(word),
            "{:#}",
            row("session-cookie")
        );
    }
    assert_eq!(row("cors")["severity"], "high");
    assert!(row("secret-in-response")["reason"]
        .as_str()
        .unwrap_or("")
        .contains("aws-access-key-id"));
    // The echoed token is scrubbed everywhere; the example key and the hash are named
    // by the posture rows, never shown (a matrix finding's body excerpt is the answer as
    // the target served it).
    for text in &texts {
        assert!(
            !text.contains("eyJhbGciOiJIUzI1NiI"),
            "a token leaked:\n{text}"
        );
    }
    let rows_text = report["posture"].to_string();
    assert!(!rows_text.contains("AKIAIOSFODNN7EXAMPLE"), "the key shown");
    assert!(!rows_text.contains("$2b$12$"), "a hash shown");
    let md = texts
        .iter()
        .find(|t| t.contains("## Posture weaknesses"))
        .expect("report.md has a posture section");
    assert!(md.contains("`credential-echo`"), "{md}");
}

#[tokio::test]
async fn the_secure_twin_has_no_posture_weakness() {
    let (report, _) = scan(DemoOptions::secure).await;
    assert_eq!(checks(&report), BTreeSet::new(), "{:#}", report["posture"]);
}

/// Each posture flaw alone is the only posture row, so no check is found through a
/// neighbour's flaw.
#[tokio::test]
async fn each_posture_flaw_alone_is_its_only_weakness() {
    let runs = POSTURE_FLAWS.iter().map(|flaw| async move {
        let (report, _) = scan(|o| o.secure().flaw(flaw.id, true).expect("known flaw")).await;
        (flaw.id, checks(&report), report["posture"].clone())
    });
    for (id, found, rows) in futures_util::future::join_all(runs).await {
        assert_eq!(
            found,
            planted_checks(&[id]),
            "with only `{id}` on: {rows:#}"
        );
    }
}

#[tokio::test]
async fn posture_checks_switch_off_in_the_engagement() {
    let (server, passwords) = common::portal(|o| o).await;
    let (mut engagement, api, policy) =
        demo_scan::demo_inputs(&server.base_url(), &passwords).expect("demo inputs");
    engagement.posture.passive = false;
    engagement.posture.cors = false;
    let scanned = common::scan(engagement, api, policy, 7, Redactor::new()).await;
    server.shutdown().await;
    // Only the route probe ran.
    assert_eq!(
        checks(&scanned.report),
        BTreeSet::from(["undocumented-route".to_string()])
    );
}
