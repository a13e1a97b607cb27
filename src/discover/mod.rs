//! Discovery: which collection requests each identity makes (under which parents: its own
//! context, then what its earlier listings returned), and the objects harvested from their
//! answers (ID, owner identity, tenant, parents, and the fields that fingerprint it); the
//! canary objects rolegrid creates itself join the same corpus, tagged (see `canary`).

pub mod canary;
pub mod facts;
mod paging;

pub use canary::{CanaryOrder, CanaryPlan, CanaryTag};
pub use paging::{next_page, MAX_PAGES};

use crate::engagement::Identity;
use crate::matrix::{Access, Policy};
use crate::request::{build_request_with, RequestSpec};
use crate::spec::squash;
use crate::spec::{Api, Parameter};
use serde_json::Value;
use std::collections::BTreeMap;

/// One collection read an identity is allowed to make.
#[derive(Debug, Clone)]
pub struct DiscoveryRequest {
    pub op: usize,
    pub identity: usize,
    pub resource: String,
    pub request: RequestSpec,
    /// Where the answer holds the items and which fields identify them.
    pub shape: ItemShape,
    /// The parents the read's path names (`/orgs/{org}/projects`): its items live there.
    pub parents: Parents,
}

/// Where a producer's answer holds its items, from the resource model.
#[derive(Debug, Clone, Default)]
pub struct ItemShape {
    /// JSON path of the items (`$.Articles[*]`) when the response schema says.
    pub items_path: Option<String>,
    /// The fields that may hold the identifier, most telling first.
    pub id_fields: Vec<String>,
}

impl ItemShape {
    pub fn of(api: &Api, resource: &str, op: usize) -> ItemShape {
        let producer = api.producer(resource, op);
        let mut id_fields = api.id_fields(resource);
        if let Some(field) = producer.and_then(|p| p.field.clone()) {
            id_fields.retain(|f| *f != field);
            id_fields.insert(0, field);
        }
        ItemShape {
            items_path: producer.and_then(|p| p.items_path.clone()),
            id_fields,
        }
    }
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
    /// The parents it lives under, `(resource, id)`: the org of `/orgs/{org}/projects`
    /// that listed it. Requests naming it put them in their other path parameters.
    #[serde(skip)]
    pub parents: Parents,
}

/// `(resource, id)` of the parents a path names before the object itself.
pub type Parents = Vec<(String, Value)>;

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
    /// Index → tag, for the objects rolegrid created itself (the only ones written to).
    canaries: BTreeMap<usize, CanaryTag>,
    /// Resource → why it has no canary (no create operation, creation refused, …).
    canary_gaps: BTreeMap<String, String>,
    /// The engagement's `write_discovered_objects`: writes to resources without any canary
    /// may aim at discovered objects.
    write_discovered: bool,
    /// Values seen per field name in discovery's answers that look like a closed set (a
    /// `role` that reads `"Member"`): bodies use them where the description gives no
    /// enum, since a made-up label for such a field is refused, not stored.
    pub field_values: BTreeMap<String, Vec<Value>>,
    /// Objects whose owner the answers could not tell (several identities listed them
    /// alike and nothing in them names an owner): left out of the plan, listed in the report.
    pub ambiguous: Vec<String>,
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
            canaries: BTreeMap::new(),
            canary_gaps: BTreeMap::new(),
            write_discovered: false,
            field_values: BTreeMap::new(),
            ambiguous: Vec::new(),
        }
    }

    /// Adds an object rolegrid created; returns its index.
    pub fn add_canary(&mut self, object: Object, tag: CanaryTag) -> usize {
        let index = self.objects.len();
        self.by_resource
            .entry(object.resource.clone())
            .or_default()
            .push(index);
        self.objects.push(object);
        self.canaries.insert(index, tag);
        index
    }

    /// The canary tag of object `index`; `None` for discovered and seed objects.
    pub fn canary(&self, index: usize) -> Option<&CanaryTag> {
        self.canaries.get(&index)
    }

    /// Every canary: (index, object, tag), in creation order.
    pub fn canaries(&self) -> impl Iterator<Item = (usize, &Object, &CanaryTag)> + '_ {
        self.canaries
            .iter()
            .map(move |(&i, tag)| (i, &self.objects[i], tag))
    }

    /// Records why `resource` has no canary (the first reason wins).
    pub fn set_canary_gap(&mut self, resource: &str, reason: String) {
        self.canary_gaps
            .entry(resource.to_string())
            .or_insert(reason);
    }

    /// Lets writes (not deletes) aim at discovered objects of resources that have no canary
    /// (the engagement's `write_discovered_objects`, for disposable targets).
    pub fn set_write_discovered(&mut self, allowed: bool) {
        self.write_discovered = allowed;
    }

    /// Whether a write may aim at the discovered object `index`: only with
    /// `write_discovered_objects`, and only when its resource has no canary at all.
    pub fn discovered_writable(&self, index: usize) -> bool {
        self.write_discovered
            && !self.canaries.contains_key(&index)
            && !self
                .of_resource(&self.objects[index].resource)
                .any(|(i, _)| self.canaries.contains_key(&i))
    }

    /// Why `resource` has no canary, when that is known.
    pub fn canary_gap(&self, resource: &str) -> Option<&str> {
        self.canary_gaps.get(resource).map(String::as_str)
    }

    /// The parent of `resource` that `identity` would name for itself: an object it owns,
    /// else one of its tenant's.
    pub fn own_parent(
        &self,
        resource: &str,
        identity: usize,
        tenant: Option<&str>,
    ) -> Option<&Object> {
        let objects = || self.of_resource(resource).map(|(_, o)| o);
        objects()
            .find(|o| o.owner == identity)
            .or_else(|| objects().find(|o| tenant.is_some() && o.tenant.as_deref() == tenant))
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

/// Most parent objects whose children one identity lists, per collection read.
pub const MAX_PARENTS: usize = 3;

/// How many times discovery goes one level deeper (`/orgs/{org}/projects`, then
/// `/projects/{project_id}/tasks`, …).
pub const MAX_DEPTH: usize = 3;

/// Per identity index: for each resource a path parameter names, the IDs that identity
/// may put there: objects its own listings returned, or its own context (the tenant or
/// organisation an attribute or its `tenant` names).
pub type ParentValues = Vec<BTreeMap<String, Vec<Value>>>;

/// Every collection read each identity is allowed to make. A read under a parent
/// (`/orgs/{org_slug}/projects`) is made once per parent the identity knows, up to
/// [`MAX_PARENTS`]; while a parent that something lists is not known yet, the read waits
/// for a later round; a parent nothing lists gets a sampled value, as other parameters do.
pub fn discovery_requests(
    api: &Api,
    policy: &Policy,
    identities: &[Identity],
    parents: &ParentValues,
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
                let Some(fillings) = parent_fillings(api, op, parents.get(i)) else {
                    continue;
                };
                for given in fillings {
                    if let Some(request) = build_request_with(api, op, &given, "") {
                        out.push(DiscoveryRequest {
                            op,
                            identity: i,
                            resource: resource.clone(),
                            request,
                            shape: ItemShape::of(api, resource, op),
                            parents: parents_of(&given),
                        });
                    }
                }
            }
        }
    }
    out
}

/// The ways to fill `op`'s parent parameters (path, and required query filters) with what
/// one identity knows: one list of (parameter, value) per request (a single empty one when
/// there are none); `None` while a parent that some listing produces is not known yet.
fn parent_fillings<'a>(
    api: &'a Api,
    op: usize,
    known: Option<&'a BTreeMap<String, Vec<Value>>>,
) -> Option<Vec<Vec<(&'a Parameter, &'a Value)>>> {
    let mut columns: Vec<(&Parameter, &[Value])> = Vec::new();
    // Path parents, and required query filters that name one (`?project_id=…`).
    let parents = api.operations[op].parameters.iter().filter(|p| {
        p.location == crate::spec::ParamLocation::Path
            || (p.location == crate::spec::ParamLocation::Query && p.required)
    });
    for param in parents {
        let Some(resource) = param.id_resource.as_deref() else {
            continue;
        };
        match known
            .and_then(|k| k.get(resource))
            .filter(|v| !v.is_empty())
        {
            Some(values) => columns.push((param, values)),
            None if api.collections.contains_key(resource) => return None,
            None => {}
        }
    }
    let rows = columns
        .iter()
        .map(|(_, values)| values.len())
        .max()
        .unwrap_or(1)
        .min(MAX_PARENTS);
    Some(
        (0..rows)
            .map(|row| {
                columns
                    .iter()
                    .map(|(param, values)| (*param, &values[row.min(values.len() - 1)]))
                    .collect()
            })
            .collect(),
    )
}

/// The `(resource, id)` of the ID parameters in `given`.
pub fn parents_of(given: &[(&Parameter, &Value)]) -> Parents {
    given
        .iter()
        .filter_map(|(param, value)| Some((param.id_resource.clone()?, (*value).clone())))
        .collect()
}

/// Each identity's own context for parents nothing lists: a path parameter naming an
/// organisation, tenant, account or workspace (`/orgs/{org_slug}/projects`) takes the
/// identity's attribute of that name (declared, or learned from its self-read: `org`,
/// `org_slug`, `org_id`), else its `tenant` when the resource is tenant-like.
pub fn context_values(api: &Api, identities: &[Identity]) -> ParentValues {
    let mut out: ParentValues = vec![BTreeMap::new(); identities.len()];
    let mut params: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for op in &api.operations {
        for param in op.path_params() {
            if let Some(resource) = param.id_resource.as_deref() {
                if !api.collections.contains_key(resource) {
                    params.entry(resource).or_default().push(&param.name);
                }
            }
        }
    }
    // The resource the API's self-read belongs to (`users` of `GET /api/users/me`): an
    // identity's own `id` is one of its objects. Elsewhere a bare `id` names nothing of it.
    let own_resources: Vec<String> = facts::self_read_operations(api)
        .into_iter()
        .filter_map(|op| {
            let segments: Vec<&str> = api.operations[op]
                .path
                .split('/')
                .filter(|s| !s.is_empty())
                .collect();
            segments.len().checked_sub(2).map(|i| squash(segments[i]))
        })
        .collect();
    for (resource, names) in params {
        let single = crate::spec::singular(resource);
        let bare = ["id", "uuid", "pk", "key", "slug"];
        let own = own_resources.contains(&squash(resource));
        let mut wanted: Vec<String> = names
            .iter()
            .map(|n| squash(n))
            .filter(|n| own || !bare.contains(&n.as_str()))
            .collect();
        for suffix in ["", "id", "slug", "key", "name", "uuid"] {
            wanted.push(squash(&format!("{single}{suffix}")));
        }
        let tenant_like = crate::spec::is_tenant_like(resource);
        for (i, identity) in identities.iter().enumerate() {
            if identity.is_anonymous() {
                continue;
            }
            let attribute = wanted.iter().find_map(|w| {
                identity
                    .attributes
                    .iter()
                    .find(|(k, v)| squash(k) == *w && (v.is_string() || v.is_number()))
                    .map(|(_, v)| v.clone())
            });
            let value = attribute.or_else(|| {
                tenant_like
                    .then(|| identity.tenant.clone().map(Value::String))
                    .flatten()
            });
            if let Some(value) = value {
                out[i].insert(resource.to_string(), vec![value]);
            }
        }
    }
    out
}

/// The context values as objects for the plan (an organisation a path names can be
/// swapped like any object): each distinct value once, owned by the first identity
/// whose context it is.
pub fn context_objects(context: &ParentValues) -> Vec<(String, Value, usize)> {
    let mut out: Vec<(String, Value, usize)> = Vec::new();
    for (i, resources) in context.iter().enumerate() {
        for (resource, values) in resources {
            for value in values {
                if !out.iter().any(|(r, v, _)| r == resource && v == value) {
                    out.push((resource.clone(), value.clone(), i));
                }
            }
        }
    }
    out
}

/// Adds the IDs each identity's listings returned to its parent values.
pub fn learn_parents(
    parents: &mut ParentValues,
    answers: &[(DiscoveryRequest, Option<Value>)],
    harvest_paths: &BTreeMap<String, String>,
) {
    for (request, body) in answers {
        let (Some(body), Some(known)) = (body, parents.get_mut(request.identity)) else {
            continue;
        };
        let path = harvest_paths.get(&request.resource).map(String::as_str);
        let values = known.entry(request.resource.clone()).or_default();
        for (id, _) in items_of(body, path, &request.shape) {
            if !values.contains(&id) {
                values.push(id);
            }
        }
    }
}

/// Keys under which APIs commonly wrap the array of a collection response.
const WRAPPER_KEYS: [&str; 8] = [
    "items", "data", "results", "records", "content", "entries", "list", "values",
];

/// The objects in a collection body: by the engagement's JSONPath when given (it must
/// yield the IDs); else at the items path the response schema gave; else the array at
/// the top, under a common wrapper key, or under any key (two levels deep at most) whose
/// items carry one of the ID fields. Each item's ID is its first ID field that holds a
/// string or number.
pub fn items_of(
    body: &Value,
    json_path: Option<&str>,
    shape: &ItemShape,
) -> Vec<(Value, serde_json::Map<String, Value>)> {
    use jsonpath_rust::JsonPath;
    if let Some(path) = json_path {
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
    let id_of = |obj: &serde_json::Map<String, Value>| -> Option<Value> {
        shape
            .id_fields
            .iter()
            .find_map(|k| obj.get(k.as_str()))
            .filter(|v| (v.is_string() && v.as_str() != Some("")) || v.is_number())
            .cloned()
    };
    let from_items = |items: Vec<&Value>| -> Vec<(Value, serde_json::Map<String, Value>)> {
        items
            .into_iter()
            .filter_map(|item| {
                let obj = item.as_object()?;
                Some((id_of(obj)?, with_attributes(obj)))
            })
            .collect()
    };
    if let Some(path) = &shape.items_path {
        if let Ok(found) = body.query(path) {
            let items = from_items(found);
            if !items.is_empty() {
                return items;
            }
        }
    }
    let carries_id = |a: &Vec<Value>| {
        a.iter()
            .any(|x| x.as_object().is_some_and(|o| id_of(o).is_some()))
    };
    let array = match body {
        Value::Array(a) => Some(a),
        Value::Object(o) => WRAPPER_KEYS
            .iter()
            .find_map(|k| {
                o.get(*k)
                    .and_then(|v| v.as_array())
                    .filter(|a| carries_id(a))
            })
            .or_else(|| {
                o.values()
                    .find_map(|v| v.as_array().filter(|a| carries_id(a)))
            })
            .or_else(|| {
                // `{"data": {"items": [...]}}`
                o.values().filter_map(Value::as_object).find_map(|inner| {
                    inner
                        .values()
                        .find_map(|v| v.as_array().filter(|a| carries_id(a)))
                })
            }),
        _ => None,
    };
    match array {
        Some(array) => from_items(array.iter().collect()),
        None => Vec::new(),
    }
}

/// An item's fields, with those of its JSON:API `attributes` member beside its own
/// (`{"id": …, "type": …, "attributes": {"created_by": …}}`): the owner and tenant
/// fields live there. Its own fields win.
fn with_attributes(item: &serde_json::Map<String, Value>) -> serde_json::Map<String, Value> {
    let mut fields = item.clone();
    if let Some(attributes) = item.get("attributes").and_then(Value::as_object) {
        for (k, v) in attributes {
            fields.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    fields
}

/// An object's tenant: its owner's, else what a tenant field of the object says.
pub fn tenant_of(owner: &Identity, fields: &serde_json::Map<String, Value>) -> Option<String> {
    owner.tenant.clone().or_else(|| {
        facts::TENANT_FIELDS
            .iter()
            .find_map(|k| fields.get(*k).and_then(|v| v.as_str()).map(str::to_string))
    })
}

/// How owners are told apart beyond who listed what.
#[derive(Debug, Clone, Default)]
pub struct Ownership {
    /// Field names that hold an object's owner in a listing.
    pub owner_fields: Vec<String>,
    /// Per identity index: the values of those fields that mean "this identity owns it".
    pub owner_values: Vec<Vec<String>>,
    /// Objects nothing lists: (resource, id, owner identity index).
    pub seeds: Vec<(String, Value, usize)>,
    /// Per identity index: the names it goes by (login name, username, email), matched in
    /// any string field of a listing (`seller: "alice"`), not only in owner fields.
    pub owner_names: Vec<Vec<String>>,
}

impl Ownership {
    /// The identity an owner field of `fields` names, when exactly one identity claims it.
    fn owner_from_fields(&self, fields: &serde_json::Map<String, Value>) -> Option<usize> {
        for name in &self.owner_fields {
            let Some(value) = fields.get(name).filter(|v| v.is_string() || v.is_number()) else {
                continue;
            };
            let text = crate::request::value_text(value);
            let mut claimants = self
                .owner_values
                .iter()
                .enumerate()
                .filter(|(_, values)| values.contains(&text));
            if let (Some((owner, _)), None) = (claimants.next(), claimants.next()) {
                return Some(owner);
            }
        }
        // A name (three characters or more) that exactly one identity goes by.
        for value in fields.values() {
            let Some(text) = value.as_str().filter(|t| t.chars().count() >= 3) else {
                continue;
            };
            let mut claimants = self
                .owner_names
                .iter()
                .enumerate()
                .filter(|(_, names)| names.iter().any(|n| n.eq_ignore_ascii_case(text)));
            if let (Some((owner, _)), None) = (claimants.next(), claimants.next()) {
                return Some(owner);
            }
        }
        None
    }
}

/// Turns the discovery answers into objects. An object's owner is, in order: the
/// identity an owner field names (`owner_id: 7` matched against the identities'
/// attributes, declared or learned from their self-reads); else the one listing identity
/// of the tenant a tenant field names (`team_id: 2`); else the identity with the narrowest
/// access (own < tenant < allow) whose listing returned it: an admin sees everything, but
/// owns only what nobody narrower sees. When several identities of that narrowest access
/// (and of different tenants) all list it, which is what a flawed listing does, the
/// object takes the owner of an object it references (a `<resource>_id`, or a distinctive
/// value shared with exactly one owned object); failing that its owner is ambiguous: it is
/// listed in [`ObjectCorpus::ambiguous`], never guessed. Seed objects are added as given.
pub fn harvest(
    policy: &Policy,
    identities: &[Identity],
    answers: &[(DiscoveryRequest, Option<Value>)],
    harvest_paths: &BTreeMap<String, String>,
    ownership: &Ownership,
) -> ObjectCorpus {
    struct Seen {
        access: Access,
        listers: Vec<usize>,
        id: Value,
        fields: serde_json::Map<String, Value>,
        parents: Parents,
    }
    let mut seen: BTreeMap<(String, String), Seen> = BTreeMap::new();
    for (request, body) in answers {
        let Some(body) = body else { continue };
        let identity = &identities[request.identity];
        let Some(access) = policy.access(request.op, &identity.role) else {
            continue;
        };
        let path = harvest_paths.get(&request.resource).map(String::as_str);
        for (id, fields) in items_of(body, path, &request.shape) {
            let key = (request.resource.clone(), crate::request::value_text(&id));
            match seen.get_mut(&key) {
                Some(s) if access == s.access => {
                    if !s.listers.contains(&request.identity) {
                        s.listers.push(request.identity);
                    }
                }
                Some(s) if access > s.access => {}
                _ => {
                    seen.insert(
                        key,
                        Seen {
                            access,
                            listers: vec![request.identity],
                            id,
                            fields,
                            parents: request.parents.clone(),
                        },
                    );
                }
            }
        }
    }
    for (resource, id, owner) in &ownership.seeds {
        let key = (resource.clone(), crate::request::value_text(id));
        // A seed is the engagement's word: it wins over what a listing suggested.
        seen.insert(
            key,
            Seen {
                access: Access::Deny,
                listers: vec![*owner],
                id: id.clone(),
                fields: serde_json::Map::new(),
                parents: Vec::new(),
            },
        );
    }
    let mut objects: Vec<Object> = Vec::new();
    let mut pending: Vec<(String, Seen)> = Vec::new();
    for ((resource, _), s) in seen {
        let owner = ownership.owner_from_fields(&s.fields).or_else(|| {
            let tenant = tenant_from_fields(identities, &s.fields)?;
            s.listers
                .iter()
                .copied()
                .find(|&i| identities[i].tenant.as_deref() == Some(tenant.as_str()))
                .or_else(|| {
                    identities
                        .iter()
                        .position(|i| i.tenant.as_deref() == Some(tenant.as_str()))
                })
        });
        let tenants: std::collections::BTreeSet<Option<&str>> = s
            .listers
            .iter()
            .map(|&i| identities[i].tenant.as_deref())
            .collect();
        let ambiguous = match s.access {
            Access::Own => s.listers.len() > 1,
            Access::Tenant => tenants.len() > 1,
            Access::Allow | Access::Deny => false,
        };
        let owner = match owner {
            Some(o) => o,
            None if !ambiguous => s.listers[0],
            None => {
                pending.push((resource, s));
                continue;
            }
        };
        objects.push(owned_object(
            identities, resource, owner, s.id, s.fields, s.parents,
        ));
    }
    let mut ambiguous = Vec::new();
    for (resource, s) in pending {
        match referenced_owner(&objects, &resource, &s.fields, &s.id) {
            Some(owner) => objects.push(owned_object(
                identities, resource, owner, s.id, s.fields, s.parents,
            )),
            None => {
                let names: Vec<&str> = s
                    .listers
                    .iter()
                    .map(|&i| identities[i].name.as_str())
                    .collect();
                ambiguous.push(format!(
                    "{resource} {}: listed by {} alike, and nothing in it names its owner",
                    crate::request::value_text(&s.id),
                    names.join(", ")
                ));
            }
        }
    }
    objects.sort_by(|a, b| {
        (&a.resource, crate::request::value_text(&a.id))
            .cmp(&(&b.resource, crate::request::value_text(&b.id)))
    });
    let field_values = closed_set_values(objects.iter().map(|o| &o.fields));
    let mut corpus = ObjectCorpus::new(objects);
    corpus.ambiguous = ambiguous;
    corpus.field_values = field_values;
    corpus
}

/// Warnings for engagement hints that matched nothing, each with `file:line`: a
/// `harvest:` entry whose resource the spec does not name or whose path found no object
/// in the answers, and an `objects:` entry whose resource no identifier of the spec names.
/// `source` is the engagement file; its text locates the entries.
pub fn unmatched_hints(
    api: &Api,
    source: &std::path::Path,
    harvest: &BTreeMap<String, String>,
    seeds: &[(String, Value)],
    corpus: &ObjectCorpus,
) -> Vec<String> {
    let text = std::fs::read_to_string(source).unwrap_or_default();
    let at = |needle: &str| {
        format!(
            "{}:{}",
            source.display(),
            crate::engagement::line_of(&text, needle)
        )
    };
    let known: Vec<&str> = api.resources.keys().map(String::as_str).collect();
    let mut out = Vec::new();
    for (resource, path) in harvest {
        if !api.resources.contains_key(resource) {
            out.push(format!(
                "{}: harvest entry `{resource}` names no resource of the spec; its identifiers name: {}",
                at(path),
                known.join(", ")
            ));
        } else if corpus.of_resource(resource).next().is_none() {
            out.push(format!(
                "{}: harvest entry `{resource}` ({path}) matched nothing in the answers; check the JSONPath against a real answer (`rolegrid ops` shows where the spec says the values are)",
                at(path)
            ));
        }
    }
    for (resource, id) in seeds {
        if !api.resources.contains_key(resource) {
            let id_text = crate::request::value_text(id);
            out.push(format!(
                "{}: objects entry `{resource}` {id_text} names no resource of the spec, so no probe uses it; its identifiers name: {}",
                at(resource),
                known.join(", ")
            ));
        }
    }
    out
}

/// Field names whose values name one of a few kinds, roles or states.
const CLOSED_SET_NAMES: [&str; 14] = [
    "role", "roles", "status", "state", "type", "kind", "plan", "tier", "level", "category",
    "currency", "country", "language", "locale",
];

/// Per field name, the short string values seen, when they look like a closed set: the
/// name says so, or some value repeats across objects. In order of first sight.
pub fn closed_set_values<'a>(
    items: impl Iterator<Item = &'a serde_json::Map<String, Value>>,
) -> BTreeMap<String, Vec<Value>> {
    let mut seen: BTreeMap<String, (usize, Vec<Value>)> = BTreeMap::new();
    for fields in items {
        for (k, v) in fields {
            let Some(text) = v
                .as_str()
                .filter(|t| !t.is_empty() && t.chars().count() <= 32)
            else {
                continue;
            };
            let entry = seen.entry(k.clone()).or_default();
            entry.0 += 1;
            if !entry.1.iter().any(|x| x.as_str() == Some(text)) {
                entry.1.push(Value::String(text.to_string()));
            }
        }
    }
    seen.into_iter()
        .filter(|(k, (count, values))| {
            let named = CLOSED_SET_NAMES.contains(&k.to_ascii_lowercase().as_str());
            named || (values.len() <= 5 && *count > values.len())
        })
        .map(|(k, (_, values))| (k, values))
        .collect()
}

/// Sets the top-level string fields of `body` that hold `placeholder` (a marker or a
/// canary label) and have closed-set values in `field_values` to a value seen (the
/// `pick`-th, wrapping): a server refuses a made-up role, it stores a real one. Canaries
/// take the first value and writes the second, so a write shows as a change.
pub fn use_seen_values(
    body: &mut Value,
    placeholder: &str,
    field_values: &BTreeMap<String, Vec<Value>>,
    pick: usize,
) {
    let Value::Object(map) = body else { return };
    for (k, v) in map.iter_mut() {
        let holds_placeholder = v.as_str().is_some_and(|s| s.contains(placeholder));
        if let (true, Some(first)) = (
            holds_placeholder,
            field_values
                .get(k)
                .and_then(|vals| vals.get(pick % vals.len().max(1))),
        ) {
            *v = first.clone();
        }
    }
}

/// Sets the body's top-level reference fields (`user_id`, `team_id`, `order_id`,
/// `username`, `email`…) to the value `known` gives for that name (an object's own
/// fields, an identity's attributes), when the types agree. One field carrying
/// `placeholder` always keeps it, so a read-back can still show the write.
pub fn use_own_values<'v>(
    body: &mut Value,
    placeholder: &str,
    known: impl Fn(&str) -> Option<&'v Value>,
) {
    let Value::Object(map) = body else { return };
    let holds_placeholder = |v: &Value| v.as_str().is_some_and(|s| s.contains(placeholder));
    let mut placeholders_left = map.values().filter(|v| holds_placeholder(v)).count();
    for (field, value) in map.iter_mut() {
        if !is_reference_field(field) {
            continue;
        }
        let Some(known) = known(field) else { continue };
        if known.is_string() != value.is_string() || known.is_number() != value.is_number() {
            continue;
        }
        if holds_placeholder(value) {
            if placeholders_left <= 1 {
                continue;
            }
            placeholders_left -= 1;
        }
        *value = known.clone();
    }
}

/// A field that names another thing (a user, a team, an order) rather than describing
/// the object it sits in.
fn is_reference_field(field: &str) -> bool {
    let lower = field.to_ascii_lowercase();
    lower != "id"
        && lower != "name"
        && (facts::is_identifying(field)
            || facts::TENANT_FIELDS.contains(&field)
            || lower.ends_with("_id")
            || (field.ends_with("Id") && field.len() > 2))
}

/// An object of `owner`, its tenant the owner's (else what its fields say).
fn owned_object(
    identities: &[Identity],
    resource: String,
    owner: usize,
    id: Value,
    fields: serde_json::Map<String, Value>,
    parents: Parents,
) -> Object {
    let tenant = tenant_of(&identities[owner], &fields);
    Object {
        resource,
        id,
        owner,
        tenant,
        fields,
        parents,
    }
}

/// The tenant a tenant field of `fields` names, when exactly one tenant's identities
/// carry that value (in a tenant attribute, or as the tenant's name).
fn tenant_from_fields(
    identities: &[Identity],
    fields: &serde_json::Map<String, Value>,
) -> Option<String> {
    for key in facts::TENANT_FIELDS {
        let Some(value) = fields.get(key).filter(|v| v.is_string() || v.is_number()) else {
            continue;
        };
        let text = crate::request::value_text(value);
        let tenants: std::collections::BTreeSet<&str> = identities
            .iter()
            .filter(|i| {
                i.tenant.as_deref() == Some(text.as_str())
                    || facts::TENANT_FIELDS.iter().any(|k| {
                        i.attributes
                            .get(*k)
                            .is_some_and(|v| crate::request::value_text(v) == text)
                    })
            })
            .filter_map(|i| i.tenant.as_deref())
            .collect();
        if tenants.len() == 1 {
            return tenants.into_iter().next().map(str::to_string);
        }
    }
    // Any string field that is exactly one tenant's name (`account: "north-trading"`).
    for value in fields.values() {
        let Some(text) = value.as_str().filter(|t| t.chars().count() >= 3) else {
            continue;
        };
        let tenants: std::collections::BTreeSet<&str> = identities
            .iter()
            .filter_map(|i| i.tenant.as_deref())
            .filter(|t| t.eq_ignore_ascii_case(text))
            .collect();
        if tenants.len() == 1 {
            return tenants.into_iter().next().map(str::to_string);
        }
    }
    None
}

/// The owner of the object that `fields` references: a `<resource>_id` (or `…Id`) whose
/// value is the ID of a known object of that resource, else a distinctive value (six
/// characters or more) that exactly one known object of another resource also holds.
fn referenced_owner(
    objects: &[Object],
    resource: &str,
    fields: &serde_json::Map<String, Value>,
    own_id: &Value,
) -> Option<usize> {
    let own = crate::request::value_text(own_id);
    for (key, value) in fields {
        let lower = key.to_ascii_lowercase();
        let Some(stem) = lower
            .strip_suffix("_id")
            .or_else(|| lower.strip_suffix("id"))
            .filter(|s| !s.is_empty())
        else {
            continue;
        };
        let text = crate::request::value_text(value);
        let stem = stem.trim_end_matches(['_', '-']);
        let owners: Vec<usize> = objects
            .iter()
            .filter(|o| o.resource != resource)
            .filter(|o| {
                crate::spec::singular(&o.resource).replace(['-', '_'], "")
                    == stem.replace(['-', '_'], "")
            })
            .filter(|o| o.id_text() == text)
            .map(|o| o.owner)
            .collect();
        if let [owner] = owners.as_slice() {
            return Some(*owner);
        }
    }
    for value in fields.values() {
        let Some(text) = value
            .as_str()
            .filter(|t| t.chars().count() >= 6 && *t != own)
        else {
            continue;
        };
        let holders: Vec<&Object> = objects
            .iter()
            .filter(|o| o.resource != resource)
            .filter(|o| o.fields.values().any(|v| v.as_str() == Some(text)))
            .collect();
        if let [holder] = holders.as_slice() {
            return Some(holder.owner);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A spec (its `paths` and after), the matrix `csv` over it and its roles, as a scan
    /// loads them.
    fn loaded(paths: &str, csv: &str) -> (Api, Policy) {
        let api = crate::spec::test_api(paths);
        let roles: Vec<String> = csv
            .lines()
            .next()
            .unwrap_or_default()
            .split(',')
            .skip(1)
            .map(str::to_string)
            .collect();
        let policy =
            Policy::parse(csv, std::path::Path::new("m.csv"), &api, &roles, false).expect("matrix");
        (api, policy)
    }

    fn who(name: &str, role: &str, tenant: Option<&str>) -> Identity {
        Identity {
            name: name.into(),
            tenant: tenant.map(str::to_string),
            role: role.into(),
            attributes: Default::default(),
            auth: crate::engagement::Auth::Header {
                name: "Authorization".into(),
                value: crate::engagement::Secret::new("x"),
            },
        }
    }

    #[test]
    fn reads_under_parents_start_from_each_identity_context_then_go_one_level_deeper() {
        let spec = "paths:\n  /orgs/{org_slug}/projects:\n    get:\n      parameters: [{name: org_slug, in: path, required: true, schema: {type: string}}]\n      responses: {'200': {description: ok, content: {application/json: {schema: {type: object, properties: {data: {type: array, items: {type: object, properties: {id: {type: string}}}}}}}}}}\n  /projects/{project_id}/tasks:\n    get:\n      parameters: [{name: project_id, in: path, required: true, schema: {type: string}}]\n      responses: {'200': {description: ok, content: {application/json: {schema: {type: object, properties: {data: {type: array, items: {type: object, properties: {id: {type: string}}}}}}}}}}\n  /tasks/{task_id}:\n    get:\n      parameters: [{name: task_id, in: path, required: true, schema: {type: string}}]\n      responses: {'200': {description: ok}}\n";
        let (api, policy) = loaded(
            spec,
            "operation,member\nGET /orgs/{org_slug}/projects,tenant\nGET /projects/{project_id}/tasks,tenant\nGET /tasks/{task_id},tenant\n",
        );
        let mut identities = vec![
            who("ann", "member", Some("acme")),
            who("zoe", "member", Some("zenith")),
        ];
        // A learned attribute named like the parameter wins over the tenant.
        identities[1]
            .attributes
            .insert("org".into(), json!("zenith-labs"));
        let mut parents = context_values(&api, &identities);
        assert_eq!(
            context_objects(&parents),
            vec![
                ("orgs".to_string(), json!("acme"), 0),
                ("orgs".to_string(), json!("zenith-labs"), 1)
            ]
        );
        // Round one: the org listings only; the task listings wait for a project.
        let first = discovery_requests(&api, &policy, &identities, &parents);
        let paths: Vec<&str> = first.iter().map(|d| d.request.path.as_str()).collect();
        assert_eq!(paths, ["/orgs/acme/projects", "/orgs/zenith-labs/projects"]);
        let answers = vec![(
            first[0].clone(),
            Some(json!({"data": [{"id": "p1"}, {"id": "p2"}]})),
        )];
        learn_parents(&mut parents, &answers, &BTreeMap::new());
        let second = discovery_requests(&api, &policy, &identities, &parents);
        let tasks: Vec<(&str, usize, &Parents)> = second
            .iter()
            .filter(|d| d.resource == "tasks")
            .map(|d| (d.request.path.as_str(), d.identity, &d.parents))
            .collect();
        assert_eq!(
            tasks,
            [
                (
                    "/projects/p1/tasks",
                    0,
                    &vec![("projects".to_string(), json!("p1"))]
                ),
                (
                    "/projects/p2/tasks",
                    0,
                    &vec![("projects".to_string(), json!("p2"))]
                )
            ]
        );
    }

    #[test]
    fn a_bare_id_is_the_identity_own_only_for_the_resource_its_self_read_belongs_to() {
        let api = crate::spec::test_api(
            "paths:\n  /api/users/me:\n    get:\n      responses: {'200': {description: ok}}\n  /api/users/{id}/profile:\n    get:\n      parameters: [{name: id, in: path, required: true, schema: {type: string}}]\n      responses: {'200': {description: ok}}\n  /api/reports/{id}/pdf:\n    get:\n      parameters: [{name: id, in: path, required: true, schema: {type: string}}]\n      responses: {'200': {description: ok}}\n",
        );
        let mut ann = who("ann", "user", None);
        ann.attributes.insert("_id".into(), json!("65a1"));
        let context = context_values(&api, &[ann]);
        assert_eq!(context[0].get("users"), Some(&vec![json!("65a1")]));
        assert_eq!(context[0].get("reports"), None);
    }

    #[test]
    fn json_api_items_carry_their_attributes() {
        let body = json!({"data": [{"type": "notes", "id": "n1", "attributes": {"author": "u7", "id": "shadowed"}}]});
        let shape = ItemShape {
            items_path: None,
            id_fields: vec!["id".into()],
        };
        let items = items_of(&body, None, &shape);
        assert_eq!(items[0].0, json!("n1"));
        assert_eq!(items[0].1.get("author"), Some(&json!("u7")));
        assert_eq!(items[0].1.get("id"), Some(&json!("n1")));
    }

    #[test]
    fn finds_items_at_top_level_or_under_a_wrapper() {
        let top = json!([{"id": 1, "a": "x"}, {"id": 2}]);
        let generic = ItemShape {
            items_path: None,
            id_fields: crate::spec::GENERIC_ID_FIELDS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        };
        assert_eq!(items_of(&top, None, &generic).len(), 2);
        let wrapped = json!({"total": 1, "items": [{"id": "u-1"}]});
        assert_eq!(items_of(&wrapped, None, &generic)[0].0, json!("u-1"));
        let odd = json!({"invoices": [{"uuid": "x"}]});
        assert_eq!(items_of(&odd, None, &generic)[0].0, json!("x"));
        assert!(items_of(&json!({"error": "no"}), None, &generic).is_empty());
    }

    #[test]
    fn hints_that_match_nothing_are_named_with_their_line() {
        let api = crate::spec::test_api(
            "paths:\n  /orders:\n    get:\n      responses: {'200': {description: ok}}\n  /orders/{orderId}:\n    get:\n      parameters: [{name: orderId, in: path, required: true, schema: {type: integer}}]\n      responses: {'200': {description: ok}}\n",
        );
        let dir = tempfile_dir();
        let source = dir.join("engagement.yaml");
        std::fs::write(
            &source,
            "target: x\nharvest:\n  orders: $.rows[*].ref\n  invoices: $.x[*]\nobjects:\n  - {resource: widgets, id: 3, owner: a}\n",
        )
        .expect("write");
        let harvest: BTreeMap<String, String> = [
            ("orders".to_string(), "$.rows[*].ref".to_string()),
            ("invoices".to_string(), "$.x[*]".to_string()),
        ]
        .into();
        let seeds = vec![("widgets".to_string(), json!(3))];
        let warnings = unmatched_hints(&api, &source, &harvest, &seeds, &ObjectCorpus::default());
        assert_eq!(warnings.len(), 3, "{warnings:#?}");
        assert!(warnings[0].contains("engagement.yaml:4") && warnings[0].contains("`invoices`"));
        assert!(
            warnings[1].contains("engagement.yaml:3") && warnings[1].contains("matched nothing")
        );
        assert!(warnings[2].contains("engagement.yaml:6") && warnings[2].contains("`widgets`"));
        let _ = std::fs::remove_dir_all(dir);
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("rolegrid-hints-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        dir
    }

    #[test]
    fn seen_roles_replace_made_up_labels() {
        let users = [
            json!({"username": "a", "role": "Seller", "bio": "one"}),
            json!({"username": "b", "role": "Seller", "bio": "two"}),
            json!({"username": "c", "role": "Manager", "bio": "three"}),
        ];
        let maps: Vec<serde_json::Map<String, Value>> = users
            .iter()
            .filter_map(|u| u.as_object().cloned())
            .collect();
        let values = closed_set_values(maps.iter());
        assert_eq!(
            values.get("role"),
            Some(&vec![json!("Seller"), json!("Manager")])
        );
        assert!(!values.contains_key("bio"), "{values:?}");
        assert!(!values.contains_key("username"));
        let mut body = json!({"username": "rg-1", "role": "rg-1", "bio": "rg-1"});
        use_seen_values(&mut body, "rg-1", &values, 0);
        assert_eq!(
            body,
            json!({"username": "rg-1", "role": "Seller", "bio": "rg-1"})
        );
    }

    #[test]
    fn natural_keys_and_resource_id_fields_under_any_wrapper() {
        let shape = ItemShape {
            items_path: None,
            id_fields: vec!["title".into(), "id".into()],
        };
        let body = json!({"Articles": [{"title": "Q3 plan", "body": "x"}], "count": 1});
        assert_eq!(items_of(&body, None, &shape)[0].0, json!("Q3 plan"));
        let jobs = ItemShape {
            items_path: Some("$.jobs[*]".into()),
            id_fields: vec!["job_id".into(), "id".into()],
        };
        let body = json!({"jobs": [{"job_id": 7, "team_id": 2}], "total_entries": 1});
        assert_eq!(items_of(&body, None, &jobs)[0].0, json!(7));
        let nested = json!({"data": {"rows": [{"job_id": 9}]}});
        assert_eq!(items_of(&nested, None, &shape).len(), 0);
        assert_eq!(items_of(&nested, None, &jobs)[0].0, json!(9));
    }

    #[test]
    fn owner_fields_name_the_owner_even_in_an_admin_only_listing() {
        let spec = "paths:\n  /orders:\n    get:\n      responses: {'200': {description: ok}}\n";
        let (api, policy) = loaded(spec, "operation,user,admin\nGET /orders,own,allow\n");
        let identities = vec![
            who("ann", "user", Some("t1")),
            who("ben", "user", Some("t2")),
            who("root", "admin", None),
        ];
        let request = DiscoveryRequest {
            op: 0,
            identity: 2,
            resource: "orders".into(),
            request: crate::request::build_request(&api, 0, None, "").expect("request"),
            shape: ItemShape::of(&api, "orders", 0),
            parents: Vec::new(),
        };
        let body = json!({"items": [{"id": 10, "owner_id": 1}, {"id": 20, "owner_id": "b@x"}, {"id": 30, "owner_id": 99}]});
        let ownership = Ownership {
            owner_fields: vec!["owner_id".into()],
            owner_values: vec![vec!["1".into()], vec!["b@x".into()], vec![]],
            seeds: vec![("orders".into(), json!(40), 1)],
            owner_names: Vec::new(),
        };
        let corpus = harvest(
            &policy,
            &identities,
            &[(request, Some(body))],
            &BTreeMap::new(),
            &ownership,
        );
        let owner_of = |id: i64| {
            corpus
                .objects
                .iter()
                .find(|o| o.id == json!(id))
                .map(|o| o.owner)
        };
        assert_eq!(owner_of(10), Some(0));
        assert_eq!(owner_of(20), Some(1));
        assert_eq!(
            owner_of(30),
            Some(2),
            "nobody claims 99: the narrowest lister owns it"
        );
        assert_eq!(owner_of(40), Some(1), "seed object");
        assert_eq!(
            corpus
                .objects
                .iter()
                .find(|o| o.id == json!(10))
                .and_then(|o| o.tenant.clone()),
            Some("t1".into())
        );
    }

    #[test]
    fn engagement_json_path_wins() {
        let body = json!({"page": {"rows": [{"ref": "A1"}, {"ref": "B2"}]}});
        let ids: Vec<Value> = items_of(&body, Some("$.page.rows[*].ref"), &ItemShape::default())
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(ids, vec![json!("A1"), json!("B2")]);
    }
}
