//! The scan's setup reads, before any probe: each identity's self-facts (`GET /me`), the
//! collections it may read (page by page), the positive controls, and from their answers
//! the object corpus with its owners; the warnings they raise (unmatched hints,
//! ambiguous owners, resources with no object, weak token secrets).

use super::{ScanError, ScanInput};
use crate::discover::{self, ObjectCorpus};
use crate::engagement::{Engagement, Identity};
use crate::exec::Executor;
use crate::request::TokenFacts;

/// What discovery leaves for planning.
pub(super) struct Discovered {
    pub corpus: ObjectCorpus,
    /// In the order the report lists them, after the engagement's standing warnings.
    pub warnings: Vec<String>,
    /// Self-reads and collection reads sent.
    pub requests: usize,
    /// What each identity's own token says (for forgeries and the weak-secret check).
    pub tokens: Vec<TokenFacts>,
}

/// Learns identity facts into `identities` (declared attributes win) and harvests the
/// object corpus. Fails when no request reached the target at all.
pub(super) async fn discover(
    executor: &Executor,
    input: &ScanInput,
    identities: &mut [Identity],
) -> Result<Discovered, ScanError> {
    let engagement = &input.engagement;
    // What each identity's own self-read says about it (`GET /me`): its user ID, name,
    // team. Declared attributes win; learned ones fill the gaps.
    let (self_facts, self_reads) =
        crate::exec::discovery::fetch_self_facts(executor, &input.api, &input.policy, identities)
            .await;
    let mut owner_names: Vec<Vec<String>> = vec![Vec::new(); identities.len()];
    for (i, facts) in self_facts.into_iter().enumerate() {
        if let Some(name) = discover::facts::login_name(&identities[i]) {
            owner_names[i].push(name);
        }
        for (k, v) in facts {
            if discover::facts::is_identifying(&k) {
                if let Some(text) = v.as_str() {
                    owner_names[i].push(text.to_string());
                }
            }
            identities[i].attributes.entry(k).or_insert(v);
        }
    }

    // Discovery: every identity reads the collections it may read, page by page.
    let answers = crate::exec::discovery::fetch_collections(
        executor,
        &input.api,
        &input.policy,
        identities,
        &engagement.harvest,
        engagement.concurrency,
    )
    .await;
    let requests = answers.len() + self_reads;
    // Nothing answered at all (TLS refused, no route, proxy down): stop with the reason
    // rather than report a scan of nothing.
    if let (0, Some(failure)) = executor.reachability() {
        return Err(ScanError::Setup(format!(
            "no request reached the target {}: {failure}",
            engagement.target
        )));
    }
    // Positive controls: each identity's first successful collection read. A probe that
    // later looks logged out is re-checked against it before being believed.
    let mut controls = Vec::new();
    for (i, _) in identities.iter().enumerate() {
        if let Some((d, _)) = answers
            .iter()
            .find(|(d, body)| d.identity == i && body.is_some())
        {
            controls.push((i, d.request.clone(), input.api.operations[d.op].key()));
        }
    }
    let control_failures = executor.check_controls(controls).await;
    let mut owner_values = engagement.owner_values.clone();
    owner_values.resize(identities.len(), Vec::new());
    // Learned identifying facts count as owner values too (`owner_id: 5` for user_id 5).
    for (i, identity) in identities.iter().enumerate() {
        for (k, v) in &identity.attributes {
            let text = crate::request::value_text(v);
            if discover::facts::is_identifying(k) && !owner_values[i].contains(&text) {
                owner_values[i].push(text);
            }
        }
    }
    let mut ownership = ownership(engagement, owner_values, owner_names);
    // The organisations (tenants, accounts) path parameters name and nothing lists: each
    // identity's own, as objects a probe can swap like any other.
    let context = discover::context_values(&input.api, identities);
    for (resource, id, owner) in discover::context_objects(&context) {
        if !ownership
            .seeds
            .iter()
            .any(|(r, v, _)| *r == resource && *v == id)
        {
            ownership.seeds.push((resource, id, owner));
        }
    }
    let corpus = discover::harvest(
        &input.policy,
        identities,
        &answers,
        &engagement.harvest,
        &ownership,
    );
    let mut warnings: Vec<String> = Vec::new();
    warnings.extend(control_failures.iter().map(|(name, reason)| {
        format!("identity `{name}` failed its positive control before the scan: {reason}")
    }));
    warnings.extend(discover::unmatched_hints(
        &input.api,
        &engagement.source,
        &engagement.harvest,
        &engagement
            .seed_objects
            .iter()
            .map(|s| (s.resource.clone(), s.id.clone()))
            .collect::<Vec<_>>(),
        &corpus,
    ));
    warnings.extend(
        corpus
            .ambiguous
            .iter()
            .map(|a| format!("ownership ambiguous, left out: {a}")),
    );
    for resource in input.api.collections.keys() {
        if !corpus.objects.iter().any(|o| &o.resource == resource) {
            warnings.push(format!(
                "no `{resource}` object was discovered: probes that need one were not planned"
            ));
        }
    }

    // Offline: does any identity's own token verify under a weak corpus secret? An HMAC
    // computed here, so no request is spent on a key that is not weak.
    let tokens = executor.token_facts();
    for (identity, facts) in identities.iter().zip(&tokens) {
        if let Some(line) = facts.weak_secret {
            warnings.push(format!(
                "identity `{}`'s token is signed HS256 with the weak secret `{}` (corpora/jwt-weak-secrets.txt line {line}): anyone can mint tokens this API accepts",
                identity.name,
                crate::request::weak_secret_at(line).unwrap_or("?")
            ));
        }
    }
    Ok(Discovered {
        corpus,
        warnings,
        requests,
        tokens,
    })
}

/// How objects get their owners: the engagement's owner fields and seed objects, with
/// the owner values and names per identity (index order).
pub(super) fn ownership(
    engagement: &Engagement,
    owner_values: Vec<Vec<String>>,
    owner_names: Vec<Vec<String>>,
) -> discover::Ownership {
    discover::Ownership {
        owner_fields: engagement.owner_fields.clone(),
        owner_values,
        seeds: engagement
            .seed_objects
            .iter()
            .map(|s| (s.resource.clone(), s.id.clone(), s.owner))
            .collect(),
        owner_names,
    }
}
