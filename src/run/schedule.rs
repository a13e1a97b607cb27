//! The probe loop: reads run concurrently (up to the engagement's `concurrency`), writes
//! one at a time once no read is in flight; results are judged as they arrive, re-judged
//! when an identity they depend on lost its login, and added to the aggregate. A first
//! Ctrl-C ends the loop and leaves the run incomplete.

use super::destructive::runs_alone;
use super::interrupts::{tally_not_run, Interrupts};
use super::leftovers::Leftovers;
use super::probes::Shared;
use super::progress::{ProbeDone, Progress};
use super::target_down::Watchdog;
use crate::discover::ObjectCorpus;
use crate::exec::Executor;
use crate::judge::{disruption, Verdict};
use crate::plan::Probe;
use crate::report::{self, Aggregate};
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use std::collections::{BTreeSet, HashMap};

/// What the loop leaves for the report.
pub(super) struct Probed {
    pub aggregate: Aggregate,
    /// False when Ctrl-C ended the loop before the plan did.
    pub complete: bool,
    /// What an interrupted loop did not send or judge, per operation and attack.
    pub not_run: Vec<crate::report::NotRun>,
    /// When the target stopped answering, if that ended the loop (seconds since the epoch).
    pub target_down_at: Option<u64>,
    /// Times the target stopped answering and came back.
    pub target_recovered: usize,
    /// Objects the probes created, to delete at the end.
    pub leftovers: Leftovers,
    /// identity → (probes judged after it lost its login, of which enforced: always 0)
    after_loss: HashMap<usize, (usize, usize)>,
}

/// How many probes the loop will judge, and how many reads it keeps in flight.
pub(super) struct Pace {
    pub planned: usize,
    pub concurrency: usize,
}

/// Sends `probes` (reads first, then writes, as the plan yields them), telling
/// `progress` about each judged one of the `planned`; every answer also goes through the
/// passive posture checks.
pub(super) async fn run_all(
    shared: &Shared<'_>,
    probes: impl Iterator<Item = Probe>,
    Pace {
        planned,
        concurrency,
    }: Pace,
    progress: Option<&dyn Progress>,
    interrupts: &Interrupts,
    destructive: &BTreeSet<usize>,
    posture: &mut crate::posture::ScanPosture,
) -> Probed {
    let executor = shared.executor;
    if let Some(p) = progress {
        p.planned(planned);
    }
    let mut done = 0usize;
    let mut aggregate = Aggregate::default();
    let mut complete = true;
    let mut violations = 0usize;
    let mut shrunk_ops = BTreeSet::new();
    let mut after_loss: HashMap<usize, (usize, usize)> = HashMap::new();
    let mut not_run = Vec::new();
    let mut watchdog = Watchdog::default();
    let mut leftovers = Leftovers::default();
    let mut target_down_at = None;
    let mut probes = probes.peekable();
    if interrupts.any() {
        complete = false;
        not_run = tally_not_run(shared.api, probes.map(|p| (p.op, p.attack)));
    } else {
        let ctrl_c = interrupts.pressed(1);
        tokio::pin!(ctrl_c);
        let mut in_flight = FuturesUnordered::new();
        // Probes sent and not yet judged, by probe ID: an interruption counts them as not run.
        let mut unjudged = HashMap::new();
        loop {
            // Keep up to `concurrency` reads in flight; the plan yields every read before
            // the first write, and writes go one at a time once no read is in flight,
            // each bracketed by the owner's read-back. Probes of destructive operations
            // come last and go alone too.
            while in_flight.len() < concurrency {
                if probes.peek().is_none_or(|p| runs_alone(p, destructive)) {
                    break;
                }
                let Some(probe) = probes.next() else { break };
                unjudged.insert(probe.id, (probe.op, probe.attack));
                in_flight.push(shared.run_read(probe).boxed());
            }
            let next = if in_flight.is_empty() {
                let Some(probe) = probes.next() else { break };
                unjudged.insert(probe.id, (probe.op, probe.attack));
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
                let rest = probes.map(|p| (p.op, p.attack));
                not_run = tally_not_run(shared.api, unjudged.into_values().chain(rest));
                break;
            };
            unjudged.remove(&result.probe.id);
            target_down_at = watchdog.observe(&result.exchange, executor).await;
            leftovers.note(shared.api, &result.probe, &result.exchange);
            if result.probe.malformed.is_some()
                && result.judgement.verdict == Verdict::ServerError
                && shrunk_ops.insert(result.probe.op)
            {
                shared.shrink_server_error(&mut result).await;
            }
            for who in involved(&result.probe, shared.corpus) {
                let Some(reason) = executor.dead_reason(who) else {
                    continue;
                };
                let entry = after_loss.entry(who).or_insert((0, 0));
                entry.0 += 1;
                result.judgement = disruption::after_lost_login(
                    result.judgement,
                    &shared.identities[who].name,
                    &reason,
                );
                if result.judgement.verdict == Verdict::Enforced {
                    entry.1 += 1;
                }
            }
            if result.judgement.verdict == Verdict::Violation {
                violations += 1;
            }
            done += 1;
            if let Some(p) = progress {
                p.probe_done(ProbeDone {
                    done,
                    total: planned,
                    attack: result.probe.attack,
                    violations,
                });
            }
            posture.observe(
                &result.probe,
                &result.exchange,
                &result.url,
                shared.api,
                shared.identities,
            );
            aggregate.add(result, shared.api, shared.identities, shared.corpus);
            if target_down_at.is_some() {
                complete = false;
                let rest = probes.map(|p| (p.op, p.attack));
                not_run = tally_not_run(shared.api, unjudged.into_values().chain(rest));
                break;
            }
        }
    }
    if let Some(p) = progress {
        p.finished();
    }
    Probed {
        aggregate,
        complete,
        not_run,
        target_down_at,
        target_recovered: watchdog.recovered,
        leftovers,
        after_loss,
    }
}

impl Probed {
    /// The identities that lost their login during the run, each with the probes it made
    /// inconclusive; a warning line for each goes to `warnings`.
    pub fn lost_identities(
        &self,
        executor: &Executor,
        warnings: &mut Vec<String>,
    ) -> Vec<report::LostIdentity> {
        let mut identities_lost = Vec::new();
        for loss in executor.losses() {
            let affected = if loss.reprovisioned {
                Vec::new()
            } else {
                self.aggregate
                    .inconclusive_mentioning(&format!("`{}`", loss.name))
            };
            let (probes_after, enforced_after) = if loss.reprovisioned {
                (0, 0)
            } else {
                self.after_loss
                    .get(&loss.identity)
                    .copied()
                    .unwrap_or((0, 0))
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
        identities_lost
    }
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
