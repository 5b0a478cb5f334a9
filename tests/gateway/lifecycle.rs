//! The gateway's life cycle with the real binary: draining on SIGTERM/SIGINT (answer what is in
//! flight, close cleanly, exit 0; a second signal exits at once with 1), `/livez` and
//! `/readyz`, configuration reloads on SIGHUP (valid, invalid, needing a restart), and
//! `max_connection_age`.

use std::time::{Duration, Instant};

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use poolgate::testkit::kafka::{KafkaClient, KafkaClientError, record_batch};
use poolgate::testkit::{Endpoint, Fault};
use tokio::net::TcpStream;

use super::cluster::node_addr;
use super::upstream::{Behaviour, FakeBroker, produce};
use super::{
    CLUSTER, Gateway, Harness, LOG_CLOSES, Process, client_first, dropped, edit, login_ok, refused,
    sample, within,
};

/// The gateway's debug log, with the audit events.
const LOG_DEBUG: (&str, &str) = (
    "RUST_LOG",
    "warn,poolgate::audit=info,poolgate::gateway=debug",
);

/// A gateway with `config` in front of `broker`, with metrics and the log filter `log`.
async fn logging_gateway(
    h: &Harness,
    config: &std::path::Path,
    broker: &FakeBroker,
    log: (&str, &str),
) -> Gateway {
    h.gateway_to_env(
        config,
        &broker.addr,
        &["--metrics-listen", "127.0.0.1:0"],
        &[log],
    )
    .await
}

/// The topic the writers' pool may produce to and fetch from.
const TOPIC: &str = "e2e-orders";
/// Kafka's TOPIC_AUTHORIZATION_FAILED.
const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
/// The writers' grant on their topics, as the template writes it.
const WRITERS_TOPIC_GRANT: &str =
    "[[pools.grants]]\nallow = [\"All\"]\nresource = \"Topic:e2e-*\"\n\n";
/// A pool for the `marketing` group, which no pool of the template accepts.
const MARKETING_POOL: &str = r#"
[[pools]]
id = "pool-marketing"
provider = "local-idp"
filter = 'has(claims.groups) && "marketing" in claims.groups'

[[pools.grants]]
allow = ["Read", "Describe"]
resource = "Topic:marketing-*"
"#;

// ---------------------------------------------------------------------------------------------
// Helpers.
// ---------------------------------------------------------------------------------------------

/// Sends `signal` to the gateway process.
fn signal(process: &Process, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(process.child.id()).unwrap();
    // SAFETY: kill(2) takes no pointers; the pid is our own child's, not yet waited for, so it
    // cannot have been reused by another process.
    let rc = unsafe { libc::kill(pid, signal) };
    assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
}

/// Waits (at most [`super::WAIT`]) for the process to exit, and returns its exit code.
async fn exit_code(process: &mut Process) -> Option<i32> {
    // Standard error closes when the process exits.
    process.stderr_at_exit().await;
    process.child.wait().unwrap().code()
}

/// `GET path` on the metrics listener, over HTTP/1.0: the status code and the body.
async fn get(gw: &Gateway, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = gw.metrics.as_deref().expect("started with metrics");
    within(path, async {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, body.to_owned())
    })
    .await
}

/// Asks `path` until `ready` holds for its answer, and returns that answer. The answers change
/// when the gateway's state does (a key set loads, the cluster answers, a signal arrives), with
/// no log line to wait on for each: the endpoint is asked every 20 ms until then (the pace only
/// spares the machine; no assertion depends on it), within [`super::WAIT`].
async fn get_when(
    gw: &Gateway,
    path: &str,
    what: &str,
    ready: impl Fn(u16, &str) -> bool,
) -> (u16, String) {
    let mut pace = tokio::time::interval(Duration::from_millis(20));
    within(what, async {
        loop {
            pace.tick().await;
            let (status, body) = get(gw, path).await;
            if ready(status, &body) {
                return (status, body);
            }
        }
    })
    .await
}

/// A Fetch of partition 0 of the writers' topic.
fn fetch_request() -> FetchRequest {
    let mut r = FetchRequest::default();
    r.replica_id = BrokerId(-1);
    r.max_bytes = 1 << 20;
    r.session_epoch = -1;
    let mut p = FetchPartition::default();
    p.partition_max_bytes = 1 << 20;
    let mut t = FetchTopic::default();
    t.topic = TopicName(StrBytes::from_static_str(TOPIC));
    t.partitions = vec![p];
    r.topics = vec![t];
    r
}

/// Produces one record to the writers' topic; returns the partition's error code.
async fn produce_error(client: &mut KafkaClient) -> i16 {
    let req: ProduceRequest = produce(TOPIC, 1, record_batch(&[(None, b"v")]));
    let resp = within("the produce response", client.call(7, req))
        .await
        .unwrap();
    let [topic] = resp.responses.as_slice() else {
        panic!("one topic in {resp:?}");
    };
    assert_eq!(topic.name.0.as_str(), TOPIC, "{resp:?}");
    topic.partition_responses[0].error_code
}

/// The next frame must be the end of the stream: an orderly close (FIN), not a reset.
async fn clean_close(client: &mut KafkaClient) {
    match within("the close", client.recv_frame()).await {
        Err(KafkaClientError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
        Err(e) => panic!("expected an orderly close, got {e}"),
        Ok(frame) => panic!("expected the close, got a frame of {} bytes", frame.len()),
    }
}

/// Connects to `addr` until the connection is refused (the listener is closed); connections
/// that still get through are dropped at once.
async fn refused_connection(addr: &str) {
    within("the listener to close", async {
        loop {
            match TcpStream::connect(addr).await {
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return,
                Err(e) => panic!("connecting to {addr}: {e}"),
                Ok(s) => drop(s),
            }
        }
    })
    .await;
}

/// Waits for the `n`-th stderr line (from 1) for which `pred` holds, and returns it.
async fn nth_line(process: &Process, what: &str, n: usize, pred: impl Fn(&str) -> bool) -> String {
    let mut logged = process.logged.clone();
    within(what, async {
        loop {
            // Marked seen before looking: a line pushed after the look changes the count.
            logged.borrow_and_update();
            let found = process
                .log
                .lock()
                .unwrap()
                .iter()
                .filter(|l| pred(l))
                .nth(n - 1)
                .cloned();
            if let Some(line) = found {
                return line;
            }
            if logged.changed().await.is_err() {
                panic!("stderr closed without {what}:\n{}", process.stderr());
            }
        }
    })
    .await
}

/// Rewrites the configuration file at `path`, sends SIGHUP and waits for the reload's audit
/// event (the `n`-th); returns its log line.
async fn reload(gw: &Gateway, path: &std::path::Path, text: &str, n: usize) -> String {
    std::fs::write(path, text).unwrap();
    signal(&gw.process, libc::SIGHUP);
    nth_line(&gw.process, "the config_reload event", n, |l| {
        l.contains("event=\"config_reload\"")
    })
    .await
}

fn reloads(m: &str, outcome: &str) -> f64 {
    sample(
        m,
        &format!("poolgate_config_reloads_total{{outcome=\"{outcome}\"}}"),
    )
    .unwrap_or(0.0)
}

fn jwks_fetches(m: &str) -> f64 {
    sample(
        m,
        r#"poolgate_jwks_fetches_total{provider="local-idp",result="ok"}"#,
    )
    .unwrap_or_else(|| panic!("no JWKS fetch counter:\n{m}"))
}

/// A logged-in session on `gw` (whose upstream is the fake broker).
async fn session(gw: &Gateway, token: &str) -> KafkaClient {
    let mut client = gw.connect().await;
    login_ok(&mut client, token).await;
    client
}

// ---------------------------------------------------------------------------------------------
// Drain.
// ---------------------------------------------------------------------------------------------

/// SIGTERM with `n` fetches in flight: the gateway reports `draining` on `/readyz`, closes its
/// listeners, answers every request it had forwarded, then closes the connection cleanly, and
/// exits 0 once every connection is closed. Returns the drain time the gateway logged.
async fn drain_with_in_flight(n: usize) -> u64 {
    let h = Harness::start(&format!("drain-{n}")).await;
    let broker = FakeBroker::start().await;
    broker.behave(Behaviour::holding_fetches());
    let config = h.config("gateway.toml", |t| t);
    let mut gw = logging_gateway(&h, &config, &broker, LOG_DEBUG).await;
    get_when(&gw, "/readyz", "the gateway to be ready", |s, _| s == 200).await;
    let node = node_addr(&gw, 1);
    let mut client = session(&gw, &h.writer_token()).await;
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(client.send(11, &fetch_request()).await.unwrap());
    }
    // Every fetch is forwarded (the fake broker holds the first, the rest wait behind it).
    let forwarded = n as f64;
    gw.metrics_when("the fetches to be forwarded", |m| {
        sample(m, "poolgate_requests_forwarded_total") == Some(forwarded)
    })
    .await;

    signal(&gw.process, libc::SIGTERM);
    gw.process
        .log_line("the draining line", |l| l.contains("draining:"))
        .await;
    let (_, body) = get_when(&gw, "/readyz", "/readyz to report draining", |s, b| {
        s == 503 && b.contains("draining")
    })
    .await;
    assert_eq!(body, "draining\n", "only draining is wrong");
    assert_eq!(get(&gw, "/livez").await.0, 200);
    refused_connection(&gw.addr).await;
    refused_connection(&node).await;

    // Released one at a time: each answer arrives, in order, with its own correlation id.
    for (i, &id) in ids.iter().enumerate() {
        broker.release.notify_one();
        let answer = tokio::time::timeout(super::WAIT, client.recv::<FetchRequest>(11)).await;
        let Ok(answer) = answer else {
            panic!("no answer to fetch {i} of {n}:\n{}", gw.process.stderr());
        };
        let (got, resp) = answer.unwrap_or_else(|e| panic!("fetch {i} of {n}: {e}"));
        assert_eq!(got, id, "fetch {i} of {n}");
        assert_eq!(resp.error_code, 0, "{resp:?}");
        let hw = resp.responses[0].partitions[0].high_watermark;
        assert_eq!(hw, i as i64, "the broker's answer to fetch {i}");
    }
    clean_close(&mut client).await;
    assert_eq!(
        exit_code(&mut gw.process).await,
        Some(0),
        "{}",
        gw.process.stderr()
    );
    let drained = gw
        .process
        .log_line("the drained line", |l| {
            l.contains("drained: every connection closed")
        })
        .await;
    let took = drained
        .split_once("took_ms=")
        .and_then(|(_, r)| r.split(' ').next()?.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no took_ms in {drained}"));
    let log = gw.process.stderr();
    assert!(
        log.contains("reason=the gateway is shutting down"),
        "the session ended for the drain:\n{log}"
    );
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_answers_what_is_in_flight_then_exits_0() {
    for n in [1, 16] {
        let took = drain_with_in_flight(n).await;
        eprintln!("drain with {n} fetches in flight took {took} ms");
    }
}

/// A second SIGTERM or SIGINT while a request is still held: the gateway exits at once, with 1,
/// long before its drain timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once_with_1() {
    for (first, second) in [(libc::SIGTERM, libc::SIGINT), (libc::SIGINT, libc::SIGTERM)] {
        let h = Harness::start(&format!("second-signal-{first}")).await;
        let broker = FakeBroker::start().await;
        broker.behave(Behaviour::holding_fetches());
        let config = h.config("gateway.toml", |t| {
            edit(&t, "[gateway]\n", "[gateway]\ndrain_timeout = \"600s\"\n")
        });
        let mut gw = logging_gateway(&h, &config, &broker, LOG_CLOSES).await;
        let mut client = session(&gw, &h.writer_token()).await;
        client.send(11, &fetch_request()).await.unwrap();
        gw.metrics_when("the fetch to be forwarded", |m| {
            sample(m, "poolgate_requests_forwarded_total") == Some(1.0)
        })
        .await;
        signal(&gw.process, first);
        gw.process
            .log_line("the draining line", |l| l.contains("draining:"))
            .await;
        signal(&gw.process, second);
        // Within WAIT, far below the 600 s drain timeout: the held fetch was not waited for.
        assert_eq!(
            exit_code(&mut gw.process).await,
            Some(1),
            "{}",
            gw.process.stderr()
        );
        let log = gw.process.stderr();
        assert!(
            log.contains("second signal: exiting without waiting"),
            "{log}"
        );
        assert!(!log.contains("drained:"), "{log}");
        // The fetch was never answered.
        assert!(
            within("the close", client.recv_frame()).await.is_err(),
            "an answer to the held fetch"
        );
    }
}

/// A signal that arrives while the gateway starts (here: while it fetches the keys) is acted on
/// once it serves, not by the signal's default action (SIGHUP's ends a process): SIGHUP
/// reloads, SIGTERM drains and exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_during_start_are_handled() {
    for sig in [libc::SIGHUP, libc::SIGTERM] {
        let h = Harness::start(&format!("start-signal-{sig}")).await;
        h.issuer.set_fault_on(Endpoint::Jwks, Fault::Hang);
        let config = h.config("gateway.toml", |t| t);
        let config = config.to_str().unwrap();
        let mut process = Process::spawn_env(
            &[
                "gateway",
                "--config",
                config,
                "--listen",
                "127.0.0.1:0",
                "--upstream",
                &h.closed,
            ],
            &[LOG_CLOSES],
        );
        // The gateway waits for the keys: it is starting.
        within("the JWKS request", h.issuer.wait_held(1)).await;
        signal(&process, sig);
        h.issuer.set_fault_on(Endpoint::Jwks, Fault::None);
        let line = within("the start-up line", process.lines.recv()).await;
        if sig == libc::SIGHUP {
            let line = line.unwrap_or_else(|| panic!("exited:\n{}", process.stderr()));
            assert!(line.starts_with("poolgate gateway listening on "), "{line}");
            let reload = process
                .log_line("the reload", |l| l.contains("event=\"config_reload\""))
                .await;
            assert!(reload.contains("outcome=\"ok\""), "{reload}");
        } else {
            process
                .log_line("the drain", |l| {
                    l.contains("draining: ") && l.contains("SIGTERM")
                })
                .await;
            assert_eq!(
                exit_code(&mut process).await,
                Some(0),
                "{}",
                process.stderr()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Health.
// ---------------------------------------------------------------------------------------------

/// `/livez` answers 200 throughout; `/readyz` answers 503 naming each reason while the
/// provider has no keys and the upstream has not answered, and 200 once both are there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_waits_for_the_keys_and_the_upstream() {
    let h = Harness::start("readiness").await;
    // The JWKS fails at start: the provider starts without keys.
    h.issuer.set_fault_on(Endpoint::Jwks, Fault::Status(503));
    // The upstream's address is taken but nothing listens yet.
    let upstream = tokio::net::TcpSocket::new_v4().unwrap();
    upstream.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let upstream_addr = upstream.local_addr().unwrap().to_string();
    let config = h.config("gateway.toml", |t| t);
    let gw = h
        .gateway_to(
            &config,
            &upstream_addr,
            &["--metrics-listen", "127.0.0.1:0"],
        )
        .await;

    assert_eq!(get(&gw, "/livez").await, (200, "ok\n".to_owned()));
    let (status, body) = get(&gw, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    let mut reasons: Vec<&str> = body.lines().collect();
    reasons.sort_unstable();
    assert_eq!(
        reasons,
        [
            "provider `local-idp` has no usable keys yet",
            "the upstream cluster has not answered yet",
        ],
        "{body}"
    );
    // Its tokens are refused meanwhile.
    refused(&gw, &client_first(&h.writer_token(), CLUSTER)).await;

    // The keys load (the store retries in the background): only the upstream is missing.
    h.issuer.set_fault_on(Endpoint::Jwks, Fault::None);
    let (_, body) = get_when(&gw, "/readyz", "the keys to load", |_, b| {
        !b.contains("local-idp")
    })
    .await;
    assert_eq!(body, "the upstream cluster has not answered yet\n");
    assert_eq!(get(&gw, "/livez").await.0, 200);

    // The upstream starts listening on its address: ready.
    let broker = FakeBroker::start_on(upstream.listen(128).unwrap());
    broker.behave(Behaviour::default());
    let (_, body) = get_when(&gw, "/readyz", "the gateway to be ready", |s, _| s == 200).await;
    assert_eq!(body, "ok\n");
    let mut client = session(&gw, &h.writer_token()).await;
    assert_eq!(produce_error(&mut client).await, 0);
}

// ---------------------------------------------------------------------------------------------
// Reload.
// ---------------------------------------------------------------------------------------------

/// A reload that adds a pool: a token no pool accepted logs in afterwards, and the provider,
/// configured as before, keeps its key set (no JWKS fetch). A reload that changes the provider
/// starts it afresh (a fetch): the count above could have moved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_adds_a_pool_without_refetching_keys() {
    let h = Harness::start("reload-pool").await;
    let config = h.config("gateway.toml", |t| t);
    let template = std::fs::read_to_string(&config).unwrap();
    let gw = h
        .gateway_with(&config, &["--metrics-listen", "127.0.0.1:0"])
        .await;
    let marketing = h.token(&["marketing"]);
    refused(&gw, &client_first(&marketing, CLUSTER)).await;
    let fetched = h.issuer.counts().jwks;
    assert_eq!(jwks_fetches(&gw.metrics().await), 1.0);

    // With a comment on top: every line moves, nothing of [gateway] changes.
    let added = format!("# pool-marketing added\n{template}{MARKETING_POOL}");
    let line = reload(&gw, &config, &added, 1).await;
    assert!(line.contains("outcome=\"ok\""), "{line}");
    let m = gw.metrics().await;
    assert_eq!(reloads(&m, "ok"), 1.0, "{m}");
    let resp = super::good_login(&gw, &marketing).await;
    assert!(resp.session_lifetime_ms > 0);
    // Logged before the answer is sent, read from the pipe after it may be: waited for.
    let line = gw
        .process
        .log_line("the successful login", |l| {
            l.contains("event=\"login\" outcome=\"success\"")
        })
        .await;
    let login = super::audit_fields(&line).unwrap();
    assert_eq!(login["pools"], r#"["pool-marketing"]"#, "{line}");
    // The same provider: its key store was kept.
    assert_eq!(
        h.issuer.counts().jwks,
        fetched,
        "the JWKS was fetched again"
    );
    assert_eq!(jwks_fetches(&gw.metrics().await), 1.0);
    // The writers' pool still works.
    super::good_login(&gw, &h.writer_token()).await;

    // Another clock skew: another provider, started afresh.
    let changed = edit(
        &added,
        "insecure_allow_http = true\n",
        "insecure_allow_http = true\nclock_skew = \"10s\"\n",
    );
    let line = reload(&gw, &config, &changed, 2).await;
    assert!(line.contains("outcome=\"ok\""), "{line}");
    assert_eq!(h.issuer.counts().jwks, fetched + 1);
    super::good_login(&gw, &marketing).await;
}

/// A reload that removes a grant: an existing session keeps what it logged in with until it
/// re-authenticates (KIP-368: it must within its session lifetime, capped by
/// `max_session_lifetime`), then its produce is refused; a new login is refused at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_grant_applies_at_the_next_reauthentication() {
    let h = Harness::start("reload-grant").await;
    let broker = FakeBroker::start().await;
    broker.behave(Behaviour::default());
    let config = h.config("gateway.toml", |t| {
        edit(
            &t,
            "login_timeout = \"3s\"",
            "login_timeout = \"3s\"\nmax_session_lifetime = \"10s\"",
        )
    });
    let text = std::fs::read_to_string(&config).unwrap();
    let gw = logging_gateway(&h, &config, &broker, LOG_CLOSES).await;
    let token = h.writer_token();
    let mut client = gw.connect().await;
    let resp = login_ok(&mut client, &token).await;
    // The cap is what bounds the old grants' life on this connection.
    assert_eq!(resp.session_lifetime_ms, 10_000, "{resp:?}");
    assert_eq!(produce_error(&mut client).await, 0);

    let line = reload(&gw, &config, &edit(&text, WRITERS_TOPIC_GRANT, ""), 1).await;
    assert!(line.contains("outcome=\"ok\""), "{line}");
    // Not yet re-authenticated: the session's grants are the ones it logged in with.
    assert_eq!(produce_error(&mut client).await, 0);
    // A new login gets the new grants at once.
    let mut fresh = session(&gw, &token).await;
    assert_eq!(produce_error(&mut fresh).await, TOPIC_AUTHORIZATION_FAILED);

    // Re-authentication on the same connection: the same identity, the new grants.
    let resp = login_ok(&mut client, &token).await;
    assert_eq!(resp.session_lifetime_ms, 10_000, "{resp:?}");
    assert_eq!(produce_error(&mut client).await, TOPIC_AUTHORIZATION_FAILED);
    let m = gw.metrics().await;
    assert_eq!(
        sample(
            &m,
            r#"poolgate_logins_total{outcome="reauth_success",reason="ok"}"#
        ),
        Some(1.0),
        "{m}"
    );
    // Two produces were forwarded; the refused ones were answered by the gateway.
    assert_eq!(
        sample(&m, "poolgate_requests_forwarded_total"),
        Some(2.0),
        "{m}"
    );
}

/// An invalid configuration is not loaded: the error names the file and line, the reload is
/// counted as `invalid`, and the old configuration keeps working. A changed `[gateway]` field
/// is `restart_required`, naming the field, and nothing of that file is loaded either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_and_restart_requiring_reloads_keep_the_old_configuration() {
    let h = Harness::start("reload-invalid").await;
    let config = h.config("gateway.toml", |t| t);
    let template = std::fs::read_to_string(&config).unwrap();
    let gw = h
        .gateway_with(&config, &["--metrics-listen", "127.0.0.1:0"])
        .await;
    let marketing = h.token(&["marketing"]);

    // A pool of a provider that does not exist.
    let bad = format!(
        "{template}{}",
        edit(
            MARKETING_POOL,
            "provider = \"local-idp\"",
            "provider = \"nope\""
        )
    );
    let line_no = 1 + bad
        .lines()
        .position(|l| l == "provider = \"nope\"")
        .unwrap();
    let line = reload(&gw, &config, &bad, 1).await;
    assert!(line.contains("outcome=\"invalid\""), "{line}");
    let at = format!("{}:{line_no}:", config.display());
    assert!(line.contains(&at), "expected {at} in: {line}");
    assert!(line.contains("nope"), "{line}");
    let m = gw.metrics().await;
    assert_eq!(reloads(&m, "invalid"), 1.0, "{m}");
    assert_eq!(reloads(&m, "ok"), 0.0, "{m}");
    super::good_login(&gw, &h.writer_token()).await;

    // Not TOML at all.
    let line = reload(&gw, &config, &format!("{template}\n[[pools]\n"), 2).await;
    assert!(line.contains("outcome=\"invalid\""), "{line}");
    assert!(line.contains(&format!("{}:", config.display())), "{line}");

    // A valid file with a new pool, but a [gateway] field changed too.
    let restart = format!(
        "{}{MARKETING_POOL}",
        edit(
            &template,
            "login_timeout = \"3s\"",
            "login_timeout = \"4s\""
        )
    );
    let line = reload(&gw, &config, &restart, 3).await;
    assert!(line.contains("outcome=\"restart_required\""), "{line}");
    assert!(line.contains("`login_timeout`"), "{line}");
    let m = gw.metrics().await;
    assert_eq!(reloads(&m, "restart_required"), 1.0, "{m}");
    assert_eq!(reloads(&m, "invalid"), 2.0, "{m}");
    // Nothing of it was loaded: the new pool does not accept its token.
    refused(&gw, &client_first(&marketing, CLUSTER)).await;
    super::good_login(&gw, &h.writer_token()).await;

    // The same file without the [gateway] change loads.
    let line = reload(&gw, &config, &format!("{template}{MARKETING_POOL}"), 4).await;
    assert!(line.contains("outcome=\"ok\""), "{line}");
    super::good_login(&gw, &marketing).await;
}

// ---------------------------------------------------------------------------------------------
// max_connection_age.
// ---------------------------------------------------------------------------------------------

/// An idle authenticated connection is closed at `max_connection_age` (less up to a tenth),
/// counted as `max_connection_age`; one with a fetch in flight past its age stays open until
/// the fetch is answered, then closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_connections_close_between_requests() {
    const AGE: Duration = Duration::from_secs(2);
    let h = Harness::start("connection-age").await;
    let broker = FakeBroker::start().await;
    let config = h.config("gateway.toml", |t| {
        edit(
            &t,
            "[gateway]\n",
            "[gateway]\nmax_connection_age = \"2s\"\n",
        )
    });
    let gw = logging_gateway(&h, &config, &broker, LOG_DEBUG).await;
    let token = h.writer_token();

    // Idle: read before the login, so before the connection's age starts counting.
    broker.behave(Behaviour::default());
    let start = Instant::now();
    let mut idle = session(&gw, &token).await;
    clean_close(&mut idle).await;
    let lived = start.elapsed();
    assert!(
        lived >= AGE - AGE / 10,
        "closed after {lived:?}, before max_connection_age less a tenth"
    );
    gw.metrics_when("the aged connection counted", |m| {
        dropped(m, "max_connection_age") == 1.0
    })
    .await;

    // Busy: a fetch held past the age.
    broker.behave(Behaviour::holding_fetches());
    let mut busy = session(&gw, &token).await;
    let id = busy.send(11, &fetch_request()).await.unwrap();
    gw.process
        .log_line("the busy connection past its age", |l| {
            l.contains("older than max_connection_age while busy") && l.contains("in_flight=1")
        })
        .await;
    // Still open: the answer arrives once released, then the connection closes.
    let m = gw.metrics().await;
    assert_eq!(dropped(&m, "max_connection_age"), 1.0, "{m}");
    broker.release.notify_one();
    let (got, resp) = within("the held fetch's answer", busy.recv::<FetchRequest>(11))
        .await
        .unwrap();
    assert_eq!((got, resp.error_code), (id, 0));
    clean_close(&mut busy).await;
    gw.metrics_when("both aged connections counted", |m| {
        dropped(m, "max_connection_age") == 2.0
    })
    .await;
    // Both closes are logged for that reason (after the counter moved: waited for).
    nth_line(&gw.process, "the second aged close", 2, |l| {
        l.contains("connection closed")
            && l.contains("reason=older than the maximum connection age")
    })
    .await;
}
