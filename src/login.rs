//! Owns the login decision: from a [`VerifiedToken`], the id of the provider that verified it
//! and what the login asks for ([`LoginRequest`]: `logicalCluster`, `identityPoolId`, the
//! authorization identity), the session's pools, identity, grants and diagnostics
//! ([`Selection`]), or why the login is refused ([`LoginError`]).
//!
//! Pure and synchronous: no I/O, no clock, no cache of its own, and never unverified claims.
//! [`decide`] is the whole step in one call. The async [`Gate`](crate::gate::Gate) runs the
//! same parts around its token cache: [`check_cluster`] before verifying, one
//! [`PoolEvaluation`] per verified token (cached with it), and [`PoolEvaluation::select`] per
//! login.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use crate::authz::{Authorization, DropReason, Operation, Permissions, Resource};
use crate::config::ClusterConfig;
use crate::error::{ValidationError, clip};
use crate::pool::{NoMatch, PoolOutcome, PoolSet};
use crate::sasl::SaslError;
use crate::verify::VerifiedToken;

/// Why a login was refused. [`LoginError::code`] is the stable reason code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoginError {
    /// The SASL client message is malformed (`malformed_sasl`).
    #[error(transparent)]
    Sasl(#[from] SaslError),
    /// The token did not validate (its own code: `expired`, `bad_signature`, ...).
    #[error(transparent)]
    Token(#[from] ValidationError),
    /// `logicalCluster` names another cluster, or is missing while required (`wrong_cluster`).
    #[error("logical cluster {} is not this cluster `{expected}`", found.as_deref().map_or("(absent)".to_owned(), |f| format!("`{}`", clip(f))))]
    WrongCluster {
        /// This cluster's id.
        expected: String,
        /// The id the client sent, if any.
        found: Option<String>,
    },
    /// `identityPoolId` names a pool that does not exist or belongs to another provider
    /// (`unknown_pool`).
    #[error("identity pool `{id}` is not a pool of this token's provider")]
    UnknownPool {
        /// The pool id as sent (clipped).
        id: String,
    },
    /// No pool accepts the token (`no_pool_matched`).
    #[error("no identity pool matched the token")]
    NoPoolMatched,
    /// The SASL authorization identity differs from the token's identity (`authzid_mismatch`).
    #[error("the authorization identity is not the token's identity")]
    AuthzidMismatch,
}

impl LoginError {
    /// The stable snake_case reason code.
    pub fn code(&self) -> &'static str {
        match self {
            LoginError::Sasl(e) => e.code(),
            LoginError::Token(e) => e.code().as_str(),
            LoginError::WrongCluster { .. } => "wrong_cluster",
            LoginError::UnknownPool { .. } => "unknown_pool",
            LoginError::NoPoolMatched => "no_pool_matched",
            LoginError::AuthzidMismatch => "authzid_mismatch",
        }
    }
}

/// What a login asks for besides the token: the SASL extensions and authorization identity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoginRequest {
    /// `identityPoolId`: the pools to consider, or `None` for automatic pool mapping.
    pub pools: Option<Vec<String>>,
    /// `logicalCluster`.
    pub logical_cluster: Option<String>,
    /// The GS2 authorization identity.
    pub authzid: Option<String>,
    /// Every extension, as sent.
    pub extensions: Vec<(String, String)>,
}

/// Something worth reporting about a login that did not fail it: a grant left out of the
/// session or a filter that could not be evaluated. `Display` gives the message the CLI and
/// logs show.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Diagnostic {
    /// A grant of a matched pool was dropped at expansion (a template read a missing or
    /// unsafe claim); the pool's other grants stand.
    GrantDropped {
        /// The pool's id.
        pool: String,
        /// The grant's index in the pool's `grants` list, from 0 (messages count from 1).
        grant: usize,
        /// Why.
        reason: DropReason,
    },
    /// A pool's filter could not be evaluated (a missing claim, a type mismatch), so the pool
    /// did not match.
    FilterError {
        /// The pool's id.
        pool: String,
        /// The evaluation error.
        error: String,
    },
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Diagnostic::GrantDropped {
                pool,
                grant,
                reason,
            } => write!(f, "pool `{pool}`: grant {} dropped: {reason}", grant + 1),
            Diagnostic::FilterError { pool, error } => {
                write!(f, "pool `{pool}`: filter error: {error}")
            }
        }
    }
}

/// The pools a session took, with the identity, principals, grants and diagnostics that
/// follow from them.
#[derive(Debug)]
pub struct Selection {
    pool_ids: Vec<String>,
    principals: Vec<String>,
    identity: String,
    permissions: Permissions,
    diagnostics: Vec<Diagnostic>,
}

impl Selection {
    /// Builds the selection of the `chosen` matched pools (positions), with the diagnostics of
    /// every evaluated pool; `None` when no chosen pool matched.
    fn build(
        pools: &PoolSet,
        outcomes: &[(usize, PoolOutcome)],
        chosen: &[usize],
    ) -> Option<Selection> {
        let mut pool_ids = Vec::new();
        let mut principals = Vec::new();
        let mut identity = None;
        let mut grants = Vec::new();
        let mut diagnostics = Vec::new();
        for (position, outcome) in outcomes {
            let Some(pool) = pools.pools().get(*position) else {
                continue;
            };
            match outcome {
                PoolOutcome::Matched {
                    identity: id,
                    grants: g,
                    dropped,
                } => {
                    diagnostics.extend(dropped.iter().map(|d| Diagnostic::GrantDropped {
                        pool: pool.id().to_owned(),
                        grant: d.origin.index,
                        reason: d.reason.clone(),
                    }));
                    if chosen.contains(position) {
                        pool_ids.push(pool.id().to_owned());
                        principals.push(pool.principal());
                        identity.get_or_insert_with(|| id.clone());
                        grants.extend(g.iter().cloned());
                    }
                }
                PoolOutcome::NotMatched(NoMatch::FilterError(e)) => {
                    diagnostics.push(Diagnostic::FilterError {
                        pool: pool.id().to_owned(),
                        error: e.clone(),
                    });
                }
                PoolOutcome::NotMatched(_) => {}
            }
        }
        Some(Selection {
            pool_ids,
            principals,
            identity: identity?,
            permissions: Permissions::new(grants),
            diagnostics,
        })
    }

    /// The ids of the taken pools, in pool order.
    pub fn pools(&self) -> &[String] {
        &self.pool_ids
    }

    /// The principals, `User:<pool-id>` for each taken pool, in pool order.
    pub fn principals(&self) -> &[String] {
        &self.principals
    }

    /// The identity: the identity claim's value in the first taken pool.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The union of the taken pools' grants.
    pub fn permissions(&self) -> &Permissions {
        &self.permissions
    }

    /// Grants dropped at expansion and filters that errored, for every evaluated pool (taken
    /// or not); they do not fail the login.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }

    /// May this selection do `op` on `resource`? The decision comes with the grant that
    /// decided.
    pub fn authorize(&self, op: Operation, resource: &Resource<'_>) -> Authorization<'_> {
        self.permissions.authorize(op, resource)
    }
}

/// How many `identityPoolId` selections one evaluation remembers (clients of one token name
/// the same pools: a handful at most).
const MAX_NAMED_SELECTIONS: usize = 4;

/// What one verified token made of the pools of its provider, independent of any login's
/// extensions: what a cache keeps per token. Ask it for each login's [`Selection`].
#[derive(Debug)]
pub struct PoolEvaluation {
    provider_id: String,
    /// Candidate pools and their outcomes, in pool order.
    outcomes: Vec<(usize, PoolOutcome)>,
    /// Positions of the matched pools, ascending.
    matched: Vec<usize>,
    /// The selection without `identityPoolId`: every matched pool. `None` when none matched.
    auto: Option<Arc<Selection>>,
    /// Selections built for `identityPoolId` subsets, so that a repeated login does not
    /// rebuild them.
    named: Mutex<Vec<(Vec<usize>, Arc<Selection>)>>,
}

impl PoolEvaluation {
    /// Evaluates `token`, verified by provider `provider_id`, against that provider's pools
    /// (those the filter index does not rule out).
    pub fn new(pools: &PoolSet, provider_id: &str, token: &VerifiedToken) -> PoolEvaluation {
        let outcomes = match pools.provider_position(provider_id) {
            Some(provider) => pools.evaluate_candidates(provider, token),
            None => Vec::new(),
        };
        let matched: Vec<usize> = outcomes
            .iter()
            .filter(|(_, o)| o.is_match())
            .map(|(p, _)| *p)
            .collect();
        let auto = Selection::build(pools, &outcomes, &matched).map(Arc::new);
        PoolEvaluation {
            provider_id: provider_id.to_owned(),
            outcomes,
            matched,
            auto,
            named: Mutex::new(Vec::new()),
        }
    }

    /// The id of the provider that verified the token.
    pub fn provider_id(&self) -> &str {
        &self.provider_id
    }

    /// The evaluated pools (positions in the pool set) and their outcomes, in pool order.
    pub fn outcomes(&self) -> &[(usize, PoolOutcome)] {
        &self.outcomes
    }

    /// The selection for one login: every matched pool, or those `identityPoolId` names;
    /// then the authorization identity, if any, must be the selection's identity. `pools`
    /// must be the pool set this evaluation was made with.
    ///
    /// # Errors
    /// [`LoginError::UnknownPool`] for a named pool that does not exist or belongs to another
    /// provider, [`LoginError::NoPoolMatched`], [`LoginError::AuthzidMismatch`].
    pub fn select(
        &self,
        pools: &PoolSet,
        request: &LoginRequest,
    ) -> Result<Arc<Selection>, LoginError> {
        let selection = match &request.pools {
            None => self.auto.clone().ok_or(LoginError::NoPoolMatched)?,
            Some(ids) => {
                let mut chosen = Vec::with_capacity(ids.len());
                for id in ids {
                    let position = pools
                        .position(id)
                        .filter(|p| {
                            pools
                                .pools()
                                .get(*p)
                                .is_some_and(|pool| pool.provider_id() == self.provider_id)
                        })
                        .ok_or_else(|| LoginError::UnknownPool { id: clip(id) })?;
                    if self.matched.binary_search(&position).is_ok() {
                        chosen.push(position);
                    }
                }
                chosen.sort_unstable();
                chosen.dedup();
                self.selection_of(pools, chosen)?
            }
        };
        if let Some(authzid) = &request.authzid
            && *authzid != selection.identity
        {
            return Err(LoginError::AuthzidMismatch);
        }
        Ok(selection)
    }

    /// The selection of these matched pools (ascending positions): `auto` when they are all
    /// the matched pools, else a remembered or new one.
    fn selection_of(
        &self,
        pools: &PoolSet,
        chosen: Vec<usize>,
    ) -> Result<Arc<Selection>, LoginError> {
        if chosen.is_empty() {
            return Err(LoginError::NoPoolMatched);
        }
        if chosen == self.matched
            && let Some(auto) = &self.auto
        {
            return Ok(Arc::clone(auto));
        }
        let mut named = self.named.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, s)) = named.iter().find(|(c, _)| *c == chosen) {
            return Ok(Arc::clone(s));
        }
        let selection = Arc::new(
            Selection::build(pools, &self.outcomes, &chosen).ok_or(LoginError::NoPoolMatched)?,
        );
        if named.len() < MAX_NAMED_SELECTIONS {
            named.push((chosen, Arc::clone(&selection)));
        }
        Ok(selection)
    }
}

/// The `logicalCluster` rule of `[cluster]`: with an id configured, a login that names a
/// cluster must name this one, and one that names none passes unless
/// `require_logical_cluster` is set.
///
/// # Errors
/// [`LoginError::WrongCluster`].
pub fn check_cluster(cluster: &ClusterConfig, request: &LoginRequest) -> Result<(), LoginError> {
    if let Some(expected) = &cluster.id {
        match &request.logical_cluster {
            Some(found) if found == expected => {}
            None if !cluster.require_logical_cluster => {}
            found => {
                return Err(LoginError::WrongCluster {
                    expected: expected.clone(),
                    found: found.clone(),
                });
            }
        }
    }
    Ok(())
}

/// Decides one login of a token verified by provider `provider_id`: the logical-cluster
/// rule, pool evaluation, the `identityPoolId` selection and the authorization identity.
///
/// # Errors
/// The first rule that fails, as a [`LoginError`] (never [`LoginError::Sasl`] or
/// [`LoginError::Token`]: the message is parsed and the token verified before).
pub fn decide(
    token: &VerifiedToken,
    provider_id: &str,
    request: &LoginRequest,
    pools: &PoolSet,
    cluster: &ClusterConfig,
) -> Result<Arc<Selection>, LoginError> {
    check_cluster(cluster, request)?;
    PoolEvaluation::new(pools, provider_id, token).select(pools, request)
}

#[cfg(test)]
mod tests {
    //! Every rule of the login step with plain `#[test]`s: tokens verified by [`crate::verify`]
    //! against a fixed Ed25519 key (RFC 8037's example key), no issuer, no runtime.

    use std::path::Path;

    use aws_lc_rs::signature::Ed25519KeyPair;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use serde_json::{Value, json};

    use super::*;
    use crate::config::Config;
    use crate::keys::KeySet;
    use crate::policy::Policy;
    use crate::time::UnixTime;

    const NOW: u64 = 1_800_000_000;
    const ISSUER: &str = "https://idp.example.com";
    /// RFC 8037 appendix A.1: the private seed `d` and public `x` of an Ed25519 key.
    const ED_D: &str = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
    const ED_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

    const CONFIG: &str = r#"
[cluster]
id = "lkc-1"

[[providers]]
id = "op-a"
issuer = "https://idp.example.com"
audiences = ["kafka"]
jwks_file = "a.json"

[[providers]]
id = "op-b"
issuer = "https://other.example.com"
audiences = ["kafka"]
jwks_file = "b.json"

[[pools]]
id = "analytics"
provider = "op-a"
filter = '"analytics" in claims.groups'

[[pools.grants]]
role = "DeveloperRead"
resource = "Topic:analytics-*"

[[pools.grants]]
allow = ["Write"]
resource = "Topic:tenant-{claims.tenant}-*"

[[pools]]
id = "ops"
provider = "op-a"
identity_claim = "claims.client_id"
filter = '"ops" in claims.groups'

[[pools.grants]]
allow = ["All"]
resource = "Topic:*"

[[pools]]
id = "senior"
provider = "op-a"
filter = 'claims.level > 3'

[[pools]]
id = "b-all"
provider = "op-b"
"#;

    fn config(cluster: &str) -> Config {
        let text = CONFIG.replace("[cluster]\nid = \"lkc-1\"\n", cluster);
        Config::parse(&text, "login.toml", Path::new(".")).unwrap()
    }

    /// A token with these claims (besides `iss`, `aud`, `sub`, `exp`), verified for real.
    fn token(claims: Value) -> VerifiedToken {
        let mut payload = json!({"iss": ISSUER, "aud": "kafka", "sub": "alice", "exp": NOW + 600});
        for (k, v) in claims.as_object().unwrap() {
            payload[k] = v.clone();
        }
        let header = json!({"alg": "EdDSA", "kid": "ed1"});
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(payload.to_string())
        );
        let key = Ed25519KeyPair::from_seed_unchecked(&B64.decode(ED_D).unwrap()).unwrap();
        let jws = format!("{input}.{}", B64.encode(key.sign(input.as_bytes())));
        let keys = KeySet::from_jwks(
            json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "ed1", "x": ED_X}]})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        let policy = Policy::builder(ISSUER).audience("kafka").build().unwrap();
        crate::verify(&jws, &keys, &policy, UnixTime::from_secs(NOW)).unwrap()
    }

    fn request(pools: Option<&str>, cluster: Option<&str>, authzid: Option<&str>) -> LoginRequest {
        LoginRequest {
            pools: pools.map(|p| p.split(',').map(str::to_owned).collect()),
            logical_cluster: cluster.map(str::to_owned),
            authzid: authzid.map(str::to_owned),
            extensions: Vec::new(),
        }
    }

    /// What a decision came to: the principals and identity, or the reason code.
    type Outcome = Result<(Vec<String>, String), String>;

    fn outcome(result: Result<Arc<Selection>, LoginError>) -> Outcome {
        result
            .map(|s| (s.principals().to_vec(), s.identity().to_owned()))
            .map_err(|e| e.code().to_owned())
    }

    #[test]
    fn each_rule_of_a_login() {
        let analytics = json!({"groups": ["analytics"], "tenant": "acme", "level": 1});
        let both = json!({"groups": ["analytics", "ops"], "client_id": "bot", "level": 1});
        let nothing = json!({"groups": []});
        let ok = |principals: &[&str], identity: &str| {
            Ok((
                principals.iter().map(|p| (*p).to_owned()).collect(),
                identity.to_owned(),
            ))
        };
        let err = |code: &str| Err(code.to_owned());
        let optional = "[cluster]\nid = \"lkc-1\"\n";
        let required = "[cluster]\nid = \"lkc-1\"\nrequire_logical_cluster = true\n";
        let none = "";
        #[rustfmt::skip]
        let cases: Vec<(&str, &str, &Value, &str, LoginRequest, Outcome)> = vec![
            ("auto mapping", optional, &analytics, "op-a", request(None, Some("lkc-1"), None), ok(&["User:analytics"], "alice")),
            ("every matched pool, identity of the first", optional, &both, "op-a", request(None, Some("lkc-1"), None), ok(&["User:analytics", "User:ops"], "alice")),
            ("a named subset", optional, &both, "op-a", request(Some("ops"), Some("lkc-1"), None), ok(&["User:ops"], "bot")),
            ("named twice, in any order", optional, &both, "op-a", request(Some("ops,analytics,ops"), None, None), ok(&["User:analytics", "User:ops"], "alice")),
            ("a named pool that did not match", optional, &analytics, "op-a", request(Some("ops"), Some("lkc-1"), None), err("no_pool_matched")),
            ("unknown pool", optional, &analytics, "op-a", request(Some("nope"), Some("lkc-1"), None), err("unknown_pool")),
            ("unknown pool before a match", optional, &both, "op-a", request(Some("ops,nope"), None, None), err("unknown_pool")),
            ("pool of another provider", optional, &analytics, "op-a", request(Some("b-all"), Some("lkc-1"), None), err("unknown_pool")),
            ("the other provider's pools", optional, &analytics, "op-b", request(None, None, None), ok(&["User:b-all"], "alice")),
            ("a provider without pools", optional, &analytics, "op-c", request(None, None, None), err("no_pool_matched")),
            ("no match", optional, &nothing, "op-a", request(None, Some("lkc-1"), None), err("no_pool_matched")),
            ("wrong cluster", optional, &analytics, "op-a", request(None, Some("lkc-2"), None), err("wrong_cluster")),
            ("wrong cluster before unknown pool", optional, &analytics, "op-a", request(Some("nope"), Some("lkc-2"), None), err("wrong_cluster")),
            ("absent cluster, optional", optional, &analytics, "op-a", request(None, None, None), ok(&["User:analytics"], "alice")),
            ("absent cluster, required", required, &analytics, "op-a", request(None, None, None), err("wrong_cluster")),
            ("present cluster, required", required, &analytics, "op-a", request(None, Some("lkc-1"), None), ok(&["User:analytics"], "alice")),
            ("no cluster configured", none, &analytics, "op-a", request(None, Some("anything"), None), ok(&["User:analytics"], "alice")),
            ("authzid of the identity", optional, &analytics, "op-a", request(None, None, Some("alice")), ok(&["User:analytics"], "alice")),
            ("authzid mismatch", optional, &analytics, "op-a", request(None, None, Some("mallory")), err("authzid_mismatch")),
            ("authzid of the named pool's identity", optional, &both, "op-a", request(Some("ops"), None, Some("bot")), ok(&["User:ops"], "bot")),
            ("authzid of another pool's identity", optional, &both, "op-a", request(None, None, Some("bot")), err("authzid_mismatch")),
        ];
        let mut checked = 0;
        for (name, cluster, claims, provider, request, expected) in cases {
            let config = config(cluster);
            let token = token(claims.clone());
            let got = decide(&token, provider, &request, config.pools(), config.cluster());
            assert_eq!(outcome(got), expected, "{name}");
            checked += 1;
        }
        assert_eq!(checked, 21);
    }

    #[test]
    fn the_error_names_what_was_wrong() {
        let config = config("[cluster]\nid = \"lkc-1\"\nrequire_logical_cluster = true\n");
        let token = token(json!({"groups": ["analytics"]}));
        let decide = |r: LoginRequest| {
            decide(&token, "op-a", &r, config.pools(), config.cluster()).unwrap_err()
        };
        assert_eq!(
            decide(request(None, Some("lkc-2"), None)),
            LoginError::WrongCluster {
                expected: "lkc-1".into(),
                found: Some("lkc-2".into())
            }
        );
        assert_eq!(
            decide(request(None, None, None)).to_string(),
            "logical cluster (absent) is not this cluster `lkc-1`"
        );
        assert_eq!(
            decide(request(Some("b-all"), Some("lkc-1"), None)),
            LoginError::UnknownPool { id: "b-all".into() }
        );
    }

    #[test]
    fn diagnostics_are_typed_and_read_as_before() {
        let config = config("");
        // No `tenant`: the templated grant is dropped. No `level`: `senior`'s filter errors.
        let token = token(json!({"groups": ["analytics"]}));
        let s = decide(
            &token,
            "op-a",
            &request(None, None, None),
            config.pools(),
            config.cluster(),
        )
        .unwrap();
        assert_eq!(s.permissions().len(), 1);
        let diagnostics = s.diagnostics();
        assert_eq!(diagnostics.len(), 2, "{diagnostics:?}");
        assert_eq!(
            diagnostics[0],
            Diagnostic::GrantDropped {
                pool: "analytics".into(),
                grant: 1,
                reason: DropReason::MissingClaim {
                    path: "tenant".into()
                },
            }
        );
        assert_eq!(
            diagnostics[0].to_string(),
            "pool `analytics`: grant 2 dropped: claim `tenant` is missing"
        );
        let Diagnostic::FilterError { pool, error } = &diagnostics[1] else {
            panic!("{diagnostics:?}");
        };
        assert_eq!(pool, "senior");
        assert_eq!(
            diagnostics[1].to_string(),
            format!("pool `senior`: filter error: {error}")
        );
        // Diagnostics of pools evaluated but not taken are kept too.
        let s = decide(
            &token,
            "op-a",
            &request(Some("analytics"), None, None),
            config.pools(),
            config.cluster(),
        )
        .unwrap();
        assert_eq!(s.diagnostics().len(), 2);
        // A clean login has none.
        let clean = self::token(json!({"groups": ["analytics"], "tenant": "acme", "level": 5}));
        let s = decide(
            &clean,
            "op-a",
            &request(None, None, None),
            config.pools(),
            config.cluster(),
        )
        .unwrap();
        assert_eq!(s.principals(), ["User:analytics", "User:senior"]);
        assert!(s.diagnostics().is_empty(), "{:?}", s.diagnostics());
    }

    #[test]
    fn an_evaluation_serves_every_login_of_its_token() {
        let config = config("");
        let pools = config.pools();
        let token = token(json!({"groups": ["analytics", "ops"], "client_id": "bot"}));
        let evaluation = PoolEvaluation::new(pools, "op-a", &token);
        assert_eq!(evaluation.provider_id(), "op-a");
        // `senior` errored (no `level`), the two others matched; `b-all` is another provider's.
        assert_eq!(evaluation.outcomes().len(), 3);
        let auto = evaluation
            .select(pools, &request(None, None, None))
            .unwrap();
        let again = evaluation
            .select(pools, &request(Some("analytics,ops"), None, None))
            .unwrap();
        assert!(Arc::ptr_eq(&auto, &again), "naming every match is auto");
        let ops = evaluation
            .select(pools, &request(Some("ops"), None, None))
            .unwrap();
        let ops_again = evaluation
            .select(pools, &request(Some("ops"), None, Some("bot")))
            .unwrap();
        assert!(
            Arc::ptr_eq(&ops, &ops_again),
            "a named subset is remembered"
        );
        assert_eq!(
            ops.authorize(Operation::Read, &Resource::topic("anything"))
                .decision,
            crate::authz::Decision::Allow
        );
        assert_eq!(
            evaluation
                .select(pools, &request(Some("ops"), None, Some("alice")))
                .unwrap_err(),
            LoginError::AuthzidMismatch
        );
    }
}
