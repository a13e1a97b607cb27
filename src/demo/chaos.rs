//! The demo portal's chaos layer (`rolegrid demo --chaos`, [`super::DemoOptions::chaos`]):
//! it answers some requests with a fault instead of the portal's answer: a connection
//! reset, a stall past the scanner's timeout, a garbage or truncated body, a storm of
//! 5xx, a 429 with Retry-After; once it forgets every session (a restart), and once it
//! wipes the portal's data (invoices, tickets, files; the users stay, so logins work).
//!
//! The schedule is deterministic: requests are numbered as they arrive (sign-ins are
//! never faulted and not counted, so a scan can always log in again); after a warm-up,
//! every `every`-th request gets the next kind in a fixed rotation that `seed` starts,
//! each kind at most `max_per_kind` times. The total cost is bounded: at most
//! `max_per_kind` stalls of `stall` each.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::server::Shared;
use crate::fault::FaultKind;

/// The faults the rotation hands out, in rotation order (the restart and the wipe come
/// at fixed request numbers instead).
const ROTATION: [Fault; 6] = [
    Fault::Reset,
    Fault::Garbage,
    Fault::ServerErrorStorm,
    Fault::Truncated,
    Fault::RateLimited,
    Fault::Stall,
];

/// One injected fault; [`Fault::kind`] is what the scan's report calls it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    Reset,
    Stall,
    Garbage,
    Truncated,
    ServerErrorStorm,
    RateLimited,
    Restart,
    Wipe,
}

impl Fault {
    /// What a scanner sees of this fault, as its report names it.
    pub fn kind(self) -> FaultKind {
        match self {
            Fault::Reset => FaultKind::ConnectionReset,
            Fault::Stall => FaultKind::Timeout,
            Fault::Garbage => FaultKind::GarbageBody,
            Fault::Truncated => FaultKind::TruncatedBody,
            Fault::ServerErrorStorm => FaultKind::ServerError,
            Fault::RateLimited => FaultKind::RateLimited,
            Fault::Restart => FaultKind::SessionLost,
            Fault::Wipe => FaultKind::DataWiped,
        }
    }

    pub fn as_str(self) -> &'static str {
        self.kind().as_str()
    }
}

/// How the chaos layer behaves. [`ChaosOptions::new`] gives the `demo --chaos` schedule.
#[derive(Debug, Clone)]
pub struct ChaosOptions {
    /// Where the rotation of fault kinds starts; the garbage bytes derive from it too.
    pub seed: u64,
    /// Requests answered normally before the first fault (sign-ins, discovery).
    pub warmup: u64,
    /// One fault every this many requests after the warm-up.
    pub every: u64,
    /// At most this many faults of each rotating kind.
    pub max_per_kind: u64,
    /// How long a stalled request waits before it is answered 504: longer than the
    /// scanner's timeout.
    pub stall: Duration,
    /// The Retry-After of a 429, in seconds.
    pub retry_after_secs: u64,
    /// Consecutive requests a 5xx storm answers 500/502/503.
    pub storm: u64,
    /// The request numbers at which every session is forgotten (a restart).
    pub restart_at: Vec<u64>,
    /// The request number at which invoices, tickets and files are wiped.
    pub wipe_at: u64,
}

impl ChaosOptions {
    /// The schedule `rolegrid demo --chaos` uses against a scanner whose timeout is
    /// `timeout` (the demo engagement's is 10 s).
    pub fn new(seed: u64, timeout: Duration) -> Self {
        ChaosOptions {
            seed,
            warmup: 120,
            every: 13,
            max_per_kind: 4,
            stall: timeout + Duration::from_secs(1),
            retry_after_secs: 1,
            storm: 3,
            restart_at: vec![350],
            wipe_at: 650,
        }
    }
}

/// The chaos layer's running state: the request counter and what was injected.
#[derive(Debug, Default)]
pub(crate) struct ChaosState {
    requests: AtomicU64,
    /// Storms started (each answers `storm` requests, counted one by one in `injected`).
    storms: AtomicU64,
    storm_left: AtomicU64,
    injected: Mutex<BTreeMap<Fault, u64>>,
}

impl ChaosState {
    /// Faults injected so far, by the report's name of each kind.
    pub(crate) fn injected(&self) -> BTreeMap<&'static str, u64> {
        self.injected
            .lock()
            .map(|m| m.iter().map(|(k, n)| (k.as_str(), *n)).collect())
            .unwrap_or_default()
    }

    fn count(&self, fault: Fault) -> u64 {
        self.injected
            .lock()
            .map(|m| m.get(&fault).copied().unwrap_or(0))
            .unwrap_or(u64::MAX)
    }

    fn note(&self, fault: Fault) {
        if let Ok(mut m) = self.injected.lock() {
            *m.entry(fault).or_default() += 1;
        }
    }

    /// The fault for request number `n` (1-based), if any.
    fn pick(&self, options: &ChaosOptions, n: u64) -> Option<Fault> {
        if options.restart_at.contains(&n) {
            return Some(Fault::Restart);
        }
        if n == options.wipe_at {
            return Some(Fault::Wipe);
        }
        // A storm answers its following requests too.
        if self
            .storm_left
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                left.checked_sub(1)
            })
            .is_ok()
        {
            return Some(Fault::ServerErrorStorm);
        }
        let every = options.every.max(1);
        let after = n.checked_sub(options.warmup)?;
        if after == 0 || after % every != 0 {
            return None;
        }
        let slot = after / every + options.seed;
        // The next kind in the rotation that is not used up.
        let fault = (0..ROTATION.len() as u64)
            .map(|i| ROTATION[((slot + i) % ROTATION.len() as u64) as usize])
            .find(|&f| match f {
                Fault::ServerErrorStorm => {
                    self.storms.load(Ordering::Acquire) < options.max_per_kind
                }
                f => self.count(f) < options.max_per_kind,
            })?;
        if fault == Fault::ServerErrorStorm {
            self.storms.fetch_add(1, Ordering::AcqRel);
            self.storm_left
                .store(options.storm.saturating_sub(1), Ordering::Release);
        }
        Some(fault)
    }
}

/// Requests a scanner needs to log in (again): never faulted, never counted.
fn sign_in(path: &str) -> bool {
    path.starts_with("/auth/") || path == "/oauth/token"
}

/// The middleware: numbers the request and answers with its fault, or passes it on.
pub(crate) async fn layer(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let (Some(options), Some(chaos)) = (state.options.chaos.as_ref(), state.chaos.as_ref()) else {
        return next.run(request).await;
    };
    if sign_in(request.uri().path()) {
        return next.run(request).await;
    }
    let n = chaos.requests.fetch_add(1, Ordering::AcqRel) + 1;
    let Some(fault) = chaos.pick(options, n) else {
        return next.run(request).await;
    };
    chaos.note(fault);
    match fault {
        Fault::Restart => {
            // Every token and session the portal issued is forgotten, as after a restart
            // with in-memory sessions; the request itself then meets a lost session.
            super::accounts::end_sessions(&state, None);
            next.run(request).await
        }
        Fault::Wipe => {
            {
                let mut store = state.store();
                store.invoices.clear();
                store.tickets.clear();
                store.files.clear();
            }
            next.run(request).await
        }
        Fault::Reset => {
            // A body that fails before its first byte: hyper drops the connection without
            // writing the head, so the client sees it closed mid-request.
            Response::new(Body::from_stream(futures_util::stream::once(async {
                Err::<Bytes, _>(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "chaos: connection reset",
                ))
            })))
        }
        Fault::Stall => {
            tokio::time::sleep(options.stall).await;
            (StatusCode::GATEWAY_TIMEOUT, "chaos: stalled").into_response()
        }
        Fault::Garbage => {
            let mut response = Response::new(Body::from(garbage(options.seed ^ n)));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Fault::Truncated => {
            // The head and a first piece go out; then the body breaks off.
            let first = Bytes::from_static(b"{\"items\": [{\"id\": 1, \"name\": \"");
            let chunks = futures_util::stream::unfold(0u8, move |step| {
                let first = first.clone();
                async move {
                    match step {
                        0 => Some((Ok(first), 1)),
                        1 => {
                            tokio::time::sleep(Duration::from_millis(30)).await;
                            Some((
                                Err(std::io::Error::new(
                                    std::io::ErrorKind::BrokenPipe,
                                    "chaos: body cut",
                                )),
                                2,
                            ))
                        }
                        _ => None,
                    }
                }
            });
            let mut response = Response::new(Body::from_stream(chunks));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Fault::ServerErrorStorm => {
            let status = match n % 3 {
                0 => StatusCode::INTERNAL_SERVER_ERROR,
                1 => StatusCode::BAD_GATEWAY,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            (status, "chaos: server error").into_response()
        }
        Fault::RateLimited => {
            let mut response = (StatusCode::TOO_MANY_REQUESTS, "chaos: slow down").into_response();
            if let Ok(value) = HeaderValue::from_str(&options.retry_after_secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
    }
}

/// 64 bytes that are not JSON (nor UTF-8), the same for the same seed.
fn garbage(seed: u64) -> Vec<u8> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut bytes = b"\xff\xfe{\"items\": [".to_vec();
    let noise = 64 - bytes.len();
    bytes.extend((0..noise).map(|_| rng.gen::<u8>()));
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_is_deterministic_and_bounded() {
        let options = ChaosOptions {
            seed: 2,
            warmup: 10,
            every: 5,
            max_per_kind: 2,
            stall: Duration::from_millis(1),
            retry_after_secs: 1,
            storm: 3,
            restart_at: vec![7],
            wipe_at: 8,
        };
        let run = || {
            let state = ChaosState::default();
            let picks: Vec<Option<Fault>> = (1..=200)
                .map(|n| {
                    let f = state.pick(&options, n);
                    if let Some(f) = f {
                        state.note(f);
                    }
                    f
                })
                .collect();
            (picks, state.injected())
        };
        let (picks, injected) = run();
        assert_eq!(run().0, picks, "same options, same schedule");
        assert_eq!(picks[6], Some(Fault::Restart));
        assert_eq!(picks[7], Some(Fault::Wipe));
        assert!(picks[..15].iter().filter(|f| f.is_some()).count() == 3);
        for fault in ROTATION {
            assert!(
                injected.contains_key(fault.as_str()),
                "{fault:?} never picked"
            );
        }
        // Each rotating kind at most twice; a storm answers 3 requests per pick.
        assert_eq!(injected.get("timeout"), Some(&2));
        assert_eq!(injected.get("server-error"), Some(&(2 * 3)));
        assert!(
            garbage(5) == garbage(5)
                && serde_json::from_slice::<serde_json::Value>(&garbage(5)).is_err()
        );
    }
}
