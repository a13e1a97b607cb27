//! Leaks in answers: stack traces, debug pages, server file paths and SQL errors;
//! secrets in bodies or headers (key formats from `corpora/secret-patterns.txt`); one of
//! the run's own credentials echoed back; passwords or password hashes in objects.
//! A reason names the kind and the place, never the value.

use super::{Check, Spot};
use crate::engagement::Redactor;
use crate::exchange::Exchange;
use regex::Regex;
use std::sync::LazyLock;

const SECRET_PATTERNS: &str = include_str!("../../corpora/secret-patterns.txt");

/// Each secret pattern with its name and its line in `corpora/secret-patterns.txt`; a
/// line that does not compile is skipped (a unit test keeps the file clean).
static SECRETS: LazyLock<Vec<(String, usize, Regex)>> = LazyLock::new(|| {
    SECRET_PATTERNS
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|(i, l)| {
            let (name, pattern) = l.split_once('\t')?;
            Some((
                name.trim().to_string(),
                i + 1,
                Regex::new(pattern.trim()).ok()?,
            ))
        })
        .collect()
});

/// Signs of a stack trace, a framework debug page or a database error, by platform.
const ERROR_SIGNS: &[(&str, &str)] = &[
    ("a Python traceback", r"Traceback \(most recent call last\)"),
    ("a Java stack trace", r"\bat [\w$.]+\([\w$]+\.java:\d+\)"),
    (
        "a Node.js stack trace",
        r"\n\s+at .{1,200}\(/[^)\s]+\.[cm]?js:\d+:\d+\)",
    ),
    ("a .NET stack trace", r"\bin [^\s]+\.cs:line \d+"),
    ("a Go panic", r"goroutine \d+ \[running\]"),
    ("a Rust panic", r"panicked at .{1,200}\.rs:\d+:\d+"),
    (
        "a PHP error",
        r"(?:Fatal error|Warning|Parse error): .{1,300} on line \d+",
    ),
    ("a Werkzeug debugger page", r"Werkzeug Debugger"),
    (
        "a Django debug page",
        r"You're seeing this error because you have .{0,20}DEBUG = True",
    ),
    (
        "a Laravel/Whoops debug page",
        r"Whoops(?:\\Run|, looks like something went wrong)",
    ),
    (
        "a Rails debug page",
        r"ActionController::\w+Error|Rails\.root:",
    ),
    (
        "an ASP.NET error page",
        r"Server Error in '.{0,100}' Application",
    ),
    (
        "an SQL error",
        r"SQLSTATE\[\w+\]|You have an error in your SQL syntax|\bORA-\d{5}\b|PG::\w+Error|psycopg2\.errors|sqlite3\.OperationalError|SQLITE_ERROR|org\.hibernate\.|unterminated quoted string at or near|Unclosed quotation mark after the character string",
    ),
];

/// Server-side file paths, judged only in error answers (a file API may name paths).
const PATH_SIGN: &str = r#"(?:/home/[\w.-]+/|/var/www/|/usr/src/app/|/srv/[\w.-]+/|/opt/[\w.-]+/)[\w./-]*\.(?:py|rb|js|ts|php|java|go|rs|cs)\b|[A-Z]:\\(?:Users|inetpub)\\[^"\s]+"#;

static ERRORS: LazyLock<Vec<(&'static str, Regex)>> = LazyLock::new(|| {
    ERROR_SIGNS
        .iter()
        .filter_map(|(name, p)| Some((*name, Regex::new(p).ok()?)))
        .collect()
});

static PATHS: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(PATH_SIGN).ok());

/// Hash formats that say a password hash is served.
static HASH: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"^(?:\$2[abxy]?\$\d{2}\$[./A-Za-z0-9]{53}|\$argon2(?:id|i|d)\$.+|pbkdf2_sha\d+\$.+|\$[56]\$.+\$.+|\{SSHA\}.+)$").ok()
});

/// Field names that hold a password or its hash.
const PASSWORD_FIELDS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "password_hash",
    "passwordhash",
    "hashed_password",
    "hashedpassword",
    "encrypted_password",
    "encryptedpassword",
    "password_digest",
    "passworddigest",
    "pass_hash",
];

/// Placeholders a server may put where a password was.
fn masked(text: &str) -> bool {
    let t = text.trim();
    t.is_empty() || t.chars().all(|c| c == '*' || c == '•' || c == 'x') || t.contains("redacted")
}

/// How much of a body the text patterns read: traces, keys and echoes sit near the start,
/// and every answer of the scan passes here.
const TEXT_SCANNED: usize = 64 * 1024;

pub fn check(e: &Exchange, redactor: &Redactor) -> Vec<Spot> {
    let mut out = Vec::new();
    let body = String::from_utf8_lossy(&e.body[..e.body.len().min(TEXT_SCANNED)]);
    let status = e.status.unwrap_or(0);
    if let Some((name, _)) = ERRORS.iter().find(|(_, re)| re.is_match(&body)) {
        out.push(Spot::new(
            Check::ErrorDisclosure,
            format!(
                "answer {status} shows {name}: internals help an attacker (serve a generic error, log the details)"
            ),
        ));
    } else if status >= 400 && PATHS.as_ref().is_some_and(|re| re.is_match(&body)) {
        out.push(Spot::new(
            Check::ErrorDisclosure,
            format!(
                "error answer {status} names a server file path (serve a generic error, log the details)"
            ),
        ));
    }
    let mut places: Vec<(String, &str)> = vec![("body".to_string(), body.as_ref())];
    for (k, v) in &e.headers {
        if !k.eq_ignore_ascii_case("set-cookie") {
            places.push((format!("header `{k}`"), v.as_str()));
        }
    }
    for (place, text) in &places {
        if let Some((name, line, _)) = SECRETS.iter().find(|(_, _, re)| re.is_match(text)) {
            out.push(Spot::new(
                Check::SecretInResponse,
                format!(
                    "the {place} holds what looks like a secret of kind `{name}` (corpora/secret-patterns.txt line {line}); value not shown: rotate it and keep it server-side"
                ),
            ));
            break;
        }
    }
    // The redactor knows every credential of this run (passwords, tokens, cookies, keys).
    if !redactor.is_empty() {
        for (place, text) in &places {
            if redactor.scrub(text) != *text {
                out.push(Spot::new(
                    Check::CredentialEcho,
                    format!(
                        "the {place} echoes one of this run's own credentials (a token, password or key; not shown): anything that logs or caches the answer keeps it"
                    ),
                ));
                break;
            }
        }
    }
    if let Some(json) = e.json() {
        if let Some((path, kind)) = password_field(&json, "$") {
            out.push(Spot::new(
                Check::PasswordInObject,
                format!("`{path}` holds {kind} (not shown): never serve passwords or their hashes"),
            ));
        }
    }
    out
}

/// The first field that serves a password or a hash of one: its JSON path and what it is.
fn password_field(value: &serde_json::Value, path: &str) -> Option<(String, &'static str)> {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let here = format!("{path}.{k}");
                if let serde_json::Value::String(text) = v {
                    let key = k.to_ascii_lowercase();
                    if HASH.as_ref().is_some_and(|re| re.is_match(text)) {
                        return Some((here, "a password hash"));
                    }
                    if PASSWORD_FIELDS.contains(&key.as_str()) && !masked(text) {
                        return Some((here, "a password or password hash"));
                    }
                }
                if let Some(found) = password_field(v, &here) {
                    return Some(found);
                }
            }
            None
        }
        serde_json::Value::Array(items) => items
            .iter()
            .take(1000)
            .enumerate()
            .find_map(|(i, v)| password_field(v, &format!("{path}[{i}]"))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::posture::test_answer as answer;

    /// The reason of the only weakness found.
    fn only_reason(spots: &[Spot]) -> &str {
        assert_eq!(spots.len(), 1, "{spots:?}");
        &spots[0].reason
    }

    fn checks(e: &Exchange, r: &Redactor) -> Vec<Check> {
        check(e, r).into_iter().map(|s| s.check).collect()
    }

    #[test]
    fn every_corpus_line_compiles() {
        let lines = SECRET_PATTERNS
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .count();
        assert_eq!(SECRETS.len(), lines);
        assert_eq!(ERRORS.len(), ERROR_SIGNS.len());
        assert!(PATHS.is_some() && HASH.is_some());
    }

    #[test]
    fn stack_traces_debug_pages_and_sql_errors_are_found() {
        let r = Redactor::new();
        for body in [
            "Traceback (most recent call last):\n  File \"/srv/app/main.py\", line 3",
            "java.lang.NullPointerException\n\tat com.acme.Api.get(Api.java:42)",
            "{\"error\":\"SQLSTATE[42000]: Syntax error\"}",
            "ERROR:  unterminated quoted string at or near \"'x\"",
            "thread 'main' panicked at src/main.rs:3:5",
        ] {
            assert_eq!(
                checks(&answer(500, body, &[]), &r),
                vec![Check::ErrorDisclosure],
                "{body}"
            );
        }
        // A path counts in an error answer only.
        let path = "{\"error\":\"cannot open /var/www/portal/app.php\"}";
        assert_eq!(
            checks(&answer(500, path, &[]), &r),
            vec![Check::ErrorDisclosure]
        );
        assert!(checks(&answer(200, path, &[]), &r).is_empty());
        assert!(checks(
            &answer(422, "{\"error\":\"text: expected a string\"}", &[]),
            &r
        )
        .is_empty());
    }

    #[test]
    fn secrets_are_found_in_bodies_and_headers_without_their_value() {
        let r = Redactor::new();
        let key = "AKIAIOSFODNN7EXAMPLE";
        let spots = check(&answer(200, &format!("{{\"key\":\"{key}\"}}"), &[]), &r);
        let reason = only_reason(&spots);
        assert!(
            reason.contains("aws-access-key-id") && !reason.contains(key),
            "{reason}"
        );
        let spots = check(&answer(200, "{}", &[("x-storage-key", key)]), &r);
        let reason = only_reason(&spots);
        assert!(reason.contains("header `x-storage-key`"), "{reason}");
        assert!(checks(&answer(200, "{\"id\":\"AKIA-not-a-key\"}", &[]), &r).is_empty());
    }

    #[test]
    fn a_credential_of_the_run_echoed_back_is_found_and_not_shown() {
        let r = Redactor::new();
        r.register("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlc2lnbmF0dXJl");
        let echo = answer(
            200,
            "{}",
            &[(
                "x-debug-session",
                "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlc2lnbmF0dXJl",
            )],
        );
        let spots = check(&echo, &r);
        assert_eq!(spots.len(), 1);
        assert_eq!(spots[0].check, Check::CredentialEcho);
        assert!(!spots[0].reason.contains("eyJ"));
        assert!(checks(&answer(200, "{\"name\":\"alice\"}", &[]), &r).is_empty());
    }

    #[test]
    fn passwords_and_hashes_in_objects_are_found_masks_are_not() {
        let r = Redactor::new();
        let hash = "$2b$12$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234";
        let users = format!("[{{\"id\":1}},{{\"id\":2,\"password_hash\":\"{hash}\"}}]");
        let spots = check(&answer(200, &users, &[]), &r);
        let reason = only_reason(&spots);
        assert!(
            reason.contains("`$[1].password_hash`") && !reason.contains(hash),
            "{reason}"
        );
        let plain = "{\"user\":{\"email\":\"a@b.c\",\"password\":\"hunter22\"}}";
        assert_eq!(
            checks(&answer(200, plain, &[]), &r),
            vec![Check::PasswordInObject]
        );
        // A hash under any name is still a hash.
        let other = format!("{{\"digest\":\"{hash}\"}}");
        assert_eq!(
            checks(&answer(200, &other, &[]), &r),
            vec![Check::PasswordInObject]
        );
        for fine in [
            "{\"password\":\"********\"}",
            "{\"password\":null}",
            "{\"password\":\"\"}",
        ] {
            assert!(checks(&answer(200, fine, &[]), &r).is_empty(), "{fine}");
        }
    }
}
