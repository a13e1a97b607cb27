//! `mass-assignment`: a caller's own update sent with extra privileged fields (`role`,
//! `tenant_id`, … from `corpora/mass-assignment-fields.txt`, plus what the response schema
//! shows but the request schema does not); the caller's own read-back before and after
//! tells whether one of them was stored.

use super::{
    keep_current_values, properties, request_for, response_schema, Attack, Confirm, PlanInput,
    Probe, PLACEHOLDER_MARKER,
};
use crate::discover::Object;
use crate::matrix::Access;
use serde_json::{json, Value};

const FIELDS: &str = include_str!("../../corpora/mass-assignment-fields.txt");

/// The field names of the corpus, in file order.
pub(crate) fn privileged_fields() -> impl Iterator<Item = &'static str> {
    FIELDS
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// Fields naming who owns an object. On the caller's own object a new value would hand it
/// away and leave the caller nothing to read back, so they are not sent.
fn is_owner_field(name: &str) -> bool {
    matches!(
        name,
        "owner_id" | "ownerId" | "owner" | "user_id" | "userId" | "created_by" | "author_id"
    )
}

fn is_tenant_field(name: &str) -> bool {
    matches!(
        name,
        "tenant_id" | "tenantId" | "tenant" | "org" | "org_id" | "orgId" | "organization_id"
    )
}

/// Server-managed values (ids, timestamps) that say nothing about privileges.
fn is_bookkeeping(name: &str) -> bool {
    name == "id" || name.ends_with("_at") || name.ends_with("At")
}

fn same_kind(a: &Value, b: &Value) -> bool {
    matches!(
        (a, b),
        (Value::String(_), Value::String(_))
            | (Value::Number(_), Value::Number(_))
            | (Value::Bool(_), Value::Bool(_))
    )
}

/// The value to try for `field` on `object`; `None` when nothing sensible differs from
/// what the object holds.
fn value_for(
    input: &PlanInput<'_>,
    object: &Object,
    field: &str,
    schema_type: Option<&str>,
) -> Option<Value> {
    let current = object.fields.get(field);
    let privileged = is_tenant_field(field) || privileged_fields().any(|f| f == field);
    if privileged {
        // Another object's value for the same field, preferably another tenant's: the
        // write then moves the object somewhere the caller has no business putting it.
        let mut others: Vec<&Object> = input
            .corpus
            .objects
            .iter()
            .filter(|o| o.resource == object.resource && o.id != object.id)
            .collect();
        others.sort_by_key(|o| o.tenant == object.tenant);
        let borrowed = others.iter().find_map(|o| {
            let v = o.fields.get(field)?;
            let fits = match current {
                Some(c) => same_kind(c, v) && c != v,
                None => v.is_string() || v.is_number() || v.is_boolean(),
            };
            fits.then(|| v.clone())
        });
        if borrowed.is_some() {
            return borrowed;
        }
    }
    let by_name = match field {
        "role" => Some(json!("admin")),
        "is_admin" | "admin" | "isAdmin" => Some(Value::Bool(true)),
        "permissions" | "scopes" => Some(json!(["*"])),
        _ => None,
    };
    let value = by_name.or_else(|| match (current, schema_type) {
        (Some(Value::Bool(b)), _) => Some(Value::Bool(!b)),
        (Some(Value::String(_)), _) | (None, Some("string")) => {
            Some(Value::String(PLACEHOLDER_MARKER.into()))
        }
        (None, Some("boolean")) => Some(Value::Bool(true)),
        _ => None,
    })?;
    (current != Some(&value)).then_some(value)
}

/// Plans the probes of one operation sent by one actor.
pub(super) fn plan(input: &PlanInput<'_>, op: usize, for_actor: usize, out: &mut Vec<Probe>) {
    for op in std::iter::once(op) {
        let operation = &input.api.operations[op];
        if !input.sendable(op) || operation.method.is_safe() {
            continue;
        }
        let Some(request_schema) = operation.json_body().and_then(|m| m.schema.as_ref()) else {
            continue;
        };
        let Some((_, resource)) = input.id_param(op) else {
            continue;
        };
        let request_props: Vec<&str> = properties(input.api, request_schema)
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        let response_props = response_schema(operation)
            .map(|s| properties(input.api, s))
            .unwrap_or_default();
        // Candidates: the corpus list, then what only the response declares.
        let mut candidates: Vec<(&str, Option<&str>)> = Vec::new();
        let names = privileged_fields().map(|f| (f, None)).chain(
            response_props
                .iter()
                .filter(|(_, s)| {
                    matches!(
                        s.get("type").and_then(Value::as_str),
                        Some("string" | "integer" | "number" | "boolean")
                    )
                })
                .map(|(name, s)| (*name, s.get("type").and_then(Value::as_str))),
        );
        for (name, ty) in names {
            let ty = ty.or_else(|| {
                response_props
                    .iter()
                    .find(|(n, _)| *n == name)
                    .and_then(|(_, s)| s.get("type").and_then(Value::as_str))
            });
            if request_props.contains(&name)
                || is_owner_field(name)
                || is_bookkeeping(name)
                || candidates.iter().any(|(n, _)| *n == name)
            {
                continue;
            }
            candidates.push((name, ty));
        }
        for actor in std::iter::once(for_actor) {
            let Some(access) = input.granted_access(op, actor) else {
                continue;
            };
            let Some((index, object)) = input.own_object(op, actor, resource) else {
                continue;
            };
            let Some((mut request, Some(mut write))) = request_for(input, op, Some(object)) else {
                continue;
            };
            if write.readback.is_none() {
                // Nothing to read back: a stored field could never be confirmed.
                continue;
            }
            if let Some(body) = request.json.as_mut() {
                keep_current_values(body, object);
            }
            let Some(Value::Object(body)) = request.json.as_mut() else {
                continue;
            };
            let mut sent = Vec::new();
            for (name, ty) in &candidates {
                // A caller that reaches the object through its tenant would lose it with
                // a new tenant, and nothing would be left to read back (as with owners).
                if access == Access::Tenant && is_tenant_field(name) {
                    continue;
                }
                if let Some(value) = value_for(input, object, name, *ty) {
                    body.insert((*name).to_string(), value.clone());
                    sent.push(((*name).to_string(), value));
                }
            }
            if sent.is_empty() {
                continue;
            }
            let names: Vec<String> = sent.iter().map(|(n, _)| format!("`{n}`")).collect();
            write.confirm = Confirm::Fields(sent);
            out.push(
                Probe::new(Attack::MassAssignment, op, actor, request)
                    .object(index)
                    .baseline(actor)
                    .access(access)
                    .write(write)
                    .detail(format!(
                        "the caller's own object with extra fields {}",
                        names.join(", ")
                    )),
            );
        }
    }
}
