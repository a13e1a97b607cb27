//! Is the target still there? After a run of transport failures the scan asks the
//! identities' positive controls (requests each was seen to be allowed), not a probe:
//! a control that answers 2xx again means the target is back. Also how many answers were
//! cut to `max_body_bytes`.

use super::Executor;
use crate::request::Credential;

impl Executor {
    /// Sends the live identities' positive controls, one after another, until one
    /// answers 2xx: whether the target is there. The watchdog needs only that, so no
    /// control is sent after the first that answers.
    pub async fn any_control_answers(&self) -> bool {
        for (identity, session) in self.sessions.iter().enumerate() {
            if session.dead_reason().is_some() {
                continue;
            }
            let Some(control) = session.control.read().ok().and_then(|c| c.clone()) else {
                continue;
            };
            let exchange = self
                .send_attempts(&control, identity, Credential::Normal, "(target check)")
                .await;
            if exchange.is_success() {
                return true;
            }
        }
        false
    }
}

impl Executor {
    /// Answers cut to the engagement's `max_body_bytes`, and that cap.
    pub fn truncated_bodies(&self) -> (usize, usize) {
        (
            self.truncated.load(std::sync::atomic::Ordering::Relaxed),
            self.body_cap,
        )
    }
}
