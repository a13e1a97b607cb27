//! Shared by the end-to-end benches: the demo portal on its own runtime (two worker
//! threads, like a separate server process), and a logged-in executor for alice.

#![allow(dead_code)]

use rolegrid::demo::{self, DemoOptions};
use rolegrid::engagement::{Engagement, EnvSource, Redactor};
use rolegrid::exec::load::LoadTarget;
use rolegrid::exec::Executor;
use rolegrid::request::RequestSpec;
use rolegrid::spec::Method;
use std::collections::BTreeMap;
use std::path::Path;

/// The password every demo user gets in the benches.
pub const PASSWORD: &str = "bench-Passw0rd-5e1f";

/// The portal serving on its own runtime and thread until dropped.
pub struct Portal {
    pub base_url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Portal {
    pub fn start(configure: impl FnOnce(DemoOptions) -> DemoOptions) -> Portal {
        let passwords: BTreeMap<String, String> = demo::USERS
            .iter()
            .map(|u| (u.email.to_string(), PASSWORD.to_string()))
            .collect();
        let options = configure(DemoOptions::new(passwords));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("portal runtime");
            runtime.block_on(async move {
                let server = demo::spawn(options, "127.0.0.1:0".parse().expect("literal"))
                    .await
                    .expect("portal binds 127.0.0.1:0");
                addr_tx.send(server.base_url()).expect("bench waits");
                let _ = stop_rx.await;
                server.shutdown().await;
            });
        });
        let base_url = addr_rx.recv().expect("portal started");
        Portal {
            base_url,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Portal {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// An engagement with alice alone, logging in with [`PASSWORD`].
pub fn alice_engagement(base_url: &str, concurrency: usize) -> Engagement {
    let yaml = format!(
        r#"
target: {base_url}
spec: demo-portal.yaml
matrix: demo-matrix.csv
concurrency: {concurrency}
timeout_ms: 10000
identities:
  - name: alice
    tenant: acme
    role: client
    auth:
      login:
        method: POST
        path: /auth/login
        json: {{ email: alice@acme.test, password: "${{BENCH_PASSWORD}}" }}
        token: $.token
        template: "Bearer {{token}}"
"#
    );
    let env = EnvSource::default().with("BENCH_PASSWORD", PASSWORD);
    Engagement::parse(&yaml, Path::new("bench-engagement.yaml"), &env).expect("bench engagement")
}

pub async fn alice_executor(base_url: &str, concurrency: usize) -> Executor {
    let engagement = alice_engagement(base_url, concurrency);
    let mut executor = Executor::new(&engagement, "", Redactor::new())
        .expect("executor")
        .without_latency_book();
    executor
        .login_all(&engagement.identities)
        .await
        .expect("alice logs in");
    executor
}

/// `GET /invoices` as alice (identity 0).
pub fn invoices_target() -> LoadTarget {
    LoadTarget {
        request: RequestSpec {
            method: Method::Get,
            path: "/invoices".into(),
            query: vec![],
            headers: vec![],
            json: None,
        },
        identity: 0,
        identity_name: "alice".into(),
        operation: "GET /invoices".into(),
    }
}

/// alice's bearer header value, for tools other than rolegrid.
pub async fn alice_bearer(base_url: &str) -> String {
    let answer: serde_json::Value = reqwest::Client::new()
        .post(format!("{base_url}/auth/login"))
        .json(&serde_json::json!({ "email": "alice@acme.test", "password": PASSWORD }))
        .send()
        .await
        .expect("login answers")
        .json()
        .await
        .expect("login JSON");
    format!("Bearer {}", answer["token"].as_str().expect("token"))
}

pub fn client_runtime() -> tokio::runtime::Runtime {
    let workers: usize = env_number("ROLEGRID_BENCH_CLIENT_THREADS", 2);
    let mut builder = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(workers);
        b
    };
    builder.enable_all().build().expect("client runtime")
}

/// A number from the environment, for longer or shorter runs than the defaults.
pub fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
