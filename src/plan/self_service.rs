//! Operations that name no object in the path or query: the caller's own account
//! (`PUT /profile`, `PATCH /api/me`) and sign-up (`POST /register`). Three probes:
//!
//! - `id-swap` of a subject named in the body: an update whose body says whom it is about
//!   (`username`, `email`, `user_id`, `account_id`), sent by one identity naming another;
//!   the victim's own self-read before and after shows whether the marker landed.
//! - `mass-assignment` on a self-update: the caller's own update with privileged fields
//!   added; the caller's self-read shows whether one was stored.
//! - `mass-assignment` on sign-up: a new account registered with privileged fields; the
//!   answer describing the new account shows whether one was honoured.
//!
//! Login and token operations are never such updates.

use super::mass_assignment::privileged_fields;
use super::{properties, Attack, Confirm, PlanInput, Probe, WriteCheck, PLACEHOLDER_MARKER};
use crate::matrix::Access;
use crate::request::RequestSpec;
use crate::spec::{Method, Operation};
use serde_json::{json, Value};

/// Body fields that say which account an update is about.
const SUBJECT_FIELDS: [&str; 9] = [
    "username",
    "user_name",
    "login",
    "email",
    "user_id",
    "userId",
    "account_id",
    "accountId",
    "member_id",
];

/// Path words of operations that log in, hand out tokens or sign up: their body names the
/// caller by definition.
const AUTH_WORDS: [&str; 12] = [
    "login", "logout", "signin", "auth", "token", "tokens", "session", "sessions", "oauth",
    "register", "signup", "password",
];

const SIGNUP_WORDS: [&str; 4] = ["register", "signup", "registration", "join"];

fn path_words(op: &Operation) -> Vec<String> {
    op.path
        .split(['/', '-', '_', '.'])
        .filter(|s| !s.is_empty() && !s.contains('{'))
        .map(|s| s.to_ascii_lowercase())
        .collect()
}

fn is_auth_operation(op: &Operation) -> bool {
    path_words(op)
        .iter()
        .any(|w| AUTH_WORDS.contains(&w.as_str()))
}

fn is_signup(op: &Operation) -> bool {
    op.method == Method::Post
        && path_words(op)
            .iter()
            .any(|w| SIGNUP_WORDS.contains(&w.as_str()))
}

/// An unsafe operation with a JSON body and no object identifier in its path or query.
fn names_no_object(input: &PlanInput<'_>, op: usize) -> bool {
    let operation = &input.api.operations[op];
    !operation.is_read_only()
        && operation.method != Method::Delete
        && input.sendable(op)
        && input.id_param(op).is_none()
        && operation.path_params().next().is_none()
        && operation
            .json_body()
            .and_then(|m| m.schema.as_ref())
            .is_some()
}

/// Whether `op` updates the caller's own account: its path is the API's self-read path
/// (`GET /me` beside `PATCH /me`) or ends in a self word, and it creates nothing.
fn is_self_update(input: &PlanInput<'_>, op: usize) -> bool {
    !is_create(input, op) && self_path(input, op)
}

/// Whether the resource model counts `op` as some resource's create.
fn is_create(input: &PlanInput<'_>, op: usize) -> bool {
    input
        .api
        .resources
        .values()
        .any(|r| r.creates.contains(&op))
}

fn self_path(input: &PlanInput<'_>, op: usize) -> bool {
    let path = &input.api.operations[op].path;
    crate::discover::facts::self_read_operations(input.api)
        .into_iter()
        .any(|read| &input.api.operations[read].path == path)
        || crate::discover::facts::is_self_path(path)
}

/// The caller's own read of what `op` updates: a GET on the same path, else the API's
/// self-read (`GET /me` and kin).
fn self_read_for(input: &PlanInput<'_>, op: usize) -> Option<RequestSpec> {
    let path = &input.api.operations[op].path;
    let same = input
        .api
        .operations
        .iter()
        .position(|o| o.method == Method::Get && &o.path == path);
    let read = same.or_else(|| {
        crate::discover::facts::self_read_operations(input.api)
            .into_iter()
            .next()
    })?;
    crate::request::build_request(input.api, read, None, "")
}

/// The body fields of `op`'s request schema.
fn body_fields<'a>(input: &'a PlanInput<'a>, op: usize) -> Vec<(&'a str, &'a Value)> {
    input.api.operations[op]
        .json_body()
        .and_then(|m| m.schema.as_ref())
        .map(|s| properties(input.api, s))
        .unwrap_or_default()
}

/// The request with `body` in place of the sampled one.
fn request_with_body(input: &PlanInput<'_>, op: usize) -> Option<RequestSpec> {
    let mut request = crate::request::build_request(input.api, op, None, PLACEHOLDER_MARKER)?;
    if let Some(body) = request.json.as_mut() {
        crate::discover::use_seen_values(body, PLACEHOLDER_MARKER, &input.corpus.field_values, 1);
    }
    Some(request)
}

/// Sets the body's fields the identity's own facts know (its display name, email…) to
/// those values, so the update by itself changes nothing but what the probe adds.
fn keep_own_values(body: &mut Value, input: &PlanInput<'_>, who: usize) {
    let Value::Object(map) = body else { return };
    for (k, v) in map.iter_mut() {
        if let Some(known) = input.identities[who].attributes.get(k) {
            if known.is_string() == v.is_string() {
                *v = known.clone();
            }
        }
    }
}

pub(super) fn plan(input: &PlanInput<'_>, op: usize, actor: usize, out: &mut Vec<Probe>) {
    if !names_no_object(input, op) || input.identities[actor].is_anonymous() {
        return;
    }
    let operation = &input.api.operations[op];
    if is_signup(operation) {
        return;
    }
    if is_auth_operation(operation) {
        return;
    }
    // A create names its new object, not a subject; only an update of an account does.
    if is_create(input, op) || (operation.method == Method::Post && !self_path(input, op)) {
        return;
    }
    subject_swap(input, op, actor, out);
}

/// `id-swap` of the subject a body names: `actor` sends the update naming `victim`.
fn subject_swap(input: &PlanInput<'_>, op: usize, actor: usize, out: &mut Vec<Probe>) {
    let Some(access) = input.access(op, actor) else {
        return;
    };
    // A caller the matrix lets update anyone has nothing to swap.
    if access == Access::Deny || access == Access::Allow {
        return;
    }
    let fields = body_fields(input, op);
    let Some(subject) = SUBJECT_FIELDS
        .iter()
        .find(|f| fields.iter().any(|(name, _)| name == *f))
    else {
        return;
    };
    let Some(readback) = self_read_for(input, op) else {
        return;
    };
    let me = &input.identities[actor];
    for (victim, who) in input.identities.iter().enumerate() {
        if victim == actor || who.is_anonymous() {
            continue;
        }
        if access == Access::Tenant && who.tenant.is_some() && who.tenant == me.tenant {
            continue;
        }
        let Some(value) = who.attributes.get(*subject).cloned() else {
            continue;
        };
        if me.attributes.get(*subject) == Some(&value) {
            continue;
        }
        // The victim must be able to read itself back, or nothing can be confirmed.
        if input.access(op, victim).is_none_or(|a| a == Access::Deny) {
            continue;
        }
        let Some(mut request) = request_with_body(input, op) else {
            return;
        };
        let Some(Value::Object(body)) = request.json.as_mut() else {
            return;
        };
        body.insert((*subject).to_string(), value);
        let marked = body
            .values()
            .any(|v| v.as_str() == Some(PLACEHOLDER_MARKER));
        if !marked {
            // Nothing in the body would show in the victim's read-back.
            return;
        }
        let write = WriteCheck {
            readback: Some(readback.clone()),
            marker: PLACEHOLDER_MARKER.to_string(),
            confirm: Confirm::Marker,
        };
        out.push(
            Probe::new(Attack::IdSwap, op, actor, request)
                .baseline(victim)
                .access(access)
                .write(write)
                .detail(format!(
                    "the body's `{subject}` names {} instead of the caller",
                    who.name
                )),
        );
        // One victim shows the flaw.
        return;
    }
}

/// A sign-up body a server accepts: a unique, well-formed email and username for this run,
/// and a throwaway password long and mixed enough for common rules (the account is a test
/// artifact of this run, not a credential of any identity).
fn fill_signup_fields(
    body: &mut serde_json::Map<String, Value>,
    fields: &[(&str, &Value)],
    run_nonce: &str,
) {
    for (name, schema) in fields {
        let lower = name.to_ascii_lowercase();
        let format = schema
            .get("format")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let value = if lower.contains("email") || format == "email" {
            format!("rolegrid-signup-{run_nonce}@example.test")
        } else if lower.contains("password") || lower == "passwd" || format == "password" {
            format!("Rg-{run_nonce}-Throwaway-1!")
        } else if matches!(
            lower.as_str(),
            "username" | "user_name" | "login" | "handle"
        ) {
            format!("rolegrid-signup-{run_nonce}")
        } else {
            continue;
        };
        body.insert((*name).to_string(), Value::String(value));
    }
}

/// Privileged values to try on one's own account or on sign-up.
fn privileged_values(fields: &[(&str, &Value)]) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for name in privileged_fields() {
        let value = match name {
            "role" => json!("admin"),
            "is_admin" | "admin" | "isAdmin" | "is_staff" | "is_superuser" | "superuser" => {
                Value::Bool(true)
            }
            "roles" => json!(["admin"]),
            _ => continue,
        };
        // A field the schema declares keeps its type; one it does not is still tried.
        if let Some((_, schema)) = fields.iter().find(|(n, _)| *n == name) {
            let ty = schema.get("type").and_then(Value::as_str);
            let fits = matches!(
                (ty, &value),
                (None, _)
                    | (Some("string"), Value::String(_))
                    | (Some("boolean"), Value::Bool(_))
                    | (Some("array"), Value::Array(_))
            );
            if !fits {
                continue;
            }
        }
        out.push((name.to_string(), value));
    }
    out
}

/// `mass-assignment` on the caller's own update and on sign-up; planned in the last pass
/// (after deletes), since on a flawed target it changes the caller's own role.
pub(super) fn plan_mass_assignment(
    input: &PlanInput<'_>,
    op: usize,
    actor: usize,
    out: &mut Vec<Probe>,
) {
    if !names_no_object(input, op) {
        return;
    }
    let operation = &input.api.operations[op];
    let fields = body_fields(input, op);
    let Some(access) = input.access(op, actor) else {
        return;
    };
    if access == Access::Deny {
        return;
    }
    if is_signup(operation) {
        // Anonymous may sign up where the matrix says so; elsewhere only identities do.
        // Sign-up is planned once, as anonymous when the matrix lets anonymous sign up,
        // else as the first identity allowed.
        let allowed = |i: usize| input.access(op, i).is_some_and(|a| a != Access::Deny);
        let anonymous = input
            .identities
            .iter()
            .position(|i| i.is_anonymous())
            .filter(|&i| allowed(i));
        let first = anonymous.or_else(|| (0..input.identities.len()).find(|&i| allowed(i)));
        if first != Some(actor) {
            return;
        }
        let Some(mut request) = request_with_body(input, op) else {
            return;
        };
        let Some(Value::Object(body)) = request.json.as_mut() else {
            return;
        };
        fill_signup_fields(body, &fields, &input.run_nonce);
        let extra: Vec<(String, Value)> = privileged_values(&fields)
            .into_iter()
            .filter(|(n, _)| !body.contains_key(n) || fields.iter().any(|(f, _)| f == n))
            .collect();
        let Some(names) = insert_extra(body, &extra) else {
            return;
        };
        let account = super::new_account::new_account(input, body);
        out.push(
            Probe::new(Attack::MassAssignment, op, actor, request)
                .access(access)
                .new_account(account)
                .write(WriteCheck {
                    readback: None,
                    marker: PLACEHOLDER_MARKER.to_string(),
                    confirm: Confirm::Answer(extra),
                })
                .detail(format!(
                    "a sign-up with extra fields {}; the new account is left on the target",
                    names.join(", ")
                )),
        );
        return;
    }
    if is_auth_operation(operation)
        || input.identities[actor].is_anonymous()
        || !is_self_update(input, op)
    {
        return;
    }
    let Some(readback) = self_read_for(input, op) else {
        return;
    };
    let Some(mut request) = request_with_body(input, op) else {
        return;
    };
    if let Some(body) = request.json.as_mut() {
        keep_own_values(body, input, actor);
    }
    let Some(Value::Object(body)) = request.json.as_mut() else {
        return;
    };
    let own = &input.identities[actor].attributes;
    let extra: Vec<(String, Value)> = privileged_values(&fields)
        .into_iter()
        .filter(|(n, v)| own.get(n) != Some(v))
        .collect();
    let Some(names) = insert_extra(body, &extra) else {
        return;
    };
    // Set back what the caller's self-read said before (a flag it did not show: false).
    let mut undo = request.clone();
    if let Some(Value::Object(body)) = undo.json.as_mut() {
        for (k, sent) in &extra {
            match own.get(k) {
                Some(before) => {
                    body.insert(k.clone(), before.clone());
                }
                None if sent.is_boolean() => {
                    body.insert(k.clone(), Value::Bool(false));
                }
                None => {
                    body.remove(k);
                }
            }
        }
    }
    let privilege_reads = super::new_account::denied_reads(input, &input.identities[actor].role);
    out.push(
        Probe::new(Attack::MassAssignment, op, actor, request)
            .privilege_reads(privilege_reads)
            .undo(undo)
            .baseline(actor)
            .access(access)
            .write(WriteCheck {
                readback: Some(readback),
                marker: PLACEHOLDER_MARKER.to_string(),
                confirm: Confirm::Fields(extra),
            })
            .detail(format!(
                "the caller's own account updated with extra fields {}",
                names.join(", ")
            )),
    );
}

/// Puts the privileged `extra` fields into `body`; their names as the detail quotes them,
/// or `None` when there are none (no probe then).
fn insert_extra(
    body: &mut serde_json::Map<String, Value>,
    extra: &[(String, Value)],
) -> Option<Vec<String>> {
    if extra.is_empty() {
        return None;
    }
    for (k, v) in extra {
        body.insert(k.clone(), v.clone());
    }
    Some(extra.iter().map(|(n, _)| format!("`{n}`")).collect())
}
