//! Reports: the run's results → the [`Report`] model → `report.json` and `report.md`.
//! Every writer's output passes through the redactor before it touches the disk.

mod baseline;
mod build;
mod coverage;
mod csv_out;
mod html;
mod junit;
mod markdown;
mod merge;
mod model;
mod sarif;

pub use baseline::{compare, failing, parse_report, read_report, FailOn};
pub use build::{
    build, curl_command, finding_id, location, repro_variables, Aggregate, BuildInput, ProbeResult,
};
pub use coverage::{cell_coverage, Coverage, CoverageFacts};
pub use csv_out::{findings_csv, latency_csv};
pub use html::to_html;
pub use junit::to_junit;
pub use markdown::to_markdown;
pub use merge::merge;
pub use model::*;
pub use sarif::{locate_operation, to_sarif};

use crate::engagement::Redactor;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write the report to {path}: {source}\n  hint: check that the folder is writable, or choose another with -o")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the report {path}: {source}\n  hint: give the report.json a scan wrote")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("cannot serialise the report: {0}")]
    Serialise(#[from] serde_json::Error),
}

/// The formats a report renders to, each from the [`Report`] alone (SARIF also reads the
/// spec's text, to locate results at their operation's line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Md,
    Html,
    Csv,
    LatencyCsv,
    Junit,
    Sarif,
}

impl Format {
    pub const NAMES: &'static str = "json, md, html, csv, latency-csv, junit, sarif";

    /// The file the format is written to beside report.json.
    pub fn file_name(self) -> &'static str {
        match self {
            Format::Json => "report.json",
            Format::Md => "report.md",
            Format::Html => "report.html",
            Format::Csv => "findings.csv",
            Format::LatencyCsv => "latency.csv",
            Format::Junit => "junit.xml",
            Format::Sarif => "report.sarif",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(match text {
            "json" => Format::Json,
            "md" | "markdown" => Format::Md,
            "html" => Format::Html,
            "csv" => Format::Csv,
            "latency-csv" => Format::LatencyCsv,
            "junit" => Format::Junit,
            "sarif" => Format::Sarif,
            _ => {
                return Err(format!(
                    "unknown format `{text}`: use one of {}",
                    Format::NAMES
                ))
            }
        })
    }
}

/// The report in `format`. Not yet scrubbed: the caller passes it through the redactor.
pub fn render(report: &Report, format: Format, spec: Option<&str>) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(report).unwrap_or_default() + "\n",
        Format::Md => to_markdown(report),
        Format::Html => to_html(report),
        Format::Csv => findings_csv(report),
        Format::LatencyCsv => latency_csv(report),
        Format::Junit => to_junit(report),
        Format::Sarif => to_sarif(report, spec),
    }
}

/// The report in `format`, credentials scrubbed twice: from the model before rendering (the
/// redactor knows JSON-escaped forms, not the HTML, XML or CSV escapes a writer adds, so a
/// credential with `&`, `<` or `"` in it would slip past a scrub of the output alone) and
/// from the output after.
pub fn render_scrubbed(
    report: &Report,
    format: Format,
    spec: Option<&str>,
    redactor: &Redactor,
) -> String {
    // A credential that matches inside a number breaks the JSON: the output scrub remains.
    let scrubbed: Option<Report> = serde_json::to_string(report)
        .ok()
        .and_then(|json| serde_json::from_str(&redactor.scrub(&json)).ok());
    redactor.scrub(&render(scrubbed.as_ref().unwrap_or(report), format, spec))
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

/// How the terminal summary is drawn.
#[derive(Debug, Clone, Copy, Default)]
pub struct SummaryStyle {
    /// ANSI colours (the CLI turns them off for NO_COLOR and when stdout is no TTY).
    pub color: bool,
    /// Also each finding's instances (actor → victim and the variants seen).
    pub verbose: bool,
}

/// The stdout summary without colour: see [`summary_text_styled`].
pub fn summary_text(report: &Report) -> String {
    summary_text_styled(report, SummaryStyle::default())
}

fn paint(style: SummaryStyle, code: &str, text: &str) -> String {
    if style.color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

fn severity_color(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "1;31",
        Severity::High => "31",
        Severity::Medium => "33",
        Severity::Low => "36",
    }
}

/// Pads `text` to `width` characters (by chars: operations hold `→` and `{}`).
fn pad(text: &str, width: usize) -> String {
    let n = text.chars().count();
    format!("{text}{}", " ".repeat(width.saturating_sub(n)))
}

/// The stdout summary: the findings count per severity (one finding per flaw), what the
/// probes came to, then one table row per finding, worst first, and the latency verdict.
pub fn summary_text_styled(report: &Report, style: SummaryStyle) -> String {
    let s = &report.stats;
    let by = &s.findings_by_severity;
    let severities: Vec<String> = Severity::ALL
        .iter()
        .map(|&sev| {
            let text = format!("{} {sev}", by.get(sev));
            if by.get(sev) > 0 {
                paint(style, severity_color(sev), &text)
            } else {
                text
            }
        })
        .collect();
    let mut out = format!(
        "rolegrid: {} finding{} ({}); a finding is one flaw: an operation × attack × where, however many probes showed it\n",
        s.findings,
        if s.findings == 1 { "" } else { "s" },
        severities.join(", ")
    );
    out.push_str(&format!(
        "probes: {} sent, judged {} violations, {} suspicious, {} over-restricted, {} server errors, {} inconclusive, {} enforced; {} requests in all ({:.2} s)\n",
        s.probes, s.violations, s.suspicious, s.over_restricted, s.server_errors, s.inconclusive, s.enforced, s.requests, s.wall_seconds
    ));
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
    if let Some(f) = &report.faults {
        let kinds: Vec<String> = f
            .by_kind
            .iter()
            .map(|r| format!("{} {}", r.count, r.kind.as_str()))
            .collect();
        out.push_str(&format!(
            "faults of the target met by probes: {} ({}; none judged enforced or violation)\n",
            f.total,
            kinds.join(", ")
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
    if let Some(b) = &report.baseline {
        out.push_str(&format!(
            "baseline {}: {} new, {} still open, {} fixed\n",
            b.file,
            b.new.len(),
            b.still_open.len(),
            b.fixed.len()
        ));
    }
    if !report.findings.is_empty() {
        let widths = |f: fn(&Finding) -> String, title: &str| {
            report
                .findings
                .iter()
                .map(|x| f(x).chars().count())
                .chain([title.chars().count()])
                .max()
                .unwrap_or(0)
        };
        let w_op = widths(|f| f.operation.clone(), "OPERATION");
        let w_loc = widths(|f| f.location.clone(), "WHERE").min(40);
        let w_attack = widths(|f| f.attack.clone(), "ATTACK");
        let w_verdict = widths(|f| f.verdict.clone(), "VERDICT");
        let baseline = report.baseline.is_some();
        out.push('\n');
        let header = format!(
            "  {}  {}  {}  {}  {}  {}  PAIRS{}",
            pad("ID", 11),
            pad("SEVERITY", 8),
            pad("VERDICT", w_verdict),
            pad("ATTACK", w_attack),
            pad("OPERATION", w_op),
            pad("WHERE", w_loc),
            if baseline { "  BASELINE" } else { "" }
        );
        out.push_str(&paint(style, "1", header.trim_end()));
        out.push('\n');
        for f in &report.findings {
            let location: String = if f.location.chars().count() > w_loc {
                f.location.chars().take(w_loc - 1).chain(['…']).collect()
            } else {
                f.location.clone()
            };
            let line = format!(
                "  {}  {}  {}  {}  {}  {}  {:>5}{}",
                pad(&f.id, 11),
                paint(
                    style,
                    severity_color(f.severity),
                    &pad(f.severity.as_str(), 8)
                ),
                pad(&f.verdict, w_verdict),
                pad(&f.attack, w_attack),
                pad(&f.operation, w_op),
                pad(&location, w_loc),
                f.instances.len(),
                match (&f.baseline, baseline) {
                    (Some(state), _) => format!("  {state}"),
                    (None, true) => "  -".into(),
                    (None, false) => String::new(),
                }
            );
            out.push_str(&line);
            out.push('\n');
            if style.verbose {
                for i in &f.instances {
                    let victim = i
                        .victim
                        .as_ref()
                        .map(|v| format!(" → {}", v.identity))
                        .unwrap_or_default();
                    out.push_str(&format!(
                        "      {}{}  [{}] {}\n",
                        i.actor.identity,
                        victim,
                        i.status.map_or_else(|| "-".into(), |s| s.to_string()),
                        i.variants.join("; ")
                    ));
                }
            }
        }
    }
    if let Some(b) = &report.baseline {
        for f in &b.fixed {
            out.push_str(&format!(
                "  fixed: {} {} {} {} ({})\n",
                f.id, f.severity, f.attack, f.operation, f.location
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        parse_report(
            include_str!("../../reports/sample/report.json"),
            Path::new("reports/sample/report.json"),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_credential_an_escape_would_disguise_is_scrubbed_from_every_format() {
        let secret = "p&ss<w>rd\"1'";
        let mut report = sample();
        let held = format!("the answer held {secret}");
        report.findings[0].evidence.reason = held.clone();
        report.findings[0].instances[0].evidence.reason = held.clone();
        report.matrix[0].reason = held;
        let redactor = Redactor::new();
        redactor.register(secret);
        for format in [Format::Html, Format::Junit, Format::Csv, Format::Md] {
            let text = render_scrubbed(&report, format, None, &redactor);
            for form in ["p&amp;ss", "p&ss", "&lt;w&gt;rd", "rd\"\"1", "rd&quot;1"] {
                assert!(!text.contains(form), "{form} in {format:?}");
            }
        }
        // Unscrubbed, the escaped forms are there (what the model scrub is for).
        assert!(to_html(&report).contains("p&amp;ss&lt;w&gt;rd"));
        assert!(to_junit(&report).contains("p&amp;ss&lt;w&gt;rd"));
        assert!(findings_csv(&report).contains("rd\"\"1"));
    }

    #[test]
    fn the_summary_counts_findings_first_and_colours_only_when_asked() {
        let report = sample();
        let plain = summary_text(&report);
        let first = plain.lines().next().unwrap_or("");
        assert!(
            first.starts_with(&format!("rolegrid: {} findings (", report.findings.len())),
            "{first}"
        );
        assert!(!plain.contains('\u{1b}'));
        // One table row per finding, under a header.
        let rows = plain.lines().filter(|l| l.starts_with("  RG-")).count();
        assert_eq!(rows, report.findings.len());
        assert!(plain.contains("  ID           SEVERITY"), "{plain}");
        let coloured = summary_text_styled(
            &report,
            SummaryStyle {
                color: true,
                verbose: false,
            },
        );
        assert!(coloured.contains("\u{1b}[1;31mcritical"), "{coloured}");
        let verbose = summary_text_styled(
            &report,
            SummaryStyle {
                color: false,
                verbose: true,
            },
        );
        assert!(verbose.contains("      alice → bob  ["), "{verbose}");
        assert!(!plain.contains("alice → bob"));
    }
}
