//! `tenant-swap`: where the spec lets a header choose the tenant (`X-Tenant-Id`, `X-Org`,
//! `X-Account`…), an identity scoped to its own tenant sends its own credential with
//! another tenant's value. The reference is that tenant's own identity sending the same
//! request: an answer like it means the header, not the token, decided the tenant.
//!
//! Reads only, and only operations without an object ID (where the header alone picks
//! the data). Tenant values come from the other identity's attributes (`tenant_id`,
//! `tenant`, `org_id`, `account_id`), else its engagement `tenant`. A tenant chosen by a
//! server URL variable is not attacked yet.

use super::{request_for, Attack, PlanInput, Probe};
use crate::matrix::Access;
use crate::spec::ParamLocation;

/// Header names (lower case) that choose a tenant; any header naming a tenant counts too.
const TENANT_HEADERS: &[&str] = &[
    "x-tenant",
    "x-tenant-id",
    "tenant-id",
    "x-org",
    "x-org-id",
    "x-organization",
    "x-organization-id",
    "x-account",
    "x-account-id",
    "x-company-id",
    "x-workspace-id",
];

/// Attributes that hold an identity's tenant value as the API spells it.
const TENANT_ATTRIBUTES: &[&str] = &[
    "tenant_id",
    "tenant",
    "org_id",
    "organization_id",
    "account_id",
];

fn is_tenant_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    TENANT_HEADERS.contains(&name.as_str()) || name.contains("tenant")
}

pub(super) fn plan(input: &PlanInput<'_>, op: usize, actor: usize, out: &mut Vec<Probe>) {
    let operation = &input.api.operations[op];
    if !input.sendable(op) || !operation.method.is_safe() || input.id_param(op).is_some() {
        return;
    }
    let Some(header) = operation
        .parameters
        .iter()
        .find(|p| p.location == ParamLocation::Header && is_tenant_header(&p.name))
    else {
        return;
    };
    let who = &input.identities[actor];
    let access = match input.access(op, actor) {
        Some(a @ (Access::Own | Access::Tenant)) => a,
        _ => return,
    };
    let Some(own_tenant) = who.tenant.as_deref() else {
        return;
    };
    let Some((plain, _)) = request_for(input, op, None) else {
        return;
    };
    // One probe per other tenant, against the first identity of that tenant allowed in.
    let mut seen: Vec<&str> = Vec::new();
    for (victim, other) in input.identities.iter().enumerate() {
        let Some(tenant) = other.tenant.as_deref() else {
            continue;
        };
        if tenant == own_tenant
            || seen.contains(&tenant)
            || other.is_anonymous()
            || matches!(input.access(op, victim), None | Some(Access::Deny))
        {
            continue;
        }
        seen.push(tenant);
        let value = TENANT_ATTRIBUTES
            .iter()
            .find_map(|k| other.attributes.get(*k))
            .map(crate::request::value_text)
            .unwrap_or_else(|| tenant.to_string());
        let mut request = plain.clone();
        request.headers.push((header.name.clone(), value.clone()));
        out.push(
            Probe::new(Attack::TenantSwap, op, actor, request)
                .baseline(victim)
                .access(access)
                .detail(format!(
                    "`{}: {value}` (the tenant of `{}`) with `{}`'s credential",
                    header.name, other.name, who.name
                )),
        );
    }
}
