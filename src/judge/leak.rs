//! Recognising known objects inside a body (JSON, CSV or other text): an object counts as
//! present when its ID and at least one more of its field values appear together.

use crate::discover::Object;
use serde_json::Value;

/// Field values that say little about which object they belong to.
fn distinguishing_values(object: &Object) -> Vec<String> {
    let id = object.id_text();
    object
        .fields
        .iter()
        .filter(|(k, _)| k.as_str() != "id")
        .filter_map(|(_, v)| match v {
            Value::String(s) if s.chars().count() >= 3 && *s != id => Some(s.clone()),
            Value::Number(n) if n.to_string().len() >= 3 && n.to_string() != id => {
                Some(n.to_string())
            }
            _ => None,
        })
        .collect()
}

/// Without other fields, only IDs long enough to be unique by themselves count.
fn id_alone_is_unique(id: &str) -> bool {
    id.len() >= 12
}

pub fn json_contains(body: &Value, object: &Object) -> bool {
    let id = object.id_text();
    let others = distinguishing_values(object);
    // The field the object's ID came from (`build_error_id`, `title`), and the generic ones.
    let id_keys: Vec<&str> = ["id", "uuid", "_id"]
        .into_iter()
        .chain(
            object
                .fields
                .iter()
                .filter(|(_, v)| crate::request::value_text(v) == id)
                .map(|(k, _)| k.as_str()),
        )
        .collect();
    let mut stack = vec![body];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(o) => {
                let id_matches = o.iter().any(|(k, x)| {
                    id_keys.contains(&k.as_str()) && crate::request::value_text(x) == id
                });
                if id_matches {
                    if others.is_empty() && id_alone_is_unique(&id) {
                        return true;
                    }
                    let shares = o.values().any(|x| {
                        let text = crate::request::value_text(x);
                        others.contains(&text)
                    });
                    if shares {
                        return true;
                    }
                }
                stack.extend(o.values());
            }
            Value::Array(a) => stack.extend(a.iter()),
            _ => {}
        }
    }
    false
}

/// CSV, NDJSON-as-text and other line-oriented bodies.
pub fn text_contains(body: &str, object: &Object) -> bool {
    let id = object.id_text();
    let others = distinguishing_values(object);
    body.lines().any(|line| {
        let has_id = line
            .split([',', ';', '\t', '|'])
            .any(|cell| cell.trim().trim_matches('"') == id);
        has_id
            && ((others.is_empty() && id_alone_is_unique(&id))
                || others.iter().any(|o| line.contains(o.as_str())))
    })
}

pub fn body_contains(body: &[u8], json: Option<&Value>, object: &Object) -> bool {
    match json {
        Some(v) => json_contains(v, object),
        None => std::str::from_utf8(body).is_ok_and(|text| text_contains(text, object)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn invoice() -> Object {
        let fields =
            json!({"id": 2001, "number": "GLOBEX-2026-0001", "tenant_id": "globex", "owner_id": 2});
        Object {
            resource: "invoices".into(),
            id: json!(2001),
            owner: 1,
            tenant: Some("globex".into()),
            fields: fields.as_object().cloned().unwrap_or_default(),
            parents: Vec::new(),
        }
    }

    #[test]
    fn finds_an_object_in_search_results() {
        let body = json!({"results": [{"type": "invoice", "id": 2001, "tenant_id": "globex"}]});
        assert!(json_contains(&body, &invoice()));
    }

    #[test]
    fn an_id_alone_is_not_enough() {
        let body = json!({"results": [{"type": "ticket", "id": 2001, "tenant_id": "acme"}]});
        assert!(!json_contains(&body, &invoice()));
        let amount = json!({"id": 7, "amount_cents": 2001});
        assert!(!json_contains(&amount, &invoice()));
    }

    #[test]
    fn finds_an_object_by_its_own_id_field() {
        let fields = json!({"build_error_id": 31, "team_id": 2, "message": "linker failed"});
        let object = Object {
            resource: "build_errors".into(),
            id: json!(31),
            owner: 1,
            tenant: None,
            fields: fields.as_object().cloned().unwrap_or_default(),
            parents: Vec::new(),
        };
        let leaked = json!({"build_errors": [{"build_error_id": 31, "message": "linker failed"}]});
        assert!(json_contains(&leaked, &object));
        let other = json!({"build_errors": [{"build_error_id": 31, "message": "other"}]});
        assert!(!json_contains(&other, &object));
    }

    #[test]
    fn finds_an_object_in_csv() {
        let csv = "id,number,tenant_id\n1001,ACME-2026-0001,acme\n2001,GLOBEX-2026-0001,globex\n";
        assert!(text_contains(csv, &invoice()));
        assert!(!text_contains("id,number\n1001,ACME-1\n", &invoice()));
    }
}
