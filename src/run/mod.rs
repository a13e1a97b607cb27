//! One scan, end to end: log in, discover objects, plan, execute (reads concurrently,
//! writes one at a time with the owner's read-back), judge as exchanges arrive, report.
//! This is the only place that wires the stages together; verdicts are decided in judge/.
//!
//! In run order: `discovery` (self-facts, collections, ownership), `canaries` (created
//! before the probes, deleted after), `destructive` (what may be sent), `schedule` (the
//! probe loop, reporting to a [`Progress`]) with `probes` (one probe's requests);
//! [`dry_plan`] plans without sending, and [`demo`] runs this on the embedded portal.

mod canaries;
pub mod demo;
mod destructive;
mod discovery;
mod dry_plan;
mod interrupts;
mod leftovers;
mod probes;
pub mod progress;
mod schedule;
mod shard;
mod target_down;

pub use dry_plan::{dry_plan, DryPlan};
pub use progress::{ProbeDone, Progress};
pub use shard::Shard;

pub use interrupts::exit_on_second_signal;

use crate::engagement::{Engagement, Redactor};
use crate::exec::canary::CanaryLedger;
use crate::exec::Executor;
use crate::matrix::Policy;
use crate::plan::{self, PlanInput};
use crate::report::{self, BuildInput, IdentityInfo, Report, RunInfo};
use crate::spec::Api;
use interrupts::Interrupts;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

pub struct ScanInput {
    pub engagement: Engagement,
    pub api: Api,
    pub policy: Policy,
    /// Where `report.json` and `report.md` go.
    pub output_dir: PathBuf,
    /// Told about each judged probe (the library draws nothing); `None`: nobody watches.
    pub progress: Option<Arc<dyn Progress>>,
    /// Fixes the write markers and the report's clock fields, for reproducible output.
    pub seed: Option<u64>,
    /// Send only this slice of the plan (`--shard i/N`); `None` = all of it.
    pub shard: Option<Shard>,
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

pub async fn scan(input: ScanInput, redactor: Redactor) -> Result<ScanOutcome, ScanError> {
    let started = Instant::now();
    let started_unix = unix_now(input.seed);
    // Listening from the start: a signal during login or discovery skips the probes.
    let interrupts = Interrupts::listen();
    let engagement = &input.engagement;
    engagement.register_secrets(&redactor);
    let mut identities = engagement.identities_with_anonymous();

    let mut executor = Executor::new(engagement, &input.api.base_path(), redactor.clone())
        .map_err(ScanError::Setup)?;
    executor.login_all(&identities).await?;
    let logins: usize = identities.iter().map(|i| i.auth.login_requests()).sum();

    let found = discovery::discover(&executor, &input, &mut identities).await?;
    let mut corpus = found.corpus;
    let mut warnings: Vec<String> = engagement.standing_warnings();
    warnings.extend(found.warnings);
    let destructive = destructive::destructive_ops(&input.api, engagement)?;
    let run_nonce = match input.seed {
        Some(seed) => format!("{seed:x}"),
        None => format!("{:x}", rand::random::<u32>()),
    };

    // Canaries: with mutations, writes and deletes go only to objects created here.
    let mut canaries = canaries::create(
        &executor,
        &input,
        &identities,
        &run_nonce,
        &mut corpus,
        &mut warnings,
        &interrupts,
    )
    .await;
    let plan_input = PlanInput {
        api: &input.api,
        policy: &input.policy,
        identities: &identities,
        corpus: &corpus,
        allow_mutations: engagement.allow_mutations,
        run_nonce,
        tokens: found.tokens,
    };
    // Counting costs one planning pass (cheap next to any request) and buys progress
    // with a real end.
    let shard = input.shard;
    let in_shard = move |p: &plan::Probe| shard.is_none_or(|s| s.contains(p));
    let planned = destructive::sendable(&plan_input, &destructive)
        .filter(in_shard)
        .count();
    let shared = probes::Shared::new(
        &input.api,
        &identities,
        &corpus,
        &executor,
        &engagement.detectors,
    );
    let mut posture = crate::posture::ScanPosture::new(engagement, redactor.clone());
    let probed = schedule::run_all(
        &shared,
        destructive::sendable(&plan_input, &destructive).filter(in_shard),
        schedule::Pace {
            planned,
            concurrency: engagement.concurrency,
        },
        input.progress.as_deref(),
        &interrupts,
        &destructive,
        &mut posture,
    )
    .await;
    // Write cells no canary could serve: in the canaries section and in each cell's coverage.
    let canary_gaps = plan::canary_gaps(&plan_input);
    let stopped_at = unix_now(input.seed);
    let stopped = |stages_not_run: Vec<String>| {
        (!probed.complete).then(|| report::Stopped {
            reason: match probed.target_down_at {
                Some(_) => "target-down".into(),
                None => "interrupted".into(),
            },
            at_unix: match (probed.target_down_at, input.seed) {
                (_, Some(_)) => 0,
                (Some(at), None) => at,
                (None, None) => stopped_at,
            },
            probes_planned: planned,
            probes_not_run: probed.not_run.iter().map(|n| n.probes).sum(),
            not_run: probed.not_run.clone(),
            stages_not_run,
        })
    };
    if let Some(at) = probed.target_down_at {
        warnings.push(format!(
            "the target stopped answering (first failure at {at} s since the epoch) and its \
             positive controls did not come back: the scan stopped; the report is partial"
        ));
    }
    if let (cut @ 1.., cap) = executor.truncated_bodies() {
        warnings.push(format!(
            "{cut} answer(s) were larger than max_body_bytes ({cap} bytes): each was cut there \
             and judged on what was read (raise `max_body_bytes` to read more)"
        ));
    }
    let new_accounts = shared
        .new_accounts
        .lock()
        .map(|accounts| accounts.clone())
        .unwrap_or_default();
    if !new_accounts.is_empty() {
        warnings.push(format!(
            "sign-up probes created {} account(s) that rolegrid does not delete: {} (remove \
             them, or reset the target)",
            new_accounts.len(),
            new_accounts.join(", ")
        ));
    }
    if probed.target_recovered > 0 {
        warnings.push(format!(
            "the target stopped answering {} time(s) and came back; the probes sent meanwhile \
             are inconclusive",
            probed.target_recovered
        ));
    }
    let finish = |mut warnings: Vec<String>, canaries: Option<&CanaryLedger>, stopped| {
        for redirect in executor.offsite_redirects() {
            warnings.push(format!("redirect off the target: {redirect}"));
        }
        if executor.relogins() > 0 {
            warnings.push(format!(
                "sessions were lost and renewed {} time(s) during the scan",
                executor.relogins()
            ));
        }
        let identities_lost = probed.lost_identities(&executor, &mut warnings);
        // Whatever left probes undecided (a wiped target, a canary gone, a lost login), the
        // reader gets the reasons and the probes, not just a count.
        for (reason, count, ids) in probed.aggregate.inconclusive_by_reason(10) {
            let ids: Vec<String> = ids.iter().map(|id| format!("#{id}")).collect();
            warnings.push(format!(
                "{count} probe(s) inconclusive: {reason} ({}{})",
                ids.join(", "),
                if count > ids.len() { ", …" } else { "" }
            ));
        }
        let mut report = report::build(BuildInput {
            api: &input.api,
            policy: &input.policy,
            identities: &identities,
            corpus: &corpus,
            aggregate: &probed.aggregate,
            latency: executor.latency.summaries(),
            histograms: executor.latency.histograms(),
            run: RunInfo {
                target: engagement.target.to_string(),
                spec: engagement.spec.display().to_string(),
                matrix: engagement.matrix.display().to_string(),
                engagement: engagement.source.display().to_string(),
                started_unix,
                allow_mutations: engagement.allow_mutations,
                complete: probed.complete,
                shard: input.shard.map(|s| s.to_string()),
                identities: identities
                    .iter()
                    .map(|i| IdentityInfo {
                        name: i.name.clone(),
                        role: i.role.clone(),
                        tenant: i.tenant.clone(),
                        auth: i.auth.kind().into(),
                    })
                    .collect(),
            },
            p95_target_ms: engagement.p95_target_ms,
            requests: shared.requests.load(Ordering::Relaxed)
                + found.requests
                + logins
                + canaries.map_or(0, |c| c.requests),
            wall_seconds: if input.seed.is_some() {
                0.0
            } else {
                started.elapsed().as_secs_f64()
            },
            warnings,
            extra_coverage: Some(&canary_gaps),
            redactor: &redactor,
        });
        report.identities_lost = identities_lost;
        report.canaries = canaries.cloned();
        report.stopped = stopped;
        report
    };
    if let Some(ledger) = canaries.as_mut() {
        if !probed.complete {
            // Written before the cleanup, so that a second signal (which ends the process at
            // once) leaves a valid partial report behind.
            let partial = finish(
                warnings.clone(),
                Some(ledger),
                stopped(vec!["canary cleanup".into()]),
            );
            report::write_all(&partial, &input.output_dir, &redactor)?;
        }
        canaries::clean_up(
            &executor,
            &input,
            &identities,
            &corpus,
            ledger,
            &canary_gaps,
            &mut warnings,
            &interrupts,
        )
        .await;
    }
    let probe_objects = probed
        .leftovers
        .clean_up(&executor, &input, &identities, &interrupts, &mut warnings)
        .await;
    // The posture checks' own bounded requests come after the canaries are gone.
    let (weaknesses, posture_requests) = match interrupts.any() {
        false => {
            posture
                .finish(
                    &executor,
                    &input.api,
                    &input.policy,
                    &identities,
                    &mut warnings,
                )
                .await
        }
        true => (Vec::new(), 0),
    };
    interrupts.stop();
    let mut report = finish(warnings, canaries.as_ref(), stopped(Vec::new()));
    report.probe_objects = probe_objects;
    report.posture = weaknesses;
    report.stats.requests += posture_requests;
    let files = report::write_all(&report, &input.output_dir, &redactor)?;
    Ok(ScanOutcome { report, files })
}

/// Seconds since the Unix epoch; 0 in deterministic (`--seed`) runs.
fn unix_now(seed: Option<u64>) -> u64 {
    match seed {
        Some(_) => 0,
        None => crate::exec::unix_now(),
    }
}
