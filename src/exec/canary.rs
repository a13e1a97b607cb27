//! Canary objects (I/O part): creating the canaries `discover::canary::plan` asks for,
//! one request at a time as their creators, and deleting the survivors at the end of a
//! scan (complete or interrupted) through the spec's delete operation, as their owners.
//! What became of them is kept in a [`CanaryLedger`], which is also the report's section.

use super::Executor;
use crate::discover::canary::{self, CanaryPlan};
use crate::discover::{tenant_of, Object, ObjectCorpus};
use crate::engagement::Identity;
use crate::matrix::{Access, Policy};
use crate::request::{build_request, Credential};
use crate::spec::Api;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// The whole cleanup gives up after this long; what is left is reported, not retried.
pub const CLEANUP_BUDGET: Duration = Duration::from_secs(60);

/// What became of the canaries: filled in by creation and cleanup, and written as it is
/// as report.json's `canaries` section (and read back by `rolegrid report` and `merge`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CanaryLedger {
    pub created: usize,
    /// Deleted by their owner (or an identity the matrix allows) during cleanup.
    pub deleted: usize,
    /// Already gone at cleanup: a probe deleted them (a finding, not a cleanup failure).
    pub deleted_by_probes: usize,
    /// The engagement's `max_canaries`, and how many canaries it kept from being created.
    pub cap: usize,
    pub over_cap: usize,
    /// Creates the target refused or answered without a usable ID.
    pub failed: Vec<CanaryFailure>,
    /// Canaries still on the target after the cleanup.
    pub left: Vec<CanaryLeft>,
    /// Write and delete cells left unattacked for want of a canary, with the reason.
    pub uncovered: Vec<UncoveredCell>,
    /// Requests sent to create and delete canaries: the run adds them to `stats.requests`,
    /// so the section does not repeat them (nor read them back).
    #[serde(skip)]
    pub requests: usize,
}

/// A canary create the target refused or answered without a usable ID.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CanaryFailure {
    pub resource: String,
    pub creator: String,
    pub reason: String,
}

/// A canary (or an object a probe created) still on the target after the cleanup.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CanaryLeft {
    pub resource: String,
    pub id: String,
    pub owner: String,
    pub reason: String,
}

/// A write or delete cell left unattacked for want of a canary.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UncoveredCell {
    pub operation: String,
    pub role: String,
    pub reason: String,
}

/// Creates the planned canaries and adds them to `corpus`; resources left without any get
/// a gap reason the planner reports for the cells it could not attack.
pub async fn create_all(
    executor: &Executor,
    api: &Api,
    identities: &[Identity],
    plan: &CanaryPlan,
    run_nonce: &str,
    corpus: &mut ObjectCorpus,
    ledger: &mut CanaryLedger,
) {
    for (resource, reason) in &plan.gaps {
        corpus.set_canary_gap(resource, reason.clone());
    }
    ledger.over_cap = plan.over_cap;
    let mut refused: Vec<(String, String)> = Vec::new();
    for (n, order) in plan.orders.iter().enumerate() {
        let op = &api.operations[order.create_op];
        let Some((mut request, parents)) = canary::create_request(api, order, corpus, identities)
        else {
            refused.push((
                order.resource.clone(),
                "its path could not be filled".into(),
            ));
            continue;
        };
        let label = canary::label(run_nonce, n);
        request.json = op
            .json_body()
            .and_then(|m| m.schema.as_ref())
            .map(|schema| canary::body(api, schema, &label));
        if let Some(body) = request.json.as_mut() {
            crate::discover::use_seen_values(body, &label, &corpus.field_values, 0);
            // The creator's own user and team IDs, not made-up ones: a server files the
            // object under them or refuses a foreign team. Names and emails stay labels:
            // in a create they often describe the new object (a new user's username).
            let creator = &identities[order.creator];
            let own_ids = api.id_fields(&order.resource);
            crate::discover::use_own_values(body, &label, |field| {
                let names_other = (field.ends_with("_id") || field.ends_with("Id"))
                    && !own_ids.iter().any(|f| f == field);
                names_other.then(|| creator.attributes.get(field)).flatten()
            });
            canary::use_own_references(api, order, body, corpus, creator);
        }
        let answer = executor
            .send(&request, order.creator, Credential::Normal, &op.key())
            .await;
        ledger.requests += 1;
        let id_fields = api.id_fields(&order.resource);
        let created = answer
            .is_success()
            .then(|| {
                canary::created_object(
                    answer.json().as_ref(),
                    &id_fields,
                    answer.location.as_deref(),
                )
            })
            .flatten();
        let Some((id, fields)) = created else {
            let reason = match (answer.status, &answer.error) {
                (Some(s), _) if !(200..300).contains(&s) => format!("canary creation failed: {s}"),
                (Some(s), _) => format!("canary creation answered {s} without an ID"),
                (None, Some(e)) => format!("canary creation failed: {e}"),
                (None, None) => "canary creation failed: no answer".into(),
            };
            ledger.failed.push(CanaryFailure {
                resource: order.resource.clone(),
                creator: identities[order.creator].name.clone(),
                reason: reason.clone(),
            });
            refused.push((order.resource.clone(), reason));
            continue;
        };
        let tenant = tenant_of(&identities[order.creator], &fields);
        corpus.add_canary(
            Object {
                resource: order.resource.clone(),
                id,
                owner: order.creator,
                tenant,
                fields,
                parents,
            },
            order.tag,
        );
        ledger.created += 1;
    }
    for (resource, reason) in refused {
        if corpus.canaries().all(|(_, o, _)| o.resource != resource) {
            corpus.set_canary_gap(&resource, reason);
        }
    }
}

/// Deletes every canary in `corpus`, each by its owner, else by an identity the matrix
/// gives `allow` on the delete (a flawed write may have moved it out of its owner's
/// reach). A 404/410 from the widest caller means a probe already deleted it. Bounded by
/// [`CLEANUP_BUDGET`] overall.
pub async fn cleanup(
    executor: &Executor,
    api: &Api,
    policy: &Policy,
    identities: &[Identity],
    corpus: &ObjectCorpus,
    ledger: &mut CanaryLedger,
) {
    let started = Instant::now();
    for (_, object, _) in corpus.canaries() {
        let left = |reason: String| CanaryLeft {
            resource: object.resource.clone(),
            id: canary::id_text(&object.id),
            owner: identities[object.owner].name.clone(),
            reason,
        };
        let Some(op) = canary::delete_operation(api, &object.resource) else {
            ledger
                .left
                .push(left(format!("no delete operation for {}", object.resource)));
            continue;
        };
        let remaining = CLEANUP_BUDGET.saturating_sub(started.elapsed());
        if remaining.is_zero() {
            ledger.left.push(left("cleanup ran out of time".into()));
            continue;
        }
        let outcome = tokio::time::timeout(
            remaining,
            delete_one(
                executor,
                api,
                policy,
                identities,
                op,
                object,
                &mut ledger.requests,
            ),
        )
        .await;
        match outcome {
            Ok(Deleted::ByCleanup) => ledger.deleted += 1,
            Ok(Deleted::AlreadyGone) => ledger.deleted_by_probes += 1,
            Ok(Deleted::No(reason)) => ledger.left.push(left(reason)),
            Err(_) => ledger.left.push(left("cleanup ran out of time".into())),
        }
    }
}

enum Deleted {
    ByCleanup,
    AlreadyGone,
    No(String),
}

async fn delete_one(
    executor: &Executor,
    api: &Api,
    policy: &Policy,
    identities: &[Identity],
    op: usize,
    object: &Object,
    sent: &mut usize,
) -> Deleted {
    let operation = &api.operations[op];
    let Some(request) = build_request(
        api,
        op,
        operation.id_param().map(|(p, _)| (p, &object.id)),
        "",
    ) else {
        return Deleted::No(format!("{} could not be filled", operation.key()));
    };
    let widest = (0..identities.len()).find(|&i| {
        i != object.owner && policy.access(op, &identities[i].role) == Some(Access::Allow)
    });
    let mut last = String::new();
    for who in std::iter::once(object.owner).chain(widest) {
        let answer = executor
            .send(&request, who, Credential::Normal, &operation.key())
            .await;
        *sent += 1;
        match answer.status {
            Some(s) if (200..300).contains(&s) => return Deleted::ByCleanup,
            Some(404 | 410) if who != object.owner || widest.is_none() => {
                return Deleted::AlreadyGone
            }
            Some(s) => {
                last = format!(
                    "{} answered {s} to `{}`",
                    operation.key(),
                    identities[who].name
                )
            }
            None => {
                last = format!(
                    "{} failed for `{}`: {}",
                    operation.key(),
                    identities[who].name,
                    answer.error.unwrap_or_default()
                )
            }
        }
    }
    Deleted::No(last)
}
