//! Security posture: the checks of a security review that are not about the role matrix
//! (response headers, session cookies, leaks in answers, CORS, undocumented routes).
//! Owns the check kinds, the [`Weakness`] rows they produce and the [`PostureBook`] that
//! collects them. Passive checks are pure functions over exchanges the scan already
//! made ([`headers`], [`cookies`], [`leaks`]); the requests of their own the other checks
//! need are in [`probe`] (CORS, routes, login and operation bursts, logout, password
//! change), [`role_change`] and [`transport`] (https targets), each bounded in count and
//! time.

pub mod cookies;
pub mod headers;
pub mod leaks;
pub mod probe;
pub mod role_change;
pub mod transport;

use crate::exchange::Exchange;
use serde::Serialize;
use std::collections::BTreeMap;

/// One kind of posture check; its name is the `check` of a report row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Check {
    MissingNosniff,
    MissingFrameProtection,
    CacheableAuthenticated,
    VersionDisclosure,
    MissingHsts,
    SessionCookie,
    ErrorDisclosure,
    SecretInResponse,
    CredentialEcho,
    PasswordInObject,
    Cors,
    UndocumentedRoute,
    SessionAfterLogout,
    NoLoginRateLimit,
    HttpNotRedirected,
    TlsCertificate,
    SessionAfterPasswordChange,
    SessionAfterRoleChange,
    NoRateLimit,
}

impl Check {
    pub const ALL: [Check; 19] = [
        Check::MissingNosniff,
        Check::MissingFrameProtection,
        Check::CacheableAuthenticated,
        Check::VersionDisclosure,
        Check::MissingHsts,
        Check::SessionCookie,
        Check::ErrorDisclosure,
        Check::SecretInResponse,
        Check::CredentialEcho,
        Check::PasswordInObject,
        Check::Cors,
        Check::UndocumentedRoute,
        Check::SessionAfterLogout,
        Check::NoLoginRateLimit,
        Check::HttpNotRedirected,
        Check::TlsCertificate,
        Check::SessionAfterPasswordChange,
        Check::SessionAfterRoleChange,
        Check::NoRateLimit,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Check::MissingNosniff => "missing-nosniff",
            Check::MissingFrameProtection => "missing-frame-protection",
            Check::CacheableAuthenticated => "cacheable-authenticated",
            Check::VersionDisclosure => "version-disclosure",
            Check::MissingHsts => "missing-hsts",
            Check::SessionCookie => "session-cookie",
            Check::ErrorDisclosure => "error-disclosure",
            Check::SecretInResponse => "secret-in-response",
            Check::CredentialEcho => "credential-echo",
            Check::PasswordInObject => "password-in-object",
            Check::Cors => "cors",
            Check::UndocumentedRoute => "undocumented-route",
            Check::SessionAfterLogout => "session-after-logout",
            Check::NoLoginRateLimit => "no-login-rate-limit",
            Check::HttpNotRedirected => "http-not-redirected",
            Check::TlsCertificate => "tls-certificate",
            Check::SessionAfterPasswordChange => "session-after-password-change",
            Check::SessionAfterRoleChange => "session-after-role-change",
            Check::NoRateLimit => "no-rate-limit",
        }
    }

    /// How bad a weakness of this kind is, before its context: leaked credentials and a
    /// CORS policy that hands authenticated answers to any site are high.
    pub fn severity(self) -> &'static str {
        match self {
            Check::SecretInResponse
            | Check::CredentialEcho
            | Check::PasswordInObject
            | Check::SessionAfterLogout
            | Check::SessionAfterPasswordChange
            | Check::SessionAfterRoleChange
            | Check::TlsCertificate
            | Check::Cors => "high",
            Check::ErrorDisclosure
            | Check::UndocumentedRoute
            | Check::SessionCookie
            | Check::CacheableAuthenticated
            | Check::NoLoginRateLimit
            | Check::NoRateLimit
            | Check::HttpNotRedirected
            | Check::MissingHsts => "medium",
            Check::MissingNosniff | Check::MissingFrameProtection | Check::VersionDisclosure => {
                "low"
            }
        }
    }

    /// Header checks judge the target as a whole: one row, however many answers lack it.
    fn target_wide(self) -> bool {
        matches!(
            self,
            Check::MissingNosniff
                | Check::MissingFrameProtection
                | Check::VersionDisclosure
                | Check::MissingHsts
                | Check::SessionCookie
        )
    }
}

display_as_str!(Check);

impl Serialize for Check {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// What one check found wrong, as one row of the report's `posture` section. Never
/// carries a credential or a secret's value: only where it was and what kind it is.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Weakness {
    /// Always `weakness`: a posture row is not a matrix verdict.
    pub verdict: &'static str,
    pub check: Check,
    pub severity: &'static str,
    /// `METHOD /path` of the first answer that showed it, or the probed path.
    pub operation: String,
    pub url: String,
    /// The identity whose request showed it (`anonymous` for none).
    pub identity: String,
    pub reason: String,
    /// How many answers showed it.
    pub seen: usize,
    /// Every operation that showed the same weakness, first seen first (at most
    /// [`OPERATIONS_KEPT`]).
    pub operations: Vec<String>,
}

/// Operations listed per row; `seen` still counts every answer.
pub const OPERATIONS_KEPT: usize = 20;

/// A finding of a check before it is placed: the check and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Spot {
    pub check: Check,
    pub reason: String,
}

impl Spot {
    pub fn new(check: Check, reason: impl Into<String>) -> Self {
        Spot {
            check,
            reason: reason.into(),
        }
    }
}

/// One answer as the passive checks see it.
pub struct Seen<'a> {
    /// `METHOD /path` of the operation.
    pub operation: &'a str,
    pub url: &'a str,
    pub identity: &'a str,
    /// Sent with the identity's own, real credential (not omitted, not forged).
    pub authenticated: bool,
    pub exchange: &'a Exchange,
}

/// Which checks run (the engagement's `posture:`). The passive ones send nothing and are
/// on by default; every check that sends requests of its own is opt-in, as a reviewer
/// asks for it (the read-only CORS, route and transport probes with `true`, the others
/// with what they need to know).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PostureOptions {
    /// Header, cookie and leak checks over the scan's own answers.
    pub passive: bool,
    /// Forged-origin and preflight requests on a few authenticated reads.
    pub cors: bool,
    /// The debug/admin path corpus as anonymous and as the narrowest role.
    pub routes: bool,
    /// The target is served over https (HSTS and the cookies' Secure flag apply); taken
    /// from the target's scheme, not from the file.
    #[serde(skip)]
    pub https: bool,
    /// On https targets: plain http must redirect, and a certificate the engagement does
    /// not verify is checked once by a client that does.
    pub transport: bool,
    /// The port plain http is served on, when the target's https port is not 443.
    pub http_port: Option<u16>,
    /// Opt-in, ends a session: `METHOD /path` of the logout; one identity logs out and
    /// its old credential must then be refused.
    pub logout: Option<String>,
    /// Opt-in, ends a session: one identity's password is set again through the
    /// engagement's `reprovision:` request; its old credential must then be refused.
    pub password_change: bool,
    /// Opt-in: a bounded burst of failed logins that must meet a 429 or a lockout.
    pub login_burst: Option<LoginBurst>,
    /// Opt-in, changes a role and sets it back: one identity's role is lowered through a
    /// spec operation; its old credential must then lose what the old role got.
    pub role_change: Option<RoleChange>,
    /// Opt-in: sensitive operations each sent in a bounded burst that must meet a 429 or
    /// a lockout (at most [`MAX_OPERATION_BURSTS`]).
    pub operation_bursts: Vec<OperationBurst>,
    /// `high`, `medium` or `low`: a weakness this severe or worse makes `scan` exit 1,
    /// like a violation. Unset, weaknesses are reported and do not change the exit code.
    pub fail_on: Option<String>,
}

/// How bad a severity is: 0 for `high`, 2 for `low`.
/// A request of a posture check's own: a method, a path and maybe a JSON body (no query
/// or headers; the executor adds the credential).
pub(crate) fn bare_request(
    method: crate::spec::Method,
    path: String,
    json: Option<serde_json::Value>,
) -> crate::request::RequestSpec {
    crate::request::RequestSpec {
        method,
        path,
        query: Vec::new(),
        headers: Vec::new(),
        json,
    }
}

fn rank(severity: &str) -> Option<u8> {
    match severity {
        "high" => Some(0),
        "medium" => Some(1),
        "low" => Some(2),
        _ => None,
    }
}

/// Whether `rows` hold a weakness at least as severe as `fail_on` (never when unset).
pub fn fails_gate(rows: &[Weakness], fail_on: Option<&str>) -> bool {
    let Some(limit) = fail_on.and_then(rank) else {
        return false;
    };
    rows.iter()
        .any(|w| rank(w.severity).is_some_and(|r| r <= limit))
}

/// `posture: login_burst:`: a login request with wrong credentials, sent `count` times.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBurst {
    /// POSTed to, relative to the target.
    pub path: String,
    /// The body: an existing account with a wrong password (never a real one).
    pub json: serde_json::Value,
    #[serde(default = "default_burst")]
    pub count: usize,
}

fn default_burst() -> usize {
    20
}

/// The most requests one burst (failed logins, one sensitive operation) may send.
pub const MAX_BURST: usize = 50;

/// The most sensitive operations `operation_bursts:` may name.
pub const MAX_OPERATION_BURSTS: usize = 5;

/// `posture: role_change:`: how an identity's role is changed, through an operation of
/// the spec. Its `{placeholders}` are filled from the identity's `attributes`, and
/// `{role}` with the role being set.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    /// `METHOD /path` of the spec's role change, e.g. `PUT /admin/users/{user_id}/role`.
    pub operation: String,
    /// The identity that sends it (one allowed to change roles).
    #[serde(rename = "as")]
    pub actor: String,
    /// The identity whose role changes (not `as`); it ends with its own role again.
    pub identity: String,
    /// The body, e.g. `{role: "{role}"}`.
    #[serde(default)]
    pub json: Option<serde_json::Value>,
    /// The role the identity is raised to first (then logged in again), when its own role
    /// is not the higher one; default: its own role.
    #[serde(default)]
    pub from: Option<String>,
    /// The role it is lowered to; default: its own role.
    #[serde(default)]
    pub to: Option<String>,
}

impl RoleChange {
    /// (higher role, lower role) for an identity whose own role is `own`.
    pub fn roles<'a>(&'a self, own: &'a str) -> (&'a str, &'a str) {
        (
            self.from.as_deref().unwrap_or(own),
            self.to.as_deref().unwrap_or(own),
        )
    }
}

/// `posture: operation_bursts:` item: one sensitive operation sent `count` times.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperationBurst {
    /// `METHOD /path` as sent (a concrete path, e.g. `GET /export/invoices.csv`).
    pub operation: String,
    /// The identity that sends it; anonymous when absent.
    #[serde(default, rename = "as")]
    pub actor: Option<String>,
    #[serde(default)]
    pub json: Option<serde_json::Value>,
    #[serde(default = "default_burst")]
    pub count: usize,
}

impl PostureOptions {
    /// The problems of the engagement's `posture:` section: (text to point at, message).
    /// `identities` are the engagement's, which `as:` and `identity:` must name.
    pub fn check(
        &self,
        identities: &[crate::engagement::Identity],
    ) -> Result<(), (String, String)> {
        let names: Vec<&str> = identities.iter().map(|i| i.name.as_str()).collect();
        let known = |at: &str, name: &str| -> Result<(), (String, String)> {
            if names.contains(&name) {
                return Ok(());
            }
            Err((
                at.into(),
                format!(
                    "posture {at} names identity `{name}`, which the engagement does not define; use one of: {}",
                    names.join(", ")
                ),
            ))
        };
        if let Some(change) = &self.role_change {
            role_change_problem(change, identities)
                .map_or(Ok(()), |m| Err(("role_change:".to_string(), m)))?;
            known("role_change:", &change.actor)?;
            known("role_change:", &change.identity)?;
        }
        if self.operation_bursts.len() > MAX_OPERATION_BURSTS {
            return Err((
                "operation_bursts:".into(),
                format!(
                    "posture operation_bursts names {} operations; at most {MAX_OPERATION_BURSTS} (each is a burst of requests)",
                    self.operation_bursts.len()
                ),
            ));
        }
        for burst in &self.operation_bursts {
            if probe::parse_operation(&burst.operation).is_none()
                || !(1..=MAX_BURST).contains(&burst.count)
            {
                return Err((
                    "operation_bursts:".into(),
                    format!(
                        "posture operation_bursts needs each `operation` as `METHOD /path` (e.g. `GET /export/invoices.csv`) and a count from 1 to {MAX_BURST} (got `{}`, {})",
                        burst.operation, burst.count
                    ),
                ));
            }
            if let Some(actor) = &burst.actor {
                known("operation_bursts:", actor)?;
            }
        }
        if let Some(logout) = &self.logout {
            if probe::parse_operation(logout).is_none() {
                return Err((
                    "logout:".into(),
                    format!("posture logout `{logout}` is not `METHOD /path` (e.g. `POST /auth/logout`)"),
                ));
            }
        }
        if let Some(level) = self.fail_on.as_deref().filter(|l| rank(l).is_none()) {
            return Err((
                "fail_on:".into(),
                format!("posture fail_on `{level}` is not a severity: use high, medium or low"),
            ));
        }
        if let Some(burst) = &self.login_burst {
            if !(1..=MAX_BURST).contains(&burst.count) || !burst.path.starts_with('/') {
                return Err((
                    "login_burst:".into(),
                    format!(
                        "posture login_burst needs a path starting with `/` and a count from 1 to {MAX_BURST} (got `{}`, {})",
                        burst.path, burst.count
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl Default for PostureOptions {
    fn default() -> Self {
        PostureOptions {
            passive: true,
            cors: false,
            routes: false,
            https: false,
            transport: false,
            http_port: None,
            logout: None,
            password_change: false,
            login_burst: None,
            role_change: None,
            operation_bursts: Vec::new(),
            fail_on: None,
        }
    }
}

/// What is wrong with a `role_change:` beyond its names, if anything: its operation's
/// form, the roles, and the same identity on both ends.
fn role_change_problem(
    change: &RoleChange,
    identities: &[crate::engagement::Identity],
) -> Option<String> {
    if probe::parse_operation(&change.operation).is_none() {
        return Some(format!(
            "posture role_change operation `{}` is not `METHOD /path` (e.g. `PUT /admin/users/{{user_id}}/role`)",
            change.operation
        ));
    }
    if change.actor == change.identity {
        return Some(format!(
            "posture role_change sends as `{}` and changes `{}`: use another identity for `as:` (a lowered identity could not set its role back)",
            change.actor, change.identity
        ));
    }
    let own = identities
        .iter()
        .find(|i| i.name == change.identity)
        .map(|i| i.role.as_str())?;
    let roles: Vec<&str> = identities.iter().map(|i| i.role.as_str()).collect();
    let (high, low) = change.roles(own);
    if let Some(role) = [high, low].into_iter().find(|r| !roles.contains(r)) {
        return Some(format!(
            "posture role_change role `{role}` is no identity's role; use one of: {}",
            roles.join(", ")
        ));
    }
    (high == low).then(|| {
        format!(
            "posture role_change lowers `{}` from `{high}` to `{low}`: set `from:` (the role it is raised to first) or `to:` (the role it is lowered to) to another role",
            change.identity
        )
    })
}

/// Collects weaknesses as answers arrive: one row per check and reason (one per check for
/// the target-wide header checks), so the same leak on forty operations is one row that
/// lists them, while a different field or status is a row of its own.
#[derive(Debug, Default)]
pub struct PostureBook {
    rows: BTreeMap<(Check, String), Weakness>,
}

impl PostureBook {
    pub fn note(&mut self, spot: Spot, operation: &str, url: &str, identity: &str) {
        let key = if spot.check.target_wide() {
            String::new()
        } else {
            spot.reason.clone()
        };
        let row = self
            .rows
            .entry((spot.check, key))
            .or_insert_with(|| Weakness {
                verdict: "weakness",
                check: spot.check,
                severity: spot.check.severity(),
                operation: operation.to_string(),
                url: url.to_string(),
                identity: identity.to_string(),
                reason: spot.reason,
                seen: 0,
                operations: Vec::new(),
            });
        row.seen += 1;
        if row.operations.len() < OPERATIONS_KEPT && !row.operations.iter().any(|o| o == operation)
        {
            row.operations.push(operation.to_string());
        }
    }

    /// Runs every passive check over one answer.
    pub fn observe(&mut self, passive: &Passive, seen: &Seen<'_>) {
        for spot in passive.check(seen) {
            self.note(spot, seen.operation, seen.url, seen.identity);
        }
    }

    /// Set-Cookie lines a login answered with (values withheld): the session cookie checks.
    pub fn observe_login_cookies(&mut self, passive: &Passive, identity: &str, lines: &[String]) {
        for line in lines {
            for spot in cookies::check(line, passive.https, &passive.session_cookies) {
                self.note(spot, "login", "(login)", identity);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The rows, worst first, then by check and operation.
    pub fn into_rows(self) -> Vec<Weakness> {
        let rank = |s: &str| rank(s).unwrap_or(3);
        let mut rows: Vec<Weakness> = self.rows.into_values().collect();
        rows.sort_by(|a, b| {
            (rank(a.severity), a.check, &a.operation).cmp(&(
                rank(b.severity),
                b.check,
                &b.operation,
            ))
        });
        rows
    }
}

/// The passive checks' settings for one run.
pub struct Passive {
    pub https: bool,
    /// Cookie names the engagement's logins use for sessions (checked whatever their name).
    pub session_cookies: Vec<String>,
    /// Tells whether a text holds one of the run's credentials (the redactor's list).
    pub redactor: crate::engagement::Redactor,
}

impl Passive {
    pub fn check(&self, seen: &Seen<'_>) -> Vec<Spot> {
        let e = seen.exchange;
        if e.status.is_none() {
            return Vec::new();
        }
        let mut out = headers::check(e, self.https, seen.authenticated);
        for (name, value) in &e.headers {
            if name.eq_ignore_ascii_case("set-cookie") {
                out.extend(cookies::check(value, self.https, &self.session_cookies));
            }
        }
        out.extend(leaks::check(e, &self.redactor));
        out
    }
}

/// The cookies the identities' logins use as sessions (judged whatever their names).
fn session_cookie_names(identities: &[crate::engagement::Identity]) -> Vec<String> {
    let mut names: Vec<String> = identities
        .iter()
        .filter_map(|i| match &i.auth {
            crate::engagement::Auth::Login(flow) => match &flow.session {
                crate::engagement::SessionUse::Cookie { name } => Some(name.clone()),
                crate::engagement::SessionUse::Header { .. } => None,
            },
            _ => None,
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// A scan's posture state: the passive checks' settings, the rows found so far, and the
/// authenticated reads the CORS check may replay. The scan calls [`ScanPosture::observe`]
/// for every judged probe and [`ScanPosture::finish`] once probing is over.
pub struct ScanPosture {
    options: PostureOptions,
    /// For the transport checks on an https target.
    engagement: Option<crate::engagement::Engagement>,
    passive: Passive,
    book: PostureBook,
    reads: Vec<probe::Read>,
}

impl ScanPosture {
    pub fn new(
        engagement: &crate::engagement::Engagement,
        redactor: crate::engagement::Redactor,
    ) -> Self {
        let https = engagement.target.scheme() == "https";
        let options = engagement.posture.clone();
        ScanPosture {
            engagement: (https && options.transport).then(|| engagement.clone()),
            options: PostureOptions { https, ..options },
            passive: Passive {
                https,
                session_cookies: session_cookie_names(&engagement.identities),
                redactor,
            },
            book: PostureBook::default(),
            reads: Vec::new(),
        }
    }

    /// Runs the passive checks over one probe's answer, and keeps the first successful
    /// authenticated GET of each operation (for the CORS check) and of each identity (for
    /// the session checks).
    pub fn observe(
        &mut self,
        probe: &crate::plan::Probe,
        exchange: &Exchange,
        url: &str,
        api: &crate::spec::Api,
        identities: &[crate::engagement::Identity],
    ) {
        let (Some(op), Some(who)) = (api.operations.get(probe.op), identities.get(probe.actor))
        else {
            return;
        };
        let authenticated =
            probe.credential == crate::request::Credential::Normal && !who.is_anonymous();
        let operation = op.key();
        if self.options.passive {
            let seen = Seen {
                operation: &operation,
                url,
                identity: &who.name,
                authenticated,
                exchange,
            };
            self.book.observe(&self.passive, &seen);
        }
        let new_operation = self.reads.len() < probe::MAX_CORS_READS
            && !self.reads.iter().any(|r| r.operation == operation);
        let new_identity = !self.reads.iter().any(|r| r.identity == probe.actor);
        let wanted = authenticated
            && probe.request.method == crate::spec::Method::Get
            && exchange.is_success()
            && (new_operation || new_identity);
        if wanted {
            self.reads.push(probe::Read {
                identity: probe.actor,
                request: probe.request.clone(),
                operation,
            });
        }
    }

    /// Judges the logins' session cookies, runs the bounded active checks, and returns
    /// the rows (worst first) with the number of requests those checks sent; what an
    /// opt-in check could not judge goes to `warnings`.
    pub async fn finish(
        mut self,
        executor: &crate::exec::Executor,
        api: &crate::spec::Api,
        policy: &crate::matrix::Policy,
        identities: &[crate::engagement::Identity],
        warnings: &mut Vec<String>,
    ) -> (Vec<Weakness>, usize) {
        if self.options.passive {
            for (name, lines) in executor.login_cookies() {
                self.book
                    .observe_login_cookies(&self.passive, &name, &lines);
            }
        }
        let mut sent = 0;
        if let Some(engagement) = &self.engagement {
            sent += transport::run(
                engagement,
                self.options.http_port,
                &self.passive.redactor,
                &mut self.book,
            )
            .await;
        }
        let scene = probe::Scene {
            executor,
            api,
            policy,
            identities,
        };
        sent += probe::run(
            &scene,
            &self.reads,
            &self.options,
            self.options.passive.then_some(&self.passive),
            &mut self.book,
            warnings,
        )
        .await;
        (self.book.into_rows(), sent)
    }
}

/// An answer with a body and headers, for the checks' unit tests.
#[cfg(test)]
pub(crate) fn test_answer(status: u16, body: &str, headers: &[(&str, &str)]) -> Exchange {
    Exchange {
        status: Some(status),
        body: body.as_bytes().to_vec(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Exchange::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_rows_merge_across_operations_leak_rows_by_reason() {
        let mut book = PostureBook::default();
        book.note(
            Spot::new(Check::MissingNosniff, "a"),
            "GET /a",
            "u",
            "alice",
        );
        book.note(Spot::new(Check::MissingNosniff, "b"), "GET /b", "u", "bob");
        book.note(
            Spot::new(Check::ErrorDisclosure, "x"),
            "GET /a",
            "u",
            "alice",
        );
        book.note(
            Spot::new(Check::ErrorDisclosure, "x"),
            "GET /b",
            "u",
            "alice",
        );
        book.note(
            Spot::new(Check::ErrorDisclosure, "y"),
            "GET /b",
            "u",
            "alice",
        );
        let rows = book.into_rows();
        assert_eq!(rows.len(), 3);
        let nosniff = rows
            .iter()
            .find(|w| w.check == Check::MissingNosniff)
            .expect("row");
        assert_eq!((nosniff.seen, nosniff.operation.as_str()), (2, "GET /a"));
        assert_eq!(nosniff.operations, ["GET /a", "GET /b"]);
        let x = rows.iter().find(|w| w.reason == "x").expect("row x");
        assert_eq!((x.seen, x.operations.len()), (2, 2));
        // Worst first: the medium error rows before the low header row.
        assert_eq!(rows[2].check, Check::MissingNosniff);
        assert_eq!(
            serde_json::to_value(&rows[2]).expect("json")["check"],
            "missing-nosniff"
        );
    }

    #[test]
    fn the_gate_fails_at_its_severity_and_worse() {
        let mut book = PostureBook::default();
        book.note(Spot::new(Check::ErrorDisclosure, "x"), "GET /a", "u", "a");
        let rows = book.into_rows();
        assert!(!fails_gate(&rows, None));
        assert!(fails_gate(&rows, Some("low")) && fails_gate(&rows, Some("medium")));
        assert!(!fails_gate(&rows, Some("high")));
        let options = PostureOptions {
            fail_on: Some("severe".into()),
            ..PostureOptions::default()
        };
        assert!(options
            .check(&[])
            .is_err_and(|(at, m)| at == "fail_on:" && m.contains("high")));
    }

    #[test]
    fn only_the_passive_checks_are_on_by_default() {
        let options: PostureOptions = serde_json::from_str("{}").expect("empty posture");
        assert!(options.passive);
        assert!(!options.cors && !options.routes && !options.transport);
        assert!(options.logout.is_none() && options.role_change.is_none());
        assert!(options.operation_bursts.is_empty() && options.login_burst.is_none());
    }

    #[test]
    fn the_report_schema_lists_every_check() {
        let schema = include_str!("../../reports/schema/report.schema.json");
        for check in Check::ALL {
            assert!(
                schema.contains(&format!("\"{check}\"")),
                "reports/schema/report.schema.json lacks posture check `{check}`"
            );
        }
    }

    #[test]
    fn check_names_are_unique() {
        let names: std::collections::BTreeSet<&str> =
            Check::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), Check::ALL.len());
    }
}
