//! Bad input never panics. proptest properties for every parser of user or target input:
//! engagement YAML, matrix CSV, OpenAPI YAML/JSON (with local and external `$ref`s), the
//! WFC auth file, and a huge nested body. Inputs are random text and random edits of real
//! files (a mutated real file reaches far deeper into a parser than noise does). Response
//! bodies and JWTs from targets are fuzzed beside their private readers (src/judge/fuzz.rs,
//! src/exec/forge.rs).
//!
//! Bounded for CI: 96 cases per property unless `PROPTEST_CASES` says otherwise (a longer
//! pass: `PROPTEST_CASES=20000 cargo test --release --test fuzz`).

mod common;

use proptest::prelude::*;
use proptest::sample::Index;
use rolegrid::engagement::Engagement;
use rolegrid::exec::Exchange;
use rolegrid::matrix::Policy;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(96);
    ProptestConfig {
        cases,
        // Shrinking a failure is worth a little time; an endless one is not.
        max_shrink_time: 30_000,
        ..ProptestConfig::default()
    }
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).expect("a fixture file")
}

/// Text that breaks parsers: structure characters, YAML and CSV syntax, escapes, `$ref`
/// pointers, huge numbers, control and non-ASCII characters.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[\\[\\]{}:,\"'\\\\#&*!|>%@`-]{1,6}",
        "[a-z_$/{}.#~0-9]{1,12}",
        Just("$ref: '#/components/schemas/Nope'".to_string()),
        Just("$ref: 'missing.yaml#/x'".to_string()),
        Just("$ref: '../../../../etc/passwd'".to_string()),
        Just("$ref: '#/paths/~1notes/get'".to_string()),
        Just("{\"$ref\": \"#\"}".to_string()),
        Just("\n  - \n".to_string()),
        Just("99999999999999999999999999".to_string()),
        Just("${UNSET_VARIABLE}".to_string()),
        Just("\t\r\n".to_string()),
        "\\PC{1,8}",
        any::<String>(),
    ]
}

/// Random edits (insert, replace a span, delete a span) applied to `base`.
fn mutated(base: String) -> impl Strategy<Value = String> {
    prop::collection::vec((any::<Index>(), 0u8..3, 0usize..40, fragment()), 0..6).prop_map(
        move |edits| {
            let mut text = base.clone();
            for (at, kind, span, fragment) in edits {
                let mut start = at.index(text.len() + 1);
                while !text.is_char_boundary(start) {
                    start -= 1;
                }
                let mut end = (start + span).min(text.len());
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                match kind {
                    0 => text.insert_str(start, &fragment),
                    1 => text.replace_range(start..end, &fragment),
                    _ => text.replace_range(start..end, ""),
                }
            }
            text
        },
    )
}

/// A real file, mutated, or plain noise.
fn input_like(path: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![4 => mutated(read(path)), 1 => any::<String>()]
}

fn demo_api() -> &'static rolegrid::spec::Api {
    static API: OnceLock<rolegrid::spec::Api> = OnceLock::new();
    API.get_or_init(|| rolegrid::spec::load(&repo("specs/demo-portal.yaml")).expect("demo spec"))
}

/// A folder beside the demo spec and matrix, for engagement files that name them.
fn fuzz_dir() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in ["demo-portal.yaml", "demo-matrix.csv"] {
            std::fs::copy(repo("specs").join(name), dir.path().join(name)).expect("copy");
        }
        std::fs::write(dir.path().join("other.yaml"), "x: {y: 1}\n").expect("ref target");
        dir
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn engagement_yaml_never_panics(text in input_like("specs/demo-engagement.yaml")) {
        let env = common::env_with([("ALICE_PASSWORD", "a-pass-1"), ("BOB_PASSWORD", "b-pass-2")]);
        let _ = Engagement::parse(&text, &fuzz_dir().path().join("engagement.yaml"), &env);
    }

    #[test]
    fn wfc_auth_file_never_panics(text in input_like("tests/fixtures/wfc/wfc-auth.yaml")) {
        // One file name per process and case would race between threads: the name is unique.
        let dir = tempfile::tempdir_in(fuzz_dir().path()).expect("tempdir");
        std::fs::write(dir.path().join("wfc-auth.yaml"), &text).expect("write");
        for name in ["demo-portal.yaml", "demo-matrix.csv"] {
            std::fs::copy(fuzz_dir().path().join(name), dir.path().join(name)).expect("copy");
        }
        let engagement = read("tests/fixtures/wfc/engagement.yaml");
        let env = common::env_with([("BOB_PW", "b-pass-2")]);
        let _ = Engagement::parse(&engagement, &dir.path().join("engagement.yaml"), &env);
    }

    #[test]
    fn matrix_csv_never_panics(text in input_like("specs/demo-matrix.csv"), untested in any::<bool>()) {
        let roles: Vec<String> = ["client", "staff", "admin", "anonymous"].map(String::from).to_vec();
        let _ = Policy::parse(&text, Path::new("matrix.csv"), demo_api(), &roles, untested);
    }

    #[test]
    fn openapi_yaml_never_panics(text in input_like("specs/demo-portal.yaml")) {
        let _ = rolegrid::spec::load_str(&text, &fuzz_dir().path().join("spec.yaml"));
    }

    #[test]
    fn openapi_json_with_refs_never_panics(
        text in input_like("tests/fixtures/specs/portal-3.0.json"),
        swagger in input_like("tests/fixtures/specs/petstore-2.0.yaml"),
    ) {
        let _ = rolegrid::spec::load_str(&text, &fuzz_dir().path().join("spec.json"));
        let _ = rolegrid::spec::load_str(&swagger, &fuzz_dir().path().join("swagger.yaml"));
    }
}

/// One huge body (64 MiB of nesting and text) is handled in bounded time, without a panic.
#[test]
fn a_huge_deeply_nested_body_is_refused_quickly() {
    let depth = 32 << 20;
    let body = format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes();
    let started = std::time::Instant::now();
    let exchange = Exchange {
        status: Some(200),
        body,
        ..Exchange::default()
    };
    assert!(
        exchange.json().is_none(),
        "nesting beyond serde_json's limit"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}
