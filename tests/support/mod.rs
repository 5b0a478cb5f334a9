//! The harness the end-to-end suites share (tests/e2e*.rs, tests/kafka_*.rs), included by each
//! with `mod support;`: where `e2e/setup` put its installs, the binary's one Kafka cluster kept
//! in a `static`, the lock a test takes to have that cluster alone, child processes and folders
//! cleaned up on drop, the issuer, the gateway and the librdkafka client as the suites start
//! them, and the clients' JSON output. Each suite uses the part it needs.

#![allow(dead_code, reason = "each suite uses a part of the harness")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, ListOffsetsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use poolgate::testkit::cluster::{KafkaCluster, kafka_libs};
use poolgate::testkit::kafka::KafkaClient;
use poolgate::testkit::stack::{GatewayProcess, gateway_config};
use poolgate::testkit::{Client, IssuerConfig, TestIssuer};
use serde_json::Value;

/// The JVM property Kafka 4 clients need to use a token endpoint at all.
pub const ALLOWED_URLS: &str = "org.apache.kafka.sasl.oauthbearer.allowed.urls";

/// Where `e2e/setup` put its installs (`$POOLGATE_E2E_CACHE`, else `~/.cache/poolgate-e2e`).
pub fn cache() -> PathBuf {
    match std::env::var_os("POOLGATE_E2E_CACHE") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/poolgate-e2e"),
    }
}

/// The Python of the virtualenv `e2e/setup` makes (with `confluent-kafka`, for e2e/client.py).
pub fn python() -> PathBuf {
    let dir = cache();
    let python = dir.join("venv/bin/python");
    assert!(
        python.exists(),
        "{} lacks the virtualenv: run e2e/setup first (or e2e/run)",
        dir.display()
    );
    python
}

/// `java` (from `JAVA_HOME` when set, as the cluster does), `javac` and `keytool` beside it.
pub fn jdk_tool(name: &str) -> PathBuf {
    std::env::var_os("JAVA_HOME")
        .map(|home| PathBuf::from(home).join("bin").join(name))
        .filter(|tool| tool.exists())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// `mutex` locked, also when a test panicked while holding it.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The binary's one cluster, started by `start` (given Kafka's jars) for the first test that
/// asks; a failed start is reported to every test. Kept in a `static`, it is never dropped: the
/// nodes' watchdogs stop them when the binary exits. `suite` names the binary in the log.
pub fn shared_cluster(
    suite: &str,
    start: impl FnOnce(&Path) -> std::io::Result<KafkaCluster>,
) -> MutexGuard<'static, KafkaCluster> {
    static SHARED: OnceLock<Result<Mutex<KafkaCluster>, String>> = OnceLock::new();
    let shared = SHARED.get_or_init(|| {
        let libs = kafka_libs().ok_or("no Apache Kafka: run e2e/setup first (or e2e/run)")?;
        let started = Instant::now();
        let cluster = start(&libs).map_err(|e| e.to_string())?;
        eprintln!(
            "{suite}: {}-broker cluster up in {:.1} s",
            cluster.node_ids().len(),
            started.elapsed().as_secs_f64()
        );
        Ok(Mutex::new(cluster))
    });
    match shared {
        Ok(m) => lock(m),
        Err(e) => panic!("the Kafka cluster did not start: {e}"),
    }
}

/// Held by every test for its whole run: shared by the tests that only use the cluster, taken
/// alone by one that stops or restarts a broker.
static EXCLUSIVE: RwLock<()> = RwLock::new(());

/// A test's hold on the binary's cluster.
pub enum Hold {
    /// Held, not read.
    Shared(RwLockReadGuard<'static, ()>),
    /// Held, not read.
    Alone(RwLockWriteGuard<'static, ()>),
}

impl Hold {
    pub fn shared() -> Hold {
        Hold::Shared(EXCLUSIVE.read().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn alone() -> Hold {
        Hold::Alone(EXCLUSIVE.write().unwrap_or_else(|p| p.into_inner()))
    }
}

/// A child process killed (by its id) and reaped on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A folder of its own, `poolgate-NAME-PID` in the system's temporary folder, removed on drop
/// (kept when the test fails, for the clients' files and logs).
pub struct TempDir(PathBuf);

impl TempDir {
    /// The folder for `name`, new and empty.
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("poolgate-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// `file` in the folder.
    pub fn join(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("files kept in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A multi-threaded runtime with `workers` threads, for the issuer and the tests' Kafka calls.
pub fn runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap()
}

/// A local issuer served on `rt` with the clients of testdata/gateway/clients.toml and `more`.
///
/// # Errors
/// When the clients file cannot be read or the issuer cannot start.
pub fn gateway_issuer(
    rt: &tokio::runtime::Runtime,
    more: Vec<Client>,
) -> Result<TestIssuer, String> {
    let file = "testdata/gateway/clients.toml";
    let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
    let mut clients = poolgate::cli::parse_clients(&text, file).map_err(|e| e.to_string())?;
    clients.extend(more);
    rt.block_on(TestIssuer::start_with(IssuerConfig {
        clients,
        ..IssuerConfig::default()
    }))
    .map_err(|e| e.to_string())
}

/// The gateway configuration template (testdata/gateway/gateway.toml) filled in for `issuer`.
pub fn gateway_toml(issuer: &TestIssuer) -> String {
    let template = std::fs::read_to_string("testdata/gateway/gateway.toml").unwrap();
    gateway_config(&template, issuer)
}

/// `poolgate gateway` with `config` in front of `upstream` on a free 127.0.0.1 port, with
/// metrics on another and `extra` arguments.
pub fn spawn_gateway(config: &Path, upstream: &str, extra: &[&str]) -> GatewayProcess {
    let mut args = vec!["--metrics-listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    GatewayProcess::spawn(
        Path::new(env!("CARGO_BIN_EXE_poolgate")),
        config,
        upstream,
        &args,
    )
    .unwrap()
}

/// The librdkafka client (e2e/client.py) through `bootstrap` as `client_id` (whose secret is
/// `CLIENT_ID-secret`) with the SASL `extensions`, giving up after `timeout_s` seconds.
pub fn librdkafka(
    bootstrap: &str,
    token_url: &str,
    client_id: &str,
    extensions: &str,
    timeout_s: u32,
) -> Command {
    let mut cmd = Command::new(python());
    cmd.arg("e2e/client.py")
        .args(["--bootstrap", bootstrap])
        .args(["--token-url", token_url])
        .args(["--client-id", client_id])
        .args(["--client-secret", &format!("{client_id}-secret")])
        .args(["--extensions", extensions])
        .args(["--timeout", &timeout_s.to_string()])
        .stderr(Stdio::null());
    cmd
}

/// The librdkafka client straight to `bootstrap`, without the gateway or authentication.
pub fn librdkafka_plain(bootstrap: &str, timeout_s: u32) -> Command {
    let mut cmd = Command::new(python());
    cmd.arg("e2e/client.py")
        .args(["--bootstrap", bootstrap, "--plain"])
        .args(["--timeout", &timeout_s.to_string()])
        .stderr(Stdio::null());
    cmd
}

/// The last JSON line a client prints (e2e/client.py, e2e/kafkajs/client.js, e2e/franz).
pub fn json_of(mut cmd: Command) -> Value {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_else(|| {
        panic!(
            "no output from {cmd:?} (exit {:?}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    });
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

/// A topic of `partitions` partitions on three brokers, each partition led by broker `leader`,
/// with the topic configs `configs`.
pub fn create_led_topic(
    cluster: &KafkaCluster,
    topic: &str,
    partitions: i32,
    leader: i32,
    configs: &[(&str, &str)],
) {
    let assignment = cluster.led_by(leader, usize::try_from(partitions).unwrap(), 3);
    cluster
        .create_topic(topic, partitions, 3, Some(&assignment), configs)
        .unwrap();
}

/// The end offset of each of partitions `0..partitions` of `topic`, asked of `broker` directly.
pub async fn end_offsets(broker: &str, topic: &str, partitions: i32) -> Vec<i64> {
    let mut c = KafkaClient::connect(broker).await.unwrap();
    let mut t = ListOffsetsTopic::default();
    t.name = TopicName(StrBytes::from_string(topic.to_owned()));
    t.partitions = (0..partitions)
        .map(|i| {
            let mut p = ListOffsetsPartition::default();
            p.partition_index = i;
            p.timestamp = -1;
            p
        })
        .collect();
    let mut req = ListOffsetsRequest::default();
    req.replica_id = BrokerId(-1);
    req.topics = vec![t];
    let resp = c.call(5, req).await.unwrap();
    resp.topics[0]
        .partitions
        .iter()
        .map(|p| {
            assert_eq!(p.error_code, 0, "ListOffsets on {topic}");
            p.offset
        })
        .collect()
}
