//! Arbitrary text as a pool filter and as an identity claim expression: compiling never panics;
//! whatever compiles is evaluated (and explained) against a fixed set of claims without
//! panicking, and a filter's equality conjuncts never claim more than the claims can satisfy.
//!
//! The checks are in `filter_compile_check.rs`, which `tests/fuzz_seeds.rs` also runs over the seeds.
#![no_main]

#[path = "filter_compile_check.rs"]
mod check;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| check::check(data));
