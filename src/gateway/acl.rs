//! Per-API enforcement: which operation on which resource each request needs, what to forward,
//! and the error responses for what the session may not do.
//!
//! Requests naming several resources are split: the permitted part is forwarded and the refused
//! items are merged into the broker's response with Kafka's error codes, as a broker with ACLs
//! would answer. When nothing is permitted, the gateway answers alone and forwards nothing.

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse, ApiKey, ApiVersionsResponse, BrokerId, CreateTopicsRequest,
    CreateTopicsResponse, DeleteGroupsRequest, DeleteGroupsResponse, DeleteTopicsRequest,
    DeleteTopicsResponse, DescribeClusterResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    DescribeGroupsRequest, DescribeGroupsResponse, EndTxnRequest, EndTxnResponse,
    FindCoordinatorRequest, FindCoordinatorResponse, HeartbeatRequest, HeartbeatResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, InitProducerIdRequest,
    InitProducerIdResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, ListGroupsResponse, ListOffsetsRequest, ListOffsetsResponse,
    MetadataRequest, MetadataResponse, OffsetCommitRequest, OffsetCommitResponse,
    OffsetFetchRequest, OffsetFetchResponse, SyncGroupRequest, SyncGroupResponse, TopicName,
    TxnOffsetCommitRequest, TxnOffsetCommitResponse, alter_configs_request::AlterConfigsRequest,
    alter_configs_response::AlterConfigsResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use poolgate::authz::{Operation, Resource, ResourceType};
use poolgate::gate::Session;

use super::wire::{Request, WireError, response_frame};

const TOPIC_DENIED: i16 = 29;
const GROUP_DENIED: i16 = 30;
const CLUSTER_DENIED: i16 = 31;
const TXN_DENIED: i16 = 53;
const OPERATION_NOT_ATTEMPTED: i16 = 55;

/// Kafka's config resource types (DescribeConfigs, AlterConfigs).
const CONFIG_TOPIC: i8 = 2;
const CONFIG_BROKER: i8 = 4;
const CONFIG_BROKER_LOGGER: i8 = 8;
const CONFIG_CLIENT_METRICS: i8 = 16;
const CONFIG_GROUP: i8 = 32;

/// FindCoordinator key types.
const KEY_GROUP: i8 = 0;
const KEY_TRANSACTION: i8 = 1;

/// A change to the broker's response before it reaches the client: decode, edit, encode.
pub type Patch = Box<dyn FnOnce(i16, Bytes) -> Result<Bytes, WireError> + Send>;

/// One refused operation, for the audit log and metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    /// The operation.
    pub operation: Operation,
    /// The resource, as `Type:name` (`FetchSession:id` for a fetch session, which is no ACL
    /// resource).
    pub resource: String,
    /// Why.
    pub reason: Reason,
}

impl Denial {
    fn new(operation: Operation, resource: impl ToString, reason: Reason) -> Denial {
        Denial {
            operation,
            resource: resource.to_string(),
            reason,
        }
    }
}

/// Why a request, or part of one, was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The session's permissions do not allow the operation on the resource.
    NotAuthorized,
    /// A Fetch naming a fetch session (KIP-227), or an incremental epoch: the gateway lets no
    /// session be created, so the session is another connection's, or none.
    FetchSession,
    /// Transactional record batches in a Produce without a transactional id.
    TransactionalBatches,
    /// A control batch written by a client.
    ControlBatch,
    /// Record batches Kafka refuses as invalid or corrupt (none whole, several, old magic).
    InvalidBatch,
}

impl Reason {
    /// The reason's name, for the audit log and the metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::NotAuthorized => "not_authorized",
            Reason::FetchSession => "fetch_session",
            Reason::TransactionalBatches => "transactional_batches",
            Reason::ControlBatch => "control_batch",
            Reason::InvalidBatch => "invalid_batch",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to do with a request.
pub enum Verdict {
    /// Forward it (the frame as received, or `frame` when set), then apply `patch`, if any, to
    /// the response. `respond` is false for a produce with `acks=0`, which gets no response.
    Forward {
        /// A re-encoded request replacing the original.
        frame: Option<Bytes>,
        /// The response edit.
        patch: Option<Patch>,
        /// Whether the broker will answer.
        respond: bool,
    },
    /// Answer locally with this frame (or nothing, for `acks=0`), forwarding nothing.
    Answer(Option<Bytes>),
    /// The API is not one the gateway checks nor a configured pass-through: refuse it.
    Unsupported,
}

/// What the checks need besides the request.
pub struct Context<'a> {
    /// The session.
    pub session: &'a Arc<Session>,
    /// The client-facing address of each broker node, and what the gateway learns of them.
    pub nodes: &'a Arc<dyn Nodes>,
    /// Whether the API is a configured pass-through.
    pub pass_through: bool,
}

/// Where clients reach each broker node, for the responses that name brokers (Metadata,
/// FindCoordinator, DescribeCluster), and what the gateway learns from those responses.
pub trait Nodes: Send + Sync {
    /// The address clients use for node `id`; `None` when the gateway cannot route it, and the
    /// broker is then left out (never given its own address).
    fn advertise(&self, id: i32) -> Option<(StrBytes, i32)>;
    /// A response named broker `id` at its upstream address `host:port`.
    fn seen(&self, id: i32, host: &str, port: i32);
    /// Broker `id` was left out of a response.
    fn unmapped(&self, id: i32);
}

/// Rewrites a response's broker list: each broker to its client-facing address (noting its
/// upstream address first), brokers that cannot be routed left out.
fn rewrite_brokers<B>(
    nodes: &dyn Nodes,
    brokers: &mut Vec<B>,
    fields: fn(&mut B) -> (i32, &mut StrBytes, &mut i32),
) {
    brokers.retain_mut(|b| {
        let (id, host, port) = fields(b);
        nodes.seen(id, host.as_str(), *port);
        match nodes.advertise(id) {
            Some((h, p)) => {
                *host = h;
                *port = p;
                true
            }
            None => {
                nodes.unmapped(id);
                false
            }
        }
    });
}

/// Rewrites one coordinator of a FindCoordinator response to its client-facing address; one
/// that cannot be routed becomes COORDINATOR_NOT_AVAILABLE (the client asks again), never its
/// own address.
fn rewrite_coordinator(
    nodes: &dyn Nodes,
    node_id: &mut BrokerId,
    host: &mut StrBytes,
    port: &mut i32,
    error_code: &mut i16,
) {
    if *error_code != 0 || node_id.0 < 0 {
        return;
    }
    nodes.seen(node_id.0, host.as_str(), *port);
    match nodes.advertise(node_id.0) {
        Some((h, p)) => {
            *host = h;
            *port = p;
        }
        None => {
            nodes.unmapped(node_id.0);
            *error_code = ResponseError::CoordinatorNotAvailable.code();
            *node_id = BrokerId(-1);
            *host = StrBytes::default();
            *port = -1;
        }
    }
}

/// The APIs the gateway checks, with the highest version it understands for each: versions
/// that name topics by id alone (Fetch 13+, DeleteTopics 6+) or batch groups (OffsetFetch 8+)
/// are not offered, Produce stops at 9, before responses carry broker addresses, and
/// AddPartitionsToTxn at 3, the last version clients use (4+ is broker to broker).
pub const CHECKED: &[(ApiKey, i16, i16)] = &[
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

/// The version range the gateway checks for `api`, if it checks it.
pub fn checked_range(api: ApiKey) -> Option<(i16, i16)> {
    CHECKED
        .iter()
        .find(|(k, ..)| *k == api)
        .map(|&(_, lo, hi)| (lo, hi))
}

fn allowed(s: &Session, op: Operation, r: Resource<'_>) -> bool {
    s.authorize(op, &r).is_allowed()
}

/// Kafka's authorized-operations bit field for `resource` (KIP-430).
/// Only the operations that apply to the resource's type are reported, as Kafka does.
fn authorized_ops(s: &Session, r: Resource<'_>) -> i32 {
    use Operation::*;
    let ops: &[(Operation, i32)] = match r.resource_type {
        ResourceType::Topic => &[
            (Read, 3),
            (Write, 4),
            (Create, 5),
            (Delete, 6),
            (Alter, 7),
            (Describe, 8),
            (DescribeConfigs, 10),
            (AlterConfigs, 11),
        ],
        ResourceType::Group => &[(Read, 3), (Delete, 6), (Describe, 8)],
        ResourceType::Cluster => &[
            (Create, 5),
            (Alter, 7),
            (Describe, 8),
            (ClusterAction, 9),
            (DescribeConfigs, 10),
            (AlterConfigs, 11),
            (IdempotentWrite, 12),
        ],
        ResourceType::TransactionalId => &[(Write, 4), (Describe, 8)],
        _ => &[],
    };
    ops.iter()
        .filter(|(op, _)| allowed(s, *op, r))
        .fold(0, |acc, (_, bit)| acc | (1 << bit))
}

fn patch<T, F>(edit: F) -> Patch
where
    T: Decodable + Encodable,
    F: FnOnce(&mut T) + Send + 'static,
{
    Box::new(move |version, body| {
        let mut b = body;
        let mut response = T::decode(&mut b, version)
            .map_err(|e| WireError::Upstream(format!("response body: {e}")))?;
        edit(&mut response);
        let mut out = bytes::BytesMut::new();
        response
            .encode(&mut out, version)
            .map_err(|e| WireError::Upstream(format!("re-encoding response: {e}")))?;
        Ok(out.freeze())
    })
}

fn answer<T, F>(req: &Request, edit: F) -> Result<Verdict, WireError>
where
    T: Default + Encodable,
    F: FnOnce(&mut T),
{
    let mut response = T::default();
    edit(&mut response);
    response_frame(req.api, req.version(), req.correlation_id(), &response)
        .map(|f| Verdict::Answer(Some(f)))
}

/// Forwards `kept` (re-encoded only when something was stripped) and merges `denied` into the
/// response (`always`: edit the response even when nothing was stripped); answers alone when
/// nothing is left to forward.
fn split<Q, T, F>(
    req: &Request,
    kept: Q,
    (stripped, empty, always): (bool, bool, bool),
    merge: F,
) -> Verdict
where
    Q: Encodable,
    T: Default + Decodable + Encodable,
    F: FnOnce(&mut T) + Send + 'static,
{
    if empty {
        return answer::<T, F>(req, merge).unwrap_or(Verdict::Unsupported);
    }
    if !stripped {
        return Verdict::Forward {
            frame: None,
            patch: always.then(|| patch::<T, F>(merge)),
            respond: true,
        };
    }
    match req.with_body(&kept) {
        Ok(frame) => Verdict::Forward {
            frame: Some(frame),
            patch: Some(patch::<T, F>(merge)),
            respond: true,
        },
        Err(_) => Verdict::Unsupported,
    }
}

fn forward(patch: Option<Patch>) -> Verdict {
    Verdict::Forward {
        frame: None,
        patch,
        respond: true,
    }
}

fn name(n: &TopicName) -> &str {
    n.0.as_str()
}

/// DescribeConfigs, AlterConfigs and IncrementalAlterConfigs: each resource needs `$op` on its
/// config target ([`config_target`]); refused ones come back in `$results` with their error.
macro_rules! config_arm {
    ($req:expr, $s:expr, $deny:ident, $Req:ty, $Resp:ty, $results:ident, $Result:ty, $op:expr) => {{
        let mut r: $Req = $req.decode()?;
        let mut refused = Vec::new();
        r.resources.retain(|c| {
            match config_target($s, c.resource_type, c.resource_name.as_str(), $op) {
                Ok(()) => true,
                Err((code, res)) => {
                    $deny($op, res);
                    refused.push((c.resource_type, c.resource_name.clone(), code));
                    false
                }
            }
        });
        let (stripped, empty) = (!refused.is_empty(), r.resources.is_empty());
        split::<_, $Resp, _>($req, r, (stripped, empty, false), move |resp| {
            resp.$results
                .extend(refused.into_iter().map(|(kind, name, code)| {
                    let mut d = <$Result>::default();
                    d.resource_type = kind;
                    d.resource_name = name;
                    d.error_code = code;
                    d
                }));
        })
    }};
}

/// Decides what to do with one request of an authenticated session, recording each refused
/// operation in `denials`.
///
/// # Errors
/// The body does not decode as its API and version: the connection is closed.
pub fn check(
    req: &Request,
    cx: &Context<'_>,
    denials: &mut Vec<Denial>,
) -> Result<Verdict, WireError> {
    let s: &Session = cx.session;
    let mut deny = |op: Operation, r: Resource<'_>| {
        denials.push(Denial::new(op, r, Reason::NotAuthorized));
    };
    let in_range =
        checked_range(req.api).is_some_and(|(lo, hi)| (lo..=hi).contains(&req.version()));
    if !in_range {
        // A checked API outside its checked versions is refused even when listed as a
        // pass-through (the configuration does not allow that, but this is the last line).
        return Ok(if cx.pass_through && checked_range(req.api).is_none() {
            forward(None)
        } else {
            Verdict::Unsupported
        });
    }
    let nodes = Arc::clone(cx.nodes);
    Ok(match req.api {
        ApiKey::Produce => produce::check(req, s, denials)?,
        ApiKey::Fetch => fetch::check(req, s, denials)?,
        ApiKey::ListOffsets => {
            let mut r: ListOffsetsRequest = req.decode()?;
            let (kept, refused): (Vec<_>, Vec<_>) = std::mem::take(&mut r.topics)
                .into_iter()
                .partition(|t| allowed(s, Operation::Describe, Resource::topic(name(&t.name))));
            for t in &refused {
                deny(Operation::Describe, Resource::topic(name(&t.name)));
            }
            let (stripped, empty) = (!refused.is_empty(), kept.is_empty());
            r.topics = kept;
            split::<_, ListOffsetsResponse, _>(req, r, (stripped, empty, false), move |resp| {
                resp.topics.extend(refused.into_iter().map(|t| {
                    let mut out =
                        kafka_protocol::messages::list_offsets_response::ListOffsetsTopicResponse::default();
                    out.name = t.name;
                    out.partitions = t
                        .partitions
                        .iter()
                        .map(|p| {
                            let mut d = kafka_protocol::messages::list_offsets_response::ListOffsetsPartitionResponse::default();
                            d.partition_index = p.partition_index;
                            d.error_code = TOPIC_DENIED;
                            d
                        })
                        .collect();
                    out
                }));
            })
        }
        ApiKey::Metadata => {
            let mut r: MetadataRequest = req.decode()?;
            let mut refused = Vec::new();
            let mut stripped = false;
            if let Some(topics) = r.topics.as_mut() {
                topics.retain(|t| {
                    let Some(n) = &t.name else { return true };
                    let ok = allowed(s, Operation::Describe, Resource::topic(name(n)));
                    if !ok {
                        refused.push(n.clone());
                    }
                    ok
                });
                stripped = !refused.is_empty();
                if r.allow_auto_topic_creation
                    && topics.iter().any(|t| {
                        t.name.as_ref().is_some_and(|n| {
                            !allowed(s, Operation::Create, Resource::topic(name(n)))
                                && !allowed(s, Operation::Create, Resource::cluster())
                        })
                    })
                {
                    r.allow_auto_topic_creation = false;
                    stripped = true;
                }
            }
            for n in &refused {
                deny(Operation::Describe, Resource::topic(name(n)));
            }
            let session = Arc::clone(cx.session);
            let want_cluster_ops = r.include_cluster_authorized_operations;
            let want_topic_ops = r.include_topic_authorized_operations;
            // A request naming topics gets only those back, even when every name was refused
            // and the forwarded list is empty (which some brokers read as "all topics").
            // (A topic asked for by id alone leaves the list unfiltered by name.)
            let named: Option<Vec<TopicName>> = r
                .topics
                .as_ref()
                .and_then(|ts| ts.iter().map(|t| t.name.clone()).collect());
            let edit = move |resp: &mut MetadataResponse| {
                rewrite_brokers(nodes.as_ref(), &mut resp.brokers, |b| {
                    (b.node_id.0, &mut b.host, &mut b.port)
                });
                resp.topics.retain(|t| {
                    t.name.as_ref().is_some_and(|n| {
                        named.as_ref().is_none_or(|names| names.contains(n))
                            && allowed(&session, Operation::Describe, Resource::topic(name(n)))
                    })
                });
                if want_topic_ops {
                    for t in &mut resp.topics {
                        if let Some(n) = &t.name {
                            t.topic_authorized_operations =
                                authorized_ops(&session, Resource::topic(name(n)));
                        }
                    }
                }
                if want_cluster_ops {
                    // As Kafka: the cluster's operations only for those who may Describe it.
                    resp.cluster_authorized_operations =
                        if allowed(&session, Operation::Describe, Resource::cluster()) {
                            authorized_ops(&session, Resource::cluster())
                        } else {
                            0
                        };
                }
                resp.topics.extend(refused.into_iter().map(|n| {
                    let mut t =
                        kafka_protocol::messages::metadata_response::MetadataResponseTopic::default(
                        );
                    t.name = Some(n);
                    t.error_code = TOPIC_DENIED;
                    t
                }));
            };
            let frame = if stripped {
                Some(req.with_body(&r)?)
            } else {
                None
            };
            Verdict::Forward {
                frame,
                patch: Some(patch::<MetadataResponse, _>(edit)),
                respond: true,
            }
        }
        ApiKey::FindCoordinator => {
            let r: FindCoordinatorRequest = req.decode()?;
            let key_type = r.key_type;
            // v0-3 name one coordinator at the top level, v4+ a list.
            let batched = req.version() >= 4;
            let rewrite = move |resp: &mut FindCoordinatorResponse| {
                let nodes = nodes.as_ref();
                if !batched {
                    rewrite_coordinator(
                        nodes,
                        &mut resp.node_id,
                        &mut resp.host,
                        &mut resp.port,
                        &mut resp.error_code,
                    );
                }
                for c in &mut resp.coordinators {
                    rewrite_coordinator(
                        nodes,
                        &mut c.node_id,
                        &mut c.host,
                        &mut c.port,
                        &mut c.error_code,
                    );
                }
            };
            if req.version() < 4 {
                match coordinator_resource(key_type, r.key.as_str()) {
                    Some((res, _)) if allowed(s, Operation::Describe, res) => {
                        forward(Some(patch::<FindCoordinatorResponse, _>(rewrite)))
                    }
                    found => {
                        let (res, code) = found.unwrap_or((Resource::cluster(), CLUSTER_DENIED));
                        deny(Operation::Describe, res);
                        answer::<FindCoordinatorResponse, _>(req, |resp| {
                            resp.error_code = code;
                            resp.node_id = BrokerId(-1);
                            resp.port = -1;
                        })?
                    }
                }
            } else {
                let mut kept = r.clone();
                let mut refused = Vec::new();
                kept.coordinator_keys.retain(|k| {
                    match coordinator_resource(key_type, k.as_str()) {
                        Some((res, _)) if allowed(s, Operation::Describe, res) => true,
                        found => {
                            let (res, code) =
                                found.unwrap_or((Resource::cluster(), CLUSTER_DENIED));
                            deny(Operation::Describe, res);
                            refused.push((k.clone(), code));
                            false
                        }
                    }
                });
                let (stripped, empty) = (!refused.is_empty(), kept.coordinator_keys.is_empty());
                split::<_, FindCoordinatorResponse, _>(
                    req,
                    kept,
                    (stripped, empty, true),
                    move |resp| {
                        rewrite(resp);
                        resp.coordinators.extend(refused.into_iter().map(|(key, code)| {
                        let mut c =
                            kafka_protocol::messages::find_coordinator_response::Coordinator::default();
                        c.key = key;
                        c.node_id = BrokerId(-1);
                        c.port = -1;
                        c.error_code = code;
                        c
                    }));
                    },
                )
            }
        }
        ApiKey::JoinGroup => {
            let r: JoinGroupRequest = req.decode()?;
            group_gate::<JoinGroupResponse>(req, s, r.group_id.0.as_str(), &mut deny, |resp| {
                resp.error_code = GROUP_DENIED;
                resp.generation_id = -1;
            })?
        }
        ApiKey::SyncGroup => {
            let r: SyncGroupRequest = req.decode()?;
            group_gate::<SyncGroupResponse>(req, s, r.group_id.0.as_str(), &mut deny, |resp| {
                resp.error_code = GROUP_DENIED;
            })?
        }
        ApiKey::Heartbeat => {
            let r: HeartbeatRequest = req.decode()?;
            group_gate::<HeartbeatResponse>(req, s, r.group_id.0.as_str(), &mut deny, |resp| {
                resp.error_code = GROUP_DENIED;
            })?
        }
        ApiKey::LeaveGroup => {
            let r: LeaveGroupRequest = req.decode()?;
            group_gate::<LeaveGroupResponse>(req, s, r.group_id.0.as_str(), &mut deny, |resp| {
                resp.error_code = GROUP_DENIED;
            })?
        }
        ApiKey::OffsetCommit => {
            let mut r: OffsetCommitRequest = req.decode()?;
            let group = r.group_id.0.to_string();
            let group_ok = allowed(s, Operation::Read, Resource::group(&group));
            if !group_ok {
                deny(Operation::Read, Resource::group(&group));
            }
            let (kept, refused): (Vec<_>, Vec<_>) =
                std::mem::take(&mut r.topics).into_iter().partition(|t| {
                    group_ok && allowed(s, Operation::Read, Resource::topic(name(&t.name)))
                });
            if group_ok {
                for t in &refused {
                    deny(Operation::Read, Resource::topic(name(&t.name)));
                }
            }
            let code = if group_ok { TOPIC_DENIED } else { GROUP_DENIED };
            let (stripped, empty) = (!refused.is_empty(), kept.is_empty());
            r.topics = kept;
            split::<_, OffsetCommitResponse, _>(
                req,
                r,
                (stripped, empty || !group_ok, false),
                move |resp| {
                    resp.topics.extend(refused.into_iter().map(|t| {
                    let mut out = kafka_protocol::messages::offset_commit_response::OffsetCommitResponseTopic::default();
                    out.name = t.name;
                    out.partitions = t
                        .partitions
                        .iter()
                        .map(|p| {
                            let mut d = kafka_protocol::messages::offset_commit_response::OffsetCommitResponsePartition::default();
                            d.partition_index = p.partition_index;
                            d.error_code = code;
                            d
                        })
                        .collect();
                    out
                }));
                },
            )
        }
        ApiKey::OffsetFetch => {
            let mut r: OffsetFetchRequest = req.decode()?;
            let group = r.group_id.0.to_string();
            if !allowed(s, Operation::Describe, Resource::group(&group)) {
                deny(Operation::Describe, Resource::group(&group));
                let topics = r.topics.take().unwrap_or_default();
                let version = req.version();
                return answer::<OffsetFetchResponse, _>(req, move |resp| {
                    resp.error_code = GROUP_DENIED;
                    if version < 2 {
                        resp.topics = topics
                            .into_iter()
                            .map(|t| offset_fetch_error(t, GROUP_DENIED))
                            .collect();
                    }
                });
            }
            let mut refused = Vec::new();
            if let Some(topics) = r.topics.as_mut() {
                let (kept, out): (Vec<_>, Vec<_>) = std::mem::take(topics)
                    .into_iter()
                    .partition(|t| allowed(s, Operation::Describe, Resource::topic(name(&t.name))));
                *topics = kept;
                refused = out;
            }
            for t in &refused {
                deny(Operation::Describe, Resource::topic(name(&t.name)));
            }
            let stripped = !refused.is_empty();
            let empty = stripped && r.topics.as_ref().is_some_and(Vec::is_empty);
            // Every topic of the group (topics = null): leave out those it may not Describe.
            let every = r.topics.is_none();
            let session = Arc::clone(cx.session);
            split::<_, OffsetFetchResponse, _>(req, r, (stripped, empty, every), move |resp| {
                if every {
                    resp.topics.retain(|t| {
                        allowed(
                            &session,
                            Operation::Describe,
                            Resource::topic(name(&t.name)),
                        )
                    });
                }
                resp.topics.extend(
                    refused
                        .into_iter()
                        .map(|t| offset_fetch_error(t, TOPIC_DENIED)),
                );
            })
        }
        ApiKey::DescribeGroups => {
            let mut r: DescribeGroupsRequest = req.decode()?;
            let (kept, refused): (Vec<_>, Vec<_>) = std::mem::take(&mut r.groups)
                .into_iter()
                .partition(|g| allowed(s, Operation::Describe, Resource::group(g.0.as_str())));
            for g in &refused {
                deny(Operation::Describe, Resource::group(g.0.as_str()));
            }
            let (stripped, empty) = (!refused.is_empty(), kept.is_empty());
            r.groups = kept;
            let want_ops = r.include_authorized_operations;
            let session = Arc::clone(cx.session);
            split::<_, DescribeGroupsResponse, _>(
                req,
                r,
                (stripped, empty, want_ops),
                move |resp| {
                    if want_ops {
                        for g in &mut resp.groups {
                            g.authorized_operations =
                                authorized_ops(&session, Resource::group(g.group_id.0.as_str()));
                        }
                    }
                    resp.groups.extend(refused.into_iter().map(|g| {
                        let mut d =
                        kafka_protocol::messages::describe_groups_response::DescribedGroup::default(
                        );
                        d.group_id = g;
                        d.error_code = GROUP_DENIED;
                        d.authorized_operations = i32::MIN;
                        d
                    }));
                },
            )
        }
        ApiKey::ListGroups => {
            let session = Arc::clone(cx.session);
            if allowed(s, Operation::Describe, Resource::cluster()) {
                return Ok(forward(None));
            }
            forward(Some(patch::<ListGroupsResponse, _>(move |resp| {
                resp.groups.retain(|g| {
                    allowed(
                        &session,
                        Operation::Describe,
                        Resource::group(g.group_id.0.as_str()),
                    )
                });
            })))
        }
        ApiKey::DeleteGroups => {
            let mut r: DeleteGroupsRequest = req.decode()?;
            let (kept, refused): (Vec<_>, Vec<_>) = std::mem::take(&mut r.groups_names)
                .into_iter()
                .partition(|g| allowed(s, Operation::Delete, Resource::group(g.0.as_str())));
            for g in &refused {
                deny(Operation::Delete, Resource::group(g.0.as_str()));
            }
            let (stripped, empty) = (!refused.is_empty(), kept.is_empty());
            r.groups_names = kept;
            split::<_, DeleteGroupsResponse, _>(req, r, (stripped, empty, false), move |resp| {
                resp.results.extend(refused.into_iter().map(|g| {
                    let mut d =
                        kafka_protocol::messages::delete_groups_response::DeletableGroupResult::default();
                    d.group_id = g;
                    d.error_code = GROUP_DENIED;
                    d
                }));
            })
        }
        ApiKey::CreateTopics => {
            let mut r: CreateTopicsRequest = req.decode()?;
            let cluster_ok = allowed(s, Operation::Create, Resource::cluster());
            let (kept, refused): (Vec<_>, Vec<_>) =
                std::mem::take(&mut r.topics).into_iter().partition(|t| {
                    cluster_ok || allowed(s, Operation::Create, Resource::topic(name(&t.name)))
                });
            for t in &refused {
                deny(Operation::Create, Resource::topic(name(&t.name)));
            }
            let (stripped, empty) = (!refused.is_empty(), kept.is_empty());
            r.topics = kept;
            split::<_, CreateTopicsResponse, _>(req, r, (stripped, empty, false), move |resp| {
                resp.topics.extend(refused.into_iter().map(|t| {
                    let mut d =
                        kafka_protocol::messages::create_topics_response::CreatableTopicResult::default();
                    d.name = t.name;
                    d.error_code = TOPIC_DENIED;
                    d.error_message = Some(StrBytes::from_static_str("Authorization failed."));
                    d.topic_config_error_code = TOPIC_DENIED;
                    d.num_partitions = -1;
                    d.replication_factor = -1;
                    d
                }));
            })
        }
        ApiKey::DeleteTopics => {
            let mut r: DeleteTopicsRequest = req.decode()?;
            let (kept, refused): (Vec<_>, Vec<_>) = std::mem::take(&mut r.topic_names)
                .into_iter()
                .partition(|t| allowed(s, Operation::Delete, Resource::topic(name(t))));
            for t in &refused {
                deny(Operation::Delete, Resource::topic(name(t)));
            }
            let (stripped, empty) = (!refused.is_empty(), kept.is_empty());
            r.topic_names = kept;
            split::<_, DeleteTopicsResponse, _>(req, r, (stripped, empty, false), move |resp| {
                resp.responses.extend(refused.into_iter().map(|t| {
                    let mut d =
                        kafka_protocol::messages::delete_topics_response::DeletableTopicResult::default();
                    d.name = Some(t);
                    d.error_code = TOPIC_DENIED;
                    d
                }));
            })
        }
        ApiKey::DescribeConfigs => config_arm!(
            req,
            s,
            deny,
            DescribeConfigsRequest,
            DescribeConfigsResponse,
            results,
            kafka_protocol::messages::describe_configs_response::DescribeConfigsResult,
            Operation::DescribeConfigs
        ),
        ApiKey::AlterConfigs => config_arm!(
            req,
            s,
            deny,
            AlterConfigsRequest,
            AlterConfigsResponse,
            responses,
            kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse,
            Operation::AlterConfigs
        ),
        ApiKey::IncrementalAlterConfigs => config_arm!(
            req,
            s,
            deny,
            IncrementalAlterConfigsRequest,
            IncrementalAlterConfigsResponse,
            responses,
            kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse,
            Operation::AlterConfigs
        ),
        ApiKey::InitProducerId => {
            let r: InitProducerIdRequest = req.decode()?;
            let (op, res, code) = match &r.transactional_id {
                Some(t) => (
                    Operation::Write,
                    Resource::transactional_id(t.0.as_str()),
                    TXN_DENIED,
                ),
                None => (
                    Operation::IdempotentWrite,
                    Resource::cluster(),
                    CLUSTER_DENIED,
                ),
            };
            if allowed(s, op, res) {
                forward(None)
            } else {
                deny(op, res);
                answer::<InitProducerIdResponse, _>(req, |resp| {
                    resp.error_code = code;
                    resp.producer_id = kafka_protocol::messages::ProducerId(-1);
                    resp.producer_epoch = -1;
                })?
            }
        }
        ApiKey::DescribeCluster => {
            let session = Arc::clone(cx.session);
            forward(Some(patch::<DescribeClusterResponse, _>(move |resp| {
                rewrite_brokers(nodes.as_ref(), &mut resp.brokers, |b| {
                    (b.broker_id.0, &mut b.host, &mut b.port)
                });
                if resp.cluster_authorized_operations != i32::MIN {
                    resp.cluster_authorized_operations =
                        authorized_ops(&session, Resource::cluster());
                }
            })))
        }
        ApiKey::AddPartitionsToTxn => {
            let r: AddPartitionsToTxnRequest = req.decode()?;
            let txn = r.v3_and_below_transactional_id.0.as_str();
            let txn_ok = allowed(s, Operation::Write, Resource::transactional_id(txn));
            if !txn_ok {
                deny(Operation::Write, Resource::transactional_id(txn));
            }
            let refused: Vec<bool> = r
                .v3_and_below_topics
                .iter()
                .map(|t| !allowed(s, Operation::Write, Resource::topic(name(&t.name))))
                .collect();
            if txn_ok {
                for (t, _) in r
                    .v3_and_below_topics
                    .iter()
                    .zip(&refused)
                    .filter(|(_, r)| **r)
                {
                    deny(Operation::Write, Resource::topic(name(&t.name)));
                }
            }
            if txn_ok && !refused.contains(&true) {
                forward(None)
            } else {
                // As Kafka: refused topics get 29 and the others OPERATION_NOT_ATTEMPTED (55);
                // a refused transactional id fails every partition with 53.
                answer::<AddPartitionsToTxnResponse, _>(req, |resp| {
                    resp.results_by_topic_v3_and_below = r
                        .v3_and_below_topics
                        .into_iter()
                        .zip(refused)
                        .map(|(t, topic_refused)| {
                            let code = match (txn_ok, topic_refused) {
                                (false, _) => TXN_DENIED,
                                (true, true) => TOPIC_DENIED,
                                (true, false) => OPERATION_NOT_ATTEMPTED,
                            };
                            let mut out = kafka_protocol::messages::add_partitions_to_txn_response::AddPartitionsToTxnTopicResult::default();
                            out.name = t.name;
                            out.results_by_partition = t
                                .partitions
                                .iter()
                                .map(|&p| {
                                    let mut d = kafka_protocol::messages::add_partitions_to_txn_response::AddPartitionsToTxnPartitionResult::default();
                                    d.partition_index = p;
                                    d.partition_error_code = code;
                                    d
                                })
                                .collect();
                            out
                        })
                        .collect();
                })?
            }
        }
        ApiKey::AddOffsetsToTxn => {
            let r: AddOffsetsToTxnRequest = req.decode()?;
            let txn = Resource::transactional_id(r.transactional_id.0.as_str());
            let group = Resource::group(r.group_id.0.as_str());
            let code = if !allowed(s, Operation::Write, txn) {
                deny(Operation::Write, txn);
                TXN_DENIED
            } else if !allowed(s, Operation::Read, group) {
                deny(Operation::Read, group);
                GROUP_DENIED
            } else {
                return Ok(forward(None));
            };
            answer::<AddOffsetsToTxnResponse, _>(req, |resp| resp.error_code = code)?
        }
        ApiKey::EndTxn => {
            let r: EndTxnRequest = req.decode()?;
            let txn = Resource::transactional_id(r.transactional_id.0.as_str());
            if allowed(s, Operation::Write, txn) {
                forward(None)
            } else {
                deny(Operation::Write, txn);
                answer::<EndTxnResponse, _>(req, |resp| {
                    resp.error_code = TXN_DENIED;
                    resp.producer_id = kafka_protocol::messages::ProducerId(-1);
                    resp.producer_epoch = -1;
                })?
            }
        }
        ApiKey::TxnOffsetCommit => {
            let mut r: TxnOffsetCommitRequest = req.decode()?;
            let txn = r.transactional_id.0.to_string();
            let group = r.group_id.0.to_string();
            let whole = if !allowed(s, Operation::Write, Resource::transactional_id(&txn)) {
                deny(Operation::Write, Resource::transactional_id(&txn));
                Some(TXN_DENIED)
            } else if !allowed(s, Operation::Read, Resource::group(&group)) {
                deny(Operation::Read, Resource::group(&group));
                Some(GROUP_DENIED)
            } else {
                None
            };
            let (kept, refused): (Vec<_>, Vec<_>) =
                std::mem::take(&mut r.topics).into_iter().partition(|t| {
                    whole.is_none() && allowed(s, Operation::Read, Resource::topic(name(&t.name)))
                });
            if whole.is_none() {
                for t in &refused {
                    deny(Operation::Read, Resource::topic(name(&t.name)));
                }
            }
            let code = whole.unwrap_or(TOPIC_DENIED);
            let (stripped, empty) = (!refused.is_empty(), kept.is_empty() || whole.is_some());
            r.topics = kept;
            split::<_, TxnOffsetCommitResponse, _>(req, r, (stripped, empty, false), move |resp| {
                resp.topics.extend(refused.into_iter().map(|t| {
                    let mut out = kafka_protocol::messages::txn_offset_commit_response::TxnOffsetCommitResponseTopic::default();
                    out.name = t.name;
                    out.partitions = t
                        .partitions
                        .iter()
                        .map(|p| {
                            let mut d = kafka_protocol::messages::txn_offset_commit_response::TxnOffsetCommitResponsePartition::default();
                            d.partition_index = p.partition_index;
                            d.error_code = code;
                            d
                        })
                        .collect();
                    out
                }));
            })
        }
        _ => {
            if cx.pass_through {
                forward(None)
            } else {
                Verdict::Unsupported
            }
        }
    })
}

/// Whether a config resource may be described or altered, and if not the error code and the
/// resource refused: a topic's configs are the topic's, a group's the group's, and brokers',
/// broker loggers' and client-metrics subscriptions' configs are the cluster's.
fn config_target<'a>(
    s: &Session,
    kind: i8,
    resource_name: &'a str,
    op: Operation,
) -> Result<(), (i16, Resource<'a>)> {
    let (resource, code) = match kind {
        CONFIG_TOPIC => (Resource::topic(resource_name), TOPIC_DENIED),
        CONFIG_GROUP => (Resource::group(resource_name), GROUP_DENIED),
        CONFIG_BROKER | CONFIG_BROKER_LOGGER | CONFIG_CLIENT_METRICS => {
            (Resource::cluster(), CLUSTER_DENIED)
        }
        _ => return Err((CLUSTER_DENIED, Resource::cluster())),
    };
    if allowed(s, op, resource) {
        Ok(())
    } else {
        Err((code, resource))
    }
}

/// The resource a FindCoordinator key names, and the error code for refusing it.
fn coordinator_resource(key_type: i8, key: &str) -> Option<(Resource<'_>, i16)> {
    match key_type {
        KEY_GROUP => Some((Resource::group(key), GROUP_DENIED)),
        KEY_TRANSACTION => Some((Resource::transactional_id(key), TXN_DENIED)),
        _ => None,
    }
}

fn group_gate<T: Default + Encodable>(
    req: &Request,
    s: &Session,
    group: &str,
    deny: &mut impl FnMut(Operation, Resource<'_>),
    refuse: impl FnOnce(&mut T),
) -> Result<Verdict, WireError> {
    if allowed(s, Operation::Read, Resource::group(group)) {
        Ok(forward(None))
    } else {
        deny(Operation::Read, Resource::group(group));
        answer::<T, _>(req, refuse)
    }
}

fn offset_fetch_error(
    t: kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic,
    code: i16,
) -> kafka_protocol::messages::offset_fetch_response::OffsetFetchResponseTopic {
    let mut out =
        kafka_protocol::messages::offset_fetch_response::OffsetFetchResponseTopic::default();
    out.name = t.name;
    out.partitions = t
        .partition_indexes
        .iter()
        .map(|&p| {
            let mut d =
                kafka_protocol::messages::offset_fetch_response::OffsetFetchResponsePartition::default();
            d.partition_index = p;
            d.committed_offset = -1;
            d.error_code = code;
            d
        })
        .collect();
    out
}

/// The versions advertised to clients: for each API the gateway serves (SASL, ApiVersions, the
/// checked APIs, the pass-throughs), the intersection of the gateway's range, the crate's and
/// the upstream broker's (when known).
pub fn advertised_versions(
    upstream: Option<&ApiVersionsResponse>,
    pass_through: &[ApiKey],
) -> Vec<kafka_protocol::messages::api_versions_response::ApiVersion> {
    let mut served: Vec<(ApiKey, i16, i16)> = vec![
        (ApiKey::ApiVersions, 0, 3),
        (ApiKey::SaslHandshake, 1, 1),
        (ApiKey::SaslAuthenticate, 0, 2),
    ];
    served.extend(CHECKED.iter().copied());
    for &api in pass_through {
        if checked_range(api).is_none() {
            let v = api.valid_versions();
            served.push((api, v.min, v.max));
        }
    }
    let mut out = Vec::new();
    for (api, lo, hi) in served {
        let crate_range = api.valid_versions();
        let (mut lo, mut hi) = (lo.max(crate_range.min), hi.min(crate_range.max));
        let local = matches!(
            api,
            ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate
        );
        if let Some(up) = upstream
            && !local
        {
            match up.api_keys.iter().find(|k| k.api_key == api as i16) {
                Some(k) => {
                    lo = lo.max(k.min_version);
                    hi = hi.min(k.max_version);
                }
                None => continue,
            }
        }
        if lo <= hi {
            let mut v = kafka_protocol::messages::api_versions_response::ApiVersion::default();
            v.api_key = api as i16;
            v.min_version = lo;
            v.max_version = hi;
            out.push(v);
        }
    }
    out
}

/// The error code for a refused API, where its response has a top-level error code.
pub fn unsupported_code() -> i16 {
    ResponseError::ClusterAuthorizationFailed.code()
}

mod batches;
mod fetch;
mod produce;
#[cfg(test)]
mod tests;
