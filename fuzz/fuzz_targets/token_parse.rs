//! Arbitrary bytes as a token: the parser and the whole verifier must answer, never panic, and
//! agree with each other.
//!
//! Input that is not UTF-8 is converted lossily (a broker hands poolgate a `&str`), so byte-level
//! mutations still reach the parser.
//!
//! The checks are in `token_parse_check.rs`, which `tests/fuzz_seeds.rs` also runs over the seeds.
#![no_main]

#[path = "token_parse_check.rs"]
mod check;
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| check::check(data));
