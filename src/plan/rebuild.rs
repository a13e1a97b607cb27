//! A probe's body rebuilt after the target blamed one of our own values (a 400 or 422
//! naming a field we filled: `unknown value for field role`, FastAPI's
//! `{"detail": [{"loc": ["body", "email"], …}]}`): the blamed fields get the next value
//! the context offers (values seen in answers, then the description's enum, example or
//! default, then a value of the field's format), so the verdict is about access, not about
//! a made-up value. Pure: the caller sends the rebuilt request once.

use super::properties;
use crate::request::RequestSpec;
use crate::spec::Api;
use serde_json::Value;
use std::collections::BTreeMap;

/// The top-level body fields an error answer names: quoted, in a `loc`/`field`/`path`
/// entry, or as a whole word of the message.
pub fn blamed_fields(body: &serde_json::Map<String, Value>, answer: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(answer);
    let words: Vec<&str> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .filter(|w| !w.is_empty())
        .collect();
    body.keys()
        .filter(|k| words.iter().any(|w| w == k))
        .cloned()
        .collect()
}

/// The request with each blamed field set to its next candidate value; `None` when the
/// answer blames none of our fields or nothing else can be tried.
pub fn rebuild(
    api: &Api,
    op: usize,
    request: &RequestSpec,
    answer: &[u8],
    seen: &BTreeMap<String, Vec<Value>>,
) -> Option<RequestSpec> {
    let Some(Value::Object(body)) = &request.json else {
        return None;
    };
    let blamed = blamed_fields(body, answer);
    if blamed.is_empty() {
        return None;
    }
    let schema = api.operations[op]
        .json_body()
        .and_then(|m| m.schema.as_ref())?;
    let props: BTreeMap<&str, &Value> = properties(api, schema).into_iter().collect();
    let mut new_body = body.clone();
    let mut changed = false;
    for field in blamed {
        let current = body.get(&field);
        let prop = props.get(field.as_str()).copied();
        let candidates = seen
            .get(&field)
            .into_iter()
            .flatten()
            .cloned()
            .chain(prop.into_iter().flat_map(described_values))
            .chain(prop.and_then(format_value));
        if let Some(next) = candidates.into_iter().find(|v| Some(v) != current) {
            new_body.insert(field, next);
            changed = true;
        }
    }
    changed.then(|| RequestSpec {
        json: Some(Value::Object(new_body)),
        ..request.clone()
    })
}

/// Enum members, examples and the default the description gives for a property.
fn described_values(prop: &Value) -> Vec<Value> {
    let mut out: Vec<Value> = prop
        .get("enum")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    out.extend(prop.get("example").cloned());
    out.extend(
        prop.get("examples")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .cloned(),
    );
    out.extend(prop.get("default").cloned());
    out
}

/// A well-formed value for a string of a known format (or a name that says it).
fn format_value(prop: &Value) -> Option<Value> {
    let format = prop
        .get("format")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let text = match format {
        "email" => "rolegrid@example.test",
        "uri" | "url" => "https://example.test/rolegrid",
        "date" => "2026-01-01",
        "date-time" => "2026-01-01T00:00:00Z",
        "uuid" => "00000000-0000-4000-8000-000000000000",
        _ => match prop.get("type").and_then(Value::as_str) {
            Some("integer") | Some("number") => return Some(Value::from(1)),
            Some("boolean") => return Some(Value::Bool(true)),
            _ => return None,
        },
    };
    Some(Value::String(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Method;
    use serde_json::json;

    #[test]
    fn a_blamed_role_takes_a_value_seen_in_the_answers() {
        let api = crate::spec::test_api(
            "paths:\n  /users/{name}/role:\n    put:\n      parameters: [{name: name, in: path, required: true, schema: {type: string}}]\n      requestBody: {content: {application/json: {schema: {type: object, properties: {role: {type: string}, note: {type: string}}}}}}\n      responses: {'200': {description: ok}}\n",
        );
        let request = RequestSpec {
            method: Method::Put,
            path: "/users/bob/role".into(),
            query: Vec::new(),
            headers: Vec::new(),
            json: Some(json!({"role": "rolegrid-1", "note": "rolegrid-1"})),
        };
        let seen: BTreeMap<String, Vec<Value>> =
            [("role".to_string(), vec![json!("Seller"), json!("Manager")])].into();
        let answer = br#"{"error": "unknown value for field `role`: expected one of [\"Seller\", \"Manager\"]"}"#;
        let rebuilt = rebuild(&api, 0, &request, answer, &seen).expect("rebuilt");
        assert_eq!(
            rebuilt.json,
            Some(json!({"role": "Seller", "note": "rolegrid-1"}))
        );
        let fastapi = br#"{"detail": [{"loc": ["body", "note"], "msg": "too long"}]}"#;
        assert_eq!(
            blamed_fields(
                request
                    .json
                    .as_ref()
                    .and_then(Value::as_object)
                    .expect("object"),
                fastapi
            ),
            vec!["note".to_string()]
        );
        assert!(rebuild(&api, 0, &request, b"{\"error\": \"forbidden\"}", &seen).is_none());
    }
}
