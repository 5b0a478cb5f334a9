//! Produce: Write on each topic; Write on the transactional id when one is set or when a batch
//! is transactional; and Kafka's rules for the record batches a client may write, read from
//! their headers ([`batches`](super::batches)). Records are never decoded here.

use kafka_protocol::messages::produce_request::TopicProduceData;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use poolgate::authz::{Operation, Resource};
use poolgate::gate::Session;

use super::super::wire::{Request, WireError};
use super::batches::{self, Invalid};
use super::{
    Context, Denial, Reason, TOPIC_DENIED, TXN_DENIED, Verdict, allowed, answer, name, split,
};

/// A topic's partitions refused for their batches: the topic, and each partition with its error.
type Refused = (TopicName, Vec<(i32, i16)>);

/// Checks a Produce (v3-9), in the order Kafka's `KafkaApis.handleProduceRequest` does: the
/// transactional id first (the whole request fails with 53), then each topic (29), then each
/// partition's batches (87 or 2).
pub(super) fn check(
    req: &Request,
    cx: &Context<'_>,
    denials: &mut Vec<Denial>,
) -> Result<Verdict, WireError> {
    let s: &Session = cx.session;
    let mut r: ProduceRequest = req.decode()?;
    let respond = r.acks != 0;
    let inspected: Vec<Vec<batches::Inspection>> = r
        .topic_data
        .iter()
        .map(|t| {
            t.partition_data
                .iter()
                .map(|p| batches::inspect(p.records.as_deref()))
                .collect()
        })
        .collect();
    // Kafka checks Write on the transactional id only for transactional batches, and a null id
    // fails it; the gateway also checks it whenever an id is set.
    let transactional = inspected.iter().flatten().any(|i| i.transactional);
    let txn_refusal = match &r.transactional_id {
        Some(txn) if !allowed(s, Operation::Write, Resource::transactional_id(&txn.0)) => {
            Some(Denial::new(
                Operation::Write,
                Resource::transactional_id(&txn.0),
                Reason::NotAuthorized,
            ))
        }
        None if transactional => Some(Denial::new(
            Operation::Write,
            Resource::transactional_id(""),
            Reason::TransactionalBatches,
        )),
        _ => None,
    };
    if let Some(d) = txn_refusal {
        denials.push(d);
        let topics = std::mem::take(&mut r.topic_data);
        if !respond {
            return Ok(Verdict::Answer(None));
        }
        return answer::<ProduceResponse, _>(req, |resp| {
            resp.responses = topics
                .into_iter()
                .map(|t| produce_error(&t, TXN_DENIED))
                .collect();
        });
    }

    let mut kept = Vec::new();
    let mut refused_topics = Vec::new();
    let mut refused_partitions: Vec<Refused> = Vec::new();
    for (mut t, checks) in std::mem::take(&mut r.topic_data).into_iter().zip(inspected) {
        if !allowed(s, Operation::Write, Resource::topic(name(&t.name))) {
            denials.push(Denial::new(
                Operation::Write,
                Resource::topic(name(&t.name)),
                Reason::NotAuthorized,
            ));
            refused_topics.push(t);
            continue;
        }
        let mut refused = Vec::new();
        let mut reasons = Vec::new();
        let partitions = std::mem::take(&mut t.partition_data);
        let had_partitions = !partitions.is_empty();
        for (p, check) in partitions.into_iter().zip(checks) {
            match check.invalid {
                None => t.partition_data.push(p),
                Some(e) => {
                    refused.push((p.index, e.code()));
                    let reason = match e {
                        Invalid::Control => Reason::ControlBatch,
                        _ => Reason::InvalidBatch,
                    };
                    if !reasons.contains(&reason) {
                        reasons.push(reason);
                    }
                }
            }
        }
        for reason in reasons {
            denials.push(Denial::new(
                Operation::Write,
                Resource::topic(name(&t.name)),
                reason,
            ));
        }
        if !refused.is_empty() {
            refused_partitions.push((t.name.clone(), refused));
        }
        if !t.partition_data.is_empty() || !had_partitions {
            kept.push(t);
        }
    }
    let stripped = !refused_topics.is_empty() || !refused_partitions.is_empty();
    let empty = kept.is_empty();
    r.topic_data = kept;
    if !respond {
        return Ok(match (empty, stripped) {
            (true, _) => Verdict::Answer(None),
            (false, false) => Verdict::Forward {
                frame: None,
                patch: None,
                respond: false,
            },
            (false, true) => Verdict::Forward {
                frame: Some(req.with_body(&r)?),
                patch: None,
                respond: false,
            },
        });
    }
    Ok(split::<_, ProduceResponse, _>(
        req,
        r,
        (stripped, empty, false),
        move |resp| {
            resp.responses.extend(
                refused_topics
                    .iter()
                    .map(|t| produce_error(t, TOPIC_DENIED)),
            );
            merge_partitions(resp, refused_partitions);
        },
    ))
}

/// Adds refused partitions to their topic's entry in the response (a new entry when the broker
/// answered none for it), as Kafka answers one entry per topic.
fn merge_partitions(resp: &mut ProduceResponse, refused: Vec<Refused>) {
    for (topic, partitions) in refused {
        let answers = partitions.into_iter().map(|(index, code)| {
            let mut d = PartitionProduceResponse::default();
            d.index = index;
            d.error_code = code;
            d.base_offset = -1;
            d.log_append_time_ms = -1;
            d.log_start_offset = -1;
            d
        });
        match resp.responses.iter_mut().find(|t| t.name == topic) {
            Some(entry) => entry.partition_responses.extend(answers),
            None => {
                let mut entry = TopicProduceResponse::default();
                entry.name = topic;
                entry.partition_responses = answers.collect();
                resp.responses.push(entry);
            }
        }
    }
}

fn produce_error(t: &TopicProduceData, code: i16) -> TopicProduceResponse {
    let mut out = TopicProduceResponse::default();
    out.name = t.name.clone();
    out.topic_id = t.topic_id;
    out.partition_responses = t
        .partition_data
        .iter()
        .map(|p| {
            let mut d = PartitionProduceResponse::default();
            d.index = p.index;
            d.error_code = code;
            d.base_offset = -1;
            d.log_append_time_ms = -1;
            d.log_start_offset = -1;
            d
        })
        .collect();
    out
}
