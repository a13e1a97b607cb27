//! Execution: one reqwest client, live sessions per identity, bounded concurrency and
//! per-request timeouts; every request becomes an [`Exchange`] and a latency sample.
//! A failed request is data (an exchange with an error), never a crash.

mod auth;
pub mod canary;
pub mod client;
pub mod discovery;
mod forge;
mod latency;
pub mod load;

// What exec returns; defined apart so judge and report need nothing else of exec.
pub use crate::exchange::Exchange;
pub use latency::{HistogramSummary, LatencyBook, LatencySummary, Outcome};

use crate::engagement::{Auth, Engagement, Identity, Redactor, Reprovision, Secret};
use crate::request::{ClaimSwap, Credential, Forgery, RequestSpec, TokenFacts};
use auth::{Attach, Authenticator, Live, Parts};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Bodies are kept whole up to this size; the rest is cut (and the exchange says so).
pub const BODY_CAP: usize = 1 << 20;

/// Response headers kept per exchange.
pub const HEADERS_KEPT: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("login of identity `{identity}` failed: {reason}")]
    Failed { identity: String, reason: String },
}

/// One identity's session: its live credential, how often it was renewed, and whether it
/// is beyond repair (its probes are then inconclusive, never "enforced").
struct Session {
    identity: Identity,
    live: std::sync::RwLock<Live>,
    /// Bumped at every re-login, so concurrent probes that saw the same logout re-login once.
    epoch: AtomicU64,
    relogin: tokio::sync::Mutex<()>,
    dead: std::sync::RwLock<Option<String>>,
    /// A request this identity is allowed to make: tells a logout from a real denial.
    control: std::sync::RwLock<Option<RequestSpec>>,
}

impl Session {
    fn live(&self) -> Live {
        self.live.read().map(|l| l.clone()).unwrap_or_default()
    }

    fn dead_reason(&self) -> Option<String> {
        self.dead.read().ok().and_then(|d| d.clone())
    }
}

/// An identity that lost its login during the run (or failed its control before it).
#[derive(Debug, Clone)]
pub struct Loss {
    /// Index of the identity.
    pub identity: usize,
    pub name: String,
    pub reason: String,
    /// How many requests the run had sent when the loss was seen.
    pub at_request: usize,
    /// The engagement's `reprovision` request gave it its login back.
    pub reprovisioned: bool,
}

/// Spaces requests evenly to stay under a requests-per-second ceiling.
struct RateLimiter {
    interval: Duration,
    next: tokio::sync::Mutex<tokio::time::Instant>,
}

impl RateLimiter {
    async fn wait(&self) {
        let at = {
            let mut next = self.next.lock().await;
            let now = tokio::time::Instant::now();
            let at = (*next).max(now);
            *next = at + self.interval;
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

/// Connection failures are retried this many times; an HTTP answer never is, except a
/// 429/503 whose Retry-After asks for it.
const RETRIES: u32 = 2;
/// The longest Retry-After rolegrid honours; a longer one is recorded as the answer.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

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
const OFFSITE_REDIRECTS_KEPT: usize = 20;

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
        let rate = engagement.rate_limit.map(|per_second| RateLimiter {
            interval: Duration::from_secs_f64(1.0 / per_second),
            next: tokio::sync::Mutex::new(tokio::time::Instant::now()),
        });
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

    fn note_answer(&self, method: &str, url: &str, exchange: &Exchange) {
        if exchange.status.is_some() {
            self.answered.fetch_add(1, Ordering::Relaxed);
        } else if let Some(error) = &exchange.error {
            if let Ok(mut first) = self.first_failure.lock() {
                first.get_or_insert_with(|| error.clone());
            }
        }
        let redirect = exchange.status.is_some_and(|s| (300..400).contains(&s));
        let (true, Some(location)) = (redirect, exchange.location.as_deref()) else {
            return;
        };
        let Ok(to) = self.base.join(location) else {
            return;
        };
        if to.origin() == self.base.origin() {
            return;
        }
        if let Ok(mut kept) = self.offsite_redirects.lock() {
            let line = format!(
                "{method} {url} answered {} → {} (another origin; not followed)",
                exchange.status.unwrap_or_default(),
                self.redactor.scrub(to.as_str())
            );
            if kept.len() < OFFSITE_REDIRECTS_KEPT && !kept.contains(&line) {
                kept.push(line);
            }
        }
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

    /// Logs every identity in; the order of `identities` is kept.
    pub async fn login_all(&mut self, identities: &[Identity]) -> Result<(), LoginError> {
        let mut sessions = Vec::with_capacity(identities.len());
        for identity in identities {
            let live = self.login(identity).await?;
            sessions.push(Session {
                identity: identity.clone(),
                live: std::sync::RwLock::new(live),
                epoch: AtomicU64::new(0),
                relogin: tokio::sync::Mutex::new(()),
                dead: std::sync::RwLock::new(None),
                control: std::sync::RwLock::new(None),
            });
        }
        self.sessions = sessions;
        Ok(())
    }

    /// Sets each identity's positive control (a request the matrix allows it) and sends
    /// it once; returns the identities whose control already fails, with the reason.
    /// Their sessions are marked dead, so their probes become inconclusive.
    pub async fn check_controls(
        &self,
        controls: Vec<(usize, RequestSpec, String)>,
    ) -> Vec<(String, String)> {
        let mut failures = Vec::new();
        for (identity, request, operation) in controls {
            let Some(session) = self.sessions.get(identity) else {
                continue;
            };
            if let Ok(mut c) = session.control.write() {
                *c = Some(request.clone());
            }
            // Through `send`, so a token that expired since login is renewed first.
            let exchange = self
                .send(&request, identity, Credential::Normal, &operation)
                .await;
            if !exchange.is_success() {
                let reason = format!(
                    "its positive control {} {} answered {}",
                    request.method,
                    request.path_and_query(),
                    exchange
                        .status
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| exchange.error.clone().unwrap_or_default())
                );
                if let Ok(mut d) = session.dead.write() {
                    *d = Some(reason.clone());
                }
                self.record_loss(identity, &reason, false);
                failures.push((session.identity.name.clone(), reason));
            }
        }
        failures
    }

    /// Each identity's login answers' `Set-Cookie` lines (values withheld), by name.
    pub fn login_cookies(&self) -> Vec<(String, Vec<String>)> {
        self.sessions
            .iter()
            .map(|s| (s.identity.name.clone(), s.live().set_cookies))
            .filter(|(_, lines)| !lines.is_empty())
            .collect()
    }

    /// How many times a lost session was renewed during the run.
    pub fn relogins(&self) -> usize {
        self.relogins.load(Ordering::Relaxed)
    }

    /// Identities whose session could not be restored, with the reason.
    pub fn dead_identities(&self) -> Vec<(String, String)> {
        self.sessions
            .iter()
            .filter_map(|s| s.dead_reason().map(|r| (s.identity.name.clone(), r)))
            .collect()
    }

    /// Whether any session was lost (renewed or not) during the run: refusals are then
    /// re-checked against a positive control before they count as enforcement.
    pub fn disrupted(&self) -> bool {
        self.relogins() > 0 || self.losses.lock().map(|l| !l.is_empty()).unwrap_or(true)
    }

    /// Why `identity`'s session is dead, if it is.
    pub fn dead_reason(&self, identity: usize) -> Option<String> {
        self.sessions.get(identity).and_then(Session::dead_reason)
    }

    /// Every identity that lost its login during the run, in the order seen.
    pub fn losses(&self) -> Vec<Loss> {
        self.losses.lock().map(|l| l.clone()).unwrap_or_default()
    }

    fn record_loss(&self, identity: usize, reason: &str, reprovisioned: bool) {
        let name = self
            .sessions
            .get(identity)
            .map(|s| s.identity.name.clone())
            .unwrap_or_default();
        if let Ok(mut losses) = self.losses.lock() {
            losses.push(Loss {
                identity,
                name,
                reason: reason.to_string(),
                at_request: self.sent.load(Ordering::Relaxed),
                reprovisioned,
            });
        }
    }

    /// Sends the engagement's `reprovision` request for `identity` as its `as` identity
    /// (renewing that one's session once if it looks logged out). `Err` says why not.
    /// Sends the engagement's `reprovision` request for `identity` (its password set to
    /// its `password:`); also the posture check's password change.
    pub async fn reprovision(&self, identity: usize) -> Result<(), String> {
        let flow = self
            .reprovision
            .as_ref()
            .ok_or("the engagement has no `reprovision` request")?;
        let request = flow
            .requests
            .get(identity)
            .ok_or("no reprovision request for this identity")?
            .as_ref()
            .map_err(String::clone)?;
        // Sent without credentials when `as` is absent: the anonymous session is last.
        let actor = flow.actor.unwrap_or(self.sessions.len().saturating_sub(1));
        if actor == identity {
            return Err("it is the identity `reprovision` is sent as".into());
        }
        let mut answer = None;
        for attempt in 0..2 {
            let mut builder = self.client.request(
                request.method.clone(),
                format!(
                    "{}{}",
                    self.base.as_str().trim_end_matches('/'),
                    request.path
                ),
            );
            if flow.actor.is_some() {
                builder = self
                    .credential_parts(actor, Credential::Normal, false)?
                    .apply(builder);
            }
            if let Some(body) = &request.body {
                builder = builder
                    .header("content-type", "application/json")
                    .body(body.expose().to_string());
            }
            self.sent.fetch_add(1, Ordering::Relaxed);
            let status = builder
                .send()
                .await
                .map(|r| r.status().as_u16())
                .map_err(|e| self.redactor.scrub(&describe_error(&e)))?;
            answer = Some(status);
            let logged_out = matches!(status, 401 | 419);
            if !(logged_out && attempt == 0 && flow.actor.is_some()) {
                break;
            }
            let Some(session) = self.sessions.get(actor) else {
                break;
            };
            let _guard = session.relogin.lock().await;
            let live = self.renew(session).await.map_err(|e| e.to_string())?;
            if let Ok(mut l) = session.live.write() {
                *l = live;
            }
            session.epoch.fetch_add(1, Ordering::AcqRel);
        }
        match answer {
            Some(status) if (200..300).contains(&status) => Ok(()),
            Some(status) => Err(format!(
                "the reprovision request {} {} answered {status}",
                request.method, request.path
            )),
            None => Err("the reprovision request was not sent".into()),
        }
    }

    /// How many credentials were renewed before they ran out (OAuth2 `expires_in`).
    pub fn refreshes(&self) -> usize {
        self.refreshes.load(Ordering::Relaxed)
    }

    /// What each identity's live token shows when read here (same order as the
    /// identities): its claims, and the weak corpus secret its signature verifies under.
    /// No request is sent.
    pub fn token_facts(&self) -> Vec<TokenFacts> {
        self.sessions
            .iter()
            .map(|s| {
                let Some(token) = live_token(&s.live()) else {
                    return TokenFacts::default();
                };
                let parsed = forge::claims(token.expose());
                let not_jwt = parsed.is_err();
                let claims = parsed.unwrap_or_default();
                TokenFacts {
                    weak_secret: forge::weak_secret_line(token.expose()),
                    subject: claims.contains_key("sub"),
                    role_claim: ROLE_CLAIMS.iter().any(|c| claims.contains_key(*c)),
                    not_jwt,
                }
            })
            .collect()
    }

    /// The claims a weak-secret forgery of `actor`'s token changes, taken from the other
    /// identity's own token where it has one, else from its engagement entry.
    fn claim_edits(
        &self,
        actor_claims: &serde_json::Map<String, serde_json::Value>,
        claim: ClaimSwap,
    ) -> Result<serde_json::Map<String, serde_json::Value>, String> {
        let (other, names): (usize, &[&str]) = match claim {
            ClaimSwap::Subject(other) => (other, SUBJECT_CLAIMS),
            ClaimSwap::Role(other) => (other, ROLE_CLAIMS),
        };
        let session = self
            .sessions
            .get(other)
            .ok_or("the identity to impersonate is unknown")?;
        let their_claims = live_token(&session.live())
            .and_then(|t| forge::claims(t.expose()).ok())
            .unwrap_or_default();
        let who = &session.identity;
        let mut edits = serde_json::Map::new();
        for &name in names {
            let Some(mine) = actor_claims.get(name) else {
                continue;
            };
            let value = their_claims
                .get(name)
                .cloned()
                .or_else(|| claim_from_identity(who, name, mine));
            if let Some(value) = value {
                edits.insert(name.to_string(), value);
            }
        }
        let key = if matches!(claim, ClaimSwap::Subject(_)) {
            "sub"
        } else {
            "role"
        };
        if !edits
            .keys()
            .any(|k| k == key || (key == "role" && k == "roles"))
        {
            return Err(format!(
                "identity `{}` has no `{key}` to claim (neither in its token nor in its attributes)",
                who.name
            ));
        }
        Ok(edits)
    }

    fn authenticator(&self) -> Authenticator<'_> {
        Authenticator {
            client: &self.client,
            base: &self.base,
            scope: &self.scope,
            redactor: &self.redactor,
        }
    }

    async fn login(&self, identity: &Identity) -> Result<Live, LoginError> {
        self.authenticator()
            .obtain(identity, None)
            .await
            .map_err(|reason| LoginError::Failed {
                identity: identity.name.clone(),
                reason: self.redactor.scrub(&reason),
            })
    }

    /// A new credential for a session: an OAuth2 refresh token first, else a full login.
    async fn renew(&self, session: &Session) -> Result<Live, LoginError> {
        let previous = session.live();
        self.authenticator()
            .obtain(&session.identity, Some(&previous))
            .await
            .map_err(|reason| LoginError::Failed {
                identity: session.identity.name.clone(),
                reason: self.redactor.scrub(&reason),
            })
    }

    /// Renews a credential whose lifetime (from the token answer) is nearly over, once
    /// for all the probes that notice it; a failure is left to the lost-session path.
    async fn renew_if_due(&self, identity: usize) {
        let Some(session) = self.sessions.get(identity) else {
            return;
        };
        if !session.live().due(Instant::now()) {
            return;
        }
        let _guard = session.relogin.lock().await;
        if !session.live().due(Instant::now()) {
            return;
        }
        if let Ok(live) = self.renew(session).await {
            if let Ok(mut l) = session.live.write() {
                *l = live;
            }
            session.epoch.fetch_add(1, Ordering::AcqRel);
            self.refreshes.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Sends `request` as `identity` with `credential`, and records its latency under
    /// `operation`. A request that looks logged out (401, 419, a redirect to a login page)
    /// is checked against the identity's positive control: if that fails too, the identity
    /// logs in again and the request is retried once; if it cannot, the answer becomes an
    /// error exchange naming the dead session, which the judge treats as inconclusive.
    pub async fn send(
        &self,
        request: &RequestSpec,
        identity: usize,
        credential: Credential,
        operation: &str,
    ) -> Exchange {
        if let Some(reason) = self.sessions.get(identity).and_then(|s| s.dead_reason()) {
            return error_exchange(format!(
                "session of `{}` is dead: {reason}",
                self.sessions[identity].identity.name
            ));
        }
        self.renew_if_due(identity).await;
        let epoch = self
            .sessions
            .get(identity)
            .map(|s| s.epoch.load(Ordering::Acquire));
        let exchange = self
            .send_attempts(request, identity, credential, operation)
            .await;
        if credential != Credential::Normal || !looks_logged_out(&exchange, &self.logged_out) {
            return exchange;
        }
        let (Some(session), Some(epoch)) = (self.sessions.get(identity), epoch) else {
            return exchange;
        };
        if matches!(session.identity.auth, Auth::None) {
            return exchange;
        }
        match self.restore_session(identity, epoch).await {
            SessionCheck::Alive => exchange,
            SessionCheck::Renewed => {
                self.send_attempts(request, identity, credential, operation)
                    .await
            }
            SessionCheck::Dead(reason) => error_exchange(format!(
                "session of `{}` is dead: {reason}",
                session.identity.name
            )),
        }
    }

    /// One request taken as it comes: no latency sample, no retry, and no lost-session
    /// recovery (a 401 stays a 401). For checks whose point is the raw answer, such as a
    /// forged `Origin` or a path outside the spec (the posture checks).
    pub async fn send_aside(
        &self,
        request: &RequestSpec,
        identity: usize,
        credential: Credential,
    ) -> Exchange {
        if let Some(rate) = &self.rate {
            rate.wait().await;
        }
        self.send_once(request, identity, credential, None).await.0
    }

    /// Decides whether a logged-out-looking answer was a real denial or a lost session.
    async fn restore_session(&self, identity: usize, seen_epoch: u64) -> SessionCheck {
        let session = &self.sessions[identity];
        let _guard = session.relogin.lock().await;
        if session.epoch.load(Ordering::Acquire) != seen_epoch {
            // Another probe already renewed this session while we waited.
            return SessionCheck::Renewed;
        }
        if let Some(reason) = session.dead_reason() {
            return SessionCheck::Dead(reason);
        }
        let control = session.control.read().ok().and_then(|c| c.clone());
        match control {
            // Without a control (before discovery has found one), logging in again is the
            // only test: if the retried request is still refused, that was the answer.
            None => {}
            Some(control) => {
                let check = self
                    .send_attempts(&control, identity, Credential::Normal, "(session check)")
                    .await;
                if check.is_success() {
                    return SessionCheck::Alive;
                }
            }
        }
        match self.renew(session).await {
            Ok(live) => {
                if let Ok(mut l) = session.live.write() {
                    *l = live;
                }
                session.epoch.fetch_add(1, Ordering::AcqRel);
                self.relogins.fetch_add(1, Ordering::Relaxed);
                SessionCheck::Renewed
            }
            Err(e) => {
                let mut reason = format!("the session was lost and logging in again failed ({e})");
                if self.reprovision.is_some() {
                    match self.reprovision(identity).await {
                        Ok(()) => {
                            if let Ok(live) = self.renew(session).await {
                                if let Ok(mut l) = session.live.write() {
                                    *l = live;
                                }
                                session.epoch.fetch_add(1, Ordering::AcqRel);
                                self.relogins.fetch_add(1, Ordering::Relaxed);
                                self.record_loss(identity, &reason, true);
                                return SessionCheck::Renewed;
                            }
                            reason.push_str("; re-provisioned, yet the login still failed");
                        }
                        Err(why) => reason.push_str(&format!("; not re-provisioned: {why}")),
                    }
                }
                if let Ok(mut d) = session.dead.write() {
                    *d = Some(reason.clone());
                }
                self.record_loss(identity, &reason, false);
                SessionCheck::Dead(reason)
            }
        }
    }

    /// One request with the run's politeness: the rate limit, retries on connection
    /// failures (safe methods, or when nothing reached the server), and Retry-After on
    /// 429/503.
    async fn send_attempts(
        &self,
        request: &RequestSpec,
        identity: usize,
        credential: Credential,
        operation: &str,
    ) -> Exchange {
        let mut attempt = 0;
        loop {
            if let Some(rate) = &self.rate {
                rate.wait().await;
            }
            let (exchange, connect_failed) = self
                .send_once(request, identity, credential, Some(operation))
                .await;
            attempt += 1;
            if attempt > RETRIES {
                return exchange;
            }
            if exchange.status.is_none() && exchange.error.is_some() {
                if connect_failed || request.method.is_safe() {
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt * attempt)))
                        .await;
                    continue;
                }
                return exchange;
            }
            if matches!(exchange.status, Some(429) | Some(503)) {
                match exchange.retry_after.filter(|d| *d <= MAX_RETRY_AFTER) {
                    Some(wait) => {
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    None => return exchange,
                }
            }
            return exchange;
        }
    }

    /// One attempt; the flag says the connection could not be made (nothing was sent).
    /// Its latency is recorded under `operation`, if one is given.
    async fn send_once(
        &self,
        request: &RequestSpec,
        identity: usize,
        credential: Credential,
        operation: Option<&str>,
    ) -> (Exchange, bool) {
        let url = self.url_for(request);
        let method = match reqwest::Method::from_bytes(request.method.as_str().as_bytes()) {
            Ok(m) => m,
            Err(e) => return (error_exchange(format!("bad method: {e}")), false),
        };
        let mut builder = self.client.request(method, &url);
        match self.credential_parts(identity, credential, request.method.is_safe()) {
            Ok(parts) => builder = parts.apply(builder),
            Err(reason) => return (error_exchange(reason), false),
        }
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if let Some(json) = &request.json {
            builder = builder
                .header("content-type", "application/json")
                .body(json.to_string());
        }
        let started = Instant::now();
        self.sent.fetch_add(1, Ordering::Relaxed);
        let result = builder.send().await;
        let mut connect_failed = false;
        let mut exchange = match result {
            Err(e) => {
                connect_failed = e.is_connect();
                error_exchange(self.redactor.scrub(&describe_error(&e)))
            }
            Ok(response) => read_response(response).await,
        };
        exchange.latency = started.elapsed();
        self.note_answer(
            request.method.as_str(),
            &self.redactor.scrub(&url),
            &exchange,
        );
        if let (None, true, Some(operation)) = (&exchange.error, self.record_latency, operation) {
            let outcome = if exchange.is_success() {
                Outcome::Allowed
            } else {
                Outcome::Denied
            };
            let identity = self
                .sessions
                .get(identity)
                .map(|s| s.identity.name.as_str());
            self.latency
                .record_for(operation, identity, Some(outcome), exchange.latency);
        }
        (exchange, connect_failed)
    }

    /// What carries `identity`'s credential (or its forgery): headers and query pairs,
    /// plus the session's CSRF token on unsafe methods.
    fn credential_parts(
        &self,
        identity: usize,
        credential: Credential,
        safe_method: bool,
    ) -> Result<Parts, String> {
        let live = self
            .sessions
            .get(identity)
            .map(Session::live)
            .unwrap_or_default();
        match credential {
            Credential::Normal => {
                let mut parts = live.credential.into_parts();
                if let (Some((header, token)), false) = (live.csrf, safe_method) {
                    parts.headers.push((header, token));
                }
                Ok(parts)
            }
            Credential::Omitted => Ok(Parts::default()),
            Credential::Forged(forgery) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let forge_value = |value: &Secret| {
                    let forged = match forgery {
                        Forgery::WeakSecret { line, claim } => {
                            let secret = crate::request::weak_secret_at(line)
                                .ok_or("the weak secret's corpus line is gone")?;
                            let claims = forge::claims(value.expose())?;
                            let edits = self.claim_edits(&claims, claim)?;
                            forge::resign(value.expose(), secret.as_bytes(), &edits, now)?
                        }
                        _ => forge::forge(value.expose(), forgery, now)?,
                    };
                    self.redactor.register(&forged);
                    Ok::<_, String>(Secret::new(forged))
                };
                let forged = match live.credential {
                    Attach::None => return Err("the identity has no credential to forge".into()),
                    // Never planned (`carries_token` is false): several headers are no token.
                    Attach::Headers(_) => {
                        return Err(
                            "the identity sends several fixed headers, no single token to forge"
                                .into(),
                        )
                    }
                    Attach::Header { name, value } => {
                        let (prefix, token) = match value.expose().split_once(' ') {
                            Some((scheme, token)) => (format!("{scheme} "), token.to_string()),
                            None => (String::new(), value.expose().to_string()),
                        };
                        let forged = forge_value(&Secret::new(token))?;
                        Attach::Header {
                            name,
                            value: Secret::new(format!("{prefix}{}", forged.expose())),
                        }
                    }
                    Attach::Cookie { name, value } => Attach::Cookie {
                        name,
                        value: forge_value(&value)?,
                    },
                    Attach::Query { name, value } => Attach::Query {
                        name,
                        value: forge_value(&value)?,
                    },
                };
                Ok(forged.into_parts())
            }
        }
    }
}

/// Claims that say who a token's bearer is; a subject forgery takes them all from the
/// identity it impersonates.
const SUBJECT_CLAIMS: &[&str] = &[
    "sub",
    "user_id",
    "userId",
    "uid",
    "email",
    "username",
    "preferred_username",
    "name",
    "role",
    "roles",
    "tenant",
    "tenant_id",
    "tenantId",
    "org",
    "org_id",
];

/// Claims that carry a role.
const ROLE_CLAIMS: &[&str] = &["role", "roles"];

/// The token an identity's live credential carries (without its `Bearer ` scheme).
fn live_token(live: &Live) -> Option<Secret> {
    match &live.credential {
        Attach::None | Attach::Headers(_) => None,
        Attach::Header { value, .. } => Some(match value.expose().split_once(' ') {
            Some((_, token)) => Secret::new(token.to_string()),
            None => value.clone(),
        }),
        Attach::Cookie { value, .. } | Attach::Query { value, .. } => Some(value.clone()),
    }
}

/// A claim's value for an identity with no token to copy it from: its attributes
/// (`user_id`, `email`, `tenant_id`…), role and tenant, shaped like the actor's own
/// value (a string stays a string).
fn claim_from_identity(
    who: &Identity,
    name: &str,
    mine: &serde_json::Value,
) -> Option<serde_json::Value> {
    let attribute = |keys: &[&str]| keys.iter().find_map(|k| who.attributes.get(*k)).cloned();
    let value = match name {
        "sub" | "user_id" | "userId" | "uid" => attribute(&["sub", "user_id", "id", "uid"])?,
        "email" | "username" | "preferred_username" | "name" => attribute(&[name, "email"])?,
        "role" => serde_json::Value::from(who.role.clone()),
        "roles" => serde_json::json!([who.role]),
        _ => match attribute(&[name, "tenant_id"]) {
            Some(v) => v,
            None => serde_json::Value::from(who.tenant.clone()?),
        },
    };
    Some(match (mine, &value) {
        (serde_json::Value::String(_), serde_json::Value::Number(n)) => {
            serde_json::Value::from(n.to_string())
        }
        _ => value,
    })
}

enum SessionCheck {
    /// The identity's control still works: the answer was a real denial.
    Alive,
    Renewed,
    Dead(String),
}

/// 401, 419 (Laravel's session expiry), a redirect to a login page, or an answer one of
/// the engagement's `logged-out` rules matches.
fn looks_logged_out(exchange: &Exchange, rules: &[crate::engagement::Detector]) -> bool {
    if rules.iter().any(|r| r.matches(&exchange.answer())) {
        return true;
    }
    match exchange.status {
        Some(401) | Some(419) => true,
        Some(s) if (300..400).contains(&s) => exchange.location.as_deref().is_some_and(|l| {
            let l = l.to_ascii_lowercase();
            ["login", "signin", "sign-in", "sso"]
                .iter()
                .any(|w| l.contains(w))
        }),
        _ => false,
    }
}

fn error_exchange(reason: String) -> Exchange {
    Exchange {
        error: Some(reason),
        ..Exchange::default()
    }
}

fn describe_error(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut text = format!("{kind}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    if let Some(hint) = client::tls_hint(&text) {
        text.push_str(&format!("\n  hint: {hint}"));
    }
    text
}

async fn read_response(mut response: reqwest::Response) -> Exchange {
    let status = response.status().as_u16();
    let header = |name: reqwest::header::HeaderName| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let content_type = header(reqwest::header::CONTENT_TYPE);
    let location = header(reqwest::header::LOCATION);
    let link = header(reqwest::header::LINK);
    // Set-Cookie is kept without its value (it may carry a session): the posture checks
    // judge the cookie's attributes.
    let headers = response
        .headers()
        .iter()
        .filter_map(|(k, v)| {
            let text = v.to_str().ok()?;
            let text = if *k == reqwest::header::SET_COOKIE {
                crate::posture::cookies::withhold_value(text)
            } else {
                text.to_string()
            };
            Some((k.as_str().to_string(), text))
        })
        .take(HEADERS_KEPT)
        .collect();
    let retry_after = header(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let mut body = Vec::new();
    let mut truncated = false;
    let mut error = None;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = BODY_CAP.saturating_sub(body.len());
                if chunk.len() > room {
                    body.extend_from_slice(&chunk[..room]);
                    truncated = true;
                    break;
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => {
                error = Some(format!("the body could not be read: {e}"));
                break;
            }
        }
    }
    Exchange {
        status: Some(status),
        content_type,
        location,
        body,
        truncated,
        latency: Duration::ZERO,
        link,
        retry_after,
        error,
        headers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_out_rules_join_the_built_in_signs() {
        let yaml = "target: http://127.0.0.1:9\nspec: s.yaml\nmatrix: m.csv\nidentities:\n  - name: a\n    role: r\n    auth:\n      bearer: t\ndetectors:\n  - name: sso\n    in: header:X-Session\n    pattern: ^expired$\n    means: logged-out\n  - name: page\n    pattern: not permitted\n    means: denied\n";
        let engagement = Engagement::parse(
            yaml,
            std::path::Path::new("e.yaml"),
            &crate::engagement::EnvSource::default(),
        )
        .expect("valid engagement");
        let rules: Vec<_> = engagement
            .detectors
            .iter()
            .filter(|d| d.means == crate::engagement::Means::LoggedOut)
            .cloned()
            .collect();
        let answer = |status: u16, header: &str, body: &str| Exchange {
            status: Some(status),
            headers: vec![("x-session".into(), header.into())],
            body: body.as_bytes().to_vec(),
            ..Exchange::default()
        };
        assert!(looks_logged_out(&answer(200, "expired", "{}"), &rules));
        assert!(!looks_logged_out(&answer(200, "live", "{}"), &rules));
        // A `denied` rule is a refusal, not a lost session.
        assert!(!looks_logged_out(
            &answer(200, "live", "not permitted"),
            &rules
        ));
        assert!(looks_logged_out(&answer(401, "live", "{}"), &[]));
    }
}
