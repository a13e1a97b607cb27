//! Planner tests on the demo portal's spec and matrix with a hand-made object corpus.

use super::*;
use crate::discover::{Object, ObjectCorpus};
use crate::engagement::{Auth, Identity, Secret};
use crate::matrix::Policy;
use crate::request::Credential;
use serde_json::json;
use std::path::Path;

fn identity(name: &str, tenant: Option<&str>, role: &str, cookie: bool) -> Identity {
    let auth = if cookie {
        Auth::Cookie {
            name: "portal_session".into(),
            value: Secret::new("c"),
        }
    } else {
        Auth::Header {
            name: "Authorization".into(),
            value: Secret::new("Bearer t"),
        }
    };
    Identity {
        name: name.into(),
        tenant: tenant.map(str::to_string),
        role: role.into(),
        attributes: Default::default(),
        auth,
    }
}

fn object(resource: &str, id: serde_json::Value, owner: usize, tenant: Option<&str>) -> Object {
    Object {
        resource: resource.into(),
        id,
        owner,
        tenant: tenant.map(str::to_string),
        fields: Default::default(),
        parents: Vec::new(),
    }
}

struct Fixture {
    api: Api,
    policy: Policy,
    identities: Vec<Identity>,
    corpus: ObjectCorpus,
}

fn fixture() -> Fixture {
    let api = crate::spec::demo_api();
    let identities = vec![
        identity("alice", Some("acme"), "client", false),
        identity("bob", Some("globex"), "client", true),
        identity("carol", Some("acme"), "staff", false),
        identity("root", None, "admin", false),
        Identity::anonymous(),
    ];
    let policy = Policy::parse(
        crate::demo_scan::DEMO_MATRIX,
        Path::new("m.csv"),
        &api,
        &crate::inputs::roles(&identities),
        false,
    )
    .expect("matrix");
    let mut corpus = ObjectCorpus::new(vec![
        object("invoices", json!(1001), 0, Some("acme")),
        object("invoices", json!(2001), 1, Some("globex")),
        object("tickets", json!(501), 0, Some("acme")),
        object("tickets", json!(502), 1, Some("globex")),
        object(
            "files",
            json!("aaaaaaaa-0000-4000-8000-000000000001"),
            0,
            Some("acme"),
        ),
        object(
            "files",
            json!("bbbbbbbb-0000-4000-8000-000000000002"),
            1,
            Some("globex"),
        ),
        object("users", json!(1), 3, None),
    ]);
    // The canaries a scan with mutations would create: writes and deletes aim only at them.
    let canaries = crate::discover::canary::plan(&api, &policy, &identities, 1000);
    for (n, order) in canaries.orders.iter().enumerate() {
        let mut o = object(
            &order.resource,
            json!(9000 + n),
            order.creator,
            identities[order.creator].tenant.as_deref(),
        );
        if let Some(tenant) = &o.tenant {
            o.fields.insert("tenant_id".into(), json!(tenant));
        }
        corpus.add_canary(o, order.tag);
    }
    Fixture {
        api,
        policy,
        identities,
        corpus,
    }
}

fn plan_of(f: &Fixture, allow_mutations: bool) -> Vec<Probe> {
    plan_with_tokens(f, allow_mutations, Vec::new())
}

fn plan_with_tokens(f: &Fixture, allow_mutations: bool, tokens: Vec<TokenFacts>) -> Vec<Probe> {
    let input = PlanInput {
        allow_mutations,
        tokens,
        ..PlanInput::new(&f.api, &f.policy, &f.identities, &f.corpus, "t")
    };
    plan(&input).collect()
}

fn op_key(f: &Fixture, p: &Probe) -> String {
    f.api.operations[p.op].key()
}

/// The index of the operation `key` ("METHOD /path") in the demo spec.
fn op_index(f: &Fixture, key: &str) -> usize {
    f.api
        .operations
        .iter()
        .position(|o| o.key() == key)
        .unwrap_or_else(|| panic!("no operation {key} in the demo spec"))
}

/// The planned probes of one attack kind, in plan order.
fn planned(f: &Fixture, allow_mutations: bool, attack: Attack) -> Vec<Probe> {
    plan_of(f, allow_mutations)
        .into_iter()
        .filter(|p| p.attack == attack)
        .collect()
}

/// [`planned`], which must not be empty: a test that checks every probe of an attack the
/// fixture no longer plans would pass on nothing.
fn planned_some(f: &Fixture, allow_mutations: bool, attack: Attack) -> Vec<Probe> {
    let probes = planned(f, allow_mutations, attack);
    assert!(!probes.is_empty(), "the fixture plans no {attack:?} probe");
    probes
}

#[test]
fn id_swap_aims_only_at_objects_the_actor_may_not_reach() {
    let f = fixture();
    let swaps = planned_some(&f, true, Attack::IdSwap);
    for p in &swaps {
        let o = &f.corpus.objects[p.object.expect("object")];
        assert_ne!(o.owner, p.actor);
        if p.access == Access::Tenant {
            assert_ne!(f.identities[p.actor].tenant, o.tenant, "{p:?}");
        }
        assert_eq!(p.baseline, Some(o.owner));
    }
    // The swaps `actor` sends to `op` that carry no baseline request of their own.
    let plain_swaps = |actor: usize, op: &str| -> Vec<&Probe> {
        swaps
            .iter()
            .filter(|p| p.baseline_request.is_none() && p.actor == actor && op_key(&f, p) == op)
            .collect()
    };
    let alice_invoice: Vec<String> = plain_swaps(0, "GET /invoices/{invoiceId}")
        .iter()
        .map(|p| p.request.path.clone())
        .collect();
    assert_eq!(alice_invoice, vec!["/invoices/2001"]);
    let bob_file: Vec<_> = plain_swaps(1, "GET /files/download")
        .iter()
        .map(|p| p.request.query.clone())
        .collect();
    assert_eq!(
        bob_file,
        vec![vec![(
            "file_id".to_string(),
            "aaaaaaaa-0000-4000-8000-000000000001".to_string()
        )]]
    );
}

#[test]
fn writes_only_when_allowed_and_always_last_with_a_read_back() {
    let f = fixture();
    assert!(plan_of(&f, false)
        .iter()
        .all(|p| f.api.operations[p.op].is_read_only() && p.write.is_none()));
    let probes = plan_of(&f, true);
    let first_write = probes
        .iter()
        .position(|p| p.write.is_some())
        .expect("some writes");
    assert!(probes[first_write..].iter().all(|p| p.write.is_some()));
    let patch = probes
        .iter()
        .find(|p| op_key(&f, p) == "PATCH /tickets/{ticketId}" && p.attack == Attack::IdSwap)
        .expect("ticket write swap");
    let write = patch.write.as_ref().expect("write check");
    assert_eq!(
        write.readback.as_ref().map(|r| r.path.as_str()),
        Some(patch.request.path.as_str())
    );
    assert!(patch
        .request
        .json
        .as_ref()
        .is_some_and(|b| b.to_string().contains(&write.marker)));
    let note = probes
        .iter()
        .find(|p| op_key(&f, p) == "POST /tickets/{ticketId}/notes" && p.attack == Attack::IdSwap)
        .expect("note write swap");
    let readback = note
        .write
        .as_ref()
        .and_then(|w| w.readback.as_ref())
        .expect("parent read-back");
    assert_eq!(format!("{}/notes", readback.path), note.request.path);
}

#[test]
fn id_swap_variants_spell_the_victims_id_otherwise() {
    let f = fixture();
    let probes = plan_of(&f, false);
    let swaps = |actor: usize, key: &str| -> Vec<&Probe> {
        probes
            .iter()
            .filter(|p| p.attack == Attack::IdSwap && p.actor == actor && op_key(&f, p) == key)
            .collect()
    };
    let invoice = swaps(0, "GET /invoices/{invoiceId}");
    let paths: Vec<&str> = invoice.iter().map(|p| p.request.path.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            "/invoices/2001",
            "/invoices/02001",
            "/invoices/%32%30%30%31"
        ]
    );
    // Variants compare with the owner's plain request and are judged on the victim's
    // object alone; the plain swap is judged as before.
    assert!(!invoice[0].proves_by_victim_object());
    for p in &invoice[1..] {
        assert_eq!(p.baseline_request.as_ref(), Some(&invoice[0].request));
        assert!(p.proves_by_victim_object() && p.detail.contains("path parameter `invoiceId`, ID"));
    }
    // A UUID in a query: case changed, percent-encoded (carried verbatim in the path),
    // and `file_id[]=`; leading zeros do not apply to it.
    let file = swaps(1, "GET /files/download");
    let urls: Vec<String> = file.iter().map(|p| p.request.path_and_query()).collect();
    let id = "aaaaaaaa-0000-4000-8000-000000000001";
    let percent: String = id.bytes().map(|b| format!("%{b:02X}")).collect();
    assert_eq!(
        urls,
        vec![
            format!("/files/download?file_id={id}"),
            format!("/files/download?file_id={}", id.to_ascii_uppercase()),
            format!("/files/download?file_id={percent}"),
            format!("/files/download?file_id%5B%5D={id}"),
        ]
    );
}

#[test]
fn body_ids_are_swapped_alone_mixed_and_encoded() {
    let f = fixture();
    // `POST /statements` is declared safe: planned without mutations, never as a write.
    let probes = plan_of(&f, false);
    let statements: Vec<&Probe> = probes
        .iter()
        .filter(|p| p.attack == Attack::IdSwap && op_key(&f, p) == "POST /statements")
        .collect();
    let alice: Vec<(serde_json::Value, &str)> = statements
        .iter()
        .filter(|p| p.actor == 0)
        .map(|p| {
            (
                p.request.json.clone().unwrap_or_default(),
                p.detail.as_str(),
            )
        })
        .collect();
    assert_eq!(
        alice,
        vec![
            (
                json!({"invoice_ids": [2001]}),
                "body property `invoice_ids` (array)"
            ),
            (
                json!({"invoice_ids": [1001, 2001]}),
                "body property `invoice_ids` (array), victim's ID after the actor's own"
            ),
            (
                json!({"invoice_ids": ["02001"]}),
                "body property `invoice_ids` (array), ID with leading zeros"
            ),
            (
                json!({"invoice_ids": [{"id": 2001}]}),
                "body property `invoice_ids` (array), ID wrapped in an object {\"id\": …}"
            ),
        ]
    );
    // Acme's callers (alice, carol) aim at globex's invoice, owned by bob.
    for p in statements.iter().filter(|p| p.actor != 1) {
        assert!(
            p.write.is_none() && p.baseline == Some(1) && p.object == Some(1),
            "{p:?}"
        );
    }
}

#[test]
fn header_ids_are_swapped_but_tenant_headers_are_left_alone() {
    let spec = r#"
openapi: 3.0.3
info: {title: t, version: "1"}
paths:
  /invoices:
    get:
      responses: {'200': {description: ok}}
  /payments/preview:
    get:
      parameters:
        - {name: X-Invoice-Id, in: header, required: true, schema: {type: string}}
        - {name: X-Tenant-Id, in: header, schema: {type: string}}
      responses: {'200': {description: ok}}
"#;
    let api = crate::spec::load_str(spec, Path::new("t.yaml")).expect("spec");
    let identities = vec![
        identity("alice", Some("acme"), "client", false),
        identity("bob", Some("globex"), "client", false),
    ];
    let roles: Vec<String> = identities.iter().map(|i| i.role.clone()).collect();
    let matrix = "operation,client\nGET /invoices,own\nGET /payments/preview,own\n";
    let policy = Policy::parse(matrix, Path::new("m.csv"), &api, &roles, false).expect("matrix");
    let corpus = ObjectCorpus::new(vec![
        object("invoices", json!("inv-a"), 0, Some("acme")),
        object("invoices", json!("inv-b"), 1, Some("globex")),
    ]);
    let input = PlanInput::new(&api, &policy, &identities, &corpus, "t");
    let swaps: Vec<(Vec<(String, String)>, String)> = plan(&input)
        .filter(|p| p.attack == Attack::IdSwap && p.actor == 0)
        .map(|p| (p.request.headers, p.detail))
        .collect();
    let header = |v: &str| vec![("X-Invoice-Id".to_string(), v.to_string())];
    assert_eq!(
        swaps,
        vec![
            (header("inv-b"), "header `X-Invoice-Id`".to_string()),
            (
                header("INV-B"),
                "header `X-Invoice-Id`, ID with its letter case changed".to_string()
            ),
        ]
    );
}

#[test]
fn plan_is_deterministic() {
    let f = fixture();
    let a: Vec<String> = plan_of(&f, true).iter().map(|p| format!("{p:?}")).collect();
    let b: Vec<String> = plan_of(&f, true).iter().map(|p| format!("{p:?}")).collect();
    assert_eq!(a, b);
    assert!(a
        .iter()
        .enumerate()
        .all(|(i, p)| p.starts_with(&format!("Probe {{ id: {i},"))));
}

#[test]
fn no_auth_escalation_and_bad_auth_cover_their_operations() {
    let f = fixture();
    let probes = plan_of(&f, false);
    let ops = |attack: Attack| -> std::collections::BTreeSet<String> {
        probes
            .iter()
            .filter(|p| p.attack == attack)
            .map(|p| op_key(&f, p))
            .collect()
    };
    let no_auth = ops(Attack::NoAuth);
    assert!(no_auth.contains("GET /export/invoices.csv") && no_auth.contains("GET /me"));
    assert!(!no_auth.contains("POST /auth/login"));
    assert!(ops(Attack::Escalation).contains("GET /admin/users"));
    assert!(probes
        .iter()
        .filter(|p| p.attack == Attack::Escalation)
        .all(|p| f.identities[p.actor].role != "admin"));
    // Forgeries need a header token: bob logs in with a cookie.
    assert!(probes
        .iter()
        .filter(|p| p.attack == Attack::BadAuth)
        .all(|p| p.actor != 1));
    assert!(ops(Attack::BadAuth).contains("GET /me"));
    let leaks = ops(Attack::ListLeak);
    assert!(leaks.contains("GET /search") && leaks.contains("GET /invoices"));
}

#[test]
fn mass_assignment_targets_own_objects_with_privileged_fields() {
    let f = fixture();
    assert!(planned(&f, false, Attack::MassAssignment).is_empty());
    let mass = planned(&f, true, Attack::MassAssignment);
    let ops: std::collections::BTreeSet<String> = mass.iter().map(|p| op_key(&f, p)).collect();
    assert!(ops.contains("PATCH /tickets/{ticketId}"), "{ops:?}");
    for p in &mass {
        let o = &f.corpus.objects[p.object.expect("object")];
        assert_eq!(o.owner, p.actor, "{p:?}");
        let write = p.write.as_ref().expect("write");
        assert!(write.readback.is_some());
        let Confirm::Fields(fields) = &write.confirm else {
            panic!("mass assignment confirms fields: {p:?}");
        };
        let body = p.request.json.as_ref().expect("body");
        for (name, value) in fields {
            assert_ne!(
                name, "owner_id",
                "the caller's own object is never handed away"
            );
            assert_eq!(body.get(name), Some(value));
            assert!(!value.to_string().contains(PLACEHOLDER_MARKER), "{value}");
        }
    }
    let patch = mass
        .iter()
        .find(|p| op_key(&f, p) == "PATCH /tickets/{ticketId}")
        .expect("patch");
    let body = patch.request.json.as_ref().expect("body");
    assert_eq!(body["role"], "admin");
    assert!(body.get("tenant_id").is_some() && body.get("owner_id").is_none());
    assert!(body.get("subject").is_some(), "the normal body stays");
}

#[test]
fn param_pollution_sends_both_orders_and_compares_with_the_plain_request() {
    let f = fixture();
    let pollution = planned_some(&f, false, Attack::ParamPollution);
    let alice: Vec<&Probe> = pollution.iter().filter(|p| p.actor == 0).collect();
    assert_eq!(alice.len(), 2);
    let (mine, theirs) = (
        "aaaaaaaa-0000-4000-8000-000000000001".to_string(),
        "bbbbbbbb-0000-4000-8000-000000000002".to_string(),
    );
    let id = "file_id".to_string();
    assert_eq!(
        alice[0].request.query,
        vec![(id.clone(), mine.clone()), (id.clone(), theirs.clone())]
    );
    assert_eq!(
        alice[1].request.query,
        vec![(id.clone(), theirs.clone()), (id.clone(), mine)]
    );
    for p in &alice {
        assert_eq!(op_key(&f, p), "GET /files/download");
        assert_eq!(p.baseline, Some(1));
        let plain = p.baseline_request.as_ref().expect("plain request");
        assert_eq!(plain.query, vec![(id.clone(), theirs.clone())]);
    }
}

#[test]
fn method_override_posts_denied_operations_with_each_variant() {
    let f = fixture();
    assert!(planned(&f, false, Attack::MethodOverride).is_empty());
    let over = planned_some(&f, true, Attack::MethodOverride);
    for p in &over {
        assert_eq!(p.request.method, Method::Post);
        assert_eq!(p.access, Access::Deny);
        assert_ne!(f.identities[p.actor].role, "admin");
    }
    let role: Vec<&Probe> = over
        .iter()
        .filter(|p| op_key(&f, p) == "PUT /admin/users/{userId}/role" && p.actor == 0)
        .collect();
    assert_eq!(role.len(), 4);
    assert!(role[0]
        .request
        .headers
        .contains(&("X-HTTP-Method-Override".into(), "PUT".into())));
    assert!(role[3]
        .request
        .query
        .contains(&("_method".into(), "PUT".into())));
    let write = role[0].write.as_ref().expect("a write");
    assert_eq!(write.confirm, Confirm::AnyChange);
    let target = role[0].object.expect("a user");
    assert!(f.corpus.canary(target).is_some(), "writes aim at canaries");
    assert_eq!(
        write.readback.as_ref().map(|r| r.path.clone()),
        Some(format!(
            "/admin/users/{}",
            f.corpus.objects[target].id_text()
        ))
    );
    // A denied read is compared with the legitimate caller's plain GET.
    let read = over
        .iter()
        .find(|p| op_key(&f, p) == "GET /admin/users")
        .expect("denied read");
    assert!(read.write.is_none());
    assert_eq!(
        read.baseline_request.as_ref().map(|r| r.method),
        Some(Method::Get)
    );
}

#[test]
fn malformed_bodies_are_deterministic_distinct_and_replayable() {
    let f = fixture();
    let bad = planned(&f, true, Attack::Malformed);
    let notes: Vec<&Probe> = bad
        .iter()
        .filter(|p| op_key(&f, p) == "POST /tickets/{ticketId}/notes")
        .collect();
    assert!(notes.len() >= 8, "{}", notes.len());
    let bodies: Vec<String> = notes
        .iter()
        .map(|p| {
            p.request
                .json
                .as_ref()
                .map(|b| b.to_string())
                .unwrap_or_default()
        })
        .collect();
    let unique: std::collections::BTreeSet<&String> = bodies.iter().collect();
    assert_eq!(unique.len(), bodies.len());
    assert!(notes.iter().any(|p| p
        .request
        .json
        .as_ref()
        .is_some_and(|b| b.get("text").is_some_and(|t| !t.is_string()))));
    for p in &bad {
        assert!(p.malformed.is_some() && p.write.is_some());
        // Where the object can be read back, the check looks for the invalid fields stored;
        // otherwise only the status counts.
        let w = p.write.as_ref().expect("write");
        match &w.confirm {
            Confirm::Fields(fields) => {
                assert!(w.readback.is_some() && !fields.is_empty(), "{p:?}");
                let body = p.request.json.as_ref().expect("body");
                assert!(fields.iter().all(|(k, v)| body.get(k) == Some(v)), "{p:?}");
            }
            _ => assert!(w.readback.is_none(), "{p:?}"),
        }
    }
    // The role route never receives a valid role from the fuzzer.
    for p in bad
        .iter()
        .filter(|p| op_key(&f, p) == "PUT /admin/users/{userId}/role")
    {
        let role = p.request.json.as_ref().and_then(|b| b.get("role"));
        assert!(
            !matches!(
                role.and_then(|r| r.as_str()),
                Some("client" | "staff" | "admin")
            ),
            "{role:?}"
        );
    }
}

#[test]
fn weak_secret_probes_only_for_tokens_that_verified_offline() {
    use crate::request::{ClaimSwap, Forgery};
    let f = fixture();
    let is_weak =
        |p: &Probe| matches!(p.credential, Credential::Forged(Forgery::WeakSecret { .. }));
    // No weak key found offline: not one request is planned for it.
    assert!(!plan_of(&f, true).iter().any(is_weak));
    let jwt = TokenFacts {
        weak_secret: None,
        subject: true,
        role_claim: true,
        not_jwt: false,
    };
    let weak = TokenFacts {
        weak_secret: Some(7),
        ..jwt.clone()
    };
    // alice's key is weak; root (the admin) has a subject to claim.
    let tokens = vec![weak, TokenFacts::default(), jwt.clone(), jwt];
    let probes: Vec<Probe> = plan_with_tokens(&f, true, tokens)
        .into_iter()
        .filter(is_weak)
        .collect();
    let seen: Vec<(String, usize, Credential, Option<usize>)> = probes
        .iter()
        .map(|p| (op_key(&f, p), p.actor, p.credential, p.baseline))
        .collect();
    let forged = |claim| Credential::Forged(Forgery::WeakSecret { line: 7, claim });
    assert_eq!(
        seen,
        vec![
            (
                "GET /admin/users".to_string(),
                0,
                forged(ClaimSwap::Subject(3)),
                Some(3)
            ),
            (
                "GET /admin/users".to_string(),
                0,
                forged(ClaimSwap::Role(3)),
                Some(3)
            ),
        ],
        "one denied read, claiming the admin's subject, then its role"
    );
    assert!(probes
        .iter()
        .all(|p| !p.expect_granted && p.attack == Attack::BadAuth));
    assert!(
        probes[0].detail.contains("your-256-bit-secret"),
        "{}",
        probes[0].detail
    );
}

#[test]
fn existence_leak_pairs_a_foreign_object_with_a_made_up_id_on_reads_only() {
    let f = fixture();
    let leaks = planned_some(&f, true, Attack::ExistenceLeak);
    for p in &leaks {
        assert!(f.api.operations[p.op].method.is_safe(), "{p:?}");
        assert!(!f.identities[p.actor].is_anonymous());
        assert_eq!(
            p.baseline,
            Some(p.actor),
            "the caller itself asks for the made-up ID"
        );
        let o = &f.corpus.objects[p.object.expect("object")];
        assert_ne!(o.owner, p.actor);
        let missing = p.baseline_request.as_ref().expect("made-up request");
        assert_ne!(missing, &p.request);
        assert_eq!(missing.method, p.request.method);
    }
    let key = |actor: usize, op: &str| {
        leaks
            .iter()
            .find(|p| p.actor == actor && op_key(&f, p) == op)
            .map(|p| {
                let m = p.baseline_request.as_ref().expect("made-up request");
                (p.request.path_and_query(), m.path_and_query())
            })
    };
    // alice (client, acme) against bob's ticket; the made-up ID is a far larger integer.
    let (foreign, missing) = key(0, "GET /tickets/{ticketId}").expect("ticket probe");
    assert_eq!(foreign, "/tickets/502");
    let made_up: u64 = missing
        .trim_start_matches("/tickets/")
        .parse()
        .expect("an integer");
    assert!(made_up > 5020, "{missing}");
    // A UUID file ID gets a UUID-shaped made-up ID in the same query parameter.
    let (_, missing) = key(0, "GET /files/download").expect("file probe");
    let id = missing.trim_start_matches("/files/download?file_id=");
    assert_eq!((id.len(), id.matches('-').count()), (36, 4), "{missing}");
    // The admin may read everything: nothing is kept from it.
    assert!(leaks.iter().all(|p| p.actor != 3));
    // Without mutations the reads are still planned (existence-leak never writes).
    let reads_only = plan_of(&f, false);
    assert_eq!(
        reads_only
            .iter()
            .filter(|p| p.attack == Attack::ExistenceLeak)
            .count(),
        leaks.len()
    );
}

#[test]
fn writes_and_deletes_aim_only_at_canaries_and_deletes_at_their_own() {
    let f = fixture();
    let probes = plan_of(&f, true);
    let mut deletes = 0;
    let mut used = std::collections::BTreeSet::new();
    for p in probes
        .iter()
        .filter(|p| !f.api.operations[p.op].is_read_only())
    {
        let Some(index) = p.object else { continue };
        let tag = f
            .corpus
            .canary(index)
            .unwrap_or_else(|| panic!("not a canary: {p:?}"));
        if f.api.operations[p.op].method == Method::Delete {
            deletes += 1;
            assert_eq!(tag.reserved, Some((p.op, p.actor)), "{p:?}");
            assert_eq!(
                p.write.as_ref().map(|w| w.confirm.clone()),
                Some(Confirm::Gone)
            );
            if p.attack != Attack::MethodOverride {
                assert!(used.insert(index), "two deletes aim at one canary: {p:?}");
            }
        } else {
            assert_eq!(tag.reserved, None, "{p:?}");
        }
    }
    assert!(deletes > 0);
    // Reads never aim at canaries, and deletes come last.
    assert!(probes
        .iter()
        .filter(|p| f.api.operations[p.op].is_read_only())
        .all(|p| p.object.is_none_or(|i| f.corpus.canary(i).is_none())));
    let first_delete = probes
        .iter()
        .position(|p| f.api.operations[p.op].method == Method::Delete)
        .expect("a delete");
    assert!(probes[first_delete..]
        .iter()
        .all(|p| f.api.operations[p.op].method == Method::Delete));
}

#[test]
fn without_canaries_writes_are_not_planned_and_the_gap_says_why() {
    let mut f = fixture();
    let discovered: Vec<Object> = f
        .corpus
        .objects
        .iter()
        .enumerate()
        .filter(|(i, _)| f.corpus.canary(*i).is_none())
        .map(|(_, o)| o.clone())
        .collect();
    f.corpus = ObjectCorpus::new(discovered);
    f.corpus
        .set_canary_gap("tickets", "canary creation failed: 403".into());
    let input = PlanInput {
        allow_mutations: true,
        ..PlanInput::new(&f.api, &f.policy, &f.identities, &f.corpus, "t")
    };
    assert!(plan(&input).all(|p| f.api.operations[p.op].is_read_only() || p.object.is_none()));
    let gaps = canary_gaps(&input);
    let patch = op_index(&f, "PATCH /tickets/{ticketId}");
    assert_eq!(
        gaps.get(&(patch, "client".to_string())).map(String::as_str),
        Some("canary creation failed: 403")
    );
    let role = op_index(&f, "PUT /admin/users/{userId}/role");
    assert!(gaps
        .get(&(role, "staff".to_string()))
        .is_some_and(|r| r.contains("no canary users")));
    let input = PlanInput {
        allow_mutations: false,
        ..input
    };
    assert!(canary_gaps(&input).is_empty());
}

#[test]
fn writes_name_the_objects_own_references_and_keep_one_marker() {
    let mut owner = identity("alice", Some("acme"), "client", false);
    owner
        .attributes
        .insert("email".into(), json!("alice@acme.test"));
    let mut order = object("orders", json!("o-7"), 0, Some("acme"));
    order.fields.insert("user_id".into(), json!(41));
    order.fields.insert("title".into(), json!("Spring order"));
    let marker = PLACEHOLDER_MARKER;
    let known = |field: &str| {
        order
            .fields
            .get(field)
            .or_else(|| owner.attributes.get(field))
    };
    let mut body = json!({"user_id": 1, "email": marker, "title": marker, "note": 3});
    crate::discover::use_own_values(&mut body, marker, known);
    // References come from the object, then its owner; the descriptive field keeps the marker.
    assert_eq!(
        body,
        json!({"user_id": 41, "email": "alice@acme.test", "title": marker, "note": 3})
    );
    // When the only marker-carrying field is a reference, it stays the marker.
    let mut only = json!({"email": marker});
    crate::discover::use_own_values(&mut only, marker, known);
    assert_eq!(only, json!({"email": marker}));
}

#[test]
fn creates_may_name_a_parent_or_another_identity_account_but_no_other_discovered_object() {
    let api = crate::spec::test_api(
        "paths:\n  /orgs/{org}/orders:\n    parameters: [{name: org, in: path, required: true, schema: {type: string}}]\n    get:\n      responses: {'200': {description: ok, content: {application/json: {schema: {type: array, items: {type: object, properties: {id: {type: integer}, userId: {type: string}}}}}}}}\n    post:\n      requestBody: {content: {application/json: {schema: {type: object, properties: {userId: {type: string}, account_id: {type: integer}}}}}}\n      responses: {'201': {description: ok}}\n  /users/{id}:\n    get:\n      parameters: [{name: id, in: path, required: true, schema: {type: string}}]\n      responses: {'200': {description: ok}}\n  /accounts/{account_id}:\n    get:\n      parameters: [{name: account_id, in: path, required: true, schema: {type: integer}}]\n      responses: {'200': {description: ok}}\n",
    );
    let roles = ["user".to_string()];
    let csv = "operation,user\nGET /orgs/{org}/orders,own\nPOST /orgs/{org}/orders,own\nGET /users/{id},own\nGET /accounts/{account_id},own\n";
    let policy = Policy::parse(csv, Path::new("m.csv"), &api, &roles, false).expect("matrix");
    let mut ann = identity("ann", Some("acme"), "user", false);
    ann.attributes.insert("_id".into(), json!("u-ann"));
    let bob = identity("bob", Some("zenith"), "user", false);
    let corpus = ObjectCorpus::new(vec![
        object("orgs", json!("zenith"), 1, Some("zenith")),
        object("users", json!("u-ann"), 0, Some("acme")),
        object("accounts", json!(7), 0, Some("acme")),
    ]);
    let identities = [ann, bob];
    let input = PlanInput::new(&api, &policy, &identities, &corpus, "t");
    let create = op_index_of(&api, "POST /orgs/{org}/orders");
    // The org in the path is a parent; ann's account is an identity's; account 7 is a
    // discovered object a create could move money from: never written through.
    assert!(input.may_target(create, 0, 0));
    assert!(input.may_target(create, 1, 1));
    assert!(!input.may_target(create, 1, 2));
    // A PUT beside a GET that shows one thing is an update: no parent is written through.
    let api = crate::spec::test_api(
        "paths:\n  /users/{id}/role:\n    parameters: [{name: id, in: path, required: true, schema: {type: string}}]\n    get:\n      responses: {'200': {description: ok}}\n    put:\n      responses: {'200': {description: ok}}\n",
    );
    let csv = "operation,user\nGET /users/{id}/role,own\nPUT /users/{id}/role,own\n";
    let policy = Policy::parse(csv, Path::new("m.csv"), &api, &roles, false).expect("matrix");
    let input = PlanInput::new(&api, &policy, &identities, &corpus, "t");
    let update = op_index_of(&api, "PUT /users/{id}/role");
    assert!(!input.may_target(update, 1, 1));
}

fn op_index_of(api: &Api, key: &str) -> usize {
    api.operations
        .iter()
        .position(|o| o.key() == key)
        .unwrap_or_else(|| panic!("no {key}"))
}
