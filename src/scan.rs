//! One scan, end to end: log in, discover objects, plan, execute (reads concurrently,
//! writes one at a time with the owner's read-back), judge as exchanges arrive, report.
//! This is the only place that wires the stages together.

use crate::discover::{self, ObjectCorpus};
use crate::engagement::{Auth, Engagement, Identity, Redactor};
use crate::exec::canary::CanaryLedger;
use crate::exec::{self, Exchange, Executor};
use crate::judge::{self, JudgeContext, ReadBack, Verdict};
use crate::matrix::Policy;
use crate::plan::{self, PlanInput, Probe};
use crate::report::{self, Aggregate, BuildInput, IdentityInfo, ProbeResult, Report, RunInfo};
use crate::request::Credential;
use crate::spec::Api;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::OnceCell;

pub struct ScanInput {
    pub engagement: Engagement,
    pub api: Api,
    pub policy: Policy,
    /// Where `report.json` and `report.md` go.
    pub output_dir: PathBuf,
    /// Draw a progress bar on stderr (it is hidden anyway when stderr is not a terminal).
    pub progress: bool,
    /// Fixes the write markers and the report's clock fields, for reproducible output.
    pub seed: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error(transparent)]
    Login(#[from] crate::exec::LoginError),
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Report(#[from] report::ReportError),
}

pub struct ScanOutcome {
    pub report: Report,
    pub files: Vec<PathBuf>,
}

type BaselineCache = Mutex<HashMap<(usize, String), Arc<OnceCell<Exchange>>>>;

struct Shared<'a> {
    api: &'a Api,
    identities: &'a [Identity],
    corpus: &'a ObjectCorpus,
    executor: &'a Executor,
    baselines: BaselineCache,
    requests: AtomicUsize,
}

impl Shared<'_> {
    async fn send(
        &self,
        probe_request: &crate::request::RequestSpec,
        identity: usize,
        credential: Credential,
        op: usize,
    ) -> Exchange {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.executor
            .send(
                probe_request,
                identity,
                credential,
                &self.api.operations[op].key(),
            )
            .await
    }

    /// The legitimate caller's answer to the same request, fetched once per run.
    async fn baseline(&self, probe: &Probe) -> Option<Exchange> {
        let who = probe.baseline?;
        let request = probe.baseline_request.as_ref().unwrap_or(&probe.request);
        let cell = {
            let Ok(mut cache) = self.baselines.lock() else {
                return None;
            };
            cache
                .entry((who, request.cache_key()))
                .or_insert_with(|| Arc::new(OnceCell::new()))
                .clone()
        };
        let exchange = cell
            .get_or_init(|| self.send(request, who, Credential::Normal, probe.op))
            .await;
        Some(exchange.clone())
    }

    async fn run_read(&self, probe: Probe) -> ProbeResult {
        let baseline = self.baseline(&probe).await;
        let exchange = self
            .send(&probe.request, probe.actor, probe.credential, probe.op)
            .await;
        let ctx = JudgeContext {
            corpus: self.corpus,
            identities: self.identities,
        };
        let judgement = judge::judge(&ctx, &probe, &exchange, baseline.as_ref(), None);
        ProbeResult {
            url: self.executor.url_for(&probe.request),
            probe,
            exchange,
            judgement,
        }
    }

    async fn run_write(&self, probe: Probe) -> ProbeResult {
        let owner = probe
            .object
            .and_then(|i| self.corpus.objects.get(i))
            .map(|o| o.owner)
            .or(probe.baseline);
        let readback = probe.write.as_ref().and_then(|w| w.readback.clone());
        let before = match (&readback, owner) {
            (Some(rb), Some(owner)) => {
                Some(self.send(rb, owner, Credential::Normal, probe.op).await)
            }
            _ => None,
        };
        let exchange = self
            .send(&probe.request, probe.actor, probe.credential, probe.op)
            .await;
        let after = match (&readback, owner) {
            (Some(rb), Some(owner)) => {
                Some(self.send(rb, owner, Credential::Normal, probe.op).await)
            }
            _ => None,
        };
        let ctx = JudgeContext {
            corpus: self.corpus,
            identities: self.identities,
        };
        let rb = match (&before, &after) {
            (Some(before), Some(after)) => Some(ReadBack { before, after }),
            _ => None,
        };
        let judgement = judge::judge(&ctx, &probe, &exchange, None, rb);
        ProbeResult {
            url: self.executor.url_for(&probe.request),
            probe,
            exchange,
            judgement,
        }
    }
}

/// The first malformed body per operation that made the server fail is shrunk to a
/// minimal one (proptest's shrinking, bounded); the finding then shows that body.
/// Shrinks the first server error of each operation found by a `malformed` probe to a
/// minimal body (bounded re-sends), and puts it in the result's evidence.
async fn shrink_server_error(shared: &Shared<'_>, r: &mut ProbeResult) {
    let Some(case) = r.probe.malformed.clone() else {
        return;
    };
    let probe = &r.probe;
    let (minimal, steps) = plan::shrink_body(shared.api, &case, |body| {
        let mut request = probe.request.clone();
        request.json = Some(body);
        async move {
            let e = shared
                .send(&request, probe.actor, probe.credential, probe.op)
                .await;
            e.status.is_some_and(|s| s >= 500)
        }
    })
    .await;
    r.judgement.reason = format!(
        "{}; shrunk in {steps} request(s) to the minimal body {minimal}",
        r.judgement.reason
    );
    r.probe.request.json = Some(minimal);
}

fn auth_kind(auth: &Auth) -> &'static str {
    auth.kind()
}

fn progress_bar(len: usize, visible: bool) -> indicatif::ProgressBar {
    if !visible {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(len as u64),
        indicatif::ProgressDrawTarget::stderr_with_hz(10),
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} [{bar:30}] {pos}/{len} probes {msg} ({elapsed})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

pub async fn scan(input: ScanInput, redactor: Redactor) -> Result<ScanOutcome, ScanError> {
    let started = Instant::now();
    let started_unix = match input.seed {
        Some(_) => 0,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    };
    let engagement = &input.engagement;
    engagement.register_secrets(&redactor);
    let mut identities = engagement.identities.clone();
    identities.push(Identity::anonymous());

    let mut executor = Executor::new(engagement, &input.api.base_path(), redactor.clone())
        .map_err(ScanError::Setup)?;
    executor.login_all(&identities).await?;
    let logins: usize = identities.iter().map(|i| i.auth.login_requests()).sum();

    // Discovery: every identity reads the collections it may read, page by page.
    let answers = crate::exec::discovery::fetch_collections(
        &executor,
        &input.api,
        &input.policy,
        &identities,
        &engagement.harvest,
        engagement.concurrency,
    )
    .await;
    let discovery_requests = answers.len();
    // Positive controls: each identity's first successful collection read. A probe that
    // later looks logged out is re-checked against it before being believed.
    let mut controls = Vec::new();
    for (i, _) in identities.iter().enumerate() {
        if let Some((d, _)) = answers
            .iter()
            .find(|(d, body)| d.identity == i && body.is_some())
        {
            controls.push((i, d.request.clone(), input.api.operations[d.op].key()));
        }
    }
    let control_failures = executor.check_controls(controls).await;
    let mut owner_values = engagement.owner_values.clone();
    owner_values.resize(identities.len(), Vec::new());
    let ownership = discover::Ownership {
        owner_fields: engagement.owner_fields.clone(),
        owner_values,
        seeds: engagement
            .seed_objects
            .iter()
            .map(|s| (s.resource.clone(), s.id.clone(), s.owner))
            .collect(),
    };
    let mut corpus = discover::harvest(
        &input.policy,
        &identities,
        &answers,
        &engagement.harvest,
        &ownership,
    );
    let mut warnings: Vec<String> = control_failures
        .iter()
        .map(|(name, reason)| {
            format!("identity `{name}` failed its positive control before the scan: {reason}")
        })
        .collect();
    for resource in input.api.collections.keys() {
        if !corpus.objects.iter().any(|o| &o.resource == resource) {
            warnings.push(format!(
                "no `{resource}` object was discovered: probes that need one were not planned"
            ));
        }
    }

    let run_nonce = match input.seed {
        Some(seed) => format!("{seed:x}"),
        None => format!("{:x}", rand::random::<u32>()),
    };
    // Ctrl-C presses, counted: the first stops probing (the partial report and the canary
    // cleanup still run), the second abandons the cleanup.
    let (interrupts_tx, interrupts) = tokio::sync::watch::channel(0u32);
    let listener = tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            interrupts_tx.send_modify(|n| *n += 1);
        }
    });
    let pressed = |times: u32| {
        let mut rx = interrupts.clone();
        async move {
            if rx.wait_for(|n| *n >= times).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    };

    // Canaries: with mutations, writes and deletes go only to objects created here.
    let mut canaries = None;
    if engagement.allow_mutations {
        let orders = discover::canary::plan(
            &input.api,
            &input.policy,
            &identities,
            engagement.max_canaries,
        );
        if orders.over_cap > 0 {
            warnings.push(format!(
                "the canary cap ({}) was reached: {} more canary object(s) were not created, \
                 and the writes that needed them were not sent (raise `max_canaries`)",
                engagement.max_canaries, orders.over_cap
            ));
        }
        let mut ledger = CanaryLedger::default();
        tokio::select! {
            _ = exec::canary::create_all(
                &executor,
                &input.api,
                &identities,
                &orders,
                &run_nonce,
                &mut corpus,
                &mut ledger,
            ) => {}
            _ = pressed(1) => {}
        }
        canaries = Some(ledger);
    }
    let plan_input = PlanInput {
        api: &input.api,
        policy: &input.policy,
        identities: &identities,
        corpus: &corpus,
        allow_mutations: engagement.allow_mutations,
        run_nonce,
    };
    // Counting costs one planning pass (cheap next to any request) and buys a progress bar
    // with a real end.
    let planned = plan::plan(&plan_input).count();

    let shared = Shared {
        api: &input.api,
        identities: &identities,
        corpus: &corpus,
        executor: &executor,
        baselines: Mutex::new(HashMap::new()),
        requests: AtomicUsize::new(0),
    };
    let bar = progress_bar(planned, input.progress);
    let mut aggregate = Aggregate::default();
    let mut complete = true;
    let mut violations = 0usize;
    let mut shrunk_ops = std::collections::BTreeSet::new();
    if *interrupts.borrow() > 0 {
        complete = false;
    }
    if complete {
        let ctrl_c = pressed(1);
        tokio::pin!(ctrl_c);
        let mut probes = plan::plan(&plan_input).peekable();
        let mut in_flight = FuturesUnordered::new();
        loop {
            // Keep up to `concurrency` reads in flight; the plan yields every read before
            // the first write, and writes go one at a time once no read is in flight,
            // each bracketed by the owner's read-back.
            while in_flight.len() < engagement.concurrency {
                if probes.peek().is_none_or(|p| p.write.is_some()) {
                    break;
                }
                let Some(probe) = probes.next() else { break };
                in_flight.push(shared.run_read(probe).boxed());
            }
            let next = if in_flight.is_empty() {
                let Some(probe) = probes.next() else { break };
                let run = if probe.write.is_some() {
                    shared.run_write(probe).boxed()
                } else {
                    shared.run_read(probe).boxed()
                };
                tokio::select! {
                    r = run => Some(r),
                    _ = &mut ctrl_c => None,
                }
            } else {
                tokio::select! {
                    r = in_flight.next() => r,
                    _ = &mut ctrl_c => None,
                }
            };
            let Some(mut result) = next else {
                complete = false;
                break;
            };
            if result.probe.malformed.is_some()
                && result.judgement.verdict == Verdict::ServerError
                && shrunk_ops.insert(result.probe.op)
            {
                shrink_server_error(&shared, &mut result).await;
            }
            if result.judgement.verdict == Verdict::Violation {
                violations += 1;
                bar.set_message(format!("· {violations} violations"));
            }
            bar.inc(1);
            aggregate.add(result, &input.api, &identities, &corpus);
        }
    }
    bar.finish_and_clear();
    if let Some(ledger) = canaries.as_mut() {
        tokio::select! {
            _ = exec::canary::cleanup(
                &executor,
                &input.api,
                &input.policy,
                &identities,
                &corpus,
                ledger,
            ) => {}
            _ = pressed(2) => {
                warnings.push("the canary cleanup was interrupted (Ctrl-C twice)".into());
            }
        }
        ledger.uncovered = plan::canary_gaps(&plan_input)
            .into_iter()
            .map(|((op, role), reason)| exec::canary::UncoveredCell {
                operation: input.api.operations[op].key(),
                role,
                reason,
            })
            .collect();
        if !ledger.left.is_empty() {
            warnings.push(format!(
                "{} canary object(s) could not be deleted; see the report's canaries section",
                ledger.left.len()
            ));
        }
    }
    listener.abort();
    if executor.relogins() > 0 {
        warnings.push(format!(
            "sessions were lost and renewed {} time(s) during the scan",
            executor.relogins()
        ));
    }
    for (name, reason) in executor.dead_identities() {
        let affected: Vec<String> = aggregate
            .inconclusive_mentioning(&format!("`{name}`"))
            .into_iter()
            .map(|id| format!("#{id}"))
            .collect();
        warnings.push(format!(
            "identity `{name}`: {reason}; {} probe(s) inconclusive because of it{}",
            affected.len(),
            if affected.is_empty() {
                String::new()
            } else {
                format!(": {}", affected.join(", "))
            }
        ));
    }

    let report = report::build(BuildInput {
        api: &input.api,
        policy: &input.policy,
        identities: &identities,
        corpus: &corpus,
        aggregate: &aggregate,
        latency: executor.latency.summaries(),
        histograms: executor.latency.histograms(),
        run: RunInfo {
            target: engagement.target.to_string(),
            spec: engagement.spec.display().to_string(),
            matrix: engagement.matrix.display().to_string(),
            engagement: engagement.source.display().to_string(),
            started_unix,
            allow_mutations: engagement.allow_mutations,
            complete,
            identities: identities
                .iter()
                .map(|i| IdentityInfo {
                    name: i.name.clone(),
                    role: i.role.clone(),
                    tenant: i.tenant.clone(),
                    auth: auth_kind(&i.auth),
                })
                .collect(),
        },
        p95_target_ms: engagement.p95_target_ms,
        requests: shared.requests.load(Ordering::Relaxed)
            + discovery_requests
            + logins
            + canaries.as_ref().map_or(0, |c| c.requests),
        wall_seconds: if input.seed.is_some() {
            0.0
        } else {
            started.elapsed().as_secs_f64()
        },
        warnings,
    });
    let mut report = report;
    report.canaries = canaries.map(|ledger| ledger.section(engagement.max_canaries));
    let files = report::write_all(&report, &input.output_dir, &redactor)?;
    Ok(ScanOutcome { report, files })
}
