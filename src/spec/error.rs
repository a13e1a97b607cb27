//! Errors of spec ingestion: each names the file, a line or JSON pointer, and the fix.

use std::path::PathBuf;

/// Why a description could not be loaded. Every variant names the file and the place in
/// it (a line and column, or a JSON pointer) and ends with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{}: cannot read the file: {source}; check the path and its permissions", file.display())]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{}:{line}:{column}: invalid YAML: {message}; fix the syntax at that line (YAML forbids tabs for indentation and raw control characters; quote such values)", file.display())]
    Yaml {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },

    #[error("{}:{line}:{column}: invalid JSON: {message}; fix the syntax at that line", file.display())]
    Json {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },

    #[error("{}: not an OpenAPI or Swagger description: {reason}; the top level must be a mapping with `openapi: 3.x.y` or `swagger: \"2.0\"`", file.display())]
    NotOpenApi { file: PathBuf, reason: String },

    #[error("{} at /{field}: unsupported version `{version}`; rolegrid reads Swagger 2.0 and OpenAPI 3.0.x/3.1.x, so convert the description to one of those", file.display())]
    UnsupportedVersion {
        file: PathBuf,
        field: &'static str,
        version: String,
    },

    #[error("{} at {pointer}: $ref `{reference}` points to {}, which cannot be read: {source}; fix the path (it is relative to the referring file) or add the missing file", file.display(), target.display())]
    RefTargetUnreadable {
        file: PathBuf,
        pointer: String,
        reference: String,
        target: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{} at {pointer}: $ref `{reference}` points to {}, which is not valid: {source}", file.display(), target.display())]
    RefTargetInvalid {
        file: PathBuf,
        pointer: String,
        reference: String,
        target: PathBuf,
        #[source]
        source: Box<SpecError>,
    },

    #[error("{} at {pointer}: $ref `{reference}`: {} has nothing at `{fragment}`; fix the JSON pointer after `#` or add that definition", file.display(), target.display())]
    RefFragmentMissing {
        file: PathBuf,
        pointer: String,
        reference: String,
        target: PathBuf,
        fragment: String,
    },

    #[error("{} at {pointer}: $ref `{reference}` is a remote URL, which rolegrid does not fetch; download it and refer to the local copy", file.display())]
    RemoteRef {
        file: PathBuf,
        pointer: String,
        reference: String,
    },

    #[error("{} at {pointer}: {problem}", file.display())]
    Invalid {
        file: PathBuf,
        pointer: String,
        problem: String,
    },
}
