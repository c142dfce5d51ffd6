//! Category paths and their roll-up.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The path of the site-wide list: every sale rolls up to it.
pub const SITE_WIDE: &str = "";

/// Maximum depth of a category path; deeper paths are rejected rather than truncated.
pub const MAX_CATEGORY_DEPTH: usize = 8;
/// Maximum length of a category path in bytes.
pub const MAX_CATEGORY_LEN: usize = 256;

/// A normalised category path such as `electronics/phones`.
///
/// Normalisation makes two spellings of one category the same list: segments are trimmed,
/// lower-cased, inner runs of whitespace become one space, and empty segments (`a//b`, a leading or
/// trailing `/`) are removed. The empty path is the site-wide list.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct CategoryPath(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CategoryError {
    #[error(
        "category path is {len} bytes long, more than the {MAX_CATEGORY_LEN} allowed; send the category's path \
         (e.g. \"home/kitchen\"), not a description, and check that the mapping points at the category field"
    )]
    TooLong { len: usize },
    #[error(
        "category path has {depth} levels, more than the {MAX_CATEGORY_DEPTH} allowed; send a shorter path \
         (levels are separated by '/'), or check that the field holds a category"
    )]
    TooDeep { depth: usize },
    #[error("category path contains a control character; use printable text separated by '/'")]
    ControlCharacter,
}

impl CategoryPath {
    /// The site-wide path.
    pub fn site_wide() -> Self {
        CategoryPath(String::new())
    }

    /// Parses and normalises a path written with `/` separators.
    pub fn parse(raw: &str) -> Result<Self, CategoryError> {
        if raw.len() > MAX_CATEGORY_LEN {
            return Err(CategoryError::TooLong { len: raw.len() });
        }
        if raw.chars().any(char::is_control) {
            return Err(CategoryError::ControlCharacter);
        }
        let mut out = String::with_capacity(raw.len());
        let mut depth = 0;
        for segment in raw.split('/') {
            let words: Vec<&str> = segment.split_whitespace().collect();
            if words.is_empty() {
                continue;
            }
            if depth > 0 {
                out.push('/');
            }
            depth += 1;
            for (i, w) in words.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.extend(w.chars().flat_map(char::to_lowercase));
            }
        }
        if depth > MAX_CATEGORY_DEPTH {
            return Err(CategoryError::TooDeep { depth });
        }
        Ok(CategoryPath(out))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_site_wide(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of segments; 0 for the site-wide path.
    pub fn depth(&self) -> usize {
        if self.0.is_empty() {
            0
        } else {
            self.0.split('/').count()
        }
    }

    /// The path itself, then each parent, ending with the site-wide path `""`.
    /// A sale in `a/b/c` counts in every one of them.
    pub fn ancestors(&self) -> impl Iterator<Item = &str> {
        let s = self.0.as_str();
        let mut next: Option<&str> = Some(s);
        std::iter::from_fn(move || {
            let cur = next?;
            next = if cur.is_empty() {
                None
            } else {
                Some(cur.rfind('/').map_or("", |i| &cur[..i]))
            };
            Some(cur)
        })
    }

    /// The parent path, `None` for the site-wide path.
    pub fn parent(&self) -> Option<CategoryPath> {
        if self.0.is_empty() {
            None
        } else {
            Some(CategoryPath(
                self.0
                    .rfind('/')
                    .map_or(String::new(), |i| self.0[..i].to_string()),
            ))
        }
    }
}

impl fmt::Display for CategoryPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for CategoryPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_space_and_empty_segments() {
        let p = CategoryPath::parse(" /Home  & Garden//Lamps / ").unwrap();
        assert_eq!(p.as_str(), "home & garden/lamps");
        assert_eq!(p.depth(), 2);
    }

    #[test]
    fn ancestors_end_with_site_wide() {
        let p = CategoryPath::parse("a/b/c").unwrap();
        assert_eq!(p.ancestors().collect::<Vec<_>>(), ["a/b/c", "a/b", "a", ""]);
        assert_eq!(
            CategoryPath::site_wide().ancestors().collect::<Vec<_>>(),
            [""]
        );
    }

    #[test]
    fn rejects_deep_and_control() {
        assert!(matches!(
            CategoryPath::parse("a/b/c/d/e/f/g/h/i"),
            Err(CategoryError::TooDeep { .. })
        ));
        assert_eq!(
            CategoryPath::parse("a\u{0}b"),
            Err(CategoryError::ControlCharacter)
        );
    }
}
