//! Judging (pure, no I/O): a probe's exchange against the policy, the owner's baseline
//! response and, for writes, the owner's read-back before and after → a [`Judgement`].
//!
//! The layers, in order: transport (no answer), status class (5xx, redirects, refusals),
//! the engagement's detector rules (a `denied` rule makes a 2xx a refusal, a `granted` one
//! silences the soft-deny heuristics), soft-deny (a 2xx with an error-shaped body), the
//! victim's object in the body, similarity to the owner's answer (volatile fields known by
//! name or learned from two owner baselines set aside), other tenants' objects in the
//! body; writes are judged by the owner's read-back before and after instead, and
//! `existence-leak` by the caller's answer for a made-up ID (see `existence.rs`).
//! Verdicts about the run itself (a login lost, data reset, a write that took over its
//! owner's account) are in `disruption.rs`; the run gathers their facts.

pub mod disruption;
mod existence;
#[cfg(test)]
mod fuzz;
mod leak;
mod new_account;
mod similarity;

pub use leak::body_contains;
pub use new_account::{judge_gained_privilege, judge_new_account, AccountProof};
pub use similarity::{
    is_error_shaped, json_similarity, json_similarity_except, learn_volatile,
    same_ignoring_volatile, MAX_LEARNED,
};

use crate::discover::{Object, ObjectCorpus};
use crate::engagement::{first_match, Detector, Identity, Means};
use crate::exchange::Exchange;
use crate::plan::{Attack, Confirm, Probe};
use std::collections::BTreeSet;

/// JSON bodies at least this similar to the owner's carry the owner's data.
pub const SIMILAR: f64 = 0.8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Denied by policy, yet granted with the victim's data (or a confirmed write).
    Violation,
    /// Granted status, but the body does not prove the victim's data was served.
    Suspicious,
    /// Policy allows, API denies.
    OverRestricted,
    /// 5xx on a probe.
    ServerError,
    /// No basis to judge: the request failed, or the owner's own request did.
    Inconclusive,
    Enforced,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Violation => "violation",
            Verdict::Suspicious => "suspicious",
            Verdict::OverRestricted => "over-restricted",
            Verdict::ServerError => "server-error",
            Verdict::Inconclusive => "inconclusive",
            Verdict::Enforced => "enforced",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Judgement {
    pub verdict: Verdict,
    pub reason: String,
    /// Objects of other owners found in the body (indexes into the corpus).
    pub leaked: Vec<usize>,
    pub similarity: Option<f64>,
}

impl Judgement {
    pub fn new(verdict: Verdict, reason: impl Into<String>) -> Self {
        Judgement {
            verdict,
            reason: reason.into(),
            leaked: Vec::new(),
            similarity: None,
        }
    }
}

/// What the owner saw when re-reading the written object, before and after the probe.
pub struct ReadBack<'a> {
    pub before: &'a Exchange,
    pub after: &'a Exchange,
}

pub struct JudgeContext<'a> {
    pub corpus: &'a ObjectCorpus,
    pub identities: &'a [Identity],
    /// The engagement's detector rules, in file order.
    pub detectors: &'a [Detector],
    /// JSON paths learned volatile for this probe's baseline (two owner reads differed).
    pub volatile: &'a BTreeSet<String>,
}

pub fn judge(
    ctx: &JudgeContext<'_>,
    probe: &Probe,
    exchange: &Exchange,
    baseline: Option<&Exchange>,
    readback: Option<ReadBack<'_>>,
) -> Judgement {
    if let Some(error) = &exchange.error {
        if exchange.status.is_none() {
            return Judgement::new(Verdict::Inconclusive, format!("no answer: {error}"));
        }
    }
    let Some(status) = exchange.status else {
        return Judgement::new(Verdict::Inconclusive, "no answer");
    };
    // 501 Not Implemented is how some servers refuse a method they do not route (where
    // others say 405): a refusal, not a crash.
    if status == 501 && !probe.expect_granted {
        return Judgement::new(
            Verdict::Enforced,
            "answered 501 Not Implemented: the server does not take this request",
        );
    }
    if status >= 500 {
        return Judgement::new(Verdict::ServerError, format!("answered {status}"));
    }
    // The engagement's rules know this target's denial and grant shapes; the first match
    // (in file order) overrides what the status class and the heuristics would say.
    let rule = first_match(
        ctx.detectors,
        &exchange.answer(),
        &[Means::Denied, Means::Granted],
    );
    let denied_by_rule = rule.filter(|r| r.means == Means::Denied);
    let granted_by_rule = rule.is_some_and(|r| r.means == Means::Granted);
    let success = (200..300).contains(&status) && denied_by_rule.is_none();
    let refusal = |what: &str| match denied_by_rule {
        Some(r) => format!("{what} {status}, a denial by detector `{}`", r.name),
        None => format!("{what} {status}"),
    };
    match probe.attack {
        Attack::ExistenceLeak => {
            let (foreign_id, missing_id) = probe
                .baseline_request
                .as_ref()
                .map(|missing| differing_values(&probe.request, missing))
                .unwrap_or_default();
            return existence::judge(ctx.detectors, exchange, &foreign_id, baseline, &missing_id);
        }
        Attack::ListLeak if !success => {
            return Judgement::new(
                Verdict::OverRestricted,
                format!(
                    "the policy lets this role list its own records; {}",
                    refusal("the API answered")
                ),
            )
        }
        Attack::ListLeak => return judge_listing(ctx, probe, exchange, status),
        // A 5xx (above), or an accepted bad body that the read-back shows stored.
        Attack::Malformed => {
            if let (true, Some(w), Some(rb)) = (success, &probe.write, &readback) {
                if let Confirm::Fields(fields) = &w.confirm {
                    let stored = stored_fields(fields, rb);
                    if !stored.is_empty() {
                        return Judgement::new(
                            Verdict::Violation,
                            format!(
                                "accepted the schema-violating body ({status}) and the read-back \
                                 shows the invalid value(s) stored: {}",
                                stored.join(", ")
                            ),
                        );
                    }
                }
            }
            return Judgement::new(
                Verdict::Enforced,
                if (200..300).contains(&status) {
                    format!("accepted the schema-violating body ({status}); no server error")
                } else {
                    format!("refused the schema-violating body with {status}")
                },
            );
        }
        _ => {}
    }
    if probe.expect_granted {
        return if success {
            Judgement::new(Verdict::Enforced, format!("allowed as declared ({status})"))
        } else {
            Judgement::new(
                Verdict::OverRestricted,
                format!("the policy allows it, {}", refusal("the API answered")),
            )
        };
    }
    if (300..400).contains(&status) {
        let to_login = exchange.location.as_deref().is_some_and(|l| {
            let l = l.to_ascii_lowercase();
            ["login", "signin", "sign-in", "auth", "sso"]
                .iter()
                .any(|w| l.contains(w))
        });
        return if to_login {
            Judgement::new(
                Verdict::Enforced,
                format!("redirected to a login page ({status})"),
            )
        } else {
            Judgement::new(
                Verdict::Suspicious,
                format!("redirected ({status}) instead of refused"),
            )
        };
    }
    if !success {
        return Judgement::new(Verdict::Enforced, refusal("refused with"));
    }
    if let Some(write) = &probe.write {
        if let Confirm::Answer(fields) = &write.confirm {
            return judge_answer_fields(fields, status, exchange);
        }
        return judge_write(
            write.readback.is_some(),
            &write.marker,
            &write.confirm,
            status,
            readback,
        );
    }
    if probe.proves_by_victim_object() {
        return judge_pollution(ctx, probe, exchange, baseline, status);
    }
    judge_read(ctx, probe, exchange, baseline, status, granted_by_rule)
}

/// The first path segment or query value where two requests differ: the foreign and
/// the made-up ID of an `existence-leak` probe.
fn differing_values(
    a: &crate::request::RequestSpec,
    b: &crate::request::RequestSpec,
) -> (String, String) {
    let segments = a.path.split('/').zip(b.path.split('/'));
    let values = a.query.iter().map(|(_, v)| v.as_str());
    let values = values.zip(b.query.iter().map(|(_, v)| v.as_str()));
    segments
        .chain(values)
        .find(|(x, y)| x != y)
        .map(|(x, y)| (x.to_string(), y.to_string()))
        .unwrap_or_default()
}

/// A refusal the body says is one (error-shaped), whatever the status.
fn refused_with_error_body(status: u16) -> Judgement {
    Judgement::new(
        Verdict::Enforced,
        format!("refused with {status} and an error body"),
    )
}

/// The victim's object (corpus index `index`) found in the answer: proof by itself.
fn victim_object_served(status: u16, object: &Object, index: Option<usize>) -> Judgement {
    let mut j = Judgement::new(
        Verdict::Violation,
        format!(
            "answered {status} with the victim's object {} {}",
            object.resource,
            object.id_text()
        ),
    );
    j.leaked.extend(index);
    j
}

/// `param-pollution` and `id-swap` variants answer only one question: was the victim's
/// object served? The caller's own object (which one of the IDs names, or which a server
/// ignoring an odd ID form falls back to) is a legitimate answer, so similarity (same
/// shape, other data) proves nothing here.
fn judge_pollution(
    ctx: &JudgeContext<'_>,
    probe: &Probe,
    exchange: &Exchange,
    baseline: Option<&Exchange>,
    status: u16,
) -> Judgement {
    let json = exchange.json();
    if json.as_ref().is_some_and(is_error_shaped) {
        return refused_with_error_body(status);
    }
    if let Some(object) = probe.object.and_then(|i| ctx.corpus.objects.get(i)) {
        if body_contains(&exchange.body, json.as_ref(), object) {
            return victim_object_served(status, object, probe.object);
        }
    }
    let Some(baseline) = baseline.filter(|b| b.is_success()) else {
        return Judgement::new(
            Verdict::Inconclusive,
            format!("answered {status}; the victim's owner could not fetch the object to compare"),
        );
    };
    if let Some(mut j) = identical_body(exchange, baseline, status, "the victim's owner's") {
        j.leaked.extend(probe.object);
        return j;
    }
    Judgement::new(
        Verdict::Enforced,
        format!("answered {status} without the victim's object"),
    )
}

fn judge_write(
    has_readback: bool,
    marker: &str,
    confirm: &Confirm,
    status: u16,
    readback: Option<ReadBack<'_>>,
) -> Judgement {
    if !has_readback {
        return Judgement::new(
            Verdict::Suspicious,
            format!("write answered {status}; the spec has no read of the object to confirm it"),
        );
    }
    let Some(rb) = readback else {
        return Judgement::new(Verdict::Inconclusive, "the owner's read-back was not made");
    };
    let readable = |e: &Exchange| e.is_success() && !e.json().as_ref().is_some_and(is_error_shaped);
    if *confirm == Confirm::Gone {
        return judge_delete(status, &rb, readable(rb.before), readable(rb.after));
    }
    if !readable(rb.before) || !readable(rb.after) {
        return Judgement::new(
            Verdict::Inconclusive,
            "the owner could not read the object back, so the write cannot be confirmed",
        );
    }
    match confirm {
        Confirm::Marker | Confirm::Gone | Confirm::Answer(_) => {}
        Confirm::Fields(fields) => return judge_fields(fields, status, &rb),
        Confirm::AnyChange => {
            let changed = match (rb.before.json(), rb.after.json()) {
                (Some(a), Some(b)) => !same_ignoring_volatile(&a, &b),
                _ => rb.before.body != rb.after.body,
            };
            return read_back_verdict(status, changed, "changed");
        }
    }
    let contains = |e: &Exchange| String::from_utf8_lossy(&e.body).contains(marker);
    let changed = contains(rb.after) && !contains(rb.before);
    read_back_verdict(status, changed, "shows the change")
}

/// A write judged by the owner's read-back: `changed` (it `shows` so) is the violation.
fn read_back_verdict(status: u16, changed: bool, shows: &str) -> Judgement {
    if changed {
        Judgement::new(
            Verdict::Violation,
            format!("write answered {status} and the owner's read-back {shows}"),
        )
    } else {
        Judgement::new(
            Verdict::Enforced,
            format!("write answered {status} but the owner's read-back shows no change"),
        )
    }
}

/// A delete is proven only by the object existing before (the owner read it) and being
/// gone after (404 or 410 to its owner). Still readable after: the 2xx changed nothing.
fn judge_delete(status: u16, rb: &ReadBack<'_>, before: bool, after: bool) -> Judgement {
    if !before {
        return Judgement::new(
            Verdict::Inconclusive,
            "the owner could not read the object before the delete, so it cannot be confirmed",
        );
    }
    if after {
        return Judgement::new(
            Verdict::Enforced,
            format!("delete answered {status} but the owner still reads the object"),
        );
    }
    match rb.after.status {
        Some(gone @ (404 | 410)) => Judgement::new(
            Verdict::Violation,
            format!("delete answered {status} and the owner's read-back now answers {gone}"),
        ),
        other => Judgement::new(
            Verdict::Inconclusive,
            format!(
                "delete answered {status}; the owner's read-back answered {} instead of the object or 404",
                other.map_or_else(|| "nothing".to_string(), |s| s.to_string())
            ),
        ),
    }
}

/// The `fields` the read-back shows set to the value sent, having had another before,
/// as `` `name` = value ``.
fn stored_fields(fields: &[(String, serde_json::Value)], rb: &ReadBack<'_>) -> Vec<String> {
    let (before, after) = (rb.before.json(), rb.after.json());
    let field = |v: &Option<serde_json::Value>, k: &str| v.as_ref().and_then(|v| v.get(k)).cloned();
    fields
        .iter()
        .filter(|(k, sent)| {
            field(&after, k).as_ref() == Some(sent) && field(&before, k).as_ref() != Some(sent)
        })
        .map(|(k, sent)| {
            // A huge invalid value says what it is in its first characters.
            let text = sent.to_string();
            let chars = text.chars().count();
            if chars > 120 {
                let head: String = text.chars().take(100).collect();
                format!("`{k}` = {head}… ({chars} characters)")
            } else {
                format!("`{k}` = {text}")
            }
        })
        .collect()
}

/// `mass-assignment` on sign-up: the answer describing the new account (at the top, or
/// under one wrapper object) shows which privileged fields were honoured.
fn judge_answer_fields(
    fields: &[(String, serde_json::Value)],
    status: u16,
    exchange: &Exchange,
) -> Judgement {
    let json = exchange.json();
    let top = json.as_ref().and_then(|v| v.as_object());
    let wrapped = top.and_then(|o| {
        let objects: Vec<&serde_json::Map<String, serde_json::Value>> =
            o.values().filter_map(|v| v.as_object()).collect();
        (objects.len() == 1).then(|| objects[0])
    });
    let honoured: Vec<String> = fields
        .iter()
        .filter(|(k, sent)| {
            top.and_then(|o| o.get(k)) == Some(sent) || wrapped.and_then(|o| o.get(k)) == Some(sent)
        })
        .map(|(k, sent)| format!("`{k}` = {sent}"))
        .collect();
    privileged_fields(
        &honoured,
        format!(
            "answered {status}; the new account shows none of the {} privileged field(s) sent",
            fields.len()
        ),
        format!("answered {status} and the new account it describes has privileged field(s) set"),
    )
}

/// `mass-assignment`'s two outcomes: privileged fields `found` set (a violation, listed
/// after `found_text`), or none (enforced, `none_text`).
fn privileged_fields(found: &[String], none_text: String, found_text: String) -> Judgement {
    if found.is_empty() {
        Judgement::new(Verdict::Enforced, none_text)
    } else {
        Judgement::new(
            Verdict::Violation,
            format!("{found_text}: {}", found.join(", ")),
        )
    }
}

/// `mass-assignment`: which privileged fields the read-back shows set to the value sent.
fn judge_fields(
    fields: &[(String, serde_json::Value)],
    status: u16,
    rb: &ReadBack<'_>,
) -> Judgement {
    let stored = stored_fields(fields, rb);
    privileged_fields(
        &stored,
        format!(
            "answered {status}; the read-back shows none of the {} privileged field(s) stored",
            fields.len()
        ),
        format!("answered {status} and the caller's read-back shows privileged field(s) stored"),
    )
}

fn judge_read(
    ctx: &JudgeContext<'_>,
    probe: &Probe,
    exchange: &Exchange,
    baseline: Option<&Exchange>,
    status: u16,
    granted_by_rule: bool,
) -> Judgement {
    let body_json = exchange.json();
    if !granted_by_rule && body_json.as_ref().is_some_and(is_error_shaped) {
        return refused_with_error_body(status);
    }
    // The victim's object named in the request, found in the answer, is proof by itself.
    if let Some(object) = probe.object.and_then(|i| ctx.corpus.objects.get(i)) {
        if object.owner != probe.actor && body_contains(&exchange.body, body_json.as_ref(), object)
        {
            return victim_object_served(status, object, probe.object);
        }
    }
    // A filter that found nothing (`{"count": 0, "results": []}`) served nothing, whatever
    // the legitimate caller's own answer holds.
    if !probe.expect_granted && body_json.as_ref().is_some_and(is_empty_collection) {
        return Judgement::new(
            Verdict::Enforced,
            format!("answered {status} with an empty list: nothing was served"),
        );
    }
    let Some(baseline) = baseline else {
        return Judgement::new(
            Verdict::Suspicious,
            format!("answered {status}; no legitimate caller's answer to compare with"),
        );
    };
    let baseline_json = baseline.json();
    if existence::is_denial(baseline, ctx.detectors) {
        return Judgement::new(
            Verdict::Inconclusive,
            format!(
                "answered {status}, but the legitimate caller's own request was refused ({})",
                baseline
                    .status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "no answer".into())
            ),
        );
    }
    let mut judgement = match (&body_json, &baseline_json) {
        (Some(a), Some(b)) => {
            let score = json_similarity_except(a, b, ctx.volatile);
            let mut j = if score >= SIMILAR {
                Judgement::new(
                    Verdict::Violation,
                    format!(
                        "answered {status} with a body {:.0}% like the legitimate caller's",
                        score * 100.0
                    ),
                )
            } else {
                Judgement::new(
                    Verdict::Suspicious,
                    format!(
                        "answered {status}, body only {:.0}% like the legitimate caller's",
                        score * 100.0
                    ),
                )
            };
            j.similarity = Some(score);
            j
        }
        _ => identical_body(exchange, baseline, status, "the legitimate caller's").unwrap_or_else(
            || {
                Judgement::new(
                    Verdict::Suspicious,
                    format!("answered {status} with a body unlike the legitimate caller's"),
                )
            },
        ),
    };
    // Other tenants' objects in the body turn a doubt into proof.
    if judgement.verdict == Verdict::Suspicious {
        let leaked = foreign_objects(ctx, probe, &exchange.body, body_json.as_ref());
        if !leaked.is_empty() {
            judgement.verdict = Verdict::Violation;
            judgement.reason = format!(
                "{}; it holds {} object(s) of other tenants",
                judgement.reason,
                leaked.len()
            );
            judgement.leaked = leaked;
        }
    }
    judgement
}

/// An empty list, bare or wrapped (`[]`, `{"count": 0, "results": []}`): an object with
/// at least one array, all of them empty, and nothing else but scalars.
fn is_empty_collection(body: &serde_json::Value) -> bool {
    use serde_json::Value;
    match body {
        Value::Array(items) => items.is_empty(),
        Value::Object(fields) => {
            let arrays: Vec<&Vec<Value>> = fields.values().filter_map(Value::as_array).collect();
            !arrays.is_empty()
                && arrays.iter().all(|a| a.is_empty())
                && fields.values().all(|v| !v.is_object())
        }
        _ => false,
    }
}

/// A whole, non-empty body identical to the baseline's: a violation whose reason says
/// whose body it is (`whose`: "the victim's owner's", "the legitimate caller's").
fn identical_body(
    exchange: &Exchange,
    baseline: &Exchange,
    status: u16,
    whose: &str,
) -> Option<Judgement> {
    if exchange.body.is_empty() || exchange.body != baseline.body || exchange.truncated {
        return None;
    }
    let mut j = Judgement::new(
        Verdict::Violation,
        format!(
            "answered {status} with exactly {whose} body ({} bytes)",
            exchange.body.len()
        ),
    );
    j.similarity = Some(1.0);
    Some(j)
}

/// Objects in the body that belong to a tenant other than the actor's.
fn foreign_objects(
    ctx: &JudgeContext<'_>,
    probe: &Probe,
    body: &[u8],
    json: Option<&serde_json::Value>,
) -> Vec<usize> {
    let actor_tenant = ctx
        .identities
        .get(probe.actor)
        .and_then(|i| i.tenant.as_ref());
    ctx.corpus
        .objects
        .iter()
        .enumerate()
        .filter(|(_, o)| o.owner != probe.actor)
        .filter(|(_, o)| match (actor_tenant, &o.tenant) {
            (Some(a), Some(t)) => a != t,
            // An anonymous caller or a tenantless one has no tenant's objects of its own.
            (None, Some(_)) => true,
            _ => false,
        })
        .filter(|(_, o)| body_contains(body, json, o))
        .map(|(i, _)| i)
        .collect()
}

fn judge_listing(
    ctx: &JudgeContext<'_>,
    probe: &Probe,
    exchange: &Exchange,
    status: u16,
) -> Judgement {
    if !(200..300).contains(&status) {
        return Judgement::new(
            Verdict::OverRestricted,
            format!("the policy lets this role list its own records; the API answered {status}"),
        );
    }
    let json = exchange.json();
    let leaked = foreign_objects(ctx, probe, &exchange.body, json.as_ref());
    if leaked.is_empty() {
        return Judgement::new(
            Verdict::Enforced,
            format!("answered {status} with no other tenant's objects"),
        );
    }
    let mut j = Judgement::new(
        Verdict::Violation,
        format!(
            "answered {status} with {} object(s) of other tenants",
            leaked.len()
        ),
    );
    j.leaked = leaked;
    j
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer(body: serde_json::Value) -> Exchange {
        Exchange {
            status: Some(200),
            body: body.to_string().into_bytes(),
            ..Exchange::default()
        }
    }

    fn probe(attack: Attack) -> Probe {
        let request = crate::request::RequestSpec {
            method: crate::spec::Method::Get,
            path: "/admin/users/2".into(),
            query: vec![],
            headers: vec![],
            json: None,
        };
        Probe::new(attack, 0, 0, request).baseline(1)
    }

    fn detector(yaml: &str) -> Vec<Detector> {
        let text = format!(
            "target: http://127.0.0.1:9\nspec: s.yaml\nmatrix: m.csv\nidentities:\n  - name: a\n    role: r\n    auth:\n      bearer: t\ndetectors:\n{yaml}"
        );
        let env = crate::engagement::EnvSource::default();
        crate::engagement::Engagement::parse(&text, std::path::Path::new("e.yaml"), &env)
            .map(|e| e.detectors)
            .unwrap_or_default()
    }

    fn run(
        detectors: &[Detector],
        volatile: &BTreeSet<String>,
        p: &Probe,
        e: &Exchange,
        b: Option<&Exchange>,
    ) -> Judgement {
        let corpus = ObjectCorpus::default();
        let ctx = JudgeContext {
            corpus: &corpus,
            identities: &[],
            detectors,
            volatile,
        };
        judge(&ctx, p, e, b, None)
    }

    /// The verdict on `e` with no learned volatile paths, `owner` as the baseline.
    fn verdict(detectors: &[Detector], p: &Probe, e: &Exchange, owner: &Exchange) -> Verdict {
        run(detectors, &BTreeSet::new(), p, e, Some(owner)).verdict
    }

    fn html(status: u16, text: &str) -> Exchange {
        Exchange {
            status: Some(status),
            content_type: Some("text/html".into()),
            body: text.as_bytes().to_vec(),
            ..Exchange::default()
        }
    }

    #[test]
    fn an_empty_list_serves_nothing_whatever_the_owner_sees() {
        let p = probe(Attack::IdSwap);
        let owner = answer(json!({"count": 1, "results": [{"id": 5, "reason": "checkup"}]}));
        let filtered = answer(json!({"count": 0, "next": null, "results": []}));
        assert_eq!(verdict(&[], &p, &filtered, &owner), Verdict::Enforced);
        assert_eq!(
            verdict(&[], &p, &answer(json!([])), &owner),
            Verdict::Enforced
        );
        // A list with the owner's items is not empty, and an object holding one is no list.
        assert_eq!(verdict(&[], &p, &owner, &owner), Verdict::Violation);
        let nested = answer(json!({"page": {"total": 0}, "results": []}));
        assert_ne!(verdict(&[], &p, &nested, &owner), Verdict::Enforced);
    }

    #[test]
    fn status_layer_refusals_and_server_errors() {
        let p = probe(Attack::Escalation);
        let owner = answer(json!({"id": 2}));
        assert_eq!(
            verdict(&[], &p, &html(403, "no"), &owner),
            Verdict::Enforced
        );
        assert_eq!(
            verdict(&[], &p, &html(502, "x"), &owner),
            Verdict::ServerError
        );
        // 501 is a method the server does not route: refused, not crashed.
        assert_eq!(
            verdict(&[], &p, &html(501, "Unsupported method"), &owner),
            Verdict::Enforced
        );
        let mut allowed = probe(Attack::IdSwap);
        allowed.expect_granted = true;
        assert_eq!(
            verdict(&[], &allowed, &html(404, "x"), &owner),
            Verdict::OverRestricted
        );
    }

    #[test]
    fn a_denied_rule_turns_a_200_page_into_a_refusal() {
        let none = BTreeSet::new();
        let p = probe(Attack::Escalation);
        let owner = answer(json!({"id": 2, "email": "b@x", "role": "client"}));
        let page = html(200, "<p>You are not permitted to view this page.</p>");
        // Without the rule the page reads as served: a doubt the report would show.
        assert_eq!(verdict(&[], &p, &page, &owner), Verdict::Suspicious);
        let rules = detector(
            "  - name: html-denial\n    pattern: not permitted to view\n    means: denied\n",
        );
        assert_eq!(rules.len(), 1);
        let j = run(&rules, &none, &p, &page, Some(&owner));
        assert_eq!(j.verdict, Verdict::Enforced);
        assert!(j.reason.contains("html-denial"), "{}", j.reason);
        // A policy-allowed call answered with the denial page is over-restricted.
        let mut allowed = p.clone();
        allowed.expect_granted = true;
        assert_eq!(
            verdict(&rules, &allowed, &page, &owner),
            Verdict::OverRestricted
        );
    }

    #[test]
    fn soft_deny_layer_and_a_granted_rule_that_overrides_it() {
        let p = probe(Attack::IdSwap);
        let owner = answer(json!({"ok": true, "error": null, "id": 2, "subject": "s"}));
        let soft = answer(json!({"ok": false, "error": "ticket not available"}));
        assert_eq!(verdict(&[], &p, &soft, &owner), Verdict::Enforced);
        // This target's successes carry `"error": "none"`, which looks error-shaped: the
        // engagement says what a grant looks like, and similarity decides.
        let served = answer(json!({"error": "none", "id": 2}));
        let owner = answer(json!({"error": "none", "id": 2}));
        assert_eq!(verdict(&[], &p, &served, &owner), Verdict::Enforced);
        let rules = detector(
            "  - name: envelope-ok\n    pattern: '\"error\":\"none\"'\n    means: granted\n",
        );
        assert_eq!(rules.len(), 1);
        assert_eq!(verdict(&rules, &p, &served, &owner), Verdict::Violation);
    }

    #[test]
    fn learned_volatile_paths_let_similarity_see_the_same_body() {
        let p = probe(Attack::BadAuth);
        let me = |nonce: &str| {
            answer(
                json!({"id": 1, "email": "a@x", "name": "A", "role": "client", "tenant_id": "acme", "render_id": nonce}),
            )
        };
        let (first, second, forged) = (me("k3v9x"), me("q8z1y"), me("m2w7z"));
        let none = BTreeSet::new();
        // By name alone the nonce drags the forged answer under the threshold.
        let j = run(&[], &none, &p, &forged, Some(&first));
        assert_eq!(j.verdict, Verdict::Suspicious, "{}", j.reason);
        let learned = learn_volatile(
            &first.json().unwrap_or_default(),
            &second.json().unwrap_or_default(),
        );
        let j = run(&[], &learned, &p, &forged, Some(&first));
        assert_eq!(j.verdict, Verdict::Violation, "{}", j.reason);
        assert_eq!(j.similarity, Some(1.0));
    }

    #[test]
    fn mass_assignment_needs_the_sent_value_stored() {
        let fields = vec![
            ("tenant_id".to_string(), json!("globex")),
            ("role".to_string(), json!("admin")),
        ];
        let before = answer(json!({"id": 501, "tenant_id": "acme"}));
        let moved = answer(json!({"id": 501, "tenant_id": "globex"}));
        let rb = ReadBack {
            before: &before,
            after: &moved,
        };
        let j = judge_fields(&fields, 200, &rb);
        assert_eq!(j.verdict, Verdict::Violation);
        assert!(j.reason.contains("`tenant_id`") && !j.reason.contains("`role`"));
        // Unchanged, or already holding the value before: nothing was assigned.
        let rb = ReadBack {
            before: &before,
            after: &before,
        };
        assert_eq!(judge_fields(&fields, 200, &rb).verdict, Verdict::Enforced);
        let rb = ReadBack {
            before: &moved,
            after: &moved,
        };
        assert_eq!(judge_fields(&fields, 200, &rb).verdict, Verdict::Enforced);
    }

    #[test]
    fn any_change_ignores_timestamps() {
        let before = answer(json!({"id": 1, "role": "client", "role_changes": 0, "seen_at": "a"}));
        let touched = answer(json!({"id": 1, "role": "client", "role_changes": 0, "seen_at": "b"}));
        let counted = answer(json!({"id": 1, "role": "client", "role_changes": 1, "seen_at": "a"}));
        let judge = |after: &Exchange| {
            judge_write(
                true,
                "m",
                &Confirm::AnyChange,
                200,
                Some(ReadBack {
                    before: &before,
                    after,
                }),
            )
            .verdict
        };
        assert_eq!(judge(&touched), Verdict::Enforced);
        assert_eq!(judge(&counted), Verdict::Violation);
    }
}
