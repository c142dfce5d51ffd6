//! The engine's settings: data, checked in one pass that reports every problem at once.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use topsellers_model::WindowSpec;

/// Largest bucket: one day. Coarser buckets would make even a `1d` window jump in one step.
const MAX_BUCKET_SECS: u64 = 86_400;
/// Largest list kept per (category, window); the API's `n` is at most this.
const MAX_TOP_K: usize = 1000;

/// How the engine slices event time and how much of each ranking it keeps.
///
/// Read from the `[engine]` table of the configuration file; every key has a default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// Granularity of the sliding windows: counts are kept per bucket of this many seconds.
    pub bucket_secs: u64,
    /// Window names (`1h`, `24h`, `7d`, `all`), parsed with [`WindowSpec::parse`].
    pub windows: Vec<String>,
    /// How far behind the newest event time an event may arrive and still count.
    pub allowed_lateness_secs: u64,
    /// How many items each (category, window) list keeps; the API's `n` is `1..=top_k`.
    pub top_k: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            bucket_secs: 60,
            windows: ["1h", "24h", "7d", "all"].map(String::from).to_vec(),
            allowed_lateness_secs: 300,
            top_k: 100,
        }
    }
}

impl EngineConfig {
    /// Every problem at once, each naming the key and the fix; empty when the config is usable.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let bucket_ok = (1..=MAX_BUCKET_SECS).contains(&self.bucket_secs);
        if !bucket_ok {
            problems.push(format!(
                "engine.bucket_secs is {}; set it to a whole number of seconds from 1 to {MAX_BUCKET_SECS} (60 is the default)",
                self.bucket_secs
            ));
        }
        if self.windows.is_empty() {
            problems.push(
                "engine.windows is empty; list at least one window, like [\"1h\", \"24h\", \"7d\", \"all\"]"
                    .to_string(),
            );
        }
        let mut names = BTreeSet::new();
        for raw in &self.windows {
            let spec = match WindowSpec::parse(raw) {
                Ok(spec) => spec,
                Err(e) => {
                    problems.push(format!("engine.windows: {e}"));
                    continue;
                }
            };
            if !names.insert(spec.name.clone()) {
                problems.push(format!(
                    "engine.windows lists {:?} twice; remove the duplicate",
                    spec.name
                ));
            }
            if let (Some(len), true) = (spec.length_secs, bucket_ok) {
                if len % self.bucket_secs != 0 {
                    problems.push(format!(
                        "engine.windows: window {:?} ({len} s) is not a multiple of engine.bucket_secs ({} s); \
                         choose a window length that is a whole number of buckets or a bucket size that divides it",
                        spec.name, self.bucket_secs
                    ));
                }
            }
        }
        if !(1..=MAX_TOP_K).contains(&self.top_k) {
            problems.push(format!(
                "engine.top_k is {}; set it to a number from 1 to {MAX_TOP_K} (100 is the default)",
                self.top_k
            ));
        }
        problems
    }

    /// The parsed windows, in config order. Call only after [`EngineConfig::validate`] returned no
    /// problems; unparsable entries are skipped.
    pub fn window_specs(&self) -> Vec<WindowSpec> {
        self.windows
            .iter()
            .filter_map(|w| WindowSpec::parse(w).ok())
            .collect()
    }

    pub(crate) fn bucket_ms(&self) -> i64 {
        // validate() caps bucket_secs at one day, so this cannot overflow.
        self.bucket_secs as i64 * 1000
    }

    pub(crate) fn lateness_ms(&self) -> i64 {
        i64::try_from(self.allowed_lateness_secs.saturating_mul(1000)).unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        assert!(EngineConfig::default().validate().is_empty());
        let names: Vec<String> = EngineConfig::default()
            .window_specs()
            .into_iter()
            .map(|w| w.name)
            .collect();
        assert_eq!(names, ["1h", "24h", "7d", "all"]);
    }

    #[test]
    fn reports_every_problem_at_once() {
        let config = EngineConfig {
            bucket_secs: 0,
            windows: vec!["1h".into(), "1w".into(), "1h".into()],
            allowed_lateness_secs: 0,
            top_k: 0,
        };
        let problems = config.validate();
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(problems[0].starts_with("engine.bucket_secs is 0"));
        assert!(problems[1].contains("\"1w\""));
        assert!(problems[2].contains("twice"));
        assert!(problems[3].starts_with("engine.top_k is 0"));
    }

    #[test]
    fn windows_must_be_whole_buckets() {
        let config = EngineConfig {
            bucket_secs: 7,
            windows: vec!["1h".into(), "all".into()],
            ..EngineConfig::default()
        };
        let problems = config.validate();
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("not a multiple of engine.bucket_secs"));
    }

    #[test]
    fn empty_windows_and_huge_values_are_rejected() {
        let config = EngineConfig {
            bucket_secs: 86_401,
            windows: vec![],
            allowed_lateness_secs: u64::MAX,
            top_k: 1001,
        };
        assert_eq!(config.validate().len(), 3);
        assert_eq!(config.lateness_ms(), i64::MAX);
    }

    #[test]
    fn toml_uses_defaults_and_rejects_unknown_keys() {
        let config: EngineConfig = toml::from_str("top_k = 10").unwrap();
        assert_eq!(config.top_k, 10);
        assert_eq!(config.bucket_secs, 60);
        assert!(toml::from_str::<EngineConfig>("bucket = 10").is_err());
    }
}
