//! `poolgate config check`: loads and compiles a configuration (no network) and prints a
//! summary, or every error, one per line.

use std::io::Write;
use std::path::PathBuf;

use serde_json::{Value, json};

use super::style::Paint;
use super::{CliError, CliResult, Context, EXIT_OK, EXIT_USAGE, Format, json_line, write_error};
use crate::config::Config;
use crate::keystore::KeySource;
use crate::policy::Audiences;

/// `poolgate config check FILE`.
#[derive(Clone, Debug, clap::Args)]
pub struct ConfigCheckArgs {
    /// The configuration file (TOML).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

fn source_text(source: &KeySource) -> String {
    match source {
        KeySource::Discovery(u) => format!("discovery_url {u}"),
        KeySource::JwksUrl(u) => format!("jwks_uri {u}"),
        KeySource::JwksFile(p) => format!("jwks_file {}", p.display()),
    }
}

/// A configuration's summary as JSON.
fn summary(config: &Config) -> Value {
    let providers: Vec<Value> = config
        .providers()
        .iter()
        .map(|p| {
            json!({
                "id": p.id,
                "issuer": p.policy.issuer(),
                "source": source_text(&p.source),
                "audiences": match p.policy.audiences() {
                    Audiences::OneOf(list) => json!(list),
                    Audiences::DangerousAcceptAny => json!("any (allow_any_audience)"),
                },
                "algorithms": p.policy.algorithms().map(|a| a.as_str()).collect::<Vec<_>>(),
            })
        })
        .collect();
    let pools: Vec<Value> = config
        .pools()
        .pools()
        .iter()
        .map(|p| {
            json!({
                "id": p.id(),
                "provider": p.provider_id(),
                "principal": p.principal(),
                "identity_claim": p.identity_claim().source(),
                "filter": p.filter().source(),
                "grants": p.grants().iter().map(ToString::to_string).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "ok": true,
        "file": config.file(),
        "cluster": {
            "id": config.cluster().id,
            "require_logical_cluster": config.cluster().require_logical_cluster,
        },
        "providers": providers,
        "pools": pools,
    })
}

/// Runs `poolgate config check`.
///
/// # Errors
/// Every configuration error, one per line (exit 2).
pub(crate) fn run(args: &ConfigCheckArgs, ctx: &Context) -> CliResult {
    let config = match Config::load(&args.file) {
        Ok(c) => c,
        Err(errors) => {
            if ctx.format == Format::Json {
                let list: Vec<Value> = errors
                    .0
                    .iter()
                    .map(|e| {
                        json!({"file": e.file, "line": e.line, "context": e.context, "message": e.message})
                    })
                    .collect();
                let mut out = std::io::stdout().lock();
                json_line(&mut out, &json!({"ok": false, "errors": list}))?;
                out.flush().map_err(write_error)?;
            }
            return Err(CliError {
                lines: errors.0.iter().map(ToString::to_string).collect(),
                code: EXIT_USAGE,
            });
        }
    };
    let s = summary(&config);
    let mut out = std::io::stdout().lock();
    match ctx.format {
        Format::Json => json_line(&mut out, &s)?,
        Format::Human => {
            let style = ctx.style;
            let plural =
                |n: usize, one: &str| format!("{n} {one}{}", if n == 1 { "" } else { "s" });
            let mut text = format!(
                "{}  {}: {}, {}\n",
                style.paint("ok", Paint::Good),
                config.file(),
                plural(config.providers().len(), "provider"),
                plural(config.pools().pools().len(), "pool")
            );
            if let Some(id) = &config.cluster().id {
                text.push_str(&format!(
                    "cluster   {id}{}\n",
                    if config.cluster().require_logical_cluster {
                        " (logicalCluster required)"
                    } else {
                        ""
                    }
                ));
            }
            for p in config.providers() {
                text.push_str(&format!(
                    "provider  {}  {}  ({})\n",
                    style.paint(&p.id, Paint::Bold),
                    p.policy.issuer(),
                    source_text(&p.source)
                ));
            }
            for p in config.pools().pools() {
                text.push_str(&format!(
                    "pool      {}  provider {}  identity {}  filter {}\n",
                    style.paint(p.id(), Paint::Bold),
                    p.provider_id(),
                    p.identity_claim().source(),
                    p.filter().source()
                ));
                for g in p.grants() {
                    text.push_str(&format!("          {g}\n"));
                }
            }
            write!(out, "{text}").map_err(write_error)?;
        }
    }
    out.flush().map_err(write_error)?;
    Ok(EXIT_OK)
}
