//! Recovers the source text of a sub-expression, for [`Filter::explain`](super::Filter::explain).
//!
//! cel-rust records, per node, the byte range of one token (an operator, a call's `(`, a
//! literal), not of the whole sub-expression, and none for a call's name or closing
//! parenthesis. The text is the range covering every node of the subtree, widened over a global
//! call's name and over the closing brackets the range leaves unbalanced.

use cel::Program;
use cel::common::ast::{EntryExpr, Expr, IdedExpr};

/// The source text of `expr` within `source`, or a placeholder if it cannot be recovered.
pub(super) fn source_text(program: &Program, source: &str, expr: &IdedExpr) -> String {
    recover(program, source, expr).unwrap_or_else(|| "(expression)".to_owned())
}

fn recover(program: &Program, source: &str, expr: &IdedExpr) -> Option<String> {
    let (mut start, stop) = span(program, source, expr)?;
    let bytes = source.as_bytes();
    // `stop` is inclusive: the end is after the last byte of the character starting there.
    let mut end = stop + 1;
    while end < source.len() && !source.is_char_boundary(end) {
        end += 1;
    }
    if !source.is_char_boundary(start) || end > source.len() || start >= end {
        return None;
    }
    // A global call's range starts at its `(`: take in the function's (qualified) name.
    if bytes[start] == b'(' {
        while start > 0
            && (bytes[start - 1].is_ascii_alphanumeric()
                || bytes[start - 1] == b'_'
                || bytes[start - 1] == b'.')
        {
            start -= 1;
        }
    }
    // Close what the range leaves open.
    let mut open = unclosed(&source[start..end]);
    while open > 0 && end < source.len() {
        match bytes[end] {
            b')' | b']' | b'}' => open -= 1,
            b' ' | b'\t' | b'\r' | b'\n' => {}
            _ => break,
        }
        end += 1;
    }
    Some(source[start..end].trim().to_owned())
}

/// The byte range (inclusive) the nodes of the subtree cover.
fn span(program: &Program, source: &str, e: &IdedExpr) -> Option<(usize, usize)> {
    let own = program
        .source_info()
        .offset_for(e.id)
        .map(|(start, stop)| (start as usize, stop as usize));
    let mut range = own;
    let mut add = |r: Option<(usize, usize)>| {
        if let Some((start, stop)) = r {
            range = Some(match range {
                None => (start, stop),
                Some((s, e)) => (s.min(start), e.max(stop)),
            });
        }
    };
    match &e.expr {
        Expr::Call(call) => {
            if let Some(t) = &call.target {
                add(span(program, source, t));
            }
            for a in &call.args {
                add(span(program, source, a));
            }
        }
        Expr::Select(select) => {
            let operand = span(program, source, &select.operand);
            add(operand);
            // `a.f`: the range is the `.`, the field follows it. `has(a.f)`: the range is the
            // `(`, the field follows the operand.
            let dot = if select.test {
                operand.map(|(_, stop)| stop + 1)
            } else {
                own.map(|(start, _)| start)
            };
            add(dot.and_then(|dot| field_end(source, dot, &select.field)));
        }
        Expr::Comprehension(c) => {
            for x in [
                &c.iter_range,
                &c.accu_init,
                &c.loop_cond,
                &c.loop_step,
                &c.result,
            ] {
                add(span(program, source, x));
            }
        }
        Expr::List(l) => {
            for x in &l.elements {
                add(span(program, source, x));
            }
        }
        Expr::Map(m) => {
            for entry in &m.entries {
                if let EntryExpr::MapEntry(me) = &entry.expr {
                    add(span(program, source, &me.key));
                    add(span(program, source, &me.value));
                }
            }
        }
        Expr::Struct(_) | Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
    }
    range
}

/// The range (inclusive) of the field name of `.field`, the `.` at or after `from`.
fn field_end(source: &str, from: usize, field: &str) -> Option<(usize, usize)> {
    let rest = source.get(from..)?;
    let skip = rest.len() - rest.trim_start().len();
    let rest = rest[skip..].strip_prefix('.')?;
    let skip2 = rest.len() - rest.trim_start().len();
    let rest = &rest[skip2..];
    let name_start = from + skip + 1 + skip2;
    if !rest.starts_with(field) {
        return None;
    }
    Some((name_start, name_start + field.len().checked_sub(1)?))
}

/// How many `(`, `[` and `{` outside string literals are not closed in `text`.
fn unclosed(text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut depth: usize = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            q @ (b'"' | b'\'') => {
                let raw = i > 0 && matches!(bytes[i - 1], b'r' | b'R');
                let triple = bytes.get(i..i + 3) == Some(&[q, q, q][..]);
                i += if triple { 3 } else { 1 };
                while i < bytes.len() {
                    if !raw && bytes[i] == b'\\' {
                        i += 2;
                        continue;
                    }
                    if triple {
                        if bytes.get(i..i + 3) == Some(&[q, q, q][..]) {
                            i += 2;
                            break;
                        }
                    } else if bytes[i] == q {
                        break;
                    }
                    i += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    depth
}

#[cfg(test)]
mod tests {
    use crate::filter::{ClaimsContext, Filter, FilterOutcome};

    fn explain(src: &str, claims: serde_json::Value) -> Vec<(String, FilterOutcome)> {
        let ctx = ClaimsContext::new(claims.as_object().unwrap());
        Filter::compile(src).unwrap().explain(&ctx)
    }

    fn texts(src: &str) -> Vec<String> {
        explain(src, serde_json::json!({}))
            .into_iter()
            .map(|(t, _)| t)
            .collect()
    }

    #[test]
    fn operand_texts() {
        let cases: &[(&str, &[&str])] = &[
            (
                r#"claims.iss == "é" && has(claims.groups) && "ops" in claims.groups"#,
                &[
                    r#"claims.iss == "é""#,
                    "has(claims.groups)",
                    r#""ops" in claims.groups"#,
                ],
            ),
            (
                r#"(claims.a == "x" || claims.b) && size(claims.g) > 0 && claims.g.exists(g, g.startsWith("y"))"#,
                &[
                    r#"claims.a == "x" || claims.b"#,
                    "size(claims.g) > 0",
                    r#"claims.g.exists(g, g.startsWith("y"))"#,
                ],
            ),
            (
                r#"claims.sub.matches('^a(b)') || {"k": [1, (2)]}.k[0] == 1 || strings.quote(claims.x) == '"x"'"#,
                &[
                    "claims.sub.matches('^a(b)')",
                    r#"{"k": [1, (2)]}.k[0] == 1"#,
                    r#"strings.quote(claims.x) == '"x"'"#,
                ],
            ),
            (
                r#"claims.scope.split(" ").exists(s, s == "kafka")"#,
                &[r#"claims.scope.split(" ").exists(s, s == "kafka")"#],
            ),
            ("!(claims.a)", &["!(claims.a)"]),
            ("true", &["true"]),
        ];
        for (src, want) in cases {
            assert_eq!(texts(src), *want, "{src}");
        }
    }

    #[test]
    fn operand_outcomes() {
        let got = explain(
            r#"claims.iss == "i" && claims.sub == "x" && claims.tid == "t""#,
            serde_json::json!({"iss": "i", "sub": "y"}),
        );
        assert_eq!(got[0].1, FilterOutcome::Matched);
        assert_eq!(got[1].1, FilterOutcome::NotMatched);
        assert_eq!(got[2].1, FilterOutcome::Error("no such key `tid`".into()));
    }
}
