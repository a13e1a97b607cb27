//! The report model: one serde structure every writer reads. `report.json` is this,
//! serialised; its shape is versioned by [`SCHEMA_VERSION`] and described in
//! `reports/schema/report.schema.json`.

use serde::Serialize;

pub const SCHEMA_VERSION: &str = "1.0";

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema_version: &'static str,
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
    pub canaries: Option<CanarySection>,
    /// Objects probes created on the target (not canaries) and what became of them;
    /// absent when no probe created any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe_objects: Option<ProbeObjects>,
    /// Why and when a partial run stopped, and what it did not run; absent when complete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<Stopped>,
    /// Posture weaknesses (headers, cookies, leaks, CORS, undocumented routes), verdict
    /// `weakness`; kept apart from `findings`, which judge the role matrix.
    pub posture: Vec<crate::posture::Weakness>,
}

/// One identity that could no longer log in, and what that did to the run.
#[derive(Debug, Clone, Serialize)]
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

/// What became of the objects rolegrid created so writes and deletes had targets.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CanarySection {
    pub created: usize,
    /// Deleted by the cleanup at the end of the run.
    pub deleted: usize,
    /// Already gone at cleanup: a probe deleted them (that probe's finding says so).
    pub deleted_by_probes: usize,
    /// The engagement's `max_canaries`, and how many canaries it kept from being created.
    pub cap: usize,
    pub over_cap: usize,
    /// Creates that failed: `{resource, creator, reason}`.
    pub failed: Vec<CanaryFailed>,
    /// Canaries still on the target: `{resource, id, owner, reason}`.
    pub left: Vec<CanaryLeft>,
    /// Write/delete cells not attacked for want of a canary: `{operation, role, reason}`.
    pub uncovered: Vec<UncoveredCell>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CanaryFailed {
    pub resource: String,
    pub creator: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CanaryLeft {
    pub resource: String,
    pub id: String,
    pub owner: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct UncoveredCell {
    pub operation: String,
    pub role: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Tool {
    pub name: &'static str,
    pub version: &'static str,
}

#[derive(Debug, Clone, Serialize)]
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
    pub identities: Vec<IdentityInfo>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IdentityInfo {
    pub name: String,
    pub role: String,
    pub tenant: Option<String>,
    pub auth: &'static str,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    pub probes: usize,
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

#[derive(Debug, Clone, Serialize)]
pub struct Party {
    pub identity: String,
    pub role: String,
    pub tenant: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Stable within a report: `F001`, `F002`… in sorted order.
    pub id: String,
    pub verdict: String,
    pub attack: String,
    /// `METHOD /path/{template}` as in the spec.
    pub operation: String,
    pub actor: Party,
    pub victim: Option<Party>,
    /// `cross-tenant`, `same-tenant`, `own`, or `none` when no victim is at stake.
    pub relation: String,
    /// `critical` (write across tenants), `high` (read across tenants, privileged
    /// properties written), `medium` (within a tenant, function level), `low` (doubts,
    /// existence leaks, server errors).
    pub severity: &'static str,
    /// The OWASP API Security Top 10 (2023) category, e.g. `API1:2023 BOLA`.
    pub owasp: &'static str,
    pub request: RequestInfo,
    pub status: Option<u16>,
    pub evidence: Evidence,
    /// A shell command reproducing the first exchange; credentials are `$NAME` placeholders.
    pub curl: String,
    /// All exchanges grouped into this finding.
    pub exchanges: Vec<ExchangeInfo>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RequestInfo {
    pub method: String,
    pub url: String,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Evidence {
    pub reason: String,
    pub similarity: Option<f64>,
    /// Other owners' objects seen in the answer: `resource id (tenant)`.
    pub leaked: Vec<String>,
    /// The first bytes of the answer, credentials scrubbed.
    pub body_excerpt: String,
    pub body_sha256: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExchangeInfo {
    pub method: String,
    pub url: String,
    pub status: Option<u16>,
    pub detail: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct MatrixCell {
    pub operation: String,
    pub role: String,
    pub access: String,
    pub probes: usize,
    pub violations: usize,
    /// `tested`, `untestable` (a probe was wanted but could not be built) or `skipped`
    /// (nothing to test in this cell).
    pub coverage: String,
    /// Why: `3 probes`, `mutations not allowed`, `no object of resource `files` known`…
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub p95_target_ms: u64,
    /// `true` when every operation's p95 is within the target.
    pub pass: bool,
    pub operations: Vec<OperationLatency>,
    /// Every histogram: per operation and per operation × identity, all answers and
    /// split into allowed (2xx) and denied, with the exact HdrHistogram encoding.
    pub histograms: Vec<crate::exec::HistogramSummary>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OperationLatency {
    pub operation: String,
    #[serde(flatten)]
    pub percentiles: crate::latency_stats::Percentiles,
    pub pass: bool,
}

/// Why a run stopped before its end, when, and what it did not do: the partial report's
/// account (`run.complete` is `false` whenever this is present).
#[derive(Debug, Clone, Serialize)]
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotRun {
    pub operation: String,
    pub attack: String,
    pub probes: usize,
}

/// Objects created as a side effect of probes (a 201 or a `Location`), deleted at the end
/// like canaries.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProbeObjects {
    pub created: usize,
    pub deleted: usize,
    /// Already gone at cleanup (a later probe deleted it).
    pub already_gone: usize,
    /// Still on the target: `{resource, id, owner, reason}`.
    pub left: Vec<CanaryLeft>,
}
