//! Where the crawl's domain names come from: whole TLD zones and domain lists, streamed.
//!
//! A gTLD zone holds hundreds of millions of records; the crawl must start on its first
//! delegation, not after loading it, and must run on a small machine. So every input is read
//! as a stream of bounded lines ([`source`]), decompressed by magic bytes, parsed one record at
//! a time ([`master`], [`list`]), and turned into normalised names in memory that does not
//! grow with the input. Inputs are peer data and may be hostile: a bad line is reported with
//! `file:line` and counted, and an input that is not a zone or list at all (binary data)
//! stops the run before any name is handed out.
//!
//! **Each name once, in bounded memory.** A zone delegates a name with several records (NS,
//! NS, DS…) and registry dumps group them by owner, so [`NameReader`] drops *consecutive*
//! duplicates only. A name whose records are scattered through a file is handed out more than
//! once; exact global de-duplication would need memory proportional to the zone, which is the
//! thing this module exists to avoid. (The crawl memoises per name anyway.)
//!
//! [`shard`] splits the names among workers by a hash that is stable across versions;
//! [`Coverage`] counts what each source contributed, for the crawl's snapshot metadata;
//! [`manifest`] names the sources and [`axfr`] fetches zones by zone transfer.

pub mod axfr;
pub mod list;
pub mod manifest;
pub mod master;
pub mod shard;
pub mod source;

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::io::BufRead;

use serde::Serialize;

use crate::names::{is_plain_label, normalize_domain};
use master::{MasterParser, Parsed};
use shard::Shard;
use source::{Compression, Line, LineReader};

/// Bad lines tolerated before the first good one; more means the input is not a zone or a
/// list at all (a binary file, an HTML error page saved as a zone…).
pub const MAX_BAD_BEFORE_GOOD: u64 = 10;

/// Most distinct TLDs counted per source; names under further TLDs (only a hostile list has
/// that many) are counted under `(other)`, so the counts stay bounded too.
pub const MAX_TLDS: usize = 10_000;

/// The crawl's default input: a short list of well-known mail domains.
pub const DEFAULT_INPUT: &str = "zonelists/sample.txt";

/// What kind of text an input holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Decide from the first meaningful line: one token → list, otherwise master file.
    Auto,
    /// An RFC 1035 master file (a zone); names are its delegations.
    Zone,
    /// One domain name a line.
    List,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Format::Auto),
            "zone" => Ok(Format::Zone),
            "list" => Ok(Format::List),
            _ => Err(format!("bad format {s:?}: expected auto, zone or list")),
        }
    }
}

/// An error that stops reading a source: it cannot be opened, its compressed stream is
/// corrupt, or it is not a zone or list at all. Line 0 means "not at a particular line".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {why}", location(file, *line))]
pub struct ZoneListError {
    /// The source as given (`-` for stdin).
    pub file: String,
    /// 1-based line, 0 for the file as a whole.
    pub line: u64,
    /// What went wrong.
    pub why: String,
}

/// A line that was skipped: reported, counted, and the run goes on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadLine {
    /// The source as given.
    pub file: String,
    /// 1-based line (where the record started).
    pub line: u64,
    /// What is wrong with it.
    pub why: String,
}

impl fmt::Display for BadLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", location(&self.file, self.line), self.why)
    }
}

fn location(file: &str, line: u64) -> String {
    if line == 0 {
        file.to_string()
    } else {
        format!("{file}:{line}")
    }
}

/// What [`NameReader`] hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A normalised, absolute domain name (`example.com.`) in the requested shard.
    Name(String),
    /// A skipped line.
    Bad(BadLine),
}

/// What one source contributed: for the crawl's snapshot metadata and for the operator, so a
/// survey can say which zones it covered and how much of each.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SourceCoverage {
    /// The source as given.
    pub source: String,
    /// Zone or list (after auto-detection).
    pub format: Option<Format>,
    /// Compression found by magic bytes.
    pub compression: Option<Compression>,
    /// The zone apex, for a zone.
    pub apex: Option<String>,
    /// Lines read.
    pub lines: u64,
    /// Records (zone) or names (list) parsed.
    pub records: u64,
    /// Distinct consecutive names extracted, before sharding.
    pub names: u64,
    /// Names in the requested shard (handed out).
    pub in_shard: u64,
    /// Consecutive repeats dropped.
    pub consecutive_duplicates: u64,
    /// Lines skipped as malformed.
    pub bad_lines: u64,
    /// Names handed out per TLD (`com`, `xn--p1ai`, …).
    pub tlds: BTreeMap<String, u64>,
}

/// Coverage of a whole run: every source, and the shard.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Coverage {
    /// `K/N`, if sharded.
    pub shard: Option<String>,
    /// Names handed out in all.
    pub names: u64,
    /// Per source, in the order read.
    pub sources: Vec<SourceCoverage>,
}

impl Coverage {
    /// Adds one finished source.
    pub fn add(&mut self, s: SourceCoverage) {
        self.names += s.in_shard;
        self.sources.push(s);
    }

    /// Per-TLD totals over all sources.
    pub fn tld_totals(&self) -> BTreeMap<String, u64> {
        let mut t = BTreeMap::new();
        for s in &self.sources {
            for (k, v) in &s.tlds {
                *t.entry(k.clone()).or_insert(0) += v;
            }
        }
        t
    }
}

enum Mode {
    Undecided,
    Zone {
        parser: Box<MasterParser>,
        apex: Option<String>,
    },
    List,
}

/// Streams the names of one source (zone or list), in memory independent of its size.
///
/// [`NameReader::open`] reads up to the first good line, so a source that is not a zone or a
/// list fails there, before any name is handed out: open every source first, then crawl.
pub struct NameReader {
    file: String,
    lines: LineReader<Box<dyn BufRead + Send>>,
    mode: Mode,
    origin: Option<String>,
    shard: Option<Shard>,
    last: String,
    /// `last` is known to pass [`plain_owner`].
    last_plain: bool,
    good: bool,
    pending: VecDeque<Entry>,
    done: bool,
    failed: bool,
    cov: SourceCoverage,
}

impl NameReader {
    /// Opens a file (`-` for stdin) and checks its head. `origin` is the initial `$ORIGIN`
    /// for zones that have none and no SOA.
    pub fn open(
        file: &str,
        format: Format,
        origin: Option<&str>,
        shard: Option<Shard>,
    ) -> Result<Self, ZoneListError> {
        let (r, c) = source::open(file).map_err(|e| ZoneListError {
            file: file.into(),
            line: 0,
            why: format!("cannot open: {e}"),
        })?;
        Self::from_reader(file, r, c, format, origin, shard)
    }

    /// Like [`open`](Self::open) over an already decompressed reader.
    pub fn from_reader(
        file: &str,
        reader: Box<dyn BufRead + Send>,
        compression: Compression,
        format: Format,
        origin: Option<&str>,
        shard: Option<Shard>,
    ) -> Result<Self, ZoneListError> {
        let mut r = NameReader {
            file: file.into(),
            lines: LineReader::new(reader),
            mode: Mode::Undecided,
            origin: origin.map(str::to_string),
            shard,
            last: String::new(),
            last_plain: false,
            good: false,
            pending: VecDeque::new(),
            done: false,
            failed: false,
            cov: SourceCoverage {
                source: file.into(),
                compression: Some(compression),
                ..SourceCoverage::default()
            },
        };
        match format {
            Format::Zone => r.start_zone(0)?,
            Format::List => {
                r.mode = Mode::List;
                r.cov.format = Some(Format::List);
            }
            Format::Auto => {}
        }
        // Read ahead to the first good line (or the end), so garbage fails here.
        while !r.good && !r.done {
            if let Some(e) = r.step()? {
                r.pending.push_back(e);
            }
        }
        Ok(r)
    }

    /// What this source contributed so far (complete once the reader returned `None`).
    pub fn coverage(&self) -> &SourceCoverage {
        &self.cov
    }

    /// Consumes the reader, returning its coverage.
    pub fn into_coverage(self) -> SourceCoverage {
        self.cov
    }

    fn fatal(&self, line: u64, why: impl Into<String>) -> ZoneListError {
        ZoneListError {
            file: self.file.clone(),
            line,
            why: why.into(),
        }
    }

    fn start_zone(&mut self, line: u64) -> Result<(), ZoneListError> {
        self.mode = zone_mode(&self.file, self.origin.as_deref(), line)?;
        self.cov.format = Some(Format::Zone);
        Ok(())
    }

    fn bad(&mut self, line: u64, why: String) -> Result<Option<Entry>, ZoneListError> {
        self.cov.bad_lines += 1;
        if !self.good && self.cov.bad_lines > MAX_BAD_BEFORE_GOOD {
            return Err(self.fatal(
                line,
                format!(
                    "not a zone or domain list: more than {MAX_BAD_BEFORE_GOOD} bad lines \
                     before a good one (last: {why})"
                ),
            ));
        }
        Ok(Some(Entry::Bad(BadLine {
            file: self.file.clone(),
            line,
            why,
        })))
    }

    /// Reads one line; returns what it produced, `Ok(None)` for nothing (and sets `done` at
    /// the end).
    fn step(&mut self) -> Result<Option<Entry>, ZoneListError> {
        let line = match self.lines.next_line() {
            Ok(l) => l,
            Err(e) => {
                let n = self.lines.line_no() + 1;
                return Err(self.fatal(n, format!("read error (truncated or corrupt data?): {e}")));
            }
        };
        let (n, text) = match line {
            None => {
                self.done = true;
                if let Mode::Zone { parser, .. } = &mut self.mode {
                    if let Parsed::Bad { line, why } = parser.finish() {
                        return self.bad(line, why);
                    }
                }
                return Ok(None);
            }
            Some((n, Line::TooLong(len))) => {
                self.cov.lines += 1;
                let why = format!(
                    "line of {len} bytes, longer than the {} allowed",
                    source::MAX_LINE
                );
                return self.bad(n, why);
            }
            Some((n, Line::Text(t))) => (n, t),
        };
        self.cov.lines += 1;
        if memchr::memchr(0, text).is_some() {
            return Err(ZoneListError {
                file: self.file.clone(),
                line: n,
                why: "NUL byte: this is not a text zone or list (binary file?)".into(),
            });
        }
        if matches!(self.mode, Mode::Undecided) {
            let t = String::from_utf8_lossy(text);
            let t = t.trim();
            if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
                return Ok(None);
            }
            let first = t.split(['#', ';']).next().unwrap_or("");
            if t.starts_with('$') || first.split_whitespace().nth(1).is_some() {
                self.mode = zone_mode(&self.file, self.origin.as_deref(), n)?;
                self.cov.format = Some(Format::Zone);
            } else {
                self.mode = Mode::List;
                self.cov.format = Some(Format::List);
            }
        }
        // Borrow dance: take the line out of the reader's buffer only as long as needed.
        let outcome = match &mut self.mode {
            Mode::List => match list::parse_line(text) {
                list::ListLine::Nothing => Outcome::Nothing,
                list::ListLine::Name(name) => {
                    self.cov.records += 1;
                    Outcome::Name(name)
                }
                list::ListLine::Bad(why) => Outcome::Bad(n, why),
            },
            Mode::Zone { parser, apex } => match parser.push_line(n, text) {
                Parsed::Nothing => Outcome::Nothing,
                Parsed::Bad { line, why } => Outcome::Bad(line, why),
                Parsed::Record(rec) => {
                    self.cov.records += 1;
                    match zone_record(parser, apex, &rec, &mut self.cov) {
                        Outcome::Delegation => {
                            let owner = parser.owner();
                            // The next record of the last name (registry dumps group by
                            // owner): `plain_owner` held for these very bytes.
                            let again = self.last_plain && owner == self.last;
                            match if again {
                                Outcome::Owner
                            } else {
                                delegation(owner, rec.line)
                            } {
                                Outcome::Owner => {
                                    self.good = true;
                                    let (last, cov) = (&mut self.last, &mut self.cov);
                                    let keep = accept(owner, last, self.shard.as_ref(), cov);
                                    self.last_plain = true;
                                    if keep {
                                        Outcome::Kept(owner.to_string())
                                    } else {
                                        Outcome::Nothing
                                    }
                                }
                                o => o,
                            }
                        }
                        o => o,
                    }
                }
            },
            Mode::Undecided => unreachable!("decided above"),
        };
        match outcome {
            Outcome::Nothing => Ok(None),
            Outcome::Good => {
                self.good = true;
                Ok(None)
            }
            Outcome::Name(name) => {
                self.good = true;
                let keep = accept(&name, &mut self.last, self.shard.as_ref(), &mut self.cov);
                self.last_plain = false;
                Ok(keep.then_some(Entry::Name(name)))
            }
            Outcome::Kept(name) => Ok(Some(Entry::Name(name))),
            Outcome::Owner | Outcome::Delegation => unreachable!("resolved above"),
            Outcome::Bad(line, why) => self.bad(line, why),
            Outcome::Fatal(line, why) => Err(self.fatal(line, why)),
        }
    }
}

/// A candidate name (already normalised): dedupe, shard, count. Whether it is handed out.
/// (Borrowed, so a dropped duplicate costs no allocation.)
fn accept(name: &str, last: &mut String, shard: Option<&Shard>, cov: &mut SourceCoverage) -> bool {
    if name == last {
        cov.consecutive_duplicates += 1;
        return false;
    }
    cov.names += 1;
    last.clear();
    last.push_str(name);
    if let Some(s) = shard {
        if !s.contains(name) {
            return false;
        }
    }
    cov.in_shard += 1;
    let t = name.trim_end_matches('.');
    let tld = match memchr::memrchr(b'.', t.as_bytes()) {
        Some(i) => &t[i + 1..],
        None => t,
    };
    if let Some(n) = cov.tlds.get_mut(tld) {
        *n += 1;
    } else {
        let key = if cov.tlds.len() < MAX_TLDS {
            tld.to_string()
        } else {
            "(other)".to_string()
        };
        *cov.tlds.entry(key).or_insert(0) += 1;
    }
    true
}

/// Opens every source first (so one that is garbage fails before any name is printed), then
/// streams their names to `out`, one per line; bad lines go to `bad`. Returns the coverage.
pub fn print_names(
    files: &[String],
    format: Format,
    origin: Option<&str>,
    shard: Option<Shard>,
    out: &mut dyn std::io::Write,
    bad: &mut dyn FnMut(&BadLine),
) -> anyhow::Result<Coverage> {
    if files.iter().filter(|f| f.as_str() == "-").count() > 1 {
        anyhow::bail!("stdin (-) given more than once");
    }
    let mut readers = files
        .iter()
        .map(|f| NameReader::open(f, format, origin, shard))
        .collect::<Result<Vec<_>, _>>()?;
    let mut cov = Coverage {
        shard: shard.map(|s| s.to_string()),
        ..Coverage::default()
    };
    use std::io::Write as _;
    let mut out = std::io::BufWriter::with_capacity(256 * 1024, out);
    for mut r in readers.drain(..) {
        for e in r.by_ref() {
            match e? {
                Entry::Name(n) => {
                    out.write_all(n.as_bytes())?;
                    out.write_all(b"\n")?;
                }
                Entry::Bad(b) => bad(&b),
            }
        }
        cov.add(r.into_coverage());
    }
    out.flush()?;
    Ok(cov)
}

/// The coverage as text for people (one line per source, then per-TLD counts if asked).
pub fn coverage_text(cov: &Coverage, tlds: bool) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    for c in &cov.sources {
        let _ = writeln!(
            s,
            "{}: {}{}{}, {} lines, {} records, {} names ({} in shard), {} consecutive \
             duplicates dropped, {} bad lines",
            c.source,
            c.format.map_or("empty", |f| match f {
                Format::Zone => "zone",
                Format::List => "list",
                Format::Auto => "auto",
            }),
            c.apex
                .as_deref()
                .map(|a| format!(" {a}"))
                .unwrap_or_default(),
            match c.compression {
                Some(Compression::Gzip) => " (gzip)",
                Some(Compression::Zstd) => " (zstd)",
                _ => "",
            },
            c.lines,
            c.records,
            c.names,
            c.in_shard,
            c.consecutive_duplicates,
            c.bad_lines
        );
    }
    let _ = writeln!(
        s,
        "total: {} names{}",
        cov.names,
        cov.shard
            .as_ref()
            .map(|k| format!(" in shard {k}"))
            .unwrap_or_default()
    );
    if tlds {
        for (t, n) in cov.tld_totals() {
            let _ = writeln!(s, "  {t}\t{n}");
        }
    }
    s
}

/// Fetches a zone-transfer source of the manifest into its path.
pub fn fetch_source(
    m: &manifest::Manifest,
    name: &str,
) -> anyhow::Result<(std::path::PathBuf, axfr::AxfrSummary)> {
    let spec = m.get(name)?;
    let x = spec
        .axfr
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("source {name} has no `axfr` server to fetch from"))?;
    let key = x
        .tsig_key
        .as_ref()
        .map(|k| axfr::TsigKey::load(&m.resolve(k)))
        .transpose()?;
    let dest = m.resolve(&spec.path);
    let s = axfr::fetch(&x.server, &x.zone, key.as_ref(), &dest)
        .map_err(|e| e.context(format!("fetching {name} ({} from {})", x.zone, x.server)))?;
    Ok((dest, s))
}

fn zone_mode(file: &str, origin: Option<&str>, line: u64) -> Result<Mode, ZoneListError> {
    let parser = MasterParser::new(origin).map_err(|e| ZoneListError {
        file: file.into(),
        line,
        why: format!("bad origin: {e}"),
    })?;
    Ok(Mode::Zone {
        parser: Box::new(parser),
        apex: None,
    })
}

enum Outcome {
    Nothing,
    Good,
    /// The parser's owner is a delegation: its name is a candidate.
    Delegation,
    /// The candidate is the parser's owner as it stands (already normalised).
    Owner,
    /// A candidate name, normalised.
    Name(String),
    /// A name that passed [`accept`].
    Kept(String),
    Bad(u64, String),
    Fatal(u64, String),
}

/// What one zone record means for the name stream.
fn zone_record(
    parser: &MasterParser,
    apex: &mut Option<String>,
    rec: &master::RecordInfo,
    cov: &mut SourceCoverage,
) -> Outcome {
    let owner = parser.owner();
    let apex_name = match apex {
        Some(a) => a.as_str(),
        None => {
            let a = if rec.rtype == "SOA" {
                owner.to_string()
            } else if let Some(o) = parser.origin() {
                o.to_string()
            } else {
                return Outcome::Fatal(
                    rec.line,
                    "cannot tell the zone apex: the first record is not the SOA and no \
                     $ORIGIN (or --origin) is set"
                        .into(),
                );
            };
            cov.apex = Some(a.clone());
            apex.insert(a).as_str()
        }
    };
    let below = if apex_name == "." {
        Some(owner)
    } else if owner == apex_name {
        None
    } else if owner.len() > apex_name.len()
        && owner.ends_with(apex_name)
        && owner.as_bytes()[owner.len() - apex_name.len() - 1] == b'.'
    {
        Some(&owner[..owner.len() - apex_name.len()])
    } else {
        return Outcome::Bad(
            rec.line,
            format!("owner {owner} is outside the zone {apex_name}"),
        );
    };
    if rec.rtype == "SOA" && owner != apex_name {
        return Outcome::Bad(
            rec.line,
            format!("SOA for {owner} inside the zone {apex_name}"),
        );
    }
    let Some(rel) = below else {
        return Outcome::Good;
    };
    // `rel` is `label.` for a name one label below the apex (escaped dots are \046).
    if rec.rtype != "NS"
        || rel == "."
        || memchr::memchr(b'.', &rel.as_bytes()[..rel.len() - 1]).is_some()
    {
        return Outcome::Good;
    }
    Outcome::Delegation
}

/// Whether a canonical owner is already what [`normalize_domain`] would make of it: plain
/// lower-case labels ([`is_plain_label`]) with at least one letter or hyphen in the name (so
/// never an IP literal). Anything else takes `normalize_domain`, which refuses it with a
/// reason or rewrites it.
fn plain_owner(owner: &str) -> bool {
    let bare = owner.strip_suffix('.').unwrap_or(owner);
    owner.len() <= 254
        && !owner.bytes().any(|c| c.is_ascii_uppercase())
        && owner.bytes().any(|c| c.is_ascii_lowercase() || c == b'-')
        && bare.split('.').all(|l| is_plain_label(l.as_bytes()))
}

/// The name of a delegation (the parser's owner), normalised.
fn delegation(owner: &str, line: u64) -> Outcome {
    if plain_owner(owner) {
        return Outcome::Owner;
    }
    match normalize_domain(owner) {
        Ok(n) => Outcome::Name(n.to_ascii()),
        Err(e) => Outcome::Bad(line, format!("delegation {owner}: {e}")),
    }
}

impl Iterator for NameReader {
    type Item = Result<Entry, ZoneListError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.pending.pop_front() {
            return Some(Ok(e));
        }
        if self.failed {
            return None;
        }
        while !self.done {
            match self.step() {
                Ok(Some(e)) => return Some(Ok(e)),
                Ok(None) => {}
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, shard: Option<Shard>) -> (Vec<String>, Vec<BadLine>, SourceCoverage) {
        let r = NameReader::from_reader(
            "t",
            Box::new(std::io::Cursor::new(text.as_bytes().to_vec())),
            Compression::None,
            Format::Auto,
            None,
            shard,
        )
        .unwrap();
        let (mut names, mut bad) = (Vec::new(), Vec::new());
        let mut r = r;
        for e in r.by_ref() {
            match e.unwrap() {
                Entry::Name(n) => names.push(n),
                Entry::Bad(b) => bad.push(b),
            }
        }
        (names, bad, r.into_coverage())
    }

    #[test]
    fn czds_style_zone() {
        let zone = "com.\t900\tin\tsoa\ta.gtld-servers.net. nstld.verisign-grs.com. 1 2 3 4 5\n\
            com.\t172800\tin\tns\ta.gtld-servers.net.\n\
            foo.com.\t172800\tin\tns\tns1.foo.com.\n\
            foo.com.\t172800\tin\tns\tns2.foo.com.\n\
            foo.com.\t86400\tin\tds\t1 8 2 abcd\n\
            ns1.foo.com.\t172800\tin\ta\t192.0.2.1\n\
            Bar.com.\t172800\tin\tns\tns1.foo.com.\n\
            a.b.com.\t172800\tin\tns\tns1.foo.com.\n";
        let (names, bad, cov) = read(zone, None);
        assert_eq!(names, ["foo.com.", "bar.com."]);
        assert!(bad.is_empty());
        assert_eq!(cov.apex.as_deref(), Some("com."));
        assert_eq!(cov.consecutive_duplicates, 1);
        assert_eq!(cov.tlds.get("com"), Some(&2));
    }

    /// Repeated owners (the dedupe shortcut) mixed with owners that need normalising or are
    /// refused: the same names, duplicates and bad lines as taking every record on its own.
    #[test]
    fn repeated_and_unusual_owners() {
        let zone = "xyz.\t900\tin\tsoa\ta.nic.xyz. h.xyz. 1 2 3 4 5\n\
            foo.xyz.\t3600\tin\tns\tns1.foo.xyz.\n\
            foo.xyz.\t3600\tin\tns\tns2.foo.xyz.\n\
            FOO.xyz.\t3600\tin\tns\tns2.foo.xyz.\n\
            foo.xyz.\t3600\tin\tds\t1 13 2 ABCD\n\
            b\\195\\188cher.xyz. NS ns.x.\n\
            xn--bcher-kva.xyz. NS ns.x.\n\
            xn--bcher-kva.xyz. NS ns.x.\n\
            123.xyz. NS ns.x.\n\
            123.xyz. NS ns.x.\n\
            *.xyz. NS ns.x.\n\
            *.xyz. NS ns.x.\n\
            a\\.b.xyz. NS ns.x.\n\
            a\\046b.xyz. NS ns.x.\n\
            deep.sub.xyz. NS ns.x.\n\
            sub.xyz. NS ns.x.\n\
            sub.xyz. NS ( ns2.x. )\n\
            \tNS ns3.x.\n\
            other.com. NS ns.\n\
            upper.xyz. NS ns.\n\
            UPPER.XYZ. NS ns.\n";
        let (names, bad, cov) = read(zone, None);
        assert_eq!(
            names,
            [
                "foo.xyz.",
                "xn--bcher-kva.xyz.",
                "123.xyz.",
                "sub.xyz.",
                "upper.xyz."
            ]
        );
        let bad: Vec<u64> = bad.iter().map(|b| b.line).collect();
        assert_eq!(bad, [6, 11, 12, 13, 14, 19]);
        assert_eq!(cov.consecutive_duplicates, 7);
        assert_eq!(cov.names, 5);
    }

    /// Owners the fast path must not pass on as they are: a hyphen-first label (which no
    /// name parser downstream accepts) is a bad line with its line number and a reason.
    #[test]
    fn hyphen_first_owner_is_a_bad_line() {
        let zone = "xyz.\t900\tin\tsoa\ta.nic.xyz. h.xyz. 1 2 3 4 5\n\
            -bad.xyz. NS ns.x.\n\
            -bad.xyz. NS ns2.x.\n\
            good-.xyz. NS ns.x.\n";
        let (names, bad, _) = read(zone, None);
        assert_eq!(names, ["good-.xyz."]);
        let lines: Vec<u64> = bad.iter().map(|b| b.line).collect();
        assert_eq!(lines, [2, 3]);
        assert!(
            bad[0].why.contains("starts with a hyphen"),
            "{}",
            bad[0].why
        );
    }

    #[test]
    fn lists_and_garbage() {
        let (names, bad, _) = read("# x\nExample.com\nexample.com\nbad name\nbücher.de\n", None);
        assert_eq!(names, ["example.com.", "xn--bcher-kva.de."]);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].line, 4);
        let garbage: String = (0..20).map(|i| format!("!!{i} ??\n")).collect();
        let err = NameReader::from_reader(
            "g",
            Box::new(std::io::Cursor::new(garbage.into_bytes())),
            Compression::None,
            Format::Auto,
            None,
            None,
        )
        .err()
        .unwrap();
        assert!(err.to_string().starts_with("g:11: not a zone"), "{err}");
    }
}
