//! Owns the TOML configuration file: its shape (a public contract), durations, and load-time
//! validation with errors that name the file, line, provider or pool, and field.
//!
//! Pure: [`Config::parse`] takes text; only [`Config::load`] reads a file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;
use url::Url;

use crate::algorithm::Algorithm;
use crate::authz::{Effect, GrantOps, GrantTemplate, Operation, OperationSet, Role};
use crate::error::clip;
use crate::fetch::FetchOptions;
use crate::filter::{ClaimExpr, Filter};
use crate::keystore::{KeySource, KeyStoreConfig};
use crate::policy::Policy;
use crate::pool::{Pool, PoolSet};

mod diagnostics;
mod raw;
mod upstream;

pub use self::diagnostics::{ConfigError, ConfigErrors, Entry, Section};
pub use self::upstream::{
    ScramHash, SecretSource, UpstreamConfig, UpstreamOAuth, UpstreamSasl, UpstreamTls,
};

pub(crate) use self::diagnostics::{Diagnostics, Place};
pub(crate) use self::raw::parse_raw;
use self::raw::{RawGateway, RawGrant, RawPool, RawProvider};

/// Why a duration could not be read; each names the text as written (clipped).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationError {
    /// No unit after the number, such as `30`.
    #[error("`{}` has no unit (use ms, s, m, h or d)", clip(.0))]
    NoUnit(String),
    /// Not a whole number followed by a unit, such as `1.5h` or `7 days`.
    #[error("`{}` is not a duration like `30s`, `10m`, `1h` or `7d`", clip(.0))]
    NotADuration(String),
    /// A unit other than `ms`, `s`, `m`, `h` and `d`.
    #[error("`{}` has an unknown unit (use ms, s, m, h or d)", clip(.0))]
    UnknownUnit(String),
    /// More than `Duration` can hold.
    #[error("`{}` is too long", clip(.0))]
    TooLong(String),
}

/// Parses a human duration: a whole number followed by `ms`, `s`, `m`, `h` or `d`. The one
/// duration syntax of the configuration file and the command line.
///
/// ```
/// use poolgate::config::{DurationError, parse_duration};
/// use std::time::Duration;
/// assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
/// assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
/// assert_eq!(parse_duration("7 days"), Err(DurationError::UnknownUnit("7 days".into())));
/// ```
///
/// # Errors
/// A [`DurationError`] naming the text.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| DurationError::NoUnit(s.to_owned()))?;
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| DurationError::NotADuration(s.to_owned()))?;
    let secs = match unit {
        "ms" => return Ok(Duration::from_millis(n)),
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        _ => return Err(DurationError::UnknownUnit(s.to_owned())),
    };
    secs.map(Duration::from_secs)
        .ok_or_else(|| DurationError::TooLong(s.to_owned()))
}

/// Reads the duration field `name` of `section`, when it is set, reporting what is wrong with
/// it: not a duration, or zero where `nonzero` asks for more.
pub(crate) fn duration_field(
    d: &mut Diagnostics<'_>,
    section: &Section,
    name: &str,
    value: &Option<Spanned<String>>,
    nonzero: bool,
) -> Option<Duration> {
    let v = value.as_ref()?;
    match parse_duration(v.get_ref()) {
        Ok(dur) if nonzero && dur.is_zero() => {
            d.error(
                Some(&v.span()),
                section.field(name),
                "must be more than zero",
            );
            None
        }
        Ok(dur) => Some(dur),
        Err(e) => {
            d.error(Some(&v.span()), section.field(name), e.to_string());
            None
        }
    }
}

/// One provider as configured: its id, its validation policy, where its keys come from and how
/// they are fetched.
#[derive(Clone, Debug)]
pub struct ProviderConfig {
    /// The provider's id (pools refer to it).
    pub id: String,
    /// The validation policy.
    pub policy: Policy,
    /// Where the keys come from.
    pub source: KeySource,
    /// How keys are fetched and refreshed.
    pub store: KeyStoreConfig,
}

/// Checks one provider entry, resolving a relative `jwks_file` against `base_dir`.
pub(crate) fn check_provider(
    d: &mut Diagnostics<'_>,
    raw: &Spanned<RawProvider>,
    position: usize,
    base_dir: &Path,
) -> Option<ProviderConfig> {
    let p = raw.get_ref();
    let id = p.id.get_ref().clone();
    let sec = Section::Provider(Entry::new(Some(&id), position));
    let errors_before = d.errors.len();
    if id.is_empty() {
        d.error(Some(&p.id.span()), sec.field("id"), "must not be empty");
    }

    let mut builder = Policy::builder(p.issuer.get_ref().clone());
    if p.issuer.get_ref().is_empty() {
        d.error(
            Some(&p.issuer.span()),
            sec.field("issuer"),
            "must not be empty",
        );
    }
    match (&p.audiences, p.allow_any_audience) {
        (Some(a), false) if a.get_ref().is_empty() => d.error(
            Some(&a.span()),
            sec.field("audiences"),
            "is empty: list the audiences, or set allow_any_audience = true",
        ),
        (Some(a), false) => builder = builder.audiences(a.get_ref().iter().cloned()),
        (None, false) => d.error(
            Some(&raw.span()),
            sec.field("audiences"),
            "is missing: list the audiences, or set allow_any_audience = true",
        ),
        (Some(a), true) => d.error(
            Some(&a.span()),
            sec.field("audiences"),
            "cannot be combined with allow_any_audience = true",
        ),
        (None, true) => builder = builder.dangerous_allow_any_audience(),
    }
    if let Some(algs) = &p.algorithms {
        let mut parsed = Vec::new();
        for name in algs.get_ref() {
            match name.parse::<Algorithm>() {
                Ok(a) => parsed.push(a),
                Err(e) => d.error(Some(&algs.span()), sec.field("algorithms"), e.to_string()),
            }
        }
        if algs.get_ref().is_empty() {
            d.error(Some(&algs.span()), sec.field("algorithms"), "is empty");
        }
        builder = builder.algorithms(parsed);
    }
    if let Some(skew) = duration_field(d, &sec, "clock_skew", &p.clock_skew, false) {
        builder = builder.clock_skew(skew);
    }
    if let Some(claims) = &p.require_claims {
        builder = builder.require_claims(claims.iter().cloned());
    }
    if let Some(types) = &p.token_types {
        if types.get_ref().is_empty() {
            d.error(Some(&types.span()), sec.field("token_types"), "is empty");
        }
        builder = builder.token_types(types.get_ref().iter());
    }
    if let Some(max) = duration_field(d, &sec, "max_token_lifetime", &p.max_token_lifetime, false) {
        builder = builder.max_lifetime(max);
    }

    let mut store = KeyStoreConfig {
        start_empty: p.start_empty,
        fetch: FetchOptions {
            insecure_allow_http: p.insecure_allow_http,
            ..FetchOptions::default()
        },
        ..KeyStoreConfig::default()
    };
    if let Some(v) = duration_field(d, &sec, "refresh_interval", &p.refresh_interval, false) {
        store.refresh_interval = v;
    }
    if let Some(v) = duration_field(
        d,
        &sec,
        "min_refresh_interval",
        &p.min_refresh_interval,
        false,
    ) {
        store.min_refresh_interval = v;
    }
    if let Some(v) = duration_field(d, &sec, "max_stale", &p.max_stale, false) {
        store.max_stale = v;
    }

    let sources = [
        p.discovery_url.as_ref().map(|v| ("discovery_url", v)),
        p.jwks_uri.as_ref().map(|v| ("jwks_uri", v)),
        p.jwks_file.as_ref().map(|v| ("jwks_file", v)),
    ];
    let given: Vec<_> = sources.into_iter().flatten().collect();
    let source = match given.as_slice() {
        [(field, value)] => {
            let place = sec.field(field);
            if *field == "jwks_file" {
                let path = PathBuf::from(value.get_ref());
                Some(KeySource::JwksFile(if path.is_relative() {
                    base_dir.join(path)
                } else {
                    path
                }))
            } else {
                match Url::parse(value.get_ref()) {
                    Err(e) => {
                        d.error(Some(&value.span()), place, format!("is not a URL: {e}"));
                        None
                    }
                    Ok(url) => match crate::fetch::check_url(&url, p.insecure_allow_http) {
                        Err(e) => {
                            d.error(Some(&value.span()), place, e.to_string());
                            None
                        }
                        Ok(()) if *field == "discovery_url" => Some(KeySource::Discovery(url)),
                        Ok(()) => Some(KeySource::JwksUrl(url)),
                    },
                }
            }
        }
        [] => {
            d.error(
                Some(&raw.span()),
                sec.whole(),
                "needs exactly one key source: discovery_url, jwks_uri or jwks_file",
            );
            None
        }
        [_, (field, value), ..] => {
            d.error(
                Some(&value.span()),
                sec.field(field),
                "only one of discovery_url, jwks_uri and jwks_file may be set",
            );
            None
        }
    };

    let policy = match builder.build() {
        Ok(policy) => Some(policy),
        Err(e) => {
            // Most policy errors were already reported with their field; report the rest.
            if d.errors.len() == errors_before {
                d.error(Some(&raw.span()), sec.whole(), e.to_string());
            }
            None
        }
    };
    if d.errors.len() > errors_before {
        return None;
    }
    Some(ProviderConfig {
        id,
        policy: policy?,
        source: source?,
        store,
    })
}

/// The `[cluster]` section.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterConfig {
    /// When set, the SASL extension `logicalCluster` must equal it.
    pub id: Option<String>,
    /// When true, a login without `logicalCluster` is rejected (only with `id` set).
    pub require_logical_cluster: bool,
}

/// The `[sasl]` section: what a failed login's error challenge (RFC 7628 section 3.2.2) says
/// besides `"status": "invalid_token"`. Nothing more is ever revealed to the client.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SaslConfig {
    /// `scope` in the error challenge.
    pub challenge_scope: Option<String>,
    /// `openid-configuration` in the error challenge (a URL).
    pub challenge_openid_configuration: Option<String>,
}

/// The `[gateway]` section: settings of `poolgate gateway`, the Kafka front door. The library
/// itself does not use them; they live here so that one file, checked by one `config check`,
/// describes a whole deployment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayConfig {
    /// Whether the listener may run without TLS (tokens would cross the network in the clear).
    pub allow_plaintext: bool,
    /// Kafka API names (such as `DescribeProducers`) forwarded for authenticated sessions without
    /// a permission check; every other API the gateway does not check is refused.
    pub pass_through: Vec<PassThrough>,
    /// How long a connection may take from accept to a successful login.
    pub login_timeout: Duration,
    /// How long an authenticated connection may stay without requests or responses in flight
    /// before it is closed (Kafka's `connections.max.idle.ms`, 10 minutes).
    pub idle_timeout: Duration,
    /// The longest session a login gets (Kafka's `connections.max.reauth.ms`): the session
    /// lifetime reported to the client (KIP-368) is the smaller of the token's remaining
    /// lifetime and this, so that revoked access and configuration changes reach long-lived
    /// connections at their next re-authentication. `None` (the default, as in Kafka): the
    /// token's lifetime alone.
    pub max_session_lifetime: Option<Duration>,
    /// The largest request frame accepted from an authenticated session; before login, frames
    /// are capped much lower.
    pub max_frame_bytes: usize,
    /// Open client connections at most.
    pub max_connections: usize,
    /// Open client connections from one peer address at most.
    pub max_connections_per_peer: usize,
    /// How long the first failed login from a peer waits before its error is sent; doubles with
    /// each further failure from that peer, up to `max_failure_delay`.
    pub failure_delay: Duration,
    /// The longest failure delay.
    pub max_failure_delay: Duration,
    /// Where to serve Prometheus metrics (`GET /metrics`), if anywhere.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// How a client names the broker it wants (default [`Routing::Ports`]).
    pub routing: Routing,
    /// The broker node ids the gateway can route to, as inclusive ranges (default `0-15`). A
    /// broker whose id is outside them is left out of every response, logged and counted: it is
    /// never given an address clients could not reach, nor the broker's own.
    pub node_ids: Vec<(i32, i32)>,
    /// In [`Routing::Ports`], node `n` is served at port `node_port_base + n` (default: the listen
    /// port + 1), the same on every gateway instance with this configuration.
    pub node_port_base: Option<u16>,
    /// In [`Routing::Sni`], the TLS server name of node `n`: this pattern with `{node_id}`
    /// replaced, such as `b{node_id}.kafka.example.com` (served by a wildcard certificate).
    pub sni_node_pattern: Option<String>,
    /// How often the gateway asks the cluster for its brokers and their API versions, besides
    /// learning them from every Metadata and DescribeCluster response it forwards (default 5
    /// minutes, Kafka's `metadata.max.age.ms`).
    pub metadata_refresh_interval: Duration,
    /// On SIGTERM or SIGINT, how long sessions may take to answer the requests they have in
    /// flight before the gateway closes them and exits (default 30 seconds).
    pub drain_timeout: Duration,
    /// A connection older than this (minus up to a tenth, at random, so that connections made
    /// together do not all close together) is closed when it has nothing in flight, so that
    /// clients spread over instances added since (default: none).
    pub max_connection_age: Option<Duration>,
    /// How the gateway reaches its brokers (`[gateway.upstream]`; default: plaintext, no login).
    pub upstream: UpstreamConfig,
}

impl GatewayConfig {
    /// The fields that differ between `self` and `new` and that a running gateway cannot take
    /// without a restart: everything about listeners, routing and connections. The fields a
    /// reload takes are `pass_through`, `idle_timeout`... none yet: every `[gateway]` field
    /// binds a listener or a connection's limits, so any change is named here.
    pub fn restart_required(&self, new: &GatewayConfig) -> Vec<&'static str> {
        let mut out = Vec::new();
        macro_rules! compare {
            ($($field:ident),* $(,)?) => {
                $(if self.$field != new.$field { out.push(stringify!($field)); })*
            };
        }
        // The APIs, not the lines they are written on: an edit elsewhere in the file moves them.
        fn apis(g: &GatewayConfig) -> Vec<&str> {
            let mut names: Vec<&str> = g.pass_through.iter().map(|p| p.name.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            names
        }
        if apis(self) != apis(new) {
            out.push("pass_through");
        }
        compare!(
            allow_plaintext,
            login_timeout,
            idle_timeout,
            max_session_lifetime,
            max_frame_bytes,
            max_connections,
            max_connections_per_peer,
            failure_delay,
            max_failure_delay,
            metrics_listen,
            routing,
            node_ids,
            node_port_base,
            sni_node_pattern,
            metadata_refresh_interval,
            drain_timeout,
            max_connection_age,
            upstream,
        );
        out
    }
}

/// How a client connection names its broker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Routing {
    /// A port per broker: the listen port bootstraps, node `n` has port `node_port_base + n`.
    #[default]
    Ports,
    /// One TLS port: the server name (SNI) names the broker, from `sni_node_pattern`; the
    /// advertised host bootstraps; any other name is refused.
    Sni,
}

/// One `[gateway] pass_through` entry, with its line for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PassThrough {
    /// The Kafka API name.
    pub name: String,
    /// The 1-based line in the configuration file.
    pub line: usize,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            allow_plaintext: false,
            pass_through: Vec::new(),
            login_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(600),
            max_session_lifetime: None,
            max_frame_bytes: 100 * 1024 * 1024,
            max_connections: 10_000,
            max_connections_per_peer: 2_000,
            failure_delay: Duration::from_millis(100),
            max_failure_delay: Duration::from_secs(5),
            metrics_listen: None,
            routing: Routing::Ports,
            node_ids: vec![(0, 15)],
            node_port_base: None,
            sni_node_pattern: None,
            metadata_refresh_interval: Duration::from_secs(300),
            drain_timeout: Duration::from_secs(30),
            max_connection_age: None,
            upstream: UpstreamConfig::default(),
        }
    }
}

fn check_gateway(d: &mut Diagnostics<'_>, raw: &RawGateway, base_dir: &Path) -> GatewayConfig {
    let sec = Section::Gateway;
    let mut g = GatewayConfig {
        allow_plaintext: raw.allow_plaintext,
        ..GatewayConfig::default()
    };
    if let Some(u) = &raw.upstream {
        g.upstream = upstream::check_upstream(d, u, base_dir);
    }
    for (i, name) in raw.pass_through.iter().enumerate() {
        let n = name.get_ref();
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_alphanumeric()) {
            d.error(
                Some(&name.span()),
                sec.field("pass_through"),
                format!("`{}` is not a Kafka API name", clip(n)),
            );
        } else if raw.pass_through[..i].iter().any(|e| e.get_ref() == n) {
            d.error(
                Some(&name.span()),
                sec.field("pass_through"),
                format!("`{n}` is listed twice"),
            );
        }
        let line = d.line_of(&name.span());
        g.pass_through.push(PassThrough {
            name: n.clone(),
            line,
        });
    }
    let mut duration =
        |value: &Option<Spanned<String>>, name: &str| duration_field(d, &sec, name, value, true);
    if let Some(x) = duration(&raw.login_timeout, "login_timeout") {
        g.login_timeout = x;
    }
    if let Some(x) = duration(&raw.idle_timeout, "idle_timeout") {
        g.idle_timeout = x;
    }
    g.max_session_lifetime = duration(&raw.max_session_lifetime, "max_session_lifetime");
    if let Some(x) = duration(&raw.failure_delay, "failure_delay") {
        g.failure_delay = x;
    }
    if let Some(x) = duration(&raw.drain_timeout, "drain_timeout") {
        g.drain_timeout = x;
    }
    g.max_connection_age = duration(&raw.max_connection_age, "max_connection_age");
    if let Some(x) = duration(&raw.metadata_refresh_interval, "metadata_refresh_interval") {
        g.metadata_refresh_interval = x;
    }
    if let Some(x) = duration(&raw.max_failure_delay, "max_failure_delay") {
        g.max_failure_delay = x;
    }
    if g.max_failure_delay < g.failure_delay {
        let span = raw.max_failure_delay.as_ref().map(Spanned::span);
        d.error(
            span.as_ref(),
            sec.field("max_failure_delay"),
            "must not be less than `failure_delay`",
        );
    }
    if g.max_failure_delay >= g.login_timeout {
        let span = raw
            .max_failure_delay
            .as_ref()
            .or(raw.login_timeout.as_ref())
            .map(Spanned::span);
        d.error(
            span.as_ref(),
            sec.field("max_failure_delay"),
            "must be less than `login_timeout`, or a throttled client never hears why it failed",
        );
    }
    let mut count =
        |field: &Option<Spanned<i64>>, name: &str, min: i64, max: i64, out: &mut usize| {
            if let Some(v) = field {
                let n = *v.get_ref();
                if (min..=max).contains(&n) {
                    *out = usize::try_from(n).unwrap_or(*out);
                } else {
                    d.error(
                        Some(&v.span()),
                        sec.field(name),
                        format!("must be between {min} and {max}"),
                    );
                }
            }
        };
    count(
        &raw.max_frame_bytes,
        "max_frame_bytes",
        64 * 1024,
        1 << 30,
        &mut g.max_frame_bytes,
    );
    count(
        &raw.max_connections,
        "max_connections",
        1,
        1_000_000,
        &mut g.max_connections,
    );
    count(
        &raw.max_connections_per_peer,
        "max_connections_per_peer",
        1,
        1_000_000,
        &mut g.max_connections_per_peer,
    );
    if let Some(addr) = &raw.metrics_listen {
        match addr.get_ref().parse() {
            Ok(a) => g.metrics_listen = Some(a),
            Err(_) => d.error(
                Some(&addr.span()),
                sec.field("metrics_listen"),
                "is not an IP address and port, such as 127.0.0.1:9464",
            ),
        }
    }
    check_routing(d, raw, &mut g);
    g
}

/// The `[gateway]` routing fields: `routing`, `node_ids`, `node_port_base`, `sni_node_pattern`.
fn check_routing(d: &mut Diagnostics<'_>, raw: &RawGateway, g: &mut GatewayConfig) {
    let sec = Section::Gateway;
    if let Some(r) = &raw.routing {
        match r.get_ref().as_str() {
            "ports" => g.routing = Routing::Ports,
            "sni" => g.routing = Routing::Sni,
            other => d.error(
                Some(&r.span()),
                sec.field("routing"),
                format!("`{}` is not `ports` or `sni`", clip(other)),
            ),
        }
    }
    if let Some(ids) = &raw.node_ids {
        match parse_node_ids(ids.get_ref()) {
            Ok(ranges) => g.node_ids = ranges,
            Err(e) => d.error(Some(&ids.span()), sec.field("node_ids"), e),
        }
    }
    let highest = g.node_ids.iter().map(|&(_, hi)| hi).max().unwrap_or(0);
    if let Some(base) = &raw.node_port_base {
        let n = *base.get_ref();
        if g.routing == Routing::Sni {
            d.error(
                Some(&base.span()),
                sec.field("node_port_base"),
                "applies to `routing = \"ports\"` only",
            );
        } else if !(1..=65535).contains(&n) || n + i64::from(highest) > 65535 {
            d.error(
                Some(&base.span()),
                sec.field("node_port_base"),
                format!(
                    "must be a port such that `node_port_base` + the highest node id ({highest}) is at most 65535"
                ),
            );
        } else {
            g.node_port_base = u16::try_from(n).ok();
        }
    }
    let pattern = sec.field("sni_node_pattern");
    match (&raw.sni_node_pattern, g.routing) {
        (Some(p), Routing::Sni) => match check_node_pattern(p.get_ref()) {
            Ok(()) => g.sni_node_pattern = Some(p.get_ref().to_ascii_lowercase()),
            Err(e) => d.error(Some(&p.span()), pattern, e),
        },
        (Some(p), Routing::Ports) => d.error(
            Some(&p.span()),
            pattern,
            "applies to `routing = \"sni\"` only",
        ),
        (None, Routing::Sni) => d.error(
            raw.routing.as_ref().map(Spanned::span).as_ref(),
            pattern,
            "is required with `routing = \"sni\"` (such as `b{node_id}.kafka.example.com`)",
        ),
        (None, Routing::Ports) => {}
    }
}

/// Parses `node_ids`: comma-separated ids or inclusive ranges, such as `0-15` or `1-3,100`.
///
/// # Errors
/// A message for the configuration error.
pub fn parse_node_ids(s: &str) -> Result<Vec<(i32, i32)>, String> {
    let mut out: Vec<(i32, i32)> = Vec::new();
    for part in s.split(',').map(str::trim) {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let parse = |x: &str| {
            x.trim().parse::<u16>().map(i32::from).map_err(|_| {
                format!(
                    "`{}` is not a node id or a range such as `0-15`",
                    clip(part)
                )
            })
        };
        let (lo, hi) = (parse(lo)?, parse(hi)?);
        if lo > hi {
            return Err(format!("`{part}` is an empty range"));
        }
        if out.iter().any(|&(a, b)| lo <= b && a <= hi) {
            return Err(format!("`{part}` overlaps another range"));
        }
        out.push((lo, hi));
    }
    if out.iter().map(|&(a, b)| i64::from(b - a) + 1).sum::<i64>() > 4096 {
        return Err("more than 4096 node ids".to_owned());
    }
    out.sort_unstable();
    Ok(out)
}

/// Checks an SNI node pattern: one `{node_id}`, otherwise DNS name characters.
fn check_node_pattern(p: &str) -> Result<(), String> {
    if p.matches("{node_id}").count() != 1 {
        return Err(format!(
            "`{}` must contain `{{node_id}}` exactly once",
            clip(p)
        ));
    }
    let rest = p.replace("{node_id}", "0");
    let ok = rest.len() <= 253
        && rest.split('.').count() >= 2
        && rest.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a DNS name pattern such as `b{{node_id}}.kafka.example.com`",
            clip(p)
        ))
    }
}

/// A whole configuration, checked and compiled: providers, pools with their filters and
/// grant templates, and cluster settings.
///
/// ```
/// use poolgate::config::Config;
/// let text = r#"
/// [[providers]]
/// id = "op"
/// issuer = "https://idp.example.com"
/// audiences = ["kafka"]
/// jwks_file = "jwks.json"
///
/// [[pools]]
/// id = "analytics"
/// provider = "op"
/// filter = '"analytics" in claims.groups'
///
/// [[pools.grants]]
/// role = "DeveloperRead"
/// resource = "Topic:analytics-*"
/// "#;
/// let config = Config::parse(text, "poolgate.toml", std::path::Path::new(".")).unwrap();
/// assert_eq!(config.pools().pools()[0].id(), "analytics");
///
/// // Every error at once, in file order (those without a line last).
/// let err = Config::parse("[[pools]]\nid = 1\n", "bad.toml", std::path::Path::new(".")).unwrap_err();
/// assert!(err.0[0].to_string().starts_with("bad.toml:2: pool 1, field `id`: invalid type"));
/// assert_eq!(err.0[1].to_string(), "bad.toml: no `[[providers]]` configured");
/// ```
#[derive(Clone, Debug)]
pub struct Config {
    file: String,
    cluster: ClusterConfig,
    sasl: SaslConfig,
    gateway: GatewayConfig,
    providers: Vec<ProviderConfig>,
    pools: PoolSet,
}

impl Config {
    /// Reads and checks a configuration file; relative `jwks_file` paths are resolved against
    /// the file's folder.
    ///
    /// # Errors
    /// Every problem found, each naming the file, line and field.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                file: file.clone(),
                line: None,
                section: Section::File,
                field: None,
                message: format!("cannot read: {e}"),
            }])
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::parse(&text, &file, base)
    }

    /// Checks configuration text; `file` names it in errors and `base_dir` resolves relative
    /// `jwks_file` paths.
    ///
    /// # Errors
    /// Every problem found, each naming the file, line and field.
    pub fn parse(text: &str, file: &str, base_dir: &Path) -> Result<Config, ConfigErrors> {
        let mut d = Diagnostics::new(file, text);
        let Some(raw) = parse_raw(&mut d, text) else {
            return Err(d.finish());
        };
        let cluster = match &raw.cluster {
            None => ClusterConfig::default(),
            Some(c) => {
                if let Some(id) = &c.id
                    && id.get_ref().is_empty()
                {
                    d.error(
                        Some(&id.span()),
                        Section::Cluster.field("id"),
                        "must not be empty",
                    );
                }
                if c.require_logical_cluster && c.id.is_none() {
                    d.error(
                        None,
                        Section::Cluster.field("require_logical_cluster"),
                        "needs `id` to be set",
                    );
                }
                ClusterConfig {
                    id: c.id.as_ref().map(|s| s.get_ref().clone()),
                    require_logical_cluster: c.require_logical_cluster,
                }
            }
        };
        let sasl = match &raw.sasl {
            None => SaslConfig::default(),
            Some(s) => {
                if let Some(url) = &s.challenge_openid_configuration
                    && Url::parse(url.get_ref()).is_err()
                {
                    d.error(
                        Some(&url.span()),
                        Section::Sasl.field("challenge_openid_configuration"),
                        "is not a URL",
                    );
                }
                SaslConfig {
                    challenge_scope: s.challenge_scope.clone(),
                    challenge_openid_configuration: s
                        .challenge_openid_configuration
                        .as_ref()
                        .map(|u| u.get_ref().clone()),
                }
            }
        };
        let gateway = raw
            .gateway
            .as_ref()
            .map(|g| check_gateway(&mut d, g, base_dir))
            .unwrap_or_default();
        if raw.provider_ids.is_empty() {
            d.error(None, Section::File.whole(), "no `[[providers]]` configured");
        }
        let mut providers = Vec::new();
        for (i, raw_provider) in raw.providers.iter().enumerate() {
            let p = raw_provider.get_ref();
            let earlier = &raw.providers[..i];
            let sec = Section::Provider(Entry::new(Some(p.id.get_ref()), i + 1));
            if earlier
                .iter()
                .any(|q| q.get_ref().id.get_ref() == p.id.get_ref())
            {
                let place = sec.field("id");
                d.error(Some(&p.id.span()), place, "is used by an earlier provider");
            }
            if earlier
                .iter()
                .any(|q| q.get_ref().issuer.get_ref() == p.issuer.get_ref())
            {
                let place = sec.field("issuer");
                d.error(
                    Some(&p.issuer.span()),
                    place,
                    "is the issuer of an earlier provider",
                );
            }
            if let Some(provider) = check_provider(&mut d, raw_provider, i + 1, base_dir) {
                providers.push(provider);
            }
        }
        let mut pools = Vec::new();
        for (i, raw_pool) in raw.pools.iter().enumerate() {
            let earlier = &raw.pools[..i];
            let id = raw_pool.get_ref().id.get_ref();
            let entry = Entry::new(Some(id), i + 1);
            if earlier.iter().any(|q| q.get_ref().id.get_ref() == id) {
                let span = raw_pool.get_ref().id.span();
                let place = Section::Pool(entry.clone()).field("id");
                d.error(Some(&span), place, "is used by an earlier pool");
            }
            if let Some(pool) = check_pool(&mut d, raw_pool, &entry, &raw.provider_ids) {
                pools.push(pool);
            }
        }
        if !d.errors.is_empty() {
            return Err(d.finish());
        }
        let pools = PoolSet::new(pools, providers.len());
        Ok(Config {
            file: file.to_owned(),
            cluster,
            sasl,
            gateway,
            providers,
            pools,
        })
    }

    /// The file the configuration came from.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The `[cluster]` settings.
    pub fn cluster(&self) -> &ClusterConfig {
        &self.cluster
    }

    /// The `[sasl]` settings.
    pub fn sasl(&self) -> &SaslConfig {
        &self.sasl
    }

    /// The `[gateway]` settings.
    pub fn gateway(&self) -> &GatewayConfig {
        &self.gateway
    }

    /// The providers, in file order.
    pub fn providers(&self) -> &[ProviderConfig] {
        &self.providers
    }

    /// The pools, in file order.
    pub fn pools(&self) -> &PoolSet {
        &self.pools
    }
}

fn check_pool(
    d: &mut Diagnostics<'_>,
    raw: &Spanned<RawPool>,
    pool: &Entry,
    provider_ids: &[Option<String>],
) -> Option<Pool> {
    let p = raw.get_ref();
    let sec = Section::Pool(pool.clone());
    let id = p.id.get_ref().clone();
    let before = d.errors.len();
    if id.is_empty() || id.contains(|c: char| c == ',' || c.is_whitespace() || c.is_control()) {
        d.error(
            Some(&p.id.span()),
            sec.field("id"),
            "must be non-empty, without commas, spaces or control characters",
        );
    }
    let provider = provider_ids
        .iter()
        .position(|q| q.as_deref() == Some(p.provider.get_ref()));
    if provider.is_none() {
        d.error(
            Some(&p.provider.span()),
            sec.field("provider"),
            format!("no provider has id `{}`", clip(p.provider.get_ref())),
        );
    }
    let identity_src = p
        .identity_claim
        .as_ref()
        .map_or("claims.sub", |s| s.get_ref().as_str());
    let identity = ClaimExpr::compile(identity_src)
        .map_err(|e| {
            let span = p.identity_claim.as_ref().map(Spanned::span);
            d.error(span.as_ref(), sec.field("identity_claim"), e.to_string());
        })
        .ok();
    let filter_src = p.filter.as_ref().map_or("true", |s| s.get_ref().as_str());
    let filter = Filter::compile(filter_src)
        .map_err(|e| {
            let span = p.filter.as_ref().map(Spanned::span);
            d.error(span.as_ref(), sec.field("filter"), e.to_string());
        })
        .ok();
    let mut grants = Vec::new();
    for (i, g) in p.grants.iter().enumerate() {
        let grant = Section::Grant {
            pool: pool.clone(),
            n: i + 1,
        };
        if let Some(t) = check_grant(d, g, &grant) {
            grants.push(t);
        }
    }
    if d.errors.len() > before {
        return None;
    }
    Some(Pool {
        id,
        provider: provider?,
        provider_id: p.provider.get_ref().clone(),
        identity: identity?,
        filter: filter?,
        grants,
    })
}

fn check_grant(
    d: &mut Diagnostics<'_>,
    raw: &Spanned<RawGrant>,
    sec: &Section,
) -> Option<GrantTemplate> {
    let g = raw.get_ref();
    let ops = |d: &mut Diagnostics<'_>, field: &str, list: &Spanned<Vec<String>>| {
        let mut set = OperationSet::EMPTY;
        for name in list.get_ref() {
            match name.parse::<Operation>() {
                Ok(op) => set.insert(op),
                Err(e) => d.error(Some(&list.span()), sec.field(field), e.to_string()),
            }
        }
        set
    };
    let (effect, what): (Effect, GrantOps) = match (&g.role, &g.allow, &g.deny) {
        (Some(role), None, None) => match role.get_ref().parse::<Role>() {
            Ok(r) => (Effect::Allow, GrantOps::Role(r)),
            Err(e) => {
                d.error(Some(&role.span()), sec.field("role"), e.to_string());
                return None;
            }
        },
        (None, Some(list), None) => (Effect::Allow, GrantOps::Operations(ops(d, "allow", list))),
        (None, None, Some(list)) => (Effect::Deny, GrantOps::Operations(ops(d, "deny", list))),
        _ => {
            d.error(
                Some(&raw.span()),
                sec.whole(),
                "needs exactly one of `role`, `allow` and `deny`",
            );
            return None;
        }
    };
    match GrantTemplate::parse(effect, what, g.resource.get_ref()) {
        Ok(t) => Some(t),
        Err(e) => {
            let span = g.resource.span();
            d.error(Some(&span), sec.field("resource"), e.to_string());
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        for (text, secs) in [
            ("0s", 0),
            ("45s", 45),
            ("10m", 600),
            ("1h", 3600),
            ("7d", 604_800),
        ] {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_secs(secs)),
                "{text}"
            );
        }
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        use DurationError::*;
        let no_unit = |s: &str| NoUnit(s.to_owned());
        let not_one = |s: &str| NotADuration(s.to_owned());
        let unknown = |s: &str| UnknownUnit(s.to_owned());
        for (bad, why) in [
            ("", NoUnit(String::new())),
            ("10", no_unit("10")),
            ("s", not_one("s")),
            ("-1s", not_one("-1s")),
            ("99999999999999999999d", not_one("99999999999999999999d")),
            ("10x", unknown("10x")),
            ("1.5h", unknown("1.5h")),
            ("30 s", unknown("30 s")),
            (
                "184467440737095516d",
                TooLong("184467440737095516d".to_owned()),
            ),
        ] {
            assert_eq!(parse_duration(bad), Err(why), "{bad}");
        }
        assert_eq!(
            parse_duration("30 seconds").unwrap_err().to_string(),
            "`30 seconds` has an unknown unit (use ms, s, m, h or d)"
        );
    }

    fn gateway_of(toml_text: &str) -> (GatewayConfig, Vec<String>) {
        let mut d = Diagnostics::new("c.toml", toml_text);
        let raw = parse_raw(&mut d, toml_text);
        let g = raw
            .and_then(|r| r.gateway)
            .map(|g| check_gateway(&mut d, &g, Path::new(".")))
            .unwrap_or_default();
        (g, d.errors.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn routing_fields_and_their_errors() {
        let (g, errs) = gateway_of(
            "[gateway]\nnode_ids = \"3-5, 0\"\nnode_port_base = 19000\ndrain_timeout = \"5s\"\nmax_connection_age = \"1h\"\n",
        );
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(g.routing, Routing::Ports);
        assert_eq!(g.node_ids, [(0, 0), (3, 5)]);
        assert_eq!(g.node_port_base, Some(19000));
        assert_eq!(g.drain_timeout, Duration::from_secs(5));
        assert_eq!(g.max_connection_age, Some(Duration::from_secs(3600)));
        let defaults = GatewayConfig::default();
        assert_eq!(defaults.node_ids, [(0, 15)]);
        assert_eq!(defaults.max_connection_age, None);

        let (g, errs) = gateway_of(
            "[gateway]\nrouting = \"sni\"\nsni_node_pattern = \"B{node_id}.Kafka.example.com\"\n",
        );
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(g.routing, Routing::Sni);
        assert_eq!(
            g.sni_node_pattern.as_deref(),
            Some("b{node_id}.kafka.example.com")
        );

        for (text, line, field, says) in [
            ("routing = \"dns\"", 2, "routing", "not `ports` or `sni`"),
            ("node_ids = \"5-3\"", 2, "node_ids", "empty range"),
            ("node_ids = \"0-3,2\"", 2, "node_ids", "overlaps"),
            ("node_ids = \"-1\"", 2, "node_ids", "not a node id"),
            ("node_ids = \"0-9999\"", 2, "node_ids", "more than 4096"),
            (
                "node_port_base = 65530",
                2,
                "node_port_base",
                "at most 65535",
            ),
            ("routing = \"sni\"", 2, "sni_node_pattern", "is required"),
            (
                "routing = \"sni\"\nsni_node_pattern = \"broker.kafka.example.com\"",
                3,
                "sni_node_pattern",
                "exactly once",
            ),
            (
                "routing = \"sni\"\nsni_node_pattern = \"b{node_id}\"",
                3,
                "sni_node_pattern",
                "not a DNS name pattern",
            ),
            (
                "routing = \"sni\"\nsni_node_pattern = \"b{node_id}.x.com\"\nnode_port_base = 9000",
                4,
                "node_port_base",
                "applies to",
            ),
            (
                "sni_node_pattern = \"b{node_id}.x.com\"",
                2,
                "sni_node_pattern",
                "applies to",
            ),
            (
                "drain_timeout = \"0s\"",
                2,
                "drain_timeout",
                "more than zero",
            ),
        ] {
            let (_, errs) = gateway_of(&format!("[gateway]\n{text}\n"));
            assert_eq!(errs.len(), 1, "{text}: {errs:?}");
            assert!(
                errs[0].starts_with(&format!("c.toml:{line}: [gateway], field `{field}`"))
                    && errs[0].contains(says),
                "{text}: {errs:?}"
            );
        }
    }

    #[test]
    fn a_changed_gateway_field_is_named_as_needing_a_restart() {
        let (a, _) = gateway_of("[gateway]\nnode_port_base = 19000\n");
        let (b, _) = gateway_of("[gateway]\nnode_port_base = 19100\nidle_timeout = \"1m\"\n");
        assert_eq!(a.restart_required(&a), Vec::<&str>::new());
        assert_eq!(a.restart_required(&b), ["idle_timeout", "node_port_base"]);
    }

    fn provider_errors(toml_text: &str) -> Vec<String> {
        let mut d = Diagnostics::new("c.toml", toml_text);
        let raw = parse_raw(&mut d, toml_text);
        if let Some(raw) = raw {
            for (i, p) in raw.providers.iter().enumerate() {
                check_provider(&mut d, p, i + 1, Path::new("/etc/poolgate"));
            }
        }
        d.errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn provider_errors_name_file_line_provider_and_field() {
        let errs = provider_errors(
            "[[providers]]\nid = \"op\"\nissuer = \"https://idp\"\naudiences = [\"kafka\"]\njwks_uri = \"http://idp.example.com/keys\"\nclock_skew = \"30 s\"\n",
        );
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(
            errs[0].starts_with("c.toml:6: provider `op`, field `clock_skew`"),
            "{errs:?}"
        );
        assert!(
            errs[1].starts_with("c.toml:5: provider `op`, field `jwks_uri`"),
            "{errs:?}"
        );
        assert!(errs[1].contains("not an https URL"), "{errs:?}");
    }

    #[test]
    fn unknown_fields_and_missing_sources_are_errors() {
        let errs = provider_errors(
            "[[providers]]\nid = \"op\"\nissuer = \"https://idp\"\naudiences = [\"kafka\"]\njwks_url = \"https://x\"\n",
        );
        // The typo, with a hint; and what it leaves out (the provider has no key source now).
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(
            errs[0].starts_with("c.toml:5: provider `op`, field `jwks_url`: unknown field (did you mean `jwks_uri`?)"),
            "{errs:?}"
        );
        assert!(errs[1].contains("exactly one key source"), "{errs:?}");

        let errs = provider_errors(
            "[[providers]]\nid = \"op\"\nissuer = \"https://idp\"\naudiences = [\"kafka\"]\n",
        );
        assert!(errs[0].contains("exactly one key source"), "{errs:?}");

        let errs = provider_errors(
            "[[providers]]\nid = \"op\"\nissuer = \"https://idp\"\naudiences = []\njwks_file = \"k.json\"\n",
        );
        assert!(errs[0].contains("field `audiences`"), "{errs:?}");

        let errs = provider_errors(
            "[[providers]]\nid = \"op\"\nissuer = \"https://idp\"\naudiences = [\"k\"]\nalgorithms = [\"HS256\"]\njwks_file = \"k.json\"\n",
        );
        assert!(
            errs[0].contains("field `algorithms`") && errs[0].contains("HS256"),
            "{errs:?}"
        );
    }

    const PROVIDER: &str = "[[providers]]\nid = \"op\"\nissuer = \"https://idp\"\naudiences = [\"kafka\"]\njwks_file = \"k.json\"\n";

    fn config_errors(pools: &str) -> Vec<String> {
        let text = format!("{PROVIDER}{pools}");
        match Config::parse(&text, "c.toml", Path::new(".")) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    /// For each `(text after PROVIDER, error)`, some error contains the error.
    fn assert_reported(cases: &[(&str, &str)]) {
        for (text, want) in cases {
            let errs = config_errors(text);
            assert!(
                errs.iter().any(|e| e.contains(want)),
                "want {want:?} in {errs:?}"
            );
        }
    }

    #[test]
    fn pool_errors_name_the_pool_field_and_line() {
        let cases = [
            (
                "[[pools]]\nid = \"p\"\nprovider = \"nope\"\n",
                "c.toml:8: pool `p`, field `provider`",
            ),
            (
                "[[pools]]\nid = \"p\"\nprovider = \"op\"\nfilter = 'claims.aud =='\n",
                "c.toml:9: pool `p`, field `filter`",
            ),
            (
                "[[pools]]\nid = \"p\"\nprovider = \"op\"\nfilter = 'request.x == 1'\n",
                "c.toml:9: pool `p`, field `filter`",
            ),
            (
                "[[pools]]\nid = \"p\"\nprovider = \"op\"\nfilter = '1 + 2'\n",
                "c.toml:9: pool `p`, field `filter`",
            ),
            (
                "[[pools]]\nid = \"p\"\nprovider = \"op\"\nidentity_claim = 'claims.'\n",
                "c.toml:9: pool `p`, field `identity_claim`",
            ),
            (
                "[[pools]]\nid = \"p,q\"\nprovider = \"op\"\n",
                "c.toml:7: pool `p,q`, field `id`",
            ),
            (
                "[[pools]]\nid = \"p\"\nprovider = \"op\"\n[[pools.grants]]\nrole = \"Boss\"\nresource = \"Topic:x\"\n",
                "c.toml:10: pool `p`, grant 1, field `role`",
            ),
            (
                "[[pools]]\nid = \"p\"\nprovider = \"op\"\n[[pools.grants]]\nallow = [\"Fly\"]\nresource = \"Topic:x\"\n",
                "c.toml:10: pool `p`, grant 1, field `allow`",
            ),
            (
                "[[pools]]\nid = \"p\"\nprovider = \"op\"\n[[pools.grants]]\nallow = [\"Read\"]\nresource = \"Topic:x-{claims\"\n",
                "c.toml:11: pool `p`, grant 1, field `resource`",
            ),
            (
                "[[pools]]\nid = \"p\"\nprovider = \"op\"\n[[pools.grants]]\nallow = [\"Read\"]\ndeny = [\"Read\"]\nresource = \"Topic:x\"\n",
                "pool `p`, grant 1: needs exactly one",
            ),
            (
                "[[pools]]\nid = \"p\"\nprovider = \"op\"\ncolour = \"red\"\n",
                "c.toml:9",
            ),
            (
                "[[pools]]\nid = \"p\"\nprovider = \"op\"\n[[pools]]\nid = \"p\"\nprovider = \"op\"\n",
                "c.toml:10: pool `p`, field `id`: is used by an earlier pool",
            ),
        ];
        assert_reported(&cases);
        assert!(config_errors("[[pools]]\nid = \"p\"\nprovider = \"op\"\n").is_empty());
    }

    #[test]
    fn every_error_is_reported_not_just_the_first() {
        let errs = config_errors(
            "[[pools]]\nid = \"a\"\nprovider = \"x\"\n[[pools]]\nid = \"b\"\nprovider = \"op\"\nfilter = '1'\n",
        );
        assert_eq!(errs.len(), 2, "{errs:?}");
    }

    #[test]
    fn unknown_fields_are_errors_in_every_section() {
        // (text after PROVIDER, its first line being line 6; the error's start)
        let cases = [
            (
                "[cluster]\ncolour = 1\n",
                "c.toml:7: [cluster], field `colour`: unknown field",
            ),
            (
                "[sasl]\nchallenge_scop = \"k\"\n",
                "c.toml:7: [sasl], field `challenge_scop`: unknown field (did you mean `challenge_scope`?)",
            ),
            (
                "[gateway]\nallow_plaintext = true\ncolour = 1\n",
                "c.toml:8: [gateway], field `colour`: unknown field",
            ),
            (
                "[gateway.upstream]\ncolour = 1\n",
                "c.toml:7: [gateway.upstream], field `colour`: unknown field",
            ),
            (
                "[[providers]]\nid = \"two\"\ncolour = 1\n",
                "c.toml:8: provider `two`, field `colour`: unknown field",
            ),
            (
                "[[pools]]\nid = \"p\"\nprovider = \"op\"\ncolour = 1\n",
                "c.toml:9: pool `p`, field `colour`: unknown field",
            ),
            (
                "[[pools]]\nid = \"p\"\nprovider = \"op\"\n[[pools.grants]]\nrole = \"DeveloperRead\"\nresource = \"Topic:x\"\ncolour = 1\n",
                "c.toml:12: pool `p`, grant 1, field `colour`: unknown field",
            ),
            (
                "[pool]\nid = \"p\"\n",
                "c.toml:6: field `pool`: unknown field (did you mean `pools`?)",
            ),
        ];
        assert_reported(&cases);
        let top = format!("colour = 1\n{PROVIDER}");
        let errs = Config::parse(&top, "c.toml", Path::new(".")).unwrap_err();
        assert!(
            errs.to_string()
                .starts_with("c.toml:1: field `colour`: unknown field, expected one of `cluster`"),
            "{errs}"
        );
    }

    #[test]
    fn every_section_is_read_even_when_another_has_errors() {
        let errs = config_errors(concat!(
            "[cluster]\nid = \"lkc-1\"\nlogical = true\n",
            "[gateway]\nidle_timeout = \"5 minutes\"\n",
            "[[pools]]\nid = \"a\"\nprovider = \"op\"\nfliter = 'true'\n",
            "[[pools]]\nid = \"b\"\nprovider = \"op\"\nfilter = '1 +'\n",
            "[[pools]]\nid = 3\nprovider = \"op\"\n",
            "[[pools]]\nprovider = \"op\"\n[[pools.grants]]\nrole = \"Boss\"\nresource = \"Topic:x\"\n",
        ));
        let want = [
            "c.toml:8: [cluster], field `logical`: unknown field",
            "c.toml:10: [gateway], field `idle_timeout`: `5 minutes` has an unknown unit",
            "c.toml:14: pool `a`, field `fliter`: unknown field (did you mean `filter`?)",
            "c.toml:18: pool `b`, field `filter`",
            "c.toml:20: pool 3, field `id`: invalid type: integer `3`, expected a string",
            "c.toml:22: pool 4: missing field `id`",
        ];
        assert_eq!(errs.len(), want.len(), "{errs:#?}");
        for (e, want) in errs.iter().zip(want) {
            assert!(e.starts_with(want), "want {want:?}, got {e:?}");
        }
    }

    #[test]
    fn errors_carry_their_section_id_and_field() {
        let text = format!(
            "{PROVIDER}[[pools]]\nid = \"p\"\nprovider = \"op\"\ncolour = 1\n[sasl]\nscope = 1\n"
        );
        let errs = Config::parse(&text, "c.toml", Path::new("."))
            .unwrap_err()
            .0;
        let got: Vec<_> = errs
            .iter()
            .map(|e| {
                (
                    e.line,
                    e.section.header(),
                    e.section.id(),
                    e.field.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (Some(9), "[[pools]]", Some("p"), Some("colour")),
                (Some(11), "[sasl]", None, Some("scope")),
            ]
        );
        assert_eq!(errs[0].context(), "pool `p`, field `colour`");
    }

    #[test]
    fn cluster_and_sasl_sections() {
        let text = format!(
            "[cluster]\nid = \"lkc-1\"\nrequire_logical_cluster = true\n[sasl]\nchallenge_scope = \"kafka\"\n{PROVIDER}"
        );
        let c = Config::parse(&text, "c.toml", Path::new(".")).unwrap();
        assert_eq!(c.cluster().id.as_deref(), Some("lkc-1"));
        assert!(c.cluster().require_logical_cluster);
        assert_eq!(c.sasl().challenge_scope.as_deref(), Some("kafka"));
        let bad = format!("[cluster]\nrequire_logical_cluster = true\n{PROVIDER}");
        assert!(Config::parse(&bad, "c.toml", Path::new(".")).is_err());
        let none = Config::parse("", "c.toml", Path::new(".")).unwrap_err();
        assert!(none.to_string().contains("no `[[providers]]`"), "{none}");
    }

    #[test]
    fn a_good_provider_converts() {
        let text = "[[providers]]\nid = \"op\"\nissuer = \"https://idp\"\naudiences = [\"kafka\"]\njwks_file = \"keys/jwks.json\"\nmax_stale = \"1d\"\nrequire_claims = [\"sub\"]\n";
        let mut d = Diagnostics::new("c.toml", text);
        let raw = parse_raw(&mut d, text).unwrap();
        let p = check_provider(&mut d, &raw.providers[0], 1, Path::new("/etc/poolgate")).unwrap();
        assert_eq!(
            p.source,
            KeySource::JwksFile(PathBuf::from("/etc/poolgate/keys/jwks.json"))
        );
        assert_eq!(p.store.max_stale, Duration::from_secs(86_400));
        assert_eq!(p.policy.required_claims(), ["sub".to_owned()]);
    }

    #[test]
    fn restart_required_compares_the_pass_through_apis_not_their_lines() {
        let gateway = |apis: &[(&str, usize)]| GatewayConfig {
            pass_through: apis
                .iter()
                .map(|&(name, line)| PassThrough {
                    name: name.to_owned(),
                    line,
                })
                .collect(),
            ..GatewayConfig::default()
        };
        let old = gateway(&[("DescribeProducers", 19), ("ListTransactions", 19)]);
        for (new, expected) in [
            // A line added above moves them: nothing changed.
            (
                gateway(&[("DescribeProducers", 20), ("ListTransactions", 20)]),
                &[][..],
            ),
            (
                gateway(&[("ListTransactions", 19), ("DescribeProducers", 20)]),
                &[][..],
            ),
            (gateway(&[("DescribeProducers", 19)]), &["pass_through"][..]),
            (
                GatewayConfig {
                    login_timeout: Duration::from_secs(4),
                    ..gateway(&[("DescribeProducers", 1), ("ListTransactions", 2)])
                },
                &["login_timeout"][..],
            ),
        ] {
            assert_eq!(old.restart_required(&new), expected, "{new:?}");
        }
    }
}
