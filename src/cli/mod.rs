//! The binary's command layer: each command maps its flags to a library call (inputs
//! through `rolegrid::inputs`, flag overrides through the engagement's own checks) and
//! the outcome to an exit code; `output.rs` and `progress.rs` hold what it draws on the
//! terminal. No scanning, checking or report writing lives here.

pub mod args;
mod commands;
pub mod exit;
mod latency;
mod output;
mod progress;

pub use commands::run;
