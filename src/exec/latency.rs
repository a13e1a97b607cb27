//! Latency histograms: one HdrHistogram per operation, in microseconds.

use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// Highest latency a histogram holds exactly; slower answers are clamped to it.
const MAX_MICROS: u64 = 3_600_000_000;

#[derive(Default)]
pub struct LatencyBook {
    per_operation: Mutex<BTreeMap<String, Histogram<u64>>>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct LatencySummary {
    pub operation: String,
    pub count: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl LatencyBook {
    pub fn record(&self, operation: &str, latency: Duration) {
        let micros = (latency.as_micros() as u64).clamp(1, MAX_MICROS);
        let Ok(mut map) = self.per_operation.lock() else {
            return;
        };
        let histogram = match map.get_mut(operation) {
            Some(h) => h,
            None => {
                let Ok(h) = Histogram::new_with_bounds(1, MAX_MICROS, 3) else {
                    return;
                };
                map.entry(operation.to_string()).or_insert(h)
            }
        };
        // Cannot fail: the value is clamped into the histogram's bounds.
        let _ = histogram.record(micros);
    }

    pub fn summaries(&self) -> Vec<LatencySummary> {
        let Ok(map) = self.per_operation.lock() else {
            return Vec::new();
        };
        map.iter()
            .map(|(operation, h)| LatencySummary {
                operation: operation.clone(),
                count: h.len(),
                p50_ms: ms(h.value_at_quantile(0.50)),
                p95_ms: ms(h.value_at_quantile(0.95)),
                p99_ms: ms(h.value_at_quantile(0.99)),
                max_ms: ms(h.max()),
            })
            .collect()
    }
}

fn ms(micros: u64) -> f64 {
    (micros as f64 / 1000.0 * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_follow_the_recorded_values() {
        let book = LatencyBook::default();
        for ms in 1..=100u64 {
            book.record("GET /x", Duration::from_millis(ms));
        }
        let s = &book.summaries()[0];
        assert_eq!(s.count, 100);
        assert!((s.p50_ms - 50.0).abs() < 0.1, "{s:?}");
        assert!((s.p95_ms - 95.0).abs() < 0.1, "{s:?}");
        assert!((s.max_ms - 100.0).abs() < 0.1, "{s:?}");
    }
}
