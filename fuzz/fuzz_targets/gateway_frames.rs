//! Arbitrary bytes as a client's stream to the gateway, delivered in arbitrary chunks with
//! reads dropped at arbitrary points (as a `select!` that a timer wins drops them): the
//! gateway's frame reader returns exactly the frames of a one-pass read, ends the same way,
//! never panics, and every frame's request header parses or fails cleanly.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

// The gateway lives in the binary; its framing module depends on nothing else of it.
#[allow(dead_code, unreachable_pub)]
#[path = "../../src/gateway/wire.rs"]
mod wire;

#[derive(Debug, Arbitrary)]
struct Input {
    data: Vec<u8>,
    chunks: Vec<u8>,
    cancel: Vec<bool>,
    cap: u16,
}

fuzz_target!(|input: Input| {
    wire::oracle::chunked_reads(
        &input.data,
        &input.chunks,
        &input.cancel,
        usize::from(input.cap),
    );
});
