//! The real Online Retail data (68 files, 105,335 rows) through the mapping `examples/online-retail.toml`
//! uses. Skipped, saying so, when the data is not on this machine.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use topsellers_ingest::{
    FieldMapping, FileReader, InputConfig, ItemIdCase, Limits, Parsed, Redactions, RefundMarker,
    SkipReason,
};

const EXCLUDED: [&str; 10] = [
    "POST",
    "DOT",
    "M",
    "S",
    "C2",
    "D",
    "AMAZONFEE",
    "BANK CHARGES",
    "gift_0001_*",
    "DCGS*",
];

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/online-retail/by-day")
}

fn retail_input() -> InputConfig {
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
        refund_marker: Some(RefundMarker {
            field: "InvoiceNo".into(),
            prefix: "C".into(),
        }),
        exclude_items: EXCLUDED.map(String::from).to_vec(),
        ..InputConfig::default()
    }
}

/// The exclusion rule written out independently of the crate's matcher.
fn is_excluded(code: &str) -> bool {
    let code = code.trim().to_uppercase();
    EXCLUDED[..8].contains(&code.as_str())
        || code.starts_with("GIFT_0001_")
        || code.starts_with("DCGS")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    files.sort();
    files
}

/// What the raw files say, read with the `csv` crate rather than this crate.
#[derive(Default)]
struct Expected {
    rows: usize,
    cancellations_kept: usize,
    adjustments_kept: usize,
    customer_ids: HashSet<String>,
}

fn expected(files: &[PathBuf]) -> Expected {
    let mut out = Expected::default();
    for file in files {
        let mut reader = csv::Reader::from_path(file).unwrap();
        for row in reader.records() {
            let row = row.unwrap();
            out.rows += 1;
            let negative = row[3].trim().starts_with('-');
            if !is_excluded(&row[1]) && negative {
                if row[0].starts_with('C') {
                    out.cancellations_kept += 1;
                } else {
                    out.adjustments_kept += 1;
                }
            }
            if !row[6].is_empty() {
                out.customer_ids.insert(row[6].to_string());
            }
        }
    }
    out
}

#[test]
fn online_retail_by_day_reads_plausibly_and_leaks_no_customer() {
    let dir = data_dir();
    if !dir.is_dir() {
        println!(
            "online-retail data not found at {}; skipping",
            dir.display()
        );
        return;
    }
    let files = files(&dir);
    assert_eq!(files.len(), 68);
    let limits = Limits {
        currency: "GBP".into(),
        ..Limits::default()
    };
    let now_ms = jiff::Timestamp::now().as_millisecond();
    let (mut sales, mut refunds, mut rejected) = (0usize, 0usize, 0usize);
    let mut skipped: BTreeMap<SkipReason, usize> = BTreeMap::new();
    let mut reasons: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut letters = Vec::new();
    let mut categories = HashSet::new();
    let mut redactions = Redactions::default();
    for file in &files {
        let mut reader = FileReader::open(file, &retail_input(), &limits, now_ms).unwrap();
        for parsed in reader.by_ref() {
            match parsed {
                Parsed::Event(e) if e.is_refund() => refunds += 1,
                Parsed::Event(e) => {
                    sales += 1;
                    categories.insert(e.category.as_str().to_string());
                    assert_eq!(e.item_id, e.item_id.to_uppercase());
                }
                Parsed::Skipped(reason) => *skipped.entry(reason).or_default() += 1,
                Parsed::Rejected(letter) => {
                    rejected += 1;
                    *reasons.entry(letter.reason.as_str()).or_default() += 1;
                    letters.push(letter);
                }
            }
        }
        assert!(reader.take_error().is_none());
        assert_eq!(Some(reader.bytes_read()), reader.total_bytes());
        redactions.merge(&reader.redactions());
    }
    let expected = expected(&files);
    println!(
        "online retail: {sales} sales, {refunds} refunds, skipped {skipped:?}, rejected {rejected} {reasons:?}"
    );
    for letter in letters.iter().take(5) {
        println!(
            "  {} {}: {}",
            letter.source, letter.location, letter.message
        );
    }

    let total = sales + refunds + rejected + skipped.values().sum::<usize>();
    assert_eq!(total, 105_335);
    assert_eq!(expected.rows, 105_335);
    assert!(expected.cancellations_kept <= 1_904 && expected.cancellations_kept > 1_500);
    assert_eq!(refunds, expected.cancellations_kept);
    assert!(expected.adjustments_kept <= 214);
    assert_eq!(
        skipped.get(&SkipReason::NotASale).copied().unwrap_or(0),
        expected.adjustments_kept
    );
    assert!(skipped[&SkipReason::Excluded] > 100, "{skipped:?}");
    assert!(
        rejected * 1000 < total,
        "more than 0.1% rejected: {reasons:?}"
    );
    assert!(categories.contains("united kingdom") && categories.contains("eire"));
    // Product descriptions and countries hold no personal data: a redaction here is a false
    // positive of the scrubber.
    assert_eq!(redactions, Redactions::default());

    assert!(expected.customer_ids.len() > 1000);
    for letter in &letters {
        assert!(!letter.record.contains("CustomerID"), "{letter:?}");
        for id in &expected.customer_ids {
            assert!(
                !letter.record.contains(id.as_str()),
                "CustomerID {id} in {letter:?}"
            );
        }
    }
}

/// The `[input]` and `[limits]` sections of the shipped example read into these types.
#[test]
fn example_config_sections_parse() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/online-retail.toml");
    let Ok(text) = std::fs::read_to_string(&path) else {
        println!("{} not found; skipping", path.display());
        return;
    };
    #[derive(serde::Deserialize)]
    struct Sections {
        input: InputConfig,
        limits: Limits,
    }
    let sections: Sections = toml::from_str(&text).unwrap();
    assert_eq!(sections.input.validate(), Vec::<String>::new());
    assert_eq!(sections.limits.validate(), Vec::<String>::new());
    assert_eq!(sections.input.fields.item_id, "StockCode");
}

/// The real data has no line breaks inside fields: single-line records (the default) and RFC 4180
/// multi-line records read it identically, record for record.
#[test]
fn online_retail_reads_the_same_with_and_without_multiline_fields() {
    let dir = data_dir();
    if !dir.is_dir() {
        println!(
            "online-retail data not found at {}; skipping",
            dir.display()
        );
        return;
    }
    let limits = Limits {
        currency: "GBP".into(),
        ..Limits::default()
    };
    let now_ms = jiff::Timestamp::now().as_millisecond();
    let multiline = InputConfig {
        csv_multiline_fields: true,
        ..retail_input()
    };
    assert!(!retail_input().csv_multiline_fields);
    let mut records = 0;
    for file in &files(&dir) {
        let single: Vec<Parsed> = FileReader::open(file, &retail_input(), &limits, now_ms)
            .unwrap()
            .collect();
        let multi: Vec<Parsed> = FileReader::open(file, &multiline, &limits, now_ms)
            .unwrap()
            .collect();
        assert!(single == multi, "{} reads differently", file.display());
        records += single.len();
    }
    assert_eq!(records, 105_335);
}
