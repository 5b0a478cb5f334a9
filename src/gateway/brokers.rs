//! The broker map: where each node of the upstream cluster really is, and which API versions it
//! speaks. Learned from the cluster itself: the gateway's own Metadata and ApiVersions requests
//! (at start, every `metadata_refresh_interval`, and once, single-flight and rate-limited, when a
//! client comes to a node the map does not know yet), and every Metadata, FindCoordinator and
//! DescribeCluster response the gateway forwards ([`Brokers::seen`]).
//!
//! Readers take an `Arc` snapshot of the map; a refresh swaps it, as the key store does with key
//! sets. A node once seen stays in the map (a stopped broker keeps its address until it returns
//! or moves), so a refresh never makes a client's node unreachable.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse,
    RequestHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::acl;
use super::metrics::Metrics;
use super::routing::{Addresses, Target, in_ranges};
use super::upstream::{self, Connected, Upstream, UpstreamError};
use super::wire;

/// Refreshes of the broker map are at least this far apart.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(1);
/// How long the gateway waits for one of its own requests, once connected.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(10);
/// The Metadata version the gateway asks with, at most (lowered to what the broker speaks).
const METADATA_VERSION: i16 = 12;

/// One broker of the map.
#[derive(Clone, Debug)]
struct Node {
    /// `host:port`, as the cluster advertises it to the gateway.
    addr: String,
    /// What the broker answered to ApiVersions, once asked at this address.
    versions: Option<Arc<ApiVersionsResponse>>,
}

/// A snapshot of the map.
#[derive(Clone, Debug, Default)]
struct Cluster {
    nodes: BTreeMap<i32, Node>,
    /// Whether the cluster has answered once.
    known: bool,
    /// What each node's listener offers (nodes asked for their versions), and the bootstrap
    /// listener (and every other node): computed when the map changes, not per ApiVersions.
    offered: BTreeMap<i32, Arc<Vec<ApiVersion>>>,
    offered_bootstrap: Arc<Vec<ApiVersion>>,
}

/// Why a session could not reach its broker.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The client came to a node the cluster does not have (after one refresh of the map).
    #[error("node {0} is not a broker of the cluster")]
    UnknownNode(i32),
    /// No broker could be reached.
    #[error("{0}")]
    Unreachable(String),
}

/// The broker map and the API versions offered on each listener.
pub struct Brokers {
    bootstrap: Vec<String>,
    node_ids: Vec<(i32, i32)>,
    pass_through: Vec<ApiKey>,
    state: RwLock<Arc<Cluster>>,
    /// Single flight: held while refreshing; the time the last refresh ended.
    refreshing: tokio::sync::Mutex<Option<Instant>>,
    /// Wakes the background refresher when a response shows a node the map does not have.
    changed: Notify,
    /// Rotates bootstrap connections over the brokers.
    next: AtomicUsize,
    metrics: Arc<Metrics>,
    /// How the gateway reaches and logs in at its brokers.
    connector: Arc<Upstream>,
}

impl Brokers {
    /// A map that knows nothing yet: `bootstrap` is the `--upstream` list.
    pub fn new(
        bootstrap: Vec<String>,
        node_ids: Vec<(i32, i32)>,
        pass_through: Vec<ApiKey>,
        metrics: Arc<Metrics>,
        connector: Upstream,
    ) -> Brokers {
        let own = pass_through.clone();
        Brokers {
            bootstrap,
            node_ids,
            pass_through,
            state: RwLock::new(Arc::new(Cluster {
                offered_bootstrap: Arc::new(acl::advertised_versions(None, &own)),
                ..Cluster::default()
            })),
            refreshing: tokio::sync::Mutex::new(None),
            changed: Notify::new(),
            next: AtomicUsize::new(0),
            metrics,
            connector: Arc::new(connector),
        }
    }

    /// How the gateway reaches and logs in at its brokers.
    pub fn connector(&self) -> &Upstream {
        &self.connector
    }

    fn snapshot(&self) -> Arc<Cluster> {
        Arc::clone(&self.state.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn swap(&self, mut cluster: Cluster) {
        let all: Vec<&ApiVersionsResponse> = cluster
            .nodes
            .values()
            .filter_map(|n| n.versions.as_deref())
            .collect();
        cluster.offered_bootstrap = Arc::new(acl::advertised_versions(
            (!all.is_empty()).then(|| intersect(&all)).as_ref(),
            &self.pass_through,
        ));
        cluster.offered = cluster
            .nodes
            .iter()
            .filter_map(|(&id, n)| {
                let v = n.versions.as_deref()?;
                Some((
                    id,
                    Arc::new(acl::advertised_versions(Some(v), &self.pass_through)),
                ))
            })
            .collect();
        let known = cluster.nodes.len();
        *self.state.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(cluster);
        self.metrics
            .brokers_known
            .store(i64::try_from(known).unwrap_or(i64::MAX), Ordering::Relaxed);
    }

    /// Whether the cluster has answered the gateway once (for readiness).
    pub fn is_known(&self) -> bool {
        self.snapshot().known
    }

    /// The upstream address of node `id`, if the map has it.
    pub fn address(&self, id: i32) -> Option<String> {
        self.snapshot().nodes.get(&id).map(|n| n.addr.clone())
    }

    /// The API versions offered on the listener for `target`: a node's own intersection with
    /// the gateway's ranges, and on the bootstrap listener (or for a node not asked yet) the
    /// intersection over every broker of the cluster; the gateway's own ranges while the
    /// cluster is unknown.
    pub fn offered(&self, target: Target) -> Arc<Vec<ApiVersion>> {
        let cluster = self.snapshot();
        match target {
            Target::Node(id) => cluster.offered.get(&id),
            Target::Bootstrap => None,
        }
        .unwrap_or(&cluster.offered_bootstrap)
        .clone()
    }

    /// Notes a broker named in a forwarded response (its upstream address): a node the map
    /// does not have, or at another address, is added at once (so that clients can reach it)
    /// and the background refresher is woken to ask it for its versions.
    pub fn seen(&self, id: i32, host: &str, port: i32) {
        if !self.routable(id) {
            return;
        }
        let addr = join_host_port(host, port);
        let cluster = self.snapshot();
        if cluster.nodes.get(&id).is_some_and(|n| n.addr == addr) {
            return;
        }
        let mut next = Cluster::clone(&cluster);
        tracing::info!(node = id, address = %addr, "broker learned from a response");
        next.nodes.insert(
            id,
            Node {
                addr,
                versions: None,
            },
        );
        self.swap(next);
        self.changed.notify_one();
    }

    /// Notes a broker left out of a response because its id is outside `node_ids`.
    pub fn unmapped(&self, id: i32) {
        self.metrics.brokers_unmapped(id);
    }

    /// Whether node `id` can be routed (is inside `node_ids`).
    pub fn routable(&self, id: i32) -> bool {
        in_ranges(&self.node_ids, id)
    }

    /// Opens (and logs in) the upstream connection of a session for `target`: the node's
    /// broker, after one refresh of the map when the node is not known yet; for the bootstrap
    /// listener, the brokers of the map in turn, then the `--upstream` list. Returns the
    /// connection and the broker's address.
    ///
    /// # Errors
    /// [`ConnectError::UnknownNode`] when the cluster has no such node,
    /// [`ConnectError::Unreachable`] when no candidate answers.
    pub async fn connect(&self, target: Target) -> Result<(Connected, String), ConnectError> {
        let candidates = match target {
            Target::Node(id) => {
                let addr = match self.address(id) {
                    Some(a) => a,
                    None => {
                        let _ = self.refresh().await;
                        self.address(id).ok_or(ConnectError::UnknownNode(id))?
                    }
                };
                vec![addr]
            }
            Target::Bootstrap => self.candidates(),
        };
        let mut errors = Vec::new();
        for addr in candidates {
            match upstream::connect(&self.connector, &addr).await {
                Ok(c) => return Ok((c, addr)),
                Err(e) => {
                    if !e.is_transient() {
                        tracing::error!(upstream = %addr, error = %e, "the broker refuses the gateway's login");
                    }
                    errors.push(e.to_string());
                }
            }
        }
        Err(ConnectError::Unreachable(errors.join("; ")))
    }

    /// Every broker address worth trying, the known brokers first (rotating, so that bootstrap
    /// connections spread over the cluster), then the `--upstream` list.
    fn candidates(&self) -> Vec<String> {
        let cluster = self.snapshot();
        let mut known: Vec<String> = cluster.nodes.values().map(|n| n.addr.clone()).collect();
        if !known.is_empty() {
            let start = self.next.fetch_add(1, Ordering::Relaxed) % known.len();
            known.rotate_left(start);
        }
        for b in &self.bootstrap {
            if !known.contains(b) {
                known.push(b.clone());
            }
        }
        known
    }

    /// Asks the cluster for its brokers and each broker for its API versions, and swaps the
    /// map. Single-flight: a caller that finds a refresh running waits for it and takes its
    /// result; refreshes are at least [`MIN_REFRESH_INTERVAL`] apart (a caller waits for the
    /// interval rather than being refused).
    ///
    /// # Errors
    /// Why no broker answered: a login the broker refuses (not transient) before a broker
    /// that is not reachable.
    pub async fn refresh(&self) -> Result<(), UpstreamError> {
        let asked = Instant::now();
        let mut last = self.refreshing.lock().await;
        if let Some(t) = *last {
            if t >= asked {
                // A refresh ended after this one was asked for: the map is that fresh.
                return Ok(());
            }
            tokio::time::sleep_until(t + MIN_REFRESH_INTERVAL).await;
        }
        let result = self.refresh_now().await;
        *last = Some(Instant::now());
        self.metrics
            .broker_refresh(if result.is_ok() { "ok" } else { "failed" });
        result
    }

    async fn refresh_now(&self) -> Result<(), UpstreamError> {
        let mut failure: Option<UpstreamError> = None;
        let mut found = None;
        for addr in self.candidates() {
            match self.ask_cluster(&addr).await {
                Ok(brokers) => {
                    found = Some(brokers);
                    break;
                }
                Err(e) => {
                    // Keep the worst: a refused login says more than an absent broker.
                    if failure.as_ref().is_none_or(UpstreamError::is_transient) {
                        failure = Some(e);
                    }
                }
            }
        }
        let Some(brokers) = found else {
            return Err(
                failure.unwrap_or_else(|| UpstreamError::Setup("no broker to ask".to_owned()))
            );
        };
        let old = self.snapshot();
        let mut next = Cluster::clone(&old);
        next.known = true;
        let mut probes = Vec::new();
        for (id, addr) in brokers {
            if !self.routable(id) {
                tracing::warn!(node = id, address = %addr, "broker outside `node_ids`: clients cannot reach it through the gateway");
                continue;
            }
            probes.push((id, addr));
        }
        let mut asked = tokio::task::JoinSet::new();
        for (id, addr) in probes {
            let connector = Arc::clone(&self.connector);
            asked.spawn(async move {
                let versions = ask_versions(&connector, &addr).await;
                (id, addr, versions)
            });
        }
        while let Some(done) = asked.join_next().await {
            let Ok((id, addr, versions)) = done else {
                continue;
            };
            let versions = match versions {
                Ok(v) => Some(Arc::new(v)),
                Err(e) => {
                    tracing::warn!(node = id, address = %addr, error = %e, "broker did not answer ApiVersions");
                    // Keep what it said before, at the same address.
                    old.nodes
                        .get(&id)
                        .filter(|n| n.addr == addr)
                        .and_then(|n| n.versions.clone())
                }
            };
            next.nodes.insert(id, Node { addr, versions });
        }
        self.swap(next);
        Ok(())
    }

    /// Asks one broker for the brokers of the cluster: node id and `host:port`.
    async fn ask_cluster(&self, addr: &str) -> Result<Vec<(i32, String)>, UpstreamError> {
        let mut c = upstream::connect(&self.connector, addr).await?;
        let stream = &mut c.stream;
        within(addr, async {
            let protocol = |reason: String| UpstreamError::Protocol {
                addr: addr.to_owned(),
                reason,
            };
            let versions = versions_on(stream, addr).await?;
            let range = versions
                .api_keys
                .iter()
                .find(|k| k.api_key == ApiKey::Metadata as i16)
                .ok_or_else(|| protocol("the broker does not serve Metadata".to_owned()))?;
            let version = METADATA_VERSION.min(range.max_version);
            if version < range.min_version || version < 1 {
                return Err(protocol(format!(
                    "the broker serves Metadata v{}-{}, the gateway asks with v1-{METADATA_VERSION}",
                    range.min_version, range.max_version
                )));
            }
            let mut body = MetadataRequest::default();
            body.topics = Some(Vec::new());
            let resp: MetadataResponse =
                call(stream, addr, ApiKey::Metadata, version, 2, &body).await?;
            Ok(resp
                .brokers
                .iter()
                .map(|b| (b.node_id.0, join_host_port(b.host.as_str(), b.port)))
                .collect())
        })
        .await
    }

    /// Keeps the map fresh: every `interval` once the cluster answered (`known`: at start),
    /// retrying with backoff until it does, and when a response names a broker the map did not
    /// have.
    pub async fn run(self: Arc<Self>, interval: Duration, known: bool) {
        let mut backoff = Duration::from_millis(250);
        let mut wait = if known { interval } else { backoff };
        loop {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.changed.notified() => {}
            }
            wait = match self.refresh().await {
                Ok(()) => {
                    backoff = Duration::from_millis(250);
                    interval
                }
                Err(e) => {
                    tracing::warn!(upstream = ?self.bootstrap, error = %e, "cannot reach the upstream cluster");
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    backoff
                }
            };
        }
    }
}

/// The client-facing addresses and the broker map, as the per-API checks see them.
pub struct Routes {
    /// Where clients reach each node.
    pub addresses: Arc<Addresses>,
    /// Where each node really is.
    pub brokers: Arc<Brokers>,
}

impl acl::Nodes for Routes {
    fn advertise(&self, id: i32) -> Option<(StrBytes, i32)> {
        self.addresses.node(id).cloned()
    }

    fn seen(&self, id: i32, host: &str, port: i32) {
        self.brokers.seen(id, host, port);
    }

    fn unmapped(&self, id: i32) {
        tracing::debug!(
            node = id,
            "broker outside `node_ids` left out of a response"
        );
        self.brokers.unmapped(id);
    }
}

/// The intersection of several brokers' ApiVersions: an API every one of them serves, at the
/// versions all of them serve.
fn intersect(all: &[&ApiVersionsResponse]) -> ApiVersionsResponse {
    let mut out = ApiVersionsResponse::default();
    let Some((first, rest)) = all.split_first() else {
        return out;
    };
    for k in &first.api_keys {
        let (mut lo, mut hi) = (k.min_version, k.max_version);
        let everywhere = rest.iter().all(|r| {
            r.api_keys
                .iter()
                .find(|o| o.api_key == k.api_key)
                .is_some_and(|o| {
                    lo = lo.max(o.min_version);
                    hi = hi.min(o.max_version);
                    true
                })
        });
        if everywhere && lo <= hi {
            let mut v = ApiVersion::default();
            v.api_key = k.api_key;
            v.min_version = lo;
            v.max_version = hi;
            out.api_keys.push(v);
        }
    }
    out
}

fn join_host_port(host: &str, port: i32) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Runs one of the gateway's own exchanges with a broker within [`UPSTREAM_TIMEOUT`].
async fn within<T>(
    addr: &str,
    f: impl std::future::Future<Output = Result<T, UpstreamError>>,
) -> Result<T, UpstreamError> {
    tokio::time::timeout(UPSTREAM_TIMEOUT, f)
        .await
        .unwrap_or_else(|_| Err(UpstreamError::Timeout(addr.to_owned())))
}

/// Asks one broker which API versions it supports.
async fn ask_versions(
    connector: &Upstream,
    addr: &str,
) -> Result<ApiVersionsResponse, UpstreamError> {
    let mut c = upstream::connect(connector, addr).await?;
    within(addr, versions_on(&mut c.stream, addr)).await
}

/// Sends one request of the gateway's own and reads its response.
async fn call<S, Q, P>(
    stream: &mut S,
    addr: &str,
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &Q,
) -> Result<P, UpstreamError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    Q: Encodable,
    P: Decodable,
{
    let protocol = |reason: String| UpstreamError::Protocol {
        addr: addr.to_owned(),
        reason: format!("{api:?}: {reason}"),
    };
    let mut header = RequestHeader::default();
    header.request_api_key = api as i16;
    header.request_api_version = version;
    header.correlation_id = correlation_id;
    header.client_id = Some(StrBytes::from_static_str("poolgate-gateway"));
    let mut out = BytesMut::new();
    out.put_i32(0);
    header
        .encode(&mut out, api.request_header_version(version))
        .map_err(|e| protocol(e.to_string()))?;
    body.encode(&mut out, version)
        .map_err(|e| protocol(e.to_string()))?;
    let len = i32::try_from(out.len() - 4).map_err(|e| protocol(e.to_string()))?;
    out[..4].copy_from_slice(&len.to_be_bytes());
    stream
        .write_all(&out)
        .await
        .map_err(|e| upstream::after_connect(addr, &format!("{api:?}"), &e))?;
    let payload = match wire::Frames::default().next(stream, 16 << 20).await {
        Ok(p) => p,
        Err(wire::WireError::Io(e)) => {
            return Err(upstream::after_connect(addr, &format!("{api:?}"), &e));
        }
        Err(e) => return Err(protocol(e.to_string())),
    };
    let (id, mut body) = wire::split_response(api, version, payload.slice(4..))
        .map_err(|e| protocol(e.to_string()))?;
    if id != correlation_id {
        return Err(protocol(format!(
            "answered correlation id {id} to request {correlation_id}"
        )));
    }
    P::decode(&mut body, version).map_err(|e| protocol(e.to_string()))
}

/// ApiVersions on a logged-in connection.
async fn versions_on<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    addr: &str,
) -> Result<ApiVersionsResponse, UpstreamError> {
    let mut body = ApiVersionsRequest::default();
    body.client_software_name = StrBytes::from_static_str("poolgate");
    body.client_software_version = StrBytes::from_static_str(env!("CARGO_PKG_VERSION"));
    let resp: ApiVersionsResponse = call(stream, addr, ApiKey::ApiVersions, 3, 1, &body).await?;
    if resp.error_code != 0 {
        return Err(UpstreamError::Protocol {
            addr: addr.to_owned(),
            reason: format!("ApiVersions error code {}", resp.error_code),
        });
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn versions(ranges: &[(ApiKey, i16, i16)]) -> ApiVersionsResponse {
        let mut r = ApiVersionsResponse::default();
        for &(k, lo, hi) in ranges {
            let mut v = ApiVersion::default();
            v.api_key = k as i16;
            v.min_version = lo;
            v.max_version = hi;
            r.api_keys.push(v);
        }
        r
    }

    fn ranges(r: &ApiVersionsResponse) -> Vec<(i16, i16, i16)> {
        r.api_keys
            .iter()
            .map(|k| (k.api_key, k.min_version, k.max_version))
            .collect()
    }

    #[test]
    fn intersection_keeps_what_every_broker_serves() {
        let a = versions(&[
            (ApiKey::Produce, 3, 12),
            (ApiKey::Fetch, 4, 17),
            (ApiKey::Metadata, 0, 12),
        ]);
        // An older broker in a rolling upgrade: lower maxima, no Fetch.
        let b = versions(&[(ApiKey::Produce, 0, 9), (ApiKey::Metadata, 4, 13)]);
        assert_eq!(
            ranges(&intersect(&[&a, &b])),
            [(0, 3, 9), (3, 4, 12)],
            "Produce 3-9 and Metadata 4-12; Fetch is not served everywhere"
        );
        // Disjoint ranges leave the API out.
        let c = versions(&[(ApiKey::Produce, 10, 12)]);
        assert_eq!(ranges(&intersect(&[&b, &c])), []);
        assert_eq!(ranges(&intersect(&[&a])), ranges(&a));
        assert_eq!(ranges(&intersect(&[])), []);
    }

    #[test]
    fn host_and_port_join_with_brackets_for_ipv6() {
        assert_eq!(join_host_port("b1.internal", 9092), "b1.internal:9092");
        assert_eq!(join_host_port("::1", 9092), "[::1]:9092");
        assert_eq!(join_host_port("[::1]", 9092), "[::1]:9092");
    }
}
