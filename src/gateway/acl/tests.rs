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
    Context, Denial, Patch, Reason, Verdict, advertised_versions, check, checked, checked_range,
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

fn run(session: &Arc<Session>, req: &Request) -> (Verdict, Vec<Denial>) {
    run_with(session, req, false)
}

fn run_with(session: &Arc<Session>, req: &Request, pass_through: bool) -> (Verdict, Vec<Denial>) {
    let advertised = (StrBytes::from_static_str(GW_HOST), GW_PORT);
    let cx = Context {
        session,
        advertised: &advertised,
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
// Request and response builders

fn produce(acks: i16, topics: &[(&str, &[i32])]) -> ProduceRequest {
    let mut r = ProduceRequest::default();
    r.acks = acks;
    r.timeout_ms = 1500;
    r.topic_data = topics
        .iter()
        .map(|(name, parts)| {
            TopicProduceData::default()
                .with_name(topic(name))
                .with_partition_data(
                    parts
                        .iter()
                        .map(|&p| {
                            PartitionProduceData::default()
                                .with_index(p)
                                .with_records(Some(records_for(name, p)))
                        })
                        .collect(),
                )
        })
        .collect();
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
    r.responses = topics
        .iter()
        .map(|(name, parts)| {
            TopicProduceResponse::default()
                .with_name(topic(name))
                .with_partition_responses(
                    parts
                        .iter()
                        .map(|&p| {
                            PartitionProduceResponse::default()
                                .with_index(p)
                                .with_base_offset(1000 + i64::from(p))
                        })
                        .collect(),
                )
        })
        .collect();
    r
}

/// `(topic, [(partition, error)])` of a produce response, in order.
fn produce_codes(r: &ProduceResponse) -> Vec<(String, Vec<(i32, i16)>)> {
    r.responses
        .iter()
        .map(|t| {
            (
                t.name.0.to_string(),
                t.partition_responses
                    .iter()
                    .map(|p| (p.index, p.error_code))
                    .collect(),
            )
        })
        .collect()
}

fn fetch(topics: &[(&str, &[i32])]) -> FetchRequest {
    let mut r = FetchRequest::default();
    r.replica_id = BrokerId(-1);
    r.max_wait_ms = 500;
    r.min_bytes = 1;
    r.max_bytes = 1 << 20;
    r.topics = topics
        .iter()
        .map(|(name, parts)| {
            FetchTopic::default()
                .with_topic(topic(name))
                .with_partitions(
                    parts
                        .iter()
                        .map(|&p| {
                            FetchPartition::default()
                                .with_partition(p)
                                .with_fetch_offset(10)
                                .with_partition_max_bytes(1 << 16)
                        })
                        .collect(),
                )
        })
        .collect();
    r
}

fn fetch_ok(topics: &[(&str, &[i32])]) -> FetchResponse {
    let mut r = FetchResponse::default();
    r.responses = topics
        .iter()
        .map(|(name, parts)| {
            FetchableTopicResponse::default()
                .with_topic(topic(name))
                .with_partitions(
                    parts
                        .iter()
                        .map(|&p| {
                            PartitionData::default()
                                .with_partition_index(p)
                                .with_high_watermark(50)
                                .with_records(Some(Bytes::from_static(b"records")))
                        })
                        .collect(),
                )
        })
        .collect();
    r
}

fn fetch_codes(r: &FetchResponse) -> Vec<(String, Vec<(i32, i16)>)> {
    r.responses
        .iter()
        .map(|t| {
            (
                t.topic.0.to_string(),
                t.partitions
                    .iter()
                    .map(|p| (p.partition_index, p.error_code))
                    .collect(),
            )
        })
        .collect()
}

fn list_offsets(topics: &[(&str, &[i32])]) -> ListOffsetsRequest {
    let mut r = ListOffsetsRequest::default();
    r.replica_id = BrokerId(-1);
    r.topics = topics
        .iter()
        .map(|(name, parts)| {
            ListOffsetsTopic::default()
                .with_name(topic(name))
                .with_partitions(
                    parts
                        .iter()
                        .map(|&p| {
                            ListOffsetsPartition::default()
                                .with_partition_index(p)
                                .with_timestamp(-1)
                        })
                        .collect(),
                )
        })
        .collect();
    r
}

fn list_offsets_codes(r: &ListOffsetsResponse) -> Vec<(String, Vec<(i32, i16)>)> {
    r.topics
        .iter()
        .map(|t| {
            (
                t.name.0.to_string(),
                t.partitions
                    .iter()
                    .map(|p| (p.partition_index, p.error_code))
                    .collect(),
            )
        })
        .collect()
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
    r.topics = topics
        .iter()
        .map(|(name, parts)| {
            OffsetCommitRequestTopic::default()
                .with_name(topic(name))
                .with_partitions(
                    parts
                        .iter()
                        .map(|&p| {
                            OffsetCommitRequestPartition::default()
                                .with_partition_index(p)
                                .with_committed_offset(100)
                        })
                        .collect(),
                )
        })
        .collect();
    r
}

fn offset_commit_ok(topics: &[(&str, &[i32])]) -> OffsetCommitResponse {
    let mut r = OffsetCommitResponse::default();
    r.topics = topics
        .iter()
        .map(|(name, parts)| {
            OffsetCommitResponseTopic::default()
                .with_name(topic(name))
                .with_partitions(
                    parts
                        .iter()
                        .map(|&p| OffsetCommitResponsePartition::default().with_partition_index(p))
                        .collect(),
                )
        })
        .collect();
    r
}

fn offset_commit_codes(r: &OffsetCommitResponse) -> Vec<(String, Vec<(i32, i16)>)> {
    r.topics
        .iter()
        .map(|t| {
            (
                t.name.0.to_string(),
                t.partitions
                    .iter()
                    .map(|p| (p.partition_index, p.error_code))
                    .collect(),
            )
        })
        .collect()
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
    r.topics = topics
        .iter()
        .map(|(name, parts)| {
            OffsetFetchResponseTopic::default()
                .with_name(topic(name))
                .with_partitions(
                    parts
                        .iter()
                        .map(|&p| {
                            OffsetFetchResponsePartition::default()
                                .with_partition_index(p)
                                .with_committed_offset(77)
                        })
                        .collect(),
                )
        })
        .collect();
    r
}

fn offset_fetch_codes(r: &OffsetFetchResponse) -> Vec<(String, Vec<(i32, i16)>)> {
    r.topics
        .iter()
        .map(|t| {
            (
                t.name.0.to_string(),
                t.partitions
                    .iter()
                    .map(|p| (p.partition_index, p.error_code))
                    .collect(),
            )
        })
        .collect()
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

// ---------------------------------------------------------------------------------------------
// Produce

#[test]
fn produce_with_every_topic_allowed_is_forwarded_untouched() {
    let session = app();
    for version in versions(ApiKey::Produce) {
        let req = request(
            ApiKey::Produce,
            version,
            &produce(-1, &[("orders-eu", &[0, 1]), ("orders-us", &[0])]),
        );
        let (verdict, denials) = run(&session, &req);
        assert_untouched(verdict);
        assert!(denials.is_empty(), "{denials:?}");
    }
}

#[test]
fn produce_partly_refused_forwards_the_allowed_topic_and_merges_29() {
    let session = app();
    for version in versions(ApiKey::Produce) {
        let req = request(
            ApiKey::Produce,
            version,
            &produce(
                -1,
                &[
                    ("secret", &[2, 3]),
                    ("orders-eu", &[0, 1]),
                    ("events-a", &[0]),
                ],
            ),
        );
        let (verdict, denials) = run(&session, &req);
        assert_eq!(
            denials,
            [
                denial(Operation::Write, "Topic:secret"),
                denial(Operation::Write, "Topic:events-a"),
            ]
        );
        let f = forwarded(verdict);
        assert!(f.respond);
        let sent: ProduceRequest = decode_forwarded(&f.frame.expect("a re-encoded request"), &req);
        assert_eq!(sent.acks, -1);
        assert_eq!(sent.timeout_ms, 1500);
        assert_eq!(sent.topic_data.len(), 1, "v{version}");
        assert_eq!(sent.topic_data[0].name, topic("orders-eu"));
        let records: Vec<_> = sent.topic_data[0]
            .partition_data
            .iter()
            .map(|p| (p.index, p.records.clone()))
            .collect();
        assert_eq!(
            records,
            [
                (0, Some(records_for("orders-eu", 0))),
                (1, Some(records_for("orders-eu", 1))),
            ],
            "the records are forwarded intact"
        );

        let resp = patched(
            f.patch.expect("a patch"),
            version,
            &produce_ok(&[("orders-eu", &[0, 1])]),
        );
        assert_eq!(
            produce_codes(&resp),
            [
                ("orders-eu".to_owned(), vec![(0, 0), (1, 0)]),
                (
                    "secret".to_owned(),
                    vec![(2, TOPIC_DENIED), (3, TOPIC_DENIED)]
                ),
                ("events-a".to_owned(), vec![(0, TOPIC_DENIED)]),
            ],
            "v{version}"
        );
        assert_eq!(resp.responses[0].partition_responses[1].base_offset, 1001);
        assert_eq!(resp.responses[1].partition_responses[0].base_offset, -1);
    }
}

#[test]
fn produce_with_every_topic_refused_is_answered_with_29_per_partition() {
    let session = app();
    for version in versions(ApiKey::Produce) {
        let req = request(
            ApiKey::Produce,
            version,
            &produce(-1, &[("secret", &[0, 1]), ("events-a", &[4])]),
        );
        let (verdict, denials) = run(&session, &req);
        assert_eq!(denials.len(), 2);
        let resp: ProduceResponse = answer_of(verdict, &req);
        assert_eq!(
            produce_codes(&resp),
            [
                (
                    "secret".to_owned(),
                    vec![(0, TOPIC_DENIED), (1, TOPIC_DENIED)]
                ),
                ("events-a".to_owned(), vec![(4, TOPIC_DENIED)]),
            ],
            "v{version}"
        );
        for p in resp.responses.iter().flat_map(|t| &t.partition_responses) {
            assert_eq!(p.base_offset, -1);
        }
    }
}

#[test]
fn produce_acks_0_gets_no_response_for_refused_topics() {
    let session = app();
    for version in versions(ApiKey::Produce) {
        // Everything refused: nothing forwarded, nothing answered.
        let req = request(ApiKey::Produce, version, &produce(0, &[("secret", &[0])]));
        let (verdict, denials) = run(&session, &req);
        assert!(answered(verdict).is_none(), "acks=0 gets no response");
        assert_eq!(denials, [denial(Operation::Write, "Topic:secret")]);

        // Partly refused: the allowed topic is forwarded, no response is awaited.
        let req = request(
            ApiKey::Produce,
            version,
            &produce(0, &[("secret", &[0]), ("orders-eu", &[1])]),
        );
        let (verdict, _) = run(&session, &req);
        let f = forwarded(verdict);
        assert!(!f.respond, "the broker does not answer acks=0");
        assert!(f.patch.is_none());
        let sent: ProduceRequest = decode_forwarded(&f.frame.expect("re-encoded"), &req);
        assert_eq!(sent.acks, 0);
        let names: Vec<_> = sent.topic_data.iter().map(|t| t.name.0.as_str()).collect();
        assert_eq!(names, ["orders-eu"]);

        // All allowed: forwarded as is, still without a response.
        let req = request(
            ApiKey::Produce,
            version,
            &produce(0, &[("orders-eu", &[1])]),
        );
        let f = forwarded(run(&session, &req).0);
        assert!(f.frame.is_none() && f.patch.is_none() && !f.respond);
    }
}

#[test]
fn produce_with_a_refused_transactional_id_fails_every_partition_with_53() {
    let session = app();
    for version in versions(ApiKey::Produce) {
        let mut body = produce(-1, &[("orders-eu", &[0, 1]), ("secret", &[2])]);
        body.transactional_id = Some(TransactionalId(s("txn-other")));
        let req = request(ApiKey::Produce, version, &body);
        let (verdict, denials) = run(&session, &req);
        assert_eq!(
            denials,
            [denial(Operation::Write, "TransactionalId:txn-other")]
        );
        let resp: ProduceResponse = answer_of(verdict, &req);
        assert_eq!(
            produce_codes(&resp),
            [
                (
                    "orders-eu".to_owned(),
                    vec![(0, TXN_DENIED), (1, TXN_DENIED)]
                ),
                ("secret".to_owned(), vec![(2, TXN_DENIED)]),
            ],
            "even the topics the session may write fail: the transaction is refused"
        );

        body.acks = 0;
        let req = request(ApiKey::Produce, version, &body);
        assert!(answered(run(&session, &req).0).is_none());
    }
}

#[test]
fn produce_with_an_allowed_transactional_id_checks_the_topics() {
    let session = app();
    let mut body = produce(-1, &[("orders-eu", &[0])]);
    body.transactional_id = Some(TransactionalId(s("txn-app")));
    let req = request(ApiKey::Produce, 9, &body);
    let (verdict, denials) = run(&session, &req);
    assert_untouched(verdict);
    assert!(denials.is_empty());

    let mut body = produce(-1, &[("orders-eu", &[0]), ("secret", &[0])]);
    body.transactional_id = Some(TransactionalId(s("txn-app")));
    let req = request(ApiKey::Produce, 9, &body);
    let (verdict, denials) = run(&session, &req);
    assert_eq!(denials, [denial(Operation::Write, "Topic:secret")]);
    let f = forwarded(verdict);
    let sent: ProduceRequest = decode_forwarded(&f.frame.unwrap(), &req);
    assert_eq!(
        sent.transactional_id,
        Some(TransactionalId(s("txn-app"))),
        "the transactional id is forwarded"
    );
}

#[test]
fn produce_with_transactional_batches_needs_write_on_a_transactional_id() {
    // (transactional id, attributes of every batch, forwarded): as Kafka's
    // KafkaApis.handleProduceRequest, transactional batches need Write on the transactional id,
    // and a null id fails; the batches are read, not only the field.
    let cases: &[(Option<&str>, i16, bool)] = &[
        (None, 0, true),
        (None, GZIP, true),
        (None, TRANSACTIONAL, false),
        (None, TRANSACTIONAL | CONTROL, false),
        (None, TRANSACTIONAL | ZSTD, false),
        (Some("txn-app"), TRANSACTIONAL, true),
        (Some("txn-app"), TRANSACTIONAL | GZIP, true),
        (Some("txn-other"), TRANSACTIONAL, false),
    ];
    let session = app();
    for version in versions(ApiKey::Produce) {
        for &(txn, attributes, allowed) in cases {
            let case = format!("v{version} {txn:?} {attributes:#x}");
            let mut body = produce_records(
                -1,
                &[("orders-eu", &[0, 1]), ("orders-us", &[2])],
                &batch(attributes, b"records"),
            );
            body.transactional_id = txn.map(|t| TransactionalId(s(t)));
            let req = request(ApiKey::Produce, version, &body);
            let (verdict, denials) = run(&session, &req);
            if allowed {
                assert_untouched(verdict);
                assert!(denials.is_empty(), "{case}: {denials:?}");
                continue;
            }
            let resp: ProduceResponse = answer_of(verdict, &req);
            assert_eq!(
                produce_codes(&resp),
                [
                    (
                        "orders-eu".to_owned(),
                        vec![(0, TXN_DENIED), (1, TXN_DENIED)]
                    ),
                    ("orders-us".to_owned(), vec![(2, TXN_DENIED)]),
                ],
                "{case}: nothing is forwarded"
            );
            let expected = match txn {
                Some(t) => denial(Operation::Write, &format!("TransactionalId:{t}")),
                None => denial_for(
                    Operation::Write,
                    "TransactionalId:",
                    Reason::TransactionalBatches,
                ),
            };
            assert_eq!(denials, [expected], "{case}");
        }
    }
}

#[test]
fn produce_of_transactional_batches_without_a_transactional_id_is_refused_for_a_pool_without_any() {
    // The review's case: a pool with no TransactionalId grant writes transactional and control
    // batches with `transactional_id = null`.
    let session = session_with(&["role DeveloperWrite Topic:orders-*"]);
    for attributes in [TRANSACTIONAL, TRANSACTIONAL | CONTROL] {
        let req = request(
            ApiKey::Produce,
            9,
            &produce_records(-1, &[("orders-eu", &[0])], &batch(attributes, b"x")),
        );
        let resp: ProduceResponse = answer_of(run(&session, &req).0, &req);
        assert_eq!(
            produce_codes(&resp),
            [("orders-eu".to_owned(), vec![(0, TXN_DENIED)])]
        );
        // acks=0: refused all the same, without a response.
        let req = request(
            ApiKey::Produce,
            9,
            &produce_records(0, &[("orders-eu", &[0])], &batch(attributes, b"x")),
        );
        assert!(answered(run(&session, &req).0).is_none());
    }
}

/// A valid plain batch with the bytes at `at` replaced by `with`.
fn batch_patched(at: usize, with: &[u8]) -> Vec<u8> {
    let mut b = batch(0, b"payload");
    b[at..at + with.len()].copy_from_slice(with);
    b
}

#[test]
fn produce_batches_kafka_refuses_are_refused_per_partition() {
    let good = batch(0, b"payload");
    // (case, records, partition error): the checks of Kafka's ProduceRequest.validateRecords,
    // ByteBufferLogInputStream.nextBatchSize, DefaultRecordBatch.ensureValid and
    // LogValidator.validateBatch (client origin), read from the batch headers alone.
    let cases: Vec<(&str, Vec<u8>, i16)> = vec![
        ("a control batch", batch(CONTROL, b"marker"), INVALID_RECORD),
        (
            "a transactional control batch",
            batch(TRANSACTIONAL | CONTROL, b"marker"),
            INVALID_RECORD,
        ),
        (
            "a compressed control batch",
            batch(CONTROL | ZSTD, b"\xff"),
            INVALID_RECORD,
        ),
        ("no batch", vec![], INVALID_RECORD),
        ("a cut length", good[..10].to_vec(), INVALID_RECORD),
        ("a cut header", good[..30].to_vec(), INVALID_RECORD),
        (
            "a cut batch",
            good[..good.len() - 1].to_vec(),
            INVALID_RECORD,
        ),
        (
            "two batches",
            [good.clone(), good.clone()].concat(),
            INVALID_RECORD,
        ),
        (
            "a second batch, a control one",
            [good.clone(), batch(CONTROL, b"m")].concat(),
            INVALID_RECORD,
        ),
        (
            "trailing bytes",
            [good.clone(), vec![0; 5]].concat(),
            INVALID_RECORD,
        ),
        ("magic 1", batch_patched(16, &[1]), INVALID_RECORD),
        ("magic 0", batch_patched(16, &[0]), INVALID_RECORD),
        ("magic 3", batch_patched(16, &[3]), CORRUPT_MESSAGE),
        ("magic -1", batch_patched(16, &[0xff]), CORRUPT_MESSAGE),
        (
            "a length under 14",
            batch_patched(8, &13i32.to_be_bytes()),
            CORRUPT_MESSAGE,
        ),
        (
            "a negative length",
            batch_patched(8, &(-1i32).to_be_bytes()),
            CORRUPT_MESSAGE,
        ),
        (
            "a length under the v2 header",
            batch_patched(8, &40i32.to_be_bytes()),
            CORRUPT_MESSAGE,
        ),
    ];
    let session = app();
    for version in versions(ApiKey::Produce) {
        for (case, records, code) in &cases {
            let case = format!("v{version} {case}");
            // With Write on the transactional id: the batch rules apply all the same.
            let mut body = produce(-1, &[("orders-eu", &[0, 1])]);
            body.transactional_id = Some(TransactionalId(s("txn-app")));
            body.topic_data[0].partition_data[0].records = Some(Bytes::from(records.clone()));
            let req = request(ApiKey::Produce, version, &body);
            let (verdict, denials) = run(&session, &req);
            let reason = if case.contains("control batch") {
                Reason::ControlBatch
            } else {
                Reason::InvalidBatch
            };
            assert_eq!(
                denials,
                [denial_for(Operation::Write, "Topic:orders-eu", reason)],
                "{case}"
            );
            let f = forwarded(verdict);
            let sent: ProduceRequest =
                decode_forwarded(&f.frame.expect("re-encoded: {case}"), &req);
            let kept: Vec<_> = sent.topic_data[0]
                .partition_data
                .iter()
                .map(|p| p.index)
                .collect();
            assert_eq!(kept, [1], "{case}: only the valid partition is forwarded");
            let resp = patched(
                f.patch.expect("a patch"),
                version,
                &produce_ok(&[("orders-eu", &[1])]),
            );
            assert_eq!(
                produce_codes(&resp),
                [("orders-eu".to_owned(), vec![(1, 0), (0, *code)])],
                "{case}: merged into the topic's entry, as Kafka answers per partition"
            );

            // Every partition refused: answered alone.
            let mut body = produce_records(-1, &[("orders-eu", &[0])], records);
            body.transactional_id = Some(TransactionalId(s("txn-app")));
            let req = request(ApiKey::Produce, version, &body);
            let resp: ProduceResponse = answer_of(run(&session, &req).0, &req);
            assert_eq!(
                produce_codes(&resp),
                [("orders-eu".to_owned(), vec![(0, *code)])],
                "{case}"
            );
        }
    }
}

#[test]
fn produce_with_null_records_is_refused_as_kafka_requires_one_batch() {
    let session = app();
    let mut body = produce(-1, &[("orders-eu", &[0])]);
    body.topic_data[0].partition_data[0].records = None;
    let req = request(ApiKey::Produce, 9, &body);
    let resp: ProduceResponse = answer_of(run(&session, &req).0, &req);
    assert_eq!(
        produce_codes(&resp),
        [("orders-eu".to_owned(), vec![(0, INVALID_RECORD)])]
    );
}

#[test]
fn produce_of_truncated_batches_is_refused_never_panics() {
    let session = app();
    let good = batch(TRANSACTIONAL, b"payload");
    for cut in 0..good.len() {
        let mut body = produce_records(-1, &[("orders-eu", &[0])], &good[..cut]);
        body.transactional_id = Some(TransactionalId(s("txn-app")));
        let req = request(ApiKey::Produce, 9, &body);
        let resp: ProduceResponse = answer_of(run(&session, &req).0, &req);
        assert_eq!(
            produce_codes(&resp),
            [("orders-eu".to_owned(), vec![(0, INVALID_RECORD)])],
            "cut at {cut}"
        );
    }
}

#[test]
fn compressed_batches_are_read_by_their_header_only() {
    // Payloads that no codec would accept: the gateway never decompresses; and a batch that
    // kafka-protocol encodes, as a producer would.
    let session = app();
    let mut batches: Vec<Vec<u8>> = [GZIP, 0x02, 0x03, ZSTD]
        .into_iter()
        .map(|codec| batch(codec, b"\xff\xfe not compressed at all"))
        .collect();
    batches.push(
        poolgate::testkit::kafka::record_batch(&[(None, b"one"), (Some(b"k"), b"two")]).to_vec(),
    );
    for records in batches {
        let req = request(
            ApiKey::Produce,
            9,
            &produce_records(-1, &[("orders-eu", &[0])], &records),
        );
        let (verdict, denials) = run(&session, &req);
        assert_untouched(verdict);
        assert!(denials.is_empty());
    }
}

// ---------------------------------------------------------------------------------------------
// Fetch and ListOffsets

#[test]
fn fetch_with_every_topic_allowed_is_forwarded_untouched() {
    let session = app();
    for version in versions(ApiKey::Fetch) {
        let req = request(
            ApiKey::Fetch,
            version,
            &fetch(&[("events-a", &[0, 1]), ("events-b", &[0])]),
        );
        let (verdict, denials) = run(&session, &req);
        assert_untouched(verdict);
        assert!(denials.is_empty());
    }
}

#[test]
fn fetch_partly_refused_forwards_the_allowed_topics_and_merges_29() {
    let session = app();
    for version in versions(ApiKey::Fetch) {
        // `orders-eu`: Describe and Write but not Read; `events-audit`: Read denied.
        let req = request(
            ApiKey::Fetch,
            version,
            &fetch(&[
                ("events-a", &[0, 1]),
                ("orders-eu", &[3]),
                ("events-audit", &[0]),
            ]),
        );
        let (verdict, denials) = run(&session, &req);
        assert_eq!(
            denials,
            [
                denial(Operation::Read, "Topic:orders-eu"),
                denial(Operation::Read, "Topic:events-audit"),
            ]
        );
        let f = forwarded(verdict);
        let sent: FetchRequest = decode_forwarded(&f.frame.expect("re-encoded"), &req);
        let names: Vec<_> = sent.topics.iter().map(|t| t.topic.0.as_str()).collect();
        assert_eq!(names, ["events-a"], "v{version}");
        assert_eq!(sent.topics[0].partitions.len(), 2);
        assert_eq!(sent.topics[0].partitions[1].fetch_offset, 10);
        assert_eq!(sent.max_wait_ms, 500);

        let resp = patched(
            f.patch.expect("a patch"),
            version,
            &fetch_ok(&[("events-a", &[0, 1])]),
        );
        assert_eq!(
            fetch_codes(&resp),
            [
                ("events-a".to_owned(), vec![(0, 0), (1, 0)]),
                ("orders-eu".to_owned(), vec![(3, TOPIC_DENIED)]),
                ("events-audit".to_owned(), vec![(0, TOPIC_DENIED)]),
            ],
            "v{version}"
        );
        assert_eq!(resp.responses[0].partitions[0].high_watermark, 50);
        let refused = &resp.responses[1].partitions[0];
        assert_eq!(refused.high_watermark, -1);
        assert_eq!(refused.last_stable_offset, -1);
    }
}

#[test]
fn fetch_with_every_topic_refused_is_answered_with_29_per_partition() {
    let session = app();
    for version in versions(ApiKey::Fetch) {
        let req = request(
            ApiKey::Fetch,
            version,
            &fetch(&[("secret", &[0, 1]), ("orders-eu", &[2])]),
        );
        let (verdict, denials) = run(&session, &req);
        assert_eq!(denials.len(), 2);
        let resp: FetchResponse = answer_of(verdict, &req);
        assert_eq!(
            fetch_codes(&resp),
            [
                (
                    "secret".to_owned(),
                    vec![(0, TOPIC_DENIED), (1, TOPIC_DENIED)]
                ),
                ("orders-eu".to_owned(), vec![(2, TOPIC_DENIED)]),
            ],
            "v{version}"
        );
        assert_eq!(
            resp.error_code, 0,
            "a per-partition error, not a top-level one"
        );
    }
}

#[test]
fn follower_fetch_is_refused_with_31() {
    let session = session_with(&["allow All Topic:*"]);
    for version in 7..=12 {
        let mut body = fetch(&[("events-a", &[0])]);
        body.replica_id = BrokerId(1);
        let req = request(ApiKey::Fetch, version, &body);
        let (verdict, denials) = run(&session, &req);
        assert_eq!(
            denials,
            [denial(Operation::ClusterAction, "Cluster:kafka-cluster")]
        );
        let resp: FetchResponse = answer_of(verdict, &req);
        assert_eq!(resp.error_code, CLUSTER_DENIED, "v{version}");
        assert_eq!(
            fetch_codes(&resp),
            [("events-a".to_owned(), vec![(0, CLUSTER_DENIED)])],
            "and on each partition, as below v7"
        );
    }
}

#[test]
fn follower_fetch_below_v7_still_carries_an_error() {
    let session = session_with(&["allow All Topic:*"]);
    for version in 4..=6 {
        let mut body = fetch(&[("events-a", &[0, 1])]);
        body.replica_id = BrokerId(1);
        let req = request(ApiKey::Fetch, version, &body);
        let (verdict, _) = run(&session, &req);
        let resp: FetchResponse = answer_of(verdict, &req);
        // No top-level error code below v7: the refusal must show per partition (Kafka's own
        // broker answers an unauthorized follower fetch with TOPIC_AUTHORIZATION_FAILED there).
        assert_eq!(
            fetch_codes(&resp),
            [(
                "events-a".to_owned(),
                vec![(0, CLUSTER_DENIED), (1, CLUSTER_DENIED)]
            )],
            "v{version}: the client cannot tell it was refused"
        );
    }
}

#[test]
fn a_fetch_asking_for_a_session_is_forwarded_as_a_sessionless_full_fetch() {
    let session = app();
    for version in 7..=12 {
        // Session id 0, epoch 0: a Java client asking the broker to create a fetch session.
        let mut body = fetch(&[("events-a", &[0, 1])]);
        body.session_epoch = 0;
        let req = request(ApiKey::Fetch, version, &body);
        let (verdict, denials) = run(&session, &req);
        assert!(denials.is_empty(), "{denials:?}");
        let f = forwarded(verdict);
        assert!(
            f.patch.is_none(),
            "v{version}: nothing to merge into the response"
        );
        let sent: FetchRequest = decode_forwarded(&f.frame.expect("re-encoded"), &req);
        assert_eq!(
            (sent.session_id, sent.session_epoch),
            (0, -1),
            "v{version}: a full fetch that creates no session"
        );
        assert_eq!(sent.topics, body.topics);
        assert_eq!(sent.max_wait_ms, 500);

        // Partly refused: still sessionless, the refusals merged into the response.
        let mut body = fetch(&[("events-a", &[0]), ("secret", &[1])]);
        body.session_epoch = 0;
        let req = request(ApiKey::Fetch, version, &body);
        let f = forwarded(run(&session, &req).0);
        let sent: FetchRequest = decode_forwarded(&f.frame.expect("re-encoded"), &req);
        assert_eq!((sent.session_id, sent.session_epoch), (0, -1));
        assert_eq!(sent.topics.len(), 1);
        let resp = patched(
            f.patch.expect("a patch"),
            version,
            &fetch_ok(&[("events-a", &[0])]),
        );
        assert_eq!(
            fetch_codes(&resp),
            [
                ("events-a".to_owned(), vec![(0, 0)]),
                ("secret".to_owned(), vec![(1, TOPIC_DENIED)]),
            ]
        );
    }
}

#[test]
fn a_fetch_naming_a_fetch_session_is_answered_with_70_and_never_forwarded() {
    // (session id, epoch, topics): incremental fetches in a session (KIP-227), with or without
    // topics, full fetches that would close a session (and the broker would close it even if
    // another connection made it), and an incremental epoch without a session.
    type Topics<'a> = &'a [(&'a str, &'a [i32])];
    let cases: &[(i32, i32, Topics<'_>)] = &[
        (77, 3, &[]),
        (77, 3, &[("events-a", &[0])]),
        (77, 1, &[("secret", &[0])]),
        (77, 0, &[("events-a", &[0])]),
        (77, -1, &[("events-a", &[0])]),
        (-5, -1, &[]),
        (0, 5, &[("events-a", &[0])]),
        (0, -2, &[]),
    ];
    let session = app();
    for version in 7..=12 {
        for &(session_id, epoch, topics) in cases {
            let case = format!("v{version} session {session_id} epoch {epoch} {topics:?}");
            let mut body = fetch(topics);
            body.session_id = session_id;
            body.session_epoch = epoch;
            body.forgotten_topics_data = vec![
                ForgottenTopic::default()
                    .with_topic(topic("events-b"))
                    .with_partitions(vec![0]),
            ];
            let req = request(ApiKey::Fetch, version, &body);
            let (verdict, denials) = run(&session, &req);
            let resp: FetchResponse = answer_of(verdict, &req);
            assert_eq!(resp.error_code, FETCH_SESSION_ID_NOT_FOUND, "{case}");
            assert_eq!(resp.session_id, 0, "{case}");
            assert!(resp.responses.is_empty(), "{case}");
            assert_eq!(
                denials,
                [denial_for(
                    Operation::Read,
                    &format!("FetchSession:{session_id}"),
                    Reason::FetchSession
                )],
                "{case}"
            );
        }
    }
}

#[test]
fn forgotten_topics_are_dropped_from_a_sessionless_fetch() {
    let session = app();
    for version in 7..=12 {
        for epoch in [0, -1] {
            let mut body = fetch(&[("events-a", &[0])]);
            body.session_epoch = epoch;
            body.forgotten_topics_data = vec![
                ForgottenTopic::default()
                    .with_topic(topic("secret"))
                    .with_partitions(vec![0]),
            ];
            let req = request(ApiKey::Fetch, version, &body);
            let (verdict, denials) = run(&session, &req);
            assert!(denials.is_empty());
            let f = forwarded(verdict);
            assert!(f.patch.is_none());
            let sent: FetchRequest = decode_forwarded(&f.frame.expect("re-encoded"), &req);
            assert!(
                sent.forgotten_topics_data.is_empty(),
                "v{version} epoch {epoch}: no session, nothing to forget"
            );
            assert_eq!((sent.session_id, sent.session_epoch), (0, -1));
        }
    }
}

#[test]
fn a_sessionless_fetch_without_topics_is_forwarded() {
    let session = app();
    for version in versions(ApiKey::Fetch) {
        let req = request(ApiKey::Fetch, version, &fetch(&[]));
        let (verdict, denials) = run(&session, &req);
        assert_untouched(verdict);
        assert!(denials.is_empty());
    }
}

#[test]
fn list_offsets_partly_refused_forwards_the_describable_topics() {
    let session = app();
    for version in versions(ApiKey::ListOffsets) {
        // Describe is implied by Read (events-*) and Write (orders-*); `secret` has nothing.
        let req = request(
            ApiKey::ListOffsets,
            version,
            &list_offsets(&[("events-a", &[0]), ("secret", &[1, 2]), ("orders-eu", &[0])]),
        );
        let (verdict, denials) = run(&session, &req);
        assert_eq!(denials, [denial(Operation::Describe, "Topic:secret")]);
        let f = forwarded(verdict);
        let sent: ListOffsetsRequest = decode_forwarded(&f.frame.expect("re-encoded"), &req);
        let names: Vec<_> = sent.topics.iter().map(|t| t.name.0.as_str()).collect();
        assert_eq!(names, ["events-a", "orders-eu"], "v{version}");

        let mut upstream = ListOffsetsResponse::default();
        upstream.topics = ["events-a", "orders-eu"]
            .iter()
            .map(|n| {
                ListOffsetsTopicResponse::default()
                    .with_name(topic(n))
                    .with_partitions(vec![
                        ListOffsetsPartitionResponse::default()
                            .with_partition_index(0)
                            .with_offset(12),
                    ])
            })
            .collect();
        let resp = patched(f.patch.expect("a patch"), version, &upstream);
        assert_eq!(
            list_offsets_codes(&resp),
            [
                ("events-a".to_owned(), vec![(0, 0)]),
                ("orders-eu".to_owned(), vec![(0, 0)]),
                (
                    "secret".to_owned(),
                    vec![(1, TOPIC_DENIED), (2, TOPIC_DENIED)]
                ),
            ],
            "v{version}"
        );
    }
}

#[test]
fn list_offsets_all_refused_or_all_allowed() {
    let session = app();
    for version in versions(ApiKey::ListOffsets) {
        let req = request(
            ApiKey::ListOffsets,
            version,
            &list_offsets(&[("secret", &[0])]),
        );
        let resp: ListOffsetsResponse = answer_of(run(&session, &req).0, &req);
        assert_eq!(
            list_offsets_codes(&resp),
            [("secret".to_owned(), vec![(0, TOPIC_DENIED)])]
        );

        let req = request(
            ApiKey::ListOffsets,
            version,
            &list_offsets(&[("events-a", &[0])]),
        );
        assert_untouched(run(&session, &req).0);
    }
}

// ---------------------------------------------------------------------------------------------
// Metadata

#[test]
fn metadata_for_all_topics_drops_undescribable_topics_and_rewrites_brokers() {
    let session = app();
    for version in versions(ApiKey::Metadata) {
        let req = request(ApiKey::Metadata, version, &metadata(None, true));
        let (verdict, denials) = run(&session, &req);
        assert!(denials.is_empty(), "listing all topics refuses nothing");
        let f = forwarded(verdict);
        assert!(
            f.frame.is_none(),
            "v{version}: the request is forwarded as is"
        );
        assert!(f.respond);
        let resp = patched(
            f.patch.expect("the address rewrite"),
            version,
            &metadata_ok(&["events-a", "secret", "orders-eu", "other", "events-audit"]),
        );
        assert_brokers_rewritten(&resp.brokers);
        assert_eq!(
            metadata_topics(&resp),
            [
                ("events-a".to_owned(), 0),
                ("orders-eu".to_owned(), 0),
                ("events-audit".to_owned(), 0),
            ],
            "v{version}: only the topics the session may describe"
        );
        assert_eq!(resp.topics[0].partitions[0].leader_id, BrokerId(1));
        assert_eq!(resp.cluster_id, Some(s("cluster-x")));
    }
}

#[test]
fn metadata_for_named_topics_answers_29_for_the_refused_ones() {
    let session = app();
    for version in versions(ApiKey::Metadata) {
        let req = request(
            ApiKey::Metadata,
            version,
            &metadata(Some(&["events-a", "secret", "orders-eu"]), false),
        );
        let (verdict, denials) = run(&session, &req);
        assert_eq!(denials, [denial(Operation::Describe, "Topic:secret")]);
        let f = forwarded(verdict);
        let sent: MetadataRequest = decode_forwarded(&f.frame.expect("re-encoded"), &req);
        let names: Vec<_> = sent
            .topics
            .as_ref()
            .unwrap()
            .iter()
            .map(|t| t.name.as_ref().unwrap().0.to_string())
            .collect();
        assert_eq!(names, ["events-a", "orders-eu"], "v{version}");
        let resp = patched(
            f.patch.expect("a patch"),
            version,
            &metadata_ok(&["events-a", "orders-eu"]),
        );
        assert_brokers_rewritten(&resp.brokers);
        assert_eq!(
            metadata_topics(&resp),
            [
                ("events-a".to_owned(), 0),
                ("orders-eu".to_owned(), 0),
                ("secret".to_owned(), TOPIC_DENIED),
            ],
            "v{version}"
        );
    }
}

#[test]
fn metadata_for_refused_topics_only_asks_for_no_topic() {
    let session = app();
    let req = request(
        ApiKey::Metadata,
        12,
        &metadata(Some(&["secret", "other"]), false),
    );
    let (verdict, denials) = run(&session, &req);
    assert_eq!(denials.len(), 2);
    let f = forwarded(verdict);
    let sent: MetadataRequest = decode_forwarded(&f.frame.expect("re-encoded"), &req);
    assert_eq!(
        sent.topics.as_ref().map(Vec::len),
        Some(0),
        "an empty list (no topic), never null (every topic)"
    );
    let resp = patched(f.patch.unwrap(), 12, &metadata_ok(&[]));
    assert_eq!(
        metadata_topics(&resp),
        [
            ("secret".to_owned(), TOPIC_DENIED),
            ("other".to_owned(), TOPIC_DENIED),
        ]
    );
    assert_brokers_rewritten(&resp.brokers);
}

#[test]
fn metadata_with_every_named_topic_allowed_still_rewrites_brokers() {
    let session = app();
    let req = request(ApiKey::Metadata, 9, &metadata(Some(&["events-a"]), false));
    let (verdict, denials) = run(&session, &req);
    assert!(denials.is_empty());
    let f = forwarded(verdict);
    assert!(f.frame.is_none(), "nothing stripped: forwarded as received");
    let resp = patched(f.patch.expect("a patch"), 9, &metadata_ok(&["events-a"]));
    assert_brokers_rewritten(&resp.brokers);
    assert_eq!(metadata_topics(&resp), [("events-a".to_owned(), 0)]);
}

#[test]
fn metadata_auto_topic_creation_is_turned_off_without_create() {
    let session = app();
    for version in versions(ApiKey::Metadata) {
        // events-a: Describe but no Create.
        let req = request(
            ApiKey::Metadata,
            version,
            &metadata(Some(&["events-a"]), true),
        );
        let (verdict, denials) = run(&session, &req);
        assert!(
            denials.is_empty(),
            "turning auto-creation off refuses nothing"
        );
        let f = forwarded(verdict);
        let sent: MetadataRequest = decode_forwarded(&f.frame.expect("re-encoded"), &req);
        assert!(!sent.allow_auto_topic_creation, "v{version}");
        assert_eq!(sent.topics.as_ref().unwrap().len(), 1);

        // scratch-*: Create (and Describe, implied by Delete) on the topic.
        let req = request(
            ApiKey::Metadata,
            version,
            &metadata(Some(&["scratch-1"]), true),
        );
        let f = forwarded(run(&session, &req).0);
        assert!(
            f.frame.is_none(),
            "v{version}: Create on the topic keeps it"
        );
    }
}

#[test]
fn metadata_auto_topic_creation_is_kept_with_create_on_the_cluster() {
    let session = session_with(&[
        "role DeveloperRead Topic:*",
        "allow Create Cluster:kafka-cluster",
    ]);
    let req = request(ApiKey::Metadata, 12, &metadata(Some(&["new-topic"]), true));
    let (verdict, denials) = run(&session, &req);
    assert!(denials.is_empty());
    let f = forwarded(verdict);
    assert!(
        f.frame.is_none(),
        "Create on the cluster allows creating any topic"
    );
}

#[test]
fn metadata_topic_authorized_operations_are_the_sessions() {
    let session = session_with(&[
        "role DeveloperRead Topic:events-*",
        "role DeveloperWrite Topic:orders-*",
        "role ResourceOwner Topic:owned-*",
        "allow Describe,AlterConfigs Topic:tuned-*",
    ]);
    for version in 8..=12 {
        let mut body = metadata(None, false);
        body.include_topic_authorized_operations = true;
        let req = request(ApiKey::Metadata, version, &body);
        let f = forwarded(run(&session, &req).0);
        let mut upstream = metadata_ok(&["events-a", "orders-eu", "owned-1", "tuned-1"]);
        for t in &mut upstream.topics {
            // A broker without ACLs claims everything.
            t.topic_authorized_operations = 0x0fff;
        }
        let resp = patched(f.patch.unwrap(), version, &upstream);
        let ops: Vec<_> = resp
            .topics
            .iter()
            .map(|t| {
                (
                    t.name.as_ref().unwrap().0.to_string(),
                    t.topic_authorized_operations,
                )
            })
            .collect();
        assert_eq!(
            ops,
            [
                ("events-a".to_owned(), bits(&[OP_READ, OP_DESCRIBE])),
                ("orders-eu".to_owned(), bits(&[OP_WRITE, OP_DESCRIBE])),
                (
                    "owned-1".to_owned(),
                    bits(&[
                        OP_READ,
                        OP_WRITE,
                        OP_CREATE,
                        OP_DELETE,
                        OP_ALTER,
                        OP_DESCRIBE,
                        OP_DESCRIBE_CONFIGS,
                        OP_ALTER_CONFIGS,
                    ])
                ),
                (
                    "tuned-1".to_owned(),
                    bits(&[OP_DESCRIBE, OP_DESCRIBE_CONFIGS, OP_ALTER_CONFIGS])
                ),
            ],
            "v{version}"
        );
        assert_eq!(bits(&[OP_READ, OP_DESCRIBE]), 264);
    }
}

#[test]
fn metadata_topic_authorized_operations_for_refused_topics_are_absent() {
    let session = app();
    let mut body = metadata(Some(&["events-a", "secret"]), false);
    body.include_topic_authorized_operations = true;
    let req = request(ApiKey::Metadata, 10, &body);
    let f = forwarded(run(&session, &req).0);
    let resp = patched(f.patch.unwrap(), 10, &metadata_ok(&["events-a"]));
    assert_eq!(
        resp.topics[0].topic_authorized_operations,
        bits(&[OP_READ, OP_DESCRIBE])
    );
    assert_eq!(resp.topics[1].error_code, TOPIC_DENIED);
    assert_eq!(resp.topics[1].topic_authorized_operations, i32::MIN);
}

#[test]
fn metadata_topic_authorized_operations_list_only_topic_operations() {
    let session = session_with(&["allow All Topic:*"]);
    let mut body = metadata(None, false);
    body.include_topic_authorized_operations = true;
    let req = request(ApiKey::Metadata, 12, &body);
    let f = forwarded(run(&session, &req).0);
    let resp = patched(f.patch.unwrap(), 12, &metadata_ok(&["events-a"]));
    assert_eq!(
        resp.topics[0].topic_authorized_operations,
        bits(&[
            OP_READ,
            OP_WRITE,
            OP_CREATE,
            OP_DELETE,
            OP_ALTER,
            OP_DESCRIBE,
            OP_DESCRIBE_CONFIGS,
            OP_ALTER_CONFIGS,
        ]),
        "got {:#x}",
        resp.topics[0].topic_authorized_operations
    );
}

#[test]
fn metadata_cluster_authorized_operations_are_the_sessions() {
    let session = session_with(&[
        "role DeveloperWrite Topic:orders-*",
        "allow Create,Describe,DescribeConfigs Cluster:kafka-cluster",
    ]);
    for version in 8..=10 {
        let mut body = metadata(Some(&[]), false);
        body.include_cluster_authorized_operations = true;
        let req = request(ApiKey::Metadata, version, &body);
        let f = forwarded(run(&session, &req).0);
        let mut upstream = metadata_ok(&[]);
        upstream.cluster_authorized_operations = 0x0fff;
        let resp = patched(f.patch.unwrap(), version, &upstream);
        assert_eq!(
            resp.cluster_authorized_operations,
            bits(&[
                OP_CREATE,
                OP_DESCRIBE,
                OP_DESCRIBE_CONFIGS,
                OP_IDEMPOTENT_WRITE
            ]),
            "v{version}: IdempotentWrite is implied by Write on a topic"
        );
    }
}

#[test]
fn metadata_cluster_authorized_operations_need_describe_on_the_cluster() {
    // Write on a topic implies IdempotentWrite on the cluster, but not Describe: Kafka then
    // reports no cluster operations at all.
    let session = session_with(&["role DeveloperWrite Topic:orders-*"]);
    let mut body = metadata(Some(&[]), false);
    body.include_cluster_authorized_operations = true;
    let req = request(ApiKey::Metadata, 10, &body);
    let f = forwarded(run(&session, &req).0);
    let mut upstream = metadata_ok(&[]);
    upstream.cluster_authorized_operations = 0x0fff;
    let resp = patched(f.patch.unwrap(), 10, &upstream);
    assert_eq!(resp.cluster_authorized_operations, 0);
}

// ---------------------------------------------------------------------------------------------
// FindCoordinator

#[test]
fn find_coordinator_single_key_allowed_is_forwarded_with_the_address_rewritten() {
    let session = app();
    for version in 0..=3 {
        let req = request(
            ApiKey::FindCoordinator,
            version,
            &find_coordinator(version, 0, &["app-1"]),
        );
        let (verdict, denials) = run(&session, &req);
        assert!(denials.is_empty());
        let f = forwarded(verdict);
        assert!(f.frame.is_none());
        let mut upstream = FindCoordinatorResponse::default();
        upstream.node_id = BrokerId(2);
        upstream.host = s("broker-2.internal");
        upstream.port = 9093;
        let resp = patched(f.patch.expect("the address rewrite"), version, &upstream);
        assert_eq!(resp.error_code, 0);
        assert_eq!(resp.node_id, BrokerId(2), "v{version}");
        assert_eq!(resp.host.as_str(), GW_HOST);
        assert_eq!(resp.port, GW_PORT);
    }
}

#[test]
fn find_coordinator_error_responses_are_not_rewritten() {
    let session = app();
    let req = request(
        ApiKey::FindCoordinator,
        3,
        &find_coordinator(3, 0, &["app-1"]),
    );
    let f = forwarded(run(&session, &req).0);
    let mut upstream = FindCoordinatorResponse::default();
    upstream.error_code = 15; // COORDINATOR_NOT_AVAILABLE
    upstream.node_id = BrokerId(-1);
    upstream.port = -1;
    let resp = patched(f.patch.unwrap(), 3, &upstream);
    assert_eq!(resp.error_code, 15);
    assert_eq!(resp.host.as_str(), "");
    assert_eq!(resp.port, -1);
}

#[test]
fn find_coordinator_single_key_refused_is_answered_locally() {
    let session = app();
    for version in 0..=3 {
        let req = request(
            ApiKey::FindCoordinator,
            version,
            &find_coordinator(version, 0, &["other-1"]),
        );
        let (verdict, denials) = run(&session, &req);
        assert_eq!(denials, [denial(Operation::Describe, "Group:other-1")]);
        let resp: FindCoordinatorResponse = answer_of(verdict, &req);
        assert_eq!(resp.error_code, GROUP_DENIED, "v{version}");
        assert_eq!(resp.node_id, BrokerId(-1));
        assert_eq!(resp.port, -1);
    }
    // Transaction coordinators (key type 1, from v1) need Describe on the transactional id.
    for version in 1..=3 {
        let req = request(
            ApiKey::FindCoordinator,
            version,
            &find_coordinator(version, 1, &["txn-other"]),
        );
        let (verdict, denials) = run(&session, &req);
        assert_eq!(
            denials,
            [denial(Operation::Describe, "TransactionalId:txn-other")]
        );
        let resp: FindCoordinatorResponse = answer_of(verdict, &req);
        assert_eq!(resp.error_code, TXN_DENIED, "v{version}");

        // Write on `txn-app` implies Describe.
        let req = request(
            ApiKey::FindCoordinator,
            version,
            &find_coordinator(version, 1, &["txn-app"]),
        );
        assert!(forwarded(run(&session, &req).0).patch.is_some());
    }
}

#[test]
fn find_coordinator_batched_keys_partly_refused() {
    let session = app();
    for version in 4..=6 {
        let req = request(
            ApiKey::FindCoordinator,
            version,
            &find_coordinator(version, 0, &["other-1", "app-1", "app-2"]),
        );
        let (verdict, denials) = run(&session, &req);
        assert_eq!(denials, [denial(Operation::Describe, "Group:other-1")]);
        let f = forwarded(verdict);
        let sent: FindCoordinatorRequest = decode_forwarded(&f.frame.expect("re-encoded"), &req);
        let keys: Vec<_> = sent.coordinator_keys.iter().map(StrBytes::as_str).collect();
        assert_eq!(keys, ["app-1", "app-2"], "v{version}");

        let mut upstream = FindCoordinatorResponse::default();
        upstream.coordinators = vec![
            coordinator("app-1", 1, "broker-1.internal", 9092),
            coordinator("app-2", 2, "broker-2.internal", 9093).with_error_code(15),
        ];
        let resp = patched(f.patch.expect("a patch"), version, &upstream);
        let got: Vec<_> = resp
            .coordinators
            .iter()
            .map(|c| {
                (
                    c.key.to_string(),
                    c.node_id.0,
                    c.host.to_string(),
                    c.port,
                    c.error_code,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("app-1".to_owned(), 1, GW_HOST.to_owned(), GW_PORT, 0),
                (
                    "app-2".to_owned(),
                    2,
                    "broker-2.internal".to_owned(),
                    9093,
                    15
                ),
                ("other-1".to_owned(), -1, String::new(), -1, GROUP_DENIED),
            ],
            "v{version}"
        );
    }
}

#[test]
fn find_coordinator_batched_keys_all_allowed_or_all_refused() {
    let session = app();
    for version in 4..=6 {
        let req = request(
            ApiKey::FindCoordinator,
            version,
            &find_coordinator(version, 0, &["app-1"]),
        );
        let f = forwarded(run(&session, &req).0);
        assert!(f.frame.is_none());
        let mut upstream = FindCoordinatorResponse::default();
        upstream.coordinators = vec![coordinator("app-1", 1, "broker-1.internal", 9092)];
        let resp = patched(f.patch.expect("the address rewrite"), version, &upstream);
        assert_eq!(resp.coordinators[0].host.as_str(), GW_HOST);
        assert_eq!(resp.coordinators[0].port, GW_PORT);
        assert_eq!(resp.coordinators.len(), 1);

        let req = request(
            ApiKey::FindCoordinator,
            version,
            &find_coordinator(version, 1, &["txn-other", "txn-x"]),
        );
        let (verdict, denials) = run(&session, &req);
        assert_eq!(denials.len(), 2);
        let resp: FindCoordinatorResponse = answer_of(verdict, &req);
        let got: Vec<_> = resp
            .coordinators
            .iter()
            .map(|c| (c.key.to_string(), c.error_code))
            .collect();
        assert_eq!(
            got,
            [
                ("txn-other".to_owned(), TXN_DENIED),
                ("txn-x".to_owned(), TXN_DENIED),
            ],
            "v{version}"
        );
    }
}

#[test]
fn find_coordinator_unknown_key_type_is_refused_as_the_cluster() {
    let session = session_with(&["allow All Topic:*", "role ClusterAdmin Group:*"]);
    let req = request(
        ApiKey::FindCoordinator,
        6,
        &find_coordinator(6, 2, &["share-group:topic:0"]),
    );
    let (verdict, _) = run(&session, &req);
    let resp: FindCoordinatorResponse = answer_of(verdict, &req);
    assert_eq!(resp.coordinators.len(), 1);
    assert_eq!(resp.coordinators[0].error_code, CLUSTER_DENIED);
}

#[test]
fn find_coordinator_unknown_key_type_is_recorded_as_a_denial() {
    let session = app();
    for version in [3, 6] {
        let req = request(
            ApiKey::FindCoordinator,
            version,
            &find_coordinator(version, 2, &["share-group:topic:0"]),
        );
        let (_, denials) = run(&session, &req);
        assert!(!denials.is_empty(), "v{version}: refused but not recorded");
    }
}

// ---------------------------------------------------------------------------------------------
// Consumer groups

#[test]
fn group_membership_requests_need_read_on_the_group() {
    let session = app();
    for version in versions(ApiKey::JoinGroup) {
        let req = request(ApiKey::JoinGroup, version, &join_group("other-1"));
        let (verdict, denials) = run(&session, &req);
        assert_eq!(denials, [denial(Operation::Read, "Group:other-1")]);
        let resp: JoinGroupResponse = answer_of(verdict, &req);
        assert_eq!(resp.error_code, GROUP_DENIED, "JoinGroup v{version}");
        assert_eq!(resp.generation_id, -1);

        let req = request(ApiKey::JoinGroup, version, &join_group("app-1"));
        let (verdict, denials) = run(&session, &req);
        assert_untouched(verdict);
        assert!(denials.is_empty());
    }
    for version in versions(ApiKey::Heartbeat) {
        let req = request(ApiKey::Heartbeat, version, &heartbeat("other-1"));
        let (verdict, denials) = run(&session, &req);
        assert_eq!(denials, [denial(Operation::Read, "Group:other-1")]);
        let resp: HeartbeatResponse = answer_of(verdict, &req);
        assert_eq!(resp.error_code, GROUP_DENIED, "Heartbeat v{version}");
        let req = request(ApiKey::Heartbeat, version, &heartbeat("app-1"));
        assert_untouched(run(&session, &req).0);
    }
    for version in versions(ApiKey::SyncGroup) {
        let req = request(ApiKey::SyncGroup, version, &sync_group("other-1"));
        let (verdict, denials) = run(&session, &req);
        assert_eq!(denials, [denial(Operation::Read, "Group:other-1")]);
        let resp: SyncGroupResponse = answer_of(verdict, &req);
        assert_eq!(resp.error_code, GROUP_DENIED, "SyncGroup v{version}");
        let req = request(ApiKey::SyncGroup, version, &sync_group("app-1"));
        assert_untouched(run(&session, &req).0);
    }
    for version in versions(ApiKey::LeaveGroup) {
        let req = request(
            ApiKey::LeaveGroup,
            version,
            &leave_group("other-1", version),
        );
        let (verdict, denials) = run(&session, &req);
        assert_eq!(denials, [denial(Operation::Read, "Group:other-1")]);
        let resp: LeaveGroupResponse = answer_of(verdict, &req);
        assert_eq!(resp.error_code, GROUP_DENIED, "LeaveGroup v{version}");
        let req = request(ApiKey::LeaveGroup, version, &leave_group("app-1", version));
        assert_untouched(run(&session, &req).0);
    }
}

#[test]
fn describe_on_a_group_is_not_enough_to_join_it() {
    let session = session_with(&["allow Describe Group:app-*"]);
    let req = request(ApiKey::JoinGroup, 9, &join_group("app-1"));
    let (verdict, denials) = run(&session, &req);
    assert_eq!(denials, [denial(Operation::Read, "Group:app-1")]);
    let resp: JoinGroupResponse = answer_of(verdict, &req);
    assert_eq!(resp.error_code, GROUP_DENIED);
}

#[test]
fn offset_commit_with_a_refused_group_fails_every_partition_with_30() {
    let session = app();
    for version in versions(ApiKey::OffsetCommit) {
        let req = request(
            ApiKey::OffsetCommit,
            version,
            &offset_commit("other-1", &[("events-a", &[0, 1]), ("secret", &[2])]),
        );
        let (verdict, denials) = run(&session, &req);
        assert_eq!(denials, [denial(Operation::Read, "Group:other-1")]);
        let resp: OffsetCommitResponse = answer_of(verdict, &req);
        assert_eq!(
            offset_commit_codes(&resp),
            [
                (
                    "events-a".to_owned(),
                    vec![(0, GROUP_DENIED), (1, GROUP_DENIED)]
                ),
                ("secret".to_owned(), vec![(2, GROUP_DENIED)]),
            ],
            "v{version}"
        );
    }
}

#[test]
fn offset_commit_with_an_allowed_group_refuses_only_the_unreadable_topic() {
    let session = app();
    for version in versions(ApiKey::OffsetCommit) {
        let req = request(
            ApiKey::OffsetCommit,
            version,
            &offset_commit("app-1", &[("events-a", &[0, 1]), ("secret", &[2])]),
        );
        let (verdict, denials) = run(&session, &req);
        assert_eq!(denials, [denial(Operation::Read, "Topic:secret")]);
        let f = forwarded(verdict);
        let sent: OffsetCommitRequest = decode_forwarded(&f.frame.expect("re-encoded"), &req);
        assert_eq!(sent.group_id, group("app-1"));
        let names: Vec<_> = sent.topics.iter().map(|t| t.name.0.as_str()).collect();
        assert_eq!(names, ["events-a"], "v{version}");
        let resp = patched(
            f.patch.expect("a patch"),
            version,
            &offset_commit_ok(&[("events-a", &[0, 1])]),
        );
        assert_eq!(
            offset_commit_codes(&resp),
            [
                ("events-a".to_owned(), vec![(0, 0), (1, 0)]),
                ("secret".to_owned(), vec![(2, TOPIC_DENIED)]),
            ],
            "v{version}"
        );
    }
}

#[test]
fn offset_commit_all_allowed_or_all_topics_refused() {
    let session = app();
    let req = request(
        ApiKey::OffsetCommit,
        8,
        &offset_commit("app-1", &[("events-a", &[0])]),
    );
    assert_untouched(run(&session, &req).0);

    let req = request(
        ApiKey::OffsetCommit,
        8,
        &offset_commit("app-1", &[("secret", &[0])]),
    );
    let resp: OffsetCommitResponse = answer_of(run(&session, &req).0, &req);
    assert_eq!(
        offset_commit_codes(&resp),
        [("secret".to_owned(), vec![(0, TOPIC_DENIED)])]
    );
}

#[test]
fn offset_fetch_with_a_refused_group_is_answered_with_30() {
    let session = app();
    for version in versions(ApiKey::OffsetFetch) {
        let req = request(
            ApiKey::OffsetFetch,
            version,
            &offset_fetch("other-1", Some(&[("events-a", &[0, 1])])),
        );
        let (verdict, denials) = run(&session, &req);
        assert_eq!(denials, [denial(Operation::Describe, "Group:other-1")]);
        let resp: OffsetFetchResponse = answer_of(verdict, &req);
        if version >= 2 {
            assert_eq!(resp.error_code, GROUP_DENIED, "v{version}: top-level error");
            assert!(resp.topics.is_empty());
        } else {
            // v1 has no top-level error code: each partition carries it.
            assert_eq!(
                offset_fetch_codes(&resp),
                [(
                    "events-a".to_owned(),
                    vec![(0, GROUP_DENIED), (1, GROUP_DENIED)]
                )]
            );
            assert_eq!(resp.topics[0].partitions[0].committed_offset, -1);
        }
    }
    // Every topic (null, from v2).
    for version in 2..=7 {
        let req = request(ApiKey::OffsetFetch, version, &offset_fetch("other-1", None));
        let resp: OffsetFetchResponse = answer_of(run(&session, &req).0, &req);
        assert_eq!(resp.error_code, GROUP_DENIED, "v{version}");
    }
}

#[test]
fn offset_fetch_partly_refused_topics_get_29() {
    let session = app();
    for version in versions(ApiKey::OffsetFetch) {
        let req = request(
            ApiKey::OffsetFetch,
            version,
            &offset_fetch("app-1", Some(&[("secret", &[3]), ("events-a", &[0])])),
        );
        let (verdict, denials) = run(&session, &req);
        assert_eq!(denials, [denial(Operation::Describe, "Topic:secret")]);
        let f = forwarded(verdict);
        let sent: OffsetFetchRequest = decode_forwarded(&f.frame.expect("re-encoded"), &req);
        let names: Vec<_> = sent
            .topics
            .as_ref()
            .unwrap()
            .iter()
            .map(|t| t.name.0.as_str())
            .collect();
        assert_eq!(names, ["events-a"], "v{version}");
        let resp = patched(
            f.patch.expect("a patch"),
            version,
            &offset_fetch_ok(&[("events-a", &[0])]),
        );
        assert_eq!(
            offset_fetch_codes(&resp),
            [
                ("events-a".to_owned(), vec![(0, 0)]),
                ("secret".to_owned(), vec![(3, TOPIC_DENIED)]),
            ],
            "v{version}"
        );
        assert_eq!(resp.topics[0].partitions[0].committed_offset, 77);

        let req = request(
            ApiKey::OffsetFetch,
            version,
            &offset_fetch("app-1", Some(&[("secret", &[3])])),
        );
        let resp: OffsetFetchResponse = answer_of(run(&session, &req).0, &req);
        assert_eq!(
            offset_fetch_codes(&resp),
            [("secret".to_owned(), vec![(3, TOPIC_DENIED)])]
        );
    }
}

#[test]
fn offset_fetch_for_every_topic_hides_undescribable_topics() {
    let session = app();
    for version in 2..=7 {
        let req = request(ApiKey::OffsetFetch, version, &offset_fetch("app-1", None));
        let f = forwarded(run(&session, &req).0);
        let upstream = offset_fetch_ok(&[("events-a", &[0]), ("secret", &[0])]);
        let resp = match f.patch {
            Some(p) => patched(p, version, &upstream),
            None => upstream,
        };
        assert_eq!(
            offset_fetch_codes(&resp),
            [("events-a".to_owned(), vec![(0, 0)])],
            "v{version}: the offsets of `secret` leak"
        );
    }
}

#[test]
fn describe_groups_partly_refused() {
    let session = app();
    for version in versions(ApiKey::DescribeGroups) {
        let req = request(
            ApiKey::DescribeGroups,
            version,
            &describe_groups(&["other-1", "app-1"]),
        );
        let (verdict, denials) = run(&session, &req);
        assert_eq!(denials, [denial(Operation::Describe, "Group:other-1")]);
        let f = forwarded(verdict);
        let sent: DescribeGroupsRequest = decode_forwarded(&f.frame.expect("re-encoded"), &req);
        assert_eq!(sent.groups, [group("app-1")], "v{version}");
        let mut upstream = DescribeGroupsResponse::default();
        upstream.groups = vec![described("app-1")];
        let resp = patched(f.patch.expect("a patch"), version, &upstream);
        let got: Vec<_> = resp
            .groups
            .iter()
            .map(|g| (g.group_id.0.to_string(), g.error_code))
            .collect();
        assert_eq!(
            got,
            [
                ("app-1".to_owned(), 0),
                ("other-1".to_owned(), GROUP_DENIED)
            ],
            "v{version}"
        );
        assert_eq!(resp.groups[0].group_state.as_str(), "Stable");

        let req = request(
            ApiKey::DescribeGroups,
            version,
            &describe_groups(&["other-1"]),
        );
        let resp: DescribeGroupsResponse = answer_of(run(&session, &req).0, &req);
        assert_eq!(resp.groups.len(), 1);
        assert_eq!(resp.groups[0].error_code, GROUP_DENIED, "v{version}");

        let req = request(
            ApiKey::DescribeGroups,
            version,
            &describe_groups(&["app-1"]),
        );
        assert_untouched(run(&session, &req).0);
    }
}

#[test]
fn describe_groups_authorized_operations_are_the_sessions() {
    let session = app();
    for version in 3..=6 {
        let mut body = describe_groups(&["app-1"]);
        body.include_authorized_operations = true;
        let req = request(ApiKey::DescribeGroups, version, &body);
        let f = forwarded(run(&session, &req).0);
        let mut upstream = DescribeGroupsResponse::default();
        upstream.groups = vec![described("app-1").with_authorized_operations(bits(&[
            OP_READ,
            OP_DELETE,
            OP_DESCRIBE,
        ]))];
        let resp = match f.patch {
            Some(p) => patched(p, version, &upstream),
            None => upstream,
        };
        assert_eq!(
            resp.groups[0].authorized_operations,
            bits(&[OP_READ, OP_DESCRIBE]),
            "v{version}: the session may not Delete `app-1`"
        );
    }
}

#[test]
fn delete_groups_partly_refused() {
    let session = app();
    for version in versions(ApiKey::DeleteGroups) {
        // Delete is granted on `app-tmp-*` only; Read on `app-*` does not imply it.
        let req = request(
            ApiKey::DeleteGroups,
            version,
            &delete_groups(&["app-1", "app-tmp-1", "other-1"]),
        );
        let (verdict, denials) = run(&session, &req);
        assert_eq!(
            denials,
            [
                denial(Operation::Delete, "Group:app-1"),
                denial(Operation::Delete, "Group:other-1"),
            ]
        );
        let f = forwarded(verdict);
        let sent: DeleteGroupsRequest = decode_forwarded(&f.frame.expect("re-encoded"), &req);
        assert_eq!(sent.groups_names, [group("app-tmp-1")], "v{version}");
        let mut upstream = DeleteGroupsResponse::default();
        upstream.results = vec![DeletableGroupResult::default().with_group_id(group("app-tmp-1"))];
        let resp = patched(f.patch.expect("a patch"), version, &upstream);
        let got: Vec<_> = resp
            .results
            .iter()
            .map(|g| (g.group_id.0.to_string(), g.error_code))
            .collect();
        assert_eq!(
            got,
            [
                ("app-tmp-1".to_owned(), 0),
                ("app-1".to_owned(), GROUP_DENIED),
                ("other-1".to_owned(), GROUP_DENIED),
            ],
            "v{version}"
        );

        let req = request(ApiKey::DeleteGroups, version, &delete_groups(&["other-1"]));
        let resp: DeleteGroupsResponse = answer_of(run(&session, &req).0, &req);
        assert_eq!(resp.results.len(), 1);
        assert_eq!(resp.results[0].error_code, GROUP_DENIED);
    }
}

#[test]
fn list_groups_shows_only_describable_groups() {
    let session = app();
    for version in versions(ApiKey::ListGroups) {
        let req = request(ApiKey::ListGroups, version, &ListGroupsRequest::default());
        let (verdict, denials) = run(&session, &req);
        assert!(denials.is_empty(), "filtering a listing is not a denial");
        let f = forwarded(verdict);
        assert!(f.frame.is_none());
        let mut upstream = ListGroupsResponse::default();
        upstream.groups = ["app-1", "other-1", "app-tmp-2", "secret-group"]
            .iter()
            .map(|g| {
                ListedGroup::default()
                    .with_group_id(group(g))
                    .with_protocol_type(s("consumer"))
            })
            .collect();
        let resp = patched(f.patch.expect("a filter"), version, &upstream);
        let names: Vec<_> = resp.groups.iter().map(|g| g.group_id.0.as_str()).collect();
        assert_eq!(names, ["app-1", "app-tmp-2"], "v{version}");
    }
}

#[test]
fn list_groups_shows_every_group_with_describe_on_the_cluster() {
    let admin = cluster_admin();
    let req = request(ApiKey::ListGroups, 4, &ListGroupsRequest::default());
    let f = forwarded(run(&admin, &req).0);
    let mut upstream = ListGroupsResponse::default();
    upstream.groups = vec![
        ListedGroup::default().with_group_id(group("app-1")),
        ListedGroup::default().with_group_id(group("other-1")),
    ];
    let resp = match f.patch {
        Some(p) => patched(p, 4, &upstream),
        None => upstream,
    };
    assert_eq!(resp.groups.len(), 2);
}

// ---------------------------------------------------------------------------------------------
// Topic administration

#[test]
fn create_topics_partly_refused() {
    let session = app();
    for version in versions(ApiKey::CreateTopics) {
        let req = request(
            ApiKey::CreateTopics,
            version,
            &create_topics(&["scratch-1", "secret", "orders-new"]),
        );
        let (verdict, denials) = run(&session, &req);
        assert_eq!(
            denials,
            [
                denial(Operation::Create, "Topic:secret"),
                denial(Operation::Create, "Topic:orders-new"),
            ]
        );
        let f = forwarded(verdict);
        let sent: CreateTopicsRequest = decode_forwarded(&f.frame.expect("re-encoded"), &req);
        assert_eq!(sent.topics.len(), 1, "v{version}");
        assert_eq!(sent.topics[0].name, topic("scratch-1"));
        assert_eq!(sent.topics[0].num_partitions, 3);
        assert_eq!(sent.timeout_ms, 5000);

        let mut upstream = CreateTopicsResponse::default();
        upstream.topics = vec![
            CreatableTopicResult::default()
                .with_name(topic("scratch-1"))
                .with_error_message(None)
                .with_num_partitions(3)
                .with_replication_factor(1),
        ];
        let resp = patched(f.patch.expect("a patch"), version, &upstream);
        let got: Vec<_> = resp
            .topics
            .iter()
            .map(|t| (t.name.0.to_string(), t.error_code))
            .collect();
        assert_eq!(
            got,
            [
                ("scratch-1".to_owned(), 0),
                ("secret".to_owned(), TOPIC_DENIED),
                ("orders-new".to_owned(), TOPIC_DENIED),
            ],
            "v{version}"
        );
        assert!(resp.topics[1].error_message.is_some());
    }
}

#[test]
fn create_topics_all_refused_or_allowed_on_the_cluster() {
    let session = app();
    for version in versions(ApiKey::CreateTopics) {
        let req = request(ApiKey::CreateTopics, version, &create_topics(&["secret"]));
        let resp: CreateTopicsResponse = answer_of(run(&session, &req).0, &req);
        assert_eq!(resp.topics.len(), 1);
        assert_eq!(resp.topics[0].error_code, TOPIC_DENIED, "v{version}");
    }
    let admin = cluster_admin();
    for version in versions(ApiKey::CreateTopics) {
        let req = request(
            ApiKey::CreateTopics,
            version,
            &create_topics(&["secret", "anything"]),
        );
        let (verdict, denials) = run(&admin, &req);
        assert_untouched(verdict);
        assert!(
            denials.is_empty(),
            "Create on the cluster creates any topic"
        );
    }
}

#[test]
fn delete_topics_partly_refused() {
    let session = app();
    for version in versions(ApiKey::DeleteTopics) {
        let req = request(
            ApiKey::DeleteTopics,
            version,
            &delete_topics(&["orders-eu", "scratch-1"]),
        );
        let (verdict, denials) = run(&session, &req);
        assert_eq!(denials, [denial(Operation::Delete, "Topic:orders-eu")]);
        let f = forwarded(verdict);
        let sent: DeleteTopicsRequest = decode_forwarded(&f.frame.expect("re-encoded"), &req);
        assert_eq!(sent.topic_names, [topic("scratch-1")], "v{version}");
        let mut upstream = DeleteTopicsResponse::default();
        upstream.responses =
            vec![DeletableTopicResult::default().with_name(Some(topic("scratch-1")))];
        let resp = patched(f.patch.expect("a patch"), version, &upstream);
        let got: Vec<_> = resp
            .responses
            .iter()
            .map(|t| (t.name.as_ref().unwrap().0.to_string(), t.error_code))
            .collect();
        assert_eq!(
            got,
            [
                ("scratch-1".to_owned(), 0),
                ("orders-eu".to_owned(), TOPIC_DENIED),
            ],
            "v{version}"
        );

        let req = request(ApiKey::DeleteTopics, version, &delete_topics(&["secret"]));
        let resp: DeleteTopicsResponse = answer_of(run(&session, &req).0, &req);
        assert_eq!(resp.responses[0].error_code, TOPIC_DENIED);
    }
}

// ---------------------------------------------------------------------------------------------
// Configs

fn config_results(r: &DescribeConfigsResponse) -> Vec<(i8, String, i16)> {
    r.results
        .iter()
        .map(|c| (c.resource_type, c.resource_name.to_string(), c.error_code))
        .collect()
}

#[test]
fn describe_configs_on_topics_and_brokers() {
    let session = app();
    for version in versions(ApiKey::DescribeConfigs) {
        let req = request(
            ApiKey::DescribeConfigs,
            version,
            &describe_configs(&[
                (CONFIG_TOPIC, "scratch-1"),
                (CONFIG_TOPIC, "events-a"),
                (CONFIG_BROKER, "1"),
                (CONFIG_BROKER_LOGGER, "1"),
            ]),
        );
        let (verdict, denials) = run(&session, &req);
        assert_eq!(
            denials,
            [
                denial(Operation::DescribeConfigs, "Topic:events-a"),
                denial(Operation::DescribeConfigs, "Cluster:kafka-cluster"),
                denial(Operation::DescribeConfigs, "Cluster:kafka-cluster"),
            ]
        );
        let f = forwarded(verdict);
        let sent: DescribeConfigsRequest = decode_forwarded(&f.frame.expect("re-encoded"), &req);
        assert_eq!(sent.resources.len(), 1, "v{version}");
        assert_eq!(sent.resources[0].resource_name.as_str(), "scratch-1");
        let mut upstream = DescribeConfigsResponse::default();
        upstream.results = vec![
            DescribeConfigsResult::default()
                .with_resource_type(CONFIG_TOPIC)
                .with_resource_name(s("scratch-1")),
        ];
        let resp = patched(f.patch.expect("a patch"), version, &upstream);
        assert_eq!(
            config_results(&resp),
            [
                (CONFIG_TOPIC, "scratch-1".to_owned(), 0),
                (CONFIG_TOPIC, "events-a".to_owned(), TOPIC_DENIED),
                (CONFIG_BROKER, "1".to_owned(), CLUSTER_DENIED),
                (CONFIG_BROKER_LOGGER, "1".to_owned(), CLUSTER_DENIED),
            ],
            "v{version}"
        );
    }
}

#[test]
fn describe_configs_of_a_broker_needs_describe_configs_on_the_cluster() {
    let admin = cluster_admin();
    let req = request(
        ApiKey::DescribeConfigs,
        4,
        &describe_configs(&[(CONFIG_BROKER, "1"), (CONFIG_BROKER, "2")]),
    );
    let (verdict, denials) = run(&admin, &req);
    assert_untouched(verdict);
    assert!(denials.is_empty());

    let session = app();
    let resp: DescribeConfigsResponse = answer_of(run(&session, &req).0, &req);
    assert_eq!(
        config_results(&resp),
        [
            (CONFIG_BROKER, "1".to_owned(), CLUSTER_DENIED),
            (CONFIG_BROKER, "2".to_owned(), CLUSTER_DENIED),
        ]
    );
}

#[test]
fn broker_logger_configs_need_the_cluster_operation() {
    let admin = cluster_admin();
    let req = request(
        ApiKey::DescribeConfigs,
        4,
        &describe_configs(&[(CONFIG_BROKER_LOGGER, "1")]),
    );
    let (verdict, denials) = run(&admin, &req);
    assert!(
        denials.is_empty(),
        "denied an operation the session holds: {denials:?}"
    );
    assert_untouched(verdict);
    let req = request(
        ApiKey::IncrementalAlterConfigs,
        1,
        &incremental_alter_configs(&[(CONFIG_BROKER_LOGGER, "1")]),
    );
    let (verdict, denials) = run(&admin, &req);
    assert!(denials.is_empty(), "{denials:?}");
    assert_untouched(verdict);
}

#[test]
fn alter_configs_needs_alter_configs() {
    let session = app();
    for version in versions(ApiKey::IncrementalAlterConfigs) {
        // All refused: `orders-eu` (Write and Describe only) and a broker (nothing on the cluster).
        let req = request(
            ApiKey::IncrementalAlterConfigs,
            version,
            &incremental_alter_configs(&[(CONFIG_TOPIC, "orders-eu"), (CONFIG_BROKER, "1")]),
        );
        let (verdict, denials) = run(&session, &req);
        assert_eq!(
            denials,
            [
                denial(Operation::AlterConfigs, "Topic:orders-eu"),
                denial(Operation::AlterConfigs, "Cluster:kafka-cluster"),
            ]
        );
        let resp: IncrementalAlterConfigsResponse = answer_of(verdict, &req);
        let got: Vec<_> = resp
            .responses
            .iter()
            .map(|r| (r.resource_type, r.resource_name.to_string(), r.error_code))
            .collect();
        assert_eq!(
            got,
            [
                (CONFIG_TOPIC, "orders-eu".to_owned(), TOPIC_DENIED),
                (CONFIG_BROKER, "1".to_owned(), CLUSTER_DENIED),
            ],
            "v{version}"
        );

        // Partly refused.
        let req = request(
            ApiKey::IncrementalAlterConfigs,
            version,
            &incremental_alter_configs(&[(CONFIG_TOPIC, "scratch-1"), (CONFIG_BROKER, "1")]),
        );
        let f = forwarded(run(&session, &req).0);
        let sent: IncrementalAlterConfigsRequest =
            decode_forwarded(&f.frame.expect("re-encoded"), &req);
        assert_eq!(sent.resources.len(), 1);
        assert_eq!(
            sent.resources[0].configs.len(),
            1,
            "the changes are forwarded"
        );
        let resp = patched(
            f.patch.expect("a patch"),
            version,
            &IncrementalAlterConfigsResponse::default(),
        );
        assert_eq!(resp.responses.len(), 1);
        assert_eq!(resp.responses[0].error_code, CLUSTER_DENIED);
    }
    for version in versions(ApiKey::AlterConfigs) {
        let req = request(
            ApiKey::AlterConfigs,
            version,
            &alter_configs(&[(CONFIG_TOPIC, "scratch-1"), (CONFIG_TOPIC, "secret")]),
        );
        let (verdict, denials) = run(&session, &req);
        assert_eq!(denials, [denial(Operation::AlterConfigs, "Topic:secret")]);
        let f = forwarded(verdict);
        let sent: AlterConfigsRequest = decode_forwarded(&f.frame.expect("re-encoded"), &req);
        assert_eq!(sent.resources[0].resource_name.as_str(), "scratch-1");
        let resp = patched(
            f.patch.expect("a patch"),
            version,
            &AlterConfigsResponse::default(),
        );
        assert_eq!(resp.responses.len(), 1);
        assert_eq!(resp.responses[0].resource_name.as_str(), "secret");
        assert_eq!(resp.responses[0].error_code, TOPIC_DENIED, "v{version}");
    }
    let admin = cluster_admin();
    let req = request(
        ApiKey::IncrementalAlterConfigs,
        1,
        &incremental_alter_configs(&[(CONFIG_BROKER, "1")]),
    );
    assert_untouched(run(&admin, &req).0);
}

// ---------------------------------------------------------------------------------------------
// Producers and the cluster

#[test]
fn init_producer_id_without_transactional_id_needs_idempotent_write() {
    // Write on some topic implies IdempotentWrite on the cluster.
    let writer = app();
    let reader = session_with(&["role DeveloperRead Topic:*"]);
    for version in versions(ApiKey::InitProducerId) {
        let req = request(ApiKey::InitProducerId, version, &init_producer_id(None));
        let (verdict, denials) = run(&writer, &req);
        assert_untouched(verdict);
        assert!(denials.is_empty());

        let (verdict, denials) = run(&reader, &req);
        assert_eq!(
            denials,
            [denial(Operation::IdempotentWrite, "Cluster:kafka-cluster")]
        );
        let resp: InitProducerIdResponse = answer_of(verdict, &req);
        assert_eq!(resp.error_code, CLUSTER_DENIED, "v{version}");
        assert_eq!(resp.producer_id, ProducerId(-1));
        assert_eq!(resp.producer_epoch, -1);
    }
}

#[test]
fn init_producer_id_with_transactional_id_needs_write_on_it() {
    let session = app();
    for version in versions(ApiKey::InitProducerId) {
        let req = request(
            ApiKey::InitProducerId,
            version,
            &init_producer_id(Some("txn-app")),
        );
        assert_untouched(run(&session, &req).0);

        let req = request(
            ApiKey::InitProducerId,
            version,
            &init_producer_id(Some("txn-other")),
        );
        let (verdict, denials) = run(&session, &req);
        assert_eq!(
            denials,
            [denial(Operation::Write, "TransactionalId:txn-other")]
        );
        let resp: InitProducerIdResponse = answer_of(verdict, &req);
        assert_eq!(resp.error_code, TXN_DENIED, "v{version}");
        assert_eq!(resp.producer_id, ProducerId(-1));
    }
}

#[test]
fn describe_cluster_rewrites_brokers_and_authorized_operations() {
    let session = cluster_admin();
    for version in versions(ApiKey::DescribeCluster) {
        let req = request(
            ApiKey::DescribeCluster,
            version,
            &DescribeClusterRequest::default(),
        );
        let (verdict, denials) = run(&session, &req);
        assert!(denials.is_empty());
        let f = forwarded(verdict);
        assert!(f.frame.is_none());
        let patch = f.patch.expect("the address rewrite");
        let mut upstream = DescribeClusterResponse::default();
        upstream.cluster_id = s("cluster-x");
        upstream.brokers = vec![
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(1))
                .with_host(s("broker-1.internal"))
                .with_port(9092),
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(2))
                .with_host(s("broker-2.internal"))
                .with_port(9093),
        ];
        upstream.cluster_authorized_operations = 0x0fff;
        let resp = patched(patch, version, &upstream);
        for b in &resp.brokers {
            assert_eq!((b.host.as_str(), b.port), (GW_HOST, GW_PORT), "v{version}");
        }
        assert_eq!(resp.brokers[1].broker_id, BrokerId(2));
        assert_eq!(
            resp.cluster_authorized_operations,
            bits(&[
                OP_CREATE,
                OP_DESCRIBE,
                OP_DESCRIBE_CONFIGS,
                OP_ALTER_CONFIGS
            ]),
            "v{version}"
        );

        // Not asked for: left as the broker sent it.
        let f = forwarded(run(&session, &req).0);
        let resp = patched(
            f.patch.unwrap(),
            version,
            &DescribeClusterResponse::default(),
        );
        assert_eq!(resp.cluster_authorized_operations, i32::MIN);
    }
}

// ---------------------------------------------------------------------------------------------
// Unchecked APIs and versions, malformed bodies

#[test]
fn an_unchecked_api_is_unsupported_unless_passed_through() {
    let session = app();
    let req = request(ApiKey::DescribeAcls, 3, &DescribeAclsRequest::default());
    let (verdict, denials) = run(&session, &req);
    assert!(
        matches!(verdict, Verdict::Unsupported),
        "{}",
        kind(&verdict)
    );
    assert!(denials.is_empty());

    let (verdict, denials) = run_with(&session, &req, true);
    assert_untouched(verdict);
    assert!(denials.is_empty());
}

#[test]
fn a_checked_api_outside_its_checked_versions_is_unsupported() {
    let session = app();
    for (api, version) in [
        (ApiKey::Fetch, 13),
        (ApiKey::Fetch, 3),
        (ApiKey::Produce, 10),
        (ApiKey::DeleteTopics, 6),
        (ApiKey::OffsetFetch, 8),
        (ApiKey::Metadata, 13),
        (ApiKey::Metadata, 3),
    ] {
        // The body need not even decode: the version alone decides.
        let mut payload = BytesMut::new();
        let mut header = RequestHeader::default();
        header.request_api_key = api as i16;
        header.request_api_version = version;
        header.correlation_id = CORRELATION_ID;
        header
            .encode(&mut payload, api.request_header_version(version))
            .unwrap();
        let req = Request::parse(payload.freeze()).unwrap();
        let (verdict, denials) = run(&session, &req);
        assert!(
            matches!(verdict, Verdict::Unsupported),
            "{api:?} v{version}: {}",
            kind(&verdict)
        );
        assert!(denials.is_empty());
    }
}

#[test]
fn a_checked_api_outside_its_checked_versions_is_never_passed_through() {
    let session = app();
    for version in 10..=11 {
        let req = request(ApiKey::Produce, version, &produce(-1, &[("secret", &[0])]));
        let (verdict, _) = run_with(&session, &req, true);
        assert!(
            matches!(verdict, Verdict::Unsupported),
            "Produce v{version} to a refused topic: {}",
            kind(&verdict)
        );
    }
}

#[test]
fn truncated_bodies_are_errors_never_panics() {
    let session = app();
    let advertised = (StrBytes::from_static_str(GW_HOST), GW_PORT);
    let mut cases = 0;
    for &(api, lo, hi) in OFFERED {
        for version in lo..=hi {
            let req = sample(api, version);
            let header_len = req.frame.len() - req.body.len();
            for cut in 0..req.body.len() {
                let truncated = Request::parse(req.frame.slice(..header_len + cut)).unwrap();
                let cx = Context {
                    session: &session,
                    advertised: &advertised,
                    pass_through: false,
                };
                let mut denials = Vec::new();
                let result = check(&truncated, &cx, &mut denials);
                // ListGroups v0-2 and DescribeCluster have nothing to check in the request:
                // they are forwarded (and the broker refuses the truncated body).
                if !matches!(api, ApiKey::ListGroups | ApiKey::DescribeCluster) {
                    assert!(
                        result.is_err(),
                        "{api:?} v{version} cut at {cut}/{}: {}",
                        req.body.len(),
                        result.as_ref().map(kind).unwrap_or_default()
                    );
                }
                cases += 1;
            }
        }
    }
    assert!(cases > 1000, "{cases}");
}

/// Checks mutated versions of every sample request: any verdict or error is fine, a panic or
/// an abort is not. Only run in a child process (see `in_child_process`): a mutated length can
/// abort the whole process (see `a_huge_array_length_is_an_error_not_an_abort`).
#[test]
fn child_garbage_bodies() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let session = app();
    let advertised = (StrBytes::from_static_str(GW_HOST), GW_PORT);
    // A small deterministic generator (xorshift).
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for &(api, lo, hi) in OFFERED {
        for version in lo..=hi {
            let req = sample(api, version);
            let header_len = req.frame.len() - req.body.len();
            if req.body.is_empty() {
                continue;
            }
            for _ in 0..40 {
                let mut frame = req.frame.to_vec();
                for _ in 0..3 {
                    let at = header_len + usize::try_from(next()).unwrap() % req.body.len();
                    frame[at] = next().to_be_bytes()[0];
                }
                let mutated = Request::parse(Bytes::from(frame)).unwrap();
                let cx = Context {
                    session: &session,
                    advertised: &advertised,
                    pass_through: false,
                };
                let mut denials = Vec::new();
                let _ = check(&mutated, &cx, &mut denials);
            }
        }
    }
}

#[test]
fn garbage_bodies_never_panic_or_abort() {
    in_child_process("child_garbage_bodies");
}

const CHILD: &str = "POOLGATE_ACL_TESTS_CHILD";

/// Runs the test `name` of this module in a child process (this test binary, with `CHILD` set),
/// so that an abort does not take the whole test run down; fails if the child does not succeed.
fn in_child_process(name: &str) {
    let exe = std::env::current_exe().unwrap();
    let module = module_path!().split_once("::").map_or("", |(_, m)| m);
    let out = std::process::Command::new(exe)
        .args([
            &format!("{module}::{name}"),
            "--exact",
            "--test-threads",
            "1",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let head: Vec<&str> = stderr.lines().take(3).collect();
    assert!(
        out.status.success(),
        "the child process failed ({}): {}",
        out.status,
        head.join(" | ")
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("1 passed"),
        "the child test did not run: {stdout}"
    );
}

/// Produce v3 with a `topic_data` array announcing 2^31-1 topics (4 bytes of body).
fn produce_claiming_huge_array(version: i16) -> Request {
    let mut body = BytesMut::new();
    produce(-1, &[]).encode(&mut body, version).unwrap();
    let mut bytes = body.to_vec();
    // v3-8: nullable transactional id (-1), acks, timeout, then the array length (int32).
    let len_at = bytes.len() - 4;
    bytes[len_at..].copy_from_slice(&i32::MAX.to_be_bytes());
    let mut payload = BytesMut::new();
    let mut header = RequestHeader::default();
    header.request_api_key = ApiKey::Produce as i16;
    header.request_api_version = version;
    header.correlation_id = CORRELATION_ID;
    header
        .encode(
            &mut payload,
            ApiKey::Produce.request_header_version(version),
        )
        .unwrap();
    payload.extend_from_slice(&bytes);
    Request::parse(payload.freeze()).unwrap()
}

#[test]
fn child_decode_huge_array_length() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let session = app();
    let req = produce_claiming_huge_array(3);
    let advertised = (StrBytes::from_static_str(GW_HOST), GW_PORT);
    let cx = Context {
        session: &session,
        advertised: &advertised,
        pass_through: false,
    };
    let mut denials = Vec::new();
    assert!(check(&req, &cx, &mut denials).is_err());
}

#[test]
fn a_huge_array_length_is_an_error_not_an_abort() {
    in_child_process("child_decode_huge_array_length");
}

// ---------------------------------------------------------------------------------------------
// Every checked API at every checked version

#[test]
fn every_checked_api_and_version_gets_a_well_formed_verdict() {
    let session = app();
    for &(api, lo, hi) in OFFERED {
        for version in lo..=hi {
            let req = sample(api, version);
            let (verdict, _) = run(&session, &req);
            match verdict {
                Verdict::Forward { frame, .. } => {
                    if let Some(frame) = frame {
                        let sent = Request::parse(frame.slice(4..)).unwrap();
                        assert_eq!(sent.correlation_id(), CORRELATION_ID);
                        assert_eq!(
                            sent.frame.len() + 4,
                            frame.len(),
                            "{api:?} v{version}: length prefix"
                        );
                    }
                }
                Verdict::Answer(Some(frame)) => {
                    let (correlation_id, body) =
                        split_response(api, version, frame.slice(4..)).unwrap();
                    assert_eq!(correlation_id, CORRELATION_ID, "{api:?} v{version}");
                    assert!(!body.is_empty());
                }
                Verdict::Answer(None) => panic!("{api:?} v{version}: only acks=0 gets no answer"),
                Verdict::Unsupported => panic!("{api:?} v{version}: unsupported"),
            }
        }
    }
}

#[test]
fn denials_list_every_refused_operation_and_resource() {
    let session = app();
    let req = request(
        ApiKey::Produce,
        9,
        &produce(
            -1,
            &[
                ("secret", &[0]),
                ("orders-eu", &[0]),
                ("events-a", &[0]),
                ("secret-2", &[0]),
            ],
        ),
    );
    assert_eq!(
        run(&session, &req).1,
        [
            denial(Operation::Write, "Topic:secret"),
            denial(Operation::Write, "Topic:events-a"),
            denial(Operation::Write, "Topic:secret-2"),
        ]
    );
    let req = request(
        ApiKey::DeleteGroups,
        2,
        &delete_groups(&["other-1", "other-2"]),
    );
    assert_eq!(
        run(&session, &req).1,
        [
            denial(Operation::Delete, "Group:other-1"),
            denial(Operation::Delete, "Group:other-2"),
        ]
    );
    // Allowed requests refuse nothing.
    let req = request(ApiKey::Heartbeat, 4, &heartbeat("app-1"));
    assert!(run(&session, &req).1.is_empty());
}

// ---------------------------------------------------------------------------------------------
// advertised_versions

fn ranges(v: &[ApiVersion]) -> Vec<(ApiKey, i16, i16)> {
    v.iter()
        .map(|a| {
            (
                ApiKey::try_from(a.api_key).unwrap(),
                a.min_version,
                a.max_version,
            )
        })
        .collect()
}

fn range_of(v: &[(ApiKey, i16, i16)], api: ApiKey) -> Option<(i16, i16)> {
    v.iter()
        .find(|(k, ..)| *k == api)
        .map(|&(_, lo, hi)| (lo, hi))
}

#[test]
fn advertised_versions_without_upstream() {
    let v = ranges(&advertised_versions(None, &[]));
    assert_eq!(range_of(&v, ApiKey::SaslHandshake), Some((1, 1)));
    assert_eq!(range_of(&v, ApiKey::SaslAuthenticate), Some((0, 2)));
    assert_eq!(range_of(&v, ApiKey::ApiVersions), Some((0, 3)));
    for &(api, lo, hi) in OFFERED {
        assert_eq!(range_of(&v, api), Some((lo, hi)), "{api:?}");
    }
    assert_eq!(v.len(), 3 + OFFERED.len(), "nothing else: {v:?}");
    assert_eq!(range_of(&v, ApiKey::Fetch), Some((4, 12)));
    assert_eq!(range_of(&v, ApiKey::DescribeAcls), None);
}

#[test]
fn the_checked_versions_are_the_readmes() {
    let mut code: Vec<_> = checked().collect();
    let mut readme = OFFERED.to_vec();
    code.sort_by_key(|&(api, ..)| api as i16);
    readme.sort_by_key(|&(api, ..)| api as i16);
    assert_eq!(code, readme);
    for &(api, lo, hi) in OFFERED {
        assert_eq!(checked_range(api), Some((lo, hi)), "{api:?}");
    }
    let unchecked = (0..1000)
        .filter_map(|k| ApiKey::try_from(k).ok())
        .filter(|api| !OFFERED.iter().any(|(k, ..)| k == api));
    for api in unchecked {
        assert_eq!(checked_range(api), None, "{api:?}");
    }
    // The README's enforcement table, where these literals come from.
    let text = include_str!("../../../README.md");
    for &(api, lo, hi) in OFFERED {
        let entry = format!("{api:?} ({lo}-{hi})");
        assert!(text.contains(&entry), "README.md lacks `{entry}`");
    }
}

#[test]
fn advertised_versions_intersect_with_the_upstream() {
    let mut upstream = ApiVersionsResponse::default();
    upstream.api_keys = OFFERED
        .iter()
        .filter(|(api, ..)| *api != ApiKey::DeleteGroups)
        .map(|&(api, ..)| {
            let (lo, hi) = match api {
                ApiKey::Fetch => (0, 11),
                ApiKey::Produce => (5, 13),
                ApiKey::Metadata => (0, 6),
                ApiKey::ListGroups => (7, 9),
                _ => (0, 99),
            };
            ApiVersion::default()
                .with_api_key(api as i16)
                .with_min_version(lo)
                .with_max_version(hi)
        })
        .collect();
    let v = ranges(&advertised_versions(Some(&upstream), &[]));
    assert_eq!(range_of(&v, ApiKey::Fetch), Some((4, 11)));
    assert_eq!(range_of(&v, ApiKey::Produce), Some((5, 9)));
    assert_eq!(range_of(&v, ApiKey::Metadata), Some((4, 6)));
    assert_eq!(
        range_of(&v, ApiKey::DeleteGroups),
        None,
        "an API the upstream lacks is not offered"
    );
    assert_eq!(
        range_of(&v, ApiKey::ListGroups),
        None,
        "an empty intersection is not offered"
    );
    assert_eq!(range_of(&v, ApiKey::JoinGroup), Some((0, 9)));
    // Answered by the gateway itself, whatever the upstream says.
    assert_eq!(range_of(&v, ApiKey::SaslHandshake), Some((1, 1)));
    assert_eq!(range_of(&v, ApiKey::SaslAuthenticate), Some((0, 2)));
    assert_eq!(range_of(&v, ApiKey::ApiVersions), Some((0, 3)));
}

#[test]
fn advertised_versions_add_pass_through_apis() {
    let v = ranges(&advertised_versions(
        None,
        &[ApiKey::DescribeProducers, ApiKey::Fetch],
    ));
    let crate_range = ApiKey::DescribeProducers.valid_versions();
    assert_eq!(
        range_of(&v, ApiKey::DescribeProducers),
        Some((crate_range.min, crate_range.max))
    );
    assert_eq!(
        range_of(&v, ApiKey::Fetch),
        Some((4, 12)),
        "a checked API keeps its checked range even when listed as a pass-through"
    );
    assert_eq!(v.iter().filter(|(k, ..)| *k == ApiKey::Fetch).count(), 1);

    let mut upstream = ApiVersionsResponse::default();
    upstream.api_keys = vec![
        ApiVersion::default()
            .with_api_key(ApiKey::DescribeProducers as i16)
            .with_min_version(0)
            .with_max_version(0),
    ];
    let v = ranges(&advertised_versions(
        Some(&upstream),
        &[ApiKey::DescribeProducers, ApiKey::DescribeAcls],
    ));
    assert_eq!(range_of(&v, ApiKey::DescribeProducers), Some((0, 0)));
    assert_eq!(range_of(&v, ApiKey::DescribeAcls), None, "not upstream");
}

// ---------------------------------------------------------------------------------------------
// Transactions

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

fn add_partitions_codes(r: &AddPartitionsToTxnResponse) -> Vec<(String, Vec<(i32, i16)>)> {
    r.results_by_topic_v3_and_below
        .iter()
        .map(|t| {
            (
                t.name.0.to_string(),
                t.results_by_partition
                    .iter()
                    .map(|p| (p.partition_index, p.partition_error_code))
                    .collect(),
            )
        })
        .collect()
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
    r.topics = topics
        .iter()
        .map(|(name, parts)| {
            let mut t = TxnOffsetCommitRequestTopic::default();
            t.name = topic(name);
            t.partitions = parts
                .iter()
                .map(|&p| {
                    let mut d = TxnOffsetCommitRequestPartition::default();
                    d.partition_index = p;
                    d.committed_offset = 10;
                    d
                })
                .collect();
            t
        })
        .collect();
    r
}

fn txn_offset_commit_codes(r: &TxnOffsetCommitResponse) -> Vec<(String, Vec<(i32, i16)>)> {
    r.topics
        .iter()
        .map(|t| {
            (
                t.name.0.to_string(),
                t.partitions
                    .iter()
                    .map(|p| (p.partition_index, p.error_code))
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn add_partitions_to_txn_needs_write_on_the_transaction_and_every_topic() {
    let session = app();
    for version in versions(ApiKey::AddPartitionsToTxn) {
        let ok = request(
            ApiKey::AddPartitionsToTxn,
            version,
            &add_partitions_to_txn("txn-app", &[("orders-eu", &[0, 1])]),
        );
        let (verdict, denials) = run(&session, &ok);
        assert_untouched(verdict);
        assert!(denials.is_empty());

        let mixed = request(
            ApiKey::AddPartitionsToTxn,
            version,
            &add_partitions_to_txn("txn-app", &[("orders-eu", &[0]), ("secret", &[1, 2])]),
        );
        let (verdict, denials) = run(&session, &mixed);
        assert_eq!(denials, [denial(Operation::Write, "Topic:secret")]);
        let resp: AddPartitionsToTxnResponse = answer_of(verdict, &mixed);
        assert_eq!(
            add_partitions_codes(&resp),
            [
                ("orders-eu".to_owned(), vec![(0, 55)]),
                (
                    "secret".to_owned(),
                    vec![(1, TOPIC_DENIED), (2, TOPIC_DENIED)]
                ),
            ],
            "v{version}: nothing is added when any topic is refused"
        );

        let txn = request(
            ApiKey::AddPartitionsToTxn,
            version,
            &add_partitions_to_txn("txn-other", &[("orders-eu", &[0])]),
        );
        let (verdict, denials) = run(&session, &txn);
        assert_eq!(
            denials,
            [denial(Operation::Write, "TransactionalId:txn-other")]
        );
        let resp: AddPartitionsToTxnResponse = answer_of(verdict, &txn);
        assert_eq!(
            add_partitions_codes(&resp),
            [("orders-eu".to_owned(), vec![(0, TXN_DENIED)])]
        );
    }
}

#[test]
fn add_offsets_and_end_txn_check_the_transaction_then_the_group() {
    let session = app();
    for version in versions(ApiKey::AddOffsetsToTxn) {
        let ok = request(
            ApiKey::AddOffsetsToTxn,
            version,
            &add_offsets_to_txn("txn-app", "app-1"),
        );
        assert_untouched(run(&session, &ok).0);
        let group_refused = request(
            ApiKey::AddOffsetsToTxn,
            version,
            &add_offsets_to_txn("txn-app", "other-1"),
        );
        let (verdict, denials) = run(&session, &group_refused);
        assert_eq!(denials, [denial(Operation::Read, "Group:other-1")]);
        let resp: AddOffsetsToTxnResponse = answer_of(verdict, &group_refused);
        assert_eq!(resp.error_code, GROUP_DENIED);
        let txn_refused = request(
            ApiKey::AddOffsetsToTxn,
            version,
            &add_offsets_to_txn("txn-other", "app-1"),
        );
        let resp: AddOffsetsToTxnResponse = answer_of(run(&session, &txn_refused).0, &txn_refused);
        assert_eq!(resp.error_code, TXN_DENIED, "v{version}");
    }
    for version in versions(ApiKey::EndTxn) {
        assert_untouched(
            run(
                &session,
                &request(ApiKey::EndTxn, version, &end_txn("txn-app")),
            )
            .0,
        );
        let req = request(ApiKey::EndTxn, version, &end_txn("txn-other"));
        let (verdict, denials) = run(&session, &req);
        assert_eq!(
            denials,
            [denial(Operation::Write, "TransactionalId:txn-other")]
        );
        let resp: EndTxnResponse = answer_of(verdict, &req);
        assert_eq!(resp.error_code, TXN_DENIED, "v{version}");
    }
}

#[test]
fn txn_offset_commit_refuses_topics_one_by_one_and_groups_whole() {
    let session = app();
    for version in versions(ApiKey::TxnOffsetCommit) {
        let req = request(
            ApiKey::TxnOffsetCommit,
            version,
            &txn_offset_commit("txn-app", "app-1", &[("events-a", &[0]), ("secret", &[1])]),
        );
        let (verdict, denials) = run(&session, &req);
        assert_eq!(denials, [denial(Operation::Read, "Topic:secret")]);
        let f = forwarded(verdict);
        let sent: TxnOffsetCommitRequest = decode_forwarded(&f.frame.expect("re-encoded"), &req);
        assert_eq!(sent.topics.len(), 1);
        assert_eq!(sent.topics[0].name, topic("events-a"));
        let mut upstream = TxnOffsetCommitResponse::default();
        upstream.topics = vec![{
            let mut t = TxnOffsetCommitResponseTopic::default();
            t.name = topic("events-a");
            t.partitions = vec![TxnOffsetCommitResponsePartition::default()];
            t
        }];
        let resp = patched(f.patch.expect("a patch"), version, &upstream);
        assert_eq!(
            txn_offset_commit_codes(&resp),
            [
                ("events-a".to_owned(), vec![(0, 0)]),
                ("secret".to_owned(), vec![(1, TOPIC_DENIED)]),
            ],
            "v{version}"
        );

        let other_group = request(
            ApiKey::TxnOffsetCommit,
            version,
            &txn_offset_commit("txn-app", "other-1", &[("events-a", &[0])]),
        );
        let (verdict, denials) = run(&session, &other_group);
        assert_eq!(denials, [denial(Operation::Read, "Group:other-1")]);
        let resp: TxnOffsetCommitResponse = answer_of(verdict, &other_group);
        assert_eq!(
            txn_offset_commit_codes(&resp),
            [("events-a".to_owned(), vec![(0, GROUP_DENIED)])]
        );
    }
}
