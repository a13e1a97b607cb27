//! One line of facts per operation for `rolegrid ops SPEC`: what the planner can do with it.

use super::model::{Api, Method, Operation, Security};
use serde::Serialize;
use std::fmt;

/// What the planner can do with an operation, as far as the description tells.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "detail")]
pub enum Capability {
    /// Every ID parameter names a resource that some listing operation provides.
    Attackable,
    /// An ID parameter names a resource no GET collection lists: objects must be given.
    NeedsObject(String),
    /// Nothing to test, and why.
    Skipped(String),
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Capability::Attackable => f.write_str("attackable"),
            Capability::NeedsObject(resource) => write!(f, "needs object of {resource}"),
            Capability::Skipped(why) => write!(f, "skipped: {why}"),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct OperationSummary {
    pub method: Method,
    pub path: String,
    pub operation_id: Option<String>,
    /// `public`, or the alternatives: `bearerAuth | apiKey + oauth2`.
    pub security: String,
    /// `name (location) → resource ← source` for each ID parameter and ID-carrying body
    /// property (`invoice_ids[] (body) → invoices ← GET /invoices $[*].id (response
    /// schema)`): where discovery gets its values, or why nothing provides them.
    pub id_params: Vec<String>,
    pub capability: Capability,
}

pub fn operation_summaries(api: &Api) -> Vec<OperationSummary> {
    api.operations
        .iter()
        .map(|op| OperationSummary {
            method: op.method,
            path: op.path.clone(),
            operation_id: op.operation_id.clone(),
            security: security_text(&op.security),
            id_params: op
                .parameters
                .iter()
                .filter_map(|p| {
                    let resource = p.id_resource.as_ref()?;
                    let location = serde_json::to_value(p.location)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default();
                    Some(format!(
                        "{} ({location}) → {resource} ← {}",
                        p.name,
                        source_text(api, resource)
                    ))
                })
                .chain(op.body_ids.iter().map(|b| {
                    let brackets = if b.array { "[]" } else { "" };
                    format!(
                        "{}{brackets} (body) → {} ← {}",
                        b.name,
                        b.resource,
                        source_text(api, &b.resource)
                    )
                }))
                .collect(),
            capability: capability(api, op),
        })
        .collect()
}

/// Where the values of `resource`'s identifiers come from: the best producer (operation
/// and JSON path), or why none was found.
pub fn source_text(api: &Api, resource: &str) -> String {
    let Some(r) = api.resources.get(resource) else {
        return "no source: the resource is not modelled".to_string();
    };
    let Some(best) = r.producers.first() else {
        if super::links::is_tenant_like(resource) {
            return "each identity's own: its attribute named like the parameter (declared, or from its self-read), else its `tenant`".to_string();
        }
        return format!(
            "no source: no operation lists, shows or creates {resource} (give `objects:` or `harvest:`)"
        );
    };
    let mut text = best.describe(&api.operations);
    if !r.linked {
        text.push_str(" — needs its parent objects, which nothing lists");
    }
    if r.producers.len() > 1 {
        text.push_str(&format!(" (+{} more)", r.producers.len() - 1));
    }
    text
}

pub fn security_text(security: &Security) -> String {
    match security {
        Security::Public => "public".to_string(),
        Security::Required(alternatives) => alternatives
            .iter()
            .map(|alt| alt.join(" + "))
            .collect::<Vec<_>>()
            .join(" | "),
    }
}

fn capability(api: &Api, op: &Operation) -> Capability {
    let mut missing: Vec<&str> = Vec::new();
    for resource in op.id_resources() {
        let known = api.collections.contains_key(resource)
            || super::links::from_context(&api.resources, resource);
        if !known && !missing.contains(&resource) {
            missing.push(resource);
        }
    }
    if !missing.is_empty() {
        return Capability::NeedsObject(missing.join(", "));
    }
    let has_ids = op.parameters.iter().any(|p| p.id_resource.is_some()) || !op.body_ids.is_empty();
    if op.security == Security::Public && !has_ids {
        return Capability::Skipped(
            "public and takes no object identifier, so there is no access to control".to_string(),
        );
    }
    Capability::Attackable
}
