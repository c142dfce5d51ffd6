//! Integer parsing straight from text, without allocation or floats.

/// Parses an optionally signed decimal integer, surrounding ASCII whitespace allowed; `None` on any
/// other character or on overflow.
pub(crate) fn parse_int(s: &str) -> Option<i64> {
    let b = s.trim_ascii().as_bytes();
    let (negative, body) = match b.first()? {
        b'-' => (true, &b[1..]),
        b'+' => (false, &b[1..]),
        _ => (false, b),
    };
    if body.is_empty() {
        return None;
    }
    let mut value: i64 = 0;
    for &c in body {
        if !c.is_ascii_digit() {
            return None;
        }
        // Accumulating negatively reaches i64::MIN without overflow.
        value = value.checked_mul(10)?.checked_sub(i64::from(c - b'0'))?;
    }
    if negative {
        Some(value)
    } else {
        value.checked_neg()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers() {
        assert_eq!(parse_int("12"), Some(12));
        assert_eq!(parse_int(" -7 "), Some(-7));
        assert_eq!(parse_int("+3"), Some(3));
        assert_eq!(parse_int("-9223372036854775808"), Some(i64::MIN));
        for bad in ["", "-", "1.0", "1e3", "abc", "9223372036854775808", "1 2"] {
            assert_eq!(parse_int(bad), None, "{bad}");
        }
    }
}
