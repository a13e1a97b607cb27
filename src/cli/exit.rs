//! Exit codes, in one place (documented in README.md), and [`fail`]: the one way an error
//! line is printed with its code.

pub const CLEAN: u8 = 0;
pub const VIOLATIONS: u8 = 1;
pub const BAD_INPUT: u8 = 2;
pub const RUN_FAILURE: u8 = 3;

/// Prints `message` as the binary's error line and returns `code`, the exit code to use.
pub fn fail(code: u8, message: impl std::fmt::Display) -> u8 {
    eprintln!("rolegrid: {message}");
    code
}
