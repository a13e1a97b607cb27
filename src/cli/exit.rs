//! Exit codes, in one place (documented in README.md).

pub const CLEAN: u8 = 0;
pub const VIOLATIONS: u8 = 1;
pub const BAD_INPUT: u8 = 2;
pub const RUN_FAILURE: u8 = 3;
