//! The real binary: exit codes, stdout/stderr, error messages, and redaction of
//! credentials in everything it prints or writes.

mod common;

use common::rolegrid;
use rolegrid::demo::{self, DemoOptions, FLAWS, POSTURE_FLAWS};

#[test]
fn list_flaws_prints_every_flaw_as_json() {
    let out = rolegrid()
        .args(["demo", "--list-flaws", "--no-flaw", "export-no-auth"])
        .output()
        .expect("runs");
    assert!(out.status.success());
    let flaws: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let flaws = flaws.as_array().expect("array");
    assert_eq!(flaws.len(), FLAWS.len() + POSTURE_FLAWS.len());
    for f in flaws {
        for key in ["id", "operation", "attack", "enabled"] {
            assert!(f.get(key).is_some(), "{key} missing in {f}");
        }
        let opt_in = f["default_on"] == false;
        assert_eq!(f["enabled"], f["id"] != "export-no-auth" && !opt_in);
    }
}

#[test]
fn unknown_flaw_is_bad_input() {
    let stderr = bad_input(rolegrid().args(["demo", "--no-flaw", "no-such-flaw"]));
    assert!(stderr.contains("no-such-flaw"), "{stderr}");
}

#[test]
fn demo_flags_go_through_the_engagement_checks() {
    // `--rate-limit` is refused before the portal starts; `--concurrency` and
    // `--p95-target-ms` of a latency run by the checks their engagement keys pass.
    for (args, flag) in [
        (vec!["demo", "--rate-limit", "0"], "--rate-limit"),
        (
            vec!["demo", "--latency-mode", "--concurrency", "5000"],
            "--concurrency",
        ),
        (
            vec!["demo", "--latency-mode", "--p95-target-ms", "0"],
            "--p95-target-ms",
        ),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = rolegrid()
            .args(&args)
            .arg("-o")
            .arg(dir.path())
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(flag), "{args:?}: {stderr}");
        assert!(
            !dir.path().join("latency.json").exists(),
            "{args:?} wrote a report"
        );
    }
}

#[test]
fn demo_scan_finds_every_flaw_and_leaks_no_credential() {
    let canary = "Canary-Cli-Passw0rd-77ab";
    let dir = tempfile::tempdir().expect("tempdir");
    let out = rolegrid()
        .args(["demo", "--no-progress", "-o"])
        .arg(dir.path())
        .env("ROLEGRID_DEMO_PASSWORD", canary)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    for flaw in FLAWS.iter().filter(|f| f.default_on()) {
        assert!(
            stdout.contains(flaw.operation),
            "{} missing from:\n{stdout}",
            flaw.operation
        );
    }
    assert!(dir.path().join("report.json").is_file());
    assert!(dir.path().join("report.md").is_file());
    let mut texts = vec![stdout.to_string(), stderr.to_string()];
    for entry in std::fs::read_dir(dir.path()).expect("dir") {
        texts.push(std::fs::read_to_string(entry.expect("entry").path()).expect("text"));
    }
    for text in texts {
        assert!(!text.contains(canary), "password leaked:\n{text}");
        assert!(
            !text.contains("eyJhbGciOiJIUzI1NiI"),
            "token leaked:\n{text}"
        );
    }
}

#[test]
fn demo_secure_reports_zero_violations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = rolegrid()
        .args(["demo", "--secure", "--no-progress", "-o"])
        .arg(dir.path())
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains(" 0 violations"), "{stdout}");
}

/// What a finished run of the binary left: its exit code and both streams as text.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run(cmd: &mut assert_cmd::Command) -> Ran {
    let out = cmd.output().expect("runs");
    Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `cmd`, which must end as bad input (exit 2); its stderr.
fn bad_input(cmd: &mut assert_cmd::Command) -> String {
    let out = run(cmd);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    out.stderr
}

/// `rolegrid <command> -c <engagement>`, open for more flags and variables.
fn on_engagement(command: &str, engagement: &std::path::Path) -> assert_cmd::Command {
    let mut cmd = rolegrid();
    cmd.args([command, "-c"]).arg(engagement);
    cmd
}

/// A fresh folder (removed when dropped) holding the demo engagement aimed at `target`.
fn engagement_in_tempdir(target: &str, extra: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_engagement(dir.path(), target, extra);
    (dir, path)
}

fn write_engagement(dir: &std::path::Path, target: &str, extra: &str) -> std::path::PathBuf {
    let text = common::with_spec_paths(&rolegrid::demo_scan::DEMO_ENGAGEMENT.replace(
        "target: http://127.0.0.1:8080",
        &format!("target: {target}\n{extra}"),
    ));
    let path = dir.join("engagement.yaml");
    std::fs::write(&path, text).expect("write engagement");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_exits_1_on_violations_and_0_when_secure() {
    let password = "scan-test-password-1";
    for (secure, expected) in [(false, 1), (true, 0)] {
        let passwords = demo::USERS
            .iter()
            .map(|u| (u.email.to_string(), password.to_string()))
            .collect();
        let mut options = DemoOptions::new(passwords);
        if secure {
            options = options.secure();
        }
        let server = common::spawn_portal(options).await;
        let (dir, engagement) = engagement_in_tempdir(&server.base_url(), "");
        let mut cmd = rolegrid();
        cmd.args(["scan", "--no-progress", "-c"])
            .arg(&engagement)
            .arg("-o")
            .arg(dir.path().join("out"));
        for user in demo::USERS {
            cmd.env(rolegrid::demo_scan::password_variable(user.email), password);
        }
        let out = tokio::task::spawn_blocking(move || cmd.output().expect("runs"))
            .await
            .expect("joined");
        server.shutdown().await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(expected),
            "secure={secure}\n{stdout}\n{stderr}"
        );
        assert!(!stdout.contains(password) && !stderr.contains(password));
    }
}

#[test]
fn unknown_engagement_key_is_bad_input_with_file_and_line() {
    let (_dir, path) = engagement_in_tempdir("http://127.0.0.1:9", "colour: blue");
    let stderr = bad_input(&mut on_engagement("scan", &path));
    assert!(stderr.contains("engagement.yaml:6:"), "{stderr}");
    assert!(stderr.contains("colour"), "{stderr}");
}

#[test]
fn a_non_loopback_target_is_accepted_and_check_sends_nothing() {
    // TEST-NET-1: nothing answers there, so a request sent would hang or fail the run.
    let (_dir, path) = engagement_in_tempdir("http://192.0.2.10", "");
    let out = run(on_engagement("check", &path)
        .env("ROLEGRID_DEMO_PASSWORD_ALICE", "x")
        .env("ROLEGRID_DEMO_PASSWORD_BOB", "x")
        .env("ROLEGRID_DEMO_PASSWORD_CAROL", "x")
        .env("ROLEGRID_DEMO_PASSWORD_ROOT", "x"));
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    let stdout = out.stdout;
    assert!(stdout.contains("http://192.0.2.10"), "{stdout}");
    assert!(stdout.contains("nothing was sent"), "{stdout}");
}

#[test]
fn missing_password_variable_is_bad_input_naming_it() {
    let (_dir, path) = engagement_in_tempdir("http://127.0.0.1:9", "");
    let stderr = bad_input(on_engagement("scan", &path).env_remove("ROLEGRID_DEMO_PASSWORD_ALICE"));
    assert!(stderr.contains("ROLEGRID_DEMO_PASSWORD_ALICE"), "{stderr}");
}

#[test]
fn unreachable_target_is_a_run_failure() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A port nothing listens on: bind, read the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let path = write_engagement(dir.path(), &format!("http://127.0.0.1:{port}"), "");
    let mut cmd = rolegrid();
    cmd.args(["scan", "--no-progress", "-c"]).arg(&path);
    for user in demo::USERS {
        cmd.env(
            rolegrid::demo_scan::password_variable(user.email),
            "pw-unused",
        );
    }
    let out = cmd.output().expect("runs");
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("login of identity `alice` failed"),
        "{stderr}"
    );
    assert!(!stderr.contains("pw-unused"), "{stderr}");
}

#[test]
fn an_oauth2_token_endpoint_outside_the_scope_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let specs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("specs");
    let text = format!(
        "target: http://127.0.0.1:9\nspec: {}\nmatrix: {}\nidentities:\n  - name: svc\n    role: staff\n    auth:\n      oauth2: {{token_url: \"http://192.0.2.7/token\", grant: client_credentials, client_id: svc, client_secret: s3cret-value}}\n",
        specs.join("demo-portal.yaml").display(),
        specs.join("demo-matrix.csv").display()
    );
    let path = dir.path().join("engagement.yaml");
    std::fs::write(&path, text).expect("write");
    let stderr = bad_input(&mut on_engagement("scan", &path));
    assert!(
        stderr.contains("token_url")
            && stderr.contains("outside the scope")
            && stderr.contains("scope:"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret-value"), "{stderr}");
    // Listed in `scope:`, the identity provider is allowed.
    let text = std::fs::read_to_string(&path).expect("read");
    std::fs::write(
        &path,
        text.replacen(
            "identities:",
            "scope: [\"http://192.0.2.7\"]\nidentities:",
            1,
        ),
    )
    .expect("write");
    let out = run(&mut on_engagement("check", &path));
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    let stdout = out.stdout;
    assert!(stdout.contains("http://192.0.2.7"), "{stdout}");
    assert!(!stdout.contains("s3cret-value"), "{stdout}");
}

#[test]
fn ctrl_c_writes_a_partial_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Throttled so the scan is still sending when the interrupt comes.
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("rolegrid"))
        .args(["demo", "--no-progress", "--rate-limit", "15", "-o"])
        .arg(dir.path())
        .env_remove("ROLEGRID_DEMO_PASSWORD")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starts");
    std::thread::sleep(std::time::Duration::from_secs(4));
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let out = child.wait_with_output().expect("exits");
    assert_eq!(
        out.status.code(),
        Some(3),
        "an interrupted demo scan did not complete"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("interrupted"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = common::read_report(dir.path());
    assert_eq!(report["run"]["complete"], false);
    let probes = report["stats"]["probes"].as_u64().unwrap_or(0);
    assert!(
        probes > 0 && probes < 150,
        "{probes} probes before the interrupt"
    );
}

#[test]
fn ops_prints_a_header_and_aligned_columns() {
    let spec = common::specs_dir().join("demo-portal.yaml");
    let out = rolegrid().arg("ops").arg(&spec).output().expect("runs");
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("METHOD"))
        .collect();
    assert!(lines.len() > 20, "{stdout}");
    // Every column starts where its header does, on every row.
    for title in ["PATH", "OPERATION", "SECURITY", "IDENTIFIERS", "PLANNER"] {
        let at = lines[0].find(title).expect("header");
        let column = lines[0][..at].chars().count();
        for row in &lines[1..] {
            let before: String = row.chars().take(column).collect();
            let cell: String = row.chars().skip(column).take(1).collect();
            assert!(
                before.ends_with("  ") && cell != " ",
                "{title} misaligned in:\n{row}"
            );
        }
    }
}

#[test]
fn matrix_draft_keeps_an_existing_file_without_force() {
    let dir = tempfile::tempdir().expect("tempdir");
    let matrix = dir.path().join("matrix.csv");
    std::fs::write(&matrix, "edited by hand\n").expect("write");
    let spec = common::specs_dir().join("demo-portal.yaml");
    let draft = |force: bool| {
        let mut cmd = rolegrid();
        cmd.args(["matrix", "draft"])
            .arg(&spec)
            .arg("-o")
            .arg(&matrix);
        if force {
            cmd.arg("--force");
        }
        cmd.output().expect("runs")
    };
    let refused = draft(false);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--force"));
    assert_eq!(
        std::fs::read_to_string(&matrix).expect("read"),
        "edited by hand\n"
    );
    assert_eq!(draft(true).status.code(), Some(0));
    assert!(std::fs::read_to_string(&matrix)
        .expect("read")
        .starts_with("operation,"));
}
