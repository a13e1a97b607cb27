//! CSV for spreadsheets: the findings (one row per finding, its actor → victim pairs in one
//! cell) and latency (one row per histogram). The observed matrix CSV is `matrix::observed`'s.

use super::model::*;

fn write_rows(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    // Writing to memory cannot fail; a failed row would only be left out.
    let _ = w.write_record(header);
    for row in rows {
        let _ = w.write_record(&row);
    }
    let bytes = w.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// One row per finding, worst first, as in report.json.
pub fn findings_csv(report: &Report) -> String {
    let rows = report
        .findings
        .iter()
        .map(|f| {
            let pairs = f.pairs();
            vec![
                f.id.clone(),
                f.severity.to_string(),
                f.verdict.clone(),
                f.attack.clone(),
                f.owasp.clone(),
                f.operation.clone(),
                f.location.clone(),
                f.instances.len().to_string(),
                f.probes.to_string(),
                pairs.join("; "),
                f.baseline.clone().unwrap_or_default(),
                f.status.map(|s| s.to_string()).unwrap_or_default(),
                f.evidence.reason.clone(),
                f.curl.clone(),
            ]
        })
        .collect();
    write_rows(
        &[
            "id",
            "severity",
            "verdict",
            "attack",
            "owasp",
            "operation",
            "location",
            "pairs",
            "probes",
            "actor_victim_pairs",
            "baseline",
            "status",
            "evidence",
            "curl",
        ],
        rows,
    )
}

/// One row per histogram: per operation (identity `*`) and per operation × identity,
/// all answers and allowed/denied apart; `p95_pass` for the operation rows.
pub fn latency_csv(report: &Report) -> String {
    let l = &report.latency;
    let rows = l
        .histograms
        .iter()
        .map(|h| {
            let p = &h.percentiles;
            let pass = if h.identity == "*" && h.outcome == "all" {
                l.operations
                    .iter()
                    .find(|o| o.operation == h.operation)
                    .map(|o| o.pass.to_string())
                    .unwrap_or_default()
            } else {
                String::new()
            };
            vec![
                h.operation.clone(),
                h.identity.clone(),
                h.outcome.clone(),
                p.count.to_string(),
                format!("{:.3}", p.p50_ms),
                format!("{:.3}", p.p95_ms),
                format!("{:.3}", p.p99_ms),
                format!("{:.3}", p.max_ms),
                l.p95_target_ms.to_string(),
                pass,
            ]
        })
        .collect();
    write_rows(
        &[
            "operation",
            "identity",
            "outcome",
            "requests",
            "p50_ms",
            "p95_ms",
            "p99_ms",
            "max_ms",
            "p95_target_ms",
            "p95_pass",
        ],
        rows,
    )
}
