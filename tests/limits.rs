//! Answers are bounded: a 64 MiB body is cut at `max_body_bytes` (and the report says so)
//! instead of being buffered, a body that trickles one byte at a time ends with the
//! request's timeout, and 4 MiB of headers are refused by the HTTP client (an error on that
//! exchange, not a crash). The scan finishes in bounded time.

mod common;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SPEC: &str = r##"openapi: 3.0.3
info: {title: heavy answers, version: '1'}
components: {securitySchemes: {bearer: {type: http, scheme: bearer}}}
security: [{bearer: []}]
paths:
  /export:
    get:
      operationId: exportAll
      responses: {'200': {description: a 64 MiB export}}
  /feed:
    get:
      operationId: slowFeed
      responses: {'200': {description: one byte every 200 ms, for minutes}}
  /headers:
    get:
      operationId: hugeHeaders
      responses: {'200': {description: 4,000 headers of 1 KiB each}}
"##;

const MATRIX: &str =
    "operation,anonymous,user\nGET /export,deny,allow\nGET /feed,deny,allow\nGET /headers,deny,allow\n";

fn authorised(headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .is_some_and(|v| v.as_bytes() == b"Bearer tok-heavy-user")
}

/// How many bytes of the export the server managed to send, over all requests.
type Sent = Arc<AtomicUsize>;

async fn serve() -> (String, Sent) {
    let sent: Sent = Arc::default();
    let counter = sent.clone();
    let app = Router::new()
        .route(
            "/export",
            get(move |headers: HeaderMap| {
                let counter = counter.clone();
                async move {
                    if !authorised(&headers) {
                        return StatusCode::UNAUTHORIZED.into_response();
                    }
                    // 64 MiB in 64 KiB chunks, made as they are sent.
                    let chunks = futures_util::stream::iter(0..1024).map(move |_| {
                        counter.fetch_add(64 << 10, Ordering::Relaxed);
                        Ok::<_, std::convert::Infallible>(Bytes::from(vec![b'x'; 64 << 10]))
                    });
                    Response::new(Body::from_stream(chunks))
                }
            }),
        )
        .route(
            "/headers",
            get(|| async {
                let mut response = Response::new(Body::from("{}"));
                let value = axum::http::HeaderValue::from_bytes(&[b'v'; 1024]).expect("a value");
                for n in 0..4000 {
                    if let Ok(name) =
                        axum::http::HeaderName::from_bytes(format!("x-pad-{n}").as_bytes())
                    {
                        response.headers_mut().insert(name, value.clone());
                    }
                }
                response
            }),
        )
        .route(
            "/feed",
            get(|headers: HeaderMap| async move {
                if !authorised(&headers) {
                    return StatusCode::UNAUTHORIZED.into_response();
                }
                let drip = futures_util::stream::unfold(0u32, |n| async move {
                    if n >= 1500 {
                        return None;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    Some((
                        Ok::<_, std::convert::Infallible>(Bytes::from_static(b"x")),
                        n + 1,
                    ))
                });
                Response::new(Body::from_stream(drip))
            }),
        );
    (common::serve(app).await, sent)
}

use futures_util::StreamExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_body_is_cut_and_a_trickle_times_out() {
    let (target, sent) = serve().await;
    let (dir, engagement) = common::write_engagement(
        SPEC,
        MATRIX,
        &target,
        "timeout_ms: 1500\nmax_body_bytes: 65536\n\
         identities:\n  - {name: user, role: user, auth: {bearer: tok-heavy-user}}\n",
    );
    let started = Instant::now();
    let (output, report) = common::scan_binary(&engagement, &dir.path().join("out"), &[]).await;
    let took = started.elapsed();
    assert!(
        matches!(output.status.code(), Some(0) | Some(1)),
        "the scan did not finish: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Each request to /feed ends at its 1.5 s timeout, not after the 300 s of dripping.
    assert!(took < Duration::from_secs(30), "took {took:?}");
    let warnings = report["warnings"].to_string();
    assert!(
        warnings.contains("larger than max_body_bytes (65536 bytes)"),
        "{warnings}"
    );
    // rolegrid stopped reading: the server could not push the whole export even once per
    // request (socket buffers let some run ahead of the reader, never 64 MiB).
    let exports = report["stats"]["probes"].as_u64().unwrap_or(0) + 4;
    assert!(
        (sent.load(Ordering::Relaxed) as u64) < exports * (16 << 20),
        "{} bytes sent for {exports} requests at most",
        sent.load(Ordering::Relaxed)
    );
}
