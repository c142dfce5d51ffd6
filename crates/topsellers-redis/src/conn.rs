//! Synchronous connections to Redis or a Redis Cluster, a few per store handle, made when needed and
//! replaced when they break.
//!
//! Why synchronous: the store trait is synchronous and is called from plain threads as well as from
//! `spawn_blocking` threads of a tokio runtime that belongs to someone else. A blocking socket needs no
//! runtime at all, so there is nothing to nest or to deadlock on.

use crate::settings::RedisSettings;
use redis::cluster::{ClusterClient, ClusterClientBuilder, ClusterConnection};
use redis::{ConnectionLike, ErrorKind, RedisError, RedisResult};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

/// How often the cluster client retries a call itself (redirections while slots move, `TRYAGAIN`,
/// `CLUSTERDOWN` during a failover, a dropped node connection), with growing waits in between.
const CLUSTER_RETRIES: u32 = 3;

enum Client {
    Single(redis::Client),
    Cluster(ClusterClient),
}

pub(crate) enum Conn {
    Single(redis::Connection),
    // Boxed: it is several times the size of a single connection.
    Cluster(Box<ClusterConnection>),
}

impl Conn {
    pub(crate) fn like(&mut self) -> &mut dyn ConnectionLike {
        match self {
            Conn::Single(c) => c,
            Conn::Cluster(c) => c.as_mut(),
        }
    }

    /// The cluster connection, for commands that must be routed by hand.
    pub(crate) fn cluster(&mut self) -> Option<&mut ClusterConnection> {
        match self {
            Conn::Single(_) => None,
            Conn::Cluster(c) => Some(c.as_mut()),
        }
    }

    fn is_open(&self) -> bool {
        match self {
            Conn::Single(c) => c.is_open(),
            // Replaces broken node connections itself.
            Conn::Cluster(_) => true,
        }
    }
}

/// The connections of one store handle.
pub(crate) struct Pool {
    client: Client,
    settings: RedisSettings,
    client_name: String,
    slots: Box<[Mutex<Option<Conn>>]>,
    next: AtomicUsize,
}

impl Pool {
    /// A pool for `settings` (already validated), without connecting. Connections announce themselves
    /// as `client_name` (`CLIENT LIST`).
    pub(crate) fn new(settings: &RedisSettings, client_name: String) -> RedisResult<Pool> {
        let client = if settings.cluster {
            Client::Cluster(
                ClusterClientBuilder::new(settings.urls.clone())
                    .connection_timeout(settings.connect_timeout())
                    .response_timeout(settings.response_timeout())
                    .retries(CLUSTER_RETRIES)
                    .build()?,
            )
        } else {
            Client::Single(redis::Client::open(settings.urls[0].as_str())?)
        };
        Ok(Pool {
            client,
            settings: settings.clone(),
            client_name,
            slots: (0..settings.pool_size).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
        })
    }

    fn connect(&self) -> RedisResult<Conn> {
        let mut conn = match &self.client {
            Client::Single(client) => {
                let conn = client.get_connection_with_timeout(self.settings.connect_timeout())?;
                conn.set_read_timeout(Some(self.settings.response_timeout()))?;
                conn.set_write_timeout(Some(self.settings.response_timeout()))?;
                Conn::Single(conn)
            }
            Client::Cluster(client) => {
                let conn = client.get_connection()?;
                conn.set_write_timeout(Some(self.settings.response_timeout()))?;
                Conn::Cluster(Box::new(conn))
            }
        };
        // On every node of a cluster: CLIENT SETNAME is routed to all of them. Only a help for operators
        // (CLIENT LIST), so a server that refuses it (ACLs) is fine.
        let named = redis::cmd("CLIENT")
            .arg("SETNAME")
            .arg(&self.client_name)
            .exec(conn.like());
        match named {
            Err(e) if breaks_connection(&e) => Err(e),
            Err(e) => {
                tracing::debug!(error = %e, "CLIENT SETNAME refused; connections stay unnamed");
                Ok(conn)
            }
            Ok(()) => Ok(conn),
        }
    }

    /// The first free connection slot, so that a handle used by one thread at a time keeps to one
    /// connection; when all are busy, the next one in turn, to wait for.
    fn slot(&self) -> MutexGuard<'_, Option<Conn>> {
        for slot in self.slots.iter() {
            if let Ok(guard) = slot.try_lock() {
                return guard;
            }
        }
        let n = self.slots.len();
        let turn = self.next.fetch_add(1, Ordering::Relaxed) % n;
        // A panic while a connection was in use may have left a reply unread on it: start afresh.
        self.slots[turn].lock().unwrap_or_else(|poisoned| {
            let mut guard = poisoned.into_inner();
            *guard = None;
            guard
        })
    }

    /// Runs `call` on a connection, connecting first if needed.
    ///
    /// A connection that failed in a way that may leave it out of step (I/O error, timeout, a reply
    /// that does not parse) is dropped, so the next call starts on a new one; when it had been dropped
    /// by the server or the network (a restart, `CLIENT KILL`, an idle timeout), the call is made once
    /// more on a new connection right away. Every operation of the store may be repeated safely (a
    /// repeated save is accepted as a retry, a repeated claim just takes one more epoch).
    pub(crate) fn run<T>(
        &self,
        mut call: impl FnMut(&mut Conn) -> RedisResult<T>,
    ) -> RedisResult<T> {
        let mut slot = self.slot();
        let mut retried = false;
        loop {
            let fresh = slot.is_none();
            if fresh {
                *slot = Some(self.connect()?);
            }
            let conn = slot.as_mut().expect("connected above");
            match call(conn) {
                Ok(v) => return Ok(v),
                Err(e) => {
                    // A slot moved (resharding, failover): the cluster client follows MOVED by itself,
                    // but not when it comes inside a MULTI/EXEC (as EXECABORT), so start over with a new
                    // connection, which reads the slots afresh.
                    let moved = matches!(conn, Conn::Cluster(_)) && has_code(&e, &["MOVED"]);
                    if moved || breaks_connection(&e) || !conn.is_open() {
                        *slot = None;
                        if (moved || e.is_connection_dropped()) && !fresh && !retried {
                            retried = true;
                            continue;
                        }
                    }
                    return Err(e);
                }
            }
        }
    }
}

/// Whether `e`, or one of the errors inside an aborted transaction, has one of `codes` (`OOM`, `MOVED`,
/// ...).
pub(crate) fn has_code(e: &RedisError, codes: &[&str]) -> bool {
    e.code().is_some_and(|c| codes.contains(&c))
        || e.clone()
            .into_server_errors()
            .is_some_and(|inner| inner.iter().any(|(_, s)| codes.contains(&s.code())))
}

fn breaks_connection(e: &RedisError) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Io | ErrorKind::Parse | ErrorKind::ClusterConnectionNotFound
    ) || e.is_timeout()
}
