//! `poolgate gateway` in front of a real three-broker Apache Kafka cluster, in one run: produce
//! and fetch throughput through the gateway against the same client straight to the brokers,
//! login latency on a warm token cache, and memory per idle authenticated connection with port
//! routing and with SNI routing.
//!
//! Targets: produce and fetch through the gateway at least 0.9x direct; login p99 under 2 ms;
//! at most 24 KiB of gateway memory per idle authenticated connection, its upstream connection
//! included.
//!
//! Run: `cargo bench --features cli --bench cluster` (needs Apache Kafka's jars: `e2e/setup`; without them the
//! bench prints a note and does nothing; `POOLGATE_BENCH_VERBOSE=1` also prints every
//! interleaved pair). The machine is usually shared, so every figure is reported next to a
//! baseline measured in the same run, and the ratios are what count. A few minutes, most of it
//! the cluster's start. The brokers' data goes to the temporary folder (`TMPDIR`); each topic
//! keeps at most about 100 MiB per partition.
//!
//! Parts: three KRaft nodes of Apache Kafka 4.4 (`KafkaCluster`, 384 MiB heaps, one
//! partition of topic `e2e-bench-cluster` led by each, replication 1 so that what is measured
//! is the path of a request, not replication competing for the two cores); the local OIDC
//! issuer in-process; the real `poolgate gateway` binary with `testdata/gateway/gateway.toml`,
//! port routing (`node_ids = "1-3"`, a free port per node); the testkit's Kafka client on a
//! current-thread runtime.
//!
//! Measured:
//! 1. produce, interleaved: a side is three connections, one per broker (direct: to the
//!    broker's address; gateway: to that node's gateway port, logged in), each producing to
//!    the partition its broker leads. One iteration of a side: on each connection at once,
//!    `WINDOW` ProduceRequests v9 (acks=1, one batch of 100 records of 1 KiB) sent, then their
//!    responses received (every partition error code must be 0). Pairs of iterations, one per
//!    side, which goes first drawn at random, after warm-up pairs that are not counted; then the
//!    same with two direct sides as the control. Reported: the throughput ratio over all pairs
//!    (total bytes over total time of each side) and the median of the per-pair ratios.
//! 2. fetch, interleaved the same way, on a second topic filled first (`FETCH_BATCHES` batches
//!    per partition): each connection sends `WINDOW` FetchRequests v12 for its partition (up to
//!    1 MiB from an offset that moves on by 10 batches per request and wraps around, the same
//!    offsets on both sides of a pair), sessionless (session id 0, epoch -1: what the gateway
//!    forwards for any full fetch), then receives them; each must carry records.
//! 3. CPU: the gateway's user + system time (`/proc/PID/stat`) during the gateway/direct pairs
//!    per MB it forwarded, and the three brokers' per MB they served (both sides), as context.
//! 4. login latency: 2,000 sequential logins to the gateway's bootstrap port (TCP connect +
//!    ApiVersions v3 + SaslHandshake v1 + SaslAuthenticate v2, success asserted, connection
//!    closed) and 2,000 direct connections to broker 1 (TCP connect + ApiVersions v3),
//!    interleaved in blocks of 100; p50, p99, max.
//! 5. memory per idle authenticated connection: a fresh gateway, warmed by a few sessions; its
//!    `VmRSS` (`/proc/PID/status`) before and after opening 1,000 connections (over the three
//!    node ports, or the three brokers' server names), each logged in and with one Metadata
//!    request answered (so its upstream connection exists and has carried a request), all kept
//!    open: (after - before) / 1,000. Port routing over plaintext, and SNI routing over TLS
//!    (a wildcard certificate from rcgen). Kernel socket buffers are not in `VmRSS`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{
    BrokerId, FetchRequest, MetadataRequest, ProduceRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use poolgate::testkit::TestIssuer;
use poolgate::testkit::cluster::{KafkaCluster, kafka_libs};
use poolgate::testkit::kafka::{KafkaClient, record_batch};
use poolgate::testkit::stack::GatewayProcess;

#[path = "support/mod.rs"]
mod support;
use support::{
    TempDir, cpu_of, direct, log_in, median, ms, quiet_gateway, session, test_mode, us, verdict,
};

const CLUSTER: &str = "lkc-e2e";
/// The produce topic (the writers' pool may do anything on `e2e-*`).
const TOPIC: &str = "e2e-bench-cluster";
/// The topic fetched from, filled before the fetch measurement.
const FETCH_TOPIC: &str = "e2e-bench-cluster-fetch";
/// The brokers; partition `i` of each topic is led by `NODES[i]`.
const NODES: [i32; 3] = [1, 2, 3];
/// Requests in flight per connection in one iteration.
const WINDOW: usize = 16;
const RECORDS_PER_BATCH: usize = 100;
const RECORD_BYTES: usize = 1024;
/// Batches (of 100 records) per fetch: 10 batches of ~103.5 kB fit in the 1 MiB asked for.
const BATCHES_PER_FETCH: usize = 10;
/// Batches produced to each partition of the fetch topic before fetching.
const FETCH_BATCHES: usize = 320;
const PRODUCE_VERSION: i16 = 9;
const FETCH_VERSION: i16 = 12;
/// Interleaved pairs per measurement, after `WARM_PAIRS` uncounted ones.
const PAIRS: usize = 100;
const WARM_PAIRS: usize = 20;
/// Sequential logins (and direct connections) for the latency percentiles.
const SEQUENTIAL: usize = 2_000;
/// Interleaving block of the sequential measurement.
const BLOCK: usize = 100;
/// Idle authenticated connections for the memory measurement.
const IDLE: usize = 1_000;
const RATIO_TARGET: f64 = 0.9;
const LOGIN_P99_TARGET: Duration = Duration::from_millis(2);
const MEMORY_TARGET_KIB: f64 = 24.0;

/// `VmRSS` of process `pid` in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .expect("VmRSS of the gateway")
}

/// CPU time of the gateway, the brokers together and this process (the client).
#[derive(Clone, Copy, Default)]
struct Cpu {
    gateway: Duration,
    brokers: Duration,
    client: Duration,
}

impl Cpu {
    fn since(self, before: Cpu) -> Cpu {
        Cpu {
            gateway: self.gateway.saturating_sub(before.gateway),
            brokers: self.brokers.saturating_sub(before.brokers),
            client: self.client.saturating_sub(before.client),
        }
    }
}

/// The cluster, the issuer and a gateway with port routing in front of the cluster. Fields
/// drop in order: the gateway is killed, then the brokers, then the issuer stops.
struct Bench {
    gateway: GatewayProcess,
    /// Node id to the gateway's `127.0.0.1:PORT` for it.
    gateway_nodes: BTreeMap<i32, String>,
    cluster: KafkaCluster,
    /// The SASL client first message: one token, the same bytes every login.
    login: Arc<Vec<u8>>,
    /// The gateway configuration (port routing), for more gateways.
    config: PathBuf,
    dir: TempDir,
    _issuer: TestIssuer,
    _issuer_rt: tokio::runtime::Runtime,
}

impl Bench {
    fn start(libs: &Path) -> Bench {
        let (issuer_rt, issuer) = support::issuer();

        let started = Instant::now();
        let cluster = KafkaCluster::start_with(
            libs,
            3,
            &[
                // Retention (set per topic) is applied soon, and deleted segments go at once:
                // the bench produces far more than it keeps.
                ("log.retention.check.interval.ms", "2000"),
                ("log.segment.delete.delay.ms", "0"),
            ],
        )
        .expect("start the Kafka cluster");
        println!(
            "kafka cluster of {} brokers up in {:.1} s ({})",
            NODES.len(),
            started.elapsed().as_secs_f64(),
            cluster.bootstrap()
        );
        for topic in [TOPIC, FETCH_TOPIC] {
            let assignment: Vec<Vec<i32>> = NODES
                .iter()
                .flat_map(|&id| cluster.led_by(id, 1, 1))
                .collect();
            cluster
                .create_topic(
                    topic,
                    3,
                    1,
                    Some(&assignment),
                    &[
                        ("segment.bytes", "16777216"),
                        ("retention.bytes", "67108864"),
                        // The records' timestamps are 0 (1970): time would delete every
                        // segment but the active one, the fetch topic's too.
                        ("retention.ms", "-1"),
                    ],
                )
                .expect("create the topic");
            assert_eq!(
                cluster.leaders(1, topic).expect("leaders"),
                NODES,
                "partition i led by node i + 1"
            );
        }

        let dir = TempDir::new("bench-cluster");
        let config = dir.gateway_config(&issuer, |t| {
            t.replace(
                "[gateway]\n",
                // Every connection of this bench comes from 127.0.0.1.
                "[gateway]\nnode_ids = \"1-3\"\nmax_connections_per_peer = 5000\n",
            )
        });
        let gateway = spawn_gateway(&config, &cluster, &[]);
        let gateway_nodes = gateway
            .node_ports()
            .into_iter()
            .map(|(id, port)| (id, format!("127.0.0.1:{port}")))
            .collect::<BTreeMap<_, _>>();
        assert_eq!(
            gateway_nodes.keys().copied().collect::<Vec<_>>(),
            NODES,
            "a port per node: {}",
            gateway.start_line()
        );

        let login = support::writer_login(&issuer, CLUSTER);
        Bench {
            gateway,
            gateway_nodes,
            cluster,
            login: Arc::new(login),
            config,
            dir,
            _issuer: issuer,
            _issuer_rt: issuer_rt,
        }
    }

    fn broker(&self, id: i32) -> &str {
        self.cluster
            .broker_addr(id)
            .expect("a broker of the cluster")
    }

    fn cpu(&self) -> Cpu {
        Cpu {
            gateway: cpu_of(self.gateway.pid()),
            brokers: self.cluster.pids().into_iter().map(cpu_of).sum(),
            client: cpu_of(std::process::id()),
        }
    }
}

/// `poolgate gateway` (the binary `cargo bench` built) with `config` in front of the cluster;
/// errors only on stderr: at the default level every login writes an audit line, which would be
/// part of every measured login.
fn spawn_gateway(config: &Path, cluster: &KafkaCluster, extra: &[&str]) -> GatewayProcess {
    quiet_gateway(
        Path::new(env!("CARGO_BIN_EXE_poolgate")),
        config,
        &cluster.bootstrap(),
        extra,
    )
}

/// One Metadata v12 request for the brokers only, answered by the broker behind the session.
async fn metadata(c: &mut KafkaClient) {
    let mut req = MetadataRequest::default();
    req.topics = Some(Vec::new());
    let resp = c.call(12, req).await.expect("Metadata v12");
    assert_eq!(resp.brokers.len(), NODES.len(), "every broker in Metadata");
}

fn produce_request(partition: i32, batch: bytes::Bytes) -> ProduceRequest {
    support::produce_request(TOPIC, partition, batch)
}

/// Sends `WINDOW` produce requests, then receives their responses, in order; returns the
/// record bytes produced.
async fn produce_window(c: &mut KafkaClient, req: &ProduceRequest) -> u64 {
    support::produce_window(c, req, PRODUCE_VERSION, WINDOW).await
}

/// A sessionless fetch (session id 0, epoch -1: as the gateway forwards every full fetch) of
/// `partition` of `topic` from `offset`, up to 1 MiB, without waiting.
fn fetch_request(topic: &'static str, partition: i32, offset: i64) -> FetchRequest {
    let mut p = FetchPartition::default();
    p.partition = partition;
    p.fetch_offset = offset;
    p.partition_max_bytes = 1 << 20;
    p.log_start_offset = -1;
    p.current_leader_epoch = -1;
    p.last_fetched_epoch = -1;
    let mut t = FetchTopic::default();
    t.topic = TopicName(StrBytes::from_static_str(topic));
    t.partitions = vec![p];
    let mut req = FetchRequest::default();
    req.replica_id = BrokerId(-1);
    req.max_wait_ms = 0;
    req.min_bytes = 1;
    req.max_bytes = 1 << 20;
    req.session_id = 0;
    req.session_epoch = -1;
    req.topics = vec![t];
    req
}

/// Sends the fetch requests `reqs`, then receives their responses, each with records; returns
/// the record bytes fetched.
async fn fetch_window(c: &mut KafkaClient, reqs: &[&FetchRequest]) -> u64 {
    support::fetch_window(c, reqs, FETCH_VERSION).await
}

/// One connection per broker, each to the partition its broker leads (`NODES[i]`, partition
/// `i`).
type Side = Vec<KafkaClient>;

/// Three direct connections, one per broker.
async fn direct_side(bench: &Bench) -> Side {
    let mut side = Vec::new();
    for id in NODES {
        side.push(direct(bench.broker(id)).await);
    }
    side
}

/// Three gateway sessions, one per node port, logged in.
async fn gateway_side(bench: &Bench) -> Side {
    let mut side = Vec::new();
    for id in NODES {
        side.push(session(&bench.gateway_nodes[&id], &bench.login).await);
    }
    side
}

/// What one iteration of a side does.
#[derive(Clone, Copy)]
enum Work<'r> {
    /// `WINDOW` produce requests on each connection, `reqs[i]` on connection `i`.
    Produce(&'r [ProduceRequest]),
    /// `WINDOW` fetch requests on each connection; `reqs[i]` are partition `i`'s, one per
    /// position, of which pair `n` fetches the `WINDOW` from `n * WINDOW` on, wrapping around.
    Fetch(&'r [Vec<FetchRequest>]),
}

impl Work<'_> {
    /// One iteration on every connection of `side` at once, for pair `pair`; the bytes moved.
    async fn run(self, side: &mut Side, pair: usize) -> u64 {
        let moved = match self {
            Work::Produce(reqs) => {
                join_all(
                    side.iter_mut()
                        .zip(reqs)
                        .map(|(c, req)| produce_window(c, req)),
                )
                .await
            }
            Work::Fetch(reqs) => {
                join_all(side.iter_mut().zip(reqs).map(|(c, positions)| {
                    let window: Vec<&FetchRequest> = (0..WINDOW)
                        .map(|k| &positions[(pair * WINDOW + k) % positions.len()])
                        .collect();
                    async move { fetch_window(c, &window).await }
                }))
                .await
            }
        };
        moved.iter().sum()
    }
}

/// Times of an interleaved run: `(a, b)` per pair, and the bytes each iteration moved.
struct Interleaved {
    labels: [&'static str; 2],
    times: Vec<(Duration, Duration)>,
    bytes: Vec<(u64, u64)>,
    cpu: Cpu,
}

impl Interleaved {
    fn mb(&self, side: usize) -> f64 {
        self.bytes
            .iter()
            .map(|b| if side == 0 { b.0 } else { b.1 })
            .sum::<u64>() as f64
            / 1e6
    }

    fn secs(&self, side: usize) -> f64 {
        self.times
            .iter()
            .map(|t| if side == 0 { t.0 } else { t.1 })
            .sum::<Duration>()
            .as_secs_f64()
    }

    fn mb_per_s(&self, side: usize) -> f64 {
        self.mb(side) / self.secs(side)
    }

    /// b/a throughput over all pairs.
    fn ratio(&self) -> f64 {
        self.mb_per_s(1) / self.mb_per_s(0)
    }

    /// The median of the pairs' b/a throughput ratios.
    fn median_ratio(&self) -> f64 {
        median(
            self.times
                .iter()
                .zip(&self.bytes)
                .map(|((ta, tb), (ba, bb))| {
                    (*bb as f64 / tb.as_secs_f64()) / (*ba as f64 / ta.as_secs_f64())
                })
                .collect(),
        )
        .unwrap_or(f64::NAN)
    }

    fn print(&self, what: &str) {
        println!(
            "{what} interleaved, {} pairs: {} {:.1} MB/s, {} {:.1} MB/s; {1}/{3} = {:.3} over all pairs, median pair ratio {:.3}",
            self.times.len(),
            self.labels[1],
            self.mb_per_s(1),
            self.labels[0],
            self.mb_per_s(0),
            self.ratio(),
            self.median_ratio()
        );
        if std::env::var_os("POOLGATE_BENCH_VERBOSE").is_some() {
            for (i, (a, b)) in self.times.iter().enumerate() {
                println!(
                    "  pair {i}: {} {:.1} ms, {} {:.1} ms",
                    self.labels[0],
                    ms(*a),
                    self.labels[1],
                    ms(*b)
                );
            }
        }
    }
}

/// `warm` uncounted pairs, then `pairs` pairs of iterations of `work`, one on `a` and one on
/// `b`, which goes first at random.
fn interleave(
    rt: &tokio::runtime::Runtime,
    bench: &Bench,
    work: Work<'_>,
    (warm, pairs): (usize, usize),
    labels: [&'static str; 2],
    a: &mut Side,
    b: &mut Side,
) -> Interleaved {
    let mut times = Vec::with_capacity(pairs);
    let mut bytes = Vec::with_capacity(pairs);
    let mut cpu = Cpu::default();
    rt.block_on(async {
        for pair in 0..warm + pairs {
            if pair == warm {
                cpu = bench.cpu();
            }
            let mut t = [Duration::ZERO; 2];
            let mut n = [0u64; 2];
            // Which side goes first is drawn at random: with a fixed alternation (ABBA...) a
            // broker event every fourth iteration (a GC, a segment roll) would always land on
            // the same side.
            let first = usize::from(rand::random::<bool>());
            for side in [first, 1 - first] {
                let t0 = Instant::now();
                n[side] = work
                    .run(if side == 0 { &mut *a } else { &mut *b }, pair)
                    .await;
                t[side] = t0.elapsed();
            }
            if pair >= warm {
                times.push((t[0], t[1]));
                bytes.push((n[0], n[1]));
            }
        }
    });
    Interleaved {
        labels,
        times,
        bytes,
        cpu: bench.cpu().since(cpu),
    }
}

/// Gateway/direct and its control, for produce or fetch.
struct Throughput {
    ab: Interleaved,
    control: Interleaved,
}

impl Throughput {
    fn print_cpu(&self) {
        let gw_mb = self.ab.mb(1);
        let all_mb = self.ab.mb(0) + gw_mb;
        println!(
            "  CPU during the gateway/direct pairs: gateway {:.0} us per MB forwarded; brokers {:.0} us per MB served; client {:.0} us per MB\n",
            us(self.ab.cpu.gateway) / gw_mb,
            us(self.ab.cpu.brokers) / all_mb,
            us(self.ab.cpu.client) / all_mb
        );
    }
}

fn pairs() -> (usize, usize) {
    if test_mode() {
        (1, 2)
    } else {
        (WARM_PAIRS, PAIRS)
    }
}

fn batch() -> bytes::Bytes {
    let value = vec![b'x'; RECORD_BYTES];
    let records: Vec<(Option<&[u8]>, &[u8])> = (0..RECORDS_PER_BATCH)
        .map(|_| (None, value.as_slice()))
        .collect();
    record_batch(&records)
}

fn bench_produce(rt: &tokio::runtime::Runtime, bench: &Bench) -> Throughput {
    let batch = batch();
    let reqs: Vec<ProduceRequest> = (0..NODES.len())
        .map(|p| produce_request(i32::try_from(p).unwrap_or(0), batch.clone()))
        .collect();
    let (mut d1, mut d2, mut gw) = rt.block_on(async {
        (
            direct_side(bench).await,
            direct_side(bench).await,
            gateway_side(bench).await,
        )
    });
    println!(
        "produce: {} connections per side (one per broker), {WINDOW} requests of {} B in flight on each",
        NODES.len(),
        batch.len()
    );
    let control = interleave(
        rt,
        bench,
        Work::Produce(&reqs),
        pairs(),
        ["direct", "direct-2 (control)"],
        &mut d1,
        &mut d2,
    );
    control.print("produce");
    let ab = interleave(
        rt,
        bench,
        Work::Produce(&reqs),
        pairs(),
        ["direct", "gateway"],
        &mut d1,
        &mut gw,
    );
    ab.print("produce");
    let t = Throughput { ab, control };
    t.print_cpu();
    t
}

fn bench_fetch(rt: &tokio::runtime::Runtime, bench: &Bench) -> Throughput {
    // Fill the fetch topic, straight to the brokers.
    let batch = batch();
    let batches = if test_mode() { 40 } else { FETCH_BATCHES };
    let fill: Vec<ProduceRequest> = (0..NODES.len())
        .map(|p| {
            let mut req = produce_request(i32::try_from(p).unwrap_or(0), batch.clone());
            req.topic_data[0].name = TopicName(StrBytes::from_static_str(FETCH_TOPIC));
            req
        })
        .collect();
    let mut d1 = rt.block_on(direct_side(bench));
    rt.block_on(async {
        for _ in 0..batches / WINDOW {
            Work::Produce(&fill).run(&mut d1, 0).await;
        }
    });
    let filled = (batches / WINDOW * WINDOW) as i64;
    let per_fetch = (BATCHES_PER_FETCH * RECORDS_PER_BATCH) as i64;
    let positions = filled * RECORDS_PER_BATCH as i64 / per_fetch;
    let reqs: Vec<Vec<FetchRequest>> = (0..NODES.len())
        .map(|p| {
            (0..positions)
                .map(|k| fetch_request(FETCH_TOPIC, i32::try_from(p).unwrap_or(0), k * per_fetch))
                .collect()
        })
        .collect();
    println!(
        "fetch: {filled} batches ({:.1} MB) in each partition; {} connections per side, {WINDOW} fetches of up to 1 MiB in flight on each",
        filled as f64 * batch.len() as f64 / 1e6,
        NODES.len()
    );
    let (mut d2, mut gw) =
        rt.block_on(async { (direct_side(bench).await, gateway_side(bench).await) });
    let control = interleave(
        rt,
        bench,
        Work::Fetch(&reqs),
        pairs(),
        ["direct", "direct-2 (control)"],
        &mut d1,
        &mut d2,
    );
    control.print("fetch");
    let ab = interleave(
        rt,
        bench,
        Work::Fetch(&reqs),
        pairs(),
        ["direct", "gateway"],
        &mut d1,
        &mut gw,
    );
    ab.print("fetch");
    let t = Throughput { ab, control };
    t.print_cpu();
    t
}

/// Latency figures of one series.
struct Latency {
    p50: Duration,
    p99: Duration,
    max: Duration,
}

impl Latency {
    fn of(mut times: Vec<Duration>) -> Latency {
        times.sort();
        let q = |q: f64| {
            let rank = (q * times.len() as f64).ceil() as usize;
            times[rank.clamp(1, times.len()) - 1]
        };
        Latency {
            p50: q(0.50),
            p99: q(0.99),
            max: times.last().copied().unwrap_or_default(),
        }
    }

    fn line(&self, what: &str) -> String {
        format!(
            "{what:<20} p50 {:>7.3} ms  p99 {:>7.3} ms  max {:>7.3} ms",
            ms(self.p50),
            ms(self.p99),
            ms(self.max)
        )
    }
}

fn login_latency(rt: &tokio::runtime::Runtime, bench: &Bench) -> (Latency, Latency) {
    let (sequential, block) = if test_mode() {
        (20, 10)
    } else {
        (SEQUENTIAL, BLOCK)
    };
    let gateway = bench.gateway.addr();
    let broker = bench.broker(NODES[0]);
    println!(
        "login latency: {sequential} sequential gateway logins (bootstrap port) and {sequential} direct connections to broker {}, interleaved in blocks of {block}",
        NODES[0]
    );
    let mut login_times = Vec::with_capacity(sequential);
    let mut direct_times = Vec::with_capacity(sequential);
    let before = bench.cpu();
    rt.block_on(async {
        let mut round = 0;
        while login_times.len() < sequential {
            let n = block.min(sequential - login_times.len());
            // Alternate which goes first, so that neither always follows the other.
            for side in [round % 2, 1 - round % 2] {
                for _ in 0..n {
                    let t0 = Instant::now();
                    if side == 0 {
                        drop(session(gateway, &bench.login).await);
                        login_times.push(t0.elapsed());
                    } else {
                        drop(direct(broker).await);
                        direct_times.push(t0.elapsed());
                    }
                }
            }
            round += 1;
        }
    });
    let cpu = bench.cpu().since(before);
    let login = Latency::of(login_times);
    let direct = Latency::of(direct_times);
    println!("{}", login.line("gateway login"));
    println!("{}", direct.line("direct connection"));
    println!(
        "  gateway CPU {:.0} us per login (its upstream connection included)\n",
        us(cpu.gateway) / sequential as f64
    );
    (login, direct)
}

/// Memory per idle authenticated connection on one fresh gateway.
struct Memory {
    mode: &'static str,
    connections: usize,
    before_kib: u64,
    after_kib: u64,
}

impl Memory {
    fn per_connection_kib(&self) -> f64 {
        (self.after_kib as f64 - self.before_kib as f64) / self.connections as f64
    }
}

/// How a memory measurement reaches node `id` of a gateway.
enum Reach {
    /// Plaintext, to the node's port.
    Ports(BTreeMap<i32, String>),
    /// TLS to the one port, naming the node `b{id}.kafka.test`, trusting `root` (DER).
    Sni { addr: String, root: Vec<u8> },
}

impl Reach {
    async fn session(&self, id: i32, login: &[u8]) -> KafkaClient {
        let mut c = match self {
            Reach::Ports(nodes) => KafkaClient::connect(&nodes[&id])
                .await
                .expect("connect to the gateway"),
            Reach::Sni { addr, root } => {
                KafkaClient::connect_tls(addr, &format!("b{id}.kafka.test"), root)
                    .await
                    .expect("TLS connection to the gateway")
            }
        };
        log_in(&mut c, login).await;
        metadata(&mut c).await;
        c
    }
}

fn idle_memory(
    rt: &tokio::runtime::Runtime,
    bench: &Bench,
    mode: &'static str,
    gateway: &GatewayProcess,
    reach: &Reach,
) -> Memory {
    let n = if test_mode() { 30 } else { IDLE };
    let pid = gateway.pid();
    let (before_kib, after_kib) = rt.block_on(async {
        // Warm: keys fetched, token cached, a session to every node opened and closed.
        for _ in 0..3 {
            for id in NODES {
                drop(reach.session(id, &bench.login).await);
            }
        }
        // Let the gateway see the closes (nothing to ask it that would say so).
        tokio::time::sleep(Duration::from_millis(200)).await;
        let before = rss_kib(pid);
        let mut open = Vec::with_capacity(n);
        for i in 0..n {
            open.push(reach.session(NODES[i % NODES.len()], &bench.login).await);
        }
        let after = rss_kib(pid);
        drop(open);
        (before, after)
    });
    let m = Memory {
        mode,
        connections: n,
        before_kib,
        after_kib,
    };
    println!(
        "memory, {mode}: VmRSS {before_kib} KiB before, {after_kib} KiB with {n} idle authenticated connections: {:.1} KiB per connection",
        m.per_connection_kib()
    );
    m
}

fn bench_memory(rt: &tokio::runtime::Runtime, bench: &Bench) -> Vec<Memory> {
    let mut out = Vec::new();
    {
        let gateway = spawn_gateway(&bench.config, &bench.cluster, &[]);
        let nodes = gateway
            .node_ports()
            .into_iter()
            .map(|(id, port)| (id, format!("127.0.0.1:{port}")))
            .collect();
        out.push(idle_memory(
            rt,
            bench,
            "port routing, plaintext",
            &gateway,
            &Reach::Ports(nodes),
        ));
    }
    let certified = rcgen::generate_simple_self_signed(vec![
        "bootstrap.kafka.test".to_owned(),
        "*.kafka.test".to_owned(),
    ])
    .expect("a wildcard certificate");
    let cert = bench.dir.join("cert.pem");
    let key = bench.dir.join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).expect("write cert.pem");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("write key.pem");
    let sni_config = bench.dir.join("gateway-sni.toml");
    std::fs::write(
        &sni_config,
        std::fs::read_to_string(&bench.config)
            .expect("read gateway.toml")
            .replace(
                "[gateway]\n",
                "[gateway]\nrouting = \"sni\"\nsni_node_pattern = \"b{node_id}.kafka.test\"\n",
            ),
    )
    .expect("write gateway-sni.toml");
    let gateway = spawn_gateway(
        &sni_config,
        &bench.cluster,
        &[
            "--tls-cert",
            cert.to_str().expect("a UTF-8 path"),
            "--tls-key",
            key.to_str().expect("a UTF-8 path"),
            "--advertise",
            "bootstrap.kafka.test",
        ],
    );
    out.push(idle_memory(
        rt,
        bench,
        "SNI routing, TLS",
        &gateway,
        &Reach::Sni {
            addr: gateway.addr().to_owned(),
            root: certified.cert.der().to_vec(),
        },
    ));
    println!();
    out
}

fn print_summary(
    produce: &Throughput,
    fetch: &Throughput,
    login: &(Latency, Latency),
    memory: &[Memory],
) {
    println!(
        "cluster bench summary (3 Apache Kafka brokers, gateway with port routing, {} pairs per ratio):",
        produce.ab.times.len()
    );
    println!(
        "  {:<40} {:>26}  {:>10}  verdict",
        "measure", "result", "target"
    );
    for (what, t) in [("produce", produce), ("fetch", fetch)] {
        println!(
            "  {:<40} {:>26}  {:>10}  {}",
            format!("{what} gateway/direct, over all pairs"),
            format!(
                "{:.3} ({:.1} / {:.1} MB/s)",
                t.ab.ratio(),
                t.ab.mb_per_s(1),
                t.ab.mb_per_s(0)
            ),
            format!(">= {RATIO_TARGET}"),
            verdict(t.ab.ratio() >= RATIO_TARGET)
        );
        println!(
            "  {:<40} {:>26}  {:>10}  {}",
            format!("{what} gateway/direct, median pair"),
            format!("{:.3}", t.ab.median_ratio()),
            format!(">= {RATIO_TARGET}"),
            verdict(t.ab.median_ratio() >= RATIO_TARGET)
        );
        println!(
            "  {:<40} {:>26}",
            format!("{what} control direct/direct"),
            format!(
                "{:.3} all, {:.3} median",
                t.control.ratio(),
                t.control.median_ratio()
            )
        );
        println!(
            "  {:<40} {:>26}",
            format!("{what} CPU per MB: gateway; brokers"),
            format!(
                "{:.0} us; {:.0} us",
                us(t.ab.cpu.gateway) / t.ab.mb(1),
                us(t.ab.cpu.brokers) / (t.ab.mb(0) + t.ab.mb(1))
            )
        );
    }
    let (l, d) = login;
    println!(
        "  {:<40} {:>26}  {:>10}  {}",
        "login p99 (warm token cache)",
        format!("{:.3} ms", ms(l.p99)),
        format!("< {} ms", LOGIN_P99_TARGET.as_millis()),
        verdict(l.p99 < LOGIN_P99_TARGET)
    );
    println!(
        "  {:<40} {:>26}",
        "login p50; max",
        format!("{:.3} ms; {:.3} ms", ms(l.p50), ms(l.max))
    );
    println!(
        "  {:<40} {:>26}",
        "direct connection p50; p99; max",
        format!("{:.3}; {:.3}; {:.3} ms", ms(d.p50), ms(d.p99), ms(d.max))
    );
    for m in memory {
        let kib = m.per_connection_kib();
        println!(
            "  {:<40} {:>26}  {:>10}  {}",
            format!("memory per idle connection, {}", m.mode),
            format!("{kib:.1} KiB ({} conns)", m.connections),
            format!("<= {MEMORY_TARGET_KIB} KiB"),
            verdict(kib <= MEMORY_TARGET_KIB)
        );
    }
}

fn main() {
    let Some(libs) = kafka_libs() else {
        println!("cluster bench: run `e2e/setup` first (installs Apache Kafka's jars)");
        return;
    };
    let bench = Bench::start(&libs);
    // The client: one thread, so that its own scheduling adds no cross-thread wake-ups; the
    // gateway and the brokers get the cores.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");

    // Warm the gateway: the first login fetches the issuer's keys and fills the token cache.
    rt.block_on(async {
        support::first_login(bench.gateway.addr(), &bench.login).await;
        for _ in 0..50 {
            drop(session(bench.gateway.addr(), &bench.login).await);
            drop(direct(bench.broker(NODES[0])).await);
        }
    });

    let produce = bench_produce(&rt, &bench);
    let fetch = bench_fetch(&rt, &bench);
    let login = login_latency(&rt, &bench);
    let memory = bench_memory(&rt, &bench);
    print_summary(&produce, &fetch, &login, &memory);
    drop(rt);
    drop(bench);
}
