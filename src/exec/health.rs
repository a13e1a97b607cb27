//! Is the target still there? After a run of transport failures the scan asks the
//! identities' positive controls (requests each was seen to be allowed), not a probe:
//! a control that answers 2xx again means the target is back. Also how many answers were
//! cut to `max_body_bytes`.

use super::Executor;
use crate::request::Credential;

impl Executor {
    /// Sends each live identity's positive control once; `Ok(n)` when `n` of them
    /// answered 2xx (at least one), otherwise what the last one got instead.
    pub async fn controls_answer(&self) -> Result<usize, String> {
        let mut answered = 0;
        let mut last = String::from("no identity has a positive control to check");
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
                answered += 1;
            } else {
                last = format!(
                    "{} {} answered {}",
                    control.method,
                    control.path_and_query(),
                    exchange
                        .status
                        .map(|s| s.to_string())
                        .or(exchange.error)
                        .unwrap_or_default()
                );
            }
        }
        if answered > 0 {
            Ok(answered)
        } else {
            Err(last)
        }
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
