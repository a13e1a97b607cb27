//! Identities that lose their login mid-scan, against the real demo portal on
//! 127.0.0.1:0: a probe resets a victim's password (`password-reset-bola`) or a staff
//! member resets the whole portal (`admin-reset-bfla`). The scan must finish, find the
//! flaw, name the lost identities with the probes they made inconclusive, and never read
//! a dead session as enforcement; the engagement's `reprovision` request brings a victim
//! back.

mod common;

use rolegrid::demo_scan;
use rolegrid::engagement::{Engagement, EnvSource, Redactor};
use serde_json::Value;
use std::path::Path;

/// Scans a portal with only `flaw` planted; `reprovision` keeps or drops the shipped
/// engagement's `reprovision` request.
async fn scan_with(flaw: Option<&str>, reprovision: bool) -> Value {
    let (server, passwords) = common::portal(|o| {
        let secure = o.secure();
        match flaw {
            Some(flaw) => secure.flaw(flaw, true).expect("known flaw"),
            None => secure,
        }
    })
    .await;
    let (mut engagement, api, policy) =
        demo_scan::demo_inputs(&server.base_url(), &passwords).expect("demo inputs");
    if !reprovision {
        engagement.reprovision = None;
    }
    let scanned = common::scan(engagement, api, policy, 7, Redactor::new()).await;
    server.shutdown().await;
    for file in ["report.json", "report.md"] {
        let written = scanned.file(file);
        for password in passwords.values() {
            assert!(!written.contains(password.as_str()), "a password leaked");
        }
    }
    assert!(scanned.outcome.report.run.complete);
    scanned.report
}

fn findings<'a>(report: &'a Value, operation: &str) -> Vec<&'a Value> {
    common::findings(report)
        .iter()
        .filter(|f| f["operation"] == operation)
        .collect()
}

fn lost<'a>(report: &'a Value, identity: &str) -> Vec<&'a Value> {
    common::list(report, "identities_lost")
        .iter()
        .filter(|l| l["identity"] == identity)
        .collect()
}

/// No dead identity is ever the reason for an `enforced` verdict.
fn no_enforced_from_the_dead(report: &Value) {
    for l in report["identities_lost"]
        .as_array()
        .expect("identities_lost")
    {
        assert_eq!(l["enforced_after_loss"], 0, "{l}");
    }
}

#[tokio::test]
async fn a_password_reset_probe_loses_the_victim_and_the_run_goes_on() {
    let report = scan_with(Some("password-reset-bola"), false).await;
    let found = findings(&report, "PUT /accounts/{accountId}/password");
    assert!(
        found
            .iter()
            .any(|f| f["verdict"] == "violation" && f["attack"] == "id-swap"),
        "{found:#?}"
    );
    let bob = lost(&report, "bob");
    assert_eq!(bob.len(), 1, "{:#}", report["identities_lost"]);
    let bob = bob[0];
    assert_eq!(bob["reprovisioned"], false);
    assert!(bob["reason"]
        .as_str()
        .is_some_and(|r| r.contains("logging in again failed")));
    let affected = bob["affected_probes"].as_array().expect("affected");
    assert!(!affected.is_empty(), "{bob}");
    assert!(bob["probes_after_loss"].as_u64().unwrap_or(0) >= affected.len() as u64);
    no_enforced_from_the_dead(&report);
    // The dead identities' probes are counted as inconclusive, and said so.
    assert!(report["stats"]["inconclusive"].as_u64().unwrap_or(0) >= affected.len() as u64);
    common::assert_warns(&report, "identity `bob` lost its login");
}

#[tokio::test]
async fn reprovisioning_brings_the_victim_back() {
    let report = scan_with(Some("password-reset-bola"), true).await;
    let bob = lost(&report, "bob");
    // Each spelling of the swapped account ID (plain, leading zero…) resets the password
    // again; every time bob comes back and nothing of his is left doubtful.
    assert!(!bob.is_empty(), "{:#}", report["identities_lost"]);
    for loss in &bob {
        assert_eq!(loss["reprovisioned"], true, "{loss}");
        assert_eq!(loss["affected_probes"].as_array().map(Vec::len), Some(0));
        assert_eq!(loss["probes_after_loss"], 0);
    }
    no_enforced_from_the_dead(&report);
    assert!(findings(&report, "PUT /accounts/{accountId}/password")
        .iter()
        .any(|f| f["verdict"] == "violation"));
}

#[tokio::test]
async fn a_portal_reset_by_staff_is_found_and_everyone_logs_in_again() {
    let report = scan_with(Some("admin-reset-bfla"), false).await;
    let found = findings(&report, "POST /admin/reset");
    assert_eq!(found.len(), 1, "{:#}", report["findings"]);
    assert_eq!(found[0]["verdict"], "violation");
    assert_eq!(found[0]["attack"], "escalation");
    assert_eq!(found[0]["actor"]["identity"], "carol");
    // The reset restored every password: sessions were renewed, nobody was lost, and
    // nothing became doubtful.
    assert_eq!(report["identities_lost"], Value::Array(Vec::new()));
    assert_eq!(report["stats"]["violations"], 1, "{:#}", report["findings"]);
    common::assert_warns(&report, "renewed");
    // The reset also wiped rolegrid's canaries: the writes aimed at them afterwards cannot
    // be decided (never `enforced`), and the report names them with the reason.
    let inconclusive = report["stats"]["inconclusive"].as_u64().unwrap_or(0);
    if inconclusive > 0 {
        common::assert_warns(&report, &format!("{inconclusive} probe(s) inconclusive"));
        common::assert_warns(&report, "the object may be gone");
    }
    let canaries = &report["canaries"];
    assert_eq!(canaries["left"], Value::Array(Vec::new()), "{canaries:#}");
}

#[tokio::test]
async fn secure_portal_with_destructive_routes_is_silent() {
    let report = scan_with(None, true).await;
    assert_eq!(report["findings"], Value::Array(Vec::new()));
    assert_eq!(report["stats"]["inconclusive"], 0);
    assert_eq!(report["identities_lost"], Value::Array(Vec::new()));
    // The destructive operations were still probed where the matrix says "refuse".
    for cell in report["matrix"].as_array().expect("matrix") {
        let op = cell["operation"].as_str().unwrap_or("");
        if op == "PUT /accounts/{accountId}/password" && cell["role"] == "client" {
            assert!(cell["probes"].as_u64().unwrap_or(0) > 0, "{cell}");
        }
    }
}

#[test]
fn reprovision_errors_point_at_the_line() {
    let yaml = "target: http://127.0.0.1:9\nspec: s.yaml\nmatrix: m.csv\nidentities:\n  - name: alice\n    role: client\n    auth:\n      bearer: tok\nreprovision:\n  as: nobody\n  path: /x\n";
    let err = Engagement::parse(yaml, Path::new("e.yaml"), &EnvSource::default())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("e.yaml:9") && err.contains("nobody"), "{err}");
    let missing = "target: http://127.0.0.1:9\nspec: s.yaml\nmatrix: m.csv\nidentities:\n  - name: alice\n    role: client\n    password: \"${NOT_SET_ANYWHERE_42}\"\n    auth:\n      bearer: tok\nreprovision:\n  path: /reset/{password}\n";
    let err = Engagement::parse(missing, Path::new("e.yaml"), &EnvSource::default())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("NOT_SET_ANYWHERE_42") && err.contains("e.yaml:7"),
        "{err}"
    );
}

/// `GET /invoices` answers two invoices a page with a `Link: rel="next"`; discovery
/// follows it, so root (who sees all four seeded invoices) reads every page.
#[tokio::test]
async fn discovery_follows_the_paginated_invoice_list() {
    let (server, passwords) = common::portal(|o| o).await;
    let (engagement, api, policy) =
        demo_scan::demo_inputs(&server.base_url(), &passwords).expect("demo inputs");
    let identities = engagement.identities_with_anonymous();
    let executor =
        common::logged_in(&engagement, &identities, &api.base_path(), Redactor::new()).await;
    let answers = rolegrid::exec::discovery::fetch_collections(
        &executor,
        &api,
        &policy,
        &identities,
        &engagement.harvest,
        4,
    )
    .await;
    let root = identities
        .iter()
        .position(|i| i.name == "root")
        .expect("root");
    let pages: Vec<&Value> = answers
        .iter()
        .filter(|(d, _)| d.identity == root && api.operations[d.op].key() == "GET /invoices")
        .filter_map(|(_, body)| body.as_ref())
        .collect();
    let all: Vec<String> = answers
        .iter()
        .filter(|(d, _)| d.identity == root && api.operations[d.op].key() == "GET /invoices")
        .map(|(d, b)| format!("{} {}", d.request.path_and_query(), b.is_some()))
        .collect();
    // Two pages hold the four invoices (a third, empty one may be asked for when the
    // last page is full).
    assert!(pages.len() >= 2, "{all:?}");
    let ids: std::collections::BTreeSet<String> = pages
        .iter()
        .flat_map(|p| p["items"].as_array().cloned().unwrap_or_default())
        .map(|i| i["id"].to_string())
        .collect();
    assert_eq!(ids.len(), 4, "{ids:?}");
    server.shutdown().await;
}
