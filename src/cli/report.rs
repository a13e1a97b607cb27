//! The report flags of `scan` and `demo` (`--fail-on`, `--baseline`, `--format`,
//! `--quiet`, `--verbose`) and the `rolegrid report` command that re-renders a report.json.

use super::exit::{self, fail};
use clap::Args;
use rolegrid::engagement::Redactor;
use rolegrid::report::{self, FailOn, Format, Report, SummaryStyle};
use rolegrid::scan::ScanOutcome;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

#[derive(Debug, Args, Clone, Default)]
pub struct ReportFlags {
    /// Exit 1 only for violations of this severity or worse (critical, high, medium, low),
    /// or `any`: every open violation, also those the --baseline already had.
    #[arg(long, value_name = "SEVERITY|any")]
    pub fail_on: Option<FailOn>,
    /// A previous report.json: each finding is marked new, still open or fixed, and only
    /// new violations fail the run (unless --fail-on any).
    #[arg(long, value_name = "REPORT_JSON")]
    pub baseline: Option<PathBuf>,
    /// Also write these formats next to report.json: html, csv, latency-csv, junit, sarif.
    #[arg(long = "format", value_name = "FORMAT", value_delimiter = ',')]
    pub formats: Vec<Format>,
    /// Print only the findings line (counts per severity).
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Also print each finding's actor → victim pairs and the variants that showed it.
    #[arg(short, long)]
    pub verbose: bool,
}

impl ReportFlags {
    /// The baseline report, read before anything is sent so a bad path fails fast.
    pub fn load_baseline(&self) -> Result<Option<Report>, String> {
        self.baseline
            .as_deref()
            .map(|path| report::read_report(path).map_err(|e| format!("--baseline: {e}")))
            .transpose()
    }

    /// Compares with the baseline and writes the extra formats; report.json and report.md
    /// are written again when a baseline changed them.
    pub fn finish(
        &self,
        outcome: &mut ScanOutcome,
        baseline: Option<&Report>,
        dir: &Path,
        redactor: &Redactor,
    ) -> Result<(), String> {
        if let (Some(b), Some(path)) = (baseline, &self.baseline) {
            report::compare(&mut outcome.report, b, &path.display().to_string());
            let files =
                report::write_all(&outcome.report, dir, redactor).map_err(|e| e.to_string())?;
            outcome.files = files;
        }
        let spec = spec_text(&outcome.report);
        for format in &self.formats {
            let path = dir.join(format.file_name());
            let text = render(&outcome.report, *format, spec.as_deref(), redactor);
            report::write_atomic(&path, text.as_bytes())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            outcome.files.push(path);
        }
        Ok(())
    }

    /// A scan's exit code: a partial run first (its findings stand in the report, but CI
    /// must not read "1 violation" as "the scan ran"), then violations (per --fail-on and
    /// --baseline), a failed p95 target, or posture weaknesses at the engagement's
    /// `posture.fail_on`.
    pub fn exit_code(&self, report: &Report, posture_gate: Option<&str>) -> u8 {
        if !report.run.complete {
            exit::RUN_FAILURE
        } else if self.fails(report)
            || !report.latency.pass
            || rolegrid::posture::fails_gate(&report.posture, posture_gate)
        {
            exit::VIOLATIONS
        } else {
            exit::CLEAN
        }
    }

    /// Whether the run fails on its findings (see [`report::failing`]).
    pub fn fails(&self, report: &Report) -> bool {
        !report::failing(report, self.fail_on).is_empty()
    }
}

/// The summary as the flags and the terminal want it: colour only on a TTY without
/// NO_COLOR; `--quiet` keeps the findings line.
pub fn summary(report: &Report, flags: &ReportFlags) -> String {
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let text = report::summary_text_styled(
        report,
        SummaryStyle {
            color,
            verbose: flags.verbose,
        },
    );
    if flags.quiet {
        text.lines()
            .next()
            .map(|l| format!("{l}\n"))
            .unwrap_or_default()
    } else {
        text
    }
}

/// [`report::render_scrubbed`], with SARIF's spec path made relative to the working directory when
/// it is absolute and under it: code-scanning UIs resolve locations against the checkout.
fn render(report: &Report, format: Format, spec: Option<&str>, redactor: &Redactor) -> String {
    let relative = (format == Format::Sarif)
        .then(|| {
            let cwd = std::env::current_dir().ok()?;
            let rel = Path::new(&report.run.spec).strip_prefix(cwd).ok()?;
            let mut copy = report.clone();
            copy.run.spec = rel.display().to_string();
            Some(copy)
        })
        .flatten();
    report::render_scrubbed(relative.as_ref().unwrap_or(report), format, spec, redactor)
}

/// The spec the report names, when it can be read from here (SARIF points into it).
fn spec_text(report: &Report) -> Option<String> {
    std::fs::read_to_string(&report.run.spec).ok().or_else(|| {
        // The demo's spec is embedded in the binary.
        (report.run.spec == "specs/demo-portal.yaml")
            .then(|| rolegrid::demo_scan::DEMO_SPEC.to_string())
    })
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A report.json written by `rolegrid scan` or `rolegrid demo`.
    pub report: PathBuf,
    /// What to render: html, md, csv (findings), latency-csv, junit, sarif, json.
    #[arg(short, long, value_name = "FORMAT")]
    pub format: Format,
    /// Write here instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The spec file, when the path in the report does not open from here (SARIF
    /// locates results at the operation's line in it).
    #[arg(long, value_name = "FILE")]
    pub spec: Option<PathBuf>,
}

pub fn report_command(args: ReportArgs) -> u8 {
    let report = match report::read_report(&args.report) {
        Ok(r) => r,
        Err(e) => return fail(exit::BAD_INPUT, e),
    };
    let spec = match &args.spec {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(text) => Some(text),
            Err(e) => {
                return fail(
                    exit::BAD_INPUT,
                    format!("--spec {}: cannot read it: {e}", path.display()),
                )
            }
        },
        None => spec_text(&report),
    };
    // The report.json was scrubbed when written; no credential is known here to scrub again.
    let text = render(&report, args.format, spec.as_deref(), &Redactor::process());
    match super::common::write_or_print(args.output.as_deref(), &text) {
        Ok(()) => exit::CLEAN,
        Err(e) => fail(exit::RUN_FAILURE, e),
    }
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The shard reports (report.json of each `scan --shard i/N` job).
    #[arg(required = true, num_args = 1..)]
    pub reports: Vec<PathBuf>,
    /// Output folder for the merged report.json, report.md and matrix-observed.csv.
    #[arg(short, long, value_name = "DIR", default_value = "reports/merged")]
    pub output: PathBuf,
    #[command(flatten)]
    pub report: ReportFlags,
}

/// `rolegrid merge`: shard reports → one report, written and summarised; the exit code
/// as a scan's (violations per --fail-on and --baseline, 3 when a shard is missing).
pub fn merge_command(args: MergeArgs) -> u8 {
    let mut reports = Vec::new();
    for path in &args.reports {
        match report::read_report(path) {
            Ok(r) => reports.push(r),
            Err(e) => return fail(exit::BAD_INPUT, e),
        }
    }
    let baseline = match args.report.load_baseline() {
        Ok(b) => b,
        Err(e) => return fail(exit::BAD_INPUT, e),
    };
    let names: Vec<String> = args
        .reports
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let merged = match report::merge(reports, &names) {
        Ok(m) => m,
        Err(e) => return fail(exit::BAD_INPUT, e),
    };
    // The shards' reports were scrubbed when written; no credential is known here.
    let redactor = Redactor::process();
    let files = match report::write_all(&merged, &args.output, &redactor) {
        Ok(f) => f,
        Err(e) => return fail(exit::RUN_FAILURE, e),
    };
    let mut outcome = ScanOutcome {
        report: merged,
        files,
    };
    if let Err(e) = args
        .report
        .finish(&mut outcome, baseline.as_ref(), &args.output, &redactor)
    {
        return fail(exit::RUN_FAILURE, e);
    }
    super::commands::print_outcome(&outcome, &args.report, &redactor);
    args.report.exit_code(&outcome.report, None)
}
