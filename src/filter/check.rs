//! The compile-time checks cel-rust does not do (it has no type checker): which variables and
//! functions an expression uses, and whether it can yield the kind of value it must.
//!
//! `Program::references()` is not used for the variable check: it lists a comprehension's
//! variable (`g` in `claims.groups.exists(g, g == "ops")`) as a free variable. This walk keeps
//! comprehension scopes.

use std::sync::Arc;

use cel::common::ast::{CallExpr, EntryExpr, Expr, IdedExpr, LiteralValue, operators};
use cel::{Context, Env, ExecutionError, Program, Value};

use super::FilterError;
use crate::error::clip;

/// The only variable a filter or claim expression may use.
const CLAIMS: &str = "claims";

/// What the expression must be able to yield.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Expect {
    Bool,
    String,
}

pub(super) fn check(program: &Program, env: &Arc<Env>, expect: Expect) -> Result<(), FilterError> {
    let mut walker = Walker {
        env,
        scope: Vec::new(),
    };
    walker.walk(program.expression())?;
    let root = program.expression();
    match expect {
        Expect::Bool => match cannot_be_bool(root, env) {
            Some(found) => Err(FilterError::NotBoolean { found }),
            None => Ok(()),
        },
        Expect::String => match cannot_be_string(root, env) {
            Some(found) => Err(FilterError::NotString { found }),
            None => Ok(()),
        },
    }
}

/// Operators and parser-internal calls: always defined, handled by the interpreter itself.
const OPERATORS: &[&str] = &[
    operators::CONDITIONAL,
    operators::LOGICAL_AND,
    operators::LOGICAL_OR,
    operators::LOGICAL_NOT,
    operators::SUBSTRACT,
    operators::ADD,
    operators::MULTIPLY,
    operators::DIVIDE,
    operators::MODULO,
    operators::EQUALS,
    operators::NOT_EQUALS,
    operators::GREATER_EQUALS,
    operators::LESS_EQUALS,
    operators::GREATER,
    operators::LESS,
    operators::NEGATE,
    operators::INDEX,
    operators::OPT_INDEX,
    operators::OPT_SELECT,
    operators::NOT_STRICTLY_FALSE,
    operators::IN,
];

/// Operators whose result is always a bool.
const BOOL_OPERATORS: &[&str] = &[
    operators::LOGICAL_AND,
    operators::LOGICAL_OR,
    operators::LOGICAL_NOT,
    operators::EQUALS,
    operators::NOT_EQUALS,
    operators::GREATER_EQUALS,
    operators::LESS_EQUALS,
    operators::GREATER,
    operators::LESS,
    operators::NOT_STRICTLY_FALSE,
    operators::IN,
];

/// Functions of the environment whose result is never a bool.
const NON_BOOL_FUNCTIONS: &[&str] = &[
    "size",
    "int",
    "uint",
    "double",
    "string",
    "bytes",
    "type",
    "split",
    "lowerAscii",
    "upperAscii",
    "trim",
    "replace",
    "substring",
    "charAt",
    "indexOf",
    "lastIndexOf",
    "join",
    "quote",
    "reverse",
    "format",
    "of",
    "none",
    "ofNonZeroValue",
    "optional.of",
    "optional.none",
    "optional.ofNonZeroValue",
    "strings.quote",
];

/// Functions of the environment whose result is never a string.
const NON_STRING_FUNCTIONS: &[&str] = &[
    "size",
    "int",
    "uint",
    "double",
    "bytes",
    "type",
    "split",
    "indexOf",
    "lastIndexOf",
    "startsWith",
    "endsWith",
    "contains",
    "matches",
    "hasValue",
    "of",
    "none",
    "ofNonZeroValue",
    "optional.of",
    "optional.none",
    "optional.ofNonZeroValue",
];

struct Walker<'a> {
    env: &'a Arc<Env>,
    /// Comprehension variables in scope, innermost last.
    scope: Vec<&'a str>,
}

impl<'a> Walker<'a> {
    fn bound(&self, name: &str) -> bool {
        name == CLAIMS || self.scope.contains(&name)
    }

    fn walk(&mut self, e: &'a IdedExpr) -> Result<(), FilterError> {
        match &e.expr {
            Expr::Literal(_) => Ok(()),
            Expr::Ident(name) => {
                // A leading dot makes a name absolute: only `claims` and types qualify.
                let absolute = name.strip_prefix('.');
                let ok = match absolute {
                    Some(bare) => bare == CLAIMS || self.is_type(bare),
                    None => self.bound(name) || self.is_type(name),
                };
                if ok {
                    Ok(())
                } else {
                    Err(FilterError::UnknownVariable {
                        name: clip(absolute.unwrap_or(name)),
                    })
                }
            }
            Expr::Select(select) => {
                if !select.test
                    && let Some(segments) = qualified_name(e)
                    && !self.bound(segments[0])
                    && self.is_type(&segments.join("."))
                {
                    return Ok(());
                }
                self.walk(&select.operand)
            }
            Expr::Call(call) => self.walk_call(call),
            Expr::Comprehension(c) => {
                self.walk(&c.iter_range)?;
                self.walk(&c.accu_init)?;
                let depth = self.scope.len();
                self.scope.push(&c.iter_var);
                if let Some(v) = &c.iter_var2 {
                    self.scope.push(v);
                }
                self.scope.push(&c.accu_var);
                self.walk(&c.loop_cond)?;
                self.walk(&c.loop_step)?;
                self.scope.truncate(depth);
                self.scope.push(&c.accu_var);
                self.walk(&c.result)?;
                self.scope.truncate(depth);
                Ok(())
            }
            Expr::List(list) => list.elements.iter().try_for_each(|x| self.walk(x)),
            Expr::Map(map) => map.entries.iter().try_for_each(|entry| match &entry.expr {
                EntryExpr::MapEntry(m) => {
                    self.walk(&m.key)?;
                    self.walk(&m.value)
                }
                EntryExpr::StructField(f) => Err(FilterError::Unsupported {
                    what: format!("a message field (`{}`) in a map literal", clip(&f.field)),
                }),
            }),
            Expr::Struct(s) => Err(FilterError::Unsupported {
                what: format!("constructing a message (`{}{{...}}`)", clip(&s.type_name)),
            }),
            Expr::Unspecified => Err(FilterError::Unsupported {
                what: "an unspecified expression".to_owned(),
            }),
        }
    }

    fn walk_call(&mut self, call: &'a CallExpr) -> Result<(), FilterError> {
        if OPERATORS.contains(&call.func_name.as_str()) {
            if let Some(t) = &call.target {
                self.walk(t)?;
            }
            return call.args.iter().try_for_each(|a| self.walk(a));
        }
        match &call.target {
            None => {
                if !declared(self.env, &call.func_name, false) {
                    return Err(FilterError::UnknownFunction {
                        name: clip(&call.func_name),
                    });
                }
            }
            Some(target) => {
                // `strings.quote(x)` calls the function `strings.quote`, as the interpreter
                // does when the target spells a name that is not a variable.
                let qualified = qualified_name(target)
                    .filter(|segments| !self.bound(segments[0]))
                    .map(|segments| format!("{}.{}", segments.join("."), call.func_name));
                if let Some(name) = qualified
                    && declared(self.env, &name, false)
                {
                    return call.args.iter().try_for_each(|a| self.walk(a));
                }
                if !declared(self.env, &call.func_name, true) {
                    return Err(FilterError::UnknownFunction {
                        name: clip(&call.func_name),
                    });
                }
                self.walk(target)?;
            }
        }
        call.args.iter().try_for_each(|a| self.walk(a))
    }

    fn is_type(&self, name: &str) -> bool {
        self.env.types().find_type(name).is_some()
    }
}

/// Whether the environment declares a function (`member`: called as `x.name(...)`).
///
/// cel-rust does not expose its function table, so this asks the interpreter: it calls the
/// function with no arguments (on a `null` receiver for a member function), which fails with
/// "undeclared reference" only when no overload of that name exists, and with "no matching
/// overload" otherwise. The functions are pure; the call's result is dropped.
fn declared(env: &Arc<Env>, name: &str, member: bool) -> bool {
    let null = || IdedExpr {
        id: 2,
        expr: Expr::Literal(LiteralValue::Null),
    };
    let probe = IdedExpr {
        id: 1,
        expr: Expr::Call(CallExpr {
            func_name: name.to_owned(),
            target: member.then(|| Box::new(null())),
            args: Vec::new(),
        }),
    };
    let ctx = Context::with_env(Arc::clone(env));
    let result = Value::resolve_val(&probe, &ctx);
    !matches!(result, Err(ExecutionError::UndeclaredReference(n)) if n.as_str() == name)
}

/// The segments of `a.b.c` (an identifier and field selections on it), root first.
fn qualified_name(e: &IdedExpr) -> Option<Vec<&str>> {
    let mut segments = Vec::new();
    let mut e = e;
    loop {
        match &e.expr {
            Expr::Ident(name) => {
                segments.push(name.as_str());
                segments.reverse();
                return Some(segments);
            }
            Expr::Select(select) if !select.test => {
                segments.push(select.field.as_str());
                e = &select.operand;
            }
            _ => return None,
        }
    }
}

fn literal_kind(l: &LiteralValue) -> &'static str {
    match l {
        LiteralValue::Boolean(_) => "a bool literal",
        LiteralValue::Bytes(_) => "a bytes literal",
        LiteralValue::Double(_) => "a double literal",
        LiteralValue::Int(_) => "an int literal",
        LiteralValue::Null => "null",
        LiteralValue::String(_) => "a string literal",
        LiteralValue::UInt(_) => "a uint literal",
    }
}

/// Why `e` can never evaluate to a bool, or `None` if it might (best effort, conservative).
fn cannot_be_bool(e: &IdedExpr, env: &Env) -> Option<String> {
    match &e.expr {
        Expr::Literal(LiteralValue::Boolean(_)) => None,
        Expr::Literal(l) => Some(literal_kind(l).to_owned()),
        Expr::List(_) => Some("a list literal".to_owned()),
        Expr::Map(_) => Some("a map literal".to_owned()),
        Expr::Struct(_) | Expr::Unspecified => Some("not an expression".to_owned()),
        Expr::Ident(name) => Some(ident_kind(name, env)),
        // `has(...)` is a bool; a claim may be a JSON boolean.
        Expr::Select(_) => None,
        Expr::Comprehension(c) => {
            matches!(c.accu_init.expr, Expr::List(_)).then(|| "a list (`map` or `filter`)".into())
        }
        Expr::Call(call) => {
            let name = call.func_name.as_str();
            if BOOL_OPERATORS.contains(&name) || name == operators::INDEX {
                None
            } else if name == operators::CONDITIONAL && call.args.len() == 3 {
                cannot_be_bool(&call.args[1], env)
                    .and_then(|why| cannot_be_bool(&call.args[2], env).map(|_| why))
            } else if is_arithmetic(name) {
                Some("an arithmetic or concatenation expression".to_owned())
            } else if name == operators::OPT_SELECT || name == operators::OPT_INDEX {
                Some("an optional value".to_owned())
            } else if NON_BOOL_FUNCTIONS.contains(&name) {
                Some(format!("a call to `{name}`"))
            } else {
                None
            }
        }
    }
}

/// Why `e` can never evaluate to a string, or `None` if it might (best effort, conservative).
fn cannot_be_string(e: &IdedExpr, env: &Env) -> Option<String> {
    match &e.expr {
        Expr::Literal(LiteralValue::String(_)) => None,
        Expr::Literal(l) => Some(literal_kind(l).to_owned()),
        Expr::List(_) => Some("a list literal".to_owned()),
        Expr::Map(_) => Some("a map literal".to_owned()),
        Expr::Struct(_) | Expr::Unspecified => Some("not an expression".to_owned()),
        Expr::Ident(name) => Some(ident_kind(name, env)),
        Expr::Select(select) if select.test => Some("a presence test (`has`)".to_owned()),
        Expr::Select(_) => None,
        Expr::Comprehension(_) => Some("a comprehension".to_owned()),
        Expr::Call(call) => {
            let name = call.func_name.as_str();
            if BOOL_OPERATORS.contains(&name) {
                Some("a comparison or logical expression".to_owned())
            } else if name == operators::CONDITIONAL && call.args.len() == 3 {
                cannot_be_string(&call.args[1], env)
                    .and_then(|why| cannot_be_string(&call.args[2], env).map(|_| why))
            } else if name != operators::ADD && is_arithmetic(name) {
                Some("an arithmetic expression".to_owned())
            } else if name == operators::OPT_SELECT || name == operators::OPT_INDEX {
                Some("an optional value".to_owned())
            } else if NON_STRING_FUNCTIONS.contains(&name) {
                Some(format!("a call to `{name}`"))
            } else {
                None
            }
        }
    }
}

fn is_arithmetic(name: &str) -> bool {
    [
        operators::ADD,
        operators::SUBSTRACT,
        operators::MULTIPLY,
        operators::DIVIDE,
        operators::MODULO,
        operators::NEGATE,
    ]
    .contains(&name)
}

/// At the root only `claims` (checked above to be the only variable) or a type name can appear.
fn ident_kind(name: &str, env: &Env) -> String {
    if env
        .types()
        .find_type(name.trim_start_matches('.'))
        .is_some()
    {
        format!("the type `{}`", clip(name))
    } else {
        "the whole claims map".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::super::env;
    use super::*;

    #[test]
    fn probe_tells_declared_functions_apart() {
        let env = env();
        for name in ["size", "int", "string", "type", "dyn", "optional.of"] {
            assert!(declared(env, name, false), "{name}");
        }
        for name in [
            "startsWith",
            "endsWith",
            "contains",
            "matches",
            "size",
            "split",
            "lowerAscii",
            "join",
            "trim",
            "replace",
        ] {
            assert!(declared(env, name, true), "{name}");
        }
        for (name, member) in [
            ("frobnicate", false),
            ("frobnicate", true),
            ("startsWith", false),
            ("timestamp", false),
        ] {
            assert!(!declared(env, name, member), "{name} {member}");
        }
    }

    fn compile(src: &str, expect: Expect) -> Result<(), FilterError> {
        let program = env().compile(src).unwrap();
        check(&program, env(), expect)
    }

    #[test]
    fn variables_are_scoped() {
        for ok in [
            r#"claims.groups.exists(g, g == "ops")"#,
            r#"claims.groups.all(g, g.startsWith("a"))"#,
            r#"claims.groups.exists_one(g, g == "ops")"#,
            r#"claims.groups.filter(g, g != "x").size() > 0"#,
            r#"type(claims.exp) == int"#,
            r#".claims.sub == "x""#,
            r#"[1].exists(claims, claims == 1)"#,
        ] {
            assert_eq!(compile(ok, Expect::Bool), Ok(()), "{ok}");
        }
        for (bad, name) in [
            (r#"claims.groups.exists(g, g == h)"#, "h"),
            (r#"claims.groups.exists(g, true) && g == "x""#, "g"),
            (r#"has(request.x)"#, "request"),
            (r#"request["x"] == 1"#, "request"),
            (r#"claimz.sub == "x""#, "claimz"),
            (r#".g == "x""#, "g"),
        ] {
            assert_eq!(
                compile(bad, Expect::Bool),
                Err(FilterError::UnknownVariable { name: name.into() }),
                "{bad}"
            );
        }
    }

    #[test]
    fn qualified_functions() {
        assert_eq!(
            compile(r#"strings.quote(claims.sub) == "x""#, Expect::Bool),
            Ok(())
        );
        assert_eq!(
            compile(r#"optional.of(claims.sub).hasValue()"#, Expect::Bool),
            Ok(())
        );
        assert_eq!(
            compile(r#"nope.quote(claims.sub) == "x""#, Expect::Bool),
            Err(FilterError::UnknownFunction {
                name: "quote".into()
            })
        );
    }

    #[test]
    fn bool_shapes() {
        for ok in [
            "claims.admin",
            "claims.flags[0]",
            "has(claims.x)",
            "claims.x ? true : 1",
            "dyn(claims.x)",
            "claims.groups.exists(g, g == 'a')",
            "claims.?x.orValue(false)",
        ] {
            assert_eq!(compile(ok, Expect::Bool), Ok(()), "{ok}");
        }
        for (bad, found) in [
            ("'abc'", "a string literal"),
            ("1", "an int literal"),
            ("null", "null"),
            ("[true]", "a list literal"),
            ("{'a': true}", "a map literal"),
            ("claims", "the whole claims map"),
            ("int", "the type `int`"),
            (
                "claims.a + claims.b",
                "an arithmetic or concatenation expression",
            ),
            ("-claims.a", "an arithmetic or concatenation expression"),
            ("claims.s.split(' ')", "a call to `split`"),
            ("claims.x ? 1 : 'a'", "an int literal"),
            (
                "claims.groups.map(g, g == 'a')",
                "a list (`map` or `filter`)",
            ),
            ("claims.?x", "an optional value"),
        ] {
            assert_eq!(
                compile(bad, Expect::Bool),
                Err(FilterError::NotBoolean {
                    found: found.into()
                }),
                "{bad}"
            );
        }
    }

    #[test]
    fn string_shapes() {
        for ok in [
            "claims.sub",
            "claims['x-y']",
            "claims.tid + '/' + claims.oid",
            "claims.email.lowerAscii()",
            "has(claims.a) ? claims.a : claims.b",
            "'fixed'",
            "string(claims.n)",
        ] {
            assert_eq!(compile(ok, Expect::String), Ok(()), "{ok}");
        }
        for (bad, found) in [
            ("1", "an int literal"),
            ("claims.a == 'x'", "a comparison or logical expression"),
            ("has(claims.a)", "a presence test (`has`)"),
            ("size(claims.a)", "a call to `size`"),
            ("claims.n * 2", "an arithmetic expression"),
            ("claims", "the whole claims map"),
        ] {
            assert_eq!(
                compile(bad, Expect::String),
                Err(FilterError::NotString {
                    found: found.into()
                }),
                "{bad}"
            );
        }
    }
}
