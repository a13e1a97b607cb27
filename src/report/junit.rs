//! JUnit XML for CI test tabs: one test case per role-matrix cell (class = operation,
//! name = role), a failure for each cell with violations (naming its findings), skipped
//! for cells nothing could test, server errors noted in the case's output.

use super::model::*;
use std::fmt::Write;

/// Escapes text for XML attributes and content: the HTML writer's escaping serves, as it
/// also replaces the characters XML 1.0 cannot hold, so a target's body cannot break the file.
pub use super::html::esc as xml_escape;

pub fn to_junit(report: &Report) -> String {
    let cells = &report.matrix;
    let failures = cells.iter().filter(|c| c.violations > 0).count();
    let skipped = cells.iter().filter(|c| c.coverage != "tested").count();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuites name=\"rolegrid\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{:.3}\">",
        cells.len(),
        report.stats.wall_seconds
    );
    let _ = writeln!(
        xml,
        "  <testsuite name=\"role matrix: {}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\">",
        xml_escape(&report.run.target),
        cells.len()
    );
    for c in cells {
        let _ = write!(
            xml,
            "    <testcase classname=\"{}\" name=\"{}\"",
            xml_escape(&c.operation),
            xml_escape(&c.role)
        );
        let findings: Vec<&Finding> = report
            .findings
            .iter()
            .filter(|f| {
                f.operation == c.operation
                    && f.verdict == "violation"
                    && f.instances.iter().any(|i| i.actor.role == c.role)
            })
            .collect();
        if c.violations == 0 && c.coverage == "tested" && c.server_errors == 0 {
            xml.push_str("/>\n");
            continue;
        }
        xml.push_str(">\n");
        if c.violations > 0 {
            let names: Vec<String> = findings
                .iter()
                .map(|f| format!("{} {} {} ({})", f.id, f.severity, f.attack, f.location))
                .collect();
            let _ = writeln!(
                xml,
                "      <failure type=\"violation\" message=\"{}\">{}</failure>",
                xml_escape(&format!(
                    "matrix says `{}` for role `{}`, yet {} probe(s) were granted",
                    c.access, c.role, c.violations
                )),
                xml_escape(&names.join("\n"))
            );
        } else if c.coverage != "tested" {
            let _ = writeln!(
                xml,
                "      <skipped message=\"{}\"/>",
                xml_escape(&format!("{}: {}", c.coverage, c.reason))
            );
        }
        if c.server_errors > 0 {
            let _ = writeln!(
                xml,
                "      <system-out>{}</system-out>",
                xml_escape(&format!(
                    "{} probe(s) answered 5xx (see the server-error findings)",
                    c.server_errors
                ))
            );
        }
        xml.push_str("    </testcase>\n");
    }
    xml.push_str("  </testsuite>\n</testsuites>\n");
    xml
}
