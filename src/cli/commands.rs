//! `scan` and `demo`: validated inputs → library calls → summary on stdout → exit code.

use super::args::{CheckArgs, Cli, Command, DemoArgs, MatrixCommand, OpsArgs, ScanArgs};
use super::common::{
    announce, load_inputs, print_stdout, reach_overrides, start_portal, write_or_print,
};
use super::exit::{self, fail};
use rolegrid::demo::{self, DemoOptions};
use rolegrid::demo_scan::{self, DemoScan, DemoScanError};
use rolegrid::engagement::{Overrides, Redactor};
use rolegrid::exec::Executor;
use rolegrid::scan::{self, ScanError, ScanInput, ScanOutcome};
use rolegrid::spec;
use std::path::PathBuf;

pub async fn run(cli: Cli) -> u8 {
    match cli.command {
        Command::Scan(args) => scan_command(args).await,
        Command::Check(args) => check_command(args).await,
        Command::Demo(args) => demo_command(args).await,
        Command::Ops(args) => ops_command(args),
        Command::Matrix(command) => matrix_command(command),
        Command::Latency(args) => super::latency::latency_command(args).await,
        Command::Report(args) => super::report::report_command(args),
        Command::Merge(args) => super::report::merge_command(args),
    }
}

fn matrix_command(command: MatrixCommand) -> u8 {
    match command {
        MatrixCommand::Draft {
            spec,
            roles,
            output,
            force,
        } => {
            if let (Some(path), false) = (&output, force) {
                if path.exists() {
                    return fail(
                        exit::BAD_INPUT,
                        format!(
                            "{} exists (perhaps an edited matrix); add --force to overwrite it, or choose another -o",
                            path.display()
                        ),
                    );
                }
            }
            let api = match spec::load(&spec) {
                Ok(api) => api,
                Err(e) => return fail(exit::BAD_INPUT, e),
            };
            if roles.is_empty() || roles.iter().any(|r| r.trim().is_empty()) {
                return fail(
                    exit::BAD_INPUT,
                    "--roles needs at least one non-empty role name",
                );
            }
            match write_or_print(output.as_deref(), &rolegrid::matrix::draft(&api, &roles)) {
                Ok(()) => exit::CLEAN,
                Err(e) => fail(exit::RUN_FAILURE, e),
            }
        }
        MatrixCommand::Observed { report, output } => {
            let text = match std::fs::read_to_string(&report) {
                Ok(t) => t,
                Err(e) => {
                    return fail(
                        exit::BAD_INPUT,
                        format!("cannot read {}: {e}", report.display()),
                    )
                }
            };
            let json: serde_json::Value = match serde_json::from_str(&text) {
                Ok(v) => v,
                Err(e) => {
                    return fail(
                        exit::BAD_INPUT,
                        format!("{}:{}: not JSON: {e}", report.display(), e.line()),
                    )
                }
            };
            let observed = match rolegrid::matrix::observed::from_report(&json) {
                Ok(o) => o,
                Err(e) => return fail(exit::BAD_INPUT, format!("{}: {e}", report.display())),
            };
            if let Err(e) = write_or_print(output.as_deref(), &observed.to_csv()) {
                return fail(exit::RUN_FAILURE, e);
            }
            let differences = observed.differences();
            let mut summary = if differences.is_empty() {
                "observed matrix equals the declared one\n".to_string()
            } else {
                format!(
                    "{} cell(s) differ from the declared matrix:\n",
                    differences.len()
                )
            };
            for d in &differences {
                summary.push_str(&format!("  {d}\n"));
            }
            eprint!("{summary}");
            if differences.is_empty() {
                exit::CLEAN
            } else {
                exit::VIOLATIONS
            }
        }
    }
}

fn ops_command(args: OpsArgs) -> u8 {
    let api = match spec::load(&args.spec) {
        Ok(api) => api,
        Err(e) => return fail(exit::BAD_INPUT, e),
    };
    let rows = spec::operation_summaries(&api);
    if args.json {
        let json = serde_json::to_string_pretty(&rows).unwrap_or_default();
        print_stdout(&(json + "\n"));
        return exit::CLEAN;
    }
    let mut out = format!(
        "{} {} ({:?} {}): {} operations\n\n",
        api.title,
        args.spec.display(),
        api.family,
        api.version,
        rows.len()
    );
    out.push_str(&ops_table(&rows));
    print_stdout(&out);
    exit::CLEAN
}

/// Longest cell shown whole in an `ops` column; longer ones end in `…` (`--json` has all).
const OPS_CELL_MAX: usize = 32;

/// The `ops` table: a header, then one aligned row per operation; the planner's verdict
/// last, whole. Widths count characters (identifier sources hold `→`).
fn ops_table(rows: &[rolegrid::spec::OperationSummary]) -> String {
    let cut = |text: String, max: usize| -> String {
        if text.chars().count() > max {
            text.chars().take(max - 1).chain(['…']).collect()
        } else {
            text
        }
    };
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.method.as_str().to_string(),
                r.path.clone(),
                cut(
                    r.operation_id.clone().unwrap_or_else(|| "-".into()),
                    OPS_CELL_MAX,
                ),
                cut(r.security.clone(), OPS_CELL_MAX),
                if r.id_params.is_empty() {
                    "-".to_string()
                } else {
                    r.id_params.join(", ")
                },
                r.capability.to_string(),
            ]
        })
        .collect();
    let header = [
        "METHOD",
        "PATH",
        "OPERATION",
        "SECURITY",
        "IDENTIFIERS",
        "PLANNER",
    ];
    let mut widths = header.map(|h| h.chars().count());
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |row: [&str; 6]| -> String {
        let mut text = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                text.push_str(cell);
            } else {
                let pad = widths[i].saturating_sub(cell.chars().count());
                text.push_str(&format!("{cell}{}  ", " ".repeat(pad)));
            }
        }
        text.trim_end().to_string() + "\n"
    };
    let mut out = line(header);
    for row in &cells {
        out.push_str(&line([
            row[0].as_str(),
            row[1].as_str(),
            row[2].as_str(),
            row[3].as_str(),
            row[4].as_str(),
            row[5].as_str(),
        ]));
    }
    out
}

/// The summary names identities and may quote the target: scrubbed like every report file.
pub(super) fn print_outcome(
    outcome: &ScanOutcome,
    flags: &super::report::ReportFlags,
    redactor: &Redactor,
) {
    let mut text = super::report::summary(&outcome.report, flags);
    if !flags.quiet {
        for file in &outcome.files {
            text.push_str(&format!("report: {}\n", file.display()));
        }
    }
    print_stdout(&redactor.scrub(&text));
}

fn scan_error_code(e: &ScanError) -> u8 {
    match e {
        ScanError::Login(_) | ScanError::Setup(_) | ScanError::Report(_) => exit::RUN_FAILURE,
    }
}

fn overrides(args: &ScanArgs) -> Overrides {
    Overrides {
        concurrency: args.concurrency,
        rate_limit: args.run.rate_limit,
        p95_target_ms: args.p95_target_ms,
        ..reach_overrides(&args.reach)
    }
}

async fn scan_command(args: ScanArgs) -> u8 {
    let redactor = Redactor::process();
    let inputs = match load_inputs(&args.engagement, overrides(&args)) {
        Ok(i) => i,
        Err(code) => return code,
    };
    if args.dry_run {
        let (engagement, api, policy) = (&inputs.engagement, &inputs.api, &inputs.policy);
        return match scan::dry_plan(engagement, api, policy, args.shard, &redactor) {
            Ok(plan) => {
                print_stdout(&plan.render());
                exit::CLEAN
            }
            Err(e) => fail(exit::BAD_INPUT, redactor.scrub(&e.to_string())),
        };
    }
    let baseline = match args.report.load_baseline() {
        Ok(b) => b,
        Err(e) => return fail(exit::BAD_INPUT, e),
    };
    announce(&inputs.engagement);
    let output_dir = args.output.unwrap_or_else(|| {
        let name = args
            .engagement
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "scan".into());
        PathBuf::from("reports").join(name)
    });
    let posture_gate = inputs.engagement.posture.fail_on.clone();
    let input = ScanInput {
        engagement: inputs.engagement,
        api: inputs.api,
        policy: inputs.policy,
        output_dir: output_dir.clone(),
        progress: super::progress::terminal_bar(args.run.no_progress),
        seed: args.run.seed,
        shard: args.shard,
    };
    match scan::scan(input, redactor.clone()).await {
        Ok(mut outcome) => {
            if let Err(e) =
                args.report
                    .finish(&mut outcome, baseline.as_ref(), &output_dir, &redactor)
            {
                return fail(exit::RUN_FAILURE, e);
            }
            print_outcome(&outcome, &args.report, &redactor);
            args.report
                .exit_code(&outcome.report, posture_gate.as_deref())
        }
        Err(e) => fail(scan_error_code(&e), redactor.scrub(&e.to_string())),
    }
}

/// `rolegrid check`: every input validated as a scan would; nothing is sent but the
/// identities' logins, and those only with `--login`.
async fn check_command(args: CheckArgs) -> u8 {
    let redactor = Redactor::process();
    let inputs = match load_inputs(&args.engagement, reach_overrides(&args.reach)) {
        Ok(i) => i,
        Err(code) => return code,
    };
    let engagement = &inputs.engagement;
    // Planning resolves what only the spec can (destructive operations) and proves the
    // planner accepts these inputs.
    let plan = match scan::dry_plan(engagement, &inputs.api, &inputs.policy, None, &redactor) {
        Ok(plan) => plan,
        Err(e) => return fail(exit::BAD_INPUT, redactor.scrub(&e.to_string())),
    };
    let tls = &engagement.tls;
    let mut text = format!(
        "engagement {}: ok
spec {}: ok ({} operations)
matrix {}: ok
target {}; requests may go to {}
",
        engagement.source.display(),
        engagement.spec.display(),
        inputs.api.operations.len(),
        engagement.matrix.display(),
        engagement.target,
        engagement.scope_text()
    );
    text.push_str(&format!(
        "tls: {}{}{}
proxy: {}
",
        match &tls.ca_cert {
            Some((path, _)) => format!("system roots + {}", path.display()),
            None => "system roots".into(),
        },
        match &tls.client_identity {
            Some((path, _)) => format!(", client certificate {}", path.display()),
            None => String::new(),
        },
        if tls.insecure_skip_verify {
            ", CERTIFICATES NOT CHECKED (insecure_skip_verify)"
        } else {
            ""
        },
        match &engagement.proxy {
            Some(p) => p.to_string(),
            None => "none set (HTTPS_PROXY/HTTP_PROXY/NO_PROXY apply if set)".into(),
        }
    ));
    text.push_str(&format!(
        "identities: {}; {} probes planned before discovery
",
        plan.identities.join(", "),
        plan.per_attack.values().sum::<usize>()
    ));
    // The HTTP client is built (TLS files, proxy) without sending anything.
    let mut executor = match Executor::new(engagement, &inputs.api.base_path(), redactor.clone()) {
        Ok(e) => e,
        Err(e) => return fail(exit::BAD_INPUT, e),
    };
    print_stdout(&text);
    for warning in engagement.standing_warnings() {
        eprintln!("rolegrid: warning: {warning}");
    }
    if !args.login {
        print_stdout(
            "logins: not tried (add --login to log every identity in); nothing was sent
",
        );
        return exit::CLEAN;
    }
    announce(engagement);
    let identities = engagement.identities_with_anonymous();
    match executor.login_all(&identities).await {
        Ok(()) => {
            print_stdout(&format!(
                "logins: ok ({} identities, {} login request(s) sent)
",
                engagement.identities.len(),
                plan.logins
            ));
            exit::CLEAN
        }
        Err(e) => fail(exit::RUN_FAILURE, redactor.scrub(&e.to_string())),
    }
}

fn demo_options(
    args: &DemoArgs,
    passwords: std::collections::BTreeMap<String, String>,
) -> Result<DemoOptions, String> {
    let mut options = DemoOptions::new(passwords);
    if args.secure {
        options = options.secure();
    }
    for id in &args.flaws {
        options = options.flaw(id, true).map_err(|e| e.to_string())?;
    }
    for id in &args.no_flaws {
        options = options.flaw(id, false).map_err(|e| e.to_string())?;
    }
    if let Some(secs) = args.token_ttl_secs {
        if secs == 0 {
            return Err("--token-ttl-secs must be at least 1".into());
        }
        options.token_ttl = std::time::Duration::from_secs(secs);
    }
    // Checked before the portal starts, by the check the engagement's key goes through.
    if let Some(rate) = args.run.rate_limit {
        rolegrid::engagement::check_rate(rate).map_err(|m| format!("--rate-limit: {m}"))?;
    }
    for text in &args.latency {
        let (route, model) = rolegrid::demo::LatencyModel::parse_flag(text)?;
        options.latency.insert(route, model);
    }
    options.latency_seed = args.run.seed;
    if args.chaos {
        // The demo engagement's timeout_ms: a stall outlasts it by a second.
        let timeout = std::time::Duration::from_millis(10_000);
        options.chaos = Some(demo::ChaosOptions::new(args.run.seed.unwrap_or(0), timeout));
    }
    Ok(options)
}

async fn demo_command(args: DemoArgs) -> u8 {
    if args.list_flaws {
        let options = match demo_options(&args, Default::default()) {
            Ok(o) => o,
            Err(e) => return fail(exit::BAD_INPUT, e),
        };
        let json = serde_json::to_string_pretty(&demo::flaws_json(&options)).unwrap_or_default();
        print_stdout(&(json + "\n"));
        return exit::CLEAN;
    }
    if args.serve {
        return serve_demo(&args).await;
    }
    // A fixed password may be given (tests plant a canary this way); else a fresh one per user.
    let passwords = match std::env::var("ROLEGRID_DEMO_PASSWORD") {
        Ok(password) => demo::USERS
            .iter()
            .map(|u| (u.email.to_string(), password.clone()))
            .collect(),
        Err(_) => DemoOptions::random_passwords(),
    };
    let options = match demo_options(&args, passwords.clone()) {
        Ok(o) => o,
        Err(e) => return fail(exit::BAD_INPUT, e),
    };
    if args.latency_mode {
        return super::latency::demo_latency(options, &args.load, args.port, &args.output).await;
    }
    let server = match start_portal(options, args.port).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let baseline = match args.report.load_baseline() {
        Ok(b) => b,
        Err(e) => return fail(exit::BAD_INPUT, e),
    };
    let redactor = Redactor::process();
    let scan = DemoScan {
        base_url: server.base_url(),
        passwords,
        output_dir: args.output.clone(),
        progress: super::progress::terminal_bar(args.run.no_progress),
        seed: args.run.seed,
        rate_limit: args.run.rate_limit,
    };
    let outcome = demo_scan::run(scan, redactor.clone()).await;
    server.shutdown().await;
    match outcome {
        Ok(mut outcome) => {
            if let Err(e) =
                args.report
                    .finish(&mut outcome, baseline.as_ref(), &args.output, &redactor)
            {
                return fail(exit::RUN_FAILURE, e);
            }
            print_outcome(&outcome, &args.report, &redactor);
            // The demo's flaws are planted: only a CI gate (--fail-on, --baseline) asked
            // for turns them into a failing exit.
            let gated = args.report.fail_on.is_some() || args.report.baseline.is_some();
            if !outcome.report.run.complete {
                exit::RUN_FAILURE
            } else if gated && args.report.fails(&outcome.report) {
                exit::VIOLATIONS
            } else if outcome.report.run.complete {
                exit::CLEAN
            } else {
                exit::RUN_FAILURE
            }
        }
        Err(DemoScanError::Input(message)) => fail(exit::BAD_INPUT, message),
        Err(DemoScanError::Scan(e)) => fail(scan_error_code(&e), redactor.scrub(&e.to_string())),
    }
}

async fn serve_demo(args: &DemoArgs) -> u8 {
    let Ok(password) = std::env::var("ROLEGRID_DEMO_PASSWORD") else {
        return fail(
            exit::BAD_INPUT,
            "set ROLEGRID_DEMO_PASSWORD to the password every demo user should have, then run `rolegrid demo --serve` again",
        );
    };
    let passwords = demo::USERS
        .iter()
        .map(|u| (u.email.to_string(), password.clone()))
        .collect();
    let options = match demo_options(args, passwords) {
        Ok(o) => o,
        Err(e) => return fail(exit::BAD_INPUT, e),
    };
    let server = match start_portal(options, args.port).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let users: Vec<String> = demo::USERS
        .iter()
        .map(|u| format!("{} ({})", u.email, u.role))
        .collect();
    eprintln!(
        "rolegrid: demo portal on {} — users: {}; Ctrl-C stops it",
        server.base_url(),
        users.join(", ")
    );
    let _ = tokio::signal::ctrl_c().await;
    server.shutdown().await;
    exit::CLEAN
}
