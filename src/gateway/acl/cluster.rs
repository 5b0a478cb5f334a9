//! The cluster's description: Metadata (Describe on each topic; auto-creation needs Create),
//! FindCoordinator (Describe on the group or transactional id) and DescribeCluster (nothing to
//! check). Broker addresses in their responses are rewritten by [`Addresses`], never here.

use std::sync::Arc;

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::{
    BrokerId, DescribeClusterResponse, FindCoordinatorRequest, FindCoordinatorResponse,
    MetadataRequest, MetadataResponse, TopicName,
};
use poolgate::authz::{Operation, Resource};
use poolgate::gate::Session;

use super::super::wire::{Request, WireError};
use super::addresses::Addresses;
use super::{
    CLUSTER_DENIED, Context, Denial, GROUP_DENIED, TOPIC_DENIED, TXN_DENIED, Verdict, allowed,
    answer, authorized_ops, deny, forward, name, patch, split,
};

/// FindCoordinator key types.
const KEY_GROUP: i8 = 0;
const KEY_TRANSACTION: i8 = 1;

/// Metadata (v4-12): topics the session may not Describe are left out (all topics asked for)
/// or answered with 29 (named); auto-creation is turned off unless the session may Create the
/// topic, or on the cluster; authorized operations are the session's.
pub(super) fn metadata(
    req: &Request,
    cx: &Context<'_>,
    denials: &mut Vec<Denial>,
) -> Result<Verdict, WireError> {
    let s: &Session = cx.session;
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
        deny(denials, Operation::Describe, Resource::topic(name(n)));
    }
    let session = Arc::clone(cx.session);
    let addresses = Addresses::new(cx.nodes);
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
        addresses.metadata(resp);
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
            let mut t = MetadataResponseTopic::default();
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
    Ok(Verdict::Forward {
        frame,
        patch: Some(patch::<MetadataResponse, _>(edit)),
        respond: true,
    })
}

/// FindCoordinator (v0-6): Describe on the group or transactional id each key names; an
/// unknown key type is refused as the cluster (31). v0-3 name one key, v4+ a batch of them.
pub(super) fn find_coordinator(
    req: &Request,
    cx: &Context<'_>,
    denials: &mut Vec<Denial>,
) -> Result<Verdict, WireError> {
    let s: &Session = cx.session;
    let r: FindCoordinatorRequest = req.decode()?;
    let key_type = r.key_type;
    let addresses = Addresses::new(cx.nodes);
    if req.version() < 4 {
        return Ok(match coordinator_resource(key_type, r.key.as_str()) {
            Some((res, _)) if allowed(s, Operation::Describe, res) => {
                forward(Some(patch::<FindCoordinatorResponse, _>(move |resp| {
                    addresses.find_coordinator(resp);
                })))
            }
            found => {
                let (res, code) = found.unwrap_or((Resource::cluster(), CLUSTER_DENIED));
                deny(denials, Operation::Describe, res);
                answer::<FindCoordinatorResponse, _>(req, |resp| {
                    resp.error_code = code;
                    resp.node_id = BrokerId(-1);
                    resp.port = -1;
                })?
            }
        });
    }
    let mut kept = r.clone();
    let mut refused = Vec::new();
    kept.coordinator_keys
        .retain(|k| match coordinator_resource(key_type, k.as_str()) {
            Some((res, _)) if allowed(s, Operation::Describe, res) => true,
            found => {
                let (res, code) = found.unwrap_or((Resource::cluster(), CLUSTER_DENIED));
                deny(denials, Operation::Describe, res);
                refused.push((k.clone(), code));
                false
            }
        });
    let (stripped, empty) = (!refused.is_empty(), kept.coordinator_keys.is_empty());
    Ok(split::<_, FindCoordinatorResponse, _>(
        req,
        kept,
        (stripped, empty, true),
        move |resp| {
            addresses.find_coordinator(resp);
            resp.coordinators
                .extend(refused.into_iter().map(|(key, code)| {
                    let mut c = Coordinator::default();
                    c.key = key;
                    c.node_id = BrokerId(-1);
                    c.port = -1;
                    c.error_code = code;
                    c
                }));
        },
    ))
}

/// The resource a FindCoordinator key names, and the error code for refusing it.
fn coordinator_resource(key_type: i8, key: &str) -> Option<(Resource<'_>, i16)> {
    match key_type {
        KEY_GROUP => Some((Resource::group(key), GROUP_DENIED)),
        KEY_TRANSACTION => Some((Resource::transactional_id(key), TXN_DENIED)),
        _ => None,
    }
}

/// DescribeCluster (v0-2): nothing to check; the brokers' addresses are rewritten and the
/// cluster's authorized operations, when asked for, are the session's.
pub(super) fn describe_cluster(
    _req: &Request,
    cx: &Context<'_>,
    _denials: &mut Vec<Denial>,
) -> Result<Verdict, WireError> {
    let session = Arc::clone(cx.session);
    let addresses = Addresses::new(cx.nodes);
    Ok(forward(Some(patch::<DescribeClusterResponse, _>(
        move |resp| {
            addresses.describe_cluster(resp);
            if resp.cluster_authorized_operations != i32::MIN {
                resp.cluster_authorized_operations = authorized_ops(&session, Resource::cluster());
            }
        },
    ))))
}
