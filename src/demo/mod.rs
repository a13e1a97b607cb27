//! The embedded demo client portal (axum) with switchable planted flaws: its users, routes,
//! flaw catalogue, options, and the spawn/shutdown handle tests and the CLI use.
//!
//! The portal is a small multi-tenant client portal (invoices, support tickets, files) whose
//! OpenAPI description lives in `specs/demo-portal.yaml`. Authorization flaws are
//! planted in it, each identified by a stable id in [`FLAWS`] and switchable through
//! [`DemoOptions`]; with all of them off ([`DemoOptions::secure`]) a correct scan reports no
//! violations. Some secure behaviours (a 200 HTML denial, a 404 denial, a note filed on a
//! new ticket) are there on purpose to trip naive judges.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use rolegrid::demo::{spawn, DemoOptions};
//! let options = DemoOptions::new(DemoOptions::random_passwords());
//! let demo = spawn(options, "127.0.0.1:0".parse().expect("literal address")).await?;
//! println!("portal at {}", demo.base_url());
//! demo.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod accounts;
mod auth_extra;
mod chaos;
mod data;
mod jwt;
mod latency;
mod posture;
mod server;

pub use auth_extra::{
    DemoService, API_KEY_COOKIE, API_KEY_HEADER, API_KEY_QUERY, AUTH_TOKEN_HEADER, CSRF_COOKIE,
    CSRF_HEADER, SERVICES, WEB_CLIENT,
};
pub use chaos::{ChaosOptions, Fault as ChaosFault};
pub use latency::LatencyModel;
pub use posture::{HTTPS_ONLY_FLAWS, OPT_IN_CHECK_FLAWS, POSTURE_FLAWS};

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rand::distributions::Alphanumeric;
use rand::Rng;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// One planted flaw: a stable id, the operation it lives in (`METHOD /path` as in the spec),
/// the attack kind that should find it, and what goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlawInfo {
    pub id: &'static str,
    pub operation: &'static str,
    pub attack: &'static str,
    pub description: &'static str,
}

/// The planted flaws, in a stable order.
pub const FLAWS: &[FlawInfo] = &[
    FlawInfo {
        id: "invoice-read-bola",
        operation: "GET /invoices/{invoiceId}",
        attack: "id-swap",
        description: "any authenticated caller reads any invoice",
    },
    FlawInfo {
        id: "file-download-bola",
        operation: "GET /files/download",
        attack: "id-swap",
        description: "any authenticated caller downloads any file",
    },
    FlawInfo {
        id: "search-list-leak",
        operation: "GET /search",
        attack: "list-leak",
        description: "search ignores visibility and returns matching records of every tenant",
    },
    FlawInfo {
        id: "admin-users-bfla",
        operation: "GET /admin/users",
        attack: "escalation",
        description: "any authenticated caller (client, staff) gets the full user list",
    },
    FlawInfo {
        id: "export-no-auth",
        operation: "GET /export/invoices.csv",
        attack: "no-auth",
        description: "without any credentials the export answers 200 with every tenant's invoices",
    },
    FlawInfo {
        id: "ticket-write-bola",
        operation: "PATCH /tickets/{ticketId}",
        attack: "id-swap",
        description: "any authenticated caller updates any ticket, and the change is stored",
    },
    FlawInfo {
        id: "ticket-delete-bola",
        operation: "DELETE /tickets/{ticketId}",
        attack: "id-swap",
        description: "any authenticated caller deletes any ticket",
    },
    FlawInfo {
        id: "jwt-unverified",
        operation: "GET /me",
        attack: "bad-auth",
        description: "/me decodes the bearer JWT without checking signature, alg or exp",
    },
    FlawInfo {
        id: "jwt-weak-secret",
        operation: "GET /admin/users",
        attack: "bad-auth",
        description: "tokens are signed with a placeholder HS256 key (`your-256-bit-secret`): \
                      a client re-signs its token claiming the admin's subject",
    },
    FlawInfo {
        id: "tenant-header-swap",
        operation: "GET /reports/summary",
        attack: "tenant-swap",
        description: "`X-Tenant-Id` picks the tenant without being checked against the \
                      caller's: a client reads another tenant's totals",
    },
    // ---- attack families beyond ID swaps (property level, parsing, method routing)
    FlawInfo {
        id: "ticket-mass-assignment",
        operation: "PATCH /tickets/{ticketId}",
        attack: "mass-assignment",
        description: "a ticket update also binds `tenant_id` and `owner_id` from the body: \
                      a client moves its ticket into another tenant",
    },
    FlawInfo {
        id: "file-download-param-pollution",
        operation: "GET /files/download",
        attack: "param-pollution",
        description: "with `file_id` given twice, the first is authorized and the last served",
    },
    FlawInfo {
        id: "role-change-method-override",
        operation: "PUT /admin/users/{userId}/role",
        attack: "method-override",
        description: "POST with `X-HTTP-Method-Override: PUT` reaches the role change \
                      without the admin check, which is wired on the PUT route only",
    },
    FlawInfo {
        id: "body-id-bola",
        operation: "POST /statements",
        attack: "id-swap",
        description: "a statement is rendered for every invoice id in the body, \
                      whoever owns the invoice",
    },
    FlawInfo {
        id: "id-encoding-bypass",
        operation: "GET /invoices/{invoiceId}/receipt",
        attack: "id-swap",
        description: "the receipt guard matches the raw id text (`2001`) while the lookup \
                      parses it, so `02001` passes the guard and loads invoice 2001",
    },
    FlawInfo {
        id: "role-change-verb-swap",
        operation: "PUT /admin/users/{userId}/role",
        attack: "verb-swap",
        description: "an undocumented PATCH on the role route reaches the role change \
                      without the admin check, which is wired on the PUT route only",
    },
    FlawInfo {
        id: "ticket-existence-leak",
        operation: "GET /tickets/{ticketId}",
        attack: "existence-leak",
        description: "another tenant's ticket is answered 403 \"not your ticket\", a missing one \
                      404: anyone can tell which ticket ids exist",
    },
    FlawInfo {
        id: "notes-malformed-500",
        operation: "POST /tickets/{ticketId}/notes",
        attack: "malformed",
        description: "a note whose `text` is not a string answers 500 instead of 422",
    },
    FlawInfo {
        id: "ticket-subject-unvalidated",
        operation: "PATCH /tickets/{ticketId}",
        attack: "malformed",
        description: "a ticket update stores any subject, empty or past the 200 characters \
                      the spec allows, and answers 200",
    },
    // ---- opt-in: these end sessions or wipe data mid-scan (see `OPT_IN_FLAWS`)
    FlawInfo {
        id: "password-reset-bola",
        operation: "PUT /accounts/{accountId}/password",
        attack: "id-swap",
        description: "any authenticated caller resets any user's password, which ends \
                      that user's sessions (opt-in)",
    },
    FlawInfo {
        id: "admin-reset-bfla",
        operation: "POST /admin/reset",
        attack: "escalation",
        description: "staff may reset the whole portal: seed data and passwords restored, \
                      every session ended (opt-in)",
    },
];

/// Flaws that are off unless named (`--flaw ID`): with them on, the scan itself loses
/// identities or data mid-run, so the default demo run stays comparable without them.
pub const OPT_IN_FLAWS: &[&str] = &["password-reset-bola", "admin-reset-bfla"];

impl FlawInfo {
    /// Whether the flaw is on in [`DemoOptions::new`] (every flaw but the opt-in ones).
    pub fn default_on(&self) -> bool {
        !OPT_IN_FLAWS.contains(&self.id)
    }
}

/// A seeded portal user. Ids are fixed so tests and engagement files can name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoUser {
    pub id: u64,
    pub email: &'static str,
    pub name: &'static str,
    pub role: &'static str,
    pub tenant: Option<&'static str>,
}

/// The seeded users: two clients in different tenants, one staff member, one platform admin.
pub const USERS: &[DemoUser] = &[
    DemoUser {
        id: 1,
        email: "alice@acme.test",
        name: "Alice Archer",
        role: "client",
        tenant: Some("acme"),
    },
    DemoUser {
        id: 2,
        email: "bob@globex.test",
        name: "Bob Baker",
        role: "client",
        tenant: Some("globex"),
    },
    DemoUser {
        id: 3,
        email: "carol@acme.test",
        name: "Carol Chen",
        role: "staff",
        tenant: Some("acme"),
    },
    DemoUser {
        id: 4,
        email: "root@portal.test",
        name: "Root Admin",
        role: "admin",
        tenant: None,
    },
];

/// Every route as `(METHOD, path template)`, spelled exactly as in `specs/demo-portal.yaml`.
/// The router is built from this table, so the two cannot drift apart unnoticed.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/auth/login"),
    ("GET", "/me"),
    ("GET", "/invoices"),
    ("GET", "/invoices/{invoiceId}"),
    ("GET", "/invoices/{invoiceId}/receipt"),
    ("POST", "/statements"),
    ("GET", "/tickets"),
    ("POST", "/tickets"),
    ("GET", "/tickets/{ticketId}"),
    ("PATCH", "/tickets/{ticketId}"),
    ("DELETE", "/tickets/{ticketId}"),
    ("POST", "/tickets/{ticketId}/notes"),
    ("GET", "/files"),
    ("GET", "/files/download"),
    ("GET", "/search"),
    ("GET", "/export/invoices.csv"),
    ("GET", "/reports/summary"),
    ("GET", "/admin/users"),
    ("POST", "/admin/users"),
    ("GET", "/admin/users/{userId}"),
    ("DELETE", "/admin/users/{userId}"),
    ("PUT", "/admin/users/{userId}/role"),
    ("POST", "/auth/session"),
    ("POST", "/auth/refresh"),
    ("POST", "/auth/logout"),
    ("POST", "/oauth/token"),
    ("GET", "/accounts"),
    ("GET", "/accounts/{accountId}"),
    ("PUT", "/accounts/{accountId}/password"),
    ("POST", "/me/password"),
    ("GET", "/admin/reset"),
    ("POST", "/admin/reset"),
];

/// How to run the portal: which flaws are planted, who can log in, how long tokens live.
#[derive(Clone)]
pub struct DemoOptions {
    pub enabled_flaws: BTreeSet<String>,
    /// email (or service client id, see [`SERVICES`]) → password; principals missing
    /// here cannot sign in. A service's password is its API key and OAuth2 client secret.
    pub passwords: BTreeMap<String, String>,
    pub token_ttl: Duration,
    /// `METHOD /path` as in [`ROUTES`] (or `*`) → delay slept before the handler runs.
    pub latency: BTreeMap<String, LatencyModel>,
    /// Seeds the delay sampler, for reproducible runs; `None` draws a fresh seed.
    pub latency_seed: Option<u64>,
    /// Faults injected in front of the portal (`demo --chaos`); `None`: none.
    pub chaos: Option<ChaosOptions>,
}

// Written by hand so passwords never reach a log line or a panic message.
impl fmt::Debug for DemoOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DemoOptions")
            .field("enabled_flaws", &self.enabled_flaws)
            .field("passwords", &format_args!("(redacted)"))
            .field("token_ttl", &self.token_ttl)
            .field("latency", &self.latency)
            .field("chaos", &self.chaos)
            .finish()
    }
}

/// A flaw id that is not in [`FLAWS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownFlaw(pub String);

impl fmt::Display for UnknownFlaw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let valid: Vec<&str> = FLAWS
            .iter()
            .chain(POSTURE_FLAWS)
            .map(|flaw| flaw.id)
            .collect();
        write!(
            f,
            "unknown demo flaw `{}`; valid ids are: {}",
            self.0,
            valid.join(", ")
        )
    }
}

impl std::error::Error for UnknownFlaw {}

impl DemoOptions {
    /// Every flaw but the opt-in ones enabled (the posture flaws too), tokens valid for
    /// an hour.
    pub fn new(passwords: BTreeMap<String, String>) -> Self {
        DemoOptions {
            enabled_flaws: FLAWS
                .iter()
                .filter(|flaw| flaw.default_on())
                .chain(POSTURE_FLAWS)
                .map(|flaw| flaw.id.to_string())
                .collect(),
            passwords,
            token_ttl: Duration::from_secs(3600),
            latency: BTreeMap::new(),
            latency_seed: None,
            chaos: None,
        }
    }

    /// Turns every flaw off: the portal then enforces its visibility rules everywhere.
    pub fn secure(mut self) -> Self {
        self.enabled_flaws.clear();
        self
    }

    /// Switches one flaw on or off by id.
    pub fn flaw(mut self, id: &str, on: bool) -> Result<Self, UnknownFlaw> {
        if !FLAWS.iter().chain(POSTURE_FLAWS).any(|flaw| flaw.id == id) {
            return Err(UnknownFlaw(id.to_string()));
        }
        if on {
            self.enabled_flaws.insert(id.to_string());
        } else {
            self.enabled_flaws.remove(id);
        }
        Ok(self)
    }

    /// A fresh random 24-character alphanumeric password for every seeded user and service.
    pub fn random_passwords() -> BTreeMap<String, String> {
        let mut rng = rand::thread_rng();
        USERS
            .iter()
            .map(|user| user.email)
            .chain(SERVICES.iter().map(|service| service.client_id))
            .map(|principal| {
                let password: String = (&mut rng)
                    .sample_iter(&Alphanumeric)
                    .take(24)
                    .map(char::from)
                    .collect();
                (principal.to_string(), password)
            })
            .collect()
    }

    pub(crate) fn has(&self, id: &str) -> bool {
        self.enabled_flaws.contains(id)
    }
}

/// A portal serving in a tokio task. Dropping the handle without calling
/// [`RunningDemo::shutdown`] also stops the server (gracefully, in the background).
pub struct RunningDemo {
    pub addr: SocketAddr,
    state: Arc<server::AppState>,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl fmt::Debug for RunningDemo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningDemo")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl RunningDemo {
    /// `http://IP:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The portal's tickets as they are stored now (JSON, in store order): lets tests see
    /// what a scan left behind without going through the API.
    pub fn tickets_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.state.store().tickets).unwrap_or_default()
    }

    /// The portal's users as they are stored now (JSON, in store order).
    pub fn users_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.state.store().users).unwrap_or_default()
    }

    /// The faults the chaos layer injected so far, by kind (the report's names); empty
    /// without `chaos`.
    pub fn chaos_injected(&self) -> BTreeMap<&'static str, u64> {
        self.state
            .chaos
            .as_ref()
            .map(|c| c.injected())
            .unwrap_or_default()
    }

    /// Stops accepting connections, lets in-flight requests finish (at most 5 s), and waits
    /// for the server task.
    pub async fn shutdown(self) {
        // The receiver is gone only if the server already stopped; nothing left to do then.
        let _ = self.shutdown.send(());
        let mut task = self.task;
        if tokio::time::timeout(Duration::from_secs(5), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}

/// Binds `bind` (port 0 picks a free port) and serves the portal in a tokio task.
pub async fn spawn(options: DemoOptions, bind: SocketAddr) -> std::io::Result<RunningDemo> {
    serve(options, tokio::net::TcpListener::bind(bind).await?).await
}

/// Serves the portal on `listener` in a tokio task: a TCP listener, or one that wraps it
/// in TLS (the https tests).
pub async fn serve<L>(options: DemoOptions, listener: L) -> std::io::Result<RunningDemo>
where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    let addr = listener.local_addr()?;
    let state = Arc::new(server::AppState::new(options));
    let app = server::router(state.clone());
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                // Either an explicit shutdown or a dropped handle ends the server.
                let _ = rx.await;
            })
            .await
    });
    Ok(RunningDemo {
        addr,
        state,
        shutdown: tx,
        task,
    })
}

/// The flaw catalogue with each flaw's state under `options`, as a JSON array of
/// `{id, operation, attack, enabled, default_on, description}`; the posture flaws follow,
/// with `"kind": "posture"` and their posture check as `attack`.
pub fn flaws_json(options: &DemoOptions) -> serde_json::Value {
    let row = |flaw: &FlawInfo| {
        serde_json::json!({
            "id": flaw.id,
            "operation": flaw.operation,
            "attack": flaw.attack,
            "enabled": options.has(flaw.id),
            "default_on": flaw.default_on(),
            "description": flaw.description,
        })
    };
    FLAWS
        .iter()
        .map(row)
        .chain(POSTURE_FLAWS.iter().map(|flaw| {
            let mut r = row(flaw);
            r["kind"] = "posture".into();
            r
        }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_switch_flaws_and_redact() {
        let options = DemoOptions::new(DemoOptions::random_passwords());
        assert_eq!(
            options.enabled_flaws.len(),
            FLAWS.len() - OPT_IN_FLAWS.len() + POSTURE_FLAWS.len()
        );
        assert!(OPT_IN_FLAWS
            .iter()
            .all(|id| FLAWS.iter().any(|f| f.id == *id) && !options.has(id)));
        let secret = options.passwords["alice@acme.test"].clone();
        assert_eq!(secret.len(), 24);
        assert!(!format!("{options:?}").contains(&secret));
        assert!(format!("{options:?}").contains("(redacted)"));

        let options = options.secure();
        assert!(options.enabled_flaws.is_empty());
        let options = options.flaw("search-list-leak", true);
        assert!(matches!(&options, Ok(o) if o.has("search-list-leak")));

        let err = DemoOptions::new(BTreeMap::new()).flaw("nope", true).err();
        let message = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("nope") && message.contains("jwt-unverified"));
    }

    #[test]
    fn flaw_operations_are_routes() {
        for flaw in FLAWS {
            assert!(
                ROUTES
                    .iter()
                    .any(|(m, p)| format!("{m} {p}") == flaw.operation),
                "{} names an unknown operation",
                flaw.id
            );
        }
    }
}
