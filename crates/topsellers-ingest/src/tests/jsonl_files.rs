use super::*;
use crate::FieldMapping;
use topsellers_model::MAX_EVENT_ID_LEN;

#[test]
fn dirty_jsonl_keeps_every_good_line_and_names_every_bad_one() {
    let long_id = "e".repeat(MAX_EVENT_ID_LEN + 1);
    let lines: Vec<Vec<u8>> = vec![
        br#"{"event_id":"e1","time":"2024-05-01T10:00:00Z","item_id":" sku-1 ","item_name":"Lamp","category":"Home/Lamps","quantity":2,"unit_price":"19.99","currency":"usd","country":"FR","email":"jane@example.com"}"#.to_vec(), // 1 good
        br#"{"time":"2024-05-01T10:00:00Z","item_id":"sku-2","quantity":1,"#.to_vec(), // 2 malformed
        br#"[1,2,3]"#.to_vec(), // 3 not an object
        b"   ".to_vec(), // 4 blank
        br#"{"time":"2024-05-01T10:00:00Z","item_id":"sku-3","quantity":true,"unit_price":1}"#.to_vec(), // 5
        br#"{"time":"2024-05-01T10:00:00Z","item_id":"sku-4","quantity":1.5,"unit_price":1}"#.to_vec(), // 6
        b"{\"time\":\"2024-05-01T10:00:00Z\",\"item_id\":\"sku-\xff\",\"quantity\":1,\"unit_price\":1}".to_vec(), // 7
        br#"{"item_id":"sku-5","quantity":1,"unit_price":1,"email":"jane@example.com"}"#.to_vec(), // 8
        br#"{"time":"2024-05-01T10:00:00Z","item_id":"sku-6","quantity":1,"unit_price":1,"currency":"EUR"}"#.to_vec(), // 9
        br#"{"time":"2024-05-01T10:00:00Z","original_time":"2024-05-02T10:00:00Z","item_id":"sku-7","quantity":-1,"unit_price":1}"#.to_vec(), // 10
        format!(r#"{{"event_id":"{long_id}","time":"2024-05-01T10:00:00Z","item_id":"sku-8","quantity":1,"unit_price":1}}"#).into_bytes(), // 11
        br#"{"time":1714557600000,"original_time":"2024-04-30T10:00:00+02:00","item_id":"sku-9","quantity":-3,"unit_price":2.55,"category":null}"#.to_vec(), // 12 good refund
        br#"{"time":"2024-05-01T10:00:00Z","item_id":"sku-10","quantity":1,"unit_price":1,"currency":"dollars"}"#.to_vec(), // 13
        br#"{"time":"2024-05-01T10:00:00Z","item_id":"sku-11","quantity":1,"unit_price":{"amount":1}}"#.to_vec(), // 14
    ];
    let mut body = Vec::new();
    for line in lines {
        body.extend_from_slice(&line);
        body.extend_from_slice(b"\r\n");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "dirty.ndjson", &body);
    let parsed = read_all(&path, &InputConfig::default(), &Limits::default());
    assert_eq!(parsed.len(), 14);
    assert_eq!(skips(&parsed), vec![SkipReason::BlankLine]);

    let good = events(&parsed);
    assert_eq!(good.len(), 2, "{good:#?}");
    let e = good[0];
    assert_eq!(e.event_id.as_deref(), Some("e1"));
    assert_eq!(e.item_id, "sku-1");
    assert_eq!(e.category.as_str(), "home/lamps");
    assert_eq!((e.quantity, e.unit_price_minor), (2, 1999));
    assert_eq!(
        (e.currency.as_str(), e.country.as_deref()),
        ("USD", Some("FR"))
    );
    let refund = good[1];
    assert_eq!(refund.event_time_ms, 1_714_557_600_000);
    assert_eq!(refund.original_time_ms, Some(ms("2024-04-30T08:00:00Z")));
    assert_eq!(refund.applied_time_ms(), ms("2024-04-30T08:00:00Z"));
    assert_eq!((refund.quantity, refund.unit_price_minor), (-3, 255));
    assert!(refund.category.is_site_wide());

    for letter in letters(&parsed) {
        assert!(
            !letter.record.contains("jane@"),
            "unmapped key leaked: {letter:#?}"
        );
    }
    use RejectReason::*;
    let malformed = assert_letter(&parsed, "line 2", Malformed, None);
    assert!(malformed
        .message
        .starts_with("the record is not valid JSON"));
    let array = assert_letter(&parsed, "line 3", Malformed, None);
    assert!(array
        .message
        .starts_with("the record is an array, not a JSON object"));
    let wrong = assert_letter(&parsed, "line 5", InvalidField, Some("quantity"));
    assert_eq!(
        wrong.message,
        "quantity is a boolean, not a quantity; write it as a quantity"
    );
    let float = assert_letter(&parsed, "line 6", InvalidField, Some("quantity"));
    assert!(float
        .message
        .starts_with("quantity \"1.5\" is not an integer"));
    assert_letter(&parsed, "line 7", InvalidUtf8, None);
    let missing = assert_letter(&parsed, "line 8", MissingField, Some("time"));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&missing.record).unwrap(),
        serde_json::json!({"item_id": "sku-5", "quantity": 1, "unit_price": 1})
    );
    let eur = assert_letter(&parsed, "line 9", CurrencyMismatch, Some("currency"));
    assert!(eur
        .message
        .contains("\"EUR\" differs from limits.currency \"USD\""));
    assert_letter(&parsed, "line 10", InvalidField, Some("original_time"));
    assert_letter(&parsed, "line 11", InvalidField, Some("event_id"));
    assert_letter(&parsed, "line 13", InvalidField, Some("currency"));
    assert_letter(&parsed, "line 14", InvalidField, Some("unit_price"));
}

#[test]
fn dotted_paths_reach_into_nested_objects() {
    let input = InputConfig {
        fields: FieldMapping {
            item_id: "payload.item.sku".into(),
            item_name: Some("payload.item.title".into()),
            category: Some("payload.item.category".into()),
            quantity: "payload.qty".into(),
            unit_price: "payload.price".into(),
            time: "ts".into(),
            event_id: Some("meta.id".into()),
            currency: None,
            country: None,
            original_time: None,
        },
        time_format: "unix_s".into(),
        category_prefix: Some("shop/".into()),
        ..InputConfig::default()
    };
    let body = br#"{"ts":1714557600,"meta.id":"literal-dotted-key","payload":{"qty":"4","price":"0.5","item":{"sku":"A-1","title":"Cup","category":"Kitchen"}}}
{"ts":1714557600,"payload":{"qty":"4","price":"0.5","item":"A-2"}}
"#;
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "nested.jsonl", body);
    let parsed = read_all(&path, &input, &Limits::default());
    let good = events(&parsed);
    assert_eq!(good.len(), 1);
    assert_eq!(good[0].item_id, "A-1");
    assert_eq!(good[0].event_id.as_deref(), Some("literal-dotted-key"));
    assert_eq!(good[0].category.as_str(), "shop/kitchen");
    assert_eq!(good[0].event_time_ms, 1_714_557_600_000);
    assert_letter(
        &parsed,
        "line 2",
        RejectReason::MissingField,
        Some("payload.item.sku"),
    );
}

#[test]
fn oversized_json_line_is_streamed_past_not_buffered() {
    let mut body = Vec::new();
    body.extend_from_slice(
        br#"{"time":"2024-05-01T10:00:00Z","item_id":"a","quantity":1,"unit_price":1}"#,
    );
    body.push(b'\n');
    body.extend_from_slice(br#"{"item_name":""#);
    body.extend_from_slice(&vec![b'z'; 10_000_000]);
    body.extend_from_slice(b"\"}\n");
    body.extend_from_slice(
        br#"{"time":"2024-05-01T10:00:00Z","item_id":"b","quantity":1,"unit_price":1}"#,
    );
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "big.jsonl", &body);
    let mut reader =
        FileReader::open(&path, &InputConfig::default(), &Limits::default(), NOW_MS).unwrap();
    let mut parsed = Vec::new();
    let mut peak = 0;
    while let Some(p) = reader.next() {
        peak = peak.max(reader.buffered_capacity());
        parsed.push(p);
    }
    assert!(peak < 2 << 20, "held {peak} bytes for a 10 MB line");
    let ids: Vec<_> = events(&parsed).iter().map(|e| e.item_id.clone()).collect();
    assert_eq!(ids, ["a", "b"]);
    assert_letter(&parsed, "line 2", RejectReason::Oversized, None);
}
