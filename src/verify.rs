//! Owns token verification: the pure, synchronous checks that turn an [`UnverifiedToken`] into
//! a [`VerifiedToken`], in the fixed order parse, algorithm, key, signature, claims.
//!
//! No I/O and no clock: keys, policy and `now` are arguments. The async
//! [`Validator`](crate::Validator) calls the same steps around its key store.

use serde_json::{Map, Value};

use crate::algorithm::Algorithm;
use crate::error::{ValidationError, clip};
use crate::keys::{KeyLookup, KeySet, VerifyingKey};
use crate::policy::{Audiences, Policy};
use crate::time::UnixTime;
use crate::token::{Header, Payload, UnverifiedToken};

/// The latest numeric date accepted: 9999-12-31T23:59:59Z.
const MAX_NUMERIC_DATE: f64 = 253_402_300_799.0;

/// A token whose signature and claims passed every check of a provider's policy.
///
/// The only way to get one is [`verify`] (or the [`Validator`](crate::Validator), which calls
/// it); pool filters and authorization accept nothing else.
#[derive(Clone, Debug)]
pub struct VerifiedToken {
    header: Header,
    alg: Algorithm,
    payload: Payload,
    times: Times,
}

impl VerifiedToken {
    /// The algorithm the signature was verified with.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The header's `kid`, if any.
    pub fn kid(&self) -> Option<&str> {
        self.header.kid()
    }

    /// The header's `typ`, if any.
    pub fn typ(&self) -> Option<&str> {
        self.header.typ()
    }

    /// Every claim of the payload (parsed into a tree on first use).
    pub fn claims(&self) -> &Map<String, Value> {
        self.payload.all()
    }

    /// One claim by name.
    pub fn claim(&self, name: &str) -> Option<&Value> {
        self.claims().get(name)
    }

    /// `iss`: always present and equal to the provider's issuer.
    pub fn issuer(&self) -> &str {
        let iss = &self.payload.registered().iss;
        iss.as_ref().and_then(Value::as_str).unwrap_or_default()
    }

    /// `sub`, when present (it is a string when present).
    pub fn subject(&self) -> Option<&str> {
        self.payload
            .registered()
            .sub
            .as_ref()
            .and_then(Value::as_str)
    }

    /// `aud` as a list (empty when absent and the provider accepts any audience).
    pub fn audiences(&self) -> Vec<&str> {
        match &self.payload.registered().aud {
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }

    /// `exp`, in whole seconds (rounded down).
    pub fn expires_at(&self) -> UnixTime {
        UnixTime::from_secs(self.times.exp as u64)
    }

    /// `iat`, if present.
    pub fn issued_at(&self) -> Option<UnixTime> {
        self.times.iat.map(|t| UnixTime::from_secs(t as u64))
    }

    /// `nbf`, if present.
    pub fn not_before(&self) -> Option<UnixTime> {
        self.times.nbf.map(|t| UnixTime::from_secs(t as u64))
    }

    /// Repeats the time checks (`exp`, `nbf`, `iat` with the policy's skew) at another `now`:
    /// what a cached verification must still pass when it is reused.
    ///
    /// # Errors
    /// [`ValidationError::Expired`], [`ValidationError::NotYetValid`] or
    /// [`ValidationError::IssuedInFuture`].
    pub fn check_times(&self, policy: &Policy, now: UnixTime) -> Result<(), ValidationError> {
        check_times(&self.times, policy, now)
    }

    /// Takes the claims out.
    pub fn into_claims(mut self) -> Map<String, Value> {
        self.payload.all();
        self.payload.take_all()
    }
}

/// Verifies a compact JWS against a key set and a policy at time `now`.
///
/// This is the whole pure core in one call; the [`Validator`](crate::Validator) adds key
/// fetching, refresh and multi-provider routing around the same steps.
///
/// ```
/// use poolgate::{verify, ErrorCode, KeySet, Policy, UnixTime};
/// let keys = KeySet::from_jwks(br#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"ed1",
///     "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#).unwrap();
/// let policy = Policy::builder("https://idp").audience("kafka").build().unwrap();
/// // {"alg":"none"}.{"iss":"https://idp"}.sig
/// let err = verify("eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwczovL2lkcCJ9.c2ln", &keys, &policy,
///     UnixTime::from_secs(1_700_000_000)).unwrap_err();
/// assert_eq!(err.code(), ErrorCode::UnsupportedAlgorithm);
/// ```
///
/// # Errors
/// The first check that fails, as a [`ValidationError`].
pub fn verify(
    token: &str,
    keys: &KeySet,
    policy: &Policy,
    now: UnixTime,
) -> Result<VerifiedToken, ValidationError> {
    let parsed = UnverifiedToken::parse(token, policy.max_token_size())?;
    let alg = check_header(&parsed, policy)?;
    let key = keys
        .select(parsed.header().kid(), alg)
        .map_err(|lookup| lookup_error(parsed.header().kid(), lookup))?;
    finish(parsed, alg, key, policy, now)
}

/// Header checks after parsing: `crit`, then the algorithm allow-list.
pub(crate) fn check_header(
    token: &UnverifiedToken<'_>,
    policy: &Policy,
) -> Result<Algorithm, ValidationError> {
    if token.header().has_crit() {
        return Err(ValidationError::CriticalHeader);
    }
    let name = token.header().alg().unwrap_or_default();
    match name.parse::<Algorithm>() {
        Ok(alg) if policy.allows(alg) => Ok(alg),
        _ => Err(ValidationError::UnsupportedAlgorithm { alg: clip(name) }),
    }
}

/// The error for a failed key lookup (after any refetch).
pub(crate) fn lookup_error(kid: Option<&str>, lookup: KeyLookup) -> ValidationError {
    let kid = kid.map(clip);
    match lookup {
        KeyLookup::UnknownKid => ValidationError::UnknownKey {
            kid,
            reason: "no key has this `kid`".to_owned(),
        },
        KeyLookup::Ineligible(reason) => ValidationError::UnknownKey { kid, reason },
        KeyLookup::NoEligible => ValidationError::UnknownKey {
            kid,
            reason: "the token has no `kid` and no key can verify its algorithm".to_owned(),
        },
        KeyLookup::Ambiguous(candidates) => ValidationError::AmbiguousKey { candidates },
    }
}

/// Signature, then `typ`, then claims.
pub(crate) fn finish(
    token: UnverifiedToken<'_>,
    alg: Algorithm,
    key: &VerifyingKey,
    policy: &Policy,
    now: UnixTime,
) -> Result<VerifiedToken, ValidationError> {
    if !key.verify(alg, token.signing_input(), token.signature()) {
        return Err(ValidationError::BadSignature);
    }
    if !policy.type_allowed(token.header().typ()) {
        return Err(ValidationError::TypeNotAllowed {
            typ: token.header().typ().map(clip),
        });
    }
    let (header, payload) = token.into_parts();
    let times = check_claims(&payload, policy, now)?;
    Ok(VerifiedToken {
        header,
        alg,
        payload,
        times,
    })
}

#[derive(Clone, Copy, Debug)]
struct Times {
    exp: f64,
    iat: Option<f64>,
    nbf: Option<f64>,
}

/// The claim checks, in a fixed order: `iss`, dates' types, `aud`, `exp`, `nbf`, `iat`,
/// lifetime, required claims.
fn check_claims(
    payload: &Payload,
    policy: &Policy,
    now: UnixTime,
) -> Result<Times, ValidationError> {
    let claims = payload.registered();
    match &claims.iss {
        None => return Err(ValidationError::missing("iss")),
        Some(Value::String(iss)) if iss == policy.issuer() => {}
        Some(Value::String(iss)) => {
            return Err(ValidationError::UnknownIssuer { issuer: clip(iss) });
        }
        Some(_) => return Err(ValidationError::invalid("iss", "not a string")),
    }
    let exp = numeric_date(&claims.exp, "exp")?.ok_or_else(|| ValidationError::missing("exp"))?;
    let nbf = numeric_date(&claims.nbf, "nbf")?;
    let iat = numeric_date(&claims.iat, "iat")?;
    if claims.sub.as_ref().is_some_and(|s| !s.is_string()) {
        return Err(ValidationError::invalid("sub", "not a string"));
    }
    check_audience(claims.aud.as_ref(), policy.audiences())?;

    let times = Times { exp, iat, nbf };
    check_times(&times, policy, now)?;
    if let Some(max) = policy.max_lifetime() {
        let iat = iat.ok_or_else(|| ValidationError::missing("iat"))?;
        let lifetime = exp - iat;
        if lifetime > max.as_secs_f64() {
            return Err(ValidationError::LifetimeTooLong {
                lifetime_secs: lifetime as u64,
                max_secs: max.as_secs(),
            });
        }
    }
    if let Some(absent) = policy
        .required_claims()
        .iter()
        .find(|c| !payload.contains(c))
    {
        return Err(ValidationError::missing(absent));
    }
    Ok(times)
}

fn check_times(times: &Times, policy: &Policy, now: UnixTime) -> Result<(), ValidationError> {
    let now_f = now.as_secs() as f64;
    let skew = policy.clock_skew().as_secs_f64();
    if now_f >= times.exp + skew {
        return Err(ValidationError::Expired {
            exp: times.exp as u64,
            now,
        });
    }
    if let Some(nbf) = times.nbf
        && now_f + skew < nbf
    {
        return Err(ValidationError::NotYetValid {
            nbf: nbf as u64,
            now,
        });
    }
    if let Some(iat) = times.iat
        && iat > now_f + skew
    {
        return Err(ValidationError::IssuedInFuture {
            iat: iat as u64,
            now,
        });
    }
    Ok(())
}

/// A NumericDate (RFC 7519 section 2): a non-negative number, integer or not, no later than
/// the year 9999.
fn numeric_date(value: &Option<Value>, name: &str) -> Result<Option<f64>, ValidationError> {
    match value {
        None => Ok(None),
        Some(Value::Number(n)) => {
            let v = n
                .as_f64()
                .ok_or_else(|| ValidationError::invalid(name, "not a number"))?;
            if !v.is_finite() || v < 0.0 {
                Err(ValidationError::invalid(name, "negative"))
            } else if v > MAX_NUMERIC_DATE {
                Err(ValidationError::invalid(name, "after the year 9999"))
            } else {
                Ok(Some(v))
            }
        }
        Some(_) => Err(ValidationError::invalid(name, "not a number")),
    }
}

fn check_audience(aud: Option<&Value>, accepted: &Audiences) -> Result<(), ValidationError> {
    let matches = |s: &str| match accepted {
        Audiences::OneOf(list) => list.iter().any(|a| a == s),
        Audiences::DangerousAcceptAny => true,
    };
    let found = match aud {
        None => {
            return match accepted {
                Audiences::OneOf(_) => Err(ValidationError::missing("aud")),
                Audiences::DangerousAcceptAny => Ok(()),
            };
        }
        Some(Value::String(s)) => matches(s),
        Some(Value::Array(items)) => {
            let mut found = false;
            for item in items {
                let Value::String(s) = item else {
                    return Err(ValidationError::invalid(
                        "aud",
                        "not a string or a list of strings",
                    ));
                };
                found |= matches(s);
            }
            found || matches!(accepted, Audiences::DangerousAcceptAny)
        }
        Some(_) => {
            return Err(ValidationError::invalid(
                "aud",
                "not a string or a list of strings",
            ));
        }
    };
    if found {
        Ok(())
    } else {
        Err(ValidationError::AudienceMismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use serde_json::json;

    fn policy() -> Policy {
        Policy::builder("https://idp")
            .audience("kafka")
            .build()
            .unwrap()
    }

    fn check(claims: Value, policy: &Policy, now: u64) -> Result<(), ErrorCode> {
        let payload = Payload::parse(claims.to_string().into_bytes()).unwrap();
        check_claims(&payload, policy, UnixTime::from_secs(now))
            .map(|_| ())
            .map_err(|e| e.code())
    }

    #[test]
    fn claim_rules() {
        let p = policy();
        let ok = json!({"iss":"https://idp","aud":"kafka","exp":2000,"iat":1000});
        assert_eq!(check(ok.clone(), &p, 1500), Ok(()));
        let cases: Vec<(Value, u64, Result<(), ErrorCode>)> = vec![
            (
                json!({"aud":"kafka","exp":2000}),
                1500,
                Err(ErrorCode::MissingClaim),
            ),
            (
                json!({"iss":"https://idp/","aud":"kafka","exp":2000}),
                1500,
                Err(ErrorCode::UnknownIssuer),
            ),
            (
                json!({"iss":5,"aud":"kafka","exp":2000}),
                1500,
                Err(ErrorCode::InvalidClaim),
            ),
            (
                json!({"iss":"https://idp","aud":"kafka"}),
                1500,
                Err(ErrorCode::MissingClaim),
            ),
            (
                json!({"iss":"https://idp","aud":"kafka","exp":"2000"}),
                1500,
                Err(ErrorCode::InvalidClaim),
            ),
            (
                json!({"iss":"https://idp","aud":"kafka","exp":-1}),
                0,
                Err(ErrorCode::InvalidClaim),
            ),
            (
                json!({"iss":"https://idp","aud":"kafka","exp":1e300}),
                0,
                Err(ErrorCode::InvalidClaim),
            ),
            (
                json!({"iss":"https://idp","aud":"kafka","exp":18446744073709551615u64}),
                0,
                Err(ErrorCode::InvalidClaim),
            ),
            (
                json!({"iss":"https://idp","aud":"kafka","exp":2000.5}),
                2000,
                Ok(()),
            ),
            (
                json!({"iss":"https://idp","aud":"kafka","exp":2000}),
                2029,
                Ok(()),
            ),
            (
                json!({"iss":"https://idp","aud":"kafka","exp":2000}),
                2030,
                Err(ErrorCode::Expired),
            ),
            (
                json!({"iss":"https://idp","aud":"kafka","exp":3000,"nbf":2031}),
                2000,
                Err(ErrorCode::NotYetValid),
            ),
            (
                json!({"iss":"https://idp","aud":"kafka","exp":3000,"nbf":2030}),
                2000,
                Ok(()),
            ),
            (
                json!({"iss":"https://idp","aud":"kafka","exp":3000,"iat":2031}),
                2000,
                Err(ErrorCode::IssuedInFuture),
            ),
            (
                json!({"iss":"https://idp","aud":"kafka","exp":3000,"iat":null}),
                2000,
                Err(ErrorCode::InvalidClaim),
            ),
            (
                json!({"iss":"https://idp","exp":3000}),
                2000,
                Err(ErrorCode::MissingClaim),
            ),
            (
                json!({"iss":"https://idp","aud":"other","exp":3000}),
                2000,
                Err(ErrorCode::AudienceMismatch),
            ),
            (
                json!({"iss":"https://idp","aud":[],"exp":3000}),
                2000,
                Err(ErrorCode::AudienceMismatch),
            ),
            (
                json!({"iss":"https://idp","aud":["x","kafka"],"exp":3000}),
                2000,
                Ok(()),
            ),
            (
                json!({"iss":"https://idp","aud":["x",1],"exp":3000}),
                2000,
                Err(ErrorCode::InvalidClaim),
            ),
            (
                json!({"iss":"https://idp","aud":{"a":1},"exp":3000}),
                2000,
                Err(ErrorCode::InvalidClaim),
            ),
            (
                json!({"iss":"https://idp","aud":"kafka","exp":3000,"sub":1}),
                2000,
                Err(ErrorCode::InvalidClaim),
            ),
        ];
        for (claims, now, want) in cases {
            assert_eq!(check(claims.clone(), &p, now), want, "{claims}");
        }
    }

    #[test]
    fn lifetime_and_required_claims() {
        let p = Policy::builder("https://idp")
            .audience("kafka")
            .max_lifetime(std::time::Duration::from_secs(3600))
            .require_claims(["sub"])
            .build()
            .unwrap();
        let base = |exp: u64, iat: Option<u64>, sub: bool| {
            let mut v = json!({"iss":"https://idp","aud":"kafka","exp":exp});
            if let Some(iat) = iat {
                v["iat"] = json!(iat);
            }
            if sub {
                v["sub"] = json!("s");
            }
            v
        };
        assert_eq!(check(base(4600, Some(1000), true), &p, 1000), Ok(()));
        assert_eq!(
            check(base(4601, Some(1000), true), &p, 1000),
            Err(ErrorCode::LifetimeTooLong)
        );
        assert_eq!(
            check(base(4600, None, true), &p, 1000),
            Err(ErrorCode::MissingClaim)
        );
        assert_eq!(
            check(base(4600, Some(1000), false), &p, 1000),
            Err(ErrorCode::MissingClaim)
        );
    }

    #[test]
    fn any_audience_is_explicit() {
        let p = Policy::builder("https://idp")
            .dangerous_allow_any_audience()
            .build()
            .unwrap();
        assert_eq!(
            check(json!({"iss":"https://idp","exp":3000}), &p, 0),
            Ok(())
        );
        assert_eq!(
            check(json!({"iss":"https://idp","aud":"zz","exp":3000}), &p, 0),
            Ok(())
        );
        assert_eq!(
            check(json!({"iss":"https://idp","aud":7,"exp":3000}), &p, 0),
            Err(ErrorCode::InvalidClaim)
        );
    }
}
