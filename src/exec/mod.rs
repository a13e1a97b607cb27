//! Execution: one reqwest client, live sessions per identity, bounded concurrency and
//! per-request timeouts; every request becomes an [`Exchange`] and a latency sample.
//! A failed request is data (an exchange with an error), never a crash.
//!
//! The [`Executor`] is split by concern: `client.rs` (the HTTP client, one request with
//! rate limit, retries and Retry-After), `session.rs` (login, renewal, lost-session
//! checks, re-provisioning, [`Executor::send`]), `credential.rs` (what carries a
//! credential, its forgeries, token facts); `discovery.rs` and `canary.rs` fetch through
//! it for the scan's setup, `load.rs` drives it for latency runs.

mod auth;
pub mod canary;
pub mod client;
mod credential;
pub mod discovery;
mod forge;
mod health;
mod latency;
pub mod load;
mod session;

// What exec returns; defined apart so judge and report need nothing else of exec.
pub use crate::exchange::Exchange;
pub use latency::{HistogramSummary, LatencyBook, LatencySummary, Outcome};

pub use session::Loss;

use crate::engagement::{Engagement, Redactor, Reprovision};
use crate::request::RequestSpec;
use client::RateLimiter;
use session::Session;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Response headers kept per exchange.
pub const HEADERS_KEPT: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("login of identity `{identity}` failed: {reason}")]
    Failed { identity: String, reason: String },
}

pub struct Executor {
    client: reqwest::Client,
    base: url::Url,
    /// The engagement's `scope:` origins besides the target's (logins may go there).
    scope: Vec<url::Url>,
    sessions: Vec<Session>,
    redactor: Redactor,
    rate: Option<RateLimiter>,
    relogins: AtomicUsize,
    refreshes: AtomicUsize,
    /// Every request sent (including session checks), to date losses.
    sent: AtomicUsize,
    /// The engagement's `max_body_bytes`, and how many answers were cut to it.
    body_cap: usize,
    truncated: AtomicUsize,
    losses: std::sync::Mutex<Vec<Loss>>,
    reprovision: Option<Reprovision>,
    pub latency: LatencyBook,
    /// Off when the caller keeps its own histograms (the load engine), to spare the lock.
    record_latency: bool,
    /// The engagement's `logged-out` detector rules.
    logged_out: Vec<crate::engagement::Detector>,
    /// Redirects that would leave the target's origin, not followed: `METHOD url → location`.
    offsite_redirects: std::sync::Mutex<Vec<String>>,
    /// Requests that got an HTTP answer, and the first that got none (TLS, connection).
    answered: AtomicUsize,
    first_failure: std::sync::Mutex<Option<String>>,
}

/// Off-origin redirects kept for the report (the rest are counted).
pub(crate) const OFFSITE_REDIRECTS_KEPT: usize = 20;

/// Seconds since the Unix epoch (0 if the clock is before it): token lifetimes and the
/// scan's timestamps use this one clock.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Executor {
    pub fn new(
        engagement: &Engagement,
        base_path: &str,
        redactor: Redactor,
    ) -> Result<Self, String> {
        let client = client::build(engagement)?;
        let mut base = engagement.target.clone();
        if base.path() == "/" && !base_path.is_empty() && base_path != "/" {
            base.set_path(base_path.trim_end_matches('/'));
        }
        let rate = engagement.rate_limit.map(RateLimiter::new);
        Ok(Executor {
            client,
            base,
            scope: engagement.scope.clone(),
            sessions: Vec::new(),
            redactor,
            rate,
            relogins: AtomicUsize::new(0),
            refreshes: AtomicUsize::new(0),
            sent: AtomicUsize::new(0),
            body_cap: engagement.max_body_bytes,
            truncated: AtomicUsize::new(0),
            losses: std::sync::Mutex::new(Vec::new()),
            reprovision: engagement.reprovision.clone(),
            latency: LatencyBook::default(),
            record_latency: true,
            logged_out: engagement
                .detectors
                .iter()
                .filter(|d| d.means == crate::engagement::Means::LoggedOut)
                .cloned()
                .collect(),
            offsite_redirects: std::sync::Mutex::new(Vec::new()),
            answered: AtomicUsize::new(0),
            first_failure: std::sync::Mutex::new(None),
        })
    }

    /// Redirects to another origin the target answered with (never followed).
    pub fn offsite_redirects(&self) -> Vec<String> {
        self.offsite_redirects
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// How many requests got an HTTP answer, and why the first that got none failed.
    pub fn reachability(&self) -> (usize, Option<String>) {
        (
            self.answered.load(Ordering::Relaxed),
            self.first_failure.lock().ok().and_then(|f| f.clone()),
        )
    }

    /// Stops recording into [`Executor::latency`]; for callers that keep their own.
    pub fn without_latency_book(mut self) -> Self {
        self.record_latency = false;
        self
    }

    /// The target's base URL (with the spec's base path), for resolving links.
    pub fn base(&self) -> &url::Url {
        &self.base
    }

    pub fn url_for(&self, request: &RequestSpec) -> String {
        format!(
            "{}{}",
            self.base.as_str().trim_end_matches('/'),
            request.path_and_query()
        )
    }
}
