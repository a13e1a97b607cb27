//! A run's inputs, loaded and validated once: the engagement (with command-line overrides
//! through the same checks as the file), its spec, and its role matrix checked against
//! both. Every command that reads an engagement goes through [`Inputs::load`].

use crate::engagement::{Engagement, EngagementError, EnvSource, Identity, MissingRows, Overrides};
use crate::matrix::{MatrixError, Policy};
use crate::spec::{self, Api, SpecError};
use std::path::Path;

/// Engagement, spec and matrix that agree with each other.
#[derive(Debug)]
pub struct Inputs {
    pub engagement: Engagement,
    pub api: Api,
    pub policy: Policy,
}

#[derive(Debug, thiserror::Error)]
pub enum InputsError {
    #[error(transparent)]
    Engagement(#[from] EngagementError),
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Matrix(#[from] MatrixError),
    /// A `creates:` entry that names no resource or no operation of the spec.
    #[error("{0}")]
    Creates(String),
    /// A `posture: role_change:` the spec and matrix cannot carry out.
    #[error("{0}")]
    Posture(String),
}

impl Inputs {
    /// Reads the engagement at `path` (`${VAR}` from `env`), applies `overrides`, then
    /// loads its spec and matrix.
    pub fn load(path: &Path, env: &EnvSource, overrides: Overrides) -> Result<Self, InputsError> {
        let mut engagement = Engagement::load(path, env)?;
        engagement.apply_overrides(overrides)?;
        Self::from_engagement(engagement)
    }

    /// The spec and matrix an already validated engagement names.
    pub fn from_engagement(engagement: Engagement) -> Result<Self, InputsError> {
        let mut api = spec::load(&engagement.spec)?;
        apply_creates(&engagement, &mut api)?;
        let policy = Policy::load(
            &engagement.matrix,
            &api,
            &roles(&engagement.identities),
            engagement.missing_rows == MissingRows::Untested,
        )?;
        check_role_change(&engagement, &api, &policy)?;
        Ok(Inputs {
            engagement,
            api,
            policy,
        })
    }
}

/// A `posture: role_change:` must name an operation of the spec, fillable for its
/// identity, and roles some read of the matrix tells apart: said before anything is sent.
fn check_role_change(
    engagement: &Engagement,
    api: &Api,
    policy: &Policy,
) -> Result<(), InputsError> {
    let Some(change) = &engagement.posture.role_change else {
        return Ok(());
    };
    let Some(subject) = engagement
        .identities
        .iter()
        .find(|i| i.name == change.identity)
    else {
        return Ok(()); // the engagement's own check already said which names exist
    };
    let (high, low) = change.roles(&subject.role);
    let problem = crate::posture::role_change::request_for(change, api, subject, low)
        .err()
        .or_else(|| {
            crate::posture::role_change::telling_read(api, policy, high, low)
                .is_none()
                .then(|| format!("no GET without path parameters is allowed to `{high}` and denied to `{low}` by the matrix, so nothing would tell the roles apart (choose other `from:`/`to:` roles)"))
        });
    let Some(problem) = problem else {
        return Ok(());
    };
    let line = std::fs::read_to_string(&engagement.source)
        .ok()
        .and_then(|text| text.lines().position(|l| l.contains("role_change:")))
        .map_or(String::new(), |n| format!(":{}", n + 1));
    Err(InputsError::Posture(format!(
        "{}{line}: posture role_change: {problem}",
        engagement.source.display()
    )))
}

/// The engagement's `creates:` entries, first in each resource's create operations.
fn apply_creates(engagement: &Engagement, api: &mut Api) -> Result<(), InputsError> {
    for (resource, op_text, line) in &engagement.creates {
        let at = format!("{}:{line}", engagement.source.display());
        let Some(op) = api
            .operations
            .iter()
            .position(|o| o.key() == *op_text || o.operation_id.as_deref() == Some(op_text))
        else {
            return Err(InputsError::Creates(format!(
                "{at}: creates: `{op_text}` is no operation of {}; write `METHOD /path` as the spec spells it, or an operationId",
                engagement.spec.display()
            )));
        };
        if api.operations[op].is_read_only() {
            return Err(InputsError::Creates(format!(
                "{at}: creates: `{op_text}` is a read; name the operation that creates a {resource}"
            )));
        }
        let Some(entry) = api.resources.get_mut(resource) else {
            let known: Vec<&str> = api.resources.keys().map(String::as_str).collect();
            return Err(InputsError::Creates(format!(
                "{at}: creates: `{resource}` is no resource the spec's identifiers name; they name: {}",
                known.join(", ")
            )));
        };
        entry.creates.retain(|&o| o != op);
        entry.creates.insert(0, op);
    }
    Ok(())
}

/// The role of each identity, in order (what the matrix's columns are checked against).
pub fn roles(identities: &[Identity]) -> Vec<String> {
    identities.iter().map(|i| i.role.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).expect("write input");
    }

    #[test]
    fn creates_names_the_create_operation_or_says_what_is_wrong() {
        let dir = std::env::temp_dir().join(format!("rolegrid-creates-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        write(
            &dir,
            "spec.yaml",
            "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /orders/{orderId}:\n    delete:\n      operationId: dropOrder\n      parameters: [{name: orderId, in: path, required: true, schema: {type: integer}}]\n      responses: {'204': {description: ok}}\n  /checkout:\n    post:\n      operationId: checkout\n      responses: {'201': {description: ok}}\n",
        );
        write(
            &dir,
            "matrix.csv",
            "operation,user\ndropOrder,own\ncheckout,allow\n",
        );
        let engagement = |creates: &str| {
            format!("target: http://127.0.0.1:9\nspec: spec.yaml\nmatrix: matrix.csv\ncreates:\n  {creates}\nidentities:\n  - name: a\n    role: user\n    auth: {{bearer: tok}}\n")
        };
        let load = |name: &str, creates: &str| {
            write(&dir, name, &engagement(creates));
            Inputs::load(&dir.join(name), &EnvSource::default(), Overrides::default())
        };
        let inputs = load("good.yaml", "orders: checkout").expect("loads");
        let checkout = inputs.api.operation("checkout").map(|o| o.key());
        assert_eq!(
            inputs.api.resources["orders"]
                .creates
                .first()
                .map(|&op| inputs.api.operations[op].key()),
            checkout
        );
        let err = load("bad.yaml", "orders: POST /nowhere").expect_err("unknown operation");
        assert!(err.to_string().contains("bad.yaml:5"), "{err}");
        let err = load("odd.yaml", "widgets: checkout").expect_err("unknown resource");
        assert!(err.to_string().contains("`widgets`"), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_role_change_the_spec_or_matrix_cannot_carry_is_refused_at_its_line() {
        let dir = std::env::temp_dir().join(format!("rolegrid-role-change-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        write(&dir, "spec.yaml", crate::demo_scan::DEMO_SPEC);
        write(&dir, "matrix.csv", crate::demo_scan::DEMO_MATRIX);
        let load = |name: &str, operation: &str, change: &str| {
            let text = format!("target: http://127.0.0.1:9\nspec: spec.yaml\nmatrix: matrix.csv\nidentities:\n  - {{name: alice, role: client, attributes: {{user_id: 1}}, auth: {{bearer: t1}}}}\n  - {{name: carol, role: staff, attributes: {{user_id: 3}}, auth: {{bearer: t3}}}}\n  - {{name: root, role: admin, auth: {{bearer: t4}}}}\nposture:\n  role_change: {{operation: '{operation}', as: root, identity: carol, json: {{role: '{{role}}'}}, {change}}}\n");
            write(&dir, name, &text);
            Inputs::load(&dir.join(name), &EnvSource::default(), Overrides::default())
        };
        let op = "PUT /admin/users/{user_id}/role";
        assert!(load("good.yaml", op, "from: admin").is_ok());
        let err = load("apart.yaml", op, "to: client").expect_err("staff and client");
        let text = err.to_string();
        assert!(
            text.contains("apart.yaml:9") && text.contains("tell the roles apart"),
            "{text}"
        );
        let err = load("nowhere.yaml", "PUT /roles/{user_id}", "from: admin")
            .expect_err("no such operation");
        assert!(
            err.to_string().contains("the spec has no operation"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
