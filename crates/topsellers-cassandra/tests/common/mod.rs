//! Shared by the tests against a real Cassandra: where it is, a keyspace of their own, and raw CQL.
#![allow(dead_code)] // each test binary uses a part

use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use std::sync::atomic::{AtomicU32, Ordering};
use topsellers_cassandra::CassandraSettings;

/// The nodes named by `TOPSELLERS_TEST_CASSANDRA` (`scripts/services.sh start cassandra`, then
/// `eval "$(scripts/services.sh env)"`). Unset: the test prints why it is skipped and returns, except
/// in CI (`CI=true`), which must never pass by skipping.
pub fn cassandra(test: &str) -> Option<Vec<String>> {
    match std::env::var("TOPSELLERS_TEST_CASSANDRA") {
        Ok(nodes) if !nodes.trim().is_empty() => {
            Some(nodes.split(',').map(|n| n.trim().to_string()).collect())
        }
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => panic!(
            "{test}: TOPSELLERS_TEST_CASSANDRA is not set, and CI must not skip: start Cassandra with \
             `scripts/services.sh start cassandra` and `eval \"$(scripts/services.sh env)\"`"
        ),
        _ => {
            eprintln!(
                "SKIPPED: {test}: TOPSELLERS_TEST_CASSANDRA is not set (scripts/services.sh start cassandra; \
                 eval \"$(scripts/services.sh env)\")"
            );
            None
        }
    }
}

/// A keyspace only this test uses (`topsellers_test_<pid>_<n>_<name>`), dropped when it goes out of
/// scope, even when the test fails.
pub struct TestKeyspace {
    pub settings: CassandraSettings,
}

impl TestKeyspace {
    pub fn new(nodes: &[String], name: &str) -> TestKeyspace {
        static N: AtomicU32 = AtomicU32::new(0);
        let keyspace = format!(
            "topsellers_test_{}_{}_{name}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        assert!(keyspace.len() <= 48, "keyspace name too long: {keyspace}");
        let settings = CassandraSettings {
            contact_points: nodes.to_vec(),
            keyspace,
            ..CassandraSettings::default()
        };
        let ks = TestKeyspace { settings };
        // A keyspace left by a crashed run with the same pid would make the test meaningless.
        ks.cql(&[&format!("DROP KEYSPACE IF EXISTS {}", ks.name())]);
        ks
    }

    pub fn name(&self) -> &str {
        &self.settings.keyspace
    }

    /// Runs statements in order on a session of its own, on a runtime of its own (call from a plain
    /// thread), and returns the rows of the last one as text.
    pub fn cql(&self, statements: &[&str]) -> Vec<Vec<String>> {
        cql(&self.settings.contact_points, statements)
    }
}

impl Drop for TestKeyspace {
    fn drop(&mut self) {
        let statement = format!("DROP KEYSPACE IF EXISTS {}", self.name());
        let nodes = self.settings.contact_points.clone();
        // Never panic in drop (it may run while a failed test unwinds).
        let dropped = std::thread::spawn(move || cql(&nodes, &[&statement])).join();
        if dropped.is_err() {
            eprintln!("could not drop keyspace {}", self.name());
        }
    }
}

pub fn cql(nodes: &[String], statements: &[&str]) -> Vec<Vec<String>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let session: Session = SessionBuilder::new()
            .known_nodes(nodes)
            .build()
            .await
            .expect("connect to the test Cassandra");
        let mut last = Vec::new();
        for statement in statements {
            let result = session
                .query_unpaged(*statement, ())
                .await
                .unwrap_or_else(|e| panic!("{statement}: {e}"));
            last = match result.into_rows_result() {
                Ok(rows) => rows
                    .rows::<scylla::value::Row>()
                    .unwrap()
                    .map(|row| {
                        row.unwrap()
                            .columns
                            .into_iter()
                            .map(|c| c.map_or("null".to_string(), |v| text(&v)))
                            .collect()
                    })
                    .collect(),
                Err(_) => Vec::new(),
            };
        }
        last
    })
}

fn text(value: &scylla::value::CqlValue) -> String {
    use scylla::value::CqlValue;
    match value {
        CqlValue::Text(s) | CqlValue::Ascii(s) => s.clone(),
        CqlValue::Int(n) => n.to_string(),
        CqlValue::BigInt(n) => n.to_string(),
        CqlValue::Uuid(u) => u.to_string(),
        CqlValue::Boolean(b) => b.to_string(),
        other => format!("{other:?}"),
    }
}
