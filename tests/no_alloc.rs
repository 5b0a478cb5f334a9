//! `Session::authorize` is on every Kafka request's path: it must not allocate. A counting
//! global allocator (this test binary only) counts the allocations made on the current thread
//! while counting is switched on, around `authorize` calls for allowed and denied requests
//! decided by literal, prefixed and wildcard grants, and by no grant.
#![cfg(feature = "testkit")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;
use std::sync::Arc;

use poolgate::authz::{Decision, Operation, Resource};
use poolgate::config::Config;
use poolgate::gate::{Gate, LoginRequest};
use poolgate::testkit::{SigningAlg, SigningKey, TokenBuilder};
use poolgate::{KeySet, KeyStore, ManualClock, Provider, UnixTime, Validator};
use serde_json::json;

/// Forwards to the system allocator, counting allocations of the current thread while
/// [`COUNTING`] is on.
struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: an allocation while this thread's locals are being torn down is not counted.
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        }
    });
}

// `unsafe` because a global allocator is the one way to observe allocations; it serves this
// test binary alone.
// SAFETY: every call is forwarded unchanged to `System`, which upholds `GlobalAlloc`'s
// contract; counting touches only `const`-initialised thread locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's guarantees for `layout` are passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: `ptr` and `layout` come from this allocator, which is `System`'s.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f`, returning its result and how many allocations it made on this thread.
fn allocations_in<R>(f: impl FnOnce() -> R) -> (R, u64) {
    ALLOCATIONS.with(|n| n.set(0));
    COUNTING.with(|on| on.set(true));
    let result = f();
    COUNTING.with(|on| on.set(false));
    (result, ALLOCATIONS.with(Cell::get))
}

const ISSUER: &str = "https://idp.example.com";
const NOW: u64 = 1_800_000_000;

const CONFIG: &str = r#"
[[providers]]
id = "idp"
issuer = "https://idp.example.com"
audiences = ["kafka"]
jwks_file = "unused.json"

[[pools]]
id = "pool-1"
provider = "idp"

[[pools.grants]]
allow = ["Read", "Describe"]
resource = "Topic:orders"

[[pools.grants]]
allow = ["Write"]
resource = "Topic:tenant-{claims.tenant}-*"

[[pools.grants]]
deny = ["Read"]
resource = "Topic:tenant-acme-secret"

[[pools.grants]]
role = "DeveloperRead"
resource = "Group:*"
"#;

#[tokio::test(flavor = "current_thread")]
async fn authorize_does_not_allocate() {
    // The counter sees this thread's allocations.
    let (_, n) = allocations_in(|| std::hint::black_box(vec![1u8; 64]));
    assert!(n >= 1, "the counting allocator counts");

    let clock = ManualClock::new(UnixTime::from_secs(NOW));
    let key = Arc::new(SigningKey::generate(SigningAlg::EdDSA, "k1"));
    let keys =
        KeySet::from_jwks(json!({"keys": [key.public_jwk()]}).to_string().as_bytes()).unwrap();
    let config = Config::parse(CONFIG, "no-alloc.toml", Path::new(".")).unwrap();
    let store = KeyStore::fixed(ISSUER, keys, Arc::new(clock.clone()));
    let provider = Provider::new(config.providers()[0].policy.clone(), store).unwrap();
    let validator = Validator::with_clock(vec![provider], Arc::new(clock.clone())).unwrap();
    let gate = Gate::new(config, validator);
    let token = TokenBuilder::with_clock(key, ISSUER, &clock)
        .claim("tenant", json!("acme"))
        .sign();
    let session = gate
        .login(&token, LoginRequest::default(), UnixTime::from_secs(NOW))
        .await
        .unwrap();
    assert_eq!(session.permissions().len(), 4);

    let cases = [
        (Operation::Read, Resource::topic("orders"), Decision::Allow),
        (
            Operation::Describe,
            Resource::topic("orders"),
            Decision::Allow,
        ),
        (Operation::Write, Resource::topic("orders"), Decision::Deny),
        (
            Operation::Write,
            Resource::topic("tenant-acme-events"),
            Decision::Allow,
        ),
        (
            Operation::Write,
            Resource::topic("tenant-other-events"),
            Decision::Deny,
        ),
        (
            Operation::Read,
            Resource::topic("tenant-acme-secret"),
            Decision::Deny,
        ),
        (
            Operation::Read,
            Resource::group("any-group"),
            Decision::Allow,
        ),
        (
            Operation::Delete,
            Resource::group("any-group"),
            Decision::Deny,
        ),
        (Operation::Alter, Resource::cluster(), Decision::Deny),
    ];
    for (op, resource, expected) in &cases {
        let (decision, allocations) = allocations_in(|| {
            let mut last = None;
            for _ in 0..100 {
                last = Some(session.authorize(*op, resource).decision);
            }
            last
        });
        assert_eq!(decision, Some(*expected), "{op:?} {resource:?}");
        assert_eq!(allocations, 0, "{op:?} {resource:?} allocated");
    }
}
