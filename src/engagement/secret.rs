//! Credentials as a type: [`Secret`] never prints its value, and [`Redactor`] scrubs every
//! credential rolegrid has seen (and its base64 and URL-encoded forms) from any text.

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

    /// Registers a credential and the encodings in which it may show up in a report.
    pub fn register(&self, secret: &str) {
        if secret.len() < 4 {
            return;
        }
        let mut forms = vec![secret.to_string()];
        forms.push(base64::engine::general_purpose::STANDARD.encode(secret));
        forms.push(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret));
        let encoded = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect::<String>();
        forms.push(encoded);
        // A JWT's signature is the secret part of it; scrub it wherever it appears alone.
        if let Some(signature) = jwt_signature(secret) {
            forms.push(signature.to_string());
        }
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

    pub fn is_empty(&self) -> bool {
        self.needles.read().map(|n| n.is_empty()).unwrap_or(true)
    }
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

    #[test]
    fn ignores_tiny_values() {
        let r = Redactor::new();
        r.register("ab");
        assert_eq!(r.scrub("abc"), "abc");
    }
}
