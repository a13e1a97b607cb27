//! Matrix coverage: for every operation × role cell, whether it was `tested` (with the
//! probe count), `untestable` (a probe was wanted but could not be built: no object known,
//! mutations not allowed…) or `skipped` (nothing to test there: no matrix row, allowed to
//! everyone…), with a reason a product owner can read. One function decides, so another
//! stage's reasons (e.g. "no create operation" from canary planning) slot in through
//! [`CoverageFacts::extra`].

use crate::discover::ObjectCorpus;
use crate::engagement::Identity;
use crate::matrix::{Access, Policy};
use crate::spec::{Api, ParamLocation};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coverage {
    Tested,
    Untestable,
    Skipped,
}

impl Coverage {
    pub fn as_str(self) -> &'static str {
        match self {
            Coverage::Tested => "tested",
            Coverage::Untestable => "untestable",
            Coverage::Skipped => "skipped",
        }
    }
}

/// What the coverage of a cell depends on.
pub struct CoverageFacts<'a> {
    pub api: &'a Api,
    pub policy: &'a Policy,
    pub identities: &'a [Identity],
    pub corpus: &'a ObjectCorpus,
    pub allow_mutations: bool,
    /// Reasons other stages know for (operation, role) cells they could not test; used
    /// when no probe was sent and the cell is not skipped for a reason found here first.
    pub extra: Option<&'a BTreeMap<(usize, String), String>>,
}

/// The coverage of one cell and why, given the probes sent by identities of `role`.
pub fn cell_coverage(
    facts: &CoverageFacts<'_>,
    op: usize,
    role: &str,
    probes: usize,
) -> (Coverage, String) {
    use Coverage::*;
    if probes > 0 {
        let s = if probes == 1 { "" } else { "s" };
        return (Tested, format!("{probes} probe{s}"));
    }
    let operation = &facts.api.operations[op];
    let Some(access) = facts.policy.access(op, role) else {
        return if facts.policy.untested.contains(&op) {
            (
                Skipped,
                "the matrix has no row for this operation (missing_rows: untested)".into(),
            )
        } else {
            (Skipped, "not in the matrix".into())
        };
    };
    if !operation.method.is_safe() && !facts.allow_mutations {
        return (Untestable, "mutations not allowed".into());
    }
    if let Some(reason) = facts.extra.and_then(|m| m.get(&(op, role.to_string()))) {
        return (Untestable, reason.clone());
    }
    let anonymous = role == crate::engagement::ANONYMOUS;
    // Allowed on everything and no probe sent: no attack had a refusal to expect.
    if access == Access::Allow {
        return if anonymous {
            (
                Skipped,
                "needs no credentials: the matrix allows anonymous callers".into(),
            )
        } else {
            (
                Skipped,
                "the matrix allows it to this role: nothing to refuse".into(),
            )
        };
    }
    if !facts.identities.iter().any(|i| i.role == role) {
        return (Untestable, format!("no identity has the role `{role}`"));
    }
    let resource = operation.parameters.iter().find_map(|p| {
        let r = p.id_resource.as_deref()?;
        matches!(p.location, ParamLocation::Path | ParamLocation::Query).then_some(r)
    });
    if let Some(resource) = resource {
        if facts.corpus.of_resource(resource).next().is_none() {
            return (
                Untestable,
                format!("no object of resource `{resource}` known"),
            );
        }
    }
    match access {
        Access::Allow => (Skipped, "the matrix allows it to this role".into()),
        Access::Own | Access::Tenant if resource.is_some() => (
            Untestable,
            "no object outside this role's reach is known to swap in".into(),
        ),
        Access::Own | Access::Tenant => (
            Skipped,
            "no object ID to swap, and the role may call it: nothing to refuse".into(),
        ),
        Access::Deny => (
            Untestable,
            "no probe could be built for this denied call (no request or object to send)".into(),
        ),
    }
}
