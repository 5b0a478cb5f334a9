//! Owns multi-provider validation: routes a token by its unverified `iss` to one provider,
//! whose key store and policy then decide, refetching keys once on an unknown `kid`.
//!
//! The async shell over [`verify`](crate::verify)'s steps. A token whose `kid` is known never
//! waits on any fetch: the future completes on its first poll.

use std::sync::Arc;

use crate::error::{ValidationError, clip};
use crate::keys::KeyLookup;
use crate::keystore::{KeySource, KeyStore, KeyStoreConfig, KeyStoreError, Snapshot};
use crate::policy::Policy;
use crate::time::{Clock, SystemClock, UnixTime};
use crate::token::UnverifiedToken;
use crate::verify::{VerifiedToken, check_header, finish, lookup_error};

/// One identity provider: its policy and its live keys.
#[derive(Clone, Debug)]
pub struct Provider {
    policy: Policy,
    store: KeyStore,
}

impl Provider {
    /// Pairs a policy with a key store of the same issuer.
    ///
    /// # Errors
    /// [`ValidatorError::IssuerMismatch`] when they name different issuers.
    pub fn new(policy: Policy, store: KeyStore) -> Result<Provider, ValidatorError> {
        if policy.issuer() != store.issuer() {
            return Err(ValidatorError::IssuerMismatch {
                policy: policy.issuer().to_owned(),
                store: store.issuer().to_owned(),
            });
        }
        Ok(Provider { policy, store })
    }

    /// Starts a key store for `policy`'s issuer from `source`, and pairs them.
    ///
    /// # Errors
    /// The key store's first-load error.
    pub async fn start(
        policy: Policy,
        source: KeySource,
        config: KeyStoreConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Provider, KeyStoreError> {
        let store = KeyStore::start(policy.issuer(), source, config, clock).await?;
        Ok(Provider { policy, store })
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The key store.
    pub fn store(&self) -> &KeyStore {
        &self.store
    }
}

/// A set of providers that cannot be used together.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidatorError {
    /// No provider at all.
    #[error("no provider configured")]
    NoProvider,
    /// Two providers share an issuer.
    #[error("issuer `{0}` is configured twice")]
    DuplicateIssuer(String),
    /// A policy and a key store of different issuers.
    #[error("policy issuer `{policy}` differs from key store issuer `{store}`")]
    IssuerMismatch {
        /// The policy's issuer.
        policy: String,
        /// The store's issuer.
        store: String,
    },
}

/// Validates tokens from one or more providers. Cheap to clone; share it across tasks.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use poolgate::{ErrorCode, KeySet, KeyStore, Policy, Provider, SystemClock, Validator};
/// use std::sync::Arc;
/// let keys = KeySet::from_jwks(br#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"ed1",
///     "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#).unwrap();
/// let policy = Policy::builder("https://idp").audience("kafka").build().unwrap();
/// let store = KeyStore::fixed("https://idp", keys, Arc::new(SystemClock));
/// let validator = Validator::new(vec![Provider::new(policy, store).unwrap()]).unwrap();
/// let err = validator.validate("not-a-token").await.unwrap_err();
/// assert_eq!(err.code(), ErrorCode::Malformed);
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Validator {
    providers: Arc<[Provider]>,
    clock: Arc<dyn Clock>,
    max_token_size: usize,
}

impl Validator {
    /// A validator over these providers, reading the system clock.
    ///
    /// # Errors
    /// [`ValidatorError`] for no provider or a duplicated issuer.
    pub fn new(providers: Vec<Provider>) -> Result<Validator, ValidatorError> {
        Validator::with_clock(providers, Arc::new(SystemClock))
    }

    /// A validator reading `clock` for "now".
    ///
    /// # Errors
    /// [`ValidatorError`] for no provider or a duplicated issuer.
    pub fn with_clock(
        providers: Vec<Provider>,
        clock: Arc<dyn Clock>,
    ) -> Result<Validator, ValidatorError> {
        if providers.is_empty() {
            return Err(ValidatorError::NoProvider);
        }
        for (i, p) in providers.iter().enumerate() {
            if providers[..i]
                .iter()
                .any(|q| q.policy.issuer() == p.policy.issuer())
            {
                return Err(ValidatorError::DuplicateIssuer(
                    p.policy.issuer().to_owned(),
                ));
            }
        }
        let max_token_size = providers
            .iter()
            .map(|p| p.policy.max_token_size())
            .max()
            .unwrap_or_default();
        Ok(Validator {
            providers: providers.into(),
            clock,
            max_token_size,
        })
    }

    /// The providers.
    pub fn providers(&self) -> &[Provider] {
        &self.providers
    }

    /// The provider of `issuer` (exact comparison).
    pub fn provider(&self, issuer: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| p.policy.issuer() == issuer)
    }

    /// The position of the provider of `issuer` (exact comparison).
    pub fn provider_index(&self, issuer: &str) -> Option<usize> {
        self.providers
            .iter()
            .position(|p| p.policy.issuer() == issuer)
    }

    /// The clock the validator reads.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Validates `token` now (by the validator's clock).
    ///
    /// # Errors
    /// The first failed check, as a [`ValidationError`].
    pub async fn validate(&self, token: &str) -> Result<VerifiedToken, ValidationError> {
        self.validate_at(token, self.clock.now()).await
    }

    /// Validates `token` as of `now`.
    ///
    /// # Errors
    /// The first failed check, as a [`ValidationError`].
    pub async fn validate_at(
        &self,
        token: &str,
        now: UnixTime,
    ) -> Result<VerifiedToken, ValidationError> {
        Ok(self.validate_keyed(token, now).await?.0)
    }

    /// As [`Validator::validate_at`], with the key set whose key verified the token (so a
    /// cache can tell later whether that key is still published).
    pub(crate) async fn validate_keyed(
        &self,
        token: &str,
        now: UnixTime,
    ) -> Result<(VerifiedToken, Arc<Snapshot>), ValidationError> {
        let parsed = UnverifiedToken::parse(token, self.max_token_size)?;
        let provider = self.route(&parsed)?;
        let policy = &provider.policy;
        if token.len() > policy.max_token_size() {
            return Err(ValidationError::TokenTooLarge {
                size: token.len(),
                limit: policy.max_token_size(),
            });
        }
        let alg = check_header(&parsed, policy)?;
        let snapshot = provider.store.current()?;
        let kid = parsed.header().kid();
        match snapshot.keys().select(kid, alg) {
            Ok(key) => Ok((
                finish(parsed, alg, key, policy, now)?,
                Arc::clone(&snapshot),
            )),
            Err(KeyLookup::UnknownKid) => {
                let kid = kid.unwrap_or_default().to_owned();
                let Some(fresh) = provider
                    .store
                    .resolve_unknown_kid(&kid, snapshot.generation())
                    .await
                else {
                    return Err(lookup_error(Some(&kid), KeyLookup::UnknownKid));
                };
                match fresh.keys().select(Some(&kid), alg) {
                    Ok(key) => Ok((finish(parsed, alg, key, policy, now)?, Arc::clone(&fresh))),
                    Err(lookup) => Err(lookup_error(Some(&kid), lookup)),
                }
            }
            Err(lookup) => Err(lookup_error(kid, lookup)),
        }
    }

    /// The provider a token goes to: the only one, or the one whose issuer equals `iss`.
    /// With a single provider every token goes to it, so a token with a foreign `iss` is
    /// still checked signature-first and learns nothing about why it failed.
    fn route(&self, token: &UnverifiedToken<'_>) -> Result<&Provider, ValidationError> {
        if let [only] = &*self.providers {
            return Ok(only);
        }
        match &token.payload().registered().iss {
            None => Err(ValidationError::missing("iss")),
            Some(serde_json::Value::String(iss)) => self
                .provider(iss)
                .ok_or_else(|| ValidationError::UnknownIssuer { issuer: clip(iss) }),
            Some(_) => Err(ValidationError::invalid("iss", "not a string")),
        }
    }
}
