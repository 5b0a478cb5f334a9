//! One client connection: the SASL login, then forwarding with per-request checks, ordered
//! responses, re-authentication and session expiry.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, ResponseHeader, SaslAuthenticateRequest, SaslAuthenticateResponse,
    SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Encodable, StrBytes};
use poolgate::gate::{Gate, Session};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;

use super::acl::{self, Context, Verdict};
use super::brokers::{Brokers, ConnectError};
use super::metrics::Metrics;
use super::outbox::{Outbox, write_all_parts};
use super::pairing::{MAX_UNANSWERED, Pairing, pair, response_id};
use super::peers::Peers;
use super::routing::{Addresses, Target};
use super::wire::{Frames, Request, WireError, response_frame, split_response};

/// Frames before login carry at most a token (16 KiB) and SASL framing.
pub const PRE_AUTH_MAX_FRAME: usize = 32 * 1024;
/// Responses from the upstream broker are trusted up to this size (large fetches).
const UPSTREAM_MAX_FRAME: usize = 1 << 30;
/// Requests in flight per connection before the gateway stops reading from the client.
const MAX_IN_FLIGHT: usize = 1024;
/// The shortest session lifetime reported and enforced.
const MIN_SESSION_LIFETIME: Duration = Duration::from_secs(1);
/// How long the response reader keeps its buffer without a response to read.
const RELEASE_AFTER: Duration = Duration::from_secs(1);
/// How often a connection past `max_connection_age` but busy looks again.
const AGED_RECHECK: Duration = Duration::from_millis(100);

const OAUTHBEARER: &str = "OAUTHBEARER";
const SASL_FAILED: i16 = 58;
const UNSUPPORTED_MECHANISM: i16 = 33;
const UNSUPPORTED_VERSION: i16 = 35;

/// Everything the connections share.
pub struct Shared {
    /// The authenticator; a configuration reload swaps it (sessions keep what they logged in
    /// with until they re-authenticate).
    pub gate: RwLock<Gate>,
    /// The broker map: where each node is, and the API versions offered for it.
    pub brokers: Arc<Brokers>,
    /// The addresses clients are given for each node.
    pub addresses: Arc<Addresses>,
    /// The same two, as the per-API checks see them.
    pub nodes: Arc<dyn acl::Nodes>,
    /// APIs forwarded without checks.
    pub pass_through: HashSet<ApiKey>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Admission and failure throttling.
    pub peers: Peers,
    /// The largest request frame from an authenticated session.
    pub max_frame: usize,
    /// How long an authenticated connection may be idle.
    pub idle_timeout: Duration,
    /// The longest session a login gets, whatever its token's lifetime.
    pub max_session_lifetime: Option<Duration>,
    /// Set when the gateway drains: sessions answer what is in flight, then close.
    pub drain: watch::Receiver<bool>,
    /// How long a draining session may take to answer what it has in flight.
    pub drain_timeout: Duration,
    /// Connections older than about this are closed when nothing is in flight.
    pub max_connection_age: Option<Duration>,
    /// Notified whenever a client connection ends (the drain waits on it).
    pub closed: Notify,
}

impl Shared {
    /// The authenticator now in force.
    pub fn gate(&self) -> Gate {
        self.gate
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// How a connection ended, for the log.
#[derive(Debug, thiserror::Error)]
pub enum End {
    /// The client went away.
    #[error("client closed the connection")]
    Closed,
    /// A wire problem (oversized frame, garbage, I/O).
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The login failed; the error was sent.
    #[error("login failed: {0}")]
    LoginFailed(&'static str),
    /// The client broke the SASL sequence.
    #[error("unexpected {0:?} request during SASL authentication")]
    Unexpected(ApiKey),
    /// The client carried on after the error challenge instead of acknowledging it.
    #[error("{0:?} request after the error challenge; nothing was forwarded")]
    IgnoredChallenge(ApiKey),
    /// The token expired and the client did not re-authenticate.
    #[error("session expired without re-authentication")]
    Expired,
    /// No request and no response in flight for `idle_timeout`.
    #[error("idle for longer than the idle timeout")]
    Idle,
    /// The upstream broker could not be reached or broke the protocol.
    #[error("upstream: {0}")]
    Upstream(String),
    /// A request of an API the gateway does not serve, with no error response to give.
    #[error("refused {0:?} request")]
    Refused(ApiKey),
    /// The upstream broker sent a response that answers no pending request.
    #[error("upstream response answers no pending request; nothing was forwarded")]
    StrayResponse,
    /// The client came to a node the cluster does not have.
    #[error("node {0} is not a broker of the cluster")]
    UnknownNode(i32),
    /// The gateway is draining (SIGTERM or SIGINT).
    #[error("the gateway is shutting down")]
    Draining,
    /// The connection reached `max_connection_age` with nothing in flight.
    #[error("older than the maximum connection age")]
    Aged,
}

impl End {
    /// The `reason` label for the dropped-connections metric, when the gateway dropped it.
    pub fn drop_reason(&self) -> Option<&'static str> {
        match self {
            End::Closed | End::LoginFailed(_) | End::Expired => None,
            End::Idle => Some("idle"),
            End::Wire(WireError::Oversized { .. }) => Some("oversized_frame"),
            End::Wire(WireError::Closed | WireError::Io(_)) => None,
            End::Wire(_) => Some("malformed"),
            End::Unexpected(_) => Some("unexpected_request"),
            End::IgnoredChallenge(_) => Some("ignored_challenge"),
            End::Upstream(_) => Some("upstream"),
            End::Refused(_) => Some("refused_api"),
            End::StrayResponse => Some("stray_response"),
            End::UnknownNode(_) => Some("unknown_node"),
            End::Draining => Some("draining"),
            End::Aged => Some("max_connection_age"),
        }
    }
}

/// The SASL exchange's state on a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sasl {
    /// No exchange in progress.
    Idle,
    /// SaslHandshake accepted OAUTHBEARER; SaslAuthenticate comes next.
    Handshaken,
    /// The error challenge was sent; only the client's acknowledgement may come next.
    Challenged(&'static str),
}

fn versions_response(shared: &Shared, target: Target, req: &Request) -> Result<Bytes, WireError> {
    let mut resp = ApiVersionsResponse::default();
    resp.api_keys = shared.brokers.offered(target).as_ref().clone();
    let mut version = req.version();
    if version > 3 {
        // KIP-511: answer an unknown version with v0 and the supported range.
        resp.error_code = UNSUPPORTED_VERSION;
        version = 0;
    }
    response_frame(ApiKey::ApiVersions, version, req.correlation_id(), &resp)
}

fn handshake_response(req: &Request, sasl: &mut Sasl) -> Result<(Bytes, bool), WireError> {
    let r: SaslHandshakeRequest = req.decode()?;
    let mut resp = SaslHandshakeResponse::default();
    resp.mechanisms = vec![StrBytes::from_static_str(OAUTHBEARER)];
    let ok = r.mechanism.as_str() == OAUTHBEARER && req.version() == 1;
    if ok {
        *sasl = Sasl::Handshaken;
    } else {
        // v0 (raw SASL frames after the handshake) is not offered.
        resp.error_code = if req.version() == 1 {
            UNSUPPORTED_MECHANISM
        } else {
            UNSUPPORTED_VERSION
        };
    }
    Ok((
        response_frame(
            ApiKey::SaslHandshake,
            req.version(),
            req.correlation_id(),
            &resp,
        )?,
        ok,
    ))
}

fn authenticate_response(
    req: &Request,
    error_code: i16,
    message: Option<&str>,
    auth_bytes: Bytes,
    lifetime_ms: i64,
) -> Result<Bytes, WireError> {
    let mut resp = SaslAuthenticateResponse::default();
    resp.error_code = error_code;
    resp.error_message = message.map(|m| StrBytes::from_string(m.to_owned()));
    resp.auth_bytes = auth_bytes;
    resp.session_lifetime_ms = lifetime_ms;
    response_frame(
        ApiKey::SaslAuthenticate,
        req.version(),
        req.correlation_id(),
        &resp,
    )
}

const FAILED_MESSAGE: &str = "Authentication failed during authentication due to invalid credentials with SASL mechanism OAUTHBEARER";

/// Result of one SaslAuthenticate step.
enum Step {
    /// Logged in (or re-authenticated): the response and the session.
    Success(Bytes, Arc<Session>),
    /// Refused: the error challenge to send.
    Challenge(Bytes),
    /// The exchange failed for good: the error-58 response to send before closing.
    Failed(Bytes, &'static str),
}

async fn sasl_authenticate(
    shared: &Shared,
    peer: SocketAddr,
    req: &Request,
    sasl: &mut Sasl,
    current: Option<&Session>,
) -> Result<Step, End> {
    let reauth = current.is_some();
    match *sasl {
        Sasl::Idle => Err(End::Unexpected(ApiKey::SaslAuthenticate)),
        Sasl::Challenged(code) => {
            // Whatever the client sent (normally the %x01 acknowledgement), the exchange has
            // failed (the challenge was already delayed).
            let frame =
                authenticate_response(req, SASL_FAILED, Some(FAILED_MESSAGE), Bytes::new(), 0)?;
            Ok(Step::Failed(frame, code))
        }
        Sasl::Handshaken => {
            let r: SaslAuthenticateRequest = req.decode()?;
            *sasl = Sasl::Idle;
            let gate = shared.gate();
            let outcome = gate.authenticate(&r.auth_bytes).await;
            let (ok_label, fail_label) = if reauth {
                ("reauth_success", "reauth_failure")
            } else {
                ("success", "failure")
            };
            match outcome {
                Ok(session) => {
                    if let Some(old) = current
                        && old.identity() != session.identity()
                    {
                        shared.metrics.login(fail_label, "principal_changed");
                        tracing::warn!(
                            target: "poolgate::audit",
                            event = "login",
                            outcome = fail_label,
                            reason = "principal_changed",
                            peer = %peer,
                            identity = session.identity(),
                            previous = old.identity(),
                        );
                        *sasl = Sasl::Challenged("principal_changed");
                        tokio::time::sleep(shared.peers.failed(peer.ip())).await;
                        let sasl_config = gate.config().sasl();
                        let challenge = poolgate::sasl::ErrorChallenge {
                            scope: sasl_config.challenge_scope.clone(),
                            openid_configuration: sasl_config
                                .challenge_openid_configuration
                                .clone(),
                            ..poolgate::sasl::ErrorChallenge::invalid_token()
                        }
                        .to_bytes();
                        return Ok(Step::Challenge(authenticate_response(
                            req,
                            0,
                            None,
                            challenge.into(),
                            0,
                        )?));
                    }
                    let lifetime = i64::try_from(session_lifetime(shared, &session).as_millis())
                        .unwrap_or(i64::MAX);
                    shared.metrics.login(ok_label, "ok");
                    shared.peers.succeeded(peer.ip());
                    tracing::info!(
                        target: "poolgate::audit",
                        event = "login",
                        outcome = ok_label,
                        reason = "ok",
                        peer = %peer,
                        identity = session.identity(),
                        provider = session.provider_id(),
                        pools = ?session.pools(),
                        principals = ?session.principals(),
                        session_lifetime_ms = lifetime,
                    );
                    // v0 has no session lifetime; the client then cannot re-authenticate, and
                    // the connection is closed when the token expires.
                    let frame = authenticate_response(req, 0, None, Bytes::new(), lifetime)?;
                    Ok(Step::Success(frame, Arc::new(session)))
                }
                Err(rejection) => {
                    let code = rejection.code();
                    shared.metrics.login(fail_label, code);
                    // The challenge already tells the client it failed: repeated failures from
                    // one peer wait longer before hearing so, acknowledged or not.
                    tokio::time::sleep(shared.peers.failed(peer.ip())).await;
                    tracing::warn!(
                        target: "poolgate::audit",
                        event = "login",
                        outcome = fail_label,
                        reason = code,
                        detail = %rejection.error(),
                        peer = %peer,
                    );
                    *sasl = Sasl::Challenged(code);
                    let challenge = Bytes::copy_from_slice(rejection.challenge());
                    Ok(Step::Challenge(authenticate_response(
                        req, 0, None, challenge, 0,
                    )?))
                }
            }
        }
    }
}

/// The login phase: ApiVersions, SaslHandshake and SaslAuthenticate on the raw stream until a
/// session exists. Anything else closes the connection, and nothing is ever forwarded.
async fn login<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    frames: &mut Frames,
    shared: &Shared,
    peer: SocketAddr,
    target: Target,
) -> Result<Arc<Session>, End> {
    let mut sasl = Sasl::Idle;
    loop {
        let frame = match frames.next(stream, PRE_AUTH_MAX_FRAME).await {
            Err(WireError::Closed) => return Err(End::Closed),
            other => other?,
        };
        let req = Request::from_wire(frame)?;
        let (out, next) = match (req.api, sasl) {
            (_, Sasl::Challenged(code)) if req.api != ApiKey::SaslAuthenticate => {
                tracing::warn!(
                    target: "poolgate::audit",
                    event = "ignored_challenge",
                    peer = %peer,
                    reason = code,
                    api = ?req.api,
                    "client sent a request after a failed login; nothing was forwarded"
                );
                return Err(End::IgnoredChallenge(req.api));
            }
            (ApiKey::ApiVersions, _) => (versions_response(shared, target, &req)?, None),
            (ApiKey::SaslHandshake, Sasl::Idle) => {
                let (frame, ok) = handshake_response(&req, &mut sasl)?;
                (
                    frame,
                    (!ok).then_some(End::LoginFailed("unsupported_mechanism")),
                )
            }
            (ApiKey::SaslAuthenticate, _) => {
                match sasl_authenticate(shared, peer, &req, &mut sasl, None).await? {
                    Step::Success(frame, session) => {
                        stream.write_all(&frame).await.map_err(WireError::from)?;
                        stream.flush().await.map_err(WireError::from)?;
                        return Ok(session);
                    }
                    Step::Challenge(frame) => (frame, None),
                    Step::Failed(frame, code) => (frame, Some(End::LoginFailed(code))),
                }
            }
            (api, _) => return Err(End::Unexpected(api)),
        };
        stream.write_all(&out).await.map_err(WireError::from)?;
        stream.flush().await.map_err(WireError::from)?;
        if let Some(end) = next {
            return Err(end);
        }
    }
}

/// What the response writer does next, in request order.
enum Pending {
    /// Sends a response made by the gateway.
    Local(Bytes),
    /// Sends the upstream broker's answer to the request forwarded as `upstream_id`, through
    /// the request's patch, under the client's correlation id.
    Upstream {
        upstream_id: i32,
        correlation_id: i32,
        api: ApiKey,
        version: i16,
        patch: Option<acl::Patch>,
    },
    /// Notes a request forwarded with no response expected (Produce with `acks=0`): Kafka
    /// brokers do not answer it, others do, and such an answer is dropped.
    Unanswered { upstream_id: i32 },
    /// Hands the upstream broker's answer to the gateway's own request `upstream_id` (its
    /// upstream re-authentication) to `reply`; the client sees nothing.
    Internal {
        upstream_id: i32,
        reply: tokio::sync::oneshot::Sender<Bytes>,
    },
}

impl Pending {
    /// The gateway correlation id whose upstream answer this item waits for.
    fn upstream_id(&self) -> Option<i32> {
        match self {
            Pending::Upstream { upstream_id, .. } | Pending::Internal { upstream_id, .. } => {
                Some(*upstream_id)
            }
            Pending::Local(_) | Pending::Unanswered { .. } => None,
        }
    }
}

/// Serves one client connection from accept to close: login within `login_timeout`, then the
/// authenticated session.
pub async fn serve<S>(
    mut stream: S,
    peer: SocketAddr,
    shared: Arc<Shared>,
    login_deadline: Instant,
    target: Target,
) -> Result<(), End>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Requests the client pipelined after its SaslAuthenticate stay in `frames` for the session.
    let mut frames = Frames::default();
    let login = tokio::time::timeout_at(
        login_deadline,
        // Boxed: the login's state is freed when it ends, not carried by the session.
        Box::pin(login(&mut stream, &mut frames, &shared, peer, target)),
    );
    let mut drain = shared.drain.clone();
    let session = tokio::select! {
        r = login => match r {
            Ok(r) => r?,
            Err(_) => {
                shared.metrics.dropped("login_timeout");
                tracing::warn!(target: "poolgate::audit", event = "login_timeout", peer = %peer);
                return Ok(());
            }
        },
        // A drain does not wait for logins: a client logging in now goes to another instance.
        () = draining(&mut drain) => return Err(End::Draining),
    };
    // Boxed: connecting (and perhaps refreshing the broker map) is not carried by the session.
    let (upstream, upstream_addr) = match Box::pin(shared.brokers.connect(target)).await {
        Ok(c) => c,
        Err(ConnectError::UnknownNode(id)) => {
            tracing::warn!(target: "poolgate::audit", event = "unknown_node", peer = %peer, node = id, "the cluster has no such broker; closing the connection");
            return Err(End::UnknownNode(id));
        }
        Err(ConnectError::Unreachable(e)) => {
            return Err(End::Upstream(format!("cannot reach {target}: {e}")));
        }
    };
    shared
        .metrics
        .active_sessions
        .fetch_add(1, Ordering::Relaxed);
    let result = session_loop(
        stream,
        frames,
        (upstream.stream, upstream.session_lifetime_ms, upstream_addr),
        peer,
        &shared,
        session,
        target,
    )
    .await;
    shared
        .metrics
        .active_sessions
        .fetch_sub(1, Ordering::Relaxed);
    result
}

async fn session_loop<S, U>(
    stream: S,
    frames: Frames,
    (upstream, upstream_lifetime_ms, upstream_addr): (U, i64, String),
    peer: SocketAddr,
    shared: &Arc<Shared>,
    mut session: Arc<Session>,
    target: Target,
) -> Result<(), End>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    U: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut client_r, client_w) = tokio::io::split(stream);
    let mut frames = frames;
    let (up_r, mut up_w) = tokio::io::split(upstream);
    let (tx, rx) = mpsc::channel::<Pending>(MAX_IN_FLIGHT);
    // Requests whose response is not yet written to the client: an idle connection has none.
    let in_flight = Arc::new(AtomicUsize::new(0));
    let mut writer = tokio::spawn(respond(
        rx,
        Arc::clone(&in_flight),
        up_r,
        Outbox::new(client_w),
        Arc::clone(&shared.metrics),
        peer,
    ));

    let mut expiry = Instant::now() + session_lifetime(shared, &session);
    let mut drain = shared.drain.clone();
    let mut aged_at = shared
        .max_connection_age
        .map(|age| Instant::now() + jittered(age))
        .unwrap_or_else(far_future);
    // Whether the connection was found past its age with something in flight (logged once).
    let mut aged_busy = false;
    let mut sasl = Sasl::Idle;
    let mut denials = Vec::new();
    let mut writer_done = None;
    let mut idle_at = Instant::now() + shared.idle_timeout;
    // The gateway's own correlation ids upstream: a response is paired with its request by an
    // id the client cannot choose.
    let mut next_upstream_id: i32 = 0;
    // KIP-368 upstream: the gateway's own login is renewed before the broker's session ends.
    let mut upstream_reauth = upstream_reauth_at(upstream_lifetime_ms);
    let outcome: Result<(), End> = loop {
        // Every branch but the read is a timer or the writer: when one wins, the bytes of a
        // half-read frame stay in `frames` (cancel-safe) for the next turn.
        let frame = tokio::select! {
            () = tokio::time::sleep_until(idle_at) => {
                idle_at = Instant::now() + shared.idle_timeout;
                let busy = in_flight.load(Ordering::Acquire);
                tracing::debug!(peer = %peer, in_flight = busy, partial_frame = frames.is_partial(), "idle timer");
                if busy > 0 {
                    continue;
                }
                tracing::info!(peer = %peer, identity = session.identity(), "closing an idle connection");
                break Err(End::Idle);
            }
            f = frames.next(&mut client_r, shared.max_frame) => f,
            // The client or the upstream went away on the response side: stop reading too.
            done = &mut writer => {
                writer_done = Some(done.unwrap_or(Ok(())));
                break Ok(());
            }
            () = tokio::time::sleep_until(expiry) => {
                tracing::info!(target: "poolgate::audit", event = "session_expired", peer = %peer, identity = session.identity());
                break Err(End::Expired);
            }
            // Stop reading; what is in flight is still answered (below), then the connection
            // closes.
            () = draining(&mut drain) => {
                tracing::debug!(peer = %peer, in_flight = in_flight.load(Ordering::Acquire), "draining");
                break Err(End::Draining);
            }
            () = tokio::time::sleep_until(aged_at) => {
                let busy = in_flight.load(Ordering::Acquire);
                if busy > 0 || frames.is_partial() {
                    if !aged_busy {
                        aged_busy = true;
                        tracing::debug!(peer = %peer, in_flight = busy, partial_frame = frames.is_partial(), "older than max_connection_age while busy: closing once nothing is in flight");
                    }
                    // Look again soon: an old connection closes between requests only.
                    aged_at = Instant::now() + AGED_RECHECK;
                    continue;
                }
                tracing::info!(peer = %peer, identity = session.identity(), "closing a connection older than max_connection_age");
                break Err(End::Aged);
            }
            () = sleep_until_some(upstream_reauth), if upstream_reauth.is_some() => {
                let mut transport = InSession {
                    tx: &tx,
                    in_flight: &in_flight,
                    up_w: &mut up_w,
                    next_id: &mut next_upstream_id,
                    addr: &upstream_addr,
                };
                match super::upstream::reauthenticate(shared.brokers.connector(), &upstream_addr, &mut transport).await {
                    Ok(lifetime_ms) => {
                        shared.metrics.upstream_reauthentications.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(peer = %peer, session_lifetime_ms = lifetime_ms, "re-authenticated upstream");
                        upstream_reauth = upstream_reauth_at(lifetime_ms);
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(peer = %peer, error = %e, "upstream re-authentication failed; closing the connection");
                        break Err(End::Upstream(format!("re-authentication: {e}")));
                    }
                }
            }
        };
        let frame = match frame {
            Ok(f) => f,
            Err(WireError::Closed) => break Ok(()),
            Err(e) => break Err(e.into()),
        };
        idle_at = Instant::now() + shared.idle_timeout;
        let req = match Request::from_wire(frame) {
            Ok(r) => r,
            Err(e) => break Err(e.into()),
        };
        if let Sasl::Challenged(_) = sasl
            && req.api != ApiKey::SaslAuthenticate
        {
            break Err(End::IgnoredChallenge(req.api));
        }
        let pending = match req.api {
            ApiKey::ApiVersions => Pending::Local(versions_response(shared, target, &req)?),
            ApiKey::SaslHandshake => {
                if sasl != Sasl::Idle {
                    break Err(End::Unexpected(req.api));
                }
                let (frame, ok) = handshake_response(&req, &mut sasl)?;
                if !ok {
                    in_flight.fetch_add(1, Ordering::AcqRel);
                    let _ = tx.send(Pending::Local(frame)).await;
                    break Err(End::LoginFailed("unsupported_mechanism"));
                }
                Pending::Local(frame)
            }
            ApiKey::SaslAuthenticate => {
                // Boxed: re-authentication is rare, its state is not carried by every session.
                match Box::pin(sasl_authenticate(
                    shared,
                    peer,
                    &req,
                    &mut sasl,
                    Some(&session),
                ))
                .await
                {
                    Ok(Step::Success(frame, new)) => {
                        session = new;
                        expiry = Instant::now() + session_lifetime(shared, &session);
                        Pending::Local(frame)
                    }
                    Ok(Step::Challenge(frame)) => Pending::Local(frame),
                    Ok(Step::Failed(frame, code)) => {
                        in_flight.fetch_add(1, Ordering::AcqRel);
                        let _ = tx.send(Pending::Local(frame)).await;
                        break Err(End::LoginFailed(code));
                    }
                    Err(e) => break Err(e),
                }
            }
            api => {
                let cx = Context {
                    session: &session,
                    nodes: &shared.nodes,
                    pass_through: shared.pass_through.contains(&api),
                };
                denials.clear();
                let verdict = match acl::check(&req, &cx, &mut denials) {
                    Ok(v) => v,
                    Err(e) => break Err(e.into()),
                };
                let api_name = if denials.is_empty() && !matches!(verdict, Verdict::Unsupported) {
                    String::new()
                } else {
                    format!("{api:?}")
                };
                for d in &denials {
                    shared
                        .metrics
                        .denied(&api_name, d.operation.as_str(), d.reason.as_str());
                    tracing::warn!(
                        target: "poolgate::audit",
                        event = "denied",
                        peer = %peer,
                        identity = session.identity(),
                        api = api_name.as_str(),
                        operation = d.operation.as_str(),
                        resource = d.resource.as_str(),
                        reason = d.reason.as_str(),
                    );
                }
                match verdict {
                    Verdict::Answer(None) => continue,
                    Verdict::Answer(Some(frame)) => Pending::Local(frame),
                    Verdict::Unsupported => {
                        shared.metrics.refused_api(&api_name);
                        tracing::warn!(
                            target: "poolgate::audit",
                            event = "denied",
                            peer = %peer,
                            identity = session.identity(),
                            api = api_name.as_str(),
                            version = req.version(),
                            reason = "api_not_allowed",
                        );
                        match refusal(&req) {
                            Some(frame) => Pending::Local(frame),
                            None => break Err(End::Refused(api)),
                        }
                    }
                    Verdict::Forward {
                        frame,
                        patch,
                        respond,
                    } => {
                        let upstream_id = next_upstream_id;
                        next_upstream_id = next_upstream_id.wrapping_add(1);
                        let pending = if respond {
                            Pending::Upstream {
                                upstream_id,
                                correlation_id: req.correlation_id(),
                                api,
                                version: req.version(),
                                patch,
                            }
                        } else {
                            Pending::Unanswered { upstream_id }
                        };
                        // The writer learns of the request before the broker can answer it.
                        in_flight.fetch_add(1, Ordering::AcqRel);
                        if tx.send(pending).await.is_err() {
                            break Ok(());
                        }
                        let wire = frame.as_ref().unwrap_or(&req.wire);
                        if let Err(e) = forward_as(&mut up_w, wire, upstream_id).await {
                            break Err(End::Upstream(e.to_string()));
                        }
                        shared.metrics.forwarded.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                }
            }
        };
        in_flight.fetch_add(1, Ordering::AcqRel);
        if tx.send(pending).await.is_err() {
            // The writer stopped (client or upstream gone); its error is reported below.
            break Ok(());
        }
    };
    drop(tx);
    let writer_result = match writer_done {
        Some(r) => r,
        None => match tokio::time::timeout(shared.drain_timeout, writer).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) | Err(_) => Ok(()),
        },
    };
    outcome.and(writer_result)
}

/// When to renew the gateway's upstream login: at 85% of the session lifetime the broker
/// reported, so that the broker never sees a request after the end of the session; `None` when
/// it reported no limit.
fn upstream_reauth_at(lifetime_ms: i64) -> Option<Instant> {
    let ms = u64::try_from(lifetime_ms).ok().filter(|&ms| ms > 0)?;
    Some(Instant::now() + Duration::from_millis(ms).mul_f64(0.85))
}

async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The session's upstream connection as a [`super::upstream::Transport`]: the gateway's
/// requests take the next upstream ids and their answers come back through the response
/// writer, in order with the client's.
struct InSession<'a, W> {
    tx: &'a mpsc::Sender<Pending>,
    in_flight: &'a AtomicUsize,
    up_w: &'a mut W,
    next_id: &'a mut i32,
    addr: &'a str,
}

impl<W: AsyncWrite + Unpin + Send> super::upstream::Transport for InSession<'_, W> {
    async fn round_trip(&mut self, frame: Bytes) -> Result<Bytes, super::upstream::UpstreamError> {
        let closed = |what: &str| super::upstream::UpstreamError::Protocol {
            addr: self.addr.to_owned(),
            reason: format!("{what} during the re-authentication"),
        };
        let upstream_id = *self.next_id;
        *self.next_id = upstream_id.wrapping_add(1);
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.tx
            .send(Pending::Internal { upstream_id, reply })
            .await
            .map_err(|_| closed("the connection closed"))?;
        forward_as(self.up_w, &frame, upstream_id)
            .await
            .map_err(|e| super::upstream::after_connect(self.addr, "re-authentication", &e))?;
        answer
            .await
            .map_err(|_| closed("the upstream connection closed"))
    }
}

/// Where the correlation id sits in a frame: after the length, the API key and the version.
const CORRELATION_ID: std::ops::Range<usize> = 8..12;

/// Writes a request frame upstream with the gateway's correlation id in place of the client's,
/// in one vectored write.
async fn forward_as<W: AsyncWrite + Unpin>(
    up: &mut W,
    wire: &Bytes,
    upstream_id: i32,
) -> std::io::Result<()> {
    // `Request::from_wire` refuses frames too short to hold a header.
    let (head, rest) = wire.split_at(CORRELATION_ID.start.min(wire.len()));
    let id = upstream_id.to_be_bytes();
    write_all_parts(up, &[head, &id, rest.get(4..).unwrap_or_default()]).await
}

/// Completes when the gateway drains (never, if the drain's sender is gone). The guard that
/// `wait_for` returns is dropped at once: it must not live across another branch's await.
async fn draining(drain: &mut watch::Receiver<bool>) {
    if drain.wait_for(|draining| *draining).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// `age` less up to a tenth of it, at random: connections made together do not all close
/// together.
fn jittered(age: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let tenth = age / 10;
    let nanos = u64::try_from(tenth.as_nanos()).unwrap_or(u64::MAX);
    age - Duration::from_nanos(random.checked_rem(nanos.max(1)).unwrap_or(0))
}

/// An instant no timer reaches (a disabled deadline in a `select!`).
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}

/// The session's remaining lifetime, reported as `session_lifetime_ms` and enforced: the time
/// left on the token, capped by `max_session_lifetime`, but at least a second. A token accepted
/// within the clock skew after its expiry (or with under a second left, as `exp` has whole
/// seconds) would otherwise report 0, which KIP-368 clients read as "never re-authenticate".
fn session_lifetime(shared: &Shared, session: &Session) -> Duration {
    let left = session.lifetime_at(shared.gate().validator().clock().now());
    shared
        .max_session_lifetime
        .map_or(left, |cap| left.min(cap))
        .max(MIN_SESSION_LIFETIME)
}

/// An error response for a refused API, where its response can carry one at the top level.
fn refusal(req: &Request) -> Option<Bytes> {
    use kafka_protocol::messages::*;
    let code = acl::unsupported_code();
    macro_rules! top_level {
        ($($api:ident => $resp:ty),* $(,)?) => {
            match req.api {
                $(ApiKey::$api => {
                    let mut r = <$resp>::default();
                    r.error_code = code;
                    response_frame(req.api, req.version(), req.correlation_id(), &r).ok()
                })*
                _ => None,
            }
        };
    }
    top_level!(
        DescribeAcls => DescribeAclsResponse,
        ListTransactions => ListTransactionsResponse,
        DescribeClientQuotas => DescribeClientQuotasResponse,
        DescribeUserScramCredentials => DescribeUserScramCredentialsResponse,
        DescribeQuorum => DescribeQuorumResponse,
        AlterPartitionReassignments => AlterPartitionReassignmentsResponse,
        ListPartitionReassignments => ListPartitionReassignmentsResponse,
        ElectLeaders => ElectLeadersResponse,
        DescribeLogDirs => DescribeLogDirsResponse,
        ConsumerGroupHeartbeat => ConsumerGroupHeartbeatResponse,
        GetTelemetrySubscriptions => GetTelemetrySubscriptionsResponse,
        PushTelemetry => PushTelemetryResponse,
        UpdateFeatures => UpdateFeaturesResponse,
    )
}

/// Writes responses to the client in request order: local ones as they are, upstream ones
/// when their gateway correlation id pairs them with their request ([`pair`]), through the
/// request's patch and under the client's correlation id. An upstream response that pairs with
/// no request closes the connection; it is never forwarded.
async fn respond<R, W>(
    mut rx: mpsc::Receiver<Pending>,
    in_flight: Arc<AtomicUsize>,
    mut upstream: R,
    mut client: Outbox<W>,
    metrics: Arc<Metrics>,
    peer: SocketAddr,
) -> Result<(), End>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    // Responses (large fetches) are read into one buffer, reused while the connection is busy
    // and released after [`RELEASE_AFTER`] without a response.
    let mut frames = Frames::keeping();
    let mut unanswered = VecDeque::new();
    // A response read while no request was waiting for one.
    let mut early: Option<Bytes> = None;
    let stray = |expected: Option<i32>, got: Option<i32>| {
        metrics.upstream_response_dropped("stray");
        tracing::warn!(
            target: "poolgate::audit",
            event = "stray_response",
            peer = %peer,
            expected = ?expected,
            got = ?got,
            "an upstream response answers no pending request; closing the connection"
        );
        End::StrayResponse
    };
    let answered_anyway = |got: i32| {
        metrics.upstream_response_dropped("acks0_answered");
        tracing::debug!(
            target: "poolgate::audit",
            event = "response_dropped",
            peer = %peer,
            upstream_id = got,
            reason = "acks0_answered",
        );
    };
    loop {
        let item = if early.is_some() {
            // The request an early response answers is queued before it is written upstream,
            // so it is in the queue now; when the queue is empty, the response answers nothing.
            match rx.try_recv() {
                Ok(item) => Some(item),
                Err(mpsc::error::TryRecvError::Empty) => {
                    return Err(stray(None, early.as_ref().and_then(response_id)));
                }
                Err(mpsc::error::TryRecvError::Disconnected) => None,
            }
        } else {
            // Keep reading the upstream while no request waits, so that answers to `acks=0`
            // requests never fill the connection and stray responses are caught at once.
            let holds = frames.holds_memory();
            tokio::select! {
                biased;
                item = rx.recv() => item,
                () = tokio::time::sleep(RELEASE_AFTER), if holds => {
                    frames.release();
                    continue;
                }
                frame = frames.next(&mut upstream, UPSTREAM_MAX_FRAME) => {
                    let frame = frame.map_err(|e| End::Upstream(format!("reading response: {e}")))?;
                    let got = response_id(&frame).ok_or_else(|| stray(None, None))?;
                    match pair(None, got, &mut unanswered) {
                        Pairing::AnsweredAnyway => answered_anyway(got),
                        // Its request was queued after the queue was last looked at.
                        Pairing::Answer | Pairing::Stray => early = Some(frame),
                    }
                    continue;
                }
            }
        };
        let Some(item) = item else { break };
        match item {
            Pending::Local(frame) => client.put(&[&frame]).await.map_err(WireError::from)?,
            Pending::Unanswered { upstream_id } => {
                if unanswered.len() == MAX_UNANSWERED {
                    unanswered.pop_front();
                }
                unanswered.push_back(upstream_id);
                if let Some(frame) = &early
                    && response_id(frame) == Some(upstream_id)
                {
                    early = None;
                    unanswered.clear();
                    answered_anyway(upstream_id);
                }
            }
            answered => {
                // Local and Unanswered items are matched above.
                let upstream_id = answered.upstream_id().unwrap_or_default();
                let wire = loop {
                    let wire = match early.take() {
                        Some(f) => f,
                        None => {
                            // Already here (one poll; `Frames::next` is cancel-safe)?
                            let ready = tokio::select! {
                                biased;
                                f = frames.next(&mut upstream, UPSTREAM_MAX_FRAME) => Some(f),
                                () = std::future::ready(()) => None,
                            };
                            let read = match ready {
                                Some(f) => f,
                                None => {
                                    // The broker has not answered yet (a long-polling fetch,
                                    // say): the responses written before it go out now, not
                                    // after it.
                                    client.flush().await.map_err(WireError::from)?;
                                    frames.next(&mut upstream, UPSTREAM_MAX_FRAME).await
                                }
                            };
                            read.map_err(|e| End::Upstream(format!("reading response: {e}")))?
                        }
                    };
                    let got = response_id(&wire).ok_or_else(|| stray(Some(upstream_id), None))?;
                    match pair(Some(upstream_id), got, &mut unanswered) {
                        Pairing::Answer => break wire,
                        Pairing::AnsweredAnyway => answered_anyway(got),
                        Pairing::Stray => return Err(stray(Some(upstream_id), Some(got))),
                    }
                };
                match answered {
                    // The session loop waits for it; gone only when it ended.
                    Pending::Internal { reply, .. } => drop(reply.send(wire)),
                    Pending::Upstream {
                        correlation_id,
                        api,
                        version,
                        patch,
                        ..
                    } => deliver(&mut client, wire, correlation_id, api, version, patch).await?,
                    Pending::Local(_) | Pending::Unanswered { .. } => {}
                }
            }
        }
        if rx.is_empty() {
            client.flush().await.map_err(WireError::from)?;
        }
        in_flight.fetch_sub(1, Ordering::AcqRel);
    }
    let _ = client.shutdown().await;
    Ok(())
}

/// Writes the upstream response `wire` to the client as the answer to its request
/// `correlation_id`, through the request's patch.
async fn deliver<W: AsyncWrite + Unpin>(
    client: &mut Outbox<W>,
    wire: Bytes,
    correlation_id: i32,
    api: ApiKey,
    version: i16,
    patch: Option<acl::Patch>,
) -> Result<(), End> {
    let Some(patch) = patch else {
        // As received, under the client's correlation id (`response_id` checked the length).
        let id = correlation_id.to_be_bytes();
        return Ok(client
            .put(&[&wire[..4], &id, &wire[8..]])
            .await
            .map_err(WireError::from)?);
    };
    let (_, body) =
        split_response(api, version, wire.slice(4..)).map_err(|e| End::Upstream(e.to_string()))?;
    let body = patch(version, body).map_err(|e| End::Upstream(e.to_string()))?;
    let mut out = BytesMut::with_capacity(body.len() + 16);
    out.put_i32(0);
    let mut header = ResponseHeader::default();
    header.correlation_id = correlation_id;
    header
        .encode(&mut out, api.response_header_version(version))
        .map_err(|e| End::Upstream(e.to_string()))?;
    out.put_slice(&body);
    let len = u32::try_from(out.len() - 4).unwrap_or(u32::MAX);
    out[..4].copy_from_slice(&len.to_be_bytes());
    Ok(client.put(&[&out]).await.map_err(WireError::from)?)
}
