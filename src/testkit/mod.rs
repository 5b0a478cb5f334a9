//! Owns the local test issuer (feature `testkit`): a real OIDC issuer served over HTTP on
//! 127.0.0.1 for tests, benches and demos, with key rotation, injected faults and a token minter.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use poolgate::testkit::{Fault, SigningAlg, TestIssuer};
//! use serde_json::json;
//!
//! let issuer = TestIssuer::start().await?;
//! let token = issuer.mint().alg(SigningAlg::ES256).claim("scope", json!("kafka")).sign();
//! issuer.set_fault(Fault::Status(503)); // discovery and JWKS now answer 503
//! # let _ = token; Ok(()) }
//! ```

mod config;
mod issuer;
mod keys;
mod mint;
mod proxy;

pub mod cluster;
pub mod kafka;
pub mod stack;

pub use config::{TestKeys, login_config};
pub use issuer::{
    Client, Counts, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Endpoint, Fault, GARBAGE_BODY,
    IssuerConfig, TestIssuer, WRONG_ISSUER,
};
pub use keys::{KeyError, SigningAlg, SigningKey};
pub use mint::{DEFAULT_AUDIENCE, DEFAULT_LIFETIME, DEFAULT_SUBJECT, TokenBuilder, encode_jws};
pub use proxy::HostileProxy;
