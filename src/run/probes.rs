//! Sending one probe and gathering what judging it needs: the legitimate caller's
//! baseline (fetched once per request, twice to learn volatile fields), the owner's
//! read-back around a write, a positive control after a disruption, the set-back of a
//! flaw that changed the actor's own account, and the shrinking of a malformed body that
//! made the server fail. The verdicts themselves come from judge/.

use crate::discover::ObjectCorpus;
use crate::engagement::Identity;
use crate::exchange::Exchange;
use crate::exec::Executor;
use crate::judge::{self, disruption, JudgeContext, Judgement, ReadBack, Verdict};
use crate::plan::{self, Probe};
use crate::report::ProbeResult;
use crate::request::Credential;
use crate::spec::Api;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

/// A legitimate caller's answer, and the JSON paths that changed when it asked twice.
#[derive(Clone, Default)]
struct Baseline {
    exchange: Exchange,
    volatile: BTreeSet<String>,
}

type BaselineCache = Mutex<HashMap<(usize, String), Arc<OnceCell<Baseline>>>>;

/// What every probe of one run shares: the inputs, the executor, the baseline cache and
/// the count of probe requests sent.
pub(super) struct Shared<'a> {
    pub api: &'a Api,
    pub identities: &'a [Identity],
    pub corpus: &'a ObjectCorpus,
    pub executor: &'a Executor,
    pub detectors: &'a [crate::engagement::Detector],
    baselines: BaselineCache,
    pub requests: AtomicUsize,
    /// The login names of accounts sign-up probes created, which nothing deletes.
    pub new_accounts: Mutex<Vec<String>>,
}

impl<'a> Shared<'a> {
    pub fn new(
        api: &'a Api,
        identities: &'a [Identity],
        corpus: &'a ObjectCorpus,
        executor: &'a Executor,
        detectors: &'a [crate::engagement::Detector],
    ) -> Self {
        Shared {
            api,
            identities,
            corpus,
            executor,
            detectors,
            baselines: Mutex::new(HashMap::new()),
            requests: AtomicUsize::new(0),
            new_accounts: Mutex::new(Vec::new()),
        }
    }

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
                // Cached for every probe of this request: a fault must not stand in for it.
                let exchange = self.read_again_on_fault(request, who, probe.op).await;
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

    pub async fn run_read(&self, probe: Probe) -> ProbeResult {
        let baseline = self.baseline(&probe).await;
        let mut exchange = self
            .send(&probe.request, probe.actor, probe.credential, probe.op)
            .await;
        // A 5xx may be load or a passing fault, not the route's answer: a read is sent once
        // more before it is judged (writes are not: a second write is a second effect).
        let first_5xx = exchange.status.filter(|s| *s >= 500);
        if first_5xx.is_some() {
            let again = self
                .send(&probe.request, probe.actor, probe.credential, probe.op)
                .await;
            exchange = with_earlier_faults(exchange, again);
        }
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
        if let Some((doubt, wiped)) = self
            .refusal_in_doubt(
                &probe,
                &exchange,
                &judgement,
                baseline.as_ref().map(|b| &b.exchange),
            )
            .await
        {
            judgement = Judgement::new(Verdict::Inconclusive, doubt);
            if wiped {
                exchange.faults.push(crate::fault::FaultKind::DataWiped);
            }
        }
        let mut judgement = crate::fault::guard(judgement, &exchange);
        if judgement.verdict == Verdict::ServerError && owner_could {
            // The route works for its legitimate caller: this 5xx is the server failing
            // (load, a fault), not a sign that the actor got in.
            judgement.reason.push_str(
                "; the legitimate caller got a 2xx here: a server error, not evidence of access",
            );
        }
        if let Some(status) = first_5xx {
            judgement.reason = format!(
                "{} (sent twice: the first answer was {status})",
                judgement.reason
            );
        }
        ProbeResult {
            url: self.executor.url_for(&probe.request),
            probe,
            exchange,
            judgement,
        }
    }

    pub async fn run_write(&self, mut probe: Probe) -> ProbeResult {
        let owner = probe
            .object
            .and_then(|i| self.corpus.objects.get(i))
            .map(|o| o.owner)
            .or(probe.baseline);
        let readback = probe.write.as_ref().and_then(|w| w.readback.clone());
        let before = match (&readback, owner) {
            (Some(rb), Some(owner)) => Some(self.read_again_on_fault(rb, owner, probe.op).await),
            _ => None,
        };
        let mut privilege_before = Vec::with_capacity(probe.privilege_reads.len());
        for (op, read) in &probe.privilege_reads {
            privilege_before.push(self.send(read, probe.actor, Credential::Normal, *op).await);
        }
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
                let again = self
                    .send(&probe.request, probe.actor, probe.credential, probe.op)
                    .await;
                exchange = with_earlier_faults(exchange, again);
            }
        }
        let after = match (&readback, owner) {
            (Some(rb), Some(owner)) => Some(self.read_again_on_fault(rb, owner, probe.op).await),
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
            if let Some(j) = disruption::owner_lost_by_write(
                &probe,
                owner,
                self.identities.get(owner).map_or("", |i| i.name.as_str()),
                self.executor.dead_reason(owner),
                &exchange,
                before,
                after,
            ) {
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
        if !probe.privilege_reads.is_empty() && exchange.is_success() {
            let mut after = Vec::with_capacity(probe.privilege_reads.len());
            for (op, read) in &probe.privilege_reads {
                after.push(self.send(read, probe.actor, Credential::Normal, *op).await);
            }
            let names: Vec<String> = probe
                .privilege_reads
                .iter()
                .map(|(op, _)| self.api.operations[*op].key())
                .collect();
            let reads: Vec<(&str, &Exchange, &Exchange)> = names
                .iter()
                .zip(&privilege_before)
                .zip(&after)
                .map(|((name, before), after)| (name.as_str(), before, after))
                .collect();
            let role = &self.identities[probe.actor].role;
            judgement = judge::judge_gained_privilege(judgement, &reads, role);
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
            if let Some(doubt) = before.as_ref().and_then(disruption::refused_write_in_doubt) {
                judgement = doubt;
                if before.as_ref().is_some_and(gone) {
                    exchange.faults.push(crate::fault::FaultKind::DataWiped);
                }
            }
        }
        let judgement = crate::fault::guard(judgement, &exchange);
        // (An owner's session lost right after the write is evidence: see
        // `owner_lost_by_write` above.)
        let (judgement, read_back_fault) =
            crate::fault::guard_read_back(judgement, [&before, &after].into_iter().flatten());
        exchange.faults.extend(read_back_fault);
        ProbeResult {
            url: self.executor.url_for(&probe.request),
            probe,
            exchange,
            judgement,
        }
    }

    /// A sign-up's verdict once its new account has logged in: its self-read, and the
    /// reads its expected role is denied (each also sent as an identity of that role,
    /// so a read open to everyone proves nothing).
    async fn confirm_new_account(
        &self,
        account: &plan::NewAccount,
        sent: &[(String, serde_json::Value)],
        answer: Judgement,
    ) -> Judgement {
        // The sign-up answered 2xx: an account exists now, whatever it turns out to be.
        if let Some(login) = crate::discover::facts::login_name(&account.identity) {
            if let Ok(mut created) = self.new_accounts.lock() {
                created.push(login);
            }
        }
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

    /// A legitimate caller's read (a baseline, an owner's read-back), sent once more when
    /// its answer is a fault (reset, timeout, garbage, cut body, 5xx, 429): the answer
    /// then carries the faults of both sendings.
    async fn read_again_on_fault(
        &self,
        request: &crate::request::RequestSpec,
        who: usize,
        op: usize,
    ) -> Exchange {
        let first = self.send(request, who, Credential::Normal, op).await;
        // A lost session was already checked and renewed (or found dead) by the executor.
        if matches!(
            crate::fault::classify(&first),
            None | Some(crate::fault::FaultKind::SessionLost)
        ) {
            return first;
        }
        let again = self.send(request, who, Credential::Normal, op).await;
        with_earlier_faults(first, again)
    }

    /// After a lost session or a reset, a refusal (403, 404) is re-checked against a
    /// positive control: the legitimate caller sends the same request again, fresh. If
    /// that fails too, the refusal proves nothing (the object or the session is gone).
    async fn refusal_in_doubt(
        &self,
        probe: &Probe,
        exchange: &Exchange,
        judgement: &judge::Judgement,
        baseline: Option<&Exchange>,
    ) -> Option<(String, bool)> {
        if judgement.verdict != Verdict::Enforced
            || !matches!(exchange.status, Some(403) | Some(404))
            || !self.executor.disrupted()
        {
            return None;
        }
        let who = probe.baseline.filter(|&b| b != probe.actor)?;
        let baseline = baseline?;
        if !baseline.is_success() {
            // The legitimate caller's own request, first sent after the data went, found
            // nothing either: no control to compare with, the refusal proves nothing. (An
            // existence-leak baseline asks for a made-up ID: its 404 is the point.)
            if probe.attack == plan::Attack::ExistenceLeak || !gone(baseline) {
                return None;
            }
            return disruption::refusal_in_doubt(exchange, &self.identities[who].name, baseline)
                .map(|doubt| (doubt, true));
        }
        // Only a caller that could make the request earlier in the run is a control.
        let request = probe.baseline_request.as_ref().unwrap_or(&probe.request);
        let control = self.send(request, who, Credential::Normal, probe.op).await;
        disruption::refusal_in_doubt(exchange, &self.identities[who].name, &control)
            .map(|doubt| (doubt, gone(&control)))
    }

    /// Shrinks the first server error of each operation found by a `malformed` probe to a
    /// minimal body (proptest's shrinking, bounded re-sends), and puts it in the result's
    /// evidence: the finding then shows that body.
    pub async fn shrink_server_error(&self, r: &mut ProbeResult) {
        let Some(case) = r.probe.malformed.clone() else {
            return;
        };
        let probe = &r.probe;
        let (minimal, steps) = plan::shrink_body(self.api, &case, |body| {
            let mut request = probe.request.clone();
            request.json = Some(body);
            async move {
                let e = self
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
}

/// The answer to a request sent again, carrying the faults the first sending met.
fn with_earlier_faults(first: Exchange, mut again: Exchange) -> Exchange {
    let mut met = first.faults;
    met.append(&mut again.faults);
    again.faults = met;
    again
}

/// A positive control (or an owner's read-back) that says the object is gone: the data
/// under the scan was wiped, rather than a session lost.
fn gone(control: &Exchange) -> bool {
    matches!(control.status, Some(404) | Some(410))
}
