//! Malformed bodies: truncated, mutated, or claiming huge arrays: errors, never panics or
//! aborts. Also the `gateway_requests` fuzz target's checks over its seeds.
//!
//! The huge-length tests run on the ordinary system allocator: kafka-protocol's decoders cap
//! their preallocation at the bytes left (`vendor/kafka-protocol/POOLGATE-PATCH.md`). Without
//! that patch a claimed length would need more than 100 GB up front and abort the process,
//! which is why they run in a child process (see `in_child_process`).

use super::*;
use crate::gateway::wire::WireError;

/// Checks `req` for `session`, not passed through: the verdict, or the body's decoding error.
fn check_body(
    session: &Arc<Session>,
    nodes: &Arc<dyn Nodes>,
    req: &Request,
) -> Result<Verdict, WireError> {
    let cx = Context {
        session,
        nodes,
        pass_through: false,
    };
    check(req, &cx, &mut Vec::new())
}

#[test]
fn truncated_bodies_are_errors_never_panics() {
    let session = app();
    let nodes = nodes();
    let mut cases = 0;
    for &(api, lo, hi) in OFFERED {
        for version in lo..=hi {
            let req = sample(api, version);
            let header_len = req.frame.len() - req.body.len();
            for cut in 0..req.body.len() {
                let truncated = Request::parse(req.frame.slice(..header_len + cut)).unwrap();
                let result = check_body(&session, &nodes, &truncated);
                // ListGroups v0-2 and DescribeCluster have nothing to check in the request:
                // they are forwarded (and the broker refuses the truncated body).
                if !matches!(api, ApiKey::ListGroups | ApiKey::DescribeCluster) {
                    assert!(
                        result.is_err(),
                        "{api:?} v{version} cut at {cut}/{}: {}",
                        req.body.len(),
                        result.as_ref().map(kind).unwrap_or_default()
                    );
                }
                cases += 1;
            }
        }
    }
    assert!(cases > 1000, "{cases}");
}

/// Checks mutated versions of every sample request: any verdict or error is fine, a panic or
/// an abort is not. Run in a child process (see `in_child_process`), so that a mutated length
/// that aborted (as before kafka-protocol was patched) fails this test, not the whole run.
#[test]
fn child_garbage_bodies() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let session = app();
    let nodes = nodes();
    // A small deterministic generator (xorshift).
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for &(api, lo, hi) in OFFERED {
        for version in lo..=hi {
            let req = sample(api, version);
            let header_len = req.frame.len() - req.body.len();
            if req.body.is_empty() {
                continue;
            }
            for _ in 0..40 {
                let mut frame = req.frame.to_vec();
                for _ in 0..3 {
                    let at = header_len + usize::try_from(next()).unwrap() % req.body.len();
                    frame[at] = next().to_be_bytes()[0];
                }
                let mutated = Request::parse(Bytes::from(frame)).unwrap();
                let _ = check_body(&session, &nodes, &mutated);
            }
        }
    }
}

#[test]
fn garbage_bodies_never_panic_or_abort() {
    in_child_process("child_garbage_bodies");
}

const CHILD: &str = "POOLGATE_ACL_TESTS_CHILD";

/// Runs the test `name` of this module in a child process (this test binary, with `CHILD` set),
/// so that an abort does not take the whole test run down; fails if the child does not succeed.
fn in_child_process(name: &str) {
    let exe = std::env::current_exe().unwrap();
    let module = module_path!().split_once("::").map_or("", |(_, m)| m);
    let out = std::process::Command::new(exe)
        .args([
            &format!("{module}::{name}"),
            "--exact",
            "--test-threads",
            "1",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let head: Vec<&str> = stderr.lines().take(3).collect();
    assert!(
        out.status.success(),
        "the child process failed ({}): {}",
        out.status,
        head.join(" | ")
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("1 passed"),
        "the child test did not run: {stdout}"
    );
}

/// Produce v3 with a `topic_data` array announcing 2^31-1 topics (4 bytes of body): about
/// 200 GB if the decoder preallocated for it.
fn produce_claiming_huge_array(version: i16) -> Request {
    let mut body = BytesMut::new();
    produce(-1, &[]).encode(&mut body, version).unwrap();
    let mut bytes = body.to_vec();
    // v3-8: nullable transactional id (-1), acks, timeout, then the array length (int32).
    let len_at = bytes.len() - 4;
    bytes[len_at..].copy_from_slice(&i32::MAX.to_be_bytes());
    let mut payload = BytesMut::new();
    let mut header = RequestHeader::default();
    header.request_api_key = ApiKey::Produce as i16;
    header.request_api_version = version;
    header.correlation_id = CORRELATION_ID;
    header
        .encode(
            &mut payload,
            ApiKey::Produce.request_header_version(version),
        )
        .unwrap();
    payload.extend_from_slice(&bytes);
    Request::parse(payload.freeze()).unwrap()
}

#[test]
fn child_decode_huge_array_length() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let session = app();
    let req = produce_claiming_huge_array(3);
    let nodes = nodes();
    assert!(check_body(&session, &nodes, &req).is_err());
}

#[test]
fn a_huge_array_length_is_an_error_not_an_abort() {
    in_child_process("child_decode_huge_array_length");
}

/// The lengths written over each position of the sample requests: an int32 of 2^31-1 (arrays,
/// bytes, a record batch's record count), an unsigned varint of 2^32-1 (compact arrays and
/// bytes in flexible versions) and a zigzag varint of 2^31-1 (a record's header count).
const HUGE_LENGTHS: [&[u8]; 3] = [
    &[0x7f, 0xff, 0xff, 0xff],
    &[0xff, 0xff, 0xff, 0xff, 0x0f],
    &[0xfe, 0xff, 0xff, 0xff, 0x0f],
];

/// The process's peak virtual memory in bytes (`VmPeak`), where `/proc` has it. Virtual, so
/// that a huge allocation the kernel reserved lazily, without touching it, still counts.
fn vm_peak() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmPeak:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Every sample request of every offered API and version, with each of [`HUGE_LENGTHS`] written
/// over each position of its body in turn, so every array, bytes and record count field the
/// samples reach claims a huge length somewhere: each check ends (any verdict or error), and
/// the peak virtual memory of the whole run grows by less than 1 GiB, where one preallocation
/// for any of these claims would need more than 100 GB.
#[test]
fn child_huge_lengths_in_every_field() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let session = app();
    let nodes = nodes();
    let before = vm_peak();
    let (mut cases, mut errors) = (0, 0);
    for &(api, lo, hi) in OFFERED {
        for version in lo..=hi {
            let req = sample(api, version);
            let header_len = req.frame.len() - req.body.len();
            for at in header_len..req.frame.len() {
                for claim in HUGE_LENGTHS {
                    let mut frame = req.frame.to_vec();
                    let end = (at + claim.len()).min(frame.len());
                    frame[at..end].copy_from_slice(&claim[..end - at]);
                    let mutated = Request::parse(Bytes::from(frame)).unwrap();
                    if check_body(&session, &nodes, &mutated).is_err() {
                        errors += 1;
                    }
                    cases += 1;
                }
            }
        }
    }
    assert!(cases > 10_000, "{cases}");
    // Most positions make the body undecodable; the rest land on fields that take any value.
    assert!(errors * 2 > cases, "{errors} errors in {cases} cases");
    if let (Some(before), Some(after)) = (before, vm_peak()) {
        let grown = after.saturating_sub(before);
        assert!(grown < 1 << 30, "peak virtual memory grew by {grown} bytes");
    }
}

#[test]
fn huge_lengths_in_every_field_are_errors_with_bounded_memory() {
    in_child_process("child_huge_lengths_in_every_field");
}

// ---------------------------------------------------------------------------------------------
// The `gateway_requests` fuzz target's checks, over its seeds

#[path = "../../../../fuzz/fuzz_targets/gateway_requests_check.rs"]
mod fuzz_check;

/// `fuzz/seeds/gateway_requests/`.
fn seed_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/gateway_requests")
}

/// The seed of the sample request of `api` at `version`.
fn seed_name(api: ApiKey, version: i16) -> String {
    format!("{api:?}-v{version}")
}

/// Every seed of the `gateway_requests` fuzz target passes the target's checks, and there is a
/// seed for every offered API and version. `POOLGATE_BLESS_SEEDS=1` first (re)writes the seeds
/// made from the sample requests and the huge-array Produce.
#[test]
fn the_fuzz_seeds_pass_the_fuzz_checks() {
    let dir = seed_dir();
    if std::env::var_os("POOLGATE_BLESS_SEEDS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        for &(api, lo, hi) in OFFERED {
            for version in lo..=hi {
                let req = sample(api, version);
                std::fs::write(dir.join(seed_name(api, version)), &req.frame).unwrap();
            }
        }
        let huge = produce_claiming_huge_array(3);
        std::fs::write(dir.join("huge-array-Produce-v3"), &huge.frame).unwrap();
    }
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect::<Vec<_>>();
    assert!(!entries.is_empty(), "{} is empty", dir.display());
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for path in &entries {
        let payload = std::fs::read(path).unwrap();
        let outcome = fuzz_check::check_frame(&payload);
        *outcomes.entry(format!("{outcome:?}")).or_default() += 1;
    }
    for &(api, lo, hi) in OFFERED {
        for version in lo..=hi {
            let name = seed_name(api, version);
            assert!(
                dir.join(&name).is_file(),
                "no seed {name} (run with POOLGATE_BLESS_SEEDS=1)"
            );
        }
    }
    // The seeds reach the checks: the sample requests mix permitted and refused names.
    assert!(
        outcomes.get("Filtered").copied().unwrap_or(0) > 50,
        "{outcomes:?}"
    );
}
