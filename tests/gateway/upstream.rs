//! The gateway against a fake upstream broker that answers correctly, answers `acks=0`
//! produces (as tansu does), duplicates, swaps or invents responses: every response a client
//! sees is the filtered answer to its own request, or the connection is closed.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, BrokerId, FetchRequest, FetchResponse,
    GroupId, JoinGroupRequest, JoinGroupResponse, ListGroupsRequest, ListGroupsResponse,
    MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse, RequestHeader,
    ResponseHeader, TopicName,
};
use kafka_protocol::messages::{DescribeAclsRequest, DescribeAclsResponse};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use poolgate::UnixTime;
use poolgate::testkit::kafka::{KafkaClient, record_batch};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::cluster::node_addr;
use super::{Gateway, Harness, LOG_CLOSES, within};

/// A topic and a group outside every pool's grants: they must never reach a client.
const SECRET_TOPIC: &str = "audit";
const SECRET_GROUP: &str = "secret-group";
/// The topic every forwarded produce and fetch names (writers have All on `e2e-*`).
const TOPIC: &str = "e2e-orders";

/// How the fake broker misbehaves on one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// Sends the `n`-th response twice.
    Duplicate(usize),
    /// Sends the `n+1`-th response before the `n`-th.
    Swap(usize),
    /// Sends a response to no request (an all-topics Metadata) before the `n`-th.
    Invent(usize),
}

/// One upstream connection's behaviour.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Behaviour {
    /// Answer `acks=0` produces, as tansu does (Kafka brokers do not).
    answer_acks0: bool,
    fault: Option<Fault>,
    /// Hold each Fetch response until [`FakeBroker::release`] is notified.
    hold_fetch: bool,
}

impl Behaviour {
    /// Well-behaved, but holding each Fetch response until released.
    pub(super) fn holding_fetches() -> Behaviour {
        Behaviour {
            hold_fetch: true,
            ..Behaviour::default()
        }
    }
}

/// What the fake broker saw and did.
#[derive(Default)]
struct Seen {
    /// Per connection, the APIs of the requests and the topics they name.
    requests: Vec<Vec<(ApiKey, Vec<String>)>>,
}

/// A fake Kafka broker on 127.0.0.1 built on `kafka-protocol`: it answers Produce, Fetch,
/// Metadata, ListGroups and JoinGroup with responses that carry the index of the request on
/// their connection (a marker the client checks), plus a topic, a group and a broker address
/// that the gateway must filter out.
pub(super) struct FakeBroker {
    pub(super) addr: String,
    next: Arc<Mutex<Behaviour>>,
    seen: Arc<Mutex<Seen>>,
    /// Set once a fault was acted on.
    faulted: Arc<AtomicBool>,
    /// Lets one held Fetch response go.
    pub(super) release: Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeBroker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeBroker {
    pub(super) async fn start() -> FakeBroker {
        FakeBroker::start_on(TcpListener::bind("127.0.0.1:0").await.unwrap())
    }

    /// A fake broker serving `listener` (bound by the caller, perhaps before a gateway was
    /// pointed at it).
    pub(super) fn start_on(listener: TcpListener) -> FakeBroker {
        let addr = listener.local_addr().unwrap().to_string();
        let port = i32::from(listener.local_addr().unwrap().port());
        let next = Arc::new(Mutex::new(Behaviour::default()));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let faulted = Arc::new(AtomicBool::new(false));
        let release = Arc::new(tokio::sync::Notify::new());
        let (n, s, f, r) = (next.clone(), seen.clone(), faulted.clone(), release.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let behaviour = *n.lock().unwrap();
                let conn = {
                    let mut seen = s.lock().unwrap();
                    seen.requests.push(Vec::new());
                    seen.requests.len() - 1
                };
                let shared = (conn, s.clone(), f.clone(), r.clone());
                tokio::spawn(serve(stream, behaviour, shared, port));
            }
        });
        FakeBroker {
            addr,
            next,
            seen,
            faulted,
            release,
            task,
        }
    }

    /// Sets how the next connections behave, and clears the fault flag.
    pub(super) fn behave(&self, b: Behaviour) {
        *self.next.lock().unwrap() = b;
        self.faulted.store(false, Ordering::SeqCst);
    }

    /// The requests of the most recent connection.
    fn last_connection(&self) -> Vec<(ApiKey, Vec<String>)> {
        self.seen
            .lock()
            .unwrap()
            .requests
            .last()
            .cloned()
            .unwrap_or_default()
    }
}

/// A response frame (length prefix included).
pub(super) fn response<T: Encodable>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &T,
) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i32(0);
    let mut header = ResponseHeader::default();
    header.correlation_id = correlation_id;
    header
        .encode(&mut out, api.response_header_version(version))
        .unwrap();
    body.encode(&mut out, version).unwrap();
    let len = i32::try_from(out.len() - 4).unwrap();
    out[..4].copy_from_slice(&len.to_be_bytes());
    out.freeze()
}

/// Every API the fake serves, at every version `kafka-protocol` knows.
fn api_versions() -> ApiVersionsResponse {
    let mut resp = ApiVersionsResponse::default();
    resp.api_keys = ApiKey::iter()
        .map(|k| {
            let mut v = ApiVersion::default();
            v.api_key = k as i16;
            v.min_version = k.valid_versions().min;
            v.max_version = k.valid_versions().max;
            v
        })
        .collect();
    resp
}

/// The marked answer to request number `n` of a connection, and the topics it names.
fn answer(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    mut body: Bytes,
    n: usize,
    answer_acks0: bool,
    port: i32,
) -> (Option<Bytes>, Vec<String>) {
    let marker = i64::try_from(n).unwrap();
    let tag = StrBytes::from_string(format!("n{n}"));
    match api {
        ApiKey::ApiVersions => (
            Some(response(api, version, correlation_id, &api_versions())),
            vec![],
        ),
        ApiKey::Produce => {
            let req = ProduceRequest::decode(&mut body, version).unwrap();
            let topics: Vec<String> = req.topic_data.iter().map(|t| t.name.to_string()).collect();
            let resp = produce_answer(&req, |_| (0, marker));
            let frame = response(api, version, correlation_id, &resp);
            (
                Some(frame).filter(|_| req.acks != 0 || answer_acks0),
                topics,
            )
        }
        ApiKey::Fetch => {
            let req = FetchRequest::decode(&mut body, version).unwrap();
            let topics: Vec<String> = req.topics.iter().map(|t| t.topic.to_string()).collect();
            let mut resp = FetchResponse::default();
            resp.responses = req
                .topics
                .iter()
                .map(|t| {
                    let mut r = FetchableTopicResponse::default();
                    r.topic = t.topic.clone();
                    r.partitions = t
                        .partitions
                        .iter()
                        .map(|p| {
                            let mut pd = PartitionData::default();
                            pd.partition_index = p.partition;
                            pd.high_watermark = marker;
                            pd.records = Some(Bytes::new());
                            pd
                        })
                        .collect();
                    r
                })
                .collect();
            (Some(response(api, version, correlation_id, &resp)), topics)
        }
        ApiKey::Metadata => {
            // Only all-topics requests are sent: the answer lists every topic.
            (Some(metadata(version, correlation_id, tag, port)), vec![])
        }
        ApiKey::ListGroups => {
            let mut resp = ListGroupsResponse::default();
            resp.groups = [format!("e2e-n{n}"), SECRET_GROUP.to_owned()]
                .into_iter()
                .map(|g| {
                    let mut lg = ListedGroup::default();
                    lg.group_id = GroupId(StrBytes::from_string(g));
                    lg.protocol_type = StrBytes::from_static_str("consumer");
                    lg
                })
                .collect();
            (Some(response(api, version, correlation_id, &resp)), vec![])
        }
        ApiKey::JoinGroup => {
            let mut resp = JoinGroupResponse::default();
            resp.member_id = tag.clone();
            resp.leader = tag;
            (Some(response(api, version, correlation_id, &resp)), vec![])
        }
        other => panic!("the fake broker does not serve {other:?}"),
    }
}

/// The next request frame a fake broker reads (its payload, without the length prefix); `None`
/// when the connection ends.
pub(super) async fn read_frame(stream: &mut TcpStream) -> Option<Bytes> {
    let len = stream.read_i32().await.ok()?;
    let mut payload = vec![0; usize::try_from(len).unwrap()];
    stream.read_exact(&mut payload).await.ok()?;
    Some(Bytes::from(payload))
}

/// A fake broker's answer to `req`: every partition of every topic it names, with the error code
/// and base offset `partition` gives for its index.
pub(super) fn produce_answer(
    req: &ProduceRequest,
    partition: impl Fn(i32) -> (i16, i64),
) -> ProduceResponse {
    let mut resp = ProduceResponse::default();
    resp.responses = req
        .topic_data
        .iter()
        .map(|t| {
            let mut r = TopicProduceResponse::default();
            r.name = t.name.clone();
            r.partition_responses = t
                .partition_data
                .iter()
                .map(|p| {
                    let mut pr = PartitionProduceResponse::default();
                    pr.index = p.index;
                    (pr.error_code, pr.base_offset) = partition(p.index);
                    pr
                })
                .collect();
            r
        })
        .collect();
    resp
}

/// An all-topics Metadata response: the broker's own address (node 1 at 127.0.0.1:`port`) and a
/// secret topic among others.
fn metadata(version: i16, correlation_id: i32, cluster: StrBytes, port: i32) -> Bytes {
    let mut resp = MetadataResponse::default();
    let mut broker = MetadataResponseBroker::default();
    broker.node_id = BrokerId(1);
    broker.host = StrBytes::from_static_str("127.0.0.1");
    broker.port = port;
    resp.brokers = vec![broker];
    resp.cluster_id = Some(cluster);
    resp.controller_id = BrokerId(1);
    resp.topics = [TOPIC, SECRET_TOPIC]
        .into_iter()
        .map(|name| {
            let mut t = MetadataResponseTopic::default();
            t.name = Some(TopicName(StrBytes::from_static_str(name)));
            let mut p = MetadataResponsePartition::default();
            p.leader_id = BrokerId(1);
            p.replica_nodes = vec![BrokerId(1)];
            p.isr_nodes = vec![BrokerId(1)];
            t.partitions = vec![p];
            t
        })
        .collect();
    response(ApiKey::Metadata, version, correlation_id, &resp)
}

/// Serves one gateway connection with `behaviour`: its index among the connections, where to
/// record requests and faults, and what releases held fetches.
async fn serve(
    mut stream: TcpStream,
    behaviour: Behaviour,
    (conn, seen, faulted, release): (
        usize,
        Arc<Mutex<Seen>>,
        Arc<AtomicBool>,
        Arc<tokio::sync::Notify>,
    ),
    port: i32,
) {
    let mut n = 0;
    // Responses sent so far, and one held back for a swap.
    let mut sent = 0;
    let mut held: Option<Bytes> = None;
    loop {
        let Some(payload) = read_frame(&mut stream).await else {
            return;
        };
        let key = i16::from_be_bytes([payload[0], payload[1]]);
        let version = i16::from_be_bytes([payload[2], payload[3]]);
        let api = ApiKey::try_from(key).unwrap();
        let mut body = payload.clone();
        let header = RequestHeader::decode(&mut body, api.request_header_version(version)).unwrap();
        let (frame, topics) = answer(
            api,
            version,
            header.correlation_id,
            body,
            n,
            behaviour.answer_acks0,
            port,
        );
        n += 1;
        seen.lock().unwrap().requests[conn].push((api, topics));
        let Some(frame) = frame else { continue };
        if api == ApiKey::Fetch && behaviour.hold_fetch {
            release.notified().await;
        }
        let mut out: Vec<Bytes> = Vec::new();
        match behaviour.fault {
            Some(Fault::Duplicate(k)) if k == sent => {
                faulted.store(true, Ordering::SeqCst);
                out.push(frame.clone());
                out.push(frame);
            }
            Some(Fault::Swap(k)) if k == sent => held = Some(frame),
            Some(Fault::Swap(k)) if k + 1 == sent => {
                faulted.store(true, Ordering::SeqCst);
                out.push(frame);
                out.extend(held.take());
            }
            Some(Fault::Invent(k)) if k == sent => {
                faulted.store(true, Ordering::SeqCst);
                let invented = header.correlation_id.wrapping_add(1000);
                out.push(metadata(
                    9,
                    invented,
                    StrBytes::from_static_str("invented"),
                    port,
                ));
                out.push(frame);
            }
            _ => out.push(frame),
        }
        sent += 1;
        for f in out {
            if stream.write_all(&f).await.is_err() {
                return;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The client side: pipelined requests with chosen correlation ids, and what each must get.
// ---------------------------------------------------------------------------------------------

/// A request the client pipelines (all permitted to `pool-writers` but `DeniedProduce`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Produce,
    ProduceAcks0,
    MetadataAll,
    ListGroups,
    JoinGroup,
    Fetch,
    /// A produce to a topic outside the grants: answered by the gateway, never forwarded.
    DeniedProduce,
    /// Answered by the gateway.
    ApiVersions,
}

impl Op {
    fn api(self) -> ApiKey {
        match self {
            Op::Produce | Op::ProduceAcks0 | Op::DeniedProduce => ApiKey::Produce,
            Op::MetadataAll => ApiKey::Metadata,
            Op::ListGroups => ApiKey::ListGroups,
            Op::JoinGroup => ApiKey::JoinGroup,
            Op::Fetch => ApiKey::Fetch,
            Op::ApiVersions => ApiKey::ApiVersions,
        }
    }

    fn version(self) -> i16 {
        match self {
            Op::Produce | Op::ProduceAcks0 | Op::DeniedProduce => 7,
            Op::MetadataAll => 9,
            Op::ListGroups => 3,
            Op::JoinGroup => 2,
            Op::Fetch => 11,
            Op::ApiVersions => 3,
        }
    }

    fn forwarded(self) -> bool {
        !matches!(self, Op::DeniedProduce | Op::ApiVersions)
    }

    fn answered(self) -> bool {
        self != Op::ProduceAcks0
    }

    fn body(self, out: &mut BytesMut) {
        let v = self.version();
        match self {
            Op::Produce | Op::ProduceAcks0 | Op::DeniedProduce => {
                produce(
                    if self == Op::DeniedProduce {
                        SECRET_TOPIC
                    } else {
                        TOPIC
                    },
                    i16::from(self != Op::ProduceAcks0),
                    record_batch(&[(None, b"v")]),
                )
                .encode(out, v)
                .unwrap();
            }
            Op::MetadataAll => {
                let mut r = MetadataRequest::default();
                r.topics = None;
                r.encode(out, v).unwrap();
            }
            Op::ListGroups => ListGroupsRequest::default().encode(out, v).unwrap(),
            Op::JoinGroup => {
                let mut r = JoinGroupRequest::default();
                r.group_id = GroupId(StrBytes::from_static_str("e2e-group"));
                r.session_timeout_ms = 10_000;
                r.rebalance_timeout_ms = 10_000;
                r.protocol_type = StrBytes::from_static_str("consumer");
                r.encode(out, v).unwrap();
            }
            Op::Fetch => {
                let mut r = FetchRequest::default();
                r.replica_id = BrokerId(-1);
                r.max_bytes = 1 << 20;
                r.session_epoch = -1;
                let mut t = FetchTopic::default();
                t.topic = TopicName(StrBytes::from_static_str(TOPIC));
                let mut p = FetchPartition::default();
                p.partition_max_bytes = 1 << 20;
                t.partitions = vec![p];
                r.topics = vec![t];
                r.encode(out, v).unwrap();
            }
            Op::ApiVersions => ApiVersionsRequest::default().encode(out, v).unwrap(),
        }
    }
}

/// A produce request to partition 0 of `topic`.
pub(super) fn produce(topic: &str, acks: i16, records: Bytes) -> ProduceRequest {
    let mut p = PartitionProduceData::default();
    p.records = Some(records);
    let mut t = TopicProduceData::default();
    t.name = TopicName(StrBytes::from_string(topic.to_owned()));
    t.partition_data = vec![p];
    let mut r = ProduceRequest::default();
    r.acks = acks;
    r.timeout_ms = 5_000;
    r.topic_data = vec![t];
    r
}

/// The frame of a request with the client's own choice of correlation id.
fn request_frame(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: impl FnOnce(&mut BytesMut),
) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i32(0);
    let mut header = RequestHeader::default();
    header.request_api_key = api as i16;
    header.request_api_version = version;
    header.correlation_id = correlation_id;
    header.client_id = Some(StrBytes::from_static_str("poolgate-tests"));
    header
        .encode(&mut out, api.request_header_version(version))
        .unwrap();
    body(&mut out);
    let len = i32::try_from(out.len() - 4).unwrap();
    out[..4].copy_from_slice(&len.to_be_bytes());
    out.freeze()
}

/// What the client expects for one answered request.
#[derive(Debug)]
struct Expect {
    op: Op,
    correlation_id: i32,
    /// The request's index on the upstream connection, for forwarded ones.
    upstream_index: Option<usize>,
}

/// Checks that `payload` is the filtered answer to `e`; describes the first problem.
fn check_answer(payload: Bytes, e: &Expect, gateway: &str) -> Result<(), String> {
    let api = e.op.api();
    let v = e.op.version();
    let mut body = payload;
    let header = ResponseHeader::decode(&mut body, api.response_header_version(v))
        .map_err(|err| format!("header: {err}"))?;
    if header.correlation_id != e.correlation_id {
        return Err(format!(
            "correlation id {} for request {}",
            header.correlation_id, e.correlation_id
        ));
    }
    let marker = e.upstream_index.map(|n| i64::try_from(n).unwrap());
    let tag = e.upstream_index.map(|n| format!("n{n}"));
    let bad = |what: String| Err(format!("{:?}: {what}", e.op));
    match e.op {
        Op::Produce | Op::DeniedProduce => {
            let r = ProduceResponse::decode(&mut body, v).map_err(|x| x.to_string())?;
            let [t] = r.responses.as_slice() else {
                return bad(format!("{} topics", r.responses.len()));
            };
            let p = t.partition_responses.first().ok_or("no partition")?;
            if e.op == Op::DeniedProduce {
                if t.name.0.as_str() != SECRET_TOPIC || p.error_code != 29 {
                    return bad(format!("{t:?}"));
                }
            } else if t.name.0.as_str() != TOPIC || Some(p.base_offset) != marker {
                return bad(format!("{t:?}"));
            }
        }
        Op::MetadataAll => {
            let r = MetadataResponse::decode(&mut body, v).map_err(|x| x.to_string())?;
            if r.cluster_id.as_deref() != tag.as_deref() {
                return bad(format!("cluster id {:?}", r.cluster_id));
            }
            if r.topics.iter().any(|t| {
                t.name
                    .as_ref()
                    .is_some_and(|n| n.0.as_str() == SECRET_TOPIC)
            }) {
                return bad("the secret topic leaked".to_owned());
            }
            if r.brokers
                .iter()
                .any(|b| format!("{}:{}", b.host, b.port) != gateway)
            {
                return bad(format!("broker address leaked: {:?}", r.brokers));
            }
        }
        Op::ListGroups => {
            let r = ListGroupsResponse::decode(&mut body, v).map_err(|x| x.to_string())?;
            let groups: Vec<String> = r.groups.iter().map(|g| g.group_id.0.to_string()).collect();
            if groups != [format!("e2e-{}", tag.unwrap_or_default())] {
                return bad(format!("groups {groups:?}"));
            }
        }
        Op::JoinGroup => {
            let r = JoinGroupResponse::decode(&mut body, v).map_err(|x| x.to_string())?;
            if Some(r.member_id.to_string()) != tag {
                return bad(format!("member id {}", r.member_id));
            }
        }
        Op::Fetch => {
            let r = FetchResponse::decode(&mut body, v).map_err(|x| x.to_string())?;
            let hw = r
                .responses
                .first()
                .and_then(|t| t.partitions.first())
                .map(|p| p.high_watermark);
            if hw != marker || r.responses.len() != 1 {
                return bad(format!("{r:?}"));
            }
        }
        Op::ApiVersions => {
            let r = ApiVersionsResponse::decode(&mut body, v).map_err(|x| x.to_string())?;
            if r.error_code != 0 {
                return bad(format!("error {}", r.error_code));
            }
        }
        Op::ProduceAcks0 => return bad("answered".to_owned()),
    }
    Ok(())
}

/// Reads one response frame's payload; `None` when the gateway closed the connection.
async fn next_frame(client: &mut KafkaClient) -> Option<Bytes> {
    match within("a response or the close", client.recv_frame()).await {
        Ok(f) => Some(f),
        Err(e) if e.is_closed() => None,
        Err(e) => panic!("{e}"),
    }
}

/// One case: logs in, pipelines `ops` with `ids`, and checks every response. With no fault
/// the connection must answer every request and stay open; with one, the responses before it
/// are right and the connection is then closed.
async fn run_case(
    gw: &Gateway,
    h: &Harness,
    broker: &FakeBroker,
    ops: &[(Op, i32)],
    behaviour: Behaviour,
) -> Result<(), String> {
    broker.behave(behaviour);
    let mut client = gw.connect().await;
    super::login_ok(&mut client, &h.writer_token()).await;
    let mut expected = VecDeque::new();
    let mut wire = BytesMut::new();
    let mut upstream = 0;
    for &(op, id) in ops {
        wire.extend_from_slice(&request_frame(op.api(), op.version(), id, |out| {
            op.body(out)
        }));
        let upstream_index = op.forwarded().then(|| {
            upstream += 1;
            upstream - 1
        });
        if op.answered() {
            expected.push_back(Expect {
                op,
                correlation_id: id,
                upstream_index,
            });
        }
    }
    // All at once: the gateway sees them pipelined.
    client.write_raw(&wire).await.map_err(|e| e.to_string())?;
    let total = expected.len();
    let mut got = 0;
    while let Some(e) = expected.pop_front() {
        let Some(frame) = next_frame(&mut client).await else {
            break;
        };
        check_answer(frame, &e, &node_addr(gw, 1))
            .map_err(|why| format!("response {got}: {why}"))?;
        got += 1;
    }
    let faulted = broker.faulted.load(Ordering::SeqCst);
    if faulted {
        // Whatever came before the fault, the connection then ends.
        if got == total && next_frame(&mut client).await.is_some() {
            return Err("a response after the fault".to_owned());
        }
    } else {
        if got != total {
            return Err(format!("closed after {got} of {total} responses"));
        }
        // Still open: one more round trip.
        let ping = request_frame(ApiKey::ApiVersions, 3, 4242, |out| {
            Op::ApiVersions.body(out);
        });
        client.write_raw(&ping).await.map_err(|e| e.to_string())?;
        let frame = next_frame(&mut client)
            .await
            .ok_or("closed without a fault")?;
        check_answer(
            frame,
            &Expect {
                op: Op::ApiVersions,
                correlation_id: 4242,
                upstream_index: None,
            },
            &gw.addr,
        )?;
    }
    Ok(())
}

async fn start(name: &str) -> (Harness, FakeBroker, Gateway) {
    start_env(name, &[]).await
}

/// [`start`] with environment variables for the gateway.
async fn start_env(name: &str, env: &[(&str, &str)]) -> (Harness, FakeBroker, Gateway) {
    let h = Harness::start(name).await;
    let broker = FakeBroker::start().await;
    // Without Describe on the cluster, ListGroups lists only the groups the pool may describe.
    let config = h.config("gateway.toml", |t| {
        super::edit(
            &t,
            r#"allow = ["Create", "Describe", "DescribeConfigs"]"#,
            r#"allow = ["Create", "DescribeConfigs"]"#,
        )
    });
    let gw = h
        .gateway_to_env(
            &config,
            &broker.addr,
            &["--metrics-listen", "127.0.0.1:0"],
            env,
        )
        .await;
    (h, broker, gw)
}

/// A token for `sub` in the writers' pool, valid for `lifetime` from `issued` (when given).
fn writer(h: &Harness, sub: &str, issued: Option<UnixTime>, lifetime: Duration) -> String {
    let mint = h.issuer.mint();
    let mint = match issued {
        Some(at) => mint.issued_at(at),
        None => mint,
    };
    mint.lifetime(lifetime)
        .claim("sub", serde_json::json!(sub))
        .claim("groups", serde_json::json!(["kafka-writers"]))
        .sign()
}

/// Sends one produce to the writers' topic with `correlation_id` and checks its answer, the
/// `index`-th request on the session's upstream connection: the session is alive and
/// forwarding.
async fn produce_round_trip(
    client: &mut KafkaClient,
    gw: &Gateway,
    correlation_id: i32,
    index: usize,
) {
    let frame = request_frame(ApiKey::Produce, 7, correlation_id, |out| {
        Op::Produce.body(out)
    });
    client.write_raw(&frame).await.unwrap();
    let answer = next_frame(client).await.expect("an answer, not the close");
    let e = Expect {
        op: Op::Produce,
        correlation_id,
        upstream_index: Some(index),
    };
    check_answer(answer, &e, &gw.addr).unwrap();
}

/// A field of an audit event, failing the test with the event when it is missing.
fn field<'a>(event: &'a BTreeMap<String, String>, name: &str) -> &'a str {
    event
        .get(name)
        .unwrap_or_else(|| panic!("no `{name}` in {event:?}"))
}

use Op::{
    ApiVersions as V, DeniedProduce as Denied, Fetch as F, JoinGroup as J, ListGroups as L,
    MetadataAll as M, Produce as P, ProduceAcks0 as P0,
};

/// The review's chain: one correlation id for `Produce(acks=0)`, `JoinGroup`, `Metadata`,
/// `Produce(acks=1)`, against a broker that answers `acks=0` (tansu) and one that does not
/// (Kafka). Before the fix, the last Produce received the raw Metadata.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reused_correlation_ids_and_acks0_never_desynchronise_responses() {
    let (h, broker, gw) = start("desync").await;
    let chain = [(P0, 7), (J, 7), (M, 7), (P, 7), (L, 7), (P0, 7), (P, 7)];
    for answer_acks0 in [true, false] {
        let b = Behaviour {
            answer_acks0,
            ..Behaviour::default()
        };
        run_case(&gw, &h, &broker, &chain, b).await.unwrap();
        // A well-behaved acks=0 producer with distinct ids.
        let producer: Vec<(Op, i32)> = (0..20)
            .map(|i| (if i % 5 == 4 { P } else { P0 }, 500 + i))
            .collect();
        run_case(&gw, &h, &broker, &producer, b).await.unwrap();
    }
    // Two acks=0 produces in the chain and 16 in the producer, answered once each by the fake.
    gw.metrics_when("acks=0 answers counted", |m| {
        super::sample(
            m,
            "poolgate_upstream_responses_dropped_total{reason=\"acks0_answered\"}",
        ) == Some(18.0)
    })
    .await;
}

/// Duplicated, swapped and invented upstream responses close the connection; nothing after
/// them reaches the client, and each is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stray_upstream_responses_close_the_connection() {
    let (h, broker, gw) = start("stray").await;
    let ops = [(P, 1), (M, 2), (L, 3), (J, 4), (F, 5)];
    for fault in [
        Fault::Duplicate(1),
        Fault::Swap(2),
        Fault::Invent(0),
        Fault::Duplicate(4),
    ] {
        let b = Behaviour {
            fault: Some(fault),
            ..Behaviour::default()
        };
        run_case(&gw, &h, &broker, &ops, b)
            .await
            .unwrap_or_else(|e| panic!("{fault:?}: {e}"));
        assert!(broker.faulted.load(Ordering::SeqCst), "{fault:?} acted on");
    }
    gw.metrics_when("four stray responses", |m| {
        super::sample(
            m,
            "poolgate_upstream_responses_dropped_total{reason=\"stray\"}",
        ) == Some(4.0)
            && super::dropped(m, "stray_response") == 4.0
    })
    .await;
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(P),
        Just(P0),
        Just(M),
        Just(L),
        Just(J),
        Just(F),
        Just(Denied),
        Just(V)
    ]
}

/// Random pipelines (mixed APIs, reused and distinct correlation ids) through the gateway to a
/// broker that answers correctly, answers `acks=0`, duplicates, swaps or invents responses.
#[test]
fn every_response_is_the_filtered_answer_to_its_own_request() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (h, broker, gw) = rt.block_on(start("interleavings"));
    let case = (
        prop::collection::vec(
            (op_strategy(), prop_oneof![Just(1), Just(2), 3..1000i32]),
            1..24,
        ),
        any::<bool>(),
        prop_oneof![
            Just(None),
            (0..24usize).prop_map(|k| Some(Fault::Duplicate(k))),
            (0..24usize).prop_map(|k| Some(Fault::Swap(k))),
            (0..24usize).prop_map(|k| Some(Fault::Invent(k))),
        ],
    );
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 48,
        ..ProptestConfig::default()
    });
    runner
        .run(&case, |(ops, answer_acks0, fault)| {
            // Faults only where the broker sends enough responses for them to happen.
            let responses = ops
                .iter()
                .filter(|(op, _)| op.forwarded() && (op.answered() || answer_acks0))
                .count();
            let fault = fault.filter(|f| match *f {
                Fault::Duplicate(k) | Fault::Invent(k) => k < responses,
                Fault::Swap(k) => k + 1 < responses,
            });
            let b = Behaviour {
                answer_acks0,
                fault,
                hold_fetch: false,
            };
            rt.block_on(run_case(&gw, &h, &broker, &ops, b))
                .map_err(|e| TestCaseError::fail(format!("{b:?}: {e}")))?;
            let faulted = broker.faulted.load(Ordering::SeqCst);
            prop_assert_eq!(faulted, fault.is_some(), "the fault happened");
            Ok(())
        })
        .unwrap();
    drop((gw, broker, h));
}

/// A frame whose first half arrives before the idle timer fires (with a fetch in flight) and
/// whose second half carries bytes that look like a whole produce request: the gateway reads
/// one frame, the outer produce, and never forwards the hidden one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_is_never_cut_by_the_idle_timer() {
    let h = Harness::start("frame-cut").await;
    let broker = FakeBroker::start().await;
    let config = h.config("gateway.toml", |t| {
        super::edit(
            &t,
            "login_timeout = \"3s\"",
            "login_timeout = \"3s\"\nidle_timeout = \"1s\"",
        )
    });
    let gw = h
        .gateway_to_env(
            &config,
            &broker.addr,
            &[],
            &[("RUST_LOG", "poolgate=debug")],
        )
        .await;
    broker.behave(Behaviour {
        hold_fetch: true,
        ..Behaviour::default()
    });
    let mut client = gw.connect().await;
    super::login_ok(&mut client, &h.writer_token()).await;
    // A fetch in flight: the idle timer then lets the connection live.
    let fetch = request_frame(ApiKey::Fetch, 11, 2, |out| Op::Fetch.body(out));
    client.write_raw(&fetch).await.unwrap();
    // The hidden request: a produce to a topic that only this frame names.
    let hidden = request_frame(ApiKey::Produce, 7, 99, |out| {
        produce("e2e-hidden", 1, record_batch(&[(None, b"smuggled")]))
            .encode(out, 7)
            .unwrap();
    });
    // The outer request carries it as the value of its one record.
    let outer = request_frame(ApiKey::Produce, 7, 1, |out| {
        produce(TOPIC, 1, record_batch(&[(None, &hidden)]))
            .encode(out, 7)
            .unwrap();
    });
    // Cut where the hidden request starts: a reader that dropped the bytes read so far would
    // take what follows for a request of its own.
    let cut = outer
        .windows(hidden.len())
        .position(|w| w == &hidden[..])
        .unwrap();
    client.write_raw(&outer[..cut]).await.unwrap();
    // The idle timer fires with part of the frame read.
    gw.process
        .log_line("the idle timer with a partial frame", |l| {
            l.contains("idle timer") && l.contains("in_flight=1 partial_frame=true")
        })
        .await;
    client.write_raw(&outer[cut..]).await.unwrap();
    broker.release.notify_one();
    let fetched = next_frame(&mut client)
        .await
        .expect("the fetch is answered");
    let e = Expect {
        op: Op::Fetch,
        correlation_id: 2,
        upstream_index: Some(0),
    };
    check_answer(fetched, &e, &node_addr(&gw, 1)).unwrap();
    let frame = next_frame(&mut client)
        .await
        .expect("the outer produce is answered");
    let mut body = frame;
    let header =
        ResponseHeader::decode(&mut body, ApiKey::Produce.response_header_version(7)).unwrap();
    assert_eq!(header.correlation_id, 1);
    let resp = ProduceResponse::decode(&mut body, 7).unwrap();
    assert_eq!(resp.responses[0].name.0.as_str(), TOPIC);
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);
    let seen = broker.last_connection();
    assert_eq!(
        seen,
        vec![
            (ApiKey::Fetch, vec![TOPIC.to_owned()]),
            (ApiKey::Produce, vec![TOPIC.to_owned()])
        ],
        "exactly the fetch and the outer produce were forwarded"
    );
}

/// `max_session_lifetime` caps the session a login gets (Kafka's `connections.max.reauth.ms`),
/// and a session that does not re-authenticate ends at the cap, while a token shorter than the
/// cap keeps its own lifetime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_lifetime_is_capped_and_enforced() {
    let h = Harness::start("session-cap").await;
    let broker = FakeBroker::start().await;
    let config = h.config("gateway.toml", |t| {
        super::edit(
            &t,
            "login_timeout = \"3s\"",
            "login_timeout = \"3s\"\nmax_session_lifetime = \"4s\"",
        )
    });
    let gw = h.gateway_to(&config, &broker.addr, &[]).await;
    let mut client = gw.connect().await;
    // A ten-minute token.
    let resp = super::login_ok(&mut client, &h.writer_token()).await;
    assert_eq!(resp.session_lifetime_ms, 4_000, "{resp:?}");
    // The session works until then.
    let ops = [(Op::Produce, 1)];
    let frame = request_frame(ApiKey::Produce, 7, 1, |out| Op::Produce.body(out));
    client.write_raw(&frame).await.unwrap();
    let answer = next_frame(&mut client)
        .await
        .expect("an answer before the cap");
    let e = Expect {
        op: ops[0].0,
        correlation_id: 1,
        upstream_index: Some(0),
    };
    check_answer(answer, &e, &node_addr(&gw, 1)).unwrap();
    // Then it ends, for that reason.
    assert_eq!(super::closed(&mut client).await, 0);
    gw.process
        .log_line("the session_expired audit event", |l| {
            l.contains("session_expired")
        })
        .await;

    // A two-second token keeps its own, shorter lifetime.
    let short = h
        .issuer
        .mint()
        .lifetime(std::time::Duration::from_secs(2))
        .claim("groups", serde_json::json!(["kafka-writers"]))
        .sign();
    let mut client = gw.connect().await;
    let resp = super::login_ok(&mut client, &short).await;
    assert!(
        (1_000..=2_000).contains(&resp.session_lifetime_ms),
        "{resp:?}"
    );
}

/// Re-authentication on a session must carry the same identity: another identity gets the
/// error challenge, then SASL_AUTHENTICATION_FAILED, and the connection is closed; the same
/// identity re-authenticates and the session goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reauthentication_must_keep_the_identity() {
    let (h, broker, gw) = start("reauth-identity").await;
    broker.behave(Behaviour::default());
    let token = |sub: &str| {
        h.issuer
            .mint()
            .lifetime(std::time::Duration::from_secs(600))
            .claim("sub", serde_json::json!(sub))
            .claim("groups", serde_json::json!(["kafka-writers"]))
            .sign()
    };
    let mut client = gw.connect().await;
    super::login_ok(&mut client, &token("alice")).await;
    // The same identity, with a new token: accepted.
    super::login_ok(&mut client, &token("alice")).await;
    let frame = request_frame(ApiKey::Produce, 7, 11, |out| Op::Produce.body(out));
    client.write_raw(&frame).await.unwrap();
    let e = Expect {
        op: Op::Produce,
        correlation_id: 11,
        upstream_index: Some(0),
    };
    check_answer(
        next_frame(&mut client).await.unwrap(),
        &e,
        &node_addr(&gw, 1),
    )
    .unwrap();
    // Another identity on the same connection: refused, and the connection ends.
    super::assert_refused(
        &mut client,
        &super::client_first(&token("mallory"), super::CLUSTER),
    )
    .await;
    gw.metrics_when("the refused re-authentication counted", |m| {
        super::sample(
            m,
            "poolgate_logins_total{outcome=\"reauth_failure\",reason=\"principal_changed\"}",
        ) == Some(1.0)
            && super::sample(
                m,
                "poolgate_logins_total{outcome=\"reauth_success\",reason=\"ok\"}",
            ) == Some(1.0)
    })
    .await;
}

/// A session whose token expires without re-authentication works until the token's `exp` and
/// is closed then, for that reason: the `session_expired` audit event and the close reason say
/// so, and it is neither counted as a dropped connection nor left in the active sessions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_ends_its_session_at_the_expiry() {
    let (h, broker, gw) = start_env("token-expiry", &[LOG_CLOSES]).await;
    broker.behave(Behaviour::default());
    // Five seconds from a whole second: `exp` is exactly `issued + 5`.
    let issued = UnixTime::now();
    let exp = issued + Duration::from_secs(5);
    let token = writer(&h, "svc-expiring", Some(issued), Duration::from_secs(5));
    let mut client = gw.connect().await;
    let asked = UnixTime::now();
    let resp = super::login_ok(&mut client, &token).await;
    let answered = UnixTime::now();
    // The whole seconds left until `exp` on the gateway's clock, read between the two.
    let left = |t: UnixTime| i64::try_from(exp.saturating_since(t).as_millis()).unwrap();
    assert!(
        (left(answered).max(1_000)..=left(asked)).contains(&resp.session_lifetime_ms)
            && resp.session_lifetime_ms % 1_000 == 0,
        "{resp:?}"
    );
    // The session forwards before the expiry.
    produce_round_trip(&mut client, &gw, 1, 0).await;
    assert!(
        gw.process.audit("session_expired").is_empty(),
        "{}",
        gw.process.stderr()
    );

    // Then the gateway closes it, and not before `exp` on the shared system clock: the close
    // is seen after it happened, so a close before `exp` shows as a reading before `exp`.
    assert_eq!(super::closed(&mut client).await, 0);
    let seen = UnixTime::now();
    assert!(
        seen >= exp,
        "closed at {seen:?}, before the token's exp {exp:?}"
    );

    let closed = gw
        .process
        .log_line("the close of the expired session", |l| {
            l.contains("connection closed")
        })
        .await;
    assert!(
        closed.contains("reason=session expired without re-authentication"),
        "{closed}"
    );
    let expired = gw.process.audit("session_expired");
    let [event] = expired.as_slice() else {
        panic!("one session_expired event: {}", gw.process.stderr());
    };
    assert_eq!(field(event, "identity"), "svc-expiring");
    // The close line is logged after the connection's counters moved: they are final.
    let m = gw.metrics().await;
    assert_eq!(
        super::sample(&m, "poolgate_active_sessions"),
        Some(0.0),
        "{m}"
    );
    assert_eq!(
        super::sample(&m, "poolgate_open_connections"),
        Some(0.0),
        "{m}"
    );
    assert!(
        !m.lines()
            .any(|l| l.starts_with("poolgate_connections_dropped_total{")),
        "an expiry is no dropped connection:\n{m}"
    );
    assert_eq!(
        super::sample(
            &m,
            r#"poolgate_logins_total{outcome="success",reason="ok"}"#
        ),
        Some(1.0),
        "{m}"
    );
    assert!(!m.contains("reauth_"), "{m}");
}

/// The audit log (`poolgate::audit` on the gateway's stderr) records a login with who, which
/// provider, the pools and the session lifetime; a failed login with its reason code; a refused
/// operation with the API, the operation, the resource and the reason; and never the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_events_say_who_what_and_why() {
    let (h, broker, gw) = start("audit").await;
    broker.behave(Behaviour::default());

    let token = writer(&h, "svc-audited", None, Duration::from_secs(600));
    let mut client = gw.connect().await;
    let resp = super::login_ok(&mut client, &token).await;
    let line = gw
        .process
        .log_line("the login event", |l| l.contains("event=\"login\""))
        .await;
    let login = super::audit_fields(&line).unwrap();
    assert_eq!(field(&login, "outcome"), "success", "{line}");
    assert_eq!(field(&login, "reason"), "ok", "{line}");
    assert_eq!(field(&login, "identity"), "svc-audited", "{line}");
    assert_eq!(field(&login, "provider"), "local-idp", "{line}");
    assert_eq!(field(&login, "pools"), r#"["pool-writers"]"#, "{line}");
    assert_eq!(
        field(&login, "session_lifetime_ms"),
        resp.session_lifetime_ms.to_string(),
        "the lifetime the client was told: {line}"
    );
    assert!(field(&login, "peer").starts_with("127.0.0.1:"), "{line}");

    // A produce to a topic outside the pool's grants: refused by the gateway, and logged.
    let frame = request_frame(ApiKey::Produce, 7, 5, |out| Op::DeniedProduce.body(out));
    client.write_raw(&frame).await.unwrap();
    let e = Expect {
        op: Op::DeniedProduce,
        correlation_id: 5,
        upstream_index: None,
    };
    check_answer(next_frame(&mut client).await.unwrap(), &e, &gw.addr).unwrap();
    let line = gw
        .process
        .log_line("the denial event", |l| l.contains("event=\"denied\""))
        .await;
    let denied = super::audit_fields(&line).unwrap();
    assert_eq!(field(&denied, "identity"), "svc-audited", "{line}");
    assert_eq!(field(&denied, "api"), "Produce", "{line}");
    assert_eq!(field(&denied, "operation"), "Write", "{line}");
    assert_eq!(
        field(&denied, "resource"),
        format!("Topic:{SECRET_TOPIC}"),
        "{line}"
    );
    assert_eq!(field(&denied, "reason"), "not_authorized", "{line}");

    // A login no pool accepts: the reason code, and no identity.
    let marketing = h
        .issuer
        .mint()
        .lifetime(Duration::from_secs(600))
        .claim("sub", serde_json::json!("svc-marketing"))
        .claim("groups", serde_json::json!(["marketing"]))
        .sign();
    super::refused(&gw, &super::client_first(&marketing, super::CLUSTER)).await;
    let line = gw
        .process
        .log_line("the failed login event", |l| {
            l.contains("event=\"login\"") && l.contains("outcome=\"failure\"")
        })
        .await;
    let failed = super::audit_fields(&line).unwrap();
    assert_eq!(field(&failed, "reason"), "no_pool_matched", "{line}");
    assert!(field(&failed, "peer").starts_with("127.0.0.1:"), "{line}");
    assert!(!failed.contains_key("identity"), "{line}");

    // Exactly these three events, and no token in the log.
    let log = gw.process.stderr();
    assert_eq!(gw.process.audit("login").len(), 2, "{log}");
    assert_eq!(gw.process.audit("denied").len(), 1, "{log}");
    assert!(!log.contains(&token) && !log.contains(&marketing), "{log}");
}

/// Metrics with their values: the key set and when it was fetched, the token cache, refused
/// APIs, and the active sessions going up with each session and down when it closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_carry_exact_values() {
    let h = Harness::start("metric-values").await;
    let broker = FakeBroker::start().await;
    broker.behave(Behaviour::default());
    let config = h.config("gateway.toml", |t| t);
    // The gateway fetches the keys while it starts, between these two readings.
    let before = UnixTime::now();
    let gw = h
        .gateway_to(&config, &broker.addr, &["--metrics-listen", "127.0.0.1:0"])
        .await;
    let after = UnixTime::now();
    let m = gw.metrics().await;
    let keys = h.issuer.jwks()["keys"].as_array().unwrap().len();
    let value = |m: &str, series: &str| {
        super::sample(m, series).unwrap_or_else(|| panic!("no {series} in:\n{m}"))
    };
    assert_eq!(
        value(&m, r#"poolgate_jwks_keys{provider="local-idp"}"#),
        keys as f64,
        "{m}"
    );
    let fetched = value(
        &m,
        r#"poolgate_jwks_last_success_timestamp_seconds{provider="local-idp"}"#,
    );
    assert!(
        (before.as_secs() as f64..=after.as_secs() as f64).contains(&fetched),
        "fetched at {fetched}, started between {before:?} and {after:?}"
    );
    assert_eq!(
        value(&m, r#"poolgate_token_cache_total{result="miss"}"#),
        0.0
    );
    assert_eq!(
        value(&m, r#"poolgate_token_cache_total{result="hit"}"#),
        0.0
    );
    assert_eq!(value(&m, "poolgate_active_sessions"), 0.0);

    // Two sessions with one token: verified once, then from the cache. A session counts as
    // active before it forwards anything, so after an answered produce it is counted.
    let token = writer(&h, "svc-metrics", None, Duration::from_secs(600));
    let mut first = gw.connect().await;
    super::login_ok(&mut first, &token).await;
    produce_round_trip(&mut first, &gw, 1, 0).await;
    let m = gw.metrics().await;
    assert_eq!(value(&m, "poolgate_active_sessions"), 1.0, "{m}");
    assert_eq!(
        value(&m, r#"poolgate_token_cache_total{result="miss"}"#),
        1.0
    );
    assert_eq!(
        value(&m, r#"poolgate_token_cache_total{result="hit"}"#),
        0.0
    );
    let mut second = gw.connect().await;
    super::login_ok(&mut second, &token).await;
    produce_round_trip(&mut second, &gw, 1, 0).await;
    let m = gw.metrics().await;
    assert_eq!(value(&m, "poolgate_active_sessions"), 2.0, "{m}");
    assert_eq!(
        value(&m, r#"poolgate_token_cache_total{result="miss"}"#),
        1.0
    );
    assert_eq!(
        value(&m, r#"poolgate_token_cache_total{result="hit"}"#),
        1.0
    );

    // DescribeAcls is neither checked nor passed through: refused with an error, counted
    // before the answer is sent.
    let resp: DescribeAclsResponse = within(
        "the DescribeAcls refusal",
        second.call(1, DescribeAclsRequest::default()),
    )
    .await
    .unwrap();
    assert_ne!(resp.error_code, 0, "{resp:?}");
    let m = gw.metrics().await;
    assert_eq!(
        value(
            &m,
            r#"poolgate_requests_refused_api_total{api="DescribeAcls"}"#
        ),
        1.0,
        "{m}"
    );
    assert_eq!(
        m.lines()
            .filter(|l| l.starts_with("poolgate_requests_refused_api_total{"))
            .count(),
        1,
        "{m}"
    );
    // The refused request did not end the session.
    produce_round_trip(&mut second, &gw, 2, 1).await;

    // One session closes: back to one. The gauge of sessions moves before the gauge of
    // connections (both in the connection's task), so once the connections read 1, the
    // sessions gauge holds its final value.
    drop(first);
    let m = gw
        .metrics_when("the first session to close", |m| {
            super::sample(m, "poolgate_open_connections") == Some(1.0)
        })
        .await;
    assert_eq!(value(&m, "poolgate_active_sessions"), 1.0, "{m}");
    drop(second);
    let m = gw
        .metrics_when("the second session to close", |m| {
            super::sample(m, "poolgate_open_connections") == Some(0.0)
        })
        .await;
    assert_eq!(value(&m, "poolgate_active_sessions"), 0.0, "{m}");
    assert_eq!(
        value(&m, r#"poolgate_token_cache_total{result="miss"}"#),
        1.0
    );
    assert_eq!(
        value(&m, r#"poolgate_token_cache_total{result="hit"}"#),
        1.0
    );
}

/// A response goes to the client when it is there, not when the broker answers the request
/// after it: a produce pipelined before a fetch the broker holds (a long poll) is answered
/// while the fetch waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_is_not_held_back_by_a_later_request() {
    let (h, broker, gw) = start("head-of-line").await;
    broker.behave(Behaviour::holding_fetches());
    let mut client = gw.connect().await;
    super::login_ok(&mut client, &h.writer_token()).await;
    let mut wire = BytesMut::new();
    wire.extend_from_slice(&request_frame(ApiKey::Produce, 7, 1, |out| {
        Op::Produce.body(out);
    }));
    wire.extend_from_slice(&request_frame(ApiKey::Fetch, 11, 2, |out| {
        Op::Fetch.body(out);
    }));
    client.write_raw(&wire).await.unwrap();
    // The fetch is held until released below.
    let produced = next_frame(&mut client).await.expect("the produce's answer");
    let e = Expect {
        op: Op::Produce,
        correlation_id: 1,
        upstream_index: Some(0),
    };
    check_answer(produced, &e, &node_addr(&gw, 1)).unwrap();
    broker.release.notify_one();
    let fetched = next_frame(&mut client).await.expect("the fetch's answer");
    let e = Expect {
        op: Op::Fetch,
        correlation_id: 2,
        upstream_index: Some(1),
    };
    check_answer(fetched, &e, &node_addr(&gw, 1)).unwrap();
}
