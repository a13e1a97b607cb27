//! Credential forgeries for `bad-auth`, built from an identity's live token.

use crate::request::Forgery;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// The forged token, or why this forgery does not apply to this token.
pub fn forge(token: &str, forgery: Forgery, now_unix: u64) -> Result<String, &'static str> {
    match forgery {
        Forgery::Garbage => Ok("rolegrid-not-a-valid-token".to_string()),
        Forgery::AlgNone => {
            let (_, payload, _) = split(token)?;
            let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
            Ok(format!("{header}.{payload}."))
        }
        Forgery::Expired => {
            let (header, payload, signature) = split(token)?;
            let bytes = URL_SAFE_NO_PAD
                .decode(payload)
                .map_err(|_| "the token's payload is not base64url")?;
            let mut claims: serde_json::Value =
                serde_json::from_slice(&bytes).map_err(|_| "the token's payload is not JSON")?;
            let Some(obj) = claims.as_object_mut() else {
                return Err("the token's payload is not a JSON object");
            };
            obj.insert(
                "exp".into(),
                serde_json::Value::from(now_unix.saturating_sub(3600)),
            );
            let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
            Ok(format!("{header}.{payload}.{signature}"))
        }
    }
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
    use super::*;

    fn token() -> String {
        let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let p = URL_SAFE_NO_PAD.encode(br#"{"sub":"1","exp":9999999999}"#);
        format!("{h}.{p}.c2lnbmF0dXJl")
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
        let payload = forged.split('.').nth(1).expect("payload");
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("json");
        assert_eq!(claims["exp"], 6400);
        assert!(forged.ends_with(".c2lnbmF0dXJl"));
    }

    #[test]
    fn non_jwt_is_refused_not_panicking() {
        assert!(forge("opaque", Forgery::AlgNone, 0).is_err());
        assert!(forge("a.b", Forgery::Expired, 0).is_err());
        assert!(forge("a.!!.c", Forgery::Expired, 0).is_err());
    }
}
