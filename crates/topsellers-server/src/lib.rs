//! HTTP API, web page and metrics: answers top-N from an in-memory snapshot
