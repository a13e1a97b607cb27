//! Body similarity: JSON compared leaf by leaf (array order and volatile fields ignored),
//! anything else compared by content digest. Volatile fields are known by name
//! (timestamps, request ids) or learned: the JSON paths whose values differ between two
//! answers to the same request by the same caller.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Learned volatile paths kept per baseline: a body where everything differs teaches
/// nothing more after this many.
pub const MAX_LEARNED: usize = 256;

/// Field names whose values change between two identical reads.
fn is_volatile(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.ends_with("_at")
        || k.ends_with("at") && k.len() > 2 && key.chars().rev().nth(1).is_some_and(|c| c == 'A')
        || matches!(
            k.as_str(),
            "timestamp"
                | "time"
                | "date"
                | "now"
                | "request_id"
                | "requestid"
                | "trace_id"
                | "traceid"
                | "nonce"
                | "etag"
                | "expires_in"
                | "iat"
                | "exp"
                | "csrf"
                | "csrf_token"
                | "server_time"
        )
}

fn leaves(value: &Value, path: &mut String, out: &mut BTreeMap<String, usize>) {
    match value {
        Value::Object(o) => {
            for (k, v) in o {
                if is_volatile(k) {
                    continue;
                }
                let len = path.len();
                path.push('.');
                path.push_str(k);
                leaves(v, path, out);
                path.truncate(len);
            }
        }
        Value::Array(a) => {
            let len = path.len();
            path.push_str("[]");
            for v in a {
                leaves(v, path, out);
            }
            path.truncate(len);
        }
        scalar => {
            *out.entry(format!("{path}={scalar}")).or_default() += 1;
        }
    }
}

/// The leaf path of a `path=value` leaf key.
fn leaf_path(leaf: &str) -> &str {
    leaf.split_once('=').map(|(p, _)| p).unwrap_or(leaf)
}

/// One answer's leaves under one path, with their counts.
type Leaves<'a> = BTreeMap<&'a str, usize>;

/// The JSON paths (`.a.b[]`, as the similarity sees them) whose values differ between two
/// answers to the same request: nonces, render ids, per-request blobs of any name.
pub fn learn_volatile(first: &Value, second: &Value) -> BTreeSet<String> {
    let (mut la, mut lb) = (BTreeMap::new(), BTreeMap::new());
    leaves(first, &mut String::new(), &mut la);
    leaves(second, &mut String::new(), &mut lb);
    let mut paths: BTreeMap<&str, [Leaves<'_>; 2]> = BTreeMap::new();
    for (leaf, n) in &la {
        paths.entry(leaf_path(leaf)).or_default()[0].insert(leaf, *n);
    }
    for (leaf, n) in &lb {
        paths.entry(leaf_path(leaf)).or_default()[1].insert(leaf, *n);
    }
    paths
        .into_iter()
        .filter(|(_, [a, b])| a != b)
        .map(|(p, _)| p.to_string())
        .take(MAX_LEARNED)
        .collect()
}

/// Jaccard similarity of the (path, value) leaf multisets, in 0..=1.
pub fn json_similarity(a: &Value, b: &Value) -> f64 {
    json_similarity_except(a, b, &BTreeSet::new())
}

/// [`json_similarity`] with the leaves under the `volatile` paths set aside.
pub fn json_similarity_except(a: &Value, b: &Value, volatile: &BTreeSet<String>) -> f64 {
    let (mut la, mut lb) = (BTreeMap::new(), BTreeMap::new());
    leaves(a, &mut String::new(), &mut la);
    leaves(b, &mut String::new(), &mut lb);
    if !volatile.is_empty() {
        la.retain(|leaf, _| !volatile.contains(leaf_path(leaf)));
        lb.retain(|leaf, _| !volatile.contains(leaf_path(leaf)));
    }
    if la.is_empty() && lb.is_empty() {
        return if a == b { 1.0 } else { 0.0 };
    }
    let mut inter = 0usize;
    let mut union = 0usize;
    for (k, &ca) in &la {
        let cb = lb.get(k).copied().unwrap_or(0);
        inter += ca.min(cb);
        union += ca.max(cb);
    }
    for (k, &cb) in &lb {
        if !la.contains_key(k) {
            union += cb;
        }
    }
    inter as f64 / union as f64
}

/// The same JSON once volatile fields (timestamps, request ids) are set aside.
pub fn same_ignoring_volatile(a: &Value, b: &Value) -> bool {
    let (mut la, mut lb) = (BTreeMap::new(), BTreeMap::new());
    leaves(a, &mut String::new(), &mut la);
    leaves(b, &mut String::new(), &mut lb);
    la == lb
}

/// A 2xx whose JSON body says no: `{"ok": false}`, `{"error": …}` with little else.
pub fn is_error_shaped(value: &Value) -> bool {
    let Some(o) = value.as_object() else {
        return false;
    };
    let flag_false = ["ok", "success", "succeeded", "allowed", "authorized"]
        .iter()
        .any(|k| o.get(*k) == Some(&Value::Bool(false)));
    let status_error = o.get("status").and_then(|s| s.as_str()).is_some_and(|s| {
        matches!(
            s.to_ascii_lowercase().as_str(),
            "error" | "fail" | "failed" | "denied" | "forbidden"
        )
    });
    let error_key = ["error", "errors", "error_code", "fault"].iter().any(|k| {
        o.get(*k)
            .is_some_and(|v| !v.is_null() && v != &Value::Bool(false))
    });
    // A resource may carry a `status` of its own (a CI job that `failed`): only a small
    // body, or one that also explains itself, is an error answer.
    let explains = ["message", "msg", "detail", "reason", "error", "description"]
        .iter()
        .any(|k| o.contains_key(*k));
    flag_false || (status_error && (o.len() <= 2 || explains)) || (error_key && o.len() <= 4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_resource_status_is_not_an_error_answer() {
        let job = json!({"job_id": 502, "team_id": 10, "pipeline": "api", "status": "failed"});
        assert!(!is_error_shaped(&job));
        assert!(is_error_shaped(
            &json!({"status": "error", "message": "denied"})
        ));
        assert!(is_error_shaped(&json!({"status": "forbidden"})));
    }

    #[test]
    fn identical_bodies_with_different_timestamps_are_the_same() {
        let a = json!({"id": 1, "subject": "x", "updated_at": "2026-01-01", "items": [1, 2]});
        let b = json!({"id": 1, "subject": "x", "updated_at": "2026-02-02", "items": [2, 1]});
        assert_eq!(json_similarity(&a, &b), 1.0);
    }

    #[test]
    fn different_objects_are_dissimilar() {
        let a = json!({"id": 1, "subject": "a", "owner_id": 1});
        let b = json!({"ok": false, "error": "ticket not available"});
        assert_eq!(json_similarity(&a, &b), 0.0);
        let c = json!({"id": 2, "subject": "b", "owner_id": 2});
        assert!(json_similarity(&a, &c) < 0.5);
    }

    #[test]
    fn sameness_skips_volatile_fields() {
        let a = json!({"id": 1, "role_changes": 0, "updated_at": "x"});
        let b = json!({"id": 1, "role_changes": 0, "updated_at": "y"});
        assert!(same_ignoring_volatile(&a, &b));
        assert!(!same_ignoring_volatile(
            &a,
            &json!({"id": 1, "role_changes": 1})
        ));
    }

    #[test]
    fn error_shapes() {
        assert!(is_error_shaped(&json!({"ok": false, "error": "no"})));
        assert!(is_error_shaped(&json!({"error": "forbidden"})));
        assert!(is_error_shaped(&json!({"status": "denied"})));
        assert!(!is_error_shaped(&json!({"id": 1, "error": null, "a": 1})));
        assert!(!is_error_shaped(&json!({"id": 1, "subject": "s"})));
        assert!(!is_error_shaped(&json!([1])));
    }

    #[test]
    fn learned_paths_are_set_aside() {
        let user = |nonce: &str| json!({"id": 1, "email": "a@x", "name": "A", "role": "client", "tenant_id": "acme", "render_id": nonce});
        let (first, second) = (user("k3v9"), user("q8z1"));
        let learned = learn_volatile(&first, &second);
        assert_eq!(learned, BTreeSet::from([".render_id".to_string()]));
        // The same user seen in a third answer: by name alone the nonce drags it under
        // the threshold; with the learned path it is the same body.
        let third = user("m2w7");
        assert!(json_similarity(&first, &third) < 0.8);
        assert_eq!(json_similarity_except(&first, &third, &learned), 1.0);
        // Stable bodies teach nothing.
        assert!(learn_volatile(&first, &first).is_empty());
    }

    #[test]
    fn camel_case_timestamps_are_volatile() {
        assert!(is_volatile("updatedAt"));
        assert!(is_volatile("created_at"));
        assert!(!is_volatile("format"));
        assert!(!is_volatile("seat"));
    }
}
