//! The `poolgate` binary end to end: each command run as a process against a real local issuer
//! and the configurations under `testdata/`, asserting on JSON fields, stderr and exit codes.
#![cfg(feature = "cli")]

use std::io::{BufRead as _, BufReader, Read, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use poolgate::UnixTime;
use poolgate::cli::parse_clients;
use poolgate::sasl::ClientFirstMessage;
use poolgate::testkit::{
    Fault, HostileProxy, IssuerConfig, SigningAlg, SigningKey, TestIssuer, TokenBuilder,
};
use serde_json::{Value, json};

const CLIENTS: &str = include_str!("../testdata/cli/clients.toml");

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_poolgate"));
    c.env("NO_COLOR", "1").env_remove("RUST_LOG");
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output_within()
}

fn run_stdin(args: &[&str], input: &[u8]) -> Output {
    Running::spawn(bin().args(args).stdin(Stdio::piped())).output(input)
}

/// How long one `poolgate` process may take before the test fails; it is then killed.
const WAIT: Duration = Duration::from_secs(60);

/// A `poolgate` process this test started: killed (through its handle, so by its id) and
/// reaped when dropped, so also when the test fails or times out.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Running {
    /// Starts `c` with stdout and stderr piped (stdin as `c` says, else closed).
    fn spawn(c: &mut Command) -> Running {
        let child = c
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{c:?}: {e}"));
        Running(child)
    }

    /// Writes `input` on its stdin (when piped) and closes it, then waits at most [`WAIT`]
    /// for the process to finish; its output. Panics (the drop kills it) when it takes longer.
    fn output(mut self, input: &[u8]) -> Output {
        let (tx, rx) = std::sync::mpsc::channel();
        if let Some(mut stdin) = self.0.stdin.take() {
            let input = input.to_vec();
            // A process that exits without reading it all is fine.
            std::thread::spawn(move || drop(stdin.write_all(&input)));
        }
        let pipes: [Option<Box<dyn Read + Send>>; 2] = [
            self.0.stdout.take().map(|p| Box::new(p) as _),
            self.0.stderr.take().map(|p| Box::new(p) as _),
        ];
        for (which, pipe) in pipes.into_iter().enumerate() {
            let tx = tx.clone();
            let mut pipe = pipe.unwrap();
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = pipe.read_to_end(&mut bytes);
                let _ = tx.send((which, bytes));
            });
        }
        // Both pipes close when the process exits.
        let deadline = Instant::now() + WAIT;
        let mut out = [Vec::new(), Vec::new()];
        for _ in 0..2 {
            let left = deadline.saturating_duration_since(Instant::now());
            let (which, bytes) = rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("process {} still running after {WAIT:?}", self.0.id()));
            out[which] = bytes;
        }
        let status = self.0.wait().unwrap();
        let [stdout, stderr] = out;
        Output {
            status,
            stdout,
            stderr,
        }
    }

    /// The first line on its stdout, waiting at most [`WAIT`]; the rest is read and dropped.
    fn first_line(&mut self) -> String {
        let stdout = self.0.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            lines.for_each(drop);
        });
        match rx.recv_timeout(WAIT) {
            Ok(Some(Ok(line))) => line,
            Ok(other) => panic!("no first line: {other:?}"),
            Err(_) => panic!("no line from process {} within {WAIT:?}", self.0.id()),
        }
    }
}

/// [`Command::output`], within [`WAIT`].
trait OutputWithin {
    fn output_within(&mut self) -> Output;
}

impl OutputWithin for Command {
    fn output_within(&mut self) -> Output {
        Running::spawn(self.stdin(Stdio::null())).output(&[])
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn json_lines(o: &Output) -> Vec<Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// A temporary folder for one test.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("poolgate-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Removes a temporary folder when dropped.
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A live issuer (on its own runtime, which keeps serving while the binary runs) and the demo
/// configuration pointed at it.
struct Env {
    issuer: TestIssuer,
    config: PathBuf,
    dir: PathBuf,
    // Declared last: dropped after the issuer.
    _rt: tokio::runtime::Runtime,
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Env {
    fn new(name: &str) -> Env {
        Env::with(name, |_| {})
    }

    fn with(name: &str, setup: impl FnOnce(&TestIssuer)) -> Env {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let clients = parse_clients(CLIENTS, "clients.toml").unwrap();
        let issuer = rt
            .block_on(TestIssuer::start_with(IssuerConfig {
                clients,
                ..IssuerConfig::default()
            }))
            .unwrap();
        setup(&issuer);
        let dir = temp_dir(name);
        let config = dir.join("demo.toml");
        let text = std::fs::read_to_string("testdata/demo.toml")
            .unwrap()
            .replace("{issuer}", issuer.issuer())
            .replace("{discovery_url}", issuer.discovery_url().as_str());
        std::fs::write(&config, text).unwrap();
        Env {
            issuer,
            config,
            dir,
            _rt: rt,
        }
    }

    fn config(&self) -> &str {
        self.config.to_str().unwrap()
    }

    /// A token as the token endpoint gives `svc-analytics`.
    fn analyst(&self) -> TokenBuilder {
        self.issuer
            .mint()
            .claim("sub", json!("svc-analytics"))
            .claim("client_id", json!("svc-analytics"))
            .claim("groups", json!(["analytics"]))
            .claim("tenant", json!("acme"))
    }

    fn write(&self, name: &str, content: impl AsRef<[u8]>) -> String {
        let path = self.dir.join(name);
        std::fs::write(&path, content).unwrap();
        path.to_str().unwrap().to_owned()
    }
}

#[test]
fn demo_runs_with_nothing_set_up_and_prints_the_matrix() {
    let o = run(&["demo"]);
    assert_eq!(code(&o), 0, "{}\n{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    for want in [
        "Logins",
        "analytics",
        "ops",
        "orders",
        "taken",
        "no_pool_matched",
        "unknown_pool",
        "wrong_cluster",
        "expired",
        "audience_mismatch",
        "bad_signature",
        "key just rotated in",
        "unknown_key",
        "principals User:analytics, User:ops",
        "allow Read,Describe on Topic:analytics-*",
        "Authorization",
        "denied by grant 3 of pool `analytics`",
        "{\"status\":\"invalid_token\",\"scope\":\"kafka\"}",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
    assert!(!out.contains("\x1b["), "no colour when not a terminal");

    let o = run(&["demo", "--format", "json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let lines = json_lines(&o);
    // The same sections as the human output, in its order, every record typed.
    let types: Vec<&str> = lines.iter().map(|l| l["type"].as_str().unwrap()).collect();
    let mut order = types.clone();
    order.dedup();
    assert_eq!(
        order,
        [
            "setup",
            "login",
            "session",
            "rejection",
            "rotation",
            "authorization"
        ]
    );
    let count = |t: &str| types.iter().filter(|x| **x == t).count();
    let section = |title: &str| -> Vec<&str> {
        let start = out.find(title).unwrap_or_else(|| panic!("{title}"));
        out[start..]
            .lines()
            .skip(1)
            .take_while(|l| !l.is_empty())
            .collect()
    };
    let logins = section("Logins: ");
    // A note line, the column headers, the rows, two legend lines.
    assert_eq!(count("login"), logins.len() - 4, "{logins:#?}");
    let sessions = section("Sessions");
    let session_heads = sessions.iter().filter(|l| !l.starts_with("      ")).count();
    assert_eq!(count("session"), session_heads, "{sessions:#?}");
    let rejections = section("Rejections");
    // The rows, then the challenge line.
    assert_eq!(count("rejection"), rejections.len() - 1, "{rejections:#?}");
    assert_eq!(count("session") + count("rejection"), count("login"));
    let authz = section("Authorization");
    assert_eq!(count("authorization"), authz.len() - 1, "{authz:#?}");
    assert_eq!(count("setup"), 1);
    assert_eq!(count("rotation"), 1);

    // Each run has its own issuer port and rotated key: compare the shapes.
    let setup = &lines[0];
    let issuer = setup["issuer"].as_str().unwrap();
    assert!(issuer.starts_with("http://127.0.0.1:"), "{setup}");
    assert_eq!(setup["token_endpoint"], format!("{issuer}/token"));
    assert!(
        out.contains("  issuer           http://127.0.0.1:"),
        "{out}"
    );
    assert_eq!(setup["logical_cluster"], "lkc-demo");
    assert!(out.contains("  logical cluster  lkc-demo\n"), "{out}");
    assert_eq!(setup["pools"], json!(["analytics", "ops", "orders"]));
    assert!(
        out.contains("  pools            analytics, ops, orders\n"),
        "{out}"
    );
    let rotation = lines.iter().find(|l| l["type"] == "rotation").unwrap();
    assert!(
        rotation["new_kid"].as_str().unwrap().starts_with("rs256-"),
        "{rotation}"
    );
    assert!(out.contains("rotated in key `rs256-"), "{out}");
    let refetches = &rotation["unknown_kid_refetches"];
    assert!(out.contains(&format!(
        "unknown-kid refetches: {} -> {}",
        refetches["before"], refetches["after"]
    )));
    // Authorization records carry the deciding grant, as `authorize` prints it.
    let denied = lines
        .iter()
        .find(|l| l["type"] == "authorization" && l["resource"] == "Topic:analytics-secret")
        .unwrap();
    assert_eq!(denied["decision"], "deny");
    assert_eq!(denied["grant"]["effect"], "deny");
    assert_eq!(denied["grant"]["pool"], "analytics");
    assert_eq!(denied["grant"]["position"], 3);
    let rejection = lines.iter().find(|l| l["type"] == "rejection").unwrap();
    assert!(out.contains(rejection["message"].as_str().unwrap()));
    let rotated = lines
        .iter()
        .find(|l| l["token"] == "key just rotated in")
        .unwrap();
    assert_eq!(rotated["sasl"]["accepted"], true);
    assert_eq!(rotated["check"]["authenticated"], true);
    let forged = lines
        .iter()
        .find(|l| l["token"] == "forged signature")
        .unwrap();
    assert_eq!(forged["sasl"]["code"], "bad_signature");
    assert!(lines.iter().any(|l| l["decision"] == "deny"));
}

#[test]
fn check_prints_the_json_contract() {
    let env = Env::new("check-json");
    let token = env.analyst().sign();
    let o = run(&[
        "check",
        "--config",
        env.config(),
        "--token",
        &token,
        "--format",
        "json",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let lines = json_lines(&o);
    assert_eq!(lines.len(), 1, "one token: no summary record");
    let r = &lines[0];
    assert_eq!(r["type"], "token");
    assert_eq!(r["index"], 0);
    assert_eq!(r["line"], Value::Null);
    assert_eq!(r["authenticated"], true);
    assert_eq!(r["error"], Value::Null);
    assert_eq!(r["issuer"], env.issuer.issuer());
    assert_eq!(r["subject"], "svc-analytics");
    assert!(
        UnixTime::parse(r["expires_at"].as_str().unwrap()).is_ok(),
        "{}",
        r["expires_at"]
    );
    let pools = r["pools"].as_array().unwrap();
    assert_eq!(pools.len(), 3);
    assert_eq!(
        pools[0],
        json!({"id": "analytics", "matched": true, "identity": "svc-analytics",
               "principal": "User:analytics", "reason": null})
    );
    assert_eq!(pools[1]["matched"], false);
    assert_eq!(pools[1]["reason"], "filter is false");
    assert_eq!(r["principals"], json!(["User:analytics"]));
    assert_eq!(
        r["permissions"][0],
        json!({"effect": "allow", "operations": ["Read", "Describe"], "resource_type": "Topic",
               "pattern": "prefixed", "name": "analytics-"})
    );
    assert_eq!(r["permissions"][2]["effect"], "deny");
    assert_eq!(r["diagnostics"], json!([]));

    // Human output: a table, no colour without a terminal.
    let o = run(&["check", "--config", env.config(), "--token", &token]);
    assert_eq!(code(&o), 0);
    let out = stdout(&o);
    assert!(
        out.contains("token 0  accepted  sub svc-analytics"),
        "{out}"
    );
    assert!(
        out.contains("analytics  yes    svc-analytics  User:analytics"),
        "{out}"
    );
    assert!(!out.contains("\x1b["));
}

#[test]
fn check_exit_codes_follow_the_batch() {
    let env = Env::new("check-codes");
    let good = env.analyst().sign();
    let ops = env
        .issuer
        .mint()
        .claim("sub", json!("ops-bot"))
        .claim("client_id", json!("ops-bot"))
        .claim("groups", json!(["ops", "analytics"]))
        .sign();
    let args = |extra: &[&str]| {
        let mut a = vec!["check", "--config", env.config(), "--format", "json"];
        a.extend_from_slice(extra);
        a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let run_v = |v: Vec<String>| bin().args(&v).output_within();

    let o = run_v(args(&["--token", &good, "--token", &ops]));
    assert_eq!(code(&o), 0);
    let lines = json_lines(&o);
    assert_eq!(lines[1]["index"], 1);
    assert_eq!(
        lines[1]["principals"],
        json!(["User:analytics", "User:ops"])
    );
    // The ops identity comes from client_id; the missing tenant drops a grant, reported.
    assert_eq!(lines[1]["pools"][1]["identity"], "ops-bot");
    assert!(
        lines[1]["diagnostics"][0]
            .as_str()
            .unwrap()
            .contains("claim `tenant` is missing")
    );

    // A malformed token: exit 1, code malformed.
    let o = run_v(args(&["--token", &good, "--token", "not.a-token"]));
    assert_eq!(code(&o), 1);
    let lines = json_lines(&o);
    assert_eq!(lines[0]["authenticated"], true);
    assert_eq!(lines[1]["authenticated"], false);
    assert_eq!(lines[1]["error"]["code"], "malformed");
    assert_eq!(lines[1]["issuer"], Value::Null);
    assert_eq!(lines[1]["pools"][0]["reason"], "token rejected: malformed");

    // Rejections the verification makes.
    let cases: Vec<(String, &str)> = vec![
        (
            env.analyst().claim("aud", json!("other")).sign(),
            "audience_mismatch",
        ),
        (
            env.analyst()
                .issued_at(UnixTime::now() - Duration::from_secs(7200))
                .sign(),
            "expired",
        ),
        (
            env.analyst()
                .key(Arc::new(SigningKey::generate(
                    SigningAlg::RS256,
                    env.issuer.active_key(SigningAlg::RS256).kid(),
                )))
                .sign(),
            "bad_signature",
        ),
        (
            env.issuer
                .mint()
                .claim("sub", json!("svc-marketing"))
                .claim("groups", json!(["marketing"]))
                .sign(),
            "no_pool_matched",
        ),
    ];
    for (token, want) in cases {
        let o = run_v(args(&["--token", &token]));
        assert_eq!(code(&o), 1, "{want}");
        assert_eq!(json_lines(&o)[0]["error"]["code"], want);
    }

    // The SASL extensions.
    for (extra, want) in [
        (vec!["--pool", "orders"], "no_pool_matched"),
        (vec!["--pool", "payments"], "unknown_pool"),
        (vec!["--logical-cluster", "lkc-other"], "wrong_cluster"),
    ] {
        let mut a = extra.clone();
        a.extend(["--token", good.as_str()]);
        let o = run_v(args(&a));
        assert_eq!(code(&o), 1, "{extra:?}");
        assert_eq!(json_lines(&o)[0]["error"]["code"], want, "{extra:?}");
    }
    let o = run_v(args(&[
        "--pool",
        "analytics",
        "--logical-cluster",
        "lkc-demo",
        "--token",
        &ops,
    ]));
    assert_eq!(code(&o), 0);
    let r = &json_lines(&o)[0];
    assert_eq!(r["principals"], json!(["User:analytics"]));
    assert_eq!(r["pools"][1]["matched"], true);
    assert_eq!(r["pools"][1]["principal"], Value::Null);
    assert_eq!(r["pools"][1]["reason"], "not selected by identityPoolId");

    // Refused before any pool was selected: the reason says so, not identityPoolId.
    let o = run_v(args(&["--logical-cluster", "lkc-other", "--token", &good]));
    let r = &json_lines(&o)[0];
    assert_eq!(r["error"]["code"], "wrong_cluster");
    assert_eq!(r["pools"][0]["matched"], true);
    assert_eq!(
        r["pools"][0]["reason"],
        "not taken: the login was refused (wrong_cluster) before pools were selected"
    );
    assert_eq!(r["pools"][1]["reason"], "filter is false");
    let o = run_v(args(&["--pool", "payments", "--token", &good]));
    let r = &json_lines(&o)[0];
    assert_eq!(
        r["pools"][0]["reason"],
        "not taken: the login was refused (unknown_pool) before pools were selected"
    );
    let o = run(&[
        "explain",
        "--config",
        env.config(),
        "--token",
        &good,
        "--logical-cluster",
        "lkc-other",
        "--format",
        "json",
    ]);
    let r = &json_lines(&o)[0];
    assert_eq!(
        r["pools"][0]["reason"],
        "not taken: the login was refused (wrong_cluster) before pools were selected"
    );
    assert_eq!(r["failed_rule"]["rule"], "logicalCluster");
    // A bad token to another cluster: the login refuses it for the cluster first.
    let o = run_v(args(&[
        "--logical-cluster",
        "lkc-other",
        "--token",
        "not.a-token",
    ]));
    let r = &json_lines(&o)[0];
    assert_eq!(r["error"]["code"], "wrong_cluster");
    assert!(
        r["diagnostics"][0]
            .as_str()
            .unwrap()
            .starts_with("the token is rejected too (malformed)"),
        "{r}"
    );

    // Nothing to check is a usage error.
    let o = run_v(args(&[]));
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("nothing to check"), "{}", stderr(&o));
}

#[test]
fn check_tokens_reads_a_file_or_stdin_in_order() {
    let env = Env::new("check-tokens");
    let tokens: Vec<String> = (0..40)
        .map(|i| env.analyst().claim("sub", json!(format!("svc-{i}"))).sign())
        .collect();
    let mut text = String::from("# tokens for the test\n\n");
    for (i, t) in tokens.iter().enumerate() {
        text.push_str(t);
        text.push('\n');
        if i == 5 {
            text.push_str("   \n# a comment between tokens\n");
        }
    }
    text.push_str("garbage\n");
    let file = env.write("tokens.txt", &text);
    let o = run(&[
        "check",
        "--config",
        env.config(),
        "--tokens",
        &file,
        "--format",
        "json",
    ]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let lines = json_lines(&o);
    assert_eq!(lines.len(), 42);
    for (i, l) in lines[..41].iter().enumerate() {
        assert_eq!(l["type"], "token");
        assert_eq!(l["index"], i);
        // The file's own line: two header lines, and two more after the sixth token.
        let line = if i <= 5 { i + 3 } else { i + 5 };
        assert_eq!(l["line"], line, "token {i}");
    }
    assert_eq!(lines[7]["subject"], "svc-7");
    assert_eq!(lines[40]["error"]["code"], "malformed");
    assert_eq!(lines[40]["line"], 45);
    // The batch ends with its totals.
    assert_eq!(
        lines[41],
        json!({"type": "summary", "total": 41, "accepted": 40, "rejected": 1,
               "reasons": {"malformed": 1}})
    );

    // Only the rejected ones, then the totals; or only the totals.
    let batch = |extra: &[&str]| {
        let mut args = vec!["check", "--config", env.config(), "--tokens", &file];
        args.extend_from_slice(extra);
        run(&args)
    };
    let o = batch(&["--rejected-only", "--format", "json"]);
    assert_eq!(code(&o), 1);
    let lines = json_lines(&o);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["line"], 45);
    assert_eq!(lines[0]["index"], 40);
    assert_eq!(lines[1]["type"], "summary");
    assert_eq!(lines[1]["total"], 41);
    let o = batch(&["--summary", "--format", "json"]);
    assert_eq!(code(&o), 1, "the exit code still follows the batch");
    let lines = json_lines(&o);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["type"], "summary");
    let o = batch(&["--summary"]);
    assert_eq!(
        stdout(&o),
        "41 tokens: 40 accepted, 1 rejected (malformed 1)\n"
    );
    let o = batch(&["--rejected-only"]);
    let out = stdout(&o);
    assert!(
        out.starts_with("token 40 (line 45)  rejected: malformed"),
        "{out}"
    );
    assert_eq!(out.matches("token ").count(), 1, "{out}");
    assert!(
        out.ends_with("\n\n41 tokens: 40 accepted, 1 rejected (malformed 1)\n"),
        "{out}"
    );
    let o = batch(&["--summary", "--rejected-only"]);
    assert_eq!(code(&o), 2, "the two are exclusive");

    // --token comes first, then the file; stdin with `-`.
    let o = run_stdin(
        &[
            "check",
            "--config",
            env.config(),
            "--token",
            &tokens[0],
            "--tokens",
            "-",
            "--format",
            "json",
        ],
        format!("# from stdin\n{}\n\n{}\n", tokens[1], tokens[2]).as_bytes(),
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let lines = json_lines(&o);
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[2]["subject"], "svc-2");
    // --token has no line; stdin's lines are counted like a file's.
    assert_eq!(lines[0]["line"], Value::Null);
    assert_eq!(lines[1]["line"], 2);
    assert_eq!(lines[2]["line"], 4);
    assert_eq!(lines[3]["type"], "summary");

    // Human output ends with a summary.
    let o = run(&["check", "--config", env.config(), "--tokens", &file]);
    let out = stdout(&o);
    assert!(
        out.contains("41 tokens: 40 accepted, 1 rejected (malformed 1)"),
        "{out}"
    );

    // Only comments: nothing to check.
    let empty = env.write("empty.txt", "# nothing\n\n");
    let o = run(&["check", "--config", env.config(), "--tokens", &empty]);
    assert_eq!(code(&o), 2);

    // A missing token file.
    let o = run(&[
        "check",
        "--config",
        env.config(),
        "--tokens",
        "/nonexistent/tokens.txt",
    ]);
    assert_eq!(code(&o), 2);
    let err = stderr(&o);
    assert!(
        err.contains("--tokens: cannot read `/nonexistent/tokens.txt`"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn check_sasl_reads_a_raw_client_message() {
    let env = Env::new("check-sasl");
    let token = env.analyst().sign();
    let msg = ClientFirstMessage::new(token)
        .extension("logicalCluster", "lkc-demo")
        .extension("identityPoolId", "analytics")
        .build()
        .unwrap();
    let file = env.write("message.bin", msg.to_bytes());
    let o = run(&[
        "check",
        "--config",
        env.config(),
        "--sasl",
        &file,
        "--format",
        "json",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(json_lines(&o)[0]["principals"], json!(["User:analytics"]));

    let other = ClientFirstMessage::new(env.analyst().sign())
        .extension("logicalCluster", "lkc-elsewhere")
        .build()
        .unwrap();
    let mut bytes = other.to_bytes();
    bytes.push(b'\n');
    let o = run_stdin(
        &[
            "check",
            "--config",
            env.config(),
            "--sasl",
            "-",
            "--format",
            "json",
        ],
        &bytes,
    );
    assert_eq!(code(&o), 1);
    assert_eq!(json_lines(&o)[0]["error"]["code"], "wrong_cluster");

    let bad = env.write("bad.bin", "n,,auth=Bearer x");
    let o = run(&[
        "check",
        "--config",
        env.config(),
        "--sasl",
        &bad,
        "--format",
        "json",
    ]);
    assert_eq!(code(&o), 1);
    assert_eq!(json_lines(&o)[0]["error"]["code"], "malformed_sasl");

    // --sasl replaces the token flags.
    let o = run(&[
        "check",
        "--config",
        env.config(),
        "--sasl",
        &file,
        "--token",
        "x",
    ]);
    assert_eq!(code(&o), 2);
}

#[test]
fn at_fixes_now_and_garbage_is_a_usage_error() {
    let env = Env::new("check-at");
    let token = env.analyst().sign();
    let later = (UnixTime::now() + Duration::from_secs(2 * 3600))
        .as_secs()
        .to_string();
    let check_at = |token: &str, at: &str| {
        run(&[
            "check",
            "--config",
            env.config(),
            "--token",
            token,
            "--at",
            at,
            "--format",
            "json",
        ])
    };
    let o = check_at(&token, &later);
    assert_eq!(code(&o), 1);
    assert_eq!(json_lines(&o)[0]["error"]["code"], "expired");
    // Issued ten minutes ago, checked as of five minutes ago (RFC 3339).
    let older = env
        .analyst()
        .issued_at(UnixTime::now() - Duration::from_secs(600))
        .sign();
    let earlier = (UnixTime::now() - Duration::from_secs(300)).to_rfc3339();
    let o = check_at(&older, &earlier);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // A minute before it was issued, beyond the 30 s skew.
    let before = (UnixTime::now() - Duration::from_secs(660)).to_rfc3339();
    let o = check_at(&older, &before);
    assert_eq!(json_lines(&o)[0]["error"]["code"], "issued_in_future");

    for cmd in ["check", "explain", "authorize"] {
        let mut args = vec![
            cmd,
            "--config",
            env.config(),
            "--token",
            &token,
            "--at",
            "yesterday",
        ];
        if cmd == "authorize" {
            args.extend(["--operation", "Read", "--resource", "Topic:x"]);
        }
        let o = run(&args);
        assert_eq!(code(&o), 2, "{cmd}");
        let err = stderr(&o);
        assert!(
            err.starts_with("error: --at: `yesterday` is neither RFC 3339"),
            "{cmd}: {err}"
        );
    }
    let o = run(&["decode", &token, "--at", "2027-13-01T00:00:00Z"]);
    assert_eq!(code(&o), 2);

    // Milliseconds (as Kafka and Java write time): refused without `ms`, read with it.
    let later_ms = format!("{later}000");
    for cmd in ["check", "explain", "authorize", "decode"] {
        let mut args = vec![cmd];
        if cmd == "decode" {
            args.push(&token);
        } else {
            args.extend(["--config", env.config(), "--token", &token]);
        }
        if cmd == "authorize" {
            args.extend(["--operation", "Read", "--resource", "Topic:x"]);
        }
        args.extend(["--at", &later_ms]);
        let o = run(&args);
        assert_eq!(code(&o), 2, "{cmd}: {}", stdout(&o));
        let err = stderr(&o);
        assert!(
            err.starts_with(&format!(
                "error: --at: `{later_ms}` looks like milliseconds, not unix seconds"
            )) && err.contains(&format!("`{later_ms}ms`")),
            "{cmd}: {err}"
        );
    }
    let o = check_at(&token, &format!("{later_ms}ms"));
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert_eq!(json_lines(&o)[0]["error"]["code"], "expired");
}

/// Tokens pasted wrong keep the code `malformed` and say what is wrong with them.
#[test]
fn malformed_tokens_say_what_they_look_like() {
    let env = Env::new("check-mistakes");
    let token = env.analyst().sign();
    let (head, tail) = token.split_at(20);
    let jwe = "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a2V5.aXY.Y2lwaGVy.dGFn";
    let sasl = format!("n,,\x01auth=Bearer {token}\x01\x01");
    let cases = [
        (format!("Bearer {token}"), "starts with `Bearer `"),
        (
            jwe.to_owned(),
            "this is an encrypted JWT (JWE); poolgate verifies signed JWTs (JWS)",
        ),
        (format!("{head}\n{tail}"), "whitespace or a line break"),
        (format!("\"{token}\""), "wrapped in quotes"),
        (
            format!(r#"{{"access_token": "{token}", "token_type": "Bearer"}}"#),
            "JSON object",
        ),
        (sasl, "SASL/OAUTHBEARER client message"),
        (String::new(), "the token is empty"),
    ];
    for (input, want) in &cases {
        let o = run(&[
            "check",
            "--config",
            env.config(),
            "--token",
            input,
            "--format",
            "json",
        ]);
        assert_eq!(code(&o), 1, "{want}");
        let r = &json_lines(&o)[0];
        assert_eq!(r["error"]["code"], "malformed", "{want}");
        let message = r["error"]["message"].as_str().unwrap();
        assert!(message.contains(want), "{want}: {message}");
        assert!(
            !message.contains(&token[..30]),
            "never the token: {message}"
        );
    }
    // The same words in the human view, and in decode.
    let o = run(&["check", "--config", env.config(), "--token", &cases[0].0]);
    assert!(
        stdout(&o).contains("rejected: malformed  malformed token: it starts with `Bearer `"),
        "{}",
        stdout(&o)
    );
    let o = run(&["decode", jwe, "--format", "json"]);
    assert!(
        json_lines(&o)[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("encrypted JWT (JWE)"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn configuration_errors_name_file_line_and_field() {
    let o = run(&[
        "check",
        "--config",
        "testdata/cli/broken.toml",
        "--token",
        "x",
    ]);
    assert_eq!(code(&o), 2);
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 4, "{err}");
    for want in [
        "error: testdata/cli/broken.toml:6: provider `idp`, field `jwks_uri`: `http://idp.example.com/jwks` is not an https URL",
        "error: testdata/cli/broken.toml:7: provider `idp`, field `clock_skew`",
        "error: testdata/cli/broken.toml:12: pool `analytics`, field `filter`: syntax error",
        "error: testdata/cli/broken.toml:16: pool `ops`, field `provider`: no provider has id `nobody`",
    ] {
        assert!(lines.iter().any(|l| l.starts_with(want)), "{want}\n{err}");
    }

    let o = run(&[
        "config",
        "check",
        "testdata/cli/broken.toml",
        "--format",
        "json",
    ]);
    assert_eq!(code(&o), 2);
    let r = &json_lines(&o)[0];
    assert_eq!(r["ok"], false);
    assert_eq!(r["errors"].as_array().unwrap().len(), 4);
    assert!(
        r["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["line"] == 12 && e["context"] == "pool `analytics`, field `filter`")
    );

    for args in [
        vec![
            "check",
            "--config",
            "/nonexistent/poolgate.toml",
            "--token",
            "x",
        ],
        vec!["config", "check", "/nonexistent/poolgate.toml"],
        vec!["jwks", "--config", "/nonexistent/poolgate.toml"],
        vec![
            "explain",
            "--config",
            "/nonexistent/poolgate.toml",
            "--token",
            "x",
        ],
    ] {
        let o = run(&args);
        assert_eq!(code(&o), 2, "{args:?}");
        let err = stderr(&o);
        assert!(
            err.starts_with("error: /nonexistent/poolgate.toml: cannot read:"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn config_check_prints_a_summary() {
    let env = Env::new("config-check");
    let o = run(&["config", "check", env.config(), "--format", "json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let r = &json_lines(&o)[0];
    assert_eq!(r["ok"], true);
    assert_eq!(r["cluster"]["id"], "lkc-demo");
    assert_eq!(r["providers"][0]["id"], "local-idp");
    assert_eq!(r["providers"][0]["audiences"], json!(["kafka"]));
    let pools: Vec<&str> = r["pools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(pools, ["analytics", "ops", "orders"]);
    assert_eq!(r["pools"][1]["identity_claim"], "claims.client_id");
    let o = run(&["config", "check", env.config()]);
    assert!(stdout(&o).starts_with("ok  "), "{}", stdout(&o));
}

#[test]
fn config_check_reports_every_unknown_field_at_once_with_its_section() {
    let file = "testdata/cli/unknown-fields.toml";
    let o = run(&["config", "check", file]);
    assert_eq!(code(&o), 2);
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().collect();
    let want = [
        "error: testdata/cli/unknown-fields.toml:6: [cluster], field `requre_logical_cluster`: unknown field (did you mean `require_logical_cluster`?)",
        "error: testdata/cli/unknown-fields.toml:13: provider `idp`, field `clock_skew`: `30 seconds` has an unknown unit",
        "error: testdata/cli/unknown-fields.toml:14: provider `idp`, field `refresh`: unknown field, expected one of `id`, `issuer`",
        "error: testdata/cli/unknown-fields.toml:19: pool `analytics`, field `fliter`: unknown field (did you mean `filter`?)",
        "error: testdata/cli/unknown-fields.toml:24: pool `analytics`, grant 1, field `colour`: unknown field",
    ];
    assert_eq!(lines.len(), want.len(), "{err}");
    for (line, want) in lines.iter().zip(want) {
        assert!(line.starts_with(want), "want {want}\n{err}");
    }

    let o = run(&["config", "check", file, "--format", "json"]);
    assert_eq!(code(&o), 2);
    let r = &json_lines(&o)[0];
    assert_eq!(r["ok"], false);
    let errors = r["errors"].as_array().unwrap();
    let located: Vec<(i64, &str, Option<&str>, &str)> = errors
        .iter()
        .map(|e| {
            (
                e["line"].as_i64().unwrap(),
                e["section"].as_str().unwrap(),
                e["id"].as_str(),
                e["field"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        located,
        [
            (6, "[cluster]", None, "requre_logical_cluster"),
            (13, "[[providers]]", Some("idp"), "clock_skew"),
            (14, "[[providers]]", Some("idp"), "refresh"),
            (19, "[[pools]]", Some("analytics"), "fliter"),
            (24, "[[pools.grants]]", Some("analytics"), "colour"),
        ]
    );
    assert_eq!(
        errors[4]["context"],
        "pool `analytics`, grant 1, field `colour`"
    );
}

#[test]
fn config_check_names_the_upstream_login() {
    let env = Env::new("config-check-upstream");
    let mut text = std::fs::read_to_string(env.config()).unwrap();
    text.push_str(
        "\n[gateway.upstream]\nsecurity_protocol = \"SASL_SSL\"\ntls_ca_file = \"ca.pem\"\nsasl_mechanism = \"SCRAM-SHA-512\"\nsasl_username = \"gw\"\nsasl_password_env = \"GW_SECRET_VARIABLE\"\n",
    );
    let config = env.dir.join("upstream.toml");
    std::fs::write(&config, text).unwrap();
    let config = config.to_str().unwrap();
    let o = run(&["config", "check", config, "--format", "json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let upstream = &json_lines(&o)[0]["gateway"]["upstream"];
    assert_eq!(upstream["security_protocol"], "SASL_SSL");
    assert_eq!(upstream["sasl"]["mechanism"], "SCRAM-SHA-512");
    assert_eq!(upstream["sasl"]["username"], "gw");
    let o = run(&["config", "check", config]);
    assert!(
        stdout(&o).contains("upstream  SASL_SSL  SCRAM-SHA-512 as gw\n"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn unknown_subcommands_and_missing_arguments_are_usage_errors() {
    assert_eq!(code(&run(&["frobnicate"])), 2);
    assert_eq!(code(&run(&[])), 2);
    assert_eq!(code(&run(&["check"])), 2);
    assert_eq!(
        code(&run(&["check", "--config", "x", "--format", "xml"])),
        2
    );
    let o = run(&["--help"]);
    assert_eq!(code(&o), 0);
    for cmd in [
        "demo",
        "check",
        "explain",
        "authorize",
        "decode",
        "jwks",
        "config",
        "issuer",
        "token",
    ] {
        assert!(stdout(&o).contains(cmd), "{cmd}");
    }
    let o = run(&["--version"]);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).starts_with("poolgate "));
}

#[test]
fn explain_shows_operands_claims_and_failed_rules() {
    let env = Env::new("explain");
    let token = env.analyst().sign();
    let o = run(&[
        "explain",
        "--config",
        env.config(),
        "--token",
        &token,
        "--format",
        "json",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let r = &json_lines(&o)[0];
    assert_eq!(r["type"], "explanation");
    assert_eq!(r["authenticated"], true);
    assert_eq!(r["failed_rule"], Value::Null);
    let analytics = &r["pools"][0];
    assert_eq!(analytics["decision"], "accepted");
    assert_eq!(analytics["operator"], "&&");
    assert_eq!(
        analytics["operands"],
        json!([
            {"expr": "has(claims.groups)", "value": true, "error": null},
            {"expr": "\"analytics\" in claims.groups", "value": true, "error": null}
        ])
    );
    assert_eq!(
        analytics["claims"][0],
        json!({"claim": "claims.groups", "present": true, "value": ["analytics"]})
    );
    assert_eq!(analytics["identity_claim"], "claims.sub");
    assert_eq!(analytics["identity"], "svc-analytics");
    let ops = &r["pools"][1];
    assert_eq!(ops["decision"], "not matched");
    assert_eq!(ops["operands"][2]["value"], false);
    assert_eq!(ops["identity"], "svc-analytics");

    // A missing claim: the operand errors, and the claim shows as absent.
    let no_groups = env.issuer.mint().claim("sub", json!("svc-x")).sign();
    let o = run(&[
        "explain",
        "--config",
        env.config(),
        "--token",
        &no_groups,
        "--format",
        "json",
    ]);
    assert_eq!(code(&o), 1);
    let r = &json_lines(&o)[0];
    assert_eq!(r["error"]["code"], "no_pool_matched");
    assert_eq!(r["failed_rule"]["rule"], "pools");
    assert_eq!(r["pools"][0]["operands"][0]["value"], false);
    assert_eq!(
        r["pools"][0]["claims"][0],
        json!({"claim": "claims.groups", "present": false, "value": null})
    );

    // Verification failures: the rule, expected against actual.
    let other = env.analyst().claim("aud", json!("other")).sign();
    let o = run(&[
        "explain",
        "--config",
        env.config(),
        "--token",
        &other,
        "--format",
        "json",
    ]);
    assert_eq!(code(&o), 1);
    let r = &json_lines(&o)[0];
    assert_eq!(r["error"]["code"], "audience_mismatch");
    assert_eq!(r["failed_rule"]["rule"], "aud");
    assert_eq!(r["failed_rule"]["expected"], json!(["kafka"]));
    assert_eq!(r["failed_rule"]["actual"], "other");
    assert_eq!(r["pools"][0]["decision"], "not evaluated");

    let later = (UnixTime::now() + Duration::from_secs(3 * 3600)).to_rfc3339();
    let o = run(&[
        "explain",
        "--config",
        env.config(),
        "--token",
        &token,
        "--at",
        &later,
        "--format",
        "json",
    ]);
    let r = &json_lines(&o)[0];
    assert_eq!(r["failed_rule"]["rule"], "exp");
    assert!(
        r["failed_rule"]["expected"]
            .as_str()
            .unwrap()
            .contains(&later),
        "{r}"
    );
    assert!(
        r["failed_rule"]["actual"].as_str().unwrap().contains("ago"),
        "{r}"
    );

    let o = run(&[
        "explain",
        "--config",
        env.config(),
        "--token",
        &token,
        "--pool",
        "orders",
        "--format",
        "json",
    ]);
    let r = &json_lines(&o)[0];
    assert_eq!(r["pools"].as_array().unwrap().len(), 1);
    assert_eq!(r["error"]["code"], "no_pool_matched");

    // Human output.
    let o = run(&["explain", "--config", env.config(), "--token", &other]);
    let out = stdout(&o);
    assert!(out.contains("rejected: audience_mismatch"), "{out}");
    assert!(out.contains("failed rule aud"), "{out}");
    assert!(out.contains("expected  [\"kafka\"]"), "{out}");
    assert!(out.contains("actual    other"), "{out}");
}

#[test]
fn authorize_answers_with_the_deciding_grant() {
    let env = Env::new("authorize");
    let token = env.analyst().sign();
    let ask = |op: &str, resource: &str| {
        run(&[
            "authorize",
            "--config",
            env.config(),
            "--token",
            &token,
            "--operation",
            op,
            "--resource",
            resource,
            "--format",
            "json",
        ])
    };
    let o = ask("Read", "Topic:analytics-clicks");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let r = &json_lines(&o)[0];
    assert_eq!(r["decision"], "allow");
    assert_eq!(r["operation"], "Read");
    assert_eq!(r["resource"], "Topic:analytics-clicks");
    assert_eq!(r["grant"]["pattern"], "prefixed");
    assert_eq!(r["grant"]["name"], "analytics-");
    assert_eq!(r["grant"]["pool"], "analytics");
    assert_eq!(r["grant"]["role"], "DeveloperRead");
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .starts_with("allowed by grant 1 of pool `analytics`")
    );

    let o = ask("Read", "Topic:analytics-secret");
    assert_eq!(code(&o), 1);
    let r = &json_lines(&o)[0];
    assert_eq!(r["decision"], "deny");
    assert_eq!(r["grant"]["effect"], "deny");
    assert_eq!(r["grant"]["position"], 3);

    let o = ask("Write", "Topic:payments");
    assert_eq!(code(&o), 1);
    let r = &json_lines(&o)[0];
    assert_eq!(r["grant"], Value::Null);
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .starts_with("no grant allows it")
    );

    // Unknown names list the valid ones.
    let o = ask("Fly", "Topic:x");
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).starts_with(
            "error: --operation: unknown operation `Fly` (expected Read, Write, Create, Delete, \
             Alter, Describe, ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite or All)"
        ),
        "{}",
        stderr(&o)
    );
    let o = ask("read", "Topic:x");
    assert!(
        stderr(&o).contains("did you mean `Read`?"),
        "{}",
        stderr(&o)
    );
    let o = ask("Read", "Topics:x");
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains(
            "unknown resource type `Topics` (expected Topic, Group, Cluster or TransactionalId)"
        ),
        "{}",
        stderr(&o)
    );
    // A pair Kafka does not define is a usage error, not "denied by default".
    for (op, resource, want) in [
        (
            "Write",
            "Group:g",
            "error: --operation: Write does not apply to groups; valid operations for Group: \
             Read, Delete, Describe, DescribeConfigs, AlterConfigs (or All)",
        ),
        (
            "Read",
            "Cluster:kafka-cluster",
            "error: --operation: Read does not apply to the cluster;",
        ),
        (
            "IdempotentWrite",
            "Topic:orders",
            "error: --operation: IdempotentWrite does not apply to topics;",
        ),
        (
            "Read",
            "TransactionalId:tx",
            "error: --operation: Read does not apply to transactional ids; valid operations \
             for TransactionalId: Write, Describe (or All)",
        ),
    ] {
        let o = ask(op, resource);
        assert_eq!(code(&o), 2, "{op} {resource}: {}", stdout(&o));
        assert!(stderr(&o).starts_with(want), "{}", stderr(&o));
        assert!(stdout(&o).is_empty());
    }
    // Pairs Kafka defines are answered as before.
    for (op, resource) in [("Read", "Group:analytics-readers"), ("All", "Group:x")] {
        let o = ask(op, resource);
        assert!(matches!(code(&o), 0 | 1), "{op} {resource}: {}", stderr(&o));
        assert_eq!(json_lines(&o)[0]["type"], "authorization");
    }
    let o = ask("Read", "Topic:*");
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).starts_with("error: --resource:"),
        "{}",
        stderr(&o)
    );

    // A token that does not authenticate: check's JSON line, exit 1.
    let o = run(&[
        "authorize",
        "--config",
        env.config(),
        "--token",
        "x.y.z",
        "--operation",
        "Read",
        "--resource",
        "Topic:x",
        "--format",
        "json",
    ]);
    assert_eq!(code(&o), 1);
    let r = &json_lines(&o)[0];
    assert_eq!(r["authenticated"], false);
    assert_eq!(r["error"]["code"], "malformed");
}

#[test]
fn decode_marks_claims_as_not_verified() {
    let env = Env::new("decode");
    let token = env
        .analyst()
        .header("jku", json!("https://evil.example"))
        .sign();
    let o = run(&["decode", &token, "--format", "json"]);
    assert_eq!(code(&o), 0);
    let r = &json_lines(&o)[0];
    assert_eq!(r["type"], "decoded");
    assert_eq!(r["verified"], false);
    assert_eq!(r["header"]["alg"], "RS256");
    assert_eq!(r["header"]["jku"], "https://evil.example");
    assert_eq!(r["claims"]["sub"], "svc-analytics");
    assert_eq!(r["expired"], false);
    assert!(r["expires"].as_str().unwrap().starts_with("in "), "{r}");
    let o = run(&["decode", &token]);
    assert!(stdout(&o).starts_with("NOT VERIFIED"), "{}", stdout(&o));

    let o = run(&[
        "decode",
        "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln",
        "--format",
        "json",
    ]);
    assert_eq!(code(&o), 1);
    assert_eq!(json_lines(&o)[0]["error"]["code"], "malformed");
}

#[test]
fn jwks_lists_keys_and_skipped_keys() {
    let env = Env::with("jwks", |issuer| {
        issuer.publish(SigningKey::weak_rsa_1024("weak-1024"));
    });
    let o = run(&["jwks", "--config", env.config(), "--format", "json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let r = &json_lines(&o)[0];
    assert_eq!(r["type"], "key_set");
    assert_eq!(r["provider"], "local-idp");
    assert_eq!(r["jwks_uri"], env.issuer.jwks_url().as_str());
    let keys = r["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 3);
    let rsa = keys.iter().find(|k| k["kty"] == "RSA").unwrap();
    assert_eq!(rsa["size"], 2048);
    assert_eq!(rsa["alg"], "RS256");
    assert_eq!(rsa["use"], "sig");
    assert_eq!(rsa["kid"], env.issuer.active_key(SigningAlg::RS256).kid());
    assert!(keys.iter().any(|k| k["kty"] == "EC" && k["size"] == 256));
    assert!(keys.iter().any(|k| k["kty"] == "OKP"));
    let skipped = r["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0]["kid"], "weak-1024");
    assert!(
        skipped[0]["reason"].as_str().unwrap().contains("1024 bits"),
        "{r}"
    );

    let o = run(&["jwks", "--config", env.config()]);
    assert!(stdout(&o).contains("weak-1024"), "{}", stdout(&o));

    let o = run(&["jwks", "--config", env.config(), "--provider", "nope"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("no provider `nope`"), "{}", stderr(&o));

    env.issuer.set_fault(Fault::Status(503));
    let o = run(&["jwks", "--config", env.config(), "--format", "json"]);
    assert_eq!(code(&o), 1);
    assert_eq!(json_lines(&o)[0]["error"]["code"], "jwks_unavailable");
    assert!(stderr(&o).contains("HTTP 503"), "{}", stderr(&o));
}

/// Every variable that names a proxy, pointed at `proxy`; no `NO_PROXY`.
fn with_proxy(mut c: Command, proxy: &str) -> Command {
    for var in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        c.env(var, proxy);
    }
    c.env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .env_remove("REQUEST_METHOD");
    c
}

#[test]
fn loopback_key_fetches_never_go_through_a_proxy() {
    let env = Env::new("hostile-proxy");
    let genuine = env.issuer.active_key(SigningAlg::ES256);
    // The proxy publishes its own key under the issuer's kid.
    let forged = Arc::new(SigningKey::generate(SigningAlg::ES256, genuine.kid()));
    let proxy = env
        ._rt
        .block_on(HostileProxy::start(Arc::clone(&forged)))
        .unwrap();
    let good = env.analyst().alg(SigningAlg::ES256).sign();
    let bad = env.analyst().alg(SigningAlg::ES256).key(forged).sign();
    let o = with_proxy(bin(), &proxy.url())
        .args([
            "check",
            "--config",
            env.config(),
            "--token",
            &good,
            "--token",
            &bad,
            "--format",
            "json",
        ])
        .output_within();
    let lines = json_lines(&o);
    assert_eq!(proxy.requests(), 0, "{}", stdout(&o));
    assert_eq!(lines[0]["authenticated"], true, "{}", lines[0]);
    assert_eq!(lines[1]["authenticated"], false, "{}", lines[1]);
    assert_eq!(lines[1]["error"]["code"], "bad_signature", "{}", lines[1]);

    // The token request, with the client secret in it, does not go to the proxy either.
    let o = with_proxy(bin(), &proxy.url())
        .args([
            "token",
            "--issuer",
            env.issuer.issuer(),
            "--client-id",
            "svc-analytics",
            "--client-secret",
            "svc-analytics-secret",
        ])
        .output_within();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(proxy.requests(), 0);
    assert_eq!(env.issuer.counts().token, 1);
}

#[test]
fn jwks_shows_the_proxy_each_provider_uses_without_credentials() {
    let env = Env::new("jwks-proxy");
    // A proxy address nothing listens on: the port is held by a socket bound for the test's
    // length that never listens, so connections to it are refused.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = socket.local_addr().unwrap().port();
    let closed = format!("http://user:hunter2@127.0.0.1:{port}");
    let remote = env.write(
        "remote.toml",
        r#"
[[providers]]
id = "remote"
issuer = "https://idp.example.com"
jwks_uri = "https://idp.example.com/jwks"
audiences = ["kafka"]

[[providers]]
id = "bypassed"
issuer = "https://keys.internal.example"
jwks_uri = "https://keys.internal.example/jwks"
audiences = ["kafka"]
"#,
    );

    // Plain http on loopback: direct, whatever the environment says.
    let o = with_proxy(bin(), &closed)
        .args(["jwks", "--config", env.config(), "--format", "json"])
        .output_within();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let r = &json_lines(&o)[0];
    assert_eq!(r["proxy"][0]["url"], env.issuer.discovery_url().as_str());
    assert_eq!(r["proxy"][0]["via"], Value::Null);
    assert_eq!(
        r["proxy"][0]["detail"],
        "none (plain http on loopback is always fetched directly)"
    );
    assert_eq!(r["proxy"][1]["url"], env.issuer.jwks_url().as_str());
    assert_eq!(r["proxy"][1]["via"], Value::Null);
    let o = with_proxy(bin(), &closed)
        .args(["jwks", "--config", env.config()])
        .output_within();
    assert!(
        stdout(&o).contains("  proxy   none (plain http on loopback is always fetched directly)\n"),
        "{}",
        stdout(&o)
    );

    // https: through HTTPS_PROXY, credentials redacted; NO_PROXY is honoured.
    let shown = closed.replace("user:hunter2@", "***@");
    let o = with_proxy(bin(), &closed)
        .env("NO_PROXY", "internal.example")
        .args(["jwks", "--config", &remote, "--format", "json"])
        .output_within();
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(!stdout(&o).contains("hunter2"), "{}", stdout(&o));
    assert!(!stderr(&o).contains("hunter2"), "{}", stderr(&o));
    let lines = json_lines(&o);
    assert_eq!(lines[0]["proxy"][0]["via"], format!("{shown}/"));
    assert_eq!(lines[0]["proxy"][0]["variable"], "HTTPS_PROXY");
    assert_eq!(
        lines[0]["proxy"][0]["detail"],
        format!("{shown}/ (from HTTPS_PROXY)")
    );
    assert_eq!(lines[1]["proxy"][0]["via"], Value::Null);
    assert_eq!(
        lines[1]["proxy"][0]["detail"],
        "none (`keys.internal.example` matches NO_PROXY)"
    );
    let o = with_proxy(bin(), &closed)
        .env("NO_PROXY", "internal.example")
        .args(["jwks", "--config", &remote])
        .output_within();
    let out = stdout(&o);
    assert!(
        out.contains(&format!("  proxy   {shown}/ (from HTTPS_PROXY)\n")),
        "{out}"
    );
    assert!(!out.contains("hunter2"), "{out}");
}

fn two_providers(dir: &Path, a: &TestIssuer, b: &TestIssuer) -> String {
    let text = std::fs::read_to_string("testdata/cli/two-providers.toml")
        .unwrap()
        .replace("{issuer:a}", a.issuer())
        .replace("{discovery_url:a}", a.discovery_url().as_str())
        .replace("{issuer:b}", b.issuer())
        .replace("{discovery_url:b}", b.discovery_url().as_str());
    let path = dir.join("two.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn a_provider_whose_idp_is_down_rejects_only_its_tokens() {
    let a = Env::new("degraded-a");
    let b = Env::new("degraded-b");
    let config = two_providers(&a.dir, &a.issuer, &b.issuer);
    let from_a = a.issuer.mint().sign();
    let from_b = b.issuer.mint().sign();
    b.issuer.set_fault(Fault::Garbage);
    let o = run(&[
        "check", "--config", &config, "--token", &from_a, "--token", &from_b, "--format", "json",
    ]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let lines = json_lines(&o);
    assert_eq!(lines[0]["authenticated"], true);
    assert_eq!(lines[0]["principals"], json!(["User:a-all"]));
    assert_eq!(lines[1]["error"]["code"], "jwks_unavailable");
    let err = stderr(&o);
    assert!(err.starts_with("warning: provider `idp-b`:"), "{err}");
    assert!(err.contains("jwks_unavailable"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn a_configuration_that_cannot_work_is_exit_2() {
    let env = Env::with("wrong-issuer", |issuer| {
        issuer.set_fault(Fault::WrongIssuer)
    });
    let token = env.analyst().sign();
    let o = run(&["check", "--config", env.config(), "--token", &token]);
    assert_eq!(code(&o), 2);
    let err = stderr(&o);
    assert!(err.starts_with("error: provider `local-idp`:"), "{err}");
    assert!(err.contains("names issuer"), "{err}");
}

#[test]
fn issuer_and_token_commands_serve_client_credentials() {
    // Port 0: the issuer picks the port and says which.
    let mut child = Running(
        bin()
            .args(["issuer", "--listen", "127.0.0.1:0", "--format", "json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let line = child.first_line();
    let info: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(info["type"], "issuer");
    let issuer = info["issuer"].as_str().unwrap().to_owned();
    let port: u16 = issuer
        .strip_prefix("http://127.0.0.1:")
        .unwrap_or_else(|| panic!("{line}"))
        .parse()
        .unwrap();
    assert_ne!(port, 0, "{line}");
    assert_eq!(
        info["discovery_url"],
        format!("{issuer}/.well-known/openid-configuration")
    );
    assert_eq!(info["token_endpoint"], format!("{issuer}/token"));
    assert!(
        info["clients"]
            .as_array()
            .unwrap()
            .contains(&json!("svc-analytics"))
    );

    let o = run(&[
        "token",
        "--issuer",
        &issuer,
        "--client-id",
        "svc-analytics",
        "--client-secret",
        "svc-analytics-secret",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let token = stdout(&o).trim().to_owned();
    assert_eq!(token.split('.').count(), 3);

    // The token works against the demo configuration pointed at this issuer.
    let dir = Cleanup(temp_dir("issuer"));
    let config = dir.0.join("demo.toml");
    let text = std::fs::read_to_string("testdata/demo.toml")
        .unwrap()
        .replace("{issuer}", &issuer)
        .replace("{discovery_url}", info["discovery_url"].as_str().unwrap());
    std::fs::write(&config, text).unwrap();
    let o = run(&[
        "check",
        "--config",
        config.to_str().unwrap(),
        "--token",
        &token,
        "--format",
        "json",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(json_lines(&o)[0]["pools"][0]["identity"], "svc-analytics");

    let o = run(&[
        "token",
        "--issuer",
        &issuer,
        "--client-id",
        "ops-bot",
        "--client-secret",
        "ops-bot-secret",
        "--format",
        "json",
    ]);
    assert_eq!(code(&o), 0);
    let r = &json_lines(&o)[0];
    assert_eq!(r["type"], "token_response");
    assert_eq!(r["token_type"], "Bearer");
    assert_eq!(r["expires_in"], 3600);

    let o = run(&[
        "token",
        "--issuer",
        &issuer,
        "--client-id",
        "svc-analytics",
        "--client-secret",
        "wrong",
    ]);
    assert_eq!(code(&o), 1);
    let err = stderr(&o);
    assert!(err.contains("HTTP 401 (invalid_client)"), "{err}");
    assert!(!err.contains("wrong"), "the secret never shows: {err}");

    // Plain http only to loopback; a discovery document naming another issuer.
    let o = run(&[
        "token",
        "--issuer",
        "http://idp.example.com",
        "--client-id",
        "a",
        "--client-secret",
        "b",
    ]);
    assert_eq!(code(&o), 2);
    let o = run(&[
        "token",
        "--issuer",
        &format!("{issuer}/"),
        "--client-id",
        "a",
        "--client-secret",
        "b",
    ]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("names issuer"), "{}", stderr(&o));
}

#[test]
fn issuer_takes_a_clients_file_and_only_loopback() {
    let o = run(&["issuer", "--listen", "0.0.0.0:0"]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("not a loopback address"),
        "{}",
        stderr(&o)
    );

    let dir = Cleanup(temp_dir("issuer-clients"));
    let bad = dir.0.join("bad.toml");
    std::fs::write(&bad, "[[clients]]\nid = \"a\"\n").unwrap();
    let o = run(&["issuer", "--clients", bad.to_str().unwrap()]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("bad.toml"), "{}", stderr(&o));

    let good = dir.0.join("clients.toml");
    std::fs::write(
        &good,
        "[[clients]]\nid = \"tool\"\nsecret = \"s\"\nclaims = { groups = [\"ops\"] }\nlifetime = \"5m\"\n",
    )
    .unwrap();
    let mut child = Running(
        bin()
            .args([
                "issuer",
                "--clients",
                good.to_str().unwrap(),
                "--format",
                "json",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let line = child.first_line();
    let info: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(info["clients"], json!(["tool"]));
    let o = run(&[
        "token",
        "--issuer",
        info["issuer"].as_str().unwrap(),
        "--client-id",
        "tool",
        "--client-secret",
        "s",
        "--format",
        "json",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(json_lines(&o)[0]["expires_in"], 300);
    let o = run(&[
        "decode",
        json_lines(&o)[0]["access_token"].as_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(json_lines(&o)[0]["claims"]["groups"], json!(["ops"]));
}

/// 10,000 distinct tokens through `check --tokens` (run with `cargo test -- --ignored`).
#[test]
#[ignore = "slow: mints and checks 10,000 tokens"]
fn ten_thousand_tokens_in_one_batch() {
    let env = Env::new("batch");
    let n = 10_000;
    let key = env.issuer.active_key(SigningAlg::RS256);
    let issuer = env.issuer.issuer().to_owned();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = n / threads + 1;
    let tokens: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let key = Arc::clone(&key);
                let issuer = issuer.clone();
                s.spawn(move || {
                    (t * per..((t + 1) * per).min(n))
                        .map(|i| {
                            TokenBuilder::new(Arc::clone(&key), issuer.clone())
                                .claim("sub", json!(format!("svc-{i}")))
                                .claim("groups", json!(["analytics"]))
                                .claim("tenant", json!("acme"))
                                .sign()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(tokens.len(), n);
    let file = env.write("tokens.txt", tokens.join("\n") + "\n");
    let start = std::time::Instant::now();
    let o = run(&[
        "check",
        "--config",
        env.config(),
        "--tokens",
        &file,
        "--format",
        "json",
    ]);
    let took = start.elapsed();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let lines = json_lines(&o);
    assert_eq!(lines.len(), n + 1);
    for (i, l) in lines[..n].iter().enumerate() {
        assert_eq!(l["index"], i);
        assert_eq!(l["line"], i + 1);
        assert_eq!(l["subject"], format!("svc-{i}"));
        assert_eq!(l["authenticated"], true);
    }
    assert_eq!(lines[n]["type"], "summary");
    assert_eq!(lines[n]["accepted"], n);
    println!(
        "{n} tokens in {took:.2?}: {:.0} tokens/s",
        n as f64 / took.as_secs_f64()
    );
}
