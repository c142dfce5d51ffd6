//! The HttpAppender intake: `POST /v1/log4j2`, one JSON layout event per request (a body of several events, one
//! after another or one per line, is taken too).
//!
//! A `200` means every event of the body is either spooled (fsynced) or a dead letter. A full spool answers `503`
//! with `Retry-After` before the body is read; with `ignoreExceptions="false"` the appender then throws, and the
//! application (or a FailoverAppender) keeps the event. A body longer than `max_event_bytes` is an `oversized`
//! dead letter and a `413`.

use super::{Keyed, Shared};
use crate::http_server;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::Value;
use std::io;
use std::net::TcpListener;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use topsellers_ingest::Parsed;
use topsellers_model::RejectReason;

const SOURCE: &str = "agent:log4j2-http";

pub(super) fn spawn(
    listener: TcpListener,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
) -> io::Result<std::thread::JoinHandle<()>> {
    let router = Router::new()
        .route("/v1/log4j2", post(events))
        .with_state(shared);
    http_server::spawn("agent-log4j2-http", listener, router, stop)
}

async fn events(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Body) -> Response {
    if !http_server::authorized(&headers, shared.config.auth_token.as_deref()) {
        return http_server::answer(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token; add <Property name=\"Authorization\" value=\"Bearer <agent.log4j2.auth_token>\"/> to the HttpAppender",
        );
    }
    let check = shared.clone();
    if tokio::task::spawn_blocking(move || check.is_full())
        .await
        .unwrap_or(true)
    {
        return http_server::spool_full();
    }
    let body = match http_server::read_body(
        &headers,
        body,
        shared.config.max_event_bytes,
        SOURCE,
        "agent.log4j2.max_event_bytes",
    )
    .await
    {
        Ok(body) => body,
        Err((letter, response)) => {
            let written = shared
                .dead_letters
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .write(&[letter]);
            if let Err(e) = written {
                tracing::error!(target: "topsellers", "cannot write a dead letter: {e}");
            }
            return response;
        }
    };
    let outcome = tokio::task::spawn_blocking(move || {
        let mut parser = shared.parser(SOURCE.into())?;
        let parsed = parse_body(&mut parser, &body);
        shared.keep(&parsed)
    })
    .await;
    match outcome {
        Ok(Ok((accepted, letters))) => {
            let rejected: Vec<Value> = letters
                .iter()
                .map(|d| serde_json::json!({"location": d.location, "field": d.field, "reason": d.reason, "message": d.message}))
                .collect();
            (
                StatusCode::OK,
                [("content-type", "application/json")],
                serde_json::json!({"accepted": accepted, "rejected": rejected}).to_string(),
            )
                .into_response()
        }
        Ok(Err(e)) => http_server::answer(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("the agent cannot write its spool ({e}); retry later"),
        ),
        Err(_) => http_server::answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the request failed inside the agent",
        ),
    }
}

/// The body's events, in order (`event 1`, `event 2`, ...). JSON that breaks off ends the body: one dead letter for
/// the rest, since no event boundary after it can be trusted.
fn parse_body(parser: &mut super::Log4j2Parser, body: &[u8]) -> Vec<Keyed> {
    if std::str::from_utf8(body).is_err() {
        return vec![(Parsed::Rejected(parser.letter(
            "body",
            RejectReason::InvalidUtf8,
            "the request body is not valid UTF-8; log4j2's JSON layouts write UTF-8 unless the layout's charset says otherwise".into(),
        )), None)];
    }
    let mut out = Vec::new();
    let mut stream = serde_json::Deserializer::from_slice(body).into_iter::<Value>();
    while let Some(next) = stream.next() {
        let number = out.len() + 1;
        match next {
            Ok(event) => out.push(parser.parse_value_keyed(&event, &format!("event {number}"))),
            Err(e) => {
                out.push((Parsed::Rejected(parser.letter(
                    &format!("event {number}"),
                    RejectReason::Malformed,
                    format!(
                        "the request body is not valid JSON from byte {} on ({e}); send one JSON layout event per request (JsonTemplateLayout, or JsonLayout)",
                        stream.byte_offset()
                    ),
                )), None));
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log4j2::{Log4j2Config, Log4j2Parser};
    use topsellers_ingest::Limits;

    fn reasons(body: &[u8]) -> Vec<String> {
        let mut p = Log4j2Parser::new(&Log4j2Config::default(), &Limits::default(), 0).unwrap();
        parse_body(&mut p, body)
            .into_iter()
            .map(|(p, _)| match p {
                Parsed::Event(_) => "event".to_string(),
                Parsed::Skipped(_) => "skipped".to_string(),
                Parsed::Rejected(d) => format!("{} {}", d.reason.as_str(), d.location),
            })
            .collect()
    }

    #[test]
    fn bodies_of_one_or_several_events_and_broken_ones() {
        let good = r#"{"message":{"item_id":"A","quantity":1,"unit_price":"1.00","time":"2026-01-01T00:00:00Z"}}"#;
        assert_eq!(reasons(good.as_bytes()), ["event"]);
        let pretty = format!("{{\n  \"message\" : {}\n}}\n", &good[11..good.len() - 1]);
        assert_eq!(reasons(pretty.as_bytes()), ["event"]);
        assert_eq!(
            reasons(format!("{good}\n{good}\n").as_bytes()),
            ["event", "event"]
        );
        assert_eq!(
            reasons(format!("{good}\n{{\"message\":").as_bytes()),
            ["event", "malformed event 2"]
        );
        let deep = "{\"a\":".repeat(100_000);
        assert_eq!(reasons(deep.as_bytes()), ["malformed event 1"]);
        assert_eq!(reasons(b"\xff\xfe{}"), ["invalid_utf8 body"]);
        assert!(reasons(b"  \n").is_empty());
    }

    /// The HttpAppender's events (the id in the message's JSON, in key=value text, in the ThreadContext) through the
    /// intake and the agent: the key arrives as a tailed file gives it, the id nowhere; off, nothing changes.
    #[test]
    fn customer_key_is_made_at_intake_and_carried_through_the_spool() {
        use crate::testutil::{assert_keys_delivered, customer_key, purchase, CUSTOMER_ID};
        for configured in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let state = dir.path().join("state");
            let log4j2 = Log4j2Config {
                http_listen: Some("127.0.0.1:8092".into()),
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
            let purchase_kv = |item: &str| {
                format!("item_id={item} quantity=1 unit_price=2.50 time=2026-01-01T00:00:00Z")
            };
            let bodies = [
                format!(r#"{{"message":{}}}"#, purchase("keyed-object")),
                format!(
                    r#"{{"message":"{} customer.id={CUSTOMER_ID} email=jane@example.com"}}"#,
                    purchase_kv("keyed-pairs")
                ),
                format!(
                    r#"{{"message":"{}","contextMap":{{"customer.id":"{CUSTOMER_ID}"}}}}"#,
                    purchase_kv("keyed-context")
                ),
                format!(
                    r#"{{"message":"{}","customer.id":"{CUSTOMER_ID}"}}"#,
                    purchase_kv("keyed-event")
                ),
                format!(r#"{{"message":"{}"}}"#, purchase_kv("anonymous")),
            ];
            for body in &bodies {
                let mut parser = shared.parser(SOURCE.into()).unwrap();
                let (accepted, letters) = shared
                    .keep(&parse_body(&mut parser, body.as_bytes()))
                    .unwrap();
                assert_eq!((accepted, letters.len()), (1, 0), "{body}");
            }
            let events = assert_keys_delivered(&config, &state, dir.path());
            assert_eq!(events.len(), bodies.len());
        }
    }
}
