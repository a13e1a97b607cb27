//! Peak memory of planning: the same generated inputs (50 resources, 100 tenants, 10,000
//! objects), with 10k and then 1M probes drawn from the lazy plan, each in its own child
//! process so the peak (VmHWM) of one does not hide the other. Run with
//! `cargo bench --bench memory`; the last line is the ratio of the two peaks.

use rolegrid::discover::{Object, ObjectCorpus};
use rolegrid::engagement::{Auth, Identity, Secret};
use rolegrid::matrix::Policy;
use rolegrid::plan::{plan, PlanInput};
use serde_json::json;
use std::path::Path;

const RESOURCES: usize = 50;

/// A spec with `RESOURCES` collections, each with a list and an item read.
fn spec_text() -> String {
    let mut text = String::from(
        "openapi: 3.0.3\ninfo: {title: generated, version: '1'}\ncomponents:\n  securitySchemes:\n    bearer: {type: http, scheme: bearer}\nsecurity: [{bearer: []}]\npaths:\n",
    );
    for r in 0..RESOURCES {
        text.push_str(&format!(
            "  /res{r}s:\n    get:\n      responses: {{'200': {{description: ok}}}}\n  /res{r}s/{{id}}:\n    get:\n      parameters:\n        - {{name: id, in: path, required: true, schema: {{type: integer}}}}\n      responses: {{'200': {{description: ok}}}}\n"
        ));
    }
    text
}

/// Plans for `tenants` single-user tenants, each owning two objects of every resource,
/// consumes at most `limit` probes and returns how many it consumed.
fn run_plan(tenants: usize, limit: usize) -> usize {
    let api = rolegrid::spec::load_str(&spec_text(), Path::new("generated.yaml"))
        .expect("generated spec loads");
    let mut matrix = String::from("operation,anonymous,user\n");
    for op in &api.operations {
        matrix.push_str(&format!("{},deny,own\n", op.key()));
    }
    let mut identities: Vec<Identity> = (0..tenants)
        .map(|t| Identity {
            name: format!("user{t}"),
            tenant: Some(format!("tenant{t}")),
            role: "user".into(),
            attributes: Default::default(),
            auth: Auth::Header {
                name: "Authorization".into(),
                value: Secret::new("Bearer x"),
            },
        })
        .collect();
    identities.push(Identity::anonymous());
    let policy = Policy::parse(
        &matrix,
        Path::new("generated.csv"),
        &api,
        &["user".into()],
        false,
    )
    .expect("matrix");
    let mut objects = Vec::new();
    for r in 0..RESOURCES {
        for t in 0..tenants {
            for n in 0..2 {
                objects.push(Object {
                    resource: format!("res{r}s"),
                    id: json!(t * 10 + n),
                    owner: t,
                    tenant: Some(format!("tenant{t}")),
                    fields: Default::default(),
                    parents: Vec::new(),
                });
            }
        }
    }
    let corpus = ObjectCorpus::new(objects);
    let input = PlanInput::new(&api, &policy, &identities, &corpus, "bench");
    // Consume the stream as the executor would, touching every probe.
    plan(&input)
        .take(limit)
        .map(|p| p.request.path.len())
        .filter(|l| *l > 0)
        .count()
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    if let Ok(limit) = std::env::var("ROLEGRID_MEMORY_BENCH_PROBES") {
        let limit: usize = limit.parse().expect("probe count");
        let started = std::time::Instant::now();
        let probes = run_plan(100, limit);
        println!(
            "{probes} {} {:.3}",
            peak_rss_kib(),
            started.elapsed().as_secs_f64()
        );
        return;
    }
    let exe = std::env::current_exe().expect("own path");
    let mut figures = Vec::new();
    for limit in [10_000usize, 1_000_000] {
        let out = std::process::Command::new(&exe)
            .env("ROLEGRID_MEMORY_BENCH_PROBES", limit.to_string())
            .output()
            .expect("child runs");
        let text = String::from_utf8_lossy(&out.stdout);
        let mut parts = text.split_whitespace();
        let probes: usize = parts.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        let rss: u64 = parts.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        let secs: f64 = parts.next().and_then(|v| v.parse().ok()).unwrap_or(0.0);
        println!(
            "{probes} probes planned and consumed in {secs:.2} s ({:.0} probes/s), peak RSS {:.1} MiB",
            probes as f64 / secs.max(1e-9),
            rss as f64 / 1024.0
        );
        figures.push((probes, rss));
    }
    let (small, large) = (figures[0], figures[1]);
    println!(
        "memory: peak RSS {} probes / {} probes: {:.2} ({:.1} MiB vs {:.1} MiB; target <= 1.10)",
        large.0,
        small.0,
        large.1 as f64 / small.1.max(1) as f64,
        large.1 as f64 / 1024.0,
        small.1 as f64 / 1024.0
    );
}
