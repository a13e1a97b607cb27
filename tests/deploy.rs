//! Scanning real deployments: a target on a non-loopback address, over TLS with a private
//! CA and with mutual TLS, through a forward proxy; `check` and `scan --dry-run` send
//! nothing. Every server here is real and started by the test (port 0); each counts the
//! requests it receives.

mod common;

use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const ALICE: &str = "tok-alice-1234abcd";
const BOB: &str = "tok-bob-5678efgh";

const SPEC: &str = r##"openapi: 3.0.3
info: {title: notes, version: '1'}
# Ignored but for its path: rolegrid sends only to the engagement's target.
servers: [{url: 'https://production.example.invalid'}]
components:
  securitySchemes:
    bearer: {type: http, scheme: bearer}
  schemas:
    Note:
      type: object
      properties:
        id: {type: integer}
        owner_id: {type: string}
        text: {type: string}
security: [{bearer: []}]
paths:
  /notes:
    get:
      operationId: listNotes
      responses:
        '200':
          description: the caller's notes
          content:
            application/json:
              schema:
                type: object
                properties:
                  items: {type: array, items: {$ref: '#/components/schemas/Note'}}
  /notes/{note_id}:
    get:
      operationId: getNote
      parameters: [{name: note_id, in: path, required: true, schema: {type: integer}}]
      responses:
        '200':
          description: one note
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Note'}
  /elsewhere:
    get:
      operationId: elsewhere
      responses: {'302': {description: moved to another origin}}
"##;

const MATRIX: &str = "operation,anonymous,user\nGET /notes,deny,own\nGET /notes/{note_id},deny,own\nGET /elsewhere,deny,allow\n";

/// The notes API: alice owns note 1, bob note 2; `/elsewhere` redirects to another origin.
struct Notes {
    hits: AtomicUsize,
    elsewhere: String,
    /// `User-Agent` and `X-Gateway-Key` of every request, in arrival order.
    seen_headers: std::sync::Mutex<Vec<(String, String)>>,
}

impl Notes {
    /// `User-Agent` and `X-Gateway-Key` of the requests so far.
    fn seen(&self) -> Vec<(String, String)> {
        self.seen_headers
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }
}

fn caller(request_headers: &axum::http::HeaderMap) -> Option<&'static str> {
    let auth = request_headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    match auth.strip_prefix("Bearer ")? {
        t if t == ALICE => Some("alice"),
        t if t == BOB => Some("bob"),
        _ => None,
    }
}

fn notes_router(state: Arc<Notes>) -> Router {
    async fn count(
        State(state): State<Arc<Notes>>,
        request: Request,
        next: axum::middleware::Next,
    ) -> Response {
        state.hits.fetch_add(1, Ordering::SeqCst);
        // Read before the await: a borrowed request (its body is not Sync) must not live across it.
        let pair = {
            let get = |name: &str| {
                request
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string()
            };
            (get("user-agent"), get("x-gateway-key"))
        };
        if let Ok(mut seen) = state.seen_headers.lock() {
            seen.push(pair);
        }
        next.run(request).await
    }
    async fn list(headers: axum::http::HeaderMap) -> Response {
        match caller(&headers) {
            Some("alice") => {
                Json(serde_json::json!({"items": [{"id": 1, "owner_id": "alice", "text": "a"}]}))
                    .into_response()
            }
            Some(_) => {
                Json(serde_json::json!({"items": [{"id": 2, "owner_id": "bob", "text": "b"}]}))
                    .into_response()
            }
            None => StatusCode::UNAUTHORIZED.into_response(),
        }
    }
    async fn one(headers: axum::http::HeaderMap, UrlPath(id): UrlPath<String>) -> Response {
        let owner = match id.as_str() {
            "1" => "alice",
            "2" => "bob",
            _ => return StatusCode::NOT_FOUND.into_response(),
        };
        match caller(&headers) {
            Some(who) if who == owner => Json(serde_json::json!({"id": id.parse::<u64>().unwrap_or(0), "owner_id": owner, "text": "secret of {owner}"})).into_response(),
            Some(_) => StatusCode::NOT_FOUND.into_response(),
            None => StatusCode::UNAUTHORIZED.into_response(),
        }
    }
    async fn elsewhere(
        State(state): State<Arc<Notes>>,
        headers: axum::http::HeaderMap,
    ) -> Response {
        if caller(&headers).is_none() {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        (
            StatusCode::FOUND,
            [(header::LOCATION, state.elsewhere.clone())],
        )
            .into_response()
    }
    Router::new()
        .route("/notes", get(list))
        .route("/notes/{note_id}", get(one))
        .route("/elsewhere", get(elsewhere))
        .layer(axum::middleware::from_fn_with_state(state.clone(), count))
        .with_state(state)
}

/// A server that only counts: where `/elsewhere` points. rolegrid must never reach it.
async fn landing() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = Router::new().fallback(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        async { "landed" }
    });
    let addr = common::serve_addr(app).await;
    (format!("http://{addr}/landing"), hits)
}

async fn serve_notes(bind: SocketAddr, elsewhere: String) -> (SocketAddr, Arc<Notes>) {
    let state = Arc::new(Notes {
        hits: AtomicUsize::new(0),
        seen_headers: Default::default(),
        elsewhere,
    });
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .expect("bind notes");
    let addr = listener.local_addr().expect("addr");
    let app = notes_router(state.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, state)
}

/// Writes spec, matrix and an engagement (with `extra` keys) into `dir`; the target is
/// `${NOTES_TARGET}`, set by [`rolegrid`].
/// The notes API on 127.0.0.1 (its `/elsewhere` sending to a landing origin) and a fresh
/// folder holding an engagement for it: the target's base URL, the API's state, the count
/// of requests that reached the landing origin, the folder and the engagement's path.
async fn on_loopback() -> (
    String,
    Arc<Notes>,
    Arc<AtomicUsize>,
    tempfile::TempDir,
    PathBuf,
) {
    let (landing, landed) = landing().await;
    let (addr, notes) = serve_notes(SocketAddr::from(([127, 0, 0, 1], 0)), landing).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = engagement(dir.path(), "");
    (format!("http://{addr}"), notes, landed, dir, path)
}

fn engagement(dir: &Path, extra: &str) -> PathBuf {
    std::fs::write(dir.join("notes.yaml"), SPEC).expect("spec");
    std::fs::write(dir.join("notes.csv"), MATRIX).expect("matrix");
    let text = format!(
        "target: ${{NOTES_TARGET}}\nspec: notes.yaml\nmatrix: notes.csv\nconcurrency: 4\ntimeout_ms: 5000\n{extra}identities:\n  - name: alice\n    tenant: a\n    role: user\n    attributes: {{user_id: alice}}\n    auth: {{bearer: \"${{NOTES_ALICE}}\"}}\n  - name: bob\n    tenant: b\n    role: user\n    attributes: {{user_id: bob}}\n    auth: {{bearer: \"${{NOTES_BOB}}\"}}\n"
    );
    let path = dir.join("engagement.yaml");
    std::fs::write(&path, text).expect("engagement");
    path
}

/// The binary with the engagement's variables set and no proxy from the environment.
fn rolegrid(target: &str) -> std::process::Command {
    let mut cmd = common::rolegrid_process();
    cmd.env("NOTES_TARGET", target)
        .env("NOTES_ALICE", ALICE)
        .env("NOTES_BOB", BOB);
    cmd
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

async fn run(mut cmd: std::process::Command) -> Run {
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("joined")
        .expect("binary runs");
    let run = Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    for secret in [ALICE, BOB] {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "a credential was printed:\n{}\n{}",
            run.stdout,
            run.stderr
        );
    }
    run
}

fn scan_args(cmd: &mut std::process::Command, engagement: &Path, out: &Path) {
    cmd.args(["scan", "--no-progress", "-c"])
        .arg(engagement)
        .arg("-o")
        .arg(out);
}

fn report(out: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(out.join("report.json")).expect("report.json written");
    assert!(
        !text.contains(ALICE) && !text.contains(BOB),
        "credential in the report"
    );
    serde_json::from_str(&text).expect("report is JSON")
}

/// `rolegrid scan` of `engagement` at `target` into `out`, run to its end.
async fn scan(target: &str, engagement: &Path, out: &Path) -> Run {
    let mut cmd = rolegrid(target);
    scan_args(&mut cmd, engagement, out);
    run(cmd).await
}

/// `rolegrid <args> <engagement>` at `target`, run to its end.
async fn command(target: &str, args: &[&str], engagement: &Path) -> Run {
    let mut cmd = rolegrid(target);
    cmd.args(args).arg(engagement);
    run(cmd).await
}

/// The run failed (exit code 3: the target could not be scanned).
fn run_failed(run: &Run) {
    assert_eq!(run.code, Some(3), "{}\n{}", run.stdout, run.stderr);
}

/// `text` (a command's output) holds `wanted`; the whole text is shown when it does not.
fn says(text: &str, wanted: &str) {
    assert!(text.contains(wanted), "{text}");
}

/// The command ended with exit code 0.
fn succeeded(run: &Run) {
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
}

fn scanned(run: &Run) {
    assert!(
        matches!(run.code, Some(0) | Some(1)),
        "scan failed ({:?}):\n{}\n{}",
        run.code,
        run.stdout,
        run.stderr
    );
}

/// An address of this machine that is not loopback: the source address of the default
/// route (a UDP "connect" sends nothing), else the first of `hostname -I`.
fn interface_address() -> Option<IpAddr> {
    let routed = std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("192.0.2.1:9").map(|()| s))
        .and_then(|s| s.local_addr())
        .map(|a| a.ip())
        .ok()
        .filter(|ip| !ip.is_loopback() && !ip.is_unspecified());
    routed.or_else(|| {
        let out = std::process::Command::new("hostname")
            .arg("-I")
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|w| w.parse::<IpAddr>().ok())
            .find(|ip| ip.is_ipv4() && !ip.is_loopback())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_loopback_target_is_scanned_and_an_offsite_redirect_is_recorded_not_followed() {
    let Some(ip) = interface_address() else {
        eprintln!("skipped: this machine has no non-loopback interface address");
        return;
    };
    let (landing, landed) = landing().await;
    let (addr, notes) = serve_notes(SocketAddr::new(ip, 0), landing.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let target = format!("http://{addr}");
    let path = engagement(dir.path(), "");
    let out = dir.path().join("out");
    let result = scan(&target, &path, &out).await;
    eprintln!("{}", result.stdout);
    scanned(&result);
    says(
        &result.stdout,
        &format!("target {target}/ is not this machine"),
    );
    assert!(
        notes.hits.load(Ordering::SeqCst) > 0,
        "the target saw no request"
    );
    assert_eq!(
        landed.load(Ordering::SeqCst),
        0,
        "the redirect was followed"
    );
    let report = report(&out);
    common::assert_warns(&report, "redirect off the target");
    common::assert_warns(&report, &landing);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_and_dry_run_send_nothing() {
    let (target, notes, landed, _dir, path) = on_loopback().await;

    let check = command(&target, &["check", "-c"], &path).await;
    eprintln!("{}", check.stdout);
    succeeded(&check);
    says(&check.stdout, "nothing was sent");

    // Bearer identities have no login: even --login sends nothing to this target.
    let login = command(&target, &["check", "--login", "-c"], &path).await;
    succeeded(&login);
    assert!(
        login.stdout.contains("0 login request(s) sent"),
        "{}",
        login.stdout
    );

    let dry = command(&target, &["scan", "--dry-run", "-c"], &path).await;
    eprintln!("{}", dry.stdout);
    succeeded(&dry);
    says(&dry.stdout, "nothing was sent");
    says(&dry.stdout, "probes per attack");
    says(&dry.stdout, "seed object");
    says(&dry.stdout, "no-auth");
    says(&dry.stdout, "probes per operation");
    assert!(
        !dry.stdout.contains("production.example.invalid"),
        "{}",
        dry.stdout
    );
    says(&dry.stdout, &format!("GET {target}/elsewhere as anonymous"));

    // Two shards plan disjoint slices that add up to the whole plan.
    let planned = |text: &str| -> usize {
        let after = text.split("→ ").nth(1).unwrap_or_default();
        after
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no probe count in: {text}"))
    };
    let mut sliced = 0;
    for shard in ["1/2", "2/2"] {
        let run = command(
            &target,
            &["scan", "--dry-run", "--shard", shard, "-c"],
            &path,
        )
        .await;
        succeeded(&run);
        says(&run.stdout, &format!("in shard {shard}"));
        sliced += planned(&run.stdout);
    }
    assert_eq!(sliced, planned(&dry.stdout), "{}", dry.stdout);

    // A bad override fails the file's check, before anything is sent.
    let bad = command(&target, &["scan", "--concurrency", "5000", "-c"], &path).await;
    assert_eq!(bad.code, Some(2), "{}", bad.stderr);
    assert!(
        bad.stderr.contains("--concurrency") && bad.stderr.contains("1024"),
        "{}",
        bad.stderr
    );

    assert_eq!(
        notes.hits.load(Ordering::SeqCst),
        0,
        "check or dry-run sent requests"
    );
    assert_eq!(landed.load(Ordering::SeqCst), 0);
}

// ---- TLS ---------------------------------------------------------------------------------

struct Pki {
    ca_pem: String,
    server: (Vec<u8>, Vec<u8>),
    client_pem: String,
    client_key_pem: String,
    ca_der: Vec<u8>,
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, all made now.
fn pki() -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose, SanType,
    };
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "rolegrid test CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).expect("ca cert");

    let server_key = KeyPair::generate().expect("server key");
    let mut server = CertificateParams::new(vec!["localhost".to_string()]).expect("server params");
    server
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::from([127, 0, 0, 1])));
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server
        .signed_by(&server_key, &ca_cert, &ca_key)
        .expect("server cert");

    let client_key = KeyPair::generate().expect("client key");
    let mut client = CertificateParams::new(Vec::<String>::new()).expect("client params");
    client
        .distinguished_name
        .push(DnType::CommonName, "rolegrid scanner");
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = client
        .signed_by(&client_key, &ca_cert, &ca_key)
        .expect("client cert");

    Pki {
        ca_pem: ca_cert.pem(),
        server: (server_cert.der().to_vec(), server_key.serialize_der()),
        client_pem: client_cert.pem(),
        client_key_pem: client_key.serialize_pem(),
        ca_der: ca_cert.der().to_vec(),
    }
}

/// TLS in front of axum: handshakes in `accept` (a failed one is counted and skipped).
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    failed: Arc<AtomicUsize>,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, addr)) = self.tcp.accept().await else {
                continue;
            };
            match self.acceptor.accept(stream).await {
                Ok(tls) => return (tls, addr),
                Err(_) => {
                    self.failed.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// A TLS listener on 127.0.0.1:0 with the server certificate; with `mtls`, a client
/// certificate the CA signed is required. The counter counts refused handshakes.
async fn tls_listener(pki: &Pki, mtls: bool) -> (TlsListener, Arc<AtomicUsize>) {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let certs = vec![CertificateDer::from(pki.server.0.clone())];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.server.1.clone()));
    let builder = rustls::ServerConfig::builder();
    let config = if mtls {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(pki.ca_der.clone()))
            .expect("ca root");
        let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
            .build()
            .expect("verifier");
        builder
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)
    } else {
        builder.with_no_client_auth().with_single_cert(certs, key)
    }
    .expect("server config");
    let failed = Arc::new(AtomicUsize::new(0));
    let listener = TlsListener {
        tcp: tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind"),
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        failed: failed.clone(),
    };
    (listener, failed)
}

/// The notes API over https on 127.0.0.1; with `mtls`, a client certificate the CA signed
/// is required.
async fn serve_notes_tls(pki: &Pki, mtls: bool) -> (SocketAddr, Arc<Notes>, Arc<AtomicUsize>) {
    let state = Arc::new(Notes {
        hits: AtomicUsize::new(0),
        seen_headers: Default::default(),
        elsewhere: "https://example.invalid/".into(),
    });
    let (listener, failed) = tls_listener(pki, mtls).await;
    let addr = listener.tcp.local_addr().expect("addr");
    let app = notes_router(state.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, state, failed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_private_ca_and_with_mutual_tls() {
    let pki = pki();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("ca.pem"), &pki.ca_pem).expect("ca");
    std::fs::write(dir.path().join("client.pem"), &pki.client_pem).expect("client");
    std::fs::write(dir.path().join("client.key"), &pki.client_key_pem).expect("key");

    let (addr, notes, failed) = serve_notes_tls(&pki, false).await;
    let target = format!("https://{addr}");
    // Without the CA: refused, saying which key fixes it.
    let path = engagement(dir.path(), "");
    let refused = scan(&target, &path, &dir.path().join("no-ca")).await;
    eprintln!("{}", refused.stderr);
    run_failed(&refused);
    assert!(
        refused.stderr.contains("tls.ca_cert") && refused.stderr.contains("certificate"),
        "{}",
        refused.stderr
    );
    assert_eq!(notes.hits.load(Ordering::SeqCst), 0);
    assert!(
        failed.load(Ordering::SeqCst) > 0,
        "no handshake was refused"
    );

    // With it: scanned.
    let path = engagement(dir.path(), "tls: {ca_cert: ca.pem}\n");
    let out = dir.path().join("ca");
    let ok = scan(&target, &path, &out).await;
    scanned(&ok);
    assert!(notes.hits.load(Ordering::SeqCst) > 0);
    report(&out);

    // Mutual TLS: the CA alone is not enough; with the client certificate it is.
    let (addr, notes, _) = serve_notes_tls(&pki, true).await;
    let target = format!("https://{addr}");
    let refused = scan(&target, &path, &dir.path().join("no-client")).await;
    eprintln!("{}", refused.stderr);
    run_failed(&refused);
    says(&refused.stderr, "tls.client_cert");
    assert_eq!(notes.hits.load(Ordering::SeqCst), 0);

    let path = engagement(
        dir.path(),
        "tls: {ca_cert: ca.pem, client_cert: client.pem, client_key: client.key}\n",
    );
    let out = dir.path().join("mtls");
    let ok = scan(&target, &path, &out).await;
    scanned(&ok);
    assert!(notes.hits.load(Ordering::SeqCst) > 0);
    let text = std::fs::read_to_string(out.join("report.json")).expect("report");
    assert!(
        !text.contains("PRIVATE KEY"),
        "the client key leaked into the report"
    );

    // insecure_skip_verify: scanned without the CA, warned about on stderr and in the report.
    let (addr, notes, _) = serve_notes_tls(&pki, false).await;
    let target = format!("https://{addr}");
    let path = engagement(dir.path(), "tls: {insecure_skip_verify: true}\n");
    let out = dir.path().join("insecure");
    let ok = scan(&target, &path, &out).await;
    scanned(&ok);
    assert!(notes.hits.load(Ordering::SeqCst) > 0);
    says(&ok.stderr, "insecure_skip_verify");
    common::assert_warns(&report(&out), "insecure_skip_verify");
}

// ---- proxy -------------------------------------------------------------------------------

/// A forward proxy for plain http: takes absolute-form requests, counts them, forwards
/// them (redirects not followed) and returns the answer.
async fn forward_proxy() -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let log = seen.clone();
    let app = Router::new().fallback(move |request: Request| {
        let client = client.clone();
        let log = log.clone();
        async move {
            let uri = request.uri().to_string();
            if let Ok(mut seen) = log.lock() {
                seen.push(format!("{} {uri}", request.method()));
            }
            if request.uri().scheme().is_none() {
                return (StatusCode::BAD_REQUEST, "not absolute-form").into_response();
            }
            let (parts, body) = request.into_parts();
            let Ok(body) = axum::body::to_bytes(body, 1 << 20).await else {
                return StatusCode::BAD_REQUEST.into_response();
            };
            let mut upstream = client.request(parts.method, uri).body(body);
            for (name, value) in &parts.headers {
                if !matches!(name.as_str(), "host" | "proxy-connection" | "connection") {
                    upstream = upstream.header(name, value);
                }
            }
            match upstream.send().await {
                Ok(answer) => {
                    let status = answer.status();
                    let headers = answer.headers().clone();
                    let bytes = answer.bytes().await.unwrap_or_default();
                    let mut response = (status, bytes).into_response();
                    for (name, value) in &headers {
                        if !matches!(
                            name.as_str(),
                            "transfer-encoding" | "connection" | "content-length"
                        ) {
                            response.headers_mut().insert(name, value.clone());
                        }
                    }
                    response
                }
                Err(_) => StatusCode::BAD_GATEWAY.into_response(),
            }
        }
    });
    (common::serve(app).await, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forward_proxy_sees_every_request_of_a_scan() {
    let (target, notes, landed, dir, path) = on_loopback().await;

    for via_env in [false, true] {
        let (proxy, seen) = forward_proxy().await;
        let before = notes.hits.load(Ordering::SeqCst);
        let mut cmd = rolegrid(&target);
        if via_env {
            cmd.env("HTTP_PROXY", &proxy);
        } else {
            cmd.args(["scan", "--proxy", &proxy]);
        }
        let out = dir.path().join(format!("proxy-{via_env}"));
        if via_env {
            cmd.args(["scan"]);
        }
        cmd.args(["--no-progress", "-c"])
            .arg(&path)
            .arg("-o")
            .arg(&out);
        let result = run(cmd).await;
        scanned(&result);
        let sent = notes.hits.load(Ordering::SeqCst) - before;
        let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
        assert!(sent > 0, "nothing reached the target");
        assert_eq!(
            seen.len(),
            sent,
            "the proxy saw {} of {sent} requests: {seen:?}",
            seen.len()
        );
        assert!(
            seen.iter().all(|line| line.contains(&format!("{target}/"))),
            "{seen:?}"
        );
        report(&out);
    }
    assert_eq!(landed.load(Ordering::SeqCst), 0);
}

// ---- scope -------------------------------------------------------------------------------

/// An OAuth2 token endpoint on its own origin: client `alice-svc` gets alice's token.
async fn token_server() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = Router::new().route(
        "/oauth/token",
        axum::routing::post(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async {
                Json(serde_json::json!({
                    "access_token": ALICE,
                    "token_type": "bearer",
                    "expires_in": 3600
                }))
            }
        }),
    );
    (common::serve(app).await, hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_endpoint_on_another_origin_is_used_only_when_in_scope() {
    let (target, notes, _, dir, path) = on_loopback().await;
    let (idp, issued) = token_server().await;
    // alice's bearer token comes from the identity provider instead.
    let text = std::fs::read_to_string(&path).expect("read").replace(
        "auth: {bearer: \"${NOTES_ALICE}\"}",
        "auth: {oauth2: {token_url: \"${NOTES_IDP}/oauth/token\", grant: client_credentials, client_id: alice-svc, client_secret: \"${NOTES_IDP_SECRET}\"}}",
    );
    std::fs::write(&path, &text).expect("write");
    let command = || {
        let mut cmd = rolegrid(&target);
        cmd.env("NOTES_IDP", &idp)
            .env("NOTES_IDP_SECRET", "idp-client-secret-42");
        cmd
    };

    let mut cmd = command();
    scan_args(&mut cmd, &path, &dir.path().join("refused"));
    let refused = run(cmd).await;
    assert_eq!(refused.code, Some(2), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("outside the scope") && refused.stderr.contains(&idp),
        "{}",
        refused.stderr
    );
    assert!(!refused.stderr.contains("idp-client-secret-42"));
    assert_eq!(issued.load(Ordering::SeqCst), 0);
    assert_eq!(notes.hits.load(Ordering::SeqCst), 0);

    std::fs::write(
        &path,
        text.replacen("identities:", "scope: [\"${NOTES_IDP}\"]\nidentities:", 1),
    )
    .expect("write");
    let out = dir.path().join("scoped");
    let mut cmd = command();
    scan_args(&mut cmd, &path, &out);
    let ok = run(cmd).await;
    scanned(&ok);
    assert!(
        !ok.stdout.contains("idp-client-secret-42") && !ok.stderr.contains("idp-client-secret-42")
    );
    assert_eq!(
        issued.load(Ordering::SeqCst),
        1,
        "one token request for alice"
    );
    assert!(notes.hits.load(Ordering::SeqCst) > 0);
    let text = std::fs::read_to_string(out.join("report.json")).expect("report");
    assert!(!text.contains("idp-client-secret-42"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_carries_the_user_agent_and_the_engagement_headers() {
    let (target, notes, _, dir, path) = on_loopback().await;

    // By default: rolegrid and its version.
    scanned(&scan(&target, &path, &dir.path().join("default")).await);
    let seen = notes.seen();
    assert!(!seen.is_empty());
    let expected = format!("rolegrid/{}", env!("CARGO_PKG_VERSION"));
    assert!(seen.iter().all(|(ua, _)| *ua == expected), "{seen:?}");

    // With `headers:`: a secret gateway key on every request (never printed) and another agent.
    if let Ok(mut s) = notes.seen_headers.lock() {
        s.clear();
    }
    let path = engagement(
        dir.path(),
        "headers:\n  - {name: X-Gateway-Key, value: \"${NOTES_GATEWAY}\", secret: true}\n  - {name: User-Agent, value: \"rolegrid-ci (security@example.com)\"}\n",
    );
    let out = dir.path().join("headers");
    let mut cmd = rolegrid(&target);
    cmd.env("NOTES_GATEWAY", "gw-key-31337-abcdef");
    scan_args(&mut cmd, &path, &out);
    let result = run(cmd).await;
    scanned(&result);
    let seen = notes.seen();
    assert!(!seen.is_empty());
    assert!(
        seen.iter()
            .all(|(ua, key)| ua == "rolegrid-ci (security@example.com)"
                && key == "gw-key-31337-abcdef"),
        "{seen:?}"
    );
    for text in [
        result.stdout,
        result.stderr,
        std::fs::read_to_string(out.join("report.json")).expect("report"),
        std::fs::read_to_string(out.join("report.md")).expect("report.md"),
    ] {
        assert!(
            !text.contains("gw-key-31337-abcdef"),
            "the gateway key leaked"
        );
    }
}

// ---- posture over https ------------------------------------------------------------------

/// A plain-http server that answers everything with a redirect to `https_base`.
async fn redirector(https_base: String) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let app = Router::new().fallback(move || {
        let to = https_base.clone();
        async move { (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, to)]).into_response() }
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    port
}

/// The demo portal over https with `options`; the scan's posture checks, with plain http
/// on `http_port`, and the certificate either trusted through the CA (`trusted`) or not
/// verified at all.
async fn https_posture(
    pki: &Pki,
    options: impl FnOnce(rolegrid::demo::DemoOptions) -> rolegrid::demo::DemoOptions,
    http_port: u16,
    trusted: bool,
) -> serde_json::Value {
    let passwords = rolegrid::demo::DemoOptions::random_passwords();
    let (listener, _) = tls_listener(pki, false).await;
    let demo = rolegrid::demo::serve(
        options(rolegrid::demo::DemoOptions::new(passwords.clone())),
        listener,
    )
    .await
    .expect("portal over TLS");
    let target = format!("https://{}", demo.addr);
    let (mut engagement, api, policy) =
        rolegrid::demo_scan::demo_inputs(&target, &passwords).expect("inputs");
    if trusted {
        engagement.tls.ca_cert = Some(("ca.pem".into(), pki.ca_pem.clone().into_bytes()));
    } else {
        engagement.tls.insecure_skip_verify = true;
    }
    engagement.posture.http_port = Some(http_port);
    // Plain http is another origin: checked only when in scope.
    let plain = url::Url::parse(&format!("http://127.0.0.1:{http_port}")).expect("url");
    engagement.scope.push(plain);
    let dir = tempfile::tempdir().expect("tempdir");
    let outcome = rolegrid::scan::scan(
        rolegrid::scan::ScanInput {
            engagement,
            api,
            policy,
            output_dir: dir.path().to_path_buf(),
            progress: None,
            seed: Some(7),
            shard: None,
        },
        rolegrid::engagement::Redactor::new(),
    )
    .await
    .expect("scan over https");
    demo.shutdown().await;
    assert!(outcome.report.stats.probes > 0);
    report(dir.path())["posture"].clone()
}

fn posture_checks(rows: &serde_json::Value) -> std::collections::BTreeSet<String> {
    rows.as_array()
        .expect("posture rows")
        .iter()
        .filter_map(|w| w["check"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posture_over_https_hsts_secure_cookie_http_redirect_and_certificate() {
    let pki = pki();
    // Flawed: no HSTS, a session cookie without Secure, http served as is (the plain
    // portal answers its 404), and a certificate no system root signed.
    let plain = rolegrid::demo::spawn(
        rolegrid::demo::DemoOptions::new(Default::default()).secure(),
        "127.0.0.1:0".parse().expect("addr"),
    )
    .await
    .expect("plain portal");
    let rows = https_posture(
        &pki,
        |o| {
            o.secure()
                .flaw("no-hsts", true)
                .and_then(|o| o.flaw("session-cookie-weak", true))
                .expect("known flaws")
        },
        plain.addr.port(),
        false,
    )
    .await;
    plain.shutdown().await;
    let expected: std::collections::BTreeSet<String> = [
        "missing-hsts",
        "session-cookie",
        "http-not-redirected",
        "tls-certificate",
    ]
    .map(String::from)
    .into();
    assert_eq!(posture_checks(&rows), expected, "{rows:#}");
    let cookie = rows
        .as_array()
        .and_then(|r| r.iter().find(|w| w["check"] == "session-cookie"))
        .expect("cookie row");
    assert!(
        cookie["reason"].to_string().contains("no Secure"),
        "{cookie:#}"
    );

    // Secure twin: HSTS, a Secure cookie, http redirected to https, the CA trusted.
    let (listener, _) = tls_listener(&pki, false).await;
    let https_port = listener.tcp.local_addr().expect("addr").port();
    drop(listener);
    let to = redirector(format!("https://127.0.0.1:{https_port}/")).await;
    let rows = https_posture(&pki, |o| o.secure(), to, true).await;
    assert_eq!(posture_checks(&rows), Default::default(), "{rows:#}");
}
