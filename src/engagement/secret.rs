//! Credentials as a type: [`Secret`] never prints its value, and [`Redactor`] scrubs every
//! credential rolegrid has seen from any text, in every form an output may hold it: plain,
//! base64 (also inside a longer base64 value), URL-encoded, JSON-escaped and Markdown-escaped.

use base64::Engine;
use std::fmt;
use std::sync::{Arc, RwLock};

/// What every scrubbed credential is replaced with.
pub const REDACTED: &str = "(redacted)";

/// A credential value. Debug and Display print `(redacted)`; only [`Secret::expose`] gives
/// the value, and only the HTTP layer calls it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// The set of credential values seen in this run, shared by every writer.
/// Values shorter than 4 characters are not registered: scrubbing them would mangle
/// ordinary text and they are not credentials worth the name.
#[derive(Clone, Default)]
pub struct Redactor {
    needles: Arc<RwLock<Vec<String>>>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Redactor(..)")
    }
}

impl Redactor {
    pub fn new() -> Self {
        Self::default()
    }

    /// The binary's one redactor: every command registers into it, and the panic hook
    /// scrubs with it, so even a crash message carries no credential.
    pub fn process() -> Self {
        static PROCESS: std::sync::OnceLock<Redactor> = std::sync::OnceLock::new();
        PROCESS.get_or_init(Redactor::new).clone()
    }

    /// A panic's message and place, scrubbed, as the binary prints it.
    pub fn panic_text(&self, payload: &(dyn std::any::Any + Send), location: &str) -> String {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".into());
        format!(
            "rolegrid: internal error at {location}: {}\n  hint: this is a bug; please report it with the command that ran (credentials are removed from this message)",
            self.scrub(&message)
        )
    }

    /// Registers a credential and the encodings in which it may show up in an output: as
    /// sent (plain, base64, URL-encoded), as a target may echo it (JSON-escaped, `\/`,
    /// `\uXXXX`) and as our own writers store it (JSON inside JSON, a Markdown cell).
    pub fn register(&self, secret: &str) {
        if secret.len() < 4 {
            return;
        }
        let forms = encoded_forms(secret);
        let Ok(mut needles) = self.needles.write() else {
            return;
        };
        for form in forms {
            if form.len() >= 4 && !needles.contains(&form) {
                needles.push(form);
            }
        }
        // Longest first, so a value that contains another is replaced whole.
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
    }

    pub fn scrub(&self, text: &str) -> String {
        let Ok(needles) = self.needles.read() else {
            return text.to_string();
        };
        let mut out = text.to_string();
        for needle in needles.iter() {
            if out.contains(needle.as_str()) {
                out = out.replace(needle.as_str(), REDACTED);
            }
        }
        out
    }

    /// The first `max` bytes of `body` as text, credentials scrubbed *before* the cut: a
    /// credential that straddles the cut would otherwise leave its first half behind.
    pub fn excerpt(&self, body: &[u8], max: usize) -> String {
        let longest = self
            .needles
            .read()
            .map(|n| n.first().map_or(0, String::len))
            .unwrap_or(0);
        let window = &body[..body.len().min(max.saturating_add(longest))];
        let mut text = self.scrub(&String::from_utf8_lossy(window));
        let mut cut = text.len().min(max);
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text
    }

    pub fn is_empty(&self) -> bool {
        self.needles.read().map(|n| n.is_empty()).unwrap_or(true)
    }
}

/// Every form of `secret` that an output may hold, the plain value first.
fn encoded_forms(secret: &str) -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
    let mut forms = vec![secret.to_string()];
    forms.push(STANDARD.encode(secret));
    forms.push(URL_SAFE.encode(secret));
    forms.push(URL_SAFE_NO_PAD.encode(secret));
    forms.extend(base64_cores(secret.as_bytes()));
    forms.push(url::form_urlencoded::byte_serialize(secret.as_bytes()).collect());
    for space_plus in [false, true] {
        let upper = percent_encoded(secret, space_plus);
        forms.push(recase_hex(&upper, false));
        forms.push(upper);
    }
    let json = json_escaped(secret);
    let ascii = ascii_escaped(&json);
    forms.push(json_escaped(&json));
    forms.push(json_escaped(&ascii));
    forms.push(recase_hex(&ascii, true));
    forms.push(ascii);
    forms.push(json);
    forms.push(markdown_escaped(secret));
    // A JWT's signature is the secret part of it; scrub it wherever it appears alone.
    if let Some(signature) = jwt_signature(secret) {
        forms.push(signature.to_string());
    }
    // PHP and some gateways write `/` as `\/` in JSON: base64 text is full of slashes.
    let slashed: Vec<String> = forms
        .iter()
        .filter(|f| f.contains('/'))
        .map(|f| f.replace('/', "\\/"))
        .collect();
    forms.extend(slashed);
    forms
}

/// The base64 text of `bytes` wherever they start inside a longer base64 value (a login
/// body or `user:password` encoded whole): at each of the three byte alignments, the
/// characters that only our bytes decide. Shorter cores are left out: too short to be
/// told from ordinary text.
fn base64_cores(bytes: &[u8]) -> Vec<String> {
    use base64::engine::general_purpose::STANDARD_NO_PAD;
    let mut cores = Vec::new();
    for lead in 0..3usize {
        let mut padded = vec![0u8; lead];
        padded.extend_from_slice(bytes);
        let text = STANDARD_NO_PAD.encode(&padded);
        let start = (8 * lead).div_ceil(6);
        let end = (8 * padded.len()) / 6;
        let Some(core) = text.get(start..end) else {
            continue;
        };
        if core.len() >= 8 {
            cores.push(core.replace('+', "-").replace('/', "_"));
            cores.push(core.to_string());
        }
    }
    cores
}

/// RFC 3986 percent-encoding of everything but unreserved characters (`%20`, or `+` for a
/// space in form bodies), upper-case hex.
fn percent_encoded(text: &str, space_plus: bool) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(b))
            }
            b' ' if space_plus => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The text between the quotes of a JSON string holding `text` (serde_json's escaping).
fn json_escaped(text: &str) -> String {
    let quoted = serde_json::Value::String(text.to_string()).to_string();
    quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .unwrap_or(&quoted)
        .to_string()
}

/// JSON-escaped text with every non-ASCII character as `\uXXXX` (Python's `json.dumps`).
fn ascii_escaped(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// The escaping report.md applies to text in a table cell.
fn markdown_escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let entity = match c {
            '<' => "&lt;",
            '>' => "&gt;",
            '&' => "&amp;",
            _ => "",
        };
        if !entity.is_empty() {
            out.push_str(entity);
            continue;
        }
        if matches!(c, '|' | '*' | '_' | '[' | ']' | '#') {
            out.push('\\');
        }
        out.push(if c == '`' { '\'' } else { c });
    }
    out
}

/// Re-cases the hex digits that follow `%` (two) or `\u` (four), nothing else.
fn recase_hex(text: &str, upper: bool) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut digits_left = 0;
    for (i, &c) in chars.iter().enumerate() {
        if digits_left > 0 && c.is_ascii_hexdigit() {
            digits_left -= 1;
            out.push(if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            });
            continue;
        }
        digits_left = 0;
        if c == '%' {
            digits_left = 2;
        } else if c == 'u' && i > 0 && chars[i - 1] == '\\' {
            digits_left = 4;
        }
        out.push(c);
    }
    out
}

fn jwt_signature(token: &str) -> Option<&str> {
    let mut parts = token.split('.');
    let (_, _, sig) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || sig.len() < 16 {
        return None;
    }
    Some(sig)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_formats_its_value() {
        let s = Secret::new("hunter2-password");
        assert_eq!(format!("{s}"), REDACTED);
        assert_eq!(format!("{s:?}"), REDACTED);
        assert_eq!(s.expose(), "hunter2-password");
    }

    #[test]
    fn scrubs_plain_base64_and_urlencoded_forms() {
        let r = Redactor::new();
        r.register("p@ss word/1");
        let b64 = base64::engine::general_purpose::STANDARD.encode("p@ss word/1");
        let text = format!("a p@ss word/1 b {b64} c p%40ss+word%2F1 d");
        let out = r.scrub(&text);
        assert!(!out.contains("p@ss"), "{out}");
        assert!(!out.contains(&b64), "{out}");
        assert!(!out.contains("p%40ss"), "{out}");
        assert_eq!(out.matches(REDACTED).count(), 3);
    }

    #[test]
    fn scrubs_a_jwt_signature_on_its_own() {
        let r = Redactor::new();
        r.register("aaaa.bbbb.cccccccccccccccccccccccc");
        assert_eq!(r.scrub("sig=cccccccccccccccccccccccc"), "sig=(redacted)");
    }

    /// Each way a writer or a target may spell a credential with quotes, slashes, spaces and
    /// non-ASCII in it, as that writer really produces it.
    #[test]
    fn scrubs_json_escaped_and_percent_forms_as_real_writers_make_them() {
        let secret = "Pä\"ss/w rd\\&_1";
        let r = Redactor::new();
        r.register(secret);
        let inner = serde_json::json!({ "password": secret }).to_string();
        let outer = serde_json::json!({ "body": inner }).to_string();
        let python_style = json_escaped(secret).replace('ä', "\\u00e4");
        let texts = [
            serde_json::to_string_pretty(&serde_json::json!({ "p": secret })).unwrap_or_default(),
            outer,
            format!("{{\"password\": \"{python_style}\"}}"),
            format!(
                "{{\"password\": \"{}\"}}",
                json_escaped(secret).replace('/', "\\/")
            ),
            format!(
                "password={}",
                url::form_urlencoded::byte_serialize(secret.as_bytes()).collect::<String>()
            ),
            format!(
                "GET /login?p={}",
                recase_hex(&percent_encoded(secret, false), false)
            ),
            format!("| {} |", markdown_escaped(secret)),
        ];
        for text in texts {
            let out = r.scrub(&text);
            assert!(out.contains(REDACTED), "not scrubbed: {text} → {out}");
            for fragment in [
                "ss/w", "ss\\/w", "ss%2Fw", "ss%2fw", "w rd", "w+rd", "w%20rd",
            ] {
                assert!(!out.contains(fragment), "{fragment} left in {out}");
            }
        }
    }

    /// A credential inside a longer base64 value (a whole login body, `user:password`)
    /// is found at any byte alignment; what is left beside it says nothing of it.
    #[test]
    fn scrubs_base64_of_a_value_that_holds_the_credential() {
        let secret = "canary-Zx81-secret";
        let r = Redactor::new();
        r.register(secret);
        for prefix in ["", "u", "us", "user:", r#"{"password":""#] {
            for suffix in ["", "x", "\"}"] {
                let whole = format!("{prefix}{secret}{suffix}");
                for engine in [
                    base64::engine::general_purpose::STANDARD,
                    base64::engine::general_purpose::URL_SAFE_NO_PAD,
                ] {
                    let encoded = engine.encode(&whole);
                    let out = r.scrub(&format!("echo: {encoded}"));
                    assert!(out.contains(REDACTED), "{whole:?} as {encoded} → {out}");
                    // The credential's own bytes no longer decode out of what is left.
                    let left = out.replace(REDACTED, "");
                    let around = engine.encode(format!("{prefix}{suffix}")).len();
                    assert!(left.len() <= "echo: ".len() + around + 4, "{left}");
                }
            }
        }
    }

    #[test]
    fn recases_only_escape_digits() {
        assert_eq!(recase_hex("%2fab\\u00e4Cd", true), "%2Fab\\u00E4Cd");
        assert_eq!(recase_hex("%2FAB\\u00E4CD", false), "%2fAB\\u00e4CD");
    }

    /// A credential cut in half by the excerpt's end leaves no half behind.
    #[test]
    fn an_excerpt_is_scrubbed_before_it_is_cut() {
        let r = Redactor::new();
        r.register("tok-0123456789abcdef");
        let body = b"0123456789 tok-0123456789abcdef and more";
        let excerpt = r.excerpt(body, 20);
        assert_eq!(excerpt, "0123456789 (redacted");
        assert!(!r.excerpt(body, 16).contains("tok-0"));
        // Multi-byte text is cut on a character boundary.
        assert_eq!(r.excerpt("aé".as_bytes(), 2), "a");
    }

    #[test]
    fn a_panic_message_is_scrubbed() {
        let r = Redactor::new();
        r.register("hunter2-password");
        let payload: Box<dyn std::any::Any + Send> =
            Box::new(format!("bad token hunter2-password in {}", "x"));
        let text = r.panic_text(payload.as_ref(), "src/x.rs:1");
        assert!(text.contains("src/x.rs:1"), "{text}");
        assert!(text.contains("bad token (redacted)"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn ignores_tiny_values() {
        let r = Redactor::new();
        r.register("ab");
        assert_eq!(r.scrub("abc"), "abc");
    }
}
