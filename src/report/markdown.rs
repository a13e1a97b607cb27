//! `report.md`: the reviewer's and product owner's view — summary, findings with curl
//! reproductions, the role matrix with what was tested, and the latency table.
//! Everything that came from the target is escaped: a body must not forge report markup.

use super::model::*;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Escapes text for a Markdown table cell or inline text.
fn cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '|' => out.push_str("\\|"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '`' => out.push('\''),
            '\n' | '\r' => out.push(' '),
            '*' | '_' | '[' | ']' | '#' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// A fenced block that the content cannot close early.
fn fenced(lang: &str, text: &str) -> String {
    let mut fence = String::from("```");
    while text.contains(fence.as_str()) {
        fence.push('`');
    }
    let clean: String = text
        .chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect();
    format!("{fence}{lang}\n{clean}\n{fence}\n")
}

/// Cell texts shown in more than [`NOTE_AFTER`] cells, each given a note number: the
/// table shows `[n]` and the text is written once under it.
const NOTE_AFTER: usize = 3;

fn matrix_notes(cells: &[MatrixCell]) -> BTreeMap<String, usize> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for c in cells.iter().filter(|c| c.coverage != "tested") {
        *seen
            .entry(format!("{}: {}", c.coverage, c.reason))
            .or_default() += 1;
    }
    let mut notes = BTreeMap::new();
    for c in cells.iter().filter(|c| c.coverage != "tested") {
        let text = format!("{}: {}", c.coverage, c.reason);
        if seen.get(&text).copied().unwrap_or(0) > NOTE_AFTER && !notes.contains_key(&text) {
            let n = notes.len() + 1;
            notes.insert(text, n);
        }
    }
    notes
}

/// One matrix cell: a violation is ✗, a 5xx is never ✓, a common reason is a note number.
pub(super) fn matrix_cell_text(c: &MatrixCell, notes: &BTreeMap<String, usize>) -> String {
    let access = if c.access.is_empty() { "-" } else { &c.access };
    if c.coverage == "tested" {
        let mut text = format!("{access} · tested {}", c.probes);
        if c.violations > 0 {
            text.push_str(&format!(" · ✗ {} violation(s)", c.violations));
        }
        if c.server_errors > 0 {
            text.push_str(&format!(" · ⚠ {} server error(s)", c.server_errors));
        }
        if c.violations == 0 && c.server_errors == 0 {
            text.push_str(" ✓");
        }
        return text;
    }
    let reason = format!("{}: {}", c.coverage, c.reason);
    match notes.get(&reason) {
        Some(n) => format!("{access} · {} [{n}]", c.coverage),
        None => format!("{access} · {}", cell(&reason)),
    }
}

pub fn to_markdown(report: &Report) -> String {
    let mut md = String::new();
    let s = &report.stats;
    let run = &report.run;
    let _ = writeln!(md, "# rolegrid report\n");
    let _ = writeln!(md, "- Target: `{}`", cell(&run.target));
    let _ = writeln!(
        md,
        "- Spec: `{}` · Matrix: `{}` · Engagement: `{}`",
        cell(&run.spec),
        cell(&run.matrix),
        cell(&run.engagement)
    );
    let _ = writeln!(
        md,
        "- Mutations: {} · Run complete: {}",
        if run.allow_mutations {
            "allowed (writes confirmed by the owner's read-back)"
        } else {
            "off (safe methods only)"
        },
        if run.complete {
            "yes"
        } else {
            "**no — interrupted, partial report**"
        }
    );
    let _ = writeln!(
        md,
        "- rolegrid {} · report schema {}\n",
        report.tool.version, report.schema_version
    );

    let _ = writeln!(md, "## Summary\n");
    let by = &s.findings_by_severity;
    let _ = writeln!(
        md,
        "**{} finding(s)**: {} critical, {} high, {} medium, {} low. A finding is one flaw (an operation × attack × where); the probe counts below count requests judged, several of which usually show the same flaw.\n",
        s.findings, by.critical, by.high, by.medium, by.low
    );
    let _ = writeln!(md, "| probes | judged violation | suspicious | over-restricted | server errors | inconclusive | enforced | requests | objects | wall time |");
    let _ = writeln!(md, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let _ = writeln!(
        md,
        "| {} | **{}** | {} | {} | {} | {} | {} | {} | {} | {:.1} s |\n",
        s.probes,
        s.violations,
        s.suspicious,
        s.over_restricted,
        s.server_errors,
        s.inconclusive,
        s.enforced,
        s.requests,
        s.objects,
        s.wall_seconds
    );
    let _ = writeln!(md, "Identities:\n");
    for i in &run.identities {
        let _ = writeln!(
            md,
            "- `{}`: role `{}`, tenant `{}`, auth {}",
            cell(&i.name),
            cell(&i.role),
            cell(i.tenant.as_deref().unwrap_or("-")),
            i.auth
        );
    }
    md.push('\n');

    let _ = writeln!(md, "## Findings\n");
    if report.findings.is_empty() {
        let _ = writeln!(
            md,
            "No findings: every probe was refused as the matrix requires, or was inconclusive.\n"
        );
    } else {
        let baseline = report.baseline.is_some();
        let _ = writeln!(
            md,
            "One finding per flaw (operation × attack × where); its instances are the actor → victim pairs that showed it. Worst first.\n"
        );
        let _ = writeln!(
            md,
            "| id | severity | verdict | attack | OWASP | operation | where | pairs | probes |{}",
            if baseline { " baseline |" } else { "" }
        );
        let _ = writeln!(
            md,
            "|---|---|---|---|---|---|---|---:|---:|{}",
            if baseline { "---|" } else { "" }
        );
        for f in &report.findings {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | `{}` | {} | {} | {} |{}",
                f.id,
                f.severity,
                f.verdict,
                f.attack,
                f.owasp,
                cell(&f.operation),
                cell(&f.location),
                f.instances.len(),
                f.probes,
                if baseline {
                    format!(" {} |", f.baseline.as_deref().unwrap_or("-"))
                } else {
                    String::new()
                }
            );
        }
        md.push('\n');
        for f in &report.findings {
            let _ = writeln!(
                md,
                "### {} · {} · {} · {} · `{}`\n",
                f.id,
                f.severity,
                f.verdict,
                f.attack,
                cell(&f.operation)
            );
            let _ = writeln!(md, "- Where: {}", cell(&f.location));
            let _ = writeln!(md, "- OWASP: {}", f.owasp);
            let _ = writeln!(
                md,
                "- Shown by {} probe(s) in {} actor → victim pair(s)",
                f.probes,
                f.instances.len()
            );
            if !f.variables.is_empty() {
                let _ = writeln!(
                    md,
                    "\nBefore running a reproduction, set its variables (never put them in a report):\n"
                );
                for v in &f.variables {
                    let _ = writeln!(md, "- `${}`: {}", v.name, cell(&v.how));
                }
            }
            for (n, i) in f.instances.iter().enumerate() {
                let victim = i
                    .victim
                    .as_ref()
                    .map(|v| {
                        format!(
                            " → `{}` (role `{}`, tenant `{}`)",
                            cell(&v.identity),
                            cell(&v.role),
                            cell(v.tenant.as_deref().unwrap_or("-"))
                        )
                    })
                    .unwrap_or_default();
                let _ = writeln!(
                    md,
                    "\n#### {}.{} `{}` (role `{}`, tenant `{}`){} · {} · {}\n",
                    f.id,
                    n + 1,
                    cell(&i.actor.identity),
                    cell(&i.actor.role),
                    cell(i.actor.tenant.as_deref().unwrap_or("-")),
                    victim,
                    i.severity,
                    i.relation
                );
                if i.attack != f.attack {
                    let _ = writeln!(md, "- Attack: {} (folded into this finding)", i.attack);
                }
                let _ = writeln!(
                    md,
                    "- Request: `{} {}` → {} — {}",
                    i.request.method,
                    cell(&i.request.url),
                    i.status.map_or_else(|| "-".into(), |s| s.to_string()),
                    cell(&i.request.detail)
                );
                if i.variants.len() > 1 {
                    let _ = writeln!(
                        md,
                        "- Seen with: {}",
                        i.variants
                            .iter()
                            .map(|v| cell(v))
                            .collect::<Vec<_>>()
                            .join("; ")
                    );
                }
                let _ = writeln!(md, "- Evidence: {}", cell(&i.evidence.reason));
                if !i.evidence.leaked.is_empty() {
                    let _ = writeln!(
                        md,
                        "- Objects of others in the answer: {}",
                        cell(&i.evidence.leaked.join(", "))
                    );
                }
                let _ = writeln!(
                    md,
                    "- Body sha256 `{}`; first bytes:\n",
                    i.evidence.body_sha256
                );
                md.push_str(&fenced("text", &i.evidence.body_excerpt));
                md.push('\n');
                md.push_str(&fenced("sh", &i.curl));
            }
            md.push('\n');
        }
    }

    if let Some(b) = &report.baseline {
        let _ = writeln!(
            md,
            "## Against the baseline\n\n`{}`: {} new, {} still open, {} fixed.\n",
            cell(&b.file),
            b.new.len(),
            b.still_open.len(),
            b.fixed.len()
        );
        for f in &b.fixed {
            let _ = writeln!(
                md,
                "- fixed: {} · {} · {} · `{}` · {}",
                f.id,
                f.severity,
                f.attack,
                cell(&f.operation),
                cell(&f.location)
            );
        }
        md.push('\n');
    }

    let _ = writeln!(md, "## Role matrix\n");
    let _ = writeln!(md, "Each cell: declared access, then `tested N` (probes sent, `✗ k violations`, `⚠ k server errors`; ✓ only when neither), `untestable: why` (a probe was wanted but could not be built) or `skipped: why` (nothing to test there); a reason shared by many cells is a note `[n]` under the table.\n");
    let roles: Vec<String> = {
        let mut seen = Vec::new();
        for c in &report.matrix {
            if !seen.contains(&c.role) {
                seen.push(c.role.clone());
            }
        }
        seen
    };
    let mut rows: BTreeMap<String, Vec<&MatrixCell>> = BTreeMap::new();
    let mut order = Vec::new();
    for c in &report.matrix {
        if !rows.contains_key(&c.operation) {
            order.push(c.operation.clone());
        }
        rows.entry(c.operation.clone()).or_default().push(c);
    }
    let _ = writeln!(
        md,
        "| operation | {} |",
        roles
            .iter()
            .map(|r| cell(r))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let _ = writeln!(md, "|---|{}", "---|".repeat(roles.len()));
    let notes = matrix_notes(&report.matrix);
    for op in order {
        let cells = &rows[&op];
        let text: Vec<String> = roles
            .iter()
            .map(|role| match cells.iter().find(|c| &c.role == role) {
                None => "-".into(),
                Some(c) => matrix_cell_text(c, &notes),
            })
            .collect();
        let _ = writeln!(md, "| `{}` | {} |", cell(&op), text.join(" | "));
    }
    if !notes.is_empty() {
        md.push('\n');
        let mut listed: Vec<(&usize, &String)> = notes.iter().map(|(k, v)| (v, k)).collect();
        listed.sort();
        for (n, text) in listed {
            let _ = writeln!(md, "- [{n}] {}", cell(text));
        }
    }
    md.push('\n');

    let _ = writeln!(md, "## Latency\n");
    let l = &report.latency;
    let _ = writeln!(
        md,
        "p95 target {} ms: **{}**\n",
        l.p95_target_ms,
        if l.pass { "pass" } else { "FAIL" }
    );
    let _ = writeln!(
        md,
        "| operation | requests | p50 ms | p95 ms | p99 ms | max ms | p95 ≤ target |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---|");
    for o in &l.operations {
        let p = &o.percentiles;
        let _ = writeln!(
            md,
            "| `{}` | {} | {:.1} | {:.1} | {:.1} | {:.1} | {} |",
            cell(&o.operation),
            p.count,
            p.p50_ms,
            p.p95_ms,
            p.p99_ms,
            p.max_ms,
            if o.pass { "yes" } else { "**no**" }
        );
    }
    let split: Vec<_> = l
        .histograms
        .iter()
        .filter(|h| h.identity != "*" && h.outcome != "all")
        .collect();
    if !split.is_empty() {
        let _ = writeln!(
            md,
            "\nBy identity, allowed (2xx) and denied answers apart:\n"
        );
        let _ = writeln!(
            md,
            "| operation | identity | answers | requests | p50 ms | p95 ms | max ms |"
        );
        let _ = writeln!(md, "|---|---|---|---:|---:|---:|---:|");
        for h in split {
            let p = &h.percentiles;
            let _ = writeln!(
                md,
                "| `{}` | {} | {} | {} | {:.1} | {:.1} | {:.1} |",
                cell(&h.operation),
                cell(&h.identity),
                h.outcome,
                p.count,
                p.p50_ms,
                p.p95_ms,
                p.max_ms
            );
        }
    }
    if let Some(faults) = &report.faults {
        md.push_str(&crate::fault::markdown(faults));
    }
    if !report.identities_lost.is_empty() {
        let _ = writeln!(md, "\n## Identities that lost their login\n");
        let _ = writeln!(
            md,
            "| Identity | Re-provisioned | Probes made inconclusive | Why |\n|---|---|---|---|"
        );
        for l in &report.identities_lost {
            let ids: Vec<String> = l
                .affected_probes
                .iter()
                .map(|id| format!("#{id}"))
                .collect();
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                cell(&l.identity),
                if l.reprovisioned { "yes" } else { "no" },
                if ids.is_empty() {
                    "0".to_string()
                } else {
                    format!("{}: {}", ids.len(), ids.join(", "))
                },
                cell(&l.reason)
            );
        }
    }
    if let Some(c) = &report.canaries {
        let _ = writeln!(md, "\n## Canary objects\n");
        let _ = writeln!(
            md,
            "Writes and deletes went only to objects rolegrid created: {} created, {} deleted \
             at the end, {} deleted by probes, {} left on the target (cap {}{}).",
            c.created,
            c.deleted,
            c.deleted_by_probes,
            c.left.len(),
            c.cap,
            if c.over_cap > 0 {
                format!(", {} not created because of it", c.over_cap)
            } else {
                String::new()
            }
        );
        for l in &c.left {
            let _ = writeln!(
                md,
                "- left: {} `{}` (owner {}): {}",
                cell(&l.resource),
                cell(&l.id),
                cell(&l.owner),
                cell(&l.reason)
            );
        }
        for f in &c.failed {
            let _ = writeln!(
                md,
                "- not created: {} as {}: {}",
                cell(&f.resource),
                cell(&f.creator),
                cell(&f.reason)
            );
        }
        for u in &c.uncovered {
            let _ = writeln!(
                md,
                "- not attacked: `{}` as {}: {}",
                cell(&u.operation),
                cell(&u.role),
                cell(&u.reason)
            );
        }
    }
    if !report.posture.is_empty() {
        let _ = writeln!(md, "\n## Posture weaknesses\n");
        for w in &report.posture {
            // The first five places; report.json lists up to twenty.
            let mut at: Vec<String> = w
                .operations
                .iter()
                .take(5)
                .map(|o| format!("`{}`", cell(o)))
                .collect();
            if w.operations.len() > 5 {
                let capped = w.operations.len() >= crate::posture::OPERATIONS_KEPT;
                let more = w.operations.len() - 5;
                at.push(if capped {
                    format!("{more} more and others")
                } else {
                    format!("{more} more")
                });
            }
            let _ = writeln!(
                md,
                "- **{}** `{}` at {} as {} (seen {}×): {}",
                w.severity,
                w.check,
                at.join(", "),
                cell(&w.identity),
                w.seen,
                cell(&w.reason)
            );
        }
    }
    if !report.warnings.is_empty() {
        let _ = writeln!(md, "\n## Warnings\n");
        for w in &report.warnings {
            let _ = writeln!(md, "- {}", cell(w));
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_text_cannot_break_out_of_a_cell_or_a_fence() {
        assert_eq!(cell("a|b<script>`x`\n"), "a\\|b&lt;script&gt;'x' ");
        let f = fenced("text", "```\nrm -rf");
        assert!(f.starts_with("````text\n"), "{f}");
        assert!(f.ends_with("\n````\n"), "{f}");
    }
}
