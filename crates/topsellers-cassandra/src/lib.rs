//! The partition store in Apache Cassandra: where the aggregators of a Kafka consumer group keep each
//! partition's checkpoint (engine state + offset) and results, and where any number of API servers read
//! the results, across hosts and datacenters.
//!
//! [`CassandraPartitionStore`] implements [`topsellers_store::PartitionStore`] and passes its
//! conformance suite against a real Cassandra 5.0. It creates its keyspace and tables itself,
//! idempotently and by numbered migrations ([`schema`]), fences owners with lightweight transactions
//! and makes every save all or nothing by writing blobs under a new generation and flipping a pointer
//! (see [`store`] and `SCHEMA.md` beside this crate for the layout and why its keys are right).
//! [`CassandraSettings`] is the `[cassandra]` config section.
//!
//! ```no_run
//! use topsellers_cassandra::{CassandraPartitionStore, CassandraSettings};
//! use topsellers_store::PartitionStore;
//!
//! let store = CassandraPartitionStore::open(&CassandraSettings::default(), "purchases")?;
//! // An API server: poll the marks, load what moved.
//! for mark in store.result_versions()? {
//!     let results = store.load_results(mark.partition)?;
//!     println!("partition {}: version {}", mark.partition, mark.version);
//!     # let _ = results;
//! }
//! # Ok::<(), topsellers_store::StoreError>(())
//! ```

mod error;
pub mod schema;
mod settings;
pub mod store;

pub use schema::SCHEMA_VERSION;
pub use settings::{
    CassandraSettings, Consistency, ReplicationSettings, ReplicationStrategy, Secret,
    SerialConsistency, SECTION,
};
pub use store::{CassandraPartitionStore, CHUNK_BYTES};
pub use topsellers_store::StoreError;
