//! The partition store conformance suite, against a real Cassandra.

mod common;

use topsellers_cassandra::CassandraPartitionStore;
use topsellers_store::partitions::conformance;
use topsellers_store::PartitionStore;

#[test]
fn passes_the_conformance_suite() {
    let Some(nodes) = common::cassandra("passes_the_conformance_suite") else {
        return;
    };
    let keyspace = common::TestKeyspace::new(&nodes, "conformance");
    let backend = CassandraPartitionStore::open(&keyspace.settings, "unused").unwrap();
    let started = std::time::Instant::now();
    conformance::run_all(&|namespace: &str| -> Box<dyn PartitionStore> {
        Box::new(backend.handle(namespace))
    });
    eprintln!("conformance suite on Cassandra: {:?}", started.elapsed());
}
