//! Producer ids and transactions: InitProducerId (Write on the transactional id, or
//! IdempotentWrite on the cluster), AddPartitionsToTxn, AddOffsetsToTxn, EndTxn and
//! TxnOffsetCommit (Write on the transactional id, then the group and topics they name).

use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse, EndTxnRequest, EndTxnResponse, InitProducerIdRequest,
    InitProducerIdResponse, ProducerId, TxnOffsetCommitRequest, TxnOffsetCommitResponse,
};
use poolgate::authz::{Operation, Resource};
use poolgate::gate::Session;

use super::super::wire::{Request, WireError};
use super::{
    CLUSTER_DENIED, Context, Denial, GROUP_DENIED, OPERATION_NOT_ATTEMPTED, TOPIC_DENIED,
    TXN_DENIED, Verdict, allowed, answer, deny, forward, name, sift, split,
};

/// InitProducerId (v0-5): Write on the transactional id (53), or IdempotentWrite on the
/// cluster without one (31).
pub(super) fn init_producer_id(
    req: &Request,
    cx: &Context<'_>,
    denials: &mut Vec<Denial>,
) -> Result<Verdict, WireError> {
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
    if allowed(cx.session, op, res) {
        return Ok(forward(None));
    }
    deny(denials, op, res);
    answer::<InitProducerIdResponse, _>(req, |resp| {
        resp.error_code = code;
        resp.producer_id = ProducerId(-1);
        resp.producer_epoch = -1;
    })
}

/// AddPartitionsToTxn (v0-3): Write on the transactional id and on each topic; nothing is
/// added unless all are permitted.
pub(super) fn add_partitions_to_txn(
    req: &Request,
    cx: &Context<'_>,
    denials: &mut Vec<Denial>,
) -> Result<Verdict, WireError> {
    let s: &Session = cx.session;
    let r: AddPartitionsToTxnRequest = req.decode()?;
    let txn = r.v3_and_below_transactional_id.0.as_str();
    let txn_ok = allowed(s, Operation::Write, Resource::transactional_id(txn));
    if !txn_ok {
        deny(denials, Operation::Write, Resource::transactional_id(txn));
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
            deny(denials, Operation::Write, Resource::topic(name(&t.name)));
        }
    }
    if txn_ok && !refused.contains(&true) {
        return Ok(forward(None));
    }
    // As Kafka: refused topics get 29 and the others OPERATION_NOT_ATTEMPTED (55); a refused
    // transactional id fails every partition with 53.
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
                let mut out = AddPartitionsToTxnTopicResult::default();
                out.name = t.name;
                out.results_by_partition = t
                    .partitions
                    .iter()
                    .map(|&p| {
                        let mut d = AddPartitionsToTxnPartitionResult::default();
                        d.partition_index = p;
                        d.partition_error_code = code;
                        d
                    })
                    .collect();
                out
            })
            .collect();
    })
}

/// AddOffsetsToTxn (v0-4): Write on the transactional id (53), then Read on the group (30).
pub(super) fn add_offsets_to_txn(
    req: &Request,
    cx: &Context<'_>,
    denials: &mut Vec<Denial>,
) -> Result<Verdict, WireError> {
    let s: &Session = cx.session;
    let r: AddOffsetsToTxnRequest = req.decode()?;
    let txn = Resource::transactional_id(r.transactional_id.0.as_str());
    let group = Resource::group(r.group_id.0.as_str());
    let code = if !allowed(s, Operation::Write, txn) {
        deny(denials, Operation::Write, txn);
        TXN_DENIED
    } else if !allowed(s, Operation::Read, group) {
        deny(denials, Operation::Read, group);
        GROUP_DENIED
    } else {
        return Ok(forward(None));
    };
    answer::<AddOffsetsToTxnResponse, _>(req, |resp| resp.error_code = code)
}

/// EndTxn (v0-5): Write on the transactional id (53).
pub(super) fn end_txn(
    req: &Request,
    cx: &Context<'_>,
    denials: &mut Vec<Denial>,
) -> Result<Verdict, WireError> {
    let r: EndTxnRequest = req.decode()?;
    let txn = Resource::transactional_id(r.transactional_id.0.as_str());
    if allowed(cx.session, Operation::Write, txn) {
        return Ok(forward(None));
    }
    deny(denials, Operation::Write, txn);
    answer::<EndTxnResponse, _>(req, |resp| {
        resp.error_code = TXN_DENIED;
        resp.producer_id = ProducerId(-1);
        resp.producer_epoch = -1;
    })
}

/// TxnOffsetCommit (v0-5): Write on the transactional id (53), then Read on the group (30),
/// either failing every partition; then Read on each topic (29).
pub(super) fn txn_offset_commit(
    req: &Request,
    cx: &Context<'_>,
    denials: &mut Vec<Denial>,
) -> Result<Verdict, WireError> {
    let s: &Session = cx.session;
    let mut r: TxnOffsetCommitRequest = req.decode()?;
    let txn = r.transactional_id.0.to_string();
    let group = r.group_id.0.to_string();
    let whole = if !allowed(s, Operation::Write, Resource::transactional_id(&txn)) {
        deny(denials, Operation::Write, Resource::transactional_id(&txn));
        Some(TXN_DENIED)
    } else if !allowed(s, Operation::Read, Resource::group(&group)) {
        deny(denials, Operation::Read, Resource::group(&group));
        Some(GROUP_DENIED)
    } else {
        None
    };
    let refused = match whole {
        None => sift(
            s,
            &mut r.topics,
            Operation::Read,
            |t| Resource::topic(name(&t.name)),
            denials,
        ),
        Some(_) => std::mem::take(&mut r.topics),
    };
    let code = whole.unwrap_or(TOPIC_DENIED);
    let (stripped, empty) = (!refused.is_empty(), r.topics.is_empty() || whole.is_some());
    Ok(split::<_, TxnOffsetCommitResponse, _>(
        req,
        r,
        (stripped, empty, false),
        move |resp| {
            resp.topics.extend(refused.into_iter().map(|t| {
                let mut out = TxnOffsetCommitResponseTopic::default();
                out.name = t.name;
                out.partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        let mut d = TxnOffsetCommitResponsePartition::default();
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
