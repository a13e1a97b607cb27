//! `existence-leak`: an identity the policy keeps from another owner's object asks for it,
//! and for an ID that exists nowhere (same shape: a far larger integer, another UUID, a
//! slug with the same layout). A target that denies the two differently (403 vs 404, a
//! different error body) tells anyone which IDs exist in other tenants.
//!
//! The probe's request names the foreign object; its baseline is the same identity asking
//! for the made-up ID. Reads only: a flawed write to the foreign object is id-swap's case.

use super::{request_for, Attack, PlanInput, Probe};
use crate::discover::Object;
use serde_json::Value;
use sha2::{Digest, Sha256};

pub(super) fn plan(input: &PlanInput<'_>, op: usize, actor: usize, out: &mut Vec<Probe>) {
    if !input.sendable(op) || !input.api.operations[op].method.is_safe() {
        return;
    }
    // Without credentials the answer is the login wall for both IDs.
    if input.identities[actor].is_anonymous() {
        return;
    }
    let Some((param, resource)) = input.id_param(op) else {
        return;
    };
    let Some(access) = input.access(op, actor) else {
        return;
    };
    // One foreign object is enough: another tenant's when there is one, else any other
    // owner's the policy keeps from this actor.
    let actor_tenant = &input.identities[actor].tenant;
    let foreign: Vec<(usize, &Object)> = input
        .corpus
        .of_resource(resource)
        .filter(|(_, o)| o.owner != actor && !input.may_reach(op, actor, o))
        .collect();
    let Some(&(index, object)) = foreign
        .iter()
        .find(|(_, o)| o.tenant.is_some() && o.tenant != *actor_tenant)
        .or_else(|| foreign.first())
    else {
        return;
    };
    let known: Vec<&Value> = input
        .corpus
        .of_resource(resource)
        .map(|(_, o)| &o.id)
        .collect();
    let missing = Object {
        id: missing_id(&object.id, &known),
        fields: serde_json::Map::new(),
        ..object.clone()
    };
    let (Some((request, _)), Some((missing_request, _))) = (
        request_for(input, op, Some(object)),
        request_for(input, op, Some(&missing)),
    ) else {
        return;
    };
    out.push(
        Probe::new(Attack::ExistenceLeak, op, actor, request)
            .object(index)
            .baseline(actor)
            .baseline_request(missing_request)
            .access(access)
            .detail(format!(
                "{} parameter `{}`: existing {} vs made-up {}",
                super::id_swap::location_name(param.location),
                param.name,
                object.id_text(),
                missing.id_text()
            )),
    );
}

/// An ID shaped like `like` that none of `known` is: integers go far beyond the largest
/// known one, other text keeps its layout (separators, letter and digit positions, case)
/// with every letter and digit redrawn from a hash, so a UUID stays a UUID.
pub(super) fn missing_id(like: &Value, known: &[&Value]) -> Value {
    let numbers = known.iter().filter_map(|v| match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse::<u64>().ok(),
        _ => None,
    });
    let far = numbers.max().unwrap_or(0).saturating_mul(10).max(9_999) + 7_777;
    match like {
        Value::Number(_) => return Value::from(far),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            return Value::from(far.to_string())
        }
        _ => {}
    }
    let text = crate::request::value_text(like);
    let taken = |candidate: &str| {
        known
            .iter()
            .any(|k| crate::request::value_text(k).eq_ignore_ascii_case(candidate))
    };
    // Bounded: a handful of salts; a collision with every one is practically impossible.
    for salt in 0u8..8 {
        let digest = Sha256::new()
            .chain_update([salt])
            .chain_update(text.as_bytes())
            .finalize();
        let mut bytes = digest.iter().cycle();
        let mut next = || bytes.next().copied().unwrap_or(0);
        let candidate: String = text
            .chars()
            .map(|c| match c {
                '0'..='9' => char::from(b'0' + next() % 10),
                'a'..='f' if looks_hex(&text) => {
                    char::from(b"0123456789abcdef"[next() as usize % 16])
                }
                'A'..='F' if looks_hex(&text) => {
                    char::from(b"0123456789ABCDEF"[next() as usize % 16])
                }
                'a'..='z' => char::from(b'a' + next() % 26),
                'A'..='Z' => char::from(b'A' + next() % 26),
                other => other,
            })
            .collect();
        if candidate != text && !taken(&candidate) {
            return Value::String(candidate);
        }
    }
    Value::String(format!("{text}-rolegrid-missing"))
}

/// Text made of hex digits and separators only (UUIDs, hashes): letters stay in a..f.
fn looks_hex(text: &str) -> bool {
    text.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn made_up_ids_keep_the_shape() {
        let known = [json!(3), json!(12)];
        let refs: Vec<&Value> = known.iter().collect();
        let far = missing_id(&json!(12), &refs);
        assert!(far.as_u64().is_some_and(|n| n > 1000), "{far}");
        assert_eq!(missing_id(&json!("12"), &refs), json!(far.to_string()));

        let uuid = json!("3f2b8c1e-9a4d-4e7f-8b6a-0c1d2e3f4a5b");
        let made = missing_id(&uuid, &[&uuid]);
        let made = made.as_str().unwrap_or_default();
        assert_eq!(made.len(), 36);
        assert!(looks_hex(made) && made != uuid.as_str().unwrap_or_default());
        assert_eq!(made.matches('-').count(), 4);

        let slug = json!("f-acme-1");
        let made = missing_id(&slug, &[&slug]);
        let made = made.as_str().unwrap_or_default();
        assert_eq!((made.len(), &made[1..2], &made[6..7]), (8, "-", "-"));
        // Deterministic: the same input gives the same made-up ID.
        assert_eq!(missing_id(&slug, &[&slug]), json!(made));
    }
}
