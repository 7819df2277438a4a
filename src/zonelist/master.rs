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
#[derive(Debug, Default)]
pub struct MasterParser {
    origin: Option<String>,
    owner: String,
    have_owner: bool,
    depth: u32,
    start_line: u64,
    owner_omitted: bool,
    rec: Vec<u8>,
    tokens: Vec<(usize, usize)>,
    broken: Option<String>,
    scratch: Vec<u8>,
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
        match self.interpret() {
            Ok(Some(r)) => Parsed::Record(r),
            Ok(None) => Parsed::Nothing,
            Err(why) => Parsed::Bad { line, why },
        }
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

    fn tok(&self, i: usize) -> &[u8] {
        let (s, e) = self.tokens[i];
        &self.rec[s..e]
    }

    fn interpret(&mut self) -> Result<Option<RecordInfo>, String> {
        let first = self.tok(0);
        if !self.owner_omitted && first.first() == Some(&b'$') {
            let directive = first.to_ascii_uppercase();
            return match directive.as_slice() {
                b"$ORIGIN" => {
                    if self.tokens.len() != 2 {
                        return Err("$ORIGIN takes exactly one name".into());
                    }
                    let mut out = Vec::new();
                    canon_name(self.tok(1), self.origin.as_deref(), &mut out)?;
                    self.origin = Some(String::from_utf8(out).expect("ASCII"));
                    Ok(None)
                }
                b"$TTL" => {
                    if self.tokens.len() != 2 || parse_ttl(self.tok(1)).is_none() {
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
            self.scratch.clear();
            canon_name(&self.rec[s..e], self.origin.as_deref(), &mut self.scratch)?;
            self.owner.clear();
            self.owner
                .push_str(std::str::from_utf8(&self.scratch).expect("canonical names are ASCII"));
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
            let t = &self.rec[s..e];
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
            match record_type(up) {
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
            self.scratch.clear();
            canon_name(&self.rec[s..e], self.origin.as_deref(), &mut self.scratch)
                .map_err(|e| format!("bad NS target: {e}"))?;
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
