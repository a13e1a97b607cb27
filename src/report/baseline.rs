//! Regression runs: reading a report.json back, comparing it with a previous run's by
//! the findings' stable IDs (new / still open / fixed), and deciding which findings fail
//! a build (`--fail-on`).

use super::model::*;
use super::ReportError;
use std::collections::BTreeSet;
use std::path::Path;

/// Reads a report.json written by this major schema version.
pub fn read_report(path: &Path) -> Result<Report, ReportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ReportError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_report(&text, path)
}

/// [`read_report`] of text already read; `path` names it in errors.
pub fn parse_report(text: &str, path: &Path) -> Result<Report, ReportError> {
    let invalid = |line: usize, message: String| ReportError::Invalid {
        path: path.to_path_buf(),
        line,
        message,
    };
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| invalid(e.line(), format!("not JSON: {e}")))?;
    let version = value
        .get("schema_version")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("");
    let major = |v: &str| v.split('.').next().unwrap_or("").to_string();
    if major(version) != major(SCHEMA_VERSION) {
        return Err(invalid(
            1,
            format!(
                "schema_version `{version}` is not {SCHEMA_VERSION}: re-run the scan with this rolegrid to get a report it can read"
            ),
        ));
    }
    serde_json::from_value(value).map_err(|e| invalid(1, format!("not a rolegrid report: {e}")))
}

/// Marks each finding of `report` `new` or `still-open` against `baseline` (same ID), and
/// lists the baseline's findings this run no longer shows as fixed.
pub fn compare(report: &mut Report, baseline: &Report, file: &str) {
    let before: BTreeSet<&str> = baseline.findings.iter().map(|f| f.id.as_str()).collect();
    let now: BTreeSet<String> = report.findings.iter().map(|f| f.id.clone()).collect();
    let mut section = BaselineSection {
        file: file.to_string(),
        ..BaselineSection::default()
    };
    for f in &mut report.findings {
        if before.contains(f.id.as_str()) {
            f.baseline = Some("still-open".into());
            section.still_open.push(f.id.clone());
        } else {
            f.baseline = Some("new".into());
            section.new.push(f.id.clone());
        }
    }
    section.fixed = baseline
        .findings
        .iter()
        .filter(|f| !now.contains(&f.id))
        .map(|f| FixedFinding {
            id: f.id.clone(),
            operation: f.operation.clone(),
            attack: f.attack.clone(),
            location: f.location.clone(),
            severity: f.severity,
        })
        .collect();
    report.baseline = Some(section);
}

/// Which violations fail a build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOn {
    /// Every open violation, whatever its severity, also those a baseline already had.
    Any,
    /// Violations of this severity or worse (new ones only, with a baseline).
    AtLeast(Severity),
}

impl std::str::FromStr for FailOn {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text == "any" {
            return Ok(FailOn::Any);
        }
        Severity::parse(text).map(FailOn::AtLeast).ok_or_else(|| {
            format!("`{text}` is not a severity: use critical, high, medium, low or any")
        })
    }
}

/// The violation findings that fail the build: with a baseline only the new ones (unless
/// `Any`), and only those at or above the threshold. `None` = every violation.
pub fn failing(report: &Report, fail_on: Option<FailOn>) -> Vec<&Finding> {
    let new_only = report.baseline.is_some() && fail_on != Some(FailOn::Any);
    report
        .findings
        .iter()
        .filter(|f| f.verdict == "violation")
        .filter(|f| !new_only || f.baseline.as_deref() == Some("new"))
        .filter(|f| match fail_on {
            Some(FailOn::AtLeast(threshold)) => f.severity <= threshold,
            Some(FailOn::Any) | None => true,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(id: &str, severity: Severity) -> Finding {
        Finding {
            id: id.into(),
            verdict: "violation".into(),
            attack: "id-swap".into(),
            operation: "GET /x/{id}".into(),
            location: "path parameter `id`".into(),
            severity,
            owasp: "API1:2023 BOLA".into(),
            probes: 1,
            baseline: None,
            actor: Party::default(),
            victim: None,
            relation: "cross-tenant".into(),
            request: RequestInfo::default(),
            status: Some(200),
            evidence: Evidence::default(),
            curl: String::new(),
            variables: Vec::new(),
            exchanges: Vec::new(),
            instances: Vec::new(),
        }
    }

    fn report(findings: Vec<Finding>) -> Report {
        let text = include_str!("../../reports/sample/report.json");
        let mut r = parse_report(text, Path::new("reports/sample/report.json"))
            .unwrap_or_else(|e| panic!("{e}"));
        r.findings = findings;
        r
    }

    #[test]
    fn baseline_marks_new_open_and_fixed_and_fails_only_on_new() {
        let old = report(vec![
            finding("RG-00000001", Severity::High),
            finding("RG-00000002", Severity::Low),
        ]);
        let mut now = report(vec![
            finding("RG-00000001", Severity::High),
            finding("RG-00000003", Severity::Low),
        ]);
        compare(&mut now, &old, "old.json");
        let b = now.baseline.clone().unwrap_or_default();
        assert_eq!(b.new, ["RG-00000003"]);
        assert_eq!(b.still_open, ["RG-00000001"]);
        assert_eq!(b.fixed.len(), 1);
        assert_eq!(b.fixed[0].id, "RG-00000002");
        let ids = |v: Vec<&Finding>| v.iter().map(|f| f.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(failing(&now, None)), ["RG-00000003"]);
        assert_eq!(ids(failing(&now, Some(FailOn::Any))).len(), 2);
        // The new finding is low: a `high` threshold lets the build pass.
        assert!(failing(&now, Some(FailOn::AtLeast(Severity::High))).is_empty());
        assert_eq!("medium".parse(), Ok(FailOn::AtLeast(Severity::Medium)));
        assert!("severe".parse::<FailOn>().is_err());
    }

    #[test]
    fn an_old_schema_is_refused_with_what_to_do() {
        let err = parse_report(r#"{"schema_version": "1.0"}"#, Path::new("old.json"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("old.json") && err.contains("re-run"), "{err}");
    }
}
