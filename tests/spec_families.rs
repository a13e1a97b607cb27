//! The demo portal scanned through its OpenAPI 3.1 and Swagger 2.0 descriptions: the same
//! planted flaws are found as through the 3.0 one, and nothing else.

mod common;

use common::{planted, violations};
use rolegrid::demo_scan::{DEMO_ENGAGEMENT, DEMO_MATRIX};
use rolegrid::engagement::{Engagement, Redactor};
use rolegrid::matrix::Policy;
use std::collections::BTreeSet;

async fn violations_with(
    spec_file: &str,
    secure: bool,
) -> (BTreeSet<(String, String)>, BTreeSet<(String, String)>) {
    let (server, passwords) = common::portal(|o| if secure { o.secure() } else { o }).await;
    let specs = common::specs_dir();
    let mut engagement = Engagement::parse(
        DEMO_ENGAGEMENT,
        &specs.join("demo-engagement.yaml"),
        &common::demo_env(&passwords),
    )
    .expect("engagement");
    engagement.target = url::Url::parse(&server.base_url()).expect("url");
    let api = rolegrid::spec::load(&specs.join(spec_file)).expect("the description loads");
    let roles: Vec<String> = engagement
        .identities
        .iter()
        .map(|i| i.role.clone())
        .collect();
    let policy = Policy::parse(
        DEMO_MATRIX,
        &specs.join("demo-matrix.csv"),
        &api,
        &roles,
        false,
    )
    .expect("every matrix row names an operation of this description");
    let scanned = common::scan(engagement, api, policy, 3, Redactor::new()).await;
    server.shutdown().await;
    let others = scanned
        .outcome
        .report
        .findings
        .iter()
        .filter(|f| f.verdict != "violation" && f.verdict != "server-error")
        .map(|f| (f.operation.clone(), f.verdict.clone()))
        .collect();
    (violations(&scanned.report), others)
}

/// Scanned through `spec`, the flawed portal shows every planted flaw and nothing else,
/// and the secure portal shows nothing.
async fn finds_every_flaw_and_secure_is_silent(spec: &str) {
    let (found, others) = violations_with(spec, false).await;
    assert_eq!(found, planted());
    assert!(others.is_empty(), "{others:?}");
    let (found, others) = violations_with(spec, true).await;
    assert!(
        found.is_empty() && others.is_empty(),
        "{found:?} {others:?}"
    );
}

#[tokio::test]
async fn openapi_31_finds_every_flaw_and_secure_is_silent() {
    finds_every_flaw_and_secure_is_silent("demo-portal-3.1.yaml").await;
}

#[tokio::test]
async fn swagger_20_finds_every_flaw_and_secure_is_silent() {
    finds_every_flaw_and_secure_is_silent("demo-portal-2.0.json").await;
}

#[test]
fn the_three_editions_describe_the_same_operations() {
    let specs = common::specs_dir();
    let ops = |file: &str| -> BTreeSet<String> {
        let api = rolegrid::spec::load(&specs.join(file)).expect("loads");
        api.operations.iter().map(|o| o.key()).collect()
    };
    let base = ops("demo-portal.yaml");
    assert_eq!(
        ops("demo-portal-3.1.yaml"),
        base,
        "regenerate the 3.1 edition"
    );
    assert_eq!(
        ops("demo-portal-2.0.json"),
        base,
        "regenerate the 2.0 edition"
    );
}
