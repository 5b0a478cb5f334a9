//! What the gateway benchmarks (`gateway.rs`, `cluster.rs`) share: their test mode, process CPU
//! time from `/proc`, units, the issuer and the login every session sends, the gateway started
//! quiet, and the client's ApiVersions and login.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiVersionsRequest, FetchRequest, ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use poolgate::sasl::ClientFirstMessage;
use poolgate::testkit::kafka::KafkaClient;
use poolgate::testkit::stack::{GatewayProcess, gateway_config};
use poolgate::testkit::{IssuerConfig, TestIssuer};
use serde_json::json;

/// `cargo bench -- --test` (or `cargo test --benches`): run everything once, small.
pub fn test_mode() -> bool {
    std::env::args().any(|a| a == "--test")
}

/// CPU time of the process `pid` so far.
pub fn cpu_of(pid: u32) -> Duration {
    cpu_time(&format!("/proc/{pid}/stat"))
}

/// User + system CPU time of a process so far, from `/proc` (zero where there is none).
pub fn cpu_time(stat_file: &str) -> Duration {
    let Ok(stat) = std::fs::read_to_string(stat_file) else {
        return Duration::ZERO;
    };
    // After the command name (in parentheses, field 2): state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // In clock ticks of 1/100 s (USER_HZ on Linux).
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// Milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Microseconds.
pub fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The median, `None` for no values.
pub fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len().is_multiple_of(2) {
        f64::midpoint(v[mid - 1], v[mid])
    } else {
        v[mid]
    })
}

/// How the summary reports a target.
pub fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

/// The clients of testdata/gateway/clients.toml at a local issuer, served by a runtime of its
/// own (so that the benchmark's client runtime only runs the client). Drop the issuer first.
pub fn issuer() -> (tokio::runtime::Runtime, TestIssuer) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("issuer runtime");
    let clients_file = root.join("testdata/gateway/clients.toml");
    let clients = poolgate::cli::parse_clients(
        &std::fs::read_to_string(&clients_file).expect("read clients.toml"),
        &clients_file.display().to_string(),
    )
    .expect("parse clients.toml");
    let issuer = rt
        .block_on(TestIssuer::start_with(IssuerConfig {
            clients,
            ..IssuerConfig::default()
        }))
        .expect("start the issuer");
    (rt, issuer)
}

/// The SASL client first message of a `pool-writers` token of `issuer` for the logical cluster
/// `cluster`: one token, the same bytes every login.
pub fn writer_login(issuer: &TestIssuer, cluster: &str) -> Vec<u8> {
    let token = issuer
        .mint()
        .claim("sub", json!("bench"))
        .claim("groups", json!(["kafka-writers"]))
        .sign();
    ClientFirstMessage::new(token)
        .extension("logicalCluster", cluster)
        .extension("identityPoolId", "pool-writers")
        .build()
        .expect("client first message")
        .to_bytes()
}

/// A folder of its own in the system's temporary folder, `poolgate-NAME-PID`, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("poolgate-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    /// `file` in the folder.
    pub fn join(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }

    /// The gateway configuration template (testdata/gateway/gateway.toml) for `issuer`, changed
    /// by `edit`, written to `gateway.toml` in the folder.
    pub fn gateway_config(
        &self,
        issuer: &TestIssuer,
        edit: impl FnOnce(String) -> String,
    ) -> PathBuf {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let template = std::fs::read_to_string(root.join("testdata/gateway/gateway.toml"))
            .expect("read gateway.toml");
        let config = self.join("gateway.toml");
        std::fs::write(&config, edit(gateway_config(&template, issuer)))
            .expect("write gateway.toml");
        config
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `poolgate gateway` (`binary`) with `config` in front of `upstream`, errors only on stderr: at
/// the gateway's default level (`warn,poolgate::audit=info`) every login writes an audit line,
/// which would be part of every measured login.
pub fn quiet_gateway(
    binary: &Path,
    config: &Path,
    upstream: &str,
    extra: &[&str],
) -> GatewayProcess {
    GatewayProcess::spawn_with_env(binary, config, upstream, extra, &[("RUST_LOG", "error")])
        .expect("start poolgate gateway")
}

/// ApiVersions v3 on `c`, success asserted.
pub async fn api_versions(c: &mut KafkaClient) {
    let mut req = ApiVersionsRequest::default();
    req.client_software_name = StrBytes::from_static_str("poolgate-bench");
    req.client_software_version = StrBytes::from_static_str(env!("CARGO_PKG_VERSION"));
    let resp = c.call(3, req).await.expect("ApiVersions v3");
    assert_eq!(resp.error_code, 0, "ApiVersions error");
}

/// ApiVersions v3 + SaslHandshake v1 + SaslAuthenticate v2 on `c` with `login`, success
/// asserted.
pub async fn log_in(c: &mut KafkaClient, login: &[u8]) {
    api_versions(c).await;
    let resp = c.sasl_oauthbearer(login).await.expect("SASL exchange");
    assert_eq!(resp.error_code, 0, "SaslAuthenticate error code");
    // A refused token also comes with error code 0 and the RFC 7628 error challenge.
    assert!(
        resp.auth_bytes.is_empty(),
        "login refused: {}",
        String::from_utf8_lossy(&resp.auth_bytes)
    );
    assert!(resp.session_lifetime_ms > 0, "no session lifetime");
}

/// A new connection to `addr` (a broker), without authentication: connect + ApiVersions v3.
pub async fn direct(addr: &str) -> KafkaClient {
    let mut c = KafkaClient::connect(addr)
        .await
        .expect("connect to the broker");
    api_versions(&mut c).await;
    c
}

/// A new connection to the gateway at `addr`, logged in: connect + ApiVersions v3 +
/// SaslHandshake v1 + SaslAuthenticate v2. Dropping the client closes the connection.
pub async fn session(addr: &str, login: &[u8]) -> KafkaClient {
    let mut c = KafkaClient::connect(addr)
        .await
        .expect("connect to the gateway");
    log_in(&mut c, login).await;
    c
}

/// Waits until a login through the gateway at `addr` succeeds (the first one fetches the
/// issuer's keys and fills the token cache), asking again every 100 ms for at most 30 s.
pub async fn first_login(addr: &str, login: &[u8]) {
    let started = Instant::now();
    loop {
        let attempt = async {
            let mut c = KafkaClient::connect(addr).await.ok()?;
            let resp = c.sasl_oauthbearer(login).await.ok()?;
            (resp.error_code == 0 && resp.auth_bytes.is_empty()).then_some(())
        };
        if attempt.await.is_some() {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no successful login through the gateway within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A Produce request (acks=1) of `batch` to `partition` of `topic`.
pub fn produce_request(topic: &'static str, partition: i32, batch: bytes::Bytes) -> ProduceRequest {
    let mut p = PartitionProduceData::default();
    p.index = partition;
    p.records = Some(batch);
    let mut t = TopicProduceData::default();
    t.name = TopicName(StrBytes::from_static_str(topic));
    t.partition_data = vec![p];
    let mut req = ProduceRequest::default();
    req.acks = 1;
    req.timeout_ms = 30_000;
    req.topic_data = vec![t];
    req
}

/// Sends `window` copies of `req` at `version`, then receives their responses, in order, each
/// with its one partition accepted; returns the record bytes produced.
pub async fn produce_window(
    c: &mut KafkaClient,
    req: &ProduceRequest,
    version: i16,
    window: usize,
) -> u64 {
    let mut ids = Vec::with_capacity(window);
    for _ in 0..window {
        ids.push(c.send(version, req).await.expect("send ProduceRequest"));
    }
    for id in ids {
        let (got, resp) = c
            .recv::<ProduceRequest>(version)
            .await
            .expect("receive ProduceResponse");
        assert_eq!(got, id, "responses in request order");
        let mut partitions = 0;
        for t in &resp.responses {
            for p in &t.partition_responses {
                assert_eq!(
                    p.error_code, 0,
                    "produce to {}/{}: error code {}",
                    t.name.0, p.index, p.error_code
                );
                partitions += 1;
            }
        }
        assert_eq!(partitions, 1, "one partition response per request");
    }
    let batch = req.topic_data[0].partition_data[0]
        .records
        .as_ref()
        .map_or(0, bytes::Bytes::len);
    (window * batch) as u64
}

/// Sends the fetch requests `reqs` at `version`, then receives their responses, in order, each
/// with records; returns the record bytes fetched.
pub async fn fetch_window(c: &mut KafkaClient, reqs: &[&FetchRequest], version: i16) -> u64 {
    let mut ids = Vec::with_capacity(reqs.len());
    for req in reqs {
        ids.push(c.send(version, *req).await.expect("send FetchRequest"));
    }
    let mut bytes = 0;
    for id in ids {
        let (got, resp) = c
            .recv::<FetchRequest>(version)
            .await
            .expect("receive FetchResponse");
        assert_eq!(got, id, "responses in request order");
        assert_eq!(resp.error_code, 0, "fetch error code");
        let p = &resp.responses[0].partitions[0];
        assert_eq!(p.error_code, 0, "fetch partition error code");
        let n = p.records.as_ref().map_or(0, bytes::Bytes::len);
        assert!(n > 0, "fetch returned no records");
        bytes += n as u64;
    }
    bytes
}
