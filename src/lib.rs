#![doc = include_str!("../README.md")]
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
pub mod client;
pub mod config;
mod discovery;
mod error;
pub mod explain;
mod fetch;
pub mod filter;
pub mod gate;
mod keys;
mod keystore;
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
