//! The raw command line (clap derive): flags only, no validation beyond their types.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "rolegrid",
    version,
    about = "IDOR and authorization fuzzing: does the API enforce the role matrix it claims?",
    after_help = "Exit codes: 0 no violations, 1 violations found, 2 bad input, 3 run failure."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scan a target described by an engagement file.
    Scan(ScanArgs),
    /// Validate an engagement, its spec and its matrix; send nothing (logins with --login).
    Check(CheckArgs),
    /// Start the embedded demo client portal and scan it (or only serve it).
    Demo(DemoArgs),
    /// List a spec's operations: security, ID parameters, and what the planner can do.
    Ops(OpsArgs),
    /// Role matrices for product owners: a draft from the spec, or the observed one.
    #[command(subcommand)]
    Matrix(MatrixCommand),
    /// Replay each identity's allowed reads under load and check the p95 target.
    Latency(super::latency::LatencyArgs),
    /// Re-render a report.json as html, md, csv, latency-csv, junit or sarif.
    Report(super::report::ReportArgs),
    /// Join the report.json files of `scan --shard i/N` jobs into one report.
    Merge(super::report::MergeArgs),
}

#[derive(Debug, Subcommand)]
pub enum MatrixCommand {
    /// Write a starting matrix CSV from a spec, to correct in a spreadsheet.
    Draft {
        /// OpenAPI 3.0/3.1 or Swagger 2.0 document.
        spec: PathBuf,
        /// Role columns, narrowest first (anonymous is always allowed as a name).
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "anonymous,client,staff,admin"
        )]
        roles: Vec<String>,
        /// Write here instead of stdout (an existing file only with --force).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Overwrite the --output file, an edited matrix included.
        #[arg(long)]
        force: bool,
    },
    /// The matrix as the API behaved in a scan (from its report.json), with the differences.
    Observed {
        /// A report.json written by `rolegrid scan` or `rolegrid demo`.
        report: PathBuf,
        /// Write the observed matrix CSV here instead of stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct OpsArgs {
    /// OpenAPI 3.0/3.1 or Swagger 2.0 document (YAML or JSON).
    pub spec: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Where requests go, from the command line (CI): checked as the engagement's keys are.
#[derive(Debug, Args, Clone, Default)]
pub struct ReachFlags {
    /// Send to this base URL instead of the engagement's `target` (checked as `target` is).
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,
    /// Send every request through this HTTP proxy (Burp, ZAP) instead of the engagement's
    /// `proxy` or HTTPS_PROXY/HTTP_PROXY; its CA goes in the engagement's `tls.ca_cert`.
    #[arg(long, value_name = "URL")]
    pub proxy: Option<String>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Engagement file (YAML): target, spec, matrix, identities.
    #[arg(short = 'c', long = "config", value_name = "ENGAGEMENT")]
    pub engagement: PathBuf,
    /// Also log every identity in (the only requests `check` sends).
    #[arg(long)]
    pub login: bool,
    #[command(flatten)]
    pub reach: ReachFlags,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Engagement file (YAML): target, spec, matrix, identities.
    #[arg(short = 'c', long = "config", value_name = "ENGAGEMENT")]
    pub engagement: PathBuf,
    #[command(flatten)]
    pub reach: ReachFlags,
    /// Print the plan (probes per attack, the requests) and send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Output folder for report.json and report.md [default: reports/<engagement name>].
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Override the engagement's p95 latency target.
    #[arg(long, value_name = "MS")]
    pub p95_target_ms: Option<u64>,
    /// Override the engagement's concurrency.
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    #[command(flatten)]
    pub run: RunFlags,
    /// Send only slice i of N of the plan (a CI matrix job); join the reports with
    /// `rolegrid merge`. Every job logs in, discovers and creates canaries itself.
    #[arg(long, value_name = "i/N")]
    pub shard: Option<rolegrid::scan::Shard>,
    #[command(flatten)]
    pub report: super::report::ReportFlags,
}

/// How a scan runs, the same for `scan` and `demo`: its request rate, its seed and its
/// progress bar.
#[derive(Debug, Args)]
pub struct RunFlags {
    /// Cap the whole run at this many requests per second.
    #[arg(long, value_name = "PER_SECOND")]
    pub rate_limit: Option<f64>,
    /// Fix write markers and clock fields so two runs give the same report.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Never draw the progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(Debug, Args)]
// The demo's run is its scan of the portal: its help says so.
#[command(mut_arg("rate_limit", |arg| arg.help("Cap the demo scan at this many requests per second")))]
pub struct DemoArgs {
    /// Output folder for the demo scan's reports.
    #[arg(short, long, value_name = "DIR", default_value = "reports/demo")]
    pub output: PathBuf,
    /// Turn every planted flaw off.
    #[arg(long)]
    pub secure: bool,
    /// Turn this planted flaw on (after --secure: only the named ones are on).
    #[arg(long = "flaw", value_name = "ID")]
    pub flaws: Vec<String>,
    /// Turn this planted flaw off.
    #[arg(long = "no-flaw", value_name = "ID")]
    pub no_flaws: Vec<String>,
    /// Print the planted flaws as JSON and exit.
    #[arg(long)]
    pub list_flaws: bool,
    /// Only serve the portal (every user's password is $ROLEGRID_DEMO_PASSWORD) until Ctrl-C.
    #[arg(long)]
    pub serve: bool,
    /// Port to serve on (0 = any free port).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Lifetime of the portal's tokens and session cookies, in seconds.
    #[arg(long, value_name = "SECS")]
    pub token_ttl_secs: Option<u64>,
    #[command(flatten)]
    pub run: RunFlags,
    /// Delay a route by a lognormal: `METHOD /path=MEDIAN:P95` (ms) or `*=MEDIAN:P95`; repeatable.
    #[arg(long = "latency", value_name = "ROUTE=MEDIAN:P95")]
    pub latency: Vec<String>,
    /// Measure latency under load instead of scanning (as `rolegrid latency` does).
    #[arg(long)]
    pub latency_mode: bool,
    /// Inject faults in front of the portal: connection resets, stalls past the timeout,
    /// garbage and truncated bodies, 5xx storms, 429 with Retry-After, a restart that
    /// forgets sessions and a data wipe (a fixed schedule; --seed moves it).
    #[arg(long)]
    pub chaos: bool,
    #[command(flatten)]
    pub load: super::latency::LoadFlags,
    #[command(flatten)]
    pub report: super::report::ReportFlags,
}
