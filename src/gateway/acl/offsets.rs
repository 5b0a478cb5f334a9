//! Offsets outside transactions: ListOffsets (Describe on each topic), OffsetCommit (Read on
//! the group and on each topic) and OffsetFetch (Describe on the group and on each topic).

use std::sync::Arc;

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use kafka_protocol::messages::{
    ListOffsetsRequest, ListOffsetsResponse, OffsetCommitRequest, OffsetCommitResponse,
    OffsetFetchRequest, OffsetFetchResponse,
};
use poolgate::authz::{Operation, Resource};
use poolgate::gate::Session;

use super::super::wire::{Request, WireError};
use super::{
    Context, Denial, GROUP_DENIED, TOPIC_DENIED, Verdict, allowed, answer, deny, name, sift, split,
};

/// ListOffsets (v1-10): Describe on each topic; refused topics get 29 on each partition.
pub(super) fn list_offsets(
    req: &Request,
    cx: &Context<'_>,
    denials: &mut Vec<Denial>,
) -> Result<Verdict, WireError> {
    let mut r: ListOffsetsRequest = req.decode()?;
    let refused = sift(
        cx.session,
        &mut r.topics,
        Operation::Describe,
        |t| Resource::topic(name(&t.name)),
        denials,
    );
    let (stripped, empty) = (!refused.is_empty(), r.topics.is_empty());
    Ok(split::<_, ListOffsetsResponse, _>(
        req,
        r,
        (stripped, empty, false),
        move |resp| {
            resp.topics.extend(refused.into_iter().map(|t| {
                let mut out = ListOffsetsTopicResponse::default();
                out.name = t.name;
                out.partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        let mut d = ListOffsetsPartitionResponse::default();
                        d.partition_index = p.partition_index;
                        d.error_code = TOPIC_DENIED;
                        d
                    })
                    .collect();
                out
            }));
        },
    ))
}

/// OffsetCommit (v2-9): Read on the group (refused: 30 on every partition, nothing forwarded),
/// then Read on each topic (29).
pub(super) fn offset_commit(
    req: &Request,
    cx: &Context<'_>,
    denials: &mut Vec<Denial>,
) -> Result<Verdict, WireError> {
    let s: &Session = cx.session;
    let mut r: OffsetCommitRequest = req.decode()?;
    let group = r.group_id.0.to_string();
    let group_ok = allowed(s, Operation::Read, Resource::group(&group));
    let refused = if group_ok {
        sift(
            s,
            &mut r.topics,
            Operation::Read,
            |t| Resource::topic(name(&t.name)),
            denials,
        )
    } else {
        deny(denials, Operation::Read, Resource::group(&group));
        std::mem::take(&mut r.topics)
    };
    let code = if group_ok { TOPIC_DENIED } else { GROUP_DENIED };
    let (stripped, empty) = (!refused.is_empty(), r.topics.is_empty());
    Ok(split::<_, OffsetCommitResponse, _>(
        req,
        r,
        (stripped, empty || !group_ok, false),
        move |resp| {
            resp.topics.extend(refused.into_iter().map(|t| {
                let mut out = OffsetCommitResponseTopic::default();
                out.name = t.name;
                out.partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        let mut d = OffsetCommitResponsePartition::default();
                        d.partition_index = p.partition_index;
                        d.error_code = code;
                        d
                    })
                    .collect();
                out
            }));
        },
    ))
}

/// OffsetFetch (v1-7): Describe on the group (refused: 30, with each partition's error below
/// v2), then on each topic named (29); every topic of the group (topics = null) lists only
/// those the session may Describe.
pub(super) fn offset_fetch(
    req: &Request,
    cx: &Context<'_>,
    denials: &mut Vec<Denial>,
) -> Result<Verdict, WireError> {
    let s: &Session = cx.session;
    let mut r: OffsetFetchRequest = req.decode()?;
    let group = r.group_id.0.to_string();
    if !allowed(s, Operation::Describe, Resource::group(&group)) {
        deny(denials, Operation::Describe, Resource::group(&group));
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
    let refused = match r.topics.as_mut() {
        Some(topics) => sift(
            s,
            topics,
            Operation::Describe,
            |t| Resource::topic(name(&t.name)),
            denials,
        ),
        None => Vec::new(),
    };
    let stripped = !refused.is_empty();
    let empty = stripped && r.topics.as_ref().is_some_and(Vec::is_empty);
    // Every topic of the group (topics = null): leave out those it may not Describe.
    let every = r.topics.is_none();
    let session = Arc::clone(cx.session);
    Ok(split::<_, OffsetFetchResponse, _>(
        req,
        r,
        (stripped, empty, every),
        move |resp| {
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
        },
    ))
}

fn offset_fetch_error(t: OffsetFetchRequestTopic, code: i16) -> OffsetFetchResponseTopic {
    let mut out = OffsetFetchResponseTopic::default();
    out.name = t.name;
    out.partitions = t
        .partition_indexes
        .iter()
        .map(|&p| {
            let mut d = OffsetFetchResponsePartition::default();
            d.partition_index = p;
            d.committed_offset = -1;
            d.error_code = code;
            d
        })
        .collect();
    out
}
