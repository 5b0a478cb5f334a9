//! `poolgate demo`: the whole OAuth flow on one machine with nothing set up. It starts the
//! local issuer, loads `testdata/demo.toml` pointed at it, obtains tokens from the issuer's
//! token endpoint with the client_credentials grant, adds the tokens a user must see rejected,
//! runs each through the SASL path ([`Gate::authenticate`]) and prints the token × pool
//! matrix, the sessions and a few authorization answers.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::authorize::GrantJson;
use super::issuer::DEFAULT_CLIENTS;
use super::style::Paint;
use super::{
    Cell, CliError, CliResult, Context, EXIT_OK, EXIT_REJECTED, Format, grant_line, json_line,
    parse_clients, request_of, start_gate, table, write_error,
};
use crate::authz::{Operation, Resource};
use crate::client::{ClientCredentials, TokenClient};
use crate::config::Config;
use crate::fetch::FetchOptions;
use crate::gate::{Gate, Rejection, Session};
use crate::report::CheckReport;
use crate::sasl::ClientFirstMessage;
use crate::testkit::{Client, IssuerConfig, SigningAlg, SigningKey, TestIssuer};
use crate::time::UnixTime;

/// The demo's configuration template (`testdata/demo.toml`).
pub(crate) const DEMO_TOML: &str = include_str!("../../testdata/demo.toml");

const CLUSTER: &str = "lkc-demo";

/// `poolgate demo`: run the whole flow locally and print what happened.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct DemoArgs {}

/// One token of the demo and how it is presented.
struct Row {
    label: &'static str,
    /// Where the token came from.
    how: &'static str,
    extensions: Vec<(&'static str, &'static str)>,
    token: String,
    /// `accepted` or the rejection code the demo expects.
    expect: &'static str,
}

struct Outcome {
    row: Row,
    sasl: Result<Session, Rejection>,
    report: CheckReport,
}

/// The demo's configuration text, pointed at a running issuer.
pub(crate) fn demo_config(issuer: &TestIssuer) -> String {
    DEMO_TOML
        .replace("{issuer}", issuer.issuer())
        .replace("{discovery_url}", issuer.discovery_url().as_str())
}

async fn fetch(
    client: &TokenClient,
    endpoint: &url::Url,
    clients: &[Client],
    id: &str,
) -> Result<String, CliError> {
    let c = clients
        .iter()
        .find(|c| c.id == id)
        .ok_or_else(|| CliError::failed(format!("the demo's client `{id}` is not configured")))?;
    let creds = ClientCredentials {
        client_id: c.id.clone(),
        client_secret: c.secret.clone(),
        scope: None,
    };
    client
        .fetch(endpoint, &creds)
        .await
        .map(|t| t.access_token)
        .map_err(|e| CliError::failed(format!("client `{id}`: {e}")))
}

async fn run_row(gate: &Gate, index: usize, row: Row, now: UnixTime) -> Result<Outcome, CliError> {
    let mut msg = ClientFirstMessage::new(row.token.clone());
    for (k, v) in &row.extensions {
        msg = msg.extension(*k, *v);
    }
    let msg = msg
        .build()
        .map_err(|e| CliError::failed(format!("token `{}`: {e}", row.label)))?;
    let sasl = gate.authenticate(&msg.to_bytes()).await;
    let report = gate.check(index, msg.token(), request_of(&msg), now).await;
    Ok(Outcome { row, sasl, report })
}

/// Runs `poolgate demo`.
///
/// # Errors
/// When the local issuer or the gate cannot start.
pub(crate) fn run(_args: &DemoArgs, ctx: &Context) -> CliResult {
    let rt = super::runtime()?;
    rt.block_on(demo(ctx))
}

async fn demo(ctx: &Context) -> CliResult {
    let style = ctx.style;
    let clients = parse_clients(DEFAULT_CLIENTS, "testdata/cli/clients.toml")?;
    let issuer = TestIssuer::start_with(IssuerConfig {
        clients: clients.clone(),
        ..IssuerConfig::default()
    })
    .await
    .map_err(|e| CliError::failed(format!("cannot start the local issuer: {e}")))?;
    let text = demo_config(&issuer);
    let config =
        Config::parse(&text, "testdata/demo.toml", Path::new("testdata")).map_err(|e| {
            CliError {
                lines: e.0.iter().map(ToString::to_string).collect(),
                code: super::EXIT_USAGE,
            }
        })?;
    let pool_ids: Vec<String> = config
        .pools()
        .pools()
        .iter()
        .map(|p| p.id().to_owned())
        .collect();
    let gate = start_gate(config, None).await?;
    let now = gate.validator().clock().now();
    let client = TokenClient::new(FetchOptions {
        insecure_allow_http: true,
        ..FetchOptions::default()
    })
    .map_err(|e| CliError::failed(e.to_string()))?;
    let endpoint = client
        .token_endpoint(issuer.issuer())
        .await
        .map_err(|e| CliError::failed(e.to_string()))?;

    let analytics = fetch(&client, &endpoint, &clients, "svc-analytics").await?;
    let ops = fetch(&client, &endpoint, &clients, "ops-bot").await?;
    let orders = fetch(&client, &endpoint, &clients, "svc-orders").await?;
    let marketing = fetch(&client, &endpoint, &clients, "svc-marketing").await?;
    let analyst = |b: crate::testkit::TokenBuilder| {
        b.claim("sub", json!("svc-analytics"))
            .claim("client_id", json!("svc-analytics"))
            .claim("groups", json!(["analytics"]))
            .claim("tenant", json!("acme"))
    };
    let expired = analyst(issuer.mint())
        .issued_at(now - Duration::from_secs(2 * 3600))
        .lifetime(Duration::from_secs(3600))
        .sign();
    let wrong_aud = analyst(issuer.mint())
        .claim("aud", json!("billing-api"))
        .sign();
    // Signed by a key that is not the IdP's, under the kid of the IdP's active key.
    let active_kid = issuer.active_key(SigningAlg::RS256).kid().to_owned();
    let attacker = Arc::new(SigningKey::generate(SigningAlg::RS256, active_kid));
    let forged = analyst(issuer.mint()).key(attacker).sign();

    let lc = ("logicalCluster", CLUSTER);
    let mut rows = vec![
        Row {
            label: "svc-analytics",
            how: "token endpoint",
            extensions: vec![lc],
            token: analytics.clone(),
            expect: "accepted",
        },
        Row {
            label: "ops-bot",
            how: "token endpoint",
            extensions: vec![lc],
            token: ops,
            expect: "accepted",
        },
        Row {
            label: "svc-orders",
            how: "token endpoint",
            extensions: vec![lc, ("identityPoolId", "orders")],
            token: orders,
            expect: "accepted",
        },
        Row {
            label: "svc-marketing",
            how: "token endpoint",
            extensions: vec![lc],
            token: marketing,
            expect: "no_pool_matched",
        },
        Row {
            label: "unknown pool requested",
            how: "svc-analytics's token",
            extensions: vec![lc, ("identityPoolId", "payments")],
            token: analytics.clone(),
            expect: "unknown_pool",
        },
        Row {
            label: "another cluster",
            how: "svc-analytics's token",
            extensions: vec![("logicalCluster", "lkc-other")],
            token: analytics.clone(),
            expect: "wrong_cluster",
        },
        Row {
            label: "expired",
            how: "minted, exp 1h ago",
            extensions: vec![lc],
            token: expired,
            expect: "expired",
        },
        Row {
            label: "wrong audience",
            how: "minted, aud billing-api",
            extensions: vec![lc],
            token: wrong_aud,
            expect: "audience_mismatch",
        },
        Row {
            label: "forged signature",
            how: "another key, the IdP's kid",
            extensions: vec![lc],
            token: forged,
            expect: "bad_signature",
        },
    ];
    let mut outcomes = Vec::new();
    for (i, row) in rows.drain(..).enumerate() {
        outcomes.push(run_row(&gate, i, row, now).await?);
    }

    // The IdP rotates in a new signing key; the token endpoint signs with it at once.
    let store = gate
        .validator()
        .providers()
        .first()
        .map(|p| p.store().clone())
        .ok_or_else(|| CliError::failed("the demo configuration has no provider"))?;
    let before = store.stats();
    let new_kid = issuer.rotate(SigningAlg::RS256);
    let rotated = fetch(&client, &endpoint, &clients, "svc-analytics").await?;
    let unpublished_key = Arc::new(SigningKey::generate(
        SigningAlg::RS256,
        "rs256-not-yet-published",
    ));
    let unpublished = analyst(issuer.mint()).key(unpublished_key).sign();
    let late = vec![
        Row {
            label: ROTATION_TOKENS[0],
            how: "token endpoint, new key",
            extensions: vec![lc],
            token: rotated,
            expect: "accepted",
        },
        Row {
            label: ROTATION_TOKENS[1],
            how: "minted, unpublished kid",
            extensions: vec![lc],
            token: unpublished,
            expect: "unknown_key",
        },
    ];
    let base = outcomes.len();
    for (i, row) in late.into_iter().enumerate() {
        outcomes.push(run_row(&gate, base + i, row, now).await?);
    }
    let after = store.stats();

    let questions: [(&str, Operation, &str); 8] = [
        ("svc-analytics", Operation::Read, "Topic:analytics-clicks"),
        ("svc-analytics", Operation::Read, "Topic:analytics-secret"),
        (
            "svc-analytics",
            Operation::Write,
            "Topic:tenant-acme-orders",
        ),
        (
            "svc-analytics",
            Operation::Write,
            "Topic:tenant-globex-orders",
        ),
        ("ops-bot", Operation::Delete, "Topic:payments"),
        ("svc-orders", Operation::Write, "Topic:orders"),
        (
            "svc-orders",
            Operation::IdempotentWrite,
            "Cluster:kafka-cluster",
        ),
        ("svc-orders", Operation::Read, "Topic:orders"),
    ];
    let mut answers = Vec::new();
    for (label, op, resource) in questions {
        let session = outcomes
            .iter()
            .find(|o| o.row.label == label)
            .and_then(|o| o.sasl.as_ref().ok());
        let resource = Resource::parse(resource)
            .map_err(|e| CliError::failed(format!("`{resource}`: {e}")))?;
        if let Some(session) = session {
            let a = session.authorize(op, &resource);
            answers.push(Answer {
                label,
                op,
                resource: resource.to_string(),
                decision: a.decision.as_str(),
                reason: super::authorize::reason_text(&a),
                grant: a
                    .grant
                    .and_then(|g| serde_json::to_value(GrantJson::of(g)).ok()),
            });
        }
    }

    let mut surprises = Vec::new();
    for o in &outcomes {
        let got = match &o.sasl {
            Ok(_) => "accepted",
            Err(r) => r.code(),
        };
        let checked = o
            .report
            .error
            .as_ref()
            .map_or("accepted", |e| e.code.as_str());
        if got != o.row.expect || checked != got {
            surprises.push(format!(
                "token `{}`: expected {}, the SASL path said {got} and check said {checked}",
                o.row.label, o.row.expect
            ));
        }
    }

    let results = Results {
        issuer: &issuer,
        endpoint: &endpoint,
        pools: &pool_ids,
        outcomes: &outcomes,
        answers: &answers,
        rotation: (
            &new_kid,
            before.unknown_kid_refetches,
            after.unknown_kid_refetches,
        ),
    };
    let mut out = std::io::stdout().lock();
    match ctx.format {
        Format::Json => {
            for r in &records(&results) {
                json_line(&mut out, r)?;
            }
        }
        Format::Human => {
            write!(out, "{}", render(&results, style)).map_err(write_error)?;
        }
    }
    out.flush().map_err(write_error)?;
    for s in &surprises {
        super::warn(s);
    }
    Ok(if surprises.is_empty() {
        EXIT_OK
    } else {
        EXIT_REJECTED
    })
}

/// What the demo did, for either view.
#[derive(Clone, Copy)]
struct Results<'a> {
    issuer: &'a TestIssuer,
    endpoint: &'a url::Url,
    pools: &'a [String],
    outcomes: &'a [Outcome],
    answers: &'a [Answer],
    /// The rotated-in kid, and the unknown-kid refetches before and after it.
    rotation: (&'a str, u64, u64),
}

/// One authorization question of the demo and its answer.
struct Answer {
    label: &'static str,
    op: Operation,
    resource: String,
    decision: &'static str,
    reason: String,
    /// The deciding grant, as `authorize --format json` prints it.
    grant: Option<serde_json::Value>,
}

/// The labels of the tokens whose keys the rotation section is about.
const ROTATION_TOKENS: [&str; 2] = ["key just rotated in", "key not published"];

/// The JSON records of the demo: the same sections as the human output, in its order, each
/// record with a `type`: `setup` (the header), one `login` per row of the login matrix, one
/// `session` per accepted login, one `rejection` per refused one, `rotation`, and one
/// `authorization` per question.
fn records(results: &Results<'_>) -> Vec<serde_json::Value> {
    let mut out = vec![json!({
        "type": "setup",
        "issuer": results.issuer.issuer(),
        "token_endpoint": results.endpoint.as_str(),
        "configuration": "testdata/demo.toml",
        "logical_cluster": CLUSTER,
        "pools": results.pools,
    })];
    for (i, o) in results.outcomes.iter().enumerate() {
        out.push(json!({
            "type": "login",
            "number": i + 1,
            "token": o.row.label,
            "source": o.row.how,
            "extensions": o.row.extensions.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "expected": o.row.expect,
            "sasl": match &o.sasl {
                Ok(s) => json!({"accepted": true, "principals": s.principals(), "identity": s.identity()}),
                Err(r) => json!({"accepted": false, "code": r.code(), "challenge": String::from_utf8_lossy(r.challenge())}),
            },
            "check": o.report,
        }));
    }
    for (i, o) in results.outcomes.iter().enumerate() {
        let Ok(session) = &o.sasl else { continue };
        out.push(json!({
            "type": "session",
            "number": i + 1,
            "token": o.row.label,
            "identity": session.identity(),
            "principals": session.principals(),
            "expires_in_secs": session.lifetime_at(UnixTime::now()).as_secs(),
            "permissions": o.report.permissions,
            "diagnostics": session.diagnostics().iter().map(ToString::to_string).collect::<Vec<_>>(),
        }));
    }
    for (i, o) in results.outcomes.iter().enumerate() {
        let Err(r) = &o.sasl else { continue };
        out.push(json!({
            "type": "rejection",
            "number": i + 1,
            "token": o.row.label,
            "code": r.code(),
            "message": r.error().to_string(),
            "challenge": String::from_utf8_lossy(r.challenge()),
        }));
    }
    let (kid, before, after) = results.rotation;
    out.push(json!({
        "type": "rotation",
        "new_kid": kid,
        "unknown_kid_refetches": {"before": before, "after": after},
        "tokens": ROTATION_TOKENS,
    }));
    for a in results.answers {
        out.push(json!({
            "type": "authorization",
            "token": a.label,
            "operation": a.op,
            "resource": a.resource,
            "decision": a.decision,
            "grant": a.grant,
            "reason": a.reason,
        }));
    }
    out
}

fn render(results: &Results<'_>, style: crate::cli::Style) -> String {
    let Results {
        issuer,
        endpoint,
        pools,
        outcomes,
        answers,
        rotation,
    } = *results;
    let mut s = String::new();
    let h = |t: &str| style.paint(t, Paint::Bold);
    s.push_str(&format!(
        "{}\n\n",
        h("poolgate demo: Kafka SASL/OAUTHBEARER logins against a local OIDC issuer")
    ));
    s.push_str(&table(
        &[
            vec![Cell::plain("issuer"), Cell::plain(issuer.issuer())],
            vec![
                Cell::plain("token endpoint"),
                Cell::plain(endpoint.as_str()),
            ],
            vec![
                Cell::plain("configuration"),
                Cell::plain(
                    "testdata/demo.toml ({issuer} and {discovery_url} set to the issuer above)",
                ),
            ],
            vec![Cell::plain("logical cluster"), Cell::plain(CLUSTER)],
            vec![Cell::plain("pools"), Cell::plain(pools.join(", "))],
        ],
        2,
        style,
    ));

    s.push_str(&format!(
        "\n{}\n",
        h("Logins: each token sent as a SASL/OAUTHBEARER client message (Gate::authenticate)")
    ));
    s.push_str(&format!(
        "  {}\n",
        style.paint(
            &format!(
                "messages carry logicalCluster={CLUSTER} unless the extension column says otherwise"
            ),
            Paint::Dim
        )
    ));
    let mut header = vec![
        Cell::painted("#", Paint::Dim),
        Cell::painted("token", Paint::Dim),
        Cell::painted("from", Paint::Dim),
        Cell::painted("extension", Paint::Dim),
        Cell::painted("result", Paint::Dim),
    ];
    for p in pools {
        header.push(Cell::painted(p.clone(), Paint::Dim));
    }
    let mut rows = vec![header];
    for (i, o) in outcomes.iter().enumerate() {
        let ext: Vec<String> = o
            .row
            .extensions
            .iter()
            .filter(|(k, v)| (*k, *v) != ("logicalCluster", CLUSTER))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let result = match &o.sasl {
            Ok(_) => Cell::painted("accepted", Paint::Good),
            Err(r) => Cell::painted(r.code(), Paint::Bad),
        };
        let mut row = vec![
            Cell::plain((i + 1).to_string()),
            Cell::plain(o.row.label),
            Cell::plain(o.row.how),
            Cell::plain(ext.join(" ")),
            result,
        ];
        for p in &o.report.pools {
            let cell = if o.report.issuer.is_none() {
                Cell::painted("-", Paint::Dim)
            } else if p.principal.is_some() {
                Cell::painted("taken", Paint::Good)
            } else if p.matched {
                Cell::painted("matched", Paint::Warn)
            } else if p
                .reason
                .as_deref()
                .is_some_and(|r| r.starts_with("filter error"))
            {
                Cell::painted("error", Paint::Warn)
            } else {
                Cell::painted("no", Paint::Dim)
            };
            row.push(cell);
        }
        rows.push(row);
    }
    s.push_str(&table(&rows, 2, style));
    s.push_str(&format!(
        "  {}\n",
        style.paint(
            "taken: the pool matched and the session uses it   matched: it matched but the login was refused or did not select it\n  no: its filter is false   -: the token was rejected before any pool was evaluated",
            Paint::Dim
        )
    ));

    s.push_str(&format!("\n{}\n", h("Sessions")));
    for (i, o) in outcomes.iter().enumerate() {
        let Ok(session) = &o.sasl else { continue };
        s.push_str(&format!(
            "  {} {}  identity {}  principals {}  expires in {}\n",
            i + 1,
            style.paint(o.row.label, Paint::Bold),
            session.identity(),
            session.principals().join(", "),
            super::human_duration(session.lifetime_at(UnixTime::now()).as_secs())
        ));
        for g in &o.report.permissions {
            s.push_str(&format!("      {}\n", grant_line(g)));
        }
        for d in session.diagnostics() {
            s.push_str(&format!(
                "      {}\n",
                style.paint(&d.to_string(), Paint::Warn)
            ));
        }
    }

    s.push_str(&format!(
        "\n{}\n",
        h("Rejections (the client only ever sees the challenge)")
    ));
    let mut rej = Vec::new();
    for (i, o) in outcomes.iter().enumerate() {
        let Err(r) = &o.sasl else { continue };
        rej.push(vec![
            Cell::plain((i + 1).to_string()),
            Cell::plain(o.row.label),
            Cell::painted(r.code(), Paint::Bad),
            Cell::plain(r.error().to_string()),
        ]);
    }
    s.push_str(&table(&rej, 2, style));
    if let Some(o) = outcomes.iter().find(|o| o.sasl.is_err())
        && let Err(r) = &o.sasl
    {
        s.push_str(&format!(
            "  challenge sent to the client: {}\n",
            String::from_utf8_lossy(r.challenge())
        ));
    }

    let (kid, before, after) = rotation;
    s.push_str(&format!("\n{}\n", h("Key rotation")));
    for line in [
        format!("The IdP rotated in key `{kid}` and signed a token with it at once. poolgate did"),
        format!(
            "not know that kid, refetched the JWKS once (unknown-kid refetches: {before} -> {after})"
        ),
        "and accepted the token on its first presentation: a rotation costs no client a failed"
            .to_owned(),
        "login. A token whose kid the IdP does not publish is rejected with unknown_key, and the"
            .to_owned(),
        "refetch is rate-limited, so such tokens cannot make poolgate hammer the IdP.".to_owned(),
    ] {
        s.push_str(&format!("  {line}\n"));
    }

    s.push_str(&format!("\n{}\n", h("Authorization (Session::authorize)")));
    let mut rows = vec![vec![
        Cell::painted("token", Paint::Dim),
        Cell::painted("operation", Paint::Dim),
        Cell::painted("resource", Paint::Dim),
        Cell::painted("decision", Paint::Dim),
        Cell::painted("why", Paint::Dim),
    ]];
    for a in answers {
        let paint = if a.decision == "allow" {
            Paint::Good
        } else {
            Paint::Bad
        };
        rows.push(vec![
            Cell::plain(a.label),
            Cell::plain(a.op.as_str()),
            Cell::plain(a.resource.clone()),
            Cell::painted(a.decision, paint),
            Cell::plain(a.reason.clone()),
        ]);
    }
    s.push_str(&table(&rows, 2, style));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_has_the_placeholders() {
        assert!(DEMO_TOML.contains("\"{issuer}\""));
        assert!(DEMO_TOML.contains("\"{discovery_url}\""));
    }
}
