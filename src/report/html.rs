//! `report.html`: one self-contained page (inline CSS and SVG, no script, nothing fetched)
//! for the three readers: a summary, the findings with redacted, HTML-escaped evidence and
//! curl reproductions, the role matrix as a grid coloured by result, latency charts drawn
//! from the stored histograms, and the run's metadata. Every text that came from the target
//! or the inputs goes through [`esc`].

use super::model::*;
use crate::exec::load::EncodedHistogram;
use hdrhistogram::Histogram;
use std::fmt::Write;

/// Escapes text for HTML (and XML) content and quoted attributes; control characters but
/// newline, tab and CR, and the non-characters U+FFFE/U+FFFF, become U+FFFD.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\t' | '\r' => out.push(c),
            c if c.is_control() || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:1em 2em;color:#1d2330}
h1{margin-bottom:.2em}h2{border-bottom:1px solid #ccd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccd;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#eef0f5}td:first-child a{white-space:nowrap}code,pre{font:12px/1.4 ui-monospace,monospace}pre{background:#f5f6f8;padding:.6em;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
.sev{display:inline-block;border-radius:3px;padding:0 6px;color:#fff;font-weight:600}
.critical{background:#8b0000}.high{background:#d2322d}.medium{background:#e08a00}.low{background:#3a7bbf}
.cards{display:flex;gap:1em;flex-wrap:wrap}.card{border:1px solid #ccd;border-radius:6px;padding:.5em 1em;min-width:8em}
.card b{font-size:1.8em;display:block}
td.c-violation{background:#f4b6b3}td.c-error{background:#f9d79b}td.c-enforced{background:#c9ebc4}td.c-over{background:#c8d8f4}
td.c-untested{background:#eceef2;color:#667}td.c-skipped{background:#f7f8fa;color:#889}
details{margin:.4em 0 .8em}summary{cursor:pointer}
.legend span{display:inline-block;padding:2px 8px;margin-right:6px;border:1px solid #ccd}
";

/// A bulleted list of `items` (each made markup by `item`, which escapes what it takes
/// from the report) under `heading`; nothing at all when there are no items.
fn list<T>(h: &mut String, heading: &str, items: &[T], item: impl Fn(&T) -> String) {
    if items.is_empty() {
        return;
    }
    h.push_str(heading);
    h.push_str("<ul>");
    for i in items {
        let _ = write!(h, "<li>{}</li>", item(i));
    }
    h.push_str("</ul>\n");
}

fn severity_badge(s: Severity) -> String {
    format!("<span class=\"sev {s}\">{s}</span>", s = s.as_str())
}

pub fn to_html(report: &Report) -> String {
    let mut h = String::new();
    let run = &report.run;
    let s = &report.stats;
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>rolegrid report: {}</title><style>{STYLE}</style></head><body>\n",
        esc(&run.target)
    );
    let _ = writeln!(
        h,
        "<h1>rolegrid report</h1><p>Target <code>{}</code> · {} finding(s) · {}</p>",
        esc(&run.target),
        s.findings,
        if run.complete {
            "run complete"
        } else {
            "<b>run interrupted: partial report</b>"
        }
    );

    // Summary.
    let _ = writeln!(
        h,
        "<h2 id=\"summary\">Summary</h2><div class=\"cards\" id=\"severity-counts\">"
    );
    for sev in Severity::ALL {
        let _ = writeln!(
            h,
            "<div class=\"card\" data-severity=\"{sev}\"><b>{}</b>{}</div>",
            s.findings_by_severity.get(sev),
            severity_badge(sev)
        );
    }
    let _ = writeln!(h, "</div><p>A finding is one flaw: an operation × attack × where, however many probes and identities showed it. The probe counts count requests judged: {} probes sent, {} judged violation, {} suspicious, {} over-restricted, {} server errors, {} inconclusive, {} enforced; {} requests in all.</p>",
        s.probes, s.violations, s.suspicious, s.over_restricted, s.server_errors, s.inconclusive, s.enforced, s.requests);
    if let Some(b) = &report.baseline {
        let _ = writeln!(h, "<p id=\"baseline\">Against the baseline <code>{}</code>: {} new, {} still open, {} fixed.</p>",
            esc(&b.file), b.new.len(), b.still_open.len(), b.fixed.len());
        list(&mut h, "", &b.fixed, |f| {
            format!(
                "fixed: <code>{}</code> {} {} <code>{}</code> ({})",
                esc(&f.id),
                severity_badge(f.severity),
                esc(&f.attack),
                esc(&f.operation),
                esc(&f.location)
            )
        });
    }

    // Findings.
    let _ = writeln!(h, "<h2 id=\"findings\">Findings</h2>");
    if report.findings.is_empty() {
        h.push_str("<p>No findings.</p>\n");
    } else {
        h.push_str("<table id=\"findings-table\"><tr><th>id</th><th>severity</th><th>verdict</th><th>attack</th><th>OWASP</th><th>operation</th><th>where</th><th>pairs</th><th>probes</th></tr>\n");
        for f in &report.findings {
            let _ = writeln!(h, "<tr class=\"finding\" data-id=\"{id}\"><td><a href=\"#{id}\">{id}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                severity_badge(f.severity), esc(&f.verdict), esc(&f.attack), esc(&f.owasp), esc(&f.operation),
                esc(&f.location), f.instances.len(), f.probes, id = esc(&f.id));
        }
        h.push_str("</table>\n");
        for f in &report.findings {
            finding_section(&mut h, f);
        }
    }

    matrix_grid(&mut h, report);
    latency_section(&mut h, report);

    // Metadata.
    let _ = writeln!(h, "<h2 id=\"run\">Run</h2><table>");
    for (k, v) in [
        ("target", run.target.clone()),
        ("spec", run.spec.clone()),
        ("matrix", run.matrix.clone()),
        ("engagement", run.engagement.clone()),
        ("started (unix)", run.started_unix.to_string()),
        (
            "mutations",
            if run.allow_mutations {
                "allowed".into()
            } else {
                "off".into()
            },
        ),
        ("wall time", format!("{:.2} s", s.wall_seconds)),
        (
            "rolegrid",
            format!(
                "{} (report schema {})",
                report.tool.version, report.schema_version
            ),
        ),
    ] {
        let _ = writeln!(h, "<tr><th>{k}</th><td><code>{}</code></td></tr>", esc(&v));
    }
    h.push_str(
        "</table><table><tr><th>identity</th><th>role</th><th>tenant</th><th>auth</th></tr>",
    );
    for i in &run.identities {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&i.name),
            esc(&i.role),
            esc(i.tenant.as_deref().unwrap_or("-")),
            esc(&i.auth)
        );
    }
    h.push_str("</table>\n");
    list(&mut h, "<h3>Warnings</h3>", &report.warnings, |w| esc(w));
    h.push_str("</body></html>\n");
    h
}

fn finding_section(h: &mut String, f: &Finding) {
    let _ = writeln!(
        h,
        "<section class=\"finding-detail\" id=\"{}\"><h3>{} {} · {} · <code>{}</code></h3>",
        esc(&f.id),
        esc(&f.id),
        severity_badge(f.severity),
        esc(&f.attack),
        esc(&f.operation)
    );
    let _ = writeln!(
        h,
        "<p>Where: {} · {} · {} · shown by {} probe(s){}</p>",
        esc(&f.location),
        esc(&f.verdict),
        esc(&f.owasp),
        f.probes,
        f.baseline
            .as_ref()
            .map(|b| format!(" · baseline: {}", esc(b)))
            .unwrap_or_default()
    );
    list(
        h,
        "<p>Set these before running a reproduction:</p>",
        &f.variables,
        |v| format!("<code>${}</code>: {}", esc(&v.name), esc(&v.how)),
    );
    for i in &f.instances {
        let victim = i
            .victim
            .as_ref()
            .map(|v| {
                format!(
                    " → {} ({})",
                    esc(&v.identity),
                    esc(v.tenant.as_deref().unwrap_or("-"))
                )
            })
            .unwrap_or_default();
        let _ = writeln!(
            h,
            "<details class=\"instance\"><summary>{} ({}){} · {} · {} · {}</summary>",
            esc(&i.actor.identity),
            esc(&i.actor.role),
            victim,
            severity_badge(i.severity),
            esc(&i.relation),
            i.status
                .map_or_else(|| "no answer".to_string(), |s| s.to_string())
        );
        let _ = writeln!(
            h,
            "<p><code>{} {}</code> — {}</p>",
            esc(&i.request.method),
            esc(&i.request.url),
            esc(&i.request.detail)
        );
        if i.variants.len() > 1 {
            let _ = writeln!(h, "<p>Seen with: {}</p>", esc(&i.variants.join("; ")));
        }
        let _ = writeln!(h, "<p>Evidence: {}</p>", esc(&i.evidence.reason));
        if !i.evidence.leaked.is_empty() {
            let _ = writeln!(
                h,
                "<p>Objects of others in the answer: {}</p>",
                esc(&i.evidence.leaked.join(", "))
            );
        }
        let _ = writeln!(
            h,
            "<p>Answer (first bytes; sha256 <code>{}</code>):</p><pre class=\"evidence\">{}</pre>",
            esc(&i.evidence.body_sha256),
            esc(&i.evidence.body_excerpt)
        );
        let _ = writeln!(h, "<pre class=\"curl\">{}</pre></details>", esc(&i.curl));
    }
    h.push_str("</section>\n");
}

/// The class and short text of one matrix cell.
fn cell_class(c: &MatrixCell) -> (&'static str, String) {
    if c.violations > 0 {
        ("c-violation", format!("✗ {} violation(s)", c.violations))
    } else if c.server_errors > 0 {
        ("c-error", format!("⚠ {} server error(s)", c.server_errors))
    } else if c.coverage == "tested" {
        ("c-enforced", format!("✓ {} probe(s)", c.probes))
    } else if c.coverage == "untestable" {
        ("c-untested", "untested".into())
    } else {
        ("c-skipped", "skipped".into())
    }
}

fn matrix_grid(h: &mut String, report: &Report) {
    let mut roles: Vec<&str> = Vec::new();
    let mut ops: Vec<&str> = Vec::new();
    for c in &report.matrix {
        if !roles.contains(&c.role.as_str()) {
            roles.push(&c.role);
        }
        if !ops.contains(&c.operation.as_str()) {
            ops.push(&c.operation);
        }
    }
    let _ = writeln!(h, "<h2 id=\"matrix\">Role matrix</h2><p class=\"legend\"><span class=\"c-violation\" style=\"background:#f4b6b3\">violation</span><span style=\"background:#f9d79b\">server error</span><span style=\"background:#c9ebc4\">enforced</span><span style=\"background:#eceef2\">untested (hover for why)</span><span style=\"background:#f7f8fa\">skipped</span></p>");
    h.push_str("<table id=\"matrix-grid\"><tr><th>operation</th>");
    for r in &roles {
        let _ = write!(h, "<th>{}</th>", esc(r));
    }
    h.push_str("</tr>\n");
    for op in ops {
        let _ = write!(h, "<tr><td><code>{}</code></td>", esc(op));
        for r in &roles {
            match report
                .matrix
                .iter()
                .find(|c| c.operation == op && c.role == *r)
            {
                Some(c) => {
                    let (class, text) = cell_class(c);
                    let _ = write!(h, "<td class=\"cell {class}\" title=\"{}\" data-role=\"{}\"><b>{}</b> {}</td>",
                        esc(&format!("{}: {}", c.coverage, c.reason)), esc(r),
                        esc(if c.access.is_empty() { "-" } else { &c.access }), esc(&text));
                }
                None => h.push_str("<td>-</td>"),
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
}

/// An SVG bar chart of a histogram's samples in `BINS` equal bins from 0 to its max, with
/// the p95 and the target as vertical lines.
fn histogram_svg(hist: &Histogram<u64>, p95_ms: f64, target_ms: u64) -> String {
    const BINS: usize = 30;
    const W: f64 = 360.0;
    const HGT: f64 = 60.0;
    // The axis spans the samples (the target line is drawn only when it falls on it):
    // a 500 ms target must not squeeze 2 ms answers into one bar.
    let max_ms = (hist.max() as f64 / 1000.0 * 1.05).max(0.01);
    let mut bins = [0u64; BINS];
    for v in hist.iter_recorded() {
        let ms = v.value_iterated_to() as f64 / 1000.0;
        let i = ((ms / max_ms) * BINS as f64).floor() as usize;
        bins[i.min(BINS - 1)] += v.count_at_value();
    }
    let top = bins.iter().copied().max().unwrap_or(1).max(1) as f64;
    let bw = W / BINS as f64;
    let mut svg = format!("<svg class=\"latency-chart\" width=\"{W}\" height=\"{}\" viewBox=\"0 0 {W} {}\" role=\"img\" xmlns=\"http://www.w3.org/2000/svg\"><title>latency histogram, 0 to {max_ms:.2} ms</title>", HGT + 12.0, HGT + 12.0);
    for (i, &n) in bins.iter().enumerate() {
        if n == 0 {
            continue;
        }
        let bh = (n as f64 / top) * HGT;
        let _ = write!(
            svg,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"#5b7db1\"/>",
            i as f64 * bw,
            HGT - bh,
            bw - 1.0
        );
    }
    let x = |ms: f64| (ms / max_ms * W).min(W - 1.0);
    let _ = write!(svg, "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"0\" y2=\"{HGT}\" stroke=\"#d2322d\" stroke-width=\"2\"><title>p95 {p95_ms:.1} ms</title></line>", x(p95_ms));
    if (target_ms as f64) <= max_ms {
        let _ = write!(svg, "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"0\" y2=\"{HGT}\" stroke=\"#222\" stroke-dasharray=\"4 3\"><title>target {target_ms} ms</title></line>", x(target_ms as f64));
    }
    let _ = write!(svg, "<text x=\"0\" y=\"{}\" font-size=\"10\">0</text><text x=\"{W}\" y=\"{}\" font-size=\"10\" text-anchor=\"end\">{max_ms:.2} ms{}</text></svg>", HGT + 11.0, HGT + 11.0,
        if (target_ms as f64) > max_ms { format!(" (target {target_ms} ms: off the axis)") } else { String::new() });
    svg
}

fn latency_section(h: &mut String, report: &Report) {
    let l = &report.latency;
    let _ = writeln!(h, "<h2 id=\"latency\">Latency</h2><p>p95 target {} ms: <b>{}</b>. Bars: requests per latency bin; red line: p95; dashed: the target.</p>",
        l.p95_target_ms, if l.pass { "pass" } else { "FAIL" });
    h.push_str("<table id=\"latency-table\"><tr><th>operation</th><th>requests</th><th>p50 ms</th><th>p95 ms</th><th>p99 ms</th><th>max ms</th><th>p95 ≤ target</th><th>histogram</th></tr>\n");
    for o in &l.operations {
        let p = &o.percentiles;
        let chart = l
            .histograms
            .iter()
            .find(|hs| hs.operation == o.operation && hs.identity == "*" && hs.outcome == "all")
            .and_then(|hs| EncodedHistogram::decode(&hs.hdr_v2_base64).ok())
            .map(|hist| histogram_svg(&hist.0, p.p95_ms, l.p95_target_ms))
            .unwrap_or_default();
        let _ = writeln!(h, "<tr><td><code>{}</code></td><td>{}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{}</td><td>{chart}</td></tr>",
            esc(&o.operation), p.count, p.p50_ms, p.p95_ms, p.p99_ms, p.max_ms, if o.pass { "yes" } else { "<b>no</b>" });
    }
    h.push_str("</table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_from_the_target_cannot_become_markup() {
        let text = include_str!("../../reports/sample/report.json");
        let mut report = super::super::parse_report(text, std::path::Path::new("sample"))
            .unwrap_or_else(|e| panic!("{e}"));
        let evil = "</pre><script>alert(1)</script><img src=x onerror=alert(2)>";
        report.findings[0].instances[0].evidence.body_excerpt = evil.into();
        report.findings[0].location = evil.into();
        report.run.target = evil.into();
        let html = to_html(&report);
        assert!(!html.contains("<script"), "a script got through");
        assert!(!html.contains("<img"), "an image got through");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    }

    #[test]
    fn target_text_is_escaped() {
        assert_eq!(
            esc("<img src=x onerror='a'>&\""),
            "&lt;img src=x onerror=&#39;a&#39;&gt;&amp;&quot;"
        );
    }
}
