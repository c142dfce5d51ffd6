//! Personal data in mapped fields (scrubbed or refused), and the time-shape checks of the
//! canonical HTTP path.

use super::*;
use crate::{parse_http_body, parse_http_body_with_redactions, FieldMapping, Redactions};

const CARD: &str = "4111 1111 1111 1111";
const EMAIL: &str = "jane.doe@example.com";
const PHONE: &str = "+44 20 7946 0958";

fn record(item_id: &str, name: &str, extra: &str) -> String {
    format!(
        r#"{{"item_id":{item_id:?},"item_name":{name:?},"quantity":1,"unit_price":"1.00","time":"2024-05-01T10:00:00Z"{extra}}}"#
    )
}

#[test]
fn free_text_fields_are_scrubbed_and_counted() {
    let body = [
        record(
            "sku-1",
            &format!("Mug for {EMAIL}"),
            r#","category":"gifts/call 555-123-4567","country":"from 10.0.0.1""#,
        ),
        record(
            "sku-2",
            "WHITE HANGING HEART T-LIGHT HOLDER",
            r#","category":"home","country":"United Kingdom""#,
        ),
        record("sku-3", &format!("card {CARD}"), ""),
    ]
    .join("\n");
    let (parsed, counts) =
        parse_http_body_with_redactions(body.as_bytes(), &Limits::default(), NOW_MS);
    let events = events(&parsed);
    assert_eq!(events.len(), 3, "{parsed:#?}");
    assert_eq!(events[0].item_name.as_deref(), Some("Mug for [email]"));
    assert_eq!(events[0].category.as_str(), "gifts/call [phone]");
    assert_eq!(events[0].country.as_deref(), Some("from [ip]"));
    assert_eq!(
        events[1].item_name.as_deref(),
        Some("WHITE HANGING HEART T-LIGHT HOLDER")
    );
    assert_eq!(events[2].item_name.as_deref(), Some("card [card]"));
    assert_eq!(
        counts,
        Redactions {
            email: 1,
            card: 1,
            phone: 1,
            ip: 1
        }
    );
    // The plain function still answers the same records.
    assert_eq!(
        parse_http_body(body.as_bytes(), &Limits::default(), NOW_MS),
        parsed
    );
}

#[test]
fn a_cached_category_is_counted_every_time() {
    let line = record("sku-1", "x", r#","category":"a@b.com""#);
    let body = format!("{line}\n{line}");
    let (parsed, counts) =
        parse_http_body_with_redactions(body.as_bytes(), &Limits::default(), NOW_MS);
    assert_eq!(events(&parsed).len(), 2);
    assert_eq!(counts.email, 2);
}

#[test]
fn ids_carrying_personal_data_are_refused_without_repeating_them() {
    let body = [
        record(EMAIL, "x", ""),
        record("sku-1", "x", &format!(r#","event_id":{PHONE:?}"#)),
        record("4242424242424242", "x", ""),
        record("85123A", "x", r#","event_id":"2024-06-01-0001""#),
        record("5012345678900", "x", ""),
    ]
    .join("\n");
    let (parsed, counts) =
        parse_http_body_with_redactions(body.as_bytes(), &Limits::default(), NOW_MS);
    for (location, field, kind, value) in [
        ("record 1", "item_id", "e-mail", EMAIL),
        ("record 2", "event_id", "phone", PHONE),
        ("record 3", "item_id", "card", "4242424242424242"),
    ] {
        let letter = assert_letter(&parsed, location, RejectReason::InvalidField, Some(field));
        assert!(
            letter.message.contains(kind) && letter.message.contains("must not carry"),
            "{}",
            letter.message
        );
        let json = serde_json::to_string(&letter).unwrap();
        assert!(!json.contains(value), "{json}");
    }
    // A product code, a dated order id and an EAN barcode are not personal data.
    assert_eq!(events(&parsed).len(), 2, "{parsed:#?}");
    assert_eq!(
        counts,
        Redactions {
            email: 1,
            card: 1,
            phone: 1,
            ip: 0
        }
    );
}

#[test]
fn dead_letters_quote_no_personal_data() {
    // Rejected for the quantity; the name and the bad value are both scrubbed.
    let body = format!(
        r#"{{"item_id":"sku-1","item_name":"for {EMAIL}","quantity":"555-123-4567","unit_price":"1","time":"2024-05-01T10:00:00Z"}}"#
    );
    let (parsed, counts) =
        parse_http_body_with_redactions(body.as_bytes(), &Limits::default(), NOW_MS);
    let letter = assert_letter(
        &parsed,
        "record 1",
        RejectReason::InvalidField,
        Some("quantity"),
    );
    let json = serde_json::to_string(&letter).unwrap();
    assert!(
        !json.contains(EMAIL) && !json.contains("555-123-4567"),
        "{json}"
    );
    assert!(
        letter.record.contains("[email]") && letter.message.contains("[phone]"),
        "{json}"
    );
    assert_eq!(
        (counts.email, counts.phone),
        (1, 1),
        "the record is counted, not the message"
    );
}

#[test]
fn csv_names_are_scrubbed_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "p.csv",
        format!(
            "item_id,item_name,quantity,unit_price,time\n\
             sku-1,\"call (555) 123-4567\",1,1.00,2024-05-01T10:00:00Z\n\
             sku-2,PACK OF 72 RETROSPOT CAKE CASES,1,1.00,2024-05-01T10:00:00Z\n\
             {EMAIL},x,1,1.00,2024-05-01T10:00:00Z\n"
        )
        .as_bytes(),
    );
    let input = InputConfig {
        fields: FieldMapping {
            item_name: Some("item_name".into()),
            ..FieldMapping::canonical()
        },
        ..InputConfig::default()
    };
    let mut reader = crate::FileReader::open(&path, &input, &Limits::default(), NOW_MS).unwrap();
    let parsed: Vec<Parsed> = reader.by_ref().collect();
    let events = events(&parsed);
    assert_eq!(events[0].item_name.as_deref(), Some("call [phone]"));
    assert_eq!(
        events[1].item_name.as_deref(),
        Some("PACK OF 72 RETROSPOT CAKE CASES")
    );
    let letter = assert_letter(
        &parsed,
        "line 4",
        RejectReason::InvalidField,
        Some("item_id"),
    );
    assert!(!serde_json::to_string(&letter).unwrap().contains(EMAIL));
    assert_eq!(
        reader.redactions(),
        Redactions {
            email: 1,
            card: 0,
            phone: 1,
            ip: 0
        }
    );
}

#[test]
fn epoch_seconds_given_as_milliseconds_say_so() {
    // 2026-11-01T10:00:00Z in seconds; "now" is after it so that ×1000 is in range.
    let now_ms = 1_793_600_000_000;
    let body = br#"{"item_id":"sku-1","quantity":1,"unit_price":"1","time":1793527200}"#;
    let parsed = parse_http_body(body, &Limits::default(), now_ms);
    let letter = letters(&parsed)[0];
    assert_eq!(letter.reason, RejectReason::OutOfRange);
    assert!(
        letter.message.contains("read as epoch milliseconds")
            && letter
                .message
                .contains("looks like epoch seconds (2026-11-01T10:00:00Z)")
            && letter.message.contains("multiply it by 1000"),
        "{}",
        letter.message
    );
    // Microseconds, in the future when read as milliseconds.
    let body = br#"{"item_id":"sku-1","quantity":1,"unit_price":"1","time":1793527200000000}"#;
    let letter = letters(&parse_http_body(body, &Limits::default(), now_ms))[0].clone();
    assert!(
        letter.message.contains("looks like epoch microseconds"),
        "{}",
        letter.message
    );
    // A time string before the limit keeps the old advice.
    let body =
        br#"{"item_id":"sku-1","quantity":1,"unit_price":"1","time":"1990-01-01T00:00:00Z"}"#;
    let letter = letters(&parse_http_body(body, &Limits::default(), now_ms))[0].clone();
    assert!(
        letter.message.contains("lower limits.min_event_time"),
        "{}",
        letter.message
    );
}

#[test]
fn http_times_need_an_offset() {
    for time in [
        "2024-05-10 11:35:00",
        "2024-05-10T11:35:00",
        "2024-05-10T11:35",
    ] {
        let body =
            format!(r#"{{"item_id":"sku-1","quantity":1,"unit_price":"1","time":{time:?}}}"#);
        let parsed = parse_http_body(body.as_bytes(), &Limits::default(), NOW_MS);
        let letter = assert_letter(
            &parsed,
            "record 1",
            RejectReason::InvalidField,
            Some("time"),
        );
        assert!(
            letter.message.contains("has no UTC offset")
                && letter.message.contains("with an offset or Z"),
            "{time}: {}",
            letter.message
        );
    }
    let letter = letters(&parse_http_body(
        br#"{"item_id":"sku-1","quantity":1,"unit_price":"1","time":"2024-05-10 11:35:00"}"#,
        &Limits::default(),
        NOW_MS,
    ))[0]
        .clone();
    assert!(
        letter.message.contains("\"2024-05-10T11:35:00Z\""),
        "{}",
        letter.message
    );
    for time in [
        "2024-05-10T11:35:00Z",
        "2024-05-10T11:35:00+02:00",
        "2024-05-10 11:35:00Z",
    ] {
        let body =
            format!(r#"{{"item_id":"sku-1","quantity":1,"unit_price":"1","time":{time:?}}}"#);
        assert_eq!(
            events(&parse_http_body(
                body.as_bytes(),
                &Limits::default(),
                NOW_MS
            ))
            .len(),
            1,
            "{time}"
        );
    }
}

#[test]
fn files_still_read_times_without_offset_in_their_zone() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "p.jsonl",
        br#"{"item_id":"sku-1","quantity":1,"unit_price":"1","time":"2024-05-10 11:35:00"}"#,
    );
    let input = InputConfig {
        time_zone: "Europe/London".into(),
        ..InputConfig::default()
    };
    let parsed = read_all(&path, &input, &Limits::default());
    assert_eq!(events(&parsed)[0].event_time_ms, 1_715_337_300_000);
}

/// QA: a percent-encoded `@` hid an e-mail address, and IBANs were not found at all (they are
/// marked and counted as `card`, the payment-details kind). An IBAN as the item id refuses it.
#[test]
fn percent_encoded_emails_and_ibans_are_scrubbed() {
    let body = [
        record(
            "sku-1",
            "Gift for someone%40example.com",
            r#","category":"gifts","country":"pay GB82 WEST 1234 5698 7654 32""#,
        ),
        record("sku-2", "refund to DE89370400440532013000 please", ""),
        record("GB82WEST12345698765432", "mug", ""),
    ]
    .join("\n");
    let (parsed, counts) =
        parse_http_body_with_redactions(body.as_bytes(), &Limits::default(), NOW_MS);
    let good = events(&parsed);
    assert_eq!(good.len(), 2, "{parsed:#?}");
    assert_eq!(good[0].item_name.as_deref(), Some("Gift for [email]"));
    assert_eq!(good[0].country.as_deref(), Some("pay [card]"));
    assert_eq!(
        good[1].item_name.as_deref(),
        Some("refund to [card] please")
    );
    let refused = &letters(&parsed)[0];
    assert_eq!(refused.field.as_deref(), Some("item_id"));
    assert!(
        refused.message.contains("bank account number"),
        "{}",
        refused.message
    );
    assert!(!refused.record.contains("GB82WEST"), "{}", refused.record);
    assert_eq!((counts.email, counts.card), (1, 3));
}
