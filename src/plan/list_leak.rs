//! `list-leak`: collections, searches and exports called by identities scoped to `own` or
//! `tenant`; the judge looks in the answer for objects of other tenants.

use super::{request_for, Attack, PlanInput, Probe};

pub(super) fn plan(input: &PlanInput<'_>, op: usize, actor: usize, out: &mut Vec<Probe>) {
    let operation = &input.api.operations[op];
    if !input.sendable(op)
        || !operation.method.is_safe()
        || operation.path_params().next().is_some()
    {
        return;
    }
    if input.id_param(op).is_some() {
        return;
    }
    let Some(access) = input.limited_access(op, actor) else {
        return;
    };
    let Some((request, _)) = request_for(input, op, None) else {
        return;
    };
    out.push(
        Probe::new(Attack::ListLeak, op, actor, request)
            .access(access)
            .expect_granted()
            .detail("the answer must hold no other tenant's objects"),
    );
}
