//! The matrix as the API actually behaved in a scan, read from a `report.json`: each
//! declared cell widened where a violation proved more access, narrowed where the API
//! refused what the policy allows. Product owners diff it against what they declared.

use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedCell {
    pub declared: String,
    pub observed: String,
    /// Why the observed cell differs (empty when it does not).
    pub because: String,
}

#[derive(Debug, Clone)]
pub struct Observed {
    pub roles: Vec<String>,
    /// operation → cells in `roles` order.
    pub rows: Vec<(String, Vec<ObservedCell>)>,
}

fn rank(access: &str) -> usize {
    match access {
        "deny" => 0,
        "own" => 1,
        "tenant" => 2,
        "allow" => 3,
        _ => 0,
    }
}

/// Reads the declared cells and the findings of a report; `Err` names what is missing.
pub fn from_report(report: &Value) -> Result<Observed, String> {
    let cells = report
        .get("matrix")
        .and_then(Value::as_array)
        .ok_or("the report has no `matrix` array (is it a rolegrid report.json?)")?;
    let mut roles: Vec<String> = Vec::new();
    let mut rows: Vec<(String, Vec<ObservedCell>)> = Vec::new();
    let mut index: BTreeMap<(String, String), (usize, usize)> = BTreeMap::new();
    for cell in cells {
        let op = cell
            .get("operation")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let role = cell
            .get("role")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let declared = cell
            .get("access")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if !roles.contains(&role) {
            roles.push(role.clone());
        }
        let row = match rows.iter().position(|(o, _)| *o == op) {
            Some(r) => r,
            None => {
                rows.push((op.clone(), Vec::new()));
                rows.len() - 1
            }
        };
        let column = rows[row].1.len();
        rows[row].1.push(ObservedCell {
            observed: declared.clone(),
            declared,
            because: String::new(),
        });
        index.insert((op, role), (row, column));
    }
    let findings = report
        .get("findings")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    // Each instance of a finding (one actor → victim pair) is a cell's evidence; a
    // finding without instances (an older report) is its own.
    let instances =
        findings
            .iter()
            .flat_map(|f| match f.get("instances").and_then(Value::as_array) {
                Some(list) if !list.is_empty() => list.iter().map(|i| (f, i)).collect::<Vec<_>>(),
                _ => vec![(f, f)],
            });
    for (finding, f) in instances {
        let of_finding = |k: &str| {
            finding
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let (id, op) = (of_finding("id"), of_finding("operation"));
        let text = |k: &str| {
            f.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let (verdict, attack, relation) = (text("verdict"), text("attack"), text("relation"));
        let role = f
            .pointer("/actor/role")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        // An existence leak says which IDs exist, not that the caller got more access.
        if attack == "existence-leak" {
            continue;
        }
        let Some(&(row, column)) = index.get(&(op, role)) else {
            continue;
        };
        let cell = &mut rows[row].1[column];
        let seen = match (verdict.as_str(), relation.as_str()) {
            ("violation", "cross-tenant") => "allow",
            ("violation", "same-tenant") => "tenant",
            // Granted a function or a credential-free call it should not have: at least
            // the declared scope widened to the object it reached; `allow` is the honest
            // reading when no tenant boundary was involved.
            ("violation", _) => "allow",
            ("over-restricted", _) => "deny",
            _ => continue,
        };
        let widen = verdict == "violation" && rank(seen) > rank(&cell.observed);
        let narrow = verdict == "over-restricted" && rank(seen) < rank(&cell.observed);
        if widen || narrow {
            cell.observed = seen.to_string();
            cell.because = format!("{id} {attack} {verdict}");
        }
    }
    Ok(Observed { roles, rows })
}

impl Observed {
    pub fn to_csv(&self) -> String {
        let mut out = format!("operation,{}\n", self.roles.join(","));
        for (op, cells) in &self.rows {
            let op = if op.contains(',') {
                format!("\"{op}\"")
            } else {
                op.clone()
            };
            let values: Vec<&str> = cells.iter().map(|c| c.observed.as_str()).collect();
            out.push_str(&format!("{op},{}\n", values.join(",")));
        }
        out
    }

    /// `operation × role: declared → observed (because)`, one line per difference.
    pub fn differences(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (op, cells) in &self.rows {
            for (role, cell) in self.roles.iter().zip(cells) {
                if cell.observed != cell.declared {
                    out.push(format!(
                        "{op} × {role}: declared {} → observed {} ({})",
                        cell.declared, cell.observed, cell.because
                    ));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn violations_widen_and_refusals_narrow() {
        let report = json!({
            "matrix": [
                {"operation": "GET /a/{id}", "role": "client", "access": "own"},
                {"operation": "GET /a/{id}", "role": "admin", "access": "allow"},
                {"operation": "GET /admin", "role": "client", "access": "deny"},
                {"operation": "GET /admin", "role": "admin", "access": "allow"}
            ],
            "findings": [
                {"id": "F001", "operation": "GET /a/{id}", "verdict": "violation", "attack": "id-swap", "relation": "cross-tenant", "actor": {"role": "client"}},
                {"id": "F002", "operation": "GET /admin", "verdict": "over-restricted", "attack": "escalation", "relation": "none", "actor": {"role": "admin"}}
            ]
        });
        let observed = from_report(&report).expect("observed");
        assert_eq!(
            observed.to_csv(),
            "operation,client,admin\nGET /a/{id},allow,allow\nGET /admin,deny,deny\n"
        );
        assert_eq!(observed.differences().len(), 2);
    }
}
