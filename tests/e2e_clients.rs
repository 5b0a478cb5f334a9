//! Client libraries besides librdkafka, end to end: kafkajs (e2e/kafkajs) and franz-go
//! (e2e/franz) → `poolgate gateway` → one broker of a three-node Apache Kafka cluster, with the
//! local OIDC issuer's token endpoint (client_credentials, client_secret_basic). Each client
//! sends the `logicalCluster` and `identityPoolId` SASL extensions, produces, consumes in a
//! group and is refused. Needs `e2e/setup` (Kafka's jars, kafkajs, the franz-go build; cached);
//! `e2e/run` runs it, and CI does.
//!
//! The gateway fronts one broker, so everything the clients use is led by it: the test topics
//! (explicit replica assignment) and the group coordinator (`__consumer_offsets` has one
//! partition here, and the gateway fronts its leader).

#![cfg(feature = "cli")]

mod support;

use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use kafka_protocol::messages::FindCoordinatorRequest;
use kafka_protocol::protocol::StrBytes;
use poolgate::testkit::TestIssuer;
use poolgate::testkit::cluster::{KafkaCluster, kafka_libs};
use poolgate::testkit::kafka::KafkaClient;
use poolgate::testkit::stack::GatewayProcess;
use serde_json::{Value, json};
use support::{TempDir, cache, json_of};

const CLUSTER: &str = "lkc-e2e";
const PARTITIONS: i32 = 3;

/// The cluster all tests of this binary share, and the broker the gateways front.
struct Bed {
    cluster: Mutex<KafkaCluster>,
    /// The node id of the fronted broker, which leads `__consumer_offsets`.
    fronted: i32,
    broker: String,
}

/// Started once per test binary; a static is never dropped, but the cluster's watchdogs stop
/// every node when the binary exits.
fn bed() -> &'static Bed {
    static BED: OnceLock<Bed> = OnceLock::new();
    BED.get_or_init(|| {
        let libs = kafka_libs().expect("no Apache Kafka: run e2e/setup first (or e2e/run)");
        // The gateway bootstraps from the node with the highest id, which is also the group
        // coordinator (when the gateway fronted one broker, kafkajs sent to no broker but the
        // last one listed: see `kafkajs_delivers_...` below).
        let fronted = 3;
        let cluster = KafkaCluster::start_with_coordinator(&libs, 3, fronted).unwrap();
        assert_eq!(cluster.node_ids().into_iter().max(), Some(fronted));
        assert_eq!(
            group_coordinator(cluster.broker_addr(1).unwrap()),
            fronted,
            "the coordinator is the fronted broker"
        );
        assert_eq!(
            cluster.leaders(1, "__consumer_offsets").unwrap(),
            vec![fronted],
            "one partition, so one coordinator for every group"
        );
        let broker = cluster.broker_addr(fronted).unwrap().to_owned();
        Bed {
            cluster: Mutex::new(cluster),
            fronted,
            broker,
        }
    })
}

fn runtime() -> tokio::runtime::Runtime {
    support::runtime(1)
}

/// Asks `broker` for a group's coordinator until there is one (the first ask creates
/// `__consumer_offsets`); its node id.
fn group_coordinator(broker: &str) -> i32 {
    runtime().block_on(async {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut c = KafkaClient::connect(broker).await.unwrap();
            let mut req = FindCoordinatorRequest::default();
            req.key = StrBytes::from_static_str("e2e-any-group");
            let resp = c.call(2, req).await.unwrap();
            if resp.error_code == 0 {
                return resp.node_id.0;
            }
            assert!(
                Instant::now() < deadline,
                "no group coordinator: error {}",
                resp.error_code
            );
            // COORDINATOR_NOT_AVAILABLE while the topic is being created: ask again when
            // the broker has answered, as clients do.
            tokio::task::yield_now().await;
        }
    })
}

/// The sum of the latest offsets of `topic`'s partitions, read straight from the broker.
fn records_in(topic: &str) -> i64 {
    latest_offsets(&bed().broker, topic).iter().sum()
}

/// The latest offset of each of `topic`'s partitions, read straight from `broker`.
fn latest_offsets(broker: &str, topic: &str) -> Vec<i64> {
    runtime().block_on(support::end_offsets(broker, topic, PARTITIONS))
}

/// One issuer and one gateway in front of the shared cluster's fronted broker.
struct Stack {
    _rt: tokio::runtime::Runtime,
    issuer: TestIssuer,
    gateway: GatewayProcess,
    _dir: TempDir,
}

impl Stack {
    fn start(name: &str) -> Stack {
        Stack::fronting(name, &bed().broker)
    }

    /// A gateway in front of `broker`.
    fn fronting(name: &str, broker: &str) -> Stack {
        let rt = runtime();
        let issuer = support::gateway_issuer(&rt, Vec::new()).unwrap();
        let dir = TempDir::new(&format!("e2e-clients-{name}"));
        let config = dir.join("gateway.toml");
        std::fs::write(&config, support::gateway_toml(&issuer)).unwrap();
        let gateway = support::spawn_gateway(&config, broker, &[]);
        Stack {
            _rt: rt,
            issuer,
            gateway,
            _dir: dir,
        }
    }

    fn metric(&self, series: &str) -> u64 {
        self.gateway.metric(series)
    }
}

/// A client program of e2e/, with the interface both share (see e2e/kafkajs/client.js).
#[derive(Clone, Copy, Debug)]
enum Client {
    KafkaJs,
    Franz,
}

impl Client {
    fn name(self) -> &'static str {
        match self {
            Client::KafkaJs => "kafkajs",
            Client::Franz => "franz",
        }
    }

    fn program(self) -> Command {
        let cache = cache();
        let installed = cache.join(self.name()).join(".complete");
        assert!(
            installed.exists(),
            "no {} in {}: run e2e/setup first (or e2e/run)",
            self.name(),
            cache.display()
        );
        match self {
            Client::KafkaJs => {
                let mut cmd = Command::new("node");
                cmd.arg("e2e/kafkajs/client.js")
                    .env("NODE_PATH", cache.join("kafkajs/node_modules"));
                cmd
            }
            Client::Franz => Command::new(cache.join("franz/poolgate-franz")),
        }
    }

    /// Through the gateway as `client_id`, with these extensions.
    fn via(self, stack: &Stack, client_id: &str, cluster: &str, pool: &str) -> Command {
        let mut cmd = self.program();
        cmd.args(["--bootstrap", stack.gateway.addr()])
            .args(["--token-url", stack.issuer.token_url().as_str()])
            .args(["--client-id", client_id])
            .args(["--client-secret", &format!("{client_id}-secret")])
            .args(["--cluster", cluster, "--pool", pool]);
        cmd
    }

    /// Straight to the fronted broker, without the gateway or authentication.
    fn direct(self) -> Command {
        let mut cmd = self.program();
        cmd.args(["--bootstrap", &bed().broker, "--plain"]);
        cmd
    }
}

fn produce(cmd: Command, topic: &str, count: usize, prefix: &str) -> Value {
    let mut cmd = cmd;
    cmd.args(["produce", topic, &count.to_string(), prefix]);
    json_of(cmd)
}

fn consume(cmd: Command, topic: &str, group: &str, count: usize) -> Value {
    let mut cmd = cmd;
    cmd.args(["consume", topic, group, &count.to_string()]);
    json_of(cmd)
}

/// A topic of the shared cluster with every partition led by the fronted broker.
fn create_topic(name: &str) {
    create_topic_led_by(name, bed().fronted);
}

/// A topic of the shared cluster with every partition led by node `leader`.
fn create_topic_led_by(name: &str, leader: i32) {
    let cluster = support::lock(&bed().cluster);
    support::create_led_topic(&cluster, name, PARTITIONS, leader, &[]);
}

/// What a refused login looks like to each client.
fn assert_refused(client: Client, out: &Value) {
    assert_eq!(out["ok"], json!(false), "{out}");
    match client {
        // kafkajs reads the gateway's RFC 7628 error challenge (SaslAuthenticate with error
        // code 0 and the JSON status) as a successful login and never sends the %x01
        // acknowledgement; the gateway closes the connection on its next request, which
        // kafkajs reports as a connection error (retried with a new token) rather than an
        // authentication failure.
        Client::KafkaJs => {
            assert_eq!(out["auth_failed"], json!(false), "{out}");
            assert_eq!(
                out["error"],
                json!("KafkaJSNumberOfRetriesExceeded"),
                "{out}"
            );
            assert_eq!(out["message"], json!("Closed connection"), "{out}");
            assert_eq!(
                out["tokens"],
                json!(3),
                "a login per try (retries: 2): {out}"
            );
        }
        // franz-go acknowledges the challenge and reports SASL_AUTHENTICATION_FAILED.
        Client::Franz => {
            assert_eq!(out["auth_failed"], json!(true), "{out}");
            let message = out["message"].as_str().unwrap_or_default();
            assert!(message.starts_with("SASL_AUTHENTICATION_FAILED"), "{out}");
            assert_eq!(out["tokens"], json!(1), "one login, no retry: {out}");
        }
    }
}

/// The whole story for one client on a gateway of its own: two refusals that reach nothing,
/// then a producer and a consumer group through the gateway, checked against the broker.
fn exercise(client: Client) {
    let name = client.name();
    let topic = format!("e2e-{name}-orders");
    let group = format!("e2e-{name}-group");
    create_topic(&topic);
    let stack = Stack::start(name);

    // A token that matches no pool.
    let out = produce(
        client.via(&stack, "e2e-stranger", CLUSTER, "pool-writers"),
        &topic,
        3,
        "stranger",
    );
    eprintln!("{name}, no pool: {out}");
    assert_refused(client, &out);
    assert!(
        stack.metric("poolgate_logins_total{outcome=\"failure\",reason=\"no_pool_matched\"}") >= 1
    );

    // A pool that matches, on the wrong logical cluster.
    let out = produce(
        client.via(&stack, "e2e-writer", "lkc-other", "pool-writers"),
        &topic,
        3,
        "elsewhere",
    );
    eprintln!("{name}, wrong cluster: {out}");
    assert_refused(client, &out);
    assert!(
        stack.metric("poolgate_logins_total{outcome=\"failure\",reason=\"wrong_cluster\"}") >= 1
    );
    if let Client::Franz = client {
        // franz-go's producer, asked to produce without logging in first (the program pings
        // first otherwise), takes a refused login for a passing fault: it logs in again with
        // new tokens until the records' deadline and reports only the deadline.
        let mut cmd = client.via(&stack, "e2e-stranger", CLUSTER, "pool-writers");
        cmd.args(["--no-ping", "--timeout", "12s"]);
        let out = produce(cmd, &topic, 1, "retried");
        eprintln!("{name}, no pool, no ping: {out}");
        assert_eq!(out["auth_failed"], json!(false), "{out}");
        assert_eq!(out["message"], json!("context deadline exceeded"), "{out}");
        assert!(out["tokens"].as_u64().unwrap_or(0) >= 2, "{out}");
    }
    assert_eq!(records_in(&topic), 0, "nothing reached the broker");
    assert_eq!(stack.metric("poolgate_requests_forwarded_total"), 0);
    assert_eq!(
        stack.metric("poolgate_logins_total{outcome=\"success\",reason=\"ok\"}"),
        0
    );
    let ignored = stack.metric("poolgate_connections_dropped_total{reason=\"ignored_challenge\"}");
    match client {
        // Both refusals, each tried three times.
        Client::KafkaJs => assert_eq!(ignored, 6, "kafkajs ignores the challenge"),
        Client::Franz => assert_eq!(ignored, 0, "franz-go acknowledges the challenge"),
    }

    // A writer produces; a consumer group reads the records back through the gateway.
    const COUNT: usize = 20;
    let out = produce(
        client.via(&stack, "e2e-writer", CLUSTER, "pool-writers"),
        &topic,
        COUNT,
        name,
    );
    eprintln!("{name}, produce: {out}");
    assert_eq!(out["ok"], json!(true), "{out}");
    assert_eq!(out["delivered"], json!(COUNT), "{out}");
    let offsets = latest_offsets(&bed().broker, &topic);
    assert_eq!(
        offsets.iter().sum::<i64>(),
        COUNT as i64,
        "every record landed: {offsets:?}"
    );
    let mut expected: Vec<String> = (0..COUNT).map(|i| format!("{name} message {i}")).collect();
    expected.sort();
    let read = consume(
        client.via(&stack, "e2e-reader", CLUSTER, "pool-readers"),
        &topic,
        &group,
        COUNT,
    );
    assert_eq!(read["ok"], json!(true), "{read}");
    assert_eq!(read["values"], json!(expected), "{read}");
    assert!(stack.metric("poolgate_logins_total{outcome=\"success\",reason=\"ok\"}") >= 2);

    // The same records, read from the broker without the gateway.
    let direct = consume(client.direct(), &topic, &format!("{group}-direct"), COUNT);
    assert_eq!(direct["values"], json!(expected), "{direct}");
}

#[test]
#[ignore = "needs e2e/setup (Apache Kafka, kafkajs); run e2e/run"]
fn kafkajs_produces_consumes_in_a_group_and_is_refused() {
    exercise(Client::KafkaJs);
}

#[test]
#[ignore = "needs e2e/setup (Apache Kafka, the franz-go client); run e2e/run"]
fn franz_go_produces_consumes_in_a_group_and_is_refused() {
    exercise(Client::Franz);
}

/// Was pinned as a kafkajs defect while the gateway gave every broker its own one address:
/// kafkajs then gave its seed connection to each node id in turn, and a topic led by any node
/// but the last got no Produce at all while `producer.send` resolved. Now each broker has its own
/// gateway port: kafkajs, bootstrapping from node 1's gateway, gets an acknowledgement for every
/// partition of a topic led by node 1, and the records are in the cluster. franz-go too.
#[test]
#[ignore = "needs e2e/setup (Apache Kafka, kafkajs); run e2e/run"]
fn kafkajs_delivers_to_a_leader_other_than_the_last_broker_now_that_each_has_its_own_address() {
    let bed = bed();
    let other = 1;
    assert_ne!(other, bed.fronted);
    let topic = "e2e-kafkajs-lost";
    create_topic_led_by(topic, other);
    let broker = bed
        .cluster
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .broker_addr(other)
        .unwrap()
        .to_owned();
    let stack = Stack::fronting("kafkajs-lost", &broker);
    let out = produce(
        Client::KafkaJs.via(&stack, "e2e-writer", CLUSTER, "pool-writers"),
        topic,
        5,
        "lost",
    );
    eprintln!("kafkajs, bootstrapping from node {other}: {out}");
    assert_eq!(out["ok"], json!(true), "send resolves: {out}");
    assert_eq!(
        out["acks"].as_array().map(Vec::len),
        Some(PARTITIONS as usize),
        "an acknowledgement per partition: {out}"
    );
    assert_eq!(
        latest_offsets(&broker, topic).iter().sum::<i64>(),
        5,
        "and every record landed"
    );

    // franz-go: the same produce lands.
    let out = produce(
        Client::Franz.via(&stack, "e2e-writer", CLUSTER, "pool-writers"),
        topic,
        5,
        "kept",
    );
    assert_eq!(out["ok"], json!(true), "{out}");
    assert_eq!(
        latest_offsets(&broker, topic).iter().sum::<i64>(),
        10,
        "franz-go's records landed beside kafkajs's"
    );
}
