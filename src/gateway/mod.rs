//! `poolgate gateway`: a Kafka SASL/OAUTHBEARER front door in front of a Kafka cluster.
//!
//! This module is part of the binary, not the library: it uses nothing but poolgate's public
//! API ([`poolgate::Gate`], [`poolgate::Session`], [`poolgate::config::Config`]), so it is also
//! the reference example of embedding poolgate in a Kafka proxy.

mod acl;
mod brokers;
mod conn;
mod metrics;
mod outbox;
mod pairing;
mod peers;
mod routing;
mod upstream;
mod wire;

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::StrBytes;
use poolgate::cli::CliError;
use poolgate::config::{Config, Routing};
use poolgate::gate::Gate;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

use self::brokers::{Brokers, Routes};
use self::conn::Shared;
use self::metrics::Metrics;
use self::peers::{Peers, Refused};
use self::routing::{Addresses, Target};

/// Arguments of `poolgate gateway`.
#[derive(Debug, clap::Args)]
pub struct GatewayArgs {
    /// The configuration file: providers, pools, and the `[gateway]` section.
    #[arg(long)]
    pub config: PathBuf,
    /// Where clients connect, such as 0.0.0.0:9092 (port 0 picks a free port).
    #[arg(long)]
    pub listen: SocketAddr,
    /// The upstream Kafka cluster's bootstrap brokers, HOST:PORT[,HOST:PORT...], reached as
    /// `[gateway.upstream]` says (default: plaintext without authentication); the gateway
    /// learns every broker from them.
    #[arg(long)]
    pub upstream: String,
    /// The bootstrap address clients use, HOST[:PORT] (PORT defaults to the bound listen port):
    /// brokers are advertised on this host at their node ports (or by their SNI names, at this
    /// port) in Metadata, FindCoordinator and DescribeCluster responses [default: the listen
    /// address, which must then not be a wildcard address].
    #[arg(long)]
    pub advertise: Option<String>,
    /// PEM certificate chain for the TLS listener.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for the TLS listener.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve Prometheus metrics on this address (overrides `[gateway] metrics_listen`).
    #[arg(long)]
    pub metrics_listen: Option<SocketAddr>,
}

/// Runs the gateway until Ctrl-C.
///
/// # Errors
/// A [`CliError`] for bad arguments or configuration, or an address that cannot be bound.
pub fn run(args: &GatewayArgs) -> Result<u8, CliError> {
    let config = Config::load(&args.config).map_err(|e| CliError {
        lines: e.0.iter().map(ToString::to_string).collect(),
        code: 2,
    })?;
    let g = config.gateway().clone();
    let mut pass_through = HashSet::new();
    for p in &g.pass_through {
        match ApiKey::iter().find(|k| format!("{k:?}") == p.name) {
            Some(ApiKey::SaslHandshake | ApiKey::SaslAuthenticate | ApiKey::ApiVersions) => {
                return Err(CliError::usage(format!(
                    "{}:{}: [gateway], field `pass_through`: `{}` is always answered by the gateway",
                    config.file(),
                    p.line,
                    p.name
                )));
            }
            Some(k) if acl::checked_range(k).is_some() => {
                return Err(CliError::usage(format!(
                    "{}:{}: [gateway], field `pass_through`: `{}` is checked by the gateway and cannot be passed through",
                    config.file(),
                    p.line,
                    p.name
                )));
            }
            Some(k) => {
                pass_through.insert(k);
            }
            None => {
                return Err(CliError::usage(format!(
                    "{}:{}: [gateway], field `pass_through`: `{}` is not a Kafka API name (such as DescribeProducers)",
                    config.file(),
                    p.line,
                    p.name
                )));
            }
        }
    }
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(tls_acceptor(cert, key)?),
        _ if g.allow_plaintext => None,
        _ => {
            return Err(CliError::usage(format!(
                "no --tls-cert/--tls-key: tokens would cross the network in the clear; give a certificate, or set `allow_plaintext = true` in the [gateway] section of {}",
                config.file()
            )));
        }
    };
    let upstream = parse_upstream(&args.upstream)?;
    if g.routing == Routing::Sni && tls.is_none() {
        return Err(CliError::usage(format!(
            "{}: [gateway] `routing = \"sni\"` names brokers by the TLS server name: give --tls-cert and --tls-key",
            config.file()
        )));
    }
    // Certificates and secrets are read once, here; a missing one stops the start.
    let connector = upstream::Upstream::load(&g.upstream)
        .map_err(|e| CliError::usage(format!("{}: {e}", config.file())))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::usage(format!("cannot start the runtime: {e}")))?;
    rt.block_on(async move {
        // Handled from the start: a signal while starting (fetching keys, binding) would
        // otherwise take its default action, and SIGHUP's is to end the process. What arrives
        // before the serving loop waits for it then.
        let signals = Signals::new()?;
        // A provider whose keys cannot be fetched yet starts empty and retries: the gateway
        // starts, not ready (`/readyz`), and refuses its tokens until the keys load.
        let (gate, degraded) = Gate::start_lenient(config, Arc::new(poolgate::SystemClock))
            .await
            .map_err(|e| CliError::failed(format!("cannot start: {e}")))?;
        for e in &degraded {
            tracing::warn!(error = %e, "a provider has no keys yet; retrying in the background");
        }
        let listener = TcpListener::bind(args.listen)
            .await
            .map_err(|e| CliError::usage(format!("--listen: cannot listen on {}: {e}", args.listen)))?;
        let local = listener
            .local_addr()
            .map_err(|e| CliError::failed(e.to_string()))?;
        let advertised = advertised(args.advertise.as_deref(), local)?;
        let (addresses, node_listeners) = match g.routing {
            Routing::Ports => {
                let (ports, listeners) = bind_nodes(args.listen, local, &g).await?;
                (
                    Addresses::ports(advertised.0.clone(), advertised.1, &ports),
                    listeners,
                )
            }
            Routing::Sni => (
                Addresses::sni(
                    advertised.0.clone(),
                    advertised.1,
                    g.sni_node_pattern.as_deref().unwrap_or("{node_id}"),
                    &g.node_ids,
                ),
                Vec::new(),
            ),
        };
        let metrics = Arc::new(Metrics::default());
        let pass: Vec<ApiKey> = pass_through.iter().copied().collect();
        let protocol = connector.security_protocol();
        let brokers = Arc::new(Brokers::new(
            upstream.clone(),
            g.node_ids.clone(),
            pass,
            Arc::clone(&metrics),
            connector,
        ));
        let known = match brokers.refresh().await {
            Ok(()) => true,
            // Credentials or certificates the broker refuses: retrying will not help, and the
            // gateway never falls back to less (plaintext, no login).
            Err(e) if !e.is_transient() => {
                return Err(CliError::failed(format!(
                    "upstream {} ({protocol}): {e}",
                    args.upstream
                )));
            }
            Err(e) => {
                tracing::warn!(upstream = %args.upstream, error = %e, "cannot reach the upstream cluster yet; offering the gateway's own API versions until it answers");
                false
            }
        };
        tokio::spawn(Arc::clone(&brokers).run(g.metadata_refresh_interval, known));
        let addresses = Arc::new(addresses);
        let nodes = Arc::new(Routes {
            addresses: Arc::clone(&addresses),
            brokers: Arc::clone(&brokers),
        });
        let (drain_tx, drain_rx) = tokio::sync::watch::channel(false);
        let shared = Arc::new(Shared {
            gate: std::sync::RwLock::new(gate),
            brokers,
            addresses,
            nodes,
            pass_through,
            metrics,
            peers: Peers::new(
                g.max_connections,
                g.max_connections_per_peer,
                g.failure_delay,
                g.max_failure_delay,
            ),
            max_frame: g.max_frame_bytes,
            idle_timeout: g.idle_timeout,
            max_session_lifetime: g.max_session_lifetime,
            drain: drain_rx,
            drain_timeout: g.drain_timeout,
            max_connection_age: g.max_connection_age,
            closed: tokio::sync::Notify::new(),
        });
        let metrics_addr = match args.metrics_listen.or(g.metrics_listen) {
            Some(addr) => {
                let status: Arc<dyn metrics::Status> = Arc::clone(&shared) as Arc<dyn metrics::Status>;
                let (bound, _task) = metrics::serve(addr, Arc::clone(&shared.metrics), status)
                    .await
                    .map_err(|e| CliError::usage(format!("metrics: cannot listen on {addr}: {e}")))?;
                Some(bound)
            }
            None => None,
        };
        let nodes = match g.routing {
            Routing::Ports => format!(
                "nodes {} on ports {}",
                ranges(&g.node_ids),
                port_ranges(&node_listeners)
            ),
            Routing::Sni => format!(
                "nodes {} by server name {}",
                ranges(&g.node_ids),
                g.sni_node_pattern.as_deref().unwrap_or_default()
            ),
        };
        // The line tests and scripts wait for: where clients and scrapers connect.
        println!(
            "poolgate gateway listening on {local} ({}), upstream {} ({protocol}), advertised as {}:{}, {nodes}{}",
            if tls.is_some() { "tls" } else { "plaintext" },
            args.upstream,
            advertised.0,
            advertised.1,
            metrics_addr.map(|a| format!(", metrics on http://{a}/metrics")).unwrap_or_default()
        );
        let mut loops = tokio::task::JoinSet::new();
        let accept = match g.routing {
            Routing::Ports => Accept::Fixed(Target::Bootstrap),
            Routing::Sni => Accept::ServerName,
        };
        loops.spawn(accept_loop(listener, tls.clone(), Arc::clone(&shared), g.login_timeout, accept));
        for (id, l) in node_listeners {
            loops.spawn(accept_loop(
                l,
                tls.clone(),
                Arc::clone(&shared),
                g.login_timeout,
                Accept::Fixed(Target::Node(id)),
            ));
        }
        serve_until_drained(signals, loops, shared, drain_tx, &args.config, &g).await
    })
}

/// The signals the gateway acts on.
struct Signals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Signals, CliError> {
        use tokio::signal::unix::{SignalKind, signal};
        let listen = |kind: SignalKind| {
            signal(kind).map_err(|e| CliError::failed(format!("cannot handle signals: {e}")))
        };
        Ok(Signals {
            terminate: listen(SignalKind::terminate())?,
            interrupt: listen(SignalKind::interrupt())?,
            hangup: listen(SignalKind::hangup())?,
        })
    }

    /// The next SIGTERM or SIGINT.
    async fn stop(&mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }
}

/// Serves until SIGTERM or SIGINT, reloading the configuration on SIGHUP; then drains: reports
/// not ready, stops accepting, lets every session answer what it has in flight (within
/// `drain_timeout`) and exits 0. A second SIGTERM or SIGINT exits at once, with 1.
async fn serve_until_drained(
    mut signals: Signals,
    mut loops: tokio::task::JoinSet<()>,
    shared: Arc<Shared>,
    drain: tokio::sync::watch::Sender<bool>,
    config: &std::path::Path,
    started: &poolgate::config::GatewayConfig,
) -> Result<u8, CliError> {
    let signal = loop {
        tokio::select! {
            _ = loops.join_next() => {
                return Err(CliError::failed("a listener stopped".to_owned()));
            }
            _ = signals.terminate.recv() => break "SIGTERM",
            _ = signals.interrupt.recv() => break "SIGINT",
            _ = signals.hangup.recv() => reload(&shared, config, started).await,
        }
    };
    let open = || {
        shared
            .metrics
            .open_connections
            .load(std::sync::atomic::Ordering::Acquire)
    };
    let began = tokio::time::Instant::now();
    tracing::info!(
        signal,
        connections = open(),
        "draining: no new connections; open ones answer what they have in flight, then close"
    );
    let _ = drain.send(true);
    // Dropping the accept loops closes the listeners.
    loops.abort_all();
    while loops.join_next().await.is_some() {}
    let drained = async {
        loop {
            let closed = shared.closed.notified();
            tokio::pin!(closed);
            closed.as_mut().enable();
            if open() <= 0 {
                return;
            }
            closed.await;
        }
    };
    tokio::select! {
        () = drained => {
            tracing::info!(took_ms = began.elapsed().as_millis(), "drained: every connection closed");
            Ok(0)
        }
        () = tokio::time::sleep(shared.drain_timeout + Duration::from_secs(1)) => {
            tracing::warn!(connections = open(), "drain_timeout passed: closing the connections left");
            Ok(0)
        }
        signal = signals.stop() => {
            tracing::warn!(signal, connections = open(), "second signal: exiting without waiting");
            Ok(1)
        }
    }
}

/// Reloads the configuration file (SIGHUP): when the whole of it is valid and needs no restart,
/// new logins use its providers, pools and grants at once, and existing sessions at their next
/// re-authentication; otherwise the old one stays, and the error is logged and counted.
async fn reload(
    shared: &Shared,
    path: &std::path::Path,
    started: &poolgate::config::GatewayConfig,
) {
    let outcome = async {
        let config = Config::load(path).map_err(|e| {
            (
                "invalid",
                e.0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
            )
        })?;
        let changed = started.restart_required(config.gateway());
        if !changed.is_empty() {
            return Err((
                "restart_required",
                format!(
                    "{}: [gateway] {} changed: these take a restart; nothing was reloaded",
                    config.file(),
                    changed
                        .iter()
                        .map(|f| format!("`{f}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        let (gate, degraded) = shared
            .gate()
            .reload(config)
            .await
            .map_err(|e| ("failed", e.to_string()))?;
        for e in &degraded {
            tracing::warn!(error = %e, "reloaded provider has no keys yet; retrying in the background");
        }
        *shared
            .gate
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = gate;
        Ok(())
    }
    .await;
    match outcome {
        Ok(()) => {
            shared.metrics.reload("ok");
            tracing::info!(target: "poolgate::audit", event = "config_reload", outcome = "ok", file = %path.display());
        }
        Err((why, error)) => {
            shared.metrics.reload(why);
            tracing::error!(target: "poolgate::audit", event = "config_reload", outcome = why, file = %path.display(), error = %error, "configuration not reloaded; the previous one stays in force");
        }
    }
}

impl metrics::Status for Shared {
    fn gate(&self) -> Gate {
        Shared::gate(self)
    }

    fn unready(&self) -> Vec<String> {
        let mut why = Vec::new();
        if *self.drain.borrow() {
            why.push("draining".to_owned());
        }
        if !self.brokers.is_known() {
            why.push("the upstream cluster has not answered yet".to_owned());
        }
        let gate = Shared::gate(self);
        for (config, provider) in gate
            .config()
            .providers()
            .iter()
            .zip(gate.validator().providers())
        {
            if provider.store().stats().keys_loaded == 0 {
                why.push(format!("provider `{}` has no usable keys yet", config.id));
            }
        }
        why
    }
}

/// Parses `--upstream`: a comma-separated bootstrap list of `HOST:PORT`.
fn parse_upstream(s: &str) -> Result<Vec<String>, CliError> {
    let list: Vec<String> = s
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect();
    if list.is_empty() {
        return Err(CliError::usage("--upstream: no broker address".to_owned()));
    }
    for a in &list {
        let ok = a
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
        if !ok {
            return Err(CliError::usage(format!(
                "--upstream: `{a}` is not HOST:PORT"
            )));
        }
    }
    Ok(list)
}

/// Binds one listener per routable node id, on the listen address's IP: node `n` at
/// `node_port_base + n` (default: the listen port + 1), or at a free port each when the listen
/// port is 0 and no base is configured.
async fn bind_nodes(
    requested: SocketAddr,
    local: SocketAddr,
    g: &poolgate::config::GatewayConfig,
) -> Result<(BTreeMap<i32, u16>, Vec<(i32, TcpListener)>), CliError> {
    let base = match (g.node_port_base, requested.port()) {
        (Some(b), _) => Some(u32::from(b)),
        (None, 0) => None,
        (None, p) => Some(u32::from(p) + 1),
    };
    let mut ports = BTreeMap::new();
    let mut listeners = Vec::new();
    for id in g.node_ids.iter().flat_map(|&(lo, hi)| lo..=hi) {
        let port = match base {
            None => 0,
            Some(b) => u16::try_from(b + u32::try_from(id).unwrap_or(u32::MAX)).map_err(|_| {
                CliError::usage(format!(
                    "node {id} would listen on port {b} + {id}, above 65535: lower `node_port_base` or `node_ids` in [gateway]"
                ))
            })?,
        };
        let addr = SocketAddr::new(local.ip(), port);
        let l = TcpListener::bind(addr).await.map_err(|e| {
            CliError::usage(format!(
                "node {id}: cannot listen on {addr} (node_port_base + node id): {e}"
            ))
        })?;
        let bound = l
            .local_addr()
            .map_err(|e| CliError::failed(e.to_string()))?
            .port();
        ports.insert(id, bound);
        listeners.push((id, l));
    }
    Ok((ports, listeners))
}

fn ranges(r: &[(i32, i32)]) -> String {
    r.iter()
        .map(|&(lo, hi)| {
            if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}-{hi}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn port_ranges(listeners: &[(i32, TcpListener)]) -> String {
    listeners
        .iter()
        .filter_map(|(id, l)| Some(format!("{id}={}", l.local_addr().ok()?.port())))
        .collect::<Vec<_>>()
        .join(",")
}

fn advertised(given: Option<&str>, local: SocketAddr) -> Result<(StrBytes, i32), CliError> {
    match given {
        Some(s) => {
            let bare = !s.contains(':') || (s.starts_with('[') && s.ends_with(']'));
            let (host, port) = if bare {
                Some((s, local.port()))
            } else {
                s.rsplit_once(':')
                    .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
            }
            .filter(|(h, _)| !h.is_empty() && *h != "[]")
            .ok_or_else(|| CliError::usage(format!("--advertise: `{s}` is not HOST[:PORT]")))?;
            Ok((
                StrBytes::from_string(host.trim_matches(['[', ']']).to_owned()),
                i32::from(port),
            ))
        }
        None if local.ip().is_unspecified() => Err(CliError::usage(format!(
            "--listen {local} is a wildcard address: give --advertise HOST:PORT, the address clients use"
        ))),
        None => Ok((
            StrBytes::from_string(local.ip().to_string()),
            i32::from(local.port()),
        )),
    }
}

fn tls_acceptor(cert: &PathBuf, key: &PathBuf) -> Result<TlsAcceptor, CliError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| CliError::usage(format!("--tls-cert {}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(CliError::usage(format!(
            "--tls-cert {}: no certificate in the file",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| CliError::usage(format!("--tls-key {}: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| CliError::usage(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| CliError::usage(format!("--tls-cert/--tls-key: {e}")))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// How an accepted connection finds its broker.
#[derive(Clone, Copy, Debug)]
enum Accept {
    /// The listener stands for one target (port routing).
    Fixed(Target),
    /// The TLS server name names it (SNI routing).
    ServerName,
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    login_timeout: Duration,
    accept: Accept,
) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: let other connections finish.
                tracing::error!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let slot = match shared.peers.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(why) => {
                shared.metrics.dropped(match why {
                    Refused::Total => "max_connections",
                    Refused::PerPeer => "max_connections_per_peer",
                });
                drop(tcp);
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let shared = Arc::clone(&shared);
        let tls = tls.clone();
        tokio::spawn(async move {
            let _slot = slot;
            shared
                .metrics
                .open_connections
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let deadline = tokio::time::Instant::now() + login_timeout;
            let result = match tls {
                None => match accept {
                    Accept::Fixed(target) => {
                        Box::pin(conn::serve(
                            tcp,
                            peer,
                            Arc::clone(&shared),
                            deadline,
                            target,
                        ))
                        .await
                    }
                    // SNI routing requires TLS (checked at start).
                    Accept::ServerName => Ok(()),
                },
                Some(acceptor) => {
                    // Boxed: the handshake's state is freed once it ends.
                    match tokio::time::timeout_at(deadline, Box::pin(acceptor.accept(tcp))).await {
                        Ok(Ok(stream)) => match target_of(&stream, accept, &shared, peer) {
                            Some(target) => {
                                Box::pin(conn::serve(
                                    stream,
                                    peer,
                                    Arc::clone(&shared),
                                    deadline,
                                    target,
                                ))
                                .await
                            }
                            None => Ok(()),
                        },
                        Ok(Err(e)) => {
                            shared.metrics.dropped("tls");
                            tracing::debug!(peer = %peer, error = %e, "TLS handshake failed");
                            Ok(())
                        }
                        Err(_) => {
                            shared.metrics.dropped("login_timeout");
                            Ok(())
                        }
                    }
                }
            };
            shared
                .metrics
                .open_connections
                .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
            shared.closed.notify_waiters();
            if let Err(end) = result {
                if let Some(reason) = end.drop_reason() {
                    shared.metrics.dropped(reason);
                }
                tracing::info!(peer = %peer, reason = %end, "connection closed");
            }
        });
    }
}

/// The broker a TLS connection is for: its listener's, or the one its server name names. An
/// unknown or missing server name is refused (counted and audited), never sent to a broker.
fn target_of(
    stream: &tokio_rustls::server::TlsStream<TcpStream>,
    accept: Accept,
    shared: &Shared,
    peer: SocketAddr,
) -> Option<Target> {
    match accept {
        Accept::Fixed(target) => Some(target),
        Accept::ServerName => {
            let name = stream.get_ref().1.server_name();
            let target = name.and_then(|n| shared.addresses.target_of_server_name(n));
            if target.is_none() {
                shared.metrics.dropped("unknown_server_name");
                tracing::warn!(
                    target: "poolgate::audit",
                    event = "unknown_server_name",
                    peer = %peer,
                    server_name = name.unwrap_or(""),
                    "TLS server name names no broker; closing the connection"
                );
            }
            target
        }
    }
}
