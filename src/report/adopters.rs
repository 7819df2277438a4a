//! `adopters`: the slow adopters — providers whose customers' zones are signed but whose MX
//! hosts have no usable DANE, biggest first.
//!
//! Pure: domain rows in ([`Adopters::add`]), ranked rows out ([`Adopters::finish`]).
//! A domain *lacks* DANE when its MX RRset is secure and its verdict is `no_tlsa` (secure MX
//! hosts without TLSA) or `insecure_mx_host` (MX hosts in unsigned zones): one TLSA record
//! set (or one DS) at the provider would protect all of them.

use std::collections::HashMap;

use serde::Serialize;

use super::rank::Aliases;
use super::table::{Cell, Kind, Table};
use crate::snapshot::DomainRow;
use crate::verdict::DomainVerdict;

/// One provider of the slow-adopter list.
///
/// Exists for outreach: the providers where one change protects the most signed domains.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AdopterRow {
    /// Place (1 = most domains lacking DANE; ties share a place).
    pub place: u32,
    /// The provider (or its alias group).
    pub provider: String,
    /// Signed domains (secure MX) whose verdict is `no_tlsa` or `insecure_mx_host`.
    pub lacking: u64,
    /// Of those, `no_tlsa`.
    pub no_tlsa: u64,
    /// Of those, `insecure_mx_host`.
    pub insecure_mx_host: u64,
    /// The provider's signed domains (`mx_security = secure`).
    pub signed: u64,
    /// The provider's DANE domains (`dane_valid`).
    pub dane: u64,
    /// `dane / signed`: the share already on DANE.
    pub share: Option<f64>,
}

#[derive(Default)]
struct Count {
    no_tlsa: u64,
    insecure_mx_host: u64,
    signed: u64,
    dane: u64,
}

/// The slow-adopter tally being built from one month's domain rows.
///
/// Exists to keep the counting pure and streaming (rows are not kept).
pub struct Adopters<'a> {
    aliases: &'a Aliases,
    by: HashMap<String, Count>,
}

impl<'a> Adopters<'a> {
    /// An empty tally.
    pub fn new(aliases: &'a Aliases) -> Adopters<'a> {
        Adopters {
            aliases,
            by: HashMap::new(),
        }
    }

    /// One row of the domains table.
    pub fn add(&mut self, row: &DomainRow) {
        let Some(p) = row.provider.as_deref() else {
            return;
        };
        let secure = row.mx_security.as_deref() == Some("secure");
        let g = self.aliases.group(p);
        let c = match self.by.get_mut(g) {
            Some(c) => c,
            None => self.by.entry(g.to_owned()).or_default(),
        };
        c.signed += secure as u64;
        match row.verdict {
            DomainVerdict::DaneValid => c.dane += 1,
            DomainVerdict::NoTlsa if secure => c.no_tlsa += 1,
            DomainVerdict::InsecureMxHost if secure => c.insecure_mx_host += 1,
            _ => {}
        }
    }

    /// Providers with at least one domain lacking DANE, most first (then by name).
    pub fn finish(self) -> Vec<AdopterRow> {
        let mut rows: Vec<AdopterRow> = self
            .by
            .into_iter()
            .filter(|(_, c)| c.no_tlsa + c.insecure_mx_host > 0)
            .map(|(provider, c)| AdopterRow {
                place: 0,
                provider,
                lacking: c.no_tlsa + c.insecure_mx_host,
                no_tlsa: c.no_tlsa,
                insecure_mx_host: c.insecure_mx_host,
                signed: c.signed,
                dane: c.dane,
                share: (c.signed > 0).then(|| c.dane as f64 / c.signed as f64),
            })
            .collect();
        rows.sort_by(|a, b| b.lacking.cmp(&a.lacking).then(a.provider.cmp(&b.provider)));
        let mut place = 0;
        let mut prev = None;
        for (i, r) in rows.iter_mut().enumerate() {
            if prev != Some(r.lacking) {
                place = i as u32 + 1;
                prev = Some(r.lacking);
            }
            r.place = place;
        }
        rows
    }
}

/// The slow adopters as a [`Table`]: the first `top` rows.
pub fn table(rows: &[AdopterRow], top: usize) -> Table {
    let mut t = Table::new(&[
        ("place", "place", Kind::Int),
        ("provider", "provider", Kind::Text),
        ("lacking", "signed without DANE", Kind::Int),
        ("no_tlsa", "no TLSA", Kind::Int),
        ("insecure_mx_host", "MX host unsigned", Kind::Int),
        ("signed", "signed domains", Kind::Int),
        ("dane", "DANE domains", Kind::Int),
        ("share", "DANE share of signed", Kind::Share),
    ]);
    for r in rows.iter().take(top) {
        t.push(vec![
            Cell::Int(r.place as i64),
            r.provider.as_str().into(),
            r.lacking.into(),
            r.no_tlsa.into(),
            r.insecure_mx_host.into(),
            r.signed.into(),
            r.dane.into(),
            r.share.map(Cell::Share).unwrap_or(Cell::Null),
        ]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::rank::tests::row;
    use DomainVerdict::*;

    #[test]
    fn signed_without_dane_ranked() {
        let s = Some("secure");
        let rows = [
            row("a", Some("big"), s, NoTlsa),
            row("b", Some("big"), s, NoTlsa),
            row("c", Some("big"), s, DaneValid),
            row("d", Some("big"), Some("insecure"), Insecure),
            row("e", Some("hostzone"), s, InsecureMxHost),
            row("f", Some("done"), s, DaneValid),
            row("g", Some("broken"), s, DaneFailing),
            row("h", None, None, MxLookupFailed),
        ];
        let a = Aliases::default();
        let mut t = Adopters::new(&a);
        for r in &rows {
            t.add(r);
        }
        let got = t.finish();
        assert_eq!(got.len(), 2);
        assert_eq!(
            (
                got[0].place,
                got[0].provider.as_str(),
                got[0].lacking,
                got[0].signed,
                got[0].dane
            ),
            (1, "big", 2, 3, 1)
        );
        assert!((got[0].share.unwrap() - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(
            (
                got[1].place,
                got[1].provider.as_str(),
                got[1].insecure_mx_host,
                got[1].share
            ),
            (2, "hostzone", 1, Some(0.0))
        );
    }
}
