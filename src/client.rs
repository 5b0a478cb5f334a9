//! Owns the OAuth 2.0 client side the CLI needs: finding an issuer's token endpoint through
//! OpenID Connect discovery and fetching an access token with the `client_credentials` grant
//! (RFC 6749 section 4.4), authenticating with `client_secret_basic`.
//!
//! An I/O shell with the same rules as the key fetcher: https only (plain http only to a
//! loopback host, only when allowed, and never through a proxy), timeouts, a response size cap, no redirects for the
//! token request. Errors never contain the secret or the token.

use std::fmt;

use base64::Engine as _;
use url::Url;

use crate::discovery::{Discovery, DiscoveryError};
use crate::fetch::{FetchError, FetchOptions, Fetcher, HttpClients};
use crate::http;

/// A confidential client's credentials.
#[derive(Clone)]
pub struct ClientCredentials {
    /// `client_id`.
    pub client_id: String,
    /// `client_secret`; never printed (`Debug` hides it).
    pub client_secret: String,
    /// The `scope` to ask for, if any.
    pub scope: Option<String>,
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"(hidden)")
            .field("scope", &self.scope)
            .finish()
    }
}

/// A successful token response (RFC 6749 section 5.1).
#[derive(Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: String,
    /// `Bearer`.
    pub token_type: String,
    /// Seconds until it expires, when the server says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
    /// The granted scope, when the server says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field(
                "access_token",
                &format_args!("({} bytes)", self.access_token.len()),
            )
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish()
    }
}

/// Why no token was obtained.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The issuer is not a URL.
    #[error("issuer `{0}` is not a URL")]
    BadIssuer(String),
    /// The discovery document or the token request could not be fetched.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The discovery document is unusable or names another issuer.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// The discovery document advertises no `token_endpoint`.
    #[error("the discovery document of `{0}` has no `token_endpoint`")]
    NoTokenEndpoint(String),
    /// The token endpoint refused (an OAuth error such as `invalid_client`).
    #[error("the token endpoint `{url}` answered HTTP {status}{}", .error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default())]
    Refused {
        /// The token endpoint.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The OAuth `error` code, if the body had one.
        error: Option<String>,
    },
    /// The token endpoint answered 200 with something that is not a token response.
    #[error("the token endpoint `{url}` answered with no usable token: {reason}")]
    InvalidResponse {
        /// The token endpoint.
        url: String,
        /// What is wrong.
        reason: String,
    },
}

impl ClientError {
    /// Whether the error is the caller's input or configuration (a bad or insecure URL, a
    /// discovery document naming another issuer) rather than the server's answer.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            ClientError::BadIssuer(_)
                | ClientError::Fetch(FetchError::InsecureUrl(_))
                | ClientError::Discovery(DiscoveryError::WrongIssuer { .. })
        )
    }
}

/// Fetches tokens from an issuer's token endpoint.
#[derive(Clone, Debug)]
pub struct TokenClient {
    fetcher: Fetcher,
    http: HttpClients,
}

impl TokenClient {
    /// A client with these fetch options (timeouts, size cap, loopback http).
    ///
    /// # Errors
    /// [`ClientError::Fetch`] when a proxy variable is unusable or the TLS stack cannot be
    /// initialised.
    pub fn new(options: FetchOptions) -> Result<TokenClient, ClientError> {
        // The same proxy rule as key fetches: plain http (with the secret in it) never goes
        // through a proxy.
        let http = HttpClients::build(&options, reqwest::redirect::Policy::none)?;
        Ok(TokenClient {
            fetcher: Fetcher::new(options)?,
            http,
        })
    }

    /// The token endpoint `issuer`'s discovery document advertises; the document's `issuer`
    /// must equal `issuer` exactly.
    ///
    /// # Errors
    /// Any [`ClientError`] but `Refused` and `InvalidResponse`.
    pub async fn token_endpoint(&self, issuer: &str) -> Result<Url, ClientError> {
        let url =
            Discovery::url_for(issuer).map_err(|_| ClientError::BadIssuer(issuer.to_owned()))?;
        let doc = self.fetcher.get(&url).await?;
        let discovery = Discovery::parse(&doc.body, issuer)?;
        let endpoint = discovery
            .token_endpoint
            .ok_or_else(|| ClientError::NoTokenEndpoint(issuer.to_owned()))?;
        self.fetcher.check_url(&endpoint)?;
        Ok(endpoint)
    }

    /// Fetches one token from `token_endpoint` with the `client_credentials` grant and
    /// `client_secret_basic` (id and secret form-encoded, then base64, RFC 6749 section 2.3.1).
    ///
    /// # Errors
    /// [`ClientError::Fetch`], [`ClientError::Refused`] or [`ClientError::InvalidResponse`].
    pub async fn fetch(
        &self,
        token_endpoint: &Url,
        credentials: &ClientCredentials,
    ) -> Result<TokenResponse, ClientError> {
        self.fetcher.check_url(token_endpoint)?;
        let shown = token_endpoint.as_str().to_owned();
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "client_credentials");
        if let Some(scope) = &credentials.scope {
            form.append_pair("scope", scope);
        }
        let body = form.finish();
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            form_encode(&credentials.client_id),
            form_encode(&credentials.client_secret)
        ));
        let request = self
            .http
            .for_url(token_endpoint)?
            .post(token_endpoint.clone())
            .header(reqwest::header::AUTHORIZATION, format!("Basic {basic}"))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body);
        let response = http::send(request, &shown).await?;
        let status = response.status();
        let limit = self.fetcher.options().max_response_size;
        // Read whatever the status: a refusal's body names the OAuth error.
        let bytes = http::read_body(response, &shown, limit).await?;
        if !status.is_success() {
            let error = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("error")?.as_str().map(crate::error::clip));
            return Err(ClientError::Refused {
                url: shown,
                status: status.as_u16(),
                error,
            });
        }
        let token: TokenResponse =
            serde_json::from_slice(&bytes).map_err(|_| ClientError::InvalidResponse {
                url: shown.clone(),
                reason: "not a JSON object with `access_token` and `token_type` strings".to_owned(),
            })?;
        if token.access_token.is_empty() {
            return Err(ClientError::InvalidResponse {
                url: shown,
                reason: "`access_token` is empty".to_owned(),
            });
        }
        Ok(token)
    }

    /// Discovers `issuer`'s token endpoint, then fetches one token from it.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn fetch_for_issuer(
        &self,
        issuer: &str,
        credentials: &ClientCredentials,
    ) -> Result<TokenResponse, ClientError> {
        let endpoint = self.token_endpoint(issuer).await?;
        self.fetch(&endpoint, credentials).await
    }
}

fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show_in_debug() {
        let c = ClientCredentials {
            client_id: "svc".into(),
            client_secret: "hunter2".into(),
            scope: None,
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        let t = TokenResponse {
            access_token: "eyJsecret".into(),
            token_type: "Bearer".into(),
            expires_in: Some(60),
            scope: None,
        };
        assert!(!format!("{t:?}").contains("eyJsecret"));
    }

    #[test]
    fn basic_credentials_are_form_encoded() {
        assert_eq!(form_encode("a b:c"), "a+b%3Ac");
    }

    #[test]
    fn usage_errors_are_told_apart() {
        assert!(ClientError::BadIssuer("x".into()).is_usage());
        assert!(ClientError::Fetch(FetchError::InsecureUrl("http://x".into())).is_usage());
        assert!(
            !ClientError::Refused {
                url: "u".into(),
                status: 401,
                error: None
            }
            .is_usage()
        );
    }
}
