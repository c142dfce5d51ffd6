//! The SocketAppender intake: a thread per connection reads newline-delimited JSON events.
//!
//! Each read's complete lines are parsed, the accepted events spooled (fsynced) and the dead letters written
//! before the connection is read again, so what was read is never only in memory for longer than one chunk. While
//! the spool is full the connection is not read at all: the kernel's buffers fill, TCP's window closes and the
//! appender's writes block; that is the push-back, nothing is dropped. A line longer than `max_event_bytes` is
//! skipped as it streams by (never held) and becomes an `oversized` dead letter; a line cut off by the connection
//! closing is a `malformed` one. When the agent stops, each connection is read until it is quiet (at most 5 s), so
//! what an appender wrote before the stop is spooled, not dropped with the connection.

use super::{Keyed, Shared};
use crate::raw::RawLine;
use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use topsellers_ingest::Parsed;
use topsellers_model::RejectReason;

/// How much is read from a connection at once.
const CHUNK_BYTES: usize = 64 << 10;

/// How often a waiting thread looks at `stop` and the spool.
const TICK: Duration = Duration::from_millis(100);

/// Longest a connection is still read after the agent was told to stop.
const DRAIN: Duration = Duration::from_secs(5);

pub(super) fn spawn(
    listener: TcpListener,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
) -> io::Result<std::thread::JoinHandle<()>> {
    listener.set_nonblocking(true)?;
    std::thread::Builder::new()
        .name("agent-log4j2-socket".into())
        .spawn(move || accept_loop(&listener, &shared, &stop))
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>, stop: &Arc<AtomicBool>) {
    let open = Arc::new(AtomicUsize::new(0));
    let mut workers: Vec<std::thread::JoinHandle<()>> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        workers.retain(|w| !w.is_finished());
        let (stream, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(TICK);
                continue;
            }
            Err(e) => {
                tracing::warn!(target: "topsellers", "agent.log4j2.socket_listen: accepting a connection failed, going on: {e}");
                std::thread::sleep(TICK);
                continue;
            }
        };
        if open.load(Ordering::Relaxed) >= shared.config.max_connections {
            tracing::warn!(target: "topsellers", %peer, max = shared.config.max_connections, "log4j2 socket connection refused: agent.log4j2.max_connections are open; the appender reconnects later");
            continue; // dropping the stream closes it
        }
        open.fetch_add(1, Ordering::Relaxed);
        let (shared, stop, closed) = (shared.clone(), stop.clone(), open.clone());
        let worker = std::thread::Builder::new()
            .name("agent-log4j2-conn".into())
            .spawn(move || {
                if let Err(e) = connection(stream, peer, &shared, &stop) {
                    tracing::warn!(target: "topsellers", %peer, "log4j2 socket connection ended: {e}");
                }
                closed.fetch_sub(1, Ordering::Relaxed);
            });
        match worker {
            Ok(w) => workers.push(w),
            Err(e) => {
                tracing::error!(target: "topsellers", "cannot start a thread for a log4j2 connection: {e}");
                open.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
    for w in workers {
        let _ = w.join();
    }
}

/// The line being read: where it started in the connection's bytes, and its bytes unless it is too long.
struct Pending {
    start: u64,
    bytes: Vec<u8>,
    oversized: bool,
}

fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    shared: &Shared,
    stop: &AtomicBool,
) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(TICK))?;
    let mut parser = shared.parser(format!("agent:log4j2-socket {peer}"))?;
    let max = shared.config.max_event_bytes;
    let mut chunk = vec![0u8; CHUNK_BYTES];
    let mut line = Pending {
        start: 0,
        bytes: Vec::new(),
        oversized: false,
    };
    let mut at: u64 = 0; // bytes read from the connection so far
    let mut draining_since: Option<Instant> = None;
    let mut counts = Counts::default();
    tracing::debug!(target: "topsellers", %peer, "log4j2 socket connection");
    loop {
        // Push-back: while the spool is full this connection is not read.
        while shared.is_full() {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            std::thread::sleep(TICK);
        }
        // Stopping: the socket has no acknowledgements, so what the appender already wrote is read and spooled
        // until the connection is quiet for a tick (at most DRAIN), rather than thrown away with the connection.
        let stopping = stop.load(Ordering::Relaxed);
        if stopping && draining_since.get_or_insert_with(Instant::now).elapsed() > DRAIN {
            return Ok(());
        }
        let n = match stream.read(&mut chunk) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                if stopping && e.kind() != io::ErrorKind::Interrupted {
                    return Ok(()); // quiet for a tick: everything sent before the stop is spooled
                }
                continue;
            }
            Err(e) => {
                tracing::warn!(target: "topsellers", %peer, "reading a log4j2 connection failed, closing it: {e}");
                0
            }
        };
        let mut parsed = Vec::new();
        if n == 0 {
            if line.oversized || !line.bytes.trim_ascii().is_empty() {
                parsed.push((Parsed::Rejected(parser.letter(
                    &format!("byte {}", line.start),
                    RejectReason::Malformed,
                    format!(
                        "the connection closed in the middle of an event ({} bytes without the closing newline); the appender stopped mid-write, or its layout ends events without a newline (JsonLayout needs eventEol=\"true\")",
                        at - line.start
                    ),
                )), None));
            }
            keep(shared, parsed, stop, &mut counts);
            tracing::info!(target: "topsellers", %peer, events = counts.events, dead_letters = counts.dead_letters, "log4j2 socket connection closed by the appender");
            return Ok(());
        }
        let mut rest = &chunk[..n];
        while let Some(i) = memchr::memchr(b'\n', rest) {
            let end = at + i as u64; // the newline's position
            if line.oversized || line.bytes.len() + i > max {
                parsed.push((Parsed::Rejected(parser.letter(
                    &format!("byte {}", line.start),
                    RejectReason::Oversized,
                    format!(
                        "the event is {} bytes, more than agent.log4j2.max_event_bytes ({max}); raise the limit or log smaller events",
                        end - line.start
                    ),
                )), None));
            } else {
                line.bytes.extend_from_slice(&rest[..i]);
                if !line.bytes.trim_ascii().is_empty() {
                    let location = format!("byte {}", line.start);
                    parsed.push(
                        parser.parse_keyed(&RawLine::new(&line.bytes, line.start), &location),
                    );
                }
            }
            line.bytes.clear();
            line.oversized = false;
            line.start = end + 1;
            at = end + 1;
            rest = &rest[i + 1..];
        }
        if !line.oversized && line.bytes.len() + rest.len() > max {
            line.oversized = true;
            line.bytes = Vec::new(); // the memory goes back: a long line is never held
        }
        if !line.oversized {
            line.bytes.extend_from_slice(rest);
        }
        at += rest.len() as u64;
        keep(shared, parsed, stop, &mut counts);
    }
}

/// What a connection brought, logged when it ends.
#[derive(Default)]
struct Counts {
    events: u64,
    dead_letters: u64,
}

/// Spools what a read gave, retrying while the state directory fails: the bytes were taken off the connection, so
/// giving up would drop them.
fn keep(shared: &Shared, parsed: Vec<Keyed>, stop: &AtomicBool, counts: &mut Counts) {
    if parsed.is_empty() {
        return;
    }
    loop {
        match shared.keep(&parsed) {
            Ok((accepted, letters)) => {
                counts.events += accepted;
                counts.dead_letters += letters.len() as u64;
                return;
            }
            Err(e) => {
                tracing::error!(target: "topsellers", "the agent cannot write its spool or dead letters ({e}); retrying in 1 s (check the state directory's disk)");
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log4j2::Log4j2Config;
    use crate::testutil::{assert_keys_delivered, customer_key, purchase, spool_text};
    use std::io::Write;
    use topsellers_ingest::Limits;

    /// SocketAppender lines over a real connection, through the intake and the agent: the key arrives as a tailed
    /// file gives it, the id nowhere; off, nothing changes.
    #[test]
    fn customer_key_is_made_at_intake_and_carried_through_the_spool() {
        for configured in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let state = dir.path().join("state");
            let log4j2 = Log4j2Config {
                socket_listen: Some("127.0.0.1:4560".into()),
                ..Log4j2Config::default()
            };
            let config = crate::AgentConfig {
                log4j2: Some(log4j2.clone()),
                customer_key: configured.then(|| customer_key(dir.path())),
                ..crate::AgentConfig::default()
            };
            let shared = Shared::new(
                &log4j2,
                &Limits::default(),
                config.customer_key.as_ref(),
                &state,
            )
            .unwrap();
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let address = listener.local_addr().unwrap();
            let stop = Arc::new(AtomicBool::new(false));
            let server = spawn(listener, shared, stop.clone()).unwrap();
            let anonymous = purchase("anonymous").replace(crate::testutil::CUSTOMER_ID, "");
            let mut appender = TcpStream::connect(address).unwrap();
            for line in [purchase("keyed-1"), anonymous, purchase("keyed-2")] {
                writeln!(appender, r#"{{"message":{line}}}"#).unwrap();
            }
            drop(appender);
            let deadline = Instant::now() + Duration::from_secs(10);
            while !spool_text(&state).contains("keyed-2") {
                assert!(Instant::now() < deadline, "the intake spooled nothing");
                std::thread::sleep(Duration::from_millis(10));
            }
            stop.store(true, Ordering::Relaxed);
            server.join().unwrap();
            let events = assert_keys_delivered(&config, &state, dir.path());
            assert_eq!(events.len(), 3);
        }
    }
}
