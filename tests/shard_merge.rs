//! `--shard i/N` and `rolegrid merge` on the demo portal: the slices are disjoint and
//! complete, and the merged report equals the unsharded run's finding for finding.

mod common;

use rolegrid::demo::DemoOptions;
use rolegrid::demo_scan;
use rolegrid::engagement::Redactor;
use rolegrid::report::{self, Report};
use rolegrid::scan::Shard;
use std::collections::BTreeSet;
use std::path::PathBuf;

/// Scans a fresh portal (every default flaw on) with `shard`; the scan, whose folder holds
/// its report.json.
async fn scan(shard: Option<Shard>) -> common::Scanned {
    let (server, passwords) = common::portal(|o: DemoOptions| o).await;
    let (engagement, api, policy) =
        demo_scan::demo_inputs(&server.base_url(), &passwords).expect("demo inputs");
    let scanned = common::scan_shard(engagement, api, policy, 5, shard, Redactor::new()).await;
    server.shutdown().await;
    scanned
}

/// What must be equal finding for finding: everything but the evidence's exact bytes.
type Key = (String, String, String, String, String, Vec<String>, usize);

fn findings(r: &Report) -> Vec<Key> {
    r.findings
        .iter()
        .map(|f| {
            let mut pairs = f.pairs();
            pairs.sort();
            (
                f.id.clone(),
                f.severity.to_string(),
                f.verdict.clone(),
                f.operation.clone(),
                f.location.clone(),
                pairs,
                f.probes,
            )
        })
        .collect()
}

fn cells(r: &Report) -> Vec<(String, String, usize, usize, String)> {
    r.matrix
        .iter()
        .map(|c| {
            (
                c.operation.clone(),
                c.role.clone(),
                c.probes,
                c.violations,
                c.coverage.clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn merged_shards_equal_the_unsharded_run() {
    let whole =
        report::read_report(&scan(None).await.dir.path().join("report.json")).expect("whole");
    let mut scans = Vec::new();
    for index in 1..=3 {
        scans.push(scan(Some(Shard { index, count: 3 })).await);
    }
    let paths: Vec<PathBuf> = scans
        .iter()
        .map(|s| s.dir.path().join("report.json"))
        .collect();
    let shards: Vec<Report> = paths
        .iter()
        .map(|p| report::read_report(p).expect("shard report"))
        .collect();
    // Disjoint and complete: every probe is sent by exactly one shard.
    let probes: usize = shards.iter().map(|r| r.stats.probes).sum();
    assert_eq!(probes, whole.stats.probes);
    assert!(shards.iter().all(|r| r.stats.probes > 0));
    let mut ids = BTreeSet::new();
    for r in &shards {
        for f in &r.findings {
            assert!(ids.insert(f.id.clone()), "{} in two shards", f.id);
        }
    }

    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    let merged = report::merge(shards.clone(), &names).expect("merge");
    assert_eq!(findings(&merged), findings(&whole));
    assert_eq!(cells(&merged), cells(&whole));
    assert_eq!(merged.stats.findings, whole.stats.findings);
    assert_eq!(merged.stats.violations, whole.stats.violations);
    assert!(merged.run.complete && merged.run.shard.is_none());
    // Histograms add exactly (each shard also logs in and discovers, so the counts are
    // the shards' sum, not the whole run's). Histograms dropped on the way would leave no
    // operation to check.
    assert_eq!(
        merged.latency.operations.len(),
        whole.latency.operations.len()
    );
    for op in &merged.latency.operations {
        let sum: u64 = shards
            .iter()
            .flat_map(|r| r.latency.operations.iter())
            .filter(|o| o.operation == op.operation)
            .map(|o| o.percentiles.count)
            .sum();
        assert_eq!(op.percentiles.count, sum, "{}", op.operation);
    }

    // A missing shard is said, and the run is marked incomplete.
    let partial = report::merge(shards[..2].to_vec(), &names).expect("merge two");
    assert!(!partial.run.complete);
    assert!(
        partial.warnings[0].contains("3/3 missing"),
        "{:?}",
        partial.warnings
    );
    // The same shard twice, or a whole run, is refused.
    let twice = vec![shards[0].clone(), shards[0].clone()];
    assert!(report::merge(twice, &names)
        .err()
        .is_some_and(|e| e.contains("both shard 1/3")));
    assert!(report::merge(vec![whole.clone()], &names)
        .err()
        .is_some_and(|e| e.contains("not a shard report")));

    // The binary does the same, with the scan's exit code (violations found).
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("merged");
    let run = common::rolegrid()
        .arg("merge")
        .args(&paths)
        .arg("-o")
        .arg(&out)
        .output()
        .expect("runs");
    assert_eq!(
        run.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let written = report::read_report(&out.join("report.json")).expect("merged report");
    assert_eq!(findings(&written), findings(&whole));
}
