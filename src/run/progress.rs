//! How a scan tells its caller how far it got, without drawing anything itself: the
//! probe loop calls a [`Progress`] after each judged probe; the CLI renders it (a bar on
//! a terminal), tests and other callers pass `None` or record the calls.

use crate::plan::Attack;

/// One judged probe, as the loop reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeDone {
    /// Probes judged so far, this one included.
    pub done: usize,
    /// Probes planned (an interrupted run stops short of it).
    pub total: usize,
    /// The attack of the probe just judged.
    pub attack: Attack,
    /// Violations found so far.
    pub violations: usize,
}

/// Watches a scan. Called from the scan's task, so an implementation should return quickly
/// (a throttled redraw, a counter).
pub trait Progress: Send + Sync {
    /// The plan is counted: `total` probes will be sent, unless interrupted.
    fn planned(&self, total: usize);
    /// One more probe is judged.
    fn probe_done(&self, update: ProbeDone);
    /// The probe loop ended (all sent, or interrupted); the canary cleanup and the report
    /// follow.
    fn finished(&self);
}
