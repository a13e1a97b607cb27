//! Closed-loop requests/s of rolegrid's load engine on `GET /invoices` of the demo portal,
//! against wrk with the same URL, header, connections and duration.
//! Last line: `throughput ratio rolegrid/wrk: 0.xx`.

#[path = "common/mod.rs"]
mod common;

use rolegrid::exec::load::{run_load, LoadOptions};
use std::process::Command;
use std::time::Duration;

fn main() {
    let connections: usize = common::env_number("ROLEGRID_BENCH_CONNECTIONS", 16);
    let seconds: u64 = common::env_number("ROLEGRID_BENCH_SECONDS", 5);
    let max_requests: u64 = common::env_number("ROLEGRID_BENCH_REQUESTS", 50_000);
    let portal = common::Portal::start(|o| o);
    let url = format!("{}/invoices", portal.base_url);
    let runtime = common::client_runtime();

    let (report, bearer) = runtime.block_on(async {
        let executor = common::alice_executor(&portal.base_url, connections).await;
        let targets = [common::invoices_target()];
        // Warm-up: connections opened, caches and allocators settled.
        let warm = LoadOptions {
            max_requests: 2_000,
            max_duration: Duration::from_secs(2),
            concurrency: connections,
            rate: None,
        };
        run_load(&executor, &targets, &warm).await;
        let options = LoadOptions {
            max_requests,
            max_duration: Duration::from_secs(seconds),
            ..warm
        };
        let report = run_load(&executor, &targets, &options).await;
        (report, common::alice_bearer(&portal.base_url).await)
    });
    drop(runtime);
    let ok = report
        .cells
        .iter()
        .map(|c| c.statuses.get(&200).copied().unwrap_or(0))
        .sum::<u64>();
    println!(
        "rolegrid: {} requests ({} answered 200, {} errors) in {:.2} s with {connections} workers",
        report.requests, ok, report.errors, report.elapsed_secs
    );
    let rolegrid_rps = report.throughput;
    println!("rolegrid throughput: {rolegrid_rps:.0} req/s");

    let wrk = Command::new("wrk")
        .args(["-t2", &format!("-c{connections}"), &format!("-d{seconds}s")])
        .args(["-H", &format!("Authorization: {bearer}")])
        .arg(&url)
        .output();
    let output = match wrk {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            println!("skipping wrk comparison: wrk not installed (apt-get install wrk)");
            println!("rolegrid throughput: {rolegrid_rps:.0} req/s");
            return;
        }
        Err(e) => {
            println!("skipping wrk comparison: wrk did not start: {e}");
            println!("rolegrid throughput: {rolegrid_rps:.0} req/s");
            return;
        }
    };
    let text = String::from_utf8_lossy(&output.stdout);
    for line in text.lines() {
        println!("wrk| {line}");
    }
    let wrk_rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse::<f64>().ok());
    if text.contains("Non-2xx") {
        println!("warning: wrk saw non-2xx answers; its figure is not comparable");
    }
    match wrk_rps {
        Some(wrk_rps) if wrk_rps > 0.0 => {
            println!("wrk throughput: {wrk_rps:.0} req/s");
            println!(
                "throughput ratio rolegrid/wrk: {:.2}",
                rolegrid_rps / wrk_rps
            );
        }
        _ => {
            println!("skipping wrk comparison: no Requests/sec in wrk's output");
            println!("rolegrid throughput: {rolegrid_rps:.0} req/s");
        }
    }
}
