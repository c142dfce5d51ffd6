//! Results whose store is down: every page request keeps its 200 and the last results, marked
//! stale; caching headers and 304s keep working; `/readyz` and `/metrics` say how stale.

mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::{app_with, fixture, get, published_app, send, Answer, TestApp};
use topsellers_server::ServerConfig;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The page and every read endpoint a page uses, with parameters that take the pre-rendered path,
/// the on-demand one and an unknown category.
const PAGE_REQUESTS: [&str; 8] = [
    "/",
    "/v1/top",
    "/v1/top?category=electronics&window=24h",
    "/v1/top?category=electronics&n=3",
    "/v1/top?category=garden/sheds",
    "/v1/categories",
    "/readyz",
    "/assets/app.js",
];

fn assert_fresh(a: &Answer, uri: &str) {
    assert_eq!(a.status, StatusCode::OK, "{uri}");
    assert!(a.headers.get("x-results-stale").is_none(), "{uri}");
    if uri.starts_with("/v1/") {
        let v = a.json();
        assert!(v.get("stale").is_none(), "{uri}: {v}");
        assert!(v.get("stale_seconds").is_none(), "{uri}: {v}");
    }
}

/// 200, the fixture's results, and the stale markers with about `seconds` (within a second of
/// slack for the clock moving during the test).
fn assert_stale(a: &Answer, uri: &str, seconds: u64) {
    assert_eq!(a.status, StatusCode::OK, "{uri}: {}", a.text());
    if !uri.starts_with("/v1/") && uri != "/readyz" {
        return;
    }
    let v = a.json();
    assert_eq!(v["stale"], true, "{uri}: {v}");
    let got = v["stale_seconds"].as_u64().unwrap();
    assert!((seconds..=seconds + 1).contains(&got), "{uri}: {got}");
    if uri.starts_with("/v1/") {
        let header: u64 = a.header("x-results-stale").parse().unwrap();
        assert!((seconds..=seconds + 1).contains(&header), "{uri}: {header}");
        assert_eq!(v["version"], 42, "{uri}: the last results are served");
        assert!(a.header("etag").contains(".stale-"), "{uri}");
        assert_eq!(
            a.header("cache-control"),
            "public, max-age=1, stale-while-revalidate=10, stale-if-error=3600",
            "{uri}"
        );
    }
    if uri.starts_with("/v1/top?category=electronics") || uri == "/v1/top" {
        assert!(!v["items"].as_array().unwrap().is_empty(), "{uri}");
    }
}

async fn all_pages(app: &TestApp) -> Vec<(&'static str, Answer)> {
    let mut answers = Vec::new();
    for uri in PAGE_REQUESTS {
        answers.push((uri, get(&app.router, uri).await));
    }
    answers
}

#[tokio::test]
async fn a_server_without_a_follower_is_never_stale() {
    let app = published_app();
    for (uri, a) in all_pages(&app).await {
        assert_fresh(&a, uri);
    }
    let r = get(&app.router, "/readyz").await.json();
    assert_eq!(r["stale"], false);
    assert_eq!(r["stale_seconds"], 0);
    assert_eq!(r["store_error"], serde_json::Value::Null);
    assert_eq!(r["last_refresh"], serde_json::Value::Null);
    let metrics = get(&app.router, "/metrics").await.text();
    assert!(metrics.contains("\ntopsellers_results_stale_seconds 0\n"));
    assert!(metrics.contains("\ntopsellers_results_refresh_failures_total 0\n"));
}

/// The promise of the serving tier: a results store that cannot be read costs no page request
/// its 200, and the answers keep the last results and say how old they are.
#[tokio::test]
async fn a_failed_refresh_keeps_every_page_answering_200_with_the_last_results() {
    let app = published_app();
    let fresh_top = get(&app.router, "/v1/top").await;
    let now = now_ms();
    app.results.refreshed(now - 7_000);
    // 7 s after a success is stale already (the default threshold is 5 s).
    for (uri, a) in all_pages(&app).await {
        assert_stale(&a, uri, 7);
    }
    app.results.refreshed(now);
    for (uri, a) in all_pages(&app).await {
        assert_fresh(&a, uri);
    }
    let again = get(&app.router, "/v1/top").await;
    assert_eq!(
        again.body, fresh_top.body,
        "fresh answers are the pre-rendered bytes"
    );
    assert_eq!(again.header("etag"), fresh_top.header("etag"));

    // Now the store goes down.
    app.results.refresh_failed(
        now_ms(),
        "cannot reach redis://app:hunter2-secret@127.0.0.1:6399: connection refused",
    );
    for (uri, a) in all_pages(&app).await {
        assert_stale(&a, uri, 1);
    }
    let r = get(&app.router, "/readyz").await;
    assert_eq!(r.status, StatusCode::OK, "stale servers stay in rotation");
    let v = r.json();
    assert_eq!(v["status"], "ready");
    assert_eq!(
        v["store_error"],
        "cannot reach redis://***@127.0.0.1:6399: connection refused"
    );
    assert!(!r.text().contains("hunter2"));
    assert_eq!(v["refresh_failures"], 1);
    assert!(v["last_refresh"].as_str().unwrap().ends_with('Z'));
    assert_eq!(v["snapshot_version"], 42);

    // The body is the fresh one with the two keys added, nothing else changed.
    let stale: serde_json::Value = get(&app.router, "/v1/top").await.json();
    let mut expected: serde_json::Value = fresh_top.json();
    expected["stale"] = stale["stale"].clone();
    expected["stale_seconds"] = stale["stale_seconds"].clone();
    assert_eq!(stale, expected);

    // HEAD too, and a second failure keeps counting.
    let head = send(
        &app.router,
        Request::head("/v1/categories").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.headers.contains_key("x-results-stale"));
    app.results.refresh_failed(now_ms(), "timed out");
    let metrics = get(&app.router, "/metrics").await;
    assert_eq!(metrics.status, StatusCode::OK);
    let text = metrics.text();
    assert!(
        text.contains("# TYPE topsellers_results_stale_seconds gauge"),
        "{text}"
    );
    let gauge: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("topsellers_results_stale_seconds "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(gauge >= 1, "{gauge}");
    assert!(text.contains("\ntopsellers_results_refresh_failures_total 2\n"));
    assert!(text.contains("\ntopsellers_results_refreshes_total 2\n"));
    assert_eq!(
        get(&app.router, "/readyz").await.json()["store_error"],
        "timed out"
    );

    // Recovery: fresh again, same bytes as before the outage.
    app.results.refreshed(now_ms());
    let back = get(&app.router, "/v1/top").await;
    assert_fresh(&back, "/v1/top");
    assert_eq!(back.body, fresh_top.body);
    let v = get(&app.router, "/readyz").await.json();
    assert_eq!(v["stale"], false);
    assert_eq!(v["store_error"], serde_json::Value::Null);
    assert!(get(&app.router, "/metrics")
        .await
        .text()
        .contains("\ntopsellers_results_stale_seconds 0\n"));
}

#[tokio::test]
async fn the_threshold_is_configurable() {
    let config = ServerConfig {
        stale_after_ms: 60_000,
        ..ServerConfig::default()
    };
    let app = app_with(config, None);
    app.results.publish(fixture::snapshot());
    app.results.refreshed(now_ms() - 30_000);
    assert_fresh(&get(&app.router, "/v1/top").await, "/v1/top");
    app.results.refreshed(now_ms() - 90_000); // older reports do not move time back
    assert_fresh(&get(&app.router, "/v1/top").await, "/v1/top");
    // A failure is stale whatever the threshold; the age counts from the last success.
    app.results.refresh_failed(now_ms(), "down");
    assert_stale(&get(&app.router, "/v1/top").await, "/v1/top", 30);
}

#[tokio::test]
async fn before_the_first_results_a_down_store_is_warming_up_not_an_error() {
    let app = app_with(ServerConfig::default(), None);
    app.results.refresh_failed(now_ms(), "connection refused");
    for uri in ["/", "/v1/top", "/v1/categories", "/v1/top?category=books"] {
        let a = get(&app.router, uri).await;
        assert_eq!(a.status, StatusCode::OK, "{uri}");
        if uri != "/" {
            assert_eq!(a.json()["warming_up"], true, "{uri}");
        }
    }
    let r = get(&app.router, "/readyz").await;
    assert_eq!(
        r.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "as before any results"
    );
    let message = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(message.contains("connection refused"), "{message}");
    // The first results make it ready; their age counts from their publication.
    app.results.publish(fixture::snapshot());
    let r = get(&app.router, "/readyz").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["stale"], true);
}

#[tokio::test]
async fn caching_headers_and_304s_fresh_and_stale() {
    let config = ServerConfig {
        cache_max_age_secs: 2,
        cache_stale_while_revalidate_secs: 0,
        cache_stale_if_error_secs: 600,
        ..ServerConfig::default()
    };
    let app = app_with(config, None);
    app.results.publish(fixture::snapshot());
    app.results.refreshed(now_ms());
    let conditional = |uri: &str, tag: &str| {
        Request::get(uri)
            .header(header::IF_NONE_MATCH, tag)
            .body(Body::empty())
            .unwrap()
    };
    for uri in ["/v1/top?category=electronics", "/v1/categories"] {
        let first = get(&app.router, uri).await;
        assert_eq!(
            first.header("cache-control"),
            "public, max-age=2, stale-if-error=600"
        );
        let tag = first.header("etag").to_string();
        assert!(
            tag.starts_with("\"42."),
            "named after the result version: {tag}"
        );
        let again = send(&app.router, conditional(uri, &tag)).await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{uri}");
        assert!(again.body.is_empty());
        assert_eq!(again.header("etag"), tag);
        assert_eq!(
            again.header("cache-control"),
            "public, max-age=2, stale-if-error=600"
        );
        assert!(again.headers.get("x-results-stale").is_none());
    }

    // Stale: a client holding the fresh answer gets the stale one (and learns it is stale)...
    app.results.refresh_failed(now_ms(), "down");
    let uri = "/v1/top?category=electronics";
    let first = get(&app.router, uri).await;
    let stale_tag = first.header("etag").to_string();
    assert!(stale_tag.contains(".stale-"), "{stale_tag}");
    // ... and one holding the stale answer gets a 304 with the stale header, unless a second
    // passed between the two requests and the answer moved on (then it is a 200: retry).
    let mut checked = false;
    for _ in 0..5 {
        let first = get(&app.router, uri).await;
        let tag = first.header("etag").to_string();
        let again = send(&app.router, conditional(uri, &tag)).await;
        if again.status == StatusCode::NOT_MODIFIED {
            assert_eq!(again.header("etag"), tag);
            assert_eq!(
                again.header("x-results-stale"),
                first.header("x-results-stale")
            );
            assert_eq!(
                again.header("cache-control"),
                "public, max-age=2, stale-if-error=600"
            );
            checked = true;
            break;
        }
        assert_eq!(again.status, StatusCode::OK);
    }
    assert!(checked, "no 304 for a stale answer in 5 tries");
    let fresh_tag = {
        app.results.refreshed(now_ms());
        let tag = get(&app.router, uri).await.header("etag").to_string();
        app.results.refresh_failed(now_ms(), "down");
        tag
    };
    let a = send(&app.router, conditional(uri, &fresh_tag)).await;
    assert_eq!(a.status, StatusCode::OK, "the fresh tag no longer matches");
    assert_eq!(a.json()["stale"], true);
    // Recovered: the stale tag no longer matches, the fresh one does again.
    app.results.refreshed(now_ms());
    let a = send(&app.router, conditional(uri, &stale_tag)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.json().get("stale").is_none());
    let a = send(&app.router, conditional(uri, &fresh_tag)).await;
    assert_eq!(a.status, StatusCode::NOT_MODIFIED);

    // Warming-up answers have no tag, and no stale-* allowance for caches.
    let warming = app_with(ServerConfig::default(), None);
    let a = get(&warming.router, "/v1/top").await;
    assert_eq!(a.header("cache-control"), "public, max-age=1");
    assert!(a.headers.get("etag").is_none());
}
