//! Every auth kind against the demo portal on 127.0.0.1:0, through the scanner's own
//! executor: logins, CSRF, OAuth2 refresh on expiry, a lost session, and redaction of
//! every credential in what a scan prints and writes.

mod common;

use common::Passwords;
use rolegrid::demo::{self, RunningDemo};
use rolegrid::engagement::{Engagement, EnvSource, Redactor};
use rolegrid::exchange::Exchange;
use rolegrid::exec::Executor;
use rolegrid::request::{Credential, RequestSpec};
use rolegrid::spec::Method;
use std::path::Path;
use std::time::Duration;

/// The engagement's `${VAR}` for a principal: `alice@acme.test` → `PW_ALICE`.
fn var(principal: &str) -> String {
    let local = principal.split('@').next().unwrap_or(principal);
    format!("PW_{}", local.to_ascii_uppercase().replace('-', "_"))
}

/// One identity per auth kind (name, role, expected email on `GET /me`, auth YAML).
fn kinds() -> Vec<(&'static str, &'static str, &'static str, String)> {
    vec![
        (
            "basic",
            "client",
            "alice@acme.test",
            "basic: {username: alice@acme.test, password: \"${PW_ALICE}\"}".into(),
        ),
        (
            "key_header",
            "staff",
            "acme-reports@services.portal.test",
            "api_key: {in: header, name: X-Api-Key, value: \"${PW_ACME_REPORTS}\"}".into(),
        ),
        (
            "key_query",
            "staff",
            "acme-reports@services.portal.test",
            "api_key: {in: query, name: api_key, value: \"${PW_ACME_REPORTS}\"}".into(),
        ),
        (
            "key_cookie",
            "staff",
            "acme-reports@services.portal.test",
            "api_key: {in: cookie, name: portal_api_key, value: \"${PW_ACME_REPORTS}\"}".into(),
        ),
        (
            "token_header",
            "client",
            "bob@globex.test",
            "login:\n        path: /auth/login\n        json: {email: bob@globex.test, password: \"${PW_BOB}\"}\n        token_header: X-Auth-Token".into(),
        ),
        (
            "form_csrf",
            "staff",
            "carol@acme.test",
            "login:\n        path: /auth/session\n        form: {email: carol@acme.test, password: \"${PW_CAROL}\"}\n        cookie: portal_session\n        csrf: {from: cookie, name: portal_csrf, send_header: X-CSRF-Token}".into(),
        ),
        (
            "steps_token",
            "admin",
            "root@portal.test",
            "login:\n        steps:\n          - path: /auth/login\n            json: {email: root@portal.test, password: \"${PW_ROOT}\"}\n            capture: {refresh: $.refresh_token}\n          - path: /auth/refresh\n            json: {refresh_token: \"{refresh}\"}\n            capture: {access: $.token}\n        use: {header: Authorization, template: \"Bearer {access}\"}".into(),
        ),
        (
            "steps_cookie",
            "staff",
            "carol@acme.test",
            "login:\n        steps:\n          - method: POST\n            path: /auth/session\n            form: {email: carol@acme.test, password: \"${PW_CAROL}\"}\n            capture: {csrf: $.csrf_token, sid: {cookie: portal_session}}\n        use: {cookie: portal_session}\n        csrf: {from: capture, name: csrf}".into(),
        ),
        (
            "oauth_cc",
            "staff",
            "acme-reports@services.portal.test",
            "oauth2: {token_url: /oauth/token, grant: client_credentials, client_id: acme-reports, client_secret: \"${PW_ACME_REPORTS}\"}".into(),
        ),
        (
            "oauth_password",
            "client",
            "alice@acme.test",
            "oauth2: {token_url: /oauth/token, grant: password, client_id: portal-web, client_auth: body, username: alice@acme.test, password: \"${PW_ALICE}\"}".into(),
        ),
    ]
}

/// The auth YAML of the kind called `name` in [`kinds`].
fn auth_of(name: &str) -> String {
    kinds().into_iter().find(|k| k.0 == name).expect("kind").3
}

/// The five demo users (alice, bob, carol, root, reports) with their roles and tenants,
/// each signing in with the auth kind named in the same order (`kinds`: five names of
/// [`kinds`], space-separated).
fn one_kind_per_user(
    kinds: &str,
) -> Vec<(&'static str, &'static str, Option<&'static str>, String)> {
    let users = [
        ("alice", "client", Some("acme")),
        ("bob", "client", Some("globex")),
        ("carol", "staff", Some("acme")),
        ("root", "admin", None),
        ("reports", "staff", Some("acme")),
    ];
    assert_eq!(kinds.split_whitespace().count(), users.len(), "{kinds}");
    users
        .into_iter()
        .zip(kinds.split_whitespace())
        .map(|((name, role, tenant), kind)| (name, role, tenant, auth_of(kind)))
        .collect()
}

fn engagement_text(target: &str, identities: &[(&str, &str, Option<&str>, String)]) -> String {
    let mut text = format!(
        "target: {target}\nspec: demo-portal.yaml\nmatrix: demo-matrix.csv\nallow_mutations: true\nidentities:\n"
    );
    for (name, role, tenant, auth) in identities {
        text.push_str(&format!("  - name: {name}\n    role: {role}\n"));
        if let Some(tenant) = tenant {
            text.push_str(&format!("    tenant: {tenant}\n"));
        }
        text.push_str(&format!("    auth:\n      {auth}\n"));
    }
    text.push_str(rolegrid::demo_scan::demo_detectors_yaml());
    text
}

/// The passwords under the variables [`var`] names.
fn env(passwords: &Passwords) -> EnvSource {
    common::env_with(passwords.iter().map(|(p, pw)| (var(p), pw)))
}

async fn start(ttl: Duration, secure: bool) -> (RunningDemo, Passwords) {
    common::portal(|mut options| {
        if secure {
            options = options.secure();
        }
        options.token_ttl = ttl;
        options
    })
    .await
}

async fn executor(
    demo: &RunningDemo,
    passwords: &Passwords,
    identities: &[(&str, &str, Option<&str>, String)],
) -> (Executor, Engagement) {
    let text = engagement_text(&demo.base_url(), identities);
    let engagement =
        Engagement::parse(&text, Path::new("auth.yaml"), &env(passwords)).expect("engagement");
    let redactor = Redactor::new();
    engagement.register_secrets(&redactor);
    let executor = common::logged_in(&engagement, &engagement.identities, "", redactor).await;
    (executor, engagement)
}

fn request(method: Method, path: &str, json: Option<serde_json::Value>) -> RequestSpec {
    RequestSpec {
        method,
        path: path.into(),
        query: vec![],
        headers: vec![],
        json,
    }
}

/// Sends `method path` (no body) as identity `identity`, named by its operation key.
async fn send(executor: &Executor, method: Method, path: &str, identity: usize) -> Exchange {
    let operation = format!("{method} {path}");
    executor
        .send(
            &request(method, path, None),
            identity,
            Credential::Normal,
            &operation,
        )
        .await
}

fn me() -> RequestSpec {
    request(Method::Get, "/me", None)
}

#[tokio::test]
async fn every_auth_kind_logs_in_and_reaches_me() {
    let (demo, passwords) = start(Duration::from_secs(600), true).await;
    let kinds = kinds();
    let identities: Vec<_> = kinds
        .iter()
        .map(|(name, role, _, auth)| (*name, *role, None, auth.clone()))
        .collect();
    let (executor, engagement) = executor(&demo, &passwords, &identities).await;
    let reported: Vec<&str> = engagement
        .identities
        .iter()
        .map(|i| i.auth.kind())
        .collect();
    assert_eq!(
        reported,
        [
            "basic",
            "api_key (header)",
            "api_key (query)",
            "api_key (cookie)",
            "login (token)",
            "login (cookie+csrf)",
            "login (steps, token)",
            "login (cookie+csrf)",
            "oauth2 (client_credentials)",
            "oauth2 (password)",
        ]
    );
    for (i, (name, _, email, _)) in kinds.iter().enumerate() {
        let answer = executor.send(&me(), i, Credential::Normal, "GET /me").await;
        assert_eq!(answer.status, Some(200), "{name}: {answer:?}");
        let body = answer.json().expect("JSON");
        assert_eq!(body["email"], *email, "{name}");
        // Without its credential the same request is refused.
        let none = executor
            .send(&me(), i, Credential::Omitted, "GET /me")
            .await;
        assert_eq!(none.status, Some(401), "{name}");
    }
    demo.shutdown().await;
}

#[tokio::test]
async fn csrf_sessions_write_with_the_token_and_are_refused_without() {
    let (demo, passwords) = start(Duration::from_secs(600), true).await;
    let carol = auth_of("form_csrf");
    let no_csrf = carol.replace(
        "\n        csrf: {from: cookie, name: portal_csrf, send_header: X-CSRF-Token}",
        "",
    );
    let (executor, _) = executor(
        &demo,
        &passwords,
        &[
            ("carol", "staff", Some("acme"), carol),
            ("carol_no_csrf", "staff", Some("acme"), no_csrf),
        ],
    )
    .await;
    let tickets = send(&executor, Method::Get, "/tickets", 0).await;
    let id = tickets.json().expect("JSON")["items"][0]["id"]
        .as_u64()
        .expect("a ticket");
    let note = request(
        Method::Post,
        &format!("/tickets/{id}/notes"),
        Some(serde_json::json!({"text": "from a CSRF session"})),
    );
    let with = executor.send(&note, 0, Credential::Normal, "note").await;
    assert_eq!(with.status, Some(201), "{with:?}");
    let without = executor.send(&note, 1, Credential::Normal, "note").await;
    assert_eq!(without.status, Some(403));
    assert_eq!(
        without.json().expect("JSON"),
        serde_json::json!({"error": "csrf token missing or wrong"})
    );
    // Reads need no token.
    let read = executor.send(&me(), 1, Credential::Normal, "GET /me").await;
    assert_eq!(read.status, Some(200));

    // The portal itself: a wrong token is refused like a missing one.
    let http = reqwest::Client::new();
    let login = http
        .post(format!("{}/auth/session", demo.base_url()))
        .form(&[
            ("email", "carol@acme.test"),
            ("password", passwords["carol@acme.test"].as_str()),
        ])
        .send()
        .await
        .expect("login");
    let cookies: Vec<String> = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|c| c.split(';').next().map(str::to_string))
        .collect();
    let csrf = login
        .headers()
        .get(demo::CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .expect("csrf header")
        .to_string();
    let url = format!("{}/tickets/{id}/notes", demo.base_url());
    for (token, expected) in [
        (Some("wrong"), 403),
        (None, 403),
        (Some(csrf.as_str()), 201),
    ] {
        let mut builder = http
            .post(&url)
            .header("cookie", cookies.join("; "))
            .json(&serde_json::json!({"text": "direct"}));
        if let Some(token) = token {
            builder = builder.header(demo::CSRF_HEADER, token);
        }
        let status = builder.send().await.expect("sent").status().as_u16();
        assert_eq!(status, expected, "token {token:?}");
    }
    demo.shutdown().await;
}

#[tokio::test]
async fn oauth2_tokens_are_refreshed_before_they_expire() {
    let (demo, passwords) = start(Duration::from_secs(1), true).await;
    let oauth: Vec<_> = kinds()
        .into_iter()
        .filter(|k| k.0.starts_with("oauth"))
        .map(|(name, role, _, auth)| (name, role, None, auth))
        .collect();
    let (executor, _) = executor(&demo, &passwords, &oauth).await;
    for round in 0..3 {
        tokio::time::sleep(Duration::from_millis(2100)).await;
        for (i, (name, ..)) in oauth.iter().enumerate() {
            let answer = send(&executor, Method::Get, "/invoices", i).await;
            assert_eq!(answer.status, Some(200), "round {round}, {name}");
        }
    }
    assert!(executor.refreshes() >= 6, "{}", executor.refreshes());
    assert!(executor.dead_identities().is_empty());
    demo.shutdown().await;
}

#[tokio::test]
async fn a_logged_out_session_is_noticed_and_renewed() {
    let (demo, passwords) = start(Duration::from_secs(600), true).await;
    let carol = auth_of("form_csrf");
    let (executor, _) = executor(
        &demo,
        &passwords,
        &[("carol", "staff", Some("acme"), carol)],
    )
    .await;
    let failures = executor
        .check_controls(vec![(0, me(), "GET /me".into())])
        .await;
    assert!(failures.is_empty(), "{failures:?}");
    let out = send(&executor, Method::Post, "/auth/logout", 0).await;
    assert_eq!(
        out.status,
        Some(204),
        "logout is CSRF-protected too: {out:?}"
    );
    let after = send(&executor, Method::Get, "/invoices", 0).await;
    assert_eq!(after.status, Some(200));
    assert_eq!(executor.relogins(), 1);
    demo.shutdown().await;
}

/// Scans the portal with one identity per user, each with a different auth kind, in
/// process (secure: nothing to find, and every kind's writes must be accepted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secure_scan_with_every_kind_finds_nothing() {
    let (demo, passwords) = start(Duration::from_secs(600), true).await;
    let identities = one_kind_per_user("basic token_header form_csrf steps_token key_query");
    let text = engagement_text(&demo.base_url(), &identities);
    let mut engagement =
        Engagement::parse(&text, Path::new("auth.yaml"), &env(&passwords)).expect("engagement");
    // The portal has routes that end sessions or reset it: as in the shipped engagement,
    // they are sent only where the matrix says "refuse".
    engagement.destructive_operations = [
        "POST /me/password",
        "PUT /accounts/{accountId}/password",
        "POST /admin/reset",
    ]
    .iter()
    .map(|op| (op.to_string(), 1))
    .collect();
    let api = rolegrid::spec::load_str(
        rolegrid::demo_scan::DEMO_SPEC,
        Path::new("specs/demo-portal.yaml"),
    )
    .expect("spec");
    let policy = rolegrid::matrix::Policy::parse(
        rolegrid::demo_scan::DEMO_MATRIX,
        Path::new("specs/demo-matrix.csv"),
        &api,
        &rolegrid::inputs::roles(&engagement.identities),
        false,
    )
    .expect("matrix");
    let redactor = Redactor::new();
    let scanned = common::scan(engagement, api, policy, 3, redactor.clone()).await;
    demo.shutdown().await;
    let (outcome, report) = (&scanned.outcome, &scanned.report);
    assert!(
        outcome.report.findings.is_empty(),
        "{:#}",
        report["findings"]
    );
    assert_eq!(report["stats"]["inconclusive"], 0, "{:#}", report["stats"]);
    assert!(report["stats"]["probes"].as_u64().unwrap_or(0) > 0);
    let kinds: Vec<&str> = report["run"]["identities"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["auth"].as_str())
        .collect();
    assert!(kinds.contains(&"login (cookie+csrf)"), "{kinds:?}");
    // Nothing the redactor learned during the run (tokens, cookies, CSRF tokens) is in
    // the files it wrote.
    for file in &outcome.files {
        let text = std::fs::read_to_string(file).expect("text");
        assert_eq!(
            redactor.scrub(&text),
            text,
            "a credential in {}",
            file.display()
        );
    }
}

/// The real binary scans the flawed portal with every kind of credential: no password,
/// key, secret, token, cookie or CSRF token reaches stdout, stderr or the report folder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credential_of_any_kind_is_printed_or_written() {
    let (demo, passwords) = start(Duration::from_secs(600), false).await;
    let identities =
        one_kind_per_user("oauth_password token_header steps_cookie steps_token oauth_cc");
    let dir = tempfile::tempdir().expect("tempdir");
    let text = common::with_spec_paths(&engagement_text(&demo.base_url(), &identities));
    let engagement_file = dir.path().join("engagement.yaml");
    std::fs::write(&engagement_file, text).expect("write");
    let out_dir = dir.path().join("out");
    let mut cmd = common::rolegrid();
    cmd.args(["scan", "--no-progress", "-c"])
        .arg(&engagement_file)
        .arg("-o")
        .arg(&out_dir);
    for (principal, password) in &passwords {
        cmd.env(var(principal), password);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("runs"))
        .await
        .expect("joined");

    demo.shutdown().await;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    let mut texts = vec![
        ("stdout".to_string(), stdout),
        ("stderr".to_string(), stderr),
    ];
    for entry in std::fs::read_dir(&out_dir).expect("out dir") {
        let path = entry.expect("entry").path();
        texts.push((
            path.display().to_string(),
            std::fs::read_to_string(&path).expect("text"),
        ));
    }
    let basic_pairs: Vec<String> = passwords
        .iter()
        .map(|(p, pw)| {
            base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                format!("{p}:{pw}"),
            )
        })
        .collect();
    for (name, text) in &texts {
        for password in passwords.values() {
            assert!(!text.contains(password.as_str()), "a password in {name}");
        }
        for pair in &basic_pairs {
            assert!(
                !text.contains(pair.as_str()),
                "a Basic credential in {name}"
            );
        }
        assert!(!text.contains("eyJhbGciOiJIUzI1NiI"), "a token in {name}");
    }
    let report = texts
        .iter()
        .find(|(n, _)| n.ends_with("report.json"))
        .map(|(_, t)| t.clone())
        .expect("report.json");
    // Reproductions name the credential by variable, including the CSRF header.
    assert!(
        report.contains("$ROLEGRID_ALICE_CREDENTIAL"),
        "curl placeholders"
    );
}
