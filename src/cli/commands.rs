//! `scan` and `demo`: validated inputs → library calls → summary on stdout → exit code.

use super::args::{Cli, Command, DemoArgs, ScanArgs};
use super::exit;
use rolegrid::demo::{self, DemoOptions};
use rolegrid::demo_scan::{self, DemoScan, DemoScanError};
use rolegrid::engagement::{Engagement, EnvSource, Redactor};
use rolegrid::matrix::Policy;
use rolegrid::scan::{self, ScanError, ScanInput, ScanOutcome};
use rolegrid::spec;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

pub async fn run(cli: Cli) -> u8 {
    match cli.command {
        Command::Scan(args) => scan_command(args).await,
        Command::Demo(args) => demo_command(args).await,
        Command::Latency(args) => super::latency::latency_command(args).await,
    }
}

fn fail(code: u8, message: impl std::fmt::Display) -> u8 {
    eprintln!("rolegrid: {message}");
    code
}

/// Writes to stdout; a closed pipe (`rolegrid … | head`) is not an error.
fn print_stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

fn print_outcome(outcome: &ScanOutcome) {
    let mut text = rolegrid::report::summary_text(&outcome.report);
    for file in &outcome.files {
        text.push_str(&format!("report: {}\n", file.display()));
    }
    print_stdout(&text);
}

fn scan_error_code(e: &ScanError) -> u8 {
    match e {
        ScanError::Login(_) | ScanError::Setup(_) | ScanError::Report(_) => exit::RUN_FAILURE,
    }
}

async fn scan_command(args: ScanArgs) -> u8 {
    let redactor = Redactor::new();
    let mut engagement = match Engagement::load(&args.engagement, &EnvSource::process()) {
        Ok(e) => e,
        Err(e) => return fail(exit::BAD_INPUT, e),
    };
    if let Some(ms) = args.p95_target_ms {
        engagement.p95_target_ms = ms;
    }
    if let Some(n) = args.concurrency {
        if n == 0 {
            return fail(exit::BAD_INPUT, "--concurrency must be at least 1");
        }
        engagement.concurrency = n;
    }
    if let Err(message) = check_loopback(&engagement.target) {
        return fail(exit::BAD_INPUT, message);
    }
    let api = match spec::load(&engagement.spec) {
        Ok(api) => api,
        Err(e) => return fail(exit::BAD_INPUT, e),
    };
    let roles: Vec<String> = engagement
        .identities
        .iter()
        .map(|i| i.role.clone())
        .collect();
    let untested = engagement.missing_rows == rolegrid::engagement::MissingRows::Untested;
    let policy = match Policy::load(&engagement.matrix, &api, &roles, untested) {
        Ok(p) => p,
        Err(e) => return fail(exit::BAD_INPUT, e),
    };
    let output_dir = args.output.unwrap_or_else(|| {
        let name = args
            .engagement
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "scan".into());
        PathBuf::from("reports").join(name)
    });
    let input = ScanInput {
        engagement,
        api,
        policy,
        output_dir,
        progress: !args.no_progress && std::io::stderr().is_terminal(),
        seed: args.seed,
    };
    match scan::scan(input, redactor.clone()).await {
        Ok(outcome) => {
            print_outcome(&outcome);
            if outcome.report.stats.violations > 0 {
                exit::VIOLATIONS
            } else {
                exit::CLEAN
            }
        }
        Err(e) => fail(scan_error_code(&e), redactor.scrub(&e.to_string())),
    }
}

/// Targets are limited to this machine: rolegrid is pointed at test deployments the
/// user runs, and an accidental scan of a real host is the worst mistake it could make.
pub(super) fn check_loopback(target: &url::Url) -> Result<(), String> {
    let loopback = match target.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if loopback {
        Ok(())
    } else {
        Err(format!(
            "target `{target}` is not a loopback address; this build of rolegrid only scans 127.0.0.0/8, ::1 and localhost"
        ))
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
    for text in &args.latency {
        let (route, model) = rolegrid::demo::LatencyModel::parse_flag(text)?;
        options.latency.insert(route, model);
    }
    options.latency_seed = args.seed;
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
    let server = match demo::spawn(
        options,
        std::net::SocketAddr::from(([127, 0, 0, 1], args.port)),
    )
    .await
    {
        Ok(s) => s,
        Err(e) => {
            return fail(
                exit::RUN_FAILURE,
                format!("cannot start the demo portal on port {}: {e}", args.port),
            )
        }
    };
    let redactor = Redactor::new();
    let scan = DemoScan {
        base_url: server.base_url(),
        passwords,
        output_dir: args.output.clone(),
        progress: !args.no_progress && std::io::stderr().is_terminal(),
        seed: args.seed,
    };
    let outcome = demo_scan::run(scan, redactor.clone()).await;
    server.shutdown().await;
    match outcome {
        Ok(outcome) => {
            print_outcome(&outcome);
            exit::CLEAN
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
    let server = match demo::spawn(
        options,
        std::net::SocketAddr::from(([127, 0, 0, 1], args.port)),
    )
    .await
    {
        Ok(s) => s,
        Err(e) => {
            return fail(
                exit::RUN_FAILURE,
                format!("cannot start the demo portal on port {}: {e}", args.port),
            )
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_targets_are_accepted() {
        let ok = |u: &str| check_loopback(&url::Url::parse(u).expect("url")).is_ok();
        assert!(ok("http://127.0.0.1:8080"));
        assert!(ok("http://127.8.9.1/"));
        assert!(ok("http://localhost:1"));
        assert!(ok("http://[::1]:3000"));
        assert!(!ok("http://10.0.0.1"));
        assert!(!ok("https://example.com"));
    }
}
