//! The README's main job: scan a running demo portal with the engagement, spec and
//! matrix shipped in `specs/` (embedded in the binary, so it works from any folder).

use super::{self as scan, ScanError, ScanInput, ScanOutcome};
use crate::engagement::{Engagement, EnvSource, Redactor};
use crate::matrix::Policy;
use crate::spec;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const DEMO_SPEC: &str = include_str!("../../specs/demo-portal.yaml");
pub const DEMO_ENGAGEMENT: &str = include_str!("../../specs/demo-engagement.yaml");
pub const DEMO_MATRIX: &str = include_str!("../../specs/demo-matrix.csv");

/// The `detectors:` block of the shipped engagement (it ends the file), for engagements
/// written by tests and tools that scan the demo portal: without it the portal's 200 HTML
/// denial page reads as served.
pub fn demo_detectors_yaml() -> &'static str {
    DEMO_ENGAGEMENT
        .find("\ndetectors:")
        .map_or("", |at| &DEMO_ENGAGEMENT[at + 1..])
}

#[derive(Debug, thiserror::Error)]
pub enum DemoScanError {
    /// The shipped inputs do not load: a bug in this build, reported as bad input.
    #[error("{0}")]
    Input(String),
    #[error(transparent)]
    Scan(#[from] ScanError),
}

/// `alice@acme.test` → `ROLEGRID_DEMO_PASSWORD_ALICE`, the variable the engagement reads.
pub fn password_variable(email: &str) -> String {
    let local = email.split('@').next().unwrap_or(email);
    format!("ROLEGRID_DEMO_PASSWORD_{}", local.to_ascii_uppercase())
}

pub struct DemoScan {
    pub base_url: String,
    /// email → password, as given to the portal.
    pub passwords: BTreeMap<String, String>,
    pub output_dir: PathBuf,
    /// Told about each judged probe; `None`: nobody watches.
    pub progress: Option<std::sync::Arc<dyn super::Progress>>,
    pub seed: Option<u64>,
    /// Requests per second for the whole scan; `None` = unthrottled.
    pub rate_limit: Option<f64>,
}

/// The shipped engagement (aimed at `base_url`, with the portal's passwords), spec and
/// matrix, validated.
pub fn demo_inputs(
    base_url: &str,
    passwords: &BTreeMap<String, String>,
) -> Result<(Engagement, crate::spec::Api, Policy), DemoScanError> {
    let mut env = EnvSource::default();
    for (email, password) in passwords {
        env = env.with(&password_variable(email), password);
    }
    let input = |e: &dyn std::fmt::Display| DemoScanError::Input(e.to_string());
    let mut engagement = Engagement::parse(
        DEMO_ENGAGEMENT,
        Path::new("specs/demo-engagement.yaml"),
        &env,
    )
    .map_err(|e| input(&e))?;
    engagement
        .apply_overrides(crate::engagement::Overrides {
            target: Some(base_url.to_string()),
            ..Default::default()
        })
        .map_err(|e| input(&e))?;
    let api =
        spec::load_str(DEMO_SPEC, Path::new("specs/demo-portal.yaml")).map_err(|e| input(&e))?;
    let policy = Policy::parse(
        DEMO_MATRIX,
        Path::new("specs/demo-matrix.csv"),
        &api,
        &crate::inputs::roles(&engagement.identities),
        false,
    )
    .map_err(|e| input(&e))?;
    Ok((engagement, api, policy))
}

pub async fn run(options: DemoScan, redactor: Redactor) -> Result<ScanOutcome, DemoScanError> {
    let (mut engagement, api, policy) = demo_inputs(&options.base_url, &options.passwords)?;
    engagement
        .apply_overrides(crate::engagement::Overrides {
            rate_limit: options.rate_limit,
            ..Default::default()
        })
        .map_err(|e| DemoScanError::Input(e.to_string()))?;
    let scan_input = ScanInput {
        engagement,
        api,
        policy,
        output_dir: options.output_dir,
        progress: options.progress,
        seed: options.seed,
        shard: None,
    };
    Ok(scan::scan(scan_input, redactor).await?)
}
