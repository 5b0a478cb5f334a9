//! Gateway counters and their Prometheus text rendering, served on `GET /metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use poolgate::gate::Gate;

/// Counters a gateway operator graphs and alerts on.
#[derive(Debug, Default)]
pub struct Metrics {
    logins: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    denied: Mutex<BTreeMap<(String, &'static str, &'static str), u64>>,
    refused_apis: Mutex<BTreeMap<String, u64>>,
    dropped: Mutex<BTreeMap<&'static str, u64>>,
    responses_dropped: Mutex<BTreeMap<&'static str, u64>>,
    unmapped: Mutex<BTreeMap<i32, u64>>,
    broker_refreshes: Mutex<BTreeMap<&'static str, u64>>,
    reloads: Mutex<BTreeMap<&'static str, u64>>,
    /// Brokers in the gateway's broker map.
    pub brokers_known: AtomicI64,
    /// Requests forwarded to the upstream broker.
    pub forwarded: AtomicU64,
    /// The gateway's own logins renewed on upstream connections in use (KIP-368).
    pub upstream_reauthentications: AtomicU64,
    /// Authenticated connections now open.
    pub active_sessions: AtomicI64,
    /// Client connections now open (authenticated or not).
    pub open_connections: AtomicI64,
}

fn bump<K: Ord>(map: &Mutex<BTreeMap<K, u64>>, key: K) {
    *map.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(key)
        .or_default() += 1;
}

/// Escapes a Prometheus label value.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// Counts a login: `outcome` is `success`, `failure` or `reauth_success`/`reauth_failure`;
    /// `reason` is the stable reason code (`ok` on success).
    pub fn login(&self, outcome: &'static str, reason: &'static str) {
        bump(&self.logins, (outcome, reason));
    }

    /// Counts a refused operation within a request, with the reason (`not_authorized`,
    /// `fetch_session`, `transactional_batches`, `control_batch`, `invalid_batch`).
    pub fn denied(&self, api: &str, operation: &'static str, reason: &'static str) {
        bump(&self.denied, (api.to_owned(), operation, reason));
    }

    /// Counts a request of an API that is neither checked nor a pass-through.
    pub fn refused_api(&self, api: &str) {
        bump(&self.refused_apis, api.to_owned());
    }

    /// Counts a connection dropped for `reason` (`limit`, `oversized_frame`, `malformed`,
    /// `login_timeout`, `unexpected_request`, `tls`, ...).
    pub fn dropped(&self, reason: &'static str) {
        bump(&self.dropped, reason);
    }

    /// Counts an upstream response that was not forwarded: `acks0_answered` (an answer to a
    /// request sent with `acks=0`) or `stray` (it answers no pending request).
    pub fn upstream_response_dropped(&self, reason: &'static str) {
        bump(&self.responses_dropped, reason);
    }

    /// Counts a broker left out of a response because its node id is outside `node_ids`.
    pub fn brokers_unmapped(&self, node: i32) {
        bump(&self.unmapped, node);
    }

    /// Counts a configuration reload (SIGHUP) by outcome: `ok`, `invalid` (the file has errors),
    /// `restart_required` (a field that needs a restart changed) or `failed` (a provider could
    /// not start).
    pub fn reload(&self, outcome: &'static str) {
        bump(&self.reloads, outcome);
    }

    /// Counts a refresh of the broker map: `ok` or `failed`.
    pub fn broker_refresh(&self, outcome: &'static str) {
        bump(&self.broker_refreshes, outcome);
    }

    /// The Prometheus text exposition (format 0.0.4), including the gate's key store and cache.
    pub fn render(&self, gate: &Gate) -> String {
        let mut out = String::new();
        fn family(out: &mut String, name: &str, kind: &str, help: &str) {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        }
        family(
            &mut out,
            "poolgate_logins_total",
            "counter",
            "SASL/OAUTHBEARER logins by outcome and reason code.",
        );
        for ((outcome, reason), n) in self
            .logins
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "poolgate_logins_total{{outcome=\"{outcome}\",reason=\"{reason}\"}} {n}"
            );
        }
        family(
            &mut out,
            "poolgate_requests_denied_total",
            "counter",
            "Operations refused by the session's permissions or Kafka's request rules, by API, operation and reason.",
        );
        for ((api, op, reason), n) in self
            .denied
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "poolgate_requests_denied_total{{api=\"{}\",operation=\"{op}\",reason=\"{reason}\"}} {n}",
                label(api)
            );
        }
        family(
            &mut out,
            "poolgate_requests_refused_api_total",
            "counter",
            "Requests of APIs the gateway neither checks nor passes through.",
        );
        for (api, n) in self
            .refused_apis
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "poolgate_requests_refused_api_total{{api=\"{}\"}} {n}",
                label(api)
            );
        }
        family(
            &mut out,
            "poolgate_requests_forwarded_total",
            "counter",
            "Requests forwarded to the upstream broker.",
        );
        let _ = writeln!(
            out,
            "poolgate_requests_forwarded_total {}",
            self.forwarded.load(Ordering::Relaxed)
        );
        family(
            &mut out,
            "poolgate_upstream_reauthentications_total",
            "counter",
            "The gateway's own logins renewed on upstream connections in use (KIP-368).",
        );
        let _ = writeln!(
            out,
            "poolgate_upstream_reauthentications_total {}",
            self.upstream_reauthentications.load(Ordering::Relaxed)
        );
        family(
            &mut out,
            "poolgate_connections_dropped_total",
            "counter",
            "Client connections dropped by the gateway, by reason.",
        );
        for (reason, n) in self
            .dropped
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "poolgate_connections_dropped_total{{reason=\"{reason}\"}} {n}"
            );
        }
        family(
            &mut out,
            "poolgate_upstream_responses_dropped_total",
            "counter",
            "Upstream responses never forwarded to a client, by reason.",
        );
        for (reason, n) in self
            .responses_dropped
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "poolgate_upstream_responses_dropped_total{{reason=\"{reason}\"}} {n}"
            );
        }
        family(
            &mut out,
            "poolgate_brokers_unmapped_total",
            "counter",
            "Brokers left out of responses because their node id is outside `node_ids`, by node id.",
        );
        for (node, n) in self
            .unmapped
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "poolgate_brokers_unmapped_total{{node=\"{node}\"}} {n}"
            );
        }
        family(
            &mut out,
            "poolgate_broker_map_refreshes_total",
            "counter",
            "The gateway's own requests for the cluster's brokers and versions, by outcome.",
        );
        for (outcome, n) in self
            .broker_refreshes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "poolgate_broker_map_refreshes_total{{outcome=\"{outcome}\"}} {n}"
            );
        }
        family(
            &mut out,
            "poolgate_config_reloads_total",
            "counter",
            "Configuration reloads (SIGHUP) by outcome.",
        );
        for (outcome, n) in self
            .reloads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "poolgate_config_reloads_total{{outcome=\"{outcome}\"}} {n}"
            );
        }
        family(
            &mut out,
            "poolgate_brokers_known",
            "gauge",
            "Brokers in the gateway's broker map.",
        );
        let _ = writeln!(
            out,
            "poolgate_brokers_known {}",
            self.brokers_known.load(Ordering::Relaxed)
        );
        family(
            &mut out,
            "poolgate_active_sessions",
            "gauge",
            "Authenticated client connections open now.",
        );
        let _ = writeln!(
            out,
            "poolgate_active_sessions {}",
            self.active_sessions.load(Ordering::Relaxed)
        );
        family(
            &mut out,
            "poolgate_open_connections",
            "gauge",
            "Client connections open now, authenticated or not.",
        );
        let _ = writeln!(
            out,
            "poolgate_open_connections {}",
            self.open_connections.load(Ordering::Relaxed)
        );
        let cache = gate.cache_stats();
        family(
            &mut out,
            "poolgate_token_cache_total",
            "counter",
            "Logins whose token verification came from the cache (hit) or was done (miss).",
        );
        let _ = writeln!(
            out,
            "poolgate_token_cache_total{{result=\"hit\"}} {}",
            cache.hits
        );
        let _ = writeln!(
            out,
            "poolgate_token_cache_total{{result=\"miss\"}} {}",
            cache.misses
        );
        let providers: Vec<_> = gate
            .config()
            .providers()
            .iter()
            .map(|p| p.id.clone())
            .zip(
                gate.validator()
                    .providers()
                    .iter()
                    .map(|p| p.store().stats()),
            )
            .collect();
        family(
            &mut out,
            "poolgate_jwks_fetches_total",
            "counter",
            "JWKS fetches by provider and result.",
        );
        for (id, s) in &providers {
            let id = label(id);
            let _ = writeln!(
                out,
                "poolgate_jwks_fetches_total{{provider=\"{id}\",result=\"ok\"}} {}\n\
                 poolgate_jwks_fetches_total{{provider=\"{id}\",result=\"failed\"}} {}",
                s.fetches_ok, s.fetches_failed
            );
        }
        family(
            &mut out,
            "poolgate_jwks_unknown_kid_refetches_total",
            "counter",
            "JWKS fetches triggered by a token with an unknown key id.",
        );
        for (id, s) in &providers {
            let _ = writeln!(
                out,
                "poolgate_jwks_unknown_kid_refetches_total{{provider=\"{}\"}} {}",
                label(id),
                s.unknown_kid_refetches
            );
        }
        family(
            &mut out,
            "poolgate_jwks_keys",
            "gauge",
            "Usable keys in each provider's key set.",
        );
        for (id, s) in &providers {
            let _ = writeln!(
                out,
                "poolgate_jwks_keys{{provider=\"{}\"}} {}",
                label(id),
                s.keys_loaded
            );
        }
        family(
            &mut out,
            "poolgate_jwks_last_success_timestamp_seconds",
            "gauge",
            "When each provider's key set was last fetched.",
        );
        for (id, s) in &providers {
            if let Some(t) = s.last_success {
                let _ = writeln!(
                    out,
                    "poolgate_jwks_last_success_timestamp_seconds{{provider=\"{}\"}} {}",
                    label(id),
                    t.as_secs()
                );
            }
        }
        out
    }
}

/// What the metrics listener asks of the gateway besides the counters.
pub trait Status: Send + Sync + 'static {
    /// The authenticator now in force (its key stores and token cache are reported).
    fn gate(&self) -> Gate;
    /// Why the gateway is not ready to take clients; empty when it is.
    fn unready(&self) -> Vec<String>;
}

/// Serves `GET /metrics`, `GET /livez` and `GET /readyz` on `addr` until the process ends.
///
/// `/livez` answers 200 while the process serves. `/readyz` answers 200 when [`Status::unready`]
/// is empty, and 503 with the reasons, one per line, otherwise.
///
/// # Errors
/// When the address cannot be bound.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    status: Arc<dyn Status>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    use axum::http::{StatusCode, header};
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let ready = Arc::clone(&status);
    let app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || {
                let body = metrics.render(&status.gate());
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        body,
                    )
                }
            }),
        )
        .route("/livez", axum::routing::get(|| async { "ok\n" }))
        .route(
            "/readyz",
            axum::routing::get(move || {
                let reasons = ready.unready();
                async move {
                    if reasons.is_empty() {
                        (StatusCode::OK, "ok\n".to_owned())
                    } else {
                        let mut body = reasons.join("\n");
                        body.push('\n');
                        (StatusCode::SERVICE_UNAVAILABLE, body)
                    }
                }
            }),
        );
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "metrics endpoint stopped");
        }
    });
    Ok((local, task))
}
