//! Arbitrary bytes as a SASL/OAUTHBEARER client first message: parsing never panics, every
//! error has the one code and never shows the token, and anything accepted re-encodes to a
//! message that parses back to the same thing.
//!
//! The checks are in `sasl_parse_check.rs`, which `tests/fuzz_seeds.rs` also runs over the seeds.
#![no_main]

#[path = "sasl_parse_check.rs"]
mod check;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| check::check(data));
