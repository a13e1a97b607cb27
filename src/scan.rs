//! The scan's public entry points, kept at their old path: the code lives in [`crate::run`].

pub use crate::run::{
    dry_plan, scan, DryPlan, ProbeDone, Progress, ScanError, ScanInput, ScanOutcome, Shard,
};
