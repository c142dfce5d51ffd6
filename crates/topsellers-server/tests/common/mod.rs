//! Helpers for the in-process HTTP tests: build a router, send a request, read the answer.

#![allow(dead_code)] // each test file uses its own subset

pub mod fixture;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use bytes::Bytes;
use http_body_util::BodyExt;
use std::sync::Arc;
use topsellers_server::{router, AppState, Metrics, PurchaseSink, Results, ServerConfig};
use tower::ServiceExt;

pub const TOKEN: &str = "test-token-0123456789";

pub struct TestApp {
    pub router: Router,
    pub results: Results,
    pub metrics: Arc<Metrics>,
}

pub fn app_with(config: ServerConfig, sink: Option<Arc<dyn PurchaseSink>>) -> TestApp {
    let results = Results::new();
    let metrics = Arc::new(Metrics::new());
    let router = router(AppState {
        results: results.clone(),
        sink,
        metrics: Arc::clone(&metrics),
        config: Arc::new(config),
    });
    TestApp {
        router,
        results,
        metrics,
    }
}

/// A read-only app with the fixture snapshot published.
pub fn published_app() -> TestApp {
    let app = app_with(ServerConfig::default(), None);
    app.results.publish(fixture::snapshot());
    app
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
            .to_str()
            .unwrap()
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.to_vec()).unwrap()
    }
}

pub async fn send(router: &Router, request: Request<Body>) -> Answer {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body,
    }
}

pub async fn get(router: &Router, uri: &str) -> Answer {
    send(router, Request::get(uri).body(Body::empty()).unwrap()).await
}
