//! The gateway in front of a fake three-broker cluster built on `kafka-protocol`: every node
//! answers Metadata with the cluster's node ids and its brokers' real addresses, leads some
//! partitions and answers NOT_LEADER_OR_FOLLOWER for the others. Through the gateway, a client
//! reaches each broker at its own port (or TLS server name), and no response carries an
//! upstream address.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, BrokerId, DescribeClusterRequest, DescribeClusterResponse,
    FindCoordinatorRequest, FindCoordinatorResponse, MetadataRequest, MetadataResponse,
    ProduceRequest, ProduceResponse, RequestHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use poolgate::testkit::kafka::{KafkaClient, record_batch};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use super::upstream::{produce_answer, read_frame, response};
use super::{Gateway, Harness, api_versions, closed, dropped, listed, login_ok, sample, within};

/// The topic of the fake cluster: partition `p` is led by node `p % 3 + 1`.
const TOPIC: &str = "e2e-routed";
const PARTITIONS: i32 = 3;
/// A broker of the cluster whose node id is outside the gateway's `node_ids` (0-15).
const UNROUTABLE: i32 = 99;
/// Kafka's NOT_LEADER_OR_FOLLOWER.
const NOT_LEADER: i16 = 6;
/// The node that coordinates every group.
const COORDINATOR: i32 = 2;

/// What every node of the fake cluster knows.
#[derive(Default)]
struct State {
    /// Node id → its real address.
    brokers: BTreeMap<i32, String>,
    /// Produce max version per node, when lower than the crate's (an older broker).
    produce_max: HashMap<i32, i16>,
    /// The connections each node accepted.
    connections: HashMap<i32, usize>,
}

/// A fake Kafka cluster on 127.0.0.1: nodes 1-3, each on its own port.
struct FakeCluster {
    state: Arc<Mutex<State>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for FakeCluster {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl FakeCluster {
    async fn start(ids: &[i32]) -> FakeCluster {
        let mut cluster = FakeCluster {
            state: Arc::new(Mutex::new(State::default())),
            tasks: Vec::new(),
        };
        for &id in ids {
            cluster.add(id).await;
        }
        cluster
    }

    /// Starts node `id`; from now on every node's Metadata lists it.
    async fn add(&mut self, id: i32) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        self.state.lock().unwrap().brokers.insert(id, addr);
        let state = Arc::clone(&self.state);
        self.tasks.push(tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                *state.lock().unwrap().connections.entry(id).or_default() += 1;
                tokio::spawn(serve(stream, id, Arc::clone(&state)));
            }
        }));
    }

    fn addr(&self, id: i32) -> String {
        self.state.lock().unwrap().brokers[&id].clone()
    }

    /// Every real address of the cluster, as `host:port`.
    fn addrs(&self) -> Vec<String> {
        self.state
            .lock()
            .unwrap()
            .brokers
            .values()
            .cloned()
            .collect()
    }

    fn bootstrap(&self) -> String {
        self.addr(1)
    }
}

fn split(addr: &str) -> (StrBytes, i32) {
    let (h, p) = addr.rsplit_once(':').unwrap();
    (StrBytes::from_string(h.to_owned()), p.parse().unwrap())
}

fn leader(partition: i32) -> i32 {
    partition % 3 + 1
}

/// The brokers of the cluster as Metadata and DescribeCluster list them: every node at its
/// real address, and one more whose id the gateway cannot route.
fn listed_brokers(state: &State) -> Vec<(i32, StrBytes, i32)> {
    let mut out: Vec<_> = state
        .brokers
        .iter()
        .map(|(&id, a)| {
            let (h, p) = split(a);
            (id, h, p)
        })
        .collect();
    out.push((UNROUTABLE, StrBytes::from_static_str("127.0.0.1"), 1));
    out
}

async fn serve(mut stream: TcpStream, me: i32, state: Arc<Mutex<State>>) {
    // Produce answers carry `me * 1000 + n`: which node answered, and its n-th answer.
    let mut n = 0i64;
    loop {
        let Some(mut body) = read_frame(&mut stream).await else {
            return;
        };
        let key = i16::from_be_bytes([body[0], body[1]]);
        let version = i16::from_be_bytes([body[2], body[3]]);
        let api = ApiKey::try_from(key).unwrap();
        let header = RequestHeader::decode(&mut body, api.request_header_version(version)).unwrap();
        let id = header.correlation_id;
        let frame = {
            let state = state.lock().unwrap();
            match api {
                ApiKey::ApiVersions => {
                    let mut resp = ApiVersionsResponse::default();
                    resp.api_keys = ApiKey::iter()
                        .map(|k| {
                            let mut v = ApiVersion::default();
                            v.api_key = k as i16;
                            v.min_version = k.valid_versions().min;
                            v.max_version = k.valid_versions().max;
                            if k == ApiKey::Produce
                                && let Some(&max) = state.produce_max.get(&me)
                            {
                                v.max_version = max;
                            }
                            v
                        })
                        .collect();
                    response(api, version, id, &resp)
                }
                ApiKey::Metadata => {
                    let _ = MetadataRequest::decode(&mut body, version).unwrap();
                    let mut resp = MetadataResponse::default();
                    resp.brokers = listed_brokers(&state)
                        .into_iter()
                        .map(|(node, host, port)| {
                            let mut b = MetadataResponseBroker::default();
                            b.node_id = BrokerId(node);
                            b.host = host;
                            b.port = port;
                            b
                        })
                        .collect();
                    resp.controller_id = BrokerId(1);
                    let mut t = MetadataResponseTopic::default();
                    t.name = Some(TopicName(StrBytes::from_static_str(TOPIC)));
                    t.partitions = (0..PARTITIONS)
                        .map(|p| {
                            let mut mp = MetadataResponsePartition::default();
                            mp.partition_index = p;
                            mp.leader_id = BrokerId(leader(p));
                            mp.replica_nodes = vec![BrokerId(leader(p))];
                            mp.isr_nodes = vec![BrokerId(leader(p))];
                            mp
                        })
                        .collect();
                    resp.topics = vec![t];
                    response(api, version, id, &resp)
                }
                ApiKey::DescribeCluster => {
                    let _ = DescribeClusterRequest::decode(&mut body, version).unwrap();
                    let mut resp = DescribeClusterResponse::default();
                    resp.cluster_id = StrBytes::from_static_str("fake");
                    resp.brokers = listed_brokers(&state)
                        .into_iter()
                        .map(|(node, host, port)| {
                            let mut b = DescribeClusterBroker::default();
                            b.broker_id = BrokerId(node);
                            b.host = host;
                            b.port = port;
                            b
                        })
                        .collect();
                    response(api, version, id, &resp)
                }
                ApiKey::FindCoordinator => {
                    let req = FindCoordinatorRequest::decode(&mut body, version).unwrap();
                    let (host, port) = split(&state.brokers[&COORDINATOR]);
                    let mut resp = FindCoordinatorResponse::default();
                    if version < 4 {
                        resp.node_id = BrokerId(COORDINATOR);
                        resp.host = host;
                        resp.port = port;
                    } else {
                        resp.coordinators = req
                            .coordinator_keys
                            .iter()
                            .map(|k| {
                                let mut c = Coordinator::default();
                                c.key = k.clone();
                                c.node_id = BrokerId(COORDINATOR);
                                c.host = host.clone();
                                c.port = port;
                                c
                            })
                            .collect();
                    }
                    response(api, version, id, &resp)
                }
                ApiKey::Produce => {
                    let req = ProduceRequest::decode(&mut body, version).unwrap();
                    let resp = produce_answer(&req, |partition| {
                        if leader(partition) == me {
                            (0, i64::from(me) * 1000 + n)
                        } else {
                            (NOT_LEADER, -1)
                        }
                    });
                    n += 1;
                    response(api, version, id, &resp)
                }
                other => panic!("the fake cluster does not serve {other:?}"),
            }
        };
        if stream.write_all(&frame).await.is_err() {
            return;
        }
    }
}

/// Where a client reaches node `id` through the gateway (on 127.0.0.1).
pub(super) fn node_addr(gw: &Gateway, id: i32) -> String {
    format!("127.0.0.1:{}", node_ports(gw)[&id])
}

/// The node ports the gateway printed: `nodes 0-15 on ports 0=P0,1=P1,...`.
fn node_ports(gw: &Gateway) -> BTreeMap<i32, u16> {
    let list = gw
        .line
        .split_once(" on ports ")
        .map(|(_, rest)| rest.split([',', ' ']).take_while(|s| s.contains('=')))
        .expect("the start-up line lists the node ports");
    list.map(|pair| {
        let (id, port) = pair.split_once('=').unwrap();
        (id.parse().unwrap(), port.parse().unwrap())
    })
    .collect()
}

async fn logged_in(addr: &str, h: &Harness) -> KafkaClient {
    let mut client = within("a connection", KafkaClient::connect(addr))
        .await
        .unwrap();
    login_ok(&mut client, &h.writer_token()).await;
    client
}

fn produce(partition: i32) -> ProduceRequest {
    let mut p = PartitionProduceData::default();
    p.index = partition;
    p.records = Some(record_batch(&[(None, b"routed")]));
    let mut t = TopicProduceData::default();
    t.name = TopicName(StrBytes::from_static_str(TOPIC));
    t.partition_data = vec![p];
    let mut req = ProduceRequest::default();
    req.acks = -1;
    req.timeout_ms = 5000;
    req.topic_data = vec![t];
    req
}

/// The error code and base offset of a one-partition produce.
async fn produced(client: &mut KafkaClient, partition: i32) -> (i16, i64) {
    let resp: ProduceResponse = within("a produce", client.call(9, produce(partition)))
        .await
        .unwrap();
    let p = &resp.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// Every address in `pairs` is the gateway's, none is the cluster's.
fn assert_no_upstream(cluster: &FakeCluster, pairs: &[(String, i32)], what: &str) {
    let upstream = cluster.addrs();
    for (host, port) in pairs {
        let addr = format!("{host}:{port}");
        assert!(
            !upstream.contains(&addr),
            "{what} leaks the upstream address {addr}"
        );
        assert_ne!(*port, 1, "{what} leaks the unroutable broker");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_has_its_port_and_no_response_leaks_an_upstream_address() {
    let h = Harness::start("cluster-ports").await;
    let cluster = FakeCluster::start(&[1, 2, 3]).await;
    let config = h.config("gateway.toml", |t| t);
    let gw = h
        .gateway_to(
            &config,
            &cluster.bootstrap(),
            &["--metrics-listen", "127.0.0.1:0"],
        )
        .await;
    let ports = node_ports(&gw);
    assert_eq!(ports.len(), 16, "node ids 0-15 by default: {}", gw.line);
    let gw_host = "127.0.0.1";

    let mut client = logged_in(&gw.addr, &h).await;
    let mut meta = MetadataRequest::default();
    meta.topics = None;
    let resp: MetadataResponse = within("Metadata", client.call(12, meta)).await.unwrap();
    let brokers: BTreeMap<i32, (String, i32)> = resp
        .brokers
        .iter()
        .map(|b| (b.node_id.0, (b.host.to_string(), b.port)))
        .collect();
    let want: BTreeMap<i32, (String, i32)> = [1, 2, 3]
        .into_iter()
        .map(|id| (id, (gw_host.to_owned(), i32::from(ports[&id]))))
        .collect();
    assert_eq!(
        brokers, want,
        "each node at its own gateway port; node 99 left out"
    );
    assert_no_upstream(
        &cluster,
        &brokers.values().cloned().collect::<Vec<_>>(),
        "Metadata",
    );

    // DescribeCluster maps the same way.
    let resp: DescribeClusterResponse = within(
        "DescribeCluster",
        client.call(0, DescribeClusterRequest::default()),
    )
    .await
    .unwrap();
    let described: BTreeMap<i32, (String, i32)> = resp
        .brokers
        .iter()
        .map(|b| (b.broker_id.0, (b.host.to_string(), b.port)))
        .collect();
    assert_eq!(described, want, "DescribeCluster");

    // FindCoordinator, v3 (one coordinator) and v4 (a list), names the coordinator's port.
    let coordinator = (gw_host.to_owned(), i32::from(ports[&COORDINATOR]));
    let mut find = FindCoordinatorRequest::default();
    find.key = StrBytes::from_static_str("e2e-group");
    let resp: FindCoordinatorResponse = within("FindCoordinator v3", client.call(3, find))
        .await
        .unwrap();
    assert_eq!(resp.error_code, 0, "{resp:?}");
    assert_eq!(resp.node_id.0, COORDINATOR);
    assert_eq!((resp.host.to_string(), resp.port), coordinator);
    let mut find = FindCoordinatorRequest::default();
    find.coordinator_keys = vec![StrBytes::from_static_str("e2e-group")];
    let resp: FindCoordinatorResponse = within("FindCoordinator v4", client.call(4, find))
        .await
        .unwrap();
    let c = &resp.coordinators[0];
    assert_eq!((c.error_code, c.node_id.0), (0, COORDINATOR), "{resp:?}");
    assert_eq!((c.host.to_string(), c.port), coordinator);

    // Each partition's leader, at its port, takes the produce; another node answers
    // NOT_LEADER_OR_FOLLOWER, through the gateway, as Kafka would.
    for partition in 0..PARTITIONS {
        let leader = leader(partition);
        for node in 1..=3 {
            let mut c = logged_in(&format!("{gw_host}:{}", ports[&node]), &h).await;
            let (code, offset) = produced(&mut c, partition).await;
            if node == leader {
                assert_eq!(code, 0, "node {node} leads partition {partition}");
                assert_eq!(offset / 1000, i64::from(node), "answered by node {node}");
            } else {
                assert_eq!(code, NOT_LEADER, "node {node} does not lead {partition}");
            }
        }
    }

    let m = gw
        .metrics_when("the unroutable broker to be counted", |m| {
            sample(m, "poolgate_brokers_unmapped_total{node=\"99\"}").is_some_and(|n| n >= 2.0)
        })
        .await;
    assert_eq!(sample(&m, "poolgate_brokers_known"), Some(3.0), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_listener_offers_its_brokers_versions_and_bootstrap_the_intersection() {
    let h = Harness::start("cluster-versions").await;
    let cluster = FakeCluster::start(&[]).await;
    // Node 3 is an older broker (rolling upgrade): Produce up to v7 only.
    cluster.state.lock().unwrap().produce_max.insert(3, 7);
    let mut cluster = cluster;
    for id in [1, 2, 3] {
        cluster.add(id).await;
    }
    let config = h.config("gateway.toml", |t| t);
    let gw = h.gateway_to(&config, &cluster.bootstrap(), &[]).await;
    let ports = node_ports(&gw);
    let offered = |addr: String| async move {
        let mut c = within("a connection", KafkaClient::connect(&addr))
            .await
            .unwrap();
        listed(&api_versions(&mut c).await, ApiKey::Produce)
    };
    assert_eq!(
        offered(gw.addr.clone()).await,
        Some((3, 7)),
        "bootstrap: the intersection"
    );
    assert_eq!(
        offered(format!("127.0.0.1:{}", ports[&1])).await,
        Some((3, 9)),
        "node 1"
    );
    assert_eq!(
        offered(format!("127.0.0.1:{}", ports[&3])).await,
        Some((3, 7)),
        "node 3"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_node_is_learned_on_first_use_and_a_missing_one_is_refused() {
    let h = Harness::start("cluster-new-node").await;
    let mut cluster = FakeCluster::start(&[1, 2, 3]).await;
    let config = h.config("gateway.toml", |t| t);
    let gw = h
        .gateway_to(
            &config,
            &cluster.bootstrap(),
            &["--metrics-listen", "127.0.0.1:0"],
        )
        .await;
    let ports = node_ports(&gw);
    // Node 4 joins after the gateway started: its first client makes the gateway ask the
    // cluster again, and the session reaches node 4.
    cluster.add(4).await;
    let before = cluster.state.lock().unwrap().connections.get(&4).copied();
    assert_eq!(before, None);
    let mut c = logged_in(&format!("127.0.0.1:{}", ports[&4]), &h).await;
    let resp: ProduceResponse = within("a produce", c.call(9, produce(0))).await.unwrap();
    let p = &resp.responses[0].partition_responses[0];
    assert_eq!(
        p.error_code, NOT_LEADER,
        "node 4 answered (it leads nothing)"
    );
    assert!(
        cluster.state.lock().unwrap().connections[&4] >= 1,
        "node 4 was reached"
    );

    // Node 7 is routable but not in the cluster: the login succeeds, then the connection is
    // closed (after one refresh), counted, never sent to another broker.
    let mut c = logged_in(&format!("127.0.0.1:{}", ports[&7]), &h).await;
    assert_eq!(closed(&mut c).await, 0);
    gw.metrics_when("the unknown node to be counted", |m| {
        dropped(m, "unknown_node") == 1.0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sni_names_the_broker_and_an_unknown_name_is_refused() {
    let h = Harness::start("cluster-sni").await;
    let cluster = FakeCluster::start(&[1, 2, 3]).await;
    let (cert, key, root) = h.tls_files(&["bootstrap.kafka.test", "*.kafka.test"]);
    let config = h.config("gateway.toml", |t| {
        t.replace(
            "[gateway]\n",
            "[gateway]\nrouting = \"sni\"\nsni_node_pattern = \"b{node_id}.kafka.test\"\n",
        )
    });
    let gw = h
        .gateway_to(
            &config,
            &cluster.bootstrap(),
            &[
                "--tls-cert",
                cert.to_str().unwrap(),
                "--tls-key",
                key.to_str().unwrap(),
                "--metrics-listen",
                "127.0.0.1:0",
                "--advertise",
                "bootstrap.kafka.test",
            ],
        )
        .await;
    let port: i32 = gw.addr.rsplit_once(':').unwrap().1.parse().unwrap();
    let tls = |name: &'static str| {
        let (addr, root) = (gw.addr.clone(), root.clone());
        async move { KafkaClient::connect_tls(&addr, name, &root).await }
    };

    // The bootstrap name: Metadata names every node by the pattern, on the one port.
    let mut c = within("a TLS connection", tls("bootstrap.kafka.test"))
        .await
        .unwrap();
    login_ok(&mut c, &h.writer_token()).await;
    let resp: MetadataResponse = within("Metadata", c.call(12, MetadataRequest::default()))
        .await
        .unwrap();
    let brokers: Vec<(i32, String, i32)> = resp
        .brokers
        .iter()
        .map(|b| (b.node_id.0, b.host.to_string(), b.port))
        .collect();
    assert_eq!(
        brokers,
        [1, 2, 3].map(|id| (id, format!("b{id}.kafka.test"), port)),
        "node 99 left out"
    );

    // b2 reaches node 2: it leads partition 1.
    let mut c = within("a TLS connection", tls("b2.kafka.test"))
        .await
        .unwrap();
    login_ok(&mut c, &h.writer_token()).await;
    let (code, offset) = produced(&mut c, 1).await;
    assert_eq!((code, offset / 1000), (0, 2), "answered by node 2");

    // A name that names no broker: refused after the handshake, counted.
    for name in ["b16.kafka.test", "other.kafka.test"] {
        let mut c = within("a TLS connection", tls(name)).await.unwrap();
        assert_eq!(closed(&mut c).await, 0, "{name}");
    }
    gw.metrics_when("the unknown names to be counted", |m| {
        dropped(m, "unknown_server_name") == 2.0
    })
    .await;
}
