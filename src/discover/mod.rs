//! Discovery: which collection requests each identity makes, and the objects harvested
//! from their answers (ID, owner identity, tenant, and the fields that fingerprint it).

mod paging;

pub use paging::{next_page, MAX_PAGES};

use crate::engagement::Identity;
use crate::matrix::{Access, Policy};
use crate::request::{build_request, RequestSpec};
use crate::spec::Api;
use serde_json::Value;
use std::collections::BTreeMap;

/// One collection read an identity is allowed to make.
#[derive(Debug, Clone)]
pub struct DiscoveryRequest {
    pub op: usize,
    pub identity: usize,
    pub resource: String,
    pub request: RequestSpec,
}

/// A concrete resource instance.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Object {
    pub resource: String,
    pub id: Value,
    /// Index of the identity that owns it.
    pub owner: usize,
    pub tenant: Option<String>,
    /// The object as its owner's listing showed it: used to recognise it in other bodies.
    #[serde(skip)]
    pub fields: serde_json::Map<String, Value>,
}

impl Object {
    pub fn id_text(&self) -> String {
        crate::request::value_text(&self.id)
    }
}

#[derive(Debug, Clone, Default)]
pub struct ObjectCorpus {
    pub objects: Vec<Object>,
    /// resource → indexes into `objects`, so planning does not scan every object per probe.
    by_resource: BTreeMap<String, Vec<usize>>,
}

impl ObjectCorpus {
    pub fn new(objects: Vec<Object>) -> Self {
        let mut by_resource: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, o) in objects.iter().enumerate() {
            by_resource.entry(o.resource.clone()).or_default().push(i);
        }
        ObjectCorpus {
            objects,
            by_resource,
        }
    }

    pub fn of_resource<'a>(
        &'a self,
        resource: &str,
    ) -> impl Iterator<Item = (usize, &'a Object)> + 'a {
        self.by_resource
            .get(resource)
            .into_iter()
            .flatten()
            .map(move |&i| (i, &self.objects[i]))
    }
}

/// Every collection operation, for every identity whose role may call it.
pub fn discovery_requests(
    api: &Api,
    policy: &Policy,
    identities: &[Identity],
) -> Vec<DiscoveryRequest> {
    let mut out = Vec::new();
    for (resource, ops) in &api.collections {
        for &op in ops {
            if !api.operations[op].method.is_safe() {
                continue;
            }
            for (i, identity) in identities.iter().enumerate() {
                if identity.is_anonymous() {
                    continue;
                }
                let allowed = policy
                    .access(op, &identity.role)
                    .is_some_and(|a| a != Access::Deny);
                if !allowed {
                    continue;
                }
                if let Some(request) = build_request(api, op, None, "") {
                    out.push(DiscoveryRequest {
                        op,
                        identity: i,
                        resource: resource.clone(),
                        request,
                    });
                }
            }
        }
    }
    out
}

/// Keys under which APIs commonly wrap the array of a collection response.
const WRAPPER_KEYS: [&str; 8] = [
    "items", "data", "results", "records", "content", "entries", "list", "values",
];

/// The objects in a collection body: by the engagement's JSONPath when given (it must
/// yield the IDs), else the array at the top or under a common wrapper key.
pub fn items_of(
    body: &Value,
    json_path: Option<&str>,
) -> Vec<(Value, serde_json::Map<String, Value>)> {
    if let Some(path) = json_path {
        use jsonpath_rust::JsonPath;
        return body
            .query(path)
            .map(|ids| {
                ids.into_iter()
                    .filter(|v| v.is_string() || v.is_number())
                    .map(|v| (v.clone(), serde_json::Map::new()))
                    .collect()
            })
            .unwrap_or_default();
    }
    let array = match body {
        Value::Array(a) => Some(a),
        Value::Object(o) => WRAPPER_KEYS
            .iter()
            .find_map(|k| o.get(*k).and_then(|v| v.as_array()))
            .or_else(|| {
                o.values()
                    .find_map(|v| v.as_array().filter(|a| a.iter().any(|x| x.is_object())))
            }),
        _ => None,
    };
    let Some(array) = array else {
        return Vec::new();
    };
    array
        .iter()
        .filter_map(|item| {
            let obj = item.as_object()?;
            let id = ["id", "uuid", "_id", "key", "slug"]
                .iter()
                .find_map(|k| obj.get(*k))
                .filter(|v| v.is_string() || v.is_number())?;
            Some((id.clone(), obj.clone()))
        })
        .collect()
}

const TENANT_KEYS: [&str; 6] = [
    "tenant_id",
    "tenantId",
    "tenant",
    "org_id",
    "organization_id",
    "orgId",
];

/// Turns the discovery answers into objects. The owner of an object is the identity
/// with the narrowest access (own < tenant < allow) whose listing returned it: an admin
/// sees everything, but owns only what nobody narrower sees.
pub fn harvest(
    policy: &Policy,
    identities: &[Identity],
    answers: &[(DiscoveryRequest, Option<Value>)],
    harvest_paths: &BTreeMap<String, String>,
) -> ObjectCorpus {
    // (resource, id text) → (best access, identity, id, fields)
    type Seen = (Access, usize, Value, serde_json::Map<String, Value>);
    let mut seen: BTreeMap<(String, String), Seen> = BTreeMap::new();
    for (request, body) in answers {
        let Some(body) = body else { continue };
        let identity = &identities[request.identity];
        let Some(access) = policy.access(request.op, &identity.role) else {
            continue;
        };
        let path = harvest_paths.get(&request.resource).map(String::as_str);
        for (id, fields) in items_of(body, path) {
            let key = (request.resource.clone(), crate::request::value_text(&id));
            let replace = match seen.get(&key) {
                None => true,
                Some((best, _, _, _)) => access < *best,
            };
            if replace {
                seen.insert(key, (access, request.identity, id, fields));
            }
        }
    }
    let objects: Vec<Object> = seen
        .into_iter()
        .map(|((resource, _), (_, owner, id, fields))| {
            let tenant = identities[owner].tenant.clone().or_else(|| {
                TENANT_KEYS
                    .iter()
                    .find_map(|k| fields.get(*k).and_then(|v| v.as_str()).map(str::to_string))
            });
            Object {
                resource,
                id,
                owner,
                tenant,
                fields,
            }
        })
        .collect();
    ObjectCorpus::new(objects)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_items_at_top_level_or_under_a_wrapper() {
        let top = json!([{"id": 1, "a": "x"}, {"id": 2}]);
        assert_eq!(items_of(&top, None).len(), 2);
        let wrapped = json!({"total": 1, "items": [{"id": "u-1"}]});
        assert_eq!(items_of(&wrapped, None)[0].0, json!("u-1"));
        let odd = json!({"invoices": [{"uuid": "x"}]});
        assert_eq!(items_of(&odd, None)[0].0, json!("x"));
        assert!(items_of(&json!({"error": "no"}), None).is_empty());
    }

    #[test]
    fn engagement_json_path_wins() {
        let body = json!({"page": {"rows": [{"ref": "A1"}, {"ref": "B2"}]}});
        let ids: Vec<Value> = items_of(&body, Some("$.page.rows[*].ref"))
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(ids, vec![json!("A1"), json!("B2")]);
    }
}
