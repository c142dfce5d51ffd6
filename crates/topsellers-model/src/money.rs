//! Exact decimal money: prices are parsed straight into integer minor units, never through floats.

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MoneyError {
    #[error("{input:?} is not a decimal number; write digits with an optional '.' (like 2.55)")]
    NotDecimal { input: String },
    #[error("{input:?} has more than {decimals} decimal places, the precision of the configured currency")]
    TooPrecise { input: String, decimals: u32 },
    #[error("{input:?} is too large")]
    TooLarge { input: String },
}

/// Parses `"2.55"` with `decimals = 2` into `255`. A leading sign is allowed; trailing zeros beyond the
/// precision are accepted (`"2.550"`), other extra digits are an error rather than silently rounded.
pub fn parse_decimal_minor(input: &str, decimals: u32) -> Result<i64, MoneyError> {
    let s = input.trim();
    let not_decimal = || MoneyError::NotDecimal {
        input: input.to_string(),
    };
    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (int_part, frac_part) = match body.split_once('.') {
        Some((i, f)) => (i, f),
        None => (body, ""),
    };
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(not_decimal());
    }
    let significant = frac_part.trim_end_matches('0');
    if significant.len() > decimals as usize {
        return Err(MoneyError::TooPrecise {
            input: input.to_string(),
            decimals,
        });
    }
    let too_large = || MoneyError::TooLarge {
        input: input.to_string(),
    };
    let mut value: i64 = 0;
    for b in int_part.bytes() {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(i64::from(b - b'0')))
            .ok_or_else(too_large)?;
    }
    for i in 0..decimals as usize {
        let digit = significant
            .as_bytes()
            .get(i)
            .map_or(0, |b| i64::from(b - b'0'));
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(digit))
            .ok_or_else(too_large)?;
    }
    Ok(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exactly() {
        assert_eq!(parse_decimal_minor("2.55", 2), Ok(255));
        assert_eq!(parse_decimal_minor("2.5", 2), Ok(250));
        assert_eq!(parse_decimal_minor("2", 2), Ok(200));
        assert_eq!(parse_decimal_minor(".5", 2), Ok(50));
        assert_eq!(parse_decimal_minor("2.550", 2), Ok(255));
        assert_eq!(parse_decimal_minor("-1.01", 2), Ok(-101));
        assert_eq!(parse_decimal_minor("7", 0), Ok(7));
    }

    #[test]
    fn rejects_bad_input() {
        assert!(matches!(
            parse_decimal_minor("2.555", 2),
            Err(MoneyError::TooPrecise { .. })
        ));
        for bad in ["", ".", "abc", "1e5", "1,5", "--1", "NaN"] {
            assert!(
                matches!(
                    parse_decimal_minor(bad, 2),
                    Err(MoneyError::NotDecimal { .. })
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            parse_decimal_minor("99999999999999999999", 2),
            Err(MoneyError::TooLarge { .. })
        ));
    }
}
