//! HS256 JSON Web Tokens for the demo portal: signing, strict verification, and the
//! deliberately lax decode that backs the `jwt-unverified` flaw.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The claims the portal puts in every token it issues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Claims {
    pub sub: String,
    pub email: String,
    pub role: String,
    pub tenant: Option<String>,
    pub iat: u64,
    pub exp: u64,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
}

fn mac(secret: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length")
}

/// Signs `claims` as a compact HS256 JWT.
pub(crate) fn sign(claims: &Claims, secret: &[u8]) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    // Serialising a struct of strings and integers cannot fail.
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
    let signing_input = format!("{header}.{payload}");
    let mut m = mac(secret);
    m.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(m.finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

/// Verifies a token strictly: three segments, `alg` exactly HS256, a valid signature
/// (compared in constant time by `verify_slice`) and `exp` in the future.
pub(crate) fn verify(token: &str, secret: &[u8], now: u64) -> Option<Claims> {
    let (signing_input, signature) = token.rsplit_once('.')?;
    let (header, payload) = signing_input.split_once('.')?;
    if payload.contains('.') {
        return None;
    }
    let header: Header = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    if header.alg != "HS256" {
        return None;
    }
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    let mut m = mac(secret);
    m.update(signing_input.as_bytes());
    m.verify_slice(&signature).ok()?;
    let claims: Claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    (now < claims.exp).then_some(claims)
}

/// The `exp` of a token issued at `iat` (whole seconds) that lives `ttl`: one second more,
/// because `iat` is rounded down. Without it a token issued at 12.99 s with a 1 s lifetime
/// would die at 13 s, ten milliseconds later, and a client that just renewed it could
/// not use it once.
pub(crate) fn expiry(iat: u64, ttl: std::time::Duration) -> u64 {
    iat.saturating_add(ttl.as_secs()).saturating_add(1)
}

/// Compares two secrets without leaking where they differ through timing: both sides
/// are MACed under `key` and the tags are compared with `verify_slice` (constant time).
pub(crate) fn secrets_equal(given: &str, expected: &str, key: &[u8]) -> bool {
    let mut m = mac(key);
    m.update(expected.as_bytes());
    let expected_tag = m.finalize().into_bytes();
    let mut m = mac(key);
    m.update(given.as_bytes());
    m.verify_slice(&expected_tag).is_ok()
}

/// The flawed decode: reads `sub` from the payload and ignores the header, the signature
/// and `exp` entirely, so `alg: none`, forged and expired tokens all pass.
pub(crate) fn decode_unverified(token: &str) -> Option<u64> {
    let payload = token.split('.').nth(1)?;
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?)
            .ok()?;
    // Lax on purpose: a numeric `sub` is accepted as well as the string form we issue.
    match claims.get("sub")? {
        serde_json::Value::String(s) => s.parse().ok(),
        serde_json::Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: u64) -> Claims {
        Claims {
            sub: "1".into(),
            email: "alice@acme.test".into(),
            role: "client".into(),
            tenant: Some("acme".into()),
            iat: 100,
            exp,
        }
    }

    #[test]
    fn round_trip_and_rejections() {
        let secret = b"k";
        let token = sign(&claims(200), secret);
        assert_eq!(verify(&token, secret, 150), Some(claims(200)));
        assert_eq!(verify(&token, secret, 200), None, "expired");
        assert_eq!(verify(&token, b"other", 150), None, "wrong key");
        let mut tampered = token.clone();
        tampered.push('A');
        assert_eq!(verify(&tampered, secret, 150), None);

        let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let payload = token.split('.').nth(1).unwrap_or_default();
        let forged = format!("{none_header}.{payload}.");
        assert_eq!(verify(&forged, secret, 150), None, "alg none");
        assert_eq!(decode_unverified(&forged), Some(1));
    }
}
