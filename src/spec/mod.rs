//! Spec ingestion: any OpenAPI version → our own [`Api`] model.

mod model;

pub use model::*;
