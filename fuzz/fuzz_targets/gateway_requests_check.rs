//! The checks of the `gateway_requests` fuzz target, shared with the binary's tests, which run
//! them on every seed (`src/gateway/acl/tests/malformed.rs`).
//!
//! Both include this file by `#[path]` where `crate::gateway::{acl, wire}` are the gateway's own
//! modules. It uses nothing else of the gateway and no I/O. The session is real: a token signed
//! with the fixed Ed25519 key of `common.rs` logs in to a `Gate` over a fixed key set.
//!
//! The session may do everything on topics `orders-*`, `events-*` and `scratch-*`, on groups
//! `app-*` and on transactional ids `txn-*`, and nothing else (not even on the cluster).
//! [`check_frame`] holds the gateway's answer to one request frame to these properties:
//! - nothing panics, whatever the bytes;
//! - a request that had something refused is never forwarded as received;
//! - every forwarded request (as received or re-encoded) is a whole request of the same API,
//!   version and correlation id, and every topic, group and transactional id it names is one
//!   of the permitted prefixes above (read from the decoded request, not from the checks);
//! - a re-encoded request passes the checks again with nothing refused and nothing to strip.
#![allow(dead_code)]

use std::future::Future as _;
use std::sync::{Arc, OnceLock};

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::RequestKind;
use kafka_protocol::protocol::StrBytes;
use poolgate::config::Config;
use poolgate::gate::{Gate, Session};
use poolgate::{KeySet, KeyStore, ManualClock, Provider, UnixTime, Validator};

use crate::gateway::acl::{self, Context, Nodes, Verdict};
use crate::gateway::wire::Request;

const ISSUER: &str = "https://idp.fuzz.test";
/// The clock of the login (the token is valid for an hour from here).
const NOW: u64 = 1_700_000_000;
/// RFC 8032 section 7.1, TEST 1 (as `common.rs`): the Ed25519 private seed.
const ED25519_SEED: [u8; 32] = [
    0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4,
    0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60,
];
const JWKS: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"ed1","use":"sig","alg":"EdDSA","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;

/// The permitted name prefixes: the newtype that names a resource in a decoded request, its
/// resource type, and the prefixes on which the session may do everything.
pub const PERMITTED: &[(&str, &str, &[&str])] = &[
    ("TopicName", "Topic", &["orders-", "events-", "scratch-"]),
    ("GroupId", "Group", &["app-"]),
    ("TransactionalId", "TransactionalId", &["txn-"]),
];

/// The configuration: one provider, one pool allowing `All` on each of [`PERMITTED`].
fn config() -> Config {
    let mut text = format!(
        "[[providers]]\nid = \"idp\"\nissuer = \"{ISSUER}\"\njwks_uri = \"{ISSUER}/jwks\"\n\
         audiences = [\"kafka\"]\n\n[[pools]]\nid = \"fuzz\"\nprovider = \"idp\"\n"
    );
    for (_, resource_type, prefixes) in PERMITTED {
        for prefix in *prefixes {
            text.push_str(&format!(
                "\n[[pools.grants]]\nallow = [\"All\"]\nresource = \"{resource_type}:{prefix}*\"\n"
            ));
        }
    }
    Config::parse(&text, "fuzz.toml", std::path::Path::new("."))
        .expect("the fixed configuration parses")
}

/// The session every frame is checked against, logged in once per process.
pub fn session() -> &'static Arc<Session> {
    static SESSION: OnceLock<Arc<Session>> = OnceLock::new();
    SESSION.get_or_init(|| Arc::new(login()))
}

fn login() -> Session {
    use aws_lc_rs::signature::Ed25519KeyPair;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

    let config = config();
    let clock = Arc::new(ManualClock::new(UnixTime::from_secs(NOW)));
    let keys = KeySet::from_jwks(JWKS.as_bytes()).expect("the fixed JWKS loads");
    let policy = config.providers()[0].policy.clone();
    let store = KeyStore::fixed(ISSUER, keys, clock.clone());
    let provider = Provider::new(policy, store).expect("the provider is valid");
    let validator = Validator::with_clock(vec![provider], clock).expect("the validator is valid");
    let gate = Gate::new(config, validator);

    let header = r#"{"alg":"EdDSA","kid":"ed1","typ":"JWT"}"#;
    let claims = format!(
        r#"{{"iss":"{ISSUER}","sub":"fuzz","aud":"kafka","iat":{},"exp":{}}}"#,
        NOW - 60,
        NOW + 3600
    );
    let input = format!("{}.{}", B64.encode(header), B64.encode(claims));
    let key = Ed25519KeyPair::from_seed_unchecked(&ED25519_SEED).expect("the fixed seed");
    let token = format!("{input}.{}", B64.encode(key.sign(input.as_bytes())));
    let first = format!("n,,\x01auth=Bearer {token}\x01\x01");

    // No I/O happens (fixed keys, a sync cache): the future is ready on its first poll.
    let login = std::pin::pin!(gate.authenticate_at(first.as_bytes(), UnixTime::from_secs(NOW)));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match login.poll(&mut cx) {
        std::task::Poll::Ready(Ok(session)) => session,
        std::task::Poll::Ready(Err(r)) => panic!("the fixed login is refused: {}", r.code()),
        std::task::Poll::Pending => panic!("the fixed login waited for I/O"),
    }
}

/// Every node at one gateway address.
struct OneAddress;

impl Nodes for OneAddress {
    fn advertise(&self, _id: i32) -> Option<(StrBytes, i32)> {
        Some((StrBytes::from_static_str("gw.fuzz.test"), 9092))
    }
    fn seen(&self, _id: i32, _host: &str, _port: i32) {}
    fn unmapped(&self, _id: i32) {}
}

/// What the gateway did with a frame, for the seed tests' coverage counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The frame is no request (short, unknown API key, bad header).
    NoRequest,
    /// The body does not decode: the connection would be closed.
    Malformed,
    /// Refused as an API or version the gateway does not check.
    Unsupported,
    /// Answered by the gateway alone.
    Answered,
    /// Forwarded as received.
    Forwarded,
    /// Forwarded re-encoded, with something stripped.
    Filtered,
}

/// Runs one request frame (its payload: header and body, no length prefix) through the
/// gateway's checks and asserts the properties in the module documentation.
pub fn check_frame(payload: &[u8]) -> Outcome {
    let mut wire = BytesMut::with_capacity(payload.len() + 4);
    wire.put_u32(u32::try_from(payload.len()).unwrap_or(u32::MAX));
    wire.put_slice(payload);
    let Ok(req) = Request::from_wire(wire.freeze()) else {
        return Outcome::NoRequest;
    };
    let nodes: Arc<dyn Nodes> = Arc::new(OneAddress);
    let cx = Context {
        session: session(),
        nodes: &nodes,
        pass_through: false,
    };
    let mut denials = Vec::new();
    let Ok(verdict) = acl::check(&req, &cx, &mut denials) else {
        return Outcome::Malformed;
    };
    let (frame, outcome) = match verdict {
        Verdict::Unsupported => return Outcome::Unsupported,
        Verdict::Answer(_) => return Outcome::Answered,
        Verdict::Forward { frame: None, .. } => {
            assert!(
                denials.is_empty(),
                "{:?} v{}: forwarded as received after refusing {denials:?}",
                req.api,
                req.version()
            );
            (req.wire.clone(), Outcome::Forwarded)
        }
        Verdict::Forward {
            frame: Some(frame), ..
        } => (frame, Outcome::Filtered),
    };
    let forwarded = Request::from_wire(frame).expect("a forwarded frame has a request header");
    assert_eq!(forwarded.api, req.api);
    assert_eq!(forwarded.version(), req.version());
    assert_eq!(forwarded.correlation_id(), req.correlation_id());
    let decoded = RequestKind::decode(
        forwarded.api,
        &mut forwarded.body.clone(),
        forwarded.version(),
    );
    // A request forwarded as received need not decode whole: some checks read only part of a
    // body, and the broker refuses the rest. A re-encoded one always does.
    match (&decoded, outcome) {
        (Ok(body), _) => names_are_permitted(&format!("{body:?}"), &req),
        (Err(e), Outcome::Filtered) => {
            panic!(
                "{:?} v{}: a re-encoded request does not decode: {e}",
                req.api,
                req.version()
            )
        }
        (Err(_), _) => {}
    }
    if outcome == Outcome::Filtered {
        let mut again = Vec::new();
        let verdict = acl::check(&forwarded, &cx, &mut again).expect("a re-encoded request checks");
        assert!(
            again.is_empty(),
            "{:?} v{}: the re-encoded request still has refusals: {again:?}",
            req.api,
            req.version()
        );
        assert!(
            matches!(verdict, Verdict::Forward { frame: None, .. }),
            "{:?} v{}: the re-encoded request is not forwarded as it is",
            req.api,
            req.version()
        );
    }
    outcome
}

/// Every `Kind("name` in a decoded request's debug text names a permitted resource. (A name's
/// debug text starts with the name's own characters until the first one that needs escaping,
/// and no permitted prefix has one, so a prefix test on the debug text is exact.)
fn names_are_permitted(debug: &str, req: &Request) {
    for (kind, _, prefixes) in PERMITTED {
        let open = format!("{kind}(\"");
        for (at, _) in debug.match_indices(&open) {
            let name = &debug[at + open.len()..];
            assert!(
                prefixes.iter().any(|p| name.starts_with(p)),
                "{:?} v{}: forwards {kind} `{}`, which the session may not use",
                req.api,
                req.version(),
                name.split('"').next().unwrap_or(name)
            );
        }
    }
}
