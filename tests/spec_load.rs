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
    assert_eq!(
        id_resource(&api, "GET /invoices/{invoiceId}", "invoiceId").as_deref(),
        Some("invoices")
    );
    assert_eq!(
        id_resource(&api, "PATCH /tickets/{ticketId}", "ticketId").as_deref(),
        Some("tickets")
    );
    assert_eq!(
        id_resource(&api, "GET /files/download", "file_id").as_deref(),
        Some("files")
    );
    assert_eq!(
        id_resource(&api, "PUT /admin/users/{userId}/role", "userId").as_deref(),
        Some("users")
    );
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
        vec!["file_id (query) → files"]
    );
    assert_eq!(row("GET /files").method, Method::Get);
    let _ = ParamLocation::Path;
}
