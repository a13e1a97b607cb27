//! End to end: the demo portal's planted posture weaknesses (headers, session cookie,
//! leaks, CORS, an undocumented route, sessions after logout, password and role changes,
//! rate limits), each found by the scan's posture checks, and
//! each secure twin not flagged; the report's `posture` section never shows a credential.

mod common;

use common::{planted, violations};
use rolegrid::demo::{DemoOptions, HTTPS_ONLY_FLAWS, OPT_IN_CHECK_FLAWS, POSTURE_FLAWS};
use rolegrid::demo_scan;
use rolegrid::engagement::Redactor;
use rolegrid::posture::{LoginBurst, OperationBurst, RoleChange};
use serde_json::Value;
use std::collections::BTreeSet;

/// Scans a portal run with `options`, the opt-in posture checks (logout, login burst)
/// switched on when `opt_in`; report.json and the text of every written file.
async fn scan_with(
    options: impl FnOnce(DemoOptions) -> DemoOptions,
    opt_in: bool,
) -> (Value, Vec<String>) {
    let (server, passwords) = common::portal(options).await;
    let (mut engagement, api, policy) =
        demo_scan::demo_inputs(&server.base_url(), &passwords).expect("demo inputs");
    if opt_in {
        engagement.posture.logout = Some("POST /auth/logout".into());
        engagement.posture.password_change = true;
        engagement.posture.login_burst = Some(LoginBurst {
            path: "/auth/login".into(),
            json: serde_json::json!({"email": "bob@globex.test", "password": "not-bobs-password"}),
            count: 15,
        });
        engagement.posture.role_change = Some(role_change());
        engagement.posture.operation_bursts = vec![OperationBurst {
            operation: "GET /export/invoices.csv".into(),
            actor: Some("root".into()),
            json: None,
            count: 30,
        }];
    }
    let scanned = common::scan(engagement, api, policy, 7, Redactor::new()).await;
    server.shutdown().await;
    let mut texts = Vec::new();
    for entry in std::fs::read_dir(scanned.dir.path()).expect("dir") {
        texts.push(std::fs::read_to_string(entry.expect("entry").path()).expect("text"));
    }
    (scanned.report, texts)
}

/// carol (staff) raised to admin by root, then lowered back to staff: the token she
/// held as admin must lose `GET /admin/users`.
fn role_change() -> RoleChange {
    RoleChange {
        operation: "PUT /admin/users/{user_id}/role".into(),
        actor: "root".into(),
        identity: "carol".into(),
        json: Some(serde_json::json!({"role": "{role}"})),
        from: Some("admin".into()),
        to: None,
    }
}

async fn scan(options: impl FnOnce(DemoOptions) -> DemoOptions) -> (Value, Vec<String>) {
    scan_with(options, true).await
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

/// The checks that find the planted posture flaws named (all when `ids` is empty) over
/// plain http (the https-only ones are in tests/deploy.rs).
fn planted_checks(ids: &[&str]) -> BTreeSet<String> {
    POSTURE_FLAWS
        .iter()
        .filter(|f| ids.is_empty() || ids.contains(&f.id))
        .filter(|f| !HTTPS_ONLY_FLAWS.contains(&f.id))
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
    // One row per place the hash sits in (a list's items, a profile), each listing the
    // operations that serve it.
    let hashed: BTreeSet<&str> = rows
        .iter()
        .filter(|w| w["check"] == "password-in-object")
        .flat_map(|w| w["operations"].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .collect();
    for route in ["GET /admin/users", "GET /me"] {
        assert!(hashed.contains(route), "{hashed:?}");
    }
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
    // Clean because each opt-in check judged the twin, not because one gave up.
    let warnings = report["warnings"].to_string();
    assert!(!warnings.contains("posture"), "{warnings}");
}

/// Each posture flaw alone is the only posture row, so no check is found through a
/// neighbour's flaw.
#[tokio::test]
async fn each_posture_flaw_alone_is_its_only_weakness() {
    let runs = POSTURE_FLAWS.iter().map(|flaw| async move {
        let (report, _) = scan(|o| o.secure().flaw(flaw.id, true).expect("known flaw")).await;
        (
            flaw.id,
            checks(&report),
            report["posture"].clone(),
            report["warnings"].clone(),
        )
    });
    for (id, found, rows, warnings) in futures_util::future::join_all(runs).await {
        assert_eq!(
            found,
            planted_checks(&[id]),
            "with only `{id}` on: {rows:#}, warnings: {warnings:#}"
        );
    }
}

#[tokio::test]
async fn opt_in_checks_stay_off_with_the_shipped_engagement() {
    let (report, _) = scan_with(|o| o, false).await;
    let mut expected = planted_checks(&[]);
    for id in OPT_IN_CHECK_FLAWS {
        let flaw = POSTURE_FLAWS.iter().find(|f| f.id == *id).expect("listed");
        expected.remove(flaw.attack);
    }
    assert_eq!(checks(&report), expected, "{:#}", report["posture"]);
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

/// A role change the target refuses (alice may not change roles) is no verdict either
/// way: a warning says which step was refused, and carol keeps her role.
#[tokio::test]
async fn a_refused_role_change_is_a_warning_not_a_pass() {
    let (server, passwords) = common::portal(|o| o).await;
    let (mut engagement, api, policy) =
        demo_scan::demo_inputs(&server.base_url(), &passwords).expect("demo inputs");
    engagement.posture.role_change = Some(RoleChange {
        actor: "alice".into(),
        ..role_change()
    });
    let scanned = common::scan(engagement, api, policy, 7, Redactor::new()).await;
    server.shutdown().await;
    assert!(!checks(&scanned.report).contains("session-after-role-change"));
    let warnings = scanned.report["warnings"].to_string();
    assert!(
        warnings.contains("posture role_change")
            && warnings.contains("/admin/users/3/role as `alice` answered 403"),
        "{warnings}"
    );
}

#[test]
fn the_readme_counts_the_default_flaws() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let authorization = rolegrid::demo::FLAWS
        .iter()
        .filter(|f| f.default_on())
        .count();
    let phrase = format!(
        "{authorization} planted authorization flaws and {} posture weaknesses on",
        POSTURE_FLAWS.len()
    );
    assert!(readme.contains(&phrase), "README.md should say: {phrase}");
}

/// The error text of parsing `yaml` as `e.yaml` (empty when it parses).
fn parse_error(yaml: &str) -> String {
    let env = rolegrid::engagement::EnvSource::default();
    match rolegrid::engagement::Engagement::parse(yaml, std::path::Path::new("e.yaml"), &env) {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_bad_posture_section_is_an_error_at_its_line() {
    let yaml = "target: http://127.0.0.1:9\nspec: s.yaml\nmatrix: m.csv\nidentities:\n  - {name: a, role: r, auth: {bearer: t}}\nposture:\n  cors: false\n  fail_on: severe\n";
    let err = parse_error(yaml);
    assert!(
        err.contains("e.yaml:8") && err.contains("high, medium or low"),
        "{err}"
    );
    let err = parse_error(&yaml.replace("fail_on: severe", "logout: /auth/logout"));
    assert!(
        err.contains("e.yaml:8") && err.contains("METHOD /path"),
        "{err}"
    );
    assert_eq!(parse_error(&yaml.replace("severe", "high")), "");
    let role_change = |body: &str| {
        parse_error(&yaml.replace(
            "fail_on: severe",
            &format!("role_change: {{operation: 'PUT /users/{{user_id}}/role', {body}}}"),
        ))
    };
    let err = role_change("as: a, identity: a, from: r, to: r");
    assert!(
        err.contains("e.yaml:8") && err.contains("another identity for `as:`"),
        "{err}"
    );
    let err = role_change("as: a, identity: nobody, to: r");
    assert!(
        err.contains("`nobody`") && err.contains("use one of: a"),
        "{err}"
    );
    let bursts = yaml.replace(
        "fail_on: severe",
        "operation_bursts:\n    - {operation: GET /export, as: a, count: 51}",
    );
    let err = parse_error(&bursts);
    assert!(
        err.contains("e.yaml:8") && err.contains("from 1 to 50"),
        "{err}"
    );
    assert_eq!(parse_error(&bursts.replace("51", "20")), "");
}
