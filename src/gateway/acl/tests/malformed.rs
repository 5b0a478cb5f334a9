//! Malformed bodies: truncated, mutated, or claiming huge arrays: errors, never panics or
//! aborts.

use super::*;

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
                let cx = Context {
                    session: &session,
                    nodes: &nodes,
                    pass_through: false,
                };
                let mut denials = Vec::new();
                let result = check(&truncated, &cx, &mut denials);
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
/// an abort is not. Only run in a child process (see `in_child_process`): a mutated length can
/// abort the whole process (see `a_huge_array_length_is_an_error_not_an_abort`).
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
                let cx = Context {
                    session: &session,
                    nodes: &nodes,
                    pass_through: false,
                };
                let mut denials = Vec::new();
                let _ = check(&mutated, &cx, &mut denials);
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

/// Produce v3 with a `topic_data` array announcing 2^31-1 topics (4 bytes of body).
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
    let cx = Context {
        session: &session,
        nodes: &nodes,
        pass_through: false,
    };
    let mut denials = Vec::new();
    assert!(check(&req, &cx, &mut denials).is_err());
}

#[test]
fn a_huge_array_length_is_an_error_not_an_abort() {
    in_child_process("child_decode_huge_array_length");
}
