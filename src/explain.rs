//! Owns the explain report: why one token was or was not accepted. Pool by pool: the filter's
//! top-level `&&`/`||` operands with their values, the claims the filter and the identity
//! claim read with their values, the identity and the decision. For a token that fails, the
//! rule that failed with what was expected against what the token has.
//!
//! Pools are evaluated over verified claims only. The failed-rule view of a token that did not
//! verify reads its header and claims without verification (marked `unverified`); it is a
//! debugging aid and decides nothing. The decision itself is [`Gate::check`]'s.

use serde::Serialize;
use serde_json::{Value, json};

use cel::common::ast::{EntryExpr, Expr, IdedExpr, operators};

use crate::error::ValidationError;
use crate::filter::{ClaimPath, ClaimsContext, FilterOutcome};
use crate::gate::{Gate, LoginError, LoginRequest};
use crate::policy::{Audiences, Policy};
use crate::report::ReportError;
use crate::time::UnixTime;
use crate::token::{DEFAULT_MAX_TOKEN_SIZE, UnverifiedToken};

/// Why one token was or was not accepted. Serialises to `poolgate explain --format json`, a
/// record of `"type": "explanation"`.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(tag = "type", rename = "explanation")]
#[non_exhaustive]
pub struct ExplainReport {
    /// Whether the login succeeded.
    pub authenticated: bool,
    /// Why not, when it did not (the same code as `check`).
    pub error: Option<ReportError>,
    /// The rule that failed, with expected against actual.
    pub failed_rule: Option<FailedRule>,
    /// The provider the token was routed to (by its unverified `iss`), if any.
    pub provider: Option<String>,
    /// The header's `alg`, `kid` and `typ`, as the token states them (unverified).
    pub header: Value,
    /// The verified `iss`.
    pub issuer: Option<String>,
    /// The verified `sub`.
    pub subject: Option<String>,
    /// The verified `exp`, RFC 3339.
    pub expires_at: Option<String>,
    /// The time the token was judged at, RFC 3339.
    pub now: String,
    /// Each pool explained (those named by `identityPoolId` when it is given).
    pub pools: Vec<PoolExplain>,
    /// The session's principals.
    pub principals: Vec<String>,
    /// The session's grants (JSON views).
    pub permissions: Vec<Value>,
    /// Grants dropped at expansion and filters that errored.
    pub diagnostics: Vec<String>,
}

/// A rule a token failed.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[non_exhaustive]
pub struct FailedRule {
    /// What was checked: `aud`, `exp`, `iss`, `alg`, `kid`, `signature`, `logicalCluster`, ...
    pub rule: String,
    /// What the configuration expects.
    pub expected: Value,
    /// What the token (or the login) has.
    pub actual: Value,
    /// The error message.
    pub message: String,
    /// Whether `actual` was read from a token that did not verify.
    pub unverified: bool,
}

/// One pool's view of one token.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[non_exhaustive]
pub struct PoolExplain {
    /// The pool's id.
    pub id: String,
    /// The pool's provider.
    pub provider: String,
    /// Whether the pool was evaluated (false: the token did not verify, or it belongs to
    /// another provider).
    pub evaluated: bool,
    /// The filter's source.
    pub filter: String,
    /// `&&` or `||` when the filter is such a chain at its top level.
    pub operator: Option<&'static str>,
    /// The top-level operands with their values.
    pub operands: Vec<OperandExplain>,
    /// The claims the filter and the identity claim read, with their values.
    pub claims: Vec<ClaimRead>,
    /// The identity claim expression.
    pub identity_claim: String,
    /// Its value, when it yields one.
    pub identity: Option<String>,
    /// Why it yields none.
    pub identity_error: Option<String>,
    /// Whether the filter matched and the identity claim yielded a string.
    pub matched: bool,
    /// `User:<id>` when the session took this pool.
    pub principal: Option<String>,
    /// `accepted`, `matched, not selected`, `not matched`, `other provider` or
    /// `not evaluated`.
    pub decision: &'static str,
    /// Why the pool did not take part, if it did not.
    pub reason: Option<String>,
}

/// One top-level operand of a filter.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct OperandExplain {
    /// Its source text.
    pub expr: String,
    /// `true` or `false`; `null` when it errored.
    pub value: Option<bool>,
    /// The evaluation error (a missing claim, a type mismatch).
    pub error: Option<String>,
}

/// A claim an expression reads, and its value in the token.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[non_exhaustive]
pub struct ClaimRead {
    /// The path, as CEL writes it: `claims.groups`, `claims["x-role"]`.
    pub claim: String,
    /// Whether the token has it.
    pub present: bool,
    /// Its value (`null` when absent).
    pub value: Value,
}

impl Gate {
    /// Explains one token as [`Gate::check`] would judge it with these extensions at `now`.
    pub async fn explain(
        &self,
        token: &str,
        request: LoginRequest,
        now: UnixTime,
    ) -> ExplainReport {
        let check = self.check(0, token, request.clone(), now).await;
        let parsed = UnverifiedToken::parse(token, DEFAULT_MAX_TOKEN_SIZE).ok();
        let header = parsed.as_ref().map_or(
            Value::Null,
            |t| json!({"alg": t.header().alg(), "kid": t.header().kid(), "typ": t.header().typ()}),
        );
        let routed = parsed
            .as_ref()
            .and_then(|t| self.route(t.unverified_issuer()));
        let mut report = ExplainReport {
            authenticated: check.authenticated,
            error: check.error.clone(),
            failed_rule: None,
            provider: routed.map(|(id, _)| id.to_owned()),
            header,
            issuer: check.issuer.clone(),
            subject: check.subject.clone(),
            expires_at: check.expires_at.clone(),
            now: now.to_rfc3339(),
            pools: Vec::new(),
            principals: check.principals.clone(),
            permissions: check.permissions.clone(),
            diagnostics: check.diagnostics.clone(),
        };
        let wanted = |id: &str| {
            request
                .pools
                .as_ref()
                .is_none_or(|ids| ids.iter().any(|w| w == id))
        };
        let login = match self.verified(token, now).await {
            Ok(login) => login,
            Err(e) => {
                // A login checks `logicalCluster` first: its failure is the one to explain.
                let first = crate::login::check_cluster(self.config().cluster(), &request).err();
                let failed = first.as_ref().unwrap_or(&e);
                report.failed_rule = Some(self.failed_rule(failed, parsed.as_ref(), routed, now));
                for pool in self.config().pools().pools() {
                    if !wanted(pool.id()) {
                        continue;
                    }
                    report.pools.push(PoolExplain {
                        id: pool.id().to_owned(),
                        provider: pool.provider_id().to_owned(),
                        evaluated: false,
                        filter: pool.filter().source().to_owned(),
                        operator: None,
                        operands: Vec::new(),
                        claims: Vec::new(),
                        identity_claim: pool.identity_claim().source().to_owned(),
                        identity: None,
                        identity_error: None,
                        matched: false,
                        principal: None,
                        decision: "not evaluated",
                        reason: Some(format!("token rejected: {}", e.code())),
                    });
                }
                return report;
            }
        };
        report.provider = Some(login.evaluation.provider_id().to_owned());
        let claims = login.token.claims();
        let ctx = ClaimsContext::new(claims);
        for (pool, checked) in self.config().pools().pools().iter().zip(&check.pools) {
            if !wanted(pool.id()) {
                continue;
            }
            let ours = pool.provider_id() == login.evaluation.provider_id();
            let filter = pool.filter();
            let (operator, operands, reads) = if ours {
                let shape = Shape::of(filter.source());
                let operands = filter
                    .explain(&ctx)
                    .into_iter()
                    .map(|(expr, outcome)| {
                        let (value, error) = match outcome {
                            FilterOutcome::Matched => (Some(true), None),
                            FilterOutcome::NotMatched => (Some(false), None),
                            FilterOutcome::Error(e) => (None, Some(e)),
                        };
                        OperandExplain { expr, value, error }
                    })
                    .collect();
                let mut paths = shape.claims;
                for p in Shape::of(pool.identity_claim().source()).claims {
                    if !paths.contains(&p) {
                        paths.push(p);
                    }
                }
                let reads = paths
                    .iter()
                    .map(|p| {
                        let value = p.lookup(claims);
                        ClaimRead {
                            claim: p.to_string(),
                            present: value.is_some(),
                            value: value.cloned().unwrap_or(Value::Null),
                        }
                    })
                    .collect();
                (shape.operator, operands, reads)
            } else {
                (None, Vec::new(), Vec::new())
            };
            let (identity, identity_error) = if ours {
                match pool.identity_claim().evaluate(&ctx) {
                    Ok(id) => (Some(id), None),
                    Err(e) => (None, Some(e.to_string())),
                }
            } else {
                (None, None)
            };
            let decision = match (ours, checked.matched, &checked.principal) {
                (false, _, _) => "other provider",
                (true, true, Some(_)) => "accepted",
                (true, true, None) => "matched, not selected",
                (true, false, _) => "not matched",
            };
            // The check's reason says what happened to the pool (refused before selection,
            // left out by identityPoolId, refused after it).
            let reason = match decision {
                "accepted" => None,
                _ => checked.reason.clone(),
            };
            report.pools.push(PoolExplain {
                id: pool.id().to_owned(),
                provider: pool.provider_id().to_owned(),
                evaluated: ours,
                filter: filter.source().to_owned(),
                operator,
                operands,
                claims: reads,
                identity_claim: pool.identity_claim().source().to_owned(),
                identity,
                identity_error,
                matched: checked.matched,
                principal: checked.principal.clone(),
                decision,
                reason,
            });
        }
        let result = crate::login::check_cluster(self.config().cluster(), &request)
            .and_then(|()| self.session(login.clone(), request));
        if let Err(e) = result {
            report.failed_rule = Some(self.failed_rule(&e, parsed.as_ref(), routed, now));
        }
        report
    }

    /// The configured provider a token's unverified `iss` routes to: with one provider, that
    /// one; else the one with that issuer.
    fn route(&self, iss: Option<&str>) -> Option<(&str, &Policy)> {
        let providers = self.config().providers();
        let p = match providers {
            [one] => Some(one),
            many => iss.and_then(|iss| many.iter().find(|p| p.policy.issuer() == iss)),
        }?;
        Some((p.id.as_str(), &p.policy))
    }

    fn failed_rule(
        &self,
        e: &LoginError,
        token: Option<&UnverifiedToken<'_>>,
        routed: Option<(&str, &Policy)>,
        now: UnixTime,
    ) -> FailedRule {
        let claim = |name: &str| -> Value {
            token
                .and_then(|t| t.unverified_claims().get(name).cloned())
                .unwrap_or(Value::Null)
        };
        let policy = routed.map(|(_, p)| p);
        let skew = policy.map_or(0, |p| p.clock_skew().as_secs());
        let at = |secs: u64| {
            let t = UnixTime::from_secs(secs);
            format!("{} ({})", t.to_rfc3339(), relative(t, now))
        };
        // Claim checks run after the signature verified, so their values are trustworthy;
        // with several providers an unknown `iss` is refused while routing, before it.
        let unverified = match e {
            LoginError::Token(v) => match v {
                ValidationError::TypeNotAllowed { .. }
                | ValidationError::Expired { .. }
                | ValidationError::NotYetValid { .. }
                | ValidationError::IssuedInFuture { .. }
                | ValidationError::LifetimeTooLong { .. }
                | ValidationError::AudienceMismatch
                | ValidationError::MissingClaim { .. }
                | ValidationError::InvalidClaim { .. } => false,
                ValidationError::UnknownIssuer { .. } => self.config().providers().len() > 1,
                _ => true,
            },
            _ => false,
        };
        let rule = |rule: &str, expected: Value, actual: Value| FailedRule {
            rule: rule.to_owned(),
            expected,
            actual,
            message: e.to_string(),
            unverified,
        };
        match e {
            LoginError::Token(v) => match v {
                ValidationError::Malformed(why) => rule(
                    "format",
                    json!(
                        "a compact JWS: three base64url sections, header and payload JSON objects"
                    ),
                    json!(why),
                ),
                ValidationError::TokenTooLarge { size, limit } => rule(
                    "size",
                    json!(format!("at most {limit} bytes")),
                    json!(format!("{size} bytes")),
                ),
                ValidationError::CriticalHeader => {
                    rule("crit", json!("no `crit` header"), json!("a `crit` header"))
                }
                ValidationError::UnsupportedAlgorithm { alg } => rule(
                    "alg",
                    json!(policy.map(|p| p.algorithms().map(|a| a.as_str()).collect::<Vec<_>>())),
                    json!(alg),
                ),
                ValidationError::UnknownKey { kid, .. } => {
                    rule("kid", json!(self.known_kids(routed)), json!(kid))
                }
                ValidationError::AmbiguousKey { candidates } => rule(
                    "kid",
                    json!("a `kid`, or exactly one key for the algorithm"),
                    json!(format!("no `kid`, {candidates} keys could verify")),
                ),
                ValidationError::BadSignature => rule(
                    "signature",
                    json!(format!(
                        "a signature by key `{}` of the provider's key set",
                        token.and_then(|t| t.header().kid()).unwrap_or("(no kid)")
                    )),
                    json!("a signature that does not verify (forged, altered, or another key)"),
                ),
                ValidationError::Expired { exp, now } => rule(
                    "exp",
                    json!(format!(
                        "after {} (now {}, less {skew}s clock skew)",
                        (*now - std::time::Duration::from_secs(skew)).to_rfc3339(),
                        now.to_rfc3339()
                    )),
                    json!(at(*exp)),
                ),
                ValidationError::NotYetValid { nbf, now } => rule(
                    "nbf",
                    json!(format!(
                        "at or before {} (now {}, plus {skew}s clock skew)",
                        (*now + std::time::Duration::from_secs(skew)).to_rfc3339(),
                        now.to_rfc3339()
                    )),
                    json!(at(*nbf)),
                ),
                ValidationError::IssuedInFuture { iat, now } => rule(
                    "iat",
                    json!(format!(
                        "at or before {} (now {}, plus {skew}s clock skew)",
                        (*now + std::time::Duration::from_secs(skew)).to_rfc3339(),
                        now.to_rfc3339()
                    )),
                    json!(at(*iat)),
                ),
                ValidationError::LifetimeTooLong {
                    lifetime_secs,
                    max_secs,
                } => rule(
                    "exp - iat",
                    json!(format!("at most {max_secs}s")),
                    json!(format!("{lifetime_secs}s")),
                ),
                ValidationError::UnknownIssuer { .. } => rule(
                    "iss",
                    json!(
                        self.config()
                            .providers()
                            .iter()
                            .map(|p| p.policy.issuer())
                            .collect::<Vec<_>>()
                    ),
                    claim("iss"),
                ),
                ValidationError::AudienceMismatch => rule(
                    "aud",
                    match policy.map(Policy::audiences) {
                        Some(Audiences::OneOf(list)) => json!(list),
                        _ => json!("any"),
                    },
                    claim("aud"),
                ),
                ValidationError::MissingClaim { claim: name } => {
                    rule(name, json!("present"), json!("absent"))
                }
                ValidationError::InvalidClaim {
                    claim: name,
                    reason,
                } => rule(
                    name,
                    json!("a valid value"),
                    json!({"value": claim(name), "problem": reason}),
                ),
                ValidationError::TypeNotAllowed { typ } => rule(
                    "typ",
                    json!(policy.and_then(Policy::token_types)),
                    json!(typ),
                ),
                ValidationError::JwksUnavailable { issuer, reason } => rule(
                    "keys",
                    json!(format!("a usable key set for `{issuer}`")),
                    json!(reason),
                ),
            },
            LoginError::Sasl(s) => rule(
                "sasl",
                json!("a well-formed SASL/OAUTHBEARER client message"),
                json!(s.to_string()),
            ),
            LoginError::WrongCluster { expected, found } => {
                rule("logicalCluster", json!(expected), json!(found))
            }
            LoginError::UnknownPool { id } => rule(
                "identityPoolId",
                json!(
                    self.config()
                        .pools()
                        .pools()
                        .iter()
                        .filter(|p| Some(p.provider_id()) == routed.map(|(id, _)| id))
                        .map(|p| p.id())
                        .collect::<Vec<_>>()
                ),
                json!(id),
            ),
            LoginError::NoPoolMatched => rule(
                "pools",
                json!("at least one pool (of those requested) whose filter matches"),
                json!("none matched: see each pool"),
            ),
            LoginError::AuthzidMismatch => rule(
                "authzid",
                json!("the token's identity"),
                json!("another identity"),
            ),
        }
    }

    /// The `kid`s of the routed provider's current key set.
    fn known_kids(&self, routed: Option<(&str, &Policy)>) -> Value {
        let Some((_, policy)) = routed else {
            return Value::Null;
        };
        let Some(provider) = self.validator().provider(policy.issuer()) else {
            return Value::Null;
        };
        match provider.store().current() {
            Ok(snapshot) => json!(
                snapshot
                    .keys()
                    .keys()
                    .iter()
                    .map(|k| k.kid())
                    .collect::<Vec<_>>()
            ),
            Err(_) => json!("no key set loaded"),
        }
    }
}

/// `in 59m 58s` / `3h 2m ago`, for a time relative to `now`.
pub(crate) fn relative(t: UnixTime, now: UnixTime) -> String {
    if t >= now {
        format!("in {}", human_duration(t.as_secs() - now.as_secs()))
    } else {
        format!("{} ago", human_duration(now.as_secs() - t.as_secs()))
    }
}

/// `2d 3h`, `59m 58s`, `12s`: the two largest units (the second left out when zero).
pub(crate) fn human_duration(secs: u64) -> String {
    if secs == 0 {
        return "0s".to_owned();
    }
    let units = [(86_400, "d"), (3600, "h"), (60, "m"), (1, "s")];
    let mut parts = Vec::new();
    let mut rest = secs;
    for (size, name) in units {
        if parts.is_empty() {
            if rest >= size {
                parts.push(format!("{}{name}", rest / size));
                rest %= size;
            }
        } else {
            if rest / size > 0 {
                parts.push(format!("{}{name}", rest / size));
            }
            break;
        }
    }
    parts.join(" ")
}

/// What an expression's syntax tree shows: its top-level operator and the claims it reads.
struct Shape {
    operator: Option<&'static str>,
    claims: Vec<ClaimPath>,
}

impl Shape {
    /// Parses `source` with cel (it compiled when the configuration loaded) and walks it.
    fn of(source: &str) -> Shape {
        let Ok(program) = cel::Program::compile(source) else {
            return Shape {
                operator: None,
                claims: Vec::new(),
            };
        };
        let root = program.expression();
        let operator = match &root.expr {
            Expr::Call(c) if c.target.is_none() && c.func_name == operators::LOGICAL_AND => {
                Some("&&")
            }
            Expr::Call(c) if c.target.is_none() && c.func_name == operators::LOGICAL_OR => {
                Some("||")
            }
            _ => None,
        };
        let mut claims = Vec::new();
        walk(root, &mut claims);
        Shape { operator, claims }
    }
}

/// Collects the longest `claims.a.b` / `claims["a"]` paths in `e`, in source order.
fn walk(e: &IdedExpr, out: &mut Vec<ClaimPath>) {
    if let Some(path) = claim_path(e) {
        if !out.contains(&path) {
            out.push(path);
        }
        return;
    }
    match &e.expr {
        Expr::Call(call) => {
            if let Some(t) = &call.target {
                walk(t, out);
            }
            for a in &call.args {
                walk(a, out);
            }
        }
        Expr::Select(s) => walk(&s.operand, out),
        Expr::Comprehension(c) => {
            for x in [
                &c.iter_range,
                &c.accu_init,
                &c.loop_cond,
                &c.loop_step,
                &c.result,
            ] {
                walk(x, out);
            }
        }
        Expr::List(l) => {
            for x in &l.elements {
                walk(x, out);
            }
        }
        Expr::Map(m) => {
            for entry in &m.entries {
                if let EntryExpr::MapEntry(me) = &entry.expr {
                    walk(&me.key, out);
                    walk(&me.value, out);
                }
            }
        }
        Expr::Struct(_) | Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
    }
}

/// `claims.a.b`, `has(claims.a.b)` or `claims["a"]["b"]` as a path.
fn claim_path(e: &IdedExpr) -> Option<ClaimPath> {
    let mut segments = Vec::new();
    let mut e = e;
    loop {
        match &e.expr {
            Expr::Ident(name) if name == "claims" => break,
            Expr::Select(select) => {
                segments.push(select.field.clone());
                e = &select.operand;
            }
            Expr::Call(call)
                if call.target.is_none()
                    && call.args.len() == 2
                    && call.func_name == operators::INDEX =>
            {
                match &call.args[1].expr {
                    Expr::Literal(cel::common::ast::LiteralValue::String(s)) => {
                        segments.push(s.inner().to_owned());
                    }
                    _ => return None,
                }
                e = &call.args[0];
            }
            _ => return None,
        }
    }
    segments.reverse();
    ClaimPath::new(segments)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(src: &str) -> Vec<String> {
        Shape::of(src)
            .claims
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn claims_read_by_an_expression() {
        assert_eq!(
            paths(r#"claims.iss == "x" && has(claims.groups) && "ops" in claims.groups"#),
            ["claims.iss", "claims.groups"]
        );
        assert_eq!(
            paths(r#"claims.sub.startsWith("svc-") || claims.ext.org == "blue""#),
            ["claims.sub", "claims.ext.org"]
        );
        assert_eq!(
            paths(r#"claims["x-role"] == "a" && claims.groups.exists(g, g == claims.team)"#),
            ["claims[\"x-role\"]", "claims.groups", "claims.team"]
        );
        assert_eq!(paths("true"), Vec::<String>::new());
        assert_eq!(
            paths("claims.tid + '/' + claims.oid"),
            ["claims.tid", "claims.oid"]
        );
    }

    #[test]
    fn top_level_operator() {
        assert_eq!(
            Shape::of("claims.a == 'x' && claims.b").operator,
            Some("&&")
        );
        assert_eq!(
            Shape::of("claims.a == 'x' || claims.b").operator,
            Some("||")
        );
        assert_eq!(
            Shape::of("(claims.a || claims.b) && claims.c").operator,
            Some("&&")
        );
        assert_eq!(Shape::of("claims.a").operator, None);
    }
}
