//! Owns which proxy, if any, a key or discovery fetch goes through: the proxy variables that
//! count, `NO_PROXY` matching, and how a proxy is shown (credentials redacted).
//!
//! Pure: the environment is read once by [`ProxyEnv::from_process`] (or given by the caller)
//! and passed in; no I/O here. The rule:
//!
//! - plain `http://` (allowed only to loopback, with `insecure_allow_http`) is always fetched
//!   directly: `HTTP_PROXY`, `ALL_PROXY` and every other variable are ignored for it, since a
//!   proxy would see and could replace the keys in transit;
//! - `https://` may go through `HTTPS_PROXY` (else `ALL_PROXY`), unless the host matches
//!   `NO_PROXY`: TLS to the issuer authenticates it end to end through the tunnel.

use std::fmt;
use std::net::IpAddr;

use url::Url;

/// Variables that name the proxy for https, in order of precedence (as curl and reqwest).
const HTTPS_VARS: [&str; 4] = ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"];
/// Variables that list hosts fetched without a proxy, in order of precedence.
const NO_PROXY_VARS: [&str; 2] = ["NO_PROXY", "no_proxy"];
/// Set by a CGI server; then the proxy variables may come from a request (httpoxy) and are
/// ignored, as reqwest does.
const CGI_VAR: &str = "REQUEST_METHOD";

/// The proxy-related environment variables, read from the process or given.
///
/// ```
/// use poolgate::proxy::ProxyEnv;
/// let env = ProxyEnv::from_vars([("HTTPS_PROXY", "proxy.corp:3128"), ("NO_PROXY", ".internal")]);
/// let rule = env.rule().unwrap();
/// let via = rule.route(&"https://idp.example.com/jwks".parse().unwrap());
/// assert_eq!(via.to_string(), "http://proxy.corp:3128/ (from HTTPS_PROXY)");
/// let direct = rule.route(&"http://127.0.0.1:8080/jwks".parse().unwrap());
/// assert_eq!(direct.to_string(), "none (plain http on loopback is always fetched directly)");
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ProxyEnv {
    vars: Vec<(String, String)>,
}

/// Names only: a proxy value may hold a password.
impl fmt::Debug for ProxyEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyEnv")
            .field("set", &self.vars.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .finish()
    }
}

impl ProxyEnv {
    /// The relevant variables of this process's environment, read now.
    pub fn from_process() -> ProxyEnv {
        let names = HTTPS_VARS.iter().chain(&NO_PROXY_VARS).chain([&CGI_VAR]);
        ProxyEnv {
            vars: names
                .filter_map(|n| Some(((*n).to_owned(), std::env::var(n).ok()?)))
                .collect(),
        }
    }

    /// These variables, as if they were the environment (tests, embedders). Names are exact
    /// (`HTTPS_PROXY` and `https_proxy` differ, as in a process environment).
    pub fn from_vars<K: Into<String>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> ProxyEnv {
        ProxyEnv {
            vars: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// The first of `names` that is set and not empty, with its value.
    fn first(&self, names: &[&'static str]) -> Option<(&'static str, &str)> {
        names.iter().find_map(|name| {
            self.vars
                .iter()
                .find(|(k, v)| k == name && !v.trim().is_empty())
                .map(|(_, v)| (*name, v.trim()))
        })
    }

    /// The proxy rule these variables make.
    ///
    /// # Errors
    /// [`ProxyError`] when the https proxy variable is not a usable proxy URL.
    pub fn rule(&self) -> Result<ProxyRule, ProxyError> {
        if self.vars.iter().any(|(k, _)| k == CGI_VAR) {
            return Ok(ProxyRule {
                https: None,
                no_proxy: NoProxy::default(),
                cgi: true,
            });
        }
        let https = match self.first(&HTTPS_VARS) {
            None => None,
            Some((variable, value)) => Some(ProxyTarget {
                url: parse_proxy_url(value).map_err(|reason| ProxyError { variable, reason })?,
                variable,
            }),
        };
        let no_proxy = self
            .first(&NO_PROXY_VARS)
            .map(|(variable, value)| NoProxy::parse(variable, value))
            .unwrap_or_default();
        Ok(ProxyRule {
            https,
            no_proxy,
            cgi: false,
        })
    }
}

/// Where a fetcher's proxy variables come from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxySource {
    /// This process's environment, read when the fetcher is built (default, as curl and
    /// reqwest do).
    #[default]
    Process,
    /// These variables instead (tests, embedders); `ProxyEnv::default()` means no proxy.
    Given(ProxyEnv),
}

impl ProxySource {
    /// The variables this source stands for.
    pub fn env(&self) -> ProxyEnv {
        match self {
            ProxySource::Process => ProxyEnv::from_process(),
            ProxySource::Given(env) => env.clone(),
        }
    }
}

/// A proxy variable that is not a usable proxy URL. Never shows the value, which may hold
/// credentials.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("proxy variable `{variable}` is not a usable proxy URL: {reason}")]
pub struct ProxyError {
    /// The variable, e.g. `HTTPS_PROXY`.
    pub variable: &'static str,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// `proxy.corp:3128` means `http://proxy.corp:3128`, as curl reads it.
fn parse_proxy_url(value: &str) -> Result<Url, &'static str> {
    let with_scheme;
    let text = if value.contains("://") {
        value
    } else {
        with_scheme = format!("http://{value}");
        &with_scheme
    };
    let url = Url::parse(text).map_err(|_| "not a URL")?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("only http:// and https:// proxies are supported");
    }
    if url.host().is_none() {
        return Err("no host");
    }
    Ok(url)
}

/// A proxy and the variable that named it.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyTarget {
    url: Url,
    variable: &'static str,
}

/// The URL redacted, as everywhere it is shown.
impl fmt::Debug for ProxyTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyTarget")
            .field("url", &self.redacted())
            .field("variable", &self.variable)
            .finish()
    }
}

impl ProxyTarget {
    /// The proxy URL, credentials included: for the HTTP client only, never for display.
    pub(crate) fn url(&self) -> &Url {
        &self.url
    }

    /// The variable that named it (`HTTPS_PROXY`, `all_proxy`, ...).
    pub fn variable(&self) -> &'static str {
        self.variable
    }

    /// The proxy URL with any user name and password replaced by `***`.
    pub fn redacted(&self) -> String {
        redact(&self.url)
    }
}

/// `url` with its user name and password, if any, replaced by `***`.
pub(crate) fn redact(url: &Url) -> String {
    if url.username().is_empty() && url.password().is_none() {
        return url.to_string();
    }
    let mut shown = url.clone();
    // Cannot fail: the URL has a host (it has credentials).
    let _ = shown.set_password(None);
    let _ = shown.set_username("***");
    shown.to_string()
}

/// Which proxy each fetch uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxyRule {
    https: Option<ProxyTarget>,
    no_proxy: NoProxy,
    cgi: bool,
}

/// How one URL is fetched.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Route<'a> {
    /// Plain http (loopback only): always direct.
    PlainHttp,
    /// https with no proxy variable set.
    NoProxySet,
    /// https to a host that matches `NO_PROXY`.
    Excluded {
        /// The host.
        host: String,
        /// `NO_PROXY` or `no_proxy`.
        variable: &'static str,
    },
    /// `REQUEST_METHOD` is set: the proxy variables are ignored.
    Cgi,
    /// https through this proxy.
    Proxy(&'a ProxyTarget),
}

impl Route<'_> {
    /// The proxy, if the fetch goes through one.
    pub fn proxy(&self) -> Option<&ProxyTarget> {
        match self {
            Route::Proxy(p) => Some(p),
            _ => None,
        }
    }
}

impl fmt::Display for Route<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Route::PlainHttp => {
                f.write_str("none (plain http on loopback is always fetched directly)")
            }
            Route::NoProxySet => f.write_str("none (no HTTPS_PROXY or ALL_PROXY set)"),
            Route::Excluded { host, variable } => {
                write!(f, "none (`{host}` matches {variable})")
            }
            Route::Cgi => f.write_str("none (REQUEST_METHOD is set: proxy variables ignored)"),
            Route::Proxy(p) => write!(f, "{} (from {})", p.redacted(), p.variable),
        }
    }
}

impl ProxyRule {
    /// How `url` is fetched. Anything but `https://` is direct: plain http is allowed only to
    /// loopback, and never through a proxy.
    pub fn route(&self, url: &Url) -> Route<'_> {
        if url.scheme() != "https" {
            return Route::PlainHttp;
        }
        if self.cgi {
            return Route::Cgi;
        }
        let Some(target) = &self.https else {
            return Route::NoProxySet;
        };
        match url.host() {
            Some(host) if self.no_proxy.matches(&host) => Route::Excluded {
                host: host.to_string(),
                variable: self.no_proxy.variable,
            },
            _ => Route::Proxy(target),
        }
    }

    /// Whether any fetch may go through a proxy.
    pub(crate) fn has_proxy(&self) -> bool {
        self.https.is_some() && !self.cgi
    }
}

/// A `NO_PROXY` list, matched as curl and reqwest do: `*` matches every host; an IP address or
/// CIDR block matches addresses; a name (a leading dot is ignored) matches itself and its
/// subdomains, ignoring case.
///
/// Hand-written because reqwest's matcher (in hyper-util) answers only inside the client; the
/// output of `poolgate jwks` must say what the client will do, so both use this one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct NoProxy {
    variable: &'static str,
    entries: Vec<NoProxyEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum NoProxyEntry {
    All,
    Net(IpAddr, u8),
    Domain(String),
}

impl NoProxy {
    fn parse(variable: &'static str, value: &str) -> NoProxy {
        let entries = value
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|e| {
                if e == "*" {
                    return NoProxyEntry::All;
                }
                if let Ok(ip) = e.parse::<IpAddr>() {
                    return NoProxyEntry::Net(ip, max_prefix(ip));
                }
                if let Some((ip, prefix)) = e.split_once('/')
                    && let (Ok(ip), Ok(prefix)) = (ip.parse::<IpAddr>(), prefix.parse::<u8>())
                    && prefix <= max_prefix(ip)
                {
                    return NoProxyEntry::Net(ip, prefix);
                }
                NoProxyEntry::Domain(e.trim_start_matches('.').to_ascii_lowercase())
            })
            .collect();
        NoProxy { variable, entries }
    }

    fn matches(&self, host: &url::Host<&str>) -> bool {
        let ip = match host {
            url::Host::Ipv4(ip) => Some(IpAddr::V4(*ip)),
            url::Host::Ipv6(ip) => Some(IpAddr::V6(*ip)),
            url::Host::Domain(_) => None,
        };
        self.entries.iter().any(|entry| match (entry, host, ip) {
            (NoProxyEntry::All, _, _) => true,
            (NoProxyEntry::Net(net, prefix), _, Some(ip)) => in_net(ip, *net, *prefix),
            (NoProxyEntry::Domain(d), url::Host::Domain(h), None) => {
                let h = h.to_ascii_lowercase();
                h == *d
                    || h.strip_suffix(d.as_str())
                        .is_some_and(|rest| rest.ends_with('.'))
            }
            _ => false,
        })
    }
}

fn max_prefix(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { 32 } else { 128 }
}

fn in_net(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    let (a, b, width) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a)), u128::from(u32::from(b)), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        _ => return false,
    };
    let shift = u32::from(width - prefix);
    a.checked_shr(shift).unwrap_or(0) == b.checked_shr(shift).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(vars: &[(&str, &str)], url: &str) -> String {
        let rule = ProxyEnv::from_vars(vars.iter().copied()).rule().unwrap();
        rule.route(&Url::parse(url).unwrap()).to_string()
    }

    #[test]
    fn plain_http_is_always_direct() {
        let every = [
            ("HTTP_PROXY", "http://p:1"),
            ("http_proxy", "http://p:1"),
            ("HTTPS_PROXY", "http://p:1"),
            ("ALL_PROXY", "http://p:1"),
            ("all_proxy", "http://p:1"),
        ];
        for url in [
            "http://127.0.0.1:8080/jwks",
            "http://localhost/x",
            "http://[::1]/",
        ] {
            assert_eq!(
                route(&every, url),
                "none (plain http on loopback is always fetched directly)"
            );
        }
    }

    #[test]
    fn https_routes() {
        let u = "https://idp.example.com/jwks";
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], "none (no HTTPS_PROXY or ALL_PROXY set)"),
            (
                &[("HTTP_PROXY", "http://p:1")],
                "none (no HTTPS_PROXY or ALL_PROXY set)",
            ),
            (
                &[("HTTPS_PROXY", "")],
                "none (no HTTPS_PROXY or ALL_PROXY set)",
            ),
            (
                &[("HTTPS_PROXY", "http://p:1")],
                "http://p:1/ (from HTTPS_PROXY)",
            ),
            (
                &[("https_proxy", "p:3128")],
                "http://p:3128/ (from https_proxy)",
            ),
            (&[("ALL_PROXY", "https://p")], "https://p/ (from ALL_PROXY)"),
            (
                &[("ALL_PROXY", "http://a:1"), ("HTTPS_PROXY", "http://h:1")],
                "http://h:1/ (from HTTPS_PROXY)",
            ),
            (
                &[("HTTPS_PROXY", "http://u:secret@p:1")],
                "http://***@p:1/ (from HTTPS_PROXY)",
            ),
            (
                &[("HTTPS_PROXY", "http://u@p:1")],
                "http://***@p:1/ (from HTTPS_PROXY)",
            ),
            (
                &[("HTTPS_PROXY", "http://p:1"), ("REQUEST_METHOD", "GET")],
                "none (REQUEST_METHOD is set: proxy variables ignored)",
            ),
            (
                &[
                    ("HTTPS_PROXY", "http://p:1"),
                    ("NO_PROXY", "x.org, .example.com"),
                ],
                "none (`idp.example.com` matches NO_PROXY)",
            ),
            (
                &[("HTTPS_PROXY", "http://p:1"), ("no_proxy", "*")],
                "none (`idp.example.com` matches no_proxy)",
            ),
        ];
        for (vars, want) in cases {
            assert_eq!(route(vars, u), *want, "{vars:?}");
        }
    }

    #[test]
    fn no_proxy_matching() {
        let np = NoProxy::parse("NO_PROXY", "Example.com, 10.0.0.0/8, ::1, 192.168.1.7");
        let m = |h: &str| {
            np.matches(
                &Url::parse(&format!("https://{h}/"))
                    .unwrap()
                    .host()
                    .unwrap(),
            )
        };
        assert!(m("example.com"));
        assert!(m("IDP.example.COM"));
        assert!(!m("notexample.com"));
        assert!(!m("example.com.evil.org"));
        assert!(m("10.2.3.4"));
        assert!(!m("11.2.3.4"));
        assert!(m("[::1]"));
        assert!(m("192.168.1.7"));
        assert!(!m("192.168.1.8"));
        let zero = NoProxy::parse("NO_PROXY", "0.0.0.0/0");
        assert!(zero.matches(&url::Host::Ipv4("8.8.8.8".parse().unwrap())));
    }

    #[test]
    fn debug_output_never_shows_proxy_credentials() {
        let env = ProxyEnv::from_vars([("HTTPS_PROXY", "http://u:hunter2@p:1")]);
        let rule = env.rule().unwrap();
        let shown = format!("{env:?} {rule:?} {:?}", ProxySource::Given(env.clone()));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("HTTPS_PROXY"), "{shown}");
    }

    #[test]
    fn unusable_proxy_values_are_refused_without_echo() {
        for value in ["socks5://u:secret@p:1080", "http://", "ht tp://u:secret@p"] {
            let err = ProxyEnv::from_vars([("HTTPS_PROXY", value)])
                .rule()
                .unwrap_err();
            assert_eq!(err.variable, "HTTPS_PROXY");
            assert!(!err.to_string().contains("secret"), "{err}");
        }
    }
}
