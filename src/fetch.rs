//! Owns HTTP fetching of discovery documents and key sets: HTTPS rules, proxies, timeouts,
//! size cap, same-origin redirects, `Cache-Control: max-age`.
//!
//! A thin I/O shell: it returns bytes; parsing them is the pure core's job. Which proxy a URL
//! goes through is [`crate::proxy`]'s decision; here it is enforced with two clients: one for
//! `https://` only (through the https proxy, if any) and one for plain `http://` that never
//! uses a proxy.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::http::{self, build_error};
use crate::proxy::{ProxyError, ProxyRule, ProxySource, Route};

/// The default cap on a fetched document: 1 MiB.
pub const DEFAULT_MAX_RESPONSE_SIZE: usize = 1024 * 1024;

/// How documents are fetched.
///
/// ```
/// use poolgate::FetchOptions;
/// let opts = FetchOptions::default();
/// assert_eq!(opts.max_response_size, 1024 * 1024);
/// assert!(!opts.insecure_allow_http);
/// ```
#[derive(Clone, Debug)]
pub struct FetchOptions {
    /// Time allowed to establish a connection (default 5 s).
    pub connect_timeout: Duration,
    /// Time allowed for a whole request, body included (default 10 s).
    pub request_timeout: Duration,
    /// Larger responses are refused (default 1 MiB).
    pub max_response_size: usize,
    /// Allow plain `http://`, and only to loopback hosts (default false: HTTPS only). For tests
    /// and the local issuer. Plain http is always fetched directly, never through a proxy.
    pub insecure_allow_http: bool,
    /// Where the proxy variables come from (default: the process environment, read when the
    /// fetcher is built). Only `https://` fetches may use a proxy (`HTTPS_PROXY`, else
    /// `ALL_PROXY`, minus `NO_PROXY`); TLS authenticates the issuer through it.
    pub proxy: ProxySource,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            max_response_size: DEFAULT_MAX_RESPONSE_SIZE,
            insecure_allow_http: false,
            proxy: ProxySource::Process,
        }
    }
}

/// A fetch that failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The URL is not `https://` (or loopback `http://` with the insecure option).
    #[error(
        "`{0}` is not an https URL (plain http is allowed only to loopback hosts with insecure_allow_http)"
    )]
    InsecureUrl(String),
    /// The request could not be sent or the connection failed.
    #[error("request to `{url}` failed: {reason}")]
    Request {
        /// The URL fetched.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The connection or the request timed out.
    #[error("request to `{0}` timed out")]
    Timeout(String),
    /// A non-success HTTP status.
    #[error("`{url}` answered HTTP {status}")]
    Status {
        /// The URL fetched.
        url: String,
        /// The HTTP status code.
        status: u16,
    },
    /// The body exceeded the size cap.
    #[error("response from `{url}` exceeds {limit} bytes")]
    TooLarge {
        /// The URL fetched.
        url: String,
        /// The cap.
        limit: usize,
    },
    /// A proxy variable is not a usable proxy URL.
    #[error(transparent)]
    Proxy(#[from] ProxyError),
    /// A local key file could not be read.
    #[error("cannot read `{path}`: {reason}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

/// A fetched document.
#[derive(Clone, Debug)]
pub struct Fetched {
    /// The body.
    pub body: Vec<u8>,
    /// `Cache-Control: max-age`, when the server sent one.
    pub max_age: Option<Duration>,
}

/// The HTTP clients of one fetcher: which one a URL gets is what keeps plain http off proxies.
#[derive(Clone, Debug)]
pub(crate) struct HttpClients {
    /// `https://` only (reqwest refuses anything else, redirects included); through the https
    /// proxy when the rule names one.
    tls: reqwest::Client,
    /// Plain `http://`, never through a proxy; built only with `insecure_allow_http`.
    plain: Option<reqwest::Client>,
    rule: Arc<ProxyRule>,
}

impl HttpClients {
    /// Builds the clients; `redirect` makes each one's redirect policy.
    pub(crate) fn build(
        options: &FetchOptions,
        redirect: fn() -> reqwest::redirect::Policy,
    ) -> Result<HttpClients, FetchError> {
        let rule = Arc::new(options.proxy.env().rule()?);
        // `no_proxy()`: reqwest must not read the environment itself; only `rule` decides.
        let base = || {
            reqwest::Client::builder()
                .connect_timeout(options.connect_timeout)
                .timeout(options.request_timeout)
                .redirect(redirect())
                .user_agent(concat!("poolgate/", env!("CARGO_PKG_VERSION")))
                .no_proxy()
        };
        let mut tls = base().https_only(true);
        if rule.has_proxy() {
            let rule = Arc::clone(&rule);
            tls = tls.proxy(reqwest::Proxy::custom(move |url| {
                rule.route(url).proxy().map(|p| p.url().clone())
            }));
        }
        let tls = tls.build().map_err(|e| build_error(&e))?;
        let plain = if options.insecure_allow_http {
            Some(base().build().map_err(|e| build_error(&e))?)
        } else {
            None
        };
        Ok(HttpClients { tls, plain, rule })
    }

    /// The client for `url`, which [`check_url`] has allowed.
    pub(crate) fn for_url(&self, url: &Url) -> Result<&reqwest::Client, FetchError> {
        match (url.scheme(), &self.plain) {
            ("https", _) => Ok(&self.tls),
            ("http", Some(plain)) => Ok(plain),
            _ => Err(FetchError::InsecureUrl(url.as_str().to_owned())),
        }
    }

    /// How `url` is fetched: directly or through which proxy.
    pub(crate) fn route(&self, url: &Url) -> Route<'_> {
        self.rule.route(url)
    }
}

/// An HTTP client that applies [`FetchOptions`].
#[derive(Clone, Debug)]
pub struct Fetcher {
    clients: HttpClients,
    options: FetchOptions,
}

impl Fetcher {
    /// Builds a client with these options, reading the proxy variables now (see
    /// [`FetchOptions::proxy`]).
    ///
    /// # Errors
    /// [`FetchError::Proxy`] when the https proxy variable is not a usable URL;
    /// [`FetchError::Request`] when the TLS stack cannot be initialised.
    pub fn new(options: FetchOptions) -> Result<Fetcher, FetchError> {
        let clients = HttpClients::build(&options, || {
            reqwest::redirect::Policy::custom(same_origin_redirects)
        })?;
        Ok(Fetcher { clients, options })
    }

    /// The options in force.
    pub fn options(&self) -> &FetchOptions {
        &self.options
    }

    /// How `url` is fetched: directly, or through which proxy (plain http never is).
    pub fn route(&self, url: &Url) -> Route<'_> {
        self.clients.route(url)
    }

    /// Checks that `url` may be fetched under these options.
    ///
    /// # Errors
    /// [`FetchError::InsecureUrl`].
    pub fn check_url(&self, url: &Url) -> Result<(), FetchError> {
        check_url(url, self.options.insecure_allow_http)
    }

    /// GETs `url`, refusing non-2xx answers and bodies over the cap.
    ///
    /// # Errors
    /// Any [`FetchError`].
    pub async fn get(&self, url: &Url) -> Result<Fetched, FetchError> {
        self.check_url(url)?;
        let shown = url.as_str();
        let request = self
            .clients
            .for_url(url)?
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json");
        let response = http::send(request, shown).await?;
        http::require_success(&response, shown)?;
        let max_age = response
            .headers()
            .get_all(reqwest::header::CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(parse_max_age);
        let body = http::read_body(response, shown, self.options.max_response_size).await?;
        Ok(Fetched { body, max_age })
    }
}

/// Follows at most 5 redirects, and only within the origin of the first request: the scheme
/// cannot change, so a redirect never moves a fetch from one client (and its proxy rule) to the
/// other.
fn same_origin_redirects(attempt: reqwest::redirect::Attempt<'_>) -> reqwest::redirect::Action {
    let Some(first) = attempt.previous().first() else {
        return attempt.stop();
    };
    if attempt.previous().len() > 5 {
        attempt.error("too many redirects")
    } else if attempt.url().origin() != first.origin() {
        attempt.error("redirect to another origin refused")
    } else {
        attempt.follow()
    }
}

/// `https://` always; `http://` only to a loopback host and only when `insecure_allow_http`.
pub(crate) fn check_url(url: &Url, insecure_allow_http: bool) -> Result<(), FetchError> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if insecure_allow_http && is_loopback(url) => Ok(()),
        _ => Err(FetchError::InsecureUrl(url.as_str().to_owned())),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// The `max-age` directive of one `Cache-Control` header value, if any.
fn parse_max_age(value: &str) -> Option<Duration> {
    value.split(',').find_map(|directive| {
        let (name, secs) = directive.trim().split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("max-age") {
            return None;
        }
        secs.trim()
            .trim_matches('"')
            .parse::<u64>()
            .ok()
            .map(Duration::from_secs)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_rules() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert!(check_url(&u("https://idp.example.com/jwks"), false).is_ok());
        assert!(check_url(&u("http://idp.example.com/jwks"), false).is_err());
        assert!(check_url(&u("http://idp.example.com/jwks"), true).is_err());
        assert!(check_url(&u("http://127.0.0.1:8080/jwks"), false).is_err());
        assert!(check_url(&u("http://127.0.0.1:8080/jwks"), true).is_ok());
        assert!(check_url(&u("http://127.8.0.1/jwks"), true).is_ok());
        assert!(check_url(&u("http://[::1]:80/jwks"), true).is_ok());
        assert!(check_url(&u("http://localhost/jwks"), true).is_ok());
        assert!(check_url(&u("http://localhost.evil.com/jwks"), true).is_err());
        assert!(check_url(&u("file:///etc/passwd"), true).is_err());
        assert!(check_url(&u("ftp://127.0.0.1/x"), true).is_err());
    }

    #[test]
    fn max_age_parsing() {
        assert_eq!(parse_max_age("max-age=300"), Some(Duration::from_secs(300)));
        assert_eq!(
            parse_max_age("public, Max-Age=60, must-revalidate"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(parse_max_age("no-cache"), None);
        assert_eq!(parse_max_age("max-age=-1"), None);
        assert_eq!(parse_max_age("s-maxage=5"), None);
    }
}
