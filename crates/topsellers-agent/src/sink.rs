//! Where scrubbed events go. A [`Downstream`] says `Ok` only when every event of the batch is durable there;
//! until then the agent keeps the file positions where they were, so nothing unacknowledged is ever skipped.

use crate::customer_key::CustomerKey;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;
use topsellers_model::PurchaseEvent;

/// What the agent sends: a scrubbed event and, only when `[agent.customer_key]` is configured, the keyed hash of
/// its customer id (never the id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentEvent {
    pub event: PurchaseEvent,
    pub customer_key: Option<CustomerKey>,
}

/// Why a batch was not acknowledged. Either way the agent keeps the batch and tries again.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// Down, overloaded or unreachable: wait and retry.
    #[error("{0}")]
    Unavailable(String),
    /// The downstream refused the request (a wrong token, a wrong URL): retried too, since dropping is never
    /// an option, but logged as an error for an operator to fix.
    #[error("{0}")]
    Refused(String),
}

/// A sink for scrubbed events.
///
/// Lifecycle: [`Downstream::deliver`] is called with one batch at a time, again with the same batch after an
/// error (event ids unchanged, so a batch that was in fact stored is deduplicated downstream).
pub trait Downstream {
    /// Sends `events`; `Ok` means all of them are durable downstream. A customer key, when present, travels
    /// as `customer_key` in the event's JSON.
    fn deliver(&mut self, events: &[AgentEvent]) -> Result<(), DeliveryError>;
    /// Called when the files have nothing new; a downstream that needs it tells its readers that event time
    /// may advance (Kafka: a tick to every partition). An error is logged and the call repeated at the next idle
    /// moment.
    fn idle(&mut self) -> Result<(), DeliveryError> {
        Ok(())
    }
    /// Names the downstream in logs (no credentials).
    fn describe(&self) -> String;
}

/// `http://host:port/path`, the only URL shape the agent speaks (loopback or a private network; put TLS in
/// front with a local proxy).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpTarget {
    pub host_port: String,
    pub path: String,
}

impl HttpTarget {
    pub fn parse(url: &str) -> Result<HttpTarget, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            format!("{url:?} is not an http:// URL; write it as http://127.0.0.1:8080/v1/purchases")
        })?;
        let (host_port, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/v1/purchases"),
        };
        if host_port.is_empty() {
            return Err(format!(
                "{url:?} names no host; write it as http://127.0.0.1:8080/v1/purchases"
            ));
        }
        let host_port = if host_port.contains(':') {
            host_port.to_string()
        } else {
            format!("{host_port}:80")
        };
        Ok(HttpTarget {
            host_port,
            path: path.to_string(),
        })
    }
}

/// An embedded node's `POST /v1/purchases`: a 200 answer means the events are in its log.
pub struct NodeHttp {
    target: HttpTarget,
    token: Option<String>,
    timeout: Duration,
    price_decimals: u32,
    body: Vec<u8>,
}

impl NodeHttp {
    pub fn new(
        url: &str,
        token: Option<String>,
        timeout_ms: u64,
        price_decimals: u32,
    ) -> Result<NodeHttp, String> {
        Ok(NodeHttp {
            target: HttpTarget::parse(url)?,
            token,
            timeout: Duration::from_millis(timeout_ms.max(1)),
            price_decimals,
            body: Vec::new(),
        })
    }

    /// Sends the body; the answer's status and body.
    fn post(&self) -> std::io::Result<(u16, Vec<u8>)> {
        let addr = self
            .target
            .host_port
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| std::io::Error::other("the host has no address"))?;
        let mut s = TcpStream::connect_timeout(&addr, self.timeout.min(Duration::from_secs(5)))?;
        s.set_read_timeout(Some(self.timeout))?;
        s.set_write_timeout(Some(self.timeout))?;
        let mut head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\n",
            self.target.path,
            self.target.host_port,
            self.body.len()
        );
        if let Some(t) = &self.token {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes())?;
        s.write_all(&self.body)?;
        let mut answer = Vec::new();
        s.read_to_end(&mut answer)?;
        let status = answer
            .split(|&b| b == b' ')
            .nth(1)
            .and_then(|c| std::str::from_utf8(c).ok())
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| std::io::Error::other("the answer has no HTTP status line"))?;
        let body = memchr::memmem::find(&answer, b"\r\n\r\n")
            .map_or_else(Vec::new, |i| answer[i + 4..].to_vec());
        Ok((status, body))
    }
}

impl Downstream for NodeHttp {
    fn deliver(&mut self, events: &[AgentEvent]) -> Result<(), DeliveryError> {
        self.body.clear();
        for e in events {
            encode_canonical_keyed(
                &e.event,
                e.customer_key.as_ref(),
                self.price_decimals,
                &mut self.body,
            );
        }
        let where_ = format!("http://{}{}", self.target.host_port, self.target.path);
        match self.post() {
            Ok((200, _)) => Ok(()),
            // The node judged every record and refused them all (late, say, after a long outage): they are in its
            // dead letters, and sending them again can never succeed, so the batch is done. Retrying here stalled
            // the agent for good on the first batch of late lines.
            Ok((400, answer)) if every_record_judged(&answer) => {
                tracing::warn!(target: "topsellers", events = events.len(), "{where_} refused every record of a batch (see its dead letters for why); going on with the next");
                Ok(())
            }
            Ok((s @ (401 | 403 | 404 | 413), _)) => Err(DeliveryError::Refused(format!(
                "{where_} answered {s}; check agent.downstream.url and auth_token (the node's server.auth_token), and that agent.batch_max_events fits the node's body limit"
            ))),
            Ok((s, _)) => Err(DeliveryError::Unavailable(format!("{where_} answered {s}"))),
            Err(e) => Err(DeliveryError::Unavailable(format!("{where_}: {e}"))),
        }
    }

    fn describe(&self) -> String {
        format!("node http://{}{}", self.target.host_port, self.target.path)
    }
}

/// A node's 400 that lists rejected records: every record was read and judged (a 400 without them means the
/// body itself was unusable, which retrying with a fixed agent may cure).
fn every_record_judged(answer: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(answer).is_ok_and(|v| {
        v["error"]["rejected"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
    })
}

/// One event as a canonical NDJSON line (`POST /v1/purchases` shape): times in epoch milliseconds, the price as
/// a decimal string.
pub fn encode_canonical(e: &PurchaseEvent, price_decimals: u32, out: &mut Vec<u8>) {
    encode_canonical_keyed(e, None, price_decimals, out);
}

/// [`encode_canonical`] with the customer key, when there is one, as `customer_key`, and a newline.
pub fn encode_canonical_keyed(
    e: &PurchaseEvent,
    customer_key: Option<&CustomerKey>,
    price_decimals: u32,
    out: &mut Vec<u8>,
) {
    topsellers_ingest::encode_canonical(
        e,
        customer_key.map(CustomerKey::as_str),
        price_decimals,
        out,
    );
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            HttpTarget::parse("http://127.0.0.1:9/v1/purchases").unwrap(),
            HttpTarget {
                host_port: "127.0.0.1:9".into(),
                path: "/v1/purchases".into()
            }
        );
        assert!(HttpTarget::parse("https://x").is_err());
    }

    #[test]
    fn a_400_listing_rejected_records_ends_the_batch_other_400s_do_not() {
        assert!(every_record_judged(
            br#"{"error":{"kind":"bad_request","message":"none of the 2 records in the body is valid","rejected":[{"reason":"late"},{"reason":"late"}]}}"#
        ));
        assert!(!every_record_judged(
            br#"{"error":{"kind":"bad_request","message":"the request body holds no purchases"}}"#
        ));
        assert!(!every_record_judged(b"<html>bad gateway</html>"));
    }
}
