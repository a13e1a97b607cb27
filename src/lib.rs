//! rolegrid: an IDOR and authorization fuzzing engine.
//!
//! It reads an OpenAPI description, a set of identities and a role matrix, sends
//! cross-tenant ID swaps, missing/invalid-token replays and privilege-escalation calls,
//! judges every response against the matrix and the owner's own response, and records
//! latency histograms.
//!
//! The stages, each a module that knows nothing of the ones after it:
//! [`spec`] → [`engagement`] → [`matrix`] → [`discover`] → [`plan`] → [`exec`] →
//! [`judge`] → [`report`]; [`run`] wires them together ([`scan`] keeps its entry points), [`demo`] is the embedded
//! client portal with planted flaws that the README's main command scans.
//! [`posture`] judges what a security review checks besides the matrix (headers, cookies,
//! leaks, CORS, undocumented routes, transport, opt-in session and rate-limit checks).
//! [`exchange`] and [`latency_stats`] are plain data that exec hands on to judge, report
//! and the CLI, owned by no stage.

pub mod demo;
pub mod discover;
pub mod engagement;
pub mod exchange;
pub mod exec;
pub mod inputs;
pub mod judge;
pub mod latency_stats;
pub mod matrix;
pub mod plan;
pub mod posture;
pub mod report;
pub mod request;
pub mod run;
pub mod scan;

/// The demo scan, at its old path.
pub use run::demo as demo_scan;
pub mod spec;
