//! Turns probe results into the report model: grouped findings, matrix coverage, latency.

use super::model::*;
use crate::discover::ObjectCorpus;
use crate::engagement::{Auth, Identity, LoginCapture};
use crate::exec::{Exchange, LatencySummary};
use crate::judge::{Judgement, Verdict};
use crate::matrix::Policy;
use crate::plan::{Attack, Probe};
use crate::request::{Credential, RequestSpec};
use crate::spec::Api;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

pub struct ProbeResult {
    pub probe: Probe,
    pub url: String,
    pub exchange: Exchange,
    pub judgement: Judgement,
}

pub struct BuildInput<'a> {
    pub api: &'a Api,
    pub policy: &'a Policy,
    pub identities: &'a [Identity],
    pub corpus: &'a ObjectCorpus,
    pub results: &'a [ProbeResult],
    pub latency: Vec<LatencySummary>,
    pub run: RunInfo,
    pub p95_target_ms: u64,
    pub requests: usize,
    pub wall_seconds: f64,
    pub warnings: Vec<String>,
}

const EXCERPT_BYTES: usize = 400;

pub fn build(input: BuildInput<'_>) -> Report {
    let mut stats = Stats {
        probes: input.results.len(),
        requests: input.requests,
        objects: input.corpus.objects.len(),
        wall_seconds: (input.wall_seconds * 1000.0).round() / 1000.0,
        ..Stats::default()
    };
    for r in input.results {
        match r.judgement.verdict {
            Verdict::Violation => stats.violations += 1,
            Verdict::Suspicious => stats.suspicious += 1,
            Verdict::OverRestricted => stats.over_restricted += 1,
            Verdict::ServerError => stats.server_errors += 1,
            Verdict::Inconclusive => stats.inconclusive += 1,
            Verdict::Enforced => stats.enforced += 1,
        }
        if r.exchange.status.is_none() {
            stats.errors += 1;
        }
    }

    // One finding per (verdict, operation, attack, actor, victim).
    let mut groups: BTreeMap<(Verdict, String, String, String, String), Vec<&ProbeResult>> =
        BTreeMap::new();
    for r in input.results {
        if matches!(
            r.judgement.verdict,
            Verdict::Enforced | Verdict::Inconclusive
        ) {
            continue;
        }
        let p = &r.probe;
        let victim = victim_of(&input, p).map(|v| v.identity).unwrap_or_default();
        let key = (
            r.judgement.verdict,
            input.api.operations[p.op].key(),
            p.attack.as_str().to_string(),
            input.identities[p.actor].name.clone(),
            victim,
        );
        groups.entry(key).or_default().push(r);
    }
    let findings = groups
        .into_iter()
        .enumerate()
        .map(|(n, ((verdict, operation, attack, _, _), rs))| {
            finding(&input, n, verdict, operation, attack, &rs)
        })
        .collect();

    let matrix = matrix_cells(&input);
    let operations: Vec<OperationLatency> = input
        .latency
        .iter()
        .map(|l| OperationLatency {
            operation: l.operation.clone(),
            count: l.count,
            p50_ms: l.p50_ms,
            p95_ms: l.p95_ms,
            p99_ms: l.p99_ms,
            max_ms: l.max_ms,
            pass: l.p95_ms <= input.p95_target_ms as f64,
        })
        .collect();
    Report {
        schema_version: SCHEMA_VERSION,
        tool: Tool {
            name: "rolegrid",
            version: env!("CARGO_PKG_VERSION"),
        },
        run: input.run.clone(),
        stats,
        findings,
        matrix,
        latency: Latency {
            p95_target_ms: input.p95_target_ms,
            pass: operations.iter().all(|o| o.pass),
            operations,
        },
        warnings: input.warnings.clone(),
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
fn victim_of(input: &BuildInput<'_>, probe: &Probe) -> Option<Party> {
    let object = input.corpus.objects.get(probe.object?)?;
    (object.owner != probe.actor).then(|| party(&input.identities[object.owner]))
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

fn finding(
    input: &BuildInput<'_>,
    n: usize,
    verdict: Verdict,
    operation: String,
    attack: String,
    results: &[&ProbeResult],
) -> Finding {
    let first = results[0];
    let p = &first.probe;
    let actor = &input.identities[p.actor];
    let mut leaked: Vec<usize> = results
        .iter()
        .flat_map(|r| r.judgement.leaked.iter().copied())
        .collect();
    leaked.sort_unstable();
    leaked.dedup();
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
    let is_write = !input.api.operations[p.op].method.is_safe();
    let body = &first.exchange.body;
    let excerpt = String::from_utf8_lossy(&body[..body.len().min(EXCERPT_BYTES)]).into_owned();
    Finding {
        id: format!("F{:03}", n + 1),
        verdict: verdict.as_str().to_string(),
        attack,
        operation,
        actor: party(actor),
        victim: victim_of(input, p),
        relation: relation.to_string(),
        severity: severity(verdict, p.attack, relation, is_write),
        owasp: owasp(verdict, p.attack),
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
        curl: curl_command(&first.url, &p.request, actor, p.credential),
        exchanges: results
            .iter()
            .map(|r| ExchangeInfo {
                method: r.probe.request.method.to_string(),
                url: r.url.clone(),
                status: r.exchange.status,
                detail: r.probe.detail.clone(),
                reason: r.judgement.reason.clone(),
            })
            .collect(),
    }
}

/// How bad a finding is, from what was reached and whether it was written.
pub fn severity(verdict: Verdict, attack: Attack, relation: &str, is_write: bool) -> &'static str {
    match verdict {
        Verdict::Violation => {}
        // A 500, a granted status without proven data, a redirect: worth a look, no more.
        _ => return "low",
    }
    match (relation, is_write, attack) {
        ("cross-tenant", true, _) => "critical",
        ("cross-tenant", false, _) => "high",
        (_, _, Attack::MassAssignment) => "high",
        _ => "medium",
    }
}

/// The OWASP API Security Top 10 (2023) category of a finding.
pub fn owasp(verdict: Verdict, attack: Attack) -> &'static str {
    if verdict == Verdict::ServerError {
        return "API8:2023 Security Misconfiguration";
    }
    match attack {
        Attack::IdSwap | Attack::ListLeak | Attack::ParamPollution => "API1:2023 BOLA",
        Attack::NoAuth | Attack::BadAuth => "API2:2023 Broken Authentication",
        Attack::MassAssignment => "API3:2023 BOPLA",
        Attack::Escalation | Attack::MethodOverride => "API5:2023 BFLA",
        Attack::Malformed => "API8:2023 Security Misconfiguration",
    }
}

/// Where an identity's credential goes: header name and the text before the placeholder.
fn credential_slot(identity: &Identity) -> Option<(String, String)> {
    match &identity.auth {
        Auth::None => None,
        Auth::Header { name, .. } => Some((name.clone(), String::new())),
        Auth::Cookie { name, .. } => Some(("Cookie".into(), format!("{name}="))),
        Auth::Login(flow) => Some(match &flow.capture {
            LoginCapture::Token { header, .. } => (header.clone(), String::new()),
            LoginCapture::Cookie { name } => ("Cookie".into(), format!("{name}=")),
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
    let mut cmd = format!(
        "curl -sS -X {} '{}'",
        request.method,
        shell_quote_inner(url)
    );
    let placeholder = identity.credential_placeholder();
    match (credential, credential_slot(identity)) {
        (Credential::Omitted, _) | (_, None) => {}
        (Credential::Normal, Some((header, prefix))) => {
            cmd.push_str(&format!(" -H \"{header}: {prefix}${placeholder}\""));
        }
        (Credential::Forged(forgery), Some((header, prefix))) => {
            let variant = format!("{placeholder}_{forgery:?}").to_ascii_uppercase();
            cmd.push_str(&format!(
                " -H \"{header}: {prefix}${variant}\"  # {variant}: {}",
                forgery.describe()
            ));
            return with_body(cmd, request);
        }
    }
    with_body(cmd, request)
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
    let mut tested: BTreeMap<(usize, String), (usize, usize)> = BTreeMap::new();
    for r in input.results {
        let role = input.identities[r.probe.actor].role.clone();
        let entry = tested.entry((r.probe.op, role)).or_default();
        entry.0 += 1;
        if r.judgement.verdict == Verdict::Violation {
            entry.1 += 1;
        }
    }
    let mut cells = Vec::new();
    for (op_index, op) in input.api.operations.iter().enumerate() {
        for role in &input.policy.roles {
            let access = input.policy.access(op_index, role);
            let (probes, violations) = tested
                .get(&(op_index, role.clone()))
                .copied()
                .unwrap_or((0, 0));
            let coverage = match (access, probes) {
                (None, _) => "not-in-matrix",
                (_, 0) => "untested",
                _ => "tested",
            };
            cells.push(MatrixCell {
                operation: op.key(),
                role: role.clone(),
                access: access.map(|a| a.as_str().to_string()).unwrap_or_default(),
                probes,
                violations,
                coverage: coverage.to_string(),
            });
        }
    }
    cells
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engagement::Secret;
    use crate::request::Forgery;
    use crate::spec::Method;

    fn alice() -> Identity {
        Identity {
            name: "alice".into(),
            tenant: Some("acme".into()),
            role: "client".into(),
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

    #[test]
    fn severity_and_owasp() {
        let v = Verdict::Violation;
        assert_eq!(
            severity(v, Attack::IdSwap, "cross-tenant", true),
            "critical"
        );
        assert_eq!(severity(v, Attack::IdSwap, "cross-tenant", false), "high");
        assert_eq!(
            severity(v, Attack::ListLeak, "same-tenant", false),
            "medium"
        );
        assert_eq!(severity(v, Attack::Escalation, "none", false), "medium");
        assert_eq!(severity(v, Attack::MassAssignment, "own", true), "high");
        assert_eq!(
            severity(Verdict::Suspicious, Attack::IdSwap, "cross-tenant", false),
            "low"
        );
        assert_eq!(
            severity(Verdict::ServerError, Attack::Malformed, "own", true),
            "low"
        );
        assert_eq!(owasp(v, Attack::MassAssignment), "API3:2023 BOPLA");
        assert_eq!(owasp(v, Attack::MethodOverride), "API5:2023 BFLA");
        assert_eq!(owasp(v, Attack::BadAuth), "API2:2023 Broken Authentication");
        assert_eq!(owasp(v, Attack::ParamPollution), "API1:2023 BOLA");
        assert_eq!(
            owasp(Verdict::ServerError, Attack::Malformed),
            "API8:2023 Security Misconfiguration"
        );
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
}
