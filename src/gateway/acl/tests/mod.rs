//! Tests of the per-API checks: requests in, verdicts and patched responses out.
//!
//! Every session is real: a local `TestIssuer` signs a token, a `Gate` whose one pool holds the
//! grants under test verifies it, and the resulting `Session` is checked against requests
//! encoded as a Kafka client encodes them. "Upstream" responses are encoded by hand at the
//! request's version and run through the verdict's patch, as the connection does.

use std::fmt::Write as _;
use std::ops::RangeInclusive;
use std::path::Path;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::alter_configs_request::{
    AlterConfigsRequest, AlterConfigsResource as AlterConfigsRequestResource,
    AlterableConfig as AlterConfigsRequestConfig,
};
use kafka_protocol::messages::alter_configs_response::AlterConfigsResponse;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse, ApiKey, ApiVersionsResponse, BrokerId, CreateTopicsRequest,
    CreateTopicsResponse, DeleteGroupsRequest, DeleteGroupsResponse, DeleteTopicsRequest,
    DeleteTopicsResponse, DescribeAclsRequest, DescribeClusterRequest, DescribeClusterResponse,
    DescribeConfigsRequest, DescribeConfigsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    EndTxnRequest, EndTxnResponse, FetchRequest, FetchResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, GroupId, HeartbeatRequest, HeartbeatResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, InitProducerIdRequest,
    InitProducerIdResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, ListGroupsRequest, ListGroupsResponse, ListOffsetsRequest,
    ListOffsetsResponse, MetadataRequest, MetadataResponse, OffsetCommitRequest,
    OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse, ProduceRequest, ProduceResponse,
    ProducerId, RequestHeader, SyncGroupRequest, SyncGroupResponse, TopicName, TransactionalId,
    TxnOffsetCommitRequest, TxnOffsetCommitResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use poolgate::authz::Operation;
use poolgate::config::Config;
use poolgate::gate::{Gate, Session};
use poolgate::sasl::ClientFirstMessage;
use poolgate::testkit::{IssuerConfig, SigningAlg, TestIssuer};

use super::super::wire::{Request, split_response};
use super::{
    Context, Denial, Nodes, Patch, Reason, Verdict, advertised_versions, check, checked,
    checked_range,
};

// ---------------------------------------------------------------------------------------------
// Helpers

const CORRELATION_ID: i32 = 4242;
const GW_HOST: &str = "gw.example";
const GW_PORT: i32 = 19092;

const TOPIC_DENIED: i16 = 29;
const GROUP_DENIED: i16 = 30;
const CLUSTER_DENIED: i16 = 31;
const TXN_DENIED: i16 = 53;
const CORRUPT_MESSAGE: i16 = 2;
const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
const INVALID_RECORD: i16 = 87;

/// Kafka's ACL operation codes, for authorized-operations bit fields.
const OP_READ: i32 = 3;
const OP_WRITE: i32 = 4;
const OP_CREATE: i32 = 5;
const OP_DELETE: i32 = 6;
const OP_ALTER: i32 = 7;
const OP_DESCRIBE: i32 = 8;
const OP_DESCRIBE_CONFIGS: i32 = 10;
const OP_ALTER_CONFIGS: i32 = 11;
const OP_IDEMPOTENT_WRITE: i32 = 12;

fn bits(ops: &[i32]) -> i32 {
    ops.iter().fold(0, |acc, op| acc | (1 << op))
}

/// Logs in with a token of a pool holding `grants`, one per entry, written
/// `EFFECT OPERATIONS RESOURCE`: `allow Write,Describe Topic:orders-*`,
/// `deny Read Topic:orders-audit`, `role DeveloperRead Group:app-*`.
fn session_with(grants: &[&str]) -> Arc<Session> {
    let mut toml = String::new();
    for grant in grants {
        let parts: Vec<&str> = grant.split_whitespace().collect();
        let [effect, ops, resource] = parts[..] else {
            panic!("grant `{grant}`: expected `EFFECT OPERATIONS RESOURCE`");
        };
        let ops = match effect {
            "role" => format!("role = \"{ops}\""),
            "allow" | "deny" => {
                let list: Vec<String> = ops.split(',').map(|o| format!("\"{o}\"")).collect();
                format!("{effect} = [{}]", list.join(", "))
            }
            other => panic!("grant `{grant}`: unknown effect `{other}`"),
        };
        write!(
            toml,
            "\n[[pools.grants]]\n{ops}\nresource = \"{resource}\"\n"
        )
        .unwrap();
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let issuer = TestIssuer::start_with(IssuerConfig {
            signing: vec![SigningAlg::ES256],
            ..IssuerConfig::default()
        })
        .await
        .unwrap();
        let text = format!(
            r#"
[[providers]]
id = "idp"
issuer = "{iss}"
discovery_url = "{disc}"
audiences = ["kafka"]
insecure_allow_http = true

[[pools]]
id = "pool-test"
provider = "idp"
{toml}"#,
            iss = issuer.issuer(),
            disc = issuer.discovery_url(),
        );
        let config = Config::parse(&text, "test.toml", Path::new("."))
            .unwrap_or_else(|e| panic!("{text}\n{e:?}"));
        let gate = Gate::start(config).await.expect("gate starts");
        let first = ClientFirstMessage::new(issuer.mint().sign())
            .build()
            .unwrap();
        let session = gate
            .authenticate(&first.to_bytes())
            .await
            .unwrap_or_else(|r| panic!("login refused: {}", r.code()));
        assert_eq!(session.pools(), ["pool-test"]);
        Arc::new(session)
    })
}

/// The session most tests use. Allowed: Write, Describe on `orders-*` (hence IdempotentWrite
/// on the cluster); Read, Describe on `events-*` but not Read on `events-audit`; Create,
/// Delete, DescribeConfigs, AlterConfigs on `scratch-*`; Read, Describe on groups `app-*`;
/// Delete on groups `app-tmp-*`; Write on transactional id `txn-app`. Nothing on `secret*`,
/// groups `other*`, other transactional ids, or the cluster.
fn app() -> Arc<Session> {
    session_with(&[
        "role DeveloperWrite Topic:orders-*",
        "role DeveloperRead Topic:events-*",
        "deny Read Topic:events-audit",
        "allow Create,Delete,DescribeConfigs,AlterConfigs Topic:scratch-*",
        "role DeveloperRead Group:app-*",
        "allow Delete Group:app-tmp-*",
        "allow Write TransactionalId:txn-app",
    ])
}

/// A cluster administrator of sorts: Create, Describe, DescribeConfigs and AlterConfigs on the
/// cluster, nothing on topics or groups.
fn cluster_admin() -> Arc<Session> {
    session_with(&["allow Create,Describe,DescribeConfigs,AlterConfigs Cluster:kafka-cluster"])
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

fn topic(v: &str) -> TopicName {
    TopicName(s(v))
}

fn group(v: &str) -> GroupId {
    GroupId(s(v))
}

fn denial(operation: Operation, resource: &str) -> Denial {
    denial_for(operation, resource, Reason::NotAuthorized)
}

fn denial_for(operation: Operation, resource: &str, reason: Reason) -> Denial {
    Denial {
        operation,
        resource: resource.to_owned(),
        reason,
    }
}

/// The versions offered for each checked API, written as the README's enforcement table lists
/// them (never computed from the code's table: `the_checked_versions_are_the_readmes` compares).
const OFFERED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 9),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 10),
    (ApiKey::Metadata, 4, 12),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 7),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 6),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 5),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::DescribeCluster, 0, 2),
    (ApiKey::AddPartitionsToTxn, 0, 3),
    (ApiKey::AddOffsetsToTxn, 0, 4),
    (ApiKey::EndTxn, 0, 5),
    (ApiKey::TxnOffsetCommit, 0, 5),
];

/// The versions of `api` offered, from [`OFFERED`].
fn versions(api: ApiKey) -> RangeInclusive<i16> {
    let &(_, lo, hi) = OFFERED
        .iter()
        .find(|(k, ..)| *k == api)
        .unwrap_or_else(|| panic!("{api:?} is not a checked API"));
    lo..=hi
}

fn encode<T: Encodable>(body: &T, version: i16) -> Bytes {
    let mut out = BytesMut::new();
    body.encode(&mut out, version)
        .unwrap_or_else(|e| panic!("encoding at v{version}: {e}"));
    out.freeze()
}

/// A request frame payload (header and body, no length prefix), parsed.
fn request<T: Encodable>(api: ApiKey, version: i16, body: &T) -> Request {
    let mut out = BytesMut::new();
    let mut header = RequestHeader::default();
    header.request_api_key = api as i16;
    header.request_api_version = version;
    header.correlation_id = CORRELATION_ID;
    header.client_id = Some(s("acl-tests"));
    header
        .encode(&mut out, api.request_header_version(version))
        .unwrap();
    body.encode(&mut out, version)
        .unwrap_or_else(|e| panic!("encoding {api:?} v{version}: {e}"));
    Request::parse(out.freeze()).expect("request parses")
}

/// Every node at the gateway's one address, as most tests of the per-API checks expect; the
/// per-node rewriting has its own tests (`cluster.rs`, `addresses.rs`).
struct OneAddress;

impl Nodes for OneAddress {
    fn advertise(&self, _id: i32) -> Option<(StrBytes, i32)> {
        Some((StrBytes::from_static_str(GW_HOST), GW_PORT))
    }
    fn seen(&self, _id: i32, _host: &str, _port: i32) {}
    fn unmapped(&self, _id: i32) {}
}

fn nodes() -> Arc<dyn Nodes> {
    Arc::new(OneAddress)
}

fn run(session: &Arc<Session>, req: &Request) -> (Verdict, Vec<Denial>) {
    run_with(session, req, false)
}

fn run_with(session: &Arc<Session>, req: &Request, pass_through: bool) -> (Verdict, Vec<Denial>) {
    let nodes = nodes();
    let cx = Context {
        session,
        nodes: &nodes,
        pass_through,
    };
    let mut denials = Vec::new();
    match check(req, &cx, &mut denials) {
        Ok(v) => (v, denials),
        Err(e) => panic!("{:?} v{}: check failed: {e}", req.api, req.version()),
    }
}

fn kind(v: &Verdict) -> String {
    match v {
        Verdict::Forward {
            frame,
            patch,
            respond,
        } => format!(
            "Forward {{ frame: {}, patch: {}, respond: {respond} }}",
            if frame.is_some() { "Some" } else { "None" },
            if patch.is_some() { "Some" } else { "None" },
        ),
        Verdict::Answer(Some(_)) => "Answer(Some)".to_owned(),
        Verdict::Answer(None) => "Answer(None)".to_owned(),
        Verdict::Unsupported => "Unsupported".to_owned(),
    }
}

struct Forwarded {
    frame: Option<Bytes>,
    patch: Option<Patch>,
    respond: bool,
}

fn forwarded(v: Verdict) -> Forwarded {
    match v {
        Verdict::Forward {
            frame,
            patch,
            respond,
        } => Forwarded {
            frame,
            patch,
            respond,
        },
        other => panic!("expected Forward, got {}", kind(&other)),
    }
}

/// Forwarded as received: no new frame, no patch, a response expected.
fn assert_untouched(v: Verdict) {
    let f = forwarded(v);
    assert!(f.frame.is_none(), "the request is forwarded as received");
    assert!(f.patch.is_none(), "the response is not edited");
    assert!(f.respond);
}

fn answered(v: Verdict) -> Option<Bytes> {
    match v {
        Verdict::Answer(frame) => frame,
        other => panic!("expected Answer, got {}", kind(&other)),
    }
}

/// Decodes a re-encoded request frame (with its length prefix): same header bytes as the
/// original, a body of the original's API and version.
fn decode_forwarded<T: Decodable>(frame: &Bytes, original: &Request) -> T {
    let len = i32::from_be_bytes(frame[..4].try_into().unwrap());
    assert_eq!(
        usize::try_from(len).unwrap(),
        frame.len() - 4,
        "length prefix"
    );
    let header_len = original.frame.len() - original.body.len();
    assert_eq!(
        &frame[4..4 + header_len],
        &original.frame[..header_len],
        "the header is kept as received"
    );
    let req = Request::parse(frame.slice(4..)).expect("forwarded frame parses");
    assert_eq!(req.api, original.api);
    assert_eq!(req.version(), original.version());
    let mut body = req.body.clone();
    let out = T::decode(&mut body, req.version()).expect("forwarded body decodes");
    assert!(body.is_empty(), "no trailing bytes in the forwarded body");
    out
}

/// Decodes a locally made response frame (with its length prefix) for `req`.
fn decode_answer<T: Decodable>(frame: &Bytes, req: &Request) -> T {
    let len = i32::from_be_bytes(frame[..4].try_into().unwrap());
    assert_eq!(
        usize::try_from(len).unwrap(),
        frame.len() - 4,
        "length prefix"
    );
    let (correlation_id, mut body) =
        split_response(req.api, req.version(), frame.slice(4..)).expect("response header");
    assert_eq!(correlation_id, CORRELATION_ID);
    let out = T::decode(&mut body, req.version()).expect("response body decodes");
    assert!(body.is_empty(), "no trailing bytes in the response");
    out
}

/// The answer to `req`: the verdict must be `Answer(Some(..))`.
fn answer_of<T: Decodable>(v: Verdict, req: &Request) -> T {
    let frame = answered(v).expect("a response frame");
    decode_answer(&frame, req)
}

/// Runs an upstream response through `patch`, as the connection does.
fn patched<T: Encodable + Decodable>(patch: Patch, version: i16, upstream: &T) -> T {
    let out = patch(version, encode(upstream, version)).expect("the patch applies");
    let mut body = out;
    let t = T::decode(&mut body, version).expect("the patched response decodes");
    assert!(body.is_empty(), "no trailing bytes in the patched response");
    t
}

// ---------------------------------------------------------------------------------------------
// Topic rows: the shape every partitioned request and response shares

/// Per topic, each partition with its error code, in order.
type PartitionCodes = Vec<(String, Vec<(i32, i16)>)>;

/// One row per `(topic, partitions)` of `topics`, built by `row` from the topic's name and its
/// partitions, each partition built by `part` from the topic's name and the partition index.
fn rows<T, P>(
    topics: &[(&str, &[i32])],
    row: impl Fn(TopicName, Vec<P>) -> T,
    part: impl Fn(&str, i32) -> P,
) -> Vec<T> {
    topics
        .iter()
        .map(|&(name, parts)| row(topic(name), parts.iter().map(|&p| part(name, p)).collect()))
        .collect()
}

/// The error code of every partition of every topic row: `partitions` gives a row's name and
/// partitions, `code` a partition's index and error code.
fn codes<'a, T, P: 'a>(
    rows: &'a [T],
    partitions: impl Fn(&'a T) -> (&'a TopicName, &'a [P]),
    code: impl Fn(&P) -> (i32, i16),
) -> PartitionCodes {
    rows.iter()
        .map(|t| {
            let (name, parts) = partitions(t);
            (name.0.to_string(), parts.iter().map(&code).collect())
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Request and response builders

fn produce(acks: i16, topics: &[(&str, &[i32])]) -> ProduceRequest {
    let mut r = ProduceRequest::default();
    r.acks = acks;
    r.timeout_ms = 1500;
    r.topic_data = rows(
        topics,
        |name, parts| {
            TopicProduceData::default()
                .with_name(name)
                .with_partition_data(parts)
        },
        |name, p| {
            PartitionProduceData::default()
                .with_index(p)
                .with_records(Some(records_for(name, p)))
        },
    );
    r
}

/// Kafka's v2 record batch attributes (DefaultRecordBatch).
const GZIP: i16 = 0x01;
const ZSTD: i16 = 0x04;
const TRANSACTIONAL: i16 = 0x10;
const CONTROL: i16 = 0x20;

/// A v2 record batch as a client writes it: the 61-byte header (DefaultRecordBatch) with
/// `attributes`, then `payload` standing for its records (the gateway never reads them; with
/// a compression bit set they stand for compressed bytes). The CRC is left at zero: the broker
/// checks it, the gateway does not.
fn batch(attributes: i16, payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(0i64.to_be_bytes()); // baseOffset
    b.extend(i32::try_from(49 + payload.len()).unwrap().to_be_bytes()); // batchLength
    b.extend(0i32.to_be_bytes()); // partitionLeaderEpoch
    b.push(2); // magic
    b.extend(0u32.to_be_bytes()); // crc
    b.extend(attributes.to_be_bytes());
    b.extend(0i32.to_be_bytes()); // lastOffsetDelta
    b.extend(0i64.to_be_bytes()); // baseTimestamp
    b.extend(0i64.to_be_bytes()); // maxTimestamp
    let producer_id: i64 = if attributes & TRANSACTIONAL == 0 {
        -1
    } else {
        4000
    };
    b.extend(producer_id.to_be_bytes());
    b.extend(0i16.to_be_bytes()); // producerEpoch
    b.extend(0i32.to_be_bytes()); // baseSequence
    b.extend(1i32.to_be_bytes()); // recordsCount
    b.extend_from_slice(payload);
    assert_eq!(b.len(), 61 + payload.len());
    b
}

/// The records `produce` sends to `name`/`p`: one plain batch naming them.
fn records_for(name: &str, p: i32) -> Bytes {
    Bytes::from(batch(0, format!("{name}/{p}").as_bytes()))
}

/// `produce` with every partition's records replaced by `records`.
fn produce_records(acks: i16, topics: &[(&str, &[i32])], records: &[u8]) -> ProduceRequest {
    let mut r = produce(acks, topics);
    for p in r.topic_data.iter_mut().flat_map(|t| &mut t.partition_data) {
        p.records = Some(Bytes::copy_from_slice(records));
    }
    r
}

fn produce_ok(topics: &[(&str, &[i32])]) -> ProduceResponse {
    let mut r = ProduceResponse::default();
    r.responses = rows(
        topics,
        |name, parts| {
            TopicProduceResponse::default()
                .with_name(name)
                .with_partition_responses(parts)
        },
        |_, p| {
            PartitionProduceResponse::default()
                .with_index(p)
                .with_base_offset(1000 + i64::from(p))
        },
    );
    r
}

/// `(topic, [(partition, error)])` of a produce response, in order.
fn produce_codes(r: &ProduceResponse) -> PartitionCodes {
    codes(
        &r.responses,
        |t| (&t.name, t.partition_responses.as_slice()),
        |p| (p.index, p.error_code),
    )
}

fn fetch(topics: &[(&str, &[i32])]) -> FetchRequest {
    let mut r = FetchRequest::default();
    r.replica_id = BrokerId(-1);
    r.max_wait_ms = 500;
    r.min_bytes = 1;
    r.max_bytes = 1 << 20;
    r.topics = rows(
        topics,
        |name, parts| {
            FetchTopic::default()
                .with_topic(name)
                .with_partitions(parts)
        },
        |_, p| {
            FetchPartition::default()
                .with_partition(p)
                .with_fetch_offset(10)
                .with_partition_max_bytes(1 << 16)
        },
    );
    r
}

fn fetch_ok(topics: &[(&str, &[i32])]) -> FetchResponse {
    let mut r = FetchResponse::default();
    r.responses = rows(
        topics,
        |name, parts| {
            FetchableTopicResponse::default()
                .with_topic(name)
                .with_partitions(parts)
        },
        |_, p| {
            PartitionData::default()
                .with_partition_index(p)
                .with_high_watermark(50)
                .with_records(Some(Bytes::from_static(b"records")))
        },
    );
    r
}

fn fetch_codes(r: &FetchResponse) -> PartitionCodes {
    codes(
        &r.responses,
        |t| (&t.topic, t.partitions.as_slice()),
        |p| (p.partition_index, p.error_code),
    )
}

fn list_offsets(topics: &[(&str, &[i32])]) -> ListOffsetsRequest {
    let mut r = ListOffsetsRequest::default();
    r.replica_id = BrokerId(-1);
    r.topics = rows(
        topics,
        |name, parts| {
            ListOffsetsTopic::default()
                .with_name(name)
                .with_partitions(parts)
        },
        |_, p| {
            ListOffsetsPartition::default()
                .with_partition_index(p)
                .with_timestamp(-1)
        },
    );
    r
}

fn list_offsets_codes(r: &ListOffsetsResponse) -> PartitionCodes {
    codes(
        &r.topics,
        |t| (&t.name, t.partitions.as_slice()),
        |p| (p.partition_index, p.error_code),
    )
}

fn metadata(topics: Option<&[&str]>, auto_create: bool) -> MetadataRequest {
    let mut r = MetadataRequest::default();
    r.topics = topics.map(|ts| {
        ts.iter()
            .map(|t| MetadataRequestTopic::default().with_name(Some(topic(t))))
            .collect()
    });
    r.allow_auto_topic_creation = auto_create;
    r
}

/// A broker's answer: two brokers on internal addresses and `topics` with one partition each.
fn metadata_ok(topics: &[&str]) -> MetadataResponse {
    let mut r = MetadataResponse::default();
    r.brokers = vec![
        MetadataResponseBroker::default()
            .with_node_id(BrokerId(1))
            .with_host(s("broker-1.internal"))
            .with_port(9092)
            .with_rack(Some(s("rack-a"))),
        MetadataResponseBroker::default()
            .with_node_id(BrokerId(2))
            .with_host(s("broker-2.internal"))
            .with_port(9093),
    ];
    r.cluster_id = Some(s("cluster-x"));
    r.controller_id = BrokerId(1);
    r.topics = topics
        .iter()
        .map(|t| {
            MetadataResponseTopic::default()
                .with_name(Some(topic(t)))
                .with_partitions(vec![
                    MetadataResponsePartition::default()
                        .with_partition_index(0)
                        .with_leader_id(BrokerId(1))
                        .with_replica_nodes(vec![BrokerId(1), BrokerId(2)])
                        .with_isr_nodes(vec![BrokerId(1), BrokerId(2)]),
                ])
        })
        .collect();
    r
}

fn metadata_topics(r: &MetadataResponse) -> Vec<(String, i16)> {
    r.topics
        .iter()
        .map(|t| {
            (
                t.name
                    .as_ref()
                    .map_or("<null>".to_owned(), |n| n.0.to_string()),
                t.error_code,
            )
        })
        .collect()
}

fn assert_brokers_rewritten(brokers: &[MetadataResponseBroker]) {
    assert_eq!(brokers.len(), 2, "every broker is kept");
    for b in brokers {
        assert_eq!(b.host.as_str(), GW_HOST);
        assert_eq!(b.port, GW_PORT);
    }
    assert_eq!(brokers[0].node_id, BrokerId(1), "node ids are kept");
    assert_eq!(brokers[1].node_id, BrokerId(2));
}

fn find_coordinator(version: i16, key_type: i8, keys: &[&str]) -> FindCoordinatorRequest {
    let mut r = FindCoordinatorRequest::default();
    if version < 4 {
        r.key = s(keys[0]);
        r.key_type = key_type;
    } else {
        r.key_type = key_type;
        r.coordinator_keys = keys.iter().map(|k| s(k)).collect();
    }
    r
}

fn coordinator(key: &str, node: i32, host: &str, port: i32) -> Coordinator {
    Coordinator::default()
        .with_key(s(key))
        .with_node_id(BrokerId(node))
        .with_host(s(host))
        .with_port(port)
}

fn join_group(group_id: &str) -> JoinGroupRequest {
    let mut r = JoinGroupRequest::default();
    r.group_id = group(group_id);
    r.session_timeout_ms = 10_000;
    r.protocol_type = s("consumer");
    r.protocols = vec![
        JoinGroupRequestProtocol::default()
            .with_name(s("range"))
            .with_metadata(Bytes::from_static(b"subscription")),
    ];
    r
}

fn heartbeat(group_id: &str) -> HeartbeatRequest {
    let mut r = HeartbeatRequest::default();
    r.group_id = group(group_id);
    r.generation_id = 3;
    r.member_id = s("member-1");
    r
}

fn sync_group(group_id: &str) -> SyncGroupRequest {
    let mut r = SyncGroupRequest::default();
    r.group_id = group(group_id);
    r.generation_id = 3;
    r.member_id = s("member-1");
    r
}

fn leave_group(group_id: &str, version: i16) -> LeaveGroupRequest {
    let mut r = LeaveGroupRequest::default();
    r.group_id = group(group_id);
    if version < 3 {
        r.member_id = s("member-1");
    } else {
        r.members = vec![MemberIdentity::default().with_member_id(s("member-1"))];
    }
    r
}

fn offset_commit(group_id: &str, topics: &[(&str, &[i32])]) -> OffsetCommitRequest {
    let mut r = OffsetCommitRequest::default();
    r.group_id = group(group_id);
    r.generation_id_or_member_epoch = 3;
    r.member_id = s("member-1");
    r.topics = rows(
        topics,
        |name, parts| {
            OffsetCommitRequestTopic::default()
                .with_name(name)
                .with_partitions(parts)
        },
        |_, p| {
            OffsetCommitRequestPartition::default()
                .with_partition_index(p)
                .with_committed_offset(100)
        },
    );
    r
}

fn offset_commit_ok(topics: &[(&str, &[i32])]) -> OffsetCommitResponse {
    let mut r = OffsetCommitResponse::default();
    r.topics = rows(
        topics,
        |name, parts| {
            OffsetCommitResponseTopic::default()
                .with_name(name)
                .with_partitions(parts)
        },
        |_, p| OffsetCommitResponsePartition::default().with_partition_index(p),
    );
    r
}

fn offset_commit_codes(r: &OffsetCommitResponse) -> PartitionCodes {
    codes(
        &r.topics,
        |t| (&t.name, t.partitions.as_slice()),
        |p| (p.partition_index, p.error_code),
    )
}

fn offset_fetch(group_id: &str, topics: Option<&[(&str, &[i32])]>) -> OffsetFetchRequest {
    let mut r = OffsetFetchRequest::default();
    r.group_id = group(group_id);
    r.topics = topics.map(|ts| {
        ts.iter()
            .map(|(name, parts)| {
                OffsetFetchRequestTopic::default()
                    .with_name(topic(name))
                    .with_partition_indexes(parts.to_vec())
            })
            .collect()
    });
    r
}

fn offset_fetch_ok(topics: &[(&str, &[i32])]) -> OffsetFetchResponse {
    let mut r = OffsetFetchResponse::default();
    r.topics = rows(
        topics,
        |name, parts| {
            OffsetFetchResponseTopic::default()
                .with_name(name)
                .with_partitions(parts)
        },
        |_, p| {
            OffsetFetchResponsePartition::default()
                .with_partition_index(p)
                .with_committed_offset(77)
        },
    );
    r
}

fn offset_fetch_codes(r: &OffsetFetchResponse) -> PartitionCodes {
    codes(
        &r.topics,
        |t| (&t.name, t.partitions.as_slice()),
        |p| (p.partition_index, p.error_code),
    )
}

fn describe_groups(groups: &[&str]) -> DescribeGroupsRequest {
    let mut r = DescribeGroupsRequest::default();
    r.groups = groups.iter().map(|g| group(g)).collect();
    r
}

fn described(group_id: &str) -> DescribedGroup {
    DescribedGroup::default()
        .with_group_id(group(group_id))
        .with_group_state(s("Stable"))
        .with_protocol_type(s("consumer"))
        .with_protocol_data(s("range"))
}

fn delete_groups(groups: &[&str]) -> DeleteGroupsRequest {
    let mut r = DeleteGroupsRequest::default();
    r.groups_names = groups.iter().map(|g| group(g)).collect();
    r
}

fn create_topics(names: &[&str]) -> CreateTopicsRequest {
    let mut r = CreateTopicsRequest::default();
    r.timeout_ms = 5000;
    r.topics = names
        .iter()
        .map(|n| {
            CreatableTopic::default()
                .with_name(topic(n))
                .with_num_partitions(3)
                .with_replication_factor(1)
        })
        .collect();
    r
}

fn delete_topics(names: &[&str]) -> DeleteTopicsRequest {
    let mut r = DeleteTopicsRequest::default();
    r.timeout_ms = 5000;
    r.topic_names = names.iter().map(|n| topic(n)).collect();
    r
}

const CONFIG_TOPIC: i8 = 2;
const CONFIG_BROKER: i8 = 4;
const CONFIG_BROKER_LOGGER: i8 = 8;

fn describe_configs(resources: &[(i8, &str)]) -> DescribeConfigsRequest {
    let mut r = DescribeConfigsRequest::default();
    r.resources = resources
        .iter()
        .map(|&(t, n)| {
            DescribeConfigsResource::default()
                .with_resource_type(t)
                .with_resource_name(s(n))
                .with_configuration_keys(None)
        })
        .collect();
    r
}

fn incremental_alter_configs(resources: &[(i8, &str)]) -> IncrementalAlterConfigsRequest {
    let mut r = IncrementalAlterConfigsRequest::default();
    r.resources = resources
        .iter()
        .map(|&(t, n)| {
            AlterConfigsResource::default()
                .with_resource_type(t)
                .with_resource_name(s(n))
                .with_configs(vec![
                    AlterableConfig::default()
                        .with_name(s("retention.ms"))
                        .with_config_operation(0)
                        .with_value(Some(s("1000"))),
                ])
        })
        .collect();
    r
}

fn alter_configs(resources: &[(i8, &str)]) -> AlterConfigsRequest {
    let mut r = AlterConfigsRequest::default();
    r.resources = resources
        .iter()
        .map(|&(t, n)| {
            AlterConfigsRequestResource::default()
                .with_resource_type(t)
                .with_resource_name(s(n))
                .with_configs(vec![
                    AlterConfigsRequestConfig::default()
                        .with_name(s("retention.ms"))
                        .with_value(Some(s("1000"))),
                ])
        })
        .collect();
    r
}

fn init_producer_id(transactional_id: Option<&str>) -> InitProducerIdRequest {
    let mut r = InitProducerIdRequest::default();
    r.transactional_id = transactional_id.map(|t| TransactionalId(s(t)));
    r.transaction_timeout_ms = 60_000;
    r
}

fn add_partitions_to_txn(txn: &str, topics: &[(&str, &[i32])]) -> AddPartitionsToTxnRequest {
    let mut r = AddPartitionsToTxnRequest::default();
    r.v3_and_below_transactional_id = TransactionalId(s(txn));
    r.v3_and_below_producer_id = ProducerId(7);
    r.v3_and_below_topics = topics
        .iter()
        .map(|(name, parts)| {
            let mut t = AddPartitionsToTxnTopic::default();
            t.name = topic(name);
            t.partitions = parts.to_vec();
            t
        })
        .collect();
    r
}

fn add_offsets_to_txn(txn: &str, group_id: &str) -> AddOffsetsToTxnRequest {
    let mut r = AddOffsetsToTxnRequest::default();
    r.transactional_id = TransactionalId(s(txn));
    r.group_id = group(group_id);
    r
}

fn end_txn(txn: &str) -> EndTxnRequest {
    let mut r = EndTxnRequest::default();
    r.transactional_id = TransactionalId(s(txn));
    r.committed = true;
    r
}

fn txn_offset_commit(
    txn: &str,
    group_id: &str,
    topics: &[(&str, &[i32])],
) -> TxnOffsetCommitRequest {
    let mut r = TxnOffsetCommitRequest::default();
    r.transactional_id = TransactionalId(s(txn));
    r.group_id = group(group_id);
    r.topics = rows(
        topics,
        |name, parts| {
            let mut t = TxnOffsetCommitRequestTopic::default();
            t.name = name;
            t.partitions = parts;
            t
        },
        |_, p| {
            let mut d = TxnOffsetCommitRequestPartition::default();
            d.partition_index = p;
            d.committed_offset = 10;
            d
        },
    );
    r
}

/// A representative request of each checked API at `version`, naming at least one resource
/// the `app()` session may use and one it may not.
fn sample(api: ApiKey, version: i16) -> Request {
    match api {
        ApiKey::Produce => request(
            api,
            version,
            &produce(-1, &[("orders-eu", &[0, 1]), ("secret", &[2])]),
        ),
        ApiKey::Fetch => request(
            api,
            version,
            &fetch(&[("events-a", &[0]), ("secret", &[1, 2])]),
        ),
        ApiKey::ListOffsets => request(
            api,
            version,
            &list_offsets(&[("events-a", &[0]), ("secret", &[1])]),
        ),
        ApiKey::Metadata => request(api, version, &metadata(Some(&["events-a", "secret"]), true)),
        ApiKey::OffsetCommit => request(
            api,
            version,
            &offset_commit("app-1", &[("events-a", &[0]), ("secret", &[1])]),
        ),
        ApiKey::OffsetFetch => request(
            api,
            version,
            &offset_fetch("app-1", Some(&[("events-a", &[0]), ("secret", &[1])])),
        ),
        ApiKey::FindCoordinator => request(
            api,
            version,
            &find_coordinator(version, 0, &["other-1", "app-1"]),
        ),
        ApiKey::JoinGroup => request(api, version, &join_group("other-1")),
        ApiKey::Heartbeat => request(api, version, &heartbeat("other-1")),
        ApiKey::LeaveGroup => request(api, version, &leave_group("other-1", version)),
        ApiKey::SyncGroup => request(api, version, &sync_group("other-1")),
        ApiKey::DescribeGroups => request(api, version, &describe_groups(&["app-1", "other-1"])),
        ApiKey::ListGroups => request(api, version, &ListGroupsRequest::default()),
        ApiKey::DeleteGroups => request(api, version, &delete_groups(&["app-tmp-1", "other-1"])),
        ApiKey::CreateTopics => request(api, version, &create_topics(&["scratch-1", "secret"])),
        ApiKey::DeleteTopics => request(api, version, &delete_topics(&["scratch-1", "secret"])),
        ApiKey::DescribeConfigs => request(
            api,
            version,
            &describe_configs(&[(CONFIG_TOPIC, "scratch-1"), (CONFIG_BROKER, "1")]),
        ),
        ApiKey::AlterConfigs => request(
            api,
            version,
            &alter_configs(&[(CONFIG_TOPIC, "scratch-1"), (CONFIG_TOPIC, "secret")]),
        ),
        ApiKey::IncrementalAlterConfigs => request(
            api,
            version,
            &incremental_alter_configs(&[(CONFIG_TOPIC, "scratch-1"), (CONFIG_BROKER, "1")]),
        ),
        ApiKey::InitProducerId => request(api, version, &init_producer_id(Some("txn-other"))),
        ApiKey::DescribeCluster => request(api, version, &DescribeClusterRequest::default()),
        ApiKey::AddPartitionsToTxn => request(
            api,
            version,
            &add_partitions_to_txn("txn-app", &[("orders-eu", &[0]), ("secret", &[1])]),
        ),
        ApiKey::AddOffsetsToTxn => request(api, version, &add_offsets_to_txn("txn-app", "other-1")),
        ApiKey::EndTxn => request(api, version, &end_txn("txn-other")),
        ApiKey::TxnOffsetCommit => request(
            api,
            version,
            &txn_offset_commit("txn-app", "app-1", &[("events-a", &[0]), ("secret", &[1])]),
        ),
        other => panic!("no sample for {other:?}"),
    }
}

mod apis;
mod cluster;
mod fetch;
mod groups;
mod malformed;
mod offsets;
mod produce;
mod split;
mod txn;
