//! Latency figures: the sample count and the p50/p95/p99/max (ms) that sum up one
//! HdrHistogram of microseconds, computed in one place. Used by exec's histograms, the
//! latency command and the report model; it depends on no stage.

use hdrhistogram::Histogram;

/// A histogram's sample count and usual quantiles, in milliseconds. Owners serialise it
/// flattened (`count`, `p50_ms`, `p95_ms`, `p99_ms`, `max_ms` among their own fields).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    /// The figures of a histogram of microseconds, exact to the microsecond.
    pub fn of(histogram: &Histogram<u64>) -> Percentiles {
        let ms = |micros: u64| micros as f64 / 1000.0;
        Percentiles {
            count: histogram.len(),
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p95_ms: ms(histogram.value_at_quantile(0.95)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            max_ms: ms(histogram.max()),
        }
    }

    /// The same figures rounded to 0.01 ms, as the scan report shows them.
    pub fn rounded(self) -> Percentiles {
        let round = |ms: f64| (ms * 100.0).round() / 100.0;
        Percentiles {
            p50_ms: round(self.p50_ms),
            p95_ms: round(self.p95_ms),
            p99_ms: round(self.p99_ms),
            max_ms: round(self.max_ms),
            ..self
        }
    }
}
