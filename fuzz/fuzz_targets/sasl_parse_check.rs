//! The checks of the `sasl_parse` fuzz target, shared with `tests/fuzz_seeds.rs`, which runs them
//! on every file in `fuzz/seeds/sasl_parse/`.

use poolgate::sasl::ClientFirstMessage;

/// Runs one input through the checks; panics on a violation.
pub fn check(data: &[u8]) {
    match ClientFirstMessage::parse(data) {
        Err(e) => {
            assert_eq!(e.code(), "malformed_sasl");
            let _ = (e.to_string(), format!("{e:?}"));
        }
        Ok(msg) => {
            let _ = (
                msg.logical_cluster(),
                msg.identity_pool_ids(),
                format!("{msg:?}"),
            );
            // Debug redacts the token (it may still appear if the client repeated it as an
            // extension value, so only a token seen nowhere else is checked).
            let elsewhere = msg
                .extensions()
                .iter()
                .any(|(k, v)| k.contains(msg.token()) || v.contains(msg.token()))
                || msg.authzid().is_some_and(|a| a.contains(msg.token()));
            let short = msg.token().len() < 8; // "1" is in "<redacted, 1 bytes>"
            assert!(elsewhere || short || !format!("{msg:?}").contains(msg.token()));
            let again =
                ClientFirstMessage::parse(&msg.to_bytes()).expect("re-encoded message parses");
            assert_eq!(again, msg);
        }
    }
}
