//! `poolgate gateway` against the broker it fronts, with real parts, in one run: logins per
//! second through the gateway (new connection + SASL/OAUTHBEARER, warm token cache) against a
//! new unauthenticated connection to the upstream broker, and produce throughput through the
//! gateway against produce straight to the broker.
//!
//! Targets: produce through the gateway at least 0.9x direct; p99 login latency under 2 ms on
//! a warm cache.
//!
//! Run: `cargo bench --features cli --bench gateway` (needs tansu: `e2e/setup tansu`; without it the bench
//! prints a note and does nothing; `POOLGATE_BENCH_VERBOSE=1` also prints each interleaved produce
//! pair). The machine is usually shared, so every figure is reported next to a baseline
//! measured in the same run, and the ratios are what count. About a minute.
//!
//! Parts: tansu (`$POOLGATE_E2E_CACHE/tansu/bin/tansu`, in-memory storage) as the upstream
//! broker; the local OIDC issuer in-process; the real `poolgate gateway` binary with
//! `testdata/gateway/gateway.toml`; the testkit's Kafka client on a current-thread runtime.
//!
//! Measured:
//! 1. criterion group `connect`: `direct_broker` = TCP connect to tansu + ApiVersions v3;
//!    `gateway_login` = TCP connect to the gateway + ApiVersions v3 + SaslHandshake v1 +
//!    SaslAuthenticate v2 (success asserted). Each iteration closes its connection; the gateway
//!    then still opens (and closes) its own upstream connection to tansu, in the background, so
//!    that cost is part of what a login costs the machine.
//! 2. login latency (outside criterion's statistics): 2,000 sequential gateway logins and 2,000
//!    direct connections, interleaved in blocks of 100, each timed: p50, p99, max, and
//!    connections per second (1/mean); then 1,000 of each from 50 concurrent tasks.
//! 3. criterion group `produce`: one connection, ProduceRequest v7 (acks=1), one record batch of
//!    100 records of 1 KiB per request, 16 requests in flight (send 16, then receive 16, per
//!    iteration), `direct` to tansu vs `gateway` (logged in first). Every partition response
//!    must have error code 0. Tansu's in-memory engine slows down as it fills (see
//!    [`Stack::restart_broker`]), so each side starts from a freshly started, empty broker.
//!    Criterion runs one side after the other, so then an interleaved A/B measurement (40
//!    pairs, one iteration on each side, which goes first alternating, on another fresh broker)
//!    gives the ratio with both sides seeing the same broker state and machine load; and the
//!    same procedure with two direct connections is its control. Tansu pauses for 50-500 ms
//!    at fixed amounts of data held (~16, 32, 64, 128 MiB: the same pairs in every run, on
//!    whichever connection is producing then, the control's too), so the ratio that counts
//!    leaves out the pairs where either side took over twice the median iteration; the ratio
//!    over all pairs and the median pair ratio are printed beside it.
//!
//! 4. fetch, interleaved like produce: after a produce on a fresh broker, one connection fetches
//!    the partition from offset 0 (FetchRequest v11, up to 1 MiB, `WINDOW` in flight), the way
//!    a Java consumer asks (session id 0, epoch 0: the gateway forwards it sessionless, epoch -1),
//!    `direct` vs `gateway`.
//! 5. with `POOLGATE_BENCH_BASELINE_GATEWAY=PATH` (a `poolgate` binary built from another commit),
//!    that gateway runs beside this one in front of the same broker, and produce and fetch are
//!    also interleaved between the two: the cost of a gateway change, in one run.
//!
//! Besides wall time, the CPU time of the gateway and tansu processes (from `/proc`) is reported
//! per login and per MB produced: on a 2-core machine that is where a gateway overhead shows
//! first.
//!
//! The ratios printed from criterion's groups are computed from the same samples criterion
//! analyses (median time per iteration over the measured samples).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{CreateTopicsRequest, FetchRequest, ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use poolgate::testkit::TestIssuer;
use poolgate::testkit::kafka::{KafkaClient, record_batch};
use poolgate::testkit::stack::{GatewayProcess, Tansu, e2e_cache};

#[path = "support/mod.rs"]
mod support;
use support::{
    TempDir, api_versions, cpu_of, cpu_time, median, ms, quiet_gateway, test_mode, us, verdict,
};

const CLUSTER: &str = "lkc-e2e";
const TOPIC: &str = "e2e-bench";
/// Produce requests in flight per iteration.
const WINDOW: usize = 16;
const RECORDS_PER_BATCH: usize = 100;
const RECORD_BYTES: usize = 1024;
const CONNECT_SAMPLES: usize = 20;
/// Criterion's minimum; with flat sampling this keeps each produce benchmark to ~100
/// iterations (~175 MB), before tansu slows down.
const PRODUCE_SAMPLES: usize = 10;
/// Sequential logins (and direct connections) for the latency percentiles.
const SEQUENTIAL: usize = 2_000;
/// Interleaving block of the sequential measurement.
const BLOCK: usize = 100;
const CONCURRENT_TOTAL: usize = 1_000;
const CONCURRENT_TASKS: usize = 50;
/// Pairs of produce iterations (one direct, one through the gateway) of the A/B measurement.
const AB_PAIRS: usize = 40;
const LOGIN_P99_TARGET: Duration = Duration::from_millis(2);
const PRODUCE_RATIO_TARGET: f64 = 0.9;

/// Where `e2e/setup` put tansu.
fn tansu() -> Option<PathBuf> {
    e2e_cache().map(|dir| dir.join("tansu/bin/tansu"))
}

/// CPU time of the gateway, tansu and this process (the client; the issuer is idle).
#[derive(Clone, Copy, Default)]
struct Cpu {
    gateway: Duration,
    tansu: Duration,
    client: Duration,
}

impl Cpu {
    fn since(self, before: Cpu) -> Cpu {
        Cpu {
            gateway: self.gateway.saturating_sub(before.gateway),
            tansu: self.tansu.saturating_sub(before.tansu),
            client: self.client.saturating_sub(before.client),
        }
    }

    fn plus(self, other: Cpu) -> Cpu {
        Cpu {
            gateway: self.gateway + other.gateway,
            tansu: self.tansu + other.tansu,
            client: self.client + other.client,
        }
    }

    /// `gateway X, tansu Y, client Z` per `n` of `unit`, in microseconds.
    fn per(self, n: f64, unit: &str) -> String {
        let f = |d: Duration| d.as_secs_f64() * 1e6 / n.max(1.0);
        format!(
            "CPU per {unit}: gateway {:.0} us, tansu {:.0} us, client {:.0} us",
            f(self.gateway),
            f(self.tansu),
            f(self.client)
        )
    }
}

/// Tansu, the issuer and a gateway in front of tansu. Fields drop in order: the gateway and
/// tansu are killed, then the issuer stops, then its runtime.
struct Stack {
    broker: String,
    gateway: String,
    /// The SASL client first message: one token, the same bytes every login.
    login: Arc<Vec<u8>>,
    _dir: TempDir,
    gateway_proc: GatewayProcess,
    /// Another build of the gateway (`POOLGATE_BENCH_BASELINE_GATEWAY`), same configuration.
    baseline: Option<GatewayProcess>,
    tansu: Tansu,
    _issuer: TestIssuer,
    _issuer_rt: tokio::runtime::Runtime,
}

impl Stack {
    fn start(tansu_bin: &Path) -> Stack {
        let (issuer_rt, issuer) = support::issuer();
        let tansu = Tansu::start(tansu_bin, "bench").expect("start tansu");
        let broker = tansu.addr().to_owned();

        let dir = TempDir::new("bench-gateway");
        let config = dir.gateway_config(&issuer, |t| t);
        let gateway_proc = quiet_gateway(
            Path::new(env!("CARGO_BIN_EXE_poolgate")),
            &config,
            &broker,
            &[],
        );
        let gateway = gateway_proc.addr().to_owned();
        let baseline = std::env::var_os("POOLGATE_BENCH_BASELINE_GATEWAY")
            .map(|bin| quiet_gateway(Path::new(&bin), &config, &broker, &[]));
        let login = support::writer_login(&issuer, CLUSTER);
        Stack {
            broker,
            gateway,
            login: Arc::new(login),
            _dir: dir,
            gateway_proc,
            baseline,
            tansu,
            _issuer: issuer,
            _issuer_rt: issuer_rt,
        }
    }

    /// A fresh, empty broker on the same address. Tansu 0.6's in-memory engine slows down as it
    /// holds more data (measured on this bench's requests, direct, one connection: ~40-60 MB/s
    /// for the first ~250 MB, then ~10-20 MB/s, on a new topic too, with tansu at 100% of a
    /// core and its RSS about 3x the data), so each produce measurement starts from an empty
    /// broker. Sessions through the gateway must log in again afterwards.
    fn restart_broker(&mut self) {
        self.tansu.restart().expect("restart tansu");
    }

    fn cpu(&self) -> Cpu {
        Cpu {
            gateway: cpu_of(self.gateway_proc.pid()),
            tansu: cpu_of(self.tansu.pid()),
            client: cpu_time("/proc/self/stat"),
        }
    }
}

/// A new connection to the broker, without authentication: connect + ApiVersions v3.
async fn direct_connect(broker: &str) {
    drop(support::direct(broker).await);
}

/// A new connection to the gateway, logged in (see [`support::session`]).
async fn gateway_session(gateway: &str, login: &[u8]) -> KafkaClient {
    support::session(gateway, login).await
}

async fn gateway_login(gateway: &str, login: &[u8]) {
    drop(gateway_session(gateway, login).await);
}

/// `(iterations, elapsed)` of every `iter_custom` call of one benchmark; the last
/// `sample_size` are the samples criterion analyses (the calls before them are its warm-up).
struct Samples {
    calls: RefCell<Vec<(u64, Duration)>>,
    sample_size: usize,
    /// CPU time of the processes during the calls (criterion's analysis excluded).
    cpu: Cell<Cpu>,
}

impl Samples {
    fn new(sample_size: usize) -> Samples {
        Samples {
            calls: RefCell::default(),
            sample_size,
            cpu: Cell::new(Cpu::default()),
        }
    }

    /// Runs `iters` iterations of `op` on `rt`, timed, recording time and CPU.
    fn run<F: Future<Output = ()>>(
        &self,
        iters: u64,
        rt: &tokio::runtime::Runtime,
        stack: &Stack,
        op: F,
    ) -> Duration {
        let cpu0 = stack.cpu();
        let t0 = Instant::now();
        rt.block_on(op);
        let elapsed = t0.elapsed();
        self.cpu.set(self.cpu.get().plus(stack.cpu().since(cpu0)));
        self.calls.borrow_mut().push((iters, elapsed));
        elapsed
    }

    /// Iterations run in all, warm-up included.
    fn total_iters(&self) -> u64 {
        self.calls.borrow().iter().map(|(n, _)| n).sum()
    }

    /// Median time per iteration over the measured samples.
    fn per_iter(&self) -> Option<Duration> {
        let all = self.calls.borrow();
        let measured = &all[all.len().saturating_sub(self.sample_size)..];
        let per: Vec<f64> = measured
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, d)| d.as_secs_f64() / *n as f64)
            .collect();
        median(per).map(Duration::from_secs_f64)
    }
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Latency figures of one series.
struct Latency {
    p50: Duration,
    p99: Duration,
    max: Duration,
    per_sec: f64,
}

impl Latency {
    fn of(mut times: Vec<Duration>) -> Latency {
        times.sort();
        let total: Duration = times.iter().sum();
        Latency {
            p50: quantile(&times, 0.50),
            p99: quantile(&times, 0.99),
            max: times.last().copied().unwrap_or_default(),
            per_sec: times.len() as f64 / total.as_secs_f64().max(f64::MIN_POSITIVE),
        }
    }

    fn line(&self, what: &str) -> String {
        format!(
            "{what:<20} p50 {:>7.3} ms  p99 {:>7.3} ms  max {:>7.3} ms  {:>6.0}/s (1/mean)",
            ms(self.p50),
            ms(self.p99),
            ms(self.max),
            self.per_sec
        )
    }
}

/// `total` operations from `tasks` concurrent tasks; returns the wall time and each latency.
async fn concurrent<F, Fut>(total: usize, tasks: usize, op: F) -> (Duration, Vec<Duration>)
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for t in 0..tasks {
        let n = total / tasks + usize::from(t < total % tasks);
        let op = op.clone();
        set.spawn(async move {
            let mut times = Vec::with_capacity(n);
            for _ in 0..n {
                let t0 = Instant::now();
                op().await;
                times.push(t0.elapsed());
            }
            times
        });
    }
    let mut times = Vec::with_capacity(total);
    while let Some(r) = set.join_next().await {
        times.extend(r.expect("a concurrent task panicked"));
    }
    (started.elapsed(), times)
}

/// What the summary reports.
#[derive(Default)]
struct Summary {
    login_per_iter: Option<Duration>,
    direct_per_iter: Option<Duration>,
    login: Option<Latency>,
    direct: Option<Latency>,
    concurrent_tasks: usize,
    concurrent_logins: Option<f64>,
    concurrent_direct: Option<f64>,
    produce_direct: Option<f64>,
    produce_gateway: Option<f64>,
    produce_ab: Option<Interleaved>,
    produce_control: Option<Interleaved>,
    produce_gateway_cpu_per_mb: Option<Duration>,
    /// Produce, this gateway against the baseline gateway.
    produce_baseline: Option<Interleaved>,
    fetch_ab: Option<Interleaved>,
    fetch_baseline: Option<Interleaved>,
}

fn bench_connect(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    stack: &Stack,
    sum: &mut Summary,
) {
    let direct = Samples::new(CONNECT_SAMPLES);
    let login = Samples::new(CONNECT_SAMPLES);
    let mut g = c.benchmark_group("connect");
    g.sample_size(CONNECT_SAMPLES)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(1));
    g.bench_function("direct_broker", |b| {
        b.iter_custom(|iters| {
            direct.run(iters, rt, stack, async {
                for _ in 0..iters {
                    direct_connect(&stack.broker).await;
                }
            })
        });
    });
    g.bench_function("gateway_login", |b| {
        b.iter_custom(|iters| {
            login.run(iters, rt, stack, async {
                for _ in 0..iters {
                    gateway_login(&stack.gateway, &stack.login).await;
                }
            })
        });
    });
    g.finish();
    sum.direct_per_iter = direct.per_iter();
    sum.login_per_iter = login.per_iter();
    if let (Some(d), Some(l)) = (sum.direct_per_iter, sum.login_per_iter) {
        println!(
            "\nconnect (criterion medians): direct {:.1} us ({:.0}/s), gateway login {:.1} us ({:.0}/s); logins/s through the gateway = {:.3} x direct connections/s",
            us(d),
            1.0 / d.as_secs_f64(),
            us(l),
            1.0 / l.as_secs_f64(),
            d.as_secs_f64() / l.as_secs_f64()
        );
        println!(
            "  direct connection {}",
            direct
                .cpu
                .get()
                .per(direct.total_iters() as f64, "connection")
        );
        println!(
            "  gateway login     {} (tansu: the gateway's upstream connection)\n",
            login.cpu.get().per(login.total_iters() as f64, "login")
        );
    }
}

fn login_latency(rt: &tokio::runtime::Runtime, stack: &Stack, sum: &mut Summary) {
    let (sequential, block, total, tasks) = if test_mode() {
        (20, 10, 20, 5)
    } else {
        (SEQUENTIAL, BLOCK, CONCURRENT_TOTAL, CONCURRENT_TASKS)
    };
    println!(
        "login latency: {sequential} sequential gateway logins and {sequential} direct connections, interleaved in blocks of {block}"
    );
    let mut login_times = Vec::with_capacity(sequential);
    let mut direct_times = Vec::with_capacity(sequential);
    let gateway_before = cpu_of(stack.gateway_proc.pid());
    rt.block_on(async {
        let mut round = 0;
        while login_times.len() < sequential {
            let n = block.min(sequential - login_times.len());
            // Alternate which goes first, so that neither always follows the other.
            for side in [round % 2, 1 - round % 2] {
                for _ in 0..n {
                    let t0 = Instant::now();
                    if side == 0 {
                        gateway_login(&stack.gateway, &stack.login).await;
                        login_times.push(t0.elapsed());
                    } else {
                        direct_connect(&stack.broker).await;
                        direct_times.push(t0.elapsed());
                    }
                }
            }
            round += 1;
        }
    });
    let gateway_cpu = cpu_of(stack.gateway_proc.pid()).saturating_sub(gateway_before);
    let login = Latency::of(login_times);
    let direct = Latency::of(direct_times);
    println!("{}", login.line("gateway login"));
    println!("{}", direct.line("direct connection"));
    println!(
        "gateway logins/s = {:.3} x direct connections/s; p99 gateway/direct = {:.2}; gateway CPU {:.0} us per login",
        login.per_sec / direct.per_sec,
        login.p99.as_secs_f64() / direct.p99.as_secs_f64(),
        us(gateway_cpu) / sequential as f64
    );

    println!("\n{total} logins and {total} direct connections from {tasks} concurrent tasks");
    let (gw_wall, gw_times) = rt.block_on({
        let gateway = stack.gateway.clone();
        let msg = Arc::clone(&stack.login);
        concurrent(total, tasks, move || {
            let gateway = gateway.clone();
            let msg = Arc::clone(&msg);
            async move { gateway_login(&gateway, &msg).await }
        })
    });
    let (d_wall, d_times) = rt.block_on({
        let broker = stack.broker.clone();
        concurrent(total, tasks, move || {
            let broker = broker.clone();
            async move { direct_connect(&broker).await }
        })
    });
    let gw_rate = total as f64 / gw_wall.as_secs_f64();
    let d_rate = total as f64 / d_wall.as_secs_f64();
    let gw_lat = Latency::of(gw_times);
    let d_lat = Latency::of(d_times);
    println!(
        "gateway logins     {gw_rate:>6.0}/s  (p50 {:.3} ms, p99 {:.3} ms)",
        ms(gw_lat.p50),
        ms(gw_lat.p99)
    );
    println!(
        "direct connections {d_rate:>6.0}/s  (p50 {:.3} ms, p99 {:.3} ms)",
        ms(d_lat.p50),
        ms(d_lat.p99)
    );
    println!("concurrent gateway/direct = {:.3}\n", gw_rate / d_rate);
    sum.login = Some(login);
    sum.direct = Some(direct);
    sum.concurrent_tasks = tasks;
    sum.concurrent_logins = Some(gw_rate);
    sum.concurrent_direct = Some(d_rate);
}

fn produce_request(batch: bytes::Bytes) -> ProduceRequest {
    support::produce_request(TOPIC, 0, batch)
}

/// Sends `WINDOW` produce requests (v7), then receives their responses, in order.
async fn produce_window(c: &mut KafkaClient, req: &ProduceRequest) {
    support::produce_window(c, req, 7, WINDOW).await;
}

/// Creates the topic: 1 partition, replication 1.
async fn create_topic(c: &mut KafkaClient) {
    let mut topic = CreatableTopic::default();
    topic.name = TopicName(StrBytes::from_static_str(TOPIC));
    topic.num_partitions = 1;
    topic.replication_factor = 1;
    let mut req = CreateTopicsRequest::default();
    req.topics = vec![topic];
    req.timeout_ms = 30_000;
    let resp = c.call(5, req).await.expect("CreateTopics v5");
    assert_eq!(resp.topics.len(), 1, "one CreateTopics result");
    for t in &resp.topics {
        assert_eq!(
            t.error_code, 0,
            "CreateTopics {}: error code {} {:?}",
            t.name.0, t.error_code, t.error_message
        );
    }
}

/// A fresh broker, then a connection to it with the topic created and one window produced.
fn fresh_direct(
    rt: &tokio::runtime::Runtime,
    stack: &mut Stack,
    req: &ProduceRequest,
) -> KafkaClient {
    stack.restart_broker();
    rt.block_on(async {
        let mut c = KafkaClient::connect(&stack.broker)
            .await
            .expect("connect to tansu");
        api_versions(&mut c).await;
        create_topic(&mut c).await;
        produce_window(&mut c, req).await;
        c
    })
}

/// A logged-in session through the gateway; `create` creates the topic through it (the
/// writers' pool may create `e2e-*` topics). One window is produced before returning.
fn gateway_producer(
    rt: &tokio::runtime::Runtime,
    stack: &Stack,
    req: &ProduceRequest,
    create: bool,
) -> KafkaClient {
    rt.block_on(async {
        let mut c = gateway_session(&stack.gateway, &stack.login).await;
        if create {
            create_topic(&mut c).await;
        }
        produce_window(&mut c, req).await;
        c
    })
}

fn bench_produce(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    stack: &mut Stack,
    sum: &mut Summary,
) {
    let value = vec![b'x'; RECORD_BYTES];
    let records: Vec<(Option<&[u8]>, &[u8])> = (0..RECORDS_PER_BATCH)
        .map(|_| (None, value.as_slice()))
        .collect();
    let batch = record_batch(&records);
    let bytes_per_iter = (WINDOW * batch.len()) as u64;
    let mb_per_iter = bytes_per_iter as f64 / 1e6;
    let req = produce_request(batch);

    let d_samples = Samples::new(PRODUCE_SAMPLES);
    let g_samples = Samples::new(PRODUCE_SAMPLES);
    let mut g = c.benchmark_group("produce");
    g.sample_size(PRODUCE_SAMPLES)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Bytes(bytes_per_iter));

    let mut direct = fresh_direct(rt, stack, &req);
    g.bench_function("direct", |b| {
        b.iter_custom(|iters| {
            d_samples.run(iters, rt, stack, async {
                for _ in 0..iters {
                    produce_window(&mut direct, &req).await;
                }
            })
        });
    });
    drop(direct);

    stack.restart_broker();
    let mut gateway = gateway_producer(rt, stack, &req, true);
    g.bench_function("gateway", |b| {
        b.iter_custom(|iters| {
            g_samples.run(iters, rt, stack, async {
                for _ in 0..iters {
                    produce_window(&mut gateway, &req).await;
                }
            })
        });
    });
    drop(gateway);
    g.finish();

    let mb_s = |per_iter: Duration| mb_per_iter / per_iter.as_secs_f64();
    sum.produce_direct = d_samples.per_iter().map(mb_s);
    sum.produce_gateway = g_samples.per_iter().map(mb_s);
    let d_mb = d_samples.total_iters() as f64 * mb_per_iter;
    let g_mb = g_samples.total_iters() as f64 * mb_per_iter;
    if let (Some(d), Some(gw)) = (sum.produce_direct, sum.produce_gateway) {
        println!(
            "\nproduce (criterion medians, {bytes_per_iter} B per iteration, each side on a fresh broker): direct {d:.1} MB/s, gateway {gw:.1} MB/s; gateway/direct = {:.3}",
            gw / d
        );
        let (d_cpu, g_cpu) = (d_samples.cpu.get(), g_samples.cpu.get());
        println!("  direct  ({d_mb:.0} MB) {}", d_cpu.per(d_mb, "MB"));
        println!("  gateway ({g_mb:.0} MB) {}", g_cpu.per(g_mb, "MB"));
        sum.produce_gateway_cpu_per_mb = Some(g_cpu.gateway.div_f64(g_mb.max(1.0)));
    }

    // Criterion measures one side after the other: a change in machine load between the two
    // lands in the ratio. Here the two alternate, one iteration each, on one fresh broker; and
    // the same procedure with two direct connections is the control.
    let pairs = if test_mode() { 2 } else { AB_PAIRS };
    let control = {
        let mut a = fresh_direct(rt, stack, &req);
        let mut b = rt.block_on(async {
            let mut c = KafkaClient::connect(&stack.broker)
                .await
                .expect("connect to tansu");
            api_versions(&mut c).await;
            produce_window(&mut c, &req).await;
            c
        });
        interleave(rt, stack, Work::Produce(&req), pairs, &mut a, &mut b)
    };
    control.print(["direct", "direct-2 (control)"], mb_per_iter);
    let ab = {
        let mut direct = fresh_direct(rt, stack, &req);
        let mut gateway = gateway_producer(rt, stack, &req, false);
        interleave(
            rt,
            stack,
            Work::Produce(&req),
            pairs,
            &mut direct,
            &mut gateway,
        )
    };
    ab.print(["direct", "gateway"], mb_per_iter);
    let mb = ab.times.len() as f64 * mb_per_iter;
    println!(
        "  gateway CPU {:.0} us per MB forwarded (tansu {:.0} us per MB produced)\n",
        us(ab.cpu.gateway) / mb,
        us(ab.cpu.tansu) / (2.0 * mb)
    );
    sum.produce_ab = Some(ab);
    sum.produce_control = Some(control);
    if let Some(base) = &stack.baseline {
        let base = base.addr().to_owned();
        stack.restart_broker();
        let mut this = gateway_producer(rt, stack, &req, true);
        let mut other = rt.block_on(async {
            let mut c = gateway_session(&base, &stack.login).await;
            produce_window(&mut c, &req).await;
            c
        });
        let ab = interleave(rt, stack, Work::Produce(&req), pairs, &mut other, &mut this);
        ab.print(["baseline gateway", "gateway"], mb_per_iter);
        sum.produce_baseline = Some(ab);
    }
}

/// A fetch of partition 0 from offset 0, up to 1 MiB, as a Java consumer asks (session id 0,
/// epoch 0: it would create a fetch session).
fn fetch_request() -> FetchRequest {
    let mut p = FetchPartition::default();
    p.partition = 0;
    p.fetch_offset = 0;
    p.partition_max_bytes = 1 << 20;
    p.log_start_offset = -1;
    p.current_leader_epoch = -1;
    p.last_fetched_epoch = -1;
    let mut t = FetchTopic::default();
    t.topic = TopicName(StrBytes::from_static_str(TOPIC));
    t.partitions = vec![p];
    let mut req = FetchRequest::default();
    req.replica_id = kafka_protocol::messages::BrokerId(-1);
    req.max_wait_ms = 0;
    req.min_bytes = 1;
    req.max_bytes = 1 << 20;
    req.session_id = 0;
    req.session_epoch = 0;
    req.topics = vec![t];
    req
}

/// Sends `WINDOW` fetch requests, then receives their responses, each with records.
async fn fetch_window(c: &mut KafkaClient, req: &FetchRequest) {
    support::fetch_window(c, &[req; WINDOW], FETCH_VERSION).await;
}

/// v11: tansu 0.6 answers v12 with a tagged field that v12 does not define.
const FETCH_VERSION: i16 = 11;

/// Fetch through the gateway against fetch straight to the broker, interleaved, on a broker
/// holding a few produced windows; and against the baseline gateway when there is one.
fn bench_fetch(rt: &tokio::runtime::Runtime, stack: &mut Stack, sum: &mut Summary) {
    let value = vec![b'x'; RECORD_BYTES];
    let records: Vec<(Option<&[u8]>, &[u8])> = (0..RECORDS_PER_BATCH)
        .map(|_| (None, value.as_slice()))
        .collect();
    let produce = produce_request(record_batch(&records));
    let fetch = fetch_request();
    let pairs = if test_mode() { 2 } else { AB_PAIRS };
    let mut direct = fresh_direct(rt, stack, &produce);
    let mut gateway = gateway_producer(rt, stack, &produce, false);
    // One fetch on each first: both sides then read data the broker holds in memory.
    rt.block_on(async {
        fetch_window(&mut direct, &fetch).await;
        fetch_window(&mut gateway, &fetch).await;
    });
    let mb_per_iter = |c: &mut KafkaClient| {
        rt.block_on(async {
            c.send(FETCH_VERSION, &fetch)
                .await
                .expect("send FetchRequest");
            let (_, resp) = c.recv::<FetchRequest>(FETCH_VERSION).await.expect("fetch");
            resp.responses[0].partitions[0]
                .records
                .as_ref()
                .map_or(0, bytes::Bytes::len) as f64
                * WINDOW as f64
                / 1e6
        })
    };
    let mb = mb_per_iter(&mut direct);
    let ab = interleave(
        rt,
        stack,
        Work::Fetch(&fetch),
        pairs,
        &mut direct,
        &mut gateway,
    );
    ab.print(["direct fetch", "gateway fetch"], mb);
    sum.fetch_ab = Some(ab);
    if let Some(base) = &stack.baseline {
        let mut other = rt.block_on(gateway_session(base.addr(), &stack.login));
        let ab = interleave(
            rt,
            stack,
            Work::Fetch(&fetch),
            pairs,
            &mut other,
            &mut gateway,
        );
        ab.print(["baseline gateway fetch", "gateway fetch"], mb);
        sum.fetch_baseline = Some(ab);
    }
}

/// Times of an interleaved run: `(a, b)` per pair.
struct Interleaved {
    /// `produce` or `fetch`.
    what: &'static str,
    times: Vec<(Duration, Duration)>,
    cpu: Cpu,
}

impl Interleaved {
    /// b/a throughput ratio over all pairs.
    fn raw(&self) -> f64 {
        let (a, b) = self.times.iter().fold((0.0, 0.0), |(a, b), (x, y)| {
            (a + x.as_secs_f64(), b + y.as_secs_f64())
        });
        a / b
    }

    /// Pairs in which an iteration took more than twice the median iteration (both sides
    /// pooled): the broker paused (see [`Stack::restart_broker`]; it pauses at fixed amounts of
    /// data held, whichever connection is producing then).
    fn paused(&self) -> Vec<bool> {
        let all: Vec<f64> = self
            .times
            .iter()
            .flat_map(|(a, b)| [a.as_secs_f64(), b.as_secs_f64()])
            .collect();
        let limit = 2.0 * median(all).unwrap_or(f64::INFINITY);
        self.times
            .iter()
            .map(|(a, b)| a.as_secs_f64() > limit || b.as_secs_f64() > limit)
            .collect()
    }

    /// b/a throughput ratio over the pairs without a broker pause, and how many were left out.
    fn without_pauses(&self) -> (f64, usize) {
        let paused = self.paused();
        let (a, b) = self
            .times
            .iter()
            .zip(&paused)
            .filter(|(_, p)| !**p)
            .fold((0.0, 0.0), |(a, b), ((x, y), _)| {
                (a + x.as_secs_f64(), b + y.as_secs_f64())
            });
        (a / b, paused.iter().filter(|p| **p).count())
    }

    fn median_ratio(&self) -> f64 {
        median(
            self.times
                .iter()
                .map(|(a, b)| a.as_secs_f64() / b.as_secs_f64())
                .collect(),
        )
        .unwrap_or(0.0)
    }

    /// Prints the figures; `labels` name `a` and `b`.
    fn print(&self, labels: [&str; 2], mb_per_iter: f64) {
        let mb = self.times.len() as f64 * mb_per_iter;
        let secs = |f: fn(&(Duration, Duration)) -> Duration| {
            self.times.iter().map(f).sum::<Duration>().as_secs_f64()
        };
        let (clean, left_out) = self.without_pauses();
        println!(
            "{} interleaved, {} pairs on a fresh broker: {} {:.1} MB/s, {} {:.1} MB/s; {2}/{4} = {:.3} over all pairs, {clean:.3} without the {left_out} pairs with a broker pause, median pair ratio {:.3}",
            self.what,
            self.times.len(),
            labels[1],
            mb / secs(|t| t.1),
            labels[0],
            mb / secs(|t| t.0),
            self.raw(),
            self.median_ratio()
        );
        if std::env::var_os("POOLGATE_BENCH_VERBOSE").is_some() {
            for (i, (a, b)) in self.times.iter().enumerate() {
                println!(
                    "  pair {i}: {} {:.1} ms, {} {:.1} ms",
                    labels[0],
                    ms(*a),
                    labels[1],
                    ms(*b)
                );
            }
        }
    }
}

/// One iteration of an interleaved measurement.
#[derive(Clone, Copy)]
enum Work<'r> {
    /// `WINDOW` produce requests.
    Produce(&'r ProduceRequest),
    /// `WINDOW` fetch requests.
    Fetch(&'r FetchRequest),
}

impl Work<'_> {
    async fn run(self, c: &mut KafkaClient) {
        match self {
            Work::Produce(req) => produce_window(c, req).await,
            Work::Fetch(req) => fetch_window(c, req).await,
        }
    }
}

/// `pairs` pairs of iterations of `work`, one on `a` and one on `b`, which goes first
/// alternating.
fn interleave(
    rt: &tokio::runtime::Runtime,
    stack: &Stack,
    work: Work<'_>,
    pairs: usize,
    a: &mut KafkaClient,
    b: &mut KafkaClient,
) -> Interleaved {
    let before = stack.cpu();
    let times = rt.block_on(async {
        let mut times = Vec::with_capacity(pairs);
        for pair in 0..pairs {
            let mut t = [Duration::ZERO; 2];
            for side in [pair % 2, 1 - pair % 2] {
                let t0 = Instant::now();
                work.run(if side == 0 { &mut *a } else { &mut *b }).await;
                t[side] = t0.elapsed();
            }
            times.push((t[0], t[1]));
        }
        times
    });
    Interleaved {
        what: match work {
            Work::Produce(_) => "produce",
            Work::Fetch(_) => "fetch",
        },
        times,
        cpu: stack.cpu().since(before),
    }
}

fn print_summary(sum: &Summary) {
    println!("gateway bench summary:");
    if let (Some(l), Some(d)) = (&sum.login, &sum.direct) {
        println!(
            "  login p99 {:.3} ms (target < {} ms: {}); p50 {:.3} ms, max {:.3} ms; direct connection p99 {:.3} ms",
            ms(l.p99),
            LOGIN_P99_TARGET.as_millis(),
            verdict(l.p99 < LOGIN_P99_TARGET),
            ms(l.p50),
            ms(l.max),
            ms(d.p99)
        );
        println!(
            "  logins/s, sequential: {:.0} vs {:.0} direct connections/s = {:.3}",
            l.per_sec,
            d.per_sec,
            l.per_sec / d.per_sec
        );
    }
    if let (Some(l), Some(d)) = (sum.login_per_iter, sum.direct_per_iter) {
        println!(
            "  logins/s, criterion:  {:.0} vs {:.0} direct connections/s = {:.3}",
            1.0 / l.as_secs_f64(),
            1.0 / d.as_secs_f64(),
            d.as_secs_f64() / l.as_secs_f64()
        );
    }
    if let (Some(l), Some(d)) = (sum.concurrent_logins, sum.concurrent_direct) {
        println!(
            "  logins/s, {} tasks:   {l:.0} vs {d:.0} direct connections/s = {:.3}",
            sum.concurrent_tasks,
            l / d
        );
    }
    if let (Some(ab), Some(control)) = (&sum.produce_ab, &sum.produce_control) {
        let (clean, left_out) = ab.without_pauses();
        let (control_clean, _) = control.without_pauses();
        println!(
            "  produce gateway/direct = {clean:.3} (target >= {PRODUCE_RATIO_TARGET}: {}), interleaved, without the {left_out} of {} pairs with a broker pause; {:.3} over all pairs; median pair ratio {:.3}; control (direct/direct, same procedure) {control_clean:.3}, {:.3} over all pairs",
            verdict(clean >= PRODUCE_RATIO_TARGET),
            ab.times.len(),
            ab.raw(),
            ab.median_ratio(),
            control.raw()
        );
    }
    if let (Some(d), Some(g)) = (sum.produce_direct, sum.produce_gateway) {
        println!(
            "  produce gateway/direct = {:.3}, criterion medians (one after the other), {g:.1} / {d:.1} MB/s",
            g / d
        );
    }
    if let Some(cpu) = sum.produce_gateway_cpu_per_mb {
        println!("  gateway CPU per MB produced: {:.0} us", us(cpu));
    }
    if let Some(ab) = &sum.produce_baseline {
        println!(
            "  produce gateway/baseline gateway = {:.3} over all {} pairs, {:.3} without broker pauses, median pair ratio {:.3}",
            ab.raw(),
            ab.times.len(),
            ab.without_pauses().0,
            ab.median_ratio()
        );
    }
    if let Some(ab) = &sum.fetch_ab {
        println!(
            "  fetch gateway/direct = {:.3} over all {} pairs, median pair ratio {:.3}",
            ab.raw(),
            ab.times.len(),
            ab.median_ratio()
        );
    }
    if let Some(ab) = &sum.fetch_baseline {
        println!(
            "  fetch gateway/baseline gateway = {:.3} over all {} pairs, median pair ratio {:.3}",
            ab.raw(),
            ab.times.len(),
            ab.median_ratio()
        );
    }
}

fn main() {
    let Some(tansu) = tansu() else {
        println!("gateway bench: run `e2e/setup tansu` first (installs tansu)");
        return;
    };
    let mut c = Criterion::default().configure_from_args();
    let mut stack = Stack::start(&tansu);
    // The client: one thread, so that its own scheduling adds no cross-thread wake-ups; the
    // gateway and tansu get the cores.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");

    // Warm the gateway: the first login fetches the issuer's keys and fills the token cache.
    rt.block_on(async {
        support::first_login(&stack.gateway, &stack.login).await;
        for _ in 0..50 {
            gateway_login(&stack.gateway, &stack.login).await;
            direct_connect(&stack.broker).await;
        }
    });

    let mut sum = Summary::default();
    bench_connect(&mut c, &rt, &stack, &mut sum);
    login_latency(&rt, &stack, &mut sum);
    bench_produce(&mut c, &rt, &mut stack, &mut sum);
    bench_fetch(&rt, &mut stack, &mut sum);
    c.final_summary();
    print_summary(&sum);
}
