//! Response bodies from a target never panic the judge's readers: random bytes, invalid
//! UTF-8, JSON nested beyond serde_json's limit, mutated real answers, any content type,
//! any status. Bounded: 96 cases unless `PROPTEST_CASES` says otherwise.

use super::{leak, similarity};
use crate::discover::Object;
use crate::exchange::Exchange;
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(96),
    )
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    let real = r#"{"items": [{"id": 1, "owner_id": "alice", "tenant": "acme", "text": "x"}], "next": null}"#;
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..2048),
        any::<String>().prop_map(String::into_bytes),
        // A real answer with bytes replaced: broken UTF-8 and broken JSON alike.
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8).prop_map(
            move |edits| {
                let mut bytes = real.as_bytes().to_vec();
                for (at, b) in edits {
                    let i = at.index(bytes.len());
                    bytes[i] = b;
                }
                bytes
            }
        ),
        (1usize..20_000).prop_map(|d| format!("{}1{}", "[".repeat(d), "]".repeat(d)).into_bytes()),
        (1usize..120).prop_map(|d| format!(
            "{}{{\"id\": 1}}{}",
            "{\"a\":".repeat(d),
            "}".repeat(d)
        )
        .into_bytes()),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn response_bodies_never_panic(
        body in body(),
        other in body(),
        content_type in prop::option::of("\\PC{0,30}"),
        status in prop::option::of(100u16..600),
    ) {
        let exchange = Exchange { status, content_type, body, ..Exchange::default() };
        let object = Object {
            resource: "notes".into(),
            id: serde_json::json!(1),
            owner: 0,
            tenant: Some("acme".into()),
            fields: serde_json::from_str(r#"{"id": 1, "owner_id": "alice", "text": "x"}"#)
                .unwrap_or_default(),
            parents: Vec::new(),
        };
        let json = exchange.json();
        let _ = leak::body_contains(&exchange.body, json.as_ref(), &object);
        let _ = leak::text_contains(&String::from_utf8_lossy(&exchange.body), &object);
        let _ = super::disruption::status_text(&exchange);
        if let (Some(a), Some(b)) = (&json, serde_json::from_slice(&other).ok()) {
            let volatile = similarity::learn_volatile(a, &b);
            let _ = similarity::json_similarity_except(a, &b, &volatile);
            let _ = similarity::same_ignoring_volatile(a, &b);
            let _ = similarity::is_error_shaped(a);
        }
    }
}
