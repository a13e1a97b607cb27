//! Real APIs, not only ours: three fixture APIs in house styles unlike the demo portal's,
//! each with planted flaws and their secure twins, scanned with an engagement that gives
//! only the URL, the logins and the matrix (no `harvest`, no `objects`, no `attributes`).
//!
//! - A, `a_newsdesk`: versioned paths (`/articles/v1/{article_title}`), natural keys,
//!   wrapped lists (`{"Articles": [...]}`), HTTP Basic.
//! - B, `b_marketplace`: form login answering a session cookie, creates by `PUT` on the
//!   collection, the subject of a profile update in its body, a role string without an enum.
//! - C, `c_ci_teams`: `<resource>_id` fields, `offset`/`limit` with `total_entries`, teams
//!   whose lists must be filtered, a bearer token from a JSON login, a self-update and a
//!   sign-up that must ignore privileged fields.
//!
//! Each scan with every flaw on must find exactly the planted (operation, attack) pairs;
//! each scan of the secure twin must find no violation and nothing suspicious.

mod a_newsdesk;
mod b_marketplace;
mod behaviour;
mod c_ci_teams;
mod common;

use rolegrid::engagement::{Engagement, EnvSource, Redactor};
use rolegrid::matrix::Policy;
use rolegrid::scan::{self, ScanInput};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;

type Pairs = BTreeSet<(String, String)>;

fn fixture_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/real_apis")
        .join(name)
}

/// Scans `base_url` with the fixture's engagement, spec and matrix, as `rolegrid scan`
/// does; `env` holds the `${VAR}` values of the credentials.
async fn scan_fixture(name: &str, base_url: &str, env: &[(&str, &str)]) -> Value {
    let dir = fixture_dir(name);
    let path = dir.join("engagement.yaml");
    let text = std::fs::read_to_string(&path).expect("the fixture's engagement.yaml");
    let mut source = EnvSource::process();
    for (var, value) in env {
        source = source.with(var, value);
    }
    let mut engagement = Engagement::parse(&text, &path, &source).expect("engagement parses");
    engagement.target = url::Url::parse(base_url).expect("base url");
    let api = rolegrid::spec::load(&engagement.spec).expect("the fixture's spec loads");
    let roles: Vec<String> = engagement
        .identities
        .iter()
        .map(|i| i.role.clone())
        .collect();
    let policy =
        Policy::load(&engagement.matrix, &api, &roles, false).expect("the fixture's matrix loads");
    let out = tempfile::tempdir().expect("tempdir");
    scan::scan(
        ScanInput {
            engagement,
            api,
            policy,
            output_dir: out.path().to_path_buf(),
            progress: false,
            seed: Some(7),
            shard: None,
        },
        Redactor::new(),
    )
    .await
    .expect("scan completes");
    let report = std::fs::read_to_string(out.path().join("report.json")).expect("report.json");
    serde_json::from_str(&report).expect("report.json is JSON")
}

/// (operation, attack) of the findings with one of `verdicts`.
fn pairs(report: &Value, verdicts: &[&str]) -> Pairs {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| verdicts.iter().any(|v| f["verdict"] == *v))
        .map(|f| {
            (
                f["operation"].as_str().unwrap_or("").to_string(),
                f["attack"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// A planted flaw: its name (the `Flaws` field), and the (operation, attack) it must be
/// reported as.
type Planted = &'static [(&'static str, &'static str, &'static str)];

/// Planted flaws the engine does not find yet, each with what it lacks: the tests then
/// expect exactly the other flaws, so the day one is found the test fails until it leaves
/// this list, and nothing found today can be lost unnoticed. Empty: every flaw is found.
const NOT_YET_FOUND: &[(&str, &str)] = &[];

fn not_yet_found(flaw: &str) -> Option<&'static str> {
    NOT_YET_FOUND
        .iter()
        .find(|(name, _)| *name == flaw)
        .map(|(_, why)| *why)
}

fn expected(list: Planted) -> Pairs {
    list.iter()
        .filter(|(flaw, _, _)| {
            let missing = not_yet_found(flaw);
            if let Some(why) = missing {
                println!("notice: planted flaw `{flaw}` is not expected yet: {why}");
            }
            missing.is_none()
        })
        .map(|(_, op, attack)| (op.to_string(), attack.to_string()))
        .collect()
}

/// What a reader needs when a set differs: every finding, the warnings, and the matrix
/// cells that were not tested with their reasons.
fn explain(name: &str, report: &Value) -> String {
    let mut out = format!("--- {name}: findings\n");
    for f in report["findings"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  {} {} {} actor={} victim={} status={} reason={}\n",
            f["verdict"].as_str().unwrap_or("?"),
            f["operation"].as_str().unwrap_or("?"),
            f["attack"].as_str().unwrap_or("?"),
            f["actor"]["identity"].as_str().unwrap_or("?"),
            f["victim"]["identity"].as_str().unwrap_or("-"),
            f["status"],
            f["evidence"]["reason"].as_str().unwrap_or("")
        ));
    }
    out.push_str(&format!("--- {name}: warnings\n"));
    for w in report["warnings"].as_array().into_iter().flatten() {
        out.push_str(&format!("  {}\n", w.as_str().unwrap_or(&w.to_string())));
    }
    out.push_str(&format!("--- {name}: cells not tested\n"));
    for cell in report["matrix"].as_array().into_iter().flatten() {
        if cell["coverage"] != "tested" {
            out.push_str(&format!(
                "  {} [{}] {} {}: {}\n",
                cell["operation"].as_str().unwrap_or("?"),
                cell["role"].as_str().unwrap_or("?"),
                cell["access"].as_str().unwrap_or("?"),
                cell["coverage"].as_str().unwrap_or("?"),
                cell["reason"].as_str().unwrap_or("")
            ));
        }
    }
    if let Some(canaries) = report.get("canaries") {
        out.push_str(&format!("--- {name}: canaries\n  {canaries}\n"));
    }
    out.push_str(&format!("--- {name}: stats\n  {}\n", report["stats"]));
    out
}

/// The scan of the flawed API finds exactly `want` as violations (server errors count as
/// findings too: none is planted, so any is a difference).
fn assert_finds(name: &str, report: &Value, want: &Pairs) {
    let found = pairs(report, &["violation", "server-error"]);
    eprintln!("{}", explain(name, report));
    assert_eq!(
        &found, want,
        "{name}: the violations found differ from the planted flaws (found left, planted right)"
    );
}

/// The scan of the secure twin finds no violation, nothing suspicious, no server error.
fn assert_clean(name: &str, report: &Value) {
    let found = pairs(report, &["violation", "suspicious", "server-error"]);
    eprintln!("{}", explain(name, report));
    assert!(
        found.is_empty(),
        "{name}: the secure twin was reported: {found:?}"
    );
}

/// With one flaw on, the scan reports that flaw's finding and nothing else; a difference is
/// recorded in `differ` (every flaw of the fixture is scanned before the test fails).
fn check_alone(
    fixture: &str,
    planted: (&str, &str, &str),
    report: &Value,
    differ: &mut Vec<String>,
) {
    let (flaw, op, attack) = planted;
    let found = pairs(report, &["violation", "server-error"]);
    let want: Pairs = match not_yet_found(flaw) {
        Some(why) => {
            println!("notice: planted flaw `{flaw}` is not expected yet: {why}");
            Pairs::new()
        }
        None => [(op.to_string(), attack.to_string())].into_iter().collect(),
    };
    if found != want {
        eprintln!("{}", explain(&format!("{fixture} (only {flaw})"), report));
        differ.push(format!("{flaw}: want {want:?}, found {found:?}"));
    }
}

fn newsdesk_env() -> Vec<(&'static str, &'static str)> {
    a_newsdesk::USERS.iter().map(|u| (u.2, u.1)).collect()
}

/// Fixture A's planted flaws and the findings they must give.
const NEWSDESK_FLAWS: Planted = &[
    // article_read_bola: a customer reads another account's article by its title (a
    // natural key behind a version segment): an object read across tenants.
    (
        "article_read_bola",
        "GET /articles/v1/{article_title}",
        "id-swap",
    ),
    // account_read_bola: a customer reads another account by its name.
    (
        "account_read_bola",
        "GET /accounts/v2/{account_name}",
        "id-swap",
    ),
    // accounts_list_leak: the `{"accounts": [...]}` list a customer gets holds every
    // account, not only its own (tenant-scoped collection answering other tenants).
    ("accounts_list_leak", "GET /accounts/v2", "list-leak"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newsdesk_every_planted_flaw_is_found() {
    let server = a_newsdesk::spawn(a_newsdesk::Flaws::all()).await;
    let report = scan_fixture("a_newsdesk", &server.base_url, &newsdesk_env()).await;
    server.stop().await;
    assert_finds("newsdesk (all flaws)", &report, &expected(NEWSDESK_FLAWS));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newsdesk_secure_twin_is_clean() {
    let server = a_newsdesk::spawn(a_newsdesk::Flaws::none()).await;
    let report = scan_fixture("a_newsdesk", &server.base_url, &newsdesk_env()).await;
    server.stop().await;
    assert_clean("newsdesk (secure)", &report);
}

fn marketplace_env() -> Vec<(&'static str, &'static str)> {
    b_marketplace::USERS.iter().map(|u| (u.2, u.1)).collect()
}

/// Fixture B's planted flaws and the findings they must give.
const MARKETPLACE_FLAWS: Planted = &[
    // product_read_bola: a seller reads another seller's product by `product_id`; the
    // products are learned from bare-array lists and from `PUT /products` creates.
    ("product_read_bola", "GET /products/{product_id}", "id-swap"),
    // product_delete_by_seller: the matrix denies sellers the delete; the API checks only
    // the session, so a seller's delete of a canary product (created with `PUT
    // /products`) succeeds and its owner's read-back gets 404: function level.
    (
        "product_delete_by_seller",
        "DELETE /products/{product_id}",
        "escalation",
    ),
    // profile_subject_in_body: `PUT /profile` has no ID parameter; the subject is the
    // body's `username`. A seller's update naming another user changes that user's email,
    // which the victim's own `GET /profile` read-back shows: a swap of the body subject.
    ("profile_subject_in_body", "PUT /profile", "id-swap"),
    // role_change_by_seller: the matrix denies sellers `PUT /users/{username}/role`; with
    // a real role value (`"Manager"`, `"Seller"`: the only ones the API accepts, seen in
    // `GET /users`; anything else is a 400 naming the field) a seller changes the role
    // of a canary user (created by the manager with `PUT /users`): function level.
    (
        "role_change_by_seller",
        "PUT /users/{username}/role",
        "escalation",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marketplace_every_planted_flaw_is_found() {
    let server = b_marketplace::spawn(b_marketplace::Flaws::all()).await;
    let report = scan_fixture("b_marketplace", &server.base_url, &marketplace_env()).await;
    server.stop().await;
    assert_finds(
        "marketplace (all flaws)",
        &report,
        &expected(MARKETPLACE_FLAWS),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marketplace_secure_twin_is_clean() {
    let server = b_marketplace::spawn(b_marketplace::Flaws::none()).await;
    let report = scan_fixture("b_marketplace", &server.base_url, &marketplace_env()).await;
    server.stop().await;
    assert_clean("marketplace (secure)", &report);
}

fn ci_env() -> Vec<(&'static str, &'static str)> {
    c_ci_teams::USERS.iter().map(|u| (u.2, u.1)).collect()
}

/// Fixture C's planted flaws and the findings they must give.
const CI_FLAWS: Planted = &[
    // job_read_bola: a member reads another team's job by `job_id` (the ID learned from
    // the other team's paged `{"jobs": [...], "total_entries": n}` list): cross-tenant read.
    ("job_read_bola", "GET /api/jobs/{job_id}", "id-swap"),
    // build_errors_list_leak: the tenant-scoped `{"build_errors": [...]}` list answers
    // another team's `build_error_id`s (blue's bob sees red's errors on the first page).
    (
        "build_errors_list_leak",
        "GET /api/build_errors",
        "list-leak",
    ),
    // me_mass_assignment: `PATCH /api/me` (a self-update with no ID) stores `is_admin:
    // true` / `role` sent beside `display_name`; the caller's `GET /api/me` read-back
    // shows the privileged field changed.
    ("me_mass_assignment", "PATCH /api/me", "mass-assignment"),
    // register_admin_flag: the sign-up stores `is_admin: true` (or `admin: true`) from
    // its body; the created user (the 201 answer) is an admin.
    (
        "register_admin_flag",
        "POST /api/users/register",
        "mass-assignment",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ci_teams_every_planted_flaw_is_found() {
    let server = c_ci_teams::spawn(c_ci_teams::Flaws::all()).await;
    let report = scan_fixture("c_ci_teams", &server.base_url, &ci_env()).await;
    server.stop().await;
    assert_finds("ci teams (all flaws)", &report, &expected(CI_FLAWS));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ci_teams_secure_twin_is_clean() {
    let server = c_ci_teams::spawn(c_ci_teams::Flaws::none()).await;
    let report = scan_fixture("c_ci_teams", &server.base_url, &ci_env()).await;
    server.stop().await;
    assert_clean("ci teams (secure)", &report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newsdesk_each_flaw_alone_is_found_alone() {
    let mut differ = Vec::new();
    for &planted in NEWSDESK_FLAWS {
        let server = a_newsdesk::spawn(a_newsdesk::Flaws::only(planted.0)).await;
        let report = scan_fixture("a_newsdesk", &server.base_url, &newsdesk_env()).await;
        server.stop().await;
        check_alone("newsdesk", planted, &report, &mut differ);
    }
    assert!(
        differ.is_empty(),
        "newsdesk, one flaw at a time:\n  {}",
        differ.join("\n  ")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marketplace_each_flaw_alone_is_found_alone() {
    let mut differ = Vec::new();
    for &planted in MARKETPLACE_FLAWS {
        let server = b_marketplace::spawn(b_marketplace::Flaws::only(planted.0)).await;
        let report = scan_fixture("b_marketplace", &server.base_url, &marketplace_env()).await;
        server.stop().await;
        check_alone("marketplace", planted, &report, &mut differ);
    }
    assert!(
        differ.is_empty(),
        "marketplace, one flaw at a time:\n  {}",
        differ.join("\n  ")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ci_teams_each_flaw_alone_is_found_alone() {
    let mut differ = Vec::new();
    for &planted in CI_FLAWS {
        let server = c_ci_teams::spawn(c_ci_teams::Flaws::only(planted.0)).await;
        let report = scan_fixture("c_ci_teams", &server.base_url, &ci_env()).await;
        server.stop().await;
        check_alone("ci_teams", planted, &report, &mut differ);
    }
    assert!(
        differ.is_empty(),
        "ci_teams, one flaw at a time:\n  {}",
        differ.join("\n  ")
    );
}
