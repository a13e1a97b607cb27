//! The exchange: one request sent and what came back (status, headers, body, latency,
//! or the error in its place). Plain data that exec produces and judge, report and the
//! scan read; owned by no stage, so the pure stages need nothing of the executor.

use std::time::Duration;

/// One request and what came back.
#[derive(Debug, Clone, Default)]
pub struct Exchange {
    pub status: Option<u16>,
    pub content_type: Option<String>,
    pub location: Option<String>,
    pub body: Vec<u8>,
    pub truncated: bool,
    pub latency: Duration,
    /// The `Link` header, for pagination.
    pub link: Option<String>,
    /// From a 429/503's Retry-After (seconds form).
    pub retry_after: Option<Duration>,
    /// Connection failure, timeout, or a credential that could not be built.
    pub error: Option<String>,
    /// Response headers for the engagement's header detectors and the posture checks
    /// (`Set-Cookie` with its value withheld: it may carry a session; at most
    /// [`crate::exec::HEADERS_KEPT`]).
    pub headers: Vec<(String, String)>,
    /// Every fault met while getting this answer, in order: attempts retried away, a
    /// session renewed, and last the answer's own fault if it is one (see [`crate::fault`]).
    pub faults: Vec<crate::fault::FaultKind>,
}

impl Exchange {
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    pub fn is_success(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    /// What a detector rule looks at.
    pub fn answer(&self) -> crate::engagement::Answer<'_> {
        crate::engagement::Answer {
            status: self.status,
            headers: &self.headers,
            body: &self.body,
        }
    }
}
