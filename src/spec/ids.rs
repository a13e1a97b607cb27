//! Object-identifier detection: which parameters carry IDs, of which resource, and which
//! GET operations list that resource (the collections the planner harvests IDs from).
//!
//! Resource names are lower-case plural collection segments as the spec spells them
//! (`invoices`, `invoice-lines`), so a parameter and the listing it pairs with agree.

use super::build::deref;
use super::model::{BodyId, Method, Operation, ParamLocation, Parameter};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Sets `id_resource` on every ID parameter and `body_ids` on every operation whose JSON
/// body names objects, and returns resource → listing operations. `doc` resolves `$ref`s.
pub fn annotate(operations: &mut [Operation], doc: &Value) -> BTreeMap<String, Vec<usize>> {
    let segments = SegmentIndex::new(operations);
    let mut used = BTreeSet::new();
    for op in operations.iter_mut() {
        let path = op.path.clone();
        for param in &mut op.parameters {
            param.id_resource = resource_of(param, &path, &segments);
            if let Some(r) = &param.id_resource {
                used.insert(r.clone());
            }
        }
        let schema = op.json_body().and_then(|m| m.schema.as_ref());
        op.body_ids = schema
            .map(|s| body_ids(doc, s, &segments))
            .unwrap_or_default();
        used.extend(op.body_ids.iter().map(|b| b.resource.clone()));
    }

    let mut collections = BTreeMap::new();
    for resource in used {
        let listing: Vec<usize> = operations
            .iter()
            .enumerate()
            .filter(|(_, op)| op.method == Method::Get)
            .filter(|(_, op)| {
                literal_segments_tail(&op.path)
                    .is_some_and(|last| plural_of_segment(last) == resource)
            })
            .map(|(i, _)| i)
            .collect();
        if !listing.is_empty() {
            collections.insert(resource, listing);
        }
    }
    collections
}

/// The last segment of a path when it is a literal (`/a/{id}/items` → `items`).
fn literal_segments_tail(path: &str) -> Option<&str> {
    let last = path.trim_end_matches('/').rsplit('/').next()?;
    (!last.is_empty() && !last.contains('{')).then_some(last)
}

/// Every literal path segment of the spec, keyed by its letters and digits only, so that
/// `invoiceLineId` can find `/invoice-lines`.
struct SegmentIndex {
    by_key: HashMap<String, String>,
    /// Squashed segments followed by a parameter somewhere (`patients` of
    /// `/patients/{id}`): resources whose objects the spec addresses one by one.
    addressed: BTreeSet<String>,
}

impl SegmentIndex {
    fn new(operations: &[Operation]) -> SegmentIndex {
        let mut by_key = HashMap::new();
        let mut addressed = BTreeSet::new();
        for op in operations {
            let segments: Vec<&str> = op.path.split('/').filter(|s| !s.is_empty()).collect();
            for (i, seg) in segments.iter().enumerate() {
                if seg.contains('{') || is_version(seg) {
                    continue;
                }
                by_key
                    .entry(squash(seg))
                    .or_insert_with(|| seg.to_ascii_lowercase());
                if segments
                    .get(i + 1)
                    .is_some_and(|next| next.starts_with('{'))
                {
                    addressed.insert(squash(seg));
                }
            }
        }
        SegmentIndex { by_key, addressed }
    }

    /// The resource a bare reference names (`patient` when `/patients/{id}` exists, as
    /// Django REST framework names foreign keys): only resources the spec addresses one
    /// object at a time.
    fn resource_named(&self, name: &str) -> Option<String> {
        let plural = squash(&naive_plural(&name_stem(name).join("_")));
        self.addressed
            .contains(&plural)
            .then(|| self.by_key.get(&plural).cloned())
            .flatten()
    }

    /// The resource for a name stem (`["invoice", "line"]`): the spec's own plural segment
    /// when there is one, else a naive plural.
    fn resource_for_stem(&self, tokens: &[String]) -> String {
        let joined = tokens.join("_");
        let plural = naive_plural(&joined);
        if let Some(seg) = self.by_key.get(&squash(&plural)) {
            return seg.clone();
        }
        if let Some(seg) = self.by_key.get(&squash(&joined)) {
            return plural_of_segment(seg);
        }
        plural
    }
}

/// A name without case or separators: `org_slug`, `orgSlug` and `org-slug` are alike.
pub fn squash(text: &str) -> String {
    text.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

pub(super) fn is_version(seg: &str) -> bool {
    let lower = seg.to_ascii_lowercase();
    if lower == "api" || lower == "rest" {
        return true;
    }
    lower.strip_prefix('v').is_some_and(|rest| {
        !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit() || c == '.')
    })
}

/// Headers named like IDs that identify requests, not objects.
fn is_transport_header(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [
        "request",
        "correlation",
        "trace",
        "span",
        "idempotency",
        "nonce",
        "session",
        "client",
        "device",
        "message",
    ]
    .iter()
    .any(|w| lower.contains(w))
}

/// Names of request bookkeeping (`requestId`, `trace_id`), in any location.
fn is_request_bookkeeping(name: &str) -> bool {
    let stem = name_stem(name);
    matches!(
        stem.first().map(String::as_str),
        Some("request" | "correlation" | "trace" | "span" | "idempotency" | "nonce")
    )
}

fn resource_of(param: &Parameter, path: &str, segments: &SegmentIndex) -> Option<String> {
    if param.location == ParamLocation::Header && is_transport_header(&param.name) {
        return None;
    }
    // `requestId`, `idempotency_key`, `correlationId` name requests, not objects, wherever
    // they are sent.
    if param.location == ParamLocation::Query && is_request_bookkeeping(&param.name) {
        return None;
    }
    let id_name = is_id_name(&param.name);
    let schema_says = |key: &str| {
        param
            .schema
            .as_ref()
            .and_then(|s| s.get(key))
            .and_then(|v| v.as_str())
    };
    let uuid_format = schema_says("format") == Some("uuid");

    if param.location == ParamLocation::Path {
        if let Some(prev) = segment_before(path, &param.name) {
            let stem = name_stem(&param.name);
            let names_segment = !stem.is_empty()
                && squash(&naive_plural(&stem.join("_"))) == squash(&plural_of_segment(prev));
            let plural_context = looks_plural(prev) && !names_a_property(&param.name);
            if id_name || uuid_format || names_segment || plural_context {
                return Some(plural_of_segment(prev));
            }
            return None;
        }
    }
    let uuid_path = uuid_format && param.location == ParamLocation::Path;
    if !(id_name || uuid_path) {
        // `?patient=12`: a query filter named by the resource it picks.
        let integer = schema_says("type") == Some("integer");
        return (param.location == ParamLocation::Query && (integer || uuid_format))
            .then(|| segments.resource_named(&param.name))
            .flatten();
    }
    // `X-Invoice-Id` names invoices: the `X-` of custom headers is not part of the stem.
    let bare = match param.location {
        ParamLocation::Header => strip_x_prefix(&param.name),
        _ => &param.name,
    };
    let stem = name_stem(bare);
    if !stem.is_empty() {
        return Some(segments.resource_for_stem(&stem));
    }
    // A bare `id` (or `uuid`, `slug`): the nearest plural literal segment gives the context,
    // as in `GET /files/download?id=…`.
    path.split('/')
        .rev()
        .filter(|s| !s.is_empty() && !s.contains('{') && !is_version(s))
        .find(|s| looks_plural(s))
        .map(plural_of_segment)
}

/// The ID-carrying top-level properties of a JSON body schema (`allOf` parts included).
/// Only properties whose name says so count (`invoice_id`, `invoiceId`, `ticket_ids`), and
/// only scalars or arrays of scalars: a bare `id` is the body's own object, and the names
/// of [`is_non_reference_field`] are credentials or ownership, not references.
fn body_ids(doc: &Value, schema: &Value, segments: &SegmentIndex) -> Vec<BodyId> {
    let mut out: Vec<BodyId> = Vec::new();
    let mut pending = vec![deref(doc, schema)];
    // Bounded: `allOf` nesting deeper than a few levels adds nothing real.
    for _ in 0..16 {
        let Some(schema) = pending.pop() else { break };
        if let Some(parts) = schema.get("allOf").and_then(Value::as_array) {
            pending.extend(parts.iter().rev().map(|p| deref(doc, p)));
        }
        let Some(props) = schema.get("properties").and_then(Value::as_object) else {
            continue;
        };
        for (name, prop) in props {
            let prop = deref(doc, prop);
            if prop.get("readOnly").and_then(Value::as_bool) == Some(true)
                || is_non_reference_field(name)
                || out.iter().any(|b| &b.name == name)
            {
                continue;
            }
            let kind = |s: &Value| match deref(doc, s).get("type").and_then(Value::as_str) {
                Some("integer") => Some(true),
                Some("string") => Some(false),
                _ => None,
            };
            let (stem, array, integer) = match prop.get("type").and_then(Value::as_str) {
                Some("array") => {
                    let Some(stem) = plural_id_stem(name) else {
                        continue;
                    };
                    let Some(integer) = prop.get("items").and_then(kind) else {
                        continue;
                    };
                    (stem, true, integer)
                }
                _ => {
                    let Some(integer) = kind(prop) else { continue };
                    if !is_id_name(name) {
                        // `"patient": 12`, a foreign key named by its resource.
                        let uuid = prop.get("format").and_then(Value::as_str) == Some("uuid");
                        if let Some(resource) =
                            segments.resource_named(name).filter(|_| integer || uuid)
                        {
                            out.push(BodyId {
                                name: name.clone(),
                                resource,
                                array: false,
                                integer,
                            });
                        }
                        continue;
                    }
                    (name_stem(name), false, integer)
                }
            };
            if stem.is_empty() {
                continue;
            }
            out.push(BodyId {
                name: name.clone(),
                resource: segments.resource_for_stem(&stem),
                array,
                integer,
            });
        }
    }
    out
}

/// `invoice_ids`, `invoice-ids`, `invoiceIds`, `invoiceIDs` → `["invoice"]`.
fn plural_id_stem(name: &str) -> Option<Vec<String>> {
    let rest = ["_ids", "-ids", "Ids", "IDs", "_uuids", "Uuids"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))?;
    let stem = words(rest);
    (!stem.is_empty()).then_some(stem)
}

/// Body properties named like IDs that do not pick an object the caller may or may not
/// reach: login names and OAuth client ids (credentials), request bookkeeping, and the
/// ownership fields `mass-assignment` and the tenant attacks own (`owner_id`, `tenant_id`).
fn is_non_reference_field(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    if matches!(lower.as_str(), "username" | "user_name" | "login") {
        return true;
    }
    let stem = name_stem(name);
    let first = stem.first().map(String::as_str).unwrap_or_default();
    matches!(
        first,
        "client"
            | "tenant"
            | "org"
            | "organization"
            | "organisation"
            | "owner"
            | "author"
            | "creator"
            | "created"
            | "request"
            | "correlation"
            | "trace"
            | "span"
            | "idempotency"
            | "session"
    )
}

fn strip_x_prefix(name: &str) -> &str {
    name.strip_prefix("X-")
        .or_else(|| name.strip_prefix("x-"))
        .unwrap_or(name)
}

/// Path parameters that pick a view or a value, not an object (`/jobs/{state}`,
/// `/videos/{id}/captions/{captionLanguage}`): judged by the last word of the name.
fn names_a_property(name: &str) -> bool {
    let words = words(name);
    words.last().is_some_and(|w| {
        matches!(
            w.as_str(),
            "state"
                | "status"
                | "format"
                | "type"
                | "kind"
                | "lang"
                | "language"
                | "locale"
                | "version"
                | "category"
                | "sort"
                | "order"
                | "mode"
                | "action"
                | "size"
                | "page"
                | "date"
                | "year"
                | "month"
                | "day"
                | "period"
                | "scope"
                | "field"
                | "extension"
        )
    })
}

/// The literal segment before `{name}` (version segments skipped), unless it is a template.
fn segment_before<'a>(path: &'a str, name: &str) -> Option<&'a str> {
    let target = format!("{{{name}}}");
    let segs: Vec<&str> = path.split('/').collect();
    let i = segs.iter().position(|s| *s == target)?;
    // `/articles/v1/{article_title}`: a version segment between the collection and the
    // identifier is skipped.
    let prev = segs[..i]
        .iter()
        .rev()
        .find(|s| !s.is_empty() && !is_version(s))?;
    (!prev.contains('{')).then_some(*prev)
}

/// `id`, `*_id`, `*-id`, `*Id`, `*ID`, `uuid`, `slug`, `username` and their kin.
pub fn is_id_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "id" | "uuid" | "guid" | "slug" | "username" | "user_name" | "login"
    ) {
        return true;
    }
    if lower.ends_with("_id")
        || lower.ends_with("-id")
        || lower.ends_with("_uuid")
        || lower.ends_with("-uuid")
        || lower.ends_with("_slug")
        || lower.ends_with("username")
    {
        return true;
    }
    // Case-sensitive suffixes, so `paid` and `valid` stay plain words.
    let camel = |suffix: &str| {
        name.strip_suffix(suffix)
            .and_then(|rest| rest.chars().last())
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    };
    camel("Id") || camel("ID") || camel("Uuid") || camel("UUID") || camel("Slug")
}

/// The words before the ID suffix, lower case: `invoiceLineId` → `["invoice", "line"]`,
/// `file_id` → `["file"]`, `username` → `["user"]`, `id` → `[]`.
pub fn name_stem(name: &str) -> Vec<String> {
    let lower = name.to_ascii_lowercase();
    if matches!(lower.as_str(), "username" | "user_name" | "login") {
        return vec!["user".to_string()];
    }
    let mut stem = name;
    for suffix in [
        "_id", "-id", "_ID", "-ID", "Id", "ID", "_uuid", "-uuid", "Uuid", "UUID", "_slug", "Slug",
        "_name", "Name",
    ] {
        if let Some(rest) = stem.strip_suffix(suffix) {
            stem = rest;
            break;
        }
    }
    if matches!(
        stem.to_ascii_lowercase().as_str(),
        "id" | "uuid" | "guid" | "slug"
    ) {
        return Vec::new();
    }
    words(stem)
}

/// Splits camelCase, snake_case, kebab-case and dotted names into lower-case words.
pub(super) fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut prev_lower = false;
    for c in text.chars() {
        if !c.is_ascii_alphanumeric() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower && !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        current.push(c.to_ascii_lowercase());
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn looks_plural(seg: &str) -> bool {
    let lower = seg.to_ascii_lowercase();
    (lower.ends_with('s') && !lower.ends_with("ss") && !lower.ends_with("us"))
        || matches!(lower.as_str(), "people" | "children" | "data" | "media")
}

/// The resource name of a literal segment: lower case, made plural when it is not.
pub fn plural_of_segment(seg: &str) -> String {
    let lower = seg.to_ascii_lowercase();
    if looks_plural(&lower) {
        lower
    } else {
        naive_plural(&lower)
    }
}

pub fn naive_plural(word: &str) -> String {
    if looks_plural(word) {
        return word.to_string();
    }
    if word == "person" {
        return "people".to_string();
    }
    if let Some(stem) = word.strip_suffix('y') {
        if !stem.ends_with(['a', 'e', 'i', 'o', 'u']) && !stem.is_empty() {
            return format!("{stem}ies");
        }
    }
    if word.ends_with(['s', 'x', 'z']) || word.ends_with("ch") || word.ends_with("sh") {
        return format!("{word}es");
    }
    format!("{word}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_object_an_operation_names_is_its_last_path_id_the_ones_before_are_parents() {
        let api = crate::spec::test_api(
            "paths:\n  /projects/{project_id}/notes/{note_id}:\n    parameters:\n      - {name: note_id, in: path, required: true, schema: {type: integer}}\n      - {name: project_id, in: path, required: true, schema: {type: string}}\n    get:\n      responses: {'200': {description: ok}}\n",
        );
        let (param, resource) = api.operations[0].id_param().expect("an ID parameter");
        assert_eq!((param.name.as_str(), resource), ("note_id", "notes"));
    }

    #[test]
    fn id_names() {
        for yes in [
            "id",
            "file_id",
            "invoiceId",
            "userID",
            "uuid",
            "slug",
            "username",
            "org-id",
        ] {
            assert!(is_id_name(yes), "{yes}");
        }
        for no in ["paid", "valid", "page", "limit", "ids_only", "Id"] {
            assert!(!is_id_name(no) || no == "Id", "{no}");
        }
    }

    #[test]
    fn body_properties_that_name_objects() {
        let doc = serde_json::json!({"components": {"schemas": {"Ref": {"type": "integer"}}}});
        let schema = serde_json::json!({
            "allOf": [{"properties": {"note_id": {"$ref": "#/components/schemas/Ref"}}}],
            "properties": {
                "invoice_ids": {"type": "array", "items": {"type": "integer"}},
                "ticketId": {"type": "string"},
                "id": {"type": "integer"},
                "owner_id": {"type": "integer"},
                "client_id": {"type": "string"},
                "meta_id": {"type": "object"},
                "paid": {"type": "boolean"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "invoice": {"type": "integer"},
                "ticket": {"type": "integer"},
                "title": {"type": "string"}
            }
        });
        // `/invoices/{id}` addresses invoices one by one; tickets are only listed.
        let segments = SegmentIndex {
            by_key: [
                ("invoices".to_string(), "invoices".to_string()),
                ("tickets".to_string(), "tickets".to_string()),
            ]
            .into(),
            addressed: ["invoices".to_string()].into(),
        };
        let found: Vec<(String, String, bool, bool)> = body_ids(&doc, &schema, &segments)
            .into_iter()
            .map(|b| (b.name, b.resource, b.array, b.integer))
            .collect();
        assert_eq!(
            found,
            vec![
                ("invoice_ids".into(), "invoices".into(), true, true),
                ("ticketId".into(), "tickets".into(), false, false),
                ("invoice".into(), "invoices".into(), false, true),
                ("note_id".into(), "notes".into(), false, true),
            ]
        );
    }

    #[test]
    fn stems_and_plurals() {
        assert_eq!(name_stem("invoiceLineId"), vec!["invoice", "line"]);
        assert_eq!(name_stem("file_id"), vec!["file"]);
        assert!(name_stem("id").is_empty());
        assert_eq!(naive_plural("company"), "companies");
        assert_eq!(naive_plural("box"), "boxes");
        assert_eq!(naive_plural("key"), "keys");
        assert_eq!(plural_of_segment("Users"), "users");
        assert_eq!(plural_of_segment("user"), "users");
    }
}
