//! Walking a description: which mapping keys hold data (never rewritten) and which hold
//! names (so `properties: {default: …}` is a property called `default`, not a keyword).

use serde_json::{Map, Value};
use std::borrow::Cow;

/// Values under these keys are instance data or extensions, not description: a `$ref` or
/// a `type` inside them means nothing to us and must be left as written.
fn is_data(key: &str, value: &Value) -> bool {
    matches!(key, "example" | "enum" | "default" | "const" | "value")
        || key.starts_with("x-")
        || (key == "examples" && value.is_array())
}

/// Mappings under these keys are keyed by user-chosen names (property names, status
/// codes, media types, component names), so their keys are never keywords.
fn holds_names(key: &str, value: &Value) -> bool {
    value.is_object()
        && matches!(
            key,
            "properties"
                | "patternProperties"
                | "$defs"
                | "definitions"
                | "dependentSchemas"
                | "schemas"
                | "paths"
                | "webhooks"
                | "callbacks"
                | "responses"
                | "parameters"
                | "headers"
                | "content"
                | "encoding"
                | "examples"
                | "links"
                | "requestBodies"
                | "securitySchemes"
                | "securityDefinitions"
                | "pathItems"
        )
}

/// The callback of [`objects`]: a mapping and the trail of keys leading to it.
pub type Visit<'f, E> = dyn FnMut(&mut Map<String, Value>, &[Cow<'_, str>]) -> Result<(), E> + 'f;

/// Calls `f` on every mapping that is an object of the description (not a name map, not
/// data), with the JSON-pointer trail leading to it, parents before children.
pub fn objects<'a, E>(
    value: &'a mut Value,
    trail: &mut Vec<Cow<'a, str>>,
    f: &mut Visit<'_, E>,
) -> Result<(), E> {
    visit(value, trail, false, f)
}

fn visit<'a, E>(
    value: &'a mut Value,
    trail: &mut Vec<Cow<'a, str>>,
    in_names: bool,
    f: &mut Visit<'_, E>,
) -> Result<(), E> {
    match value {
        Value::Object(map) => {
            // A whole name map may itself be a `$ref` (`schemas: {$ref: schemas.yaml}`).
            if !in_names || matches!(map.get("$ref"), Some(Value::String(_))) {
                f(map, trail)?;
            }
            for (key, child) in map {
                if !in_names && (key == "$ref" || is_data(key, child)) {
                    continue;
                }
                let names = !in_names && holds_names(key, child);
                trail.push(Cow::Borrowed(key.as_str()));
                visit(child, trail, names, f)?;
                trail.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter_mut().enumerate() {
                trail.push(Cow::Owned(i.to_string()));
                visit(child, trail, false, f)?;
                trail.pop();
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn property_names_are_not_keywords_and_data_is_skipped() {
        let mut doc = json!({
            "properties": { "default": { "$ref": "a" }, "enum": { "type": "string" } },
            "example": { "$ref": "not-a-ref" },
            "x-tool": { "$ref": "ignored" }
        });
        let mut seen = Vec::new();
        let _ = objects::<()>(&mut doc, &mut Vec::new(), &mut |map, trail| {
            if let Some(r) = map.get("$ref") {
                seen.push((r.clone(), trail.join("/")));
            }
            Ok(())
        });
        assert_eq!(seen, vec![(json!("a"), "properties/default".to_string())]);
    }
}
