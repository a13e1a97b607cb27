//! `rolegrid merge`: the reports of `--shard i/N` jobs joined into one. Findings of the same
//! stable ID are one finding (their actor → victim pairs joined), matrix cells and counts
//! add up, histograms add exactly (HdrHistogram), and a missing or repeated shard is said.

use super::build::sort_findings;
use super::model::*;
use crate::exec::load::EncodedHistogram;
use crate::latency_stats::Percentiles;
use std::collections::BTreeMap;

/// Joins shard reports (`names` name them in errors, in the same order).
pub fn merge(reports: Vec<Report>, names: &[String]) -> Result<Report, String> {
    let name = |i: usize| names.get(i).cloned().unwrap_or_else(|| format!("#{i}"));
    let Some(first) = reports.first() else {
        return Err("give at least one report to merge".into());
    };
    let mut shards: BTreeMap<usize, usize> = BTreeMap::new();
    let mut count = None;
    for (i, r) in reports.iter().enumerate() {
        let Some(text) = &r.run.shard else {
            return Err(format!(
                "{} is not a shard report (it has no run.shard): merge joins the reports of `scan --shard i/N` jobs",
                name(i)
            ));
        };
        let shard: crate::run::Shard = text.parse().map_err(|e| format!("{}: {e}", name(i)))?;
        if *count.get_or_insert(shard.count) != shard.count {
            return Err(format!(
                "{} is shard {shard}, but the first report is one of {}: give shards of one split",
                name(i),
                count.unwrap_or(0)
            ));
        }
        if let Some(other) = shards.insert(shard.index, i) {
            return Err(format!(
                "{} and {} are both shard {shard}",
                name(other),
                name(i)
            ));
        }
        if r.run.spec != first.run.spec || r.run.matrix != first.run.matrix {
            return Err(format!(
                "{} scanned spec {} with matrix {}, the first report {} with {}: merge shards of one run",
                name(i),
                r.run.spec,
                r.run.matrix,
                first.run.spec,
                first.run.matrix
            ));
        }
    }
    let count = count.unwrap_or(0);
    let missing: Vec<String> = (1..=count)
        .filter(|i| !shards.contains_key(i))
        .map(|i| format!("{i}/{count}"))
        .collect();

    let mut merged = first.clone();
    merged.run.shard = None;
    merged.run.complete = reports.iter().all(|r| r.run.complete) && missing.is_empty();
    merged.run.started_unix = reports
        .iter()
        .map(|r| r.run.started_unix)
        .min()
        .unwrap_or(0);
    merged.baseline = None;
    let mut warnings: Vec<String> = Vec::new();
    if !missing.is_empty() {
        warnings.push(format!(
            "shard(s) {} missing: this merged report covers only part of the plan",
            missing.join(", ")
        ));
    }
    for r in &reports {
        for w in &r.warnings {
            if !warnings.contains(w) {
                warnings.push(w.clone());
            }
        }
    }
    merged.warnings = warnings;

    let mut stats = Stats::default();
    for r in &reports {
        let s = &r.stats;
        stats.probes += s.probes;
        stats.violations += s.violations;
        stats.suspicious += s.suspicious;
        stats.over_restricted += s.over_restricted;
        stats.server_errors += s.server_errors;
        stats.inconclusive += s.inconclusive;
        stats.enforced += s.enforced;
        stats.errors += s.errors;
        stats.requests += s.requests;
        stats.objects = stats.objects.max(s.objects);
        // The jobs ran side by side: the slowest is the run's wall time.
        stats.wall_seconds = stats.wall_seconds.max(s.wall_seconds);
    }

    merged.findings = merge_findings(&reports);
    stats.findings = merged.findings.len();
    for f in &merged.findings {
        stats.findings_by_severity.add(f.severity);
    }
    merged.stats = stats;
    merged.matrix = merge_matrix(&reports);
    merged.latency = merge_latency(&reports);
    merged.identities_lost = reports
        .iter()
        .flat_map(|r| r.identities_lost.iter().cloned())
        .collect();
    merged.canaries = merge_canaries(&reports);
    merged.faults = crate::fault::merge(reports.iter().filter_map(|r| r.faults.as_ref()));
    Ok(merged)
}

fn merge_findings(reports: &[Report]) -> Vec<Finding> {
    let mut by_id: BTreeMap<String, Finding> = BTreeMap::new();
    for f in reports.iter().flat_map(|r| r.findings.iter()) {
        let Some(into) = by_id.get_mut(&f.id) else {
            let mut f = f.clone();
            f.baseline = None;
            by_id.insert(f.id.clone(), f);
            continue;
        };
        into.probes += f.probes;
        into.severity = into.severity.min(f.severity);
        if super::build::verdict_order(&f.verdict) < super::build::verdict_order(&into.verdict) {
            into.verdict = f.verdict.clone();
        }
        for i in &f.instances {
            let same = into.instances.iter().position(|x| {
                x.actor.identity == i.actor.identity
                    && x.victim.as_ref().map(|v| &v.identity)
                        == i.victim.as_ref().map(|v| &v.identity)
            });
            match same {
                Some(at) => {
                    let x = &mut into.instances[at];
                    x.probes += i.probes;
                    x.severity = x.severity.min(i.severity);
                    for v in &i.variants {
                        if !x.variants.contains(v) {
                            x.variants.push(v.clone());
                        }
                    }
                }
                None if into.instances.len() < MAX_LISTED => into.instances.push(i.clone()),
                None => {}
            }
        }
        for e in &f.exchanges {
            if into.exchanges.len() < MAX_LISTED {
                into.exchanges.push(e.clone());
            }
        }
        for v in &f.variables {
            if !into.variables.contains(v) {
                into.variables.push(v.clone());
            }
        }
    }
    let mut findings: Vec<Finding> = by_id.into_values().collect();
    sort_findings(&mut findings);
    findings
}

fn merge_matrix(reports: &[Report]) -> Vec<MatrixCell> {
    let mut cells: Vec<MatrixCell> = Vec::new();
    for c in reports.iter().flat_map(|r| r.matrix.iter()) {
        match cells
            .iter_mut()
            .find(|x| x.operation == c.operation && x.role == c.role)
        {
            Some(x) => {
                x.probes += c.probes;
                x.violations += c.violations;
                x.server_errors += c.server_errors;
            }
            None => cells.push(c.clone()),
        }
    }
    // A cell tested in any shard is tested; the reason counts the probes as a whole run's
    // does. Untested cells have the same reason in every shard (from the same inputs).
    for c in &mut cells {
        if c.probes > 0 {
            c.coverage = "tested".into();
            c.reason = format!("{} probe{}", c.probes, if c.probes == 1 { "" } else { "s" });
        }
    }
    cells
}

fn merge_latency(reports: &[Report]) -> Latency {
    let target = reports.first().map_or(500, |r| r.latency.p95_target_ms);
    let mut histograms: BTreeMap<(String, String, String), EncodedHistogram> = BTreeMap::new();
    for h in reports.iter().flat_map(|r| r.latency.histograms.iter()) {
        let Ok(decoded) = EncodedHistogram::decode(&h.hdr_v2_base64) else {
            continue;
        };
        let key = (h.operation.clone(), h.identity.clone(), h.outcome.clone());
        match histograms.get_mut(&key) {
            // Histograms of one layout add bucket by bucket; a failure leaves this one out.
            Some(into) => {
                let _ = into.0.add(&decoded.0);
            }
            None => {
                histograms.insert(key, decoded);
            }
        }
    }
    let records: Vec<HistogramRecord> = histograms
        .iter()
        .map(|((operation, identity, outcome), h)| HistogramRecord {
            operation: operation.clone(),
            identity: identity.clone(),
            outcome: outcome.clone(),
            percentiles: Percentiles::of(&h.0).rounded(),
            hdr_v2_base64: h.encode().unwrap_or_default(),
        })
        .collect();
    let operations: Vec<OperationLatency> = records
        .iter()
        .filter(|h| h.identity == "*" && h.outcome == "all")
        .map(|h| OperationLatency {
            operation: h.operation.clone(),
            percentiles: h.percentiles,
            pass: h.percentiles.p95_ms <= target as f64,
        })
        .collect();
    Latency {
        p95_target_ms: target,
        pass: operations.iter().all(|o| o.pass),
        operations,
        histograms: records,
    }
}

fn merge_canaries(reports: &[Report]) -> Option<CanaryLedger> {
    let sections: Vec<&CanaryLedger> = reports.iter().filter_map(|r| r.canaries.as_ref()).collect();
    let first = sections.first()?;
    let mut c = CanaryLedger {
        cap: first.cap,
        ..CanaryLedger::default()
    };
    for s in sections {
        c.created += s.created;
        c.deleted += s.deleted;
        c.deleted_by_probes += s.deleted_by_probes;
        c.over_cap += s.over_cap;
        c.failed.extend(s.failed.iter().cloned());
        c.left.extend(s.left.iter().cloned());
        for u in &s.uncovered {
            let known = c
                .uncovered
                .iter()
                .any(|x| x.operation == u.operation && x.role == u.role);
            if !known {
                c.uncovered.push(u.clone());
            }
        }
    }
    Some(c)
}
