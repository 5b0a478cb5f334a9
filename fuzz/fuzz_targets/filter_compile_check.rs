//! The checks of the `filter_compile` fuzz target, shared with `tests/fuzz_seeds.rs`, which runs them
//! on every file in `fuzz/seeds/filter_compile/`.

use std::sync::OnceLock;

use poolgate::filter::{ClaimExpr, ClaimsContext, Filter, FilterOutcome};
use serde_json::{Map, Value, json};

fn claims() -> &'static (Map<String, Value>, ClaimsContext) {
    static CLAIMS: OnceLock<(Map<String, Value>, ClaimsContext)> = OnceLock::new();
    CLAIMS.get_or_init(|| {
        let Value::Object(map) = json!({
            "iss": "https://idp.fuzz.test", "sub": "svc-fuzz", "aud": ["kafka", "x"],
            "groups": ["ops", "analytics"], "exp": 1_700_003_600, "ratio": 1.5,
            "scope": "kafka.read kafka.write", "ext": {"team": "a", "n": [1, 2, {"k": null}]},
        }) else {
            unreachable!()
        };
        let ctx = ClaimsContext::new(&map);
        (map, ctx)
    })
}

/// Runs one input through the checks; panics on a violation.
pub fn check(data: &[u8]) {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let (map, ctx) = claims();
    if let Ok(filter) = Filter::compile(source) {
        let outcome = filter.evaluate(ctx);
        let _ = filter.explain(ctx);
        if outcome == FilterOutcome::Matched {
            // The index may skip a filter only when one of its equalities fails.
            for (path, literal) in filter.equalities() {
                assert_eq!(
                    path.lookup(map).and_then(Value::as_str),
                    Some(literal.as_str())
                );
            }
        }
    }
    if let Ok(expr) = ClaimExpr::compile(source) {
        let _ = expr.evaluate(ctx);
    }
}
