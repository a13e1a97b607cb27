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
        let api = spec::load(&engagement.spec)?;
        let policy = Policy::load(
            &engagement.matrix,
            &api,
            &roles(&engagement.identities),
            engagement.missing_rows == MissingRows::Untested,
        )?;
        Ok(Inputs {
            engagement,
            api,
            policy,
        })
    }
}

/// The role of each identity, in order (what the matrix's columns are checked against).
pub fn roles(identities: &[Identity]) -> Vec<String> {
    identities.iter().map(|i| i.role.clone()).collect()
}
