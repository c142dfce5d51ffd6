//! The HttpAppender intake: `POST /v1/log4j2`, one JSON layout event per request (a body of several events, one
//! after another or one per line, is taken too).
//!
//! A `200` means every event of the body is either spooled (fsynced) or a dead letter. A full spool answers `503`
//! with `Retry-After` before the body is read; with `ignoreExceptions="false"` the appender then throws, and the
//! application (or a FailoverAppender) keeps the event. A body longer than `max_event_bytes` is an `oversized`
//! dead letter and a `413`.

use super::Shared;
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
fn parse_body(parser: &mut super::Log4j2Parser, body: &[u8]) -> Vec<Parsed> {
    if std::str::from_utf8(body).is_err() {
        return vec![Parsed::Rejected(parser.letter(
            "body",
            RejectReason::InvalidUtf8,
            "the request body is not valid UTF-8; log4j2's JSON layouts write UTF-8 unless the layout's charset says otherwise".into(),
        ))];
    }
    let mut out = Vec::new();
    let mut stream = serde_json::Deserializer::from_slice(body).into_iter::<Value>();
    while let Some(next) = stream.next() {
        let number = out.len() + 1;
        match next {
            Ok(event) => out.push(parser.parse_value(&event, &format!("event {number}"))),
            Err(e) => {
                out.push(Parsed::Rejected(parser.letter(
                    &format!("event {number}"),
                    RejectReason::Malformed,
                    format!(
                        "the request body is not valid JSON from byte {} on ({e}); send one JSON layout event per request (JsonTemplateLayout, or JsonLayout)",
                        stream.byte_offset()
                    ),
                )));
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
            .map(|p| match p {
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
}
