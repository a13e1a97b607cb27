//! One scan, end to end: log in, discover objects, plan, execute (reads concurrently,
//! writes one at a time with the owner's read-back), judge as exchanges arrive, report.
//! This is the only place that wires the stages together; verdicts are decided in judge/.
//!
//! In run order: [`discovery`] (self-facts, collections, ownership), [`canaries`]
//! (created before the probes, deleted after), [`destructive`] (what may be sent),
//! [`schedule`] (the probe loop) with [`probes`] (one probe's requests); [`dry_plan`]
//! plans without sending, and [`demo`] runs this on the embedded portal.

mod canaries;
pub mod demo;
mod destructive;
mod discovery;
mod dry_plan;
mod interrupts;
mod probes;
mod schedule;
mod shard;

pub use dry_plan::{dry_plan, DryPlan};
pub use shard::Shard;

use crate::engagement::{Engagement, Identity, Redactor};
use crate::exec::Executor;
use crate::matrix::Policy;
use crate::plan::{self, PlanInput};
use crate::report::{self, BuildInput, IdentityInfo, Report, RunInfo};
use crate::spec::Api;
use interrupts::Interrupts;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Instant;

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

    let found = discovery::discover(&executor, &input, &mut identities).await?;
    let mut corpus = found.corpus;
    let mut warnings: Vec<String> = engagement.standing_warnings();
    warnings.extend(found.warnings);
    let destructive = destructive::destructive_ops(&input.api, engagement)?;
    let run_nonce = match input.seed {
        Some(seed) => format!("{seed:x}"),
        None => format!("{:x}", rand::random::<u32>()),
    };
    let interrupts = Interrupts::listen();

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
    // Counting costs one planning pass (cheap next to any request) and buys a progress bar
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
    let probed = schedule::run_all(
        &shared,
        destructive::sendable(&plan_input, &destructive).filter(in_shard),
        planned,
        engagement.concurrency,
        input.progress,
        &interrupts,
    )
    .await;
    // Write cells no canary could serve: in the canaries section and in each cell's coverage.
    let canary_gaps = plan::canary_gaps(&plan_input);
    if let Some(ledger) = canaries.as_mut() {
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
    interrupts.stop();
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
                    auth: i.auth.kind(),
                })
                .collect(),
        },
        p95_target_ms: engagement.p95_target_ms,
        requests: shared.requests.load(Ordering::Relaxed)
            + found.requests
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
    report.identities_lost = identities_lost;
    report.canaries =
        canaries.map(|ledger| report::canary_section(ledger, engagement.max_canaries));
    let files = report::write_all(&report, &input.output_dir, &redactor)?;
    Ok(ScanOutcome { report, files })
}
