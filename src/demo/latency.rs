//! The demo portal's latency knob: a lognormal delay per route, sampled per request and
//! slept before the handler runs, so load and accuracy runs have a known truth to hit.
//!
//! A model is given by its median and p95 (what people quote); the lognormal behind it has
//! `mu = ln(median)` and `sigma = ln(p95 / median) / z(0.95)`, with `z(0.95) = 1.6449`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{DemoOptions, ROUTES};

/// The standard normal quantile at 0.95.
const Z95: f64 = 1.644_853_626_951_472_2;

/// The key that applies a model to every route without one of its own.
pub const ALL_ROUTES: &str = "*";

/// A lognormal latency distribution, given by its median and p95 in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LatencyModel {
    pub median_ms: f64,
    pub p95_ms: f64,
}

impl LatencyModel {
    /// A model, or why not: both must be finite, the median positive, `p95 >= median`.
    pub fn new(median_ms: f64, p95_ms: f64) -> Result<Self, String> {
        if !(median_ms.is_finite() && p95_ms.is_finite()) || median_ms <= 0.0 {
            return Err(format!(
                "latency median {median_ms} ms must be a positive number"
            ));
        }
        if p95_ms < median_ms {
            return Err(format!(
                "latency p95 {p95_ms} ms is below the median {median_ms} ms; give MEDIAN:P95 with P95 >= MEDIAN"
            ));
        }
        Ok(LatencyModel { median_ms, p95_ms })
    }

    pub fn mu(&self) -> f64 {
        self.median_ms.ln()
    }

    pub fn sigma(&self) -> f64 {
        (self.p95_ms / self.median_ms).ln() / Z95
    }

    /// The model's exact quantile `q` (0 < q < 1), in milliseconds.
    pub fn true_quantile(&self, q: f64) -> f64 {
        (self.mu() + self.sigma() * normal_quantile(q)).exp()
    }

    /// One delay drawn from the model.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Duration {
        // Box–Muller; `1 - u` keeps the logarithm's argument in (0, 1].
        let u1: f64 = 1.0 - rng.gen::<f64>();
        let u2: f64 = rng.gen::<f64>();
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        let ms = (self.mu() + self.sigma() * z).exp();
        // Clamped so a freak draw cannot stall a test run for minutes.
        Duration::from_secs_f64((ms / 1000.0).min(60.0))
    }

    /// Parses one `--latency` value: `METHOD /path=MEDIAN:P95` (the route as in the spec's
    /// ROUTES) or `*=MEDIAN:P95` for every route.
    pub fn parse_flag(text: &str) -> Result<(String, LatencyModel), String> {
        let hint =
            "write e.g. --latency 'GET /invoices=20:80' or --latency '*=5:20' (median:p95 in ms)";
        let (route, numbers) = text
            .rsplit_once('=')
            .ok_or_else(|| format!("latency `{text}` has no `=`; {hint}"))?;
        let (median, p95) = numbers
            .split_once(':')
            .ok_or_else(|| format!("latency `{text}` has no `MEDIAN:P95`; {hint}"))?;
        let number = |s: &str| {
            s.trim()
                .parse::<f64>()
                .map_err(|_| format!("latency `{text}`: `{s}` is not a number; {hint}"))
        };
        let model = LatencyModel::new(number(median)?, number(p95)?)?;
        let route = route.trim();
        let known = route == ALL_ROUTES
            || ROUTES.iter().any(|(m, p)| {
                route
                    .split_once(' ')
                    .is_some_and(|(rm, rp)| rm.eq_ignore_ascii_case(m) && rp.trim() == *p)
            });
        if !known {
            let routes: Vec<String> = ROUTES.iter().map(|(m, p)| format!("{m} {p}")).collect();
            return Err(format!(
                "latency `{text}` names no route; use `*` or one of: {}",
                routes.join(", ")
            ));
        }
        let route = match route.split_once(' ') {
            Some((m, p)) => format!("{} {}", m.to_ascii_uppercase(), p.trim()),
            None => route.to_string(),
        };
        Ok((route, model))
    }
}

impl fmt::Display for LatencyModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "lognormal median {} ms, p95 {} ms",
            self.median_ms, self.p95_ms
        )
    }
}

/// The standard normal quantile function (Acklam's rational approximation, relative
/// error below 1.2e-9, far under what a latency test can see).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const LOW: f64 = 0.024_25;
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - LOW {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

struct Knob {
    models: BTreeMap<String, LatencyModel>,
    rng: Mutex<StdRng>,
}

impl Knob {
    fn delay_for(&self, route: &str) -> Option<Duration> {
        let model = self
            .models
            .get(route)
            .or_else(|| self.models.get(ALL_ROUTES))?;
        let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
        Some(model.sample(&mut *rng))
    }
}

/// Adds the delay layer to the routes of `router`; without models the router is unchanged
/// (no per-request cost at all).
pub(crate) fn apply<S>(router: Router<S>, options: &DemoOptions) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    if options.latency.is_empty() {
        return router;
    }
    let rng = match options.latency_seed {
        Some(seed) => StdRng::seed_from_u64(seed),
        None => StdRng::from_entropy(),
    };
    let knob = Arc::new(Knob {
        models: options.latency.clone(),
        rng: Mutex::new(rng),
    });
    router.route_layer(axum::middleware::from_fn_with_state(knob, delay))
}

async fn delay(
    State(knob): State<Arc<Knob>>,
    matched: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    let route = format!(
        "{} {}",
        request.method(),
        matched.as_ref().map_or("", |m| m.as_str())
    );
    if let Some(pause) = knob.delay_for(&route) {
        tokio::time::sleep(pause).await;
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_match_the_parameters() {
        let m = LatencyModel::new(20.0, 80.0).expect("valid");
        assert!((m.true_quantile(0.5) - 20.0).abs() < 1e-6);
        assert!((m.true_quantile(0.95) - 80.0).abs() < 1e-6);
        assert!((normal_quantile(0.975) - 1.959_963_985).abs() < 1e-8);
        assert!((normal_quantile(0.001) + 3.090_232_306).abs() < 1e-8);
    }

    #[test]
    fn samples_follow_the_model() {
        let m = LatencyModel::new(10.0, 40.0).expect("valid");
        let mut rng = StdRng::seed_from_u64(7);
        let mut ms: Vec<f64> = (0..40_000)
            .map(|_| m.sample(&mut rng).as_secs_f64() * 1000.0)
            .collect();
        ms.sort_by(f64::total_cmp);
        let p95 = ms[(ms.len() as f64 * 0.95) as usize];
        let p50 = ms[ms.len() / 2];
        assert!((p95 / 40.0 - 1.0).abs() < 0.03, "p95 {p95}");
        assert!((p50 / 10.0 - 1.0).abs() < 0.03, "p50 {p50}");
    }

    #[test]
    fn flags_parse_and_complain() {
        let (route, m) = LatencyModel::parse_flag("get /invoices=20:80").expect("valid");
        assert_eq!(route, "GET /invoices");
        assert_eq!(m, LatencyModel::new(20.0, 80.0).expect("valid"));
        assert_eq!(
            LatencyModel::parse_flag("*=5:20").expect("valid").0,
            ALL_ROUTES
        );
        for bad in [
            "GET /nope=1:2",
            "GET /invoices",
            "GET /invoices=20",
            "*=9:3",
            "*=x:3",
        ] {
            assert!(LatencyModel::parse_flag(bad).is_err(), "{bad}");
        }
    }
}
