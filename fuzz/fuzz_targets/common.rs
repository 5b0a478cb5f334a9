//! Shared by the fuzz targets and `examples/gen_seeds.rs`: one fixed key set, policy and clock.
//!
//! The keys are fixed, so nothing here needs randomness: the Ed25519 key of RFC 8032 section 7.1
//! (TEST 1), and a P-256 key whose private scalar is SHA-256("poolgate fuzz P-256 key") mod n.
//! They are test keys: nothing outside these tests may trust them.
#![allow(dead_code)]

use std::sync::OnceLock;

use poolgate::{KeySet, Policy, UnixTime};

/// The issuer of the fixed policy.
pub const ISSUER: &str = "https://idp.fuzz.test";
/// The audience of the fixed policy.
pub const AUDIENCE: &str = "kafka";
/// The clock every target verifies at.
pub const NOW: UnixTime = UnixTime::from_secs(1_700_000_000);
/// The policy's clock skew, in seconds (the default).
pub const SKEW: u64 = 30;

/// RFC 8032 section 7.1, TEST 1: the Ed25519 private seed.
pub const ED25519_SEED: [u8; 32] = [
    0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4,
    0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60,
];
/// Its public key, base64url.
pub const ED25519_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
/// The Ed25519 key's `kid` (its JWK pins `alg: EdDSA`).
pub const ED25519_KID: &str = "ed1";

/// The P-256 private scalar, base64url (used only by the seed generator).
pub const P256_D: &str = "1LL8sMgJLEVhYx-hrG2brLV47MMMXDgOS--hJbhAjT0";
/// Its public point's coordinates, base64url.
pub const P256_X: &str = "vuwsczloN7mqaZSUo0HYJZTmvwGXFjdzlduu1F6r7yE";
pub const P256_Y: &str = "brNyoHman_uLHqht7ogYzMDYLNGDuAJ-VpuiatdFx0k";
/// The P-256 key's `kid` (its JWK pins no `alg`).
pub const P256_KID: &str = "es1";

/// The public JWKS of both keys.
pub const JWKS: &str = r#"{"keys":[
 {"kty":"OKP","crv":"Ed25519","kid":"ed1","use":"sig","alg":"EdDSA","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
 {"kty":"EC","crv":"P-256","kid":"es1","use":"sig","x":"vuwsczloN7mqaZSUo0HYJZTmvwGXFjdzlduu1F6r7yE","y":"brNyoHman_uLHqht7ogYzMDYLNGDuAJ-VpuiatdFx0k"}
]}"#;

/// The key set and policy every target verifies against.
pub struct Fixture {
    pub keys: KeySet,
    pub policy: Policy,
}

/// Built once per process.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let keys = KeySet::from_jwks(JWKS.as_bytes()).expect("the fixed JWKS loads");
        assert_eq!(keys.len(), 2, "skipped: {:?}", keys.skipped());
        let policy = Policy::builder(ISSUER)
            .audience(AUDIENCE)
            .build()
            .expect("the fixed policy is valid");
        Fixture { keys, policy }
    })
}
