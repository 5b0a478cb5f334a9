//! Arbitrary bytes as a JWKS document: parsing, every accessor and every `Display` must answer,
//! never panic, and the set must keep its documented bounds. Fixed tokens are then verified
//! against whatever set came out, to exercise key selection over hostile sets.
//!
//! The checks are in `jwks_parse_check.rs`, which `tests/fuzz_seeds.rs` also runs over the seeds.
#![no_main]

#[path = "jwks_parse_check.rs"]
mod check;
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| check::check(data));
