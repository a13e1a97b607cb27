//! The binary's command layer: parse flags, build validated inputs, call the library,
//! print the summary and choose the exit code. No scanning logic lives here.

pub mod args;
mod commands;
pub mod exit;
mod latency;
mod report;

pub use commands::run;
