//! The HTTP fetcher against a small real server on 127.0.0.1: redirects, timeouts, caps.
#![cfg(feature = "testkit")]

use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use poolgate::{FetchError, FetchOptions, Fetcher};
use url::Url;

async fn serve() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = Router::new()
        .route(
            "/doc",
            get(|| async {
                (
                    [(header::CACHE_CONTROL, "public, max-age=120")],
                    "{\"ok\":true}",
                )
            }),
        )
        .route(
            "/same-origin",
            get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/doc")]) }),
        )
        .route(
            "/other-origin",
            get(move || async move {
                let to = format!("http://localhost:{port}/doc");
                let mut h = HeaderMap::new();
                h.insert(header::LOCATION, to.parse().unwrap());
                (StatusCode::FOUND, h).into_response()
            }),
        )
        .route(
            "/loop",
            get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/loop")]) }),
        )
        .route("/never", get(std::future::pending::<String>))
        .route("/teapot", get(|| async { StatusCode::IM_A_TEAPOT }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://127.0.0.1:{port}")
}

fn fetcher(opts: FetchOptions) -> Fetcher {
    Fetcher::new(FetchOptions {
        insecure_allow_http: true,
        ..opts
    })
    .unwrap()
}

fn url(base: &str, path: &str) -> Url {
    Url::parse(&format!("{base}{path}")).unwrap()
}

#[tokio::test]
async fn follows_same_origin_redirects_and_reads_max_age() {
    let base = serve().await;
    let f = fetcher(FetchOptions::default());
    let got = f.get(&url(&base, "/same-origin")).await.unwrap();
    assert_eq!(got.body, b"{\"ok\":true}");
    assert_eq!(got.max_age, Some(Duration::from_secs(120)));
}

#[tokio::test]
async fn refuses_redirects_to_another_origin_and_loops() {
    let base = serve().await;
    let f = fetcher(FetchOptions::default());
    for path in ["/other-origin", "/loop"] {
        let err = f.get(&url(&base, path)).await.unwrap_err();
        assert!(matches!(err, FetchError::Request { .. }), "{path}: {err}");
    }
}

#[tokio::test]
async fn times_out_and_reports_status() {
    let base = serve().await;
    let f = fetcher(FetchOptions {
        request_timeout: Duration::from_millis(200),
        ..FetchOptions::default()
    });
    let err = f.get(&url(&base, "/never")).await.unwrap_err();
    assert!(matches!(err, FetchError::Timeout(_)), "{err}");
    let err = f.get(&url(&base, "/teapot")).await.unwrap_err();
    assert_eq!(
        err,
        FetchError::Status {
            url: format!("{base}/teapot"),
            status: 418
        }
    );
}

#[tokio::test]
async fn caps_the_body() {
    let base = serve().await;
    let f = fetcher(FetchOptions {
        max_response_size: 5,
        ..FetchOptions::default()
    });
    let err = f.get(&url(&base, "/doc")).await.unwrap_err();
    assert!(
        matches!(err, FetchError::TooLarge { limit: 5, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn connection_refused_is_a_request_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let f = fetcher(FetchOptions::default());
    let err = f
        .get(&url(&format!("http://127.0.0.1:{port}"), "/x"))
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Request { .. }), "{err}");
}
