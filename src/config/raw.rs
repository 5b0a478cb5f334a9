//! Owns the file's shape (field names are a public contract) and reading it section by
//! section: every unknown key is reported with its section and provider or pool id, and a
//! section with a wrong type or a missing field does not hide the errors of the others. It must
//! not check values; `config` and `config::upstream` do.

use std::ops::Range;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::diagnostics::{Diagnostics, Entry, Section};
use super::upstream::RawUpstream;

/// The file, read: the sections that could be read (those that could not are reported).
#[derive(Debug, Default)]
pub(crate) struct RawConfig {
    pub(crate) cluster: Option<RawCluster>,
    pub(crate) sasl: Option<RawSasl>,
    pub(crate) gateway: Option<RawGateway>,
    /// Every `[[providers]]` entry's `id` when it is a string, in file order (also of the
    /// entries that could not be read, so that a pool naming one is not reported as well).
    pub(crate) provider_ids: Vec<Option<String>>,
    pub(crate) providers: Vec<Spanned<RawProvider>>,
    pub(crate) pools: Vec<Spanned<RawPool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCluster {
    pub(crate) id: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) require_logical_cluster: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSasl {
    pub(crate) challenge_scope: Option<String>,
    pub(crate) challenge_openid_configuration: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGateway {
    #[serde(default)]
    pub(crate) allow_plaintext: bool,
    #[serde(default)]
    pub(crate) pass_through: Vec<Spanned<String>>,
    pub(crate) login_timeout: Option<Spanned<String>>,
    pub(crate) idle_timeout: Option<Spanned<String>>,
    pub(crate) max_session_lifetime: Option<Spanned<String>>,
    pub(crate) max_frame_bytes: Option<Spanned<i64>>,
    pub(crate) max_connections: Option<Spanned<i64>>,
    pub(crate) max_connections_per_peer: Option<Spanned<i64>>,
    pub(crate) failure_delay: Option<Spanned<String>>,
    pub(crate) max_failure_delay: Option<Spanned<String>>,
    pub(crate) metrics_listen: Option<Spanned<String>>,
    pub(crate) routing: Option<Spanned<String>>,
    pub(crate) node_ids: Option<Spanned<String>>,
    pub(crate) node_port_base: Option<Spanned<i64>>,
    pub(crate) sni_node_pattern: Option<Spanned<String>>,
    pub(crate) metadata_refresh_interval: Option<Spanned<String>>,
    pub(crate) drain_timeout: Option<Spanned<String>>,
    pub(crate) max_connection_age: Option<Spanned<String>>,
    /// `[gateway.upstream]`, read as a section of its own.
    #[serde(skip)]
    pub(crate) upstream: Option<RawUpstream>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProvider {
    pub(crate) id: Spanned<String>,
    pub(crate) issuer: Spanned<String>,
    pub(crate) discovery_url: Option<Spanned<String>>,
    pub(crate) jwks_uri: Option<Spanned<String>>,
    pub(crate) jwks_file: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) audiences: Option<Spanned<Vec<String>>>,
    pub(crate) algorithms: Option<Spanned<Vec<String>>>,
    pub(crate) clock_skew: Option<Spanned<String>>,
    pub(crate) require_claims: Option<Vec<String>>,
    pub(crate) token_types: Option<Spanned<Vec<String>>>,
    pub(crate) max_token_lifetime: Option<Spanned<String>>,
    pub(crate) refresh_interval: Option<Spanned<String>>,
    pub(crate) min_refresh_interval: Option<Spanned<String>>,
    pub(crate) max_stale: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) insecure_allow_http: bool,
    #[serde(default)]
    pub(crate) allow_any_audience: bool,
    #[serde(default)]
    pub(crate) start_empty: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPool {
    pub(crate) id: Spanned<String>,
    pub(crate) provider: Spanned<String>,
    pub(crate) identity_claim: Option<Spanned<String>>,
    pub(crate) filter: Option<Spanned<String>>,
    /// `[[pools.grants]]`, each read as a section of its own (the ones that could be read).
    #[serde(skip)]
    pub(crate) grants: Vec<Spanned<RawGrant>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGrant {
    pub(crate) role: Option<Spanned<String>>,
    pub(crate) allow: Option<Spanned<Vec<String>>>,
    pub(crate) deny: Option<Spanned<Vec<String>>>,
    pub(crate) resource: Spanned<String>,
}

/// The top-level keys.
const TOP: &[&str] = &["cluster", "sasl", "gateway", "providers", "pools"];

/// Reads TOML text section by section. `None` only for a syntax error (reported), which leaves
/// nothing to read.
pub(crate) fn parse_raw(d: &mut Diagnostics<'_>, text: &str) -> Option<RawConfig> {
    let root = match DeTable::parse(text) {
        Ok(root) => root.into_inner(),
        Err(e) => {
            let message = e.message().trim().replace('\n', " ");
            d.error(e.span().as_ref(), Section::File.whole(), message);
            return None;
        }
    };
    report_unknown(d, &Section::File, &root, TOP);
    let mut raw = RawConfig::default();
    if let Some(v) = root.get("cluster") {
        raw.cluster = read(d, &Section::Cluster, v, &[]);
    }
    if let Some(v) = root.get("sasl") {
        raw.sasl = read(d, &Section::Sasl, v, &[]);
    }
    if let Some(v) = root.get("gateway") {
        raw.gateway = read::<RawGateway>(d, &Section::Gateway, v, &["upstream"]);
        let upstream = v.get_ref().as_table().and_then(|t| t.get("upstream"));
        if let (Some(g), Some(u)) = (&mut raw.gateway, upstream) {
            g.upstream = read(d, &Section::Upstream, u, &[]);
        }
    }
    for (position, v) in entries(d, &root, "providers") {
        let section = Section::Provider(entry(v, position));
        raw.provider_ids.push(section.id().map(str::to_owned));
        if let Some(p) = read(d, &section, v, &[]) {
            raw.providers.push(Spanned::new(v.span(), p));
        }
    }
    for (position, v) in entries(d, &root, "pools") {
        let pool = entry(v, position);
        let section = Section::Pool(pool.clone());
        let read_pool = read::<RawPool>(d, &section, v, &["grants"]);
        // The grants are read even when their pool could not be: their errors are reported too.
        let mut grants = Vec::new();
        for (n, g) in entries_in(d, &section, v.get_ref().as_table(), "grants") {
            let grant = Section::Grant {
                pool: pool.clone(),
                n,
            };
            if let Some(read_grant) = read(d, &grant, g, &[]) {
                grants.push(Spanned::new(g.span(), read_grant));
            }
        }
        if let Some(p) = read_pool {
            raw.pools
                .push(Spanned::new(v.span(), RawPool { grants, ..p }));
        }
    }
    Some(raw)
}

/// A `[[providers]]` or `[[pools]]` entry, named by its `id` when that is a string.
fn entry(v: &Spanned<DeValue<'_>>, position: usize) -> Entry {
    let id = v
        .get_ref()
        .as_table()
        .and_then(|t| t.get("id"))
        .and_then(|id| id.get_ref().as_str());
    Entry::new(id, position)
}

/// The entries of the top-level array of tables `key`, numbered from 1.
fn entries<'t, 'i>(
    d: &mut Diagnostics<'_>,
    root: &'t DeTable<'i>,
    key: &str,
) -> Vec<(usize, &'t Spanned<DeValue<'i>>)> {
    entries_in(d, &Section::File, Some(root), key)
}

/// The entries of the array of tables `key` in `table` (of `section`), numbered from 1; anything
/// else under `key` is reported.
fn entries_in<'t, 'i>(
    d: &mut Diagnostics<'_>,
    section: &Section,
    table: Option<&'t DeTable<'i>>,
    key: &str,
) -> Vec<(usize, &'t Spanned<DeValue<'i>>)> {
    let Some(v) = table.and_then(|t| t.get(key)) else {
        return Vec::new();
    };
    match v.get_ref().as_array() {
        Some(items) => items.iter().enumerate().map(|(i, v)| (i + 1, v)).collect(),
        None => {
            d.error(
                Some(&v.span()),
                section.field(key),
                format!("must be an array of tables (`[[{key}]]`)"),
            );
            Vec::new()
        }
    }
}

/// Reads one section: reports each key that is neither a field of `T` nor one of `nested` (the
/// sub-sections read on their own), then deserializes the fields; a wrong type or a missing
/// field is reported with the field's name.
fn read<T: DeserializeOwned>(
    d: &mut Diagnostics<'_>,
    section: &Section,
    value: &Spanned<DeValue<'_>>,
    nested: &[&str],
) -> Option<T> {
    let Some(table) = value.get_ref().as_table() else {
        d.error(
            Some(&value.span()),
            section.whole(),
            format!("must be a table, not {}", value.get_ref().type_str()),
        );
        return None;
    };
    let fields = field_names::<T>();
    report_unknown(d, section, table, &[fields, nested].concat());
    let own: DeTable<'_> = table
        .iter()
        .filter(|(k, _)| fields.contains(&k.get_ref().as_ref()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let de = ValueDeserializer::from(Spanned::new(value.span(), DeValue::Table(own)));
    match T::deserialize(de) {
        Ok(t) => Some(t),
        Err(e) => {
            let span = e.span();
            let field = span.as_ref().and_then(|s| field_at(table, s));
            let place = match field {
                Some(f) => section.field(f),
                None => section.whole(),
            };
            let message = e.message().trim().replace('\n', " ");
            d.error(span.as_ref().or(Some(&value.span())), place, message);
            None
        }
    }
}

/// Reports every key of `table` not in `known`, with its line.
fn report_unknown(d: &mut Diagnostics<'_>, section: &Section, table: &DeTable<'_>, known: &[&str]) {
    for key in table.keys() {
        let name = key.get_ref();
        if !known.contains(&name.as_ref()) {
            let hint = known
                .iter()
                .find(|k| edit_distance(k, name) <= 2)
                .map(|k| format!(" (did you mean `{k}`?)"))
                .unwrap_or_default();
            let expected = known
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ");
            d.error(
                Some(&key.span()),
                section.field(name),
                format!("unknown field{hint}, expected one of {expected}"),
            );
        }
    }
}

/// The Levenshtein distance of two short names (in bytes; the known names are ASCII), for
/// "did you mean" hints; written here as it is only this.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// The key of `table` whose value holds `span`.
fn field_at<'t>(table: &'t DeTable<'_>, span: &Range<usize>) -> Option<&'t str> {
    table
        .iter()
        .find(|(_, v)| v.span().contains(&span.start))
        .map(|(k, _)| k.get_ref().as_ref())
}

/// The field names of a struct with derived `Deserialize`: the list serde hands to
/// `deserialize_struct`, so that the known keys are written once, in the struct.
fn field_names<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    // The probe always fails: it only records the list.
    let _ = T::deserialize(FieldProbe(&mut fields));
    fields
}

/// A deserializer that records the field list of the struct asked of it, and fails.
struct FieldProbe<'a>(&'a mut &'static [&'static str]);

impl<'de> serde::Deserializer<'de> for FieldProbe<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(serde::de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(serde::de::Error::custom("field names recorded"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_come_from_the_structs() {
        assert_eq!(
            field_names::<RawCluster>(),
            ["id", "require_logical_cluster"]
        );
        assert_eq!(
            field_names::<RawGrant>(),
            ["role", "allow", "deny", "resource"]
        );
        // Sub-sections are read on their own, so they are not fields.
        assert!(!field_names::<RawPool>().contains(&"grants"));
        assert!(!field_names::<RawGateway>().contains(&"upstream"));
        assert!(field_names::<RawUpstream>().contains(&"sasl_mechanism"));
    }

    #[test]
    fn edit_distances() {
        for (a, b, n) in [
            ("", "", 0),
            ("pool", "pools", 1),
            ("fliter", "filter", 2),
            ("id", "sasl", 4),
        ] {
            assert_eq!(edit_distance(a, b), n, "{a} {b}");
            assert_eq!(edit_distance(b, a), n, "{b} {a}");
        }
    }
}
