//! Sessions, one per identity: login, renewal before expiry, the lost-session check
//! against a positive control, re-login and re-provisioning, and the losses a run saw.
//! [`Executor::send`] is the session-aware entry point every probe and discovery read
//! goes through; the HTTP attempt itself is in `client.rs`.

use super::auth::{Authenticator, Live};
use super::client::{describe_error, error_exchange};
use super::{Exchange, Executor, LoginError};
use crate::engagement::{Auth, Identity};
use crate::request::{Credential, RequestSpec};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// One identity's session: its live credential, how often it was renewed, and whether it
/// is beyond repair (its probes are then inconclusive, never "enforced").
pub(super) struct Session {
    pub(super) identity: Identity,
    pub(super) live: std::sync::RwLock<Live>,
    /// Bumped at every re-login, so concurrent probes that saw the same logout re-login once.
    pub(super) epoch: AtomicU64,
    pub(super) relogin: tokio::sync::Mutex<()>,
    pub(super) dead: std::sync::RwLock<Option<String>>,
    /// A request this identity is allowed to make: tells a logout from a real denial.
    pub(super) control: std::sync::RwLock<Option<RequestSpec>>,
}

impl Session {
    pub(super) fn live(&self) -> Live {
        self.live.read().map(|l| l.clone()).unwrap_or_default()
    }

    pub(super) fn dead_reason(&self) -> Option<String> {
        self.dead.read().ok().and_then(|d| d.clone())
    }

    /// Puts a new credential in place and bumps the epoch, so probes that saw the old one
    /// fail know it was already renewed.
    pub(super) fn install(&self, live: Live) {
        if let Ok(mut l) = self.live.write() {
            *l = live;
        }
        self.epoch.fetch_add(1, Ordering::AcqRel);
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

impl Executor {
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

    /// How many times a lost session was renewed during the run.
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
    /// (renewing that one's session once if it looks logged out), its password set to its
    /// `password:`; also the posture check's password change. `Err` says why not.
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
            session.install(live);
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

    fn authenticator(&self) -> Authenticator<'_> {
        Authenticator {
            client: &self.client,
            base: &self.base,
            scope: &self.scope,
            redactor: &self.redactor,
        }
    }

    /// Logs in as an account the scan did not start with (one a sign-up probe just
    /// made) and sends each request once as it. Nothing is retried and no session is
    /// kept: the account is a throwaway whose only use is to show what it became. The
    /// error is why the login failed.
    pub async fn send_as_new_account(
        &self,
        account: &Identity,
        requests: &[&RequestSpec],
    ) -> Result<Vec<Exchange>, String> {
        let live = self
            .authenticator()
            .obtain(account, None)
            .await
            .map_err(|reason| self.redactor.scrub(&reason))?;
        let mut answers = Vec::with_capacity(requests.len());
        for request in requests {
            if let Some(rate) = &self.rate {
                rate.wait().await;
            }
            let mut parts = live.credential.clone().into_parts();
            if let (Some((header, token)), false) = (live.csrf.clone(), request.method.is_safe()) {
                parts.headers.push((header, token));
            }
            let (exchange, _) = self
                .send_plain(request, &self.url_for(request), parts)
                .await;
            answers.push(exchange);
        }
        Ok(answers)
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

    /// Logs `identity` in again now, whatever its credential's lifetime: a posture check
    /// that changed what the account is (its role) needs a credential issued since.
    pub async fn relogin(&self, identity: usize) -> Result<(), String> {
        let session = self
            .sessions
            .get(identity)
            .ok_or("no session for this identity")?;
        let _guard = session.relogin.lock().await;
        let live = self
            .login(&session.identity)
            .await
            .map_err(|e| e.to_string())?;
        session.install(live);
        Ok(())
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
    pub(super) async fn renew_if_due(&self, identity: usize) {
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
            session.install(live);
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
                let mut again = self
                    .send_attempts(request, identity, credential, operation)
                    .await;
                let mut met = exchange.faults;
                met.push(crate::fault::FaultKind::SessionLost);
                met.append(&mut again.faults);
                again.faults = met;
                again
            }
            SessionCheck::Dead(reason) => {
                let mut dead = error_exchange(format!(
                    "session of `{}` is dead: {reason}",
                    session.identity.name
                ));
                dead.faults = exchange.faults;
                dead.faults.push(crate::fault::FaultKind::SessionLost);
                dead
            }
        }
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
                session.install(live);
                self.relogins.fetch_add(1, Ordering::Relaxed);
                SessionCheck::Renewed
            }
            Err(e) => {
                let mut reason = format!("the session was lost and logging in again failed ({e})");
                if self.reprovision.is_some() {
                    match self.reprovision(identity).await {
                        Ok(()) => {
                            if let Ok(live) = self.renew(session).await {
                                session.install(live);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_out_rules_join_the_built_in_signs() {
        let yaml = "target: http://127.0.0.1:9\nspec: s.yaml\nmatrix: m.csv\nidentities:\n  - name: a\n    role: r\n    auth:\n      bearer: t\ndetectors:\n  - name: sso\n    in: header:X-Session\n    pattern: ^expired$\n    means: logged-out\n  - name: page\n    pattern: not permitted\n    means: denied\n";
        let engagement = crate::engagement::Engagement::parse(
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
