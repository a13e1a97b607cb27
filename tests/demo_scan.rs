//! End to end: the demo portal on 127.0.0.1:0, scanned in-process with the shipped
//! engagement and matrix; assertions read the written report.json.

mod common;

use common::{planted, violations, Passwords};
use rolegrid::demo::{self, DemoOptions, FLAWS};
use rolegrid::demo_scan::{self, DemoScan};
use rolegrid::engagement::Redactor;
use rolegrid::scan::{ProbeDone, Progress};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// Records what the scan reports through its progress callback.
#[derive(Default)]
struct Recorder {
    planned: Mutex<Vec<usize>>,
    updates: Mutex<Vec<ProbeDone>>,
    finished: Mutex<usize>,
}

impl Progress for Recorder {
    fn planned(&self, total: usize) {
        self.planned.lock().expect("lock").push(total);
    }
    fn probe_done(&self, update: ProbeDone) {
        self.updates.lock().expect("lock").push(update);
    }
    fn finished(&self) {
        *self.finished.lock().expect("lock") += 1;
    }
}

/// The progress a completed scan reported agrees with its report: the plan counted
/// once, one update per judged probe in order, the last one at the total with the
/// report's violations, and the end said once.
fn assert_progress_matches(recorder: &Recorder, report: &Value) {
    let probes = report["stats"]["probes"].as_u64().expect("stats.probes") as usize;
    let violations = report["stats"]["violations"]
        .as_u64()
        .expect("stats.violations") as usize;
    assert_eq!(*recorder.planned.lock().expect("lock"), vec![probes]);
    let updates = recorder.updates.lock().expect("lock");
    assert_eq!(updates.len(), probes);
    for (i, u) in updates.iter().enumerate() {
        assert_eq!(
            (u.done, u.total),
            (i + 1, probes),
            "update {i} out of order"
        );
    }
    assert_eq!(updates.last().map(|u| u.violations), Some(violations));
    assert_eq!(*recorder.finished.lock().expect("lock"), 1);
}

async fn scan(options: DemoOptions, passwords: Passwords) -> (Value, tempfile::TempDir) {
    scan_throttled(options, passwords, None).await
}

async fn scan_throttled(
    options: DemoOptions,
    passwords: Passwords,
    rate_limit: Option<f64>,
) -> (Value, tempfile::TempDir) {
    let server = common::spawn_portal(options).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let recorder = Arc::new(Recorder::default());
    let outcome = demo_scan::run(
        DemoScan {
            base_url: server.base_url(),
            passwords,
            output_dir: dir.path().to_path_buf(),
            progress: Some(recorder.clone()),
            seed: Some(7),
            rate_limit,
        },
        Redactor::new(),
    )
    .await
    .expect("scan completes");
    server.shutdown().await;
    assert_eq!(outcome.files.len(), 3);
    let report = common::read_report(dir.path());
    assert_progress_matches(&recorder, &report);
    (report, dir)
}

async fn scan_with(options: impl FnOnce(DemoOptions) -> DemoOptions) -> Value {
    let passwords = DemoOptions::random_passwords();
    scan(options(DemoOptions::new(passwords.clone())), passwords)
        .await
        .0
}

#[tokio::test]
async fn every_planted_flaw_is_reported_and_nothing_else() {
    let report = scan_with(|o| o).await;
    let found = violations(&report);
    assert_eq!(found, planted(), "violations differ from the planted flaws");
    assert_eq!(report["schema_version"], "2.0");
    // Grouped by root cause: each planted flaw is one finding, whoever showed it.
    let findings = report["findings"].as_array().expect("findings");
    assert_eq!(findings.len(), planted().len(), "{findings:#?}");
    assert_eq!(report["stats"]["findings"], findings.len());
    let by = &report["stats"]["findings_by_severity"];
    let total: u64 = ["critical", "high", "medium", "low"]
        .iter()
        .map(|s| by[s].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(total as usize, findings.len(), "{by:#}");
    let rank = |f: &Value| {
        ["critical", "high", "medium", "low"]
            .iter()
            .position(|s| f["severity"] == *s)
            .unwrap_or(9)
    };
    assert!(
        findings.windows(2).all(|w| rank(&w[0]) <= rank(&w[1])),
        "not sorted by severity"
    );
    let bola = finding(findings, "invoice BOLA", |f| {
        f["operation"] == "GET /invoices/{invoiceId}" && f["attack"] == "id-swap"
    });
    assert_eq!(bola["location"], "path parameter `invoiceId`");
    let instances = bola["instances"].as_array().expect("instances");
    assert!(instances.len() >= 3, "every actor → victim pair: {bola:#}");
    assert!(
        instances
            .iter()
            .any(|i| i["variants"].as_array().map_or(0, Vec::len) > 1),
        "ID spellings are variants of an instance: {bola:#}"
    );
    let id = bola["id"].as_str().unwrap_or("");
    assert!(id.starts_with("RG-") && id.len() == 11, "{id}");
    // The same flaw has the same ID in another run.
    let again = scan_with(|o| o).await;
    let ids = |r: &Value| -> BTreeSet<String> {
        r["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .filter_map(|f| f["id"].as_str().map(String::from))
            .collect()
    };
    assert_eq!(ids(&report), ids(&again));
    assert!(report["stats"]["probes"].as_u64().unwrap_or(0) > 0);
    let doubts: Vec<&Value> = common::findings(&report)
        .iter()
        .filter(|f| f["verdict"] == "inconclusive")
        .collect();
    assert!(doubts.is_empty(), "{doubts:#?}");
    for f in report["findings"].as_array().expect("findings") {
        let curl = f["curl"].as_str().unwrap_or("");
        assert!(curl.starts_with("curl "), "{curl}");
        assert!(!f["operation"].as_str().unwrap_or("").is_empty());
    }
}

#[tokio::test]
async fn secure_mode_reports_no_violation_and_no_doubt() {
    let report = scan_with(DemoOptions::secure).await;
    assert_eq!(report["stats"]["violations"], 0, "{:#}", report["findings"]);
    assert_eq!(report["stats"]["suspicious"], 0, "{:#}", report["findings"]);
    assert_eq!(report["stats"]["inconclusive"], 0, "{:#}", report["stats"]);
    assert!(
        report["findings"].as_array().expect("findings").is_empty(),
        "{:#}",
        report["findings"]
    );
}

#[tokio::test]
async fn turning_off_one_flaw_removes_exactly_its_finding() {
    for flaw in FLAWS.iter().filter(|f| f.default_on()) {
        let report = scan_with(|o| o.flaw(flaw.id, false).expect("known flaw")).await;
        let mut expected = planted();
        expected.remove(&(flaw.operation.to_string(), flaw.attack.to_string()));
        assert_eq!(violations(&report), expected, "with `{}` off", flaw.id);
    }
}

#[tokio::test]
async fn one_flaw_alone_is_the_only_finding() {
    found_alone(FLAWS[0].id).await;
}

/// The ID-encoding and body-field flaws, each alone: found, and only through the probes
/// that can find it (an encoded ID on the receipt, where the plain ID is denied).
#[tokio::test]
async fn body_field_and_encoding_flaws_are_found_alone() {
    for id in ["body-id-bola", "id-encoding-bypass"] {
        let (_, report) = found_alone(id).await;
        let findings = report["findings"].as_array().expect("findings");
        assert!(
            findings.iter().all(|f| f["verdict"] == "violation"),
            "{findings:#?}"
        );
        for f in findings {
            let detail = f["request"]["detail"].as_str().unwrap_or("");
            let details: Vec<&str> = f["exchanges"]
                .as_array()
                .expect("exchanges")
                .iter()
                .filter_map(|e| e["detail"].as_str())
                .collect();
            if id == "id-encoding-bypass" {
                // The plain swap is denied: every piece of evidence is the encoded ID.
                assert!(detail.contains("leading zeros"), "{f:#}");
                assert!(details.iter().all(|d| d.contains("leading zeros")), "{f:#}");
            } else {
                assert!(detail.starts_with("body property `invoice_ids`"), "{f:#}");
                assert_eq!(f["severity"], "high", "a read, though sent as POST: {f:#}");
            }
        }
    }
}

fn pair(operation: &str, attack: &str) -> (String, String) {
    (operation.to_string(), attack.to_string())
}

/// The first of `findings` that `matches`; `what` names it when there is none.
fn finding<'a>(findings: &'a [Value], what: &str, matches: impl Fn(&Value) -> bool) -> &'a Value {
    findings
        .iter()
        .find(|f| matches(f))
        .unwrap_or_else(|| panic!("no finding: {what}"))
}

/// The (operation, attack) set of `list`, as `violations` gives it.
fn pairs(list: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    list.iter().map(|(op, attack)| pair(op, attack)).collect()
}

/// Scans a secure portal with only the flaw `id` planted and checks that its (operation,
/// attack) is the only violation; the flaw and the report.
async fn found_alone(id: &str) -> (&'static demo::FlawInfo, Value) {
    let flaw = FLAWS.iter().find(|f| f.id == id).expect("known flaw");
    let report = scan_secure_with(&[id]).await;
    let expected = pairs(&[(flaw.operation, flaw.attack)]);
    assert_eq!(violations(&report), expected, "with only `{id}` on");
    (flaw, report)
}

/// Scans a secure portal with only the `flaws` named planted.
async fn scan_secure_with(flaws: &[&str]) -> Value {
    scan_with(|o| {
        flaws.iter().fold(o.secure(), |o, flaw| {
            o.flaw(flaw, true).expect("known flaw")
        })
    })
    .await
}

#[tokio::test]
async fn param_pollution_is_found_with_or_without_the_plain_bola() {
    // Alone: the polluted download is the only finding; the plain swap is refused.
    let report = scan_secure_with(&["file-download-param-pollution"]).await;
    let expected = pairs(&[("GET /files/download", "param-pollution")]);
    assert_eq!(violations(&report), expected);
    // With the plain BOLA too, both kinds are reported, each once per (operation, kind).
    let report = scan_secure_with(&["file-download-param-pollution", "file-download-bola"]).await;
    let expected = pairs(&[
        ("GET /files/download", "param-pollution"),
        ("GET /files/download", "id-swap"),
    ]);
    assert_eq!(violations(&report), expected);
    // The plain BOLA alone does not make a polluted request pass: duplicates are a 400.
    let report = scan_secure_with(&["file-download-bola"]).await;
    let expected = pairs(&[("GET /files/download", "id-swap")]);
    assert_eq!(violations(&report), expected);
}

#[tokio::test]
async fn new_attack_findings_carry_their_evidence() {
    let report = scan_with(|o| o).await;
    let findings = report["findings"].as_array().expect("findings");
    let find = |attack: &str| {
        findings
            .iter()
            .find(|f| f["attack"] == attack)
            .unwrap_or_else(|| panic!("no {attack} finding"))
    };
    let mass = find("mass-assignment");
    assert_eq!(mass["owasp"], "API3:2023 BOPLA");
    assert!(
        mass["evidence"]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("`tenant_id`"),
        "{mass:#}"
    );
    let pollution = find("param-pollution");
    assert_eq!(pollution["owasp"], "API1:2023 BOLA");
    assert_eq!(pollution["severity"], "high");
    assert_eq!(pollution["relation"], "cross-tenant");
    let url = pollution["request"]["url"].as_str().unwrap_or("");
    assert_eq!(url.matches("file_id=").count(), 2, "{url}");
    let over = find("method-override");
    assert_eq!(over["owasp"], "API5:2023 BFLA");
    assert_eq!(over["request"]["method"], "POST");
    assert!(
        over["curl"]
            .as_str()
            .unwrap_or("")
            .contains("X-HTTP-Method-Override: PUT"),
        "{over:#}"
    );
    // `ticket-subject-unvalidated`: a 200 that kept a subject the schema forbids.
    let stored = finding(findings, "a stored invalid value", |f| {
        f["attack"] == "malformed" && f["verdict"] == "violation"
    });
    assert_eq!(stored["operation"], "PATCH /tickets/{ticketId}");
    let reason = stored["evidence"]["reason"].as_str().unwrap_or("");
    assert!(
        reason.contains("invalid value(s) stored: `subject`"),
        "{reason}"
    );
    let malformed = finding(findings, "a malformed server error", |f| {
        f["attack"] == "malformed" && f["verdict"] == "server-error"
    });
    assert_eq!(malformed["owasp"], "API8:2023 Security Misconfiguration");
    let reason = malformed["evidence"]["reason"].as_str().unwrap_or("");
    assert!(reason.contains("shrunk"), "{reason}");
    // The finding shows the shrunk body: `text` of the wrong type and nothing else.
    let curl = malformed["curl"].as_str().unwrap_or("");
    // The body is the quoted `--data` argument; a note on the canary may follow it.
    let body = curl
        .split("--data '")
        .nth(1)
        .and_then(|b| b.split('\'').next())
        .unwrap_or("");
    assert!(curl.contains("# replays against canary tickets"), "{curl}");
    let body: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {curl}"));
    assert!(!body["text"].is_string(), "{body}");
    assert!(body.to_string().len() <= r#"{"text":null}"#.len(), "{body}");
    for f in findings {
        assert!(f["severity"].is_string() && f["owasp"].is_string(), "{f:#}");
    }
    let bfla = finding(findings, "ticket write swap", |f| {
        f["attack"] == "id-swap" && f["operation"] == "PATCH /tickets/{ticketId}"
    });
    assert_eq!(bfla["severity"], "critical");
}

#[tokio::test]
async fn secure_behaviours_are_never_violations() {
    // A 404 denial, a 200 HTML denial only the engagement's detector rule recognises, a
    // 2xx write that changes only the caller's data, and correctly scoped lists: present
    // in every mode.
    let report = scan_with(|o| o).await;
    for f in report["findings"].as_array().expect("findings") {
        let op = f["operation"].as_str().unwrap_or("");
        if f["attack"] == "malformed" {
            // `notes-malformed-500` lives in the note route; it is a parsing flaw, not a
            // misjudged secure behaviour.
            continue;
        }
        if f["attack"] == "existence-leak" {
            // `ticket-existence-leak` is planted in the ticket read; id-swap there is not.
            continue;
        }
        assert!(
            !matches!(
                op,
                "GET /tickets/{ticketId}"
                    | "GET /admin/users/{userId}"
                    | "POST /tickets/{ticketId}/notes"
                    | "GET /invoices"
                    | "GET /tickets"
                    | "GET /files"
            ),
            "secure behaviour flagged: {f:#}"
        );
    }
    let cells = report["matrix"].as_array().expect("matrix");
    let tested = |op: &str| {
        cells
            .iter()
            .any(|c| c["operation"] == op && c["coverage"] == "tested")
    };
    for op in [
        "GET /tickets/{ticketId}",
        "POST /tickets/{ticketId}/notes",
        "GET /invoices",
        "GET /invoices/{invoiceId}",
    ] {
        assert!(
            tested(op),
            "{op} was never probed, so the test above proves nothing"
        );
    }
}

#[tokio::test]
async fn credentials_never_reach_the_report() {
    let canary = "Canary-Passw0rd-3f9e1c";
    let passwords = demo::USERS
        .iter()
        .map(|u| (u.email.to_string(), canary.to_string()))
        .collect();
    let options = DemoOptions::new(Default::default());
    let options = DemoOptions {
        passwords,
        ..options
    };
    let passwords = options.passwords.clone();
    let (_, dir) = scan(options, passwords).await;
    common::assert_no_credentials_in(dir.path(), canary);
}

/// A small JSON Schema check (type, const, enum, required, properties, items, $ref,
/// oneOf) that also rejects properties the schema does not declare, so the committed
/// schema cannot fall behind the report.
fn check(schema: &Value, root: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let target = root
            .pointer(r.trim_start_matches('#'))
            .expect("ref resolves");
        return check(target, root, value, at, errors);
    }
    if let Some(options) = schema.get("oneOf").and_then(Value::as_array) {
        let matching = options
            .iter()
            .filter(|o| {
                let mut e = Vec::new();
                check(o, root, value, at, &mut e);
                e.is_empty()
            })
            .count();
        if matching != 1 {
            errors.push(format!("{at}: matches {matching} of oneOf"));
        }
        return;
    }
    if let Some(t) = schema.get("type") {
        let types: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let actual = match value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        if !types
            .iter()
            .any(|t| *t == actual || (*t == "number" && actual == "integer"))
        {
            errors.push(format!("{at}: {actual} is not {types:?}"));
            return;
        }
    }
    if let Some(c) = schema.get("const") {
        if c != value {
            errors.push(format!("{at}: {value} is not {c}"));
        }
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array) {
        if !e.contains(value) {
            errors.push(format!("{at}: {value} not in enum"));
        }
    }
    if let (Some(obj), Some(props)) = (
        value.as_object(),
        schema.get("properties").and_then(Value::as_object),
    ) {
        for key in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !obj.contains_key(key.as_str().unwrap_or("")) {
                errors.push(format!("{at}: missing {key}"));
            }
        }
        for (k, v) in obj {
            match props.get(k) {
                Some(s) => check(s, root, v, &format!("{at}.{k}"), errors),
                None => errors.push(format!("{at}: property `{k}` is not in the schema")),
            }
        }
    }
    if let (Some(items), Some(schema_items)) = (value.as_array(), schema.get("items")) {
        for (i, v) in items.iter().enumerate() {
            check(schema_items, root, v, &format!("{at}[{i}]"), errors);
        }
    }
}

#[tokio::test]
async fn report_json_matches_the_committed_schema() {
    let schema_path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("reports/schema/report.schema.json");
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(schema_path).expect("schema file"))
            .expect("schema JSON");
    for report in [scan_with(|o| o).await, scan_with(DemoOptions::secure).await] {
        let mut errors = Vec::new();
        check(&schema, &schema, &report, "$", &mut errors);
        assert!(errors.is_empty(), "{errors:#?}");
    }
}

#[tokio::test]
async fn tokens_expiring_mid_scan_are_renewed_and_nothing_is_lost() {
    // One-second tokens and a scan throttled to last several seconds: every identity's
    // token dies during the run, and the findings must be those of a plain scan.
    let passwords = DemoOptions::random_passwords();
    let mut options = DemoOptions::new(passwords.clone());
    options.token_ttl = std::time::Duration::from_secs(1);
    let (report, _dir) = scan_throttled(options, passwords, Some(60.0)).await;
    assert!(report["stats"]["wall_seconds"].as_f64().is_some());
    let doubts: Vec<String> = common::findings(&report)
        .iter()
        .filter(|f| f["verdict"] == "inconclusive")
        .map(|f| {
            format!(
                "{} {} {} {}",
                f["attack"], f["operation"], f["actor"]["identity"], f["evidence"]["reason"]
            )
        })
        .collect();
    assert_eq!(
        violations(&report),
        planted(),
        "{doubts:#?} {:#}",
        report["warnings"]
    );
    assert_eq!(
        report["stats"]["inconclusive"], 0,
        "{:#} {doubts:#?}",
        report["warnings"]
    );
    // Without a re-login this test would prove nothing.
    common::assert_warns(&report, "renewed");
}

#[tokio::test]
async fn observed_matrix_equals_the_declared_one_only_when_secure() {
    let declared = rolegrid::demo_scan::DEMO_MATRIX;
    let passwords = DemoOptions::random_passwords();
    let (_, dir) = scan(
        DemoOptions::new(passwords.clone()).secure(),
        passwords.clone(),
    )
    .await;
    let observed =
        std::fs::read_to_string(dir.path().join("matrix-observed.csv")).expect("observed matrix");
    assert_eq!(
        observed, declared,
        "the secure portal behaves exactly as declared"
    );
    let (_, dir) = scan(DemoOptions::new(passwords.clone()), passwords).await;
    let observed =
        std::fs::read_to_string(dir.path().join("matrix-observed.csv")).expect("observed matrix");
    assert!(
        observed.contains("GET /admin/users,deny,allow,allow,allow\n"),
        "{observed}"
    );
    assert!(
        observed.contains("GET /invoices/{invoiceId},deny,allow,allow,allow\n"),
        "{observed}"
    );
    assert!(
        observed.contains("GET /export/invoices.csv,allow,"),
        "{observed}"
    );
}

#[tokio::test]
async fn auth_tenant_and_verb_flaws_alone_are_each_their_only_finding() {
    for id in [
        "jwt-weak-secret",
        "tenant-header-swap",
        "role-change-verb-swap",
    ] {
        let (_, report) = found_alone(id).await;
        assert_eq!(report["stats"]["suspicious"], 0, "`{id}` alone");
    }
}

#[tokio::test]
async fn a_weak_jwt_secret_is_named_by_its_corpus_line_and_no_token_leaks() {
    let passwords = DemoOptions::random_passwords();
    let options = DemoOptions::new(passwords.clone())
        .secure()
        .flaw("jwt-weak-secret", true)
        .expect("known flaw");
    let (report, dir) = scan(options, passwords).await;
    common::assert_warns(
        &report,
        "`your-256-bit-secret` (corpora/jwt-weak-secrets.txt line 7)",
    );
    let finding = finding(common::findings(&report), "weak-secret finding", |f| {
        f["attack"] == "bad-auth"
    });
    let detail = finding["request"]["detail"].as_str().unwrap_or("");
    assert!(
        detail.contains("line 7") && detail.contains("`root`"),
        "{detail}"
    );
    for entry in std::fs::read_dir(dir.path()).expect("output dir") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("text file");
        assert!(
            !text.contains("eyJhbGciOiJIUzI1NiI"),
            "token in {}",
            path.display()
        );
    }
}

#[tokio::test]
async fn oracle_flaws_alone_are_the_only_finding() {
    // `ticket-existence-leak` (the existence oracle) and `jwt-unverified` (found only
    // because `/me`'s per-request `render_id` is learned volatile from two baselines).
    for id in ["ticket-existence-leak", "jwt-unverified"] {
        let (flaw, report) = found_alone(id).await;
        // One finding per actor, nothing of any other verdict.
        for f in report["findings"].as_array().expect("findings") {
            assert_eq!(
                pair(
                    f["operation"].as_str().unwrap_or(""),
                    f["attack"].as_str().unwrap_or("")
                ),
                pair(flaw.operation, flaw.attack),
                "{f:#}"
            );
            assert_eq!(f["verdict"], "violation", "{f:#}");
            if id == "ticket-existence-leak" {
                assert_eq!(f["severity"], "low");
                assert_eq!(f["owasp"], "API1:2023 BOLA");
            }
        }
    }
}

/// Scans the secure portal with the shipped inputs, changed by `adjust`: report.json's
/// value and report.md's text.
async fn scan_secure_adjusted(
    adjust: impl FnOnce(&mut rolegrid::engagement::Engagement),
) -> (Value, String) {
    let (server, passwords) = common::portal(DemoOptions::secure).await;
    let scanned = scan_engagement_with_markdown(&server, &passwords, adjust).await;
    server.shutdown().await;
    scanned
}

#[tokio::test]
async fn every_cell_has_a_coverage_and_a_reason() {
    let (report, md) = scan_secure_adjusted(|e| e.allow_mutations = false).await;
    let cells = report["matrix"].as_array().expect("matrix");
    assert!(!cells.is_empty());
    for c in cells {
        assert!(
            matches!(
                c["coverage"].as_str(),
                Some("tested" | "untestable" | "skipped")
            ),
            "{c:#}"
        );
        assert!(!c["reason"].as_str().unwrap_or("").is_empty(), "{c:#}");
        if c["coverage"] == "tested" {
            assert_eq!(
                c["reason"].as_str().unwrap_or(""),
                format!(
                    "{} probe{}",
                    c["probes"],
                    if c["probes"] == 1 { "" } else { "s" }
                )
            );
        }
    }
    let cell = |op: &str, role: &str| {
        cells
            .iter()
            .find(|c| c["operation"] == op && c["role"] == role)
            .unwrap_or_else(|| panic!("no cell {op} × {role}"))
    };
    for (op, role) in [
        ("PATCH /tickets/{ticketId}", "client"),
        ("POST /tickets/{ticketId}/notes", "staff"),
        ("PUT /admin/users/{userId}/role", "admin"),
    ] {
        let c = cell(op, role);
        assert_eq!(
            (c["coverage"].as_str(), c["reason"].as_str()),
            (Some("untestable"), Some("mutations not allowed")),
            "{c:#}"
        );
    }
    assert_eq!(
        cell("GET /invoices/{invoiceId}", "client")["coverage"],
        "tested"
    );
    // Nothing is sent to a write without mutations, whoever may call it.
    assert_eq!(
        cell("POST /auth/login", "anonymous")["reason"],
        "mutations not allowed"
    );
    let admin = cell("GET /invoices", "admin");
    assert_eq!(admin["coverage"], "skipped");
    assert!(
        admin["reason"].as_str().unwrap_or("").contains("allows"),
        "{admin:#}"
    );
    // The product owner's table says the same.
    // Many cells share this reason: it is written once, as a note the cells point to.
    let note = md
        .lines()
        .find(|l| l.ends_with("untestable: mutations not allowed") && l.starts_with("- ["))
        .unwrap_or_else(|| panic!("no note for the shared reason:\n{md}"));
    let marker = note
        .trim_start_matches("- ")
        .split(' ')
        .next()
        .unwrap_or("");
    assert!(md.contains(&format!("own · untestable {marker}")), "{md}");
    assert!(md.contains("own · tested "), "{md}");
}

#[tokio::test]
async fn the_detector_rule_is_what_recognises_the_html_denial() {
    // Without the engagement's rule, the audit view's 200 "not permitted" page reads as
    // served; with it (the secure-mode tests), the scan is silent.
    let (report, _) = scan_secure_adjusted(|e| e.detectors.clear()).await;
    let flagged: BTreeSet<String> = common::findings(&report)
        .iter()
        .map(|f| f["operation"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        flagged,
        ["GET /admin/users/{userId}".to_string()].into(),
        "{:#}",
        report["findings"]
    );
}

/// Scans a running portal with the demo engagement as `tweak` changes it; the report as
/// written to report.json.
async fn scan_engagement(
    server: &demo::RunningDemo,
    passwords: &Passwords,
    tweak: impl FnOnce(&mut rolegrid::engagement::Engagement),
) -> Value {
    scan_engagement_with_markdown(server, passwords, tweak)
        .await
        .0
}

/// [`scan_engagement`], also returning report.md as written.
async fn scan_engagement_with_markdown(
    server: &demo::RunningDemo,
    passwords: &Passwords,
    tweak: impl FnOnce(&mut rolegrid::engagement::Engagement),
) -> (Value, String) {
    let (mut engagement, api, policy) =
        demo_scan::demo_inputs(&server.base_url(), passwords).expect("demo inputs");
    tweak(&mut engagement);
    let scanned = common::scan(engagement, api, policy, 7, Redactor::new()).await;
    let md = scanned.file("report.md");
    (scanned.report, md)
}

/// Scans a fresh portal in-process (mutations as given) and returns the report with the
/// portal's tickets and users before and after, read from the server's own store.
async fn scan_and_inspect(
    options: impl FnOnce(DemoOptions) -> DemoOptions,
    allow_mutations: bool,
) -> (Value, [Value; 4]) {
    let (server, passwords) = common::portal(options).await;
    let before = [server.tickets_json(), server.users_json()];
    let report =
        scan_engagement(&server, &passwords, |e| e.allow_mutations = allow_mutations).await;
    let after = [server.tickets_json(), server.users_json()];
    server.shutdown().await;
    let [tickets_before, users_before] = before;
    let [tickets_after, users_after] = after;
    (
        report,
        [tickets_before, tickets_after, users_before, users_after],
    )
}

fn by_id(records: &Value) -> std::collections::BTreeMap<u64, Value> {
    records
        .as_array()
        .expect("records")
        .iter()
        .map(|r| (r["id"].as_u64().expect("numeric id"), r.clone()))
        .collect()
}

/// Seeded records are untouched, and nothing rolegrid created (its canaries carry
/// `rolegrid-canary` in their strings) is left on the portal.
fn assert_seeds_kept_and_no_canary_left(state: &[Value; 4]) {
    let [tickets_before, tickets_after, users_before, users_after] = state;
    let after = by_id(tickets_after);
    for (id, seed) in by_id(tickets_before) {
        assert_eq!(after.get(&id), Some(&seed), "seed ticket {id} changed");
    }
    assert_eq!(users_after, users_before, "the users changed");
    let left: Vec<&Value> = tickets_after
        .as_array()
        .expect("tickets")
        .iter()
        .filter(|t| t.to_string().contains("rolegrid-canary"))
        .collect();
    assert!(left.is_empty(), "canaries left: {left:#?}");
}

#[tokio::test]
async fn canaries_take_every_write_and_are_cleaned_up() {
    for secure in [false, true] {
        let (report, state) = scan_and_inspect(|o| if secure { o.secure() } else { o }, true).await;
        assert_seeds_kept_and_no_canary_left(&state);
        let c = &report["canaries"];
        let created = c["created"].as_u64().unwrap_or(0);
        assert!(created > 0, "{c:#}");
        assert_eq!(
            c["deleted"].as_u64().unwrap_or(0) + c["deleted_by_probes"].as_u64().unwrap_or(0),
            created,
            "{c:#}"
        );
        assert_eq!(c["left"], serde_json::json!([]), "{c:#}");
        assert_eq!(c["failed"], serde_json::json!([]), "{c:#}");
        assert_eq!(c["over_cap"], 0);
        let by_probes = c["deleted_by_probes"].as_u64().unwrap_or(0);
        if secure {
            assert_eq!(by_probes, 0, "nothing deletes a foreign canary when secure");
        } else {
            // ticket-delete-bola: alice, bob and carol each delete what they must not.
            assert!(by_probes >= 3, "{c:#}");
        }
        // Every write and delete probe aimed at a canary; none at a seeded object.
        for f in report["findings"].as_array().expect("findings") {
            let method = f["operation"].as_str().unwrap_or("").split(' ').next();
            if matches!(method, Some("PATCH" | "PUT" | "DELETE")) {
                let detail = f.to_string();
                assert!(
                    !detail.contains("/tickets/501") && !detail.contains("/tickets/502"),
                    "{f:#}"
                );
            }
        }
    }
}

#[tokio::test]
async fn without_mutations_nothing_is_created_or_written() {
    let (report, state) = scan_and_inspect(|o| o, false).await;
    assert_seeds_kept_and_no_canary_left(&state);
    assert_eq!(
        state[0], state[1],
        "no ticket was created, changed or deleted"
    );
    assert!(report.get("canaries").is_none(), "{:#}", report["canaries"]);
    assert!(common::findings(&report).iter().all(|f| {
        let op = f["operation"].as_str().unwrap_or("");
        // `POST /statements` is marked `x-rolegrid-safe`: a read sent as POST.
        op == "POST /statements"
            || !matches!(
                op.split(' ').next(),
                Some("POST" | "PATCH" | "PUT" | "DELETE")
            )
    }));
}

#[tokio::test]
async fn a_tiny_canary_cap_is_reported_and_leaves_cells_unattacked() {
    let (server, passwords) = common::portal(DemoOptions::secure).await;
    let report = scan_engagement(&server, &passwords, |e| e.max_canaries = 2).await;
    server.shutdown().await;
    let c = &report["canaries"];
    assert_eq!(c["created"], 2, "{c:#}");
    assert!(c["over_cap"].as_u64().unwrap_or(0) > 0, "{c:#}");
    assert!(report["warnings"].to_string().contains("canary cap"));
    assert!(!c["uncovered"].as_array().expect("uncovered").is_empty());
    assert_eq!(report["stats"]["violations"], 0);
}
