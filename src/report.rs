//! Owns the per-token report the CLI's `check` prints: the login decision with every pool's
//! outcome and reason, the session's principals and permissions, and diagnostics.
//!
//! Logic stays in the library; the CLI only prints [`CheckReport`] (JSON Lines or a table).

use serde::Serialize;

use crate::gate::{Gate, LoginError, LoginRequest};
use crate::pool::PoolOutcome;
use crate::time::UnixTime;

/// What one token made of the configuration. Serialises to the CLI's JSON contract, a record
/// of `"type": "token"`.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(tag = "type", rename = "token")]
#[non_exhaustive]
pub struct CheckReport {
    /// The token's position in the batch.
    pub index: usize,
    /// The 1-based line of the token file the token was read from (blank and comment lines
    /// counted); `None` for a token given otherwise.
    pub line: Option<usize>,
    /// Whether the login succeeded.
    pub authenticated: bool,
    /// Why not, when it did not.
    pub error: Option<ReportError>,
    /// The verified `iss` (null when the token did not verify).
    pub issuer: Option<String>,
    /// The verified `sub`.
    pub subject: Option<String>,
    /// The verified `exp`, RFC 3339.
    pub expires_at: Option<String>,
    /// Every configured pool, in file order.
    pub pools: Vec<PoolReport>,
    /// The session's principals.
    pub principals: Vec<String>,
    /// The session's grants after role and template expansion (JSON views).
    pub permissions: Vec<serde_json::Value>,
    /// Grants dropped at expansion and filters that errored.
    pub diagnostics: Vec<String>,
}

/// An error code and message.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ReportError {
    /// The stable code.
    pub code: String,
    /// A human message (never the token).
    pub message: String,
}

/// One pool's outcome for one token.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolReport {
    /// The pool's id.
    pub id: String,
    /// Whether its filter matched and its identity claim yielded a string.
    pub matched: bool,
    /// The identity claim's value, when matched.
    pub identity: Option<String>,
    /// `User:<id>` when the session took this pool.
    pub principal: Option<String>,
    /// Why it did not match, or why a matched pool was not taken.
    pub reason: Option<String>,
}

impl Gate {
    /// Runs one token through the same path a login takes and reports every pool's outcome.
    pub async fn check(
        &self,
        index: usize,
        token: &str,
        request: LoginRequest,
        now: UnixTime,
    ) -> CheckReport {
        let pools = self.config().pools();
        let mut report = CheckReport {
            index,
            line: None,
            authenticated: false,
            error: None,
            issuer: None,
            subject: None,
            expires_at: None,
            pools: Vec::new(),
            principals: Vec::new(),
            permissions: Vec::new(),
            diagnostics: Vec::new(),
        };
        let fail = |report: &mut CheckReport, e: &LoginError| {
            report.error = Some(ReportError {
                code: e.code().to_owned(),
                message: e.to_string(),
            });
        };
        // A login checks `logicalCluster` before it verifies the token: a report names the
        // error the login would, and still says what it found in the token.
        let cluster = crate::login::check_cluster(self.config().cluster(), &request);
        let login = match self.verified(token, now).await {
            Ok(login) => login,
            Err(e) => {
                match &cluster {
                    Err(c) => {
                        fail(&mut report, c);
                        report
                            .diagnostics
                            .push(format!("the token is rejected too ({}): {e}", e.code()));
                    }
                    Ok(()) => fail(&mut report, &e),
                }
                report.pools = pools
                    .pools()
                    .iter()
                    .map(|p| PoolReport {
                        id: p.id().to_owned(),
                        matched: false,
                        identity: None,
                        principal: None,
                        reason: Some(format!("token rejected: {}", e.code())),
                    })
                    .collect();
                return report;
            }
        };
        let token_v = &login.token;
        report.issuer = Some(token_v.issuer().to_owned());
        report.subject = token_v.subject().map(str::to_owned);
        report.expires_at = Some(token_v.expires_at().to_rfc3339());
        let provider = self
            .config()
            .providers()
            .iter()
            .position(|p| p.id == login.evaluation.provider_id())
            .unwrap_or(usize::MAX);
        let outcomes = pools.evaluate_all(provider, token_v);
        let named = request.pools.clone();
        let result = cluster.and_then(|()| self.session(login.clone(), request));
        let taken: &[String] = match &result {
            Ok(session) => session.pools(),
            Err(_) => &[],
        };
        for (pool, outcome) in pools.pools().iter().zip(&outcomes) {
            let principal = taken
                .iter()
                .any(|t| t == pool.id())
                .then(|| pool.principal());
            let (matched, identity, reason) = match outcome {
                PoolOutcome::Matched { identity, .. } => (
                    true,
                    Some(identity.clone()),
                    principal
                        .is_none()
                        .then(|| not_taken(pool.id(), named.as_deref(), result.as_ref().err())),
                ),
                PoolOutcome::NotMatched(why) => (false, None, Some(why.to_string())),
            };
            report.pools.push(PoolReport {
                id: pool.id().to_owned(),
                matched,
                identity,
                principal,
                reason,
            });
        }
        match result {
            Ok(session) => {
                report.authenticated = true;
                report.principals = session.principals().to_vec();
                report.permissions = session
                    .permissions()
                    .iter()
                    .filter_map(|g| serde_json::to_value(g.view()).ok())
                    .collect();
                report.diagnostics = session
                    .diagnostics()
                    .iter()
                    .map(ToString::to_string)
                    .collect();
            }
            Err(e) => fail(&mut report, &e),
        }
        report
    }
}

/// Why a pool that matched is not part of the session, as it happened: the login was refused
/// before pools were chosen (`wrong_cluster`, `unknown_pool`), `identityPoolId` left the pool
/// out, or the login was refused after the choice (`authzid_mismatch`).
fn not_taken(id: &str, named: Option<&[String]>, error: Option<&LoginError>) -> String {
    let left_out = named.is_some_and(|ids| !ids.iter().any(|n| n == id));
    match error {
        Some(e @ (LoginError::WrongCluster { .. } | LoginError::UnknownPool { .. })) => format!(
            "not taken: the login was refused ({}) before pools were selected",
            e.code()
        ),
        _ if left_out => "not selected by identityPoolId".to_owned(),
        Some(e) => format!("selected, but the login was refused ({}): {e}", e.code()),
        // Every matched pool is taken when the login succeeds without identityPoolId.
        None => "matched, not taken".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_matched_pool_not_taken_says_what_happened() {
        let wrong_cluster = LoginError::WrongCluster {
            expected: "lkc-demo".into(),
            found: Some("lkc-other".into()),
        };
        let unknown = LoginError::UnknownPool {
            id: "payments".into(),
        };
        let orders = ["orders".to_owned()];
        type Case<'a> = (Option<&'a [String]>, Option<&'a LoginError>, &'a str);
        let cases: [Case<'_>; 6] = [
            (
                None,
                Some(&wrong_cluster),
                "not taken: the login was refused (wrong_cluster) before pools were selected",
            ),
            (
                Some(&orders),
                Some(&wrong_cluster),
                "not taken: the login was refused (wrong_cluster) before pools were selected",
            ),
            (
                Some(&orders),
                Some(&unknown),
                "not taken: the login was refused (unknown_pool) before pools were selected",
            ),
            (Some(&orders), None, "not selected by identityPoolId"),
            (
                Some(&orders),
                Some(&LoginError::NoPoolMatched),
                "not selected by identityPoolId",
            ),
            (
                None,
                Some(&LoginError::AuthzidMismatch),
                "selected, but the login was refused (authzid_mismatch): the authorization \
                 identity is not the token's identity",
            ),
        ];
        for (named, error, want) in cases {
            assert_eq!(
                not_taken("analytics", named, error),
                want,
                "{named:?} {error:?}"
            );
        }
        // Named, and still refused after the choice.
        let analytics = ["analytics".to_owned()];
        assert!(
            not_taken(
                "analytics",
                Some(&analytics),
                Some(&LoginError::AuthzidMismatch)
            )
            .starts_with("selected, but the login was refused (authzid_mismatch)")
        );
    }
}
