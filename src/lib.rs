//! Broker-side Kafka OAuth: SASL/OAUTHBEARER logins (RFC 7628) verified against an OIDC
//! issuer's keys and mapped through identity pools to a principal and a permission set.
//!
//! A Kafka client sends a JWT from its identity provider in the SASL client first message. A
//! broker, proxy or gateway hands those bytes to a [`Gate`](gate::Gate), which verifies the
//! token (keys from the issuer's discovery document, fetched, cached and rotated; signature,
//! algorithm allow-list, `iss`, `aud`, `exp`/`nbf`/`iat` with skew), selects the identity pools
//! whose CEL filters accept its claims, and answers with a [`Session`](gate::Session)
//! (principals, permissions, expiry) or a [`Rejection`](gate::Rejection) (a reason code and the
//! RFC 7628 error challenge).
//!
//! ```no_run
//! use poolgate::authz::{Operation, Resource};
//! use poolgate::config::Config;
//! use poolgate::gate::Gate;
//!
//! # async fn run(client_first_message: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
//! // Once: start the key stores. Clone the gate into every connection.
//! let gate = Gate::start(Config::load("poolgate.toml".as_ref())?).await?;
//! // Per login (and re-login, KIP-368): a cached token costs a hash lookup.
//! match gate.authenticate(client_first_message).await {
//!     Ok(session) => {
//!         // Per request: no I/O, no allocation.
//!         let decision = session.authorize(Operation::Write, &Resource::topic("orders"));
//!         println!("{} {:?}: {decision}", session.identity(), session.principals());
//!     }
//!     // Log the code; send the client only the challenge.
//!     Err(rejection) => println!("{}: {:?}", rejection.code(), rejection.challenge()),
//! }
//! # Ok(()) }
//! ```
//!
//! Where to go next:
//! - `examples/embed.rs`: a minimal TCP front door around a [`Gate`](gate::Gate).
//! - [`config`]: the configuration (providers, identity pools, grants), in TOML or built in code.
//! - [`verify()`] and [`Validator`]: token verification alone, pure or with key fetching.
//! - [`sasl`], [`pool`], [`filter`], [`authz`]: the pure parts a login is made of.
//! - [`manual`]: what is checked and in which order, the configuration reference, the CLI, the
//!   gateway and the tests (the README).
//!
//! Features: the default build is the library above. `testkit` adds a local OIDC issuer, an
//! OAuth client and a small Kafka client for tests; `cli` the `poolgate` command and its
//! gateway; `http2` HTTP/2 for key fetches.
#![forbid(unsafe_code)]
#![deny(missing_docs, unreachable_pub)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod algorithm;
pub mod authz;
mod cache;
#[cfg(feature = "cli")]
pub mod cli;
#[cfg(feature = "testkit")]
pub mod client;
pub mod config;
mod discovery;
mod error;
pub mod explain;
mod fetch;
pub mod filter;
pub mod gate;
mod http;
mod keys;
mod keystore;
pub mod login;
mod policy;
pub mod pool;
pub mod proxy;
pub mod report;
pub mod sasl;
mod time;
mod token;
mod validator;
mod verify;

#[cfg(feature = "testkit")]
pub mod testkit;

/// The user's manual: the project's README, whose code blocks are tested as doctests.
#[doc = include_str!("../README.md")]
pub mod manual {}

pub use algorithm::{Algorithm, UnknownAlgorithm};
pub use discovery::{Discovery, DiscoveryError};
pub use error::{ErrorCode, ValidationError};
pub use fetch::{DEFAULT_MAX_RESPONSE_SIZE, FetchError, FetchOptions, Fetched, Fetcher};
pub use keys::{
    JwksError, KeyKind, KeySet, MAX_JWKS_KEYS, MAX_KID_LEN, MAX_RSA_BITS, MAX_RSA_EXPONENT_BITS,
    MIN_RSA_BITS, RsaExponentFlaw, SkipReason, SkippedKey, VerifyingKey,
};
pub use keystore::{KeySource, KeyStore, KeyStoreConfig, KeyStoreError, KeyStoreStats, Snapshot};
pub use policy::{Audiences, DEFAULT_CLOCK_SKEW, Policy, PolicyBuilder, PolicyError};
pub use time::{Clock, ManualClock, SystemClock, UnixTime};
pub use token::{DEFAULT_MAX_TOKEN_SIZE, Header, UnverifiedToken};
pub use validator::{Provider, Validator, ValidatorError};
pub use verify::{VerifiedToken, verify};
