//! The embedded store: accepted-event log, checkpoints, results and dead letters in SQLite under a data directory
