//! The `poolgate` command line: parses the arguments with clap and dispatches to
//! [`poolgate::cli`], where every command lives, except `gateway`, which lives in this binary
//! (`src/gateway/`) to show that the library's public API is enough to embed poolgate.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod gateway;
use poolgate::cli::{self, Context, Format};

/// Broker-side Kafka SASL/OAUTHBEARER: check which identity pools accept a token, explain why,
/// and run the whole OAuth flow locally.
#[derive(Debug, Parser)]
#[command(
    name = "poolgate",
    version,
    propagate_version = true,
    max_term_width = 100
)]
struct Args {
    #[command(subcommand)]
    command: Command,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// More log output on stderr: -v info, -vv debug, -vvv trace (RUST_LOG overrides).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole flow locally: issuer, tokens, SASL logins, pools, permissions.
    Demo(cli::DemoArgs),
    /// Check tokens the way a gateway would: which pools accept them, and why not.
    Check(cli::CheckArgs),
    /// Explain one token: each pool's filter operands, the claims read, the failed rule.
    Explain(cli::ExplainArgs),
    /// Ask whether a token may do an operation on a resource.
    Authorize(cli::AuthorizeArgs),
    /// Show a token's header and claims, NOT verified.
    Decode(cli::DecodeArgs),
    /// Fetch and list each provider's keys, and the keys skipped with why.
    Jwks(cli::JwksArgs),
    /// Configuration commands.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Run the local OIDC issuer until Ctrl-C.
    Issuer(cli::IssuerArgs),
    /// Fetch one token from an issuer with the client_credentials grant.
    Token(cli::TokenArgs),
    /// Run the Kafka gateway: SASL/OAUTHBEARER logins, permissions, forwarding to one broker.
    Gateway(gateway::GatewayArgs),
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Load and compile a configuration; print a summary or every error.
    Check(cli::ConfigCheckArgs),
}

fn main() -> ExitCode {
    let args = Args::parse();
    if matches!(args.command, Command::Gateway(_)) {
        cli::init_tracing_with(args.verbose, "warn,poolgate::audit=info");
    } else {
        cli::init_tracing(args.verbose);
    }
    let ctx = Context::detect(args.format);
    let result = match &args.command {
        Command::Demo(a) => cli::demo(a, &ctx),
        Command::Check(a) => cli::check(a, &ctx),
        Command::Explain(a) => cli::explain(a, &ctx),
        Command::Authorize(a) => cli::authorize(a, &ctx),
        Command::Decode(a) => cli::decode(a, &ctx),
        Command::Jwks(a) => cli::jwks(a, &ctx),
        Command::Config(ConfigCommand::Check(a)) => cli::config_check(a, &ctx),
        Command::Issuer(a) => cli::issuer(a, &ctx),
        Command::Token(a) => cli::token(a, &ctx),
        Command::Gateway(a) => gateway::run(a),
    };
    ExitCode::from(cli::report(result))
}
