//! The request vocabulary shared by discovery, planning and execution: a concrete request
//! relative to the target, and which credential it is sent with.

use crate::spec::{Api, Method, ParamLocation, Parameter};
use serde_json::Value;

/// How a request is authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Credential {
    /// The identity's own live credential.
    Normal,
    /// No credential at all.
    Omitted,
    /// The identity's credential replaced by a forgery.
    Forged(Forgery),
}

/// Ways of breaking a credential, for `bad-auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Forgery {
    /// A random string where the token should be.
    Garbage,
    /// The identity's JWT re-encoded with `alg: none` and no signature.
    AlgNone,
    /// The identity's JWT with `exp` moved into the past, original signature kept.
    Expired,
    /// The identity's token cut short: a JWT loses half its signature, another token
    /// its second half (servers that compare only a prefix accept it).
    Truncated,
    /// The identity's JWT re-signed (HS256) with a key that is not the server's.
    WrongSignature,
    /// The identity's JWT re-signed with the weak secret on `line` of
    /// `corpora/jwt-weak-secrets.txt`, which its own token verified under (checked
    /// offline), claiming to be someone else.
    WeakSecret { line: u32, claim: ClaimSwap },
}

/// What a token re-signed with a weak secret claims, taken from another identity
/// (its own token's claims, else its engagement entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClaimSwap {
    /// That identity's subject (`sub`) and the identity claims that go with it.
    Subject(usize),
    /// The actor's own subject with that identity's role claim.
    Role(usize),
}

/// The weak-secret corpus: one secret per line, `#` comments.
const WEAK_SECRETS: &str = include_str!("../corpora/jwt-weak-secrets.txt");

/// Each weak secret with its 1-based line in `corpora/jwt-weak-secrets.txt`.
pub fn weak_secrets() -> impl Iterator<Item = (u32, &'static str)> {
    WEAK_SECRETS
        .lines()
        .zip(1u32..)
        .map(|(text, line)| (line, text.trim()))
        .filter(|(_, text)| !text.is_empty() && !text.starts_with('#'))
}

/// The weak secret on `line` of the corpus.
pub fn weak_secret_at(line: u32) -> Option<&'static str> {
    weak_secrets().find(|(l, _)| *l == line).map(|(_, s)| s)
}

impl Forgery {
    pub fn describe(self) -> String {
        match self {
            Forgery::Garbage => "a garbage token".into(),
            Forgery::AlgNone => {
                "the identity's token re-encoded with alg none and no signature".into()
            }
            Forgery::Expired => {
                "the identity's token with exp in the past (signature no longer matches)".into()
            }
            Forgery::Truncated => {
                "the identity's token cut short (half its signature, or half the token)".into()
            }
            Forgery::WrongSignature => {
                "the identity's token re-signed with a key that is not the server's".into()
            }
            Forgery::WeakSecret { line, claim } => {
                let what = match claim {
                    ClaimSwap::Subject(_) => "claiming another identity's subject",
                    ClaimSwap::Role(_) => "claiming another identity's role",
                };
                format!(
                    "a token re-signed with the weak secret `{}` (corpora/jwt-weak-secrets.txt line {line}), {what}",
                    weak_secret_at(line).unwrap_or("?")
                )
            }
        }
    }

    /// An upper-case word for the shell variable a curl reproduction names.
    pub fn slug(self) -> &'static str {
        match self {
            Forgery::Garbage => "GARBAGE",
            Forgery::AlgNone => "ALGNONE",
            Forgery::Expired => "EXPIRED",
            Forgery::Truncated => "TRUNCATED",
            Forgery::WrongSignature => "WRONGSIGNATURE",
            Forgery::WeakSecret { .. } => "WEAKSECRET",
        }
    }
}

/// What an identity's live token shows when read locally, without a request: the
/// planner's only knowledge of credentials (never the token itself).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenFacts {
    /// The corpus line of the weak secret the token's own HS256 signature verifies under.
    pub weak_secret: Option<u32>,
    /// The token is a JWT with a subject (`sub`).
    pub subject: bool,
    /// The token is a JWT with a role claim (`role`, `roles`).
    pub role_claim: bool,
    /// The live token is known not to be a JWT (an opaque session token): the forgeries
    /// that re-encode a JWT cannot be built for it.
    pub not_jwt: bool,
}

/// A concrete request: the path already filled, relative to the engagement's target.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RequestSpec {
    pub method: Method,
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Extra headers the attack needs (method overrides, ID headers); never credentials.
    pub headers: Vec<(String, String)>,
    pub json: Option<Value>,
}

impl RequestSpec {
    /// A stable key for caching owner baselines of the same request.
    pub fn cache_key(&self) -> String {
        let mut key = format!("{} {}", self.method, self.path);
        for (k, v) in &self.query {
            key.push_str(&format!(" {k}={v}"));
        }
        for (k, v) in &self.headers {
            key.push_str(&format!(" {k}: {v}"));
        }
        key
    }

    /// Path and query, percent-encoded, to append to the target's base URL.
    pub fn path_and_query(&self) -> String {
        if self.query.is_empty() {
            return self.path.clone();
        }
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(self.query.iter())
            .finish();
        format!("{}?{query}", self.path)
    }
}

/// A value's text as it goes into a path or query string.
pub fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Percent-encodes one path segment.
pub fn encode_segment(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A plausible value for a parameter nobody told us about: example, default, first enum
/// value, then one by type. `None` when the schema gives nothing to go on.
pub fn sample_param(api: &Api, param: &Parameter) -> Option<String> {
    if let Some(example) = &param.example {
        return Some(value_text(example));
    }
    let schema = api.resolve(param.schema.as_ref()?);
    sample_value(api, schema).map(|v| value_text(&v))
}

/// A plausible value for `schema`: its example, default, first enum member, then one by type.
pub fn sample_value(api: &Api, schema: &Value) -> Option<Value> {
    let schema = api.resolve(schema);
    if let Some(v) = schema.get("example").or_else(|| schema.get("default")) {
        return Some(v.clone());
    }
    if let Some(first) = schema
        .get("enum")
        .and_then(|e| e.as_array())
        .and_then(|a| a.first())
    {
        return Some(first.clone());
    }
    match schema.get("type").and_then(|t| t.as_str()) {
        Some("integer") | Some("number") => Some(Value::from(1)),
        Some("boolean") => Some(Value::Bool(true)),
        Some("string") => Some(Value::String(
            match schema.get("format").and_then(|f| f.as_str()) {
                Some("uuid") => "00000000-0000-4000-8000-000000000000".into(),
                Some("date-time") => "2026-01-01T00:00:00Z".into(),
                Some("date") => "2026-01-01".into(),
                Some("email") => "rolegrid@example.test".into(),
                _ => "rolegrid".into(),
            },
        )),
        _ => None,
    }
}

/// A JSON body for a write from the request schema: each string property carries
/// `marker`, so the owner's read-back can tell whether the write landed.
pub fn sample_body(api: &Api, schema: &Value, marker: &str) -> Value {
    sample_object(api, schema, marker, MAX_BODY_DEPTH)
}

/// How deep bodies nest objects (`{"data": {"attributes": {…}}}` is two): a schema that
/// refers to itself stops here.
pub const MAX_BODY_DEPTH: usize = 4;

/// Whether a schema is an object with properties of its own to fill.
pub fn has_properties(schema: &Value) -> bool {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .is_some_and(|p| !p.is_empty())
}

fn sample_object(api: &Api, schema: &Value, marker: &str, depth: usize) -> Value {
    let schema = api.resolve(schema);
    let Some(props) = schema.get("properties").and_then(|p| p.as_object()) else {
        return Value::Object(Default::default());
    };
    let mut body = serde_json::Map::new();
    for (name, prop) in props {
        let prop = api.resolve(prop);
        if prop.get("readOnly").and_then(|r| r.as_bool()) == Some(true) {
            continue;
        }
        if let Some(value) = sample_field(api, prop, marker, depth) {
            body.insert(name.clone(), value);
        }
    }
    Value::Object(body)
}

/// Whether a schema is free text: a string without an enum or a format, where a marker
/// or a label can stand.
pub fn is_plain_string(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("string")
        && schema.get("enum").is_none()
        && schema.get("format").is_none()
}

/// One value of a write body for `schema`: `text` for free text, a nested object or a
/// one-item array filled the same way (`depth` levels more at most), else a sample.
fn sample_field(api: &Api, schema: &Value, text: &str, depth: usize) -> Option<Value> {
    let documented = schema.get("example").is_some() || schema.get("default").is_some();
    if is_plain_string(schema) {
        Some(Value::String(text.to_string()))
    } else if depth > 0 && has_properties(schema) && !documented {
        Some(sample_object(api, schema, text, depth - 1))
    } else if let Some(array) = sample_array(api, schema, text, depth) {
        Some(array)
    } else {
        sample_value(api, schema)
    }
}

/// A one-item array for an array schema without an example (`"items": ["rolegrid-…"]`):
/// its item is filled like a body's field. `None` for any other schema.
pub fn sample_array(api: &Api, schema: &Value, text: &str, depth: usize) -> Option<Value> {
    let documented = schema.get("example").is_some() || schema.get("default").is_some();
    if documented || schema.get("type").and_then(Value::as_str) != Some("array") {
        return None;
    }
    let items = api.resolve(schema.get("items")?);
    // Arrays of arrays are not built: a schema that nests itself so would never end.
    if items.get("type").and_then(Value::as_str) == Some("array") {
        return None;
    }
    let item = sample_field(api, items, text, depth)?;
    Some(Value::Array(vec![item]))
}

/// Builds a request for `op` with `id_param` set to `id` and other parameters sampled.
/// `None` when a required parameter cannot be filled.
pub fn build_request(
    api: &Api,
    op_index: usize,
    id_param: Option<(&Parameter, &Value)>,
    marker: &str,
) -> Option<RequestSpec> {
    build_request_with(api, op_index, id_param.as_slice(), marker)
}

/// [`build_request`] with several parameters given (a parent's ID in the path as well
/// as the object's: `/orgs/{org}/projects/{project_id}`).
pub fn build_request_with(
    api: &Api,
    op_index: usize,
    given: &[(&Parameter, &Value)],
    marker: &str,
) -> Option<RequestSpec> {
    let op = &api.operations[op_index];
    let mut path = op.path.clone();
    let mut query = Vec::new();
    for param in &op.parameters {
        let chosen = given
            .iter()
            .find(|(p, _)| p.name == param.name && p.location == param.location)
            .map(|(_, value)| value_text(value));
        match param.location {
            ParamLocation::Path => {
                let text = chosen.or_else(|| sample_param(api, param))?;
                path = path.replace(&format!("{{{}}}", param.name), &encode_segment(&text));
            }
            ParamLocation::Query => {
                if let Some(text) = chosen {
                    query.push((param.name.clone(), text));
                } else if param.required {
                    query.push((param.name.clone(), sample_param(api, param)?));
                }
            }
            ParamLocation::Header | ParamLocation::Cookie => {
                if param.required && chosen.is_none() && sample_param(api, param).is_none() {
                    return None;
                }
            }
        }
    }
    let json = if op.method.is_safe() {
        None
    } else {
        op.json_body()
            .and_then(|m| m.schema.as_ref())
            .map(|s| sample_body(api, s, marker))
    };
    Some(RequestSpec {
        method: op.method,
        path,
        query,
        headers: Vec::new(),
        json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_fill_nested_objects_and_stop_at_a_schema_that_refers_to_itself() {
        let api = crate::spec::test_api(
            "paths: {}\ncomponents:\n  schemas:\n    Node: {type: object, properties: {label: {type: string}, child: {$ref: '#/components/schemas/Node'}}}\n",
        );
        let json_api = serde_json::json!({"type": "object", "properties": {"data": {"type": "object", "properties": {"type": {"type": "string", "enum": ["projects"]}, "attributes": {"type": "object", "properties": {"name": {"type": "string"}}}}}}});
        assert_eq!(
            sample_body(&api, &json_api, "MARK"),
            serde_json::json!({"data": {"type": "projects", "attributes": {"name": "MARK"}}})
        );
        let order = serde_json::json!({"type": "object", "properties": {"items": {"type": "array", "items": {"type": "string"}}, "lines": {"type": "array", "items": {"type": "object", "properties": {"qty": {"type": "integer"}}}}}});
        assert_eq!(
            sample_body(&api, &order, "MARK"),
            serde_json::json!({"items": ["MARK"], "lines": [{"qty": 1}]})
        );
        let node = serde_json::json!({"$ref": "#/components/schemas/Node"});
        let body = sample_body(&api, &node, "M").to_string();
        assert_eq!(body.matches("\"label\"").count(), MAX_BODY_DEPTH + 1);
    }

    #[test]
    fn path_and_query_percent_encodes() {
        let r = RequestSpec {
            method: Method::Get,
            path: "/files/download".into(),
            query: vec![("q".into(), "a b&c".into())],
            headers: vec![],
            json: None,
        };
        assert_eq!(r.path_and_query(), "/files/download?q=a+b%26c");
        assert_eq!(encode_segment("a/b c"), "a%2Fb%20c");
    }
}
