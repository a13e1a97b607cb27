//! Spec ingestion: any OpenAPI version → our own [`Api`] model.
//!
//! The stages, in order: read the text into a `serde_json::Value` ([`read`]), copy every
//! external `$ref` target into the document ([`refs`]), bring 2.0 and 3.1 into 3.0 shape
//! ([`normalize`]), walk the result into the model ([`build`]), mark ID parameters
//! ([`ids`]), and link each resource to the operations that yield its identifiers
//! ([`links`]).
//!
//! ```no_run
//! let api = rolegrid::spec::load(std::path::Path::new("specs/portal.yaml"))?;
//! for op in rolegrid::spec::operation_summaries(&api) {
//!     println!("{} {} {}", op.method, op.path, op.capability);
//! }
//! # Ok::<(), rolegrid::spec::SpecError>(())
//! ```

mod build;
mod error;
mod ids;
mod links;
mod model;
mod normalize;
mod read;
mod refs;
mod summary;
mod walk;

pub use error::SpecError;
pub use ids::squash;
pub use links::{
    id_field_candidates, is_tenant_like, singular, Producer, Resource, GENERIC_ID_FIELDS,
};
pub use model::*;
pub use refs::EXTERNAL_KEY;
pub use summary::{operation_summaries, security_text, Capability, OperationSummary};

use std::path::Path;

/// Loads a description from a file: JSON when it parses as JSON, YAML otherwise.
/// External `$ref`s are resolved relative to the file.
pub fn load(path: &Path) -> Result<Api, SpecError> {
    let text = read::read_file(path).map_err(|source| SpecError::Io {
        file: path.to_path_buf(),
        source,
    })?;
    load_str(&text, path)
}

/// A description for unit tests: `after_info` follows the `openapi` and `info` lines
/// every test would otherwise repeat.
#[cfg(test)]
pub fn test_api(after_info: &str) -> Api {
    let text = format!("openapi: 3.0.3\ninfo: {{title: t, version: '1'}}\n{after_info}");
    load_str(&text, Path::new("t.yaml")).unwrap_or_else(|e| panic!("{e}"))
}

/// The demo portal's description, for unit tests.
#[cfg(test)]
pub fn demo_api() -> Api {
    load_str(
        crate::demo_scan::DEMO_SPEC,
        Path::new("specs/demo-portal.yaml"),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Loads a description from text; `origin` names it in messages and anchors relative refs.
pub fn load_str(text: &str, origin: &Path) -> Result<Api, SpecError> {
    let mut doc = read::parse_text(text, origin)?;
    if !doc.is_object() {
        return Err(SpecError::NotOpenApi {
            file: origin.to_path_buf(),
            reason: "the top level is not a mapping".to_string(),
        });
    }
    let (family, version) = match normalize::detect(&doc) {
        Ok(found) => found,
        Err(("", _)) => {
            return Err(SpecError::NotOpenApi {
                file: origin.to_path_buf(),
                reason: "there is no `openapi` or `swagger` field".to_string(),
            })
        }
        Err((field, version)) => {
            return Err(SpecError::UnsupportedVersion {
                file: origin.to_path_buf(),
                field,
                version,
            })
        }
    };
    refs::bundle(&mut doc, origin)?;
    match family {
        SpecFamily::Swagger20 => normalize::swagger20(&mut doc),
        SpecFamily::OpenApi31 => normalize::openapi31(&mut doc),
        SpecFamily::OpenApi30 => {}
    }
    build::build(doc, origin, family, version)
}
