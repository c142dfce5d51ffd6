//! Sliding windows over event time.

use serde::{Deserialize, Serialize};

/// A sliding window: `1h`, `24h`, `7d`, `90m`, or `all` (no bound).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WindowSpec {
    /// The name the API uses, as written in the config (`24h`).
    pub name: String,
    /// Length in seconds; `None` for `all`.
    pub length_secs: Option<u64>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("window {input:?} is not valid; write a positive number with a unit s, m, h or d (like 15m, 24h, 7d), or all")]
pub struct WindowError {
    pub input: String,
}

impl WindowSpec {
    pub fn all() -> Self {
        WindowSpec {
            name: "all".into(),
            length_secs: None,
        }
    }

    pub fn parse(raw: &str) -> Result<Self, WindowError> {
        let err = || WindowError {
            input: raw.to_string(),
        };
        let s = raw.trim();
        if s.eq_ignore_ascii_case("all") {
            return Ok(Self::all());
        }
        let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
        let (num, unit) = s.split_at(split);
        let n: u64 = num.parse().map_err(|_| err())?;
        let mult = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return Err(err()),
        };
        // Ten years is far beyond any useful sliding window; it also keeps arithmetic in range.
        if n == 0 || n > 3650 * 86_400 / mult {
            return Err(err());
        }
        Ok(WindowSpec {
            name: s.to_string(),
            length_secs: Some(n * mult),
        })
    }

    pub fn is_all(&self) -> bool {
        self.length_secs.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(WindowSpec::parse("90m").unwrap().length_secs, Some(5400));
        assert_eq!(WindowSpec::parse("7d").unwrap().length_secs, Some(604_800));
        assert!(WindowSpec::parse("ALL").unwrap().is_all());
        for bad in ["", "h", "0h", "1w", "-1h", "1.5h", "99999999999d"] {
            assert!(WindowSpec::parse(bad).is_err(), "{bad}");
        }
    }
}
