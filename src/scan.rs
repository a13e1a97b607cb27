//! One scan, end to end: log in, discover objects, plan, execute (reads concurrently,
//! writes one at a time with the owner's read-back), judge as exchanges arrive, report.
//! This is the only place that wires the stages together.

use crate::discover::{self, ObjectCorpus};
use crate::engagement::{Auth, Engagement, Identity, Redactor};
use crate::exchange::Exchange;
use crate::exec::canary::CanaryLedger;
use crate::exec::{self, Executor};
use crate::judge::{self, JudgeContext, Judgement, ReadBack, Verdict};
use crate::matrix::Policy;
use crate::plan::{self, PlanInput, Probe};
use crate::report::{self, Aggregate, BuildInput, IdentityInfo, ProbeResult, Report, RunInfo};
use crate::request::Credential;
use crate::spec::Api;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use std::collections::{BTreeSet, HashMap};
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

/// A legitimate caller's answer, and the JSON paths that changed when it asked twice.
#[derive(Clone, Default)]
struct Baseline {
    exchange: Exchange,
    volatile: BTreeSet<String>,
}

type BaselineCache = Mutex<HashMap<(usize, String), Arc<OnceCell<Baseline>>>>;

struct Shared<'a> {
    api: &'a Api,
    identities: &'a [Identity],
    corpus: &'a ObjectCorpus,
    executor: &'a Executor,
    detectors: &'a [crate::engagement::Detector],
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

    /// The legitimate caller's answer to the same request, fetched once per run. A JSON
    /// answer is fetched twice: the paths whose values differ between the two (nonces,
    /// render ids, per-request blobs, whatever their names) are volatile for this request
    /// and set aside by the similarity layer.
    async fn baseline(&self, probe: &Probe) -> Option<Baseline> {
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
        // An existence-leak baseline is compared by status and shape, not leaf by leaf.
        let learn = probe.attack != plan::Attack::ExistenceLeak;
        let baseline = cell
            .get_or_init(|| async move {
                let exchange = self.send(request, who, Credential::Normal, probe.op).await;
                let mut volatile = BTreeSet::new();
                if let (true, true, Some(first)) = (learn, exchange.is_success(), exchange.json()) {
                    let again = self.send(request, who, Credential::Normal, probe.op).await;
                    if let Some(second) = again.json().filter(|_| again.is_success()) {
                        volatile = judge::learn_volatile(&first, &second);
                    }
                }
                Baseline { exchange, volatile }
            })
            .await;
        Some(baseline.clone())
    }

    async fn run_read(&self, probe: Probe) -> ProbeResult {
        let baseline = self.baseline(&probe).await;
        let exchange = self
            .send(&probe.request, probe.actor, probe.credential, probe.op)
            .await;
        let no_learned = BTreeSet::new();
        let ctx = JudgeContext {
            corpus: self.corpus,
            identities: self.identities,
            detectors: self.detectors,
            volatile: baseline.as_ref().map_or(&no_learned, |b| &b.volatile),
        };
        let mut judgement = judge::judge(
            &ctx,
            &probe,
            &exchange,
            baseline.as_ref().map(|b| &b.exchange),
            None,
        );
        let owner_could = baseline.as_ref().is_some_and(|b| b.exchange.is_success());
        if let Some(doubt) = self
            .refusal_in_doubt(&probe, &exchange, &judgement, owner_could)
            .await
        {
            judgement = Judgement::new(Verdict::Inconclusive, doubt);
        }
        ProbeResult {
            url: self.executor.url_for(&probe.request),
            probe,
            exchange,
            judgement,
        }
    }

    async fn run_write(&self, mut probe: Probe) -> ProbeResult {
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
        let mut exchange = self
            .send(&probe.request, probe.actor, probe.credential, probe.op)
            .await;
        // A 400/422 that blames one of our own values says nothing about access: the body
        // is rebuilt with the next value the context offers and sent once more.
        if matches!(exchange.status, Some(400 | 422)) {
            if let Some(rebuilt) = plan::rebuild_after_blame(
                self.api,
                probe.op,
                &probe.request,
                &exchange.body,
                &self.corpus.field_values,
            ) {
                probe.request = rebuilt;
                exchange = self
                    .send(&probe.request, probe.actor, probe.credential, probe.op)
                    .await;
            }
        }
        let after = match (&readback, owner) {
            (Some(rb), Some(owner)) => {
                Some(self.send(rb, owner, Credential::Normal, probe.op).await)
            }
            _ => None,
        };
        let no_learned = BTreeSet::new();
        let ctx = JudgeContext {
            corpus: self.corpus,
            identities: self.identities,
            detectors: self.detectors,
            volatile: &no_learned,
        };
        let rb = match (&before, &after) {
            (Some(before), Some(after)) => Some(ReadBack { before, after }),
            _ => None,
        };
        let mut judgement = judge::judge(&ctx, &probe, &exchange, None, rb);
        if let (Some(owner), Some(before), Some(after)) = (owner, &before, &after) {
            if let Some(j) = self.owner_lost_by_write(&probe, owner, &exchange, before, after) {
                judgement = j;
            }
        }
        if let (Some(account), Some(plan::Confirm::Answer(sent)), true) = (
            probe.new_account.as_deref(),
            probe.write.as_ref().map(|w| &w.confirm),
            exchange.is_success(),
        ) {
            judgement = self.confirm_new_account(account, sent, judgement).await;
        }
        if let (Verdict::Violation, Some(undo)) = (judgement.verdict, probe.undo.as_ref()) {
            // The flaw changed the actor's own account: set it back, so the target is left
            // as found and the identity keeps the role the matrix knows it by.
            let answer = self
                .send(undo, probe.actor, Credential::Normal, probe.op)
                .await;
            judgement.reason.push_str(&match answer.status {
                Some(s) if (200..300).contains(&s) => format!("; set back afterwards ({s})"),
                Some(s) => {
                    format!("; setting it back was answered {s}: the account keeps the change")
                }
                None => "; setting it back got no answer: the account keeps the change".into(),
            });
        }
        let refused = judgement.verdict == Verdict::Enforced && !exchange.is_success();
        if refused && self.executor.disrupted() {
            // After sessions were lost or data wiped, a refusal may only mean the object
            // is gone: the owner's read-back before the write must still have worked.
            if let Some(before) = before.as_ref().filter(|b| !b.is_success()) {
                judgement = Judgement::new(
                    Verdict::Inconclusive,
                    format!(
                        "refused, but the owner's own read-back answered {} too: the object may be gone (sessions were lost or data reset during the scan)",
                        status_text(before)
                    ),
                );
            }
        }
        ProbeResult {
            url: self.executor.url_for(&probe.request),
            probe,
            exchange,
            judgement,
        }
    }
}

impl Shared<'_> {
    /// A sign-up's verdict once its new account has logged in: its self-read, and the
    /// reads its expected role is denied (each also sent as an identity of that role,
    /// so a read open to everyone proves nothing).
    async fn confirm_new_account(
        &self,
        account: &plan::NewAccount,
        sent: &[(String, serde_json::Value)],
        answer: Judgement,
    ) -> Judgement {
        let mut requests: Vec<&crate::request::RequestSpec> =
            account.self_read.iter().map(|(_, r)| r).collect();
        requests.extend(account.denied_reads.iter().map(|(_, r)| r));
        self.requests.fetch_add(requests.len(), Ordering::Relaxed);
        let answers = match self
            .executor
            .send_as_new_account(&account.identity, &requests)
            .await
        {
            Ok(answers) => answers,
            Err(why) => {
                return judge::judge_new_account(
                    sent,
                    answer,
                    judge::AccountProof::LoginFailed(&why),
                )
            }
        };
        let (self_read, reads) =
            answers.split_at(usize::from(account.self_read.is_some()).min(answers.len()));
        let mut expected = Vec::with_capacity(account.denied_reads.len());
        for (op, request) in &account.denied_reads {
            expected.push(
                self.send(request, account.template, Credential::Normal, *op)
                    .await,
            );
        }
        let names: Vec<String> = account
            .denied_reads
            .iter()
            .map(|(op, _)| self.api.operations[*op].key())
            .collect();
        let denied_reads = names
            .iter()
            .zip(reads)
            .zip(&expected)
            .map(|((name, new), old)| (name.as_str(), new, old))
            .collect();
        judge::judge_new_account(
            sent,
            answer,
            judge::AccountProof::LoggedIn {
                self_read: self_read.first(),
                denied_reads,
                role: &account.identity.role,
            },
        )
    }

    /// After a lost session or a reset, a refusal (403, 404) is re-checked against a
    /// positive control: the legitimate caller sends the same request again, fresh. If
    /// that fails too, the refusal proves nothing (the object or the session is gone).
    async fn refusal_in_doubt(
        &self,
        probe: &Probe,
        exchange: &Exchange,
        judgement: &judge::Judgement,
        owner_could: bool,
    ) -> Option<String> {
        // Only a caller that could make the request earlier in the run is a control.
        if !owner_could
            || judgement.verdict != Verdict::Enforced
            || !matches!(exchange.status, Some(403) | Some(404))
            || !self.executor.disrupted()
        {
            return None;
        }
        let who = probe.baseline.filter(|&b| b != probe.actor)?;
        let request = probe.baseline_request.as_ref().unwrap_or(&probe.request);
        let control = self.send(request, who, Credential::Normal, probe.op).await;
        if control.is_success() {
            return None;
        }
        Some(format!(
            "refused with {}, but the positive control by `{}` now answers {} too: the object or the session is gone (sessions were lost or data reset during the scan)",
            status_text(exchange),
            self.identities[who].name,
            status_text(&control)
        ))
    }

    /// A granted write after which the object's owner can no longer log in: the write
    /// took over the owner's account (a password reset, a session wipe). The owner read
    /// its object just before, so its login worked until this write.
    fn owner_lost_by_write(
        &self,
        probe: &Probe,
        owner: usize,
        exchange: &Exchange,
        before: &Exchange,
        after: &Exchange,
    ) -> Option<judge::Judgement> {
        if probe.expect_granted || owner == probe.actor || !exchange.is_success() {
            return None;
        }
        if !before.is_success() || after.is_success() {
            return None;
        }
        let dead = self.executor.dead_reason(owner)?;
        Some(judge::Judgement::new(
            Verdict::Violation,
            format!(
                "write answered {}, and right after it the owner `{}` could no longer log in ({dead}): the write changed the owner's account",
                status_text(exchange),
                self.identities[owner].name
            ),
        ))
    }
}

fn status_text(e: &Exchange) -> String {
    e.status
        .map(|s| s.to_string())
        .unwrap_or_else(|| "no answer".to_string())
}

/// The identities a result depends on: who sent it, whose answer is its baseline and
/// whose read-back confirms it.
fn involved(probe: &Probe, corpus: &ObjectCorpus) -> Vec<usize> {
    let mut who = vec![probe.actor];
    who.extend(probe.baseline);
    if probe.write.is_some() {
        who.extend(
            probe
                .object
                .and_then(|i| corpus.objects.get(i))
                .map(|o| o.owner),
        );
    }
    who.sort_unstable();
    who.dedup();
    who
}

/// The engagement's `destructive_operations` as operation indexes; an entry that names
/// no operation of the spec is an error pointing at its line.
fn destructive_ops(
    api: &Api,
    engagement: &Engagement,
) -> Result<std::collections::BTreeSet<usize>, ScanError> {
    let mut out = std::collections::BTreeSet::new();
    for (text, line) in &engagement.destructive_operations {
        let wanted = match text.trim().split_once(' ') {
            Some((method, path)) => format!("{} {}", method.to_ascii_uppercase(), path.trim()),
            None => text.trim().to_string(),
        };
        let found = api
            .operations
            .iter()
            .position(|o| o.key() == wanted || o.operation_id.as_deref() == Some(text.trim()));
        match found {
            Some(op) => {
                out.insert(op);
            }
            None => {
                return Err(ScanError::Setup(format!(
                    "{}:{line}: destructive operation `{text}` is not in the spec; write it as `METHOD /path` (as in the matrix) or its operationId",
                    engagement.source.display()
                )))
            }
        }
    }
    Ok(out)
}

/// The plan without the probes that would really run a destructive operation: those
/// the matrix allows (a legitimate password change ends the caller's own sessions), and
/// malformed or mass-assignment bodies sent by an allowed caller (a body the API
/// accepts runs the operation). Probes the API must refuse are kept: refusing them is
/// the point.
fn sendable<'a>(
    input: &'a PlanInput<'a>,
    destructive: &'a std::collections::BTreeSet<usize>,
) -> impl Iterator<Item = Probe> + 'a {
    plan::plan(input).filter(move |p| {
        if !destructive.contains(&p.op) {
            return true;
        }
        let runs_as_allowed = p.access != crate::matrix::Access::Deny
            && matches!(
                p.attack,
                plan::Attack::Malformed | plan::Attack::MassAssignment
            );
        !p.expect_granted && !runs_as_allowed
    })
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

    // What each identity's own self-read says about it (`GET /me`): its user ID, name,
    // team. Declared attributes win; learned ones fill the gaps.
    let (self_facts, self_reads) =
        crate::exec::discovery::fetch_self_facts(&executor, &input.api, &input.policy, &identities)
            .await;
    let mut owner_names: Vec<Vec<String>> = vec![Vec::new(); identities.len()];
    for (i, facts) in self_facts.into_iter().enumerate() {
        if let Some(name) = discover::facts::login_name(&identities[i]) {
            owner_names[i].push(name);
        }
        for (k, v) in facts {
            if discover::facts::is_identifying(&k) {
                if let Some(text) = v.as_str() {
                    owner_names[i].push(text.to_string());
                }
            }
            identities[i].attributes.entry(k).or_insert(v);
        }
    }

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
    let discovery_requests = answers.len() + self_reads;
    // Nothing answered at all (TLS refused, no route, proxy down): stop with the reason
    // rather than report a scan of nothing.
    if let (0, Some(failure)) = executor.reachability() {
        return Err(ScanError::Setup(format!(
            "no request reached the target {}: {failure}",
            engagement.target
        )));
    }
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
    // Learned identifying facts count as owner values too (`owner_id: 5` for user_id 5).
    for (i, identity) in identities.iter().enumerate() {
        for (k, v) in &identity.attributes {
            let text = crate::request::value_text(v);
            if discover::facts::is_identifying(k) && !owner_values[i].contains(&text) {
                owner_values[i].push(text);
            }
        }
    }
    let ownership = discover::Ownership {
        owner_fields: engagement.owner_fields.clone(),
        owner_values,
        seeds: engagement
            .seed_objects
            .iter()
            .map(|s| (s.resource.clone(), s.id.clone(), s.owner))
            .collect(),
        owner_names,
    };
    let mut corpus = discover::harvest(
        &input.policy,
        &identities,
        &answers,
        &engagement.harvest,
        &ownership,
    );
    let mut warnings: Vec<String> = engagement.standing_warnings();
    warnings.extend(control_failures.iter().map(|(name, reason)| {
        format!("identity `{name}` failed its positive control before the scan: {reason}")
    }));
    warnings.extend(discover::unmatched_hints(
        &input.api,
        &engagement.source,
        &engagement.harvest,
        &engagement
            .seed_objects
            .iter()
            .map(|s| (s.resource.clone(), s.id.clone()))
            .collect::<Vec<_>>(),
        &corpus,
    ));
    warnings.extend(
        corpus
            .ambiguous
            .iter()
            .map(|a| format!("ownership ambiguous, left out: {a}")),
    );
    for resource in input.api.collections.keys() {
        if !corpus.objects.iter().any(|o| &o.resource == resource) {
            warnings.push(format!(
                "no `{resource}` object was discovered: probes that need one were not planned"
            ));
        }
    }

    // Offline: does any identity's own token verify under a weak corpus secret? An HMAC
    // computed here, so no request is spent on a key that is not weak.
    let tokens = executor.token_facts();
    for (identity, facts) in identities.iter().zip(&tokens) {
        if let Some(line) = facts.weak_secret {
            warnings.push(format!(
                "identity `{}`'s token is signed HS256 with the weak secret `{}` (corpora/jwt-weak-secrets.txt line {line}): anyone can mint tokens this API accepts",
                identity.name,
                crate::request::weak_secret_at(line).unwrap_or("?")
            ));
        }
    }
    let destructive = destructive_ops(&input.api, engagement)?;
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
        if engagement.write_discovered_objects {
            corpus.set_write_discovered(true);
            let written: std::collections::BTreeSet<&str> = input
                .api
                .operations
                .iter()
                .filter(|o| !o.is_read_only() && o.method != crate::spec::Method::Delete)
                .filter_map(|o| o.id_param().map(|(_, resource)| resource))
                .collect();
            let resources: std::collections::BTreeSet<&str> = (0..corpus.objects.len())
                .filter(|&i| corpus.discovered_writable(i))
                .map(|i| corpus.objects[i].resource.as_str())
                .filter(|r| written.contains(r))
                .collect();
            for resource in resources {
                warnings.push(format!(
                    "write_discovered_objects: writes to `{resource}` (no canary) aim at \
                     discovered objects of the target, which they may change"
                ));
            }
        }
    }
    let plan_input = PlanInput {
        api: &input.api,
        policy: &input.policy,
        identities: &identities,
        corpus: &corpus,
        allow_mutations: engagement.allow_mutations,
        run_nonce,
        tokens,
    };
    // Counting costs one planning pass (cheap next to any request) and buys a progress bar
    // with a real end.
    let planned = sendable(&plan_input, &destructive).count();

    let shared = Shared {
        api: &input.api,
        identities: &identities,
        corpus: &corpus,
        executor: &executor,
        detectors: &engagement.detectors,
        baselines: Mutex::new(HashMap::new()),
        requests: AtomicUsize::new(0),
    };
    let bar = progress_bar(planned, input.progress);
    let mut aggregate = Aggregate::default();
    let mut complete = true;
    let mut violations = 0usize;
    let mut shrunk_ops = std::collections::BTreeSet::new();
    // identity → (probes judged after it lost its login, of which enforced: always 0)
    let mut after_loss: HashMap<usize, (usize, usize)> = HashMap::new();
    if *interrupts.borrow() > 0 {
        complete = false;
    }
    if complete {
        let ctrl_c = pressed(1);
        tokio::pin!(ctrl_c);
        let mut probes = sendable(&plan_input, &destructive).peekable();
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
            for who in involved(&result.probe, &corpus) {
                let Some(reason) = executor.dead_reason(who) else {
                    continue;
                };
                let entry = after_loss.entry(who).or_insert((0, 0));
                entry.0 += 1;
                // Evidence of a breach stands; anything else from a dead identity is doubt.
                if !matches!(
                    result.judgement.verdict,
                    Verdict::Violation | Verdict::ServerError | Verdict::Inconclusive
                ) {
                    result.judgement = Judgement::new(
                        Verdict::Inconclusive,
                        format!(
                            "identity `{}` lost its login during the scan ({reason}); was {}: {}",
                            identities[who].name,
                            result.judgement.verdict.as_str(),
                            result.judgement.reason
                        ),
                    );
                }
                if result.judgement.verdict == Verdict::Enforced {
                    entry.1 += 1;
                }
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
    // Write cells no canary could serve: in the canaries section and in each cell's coverage.
    let canary_gaps = plan::canary_gaps(&plan_input);
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
        ledger.uncovered = canary_gaps
            .iter()
            .map(|((op, role), reason)| exec::canary::UncoveredCell {
                operation: input.api.operations[*op].key(),
                role: role.clone(),
                reason: reason.clone(),
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
    for redirect in executor.offsite_redirects() {
        warnings.push(format!("redirect off the target: {redirect}"));
    }
    if executor.relogins() > 0 {
        warnings.push(format!(
            "sessions were lost and renewed {} time(s) during the scan",
            executor.relogins()
        ));
    }
    let mut identities_lost = Vec::new();
    for loss in executor.losses() {
        let affected = if loss.reprovisioned {
            Vec::new()
        } else {
            aggregate.inconclusive_mentioning(&format!("`{}`", loss.name))
        };
        let (probes_after, enforced_after) = if loss.reprovisioned {
            (0, 0)
        } else {
            after_loss.get(&loss.identity).copied().unwrap_or((0, 0))
        };
        warnings.push(format!(
            "identity `{}` lost its login: {}; {}{} probe(s) inconclusive because of it{}",
            loss.name,
            loss.reason,
            if loss.reprovisioned {
                "re-provisioned and logged in again; "
            } else {
                ""
            },
            affected.len(),
            if affected.is_empty() {
                String::new()
            } else {
                let ids: Vec<String> = affected.iter().map(|id| format!("#{id}")).collect();
                format!(": {}", ids.join(", "))
            }
        ));
        identities_lost.push(report::LostIdentity {
            identity: loss.name,
            reason: loss.reason,
            at_request: loss.at_request,
            reprovisioned: loss.reprovisioned,
            affected_probes: affected,
            probes_after_loss: probes_after,
            enforced_after_loss: enforced_after,
        });
    }
    // Whatever left probes undecided (a wiped target, a canary gone, a lost login), the
    // reader gets the reasons and the probes, not just a count.
    for (reason, count, ids) in aggregate.inconclusive_by_reason(10) {
        let ids: Vec<String> = ids.iter().map(|id| format!("#{id}")).collect();
        warnings.push(format!(
            "{count} probe(s) inconclusive: {reason} ({}{})",
            ids.join(", "),
            if count > ids.len() { ", …" } else { "" }
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
        extra_coverage: Some(&canary_gaps),
    });
    let mut report = report;
    report.identities_lost = identities_lost;
    report.canaries =
        canaries.map(|ledger| report::canary_section(ledger, engagement.max_canaries));
    let files = report::write_all(&report, &input.output_dir, &redactor)?;
    Ok(ScanOutcome { report, files })
}

/// What `scan --dry-run` shows: the plan from the inputs alone, nothing sent.
#[derive(Debug)]
pub struct DryPlan {
    pub operations: usize,
    /// Identities with `anonymous` appended.
    pub identities: Vec<String>,
    pub logins: usize,
    pub discovery_requests: usize,
    /// Objects the plan could use: the engagement's seeds only (nothing is discovered).
    pub seed_objects: usize,
    /// attack → planned probes.
    pub per_attack: std::collections::BTreeMap<String, usize>,
    /// operation (`METHOD /path`) → planned probes, in spec order.
    pub per_operation: Vec<(String, usize)>,
    /// One line per probe: `#id attack METHOD url as identity (credential)`.
    pub requests: Vec<String>,
}

/// Plans a scan without sending anything: discovery is skipped, so the object corpus holds
/// only the engagement's seed objects and token facts are unknown (no forgeries that need
/// a live token are planned). Request lines are scrubbed by `redactor`.
pub fn dry_plan(
    engagement: &Engagement,
    api: &Api,
    policy: &Policy,
    redactor: &Redactor,
) -> Result<DryPlan, ScanError> {
    engagement.register_secrets(redactor);
    let mut identities = engagement.identities.clone();
    identities.push(Identity::anonymous());
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
        owner_names: Vec::new(),
    };
    let corpus = discover::harvest(policy, &identities, &[], &engagement.harvest, &ownership);
    let destructive = destructive_ops(api, engagement)?;
    let plan_input = PlanInput {
        api,
        policy,
        identities: &identities,
        corpus: &corpus,
        allow_mutations: engagement.allow_mutations,
        run_nonce: "dry-run".into(),
        tokens: Vec::new(),
    };
    let mut base = engagement.target.clone();
    let base_path = api.base_path();
    if base.path() == "/" && !base_path.is_empty() && base_path != "/" {
        base.set_path(base_path.trim_end_matches('/'));
    }
    let mut per_attack = std::collections::BTreeMap::new();
    let mut per_op = vec![0usize; api.operations.len()];
    let mut requests = Vec::new();
    for probe in sendable(&plan_input, &destructive) {
        *per_attack.entry(probe.attack.to_string()).or_insert(0) += 1;
        if let Some(n) = per_op.get_mut(probe.op) {
            *n += 1;
        }
        let credential = match probe.credential {
            Credential::Normal => "own credential".to_string(),
            Credential::Omitted => "no credential".to_string(),
            Credential::Forged(f) => format!("forged: {f:?}"),
        };
        requests.push(redactor.scrub(&format!(
            "#{} {} {} {}{} as {} ({credential})",
            probe.id,
            probe.attack,
            probe.request.method,
            base.as_str().trim_end_matches('/'),
            probe.request.path_and_query(),
            identities[probe.actor].name,
        )));
    }
    Ok(DryPlan {
        operations: api.operations.len(),
        identities: identities.iter().map(|i| i.name.clone()).collect(),
        logins: identities.iter().map(|i| i.auth.login_requests()).sum(),
        discovery_requests: discover::discovery_requests(api, policy, &identities).len(),
        seed_objects: corpus.objects.len(),
        per_attack,
        per_operation: api
            .operations
            .iter()
            .zip(per_op)
            .map(|(op, n)| (op.key(), n))
            .collect(),
        requests,
    })
}

impl DryPlan {
    /// The text `scan --dry-run` prints.
    pub fn render(&self) -> String {
        let total: usize = self.per_attack.values().sum();
        let mut out = format!(
            "dry run: nothing was sent\nplan: {} operations × {} identities ({}) → {total} probes\n",
            self.operations,
            self.identities.len(),
            self.identities.join(", ")
        );
        out.push_str(&format!(
            "a real scan first sends {} login request(s) and {} discovery read(s) (first pages), then the probes\n",
            self.logins, self.discovery_requests
        ));
        out.push_str(&format!(
            "object corpus: {} seed object(s) from the engagement; discovery is skipped in a dry run, so probes that need discovered objects (id-swap, existence-leak, writes to canaries) are missing here and a real scan plans more\n",
            self.seed_objects
        ));
        out.push_str("probes per attack:\n");
        for (attack, n) in &self.per_attack {
            out.push_str(&format!("  {attack:<18} {n}\n"));
        }
        out.push_str("probes per operation:\n");
        let width = self
            .per_operation
            .iter()
            .map(|(op, _)| op.len())
            .max()
            .unwrap_or(0);
        for (op, n) in &self.per_operation {
            out.push_str(&format!("  {op:<width$} {n}\n"));
        }
        out.push_str("requests:\n");
        for line in &self.requests {
            out.push_str(&format!("  {line}\n"));
        }
        out
    }
}
