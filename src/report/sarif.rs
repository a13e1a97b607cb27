//! SARIF 2.1.0 for code-scanning UIs: one rule per attack kind (server errors apart), with
//! its OWASP API Security Top 10 (2023) category; one result per finding, located at the
//! operation's method key in the spec file (line and column), fingerprinted by its stable
//! ID so a UI tracks it across runs.

use super::model::*;
use serde_json::{json, Value};

/// What each rule says, by rule ID (an attack kind, or `server-error`).
fn rule_text(rule: &str) -> (&'static str, &'static str) {
    match rule {
        "id-swap" => (
            "IdSwap",
            "Another user's object served or changed when its ID is swapped in (BOLA)",
        ),
        "list-leak" => (
            "ListLeak",
            "A collection, search or export returns other tenants' objects",
        ),
        "no-auth" => ("NoAuth", "The operation answers without any credential"),
        "bad-auth" => ("BadAuth", "A forged, expired or unsigned token is accepted"),
        "escalation" => (
            "Escalation",
            "A role calls an operation the matrix denies it (BFLA)",
        ),
        "mass-assignment" => (
            "MassAssignment",
            "Privileged properties sent in a body are stored (BOPLA)",
        ),
        "param-pollution" => (
            "ParamPollution",
            "A repeated ID parameter lets a victim's object through",
        ),
        "method-override" => (
            "MethodOverride",
            "A denied operation passes as POST with a method override",
        ),
        "verb-swap" => (
            "VerbSwap",
            "A denied write passes under another HTTP method",
        ),
        "tenant-swap" => (
            "TenantSwap",
            "A tenant-selecting header gives another tenant's data",
        ),
        "malformed" => (
            "Malformed",
            "A schema-violating body is accepted and stored",
        ),
        "existence-leak" => (
            "ExistenceLeak",
            "Denials differ for existing and made-up IDs: anyone learns which exist",
        ),
        "server-error" => ("ServerError", "A probe made the server answer 5xx"),
        _ => ("Other", "An authorization check failed"),
    }
}

fn rule_id(f: &Finding) -> String {
    if f.verdict == "server-error" {
        "server-error".into()
    } else {
        f.attack.clone()
    }
}

/// GitHub code scanning reads `security-severity` (0–10) to rank results.
fn security_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
    }
}

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low => "note",
    }
}

/// Line and column (1-based) of `METHOD /path`'s method key in a YAML or JSON spec; the
/// path's key when the method is not found under it; `None` when the path is not there.
pub fn locate_operation(spec: &str, operation: &str) -> Option<(usize, usize)> {
    let (method, path) = operation.split_once(' ')?;
    let method = method.to_ascii_lowercase();
    // `key:`, `"key":` or `'key':` at the start of a trimmed line.
    let is_key = |trimmed: &str, key: &str| {
        [key.to_string(), format!("\"{key}\""), format!("'{key}'")]
            .iter()
            .any(|k| {
                trimmed
                    .strip_prefix(k.as_str())
                    .is_some_and(|rest| rest.trim_start().starts_with(':'))
            })
    };
    let lines: Vec<&str> = spec.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let (at, path_indent) = lines
        .iter()
        .enumerate()
        .find(|(_, l)| is_key(l.trim_start(), path))
        .map(|(n, l)| (n, indent(l)))?;
    for (n, line) in lines.iter().enumerate().skip(at + 1) {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        // YAML: a key at the path's indentation or less ends the path's block. JSON is
        // read the same way when pretty-printed, which specs are.
        if indent(line) <= path_indent && !trimmed.starts_with('}') {
            break;
        }
        if is_key(trimmed, &method) {
            return Some((n + 1, indent(line) + 1));
        }
    }
    Some((at + 1, path_indent + 1))
}

/// The SARIF log; `spec` is the spec file's text when it could be read (results are then
/// located at their operation's line).
pub fn to_sarif(report: &Report, spec: Option<&str>) -> String {
    let mut rules: Vec<String> = Vec::new();
    for f in &report.findings {
        let id = rule_id(f);
        if !rules.contains(&id) {
            rules.push(id);
        }
    }
    let rule_values: Vec<Value> = rules
        .iter()
        .map(|id| {
            let (name, text) = rule_text(id);
            let findings: Vec<&Finding> = report.findings.iter().filter(|f| &rule_id(f) == id).collect();
            let owasp = findings.first().map_or("", |f| f.owasp.as_str());
            let worst = findings.iter().map(|f| f.severity).min().unwrap_or(Severity::Low);
            let owasp_id = owasp.split(' ').next().unwrap_or("");
            json!({
                "id": id,
                "name": name,
                "shortDescription": {"text": text},
                "fullDescription": {"text": format!("{text}. OWASP API Security Top 10: {owasp}.")},
                "help": {"text": format!("{text}. Each result names the operation, where the check is missing, the actor → victim pairs that showed it and a curl reproduction (credentials as $ROLEGRID_… variables).")},
                "defaultConfiguration": {"level": level(worst)},
                "properties": {
                    "tags": ["security", "authorization", format!("external/owasp-api-top-10/{owasp_id}")],
                    "owasp": owasp,
                    "security-severity": security_severity(worst),
                }
            })
        })
        .collect();
    let spec_uri = report.run.spec.replace('\\', "/");
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let rule = rule_id(f);
            let index = rules.iter().position(|r| *r == rule).unwrap_or(0);
            let pairs = f.pairs();
            let mut physical = json!({"artifactLocation": {"uri": spec_uri}});
            if let Some((line, column)) = spec.and_then(|s| locate_operation(s, &f.operation)) {
                physical["region"] = json!({"startLine": line, "startColumn": column});
            }
            let mut result = json!({
                "ruleId": rule,
                "ruleIndex": index,
                "level": level(f.severity),
                "message": {"text": format!(
                    "{} {}: {} on {} at {}, shown by {} ({} probe(s)). {}",
                    f.severity, f.verdict, f.attack, f.operation, f.location,
                    pairs.join(", "), f.probes, f.evidence.reason
                )},
                "locations": [{
                    "physicalLocation": physical,
                    "logicalLocations": [{"name": f.operation, "kind": "function"}]
                }],
                "partialFingerprints": {"rolegridFindingId/v1": f.id},
                "properties": {
                    "id": f.id,
                    "severity": f.severity,
                    "owasp": f.owasp,
                    "security-severity": security_severity(f.severity),
                    "curl": f.curl,
                }
            });
            if let Some(state) = &f.baseline {
                result["baselineState"] = json!(if state == "new" { "new" } else { "unchanged" });
            }
            result
        })
        .collect();
    let log = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "rolegrid",
                "version": report.tool.version,
                "rules": rule_values,
            }},
            "invocations": [{"executionSuccessful": report.run.complete}],
            "results": results,
        }]
    });
    serde_json::to_string_pretty(&log).unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_located_at_their_method_key() {
        let yaml =
            "paths:\n  /a/{id}:\n    parameters: []\n    get:\n      x: 1\n  /b:\n    get: {}\n";
        assert_eq!(locate_operation(yaml, "GET /a/{id}"), Some((4, 5)));
        assert_eq!(locate_operation(yaml, "GET /b"), Some((7, 5)));
        // A method the path lacks points at the path.
        assert_eq!(locate_operation(yaml, "DELETE /b"), Some((6, 3)));
        assert_eq!(locate_operation(yaml, "GET /c"), None);
        let json = "{\n  \"paths\": {\n    \"/a\": {\n      \"post\": {}\n    }\n  }\n}\n";
        assert_eq!(locate_operation(json, "POST /a"), Some((4, 7)));
    }
}
