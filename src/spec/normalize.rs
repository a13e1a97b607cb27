//! Brings Swagger 2.0 and OpenAPI 3.1 documents into OpenAPI 3.0 shape, in place, so one
//! walker builds the model and the planner sees one dialect of JSON Schema.

use super::build::deref;
use super::model::SpecFamily;
use super::walk;
use serde_json::{json, Map, Value};

// ---------------------------------------------------------------- OpenAPI 3.1

/// 3.1 → 3.0: `type: [T, "null"]` → `type: T, nullable: true`; several types → `anyOf`;
/// numeric `exclusiveMinimum`/`exclusiveMaximum` → `minimum` + boolean; `const` → `enum`;
/// schema `examples: [..]` → `example`.
pub fn openapi31(doc: &mut Value) {
    let _ = walk::objects::<()>(doc, &mut Vec::new(), &mut |map, _| {
        schema_31(map);
        Ok(())
    });
}

fn schema_31(map: &mut Map<String, Value>) {
    if let Some(Value::Array(types)) = map.get("type") {
        let nullable = types.iter().any(|t| t == "null");
        let others: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
        match others.len() {
            0 => {
                map.insert("nullable".to_string(), Value::Bool(true));
                map.remove("type");
            }
            1 => {
                map.insert("type".to_string(), others[0].clone());
            }
            _ => {
                map.remove("type");
                let alternatives: Vec<Value> =
                    others.into_iter().map(|t| json!({ "type": t })).collect();
                map.entry("anyOf").or_insert(Value::Array(alternatives));
            }
        }
        if nullable {
            map.insert("nullable".to_string(), Value::Bool(true));
        }
    }
    for (exclusive, bound) in [
        ("exclusiveMinimum", "minimum"),
        ("exclusiveMaximum", "maximum"),
    ] {
        if let Some(n @ Value::Number(_)) = map.get(exclusive) {
            let n = n.clone();
            map.insert(bound.to_string(), n);
            map.insert(exclusive.to_string(), Value::Bool(true));
        }
    }
    if let Some(c) = map.get("const") {
        if !map.contains_key("enum") {
            let c = c.clone();
            map.insert("enum".to_string(), Value::Array(vec![c]));
        }
    }
    if let Some(Value::Array(examples)) = map.get("examples") {
        if let (Some(first), false) = (examples.first(), map.contains_key("example")) {
            let first = first.clone();
            map.insert("example".to_string(), first);
        }
    }
}

// ---------------------------------------------------------------- Swagger 2.0

/// 2.0 → 3.0: servers from host/basePath/schemes; `definitions`, `parameters`,
/// `responses`, `securityDefinitions` → `components`; refs rewritten; `in: body` and
/// `formData` parameters → `requestBody`; response `schema` → `content` per `produces`.
pub fn swagger20(doc: &mut Value) {
    let Value::Object(top) = doc else { return };

    let servers = swagger_servers(top);
    top.insert("servers".to_string(), Value::Array(servers));

    let global_consumes = string_list(top.get("consumes"));
    let global_produces = string_list(top.get("produces"));

    let mut components = Map::new();
    if let Some(defs) = top.remove("definitions") {
        components.insert("schemas".to_string(), defs);
    }
    // The other top-level sections move under `components`, each entry converted to its
    // 3.0 shape (body parameters stay as written: operations inline them into
    // requestBody).
    let response = |v| convert_response(v, &global_produces);
    let sections: [(&str, &str, &Convert); 3] = [
        ("parameters", "parameters", &convert_parameter),
        ("responses", "responses", &response),
        (
            "securityDefinitions",
            "securitySchemes",
            &convert_security_scheme,
        ),
    ];
    for (swagger, openapi, convert) in sections {
        if let Some(Value::Object(entries)) = top.remove(swagger) {
            let converted = entries.into_iter().map(|(k, v)| (k, convert(v))).collect();
            components.insert(openapi.to_string(), Value::Object(converted));
        }
    }
    top.insert("components".to_string(), Value::Object(components));

    rewrite_refs(doc);

    // Operations need the whole document to dereference shared parameters, so take the
    // paths out, convert them against the rest, and put them back.
    let Value::Object(top) = doc else { return };
    let Some(Value::Object(mut paths)) = top.remove("paths") else {
        return;
    };
    for item in paths.values_mut() {
        convert_path_item(doc, item, &global_consumes, &global_produces);
    }
    // Hoisted external path items (`$ref` to another file) are converted where they live.
    let external_items: Vec<String> = paths
        .values()
        .filter_map(|item| item.get("$ref").and_then(Value::as_str))
        .filter_map(|r| r.strip_prefix('#'))
        .map(str::to_string)
        .collect();
    for pointer in external_items {
        let mut item = doc.pointer(&pointer).cloned().unwrap_or(Value::Null);
        if item.is_object() {
            convert_path_item(doc, &mut item, &global_consumes, &global_produces);
            if let Some(slot) = doc.pointer_mut(&pointer) {
                *slot = item;
            }
        }
    }
    if let Value::Object(top) = doc {
        top.insert("paths".to_string(), Value::Object(paths));
    }
}

fn string_list(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

fn swagger_servers(top: &Map<String, Value>) -> Vec<Value> {
    let host = top.get("host").and_then(Value::as_str).unwrap_or("");
    let base = top.get("basePath").and_then(Value::as_str).unwrap_or("");
    let base = base.trim_end_matches('/');
    if host.is_empty() {
        return if base.is_empty() {
            Vec::new()
        } else {
            vec![json!({ "url": base })]
        };
    }
    let mut schemes = string_list(top.get("schemes"));
    if schemes.is_empty() {
        // 2.0 says "the scheme used to access the description"; https is the safe guess.
        schemes.push("https".to_string());
    }
    schemes
        .iter()
        .map(|s| json!({ "url": format!("{s}://{host}{base}") }))
        .collect()
}

/// `#/definitions/X` → `#/components/schemas/X`, and likewise for parameters/responses.
fn rewrite_refs(doc: &mut Value) {
    let _ = walk::objects::<()>(doc, &mut Vec::new(), &mut |map, _| {
        if let Some(Value::String(r)) = map.get_mut("$ref") {
            for (old, new) in [
                ("#/definitions/", "#/components/schemas/"),
                ("#/parameters/", "#/components/parameters/"),
                ("#/responses/", "#/components/responses/"),
            ] {
                if let Some(rest) = r.strip_prefix(old) {
                    *r = format!("{new}{rest}");
                    break;
                }
            }
        }
        Ok(())
    });
}

/// Parameter-level `type`, `format`, `items`, ... of a 2.0 non-body parameter as a schema.
pub fn schema_from_swagger_fields(param: &Value) -> Option<Value> {
    let map = param.as_object()?;
    map.get("type")?;
    let mut schema = Map::new();
    for key in [
        "type",
        "format",
        "items",
        "enum",
        "default",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "pattern",
        "minItems",
        "maxItems",
        "uniqueItems",
        "multipleOf",
    ] {
        if let Some(v) = map.get(key) {
            schema.insert(key.to_string(), v.clone());
        }
    }
    if schema.get("type").and_then(Value::as_str) == Some("file") {
        schema.insert("type".to_string(), json!("string"));
        schema.insert("format".to_string(), json!("binary"));
    }
    Some(Value::Object(schema))
}

/// Turns one Swagger 2.0 entry into its OpenAPI 3.0 shape.
type Convert<'a> = dyn Fn(Value) -> Value + 'a;

fn convert_parameter(param: Value) -> Value {
    let Value::Object(mut map) = param else {
        return param;
    };
    let location = map.get("in").and_then(Value::as_str).unwrap_or("");
    if location == "body" || location == "formData" || map.contains_key("$ref") {
        return Value::Object(map);
    }
    if !map.contains_key("schema") {
        if let Some(schema) = schema_from_swagger_fields(&Value::Object(map.clone())) {
            map.insert("schema".to_string(), schema);
        }
    }
    if let Some(example) = map.remove("x-example") {
        map.entry("example").or_insert(example);
    }
    Value::Object(map)
}

fn convert_response(response: Value, produces: &[String]) -> Value {
    let Value::Object(mut map) = response else {
        return response;
    };
    if map.contains_key("$ref") {
        return Value::Object(map);
    }
    if let Some(schema) = map.remove("schema") {
        let examples = map.remove("examples");
        let mut content = Map::new();
        let types: Vec<String> = if produces.is_empty() {
            vec!["application/json".to_string()]
        } else {
            produces.to_vec()
        };
        for t in types {
            let mut media = Map::new();
            media.insert("schema".to_string(), schema.clone());
            if let Some(e) = examples.as_ref().and_then(|e| e.get(&t)) {
                media.insert("example".to_string(), e.clone());
            }
            content.insert(t, Value::Object(media));
        }
        map.insert("content".to_string(), Value::Object(content));
    }
    Value::Object(map)
}

fn convert_security_scheme(scheme: Value) -> Value {
    let Value::Object(mut map) = scheme else {
        return scheme;
    };
    match map.get("type").and_then(Value::as_str) {
        Some("basic") => {
            map.insert("type".to_string(), json!("http"));
            map.insert("scheme".to_string(), json!("basic"));
        }
        Some("oauth2") => {
            let flow = match map.remove("flow").as_ref().and_then(Value::as_str) {
                Some("implicit") => "implicit",
                Some("password") => "password",
                Some("application") => "clientCredentials",
                _ => "authorizationCode",
            };
            let mut f = Map::new();
            for (old, new) in [
                ("authorizationUrl", "authorizationUrl"),
                ("tokenUrl", "tokenUrl"),
                ("scopes", "scopes"),
            ] {
                if let Some(v) = map.remove(old) {
                    f.insert(new.to_string(), v);
                }
            }
            map.insert("flows".to_string(), json!({ flow: f }));
        }
        _ => {}
    }
    Value::Object(map)
}

fn convert_path_item(doc: &Value, item: &mut Value, consumes: &[String], produces: &[String]) {
    let Value::Object(item) = item else { return };
    // Shared body/formData parameters belong to each operation's requestBody.
    let shared = item.remove("parameters").unwrap_or(Value::Null);
    let shared_list: Vec<Value> = match &shared {
        Value::Array(items) => items.clone(),
        _ => Vec::new(),
    };
    let (shared_body, shared_plain): (Vec<Value>, Vec<Value>) = shared_list
        .into_iter()
        .partition(|p| is_body_like(deref(doc, p)));
    if !shared_plain.is_empty() {
        let converted = shared_plain.into_iter().map(convert_parameter).collect();
        item.insert("parameters".to_string(), Value::Array(converted));
    }
    for method in super::model::Method::ALL {
        let Some(Value::Object(op)) = item.get_mut(method.key()) else {
            continue;
        };
        convert_operation(doc, op, &shared_body, consumes, produces);
    }
}

fn is_body_like(param: &Value) -> bool {
    matches!(
        param.get("in").and_then(Value::as_str),
        Some("body") | Some("formData")
    )
}

fn convert_operation(
    doc: &Value,
    op: &mut Map<String, Value>,
    shared_body: &[Value],
    consumes: &[String],
    produces: &[String],
) {
    let consumes = match op.remove("consumes") {
        Some(v) if !string_list(Some(&v)).is_empty() => string_list(Some(&v)),
        _ => consumes.to_vec(),
    };
    let produces = match op.remove("produces") {
        Some(v) if !string_list(Some(&v)).is_empty() => string_list(Some(&v)),
        _ => produces.to_vec(),
    };

    let own: Vec<Value> = match op.remove("parameters") {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    let mut plain = Vec::new();
    let mut body: Option<Value> = None;
    let mut form: Vec<Value> = Vec::new();
    // Shared ones first so that the operation's own (same name) override them.
    for raw in shared_body.iter().chain(own.iter()) {
        let param = deref(doc, raw);
        match param.get("in").and_then(Value::as_str) {
            Some("body") => body = Some(param.clone()),
            Some("formData") => {
                let name = param.get("name");
                form.retain(|p| p.get("name") != name);
                form.push(param.clone());
            }
            _ => plain.push(convert_parameter(raw.clone())),
        }
    }
    if !plain.is_empty() {
        op.insert("parameters".to_string(), Value::Array(plain));
    }

    if let Some(body) = body {
        let types = if consumes.is_empty() {
            vec!["application/json".to_string()]
        } else {
            consumes.clone()
        };
        let schema = body.get("schema").cloned().unwrap_or(json!({}));
        let mut content = Map::new();
        for t in types {
            let mut media = Map::new();
            media.insert("schema".to_string(), schema.clone());
            if let Some(e) = body.get("x-example") {
                media.insert("example".to_string(), e.clone());
            }
            content.insert(t, Value::Object(media));
        }
        op.insert(
            "requestBody".to_string(),
            json!({
                "required": body.get("required").and_then(Value::as_bool).unwrap_or(false),
                "content": content,
            }),
        );
    } else if !form.is_empty() {
        let has_file = form
            .iter()
            .any(|p| p.get("type").and_then(Value::as_str) == Some("file"));
        let media_type = if has_file || consumes.iter().any(|c| c.contains("multipart")) {
            "multipart/form-data"
        } else {
            "application/x-www-form-urlencoded"
        };
        let mut properties = Map::new();
        let mut required = Vec::new();
        for p in &form {
            let Some(name) = p.get("name").and_then(Value::as_str) else {
                continue;
            };
            let mut schema = schema_from_swagger_fields(p).unwrap_or(json!({}));
            if let (Some(d), Value::Object(s)) = (p.get("description"), &mut schema) {
                s.insert("description".to_string(), d.clone());
            }
            properties.insert(name.to_string(), schema);
            if p.get("required").and_then(Value::as_bool) == Some(true) {
                required.push(json!(name));
            }
        }
        let any_required = !required.is_empty();
        let mut schema = json!({ "type": "object", "properties": properties });
        if any_required {
            schema["required"] = Value::Array(required);
        }
        op.insert(
            "requestBody".to_string(),
            json!({
                "required": any_required,
                "content": { media_type: { "schema": schema } },
            }),
        );
    }

    if let Some(Value::Object(responses)) = op.remove("responses") {
        let converted: Map<String, Value> = responses
            .into_iter()
            .map(|(code, r)| (code, convert_response(r, &produces)))
            .collect();
        op.insert("responses".to_string(), Value::Object(converted));
    }
}

/// Reads the version fields: which family, and the version as written.
pub fn detect(doc: &Value) -> Result<(SpecFamily, String), (&'static str, String)> {
    let version_text = |v: &Value| match v {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    };
    if let Some(v) = doc.get("openapi") {
        let version = version_text(v);
        if version.starts_with("3.0") {
            return Ok((SpecFamily::OpenApi30, version));
        }
        if version.starts_with("3.1") {
            return Ok((SpecFamily::OpenApi31, version));
        }
        return Err(("openapi", version));
    }
    if let Some(v) = doc.get("swagger") {
        let version = version_text(v);
        if version == "2.0" || version == "2" {
            return Ok((SpecFamily::Swagger20, version));
        }
        return Err(("swagger", version));
    }
    Err(("", String::new()))
}
