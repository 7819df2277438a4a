//! `rank`: providers by DANE domains, this month against last month, with every difference
//! explained domain by domain.
//!
//! Pure: rows go in ([`Compare::add_last`], [`Compare::add_this`]), a [`Ranking`] comes out.
//! The two months' domain tables are joined by domain name in a hash map holding a few bytes
//! per domain of last month (provider as an interned number, MX security, DANE or not), and
//! this month's rows are streamed past it, so a million domains a month take seconds and
//! well under a gigabyte.
//!
//! Attribution: a domain changes a provider's count when it is a DANE domain (`dane_valid`)
//! of that provider in one month and not in the other. Each such domain gets exactly one
//! cause, checked in this order, so the causes of a provider always add up to its difference:
//!
//! 1. [`Cause::Lists`] — the domain is in only one of the two snapshots (it came or went
//!    through the zone lists);
//! 2. [`Cause::Dnssec`] — its MX lookup's security changed (the zone lost or gained its DS,
//!    or its lookup started or stopped failing);
//! 3. [`Cause::Moved`] — its provider changed (it moved to or from the provider's MX hosts);
//! 4. [`Cause::Tlsa`] — provider and security are unchanged, so its verdict moved between
//!    `dane_valid` and something else: the provider's TLSA broke or was fixed.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use anyhow::{bail, Result};
use serde::Serialize;

use super::table::{signed, thousands, Cell, Kind, Table};
use crate::snapshot::DomainRow;
use crate::verdict::DomainVerdict;

/// Provider aliases: several registrable domains reported as one group (a provider whose MX
/// hosts sit under several zones, e.g. `mailco.test` and `mailco-mx.test` → `MailCo`).
///
/// Exists because the public suffix list splits such providers and the ranking would
/// otherwise show one company in several places.
#[derive(Clone, Debug, Default)]
pub struct Aliases(HashMap<String, String>);

impl Aliases {
    /// Parses an alias file: one `provider group` per line (whitespace, `=` or a tab between;
    /// TOML's `"provider" = "group"` works too), `#` comments and blank lines skipped, a
    /// `[section]` line ignored. Provider names are compared in lower case.
    pub fn parse(text: &str) -> Result<Aliases> {
        let mut m = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() || line.starts_with('[') {
                continue;
            }
            let (a, b) = match line.split_once('=') {
                Some(p) => p,
                None => match line.split_once(char::is_whitespace) {
                    Some(p) => p,
                    None => bail!("alias line {}: want `provider group`: {line:?}", i + 1),
                },
            };
            let unq = |s: &str| s.trim().trim_matches('"').trim().to_owned();
            let (a, b) = (unq(a).to_ascii_lowercase(), unq(b));
            if a.is_empty() || b.is_empty() {
                bail!("alias line {}: want `provider group`: {line:?}", i + 1);
            }
            m.insert(a.trim_end_matches('.').to_owned(), b);
        }
        Ok(Aliases(m))
    }

    /// The name `provider` is reported under (itself when it has no alias).
    pub fn group<'a>(&'a self, provider: &'a str) -> &'a str {
        self.0.get(provider).map(String::as_str).unwrap_or(provider)
    }

    /// How many providers have an alias.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no aliases.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Why a domain entered or left a provider's DANE count; see the module documentation for
/// the order in which they are checked.
///
/// Exists so a month-over-month difference is published with its explanation instead of
/// being explained by hand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// The domain is in only one of the two snapshots: it came or went through the zone lists.
    Lists,
    /// The domain's MX security changed: its zone gained or lost DNSSEC (its DS).
    Dnssec,
    /// The domain's provider changed: it moved to or from the provider's MX hosts.
    Moved,
    /// Same provider, same security, verdict changed: the TLSA broke or was fixed.
    Tlsa,
}

impl Cause {
    /// Every cause, in the order they are checked.
    pub const ALL: [Cause; 4] = [Cause::Lists, Cause::Dnssec, Cause::Moved, Cause::Tlsa];

    /// The stable name (`lists`, `dnssec`, `moved`, `tlsa`).
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Lists => "lists",
            Cause::Dnssec => "dnssec",
            Cause::Moved => "moved",
            Cause::Tlsa => "tlsa",
        }
    }

    /// The cause in words, for a gain (`up`) or a loss.
    pub fn words(self, up: bool) -> &'static str {
        match (self, up) {
            (Cause::Lists, true) => "new in the zone lists",
            (Cause::Lists, false) => "gone from the zone lists",
            (Cause::Dnssec, true) => "zone gained DNSSEC",
            (Cause::Dnssec, false) => "zone lost DNSSEC",
            (Cause::Moved, true) => "moved to its MX hosts",
            (Cause::Moved, false) => "moved away from its MX hosts",
            (Cause::Tlsa, true) => "TLSA fixed",
            (Cause::Tlsa, false) => "TLSA broke",
        }
    }
}

/// One domain that changed a provider's count, with its cause.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Moved {
    /// The domain.
    pub domain: String,
    /// Why.
    pub cause: Cause,
    /// +1 (gained) or -1 (lost).
    pub delta: i64,
    /// For [`Cause::Moved`]: the provider on the other side (where it came from or went to;
    /// `None` when it has none).
    pub other: Option<String>,
}

/// How a provider's difference splits over the causes.
///
/// Exists so the explanation is counted for every domain even when only a few examples are
/// listed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// Domains gained, per cause.
    pub gained: BTreeMap<Cause, u64>,
    /// Domains lost, per cause.
    pub lost: BTreeMap<Cause, u64>,
    /// The domains behind the counts (all of them, or the first `examples` per cause and
    /// direction when the comparison was built with a limit), sorted.
    pub domains: Vec<Moved>,
}

impl Explanation {
    /// Gained minus lost for `cause`.
    pub fn net(&self, cause: Cause) -> i64 {
        self.gained.get(&cause).copied().unwrap_or(0) as i64
            - self.lost.get(&cause).copied().unwrap_or(0) as i64
    }
}

/// One provider's line of the ranking.
///
/// Exists as the published month-over-month figure: place, DANE domains now and then, and
/// the share of its signed domains that already have DANE.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RankRow {
    /// Place this month (1 = most DANE domains; ties share a place); `None` with no DANE
    /// domain this month.
    pub place: Option<u32>,
    /// The provider (or its alias group).
    pub provider: String,
    /// DANE domains (`dane_valid`) this month.
    pub dane: u64,
    /// DANE domains last month (`None` without a last month).
    pub dane_last: Option<u64>,
    /// `dane - dane_last`.
    pub diff: Option<i64>,
    /// Place last month.
    pub place_last: Option<u32>,
    /// The provider's domains with a secure MX RRset (`mx_security = secure`) this month.
    pub signed: u64,
    /// `dane / signed` (`None` when it has no signed domain).
    pub share: Option<f64>,
    /// The difference, cause by cause.
    pub explanation: Explanation,
}

/// The result of [`Compare::finish`]: every provider with DANE domains in either month.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Ranking {
    /// Ranked: most DANE domains this month first, then most last month, then by name.
    pub rows: Vec<RankRow>,
    /// DANE domains this month, in all.
    pub dane_total: u64,
    /// DANE domains last month, in all (`None` without a last month).
    pub dane_total_last: Option<u64>,
    /// Domains this month, in all.
    pub domains: u64,
    /// Domains last month, in all.
    pub domains_last: Option<u64>,
}

impl Ranking {
    /// The `n` rows with the largest differences (by absolute value; ties by place), for the
    /// change explanation. Rows without change are left out.
    pub fn movers(&self, n: usize) -> Vec<&RankRow> {
        let mut v: Vec<&RankRow> = self
            .rows
            .iter()
            .filter(|r| r.diff.is_some_and(|d| d != 0))
            .collect();
        v.sort_by_key(|r| std::cmp::Reverse(r.diff.unwrap_or(0).unsigned_abs()));
        v.truncate(n);
        v
    }
}

/// The ranking as a [`Table`]: the first `top` rows. `causes`: add the net difference per
/// cause (`from_lists`, `from_dnssec`, `from_moves`, `from_tlsa`; they add up to `diff`) — for
/// CSV, JSON and Parquet, where the explanation has no section of its own.
pub fn table(r: &Ranking, month: &str, vs: Option<&str>, top: usize, causes: bool) -> Table {
    let vs_name = vs.unwrap_or("last month");
    let t_dane = format!("DANE {month}");
    let t_last = format!("DANE {vs_name}");
    let t_place_last = format!("place {vs_name}");
    let mut cols: Vec<(&str, &str, Kind)> = vec![
        ("place", "place", Kind::Int),
        ("provider", "provider", Kind::Text),
        ("dane", &t_dane, Kind::Int),
        ("dane_last", &t_last, Kind::Int),
        ("diff", "change", Kind::Diff),
        ("place_last", &t_place_last, Kind::Int),
        ("signed", "signed domains", Kind::Int),
        ("share", "DANE share of signed", Kind::Share),
    ];
    if causes {
        cols.extend([
            ("from_lists", "zone lists", Kind::Diff),
            ("from_dnssec", "DNSSEC", Kind::Diff),
            ("from_moves", "moves", Kind::Diff),
            ("from_tlsa", "TLSA", Kind::Diff),
        ]);
    }
    let mut t = Table::new(&cols);
    for row in r.rows.iter().take(top) {
        let mut cells = vec![
            Cell::from(row.place.map(|p| p as u64)),
            row.provider.as_str().into(),
            row.dane.into(),
            row.dane_last.into(),
            row.diff.into(),
            Cell::from(row.place_last.map(|p| p as u64)),
            row.signed.into(),
            row.share.map(Cell::Share).unwrap_or(Cell::Null),
        ];
        if causes {
            for c in Cause::ALL {
                cells.push(if row.diff.is_some() {
                    Cell::Int(row.explanation.net(c))
                } else {
                    Cell::Null
                });
            }
        }
        t.push(cells);
    }
    t
}

/// One line of a provider's change explanation: a cause, its direction, how many domains,
/// and the domains named (with the provider on the other side of a move).
///
/// Exists so the text report and the web site word the explanation the same way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExplainLine {
    /// The cause.
    pub cause: Cause,
    /// Gained (`true`) or lost.
    pub up: bool,
    /// Domains in all (may be more than `names`).
    pub count: u64,
    /// The domains named, e.g. `shop5.example (from hoster.example)`.
    pub names: Vec<String>,
    /// Domains counted but not named.
    pub more: u64,
}

impl ExplainLine {
    /// `count` with its sign.
    pub fn delta(&self) -> i64 {
        if self.up {
            self.count as i64
        } else {
            -(self.count as i64)
        }
    }
}

/// A provider's change explanation, cause by cause (gains before losses), causes without
/// domains left out.
pub fn explain_lines(row: &RankRow) -> Vec<ExplainLine> {
    let mut out = Vec::new();
    for cause in Cause::ALL {
        for up in [true, false] {
            let count = *if up {
                &row.explanation.gained
            } else {
                &row.explanation.lost
            }
            .get(&cause)
            .unwrap_or(&0);
            if count == 0 {
                continue;
            }
            let names: Vec<String> = row
                .explanation
                .domains
                .iter()
                .filter(|m| m.cause == cause && (m.delta > 0) == up)
                .map(|m| match &m.other {
                    Some(o) if up => format!("{} (from {o})", m.domain),
                    Some(o) => format!("{} (to {o})", m.domain),
                    None => m.domain.clone(),
                })
                .collect();
            let more = count.saturating_sub(names.len() as u64);
            out.push(ExplainLine {
                cause,
                up,
                count,
                names,
                more,
            });
        }
    }
    out
}

/// The change explanation of the `n` top movers, in words, one provider a paragraph: each
/// cause with its count and its domains (`… and K more` when only examples were kept).
pub fn explain_text(r: &Ranking, n: usize, markdown: bool) -> String {
    let mut o = String::new();
    for row in r.movers(n) {
        let diff = row.diff.unwrap_or(0);
        if markdown {
            let _ = writeln!(o, "* **{}** {}", row.provider, signed(diff));
        } else {
            let _ = writeln!(o, "  {} {}", row.provider, signed(diff));
        }
        for l in explain_lines(row) {
            let tail = if l.more > 0 {
                format!(" … and {} more", thousands(l.more as i64))
            } else {
                String::new()
            };
            let _ = writeln!(
                o,
                "{}{} {}: {}{tail}",
                if markdown { "  * " } else { "    " },
                signed(l.delta()),
                l.cause.words(l.up),
                l.names.join(", ")
            );
        }
    }
    o
}

/// No provider (no MX host, or a lookup failure).
const NONE: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
struct Facts {
    provider: u32,
    /// 0 = lookup failed, 1 = insecure, 2 = secure.
    security: u8,
    dane: bool,
}

#[derive(Clone, Debug, Default)]
struct Tally {
    dane: u64,
    signed: u64,
}

/// Sentinel of [`LastMonth`]'s chains.
const END: u32 = u32::MAX;

/// One domain of last month: its name's place in the arena, its facts, the next entry with
/// the same hash.
#[derive(Clone, Copy, Debug)]
struct LastEntry {
    start: usize,
    len: u32,
    next: u32,
    live: bool,
    facts: Facts,
}

/// Last month's facts by domain name: every name in one string arena, a hash index over it.
///
/// Exists because a million `Box<str>` keys, kept alive while this month's parts are decoded
/// and freed around them, fragment glibc's heap badly enough that `malloc_consolidate` took
/// half of the ranking's time; one arena is a handful of large allocations.
#[derive(Default)]
struct LastMonth {
    names: String,
    entries: Vec<LastEntry>,
    /// Hash of a name → its newest entry (older ones with the same hash follow `next`).
    index: HashMap<u64, u32>,
    hasher: std::collections::hash_map::RandomState,
}

impl LastMonth {
    fn name(&self, e: &LastEntry) -> &str {
        &self.names[e.start..e.start + e.len as usize]
    }

    fn find(&self, hash: u64, domain: &str) -> Option<usize> {
        let mut i = *self.index.get(&hash)?;
        while i != END {
            let e = &self.entries[i as usize];
            if e.live && self.name(e) == domain {
                return Some(i as usize);
            }
            i = e.next;
        }
        None
    }

    /// Records `domain`'s facts; `false` (and the facts replaced) when it was there already.
    fn insert(&mut self, domain: &str, facts: Facts) -> bool {
        use std::hash::BuildHasher as _;
        let hash = self.hasher.hash_one(domain);
        if let Some(i) = self.find(hash, domain) {
            self.entries[i].facts = facts;
            return false;
        }
        let next = self.index.get(&hash).copied().unwrap_or(END);
        self.index.insert(hash, self.entries.len() as u32);
        self.entries.push(LastEntry {
            start: self.names.len(),
            len: domain.len() as u32,
            next,
            live: true,
            facts,
        });
        self.names.push_str(domain);
        true
    }

    /// Takes `domain`'s facts out, if it has some.
    fn remove(&mut self, domain: &str) -> Option<Facts> {
        use std::hash::BuildHasher as _;
        let i = self.find(self.hasher.hash_one(domain), domain)?;
        self.entries[i].live = false;
        Some(self.entries[i].facts)
    }

    /// The domains not removed, with their facts.
    fn into_live(self) -> Vec<(String, Facts)> {
        self.entries
            .iter()
            .filter(|e| e.live)
            .map(|e| (self.name(e).to_owned(), e.facts))
            .collect()
    }
}

/// The month-over-month comparison being built: feed every row of last month's domains
/// table to [`Compare::add_last`], then every row of this month's to [`Compare::add_this`],
/// then [`Compare::finish`].
///
/// Exists to keep the join and the attribution pure (no files) and streaming (this month's
/// rows are not kept).
pub struct Compare<'a> {
    aliases: &'a Aliases,
    names: Vec<String>,
    ids: HashMap<String, u32>,
    last: LastMonth,
    has_last: bool,
    tally_last: HashMap<u32, Tally>,
    tally: HashMap<u32, Tally>,
    explain: HashMap<u32, Explanation>,
    examples: Option<usize>,
    listed: HashMap<(u32, Cause, bool), usize>,
    domains: u64,
    domains_last: u64,
}

impl<'a> Compare<'a> {
    /// A new comparison. `has_last`: whether a last month exists (without one, the last-month
    /// columns are empty and nothing is attributed). `examples`: how many domains to keep per
    /// provider, cause and direction (`None`: all).
    pub fn new(aliases: &'a Aliases, has_last: bool, examples: Option<usize>) -> Compare<'a> {
        Compare {
            aliases,
            names: Vec::new(),
            ids: HashMap::new(),
            last: LastMonth::default(),
            has_last,
            tally_last: HashMap::new(),
            tally: HashMap::new(),
            explain: HashMap::new(),
            examples,
            listed: HashMap::new(),
            domains: 0,
            domains_last: 0,
        }
    }

    fn intern(&mut self, provider: Option<&str>) -> u32 {
        let Some(p) = provider else { return NONE };
        let g = self.aliases.group(p);
        if let Some(&id) = self.ids.get(g) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(g.to_owned());
        self.ids.insert(g.to_owned(), id);
        id
    }

    fn facts(&mut self, row: &DomainRow) -> Facts {
        Facts {
            provider: self.intern(row.provider.as_deref()),
            security: match row.mx_security.as_deref() {
                Some("secure") => 2,
                Some(_) => 1,
                None => 0,
            },
            dane: row.verdict == DomainVerdict::DaneValid,
        }
    }

    fn count(tally: &mut HashMap<u32, Tally>, f: Facts) {
        if f.provider == NONE {
            return;
        }
        let t = tally.entry(f.provider).or_default();
        t.dane += f.dane as u64;
        t.signed += (f.security == 2) as u64;
    }

    /// One row of last month's domains table.
    pub fn add_last(&mut self, row: &DomainRow) {
        let f = self.facts(row);
        self.domains_last += 1;
        if self.last.insert(&row.domain, f) {
            Self::count(&mut self.tally_last, f);
        }
    }

    /// One row of this month's domains table.
    pub fn add_this(&mut self, row: &DomainRow) {
        let f = self.facts(row);
        self.domains += 1;
        Self::count(&mut self.tally, f);
        if self.has_last {
            let old = self.last.remove(row.domain.as_str());
            self.attribute(&row.domain, old, Some(f));
        }
    }

    fn attribute(&mut self, domain: &str, old: Option<Facts>, new: Option<Facts>) {
        let was = old.filter(|f| f.dane).map(|f| f.provider);
        let is = new.filter(|f| f.dane).map(|f| f.provider);
        if was == is {
            return;
        }
        let cause = match (old, new) {
            (Some(o), Some(n)) if o.security != n.security => Cause::Dnssec,
            (Some(o), Some(n)) if o.provider != n.provider => Cause::Moved,
            (Some(_), Some(_)) => Cause::Tlsa,
            _ => Cause::Lists,
        };
        let other = |me: Option<Facts>| me.map(|f| f.provider);
        if let Some(p) = was {
            self.note(p, domain, cause, false, other(new));
        }
        if let Some(p) = is {
            self.note(p, domain, cause, true, other(old));
        }
    }

    fn note(&mut self, provider: u32, domain: &str, cause: Cause, up: bool, other: Option<u32>) {
        if provider == NONE {
            return;
        }
        let e = self.explain.entry(provider).or_default();
        *if up { &mut e.gained } else { &mut e.lost }
            .entry(cause)
            .or_default() += 1;
        let n = self.listed.entry((provider, cause, up)).or_default();
        if self.examples.is_none_or(|max| *n < max) {
            *n += 1;
            e.domains.push(Moved {
                domain: domain.to_owned(),
                cause,
                delta: if up { 1 } else { -1 },
                other: (cause == Cause::Moved)
                    .then(|| {
                        other
                            .filter(|&o| o != NONE)
                            .map(|o| self.names[o as usize].clone())
                    })
                    .flatten(),
            });
        }
    }

    /// The ranking with its explanations.
    pub fn finish(mut self) -> Ranking {
        // Domains of last month that did not come back: gone from the zone lists.
        let gone = std::mem::take(&mut self.last).into_live();
        if self.has_last {
            for (d, f) in gone {
                self.attribute(&d, Some(f), None);
            }
        }
        let mut ids: Vec<u32> = self
            .tally
            .iter()
            .filter(|(_, t)| t.dane > 0)
            .map(|(id, _)| *id)
            .chain(
                self.tally_last
                    .iter()
                    .filter(|(_, t)| t.dane > 0)
                    .map(|(id, _)| *id),
            )
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let now = |id: u32| self.tally.get(&id).map(|t| t.dane).unwrap_or(0);
        let then = |id: u32| self.tally_last.get(&id).map(|t| t.dane).unwrap_or(0);
        let place_now = places(ids.iter().map(|&i| now(i)));
        let place_then = places(ids.iter().map(|&i| then(i)));
        let mut rows: Vec<RankRow> = ids
            .iter()
            .map(|&id| {
                let t = self.tally.get(&id).cloned().unwrap_or_default();
                let last = self.has_last.then(|| then(id));
                let mut explanation = self.explain.remove(&id).unwrap_or_default();
                explanation.domains.sort_by(|a, b| {
                    (a.cause, a.delta, &a.domain).cmp(&(b.cause, b.delta, &b.domain))
                });
                RankRow {
                    place: place_now(t.dane),
                    provider: self.names[id as usize].clone(),
                    dane: t.dane,
                    dane_last: last,
                    diff: last.map(|l| t.dane as i64 - l as i64),
                    place_last: if self.has_last {
                        place_then(then(id))
                    } else {
                        None
                    },
                    signed: t.signed,
                    share: (t.signed > 0).then(|| t.dane as f64 / t.signed as f64),
                    explanation,
                }
            })
            .collect();
        rows.sort_by(|a, b| {
            b.dane
                .cmp(&a.dane)
                .then(b.dane_last.cmp(&a.dane_last))
                .then(a.provider.cmp(&b.provider))
        });
        Ranking {
            dane_total: self.tally.values().map(|t| t.dane).sum(),
            dane_total_last: self
                .has_last
                .then(|| self.tally_last.values().map(|t| t.dane).sum()),
            domains: self.domains,
            domains_last: self.has_last.then_some(self.domains_last),
            rows,
        }
    }
}

/// Competition ranking ("1224"): a provider's place is one more than the number of providers
/// with more DANE domains; a provider with none has no place.
fn places(counts: impl Iterator<Item = u64>) -> impl Fn(u64) -> Option<u32> {
    let mut sorted: Vec<u64> = counts.filter(|&c| c > 0).collect();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    move |c| (c > 0).then(|| sorted.partition_point(|&x| x > c) as u32 + 1)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A domain row with just the fields the ranking reads.
    pub(crate) fn row(
        domain: &str,
        provider: Option<&str>,
        security: Option<&str>,
        v: DomainVerdict,
    ) -> DomainRow {
        DomainRow {
            domain: domain.into(),
            tld: domain.rsplit('.').next().unwrap_or("").into(),
            source: "test".into(),
            mx_lookup: String::new(),
            mx_security: security.map(Into::into),
            mx: Vec::new(),
            primary_hosts: Vec::new(),
            provider: provider.map(Into::into),
            providers: provider.map(|p| vec![p.to_string()]).unwrap_or_default(),
            verdict: v,
            all_hosts_verdict: None,
            reason: String::new(),
            checked_at: 0,
        }
    }

    use DomainVerdict::*;
    const S: Option<&str> = Some("secure");

    /// provider, place, DANE, DANE last month, change, place last month.
    type Line<'a> = (
        &'a str,
        Option<u32>,
        u64,
        Option<u64>,
        Option<i64>,
        Option<u32>,
    );
    const I: Option<&str> = Some("insecure");

    fn rank(last: &[DomainRow], this: &[DomainRow], aliases: &Aliases) -> Ranking {
        let mut c = Compare::new(aliases, true, None);
        for r in last {
            c.add_last(r);
        }
        for r in this {
            c.add_this(r);
        }
        c.finish()
    }

    fn get<'a>(r: &'a Ranking, p: &str) -> &'a RankRow {
        r.rows.iter().find(|x| x.provider == p).unwrap()
    }

    fn causes(r: &RankRow) -> Vec<(String, Cause, i64, Option<String>)> {
        r.explanation
            .domains
            .iter()
            .map(|m| (m.domain.clone(), m.cause, m.delta, m.other.clone()))
            .collect()
    }

    /// The lab's month-2 story, by hand: every cause once, and the sums add up.
    #[test]
    fn every_cause_once() {
        let last = vec![
            row("a1", Some("hoster"), S, DaneValid), // TLSA breaks
            row("a2", Some("hoster"), S, DaneValid), // leaves the lists
            row("a3", Some("hoster"), S, DaneValid), // moves to mailco
            row("b1", Some("mailco"), S, NoTlsa),    // TLSA fixed
            row("c1", Some("solo"), S, DaneValid),   // loses its DS
            row("d1", Some("steady"), S, DaneValid), // unchanged
            row("x1", Some("hoster"), I, Insecure),  // unsigned, never counted
        ];
        let this = vec![
            row("a1", Some("hoster"), S, DaneFailing),
            row("a3", Some("mailco"), S, DaneValid),
            row("b1", Some("mailco"), S, DaneValid),
            row("n1", Some("mailco"), S, DaneValid), // new in the lists
            row("c1", Some("solo"), I, Insecure),
            row("d1", Some("steady"), S, DaneValid),
            row("x1", Some("hoster"), I, Insecure),
        ];
        let r = rank(&last, &this, &Aliases::default());
        let order: Vec<Line> = r
            .rows
            .iter()
            .map(|x| {
                (
                    x.provider.as_str(),
                    x.place,
                    x.dane,
                    x.dane_last,
                    x.diff,
                    x.place_last,
                )
            })
            .collect();
        assert_eq!(
            order,
            vec![
                ("mailco", Some(1), 3, Some(0), Some(3), None),
                ("steady", Some(2), 1, Some(1), Some(0), Some(2)),
                ("hoster", None, 0, Some(3), Some(-3), Some(1)),
                ("solo", None, 0, Some(1), Some(-1), Some(2)),
            ]
        );
        let h = get(&r, "hoster");
        assert_eq!(
            causes(h),
            vec![
                ("a2".into(), Cause::Lists, -1, None),
                ("a3".into(), Cause::Moved, -1, Some("mailco".into())),
                ("a1".into(), Cause::Tlsa, -1, None),
            ]
        );
        assert_eq!(h.signed, 1);
        assert_eq!(h.share, Some(0.0));
        let m = get(&r, "mailco");
        assert_eq!(
            causes(m),
            vec![
                ("n1".into(), Cause::Lists, 1, None),
                ("a3".into(), Cause::Moved, 1, Some("hoster".into())),
                ("b1".into(), Cause::Tlsa, 1, None),
            ]
        );
        assert_eq!(m.share, Some(1.0));
        assert_eq!(
            causes(get(&r, "solo")),
            vec![("c1".into(), Cause::Dnssec, -1, None)]
        );
        assert!(get(&r, "steady").explanation.domains.is_empty());
        for row in &r.rows {
            let sum: i64 = Cause::ALL.iter().map(|&c| row.explanation.net(c)).sum();
            assert_eq!(Some(sum), row.diff, "{}", row.provider);
        }
        assert_eq!((r.dane_total, r.dane_total_last), (4, Some(5)));
        let movers: Vec<&str> = r.movers(2).iter().map(|x| x.provider.as_str()).collect();
        assert_eq!(movers, vec!["mailco", "hoster"]);
    }

    #[test]
    fn ties_share_a_place_and_dnssec_beats_moved() {
        let last = vec![
            row("a", Some("p"), S, DaneValid),
            row("b", Some("q"), S, DaneValid),
            row("c", Some("r"), S, DaneValid),
            row("c2", Some("r"), S, DaneValid),
            // Lost DNSSEC and changed provider at once: DNSSEC is checked first.
            row("e", Some("p"), S, DaneValid),
            // A lookup that starts failing has no provider: DNSSEC (security changed).
            row("f", Some("q"), S, DaneValid),
        ];
        let this = vec![
            row("a", Some("p"), S, DaneValid),
            row("b", Some("q"), S, DaneValid),
            row("c", Some("r"), S, DaneValid),
            row("c2", Some("r"), S, DaneValid),
            row("e", Some("z"), I, Insecure),
            row("f", None, None, MxLookupFailed),
        ];
        let r = rank(&last, &this, &Aliases::default());
        let places: Vec<(&str, Option<u32>, Option<u32>)> = r
            .rows
            .iter()
            .map(|x| (x.provider.as_str(), x.place, x.place_last))
            .collect();
        assert_eq!(
            places,
            vec![
                ("r", Some(1), Some(1)),
                ("p", Some(2), Some(1)),
                ("q", Some(2), Some(1))
            ]
        );
        assert_eq!(
            causes(get(&r, "p")),
            vec![("e".into(), Cause::Dnssec, -1, None)]
        );
        assert_eq!(
            causes(get(&r, "q")),
            vec![("f".into(), Cause::Dnssec, -1, None)]
        );
        assert!(r.rows.iter().all(|x| x.provider != "z"));
    }

    #[test]
    fn aliases_merge_providers_and_hide_internal_moves() {
        let aliases = Aliases::parse(
            "# MailCo runs two MX zones\n[aliases]\n\"mailco.test\" = \"MailCo\"\nmailco-mx.test\tMailCo\n",
        )
        .unwrap();
        assert_eq!(aliases.len(), 2);
        let last = vec![
            row("a", Some("mailco.test"), S, DaneValid),
            row("b", Some("mailco-mx.test"), S, DaneValid),
        ];
        let this = vec![
            row("a", Some("mailco-mx.test"), S, DaneValid),
            row("b", Some("mailco-mx.test"), S, DaneValid),
            row("c", Some("MAILCO.TEST"), S, NoTlsa),
        ];
        let r = rank(&last, &this, &aliases);
        assert_eq!(r.rows.len(), 1);
        let m = &r.rows[0];
        assert_eq!(
            (m.provider.as_str(), m.dane, m.diff),
            ("MailCo", 2, Some(0))
        );
        assert!(
            m.explanation.domains.is_empty(),
            "a move inside the group is no move"
        );
        assert!(Aliases::parse("lonely\n").is_err());
    }

    #[test]
    fn without_last_month_nothing_is_attributed() {
        let a = Aliases::default();
        let mut c = Compare::new(&a, false, None);
        c.add_this(&row("a", Some("p"), S, DaneValid));
        let r = c.finish();
        assert_eq!(r.rows[0].dane_last, None);
        assert_eq!(r.rows[0].diff, None);
        assert_eq!(r.rows[0].place, Some(1));
        assert!(r.rows[0].explanation.domains.is_empty());
    }

    #[test]
    fn last_month_arena_finds_removes_and_replaces() {
        let f = |dane| Facts {
            provider: 1,
            security: 2,
            dane,
        };
        let mut m = LastMonth::default();
        for i in 0..10_000 {
            assert!(m.insert(&format!("d{i}.test"), f(false)));
        }
        assert!(
            !m.insert("d7.test", f(true)),
            "a duplicate is no new domain"
        );
        assert!(m.remove("d7.test").unwrap().dane);
        assert!(m.remove("d7.test").is_none());
        assert!(m.remove("d10000.test").is_none());
        assert!(m.remove("d9999.test").is_some());
        let live = m.into_live();
        assert_eq!(live.len(), 9_998);
        assert!(live.iter().any(|(d, _)| d == "d0.test"));
    }

    #[test]
    fn examples_are_bounded_but_counts_are_not() {
        let a = Aliases::default();
        let mut c = Compare::new(&a, true, Some(2));
        for i in 0..5 {
            c.add_last(&row(&format!("d{i}"), Some("p"), S, DaneValid));
        }
        let r = c.finish();
        let p = &r.rows[0];
        assert_eq!(p.explanation.lost.get(&Cause::Lists), Some(&5));
        assert_eq!(p.explanation.domains.len(), 2);
        assert_eq!(p.diff, Some(-5));
    }
}
