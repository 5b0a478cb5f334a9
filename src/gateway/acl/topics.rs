//! Topic administration: CreateTopics (Create on the topic, or on the cluster) and
//! DeleteTopics (Delete on the topic).

use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
};
use kafka_protocol::protocol::StrBytes;
use poolgate::authz::{Operation, Resource};

use super::super::wire::{Request, WireError};
use super::{Context, Denial, TOPIC_DENIED, Verdict, allowed, name, sift, split};

/// CreateTopics (v2-7): Create on the cluster, else on each topic (29).
pub(super) fn create_topics(
    req: &Request,
    cx: &Context<'_>,
    denials: &mut Vec<Denial>,
) -> Result<Verdict, WireError> {
    let mut r: CreateTopicsRequest = req.decode()?;
    let refused = if allowed(cx.session, Operation::Create, Resource::cluster()) {
        Vec::new()
    } else {
        sift(
            cx.session,
            &mut r.topics,
            Operation::Create,
            |t| Resource::topic(name(&t.name)),
            denials,
        )
    };
    let (stripped, empty) = (!refused.is_empty(), r.topics.is_empty());
    Ok(split::<_, CreateTopicsResponse, _>(
        req,
        r,
        (stripped, empty, false),
        move |resp| {
            resp.topics.extend(refused.into_iter().map(|t| {
                let mut d = CreatableTopicResult::default();
                d.name = t.name;
                d.error_code = TOPIC_DENIED;
                d.error_message = Some(StrBytes::from_static_str("Authorization failed."));
                d.topic_config_error_code = TOPIC_DENIED;
                d.num_partitions = -1;
                d.replication_factor = -1;
                d
            }));
        },
    ))
}

/// DeleteTopics (v1-5): Delete on each topic (29).
pub(super) fn delete_topics(
    req: &Request,
    cx: &Context<'_>,
    denials: &mut Vec<Denial>,
) -> Result<Verdict, WireError> {
    let mut r: DeleteTopicsRequest = req.decode()?;
    let refused = sift(
        cx.session,
        &mut r.topic_names,
        Operation::Delete,
        |t| Resource::topic(name(t)),
        denials,
    );
    let (stripped, empty) = (!refused.is_empty(), r.topic_names.is_empty());
    Ok(split::<_, DeleteTopicsResponse, _>(
        req,
        r,
        (stripped, empty, false),
        move |resp| {
            resp.responses.extend(refused.into_iter().map(|t| {
                let mut d = DeletableTopicResult::default();
                d.name = Some(t);
                d.error_code = TOPIC_DENIED;
                d
            }));
        },
    ))
}
