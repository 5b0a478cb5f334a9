//! Owns the pool-selection index: from a token's claims, the pools whose filter can match,
//! without evaluating the filters of the others.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::{ClaimPath, Filter};

/// Picks, for one token, the candidate pools among many: a sound over-approximation of the
/// pools whose filter matches. Evaluate only the candidates with [`Filter::evaluate`].
///
/// Each filter with an indexable top-level `&&` conjunct, `claims.a.b == "literal"` or
/// `claims.a.b in ["x", "y"]`, is filed under its most selective one: the conjunct on the path
/// whose literals are most distinct across all filters (a `sub` or `client_id` rather than an
/// `iss` all pools share). A filter is a candidate when the token's claim at that path is a
/// string equal to one of its literals. Otherwise the filter cannot match: `&&` is true only
/// when every conjunct is, and CEL's `==` between a string literal and anything but that same
/// string (an absent claim, a number, a list) is never true. Filters without such a conjunct
/// (a top-level `||`, `startsWith`, ...) are candidates for every token.
///
/// ```
/// use poolgate::filter::{Filter, FilterIndex};
///
/// let filters = [
///     Filter::compile(r#"claims.iss == "https://idp" && claims.sub == "alice""#)?,
///     Filter::compile(r#"claims.iss == "https://idp" && claims.sub == "bob""#)?,
///     Filter::compile(r#"claims.sub.startsWith("svc-")"#)?,
/// ];
/// let index = FilterIndex::build(filters.iter().enumerate());
/// let claims = serde_json::json!({"iss": "https://idp", "sub": "bob"});
/// assert_eq!(index.candidates(claims.as_object().unwrap()), [1, 2]);
/// # Ok::<(), poolgate::filter::FilterError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct FilterIndex {
    /// One entry per path some filter is filed under.
    paths: Vec<PathIndex>,
    /// Filters without an indexable conjunct, ascending.
    always: Vec<usize>,
    len: usize,
}

#[derive(Clone, Debug)]
struct PathIndex {
    path: ClaimPath,
    /// Literal → the filters filed under it, ascending.
    by_value: HashMap<Box<str>, Vec<usize>>,
}

impl FilterIndex {
    /// Indexes filters, each with the caller's id for it (its pool's position, say).
    pub fn build<'a>(filters: impl IntoIterator<Item = (usize, &'a Filter)>) -> FilterIndex {
        let filters: Vec<(usize, &Filter)> = filters.into_iter().collect();

        // Per path: how many filters have a conjunct on it, and how many distinct literals.
        let mut stats: HashMap<&ClaimPath, (usize, HashSet<&str>)> = HashMap::new();
        for (_, filter) in &filters {
            let mut seen = HashSet::new();
            for c in filter.conjuncts() {
                let entry = stats.entry(&c.path).or_default();
                if seen.insert(&c.path) {
                    entry.0 += 1;
                }
                entry.1.extend(c.values.iter().map(String::as_str));
            }
        }
        // The expected number of filters one lookup on the conjunct yields.
        let cost = |c: &super::Conjunct| -> f64 {
            let (users, distinct) = stats.get(&c.path).map_or((1, 1), |(n, v)| (*n, v.len()));
            c.values.len() as f64 * users as f64 / distinct.max(1) as f64
        };

        let mut index = FilterIndex {
            len: filters.len(),
            ..FilterIndex::default()
        };
        let mut path_pos: HashMap<ClaimPath, usize> = HashMap::new();
        for (id, filter) in &filters {
            let best = filter
                .conjuncts()
                .iter()
                .min_by(|a, b| cost(a).total_cmp(&cost(b)));
            let Some(best) = best else {
                index.always.push(*id);
                continue;
            };
            let pos = *path_pos.entry(best.path.clone()).or_insert_with(|| {
                index.paths.push(PathIndex {
                    path: best.path.clone(),
                    by_value: HashMap::new(),
                });
                index.paths.len() - 1
            });
            for value in &best.values {
                index.paths[pos]
                    .by_value
                    .entry(value.as_str().into())
                    .or_default()
                    .push(*id);
            }
        }
        index.always.sort_unstable();
        index.always.dedup();
        for p in &mut index.paths {
            for ids in p.by_value.values_mut() {
                ids.sort_unstable();
                ids.dedup();
            }
        }
        index
    }

    /// The ids of the filters that may match a token with these claims, ascending, each once.
    /// Every filter that matches is among them.
    pub fn candidates(&self, claims: &Map<String, Value>) -> Vec<usize> {
        let mut out = self.always.clone();
        let mut sources = usize::from(!out.is_empty());
        for p in &self.paths {
            let Some(Value::String(s)) = p.path.lookup(claims) else {
                continue;
            };
            if let Some(ids) = p.by_value.get(s.as_str()) {
                out.extend_from_slice(ids);
                sources += 1;
            }
        }
        // A filter is filed under one path, and a token has one value per path: no duplicates.
        if sources > 1 {
            out.sort_unstable();
        }
        out
    }

    /// The ids of the filters that are candidates for every token (no indexable conjunct).
    pub fn unindexed(&self) -> &[usize] {
        &self.always
    }

    /// How many filters were indexed.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no filter was indexed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(src: &str) -> Filter {
        Filter::compile(src).unwrap()
    }

    fn cands(index: &FilterIndex, claims: serde_json::Value) -> Vec<usize> {
        index.candidates(claims.as_object().unwrap())
    }

    #[test]
    fn picks_the_most_distinct_path() {
        let filters: Vec<Filter> = (0..50)
            .map(|i| {
                f(&format!(
                    r#"claims.iss == "https://idp" && claims.sub == "u{i}""#
                ))
            })
            .collect();
        let index = FilterIndex::build(filters.iter().enumerate());
        assert_eq!(index.paths.len(), 1);
        assert_eq!(index.paths[0].path.to_string(), "claims.sub");
        assert_eq!(
            cands(&index, json!({"iss": "https://idp", "sub": "u7"})),
            [7]
        );
        // The index does not check `iss`: evaluation does.
        assert_eq!(cands(&index, json!({"iss": "other", "sub": "u7"})), [7]);
        assert!(cands(&index, json!({"sub": 7})).is_empty());
        assert!(cands(&index, json!({"sub": ["u7"]})).is_empty());
        assert!(cands(&index, json!({})).is_empty());
        assert_eq!(index.len(), 50);
    }

    #[test]
    fn merges_paths_and_unindexed_in_order() {
        let filters = [
            f(r#"claims.sub == "a""#),
            f(r#"claims.sub.startsWith("a")"#),
            f(r#"claims.client_id == "a" && claims.sub == "a""#),
            f(r#"claims.aud in ["k", "a"]"#),
            f(r#"claims.sub == "a" || claims.sub == "b""#),
            f(r#"claims.ext.tenant == "t""#),
        ];
        let index = FilterIndex::build(filters.iter().enumerate().map(|(i, f)| (i * 10, f)));
        assert_eq!(index.unindexed(), [10, 40]);
        let claims = json!({"sub": "a", "client_id": "a", "aud": "k", "ext": {"tenant": "t"}});
        assert_eq!(cands(&index, claims), [0, 10, 20, 30, 40, 50]);
        assert_eq!(cands(&index, json!({"sub": "b"})), [10, 40]);
        assert_eq!(cands(&index, json!({"aud": "a", "ext": "t"})), [10, 30, 40]);
    }

    #[test]
    fn empty_index() {
        let index = FilterIndex::build(std::iter::empty());
        assert!(index.is_empty());
        assert!(cands(&index, json!({"sub": "a"})).is_empty());
    }
}
