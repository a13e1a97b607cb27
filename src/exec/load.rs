//! Load mode: replays a list of requests round-robin through one [`Executor`], bounded in
//! count and time, either closed-loop (C workers, each sends when its last answer is in) or
//! at a fixed rate with coordinated-omission correction (each request has an intended send
//! time on the schedule and its latency counts from there, as wrk2 does). Latency goes into
//! one HdrHistogram per operation × identity; the report carries each histogram encoded
//! (V2 + base64) so shard reports merge exactly.

use super::Executor;
use crate::discover;
use crate::engagement::{Engagement, Identity, Redactor};
use crate::latency_stats::Percentiles;
use crate::matrix::{Access, Policy};
use crate::request::{build_request, Credential, RequestSpec};
use crate::spec::{Api, Method, ParamLocation};
use base64::Engine;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

/// Version of the `latency.json` shape.
pub const SCHEMA_VERSION: u32 = 1;

/// Highest latency a histogram holds (an hour, as the scan's book); slower is clamped.
const MAX_MICROS: u64 = 3_600_000_000;
const SIGNIFICANT_DIGITS: u8 = 3;

/// Hard limits on the options, so a typo cannot start an endless or absurd run (the
/// concurrency cap is the engagement's: one check for the file, the flags and this).
pub const MAX_DURATION: Duration = Duration::from_secs(3600);
pub const MAX_RATE: f64 = 1_000_000.0;

/// One request to replay, as `identity` (an index into the identities the executor
/// logged in), recorded under `operation` (`METHOD /path/{template}`).
#[derive(Debug, Clone)]
pub struct LoadTarget {
    pub request: RequestSpec,
    pub identity: usize,
    pub identity_name: String,
    pub operation: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LoadOptions {
    /// No more than this many requests are started.
    pub max_requests: u64,
    /// No request starts after this, and requests still in flight then are cancelled.
    pub max_duration: Duration,
    /// Workers (closed loop) or the most requests in flight (fixed rate).
    pub concurrency: usize,
    /// `None`: closed loop. `Some(r)`: request `i` is due at `start + i / r`.
    pub rate: Option<f64>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            max_requests: 1000,
            max_duration: Duration::from_secs(30),
            concurrency: 8,
            rate: None,
        }
    }
}

impl LoadOptions {
    /// Every problem with the options, one message each.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.max_requests == 0 {
            out.push("--requests must be at least 1".to_string());
        }
        if self.max_duration.is_zero() || self.max_duration > MAX_DURATION {
            out.push(format!(
                "--duration-secs must be above 0 and at most {}",
                MAX_DURATION.as_secs()
            ));
        }
        if let Err(m) = crate::engagement::check_concurrency(self.concurrency) {
            out.push(format!("--concurrency: {m}"));
        }
        if let Some(rate) = self.rate {
            if !(rate.is_finite() && rate > 0.0 && rate <= MAX_RATE) {
                out.push(format!(
                    "--rate must be a number of requests per second above 0 and at most {MAX_RATE}"
                ));
            }
        }
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoadMode {
    ClosedLoop,
    FixedRate,
}

/// What ended the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StopReason {
    /// All `max_requests` were sent.
    Requests,
    /// `max_duration` passed first.
    Duration,
    /// There was nothing to send.
    NoTargets,
}

/// An HdrHistogram (µs) that serialises as base64 of its V2 encoding.
#[derive(Debug, Clone)]
pub struct EncodedHistogram(pub Histogram<u64>);

impl EncodedHistogram {
    pub fn empty() -> Self {
        EncodedHistogram(new_histogram())
    }

    pub fn encode(&self) -> Result<String, String> {
        let mut bytes = Vec::new();
        hdrhistogram::serialization::Serializer::serialize(
            &mut hdrhistogram::serialization::V2Serializer::new(),
            &self.0,
            &mut bytes,
        )
        .map_err(|e| format!("cannot encode a histogram: {e:?}"))?;
        Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn decode(text: &str) -> Result<Self, String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| format!("histogram is not base64: {e}"))?;
        let histogram: Histogram<u64> = hdrhistogram::serialization::Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| format!("histogram is not a V2 HdrHistogram: {e:?}"))?;
        Ok(EncodedHistogram(histogram))
    }
}

impl serde::Serialize for EncodedHistogram {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.encode().map_err(serde::ser::Error::custom)?)
    }
}

impl<'de> serde::Deserialize<'de> for EncodedHistogram {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        EncodedHistogram::decode(&text).map_err(serde::de::Error::custom)
    }
}

fn new_histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts; a failure is a bug in this file.
    Histogram::new_with_bounds(1, MAX_MICROS, SIGNIFICANT_DIGITS)
        .expect("constant histogram bounds are valid")
}

/// A latency distribution: the usual quantiles (ms) and the exact histogram (µs).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Distribution {
    #[serde(flatten)]
    pub percentiles: Percentiles,
    pub histogram: EncodedHistogram,
}

impl Distribution {
    pub fn from_histogram(histogram: Histogram<u64>) -> Self {
        Distribution {
            percentiles: Percentiles::of(&histogram),
            histogram: EncodedHistogram(histogram),
        }
    }

    /// Adds `other`'s samples (exactly: histograms of the same layout add bucket by bucket).
    pub fn merge(&mut self, other: &Distribution) {
        let mut h = self.histogram.0.clone();
        // Same bounds on both sides (both made here, or decoded from our own reports).
        let _ = h.add(&other.histogram.0);
        *self = Distribution::from_histogram(h);
    }

    /// Any quantile, in ms.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        self.histogram.0.value_at_quantile(q) as f64 / 1000.0
    }
}

/// One operation × identity.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LoadCell {
    pub operation: String,
    pub identity: String,
    /// Requests started.
    pub requests: u64,
    /// Connection failures and timeouts (no latency sample).
    pub errors: u64,
    /// In flight when the time bound hit (no latency sample).
    pub cancelled: u64,
    /// Answers by HTTP status.
    pub statuses: BTreeMap<u16, u64>,
    /// Closed loop: the request's round trip. Fixed rate: from the intended send time (when
    /// the engine was behind schedule) to the end of the answer: what a user would see.
    pub latency: Distribution,
    /// Fixed rate only: the round trip from the actual send (no correction), for comparison.
    pub service_time: Option<Distribution>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LoadReport {
    pub schema_version: u32,
    pub mode: LoadMode,
    pub rate_per_second: Option<f64>,
    pub concurrency: usize,
    pub max_requests: u64,
    pub max_duration_secs: f64,
    pub stopped_by: StopReason,
    pub requests: u64,
    /// Requests that got an answer (any status).
    pub completed: u64,
    pub errors: u64,
    pub cancelled: u64,
    pub elapsed_secs: f64,
    /// Completed requests per second of the run.
    pub throughput: f64,
    /// Fixed rate only: the furthest a request started behind its intended time (ms).
    pub max_schedule_lag_ms: Option<f64>,
    pub cells: Vec<LoadCell>,
}

impl LoadReport {
    /// One distribution per operation, identities merged, sorted by operation.
    pub fn per_operation(&self) -> Vec<(String, Distribution)> {
        let mut out: BTreeMap<String, Distribution> = BTreeMap::new();
        for cell in &self.cells {
            match out.get_mut(&cell.operation) {
                Some(d) => d.merge(&cell.latency),
                None => {
                    out.insert(cell.operation.clone(), cell.latency.clone());
                }
            }
        }
        out.into_iter().collect()
    }

    /// Operations whose p95 is above `target_ms`, with that p95.
    pub fn over_target(&self, target_ms: f64) -> Vec<(String, f64)> {
        self.per_operation()
            .into_iter()
            .filter(|(_, d)| d.percentiles.count > 0 && d.percentiles.p95_ms > target_ms)
            .map(|(op, d)| (op, d.percentiles.p95_ms))
            .collect()
    }

    /// Joins a report of another shard of the same run: counts and histograms add exactly;
    /// the shards are taken to have run side by side (elapsed is the longer one).
    pub fn merge(&mut self, other: &LoadReport) {
        self.requests += other.requests;
        self.completed += other.completed;
        self.errors += other.errors;
        self.cancelled += other.cancelled;
        self.elapsed_secs = self.elapsed_secs.max(other.elapsed_secs);
        self.throughput = rate(self.completed, self.elapsed_secs);
        self.max_schedule_lag_ms = match (self.max_schedule_lag_ms, other.max_schedule_lag_ms) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        for theirs in &other.cells {
            let mine = self
                .cells
                .iter_mut()
                .find(|c| c.operation == theirs.operation && c.identity == theirs.identity);
            let Some(mine) = mine else {
                self.cells.push(theirs.clone());
                continue;
            };
            mine.requests += theirs.requests;
            mine.errors += theirs.errors;
            mine.cancelled += theirs.cancelled;
            for (status, n) in &theirs.statuses {
                *mine.statuses.entry(*status).or_default() += n;
            }
            mine.latency.merge(&theirs.latency);
            match (&mut mine.service_time, &theirs.service_time) {
                (Some(a), Some(b)) => a.merge(b),
                (None, Some(b)) => mine.service_time = Some(b.clone()),
                _ => {}
            }
        }
        self.cells
            .sort_by(|a, b| (&a.operation, &a.identity).cmp(&(&b.operation, &b.identity)));
    }
}

fn rate(count: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        count as f64 / secs
    } else {
        0.0
    }
}

fn micros(d: Duration) -> u64 {
    (d.as_micros() as u64).clamp(1, MAX_MICROS)
}

/// What one cell gathers while the run goes.
struct Acc {
    requests: u64,
    errors: u64,
    cancelled: u64,
    statuses: BTreeMap<u16, u64>,
    latency: Histogram<u64>,
    service: Option<Histogram<u64>>,
}

struct Run<'a> {
    executor: &'a Executor,
    targets: &'a [LoadTarget],
    /// Target index → cell index.
    cell_of: Vec<usize>,
    cells: Vec<Mutex<Acc>>,
    options: &'a LoadOptions,
    started: Instant,
    deadline: Instant,
    next: AtomicU64,
    max_lag_micros: AtomicU64,
}

impl Run<'_> {
    async fn worker(&self) {
        let len = self.targets.len() as u64;
        // One timer per worker, not one per request: the time bound costs nothing per send.
        let time_up = tokio::time::sleep_until(self.deadline);
        tokio::pin!(time_up);
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= self.options.max_requests {
                return;
            }
            let now = Instant::now();
            if now >= self.deadline {
                return;
            }
            // Where latency counts from. Fixed rate: the intended time when the engine is
            // behind schedule (the wait is what a user would have seen: the coordinated-
            // omission correction); when it is ahead, it sleeps until then and counts from
            // its actual wake-up, so the timer's own lateness is not charged to the server.
            let start = match self.options.rate {
                None => now,
                Some(rate) => {
                    let intended = self.started + Duration::from_secs_f64(i as f64 / rate);
                    if intended >= self.deadline {
                        return;
                    }
                    if intended > now {
                        tokio::time::sleep_until(intended).await;
                        Instant::now()
                    } else {
                        self.max_lag_micros
                            .fetch_max(micros(now - intended), Ordering::Relaxed);
                        intended
                    }
                }
            };
            let index = (i % len) as usize;
            let target = &self.targets[index];
            let send = self.executor.send(
                &target.request,
                target.identity,
                Credential::Normal,
                &target.operation,
            );
            let outcome = tokio::select! {
                biased;
                exchange = send => Some(exchange),
                () = &mut time_up => None,
            };
            let done = Instant::now();
            let mut acc = self.cells[self.cell_of[index]]
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            acc.requests += 1;
            let exchange = match outcome {
                Some(exchange) => exchange,
                None => {
                    acc.cancelled += 1;
                    return;
                }
            };
            if exchange.error.is_some() {
                acc.errors += 1;
                continue;
            }
            if let Some(status) = exchange.status {
                *acc.statuses.entry(status).or_default() += 1;
            }
            // Cannot fail: values are clamped into the histograms' bounds.
            match &mut acc.service {
                None => {
                    let _ = acc.latency.record(micros(exchange.latency));
                }
                Some(service) => {
                    let _ = service.record(micros(exchange.latency));
                    let _ = acc.latency.record(micros(done - start));
                }
            }
        }
    }
}

/// Replays `targets` round-robin (request `i` is `targets[i % len]`) as `options` say.
/// The executor must have logged in the identities the targets name.
pub async fn run_load(
    executor: &Executor,
    targets: &[LoadTarget],
    options: &LoadOptions,
) -> LoadReport {
    let mode = match options.rate {
        Some(_) => LoadMode::FixedRate,
        None => LoadMode::ClosedLoop,
    };
    let mut keys: Vec<(String, String)> = Vec::new();
    let mut cell_of = Vec::with_capacity(targets.len());
    for t in targets {
        let key = (t.operation.clone(), t.identity_name.clone());
        let at = keys.iter().position(|k| *k == key).unwrap_or_else(|| {
            keys.push(key);
            keys.len() - 1
        });
        cell_of.push(at);
    }
    let cells = keys
        .iter()
        .map(|_| {
            Mutex::new(Acc {
                requests: 0,
                errors: 0,
                cancelled: 0,
                statuses: BTreeMap::new(),
                latency: new_histogram(),
                service: options.rate.map(|_| new_histogram()),
            })
        })
        .collect();
    let started = Instant::now();
    let run = Run {
        executor,
        targets,
        cell_of,
        cells,
        options,
        started,
        deadline: started + options.max_duration,
        next: AtomicU64::new(0),
        max_lag_micros: AtomicU64::new(0),
    };
    if !targets.is_empty() {
        let workers = (0..options.concurrency.max(1)).map(|_| run.worker());
        futures_util::future::join_all(workers).await;
    }
    let elapsed = started.elapsed();

    let mut cells: Vec<LoadCell> = keys
        .into_iter()
        .zip(run.cells)
        .map(|((operation, identity), acc)| {
            let acc = acc.into_inner().unwrap_or_else(PoisonError::into_inner);
            LoadCell {
                operation,
                identity,
                requests: acc.requests,
                errors: acc.errors,
                cancelled: acc.cancelled,
                statuses: acc.statuses,
                latency: Distribution::from_histogram(acc.latency),
                service_time: acc.service.map(Distribution::from_histogram),
            }
        })
        .collect();
    cells.sort_by(|a, b| (&a.operation, &a.identity).cmp(&(&b.operation, &b.identity)));
    let sum = |f: fn(&LoadCell) -> u64| cells.iter().map(f).sum::<u64>();
    let requests = sum(|c| c.requests);
    let errors = sum(|c| c.errors);
    let cancelled = sum(|c| c.cancelled);
    let completed = requests - errors - cancelled;
    let stopped_by = if targets.is_empty() {
        StopReason::NoTargets
    } else if requests >= options.max_requests {
        StopReason::Requests
    } else {
        StopReason::Duration
    };
    LoadReport {
        schema_version: SCHEMA_VERSION,
        mode,
        rate_per_second: options.rate,
        concurrency: options.concurrency,
        max_requests: options.max_requests,
        max_duration_secs: options.max_duration.as_secs_f64(),
        stopped_by,
        requests,
        completed,
        errors,
        cancelled,
        elapsed_secs: elapsed.as_secs_f64(),
        throughput: rate(completed, elapsed.as_secs_f64()),
        max_schedule_lag_ms: options
            .rate
            .map(|_| run.max_lag_micros.load(Ordering::Relaxed) as f64 / 1000.0),
        cells,
    }
}

/// Item reads per operation × identity kept in the replay list, so one big collection
/// does not crowd out the rest.
const ITEMS_PER_CELL: usize = 3;

/// The safe requests each identity is allowed to make: every collection read the matrix
/// allows it (as discovery sends them), then reads of up to three objects it owns per
/// item operation, with the objects harvested from those collections as a scan does.
pub async fn allowed_reads(
    executor: &Executor,
    api: &Api,
    policy: &Policy,
    identities: &[Identity],
    harvest_paths: &BTreeMap<String, String>,
    concurrency: usize,
) -> Vec<LoadTarget> {
    let answers = super::discovery::fetch_collections(
        executor,
        api,
        policy,
        identities,
        harvest_paths,
        concurrency,
    )
    .await;
    let corpus = discover::harvest(
        policy,
        identities,
        &answers,
        harvest_paths,
        &discover::Ownership::default(),
    );
    let target = |request: RequestSpec, identity: usize, op: usize| LoadTarget {
        request,
        identity,
        identity_name: identities[identity].name.clone(),
        operation: api.operations[op].key(),
    };
    let mut out: Vec<LoadTarget> = answers
        .iter()
        .filter(|(_, body)| body.is_some())
        .map(|(d, _)| target(d.request.clone(), d.identity, d.op))
        .collect();
    for (op_index, op) in api.operations.iter().enumerate() {
        if op.method != Method::Get {
            continue;
        }
        let Some(param) = op
            .parameters
            .iter()
            .find(|p| p.location == ParamLocation::Path && p.id_resource.is_some())
        else {
            continue;
        };
        let resource = param.id_resource.as_deref().unwrap_or_default();
        for (who, identity) in identities.iter().enumerate() {
            let allowed = policy
                .access(op_index, &identity.role)
                .is_some_and(|a| a != Access::Deny);
            if !allowed {
                continue;
            }
            let owned = corpus
                .of_resource(resource)
                .filter(|(_, o)| o.owner == who)
                .take(ITEMS_PER_CELL);
            for (_, object) in owned {
                if let Some(request) = build_request(api, op_index, Some((param, &object.id)), "") {
                    out.push(target(request, who, op_index));
                }
            }
        }
    }
    out
}

/// A latency run of an engagement: log in, pick the allowed reads, replay them.
pub struct LatencyInput {
    pub engagement: Engagement,
    pub api: Api,
    pub policy: Policy,
    pub options: LoadOptions,
}

#[derive(Debug, thiserror::Error)]
pub enum LatencyError {
    #[error(transparent)]
    Login(#[from] super::LoginError),
    #[error("{0}")]
    Setup(String),
    #[error("no identity may read any collection of the spec, so there is nothing to replay; check the matrix's allow/own/tenant cells for GET operations")]
    NoTargets,
}

pub async fn measure(input: &LatencyInput, redactor: Redactor) -> Result<LoadReport, LatencyError> {
    let mut engagement = input.engagement.clone();
    engagement.register_secrets(&redactor);
    // One pooled connection per worker.
    engagement.concurrency = input.options.concurrency;
    // The load report keeps its own histograms per operation × identity.
    let mut executor = Executor::new(&engagement, &input.api.base_path(), redactor)
        .map_err(LatencyError::Setup)?
        .without_latency_book();
    executor.login_all(&engagement.identities).await?;
    let targets = allowed_reads(
        &executor,
        &input.api,
        &input.policy,
        &engagement.identities,
        &engagement.harvest,
        engagement.concurrency,
    )
    .await;
    if targets.is_empty() {
        return Err(LatencyError::NoTargets);
    }
    Ok(run_load(&executor, &targets, &input.options).await)
}

/// Writes `latency.json` (the report, scrubbed like every writer's output) into `dir`,
/// creating it; returns the file's path, or what could not be written.
pub fn write_json(
    report: &LoadReport,
    dir: &std::path::Path,
    redactor: &Redactor,
) -> Result<std::path::PathBuf, String> {
    let file = dir.join("latency.json");
    std::fs::create_dir_all(dir)
        .and_then(|()| {
            let json = serde_json::to_string_pretty(report).map_err(std::io::Error::other)?;
            // Every writer scrubs, whatever it believes it holds.
            std::fs::write(&file, redactor.scrub(&json) + "\n")
        })
        .map_err(|e| {
            format!(
                "cannot write {}: {e}; check that the folder is writable or pass another -o",
                file.display()
            )
        })?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn distribution(values_ms: &[u64]) -> Distribution {
        let mut h = new_histogram();
        for v in values_ms {
            h.record(v * 1000).expect("in bounds");
        }
        Distribution::from_histogram(h)
    }

    #[test]
    fn histograms_round_trip_and_merge_exactly() {
        let a = distribution(&(1..=50).collect::<Vec<_>>());
        let b = distribution(&(51..=100).collect::<Vec<_>>());
        let json = serde_json::to_string(&a).expect("serialises");
        let back: Distribution = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(back.histogram.0, a.histogram.0);
        let mut merged = back;
        merged.merge(&b);
        let whole = distribution(&(1..=100).collect::<Vec<_>>());
        assert_eq!(merged.histogram.0, whole.histogram.0);
        assert_eq!(merged.percentiles.count, 100);
        assert!(
            (merged.percentiles.p95_ms - 95.0).abs() < 0.1,
            "{}",
            merged.percentiles.p95_ms
        );
    }

    #[test]
    fn options_are_checked() {
        assert!(LoadOptions::default().problems().is_empty());
        let bad = LoadOptions {
            max_requests: 0,
            max_duration: Duration::ZERO,
            concurrency: 0,
            rate: Some(-1.0),
        };
        assert_eq!(bad.problems().len(), 4);
    }
}
