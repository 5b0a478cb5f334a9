//! A second opinion on token validation: one table of tokens, each presented over a raw
//! SASL/OAUTHBEARER exchange both to `poolgate gateway` (in front of a three-node Apache Kafka
//! cluster) and to a listener of that same cluster that validates with Kafka's built-in
//! `OAuthBearerValidatorCallbackHandler`, against the same local issuer's JWKS.
//!
//! poolgate's answer is asserted (accept, or refuse with its reason code, read from the
//! gateway's `poolgate_logins_total` metric); Kafka's is recorded. The table of both is printed
//! and written to `$CARGO_TARGET_TMPDIR/kafka-validator.md`; every row where they differ is in
//! the README ("poolgate vs Kafka's OAuthBearerValidatorCallbackHandler"), with the reason.
//! Needs `e2e/setup`; `e2e/run` runs it, and CI does.

#![cfg(feature = "cli")]

mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::encoding::AsDer as _;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use kafka_protocol::messages::MetadataRequest;
use poolgate::UnixTime;
use poolgate::sasl::ClientFirstMessage;
use poolgate::testkit::cluster::{KafkaCluster, Options, kafka_libs};
use poolgate::testkit::kafka::KafkaClient;
use poolgate::testkit::stack::GatewayProcess;
use poolgate::testkit::{SigningAlg, SigningKey, TestIssuer};
use serde_json::{Value, json};
use support::{ALLOWED_URLS, TempDir};

/// The gateway's `[cluster] id`; every login sends it as `logicalCluster` (Kafka ignores it).
const CLUSTER: &str = "lkc-diff";
/// The Kafka listener that validates tokens itself.
const LISTENER: &str = "OAUTH";
const SASL_AUTHENTICATION_FAILED: i16 = 58;
/// How long one login, or Kafka's background JWKS refresh, may take.
const WAIT: Duration = Duration::from_secs(30);

/// The gateway: one provider for the local issuer with the settings Kafka's listener gets
/// (audience `kafka`, the issuer), and one pool every verified token matches, so that the
/// answer is the validator's alone.
const GATEWAY_TOML: &str = r#"
[cluster]
id = "lkc-diff"
require_logical_cluster = true

[sasl]
challenge_scope = "kafka"

[gateway]
allow_plaintext = true
login_timeout = "10s"
failure_delay = "1ms"
max_failure_delay = "10ms"

[[providers]]
id = "local-idp"
issuer = "{issuer}"
discovery_url = "{discovery_url}"
audiences = ["kafka"]
require_claims = ["sub", "exp"]
# The local issuer serves plain http on 127.0.0.1; never set this for a real IdP.
insecure_allow_http = true

[[pools]]
id = "pool-any"
provider = "local-idp"
filter = "true"

[[pools.grants]]
allow = ["Describe"]
resource = "Topic:*"
"#;

/// What one side answered.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Accept,
    /// Refused; poolgate's reason code, or what Kafka said.
    Refuse(String),
}

impl Outcome {
    fn accepted(&self) -> bool {
        *self == Outcome::Accept
    }

    fn cell(&self) -> String {
        match self {
            Outcome::Accept => "accept".to_owned(),
            Outcome::Refuse(why) if why.is_empty() => "refuse".to_owned(),
            Outcome::Refuse(why) => format!("refuse (`{why}`)"),
        }
    }
}

/// One row: a name, how the token is made (called once, in table order, so a row may change
/// the issuer's keys), and poolgate's expected answer: `None` to accept, else the reason code.
struct Case {
    name: &'static str,
    token: Box<dyn Fn(&TestIssuer) -> String>,
    poolgate: Option<&'static str>,
    /// Kafka fetches a JWKS for an unknown kid in the background and refuses meanwhile: after
    /// its first answer, ask it again until it accepts (bounded) and record both answers.
    kafka_retries: bool,
}

fn case(
    name: &'static str,
    poolgate: Option<&'static str>,
    token: impl Fn(&TestIssuer) -> String + 'static,
) -> Case {
    Case {
        name,
        token: Box::new(token),
        poolgate,
        kafka_retries: false,
    }
}

fn now() -> UnixTime {
    UnixTime::from_secs(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn b64d(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).unwrap()
}

/// The PEM `SubjectPublicKeyInfo` of an RSA JWK: what a confused verifier loads as an HMAC
/// secret (as in tests/vectors.rs).
fn rsa_public_pem(jwk: &Value) -> String {
    let components = aws_lc_rs::rsa::PublicKeyComponents {
        n: b64d(jwk["n"].as_str().unwrap()),
        e: b64d(jwk["e"].as_str().unwrap()),
    };
    let der = components.as_der().unwrap();
    let body = STANDARD.encode(der.as_ref());
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        lines.join("\n")
    )
}

/// A token whose header and claims are the given JSON texts, verbatim (for duplicate members),
/// signed with `key`.
fn raw_jws(header: &str, claims: &str, key: &SigningKey) -> String {
    let input = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
    let sig = key.sign(input.as_bytes());
    format!("{input}.{}", b64(&sig))
}

/// The table, in the order it runs.
fn cases() -> Vec<Case> {
    let hour = Duration::from_secs(3600);
    vec![
        case("valid RS256", None, |i| i.mint().sign()),
        Case {
            kafka_retries: true,
            ..case(
                "kid rotated in after start (new RS256 key published, then used)",
                None,
                |i| {
                    i.rotate(SigningAlg::RS256);
                    i.mint().sign()
                },
            )
        },
        case("valid ES256", None, |i| {
            i.mint().alg(SigningAlg::ES256).sign()
        }),
        case("valid EdDSA (Ed25519)", None, |i| {
            i.mint().alg(SigningAlg::EdDSA).sign()
        }),
        case("aud as an array holding `kafka`", None, |i| {
            i.mint().claim("aud", json!(["other", "kafka"])).sign()
        }),
        case("typ `at+jwt` (RFC 9068)", None, |i| {
            i.mint().header("typ", json!("at+jwt")).sign()
        }),
        case("expired an hour ago", Some("expired"), move |i| {
            i.mint()
                .issued_at(now() - hour - hour)
                .lifetime(hour)
                .sign()
        }),
        case("nbf an hour ahead", Some("not_yet_valid"), move |i| {
            i.mint()
                .claim("nbf", json!((now() + hour).as_secs()))
                .sign()
        }),
        case("iat an hour ahead", Some("issued_in_future"), move |i| {
            i.mint().issued_at(now() + hour).sign()
        }),
        case("exp in 100 years", None, move |i| {
            i.mint()
                .claim(
                    "exp",
                    json!((now() + Duration::from_secs(100 * 365 * 86_400)).as_secs()),
                )
                .sign()
        }),
        case("no exp", Some("missing_claim"), |i| {
            i.mint().without_claim("exp").sign()
        }),
        case("no iat", None, |i| i.mint().without_claim("iat").sign()),
        case("exp a string", Some("invalid_claim"), |i| {
            let exp = now() + Duration::from_secs(3600);
            i.mint()
                .claim("exp", json!(exp.as_secs().to_string()))
                .sign()
        }),
        case("wrong audience", Some("audience_mismatch"), |i| {
            i.mint().claim("aud", json!("other")).sign()
        }),
        case("no aud", Some("missing_claim"), |i| {
            i.mint().without_claim("aud").sign()
        }),
        case("wrong issuer", Some("unknown_issuer"), |i| {
            i.mint().claim("iss", json!("http://127.0.0.1:1")).sign()
        }),
        case("no sub", Some("missing_claim"), |i| {
            i.mint().without_claim("sub").sign()
        }),
        // The pool's identity is `sub`: an empty one identifies no one.
        case("empty sub", Some("no_pool_matched"), |i| {
            i.mint().claim("sub", json!("")).sign()
        }),
        case(
            "bad signature (the active kid, another key)",
            Some("bad_signature"),
            |i| {
                let kid = i.active_key(SigningAlg::RS256).kid().to_owned();
                let forger = Arc::new(SigningKey::generate(SigningAlg::RS256, kid));
                i.mint().key(forger).sign()
            },
        ),
        case("signature bytes flipped", Some("bad_signature"), |i| {
            let token = i.mint().sign();
            let (input, sig) = token.rsplit_once('.').unwrap();
            let mut sig = b64d(sig);
            sig[0] ^= 0x01;
            format!("{input}.{}", b64(&sig))
        }),
        case("unknown kid (never published)", Some("unknown_key"), |i| {
            let stranger = Arc::new(SigningKey::generate(SigningAlg::RS256, "never-published"));
            i.mint().key(stranger).sign()
        }),
        // Two RS256 keys are published since the rotation row.
        case(
            "no kid (two RS256 keys published)",
            Some("ambiguous_key"),
            |i| i.mint().without_header("kid").sign(),
        ),
        case(
            "kid with path characters (`../../jwks`)",
            Some("unknown_key"),
            |i| {
                let stranger = Arc::new(SigningKey::generate(SigningAlg::RS256, "../../jwks"));
                i.mint().key(stranger).sign()
            },
        ),
        case(
            "alg RS256 on the ES256 key's kid",
            Some("unknown_key"),
            |i| {
                let kid = i.active_key(SigningAlg::ES256).kid().to_owned();
                i.mint().header("kid", json!(kid)).sign()
            },
        ),
        case(
            "alg none, no signature",
            Some("unsupported_algorithm"),
            |i| {
                i.mint()
                    .header("alg", json!("none"))
                    .sign_with_signature(&[])
            },
        ),
        case(
            "HS256 keyed with the RS256 public key (PEM)",
            Some("unsupported_algorithm"),
            |i| {
                let pem = rsa_public_pem(&i.active_key(SigningAlg::RS256).public_jwk());
                let builder = i.mint().header("alg", json!("HS256"));
                let input = builder.signing_input();
                let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, pem.as_bytes());
                let sig = aws_lc_rs::hmac::sign(&key, input.as_bytes());
                builder.sign_with_signature(sig.as_ref())
            },
        ),
        case(
            "RS256 with a published 1024-bit key",
            Some("unknown_key"),
            |i| {
                let weak = i.publish(SigningKey::weak_rsa_1024("weak-1024"));
                i.mint().key(weak).sign()
            },
        ),
        case(
            "`jku` naming another JWKS, signed by a key only it holds",
            Some("unknown_key"),
            |i| {
                let attacker = Arc::new(SigningKey::generate(SigningAlg::RS256, "attacker"));
                i.mint()
                    .key(attacker)
                    .header("jku", json!("http://127.0.0.1:1/jwks"))
                    .sign()
            },
        ),
        case("`jku` on a well-signed token", None, |i| {
            i.mint()
                .header("jku", json!(format!("{}/jwks", i.issuer())))
                .sign()
        }),
        case("`x5u` on a well-signed token", None, |i| {
            i.mint()
                .header("x5u", json!("http://127.0.0.1:1/cert.pem"))
                .sign()
        }),
        case(
            "`crit` naming an unknown header",
            Some("critical_header"),
            |i| {
                i.mint()
                    .header("crit", json!(["x-poolgate-test"]))
                    .header("x-poolgate-test", json!(1))
                    .sign()
            },
        ),
        case(
            "duplicate `aud` (`other`, then `kafka`)",
            Some("malformed"),
            |i| {
                let key = i.active_key(SigningAlg::RS256);
                let header = format!(r#"{{"alg":"RS256","typ":"JWT","kid":"{}"}}"#, key.kid());
                let iat = now().as_secs();
                let claims = format!(
                    r#"{{"iss":"{}","sub":"svc-test","aud":"other","aud":"kafka","iat":{iat},"exp":{}}}"#,
                    i.issuer(),
                    iat + 3600
                );
                raw_jws(&header, &claims, &key)
            },
        ),
        case(
            "duplicate `alg` in the header (`none`, then `RS256`)",
            Some("malformed"),
            |i| {
                let key = i.active_key(SigningAlg::RS256);
                let header = format!(
                    r#"{{"alg":"none","alg":"RS256","typ":"JWT","kid":"{}"}}"#,
                    key.kid()
                );
                let iat = now().as_secs();
                let claims = format!(
                    r#"{{"iss":"{}","sub":"svc-test","aud":"kafka","iat":{iat},"exp":{}}}"#,
                    i.issuer(),
                    iat + 3600
                );
                raw_jws(&header, &claims, &key)
            },
        ),
        case("a JWE (five parts)", Some("malformed"), |i| {
            let token = i.mint().sign();
            format!("{token}.AAAA.BBBB")
        }),
    ]
}

/// The client-first message both sides get.
fn client_first(token: &str) -> Vec<u8> {
    ClientFirstMessage::new(token)
        .extension("logicalCluster", CLUSTER)
        .build()
        .unwrap()
        .to_bytes()
}

/// One login over a new connection to `addr`: accepted when SaslAuthenticate succeeds and a
/// Metadata request then gets an answer listing the brokers; refused when the server sends an
/// error challenge and then fails the exchange, or fails it at once, or closes.
async fn login(addr: &str, token: &str) -> Outcome {
    tokio::time::timeout(WAIT, async {
        let mut client = KafkaClient::connect(addr).await.unwrap();
        let first = match client.sasl_oauthbearer(&client_first(token)).await {
            Ok(r) => r,
            Err(e) if e.is_closed() => return Outcome::Refuse("closed".to_owned()),
            Err(e) => panic!("{addr}: {e}"),
        };
        if first.error_code != 0 {
            return Outcome::Refuse(format!("error {}", first.error_code));
        }
        if !first.auth_bytes.is_empty() {
            // The RFC 7628 error challenge; acknowledge it, as a client does.
            let challenge = String::from_utf8_lossy(&first.auth_bytes).into_owned();
            assert!(challenge.contains("invalid_token"), "{addr}: {challenge}");
            return match client.sasl_authenticate(&[0x01]).await {
                Ok(r) => {
                    assert_eq!(r.error_code, SASL_AUTHENTICATION_FAILED, "{addr}: {r:?}");
                    Outcome::Refuse(String::new())
                }
                Err(e) if e.is_closed() => Outcome::Refuse(String::new()),
                Err(e) => panic!("{addr}: {e}"),
            };
        }
        let mut metadata = MetadataRequest::default();
        metadata.topics = Some(Vec::new());
        let metadata = client.call(12, metadata).await.unwrap();
        assert!(!metadata.brokers.is_empty(), "{addr}: {metadata:?}");
        Outcome::Accept
    })
    .await
    .unwrap_or_else(|_| panic!("{addr}: no answer to a login within {WAIT:?}"))
}

/// The `poolgate_logins_total` samples, by `outcome="..",reason=".."` labels.
fn login_counts(gateway: &GatewayProcess) -> BTreeMap<String, u64> {
    gateway
        .metrics()
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("poolgate_logins_total{"))
        .filter_map(|l| {
            let (labels, value) = l.split_once("} ")?;
            Some((labels.to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

/// poolgate's answer to `token`, with the reason its metrics counted for it.
async fn poolgate_login(gateway: &GatewayProcess, token: &str) -> Outcome {
    let before = login_counts(gateway);
    let outcome = login(gateway.addr(), token).await;
    // The counter moves when the gateway decides, which is before the client hears; wait
    // for it (bounded) rather than assume it.
    let deadline = Instant::now() + WAIT;
    let moved = loop {
        let after = login_counts(gateway);
        let moved: Vec<String> = after
            .iter()
            .filter(|(k, v)| before.get(*k).copied().unwrap_or(0) < **v)
            .map(|(k, _)| k.clone())
            .collect();
        if !moved.is_empty() || Instant::now() > deadline {
            break moved;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(moved.len(), 1, "one login counted: {moved:?}");
    let reason = moved[0]
        .split_once("reason=\"")
        .and_then(|(_, r)| r.strip_suffix('"'))
        .unwrap()
        .to_owned();
    match outcome {
        Outcome::Accept => {
            assert_eq!(reason, "ok");
            Outcome::Accept
        }
        Outcome::Refuse(_) => Outcome::Refuse(reason),
    }
}

/// Why Kafka's node 1 refused, from the warnings it logged since `from` (a byte offset of its
/// log, moved to the end): jose4j's "Additional details" (or the exception it names), else
/// the warning's first words. The warnings themselves are appended to `warnings`.
fn kafka_reason(cluster: &KafkaCluster, from: &mut usize, warnings: &mut String) -> String {
    let log = std::fs::read_to_string(cluster.dir().join("node-1/stdout.log")).unwrap_or_default();
    let new = log.get(*from..).unwrap_or_default().to_owned();
    *from = log.len();
    new.lines()
        .filter(|l| l.starts_with('[') && l.contains("] WARN "))
        .map(|l| {
            warnings.push_str(l);
            warnings.push('\n');
            if let Some((_, details)) = l.split_once("Additional details: [[") {
                // `N] what.]`: jose4j's error code and message.
                let details = details.split_once("] ").map_or(details, |(_, d)| d);
                let details = match details.split_once("(cause: ") {
                    // `Unable to process JOSE object (cause: some.Exception: what): ...`
                    Some((_, cause)) => cause.split_once(": ").map_or(cause, |(_, c)| c),
                    None => details,
                };
                let end = details.find(".]").unwrap_or_else(|| {
                    ["]", ": JsonWebSignature", " w/ header", "):"]
                        .iter()
                        .filter_map(|end| details.find(end))
                        .min()
                        .unwrap_or(details.len())
                });
                clip(&details[..end])
            } else {
                let l = l.split_once("] WARN ").map_or(l, |(_, rest)| rest);
                clip(l.rsplit_once(" (").map_or(l, |(msg, _)| msg))
            }
        })
        .collect::<Vec<_>>()
        .join(" / ")
}

/// At most 110 characters, and no `|` (a table cell).
fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(110).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out.replace('|', "/")
}

#[test]
#[ignore = "needs e2e/setup (Apache Kafka's jars, Java 17); run e2e/run"]
fn poolgate_and_kafkas_validator_answer_one_table_of_tokens() {
    let libs = kafka_libs().expect("no Apache Kafka: run e2e/setup first (or e2e/run)");
    let rt = support::runtime(1);
    let issuer = rt.block_on(TestIssuer::start()).unwrap();
    let jwks = issuer.jwks_url().to_string();
    let prefix = format!("listener.name.{}.", LISTENER.to_lowercase());
    let properties = vec![
        (
            format!("{prefix}sasl.enabled.mechanisms"),
            "OAUTHBEARER".to_owned(),
        ),
        (
            format!("{prefix}oauthbearer.sasl.jaas.config"),
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required ;"
                .to_owned(),
        ),
        (
            format!("{prefix}oauthbearer.sasl.server.callback.handler.class"),
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler"
                .to_owned(),
        ),
        (
            "sasl.enabled.mechanisms".to_owned(),
            "OAUTHBEARER".to_owned(),
        ),
        (
            "sasl.oauthbearer.jwks.endpoint.url".to_owned(),
            jwks.clone(),
        ),
        (
            "sasl.oauthbearer.expected.audience".to_owned(),
            "kafka".to_owned(),
        ),
        (
            "sasl.oauthbearer.expected.issuer".to_owned(),
            issuer.issuer().to_owned(),
        ),
    ];
    let started = Instant::now();
    let cluster = KafkaCluster::start_with_options(
        &libs,
        3,
        Options {
            properties,
            listener: Some((LISTENER.to_owned(), "SASL_PLAINTEXT".to_owned())),
            // Kafka 4 fetches only from URLs listed here.
            system_properties: vec![(ALLOWED_URLS.to_owned(), jwks)],
            ..Options::default()
        },
    )
    .unwrap();
    eprintln!(
        "kafka cluster with an OAUTHBEARER listener up in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let kafka = cluster.listener_addr(1).unwrap().to_owned();
    assert_ne!(kafka, cluster.broker_addr(1).unwrap());

    let dir = TempDir::new("kafka-validator");
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        GATEWAY_TOML
            .replace("{issuer}", issuer.issuer())
            .replace("{discovery_url}", issuer.discovery_url().as_str()),
    )
    .unwrap();
    let gateway = support::spawn_gateway(&config, cluster.broker_addr(1).unwrap(), &[]);

    let mut log_from = 0;
    let mut warnings = String::new();
    let _ = kafka_reason(&cluster, &mut log_from, &mut warnings);
    let mut table = String::from(
        "| token | poolgate | Kafka's OAuthBearerValidatorCallbackHandler | Kafka's log | \
         whole token in Kafka's log |\n|---|---|---|---|---|\n",
    );
    let mut differ = Vec::new();
    let mut wrong = Vec::new();
    for case in cases() {
        let token = (case.token)(&issuer);
        let ours = rt.block_on(poolgate_login(&gateway, &token));
        let expected = match case.poolgate {
            None => Outcome::Accept,
            Some(code) => Outcome::Refuse(code.to_owned()),
        };
        if ours != expected {
            wrong.push(format!(
                "{}: poolgate answered {}, expected {}",
                case.name,
                ours.cell(),
                expected.cell()
            ));
        }
        let jwks_before = issuer.counts().jwks;
        let warnings_from = warnings.len();
        let theirs = rt.block_on(login(&kafka, &token));
        let mut kafka_cell = theirs.cell();
        let why = kafka_reason(&cluster, &mut log_from, &mut warnings);
        let mut kafka_final = theirs.clone();
        if case.kafka_retries && !theirs.accepted() {
            // Kafka refuses while it refreshes its JWKS in the background: ask again until it
            // has fetched (the issuer counts the request) and accepts, or the wait is over.
            let deadline = Instant::now() + WAIT;
            let mut attempts = 1;
            while Instant::now() < deadline {
                if issuer.counts().jwks > jwks_before {
                    attempts += 1;
                    kafka_final = rt.block_on(login(&kafka, &token));
                    if kafka_final.accepted() {
                        break;
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = kafka_reason(&cluster, &mut log_from, &mut warnings);
            kafka_cell = format!(
                "{kafka_cell}, then {} (attempt {attempts}, after its background JWKS fetch)",
                kafka_final.cell()
            );
        }
        // Whether Kafka wrote the whole token (signature included) into its log.
        let logged = if warnings[warnings_from..].contains(&token) {
            "**yes**"
        } else {
            "no"
        };
        if case.name == "valid RS256" {
            // Else the listener is misconfigured and the table says nothing.
            assert!(
                ours.accepted() && theirs.accepted(),
                "{ours:?} {theirs:?}: {why}"
            );
        }
        if ours.accepted() != theirs.accepted() || ours.accepted() != kafka_final.accepted() {
            differ.push(case.name);
        }
        writeln!(
            table,
            "| {} | {} | {} | {} | {logged} |",
            case.name,
            ours.cell(),
            kafka_cell,
            why
        )
        .unwrap();
    }
    let _ = writeln!(table, "\nRows where the two differ: {}", differ.len());
    for name in &differ {
        let _ = writeln!(table, "- {name}");
    }
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("kafka-validator.md");
    std::fs::write(&out, &table).unwrap();
    std::fs::write(out.with_extension("kafka.log"), &warnings).unwrap();
    println!("{table}\n(written to {})", out.display());
    drop(gateway);
    drop(cluster);
    assert!(
        wrong.is_empty(),
        "poolgate answered otherwise:\n{}",
        wrong.join("\n")
    );
    // Every difference is explained in the README's section on this table.
    let readme = std::fs::read_to_string("README.md").unwrap();
    let section = readme
        .split_once("### poolgate vs Kafka's OAuthBearerValidatorCallbackHandler")
        .map(|(_, rest)| rest.split_once("\n### ").map_or(rest, |(s, _)| s))
        .expect("the README's section on the differential table");
    for name in differ {
        assert!(
            section.contains(&format!("| {name} |")),
            "the README does not explain the row `{name}`"
        );
    }
}
