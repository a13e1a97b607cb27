//! Fixed-rate latency accuracy: the demo portal delays `GET /invoices` by a seeded
//! lognormal (median 20 ms, p95 80 ms); rolegrid replays it well below capacity and its
//! reported p95 is compared with the model's true p95 (and with the p95 of the delays the
//! portal actually drew, which separates the engine's error from sampling noise).
//! Last line: `p95 accuracy: reported X ms vs true Y ms (Z % off)`.

#[path = "common/mod.rs"]
mod common;

use rand::SeedableRng;
use rolegrid::demo::LatencyModel;
use rolegrid::exec::load::{run_load, LoadOptions};
use std::time::Duration;

/// The portal's delay seed (`ROLEGRID_BENCH_SEED` picks another draw of the same model).
const SEED: u64 = 42;

fn main() {
    let requests: u64 = common::env_number("ROLEGRID_BENCH_REQUESTS", 10_000);
    let rate: f64 = common::env_number("ROLEGRID_BENCH_RATE", 1_000.0);
    let seed: u64 = common::env_number("ROLEGRID_BENCH_SEED", SEED);
    let model = LatencyModel::new(20.0, 80.0).expect("valid model");
    let portal = common::Portal::start(|mut o| {
        o.latency.insert("GET /invoices".into(), model);
        o.latency_seed = Some(seed);
        o
    });
    let runtime = common::client_runtime();
    let options = LoadOptions {
        max_requests: requests,
        // Room for the schedule plus the slowest answers.
        max_duration: Duration::from_secs_f64(requests as f64 / rate + 30.0),
        concurrency: 256,
        rate: Some(rate),
    };
    let report = runtime.block_on(async {
        let executor = common::alice_executor(&portal.base_url, options.concurrency).await;
        run_load(&executor, &[common::invoices_target()], &options).await
    });
    let cell = &report.cells[0];
    let reported = cell.latency.percentiles.p95_ms;
    let service = cell
        .service_time
        .as_ref()
        .map_or(f64::NAN, |d| d.percentiles.p95_ms);

    // The portal drew its delays from StdRng(SEED) in arrival order; the multiset of the
    // first N draws is the same whatever the order, so their p95 is known exactly here.
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut drawn: Vec<f64> = (0..report.completed)
        .map(|_| model.sample(&mut rng).as_secs_f64() * 1000.0)
        .collect();
    drawn.sort_by(f64::total_cmp);
    let drawn_p95 = drawn
        .get(((drawn.len() as f64 * 0.95).ceil() as usize).saturating_sub(1))
        .copied()
        .unwrap_or(f64::NAN);
    let truth = model.true_quantile(0.95);
    let off = |x: f64, y: f64| (x / y - 1.0) * 100.0;

    println!(
        "fixed rate {rate} req/s: {} requests, {} answered, {} errors, {:.2} s, max schedule lag {:.2} ms",
        report.requests,
        report.completed,
        report.errors,
        report.elapsed_secs,
        report.max_schedule_lag_ms.unwrap_or(0.0)
    );
    println!(
        "reported p50 {:.2} ms (true {:.2}), p99 {:.2} ms (true {:.2}); service-time p95 {service:.2} ms",
        cell.latency.percentiles.p50_ms,
        model.true_quantile(0.5),
        cell.latency.percentiles.p99_ms,
        model.true_quantile(0.99)
    );
    println!(
        "measured vs drawn: reported p95 {reported:.2} ms vs p95 of the delays the portal drew {drawn_p95:.2} ms ({:+.2} % off; the portal's timer rounding, its processing and the engine's overhead)",
        off(reported, drawn_p95)
    );
    println!(
        "sampling noise: p95 of {} draws {drawn_p95:.2} ms vs true {truth:.2} ms ({:+.2} % off)",
        drawn.len(),
        off(drawn_p95, truth)
    );
    println!(
        "p95 accuracy: reported {reported:.2} ms vs true {truth:.2} ms ({:.2} % off)",
        off(reported, truth).abs()
    );
}
