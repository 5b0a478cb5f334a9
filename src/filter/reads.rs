//! Owns the static analysis of which top-level claims an expression reads, so that a token's
//! evaluation context converts only those claims to CEL values.
//!
//! Pure: walks a compiled expression's syntax tree once, at configuration load.

use cel::common::ast::{EntryExpr, Expr, IdedExpr, LiteralValue, operators};

use super::is_binary;

/// The variable the claims are bound to.
const CLAIMS: &str = "claims";

/// The top-level claim names an expression reads, sorted and deduplicated, when it reads the
/// claims only by name: `claims.x`, `has(claims.x)`, `claims["x"]` (and deeper selections on
/// those). `None` when it uses the claims map in any other way (`size(claims)`, `"x" in claims`,
/// a comprehension over it, a computed index): it then needs every claim.
///
/// A context holding only these claims gives the expression exactly the values, errors and
/// results the full claims give it: every access it can make names one of them.
pub(super) fn claims_read(root: &IdedExpr) -> Option<Vec<String>> {
    let mut names = Vec::new();
    walk(root, &mut Vec::new(), &mut names)?;
    names.sort_unstable();
    names.dedup();
    Some(names)
}

/// Whether `e` is the claims variable itself (not a comprehension variable of that name).
fn is_claims(e: &IdedExpr, scope: &[&str]) -> bool {
    match &e.expr {
        Expr::Ident(name) => name == ".claims" || (name == CLAIMS && !scope.contains(&CLAIMS)),
        _ => false,
    }
}

fn walk<'a>(e: &'a IdedExpr, scope: &mut Vec<&'a str>, out: &mut Vec<String>) -> Option<()> {
    match &e.expr {
        Expr::Literal(_) => Some(()),
        // The claims map used as a value: every claim is needed.
        Expr::Ident(_) if is_claims(e, scope) => None,
        Expr::Ident(_) => Some(()),
        Expr::Select(select) if is_claims(&select.operand, scope) => {
            out.push(select.field.clone());
            Some(())
        }
        Expr::Select(select) => walk(&select.operand, scope, out),
        Expr::Call(call) => {
            if is_binary(call, operators::INDEX)
                && is_claims(&call.args[0], scope)
                && let Expr::Literal(LiteralValue::String(key)) = &call.args[1].expr
            {
                out.push(key.inner().to_owned());
                return Some(());
            }
            if let Some(target) = &call.target {
                walk(target, scope, out)?;
            }
            call.args.iter().try_for_each(|a| walk(a, scope, out))
        }
        Expr::Comprehension(c) => {
            walk(&c.iter_range, scope, out)?;
            walk(&c.accu_init, scope, out)?;
            let depth = scope.len();
            scope.push(&c.iter_var);
            if let Some(v) = &c.iter_var2 {
                scope.push(v);
            }
            scope.push(&c.accu_var);
            walk(&c.loop_cond, scope, out)?;
            walk(&c.loop_step, scope, out)?;
            scope.truncate(depth);
            scope.push(&c.accu_var);
            walk(&c.result, scope, out)?;
            scope.truncate(depth);
            Some(())
        }
        Expr::List(list) => list.elements.iter().try_for_each(|x| walk(x, scope, out)),
        Expr::Map(map) => map.entries.iter().try_for_each(|entry| match &entry.expr {
            EntryExpr::MapEntry(m) => {
                walk(&m.key, scope, out)?;
                walk(&m.value, scope, out)
            }
            EntryExpr::StructField(_) => None,
        }),
        Expr::Struct(_) | Expr::Unspecified => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reads(src: &str) -> Option<Vec<String>> {
        let program = super::super::parse(src).unwrap();
        claims_read(program.expression())
    }

    #[test]
    fn names_read_or_the_whole_map() {
        let cases: &[(&str, Option<&[&str]>)] = &[
            ("true", Some(&[])),
            (r#"claims.sub == "a""#, Some(&["sub"])),
            (
                r#"has(claims.groups) && "ops" in claims.groups && claims.aud == "kafka""#,
                Some(&["aud", "groups"]),
            ),
            (
                r#"claims["x-y"].z == 1 || claims.ext.user == "u""#,
                Some(&["ext", "x-y"]),
            ),
            (r#"claims.sub.startsWith("svc-")"#, Some(&["sub"])),
            (
                r#"claims.groups.exists(g, g == claims.sub)"#,
                Some(&["groups", "sub"]),
            ),
            (r#"claims.tid + "/" + claims.oid"#, Some(&["oid", "tid"])),
            // A comprehension variable named `claims` shadows the claims.
            (
                r#"claims.groups.exists(claims, claims == "x")"#,
                Some(&["groups"]),
            ),
            ("size(claims) > 2", None),
            (r#""sub" in claims"#, None),
            ("claims.exists(k, k == 'sub')", None),
            ("claims[claims.key] == 'x'", None),
            (r#".claims.sub == "a""#, Some(&["sub"])),
        ];
        for (src, expected) in cases {
            let expected = expected.map(|e| e.iter().map(|s| (*s).to_owned()).collect());
            assert_eq!(reads(src), expected, "{src}");
        }
    }
}
