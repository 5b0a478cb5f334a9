//! Owns identity pools: their compiled filters, identity claims and grant templates, and the
//! evaluation of every pool of a provider against one token's verified claims.
//!
//! Pure: takes a [`VerifiedToken`] (never unverified claims), returns outcomes. Pool selection
//! by SASL extensions happens in [`login`](crate::login).

use std::fmt;

use serde_json::{Map, Value};

use crate::authz::{DroppedGrant, Grant, GrantOrigin, GrantTemplate};
use crate::filter::{ClaimExpr, ClaimsContext, Filter, FilterIndex, FilterOutcome};
use crate::verify::VerifiedToken;

/// One identity pool, compiled from configuration.
#[derive(Clone, Debug)]
pub struct Pool {
    pub(crate) id: String,
    pub(crate) provider: usize,
    pub(crate) provider_id: String,
    pub(crate) identity: ClaimExpr,
    pub(crate) filter: Filter,
    pub(crate) grants: Vec<GrantTemplate>,
}

impl Pool {
    /// The pool's id; its principal is `User:<id>`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The id of the provider whose tokens this pool considers.
    pub fn provider_id(&self) -> &str {
        &self.provider_id
    }

    /// The identity claim expression.
    pub fn identity_claim(&self) -> &ClaimExpr {
        &self.identity
    }

    /// The filter.
    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    /// The grant templates, in configuration order.
    pub fn grants(&self) -> &[GrantTemplate] {
        &self.grants
    }

    /// The principal a matched session gets from this pool.
    pub fn principal(&self) -> String {
        format!("User:{}", self.id)
    }

    /// Evaluates this pool for one verified token: filter, then identity, then grant
    /// expansion. (To evaluate several pools, [`PoolSet`] converts the claims once.)
    pub fn evaluate(&self, token: &VerifiedToken) -> PoolOutcome {
        let claims = token.claims();
        self.evaluate_in(claims, &ClaimsContext::new(claims))
    }

    /// [`Pool::evaluate`] with the claims already converted for the filters: `claims` and
    /// `ctx` are those of one verified token.
    fn evaluate_in(&self, claims: &Map<String, Value>, ctx: &ClaimsContext) -> PoolOutcome {
        match self.filter.evaluate(ctx) {
            FilterOutcome::Matched => {}
            FilterOutcome::NotMatched => return PoolOutcome::NotMatched(NoMatch::FilterFalse),
            FilterOutcome::Error(e) => return PoolOutcome::NotMatched(NoMatch::FilterError(e)),
        }
        let identity = match self.identity.evaluate(ctx) {
            Ok(identity) => identity,
            Err(e) => return PoolOutcome::NotMatched(NoMatch::NoIdentity(e.to_string())),
        };
        let mut grants = Vec::with_capacity(self.grants.len());
        let mut dropped = Vec::new();
        for (index, template) in self.grants.iter().enumerate() {
            match template.expand(claims, GrantOrigin::new(self.id.clone(), index)) {
                Ok(grant) => grants.push(grant),
                Err(drop) => dropped.push(drop),
            }
        }
        PoolOutcome::Matched {
            identity,
            grants,
            dropped,
        }
    }
}

/// What one pool made of one token.
#[derive(Clone, Debug)]
pub enum PoolOutcome {
    /// The filter matched and the identity claim yielded a string.
    Matched {
        /// The identity claim's value.
        identity: String,
        /// The pool's grants, expanded for this token.
        grants: Vec<Grant>,
        /// Grants dropped at expansion (a template read a missing or unsafe claim).
        dropped: Vec<DroppedGrant>,
    },
    /// The pool does not accept this token.
    NotMatched(NoMatch),
}

impl PoolOutcome {
    /// Whether the pool matched.
    pub fn is_match(&self) -> bool {
        matches!(self, PoolOutcome::Matched { .. })
    }
}

/// Why a pool did not match.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoMatch {
    /// The filter evaluated to false.
    FilterFalse,
    /// The filter could not be evaluated (a missing claim, a type mismatch): never a match.
    FilterError(String),
    /// The identity claim is missing or not a string.
    NoIdentity(String),
    /// The pool belongs to another provider.
    OtherProvider,
}

impl fmt::Display for NoMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoMatch::FilterFalse => f.write_str("filter is false"),
            NoMatch::FilterError(e) => write!(f, "filter error: {e}"),
            NoMatch::NoIdentity(e) => write!(f, "no identity: {e}"),
            NoMatch::OtherProvider => f.write_str("pool of another provider"),
        }
    }
}

/// All pools, indexed per provider so that a token is checked only against the pools whose
/// filters could match it.
#[derive(Clone, Debug, Default)]
pub struct PoolSet {
    pools: Vec<Pool>,
    /// One index per provider, over the positions of that provider's pools.
    indexes: Vec<FilterIndex>,
    /// The id of each provider that has pools, by position.
    provider_ids: Vec<Option<String>>,
    /// Per provider, the top-level claims its pools' filters and identity expressions read
    /// (`None`: all), so that a token's CEL context converts only those.
    reads: Vec<Option<Vec<String>>>,
}

impl PoolSet {
    pub(crate) fn new(pools: Vec<Pool>, providers: usize) -> PoolSet {
        let indexes = (0..providers)
            .map(|p| {
                FilterIndex::build(
                    pools
                        .iter()
                        .enumerate()
                        .filter(|(_, pool)| pool.provider == p)
                        .map(|(i, pool)| (i, &pool.filter)),
                )
            })
            .collect();
        let mut provider_ids = vec![None; providers];
        for pool in &pools {
            if let Some(slot) = provider_ids.get_mut(pool.provider) {
                slot.get_or_insert_with(|| pool.provider_id.clone());
            }
        }
        let reads = (0..providers)
            .map(|p| {
                let mut names = Vec::new();
                for pool in pools.iter().filter(|pool| pool.provider == p) {
                    names.extend_from_slice(pool.filter.claims_read()?);
                    names.extend_from_slice(pool.identity.claims_read()?);
                }
                names.sort_unstable();
                names.dedup();
                Some(names)
            })
            .collect();
        PoolSet {
            pools,
            indexes,
            provider_ids,
            reads,
        }
    }

    /// Every pool, in configuration order.
    pub fn pools(&self) -> &[Pool] {
        &self.pools
    }

    /// The position of the pool with this id.
    pub fn position(&self, id: &str) -> Option<usize> {
        self.pools.iter().position(|p| p.id == id)
    }

    /// The position (in the configuration) of the provider with this id, if it has pools.
    pub fn provider_position(&self, provider_id: &str) -> Option<usize> {
        self.provider_ids
            .iter()
            .position(|id| id.as_deref() == Some(provider_id))
    }

    /// Evaluates the pools of `provider` (its position in the configuration) that may match
    /// this token's claims (the index rules the others out without evaluating them). Returns
    /// `(position, outcome)` in pool order.
    pub fn evaluate_candidates(
        &self,
        provider: usize,
        token: &VerifiedToken,
    ) -> Vec<(usize, PoolOutcome)> {
        let Some(index) = self.indexes.get(provider) else {
            return Vec::new();
        };
        let claims = token.claims();
        let candidates = index.candidates(claims);
        if candidates.is_empty() {
            return Vec::new();
        }
        let reads = self.reads.get(provider).and_then(Option::as_deref);
        let ctx = ClaimsContext::only(claims, reads);
        candidates
            .into_iter()
            .filter_map(|i| Some((i, self.pools.get(i)?.evaluate_in(claims, &ctx))))
            .collect()
    }

    /// Evaluates every pool, whatever the index says; for diagnostics (`check`, `explain`).
    pub fn evaluate_all(&self, provider: usize, token: &VerifiedToken) -> Vec<PoolOutcome> {
        let claims = token.claims();
        let ctx = ClaimsContext::new(claims);
        self.pools
            .iter()
            .map(|pool| {
                if pool.provider == provider {
                    pool.evaluate_in(claims, &ctx)
                } else {
                    PoolOutcome::NotMatched(NoMatch::OtherProvider)
                }
            })
            .collect()
    }
}
