//! Owns the per-token report the CLI's `check` prints: the login decision with every pool's
//! outcome and reason, the session's principals and permissions, and diagnostics.
//!
//! Logic stays in the library; the CLI only prints [`CheckReport`] (JSON Lines or a table).

use serde::Serialize;

use crate::gate::{Gate, LoginError, LoginRequest};
use crate::pool::PoolOutcome;
use crate::time::UnixTime;

/// What one token made of the configuration. Serialises to the CLI's JSON contract.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[non_exhaustive]
pub struct CheckReport {
    /// The token's position in the batch.
    pub index: usize,
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
        let login = match self.verified(token, now).await {
            Ok(login) => login,
            Err(e) => {
                fail(&mut report, &e);
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
        let result = crate::login::check_cluster(self.config().cluster(), &request)
            .and_then(|()| self.session(login.clone(), request));
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
                        .then(|| "not selected by identityPoolId".to_owned()),
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
