//! Personal data in free text: e-mail addresses (also with the `@` percent-encoded as `%40`),
//! payment card numbers, IBANs (counted and marked as `card`, the payment-details kind), phone
//! numbers and IP addresses are found in the kept text fields (item name, category, country) and replaced by a
//! marker (`[email]`, `[card]`, `[phone]`, `[ip]`), so that nothing a shopper typed into a product
//! note reaches a store, a log or an API response.
//!
//! Speed matters more than cleverness here: every record's name passes through [`scrub`], so a
//! single pass over the bytes first decides whether any detector could match at all (an `@`, a
//! `:` between hex digits, or enough digits), and the ordinary product name ("WHITE HANGING HEART
//! T-LIGHT HOLDER") is returned borrowed without further work.
//!
//! The detectors lean towards leaving product text alone where a rule would otherwise bite on
//! ordinary names: product codes glued to letters (`85123A`), sizes (`30x40 cm`), years and dates,
//! and long bare digit runs without a card's checksum are not personal data.

use std::borrow::Cow;
use std::fmt;
use std::net::Ipv6Addr;

/// A kind of personal data the scrubber recognises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PiiKind {
    Email,
    Card,
    Phone,
    Ip,
}

impl PiiKind {
    /// The metric label: `email`, `card`, `phone`, `ip`.
    pub fn as_str(self) -> &'static str {
        match self {
            PiiKind::Email => "email",
            PiiKind::Card => "card",
            PiiKind::Phone => "phone",
            PiiKind::Ip => "ip",
        }
    }

    /// What replaces an occurrence in text.
    pub fn marker(self) -> &'static str {
        match self {
            PiiKind::Email => "[email]",
            PiiKind::Card => "[card]",
            PiiKind::Phone => "[phone]",
            PiiKind::Ip => "[ip]",
        }
    }

    /// How the kind reads in a message: "an e-mail address".
    pub fn description(self) -> &'static str {
        match self {
            PiiKind::Email => "an e-mail address",
            PiiKind::Card => "a payment card or bank account number",
            PiiKind::Phone => "a phone number",
            PiiKind::Ip => "an IP address",
        }
    }
}

impl fmt::Display for PiiKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many occurrences of each kind were redacted (or, in ids, refused).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Redactions {
    pub email: u64,
    pub card: u64,
    pub phone: u64,
    pub ip: u64,
}

impl Redactions {
    pub fn total(&self) -> u64 {
        self.email + self.card + self.phone + self.ip
    }

    pub fn add(&mut self, kind: PiiKind) {
        match kind {
            PiiKind::Email => self.email += 1,
            PiiKind::Card => self.card += 1,
            PiiKind::Phone => self.phone += 1,
            PiiKind::Ip => self.ip += 1,
        }
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Redactions) {
        self.email += other.email;
        self.card += other.card;
        self.phone += other.phone;
        self.ip += other.ip;
    }

    /// The count of one kind.
    pub fn get(&self, kind: PiiKind) -> u64 {
        match kind {
            PiiKind::Email => self.email,
            PiiKind::Card => self.card,
            PiiKind::Phone => self.phone,
            PiiKind::Ip => self.ip,
        }
    }
}

/// Fewest digits any numeric detector needs: a phone has at least 9, a card 13, an IPv4 address 4
/// (with three dots).
const MIN_PHONE_DIGITS: usize = 9;
const MAX_PHONE_DIGITS: usize = 15;
const MIN_CARD_DIGITS: usize = 13;
const MAX_CARD_DIGITS: usize = 19;
/// An IBAN: 2 letters, 2 check digits, 11 to 30 letters and digits.
const MIN_IBAN_LEN: usize = 15;
const MAX_IBAN_LEN: usize = 34;
const MIN_IBAN_DIGITS: usize = 4;

/// What the one cheap pass over the text found.
struct Hints {
    at: bool,
    /// A `%`: maybe `%40`, a percent-encoded `@`.
    percent: bool,
    /// Capital letters, which an IBAN starts with.
    upper: bool,
    colon: bool,
    dots: usize,
    digits: usize,
}

impl Hints {
    fn of(b: &[u8]) -> Hints {
        let mut h = Hints {
            at: false,
            percent: false,
            upper: false,
            colon: false,
            dots: 0,
            digits: 0,
        };
        for &c in b {
            match c {
                b'0'..=b'9' => h.digits += 1,
                b'@' => h.at = true,
                b'%' => h.percent = true,
                b'A'..=b'Z' => h.upper = true,
                b':' => h.colon = true,
                b'.' => h.dots += 1,
                _ => {}
            }
        }
        h
    }

    fn maybe_email(&self) -> bool {
        self.at || self.percent
    }

    /// An IBAN has 2 check digits and an account number: surely 4 digits, and 15 characters.
    fn maybe_iban(&self, len: usize) -> bool {
        self.upper && self.digits >= MIN_IBAN_DIGITS && len >= MIN_IBAN_LEN
    }

    fn maybe_ipv6(&self) -> bool {
        self.colon
    }

    fn maybe_numeric(&self) -> bool {
        self.digits >= MIN_PHONE_DIGITS || (self.digits >= 4 && self.dots >= 3)
    }

    fn any(&self, len: usize) -> bool {
        self.maybe_email() || self.maybe_ipv6() || self.maybe_numeric() || self.maybe_iban(len)
    }
}

/// A found occurrence: byte range and kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    start: usize,
    end: usize,
    kind: PiiKind,
}

/// Replaces every occurrence of personal data in `text` with its kind's marker and counts it.
/// Borrows `text` back when there was nothing to replace.
pub fn scrub<'a>(text: &'a str, counts: &mut Redactions) -> Cow<'a, str> {
    let hints = Hints::of(text.as_bytes());
    if !hints.any(text.len()) {
        return Cow::Borrowed(text);
    }
    let spans = find(text, &hints);
    if spans.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for span in spans {
        out.push_str(&text[at..span.start]);
        out.push_str(span.kind.marker());
        counts.add(span.kind);
        at = span.end;
    }
    out.push_str(&text[at..]);
    Cow::Owned(out)
}

/// The kind of the first personal data found in `text`, if any; for ids, which cannot be
/// redacted.
pub fn detect(text: &str) -> Option<PiiKind> {
    let hints = Hints::of(text.as_bytes());
    if !hints.any(text.len()) {
        return None;
    }
    find(text, &hints).first().map(|s| s.kind)
}

/// Every occurrence, sorted and without overlaps (e-mail addresses win over the digits in them,
/// then IBANs, then IP addresses, then cards, then phones).
fn find(text: &str, hints: &Hints) -> Vec<Span> {
    let b = text.as_bytes();
    let mut spans: Vec<Span> = Vec::new();
    if hints.maybe_email() {
        find_emails(b, &mut spans);
    }
    if hints.maybe_iban(b.len()) {
        find_ibans(b, &mut spans);
    }
    if hints.maybe_ipv6() {
        find_ipv6(text, &mut spans);
    }
    if hints.maybe_numeric() {
        find_numeric(b, &mut spans);
    }
    spans.sort_by_key(|s| s.start);
    // Earlier detectors were pushed first; drop any later span that overlaps a kept one.
    let mut kept: Vec<Span> = Vec::with_capacity(spans.len());
    for s in spans {
        if kept.last().is_some_and(|k| s.start < k.end) {
            continue;
        }
        kept.push(s);
    }
    kept
}

fn overlaps(spans: &[Span], start: usize, end: usize) -> bool {
    spans.iter().any(|s| start < s.end && s.start < end)
}

fn is_local_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-' | b'\'')
}

fn is_domain_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-')
}

/// `local@domain.tld`, ASCII, with a top-level domain of at least two letters; the `@` may be
/// percent-encoded (`someone%40example.com`, as in a URL or form data).
fn find_emails(b: &[u8], spans: &mut Vec<Span>) {
    let plain = memchr::memchr_iter(b'@', b).map(|at| (at, 1));
    let encoded = memchr::memmem::find_iter(b, b"%40").map(|at| (at, 3));
    let mut ats: Vec<(usize, usize)> = plain.chain(encoded).collect();
    ats.sort_unstable();
    for (at, at_len) in ats {
        if overlaps(spans, at, at + at_len) {
            continue;
        }
        let mut start = at;
        while start > 0 && is_local_char(b[start - 1]) {
            start -= 1;
        }
        // A local part does not start with a dot (a sentence's full stop before it).
        while start < at && b[start] == b'.' {
            start += 1;
        }
        if start == at {
            continue;
        }
        let mut end = at + at_len;
        while end < b.len() && is_domain_char(b[end]) {
            end += 1;
        }
        // A full stop or dash after the address is not part of it.
        while end > at + at_len && matches!(b[end - 1], b'.' | b'-') {
            end -= 1;
        }
        let domain = &b[at + at_len..end];
        let Some(last_dot) = domain.iter().rposition(|&c| c == b'.') else {
            continue;
        };
        let tld = &domain[last_dot + 1..];
        let labels_ok = domain.split(|&c| c == b'.').all(|l| !l.is_empty());
        if tld.len() >= 2 && tld.iter().all(u8::is_ascii_alphabetic) && labels_ok {
            spans.push(Span {
                start,
                end,
                kind: PiiKind::Email,
            });
        }
    }
}

/// IBANs: 2 capital letters, 2 check digits and 11 to 30 capital letters and digits, written
/// together (`GB82WEST12345698765432`) or in groups of 4 with single spaces
/// (`GB82 WEST 1234 5698 7654 32`), standing alone (no letter or digit glued on), of the length
/// its country's IBANs have and passing the mod-97 check (ISO 13616), which ordinary product
/// codes fail 96 times in 97.
fn find_ibans(b: &[u8], spans: &mut Vec<Span>) {
    let is_alnum = |c: u8| c.is_ascii_uppercase() || c.is_ascii_digit();
    let mut i = 0;
    while i + MIN_IBAN_LEN <= b.len() {
        let starts = b[i].is_ascii_uppercase()
            && b[i + 1].is_ascii_uppercase()
            && b[i + 2].is_ascii_digit()
            && b[i + 3].is_ascii_digit()
            && (i == 0 || !b[i - 1].is_ascii_alphanumeric());
        if !starts {
            i += 1;
            continue;
        }
        // Ends of candidate IBANs (after the last character), longest last.
        let mut ends: Vec<usize> = Vec::new();
        let mut chars: Vec<u8> = b[i..i + 4].to_vec();
        let mut at = i + 4;
        if at < b.len() && b[at] == b' ' {
            // Groups of 4 after single spaces; only the last may be shorter.
            while at < b.len() && b[at] == b' ' && chars.len() < MAX_IBAN_LEN {
                let group = b[at + 1..].iter().take_while(|&&c| is_alnum(c)).count();
                if group == 0 || group > 4 || chars.len() + group > MAX_IBAN_LEN {
                    break;
                }
                let end = at + 1 + group;
                if b.get(end).is_some_and(|c| c.is_ascii_alphanumeric()) {
                    break;
                }
                chars.extend_from_slice(&b[at + 1..end]);
                ends.push(end);
                at = end;
                if group < 4 {
                    break;
                }
            }
        } else {
            let run = b[at..].iter().take_while(|&&c| is_alnum(c)).count();
            let end = at + run;
            if !b.get(end).is_some_and(|c| c.is_ascii_alphanumeric()) {
                chars.extend_from_slice(&b[at..end]);
                ends.push(end);
            }
        }
        // The longest prefix of whole groups that is a valid IBAN.
        let mut found = None;
        for &end in ends.iter().rev() {
            let len = (i..end).filter(|&k| b[k] != b' ').count();
            if iban_len(&b[i..i + 2]) == Some(len) && iban_checks(&chars[..len]) {
                found = Some(end);
                break;
            }
        }
        match found {
            Some(end) => {
                push(spans, i, end, PiiKind::Card);
                i = end;
            }
            None => i += 1,
        }
    }
}

/// The length of an IBAN of country `code` (ISO 13616 registry), `None` for a country without
/// IBANs: each country has one fixed length, which keeps product codes that merely look alike out.
fn iban_len(code: &[u8]) -> Option<usize> {
    Some(match code {
        b"NO" => 15,
        b"BE" => 16,
        b"DK" | b"FI" | b"FK" | b"FO" | b"GL" | b"NL" | b"SD" => 18,
        b"MK" | b"SI" => 19,
        b"AT" | b"BA" | b"EE" | b"KZ" | b"LT" | b"LU" | b"MN" | b"XK" => 20,
        b"CH" | b"HR" | b"LI" | b"LV" => 21,
        b"BG" | b"BH" | b"CR" | b"DE" | b"GB" | b"GE" | b"IE" | b"ME" | b"RS" | b"VA" => 22,
        b"AE" | b"GI" | b"IL" | b"IQ" | b"OM" | b"SO" | b"TL" => 23,
        b"AD" | b"CZ" | b"ES" | b"MD" | b"PK" | b"RO" | b"SA" | b"SE" | b"SK" | b"TN" | b"VG" => 24,
        b"LY" | b"PT" | b"ST" => 25,
        b"IS" | b"TR" => 26,
        b"BI" | b"BL" | b"DJ" | b"FR" | b"GF" | b"GP" | b"GR" | b"IT" | b"MC" | b"MF" | b"MQ"
        | b"MR" | b"NC" | b"PF" | b"PM" | b"RE" | b"SM" | b"TF" | b"WF" | b"YT" => 27,
        b"AL" | b"AZ" | b"BY" | b"CY" | b"DO" | b"GT" | b"HU" | b"LB" | b"NI" | b"PL" | b"SV" => 28,
        b"BR" | b"EG" | b"PS" | b"QA" | b"UA" => 29,
        b"JO" | b"KW" | b"MU" | b"YE" => 30,
        b"MT" | b"SC" => 31,
        b"LC" => 32,
        b"RU" => 33,
        _ => return None,
    })
}

/// ISO 13616: the first four characters moved to the end, letters as 10 to 35, the number mod 97
/// is 1.
fn iban_checks(chars: &[u8]) -> bool {
    let mut rest = 0u32;
    for &c in chars[4..].iter().chain(&chars[..4]) {
        rest = match c {
            b'0'..=b'9' => (rest * 10 + u32::from(c - b'0')) % 97,
            b'A'..=b'Z' => (rest * 100 + u32::from(c - b'A') + 10) % 97,
            _ => return false,
        };
    }
    rest == 1
}

/// Runs of hex digits, colons and dots with at least two colons that parse as an IPv6 address.
fn find_ipv6(text: &str, spans: &mut Vec<Span>) {
    let b = text.as_bytes();
    let is_part = |c: u8| c.is_ascii_hexdigit() || c == b':' || c == b'.';
    let mut i = 0;
    while i < b.len() {
        if !is_part(b[i]) {
            i += 1;
            continue;
        }
        let mut end = i;
        while end < b.len() && is_part(b[end]) {
            end += 1;
        }
        let (mut s, mut e) = (i, end);
        // Glued to a word ("ABC::1" inside "XABC::1") it is not an address.
        let glued = (s > 0 && b[s - 1].is_ascii_alphanumeric())
            || (e < b.len() && b[e].is_ascii_alphanumeric());
        while e > s && matches!(b[e - 1], b'.' | b':') && !text[s..e].ends_with("::") {
            e -= 1;
        }
        while s < e && b[s] == b'.' {
            s += 1;
        }
        let candidate = &text[s..e];
        if !glued
            && candidate.bytes().filter(|&c| c == b':').count() >= 2
            && candidate.bytes().any(|c| c.is_ascii_hexdigit())
            && candidate.parse::<Ipv6Addr>().is_ok()
        {
            spans.push(Span {
                start: s,
                end: e,
                kind: PiiKind::Ip,
            });
        }
        i = end;
    }
}

/// One group of digits inside a numeric run, and the separator before it.
#[derive(Clone, Copy, Debug)]
struct Group {
    start: usize,
    end: usize,
    /// The separator bytes between the previous group and this one (empty for the first).
    sep_start: usize,
    /// The group was written in parentheses: `(555)`.
    parens: bool,
}

impl Group {
    fn len(&self) -> usize {
        self.end - self.start
    }
}

fn is_sep(c: u8) -> bool {
    matches!(c, b' ' | b'-' | b'.' | b'(' | b')')
}

/// Numeric runs: digit groups joined by short separators (` `, `-`, `.`, parentheses), maybe with a
/// leading `+`. Each run is checked for an IPv4 address, then card numbers, then phone numbers.
fn find_numeric(b: &[u8], spans: &mut Vec<Span>) {
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        // Glued to letters on the left (`A85123`, `30x40`) it is a code or a size, not a number.
        if i > 0 && (b[i - 1].is_ascii_alphabetic() || b[i - 1] == b'_') {
            while i < b.len() && b[i].is_ascii_alphanumeric() {
                i += 1;
            }
            continue;
        }
        let mut groups: Vec<Group> = Vec::new();
        let mut j = i;
        let mut sep_start = i;
        loop {
            let start = j;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let parens = start > 0
                && b[start - 1] == b'('
                && j < b.len()
                && b[j] == b')'
                && sep_start < start;
            groups.push(Group {
                start,
                end: j,
                sep_start,
                parens,
            });
            // At most two separator bytes (`) `, ` (`, ` - ` is three and ends the run).
            let mut k = j;
            while k < b.len() && k - j < 3 && is_sep(b[k]) {
                k += 1;
            }
            if k > j && k < b.len() && b[k].is_ascii_digit() && valid_sep(&b[j..k]) {
                sep_start = j;
                j = k;
            } else {
                break;
            }
        }
        let run_end = j;
        // Glued to letters on the right (`85123A`) the last group is part of a code.
        let glued_right =
            run_end < b.len() && (b[run_end].is_ascii_alphabetic() || b[run_end] == b'_');
        let plus = i > 0 && b[i - 1] == b'+' && (i < 2 || !b[i - 2].is_ascii_alphanumeric());
        let open_paren = i > 0 && b[i - 1] == b'(';
        if glued_right {
            groups.pop();
        }
        if !groups.is_empty() {
            check_run(b, &groups, plus, open_paren, spans);
        }
        i = run_end.max(i + 1);
    }
}

/// Separators between two digit groups: one of ` `, `-`, `.`, or a parenthesis with a space.
fn valid_sep(sep: &[u8]) -> bool {
    matches!(
        sep,
        b" " | b"-" | b"." | b") " | b")" | b" (" | b"(" | b")-" | b" - "
    )
}

fn check_run(b: &[u8], groups: &[Group], plus: bool, open_paren: bool, spans: &mut Vec<Span>) {
    // IPv4: exactly four dot-separated groups of at most three digits, each at most 255.
    if groups.len() >= 4 {
        for w in 0..=groups.len() - 4 {
            let g = &groups[w..w + 4];
            let dotted = g[1..].iter().all(|x| &b[x.sep_start..x.start] == b".");
            let before_ok = w == 0 || &b[g[0].sep_start..g[0].start] != b".";
            let after_ok =
                w + 4 == groups.len() || &b[groups[w + 4].sep_start..groups[w + 4].start] != b".";
            if dotted
                && before_ok
                && after_ok
                && g.iter().all(|x| x.len() <= 3 && value(b, x) <= 255)
            {
                push(spans, g[0].start, g[3].end, PiiKind::Ip);
            }
        }
    }
    // Cards, then phones: the longest window of groups from each start that fits.
    let n = groups.len();
    let mut from = 0;
    while from < n {
        let mut matched = None;
        for to in (from..n).rev() {
            let window = &groups[from..=to];
            if is_card(b, window) {
                matched = Some((to, PiiKind::Card));
                break;
            }
        }
        if matched.is_none() {
            for to in (from..n).rev() {
                let lead_plus = from == 0 && plus;
                let lead_paren = from == 0 && open_paren;
                if is_phone(b, groups, from, to, lead_plus, lead_paren) {
                    matched = Some((to, PiiKind::Phone));
                    break;
                }
            }
        }
        match matched {
            Some((to, kind)) => {
                let mut start = groups[from].start;
                if kind == PiiKind::Phone
                    && ((from == 0 && (plus || open_paren)) || groups[from].parens)
                {
                    start -= 1;
                }
                let mut end = groups[to].end;
                if groups[to].parens && end < b.len() && b[end] == b')' {
                    end += 1;
                }
                push(spans, start, end, kind);
                from = to + 1;
            }
            None => from += 1,
        }
    }
}

fn push(spans: &mut Vec<Span>, start: usize, end: usize, kind: PiiKind) {
    if !overlaps(spans, start, end) {
        spans.push(Span { start, end, kind });
    }
}

fn value(b: &[u8], g: &Group) -> u64 {
    b[g.start..g.end].iter().fold(0u64, |v, &c| {
        v.saturating_mul(10).saturating_add(u64::from(c - b'0'))
    })
}

fn digits_of(b: &[u8], window: &[Group]) -> Vec<u8> {
    window
        .iter()
        .flat_map(|g| b[g.start..g.end].iter().map(|&c| c - b'0'))
        .collect()
}

fn seps<'a>(b: &'a [u8], window: &'a [Group]) -> impl Iterator<Item = &'a [u8]> + 'a {
    window[1..].iter().map(move |g| &b[g.sep_start..g.start])
}

/// 13 to 19 digits passing the Luhn check, bare or in groups of 4 to 6 joined by one kind of
/// separator (`4111 1111 1111 1111`, `3782-822463-10005`). A bare 13-digit number with a valid
/// GTIN-13 check digit is a barcode (an EAN used as a SKU), not a card.
fn is_card(b: &[u8], window: &[Group]) -> bool {
    let digits = digits_of(b, window);
    if !(MIN_CARD_DIGITS..=MAX_CARD_DIGITS).contains(&digits.len()) {
        return false;
    }
    if window.len() > 1 {
        let mut kinds = seps(b, window);
        let first = kinds.next().unwrap_or_default();
        if !(first == b" " || first == b"-") || !seps(b, window).all(|s| s == first) {
            return false;
        }
        if window[0].len() != 4 || window.iter().any(|g| g.len() > 6 || g.len() < 3) {
            return false;
        }
    }
    if !luhn(&digits) {
        return false;
    }
    !(window.len() == 1 && digits.len() == 13 && gtin(&digits))
}

fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, &d) in digits.iter().rev().enumerate() {
        let d = u32::from(d);
        sum += if i % 2 == 1 {
            let x = d * 2;
            if x > 9 {
                x - 9
            } else {
                x
            }
        } else {
            d
        };
    }
    sum.is_multiple_of(10)
}

/// The GTIN check digit (EAN-13, GTIN-14): weights 3 and 1 alternating from the right.
fn gtin(digits: &[u8]) -> bool {
    let Some((&check, body)) = digits.split_last() else {
        return false;
    };
    let sum: u32 = body
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| u32::from(d) * if i % 2 == 0 { 3 } else { 1 })
        .sum();
    (10 - sum % 10) % 10 == u32::from(check)
}

fn is_year(b: &[u8], g: &Group) -> bool {
    g.len() == 4 && matches!(&b[g.start..g.start + 2], b"19" | b"20")
}

/// 9 to 15 digits with phone punctuation: a leading `+` (`+44 20 7946 0958`), an area code in
/// parentheses (`(555) 123-4567`), or groups joined by one kind of separator (`555-123-4567`,
/// `020 7946 0958`, `01 23 45 67 89`). Bare digit strings, dates, lists of years and codes like
/// `INV-2024-000123` are not phones.
fn is_phone(
    b: &[u8],
    groups: &[Group],
    from: usize,
    to: usize,
    plus: bool,
    open_paren: bool,
) -> bool {
    let window = &groups[from..=to];
    let count: usize = window.iter().map(Group::len).sum();
    if !(MIN_PHONE_DIGITS..=MAX_PHONE_DIGITS).contains(&count) {
        return false;
    }
    // The character before the number: a code's prefix (`INV-`, `v1.`) makes it part of a code.
    let first = window[0];
    let lead = if plus || open_paren {
        first.start.saturating_sub(1)
    } else {
        first.start
    };
    if lead > 0 {
        let before = b[lead - 1];
        let glued = matches!(before, b'-' | b'.' | b'/' | b'#' | b'_')
            && lead >= 2
            && b[lead - 2].is_ascii_alphanumeric();
        if glued || before.is_ascii_alphanumeric() {
            return false;
        }
    }
    let last = window[window.len() - 1];
    if let Some(&after) = b.get(last.end) {
        if matches!(after, b'-' | b'/' | b'_') || after.is_ascii_alphanumeric() {
            return false;
        }
    }
    if plus {
        return window.len() > 1 || count >= 10;
    }
    if window.len() < 2 {
        return false;
    }
    let parens = open_paren || window.iter().any(|g| g.parens);
    if parens {
        return window.iter().skip(1).all(|g| g.len() >= 2);
    }
    let mut kinds = seps(b, window);
    let sep = kinds.next().unwrap_or_default();
    if !seps(b, window).all(|s| s == sep) {
        return false;
    }
    // Part of a longer run in the same style (`4111 1111 1111 1112`, a card failing Luhn) is not
    // a phone on its own; a run that changes style (`555-123-4567 12`) may hold one.
    let sep_before = (from > 0).then(|| &b[groups[from].sep_start..groups[from].start]);
    let sep_after = groups.get(to + 1).map(|g| &b[g.sep_start..g.start]);
    if sep_before == Some(sep) || sep_after == Some(sep) {
        return false;
    }
    if window.iter().any(|g| g.len() < 2) || window.len() > 6 {
        return false;
    }
    match sep {
        b" " => {
            if window.iter().all(|g| is_year(b, g)) {
                return false;
            }
            window.iter().all(|g| g.len() <= 8)
        }
        b"-" | b"." => {
            // A year first (`2024-06-01-0001`, `2024.000123.45`) is a date or a dated code.
            if is_year(b, &window[0]) {
                return false;
            }
            // Day-month-year.
            if window.len() >= 3
                && window[0].len() <= 2
                && window[1].len() <= 2
                && is_year(b, &window[2])
            {
                return false;
            }
            window.len() >= 3 && window.iter().all(|g| g.len() <= 4)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrubbed(text: &str) -> (String, Redactions) {
        let mut counts = Redactions::default();
        let out = scrub(text, &mut counts).into_owned();
        (out, counts)
    }

    #[track_caller]
    fn untouched(text: &str) {
        let (out, counts) = scrubbed(text);
        assert_eq!(out, text, "{text:?} was changed");
        assert_eq!(counts.total(), 0, "{text:?}");
        assert_eq!(detect(text), None, "{text:?}");
    }

    #[track_caller]
    fn becomes(text: &str, expected: &str, kind: PiiKind) {
        let (out, counts) = scrubbed(text);
        assert_eq!(out, expected, "{text:?}");
        assert!(counts.get(kind) >= 1, "{text:?}: {counts:?}");
        assert!(detect(text).is_some(), "{text:?}");
    }

    #[test]
    fn real_product_names_are_untouched() {
        for name in [
            "WHITE HANGING HEART T-LIGHT HOLDER",
            "SET 7 BABUSHKA NESTING BOXES",
            "PACK OF 72 RETROSPOT CAKE CASES",
            "60 TEATIME FAIRY CAKE CASES",
            "3 STRIPEY MICE FELTCRAFT",
            "JUMBO BAG 50'S CHRISTMAS",
            "WHITE METAL LANTERN",
            "CREAM CUPID HEARTS COAT HANGER",
            "KNITTED UNION FLAG HOT WATER BOTTLE",
            "SET/6 RED SPOTTY PAPER CUPS",
            "ASSORTED COLOUR BIRD ORNAMENT",
            "POPPY'S PLAYHOUSE BEDROOM",
            "FELTCRAFT PRINCESS CHARLOTTE DOLL",
            "BOX OF 6 ASSORTED COLOUR TEASPOONS",
            "SET OF 3 CAKE TINS PANTRY DESIGN",
            "GLASS STAR FROSTED T-LIGHT HOLDER",
            "SET 2 TEA TOWELS I LOVE LONDON",
            "PAPER CHAIN KIT 50'S CHRISTMAS",
            "HAND WARMER RED POLKA DOT",
            "RED 3 PIECE RETROSPOT CUTLERY SET",
            "ASSTD DESIGN 3D PAPER STICKERS",
            "15CM CHRISTMAS GLASS BALL 20 LIGHTS",
            "PICTURE FRAME 30x40 cm",
            "SET OF 12 3 6 9 10 12",
            "CALENDAR 2010 2011 2012",
            "CHRISTMAS 2010-2011 12 PACK",
            "85123A",
            "84029G",
            "DOORMAT 60 x 90 cm",
            "VINTAGE 1950'S 1960'S STYLE",
            "Version 1.2.3",
            "10:30:00",
            "Price: 12.50 / 3 for 30.00",
            "Sale 2011-12-09 10:00",
            "order 2024-06-01-0001",
            "INV-2024-000123",
            "ORD-000123-456-789",
            "EAN 5012345678900",
            "12345678",
            "email us @ the shop",
            "A@B",
            "@shop",
            "",
            "United Kingdom",
            "EIRE",
            "home/garden",
            "Ünïcödé 名前 テスト",
        ] {
            untouched(name);
        }
    }

    #[test]
    fn emails() {
        becomes(
            "for jane.doe@example.com thanks",
            "for [email] thanks",
            PiiKind::Email,
        );
        becomes("J_O+tag@mail.example.co.uk.", "[email].", PiiKind::Email);
        becomes("a@b.io,c@d.org", "[email],[email]", PiiKind::Email);
        untouched("user@localhost");
        untouched("x@y.z1");
    }

    #[test]
    fn percent_encoded_emails() {
        becomes("someone%40example.com", "[email]", PiiKind::Email);
        becomes(
            "mailto=jane.doe%40mail.example.co.uk&x=1",
            "mailto=[email]&x=1",
            PiiKind::Email,
        );
        becomes("a%40b.io a@b.io", "[email] [email]", PiiKind::Email);
        untouched("100%40 cotton");
        untouched("save 20%40%");
        untouched("x%40y");
    }

    #[test]
    fn ibans() {
        becomes("GB82WEST12345698765432", "[card]", PiiKind::Card);
        becomes("GB82 WEST 1234 5698 7654 32", "[card]", PiiKind::Card);
        becomes(
            "pay to DE89 3704 0044 0532 0130 00 please",
            "pay to [card] please",
            PiiKind::Card,
        );
        becomes(
            "iban: FR1420041010050500013M02606.",
            "iban: [card].",
            PiiKind::Card,
        );
        becomes(
            "NL91ABNA0417164300, BE68539007547034",
            "[card], [card]",
            PiiKind::Card,
        );
        // 30 characters of account number, spaced: the longest form.
        becomes(
            "MT84 MALT 0110 0001 2345 MTLC AST0 01S",
            "[card]",
            PiiKind::Card,
        );
        // A group of 4 after the IBAN that is not part of it.
        becomes(
            "GB82 WEST 1234 5698 7654 32 SETS",
            "[card] SETS",
            PiiKind::Card,
        );
        // Wrong check digits, glued to other text, too short, lower case.
        untouched("GB83WEST12345698765432");
        untouched("XGB82WEST12345698765432");
        untouched("GB82WEST12345698765432X2");
        untouched("GB82WEST1234");
        untouched("gb82west12345698765432");
        // Check digits right, but no such country, or not its length.
        untouched("ZZ33WEST12345698765432");
        untouched("GB49WEST123456987654321");
        untouched("AB12 CDEF GHIJ KLMN OPQR");
    }

    #[test]
    fn cards() {
        becomes("4111111111111111", "[card]", PiiKind::Card);
        becomes(
            "card 4111 1111 1111 1111 exp 12/25",
            "card [card] exp 12/25",
            PiiKind::Card,
        );
        becomes("5500-0000-0000-0004", "[card]", PiiKind::Card);
        becomes("amex 3782 822463 10005", "amex [card]", PiiKind::Card);
        becomes("(4242424242424242)", "([card])", PiiKind::Card);
        // Fails Luhn: not a card (and too long for a phone).
        untouched("4111111111111112");
        untouched("4111 1111 1111 1112");
    }

    #[test]
    fn phones() {
        becomes(
            "call +44 20 7946 0958 now",
            "call [phone] now",
            PiiKind::Phone,
        );
        becomes("(555) 123-4567", "[phone]", PiiKind::Phone);
        becomes("tel: 555-123-4567", "tel: [phone]", PiiKind::Phone);
        becomes("555.123.4567", "[phone]", PiiKind::Phone);
        becomes("020 7946 0958", "[phone]", PiiKind::Phone);
        becomes("+1-555-123-4567", "[phone]", PiiKind::Phone);
        becomes("+14155552671", "[phone]", PiiKind::Phone);
        becomes("01 23 45 67 89", "[phone]", PiiKind::Phone);
        becomes("07700 900123", "[phone]", PiiKind::Phone);
        becomes("+44 (0)20 7946 0958", "[phone]", PiiKind::Phone);
        becomes(
            "Gift for Ann, 555-123-4567.",
            "Gift for Ann, [phone].",
            PiiKind::Phone,
        );
        untouched("5551234567");
        untouched("555-1234");
    }

    #[test]
    fn ip_addresses() {
        becomes("from 192.168.1.10", "from [ip]", PiiKind::Ip);
        becomes("8.8.8.8.", "[ip].", PiiKind::Ip);
        becomes(
            "addr 2001:db8::8a2e:370:7334 seen",
            "addr [ip] seen",
            PiiKind::Ip,
        );
        becomes("::1", "[ip]", PiiKind::Ip);
        becomes("fe80::1ff:fe23:4567:890a", "[ip]", PiiKind::Ip);
        untouched("256.1.1.1");
        untouched("1.2.3");
        untouched("1.2.3.4.5");
        untouched("12:30");
    }

    #[test]
    fn counts_every_occurrence() {
        let (out, counts) = scrubbed("a@b.com 4111111111111111 555-123-4567 10.0.0.1 b@c.org");
        assert_eq!(out, "[email] [card] [phone] [ip] [email]");
        assert_eq!(
            counts,
            Redactions {
                email: 2,
                card: 1,
                phone: 1,
                ip: 1
            }
        );
    }

    #[test]
    fn luhn_and_gtin() {
        assert!(luhn(&[4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]));
        assert!(!luhn(&[4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2]));
        assert!(gtin(&[5, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 0]));
    }
}
