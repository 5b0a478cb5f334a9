//! `poolgate authorize`: logs a token in, then asks its session one authorization question.

use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;

use super::style::Paint;
use super::{
    CliError, CliResult, Context, EXIT_OK, EXIT_REJECTED, Format, json_line, load_config,
    login_request, parse_at, start_gate, write_error,
};
use crate::authz::{Authorization, AuthzReason, Decision, Grant, GrantView, Operation, Resource};

/// `poolgate authorize`: may this token do OP on TYPE:NAME?
#[derive(Clone, Debug, clap::Args)]
pub struct AuthorizeArgs {
    /// The configuration file (TOML).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// The token.
    #[arg(long, value_name = "JWT")]
    pub token: String,
    /// The Kafka operation: Read, Write, Create, Delete, Alter, Describe, ClusterAction,
    /// DescribeConfigs, AlterConfigs, IdempotentWrite or All; only those Kafka defines on the
    /// resource's type (not Write on a Group, for instance).
    #[arg(long, value_name = "OP")]
    pub operation: String,
    /// The resource: `Topic:NAME`, `Group:NAME`, `TransactionalId:NAME` or
    /// `Cluster:kafka-cluster`.
    #[arg(long, value_name = "TYPE:NAME")]
    pub resource: String,
    /// The SASL extension `identityPoolId`: the pools to consider (comma-separated).
    #[arg(long, value_name = "ID[,ID...]")]
    pub pool: Option<String>,
    /// The SASL extension `logicalCluster`.
    #[arg(long, value_name = "ID")]
    pub logical_cluster: Option<String>,
    /// Decide as of this time instead of now: RFC 3339, unix seconds, or unix
    /// milliseconds with `ms` (`1796528486000ms`); 13 digits or more without `ms` is refused.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
}

/// The answer, as `--format json` prints it: a record of `"type": "authorization"`.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename = "authorization")]
struct Answer<'a> {
    decision: Decision,
    operation: Operation,
    resource: String,
    grant: Option<GrantJson<'a>>,
    reason: String,
    principals: &'a [String],
}

/// The deciding grant: its JSON view and where it came from (`position` counts from 1, as
/// configuration errors do).
#[derive(Debug, Serialize)]
pub(crate) struct GrantJson<'a> {
    #[serde(flatten)]
    view: GrantView<'a>,
    pool: &'a str,
    position: usize,
    role: Option<crate::authz::Role>,
}

impl<'a> GrantJson<'a> {
    pub(crate) fn of(g: &'a Grant) -> GrantJson<'a> {
        GrantJson {
            view: g.view(),
            pool: &g.origin.pool,
            position: g.origin.index + 1,
            role: g.origin.role,
        }
    }
}

/// `allowed by grant 1 of pool `analytics` (role DeveloperRead): allow Read,Describe on Topic:analytics-*`.
pub(crate) fn reason_text(a: &Authorization<'_>) -> String {
    let what = match a.reason {
        AuthzReason::AllowedBy => "allowed by".to_owned(),
        AuthzReason::ImpliedBy(op) => format!("implied by {op}, allowed by"),
        AuthzReason::DeniedBy => "denied by".to_owned(),
        AuthzReason::NoGrant => return "no grant allows it (denied by default)".to_owned(),
    };
    match a.grant {
        Some(g) => {
            let role = g
                .origin
                .role
                .map(|r| format!(" (role {r})"))
                .unwrap_or_default();
            format!(
                "{what} grant {} of pool `{}`{role}: {g}",
                g.origin.index + 1,
                g.origin.pool
            )
        }
        None => what,
    }
}

/// Runs `poolgate authorize`.
///
/// # Errors
/// A usage, configuration or file error (exit 2).
pub(crate) fn run(args: &AuthorizeArgs, ctx: &Context) -> CliResult {
    let at = parse_at(args.at.as_deref())?;
    let operation: Operation = args
        .operation
        .parse()
        .map_err(|e| CliError::usage(format!("--operation: {e}")))?;
    let resource =
        Resource::parse(&args.resource).map_err(|e| CliError::usage(format!("--resource: {e}")))?;
    // A pair Kafka never asks about would only ever be "denied by default": say why instead.
    resource
        .resource_type
        .check(operation)
        .map_err(|e| CliError::usage(format!("--operation: {e}")))?;
    let config = load_config(&args.config)?;
    let rt = super::runtime()?;
    rt.block_on(async {
        let gate = start_gate(config, at).await?;
        let now = at.unwrap_or_else(|| gate.validator().clock().now());
        let request = login_request(args.pool.as_deref(), args.logical_cluster.as_deref());
        let token = args.token.trim();
        let mut out = std::io::stdout().lock();
        let session = match gate.login(token, request.clone(), now).await {
            Ok(session) => session,
            Err(_) => {
                // Not authenticated: print what `check` prints for it.
                let report = gate.check(0, token, request, now).await;
                match ctx.format {
                    Format::Json => json_line(&mut out, &report)?,
                    Format::Human => writeln!(
                        out,
                        "{}",
                        super::check::render_human(&report, ctx.style, now)
                    )
                    .map_err(write_error)?,
                }
                out.flush().map_err(write_error)?;
                return Ok(EXIT_REJECTED);
            }
        };
        let answer = session.authorize(operation, &resource);
        let json = Answer {
            decision: answer.decision,
            operation,
            resource: resource.to_string(),
            grant: answer.grant.map(GrantJson::of),
            reason: reason_text(&answer),
            principals: session.principals(),
        };
        match ctx.format {
            Format::Json => json_line(&mut out, &json)?,
            Format::Human => {
                let paint = if answer.is_allowed() {
                    Paint::Good
                } else {
                    Paint::Bad
                };
                writeln!(
                    out,
                    "{}  {operation} on {resource}  as {}\n  {}",
                    ctx.style.paint(answer.decision.as_str(), paint),
                    session.principals().join(", "),
                    json.reason
                )
                .map_err(write_error)?;
            }
        }
        out.flush().map_err(write_error)?;
        Ok(if answer.is_allowed() {
            EXIT_OK
        } else {
            EXIT_REJECTED
        })
    })
}
