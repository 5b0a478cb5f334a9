//! Owns the OpenID Connect discovery document: where it lives and what poolgate takes from it.
//!
//! Pure: the fetch happens in the key store; this only parses and checks.

use serde::Deserialize;
use url::Url;

/// What poolgate needs from a discovery document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discovery {
    /// The issuer, equal to the configured one.
    pub issuer: String,
    /// Where the key set lives.
    pub jwks_uri: Url,
    /// The token endpoint, if advertised (the CLI's `token` command uses it).
    pub token_endpoint: Option<Url>,
}

/// A discovery document that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// Not a JSON object with string `issuer` and `jwks_uri`.
    #[error("the discovery document is not a JSON object with `issuer` and `jwks_uri` strings")]
    Invalid,
    /// `jwks_uri` is not a URL.
    #[error("`jwks_uri` is not a valid URL")]
    BadJwksUri,
    /// The document names another issuer (OpenID Connect Discovery 1.0, section 4.3).
    #[error("the discovery document names issuer `{found}`, not the configured `{expected}`")]
    WrongIssuer {
        /// The configured issuer.
        expected: String,
        /// The issuer the document names.
        found: String,
    },
}

#[derive(Deserialize)]
struct Raw {
    issuer: String,
    jwks_uri: String,
    token_endpoint: Option<String>,
}

impl Discovery {
    /// Parses a discovery document and requires its `issuer` to equal `expected_issuer` exactly.
    ///
    /// ```
    /// use poolgate::Discovery;
    /// let doc = br#"{"issuer":"https://idp","jwks_uri":"https://idp/keys"}"#;
    /// let d = Discovery::parse(doc, "https://idp").unwrap();
    /// assert_eq!(d.jwks_uri.as_str(), "https://idp/keys");
    /// assert!(Discovery::parse(doc, "https://idp/").is_err());
    /// ```
    ///
    /// # Errors
    /// [`DiscoveryError`].
    pub fn parse(body: &[u8], expected_issuer: &str) -> Result<Discovery, DiscoveryError> {
        let raw: Raw = serde_json::from_slice(body).map_err(|_| DiscoveryError::Invalid)?;
        if raw.issuer != expected_issuer {
            return Err(DiscoveryError::WrongIssuer {
                expected: expected_issuer.to_owned(),
                found: crate::error::clip(&raw.issuer),
            });
        }
        let jwks_uri = Url::parse(&raw.jwks_uri).map_err(|_| DiscoveryError::BadJwksUri)?;
        let token_endpoint = raw.token_endpoint.and_then(|t| Url::parse(&t).ok());
        Ok(Discovery {
            issuer: raw.issuer,
            jwks_uri,
            token_endpoint,
        })
    }

    /// The conventional discovery URL of an issuer: `{issuer}/.well-known/openid-configuration`
    /// (RFC 8414 style insertion is not used; OpenID Connect appends).
    ///
    /// ```
    /// use poolgate::Discovery;
    /// let u = Discovery::url_for("https://idp.example.com/oauth2/").unwrap();
    /// assert_eq!(u.as_str(), "https://idp.example.com/oauth2/.well-known/openid-configuration");
    /// ```
    ///
    /// # Errors
    /// [`url::ParseError`] when the issuer is not a URL.
    pub fn url_for(issuer: &str) -> Result<Url, url::ParseError> {
        Url::parse(&format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_documents() {
        assert_eq!(
            Discovery::parse(b"garbage", "i"),
            Err(DiscoveryError::Invalid)
        );
        assert_eq!(
            Discovery::parse(br#"{"issuer":"i"}"#, "i"),
            Err(DiscoveryError::Invalid)
        );
        assert_eq!(
            Discovery::parse(br#"{"issuer":"i","jwks_uri":"not a url"}"#, "i"),
            Err(DiscoveryError::BadJwksUri)
        );
        assert!(matches!(
            Discovery::parse(
                br#"{"issuer":"https://evil","jwks_uri":"https://evil/k"}"#,
                "https://idp"
            ),
            Err(DiscoveryError::WrongIssuer { .. })
        ));
    }
}
