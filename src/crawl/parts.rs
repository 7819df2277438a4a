//! The snapshot writer: collects finished domains into parts and commits each part whole.
//!
//! A part is committed by writing its hosts and probes files first and its domains file last,
//! each atomically (temporary name, fsync, rename): a part whose domains file exists is
//! complete, anything else is a leftover that a resumed crawl deletes and redoes. Host and
//! probe rows travel with the part of the domain that first needed them, so a committed part
//! never refers to a host whose row could still be lost.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use tokio::sync::{mpsc, watch};

use crate::snapshot::{self, DomainRow, HostRow, ProbeRow, Table};

use super::progress::Tally;

/// One finished domain, with the host and probe rows it was first to produce.
#[derive(Debug)]
pub struct DomainDone {
    /// The domain's input index.
    pub index: u64,
    /// Its row.
    pub row: DomainRow,
    /// Host rows first produced for this domain.
    pub hosts: Vec<HostRow>,
    /// Probe rows first produced for this domain.
    pub probes: Vec<ProbeRow>,
}

/// What the writer receives.
#[derive(Debug)]
pub enum WriterMsg {
    /// Finished domains.
    Done(Vec<DomainDone>),
    /// A part's final size (from the input stage).
    Sealed {
        /// The part.
        part: u64,
        /// Domains in it.
        count: usize,
    },
}

/// A part being assembled.
struct PartBuf {
    /// Its size, once the input stage has sealed it.
    expected: Option<usize>,
    /// The rows by position in the part (index − first index), so that the part is in input
    /// order when complete without sorting or moving rows again.
    domains: Vec<Option<DomainRow>>,
    /// Rows in `domains`.
    filled: usize,
    hosts: Vec<HostRow>,
    probes: Vec<ProbeRow>,
}

/// Room made for a part's rows when it opens (a part can be smaller, or much larger).
const PART_ROOM: usize = 16 * 1024;

impl PartBuf {
    fn new(part_size: u64) -> Self {
        PartBuf {
            expected: None,
            domains: Vec::with_capacity(
                usize::try_from(part_size)
                    .unwrap_or(PART_ROOM)
                    .min(PART_ROOM),
            ),
            filled: 0,
            hosts: Vec::new(),
            probes: Vec::new(),
        }
    }

    /// Puts a domain's row at its position. A position already filled is a bug upstream.
    fn put(&mut self, at: usize, row: DomainRow) -> Result<()> {
        if self.domains.len() <= at {
            self.domains.resize_with(at + 1, || None);
        }
        let slot = &mut self.domains[at];
        if slot.is_some() {
            bail!("internal: domain {} of a part finished twice", at);
        }
        *slot = Some(row);
        self.filled += 1;
        Ok(())
    }

    fn complete(&self) -> bool {
        self.expected == Some(self.filled)
    }
}

/// Finds the parts a previous run committed, deletes what it left half-done, and returns the
/// committed part numbers.
pub fn recover(dir: &Path) -> Result<BTreeSet<u64>> {
    snapshot::remove_temp_files(dir)?;
    let done: BTreeSet<u64> = snapshot::parts(dir, Table::Domains)?.into_keys().collect();
    for table in [Table::Hosts, Table::Probes] {
        for (part, path) in snapshot::parts(dir, table)? {
            if !done.contains(&part) {
                std::fs::remove_file(&path)
                    .with_context(|| format!("cannot remove {}", path.display()))?;
            }
        }
    }
    Ok(done)
}

/// Writes one part: hosts, probes, then domains (the commit), the domains in input order
/// (by position in the part; an empty position is a bug upstream).
pub fn write_part(
    dir: &Path,
    part: u64,
    domains: Vec<Option<DomainRow>>,
    mut hosts: Vec<HostRow>,
    mut probes: Vec<ProbeRow>,
) -> Result<()> {
    let expected = domains.len();
    // Sized up front: collected through `flatten`, the vector would grow (and copy every
    // row again) a dozen times.
    let mut rows: Vec<DomainRow> = Vec::with_capacity(expected);
    rows.extend(domains.into_iter().flatten());
    if rows.len() != expected {
        bail!(
            "internal: part {part} has {} of its {expected} domains",
            rows.len()
        );
    }
    hosts.sort_by(|a, b| a.host.cmp(&b.host));
    probes.sort_by(|a, b| (&a.host, &a.address).cmp(&(&b.host, &b.address)));
    if !hosts.is_empty() {
        snapshot::write_hosts(&snapshot::part_path(dir, Table::Hosts, part), &hosts)?;
    }
    if !probes.is_empty() {
        snapshot::write_probes(&snapshot::part_path(dir, Table::Probes, part), &probes)?;
    }
    snapshot::write_domains(&snapshot::part_path(dir, Table::Domains, part), &rows)
}

/// The writer task: assembles parts from finished domains and commits each once complete.
/// Publishes the lowest part not yet committed on `lowest`, so the dispatcher can keep the
/// number of open parts (and the memory they hold) bounded.
pub async fn run(
    dir: PathBuf,
    part_size: u64,
    done_before: BTreeSet<u64>,
    mut rx: mpsc::Receiver<WriterMsg>,
    lowest: watch::Sender<u64>,
    tally: Arc<Tally>,
) -> Result<u64> {
    let mut open: BTreeMap<u64, PartBuf> = BTreeMap::new();
    let mut committed: BTreeSet<u64> = BTreeSet::new();
    let mut next = 0u64;
    let advance = |next: &mut u64, committed: &BTreeSet<u64>| {
        while done_before.contains(next) || committed.contains(next) {
            *next += 1;
        }
    };
    advance(&mut next, &committed);
    let _ = lowest.send(next);
    let mut touched: Vec<u64> = Vec::new();
    while let Some(msg) = rx.recv().await {
        touched.clear();
        match msg {
            WriterMsg::Done(batch) => {
                for d in batch {
                    let part = d.index / part_size;
                    let buf = open.entry(part).or_insert_with(|| PartBuf::new(part_size));
                    // Below part_size, which fits the part's vector.
                    buf.put((d.index % part_size) as usize, d.row)?;
                    buf.hosts.extend(d.hosts);
                    buf.probes.extend(d.probes);
                    if touched.last() != Some(&part) {
                        touched.push(part);
                    }
                }
            }
            WriterMsg::Sealed { part, count } => {
                open.entry(part)
                    .or_insert_with(|| PartBuf::new(part_size))
                    .expected = Some(count);
                touched.push(part);
            }
        }
        touched.sort_unstable();
        touched.dedup();
        for &part in &touched {
            // Taken out only once every domain of the part is in.
            let buf = match open.entry(part) {
                Entry::Occupied(b) if b.get().complete() => b.remove(),
                _ => continue,
            };
            let d = dir.clone();
            tokio::task::spawn_blocking(move || {
                write_part(&d, part, buf.domains, buf.hosts, buf.probes)
            })
            .await
            .context("the part writer panicked")?
            .with_context(|| format!("writing part {part}"))?;
            committed.insert(part);
            tally.parts.fetch_add(1, Ordering::Relaxed);
        }
        advance(&mut next, &committed);
        let _ = lowest.send_if_modified(|low| std::mem::replace(low, next) != next);
    }
    if let Some((part, buf)) = open.iter().next() {
        bail!(
            "part {part} was left incomplete ({} of {:?} domains); it will be redone on resume",
            buf.filled,
            buf.expected
        );
    }
    Ok(committed.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::DomainVerdict;

    fn row(name: &str) -> DomainRow {
        DomainRow {
            domain: name.to_owned(),
            tld: "test".to_owned(),
            source: "list.txt".to_owned(),
            mx_lookup: "secure NXDOMAIN".to_owned(),
            mx_security: Some("secure".to_owned()),
            mx: Vec::new(),
            primary_hosts: Vec::new(),
            provider: None,
            providers: Vec::new(),
            verdict: DomainVerdict::Nxdomain,
            all_hosts_verdict: None,
            reason: "the domain does not exist".to_owned(),
            checked_at: 0,
        }
    }

    #[tokio::test]
    async fn parts_are_committed_complete_and_in_input_order() {
        let dir = std::env::temp_dir().join(format!(
            "dane-survey-parts-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        for t in Table::ALL {
            std::fs::create_dir_all(dir.join(t.name())).unwrap();
        }
        let (tx, rx) = mpsc::channel(8);
        let (low_tx, low_rx) = watch::channel(0);
        let writer = tokio::spawn(run(
            dir.clone(),
            4,
            BTreeSet::new(),
            rx,
            low_tx,
            Arc::new(Tally::default()),
        ));
        // Part 0 (0..4) and part 1 (4..6, sealed short), finishing out of order.
        let done = |i: u64| DomainDone {
            index: i,
            row: row(&format!("d{i}.test")),
            hosts: Vec::new(),
            probes: Vec::new(),
        };
        tx.send(WriterMsg::Done(vec![done(5), done(2), done(0)]))
            .await
            .unwrap();
        tx.send(WriterMsg::Sealed { part: 1, count: 2 })
            .await
            .unwrap();
        tx.send(WriterMsg::Done(vec![done(3), done(4)]))
            .await
            .unwrap();
        tx.send(WriterMsg::Sealed { part: 0, count: 4 })
            .await
            .unwrap();
        assert_eq!(*low_rx.borrow(), 0, "part 0 still lacks d1");
        tx.send(WriterMsg::Done(vec![done(1)])).await.unwrap();
        drop(tx);
        assert_eq!(writer.await.unwrap().unwrap(), 2);
        assert_eq!(*low_rx.borrow(), 2);
        let names = |part: u64| -> Vec<String> {
            snapshot::read_domains(&snapshot::part_path(&dir, Table::Domains, part))
                .unwrap()
                .into_iter()
                .map(|r| r.domain)
                .collect()
        };
        assert_eq!(names(0), ["d0.test", "d1.test", "d2.test", "d3.test"]);
        assert_eq!(names(1), ["d4.test", "d5.test"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_domain_finished_twice_is_refused() {
        let mut part = PartBuf::new(4);
        part.put(1, row("a.test")).unwrap();
        assert!(part.put(1, row("b.test")).is_err());
        part.expected = Some(2);
        assert!(!part.complete());
        part.put(0, row("c.test")).unwrap();
        assert!(part.complete());
    }
}
