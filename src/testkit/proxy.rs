//! Owns a hostile forward proxy for tests: a plain-http server on 127.0.0.1 that answers every
//! request, whatever its target, as if it were the issuer, with its own key set. A client that
//! sends a key fetch through it would trust a key the test controls.
//!
//! It must not forward anything: it only answers and counts.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::net::TcpListener;

use super::keys::SigningKey;

struct Shared {
    key: Arc<SigningKey>,
    requests: AtomicU64,
}

/// A forward proxy that serves its own discovery document and JWKS for every target.
///
/// A request in absolute form (`GET http://127.0.0.1:8080/jwks`, as a client sends to an HTTP
/// proxy) is answered with `{"keys": [key]}`, or, for a path ending in
/// `/.well-known/openid-configuration`, with a discovery document naming the target's origin as
/// issuer and `{origin}/jwks` as `jwks_uri`. Every request is counted.
pub struct HostileProxy {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for HostileProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostileProxy")
            .field("addr", &self.addr)
            .field("requests", &self.requests())
            .finish_non_exhaustive()
    }
}

impl Drop for HostileProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(State(shared): State<Arc<Shared>>, uri: Uri) -> Response {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let origin = match (uri.scheme_str(), uri.authority()) {
        (Some(scheme), Some(authority)) => format!("{scheme}://{authority}"),
        _ => String::new(),
    };
    let body = if uri.path().ends_with("/.well-known/openid-configuration") {
        json!({ "issuer": origin, "jwks_uri": format!("{origin}/jwks") })
    } else {
        json!({ "keys": [shared.key.public_jwk()] })
    };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

impl HostileProxy {
    /// Starts the proxy on 127.0.0.1 (an ephemeral port), serving `key`'s public JWK; needs a
    /// tokio runtime.
    ///
    /// # Errors
    /// When the port cannot be bound.
    pub async fn start(key: Arc<SigningKey>) -> io::Result<HostileProxy> {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            key,
            requests: AtomicU64::new(0),
        });
        let app = Router::new()
            .fallback(answer)
            .with_state(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, app).await {
                tracing::warn!(%err, "testkit hostile proxy stopped");
            }
        });
        Ok(HostileProxy { shared, addr, task })
    }

    /// `http://127.0.0.1:PORT`, the value to put in `HTTP_PROXY`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many requests it has received.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }
}
