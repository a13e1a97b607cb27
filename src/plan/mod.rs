//! Planning (pure, no I/O): Api × identities × objects × policy → probes, each with the
//! request to send, who sends it, whose data is at stake and what the policy expects.
//! One file per attack kind; the order is deterministic for the same inputs and seed.

mod bad_auth;
mod escalation;
mod existence_leak;
mod id_swap;
mod list_leak;
mod malformed;
mod mass_assignment;
mod method_override;
mod new_account;
mod no_auth;
mod param_pollution;
mod probe;
mod rebuild;
mod self_service;
mod tenant_swap;
mod verb_swap;

pub use malformed::{shrink_body, MalformedCase};
pub use new_account::NewAccount;
pub use probe::{Attack, Confirm, Probe, WriteCheck};
pub use rebuild::rebuild as rebuild_after_blame;

use crate::discover::{Object, ObjectCorpus};
use crate::engagement::Identity;
use crate::matrix::{Access, Policy};
use crate::request::{RequestSpec, TokenFacts};
use crate::spec::{Api, Method, Parameter};

pub struct PlanInput<'a> {
    pub api: &'a Api,
    pub policy: &'a Policy,
    pub identities: &'a [Identity],
    pub corpus: &'a ObjectCorpus,
    pub allow_mutations: bool,
    /// Mixed into write markers so runs against the same server do not see each other's.
    pub run_nonce: String,
    /// What each identity's live token showed when read offline (same order as
    /// `identities`; shorter or empty = nothing known).
    pub tokens: Vec<TokenFacts>,
}

impl<'a> PlanInput<'a> {
    /// A read-only plan (no writes, no token facts) with this write-marker nonce: where
    /// tests and benches start; a scan sets every field from its engagement.
    pub fn new(
        api: &'a Api,
        policy: &'a Policy,
        identities: &'a [Identity],
        corpus: &'a ObjectCorpus,
        run_nonce: &str,
    ) -> Self {
        PlanInput {
            api,
            policy,
            identities,
            corpus,
            allow_mutations: false,
            run_nonce: run_nonce.to_string(),
            tokens: Vec::new(),
        }
    }

    fn access(&self, op: usize, identity: usize) -> Option<Access> {
        self.policy.access(op, &self.identities[identity].role)
    }

    /// `actor`'s access to `op` when `actor` has credentials and the matrix lets it call
    /// `op` at all: who may write its own objects.
    fn granted_access(&self, op: usize, actor: usize) -> Option<Access> {
        if self.identities[actor].is_anonymous() {
            return None;
        }
        self.access(op, actor).filter(|a| *a != Access::Deny)
    }

    /// `actor`'s access to `op` when `actor` has credentials and is limited to some
    /// objects (`own` or `tenant`): the only callers to whom another's object can leak
    /// (`deny` is escalation's case; `allow` has nothing to swap).
    fn limited_access(&self, op: usize, actor: usize) -> Option<Access> {
        if self.identities[actor].is_anonymous() {
            return None;
        }
        self.access(op, actor)
            .filter(|a| matches!(a, Access::Own | Access::Tenant))
    }

    /// Operations the planner may send: reads (by method or `x-rolegrid-safe`) always,
    /// writes only when allowed.
    fn sendable(&self, op: usize) -> bool {
        !self.policy.untested.contains(&op)
            && (self.api.operations[op].is_read_only() || self.allow_mutations)
    }

    /// The first ID-carrying path or query parameter and its resource.
    fn id_param(&self, op: usize) -> Option<(&Parameter, &str)> {
        self.api.operations[op].id_param()
    }

    /// Whether the policy lets `identity` reach `object` through `op`.
    pub fn may_reach(&self, op: usize, identity: usize, object: &Object) -> bool {
        let who = &self.identities[identity];
        match self.access(op, identity) {
            None | Some(Access::Deny) => false,
            Some(Access::Allow) => true,
            Some(Access::Tenant) => who.tenant.is_some() && who.tenant == object.tenant,
            Some(Access::Own) => object.owner == identity,
        }
    }

    /// Whether a probe of `op` sent by `actor` may aim at object `index` (see [`targetable`]).
    pub fn may_target(&self, op: usize, actor: usize, index: usize) -> bool {
        targetable(self.api, self.corpus, self.identities, op, actor, index)
    }

    /// The objects of `resource` a probe of `op` sent by `actor` may aim at.
    fn objects_for(
        &self,
        op: usize,
        actor: usize,
        resource: &str,
    ) -> impl Iterator<Item = (usize, &'a Object)> + 'a {
        let (api, corpus, identities) = (self.api, self.corpus, self.identities);
        corpus
            .of_resource(resource)
            .filter(move |(i, _)| targetable(api, corpus, identities, op, actor, *i))
    }

    /// The first object of `resource` that `actor` owns and may reach with `op`: its
    /// own object, the baseline of writes and of mixed-ID probes.
    fn own_object(&self, op: usize, actor: usize, resource: &str) -> Option<(usize, &'a Object)> {
        self.objects_for(op, actor, resource)
            .find(|(_, o)| o.owner == actor && self.may_reach(op, actor, o))
    }

    /// The object a function-level probe aims at: the actor's own when it has one (the
    /// only question is whether the role may call the function), else the first known.
    fn object_for_function(
        &self,
        op: usize,
        resource: &str,
        actor: usize,
    ) -> Option<(usize, &Object)> {
        let mut first = None;
        for (i, o) in self.objects_for(op, actor, resource) {
            if o.owner == actor {
                return Some((i, o));
            }
            first = first.or(Some((i, o)));
        }
        first
    }

    /// The identity whose answer is the reference for `op`: the object's owner when the
    /// policy lets the owner call it, else the first identity with the widest access.
    fn baseline_for(&self, op: usize, object: Option<&Object>) -> Option<usize> {
        if let Some(o) = object {
            if self.may_reach(op, o.owner, o) {
                return Some(o.owner);
            }
        }
        let mut best: Option<(Access, usize)> = None;
        for i in 0..self.identities.len() {
            if let Some(a) = self.access(op, i) {
                let reaches = match object {
                    Some(o) => self.may_reach(op, i, o),
                    None => a != Access::Deny,
                };
                if reaches && best.is_none_or(|(b, _)| a > b) {
                    best = Some((a, i));
                }
            }
        }
        best.map(|(_, i)| i)
    }

    /// `probe` aimed at `object` (index and object, when the request names one) and
    /// compared with the answer of the baseline identity for it ([`Self::baseline_for`]).
    fn aim(&self, probe: Probe, object: Option<(usize, &Object)>) -> Probe {
        let baseline = self.baseline_for(probe.op, object.map(|(_, o)| o));
        probe.object(object.map(|(i, _)| i)).baseline(baseline)
    }

    fn token(&self, identity: usize) -> TokenFacts {
        self.tokens.get(identity).cloned().unwrap_or_default()
    }

    fn marker(&self, probe_id: usize) -> String {
        format!("rolegrid-{}-{probe_id}", self.run_nonce)
    }

    /// A GET elsewhere that reads the object `op` names by its ID (`GET /tasks/{task_id}`
    /// for `DELETE /projects/{project_id}/tasks/{task_id}`), filled with `id` and `parents`.
    fn item_read(
        &self,
        op: usize,
        id: &serde_json::Value,
        parents: &[(String, serde_json::Value)],
    ) -> Option<RequestSpec> {
        let (_, resource) = self.id_param(op)?;
        let read = self.api.operations.iter().position(|o| {
            o.method == Method::Get && o.id_param().is_some_and(|(_, r)| r == resource)
        })?;
        let given = naming(self.api, read, Some(id), parents)?;
        crate::request::build_request_with(self.api, read, &given, "")
    }

    /// The GET that shows the object a write targets: the same path, else another read of
    /// the object by its ID, else the same path's parent.
    fn readback_for(
        &self,
        op: usize,
        request: &RequestSpec,
        object: Option<(&serde_json::Value, &[(String, serde_json::Value)])>,
    ) -> Option<RequestSpec> {
        let path = &self.api.operations[op].path;
        if !self
            .api
            .operations
            .iter()
            .any(|o| o.method == Method::Get && &o.path == path)
        {
            if let Some(read) = object.and_then(|(id, parents)| self.item_read(op, id, parents)) {
                return Some(read);
            }
        }
        let mut candidates = vec![path.clone()];
        if let Some((parent, _)) = path.rsplit_once('/') {
            candidates.push(parent.to_string());
        }
        let filled_parent = request.path.rsplit_once('/').map(|(p, _)| p.to_string());
        for (n, candidate) in candidates.iter().enumerate() {
            let found = self
                .api
                .operations
                .iter()
                .any(|o| o.method == Method::Get && &o.path == candidate);
            if found {
                let filled = if n == 0 {
                    request.path.clone()
                } else {
                    filled_parent.clone()?
                };
                return Some(RequestSpec {
                    method: Method::Get,
                    path: filled,
                    query: request.query.clone(),
                    headers: Vec::new(),
                    json: None,
                });
            }
        }
        None
    }
}

/// Whether `op` creates an object in a collection: a POST or PUT on the path a listing
/// reads (`POST /orgs/{org}/projects` beside `GET /orgs/{org}/projects`). A listing is
/// a read the resource model knows answers a list, or that discovery reads; a GET that
/// shows one thing (`GET /users/{name}/role`) makes its PUT an update, not a create.
fn creates(api: &Api, op: usize) -> bool {
    listing_of(api, op).is_some()
}

/// The listing a create adds to ([`creates`]): the GET on its path.
pub(super) fn listing_of(api: &Api, op: usize) -> Option<usize> {
    let operation = &api.operations[op];
    let lists = |read: usize| {
        api.collections.values().flatten().any(|&l| l == read)
            || api.resources.values().any(|r| {
                r.producers.iter().any(|p| {
                    p.op == read && p.items_path.as_deref().is_some_and(|i| i.ends_with("[*]"))
                })
            })
    };
    if !matches!(operation.method, Method::Post | Method::Put) {
        return None;
    }
    api.operations
        .iter()
        .enumerate()
        .position(|(read, o)| o.method == Method::Get && o.path == operation.path && lists(read))
}

/// Whether `object` is the account of one of the run's identities: its ID is one of the
/// owner's identifying attributes (`_id`, `user_id` from its self-read).
fn is_identity_account(identities: &[Identity], object: &Object) -> bool {
    identities.get(object.owner).is_some_and(|owner| {
        owner
            .attributes
            .iter()
            .any(|(k, v)| *v == object.id && crate::discover::facts::is_identifying(k))
    })
}

/// Whether a probe of `op` sent by `actor` may aim at object `index`. Reads aim at
/// discovered objects only. Writes aim only at canaries rolegrid created: a delete at those
/// reserved for (this delete, this caller), every other write at the unreserved ones.
/// Discovered and seed objects are never written to.
fn targetable(
    api: &Api,
    corpus: &ObjectCorpus,
    identities: &[Identity],
    op: usize,
    actor: usize,
    index: usize,
) -> bool {
    let method = api.operations[op].method;
    let tag = corpus.canary(index);
    if api.operations[op].is_read_only() {
        return tag.is_none();
    }
    let object = &corpus.objects[index];
    let parent_in_path = api.operations[op]
        .path_params()
        .any(|p| p.id_resource.as_deref() == Some(object.resource.as_str()));
    match tag {
        // A create under a parent (`POST /orgs/{org}/projects`) adds a child and leaves
        // the parent as it was: any parent may be named.
        // (The cheap test on the object first: `creates` reads the whole description.)
        None if parent_in_path && creates(api, op) => true,
        // A create naming one of the run's own accounts in its body (`"userId": …`) files
        // a new object in that account's name; the account, the tester's, is unchanged.
        None if is_identity_account(identities, object) && creates(api, op) => true,
        None => method != Method::Delete && corpus.discovered_writable(index),
        Some(tag) if method == Method::Delete => tag.reserved == Some((op, actor)),
        Some(tag) => tag.reserved.is_none(),
    }
}

/// One attack's planner: adds the probes for one operation sent by one actor (none when
/// the attack does not apply).
type Planner = fn(&PlanInput<'_>, usize, usize, &mut Vec<Probe>);

/// The planners of the main passes, in the order their probes are sent.
const PLANNERS: [Planner; 12] = [
    id_swap::plan,
    existence_leak::plan,
    list_leak::plan,
    escalation::plan,
    no_auth::plan,
    bad_auth::plan,
    param_pollution::plan,
    method_override::plan,
    verb_swap::plan,
    tenant_swap::plan,
    self_service::plan,
    malformed::plan,
];

/// The probes `planners` make for one operation sent by one actor: a small batch, whatever
/// the plan's size.
fn batch(input: &PlanInput<'_>, op: usize, actor: usize, planners: &[Planner]) -> Vec<Probe> {
    let mut probes = Vec::new();
    for planner in planners {
        planner(input, op, actor, &mut probes);
    }
    probes
}

/// Which operations a pass plans.
#[derive(Clone, Copy, PartialEq)]
enum Pass {
    Reads,
    /// Unsafe methods other than DELETE.
    Writes,
    Deletes,
}

impl Pass {
    fn takes(self, op: &crate::spec::Operation) -> bool {
        match self {
            Pass::Reads => op.is_read_only(),
            Pass::Writes => !op.is_read_only() && op.method != Method::Delete,
            Pass::Deletes => !op.is_read_only() && op.method == Method::Delete,
        }
    }
}

/// The probes of the operations one pass takes, one (operation, actor) batch at a time.
fn pass<'a>(input: &'a PlanInput<'a>, which: Pass) -> impl Iterator<Item = Probe> + 'a {
    (0..input.api.operations.len())
        .filter(move |&op| which.takes(&input.api.operations[op]))
        .flat_map(move |op| {
            (0..input.identities.len()).flat_map(move |actor| batch(input, op, actor, &PLANNERS))
        })
}

/// Every operation × actor batch of one planner: the late passes below.
fn planner_pass<'a>(
    input: &'a PlanInput<'a>,
    planner: Planner,
) -> impl Iterator<Item = Probe> + 'a {
    (0..input.api.operations.len()).flat_map(move |op| {
        (0..input.identities.len()).flat_map(move |actor| batch(input, op, actor, &[planner]))
    })
}

/// The plan, as a lazy iterator: probes are built one (operation, actor) batch at a time,
/// so memory stays flat however large the plan. Reads come first, then writes, mass
/// assignment, and deletes last, so no read judges data an earlier write in the same run
/// has changed and no write meets an object a delete removed. Probe ids count from 0 in
/// this order; the same input gives the same sequence.
pub fn plan<'a>(input: &'a PlanInput<'a>) -> impl Iterator<Item = Probe> + 'a {
    pass(input, Pass::Reads)
        .chain(pass(input, Pass::Writes))
        // Mass assignment after the other writes: on a flawed target its writes move objects between
        // tenants, and no other write should be judged on a moved object.
        .chain(planner_pass(input, mass_assignment::plan))
        .chain(pass(input, Pass::Deletes))
        // Mass assignment on the callers' own accounts and on sign-up goes after
        // everything else: on a flawed target it changes the caller's own role, which no
        // later probe should be judged under.
        .chain(planner_pass(input, self_service::plan_mass_assignment))
        .enumerate()
        .map(move |(i, mut p)| {
            p.id = i;
            if let Some(w) = &mut p.write {
                let marker = input.marker(i);
                if let Some(body) = &mut p.request.json {
                    replace_marker(body, &w.marker, &marker);
                }
                if let Confirm::Fields(fields) | Confirm::Answer(fields) = &mut w.confirm {
                    for (_, value) in fields.iter_mut() {
                        replace_marker(value, &w.marker, &marker);
                    }
                }
                w.marker = marker;
            }
            p
        })
}

/// The target object (index and object), the plain request and its write check.
type DeniedCall<'a> = (Option<(usize, &'a Object)>, RequestSpec, Option<WriteCheck>);

/// A function-level call `actor` is denied, ready to send another way (method override,
/// verb swap): aimed at the actor's own object (else the first known), the body's fields
/// kept at their current values so a flawed target records the call (audit fields)
/// without the object changing under the rest of the scan, and a write confirmed only by
/// a read-back. `None` when the matrix does not deny it or nothing can confirm a write.
fn denied_call<'a>(input: &'a PlanInput<'a>, op: usize, actor: usize) -> Option<DeniedCall<'a>> {
    if !input.sendable(op)
        || input.identities[actor].is_anonymous()
        || input.access(op, actor) != Some(Access::Deny)
    {
        return None;
    }
    let resource = input.id_param(op).map(|(_, r)| r);
    let object = resource.and_then(|r| input.object_for_function(op, r, actor));
    if resource.is_some() && object.is_none() {
        return None;
    }
    let (mut plain, mut write) = request_for(input, op, object.map(|(_, o)| o))?;
    if let (Some(body), Some((_, o))) = (plain.json.as_mut(), object) {
        keep_current_values(body, o);
    }
    if let Some(w) = write.as_mut() {
        // A write nobody can read back would only ever be "suspicious".
        w.readback.as_ref()?;
        let marked = plain
            .json
            .as_ref()
            .is_some_and(|b| b.to_string().contains(&w.marker));
        w.confirm = if w.confirm == Confirm::Gone {
            Confirm::Gone
        } else if marked {
            Confirm::Marker
        } else {
            Confirm::AnyChange
        };
    }
    Some((object, plain, write))
}

/// The (operation, role) cells that write or delete probes cannot reach because no canary
/// of the object they name exists, each with the reason (for the coverage report). Empty
/// when mutations are not allowed: writes are then not planned at all.
pub fn canary_gaps(input: &PlanInput<'_>) -> std::collections::BTreeMap<(usize, String), String> {
    let mut gaps = std::collections::BTreeMap::new();
    if !input.allow_mutations {
        return gaps;
    }
    for op in 0..input.api.operations.len() {
        if input.api.operations[op].is_read_only() || !input.sendable(op) {
            continue;
        }
        let Some((_, resource)) = input.id_param(op) else {
            continue;
        };
        for (actor, identity) in input.identities.iter().enumerate() {
            let access = input.access(op, actor);
            let nothing_to_attack = access.is_none()
                || (access == Some(Access::Allow)
                    && input.api.operations[op].method == Method::Delete);
            if nothing_to_attack || input.objects_for(op, actor, resource).next().is_some() {
                continue;
            }
            let reason = input.corpus.canary_gap(resource).map_or_else(
                || format!("no canary {resource} object for this caller (creation failed or the canary cap was reached)"),
                str::to_string,
            );
            gaps.entry((op, identity.role.clone())).or_insert(reason);
        }
    }
    gaps
}

/// Sets the body's top-level fields that `object` already has to their current values,
/// so the request by itself changes nothing (only what an attack adds can).
fn keep_current_values(body: &mut serde_json::Value, object: &Object) {
    if let serde_json::Value::Object(map) = body {
        for (k, v) in map.iter_mut() {
            if let Some(current) = object.fields.get(k) {
                *v = current.clone();
            }
        }
    }
}

/// The top-level properties of a JSON schema (`allOf` parts merged), each resolved.
fn properties<'a>(
    api: &'a Api,
    schema: &'a serde_json::Value,
) -> Vec<(&'a str, &'a serde_json::Value)> {
    let schema = api.resolve(schema);
    let mut out: Vec<(&str, &serde_json::Value)> = schema
        .get("properties")
        .and_then(|p| p.as_object())
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), api.resolve(v)))
        .collect();
    for part in schema
        .get("allOf")
        .and_then(|a| a.as_array())
        .into_iter()
        .flatten()
    {
        out.extend(properties(api, part));
    }
    out
}

/// The JSON schema of an operation's first success response.
fn response_schema(operation: &crate::spec::Operation) -> Option<&serde_json::Value> {
    operation
        .responses
        .iter()
        .filter(|r| r.status.starts_with('2'))
        .flat_map(|r| r.content.iter())
        .find(|m| m.content_type.contains("json"))
        .and_then(|m| m.schema.as_ref())
}

/// Writes are planned with a placeholder marker; the final one depends on the probe id.
const PLACEHOLDER_MARKER: &str = "rolegrid-marker";

fn replace_marker(value: &mut serde_json::Value, from: &str, to: &str) {
    match value {
        serde_json::Value::String(s) if s == from => *s = to.to_string(),
        serde_json::Value::Array(a) => a.iter_mut().for_each(|v| replace_marker(v, from, to)),
        serde_json::Value::Object(o) => o.values_mut().for_each(|v| replace_marker(v, from, to)),
        _ => {}
    }
}

/// The request for `op` aimed at `object` (when it names one), with write confirmation.
fn request_for(
    input: &PlanInput<'_>,
    op: usize,
    object: Option<&Object>,
) -> Option<(RequestSpec, Option<WriteCheck>)> {
    let parents = object.map_or(&[][..], |o| &o.parents[..]);
    let (mut request, write) = request_with_id(input, op, object.map(|o| &o.id), parents)?;
    if let (Some(body), Some(object)) = (request.json.as_mut(), object) {
        // A write naming the owner's own object with someone else's user ID would be
        // refused for that reason, not for the access rule under test.
        let owner = &input.identities[object.owner];
        crate::discover::use_own_values(body, PLACEHOLDER_MARKER, |field| {
            object
                .fields
                .get(field)
                .or_else(|| owner.attributes.get(field))
        });
    }
    Some((request, write))
}

/// `op`'s parameters given values: `id` in its ID parameter, and `parents` in the path
/// parameters of their resources. `None` when `op` names an object and `id` is none.
fn naming<'a>(
    api: &'a Api,
    op: usize,
    id: Option<&'a serde_json::Value>,
    parents: &'a [(String, serde_json::Value)],
) -> Option<Vec<(&'a Parameter, &'a serde_json::Value)>> {
    let id_param = api.operations[op].id_param().map(|(param, _)| param);
    let mut given = match (id_param, id) {
        (Some(param), Some(id)) => vec![(param, id)],
        (Some(_), None) => return None,
        (None, _) => Vec::new(),
    };
    for param in api.operations[op].path_params() {
        let parent = param
            .id_resource
            .as_deref()
            .and_then(|resource| parents.iter().find(|(r, _)| r == resource).map(|(_, v)| v));
        if let (Some(value), false) = (parent, id_param.is_some_and(|p| std::ptr::eq(p, param))) {
            given.push((param, value));
        }
    }
    Some(given)
}

/// [`request_for`] with `id` (any value, an encoded one too) in the ID parameter, and the
/// object's `parents` in the path parameters that name them.
fn request_with_id(
    input: &PlanInput<'_>,
    op: usize,
    id: Option<&serde_json::Value>,
    parents: &[(String, serde_json::Value)],
) -> Option<(RequestSpec, Option<WriteCheck>)> {
    let given = naming(input.api, op, id, parents)?;
    let mut request =
        crate::request::build_request_with(input.api, op, &given, PLACEHOLDER_MARKER)?;
    if let Some(body) = request.json.as_mut() {
        crate::discover::use_seen_values(body, PLACEHOLDER_MARKER, &input.corpus.field_values, 1);
    }
    let write = if input.api.operations[op].is_read_only() {
        None
    } else {
        let readback = input.readback_for(op, &request, id.map(|v| (v, parents)));
        let carries_marker = request
            .json
            .as_ref()
            .is_some_and(|b| b.to_string().contains(PLACEHOLDER_MARKER));
        Some(WriteCheck {
            readback,
            marker: PLACEHOLDER_MARKER.to_string(),
            confirm: if input.api.operations[op].method == Method::Delete {
                Confirm::Gone
            } else if carries_marker || request.json.is_none() {
                Confirm::Marker
            } else {
                Confirm::AnyChange
            },
        })
    };
    Some((request, write))
}

#[cfg(test)]
mod tests;
