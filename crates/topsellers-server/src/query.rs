//! Query-string parsing for `/v1/top`, cheap on the hot path: no allocation unless a value is
//! percent-encoded or a category needs normalising.

use crate::error::ApiError;
use std::borrow::Cow;
use topsellers_model::CategoryPath;

// The limits `CategoryPath::parse` enforces; topsellers-model does not export them. The fast path
// below must never accept what `parse` rejects, which `fast_path_agrees_with_category_parse`
// checks at both limits.
const MAX_CATEGORY_LEN: usize = 256;
const MAX_CATEGORY_DEPTH: usize = 8;

/// The raw, decoded parameters of `/v1/top`; each absent when not given.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct TopQuery<'a> {
    pub category: Option<Cow<'a, str>>,
    pub window: Option<Cow<'a, str>>,
    pub n: Option<Cow<'a, str>>,
}

/// Splits and decodes `category=..&window=..&n=..`.
///
/// Unknown keys are ignored: cache-busters (`_=123`), `utm_*` tags and the like are added to URLs
/// by browsers, proxies and marketing tools, and a page must never get an error because of them.
/// Their values are not even decoded. Bad values of known keys are still errors, and so is a
/// known key given twice, since it is unclear which one was meant.
pub(crate) fn parse_top_query(raw: Option<&str>) -> Result<TopQuery<'_>, ApiError> {
    let mut query = TopQuery::default();
    let Some(raw) = raw else {
        return Ok(query);
    };
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        // A key that does not decode is no key we know: ignored like any other unknown one.
        let Ok(key) = decode(raw_key) else {
            continue;
        };
        let slot = match key.as_ref() {
            "category" => &mut query.category,
            "window" => &mut query.window,
            "n" => &mut query.n,
            _ => continue,
        };
        let value = decode(raw_value).map_err(|()| {
            ApiError::bad_parameter(
                key.as_ref(),
                format!("{key} is not valid UTF-8 once decoded; percent-encode UTF-8 text"),
            )
        })?;
        if slot.is_some() {
            return Err(ApiError::bad_parameter(
                key.as_ref(),
                format!("{key} is given more than once; give it once"),
            ));
        }
        *slot = Some(value);
    }
    Ok(query)
}

/// Decodes `application/x-www-form-urlencoded` text (`+` is a space, `%XX` a byte). A `%` not
/// followed by two hex digits is kept as-is, as browsers and `form_urlencoded` do.
fn decode(raw: &str) -> Result<Cow<'_, str>, ()> {
    if !raw.bytes().any(|b| b == b'%' || b == b'+') {
        return Ok(Cow::Borrowed(raw));
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map(Cow::Owned).map_err(|_| ())
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Normalises a category as [`CategoryPath::parse`] does, borrowing the input when it is already
/// normal (the common case: links and the web page send normalised paths).
pub(crate) fn normalise_category(raw: &str) -> Result<Cow<'_, str>, ApiError> {
    if is_already_normal(raw) {
        return Ok(Cow::Borrowed(raw));
    }
    CategoryPath::parse(raw)
        .map(|p| Cow::Owned(p.as_str().to_string()))
        .map_err(|e| ApiError::bad_parameter("category", format!("category is not valid: {e}")))
}

/// True when `CategoryPath::parse(raw)` would return `raw` unchanged: lower-case printable ASCII
/// without spaces, segments separated by single slashes, not too long or deep.
fn is_already_normal(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    if bytes.len() > MAX_CATEGORY_LEN || bytes.first() == Some(&b'/') || bytes.last() == Some(&b'/')
    {
        return false;
    }
    let mut depth = usize::from(!bytes.is_empty());
    let mut previous_slash = false;
    for &b in bytes {
        let is_slash = b == b'/';
        if !b.is_ascii_graphic() || b.is_ascii_uppercase() || (is_slash && previous_slash) {
            return false;
        }
        depth += usize::from(is_slash);
        previous_slash = is_slash;
    }
    depth <= MAX_CATEGORY_DEPTH
}

/// Parses `n`, which must lie in `1..=max`.
pub(crate) fn parse_n(raw: &str, max: usize) -> Result<usize, ApiError> {
    let bad = || {
        ApiError::bad_parameter("n", format!("n must be an integer from 1 to {max}"))
            .allowed(serde_json::json!({"min": 1, "max": max}))
    };
    if raw.is_empty() || raw.len() > 9 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match raw.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_parameters() {
        let q = parse_top_query(Some("category=electronics%2Fphones&window=24h&n=5")).unwrap();
        assert_eq!(q.category.as_deref(), Some("electronics/phones"));
        assert_eq!(q.window.as_deref(), Some("24h"));
        assert_eq!(q.n.as_deref(), Some("5"));
        assert_eq!(parse_top_query(None).unwrap(), TopQuery::default());
        assert_eq!(parse_top_query(Some("&&")).unwrap(), TopQuery::default());
        let q = parse_top_query(Some("category=home+%26+garden")).unwrap();
        assert_eq!(q.category.as_deref(), Some("home & garden"));
    }

    #[test]
    fn unknown_keys_are_ignored_repeated_known_keys_are_not() {
        for raw in [
            "_=123",
            "utm_source=mail&utm_medium=x",
            "foo=%FF",
            "%FF=1",
            "windw=24h",
        ] {
            assert_eq!(
                parse_top_query(Some(raw)).unwrap(),
                TopQuery::default(),
                "{raw}"
            );
        }
        let q = parse_top_query(Some("_=1&n=3&foo=bar&foo=baz")).unwrap();
        assert_eq!(q.n.as_deref(), Some("3"));
        let e = parse_top_query(Some("n=1&n=2")).unwrap_err();
        assert_eq!(e.parameter.as_deref(), Some("n"));
        let e = parse_top_query(Some("category=%FF")).unwrap_err();
        assert_eq!(e.parameter.as_deref(), Some("category"));
    }

    #[test]
    fn decode_keeps_stray_percent() {
        assert_eq!(decode("50%").unwrap(), "50%");
        assert_eq!(decode("50%2").unwrap(), "50%2");
        assert_eq!(decode("%41%62").unwrap(), "Ab");
        assert_eq!(decode("caf%C3%A9").unwrap(), "café");
    }

    #[test]
    fn fast_path_agrees_with_category_parse() {
        let samples = [
            "",
            "electronics",
            "electronics/phones",
            "Electronics/Phones",
            "/electronics",
            "electronics/",
            "a//b",
            "home & garden",
            "home&garden/lamps",
            " a",
            "a/b/c/d/e/f/g/h",
            "a/b/c/d/e/f/g/h/i",
            "café",
            "x\ty",
            &"z".repeat(300),
        ];
        for raw in samples {
            let fast = normalise_category(raw).map(|c| c.into_owned()).ok();
            let slow = CategoryPath::parse(raw)
                .ok()
                .map(|p| p.as_str().to_string());
            assert_eq!(fast, slow, "{raw:?}");
            if is_already_normal(raw) {
                assert_eq!(slow.as_deref(), Some(raw), "{raw:?} is not normal");
            }
        }
    }

    #[test]
    fn n_must_be_in_range() {
        assert_eq!(parse_n("1", 50).unwrap(), 1);
        assert_eq!(parse_n("50", 50).unwrap(), 50);
        for bad in [
            "0",
            "51",
            "abc",
            "",
            "-1",
            "+3",
            "1.5",
            "99999999999999999999",
        ] {
            let e = parse_n(bad, 50).unwrap_err();
            assert_eq!(e.parameter.as_deref(), Some("n"), "{bad}");
            assert_eq!(e.message, "n must be an integer from 1 to 50");
        }
    }
}
