//! rolegrid: an IDOR and authorization fuzzing engine.
//!
//! It reads an OpenAPI description, a set of identities and a role matrix, sends
//! cross-tenant ID swaps, missing/invalid-token replays and privilege-escalation calls,
//! judges every response against the matrix and the owner's own response, and records
//! latency histograms. See `DESIGN` in the README for the pipeline.

pub mod demo;
pub mod spec;
