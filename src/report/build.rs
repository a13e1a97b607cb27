//! Turns probe results into the report model: grouped findings, matrix coverage, latency.

use super::model::*;
use crate::discover::ObjectCorpus;
use crate::engagement::{Auth, Identity, KeyLocation, SessionUse};
use crate::exchange::Exchange;
use crate::exec::LatencySummary;
use crate::judge::{Judgement, Verdict};
use crate::matrix::Policy;
use crate::plan::{Attack, Probe};
use crate::request::{ClaimSwap, Credential, Forgery, RequestSpec};
use crate::spec::Api;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

pub struct ProbeResult {
    pub probe: Probe,
    pub url: String,
    pub exchange: Exchange,
    pub judgement: Judgement,
}

/// Everything the report needs from the probe results, gathered as they arrive so
/// that no result is kept after it is counted: only the first exchange of each finding
/// instance keeps its body.
#[derive(Default)]
pub struct Aggregate {
    verdicts: BTreeMap<Verdict, usize>,
    probes: usize,
    errors: usize,
    /// (operation key, attack, location) → the finding's instances.
    groups: BTreeMap<GroupKey, Group>,
    /// (operation, role) → (probes, violations, server errors)
    cells: BTreeMap<(usize, String), (usize, usize, usize)>,
    /// (probe id, reason) of inconclusive probes, for the warnings; bounded.
    inconclusive: Vec<(usize, String)>,
    /// Faults of the target met by probes, per kind.
    faults: crate::fault::FaultTally,
}

/// (operation key, attack, location): one root cause.
type GroupKey = (String, String, String);

#[derive(Default)]
struct Group {
    /// (actor, victim identity or "") → what that pair showed.
    instances: BTreeMap<(usize, String), InstanceAcc>,
    /// Instances beyond [`MAX_LISTED`], counted but not kept.
    more_instances: usize,
    probes: usize,
}

struct InstanceAcc {
    first: ProbeResult,
    worst: Verdict,
    leaked: BTreeSet<usize>,
    variants: Vec<String>,
    probes: usize,
    exchanges: Vec<ExchangeInfo>,
    /// Exchanges beyond [`MAX_LISTED`], counted but not listed.
    more: usize,
}

const MAX_INCONCLUSIVE_KEPT: usize = 1000;

/// Verdicts from worst to mildest: a finding takes its worst instance's.
fn verdict_rank(verdict: Verdict) -> u8 {
    match verdict {
        Verdict::Violation => 0,
        Verdict::ServerError => 1,
        Verdict::Suspicious => 2,
        Verdict::OverRestricted => 3,
        Verdict::Inconclusive | Verdict::Enforced => 4,
    }
}

/// Where a probe found its flaw: the part of the request or of the server that let it
/// through. Probes of one attack on one operation with the same location are one finding
/// (the same guard is missing), whoever sent them and however the ID was spelled.
pub fn location(
    attack: Attack,
    verdict: Verdict,
    credential: Credential,
    detail: &str,
    status: Option<u16>,
    body_sha256: &str,
) -> String {
    // Identical 5xx answers are one crash, whatever input provoked them.
    if verdict == Verdict::ServerError {
        let status = status.map_or_else(|| "5xx".to_string(), |s| s.to_string());
        return format!(
            "{status} answer {}",
            &body_sha256[..body_sha256.len().min(8)]
        );
    }
    // The probe detail up to its variant: `path parameter `id`, ID with leading zeros`.
    let cut = |text: &str| -> String {
        let end = [", ", ": ", " twice"]
            .iter()
            .filter_map(|sep| text.find(sep))
            .min()
            .unwrap_or(text.len());
        text[..end].to_string()
    };
    match attack {
        Attack::NoAuth => "no credential".into(),
        Attack::BadAuth => match credential {
            Credential::Forged(Forgery::WeakSecret { .. }) => {
                "JWT signed with a weak secret".into()
            }
            _ => "token verification".into(),
        },
        Attack::Escalation => "function-level check".into(),
        Attack::ListLeak => "collection filter".into(),
        Attack::MassAssignment => "writable properties".into(),
        Attack::Malformed => "request validation".into(),
        Attack::TenantSwap => match detail.strip_prefix('`').and_then(|d| d.split_once(':')) {
            Some((header, _)) => format!("header `{header}`"),
            None => cut(detail),
        },
        Attack::MethodOverride | Attack::VerbSwap => detail.to_string(),
        Attack::IdSwap | Attack::ParamPollution | Attack::ExistenceLeak => cut(detail),
    }
}

/// The stable ID of a finding: the same flaw is named the same in every run.
pub fn finding_id(operation: &str, attack: &str, location: &str) -> String {
    let digest = Sha256::digest(format!("{operation}\n{attack}\n{location}"));
    let hex = format!("{digest:x}");
    format!("RG-{}", &hex[..8])
}

impl Aggregate {
    pub fn add(
        &mut self,
        result: ProbeResult,
        api: &Api,
        identities: &[Identity],
        corpus: &ObjectCorpus,
    ) {
        let verdict = result.judgement.verdict;
        self.faults.add(result.probe.id, &result.exchange, verdict);
        self.probes += 1;
        *self.verdicts.entry(verdict).or_default() += 1;
        if result.exchange.status.is_none() {
            self.errors += 1;
        }
        let p = &result.probe;
        let cell = self
            .cells
            .entry((p.op, identities[p.actor].role.clone()))
            .or_default();
        cell.0 += 1;
        if verdict == Verdict::Violation {
            cell.1 += 1;
        }
        if verdict == Verdict::ServerError {
            cell.2 += 1;
        }
        match verdict {
            Verdict::Enforced => return,
            Verdict::Inconclusive => {
                if self.inconclusive.len() < MAX_INCONCLUSIVE_KEPT {
                    let reason = result
                        .exchange
                        .error
                        .clone()
                        .unwrap_or_else(|| result.judgement.reason.clone());
                    self.inconclusive.push((p.id, reason));
                }
                return;
            }
            _ => {}
        }
        let victim = victim_of(corpus, identities, p)
            .map(|v| v.identity)
            .unwrap_or_default();
        let body_sha = format!("{:x}", Sha256::digest(&result.exchange.body));
        // A 5xx is keyed by its answer alone: the same crash is one finding whichever
        // attack provoked it (the finding takes the attack of its earliest probe).
        let attack = if verdict == Verdict::ServerError {
            String::new()
        } else {
            p.attack.as_str().to_string()
        };
        let key = (
            api.operations[p.op].key(),
            attack,
            location(
                p.attack,
                verdict,
                p.credential,
                &p.detail,
                result.exchange.status,
                &body_sha,
            ),
        );
        let info = ExchangeInfo {
            method: p.request.method.to_string(),
            url: result.url.clone(),
            status: result.exchange.status,
            detail: p.detail.clone(),
            reason: result.judgement.reason.clone(),
        };
        let leaked: Vec<usize> = result.judgement.leaked.clone();
        let group = self.groups.entry(key).or_default();
        group.probes += 1;
        let pair = (p.actor, victim);
        if !group.instances.contains_key(&pair) && group.instances.len() >= MAX_LISTED {
            group.more_instances += 1;
            return;
        }
        match group.instances.get_mut(&pair) {
            Some(instance) => {
                instance.probes += 1;
                instance.leaked.extend(leaked);
                if verdict_rank(verdict) < verdict_rank(instance.worst) {
                    instance.worst = verdict;
                }
                if !instance.variants.contains(&info.detail) {
                    instance.variants.push(info.detail.clone());
                }
                if instance.exchanges.len() < MAX_LISTED {
                    instance.exchanges.push(info);
                } else {
                    instance.more += 1;
                }
                // The instance shows the earliest probe of the plan of its worst
                // verdict, whatever the arrival order: the same one every run, and a
                // plain ID swap before its variants.
                let first = &instance.first;
                let better = (verdict_rank(verdict), result.probe.id)
                    < (verdict_rank(first.judgement.verdict), first.probe.id);
                if better {
                    instance.first = result;
                }
            }
            None => {
                group.instances.insert(
                    pair,
                    InstanceAcc {
                        first: result,
                        worst: verdict,
                        leaked: leaked.into_iter().collect(),
                        variants: vec![info.detail.clone()],
                        probes: 1,
                        exchanges: vec![info],
                        more: 0,
                    },
                );
            }
        }
    }

    /// The inconclusive probes grouped by reason (most frequent first, at most
    /// `max_reasons`), each with its count and up to 20 probe ids: a reader sees which
    /// probes a wiped target or a lost login left undecided, and why.
    pub fn inconclusive_by_reason(&self, max_reasons: usize) -> Vec<(String, usize, Vec<usize>)> {
        let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (id, reason) in &self.inconclusive {
            groups.entry(reason.as_str()).or_default().push(*id);
        }
        let mut groups: Vec<(String, usize, Vec<usize>)> = groups
            .into_iter()
            .map(|(reason, mut ids)| {
                ids.sort_unstable();
                let count = ids.len();
                ids.truncate(20);
                (reason.to_string(), count, ids)
            })
            .collect();
        groups.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        groups.truncate(max_reasons);
        groups
    }

    /// Inconclusive probes whose reason mentions `needle`, by id.
    pub fn inconclusive_mentioning(&self, needle: &str) -> Vec<usize> {
        self.inconclusive
            .iter()
            .filter(|(_, reason)| reason.contains(needle))
            .map(|(id, _)| *id)
            .collect()
    }

    fn count(&self, verdict: Verdict) -> usize {
        self.verdicts.get(&verdict).copied().unwrap_or(0)
    }
}

pub struct BuildInput<'a> {
    pub api: &'a Api,
    pub policy: &'a Policy,
    pub identities: &'a [Identity],
    pub corpus: &'a ObjectCorpus,
    pub aggregate: &'a Aggregate,
    pub latency: Vec<LatencySummary>,
    pub histograms: Vec<crate::exec::HistogramSummary>,
    pub run: RunInfo,
    pub p95_target_ms: u64,
    pub requests: usize,
    pub wall_seconds: f64,
    pub warnings: Vec<String>,
    /// Reasons other stages know for cells they could not test (see `coverage.rs`).
    pub extra_coverage: Option<&'a BTreeMap<(usize, String), String>>,
    /// Scrubs body excerpts before they are cut (`Redactor::excerpt`).
    pub redactor: &'a crate::engagement::Redactor,
}

const EXCERPT_BYTES: usize = 400;

pub fn build(input: BuildInput<'_>) -> Report {
    let agg = input.aggregate;
    let stats = Stats {
        findings: 0,
        findings_by_severity: SeverityCounts::default(),
        probes: agg.probes,
        violations: agg.count(Verdict::Violation),
        suspicious: agg.count(Verdict::Suspicious),
        over_restricted: agg.count(Verdict::OverRestricted),
        server_errors: agg.count(Verdict::ServerError),
        inconclusive: agg.count(Verdict::Inconclusive),
        enforced: agg.count(Verdict::Enforced),
        errors: agg.errors,
        requests: input.requests,
        objects: input.corpus.objects.len(),
        wall_seconds: (input.wall_seconds * 1000.0).round() / 1000.0,
    };
    let findings = findings(&input);
    let mut stats = stats;
    stats.findings = findings.len();
    for f in &findings {
        stats.findings_by_severity.add(f.severity);
    }

    let matrix = matrix_cells(&input);
    let operations: Vec<OperationLatency> = input
        .latency
        .iter()
        .map(|l| OperationLatency {
            operation: l.operation.clone(),
            percentiles: l.percentiles,
            pass: l.percentiles.p95_ms <= input.p95_target_ms as f64,
        })
        .collect();
    Report {
        schema_version: SCHEMA_VERSION.to_string(),
        tool: Tool {
            name: "rolegrid".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        run: input.run.clone(),
        stats,
        findings,
        matrix,
        latency: Latency {
            p95_target_ms: input.p95_target_ms,
            pass: operations.iter().all(|o| o.pass),
            operations,
            histograms: input.histograms.iter().cloned().map(Into::into).collect(),
        },
        warnings: input.warnings.clone(),
        identities_lost: Vec::new(),
        canaries: None,
        probe_objects: None,
        stopped: None,
        posture: Vec::new(),
        baseline: None,
        faults: agg.faults.section(),
    }
}

fn party(identity: &Identity) -> Party {
    Party {
        identity: identity.name.clone(),
        role: identity.role.clone(),
        tenant: identity.tenant.clone(),
    }
}

/// The identity whose data is at stake: the owner of the object, else nobody.
fn victim_of(corpus: &ObjectCorpus, identities: &[Identity], probe: &Probe) -> Option<Party> {
    let object = corpus.objects.get(probe.object?)?;
    (object.owner != probe.actor).then(|| party(&identities[object.owner]))
}

fn relation(input: &BuildInput<'_>, probe: &Probe, leaked: &[usize]) -> &'static str {
    let actor_tenant = &input.identities[probe.actor].tenant;
    let objects: Vec<usize> = probe
        .object
        .into_iter()
        .chain(leaked.iter().copied())
        .collect();
    let mut relation = "none";
    for i in objects {
        let Some(o) = input.corpus.objects.get(i) else {
            continue;
        };
        if o.owner == probe.actor {
            relation = if relation == "none" { "own" } else { relation };
        } else if o.tenant.is_some() && o.tenant != *actor_tenant {
            return "cross-tenant";
        } else {
            relation = "same-tenant";
        }
    }
    relation
}

/// The findings, one per (operation, attack, location), worst first; `bad-auth` on an
/// operation that `no-auth` shows open is folded into the `no-auth` finding (with no
/// check of credentials at all, a forged one passing says nothing more).
fn findings(input: &BuildInput<'_>) -> Vec<Finding> {
    let agg = input.aggregate;
    let open_without_credentials: BTreeSet<&str> = agg
        .groups
        .iter()
        .filter(|((_, attack, _), g)| {
            attack == Attack::NoAuth.as_str()
                && g.instances.values().any(|i| i.worst == Verdict::Violation)
        })
        .map(|((op, _, _), _)| op.as_str())
        .collect();
    let mut merged: BTreeMap<GroupKey, Vec<&InstanceAcc>> = BTreeMap::new();
    // (probes, instances beyond the listed ones) per merged key.
    let mut extra: BTreeMap<GroupKey, (usize, usize)> = BTreeMap::new();
    for ((op, attack, location), group) in &agg.groups {
        let key = if attack == Attack::BadAuth.as_str()
            && open_without_credentials.contains(op.as_str())
        {
            agg.groups
                .keys()
                .find(|(o, a, _)| o == op && a == Attack::NoAuth.as_str())
                .cloned()
                .unwrap_or_else(|| (op.clone(), attack.clone(), location.clone()))
        } else {
            (op.clone(), attack.clone(), location.clone())
        };
        let entry = extra.entry(key.clone()).or_default();
        entry.0 += group.probes;
        entry.1 += group.more_instances;
        let list = merged.entry(key).or_default();
        list.extend(group.instances.values());
    }
    let mut out: Vec<Finding> = merged
        .into_iter()
        .map(|((operation, attack, location), accs)| {
            let (probes, more) = extra
                .get(&(operation.clone(), attack.clone(), location.clone()))
                .copied()
                .unwrap_or((0, 0));
            let attack = if attack.is_empty() {
                accs.iter()
                    .min_by_key(|a| a.first.probe.id)
                    .map_or(attack, |a| a.first.probe.attack.as_str().to_string())
            } else {
                attack
            };
            finding(input, operation, attack, location, &accs, probes, more)
        })
        .collect();
    sort_findings(&mut out);
    out
}

/// Worst first: by severity, then verdict, operation, attack and location.
pub(super) fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        (
            a.severity,
            verdict_order(&a.verdict),
            &a.operation,
            &a.attack,
            &a.location,
        )
            .cmp(&(
                b.severity,
                verdict_order(&b.verdict),
                &b.operation,
                &b.attack,
                &b.location,
            ))
    });
}

pub(super) fn verdict_order(verdict: &str) -> u8 {
    [
        Verdict::Violation,
        Verdict::ServerError,
        Verdict::Suspicious,
        Verdict::OverRestricted,
    ]
    .iter()
    .position(|v| v.as_str() == verdict)
    .unwrap_or(4) as u8
}

fn instance(input: &BuildInput<'_>, acc: &InstanceAcc) -> Instance {
    let first = &acc.first;
    let p = &first.probe;
    let actor = &input.identities[p.actor];
    let leaked: Vec<usize> = acc.leaked.iter().copied().collect();
    let leaked_text = leaked
        .iter()
        .filter_map(|&i| input.corpus.objects.get(i))
        .map(|o| {
            format!(
                "{} {} ({})",
                o.resource,
                o.id_text(),
                o.tenant.as_deref().unwrap_or("no tenant")
            )
        })
        .collect();
    let relation = relation(input, p, &leaked);
    let is_write = !input.api.operations[p.op].is_read_only();
    let body = &first.exchange.body;
    let excerpt = input.redactor.excerpt(body, EXCERPT_BYTES);
    Instance {
        attack: p.attack.as_str().to_string(),
        verdict: acc.worst.as_str().to_string(),
        severity: severity(acc.worst, p.attack, relation, is_write),
        actor: party(actor),
        victim: victim_of(input.corpus, input.identities, p),
        relation: relation.to_string(),
        variants: acc.variants.clone(),
        probes: acc.probes,
        request: RequestInfo {
            method: p.request.method.to_string(),
            url: first.url.clone(),
            detail: p.detail.clone(),
        },
        status: first.exchange.status,
        evidence: Evidence {
            reason: first.judgement.reason.clone(),
            similarity: first
                .judgement
                .similarity
                .map(|s| (s * 1000.0).round() / 1000.0),
            leaked: leaked_text,
            body_excerpt: excerpt,
            body_sha256: format!("{:x}", Sha256::digest(body)),
        },
        curl: curl_command(&first.url, &p.request, actor, p.credential) + &canary_note(input, p),
    }
}

/// A reproduction aimed at a canary cannot be replayed as is: the canary is gone (deleted
/// by the probe, or by the cleanup at the end of the run). Says so, and what to do.
fn canary_note(input: &BuildInput<'_>, p: &Probe) -> String {
    let Some(index) = p.object.filter(|&i| input.corpus.canary(i).is_some()) else {
        return String::new();
    };
    let Some(o) = input.corpus.objects.get(index) else {
        return String::new();
    };
    let owner = input
        .identities
        .get(o.owner)
        .map_or("its owner", |i| i.name.as_str());
    let why = if p.request.method == crate::spec::Method::Delete {
        "this probe deleted it"
    } else {
        "the cleanup deleted it after the run"
    };
    format!(
        "  # replays against canary {} {} ({why}): create a fresh object of `{}` as {owner} and put its ID in place of {}",
        o.resource,
        o.id_text(),
        o.resource,
        o.id_text()
    )
}

fn finding(
    input: &BuildInput<'_>,
    operation: String,
    attack: String,
    location: String,
    accs: &[&InstanceAcc],
    probes: usize,
    more_instances: usize,
) -> Finding {
    // Instances in plan order of their first probe: the same order every run.
    let mut accs: Vec<&InstanceAcc> = accs.to_vec();
    accs.sort_by_key(|a| (verdict_rank(a.worst), a.first.probe.id));
    let instances: Vec<Instance> = accs.iter().map(|a| instance(input, a)).collect();
    let mut exchanges: Vec<ExchangeInfo> = Vec::new();
    let mut more = 0;
    for a in &accs {
        for e in &a.exchanges {
            if exchanges.len() < MAX_LISTED {
                exchanges.push(e.clone());
            } else {
                more += 1;
            }
        }
        more += a.more;
    }
    if more > 0 || more_instances > 0 {
        exchanges.push(ExchangeInfo {
            method: String::new(),
            url: String::new(),
            status: None,
            detail: format!(
                "{more} more exchange(s) and {more_instances} more actor → victim pair(s) not listed"
            ),
            reason: String::new(),
        });
    }
    let mut variables: Vec<ReproVariable> = Vec::new();
    for a in &accs {
        let p = &a.first.probe;
        for v in repro_variables(&input.identities[p.actor], p.credential, input.identities) {
            if !variables.contains(&v) {
                variables.push(v);
            }
        }
    }
    let first = instances.first().cloned();
    let severity = instances
        .iter()
        .map(|i| i.severity)
        .min()
        .unwrap_or(Severity::Low);
    let worst = accs.first().map_or(Verdict::Suspicious, |a| a.worst);
    let attack_kind = accs.first().map(|a| a.first.probe.attack);
    // The finding's own attack decides the category: a folded bad-auth is no-auth's.
    let owasp_kind = accs
        .iter()
        .map(|a| a.first.probe.attack)
        .find(|k| k.as_str() == attack)
        .or(attack_kind)
        .unwrap_or(Attack::IdSwap);
    // Every group holds an instance (one is kept before any is counted away).
    let first = first.unwrap_or_default();
    Finding {
        id: finding_id(&operation, &attack, &location),
        verdict: worst.as_str().to_string(),
        attack,
        operation,
        location,
        severity,
        owasp: owasp(worst, owasp_kind).to_string(),
        probes,
        baseline: None,
        actor: first.actor,
        victim: first.victim,
        relation: first.relation,
        request: first.request,
        status: first.status,
        evidence: first.evidence,
        curl: first.curl,
        variables,
        exchanges,
        instances,
    }
}

/// The shell variables a reproduction by `identity` with `credential` needs, and how to
/// get each: what to copy from where, with or without `Bearer `, or what a forgery claims.
pub fn repro_variables(
    identity: &Identity,
    credential: Credential,
    identities: &[Identity],
) -> Vec<ReproVariable> {
    let placeholder = identity.credential_placeholder();
    let who = &identity.name;
    let Some(slot) = (match credential {
        Credential::Omitted => None,
        _ => credential_slot(identity),
    }) else {
        return Vec::new();
    };
    if let Credential::Forged(forgery) = credential {
        let mut how = format!("{} of `{who}`", forgery.describe());
        if let Forgery::WeakSecret { claim, .. } = forgery {
            let (claim_name, index) = match claim {
                ClaimSwap::Subject(i) => ("sub", i),
                ClaimSwap::Role(i) => ("role", i),
            };
            let other = identities.get(index).map_or("?", |i| i.name.as_str());
            how.push_str(&format!(
                "; forged claims: `{claim_name}` set to `{other}`'s, signed HS256 with that secret"
            ));
        }
        return vec![ReproVariable {
            name: format!("{placeholder}_{}", forgery.slug()),
            how,
        }];
    }
    let login = "log in as it (the engagement's login flow, or the app)";
    let how = match (&slot, &identity.auth) {
        (Slot::Header { name, prefix }, Auth::OAuth2(_)) => format!(
            "an OAuth2 access token of `{who}` from the engagement's token endpoint, without `{}` (the command adds it; header `{name}`)",
            prefix.trim()
        ),
        (Slot::Header { name, .. }, Auth::Header { value, .. }) => format!(
            "the whole `{name}` header value the engagement gives `{who}`{}",
            if value.expose().starts_with("Bearer ") {
                ", including its `Bearer ` prefix"
            } else {
                " (no `Bearer ` prefix)"
            }
        ),
        (Slot::Header { name, .. }, Auth::Login(flow)) => {
            let template = match &flow.session {
                SessionUse::Header { template, .. } => template.as_str(),
                SessionUse::Cookie { .. } => "",
            };
            format!(
                "{login} as `{who}` and take the `{name}` header value the session sends, built as `{template}`{}",
                if template.starts_with("Bearer ") {
                    " (include `Bearer `)"
                } else {
                    ""
                }
            )
        }
        (Slot::Header { name, .. }, _) => {
            format!("the `{name}` value the engagement gives `{who}`")
        }
        (Slot::Headers(names), _) => format!(
            "the engagement's fixed headers of `{who}`, in order: {} (as {placeholder}_1, _2…)",
            names.join(", ")
        ),
        (Slot::Cookie { name, csrf }, _) => format!(
            "{login} as `{who}` and copy the `{name}` cookie's value{}",
            if csrf.is_some() {
                "; writes also need the CSRF token the login returned, in the matching `_CSRF_TOKEN` variable"
            } else {
                ""
            }
        ),
        (Slot::Query { name }, _) => {
            format!("the `{name}` API key the engagement gives `{who}`")
        }
        (Slot::Basic, _) => format!("`username:password` of `{who}` from the engagement"),
    };
    vec![ReproVariable {
        name: placeholder,
        how,
    }]
}

/// How bad a finding is, from what was reached and whether it was written.
pub fn severity(verdict: Verdict, attack: Attack, relation: &str, is_write: bool) -> Severity {
    match verdict {
        Verdict::Violation => {}
        // A 500, a granted status without proven data, a redirect: worth a look, no more.
        _ => return Severity::Low,
    }
    match (relation, is_write, attack) {
        // Which IDs exist is less than what they hold, whoever owns them.
        (_, _, Attack::ExistenceLeak) => Severity::Low,
        ("cross-tenant", true, _) => Severity::Critical,
        ("cross-tenant", false, _) => Severity::High,
        (_, _, Attack::MassAssignment) => Severity::High,
        _ => Severity::Medium,
    }
}

/// The OWASP API Security Top 10 (2023) category of a finding.
pub fn owasp(verdict: Verdict, attack: Attack) -> &'static str {
    if verdict == Verdict::ServerError {
        return "API8:2023 Security Misconfiguration";
    }
    match attack {
        // An existence leak is object-level authorization answering differently for
        // objects the caller may not see, so BOLA's category.
        Attack::IdSwap
        | Attack::ListLeak
        | Attack::ParamPollution
        | Attack::TenantSwap
        | Attack::ExistenceLeak => "API1:2023 BOLA",
        Attack::NoAuth | Attack::BadAuth => "API2:2023 Broken Authentication",
        Attack::MassAssignment => "API3:2023 BOPLA",
        Attack::Escalation | Attack::MethodOverride | Attack::VerbSwap => "API5:2023 BFLA",
        Attack::Malformed => "API8:2023 Security Misconfiguration",
    }
}

/// Where an identity's credential goes: header name and the text before the placeholder.
/// Where an identity's credential goes in a reproduction.
enum Slot {
    /// `-H "name: prefix$VAR"`.
    Header { name: String, prefix: String },
    /// `-H "name: $VAR_1" -H "other: $VAR_2"`: one variable per fixed header.
    Headers(Vec<String>),
    /// `-H "Cookie: name=$VAR"`, plus the CSRF header on unsafe methods when the session
    /// has one.
    Cookie { name: String, csrf: Option<String> },
    /// `name=$VAR` appended to the query string.
    Query { name: String },
    /// `-u "$VAR"` with `$VAR` = `username:password`.
    Basic,
}

fn credential_slot(identity: &Identity) -> Option<Slot> {
    let header = |name: &str| Slot::Header {
        name: name.to_string(),
        prefix: String::new(),
    };
    let cookie = |name: &str| Slot::Cookie {
        name: name.to_string(),
        csrf: None,
    };
    match &identity.auth {
        Auth::None => None,
        Auth::Header { name, .. } => Some(header(name)),
        Auth::Headers(headers) => Some(Slot::Headers(
            headers.iter().map(|(name, _)| name.clone()).collect(),
        )),
        Auth::Cookie { name, .. } => Some(cookie(name)),
        Auth::Basic { .. } => Some(Slot::Basic),
        Auth::ApiKey { location, name, .. } => Some(match location {
            KeyLocation::Header => header(name),
            KeyLocation::Cookie => cookie(name),
            KeyLocation::Query => Slot::Query { name: name.clone() },
        }),
        Auth::Login(flow) => Some(match &flow.session {
            SessionUse::Header { name, .. } => header(name),
            SessionUse::Cookie { name } => Slot::Cookie {
                name: name.clone(),
                csrf: flow.csrf.as_ref().map(|c| c.send_header.clone()),
            },
        }),
        Auth::OAuth2(_) => Some(Slot::Header {
            name: "Authorization".into(),
            prefix: "Bearer ".into(),
        }),
    }
}

/// A curl command that reproduces a probe. Credentials never appear: each is a shell
/// variable (`$ROLEGRID_ALICE_CREDENTIAL`) the reviewer sets from their own login.
pub fn curl_command(
    url: &str,
    request: &RequestSpec,
    identity: &Identity,
    credential: Credential,
) -> String {
    let placeholder = identity.credential_placeholder();
    let slot = match credential {
        Credential::Omitted => None,
        _ => credential_slot(identity),
    };
    let variable = match credential {
        Credential::Forged(forgery) => format!("{placeholder}_{}", forgery.slug()),
        _ => placeholder.clone(),
    };
    let quoted_url = match &slot {
        // Single quotes keep the URL literal; the variable goes in double quotes after it.
        Some(Slot::Query { name }) => {
            let joiner = if url.contains('?') { '&' } else { '?' };
            format!(
                "'{}'\"{joiner}{}=${variable}\"",
                shell_quote_inner(url),
                encode_query_name(name)
            )
        }
        _ => format!("'{}'", shell_quote_inner(url)),
    };
    let mut cmd = format!("curl -sS -X {} {quoted_url}", request.method);
    match &slot {
        None | Some(Slot::Query { .. }) => {}
        Some(Slot::Header { name, prefix }) => {
            cmd.push_str(&format!(" -H \"{name}: {prefix}${variable}\""));
        }
        Some(Slot::Headers(names)) => {
            for (n, name) in names.iter().enumerate() {
                cmd.push_str(&format!(" -H \"{name}: ${variable}_{}\"", n + 1));
            }
        }
        Some(Slot::Cookie { name, csrf }) => {
            cmd.push_str(&format!(" -H \"Cookie: {name}=${variable}\""));
            if let (Some(header), false) = (csrf, request.method.is_safe()) {
                let csrf_variable =
                    format!("{}_CSRF_TOKEN", placeholder.trim_end_matches("_CREDENTIAL"));
                cmd.push_str(&format!(" -H \"{header}: ${csrf_variable}\""));
            }
        }
        Some(Slot::Basic) => match credential {
            Credential::Forged(_) => {
                cmd.push_str(&format!(" -H \"Authorization: Basic ${variable}\""));
            }
            _ => cmd.push_str(&format!(" -u \"${variable}\"")),
        },
    }
    if let (Credential::Forged(forgery), Some(_)) = (credential, &slot) {
        cmd.push_str(&format!("  # {variable}: {}", forgery.describe()));
    }
    with_body(cmd, request)
}

/// A query parameter name as it goes into a URL (the value is a shell variable).
fn encode_query_name(name: &str) -> String {
    url::form_urlencoded::byte_serialize(name.as_bytes()).collect()
}

fn with_body(mut cmd: String, request: &RequestSpec) -> String {
    let extra: String = request
        .headers
        .iter()
        .map(|(k, v)| format!(" -H '{}: {}'", shell_quote_inner(k), shell_quote_inner(v)))
        .collect();
    match cmd.find("  # ") {
        Some(at) => cmd.insert_str(at, &extra),
        None => cmd.push_str(&extra),
    }
    if let Some(json) = &request.json {
        let body = json.to_string();
        let flag = format!(
            " -H 'Content-Type: application/json' --data '{}'",
            shell_quote_inner(&body)
        );
        match cmd.find("  # ") {
            Some(at) => cmd.insert_str(at, &flag),
            None => cmd.push_str(&flag),
        }
    }
    cmd
}

/// Escapes text for use inside single quotes.
fn shell_quote_inner(text: &str) -> String {
    text.replace('\'', "'\\''")
}

fn matrix_cells(input: &BuildInput<'_>) -> Vec<MatrixCell> {
    let facts = super::coverage::CoverageFacts {
        api: input.api,
        policy: input.policy,
        identities: input.identities,
        corpus: input.corpus,
        allow_mutations: input.run.allow_mutations,
        extra: input.extra_coverage,
    };
    let mut cells = Vec::new();
    for (op_index, op) in input.api.operations.iter().enumerate() {
        for role in &input.policy.roles {
            let access = input.policy.access(op_index, role);
            let (probes, violations, server_errors) = input
                .aggregate
                .cells
                .get(&(op_index, role.clone()))
                .copied()
                .unwrap_or((0, 0, 0));
            let (coverage, reason) = super::coverage::cell_coverage(&facts, op_index, role, probes);
            cells.push(MatrixCell {
                operation: op.key(),
                role: role.clone(),
                access: access.map(|a| a.as_str().to_string()).unwrap_or_default(),
                probes,
                violations,
                server_errors,
                coverage: coverage.as_str().to_string(),
                reason,
            });
        }
    }
    cells
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engagement::Secret;
    use crate::spec::Method;

    fn alice() -> Identity {
        Identity {
            name: "alice".into(),
            tenant: Some("acme".into()),
            role: "client".into(),
            attributes: Default::default(),
            auth: Auth::Header {
                name: "Authorization".into(),
                value: Secret::new("Bearer s3cr3t-token"),
            },
        }
    }

    fn patch() -> RequestSpec {
        RequestSpec {
            method: Method::Patch,
            path: "/tickets/5".into(),
            query: vec![],
            headers: vec![],
            json: Some(serde_json::json!({"subject": "it's"})),
        }
    }

    #[test]
    fn curl_uses_placeholders_and_quotes_bodies() {
        let cmd = curl_command("http://h/tickets/5", &patch(), &alice(), Credential::Normal);
        assert_eq!(
            cmd,
            "curl -sS -X PATCH 'http://h/tickets/5' -H \"Authorization: $ROLEGRID_ALICE_CREDENTIAL\" -H 'Content-Type: application/json' --data '{\"subject\":\"it'\\''s\"}'"
        );
        assert!(!cmd.contains("s3cr3t"));
    }

    /// A result of `attack` on the demo spec's `operation` by `actor` (alice, bob,
    /// anonymous) with `detail`, answered `status` with `body` and judged `verdict`.
    fn result(
        api: &Api,
        operation: &str,
        attack: Attack,
        actor: usize,
        credential: Credential,
        detail: &str,
        (status, body, verdict): (u16, &str, Verdict),
    ) -> ProbeResult {
        let op = api
            .operations
            .iter()
            .position(|o| o.key() == operation)
            .unwrap_or_else(|| panic!("{operation}"));
        let mut request = patch();
        request.method = api.operations[op].method;
        let mut probe = Probe::new(attack, op, actor, request).detail(detail);
        probe.credential = credential;
        ProbeResult {
            probe,
            url: "http://h/x".into(),
            exchange: Exchange {
                status: Some(status),
                body: body.as_bytes().to_vec(),
                ..Exchange::default()
            },
            judgement: Judgement::new(verdict, "test"),
        }
    }

    fn build_of(results: Vec<ProbeResult>) -> Report {
        let api = crate::spec::demo_api();
        let mut bob = alice();
        bob.name = "bob".into();
        bob.tenant = Some("globex".into());
        let identities = vec![alice(), bob, Identity::anonymous()];
        let roles = vec!["anonymous".to_string(), "client".to_string()];
        let policy = Policy::parse(
            "operation,anonymous,client\n",
            std::path::Path::new("m.csv"),
            &api,
            &roles,
            true,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let corpus = ObjectCorpus::default();
        let mut agg = Aggregate::default();
        for r in results {
            agg.add(r, &api, &identities, &corpus);
        }
        build(BuildInput {
            api: &api,
            policy: &policy,
            identities: &identities,
            corpus: &corpus,
            aggregate: &agg,
            latency: Vec::new(),
            histograms: Vec::new(),
            run: RunInfo {
                target: "http://h/".into(),
                spec: "demo.yaml".into(),
                matrix: "m.csv".into(),
                engagement: "e.yaml".into(),
                started_unix: 0,
                allow_mutations: true,
                complete: true,
                shard: None,
                identities: Vec::new(),
            },
            p95_target_ms: 500,
            requests: 0,
            wall_seconds: 0.0,
            warnings: Vec::new(),
            extra_coverage: None,
            redactor: &crate::engagement::Redactor::new(),
        })
    }

    #[test]
    fn findings_group_by_root_cause() {
        let api = crate::spec::demo_api();
        let v = Verdict::Violation;
        let n = Credential::Normal;
        let ok = (200, "{}", v);
        let crash = |body| (500, body, Verdict::ServerError);
        let inv = "GET /invoices/{invoiceId}";
        let export = "GET /export/invoices.csv";
        let notes = "POST /tickets/{ticketId}/notes";
        let spoof = Credential::Forged(Forgery::AlgNone);
        // (operation, attack, actor, credential, detail, answer)
        let rows = [
            // One BOLA: two actors, a spelling variant, one location.
            (inv, Attack::IdSwap, 0, n, "path parameter `invoiceId`", ok),
            (
                inv,
                Attack::IdSwap,
                0,
                n,
                "path parameter `invoiceId`, ID with leading zeros",
                ok,
            ),
            (inv, Attack::IdSwap, 1, n, "path parameter `invoiceId`", ok),
            // No credential needed: forged tokens on it fold into the no-auth finding.
            (
                export,
                Attack::NoAuth,
                2,
                Credential::Omitted,
                "no credentials",
                ok,
            ),
            (export, Attack::BadAuth, 0, spoof, "alg none", ok),
            // Two bodies provoke the same 500: one finding; another 500 is another.
            (
                notes,
                Attack::Malformed,
                0,
                n,
                "schema-violating body #1",
                crash("boom"),
            ),
            (
                notes,
                Attack::Malformed,
                0,
                n,
                "schema-violating body #2",
                crash("boom"),
            ),
            (
                notes,
                Attack::Malformed,
                0,
                n,
                "schema-violating body #3",
                crash("other"),
            ),
            // The same crash from another attack is the same finding.
            (
                notes,
                Attack::IdSwap,
                1,
                n,
                "path parameter `ticketId`",
                crash("boom"),
            ),
        ];
        let results = rows
            .into_iter()
            .map(|(op, attack, actor, cred, detail, answer)| {
                result(&api, op, attack, actor, cred, detail, answer)
            })
            .collect();
        let report = build_of(results);
        let find = |op: &str, attack: &str| -> Vec<&Finding> {
            report
                .findings
                .iter()
                .filter(|f| f.operation == op && f.attack == attack)
                .collect()
        };
        let bola = find(inv, "id-swap");
        assert_eq!(bola.len(), 1);
        assert_eq!(bola[0].location, "path parameter `invoiceId`");
        assert_eq!(bola[0].instances.len(), 2);
        assert_eq!(bola[0].probes, 3);
        assert_eq!(bola[0].instances[0].variants.len(), 2);
        assert_eq!(
            bola[0].id,
            finding_id(inv, "id-swap", "path parameter `invoiceId`")
        );
        assert!(find(export, "bad-auth").is_empty(), "bad-auth folded");
        let open = find(export, "no-auth");
        assert_eq!(open.len(), 1);
        assert!(open[0].instances.iter().any(|i| i.attack == "bad-auth"));
        let crashes = find(notes, "malformed");
        assert_eq!(crashes.len(), 2);
        assert!(find(notes, "id-swap").is_empty());
        let boom = crashes
            .iter()
            .find(|f| f.probes == 3)
            .expect("one crash, 3 probes");
        assert!(boom.instances.iter().any(|i| i.attack == "id-swap"));
        assert_eq!(report.stats.findings, 4);
        assert_eq!(report.stats.probes, 9);
        // Worst first.
        assert!(report
            .findings
            .windows(2)
            .all(|w| w[0].severity <= w[1].severity));
    }

    #[test]
    fn severity_and_owasp() {
        use Attack::{BadAuth, Escalation, IdSwap, ListLeak, Malformed, MassAssignment};
        use Attack::{MethodOverride, ParamPollution};
        use Severity::{Critical, High, Low, Medium};
        use Verdict::{ServerError, Suspicious, Violation};
        // (verdict, attack, relation, is a write) → severity.
        let cases = [
            (Violation, IdSwap, "cross-tenant", true, Critical),
            (Violation, IdSwap, "cross-tenant", false, High),
            (Violation, ListLeak, "same-tenant", false, Medium),
            (Violation, Escalation, "none", false, Medium),
            (Violation, MassAssignment, "own", true, High),
            (Suspicious, IdSwap, "cross-tenant", false, Low),
            (ServerError, Malformed, "own", true, Low),
        ];
        for (verdict, attack, relation, is_write, expected) in cases {
            assert_eq!(
                severity(verdict, attack, relation, is_write),
                expected,
                "{verdict:?} {attack} {relation} write={is_write}"
            );
        }
        // (verdict, attack) → OWASP API Top 10 category.
        let categories = [
            (Violation, MassAssignment, "API3:2023 BOPLA"),
            (Violation, MethodOverride, "API5:2023 BFLA"),
            (Violation, BadAuth, "API2:2023 Broken Authentication"),
            (Violation, ParamPollution, "API1:2023 BOLA"),
            (
                ServerError,
                Malformed,
                "API8:2023 Security Misconfiguration",
            ),
        ];
        for (verdict, attack, expected) in categories {
            assert_eq!(owasp(verdict, attack), expected, "{verdict:?} {attack}");
        }
    }

    #[test]
    fn curl_names_the_forgery() {
        let mut r = patch();
        r.method = Method::Get;
        r.json = None;
        let cmd = curl_command(
            "http://h/me",
            &r,
            &alice(),
            Credential::Forged(Forgery::AlgNone),
        );
        assert!(cmd.contains("$ROLEGRID_ALICE_CREDENTIAL_ALGNONE"), "{cmd}");
        assert!(cmd.contains("alg none"), "{cmd}");
        let none = curl_command("http://h/me", &r, &alice(), Credential::Omitted);
        assert_eq!(none, "curl -sS -X GET 'http://h/me'");
    }

    #[test]
    fn curl_places_query_keys_basic_and_csrf() {
        use crate::engagement::{Capture, Csrf, CsrfSource, LoginFlow, SessionUse};
        let mut who = alice();
        who.auth = Auth::ApiKey {
            location: KeyLocation::Query,
            name: "api_key".into(),
            value: Secret::new("k-secret-1"),
        };
        let mut get = patch();
        get.method = Method::Get;
        get.json = None;
        get.query = vec![("q".into(), "x".into())];
        let cmd = curl_command("http://h/s?q=x", &get, &who, Credential::Normal);
        assert_eq!(
            cmd,
            "curl -sS -X GET 'http://h/s?q=x'\"&api_key=$ROLEGRID_ALICE_CREDENTIAL\""
        );
        who.auth = Auth::Basic {
            username: "a".into(),
            password: Secret::new("p-secret-1"),
        };
        let cmd = curl_command("http://h/me", &get, &who, Credential::Normal);
        assert!(cmd.ends_with(" -u \"$ROLEGRID_ALICE_CREDENTIAL\""), "{cmd}");
        who.auth = Auth::Login(LoginFlow {
            steps: vec![],
            session: SessionUse::Cookie {
                name: "portal_session".into(),
            },
            csrf: Some(Csrf {
                source: CsrfSource::Answer(Capture::Cookie("portal_csrf".into())),
                send_header: "X-CSRF-Token".into(),
            }),
        });
        let cmd = curl_command("http://h/tickets/5", &patch(), &who, Credential::Normal);
        assert!(
            cmd.contains(" -H \"Cookie: portal_session=$ROLEGRID_ALICE_CREDENTIAL\" -H \"X-CSRF-Token: $ROLEGRID_ALICE_CSRF_TOKEN\""),
            "{cmd}"
        );
        let cmd = curl_command("http://h/me", &get, &who, Credential::Normal);
        assert!(!cmd.contains("CSRF"), "{cmd}");
    }
}
