#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs, unreachable_pub)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod algorithm;
mod error;
mod keys;
mod policy;
mod time;
mod token;
mod verify;

#[cfg(feature = "testkit")]
pub mod testkit;

pub use algorithm::{Algorithm, UnknownAlgorithm};
pub use error::{ErrorCode, ValidationError};
pub use keys::{
    JwksError, KeyKind, KeySet, MAX_JWKS_KEYS, MAX_KID_LEN, MAX_RSA_BITS, MIN_RSA_BITS, SkipReason,
    SkippedKey, VerifyingKey,
};
pub use policy::{Audiences, DEFAULT_CLOCK_SKEW, Policy, PolicyBuilder, PolicyError};
pub use time::{Clock, ManualClock, SystemClock, UnixTime};
pub use token::{DEFAULT_MAX_TOKEN_SIZE, Header, UnverifiedToken};
pub use verify::{VerifiedToken, verify};
