//! The files `write_events` produces go through the real ingest layer with its default (canonical)
//! mapping and come out as exactly the events of the generator's [`Timeline`].

use topsellers_gen::{write_events, GenConfig, Timeline};
use topsellers_ingest::{FileReader, InputConfig, Limits, Parsed};
use topsellers_model::PurchaseEvent;

const START_MS: i64 = 1_700_000_000_000;
const EVENTS: u64 = 20_000;

fn read_back(path: &std::path::Path) -> Vec<PurchaseEvent> {
    let now_ms = START_MS + 86_400_000;
    let reader =
        FileReader::open(path, &InputConfig::default(), &Limits::default(), now_ms).unwrap();
    reader
        .map(|parsed| match parsed {
            Parsed::Event(e) => e,
            other => panic!("{} gave {other:?}", path.display()),
        })
        .collect()
}

#[test]
fn csv_and_json_lines_files_ingest_to_the_generated_events() {
    let config = GenConfig {
        refund_fraction: 0.05,
        late_fraction: 0.01,
        duplicate_fraction: 0.01,
        ..GenConfig::default()
    };
    let dir = tempfile::tempdir().unwrap();
    // CSV has no country column; JSON lines carry it.
    for (name, has_country) in [
        ("events.csv", false),
        ("events.jsonl", true),
        ("events.ndjson", true),
    ] {
        let path = dir.path().join(name);
        assert_eq!(
            write_events(&config, EVENTS, START_MS, &path).unwrap(),
            EVENTS
        );
        let got = read_back(&path);
        let want: Vec<PurchaseEvent> = Timeline::new(&config, EVENTS, START_MS)
            .map(|mut e| {
                if !has_country {
                    e.country = None;
                }
                e
            })
            .collect();
        assert_eq!(got.len(), want.len(), "{name}");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g, w, "{name}");
        }
        assert!(got
            .iter()
            .any(|e| e.quantity < 0 && e.original_time_ms.is_some()));
    }
}
