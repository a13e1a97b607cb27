//! `bad-auth`: an identity's own request replayed with its credential broken (garbage,
//! `alg: none`, expired, truncated, wrong signature): a server that still answers with the
//! identity's data does not verify its tokens. And, when an identity's own HS256 token
//! verified offline under a weak corpus secret, tokens re-signed with that secret that
//! claim another identity's subject or role.
//!
//! Weak secrets cost no request unless one is found: the executor checks every corpus
//! secret against each live token locally (an HMAC). A server that signs with a key
//! outside the corpus could only accept a corpus-signed token if it did not check
//! signatures at all, and the wrong-signature forgery already asks that. One key signs
//! every token, so its impact is shown once per identity: on the first read the matrix
//! denies the identity, claiming a caller it allows.

use super::{request_for, Attack, PlanInput, Probe};
use crate::matrix::Access;
use crate::request::{ClaimSwap, Credential, Forgery};

const FORGERIES: [Forgery; 5] = [
    Forgery::Garbage,
    Forgery::AlgNone,
    Forgery::Expired,
    Forgery::Truncated,
    Forgery::WrongSignature,
];

/// Called for every actor; plans the broken-credential probes and the weak-secret ones.
pub(super) fn plan(input: &PlanInput<'_>, op: usize, for_actor: usize, out: &mut Vec<Probe>) {
    broken(input, op, for_actor, out);
    weak_secret(input, op, for_actor, out);
}

/// The operation, object and impersonated identity of `actor`'s weak-secret probes: the
/// first read the matrix denies `actor` whose legitimate caller has a subject to claim.
fn weak_secret_target(
    input: &PlanInput<'_>,
    actor: usize,
) -> Option<(usize, Option<usize>, usize)> {
    (0..input.api.operations.len()).find_map(|op| {
        if !input.sendable(op)
            || !input.api.operations[op].method.is_safe()
            || input.access(op, actor) != Some(Access::Deny)
        {
            return None;
        }
        let resource = input.id_param(op).map(|(_, r)| r);
        let object = match resource {
            Some(r) => Some(input.object_for_function(op, r, actor)?),
            None => None,
        };
        let victim = input.baseline_for(op, object.map(|(_, o)| o))?;
        let who = &input.identities[victim];
        let has_subject = input.token(victim).subject
            || ["sub", "user_id", "id", "uid"]
                .iter()
                .any(|k| who.attributes.contains_key(*k));
        (victim != actor && !who.is_anonymous() && has_subject).then_some((
            op,
            object.map(|(i, _)| i),
            victim,
        ))
    })
}

fn weak_secret(input: &PlanInput<'_>, op: usize, actor: usize, out: &mut Vec<Probe>) {
    let facts = input.token(actor);
    let Some(line) = facts.weak_secret else {
        return;
    };
    if input.identities[actor].is_anonymous() {
        return;
    }
    let Some((target, object, victim)) = weak_secret_target(input, actor) else {
        return;
    };
    if target != op {
        return;
    }
    let Some((request, _)) = request_for(input, op, object.map(|i| &input.corpus.objects[i]))
    else {
        return;
    };
    let mut claims = vec![ClaimSwap::Subject(victim)];
    if facts.role_claim && input.identities[victim].role != input.identities[actor].role {
        claims.push(ClaimSwap::Role(victim));
    }
    for claim in claims {
        let forgery = Forgery::WeakSecret { line, claim };
        let detail = format!(
            "{} (`{}`)",
            forgery.describe(),
            input.identities[victim].name
        );
        let target = Target {
            op,
            actor,
            object,
            baseline: victim,
            access: Access::Deny,
        };
        out.push(target.probe(forgery, request.clone(), detail));
    }
}

/// Where a forged credential is sent, and whose answer is the reference.
struct Target {
    op: usize,
    actor: usize,
    object: Option<usize>,
    baseline: usize,
    access: Access,
}

impl Target {
    fn probe(
        &self,
        forgery: Forgery,
        request: crate::request::RequestSpec,
        detail: String,
    ) -> Probe {
        Probe::new(Attack::BadAuth, self.op, self.actor, request)
            .credential(Credential::Forged(forgery))
            .object(self.object)
            .baseline(self.baseline)
            .access(self.access)
            .detail(detail)
    }
}

/// The identity's own request with a broken credential; one actor per operation.
fn broken(input: &PlanInput<'_>, op: usize, for_actor: usize, out: &mut Vec<Probe>) {
    let anonymous = input.identities.iter().position(|i| i.is_anonymous());
    {
        if !input.sendable(op) || !input.api.operations[op].method.is_safe() {
            return;
        }
        if anonymous.is_some_and(|a| input.access(op, a) != Some(Access::Deny)) {
            return;
        }
        let resource = input.id_param(op).map(|(_, r)| r);
        // One actor per operation: the first token holder allowed to call it, on its own object.
        let chosen = (0..input.identities.len()).find_map(|actor| {
            let identity = &input.identities[actor];
            let access = input.access(op, actor)?;
            if access == Access::Deny || !identity.auth.carries_token() {
                return None;
            }
            match resource {
                None => Some((actor, access, None)),
                Some(r) => input
                    .objects_for(op, actor, r)
                    .find(|(_, o)| o.owner == actor)
                    .map(|(i, o)| (actor, access, Some((i, o)))),
            }
        });
        let Some((actor, access, object)) = chosen else {
            return;
        };
        if actor != for_actor {
            return;
        }
        let Some((request, _)) = request_for(input, op, object.map(|(_, o)| o)) else {
            return;
        };
        let target = Target {
            op,
            actor,
            object: object.map(|(i, _)| i),
            baseline: actor,
            access,
        };
        // An opaque token has no header, claims or signature to re-encode.
        let opaque = input.token(actor).not_jwt;
        for forgery in FORGERIES {
            let jwt_only = matches!(
                forgery,
                Forgery::AlgNone | Forgery::Expired | Forgery::WrongSignature
            );
            if opaque && jwt_only {
                continue;
            }
            out.push(target.probe(forgery, request.clone(), forgery.describe()));
        }
    }
}
