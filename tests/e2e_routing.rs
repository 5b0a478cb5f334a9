//! The gateway in front of a whole cluster, end to end: `poolgate gateway` routing to every
//! broker of a three-broker Apache Kafka cluster (`testkit::cluster`), a port per broker or one
//! TLS port with a server name per broker, with real clients: librdkafka (Python
//! `confluent-kafka`, e2e/client.py), kafkajs (e2e/kafkajs) and Apache Kafka's Java client
//! (e2e/java/RoutingClient.java, which reports every acknowledged record). The clients are given
//! the gateway's bootstrap address only; what they write is read back through the gateway and
//! straight from the cluster. Needs `e2e/setup`; `e2e/run` runs it.
//!
//! One cluster serves every test of this binary; each test has its own issuer, gateway(s) and
//! topics, spread so that every broker leads some partitions. The tests that stop or crash a
//! broker hold the cluster alone meanwhile, and hand it back with every broker running and
//! leading its preferred partitions. The Java client is compiled once per run with `javac`,
//! against the cluster's jars.
//!
//! The harness shared with the other end-to-end suites (the cluster-in-a-static, the `Hold`
//! lock, `Proc`, `TempDir`, `json_of`) is in tests/support.

#![cfg(feature = "cli")]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use kafka_protocol::messages::FindCoordinatorRequest;
use kafka_protocol::protocol::StrBytes;
use poolgate::testkit::TestIssuer;
use poolgate::testkit::cluster::{KafkaCluster, kafka_libs};
use poolgate::testkit::kafka::KafkaClient;
use poolgate::testkit::stack::GatewayProcess;
use serde_json::{Value, json};
use support::{ALLOWED_URLS, Hold, Proc, TempDir, cache, jdk_tool, json_of};

const CLUSTER: &str = "lkc-e2e";

/// Partitions of every test topic: two led by each broker.
const PARTITIONS: i32 = 6;

/// How long any observable condition may take (generous: two cores, three JVMs, builds beside).
const WAIT: Duration = Duration::from_secs(90);

/// The binary's one cluster (see [`support::shared_cluster`]): three brokers, group offsets
/// spread over them as Kafka places them.
fn cluster() -> MutexGuard<'static, KafkaCluster> {
    support::shared_cluster("e2e_routing", |libs| KafkaCluster::start(libs, 3))
}

/// e2e/java/RoutingClient.java compiled against the cluster's jars, once per test binary.
fn java_classes() -> &'static Path {
    static CLASSES: OnceLock<PathBuf> = OnceLock::new();
    CLASSES.get_or_init(|| {
        let libs = kafka_libs().expect("no Apache Kafka: run e2e/setup first (or e2e/run)");
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-routing-java");
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out).unwrap();
        let javac = Command::new(jdk_tool("javac"))
            .args(["-J-Xmx192m", "-nowarn", "-cp"])
            .arg(format!("{}/*", libs.display()))
            .arg("-d")
            .arg(&out)
            .arg("e2e/java/RoutingClient.java")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(javac.status.success(), "javac: {javac:?}");
        out
    })
}

/// Kafka's client logging: warnings and errors to standard error (which the tests keep in a
/// file), never to standard output, which carries the JSON lines.
const CLIENT_LOG4J2: &str = "\
status = warn
appender.err.type = Console
appender.err.name = err
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.err.ref = err
";

/// One record as a client reads it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Record {
    key: String,
    value: String,
    partition: i32,
    offset: i64,
}

/// One issuer (the clients of testdata/gateway/clients.toml) and a folder, for a test's
/// gateways and clients.
struct Stack {
    rt: tokio::runtime::Runtime,
    issuer: TestIssuer,
    dir: TempDir,
    _hold: Hold,
}

impl Stack {
    fn start(name: &str, hold: Hold) -> Stack {
        let rt = support::runtime(2);
        let issuer = support::gateway_issuer(&rt, Vec::new()).unwrap();
        let dir = TempDir::new(&format!("e2e-routing-{name}"));
        std::fs::write(dir.join("log4j2.properties"), CLIENT_LOG4J2).unwrap();
        Stack {
            rt,
            issuer,
            dir,
            _hold: hold,
        }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// The gateway template with its `[gateway]` section extended by `gateway_lines`.
    fn config(&self, file: &str, gateway_lines: &str) -> PathBuf {
        let template = support::gateway_toml(&self.issuer);
        assert!(template.contains("\n[gateway]\n"));
        let text = template.replace("\n[gateway]\n", &format!("\n[gateway]\n{gateway_lines}"));
        let path = self.path(file);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// A gateway on a free 127.0.0.1 port in front of the whole cluster (its bootstrap list),
    /// with metrics.
    fn gateway(&self, config: &Path, extra: &[&str]) -> GatewayProcess {
        let upstream = cluster().bootstrap();
        support::spawn_gateway(config, &upstream, extra)
    }

    /// Java client properties for `client_id` of `pool` (the guide's, as tests/e2e_java.rs
    /// has them), over `protocol`, with `extra` lines.
    fn java_properties(
        &self,
        file: &str,
        client_id: &str,
        pool: &str,
        protocol: &str,
        extra: &[String],
    ) -> PathBuf {
        let mut text = format!(
            "sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required clientId=\"{client_id}\" clientSecret=\"{client_id}-secret\" extension_logicalCluster='{CLUSTER}' extension_identityPoolId='{pool}';\n\
             sasl.oauthbearer.token.endpoint.url={token_url}\n\
             sasl.login.callback.handler.class=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler\n\
             sasl.mechanism=OAUTHBEARER\n\
             security.protocol={protocol}\n",
            token_url = self.issuer.token_url(),
        );
        for line in extra {
            text.push_str(line);
            text.push('\n');
        }
        let path = self.path(file);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `java RoutingClient ARGS`, small, with the token endpoint allowed and `jvm` options;
    /// standard error into `log` in the test's folder.
    fn java(&self, log: &str, jvm: &[String], args: &[&str]) -> Command {
        let libs = kafka_libs().unwrap();
        let mut cmd = Command::new(jdk_tool("java"));
        cmd.args([
            "-Xmx160m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-Djava.awt.headless=true",
        ])
        .arg(format!("-D{ALLOWED_URLS}={}", self.issuer.token_url()))
        .arg(format!(
            "-Dlog4j2.configurationFile={}",
            self.path("log4j2.properties").display()
        ))
        .args(jvm)
        .arg("-cp")
        .arg(format!("{}/*:{}", libs.display(), java_classes().display()))
        .arg("RoutingClient")
        .args(args)
        .stdin(Stdio::null())
        .stderr(std::fs::File::create(self.path(log)).unwrap());
        cmd
    }

    /// The Java client reading `count` records of `topic` in `group`, from the earliest.
    #[expect(clippy::too_many_arguments, reason = "the client's command line")]
    fn java_consume(
        &self,
        log: &str,
        jvm: &[String],
        config: &Path,
        bootstrap: &str,
        topic: &str,
        group: &str,
        count: usize,
    ) -> Vec<Record> {
        let cmd = self.java(
            log,
            jvm,
            &[
                "consume",
                config.to_str().unwrap(),
                bootstrap,
                topic,
                group,
                &count.to_string(),
                &WAIT.as_millis().to_string(),
            ],
        );
        let (records, done) = records_of(cmd);
        assert_eq!(done["distinct"], json!(count), "{done}\n{}", self.log(log));
        records
    }

    /// Every record of `topic`, read by the Java client straight from the cluster, without the
    /// gateway or authentication.
    fn read_direct(&self, topic: &str) -> Vec<Record> {
        let bootstrap = cluster().bootstrap();
        let log = format!("{topic}-direct.log");
        let cmd = self.java(
            &log,
            &[],
            &[
                "dump",
                "-",
                &bootstrap,
                topic,
                &WAIT.as_millis().to_string(),
            ],
        );
        let (records, done) = records_of(cmd);
        assert_eq!(done["complete"], json!(true), "{done}\n{}", self.log(&log));
        records
    }

    /// A client's log in the test's folder, for failure messages.
    fn log(&self, file: &str) -> String {
        let text = std::fs::read_to_string(self.path(file)).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// The librdkafka client (e2e/client.py) through `bootstrap` as `client_id` of `pool`.
    fn librdkafka(&self, bootstrap: &str, client_id: &str, pool: &str) -> Command {
        support::librdkafka(
            bootstrap,
            self.issuer.token_url().as_str(),
            client_id,
            &format!("logicalCluster={CLUSTER},identityPoolId={pool}"),
            60,
        )
    }

    /// The kafkajs client (e2e/kafkajs/client.js) through `bootstrap` as `client_id` of `pool`.
    fn kafkajs(&self, bootstrap: &str, client_id: &str, pool: &str) -> Command {
        let cache = cache();
        assert!(
            cache.join("kafkajs/.complete").exists(),
            "no kafkajs in {}: run e2e/setup first (or e2e/run)",
            cache.display()
        );
        let mut cmd = Command::new("node");
        cmd.arg("e2e/kafkajs/client.js")
            .env("NODE_PATH", cache.join("kafkajs/node_modules"))
            .args(["--bootstrap", bootstrap])
            .args(["--token-url", self.issuer.token_url().as_str()])
            .args(["--client-id", client_id])
            .args(["--client-secret", &format!("{client_id}-secret")])
            .args(["--cluster", CLUSTER, "--pool", pool])
            .args(["--timeout", "60"])
            .stderr(Stdio::null());
        cmd
    }
}

/// The JSON lines of a client that ends by itself: its records and its last line.
fn records_of(mut cmd: Command) -> (Vec<Record>, Value) {
    let out = cmd.stdout(Stdio::piped()).output().unwrap();
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let done = lines
        .last()
        .filter(|l| l["done"] == json!(true))
        .cloned()
        .unwrap_or_else(|| panic!("no outcome from {cmd:?} (exit {:?})", out.status));
    let records = lines.iter().filter_map(record).collect();
    (records, done)
}

/// A record line of the Java client: `{"record":KEY,"value":V,"partition":P,"offset":O}`.
fn record(line: &Value) -> Option<Record> {
    Some(Record {
        key: line["record"].as_str()?.to_owned(),
        value: line["value"].as_str()?.to_owned(),
        partition: i32::try_from(line["partition"].as_i64()?).ok()?,
        offset: line["offset"].as_i64()?,
    })
}

/// An acknowledgement line of the Java producer: `{"ack":KEY,"value":V,"partition":P,...}`.
fn acknowledged(line: &Value) -> Option<Record> {
    Some(Record {
        key: line["ack"].as_str()?.to_owned(),
        value: line["value"].as_str()?.to_owned(),
        partition: i32::try_from(line["partition"].as_i64()?).ok()?,
        offset: line["offset"].as_i64()?,
    })
}

/// A topic of [`PARTITIONS`] partitions on all three brokers, partition `p` led (and
/// preferably led) by broker `p % 3 + 1`, with `min.insync.replicas=2`; returns the leaders.
fn create_spread_topic(topic: &str) -> Vec<i32> {
    let cluster = cluster();
    let ids = cluster.node_ids();
    let assignment: Vec<Vec<i32>> = (0..PARTITIONS as usize)
        .map(|p| {
            let n = ids.len();
            (0..n).map(|k| ids[(p + k) % n]).collect()
        })
        .collect();
    cluster
        .create_topic(
            topic,
            PARTITIONS,
            3,
            Some(&assignment),
            &[("min.insync.replicas", "2")],
        )
        .unwrap();
    let leaders = cluster.leaders(ids[0], topic).unwrap();
    let expected: Vec<i32> = assignment.iter().map(|r| r[0]).collect();
    assert_eq!(leaders, expected, "every broker leads two partitions");
    leaders
}

/// What a running Java client has reported so far.
#[derive(Debug, Default)]
struct Reported {
    /// Acknowledged records, in the order the acknowledgements came.
    acks: Vec<Record>,
    /// Records read, in order.
    records: Vec<Record>,
    /// Records the producer gave up on, with the error.
    failed: Vec<(String, String)>,
    /// The last line, once it finished.
    done: Option<Value>,
    /// Its standard output closed.
    ended: bool,
}

impl Reported {
    /// Acknowledgements after the first `from`, on partitions `on`.
    fn acks_since(&self, from: usize, on: &[i32]) -> usize {
        self.acks[from.min(self.acks.len())..]
            .iter()
            .filter(|a| on.contains(&a.partition))
            .count()
    }

    fn acked_values(&self) -> BTreeSet<String> {
        self.acks.iter().map(|a| a.value.clone()).collect()
    }
}

/// The Java client of e2e/java/RoutingClient.java, running: a producer or a consumer whose
/// acknowledgements or records are collected as they come. Killed on drop;
/// [`JavaClient::finish`] ends it cleanly.
struct JavaClient {
    state: Arc<(Mutex<Reported>, Condvar)>,
    stdin: Option<ChildStdin>,
    reader: Option<std::thread::JoinHandle<()>>,
    log: String,
    stderr: PathBuf,
    child: Proc,
}

impl JavaClient {
    /// Produces `count` records (0: until [`JavaClient::finish`]) at `rate` a second (0:
    /// unthrottled) to `topic`'s partitions in turn.
    #[expect(clippy::too_many_arguments, reason = "the client's command line")]
    fn produce(
        stack: &Stack,
        log: &str,
        jvm: &[String],
        config: &Path,
        bootstrap: &str,
        topic: &str,
        prefix: &str,
        count: usize,
        rate: u32,
    ) -> JavaClient {
        let cmd = stack.java(
            log,
            jvm,
            &[
                "produce",
                config.to_str().unwrap(),
                bootstrap,
                topic,
                &PARTITIONS.to_string(),
                prefix,
                &count.to_string(),
                &rate.to_string(),
            ],
        );
        JavaClient::spawn(stack, log, cmd)
    }

    /// Reads `topic` in `group` until it has read `count` distinct records, at most [`WAIT`].
    #[expect(clippy::too_many_arguments, reason = "the client's command line")]
    fn consume(
        stack: &Stack,
        log: &str,
        jvm: &[String],
        config: &Path,
        bootstrap: &str,
        topic: &str,
        group: &str,
        count: usize,
    ) -> JavaClient {
        let cmd = stack.java(
            log,
            jvm,
            &[
                "consume",
                config.to_str().unwrap(),
                bootstrap,
                topic,
                group,
                &count.to_string(),
                &WAIT.as_millis().to_string(),
            ],
        );
        JavaClient::spawn(stack, log, cmd)
    }

    fn spawn(stack: &Stack, log: &str, mut cmd: Command) -> JavaClient {
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        let child = Proc(child);
        let state = Arc::new((Mutex::new(Reported::default()), Condvar::new()));
        let shared = Arc::clone(&state);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let Ok(v) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                let (lock, cv) = &*shared;
                let mut s = support::lock(lock);
                if let Some(ack) = acknowledged(&v) {
                    s.acks.push(ack);
                } else if let Some(r) = record(&v) {
                    s.records.push(r);
                } else if let Some(key) = v["failed"].as_str() {
                    s.failed
                        .push((key.to_owned(), v["error"].as_str().unwrap_or("").to_owned()));
                } else if v["done"] == json!(true) {
                    s.done = Some(v);
                }
                cv.notify_all();
            }
            let (lock, cv) = &*shared;
            support::lock(lock).ended = true;
            cv.notify_all();
        });
        JavaClient {
            state,
            stdin,
            reader: Some(reader),
            log: log.to_owned(),
            stderr: stack.path(log),
            child,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Reported> {
        support::lock(&self.state.0)
    }

    /// Waits until `cond` holds of what the producer reported, at most [`WAIT`]; fails when it
    /// does not, or when the producer ended first.
    fn wait_until(&self, what: &str, cond: impl Fn(&Reported) -> bool) {
        let deadline = Instant::now() + WAIT;
        let (lock, cv) = &*self.state;
        let mut s = support::lock(lock);
        while !cond(&s) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero() && !s.ended,
                "{what}: not within {} s (producer ended: {}, {} acks, failed {:?})\n{}",
                WAIT.as_secs(),
                s.ended,
                s.acks.len(),
                s.failed,
                self.log_tail()
            );
            s = cv
                .wait_timeout(s, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        format!(
            "--- {} (last lines)\n{}",
            self.log,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    }

    /// Closes its standard input (an unbounded run stops sending), waits until every record
    /// sent is acknowledged or failed and the producer exits; what it reported.
    fn finish(mut self) -> Reported {
        drop(self.stdin.take());
        self.wait_until("the producer finishes", |s| s.done.is_some());
        let _ = self.child.0.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        std::mem::take(&mut *self.lock())
    }
}

/// The values of `records`, each with how many times it was read.
fn counted(records: &[Record]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for r in records {
        *counts.entry(r.value.clone()).or_insert(0) += 1;
    }
    counts
}

/// Every acknowledged record is in `read` exactly once (the Java producer is idempotent).
fn assert_each_once(acked: &BTreeSet<String>, read: &[Record], what: &str) {
    let counts = counted(read);
    let missing: Vec<&String> = acked.iter().filter(|v| !counts.contains_key(*v)).collect();
    assert!(
        missing.is_empty(),
        "{what}: {} acknowledged records missing, such as {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    let twice: Vec<(&String, &usize)> = counts
        .iter()
        .filter(|(v, n)| acked.contains(*v) && **n > 1)
        .collect();
    assert!(twice.is_empty(), "{what}: records read twice: {twice:?}");
}

/// Each acknowledged record is in `read` at the partition and offset its acknowledgement named.
fn assert_where_acknowledged(acks: &[Record], read: &[Record], what: &str) {
    let at: BTreeMap<&str, (i32, i64)> = read
        .iter()
        .map(|r| (r.value.as_str(), (r.partition, r.offset)))
        .collect();
    for a in acks {
        assert_eq!(
            at.get(a.value.as_str()),
            Some(&(a.partition, a.offset)),
            "{what}: {a:?}"
        );
    }
}

/// The sum of the series of `family` whose labels contain `label`, in Prometheus text.
fn metric_sum(metrics: &str, family: &str, label: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{family}{{")) && l.contains(label))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<u64>().ok())
        .sum()
}

const LOGIN_FAILURES: (&str, &str) = ("poolgate_logins_total", "outcome=\"failure\"");
const LOGINS_OK: &str = "poolgate_logins_total{outcome=\"success\",reason=\"ok\"}";

/// librdkafka, kafkajs and the Java client each produce through the gateway to a topic whose
/// partitions are led by all three brokers, given only the gateway's listen address; a
/// consumer group reads every acknowledged record back through the gateway, and the same
/// records are in the cluster.
#[test]
#[ignore = "needs e2e/setup (Apache Kafka, Java 17+, confluent-kafka, kafkajs); run e2e/run"]
fn three_clients_produce_to_all_three_leaders_and_a_group_reads_everything_back() {
    let stack = Stack::start("three", Hold::shared());
    let topic = "e2e-routing-three";
    let leaders = create_spread_topic(topic);
    let gw = stack.gateway(&stack.config("gateway.toml", ""), &[]);
    let bootstrap = gw.addr().to_owned();
    const N: usize = 60;

    // librdkafka: every record delivered (acks=all).
    let mut cmd = stack.librdkafka(&bootstrap, "e2e-writer", "pool-writers");
    cmd.args(["produce", "--topic", topic, "--prefix", "rdk"])
        .args(["--count", &N.to_string()]);
    let out = json_of(cmd);
    assert_eq!(out["delivered"], json!(N), "librdkafka: {out}");
    assert_eq!(out["failed"], json!([]), "librdkafka: {out}");

    // kafkajs: `send` resolves with an acknowledgement per partition it wrote to.
    let mut cmd = stack.kafkajs(&bootstrap, "e2e-writer", "pool-writers");
    cmd.args(["produce", topic, &N.to_string(), "kafkajs"]);
    let out = json_of(cmd);
    assert_eq!(out["ok"], json!(true), "kafkajs: {out}");
    assert_eq!(out["delivered"], json!(N), "kafkajs: {out}");
    let kafkajs_acked: BTreeSet<i64> = out["acks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            assert_eq!(a["errorCode"], json!(0), "kafkajs: {out}");
            a["partition"].as_i64().unwrap()
        })
        .collect();

    // The Java client: every record acknowledged, on every partition in turn.
    let config = stack.java_properties(
        "writer.properties",
        "e2e-writer",
        "pool-writers",
        "SASL_PLAINTEXT",
        &[],
    );
    let producer = JavaClient::produce(
        &stack,
        "java-producer.log",
        &[],
        &config,
        &bootstrap,
        topic,
        "java",
        N,
        0,
    );
    let java = producer.finish();
    assert_eq!(java.done.as_ref().unwrap()["acked"], json!(N), "{java:?}");
    assert!(java.failed.is_empty(), "{:?}", java.failed);
    let java_partitions: BTreeSet<i32> = java.acks.iter().map(|a| a.partition).collect();
    assert_eq!(java_partitions, (0..PARTITIONS).collect());

    let expected: BTreeSet<String> = ["rdk", "kafkajs"]
        .iter()
        .flat_map(|p| (0..N).map(move |i| format!("{p} message {i}")))
        .chain(java.acked_values())
        .collect();
    assert_eq!(expected.len(), 3 * N);

    // A consumer group through the gateway (the coordinator is whichever broker Kafka chose).
    let mut cmd = stack.librdkafka(&bootstrap, "e2e-reader", "pool-readers");
    cmd.args(["consume", "--subscribe", "--topic", topic])
        .args([
            "--group",
            "e2e-routing-three",
            "--count",
            &(3 * N).to_string(),
        ]);
    let read = json_of(cmd);
    assert_eq!(read["consumed"], json!(3 * N), "{read}");
    let through: BTreeSet<String> = read["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        through, expected,
        "the group read every acknowledged record"
    );

    // Straight from the cluster: the same records, each once, on partitions of all three
    // leaders.
    let direct = stack.read_direct(topic);
    assert_each_once(&expected, &direct, "in the cluster");
    assert_where_acknowledged(&java.acks, &direct, "in the cluster");
    assert_eq!(direct.len(), 3 * N, "nothing else was written");
    let landed: BTreeSet<i32> = direct.iter().map(|r| r.partition).collect();
    assert_eq!(landed, (0..PARTITIONS).collect(), "every partition written");
    let led: BTreeSet<i32> = landed.iter().map(|&p| leaders[p as usize]).collect();
    assert_eq!(led, [1, 2, 3].into(), "every broker took writes");
    let kafkajs_landed: BTreeSet<i64> = direct
        .iter()
        .filter(|r| r.value.starts_with("kafkajs "))
        .map(|r| i64::from(r.partition))
        .collect();
    assert_eq!(
        kafkajs_acked, kafkajs_landed,
        "kafkajs had an acknowledgement from each partition its records are in"
    );
    let metrics = gw.metrics().unwrap();
    assert_eq!(
        metric_sum(&metrics, LOGIN_FAILURES.0, LOGIN_FAILURES.1),
        0,
        "{metrics}"
    );
    assert!(gw.metric(LOGINS_OK) >= 4, "{metrics}");
}

/// How a broker goes away.
#[derive(Clone, Copy, Debug)]
enum Loss {
    /// SIGTERM: Kafka's controlled shutdown moves its leaderships first.
    Stop,
    /// SIGKILL: a crash; the controller notices when its heartbeats stop.
    Crash,
}

/// A broker that leads partitions stops cleanly while the Java producer sends through the
/// gateway; see [`leader_lost_and_back`].
#[test]
#[ignore = "needs e2e/setup (Apache Kafka, Java 17+); run e2e/run"]
fn the_producer_follows_a_leader_that_stops_and_comes_back() {
    leader_lost_and_back(Loss::Stop);
}

/// A broker that leads partitions crashes while the Java producer sends through the gateway;
/// see [`leader_lost_and_back`].
#[test]
#[ignore = "needs e2e/setup (Apache Kafka, Java 17+); run e2e/run"]
fn the_producer_follows_a_leader_that_crashes_and_comes_back() {
    leader_lost_and_back(Loss::Crash);
}

/// A broker that leads partitions goes away (`loss`) while the Java producer (acks=all,
/// idempotent) sends through the gateway to every partition: the cluster elects other
/// leaders, the producer carries on through the gateway to them; the broker comes back,
/// rejoins and leads its partitions again, and the producer's records for them reach it
/// through the gateway. Every acknowledged record is in the cluster exactly once, and nothing
/// failed. The other tests wait meanwhile.
fn leader_lost_and_back(loss: Loss) {
    let name = format!("{loss:?}").to_lowercase();
    let stack = Stack::start(&name, Hold::alone());
    let topic = &format!("e2e-routing-{name}");
    let leaders = create_spread_topic(topic);
    let gw = stack.gateway(&stack.config("gateway.toml", ""), &[]);
    let config = stack.java_properties(
        "writer.properties",
        "e2e-writer",
        "pool-writers",
        "SASL_PLAINTEXT",
        &[],
    );
    let producer = JavaClient::produce(
        &stack,
        "java-producer.log",
        &[],
        &config,
        gw.addr(),
        topic,
        &name,
        0,
        50,
    );
    let all: Vec<i32> = (0..PARTITIONS).collect();
    producer.wait_until("acknowledgements from every partition", |s| {
        all.iter().all(|&p| s.acks_since(0, &[p]) >= 3)
    });

    let victim = leaders[0];
    let theirs: Vec<i32> = all
        .iter()
        .copied()
        .filter(|&p| leaders[p as usize] == victim)
        .collect();
    let survivor = *leaders.iter().find(|&&l| l != victim).unwrap();
    let stopped_at = Instant::now();
    match loss {
        Loss::Stop => cluster().stop_node(victim).unwrap(),
        Loss::Crash => cluster().kill_node(victim).unwrap(),
    }
    // The cluster elects other leaders for the victim's partitions.
    let deadline = Instant::now() + WAIT;
    loop {
        let now = cluster().leaders(survivor, topic).unwrap();
        if now.iter().all(|&l| l != victim && l >= 0) {
            break;
        }
        assert!(Instant::now() < deadline, "no new leaders: {now:?}");
        // Only the cluster knows; ask it again shortly (as testkit::cluster polls).
        std::thread::sleep(Duration::from_millis(25));
    }
    let mark = producer.lock().acks.len();
    producer.wait_until("acknowledgements from the new leaders", |s| {
        s.acks_since(mark, &theirs) >= 20
    });
    eprintln!(
        "e2e_routing: broker {victim} lost ({loss:?}), its partitions {theirs:?} written elsewhere after {:.1} s",
        stopped_at.elapsed().as_secs_f64()
    );
    // A gateway started meanwhile, with the lost broker first in its bootstrap list, learns
    // the cluster from the others and serves a producer.
    let upstream = {
        let cluster = cluster();
        format!(
            "{},{}",
            cluster.broker_addr(victim).unwrap(),
            cluster.bootstrap()
        )
    };
    let late = support::spawn_gateway(&stack.config("late.toml", ""), &upstream, &[]);
    let produce_late = |prefix: &str| {
        let run = JavaClient::produce(
            &stack,
            &format!("{prefix}.log"),
            &[],
            &config,
            late.addr(),
            topic,
            prefix,
            30,
            0,
        )
        .finish();
        assert!(run.failed.is_empty(), "{prefix}: {:?}", run.failed);
        assert_eq!(run.acks.len(), 30, "{prefix}");
        run
    };
    let late_before = produce_late(&format!("{name}-late-before"));

    cluster().start_node(victim).unwrap();
    // Back in sync and the preferred leader of its partitions again.
    cluster().elect_preferred(&[topic]).unwrap();
    let state = cluster().partitions(survivor, topic).unwrap();
    for &p in &theirs {
        assert_eq!(state[p as usize].leader, victim, "{state:?}");
        assert!(state[p as usize].isr.contains(&victim), "{state:?}");
    }
    let mark = producer.lock().acks.len();
    producer.wait_until("acknowledgements from the restarted leader", |s| {
        s.acks_since(mark, &theirs) >= 20
    });
    // Still the leader: those acknowledgements were its own, reached through the gateway.
    let now = cluster().leaders(survivor, topic).unwrap();
    for &p in &theirs {
        assert_eq!(now[p as usize], victim, "{now:?}");
    }
    eprintln!(
        "e2e_routing: broker {victim} back and leading after {:.1} s",
        stopped_at.elapsed().as_secs_f64()
    );
    // The late gateway never saw the broker before; it routes to it now that it leads.
    let late_after = produce_late(&format!("{name}-late-after"));
    assert!(
        late_after
            .acks
            .iter()
            .any(|a| theirs.contains(&a.partition)),
        "{:?}",
        late_after.acks
    );
    let now = cluster().leaders(survivor, topic).unwrap();
    for &p in &theirs {
        assert_eq!(now[p as usize], victim, "{now:?}");
    }

    let produced = producer.finish();
    assert!(produced.failed.is_empty(), "{:?}", produced.failed);
    assert_eq!(
        produced.done.as_ref().unwrap()["acked"],
        json!(produced.acks.len())
    );
    let mut acked = produced.acked_values();
    acked.extend(late_before.acked_values());
    acked.extend(late_after.acked_values());
    let direct = stack.read_direct(topic);
    assert_each_once(&acked, &direct, "in the cluster");
    for run in [&produced, &late_before, &late_after] {
        assert_where_acknowledged(&run.acks, &direct, "in the cluster");
    }
    for r in &direct {
        assert!(acked.contains(&r.value), "an unacknowledged record {r:?}");
    }
    for g in [&gw, &late] {
        let metrics = g.metrics().unwrap();
        assert_eq!(
            metric_sum(&metrics, LOGIN_FAILURES.0, LOGIN_FAILURES.1),
            0,
            "{metrics}"
        );
    }
}

/// The node id of `group`'s coordinator, asked of a running broker directly (the first ask
/// creates `__consumer_offsets`: asked again until there is one).
fn group_coordinator(stack: &Stack, group: &str) -> i32 {
    let broker = cluster().bootstrap().split(',').next().unwrap().to_owned();
    stack.rt.block_on(async {
        let deadline = Instant::now() + WAIT;
        loop {
            let mut c = KafkaClient::connect(&broker).await.unwrap();
            let mut req = FindCoordinatorRequest::default();
            req.key = StrBytes::from_string(group.to_owned());
            let resp = c.call(2, req).await.unwrap();
            if resp.error_code == 0 {
                return resp.node_id.0;
            }
            assert!(
                Instant::now() < deadline,
                "no coordinator for `{group}`: error {}",
                resp.error_code
            );
            // Only the cluster knows; ask it again shortly (as testkit::cluster polls).
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    })
}

/// A consumer group reads through the gateway while its coordinator crashes: the Java consumer
/// finds the new coordinator through the gateway (FindCoordinator answered with the new
/// node's gateway address) and reads every acknowledged record, those written before the crash
/// and after. The other tests wait meanwhile; the broker comes back and leads its partitions
/// again before they go on.
#[test]
#[ignore = "needs e2e/setup (Apache Kafka, Java 17+); run e2e/run"]
fn a_consumer_group_follows_its_coordinator_through_the_gateway() {
    let stack = Stack::start("coordinator", Hold::alone());
    let topic = "e2e-routing-coordinator";
    let group = "e2e-routing-coordinator";
    create_spread_topic(topic);
    let gw = stack.gateway(&stack.config("gateway.toml", ""), &[]);
    let writer = stack.java_properties(
        "writer.properties",
        "e2e-writer",
        "pool-writers",
        "SASL_PLAINTEXT",
        &[],
    );
    let reader = stack.java_properties(
        "reader.properties",
        "e2e-reader",
        "pool-readers",
        "SASL_PLAINTEXT",
        &[],
    );
    const N: usize = 150;
    let produce = |prefix: &str| {
        let run = JavaClient::produce(
            &stack,
            &format!("{prefix}.log"),
            &[],
            &writer,
            gw.addr(),
            topic,
            prefix,
            N,
            0,
        )
        .finish();
        assert!(run.failed.is_empty(), "{prefix}: {:?}", run.failed);
        assert_eq!(run.acks.len(), N, "{prefix}");
        run
    };
    let before = produce("before");
    let coordinator = group_coordinator(&stack, group);
    let consumer = JavaClient::consume(
        &stack,
        "consumer.log",
        &[],
        &reader,
        gw.addr(),
        topic,
        group,
        2 * N,
    );
    consumer.wait_until("the group reads what was written", |s| s.records.len() >= N);

    let killed_at = Instant::now();
    cluster().kill_node(coordinator).unwrap();
    let next = wait_for_coordinator_other_than(&stack, group, coordinator);
    eprintln!(
        "e2e_routing: coordinator {coordinator} crashed, node {next} coordinates after {:.1} s",
        killed_at.elapsed().as_secs_f64()
    );
    let after = produce("after");
    let read = consumer.finish();
    assert_eq!(
        read.done.as_ref().unwrap()["distinct"],
        json!(2 * N),
        "{:?}",
        read.done
    );
    {
        let mut cluster = cluster();
        cluster.start_node(coordinator).unwrap();
        cluster
            .elect_preferred(&[topic, "__consumer_offsets"])
            .unwrap();
    }

    let mut acked = before.acked_values();
    acked.extend(after.acked_values());
    let values: BTreeSet<String> = read.records.iter().map(|r| r.value.clone()).collect();
    let missing: Vec<&String> = acked.difference(&values).collect();
    assert!(missing.is_empty(), "acknowledged but not read: {missing:?}");
    for run in [&before, &after] {
        // A record read twice (after a rebalance) was read at the same place.
        for r in &read.records {
            if let Some(a) = run.acks.iter().find(|a| a.value == r.value) {
                assert_eq!((a.partition, a.offset), (r.partition, r.offset), "{r:?}");
            }
        }
    }
    let metrics = gw.metrics().unwrap();
    assert_eq!(
        metric_sum(&metrics, LOGIN_FAILURES.0, LOGIN_FAILURES.1),
        0,
        "{metrics}"
    );
}

/// Waits until the cluster names another coordinator than `old` for `group`; that one.
fn wait_for_coordinator_other_than(stack: &Stack, group: &str, old: i32) -> i32 {
    let deadline = Instant::now() + WAIT;
    loop {
        let now = group_coordinator(stack, group);
        if now != old {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "node {old} still coordinates `{group}`"
        );
        // Only the cluster knows; ask it again shortly (as testkit::cluster polls).
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Per backend of the [`Balancer`]: connections made, and open now.
#[derive(Debug, Default)]
struct Backend {
    opened: AtomicU64,
    open: AtomicI64,
}

/// The [`Balancer`]'s backends, and a signal for each change of their counts.
#[derive(Debug, Default)]
struct Backends {
    list: Vec<(Ipv4Addr, Backend)>,
    changed: (Mutex<()>, Condvar),
}

impl Backends {
    /// Counts a change with `change`, then wakes [`Backends::wait_until`].
    fn count(&self, change: impl FnOnce()) {
        let _held = support::lock(&self.changed.0);
        change();
        self.changed.1.notify_all();
    }

    /// Waits until `cond` holds of the counts, at most [`WAIT`].
    fn wait_until(&self, what: &str, cond: impl Fn(&[(Ipv4Addr, Backend)]) -> bool) {
        let deadline = Instant::now() + WAIT;
        let mut held = support::lock(&self.changed.0);
        while !cond(&self.list) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "{what}: not within {} s: {:?}",
                WAIT.as_secs(),
                self.list
            );
            held = self
                .changed
                .1
                .wait_timeout(held, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

/// An L4 TCP load balancer on 127.0.0.1: each of its ports forwards every connection to the
/// same port of one of the backend addresses, in turn, skipping one it cannot connect to.
struct Balancer {
    base: u16,
    backends: Arc<Backends>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Balancer {
    /// Binds `count` consecutive ports from a random base in 20000-60000 (another base when
    /// one of them is taken), then forwards them to `backends` on the runtime `rt`.
    fn start(rt: &tokio::runtime::Runtime, count: u16, backends: &[Ipv4Addr]) -> Balancer {
        let (base, listeners) = (0..100)
            .find_map(|_| {
                let base = 20_000 + rand::random::<u16>() % 40_000;
                let listeners = (0..count)
                    .map(|i| std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, base + i)))
                    .collect::<std::io::Result<Vec<_>>>()
                    .ok()?;
                Some((base, listeners))
            })
            .expect("a free range of ports");
        let backends = Arc::new(Backends {
            list: backends
                .iter()
                .map(|&ip| (ip, Backend::default()))
                .collect(),
            changed: Default::default(),
        });
        let turn = Arc::new(AtomicUsize::new(0));
        let _guard = rt.enter();
        let tasks = listeners
            .into_iter()
            .map(|l| {
                l.set_nonblocking(true).unwrap();
                let port = l.local_addr().unwrap().port();
                let listener = tokio::net::TcpListener::from_std(l).unwrap();
                let (backends, turn) = (Arc::clone(&backends), Arc::clone(&turn));
                rt.spawn(async move {
                    while let Ok((client, _)) = listener.accept().await {
                        let first = turn.fetch_add(1, Ordering::Relaxed);
                        tokio::spawn(forward(client, port, first, Arc::clone(&backends)));
                    }
                })
            })
            .collect();
        Balancer {
            base,
            backends,
            tasks,
        }
    }

    fn backend(&self, i: usize) -> &Backend {
        &self.backends.list[i].1
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Forwards `client` to the first backend, from number `first` on, that takes the connection.
async fn forward(
    mut client: tokio::net::TcpStream,
    port: u16,
    first: usize,
    backends: Arc<Backends>,
) {
    let n = backends.list.len();
    for k in 0..n {
        let (ip, backend) = &backends.list[(first + k) % n];
        let Ok(mut upstream) = tokio::net::TcpStream::connect(SocketAddr::from((*ip, port))).await
        else {
            continue;
        };
        backends.count(|| {
            backend.opened.fetch_add(1, Ordering::SeqCst);
            backend.open.fetch_add(1, Ordering::SeqCst);
        });
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        backends.count(|| {
            backend.open.fetch_sub(1, Ordering::SeqCst);
        });
        return;
    }
}

/// Two gateway instances with one configuration behind an L4 load balancer (on 127.0.0.2 and
/// 127.0.0.3, the same ports; the balancer on 127.0.0.1, which both advertise): the Java
/// producer's connections go through both; one instance is killed, and the producer reconnects
/// through the other and carries on, with no failed login, and nothing acknowledged lost.
#[test]
#[ignore = "needs e2e/setup (Apache Kafka, Java 17+); run e2e/run"]
fn two_gateway_instances_behind_a_balancer_survive_losing_one() {
    let stack = Stack::start("twins", Hold::shared());
    let topic = "e2e-routing-twins";
    create_spread_topic(topic);
    let ips = [Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::new(127, 0, 0, 3)];
    let upstream = cluster().bootstrap();
    // The balancer holds its ports (the bootstrap port, and node n at base + n) before the
    // instances bind theirs on the other addresses; another base if an instance cannot.
    let (balancer, mut instances) = (0..5)
        .find_map(|_| {
            let balancer = Balancer::start(&stack.rt, 4, &ips);
            let base = balancer.base;
            let config = stack.config(
                "gateway.toml",
                &format!("node_ids = \"1-3\"\nnode_port_base = {base}\n"),
            );
            let advertise = format!("127.0.0.1:{base}");
            let instances = ips
                .iter()
                .map(|ip| {
                    GatewayProcess::spawn_listening(
                        Path::new(env!("CARGO_BIN_EXE_poolgate")),
                        &config,
                        &format!("{ip}:{base}"),
                        &upstream,
                        &["--advertise", &advertise, "--metrics-listen", "127.0.0.1:0"],
                        &[],
                    )
                })
                .collect::<std::io::Result<Vec<_>>>();
            match instances {
                Ok(i) => Some((balancer, i)),
                Err(e) => {
                    eprintln!("e2e_routing: instances on base {base}: {e}; another base");
                    None
                }
            }
        })
        .expect("two gateway instances");
    let bootstrap = format!("127.0.0.1:{}", balancer.base);
    let config = stack.java_properties(
        "writer.properties",
        "e2e-writer",
        "pool-writers",
        "SASL_PLAINTEXT",
        &[],
    );
    let producer = JavaClient::produce(
        &stack,
        "java-producer.log",
        &[],
        &config,
        &bootstrap,
        topic,
        "twins",
        0,
        50,
    );
    let all: Vec<i32> = (0..PARTITIONS).collect();
    producer.wait_until("acknowledgements from every partition", |s| {
        all.iter().all(|&p| s.acks_since(0, &[p]) >= 3)
    });
    balancer
        .backends
        .wait_until("connections open through both instances", |b| {
            b.iter().all(|(_, b)| b.open.load(Ordering::SeqCst) > 0)
        });
    let b_logins = instances[1].metric(LOGINS_OK);
    let b_opened = balancer.backend(1).opened.load(Ordering::SeqCst);
    let a_opened = balancer.backend(0).opened.load(Ordering::SeqCst);

    // Instance A dies (killed by its process id): its connections break.
    let a = instances.remove(0);
    drop(a);
    balancer
        .backends
        .wait_until("the connections through instance A to close", |b| {
            b[0].1.open.load(Ordering::SeqCst) == 0
        });
    let mark = producer.lock().acks.len();
    producer.wait_until(
        "acknowledgements from every partition through instance B",
        |s| all.iter().all(|&p| s.acks_since(mark, &[p]) >= 5),
    );
    let produced = producer.finish();
    assert!(produced.failed.is_empty(), "{:?}", produced.failed);
    let b = &instances[0];
    let metrics = b.metrics().unwrap();
    assert_eq!(
        metric_sum(&metrics, LOGIN_FAILURES.0, LOGIN_FAILURES.1),
        0,
        "no failed login on instance B:\n{metrics}"
    );
    assert!(
        b.metric(LOGINS_OK) > b_logins,
        "the producer logged in again on instance B:\n{metrics}"
    );
    assert!(balancer.backend(1).opened.load(Ordering::SeqCst) > b_opened);
    assert_eq!(
        balancer.backend(0).opened.load(Ordering::SeqCst),
        a_opened,
        "no connection reached the dead instance"
    );

    let acked = produced.acked_values();
    let direct = stack.read_direct(topic);
    assert_each_once(&acked, &direct, "in the cluster");
    assert_where_acknowledged(&produced.acks, &direct, "in the cluster");

    // A consumer group through the balancer (so through instance B alone) reads them all.
    let reader = stack.java_properties(
        "reader.properties",
        "e2e-reader",
        "pool-readers",
        "SASL_PLAINTEXT",
        &[],
    );
    let read = stack.java_consume(
        "java-consumer.log",
        &[],
        &reader,
        &bootstrap,
        topic,
        "e2e-routing-twins",
        direct.len(),
    );
    assert_each_once(&acked, &read, "through instance B");
    assert_eq!(
        metric_sum(&b.metrics().unwrap(), LOGIN_FAILURES.0, LOGIN_FAILURES.1),
        0
    );
}

/// SNI routing with a wildcard certificate: one TLS port; the Java client, resolving
/// `bootstrap.kafka.test` and `b1`-`b3.kafka.test` to 127.0.0.1 from a hosts file
/// (`-Djdk.net.hosts.file`), produces to partitions led by all three brokers and reads them back
/// in a group, each broker reached by its server name.
#[test]
#[ignore = "needs e2e/setup (Apache Kafka, Java 17+); run e2e/run"]
fn sni_routing_with_a_wildcard_certificate_reaches_every_broker() {
    let stack = Stack::start("sni", Hold::shared());
    let topic = "e2e-routing-sni";
    let leaders = create_spread_topic(topic);
    let certified = rcgen::generate_simple_self_signed(vec![
        "bootstrap.kafka.test".to_owned(),
        "*.kafka.test".to_owned(),
    ])
    .unwrap();
    let cert = stack.path("gateway.pem");
    let key = stack.path("gateway.key");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let truststore = stack.path("truststore.p12");
    let keytool = Command::new(jdk_tool("keytool"))
        .args(["-importcert", "-noprompt", "-alias", "poolgate-gateway"])
        .arg("-file")
        .arg(&cert)
        .arg("-keystore")
        .arg(&truststore)
        .args(["-storetype", "PKCS12", "-storepass", "poolgate-e2e"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(keytool.status.success(), "keytool: {keytool:?}");
    let config = stack.config(
        "gateway.toml",
        "routing = \"sni\"\nsni_node_pattern = \"b{node_id}.kafka.test\"\n",
    );
    let gw = stack.gateway(
        &config,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--advertise",
            "bootstrap.kafka.test",
        ],
    );
    let port = gw.addr().rsplit_once(':').unwrap().1.to_owned();
    let bootstrap = format!("bootstrap.kafka.test:{port}");
    let hosts = stack.path("hosts");
    std::fs::write(
        &hosts,
        "127.0.0.1 bootstrap.kafka.test b1.kafka.test b2.kafka.test b3.kafka.test\n",
    )
    .unwrap();
    let jvm = [format!("-Djdk.net.hosts.file={}", hosts.display())];
    let tls = [
        format!("ssl.truststore.location={}", truststore.display()),
        "ssl.truststore.password=poolgate-e2e".to_owned(),
        "ssl.truststore.type=PKCS12".to_owned(),
    ];
    let writer = stack.java_properties(
        "writer.properties",
        "e2e-writer",
        "pool-writers",
        "SASL_SSL",
        &tls,
    );
    const N: usize = 120;
    let producer = JavaClient::produce(
        &stack,
        "java-producer.log",
        &jvm,
        &writer,
        &bootstrap,
        topic,
        "sni",
        N,
        0,
    );
    let produced = producer.finish();
    assert!(produced.failed.is_empty(), "{:?}", produced.failed);
    assert_eq!(produced.acks.len(), N);
    let partitions: BTreeSet<i32> = produced.acks.iter().map(|a| a.partition).collect();
    assert_eq!(partitions, (0..PARTITIONS).collect());
    let led: BTreeSet<i32> = partitions.iter().map(|&p| leaders[p as usize]).collect();
    assert_eq!(led, [1, 2, 3].into(), "every broker acknowledged");
    let acked = produced.acked_values();

    let reader = stack.java_properties(
        "reader.properties",
        "e2e-reader",
        "pool-readers",
        "SASL_SSL",
        &tls,
    );
    let read = stack.java_consume(
        "java-consumer.log",
        &jvm,
        &reader,
        &bootstrap,
        topic,
        "e2e-routing-sni",
        N,
    );
    assert_each_once(&acked, &read, "through the gateway");
    assert_where_acknowledged(&produced.acks, &read, "through the gateway");
    let direct = stack.read_direct(topic);
    assert_each_once(&acked, &direct, "in the cluster");
    assert_where_acknowledged(&produced.acks, &direct, "in the cluster");
    assert_eq!(direct.len(), N);

    let metrics = gw.metrics().unwrap();
    assert_eq!(
        metric_sum(&metrics, LOGIN_FAILURES.0, LOGIN_FAILURES.1),
        0,
        "{metrics}"
    );
    assert_eq!(
        gw.metric("poolgate_connections_dropped_total{reason=\"unknown_server_name\"}"),
        0,
        "{metrics}"
    );
    assert!(gw.metric(LOGINS_OK) >= 2, "{metrics}");
}
