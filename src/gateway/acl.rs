//! Per-API enforcement: which operation on which resource each request needs, what to forward,
//! and the error responses for what the session may not do.
//!
//! Requests naming several resources are split: the permitted part is forwarded and the refused
//! items are merged into the broker's response with Kafka's error codes, as a broker with ACLs
//! would answer. When nothing is permitted, the gateway answers alone and forwards nothing.
//!
//! This module owns the shared types, the shared helpers ([`sift`] a request's items into the
//! permitted and the refused, [`split`] to forward the permitted ones and merge the refusals
//! into the answer) and the one table of checked APIs, [`APIS`]. Each API family's checks live
//! in a child module; adding an API is one function there and one row in the table.

use std::ops::RangeInclusive;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable};
use poolgate::authz::{Operation, Resource, ResourceType};
use poolgate::gate::Session;

use super::wire::{Request, WireError, response_frame};

const TOPIC_DENIED: i16 = 29;
const GROUP_DENIED: i16 = 30;
const CLUSTER_DENIED: i16 = 31;
const TXN_DENIED: i16 = 53;
const OPERATION_NOT_ATTEMPTED: i16 = 55;

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
    /// Where clients reach each broker node. Read only through [`addresses::Addresses`], the
    /// one place that rewrites broker addresses in responses.
    pub nodes: &'a Arc<dyn Nodes>,
    /// Whether the API is a configured pass-through.
    pub pass_through: bool,
}

/// Checks one request of a checked API at a checked version, recording each refused operation
/// in the denials. An error means the body does not decode: the connection is closed.
type Check = fn(&Request, &Context<'_>, &mut Vec<Denial>) -> Result<Verdict, WireError>;

/// One checked API: the versions the gateway understands and the function that checks them.
struct Api {
    key: ApiKey,
    versions: RangeInclusive<i16>,
    check: Check,
}

impl Api {
    const fn new(key: ApiKey, versions: RangeInclusive<i16>, check: Check) -> Api {
        Api {
            key,
            versions,
            check,
        }
    }
}

/// The APIs the gateway checks, with the versions it understands for each: versions that name
/// topics by id alone (Fetch 13+, DeleteTopics 6+) or batch groups (OffsetFetch 8+) are not
/// offered, Produce stops at 9, before responses carry broker addresses, and AddPartitionsToTxn
/// at 3, the last version clients use (4+ is broker to broker). The README's enforcement table
/// lists the same ranges.
#[rustfmt::skip]
const APIS: &[Api] = &[
    Api::new(ApiKey::Produce,                 3..=9,  produce::check),
    Api::new(ApiKey::Fetch,                   4..=12, fetch::check),
    Api::new(ApiKey::ListOffsets,             1..=10, offsets::list_offsets),
    Api::new(ApiKey::Metadata,                4..=12, cluster::metadata),
    Api::new(ApiKey::OffsetCommit,            2..=9,  offsets::offset_commit),
    Api::new(ApiKey::OffsetFetch,             1..=7,  offsets::offset_fetch),
    Api::new(ApiKey::FindCoordinator,         0..=6,  cluster::find_coordinator),
    Api::new(ApiKey::JoinGroup,               0..=9,  groups::join_group),
    Api::new(ApiKey::Heartbeat,               0..=4,  groups::heartbeat),
    Api::new(ApiKey::LeaveGroup,              0..=5,  groups::leave_group),
    Api::new(ApiKey::SyncGroup,               0..=5,  groups::sync_group),
    Api::new(ApiKey::DescribeGroups,          0..=6,  groups::describe_groups),
    Api::new(ApiKey::ListGroups,              0..=5,  groups::list_groups),
    Api::new(ApiKey::DeleteGroups,            0..=2,  groups::delete_groups),
    Api::new(ApiKey::CreateTopics,            2..=7,  topics::create_topics),
    Api::new(ApiKey::DeleteTopics,            1..=5,  topics::delete_topics),
    Api::new(ApiKey::DescribeConfigs,         1..=4,  configs::describe_configs),
    Api::new(ApiKey::AlterConfigs,            0..=2,  configs::alter_configs),
    Api::new(ApiKey::IncrementalAlterConfigs, 0..=1,  configs::incremental_alter_configs),
    Api::new(ApiKey::InitProducerId,          0..=5,  txn::init_producer_id),
    Api::new(ApiKey::DescribeCluster,         0..=2,  cluster::describe_cluster),
    Api::new(ApiKey::AddPartitionsToTxn,      0..=3,  txn::add_partitions_to_txn),
    Api::new(ApiKey::AddOffsetsToTxn,         0..=4,  txn::add_offsets_to_txn),
    Api::new(ApiKey::EndTxn,                  0..=5,  txn::end_txn),
    Api::new(ApiKey::TxnOffsetCommit,         0..=5,  txn::txn_offset_commit),
];

fn api(key: ApiKey) -> Option<&'static Api> {
    APIS.iter().find(|a| a.key == key)
}

/// The APIs the gateway checks, each with its checked version range, in [`APIS`] order.
pub fn checked() -> impl Iterator<Item = (ApiKey, i16, i16)> {
    APIS.iter()
        .map(|a| (a.key, *a.versions.start(), *a.versions.end()))
}

/// The version range the gateway checks for `api`, if it checks it.
pub fn checked_range(key: ApiKey) -> Option<(i16, i16)> {
    api(key).map(|a| (*a.versions.start(), *a.versions.end()))
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
    match api(req.api) {
        Some(a) if a.versions.contains(&req.version()) => (a.check)(req, cx, denials),
        // A checked API outside its checked versions is refused even when listed as a
        // pass-through (the configuration does not allow that, but this is the last line).
        Some(_) => Ok(Verdict::Unsupported),
        None if cx.pass_through => Ok(forward(None)),
        None => Ok(Verdict::Unsupported),
    }
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

/// A response edit: decodes the broker's answer as `T`, applies `edit`, encodes it again.
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

/// The gateway's own answer to `req`, forwarding nothing: a default `T` as `edit` leaves it.
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

/// Forwards `kept` (re-encoded only when something was stripped) and applies `merge`, which
/// adds the refusals, to the broker's response (`always`: even when nothing was stripped);
/// answers alone, with `merge` applied to an empty response, when nothing is left to forward.
/// The items are split by [`sift`] or by hand.
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

/// Forwards the request as received, then applies `patch`, if any, to the response.
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

/// Records a refusal of `op` on `r` for want of permission.
fn deny(denials: &mut Vec<Denial>, op: Operation, r: Resource<'_>) {
    denials.push(Denial::new(op, r, Reason::NotAuthorized));
}

/// Splits a request's `items` into the permitted ones, left in `items` in their order, and the
/// refused ones, returned in theirs: an item is permitted when the session may do `op` on
/// `resource(item)`; each refused one is recorded in `denials`.
fn sift<T>(
    s: &Session,
    items: &mut Vec<T>,
    op: Operation,
    resource: impl Fn(&T) -> Resource<'_>,
    denials: &mut Vec<Denial>,
) -> Vec<T> {
    let (kept, refused): (Vec<T>, Vec<T>) = std::mem::take(items)
        .into_iter()
        .partition(|t| allowed(s, op, resource(t)));
    for t in &refused {
        deny(denials, op, resource(t));
    }
    *items = kept;
    refused
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
    served.extend(checked());
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

mod addresses;
pub use addresses::Nodes;
mod batches;
mod cluster;
mod configs;
mod fetch;
mod groups;
mod offsets;
mod produce;
#[cfg(test)]
mod tests;
mod topics;
mod txn;
