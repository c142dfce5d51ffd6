//! Driver errors as [`StoreError`]s that name the store, the operation and the fix.
//!
//! `topsellers-store`'s error type has no variant for "a remote backend failed", so these use its
//! generic [`StoreError::Io`]: `path` holds the store's `describe()` text and `source` an
//! [`io::Error`] whose kind classifies the failure (timed out, unreachable, refused credentials, bad
//! data) and whose message is the driver's, followed by what to do. Displayed:
//! `cannot claim a partition in cassandra partition store ... (namespace purchases): <driver's
//! message>; <fix>`.

use crate::StoreError;
use scylla::errors::{DbError, ExecutionError, RequestAttemptError};
use std::io;
use std::path::PathBuf;

/// What the store was doing, for the start of the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Connect,
    Schema,
    Prepare,
    Bind,
    Claim,
    SaveCheckpoint,
    SaveResults,
    ResultVersions,
    LoadResults,
}

impl Op {
    fn action(self) -> &'static str {
        match self {
            Op::Connect => "connect to",
            Op::Schema => "create or upgrade the keyspace and tables of",
            Op::Prepare => "prepare the statements of",
            Op::Bind => "bind",
            Op::Claim => "claim a partition in",
            Op::SaveCheckpoint => "save a checkpoint to",
            Op::SaveResults => "save results to",
            Op::ResultVersions => "list the result versions of",
            Op::LoadResults => "load results from",
        }
    }
}

/// An error of the store that is not the driver's, with its kind and fix.
pub(crate) fn store_error(store: &str, op: Op, kind: io::ErrorKind, message: String) -> StoreError {
    StoreError::Io {
        action: op.action(),
        path: PathBuf::from(store),
        source: io::Error::new(kind, message),
    }
}

/// Classifies any error of the driver (executing, preparing, connecting, decoding rows).
pub(crate) fn driver_error<E>(store: &str, op: Op, error: E) -> StoreError
where
    E: std::error::Error + 'static,
{
    let (kind, fix) = classify(&error);
    store_error(store, op, kind, format!("{error}; {fix}"))
}

fn classify(error: &(dyn std::error::Error + 'static)) -> (io::ErrorKind, &'static str) {
    const RETRY: &str = "check that the Cassandra nodes are up and not overloaded, then retry";
    const REACH: &str =
        "check that Cassandra runs at cassandra.contact_points and can be reached from \
                         this host, then retry";
    let execution = error.downcast_ref::<ExecutionError>();
    let attempt = error
        .downcast_ref::<RequestAttemptError>()
        .or(match execution {
            Some(ExecutionError::LastAttemptError(a)) => Some(a),
            _ => None,
        });
    if let Some(RequestAttemptError::DbError(db, message)) = attempt {
        return match db {
            DbError::Unavailable { .. } => (
                io::ErrorKind::ConnectionRefused,
                "too few replicas are up for the consistency level: start the stopped Cassandra nodes, or \
                 lower cassandra.read_consistency / cassandra.write_consistency, then retry",
            ),
            DbError::ReadTimeout { .. }
            | DbError::WriteTimeout { .. }
            | DbError::ReadFailure { .. }
            | DbError::WriteFailure { .. }
            | DbError::Overloaded
            | DbError::RateLimitReached { .. }
            | DbError::IsBootstrapping => (io::ErrorKind::TimedOut, RETRY),
            DbError::AuthenticationError => (
                io::ErrorKind::PermissionDenied,
                "check cassandra.username and cassandra.password",
            ),
            DbError::Unauthorized => (
                io::ErrorKind::PermissionDenied,
                "grant the role of cassandra.username CREATE, ALTER, SELECT and MODIFY on the keyspace \
                 (cassandra.keyspace)",
            ),
            DbError::Invalid | DbError::ConfigError
                if message.contains("unconfigured table")
                    || message.contains("does not exist")
                    || message.contains("Undefined column") =>
            {
                (
                    io::ErrorKind::NotFound,
                    "the keyspace or a table of topsellers is missing or was changed by hand; restart \
                     topsellers, which creates what is missing (a table changed by hand must be dropped first)",
                )
            }
            _ => (
                io::ErrorKind::Other,
                "see the Cassandra node's log; this may be a bug in topsellers, please report it",
            ),
        };
    }
    match execution {
        Some(ExecutionError::RequestTimeout(_)) => (
            io::ErrorKind::TimedOut,
            "Cassandra did not answer within cassandra.request_timeout_ms; check that its nodes are up and \
             not overloaded, then retry",
        ),
        Some(
            ExecutionError::ConnectionPoolError(_)
            | ExecutionError::EmptyPlan
            | ExecutionError::LastAttemptError(_),
        ) => (io::ErrorKind::ConnectionRefused, REACH),
        Some(ExecutionError::SchemaAgreementError(_) | ExecutionError::MetadataError(_)) => (
            io::ErrorKind::TimedOut,
            "the Cassandra nodes did not agree on the schema in time; check that every node is up, then retry",
        ),
        Some(_) => (
            io::ErrorKind::Other,
            "see the Cassandra node's log; this may be a bug in topsellers, please report it",
        ),
        None => {
            let text = error.to_string();
            if error.downcast_ref::<scylla::errors::NewSessionError>().is_some() {
                if text.contains("uthenticat") {
                    (
                        io::ErrorKind::PermissionDenied,
                        "check cassandra.username and cassandra.password",
                    )
                } else {
                    (io::ErrorKind::ConnectionRefused, REACH)
                }
            } else if error.downcast_ref::<scylla::errors::PrepareError>().is_some() {
                (io::ErrorKind::ConnectionRefused, REACH)
            } else {
                // Rows that do not decode: the tables differ from what this build created.
                (
                    io::ErrorKind::InvalidData,
                    "the tables do not have the columns this topsellers expects (changed by hand, or by \
                     another version?); check `schema_version` in the keyspace",
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_timeout_names_the_store_the_operation_and_the_fix() {
        let err = driver_error(
            "cassandra partition store keyspace ts at 127.0.0.1:9042 (namespace purchases)",
            Op::Claim,
            ExecutionError::RequestTimeout(Duration::from_secs(12)),
        );
        let text = err.to_string();
        assert!(
            text.starts_with(
                "cannot claim a partition in cassandra partition store keyspace ts at 127.0.0.1:9042 \
                 (namespace purchases): "
            ),
            "{text}"
        );
        assert!(text.contains("cassandra.request_timeout_ms"), "{text}");
        match err {
            StoreError::Io { source, .. } => assert_eq!(source.kind(), io::ErrorKind::TimedOut),
            _ => unreachable!(),
        }
    }

    #[test]
    fn unavailable_replicas_say_what_to_start() {
        let db = DbError::Unavailable {
            consistency: scylla::statement::Consistency::Quorum,
            required: 2,
            alive: 1,
        };
        let err = driver_error(
            "store",
            Op::SaveResults,
            ExecutionError::LastAttemptError(RequestAttemptError::DbError(db, "x".into())),
        );
        let text = err.to_string();
        assert!(text.starts_with("cannot save results to store: "), "{text}");
        assert!(text.contains("start the stopped Cassandra nodes"), "{text}");
    }
}
