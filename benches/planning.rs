//! Probes per second of the planner on a generated API: many resources (a collection, an
//! item read and an item write each), many tenants × roles, owned objects in every one.
//! Last line: `planning: N probes/s`.

use rolegrid::discover::{Object, ObjectCorpus};
use rolegrid::engagement::{Auth, Identity, Secret};
use rolegrid::matrix::Policy;
use rolegrid::plan::{plan, PlanInput};
use rolegrid::spec::{
    Api, MediaType, Method, Operation, ParamLocation, Parameter, RequestBody, Response, Security,
    SpecFamily,
};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn operation(method: Method, path: String, id: Option<(&str, &str)>, body: bool) -> Operation {
    let parameters = id
        .map(|(name, resource)| Parameter {
            name: name.to_string(),
            location: ParamLocation::Path,
            required: true,
            schema: Some(json!({"type": "integer"})),
            example: None,
            id_resource: Some(resource.to_string()),
        })
        .into_iter()
        .collect();
    let request_body = body.then(|| RequestBody {
        required: true,
        content: vec![MediaType {
            content_type: "application/json".into(),
            schema: Some(json!({
                "type": "object",
                "properties": {"subject": {"type": "string"}, "status": {"enum": ["open", "closed"]}}
            })),
            example: None,
        }],
    });
    Operation {
        method,
        path,
        operation_id: None,
        summary: None,
        tags: vec![],
        parameters,
        request_body,
        responses: vec![Response {
            status: "200".into(),
            content: vec![],
        }],
        security: Security::Required(vec![vec!["bearer".into()]]),
        body_ids: vec![],
        declared_safe: false,
    }
}

fn main() {
    let resources: usize = env_number("ROLEGRID_BENCH_RESOURCES", 40);
    let tenants: usize = env_number("ROLEGRID_BENCH_TENANTS", 8);
    let per_client: usize = env_number("ROLEGRID_BENCH_OBJECTS", 4);
    let seconds: f64 = env_number("ROLEGRID_BENCH_SECONDS", 3.0);

    let mut operations = Vec::new();
    let mut collections = BTreeMap::new();
    let mut matrix = String::from("operation,anonymous,client,staff,admin\n");
    for r in 0..resources {
        let name = format!("res{r}");
        let param = format!("res{r}Id");
        collections.insert(name.clone(), vec![operations.len()]);
        for (method, path, id, body) in [
            (Method::Get, format!("/{name}"), None, false),
            (
                Method::Get,
                format!("/{name}/{{{param}}}"),
                Some((param.as_str(), name.as_str())),
                false,
            ),
            (
                Method::Patch,
                format!("/{name}/{{{param}}}"),
                Some((param.as_str(), name.as_str())),
                true,
            ),
        ] {
            matrix.push_str(&format!("{method} {path},deny,own,tenant,allow\n"));
            operations.push(operation(method, path, id, body));
        }
    }
    // Some admin-only operations for escalation probes.
    for r in 0..resources / 4 {
        let path = format!("/admin/area{r}");
        matrix.push_str(&format!("GET {path},deny,deny,deny,allow\n"));
        operations.push(operation(Method::Get, path, None, false));
    }
    let api = Api {
        family: SpecFamily::OpenApi30,
        version: "3.0.3".into(),
        title: "generated".into(),
        servers: vec![],
        operations,
        security_schemes: BTreeMap::new(),
        collections,
        resources: BTreeMap::new(),
        document: serde_json::Value::Null,
    };

    let bearer = |name: &str, tenant: Option<String>, role: &str| Identity {
        name: name.into(),
        tenant,
        role: role.into(),
        attributes: Default::default(),
        auth: Auth::Header {
            name: "Authorization".into(),
            value: Secret::new("Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"),
        },
    };
    let mut identities = Vec::new();
    for t in 0..tenants {
        identities.push(bearer(
            &format!("client{t}"),
            Some(format!("t{t}")),
            "client",
        ));
        identities.push(bearer(&format!("staff{t}"), Some(format!("t{t}")), "staff"));
    }
    identities.push(bearer("root", None, "admin"));
    identities.push(Identity::anonymous());
    let roles: Vec<String> = identities.iter().map(|i| i.role.clone()).collect();
    let policy = Policy::parse(&matrix, Path::new("generated.csv"), &api, &roles, false)
        .expect("generated matrix");

    let mut objects = Vec::new();
    for r in 0..resources {
        for t in 0..tenants {
            for k in 0..per_client {
                objects.push(Object {
                    resource: format!("res{r}"),
                    id: json!(r * 1_000_000 + t * 1000 + k),
                    owner: 2 * t,
                    tenant: Some(format!("t{t}")),
                    fields: Default::default(),
                    parents: Vec::new(),
                });
            }
        }
    }
    let corpus = ObjectCorpus::new(objects);
    let input = PlanInput {
        allow_mutations: true,
        ..PlanInput::new(&api, &policy, &identities, &corpus, "bench")
    };

    println!(
        "generated: {} operations, {} identities, {} objects",
        api.operations.len(),
        identities.len(),
        corpus.objects.len()
    );
    // One warm-up call, then whole plans until the time is used.
    let per_plan = plan(&input).count();
    let started = Instant::now();
    let mut probes = 0usize;
    let mut plans = 0usize;
    while started.elapsed() < Duration::from_secs_f64(seconds) || plans == 0 {
        probes += plan(&input).map(std::hint::black_box).count();
        plans += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!("{plans} plans of {per_plan} probes in {elapsed:.2} s");
    println!("planning: {:.0} probes/s", probes as f64 / elapsed);
}
