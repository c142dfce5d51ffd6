//! `POST /v1/purchases`: auth, limits, load shedding and how sink outcomes become statuses.

mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use bytes::Bytes;
use common::{app_with, send, TOKEN};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use topsellers_server::{
    BoxFuture, PurchaseSink, RejectedRecord, ServerConfig, SubmitContext, SubmitError, SubmitReport,
};

/// Accepts every non-blank line except those containing `bad`, and remembers the bodies.
#[derive(Default)]
struct LineSink {
    bodies: Mutex<Vec<Bytes>>,
    contexts: Mutex<Vec<SubmitContext>>,
}

impl PurchaseSink for LineSink {
    fn submit_with_context(
        &self,
        body: Bytes,
        ctx: SubmitContext,
    ) -> BoxFuture<'static, Result<SubmitReport, SubmitError>> {
        self.contexts.lock().unwrap().push(ctx);
        self.submit(body)
    }

    fn submit(&self, body: Bytes) -> BoxFuture<'static, Result<SubmitReport, SubmitError>> {
        self.bodies.lock().unwrap().push(body.clone());
        Box::pin(async move {
            let text = std::str::from_utf8(&body).map_err(|_| {
                SubmitError::BadRequest("body is not UTF-8; send UTF-8 NDJSON".into())
            })?;
            let mut report = SubmitReport::default();
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    report.skipped += 1;
                } else if line.contains("bad") {
                    report.rejected.push(RejectedRecord {
                        location: format!("line {}", i + 1),
                        field: Some("quantity".into()),
                        reason: "invalid_field".into(),
                        message: "quantity must be an integer".into(),
                    });
                } else {
                    report.accepted += 1;
                }
            }
            Ok(report)
        })
    }
}

/// Fails, or waits for a long time, or panics: the sink outcomes the server must map.
enum Misbehaving {
    Unavailable,
    /// Sleeps, then sets the flag (if any) and reports nothing.
    Slow(Duration, Option<Arc<AtomicBool>>),
    /// Panics when called.
    Panics,
    /// Returns a future that panics when polled.
    PanicsLater,
}

impl PurchaseSink for Misbehaving {
    fn submit(&self, _body: Bytes) -> BoxFuture<'static, Result<SubmitReport, SubmitError>> {
        match self {
            Misbehaving::Unavailable => Box::pin(async {
                Err(SubmitError::Unavailable(
                    "the log is unavailable; retry shortly".into(),
                ))
            }),
            Misbehaving::Slow(delay, finished) => {
                let (delay, finished) = (*delay, finished.clone());
                Box::pin(async move {
                    tokio::time::sleep(delay).await;
                    if let Some(flag) = finished {
                        flag.store(true, Ordering::SeqCst);
                    }
                    Ok(SubmitReport::default())
                })
            }
            Misbehaving::Panics => panic!("sink bug"),
            Misbehaving::PanicsLater => Box::pin(async { panic!("sink bug later") }),
        }
    }
}

fn config() -> ServerConfig {
    ServerConfig {
        auth_token: Some(TOKEN.into()),
        ..ServerConfig::default()
    }
}

fn post(body: impl Into<Body>, authorization: Option<&str>) -> Request<Body> {
    let mut request = Request::post("/v1/purchases");
    if let Some(a) = authorization {
        request = request.header(header::AUTHORIZATION, a);
    }
    request.body(body.into()).unwrap()
}

fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

#[tokio::test]
async fn accepted_body_reaches_the_sink_and_reports() {
    let sink = Arc::new(LineSink::default());
    let app = app_with(config(), Some(sink.clone()));
    let body = "{\"item_id\":\"a\"}\n\n{\"item_id\":\"b\"}\n";
    let a = send(&app.router, post(body, Some(&bearer()))).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    let id = a.header("x-request-id");
    assert_eq!(
        a.json(),
        serde_json::json!({"accepted": 2, "duplicates": 0, "skipped": 1, "rejected": [], "request_id": id})
    );
    assert_eq!(sink.bodies.lock().unwrap().as_slice(), [Bytes::from(body)]);
}

#[tokio::test]
async fn partly_valid_is_200_with_details_and_all_invalid_is_400() {
    let app = app_with(config(), Some(Arc::new(LineSink::default())));
    let a = send(&app.router, post("good\nbad\n", Some(&bearer()))).await;
    assert_eq!(a.status, StatusCode::OK);
    let v = a.json();
    assert_eq!(v["accepted"], 1);
    assert_eq!(v["rejected"][0]["location"], "line 2");
    assert_eq!(v["rejected"][0]["field"], "quantity");

    let a = send(&app.router, post("bad\nbad too\n", Some(&bearer()))).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let e = &a.json()["error"];
    assert_eq!(e["kind"], "bad_request");
    assert_eq!(e["rejected"].as_array().unwrap().len(), 2);

    let a = send(&app.router, post("", Some(&bearer()))).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("no purchases"));

    let a = send(&app.router, post(vec![0xff, 0xfe], Some(&bearer()))).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        a.json()["error"]["message"],
        "body is not UTF-8; send UTF-8 NDJSON"
    );
}

#[tokio::test]
async fn auth_missing_wrong_and_right() {
    let sink = Arc::new(LineSink::default());
    let app = app_with(config(), Some(sink.clone()));
    let missing = send(&app.router, post("x\n", None)).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert!(missing.header("www-authenticate").starts_with("Bearer"));
    assert_eq!(missing.json()["error"]["kind"], "unauthorized");

    for wrong in [
        "Bearer not-the-token".to_string(),
        format!("Bearer {TOKEN}x"),
        format!("Basic {TOKEN}"),
        TOKEN.to_string(),
    ] {
        let a = send(&app.router, post("x\n", Some(&wrong))).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{wrong}");
        assert!(
            !a.text().contains(TOKEN),
            "the answer must not echo the token"
        );
    }
    assert!(
        sink.bodies.lock().unwrap().is_empty(),
        "unauthenticated bodies reached the sink"
    );

    let right = send(&app.router, post("x\n", Some(&bearer()))).await;
    assert_eq!(right.status, StatusCode::OK);
}

#[tokio::test]
async fn post_is_forbidden_without_a_token_or_a_sink() {
    let app = app_with(ServerConfig::default(), Some(Arc::new(LineSink::default())));
    let a = send(&app.router, post("x\n", Some(&bearer()))).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(a.json()["error"]["kind"], "forbidden");
    assert!(a.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("server.auth_token"));

    let read_only = app_with(config(), None);
    let a = send(&read_only.router, post("x\n", Some(&bearer()))).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn bodies_beyond_the_limit_get_413() {
    let small = ServerConfig {
        max_body_bytes: 100,
        ..config()
    };
    let sink = Arc::new(LineSink::default());
    let app = app_with(small, Some(sink.clone()));
    let big = "x".repeat(101);
    // Declared up front ...
    let declared = Request::post("/v1/purchases")
        .header(header::AUTHORIZATION, bearer())
        .header(header::CONTENT_LENGTH, big.len())
        .body(Body::from(big.clone()))
        .unwrap();
    let a = send(&app.router, declared).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(a.json()["error"]["kind"], "payload_too_large");
    assert!(a.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("server.max_body_bytes"));
    // ... or only found out while reading.
    let a = send(&app.router, post(big, Some(&bearer()))).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(sink.bodies.lock().unwrap().is_empty());
    // Exactly at the limit is fine.
    let a = send(&app.router, post("y".repeat(100), Some(&bearer()))).await;
    assert_eq!(a.status, StatusCode::OK);
}

#[tokio::test]
async fn sink_unavailable_is_503_with_retry_after() {
    let app = app_with(config(), Some(Arc::new(Misbehaving::Unavailable)));
    let a = send(&app.router, post("x\n", Some(&bearer()))).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(a.header("retry-after"), "1");
    assert_eq!(a.json()["error"]["kind"], "unavailable");
    assert_eq!(
        a.json()["error"]["message"],
        "the log is unavailable; retry shortly"
    );
}

#[tokio::test]
async fn slow_sink_times_out_with_503() {
    let quick = ServerConfig {
        request_timeout_ms: 50,
        ..config()
    };
    let finished = Arc::new(AtomicBool::new(false));
    let sink = Misbehaving::Slow(Duration::from_millis(300), Some(finished.clone()));
    let app = app_with(quick, Some(Arc::new(sink)));
    let a = send(&app.router, post("x\n", Some(&bearer()))).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(a.header("retry-after"), "1");
    assert!(a.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("server.request_timeout_ms"));
    // The timed-out submission was cancelled, not left running behind the client's back.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !finished.load(Ordering::SeqCst),
        "the sink kept running after the timeout"
    );
}

#[tokio::test]
async fn concurrent_posts_beyond_the_limit_are_shed_but_reads_are_not() {
    let one = ServerConfig {
        max_concurrent_posts: 1,
        ..config()
    };
    let app = app_with(
        one,
        Some(Arc::new(Misbehaving::Slow(
            Duration::from_millis(500),
            None,
        ))),
    );
    app.results.publish(common::fixture::snapshot());
    let router = app.router.clone();
    let first = tokio::spawn(async move { send(&router, post("x\n", Some(&bearer()))).await });
    // Let the first submission take the only permit.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let shed = send(&app.router, post("x\n", Some(&bearer()))).await;
    assert_eq!(shed.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(shed.header("retry-after"), "1");
    assert!(shed.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("server.max_concurrent_posts"));
    assert_eq!(
        common::get(&app.router, "/v1/top").await.status,
        StatusCode::OK
    );
    // The slow one still completes (the sink reports nothing, which is a 400), and frees its permit.
    assert_eq!(first.await.unwrap().status, StatusCode::BAD_REQUEST);
    let app_after = send(&app.router, post("x\n", Some(&bearer()))).await;
    assert_ne!(app_after.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn a_panicking_sink_is_a_500_not_a_dropped_connection() {
    for sink in [Misbehaving::Panics, Misbehaving::PanicsLater] {
        let app = app_with(config(), Some(Arc::new(sink)));
        let a = send(&app.router, post("x\n", Some(&bearer()))).await;
        assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(a.json()["error"]["kind"], "internal");
        assert!(
            !a.text().contains("sink bug"),
            "panic messages must not leak"
        );
        let metrics = common::get(&app.router, "/metrics").await.text();
        assert!(
            metrics
                .contains("topsellers_http_requests_total{route=\"purchases\",status=\"5xx\"} 1"),
            "{metrics}"
        );
    }
}

/// Regression: a gzip body was passed to the parser and rejected as "not valid UTF-8".
#[tokio::test]
async fn compressed_bodies_get_415_naming_the_header() {
    let sink = Arc::new(LineSink::default());
    let app = app_with(config(), Some(sink.clone()));
    for encoding in ["gzip", "br", "deflate, gzip", "x-unknown"] {
        let mut request = post("\x1f\u{8b}\x08binary", Some(&bearer()));
        request
            .headers_mut()
            .insert(header::CONTENT_ENCODING, encoding.parse().unwrap());
        let a = send(&app.router, request).await;
        assert_eq!(a.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{encoding}");
        assert_eq!(a.header("accept-encoding"), "identity");
        let e = &a.json()["error"];
        assert_eq!(e["kind"], "unsupported_encoding");
        assert_eq!(e["parameter"], "Content-Encoding");
        let message = e["message"].as_str().unwrap();
        assert!(message.contains("Content-Encoding"), "{message}");
        assert!(
            message.contains(encoding.split(',').next().unwrap()),
            "{message}"
        );
        assert!(message.contains("uncompressed"), "{message}");
        assert!(!message.contains("UTF-8"), "{message}");
    }
    assert!(
        sink.bodies.lock().unwrap().is_empty(),
        "nothing reached the sink"
    );
    // identity is no encoding at all.
    let mut request = post("{\"item_id\":\"a\"}\n", Some(&bearer()));
    request
        .headers_mut()
        .insert(header::CONTENT_ENCODING, "Identity".parse().unwrap());
    assert_eq!(send(&app.router, request).await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_request_id_reaches_the_body_the_header_and_the_sink() {
    let sink = Arc::new(LineSink::default());
    let app = app_with(config(), Some(sink.clone()));
    let mut request = post("{\"item_id\":\"a\"}\n", Some(&bearer()));
    request
        .headers_mut()
        .insert("x-request-id", "producer-17.batch_3".parse().unwrap());
    let a = send(&app.router, request).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert_eq!(a.header("x-request-id"), "producer-17.batch_3");
    let v = a.json();
    assert_eq!(v["request_id"], "producer-17.batch_3");
    assert_eq!(v["accepted"], 1);

    // Without one, the generated id is the same in all three places.
    let a = send(&app.router, post("{\"item_id\":\"b\"}\n", Some(&bearer()))).await;
    let id = a.header("x-request-id").to_string();
    assert_eq!(a.json()["request_id"], id.as_str());
    let contexts = sink.contexts.lock().unwrap().clone();
    assert_eq!(
        contexts,
        [
            SubmitContext::new("producer-17.batch_3"),
            SubmitContext::new(id)
        ]
    );

    // Errors of the endpoint name it in the body too.
    let mut request = post("bad\n", Some(&bearer()));
    request
        .headers_mut()
        .insert("x-request-id", "r-400".parse().unwrap());
    let a = send(&app.router, request).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.json()["error"]["request_id"], "r-400");
    assert_eq!(a.header("x-request-id"), "r-400");
}

/// A sink written before `submit_with_context` existed still works: the default forwards.
#[tokio::test]
async fn sinks_without_submit_with_context_still_get_the_body() {
    struct Old;
    impl PurchaseSink for Old {
        fn submit(&self, body: Bytes) -> BoxFuture<'static, Result<SubmitReport, SubmitError>> {
            Box::pin(async move {
                Ok(SubmitReport {
                    accepted: body.len() as u64,
                    ..SubmitReport::default()
                })
            })
        }
    }
    let app = app_with(config(), Some(Arc::new(Old)));
    let a = send(&app.router, post("abc", Some(&bearer()))).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json()["accepted"], 3);
}
