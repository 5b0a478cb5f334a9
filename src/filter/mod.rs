//! Owns identity-pool filters and claim expressions: CEL over a verified token's `claims`,
//! compiled and checked once when configuration loads, evaluated per token; and the index that
//! picks, among many pools, the few whose filter can match.
//!
//! Pure: no I/O, no clock. It must not decide authorization: a filter's outcome is one input to
//! that decision, made elsewhere.
//!
//! ```
//! use poolgate::filter::{ClaimsContext, Filter, FilterOutcome};
//!
//! let filter = Filter::compile(r#"claims.iss == "https://idp" && "ops" in claims.groups"#)?;
//! let claims = serde_json::json!({"iss": "https://idp", "sub": "alice", "groups": ["ops"]});
//! let ctx = ClaimsContext::new(claims.as_object().unwrap());
//! assert_eq!(filter.evaluate(&ctx), FilterOutcome::Matched);
//!
//! // A claim that is absent is an error, which never counts as a match.
//! let filter = Filter::compile(r#"claims.tid == "t1""#)?;
//! assert!(matches!(filter.evaluate(&ctx), FilterOutcome::Error(_)));
//! # Ok::<(), poolgate::filter::FilterError>(())
//! ```
//!
//! # The language
//!
//! CEL as cel-rust 0.15 implements it, with the standard library, the standard macros (`has`,
//! `all`, `exists`, `exists_one`, `map`, `filter`), `matches()` (RE2-like syntax of the `regex`
//! crate) and the strings extension (`split`, `lowerAscii`, `trim`, `replace`, `substring`, ...).
//! Timestamps and durations are not available. The only variable is `claims`, a map built from
//! the token's JSON payload (see [`ClaimsContext`]).
//!
//! # Checks at compile time
//!
//! cel-rust has no type checker, so [`Filter::compile`] walks the syntax tree itself and rejects:
//! a reference to any variable but `claims` (comprehension variables are scoped, type names such
//! as `int` are allowed); a call to a function the environment does not declare; message
//! construction; and an expression that can never yield a bool (a literal other than `true` or
//! `false`, arithmetic or concatenation, `size(...)` outside a comparison, a list or map literal,
//! `map()`/`filter()`, the bare `claims` map). A select such as `claims.admin` is allowed: the
//! claim may be a JSON boolean.

mod check;
mod claims;
mod explain;
mod index;
mod reads;

use std::fmt;
use std::sync::{Arc, LazyLock};

use cel::common::ast::{Expr, IdedExpr, LiteralValue, operators};
use cel::common::types::{CelBool, CelString};
use cel::common::value::CowVal;
use cel::{Env, ExecutionError, Program};

use crate::error::clip;

pub use claims::ClaimsContext;
pub use index::FilterIndex;

/// The filter of a pool that does not set one: every verified token matches.
pub const DEFAULT_FILTER: &str = "true";

/// The longest filter or claim expression accepted, in bytes. Real filters are a few hundred
/// bytes; the cap bounds the parser's work on configuration input.
pub const MAX_EXPRESSION_LEN: usize = 8 * 1024;

/// The CEL environment every filter is compiled and evaluated with: the standard library and
/// the strings extension. Immutable once built, shared by all filters and contexts.
static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| {
    let mut env = Env::stdlib();
    // Cannot fail on a fresh stdlib environment (it only fails on a duplicate declaration).
    // Were it to, the extension's functions would be missing, and `compile` reports any filter
    // using them as calling an unknown function: the environment stays consistent either way.
    let _ = env.add_extension(cel::extensions::strings);
    Arc::new(env)
});

fn env() -> &'static Arc<Env> {
    &ENV
}

/// Why a filter or claim expression was rejected when configuration loaded.
///
/// Messages quote the offending part of the expression (clipped) in backticks; the caller adds
/// which pool and field it came from.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FilterError {
    /// The expression is empty or only whitespace.
    #[error("the expression is empty")]
    Empty,
    /// The expression is longer than [`MAX_EXPRESSION_LEN`].
    #[error("the expression is {len} bytes long, more than the limit of {limit} bytes")]
    TooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The expression is not valid CEL.
    #[error("syntax error{}: {message}", display_position(.position))]
    Syntax {
        /// Line and column (both from 1) of the first error, when the parser gives them.
        position: Option<(usize, usize)>,
        /// The parser's description of the first error (clipped).
        message: String,
    },
    /// The expression references a variable other than `claims`.
    #[error("unknown variable `{name}`: the only variable is `claims`")]
    UnknownVariable {
        /// The variable's name (clipped).
        name: String,
    },
    /// The expression calls a function the CEL environment does not declare.
    #[error("unknown function `{name}`")]
    UnknownFunction {
        /// The function's name (clipped).
        name: String,
    },
    /// The expression uses a construct that is not supported here.
    #[error("{what} is not supported")]
    Unsupported {
        /// What it is.
        what: String,
    },
    /// A filter that can never evaluate to a bool.
    #[error("the filter can never yield a bool: it is {found}")]
    NotBoolean {
        /// What the expression is instead, e.g. `a string literal`.
        found: String,
    },
    /// A claim expression that can never evaluate to a string.
    #[error("the claim expression can never yield a string: it is {found}")]
    NotString {
        /// What the expression is instead, e.g. `a comparison`.
        found: String,
    },
}

fn display_position(position: &Option<(usize, usize)>) -> String {
    match position {
        Some((line, column)) => format!(" at line {line}, column {column}"),
        None => String::new(),
    }
}

/// The outcome of one filter for one token.
///
/// Exhaustive on purpose: an `Error` (a missing claim, a type mismatch, a non-bool result) is
/// never a match; callers treat it as "no match" and report it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FilterOutcome {
    /// The filter evaluated to `true`.
    Matched,
    /// The filter evaluated to `false`.
    NotMatched,
    /// The filter could not be evaluated to a bool for this token; the message says why.
    Error(String),
}

impl FilterOutcome {
    /// Whether the filter matched. An error is not a match.
    pub fn is_match(&self) -> bool {
        matches!(self, FilterOutcome::Matched)
    }
}

/// A claim named by a chain of field selections on `claims`: `claims.ext.user` is
/// `["ext", "user"]`. Written `claims["x-y"]` in CEL when a key is not an identifier.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClaimPath(Vec<String>);

impl ClaimPath {
    /// A path from its segments, outermost first. `None` when there are none.
    pub fn new<I, S>(segments: I) -> Option<ClaimPath>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let segments: Vec<String> = segments.into_iter().map(Into::into).collect();
        (!segments.is_empty()).then_some(ClaimPath(segments))
    }

    /// The keys, outermost first; never empty.
    pub fn segments(&self) -> &[String] {
        &self.0
    }

    /// The JSON value at this path in a claims object, if every key on the way is present and
    /// every value before the last is an object: the value CEL's `claims.a.b` selects.
    pub fn lookup<'a>(
        &self,
        claims: &'a serde_json::Map<String, serde_json::Value>,
    ) -> Option<&'a serde_json::Value> {
        let (first, rest) = self.0.split_first()?;
        let mut value = claims.get(first)?;
        for key in rest {
            value = value.as_object()?.get(key)?;
        }
        Some(value)
    }
}

impl fmt::Display for ClaimPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("claims")?;
        for segment in &self.0 {
            let ident = segment
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_');
            if ident {
                write!(f, ".{segment}")?;
            } else {
                write!(f, "[{segment:?}]")?;
            }
        }
        Ok(())
    }
}

/// A top-level conjunct the index can use: the claim at `path` must be a string equal to one of
/// `values` (sorted, deduplicated, not empty) for the filter to match.
#[derive(Clone, Debug)]
pub(crate) struct Conjunct {
    pub(crate) path: ClaimPath,
    pub(crate) values: Vec<String>,
}

/// A compiled claim expression and its source.
struct Compiled {
    source: String,
    program: Program,
    /// The top-level claims it reads, or `None` for all (see [`reads::claims_read`]).
    reads: Option<Vec<String>>,
}

/// A compiled pool filter: a CEL expression over `claims` that must yield a bool.
///
/// Cheap to clone (shared). Send and Sync: one filter serves all connections.
#[derive(Clone)]
pub struct Filter(Arc<FilterInner>);

struct FilterInner {
    /// `None` for a filter that is the literal `true`: matched without evaluation.
    program: Option<Program>,
    source: String,
    equalities: Vec<(ClaimPath, String)>,
    conjuncts: Vec<Conjunct>,
    /// The top-level claims it reads, or `None` for all (see [`reads::claims_read`]).
    reads: Option<Vec<String>>,
}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Filter").field(&self.0.source).finish()
    }
}

impl Default for Filter {
    /// The default filter, [`DEFAULT_FILTER`]: every token matches.
    fn default() -> Self {
        Filter(Arc::new(FilterInner {
            program: None,
            source: DEFAULT_FILTER.to_owned(),
            equalities: Vec::new(),
            conjuncts: Vec::new(),
            reads: Some(Vec::new()),
        }))
    }
}

impl Filter {
    /// Compiles and checks a filter. See the [module docs](self) for what is rejected.
    ///
    /// ```
    /// use poolgate::filter::{Filter, FilterError};
    ///
    /// assert!(Filter::compile(r#"claims.sub.startsWith("svc-")"#).is_ok());
    /// assert!(matches!(
    ///     Filter::compile(r#"request.user == "x""#),
    ///     Err(FilterError::UnknownVariable { .. })
    /// ));
    /// assert!(matches!(Filter::compile("1 + 2"), Err(FilterError::NotBoolean { .. })));
    /// ```
    pub fn compile(source: &str) -> Result<Filter, FilterError> {
        let program = parse(source)?;
        check::check(&program, env(), check::Expect::Bool)?;
        let root = program.expression();
        if let Expr::Literal(LiteralValue::Boolean(b)) = &root.expr
            && *b.inner()
        {
            return Ok(Filter(Arc::new(FilterInner {
                program: None,
                source: source.to_owned(),
                equalities: Vec::new(),
                conjuncts: Vec::new(),
                reads: Some(Vec::new()),
            })));
        }
        let mut equalities = Vec::new();
        let mut conjuncts = Vec::new();
        for conjunct in top_level(root, operators::LOGICAL_AND) {
            if let Some((path, value)) = equality(conjunct) {
                equalities.push((path.clone(), value.to_owned()));
                conjuncts.push(Conjunct {
                    path,
                    values: vec![value.to_owned()],
                });
            } else if let Some(c) = membership(conjunct) {
                conjuncts.push(c);
            }
        }
        let reads = reads::claims_read(root);
        Ok(Filter(Arc::new(FilterInner {
            program: Some(program),
            source: source.to_owned(),
            equalities,
            conjuncts,
            reads,
        })))
    }

    /// The source text the filter was compiled from.
    pub fn source(&self) -> &str {
        &self.0.source
    }

    /// Evaluates the filter for one token. A runtime error (an absent claim, a type mismatch, a
    /// result that is not a bool) is an [`FilterOutcome::Error`], never a match.
    pub fn evaluate(&self, ctx: &ClaimsContext) -> FilterOutcome {
        match &self.0.program {
            None => FilterOutcome::Matched,
            Some(program) => outcome(cel::Value::resolve_val(program.expression(), ctx.cel())),
        }
    }

    /// The top-level `&&` conjuncts of the form `claims.a.b == "literal"` (either side order;
    /// `claims["a"]` indexing too). The filter can only match a token whose claim at each path
    /// is exactly that string.
    pub fn equalities(&self) -> &[(ClaimPath, String)] {
        &self.0.equalities
    }

    pub(crate) fn conjuncts(&self) -> &[Conjunct] {
        &self.0.conjuncts
    }

    /// The top-level claims the filter reads, sorted; `None` when it needs them all.
    pub(crate) fn claims_read(&self) -> Option<&[String]> {
        self.0.reads.as_deref()
    }

    /// Evaluates each top-level operand of the filter on its own, for a human reading why a
    /// token did or did not match: the operands of a top-level `&&` chain, else of a `||`
    /// chain, else the whole filter. Each comes with its source text (operators and the
    /// parentheses around an operand left out).
    pub fn explain(&self, ctx: &ClaimsContext) -> Vec<(String, FilterOutcome)> {
        let Some(program) = &self.0.program else {
            return vec![(self.0.source.clone(), FilterOutcome::Matched)];
        };
        let root = program.expression();
        let operands = match &root.expr {
            Expr::Call(call) if is_binary(call, operators::LOGICAL_AND) => {
                top_level(root, operators::LOGICAL_AND)
            }
            Expr::Call(call) if is_binary(call, operators::LOGICAL_OR) => {
                top_level(root, operators::LOGICAL_OR)
            }
            _ => vec![root],
        };
        operands
            .into_iter()
            .map(|operand| {
                let text = explain::source_text(program, &self.0.source, operand);
                (text, outcome(cel::Value::resolve_val(operand, ctx.cel())))
            })
            .collect()
    }
}

/// An expression that names a principal: any CEL expression over `claims` that yields a
/// non-empty string, typically a select path such as `claims.sub`, `claims.client_id` or
/// `claims.ext.user`, or a composition such as `claims.tid + "/" + claims.oid`.
#[derive(Clone)]
pub struct ClaimExpr(Arc<Compiled>);

impl fmt::Debug for ClaimExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ClaimExpr").field(&self.0.source).finish()
    }
}

/// Why a claim expression yielded no principal for a token.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClaimExprError {
    /// The expression failed, e.g. the claim is absent (`no such key`).
    #[error("`{expr}` cannot be evaluated: {reason}")]
    Evaluation {
        /// The claim expression (clipped).
        expr: String,
        /// Why.
        reason: String,
    },
    /// The expression yielded a value that is not a string.
    #[error("`{expr}` yields {}, not a string", with_article(found))]
    NotAString {
        /// The claim expression (clipped).
        expr: String,
        /// The CEL type it yielded, e.g. `int`.
        found: String,
    },
    /// The expression yielded the empty string, which names no one.
    #[error("`{expr}` yields an empty string")]
    Empty {
        /// The claim expression (clipped).
        expr: String,
    },
}

impl ClaimExpr {
    /// Compiles and checks a claim expression: the same checks as [`Filter::compile`], except
    /// that it must be able to yield a string.
    ///
    /// ```
    /// use poolgate::filter::{ClaimExpr, ClaimsContext};
    ///
    /// let expr = ClaimExpr::compile("claims.ext.user")?;
    /// let claims = serde_json::json!({"ext": {"user": "alice"}});
    /// let ctx = ClaimsContext::new(claims.as_object().unwrap());
    /// assert_eq!(expr.evaluate(&ctx).unwrap(), "alice");
    /// # Ok::<(), poolgate::filter::FilterError>(())
    /// ```
    pub fn compile(source: &str) -> Result<ClaimExpr, FilterError> {
        let program = parse(source)?;
        check::check(&program, env(), check::Expect::String)?;
        let reads = reads::claims_read(program.expression());
        Ok(ClaimExpr(Arc::new(Compiled {
            source: source.to_owned(),
            program,
            reads,
        })))
    }

    /// The top-level claims the expression reads, sorted; `None` when it needs them all.
    pub(crate) fn claims_read(&self) -> Option<&[String]> {
        self.0.reads.as_deref()
    }

    /// The source text the expression was compiled from.
    pub fn source(&self) -> &str {
        &self.0.source
    }

    /// Evaluates the expression for one token.
    pub fn evaluate(&self, ctx: &ClaimsContext) -> Result<String, ClaimExprError> {
        let expr = || clip(&self.0.source);
        match cel::Value::resolve_val(self.0.program.expression(), ctx.cel()) {
            Err(e) => Err(ClaimExprError::Evaluation {
                expr: expr(),
                reason: describe(&e),
            }),
            Ok(value) => match value.downcast_ref::<CelString>() {
                Some(s) if s.inner().is_empty() => Err(ClaimExprError::Empty { expr: expr() }),
                Some(s) => Ok(s.inner().to_owned()),
                None => Err(ClaimExprError::NotAString {
                    expr: expr(),
                    found: value.get_type().name().to_owned(),
                }),
            },
        }
    }
}

fn parse(source: &str) -> Result<Program, FilterError> {
    if source.len() > MAX_EXPRESSION_LEN {
        return Err(FilterError::TooLong {
            len: source.len(),
            limit: MAX_EXPRESSION_LEN,
        });
    }
    if source.trim().is_empty() {
        return Err(FilterError::Empty);
    }
    env().compile(source).map_err(|errors| {
        let first = errors.errors.first();
        let position = first.and_then(|e| {
            let (line, column) = e.pos;
            Some((usize::try_from(line).ok()?, usize::try_from(column).ok()?))
                .filter(|&(l, c)| l > 0 && c > 0)
        });
        let message = first.map_or_else(
            || "the expression is not valid CEL".to_owned(),
            |e| {
                let msg = e.msg.strip_prefix("Syntax error: ").unwrap_or(&e.msg);
                clip_long(&lowercase_first(msg))
            },
        );
        FilterError::Syntax { position, message }
    })
}

fn outcome(result: Result<CowVal<'_, '_>, ExecutionError>) -> FilterOutcome {
    match result {
        Ok(value) => match value.downcast_ref::<CelBool>() {
            Some(b) if *b.inner() => FilterOutcome::Matched,
            Some(_) => FilterOutcome::NotMatched,
            None => FilterOutcome::Error(format!(
                "the filter yields {}, not a bool",
                with_article(value.get_type().name())
            )),
        },
        Err(e) => FilterOutcome::Error(describe(&e)),
    }
}

/// A CEL execution error as a message in this crate's style: lowercase, names in backticks,
/// values clipped (claim values may appear in cel's own messages).
fn describe(error: &ExecutionError) -> String {
    match error {
        ExecutionError::NoSuchKey(key) => format!("no such key `{}`", clip(key)),
        ExecutionError::UndeclaredReference(name) => {
            format!("undeclared reference to `{}`", clip(name))
        }
        ExecutionError::NoSuchOverload(o) if o.function() == "_._" => {
            let on = o
                .argument_types()
                .first()
                .map_or("this value", String::as_str);
            format!("cannot select a field of {}", with_article(on))
        }
        ExecutionError::NoSuchOverload(o) => {
            let function = operator_display(o.function());
            let types = o.argument_types();
            if o.is_member_function() && !types.is_empty() {
                format!(
                    "no overload of `{function}` for receiver {} and arguments ({})",
                    types[0],
                    types[1..].join(", ")
                )
            } else {
                format!("no overload of `{function}` for ({})", types.join(", "))
            }
        }
        other => clip_long(&lowercase_first(&other.to_string())),
    }
}

/// An operator's internal name as written in CEL: `_==_` is `==`, `@in` is `in`.
fn operator_display(name: &str) -> &str {
    match name {
        "@in" => "in",
        "_[_]" => "[]",
        "_[?_]" => "[?]",
        "_?._" => ".?",
        "_._" => ".",
        "_?_:_" => "?:",
        "!_" => "!",
        "-_" => "-",
        _ => name
            .strip_prefix('_')
            .and_then(|n| n.strip_suffix('_'))
            .filter(|n| !n.is_empty() && !n.contains(|c: char| c.is_alphanumeric()))
            .unwrap_or(name),
    }
}

/// `a string`, `an int`.
fn with_article(type_name: &str) -> String {
    let vowel = type_name.starts_with(['a', 'e', 'i', 'o', 'u']);
    format!("{} {type_name}", if vowel { "an" } else { "a" })
}

fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Puts a longer message (a parser or runtime diagnostic) on one line, clipped on a character
/// boundary.
fn clip_long(s: &str) -> String {
    const LIMIT: usize = 200;
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match s.char_indices().nth(LIMIT) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

fn is_binary(call: &cel::common::ast::CallExpr, op: &str) -> bool {
    call.target.is_none() && call.args.len() == 2 && call.func_name == op
}

/// The operands of a chain of `op` (`&&` or `||`) at the root, left to right; the root alone if
/// it is not such a call.
fn top_level<'e>(root: &'e IdedExpr, op: &str) -> Vec<&'e IdedExpr> {
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(e) = stack.pop() {
        match &e.expr {
            Expr::Call(call) if is_binary(call, op) => {
                stack.push(&call.args[1]);
                stack.push(&call.args[0]);
            }
            _ => out.push(e),
        }
    }
    out
}

/// `claims.a.b` or `claims["a"]["b"]` (not a presence test, not optional) as a path.
fn claim_path(expr: &IdedExpr) -> Option<ClaimPath> {
    let mut segments = Vec::new();
    let mut e = expr;
    loop {
        match &e.expr {
            Expr::Ident(name) if name == "claims" => break,
            Expr::Select(select) if !select.test => {
                segments.push(select.field.clone());
                e = &select.operand;
            }
            Expr::Call(call) if is_binary(call, operators::INDEX) => {
                segments.push(string_literal(&call.args[1])?.to_owned());
                e = &call.args[0];
            }
            _ => return None,
        }
    }
    segments.reverse();
    ClaimPath::new(segments)
}

fn string_literal(expr: &IdedExpr) -> Option<&str> {
    match &expr.expr {
        Expr::Literal(LiteralValue::String(s)) => Some(s.inner()),
        _ => None,
    }
}

/// `claims.a.b == "literal"`, either side order.
fn equality(expr: &IdedExpr) -> Option<(ClaimPath, &str)> {
    let Expr::Call(call) = &expr.expr else {
        return None;
    };
    if !is_binary(call, operators::EQUALS) {
        return None;
    }
    let (l, r) = (&call.args[0], &call.args[1]);
    claim_path(l)
        .zip(string_literal(r))
        .or_else(|| claim_path(r).zip(string_literal(l)))
}

/// `claims.a.b in ["x", "y"]`: a list literal of string literals only.
fn membership(expr: &IdedExpr) -> Option<Conjunct> {
    let Expr::Call(call) = &expr.expr else {
        return None;
    };
    if !is_binary(call, operators::IN) {
        return None;
    }
    let path = claim_path(&call.args[0])?;
    let Expr::List(list) = &call.args[1].expr else {
        return None;
    };
    if !list.optional_indices.is_empty() || list.elements.is_empty() {
        return None;
    }
    let mut values = list
        .elements
        .iter()
        .map(|e| string_literal(e).map(str::to_owned))
        .collect::<Option<Vec<String>>>()?;
    values.sort_unstable();
    values.dedup();
    Some(Conjunct { path, values })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(v: serde_json::Value) -> ClaimsContext {
        ClaimsContext::new(v.as_object().unwrap())
    }

    #[test]
    fn send_and_sync() {
        fn assert<T: Send + Sync>() {}
        assert::<Filter>();
        assert::<ClaimExpr>();
        assert::<ClaimsContext>();
        assert::<FilterIndex>();
    }

    #[test]
    fn equalities_either_order_and_indexing() {
        let f = Filter::compile(
            r#"claims.iss == "i" && "s" == claims.sub && claims["ext"]["x-y"] == "z" && claims.n == 1"#,
        )
        .unwrap();
        let eq: Vec<String> = f
            .equalities()
            .iter()
            .map(|(p, v)| format!("{p}={v}"))
            .collect();
        assert_eq!(
            eq,
            ["claims.iss=i", "claims.sub=s", r#"claims.ext["x-y"]=z"#]
        );
    }

    #[test]
    fn no_equalities_under_or_or_negation() {
        for src in [
            r#"claims.iss == "i" || claims.sub == "s""#,
            r#"!(claims.sub == "s")"#,
            r#"has(claims.sub) ? claims.sub == "s" : true"#,
            r#"claims.?sub == "s""#,
        ] {
            let f = Filter::compile(src).unwrap();
            assert!(f.equalities().is_empty(), "{src}");
            assert!(f.conjuncts().is_empty(), "{src}");
        }
    }

    #[test]
    fn membership_conjuncts() {
        let f = Filter::compile(r#"claims.tid == "t" && claims.aud in ["b", "a", "b"]"#).unwrap();
        assert_eq!(f.equalities().len(), 1);
        assert_eq!(f.conjuncts()[1].values, ["a", "b"]);
        let f = Filter::compile(r#"claims.aud in ["a", 1]"#).unwrap();
        assert!(f.conjuncts().is_empty());
    }

    #[test]
    fn default_and_literal_true_match_without_evaluation() {
        let c = ctx(serde_json::json!({}));
        assert_eq!(Filter::default().evaluate(&c), FilterOutcome::Matched);
        assert_eq!(Filter::default().source(), DEFAULT_FILTER);
        let t = Filter::compile(DEFAULT_FILTER).unwrap();
        assert_eq!(t.evaluate(&c), FilterOutcome::Matched);
        assert_eq!(
            Filter::compile("false").unwrap().evaluate(&c),
            FilterOutcome::NotMatched
        );
    }

    #[test]
    fn error_messages() {
        let cases = [
            ("", "the expression is empty"),
            (
                "request.x == 1",
                "unknown variable `request`: the only variable is `claims`",
            ),
            ("frobnicate(claims.x)", "unknown function `frobnicate`"),
            ("claims.x.frobnicate()", "unknown function `frobnicate`"),
            (
                r#""abc""#,
                "the filter can never yield a bool: it is a string literal",
            ),
            (
                "1 + 2",
                "the filter can never yield a bool: it is an arithmetic or concatenation expression",
            ),
            (
                "size(claims.groups)",
                "the filter can never yield a bool: it is a call to `size`",
            ),
        ];
        for (src, want) in cases {
            assert_eq!(Filter::compile(src).unwrap_err().to_string(), want, "{src}");
        }
        let err = Filter::compile("claims.x ==").unwrap_err();
        assert!(
            matches!(&err, FilterError::Syntax { position: Some((1, _)), message } if message.starts_with("mismatched input")),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with("syntax error at line 1, column ")
        );
    }

    #[test]
    fn runtime_error_messages() {
        let c = ctx(serde_json::json!({"n": 1, "s": "x"}));
        let err = |src: &str| match Filter::compile(src).unwrap().evaluate(&c) {
            FilterOutcome::Error(e) => e,
            other => panic!("{src}: {other:?}"),
        };
        assert_eq!(err(r#"claims.sub == "a""#), "no such key `sub`");
        assert_eq!(
            err("claims.n > \"a\""),
            "no overload of `>` for (int, string)"
        );
        assert_eq!(
            err("claims.n.startsWith(\"a\")"),
            "no overload of `startsWith` for receiver int and arguments (string)"
        );
        assert_eq!(err("claims.s"), "the filter yields a string, not a bool");
        assert_eq!(err("claims.n"), "the filter yields an int, not a bool");
        assert_eq!(err("claims.s.x"), "cannot select a field of a string");
    }

    #[test]
    fn operator_names() {
        assert_eq!(operator_display("_==_"), "==");
        assert_eq!(operator_display("_&&_"), "&&");
        assert_eq!(operator_display("@in"), "in");
        assert_eq!(operator_display("size"), "size");
        assert_eq!(operator_display("_private_"), "_private_");
    }

    #[test]
    fn claim_path_display_and_lookup() {
        let p = ClaimPath::new(["ext", "x-y"]).unwrap();
        assert_eq!(p.to_string(), r#"claims.ext["x-y"]"#);
        let claims = serde_json::json!({"ext": {"x-y": "v"}, "s": "t"});
        let claims = claims.as_object().unwrap();
        assert_eq!(p.lookup(claims), Some(&serde_json::json!("v")));
        assert_eq!(ClaimPath::new(["s", "x"]).unwrap().lookup(claims), None);
        assert!(ClaimPath::new(Vec::<String>::new()).is_none());
    }
}
