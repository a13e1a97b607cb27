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
/// The helpers every end-to-end test shares (this folder's `common` is the fixtures').
#[path = "../common/mod.rs"]
mod shared;

use rolegrid::engagement::{Engagement, EnvSource, Redactor};
use rolegrid::inputs::Inputs;
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
async fn scan_url(name: &str, base_url: &str, env: &[(&str, &str)]) -> Value {
    let path = fixture_dir(name).join("engagement.yaml");
    let source = env
        .iter()
        .fold(EnvSource::process(), |source, (var, value)| {
            source.with(var, value)
        });
    let mut engagement = Engagement::load(&path, &source).expect("engagement parses");
    engagement.target = url::Url::parse(base_url).expect("base url");
    let inputs = Inputs::from_engagement(engagement).expect("the fixture's spec and matrix load");
    shared::scan(
        inputs.engagement,
        inputs.api,
        inputs.policy,
        7,
        Redactor::new(),
    )
    .await
    .report
}

/// (operation, attack) of the findings with one of `verdicts`.
fn pairs(report: &Value, verdicts: &[&str]) -> Pairs {
    shared::findings(report)
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

/// The string at JSON `pointer` in `value`, or `absent`.
fn text<'a>(value: &'a Value, pointer: &str, absent: &'a str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or(absent)
}

/// What a reader needs when a set differs: every finding, the warnings, and the matrix
/// cells that were not tested with their reasons.
fn explain(name: &str, report: &Value) -> String {
    let mut out = format!("--- {name}: findings\n");
    for f in report["findings"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  {} {} {} actor={} victim={} status={} reason={}\n",
            text(f, "/verdict", "?"),
            text(f, "/operation", "?"),
            text(f, "/attack", "?"),
            text(f, "/actor/identity", "?"),
            text(f, "/victim/identity", "-"),
            f["status"],
            text(f, "/evidence/reason", "")
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
                text(cell, "/operation", "?"),
                text(cell, "/role", "?"),
                text(cell, "/access", "?"),
                text(cell, "/coverage", "?"),
                text(cell, "/reason", "")
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

/// One fixture as its tests see it: its folder under `tests/fixtures/real_apis`, the name
/// in messages, its planted flaws, and its users (whose passwords fill the `${VAR}`s).
struct Fixture {
    dir: &'static str,
    label: &'static str,
    planted: Planted,
    users: &'static [(&'static str, &'static str, &'static str)],
}

impl Fixture {
    /// Scans the served fixture, as `rolegrid scan` does, then stops the server.
    async fn scan(&self, server: common::Server) -> Value {
        let env: Vec<(&str, &str)> = self.users.iter().map(|u| (u.2, u.1)).collect();
        let report = scan_url(self.dir, &server.base_url, &env).await;
        server.stop().await;
        report
    }

    /// With every flaw on, the scan finds exactly the planted (operation, attack) pairs.
    async fn finds_every_flaw(&self, server: common::Server) {
        let report = self.scan(server).await;
        let name = format!("{} (all flaws)", self.label);
        assert_finds(&name, &report, &expected(self.planted));
    }

    /// The secure twin: no violation, nothing suspicious.
    async fn is_clean(&self, server: common::Server) {
        let report = self.scan(server).await;
        assert_clean(&format!("{} (secure)", self.label), &report);
    }

    /// Serves the fixture once per planted flaw, that flaw alone on, and checks that each
    /// scan finds that flaw and nothing else; every flaw is scanned before the test fails.
    async fn finds_each_flaw_alone<Served: std::future::Future<Output = common::Server>>(
        &self,
        spawn: impl Fn(&'static str) -> Served,
    ) {
        let mut differ = Vec::new();
        for &planted in self.planted {
            let report = self.scan(spawn(planted.0).await).await;
            check_alone(self.label, planted, &report, &mut differ);
        }
        assert!(
            differ.is_empty(),
            "{}, one flaw at a time:\n  {}",
            self.label,
            differ.join("\n  ")
        );
    }
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
    // register_admin_flag: the sign-up honours `"admin": true`. Its answer says only
    // "success"; the new account, signed in with Basic auth, reads the admin-only audit
    // trail that a customer is refused.
    (
        "register_admin_flag",
        "POST /users/v1/register",
        "mass-assignment",
    ),
];

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

/// Fixture C's planted flaws and the findings they must give.
const CI_FLAWS: Planted = &[
    // job_read_bola: a member reads another team's job by `job_id` (the ID learned from
    // the other team's paged `{"jobs": [...], "total_entries": n}` list): cross-tenant read.
    ("job_read_bola", "GET /api/jobs/{job_id}", "id-swap"),
    // job_write_bola: blue's bob renames red's job. The body must repeat the job's own
    // `job_id` and `team_id` (else 422), so the probe takes them from the job itself.
    ("job_write_bola", "PUT /api/jobs/{job_id}", "id-swap"),
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

/// The three scans of a fixture, under the test names given: every flaw found, the secure
/// twin clean, and each flaw alone found alone.
macro_rules! fixture_tests {
    ($fixture:ident = $module:ident, $label:literal, $planted:ident: $every:ident, $clean:ident, $alone:ident) => {
        const $fixture: Fixture = Fixture {
            dir: stringify!($module),
            label: $label,
            planted: $planted,
            users: $module::USERS,
        };

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $every() {
            let server = $module::spawn($module::Flaws::all()).await;
            $fixture.finds_every_flaw(server).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $clean() {
            $fixture
                .is_clean($module::spawn($module::Flaws::none()).await)
                .await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $alone() {
            $fixture
                .finds_each_flaw_alone(|flaw| $module::spawn($module::Flaws::only(flaw)))
                .await;
        }
    };
}

fixture_tests!(NEWSDESK = a_newsdesk, "newsdesk", NEWSDESK_FLAWS:
    newsdesk_every_planted_flaw_is_found,
    newsdesk_secure_twin_is_clean,
    newsdesk_each_flaw_alone_is_found_alone
);
fixture_tests!(MARKETPLACE = b_marketplace, "marketplace", MARKETPLACE_FLAWS:
    marketplace_every_planted_flaw_is_found,
    marketplace_secure_twin_is_clean,
    marketplace_each_flaw_alone_is_found_alone
);
fixture_tests!(CI = c_ci_teams, "ci teams", CI_FLAWS:
    ci_teams_every_planted_flaw_is_found,
    ci_teams_secure_twin_is_clean,
    ci_teams_each_flaw_alone_is_found_alone
);
