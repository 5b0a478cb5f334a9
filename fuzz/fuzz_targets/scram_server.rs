//! Arbitrary server-first and server-final messages to the gateway's SCRAM client (the broker's
//! side of an upstream login): it answers or refuses, never panics, and no server-final message
//! passes that was not computed from the password.
#![no_main]

use libfuzzer_sys::fuzz_target;
use poolgate::config::ScramHash;

// The gateway lives in the binary; its SCRAM module depends on nothing else of it.
#[allow(dead_code, unreachable_pub)]
#[path = "../../src/gateway/upstream/scram.rs"]
mod scram;

fuzz_target!(|input: (bool, Vec<u8>, Vec<u8>)| {
    let (sha512, server_first, server_final) = input;
    let hash = if sha512 {
        ScramHash::Sha512
    } else {
        ScramHash::Sha256
    };
    let (_, state) = scram::client_first(hash, "user", "fuzznonce");
    if let Ok((message, state)) = state.finish(&server_first, "pencil") {
        assert!(message.starts_with(b"c=biws,r=fuzznonce"));
        // A fuzzer cannot forge an HMAC: only the real signature would pass.
        assert!(state.verify(&server_final).is_err());
    }
});
