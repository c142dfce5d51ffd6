//! Event-time parsing: the configured format, the configured zone, and fast paths for the two
//! formats nearly every file uses (`%Y-%m-%d %H:%M:%S` and RFC 3339), because generic strptime on
//! every row of a 10 M-row file costs more than everything else together.

use jiff::civil::DateTime;
use jiff::tz::{AmbiguousOffset, TimeZone};
use rustc_hash::FxHashMap;
use topsellers_model::TimestampMs;

/// The format `[input].time_format` selects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TimeFormat {
    Rfc3339,
    UnixMs,
    UnixS,
    Strftime {
        format: String,
        /// The format is exactly `%Y-%m-%d %H:%M:%S`, parsed by hand.
        common: bool,
    },
}

const COMMON_STRFTIME: &str = "%Y-%m-%d %H:%M:%S";

impl TimeFormat {
    pub(crate) fn parse(raw: &str) -> Result<TimeFormat, String> {
        match raw {
            "rfc3339" => Ok(TimeFormat::Rfc3339),
            "unix_ms" => Ok(TimeFormat::UnixMs),
            "unix_s" => Ok(TimeFormat::UnixS),
            f if f.contains('%') => {
                // Formatting a known time is the cheapest way to find unknown directives up front.
                let probe = jiff::civil::date(2024, 1, 31).at(8, 26, 0, 0);
                jiff::fmt::strtime::format(f, probe).map_err(|e| {
                    format!("{f:?} is not a valid strftime format ({e}); write it like \"%Y-%m-%d %H:%M:%S\"")
                })?;
                Ok(TimeFormat::Strftime {
                    format: f.to_string(),
                    common: f == COMMON_STRFTIME,
                })
            }
            other => Err(format!(
                "{other:?} is not a time format; use \"rfc3339\", \"unix_ms\", \"unix_s\" or a strftime format like \"%Y-%m-%d %H:%M:%S\""
            )),
        }
    }

    /// How a valid time looks in this format, for error messages.
    pub(crate) fn example(&self) -> String {
        match self {
            TimeFormat::Rfc3339 => "2024-01-31T08:26:00Z".into(),
            TimeFormat::UnixMs => "1706689560000".into(),
            TimeFormat::UnixS => "1706689560".into(),
            TimeFormat::Strftime { format, .. } => {
                let probe = jiff::civil::date(2024, 1, 31).at(8, 26, 0, 0);
                jiff::fmt::strtime::format(format.as_str(), probe).unwrap_or_default()
            }
        }
    }

    pub(crate) fn name(&self) -> &str {
        match self {
            TimeFormat::Rfc3339 => "rfc3339",
            TimeFormat::UnixMs => "unix_ms",
            TimeFormat::UnixS => "unix_s",
            TimeFormat::Strftime { format, .. } => format,
        }
    }
}

/// `[input].time_zone`, resolved against the bundled time-zone database so that it works on machines
/// without `/usr/share/zoneinfo`.
pub(crate) struct TimeZoneSpec;

impl TimeZoneSpec {
    pub(crate) fn parse(name: &str) -> Result<TimeZone, String> {
        if name.eq_ignore_ascii_case("utc") {
            return Ok(TimeZone::UTC);
        }
        TimeZone::get(name).map_err(|_| {
            format!("{name:?} is not a known IANA time zone; write a name like \"UTC\" or \"Europe/London\"")
        })
    }
}

/// A calendar date and wall-clock time, not yet placed in a zone.
#[derive(Clone, Copy, Debug)]
struct Civil {
    year: i32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    millis: u32,
}

impl Civil {
    /// Seconds since the epoch as if the wall-clock time were UTC; `None` for impossible dates.
    fn seconds_as_utc(&self) -> Option<i64> {
        if !(1..=12).contains(&self.month)
            || self.day == 0
            || self.day > days_in_month(self.year, self.month)
            || self.hour > 23
            || self.minute > 59
            || self.second > 59
        {
            return None;
        }
        let days = days_from_civil(i64::from(self.year), self.month, self.day);
        Some(
            days * 86_400
                + i64::from(self.hour) * 3600
                + i64::from(self.minute) * 60
                + i64::from(self.second),
        )
    }

    fn to_jiff(self) -> Option<DateTime> {
        DateTime::new(
            i16::try_from(self.year).ok()?,
            self.month as i8,
            self.day as i8,
            self.hour as i8,
            self.minute as i8,
            self.second as i8,
            0,
        )
        .ok()
    }
}

fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn digits(b: &[u8]) -> Option<u32> {
    let mut v: u32 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

/// `YYYY-MM-DD?HH:MM:SS` where `?` is one of `seps`.
fn parse_civil_prefix(b: &[u8], seps: &[u8]) -> Option<Civil> {
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !seps.contains(&b[10])
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    Some(Civil {
        year: digits(&b[0..4])? as i32,
        month: digits(&b[5..7])?,
        day: digits(&b[8..10])?,
        hour: digits(&b[11..13])?,
        minute: digits(&b[14..16])?,
        second: digits(&b[17..19])?,
        millis: 0,
    })
}

/// The offset part of an RFC 3339 time.
enum Offset {
    None,
    Seconds(i64),
}

/// Fast RFC 3339: `YYYY-MM-DDTHH:MM:SS[.fff…](Z|±HH:MM)?`. `None` means "not this shape", after which
/// the caller tries the general parser.
fn parse_rfc3339_fast(s: &str) -> Option<(Civil, Offset)> {
    let b = s.as_bytes();
    let mut civil = parse_civil_prefix(b, b"Tt ")?;
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        // Milliseconds are the unit of event time; finer digits do not change it.
        let frac = &b[start..i.min(start + 3)];
        let mut ms = digits(frac)?;
        for _ in frac.len()..3 {
            ms *= 10;
        }
        civil.millis = ms;
    }
    let offset = match &b[i..] {
        [] => Offset::None,
        [b'Z'] | [b'z'] => Offset::Seconds(0),
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let h = digits(&[*h1, *h2])?;
            let m = digits(&[*m1, *m2])?;
            if h > 23 || m > 59 {
                return None;
            }
            let secs = i64::from(h * 3600 + m * 60);
            Offset::Seconds(if *sign == b'-' { -secs } else { secs })
        }
        _ => return None,
    };
    Some((civil, offset))
}

/// Parses an RFC 3339 time that carries its offset; used for config values.
pub(crate) fn parse_rfc3339_utc(s: &str) -> Option<TimestampMs> {
    let s = s.trim();
    if let Some((civil, Offset::Seconds(off))) = parse_rfc3339_fast(s) {
        return Some((civil.seconds_as_utc()? - off) * 1000 + i64::from(civil.millis));
    }
    s.parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_millisecond())
}

/// Bound on the offset cache; a file spanning more civil hours than this just recomputes.
const MAX_CACHED_HOURS: usize = 1 << 16;

/// Turns time field values into epoch milliseconds.
pub(crate) struct TimeParser {
    format: TimeFormat,
    zone: TimeZone,
    zone_is_utc: bool,
    /// Civil hour (seconds-as-UTC / 3600) -> UTC offset in seconds, for hours with one offset
    /// throughout; hours around a DST change are never cached and resolved exactly.
    offsets: FxHashMap<i64, i64>,
    last_hour: Option<(i64, i64)>,
    /// RFC 3339 text must carry an offset or `Z`; wall-clock times are refused, not placed in `zone`.
    require_offset: bool,
}

impl TimeParser {
    pub(crate) fn new(format: &str, zone: &str) -> Result<TimeParser, String> {
        let zone = TimeZoneSpec::parse(zone)?;
        Ok(TimeParser {
            format: TimeFormat::parse(format)?,
            zone_is_utc: zone == TimeZone::UTC,
            zone,
            offsets: FxHashMap::default(),
            last_hour: None,
            require_offset: false,
        })
    }

    pub(crate) fn format(&self) -> &TimeFormat {
        &self.format
    }

    /// From now on, RFC 3339 text without an offset does not parse.
    pub(crate) fn require_offset(&mut self) {
        self.require_offset = true;
    }

    /// Whether `raw` is a date and time that would parse but for its missing offset.
    pub(crate) fn lacks_offset(&self, raw: &str) -> bool {
        let s = raw.trim();
        match parse_rfc3339_fast(s) {
            Some((civil, Offset::None)) => civil.seconds_as_utc().is_some(),
            Some((_, Offset::Seconds(_))) => false,
            None => s.parse::<jiff::Timestamp>().is_err() && s.parse::<DateTime>().is_ok(),
        }
    }

    /// A time written as text; `None` when it does not match the format.
    pub(crate) fn parse_text(&mut self, raw: &str) -> Option<TimestampMs> {
        let s = raw.trim();
        match &self.format {
            TimeFormat::UnixMs => crate::numbers::parse_int(s),
            TimeFormat::UnixS => topsellers_model::parse_decimal_minor(s, 3).ok(),
            TimeFormat::Rfc3339 => self.parse_rfc3339(s),
            TimeFormat::Strftime { common: true, .. } if s.len() == 19 => {
                match parse_civil_prefix(s.as_bytes(), b" ") {
                    Some(civil) => self.local_to_utc_ms(civil),
                    None => self.parse_strftime(s),
                }
            }
            TimeFormat::Strftime { .. } => self.parse_strftime(s),
        }
    }

    /// A time written as a JSON number: epoch seconds for `unix_s`, epoch milliseconds otherwise.
    pub(crate) fn parse_number(&mut self, n: &serde_json::Number) -> Option<TimestampMs> {
        match self.format {
            TimeFormat::UnixS => match n.as_i64() {
                Some(secs) => secs.checked_mul(1000),
                None => topsellers_model::parse_decimal_minor(&n.to_string(), 3).ok(),
            },
            _ => n.as_i64(),
        }
    }

    fn parse_rfc3339(&mut self, s: &str) -> Option<TimestampMs> {
        match parse_rfc3339_fast(s) {
            Some((civil, Offset::Seconds(off))) => {
                Some((civil.seconds_as_utc()? - off) * 1000 + i64::from(civil.millis))
            }
            Some((_, Offset::None)) if self.require_offset => None,
            Some((civil, Offset::None)) => self.local_to_utc_ms(civil),
            None => {
                if let Ok(t) = s.parse::<jiff::Timestamp>() {
                    return Some(t.as_millisecond());
                }
                if self.require_offset {
                    return None;
                }
                let dt = s.parse::<DateTime>().ok()?;
                self.zone
                    .to_ambiguous_timestamp(dt)
                    .compatible()
                    .ok()
                    .map(|t| t.as_millisecond())
            }
        }
    }

    fn parse_strftime(&mut self, s: &str) -> Option<TimestampMs> {
        let TimeFormat::Strftime { format, .. } = &self.format else {
            return None;
        };
        let parsed = jiff::fmt::strtime::parse(format.as_bytes(), s).ok()?;
        if let Ok(t) = parsed.to_timestamp() {
            return Some(t.as_millisecond());
        }
        let dt = parsed.to_datetime().ok()?;
        self.zone
            .to_ambiguous_timestamp(dt)
            .compatible()
            .ok()
            .map(|t| t.as_millisecond())
    }

    /// Places a wall-clock time in the configured zone. Ambiguous times (the repeated hour when
    /// clocks go back) take the earlier instant, and times in a gap the later offset, as jiff's
    /// "compatible" rule (and RFC 5545) do.
    fn local_to_utc_ms(&mut self, civil: Civil) -> Option<TimestampMs> {
        let local_secs = civil.seconds_as_utc()?;
        let millis = i64::from(civil.millis);
        if self.zone_is_utc {
            return Some(local_secs * 1000 + millis);
        }
        let hour = local_secs.div_euclid(3600);
        if let Some((h, off)) = self.last_hour {
            if h == hour {
                return Some((local_secs - off) * 1000 + millis);
            }
        }
        if let Some(&off) = self.offsets.get(&hour) {
            self.last_hour = Some((hour, off));
            return Some((local_secs - off) * 1000 + millis);
        }
        let dt = civil.to_jiff()?;
        let hour_start = dt.with().minute(0).second(0).build().ok()?;
        let hour_end = dt.with().minute(59).second(59).build().ok()?;
        let start = self.zone.to_ambiguous_timestamp(hour_start).offset();
        let end = self.zone.to_ambiguous_timestamp(hour_end).offset();
        if let (
            AmbiguousOffset::Unambiguous { offset: a },
            AmbiguousOffset::Unambiguous { offset: b },
        ) = (start, end)
        {
            if a == b {
                let off = i64::from(a.seconds());
                if self.offsets.len() >= MAX_CACHED_HOURS {
                    self.offsets.clear();
                }
                self.offsets.insert(hour, off);
                self.last_hour = Some((hour, off));
                return Some((local_secs - off) * 1000 + millis);
            }
        }
        let ts = self.zone.to_ambiguous_timestamp(dt).compatible().ok()?;
        Some(ts.as_millisecond() + millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(rfc: &str) -> i64 {
        rfc.parse::<jiff::Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn days_from_civil_matches_jiff() {
        for (y, m, d) in [(1970, 1, 1), (2000, 2, 29), (2011, 12, 31), (1969, 12, 31)] {
            let expected = jiff::civil::date(y as i16, m as i8, d as i8)
                .to_zoned(TimeZone::UTC)
                .unwrap()
                .timestamp()
                .as_second()
                / 86_400;
            assert_eq!(days_from_civil(i64::from(y), m, d), expected);
        }
    }

    #[test]
    fn rfc3339_fast_and_slow_paths_agree() {
        let mut p = TimeParser::new("rfc3339", "UTC").unwrap();
        assert_eq!(
            p.parse_text("2011-01-31T08:26:00Z"),
            Some(ms("2011-01-31T08:26:00Z"))
        );
        assert_eq!(
            p.parse_text("2011-01-31T08:26:00.123456+01:30"),
            Some(ms("2011-01-31T06:56:00.123Z"))
        );
        // Shapes only the general parser reads.
        assert_eq!(
            p.parse_text("2011-01-31T08:26Z"),
            Some(ms("2011-01-31T08:26:00Z"))
        );
        assert_eq!(
            p.parse_text("2011-01-31 08:26:00"),
            Some(ms("2011-01-31T08:26:00Z"))
        );
        for bad in [
            "2011-02-30T08:26:00Z",
            "2011-01-31T25:00:00Z",
            "yesterday",
            "",
        ] {
            assert_eq!(p.parse_text(bad), None, "{bad}");
        }
    }

    #[test]
    fn london_winter_and_summer() {
        let mut p = TimeParser::new("%Y-%m-%d %H:%M:%S", "Europe/London").unwrap();
        assert_eq!(
            p.parse_text("2011-01-18 10:01:00"),
            Some(ms("2011-01-18T10:01:00Z"))
        );
        assert_eq!(
            p.parse_text("2011-07-18 10:01:00"),
            Some(ms("2011-07-18T09:01:00Z"))
        );
        // Cached hour gives the same answer as the first lookup.
        assert_eq!(
            p.parse_text("2011-07-18 10:59:59"),
            Some(ms("2011-07-18T09:59:59Z"))
        );
        // Clocks go back at 02:00 BST on 2011-10-30: 01:30 happens twice, the earlier (BST) is taken.
        assert_eq!(
            p.parse_text("2011-10-30 01:30:00"),
            Some(ms("2011-10-30T00:30:00Z"))
        );
        // Clocks go forward at 01:00 GMT on 2011-03-27: 01:30 does not exist, read with the GMT offset.
        assert_eq!(
            p.parse_text("2011-03-27 01:30:00"),
            Some(ms("2011-03-27T01:30:00Z"))
        );
        assert_eq!(
            p.parse_text("2011-03-27 02:30:00"),
            Some(ms("2011-03-27T01:30:00Z"))
        );
    }

    #[test]
    fn other_formats() {
        let mut p = TimeParser::new("unix_s", "UTC").unwrap();
        assert_eq!(p.parse_text("1700000000.5"), Some(1_700_000_000_500));
        assert_eq!(
            p.parse_number(&serde_json::Number::from(1_700_000_000)),
            Some(1_700_000_000_000)
        );
        let mut p = TimeParser::new("unix_ms", "UTC").unwrap();
        assert_eq!(p.parse_text(" 1700000000000 "), Some(1_700_000_000_000));
        assert_eq!(p.parse_text("1.5"), None);
        let mut p = TimeParser::new("%d/%m/%Y %H:%M", "Europe/London").unwrap();
        assert_eq!(
            p.parse_text("18/07/2011 10:01"),
            Some(ms("2011-07-18T09:01:00Z"))
        );
        assert!(TimeParser::new("%Q%Q%!", "UTC").is_err());
        assert!(TimeParser::new("rfc3339", "Nowhere/Special").is_err());
    }
}
