//! Closed-loop requests/s of rolegrid's load engine on `GET /invoices` of the demo portal,
//! against wrk with the same URL, header, connections and duration. The two alternate for
//! a few rounds and the medians are compared, because the machine is shared and noisy.
//! Last line: `throughput ratio rolegrid/wrk: 0.xx`.

#[path = "common/mod.rs"]
mod common;

use rolegrid::exec::load::{run_load, LoadOptions};
use std::process::Command;
use std::time::Duration;

/// wrk's requests/s, `Ok(None)` when wrk is not installed.
fn wrk(connections: usize, seconds: u64, bearer: &str, url: &str) -> Result<Option<f64>, String> {
    let output = Command::new("wrk")
        .args(["-t2", &format!("-c{connections}"), &format!("-d{seconds}s")])
        .args(["-H", &format!("Authorization: {bearer}")])
        .arg(url)
        .output();
    let output = match output {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("wrk did not start: {e}")),
    };
    let text = String::from_utf8_lossy(&output.stdout);
    if text.contains("Non-2xx") {
        return Err(format!("wrk saw non-2xx answers:\n{text}"));
    }
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(Some)
        .ok_or_else(|| format!("no Requests/sec in wrk's output:\n{text}"))
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let connections: usize = common::env_number("ROLEGRID_BENCH_CONNECTIONS", 16);
    let seconds: u64 = common::env_number("ROLEGRID_BENCH_SECONDS", 5);
    let max_requests: u64 = common::env_number("ROLEGRID_BENCH_REQUESTS", 50_000);
    let rounds: usize = common::env_number("ROLEGRID_BENCH_ROUNDS", 3).max(1);
    let portal = common::Portal::start(|o| o);
    let url = format!("{}/invoices", portal.base_url);
    let runtime = common::client_runtime();
    let (executor, bearer) = runtime.block_on(async {
        (
            common::alice_executor(&portal.base_url, connections).await,
            common::alice_bearer(&portal.base_url).await,
        )
    });
    let targets = [common::invoices_target()];
    // Warm-up: connections opened, caches and allocators settled.
    let warm = LoadOptions {
        max_requests: 2_000,
        max_duration: Duration::from_secs(2),
        concurrency: connections,
        rate: None,
    };
    runtime.block_on(run_load(&executor, &targets, &warm));
    let options = LoadOptions {
        max_requests,
        max_duration: Duration::from_secs(seconds),
        ..warm
    };

    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    let mut wrk_missing = false;
    for round in 1..=rounds {
        let report = runtime.block_on(run_load(&executor, &targets, &options));
        let ok: u64 = report
            .cells
            .iter()
            .map(|c| c.statuses.get(&200).copied().unwrap_or(0))
            .sum();
        println!(
            "round {round}: rolegrid {:.0} req/s ({} requests, {ok} answered 200, {} errors, {:.2} s, {connections} workers)",
            report.throughput, report.requests, report.errors, report.elapsed_secs
        );
        ours.push(report.throughput);
        if wrk_missing {
            continue;
        }
        match wrk(connections, seconds, &bearer, &url) {
            Ok(Some(rps)) => {
                println!("round {round}: wrk {rps:.0} req/s (-t2 -c{connections} -d{seconds}s)");
                theirs.push(rps);
            }
            Ok(None) => wrk_missing = true,
            Err(e) => {
                println!("round {round}: wrk failed: {e}");
                wrk_missing = true;
            }
        }
    }
    let ours = median(&mut ours);
    println!("rolegrid throughput (median of {rounds}): {ours:.0} req/s");
    if theirs.is_empty() {
        println!("skipping wrk comparison: wrk not installed (apt-get install wrk)");
        println!("rolegrid throughput: {ours:.0} req/s");
        return;
    }
    let n = theirs.len();
    let theirs = median(&mut theirs);
    println!("wrk throughput (median of {n}): {theirs:.0} req/s");
    println!("throughput ratio rolegrid/wrk: {:.2}", ours / theirs);
}
