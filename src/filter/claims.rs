//! Owns the per-token evaluation context: the claims converted to a CEL value once, bound as
//! `claims`, and reused for every filter and claim expression of every pool.

use std::collections::HashMap;
use std::fmt;

use cel::Context;
use cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelUInt,
};
use cel::common::value::Val;
use serde_json::{Map, Value};

/// A token's claims as CEL sees them, built once per token.
///
/// JSON maps to CEL as: object → `map` (string keys), array → `list`, string → `string`,
/// boolean → `bool`, null → `null`, an integer number → `int`, or `uint` above `i64::MAX`, any
/// other number → `double`. So `claims.exp > 0` compares ints, and `claims.ratio == 1` is
/// false for `"ratio": 1.5` but true for `"ratio": 1.0` (CEL compares numbers across types).
///
/// Send and Sync: it can be built on one thread and used on another.
pub struct ClaimsContext {
    ctx: Context<'static, 'static>,
}

impl ClaimsContext {
    /// Converts `claims` and binds them as `claims`. The conversion copies every string; the
    /// nesting depth is that of the JSON, which `serde_json` caps at 128 when parsing.
    pub fn new(claims: &Map<String, Value>) -> ClaimsContext {
        let mut ctx = Context::with_env(std::sync::Arc::clone(super::env()));
        ctx.add_variable_as_val("claims", Box::new(map(claims)));
        ClaimsContext { ctx }
    }

    /// As [`ClaimsContext::new`], converting only the top-level claims named in `names` (all
    /// of them when `None`): for expressions that read no others (see
    /// [`Filter::claims_read`](super::Filter::claims_read)), the outcome is the same.
    pub(crate) fn only(claims: &Map<String, Value>, names: Option<&[String]>) -> ClaimsContext {
        let Some(names) = names else {
            return ClaimsContext::new(claims);
        };
        let entries: HashMap<CelMapKey<'static>, Box<dyn Val>> = names
            .iter()
            .filter_map(|name| {
                let (k, v) = claims.get_key_value(name)?;
                Some((CelMapKey::String(CelString::from(k.clone())), value(v)))
            })
            .collect();
        let mut ctx = Context::with_env(std::sync::Arc::clone(super::env()));
        ctx.add_variable_as_val("claims", Box::new(CelMap::from(entries)));
        ClaimsContext { ctx }
    }

    pub(super) fn cel(&self) -> &Context<'static, 'static> {
        &self.ctx
    }
}

impl fmt::Debug for ClaimsContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClaimsContext").finish_non_exhaustive()
    }
}

fn map(object: &Map<String, Value>) -> CelMap<'static> {
    let entries: HashMap<CelMapKey<'static>, Box<dyn Val>> = object
        .iter()
        .map(|(k, v)| (CelMapKey::String(CelString::from(k.clone())), value(v)))
        .collect();
    CelMap::from(entries)
}

fn value(v: &Value) -> Box<dyn Val> {
    match v {
        Value::Null => Box::new(CelNull),
        Value::Bool(b) => Box::new(CelBool::from(*b)),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Box::new(CelInt::from(i))
            } else if let Some(u) = n.as_u64() {
                Box::new(CelUInt::from(u))
            } else {
                // Without serde_json's `arbitrary_precision`, every other number is an f64.
                Box::new(CelDouble::from(n.as_f64().unwrap_or(f64::NAN)))
            }
        }
        Value::String(s) => Box::new(CelString::from(s.clone())),
        Value::Array(items) => Box::new(CelList::from(items.iter().map(value).collect::<Vec<_>>())),
        Value::Object(object) => Box::new(map(object)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::{Filter, FilterOutcome};

    fn eval(src: &str, claims: serde_json::Value) -> FilterOutcome {
        let ctx = ClaimsContext::new(claims.as_object().unwrap());
        Filter::compile(src).unwrap().evaluate(&ctx)
    }

    #[test]
    fn json_numbers() {
        let claims = serde_json::json!({
            "i": 5, "neg": -5, "big": u64::MAX, "f": 1.5, "whole": 2.0,
        });
        for src in [
            "type(claims.i) == int",
            "type(claims.neg) == int",
            "type(claims.big) == uint",
            "claims.big == 18446744073709551615u",
            "type(claims.f) == double",
            "type(claims.whole) == double",
            "claims.whole == 2",
            "claims.i == 5.0",
            "claims.f > 1",
        ] {
            assert_eq!(eval(src, claims.clone()), FilterOutcome::Matched, "{src}");
        }
    }

    #[test]
    fn json_structure() {
        let claims = serde_json::json!({
            "n": null, "b": true, "l": [1, "a", [true]], "m": {"k": {"x": "y"}},
        });
        for src in [
            "claims.n == null",
            "claims.b",
            "size(claims.l) == 3 && claims.l[1] == 'a' && claims.l[2][0]",
            "claims.m.k.x == 'y' && 'k' in claims.m",
            "type(claims.m) == map && type(claims.l) == list",
        ] {
            assert_eq!(eval(src, claims.clone()), FilterOutcome::Matched, "{src}");
        }
    }
}
