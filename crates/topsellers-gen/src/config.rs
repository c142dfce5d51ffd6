//! The generator's settings: the `[demo]` section of the product config.

use serde::{Deserialize, Serialize};

/// Largest catalog the generator builds; the catalog is held in memory with names and prices.
pub const MAX_CATALOG_ITEMS: usize = 10_000_000;

/// How the event rate varies over time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RatePattern {
    /// Exactly `rate_per_sec` on average in every second.
    Steady,
    /// A lower base rate with bursts of 5-10x lasting a few seconds (a flash sale, a mention on TV);
    /// the long-run mean is still `rate_per_sec`.
    #[default]
    Bursty,
}

/// Settings of generated traffic. Every field has a default, so an empty `[demo]` section works.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GenConfig {
    /// Seed of every random choice: the same seed gives the same catalog and the same events.
    pub seed: u64,
    /// Number of top-level categories ("electronics", "home & garden", ...).
    pub departments: usize,
    /// Number of leaf categories, spread over 2-3 levels under the departments; at least `departments`.
    pub leaves: usize,
    /// Items in each leaf category.
    pub items_per_leaf: usize,
    /// Zipf exponent of item popularity within a leaf (1.0-1.2 is typical of real shops; 0 is uniform).
    /// Leaves themselves are skewed too, with a fixed milder exponent.
    pub zipf_exponent: f64,
    /// Mean events per second (0.01 to 10 000 000).
    pub rate_per_sec: f64,
    /// `steady` or `bursty`.
    pub pattern: RatePattern,
    /// Share of events that are refunds of earlier purchases, carrying the sale's time and item.
    pub refund_fraction: f64,
    /// Share of events that are re-deliveries of a recent event: same event id and content.
    pub duplicate_fraction: f64,
    /// Share of events whose time lies 1-20 minutes in the past.
    pub late_fraction: f64,
    /// ISO 4217 code of every price; prices are generated with two decimals.
    pub currency: String,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            seed: 42,
            departments: 6,
            leaves: 48,
            items_per_leaf: 500,
            zipf_exponent: 1.07,
            rate_per_sec: 200.0,
            pattern: RatePattern::Bursty,
            refund_fraction: 0.02,
            duplicate_fraction: 0.005,
            late_fraction: 0.002,
            currency: "USD".into(),
        }
    }
}

impl GenConfig {
    /// Every problem at once, each naming the key and the fix; empty when the config is usable.
    pub fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if self.departments == 0 {
            errors.push(
                "departments = 0: at least one department is needed; use 1 or more".to_string(),
            );
        }
        if self.leaves < self.departments {
            errors.push(format!(
                "leaves = {} is fewer than departments = {}; every department needs a leaf category, so raise leaves",
                self.leaves, self.departments
            ));
        }
        if self.items_per_leaf == 0 {
            errors.push(
                "items_per_leaf = 0: every leaf category needs items; use 1 or more".to_string(),
            );
        }
        if self.leaves.saturating_mul(self.items_per_leaf) > MAX_CATALOG_ITEMS {
            errors.push(format!(
                "leaves x items_per_leaf = {} x {} exceeds {MAX_CATALOG_ITEMS} items; lower one of them",
                self.leaves, self.items_per_leaf
            ));
        }
        if !(self.zipf_exponent.is_finite() && (0.0..=10.0).contains(&self.zipf_exponent)) {
            errors.push(format!(
                "zipf_exponent = {} is out of range; use a number from 0 (uniform) to 10, typically about 1.07",
                self.zipf_exponent
            ));
        }
        if !(self.rate_per_sec.is_finite() && (0.01..=1e7).contains(&self.rate_per_sec)) {
            errors.push(format!(
                "rate_per_sec = {} is out of range; use events per second from 0.01 to 10000000",
                self.rate_per_sec
            ));
        }
        let fractions = [
            ("refund_fraction", self.refund_fraction),
            ("duplicate_fraction", self.duplicate_fraction),
            ("late_fraction", self.late_fraction),
        ];
        let mut all_valid = true;
        for (key, value) in fractions {
            if !(value.is_finite() && (0.0..1.0).contains(&value)) {
                all_valid = false;
                errors.push(format!(
                    "{key} = {value} is not a fraction; use a number from 0 up to (not including) 1, like 0.02"
                ));
            }
        }
        let sum: f64 = fractions.iter().map(|(_, v)| v).sum();
        if all_valid && sum >= 1.0 {
            errors.push(format!(
                "refund_fraction + duplicate_fraction + late_fraction = {sum} leaves no room for ordinary sales; \
                 keep their sum below 1"
            ));
        }
        if !(self.currency.len() == 3 && self.currency.bytes().all(|b| b.is_ascii_uppercase())) {
            errors.push(format!(
                "currency = {:?} is not an ISO 4217 code; use three capital letters like \"USD\"",
                self.currency
            ));
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_an_empty_section_gives_them() {
        assert!(GenConfig::default().validate().is_empty());
        let parsed: GenConfig = toml::from_str("").unwrap();
        assert_eq!(parsed, GenConfig::default());
        let parsed: GenConfig = toml::from_str("seed = 7\npattern = \"steady\"").unwrap();
        assert_eq!((parsed.seed, parsed.pattern), (7, RatePattern::Steady));
        assert_eq!(parsed.leaves, 48);
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = toml::from_str::<GenConfig>("rate = 5").unwrap_err();
        assert!(err.to_string().contains("unknown field `rate`"), "{err}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let config = GenConfig {
            departments: 5,
            leaves: 3,
            items_per_leaf: 0,
            zipf_exponent: f64::NAN,
            rate_per_sec: 0.0,
            refund_fraction: 1.5,
            currency: "usd".into(),
            ..GenConfig::default()
        };
        let errors = config.validate();
        assert_eq!(errors.len(), 6, "{errors:#?}");
        for key in [
            "leaves",
            "items_per_leaf",
            "zipf_exponent",
            "rate_per_sec",
            "refund_fraction",
            "currency",
        ] {
            assert!(
                errors.iter().any(|e| e.starts_with(key)),
                "{key}: {errors:#?}"
            );
        }
        let crowded = GenConfig {
            refund_fraction: 0.5,
            duplicate_fraction: 0.3,
            late_fraction: 0.3,
            ..GenConfig::default()
        };
        assert_eq!(crowded.validate().len(), 1);
    }
}
