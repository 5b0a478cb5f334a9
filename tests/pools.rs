//! Pool selection through the login facade, table-driven: `testdata/pools/*.json` (format in
//! `testdata/pools/README.md`) against the configurations next to them, with two real local
//! issuers, plus a property: a token whose claims match no pool filter never authenticates.
#![cfg(feature = "testkit")]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use poolgate::authz::{Operation, Resource};
use poolgate::config::Config;
use poolgate::gate::{Gate, LoginRequest, Rejection, Session};
use poolgate::sasl::ClientFirstMessage;
use poolgate::testkit::{IssuerConfig, SigningAlg, SigningKey, TestIssuer};
use poolgate::{ManualClock, UnixTime};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// "Now" for every case: the issuers mint with it and the gates validate at it.
const START: u64 = 1_800_000_000;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/pools")
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[allow(dead_code, reason = "documentation for the reader of the file")]
    about: String,
    cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    why: String,
    config: String,
    #[serde(default)]
    token: TokenRecipe,
    #[serde(default)]
    sasl: Sasl,
    expect: Expect,
    #[serde(default)]
    authorize: Vec<Check>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRecipe {
    /// `a` (default) or `b`: which issuer mints it.
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default)]
    claims: Map<String, Value>,
    #[serde(default)]
    without_claims: Vec<String>,
    /// Signed by an unpublished key that carries the published key's `kid`.
    #[serde(default)]
    forged: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sasl {
    #[serde(rename = "identityPoolId")]
    identity_pool_id: Option<String>,
    #[serde(rename = "logicalCluster")]
    logical_cluster: Option<String>,
    authzid: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    code: Option<String>,
    principals: Option<Vec<String>>,
    identity: Option<String>,
    permissions: Option<usize>,
    diagnostics: Option<usize>,
    #[serde(default)]
    diagnostics_contain: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Check {
    op: Operation,
    resource: String,
    decision: String,
}

/// What a login came to, comparable across the two entry points and cache hit and miss.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Session {
        principals: Vec<String>,
        pools: Vec<String>,
        identity: String,
        permissions: Vec<String>,
        diagnostics: Vec<String>,
    },
    Rejected(&'static str),
}

fn outcome(result: &Result<Session, Rejection>) -> Outcome {
    match result {
        Ok(s) => Outcome::Session {
            principals: s.principals().to_vec(),
            pools: s.pools().to_vec(),
            identity: s.identity().to_owned(),
            permissions: s.permissions().iter().map(ToString::to_string).collect(),
            diagnostics: s.diagnostics().iter().map(ToString::to_string).collect(),
        },
        Err(r) => {
            // Whatever the reason, the client learns only `invalid_token`.
            assert_eq!(r.challenge(), br#"{"status":"invalid_token"}"#);
            Outcome::Rejected(r.code())
        }
    }
}

struct Issuers {
    a: TestIssuer,
    b: TestIssuer,
    /// An unpublished key with the `kid` of issuer a's RS256 key.
    forger: Arc<SigningKey>,
    clock: ManualClock,
}

impl Issuers {
    async fn start() -> Issuers {
        let clock = ManualClock::new(UnixTime::from_secs(START));
        let start = || {
            TestIssuer::start_with(IssuerConfig {
                clock: Arc::new(clock.clone()),
                ..IssuerConfig::default()
            })
        };
        let a = start().await.unwrap();
        let b = start().await.unwrap();
        let kid = a.active_key(SigningAlg::RS256).kid().to_owned();
        let forger = Arc::new(SigningKey::generate(SigningAlg::RS256, kid));
        Issuers {
            a,
            b,
            forger,
            clock,
        }
    }

    fn fill(&self, text: &str) -> String {
        text.replace("{iss:a}", self.a.issuer())
            .replace("{iss:b}", self.b.issuer())
            .replace("{disc:a}", self.a.discovery_url().as_str())
            .replace("{disc:b}", self.b.discovery_url().as_str())
    }

    /// Placeholders in claim values: `{iss:a}`, `{iss:b}` in strings, `{"$now": n}`.
    fn fill_value(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.fill(s)),
            Value::Array(items) => items.iter().map(|i| self.fill_value(i)).collect(),
            Value::Object(m) => match m.get("$now").and_then(Value::as_i64) {
                Some(offset) if m.len() == 1 => json!(START.checked_add_signed(offset).unwrap()),
                _ => Value::Object(
                    m.iter()
                        .map(|(k, v)| (k.clone(), self.fill_value(v)))
                        .collect(),
                ),
            },
            other => other.clone(),
        }
    }

    fn mint(&self, recipe: &TokenRecipe) -> String {
        let issuer = match recipe.issuer.as_deref() {
            None | Some("a") => &self.a,
            Some("b") => &self.b,
            Some(other) => panic!("unknown issuer `{other}`"),
        };
        let mut builder = issuer.mint();
        if recipe.forged {
            builder = builder.key(Arc::clone(&self.forger));
        }
        for (name, value) in &recipe.claims {
            builder = builder.claim(name, self.fill_value(value));
        }
        for name in &recipe.without_claims {
            builder = builder.without_claim(name);
        }
        builder.sign()
    }

    async fn gate(&self, config_file: &str) -> Gate {
        let text = std::fs::read_to_string(dir().join(config_file)).unwrap();
        let config = Config::parse(&self.fill(&text), config_file, &dir())
            .unwrap_or_else(|e| panic!("{config_file}: {e}"));
        Gate::start_with_clock(config, Arc::new(self.clock.clone()))
            .await
            .unwrap()
    }
}

fn sasl_bytes(token: &str, sasl: &Sasl) -> Vec<u8> {
    let mut b = ClientFirstMessage::new(token);
    if let Some(a) = &sasl.authzid {
        b = b.authzid(a.as_str());
    }
    if let Some(c) = &sasl.logical_cluster {
        b = b.extension("logicalCluster", c.as_str());
    }
    if let Some(p) = &sasl.identity_pool_id {
        b = b.extension("identityPoolId", p.as_str());
    }
    b.build().unwrap().to_bytes()
}

fn load_cases() -> Vec<(String, Case)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut cases = Vec::new();
    for path in files {
        let file: File = serde_json::from_slice(&std::fs::read(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        cases.extend(file.cases.into_iter().map(|c| (name.clone(), c)));
    }
    cases
}

/// Checks one case's outcome against its expectation; returns what is wrong.
fn check(case: &Case, result: &Result<Session, Rejection>) -> Vec<String> {
    let e = &case.expect;
    let mut wrong = Vec::new();
    let mut differs = |what: &str, expected: &dyn std::fmt::Debug, got: &dyn std::fmt::Debug| {
        wrong.push(format!("{what}: expected {expected:?}, got {got:?}"));
    };
    match result {
        Err(r) => {
            if e.code.as_deref() != Some(r.code()) {
                differs("outcome", &e.code, &format!("{} ({})", r.code(), r.error()));
            }
        }
        Ok(s) => {
            if let Some(code) = &e.code {
                differs(
                    "outcome",
                    code,
                    &format!("a session as {:?}", s.principals()),
                );
                return wrong;
            }
            // Invariant: one principal per selected pool, `User:<id>`.
            let derived: Vec<String> = s.pools().iter().map(|p| format!("User:{p}")).collect();
            if derived != s.principals() {
                differs("principals vs pools", &derived, &s.principals());
            }
            if e.principals.as_deref() != Some(s.principals()) {
                differs("principals", &e.principals, &s.principals());
            }
            if let Some(id) = &e.identity
                && id != s.identity()
            {
                differs("identity", id, &s.identity());
            }
            if let Some(n) = e.permissions
                && n != s.permissions().len()
            {
                let grants: Vec<String> = s.permissions().iter().map(|g| g.to_string()).collect();
                differs("permissions", &n, &grants);
            }
            if let Some(n) = e.diagnostics
                && n != s.diagnostics().len()
            {
                differs("diagnostics", &n, &s.diagnostics());
            }
            for needle in &e.diagnostics_contain {
                if !s
                    .diagnostics()
                    .iter()
                    .any(|d| d.to_string().contains(needle.as_str()))
                {
                    differs("diagnostics containing", needle, &s.diagnostics());
                }
            }
            for c in &case.authorize {
                let resource = Resource::parse(&c.resource)
                    .unwrap_or_else(|err| panic!("{}: resource {}: {err}", case.name, c.resource));
                let a = s.authorize(c.op, &resource);
                if a.decision.as_str() != c.decision {
                    differs(
                        &format!("{} {}", c.op, c.resource),
                        &c.decision,
                        &a.to_string(),
                    );
                }
            }
        }
    }
    wrong
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table() {
    let cases = load_cases();
    assert!(cases.len() >= 60, "only {} cases", cases.len());

    // The table's own consistency.
    let mut names = BTreeSet::new();
    for (file, case) in &cases {
        assert!(
            names.insert(case.name.as_str()),
            "{file}: duplicate name {}",
            case.name
        );
        assert!(!case.why.is_empty(), "{}: say why", case.name);
        let e = &case.expect;
        assert!(
            e.code.is_some() != e.principals.is_some(),
            "{}: expect either `code` or `principals`",
            case.name
        );
        assert!(
            e.code.is_none()
                || (e.identity.is_none()
                    && e.permissions.is_none()
                    && e.diagnostics.is_none()
                    && e.diagnostics_contain.is_empty()
                    && case.authorize.is_empty()),
            "{}: a rejection has no session to check",
            case.name
        );
        for c in &case.authorize {
            assert!(
                ["allow", "deny"].contains(&c.decision.as_str()),
                "{}: decision {}",
                case.name,
                c.decision
            );
        }
    }
    // Every configuration file is used, and every selection code is covered.
    let configs: BTreeSet<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    let used: BTreeSet<String> = cases.iter().map(|(_, c)| c.config.clone()).collect();
    assert_eq!(
        configs, used,
        "configuration files and the cases using them"
    );
    let codes: BTreeSet<&str> = cases
        .iter()
        .filter_map(|(_, c)| c.expect.code.as_deref())
        .collect();
    for code in [
        "no_pool_matched",
        "unknown_pool",
        "wrong_cluster",
        "authzid_mismatch",
        "expired",
        "bad_signature",
    ] {
        assert!(codes.contains(code), "no case expects {code}");
    }

    let issuers = Issuers::start().await;
    let mut gates: HashMap<String, Gate> = HashMap::new();
    let now = UnixTime::from_secs(START);
    let mut failures = Vec::new();
    let mut by_file: BTreeMap<&str, usize> = BTreeMap::new();
    for (file, case) in &cases {
        *by_file.entry(file.as_str()).or_default() += 1;
        if !gates.contains_key(&case.config) {
            let gate = issuers.gate(&case.config).await;
            gates.insert(case.config.clone(), gate);
        }
        let gate = &gates[&case.config];
        let token = issuers.mint(&case.token);
        let bytes = sasl_bytes(&token, &case.sasl);

        let first = gate.authenticate_at(&bytes, now).await;
        let wrong = check(case, &first);
        if !wrong.is_empty() {
            failures.push(format!(
                "{file} / {}: {}\n    {}",
                case.name,
                case.why,
                wrong.join("\n    ")
            ));
            continue;
        }
        // The same login again (a cache hit when the token verified) and through `login` with
        // the request the message carries: the same outcome.
        let hits = gate.cache_stats().hits;
        let again = gate.authenticate_at(&bytes, now).await;
        let msg = ClientFirstMessage::parse(&bytes).unwrap();
        let request = LoginRequest {
            pools: msg
                .identity_pool_ids()
                .map(|ids| ids.into_iter().map(str::to_owned).collect()),
            logical_cluster: msg.logical_cluster().map(str::to_owned),
            authzid: msg.authzid().map(str::to_owned),
            extensions: msg.extensions().to_vec(),
        };
        let direct = gate.login(&token, request, now).await;
        for (how, other) in [("again", &again), ("login()", &direct)] {
            if outcome(other) != outcome(&first) {
                failures.push(format!(
                    "{file} / {}: {how} gave {:?}, first {:?}",
                    case.name,
                    outcome(other),
                    outcome(&first)
                ));
            }
        }
        if first.is_ok() && gate.cache_stats().hits < hits + 2 {
            failures.push(format!(
                "{file} / {}: the repeats were not cache hits",
                case.name
            ));
        }
    }
    println!("{} cases: {by_file:?}", cases.len());
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn claims_matching_no_pool_never_authenticate() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (issuers, gate) = rt.block_on(async {
        let issuers = Issuers::start().await;
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/config/unmatchable.toml");
        let text = issuers.fill(&std::fs::read_to_string(path).unwrap());
        let config = Config::parse(&text, "unmatchable.toml", &dir()).unwrap();
        let gate = Gate::start_with_clock(config, Arc::new(issuers.clock.clone()))
            .await
            .unwrap();
        (issuers, gate)
    });
    let _guard = rt.enter();
    let now = UnixTime::from_secs(START);
    let pool_ids = ["only-sub", "admins", "tenant", "email", "root"];

    let groups = proptest::collection::vec(
        prop::sample::select(vec!["ops", "analytics", "dev", "admins", "zz", "ZZ-ADMINS"]),
        0..4,
    );
    let strategy = (
        proptest::option::of(groups),
        "[a-z0-9-]{0,12}".prop_filter("reserved subjects", |s| {
            s != "only-this" && s != "admin" && !s.starts_with("root-")
        }),
        proptest::option::of("[a-z]{0,8}"),
        proptest::option::of(proptest::sample::subsequence(pool_ids.to_vec(), 1..=3)),
    );
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&strategy, |(groups, sub, tenant, named)| {
            let mut mint = issuers.a.mint().claim("sub", json!(sub));
            if let Some(g) = &groups {
                mint = mint.claim("groups", json!(g));
            }
            if let Some(t) = &tenant {
                mint = mint.claim("tenant", json!(t));
            }
            let token = mint.sign();
            let mut b =
                ClientFirstMessage::new(token.as_str()).extension("logicalCluster", "lkc-1");
            if let Some(ids) = &named {
                b = b.extension("identityPoolId", ids.join(", "));
            }
            let bytes = b.build().unwrap().to_bytes();
            for _ in 0..2 {
                let result = rt.block_on(gate.authenticate_at(&bytes, now));
                match result {
                    Ok(s) => {
                        return Err(TestCaseError::fail(format!(
                            "authenticated as {:?} with {:?}",
                            s.principals(),
                            s.claims()
                        )));
                    }
                    Err(r) => prop_assert_eq!(r.code(), "no_pool_matched", "{}", r.error()),
                }
            }
            Ok(())
        })
        .unwrap();
    // Every token verified (and was then served from the cache): the pools refused them.
    let stats = gate.cache_stats();
    assert!(
        stats.misses >= 64 && stats.hits >= stats.misses,
        "{stats:?}"
    );
}
