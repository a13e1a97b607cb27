//! Real APIs, not only ours: six fixture APIs in house styles unlike the demo portal's,
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
//! - D, `d_trackr`: JSON:API documents (`attributes` hold the owner and organisation),
//!   organisations in the path that nothing lists, UUIDs, notes nested under projects, a
//!   token in `X-Auth-Token` from a nested JSON login.
//! - E, `e_clinic`: Django REST framework: trailing slashes, `Token` keys, count/next/results
//!   pages, foreign keys named by their resource (`?patient=12`, `"patient": 12`).
//! - F, `f_shop`: Express and MongoDB: `{"success", "data"}` wrappers, `_id`s, `userId`
//!   owners, a required `items` array, creates that name the account they are for.
//!
//! Each scan with every flaw on must find exactly the planted (operation, attack) pairs;
//! each scan of the secure twin must find no violation and nothing suspicious.

mod a_newsdesk;
mod b_marketplace;
mod behaviour;
mod c_ci_teams;
mod common;
mod d_trackr;
mod e_clinic;
mod f_shop;
/// The helpers every end-to-end test shares (this folder's `common` is the fixtures').
#[path = "../common/mod.rs"]
mod shared;

use common::PlantedFlaws;
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
    let inputs = load_fixture(name, base_url, env);
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

/// The fixture's engagement (aimed at `base_url`, `env` filling its `${VAR}`s), spec and
/// matrix, loaded as `rolegrid scan` loads them.
fn load_fixture(name: &str, base_url: &str, env: &[(&str, &str)]) -> Inputs {
    let path = fixture_dir(name).join("engagement.yaml");
    let source = env
        .iter()
        .fold(EnvSource::process(), |source, (var, value)| {
            source.with(var, value)
        });
    let mut engagement = Engagement::load(&path, &source).expect("engagement parses");
    engagement.target = url::Url::parse(base_url).expect("base url");
    Inputs::from_engagement(engagement).expect("the fixture's spec and matrix load")
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

/// The planted flaws of a fixture ([`PlantedFlaws::PLANTED`]): each one's name (the `Flaws`
/// field), and the (operation, attack) it must be reported as.
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

/// `template` with each `{/json/pointer}` in it replaced by what `value` holds there: a
/// string as it is, any other value as JSON, `-` when absent.
fn fill(template: &str, value: &Value) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some((before, after)) = rest.split_once("{/") {
        let Some((path, tail)) = after.split_once('}') else {
            break;
        };
        out.push_str(before);
        match value.pointer(&format!("/{path}")) {
            Some(Value::String(text)) => out.push_str(text),
            None | Some(Value::Null) => out.push('-'),
            Some(other) => out.push_str(&other.to_string()),
        }
        rest = tail;
    }
    out.push_str(rest);
    out
}

/// What a reader needs when a set differs: every finding, the warnings, and the matrix
/// cells that were not tested with their reasons.
fn explain(name: &str, report: &Value) -> String {
    let mut out = format!("--- {name}: findings\n");
    for f in report["findings"].as_array().into_iter().flatten() {
        out.push_str(&fill(
            "  {/verdict} {/operation} {/attack} actor={/actor/identity} \
             victim={/victim/identity} status={/status} reason={/evidence/reason}\n",
            f,
        ));
    }
    out.push_str(&format!("--- {name}: warnings\n"));
    for w in report["warnings"].as_array().into_iter().flatten() {
        out.push_str(&format!("  {}\n", w.as_str().unwrap_or(&w.to_string())));
    }
    out.push_str(&format!("--- {name}: cells not tested\n"));
    for cell in report["matrix"].as_array().into_iter().flatten() {
        if cell["coverage"] != "tested" {
            out.push_str(&fill(
                "  {/operation} [{/role}] {/access} {/coverage}: {/reason}\n",
                cell,
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

/// The three scans of each fixture, in a test module named after it (`trackr::…`):
/// every flaw found, the secure twin clean, and each flaw alone found alone.
macro_rules! fixture_tests {
    ($($name:ident = $module:ident, $label:literal;)+) => {$(
        mod $name {
            use super::*;

            const FIXTURE: Fixture = Fixture {
                dir: stringify!($module),
                label: $label,
                planted: $module::Flaws::PLANTED,
                users: $module::USERS,
            };

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn every_planted_flaw_is_found() {
                let server = $module::spawn($module::Flaws::all()).await;
                FIXTURE.finds_every_flaw(server).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn secure_twin_is_clean() {
                FIXTURE
                    .is_clean($module::spawn($module::Flaws::none()).await)
                    .await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn each_flaw_alone_is_found_alone() {
                FIXTURE
                    .finds_each_flaw_alone(|flaw| $module::spawn($module::Flaws::only(flaw)))
                    .await;
            }
        }
    )+};
}

fixture_tests! {
    newsdesk = a_newsdesk, "newsdesk";
    marketplace = b_marketplace, "marketplace";
    ci_teams = c_ci_teams, "ci teams";
    trackr = d_trackr, "trackr";
    clinic = e_clinic, "clinic";
    shop = f_shop, "shop";
}

/// A sign-up leaves an account nothing deletes: the report names it for the reviewer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_accounts_left_on_the_target_are_named() {
    let fixture = Fixture {
        dir: "c_ci_teams",
        label: "ci teams",
        planted: <c_ci_teams::Flaws as PlantedFlaws>::PLANTED,
        users: c_ci_teams::USERS,
    };
    let report = fixture
        .scan(c_ci_teams::spawn(c_ci_teams::Flaws::none()).await)
        .await;
    shared::assert_warns(&report, "sign-up probes created 1 account(s)");
    shared::assert_warns(&report, "@example.test");
}

/// One listing can feed two resources (the shop's orders, and the users their `userId`
/// names): discovery reads it for each, not once for whichever comes first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_that_feeds_two_resources_is_read_for_each() {
    let server = f_shop::spawn(f_shop::Flaws::none()).await;
    let env: Vec<(&str, &str)> = f_shop::USERS.iter().map(|u| (u.2, u.1)).collect();
    let inputs = load_fixture("f_shop", &server.base_url, &env);
    let identities = inputs.engagement.identities.clone();
    let executor = shared::logged_in(&inputs.engagement, &identities, "", Redactor::new()).await;
    let answers = rolegrid::exec::discovery::fetch_collections(
        &executor,
        &inputs.api,
        &inputs.policy,
        &identities,
        &inputs.engagement.harvest,
        2,
    )
    .await;
    let read_for: BTreeSet<&str> = answers
        .iter()
        .filter(|(read, body)| read.request.path == "/api/orders" && body.is_some())
        .map(|(read, _)| read.resource.as_str())
        .collect();
    assert_eq!(read_for, BTreeSet::from(["orders", "users"]));
    server.stop().await;
}
