//! A minimal front door that embeds poolgate: the login path of a Kafka proxy, without Kafka's
//! framing, on the library's default features.
//!
//! It accepts TCP connections. On each it reads one SASL/OAUTHBEARER client first message
//! (RFC 7628; what Kafka carries in `SaslAuthenticate.auth_bytes`) behind a 4-byte big-endian
//! length, and authenticates it with a [`Gate`]:
//! - refused: it answers `refused <code>` and the RFC 7628 error challenge, and closes;
//! - accepted: it answers `ok <identity> <principals> <seconds left>`, then answers lines
//!   `<Operation> <Type>:<name>` (for example `Write Topic:orders`) with `allow …` or `deny …`,
//!   one per line, until the client closes or the token expires.
//!
//! ```sh
//! cargo run --example embed -- poolgate.toml 127.0.0.1:9099
//! ```
//!
//! To try it locally, `cargo run --features cli -- issuer` serves a local OIDC issuer and
//! prints a configuration and tokens for it (see the README).

use std::error::Error;

use poolgate::authz::{Operation, Resource};
use poolgate::config::Config;
use poolgate::gate::{Gate, Session};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// The largest client first message read: a token is at most 16 KiB, plus extensions.
const MAX_MESSAGE: u32 = 64 * 1024;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(config), Some(listen)) = (args.next(), args.next()) else {
        return Err("usage: embed CONFIG.toml HOST:PORT".into());
    };
    // One gate per configuration: it owns the key stores (fetched and refreshed in the
    // background) and the verified-token cache. Cheap to clone into every connection.
    let gate = Gate::start(Config::load(config.as_ref())?).await?;
    let listener = TcpListener::bind(&listen).await?;
    println!("listening on {}", listener.local_addr()?);
    loop {
        let (stream, peer) = listener.accept().await?;
        let gate = gate.clone();
        tokio::spawn(async move {
            if let Err(e) = serve(gate, stream).await {
                eprintln!("{peer}: {e}");
            }
        });
    }
}

pub(crate) async fn serve(
    gate: Gate,
    stream: TcpStream,
) -> Result<(), Box<dyn Error + Send + Sync>> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let len = read.read_u32().await?;
    if len > MAX_MESSAGE {
        return Err(format!("a {len}-byte SASL message").into());
    }
    let mut message = vec![0; len as usize];
    read.read_exact(&mut message).await?;

    let session = match gate.authenticate(&message).await {
        Ok(session) => session,
        Err(rejection) => {
            // The code is for logs and metrics; the client sees only the challenge.
            write
                .write_all(format!("refused {}\n", rejection.code()).as_bytes())
                .await?;
            write.write_all(rejection.challenge()).await?;
            return Ok(());
        }
    };
    let left = session.lifetime_at(gate.validator().clock().now());
    let greeting = format!(
        "ok {} {} {}\n",
        session.identity(),
        session.principals().join(","),
        left.as_secs()
    );
    write.write_all(greeting.as_bytes()).await?;

    // A session must not outlive its token: stop answering when it expires (a Kafka broker
    // closes the connection unless the client re-authenticates, KIP-368).
    let mut lines = read.lines();
    let expiry = tokio::time::sleep(left);
    tokio::pin!(expiry);
    loop {
        let line = tokio::select! {
            line = lines.next_line() => line?,
            () = &mut expiry => None,
        };
        let Some(line) = line else { return Ok(()) };
        let answer = decide(&session, &line);
        write.write_all(format!("{answer}\n").as_bytes()).await?;
    }
}

/// `Write Topic:orders` → `allow: …` / `deny: …`, or why the line is not a question.
fn decide(session: &Session, line: &str) -> String {
    let Some((op, resource)) = line.trim().split_once(' ') else {
        return "error: expected `<Operation> <Type>:<name>`".to_owned();
    };
    let op: Operation = match op.parse() {
        Ok(op) => op,
        Err(e) => return format!("error: {e}"),
    };
    match Resource::parse(resource) {
        // The per-request check: no I/O, no allocation; the decision names its grant.
        Ok(resource) => session.authorize(op, &resource).to_string(),
        Err(e) => format!("error: {e}"),
    }
}
