//! Item-id normalisation and the exclusion list (`POST`, `gift_0001_*`).

use crate::config::ItemIdCase;
use rustc_hash::FxHashSet;

/// Applies the configured case rule to an already trimmed id.
pub(crate) fn normalise_item_id(case: ItemIdCase, id: &str) -> String {
    match case {
        ItemIdCase::Keep => id.to_string(),
        ItemIdCase::Upper => id.to_uppercase(),
        ItemIdCase::Lower => id.to_lowercase(),
    }
}

/// Item ids to drop: exact ids in a hash set, patterns with `*` checked one by one.
pub(crate) struct Exclusions {
    exact: FxHashSet<String>,
    /// Each pattern split at its `*`s.
    patterns: Vec<Vec<String>>,
}

impl Exclusions {
    /// Patterns go through the same normalisation as ids, so `gift_0001_*` matches `GIFT_0001_10`
    /// when ids are upper-cased.
    pub(crate) fn new(patterns: &[String], case: ItemIdCase) -> Self {
        let mut exact = FxHashSet::default();
        let mut globs = Vec::new();
        for p in patterns {
            let p = normalise_item_id(case, p.trim());
            if p.is_empty() {
                continue;
            }
            if p.contains('*') {
                globs.push(p.split('*').map(str::to_string).collect());
            } else {
                exact.insert(p);
            }
        }
        Exclusions {
            exact,
            patterns: globs,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.patterns.is_empty()
    }

    pub(crate) fn excludes(&self, id: &str) -> bool {
        self.exact.contains(id) || self.patterns.iter().any(|p| glob_match(p, id))
    }
}

/// Matches `text` against a pattern already split at `*`: the first part is a prefix, the last a
/// suffix, the middle parts must appear in order between them.
fn glob_match(parts: &[String], text: &str) -> bool {
    let (first, rest) = match parts.split_first() {
        Some(x) => x,
        None => return text.is_empty(),
    };
    let Some(mut remaining) = text.strip_prefix(first.as_str()) else {
        return false;
    };
    let Some((last, middle)) = rest.split_last() else {
        return remaining.is_empty();
    };
    for part in middle {
        match remaining.find(part.as_str()) {
            Some(at) => remaining = &remaining[at + part.len()..],
            None => return false,
        }
    }
    remaining.len() >= last.len() && remaining.ends_with(last.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(patterns: &[&str], case: ItemIdCase) -> Exclusions {
        Exclusions::new(
            &patterns.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            case,
        )
    }

    #[test]
    fn exact_and_wildcards() {
        let e = ex(
            &["POST", "gift_0001_*", "DCGS*", "*FEE", "a*b*c"],
            ItemIdCase::Upper,
        );
        for yes in [
            "POST",
            "GIFT_0001_10",
            "GIFT_0001_",
            "DCGS0003",
            "DCGS",
            "AMAZONFEE",
            "ABC",
            "AXXBYYC",
        ] {
            assert!(e.excludes(yes), "{yes}");
        }
        for no in [
            "POSTAGE",
            "XPOST",
            "GIFT_0002_10",
            "DCG",
            "FEES",
            "ACB",
            "ABCX",
        ] {
            assert!(!e.excludes(no), "{no}");
        }
        let keep = ex(&["gift_0001_*"], ItemIdCase::Keep);
        assert!(!keep.excludes("GIFT_0001_10"));
        assert!(keep.excludes("gift_0001_10"));
        assert!(ex(&["*"], ItemIdCase::Keep).excludes("anything"));
    }
}
