//! Nothing left behind: objects that probes created on the target (an answer 201, or 2xx
//! with a `Location`, to an operation that creates a resource) are recorded as the probes
//! run and deleted at the end by the canary cleanup, as their creator (or an identity the
//! matrix allows); whatever cannot be deleted is listed in the report.

use super::canaries::delete_all;
use super::interrupts::Interrupts;
use super::ScanInput;
use crate::discover::canary::{create_operation, created_object, CanaryTag};
use crate::discover::{Object, ObjectCorpus};
use crate::engagement::Identity;
use crate::exchange::Exchange;
use crate::exec::canary::CanaryLedger;
use crate::exec::Executor;
use crate::plan::Probe;
use crate::report::ProbeObjects;
use crate::spec::Api;

/// Objects created by probes, kept as canaries of their own corpus so that the canary
/// cleanup deletes them.
#[derive(Default)]
pub(super) struct Leftovers {
    pub corpus: ObjectCorpus,
    pub created: usize,
}

impl Leftovers {
    /// Records the object `exchange` says `probe` created, if any.
    pub fn note(&mut self, api: &Api, probe: &Probe, exchange: &Exchange) {
        let op = &api.operations[probe.op];
        let made =
            exchange.status == Some(201) || (exchange.is_success() && exchange.location.is_some());
        if !made || op.is_read_only() {
            return;
        }
        let Some(resource) = api
            .resources
            .keys()
            .chain(api.collections.keys())
            .find(|r| create_operation(api, r) == Some(probe.op))
        else {
            return;
        };
        let id_fields = api.id_fields(resource);
        let Some((id, fields)) = created_object(
            exchange.json().as_ref(),
            &id_fields,
            exchange.location.as_deref(),
        ) else {
            return;
        };
        self.created += 1;
        self.corpus.add_canary(
            Object {
                resource: resource.clone(),
                id,
                owner: probe.actor,
                tenant: None,
                fields,
                parents: Vec::new(),
            },
            CanaryTag { reserved: None },
        );
    }

    /// Deletes what the probes created (a second signal abandons it), with a warning for
    /// what is left; the report's section, `None` when no probe created anything.
    pub async fn clean_up(
        &self,
        executor: &Executor,
        input: &ScanInput,
        identities: &[Identity],
        interrupts: &Interrupts,
        warnings: &mut Vec<String>,
    ) -> Option<ProbeObjects> {
        if self.created == 0 {
            return None;
        }
        let mut ledger = CanaryLedger::default();
        if delete_all(
            executor,
            input,
            identities,
            &self.corpus,
            &mut ledger,
            interrupts,
        )
        .await
        {
            warnings.push("the cleanup of objects created by probes was interrupted".into());
        }
        if !ledger.left.is_empty() {
            warnings.push(format!(
                "{} of {} object(s) created by probes could not be deleted; see the report's probe_objects section",
                ledger.left.len(),
                self.created
            ));
        }
        self.section(&ledger)
    }

    fn section(&self, ledger: &CanaryLedger) -> Option<ProbeObjects> {
        (self.created > 0).then(|| ProbeObjects {
            created: self.created,
            deleted: ledger.deleted,
            already_gone: ledger.deleted_by_probes,
            left: ledger.left.clone(),
        })
    }
}
