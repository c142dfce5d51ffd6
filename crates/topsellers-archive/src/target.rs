//! [`ArchiveTarget`]: where the archive's files go, a local directory (`archive.dir`) or an object store
//! (`archive.url = "s3://bucket/prefix"`), and how each makes a file appear whole or not at all:
//! - local: written under a hidden temporary name, synced, renamed over the final name, the directory synced;
//! - S3 (or any S3-compatible server): one PUT per file, which the store makes visible whole or not at all (a
//!   multipart upload is never used: the files are bounded by `max_file_bytes`). Credentials, region and endpoint
//!   come from the standard `AWS_*` environment variables (`AWS_ENDPOINT` and `AWS_ALLOW_HTTP=true` for a local
//!   server), so no secret sits in the config.
//!
//! Callers use paths relative to the archive's root, `/`-separated (`dt=2011-01-31/hour=08/x.parquet`).

use crate::{io_err, sync_dir, ArchiveError, ArchiveSettings};
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, ObjectStore, PutOptions, PutPayload};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub enum ArchiveTarget {
    Local(PathBuf),
    Object(ObjectTarget),
}

pub struct ObjectTarget {
    url: String,
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    /// The object store client is async; the archive's writers are plain threads. Requests run on this runtime's
    /// thread and the caller waits on a channel, which is also allowed inside another runtime (demo, serve).
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for ObjectTarget {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which panics inside another runtime; nothing is in flight here.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl ArchiveTarget {
    /// The target `settings` name: `url` when set, else `dir` (created).
    pub fn open(settings: &ArchiveSettings) -> Result<ArchiveTarget, ArchiveError> {
        let Some(url) = settings.url.as_deref().filter(|u| !u.is_empty()) else {
            std::fs::create_dir_all(&settings.dir).map_err(io_err(&settings.dir))?;
            return Ok(ArchiveTarget::Local(settings.dir.clone()));
        };
        let bad = |detail: String| ArchiveError::BadUrl {
            url: url.to_string(),
            detail,
        };
        let Some(rest) = url.strip_prefix("s3://") else {
            return Err(bad(
                "only s3:// URLs are supported (any S3-compatible server)".into(),
            ));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("the URL names no bucket".into()));
        }
        // The client's own retries (3 minutes by default) would hold a start-up or a publish that long; the
        // archive retries a failed run itself, from its committed position.
        let retry = object_store::RetryConfig {
            max_retries: 3,
            retry_timeout: std::time::Duration::from_secs(20),
            ..object_store::RetryConfig::default()
        };
        let store = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_retry(retry)
            .build()
            .map_err(|e| bad(e.to_string()))?;
        let prefix = ObjectPath::from(prefix.trim_matches('/'));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("topsellers-archive-s3")
            .enable_all()
            .build()
            .map_err(|e| bad(format!("cannot start its client: {e}")))?;
        Ok(ArchiveTarget::Object(ObjectTarget {
            url: url.to_string(),
            store: Arc::new(store),
            prefix,
            runtime: Some(runtime),
        }))
    }

    /// For messages: the directory or the URL.
    pub fn describe(&self) -> String {
        match self {
            ArchiveTarget::Local(dir) => dir.display().to_string(),
            ArchiveTarget::Object(o) => o.url.clone(),
        }
    }

    /// The local directory, when the archive is one.
    pub fn local_dir(&self) -> Option<&Path> {
        match self {
            ArchiveTarget::Local(dir) => Some(dir),
            ArchiveTarget::Object(_) => None,
        }
    }

    /// Makes `bytes` the content of `rel`, whole or not at all (replacing what was there).
    pub fn put(&self, rel: &str, bytes: Vec<u8>) -> Result<(), ArchiveError> {
        match self {
            ArchiveTarget::Local(dir) => {
                let path = dir.join(rel);
                let parent = path.parent().expect("a file in the archive has a folder");
                std::fs::create_dir_all(parent).map_err(io_err(parent))?;
                let name = path.file_name().expect("a file name").to_string_lossy();
                let temp = parent.join(format!(".{name}.tmp"));
                let written = File::create(&temp)
                    .and_then(|mut f| f.write_all(&bytes).and_then(|()| f.sync_all()))
                    .map_err(io_err(&temp));
                if let Err(e) = written {
                    let _ = std::fs::remove_file(&temp);
                    return Err(e);
                }
                std::fs::rename(&temp, &path).map_err(io_err(&path))?;
                sync_dir(parent)
            }
            ArchiveTarget::Object(o) => {
                let (store, path) = (o.store.clone(), o.path(rel));
                o.run(async move {
                    store
                        .put_opts(&path, PutPayload::from(bytes), PutOptions::default())
                        .await
                })
                .map(drop)
                .map_err(|e| o.error(rel, e))
            }
        }
    }

    /// The content of `rel`, or `None` when there is no such file.
    pub fn get(&self, rel: &str) -> Result<Option<Vec<u8>>, ArchiveError> {
        match self {
            ArchiveTarget::Local(dir) => {
                let path = dir.join(rel);
                match std::fs::read(&path) {
                    Ok(b) => Ok(Some(b)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(io_err(&path)(e)),
                }
            }
            ArchiveTarget::Object(o) => {
                let (store, path) = (o.store.clone(), o.path(rel));
                let got = o.run(async move {
                    match store.get_opts(&path, GetOptions::default()).await {
                        Ok(r) => r.bytes().await.map(|b| Some(b.to_vec())),
                        Err(object_store::Error::NotFound { .. }) => Ok(None),
                        Err(e) => Err(e),
                    }
                });
                got.map_err(|e| o.error(rel, e))
            }
        }
    }
}

impl ObjectTarget {
    fn path(&self, rel: &str) -> ObjectPath {
        rel.split('/')
            .fold(self.prefix.clone(), |p, part| p.join(part))
    }

    fn run<T: Send + 'static>(
        &self,
        work: impl std::future::Future<Output = T> + Send + 'static,
    ) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        self.runtime
            .as_ref()
            .expect("the runtime lives as long as the target")
            .spawn(async move {
                let _ = tx.send(work.await);
            });
        rx.recv().expect("the object store client's thread stopped")
    }

    fn error(&self, rel: &str, e: object_store::Error) -> ArchiveError {
        ArchiveError::Object {
            url: format!("{}/{rel}", self.url.trim_end_matches('/')),
            detail: e.to_string(),
        }
    }
}
