//! A target that dies mid-scan: after [`FAILURES_BEFORE_CHECK`] consecutive transport
//! failures (no HTTP answer at all) the probe loop pauses and re-checks the identities'
//! positive controls a few times, with growing waits. If one answers, the scan resumes;
//! if none does, the scan stops and writes a partial report (`stopped.reason:
//! target-down`, the time of the first failure of that run) instead of turning every
//! remaining probe into `inconclusive` one by one.

use crate::exec::{Exchange, Executor};
use std::time::Duration;

/// Consecutive probes without any HTTP answer before the target is checked.
pub(super) const FAILURES_BEFORE_CHECK: usize = 8;

/// Waits before each re-check of the controls: about 7 s in all, plus the requests'
/// own timeouts.
const CHECK_WAITS: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];

#[derive(Default)]
pub(super) struct Watchdog {
    consecutive: usize,
    /// Seconds since the Unix epoch of the first failure of the current run of them.
    first_failure_unix: u64,
    /// Times the target stopped answering and came back.
    pub recovered: usize,
}

impl Watchdog {
    /// Counts `exchange`; after too many failures in a row, checks the target. Returns
    /// when the first failure happened if the target is gone for good.
    pub async fn observe(&mut self, exchange: &Exchange, executor: &Executor) -> Option<u64> {
        if exchange.status.is_some() || exchange.error.is_none() {
            self.consecutive = 0;
            return None;
        }
        if self.consecutive == 0 {
            self.first_failure_unix = crate::exec::unix_now();
        }
        self.consecutive += 1;
        if self.consecutive < FAILURES_BEFORE_CHECK {
            return None;
        }
        for wait in CHECK_WAITS {
            tokio::time::sleep(wait).await;
            if executor.any_control_answers().await {
                self.consecutive = 0;
                self.recovered += 1;
                return None;
            }
        }
        Some(self.first_failure_unix)
    }
}
