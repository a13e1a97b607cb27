//! Identities read from a Web Fuzzing Commons auth document (`auth_file`): every supported
//! shape parsed into the expected `Auth`, the errors, and a login against the demo portal.

mod common;

use rolegrid::demo::DemoOptions;
use rolegrid::engagement::{
    Auth, Capture, Engagement, EnvSource, Redactor, Secret, SessionUse, StepBody, REDACTED,
};
use rolegrid::request::{Credential, RequestSpec};
use rolegrid::spec::Method;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wfc")
}

/// The one variable the fixture engagement reads.
fn bob_env() -> EnvSource {
    common::env_with([("BOB_PW", "bob-wfc-pass-2")])
}

/// (name, secret value) pairs in the clear, to compare with what the fixture holds.
fn revealed(pairs: &[(String, Secret)]) -> Vec<(&str, &str)> {
    pairs
        .iter()
        .map(|(n, v)| (n.as_str(), v.expose()))
        .collect()
}

fn fixture_text(target: &str) -> String {
    std::fs::read_to_string(dir().join("engagement.yaml"))
        .expect("fixture")
        .replace("http://127.0.0.1:9", target)
}

fn parse(text: &str) -> Result<Engagement, String> {
    Engagement::parse(text, &dir().join("engagement.yaml"), &bob_env()).map_err(|e| e.to_string())
}

#[test]
fn every_supported_shape_becomes_the_expected_auth() {
    let e = parse(&fixture_text("http://127.0.0.1:9")).expect("valid");
    let names: Vec<&str> = e.identities.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["alice", "bob", "carol", "reports"]);
    assert_eq!(e.identities[0].role, "client");
    assert_eq!(e.identities[1].tenant.as_deref(), Some("globex"));

    // JSON login, payloadUserPwd, token from the body (current token fields).
    let Auth::Login(flow) = &e.identities[0].auth else {
        panic!("login expected")
    };
    let step = &flow.steps[0];
    assert_eq!(step.method, reqwest::Method::POST);
    assert_eq!(step.path, "/auth/login");
    let Some(StepBody::Json(body)) = &step.body else {
        panic!("JSON body")
    };
    let body: serde_json::Value = serde_json::from_str(body.expose()).expect("json");
    assert_eq!(
        body,
        serde_json::json!({"email": "alice@acme.test", "password": "alice-wfc-pass-1"})
    );
    assert_eq!(
        step.captures,
        vec![("token".to_string(), Capture::Json("$['token']".into()))]
    );
    assert!(matches!(&flow.session,
        SessionUse::Header { name, template } if name == "Authorization" && template == "Bearer {token}"));

    // payloadRaw with ${VAR}, older token fields (extractFromField, headerPrefix).
    let Auth::Login(flow) = &e.identities[1].auth else {
        panic!("login expected")
    };
    assert!(matches!(&flow.steps[0].body,
        Some(StepBody::Json(j)) if j.expose().contains("bob-wfc-pass-2")));
    assert!(matches!(&flow.session,
        SessionUse::Header { name, template } if name == "Authorization" && template == "Bearer {token}"));

    // Form login with a session cookie.
    let Auth::Login(flow) = &e.identities[2].auth else {
        panic!("login expected")
    };
    let Some(StepBody::Form(fields)) = &flow.steps[0].body else {
        panic!("form body")
    };
    assert_eq!(
        revealed(fields),
        [
            ("email", "carol@acme.test"),
            ("password", "carol-wfc-pass-3")
        ]
    );
    assert!(matches!(&flow.session, SessionUse::Cookie { name } if name == "portal_session"));
    assert_eq!(e.identities[2].auth.kind(), "login (cookie)");

    // One fixed header.
    assert!(matches!(&e.identities[3].auth,
        Auth::Header { name, value } if name == "X-Api-Key" && value.expose() == "reports-wfc-key-4"));

    // Literal credentials of the document are redacted like `${VAR}` values.
    let redactor = Redactor::new();
    e.register_secrets(&redactor);
    let out = redactor.scrub("alice-wfc-pass-1 bob-wfc-pass-2 carol-wfc-pass-3 reports-wfc-key-4");
    assert_eq!(out.matches(REDACTED).count(), 4, "{out}");
    assert!(!format!("{e:?}").contains("alice-wfc-pass-1"));
}

#[test]
fn identities_of_both_sources_are_kept_and_must_be_distinct() {
    let base = fixture_text("http://127.0.0.1:9");
    let both = format!("{base}identities:\n  - name: dave\n    role: client\n    auth:\n      bearer: dave-token-1\n");
    let e = parse(&both).expect("valid");
    assert_eq!(e.identities.len(), 5);
    assert_eq!(e.identities[0].name, "dave");
    let clash = both.replace("name: dave", "name: alice");
    let err = parse(&clash).expect_err("alice twice");
    assert!(err.contains("`alice`") && err.contains("distinct"), "{err}");
}

#[test]
fn errors_name_the_file_the_line_and_the_fix() {
    let base = fixture_text("http://127.0.0.1:9");
    let eng = dir().join("engagement.yaml").display().to_string();

    // (text replaced in the fixture, by what, the line the error starts at, what it names)
    let cases: [(&str, &str, Option<u32>, &[&str]); 5] = [
        (
            "  reports:",
            "  mallory: {role: client}\n  reports:",
            Some(9),
            &["`mallory`", "alice, bob, carol, reports"],
        ),
        (
            "  bob: {role: client, tenant: globex}\n",
            "",
            Some(4),
            &["`bob`", "add `bob: {role: ROLE, tenant: TENANT}`"],
        ),
        (
            "auth_file: wfc-auth.yaml",
            "auth_file: nowhere.yaml",
            Some(4),
            &["nowhere.yaml"],
        ),
        (
            ", session_cookie: portal_session",
            "",
            None,
            &["session_cookie", "`carol`"],
        ),
        (
            "  bob: {role: client,",
            "  bob: {rank: 3, role: client,",
            Some(7),
            &["rank"],
        ),
    ];
    for (from, to, line, names) in cases {
        assert!(base.contains(from), "the fixture no longer has `{from}`");
        let err = parse(&base.replace(from, to)).expect_err(from);
        if let Some(line) = line {
            assert!(err.starts_with(&format!("{eng}:{line}:")), "{err}");
        }
        for name in names {
            assert!(err.contains(name), "`{name}` missing: {err}");
        }
    }
}

/// Writes a WFC document next to a copy of the engagement in a temp dir.
fn with_document(doc: &str) -> Result<Engagement, String> {
    let tmp =
        std::env::temp_dir().join(format!("rolegrid-wfc-{}-{}", std::process::id(), doc.len()));
    std::fs::create_dir_all(&tmp).expect("tmp");
    std::fs::write(tmp.join("wfc-auth.yaml"), doc).expect("write");
    let text = "target: http://127.0.0.1:9\nspec: s.yaml\nmatrix: m.csv\nauth_file: wfc-auth.yaml\nauth_file_identities:\n  u: {role: client}\n";
    let out = Engagement::parse(text, &tmp.join("e.yaml"), &bob_env()).map_err(|e| e.to_string());
    let _ = std::fs::remove_dir_all(&tmp);
    out
}

#[test]
fn errors_inside_the_document() {
    let login = |url: &str| {
        format!("auth:\n  - name: u\n    loginEndpointAuth:\n      externalEndpointURL: {url}\n      verb: POST\n      token: {{extractFrom: header, extractSelector: X-Auth-Token, sendIn: header, sendName: Authorization}}\n")
    };
    let err = with_document(&login("https://idp.example.com/login")).expect_err("remote");
    assert!(
        err.contains("wfc-auth.yaml:4:") && err.contains("outside the scope"),
        "{err}"
    );
    let err = with_document(&login("http://127.0.0.1:7777/login")).expect_err("other port");
    assert!(err.contains("outside the scope"), "{err}");
    let e = with_document(&login("http://127.0.0.1:9/auth/login")).expect("same server");
    let Auth::Login(flow) = &e.identities[0].auth else {
        panic!("login")
    };
    assert_eq!(flow.steps[0].path, "/auth/login");
    assert_eq!(
        flow.steps[0].captures[0].1,
        Capture::Header("X-Auth-Token".into())
    );

    let err = with_document("auth:\n  - name: u\n    fixedHeaders:\n      - {name: X-A, value: a1234}\n    colour: red\n")
        .expect_err("unknown key");
    assert!(
        err.contains("wfc-auth.yaml:5:") && err.contains("colour"),
        "{err}"
    );
    let err = with_document("auth:\n  - name: u\n    fixedHeaders:\n      - {name: X-A, value: a1234}\n      - {name: x-a, value: b1234}\n")
        .expect_err("one header twice");
    assert!(
        err.contains("wfc-auth.yaml:5:") && err.contains("`x-a` twice"),
        "{err}"
    );
    let err = with_document("auth:\n  - name: u\n    createUsers: [{username: u}]\n    fixedHeaders:\n      - {name: X-A, value: a1234}\n")
        .expect_err("createUsers");
    assert!(
        err.contains("wfc-auth.yaml:3:")
            && err.contains("not part of the Web Fuzzing Commons auth schema")
            && err.contains("create them in the target beforehand"),
        "{err}"
    );
    let err = with_document("auth:\n  - name: u\n    loginEndpointAuth:\n      endpoint: /l\n      verb: POST\n      token: {extractFrom: body, extractSelector: /t, sendIn: query, sendName: t}\n")
        .expect_err("query");
    assert!(err.contains("sendIn `query`"), "{err}");

    // authTemplate fills what an entry leaves out.
    let e = with_document("authTemplate:\n  loginEndpointAuth:\n    endpoint: /auth/login\n    verb: POST\n    contentType: application/json\n    token: {extractFrom: body, extractSelector: /token, sendIn: header, sendName: Authorization, sendTemplate: \"Bearer {token}\"}\nauth:\n  - name: u\n    loginEndpointAuth:\n      payloadRaw: '{\"email\": \"u@x\", \"password\": \"pw-u-1234\"}'\n")
        .expect("template");
    assert!(matches!(&e.identities[0].auth, Auth::Login(f) if f.steps[0].path == "/auth/login"));
}

#[tokio::test]
async fn identities_from_the_document_log_in_to_the_demo_portal() {
    let mut passwords = DemoOptions::random_passwords();
    for (who, pw) in [
        ("alice@acme.test", "alice-wfc-pass-1"),
        ("bob@globex.test", "bob-wfc-pass-2"),
        ("carol@acme.test", "carol-wfc-pass-3"),
        ("acme-reports", "reports-wfc-key-4"),
    ] {
        passwords.insert(who.to_string(), pw.to_string());
    }
    let portal = common::spawn_portal(DemoOptions::new(passwords.clone())).await;
    let e = parse(&fixture_text(&portal.base_url())).expect("valid");
    let redactor = Redactor::new();
    e.register_secrets(&redactor);
    let executor = common::logged_in(&e, &e.identities, "", redactor).await;
    let me = RequestSpec {
        method: Method::Get,
        path: "/me".into(),
        query: vec![],
        headers: vec![],
        json: None,
    };
    let expected: BTreeMap<&str, &str> = [
        ("alice", "alice@acme.test"),
        ("bob", "bob@globex.test"),
        ("carol", "carol@acme.test"),
        ("reports", "acme-reports@services.portal.test"),
    ]
    .into();
    for (i, identity) in e.identities.iter().enumerate() {
        let answer = executor.send(&me, i, Credential::Normal, "GET /me").await;
        assert_eq!(answer.status, Some(200), "{}: {answer:?}", identity.name);
        let body = answer.json().expect("JSON");
        assert_eq!(
            body["email"],
            expected[identity.name.as_str()],
            "{}",
            identity.name
        );
        let none = executor.send(&me, i, Credential::Omitted, "GET /me").await;
        assert_eq!(none.status, Some(401), "{}", identity.name);
    }
    portal.shutdown().await;
}

#[test]
fn several_fixed_headers_are_one_identity_and_all_secret() {
    let e = with_document("auth:\n  - name: u\n    fixedHeaders:\n      - {name: Authorization, value: Bearer tok-multi-1111}\n      - {name: X-Api-Key, value: key-multi-2222}\n")
        .expect("two headers");
    let Auth::Headers(headers) = &e.identities[0].auth else {
        panic!("several headers expected: {:?}", e.identities[0].auth)
    };
    assert_eq!(
        revealed(headers),
        [
            ("Authorization", "Bearer tok-multi-1111"),
            ("X-Api-Key", "key-multi-2222")
        ]
    );
    assert_eq!(e.identities[0].auth.kind(), "headers");
    // No single token: no forgery is planned for it.
    assert!(!e.identities[0].auth.carries_token());
    let redactor = Redactor::new();
    e.register_secrets(&redactor);
    let out = redactor.scrub("a tok-multi-1111 b key-multi-2222 c");
    assert!(
        !out.contains("tok-multi-1111") && !out.contains("key-multi-2222"),
        "{out}"
    );
    // The reproduction command names a variable per header, never a value.
    let request = RequestSpec {
        method: Method::Post,
        path: "/x".into(),
        query: vec![],
        headers: vec![],
        json: None,
    };
    let curl = rolegrid::report::curl_command(
        "http://127.0.0.1:9/x",
        &request,
        &e.identities[0],
        Credential::Normal,
    );
    assert!(
        curl.contains("-H \"Authorization: $ROLEGRID_U_CREDENTIAL_1\"")
            && curl.contains("-H \"X-Api-Key: $ROLEGRID_U_CREDENTIAL_2\""),
        "{curl}"
    );
    let bare = rolegrid::report::curl_command(
        "http://127.0.0.1:9/x",
        &request,
        &e.identities[0],
        Credential::Omitted,
    );
    assert!(!bare.contains("-H"), "{bare}");
}

/// A cookie session of the demo portal whose unsafe requests need `X-CSRF-Token` too: an
/// identity with both as fixed headers gets through only if both are sent.
#[tokio::test]
async fn several_fixed_headers_are_all_sent() {
    let mut passwords = DemoOptions::random_passwords();
    passwords.insert("carol@acme.test".into(), "carol-wfc-pass-3".into());
    let portal = common::spawn_portal(DemoOptions::new(passwords)).await;
    let base = portal.base_url();
    let login = reqwest::Client::new()
        .post(format!("{}/auth/session", base.trim_end_matches('/')))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("email=carol%40acme.test&password=carol-wfc-pass-3")
        .send()
        .await
        .expect("session login");
    assert_eq!(login.status().as_u16(), 200);
    let session = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("portal_session="))
        .and_then(|v| v.split(';').next())
        .expect("session cookie")
        .to_string();
    let body: serde_json::Value =
        serde_json::from_str(&login.text().await.expect("body")).expect("JSON");
    let csrf = body["csrf_token"].as_str().expect("csrf token").to_string();

    let tmp = std::env::temp_dir().join(format!("rolegrid-wfc-multi-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("tmp");
    std::fs::write(
        tmp.join("wfc-auth.yaml"),
        "auth:\n  - name: both\n    fixedHeaders:\n      - {name: Cookie, value: \"portal_session=${SID}\"}\n      - {name: X-CSRF-Token, value: \"${CSRF}\"}\n  - name: cookie_only\n    fixedHeaders:\n      - {name: Cookie, value: \"portal_session=${SID}\"}\n",
    )
    .expect("write");
    let text = format!("target: {base}\nspec: s.yaml\nmatrix: m.csv\nauth_file: wfc-auth.yaml\nauth_file_identities:\n  both: {{role: staff, tenant: acme}}\n  cookie_only: {{role: staff, tenant: acme}}\n");
    let env = EnvSource::default()
        .with("SID", &session)
        .with("CSRF", &csrf);
    let e = Engagement::parse(&text, &tmp.join("e.yaml"), &env).expect("valid");
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(matches!(&e.identities[0].auth, Auth::Headers(h) if h.len() == 2));

    let redactor = Redactor::new();
    e.register_secrets(&redactor);
    let scrubbed = redactor.scrub(&format!("{session} {csrf}"));
    assert!(
        !scrubbed.contains(&session) && !scrubbed.contains(&csrf),
        "{scrubbed}"
    );
    let executor = common::logged_in(&e, &e.identities, "", redactor).await;
    let request = |method: Method, path: &str| RequestSpec {
        method,
        path: path.into(),
        query: vec![],
        headers: vec![],
        json: None,
    };
    let me = request(Method::Get, "/me");
    let answer = executor.send(&me, 0, Credential::Normal, "GET /me").await;
    assert_eq!(answer.status, Some(200), "{answer:?}");
    assert_eq!(answer.json().expect("JSON")["email"], "carol@acme.test");
    let none = executor.send(&me, 0, Credential::Omitted, "GET /me").await;
    assert_eq!(
        none.status,
        Some(401),
        "omitted means every header is left out"
    );
    // An unsafe request: the cookie alone is refused for want of the CSRF header...
    let logout = request(Method::Post, "/auth/logout");
    let alone = executor
        .send(&logout, 1, Credential::Normal, "POST /auth/logout")
        .await;
    assert_eq!(alone.status, Some(403), "{alone:?}");
    // ...and both headers together get through (and end the session).
    let both = executor
        .send(&logout, 0, Credential::Normal, "POST /auth/logout")
        .await;
    assert_eq!(both.status, Some(204), "{both:?}");
    let after = executor.send(&me, 0, Credential::Normal, "GET /me").await;
    assert_eq!(after.status, Some(401), "{after:?}");
    portal.shutdown().await;
}
