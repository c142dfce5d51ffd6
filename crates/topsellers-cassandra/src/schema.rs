//! The keyspace and its tables, created by topsellers itself and brought up to date by numbered
//! migrations (see `SCHEMA.md` beside this crate for the tables and why they are keyed as they are).
//!
//! How an open brings the schema up to date, safely when every aggregator of a group starts at once:
//! 1. The stored version is read from `<keyspace>.schema_version` with a serial read. Equal to
//!    [`SCHEMA_VERSION`]: nothing else to do (the common case: no DDL at all). Greater: refused with
//!    [`StoreError::NewerSchema`], since an older build would misread newer tables.
//! 2. Otherwise `CREATE KEYSPACE IF NOT EXISTS` with the configured replication, the version table,
//!    then each missing migration in order. Every statement is idempotent (`IF NOT EXISTS`), so a
//!    migration interrupted half-way is simply run again.
//! 3. After each migration the version moves with a lightweight transaction, `IF version = <previous>`;
//!    one that finds another process already moved it goes on from there.
//!
//! Tables are created `WITH ID = <uuid derived from keyspace and table name>`. Cassandra gives a new
//! table a random id otherwise, and two processes creating the same table at the same moment through
//! different coordinators would then register two ids for one name: a schema disagreement that needs
//! an operator. With the id fixed by the name, concurrent creations are the same change.

use crate::error::{driver_error, Op};
use crate::StoreError;
use scylla::client::session::Session;
use scylla::statement::unprepared::Statement;
use scylla::statement::{Consistency, SerialConsistency};
use scylla::value::CqlTimestamp;
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use uuid::Uuid;
use xxhash_rust::xxh3::xxh3_128;

/// The row of `schema_version` that holds this schema's version (the table could version other
/// components later).
pub(crate) const COMPONENT: &str = "partition_store";

/// One table of a migration: its name and its `CREATE TABLE IF NOT EXISTS` statement, in which
/// `{ks}` stands for the keyspace; `WITH ID = ...` is appended.
struct CreateTable {
    name: &'static str,
    cql: &'static str,
}

/// The schema, as an ordered list of migrations: migration `i` (1-based) makes version `i`. Append,
/// never edit a released one; every statement must be idempotent.
const MIGRATIONS: &[&[CreateTable]] = &[
    // 1: bindings, the partition rows, blob chunks and the pending-blob slots.
    &[
        CreateTable {
            name: "bindings",
            cql: "CREATE TABLE IF NOT EXISTS {ks}.bindings (
                      namespace  text PRIMARY KEY,
                      partitions int,
                      settings   text,
                      bound_at   timestamp
                  ) WITH comment = 'topsellers: what the stored state of a namespace means'",
        },
        CreateTable {
            name: "partitions",
            cql: "CREATE TABLE IF NOT EXISTS {ks}.partitions (
                      namespace           text,
                      partition           int,
                      epoch               bigint,
                      seq                 bigint,
                      owner               uuid,
                      claimed_at          timestamp,
                      saved_at            timestamp,
                      checkpoint_gen      uuid,
                      checkpoint_offset   bigint,
                      checkpoint_len      bigint,
                      checkpoint_chunks   int,
                      checkpoint_checksum bigint,
                      results_gen         uuid,
                      results_version     bigint,
                      results_offset      bigint,
                      results_len         bigint,
                      results_chunks      int,
                      results_checksum    bigint,
                      PRIMARY KEY ((namespace, partition))
                  ) WITH comment = 'topsellers: one row per Kafka partition: epoch and the pointers to its checkpoint and results'
                    AND compaction = {'class': 'LeveledCompactionStrategy'}",
        },
        CreateTable {
            name: "blob_chunks",
            cql: "CREATE TABLE IF NOT EXISTS {ks}.blob_chunks (
                      namespace  text,
                      partition  int,
                      generation uuid,
                      chunk      int,
                      data       blob,
                      written_at timestamp,
                      PRIMARY KEY ((namespace, partition, generation, chunk))
                  ) WITH comment = 'topsellers: checkpoint and results bytes in chunks of 1 MiB, written once, deleted once'
                    AND compaction = {'class': 'LeveledCompactionStrategy'}
                    AND gc_grace_seconds = 10800",
        },
        CreateTable {
            name: "pending_blobs",
            cql: "CREATE TABLE IF NOT EXISTS {ks}.pending_blobs (
                      namespace  text,
                      partition  int,
                      kind       text,
                      generation uuid,
                      chunks     int,
                      epoch      bigint,
                      written_at timestamp,
                      PRIMARY KEY ((namespace, partition), kind)
                  ) WITH comment = 'topsellers: the blob each partition last started to write, so a claim can delete one a crash left behind'",
        },
    ],
];

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

const VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS {ks}.schema_version (
    component  text PRIMARY KEY,
    version    int,
    applied_at timestamp,
    applied_by text
) WITH comment = 'topsellers: schema version of each component, moved by lightweight transactions'";

/// The id topsellers gives `keyspace.table`: a UUID (version 8, "custom") made of a hash of the
/// names, so every process creates the same table.
pub fn table_id(keyspace: &str, table: &str) -> Uuid {
    let hash = xxh3_128(format!("topsellers-cassandra/{keyspace}.{table}").as_bytes());
    uuid::Builder::from_custom_bytes(hash.to_be_bytes()).into_uuid()
}

fn create_table(keyspace: &str, name: &str, cql: &str) -> String {
    format!(
        "{} AND ID = {}",
        cql.replace("{ks}", keyspace),
        table_id(keyspace, name)
    )
}

/// Where the schema of a keyspace stands.
pub(crate) struct Migrator<'a> {
    pub session: &'a Session,
    pub keyspace: &'a str,
    pub replication: &'a crate::ReplicationSettings,
    pub serial: SerialConsistency,
    pub write: Consistency,
    /// The store's `describe()`, for errors.
    pub store: &'a str,
}

impl Migrator<'_> {
    /// Brings the keyspace to [`SCHEMA_VERSION`], or refuses a newer one.
    pub(crate) async fn run(&self) -> Result<(), StoreError> {
        let found = self.stored_version().await?;
        if found == Some(SCHEMA_VERSION) {
            self.check_replication().await;
            return Ok(());
        }
        self.refuse_newer(found)?;
        let ks = self.keyspace;
        self.ddl(&format!(
            "CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = {} AND durable_writes = true",
            self.replication.cql_map()
        ))
        .await?;
        self.check_replication().await;
        self.ddl(&create_table(ks, "schema_version", VERSION_TABLE))
            .await?;
        let mut version = self.stored_version().await?.unwrap_or(0);
        self.refuse_newer(Some(version))?;
        while version < SCHEMA_VERSION {
            let next = version + 1;
            for table in MIGRATIONS[version as usize] {
                self.ddl(&create_table(ks, table.name, table.cql)).await?;
            }
            version = self.move_version(version, next).await?;
            self.refuse_newer(Some(version))?;
        }
        tracing::info!(keyspace = ks, version, "cassandra schema up to date");
        Ok(())
    }

    fn refuse_newer(&self, found: Option<i32>) -> Result<(), StoreError> {
        match found {
            Some(found) if found > SCHEMA_VERSION => Err(StoreError::NewerSchema {
                path: PathBuf::from(format!(
                    "{} (table {}.schema_version)",
                    self.store, self.keyspace
                )),
                found: i64::from(found),
                supported: i64::from(SCHEMA_VERSION),
            }),
            _ => Ok(()),
        }
    }

    /// The stored version; `None` when the keyspace or the version table does not exist yet, or the
    /// table has no row (a first migration that stopped half-way).
    async fn stored_version(&self) -> Result<Option<i32>, StoreError> {
        let tables = self.tables().await?;
        if !tables.contains("schema_version") {
            return Ok(None);
        }
        // Another process may have just created the table: this node lists it, but a replica the
        // serial read below reaches may not know it yet (INCOMPATIBLE_SCHEMA, seen with every process
        // of a group starting at once on three nodes). The process that created it waited for schema
        // agreement; a reader must too.
        self.session
            .await_schema_agreement()
            .await
            .map_err(|e| driver_error(self.store, Op::Schema, e))?;
        let mut stmt = Statement::new(format!(
            "SELECT version FROM {}.schema_version WHERE component = ?",
            self.keyspace
        ));
        // Serial: the version is moved by lightweight transactions.
        stmt.set_consistency(match self.serial {
            SerialConsistency::LocalSerial => Consistency::LocalSerial,
            _ => Consistency::Serial,
        });
        // Even one node lists a table another process is creating in system_schema.tables a moment
        // before it answers queries on it ("table schema_version does not exist", seen in CI with three
        // processes opening a new keyspace at once): wait that moment out.
        let mut attempts = 0;
        let rows = loop {
            match self.session.query_unpaged(stmt.clone(), (COMPONENT,)).await {
                Ok(rows) => break rows,
                Err(e) if attempts < 25 && e.to_string().contains("does not exist") => {
                    attempts += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
                Err(e) => return Err(driver_error(self.store, Op::Schema, e)),
            }
        };
        let row = rows
            .into_rows_result()
            .map_err(|e| driver_error(self.store, Op::Schema, e))?
            .maybe_first_row::<(Option<i32>,)>()
            .map_err(|e| driver_error(self.store, Op::Schema, e))?;
        Ok(row.and_then(|(v,)| v))
    }

    /// The tables of the keyspace, as this node's schema lists them.
    async fn tables(&self) -> Result<HashSet<String>, StoreError> {
        let rows = self
            .session
            .query_unpaged(
                "SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?",
                (self.keyspace,),
            )
            .await
            .map_err(|e| driver_error(self.store, Op::Schema, e))?;
        let rows = rows
            .into_rows_result()
            .map_err(|e| driver_error(self.store, Op::Schema, e))?;
        let names = rows
            .rows::<(String,)>()
            .map_err(|e| driver_error(self.store, Op::Schema, e))?
            .map(|r| r.map(|(name,)| name))
            .collect::<Result<HashSet<_>, _>>()
            .map_err(|e| driver_error(self.store, Op::Schema, e))?;
        Ok(names)
    }

    /// Logs when an existing keyspace is replicated otherwise than configured: topsellers never
    /// alters it (that needs a repair afterwards, an operator's decision).
    async fn check_replication(&self) {
        let result = self
            .session
            .query_unpaged(
                "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = ?",
                (self.keyspace,),
            )
            .await;
        let stored = result
            .ok()
            .and_then(|r| r.into_rows_result().ok())
            .and_then(|rows| {
                rows.maybe_first_row::<(BTreeMap<String, String>,)>()
                    .ok()
                    .flatten()
            });
        let wanted = self.replication.as_options();
        if let Some((stored,)) = stored {
            if stored != wanted {
                tracing::warn!(
                    keyspace = self.keyspace,
                    stored = ?stored,
                    configured = ?wanted,
                    "the keyspace exists with another replication than cassandra.replication; topsellers \
                     leaves it as it is: ALTER KEYSPACE and run a repair to change it, or fix the setting"
                );
            }
        }
    }

    async fn ddl(&self, cql: &str) -> Result<(), StoreError> {
        // The driver waits for schema agreement after each schema change, so the next statement
        // (possibly through another coordinator) sees the table.
        self.session
            .query_unpaged(cql, ())
            .await
            .map_err(|e| driver_error(self.store, Op::Schema, e))?;
        Ok(())
    }

    /// Moves the stored version from `from` to `to`; returns the version it stands at afterwards
    /// (`to`, or more if another process got there first).
    async fn move_version(&self, from: i32, to: i32) -> Result<i32, StoreError> {
        let ks = self.keyspace;
        let by = format!(
            "topsellers-cassandra {} pid {}",
            env!("CARGO_PKG_VERSION"),
            std::process::id()
        );
        let now = CqlTimestamp(crate::store::wall_clock_ms());
        let mut stmt = if from == 0 {
            Statement::new(format!(
                "INSERT INTO {ks}.schema_version (component, version, applied_at, applied_by) \
                 VALUES (?, ?, ?, ?) IF NOT EXISTS"
            ))
        } else {
            Statement::new(format!(
                "UPDATE {ks}.schema_version SET version = ?, applied_at = ?, applied_by = ? \
                 WHERE component = ? IF version = ?"
            ))
        };
        stmt.set_consistency(self.write);
        stmt.set_serial_consistency(Some(self.serial));
        let result = if from == 0 {
            self.session
                .query_unpaged(stmt, (COMPONENT, to, now, by))
                .await
        } else {
            self.session
                .query_unpaged(stmt, (to, now, by, COMPONENT, from))
                .await
        };
        let applied = crate::store::lwt_applied(result, self.store, Op::Schema)?;
        if applied.applied {
            return Ok(to);
        }
        // Someone else moved it (or wrote a row without a version: then start over from 0 with an
        // update, which needs the row's version to match, so read it again).
        Ok(self.stored_version().await?.unwrap_or(to.max(from)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_ids_depend_on_keyspace_and_table_only() {
        assert_eq!(table_id("ks", "partitions"), table_id("ks", "partitions"));
        assert_ne!(table_id("ks", "partitions"), table_id("ks", "bindings"));
        assert_ne!(table_id("ks", "partitions"), table_id("ks2", "partitions"));
        assert_eq!(table_id("ks", "partitions").get_version_num(), 8);
    }

    #[test]
    fn every_table_statement_is_idempotent_and_gets_an_id() {
        for migration in MIGRATIONS {
            for table in *migration {
                let cql = create_table("ks", table.name, table.cql);
                assert!(
                    cql.starts_with(&format!("CREATE TABLE IF NOT EXISTS ks.{} (", table.name)),
                    "{cql}"
                );
                assert!(cql.ends_with(&table_id("ks", table.name).to_string()));
                assert!(!cql.contains("{ks}"));
            }
        }
    }
}
