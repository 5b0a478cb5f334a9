//! Owns the per-token validation error and its stable, documented error codes.
//!
//! Messages never contain the token, a signature or a secret; user-controlled strings that
//! do appear (an `alg`, a `kid`, an issuer) are clipped and shown in backticks.

use std::fmt;

use crate::time::UnixTime;

/// Why a token was rejected. Each variant maps to one stable [`ErrorCode`].
///
/// ```
/// use poolgate::{ErrorCode, ValidationError};
/// let err = ValidationError::BadSignature;
/// assert_eq!(err.code(), ErrorCode::BadSignature);
/// assert_eq!(err.code().as_str(), "bad_signature");
/// assert_eq!(err.to_string(), "the signature does not verify");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// The token is not a well-formed compact JWS.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// The token is longer than the configured cap; nothing of it was decoded.
    #[error("token of {size} bytes exceeds the limit of {limit} bytes")]
    TokenTooLarge {
        /// The token's length in bytes.
        size: usize,
        /// The configured cap.
        limit: usize,
    },
    /// The header has a `crit` member; no extension is understood, so none may be critical.
    #[error("the token header lists critical extensions (`crit`), which are not supported")]
    CriticalHeader,
    /// The header's `alg` is missing, unknown, or not in the provider's allow-list.
    #[error("algorithm `{alg}` is not allowed")]
    UnsupportedAlgorithm {
        /// The `alg` as the token states it (clipped), or empty when absent.
        alg: String,
    },
    /// No key in the provider's key set can verify this token.
    #[error("no usable key for this token: {reason}")]
    UnknownKey {
        /// The token's `kid` (clipped), if it had one.
        kid: Option<String>,
        /// Why no key was found.
        reason: String,
    },
    /// The token has no `kid` and more than one key could verify it.
    #[error("the token has no `kid` and {candidates} keys could verify it")]
    AmbiguousKey {
        /// How many keys were eligible.
        candidates: usize,
    },
    /// The signature does not verify against the selected key.
    #[error("the signature does not verify")]
    BadSignature,
    /// `exp` is in the past, beyond the allowed clock skew.
    #[error("the token expired at {exp} (now {now})")]
    Expired {
        /// The token's `exp`, in whole seconds.
        exp: u64,
        /// The time of the check.
        now: UnixTime,
    },
    /// `nbf` is in the future, beyond the allowed clock skew.
    #[error("the token is not valid before {nbf} (now {now})")]
    NotYetValid {
        /// The token's `nbf`, in whole seconds.
        nbf: u64,
        /// The time of the check.
        now: UnixTime,
    },
    /// `iat` is in the future, beyond the allowed clock skew.
    #[error("the token was issued in the future, at {iat} (now {now})")]
    IssuedInFuture {
        /// The token's `iat`, in whole seconds.
        iat: u64,
        /// The time of the check.
        now: UnixTime,
    },
    /// `exp - iat` exceeds the configured maximum lifetime.
    #[error("the token lives {lifetime_secs}s, more than the allowed {max_secs}s")]
    LifetimeTooLong {
        /// `exp - iat`, in seconds.
        lifetime_secs: u64,
        /// The configured maximum, in seconds.
        max_secs: u64,
    },
    /// The token's `iss` is not the issuer of any configured provider.
    #[error("issuer `{issuer}` is not a configured provider")]
    UnknownIssuer {
        /// The token's `iss` (clipped).
        issuer: String,
    },
    /// `aud` names none of the configured audiences.
    #[error("the token's audience is none of the configured audiences")]
    AudienceMismatch,
    /// A claim that is required is absent.
    #[error("required claim `{claim}` is missing")]
    MissingClaim {
        /// The claim's name.
        claim: String,
    },
    /// A registered claim has the wrong type or is out of range.
    #[error("claim `{claim}` is invalid: {reason}")]
    InvalidClaim {
        /// The claim's name.
        claim: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A `typ` allow-list is configured and the header's `typ` is absent or not in it.
    #[error("token type {} is not allowed", display_typ(typ))]
    TypeNotAllowed {
        /// The header's `typ` (clipped), if any.
        typ: Option<String>,
    },
    /// The provider has no usable key set: never loaded, or older than its maximum staleness.
    #[error("no usable key set for issuer `{issuer}`: {reason}")]
    JwksUnavailable {
        /// The provider's issuer.
        issuer: String,
        /// Why the key set is unavailable.
        reason: String,
    },
}

fn display_typ(typ: &Option<String>) -> String {
    match typ {
        Some(t) => format!("`{t}`"),
        None => "(absent)".to_owned(),
    }
}

/// A stable, machine-readable code for each kind of rejection; the CLI and gateway expose it.
///
/// | code | meaning |
/// |---|---|
/// | `malformed` | not three base64url sections, header or payload not a JSON object, `kid`/`alg` not a string |
/// | `token_too_large` | longer than the cap (default 16 KiB), checked before decoding |
/// | `critical_header` | the header has `crit` |
/// | `unsupported_algorithm` | `alg` absent or not in the allow-list (`none` and `HS*` never are) |
/// | `unknown_key` | no eligible key: `kid` unknown after a refetch, or its key cannot serve the `alg` |
/// | `ambiguous_key` | no `kid` and more than one eligible key |
/// | `bad_signature` | the signature does not verify |
/// | `expired`, `not_yet_valid`, `issued_in_future`, `lifetime_too_long` | time checks |
/// | `unknown_issuer` | `iss` equals no configured issuer (exact comparison) |
/// | `audience_mismatch` | `aud` names none of the configured audiences |
/// | `missing_claim` | `exp`, `iss`, `aud` (when audiences are configured) or a required claim absent |
/// | `invalid_claim` | a registered claim of the wrong type or out of range |
/// | `type_not_allowed` | `typ` absent or not in the configured allow-list |
/// | `jwks_unavailable` | the provider has no usable key set |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// `malformed`
    Malformed,
    /// `token_too_large`
    TokenTooLarge,
    /// `critical_header`
    CriticalHeader,
    /// `unsupported_algorithm`
    UnsupportedAlgorithm,
    /// `unknown_key`
    UnknownKey,
    /// `ambiguous_key`
    AmbiguousKey,
    /// `bad_signature`
    BadSignature,
    /// `expired`
    Expired,
    /// `not_yet_valid`
    NotYetValid,
    /// `issued_in_future`
    IssuedInFuture,
    /// `lifetime_too_long`
    LifetimeTooLong,
    /// `unknown_issuer`
    UnknownIssuer,
    /// `audience_mismatch`
    AudienceMismatch,
    /// `missing_claim`
    MissingClaim,
    /// `invalid_claim`
    InvalidClaim,
    /// `type_not_allowed`
    TypeNotAllowed,
    /// `jwks_unavailable`
    JwksUnavailable,
}

impl ErrorCode {
    /// Every code, for documentation and exhaustive tests.
    pub const ALL: [ErrorCode; 17] = [
        ErrorCode::Malformed,
        ErrorCode::TokenTooLarge,
        ErrorCode::CriticalHeader,
        ErrorCode::UnsupportedAlgorithm,
        ErrorCode::UnknownKey,
        ErrorCode::AmbiguousKey,
        ErrorCode::BadSignature,
        ErrorCode::Expired,
        ErrorCode::NotYetValid,
        ErrorCode::IssuedInFuture,
        ErrorCode::LifetimeTooLong,
        ErrorCode::UnknownIssuer,
        ErrorCode::AudienceMismatch,
        ErrorCode::MissingClaim,
        ErrorCode::InvalidClaim,
        ErrorCode::TypeNotAllowed,
        ErrorCode::JwksUnavailable,
    ];

    /// The stable snake_case string.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Malformed => "malformed",
            ErrorCode::TokenTooLarge => "token_too_large",
            ErrorCode::CriticalHeader => "critical_header",
            ErrorCode::UnsupportedAlgorithm => "unsupported_algorithm",
            ErrorCode::UnknownKey => "unknown_key",
            ErrorCode::AmbiguousKey => "ambiguous_key",
            ErrorCode::BadSignature => "bad_signature",
            ErrorCode::Expired => "expired",
            ErrorCode::NotYetValid => "not_yet_valid",
            ErrorCode::IssuedInFuture => "issued_in_future",
            ErrorCode::LifetimeTooLong => "lifetime_too_long",
            ErrorCode::UnknownIssuer => "unknown_issuer",
            ErrorCode::AudienceMismatch => "audience_mismatch",
            ErrorCode::MissingClaim => "missing_claim",
            ErrorCode::InvalidClaim => "invalid_claim",
            ErrorCode::TypeNotAllowed => "type_not_allowed",
            ErrorCode::JwksUnavailable => "jwks_unavailable",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ErrorCode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorCode::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("`{s}` is not an error code"))
    }
}

impl serde::Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl ValidationError {
    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            ValidationError::Malformed(_) => ErrorCode::Malformed,
            ValidationError::TokenTooLarge { .. } => ErrorCode::TokenTooLarge,
            ValidationError::CriticalHeader => ErrorCode::CriticalHeader,
            ValidationError::UnsupportedAlgorithm { .. } => ErrorCode::UnsupportedAlgorithm,
            ValidationError::UnknownKey { .. } => ErrorCode::UnknownKey,
            ValidationError::AmbiguousKey { .. } => ErrorCode::AmbiguousKey,
            ValidationError::BadSignature => ErrorCode::BadSignature,
            ValidationError::Expired { .. } => ErrorCode::Expired,
            ValidationError::NotYetValid { .. } => ErrorCode::NotYetValid,
            ValidationError::IssuedInFuture { .. } => ErrorCode::IssuedInFuture,
            ValidationError::LifetimeTooLong { .. } => ErrorCode::LifetimeTooLong,
            ValidationError::UnknownIssuer { .. } => ErrorCode::UnknownIssuer,
            ValidationError::AudienceMismatch => ErrorCode::AudienceMismatch,
            ValidationError::MissingClaim { .. } => ErrorCode::MissingClaim,
            ValidationError::InvalidClaim { .. } => ErrorCode::InvalidClaim,
            ValidationError::TypeNotAllowed { .. } => ErrorCode::TypeNotAllowed,
            ValidationError::JwksUnavailable { .. } => ErrorCode::JwksUnavailable,
        }
    }

    pub(crate) fn missing(claim: &str) -> Self {
        ValidationError::MissingClaim { claim: clip(claim) }
    }

    pub(crate) fn invalid(claim: &str, reason: &'static str) -> Self {
        ValidationError::InvalidClaim {
            claim: clip(claim),
            reason,
        }
    }
}

/// At most this many characters of a token-supplied string appear in an error.
const CLIP: usize = 64;

/// Shortens a token-supplied string for an error message, on a character boundary.
pub(crate) fn clip(s: &str) -> String {
    match s.char_indices().nth(CLIP) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()));
            assert_eq!(code.as_str().parse::<ErrorCode>(), Ok(code));
            assert!(
                code.as_str()
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_')
            );
        }
    }

    #[test]
    fn clip_shortens_on_char_boundary() {
        let long = "é".repeat(100);
        let clipped = clip(&long);
        assert_eq!(clipped.chars().count(), CLIP + 1);
        assert_eq!(clip("short"), "short");
    }
}
