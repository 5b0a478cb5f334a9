//! Arbitrary text as a pool filter and as an identity claim expression: compiling never panics;
//! whatever compiles is evaluated (and explained) against a fixed set of claims without
//! panicking, and a filter's equality conjuncts never claim more than the claims can satisfy.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
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

fuzz_target!(|data: &[u8]| {
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
});
