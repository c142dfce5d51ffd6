//! `/v1/top`, `/v1/categories`, probes, metrics, the page and the error shape, in-process.

mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::{fixture, get, published_app, send};
use topsellers_server::ServerConfig;

#[tokio::test]
async fn top_defaults_to_site_wide_first_window_ten_items() {
    let app = published_app();
    let a = get(&app.router, "/v1/top").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.header("content-type"), "application/json");
    assert_eq!(
        a.header("cache-control"),
        "public, max-age=1, stale-while-revalidate=10, stale-if-error=3600"
    );
    assert_eq!(a.header("x-topsellers-as-of"), "2024-05-01T12:00:00Z");
    assert!(a.header("etag").starts_with('"'));
    let v = a.json();
    assert_eq!(v["category"], "");
    assert_eq!(v["window"], "1h");
    assert_eq!(v["n"], 10);
    assert_eq!(v["currency"], "GBP");
    assert_eq!(v["window_start"], "2024-05-01T11:00:00Z");
    assert_eq!(v["window_end"], "2024-05-01T12:00:00Z");
    assert_eq!(v["as_of"], "2024-05-01T12:00:00Z");
    assert_eq!(v["computed_at"], "2024-05-01T12:00:00.5Z");
    assert_eq!(v["version"], 42);
    assert!(v.get("warming_up").is_none());
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 10);
    assert_eq!(items[0]["rank"], 1);
    assert_eq!(items[0]["item_id"], "site-1");
    assert_eq!(items[0]["item_name"], "site item 1");
    assert_eq!(items[0]["units"], 993);
    assert_eq!(items[0]["revenue_minor"], 993 * 1999);
    assert_eq!(items[0]["revenue"], "19850.07");
    assert_eq!(items[9]["rank"], 10);
}

#[tokio::test]
async fn top_answers_the_asked_category_window_and_n() {
    let app = published_app();
    let v = get(&app.router, "/v1/top?category=electronics&window=all&n=3")
        .await
        .json();
    assert_eq!(v["category"], "electronics");
    assert_eq!(v["window"], "all");
    assert_eq!(v["n"], 3);
    assert_eq!(v["window_start"], serde_json::Value::Null);
    let ids: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["item_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["electronics-1", "electronics-2", "electronics-3"]);

    // n up to top_k is fine even beyond the pre-rendered 10; the list has 20.
    let v = get(&app.router, "/v1/top?category=electronics&n=50")
        .await
        .json();
    assert_eq!(v["items"].as_array().unwrap().len(), 20);
    // Explicit n=10 is the pre-rendered answer, byte for byte.
    let explicit = get(&app.router, "/v1/top?n=10&window=1h&category=").await;
    let default = get(&app.router, "/v1/top").await;
    assert_eq!(explicit.body, default.body);
    assert_eq!(explicit.header("etag"), default.header("etag"));
}

#[tokio::test]
async fn category_is_normalised() {
    let app = published_app();
    let canonical = get(&app.router, "/v1/top?category=electronics/phones").await;
    assert_eq!(canonical.json()["items"].as_array().unwrap().len(), 10);
    for spelling in [
        "Electronics/Phones",
        "ELECTRONICS%2FPHONES",
        "%20electronics%20/%20phones/",
        "/electronics//phones",
    ] {
        let a = get(&app.router, &format!("/v1/top?category={spelling}")).await;
        assert_eq!(a.status, StatusCode::OK, "{spelling}");
        assert_eq!(a.body, canonical.body, "{spelling}");
        assert_eq!(a.header("etag"), canonical.header("etag"), "{spelling}");
    }
}

#[tokio::test]
async fn unknown_category_and_empty_list_are_not_errors() {
    let app = published_app();
    let a = get(&app.router, "/v1/top?category=garden/sheds&window=24h").await;
    assert_eq!(a.status, StatusCode::OK);
    let v = a.json();
    assert_eq!(v["category"], "garden/sheds");
    assert_eq!(v["items"], serde_json::json!([]));
    assert_eq!(v["window_start"], "2024-04-30T12:00:00Z");
    let v = get(&app.router, "/v1/top?category=books&window=all")
        .await
        .json();
    assert_eq!(v["items"], serde_json::json!([]));
}

#[tokio::test]
async fn item_names_with_markup_survive_as_data() {
    let app = published_app();
    let v = get(&app.router, "/v1/top?category=books").await.json();
    assert_eq!(
        v["items"][0]["item_name"],
        "<script>alert(1)</script> & \"quotes\""
    );
}

#[tokio::test]
async fn every_bad_parameter_is_a_400_naming_it() {
    let app = published_app();
    let deep = "a/b/c/d/e/f/g/h/i";
    let cases = [
        ("n=0", "n"),
        ("n=abc", "n"),
        ("n=51", "n"),
        ("n=", "n"),
        ("n=-1", "n"),
        ("n=1&n=2", "n"),
        ("window=2h", "window"),
        ("window=", "window"),
        (&format!("category={deep}") as &str, "category"),
        ("category=a%00b", "category"),
        ("category=%FF", "category"),
    ];
    for (query, parameter) in cases {
        let a = get(&app.router, &format!("/v1/top?{query}")).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(a.header("content-type"), "application/json");
        let e = &a.json()["error"];
        assert_eq!(e["kind"], "bad_request", "{query}");
        assert_eq!(e["parameter"], parameter, "{query}");
        let message = e["message"].as_str().unwrap();
        assert!(message.contains(parameter), "{query}: {message}");
    }
    let e = get(&app.router, "/v1/top?n=0").await.json();
    assert_eq!(e["error"]["message"], "n must be an integer from 1 to 50");
    assert_eq!(
        e["error"]["allowed"],
        serde_json::json!({"min": 1, "max": 50})
    );
    let e = get(&app.router, "/v1/top?window=2h").await.json();
    assert_eq!(
        e["error"]["allowed"],
        serde_json::json!(["1h", "24h", "all"])
    );
}

#[tokio::test]
async fn warming_up_before_the_first_snapshot() {
    let app = common::app_with(ServerConfig::default(), None);
    let a = get(&app.router, "/v1/top?category=Electronics&window=24h").await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.headers.get("etag").is_none());
    let v = a.json();
    assert_eq!(v["warming_up"], true);
    assert_eq!(v["items"], serde_json::json!([]));
    assert_eq!(v["category"], "electronics");
    assert_eq!(v["window"], "24h");
    assert_eq!(v["n"], 10);
    // Parameters are still checked where they can be.
    assert_eq!(
        get(&app.router, "/v1/top?n=abc").await.status,
        StatusCode::BAD_REQUEST
    );

    let c = get(&app.router, "/v1/categories").await.json();
    assert_eq!(c["warming_up"], true);
    assert_eq!(c["categories"], serde_json::json!([]));

    let r = get(&app.router, "/readyz").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json()["error"]["kind"], "unavailable");

    app.results.publish(fixture::snapshot());
    let r = get(&app.router, "/readyz").await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    assert_eq!(v["status"], "ready");
    assert_eq!(v["snapshot_version"], 42);
    assert!(v["snapshot_age_seconds"].as_f64().unwrap() > 0.0);
    assert!(get(&app.router, "/v1/top")
        .await
        .json()
        .get("warming_up")
        .is_none());
}

#[tokio::test]
async fn etag_gives_304_until_the_snapshot_changes() {
    let app = published_app();
    let first = get(&app.router, "/v1/top?category=electronics&n=5").await;
    let etag = first.header("etag").to_string();
    let conditional = |tag: &str| {
        Request::get("/v1/top?category=electronics&n=5")
            .header(header::IF_NONE_MATCH, tag)
            .body(Body::empty())
            .unwrap()
    };
    let a = send(&app.router, conditional(&etag)).await;
    assert_eq!(a.status, StatusCode::NOT_MODIFIED);
    assert!(a.body.is_empty());
    assert_eq!(a.header("etag"), etag);
    assert_eq!(
        a.header("cache-control"),
        "public, max-age=1, stale-while-revalidate=10, stale-if-error=3600"
    );
    assert_eq!(a.header("x-topsellers-as-of"), "2024-05-01T12:00:00Z");
    // Another n is another answer.
    let other = send(
        &app.router,
        Request::get("/v1/top?category=electronics&n=6")
            .header(header::IF_NONE_MATCH, &etag)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(other.status, StatusCode::OK);

    let mut next = fixture::snapshot();
    next.version = 43;
    app.results.publish(next);
    let a = send(&app.router, conditional(&etag)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_ne!(a.header("etag"), etag);
    assert_eq!(a.json()["version"], 43);
}

#[tokio::test]
async fn categories_list_paths_parents_and_windows() {
    let app = published_app();
    let a = get(&app.router, "/v1/categories").await;
    assert_eq!(a.status, StatusCode::OK);
    let etag = a.header("etag").to_string();
    let v = a.json();
    assert_eq!(
        v["categories"],
        serde_json::json!([
            {"path": "", "parent": null, "depth": 0},
            {"path": "books", "parent": "", "depth": 1},
            {"path": "electronics", "parent": "", "depth": 1},
            {"path": "electronics/phones", "parent": "electronics", "depth": 2},
        ])
    );
    assert_eq!(
        v["windows"],
        serde_json::json!([
            {"name": "1h", "length_secs": 3600},
            {"name": "24h", "length_secs": 86400},
            {"name": "all", "length_secs": null},
        ])
    );
    assert_eq!(v["default_window"], "1h");
    assert_eq!(v["as_of"], "2024-05-01T12:00:00Z");
    assert_eq!(v["version"], 42);
    let again = send(
        &app.router,
        Request::get("/v1/categories")
            .header(header::IF_NONE_MATCH, etag)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
}

/// Regression: `/v1/top?foo=bar` and `/v1/categories?foo=1` were 400s, so a cache-buster or a
/// utm tag turned a page load into an error.
#[tokio::test]
async fn unknown_query_parameters_are_ignored() {
    let app = published_app();
    let plain = get(&app.router, "/v1/top?category=electronics").await;
    for query in [
        "foo=bar&category=electronics",
        "category=electronics&_=1714564800123",
        "utm_source=newsletter&utm_medium=email&category=electronics&utm_campaign=may",
        "category=electronics&colour=red&colour=blue&%FF=%FE&flag",
    ] {
        let a = get(&app.router, &format!("/v1/top?{query}")).await;
        assert_eq!(a.status, StatusCode::OK, "{query}: {}", a.text());
        assert_eq!(a.body, plain.body, "{query}");
        assert_eq!(a.header("etag"), plain.header("etag"), "{query}");
    }
    // Bad values of known parameters are still errors, even among unknown ones.
    let a = get(&app.router, "/v1/top?_=1&n=0").await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.json()["error"]["parameter"], "n");
    let a = get(&app.router, "/v1/top?_=1&window=1h&window=24h").await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);

    let plain = get(&app.router, "/v1/categories").await;
    for query in ["foo=1", "_=123", "utm_source=x&x"] {
        let a = get(&app.router, &format!("/v1/categories?{query}")).await;
        assert_eq!(a.status, StatusCode::OK, "{query}");
        assert_eq!(a.body, plain.body, "{query}");
    }
    // And before the first snapshot.
    let warming = common::app_with(ServerConfig::default(), None);
    assert_eq!(
        get(&warming.router, "/v1/top?_=1").await.status,
        StatusCode::OK
    );
    assert_eq!(
        get(&warming.router, "/v1/categories?_=1").await.status,
        StatusCode::OK
    );
}

/// Regression: a node that never counted an event published a snapshot with `as_of_ms == 0`, and
/// `/v1/top` reported a window starting 1969-12-31T23:00:00Z.
#[tokio::test]
async fn a_node_that_counted_nothing_reports_no_dates() {
    let app = common::app_with(ServerConfig::default(), None);
    let mut snapshot = fixture::snapshot();
    snapshot.as_of_ms = 0;
    snapshot.watermark_ms = 0;
    snapshot.events_counted = 0;
    for lists in snapshot.lists.values_mut() {
        for list in lists.iter_mut() {
            list.items.clear();
            list.bounds.end_ms = 0;
            list.bounds.start_ms = list.bounds.start_ms.map(|_| -3_600_000);
        }
    }
    app.results.publish(snapshot);
    for uri in [
        "/v1/top",
        "/v1/top?window=24h",
        "/v1/top?category=garden",
        "/v1/top?n=3",
    ] {
        let a = get(&app.router, uri).await;
        assert_eq!(a.status, StatusCode::OK, "{uri}");
        assert!(a.headers.get("x-topsellers-as-of").is_none(), "{uri}");
        let v = a.json();
        assert_eq!(v["empty"], true, "{uri}");
        assert_eq!(v["window_start"], serde_json::Value::Null, "{uri}");
        assert_eq!(v["window_end"], serde_json::Value::Null, "{uri}");
        assert_eq!(v["as_of"], serde_json::Value::Null, "{uri}");
        assert_eq!(v["computed_at"], "2024-05-01T12:00:00.5Z", "{uri}");
        assert_eq!(v["items"], serde_json::json!([]), "{uri}");
        assert!(
            !a.text().contains("1969") && !a.text().contains("1970"),
            "{uri}"
        );
    }
    let c = get(&app.router, "/v1/categories").await.json();
    assert_eq!(c["empty"], true);
    assert_eq!(c["as_of"], serde_json::Value::Null);

    let r = get(&app.router, "/readyz").await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "the node is up, it just has no data"
    );
    let v = r.json();
    assert_eq!(v["status"], "ready");
    assert_eq!(v["events_counted"], 0);
    assert_eq!(v["empty"], true);
    assert_eq!(v["as_of"], serde_json::Value::Null);

    // A snapshot with data has no `empty` key at all.
    let app = published_app();
    let v = get(&app.router, "/v1/top").await.json();
    assert!(v.get("empty").is_none());
    let v = get(&app.router, "/readyz").await.json();
    assert_eq!(v["events_counted"], 12345);
    assert_eq!(v["empty"], false);
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = published_app();
    let mut seen = std::collections::HashSet::new();
    for uri in [
        "/v1/top",
        "/v1/top?n=0",
        "/v1/categories",
        "/healthz",
        "/readyz",
        "/metrics",
        "/",
        "/assets/app.js",
        "/nope",
    ] {
        let a = get(&app.router, uri).await;
        let id = a.header("x-request-id").to_string();
        assert!(
            (1..=64).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)),
            "{uri}: {id:?}"
        );
        assert_ne!(id, "-", "{uri}: the pre-built placeholder leaked");
        assert!(seen.insert(id), "{uri}: ids repeat");
    }
    let with_id = |id: &str| {
        Request::get("/v1/top")
            .header("x-request-id", id)
            .body(Body::empty())
            .unwrap()
    };
    let a = send(&app.router, with_id("shop-7.req_42")).await;
    assert_eq!(a.header("x-request-id"), "shop-7.req_42");
    let max = "x".repeat(64);
    assert_eq!(
        send(&app.router, with_id(&max))
            .await
            .header("x-request-id"),
        max
    );
    for bad in [
        "x".repeat(65),
        "a b".into(),
        "jane@example.com".into(),
        "a\"b".into(),
    ] {
        let a = send(&app.router, with_id(&bad)).await;
        let id = a.header("x-request-id");
        assert_ne!(id, bad);
        assert!(id.len() <= 64 && !id.contains(['@', ' ', '"']), "{id}");
    }
    // A 304 carries it too.
    let etag = get(&app.router, "/v1/top").await.header("etag").to_string();
    let a = send(
        &app.router,
        Request::get("/v1/top")
            .header(header::IF_NONE_MATCH, etag)
            .header("x-request-id", "abc")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_MODIFIED);
    assert_eq!(a.header("x-request-id"), "abc");
}

#[tokio::test]
async fn healthz_is_always_ok() {
    let app = common::app_with(ServerConfig::default(), None);
    let a = get(&app.router, "/healthz").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json(), serde_json::json!({"status": "ok"}));
}

#[tokio::test]
async fn unknown_routes_and_methods_get_the_json_error_shape() {
    let app = published_app();
    let a = get(&app.router, "/v2/top").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.header("content-type"), "application/json");
    assert_eq!(a.json()["error"]["kind"], "not_found");
    assert_eq!(
        get(&app.router, "/assets/nope.js").await.json()["error"]["kind"],
        "not_found"
    );

    for (method, uri) in [
        ("POST", "/v1/top"),
        ("GET", "/v1/purchases"),
        ("DELETE", "/"),
    ] {
        let a = send(
            &app.router,
            Request::builder()
                .method(method)
                .uri(uri)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
        let e = &a.json()["error"];
        assert_eq!(e["kind"], "method_not_allowed");
        assert!(e["message"].as_str().unwrap().contains(method));
    }
}

#[tokio::test]
async fn head_requests_get_headers_only() {
    let app = published_app();
    let a = send(
        &app.router,
        Request::head("/v1/top").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.body.is_empty());
    assert!(a.headers.contains_key("etag"));
}

#[tokio::test]
async fn metrics_count_requests_in_prometheus_text() {
    let app = published_app();
    get(&app.router, "/v1/top").await;
    get(&app.router, "/v1/top?n=0").await;
    get(&app.router, "/nope").await;
    app.metrics.inc_received("http", 7);
    app.metrics
        .inc_rejected(topsellers_model::RejectReason::CurrencyMismatch, 2);
    let a = get(&app.router, "/metrics").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.header("content-type"),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = a.text();
    for expected in [
        "# HELP topsellers_http_requests_total ",
        "# TYPE topsellers_http_requests_total counter",
        "topsellers_http_requests_total{route=\"top\",status=\"2xx\"} 1",
        "topsellers_http_requests_total{route=\"top\",status=\"4xx\"} 1",
        "topsellers_http_requests_total{route=\"unmatched\",status=\"4xx\"} 1",
        "# TYPE topsellers_events_received_total counter",
        "topsellers_events_received_total{source=\"http\"} 7",
        "# TYPE topsellers_events_rejected_total counter",
        "topsellers_events_rejected_total{reason=\"currency_mismatch\"} 2",
        "# TYPE topsellers_events_accepted_total counter",
        "# TYPE topsellers_refunds_accepted_total counter",
        "# TYPE topsellers_duplicates_dropped_total counter",
        "# TYPE topsellers_events_skipped_total counter",
        "# TYPE topsellers_log_appends_total counter",
        "# TYPE topsellers_log_append_errors_total counter",
        "# TYPE topsellers_checkpoints_total counter",
        "# TYPE topsellers_checkpoint_errors_total counter",
        "# TYPE topsellers_snapshot_version gauge",
        "topsellers_snapshot_version 42",
        "# TYPE topsellers_snapshot_age_seconds gauge",
        "# TYPE topsellers_engine_series gauge",
        "# TYPE topsellers_engine_bucket_entries gauge",
        "# TYPE topsellers_engine_approx_state_bytes gauge",
        "# TYPE topsellers_last_event_to_visible_ms gauge",
    ] {
        assert!(text.contains(expected), "{expected} missing from\n{text}");
    }
}

#[tokio::test]
async fn page_is_html_with_only_local_assets() {
    let config = ServerConfig {
        page_refresh_secs: 7,
        ..ServerConfig::default()
    };
    let app = common::app_with(config, None);
    let a = get(&app.router, "/").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.header("content-type"), "text/html; charset=utf-8");
    let html = a.text();
    assert!(html.to_ascii_lowercase().starts_with("<!doctype html>"));
    assert!(
        html.contains("content=\"7\""),
        "refresh interval not filled in"
    );
    assert!(!html.contains("{{"), "unfilled placeholder");

    let mut referenced = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        for (i, _) in html.match_indices(attribute) {
            let rest = &html[i + attribute.len()..];
            referenced.push(rest[..rest.find('"').unwrap()].to_string());
        }
    }
    assert!(!referenced.is_empty());
    let lower = html.to_ascii_lowercase();
    assert!(
        !lower.contains("http://") && !lower.contains("https://"),
        "page names an outside URL"
    );
    for url in &referenced {
        assert!(
            url.starts_with('/') && !url.starts_with("//")
                || url.starts_with('#')
                || url.starts_with("data:"),
            "{url} is not local"
        );
        if url.starts_with("/assets/") {
            let asset = get(&app.router, url).await;
            assert_eq!(asset.status, StatusCode::OK, "{url}");
            let expected = if url.ends_with(".js") {
                "text/javascript"
            } else {
                "text/css"
            };
            assert!(asset.header("content-type").starts_with(expected), "{url}");
            let text = asset.text();
            assert!(
                !text.contains("http://") && !text.contains("https://"),
                "{url} names an outside URL"
            );
            // Item names are data: the script builds text nodes, never parses markup.
            assert!(
                !text.contains("innerHTML")
                    && !text.contains("outerHTML")
                    && !text.contains("insertAdjacentHTML"),
                "{url}"
            );
        }
    }
    assert!(referenced.iter().any(|u| u == "/assets/app.js"));
    assert!(referenced.iter().any(|u| u == "/assets/app.css"));
}
