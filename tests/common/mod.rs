//! Helpers shared by the end-to-end tests: a demo portal on 127.0.0.1:0, an in-process
//! scan whose report is read as written, logged-in executors, and the real binary.
//!
//! Each test file is its own crate (`mod common;`) and uses a subset of these, hence the
//! `dead_code` allowance.
#![allow(dead_code)]

use rolegrid::demo::{self, DemoOptions, RunningDemo, FLAWS};
use rolegrid::engagement::{Engagement, EnvSource, Identity, Redactor};
use rolegrid::exec::Executor;
use rolegrid::matrix::Policy;
use rolegrid::scan::{ScanInput, ScanOutcome};
use rolegrid::spec::Api;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The demo users' passwords by email.
pub type Passwords = BTreeMap<String, String>;

/// Starts a demo portal with `options` on a free loopback port.
pub async fn spawn_portal(options: DemoOptions) -> RunningDemo {
    demo::spawn(options, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("demo portal starts")
}

/// Starts a demo portal with fresh random passwords and the all-flaws-on default options
/// as `options` changes them; the portal and its passwords.
pub async fn portal(options: impl FnOnce(DemoOptions) -> DemoOptions) -> (RunningDemo, Passwords) {
    let passwords = DemoOptions::random_passwords();
    let server = spawn_portal(options(DemoOptions::new(passwords.clone()))).await;
    (server, passwords)
}

/// The repository's `specs/` folder.
pub fn specs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("specs")
}

/// Engagement text naming `demo-portal.yaml` and `demo-matrix.csv` by their paths in
/// `specs/`, so that it can be written anywhere.
pub fn with_spec_paths(text: &str) -> String {
    let specs = specs_dir();
    text.replace(
        "spec: demo-portal.yaml",
        &format!("spec: {}", specs.join("demo-portal.yaml").display()),
    )
    .replace(
        "matrix: demo-matrix.csv",
        &format!("matrix: {}", specs.join("demo-matrix.csv").display()),
    )
}

/// An environment holding each `(variable, value)`.
pub fn env_with<K: AsRef<str>, V: AsRef<str>>(vars: impl IntoIterator<Item = (K, V)>) -> EnvSource {
    vars.into_iter().fold(EnvSource::default(), |env, (k, v)| {
        env.with(k.as_ref(), v.as_ref())
    })
}

/// The demo users' passwords under the variables the shipped engagement reads.
pub fn demo_env(passwords: &Passwords) -> EnvSource {
    env_with(
        passwords
            .iter()
            .map(|(email, pw)| (rolegrid::demo_scan::password_variable(email), pw)),
    )
}

/// An executor for `engagement` whose `identities` have all logged in.
pub async fn logged_in(
    engagement: &Engagement,
    identities: &[Identity],
    base_path: &str,
    redactor: Redactor,
) -> Executor {
    let mut executor = Executor::new(engagement, base_path, redactor).expect("executor");
    executor
        .login_all(identities)
        .await
        .expect("every identity logs in");
    executor
}

/// A finished in-process scan: its outcome, report.json as written, and the folder that
/// holds the written files (removed when this is dropped).
pub struct Scanned {
    pub outcome: ScanOutcome,
    pub report: Value,
    pub dir: tempfile::TempDir,
}

impl Scanned {
    /// The text of a file the scan wrote, e.g. `report.md`.
    pub fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).expect("a written report file")
    }
}

/// Scans in process (no progress display, a fixed `seed`) into a fresh temporary folder.
pub async fn scan(
    engagement: Engagement,
    api: Api,
    policy: Policy,
    seed: u64,
    redactor: Redactor,
) -> Scanned {
    let dir = tempfile::tempdir().expect("tempdir");
    let outcome = rolegrid::scan::scan(
        ScanInput {
            engagement,
            api,
            policy,
            output_dir: dir.path().to_path_buf(),
            progress: false,
            seed: Some(seed),
            shard: None,
        },
        redactor,
    )
    .await
    .expect("the scan completes");
    let text = std::fs::read_to_string(dir.path().join("report.json")).expect("report.json");
    Scanned {
        outcome,
        report: serde_json::from_str(&text).expect("report is JSON"),
        dir,
    }
}

/// (operation, attack) of every violation finding, and of every server error (what a
/// `malformed` flaw is reported as).
pub fn violations(report: &Value) -> BTreeSet<(String, String)> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["verdict"] == "violation" || f["verdict"] == "server-error")
        .map(|f| {
            (
                f["operation"].as_str().unwrap_or("").to_string(),
                f["attack"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// (operation, attack) of every flaw planted by default.
pub fn planted() -> BTreeSet<(String, String)> {
    FLAWS
        .iter()
        .filter(|f| f.default_on())
        .map(|f| (f.operation.to_string(), f.attack.to_string()))
        .collect()
}

/// The real binary, without the demo password a developer's shell may hold.
pub fn rolegrid() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("rolegrid").expect("binary built");
    cmd.env_remove("ROLEGRID_DEMO_PASSWORD");
    cmd
}
