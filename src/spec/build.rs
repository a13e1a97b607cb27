//! Walks a bundled, 3.0-shaped document (`serde_json::Value`) and builds the [`Api`] model.
//!
//! The walk is tolerant on purpose: real descriptions put odd things in odd places, and a
//! scanner is better served by every operation it can read than by a refusal over one
//! malformed response. Only a document without usable top-level structure is an error.

use super::error::SpecError;
use super::ids;
use super::model::{
    Api, MediaType, Method, Operation, ParamLocation, Parameter, RequestBody, Response, Security,
    SecurityScheme, SpecFamily,
};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// Follows local `$ref` chains (bounded, so a cycle cannot loop); an unresolvable ref
/// yields the ref object itself.
pub fn deref<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    let mut current = value;
    for _ in 0..32 {
        let Some(pointer) = current.get("$ref").and_then(Value::as_str) else {
            return current;
        };
        match pointer.strip_prefix('#').and_then(|p| doc.pointer(p)) {
            Some(target) => current = target,
            None => return current,
        }
    }
    current
}

pub fn build(
    doc: Value,
    origin: &Path,
    family: SpecFamily,
    version: String,
) -> Result<Api, SpecError> {
    let Some(top) = doc.as_object() else {
        return Err(SpecError::NotOpenApi {
            file: origin.to_path_buf(),
            reason: "the top level is not a mapping".to_string(),
        });
    };
    if let Some(paths) = top.get("paths") {
        if !paths.is_object() && !paths.is_null() {
            return Err(SpecError::Invalid {
                file: origin.to_path_buf(),
                pointer: "/paths".to_string(),
                problem: "`paths` must be a mapping from path templates to path items; fix its indentation or type".to_string(),
            });
        }
    }
    let title = top
        .get("info")
        .and_then(|i| i.get("title"))
        .map(text_of)
        .unwrap_or_default();
    let servers = servers(top.get("servers"));
    let global_security = top.get("security");

    let mut operations = Vec::new();
    if let Some(Value::Object(paths)) = top.get("paths").map(|p| deref(&doc, p)) {
        for (path, item) in paths {
            if path.starts_with("x-") {
                continue;
            }
            let item = deref(&doc, item);
            let Some(item_map) = item.as_object() else {
                continue;
            };
            let shared = item_map.get("parameters");
            for method in Method::ALL {
                let Some(raw) = item_map.get(method.key()) else {
                    continue;
                };
                let raw = deref(&doc, raw);
                let Some(op) = raw.as_object() else {
                    continue;
                };
                operations.push(operation(&doc, method, path, op, shared, global_security));
            }
        }
    }

    let mut collections = ids::annotate(&mut operations, &doc);
    let resources = super::links::resources(&operations, &doc);
    // Producers the resource model found (wrapped lists, natural keys, version segments)
    // come first; the older rule's listings stay behind them.
    for (name, resource) in &resources {
        let mut ops: Vec<usize> = resource
            .producers
            .iter()
            .map(|p| p.op)
            .filter(|&op| operations[op].method == super::model::Method::Get)
            .collect();
        for op in collections.remove(name).unwrap_or_default() {
            if !ops.contains(&op) {
                ops.push(op);
            }
        }
        if !ops.is_empty() {
            collections.insert(name.clone(), ops);
        }
    }
    let security_schemes = security_schemes(&doc);
    Ok(Api {
        family,
        version,
        title,
        servers,
        operations,
        security_schemes,
        collections,
        resources,
        document: doc,
    })
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `servers` entries may be objects with `url` or, in hand-written files, plain strings.
fn servers(value: Option<&Value>) -> Vec<String> {
    let Some(Value::Array(items)) = value else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|s| match s {
            Value::String(url) => Some(url.clone()),
            Value::Object(o) => o.get("url").and_then(Value::as_str).map(str::to_string),
            _ => None,
        })
        .collect()
}

fn operation(
    doc: &Value,
    method: Method,
    path: &str,
    op: &Map<String, Value>,
    shared: Option<&Value>,
    global_security: Option<&Value>,
) -> Operation {
    // Path-level first, then operation-level: an operation parameter with the same name
    // and location replaces the shared one in place.
    let mut parameters: Vec<Parameter> = Vec::new();
    for list in [shared, op.get("parameters")].into_iter().flatten() {
        let Value::Array(items) = list else { continue };
        for raw in items {
            let Some(param) = parameter(doc, deref(doc, raw)) else {
                continue;
            };
            match parameters
                .iter_mut()
                .find(|p| p.name == param.name && p.location == param.location)
            {
                Some(existing) => *existing = param,
                None => parameters.push(param),
            }
        }
    }

    let request_body = op.get("requestBody").and_then(|raw| {
        let body = deref(doc, raw).as_object()?;
        Some(RequestBody {
            required: body.get("required").and_then(Value::as_bool) == Some(true),
            content: content(doc, body.get("content")),
        })
    });

    let mut responses = Vec::new();
    if let Some(Value::Object(map)) = op.get("responses").map(|r| deref(doc, r)) {
        for (status, raw) in map {
            if status.starts_with("x-") {
                continue;
            }
            let resp = deref(doc, raw);
            responses.push(Response {
                status: status.clone(),
                content: content(doc, resp.get("content")),
            });
        }
    }

    Operation {
        method,
        path: path.to_string(),
        operation_id: op.get("operationId").map(text_of).filter(|s| !s.is_empty()),
        summary: op
            .get("summary")
            .and_then(Value::as_str)
            .map(str::to_string),
        tags: match op.get("tags") {
            Some(Value::Array(tags)) => tags.iter().map(text_of).collect(),
            _ => Vec::new(),
        },
        parameters,
        request_body,
        responses,
        security: security(op.get("security").or(global_security)),
        body_ids: Vec::new(),
        declared_safe: op.get("x-rolegrid-safe").and_then(Value::as_bool) == Some(true),
    }
}

fn parameter(doc: &Value, raw: &Value) -> Option<Parameter> {
    let name = raw.get("name")?.as_str()?.to_string();
    let location = match raw.get("in")?.as_str()? {
        "path" => ParamLocation::Path,
        "query" => ParamLocation::Query,
        "header" => ParamLocation::Header,
        "cookie" => ParamLocation::Cookie,
        _ => return None,
    };
    let schema = raw
        .get("schema")
        .cloned()
        .or_else(|| {
            // 3.0 `content`-style parameter: one media type carrying the schema.
            raw.get("content")
                .and_then(Value::as_object)
                .and_then(|c| c.values().next())
                .and_then(|m| m.get("schema"))
                .cloned()
        })
        .or_else(|| super::normalize::schema_from_swagger_fields(raw));
    Some(Parameter {
        name,
        location,
        required: location == ParamLocation::Path
            || raw.get("required").and_then(Value::as_bool) == Some(true),
        schema,
        example: example(doc, raw),
        id_resource: None,
    })
}

/// `example`, else the first entry of `examples` (a map of Example objects in 3.0).
fn example(doc: &Value, raw: &Value) -> Option<Value> {
    if let Some(e) = raw.get("example") {
        return Some(e.clone());
    }
    match raw.get("examples") {
        Some(Value::Object(map)) => map
            .values()
            .next()
            .and_then(|e| deref(doc, e).get("value"))
            .cloned(),
        Some(Value::Array(items)) => items.first().cloned(),
        _ => None,
    }
}

fn content(doc: &Value, value: Option<&Value>) -> Vec<MediaType> {
    let Some(Value::Object(map)) = value.map(|v| deref(doc, v)) else {
        return Vec::new();
    };
    map.iter()
        .map(|(content_type, media)| {
            let media = deref(doc, media);
            MediaType {
                content_type: content_type.clone(),
                schema: media.get("schema").cloned(),
                example: example(doc, media),
            }
        })
        .collect()
}

/// A requirement list: empty, or any `{}` alternative, means anyone may call.
fn security(value: Option<&Value>) -> Security {
    let Some(Value::Array(alternatives)) = value else {
        return Security::Public;
    };
    let mut required = Vec::new();
    for alt in alternatives {
        let Some(schemes) = alt.as_object() else {
            continue;
        };
        if schemes.is_empty() {
            return Security::Public;
        }
        required.push(schemes.keys().cloned().collect());
    }
    if required.is_empty() {
        Security::Public
    } else {
        Security::Required(required)
    }
}

fn security_schemes(doc: &Value) -> BTreeMap<String, SecurityScheme> {
    let mut out = BTreeMap::new();
    let Some(Value::Object(schemes)) = doc
        .pointer("/components/securitySchemes")
        .map(|s| deref(doc, s))
    else {
        return out;
    };
    for (name, raw) in schemes {
        let raw = deref(doc, raw);
        let text = |key: &str| raw.get(key).and_then(Value::as_str).map(str::to_string);
        out.insert(
            name.clone(),
            SecurityScheme {
                kind: text("type").unwrap_or_default(),
                scheme: text("scheme"),
                param_name: text("name"),
                location: match text("in").as_deref() {
                    Some("query") => Some(ParamLocation::Query),
                    Some("header") => Some(ParamLocation::Header),
                    Some("cookie") => Some(ParamLocation::Cookie),
                    _ => None,
                },
            },
        );
    }
    out
}
