use super::*;
use crate::parse_http_body;

const GOOD: &str =
    r#"{"item_id":"sku-1","quantity":1,"unit_price":"1.00","time":"2024-05-01T10:00:00Z"}"#;

#[test]
fn ndjson_array_and_single_object_bodies() {
    let limits = Limits::default();
    let ndjson = format!("{GOOD}\n\n{{\"item_id\":\"sku-2\"}}\r\nnot json\n{GOOD}");
    let parsed = parse_http_body(ndjson.as_bytes(), &limits, NOW_MS);
    assert_eq!(parsed.len(), 4, "blank lines are not records");
    assert_eq!(events(&parsed).len(), 2);
    let missing = assert_letter(
        &parsed,
        "record 2",
        RejectReason::MissingField,
        Some("quantity"),
    );
    assert_eq!(missing.source, "http");
    // QA: the canonical shape has no mapping to check; the hint sent users to input.fields.
    assert!(
        !missing.message.contains("input.fields"),
        "{}",
        missing.message
    );
    assert_letter(&parsed, "record 3", RejectReason::Malformed, None);

    let array = format!("[{GOOD}, 7, {GOOD}]");
    let parsed = parse_http_body(array.as_bytes(), &limits, NOW_MS);
    assert_eq!(events(&parsed).len(), 2);
    assert_letter(&parsed, "record 2", RejectReason::Malformed, None);

    let pretty = "\u{feff}{\n  \"item_id\": \"sku-1\",\n  \"quantity\": 1,\n  \"unit_price\": 1.5,\n  \"time\": \"2024-05-01T10:00:00Z\"\n}\n";
    let parsed = parse_http_body(pretty.as_bytes(), &limits, NOW_MS);
    assert_eq!(events(&parsed)[0].unit_price_minor, 150);

    let broken = format!("[{GOOD}, {GOOD}");
    let parsed = parse_http_body(broken.as_bytes(), &limits, NOW_MS);
    assert_eq!(letters(&parsed).len(), 1);
    assert_eq!(letters(&parsed)[0].location, "body");

    assert!(parse_http_body(b"  \n", &limits, NOW_MS).is_empty());
}

#[test]
fn invalid_limits_give_a_dead_letter_not_a_panic() {
    let limits = Limits {
        currency: "dollars".into(),
        ..Limits::default()
    };
    let parsed = parse_http_body(GOOD.as_bytes(), &limits, NOW_MS);
    let letter = letters(&parsed)[0];
    assert!(
        letter.message.contains("limits.currency"),
        "{}",
        letter.message
    );
}
