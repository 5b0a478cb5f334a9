//! Owns a provider's validation policy: issuer, audiences, algorithms, time rules, token types.
//!
//! Built once, checked when built (an empty allow-list is an error, never "allow all"), then
//! shared read-only by every validation.

use std::time::Duration;

use crate::algorithm::Algorithm;
use crate::token::DEFAULT_MAX_TOKEN_SIZE;

/// The default clock skew tolerated on `exp`, `nbf` and `iat`: 30 seconds.
pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(30);

/// What one provider (issuer) accepts.
///
/// ```
/// use poolgate::{Algorithm, Policy};
/// use std::time::Duration;
/// let policy = Policy::builder("https://idp.example.com/oauth2")
///     .audience("kafka")
///     .algorithms([Algorithm::RS256, Algorithm::ES256])
///     .clock_skew(Duration::from_secs(10))
///     .require_claims(["sub", "iat"])
///     .build()
///     .unwrap();
/// assert_eq!(policy.issuer(), "https://idp.example.com/oauth2");
/// assert!(policy.allows(Algorithm::ES256));
/// assert!(!policy.allows(Algorithm::EdDSA));
/// ```
#[derive(Clone, Debug)]
pub struct Policy {
    issuer: String,
    audiences: Audiences,
    algorithms: [bool; Algorithm::ALL.len()],
    clock_skew: Duration,
    required_claims: Vec<String>,
    max_lifetime: Option<Duration>,
    token_types: Option<Vec<String>>,
    max_token_size: usize,
}

/// Which audiences a provider accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Audiences {
    /// `aud` must be present and contain one of these.
    OneOf(Vec<String>),
    /// Any audience, or none: the explicit, named opt-out.
    DangerousAcceptAny,
}

/// A policy that cannot work.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The issuer is empty.
    #[error("the issuer is empty")]
    EmptyIssuer,
    /// No audience is configured and the any-audience opt-out is not set.
    #[error("no audience configured (set one, or opt out explicitly with allow_any_audience)")]
    NoAudience,
    /// The algorithm allow-list is empty.
    #[error("the algorithm allow-list is empty")]
    NoAlgorithm,
    /// The `typ` allow-list is present but empty.
    #[error("the token type allow-list is empty")]
    NoTokenType,
    /// The token size cap is zero.
    #[error("the token size limit must be positive")]
    ZeroTokenSize,
}

/// Builds a [`Policy`]; see there for an example.
#[derive(Clone, Debug)]
pub struct PolicyBuilder {
    issuer: String,
    audiences: Vec<String>,
    any_audience: bool,
    algorithms: Vec<Algorithm>,
    clock_skew: Duration,
    required_claims: Vec<String>,
    max_lifetime: Option<Duration>,
    token_types: Option<Vec<String>>,
    max_token_size: usize,
}

impl Policy {
    /// Starts a policy for `issuer` (compared exactly to `iss`: `https://idp/` is not
    /// `https://idp`). Defaults: no audience (you must add one), every supported algorithm,
    /// 30 s skew, no lifetime cap, any `typ`, 16 KiB tokens.
    pub fn builder(issuer: impl Into<String>) -> PolicyBuilder {
        PolicyBuilder {
            issuer: issuer.into(),
            audiences: Vec::new(),
            any_audience: false,
            algorithms: Algorithm::ALL.to_vec(),
            clock_skew: DEFAULT_CLOCK_SKEW,
            required_claims: Vec::new(),
            max_lifetime: None,
            token_types: None,
            max_token_size: DEFAULT_MAX_TOKEN_SIZE,
        }
    }

    /// The issuer this policy belongs to.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The accepted audiences.
    pub fn audiences(&self) -> &Audiences {
        &self.audiences
    }

    /// Whether `alg` is in the allow-list.
    pub fn allows(&self, alg: Algorithm) -> bool {
        self.algorithms[alg.index()]
    }

    /// The allow-listed algorithms.
    pub fn algorithms(&self) -> impl Iterator<Item = Algorithm> + '_ {
        Algorithm::ALL.into_iter().filter(|a| self.allows(*a))
    }

    /// The tolerated clock skew.
    pub fn clock_skew(&self) -> Duration {
        self.clock_skew
    }

    /// Claims that must be present.
    pub fn required_claims(&self) -> &[String] {
        &self.required_claims
    }

    /// The maximum `exp - iat`, if capped.
    pub fn max_lifetime(&self) -> Option<Duration> {
        self.max_lifetime
    }

    /// The `typ` allow-list (normalised: lower case, no `application/`), if any.
    pub fn token_types(&self) -> Option<&[String]> {
        self.token_types.as_deref()
    }

    /// The cap on a whole token, in bytes.
    pub fn max_token_size(&self) -> usize {
        self.max_token_size
    }

    /// Whether `typ` passes the allow-list (RFC 7515 4.1.9: case-insensitive, `application/`
    /// optional).
    pub(crate) fn type_allowed(&self, typ: Option<&str>) -> bool {
        match &self.token_types {
            None => true,
            Some(allowed) => typ.is_some_and(|t| {
                let t = normalize_typ(t);
                allowed.contains(&t)
            }),
        }
    }
}

fn normalize_typ(typ: &str) -> String {
    let lower = typ.to_ascii_lowercase();
    match lower.strip_prefix("application/") {
        Some(rest) => rest.to_owned(),
        None => lower,
    }
}

impl PolicyBuilder {
    /// Adds an accepted audience.
    pub fn audience(mut self, aud: impl Into<String>) -> Self {
        self.audiences.push(aud.into());
        self
    }

    /// Adds accepted audiences.
    pub fn audiences<I: IntoIterator<Item = S>, S: Into<String>>(mut self, auds: I) -> Self {
        self.audiences.extend(auds.into_iter().map(Into::into));
        self
    }

    /// Accepts tokens whatever their `aud`, even none. Dangerous: a token minted for another
    /// service by the same IdP is then accepted here.
    pub fn dangerous_allow_any_audience(mut self) -> Self {
        self.any_audience = true;
        self
    }

    /// Replaces the algorithm allow-list.
    pub fn algorithms(mut self, algs: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algs.into_iter().collect();
        self
    }

    /// Sets the tolerated clock skew (default 30 s).
    pub fn clock_skew(mut self, skew: Duration) -> Self {
        self.clock_skew = skew;
        self
    }

    /// Claims that must be present (for example `sub`, `iat`).
    pub fn require_claims<I: IntoIterator<Item = S>, S: Into<String>>(mut self, claims: I) -> Self {
        self.required_claims
            .extend(claims.into_iter().map(Into::into));
        self
    }

    /// Caps `exp - iat`; tokens then need `iat`.
    pub fn max_lifetime(mut self, max: Duration) -> Self {
        self.max_lifetime = Some(max);
        self
    }

    /// Sets a `typ` allow-list (for example `at+jwt`, `JWT`).
    pub fn token_types<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, types: I) -> Self {
        self.token_types = Some(
            types
                .into_iter()
                .map(|t| normalize_typ(t.as_ref()))
                .collect(),
        );
        self
    }

    /// Sets the cap on a whole token in bytes (default 16 KiB).
    pub fn max_token_size(mut self, bytes: usize) -> Self {
        self.max_token_size = bytes;
        self
    }

    /// Checks and builds the policy.
    ///
    /// # Errors
    /// [`PolicyError`] for an empty issuer, audience list, algorithm list or type list.
    pub fn build(self) -> Result<Policy, PolicyError> {
        if self.issuer.is_empty() {
            return Err(PolicyError::EmptyIssuer);
        }
        let audiences = if self.any_audience {
            Audiences::DangerousAcceptAny
        } else if self.audiences.is_empty() {
            return Err(PolicyError::NoAudience);
        } else {
            Audiences::OneOf(self.audiences)
        };
        if self.algorithms.is_empty() {
            return Err(PolicyError::NoAlgorithm);
        }
        if self.token_types.as_ref().is_some_and(Vec::is_empty) {
            return Err(PolicyError::NoTokenType);
        }
        if self.max_token_size == 0 {
            return Err(PolicyError::ZeroTokenSize);
        }
        let mut algorithms = [false; Algorithm::ALL.len()];
        for a in self.algorithms {
            algorithms[a.index()] = true;
        }
        let mut required_claims = self.required_claims;
        required_claims.sort();
        required_claims.dedup();
        Ok(Policy {
            issuer: self.issuer,
            audiences,
            algorithms,
            clock_skew: self.clock_skew,
            required_claims,
            max_lifetime: self.max_lifetime,
            token_types: self.token_types,
            max_token_size: self.max_token_size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_allow_lists_are_errors() {
        assert_eq!(
            Policy::builder("i").build().unwrap_err(),
            PolicyError::NoAudience
        );
        assert_eq!(
            Policy::builder("").audience("a").build().unwrap_err(),
            PolicyError::EmptyIssuer
        );
        assert_eq!(
            Policy::builder("i")
                .audience("a")
                .algorithms([])
                .build()
                .unwrap_err(),
            PolicyError::NoAlgorithm
        );
        assert_eq!(
            Policy::builder("i")
                .audience("a")
                .token_types(Vec::<String>::new())
                .build()
                .unwrap_err(),
            PolicyError::NoTokenType
        );
        let any = Policy::builder("i")
            .dangerous_allow_any_audience()
            .build()
            .unwrap();
        assert_eq!(any.audiences(), &Audiences::DangerousAcceptAny);
    }

    #[test]
    fn typ_comparison_follows_rfc_7515() {
        let p = Policy::builder("i")
            .audience("a")
            .token_types(["at+jwt"])
            .build()
            .unwrap();
        assert!(p.type_allowed(Some("at+jwt")));
        assert!(p.type_allowed(Some("AT+JWT")));
        assert!(p.type_allowed(Some("application/at+jwt")));
        assert!(p.type_allowed(Some("Application/At+Jwt")));
        assert!(!p.type_allowed(Some("JWT")));
        assert!(!p.type_allowed(None));
        let open = Policy::builder("i").audience("a").build().unwrap();
        assert!(open.type_allowed(None));
    }
}
