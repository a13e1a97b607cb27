//! The report model: one serde structure every writer reads. `report.json` is this,
//! serialised; its shape is versioned by [`SCHEMA_VERSION`] and described in
//! `reports/schema/report.schema.json`. It is also read back (`rolegrid report`,
//! `--baseline`, `merge`), so every type here deserialises too.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// The `canaries` section is the scan's own ledger, kept where the canaries are created
/// and deleted; its rows serve `probe_objects` too.
pub use crate::exec::canary::{CanaryFailure, CanaryLedger, CanaryLeft, UncoveredCell};

/// 2.0: findings grouped by root cause (operation, attack, location) with instances,
/// `RG-` IDs, finding counts per severity, cell server errors, baseline states.
pub const SCHEMA_VERSION: &str = "2.0";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: String,
    pub tool: Tool,
    pub run: RunInfo,
    pub stats: Stats,
    pub findings: Vec<Finding>,
    pub matrix: Vec<MatrixCell>,
    pub latency: Latency,
    pub warnings: Vec<String>,
    /// Identities that lost their login during the run (password changed, data wiped).
    pub identities_lost: Vec<LostIdentity>,
    /// The canary objects of a scan with mutations; absent when mutations are off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canaries: Option<CanaryLedger>,
    /// Objects probes created on the target (not canaries) and what became of them;
    /// absent when no probe created any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_objects: Option<ProbeObjects>,
    /// Why and when a partial run stopped, and what it did not run; absent when complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<Stopped>,
    /// Posture weaknesses (headers, cookies, leaks, CORS, undocumented routes), verdict
    /// `weakness`; kept apart from `findings`, which judge the role matrix.
    #[serde(default)]
    pub posture: Vec<crate::posture::Weakness>,
    /// The comparison with `--baseline`: absent without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineSection>,
    /// Faults of the target (resets, timeouts, garbage, 5xx, 429, lost sessions, wiped
    /// data) met by probes, counted per kind with the probes' IDs; absent when none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<crate::fault::FaultSection>,
}

/// Findings compared with a previous report by their stable IDs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BaselineSection {
    /// The previous report.json, as given.
    pub file: String,
    /// IDs of findings this run has and the baseline had not.
    pub new: Vec<String>,
    /// IDs of findings both have.
    pub still_open: Vec<String>,
    /// Findings of the baseline this run no longer shows.
    pub fixed: Vec<FixedFinding>,
}

/// A baseline finding that is gone, with what a reader needs to recognise it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FixedFinding {
    pub id: String,
    pub operation: String,
    pub attack: String,
    pub location: String,
    pub severity: Severity,
}

/// One identity that could no longer log in, and what that did to the run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LostIdentity {
    pub identity: String,
    pub reason: String,
    /// How many requests the run had sent when the loss was seen.
    pub at_request: usize,
    /// The engagement's `reprovision` request gave it its login back.
    pub reprovisioned: bool,
    /// Probes made inconclusive because of it.
    pub affected_probes: Vec<usize>,
    /// Probes judged after the loss that depended on it (as actor, baseline or owner).
    pub probes_after_loss: usize,
    /// Of those, how many were judged `enforced`: always 0 (a dead session is never
    /// read as enforcement); reported so a reader can check.
    pub enforced_after_loss: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunInfo {
    pub target: String,
    pub spec: String,
    pub matrix: String,
    pub engagement: String,
    /// Seconds since the Unix epoch; 0 in deterministic test mode.
    pub started_unix: u64,
    pub allow_mutations: bool,
    /// `false` when the run was interrupted (Ctrl-C) and the report is partial.
    pub complete: bool,
    /// `i/N` when this run sent one slice of the plan (`--shard`); `rolegrid merge` joins
    /// the slices. Absent for a whole run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    pub identities: Vec<IdentityInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdentityInfo {
    pub name: String,
    pub role: String,
    pub tenant: Option<String>,
    /// The auth kind (`bearer`, `login`…): borrowed from the engagement in a scan, owned
    /// when a report is read back.
    pub auth: Cow<'static, str>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stats {
    /// Findings: one per flaw (operation × attack × location), however many probes,
    /// identities and ID spellings showed it. The headline number.
    pub findings: usize,
    /// Findings per severity (each finding counted once, at its worst instance).
    pub findings_by_severity: SeverityCounts,
    /// Probes sent; the per-verdict counts below count probes, not findings.
    pub probes: usize,
    /// Probes judged `violation` (one flaw is usually shown by several probes).
    pub violations: usize,
    pub suspicious: usize,
    pub over_restricted: usize,
    pub server_errors: usize,
    pub inconclusive: usize,
    pub enforced: usize,
    /// Requests that got no HTTP answer (connection failures, timeouts).
    pub errors: usize,
    /// Requests sent in all: probes, baselines, read-backs, discovery and logins.
    pub requests: usize,
    pub objects: usize,
    pub wall_seconds: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Party {
    pub identity: String,
    pub role: String,
    pub tenant: Option<String>,
}

/// How bad a finding is. Ordered worst first, so sorting puts critical findings on top.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A write across tenants.
    Critical,
    /// A read across tenants, privileged properties written.
    High,
    /// Within a tenant, function level.
    Medium,
    /// Doubts, existence leaks, server errors.
    #[default]
    Low,
}

impl Severity {
    pub const ALL: [Severity; 4] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
        }
    }

    pub fn parse(text: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeverityCounts {
    pub critical: usize,
    pub high: usize,
    pub medium: usize,
    pub low: usize,
}

impl SeverityCounts {
    pub fn add(&mut self, severity: Severity) {
        *self.get_mut(severity) += 1;
    }

    pub fn get(&self, severity: Severity) -> usize {
        match severity {
            Severity::Critical => self.critical,
            Severity::High => self.high,
            Severity::Medium => self.medium,
            Severity::Low => self.low,
        }
    }

    fn get_mut(&mut self, severity: Severity) -> &mut usize {
        match severity {
            Severity::Critical => &mut self.critical,
            Severity::High => &mut self.high,
            Severity::Medium => &mut self.medium,
            Severity::Low => &mut self.low,
        }
    }
}

/// One flaw: every probe of one attack on one operation that reached the same place
/// (a path parameter, a header, the token check, one identical 5xx answer…). The
/// top-level actor, victim, request, evidence and curl are its first instance's, for
/// readers that show one line per finding; `instances` has them all.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Finding {
    /// `RG-` and 8 hex digits of sha256(operation, attack, location): the same flaw has the
    /// same ID in every run, which `--baseline` matches on.
    pub id: String,
    /// The worst verdict of its instances.
    pub verdict: String,
    pub attack: String,
    /// `METHOD /path/{template}` as in the spec.
    pub operation: String,
    /// Where the flaw is: `path parameter `ticketId``, `header `X-Tenant-Id``, `token
    /// verification`, `500 answer 1a2b3c4d`…
    pub location: String,
    /// The worst of its instances: `critical` (write across tenants), `high` (read across
    /// tenants, privileged properties written), `medium` (within a tenant, function
    /// level), `low` (doubts, existence leaks, server errors).
    pub severity: Severity,
    /// The OWASP API Security Top 10 (2023) category, e.g. `API1:2023 BOLA`.
    pub owasp: String,
    /// Probes that showed it.
    pub probes: usize,
    /// `new` or `still-open` against `--baseline`; absent without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<String>,
    pub actor: Party,
    pub victim: Option<Party>,
    /// `cross-tenant`, `same-tenant`, `own`, or `none` when no victim is at stake.
    pub relation: String,
    pub request: RequestInfo,
    pub status: Option<u16>,
    pub evidence: Evidence,
    /// A shell command reproducing the first exchange; credentials are `$NAME` placeholders.
    pub curl: String,
    /// How to set each `$ROLEGRID_…` variable the curl commands use.
    pub variables: Vec<ReproVariable>,
    /// Every exchange of every instance (the first [`MAX_LISTED`] of them).
    pub exchanges: Vec<ExchangeInfo>,
    /// One per (actor, victim) pair, with the ID spellings and other variants it was seen
    /// with and its own evidence.
    pub instances: Vec<Instance>,
}

impl Finding {
    /// Its actor → victim pairs as text (`alice → bob`, or the actor alone).
    pub fn pairs(&self) -> Vec<String> {
        self.instances
            .iter()
            .map(|i| match &i.victim {
                Some(v) => format!("{} → {}", i.actor.identity, v.identity),
                None => i.actor.identity.clone(),
            })
            .collect()
    }
}

/// Exchanges or instances listed per finding; the rest are counted.
pub const MAX_LISTED: usize = 50;

/// One actor → victim pair of a finding.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Instance {
    /// The attack of this instance: the finding's, or `bad-auth` folded into `no-auth`.
    pub attack: String,
    pub verdict: String,
    pub severity: Severity,
    pub actor: Party,
    pub victim: Option<Party>,
    pub relation: String,
    /// The probe details seen: the plain swap and each spelling or forgery that passed.
    pub variants: Vec<String>,
    pub probes: usize,
    pub request: RequestInfo,
    pub status: Option<u16>,
    pub evidence: Evidence,
    pub curl: String,
}

/// A shell variable a reproduction needs, and how to get its value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReproVariable {
    pub name: String,
    pub how: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RequestInfo {
    pub method: String,
    pub url: String,
    pub detail: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Evidence {
    pub reason: String,
    pub similarity: Option<f64>,
    /// Other owners' objects seen in the answer: `resource id (tenant)`.
    pub leaked: Vec<String>,
    /// The first bytes of the answer, credentials scrubbed.
    pub body_excerpt: String,
    pub body_sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExchangeInfo {
    pub method: String,
    pub url: String,
    pub status: Option<u16>,
    pub detail: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MatrixCell {
    pub operation: String,
    pub role: String,
    pub access: String,
    pub probes: usize,
    pub violations: usize,
    /// Probes answered 5xx in this cell: such a cell is never shown as passed.
    #[serde(default)]
    pub server_errors: usize,
    /// `tested`, `untestable` (a probe was wanted but could not be built) or `skipped`
    /// (nothing to test in this cell).
    pub coverage: String,
    /// Why: `3 probes`, `mutations not allowed`, `no object of resource `files` known`…
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Latency {
    pub p95_target_ms: u64,
    /// `true` when every operation's p95 is within the target.
    pub pass: bool,
    pub operations: Vec<OperationLatency>,
    /// Every histogram: per operation and per operation × identity, all answers and
    /// split into allowed (2xx) and denied, with the exact HdrHistogram encoding.
    pub histograms: Vec<HistogramRecord>,
}

/// One histogram of the run, as [`crate::exec::HistogramSummary`] writes it, read back too.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistogramRecord {
    pub operation: String,
    /// The identity, or `*` for all identities together.
    pub identity: String,
    /// `allowed`, `denied` or `all`.
    pub outcome: String,
    #[serde(flatten)]
    pub percentiles: crate::latency_stats::Percentiles,
    /// HdrHistogram V2 encoding (microseconds), base64.
    pub hdr_v2_base64: String,
}

impl From<crate::exec::HistogramSummary> for HistogramRecord {
    fn from(h: crate::exec::HistogramSummary) -> Self {
        HistogramRecord {
            operation: h.operation,
            identity: h.identity,
            outcome: h.outcome.to_string(),
            percentiles: h.percentiles,
            hdr_v2_base64: h.hdr_v2_base64,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OperationLatency {
    pub operation: String,
    #[serde(flatten)]
    pub percentiles: crate::latency_stats::Percentiles,
    pub pass: bool,
}

/// Why a run stopped before its end, when, and what it did not do: the partial report's
/// account (`run.complete` is `false` whenever this is present).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stopped {
    /// `interrupted` (SIGINT or SIGTERM) or `target-down` (the target stopped answering).
    pub reason: String,
    /// Seconds since the Unix epoch when it happened (for `target-down`: the first of the
    /// failures that stopped the run); 0 in deterministic (`--seed`) runs.
    pub at_unix: u64,
    /// Probes planned for the run, and how many of them were not sent or not judged.
    pub probes_planned: usize,
    pub probes_not_run: usize,
    /// The probes not run, per operation and attack.
    pub not_run: Vec<NotRun>,
    /// Later stages skipped or cut short (`canary cleanup`).
    pub stages_not_run: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotRun {
    pub operation: String,
    pub attack: String,
    pub probes: usize,
}

/// Objects created as a side effect of probes (a 201 or a `Location`), deleted at the end
/// like canaries.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProbeObjects {
    pub created: usize,
    pub deleted: usize,
    /// Already gone at cleanup (a later probe deleted it).
    pub already_gone: usize,
    /// Still on the target: `{resource, id, owner, reason}`.
    pub left: Vec<CanaryLeft>,
}

/// A posture row as read back from a report.json (`rolegrid report`, `merge`,
/// `--baseline`): its check, verdict and severity are names from small fixed sets.
impl<'de> Deserialize<'de> for crate::posture::Weakness {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct WeaknessRead {
            check: String,
            severity: String,
            operation: String,
            url: String,
            identity: String,
            reason: String,
            seen: usize,
            #[serde(default)]
            operations: Vec<String>,
        }
        let read = WeaknessRead::deserialize(d)?;
        let check = crate::posture::Check::ALL
            .into_iter()
            .find(|c| c.as_str() == read.check)
            .ok_or_else(|| {
                serde::de::Error::custom(format!("unknown posture check `{}`", read.check))
            })?;
        let severity = ["high", "medium", "low"]
            .into_iter()
            .find(|s| *s == read.severity)
            .unwrap_or_else(|| check.severity());
        Ok(crate::posture::Weakness {
            verdict: "weakness",
            check,
            severity,
            operation: read.operation,
            url: read.url,
            identity: read.identity,
            reason: read.reason,
            seen: read.seen,
            operations: read.operations,
        })
    }
}
