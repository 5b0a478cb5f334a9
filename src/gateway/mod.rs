//! `poolgate gateway`: a Kafka SASL/OAUTHBEARER front door in front of one upstream broker.
//!
//! This module is part of the binary, not the library: it uses nothing but poolgate's public
//! API ([`poolgate::Gate`], [`poolgate::Session`], [`poolgate::config::Config`]), so it is also
//! the reference example of embedding poolgate in a Kafka proxy.

mod acl;
#[expect(
    unsafe_code,
    reason = "a global allocator is unsafe by definition; see the module's documentation"
)]
mod alloc;
mod conn;
mod metrics;
mod pairing;
mod peers;
mod upstream;
mod wire;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use poolgate::cli::CliError;
use poolgate::config::Config;
use poolgate::gate::Gate;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

use self::conn::Shared;
use self::metrics::Metrics;
use self::peers::{Peers, Refused};

#[global_allocator]
static ALLOCATOR: alloc::LazyHuge = alloc::LazyHuge;

/// Arguments of `poolgate gateway`.
#[derive(Debug, clap::Args)]
pub struct GatewayArgs {
    /// The configuration file: providers, pools, and the `[gateway]` section.
    #[arg(long)]
    pub config: PathBuf,
    /// Where clients connect, such as 0.0.0.0:9092 (port 0 picks a free port).
    #[arg(long)]
    pub listen: SocketAddr,
    /// The upstream Kafka broker, HOST:PORT, reached as `[gateway.upstream]` says (default:
    /// plaintext without authentication).
    #[arg(long)]
    pub upstream: String,
    /// The address written into Metadata, FindCoordinator and DescribeCluster responses, HOST:PORT
    /// [default: the listen address, which must then not be a wildcard address].
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
    // Certificates and secrets are read once, here; a missing one stops the start.
    let connector = upstream::Upstream::load(&g.upstream)
        .map_err(|e| CliError::usage(format!("{}: {e}", config.file())))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::usage(format!("cannot start the runtime: {e}")))?;
    rt.block_on(async move {
        let gate = Gate::start(config)
            .await
            .map_err(|e| CliError::failed(format!("cannot start: {e}")))?;
        let listener = TcpListener::bind(args.listen)
            .await
            .map_err(|e| CliError::usage(format!("--listen: cannot listen on {}: {e}", args.listen)))?;
        let local = listener
            .local_addr()
            .map_err(|e| CliError::failed(e.to_string()))?;
        let advertised = advertised(args.advertise.as_deref(), local)?;
        let metrics = Arc::new(Metrics::default());
        let metrics_addr = match args.metrics_listen.or(g.metrics_listen) {
            Some(addr) => {
                let (bound, _task) = metrics::serve(addr, Arc::clone(&metrics), gate.clone())
                    .await
                    .map_err(|e| CliError::usage(format!("metrics: cannot listen on {addr}: {e}")))?;
                Some(bound)
            }
            None => None,
        };
        let pass: Vec<ApiKey> = pass_through.iter().copied().collect();
        let upstream_versions = fetch_versions(&connector, &args.upstream).await;
        match &upstream_versions {
            // Credentials or certificates the broker refuses: retrying will not help, and the
            // gateway never falls back to less (plaintext, no login).
            Err(e) if !e.is_transient() => {
                return Err(CliError::failed(format!(
                    "upstream {} ({}): {e}",
                    args.upstream,
                    connector.security_protocol()
                )));
            }
            Err(e) => {
                tracing::warn!(upstream = %args.upstream, error = %e, "cannot ask the upstream broker for its API versions yet; offering the gateway's own");
            }
            Ok(_) => {}
        }
        let versions = acl::advertised_versions(upstream_versions.as_ref().ok(), &pass);
        let shared = Arc::new(Shared {
            gate,
            upstream: args.upstream.clone(),
            connector,
            advertised,
            pass_through,
            versions: RwLock::new(Arc::new(versions)),
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
        });
        if upstream_versions.is_err() {
            tokio::spawn(refresh_versions(Arc::clone(&shared), pass));
        }
        // The line tests and scripts wait for: where clients and scrapers connect.
        println!(
            "poolgate gateway listening on {local} ({}), upstream {} ({}), advertised as {}:{}{}",
            if tls.is_some() { "tls" } else { "plaintext" },
            args.upstream,
            shared.connector.security_protocol(),
            shared.advertised.0,
            shared.advertised.1,
            metrics_addr.map(|a| format!(", metrics on http://{a}/metrics")).unwrap_or_default()
        );
        tokio::select! {
            () = accept_loop(listener, tls, shared, g.login_timeout) => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        Ok(0)
    })
}

fn advertised(given: Option<&str>, local: SocketAddr) -> Result<(StrBytes, i32), CliError> {
    match given {
        Some(s) => {
            let (host, port) = s
                .rsplit_once(':')
                .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
                .filter(|(h, _)| !h.is_empty())
                .ok_or_else(|| CliError::usage(format!("--advertise: `{s}` is not HOST:PORT")))?;
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

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    login_timeout: Duration,
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
                None => conn::serve(tcp, peer, Arc::clone(&shared), deadline).await,
                Some(acceptor) => {
                    match tokio::time::timeout_at(deadline, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            conn::serve(stream, peer, Arc::clone(&shared), deadline).await
                        }
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
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            if let Err(end) = result {
                if let Some(reason) = end.drop_reason() {
                    shared.metrics.dropped(reason);
                }
                tracing::info!(peer = %peer, reason = %end, "connection closed");
            }
        });
    }
}

/// Asks the upstream broker which API versions it supports, over a logged-in connection.
async fn fetch_versions(
    connector: &upstream::Upstream,
    upstream: &str,
) -> Result<ApiVersionsResponse, upstream::UpstreamError> {
    let connected = upstream::connect(connector, upstream).await?;
    if connected.session_lifetime_ms > 0 {
        tracing::info!(
            upstream = %upstream,
            session_lifetime_ms = connected.session_lifetime_ms,
            "the upstream broker limits the gateway's login session; each upstream connection logs in again (KIP-368) at 85% of it"
        );
    }
    let mut stream = connected.stream;
    let protocol = |reason: String| upstream::UpstreamError::Protocol {
        addr: upstream.to_owned(),
        reason: format!("ApiVersions: {reason}"),
    };
    let attempt = async {
        let version = 3;
        let mut header = RequestHeader::default();
        header.request_api_key = ApiKey::ApiVersions as i16;
        header.request_api_version = version;
        header.correlation_id = 1;
        header.client_id = Some(StrBytes::from_static_str("poolgate-gateway"));
        let mut body = ApiVersionsRequest::default();
        body.client_software_name = StrBytes::from_static_str("poolgate");
        body.client_software_version = StrBytes::from_static_str(env!("CARGO_PKG_VERSION"));
        let mut out = BytesMut::new();
        out.put_i32(0);
        header
            .encode(
                &mut out,
                ApiKey::ApiVersions.request_header_version(version),
            )
            .map_err(|e| protocol(e.to_string()))?;
        body.encode(&mut out, version)
            .map_err(|e| protocol(e.to_string()))?;
        let len = i32::try_from(out.len() - 4).map_err(|e| protocol(e.to_string()))?;
        out[..4].copy_from_slice(&len.to_be_bytes());
        stream
            .write_all(&out)
            .await
            .map_err(|e| upstream::after_connect(upstream, "ApiVersions", &e))?;
        let payload = match wire::Frames::default().next(&mut stream, 1 << 20).await {
            Ok(p) => p,
            Err(wire::WireError::Io(e)) => {
                return Err(upstream::after_connect(upstream, "ApiVersions", &e));
            }
            Err(e) => return Err(protocol(e.to_string())),
        };
        let (_, mut body) = wire::split_response(ApiKey::ApiVersions, version, payload.slice(4..))
            .map_err(|e| protocol(e.to_string()))?;
        let resp =
            ApiVersionsResponse::decode(&mut body, version).map_err(|e| protocol(e.to_string()))?;
        if resp.error_code != 0 {
            return Err(protocol(format!("error code {}", resp.error_code)));
        }
        Ok(resp)
    };
    tokio::time::timeout(Duration::from_secs(5), attempt)
        .await
        .unwrap_or_else(|_| Err(protocol("timed out".to_owned())))
}

/// Retries the upstream versions until the broker answers, then narrows what is offered.
async fn refresh_versions(shared: Arc<Shared>, pass: Vec<ApiKey>) {
    let mut wait = Duration::from_millis(500);
    loop {
        tokio::time::sleep(wait).await;
        match fetch_versions(&shared.connector, &shared.upstream).await {
            Ok(resp) => {
                let versions = acl::advertised_versions(Some(&resp), &pass);
                *shared
                    .versions
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(versions);
                tracing::info!(upstream = %shared.upstream, "upstream API versions known");
                return;
            }
            // The broker came up and refuses the gateway: every session will fail the same way.
            Err(e) if !e.is_transient() => {
                tracing::error!(upstream = %shared.upstream, error = %e, "the upstream broker refuses the gateway's connection; retrying");
            }
            Err(_) => {}
        }
        wait = (wait * 2).min(Duration::from_secs(30));
    }
}
