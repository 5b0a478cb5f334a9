//! `examples/embed.rs` works as its documentation says: its connection handler, compiled in
//! from the example's source, serves a real SASL/OAUTHBEARER login against the local issuer
//! with `testdata/demo.toml`, then answers authorize questions.
#![cfg(feature = "testkit")]

use std::path::Path;

use poolgate::config::Config;
use poolgate::gate::Gate;
use poolgate::sasl::ClientFirstMessage;
use poolgate::testkit::TestIssuer;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

#[path = "../examples/embed.rs"]
#[allow(dead_code, reason = "the example's `main` is not run here")]
mod embed;

async fn demo_gate(issuer: &TestIssuer) -> Gate {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("testdata/demo.toml"))
        .unwrap()
        .replace("{issuer}", issuer.issuer())
        .replace("{discovery_url}", issuer.discovery_url().as_str());
    let config = Config::parse(&text, "demo.toml", root).unwrap();
    Gate::start(config).await.unwrap()
}

/// Serves one connection with the example's handler; returns the client side.
async fn connect(gate: Gate) -> (TcpStream, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        embed::serve(gate, stream).await.unwrap();
    });
    (TcpStream::connect(addr).await.unwrap(), server)
}

async fn send_login(stream: &mut TcpStream, token: &str) {
    let message = ClientFirstMessage::new(token)
        .extension("logicalCluster", "lkc-demo")
        .build()
        .unwrap()
        .to_bytes();
    stream.write_u32(message.len() as u32).await.unwrap();
    stream.write_all(&message).await.unwrap();
}

#[tokio::test]
async fn a_login_then_authorize_questions() {
    let issuer = TestIssuer::start().await.unwrap();
    let gate = demo_gate(&issuer).await;
    let token = issuer
        .mint()
        .claim("sub", json!("svc-analytics"))
        .claim("groups", json!(["analytics"]))
        .claim("tenant", json!("acme"))
        .sign();
    let (mut stream, server) = connect(gate).await;
    send_login(&mut stream, &token).await;

    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let greeting = lines.next_line().await.unwrap().unwrap();
    let words: Vec<&str> = greeting.split(' ').collect();
    assert_eq!(
        words[..3],
        ["ok", "svc-analytics", "User:analytics"],
        "{greeting}"
    );
    let left: u64 = words[3].parse().unwrap();
    assert!(left > 0 && left <= 3600, "{greeting}");

    for (question, answer) in [
        (
            "Read Topic:analytics-clicks",
            "allow: allowed by grant 1 of pool `analytics`",
        ),
        (
            "Read Topic:analytics-secret",
            "deny: denied by grant 3 of pool `analytics`",
        ),
        (
            "Write Topic:tenant-acme-orders",
            "allow: allowed by grant 2 of pool `analytics`",
        ),
        (
            "Write Topic:tenant-other-orders",
            "deny: no grant allows it",
        ),
        ("Fly Topic:x", "error: "),
        ("Read", "error: expected"),
    ] {
        write
            .write_all(format!("{question}\n").as_bytes())
            .await
            .unwrap();
        let line = lines.next_line().await.unwrap().unwrap();
        assert!(line.starts_with(answer), "{question}: {line}");
    }
    drop(write);
    assert_eq!(lines.next_line().await.unwrap(), None);
    server.await.unwrap();
}

#[tokio::test]
async fn a_refused_login_gets_the_code_and_the_challenge() {
    let issuer = TestIssuer::start().await.unwrap();
    let gate = demo_gate(&issuer).await;
    // Signed by the issuer, but for another audience.
    let token = issuer.mint().claim("aud", json!("not-kafka")).sign();
    let (mut stream, server) = connect(gate).await;
    send_login(&mut stream, &token).await;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let (code, challenge) = answer.split_once('\n').unwrap();
    assert_eq!(code, "refused audience_mismatch");
    let challenge: serde_json::Value = serde_json::from_str(challenge).unwrap();
    assert_eq!(challenge["status"], "invalid_token");
    server.await.unwrap();
}
