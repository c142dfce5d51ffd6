//! Store conformance through the real binary: the same generated purchases, published to Kafka and aggregated
//! with `cluster.results_store` = SQLite, Cassandra, Redis and Redis Cluster, give `results --cluster` equal to
//! the embedded replay, and an API server (`topsellers api`) following that store serves the same top lists.

mod common;

use common::kafka::{embedded_reference, kafka_from_env, ClusterSetup};
use common::stores::{all_logs, generate, service_from_env, wait_api_serves, Cluster, StoreChoice};
use std::time::Duration;

const ENGINE: &str = r#"
[engine]
bucket_secs = 60
windows = ["1h", "24h", "all"]
allowed_lateness_secs = 3600
[node]
idle_advance = false
[demo]
rate_per_sec = 20
"#;

/// Publishes 20 000 generated purchases (refunds, duplicates, late events) to 4 partitions, aggregates them with
/// two aggregators into `store`, and checks `results --cluster` and an API server against the embedded replay.
fn conformance(bootstrap: &str, store: StoreChoice) {
    let setup = ClusterSetup::with_store(bootstrap, 4, ENGINE, "", &store);
    let file = generate(&setup, "events.jsonl", 20_000, "2026-11-10T00:00:00Z");
    let expected = embedded_reference(&setup.config, &[&file]);
    assert!(expected["events_counted"].as_u64().unwrap() > 15_000);
    // Many categories and windows, each compared item by item with what the API server serves.
    assert!(
        expected["lists"].as_array().unwrap().len() > 20,
        "{expected}"
    );

    let cluster = Cluster::start(&setup, 2, 1);
    setup.publish(&[&file]);
    let got = setup.wait_for_results(&expected, Duration::from_secs(120));
    assert_eq!(
        got,
        expected,
        "{store:?}: results --cluster differ from the embedded replay; logs:\n{}",
        all_logs(&setup)
    );
    let diff = wait_api_serves(cluster.api_ports[0], &expected, Duration::from_secs(30));
    assert!(
        diff.is_none(),
        "{store:?}: the API server does not serve the results: {}\nlogs:\n{}",
        diff.unwrap_or_default(),
        all_logs(&setup)
    );
}

#[test]
fn sqlite_store_gives_the_embedded_results() {
    let Some(bootstrap) = kafka_from_env("TOPSELLERS_TEST_KAFKA") else {
        return;
    };
    conformance(&bootstrap, StoreChoice::Sqlite);
}

#[test]
fn cassandra_store_gives_the_embedded_results() {
    let Some(bootstrap) = kafka_from_env("TOPSELLERS_TEST_KAFKA") else {
        return;
    };
    let Some(cassandra) = service_from_env("TOPSELLERS_TEST_CASSANDRA") else {
        return;
    };
    conformance(&bootstrap, StoreChoice::cassandra(&cassandra, "conf", 1));
}

#[test]
fn redis_store_gives_the_embedded_results() {
    let Some(bootstrap) = kafka_from_env("TOPSELLERS_TEST_KAFKA") else {
        return;
    };
    let Some(redis) = service_from_env("TOPSELLERS_TEST_REDIS") else {
        return;
    };
    conformance(&bootstrap, StoreChoice::redis(&redis, false, "conf"));
}

#[test]
fn redis_cluster_store_gives_the_embedded_results() {
    let Some(bootstrap) = kafka_from_env("TOPSELLERS_TEST_KAFKA") else {
        return;
    };
    let Some(nodes) = service_from_env("TOPSELLERS_TEST_REDIS_CLUSTER") else {
        return;
    };
    conformance(&bootstrap, StoreChoice::redis(&nodes, true, "conf"));
}
