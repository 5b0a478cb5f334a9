//! The checks of the `token_parse` fuzz target, shared with `tests/fuzz_seeds.rs`, which runs them
//! on every file in `fuzz/seeds/token_parse/`.

use poolgate::{DEFAULT_MAX_TOKEN_SIZE, ErrorCode, UnverifiedToken, verify};

use crate::common::{AUDIENCE, ED25519_KID, ISSUER, NOW, P256_KID, SKEW, fixture};

/// Runs one input through the checks; panics on a violation.
pub fn check(data: &[u8]) {
    let token = String::from_utf8_lossy(data);
    let token: &str = &token;
    let fx = fixture();

    let parsed = UnverifiedToken::parse(token, DEFAULT_MAX_TOKEN_SIZE);
    if let Ok(t) = &parsed {
        let h = t.header();
        let _ = (
            h.alg(),
            h.kid(),
            h.typ(),
            h.has_crit(),
            t.unverified_issuer(),
        );
        // The lazily built claims map agrees with the eagerly parsed registered claims.
        let iss = t.unverified_claims().get("iss").and_then(|i| i.as_str());
        assert_eq!(
            iss,
            t.unverified_issuer(),
            "claims map and registered `iss` disagree"
        );
        let _ = format!("{t:?}");
    }

    let result = verify(token, &fx.keys, &fx.policy, NOW);

    // `verify` parses with the policy's cap (the same default): it fails to parse exactly when
    // `parse` does, with the same error, and any other error comes after parsing.
    match (&parsed, &result) {
        (Err(p), Err(v)) => assert_eq!(p, v, "parse and verify disagree"),
        (Err(p), Ok(_)) => panic!("verify accepted what parse rejects: {p}"),
        (Ok(_), Err(v)) => assert!(
            !matches!(v.code(), ErrorCode::Malformed | ErrorCode::TokenTooLarge),
            "parse accepted what verify calls {v}"
        ),
        (Ok(_), Ok(_)) => {}
    }
    if let Ok(t) = &parsed
        && t.header().has_crit()
    {
        let code = result.as_ref().err().map(|e| e.code());
        assert_eq!(
            code,
            Some(ErrorCode::CriticalHeader),
            "a `crit` header got through"
        );
    }

    match result {
        Err(e) => {
            // Messages clip what the token supplies, and never echo a signature.
            let msg = e.to_string();
            assert!(
                msg.chars().count() < 512,
                "error message of {} chars",
                msg.len()
            );
            if let Some((_, sig)) = token.rsplit_once('.')
                && sig.len() > 80
            {
                assert!(!msg.contains(sig), "the error echoes the signature");
            }
            let _ = e.code().as_str();
        }
        Ok(v) => {
            // Only the fixed keys' own tokens (seeds) get here; everything checked must hold.
            let t = parsed.as_ref().expect("verified, so parsed");
            assert_eq!(t.header().alg(), Some(v.algorithm().to_string().as_str()));
            assert_eq!(v.kid(), t.header().kid());
            assert!(matches!(v.kid(), None | Some(ED25519_KID) | Some(P256_KID)));
            assert_eq!(v.issuer(), ISSUER);
            assert!(v.audiences().contains(&AUDIENCE));
            assert!(v.expires_at().as_secs() + SKEW >= NOW.as_secs());
            if let Some(nbf) = v.not_before() {
                assert!(nbf.as_secs() <= NOW.as_secs() + SKEW);
            }
            if let Some(iat) = v.issued_at() {
                assert!(iat.as_secs() <= NOW.as_secs() + SKEW);
            }
            let _ = (v.subject(), v.typ(), v.claims().len());
            let _ = v.into_claims();
        }
    }
}
