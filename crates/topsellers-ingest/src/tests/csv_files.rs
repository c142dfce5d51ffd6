use super::*;
use crate::{FieldMapping, IngestError, ItemIdCase, RefundMarker};
use topsellers_model::MAX_ITEM_ID_LEN;

const HEADER: &str =
    "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n";

/// The Online Retail mapping, minus exclusions and refund marker unless a test adds them.
fn retail() -> InputConfig {
    InputConfig {
        fields: FieldMapping {
            item_id: "StockCode".into(),
            item_name: Some("Description".into()),
            category: Some("Country".into()),
            quantity: "Quantity".into(),
            unit_price: "UnitPrice".into(),
            time: "InvoiceDate".into(),
            event_id: None,
            currency: None,
            country: None,
            original_time: None,
        },
        time_format: "%Y-%m-%d %H:%M:%S".into(),
        time_zone: "Europe/London".into(),
        currency: Some("GBP".into()),
        item_id_case: ItemIdCase::Upper,
        ..InputConfig::default()
    }
}

/// [`retail`] with quoted fields allowed to span lines.
fn retail_multiline() -> InputConfig {
    InputConfig {
        csv_multiline_fields: true,
        ..retail()
    }
}

fn gbp() -> Limits {
    Limits {
        currency: "GBP".into(),
        ..Limits::default()
    }
}

#[test]
fn dirty_csv_keeps_every_good_row_and_names_every_bad_one() {
    let long_id = "X".repeat(MAX_ITEM_ID_LEN + 1);
    let mut csv = HEADER.as_bytes().to_vec();
    let rows: Vec<Vec<u8>> = vec![
        b"536365,85123A,WHITE HANGING HEART ,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom".to_vec(), // 2 good
        b"536366,22633,HAND WARMER,abc,2010-12-01 08:28:00,1.85,17851.0,United Kingdom".to_vec(), // 3
        b"536367,,NO ID,1,2010-12-01 08:34:00,1.00,17852.0,France".to_vec(), // 4
        b"536368,84879,BIRD,0,2010-12-01 08:34:00,1.69,17853.0,France".to_vec(), // 5
        b"536369,84880,TOO MANY,1000000,2010-12-01 08:34:00,1.69,17854.0,France".to_vec(), // 6
        b"536370,84881,NEG PRICE,1,2010-12-01 08:34:00,-1.69,17855.0,France".to_vec(), // 7
        b"536371,84882,HUGE PRICE,1,2010-12-01 08:34:00,99999999.99,17856.0,France".to_vec(), // 8
        b"536372,84883,PRECISE,1,2010-12-01 08:34:00,1.699,17857.0,France".to_vec(), // 9
        b"536373,84884,OLD,1,1970-01-01 00:00:00,1.00,17858.0,France".to_vec(), // 10
        b"536374,84885,FUTURE,1,2030-01-01 00:00:00,1.00,17859.0,France".to_vec(), // 11
        b"536375,84886,BAD TIME,1,01/12/2010 08:34,1.00,17860.0,France".to_vec(), // 12
        b"536376,84887,\"QUOTED, WITH \"\"QUOTES\"\"\nAND A NEWLINE\",2,2010-12-01 09:00:00,1.00,17861.0,Germany".to_vec(), // 13-14 good
        b"536377,84888,SHORT ROW,1,2010-12-01 09:00:00".to_vec(), // 15
        b"536378,84889,\xff\xfe BAD UTF8,1,2010-12-01 09:00:00,1.00,17862.0,France".to_vec(), // 16
        format!("536379,{long_id},LONG ID,1,2010-12-01 09:00:00,1.00,17863.0,France").into_bytes(), // 17
        b"536380,84890,DEEP,1,2010-12-01 09:00:00,1.00,17864.0,a/b/c/d/e/f/g/h/i".to_vec(), // 18
        b"536381,84891,TOO WIDE,1,2010-12-01 09:00:00,1.00,17865.0,France,extra".to_vec(), // 19
        b"536382,84892,NO PRICE,1,2010-12-01 09:00:00,,17866.0,France".to_vec(), // 20
        b"536383,84893,WORDS,1,2010-12-01 09:00:00,two pounds,17867.0,France".to_vec(), // 21
        b"536384,84894,NO TIME,1,,1.00,17868.0,France".to_vec(), // 22
        b"536385,84891,  ,3,2010-12-01 10:00:00,0.85,17869.0,EIRE".to_vec(), // 23 good, no name
    ];
    for row in rows {
        csv.extend_from_slice(&row);
        csv.push(b'\n');
    }
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "dirty.csv", &csv);
    let parsed = read_all(&path, &retail_multiline(), &gbp());
    assert_eq!(parsed.len(), 21, "one result per record");

    let good = events(&parsed);
    assert_eq!(good.len(), 3, "{good:#?}");
    assert_eq!(good[0].item_id, "85123A");
    assert_eq!(good[0].item_name.as_deref(), Some("WHITE HANGING HEART"));
    assert_eq!(good[0].category.as_str(), "united kingdom");
    assert_eq!((good[0].quantity, good[0].unit_price_minor), (6, 255));
    assert_eq!(good[0].currency, "GBP");
    assert_eq!(good[0].event_time_ms, ms("2010-12-01T08:26:00Z"));
    assert_eq!(
        good[1].item_name.as_deref(),
        Some("QUOTED, WITH \"QUOTES\"\nAND A NEWLINE")
    );
    assert_eq!(good[2].item_name, None, "blank names become None");
    assert_eq!(good[2].category.as_str(), "eire");

    let source = format!("file:{}", path.display());
    for letter in letters(&parsed) {
        assert_eq!(letter.source, source);
        for customer in 17850..17870 {
            assert!(
                !letter.record.contains(&customer.to_string()),
                "CustomerID leaked: {letter:#?}"
            );
        }
    }

    use RejectReason::*;
    let q = assert_letter(&parsed, "line 3", InvalidField, Some("Quantity"));
    assert_eq!(
        q.message,
        "Quantity \"abc\" is not an integer; write a whole number of units, negative for a refund"
    );
    let record: serde_json::Value = serde_json::from_str(&q.record).unwrap();
    assert_eq!(
        record,
        serde_json::json!({"StockCode": "22633", "Description": "HAND WARMER", "Quantity": "abc",
            "InvoiceDate": "2010-12-01 08:28:00", "UnitPrice": "1.85", "Country": "United Kingdom"})
    );
    assert_letter(&parsed, "line 4", MissingField, Some("StockCode"));
    let zero = assert_letter(&parsed, "line 5", InvalidField, Some("Quantity"));
    assert!(zero.message.contains("counts nothing"), "{}", zero.message);
    assert_letter(&parsed, "line 6", OutOfRange, Some("Quantity"));
    let neg = assert_letter(&parsed, "line 7", OutOfRange, Some("UnitPrice"));
    assert!(neg.message.contains("negative"), "{}", neg.message);
    assert_letter(&parsed, "line 8", OutOfRange, Some("UnitPrice"));
    let precise = assert_letter(&parsed, "line 9", InvalidField, Some("UnitPrice"));
    assert!(precise.message.contains("more than 2 decimal places"));
    let old = assert_letter(&parsed, "line 10", OutOfRange, Some("InvoiceDate"));
    assert!(
        old.message.contains("limits.min_event_time"),
        "{}",
        old.message
    );
    let future = assert_letter(&parsed, "line 11", OutOfRange, Some("InvoiceDate"));
    assert!(
        future.message.contains("in the future"),
        "{}",
        future.message
    );
    let bad_time = assert_letter(&parsed, "line 12", InvalidField, Some("InvoiceDate"));
    assert_eq!(
        bad_time.message,
        "InvoiceDate \"01/12/2010 08:34\" does not match input.time_format \"%Y-%m-%d %H:%M:%S\"; write it like 2024-01-31 08:26:00, or change input.time_format"
    );
    let short = assert_letter(&parsed, "line 15", Malformed, None);
    assert_eq!(
        short.record, "",
        "columns of a row of the wrong width cannot be trusted"
    );
    assert!(short
        .message
        .starts_with("the record has 5 fields but the header has 8"));
    let utf8 = assert_letter(&parsed, "line 16", InvalidUtf8, Some("Description"));
    assert!(utf8.record.contains("84889") && !utf8.record.contains("Description"));
    let long = assert_letter(&parsed, "line 17", InvalidField, Some("StockCode"));
    assert!(long.message.contains("at most 128"), "{}", long.message);
    let record: serde_json::Value = serde_json::from_str(&long.record).unwrap();
    assert_eq!(record["StockCode"].as_str().unwrap().chars().count(), 129);
    let deep = assert_letter(&parsed, "line 18", InvalidField, Some("Country"));
    assert!(deep.message.contains("levels"), "{}", deep.message);
    assert_letter(&parsed, "line 19", Malformed, None);
    assert_letter(&parsed, "line 20", MissingField, Some("UnitPrice"));
    assert_letter(&parsed, "line 21", InvalidField, Some("UnitPrice"));
    assert_letter(&parsed, "line 22", MissingField, Some("InvoiceDate"));
}

#[test]
fn bom_crlf_and_blank_lines_keep_line_numbers_right() {
    let csv = "\u{feff}InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\r\n\
               1,A1,One,1,2011-01-01 10:00:00,1.00,,France\r\n\
               \r\n\
               2,A2,\"Two\r\nlines\",x,2011-01-01 10:00:00,1.00,,France\r\n\
               3,A3,Three,3,2011-01-01 10:00:00,1.00,,France\r\n\
               4,A4,Four,y,2011-01-01 10:00:00,1.00,,France";
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "crlf.csv", csv.as_bytes());
    let parsed = read_all(&path, &retail_multiline(), &gbp());
    let good = events(&parsed);
    assert_eq!(good.len(), 2);
    assert_eq!(good[1].item_name.as_deref(), Some("Three"));
    assert_eq!(
        good[0].category.as_str(),
        "france",
        "no \\r left in the last field"
    );
    assert_letter(
        &parsed,
        "line 4",
        RejectReason::InvalidField,
        Some("Quantity"),
    );
    assert_letter(
        &parsed,
        "line 7",
        RejectReason::InvalidField,
        Some("Quantity"),
    );
}

#[test]
fn exclusions_match_after_normalisation_and_wildcards() {
    let mut input = retail();
    input.exclude_items = ["POST", "gift_0001_*", "DCGS*", "BANK CHARGES"]
        .map(String::from)
        .to_vec();
    let csv = format!(
        "{HEADER}1,post,Postage,1,2011-01-01 10:00:00,18.00,,France\n\
         2,gift_0001_20,Voucher,1,2011-01-01 10:00:00,16.00,,France\n\
         3,DCGSSBOY,Boy,1,2011-01-01 10:00:00,3.00,,France\n\
         4,BANK CHARGES,Charges,1,2011-01-01 10:00:00,15.00,,France\n\
         5,15056bl,Umbrella,1,2011-01-01 10:00:00,5.95,,France\n\
         6,POSTCARD,Card,1,2011-01-01 10:00:00,0.42,,France\n\
         7,gift_0002_20,Other voucher,bad,2011-01-01 10:00:00,0.42,,France\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "x.csv", csv.as_bytes());
    let parsed = read_all(&path, &input, &gbp());
    assert_eq!(skips(&parsed), vec![SkipReason::Excluded; 4]);
    let ids: Vec<_> = events(&parsed).iter().map(|e| e.item_id.clone()).collect();
    assert_eq!(ids, ["15056BL", "POSTCARD"]);
    assert_letter(
        &parsed,
        "line 8",
        RejectReason::InvalidField,
        Some("Quantity"),
    );
}

#[test]
fn refund_marker_separates_refunds_from_stock_adjustments() {
    let mut input = retail();
    input.refund_marker = Some(RefundMarker {
        field: "InvoiceNo".into(),
        prefix: "C".into(),
    });
    let csv = format!(
        "{HEADER}C536379,D1,Refund,-2,2011-01-01 10:00:00,1.00,14527.0,France\n\
         536380,D2,damages,-5,2011-01-01 10:00:00,0,,France\n\
         C536381,D3,Odd,3,2011-01-01 10:00:00,1.00,14527.0,France\n\
         536382,D4,Sale,3,2011-01-01 10:00:00,1.00,14527.0,France\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "r.csv", csv.as_bytes());
    let parsed = read_all(&path, &input, &gbp());
    let good = events(&parsed);
    assert_eq!(good.len(), 2);
    assert!(good[0].is_refund() && good[0].quantity == -2);
    assert_eq!(good[1].quantity, 3);
    assert_eq!(skips(&parsed), vec![SkipReason::NotASale]);
    let odd = assert_letter(
        &parsed,
        "line 4",
        RejectReason::InvalidField,
        Some("InvoiceNo"),
    );
    assert!(
        odd.message.contains("\"C536381\" marks a refund"),
        "{}",
        odd.message
    );
    assert!(
        odd.record.contains("C536381"),
        "the marker is mapped, so it is kept"
    );

    // Without a marker every negative quantity is a refund.
    let parsed = read_all(&path, &retail(), &gbp());
    assert_eq!(events(&parsed).iter().filter(|e| e.is_refund()).count(), 2);
}

#[test]
fn london_times_in_winter_and_summer() {
    let csv = format!(
        "{HEADER}1,A,a,1,2011-01-18 10:01:00,1.00,,UK\n\
         2,A,a,1,2011-07-18 10:01:00,1.00,,UK\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "tz.csv", csv.as_bytes());
    let parsed = read_all(&path, &retail(), &gbp());
    let times: Vec<_> = events(&parsed).iter().map(|e| e.event_time_ms).collect();
    assert_eq!(
        times,
        [ms("2011-01-18T10:01:00Z"), ms("2011-07-18T09:01:00Z")]
    );
}

#[test]
fn oversized_line_is_streamed_past_not_buffered() {
    let mut csv = HEADER.as_bytes().to_vec();
    csv.extend_from_slice(b"1,A,a,1,2011-01-01 10:00:00,1.00,,France\n");
    // A 10 MB description, quoted with line breaks inside, then an unquoted 10 MB line.
    csv.extend_from_slice(b"2,B,\"");
    for _ in 0..100_000 {
        csv.extend_from_slice(&[b'x'; 99]);
        csv.push(b'\n');
    }
    csv.extend_from_slice(b"\",1,2011-01-01 10:00:00,1.00,,France\n");
    csv.extend_from_slice(&vec![b'y'; 10_000_000]);
    csv.push(b'\n');
    csv.extend_from_slice(b"3,C,c,2,2011-01-01 10:00:00,1.00,,France\n");
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "big.csv", &csv);
    let mut reader = FileReader::open(&path, &retail_multiline(), &gbp(), NOW_MS).unwrap();
    let mut parsed = Vec::new();
    let mut peak = 0;
    while let Some(p) = reader.next() {
        peak = peak.max(reader.buffered_capacity());
        parsed.push(p);
    }
    assert!(
        peak < 2 << 20,
        "held {peak} bytes for a 10 MB record with a 1 MiB limit"
    );
    assert_eq!(reader.bytes_read(), csv.len() as u64);
    assert_eq!(reader.total_bytes(), Some(csv.len() as u64));
    let ids: Vec<_> = events(&parsed).iter().map(|e| e.item_id.clone()).collect();
    assert_eq!(ids, ["A", "C"]);
    assert_letter(&parsed, "line 3", RejectReason::Oversized, None);
    assert_letter(&parsed, "line 100004", RejectReason::Oversized, None);
    assert_eq!(parsed.len(), 4);
}

#[test]
fn headerless_csv_maps_column_numbers() {
    let input = InputConfig {
        csv_has_header: false,
        csv_delimiter: ';',
        fields: FieldMapping {
            item_id: "2".into(),
            item_name: None,
            category: Some("5".into()),
            quantity: "3".into(),
            unit_price: "4".into(),
            time: "1".into(),
            event_id: None,
            currency: None,
            country: None,
            original_time: None,
        },
        ..InputConfig::default()
    };
    let csv = "2024-01-01T00:00:00Z;sku-1;2;1.50;Toys\n2024-01-01T00:00:00Z;sku-2;1\n";
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "plain.csv", csv.as_bytes());
    let parsed = read_all(&path, &input, &Limits::default());
    let good = events(&parsed);
    assert_eq!(good.len(), 1);
    assert_eq!(
        (
            good[0].item_id.as_str(),
            good[0].category.as_str(),
            good[0].unit_price_minor
        ),
        ("sku-1", "toys", 150)
    );
    let short = assert_letter(&parsed, "line 2", RejectReason::Malformed, None);
    assert!(
        short.message.contains("reads column 5"),
        "{}",
        short.message
    );
}

#[test]
fn open_errors_name_the_file_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.csv");
    let err = FileReader::open(&missing, &retail(), &gbp(), NOW_MS)
        .err()
        .unwrap();
    assert!(matches!(err, IngestError::NotFound { .. }));
    assert!(err.to_string().contains("nope.csv"));

    let path = write(&dir, "cols.csv", b"InvoiceNo,Code,Qty\n1,2,3\n");
    let err = FileReader::open(&path, &retail(), &gbp(), NOW_MS)
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        format!(
            "the CSV header of {} lacks the mapped column \"InvoiceDate\" (input.fields.time), \"StockCode\" (input.fields.item_id), \"Description\" (input.fields.item_name), \"Country\" (input.fields.category), \"Quantity\" (input.fields.quantity), \"UnitPrice\" (input.fields.unit_price); the header has InvoiceNo, Code, Qty; fix the mapping or the file",
            path.display()
        )
    );

    let path = write(&dir, "data.txt", b"");
    let err = FileReader::open(&path, &retail(), &gbp(), NOW_MS)
        .err()
        .unwrap();
    assert!(matches!(err, IngestError::UnknownFormat { .. }), "{err}");

    let path = write(&dir, "empty.csv", b"");
    let err = FileReader::open(&path, &retail(), &gbp(), NOW_MS)
        .err()
        .unwrap();
    assert!(matches!(err, IngestError::MissingHeader { .. }), "{err}");

    let mut bad = retail();
    bad.time_zone = "Atlantis/Capital".into();
    let err = FileReader::open(&path, &bad, &gbp(), NOW_MS).err().unwrap();
    assert!(err.to_string().contains("input.time_zone"), "{err}");
}

/// Regression: an unclosed quote swallowed every good record after it into one malformed record.
#[test]
fn unclosed_quote_costs_only_its_own_line() {
    let mut csv = String::from(HEADER);
    csv.push_str("1,A,a,1,2011-01-01 10:00:00,1.00,,France\n");
    csv.push_str("2,B,\"unterminated,1,2011-01-01 10:00:00,1.00,,France\n");
    for (i, id) in ["C", "D", "E", "F", "G"].iter().enumerate() {
        csv.push_str(&format!(
            "{},{id},{id},1,2011-01-01 10:00:00,1.00,,France\n",
            i + 3
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "unclosed.csv", csv.as_bytes());
    let parsed = read_all(&path, &retail_multiline(), &gbp());
    let ids: Vec<_> = events(&parsed).iter().map(|e| e.item_id.clone()).collect();
    assert_eq!(ids, ["A", "C", "D", "E", "F", "G"]);
    assert_eq!(parsed.len(), 7);
    let letter = assert_letter(&parsed, "line 3", RejectReason::Malformed, None);
    assert!(
        letter.message.contains("line 3 has an unclosed quote")
            && letter.message.contains("resumed at line 4")
            && letter.message.contains("close the quote"),
        "{}",
        letter.message
    );
    assert!(letter.record.is_empty());
}

/// The same when a later quoted field closes the quote, leaving a record of the wrong width.
#[test]
fn unclosed_quote_closed_by_a_later_quote() {
    let csv = format!(
        "{HEADER}1,A,\"unterminated,1,2011-01-01 10:00:00,1.00,,France\n\
         2,B,\"quoted, fine\",1,2011-01-01 10:00:00,1.00,,France\n\
         3,C,c,1,2011-01-01 10:00:00,1.00,,France\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "unclosed.csv", csv.as_bytes());
    for input in [retail(), retail_multiline()] {
        let parsed = read_all(&path, &input, &gbp());
        let ids: Vec<_> = events(&parsed).iter().map(|e| e.item_id.clone()).collect();
        assert_eq!(ids, ["B", "C"], "{parsed:#?}");
        assert_letter(&parsed, "line 2", RejectReason::Malformed, None);
    }
}

/// When the rest of the file is longer than the limit, the unclosed quote is still blamed on its
/// own line (not reported as one oversized record), and the rows after it come out.
#[test]
fn unclosed_quote_before_more_than_max_record_bytes() {
    let mut csv = String::from(HEADER);
    csv.push_str("1,A,a,1,2011-01-01 10:00:00,1.00,,France\n");
    csv.push_str("2,B,\"unterminated,1,2011-01-01 10:00:00,1.00,,France\n");
    let rows = 2_000;
    for i in 0..rows {
        csv.push_str(&format!(
            "{i},ID{i},name {i},1,2011-01-01 10:00:00,1.00,,France\n"
        ));
    }
    let input = InputConfig {
        max_record_bytes: 4096,
        ..retail_multiline()
    };
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "unclosed.csv", csv.as_bytes());
    let mut reader = FileReader::open(&path, &input, &gbp(), NOW_MS).unwrap();
    let mut parsed = Vec::new();
    let mut peak = 0;
    while let Some(p) = reader.next() {
        peak = peak.max(reader.buffered_capacity());
        parsed.push(p);
    }
    assert!(reader.take_error().is_none());
    assert_eq!(reader.bytes_read(), csv.len() as u64);
    assert!(peak < 1 << 20, "held {peak} bytes");
    assert_eq!(events(&parsed).len(), rows + 1);
    let letter = assert_letter(&parsed, "line 3", RejectReason::Malformed, None);
    assert!(
        letter
            .message
            .contains("past input.max_record_bytes = 4096"),
        "{}",
        letter.message
    );
    assert_eq!(letters(&parsed).len(), 1);
}

/// A legitimate quoted field over several lines still reads, and a too-wide record spanning lines
/// costs only its first line.
#[test]
fn multi_line_fields_of_the_right_width_still_read() {
    let csv = format!(
        "{HEADER}1,A,\"two\nlines, with a comma\",1,2011-01-01 10:00:00,1.00,,France\n\
         2,B,\"wide\nrow\",1,2011-01-01 10:00:00,1.00,,France,extra\n\
         3,C,c,1,2011-01-01 10:00:00,1.00,,France\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "multi.csv", csv.as_bytes());
    let parsed = read_all(&path, &retail_multiline(), &gbp());
    let events = events(&parsed);
    assert_eq!(
        events[0].item_name.as_deref(),
        Some("two\nlines, with a comma")
    );
    // Line 5 ("row\",1,...,extra") is read on its own after line 4 is dropped: the wrong width too.
    assert_letter(&parsed, "line 4", RejectReason::Malformed, None);
    assert_letter(&parsed, "line 5", RejectReason::Malformed, None);
    let ids: Vec<_> = events.iter().map(|e| e.item_id.clone()).collect();
    assert_eq!(ids, ["A", "C"]);

    // Far too wide (reading stops inside the record) and spanning lines.
    let csv = format!(
        "{HEADER}1,A,\"x\ny\"{}\n2,B,b,1,2011-01-01 10:00:00,1.00,,France\n",
        ",".repeat(100)
    );
    let path = write(&dir, "wide.csv", csv.as_bytes());
    let parsed = read_all(&path, &retail_multiline(), &gbp());
    let letter = assert_letter(&parsed, "line 2", RejectReason::Malformed, None);
    assert!(
        letter.message.contains("unclosed quote"),
        "{}",
        letter.message
    );
    assert_letter(&parsed, "line 3", RejectReason::Malformed, None);
    let ids: Vec<_> = super::events(&parsed)
        .iter()
        .map(|e| e.item_id.clone())
        .collect();
    assert_eq!(ids, ["B"]);
}

const CANONICAL_HEADER: &str =
    "event_id,time,original_time,item_id,item_name,category,quantity,unit_price,currency\n";

fn good_line(i: usize) -> String {
    format!("g{i},2024-01-01T10:00:00Z,,G{i},Good {i},home/mugs,1,1.00,USD\n")
}

/// QA repro A: an unclosed quote whose runaway record had the right width swallowed lines 2-9 into
/// one "item_name too long" dead letter. Single-line records (the default) cost only line 2, and a
/// bare quote inside an unquoted field is a literal character.
#[test]
fn unclosed_quote_of_the_right_width_costs_only_its_line() {
    let mut csv = String::from(CANONICAL_HEADER);
    csv.push_str("e1,2026-01-01T10:00:00Z,,I1,\"unclosed,q/a,1,1.00,USD\n");
    for i in 0..6 {
        csv.push_str(&good_line(i));
    }
    csv.push_str("e9,2024-01-01T10:00:00Z,,V1,Vinyl 12\" record,music,2,9.99,USD\n");
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "a.csv", csv.as_bytes());
    let parsed = read_all(&path, &InputConfig::default(), &Limits::default());
    assert_eq!(parsed.len(), 8, "{parsed:#?}");
    let good = events(&parsed);
    let ids: Vec<_> = good.iter().map(|e| e.item_id.as_str()).collect();
    assert_eq!(ids, ["G0", "G1", "G2", "G3", "G4", "G5", "V1"]);
    assert_eq!(good[6].item_name.as_deref(), Some("Vinyl 12\" record"));
    assert_eq!((good[6].quantity, good[6].unit_price_minor), (2, 999));
    let letter = assert_letter(&parsed, "line 2", RejectReason::Malformed, None);
    assert!(
        letter.message.contains("unclosed quote at line 2")
            && letter.message.contains("close the quote")
            && letter.message.contains("input.csv_multiline_fields = true"),
        "{}",
        letter.message
    );
    assert_eq!(letters(&parsed).len(), 1);
}

/// QA repro B: an unclosed quote followed by a line with doubled quotes merged three lines into one
/// accepted record with wrong values.
#[test]
fn unclosed_quote_never_merges_lines_into_an_accepted_record() {
    let mut csv = String::from(CANONICAL_HEADER);
    csv.push_str(&good_line(1));
    csv.push_str("\"unclosed quote mug,2024-01-01T10:00:00Z,,M1,Mug,home/mugs,1,1.00,USD\n");
    csv.push_str("e4,2024-01-01T10:00:00Z,,Q1,\"He said \"\"hi\"\"\",books,3,2.00,USD\n");
    csv.push_str(&good_line(5));
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "b.csv", csv.as_bytes());
    let parsed = read_all(&path, &InputConfig::default(), &Limits::default());
    let good = events(&parsed);
    let ids: Vec<_> = good.iter().map(|e| e.item_id.as_str()).collect();
    assert_eq!(ids, ["G1", "Q1", "G5"], "{parsed:#?}");
    assert_eq!(good[1].item_name.as_deref(), Some("He said \"hi\""));
    assert_eq!((good[1].quantity, good[1].unit_price_minor), (3, 200));
    assert_eq!(good[1].event_id.as_deref(), Some("e4"));
    assert_letter(&parsed, "line 3", RejectReason::Malformed, None);
    assert_eq!(parsed.len(), 4);
}

/// The last line without a line break is checked too: the parser alone would close its quote at
/// the end of the input and accept it. CRLF lines and blank lines keep their numbers.
#[test]
fn unclosed_quote_on_the_last_line_and_crlf() {
    let dir = tempfile::tempdir().unwrap();
    let csv = format!(
        "{}{}\"open,2024-01-01T10:00:00Z,,X,x,c,1,1.00,USD",
        CANONICAL_HEADER,
        good_line(1)
    );
    let path = write(&dir, "last.csv", csv.as_bytes());
    let parsed = read_all(&path, &InputConfig::default(), &Limits::default());
    assert_eq!(events(&parsed).len(), 1);
    assert_letter(&parsed, "line 3", RejectReason::Malformed, None);
    assert_eq!(parsed.len(), 2);

    // Closed on the last line, no line break: accepted.
    let csv = format!("{CANONICAL_HEADER}e1,2024-01-01T10:00:00Z,,X,\"x, y\",c,1,1.00,\"USD\"");
    let path = write(&dir, "closed.csv", csv.as_bytes());
    let parsed = read_all(&path, &InputConfig::default(), &Limits::default());
    assert_eq!(events(&parsed)[0].item_name.as_deref(), Some("x, y"));
    assert_eq!(parsed.len(), 1);

    let csv = CANONICAL_HEADER.replace('\n', "\r\n")
        + "e1,2024-01-01T10:00:00Z,,A,\"a\",c,1,1.00,USD\r\n\r\n"
        + "e2,2024-01-01T10:00:00Z,,B,\"b,c,1,1.00,USD\r\n"
        + "e3,2024-01-01T10:00:00Z,,C,c,c,1,1.00,USD\r\n";
    let path = write(&dir, "crlf.csv", csv.as_bytes());
    let parsed = read_all(&path, &InputConfig::default(), &Limits::default());
    let ids: Vec<_> = events(&parsed).iter().map(|e| e.item_id.clone()).collect();
    assert_eq!(ids, ["A", "C"]);
    assert_letter(&parsed, "line 4", RejectReason::Malformed, None);

    // Lines ended by a lone CR (old Mac files) are single lines too.
    let csv = CANONICAL_HEADER.replace('\n', "\r")
        + "e1,2024-01-01T10:00:00Z,,A,\"a,c,1,1.00,USD\r"
        + "e2,2024-01-01T10:00:00Z,,B,\"b\",c,1,1.00,USD\r"
        + "e3,2024-01-01T10:00:00Z,,C,c,c,1,1.00,USD\r";
    let path = write(&dir, "cr.csv", csv.as_bytes());
    let parsed = read_all(&path, &InputConfig::default(), &Limits::default());
    let ids: Vec<_> = events(&parsed).iter().map(|e| e.item_id.clone()).collect();
    assert_eq!(ids, ["B", "C"], "{parsed:#?}");
    assert_eq!(letters(&parsed).len(), 1);

    // A line break inside a quoted field is an open quote on its first line; the rest of the
    // field is read as a line of its own (the wrong width).
    let csv = format!(
        "{CANONICAL_HEADER}e1,2024-01-01T10:00:00Z,,A,\"two\nlines\",c,1,1.00,USD\n{}",
        good_line(2)
    );
    let path = write(&dir, "multi.csv", csv.as_bytes());
    let parsed = read_all(&path, &InputConfig::default(), &Limits::default());
    assert_eq!(events(&parsed)[0].item_id, "G2");
    assert_letter(&parsed, "line 2", RejectReason::Malformed, None);
    assert_letter(&parsed, "line 3", RejectReason::Malformed, None);
    let multiline = InputConfig {
        csv_multiline_fields: true,
        ..InputConfig::default()
    };
    let parsed = read_all(&path, &multiline, &Limits::default());
    let ids: Vec<_> = events(&parsed).iter().map(|e| e.item_id.clone()).collect();
    assert_eq!(ids, ["A", "G2"]);
    assert_eq!(events(&parsed)[0].item_name.as_deref(), Some("two\nlines"));
}

/// With single-line records, a 10 MB line (unquoted, or with a quote left open) is still streamed
/// past, not held, and costs only itself.
#[test]
fn oversized_lines_are_streamed_past_with_single_line_records() {
    let mut csv = HEADER.as_bytes().to_vec();
    csv.extend_from_slice(b"1,A,a,1,2011-01-01 10:00:00,1.00,,France\n");
    csv.extend_from_slice(b"2,B,\"");
    csv.extend_from_slice(&vec![b'x'; 10_000_000]);
    csv.extend_from_slice(b",1,2011-01-01 10:00:00,1.00,,France\n");
    csv.extend_from_slice(&vec![b'y'; 10_000_000]);
    csv.push(b'\n');
    csv.extend_from_slice(b"3,C,c,2,2011-01-01 10:00:00,1.00,,France\n");
    csv.extend_from_slice(b"4,D,\"");
    csv.extend_from_slice(&vec![b'z'; 3_000_000]);
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "big.csv", &csv);
    let mut reader = FileReader::open(&path, &retail(), &gbp(), NOW_MS).unwrap();
    let mut parsed = Vec::new();
    let mut peak = 0;
    while let Some(p) = reader.next() {
        peak = peak.max(reader.buffered_capacity());
        parsed.push(p);
    }
    assert!(reader.take_error().is_none());
    assert!(peak < 2 << 20, "held {peak} bytes");
    assert_eq!(reader.bytes_read(), csv.len() as u64);
    let ids: Vec<_> = events(&parsed).iter().map(|e| e.item_id.clone()).collect();
    assert_eq!(ids, ["A", "C"]);
    let open = assert_letter(&parsed, "line 3", RejectReason::Malformed, None);
    assert!(open.message.contains("unclosed quote at line 3"));
    assert_letter(&parsed, "line 4", RejectReason::Oversized, None);
    assert_letter(&parsed, "line 6", RejectReason::Malformed, None);
    assert_eq!(parsed.len(), 5);
}

#[test]
fn header_with_an_open_quote_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "h.csv",
        format!("\"{CANONICAL_HEADER}{}", good_line(1)).as_bytes(),
    );
    match FileReader::open(&path, &InputConfig::default(), &Limits::default(), NOW_MS) {
        Err(e @ IngestError::HeaderUnclosedQuote { .. }) => {
            assert!(e.to_string().contains("csv_multiline_fields"), "{e}")
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("opened"),
    }
}

/// QA: an over-long item name (optional, only shown) cost the whole sale. It is cut at a character
/// boundary, with "…", within the limit; over-long ids still refuse the record.
#[test]
fn long_item_names_are_cut_and_the_sale_kept() {
    use topsellers_model::{MAX_EVENT_ID_LEN, MAX_ITEM_NAME_LEN};
    let long_ascii = "n".repeat(361);
    // Multi-byte characters straddling the cut.
    let long_wide = "é€".repeat(100);
    let exact = "x".repeat(MAX_ITEM_NAME_LEN);
    let long_event = "e".repeat(MAX_EVENT_ID_LEN + 1);
    let long_item = "I".repeat(MAX_ITEM_ID_LEN + 1);
    let csv = format!(
        "{CANONICAL_HEADER}\
         e1,2024-01-01T10:00:00Z,,A,{long_ascii},c,1,1.00,USD\n\
         e2,2024-01-01T10:00:00Z,,B,{long_wide},c,1,1.00,USD\n\
         e3,2024-01-01T10:00:00Z,,C,{exact},c,1,1.00,USD\n\
         {long_event},2024-01-01T10:00:00Z,,D,d,c,1,1.00,USD\n\
         e5,2024-01-01T10:00:00Z,,{long_item},e,c,1,1.00,USD\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "names.csv", csv.as_bytes());
    let parsed = read_all(&path, &InputConfig::default(), &Limits::default());
    let good = events(&parsed);
    let ids: Vec<_> = good.iter().map(|e| e.item_id.as_str()).collect();
    assert_eq!(ids, ["A", "B", "C"], "{parsed:#?}");
    for event in &good {
        let name = event.item_name.as_deref().unwrap();
        assert!(name.len() <= MAX_ITEM_NAME_LEN, "{} bytes", name.len());
    }
    let a = good[0].item_name.as_deref().unwrap();
    assert!(a.ends_with('…') && a.starts_with("nnn"), "{a}");
    assert_eq!(a.len(), MAX_ITEM_NAME_LEN);
    let b = good[1].item_name.as_deref().unwrap();
    assert!(b.ends_with('…') && long_wide.starts_with(b.trim_end_matches('…')));
    assert_eq!(good[2].item_name.as_deref(), Some(exact.as_str()));
    assert_letter(
        &parsed,
        "line 5",
        RejectReason::InvalidField,
        Some("event_id"),
    );
    assert_letter(
        &parsed,
        "line 6",
        RejectReason::InvalidField,
        Some("item_id"),
    );
}

#[test]
fn truncate_name_edges() {
    use crate::builder::truncate_name;
    assert_eq!(truncate_name("abc".into(), 3), "abc");
    assert_eq!(truncate_name("abcd".into(), 4), "abcd");
    assert_eq!(truncate_name("abcdefgh".into(), 5), "ab…");
    assert_eq!(truncate_name("a cdefgh".into(), 5), "a…");
    // "é" is 2 bytes: 5 - 3 = 2 bytes left, one "é".
    assert_eq!(truncate_name("ééé".into(), 5), "é…");
    assert_eq!(truncate_name("€€€".into(), 5), "…");
}

/// QA: a quantity too big for 64 bits said "is not an integer".
#[test]
fn huge_quantity_is_out_of_range_not_a_non_integer() {
    let csv = format!(
        "{CANONICAL_HEADER}\
         e1,2024-01-01T10:00:00Z,,A,a,c,99999999999999999999,1.00,USD\n\
         e2,2024-01-01T10:00:00Z,,B,b,c,-99999999999999999999,1.00,USD\n\
         e3,2024-01-01T10:00:00Z,,C,c,c,1e3,1.00,USD\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "q.csv", csv.as_bytes());
    let parsed = read_all(&path, &InputConfig::default(), &Limits::default());
    for line in ["line 2", "line 3"] {
        let letter = assert_letter(&parsed, line, RejectReason::OutOfRange, Some("quantity"));
        assert!(
            letter.message.contains("is beyond the limit of")
                && letter.message.contains("limits.max_quantity")
                && !letter.message.contains("not an integer"),
            "{}",
            letter.message
        );
    }
    assert_letter(
        &parsed,
        "line 4",
        RejectReason::InvalidField,
        Some("quantity"),
    );

    let jsonl = "{\"time\":\"2024-01-01T10:00:00Z\",\"item_id\":\"A\",\"quantity\":99999999999999999999,\"unit_price\":\"1.00\"}\n\
                 {\"time\":\"2024-01-01T10:00:00Z\",\"item_id\":\"B\",\"quantity\":18446744073709551615,\"unit_price\":\"1.00\"}\n\
                 {\"time\":\"2024-01-01T10:00:00Z\",\"item_id\":\"C\",\"quantity\":2.5,\"unit_price\":\"1.00\"}\n\
                 {\"time\":\"2024-01-01T10:00:00Z\",\"item_id\":\"D\",\"quantity\":1e3,\"unit_price\":\"1.00\"}\n";
    let path = write(&dir, "q.jsonl", jsonl.as_bytes());
    let parsed = read_all(&path, &InputConfig::default(), &Limits::default());
    assert_letter(
        &parsed,
        "line 1",
        RejectReason::OutOfRange,
        Some("quantity"),
    );
    assert_letter(
        &parsed,
        "line 2",
        RejectReason::OutOfRange,
        Some("quantity"),
    );
    assert_letter(
        &parsed,
        "line 3",
        RejectReason::InvalidField,
        Some("quantity"),
    );
    // QA: `1e3` was refused as "beyond the limit"; it is a whole value in float notation.
    let letter = assert_letter(
        &parsed,
        "line 4",
        RejectReason::InvalidField,
        Some("quantity"),
    );
    assert!(
        letter.message.contains("floating-point notation")
            && letter.message.contains("such as 1000")
            && !letter.message.contains("beyond the limit"),
        "{}",
        letter.message
    );
}

/// QA: `../../etc` was accepted as a category.
#[test]
fn dot_segments_are_not_categories() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from(CANONICAL_HEADER);
    for category in [
        "../../etc",
        "home/./mugs",
        "..",
        " . /x",
        "home/..",
        "a..b/.c/c.",
    ] {
        csv.push_str(&format!(
            "e,2024-01-01T10:00:00Z,,A,a,{category},1,1.00,USD\n"
        ));
    }
    let path = write(&dir, "dots.csv", csv.as_bytes());
    let parsed = read_all(&path, &InputConfig::default(), &Limits::default());
    for line in 2..=6 {
        let letter = assert_letter(
            &parsed,
            &format!("line {line}"),
            RejectReason::InvalidField,
            Some("category"),
        );
        assert!(letter.message.contains("segment"), "{}", letter.message);
    }
    let good = events(&parsed);
    assert_eq!(good.len(), 1);
    assert_eq!(good[0].category.as_str(), "a..b/.c/c.");

    let input = InputConfig {
        category_prefix: Some("../".into()),
        ..InputConfig::default()
    };
    assert!(input
        .validate()
        .iter()
        .any(|p| p.contains("input.category_prefix")));
}
