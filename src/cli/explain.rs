//! `poolgate explain`: prints [`Gate::explain`](crate::gate::Gate)'s report, pool by pool.

use std::io::Write;
use std::path::PathBuf;

use super::style::Paint;
use super::{
    Cell, CliResult, Context, EXIT_OK, EXIT_REJECTED, Format, Style, grant_line, json_line,
    load_config, login_request, parse_at, start_gate, table, write_error,
};
use crate::explain::{ExplainReport, PoolExplain};

/// `poolgate explain`: why a token is or is not accepted, pool by pool.
#[derive(Clone, Debug, clap::Args)]
pub struct ExplainArgs {
    /// The configuration file (TOML).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// The token to explain.
    #[arg(long, value_name = "JWT")]
    pub token: String,
    /// Explain only these pools, and log in as if `identityPoolId` named them.
    #[arg(long, value_name = "ID[,ID...]")]
    pub pool: Option<String>,
    /// The SASL extension `logicalCluster`.
    #[arg(long, value_name = "ID")]
    pub logical_cluster: Option<String>,
    /// Judge as of this time instead of now: RFC 3339, unix seconds, or unix
    /// milliseconds with `ms` (`1796528486000ms`); 13 digits or more without `ms` is refused.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
}

/// Runs `poolgate explain`.
///
/// # Errors
/// A usage, configuration or file error (exit 2).
pub(crate) fn run(args: &ExplainArgs, ctx: &Context) -> CliResult {
    let at = parse_at(args.at.as_deref())?;
    let config = load_config(&args.config)?;
    let rt = super::runtime()?;
    rt.block_on(async {
        let gate = start_gate(config, at).await?;
        let now = at.unwrap_or_else(|| gate.validator().clock().now());
        let request = login_request(args.pool.as_deref(), args.logical_cluster.as_deref());
        let report = gate.explain(args.token.trim(), request, now).await;
        let mut out = std::io::stdout().lock();
        match ctx.format {
            Format::Json => json_line(&mut out, &report)?,
            Format::Human => {
                write!(out, "{}", render(&report, ctx.style)).map_err(write_error)?;
            }
        }
        out.flush().map_err(write_error)?;
        Ok(if report.authenticated {
            EXIT_OK
        } else {
            EXIT_REJECTED
        })
    })
}

fn value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The human view of an explain report.
pub(crate) fn render(r: &ExplainReport, style: Style) -> String {
    let mut out = String::new();
    match &r.error {
        None => out.push_str(&format!("{}\n", style.paint("accepted", Paint::Good))),
        Some(e) => out.push_str(&format!(
            "{}  {}\n",
            style.paint(&format!("rejected: {}", e.code), Paint::Bad),
            e.message
        )),
    }
    let mut facts = Vec::new();
    if let Some(p) = &r.provider {
        facts.push(vec![Cell::painted("provider", Paint::Dim), Cell::plain(p)]);
    }
    if let Some(h) = r.header.as_object() {
        let parts: Vec<String> = ["alg", "kid", "typ"]
            .iter()
            .filter_map(|k| h.get(*k)?.as_str().map(|v| format!("{k} {v}")))
            .collect();
        facts.push(vec![
            Cell::painted("header", Paint::Dim),
            Cell::plain(parts.join("  ")),
        ]);
    }
    for (label, value) in [
        ("issuer", &r.issuer),
        ("subject", &r.subject),
        ("expires", &r.expires_at),
    ] {
        if let Some(v) = value {
            facts.push(vec![Cell::painted(label, Paint::Dim), Cell::plain(v)]);
        }
    }
    facts.push(vec![Cell::painted("now", Paint::Dim), Cell::plain(&r.now)]);
    out.push_str(&table(&facts, 0, style));
    if let Some(f) = &r.failed_rule {
        out.push('\n');
        out.push_str(&format!(
            "{} {}\n",
            style.paint("failed rule", Paint::Bold),
            style.paint(&f.rule, Paint::Bad)
        ));
        let actual = if f.unverified {
            format!("{}  (read without verification)", value_text(&f.actual))
        } else {
            value_text(&f.actual)
        };
        out.push_str(&table(
            &[
                vec![
                    Cell::painted("expected", Paint::Dim),
                    Cell::plain(value_text(&f.expected)),
                ],
                vec![Cell::painted("actual", Paint::Dim), Cell::plain(actual)],
            ],
            2,
            style,
        ));
    }
    for p in &r.pools {
        out.push('\n');
        out.push_str(&render_pool(p, style));
    }
    if !r.principals.is_empty() {
        out.push_str(&format!("\nprincipals   {}\n", r.principals.join(", ")));
    }
    for (i, g) in r.permissions.iter().enumerate() {
        let label = if i == 0 { "permissions" } else { "" };
        out.push_str(&format!("{label:<11}  {}\n", grant_line(g)));
    }
    for d in &r.diagnostics {
        out.push_str(&format!("diagnostic   {}\n", style.paint(d, Paint::Warn)));
    }
    out
}

fn render_pool(p: &PoolExplain, style: Style) -> String {
    let paint = match p.decision {
        "accepted" => Paint::Good,
        "matched, not selected" => Paint::Warn,
        _ => Paint::Dim,
    };
    let mut head = format!(
        "{} {}  {}",
        style.paint("pool", Paint::Bold),
        style.paint(&p.id, Paint::Bold),
        style.paint(p.decision, paint)
    );
    if let Some(principal) = &p.principal {
        head.push_str(&format!(" as {principal}"));
    }
    if let Some(reason) = &p.reason {
        head.push_str(&format!(": {reason}"));
    }
    let mut out = format!("{head}\n");
    let mut rows = vec![vec![
        Cell::painted("filter", Paint::Dim),
        Cell::plain(&p.filter),
    ]];
    if p.evaluated {
        let label = match p.operator {
            Some(op) => format!("operands {op}"),
            None => "value".to_owned(),
        };
        for (i, o) in p.operands.iter().enumerate() {
            let (v, paint) = match (o.value, &o.error) {
                (Some(true), _) => ("true".to_owned(), Paint::Good),
                (Some(false), _) => ("false".to_owned(), Paint::Bad),
                (None, e) => (
                    format!("error: {}", e.as_deref().unwrap_or("?")),
                    Paint::Warn,
                ),
            };
            rows.push(vec![
                Cell::painted(
                    if i == 0 { label.clone() } else { String::new() },
                    Paint::Dim,
                ),
                Cell::painted(v, paint),
                Cell::plain(&o.expr),
            ]);
        }
        for (i, c) in p.claims.iter().enumerate() {
            let v = if c.present {
                c.value.to_string()
            } else {
                "(absent)".to_owned()
            };
            rows.push(vec![
                Cell::painted(if i == 0 { "claims" } else { "" }, Paint::Dim),
                Cell::plain(&c.claim),
                Cell::plain(v),
            ]);
        }
        let identity = match (&p.identity, &p.identity_error) {
            (Some(id), _) => format!("{id:?}"),
            (None, Some(e)) => format!("none: {e}"),
            (None, None) => "-".to_owned(),
        };
        rows.push(vec![
            Cell::painted("identity", Paint::Dim),
            Cell::plain(&p.identity_claim),
            Cell::plain(identity),
        ]);
    } else {
        rows.push(vec![
            Cell::painted("identity", Paint::Dim),
            Cell::plain(&p.identity_claim),
        ]);
    }
    out.push_str(&table(&rows, 2, style));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_print_bare_other_values_as_json() {
        assert_eq!(value_text(&serde_json::json!("kafka")), "kafka");
        assert_eq!(value_text(&serde_json::json!(["kafka"])), r#"["kafka"]"#);
    }

    #[test]
    fn cli_error_is_usable_as_an_error() {
        let e = super::super::CliError::usage("x");
        assert_eq!(e.to_string(), "x");
    }
}
