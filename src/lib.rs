//! rolegrid: an IDOR and authorization fuzzing engine.
//!
//! It reads an OpenAPI description, a set of identities and a role matrix, sends
//! cross-tenant ID swaps, missing/invalid-token replays and privilege-escalation calls,
//! judges every response against the matrix and the owner's own response, and records
//! latency histograms.
//!
//! The pipeline, in order; each stage knows nothing of the ones after it:
//! 1. [`spec`]: any OpenAPI version → the [`spec::Api`] model;
//! 2. [`engagement`]: target, identities and credentials, scope, safety switches;
//! 3. [`matrix`]: the role matrix checked against both → a [`matrix::Policy`]
//!    ([`inputs`] loads and validates these three once, flag overrides included);
//! 4. [`discover`]: which collections each identity reads, the objects and owners found;
//! 5. [`plan`] (pure): the probes, one file per attack;
//! 6. [`exec`]: HTTP client, sessions and credentials → an [`exchange::Exchange`] per
//!    request;
//! 7. [`judge`] (pure): probe + exchange + baseline → a verdict;
//! 8. [`report`]: the findings → `report.json` / `report.md`.
//!
//! [`run`] wires them into one scan (the probe loop, reporting progress through
//! [`run::Progress`]; [`scan`] keeps its old entry points) and runs the demo scan;
//! [`demo`] is the embedded client portal with planted flaws that the README's main
//! command scans. [`posture`] judges what a security review checks besides the matrix
//! (headers, cookies, leaks, CORS, undocumented routes, transport, opt-in session and
//! rate-limit checks), from the answers the scan gets and a few bounded requests of its own. [`request`], [`exchange`] and [`latency_stats`] are plain data shared
//! by several stages and owned by none; so is [`fault`], the kinds of fault an exchange
//! met (exec records them, the run keeps them from becoming verdicts, report counts them).

/// `Display` for enums that name themselves with `as_str` (an attack, an access level, a
/// method, a posture check): the name the report, the matrix and the terminal print.
macro_rules! display_as_str {
    ($kind:ty) => {
        impl std::fmt::Display for $kind {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub mod discover;
pub mod engagement;
pub mod exec;
pub mod inputs;
pub mod judge;
pub mod matrix;
pub mod plan;
pub mod posture;
pub mod report;
pub mod run;
pub mod scan;
pub mod spec;

pub mod demo;
pub mod exchange;
pub mod fault;
pub mod latency_stats;
pub mod request;

/// The demo scan, at its old path.
pub use run::demo as demo_scan;
