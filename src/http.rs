//! Owns what the two HTTP shells (the key fetcher in `fetch.rs` and the token client in
//! `client.rs`) share once a request is built: sending it, turning reqwest's failures into
//! [`FetchError`]s, and reading a body under the size cap.
//!
//! The one place where a timeout, a refused connection, a refused redirect, a non-success
//! status or an oversized body gets its error; it must not decide what a status means to its
//! caller (the token client reads an OAuth error from a refusal's body).

use crate::fetch::FetchError;

/// Sends `request`; a failure becomes [`FetchError::Timeout`] or [`FetchError::Request`].
pub(crate) async fn send(
    request: reqwest::RequestBuilder,
    url: &str,
) -> Result<reqwest::Response, FetchError> {
    request.send().await.map_err(|e| request_error(url, &e))
}

/// [`FetchError::Status`] unless the response's status is a success.
pub(crate) fn require_success(response: &reqwest::Response, url: &str) -> Result<(), FetchError> {
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(FetchError::Status {
            url: url.to_owned(),
            status: status.as_u16(),
        })
    }
}

/// Reads the whole body, refusing one over `limit` bytes ([`FetchError::TooLarge`]) as soon as
/// `Content-Length` or the bytes received so far say so.
pub(crate) async fn read_body(
    mut response: reqwest::Response,
    url: &str,
    limit: usize,
) -> Result<Vec<u8>, FetchError> {
    let too_large = || FetchError::TooLarge {
        url: url.to_owned(),
        limit,
    };
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| request_error(url, &e))? {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A client that could not be built (the TLS stack could not be initialised).
pub(crate) fn build_error(e: &reqwest::Error) -> FetchError {
    FetchError::Request {
        url: String::new(),
        reason: e.to_string(),
    }
}

/// A request or body read that failed: [`FetchError::Timeout`] for a connect or request
/// timeout, else [`FetchError::Request`] with the innermost cause ("connection refused",
/// "redirect to another origin refused"), not reqwest's wrapper around it.
fn request_error(url: &str, e: &reqwest::Error) -> FetchError {
    if e.is_timeout() {
        return FetchError::Timeout(url.to_owned());
    }
    let mut reason = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        reason = s.to_string();
        source = s.source();
    }
    FetchError::Request {
        url: url.to_owned(),
        reason,
    }
}
