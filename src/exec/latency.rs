//! Latency histograms (HdrHistogram, microseconds): one per operation, one per operation
//! × identity, and each split into allowed (2xx) and denied (any other answer), so the
//! p95 of the calls users really make is not diluted by fast refusals.

use crate::latency_stats::Percentiles;
use base64::Engine;
use hdrhistogram::serialization::{Serializer, V2Serializer};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// Highest latency a histogram holds exactly; slower answers are clamped to it.
const MAX_MICROS: u64 = 3_600_000_000;

/// Whether the answer granted the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    Allowed,
    Denied,
}

/// One histogram for all answers, one for allowed and one for denied.
struct Split {
    all: Histogram<u64>,
    allowed: Histogram<u64>,
    denied: Histogram<u64>,
}

impl Split {
    fn new() -> Option<Split> {
        let h = || Histogram::new_with_bounds(1, MAX_MICROS, 3).ok();
        Some(Split {
            all: h()?,
            allowed: h()?,
            denied: h()?,
        })
    }

    fn record(&mut self, micros: u64, outcome: Option<Outcome>) {
        // Cannot fail: the value is clamped into the histograms' bounds.
        let _ = self.all.record(micros);
        let _ = match outcome {
            Some(Outcome::Allowed) => self.allowed.record(micros),
            Some(Outcome::Denied) => self.denied.record(micros),
            None => Ok(()),
        };
    }

    fn parts(&self) -> [(&'static str, &Histogram<u64>); 3] {
        [
            ("all", &self.all),
            ("allowed", &self.allowed),
            ("denied", &self.denied),
        ]
    }
}

/// An operation's histograms, overall and per identity. Looked up by `&str` on every
/// request, so recording allocates only the first time an operation or identity is seen.
struct OperationBook {
    overall: Split,
    by_identity: BTreeMap<String, Split>,
}

#[derive(Default)]
pub struct LatencyBook {
    operations: Mutex<BTreeMap<String, OperationBook>>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct LatencySummary {
    pub operation: String,
    #[serde(flatten)]
    pub percentiles: Percentiles,
}

/// One histogram's figures and its exact encoding, for reports and merging.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HistogramSummary {
    pub operation: String,
    /// The identity, or `*` for all identities together.
    pub identity: String,
    /// `allowed`, `denied` or `all`.
    pub outcome: &'static str,
    #[serde(flatten)]
    pub percentiles: Percentiles,
    /// HdrHistogram V2 encoding (microseconds), base64: merge shards with
    /// `Histogram::add` after decoding.
    pub hdr_v2_base64: String,
}

impl LatencyBook {
    /// Records a sample for the operation as a whole.
    pub fn record(&self, operation: &str, latency: Duration) {
        self.record_for(operation, None, None, latency);
    }

    /// Records a sample for the operation, and for `identity` × `outcome` when given.
    pub fn record_for(
        &self,
        operation: &str,
        identity: Option<&str>,
        outcome: Option<Outcome>,
        latency: Duration,
    ) {
        let micros = (latency.as_micros() as u64).clamp(1, MAX_MICROS);
        let Ok(mut map) = self.operations.lock() else {
            return;
        };
        if !map.contains_key(operation) {
            let Some(overall) = Split::new() else { return };
            map.insert(
                operation.to_string(),
                OperationBook {
                    overall,
                    by_identity: BTreeMap::new(),
                },
            );
        }
        let Some(book) = map.get_mut(operation) else {
            return;
        };
        book.overall.record(micros, outcome);
        if let Some(identity) = identity {
            if !book.by_identity.contains_key(identity) {
                let Some(split) = Split::new() else { return };
                book.by_identity.insert(identity.to_string(), split);
            }
            if let Some(split) = book.by_identity.get_mut(identity) {
                split.record(micros, outcome);
            }
        }
    }

    /// Per operation, all identities and outcomes together.
    pub fn summaries(&self) -> Vec<LatencySummary> {
        let Ok(map) = self.operations.lock() else {
            return Vec::new();
        };
        map.iter()
            .map(|(operation, book)| {
                let h = &book.overall.all;
                LatencySummary {
                    operation: operation.clone(),
                    percentiles: Percentiles::of(h).rounded(),
                }
            })
            .collect()
    }

    /// Every non-empty histogram: per operation and per operation × identity, each for
    /// all answers and for allowed and denied apart.
    pub fn histograms(&self) -> Vec<HistogramSummary> {
        let Ok(map) = self.operations.lock() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (operation, book) in map.iter() {
            let splits = std::iter::once(("*", &book.overall)).chain(
                book.by_identity
                    .iter()
                    .map(|(name, split)| (name.as_str(), split)),
            );
            for (identity, split) in splits {
                for (outcome, h) in split.parts() {
                    if h.is_empty() && outcome != "all" {
                        continue;
                    }
                    let mut bytes = Vec::new();
                    let encoded = match V2Serializer::new().serialize(h, &mut bytes) {
                        Ok(_) => base64::engine::general_purpose::STANDARD.encode(&bytes),
                        Err(_) => String::new(),
                    };
                    out.push(HistogramSummary {
                        operation: operation.clone(),
                        identity: identity.to_string(),
                        outcome,
                        percentiles: Percentiles::of(h).rounded(),
                        hdr_v2_base64: encoded,
                    });
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::serialization::Deserializer;

    #[test]
    fn percentiles_follow_the_recorded_values() {
        let book = LatencyBook::default();
        for ms in 1..=100u64 {
            book.record("GET /x", Duration::from_millis(ms));
        }
        let s = &book.summaries()[0];
        assert_eq!(s.percentiles.count, 100);
        assert!((s.percentiles.p50_ms - 50.0).abs() < 0.1, "{s:?}");
        assert!((s.percentiles.p95_ms - 95.0).abs() < 0.1, "{s:?}");
        assert!((s.percentiles.max_ms - 100.0).abs() < 0.1, "{s:?}");
    }

    #[test]
    fn splits_by_identity_and_outcome_and_round_trips() {
        let book = LatencyBook::default();
        book.record_for(
            "GET /x",
            Some("alice"),
            Some(Outcome::Allowed),
            Duration::from_millis(100),
        );
        book.record_for(
            "GET /x",
            Some("bob"),
            Some(Outcome::Denied),
            Duration::from_millis(2),
        );
        let all = book.histograms();
        let find = |identity: &str, outcome: &str| {
            all.iter()
                .find(|h| h.identity == identity && h.outcome == outcome)
                .unwrap_or_else(|| panic!("{identity} {outcome} missing in {all:?}"))
        };
        assert_eq!(find("*", "all").percentiles.count, 2);
        assert_eq!(find("*", "allowed").percentiles.count, 1);
        assert!((find("alice", "allowed").percentiles.p95_ms - 100.0).abs() < 0.2);
        assert_eq!(find("bob", "denied").percentiles.count, 1);
        assert_eq!(book.summaries().len(), 1);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&find("*", "all").hdr_v2_base64)
            .expect("base64");
        let h: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .expect("V2");
        assert_eq!(h.len(), 2);
    }
}
