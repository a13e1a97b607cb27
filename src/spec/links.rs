//! The resource model: for every resource that an identifier names (path, query, header or
//! body), the field its objects are identified by and the operations whose answers yield
//! those values (producer → consumer links, as RESTler infers dependencies, per resource).
//!
//! Real descriptions name objects in many ways: `/articles/v1/{article_title}` (a natural
//! key behind a version segment), `/jobs/{job_id}` whose listing items carry `job_id`,
//! lists wrapped as `{"Articles": [...]}`. Producers are found from the response schemas
//! (an array of objects, at the top or under any property, whose items carry the field),
//! and, where schemas are silent, from the path structure (`GET /accounts/v2` for
//! `/accounts/v2/{account_name}`). Discovery reads the producers; ownership, leak
//! recognition and read-backs use the ID field.

use super::build::deref;
use super::ids::{is_version, naive_plural, squash, words};
use super::model::{Method, Operation, ParamLocation};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// What the description tells about one resource.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Resource {
    /// Field names that hold the identifier in answers, the most telling first (`title`
    /// for `{article_title}`, `job_id` then `id` for `{job_id}`); generic names last.
    pub id_fields: Vec<String>,
    /// The operations whose answers list or show objects of this resource.
    pub producers: Vec<Producer>,
    /// Some producer can be called with what discovery knows: it takes no path parameter,
    /// or each of its path parameters names a linked resource (a chain of listings).
    pub linked: bool,
    /// Operations that create such objects: a POST or PUT on the collection path, or an
    /// operation without an ID whose 2xx answer is the resource's item.
    pub creates: Vec<usize>,
}

/// An operation whose answer yields identifiers of a resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Producer {
    pub op: usize,
    /// Where the items sit in the answer (`$.Articles[*]`, `$[*]`), when the response
    /// schema says; discovery otherwise looks for the array itself.
    pub items_path: Option<String>,
    /// The item field the identifier comes from, when the schema names it.
    pub field: Option<String>,
    /// How the link was found, for `rolegrid ops`.
    pub how: &'static str,
}

impl Producer {
    /// `GET /accounts/v2 $.accounts[*].name (response schema)`, for people.
    pub fn describe(&self, operations: &[Operation]) -> String {
        let op = &operations[self.op];
        let mut text = format!("{} {}", op.method, op.path);
        match (&self.items_path, &self.field) {
            (Some(items), Some(field)) => text.push_str(&format!(" {items}.{field}")),
            (Some(items), None) => text.push_str(&format!(" {items}")),
            (None, Some(field)) => text.push_str(&format!(" ..{field}")),
            (None, None) => {}
        }
        text.push_str(&format!(" ({})", self.how));
        text
    }
}

/// Generic identifier field names, tried after the ones an identifier's name suggests.
pub const GENERIC_ID_FIELDS: [&str; 5] = ["id", "uuid", "_id", "key", "slug"];

/// The fields that may hold the values of an identifier named `name` that names
/// `resource`, most telling first: the name itself, what it says after the resource's
/// own words (`article_title` → `title`), `id` for `*_id`, then the generic names.
pub fn id_field_candidates(name: &str, resource: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |field: String| {
        if !field.is_empty() && !out.contains(&field) {
            out.push(field);
        }
    };
    let lower = name.to_ascii_lowercase();
    let is_generic = GENERIC_ID_FIELDS.contains(&lower.as_str());
    if !is_generic {
        push(name.to_string());
    }
    let name_words = words(name);
    let singular = singular_words(resource);
    if name_words.len() > singular.len() && name_words.starts_with(&singular) {
        let rest = &name_words[singular.len()..];
        push(rest.join("_"));
        push(camel(rest));
    }
    let last = name_words.last().map(String::as_str).unwrap_or_default();
    if matches!(last, "uuid" | "guid") {
        push("uuid".into());
    }
    if matches!(lower.as_str(), "username" | "user_name" | "login") {
        push("username".into());
        push("login".into());
        push("name".into());
    }
    for generic in GENERIC_ID_FIELDS {
        push(generic.to_string());
    }
    out
}

fn camel(parts: &[String]) -> String {
    let mut out = String::new();
    for (i, p) in parts.iter().enumerate() {
        if i == 0 {
            out.push_str(p);
        } else {
            let mut chars = p.chars();
            if let Some(first) = chars.next() {
                out.push(first.to_ascii_uppercase());
                out.extend(chars);
            }
        }
    }
    out
}

/// The words of a resource's singular (`build_errors` → `["build", "error"]`).
fn singular_words(resource: &str) -> Vec<String> {
    let mut w = words(resource);
    if let Some(last) = w.last_mut() {
        *last = singular(last);
    }
    w
}

pub fn singular(word: &str) -> String {
    if word == "people" {
        return "person".into();
    }
    if let Some(stem) = word.strip_suffix("ies") {
        return format!("{stem}y");
    }
    for suffix in ["sses", "xes", "ches", "shes", "zes"] {
        if let Some(stem) = word.strip_suffix(suffix) {
            return format!("{stem}{}", &suffix[..suffix.len() - 2]);
        }
    }
    if word.ends_with('s') && !word.ends_with("ss") && !word.ends_with("us") {
        return word[..word.len() - 1].to_string();
    }
    word.to_string()
}

/// One identifier of one operation and the resource it names.
struct Identifier<'a> {
    name: &'a str,
    location: ParamLocation,
    resource: &'a str,
}

fn identifiers(op: &Operation) -> Vec<Identifier<'_>> {
    let mut out: Vec<Identifier<'_>> = op
        .parameters
        .iter()
        .filter_map(|p| {
            Some(Identifier {
                name: &p.name,
                location: p.location,
                resource: p.id_resource.as_deref()?,
            })
        })
        .collect();
    out.extend(op.body_ids.iter().map(|b| Identifier {
        name: &b.name,
        // Body identifiers rank with query ones: a path parameter says more.
        location: ParamLocation::Query,
        resource: &b.resource,
    }));
    out
}

/// Builds the resource model for every resource an identifier names.
pub fn resources(operations: &[Operation], doc: &Value) -> BTreeMap<String, Resource> {
    // ID fields: path parameters first (they name the object itself), then the rest.
    let mut fields: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
    for op in operations {
        for ident in identifiers(op) {
            let entry = fields.entry(ident.resource.to_string()).or_default();
            let list = if ident.location == ParamLocation::Path {
                &mut entry.0
            } else {
                &mut entry.1
            };
            for f in id_field_candidates(ident.name, ident.resource) {
                if !GENERIC_ID_FIELDS.contains(&f.as_str()) && !list.contains(&f) {
                    list.push(f);
                }
            }
        }
    }
    let item_schemas: Vec<Vec<ItemSchema<'_>>> = operations
        .iter()
        .map(|op| {
            if op.method == Method::Get {
                response_items(op, doc)
            } else {
                Vec::new()
            }
        })
        .collect();

    let mut out = BTreeMap::new();
    for (name, (path_fields, other_fields)) in fields {
        let mut id_fields = path_fields;
        for f in other_fields {
            if !id_fields.contains(&f) {
                id_fields.push(f);
            }
        }
        id_fields.extend(GENERIC_ID_FIELDS.iter().map(|s| s.to_string()));
        let mut producers = producers_of(&name, &id_fields, operations, &item_schemas);
        let creates = creates_of(&name, operations, doc);
        // A create answers with the new object's identifier (RESTler's producer): the
        // canaries rolegrid creates are found this way.
        for &op in &creates {
            {
                producers.push(Producer {
                    op,
                    items_path: None,
                    field: None,
                    how: "create answer",
                });
            }
        }
        out.insert(
            name,
            Resource {
                id_fields,
                producers,
                linked: false,
                creates,
            },
        );
    }
    mark_linked(&mut out, operations);
    out
}

/// Singular resource words that name a tenant-like container an identity belongs to:
/// a path parameter of one (`/orgs/{org_slug}/projects`) that nothing lists takes each
/// identity's own (see `discover::context_values`).
const TENANT_WORDS: [&str; 11] = [
    "tenant",
    "org",
    "organization",
    "organisation",
    "account",
    "workspace",
    "team",
    "company",
    "realm",
    "subscription",
    "customer",
];

/// Whether `resource` names a tenant-like container (organisations, accounts, teams).
pub fn is_tenant_like(resource: &str) -> bool {
    TENANT_WORDS.contains(&squash(&singular(resource)).as_str())
}

/// Whether a path's parent `resource` is filled from each identity's own context: a
/// tenant-like resource nothing produces.
pub fn from_context(resources: &BTreeMap<String, Resource>, resource: &str) -> bool {
    is_tenant_like(resource)
        && resources
            .get(resource)
            .is_none_or(|r| r.producers.is_empty())
}

/// Sets [`Resource::linked`]: a fixed point over the producers' path parameters. A
/// parent filled from the identity's own context ([`from_context`]) counts as linked.
fn mark_linked(resources: &mut BTreeMap<String, Resource>, operations: &[Operation]) {
    loop {
        let newly: Vec<String> = resources
            .iter()
            .filter(|(_, r)| !r.linked)
            .filter(|(name, r)| {
                r.producers.iter().any(|p| {
                    operations[p.op]
                        .path_params()
                        .all(|param| match param.id_resource.as_deref() {
                            None => true,
                            Some(parent) => {
                                parent != name.as_str()
                                    && (resources.get(parent).is_some_and(|pr| pr.linked)
                                        || from_context(resources, parent))
                            }
                        })
                })
            })
            .map(|(name, _)| name.clone())
            .collect();
        if newly.is_empty() {
            return;
        }
        for name in newly {
            if let Some(r) = resources.get_mut(&name) {
                r.linked = true;
            }
        }
    }
}

/// An object schema found in a GET's success answer, and where.
struct ItemSchema<'a> {
    /// `$[*]`, `$.Articles[*]`, `$.data.items[*]`, or `$` for a single object.
    path: String,
    /// Lower-cased, squashed names that say what the items are: the wrapper key and the
    /// `$ref` name of the item schema.
    names: Vec<String>,
    properties: Vec<&'a str>,
    list: bool,
}

fn response_items<'a>(op: &'a Operation, doc: &'a Value) -> Vec<ItemSchema<'a>> {
    let mut out = Vec::new();
    let schemas = op
        .responses
        .iter()
        .filter(|r| r.status.starts_with('2'))
        .flat_map(|r| r.content.iter())
        .filter(|m| m.content_type.contains("json"))
        .filter_map(|m| m.schema.as_ref());
    for schema in schemas {
        collect_items(doc, schema, "$".to_string(), Vec::new(), 0, false, &mut out);
    }
    out
}

fn ref_name(schema: &Value) -> Option<String> {
    let r = schema.get("$ref")?.as_str()?;
    Some(squash(r.rsplit('/').next()?))
}

/// The object schemas of `schema` (bounded depth): arrays of objects anywhere up to two
/// wrapper levels deep, and the top-level object itself.
fn collect_items<'a>(
    doc: &'a Value,
    schema: &'a Value,
    path: String,
    mut names: Vec<String>,
    depth: usize,
    list: bool,
    out: &mut Vec<ItemSchema<'a>>,
) {
    if depth > 3 {
        return;
    }
    if let Some(name) = ref_name(schema) {
        names.push(name);
    }
    let schema = deref(doc, schema);
    if let Some(items) = schema.get("items") {
        collect_items(
            doc,
            items,
            format!("{path}[*]"),
            names,
            depth + 1,
            true,
            out,
        );
        return;
    }
    let mut properties: Vec<(&'a str, &'a Value)> = Vec::new();
    let mut parts = vec![schema];
    for _ in 0..8 {
        let Some(part) = parts.pop() else { break };
        for key in ["allOf", "oneOf", "anyOf"] {
            if let Some(list) = part.get(key).and_then(Value::as_array) {
                parts.extend(list.iter().map(|p| deref(doc, p)));
            }
        }
        if let Some(props) = part.get("properties").and_then(Value::as_object) {
            properties.extend(props.iter().map(|(k, v)| (k.as_str(), v)));
        }
    }
    if properties.is_empty() {
        return;
    }
    out.push(ItemSchema {
        path: path.clone(),
        names: names.clone(),
        properties: properties.iter().map(|(k, _)| *k).collect(),
        list,
    });
    if depth >= 2 {
        return;
    }
    for (key, prop) in properties {
        let resolved = deref(doc, prop);
        let is_array = resolved.get("type").and_then(Value::as_str) == Some("array")
            || resolved.get("items").is_some();
        let is_object = resolved.get("properties").is_some() || resolved.get("allOf").is_some();
        if is_array || is_object {
            let mut inner = names.clone();
            inner.push(squash(key));
            let child = if key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                format!("{path}.{key}")
            } else {
                format!("{path}['{key}']")
            };
            collect_items(doc, prop, child, inner, depth + 1, list, out);
        }
    }
}

/// Whether `text` (squashed) names `resource` (plural or singular).
fn names_resource(text: &str, resource: &str) -> bool {
    let plural = squash(resource);
    let single = squash(&singular_words(resource).join(""));
    !text.is_empty() && (text == plural || text == single)
}

/// The literal, non-version segments of a path.
fn literal_segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter(|s| !s.is_empty() && !s.contains('{') && !is_version(s))
}

fn producers_of(
    resource: &str,
    id_fields: &[String],
    operations: &[Operation],
    item_schemas: &[Vec<ItemSchema<'_>>],
) -> Vec<Producer> {
    let mut out: Vec<(u8, Producer)> = Vec::new();
    for (index, op) in operations.iter().enumerate() {
        // A nested listing (`/teams/{team_id}/jobs`) produces too, once its parents are
        // known; a path parameter that names no object (`{project}`, `{region}` picked by
        // the caller) is filled from the identity's attributes or the description.
        // An item read (`/invoices/{invoiceId}`) needs the identifier it would produce.
        if op.method != Method::Get
            || op
                .path_params()
                .any(|p| p.id_resource.as_deref() == Some(resource))
        {
            continue;
        }
        let nested = op.path_params().next().is_some();
        let path_names = literal_segments(&op.path).any(|s| names_resource(&squash(s), resource));
        let last_names = literal_segments(&op.path)
            .last()
            .is_some_and(|s| naive_plural(&s.to_ascii_lowercase()) == resource);
        // From the response schema: items that carry one of the ID fields.
        let mut best: Option<(u8, Producer)> = None;
        for item in &item_schemas[index] {
            let item_names = item.names.iter().any(|n| names_resource(n, resource));
            for (rank, field) in id_fields.iter().enumerate() {
                if !item.properties.contains(&field.as_str()) {
                    continue;
                }
                // A field named after the resource (`job_id`) says enough by itself; a
                // generic one (`id`, `name`, `title`) needs the path or the schema to say
                // what the items are.
                let specific =
                    words(field).len() > 1 && words(field).starts_with(&singular_words(resource));
                if !(specific || item_names || path_names) {
                    continue;
                }
                // Lists first, then fields in order of preference.
                let score = (u8::from(!item.list) * 64)
                    .saturating_add(u8::from(nested) * 32)
                    .saturating_add(u8::try_from(rank).unwrap_or(30).min(30));
                if best.as_ref().is_none_or(|(s, _)| score < *s) {
                    best = Some((
                        score,
                        Producer {
                            op: index,
                            items_path: Some(item.path.clone()),
                            field: Some(field.clone()),
                            how: "response schema",
                        },
                    ));
                }
                break;
            }
        }
        if let Some(found) = best {
            out.push(found);
            continue;
        }
        if last_names || path_names && consumer_parent(operations, resource, &op.path) {
            out.push((
                160 + u8::from(nested) * 32,
                Producer {
                    op: index,
                    items_path: None,
                    field: None,
                    how: "collection path",
                },
            ));
        }
    }
    out.sort_by_key(|(score, p)| (*score, p.op));
    out.into_iter().map(|(_, p)| p).collect()
}

/// Whether some operation names `resource` by a path parameter right under `path`
/// (`/accounts/v2/{account_name}` under `/accounts/v2`).
fn consumer_parent(operations: &[Operation], resource: &str, path: &str) -> bool {
    let parent = path.trim_end_matches('/');
    operations.iter().any(|op| {
        op.path
            .strip_prefix(parent)
            .and_then(|rest| rest.strip_prefix('/'))
            .is_some_and(|rest| rest.starts_with('{') && !rest.trim_end_matches('/').contains('/'))
            && op
                .path_params()
                .any(|p| p.id_resource.as_deref() == Some(resource))
    })
}

/// Create operations: a POST or PUT on a collection path of the resource (the path of a
/// producer, or of a consumer with its last ID segment removed), or an operation without
/// an ID whose request names the resource's item schema.
fn creates_of(resource: &str, operations: &[Operation], doc: &Value) -> Vec<usize> {
    let collection_paths: Vec<String> = operations
        .iter()
        .filter_map(|op| {
            let (parent, last) = op.path.trim_end_matches('/').rsplit_once('/')?;
            let param = last.strip_prefix('{')?.strip_suffix('}')?;
            op.path_params()
                .any(|p| p.name == param && p.id_resource.as_deref() == Some(resource))
                .then(|| parent.to_string())
        })
        .collect();
    let mut out = Vec::new();
    for (index, op) in operations.iter().enumerate() {
        if !matches!(op.method, Method::Post | Method::Put) || op.path_params().next().is_some() {
            continue;
        }
        let on_collection = collection_paths
            .iter()
            .any(|p| p == op.path.trim_end_matches('/'))
            || literal_segments(&op.path)
                .last()
                .is_some_and(|s| naive_plural(&s.to_ascii_lowercase()) == resource);
        let body_names_item = op
            .json_body()
            .and_then(|m| m.schema.as_ref())
            .and_then(ref_name)
            .is_some_and(|n| names_resource(&n, resource))
            && !op
                .json_body()
                .and_then(|m| m.schema.as_ref())
                .is_some_and(|s| {
                    deref(doc, s).get("type").and_then(Value::as_str) == Some("array")
                });
        if on_collection || (body_names_item && op.method == Method::Post) {
            out.push(index);
        }
    }
    // POST before PUT: a POST on a collection is the common create; a PUT there is one too
    // only where the API has no POST.
    out.sort_by_key(|&i| (operations[i].method != Method::Post, i));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_from_names() {
        assert_eq!(
            id_field_candidates("article_title", "articles")[..3],
            ["article_title", "title", "id"]
        );
        assert_eq!(id_field_candidates("job_id", "jobs")[..2], ["job_id", "id"]);
        assert_eq!(
            id_field_candidates("accountName", "accounts")[..2],
            ["accountName", "name"]
        );
        assert_eq!(id_field_candidates("id", "users")[0], "id");
        assert_eq!(singular("build_errors"), "build_error");
        assert_eq!(singular("companies"), "company");
        assert_eq!(singular("boxes"), "box");
    }
}
