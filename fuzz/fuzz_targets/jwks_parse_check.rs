//! The checks of the `jwks_parse` fuzz target, shared with `tests/fuzz_seeds.rs`, which runs them
//! on every file in `fuzz/seeds/jwks_parse/`.

use poolgate::{JwksError, KeySet, MAX_JWKS_KEYS, MAX_KID_LEN, SkippedKey, verify};

use crate::common::{NOW, fixture};

/// `{"alg":A[,"kid":K]}.{"iss":..,"aud":"kafka","exp":..}."sig"`: junk signatures, so none may
/// verify, but each steers key selection differently.
const TOKENS: &[&str] = &[
    // {"alg":"EdDSA","kid":"ed1"}
    "eyJhbGciOiJFZERTQSIsImtpZCI6ImVkMSJ9.eyJpc3MiOiJodHRwczovL2lkcC5mdXp6LnRlc3QiLCJhdWQiOiJrYWZrYSIsImV4cCI6MTcwMDAwMzYwMH0.c2ln",
    // {"alg":"ES256","kid":"es1"}
    "eyJhbGciOiJFUzI1NiIsImtpZCI6ImVzMSJ9.eyJpc3MiOiJodHRwczovL2lkcC5mdXp6LnRlc3QiLCJhdWQiOiJrYWZrYSIsImV4cCI6MTcwMDAwMzYwMH0.c2ln",
    // {"alg":"RS256"}
    "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lkcC5mdXp6LnRlc3QiLCJhdWQiOiJrYWZrYSIsImV4cCI6MTcwMDAwMzYwMH0.c2ln",
    // {"alg":"PS384","kid":"r1"}
    "eyJhbGciOiJQUzM4NCIsImtpZCI6InIxIn0.eyJpc3MiOiJodHRwczovL2lkcC5mdXp6LnRlc3QiLCJhdWQiOiJrYWZrYSIsImV4cCI6MTcwMDAwMzYwMH0.c2ln",
    // {"alg":"ES384"}
    "eyJhbGciOiJFUzM4NCJ9.eyJpc3MiOiJodHRwczovL2lkcC5mdXp6LnRlc3QiLCJhdWQiOiJrYWZrYSIsImV4cCI6MTcwMDAwMzYwMH0.c2ln",
];

fn show_skipped(skipped: &[SkippedKey]) {
    for s in skipped {
        let _ = (s.to_string(), s.reason().to_string(), format!("{s:?}"));
        assert!(s.kid().is_none_or(|k| k.len() <= MAX_KID_LEN));
    }
}

/// Runs one input through the checks; panics on a violation.
pub fn check(data: &[u8]) {
    let set = match KeySet::from_jwks(data) {
        Ok(set) => set,
        Err(e) => {
            let _ = e.to_string();
            if let JwksError::NoUsableKey { skipped } = &e {
                show_skipped(skipped);
            }
            return;
        }
    };

    assert!(!set.is_empty());
    assert_eq!(set.len(), set.keys().len());
    assert!(set.keys().len() <= MAX_JWKS_KEYS);
    for key in set.keys() {
        let algs: Vec<_> = key.algorithms().collect();
        assert!(
            !algs.is_empty(),
            "a usable key serves no algorithm: {key:?}"
        );
        if let Some(pinned) = key.jwk_alg() {
            assert_eq!(algs, vec![pinned], "a pinned key serves other algorithms");
        }
        let _ = (key.kind().to_string(), format!("{key:?}"));
        for alg in algs {
            let _ = alg.to_string();
        }
        if let Some(kid) = key.kid() {
            assert!(kid.len() <= MAX_KID_LEN);
            assert!(set.knows_kid(kid));
        }
    }
    show_skipped(set.skipped());

    let policy = &fixture().policy;
    for token in TOKENS {
        match verify(token, &set, policy, NOW) {
            Ok(_) => panic!("a junk signature verified against a fuzzed key set: {token}"),
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
}
