//! RFC 1035 master files (§5): a line-at-a-time tokenizer and record reader.
//!
//! It understands what registries and zone transfers produce: `$ORIGIN`, `$TTL`, relative
//! names and `@`, an omitted owner (leading blank), TTL and class in either order, parentheses
//! spanning lines, `;` comments, quoted strings and `\X` / `\DDD` escapes. It reads only what
//! the survey needs from each record (owner and type); rdata is tokenized, never interpreted.
//! `$INCLUDE` is refused: input is untrusted and must not make us open other files.
//!
//! Owners are kept in a canonical text form: lower-case, absolute, every byte that is not a
//! letter, digit, `-`, `_` or `*` written as `\DDD`, so a literal `.` always separates labels
//! and two spellings of one name compare equal byte for byte.

/// Largest record (all its lines joined), bounding a record whose parenthesis never closes.
pub const MAX_RECORD: usize = 256 * 1024;

/// One record as the survey sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordInfo {
    /// Line on which the record starts (1-based).
    pub line: u64,
    /// The record type mnemonic, upper case (`NS`, `DS`, `TYPE65534`, …).
    pub rtype: std::borrow::Cow<'static, str>,
    /// Number of rdata tokens.
    pub rdata_tokens: usize,
}

/// What one pushed line produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Nothing yet: blank, comment, directive, or a record continued on the next line.
    Nothing,
    /// A complete record; its owner is [`MasterParser::owner`].
    Record(RecordInfo),
    /// A malformed record or directive starting at `line`.
    Bad {
        /// Where the record or directive started.
        line: u64,
        /// What is wrong.
        why: String,
    },
}

/// Turns master-file lines into records, keeping `$ORIGIN`, the last owner and open
/// parentheses between lines; memory is bounded by [`MAX_RECORD`].
///
/// Registry dumps are millions of lines of one shape (`name. TTL IN NS host.`), so the common
/// case takes shortcuts that give exactly what the general path gives: a line without
/// parentheses, quotes, escapes or comments is split on blanks in place (no copy into the
/// record buffer); an owner token equal to the previous one (records are grouped by owner)
/// is not canonicalised again; and an absolute name of plain letters, digits, `-`, `_`, `*`
/// is canonical once lower-cased. Anything else goes through the full tokenizer and
/// [`canon_name`].
#[derive(Debug, Default)]
pub struct MasterParser {
    origin: Option<String>,
    owner: String,
    have_owner: bool,
    /// The owner token `owner` was made from, while `$ORIGIN` has not changed since.
    owner_raw: Option<Vec<u8>>,
    depth: u32,
    start_line: u64,
    owner_omitted: bool,
    rec: Vec<u8>,
    tokens: Vec<(usize, usize)>,
    broken: Option<String>,
    scratch: Vec<u8>,
    /// Tests: always take the general path, to check the shortcuts against it.
    #[cfg(test)]
    slow_only: bool,
    /// Tests: lines that took the shortcut.
    #[cfg(test)]
    plain_lines: usize,
}

/// Whether the shortcuts are off (only in tests).
#[cfg(test)]
fn slow(p: &MasterParser) -> bool {
    p.slow_only
}
#[cfg(not(test))]
fn slow(_: &MasterParser) -> bool {
    false
}

/// Letters, digits, `-`, `_` and `*`: what [`canon_name`] writes as they are (up to case).
static NAME_CHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = matches!(b as u8, b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'*');
        b += 1;
    }
    t
};

/// Bit masks (bit i for byte i) of the blanks (space, tab, CR) and of the bytes that need the
/// full tokenizer (parentheses, quotes, escapes, comments) in 16 bytes.
#[cfg(target_arch = "x86_64")]
fn classify(c: &[u8; 16]) -> (u32, u32) {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    // SAFETY: SSE2 is part of the x86_64 baseline, and the unaligned load reads exactly the
    // 16 bytes of `c`.
    unsafe {
        let v = _mm_loadu_si128(c.as_ptr().cast());
        let eq = |b: u8| _mm_cmpeq_epi8(v, _mm_set1_epi8(b as i8));
        let blank = _mm_or_si128(_mm_or_si128(eq(b' '), eq(b'\t')), eq(b'\r'));
        let special = _mm_or_si128(
            _mm_or_si128(_mm_or_si128(eq(b'('), eq(b')')), eq(b'"')),
            _mm_or_si128(eq(b'\\'), eq(b';')),
        );
        (
            _mm_movemask_epi8(blank) as u32,
            _mm_movemask_epi8(special) as u32,
        )
    }
}

/// Bit masks (bit i for byte i) of the blanks (space, tab, CR) and of the bytes that need the
/// full tokenizer (parentheses, quotes, escapes, comments) in 16 bytes.
#[cfg(not(target_arch = "x86_64"))]
fn classify(c: &[u8; 16]) -> (u32, u32) {
    let (mut blank, mut special) = (0u32, 0u32);
    for (i, &b) in c.iter().enumerate() {
        if matches!(b, b' ' | b'\t' | b'\r') {
            blank |= 1 << i;
        }
        if matches!(b, b'(' | b')' | b'"' | b'\\' | b';') {
            special |= 1 << i;
        }
    }
    (blank, special)
}

/// Whether `t` is an absolute name of letters, digits, `-`, `_` and `*`, with labels of 1 to
/// 63 octets and at most 255 octets in wire form: then [`canon_name`] accepts it and writes
/// it lower-cased, nothing else.
fn simple_absolute(t: &[u8]) -> bool {
    // wire length = text length + 1 (the root label) when every label ends in a dot.
    if t.len() < 2 || t.len() > 254 || t[t.len() - 1] != b'.' {
        return false;
    }
    let mut start = 0;
    for (i, &b) in t.iter().enumerate() {
        if b == b'.' {
            if i == start || i - start > 63 {
                return false;
            }
            start = i + 1;
        } else if !NAME_CHAR[usize::from(b)] {
            return false;
        }
    }
    true
}

impl MasterParser {
    /// A parser with an initial origin (absolute, e.g. `com.`), as `$ORIGIN` would set it.
    pub fn new(origin: Option<&str>) -> Result<Self, String> {
        let mut p = MasterParser::default();
        if let Some(o) = origin {
            let mut out = Vec::new();
            let abs = if o.ends_with('.') {
                o.to_string()
            } else {
                format!("{o}.")
            };
            canon_name(abs.as_bytes(), None, &mut out)?;
            p.origin = Some(String::from_utf8(out).expect("canonical names are ASCII"));
        }
        Ok(p)
    }

    /// The current `$ORIGIN`, canonical.
    pub fn origin(&self) -> Option<&str> {
        self.origin.as_deref()
    }

    /// The owner of the record last returned, canonical.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Whether a record is open across lines (a parenthesis not yet closed).
    pub fn in_record(&self) -> bool {
        self.depth > 0
    }

    /// Pushes the next line (without its newline).
    pub fn push_line(&mut self, line_no: u64, line: &[u8]) -> Parsed {
        if self.depth == 0 && line.len() <= MAX_RECORD && !slow(self) && self.split_plain(line) {
            // The tokens index `line` itself; same tokens as `tokenize` would make.
            #[cfg(test)]
            {
                self.plain_lines += 1;
            }
            self.rec.clear();
            self.broken = None;
            self.start_line = line_no;
            self.owner_omitted = matches!(line.first(), Some(b' ' | b'\t'));
            if self.tokens.is_empty() {
                return Parsed::Nothing;
            }
            return match self.interpret(line) {
                Ok(Some(r)) => Parsed::Record(r),
                Ok(None) => Parsed::Nothing,
                Err(why) => Parsed::Bad { line: line_no, why },
            };
        }
        if self.depth == 0 {
            self.rec.clear();
            self.tokens.clear();
            self.broken = None;
            self.start_line = line_no;
            self.owner_omitted = matches!(line.first(), Some(b' ' | b'\t'));
        }
        if let Err(why) = self.tokenize(line) {
            self.broken.get_or_insert(why);
        }
        if self.rec.len() > MAX_RECORD {
            self.broken
                .get_or_insert(format!("record longer than {MAX_RECORD} bytes"));
            self.depth = 0;
            self.rec.clear();
            self.tokens.clear();
        }
        if self.depth > 0 {
            return Parsed::Nothing;
        }
        let line = self.start_line;
        if let Some(why) = self.broken.take() {
            self.tokens.clear();
            return Parsed::Bad { line, why };
        }
        if self.tokens.is_empty() {
            return Parsed::Nothing;
        }
        let rec = std::mem::take(&mut self.rec);
        let res = self.interpret(&rec);
        self.rec = rec;
        match res {
            Ok(Some(r)) => Parsed::Record(r),
            Ok(None) => Parsed::Nothing,
            Err(why) => Parsed::Bad { line, why },
        }
    }

    /// Splits a line on blanks into `tokens` (offsets into `line`) if it has nothing the full
    /// tokenizer treats specially (parentheses, quotes, escapes, comments); false otherwise.
    fn split_plain(&mut self, line: &[u8]) -> bool {
        self.tokens.clear();
        let mut start = 0;
        let mut base = 0;
        let mut chunks = line.chunks_exact(16);
        for c in chunks.by_ref() {
            let (blank, special) = classify(c.try_into().expect("16 bytes"));
            if special != 0 {
                self.tokens.clear();
                return false;
            }
            self.split_at_blanks(blank, base, &mut start);
            base += 16;
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut c = [b'a'; 16];
            c[..rest.len()].copy_from_slice(rest);
            let (blank, special) = classify(&c);
            if special != 0 {
                self.tokens.clear();
                return false;
            }
            self.split_at_blanks(blank, base, &mut start);
        }
        if start < line.len() {
            self.tokens.push((start, line.len()));
        }
        true
    }

    /// Call at the end of input: reports a parenthesis left open.
    pub fn finish(&mut self) -> Parsed {
        if self.depth > 0 {
            self.depth = 0;
            return Parsed::Bad {
                line: self.start_line,
                why: "unclosed parenthesis at end of file".into(),
            };
        }
        Parsed::Nothing
    }

    fn tokenize(&mut self, line: &[u8]) -> Result<(), String> {
        let mut i = 0;
        while i < line.len() {
            match line[i] {
                b' ' | b'\t' | b'\r' => i += 1,
                b';' => break,
                b'(' => {
                    self.depth += 1;
                    i += 1;
                }
                b')' => {
                    if self.depth == 0 {
                        return Err("unbalanced ')'".into());
                    }
                    self.depth -= 1;
                    i += 1;
                }
                b'"' => {
                    let start = i + 1;
                    let mut j = start;
                    loop {
                        match line.get(j) {
                            None => return Err("unterminated quoted string".into()),
                            Some(b'\\') => j += 2,
                            Some(b'"') => break,
                            Some(_) => j += 1,
                        }
                    }
                    self.push_token(&line[start..j]);
                    i = j + 1;
                }
                _ => {
                    let start = i;
                    while i < line.len() {
                        match line[i] {
                            b' ' | b'\t' | b'\r' | b';' | b'(' | b')' | b'"' => break,
                            b'\\' => i += 2,
                            _ => i += 1,
                        }
                    }
                    let end = i.min(line.len());
                    self.push_token(&line[start..end]);
                }
            }
        }
        Ok(())
    }

    fn push_token(&mut self, t: &[u8]) {
        let s = self.rec.len();
        self.rec.extend_from_slice(t);
        self.tokens.push((s, self.rec.len()));
    }

    /// Ends a token before every blank of a chunk at `base` (bit i of `blank` = byte
    /// `base + i`); `start` is where the current token began.
    fn split_at_blanks(&mut self, mut blank: u32, base: usize, start: &mut usize) {
        while blank != 0 {
            let i = base + blank.trailing_zeros() as usize;
            if i > *start {
                self.tokens.push((*start, i));
            }
            *start = i + 1;
            blank &= blank - 1;
        }
    }

    /// Interprets `tokens`, which index `src`.
    fn interpret(&mut self, src: &[u8]) -> Result<Option<RecordInfo>, String> {
        let tok = |i: usize| {
            let (s, e) = self.tokens[i];
            &src[s..e]
        };
        let first = tok(0);
        if !self.owner_omitted && first.first() == Some(&b'$') {
            let directive = first.to_ascii_uppercase();
            return match directive.as_slice() {
                b"$ORIGIN" => {
                    if self.tokens.len() != 2 {
                        return Err("$ORIGIN takes exactly one name".into());
                    }
                    let mut out = Vec::new();
                    canon_name(tok(1), self.origin.as_deref(), &mut out)?;
                    self.origin = Some(String::from_utf8(out).expect("ASCII"));
                    self.owner_raw = None;
                    Ok(None)
                }
                b"$TTL" => {
                    if self.tokens.len() != 2 || parse_ttl(tok(1)).is_none() {
                        return Err("$TTL takes exactly one TTL (e.g. 3600 or 1h)".into());
                    }
                    Ok(None)
                }
                b"$INCLUDE" => Err("$INCLUDE is not followed (untrusted input)".into()),
                _ => Err(format!("unknown directive {}", shorten(first))),
            };
        }
        let mut i = 0;
        if !self.owner_omitted {
            let (s, e) = self.tokens[0];
            let t = &src[s..e];
            let same = !slow(self) && self.have_owner && self.owner_raw.as_deref() == Some(t);
            if !same {
                if !slow(self) && simple_absolute(t) {
                    self.owner.clear();
                    self.owner
                        .push_str(std::str::from_utf8(t).expect("checked ASCII"));
                    self.owner.make_ascii_lowercase();
                } else {
                    self.scratch.clear();
                    canon_name(t, self.origin.as_deref(), &mut self.scratch)?;
                    self.owner.clear();
                    self.owner.push_str(
                        std::str::from_utf8(&self.scratch).expect("canonical names are ASCII"),
                    );
                }
                let raw = self.owner_raw.get_or_insert_with(Vec::new);
                raw.clear();
                raw.extend_from_slice(t);
            }
            self.have_owner = true;
            i = 1;
        } else if !self.have_owner {
            return Err("record without owner and no previous owner".into());
        }
        let (mut ttl, mut class) = (false, false);
        let rtype = loop {
            let Some(&(s, e)) = self.tokens.get(i) else {
                return Err("record without a type".into());
            };
            let t = &src[s..e];
            i += 1;
            if !ttl && t.first().is_some_and(u8::is_ascii_digit) {
                if parse_ttl(t).is_none() {
                    return Err(format!("bad TTL {}", shorten(t)));
                }
                ttl = true;
                continue;
            }
            let mut buf = [0u8; 16];
            let up = if t.len() <= buf.len() {
                buf[..t.len()].copy_from_slice(t);
                buf[..t.len()].make_ascii_uppercase();
                &buf[..t.len()]
            } else {
                return Err(format!("unknown record type {}", shorten(t)));
            };
            if !class && is_class(up) {
                class = true;
                continue;
            }
            let known = match up {
                b"NS" => Some(std::borrow::Cow::Borrowed("NS")),
                b"DS" => Some(std::borrow::Cow::Borrowed("DS")),
                _ => record_type(up),
            };
            match known {
                Some(rt) => break rt,
                None => return Err(format!("unknown record type {}", shorten(t))),
            }
        };
        let rdata_tokens = self.tokens.len() - i;
        if rdata_tokens == 0 {
            return Err(format!("{rtype} record without data"));
        }
        if rtype == "NS" {
            if rdata_tokens != 1 {
                return Err("NS record must have exactly one name".into());
            }
            let (s, e) = self.tokens[i];
            let t = &src[s..e];
            if slow(self) || !simple_absolute(t) {
                self.scratch.clear();
                canon_name(t, self.origin.as_deref(), &mut self.scratch)
                    .map_err(|e| format!("bad NS target: {e}"))?;
            }
        }
        Ok(Some(RecordInfo {
            line: self.start_line,
            rtype,
            rdata_tokens,
        }))
    }
}

fn is_class(t: &[u8]) -> bool {
    matches!(t, b"IN" | b"CH" | b"CS" | b"HS" | b"ANY")
        || (t.len() > 5 && t.starts_with(b"CLASS") && t[5..].iter().all(u8::is_ascii_digit))
}

/// The upper-case mnemonic of a record type token, if it is one: a type hickory knows or the
/// RFC 3597 `TYPEnnn` form.
fn record_type(up: &[u8]) -> Option<std::borrow::Cow<'static, str>> {
    use std::borrow::Cow;
    const COMMON: &[&str] = &[
        "NS",
        "DS",
        "A",
        "AAAA",
        "RRSIG",
        "NSEC",
        "NSEC3",
        "SOA",
        "NSEC3PARAM",
        "TXT",
        "MX",
        "CNAME",
        "DNSKEY",
        "TLSA",
    ];
    let s = std::str::from_utf8(up).ok()?;
    if let Some(c) = COMMON.iter().find(|&&c| c == s) {
        return Some(Cow::Borrowed(c));
    }
    if let Some(n) = s.strip_prefix("TYPE") {
        return (!n.is_empty() && n.len() <= 5 && n.bytes().all(|b| b.is_ascii_digit()))
            .then(|| n.parse::<u16>().ok())
            .flatten()
            .map(|_| Cow::Owned(s.to_string()));
    }
    use std::str::FromStr;
    match hickory_proto::rr::RecordType::from_str(s) {
        Ok(hickory_proto::rr::RecordType::Unknown(_)) | Err(_) => None,
        Ok(_) => Some(Cow::Owned(s.to_string())),
    }
}

/// A TTL: seconds, or BIND's units (`1h30m`, `2D`).
pub fn parse_ttl(t: &[u8]) -> Option<u32> {
    if t.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    let mut cur: u64 = 0;
    let mut digits = false;
    for &b in t {
        if b.is_ascii_digit() {
            cur = cur * 10 + u64::from(b - b'0');
            digits = true;
            if cur > u64::from(u32::MAX) {
                return None;
            }
        } else {
            let mult = match b.to_ascii_lowercase() {
                b's' => 1,
                b'm' => 60,
                b'h' => 3600,
                b'd' => 86400,
                b'w' => 604800,
                _ => return None,
            };
            if !digits {
                return None;
            }
            total += cur * mult;
            cur = 0;
            digits = false;
        }
    }
    total += cur;
    u32::try_from(total).ok()
}

/// Writes the canonical form of a name token (see the module doc), appending `origin` to a
/// relative name. Rejects bad escapes, empty or overlong labels and overlong names.
pub fn canon_name(tok: &[u8], origin: Option<&str>, out: &mut Vec<u8>) -> Result<(), String> {
    let show = || shorten(tok);
    if tok == b"@" {
        let o = origin.ok_or("@ used but no $ORIGIN set")?;
        out.extend_from_slice(o.as_bytes());
        return Ok(());
    }
    if tok == b"." {
        out.push(b'.');
        return Ok(());
    }
    let mut wire_len = 1usize; // the root label
    let mut label_len = 0usize;
    let mut i = 0;
    let mut absolute = false;
    while i < tok.len() {
        let b = match tok[i] {
            b'.' => {
                if label_len == 0 {
                    return Err(format!("empty label in {:?}", show()));
                }
                out.push(b'.');
                wire_len += 1 + label_len;
                label_len = 0;
                i += 1;
                if i == tok.len() {
                    absolute = true;
                }
                continue;
            }
            b'\\' => {
                let rest = &tok[i + 1..];
                let ndig = rest
                    .iter()
                    .take(3)
                    .take_while(|c| c.is_ascii_digit())
                    .count();
                if rest.is_empty() {
                    return Err(format!("{:?} ends in a lone backslash", show()));
                }
                if ndig == 0 {
                    i += 2;
                    rest[0]
                } else if ndig == 3 {
                    let v = u32::from(rest[0] - b'0') * 100
                        + u32::from(rest[1] - b'0') * 10
                        + u32::from(rest[2] - b'0');
                    if v > 255 {
                        return Err(format!(
                            "bad escape \\{v} in {:?}: \\DDD must be at most 255",
                            show()
                        ));
                    }
                    i += 4;
                    v as u8
                } else {
                    return Err(format!(
                        "bad escape in {:?}: \\DDD needs exactly three digits",
                        show()
                    ));
                }
            }
            b => {
                i += 1;
                b
            }
        };
        label_len += 1;
        if label_len > 63 {
            return Err(format!("label longer than 63 octets in {:?}", show()));
        }
        match b {
            b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'*' => out.push(b),
            b'A'..=b'Z' => out.push(b.to_ascii_lowercase()),
            _ => {
                out.push(b'\\');
                out.push(b'0' + b / 100);
                out.push(b'0' + (b / 10) % 10);
                out.push(b'0' + b % 10);
            }
        }
    }
    if !absolute {
        if label_len > 0 {
            out.push(b'.');
            wire_len += 1 + label_len;
        }
        let o = origin.ok_or_else(|| format!("relative name {:?} but no $ORIGIN set", show()))?;
        if o != "." {
            out.extend_from_slice(o.as_bytes());
            wire_len += o.len();
        }
    }
    if wire_len > 255 {
        return Err(format!("name longer than 255 octets: {:?}", show()));
    }
    Ok(())
}

/// A token for an error message: lossy UTF-8, at most 80 characters (tokens can be 64 KiB).
pub fn shorten(tok: &[u8]) -> String {
    let s = String::from_utf8_lossy(&tok[..tok.len().min(240)]);
    if s.chars().count() > 80 || tok.len() > 240 {
        format!("{}…", s.chars().take(80).collect::<String>())
    } else {
        s.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(t: &str, o: Option<&str>) -> Result<String, String> {
        let mut out = Vec::new();
        canon_name(t.as_bytes(), o, &mut out).map(|()| String::from_utf8(out).unwrap())
    }

    #[test]
    fn names() {
        assert_eq!(canon("Foo.COM.", None).unwrap(), "foo.com.");
        assert_eq!(canon("foo", Some("com.")).unwrap(), "foo.com.");
        assert_eq!(canon("foo", Some(".")).unwrap(), "foo.");
        assert_eq!(canon("@", Some("com.")).unwrap(), "com.");
        assert_eq!(canon("a\\.b.com.", None).unwrap(), "a\\046b.com.");
        assert_eq!(canon("\\065b.com.", None).unwrap(), "ab.com.");
        assert_eq!(canon("\\097b.com.", None).unwrap(), "ab.com.");
        assert!(canon("\\999.com.", None)
            .unwrap_err()
            .contains("at most 255"));
        assert!(canon("\\12x.com.", None)
            .unwrap_err()
            .contains("three digits"));
        assert!(canon("a..com.", None).is_err());
        assert!(canon("foo", None).is_err());
        assert!(canon(&format!("{}.com.", "a".repeat(64)), None).is_err());
        assert!(canon(&format!("{}.", vec!["a".repeat(60); 5].join(".")), None).is_err());
    }

    #[test]
    fn ttls() {
        assert_eq!(parse_ttl(b"3600"), Some(3600));
        assert_eq!(parse_ttl(b"1h30m"), Some(5400));
        assert_eq!(parse_ttl(b"2D"), Some(172800));
        assert_eq!(parse_ttl(b"h"), None);
        assert_eq!(parse_ttl(b"99999999999"), None);
    }

    type Recs = Vec<(u64, String, String)>;

    fn run(text: &str) -> (Recs, Vec<(u64, String)>) {
        let mut p = MasterParser::new(None).unwrap();
        let (mut recs, mut bad) = (Vec::new(), Vec::new());
        for (i, l) in text.lines().enumerate() {
            match p.push_line(i as u64 + 1, l.as_bytes()) {
                Parsed::Record(r) => recs.push((r.line, p.owner().to_string(), r.rtype.into())),
                Parsed::Bad { line, why } => bad.push((line, why)),
                Parsed::Nothing => {}
            }
        }
        if let Parsed::Bad { line, why } = p.finish() {
            bad.push((line, why));
        }
        (recs, bad)
    }

    #[test]
    fn records() {
        let (recs, bad) = run("$ORIGIN example.\n$TTL 1h\n\
             @ IN SOA ns hostmaster ( 1 ; serial\n  2 3 4\n 5 )\n\
             \tNS ns.other.\n\
             foo 300 IN NS ns1.foo\n\
             bar IN 300 ns ns1.bar.example.\n\
             \"q\" TXT \"a ; b\" ; c\n\
             baz A 192.0.2.1\n");
        assert!(bad.is_empty(), "{bad:?}");
        let want = [
            (3, "example.", "SOA"),
            (6, "example.", "NS"),
            (7, "foo.example.", "NS"),
            (8, "bar.example.", "NS"),
            (9, "q.example.", "TXT"),
            (10, "baz.example.", "A"),
        ];
        assert_eq!(recs.len(), want.len());
        for (g, w) in recs.iter().zip(want) {
            assert_eq!((g.0, g.1.as_str(), g.2.as_str()), w);
        }
    }

    /// Runs `lines` through a parser with the shortcuts and one without; every line must give
    /// the same result, owner and origin.
    fn same_as_slow(lines: &[Vec<u8>]) -> usize {
        let mut fast = MasterParser::new(Some("xyz.")).unwrap();
        let mut slow = MasterParser::new(Some("xyz.")).unwrap();
        slow.slow_only = true;
        for (i, l) in lines.iter().enumerate() {
            let n = i as u64 + 1;
            let (f, s) = (fast.push_line(n, l), slow.push_line(n, l));
            let show = String::from_utf8_lossy(l);
            assert_eq!(f, s, "line {n}: {show:?}");
            assert_eq!(fast.owner(), slow.owner(), "line {n}: {show:?}");
            assert_eq!(fast.origin(), slow.origin(), "line {n}: {show:?}");
            assert_eq!(fast.in_record(), slow.in_record(), "line {n}: {show:?}");
        }
        assert_eq!(fast.finish(), slow.finish());
        assert_eq!(slow.plain_lines, 0);
        fast.plain_lines
    }

    #[test]
    fn shortcuts_match_the_full_parser() {
        let l63 = "a".repeat(63);
        let l64 = "b".repeat(64);
        let long250 = format!("{}.xyz.", vec!["c".repeat(61); 4].join("."));
        let long251 = format!("{}.xyz.", vec!["d".repeat(62); 4].join("."));
        let mut lines: Vec<String> = [
            "xyz.\t900\tin\tsoa\ta.nic.xyz. h.xyz. 1 2 3 4 5",
            "foo.xyz.\t3600\tin\tns\tns1.foo.xyz.",
            "foo.xyz.\t3600\tin\tns\tNS2.Hoster.COM.",
            "foo.xyz.\t3600\tin\tds\t1 13 2 ABCDEF0123456789ABCDEF0123456789",
            "FOO.xyz.\t3600\tIN\tNS\tns1.foo.xyz.",
            "foo.xyz.\t3600\tin\tns\tns1.foo.xyz.\r",
            "foo.xyz. 3600 in ns ns1.foo.xyz. ; a comment",
            "foo.xyz. 3600 in ns ( ns1.foo.xyz. )",
            "foo.xyz. 3600 in ds ( 1 13 2",
            "  ABCD )",
            "foo.xyz. 3600 in txt \"a ; b\"",
            "\tNS ns.other.",
            "  3600 IN NS ns.other.",
            "bar 3600 NS ns1.bar",
            "bar 3600 NS ns1.bar",
            "$ORIGIN sub.xyz.",
            "bar 3600 NS ns1.bar",
            "bar.xyz. NS ns.",
            "$ORIGIN xyz.",
            "bar 3600 NS ns1.bar",
            "@ NS ns.",
            "@ NS ns.",
            ". NS ns.",
            "a\\.b.xyz. NS ns.",
            "a\\.b.xyz. NS ns.",
            "\\065b.xyz. NS ns.",
            "\\999.xyz. NS ns.",
            "*.xyz. NS ns.",
            "a@b.xyz. NS ns.",
            "@. NS ns.",
            "ok.xyz. NS a@b.",
            "_dmarc.xyz. TXT v=DMARC1",
            "..xyz. NS ns.",
            "a..b.xyz. NS ns.",
            "a.xyz NS ns.",
            "foo.xyz. 99999999999 NS ns.",
            "foo.xyz. 1h30m NS ns.",
            "foo.xyz. 1x NS ns.",
            "foo.xyz. FOO ns.",
            "foo.xyz. TYPE65534 \\# 0",
            "foo.xyz. TYPE99999 x",
            "foo.xyz. IN IN NS ns.",
            "foo.xyz. CLASS1 NS ns.",
            "foo.xyz. NS",
            "foo.xyz. NS a. b.",
            "foo.xyz. NS a..b.",
            "foo.xyz. NS relative",
            "foo.xyz. NS @",
            "foo.xyz. ns ns.\u{e9}.",
            "b\u{fc}cher.xyz. NS ns.",
            "b\u{fc}cher.xyz. NS ns.",
            "",
            "   ",
            "\t\r",
            "; only a comment",
            "$TTL 1h",
            "$TTL",
            "$ttl 300",
            "$INCLUDE /etc/passwd",
            "$FOO bar",
            "$ORIGIN",
            "$ORIGIN a..b.",
            ")",
            "foo.xyz. NS ns. )",
            "\"quoted.xyz.\" NS ns.",
            "\"\" NS ns.",
            "foo.xyz. NS \"unterminated",
            "foo.xyz.\tNS\tns.\\",
            "thirty.two.bytes.long.owner.xyz. NS ns(x).",
            "sixteen.bytes.x. NS ns;.",
            "0123456789abcde(",
            ")",
            "0123456789abcdef(",
            ")",
            "0123456789abcdef0123456789abcde;",
            "0123456789abcdef0123456789abcdef;",
            "0123456789abcdef0123456789abcdef0123456789 NS \"",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        lines.push(format!("{l63}.xyz. NS {l63}.ns."));
        lines.push(format!("{l64}.xyz. NS ns."));
        lines.push(format!("ok.xyz. NS {l64}.ns."));
        lines.push(format!("{long250} NS {long250}"));
        lines.push(format!("{long251} NS ns."));
        lines.push(format!("ok.xyz. NS {long251}"));
        lines.push(format!("ok.xyz. NS x.{long251}"));
        // 254 characters (255 octets in wire form, the most) and 255.
        for last in [57, 58] {
            let n = format!("{l63}.{l63}.{l63}.{}.xyz.", "e".repeat(last));
            assert_eq!(n.len(), 197 + last);
            lines.push(format!("{n} NS ns."));
            lines.push(format!("ok.xyz. NS {n}"));
        }
        let mut bytes: Vec<Vec<u8>> = lines.into_iter().map(String::into_bytes).collect();
        bytes.push(b"\xff\xfe.xyz. NS ns.".to_vec());
        bytes.push(b"foo.xyz. NS \xff.".to_vec());
        let plain = same_as_slow(&bytes);
        assert!(plain >= 50, "only {plain} lines took the shortcut");

        // Owner tokens repeat (the owner cache) across $ORIGIN changes and omitted owners.
        let plain = same_as_slow(&[
            b"a NS ns.".to_vec(),
            b"$ORIGIN b.xyz.".to_vec(),
            b"a NS ns.".to_vec(),
            b"\tNS ns.".to_vec(),
            b"a. NS ns.".to_vec(),
            b"\\@ NS ns.".to_vec(),
            b"a NS ns.".to_vec(),
        ]);
        assert_eq!(plain, 6);
    }

    /// Random lines from the pieces registry dumps and hand-written zones are made of, with
    /// the characters that matter to the tokenizer, run through both paths.
    #[test]
    fn shortcuts_match_the_full_parser_on_random_lines() {
        const PIECES: &[&str] = &[
            "foo.xyz.",
            "FOO.XYZ.",
            "foo",
            "@",
            ".",
            "*.xyz.",
            "_x.xyz.",
            "a\\.b.xyz.",
            "\\065.xyz.",
            "\\99.xyz.",
            "3600",
            "1h",
            "99999999999",
            "in",
            "IN",
            "ch",
            "ns",
            "NS",
            "ds",
            "a",
            "txt",
            "soa",
            "TYPE65534",
            "bogus",
            "ns1.hoster.com.",
            "ns1.hoster",
            "a..b.",
            "$ORIGIN",
            "$TTL",
            "$INCLUDE",
            "(x",
            "x)",
            "\"q r\"",
            "\"",
            ";",
            "; c",
            "\u{e9}",
            "x.y.z.",
            "abcdefghijklmnop.xyz.",
        ];
        const BLANKS: &[&str] = &[" ", "\t", "  ", " \t", "\r"];
        let mut seed: u64 = 0x5eed;
        let mut next = |n: usize| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize % n
        };
        let mut lines = Vec::new();
        for i in 0..20_000 {
            if i % 20 == 0 {
                lines.push(b")".to_vec()); // close what is open now and then
            }
            let mut l = String::new();
            if next(8) == 0 {
                l.push_str(BLANKS[next(BLANKS.len())]);
            }
            for t in 0..1 + next(7) {
                if t > 0 {
                    l.push_str(BLANKS[next(BLANKS.len())]);
                }
                l.push_str(PIECES[next(PIECES.len())]);
            }
            if next(6) == 0 {
                l.push_str(BLANKS[next(BLANKS.len())]);
            }
            lines.push(l.into_bytes());
        }
        let plain = same_as_slow(&lines);
        assert!(plain > 2_000, "only {plain} lines took the shortcut");
    }

    #[test]
    fn bad_records() {
        let (recs, bad) = run("a.com. NS\nb.com. FOO x\n$INCLUDE /etc/passwd\n\
             c.com. 86400 in ns ns.c.com.\nd.com. NS ( x.\n");
        assert_eq!(recs.len(), 1);
        let lines: Vec<u64> = bad.iter().map(|b| b.0).collect();
        assert_eq!(lines, [1, 2, 3, 5], "{bad:?}");
        let (_, bad) = run(" NS x.\n) \n\\999.com. NS x.\n");
        assert_eq!(bad.len(), 3, "{bad:?}");
    }
}
