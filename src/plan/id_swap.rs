//! `id-swap`: an identity asks for another identity's object by putting its ID where its
//! own would go, on operations the policy scopes to `own` or `tenant`. The ID goes into the
//! path or query parameter that names the object; on operations without one, into each
//! header parameter and JSON body property that names an object (an array of IDs gets the
//! victim's alone, and next to the actor's own).
//!
//! The first victim object of each owner is also sent in other spellings of the same ID
//! ([`Encoding`]): a guard that compares the raw text while the lookup normalises it (leading
//! zeros parsed away, case folded, percent-decoded, unwrapped from an array) lets them
//! through. Such variants are judged only on whether the victim's object comes back.

use super::{request_for, request_with_id, Attack, PlanInput, Probe, WriteCheck};
use crate::discover::Object;
use crate::request::{encode_segment, value_text, RequestSpec};
use crate::spec::{BodyId, ParamLocation, Parameter};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Objects per (operation, actor, victim): two show a pattern, more add only time.
const PER_VICTIM: usize = 2;

/// Stands in for the ID while a request is built, so an encoded form can replace it
/// verbatim afterwards (the builder would percent-encode a `%` again).
const SENTINEL: &str = "rolegrid-id-sentinel";

/// Other spellings of the victim's ID, in the order they are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Encoding {
    /// `0` prefixed to an integer ID (in a body: as a string, `"01001"`).
    LeadingZeros,
    /// Upper case for an ID with lower-case letters (UUIDs, slugs, emails), else lower.
    CaseChanged,
    /// Every byte as `%XX`, in a path segment or query value.
    PercentEncoded,
    /// `[id]` in a body, `name[]=id` in a query.
    InArray,
    /// `{"id": id}` in a body.
    InObject,
}

impl Encoding {
    const ALL: [Encoding; 5] = [
        Encoding::LeadingZeros,
        Encoding::CaseChanged,
        Encoding::PercentEncoded,
        Encoding::InArray,
        Encoding::InObject,
    ];

    fn describe(self) -> &'static str {
        match self {
            Encoding::LeadingZeros => "ID with leading zeros",
            Encoding::CaseChanged => "ID with its letter case changed",
            Encoding::PercentEncoded => "ID fully percent-encoded",
            Encoding::InArray => "ID wrapped in an array",
            Encoding::InObject => "ID wrapped in an object {\"id\": …}",
        }
    }
}

/// `0` + the ID, for IDs made of digits only.
fn leading_zeros(text: &str) -> Option<String> {
    (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())).then(|| format!("0{text}"))
}

/// The ID in upper case when it has lower-case letters, else in lower case; `None` when
/// that changes nothing (digits only).
fn case_changed(text: &str) -> Option<String> {
    let changed = if text.bytes().any(|b| b.is_ascii_lowercase()) {
        text.to_ascii_uppercase()
    } else {
        text.to_ascii_lowercase()
    };
    (changed != text).then_some(changed)
}

/// Every byte as `%XX`, unreserved characters too.
fn percent_all(text: &str) -> String {
    text.bytes().map(|b| format!("%{b:02X}")).collect()
}

/// The text an encoding gives a path, query or header value; `None` when it does not
/// apply there or changes nothing.
fn encoded_text(encoding: Encoding, text: &str) -> Option<String> {
    match encoding {
        Encoding::LeadingZeros => leading_zeros(text),
        Encoding::CaseChanged => case_changed(text),
        Encoding::PercentEncoded => Some(percent_all(text)),
        Encoding::InArray | Encoding::InObject => None,
    }
}

/// The JSON value an encoding gives one body ID; `None` when it does not apply.
fn encoded_value(encoding: Encoding, id: &Value) -> Option<Value> {
    let text = value_text(id);
    match encoding {
        Encoding::LeadingZeros => leading_zeros(&text).map(Value::String),
        Encoding::CaseChanged => case_changed(&text).map(Value::String),
        Encoding::PercentEncoded => None,
        Encoding::InArray => Some(json!([id])),
        Encoding::InObject => Some(json!({ "id": id })),
    }
}

/// Where the swapped ID goes.
#[derive(Clone, Copy)]
enum Target<'a> {
    /// The path or query parameter the operation's object is named by.
    Param(&'a Parameter),
    Header(&'a Parameter),
    Body(&'a BodyId),
}

impl Target<'_> {
    fn resource(&self) -> Option<&str> {
        match self {
            Target::Param(p) | Target::Header(p) => p.id_resource.as_deref(),
            Target::Body(b) => Some(&b.resource),
        }
    }

    fn describe(&self) -> String {
        match self {
            Target::Param(p) => format!("{} parameter `{}`", location_name(p.location), p.name),
            Target::Header(p) => format!("header `{}`", p.name),
            Target::Body(b) if b.array => format!("body property `{}` (array)", b.name),
            Target::Body(b) => format!("body property `{}`", b.name),
        }
    }
}

/// Headers that select a tenant or an account rather than an object: the tenant-header
/// attacks own them.
fn selects_tenant(param: &Parameter) -> bool {
    let lower = param.name.to_ascii_lowercase();
    ["tenant", "org", "workspace", "account"]
        .iter()
        .any(|w| lower.contains(w))
}

/// The path or query ID parameter when there is one; else every object-naming header and
/// body property (the body only where the request carries one).
fn targets<'a>(input: &'a PlanInput<'_>, op: usize) -> Vec<Target<'a>> {
    if let Some((param, _)) = input.id_param(op) {
        return vec![Target::Param(param)];
    }
    let operation = &input.api.operations[op];
    let headers = operation
        .parameters
        .iter()
        .filter(|p| p.location == ParamLocation::Header && p.id_resource.is_some())
        .filter(|p| !selects_tenant(p))
        .map(Target::Header);
    let bodies = operation
        .body_ids
        .iter()
        .filter(|_| !operation.method.is_safe())
        .map(Target::Body);
    headers.chain(bodies).collect()
}

/// One request of a probe: what goes out, how it is confirmed if it writes, and the detail.
struct Swap {
    request: RequestSpec,
    write: Option<WriteCheck>,
    detail: String,
}

pub(super) fn plan(input: &PlanInput<'_>, op: usize, actor: usize, out: &mut Vec<Probe>) {
    if !input.sendable(op) {
        return;
    }
    let Some(access) = input.limited_access(op, actor) else {
        return;
    };
    for target in targets(input, op) {
        let Some(resource) = target.resource() else {
            continue;
        };
        // The actor's own object, for arrays that carry both IDs.
        let own = input.own_object(op, actor, resource).map(|(_, o)| o);
        let mut per_victim: BTreeMap<usize, usize> = BTreeMap::new();
        // A create is read back through its listing, which proves where the new object
        // went only when the victim's listing is its own: one who lists everything (an
        // admin) would show the actor's new object too.
        let listing = super::listing_of(input.api, op);
        let lists_everything = |owner: usize| {
            listing.is_some_and(|listing| {
                input.access(listing, owner) == Some(crate::matrix::Access::Allow)
            })
        };
        for (index, object) in input.objects_for(op, actor, resource) {
            if input.may_reach(op, actor, object)
                || object.owner == actor
                || lists_everything(object.owner)
            {
                continue;
            }
            let count = per_victim.entry(object.owner).or_default();
            if *count >= PER_VICTIM {
                continue;
            }
            let Some(plain) = swap(input, op, target, object) else {
                continue;
            };
            let first_of_victim = *count == 0;
            *count += 1;
            // A delete's canary is gone once a flawed target obeys the plain swap, so its
            // other spellings would only meet a missing object; sent under the caller's
            // own parent, though, it reaches a server the plain swap did not fool.
            let deletes = input.api.operations[op].method == crate::spec::Method::Delete;
            let variants = match (first_of_victim, deletes) {
                (false, _) => Vec::new(),
                (true, false) => variants(input, op, actor, target, object, own, &plain),
                (true, true) => under_own_parent(input, op, actor, target, object, &plain)
                    .into_iter()
                    .collect(),
            };
            let baseline = input.baseline_for(op, Some(object));
            let plain_request = plain.request.clone();
            for (n, s) in std::iter::once(plain).chain(variants).enumerate() {
                out.push(
                    Probe::new(Attack::IdSwap, op, actor, s.request)
                        .object(index)
                        .baseline(baseline)
                        // Variants compare with the owner asking plainly (see
                        // `Probe::proves_by_victim_object`).
                        .baseline_request((n > 0).then(|| plain_request.clone()))
                        .access(access)
                        .write(s.write)
                        .detail(s.detail),
                );
            }
        }
    }
}

/// The plain swap: the victim's ID as it is, where the target says.
fn swap(input: &PlanInput<'_>, op: usize, target: Target<'_>, victim: &Object) -> Option<Swap> {
    let (request, write) = match target {
        Target::Param(_) => request_for(input, op, Some(victim))?,
        Target::Header(param) => {
            let (mut request, write) = request_for(input, op, None)?;
            request
                .headers
                .push((param.name.clone(), value_text(&victim.id)));
            (request, write)
        }
        Target::Body(body) => {
            let (mut request, write) = request_for(input, op, None)?;
            let value = if body.array {
                json!([victim.id])
            } else {
                victim.id.clone()
            };
            set_body_property(&mut request, &body.name, value)?;
            (request, write)
        }
    };
    Some(Swap {
        request,
        write,
        detail: target.describe(),
    })
}

/// Puts `value` in the body's top-level property `name`; `None` when there is no JSON
/// object body to put it in.
fn set_body_property(request: &mut RequestSpec, name: &str, value: Value) -> Option<()> {
    let Some(Value::Object(map)) = request.json.as_mut() else {
        return None;
    };
    map.insert(name.to_string(), value);
    Some(())
}

/// The other spellings of `victim`'s ID for `target`, each differing from the plain one;
/// for arrays also the victim's ID next to the actor's own.
fn variants(
    input: &PlanInput<'_>,
    op: usize,
    actor: usize,
    target: Target<'_>,
    victim: &Object,
    own: Option<&Object>,
    plain_swap: &Swap,
) -> Vec<Swap> {
    let plain = &plain_swap.request;
    let text = value_text(&victim.id);
    let base = target.describe();
    let mut out = Vec::new();
    if let (Target::Body(body), Some(own)) = (target, own) {
        if body.array {
            let mut request = plain.clone();
            if set_body_property(&mut request, &body.name, json!([own.id, victim.id])).is_some() {
                out.push(Swap {
                    request,
                    write: None,
                    detail: format!("{base}, victim's ID after the actor's own"),
                });
            }
        }
    }
    out.extend(under_own_parent(
        input, op, actor, target, victim, plain_swap,
    ));
    for encoding in Encoding::ALL {
        let request = match target {
            Target::Param(param) => param_variant(input, op, param, encoding, &text, plain),
            Target::Header(param) => encoded_text(encoding, &text)
                .filter(|_| encoding != Encoding::PercentEncoded)
                .map(|encoded| {
                    let mut request = plain.clone();
                    for (name, value) in request.headers.iter_mut() {
                        if *name == param.name {
                            *value = encoded.clone();
                        }
                    }
                    request
                }),
            Target::Body(body) => {
                // An array property gets the encoded ID as its element; wrapping it in
                // another array would only nest what is already an array.
                let value = encoded_value(encoding, &victim.id)
                    .filter(|_| !(body.array && encoding == Encoding::InArray));
                value.and_then(|v| {
                    let mut request = plain.clone();
                    let v = if body.array { json!([v]) } else { v };
                    set_body_property(&mut request, &body.name, v).map(|_| request)
                })
            }
        };
        if let Some(request) = request.filter(|r| r != plain) {
            out.push(Swap {
                request,
                write: None,
                detail: format!("{base}, {}", encoding.describe()),
            });
        }
    }
    // A variant that writes is confirmed like the plain swap: the owner re-reads the
    // object by its plain ID (each probe gets its own marker when the plan numbers it).
    for s in &mut out {
        s.write = plain_swap.write.clone();
    }
    out
}

/// `/projects/MINE/notes/{victim's note}`: for a server that checks the parent in the
/// path but not that the object lives under it. Confirmed like the plain swap.
fn under_own_parent(
    input: &PlanInput<'_>,
    op: usize,
    actor: usize,
    target: Target<'_>,
    victim: &Object,
    plain_swap: &Swap,
) -> Option<Swap> {
    if !matches!(target, Target::Param(_)) || victim.parents.is_empty() {
        return None;
    }
    let tenant = input.identities[actor].tenant.as_deref();
    let own: Vec<(String, Value)> = victim
        .parents
        .iter()
        .map(|(resource, _)| {
            let parent = input.corpus.own_parent(resource, actor, tenant)?;
            Some((resource.clone(), parent.id.clone()))
        })
        .collect::<Option<_>>()?;
    if own == victim.parents {
        return None;
    }
    let (request, _) = request_with_id(input, op, Some(&victim.id), &own)?;
    Some(Swap {
        request,
        write: plain_swap.write.clone(),
        detail: format!("{}, under the actor's own parent", target.describe()),
    })
}

/// A path or query variant of the plain request.
fn param_variant(
    input: &PlanInput<'_>,
    op: usize,
    param: &Parameter,
    encoding: Encoding,
    text: &str,
    plain: &RequestSpec,
) -> Option<RequestSpec> {
    match (param.location, encoding) {
        (ParamLocation::Query, Encoding::InArray) => {
            let mut request = plain.clone();
            let key = format!("{}[]", param.name);
            for (name, _) in request.query.iter_mut() {
                if *name == param.name {
                    *name = key.clone();
                }
            }
            Some(request)
        }
        (_, Encoding::PercentEncoded) => {
            let (mut request, _) = request_with_id(input, op, Some(&json!(SENTINEL)), &[])?;
            let raw = percent_all(text);
            if param.location == ParamLocation::Path {
                request.path = request.path.replace(SENTINEL, &raw);
            } else {
                // The query serializer would encode `%` again, so the query rides in the
                // path, already encoded (the executor appends it verbatim).
                let query = request.path_and_query();
                request.query.clear();
                request.path = query.replace(SENTINEL, &raw);
            }
            Some(request)
        }
        (_, Encoding::LeadingZeros | Encoding::CaseChanged) => {
            let encoded = encoded_text(encoding, text)?;
            let (mut request, _) = request_with_id(input, op, Some(&json!(SENTINEL)), &[])?;
            if param.location == ParamLocation::Path {
                request.path = request.path.replace(SENTINEL, &encode_segment(&encoded));
            } else {
                for (_, value) in request.query.iter_mut() {
                    if value == SENTINEL {
                        *value = encoded.clone();
                    }
                }
            }
            // The body (a write's) is the plain one, with its marker.
            request.json = plain.json.clone();
            Some(request)
        }
        _ => None,
    }
}

pub(super) fn location_name(location: ParamLocation) -> &'static str {
    match location {
        ParamLocation::Path => "path",
        ParamLocation::Query => "query",
        ParamLocation::Header => "header",
        ParamLocation::Cookie => "cookie",
    }
}
