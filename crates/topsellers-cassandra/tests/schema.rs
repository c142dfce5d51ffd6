//! The keyspace and tables: created idempotently, by versioned migrations, refused when newer.

mod common;

use common::TestKeyspace;
use topsellers_cassandra::schema::table_id;
use topsellers_cassandra::{CassandraPartitionStore, SCHEMA_VERSION};
use topsellers_store::{PartitionStore, StoreBinding, StoreError};

const TABLES: [&str; 5] = [
    "bindings",
    "blob_chunks",
    "partitions",
    "pending_blobs",
    "schema_version",
];

fn binding() -> StoreBinding {
    StoreBinding {
        partitions: 2,
        settings: "bucket_secs=60".into(),
    }
}

fn version_row(ks: &TestKeyspace) -> Vec<Vec<String>> {
    ks.cql(&[&format!(
        "SELECT version, applied_at, applied_by FROM {}.schema_version WHERE component = 'partition_store'",
        ks.name()
    )])
}

fn tables(ks: &TestKeyspace) -> Vec<String> {
    let mut names: Vec<String> = ks
        .cql(&[&format!(
            "SELECT table_name FROM system_schema.tables WHERE keyspace_name = '{}'",
            ks.name()
        )])
        .into_iter()
        .map(|row| row[0].clone())
        .collect();
    names.sort();
    names
}

#[test]
fn opening_twice_creates_once_and_keeps_the_data() {
    let Some(nodes) = common::cassandra("opening_twice_creates_once_and_keeps_the_data") else {
        return;
    };
    let ks = TestKeyspace::new(&nodes, "twice");
    let first = CassandraPartitionStore::open(&ks.settings, "ns").unwrap();
    assert_eq!(tables(&ks), TABLES);
    let created = version_row(&ks);
    assert_eq!(created.len(), 1);
    assert_eq!(created[0][0], SCHEMA_VERSION.to_string());
    first.bind(&binding()).unwrap();
    assert_eq!(first.claim(1).unwrap().epoch, 1);
    let replication = ks.cql(&[&format!(
        "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = '{}'",
        ks.name()
    )]);
    assert!(
        replication[0][0].contains("SimpleStrategy") && replication[0][0].contains("\"1\""),
        "{replication:?}"
    );

    let second = CassandraPartitionStore::open(&ks.settings, "ns").unwrap();
    // Nothing migrated again: the version row is the first open's, the data is still there.
    assert_eq!(version_row(&ks), created);
    assert_eq!(tables(&ks), TABLES);
    second.bind(&binding()).unwrap();
    assert_eq!(second.claim(1).unwrap().epoch, 2);
    // Every table has the id derived from its name.
    for table in TABLES {
        let id = ks.cql(&[&format!(
            "SELECT id FROM system_schema.tables WHERE keyspace_name = '{}' AND table_name = '{table}'",
            ks.name()
        )]);
        assert_eq!(id[0][0], table_id(ks.name(), table).to_string(), "{table}");
    }
}

#[test]
fn a_newer_stored_version_is_refused() {
    let Some(nodes) = common::cassandra("a_newer_stored_version_is_refused") else {
        return;
    };
    let ks = TestKeyspace::new(&nodes, "newer");
    drop(CassandraPartitionStore::open(&ks.settings, "ns").unwrap());
    ks.cql(&[&format!(
        "UPDATE {}.schema_version SET version = 99 WHERE component = 'partition_store'",
        ks.name()
    )]);
    let err = CassandraPartitionStore::open(&ks.settings, "ns").unwrap_err();
    match &err {
        StoreError::NewerSchema {
            found, supported, ..
        } => assert_eq!((*found, *supported), (99, i64::from(SCHEMA_VERSION))),
        _ => panic!("expected NewerSchema, got {err}"),
    }
    let text = err.to_string();
    assert!(
        text.contains(ks.name()) && text.contains("upgrade topsellers"),
        "{text}"
    );
    // Refused before touching anything: the version stays.
    assert_eq!(version_row(&ks)[0][0], "99");
}

/// A first migration that stopped half-way (keyspace, version table and one table, no version row)
/// is finished by the next open.
#[test]
fn an_interrupted_migration_is_finished() {
    let Some(nodes) = common::cassandra("an_interrupted_migration_is_finished") else {
        return;
    };
    let ks = TestKeyspace::new(&nodes, "interrupted");
    let name = ks.name();
    ks.cql(&[
        &format!(
            "CREATE KEYSPACE {name} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
        ),
        &format!(
            "CREATE TABLE {name}.schema_version (component text PRIMARY KEY, version int, \
             applied_at timestamp, applied_by text)"
        ),
        &format!(
            "CREATE TABLE {name}.bindings (namespace text PRIMARY KEY, partitions int, settings text, \
             bound_at timestamp)"
        ),
    ]);
    let store = CassandraPartitionStore::open(&ks.settings, "ns").unwrap();
    assert_eq!(tables(&ks), TABLES);
    assert_eq!(version_row(&ks)[0][0], SCHEMA_VERSION.to_string());
    store.bind(&binding()).unwrap();
    assert_eq!(store.claim(0).unwrap().epoch, 1);
}

/// Every aggregator of a group starting at once on a new keyspace: all of them open it, and the
/// tables exist once, with the ids derived from their names.
#[test]
fn concurrent_first_opens_agree() {
    let Some(nodes) = common::cassandra("concurrent_first_opens_agree") else {
        return;
    };
    let ks = TestKeyspace::new(&nodes, "concurrent");
    let stores: Vec<CassandraPartitionStore> = std::thread::scope(|scope| {
        let opening: Vec<_> = (0..3)
            .map(|_| scope.spawn(|| CassandraPartitionStore::open(&ks.settings, "ns")))
            .collect();
        opening
            .into_iter()
            .map(|h| h.join().unwrap().unwrap())
            .collect()
    });
    assert_eq!(tables(&ks), TABLES);
    assert_eq!(version_row(&ks)[0][0], SCHEMA_VERSION.to_string());
    stores[0].bind(&binding()).unwrap();
    let epochs: Vec<u64> = stores.iter().map(|s| s.claim(0).unwrap().epoch).collect();
    assert_eq!(epochs, [1, 2, 3]);
}

#[test]
fn an_unreachable_cluster_is_a_clear_error() {
    // Needs no Cassandra: nothing listens on port 1.
    let settings = topsellers_cassandra::CassandraSettings {
        contact_points: vec!["127.0.0.1:1".into()],
        connect_timeout_ms: 1_000,
        ..Default::default()
    };
    let err = CassandraPartitionStore::open(&settings, "ns").unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(
            "cannot connect to cassandra partition store keyspace topsellers at 127.0.0.1:1 (namespace ns): "
        ),
        "{text}"
    );
    assert!(text.contains("cassandra.contact_points"), "{text}");
}

#[test]
fn invalid_settings_are_refused_before_connecting() {
    let settings = topsellers_cassandra::CassandraSettings {
        keyspace: "Bad-Name".into(),
        request_timeout_ms: 0,
        ..Default::default()
    };
    let text = CassandraPartitionStore::open(&settings, "ns")
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("cassandra.keyspace") && text.contains("cassandra.request_timeout_ms"),
        "{text}"
    );
}
