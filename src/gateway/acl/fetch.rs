//! Fetch: Read on each topic, and no fetch sessions (KIP-227). Every Fetch forwarded is a full,
//! sessionless one, so that the broker serves exactly the partitions it names, each checked
//! here; a request naming a fetch session is answered here and never reaches the broker.
//!
//! Why not track sessions: the broker knows one session id space for all gateway connections
//! (they all look alike to it), and a session serves partitions the request does not name.
//! Letting none be created leaves nothing to track. What it costs is in the README
//! ("Enforcement").

use kafka_protocol::messages::fetch_request::FetchTopic;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use poolgate::authz::{Operation, Resource};
use poolgate::gate::Session;

use super::super::wire::{Request, WireError};
use super::{
    CLUSTER_DENIED, Context, Denial, Reason, TOPIC_DENIED, Verdict, answer, name, sift, split,
};

/// `FetchMetadata.INVALID_SESSION_ID`: no session.
const NO_SESSION: i32 = 0;
/// `FetchMetadata.INITIAL_EPOCH`: a full fetch asking the broker to create a session.
const INITIAL_EPOCH: i32 = 0;
/// `FetchMetadata.FINAL_EPOCH`: a full fetch that creates no session.
const FINAL_EPOCH: i32 = -1;
/// FETCH_SESSION_ID_NOT_FOUND: Java's `FetchSessionHandler.handleResponse` starts over with a
/// full fetch asking for a new session (`FetchMetadata.INITIAL`), which this module forwards
/// sessionless. (INVALID_FETCH_SESSION_EPOCH would make it ask to close the session it named
/// and open a new one, one more refused round trip.)
const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;

/// Checks a Fetch (v4-12; session fields from v7, decoded as 0 and -1 below).
pub(super) fn check(
    req: &Request,
    cx: &Context<'_>,
    denials: &mut Vec<Denial>,
) -> Result<Verdict, WireError> {
    let s: &Session = cx.session;
    let mut r: FetchRequest = req.decode()?;
    if r.replica_id.0 >= 0 {
        denials.push(Denial::new(
            Operation::ClusterAction,
            Resource::cluster(),
            Reason::NotAuthorized,
        ));
        let topics = std::mem::take(&mut r.topics);
        return answer::<FetchResponse, _>(req, |resp| {
            resp.error_code = CLUSTER_DENIED;
            resp.responses = topics
                .into_iter()
                .map(|t| fetch_error(t, CLUSTER_DENIED))
                .collect();
        });
    }
    // Any session id, even in a full fetch (which makes the broker close that session, another
    // connection's), or an incremental epoch: the broker's answer for an unknown session.
    if r.session_id != NO_SESSION || !matches!(r.session_epoch, INITIAL_EPOCH | FINAL_EPOCH) {
        denials.push(Denial::new(
            Operation::Read,
            format!("FetchSession:{}", r.session_id),
            Reason::FetchSession,
        ));
        return answer::<FetchResponse, _>(req, |resp| {
            resp.error_code = FETCH_SESSION_ID_NOT_FOUND;
            resp.session_id = NO_SESSION;
        });
    }
    // A full fetch asking for a session: the same fetch, creating none. The broker answers
    // session id 0, and the client sends full fetches from then on.
    let mut rewritten = false;
    if r.session_epoch == INITIAL_EPOCH {
        r.session_epoch = FINAL_EPOCH;
        rewritten = true;
    }
    // Forgetting is for sessions; without one the broker ignores the list: drop it.
    if !r.forgotten_topics_data.is_empty() {
        r.forgotten_topics_data.clear();
        rewritten = true;
    }
    let refused = sift(
        s,
        &mut r.topics,
        Operation::Read,
        |t| Resource::topic(name(&t.topic)),
        denials,
    );
    let stripped = !refused.is_empty();
    // A fetch without topics is forwarded: without a session it serves nothing.
    let empty = r.topics.is_empty() && stripped;
    if rewritten && !stripped {
        // Nothing to merge: the response goes through untouched.
        return Ok(req
            .with_body(&r)
            .map_or(Verdict::Unsupported, |frame| Verdict::Forward {
                frame: Some(frame),
                patch: None,
                respond: true,
            }));
    }
    Ok(split::<_, FetchResponse, _>(
        req,
        r,
        (stripped, empty, false),
        move |resp| {
            resp.responses
                .extend(refused.into_iter().map(|t| fetch_error(t, TOPIC_DENIED)));
        },
    ))
}

fn fetch_error(t: FetchTopic, code: i16) -> FetchableTopicResponse {
    let mut out = FetchableTopicResponse::default();
    out.topic = t.topic;
    out.topic_id = t.topic_id;
    out.partitions = t
        .partitions
        .iter()
        .map(|p| {
            let mut d = PartitionData::default();
            d.partition_index = p.partition;
            d.error_code = code;
            d.high_watermark = -1;
            d.last_stable_offset = -1;
            d.log_start_offset = -1;
            d
        })
        .collect();
    out
}
