//! Arbitrary bytes as one request frame from an authenticated client (header and body, no
//! length prefix) through the gateway's request decoding and permission checks
//! (`src/gateway/acl.rs` and `src/gateway/acl/`, compiled in by path): nothing panics, a request
//! with something refused is never forwarded as received, and whatever is forwarded names only
//! resources the session may use. The checks live in `gateway_requests_check.rs`, which the
//! binary's tests also run over the seeds.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The gateway lives in the binary; its permission checks depend on nothing else of it but its
// framing module. An inline module with a path keeps their own layout: `acl.rs` finds its
// children under `src/gateway/acl/`, and `super::wire` resolves.
#[allow(dead_code, unreachable_pub)]
#[path = "../../src/gateway"]
mod gateway {
    pub mod acl;
    pub mod wire;
}

#[path = "gateway_requests_check.rs"]
mod check;

fuzz_target!(|data: &[u8]| {
    check::check_frame(data);
});
