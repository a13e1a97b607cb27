//! Canary objects (pure part): which objects rolegrid must create before any write or
//! delete is sent, through which create operation and as whom; the body each create sends;
//! and how the new object's ID is read from the answer. Writes and deletes then aim only at
//! these objects (discovered and seed objects are never written to). Sending the creates
//! and deleting the canaries at the end belong to `exec::canary`.
//!
//! Deletes destroy what they hit, so each (delete operation, caller) gets canaries of its
//! own, reserved for it: a probe never meets an object that an earlier probe deleted.

use crate::engagement::Identity;
use crate::matrix::{Access, Policy};
use crate::request::value_text;
use crate::spec::{Api, Method};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// What a canary is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CanaryTag {
    /// `Some((delete op, caller))`: only that caller's probes on that delete operation may
    /// aim at it. `None`: any write except a delete may.
    pub reserved: Option<(usize, usize)>,
}

/// One canary to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanaryOrder {
    pub resource: String,
    pub create_op: usize,
    /// The identity that creates (and so owns) it.
    pub creator: usize,
    pub tag: CanaryTag,
}

/// Every canary a scan needs, and why some resources get none.
#[derive(Debug, Clone, Default)]
pub struct CanaryPlan {
    pub orders: Vec<CanaryOrder>,
    /// Resource → why no canary can be created for it.
    pub gaps: BTreeMap<String, String>,
    /// Orders dropped because the engagement's cap was reached.
    pub over_cap: usize,
}

/// The request that creates `order`'s canary, its body not yet filled: a parent the
/// path names (`POST /orgs/{org}/projects`) is one of the creator's own (an object it
/// owns, else one of its tenant's), else sampled; with the parents it named. `None` when
/// the path cannot be filled.
pub fn create_request(
    api: &Api,
    order: &CanaryOrder,
    corpus: &super::ObjectCorpus,
    identities: &[Identity],
) -> Option<(crate::request::RequestSpec, super::Parents)> {
    let creator = &identities[order.creator];
    let parents: Vec<(&crate::spec::Parameter, &Value)> = api.operations[order.create_op]
        .path_params()
        .filter_map(|param| {
            let resource = param.id_resource.as_deref()?;
            corpus
                .own_parent(resource, order.creator, creator.tenant.as_deref())
                .map(|o| (param, &o.id))
        })
        .collect();
    let request = crate::request::build_request_with(api, order.create_op, &parents, "")?;
    Some((request, super::parents_of(&parents)))
}

/// Sets the objects a create's body names (`"patient": 12`, `"tag_ids": [3]`) to the
/// creator's own, as its parents are: a made-up reference is refused, not stored.
pub fn use_own_references(
    api: &Api,
    order: &CanaryOrder,
    body: &mut Value,
    corpus: &super::ObjectCorpus,
    creator: &Identity,
) {
    let Value::Object(map) = body else {
        return;
    };
    for reference in &api.operations[order.create_op].body_ids {
        let own = corpus.own_parent(
            &reference.resource,
            order.creator,
            creator.tenant.as_deref(),
        );
        if let (Some(own), Some(slot)) = (own, map.get_mut(&reference.name)) {
            *slot = if reference.array {
                Value::Array(vec![own.id.clone()])
            } else {
                own.id.clone()
            };
        }
    }
}

/// The create operation of `resource`: what the resource model found (a POST or PUT on
/// its collection path, or an operation whose body is its item schema), else a POST on
/// the path its listings use, or on the path in front of the ID segment of an operation
/// that names one of its objects.
pub fn create_operation(api: &Api, resource: &str) -> Option<usize> {
    if let Some(&op) = api.resources.get(resource).and_then(|r| r.creates.first()) {
        return Some(op);
    }
    let mut paths: BTreeSet<String> = api
        .collections
        .get(resource)
        .into_iter()
        .flatten()
        .map(|&op| api.operations[op].path.clone())
        .collect();
    for op in &api.operations {
        if let Some((param, r)) = op.id_param() {
            if r == resource {
                if let Some((front, _)) = op.path.split_once(&format!("/{{{}}}", param.name)) {
                    paths.insert(front.to_string());
                }
            }
        }
    }
    api.operations
        .iter()
        .position(|op| op.method == Method::Post && paths.contains(&op.path))
}

/// The delete operation that removes one `resource` object by its ID.
pub fn delete_operation(api: &Api, resource: &str) -> Option<usize> {
    api.operations.iter().position(|op| {
        op.method == Method::Delete && op.id_param().is_some_and(|(_, r)| r == resource)
    })
}

/// The canaries a scan with mutations needs: for each resource that a write or delete
/// names by ID, one canary per identity allowed to create it (the writes' victims and the
/// callers' own objects), plus, per delete operation and caller the matrix does not give
/// `allow`, one canary per victim it must not reach (one in all for a denied caller).
/// Capped at `max`, writes' canaries first.
pub fn plan(api: &Api, policy: &Policy, identities: &[Identity], max: usize) -> CanaryPlan {
    // resource → (has a non-delete write, delete ops)
    let mut targeted: BTreeMap<&str, (bool, Vec<usize>)> = BTreeMap::new();
    for (op, operation) in api.operations.iter().enumerate() {
        if operation.method.is_safe() || policy.untested.contains(&op) {
            continue;
        }
        let Some((_, resource)) = operation.id_param() else {
            continue;
        };
        let entry = targeted.entry(resource).or_default();
        if operation.method == Method::Delete {
            entry.1.push(op);
        } else {
            entry.0 = true;
        }
    }
    let access = |op: usize, who: usize| policy.access(op, &identities[who].role);
    let mut out = CanaryPlan::default();
    let mut deletes = Vec::new();
    for (resource, (writes, delete_ops)) in targeted {
        let Some(create_op) = create_operation(api, resource) else {
            out.gaps.insert(
                resource.to_string(),
                format!("no create operation for {resource}"),
            );
            continue;
        };
        let create_key = api.operations[create_op].key();
        if policy.untested.contains(&create_op) {
            let gap = format!("the create operation {create_key} is not in the role matrix");
            out.gaps.insert(resource.to_string(), gap);
            continue;
        }
        let creators: Vec<usize> = (0..identities.len())
            .filter(|&i| {
                !identities[i].is_anonymous()
                    && access(create_op, i).is_some_and(|a| a != Access::Deny)
            })
            .collect();
        let Some(&first_creator) = creators.first() else {
            let gap = format!("no identity may call the create operation {create_key}");
            out.gaps.insert(resource.to_string(), gap);
            continue;
        };
        let order = |creator: usize, reserved: Option<(usize, usize)>| CanaryOrder {
            resource: resource.to_string(),
            create_op,
            creator,
            tag: CanaryTag { reserved },
        };
        if writes {
            out.orders
                .extend(creators.iter().map(|&creator| order(creator, None)));
        }
        for &op in &delete_ops {
            for actor in 0..identities.len() {
                match access(op, actor) {
                    None | Some(Access::Allow) => {}
                    Some(Access::Deny) => {
                        let creator = if creators.contains(&actor) {
                            actor
                        } else {
                            first_creator
                        };
                        deletes.push(order(creator, Some((op, actor))));
                    }
                    Some(scope) => {
                        for &victim in creators.iter().filter(|&&v| v != actor) {
                            let same_tenant = identities[actor].tenant.is_some()
                                && identities[actor].tenant == identities[victim].tenant;
                            if scope == Access::Tenant && same_tenant {
                                continue;
                            }
                            deletes.push(order(victim, Some((op, actor))));
                        }
                    }
                }
            }
        }
    }
    out.orders.extend(deletes);
    if out.orders.len() > max {
        out.over_cap = out.orders.len() - max;
        let dropped = out.orders.split_off(max);
        for order in dropped {
            if !out.orders.iter().any(|o| o.resource == order.resource) {
                out.gaps.entry(order.resource.clone()).or_insert_with(|| {
                    format!(
                        "the canary cap ({max}) was reached before any {} canary was created",
                        order.resource
                    )
                });
            }
        }
    }
    out
}

/// Keys under which a create answer may wrap the new object.
const WRAPPERS: [&str; 4] = ["data", "item", "result", "object"];

/// The body of a create: for each property that is required or documents a value,
/// `label` for plain strings (so the canary is recognisable as rolegrid's and unique),
/// else its example, default, first enum member or a value of its type.
pub fn body(api: &Api, schema: &Value, label: &str) -> Value {
    nested_body(api, schema, label, crate::request::MAX_BODY_DEPTH)
}

/// [`body`] for an object `depth` levels from the deepest allowed. A nested object
/// (`{"data": {"attributes": {…}}}`) is filled the same way when it is required or has
/// required properties of its own.
fn nested_body(api: &Api, schema: &Value, label: &str, depth: usize) -> Value {
    let schema = api.resolve(schema);
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut body = serde_json::Map::new();
    let props = schema.get("properties").and_then(Value::as_object);
    for (name, prop) in props.into_iter().flatten() {
        let prop = api.resolve(prop);
        if prop.get("readOnly").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        let documented = ["example", "examples", "default", "enum"]
            .iter()
            .any(|k| prop.get(*k).is_some());
        let nested = depth > 0 && !documented && crate::request::has_properties(prop);
        let needs_filling = prop
            .get("required")
            .and_then(Value::as_array)
            .is_some_and(|r| !r.is_empty());
        let wanted = required.contains(&name.as_str()) || documented || (nested && needs_filling);
        if !wanted {
            continue;
        }
        if nested {
            body.insert(name.clone(), nested_body(api, prop, label, depth - 1));
            continue;
        }
        let value = if crate::request::is_plain_string(prop) {
            let max = prop
                .get("maxLength")
                .and_then(Value::as_u64)
                .map_or(usize::MAX, |m| m as usize);
            Value::String(label.chars().take(max.max(1)).collect())
        } else {
            let example = prop
                .get("examples")
                .and_then(Value::as_array)
                .and_then(|a| a.first());
            match example
                .cloned()
                .or_else(|| crate::request::sample_array(api, prop, label, depth))
                .or_else(|| crate::request::sample_value(api, prop))
            {
                Some(v) => v,
                None => continue,
            }
        };
        body.insert(name.clone(), value);
    }
    Value::Object(body)
}

/// The new object's ID and fields from a create answer: the resource's ID fields
/// (`title`, `job_id`, `id`…), at the top or under a wrapper; else the last segment of
/// `Location`.
pub fn created_object(
    answer: Option<&Value>,
    id_fields: &[String],
    location: Option<&str>,
) -> Option<(Value, serde_json::Map<String, Value>)> {
    let object = answer.and_then(|a| {
        let top = a.as_object()?;
        let nested = WRAPPERS
            .iter()
            .find_map(|k| top.get(*k).and_then(Value::as_object));
        Some(match nested {
            Some(n) if !has_id(top, id_fields) => n.clone(),
            _ => top.clone(),
        })
    });
    let fields = object.unwrap_or_default();
    let from_body = id_fields
        .iter()
        .map(String::as_str)
        .chain(["id", "uuid", "_id", "key", "slug"])
        .find_map(|k| fields.get(k))
        .filter(|v| v.is_string() || v.is_number())
        .cloned();
    let id = from_body.or_else(|| {
        let path = location?.split(['?', '#']).next()?;
        let last = path.trim_end_matches('/').rsplit('/').next()?;
        let decoded = url::form_urlencoded::parse(format!("x={last}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())?;
        (!decoded.is_empty()).then(|| match decoded.parse::<u64>() {
            Ok(n) => Value::from(n),
            Err(_) => Value::String(decoded),
        })
    })?;
    Some((id, fields))
}

fn has_id(map: &serde_json::Map<String, Value>, id_fields: &[String]) -> bool {
    id_fields
        .iter()
        .map(String::as_str)
        .chain(["id", "uuid", "_id"])
        .any(|k| map.get(k).is_some())
}

/// A canary's label: says who made it, and is unique within the run.
pub fn label(run_nonce: &str, n: usize) -> String {
    format!("rolegrid-canary-{run_nonce}-{n}")
}

/// The ID as text, for reports.
pub fn id_text(id: &Value) -> String {
    value_text(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_new_id_from_body_wrapper_or_location() {
        let body = json!({"id": 504, "subject": "x"});
        assert_eq!(
            created_object(Some(&body), &["ticketId".to_string()], None).map(|(id, _)| id),
            Some(json!(504))
        );
        let wrapped = json!({"data": {"ticketId": "t-9"}});
        assert_eq!(
            created_object(Some(&wrapped), &["ticketId".to_string()], None).map(|(id, _)| id),
            Some(json!("t-9"))
        );
        assert_eq!(
            created_object(None, &[], Some("/api/tickets/77?x=1")).map(|(id, _)| id),
            Some(json!(77))
        );
        assert_eq!(
            created_object(Some(&json!({})), &[], Some("/t/a%20b")).map(|(id, _)| id),
            Some(json!("a b"))
        );
        assert!(created_object(Some(&json!({"ok": true})), &[], None).is_none());
    }

    #[test]
    fn plans_write_and_reserved_delete_canaries_for_the_demo() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("specs");
        let api = crate::spec::load(&dir.join("demo-portal.yaml")).expect("demo spec");
        let roles: Vec<String> = ["anonymous", "client", "staff", "admin"]
            .map(String::from)
            .to_vec();
        let csv = std::fs::read_to_string(dir.join("demo-matrix.csv")).expect("matrix");
        let policy = Policy::parse(&csv, &dir.join("demo-matrix.csv"), &api, &roles, false)
            .expect("matrix parses");
        let who = |name: &str, role: &str, tenant: Option<&str>| Identity {
            name: name.into(),
            tenant: tenant.map(str::to_string),
            role: role.into(),
            auth: crate::engagement::Auth::Header {
                name: "Authorization".into(),
                value: crate::engagement::Secret::new("x"),
            },
            attributes: Default::default(),
        };
        let identities = vec![
            who("alice", "client", Some("acme")),
            who("bob", "client", Some("globex")),
            who("carol", "staff", Some("acme")),
            who("root", "admin", None),
            Identity::anonymous(),
        ];
        let plan = plan(&api, &policy, &identities, 1000);
        let tickets = plan.orders.iter().filter(|o| o.resource == "tickets");
        let (writes, deletes): (Vec<_>, Vec<_>) = tickets.partition(|o| o.tag.reserved.is_none());
        assert_eq!(writes.len(), 4, "one write canary per creator");
        // alice → bob, carol, root; bob → alice, carol, root; carol → bob, root; anonymous → 1
        assert_eq!(deletes.len(), 9);
        // Only the password route's accounts have nothing to create them with.
        let gaps: Vec<(&str, &str)> = plan
            .gaps
            .iter()
            .map(|(r, why)| (r.as_str(), why.as_str()))
            .collect();
        assert_eq!(gaps, [("accounts", "no create operation for accounts")]);
        let capped = super::plan(&api, &policy, &identities, 3);
        assert_eq!(capped.orders.len(), 3);
        assert_eq!(capped.over_cap, plan.orders.len() - 3);
    }

    #[test]
    fn body_takes_labels_examples_and_defaults() {
        let api = crate::spec::test_api("paths: {}\n");
        let schema = json!({
            "type": "object", "required": ["subject", "email"],
            "properties": {
                "subject": {"type": "string", "maxLength": 8},
                "email": {"type": "string", "format": "email", "example": "a@b.test"},
                "status": {"type": "string", "enum": ["open", "closed"], "default": "closed"},
                "note": {"type": "string"},
                "id": {"type": "integer", "readOnly": true}
            }
        });
        assert_eq!(
            body(&api, &schema, "rolegrid-canary-x-1"),
            json!({"subject": "rolegrid", "email": "a@b.test", "status": "closed"})
        );
    }
}
