//! Canary objects around the probes: with mutations allowed, the objects writes and
//! deletes aim at are created here before the probes and deleted after them; what could
//! not be created, served or deleted becomes a warning and the report's canaries section.

use super::interrupts::Interrupts;
use super::ScanInput;
use crate::discover::{self, ObjectCorpus};
use crate::engagement::Identity;
use crate::exec::canary::{self, CanaryLedger};
use crate::exec::Executor;
use std::collections::{BTreeMap, BTreeSet};

/// Creates the canaries (a first Ctrl-C stops creating) and, with
/// `write_discovered_objects`, lets writes aim at discovered objects too. `None` without
/// `allow_mutations`.
pub(super) async fn create(
    executor: &Executor,
    input: &ScanInput,
    identities: &[Identity],
    run_nonce: &str,
    corpus: &mut ObjectCorpus,
    warnings: &mut Vec<String>,
    interrupts: &Interrupts,
) -> Option<CanaryLedger> {
    let engagement = &input.engagement;
    if !engagement.allow_mutations {
        return None;
    }
    let orders = discover::canary::plan(
        &input.api,
        &input.policy,
        identities,
        engagement.max_canaries,
    );
    if orders.over_cap > 0 {
        warnings.push(format!(
            "the canary cap ({}) was reached: {} more canary object(s) were not created, \
             and the writes that needed them were not sent (raise `max_canaries`)",
            engagement.max_canaries, orders.over_cap
        ));
    }
    let mut ledger = CanaryLedger {
        cap: engagement.max_canaries,
        ..CanaryLedger::default()
    };
    tokio::select! {
        _ = canary::create_all(
            executor,
            &input.api,
            identities,
            &orders,
            run_nonce,
            corpus,
            &mut ledger,
        ) => {}
        _ = interrupts.pressed(1) => {}
    }
    if engagement.write_discovered_objects {
        corpus.set_write_discovered(true);
        let written: BTreeSet<&str> = input
            .api
            .operations
            .iter()
            .filter(|o| !o.is_read_only() && o.method != crate::spec::Method::Delete)
            .filter_map(|o| o.id_param().map(|(_, resource)| resource))
            .collect();
        let resources: BTreeSet<&str> = (0..corpus.objects.len())
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
    Some(ledger)
}

/// Deletes the canaries (a second Ctrl-C abandons it) and records the write cells no
/// canary could serve (`canary_gaps`: (operation, role) → reason) in the ledger.
#[allow(clippy::too_many_arguments)]
pub(super) async fn clean_up(
    executor: &Executor,
    input: &ScanInput,
    identities: &[Identity],
    corpus: &ObjectCorpus,
    ledger: &mut CanaryLedger,
    canary_gaps: &BTreeMap<(usize, String), String>,
    warnings: &mut Vec<String>,
    interrupts: &Interrupts,
) {
    if delete_all(executor, input, identities, corpus, ledger, interrupts).await {
        warnings.push("the canary cleanup was interrupted (Ctrl-C twice)".into());
    }
    ledger.uncovered = canary_gaps
        .iter()
        .map(|((op, role), reason)| canary::UncoveredCell {
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

/// Deletes every canary of `corpus` (the scan's, or the objects probes created) unless a
/// second signal comes first; true when it did.
pub(super) async fn delete_all(
    executor: &Executor,
    input: &ScanInput,
    identities: &[Identity],
    corpus: &ObjectCorpus,
    ledger: &mut CanaryLedger,
    interrupts: &Interrupts,
) -> bool {
    tokio::select! {
        _ = canary::cleanup(
            executor,
            &input.api,
            &input.policy,
            identities,
            corpus,
            ledger,
        ) => false,
        _ = interrupts.pressed(2) => true,
    }
}
