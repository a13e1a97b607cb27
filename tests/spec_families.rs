//! The demo portal scanned through its OpenAPI 3.1 and Swagger 2.0 descriptions: the same
//! planted flaws are found as through the 3.0 one, and nothing else.

use rolegrid::demo::{self, DemoOptions, FLAWS};
use rolegrid::demo_scan::{password_variable, DEMO_ENGAGEMENT, DEMO_MATRIX};
use rolegrid::engagement::{Engagement, EnvSource, Redactor};
use rolegrid::matrix::Policy;
use rolegrid::scan::{scan, ScanInput};
use std::collections::BTreeSet;
use std::path::Path;

async fn violations_with(
    spec_file: &str,
    secure: bool,
) -> (BTreeSet<(String, String)>, BTreeSet<(String, String)>) {
    let passwords = DemoOptions::random_passwords();
    let mut options = DemoOptions::new(passwords.clone());
    if secure {
        options = options.secure();
    }
    let server = demo::spawn(options, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("portal");
    let mut env = EnvSource::default();
    for (email, password) in &passwords {
        env = env.with(&password_variable(email), password);
    }
    let specs = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs");
    let mut engagement =
        Engagement::parse(DEMO_ENGAGEMENT, &specs.join("demo-engagement.yaml"), &env)
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
    let dir = tempfile::tempdir().expect("tempdir");
    let outcome = scan(
        ScanInput {
            engagement,
            api,
            policy,
            output_dir: dir.path().to_path_buf(),
            progress: false,
            seed: Some(3),
        },
        Redactor::new(),
    )
    .await
    .expect("scan");
    server.shutdown().await;
    let found = outcome
        .report
        .findings
        .iter()
        .filter(|f| f.verdict == "violation" || f.verdict == "server-error")
        .map(|f| (f.operation.clone(), f.attack.clone()))
        .collect();
    let others = outcome
        .report
        .findings
        .iter()
        .filter(|f| f.verdict != "violation" && f.verdict != "server-error")
        .map(|f| (f.operation.clone(), f.verdict.clone()))
        .collect();
    (found, others)
}

fn planted() -> BTreeSet<(String, String)> {
    FLAWS
        .iter()
        .filter(|f| f.default_on())
        .map(|f| (f.operation.to_string(), f.attack.to_string()))
        .collect()
}

#[tokio::test]
async fn openapi_31_finds_every_flaw_and_secure_is_silent() {
    let (found, others) = violations_with("demo-portal-3.1.yaml", false).await;
    assert_eq!(found, planted());
    assert!(others.is_empty(), "{others:?}");
    let (found, others) = violations_with("demo-portal-3.1.yaml", true).await;
    assert!(
        found.is_empty() && others.is_empty(),
        "{found:?} {others:?}"
    );
}

#[tokio::test]
async fn swagger_20_finds_every_flaw_and_secure_is_silent() {
    let (found, others) = violations_with("demo-portal-2.0.json", false).await;
    assert_eq!(found, planted());
    assert!(others.is_empty(), "{others:?}");
    let (found, others) = violations_with("demo-portal-2.0.json", true).await;
    assert!(
        found.is_empty() && others.is_empty(),
        "{found:?} {others:?}"
    );
}

#[test]
fn the_three_editions_describe_the_same_operations() {
    let specs = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs");
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
