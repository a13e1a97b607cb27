//! Reports: the run's results → the [`Report`] model → `report.json` and `report.md`.
//! Every writer's output passes through the redactor before it touches the disk.

mod build;
mod coverage;
mod markdown;
mod model;

pub use build::{build, canary_section, curl_command, Aggregate, BuildInput, ProbeResult};
pub use coverage::{cell_coverage, Coverage, CoverageFacts};
pub use markdown::to_markdown;
pub use model::*;

use crate::engagement::Redactor;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write the report to {path}: {source}\n  hint: check that the folder is writable, or choose another with -o")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot serialise the report: {0}")]
    Serialise(#[from] serde_json::Error),
}

/// Writes `report.json`, `report.md` and `matrix-observed.csv` (the matrix as the API
/// behaved, for the product owner) into `dir`, created if missing; returns their paths.
pub fn write_all(
    report: &Report,
    dir: &Path,
    redactor: &Redactor,
) -> Result<Vec<PathBuf>, ReportError> {
    std::fs::create_dir_all(dir).map_err(|source| ReportError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let json = serde_json::to_string_pretty(report)? + "\n";
    let observed = serde_json::to_value(report)
        .ok()
        .and_then(|v| crate::matrix::observed::from_report(&v).ok())
        .map(|o| o.to_csv())
        .unwrap_or_default();
    let outputs = [
        ("report.json", json),
        ("report.md", to_markdown(report)),
        ("matrix-observed.csv", observed),
    ];
    let mut paths = Vec::new();
    for (name, text) in outputs {
        let path = dir.join(name);
        write_atomic(&path, redactor.scrub(&text).as_bytes()).map_err(|source| {
            ReportError::Write {
                path: path.clone(),
                source,
            }
        })?;
        paths.push(path);
    }
    Ok(paths)
}

/// Writes a sibling temporary file, then renames it over `path`: a reader (or a run killed
/// by a second Ctrl-C mid-write) sees the old file or the new one, never half of one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let temp = path.with_file_name(format!(
        ".{}.{}.tmp",
        name.as_deref().unwrap_or("report"),
        std::process::id()
    ));
    std::fs::write(&temp, bytes)?;
    std::fs::rename(&temp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temp);
    })
}

/// The stdout summary: counts, then one line per finding.
pub fn summary_text(report: &Report) -> String {
    let s = &report.stats;
    let mut out = format!(
        "rolegrid: {} probes, {} violations, {} suspicious, {} over-restricted, {} server errors, {} inconclusive ({:.2} s)\n",
        s.probes, s.violations, s.suspicious, s.over_restricted, s.server_errors, s.inconclusive, s.wall_seconds
    );
    if !report.run.complete {
        match report.stopped.as_ref() {
            Some(s) if s.reason == "target-down" => out.push_str(&format!(
                "rolegrid: the target stopped answering; the scan stopped and this report is partial ({} probe(s) not run)\n",
                s.probes_not_run
            )),
            _ => out.push_str("rolegrid: the run was interrupted; this report is partial\n"),
        }
    }
    for l in &report.identities_lost {
        out.push_str(&format!(
            "rolegrid: identity `{}` lost its login{}; {} probe(s) inconclusive because of it\n",
            l.identity,
            if l.reprovisioned {
                " and was re-provisioned"
            } else {
                ""
            },
            l.affected_probes.len()
        ));
    }
    if let Some(c) = &report.canaries {
        out.push_str(&format!(
            "canaries: {} created, {} deleted, {} deleted by probes, {} left\n",
            c.created,
            c.deleted,
            c.deleted_by_probes,
            c.left.len()
        ));
    }
    if let Some(p) = &report.probe_objects {
        out.push_str(&format!(
            "objects created by probes: {} created, {} deleted, {} already gone, {} left\n",
            p.created,
            p.deleted,
            p.already_gone,
            p.left.len()
        ));
    }
    if !report.posture.is_empty() {
        let checks: std::collections::BTreeSet<&str> =
            report.posture.iter().map(|w| w.check.as_str()).collect();
        out.push_str(&format!(
            "posture: {} weakness(es): {} (see the report's posture section)\n",
            report.posture.len(),
            checks.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    if !report.findings.is_empty() {
        let width = report
            .findings
            .iter()
            .map(|f| f.operation.len())
            .max()
            .unwrap_or(0);
        out.push('\n');
        for f in &report.findings {
            let victim = f
                .victim
                .as_ref()
                .map(|v| format!(" → {}", v.identity))
                .unwrap_or_default();
            out.push_str(&format!(
                "  {:<4} {:<15} {:<8} {:<15} {:<width$}  {}{}  [{}]\n",
                f.id,
                f.verdict,
                f.severity,
                f.attack,
                f.operation,
                f.actor.identity,
                victim,
                f.status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "-".into()),
            ));
        }
    }
    let failing: Vec<&OperationLatency> = report
        .latency
        .operations
        .iter()
        .filter(|o| !o.pass)
        .collect();
    out.push('\n');
    if failing.is_empty() {
        out.push_str(&format!(
            "latency: p95 within {} ms on all {} operations\n",
            report.latency.p95_target_ms,
            report.latency.operations.len()
        ));
    } else {
        for o in failing {
            out.push_str(&format!(
                "latency: {} p95 {:.1} ms exceeds the {} ms target\n",
                o.operation, o.percentiles.p95_ms, report.latency.p95_target_ms
            ));
        }
    }
    out
}
