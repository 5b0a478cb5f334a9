//! The fuzz targets' checks over their committed seeds, in `cargo test`: every file in
//! `fuzz/seeds/<target>/` of each target whose code is the library's goes through the same
//! check function the fuzz target runs (`fuzz/fuzz_targets/<target>_check.rs`, included here
//! by path). A missing or empty seed directory fails.
//!
//! The gateway's `gateway_requests` target checks code of the binary: its seeds run in the
//! binary's tests (`src/gateway/acl/tests/malformed.rs`).

use std::path::{Path, PathBuf};

#[path = "../fuzz/fuzz_targets/common.rs"]
mod common;

#[path = "../fuzz/fuzz_targets/filter_compile_check.rs"]
mod filter_compile;
#[path = "../fuzz/fuzz_targets/jwks_parse_check.rs"]
mod jwks_parse;
#[path = "../fuzz/fuzz_targets/sasl_parse_check.rs"]
mod sasl_parse;
#[path = "../fuzz/fuzz_targets/token_parse_check.rs"]
mod token_parse;

/// A fuzz target's checks on one input.
type Check = fn(&[u8]);

/// The files of `fuzz/seeds/<target>/`, sorted; fails if there are none.
fn seeds(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} has no seeds", dir.display());
    files
}

/// The fuzz targets run optimised, on a main thread. A debug build's frames are several times
/// larger: one 96-byte `filter_compile` seed nesting about 70 `[` overflows the CEL parser's
/// recursion on a test thread's 2 MiB and on 8 MiB (16 MiB passes, measured on Rust 1.95). So
/// the seeds run on a thread with twice that.
const STACK: usize = 32 << 20;

#[test]
fn every_seed_passes_its_fuzz_targets_checks() {
    std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(run_every_seed)
        .expect("a thread")
        .join()
        .expect("every seed passes");
}

fn run_every_seed() {
    let targets: [(&str, Check); 4] = [
        ("token_parse", token_parse::check),
        ("jwks_parse", jwks_parse::check),
        ("sasl_parse", sasl_parse::check),
        ("filter_compile", filter_compile::check),
    ];
    for (target, check) in targets {
        for path in seeds(target) {
            let data = std::fs::read(&path).expect("a readable seed");
            let run = std::panic::catch_unwind(|| check(&data));
            assert!(run.is_ok(), "{target}: seed {} fails", path.display());
        }
    }
}
