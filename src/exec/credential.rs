//! Credentials on the wire: what carries an identity's live credential (headers, cookie,
//! query, CSRF token), its forgeries (alg none, expired, re-signed with a weak secret and
//! another identity's claims), and what its token says, read offline.

use super::auth::{Attach, Live, Parts};
use super::forge;
use super::session::Session;
use super::Executor;
use crate::engagement::{Identity, KeyLocation, Secret};
use crate::request::{ClaimSwap, Credential, Forgery, TokenFacts};

impl Executor {
    /// What each identity's live token shows when read here (same order as the
    /// identities): its claims, and the weak corpus secret its signature verifies under.
    /// No request is sent.
    pub fn token_facts(&self) -> Vec<TokenFacts> {
        self.sessions
            .iter()
            .map(|s| {
                let Some(token) = live_token(&s.live()) else {
                    return TokenFacts::default();
                };
                let parsed = forge::claims(token.expose());
                let not_jwt = parsed.is_err();
                let claims = parsed.unwrap_or_default();
                TokenFacts {
                    weak_secret: forge::weak_secret_line(token.expose()),
                    subject: claims.contains_key("sub"),
                    role_claim: ROLE_CLAIMS.iter().any(|c| claims.contains_key(*c)),
                    not_jwt,
                }
            })
            .collect()
    }

    /// The claims a weak-secret forgery of `actor`'s token changes, taken from the other
    /// identity's own token where it has one, else from its engagement entry.
    fn claim_edits(
        &self,
        actor_claims: &serde_json::Map<String, serde_json::Value>,
        claim: ClaimSwap,
    ) -> Result<serde_json::Map<String, serde_json::Value>, String> {
        let (other, names): (usize, &[&str]) = match claim {
            ClaimSwap::Subject(other) => (other, SUBJECT_CLAIMS),
            ClaimSwap::Role(other) => (other, ROLE_CLAIMS),
        };
        let session = self
            .sessions
            .get(other)
            .ok_or("the identity to impersonate is unknown")?;
        let their_claims = live_token(&session.live())
            .and_then(|t| forge::claims(t.expose()).ok())
            .unwrap_or_default();
        let who = &session.identity;
        let mut edits = serde_json::Map::new();
        for &name in names {
            let Some(mine) = actor_claims.get(name) else {
                continue;
            };
            let value = their_claims
                .get(name)
                .cloned()
                .or_else(|| claim_from_identity(who, name, mine));
            if let Some(value) = value {
                edits.insert(name.to_string(), value);
            }
        }
        let key = if matches!(claim, ClaimSwap::Subject(_)) {
            "sub"
        } else {
            "role"
        };
        if !edits
            .keys()
            .any(|k| k == key || (key == "role" && k == "roles"))
        {
            return Err(format!(
                "identity `{}` has no `{key}` to claim (neither in its token nor in its attributes)",
                who.name
            ));
        }
        Ok(edits)
    }

    /// What carries `identity`'s credential (or its forgery): headers and query pairs,
    /// plus the session's CSRF token on unsafe methods.
    pub(super) fn credential_parts(
        &self,
        identity: usize,
        credential: Credential,
        safe_method: bool,
    ) -> Result<Parts, String> {
        let live = self
            .sessions
            .get(identity)
            .map(Session::live)
            .unwrap_or_default();
        match credential {
            Credential::Normal => {
                let mut parts = live.credential.into_parts();
                if let (Some((header, token)), false) = (live.csrf, safe_method) {
                    parts.headers.push((header, token));
                }
                Ok(parts)
            }
            Credential::Omitted => Ok(Parts::default()),
            Credential::Forged(forgery) => {
                let now = super::unix_now();
                let forge_value = |value: &Secret| {
                    let forged = match forgery {
                        Forgery::WeakSecret { line, claim } => {
                            let secret = crate::request::weak_secret_at(line)
                                .ok_or("the weak secret's corpus line is gone")?;
                            let claims = forge::claims(value.expose())?;
                            let edits = self.claim_edits(&claims, claim)?;
                            forge::resign(value.expose(), secret.as_bytes(), &edits, now)?
                        }
                        _ => forge::forge(value.expose(), forgery, now)?,
                    };
                    self.redactor.register(&forged);
                    Ok::<_, String>(Secret::new(forged))
                };
                let forged = match live.credential {
                    Attach::None => return Err("the identity has no credential to forge".into()),
                    // Never planned (`carries_token` is false): several headers are no token.
                    Attach::Headers(_) => {
                        return Err(
                            "the identity sends several fixed headers, no single token to forge"
                                .into(),
                        )
                    }
                    Attach::One {
                        at: at @ KeyLocation::Header,
                        name,
                        value,
                    } => {
                        // The scheme (`Bearer `) stays; only the token is forged.
                        let (prefix, token) = match value.expose().split_once(' ') {
                            Some((scheme, token)) => (format!("{scheme} "), token.to_string()),
                            None => (String::new(), value.expose().to_string()),
                        };
                        let forged = forge_value(&Secret::new(token))?;
                        Attach::One {
                            at,
                            name,
                            value: Secret::new(format!("{prefix}{}", forged.expose())),
                        }
                    }
                    Attach::One { at, name, value } => Attach::One {
                        at,
                        name,
                        value: forge_value(&value)?,
                    },
                };
                Ok(forged.into_parts())
            }
        }
    }
}

/// Claims that say who a token's bearer is; a subject forgery takes them all from the
/// identity it impersonates.
const SUBJECT_CLAIMS: &[&str] = &[
    "sub",
    "user_id",
    "userId",
    "uid",
    "email",
    "username",
    "preferred_username",
    "name",
    "role",
    "roles",
    "tenant",
    "tenant_id",
    "tenantId",
    "org",
    "org_id",
];

/// Claims that carry a role.
const ROLE_CLAIMS: &[&str] = &["role", "roles"];

/// The token an identity's live credential carries (without its `Bearer ` scheme).
fn live_token(live: &Live) -> Option<Secret> {
    match &live.credential {
        Attach::None | Attach::Headers(_) => None,
        Attach::One {
            at: KeyLocation::Header,
            value,
            ..
        } => Some(match value.expose().split_once(' ') {
            Some((_, token)) => Secret::new(token.to_string()),
            None => value.clone(),
        }),
        Attach::One { value, .. } => Some(value.clone()),
    }
}

/// A claim's value for an identity with no token to copy it from: its attributes
/// (`user_id`, `email`, `tenant_id`…), role and tenant, shaped like the actor's own
/// value (a string stays a string).
fn claim_from_identity(
    who: &Identity,
    name: &str,
    mine: &serde_json::Value,
) -> Option<serde_json::Value> {
    let attribute = |keys: &[&str]| keys.iter().find_map(|k| who.attributes.get(*k)).cloned();
    let value = match name {
        "sub" | "user_id" | "userId" | "uid" => attribute(&["sub", "user_id", "id", "uid"])?,
        "email" | "username" | "preferred_username" | "name" => attribute(&[name, "email"])?,
        "role" => serde_json::Value::from(who.role.clone()),
        "roles" => serde_json::json!([who.role]),
        _ => match attribute(&[name, "tenant_id"]) {
            Some(v) => v,
            None => serde_json::Value::from(who.tenant.clone()?),
        },
    };
    Some(match (mine, &value) {
        (serde_json::Value::String(_), serde_json::Value::Number(n)) => {
            serde_json::Value::from(n.to_string())
        }
        _ => value,
    })
}
