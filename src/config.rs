//! Owns the TOML configuration file: its shape (a public contract), durations, and load-time
//! validation with errors that name the file, line, provider or pool, and field.
//!
//! Pure: [`Config::parse`] takes text; only [`Config::load`] reads a file.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use url::Url;

use crate::algorithm::Algorithm;
use crate::authz::{Effect, GrantOps, GrantTemplate, Operation, OperationSet, Role};
use crate::fetch::FetchOptions;
use crate::filter::{ClaimExpr, Filter};
use crate::keystore::{KeySource, KeyStoreConfig};
use crate::policy::Policy;
use crate::pool::{Pool, PoolSet};

mod upstream;

pub use self::upstream::{
    ScramHash, SecretSource, UpstreamConfig, UpstreamOAuth, UpstreamSasl, UpstreamTls,
};

/// A configuration error: where it is and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file (or the name given to [`Config::parse`]).
    pub file: String,
    /// The 1-based line, when known.
    pub line: Option<usize>,
    /// What the error is about, such as "pool `analytics`, field `filter`".
    pub context: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.context.is_empty() {
            write!(f, ": {}", self.context)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Every error found in one configuration, in file order.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.0))]
pub struct ConfigErrors(pub Vec<ConfigError>);

fn render(errors: &[ConfigError]) -> String {
    match errors {
        [one] => one.to_string(),
        many => format!(
            "{} configuration errors: {}",
            many.len(),
            many.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        ),
    }
}

/// Parses a human duration: a whole number followed by `ms`, `s`, `m`, `h` or `d`.
///
/// ```
/// use poolgate::config::parse_duration;
/// use std::time::Duration;
/// assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
/// assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
/// assert!(parse_duration("7 days").is_err());
/// ```
///
/// # Errors
/// A message saying what is wrong.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{s}` has no unit (use ms, s, m, h or d)"))?;
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like `30s`, `10m`, `1h` or `7d`"))?;
    let secs = match unit {
        "ms" => return Ok(Duration::from_millis(n)),
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        _ => return Err(format!("`{s}` has an unknown unit (use ms, s, m, h or d)")),
    };
    secs.map(Duration::from_secs)
        .ok_or_else(|| format!("`{s}` is too long"))
}

// ---------------------------------------------------------------------------------------------
// The file's shape. Field names are part of the public contract.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    #[serde(default)]
    pub(crate) cluster: Option<RawCluster>,
    #[serde(default)]
    pub(crate) sasl: Option<RawSasl>,
    #[serde(default)]
    pub(crate) gateway: Option<RawGateway>,
    #[serde(default)]
    pub(crate) providers: Vec<Spanned<RawProvider>>,
    #[serde(default)]
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
    pub(crate) upstream: Option<upstream::RawUpstream>,
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
    #[serde(default)]
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

// ---------------------------------------------------------------------------------------------

/// Collects errors with file and line while a configuration is checked.
pub(crate) struct Diagnostics<'a> {
    file: &'a str,
    text: &'a str,
    pub(crate) errors: Vec<ConfigError>,
}

impl<'a> Diagnostics<'a> {
    pub(crate) fn new(file: &'a str, text: &'a str) -> Self {
        Diagnostics {
            file,
            text,
            errors: Vec::new(),
        }
    }

    pub(crate) fn line_of(&self, span: &Range<usize>) -> usize {
        let end = span.start.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }

    pub(crate) fn error(
        &mut self,
        span: Option<&Range<usize>>,
        context: impl Into<String>,
        message: impl Into<String>,
    ) {
        let line = span.map(|s| self.line_of(s));
        self.errors.push(ConfigError {
            file: self.file.to_owned(),
            line,
            context: context.into(),
            message: message.into(),
        });
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

fn duration_field(
    d: &mut Diagnostics<'_>,
    ctx: &str,
    name: &str,
    value: &Option<Spanned<String>>,
) -> Option<Duration> {
    let v = value.as_ref()?;
    match parse_duration(v.get_ref()) {
        Ok(dur) => Some(dur),
        Err(msg) => {
            d.error(Some(&v.span()), format!("{ctx}, field `{name}`"), msg);
            None
        }
    }
}

/// Checks one provider entry, resolving a relative `jwks_file` against `base_dir`.
pub(crate) fn check_provider(
    d: &mut Diagnostics<'_>,
    raw: &Spanned<RawProvider>,
    base_dir: &Path,
) -> Option<ProviderConfig> {
    let p = raw.get_ref();
    let id = p.id.get_ref().clone();
    let ctx = format!("provider `{}`", crate::error::clip(&id));
    let errors_before = d.errors.len();
    if id.is_empty() {
        d.error(
            Some(&p.id.span()),
            format!("{ctx}, field `id`"),
            "must not be empty",
        );
    }

    let mut builder = Policy::builder(p.issuer.get_ref().clone());
    if p.issuer.get_ref().is_empty() {
        d.error(
            Some(&p.issuer.span()),
            format!("{ctx}, field `issuer`"),
            "must not be empty",
        );
    }
    match (&p.audiences, p.allow_any_audience) {
        (Some(a), false) if a.get_ref().is_empty() => d.error(
            Some(&a.span()),
            format!("{ctx}, field `audiences`"),
            "is empty: list the audiences, or set allow_any_audience = true",
        ),
        (Some(a), false) => builder = builder.audiences(a.get_ref().iter().cloned()),
        (None, false) => d.error(
            Some(&raw.span()),
            format!("{ctx}, field `audiences`"),
            "is missing: list the audiences, or set allow_any_audience = true",
        ),
        (Some(a), true) => d.error(
            Some(&a.span()),
            format!("{ctx}, field `audiences`"),
            "cannot be combined with allow_any_audience = true",
        ),
        (None, true) => builder = builder.dangerous_allow_any_audience(),
    }
    if let Some(algs) = &p.algorithms {
        let mut parsed = Vec::new();
        for name in algs.get_ref() {
            match name.parse::<Algorithm>() {
                Ok(a) => parsed.push(a),
                Err(e) => d.error(
                    Some(&algs.span()),
                    format!("{ctx}, field `algorithms`"),
                    e.to_string(),
                ),
            }
        }
        if algs.get_ref().is_empty() {
            d.error(
                Some(&algs.span()),
                format!("{ctx}, field `algorithms`"),
                "is empty",
            );
        }
        builder = builder.algorithms(parsed);
    }
    if let Some(skew) = duration_field(d, &ctx, "clock_skew", &p.clock_skew) {
        builder = builder.clock_skew(skew);
    }
    if let Some(claims) = &p.require_claims {
        builder = builder.require_claims(claims.iter().cloned());
    }
    if let Some(types) = &p.token_types {
        if types.get_ref().is_empty() {
            d.error(
                Some(&types.span()),
                format!("{ctx}, field `token_types`"),
                "is empty",
            );
        }
        builder = builder.token_types(types.get_ref().iter());
    }
    if let Some(max) = duration_field(d, &ctx, "max_token_lifetime", &p.max_token_lifetime) {
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
    if let Some(v) = duration_field(d, &ctx, "refresh_interval", &p.refresh_interval) {
        store.refresh_interval = v;
    }
    if let Some(v) = duration_field(d, &ctx, "min_refresh_interval", &p.min_refresh_interval) {
        store.min_refresh_interval = v;
    }
    if let Some(v) = duration_field(d, &ctx, "max_stale", &p.max_stale) {
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
            let field_ctx = format!("{ctx}, field `{field}`");
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
                        d.error(Some(&value.span()), field_ctx, format!("is not a URL: {e}"));
                        None
                    }
                    Ok(url) => match crate::fetch::check_url(&url, p.insecure_allow_http) {
                        Err(e) => {
                            d.error(Some(&value.span()), field_ctx, e.to_string());
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
                ctx.clone(),
                "needs exactly one key source: discovery_url, jwks_uri or jwks_file",
            );
            None
        }
        [_, (field, value), ..] => {
            d.error(
                Some(&value.span()),
                format!("{ctx}, field `{field}`"),
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
                d.error(Some(&raw.span()), ctx.clone(), e.to_string());
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

/// Parses TOML text into the raw shape, reporting syntax errors, unknown fields and wrong types
/// with their line.
pub(crate) fn parse_raw(d: &mut Diagnostics<'_>, text: &str) -> Option<RawConfig> {
    match toml::from_str::<RawConfig>(text) {
        Ok(raw) => Some(raw),
        Err(e) => {
            let span = e.span();
            d.error(span.as_ref(), "", e.message().trim().replace('\n', " "));
            None
        }
    }
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
                "[gateway], field `pass_through`",
                format!("`{}` is not a Kafka API name", crate::error::clip(n)),
            );
        } else if raw.pass_through[..i].iter().any(|e| e.get_ref() == n) {
            d.error(
                Some(&name.span()),
                "[gateway], field `pass_through`",
                format!("`{n}` is listed twice"),
            );
        }
        let line = d.line_of(&name.span());
        g.pass_through.push(PassThrough {
            name: n.clone(),
            line,
        });
    }
    let mut duration = |field: &Option<Spanned<String>>, name: &str, out: &mut Duration| {
        if let Some(v) = field {
            match parse_duration(v.get_ref()) {
                Ok(x) if !x.is_zero() => *out = x,
                Ok(_) => d.error(
                    Some(&v.span()),
                    format!("[gateway], field `{name}`"),
                    "must be more than zero",
                ),
                Err(e) => d.error(Some(&v.span()), format!("[gateway], field `{name}`"), e),
            }
        }
    };
    duration(&raw.login_timeout, "login_timeout", &mut g.login_timeout);
    duration(&raw.idle_timeout, "idle_timeout", &mut g.idle_timeout);
    let mut cap = Duration::MAX;
    duration(&raw.max_session_lifetime, "max_session_lifetime", &mut cap);
    g.max_session_lifetime = (cap != Duration::MAX).then_some(cap);
    duration(&raw.failure_delay, "failure_delay", &mut g.failure_delay);
    duration(&raw.drain_timeout, "drain_timeout", &mut g.drain_timeout);
    let mut age = Duration::MAX;
    duration(&raw.max_connection_age, "max_connection_age", &mut age);
    g.max_connection_age = (age != Duration::MAX).then_some(age);
    duration(
        &raw.metadata_refresh_interval,
        "metadata_refresh_interval",
        &mut g.metadata_refresh_interval,
    );
    duration(
        &raw.max_failure_delay,
        "max_failure_delay",
        &mut g.max_failure_delay,
    );
    if g.max_failure_delay < g.failure_delay {
        let span = raw.max_failure_delay.as_ref().map(Spanned::span);
        d.error(
            span.as_ref(),
            "[gateway], field `max_failure_delay`",
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
            "[gateway], field `max_failure_delay`",
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
                        format!("[gateway], field `{name}`"),
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
                "[gateway], field `metrics_listen`",
                "is not an IP address and port, such as 127.0.0.1:9464",
            ),
        }
    }
    check_routing(d, raw, &mut g);
    g
}

/// The `[gateway]` routing fields: `routing`, `node_ids`, `node_port_base`, `sni_node_pattern`.
fn check_routing(d: &mut Diagnostics<'_>, raw: &RawGateway, g: &mut GatewayConfig) {
    if let Some(r) = &raw.routing {
        match r.get_ref().as_str() {
            "ports" => g.routing = Routing::Ports,
            "sni" => g.routing = Routing::Sni,
            other => d.error(
                Some(&r.span()),
                "[gateway], field `routing`",
                format!("`{}` is not `ports` or `sni`", crate::error::clip(other)),
            ),
        }
    }
    if let Some(ids) = &raw.node_ids {
        match parse_node_ids(ids.get_ref()) {
            Ok(ranges) => g.node_ids = ranges,
            Err(e) => d.error(Some(&ids.span()), "[gateway], field `node_ids`", e),
        }
    }
    let highest = g.node_ids.iter().map(|&(_, hi)| hi).max().unwrap_or(0);
    if let Some(base) = &raw.node_port_base {
        let n = *base.get_ref();
        if g.routing == Routing::Sni {
            d.error(
                Some(&base.span()),
                "[gateway], field `node_port_base`",
                "applies to `routing = \"ports\"` only",
            );
        } else if !(1..=65535).contains(&n) || n + i64::from(highest) > 65535 {
            d.error(
                Some(&base.span()),
                "[gateway], field `node_port_base`",
                format!(
                    "must be a port such that `node_port_base` + the highest node id ({highest}) is at most 65535"
                ),
            );
        } else {
            g.node_port_base = u16::try_from(n).ok();
        }
    }
    match (&raw.sni_node_pattern, g.routing) {
        (Some(p), Routing::Sni) => match check_node_pattern(p.get_ref()) {
            Ok(()) => g.sni_node_pattern = Some(p.get_ref().to_ascii_lowercase()),
            Err(e) => d.error(Some(&p.span()), "[gateway], field `sni_node_pattern`", e),
        },
        (Some(p), Routing::Ports) => d.error(
            Some(&p.span()),
            "[gateway], field `sni_node_pattern`",
            "applies to `routing = \"sni\"` only",
        ),
        (None, Routing::Sni) => d.error(
            raw.routing.as_ref().map(Spanned::span).as_ref(),
            "[gateway], field `sni_node_pattern`",
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
                    crate::error::clip(part)
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
            crate::error::clip(p)
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
            crate::error::clip(p)
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
/// let err = Config::parse("[[pools]]\nid = 1\n", "bad.toml", std::path::Path::new(".")).unwrap_err();
/// assert!(err.to_string().starts_with("bad.toml:2"));
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
                context: String::new(),
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
            return Err(ConfigErrors(d.errors));
        };
        let cluster = match &raw.cluster {
            None => ClusterConfig::default(),
            Some(c) => {
                if let Some(id) = &c.id
                    && id.get_ref().is_empty()
                {
                    d.error(
                        Some(&id.span()),
                        "[cluster], field `id`",
                        "must not be empty",
                    );
                }
                if c.require_logical_cluster && c.id.is_none() {
                    d.error(
                        None,
                        "[cluster], field `require_logical_cluster`",
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
                        "[sasl], field `challenge_openid_configuration`",
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
        if raw.providers.is_empty() {
            d.error(None, "", "no `[[providers]]` configured");
        }
        let mut providers = Vec::new();
        for (i, raw_provider) in raw.providers.iter().enumerate() {
            let p = raw_provider.get_ref();
            let earlier = &raw.providers[..i];
            if earlier
                .iter()
                .any(|q| q.get_ref().id.get_ref() == p.id.get_ref())
            {
                let ctx = format!(
                    "provider `{}`, field `id`",
                    crate::error::clip(p.id.get_ref())
                );
                d.error(Some(&p.id.span()), ctx, "is used by an earlier provider");
            }
            if earlier
                .iter()
                .any(|q| q.get_ref().issuer.get_ref() == p.issuer.get_ref())
            {
                let ctx = format!(
                    "provider `{}`, field `issuer`",
                    crate::error::clip(p.id.get_ref())
                );
                d.error(
                    Some(&p.issuer.span()),
                    ctx,
                    "is the issuer of an earlier provider",
                );
            }
            if let Some(provider) = check_provider(&mut d, raw_provider, base_dir) {
                providers.push(provider);
            }
        }
        let mut pools = Vec::new();
        for (i, raw_pool) in raw.pools.iter().enumerate() {
            let earlier = &raw.pools[..i];
            let id = raw_pool.get_ref().id.get_ref();
            if earlier.iter().any(|q| q.get_ref().id.get_ref() == id) {
                let ctx = format!("pool `{}`, field `id`", crate::error::clip(id));
                d.error(
                    Some(&raw_pool.get_ref().id.span()),
                    ctx,
                    "is used by an earlier pool",
                );
            }
            if let Some(pool) = check_pool(&mut d, raw_pool, &raw.providers) {
                pools.push(pool);
            }
        }
        if !d.errors.is_empty() {
            return Err(ConfigErrors(d.errors));
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
    providers: &[Spanned<RawProvider>],
) -> Option<Pool> {
    let p = raw.get_ref();
    let id = p.id.get_ref().clone();
    let ctx = format!("pool `{}`", crate::error::clip(&id));
    let before = d.errors.len();
    if id.is_empty() || id.contains(|c: char| c == ',' || c.is_whitespace() || c.is_control()) {
        d.error(
            Some(&p.id.span()),
            format!("{ctx}, field `id`"),
            "must be non-empty, without commas, spaces or control characters",
        );
    }
    let provider = providers
        .iter()
        .position(|q| q.get_ref().id.get_ref() == p.provider.get_ref());
    if provider.is_none() {
        d.error(
            Some(&p.provider.span()),
            format!("{ctx}, field `provider`"),
            format!(
                "no provider has id `{}`",
                crate::error::clip(p.provider.get_ref())
            ),
        );
    }
    let identity_src = p
        .identity_claim
        .as_ref()
        .map_or("claims.sub", |s| s.get_ref().as_str());
    let identity = ClaimExpr::compile(identity_src)
        .map_err(|e| {
            let span = p.identity_claim.as_ref().map(Spanned::span);
            d.error(
                span.as_ref(),
                format!("{ctx}, field `identity_claim`"),
                e.to_string(),
            );
        })
        .ok();
    let filter_src = p.filter.as_ref().map_or("true", |s| s.get_ref().as_str());
    let filter = Filter::compile(filter_src)
        .map_err(|e| {
            let span = p.filter.as_ref().map(Spanned::span);
            d.error(
                span.as_ref(),
                format!("{ctx}, field `filter`"),
                e.to_string(),
            );
        })
        .ok();
    let mut grants = Vec::new();
    for (i, g) in p.grants.iter().enumerate() {
        let gctx = format!("{ctx}, grant {}", i + 1);
        if let Some(t) = check_grant(d, g, &gctx) {
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
    ctx: &str,
) -> Option<GrantTemplate> {
    let g = raw.get_ref();
    let ops = |d: &mut Diagnostics<'_>, field: &str, list: &Spanned<Vec<String>>| {
        let mut set = OperationSet::EMPTY;
        for name in list.get_ref() {
            match name.parse::<Operation>() {
                Ok(op) => set.insert(op),
                Err(e) => d.error(
                    Some(&list.span()),
                    format!("{ctx}, field `{field}`"),
                    e.to_string(),
                ),
            }
        }
        set
    };
    let (effect, what): (Effect, GrantOps) = match (&g.role, &g.allow, &g.deny) {
        (Some(role), None, None) => match role.get_ref().parse::<Role>() {
            Ok(r) => (Effect::Allow, GrantOps::Role(r)),
            Err(e) => {
                d.error(
                    Some(&role.span()),
                    format!("{ctx}, field `role`"),
                    e.to_string(),
                );
                return None;
            }
        },
        (None, Some(list), None) => (Effect::Allow, GrantOps::Operations(ops(d, "allow", list))),
        (None, None, Some(list)) => (Effect::Deny, GrantOps::Operations(ops(d, "deny", list))),
        _ => {
            d.error(
                Some(&raw.span()),
                ctx.to_owned(),
                "needs exactly one of `role`, `allow` and `deny`",
            );
            return None;
        }
    };
    match GrantTemplate::parse(effect, what, g.resource.get_ref()) {
        Ok(t) => Some(t),
        Err(e) => {
            d.error(
                Some(&g.resource.span()),
                format!("{ctx}, field `resource`"),
                e.to_string(),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        for bad in [
            "",
            "s",
            "10",
            "10x",
            "-1s",
            "1.5h",
            "99999999999999999999d",
            "184467440737095516d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
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
            for p in &raw.providers {
                check_provider(&mut d, p, Path::new("/etc/poolgate"));
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
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with("c.toml:5"), "{errs:?}");
        assert!(errs[0].contains("jwks_url"), "{errs:?}");

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
        for (pools, want) in cases {
            let errs = config_errors(pools);
            assert!(
                errs.iter().any(|e| e.contains(want)),
                "want {want:?} in {errs:?}"
            );
        }
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
        let p = check_provider(&mut d, &raw.providers[0], Path::new("/etc/poolgate")).unwrap();
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
