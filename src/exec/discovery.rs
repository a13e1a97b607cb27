//! Discovery's requests, sent: every identity reads the collections it may read, paging
//! through each (bounded, on-origin only), then the collections under the parents those
//! answers gave, a level at a time. Shared by the scan and the load mode.

use super::Executor;
use crate::discover::{self, DiscoveryRequest};
use crate::engagement::Identity;
use crate::matrix::Policy;
use crate::request::Credential;
use crate::spec::Api;
use futures_util::StreamExt;
use std::collections::BTreeMap;

/// Each page read, with its JSON body when the answer was a 2xx JSON document. Reads
/// under a parent (`/orgs/{org}/projects`, `/projects/{id}/tasks`) go one level deeper
/// each round, with the parents the previous rounds listed, up to [`discover::MAX_DEPTH`].
pub async fn fetch_collections(
    executor: &Executor,
    api: &Api,
    policy: &Policy,
    identities: &[Identity],
    harvest_paths: &BTreeMap<String, String>,
    concurrency: usize,
) -> Vec<(DiscoveryRequest, Option<serde_json::Value>)> {
    let mut parents = discover::context_values(api, identities);
    let mut sent = std::collections::HashSet::new();
    let mut answers = Vec::new();
    for _ in 0..=discover::MAX_DEPTH {
        let requests: Vec<DiscoveryRequest> =
            discover::discovery_requests(api, policy, identities, &parents)
                .into_iter()
                .filter(|d| {
                    // One listing can produce several resources (orders, and the users
                    // their `userId` names): each is read for its own items.
                    let key = (
                        d.op,
                        d.identity,
                        d.resource.clone(),
                        d.request.path_and_query(),
                    );
                    sent.insert(key)
                })
                .collect();
        if requests.is_empty() {
            break;
        }
        let round = fetch_pages(executor, api, harvest_paths, requests, concurrency).await;
        discover::learn_parents(&mut parents, &round, harvest_paths);
        answers.extend(round);
    }
    answers
}

/// Each of `requests` read page by page, bounded by [`discover::MAX_PAGES`].
async fn fetch_pages(
    executor: &Executor,
    api: &Api,
    harvest_paths: &BTreeMap<String, String>,
    requests: Vec<DiscoveryRequest>,
    concurrency: usize,
) -> Vec<(DiscoveryRequest, Option<serde_json::Value>)> {
    let executor_ref = executor;
    let pages: Vec<Vec<(DiscoveryRequest, Option<serde_json::Value>)>> =
        futures_util::stream::iter(requests)
            .map(|d| async move {
                // Page through the collection, bounded; each page is one answer.
                let mut answers = Vec::new();
                let mut seen = std::collections::HashSet::new();
                let mut current = d;
                for _ in 0..discover::MAX_PAGES {
                    let exchange = executor_ref
                        .send(
                            &current.request,
                            current.identity,
                            Credential::Normal,
                            &api.operations[current.op].key(),
                        )
                        .await;
                    let body = exchange.is_success().then(|| exchange.json()).flatten();
                    let items = body
                        .as_ref()
                        .map(|b| {
                            discover::items_of(
                                b,
                                harvest_paths.get(&current.resource).map(String::as_str),
                                &current.shape,
                            )
                        })
                        .unwrap_or_default();
                    let new_ids = items
                        .iter()
                        .filter(|(id, _)| seen.insert(id.to_string()))
                        .count();
                    let next = if new_ids == 0 {
                        None
                    } else {
                        discover::next_page(
                            api,
                            current.op,
                            &current.request,
                            body.as_ref(),
                            exchange.link.as_deref(),
                            items.len(),
                            executor_ref.base(),
                        )
                    };
                    answers.push((current.clone(), body));
                    match next {
                        Some(request) if request != current.request => current.request = request,
                        _ => break,
                    }
                }
                answers
            })
            .buffered(concurrency.max(1))
            .collect()
            .await;
    pages.into_iter().flatten().collect()
}

/// Each identity's self-read (`GET /me` and kin, where the matrix does not deny it): the
/// facts its answer states about the identity, per identity index (empty when none),
/// and how many requests that took.
pub async fn fetch_self_facts(
    executor: &Executor,
    api: &Api,
    policy: &Policy,
    identities: &[Identity],
) -> (Vec<BTreeMap<String, serde_json::Value>>, usize) {
    let mut out = vec![BTreeMap::new(); identities.len()];
    let mut sent = 0;
    let ops = discover::facts::self_read_operations(api);
    for (i, identity) in identities.iter().enumerate() {
        if identity.is_anonymous() {
            continue;
        }
        for &op in &ops {
            if policy
                .access(op, &identity.role)
                .is_some_and(|a| a == crate::matrix::Access::Deny)
                || policy.untested.contains(&op)
            {
                continue;
            }
            let Some(request) = crate::request::build_request(api, op, None, "") else {
                continue;
            };
            let exchange = executor
                .send(&request, i, Credential::Normal, &api.operations[op].key())
                .await;
            sent += 1;
            if let Some(body) = exchange.is_success().then(|| exchange.json()).flatten() {
                for (k, v) in discover::facts::facts_of(&body) {
                    out[i].entry(k).or_insert(v);
                }
            }
        }
    }
    (out, sent)
}
