//! Pool filters through the public API: the table of `testdata/filters/cases.json`, claim
//! expressions, and properties: random claims never make conversion or evaluation panic, random
//! text never makes compilation panic, and the pool index never drops a filter that matches.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use poolgate::filter::{
    ClaimExpr, ClaimExprError, ClaimsContext, Filter, FilterError, FilterIndex, FilterOutcome,
};
use proptest::prelude::*;
use serde::Deserialize;
use serde_json::{Map, Value, json};

#[derive(Debug, Deserialize)]
struct Case {
    name: String,
    filter: String,
    claims: Map<String, Value>,
    expect: Expect,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Expect {
    Match,
    NoMatch,
    Error,
    CompileError,
}

static CASES: LazyLock<Vec<Case>> = LazyLock::new(|| {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/filters/cases.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
});

fn outcome_kind(o: &FilterOutcome) -> Expect {
    match o {
        FilterOutcome::Matched => Expect::Match,
        FilterOutcome::NotMatched => Expect::NoMatch,
        FilterOutcome::Error(_) => Expect::Error,
    }
}

#[test]
fn table() {
    assert!(CASES.len() > 50);
    let mut failures = Vec::new();
    for case in CASES.iter() {
        let got = match Filter::compile(&case.filter) {
            Err(e) => {
                // Messages follow the crate's style: lowercase, one line, no final period.
                let msg = e.to_string();
                assert!(!msg.contains('\n') && !msg.ends_with('.'), "{msg}");
                assert!(!msg.starts_with(char::is_uppercase), "{msg}");
                Expect::CompileError
            }
            Ok(filter) => {
                let ctx = ClaimsContext::new(&case.claims);
                let outcome = filter.evaluate(&ctx);
                if let FilterOutcome::Error(msg) = &outcome {
                    assert!(!msg.contains('\n'), "{}: {msg}", case.name);
                }
                // The index never drops a match; explain covers the filter.
                let index = FilterIndex::build([(0, &filter)]);
                if outcome.is_match() {
                    assert_eq!(index.candidates(&case.claims), [0], "{}", case.name);
                }
                assert!(!filter.explain(&ctx).is_empty());
                outcome_kind(&outcome)
            }
        };
        if got != case.expect {
            failures.push(format!(
                "{}: `{}` expected {:?}, got {got:?}",
                case.name, case.filter, case.expect
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn confluent_examples_compile_unchanged() {
    for src in [
        r#"claims.iss == "https://login.microsoftonline.com/t/v2.0""#,
        r#"claims.aud == "x" && claims.group != "y""#,
        r#"has(claims.groups) && "ops" in claims.groups"#,
        r#"claims.sub.startsWith("svc-")"#,
        r#"claims.email.endsWith("@example.com")"#,
        r#"claims.tid == "t" && claims.aud in ["a", "b"]"#,
        r#"size(claims.groups) > 0"#,
        r#"claims.groups.exists(g, g == "ops")"#,
        r#"claims.groups.all(g, g.startsWith("team-"))"#,
        r#"claims.sub.matches("^svc-[a-z]+$")"#,
        r#""kafka" in claims.scope.split(" ")"#,
    ] {
        Filter::compile(src).unwrap_or_else(|e| panic!("{src}: {e}"));
    }
}

#[test]
fn compile_errors_are_typed() {
    let err = |src: &str| Filter::compile(src).unwrap_err();
    assert!(
        matches!(err("request.x == 1"), FilterError::UnknownVariable { name } if name == "request")
    );
    assert!(
        matches!(err("nope(claims.x)"), FilterError::UnknownFunction { name } if name == "nope")
    );
    assert!(matches!(err("claims.x =="), FilterError::Syntax { .. }));
    assert!(matches!(err("'abc'"), FilterError::NotBoolean { .. }));
    assert!(matches!(err(""), FilterError::Empty));
    let long = format!("claims.sub == \"{}\"", "x".repeat(10_000));
    assert!(matches!(err(&long), FilterError::TooLong { .. }));
}

#[test]
fn claim_expressions() {
    let claims = json!({
        "sub": "svc-1", "client_id": "app", "ext": {"user": "alice"}, "n": 7, "empty": "",
        "tid": "t", "oid": "o",
    });
    let ctx = ClaimsContext::new(claims.as_object().unwrap());
    let eval = |src: &str| ClaimExpr::compile(src).unwrap().evaluate(&ctx);
    assert_eq!(eval("claims.sub").unwrap(), "svc-1");
    assert_eq!(eval("claims.client_id").unwrap(), "app");
    assert_eq!(eval("claims.ext.user").unwrap(), "alice");
    assert_eq!(eval(r#"claims.tid + "/" + claims.oid"#).unwrap(), "t/o");
    assert_eq!(eval("string(claims.n)").unwrap(), "7");
    assert_eq!(
        eval("claims.missing").unwrap_err(),
        ClaimExprError::Evaluation {
            expr: "claims.missing".into(),
            reason: "no such key `missing`".into()
        }
    );
    assert_eq!(
        eval("claims.n").unwrap_err().to_string(),
        "`claims.n` yields an int, not a string"
    );
    assert!(matches!(
        eval("claims.ext").unwrap_err(),
        ClaimExprError::NotAString { found, .. } if found == "map"
    ));
    assert!(matches!(
        eval("claims.empty").unwrap_err(),
        ClaimExprError::Empty { .. }
    ));
    for bad in ["claims.sub == 'x'", "1", "request.sub", "has(claims.sub)"] {
        assert!(ClaimExpr::compile(bad).is_err(), "{bad}");
    }
}

// ---- properties ----

const KEYS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "client_id",
    "groups",
    "scope",
    "email",
    "ext",
    "tid",
    "exp",
    "admin",
];
const WORDS: &[&str] = &[
    "https://idp",
    "https://other",
    "u1",
    "u2",
    "u3",
    "svc-a",
    "ops",
    "dev",
    "kafka",
    "a",
    "",
];

fn arb_word() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(WORDS).prop_map(str::to_owned),
        1 => "\\PC{0,12}",
    ]
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        arb_word().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(arb_key(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn arb_key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(KEYS).prop_map(str::to_owned),
        1 => "\\PC{0,6}",
    ]
}

fn arb_claims() -> impl Strategy<Value = Map<String, Value>> {
    proptest::collection::btree_map(arb_key(), arb_json(), 0..10)
        .prop_map(|m: BTreeMap<String, Value>| m.into_iter().collect())
}

/// Filters of the shapes pools use, over the same small vocabulary as the claims.
fn arb_filter() -> impl Strategy<Value = String> {
    let w = || proptest::sample::select(WORDS);
    prop_oneof![
        (w(), w()).prop_map(|(i, s)| format!(r#"claims.iss == "{i}" && claims.sub == "{s}""#)),
        (w(), w()).prop_map(|(i, s)| format!(
            r#"claims.iss == "{i}" && claims.sub == "{s}" && "ops" in claims.groups"#
        )),
        (w(), w()).prop_map(|(i, s)| format!(r#""{s}" == claims.sub && "{i}" == claims.iss"#)),
        w().prop_map(|c| format!(r#"claims["client_id"] == "{c}""#)),
        (w(), w())
            .prop_map(|(a, b)| format!(r#"claims.aud in ["{a}", "{b}"] && claims.tid == "t""#)),
        w().prop_map(|t| format!(r#"claims.ext.tid == "{t}""#)),
        w().prop_map(|s| format!(r#"claims.sub.startsWith("{s}")"#)),
        (w(), w()).prop_map(|(i, s)| format!(r#"claims.iss == "{i}" || claims.sub == "{s}""#)),
        w().prop_map(|s| format!(r#"!(claims.sub == "{s}")"#)),
        w().prop_map(|s| format!(r#"claims.sub != "{s}" && has(claims.iss)"#)),
        Just("true".to_owned()),
    ]
}

/// Filters that exercise every part of the evaluator on arbitrary claims.
static FILTERS: LazyLock<Vec<Filter>> = LazyLock::new(|| {
    let mut filters: Vec<Filter> = CASES
        .iter()
        .filter_map(|c| Filter::compile(&c.filter).ok())
        .collect();
    for src in [
        "claims.ext.tid.startsWith(claims.sub)",
        "claims.groups.exists(g, g.matches('^o'))",
        "claims.exp + claims.iat > claims.sub",
        "size(claims.ext) > size(claims.groups)",
        "claims.admin ? claims.exp : claims.sub",
        "claims.scope.split(claims.sub).size() > 1",
        "claims.groups.map(x, x).filter(y, y == claims.sub).size() == 0",
        "claims.aud in claims.groups",
        "claims.exp / claims.iat == 1 && claims.exp % 2 == 0",
        "-claims.exp < 0",
        "claims[claims.sub] == claims.iss",
        "claims.groups[claims.exp] == 'a'",
    ] {
        filters.push(Filter::compile(src).unwrap());
    }
    filters
});

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_claims_never_panic(claims in arb_claims()) {
        let ctx = ClaimsContext::new(&claims);
        for filter in FILTERS.iter() {
            let _ = filter.evaluate(&ctx);
            let _ = filter.explain(&ctx);
        }
        for src in ["claims.sub", "claims.ext.user", "claims.sub + claims.iss"] {
            let _ = ClaimExpr::compile(src).unwrap().evaluate(&ctx);
        }
    }

    #[test]
    fn random_text_never_panics_compile(src in "\\PC{0,64}") {
        let _ = Filter::compile(&src);
        let _ = ClaimExpr::compile(&src);
    }

    #[test]
    fn random_cel_like_text_never_panics_compile(
        parts in proptest::collection::vec(
            proptest::sample::select(&[
                "claims", ".", "sub", "(", ")", "[", "]", "{", "}", "==", "&&", "||", "!", "in",
                "has", "exists", "g", ",", "'a'", "1", "2.0", "3u", "true", "null", "?", ":", "+",
                "-", "size", "matches", "split", "\"", "\\", "`", " ",
            ][..]),
            0..24,
        )
    ) {
        let src = parts.concat();
        if let Ok(filter) = Filter::compile(&src) {
            let claims = json!({"sub": "a", "groups": ["a"], "n": 1});
            let ctx = ClaimsContext::new(claims.as_object().unwrap());
            let _ = filter.evaluate(&ctx);
            let _ = filter.explain(&ctx);
        }
    }

    #[test]
    fn index_is_sound(
        sources in proptest::collection::vec(arb_filter(), 0..40),
        claims in proptest::collection::vec(
            (
                proptest::option::of(arb_word()),
                proptest::option::of(prop_oneof![
                    arb_word().prop_map(Value::from),
                    any::<i64>().prop_map(Value::from),
                    proptest::collection::vec(arb_word(), 0..3).prop_map(|v| json!(v)),
                ]),
                proptest::option::of(arb_word()),
                proptest::option::of(arb_word()),
                proptest::option::of(proptest::collection::vec(arb_word(), 0..3)),
                arb_claims(),
            ),
            1..8,
        ),
    ) {
        let filters: Vec<Filter> = sources.iter().map(|s| Filter::compile(s).unwrap()).collect();
        let index = FilterIndex::build(filters.iter().enumerate());
        for (iss, sub, client_id, aud, groups, mut extra) in claims {
            // Ordinary claims over the filters' vocabulary, on top of arbitrary ones.
            for (key, value) in [
                ("iss", iss.map(Value::from)),
                ("sub", sub),
                ("client_id", client_id.map(Value::from)),
                ("aud", aud.map(Value::from)),
                ("groups", groups.map(|g| json!(g))),
                ("tid", Some(json!("t"))),
            ] {
                if let Some(v) = value {
                    extra.insert(key.to_owned(), v);
                }
            }
            let ctx = ClaimsContext::new(&extra);
            let candidates = index.candidates(&extra);
            prop_assert!(candidates.windows(2).all(|w| w[0] < w[1]), "{candidates:?}");
            for (i, filter) in filters.iter().enumerate() {
                if filter.evaluate(&ctx).is_match() {
                    prop_assert!(
                        candidates.binary_search(&i).is_ok(),
                        "`{}` matches {:?} but is not a candidate", filter.source(), extra
                    );
                }
            }
        }
    }
}
