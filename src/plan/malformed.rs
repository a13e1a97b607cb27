//! `malformed`: schema-violating bodies for the operations a caller may call on its own
//! object, drawn from proptest strategies built from the request schema (wrong types,
//! missing required properties, out-of-range numbers, over-long strings, unicode and
//! injection-shaped strings from `corpora/malformed-strings.txt`). A 5xx is a
//! `server-error`; [`shrink_body`] then shrinks the body with proptest's own shrinking,
//! replaying the value tree from its fixed seed so that no tree is held across a request.

use super::{keep_current_values, properties, request_for, Attack, Confirm, PlanInput, Probe};
use super::{WriteCheck, PLACEHOLDER_MARKER};
use crate::spec::Api;
use proptest::prelude::*;
use proptest::strategy::{BoxedStrategy, Just, Union, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{json, Value};
use std::future::Future;

/// Bodies drawn per operation (duplicates are sent once).
const CASES: usize = 32;
/// Requests one shrink may send at most.
const MAX_SHRINK_STEPS: usize = 64;
/// Strings longer than any sane limit, for schemas that declare none.
const LONG: usize = 10_000;

const STRINGS: &str = include_str!("../../corpora/malformed-strings.txt");

/// How to regenerate one malformed body: the operation, the valid body it was derived
/// from, and the case's place in the seeded sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct MalformedCase {
    pub op: usize,
    pub base: Value,
    pub index: usize,
}

fn corpus_strings() -> Vec<String> {
    STRINGS
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            l.replace("\\n", "\n")
                .replace("\\t", "\t")
                .replace("\\u0000", "\u{0}")
        })
        .collect()
}

/// Values that break `schema` for one property.
fn wrong_value(api: &Api, schema: &Value) -> BoxedStrategy<Value> {
    let schema = api.resolve(schema);
    let strings = corpus_strings();
    let odd_string = prop_oneof![
        proptest::sample::select(strings).prop_map(Value::String),
        "\\PC{1,24}".prop_map(Value::String),
    ];
    let mut options: Vec<BoxedStrategy<Value>> = vec![Just(Value::Null).boxed()];
    match schema.get("type").and_then(Value::as_str) {
        Some("string") => {
            options.push(any::<i64>().prop_map(Value::from).boxed());
            options.push(any::<bool>().prop_map(Value::Bool).boxed());
            options.push(Just(json!([])).boxed());
            options.push(Just(json!({})).boxed());
            let max = schema
                .get("maxLength")
                .and_then(Value::as_u64)
                .map_or(LONG, |m| m as usize + 1);
            options.push(Just(Value::String("A".repeat(max.min(LONG * 10)))).boxed());
            if schema.get("minLength").and_then(Value::as_u64).unwrap_or(0) > 0 {
                options.push(Just(json!("")).boxed());
            }
            options.push(odd_string.boxed());
        }
        Some("integer") | Some("number") => {
            options.push(odd_string.boxed());
            options.push(any::<bool>().prop_map(Value::Bool).boxed());
            options.push(Just(json!(0.5)).boxed());
            options.push(Just(json!(1e300)).boxed());
            if let Some(min) = schema.get("minimum").and_then(Value::as_i64) {
                options.push(Just(json!(min.saturating_sub(1))).boxed());
            }
            if let Some(max) = schema.get("maximum").and_then(Value::as_i64) {
                options.push(Just(json!(max.saturating_add(1))).boxed());
            }
        }
        Some("boolean") => {
            options.push(any::<i64>().prop_map(Value::from).boxed());
            options.push(odd_string.boxed());
        }
        Some("array") => {
            options.push(Just(json!({})).boxed());
            options.push(odd_string.boxed());
        }
        _ => {
            options.push(any::<i64>().prop_map(Value::from).boxed());
            options.push(odd_string.boxed());
        }
    }
    Union::new(options).boxed()
}

/// The array a schema keyword holds (`enum`, `required`), empty when it has none.
fn listed(api: &Api, schema: &Value, keyword: &str) -> Vec<Value> {
    api.resolve(schema)
        .get(keyword)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Whole bodies that violate the request schema, each derived from the valid `base`.
fn body_strategy(api: &Api, schema: &Value, base: &Value) -> BoxedStrategy<Value> {
    let props = properties(api, schema);
    let mut options: Vec<BoxedStrategy<Value>> = Vec::new();
    if !props.is_empty() {
        let per_prop: Vec<BoxedStrategy<Value>> = props
            .iter()
            .map(|(name, prop)| {
                let (name, base) = (name.to_string(), base.clone());
                // A drawn string that happens to be a valid enum member would be a real
                // change (a role, a status): it becomes null instead.
                let members = listed(api, prop, "enum");
                wrong_value(api, prop)
                    .prop_map(move |v| {
                        let v = if members.contains(&v) { Value::Null } else { v };
                        let mut body = base.clone();
                        if let Value::Object(map) = &mut body {
                            map.insert(name.clone(), v);
                        }
                        body
                    })
                    .boxed()
            })
            .collect();
        options.push(Union::new(per_prop).boxed());
    }
    let required = listed(api, schema, "required");
    for name in required.iter().filter_map(Value::as_str) {
        let mut body = base.clone();
        if let Value::Object(map) = &mut body {
            map.remove(name);
        }
        options.push(Just(body).boxed());
    }
    options.push(
        prop_oneof![
            Just(Value::Null),
            Just(json!([])),
            Just(json!("rolegrid")),
            any::<i64>().prop_map(Value::from),
        ]
        .boxed(),
    );
    Union::new(options).boxed()
}

/// A runner whose sequence depends only on the operation.
fn runner(op: usize) -> TestRunner {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&(0x726f_6c65_6772_6964_u64 ^ op as u64).to_le_bytes());
    TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed),
    )
}

fn strategy_for(api: &Api, case: &MalformedCase) -> Option<BoxedStrategy<Value>> {
    let schema = api.operations.get(case.op)?.json_body()?.schema.as_ref()?;
    Some(body_strategy(api, schema, &case.base))
}

/// The value tree of `case`: the seeded sequence replayed up to its index.
fn tree_for(api: &Api, case: &MalformedCase) -> Option<impl ValueTree<Value = Value>> {
    let strategy = strategy_for(api, case)?;
    let mut runner = runner(case.op);
    let mut tree = None;
    for _ in 0..=case.index {
        tree = Some(strategy.new_tree(&mut runner).ok()?);
    }
    tree
}

/// Plans the probes of one operation sent by one actor.
pub(super) fn plan(input: &PlanInput<'_>, op: usize, for_actor: usize, out: &mut Vec<Probe>) {
    for op in std::iter::once(op) {
        let operation = &input.api.operations[op];
        if !input.sendable(op) || operation.method.is_safe() || operation.json_body().is_none() {
            continue;
        }
        let Some((_, resource)) = input.id_param(op) else {
            continue;
        };
        // One caller per operation: the first that may call it on an object it owns.
        let chosen = (0..input.identities.len()).find_map(|actor| {
            let access = input.granted_access(op, actor)?;
            input
                .own_object(op, actor, resource)
                .map(|(i, o)| (actor, access, i, o))
        });
        let Some((actor, access, index, object)) = chosen else {
            continue;
        };
        if actor != for_actor {
            continue;
        }
        let Some((request, plain_write)) = request_for(input, op, Some(object)) else {
            continue;
        };
        // The owner's read of the object, to see whether an accepted invalid value stuck.
        let readback = plain_write.and_then(|w| w.readback);
        let Some(mut base) = request.json.clone() else {
            continue;
        };
        keep_current_values(&mut base, object);
        let mut case = MalformedCase { op, base, index: 0 };
        let Some(strategy) = strategy_for(input.api, &case) else {
            continue;
        };
        let mut runner = runner(op);
        let mut seen: Vec<Value> = Vec::new();
        for n in 0..CASES {
            let Ok(tree) = strategy.new_tree(&mut runner) else {
                break;
            };
            let body = tree.current();
            if seen.contains(&body) {
                continue;
            }
            seen.push(body.clone());
            case.index = n;
            // The top-level fields this body sets to something other than the valid base:
            // a 2xx after which the read-back shows one of them stored kept invalid data.
            let invalid: Vec<(String, Value)> = match (&body, &case.base) {
                (Value::Object(sent), Value::Object(base)) => sent
                    .iter()
                    .filter(|(k, v)| base.get(k.as_str()) != Some(v))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                _ => Vec::new(),
            };
            let write = match (&readback, invalid.is_empty()) {
                (Some(readback), false) => WriteCheck {
                    readback: Some(readback.clone()),
                    marker: PLACEHOLDER_MARKER.to_string(),
                    confirm: Confirm::Fields(invalid),
                },
                // A write (sent after every read, one at a time) with nothing to confirm:
                // only the status matters.
                _ => WriteCheck {
                    readback: None,
                    marker: PLACEHOLDER_MARKER.to_string(),
                    confirm: Confirm::Marker,
                },
            };
            let mut probe_request = request.clone();
            probe_request.json = Some(body);
            out.push(
                Probe::new(Attack::Malformed, op, actor, probe_request)
                    .object(index)
                    .access(access)
                    .write(write)
                    .malformed(case.clone())
                    .detail(format!("schema-violating body #{n}")),
            );
        }
    }
}

/// Shrinks a body that made the server fail, with proptest's shrinking: each candidate
/// is sent through `fails`, which answers whether the server failed again. Returns the
/// smallest failing body and the number of candidates sent. The tree is rebuilt and
/// replayed for each step, so nothing but plain values lives across `fails`' await.
pub async fn shrink_body<F, Fut>(api: &Api, case: &MalformedCase, mut fails: F) -> (Value, usize)
where
    F: FnMut(Value) -> Fut,
    Fut: Future<Output = bool>,
{
    let mut outcomes: Vec<bool> = Vec::new();
    let mut minimal = tree_for(api, case).map(|t| t.current());
    while outcomes.len() < MAX_SHRINK_STEPS {
        let Some(candidate) = next_candidate(api, case, &outcomes) else {
            break;
        };
        let failed = fails(candidate.clone()).await;
        if failed {
            minimal = Some(candidate);
        }
        outcomes.push(failed);
    }
    (minimal.unwrap_or(Value::Null), outcomes.len())
}

/// The body proptest's shrinker tries after `outcomes` (true = still failing), as in
/// `TestRunner::shrink`: simplify after a failure, complicate after a pass.
fn next_candidate(api: &Api, case: &MalformedCase, outcomes: &[bool]) -> Option<Value> {
    let mut tree = tree_for(api, case)?;
    if !tree.simplify() {
        return None;
    }
    for &failed in outcomes {
        let moved = if failed {
            tree.simplify()
        } else {
            tree.complicate()
        };
        if !moved {
            return None;
        }
    }
    Some(tree.current())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::demo_api;

    fn notes_case(api: &Api, index: usize) -> MalformedCase {
        let op = api
            .operations
            .iter()
            .position(|o| o.key() == "POST /tickets/{ticketId}/notes")
            .expect("notes operation");
        MalformedCase {
            op,
            base: json!({"text": "hello"}),
            index,
        }
    }

    #[test]
    fn corpus_strings_are_unescaped() {
        let strings = corpus_strings();
        assert!(strings.len() >= 8);
        assert!(strings.iter().any(|s| s.contains('\n')));
        assert!(strings.iter().any(|s| s.contains('\u{0}')));
    }

    #[test]
    fn cases_replay_identically() {
        let api = demo_api();
        for index in [0, 5, 17] {
            let case = notes_case(&api, index);
            let a = tree_for(&api, &case).map(|t| t.current());
            let b = tree_for(&api, &case).map(|t| t.current());
            assert!(a.is_some());
            assert_eq!(a, b);
        }
    }

    #[tokio::test]
    async fn shrinks_to_a_minimal_failing_body() {
        // A server that fails whenever `text` is present and not a string.
        let api = demo_api();
        let failing = |body: &Value| body.get("text").is_some_and(|t| !t.is_string());
        let case = (0..CASES)
            .map(|i| notes_case(&api, i))
            .find(|c| {
                tree_for(&api, c)
                    .map(|t| t.current())
                    .is_some_and(|b| failing(&b) && !b["text"].is_null())
            })
            .expect("some case breaks the text's type");
        let (minimal, steps) = shrink_body(&api, &case, |b| {
            let f = failing(&b);
            async move { f }
        })
        .await;
        assert!(steps > 0 && steps <= MAX_SHRINK_STEPS);
        assert!(failing(&minimal), "{minimal}");
        let size = |v: &Value| v.to_string().len();
        let original = tree_for(&api, &case).map(|t| t.current()).expect("tree");
        assert!(size(&minimal) <= size(&original), "{minimal} vs {original}");
        assert!(size(&minimal) <= r#"{"text":null}"#.len(), "{minimal}");
    }
}
