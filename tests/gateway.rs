//! `poolgate gateway` against a local OIDC issuer: login, refusals, abuse, limits, TLS, metrics.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, SaslAuthenticateRequest,
    SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Request, StrBytes};
use poolgate::UnixTime;
use poolgate::sasl::ClientFirstMessage;
use poolgate::testkit::kafka::{KafkaClient, KafkaClientError};
use poolgate::testkit::{SigningAlg, SigningKey, TestIssuer};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

#[path = "gateway/cluster.rs"]
mod cluster;
#[path = "gateway/lifecycle.rs"]
mod lifecycle;
#[path = "gateway/upstream.rs"]
mod upstream;

/// The gateway configuration template; `{issuer}` and `{discovery_url}` are filled in.
const TEMPLATE: &str = include_str!("../testdata/gateway/gateway.toml");
/// The template's `[cluster] id`: every login sends it as the `logicalCluster` extension.
const CLUSTER: &str = "lkc-e2e";
/// How long any single awaited event may take before the test fails.
const WAIT: Duration = Duration::from_secs(20);
/// The template's `login_timeout`.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(3);
/// The challenge every refused login gets (the template sets `challenge_scope = "kafka"`).
const CHALLENGE: &str = r#"{"status":"invalid_token","scope":"kafka"}"#;

const SASL_AUTHENTICATION_FAILED: i16 = 58;
const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
const UNSUPPORTED_VERSION: i16 = 35;

// ---------------------------------------------------------------------------------------------
// Harness: an issuer, a temporary folder with configurations, gateway processes.
// ---------------------------------------------------------------------------------------------

/// Awaits `f`, failing the test when it takes longer than [`WAIT`].
async fn within<F: Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(WAIT, f)
        .await
        .unwrap_or_else(|_| panic!("timed out after {WAIT:?} waiting for {what}"))
}

/// One test's issuer and temporary folder (removed on drop).
struct Harness {
    issuer: TestIssuer,
    dir: PathBuf,
    /// An address nothing listens on, for an unreachable upstream.
    closed: String,
    /// The socket that holds `closed`: bound, never listening, so the port cannot be taken
    /// and connecting to it is refused.
    _closed: tokio::net::TcpSocket,
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Harness {
    async fn start(name: &str) -> Harness {
        let issuer = TestIssuer::start().await.unwrap();
        let dir =
            std::env::temp_dir().join(format!("poolgate-gateway-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let closed = socket.local_addr().unwrap().to_string();
        Harness {
            issuer,
            dir,
            closed,
            _closed: socket,
        }
    }

    /// Writes the template, filled in for this issuer and changed by `edit`, to `file`.
    fn config(&self, file: &str, edit: impl FnOnce(String) -> String) -> PathBuf {
        let text = TEMPLATE
            .replace("{issuer}", self.issuer.issuer())
            .replace("{discovery_url}", self.issuer.discovery_url().as_str());
        let path = self.dir.join(file);
        std::fs::write(&path, edit(text)).unwrap();
        path
    }

    /// Starts a gateway on 127.0.0.1 with `config` and an unreachable upstream, and waits for
    /// its start-up line.
    async fn gateway_with(&self, config: &Path, extra: &[&str]) -> Gateway {
        self.gateway_to(config, &self.closed, extra).await
    }

    /// Starts a gateway on 127.0.0.1 with `config` in front of `upstream`.
    async fn gateway_to(&self, config: &Path, upstream: &str, extra: &[&str]) -> Gateway {
        self.gateway_to_env(config, upstream, extra, &[]).await
    }

    /// Starts a gateway on 127.0.0.1 with `config` in front of `upstream`, with `env` set.
    async fn gateway_to_env(
        &self,
        config: &Path,
        upstream: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Gateway {
        let config = config.to_str().unwrap();
        let mut args = vec![
            "gateway",
            "--config",
            config,
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            upstream,
        ];
        args.extend_from_slice(extra);
        let mut process = Process::spawn_env(&args, env);
        let line = within("the gateway's start-up line", process.lines.recv()).await;
        let Some(line) = line else {
            let stderr = process.stderr_at_exit().await;
            panic!(
                "the gateway exited before listening: {:?}\n{stderr}",
                process.child.wait(),
            );
        };
        let rest = line
            .strip_prefix("poolgate gateway listening on ")
            .unwrap_or_else(|| panic!("unexpected start-up line: {line}"));
        let (addr, _) = rest.split_once(' ').unwrap();
        let metrics = line
            .split_once(", metrics on http://")
            .map(|(_, url)| url.strip_suffix("/metrics").unwrap().to_owned());
        Gateway {
            addr: addr.to_owned(),
            metrics,
            line,
            process,
        }
    }

    /// A self-signed certificate for `names`, written with its key to `cert.pem` and `key.pem`
    /// in the folder (the gateway's `--tls-cert` and `--tls-key`); and the certificate in DER,
    /// the root a client trusts.
    fn tls_files(&self, names: &[&str]) -> (PathBuf, PathBuf, Vec<u8>) {
        let names = names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
        let certified = rcgen::generate_simple_self_signed(names).unwrap();
        let cert = self.dir.join("cert.pem");
        let key = self.dir.join("key.pem");
        std::fs::write(&cert, certified.cert.pem()).unwrap();
        std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
        (cert, key, certified.cert.der().to_vec())
    }

    /// A gateway with the template configuration and metrics.
    async fn gateway(&self) -> Gateway {
        let config = self.config("gateway.toml", |t| t);
        self.gateway_with(&config, &["--metrics-listen", "127.0.0.1:0"])
            .await
    }

    /// Runs `poolgate ARGS`, which must exit without printing on stdout; returns its exit code
    /// and stderr.
    async fn run_to_exit(&self, args: &[&str]) -> (Option<i32>, String) {
        let mut process = Process::spawn(args);
        // Standard output closes when the process exits.
        if let Some(line) = within("the gateway to exit", process.lines.recv()).await {
            panic!("started instead of exiting: {line}");
        }
        let stderr = process.stderr_at_exit().await;
        let status = process.child.wait().unwrap();
        (status.code(), stderr)
    }

    /// A token with `groups`, valid for ten minutes.
    fn token(&self, groups: &[&str]) -> String {
        self.issuer
            .mint()
            .lifetime(Duration::from_secs(600))
            .claim("groups", json!(groups))
            .sign()
    }

    /// A token accepted by `pool-writers`.
    fn writer_token(&self) -> String {
        self.token(&["kafka-writers"])
    }
}

/// A child process, killed on drop (also when the test fails), whose stdout lines arrive on a
/// channel (closed at exit) and whose stderr lines are kept, with a count to wait on.
struct Process {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    log: Arc<Mutex<Vec<String>>>,
    /// How many stderr lines there are; the sender goes away when stderr closes.
    logged: watch::Receiver<usize>,
}

impl Process {
    fn spawn(args: &[&str]) -> Process {
        Process::spawn_env(args, &[])
    }

    fn spawn_env(args: &[&str], env: &[(&str, &str)]) -> Process {
        let mut child = Command::new(env!("CARGO_BIN_EXE_poolgate"))
            .args(args)
            .env_remove("RUST_LOG")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::unbounded_channel();
        // Both readers read to the end even when nobody listens, so the process never writes
        // to a closed pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let log = Arc::new(Mutex::new(Vec::new()));
        let (count, logged) = watch::channel(0);
        let kept = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let n = {
                    let mut log = kept.lock().unwrap();
                    log.push(line);
                    log.len()
                };
                count.send_replace(n);
            }
        });
        Process {
            child,
            lines,
            log,
            logged,
        }
    }

    /// Everything written on stderr so far.
    fn stderr(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Everything written on stderr, once the process has closed it (at exit).
    async fn stderr_at_exit(&self) -> String {
        let mut logged = self.logged.clone();
        within("stderr to close", async {
            while logged.changed().await.is_ok() {}
        })
        .await;
        self.stderr()
    }

    /// Waits for a stderr line for which `pred` holds, and returns it; fails the test when the
    /// process closes stderr (exits) without one, or after [`WAIT`].
    async fn log_line(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let mut logged = self.logged.clone();
        within(what, async {
            loop {
                // Marked seen before looking: a line pushed after the look changes the count.
                logged.borrow_and_update();
                let found = self.log.lock().unwrap().iter().find(|l| pred(l)).cloned();
                if let Some(line) = found {
                    return line;
                }
                if logged.changed().await.is_err() {
                    let found = self.log.lock().unwrap().iter().find(|l| pred(l)).cloned();
                    return found.unwrap_or_else(|| {
                        panic!("stderr closed without {what}:\n{}", self.stderr())
                    });
                }
            }
        })
        .await
    }

    /// The audit events (`poolgate::audit`) logged so far with `event=NAME`, as fields.
    fn audit(&self, name: &str) -> Vec<BTreeMap<String, String>> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| audit_fields(l))
            .filter(|f| f.get("event").map(String::as_str) == Some(name))
            .collect()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The fields of a `poolgate::audit` line as the gateway's log prints them
/// (`... INFO poolgate::audit: event="login" peer=127.0.0.1:5 pools=["a", "b"] ...`), with
/// quoted strings unquoted; `None` for other lines.
fn audit_fields(line: &str) -> Option<BTreeMap<String, String>> {
    let (_, rest) = line.split_once(" poolgate::audit: ")?;
    let mut fields = BTreeMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.next_if_eq(&' ').is_some() {}
        let key: String = std::iter::from_fn(|| chars.next_if(|&c| c != '=' && c != ' ')).collect();
        if key.is_empty() {
            return Some(fields);
        }
        if chars.next_if_eq(&'=').is_none() {
            // A word of a message: not a field.
            continue;
        }
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            // Up to the next space outside brackets and quotes (`["a", "b"]`).
            let (mut depth, mut quoted) = (0usize, false);
            while let Some(&c) = chars.peek() {
                if c == ' ' && depth == 0 && !quoted {
                    break;
                }
                match c {
                    '"' => quoted = !quoted,
                    '[' | '{' | '(' if !quoted => depth += 1,
                    ']' | '}' | ')' if !quoted => depth = depth.saturating_sub(1),
                    _ => {}
                }
                value.push(c);
                chars.next();
            }
        }
        fields.insert(key, value);
    }
}

/// A running gateway.
struct Gateway {
    /// Where clients connect.
    addr: String,
    /// The metrics endpoint, `127.0.0.1:PORT`, when serving metrics.
    metrics: Option<String>,
    /// The start-up line.
    line: String,
    process: Process,
}

impl Gateway {
    async fn connect(&self) -> KafkaClient {
        within("a connection", KafkaClient::connect(&self.addr))
            .await
            .unwrap()
    }

    /// `GET /metrics`, over HTTP/1.0.
    async fn metrics(&self) -> String {
        let addr = self.metrics.as_deref().expect("started with metrics");
        within("the metrics", async {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
                .await
                .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            let (head, body) = out.split_once("\r\n\r\n").unwrap();
            assert!(head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"));
            body.to_owned()
        })
        .await
    }

    /// Fetches the metrics until `ready` holds for them (counters that move after a connection
    /// closes are updated just after the client sees the close).
    async fn metrics_when(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        within(what, async {
            loop {
                let m = self.metrics().await;
                if ready(&m) {
                    return m;
                }
            }
        })
        .await
    }
}

/// The value of the sample `series` (name and labels, exactly as rendered), if present.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        let rest = l.strip_prefix(series)?.strip_prefix(' ')?;
        rest.trim().parse().ok()
    })
}

fn dropped(metrics: &str, reason: &str) -> f64 {
    sample(
        metrics,
        &format!("poolgate_connections_dropped_total{{reason=\"{reason}\"}}"),
    )
    .unwrap_or(0.0)
}

/// `text` with `from` (which must be there) replaced by `to`: edits of the template.
fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "the template has no `{from}`");
    text.replacen(from, to, 1)
}

/// `RUST_LOG` for a gateway that also logs each connection it ends, with the reason
/// (`connection closed`), after it has updated that connection's counters.
const LOG_CLOSES: (&str, &str) = (
    "RUST_LOG",
    "warn,poolgate::audit=info,poolgate::gateway=info",
);

// ---------------------------------------------------------------------------------------------
// Kafka helpers.
// ---------------------------------------------------------------------------------------------

/// The SASL client-first message for `token` with `logicalCluster=cluster`.
fn client_first(token: &str, cluster: &str) -> Vec<u8> {
    ClientFirstMessage::new(token)
        .extension("logicalCluster", cluster)
        .build()
        .unwrap()
        .to_bytes()
}

fn api_versions_request() -> ApiVersionsRequest {
    let mut req = ApiVersionsRequest::default();
    req.client_software_name = StrBytes::from_static_str("poolgate-tests");
    req.client_software_version = StrBytes::from_static_str("1.0");
    req
}

fn handshake(mechanism: &'static str) -> SaslHandshakeRequest {
    let mut req = SaslHandshakeRequest::default();
    req.mechanism = StrBytes::from_static_str(mechanism);
    req
}

async fn api_versions(client: &mut KafkaClient) -> ApiVersionsResponse {
    within("ApiVersions", client.call(3, api_versions_request()))
        .await
        .unwrap()
}

/// Logs in on `client` with `token`, asserting success; returns the response.
async fn login_ok(client: &mut KafkaClient, token: &str) -> SaslAuthenticateResponse {
    let resp = within(
        "a login",
        client.sasl_oauthbearer(&client_first(token, CLUSTER)),
    )
    .await
    .unwrap();
    assert_eq!(resp.error_code, 0, "{resp:?}");
    assert!(
        resp.auth_bytes.is_empty(),
        "success carries no challenge: {:?}",
        String::from_utf8_lossy(&resp.auth_bytes)
    );
    assert!(resp.session_lifetime_ms > 0, "{resp:?}");
    resp
}

/// A new connection that asks for the API versions, then logs in with `token`.
async fn good_login(gw: &Gateway, token: &str) -> SaslAuthenticateResponse {
    let mut client = gw.connect().await;
    let versions = api_versions(&mut client).await;
    assert_eq!(versions.error_code, 0);
    login_ok(&mut client, token).await
}

/// Sends the SASL message, expects the RFC 7628 error challenge, acknowledges it, expects
/// SASL_AUTHENTICATION_FAILED, then the gateway closing the connection.
async fn assert_refused(client: &mut KafkaClient, message: &[u8]) {
    let challenge = within("the challenge", client.sasl_oauthbearer(message))
        .await
        .unwrap();
    assert_eq!(challenge.error_code, 0, "{challenge:?}");
    assert_eq!(
        String::from_utf8_lossy(&challenge.auth_bytes),
        CHALLENGE,
        "the challenge reveals nothing but invalid_token"
    );
    let json: serde_json::Value = serde_json::from_slice(&challenge.auth_bytes).unwrap();
    assert_eq!(json["status"], "invalid_token");
    assert_eq!(challenge.session_lifetime_ms, 0);
    let failed = within("the failure", client.sasl_authenticate(&[0x01]))
        .await
        .unwrap();
    assert_eq!(failed.error_code, SASL_AUTHENTICATION_FAILED, "{failed:?}");
    assert!(failed.auth_bytes.is_empty());
    assert!(
        failed
            .error_message
            .as_ref()
            .is_some_and(|m| m.contains("OAUTHBEARER")),
        "{failed:?}"
    );
    assert_eq!(closed(client).await, 0, "nothing after the failure");
}

/// A new connection on which `message` is refused.
async fn refused(gw: &Gateway, message: &[u8]) {
    let mut client = gw.connect().await;
    assert_refused(&mut client, message).await;
}

/// Waits for the gateway to close `client`; returns the bytes it sent first.
async fn closed(client: &mut KafkaClient) -> usize {
    match within(
        "the gateway to close the connection",
        client.read_to_close(),
    )
    .await
    {
        Ok(n) => n,
        Err(e) if e.is_closed() => 0,
        Err(e) => panic!("{e}"),
    }
}

/// Writes `bytes` (a write the gateway refuses by closing is fine) and waits for the close;
/// returns the bytes the gateway sent.
async fn raw_then_closed(client: &mut KafkaClient, bytes: &[u8]) -> usize {
    ignore_closed(client.write_raw(bytes).await);
    closed(client).await
}

/// Sends `req` (a write the gateway refuses by closing is fine) and waits for the close.
async fn request_then_closed<R: Request>(client: &mut KafkaClient, version: i16, req: R) -> usize {
    ignore_closed(client.send(version, &req).await.map(|_| ()));
    closed(client).await
}

fn ignore_closed(r: Result<(), KafkaClientError>) {
    if let Err(e) = r {
        assert!(e.is_closed(), "{e}");
    }
}

fn listed(versions: &ApiVersionsResponse, api: ApiKey) -> Option<(i16, i16)> {
    versions
        .api_keys
        .iter()
        .find(|k| k.api_key == api as i16)
        .map(|k| (k.min_version, k.max_version))
}

/// Deterministic pseudo-random bytes (xorshift64).
fn garbage(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[3]
        })
        .collect()
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = u32::try_from(payload.len()).unwrap().to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

// ---------------------------------------------------------------------------------------------
// 1. Successful logins.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_token_logs_in_with_the_tokens_remaining_lifetime() {
    let h = Harness::start("valid").await;
    let gw = h.gateway().await;
    assert!(gw.line.contains("(plaintext)"), "{}", gw.line);
    assert!(
        gw.line.contains(&format!("advertised as {},", gw.addr)),
        "{}",
        gw.line
    );

    let mut client = gw.connect().await;
    let versions = api_versions(&mut client).await;
    assert_eq!(versions.error_code, 0);
    assert_eq!(listed(&versions, ApiKey::ApiVersions), Some((0, 3)));
    assert_eq!(listed(&versions, ApiKey::SaslHandshake), Some((1, 1)));
    assert_eq!(listed(&versions, ApiKey::SaslAuthenticate), Some((0, 2)));
    for api in [ApiKey::Produce, ApiKey::Fetch, ApiKey::Metadata] {
        assert!(listed(&versions, api).is_some(), "{api:?} not offered");
    }
    assert!(
        listed(&versions, ApiKey::DescribeProducers).is_some(),
        "the template's pass_through API is offered"
    );
    assert_eq!(
        listed(&versions, ApiKey::DescribeAcls),
        None,
        "DescribeAcls (29) is neither checked nor passed through"
    );
    assert_eq!(listed(&versions, ApiKey::AlterPartitionReassignments), None);

    let token = h.writer_token();
    let resp = login_ok(&mut client, &token).await;
    assert!(
        (540_000..=600_000).contains(&resp.session_lifetime_ms),
        "a 10-minute token: session_lifetime_ms {}",
        resp.session_lifetime_ms
    );
    // The upstream is unreachable: the gateway then ends the session.
    assert_eq!(closed(&mut client).await, 0);

    // The readers' pool logs in too.
    let resp = good_login(&gw, &h.token(&["kafka-readers"])).await;
    assert!(resp.session_lifetime_ms > 540_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_versions_newer_than_v3_is_answered_at_v0_with_the_supported_range() {
    let h = Harness::start("kip511").await;
    let gw = h.gateway().await;
    let mut client = gw.connect().await;
    // KIP-511: a version the server does not know gets UNSUPPORTED_VERSION, at v0, with the
    // range, and the connection stays usable.
    let sent = client.send(4, &api_versions_request()).await.unwrap();
    let (got, resp) = within("ApiVersions v0", client.recv::<ApiVersionsRequest>(0))
        .await
        .unwrap();
    assert_eq!(got, sent);
    assert_eq!(resp.error_code, UNSUPPORTED_VERSION);
    assert_eq!(listed(&resp, ApiKey::ApiVersions), Some((0, 3)));
    let resp = api_versions(&mut client).await;
    assert_eq!(resp.error_code, 0);
    login_ok(&mut client, &h.writer_token()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_authenticate_v0_v1_and_pipelined_logins_succeed() {
    let h = Harness::start("versions").await;
    let gw = h.gateway().await;
    let message = client_first(&h.writer_token(), CLUSTER);
    for version in [0, 1] {
        let mut client = gw.connect().await;
        let hs = handshake("OAUTHBEARER");
        let hs: SaslHandshakeResponse = within("handshake", client.call(1, hs)).await.unwrap();
        assert_eq!(hs.error_code, 0);
        let mut auth = SaslAuthenticateRequest::default();
        auth.auth_bytes = message.clone().into();
        let resp = within("authenticate", client.call(version, auth))
            .await
            .unwrap();
        assert_eq!(resp.error_code, 0, "v{version}: {resp:?}");
        if version == 1 {
            assert!(resp.session_lifetime_ms > 540_000, "{resp:?}");
        }
    }

    // ApiVersions, SaslHandshake and SaslAuthenticate written at once, then the three answers.
    let mut client = gw.connect().await;
    let a = client.send(3, &api_versions_request()).await.unwrap();
    let hs = handshake("OAUTHBEARER");
    let b = client.send(1, &hs).await.unwrap();
    let mut auth = SaslAuthenticateRequest::default();
    auth.auth_bytes = message.into();
    let c = client.send(2, &auth).await.unwrap();
    let (got, v) = within("ApiVersions", client.recv::<ApiVersionsRequest>(3))
        .await
        .unwrap();
    assert_eq!((got, v.error_code), (a, 0));
    let (got, hs) = within("handshake", client.recv::<SaslHandshakeRequest>(1))
        .await
        .unwrap();
    assert_eq!((got, hs.error_code), (b, 0));
    let (got, auth) = within("authenticate", client.recv::<SaslAuthenticateRequest>(2))
        .await
        .unwrap();
    assert_eq!((got, auth.error_code), (c, 0), "{auth:?}");
}

// ---------------------------------------------------------------------------------------------
// 2-4. Refused logins.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_matching_no_pool_gets_the_challenge_then_58() {
    let h = Harness::start("nopool").await;
    let gw = h.gateway().await;
    let mut client = gw.connect().await;
    api_versions(&mut client).await;
    assert_refused(
        &mut client,
        &client_first(&h.token(&["marketing"]), CLUSTER),
    )
    .await;
    // Any bytes after the challenge fail the exchange the same way, not only %x01.
    let mut client = gw.connect().await;
    let challenge = client
        .sasl_oauthbearer(&client_first(&h.token(&[]), CLUSTER))
        .await
        .unwrap();
    assert_eq!(challenge.auth_bytes, CHALLENGE.as_bytes());
    let failed = client
        .sasl_authenticate(&client_first(&h.writer_token(), CLUSTER))
        .await
        .unwrap();
    assert_eq!(failed.error_code, SASL_AUTHENTICATION_FAILED);
    assert_eq!(closed(&mut client).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_ignoring_the_challenge_is_closed_without_an_answer() {
    let h = Harness::start("ignore").await;
    let gw = h.gateway().await;
    let mut client = gw.connect().await;
    let challenge = client
        .sasl_oauthbearer(&client_first(&h.token(&["marketing"]), CLUSTER))
        .await
        .unwrap();
    assert_eq!(challenge.auth_bytes, CHALLENGE.as_bytes());
    assert_eq!(
        request_then_closed(&mut client, 12, MetadataRequest::default()).await,
        0,
        "no Metadata response after a failed login"
    );
    // ApiVersions is no exception once challenged.
    let mut client = gw.connect().await;
    client
        .sasl_oauthbearer(&client_first(&h.token(&["marketing"]), CLUSTER))
        .await
        .unwrap();
    assert_eq!(
        request_then_closed(&mut client, 3, api_versions_request()).await,
        0
    );
    good_login(&gw, &h.writer_token()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_cluster_expired_and_forged_tokens_are_refused() {
    let h = Harness::start("refused").await;
    let gw = h.gateway().await;
    let token = h.writer_token();

    // Another logical cluster, and none at all while it is required.
    refused(&gw, &client_first(&token, "lkc-other")).await;
    let no_cluster = ClientFirstMessage::new(token.clone())
        .build()
        .unwrap()
        .to_bytes();
    refused(&gw, &no_cluster).await;

    // Expired an hour ago.
    let now = UnixTime::now();
    let expired = h
        .issuer
        .mint()
        .issued_at(now - Duration::from_secs(7200))
        .lifetime(Duration::from_secs(3600))
        .claim("groups", json!(["kafka-writers"]))
        .sign();
    refused(&gw, &client_first(&expired, CLUSTER)).await;

    // Signed by a key the issuer never published: under the published key's kid, and under
    // a kid of its own (which makes the gateway look at the JWKS again).
    let published = h.issuer.active_key(SigningAlg::RS256);
    let impostor = Arc::new(SigningKey::generate(SigningAlg::RS256, published.kid()));
    let forged = h
        .issuer
        .mint()
        .key(impostor)
        .claim("groups", json!(["kafka-writers"]))
        .sign();
    refused(&gw, &client_first(&forged, CLUSTER)).await;
    let unknown = Arc::new(SigningKey::generate(SigningAlg::ES256, "not-published"));
    let forged = h
        .issuer
        .mint()
        .key(unknown)
        .claim("groups", json!(["kafka-writers"]))
        .sign();
    refused(&gw, &client_first(&forged, CLUSTER)).await;

    // Not a token, and not a SASL message.
    refused(&gw, &client_first("not.a.token", CLUSTER)).await;
    refused(&gw, b"hello").await;

    // None of this blocks a good client.
    good_login(&gw, &token).await;

    // Each was refused for its own reason.
    let m = gw.metrics().await;
    for (reason, n) in [
        ("wrong_cluster", 2.0),
        ("expired", 1.0),
        ("bad_signature", 1.0),
        ("unknown_key", 1.0),
        ("malformed", 1.0),
        ("malformed_sasl", 1.0),
    ] {
        let series = format!("poolgate_logins_total{{outcome=\"failure\",reason=\"{reason}\"}}");
        assert_eq!(sample(&m, &series), Some(n), "{series} in:\n{m}");
    }
}

// ---------------------------------------------------------------------------------------------
// 5. The SASL sequence.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_mechanisms_and_requests_before_login_are_refused() {
    let h = Harness::start("sequence").await;
    let gw = h.gateway().await;

    let mut client = gw.connect().await;
    let hs = handshake("PLAIN");
    let resp: SaslHandshakeResponse = within("handshake", client.call(1, hs)).await.unwrap();
    assert_eq!(resp.error_code, UNSUPPORTED_SASL_MECHANISM);
    assert_eq!(resp.mechanisms, [StrBytes::from_static_str("OAUTHBEARER")]);
    assert_eq!(closed(&mut client).await, 0);

    // SaslHandshake v0 (raw SASL tokens follow) is not offered.
    let mut client = gw.connect().await;
    let hs = handshake("OAUTHBEARER");
    let resp: SaslHandshakeResponse = within("handshake", client.call(0, hs)).await.unwrap();
    assert_ne!(resp.error_code, 0);
    assert_eq!(closed(&mut client).await, 0);

    // Requests before login: closed, no response, nothing forwarded.
    let mut client = gw.connect().await;
    api_versions(&mut client).await;
    assert_eq!(
        request_then_closed(&mut client, 12, MetadataRequest::default()).await,
        0
    );
    let mut client = gw.connect().await;
    let mut auth = SaslAuthenticateRequest::default();
    auth.auth_bytes = client_first(&h.writer_token(), CLUSTER).into();
    assert_eq!(
        request_then_closed(&mut client, 2, auth).await,
        0,
        "SaslAuthenticate without SaslHandshake"
    );
    let mut client = gw.connect().await;
    let hs = handshake("OAUTHBEARER");
    let resp: SaslHandshakeResponse = client.call(1, hs.clone()).await.unwrap();
    assert_eq!(resp.error_code, 0);
    assert_eq!(
        request_then_closed(&mut client, 1, hs).await,
        0,
        "a second SaslHandshake"
    );

    good_login(&gw, &h.writer_token()).await;
}

// ---------------------------------------------------------------------------------------------
// 6-7. Abuse and load.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abuse_does_not_stop_good_logins() {
    let h = Harness::start("abuse").await;
    let gw = Arc::new(h.gateway().await);
    let token = h.writer_token();
    let mut tasks: JoinSet<()> = JoinSet::new();

    // Each abusive client is closed by the gateway, which never answers it.
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("64 random bytes", garbage(0x9e37_79b9_7f4a_7c15, 64)),
        ("a frame of random bytes", frame(&garbage(42, 60))),
        (
            "an HTTP request",
            b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
        ),
        ("length 0x7fffffff", {
            let mut b = vec![0x7f, 0xff, 0xff, 0xff];
            b.extend_from_slice(&[0; 64]);
            b
        }),
        ("length 100000 (pre-login cap 32 KiB)", {
            let mut b = 100_000u32.to_be_bytes().to_vec();
            b.extend_from_slice(&[0; 4096]);
            b
        }),
        ("length -1", vec![0xff, 0xff, 0xff, 0xff]),
        ("an empty frame", vec![0, 0, 0, 0]),
        (
            "SaslHandshake with a body that does not decode",
            frame(&[0, 17, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0x7f, 0xff, b'x', b'y']),
        ),
        (
            "an unknown API key",
            frame(&[0x7f, 0x7f, 0, 1, 0, 0, 0, 1, 0xff, 0xff]),
        ),
        (
            "a negative version",
            frame(&[0, 18, 0xff, 0xff, 0, 0, 0, 1, 0xff, 0xff]),
        ),
    ];
    for (what, bytes) in cases {
        let gw = Arc::clone(&gw);
        tasks.spawn(async move {
            let mut client = gw.connect().await;
            assert_eq!(raw_then_closed(&mut client, &bytes).await, 0, "{what}");
        });
    }

    // A SaslAuthenticate whose bytes field claims ~4 GiB, after a good handshake.
    let g = Arc::clone(&gw);
    tasks.spawn(async move {
        let mut client = g.connect().await;
        let hs = handshake("OAUTHBEARER");
        let resp: SaslHandshakeResponse = client.call(1, hs).await.unwrap();
        assert_eq!(resp.error_code, 0);
        let bad = frame(&[
            0, 36, 0, 2, 0, 0, 0, 2, 0xff, 0xff, 0, 0xff, 0xff, 0xff, 0xff, 0x0f,
        ]);
        assert_eq!(raw_then_closed(&mut client, &bad).await, 0);
    });

    // A truncated frame, then the client goes away.
    let g = Arc::clone(&gw);
    tasks.spawn(async move {
        let mut client = g.connect().await;
        let mut bytes = 100u32.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0, 18, 0, 3, 0, 0]);
        client.write_raw(&bytes).await.unwrap();
    });

    // A truncated frame held open, and a client that sends nothing: closed at login_timeout.
    for partial in [&[0u8, 0, 0, 100, 0, 18, 0, 3][..], &[][..]] {
        let g = Arc::clone(&gw);
        tasks.spawn(async move {
            // Read before the connection exists, so before the gateway's login deadline
            // starts: a close seen earlier than LOGIN_TIMEOUT from here came before the
            // deadline, however slow the machine (a lower bound only grows with delays).
            let start = Instant::now();
            let mut client = g.connect().await;
            client.write_raw(partial).await.unwrap();
            assert_eq!(closed(&mut client).await, 0);
            let waited = start.elapsed();
            assert!(
                waited >= LOGIN_TIMEOUT,
                "closed after {waited:?}, before the login timeout"
            );
        });
    }

    // 200 connections opened and dropped.
    let g = Arc::clone(&gw);
    tasks.spawn(async move {
        for _ in 0..200 {
            drop(g.connect().await);
        }
    });

    // Meanwhile, and afterwards, good clients log in.
    let g = Arc::clone(&gw);
    let t = token.clone();
    tasks.spawn(async move {
        for _ in 0..5 {
            good_login(&g, &t).await;
        }
    });
    while let Some(r) = tasks.join_next().await {
        if let Err(e) = r {
            std::panic::resume_unwind(e.into_panic());
        }
    }
    good_login(&gw, &token).await;

    // Five oversized length prefixes, six frames that do not parse, two timeouts.
    let expected = [
        ("oversized_frame", 5.0),
        ("malformed", 6.0),
        ("login_timeout", 2.0),
    ];
    let m = gw
        .metrics_when("the dropped-connection counters", |m| {
            expected.iter().all(|&(r, n)| dropped(m, r) >= n)
        })
        .await;
    for (reason, n) in expected {
        assert_eq!(dropped(&m, reason), n, "{reason} in:\n{m}");
    }
    assert_eq!(
        sample(
            &m,
            r#"poolgate_logins_total{outcome="success",reason="ok"}"#
        ),
        Some(6.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_logins_all_succeed() {
    const N: usize = 1000;
    let h = Harness::start("thousand").await;
    let gw = Arc::new(h.gateway().await);
    // Distinct tokens, signed with each of the issuer's algorithms.
    let tokens: Vec<String> = (0..N)
        .map(|i| {
            h.issuer
                .mint()
                .alg(SigningAlg::ALL[i % SigningAlg::ALL.len()])
                .lifetime(Duration::from_secs(600))
                .claim("sub", json!(format!("svc-{i}")))
                .claim("groups", json!(["kafka-writers"]))
                .sign()
        })
        .collect();
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    for token in tokens {
        let gw = Arc::clone(&gw);
        tasks.spawn(async move {
            let mut client = KafkaClient::connect(&gw.addr)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            let v = client
                .call(3, api_versions_request())
                .await
                .map_err(|e| format!("ApiVersions: {e}"))?;
            if v.error_code != 0 {
                return Err(format!("ApiVersions error {}", v.error_code));
            }
            let resp = client
                .sasl_oauthbearer(&client_first(&token, CLUSTER))
                .await
                .map_err(|e| format!("login: {e}"))?;
            if resp.error_code != 0 || !resp.auth_bytes.is_empty() {
                return Err(format!("login refused: {resp:?}"));
            }
            Ok(())
        });
    }
    let mut failures = Vec::new();
    within("1000 logins", async {
        while let Some(r) = tasks.join_next().await {
            if let Err(e) = r.unwrap() {
                failures.push(e);
            }
        }
    })
    .await;
    eprintln!("{N} concurrent logins took {:?}", start.elapsed());
    assert!(
        failures.is_empty(),
        "{} of {N} failed, first: {:?}\ngateway log:\n{}",
        failures.len(),
        &failures[..failures.len().min(5)],
        gw.process.stderr()
    );
    let m = gw.metrics().await;
    assert_eq!(
        sample(
            &m,
            r#"poolgate_logins_total{outcome="success",reason="ok"}"#
        ),
        Some(1000.0)
    );
}

// ---------------------------------------------------------------------------------------------
// 8. Per-peer limit.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixth_connection_from_a_peer_is_closed_at_once() {
    let h = Harness::start("perpeer").await;
    // A long login timeout, so that a close is the limit's doing.
    let config = h.config("per-peer.toml", |t| {
        edit(
            &t,
            "login_timeout = \"3s\"",
            "login_timeout = \"60s\"\nmax_connections_per_peer = 5",
        )
    });
    let gw = h
        .gateway_with(&config, &["--metrics-listen", "127.0.0.1:0"])
        .await;
    let mut five = Vec::new();
    for _ in 0..5 {
        let mut c = gw.connect().await;
        // Answered: admitted.
        assert_eq!(api_versions(&mut c).await.error_code, 0);
        five.push(c);
    }
    let mut sixth = gw.connect().await;
    assert_eq!(
        request_then_closed(&mut sixth, 3, api_versions_request()).await,
        0,
        "the sixth connection gets no answer"
    );
    for c in &mut five {
        assert_eq!(
            api_versions(c).await.error_code,
            0,
            "the first five stay usable"
        );
    }
    let m = gw
        .metrics_when("the per-peer drop", |m| {
            dropped(m, "max_connections_per_peer") >= 1.0
        })
        .await;
    assert_eq!(dropped(&m, "max_connections_per_peer"), 1.0);

    // A freed slot admits a new connection (once the gateway has seen the close).
    drop(five.pop());
    within("a slot to be freed", async {
        loop {
            let mut c = gw.connect().await;
            if let Ok(v) = c.call(3, api_versions_request()).await {
                assert_eq!(v.error_code, 0);
                five.push(c);
                break;
            }
        }
    })
    .await;
    login_ok(&mut five[0], &h.writer_token()).await;
}

// ---------------------------------------------------------------------------------------------
// 9. TLS.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_listener_logs_in_and_refuses_plaintext() {
    let h = Harness::start("tls").await;
    let (cert, key, root) = h.tls_files(&["localhost"]);
    let config = h.config("gateway.toml", |t| t);
    let gw = h
        .gateway_with(
            &config,
            &[
                "--tls-cert",
                cert.to_str().unwrap(),
                "--tls-key",
                key.to_str().unwrap(),
                "--metrics-listen",
                "127.0.0.1:0",
            ],
        )
        .await;
    assert!(gw.line.contains("(tls)"), "{}", gw.line);

    let mut client = within(
        "a TLS connection",
        KafkaClient::connect_tls(&gw.addr, "localhost", &root),
    )
    .await
    .unwrap();
    assert_eq!(api_versions(&mut client).await.error_code, 0);
    let resp = login_ok(&mut client, &h.writer_token()).await;
    assert!(resp.session_lifetime_ms > 540_000);

    // Plaintext Kafka on the TLS port: at most a TLS alert, never a Kafka response.
    let mut raw = Vec::new();
    within("the TLS port to close", async {
        let mut tcp = TcpStream::connect(&gw.addr).await.unwrap();
        let mut bytes = frame(&[0, 18, 0, 3, 0, 0, 0, 1, 0, 0, 0]);
        bytes.extend_from_slice(&[0; 16]);
        tcp.write_all(&bytes).await.unwrap();
        match tcp.read_to_end(&mut raw).await {
            Ok(_) => {}
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset),
        }
    })
    .await;
    assert!(
        raw.is_empty() || (raw[0] == 0x15 && raw.len() <= 7),
        "expected nothing or a TLS alert, got {raw:02x?}"
    );
    gw.metrics_when("the failed TLS handshake to be counted", |m| {
        dropped(m, "tls") == 1.0
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// 10. Start-up errors.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configuration_and_arguments_exit_with_code_2() {
    let h = Harness::start("config").await;
    let upstream = h.closed.clone();
    let exit = async |config: &Path, extra: &[&str]| {
        let mut args = vec![
            "gateway",
            "--config",
            config.to_str().unwrap(),
            "--upstream",
            upstream.as_str(),
        ];
        if !extra.contains(&"--listen") {
            args.extend(["--listen", "127.0.0.1:0"]);
        }
        args.extend_from_slice(extra);
        h.run_to_exit(&args).await
    };

    // No certificate and no allow_plaintext: the message names the file.
    let config = h.config("no-plaintext.toml", |t| {
        edit(&t, "allow_plaintext = true", "allow_plaintext = false")
    });
    let (code, err) = exit(&config, &[]).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("no-plaintext.toml"), "{err}");
    assert!(err.contains("allow_plaintext"), "{err}");

    // An unknown API in pass_through: FILE:LINE and the field.
    let config = h.config("bad-api.toml", |t| {
        edit(
            &t,
            "pass_through = [\"DescribeProducers\"]",
            "pass_through = [\n  \"DescribeProducers\",\n  \"NoSuchApi\",\n]",
        )
    });
    let text = std::fs::read_to_string(&config).unwrap();
    let line = 1 + text
        .lines()
        .position(|l| l.contains("\"NoSuchApi\""))
        .unwrap();
    let (code, err) = exit(&config, &[]).await;
    assert_eq!(code, Some(2), "{err}");
    let at = format!("{}:{line}:", config.display());
    assert!(err.contains(&at), "expected {at} in: {err}");
    assert!(
        err.contains("pass_through") && err.contains("NoSuchApi"),
        "{err}"
    );

    // A failure delay that would outlast the login timeout.
    let config = h.config("slow-failures.toml", |t| {
        edit(
            &t,
            "max_failure_delay = \"500ms\"",
            "max_failure_delay = \"3s\"",
        )
    });
    let (code, err) = exit(&config, &[]).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("slow-failures.toml:")
            && err.contains("max_failure_delay")
            && err.contains("login_timeout"),
        "{err}"
    );

    // A checked API cannot be passed through unchecked.
    let config = h.config("checked-api.toml", |t| {
        edit(
            &t,
            "pass_through = [\"DescribeProducers\"]",
            "pass_through = [\"Produce\"]",
        )
    });
    let (code, err) = exit(&config, &[]).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("checked-api.toml:") && err.contains("`Produce` is checked by the gateway"),
        "{err}"
    );

    // A session cap of zero.
    let config = h.config("zero-cap.toml", |t| {
        edit(
            &t,
            "login_timeout = \"3s\"",
            "login_timeout = \"3s\"\nmax_session_lifetime = \"0s\"",
        )
    });
    let (code, err) = exit(&config, &[]).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("zero-cap.toml:") && err.contains("max_session_lifetime"),
        "{err}"
    );

    // The APIs the gateway answers itself cannot be passed through.
    let config = h.config("self-api.toml", |t| {
        edit(
            &t,
            "pass_through = [\"DescribeProducers\"]",
            "pass_through = [\"SaslAuthenticate\"]",
        )
    });
    let (code, err) = exit(&config, &[]).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("self-api.toml:") && err.contains("SaslAuthenticate"),
        "{err}"
    );

    // A [gateway] value out of range.
    let config = h.config("small-frame.toml", |t| {
        edit(&t, "[gateway]\n", "[gateway]\nmax_frame_bytes = 1000\n")
    });
    let (code, err) = exit(&config, &[]).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("max_frame_bytes"), "{err}");

    // A wildcard listen address needs --advertise; a bad --advertise is refused.
    let config = h.config("gateway.toml", |t| t);
    let (code, err) = exit(&config, &["--listen", "0.0.0.0:0"]).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--advertise"), "{err}");
    let (code, err) = exit(&config, &["--advertise", "gw.example.com:99999"]).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--advertise"), "{err}");

    // Missing certificate files.
    let missing = h.dir.join("missing.pem");
    let missing = missing.to_str().unwrap();
    let (code, err) = exit(&config, &["--tls-cert", missing, "--tls-key", missing]).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--tls-cert") && err.contains("missing.pem"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// 11. Metrics.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_logins_and_key_fetches() {
    let h = Harness::start("metrics").await;
    let gw = h.gateway().await;
    assert!(gw.metrics.is_some(), "{}", gw.line);
    good_login(&gw, &h.writer_token()).await;
    refused(&gw, &client_first(&h.token(&["marketing"]), CLUSTER)).await;

    let m = gw.metrics().await;
    assert_eq!(
        sample(
            &m,
            r#"poolgate_logins_total{outcome="success",reason="ok"}"#
        ),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        sample(
            &m,
            r#"poolgate_logins_total{outcome="failure",reason="no_pool_matched"}"#
        ),
        Some(1.0),
        "{m}"
    );
    let fetches = sample(
        &m,
        r#"poolgate_jwks_fetches_total{provider="local-idp",result="ok"}"#,
    )
    .unwrap_or_else(|| panic!("no JWKS fetch counter:\n{m}"));
    assert!(fetches >= 1.0, "{m}");
    assert!(m.contains("# TYPE poolgate_active_sessions gauge"), "{m}");
    assert!(m.contains("# TYPE poolgate_logins_total counter"), "{m}");
}

// ---------------------------------------------------------------------------------------------
// Known bugs.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignored_challenge_is_counted_once_as_dropped() {
    let h = Harness::start("double-count").await;
    let config = h.config("gateway.toml", |t| t);
    let gw = h
        .gateway_to_env(
            &config,
            &h.closed,
            &["--metrics-listen", "127.0.0.1:0"],
            &[LOG_CLOSES],
        )
        .await;
    let mut client = gw.connect().await;
    client
        .sasl_oauthbearer(&client_first(&h.token(&["marketing"]), CLUSTER))
        .await
        .unwrap();
    assert_eq!(
        request_then_closed(&mut client, 12, MetadataRequest::default()).await,
        0
    );
    // The connection's task logs its close after every counter it moves: from that line on,
    // a second count (of any reason) would be there to see.
    let line = gw
        .process
        .log_line("the connection's close", |l| {
            l.contains("connection closed")
        })
        .await;
    assert!(line.contains("after the error challenge"), "{line}");
    let m = gw.metrics().await;
    let total: f64 = m
        .lines()
        .filter(|l| l.starts_with("poolgate_connections_dropped_total{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum();
    assert_eq!(total, 1.0, "one connection was dropped, counted as:\n{m}");
    assert_eq!(dropped(&m, "ignored_challenge"), 1.0, "{m}");
    assert_eq!(sample(&m, "poolgate_open_connections"), Some(0.0), "{m}");
    assert_eq!(
        sample(
            &m,
            r#"poolgate_logins_total{outcome="failure",reason="no_pool_matched"}"#
        ),
        Some(1.0),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_without_acknowledgement_are_throttled_too() {
    let h = Harness::start("throttle").await;
    let config = h.config("slow-failures.toml", |t| {
        let t = edit(&t, "login_timeout = \"3s\"", "login_timeout = \"60s\"");
        let t = edit(
            &t,
            "max_failure_delay = \"500ms\"",
            "max_failure_delay = \"800ms\"",
        );
        edit(
            &t,
            "\nfailure_delay = \"20ms\"",
            "\nfailure_delay = \"100ms\"",
        )
    });
    let gw = h.gateway_with(&config, &[]).await;
    let bad = client_first(&h.token(&["marketing"]), CLUSTER);
    // Three failed logins: the client learns each from the challenge, and leaves.
    for _ in 0..3 {
        let mut client = gw.connect().await;
        let challenge = client.sasl_oauthbearer(&bad).await.unwrap();
        assert_eq!(challenge.auth_bytes, CHALLENGE.as_bytes());
    }
    // The fourth failure from the peer waits 100 ms doubled three times (800 ms) before its
    // challenge: the unacknowledged failures counted. The clock is read before the request is
    // sent, so before the gateway's wait starts: the bound is exact and only slack grows with
    // a slow machine (without the three failures counted, the wait is 100 ms).
    let mut client = gw.connect().await;
    let start = Instant::now();
    let challenge = within("the challenge", client.sasl_oauthbearer(&bad))
        .await
        .unwrap();
    let waited = start.elapsed();
    assert_eq!(challenge.auth_bytes, CHALLENGE.as_bytes());
    assert!(
        waited >= Duration::from_millis(800),
        "the 4th failure waited {waited:?}: the three unacknowledged failures were not counted"
    );
    let failed = within("the failure", client.sasl_authenticate(&[0x01]))
        .await
        .unwrap();
    assert_eq!(failed.error_code, SASL_AUTHENTICATION_FAILED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successful_login_never_reports_a_zero_session_lifetime() {
    let h = Harness::start("zero-lifetime").await;
    let gw = h.gateway().await;
    // Expired 10 s ago; the provider's default clock skew is 30 s.
    let token = h
        .issuer
        .mint()
        .issued_at(UnixTime::now() - Duration::from_secs(600))
        .lifetime(Duration::from_secs(590))
        .claim("groups", json!(["kafka-writers"]))
        .sign();
    let mut client = gw.connect().await;
    let resp = within(
        "the login",
        client.sasl_oauthbearer(&client_first(&token, CLUSTER)),
    )
    .await
    .unwrap();
    // Accepted within the skew, with the one-second floor: KIP-368 reads 0 as "no
    // re-authentication needed".
    assert_eq!(resp.error_code, 0, "{resp:?}");
    assert!(
        resp.auth_bytes.is_empty(),
        "refused: {}",
        String::from_utf8_lossy(&resp.auth_bytes)
    );
    assert_eq!(resp.session_lifetime_ms, 1_000, "{resp:?}");
}
