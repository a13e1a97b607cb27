//! The binary's command layer: each command maps its flags to a library call (inputs
//! through `rolegrid::inputs`, flag overrides through the engagement's own checks) and
//! the outcome to an exit code; `common.rs` holds what commands share and `progress.rs`
//! the progress bar. No scanning, checking or report writing lives here.

pub mod args;
mod commands;
mod common;
pub mod exit;
mod latency;
mod progress;
mod report;

pub use commands::run;
