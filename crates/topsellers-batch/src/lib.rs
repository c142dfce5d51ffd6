//! Batch from PostgreSQL (work in progress).
