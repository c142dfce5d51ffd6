//! Data-driven scenarios: every folder under `tests/scenarios/` is one case, so adding a case needs no
//! Rust. A folder holds:
//!
//! - `settings.toml`: an [`EngineConfig`] (missing keys take their defaults);
//! - `events.jsonl`: one JSON value per line, either a `PurchaseEvent` as serde writes it or
//!   `{"tick": <ms>}`; blank lines are skipped;
//! - `expected.json`: `{"admissions": {"accepted", "duplicate", "late"}, "lists": [{"category", "window",
//!   "items": [{"item_id", "units", "revenue_minor", "item_name"?}]}]}`, checked after the last line.
//!   Each listed ranking must match exactly, in order; `item_name` is only checked when given.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use topsellers_engine::{Admission, Engine, EngineConfig};
use topsellers_model::PurchaseEvent;

#[derive(Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Admissions {
    accepted: u64,
    duplicate: u64,
    late: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectedItem {
    item_id: String,
    units: i64,
    revenue_minor: i64,
    #[serde(default)]
    item_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectedList {
    category: String,
    window: String,
    items: Vec<ExpectedItem>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    admissions: Admissions,
    lists: Vec<ExpectedList>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Line {
    Tick { tick: i64 },
    Event(Box<PurchaseEvent>),
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Runs one scenario folder; returns every mismatch found.
fn run(dir: &Path) -> Vec<String> {
    let config: EngineConfig = toml::from_str(&read(&dir.join("settings.toml")))
        .unwrap_or_else(|e| panic!("{}/settings.toml: {e}", dir.display()));
    let expected: Expected = serde_json::from_str(&read(&dir.join("expected.json")))
        .unwrap_or_else(|e| panic!("{}/expected.json: {e}", dir.display()));
    let mut engine = Engine::new(config).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut admissions = Admissions::default();
    for (n, line) in read(&dir.join("events.jsonl")).lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed: Line = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{}/events.jsonl line {}: {e}", dir.display(), n + 1));
        match parsed {
            Line::Tick { tick } => engine.tick(tick),
            Line::Event(ev) => match engine.admit(&ev) {
                Admission::Accepted => admissions.accepted += 1,
                Admission::Duplicate => admissions.duplicate += 1,
                Admission::Late { .. } => admissions.late += 1,
            },
        }
    }
    let mut problems = Vec::new();
    if admissions != expected.admissions {
        problems.push(format!(
            "admissions: got {admissions:?}, expected {:?}",
            expected.admissions
        ));
    }
    let snapshot = engine.snapshot(1, 0, "GBP");
    for want in &expected.lists {
        let Some(list) = snapshot.list(&want.category, &want.window) else {
            problems.push(format!(
                "no list for category {:?} window {:?}",
                want.category, want.window
            ));
            continue;
        };
        let got: Vec<(&str, i64, i64)> = list
            .items
            .iter()
            .map(|r| (r.item_id.as_str(), r.units, r.revenue_minor))
            .collect();
        let wanted: Vec<(&str, i64, i64)> = want
            .items
            .iter()
            .map(|r| (r.item_id.as_str(), r.units, r.revenue_minor))
            .collect();
        if got != wanted {
            problems.push(format!(
                "{:?}/{}: got {got:?}, expected {wanted:?}",
                want.category, want.window
            ));
        }
        for (w, g) in want.items.iter().zip(&list.items) {
            if w.item_name.is_some() && w.item_name != g.item_name {
                problems.push(format!(
                    "{:?}/{} item {}: name {:?}, expected {:?}",
                    want.category, want.window, w.item_id, g.item_name, w.item_name
                ));
            }
        }
    }
    problems
}

#[test]
fn every_scenario_folder_passes() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(
        dirs.len() >= 6,
        "expected at least 6 scenarios in {}",
        root.display()
    );
    let failures: Vec<String> = dirs
        .iter()
        .flat_map(|dir| {
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            run(dir).into_iter().map(move |p| format!("{name}: {p}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "scenario failures:\n{}",
        failures.join("\n")
    );
}
