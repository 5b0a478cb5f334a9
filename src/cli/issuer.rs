//! `poolgate issuer` runs the local test issuer for other tools (a librdkafka client doing
//! OIDC client_credentials, a test harness); `poolgate token` fetches one token from an issuer.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::style::Paint;
use super::{CliError, CliResult, Context, EXIT_OK, Format, json_line, write_error};
use crate::client::{ClientCredentials, TokenClient};
use crate::fetch::FetchOptions;
use crate::testkit::{Client, IssuerConfig, TestIssuer};

/// The clients the local issuer starts with (`testdata/cli/clients.toml`).
pub(crate) const DEFAULT_CLIENTS: &str = include_str!("../../testdata/cli/clients.toml");

/// `poolgate issuer`: run a local OIDC issuer until Ctrl-C.
#[derive(Clone, Debug, clap::Args)]
pub struct IssuerArgs {
    /// The address to listen on; a loopback address (the issuer serves plain http).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// A TOML file of clients (`[[clients]]` with `id`, `secret`, optional `claims` and
    /// `lifetime`); default: the clients of testdata/cli/clients.toml.
    #[arg(long, value_name = "FILE")]
    pub clients: Option<PathBuf>,
}

/// `poolgate token`: fetch one token with the client_credentials grant.
#[derive(Clone, Debug, clap::Args)]
pub struct TokenArgs {
    /// The issuer: its discovery document is `{issuer}/.well-known/openid-configuration`,
    /// whose `issuer` must equal it. https, or http to a loopback host.
    #[arg(long, value_name = "URL")]
    pub issuer: String,
    /// The client id.
    #[arg(long, value_name = "ID")]
    pub client_id: String,
    /// The client secret (sent with client_secret_basic).
    #[arg(long, value_name = "SECRET")]
    pub client_secret: String,
    /// The scope to ask for.
    #[arg(long, value_name = "SCOPE")]
    pub scope: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientsFile {
    clients: Vec<RawClient>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClient {
    id: String,
    secret: String,
    #[serde(default)]
    claims: Map<String, Value>,
    lifetime: Option<String>,
}

/// Parses a clients file (`[[clients]]` with `id`, `secret`, optional `claims`, `lifetime`).
///
/// # Errors
/// A usage error naming the file, the line and what is wrong.
pub fn parse_clients(text: &str, file: &str) -> Result<Vec<Client>, CliError> {
    let parsed: ClientsFile = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        let at = line.map(|l| format!(":{l}")).unwrap_or_default();
        CliError::usage(format!("{file}{at}: {}", e.message().trim()))
    })?;
    let mut errors = Vec::new();
    let mut clients = Vec::new();
    for (i, raw) in parsed.clients.into_iter().enumerate() {
        let ctx = format!("{file}: client {}", i + 1);
        if raw.id.is_empty() || raw.secret.is_empty() {
            errors.push(format!("{ctx}: `id` and `secret` must not be empty"));
            continue;
        }
        let lifetime = match raw.lifetime.as_deref().map(crate::config::parse_duration) {
            None => crate::testkit::DEFAULT_LIFETIME,
            Some(Ok(d)) if d >= Duration::from_secs(1) => d,
            Some(Ok(_)) => {
                errors.push(format!("{ctx}, field `lifetime`: must be at least 1s"));
                continue;
            }
            Some(Err(e)) => {
                errors.push(format!("{ctx}, field `lifetime`: {e}"));
                continue;
            }
        };
        let mut client = Client::new(raw.id, raw.secret).lifetime(lifetime);
        client.claims = raw.claims;
        clients.push(client);
    }
    if !errors.is_empty() {
        return Err(CliError {
            lines: errors,
            code: super::EXIT_USAGE,
        });
    }
    if clients.is_empty() {
        return Err(CliError::usage(format!("{file}: no `[[clients]]`")));
    }
    Ok(clients)
}

/// Runs `poolgate issuer`.
///
/// # Errors
/// A usage or file error (exit 2).
pub(crate) fn run_issuer(args: &IssuerArgs, ctx: &Context) -> CliResult {
    if !args.listen.ip().is_loopback() {
        return Err(CliError::usage(format!(
            "--listen: `{}` is not a loopback address; the local issuer serves plain http and is for this machine only (use 127.0.0.1:PORT)",
            args.listen
        )));
    }
    let clients = match &args.clients {
        None => parse_clients(DEFAULT_CLIENTS, "testdata/cli/clients.toml")?,
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                CliError::usage(format!("--clients: cannot read `{}`: {e}", path.display()))
            })?;
            parse_clients(&text, &path.display().to_string())?
        }
    };
    let rt = super::runtime()?;
    rt.block_on(async {
        let issuer = TestIssuer::start_with(IssuerConfig {
            clients: clients.clone(),
            listen: Some(args.listen),
            ..IssuerConfig::default()
        })
        .await
        .map_err(|e| CliError::usage(format!("--listen: cannot listen on `{}`: {e}", args.listen)))?;
        let mut out = std::io::stdout().lock();
        let ids: Vec<&str> = clients.iter().map(|c| c.id.as_str()).collect();
        match ctx.format {
            Format::Json => json_line(
                &mut out,
                &json!({
                    "type": "issuer",
                    "issuer": issuer.issuer(),
                    "discovery_url": issuer.discovery_url().as_str(),
                    "token_endpoint": issuer.token_url().as_str(),
                    "jwks_uri": issuer.jwks_url().as_str(),
                    "audience": issuer.audience(),
                    "clients": ids,
                }),
            )?,
            Format::Human => {
                let first = &clients[0];
                writeln!(
                    out,
                    "{}\n\
                     issuer          {}\n\
                     discovery URL   {}\n\
                     token endpoint  {}\n\
                     jwks            {}\n\
                     audience        {}\n\
                     clients         {}\n\n\
                     fetch a token:  poolgate token --issuer {} --client-id {} --client-secret {}\n\
                     librdkafka:     sasl.mechanism=OAUTHBEARER sasl.oauthbearer.method=oidc\n\
                     \x20               sasl.oauthbearer.token.endpoint.url={}\n\
                     \x20               sasl.oauthbearer.client.id={} sasl.oauthbearer.client.secret=...\n\n\
                     Ctrl-C stops it.",
                    ctx.style.paint("local OIDC issuer running (plain http, for this machine only)", Paint::Bold),
                    issuer.issuer(),
                    issuer.discovery_url(),
                    issuer.token_url(),
                    issuer.jwks_url(),
                    issuer.audience(),
                    ids.join(", "),
                    issuer.issuer(),
                    first.id,
                    first.secret,
                    issuer.token_url(),
                    first.id,
                )
                .map_err(write_error)?;
            }
        }
        out.flush().map_err(write_error)?;
        drop(out);
        tokio::signal::ctrl_c()
            .await
            .map_err(|e| CliError::usage(format!("cannot wait for Ctrl-C: {e}")))?;
        super::warn("issuer stopped");
        Ok(EXIT_OK)
    })
}

/// Runs `poolgate token`.
///
/// # Errors
/// A usage error (exit 2) for a bad or insecure URL or a discovery document naming another
/// issuer; exit 1 when the issuer refused or could not be reached.
pub(crate) fn run_token(args: &TokenArgs, ctx: &Context) -> CliResult {
    // Plain http is accepted only to a loopback host (the local issuer).
    let options = FetchOptions {
        insecure_allow_http: true,
        ..FetchOptions::default()
    };
    let client = TokenClient::new(options).map_err(|e| CliError::usage(e.to_string()))?;
    let credentials = ClientCredentials {
        client_id: args.client_id.clone(),
        client_secret: args.client_secret.clone(),
        scope: args.scope.clone(),
    };
    let rt = super::runtime()?;
    let token = rt
        .block_on(client.fetch_for_issuer(&args.issuer, &credentials))
        .map_err(|e| {
            if e.is_usage() {
                CliError::usage(format!("--issuer: {e}"))
            } else {
                CliError::failed(e.to_string())
            }
        })?;
    let mut out = std::io::stdout().lock();
    match ctx.format {
        Format::Json => {
            // The token response as the IdP sent it, with the record type.
            let mut record = serde_json::to_value(&token)
                .map_err(|e| CliError::failed(format!("cannot encode JSON output: {e}")))?;
            if let Some(fields) = record.as_object_mut() {
                fields.insert("type".to_owned(), json!("token_response"));
            }
            json_line(&mut out, &record)?;
        }
        Format::Human => writeln!(out, "{}", token.access_token).map_err(write_error)?,
    }
    out.flush().map_err(write_error)?;
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_clients_parse() {
        let clients = parse_clients(DEFAULT_CLIENTS, "clients.toml").unwrap();
        assert!(clients.iter().any(|c| c.id == "svc-analytics"));
        let orders = clients.iter().find(|c| c.id == "svc-orders").unwrap();
        assert_eq!(orders.lifetime, Duration::from_secs(900));
    }

    #[test]
    fn bad_client_files_name_the_line() {
        let e = parse_clients(
            "[[clients]]\nid = \"a\"\nsecret = \"b\"\ncolour = 1\n",
            "c.toml",
        )
        .unwrap_err();
        assert!(e.lines[0].starts_with("c.toml:4: "), "{e:?}");
        let e = parse_clients(
            "[[clients]]\nid = \"a\"\nsecret = \"b\"\nlifetime = \"soon\"\n",
            "c.toml",
        )
        .unwrap_err();
        assert!(e.lines[0].contains("client 1, field `lifetime`"), "{e:?}");
    }
}
