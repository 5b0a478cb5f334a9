//! The gateway's own upstream login, end to end with real parts: librdkafka (Python
//! `confluent-kafka`) → `poolgate gateway` → Apache Kafka on listeners that require it:
//! `SECURE` (SASL_SSL with SCRAM-SHA-256/512 and OAUTHBEARER, Kafka's own
//! `OAuthBearerValidatorCallbackHandler` against the local issuer) and `MTLS` (SSL with
//! `ssl.client.auth=required`). The brokers' and the gateway's certificates come from a test CA
//! made here (rcgen). Needs `e2e/setup` (Kafka's jars, Java 17+, the virtualenv); `e2e/run`
//! runs it.
//!
//! One single-node cluster and one issuer serve every test of this binary (the broker's JWKS
//! URL and SCRAM users are fixed when it starts); each test has its own gateway and topics.

#![cfg(feature = "cli")]

mod support;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use kafka_protocol::messages::MetadataRequest;
use poolgate::sasl::ClientFirstMessage;
use poolgate::testkit::cluster::{KafkaCluster, Options, kafka_libs};
use poolgate::testkit::kafka::KafkaClient;
use poolgate::testkit::stack::GatewayProcess;
use poolgate::testkit::{Client, TestIssuer};
use serde_json::json;
use support::{ALLOWED_URLS, TempDir, json_of};

const CLUSTER: &str = "lkc-e2e";
/// The SASL_SSL listener.
const SECURE: &str = "SECURE";
/// The SSL listener that requires a client certificate.
const MTLS: &str = "MTLS";
/// The gateway's SCRAM user on the brokers.
const SCRAM_USER: &str = "poolgate-gw";
/// Its password: a throwaway for this test cluster (it is on `kafka-storage format`'s command
/// line, where Kafka takes it; the gateway itself reads it from a file or the environment).
const SCRAM_PASSWORD: &str = "upstream-scram-test-password";
/// The session lifetime of SCRAM-SHA-256 logins on the `SECURE` listener.
const REAUTH_MS: u64 = 5_000;
/// The gateway's OAuth client at the issuer.
const GATEWAY_CLIENT: &str = "poolgate-gateway-upstream";
const GATEWAY_CLIENT_SECRET: &str = "gateway-upstream-test-secret";

/// The CA and the certificates every test uses, in one folder.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
    fn client_cert(&self) -> PathBuf {
        self.dir.join("gateway-client.pem")
    }
    fn client_key(&self) -> PathBuf {
        self.dir.join("gateway-client.key")
    }
}

/// The binary's issuer, cluster and certificates, started by the first test that asks.
struct World {
    /// Keeps the issuer's server running.
    _rt: tokio::runtime::Runtime,
    issuer: TestIssuer,
    cluster: Mutex<KafkaCluster>,
    pki: Pki,
}

/// A PEM text as one `server.properties` value (`\n` is a line break in Java properties).
fn property_pem(pem: &str) -> String {
    pem.trim_end().replace("\r\n", "\n").replace('\n', "\\n")
}

fn start_world() -> Result<World, String> {
    let libs = kafka_libs().ok_or("no Apache Kafka: run e2e/setup first (or e2e/run)")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let issuer = support::gateway_issuer(
        &rt,
        vec![Client::new(GATEWAY_CLIENT, GATEWAY_CLIENT_SECRET)],
    )?;

    // The test CA, the brokers' certificate (127.0.0.1) and the gateway's client certificate.
    let mut ca_params =
        rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "poolgate e2e test CA");
    let ca_key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).map_err(|e| e.to_string())?;
    let leaf = |names: Vec<String>, cn: &str| -> Result<(String, String), String> {
        let mut params = rcgen::CertificateParams::new(names).map_err(|e| e.to_string())?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
        let cert = params.signed_by(&key, &ca).map_err(|e| e.to_string())?;
        Ok((cert.pem(), key.serialize_pem()))
    };
    let (broker_cert, broker_key) = leaf(vec!["127.0.0.1".to_owned()], "kafka-broker")?;
    let (client_cert, client_key) = leaf(vec!["poolgate-gateway".to_owned()], "poolgate-gateway")?;

    let jwks = issuer.jwks_url().to_string();
    let global = [
        (
            "sasl.enabled.mechanisms",
            "SCRAM-SHA-512,SCRAM-SHA-256,OAUTHBEARER".to_owned(),
        ),
        ("sasl.oauthbearer.jwks.endpoint.url", jwks.clone()),
        ("sasl.oauthbearer.expected.audience", "kafka".to_owned()),
        (
            "sasl.oauthbearer.expected.issuer",
            issuer.issuer().to_owned(),
        ),
    ];
    let secure = |k: &str| format!("listener.name.{}.{k}", SECURE.to_lowercase());
    let mtls = |k: &str| format!("listener.name.{}.{k}", MTLS.to_lowercase());
    let mut owned = vec![
        (
            secure("sasl.enabled.mechanisms"),
            "SCRAM-SHA-512,SCRAM-SHA-256,OAUTHBEARER".to_owned(),
        ),
        (
            secure("scram-sha-512.sasl.jaas.config"),
            "org.apache.kafka.common.security.scram.ScramLoginModule required ;".to_owned(),
        ),
        (
            secure("scram-sha-256.sasl.jaas.config"),
            "org.apache.kafka.common.security.scram.ScramLoginModule required ;".to_owned(),
        ),
        (
            secure("oauthbearer.sasl.jaas.config"),
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required ;"
                .to_owned(),
        ),
        (
            secure("oauthbearer.sasl.server.callback.handler.class"),
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler"
                .to_owned(),
        ),
        // SCRAM-SHA-256 sessions last 5 s: the gateway must renew its login on connections in
        // use (KIP-368), or the broker closes them.
        (
            secure("scram-sha-256.connections.max.reauth.ms"),
            REAUTH_MS.to_string(),
        ),
        (mtls("ssl.client.auth"), "required".to_owned()),
        (mtls("ssl.truststore.type"), "PEM".to_owned()),
        (mtls("ssl.truststore.certificates"), property_pem(&ca.pem())),
    ];
    for listener in [secure as fn(&str) -> String, mtls] {
        owned.push((listener("ssl.keystore.type"), "PEM".to_owned()));
        owned.push((
            listener("ssl.keystore.certificate.chain"),
            property_pem(&broker_cert),
        ));
        owned.push((listener("ssl.keystore.key"), property_pem(&broker_key)));
    }
    let mut all: Vec<(String, String)> =
        global.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    all.extend(owned);
    let started = Instant::now();
    let cluster = KafkaCluster::start_with_options(
        &libs,
        1,
        Options {
            properties: all,
            more_listeners: vec![
                (SECURE.to_owned(), "SASL_SSL".to_owned()),
                (MTLS.to_owned(), "SSL".to_owned()),
            ],
            scram_credentials: ["SCRAM-SHA-512", "SCRAM-SHA-256"]
                .iter()
                .map(|m| format!("{m}=[name={SCRAM_USER},password={SCRAM_PASSWORD}]"))
                .collect(),
            // Kafka 4 fetches keys only from URLs listed here.
            system_properties: vec![(ALLOWED_URLS.to_owned(), jwks)],
            ..Options::default()
        },
    )
    .map_err(|e| e.to_string())?;
    eprintln!(
        "kafka with SASL_SSL and mTLS listeners up in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // The gateway's files sit in the cluster's folder (left behind with it, as a `static`).
    let pki = Pki {
        dir: cluster.dir().join("pki"),
    };
    std::fs::create_dir_all(&pki.dir).map_err(|e| e.to_string())?;
    let write = |path: PathBuf, text: &str| std::fs::write(path, text).map_err(|e| e.to_string());
    write(pki.ca(), &ca.pem())?;
    write(pki.client_cert(), &client_cert)?;
    write(pki.client_key(), &client_key)?;
    Ok(World {
        _rt: rt,
        issuer,
        cluster: Mutex::new(cluster),
        pki,
    })
}

/// The binary's one world (a failed start is reported to every test). Kept in a `static`, it
/// is never dropped: the node's watchdog stops it when the binary exits.
fn world() -> &'static World {
    static SHARED: OnceLock<Result<World, String>> = OnceLock::new();
    match SHARED.get_or_init(start_world) {
        Ok(w) => w,
        Err(e) => panic!("the Kafka cluster did not start: {e}"),
    }
}

fn cluster() -> MutexGuard<'static, KafkaCluster> {
    support::lock(&world().cluster)
}

/// The test gateway configuration with `upstream` as its `[gateway.upstream]` table.
fn write_config(dir: &TempDir, upstream: &str) -> PathBuf {
    let text = format!(
        "{}\n[gateway.upstream]\n{upstream}",
        support::gateway_toml(&world().issuer)
    );
    let path = dir.join("gateway.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A secret file the gateway reads.
fn write_secret(dir: &TempDir, name: &str, secret: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("{secret}\n")).unwrap();
    path
}

fn secure_addr() -> String {
    cluster().named_listener_addr(1, SECURE).unwrap().to_owned()
}

fn mtls_addr() -> String {
    cluster().named_listener_addr(1, MTLS).unwrap().to_owned()
}

fn plaintext_addr() -> String {
    cluster().broker_addr(1).unwrap().to_owned()
}

/// The librdkafka client through `gateway` as the e2e writer.
fn client(gateway: &str) -> Command {
    support::librdkafka(
        gateway,
        world().issuer.token_url().as_str(),
        "e2e-writer",
        &format!("logicalCluster={CLUSTER},identityPoolId=pool-writers"),
        30,
    )
}

/// librdkafka straight to the broker's PLAINTEXT listener: what really landed.
fn direct() -> Command {
    support::librdkafka_plain(&plaintext_addr(), 30)
}

/// Produces `count` records through `gateway` and reads every one back, through the gateway
/// and straight from the broker.
fn round_trip(gateway: &str, topic: &str, count: u32) {
    cluster().create_topic(topic, 1, 1, None, &[]).unwrap();
    let mut produce = client(gateway);
    produce.args(["produce", "--topic", topic, "--count", &count.to_string()]);
    let out = json_of(produce);
    assert_eq!(out["delivered"], json!(count), "{out}");
    let mut consume = client(gateway);
    consume.args(["consume", "--topic", topic, "--count", &count.to_string()]);
    let via_gateway = json_of(consume);
    assert_eq!(via_gateway["consumed"], json!(count), "{via_gateway}");
    let mut consume = direct();
    consume.args(["consume", "--topic", topic, "--count", &count.to_string()]);
    let direct = json_of(consume);
    assert_eq!(direct["values"], via_gateway["values"], "{direct}");
}

fn spawn_gateway(config: &Path, upstream: &str, env: &[(&str, &str)]) -> GatewayProcess {
    GatewayProcess::spawn_with_env(
        Path::new(env!("CARGO_BIN_EXE_poolgate")),
        config,
        upstream,
        &[],
        env,
    )
    .unwrap()
}

#[test]
#[ignore = "needs e2e/setup (Apache Kafka, Java 17+, confluent-kafka); run e2e/run"]
fn scram_over_sasl_ssl_produces_and_consumes() {
    let secure = secure_addr();
    let ca = world().pki.ca();
    // SCRAM-SHA-512 with the password from the environment, SCRAM-SHA-256 from a file.
    for (mechanism, from_env) in [("SCRAM-SHA-512", true), ("SCRAM-SHA-256", false)] {
        let dir = TempDir::new(&format!("e2e-upstream-{}", mechanism.to_lowercase()));
        let password = if from_env {
            "sasl_password_env = \"POOLGATE_UPSTREAM_PASSWORD\"".to_owned()
        } else {
            let file = write_secret(&dir, "scram-password", SCRAM_PASSWORD);
            format!("sasl_password_file = \"{}\"", file.display())
        };
        let config = write_config(
            &dir,
            &format!(
                "security_protocol = \"SASL_SSL\"\ntls_ca_file = \"{}\"\nsasl_mechanism = \"{mechanism}\"\nsasl_username = \"{SCRAM_USER}\"\n{password}\n",
                ca.display()
            ),
        );
        let env: &[(&str, &str)] = if from_env {
            &[("POOLGATE_UPSTREAM_PASSWORD", SCRAM_PASSWORD)]
        } else {
            &[]
        };
        let gateway = spawn_gateway(&config, &secure, env);
        let topic = format!("e2e-upstream-{}", mechanism.to_lowercase());
        round_trip(gateway.addr(), &topic, 20);
    }
}

#[test]
#[ignore = "needs e2e/setup (Apache Kafka, Java 17+, confluent-kafka); run e2e/run"]
fn mtls_to_a_listener_that_requires_client_certificates() {
    let pki = &world().pki;
    let dir = TempDir::new("e2e-upstream-mtls");
    let config = write_config(
        &dir,
        &format!(
            "security_protocol = \"SSL\"\ntls_ca_file = \"{}\"\ntls_cert_file = \"{}\"\ntls_key_file = \"{}\"\n",
            pki.ca().display(),
            pki.client_cert().display(),
            pki.client_key().display()
        ),
    );
    let gateway = spawn_gateway(&config, &mtls_addr(), &[]);
    round_trip(gateway.addr(), "e2e-upstream-mtls", 20);
}

#[test]
#[ignore = "needs e2e/setup (Apache Kafka, Java 17+, confluent-kafka); run e2e/run"]
fn oauthbearer_with_the_gateways_own_token() {
    let w = world();
    let dir = TempDir::new("e2e-upstream-oauth");
    let secret = write_secret(&dir, "client-secret", GATEWAY_CLIENT_SECRET);
    let config = write_config(
        &dir,
        &format!(
            "security_protocol = \"SASL_SSL\"\ntls_ca_file = \"{}\"\nsasl_mechanism = \"OAUTHBEARER\"\ntoken_endpoint = \"{}\"\nclient_id = \"{GATEWAY_CLIENT}\"\nclient_secret_file = \"{}\"\ninsecure_allow_http = true\n",
            w.pki.ca().display(),
            w.issuer.token_url(),
            secret.display()
        ),
    );
    let before = w.issuer.counts().token;
    let gateway = spawn_gateway(&config, &secure_addr(), &[]);
    // The start-up probe logged in upstream with a token of the gateway's own.
    assert!(w.issuer.counts().token > before);
    round_trip(gateway.addr(), "e2e-upstream-oauth", 20);
}

/// Runs the gateway and expects it to exit before it listens: its exit code and stderr.
fn failed_start(config: &Path, upstream: &str, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_poolgate"))
        .arg("gateway")
        .arg("--config")
        .arg(config)
        .args(["--listen", "127.0.0.1:0", "--upstream", upstream])
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Killed by its id however this test ends.
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut child = Reap(child);
    // The start-up line, or the end of stdout when the gateway exits.
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    assert!(
        line.is_empty(),
        "the gateway started in front of `{upstream}`: {line}"
    );
    let mut err = String::new();
    BufReader::new(stderr).read_to_string(&mut err).unwrap();
    let status = child.0.wait().unwrap();
    (status.code(), err)
}

#[test]
#[ignore = "needs e2e/setup (Apache Kafka, Java 17+, confluent-kafka); run e2e/run"]
fn a_refused_upstream_login_stops_the_start_and_never_falls_back() {
    let w = world();
    let ca = w.pki.ca().display().to_string();
    let secure = secure_addr();
    let plaintext = plaintext_addr();
    let mtls = mtls_addr();
    let dir = TempDir::new("e2e-upstream-refused");
    let wrong = write_secret(&dir, "wrong-password", "not-the-password");
    let wrong_client = write_secret(&dir, "wrong-client-secret", "not-the-client-secret");
    let other_ca = {
        let c = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        write_secret(&dir, "other-ca.pem", &c.cert.pem())
    };
    let scram = |password_file: &Path, ca: &str| {
        format!(
            "security_protocol = \"SASL_SSL\"\ntls_ca_file = \"{ca}\"\nsasl_mechanism = \"SCRAM-SHA-512\"\nsasl_username = \"{SCRAM_USER}\"\nsasl_password_file = \"{}\"\n",
            password_file.display()
        )
    };
    let good = write_secret(&dir, "password", SCRAM_PASSWORD);
    // (what, [gateway.upstream], the broker address, what stderr must say)
    let table = [
        (
            "a wrong SCRAM password",
            scram(&wrong, &ca),
            secure.clone(),
            format!(
                "SASL SCRAM-SHA-512 login at `{secure}` failed: the broker answered error code 58"
            ),
        ),
        (
            "SASL_SSL towards a PLAINTEXT listener",
            scram(&good, &ca),
            plaintext.clone(),
            format!("TLS handshake with `{plaintext}` failed"),
        ),
        (
            "a broker certificate from another CA",
            scram(&good, &other_ca.display().to_string()),
            secure.clone(),
            format!(
                "TLS handshake with `{secure}` failed: invalid peer certificate: UnknownIssuer"
            ),
        ),
        (
            "a wrong OAuth client secret",
            format!(
                "security_protocol = \"SASL_SSL\"\ntls_ca_file = \"{ca}\"\nsasl_mechanism = \"OAUTHBEARER\"\ntoken_endpoint = \"{}\"\nclient_id = \"{GATEWAY_CLIENT}\"\nclient_secret_file = \"{}\"\ninsecure_allow_http = true\n",
                w.issuer.token_url(),
                wrong_client.display()
            ),
            secure.clone(),
            "HTTP 401, error `invalid_client`".to_owned(),
        ),
        (
            "no client certificate for a listener that requires one",
            format!("security_protocol = \"SSL\"\ntls_ca_file = \"{ca}\"\n"),
            mtls.clone(),
            format!("TLS handshake with `{mtls}` failed: received fatal alert"),
        ),
    ];
    for (what, upstream, addr, expected) in table {
        let config = write_config(&dir, &upstream);
        let (code, stderr) = failed_start(&config, &addr, &[]);
        assert_eq!(code, Some(1), "{what}: {stderr}");
        eprintln!("{what}: {}", stderr.trim_end());
        let protocol = if addr == mtls { "SSL" } else { "SASL_SSL" };
        assert!(
            stderr.contains(&format!("upstream {addr} ({protocol}): "))
                && stderr.contains(&expected),
            "{what}: expected `{expected}` in: {stderr}"
        );
        for secret in ["not-the-password", "not-the-client-secret", SCRAM_PASSWORD] {
            assert!(!stderr.contains(secret), "{what}: a secret in: {stderr}");
        }
    }
    // The right password through the same file layout starts (the failures above were the
    // secrets', not the setup's).
    let config = write_config(&dir, &scram(&good, &ca));
    let gateway = spawn_gateway(&config, &secure, &[]);
    assert!(gateway.addr().starts_with("127.0.0.1:"));
}

#[test]
#[ignore = "needs e2e/setup (Apache Kafka, Java 17+, confluent-kafka); run e2e/run"]
fn the_gateway_renews_its_upstream_login_on_a_connection_in_use() {
    let w = world();
    let dir = TempDir::new("e2e-upstream-reauth");
    let password = write_secret(&dir, "scram-password", SCRAM_PASSWORD);
    let config = write_config(
        &dir,
        &format!(
            "security_protocol = \"SASL_SSL\"\ntls_ca_file = \"{}\"\nsasl_mechanism = \"SCRAM-SHA-256\"\nsasl_username = \"{SCRAM_USER}\"\nsasl_password_file = \"{}\"\n",
            w.pki.ca().display(),
            password.display()
        ),
    );
    let gateway = support::spawn_gateway(&config, &secure_addr(), &[]);
    let jwt = w
        .issuer
        .mint()
        .claim("sub", json!("e2e-reauth"))
        .claim("groups", json!(["kafka-writers"]))
        .sign();
    let message = ClientFirstMessage::new(jwt)
        .extension("logicalCluster", CLUSTER)
        .build()
        .unwrap()
        .to_bytes();
    let renewals = || gateway.metric("poolgate_upstream_reauthentications_total");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut c = KafkaClient::connect(gateway.addr()).await.unwrap();
        let login = c.sasl_oauthbearer(&message).await.unwrap();
        assert_eq!(login.error_code, 0);
        let md = c.call(12, MetadataRequest::default()).await.unwrap();
        assert_eq!(md.brokers.len(), 1);
        // Two renewals: the first session (5 s) is over, and the connection carries on.
        let deadline = Instant::now() + Duration::from_millis(4 * REAUTH_MS);
        while renewals() < 2 {
            assert!(
                Instant::now() < deadline,
                "no second upstream re-authentication:\n{}",
                gateway.metrics().unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let md = c.call(12, MetadataRequest::default()).await.unwrap();
        assert_eq!(md.brokers.len(), 1);
        // The broker at its own gateway port (a node port), not the bootstrap port and not
        // its own address.
        let b = &md.brokers[0];
        assert_eq!(b.host.as_str(), "127.0.0.1");
        assert_ne!(b.port, i32::from(gateway_port(gateway.addr())));
        assert_ne!(b.port, i32::from(gateway_port(&secure_addr())));
    });
}

fn gateway_port(addr: &str) -> u16 {
    addr.rsplit_once(':').unwrap().1.parse().unwrap()
}
