//! Loads the hand-written fixture specs under `tests/fixtures/specs` and checks the model.

use rolegrid::spec::{self, Api, Method, ParamLocation, Security, SpecFamily};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/specs")
        .join(name)
}

fn load(name: &str) -> Api {
    match spec::load(&fixture(name)) {
        Ok(api) => api,
        Err(e) => panic!("{name} should load: {e}"),
    }
}

fn op<'a>(api: &'a Api, key: &str) -> &'a spec::Operation {
    api.operation(key)
        .unwrap_or_else(|| panic!("operation {key} missing"))
}

/// The schema of `key`'s first response (the success answer in these fixtures).
fn response_schema<'a>(api: &'a Api, key: &str) -> &'a serde_json::Value {
    op(api, key).responses[0].content[0]
        .schema
        .as_ref()
        .unwrap_or_else(|| panic!("{key}: the first response has no schema"))
}

/// Loading the fixture `name` fails: the error, and its message.
fn load_error(name: &str) -> (spec::SpecError, String) {
    match spec::load(&fixture(name)) {
        Ok(_) => panic!("{name} should not load"),
        Err(err) => {
            let text = err.to_string();
            (err, text)
        }
    }
}

/// The message names every part (a file, a pointer, a line).
fn assert_names(text: &str, parts: &[&str]) {
    for part in parts {
        assert!(text.contains(part), "`{part}` missing from: {text}");
    }
}

fn id_resource(api: &Api, key: &str, param: &str) -> Option<String> {
    op(api, key)
        .parameters
        .iter()
        .find(|p| p.name == param)
        .unwrap_or_else(|| panic!("{key} has no parameter {param}"))
        .id_resource
        .clone()
}

fn collection(api: &Api, resource: &str) -> Vec<String> {
    api.collections
        .get(resource)
        .map(|ixs| ixs.iter().map(|&i| api.operations[i].key()).collect())
        .unwrap_or_default()
}

#[test]
fn planner_example_ids_and_collections() {
    let api = load("portal-3.0.yaml");
    assert_eq!(api.family, SpecFamily::OpenApi30);
    assert_eq!(api.title, "Client portal");
    assert_eq!(api.servers, vec!["https://portal.example.test/api"]);
    for (key, param, resource) in [
        ("GET /invoices/{invoiceId}", "invoiceId", "invoices"),
        ("PATCH /tickets/{ticketId}", "ticketId", "tickets"),
        ("GET /files/download", "file_id", "files"),
        ("PUT /admin/users/{userId}/role", "userId", "users"),
    ] {
        assert_eq!(
            id_resource(&api, key, param).as_deref(),
            Some(resource),
            "{key} {param}"
        );
    }
    assert_eq!(collection(&api, "invoices"), vec!["GET /invoices"]);
    assert_eq!(collection(&api, "files"), vec!["GET /files"]);
    assert_eq!(collection(&api, "users"), vec!["GET /admin/users"]);
    assert_eq!(api.collections.len(), 3, "{:?}", api.collections);
}

#[test]
fn internal_refs_resolve_against_the_document() {
    let api = load("portal-3.0.yaml");
    let get = op(&api, "getInvoice");
    // The path-level parameter was a $ref and is merged into the operation.
    assert_eq!(get.path_params().count(), 1);
    let ok = get
        .responses
        .iter()
        .find(|r| r.status == "200")
        .expect("integer response code 200 is read as text");
    let schema = ok.content[0].schema.as_ref().expect("schema");
    assert_eq!(schema["$ref"], "#/components/schemas/Invoice");
    assert_eq!(api.resolve(schema)["type"], "object");
    let patch = op(&api, "updateTicket");
    let body = patch
        .json_body()
        .expect("json body from a $ref request body");
    assert!(patch.request_body.as_ref().is_some_and(|b| b.required));
    let resolved = api.resolve(body.schema.as_ref().expect("schema"));
    assert!(resolved["properties"]["status"].is_object());
}

#[test]
fn security_default_override_and_public() {
    let api = load("portal-3.0.yaml");
    assert_eq!(
        op(&api, "listInvoices").security,
        Security::Required(vec![vec!["bearerAuth".to_string()]])
    );
    assert_eq!(op(&api, "health").security, Security::Public);
    let scheme = &api.security_schemes["bearerAuth"];
    assert_eq!(scheme.kind, "http");
    assert_eq!(scheme.scheme.as_deref(), Some("bearer"));
}

#[test]
fn operation_summaries_state_capability() {
    let api = load("portal-3.0.yaml");
    let rows = spec::operation_summaries(&api);
    let row = |key: &str| {
        rows.iter()
            .find(|r| format!("{} {}", r.method, r.path) == key)
            .unwrap_or_else(|| panic!("no summary for {key}"))
    };
    assert_eq!(
        row("GET /invoices/{invoiceId}").capability.to_string(),
        "attackable"
    );
    assert_eq!(
        row("PATCH /tickets/{ticketId}").capability.to_string(),
        "needs object of tickets"
    );
    assert!(row("GET /health")
        .capability
        .to_string()
        .starts_with("skipped: "));
    assert_eq!(row("GET /invoices").security, "bearerAuth");
    assert_eq!(
        row("GET /files/download").id_params,
        vec!["file_id (query) → files ← GET /files (collection path)"]
    );
    assert_eq!(row("GET /files").method, Method::Get);
    let _ = ParamLocation::Path;
}

#[test]
fn json_servers_merging_and_security_alternatives() {
    let api = load("portal-3.0.json");
    assert_eq!(api.servers, vec!["https://json.example.test", "/relative"]);
    let get = op(&api, "getItem");
    let names: Vec<(String, ParamLocation)> = get
        .parameters
        .iter()
        .map(|p| (p.name.clone(), p.location))
        .collect();
    // Path-level order kept; the operation's `verbose` (query) replaced the shared one;
    // `verbose` in a header is a different parameter; the $ref'd header is merged.
    assert_eq!(
        names,
        vec![
            ("orderId".to_string(), ParamLocation::Path),
            ("verbose".to_string(), ParamLocation::Query),
            ("X-Request-ID".to_string(), ParamLocation::Header),
            ("verbose".to_string(), ParamLocation::Header),
            ("itemId".to_string(), ParamLocation::Path),
        ]
    );
    let verbose = &get.parameters[1];
    assert!(verbose.required);
    assert_eq!(
        verbose.schema.as_ref().map(|s| &s["type"]),
        Some(&"integer".into())
    );
    assert_eq!(
        id_resource(&api, "getItem", "orderId").as_deref(),
        Some("orders")
    );
    assert_eq!(
        id_resource(&api, "getItem", "itemId").as_deref(),
        Some("items")
    );
    assert_eq!(id_resource(&api, "getItem", "X-Request-ID"), None);
    // A `{}` alternative makes the operation public.
    assert_eq!(get.security, Security::Public);
    assert_eq!(
        op(&api, "DELETE /orders/{orderId}/items/{itemId}").security,
        Security::Required(vec![
            vec!["apiKey".to_string(), "oauth".to_string()],
            vec!["bearer".to_string()]
        ])
    );
    // No global security: public by default.
    let key = &api.security_schemes["apiKey"];
    assert_eq!(key.param_name.as_deref(), Some("X-Api-Key"));
    assert_eq!(key.location, Some(ParamLocation::Header));
}

#[test]
fn openapi_31_is_normalised_to_30_shape() {
    let api = load("typed-3.1.yaml");
    assert_eq!(api.family, SpecFamily::OpenApi31);
    let get = op(&api, "GET /accounts/{account_id}");
    let param = &get.parameters[0];
    let schema = param.schema.as_ref().expect("schema");
    assert_eq!(schema["type"], "string");
    assert_eq!(schema["nullable"], true);
    assert_eq!(param.id_resource.as_deref(), Some("accounts"));
    let account = api.resolve(response_schema(&api, "GET /accounts/{account_id}"));
    let props = &account["properties"];
    assert_eq!(props["balance"]["minimum"], 0);
    assert_eq!(props["balance"]["exclusiveMinimum"], true);
    assert_eq!(props["balance"]["maximum"], 1000);
    assert_eq!(props["balance"]["exclusiveMaximum"], true);
    assert_eq!(props["note"]["anyOf"][1]["type"], "integer");
    assert_eq!(props["kind"]["enum"][0], "personal");
    assert_eq!(props["tags"]["example"][0], "a");
    // Properties named like keywords are properties, not keywords.
    assert_eq!(props["const"]["type"], "boolean");
    assert_eq!(props["const"]["nullable"], true);
    assert!(
        props.get("enum").is_none(),
        "no keyword invented in `properties`"
    );
    assert_eq!(api.resolve(&props["default"])["type"], "boolean");
}

#[test]
fn webhooks_only_document_loads_with_no_operations() {
    let api = load("webhooks-only-3.1.yaml");
    assert_eq!(api.title, "Notifications");
    assert!(api.operations.is_empty());
}

#[test]
fn swagger_20_body_formdata_and_servers() {
    let api = load("petstore-2.0.yaml");
    assert_eq!(api.family, SpecFamily::Swagger20);
    assert_eq!(api.version, "2.0");
    assert_eq!(
        api.servers,
        vec![
            "https://pets.example.test/v2",
            "http://pets.example.test/v2"
        ]
    );
    let post = op(&api, "POST /pets");
    assert!(post.parameters.is_empty(), "the body is not a parameter");
    let body = post.json_body().expect("json body");
    assert_eq!(
        body.schema.as_ref().map(|s| &s["$ref"]),
        Some(&"#/components/schemas/Pet".into())
    );
    assert!(post.request_body.as_ref().is_some_and(|b| b.required));

    let photo = op(&api, "POST /pets/{petId}/photo");
    let body = photo.request_body.as_ref().expect("form body");
    assert_eq!(body.content[0].content_type, "multipart/form-data");
    let schema = body.content[0].schema.as_ref().expect("schema");
    assert_eq!(schema["properties"]["file"]["format"], "binary");
    assert_eq!(schema["required"][0], "file");
    assert_eq!(photo.parameters.len(), 1);
    let pet_id = &photo.parameters[0];
    assert_eq!(pet_id.id_resource.as_deref(), Some("pets"));
    assert_eq!(
        api.resolve(pet_id.schema.as_ref().expect("schema"))["format"],
        "int64"
    );

    let get = op(&api, "GET /pets/{petId}");
    assert_eq!(get.security, Security::Public);
    assert_eq!(get.path_params().count(), 1);
    let schema = response_schema(&api, "GET /pets/{petId}");
    assert_eq!(api.resolve(schema)["type"], "object");
    assert_eq!(
        op(&api, "GET /pets").security,
        Security::Required(vec![vec!["key".to_string()]])
    );
    assert_eq!(api.security_schemes["basicAuth"].kind, "http");
    assert_eq!(
        api.security_schemes["basicAuth"].scheme.as_deref(),
        Some("basic")
    );
    assert_eq!(api.collections["pets"].len(), 1);
}

#[test]
fn multi_file_refs_in_nested_folders_are_bundled() {
    let api = load("multi/root.yaml");
    assert_eq!(api.operations.len(), 2);
    let get = op(&api, "GET /invoices/{invoiceId}");
    assert_eq!(get.parameters[0].id_resource.as_deref(), Some("invoices"));
    let schema = response_schema(&api, "GET /invoices/{invoiceId}");
    let reference = schema["$ref"].as_str().expect("a local ref");
    assert!(
        reference.starts_with(&format!("#/{}/", spec::EXTERNAL_KEY)),
        "{reference}"
    );
    let invoice = api.resolve(schema);
    assert_eq!(
        api.resolve(&invoice["properties"]["total"])["properties"]["currency"]["type"],
        "string"
    );
    // A ref back into the root file becomes a plain local ref.
    assert_eq!(
        invoice["properties"]["total_again"]["$ref"],
        "#/components/schemas/Money"
    );
    let line = api.resolve(&invoice["properties"]["lines"]["items"]);
    assert_eq!(api.resolve(&line["properties"]["invoice"]), invoice);
    // The listing uses the same shared copy, not a second one.
    let items = &response_schema(&api, "GET /invoices")["items"];
    assert_eq!(items["$ref"].as_str(), Some(reference));
}

#[test]
fn cross_file_ref_cycles_terminate() {
    let api = load("cycle/root.yaml");
    let node = api.resolve(response_schema(&api, "GET /nodes"));
    let wrapper = api.resolve(&node["properties"]["children"]["items"]);
    assert_eq!(api.resolve(&wrapper["properties"]["node"]), node);
    assert_eq!(api.resolve(&wrapper["properties"]["self"]), wrapper);
}

#[test]
fn missing_external_target_names_the_referring_file_and_pointer() {
    let (missing_file, text) = load_error("broken/missing-file.yaml");
    assert_names(
        &text,
        &[
            "missing-file.yaml at /paths/~1things/get/responses/200",
            "schemas/nowhere.yaml",
        ],
    );
    let (missing_fragment, text) = load_error("broken/missing-fragment.yaml");
    assert_names(
        &text,
        &[
            "missing-fragment.yaml at /paths/~1things",
            "/paths/~1others",
        ],
    );
    assert!(
        matches!(missing_file, spec::SpecError::RefTargetUnreadable { .. })
            && matches!(missing_fragment, spec::SpecError::RefFragmentMissing { .. }),
        "{missing_file:?} / {missing_fragment:?}"
    );
}

#[test]
fn invalid_yaml_reports_file_and_line() {
    let (err, text) = load_error("broken/tabs.yaml");
    match &err {
        spec::SpecError::Yaml { line, .. } => assert_eq!(*line, 8, "{err}"),
        other => panic!("expected a YAML error, got {other:?}"),
    }
    assert_names(&text, &["tabs.yaml:8:"]);

    let (err, _) = load_error("broken/not-openapi.yaml");
    assert!(matches!(err, spec::SpecError::NotOpenApi { .. }), "{err:?}");

    let err = spec::load_str("openapi: 4.0.0\n", Path::new("future.yaml")).expect_err("must fail");
    assert!(err.to_string().contains("future.yaml at /openapi"), "{err}");

    let (err, _) = load_error("no-such-file.yaml");
    assert!(matches!(err, spec::SpecError::Io { .. }), "{err:?}");
}

#[test]
fn load_str_resolves_relative_to_origin() {
    let text = "openapi: 3.0.0\ninfo: {title: t, version: '1'}\npaths:\n  /invoices:\n    $ref: paths/billing/invoices.yaml\n";
    let api = spec::load_str(text, &fixture("multi/virtual.yaml")).expect("loads");
    assert_eq!(api.operations.len(), 1);
}
