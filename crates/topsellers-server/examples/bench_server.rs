//! Serves the test fixture snapshot for load tests with `wrk`, and writes the default `/v1/top`
//! body to a file so that nginx can serve the same bytes as a static file (the peer we compare to).
//!
//! ```text
//! cargo run --release -p topsellers-server --example bench_server -- 127.0.0.1:18080 /tmp/top.json
//! wrk -t1 -c32 -d10s 'http://127.0.0.1:18080/v1/top'
//! ```

#[path = "../tests/common/fixture.rs"]
mod fixture;

use std::sync::Arc;
use topsellers_server::{router, serve, AppState, Metrics, Results, ServerConfig};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:18080".into());
    let body_path = args.next();

    let results = Results::new();
    results.publish(fixture::snapshot());
    let app = router(AppState {
        results: results.clone(),
        sink: None,
        metrics: Arc::new(Metrics::new()),
        config: Arc::new(ServerConfig::default()),
    });
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    if let Some(path) = body_path {
        // Fetch the body through the server itself, so nginx serves exactly what we serve.
        let body = fetch_default_top(app.clone()).await;
        std::fs::write(&path, body)?;
        eprintln!("wrote the default /v1/top body to {path}");
    }
    eprintln!("serving on http://{listen}/v1/top; Ctrl-C to stop");
    serve(listener, app, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}

async fn fetch_default_top(app: axum::Router) -> Vec<u8> {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let request = axum::http::Request::get("/v1/top")
        .body(axum::body::Body::empty())
        .expect("static request");
    let response = app.oneshot(request).await.expect("router is infallible");
    response
        .into_body()
        .collect()
        .await
        .expect("in-memory body")
        .to_bytes()
        .to_vec()
}
