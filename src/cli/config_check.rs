//! `poolgate config check`: loads and compiles a configuration (no network) and prints a
//! summary, or every error, one per line.

use std::io::Write;
use std::path::PathBuf;

use serde_json::{Value, json};

use super::style::Paint;
use super::{CliError, CliResult, Context, EXIT_OK, EXIT_USAGE, Format, json_line, write_error};
use crate::config::{Config, UpstreamConfig, UpstreamSasl};
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
        "gateway": {
            "upstream": upstream_summary(&config.gateway().upstream),
        },
        "providers": providers,
        "pools": pools,
    })
}

/// `[gateway.upstream]` without its secrets: where they come from, never what they are.
fn upstream_summary(u: &UpstreamConfig) -> Value {
    let sasl = u.sasl.as_ref().map(|s| {
        let mut v = json!({"mechanism": s.mechanism()});
        match s {
            UpstreamSasl::Plain { username, .. } | UpstreamSasl::Scram { username, .. } => {
                v["username"] = json!(username);
            }
            UpstreamSasl::OAuthBearer(o) => {
                v["token_endpoint"] = json!(o.token_endpoint.as_str());
                v["client_id"] = json!(o.client_id);
            }
        }
        v
    });
    json!({
        "security_protocol": u.security_protocol(),
        "tls_ca_file": u.tls.as_ref().map(|t| t.ca_file.display().to_string()),
        "tls_client_certificate": u.tls.as_ref().is_some_and(|t| t.client_cert.is_some()),
        "sasl": sasl,
    })
}

/// The human line for `[gateway.upstream]`, such as `SASL_SSL  SCRAM-SHA-512 as gw`.
fn upstream_text(u: &UpstreamConfig) -> String {
    let mut text = u.security_protocol().to_owned();
    if u.tls.as_ref().is_some_and(|t| t.client_cert.is_some()) {
        text.push_str("  client certificate");
    }
    match &u.sasl {
        Some(s @ (UpstreamSasl::Plain { username, .. } | UpstreamSasl::Scram { username, .. })) => {
            text.push_str(&format!("  {} as {username}", s.mechanism()));
        }
        Some(UpstreamSasl::OAuthBearer(o)) => {
            text.push_str(&format!(
                "  OAUTHBEARER as {} ({})",
                o.client_id, o.token_endpoint
            ));
        }
        _ => {}
    }
    text
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
                        json!({
                            "file": e.file,
                            "line": e.line,
                            "context": e.context(),
                            "section": e.section.header(),
                            "id": e.section.id(),
                            "field": e.field,
                            "message": e.message,
                        })
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
            let upstream = &config.gateway().upstream;
            if upstream.tls.is_some() || upstream.sasl.is_some() {
                text.push_str(&format!("upstream  {}\n", upstream_text(upstream)));
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
