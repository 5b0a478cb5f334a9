//! Owns the running test issuer: the axum server (discovery, JWKS and token endpoints) on
//! 127.0.0.1, its key ring, its registered clients, injected faults and request counters.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde_json::{Map, Value, json};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use url::Url;

use super::keys::{SigningAlg, SigningKey};
use super::mint::{self, DEFAULT_AUDIENCE, DEFAULT_LIFETIME, TokenBuilder};
use crate::{Clock, SystemClock};

/// The id of the client every default [`IssuerConfig`] registers.
pub const DEFAULT_CLIENT_ID: &str = "svc-test";

/// The secret of the client every default [`IssuerConfig`] registers.
pub const DEFAULT_CLIENT_SECRET: &str = "svc-test-secret";

/// The `issuer` the discovery document names under [`Fault::WrongIssuer`].
pub const WRONG_ISSUER: &str = "https://wrong-issuer.invalid";

/// The body served under [`Fault::Garbage`] (with `Content-Type: application/json`).
pub const GARBAGE_BODY: &str = "<html><body>this is not JSON {\"keys\": [</body></html>";

/// A client allowed to use the token endpoint (`client_credentials` grant).
#[derive(Clone, Debug, PartialEq)]
pub struct Client {
    /// The client id (`client_id`); also the `sub` of its tokens unless `claims` sets one.
    pub id: String,
    /// The client secret.
    pub secret: String,
    /// Extra claims for its tokens; they override the defaults (`sub`, `aud`, ...).
    pub claims: Map<String, Value>,
    /// Token lifetime: `exp = iat + lifetime`, and the response's `expires_in`.
    pub lifetime: Duration,
}

impl Client {
    /// A client with no extra claims and a one-hour token lifetime.
    pub fn new(id: impl Into<String>, secret: impl Into<String>) -> Client {
        Client {
            id: id.into(),
            secret: secret.into(),
            claims: Map::new(),
            lifetime: DEFAULT_LIFETIME,
        }
    }

    /// Adds (or replaces) a claim of this client's tokens.
    #[must_use]
    pub fn claim(mut self, name: &str, value: Value) -> Client {
        self.claims.insert(name.to_owned(), value);
        self
    }

    /// Sets this client's token lifetime.
    #[must_use]
    pub fn lifetime(mut self, lifetime: Duration) -> Client {
        self.lifetime = lifetime;
        self
    }
}

/// How a [`TestIssuer`] starts.
#[derive(Clone, Debug)]
pub struct IssuerConfig {
    /// Algorithms with an active, published key at start; the first signs the token endpoint's
    /// tokens. Default `[RS256, ES256, EdDSA]`. Must not be empty.
    pub signing: Vec<SigningAlg>,
    /// Clients of the token endpoint. Default: one, [`DEFAULT_CLIENT_ID`] / [`DEFAULT_CLIENT_SECRET`].
    pub clients: Vec<Client>,
    /// The `aud` of issued and minted tokens. Default `"kafka"`.
    pub audience: String,
    /// The clock for `iat`/`exp`. Default: the system clock.
    pub clock: Arc<dyn Clock>,
    /// `Cache-Control: max-age` of JWKS responses at start (see [`TestIssuer::set_max_age`]).
    pub max_age: Option<u64>,
    /// The address to listen on; the issuer URL is `http://{addr}` with the bound address.
    /// Default `None`: 127.0.0.1 on a port the system picks.
    pub listen: Option<SocketAddr>,
}

impl Default for IssuerConfig {
    fn default() -> Self {
        IssuerConfig {
            signing: SigningAlg::ALL.to_vec(),
            clients: vec![Client::new(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)],
            audience: DEFAULT_AUDIENCE.to_owned(),
            clock: Arc::new(SystemClock),
            max_age: None,
            listen: None,
        }
    }
}

/// A misbehaviour injected into the discovery and JWKS endpoints.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Fault {
    /// Behave.
    #[default]
    None,
    /// Listener-wide: accept connections, then drop them without an HTTP response. Open
    /// keep-alive connections are closed too when they next carry a request. Also cuts off the
    /// token endpoint.
    Down,
    /// Answer with this HTTP status and an empty body.
    Status(u16),
    /// Wait this long (tokio time) before answering normally.
    Slow(Duration),
    /// Hold every request until [`TestIssuer::release`] or until the fault is changed.
    Hang,
    /// `200`, `Content-Type: application/json`, and a body that is not JSON ([`GARBAGE_BODY`]).
    Garbage,
    /// `200` with a JSON-looking body of exactly this many bytes, with `Content-Length`.
    Oversized(usize),
    /// As `Oversized`, but streamed in chunks without `Content-Length`.
    OversizedChunked(usize),
    /// The discovery document names [`WRONG_ISSUER`] as its `issuer` (JWKS is unaffected).
    WrongIssuer,
}

/// An endpoint a fault can target on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `/.well-known/openid-configuration`.
    Discovery,
    /// `/jwks`.
    Jwks,
}

/// Requests received per endpoint (counted even when a fault is served; not under
/// [`Fault::Down`], where no request is read).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Discovery document requests.
    pub discovery: u64,
    /// JWKS requests.
    pub jwks: u64,
    /// Token endpoint requests.
    pub token: u64,
}

/// Published keys and the active signer per algorithm.
#[derive(Default)]
struct KeyRing {
    published: Vec<Arc<SigningKey>>,
    active: Vec<Arc<SigningKey>>,
}

struct Shared {
    issuer: String,
    audience: String,
    clock: Arc<dyn Clock>,
    signing: Vec<SigningAlg>,
    jwks_uri: String,
    token_endpoint: String,
    keys: Mutex<KeyRing>,
    clients: Mutex<Vec<Client>>,
    jwks_override: Mutex<Option<Value>>,
    discovery_fault: Mutex<Fault>,
    jwks_fault: Mutex<Fault>,
    max_age: Mutex<Option<u64>>,
    discovery_count: AtomicU64,
    jwks_count: AtomicU64,
    token_count: AtomicU64,
    /// Listener-wide [`Fault::Down`].
    down: AtomicBool,
    /// Bumped by every `release()`.
    released: AtomicU64,
    /// Set when the [`TestIssuer`] is dropped.
    shutting_down: AtomicBool,
    /// Ticks whenever a held request may have to re-check (release, fault change, shutdown).
    wake: watch::Sender<u64>,
    /// How many requests [`Fault::Hang`] holds right now.
    held: watch::Sender<usize>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn new_kid(alg: SigningAlg) -> String {
    format!("{}-{:08x}", alg.kid_prefix(), rand::random::<u32>())
}

impl Shared {
    fn fault(&self, endpoint: Endpoint) -> Fault {
        match endpoint {
            Endpoint::Discovery => lock(&self.discovery_fault).clone(),
            Endpoint::Jwks => lock(&self.jwks_fault).clone(),
        }
    }

    fn wake_held(&self) {
        self.wake.send_modify(|tick| *tick = tick.wrapping_add(1));
    }

    fn active_key(&self, alg: SigningAlg) -> Arc<SigningKey> {
        let mut ring = lock(&self.keys);
        if let Some(key) = ring.active.iter().find(|k| k.alg() == alg) {
            return Arc::clone(key);
        }
        let key = Arc::new(SigningKey::generate(alg, new_kid(alg)));
        ring.published.push(Arc::clone(&key));
        ring.active.push(Arc::clone(&key));
        key
    }

    fn rotate(&self, alg: SigningAlg) -> Arc<SigningKey> {
        let key = Arc::new(SigningKey::generate(alg, new_kid(alg)));
        let mut ring = lock(&self.keys);
        ring.published.push(Arc::clone(&key));
        ring.active.retain(|k| k.alg() != alg);
        ring.active.push(Arc::clone(&key));
        key
    }

    /// The signer of the token endpoint: the first configured algorithm.
    fn token_alg(&self) -> SigningAlg {
        self.signing.first().copied().unwrap_or(SigningAlg::RS256)
    }

    /// The default signer of `mint()`: RS256 when configured, else the first configured one.
    fn mint_alg(&self) -> SigningAlg {
        if self.signing.contains(&SigningAlg::RS256) {
            SigningAlg::RS256
        } else {
            self.signing.first().copied().unwrap_or(SigningAlg::RS256)
        }
    }

    fn jwks(&self) -> Value {
        if let Some(body) = lock(&self.jwks_override).clone() {
            return body;
        }
        let keys: Vec<Value> = lock(&self.keys)
            .published
            .iter()
            .map(|k| k.public_jwk())
            .collect();
        json!({ "keys": keys })
    }

    fn discovery(&self, issuer: &str) -> Value {
        let algs: Vec<&str> = self.signing.iter().map(|a| a.as_str()).collect();
        json!({
            "issuer": issuer,
            "jwks_uri": self.jwks_uri,
            "token_endpoint": self.token_endpoint,
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "id_token_signing_alg_values_supported": algs,
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
        })
    }

    /// Counts the request and applies the endpoint's fault. `Err` is the response a fault
    /// produced; `Ok` is the fault still in force for a normal answer (`None`/`WrongIssuer`).
    async fn enter(&self, endpoint: Endpoint) -> Result<Fault, Response> {
        // Snapshot the release generation before the request becomes visible in `counts()`, so a
        // `release()` issued after a test observes the count always frees this request.
        let released = self.released.load(Ordering::SeqCst);
        let counter = match endpoint {
            Endpoint::Discovery => &self.discovery_count,
            Endpoint::Jwks => &self.jwks_count,
        };
        counter.fetch_add(1, Ordering::SeqCst);

        let mut fault = self.fault(endpoint);
        if fault == Fault::Hang {
            self.hold(endpoint, released).await;
            if self.shutting_down.load(Ordering::SeqCst) {
                return Err(StatusCode::SERVICE_UNAVAILABLE.into_response());
            }
            fault = match self.fault(endpoint) {
                Fault::Hang => Fault::None,
                other => other,
            };
        }
        match fault {
            Fault::Status(code) => Err(StatusCode::from_u16(code)
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
                .into_response()),
            Fault::Slow(delay) => {
                tokio::time::sleep(delay).await;
                Ok(Fault::None)
            }
            Fault::Garbage => Err(json_response(StatusCode::OK, GARBAGE_BODY)),
            Fault::Oversized(len) => Err(json_response(StatusCode::OK, oversized_body(len))),
            Fault::OversizedChunked(len) => {
                // A stream body has no size hint, so hyper sends it chunked, without
                // Content-Length.
                let stream = Body::from(oversized_body(len)).into_data_stream();
                Err(json_response(StatusCode::OK, Body::from_stream(stream)))
            }
            other => Ok(other),
        }
    }

    /// Waits until `release()` is called after `released` was read, the endpoint's fault stops
    /// being `Hang`, or the issuer shuts down.
    async fn hold(&self, endpoint: Endpoint, released: u64) {
        self.held.send_modify(|n| *n += 1);
        let _guard = HeldGuard(&self.held);
        let mut wake = self.wake.subscribe();
        loop {
            if self.released.load(Ordering::SeqCst) != released
                || self.shutting_down.load(Ordering::SeqCst)
                || self.fault(endpoint) != Fault::Hang
            {
                return;
            }
            if wake.changed().await.is_err() {
                return;
            }
        }
    }
}

/// Decrements the held-request count when a held request ends (or is dropped).
struct HeldGuard<'a>(&'a watch::Sender<usize>);

impl Drop for HeldGuard<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

fn json_response(status: StatusCode, body: impl Into<Body>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.into(),
    )
        .into_response()
}

/// `{"keys":[],"padding":"aaaa…"}` of exactly `len` bytes (spaces when `len` is tiny).
fn oversized_body(len: usize) -> Vec<u8> {
    const PREFIX: &[u8] = br#"{"keys":[],"padding":""#;
    const SUFFIX: &[u8] = br#""}"#;
    if len < PREFIX.len() + SUFFIX.len() {
        return vec![b' '; len];
    }
    let mut body = Vec::with_capacity(len);
    body.extend_from_slice(PREFIX);
    body.resize(len - SUFFIX.len(), b'a');
    body.extend_from_slice(SUFFIX);
    body
}

async fn discovery_handler(State(shared): State<Arc<Shared>>) -> Response {
    match shared.enter(Endpoint::Discovery).await {
        Err(response) => response,
        Ok(fault) => {
            let issuer = if fault == Fault::WrongIssuer {
                WRONG_ISSUER
            } else {
                shared.issuer.as_str()
            };
            json_response(StatusCode::OK, shared.discovery(issuer).to_string())
        }
    }
}

async fn jwks_handler(State(shared): State<Arc<Shared>>) -> Response {
    if let Err(response) = shared.enter(Endpoint::Jwks).await {
        return response;
    }
    let mut response = json_response(StatusCode::OK, shared.jwks().to_string());
    if let Some(secs) = *lock(&shared.max_age)
        && let Ok(value) = HeaderValue::try_from(format!("max-age={secs}"))
    {
        response.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    response
}

/// An OAuth 2.0 error response (RFC 6749 section 5.2).
fn oauth_error(status: StatusCode, error: &str, basic_challenge: bool) -> Response {
    let mut response = json_response(status, json!({ "error": error }).to_string());
    if basic_challenge {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"poolgate-testkit\""),
        );
    }
    response
}

/// Decodes one `application/x-www-form-urlencoded` component (`+` is a space, `%XX` a byte).
fn form_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = char::from(bytes.next()?).to_digit(16)?;
                let lo = char::from(bytes.next()?).to_digit(16)?;
                out.push(u8::try_from(hi * 16 + lo).ok()?);
            }
            _ => out.push(b),
        }
    }
    String::from_utf8(out).ok()
}

/// `Authorization: Basic` credentials (RFC 6749 section 2.3.1): `None` without the header,
/// `Some(Err)` when it is malformed.
fn basic_credentials(headers: &HeaderMap) -> Option<Result<(String, String), ()>> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok();
    let Some((scheme, encoded)) = value.and_then(|v| v.trim().split_once(' ')) else {
        return Some(Err(()));
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Some(Err(()));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|raw| String::from_utf8(raw).ok());
    let parsed = decoded.as_deref().and_then(|pair| {
        let (id, secret) = pair.split_once(':')?;
        Some((form_decode(id)?, form_decode(secret)?))
    });
    Some(parsed.ok_or(()))
}

async fn token_handler(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.token_count.fetch_add(1, Ordering::SeqCst);
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let param = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };

    if param("grant_type") != Some("client_credentials") {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", false);
    }

    let basic = basic_credentials(&headers);
    let used_basic = basic.is_some();
    let (id, secret) = match (basic, param("client_id"), param("client_secret")) {
        (Some(_), _, Some(_)) => {
            // RFC 6749 section 2.3: one authentication method per request.
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", false);
        }
        (Some(Ok(creds)), _, None) => creds,
        (Some(Err(())), _, None) | (None, _, None) | (None, None, Some(_)) => {
            return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", true);
        }
        (None, Some(id), Some(secret)) => (id.to_owned(), secret.to_owned()),
    };

    let client = lock(&shared.clients).iter().find(|c| c.id == id).cloned();
    let Some(client) = client.filter(|c| {
        aws_lc_rs::constant_time::verify_slices_are_equal(c.secret.as_bytes(), secret.as_bytes())
            .is_ok()
    }) else {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", used_basic);
    };

    let key = shared.active_key(shared.token_alg());
    let iat = shared.clock.now();
    let mut header = Map::new();
    header.insert("alg".to_owned(), json!(key.alg().as_str()));
    header.insert("typ".to_owned(), json!("JWT"));
    header.insert("kid".to_owned(), json!(key.kid()));
    let mut claims = Map::new();
    claims.insert("iss".to_owned(), json!(shared.issuer));
    claims.insert("sub".to_owned(), json!(client.id));
    claims.insert("aud".to_owned(), json!(shared.audience));
    claims.insert("iat".to_owned(), json!(iat.as_secs()));
    claims.insert("exp".to_owned(), json!((iat + client.lifetime).as_secs()));
    claims.insert("jti".to_owned(), json!(mint::random_jti()));
    claims.insert("client_id".to_owned(), json!(client.id));
    for (name, value) in &client.claims {
        claims.insert(name.clone(), value.clone());
    }
    if let Some(scope) = param("scope") {
        claims.insert("scope".to_owned(), json!(scope));
    }
    let token = mint::encode_jws(&header, &claims, &key);

    let mut response = json_response(
        StatusCode::OK,
        json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": client.lifetime.as_secs(),
        })
        .to_string(),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The TCP listener, which drops connections while [`Fault::Down`] is set.
struct GatedListener {
    inner: TcpListener,
    shared: Arc<Shared>,
}

impl axum::serve::Listener for GatedListener {
    type Io = GatedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (GatedStream, SocketAddr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    if self.shared.down.load(Ordering::SeqCst) {
                        tracing::trace!(%addr, "testkit issuer is down: dropping connection");
                        drop(stream);
                        continue;
                    }
                    let shared = Arc::clone(&self.shared);
                    return (
                        GatedStream {
                            inner: stream,
                            shared,
                        },
                        addr,
                    );
                }
                Err(err) => {
                    // Like axum's own listener: back off briefly on resource exhaustion.
                    tracing::debug!(%err, "testkit issuer accept error");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// An accepted connection; reads end (EOF) while [`Fault::Down`] is set, so kept-alive
/// connections die with no response too.
struct GatedStream {
    inner: TcpStream,
    shared: Arc<Shared>,
}

impl AsyncRead for GatedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.shared.down.load(Ordering::SeqCst) {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for GatedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A running OIDC issuer on `127.0.0.1:<random port>`. Dropping it stops the server.
///
/// Endpoints: `GET /.well-known/openid-configuration`, `GET /jwks`, `POST /token`
/// (`client_credentials`, `client_secret_basic` or `client_secret_post`).
pub struct TestIssuer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    discovery_url: Url,
    jwks_url: Url,
    token_url: Url,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for TestIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestIssuer")
            .field("issuer", &self.shared.issuer)
            .finish_non_exhaustive()
    }
}

impl Drop for TestIssuer {
    fn drop(&mut self) {
        self.shared.shutting_down.store(true, Ordering::SeqCst);
        self.shared.wake_held();
        self.task.abort();
    }
}

fn invalid(err: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, err.to_string())
}

impl TestIssuer {
    /// Starts an issuer with [`IssuerConfig::default`].
    pub async fn start() -> io::Result<TestIssuer> {
        TestIssuer::start_with(IssuerConfig::default()).await
    }

    /// Starts an issuer with `cfg`; needs a tokio runtime.
    pub async fn start_with(cfg: IssuerConfig) -> io::Result<TestIssuer> {
        let mut signing: Vec<SigningAlg> = Vec::with_capacity(cfg.signing.len());
        for alg in cfg.signing {
            if !signing.contains(&alg) {
                signing.push(alg);
            }
        }
        if signing.is_empty() {
            return Err(invalid(
                "IssuerConfig.signing must name at least one algorithm",
            ));
        }

        let bind = cfg
            .listen
            .unwrap_or_else(|| SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
        let listener = TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let issuer = format!("http://{addr}");
        let discovery_url =
            Url::parse(&format!("{issuer}/.well-known/openid-configuration")).map_err(invalid)?;
        let jwks_url = Url::parse(&format!("{issuer}/jwks")).map_err(invalid)?;
        let token_url = Url::parse(&format!("{issuer}/token")).map_err(invalid)?;

        let mut ring = KeyRing::default();
        for &alg in &signing {
            let key = Arc::new(SigningKey::try_generate(alg, new_kid(alg)).map_err(invalid)?);
            ring.published.push(Arc::clone(&key));
            ring.active.push(key);
        }

        let shared = Arc::new(Shared {
            issuer,
            audience: cfg.audience,
            clock: cfg.clock,
            signing,
            jwks_uri: jwks_url.to_string(),
            token_endpoint: token_url.to_string(),
            keys: Mutex::new(ring),
            clients: Mutex::new(cfg.clients),
            jwks_override: Mutex::new(None),
            discovery_fault: Mutex::new(Fault::None),
            jwks_fault: Mutex::new(Fault::None),
            max_age: Mutex::new(cfg.max_age),
            discovery_count: AtomicU64::new(0),
            jwks_count: AtomicU64::new(0),
            token_count: AtomicU64::new(0),
            down: AtomicBool::new(false),
            released: AtomicU64::new(0),
            shutting_down: AtomicBool::new(false),
            wake: watch::Sender::new(0),
            held: watch::Sender::new(0),
        });

        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery_handler))
            .route("/jwks", get(jwks_handler))
            .route("/token", post(token_handler))
            .with_state(Arc::clone(&shared));
        let listener = GatedListener {
            inner: listener,
            shared: Arc::clone(&shared),
        };
        let task = tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, app).await {
                tracing::warn!(%err, "testkit issuer stopped");
            }
        });
        tracing::debug!(issuer = %shared.issuer, "testkit issuer started");

        Ok(TestIssuer {
            shared,
            addr,
            discovery_url,
            jwks_url,
            token_url,
            task,
        })
    }

    /// `http://127.0.0.1:PORT`, no trailing slash; the `iss` of its tokens.
    pub fn issuer(&self) -> &str {
        &self.shared.issuer
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The audience (`aud`) of issued and minted tokens.
    pub fn audience(&self) -> &str {
        &self.shared.audience
    }

    /// `{issuer}/.well-known/openid-configuration`.
    pub fn discovery_url(&self) -> Url {
        self.discovery_url.clone()
    }

    /// `{issuer}/jwks`.
    pub fn jwks_url(&self) -> Url {
        self.jwks_url.clone()
    }

    /// `{issuer}/token`.
    pub fn token_url(&self) -> Url {
        self.token_url.clone()
    }

    /// Registers a token endpoint client, replacing any with the same id.
    pub fn add_client(&self, client: Client) {
        let mut clients = lock(&self.shared.clients);
        clients.retain(|c| c.id != client.id);
        clients.push(client);
    }

    /// The key currently signing for `alg`. For an algorithm the issuer was not configured
    /// with, a key is generated, published and made active on first use.
    pub fn active_key(&self, alg: SigningAlg) -> Arc<SigningKey> {
        self.shared.active_key(alg)
    }

    /// Generates a new key for `alg`, publishes it and makes it the active signer; the previous
    /// key stays published. Returns the new kid.
    pub fn rotate(&self, alg: SigningAlg) -> String {
        self.shared.rotate(alg).kid().to_owned()
    }

    /// Publishes an extra (not active) key in the JWKS, e.g. [`SigningKey::weak_rsa_1024`].
    /// Duplicate kids are published as given. Returns the key, to sign with it.
    pub fn publish(&self, key: impl Into<Arc<SigningKey>>) -> Arc<SigningKey> {
        let key = key.into();
        lock(&self.shared.keys).published.push(Arc::clone(&key));
        key
    }

    /// Removes every key with this kid from the JWKS. An active key stays the signer, so new
    /// tokens then carry a kid the JWKS no longer lists (until `rotate`).
    pub fn retire(&self, kid: &str) {
        lock(&self.shared.keys).published.retain(|k| k.kid() != kid);
    }

    /// The JWKS document the `/jwks` endpoint serves (ignoring faults).
    pub fn jwks(&self) -> Value {
        self.shared.jwks()
    }

    /// Serves `body` as the JWKS instead of the real keys (`None` restores them).
    pub fn set_jwks_override(&self, body: Option<Value>) {
        *lock(&self.shared.jwks_override) = body;
    }

    /// Injects `fault` into both the discovery and the JWKS endpoints ([`Fault::None`] clears).
    pub fn set_fault(&self, fault: Fault) {
        *lock(&self.shared.discovery_fault) = fault.clone();
        *lock(&self.shared.jwks_fault) = fault;
        self.fault_changed();
    }

    /// Injects `fault` into one endpoint only ([`Fault::Down`] is still listener-wide).
    pub fn set_fault_on(&self, endpoint: Endpoint, fault: Fault) {
        match endpoint {
            Endpoint::Discovery => *lock(&self.shared.discovery_fault) = fault,
            Endpoint::Jwks => *lock(&self.shared.jwks_fault) = fault,
        }
        self.fault_changed();
    }

    fn fault_changed(&self) {
        let down = *lock(&self.shared.discovery_fault) == Fault::Down
            || *lock(&self.shared.jwks_fault) == Fault::Down;
        self.shared.down.store(down, Ordering::SeqCst);
        self.shared.wake_held();
    }

    /// Sets (or with `None`, removes) `Cache-Control: max-age=<secs>` on JWKS responses.
    pub fn set_max_age(&self, secs: Option<u64>) {
        *lock(&self.shared.max_age) = secs;
    }

    /// Requests received so far, per endpoint.
    pub fn counts(&self) -> Counts {
        Counts {
            discovery: self.shared.discovery_count.load(Ordering::SeqCst),
            jwks: self.shared.jwks_count.load(Ordering::SeqCst),
            token: self.shared.token_count.load(Ordering::SeqCst),
        }
    }

    /// Releases every request [`Fault::Hang`] holds now (they then answer normally). Requests
    /// arriving later are held again while the fault stays `Hang`.
    pub fn release(&self) {
        self.shared.released.fetch_add(1, Ordering::SeqCst);
        self.shared.wake_held();
    }

    /// How many requests [`Fault::Hang`] is holding right now.
    pub fn held(&self) -> usize {
        *self.shared.held.borrow()
    }

    /// Waits until [`Fault::Hang`] holds at least `n` requests (no timeout: wrap it in one).
    pub async fn wait_held(&self, n: usize) {
        let mut held = self.shared.held.subscribe();
        // The sender lives in `self.shared`, so this cannot fail while `self` is borrowed.
        let _ = held.wait_for(|&count| count >= n).await;
    }

    /// A token builder: `iss` = this issuer, `aud` = its audience, `iat` = its clock, signed by
    /// the active RS256 key (or, without RS256, the first configured algorithm's).
    pub fn mint(&self) -> TokenBuilder {
        let key = self.shared.active_key(self.shared.mint_alg());
        let shared = Arc::clone(&self.shared);
        TokenBuilder::with_clock(key, self.shared.issuer.clone(), self.shared.clock.as_ref())
            .for_issuer(
                &self.shared.audience,
                Arc::new(move |alg| shared.active_key(alg)),
            )
    }
}
