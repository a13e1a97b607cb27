//! Helpers shared by the end-to-end tests: a demo portal (or any router) on 127.0.0.1:0,
//! an in-process scan whose report is read as written, logged-in executors, and the real
//! binary.
//!
//! Each test file is its own crate (`mod common;`) and uses a subset of these, hence the
//! `dead_code` allowance.
#![allow(dead_code)]

use rolegrid::demo::{self, DemoOptions, RunningDemo, FLAWS};
use rolegrid::engagement::{Engagement, EnvSource, Identity, Redactor};
use rolegrid::exec::Executor;
use rolegrid::matrix::Policy;
use rolegrid::scan::{ScanInput, ScanOutcome, Shard};
use rolegrid::spec::Api;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Serves `app` on a free loopback port until the test's runtime ends; its address.
pub async fn serve_addr(app: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("bound address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// Reads the `report.json` a scan wrote into `dir`.
pub fn read_report(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("report.json")).expect("report.json written");
    serde_json::from_str(&text).expect("report.json is JSON")
}

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
    scan_shard(engagement, api, policy, seed, None, redactor).await
}

/// [`scan`], sending only the probes of `shard` when one is given (`--shard i/N`).
pub async fn scan_shard(
    engagement: Engagement,
    api: Api,
    policy: Policy,
    seed: u64,
    shard: Option<Shard>,
    redactor: Redactor,
) -> Scanned {
    let dir = tempfile::tempdir().expect("tempdir");
    let outcome = rolegrid::scan::scan(
        ScanInput {
            engagement,
            api,
            policy,
            output_dir: dir.path().to_path_buf(),
            progress: None,
            seed: Some(seed),
            shard,
        },
        redactor,
    )
    .await
    .expect("the scan completes");
    Scanned {
        outcome,
        report: read_report(dir.path()),
        dir,
    }
}

/// The report's `key` list (`findings`, `identities_lost`, `warnings`…).
pub fn list<'a>(report: &'a Value, key: &str) -> &'a [Value] {
    report[key]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_else(|| panic!("report.{key} is not a list"))
}

/// One of the report's warnings holds `wanted`; all of them are shown when none does.
pub fn assert_warns(report: &Value, wanted: &str) {
    let warnings = report["warnings"].to_string();
    assert!(
        warnings.contains(wanted),
        "no warning says `{wanted}`: {warnings}"
    );
}

/// No file a scan wrote into `dir` holds `password`, or the header of an HS256 JWT (every
/// token the demo portal issues is one).
pub fn assert_no_credentials_in(dir: &Path, password: &str) {
    let files = std::fs::read_dir(dir).expect("output dir");
    for path in files.map(|entry| entry.expect("entry").path()) {
        let text = std::fs::read_to_string(&path).expect("text file");
        for (what, secret) in [("password", password), ("token", "eyJhbGciOiJIUzI1NiI")] {
            assert!(!text.contains(secret), "{what} in {}", path.display());
        }
    }
}

/// The report's findings.
pub fn findings(report: &Value) -> &[Value] {
    list(report, "findings")
}

/// (operation, attack) of every violation finding, and of every server error (what a
/// `malformed` flaw is reported as).
pub fn violations(report: &Value) -> BTreeSet<(String, String)> {
    findings(report)
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

/// The real binary as a plain process (for tests that signal it or read its raw output),
/// without proxies or a demo password from the developer's shell.
pub fn rolegrid_process() -> std::process::Command {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("rolegrid"));
    for var in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
        "ROLEGRID_DEMO_PASSWORD",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// Serves `app` on 127.0.0.1:0 for the rest of the test; its base URL.
pub async fn serve(app: axum::Router) -> String {
    format!("http://{}", serve_addr(app).await)
}

/// A fresh folder holding a fixture API's description (`api.yaml`), matrix (`api.csv`) and
/// an engagement naming both, with `target` and the rest of `body` (identities, options).
pub fn write_engagement(
    spec: &str,
    matrix: &str,
    target: &str,
    body: &str,
) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("api.yaml"), spec).expect("write the spec");
    std::fs::write(dir.path().join("api.csv"), matrix).expect("write the matrix");
    let path = dir.path().join("engagement.yaml");
    std::fs::write(
        &path,
        format!("target: {target}\nspec: api.yaml\nmatrix: api.csv\n{body}"),
    )
    .expect("write the engagement");
    (dir, path)
}

/// Runs `rolegrid scan` (no progress, `args` added) on `engagement` into `out`, off the
/// async runtime; its output and the report it wrote.
pub async fn scan_binary(
    engagement: &Path,
    out: &Path,
    args: &[&str],
) -> (std::process::Output, Value) {
    let mut cmd = rolegrid_process();
    cmd.args(["scan", "--no-progress"])
        .args(args)
        .arg("-c")
        .arg(engagement)
        .arg("-o")
        .arg(out);
    let output = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("joined")
        .expect("the binary runs");
    let text = std::fs::read_to_string(out.join("report.json")).unwrap_or_else(|_| {
        panic!(
            "no report.json:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (
        output,
        serde_json::from_str(&text).expect("report.json is JSON"),
    )
}

/// A minimal notes API (bearer tokens; `GET /notes`, `GET /notes/{note_id}`) that fixture
/// servers implement in their own ways, and its matrix (each user reads its own notes).
pub const NOTES_SPEC: &str = r##"openapi: 3.0.3
info: {title: notes fixture, version: '1'}
security: [{bearer: []}]
components:
  securitySchemes: {bearer: {type: http, scheme: bearer}}
paths:
  /notes:
    get:
      operationId: listNotes
      responses: {'200': {description: the caller's notes}}
  /notes/{note_id}:
    get:
      operationId: getNote
      parameters: [{name: note_id, in: path, required: true, schema: {type: integer}}]
      responses: {'200': {description: one note}}
"##;

pub const NOTES_MATRIX: &str =
    "operation,anonymous,user\nGET /notes,deny,own\nGET /notes/{note_id},deny,own\n";
