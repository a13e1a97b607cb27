//! `scan --dry-run`: the plan from the inputs alone, nothing sent, and its text.

use super::destructive::{destructive_ops, sendable};
use super::ScanError;
use crate::discover;
use crate::engagement::{Engagement, Redactor};
use crate::matrix::Policy;
use crate::plan::PlanInput;
use crate::request::Credential;
use crate::spec::Api;

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
    /// The slice planned (`--shard i/N`); `None` = the whole plan.
    pub shard: Option<super::Shard>,
}

/// Plans a scan without sending anything: discovery is skipped, so the object corpus holds
/// only the engagement's seed objects and token facts are unknown (no forgeries that need
/// a live token are planned). With `shard`, only that slice's probes, as a scan with the
/// same `--shard` sends them. Request lines are scrubbed by `redactor`.
pub fn dry_plan(
    engagement: &Engagement,
    api: &Api,
    policy: &Policy,
    shard: Option<super::Shard>,
    redactor: &Redactor,
) -> Result<DryPlan, ScanError> {
    engagement.register_secrets(redactor);
    let identities = engagement.identities_with_anonymous();
    let mut owner_values = engagement.owner_values.clone();
    owner_values.resize(identities.len(), Vec::new());
    let ownership = super::discovery::ownership(engagement, owner_values, Vec::new());
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
    let in_shard = |p: &crate::plan::Probe| shard.is_none_or(|s| s.contains(p));
    for probe in sendable(&plan_input, &destructive).filter(in_shard) {
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
        discovery_requests: discover::discovery_requests(
            api,
            policy,
            &identities,
            &discover::context_values(api, &identities),
        )
        .len(),
        seed_objects: corpus.objects.len(),
        per_attack,
        per_operation: api
            .operations
            .iter()
            .zip(per_op)
            .map(|(op, n)| (op.key(), n))
            .collect(),
        requests,
        shard,
    })
}

impl DryPlan {
    /// The text `scan --dry-run` prints.
    pub fn render(&self) -> String {
        let total: usize = self.per_attack.values().sum();
        let slice = self
            .shard
            .map(|s| format!(" in shard {s} (operations dealt round robin)"))
            .unwrap_or_default();
        let mut out = format!(
            "dry run: nothing was sent\nplan: {} operations × {} identities ({}) → {total} probes{slice}\n",
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
