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

#[derive(Default)]
struct PartBuf {
    expected: Option<usize>,
    domains: Vec<(u64, DomainRow)>,
    hosts: Vec<HostRow>,
    probes: Vec<ProbeRow>,
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

/// Writes one part: hosts, probes, then domains (the commit).
pub fn write_part(
    dir: &Path,
    part: u64,
    domains: Vec<(u64, DomainRow)>,
    mut hosts: Vec<HostRow>,
    mut probes: Vec<ProbeRow>,
) -> Result<()> {
    hosts.sort_by(|a, b| a.host.cmp(&b.host));
    probes.sort_by(|a, b| (&a.host, &a.address).cmp(&(&b.host, &b.address)));
    if !hosts.is_empty() {
        snapshot::write_hosts(&snapshot::part_path(dir, Table::Hosts, part), &hosts)?;
    }
    if !probes.is_empty() {
        snapshot::write_probes(&snapshot::part_path(dir, Table::Probes, part), &probes)?;
    }
    // In input order; the rows are large, so their positions are sorted, not the rows.
    let mut order: Vec<(u64, usize)> = domains
        .iter()
        .enumerate()
        .map(|(at, (index, _))| (*index, at))
        .collect();
    order.sort_unstable();
    let mut slots: Vec<Option<DomainRow>> = domains.into_iter().map(|(_, r)| Some(r)).collect();
    let rows: Vec<DomainRow> = order
        .iter()
        .filter_map(|&(_, at)| slots[at].take())
        .collect();
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
                    let buf = open.entry(part).or_default();
                    buf.domains.push((d.index, d.row));
                    buf.hosts.extend(d.hosts);
                    buf.probes.extend(d.probes);
                    if touched.last() != Some(&part) {
                        touched.push(part);
                    }
                }
            }
            WriterMsg::Sealed { part, count } => {
                open.entry(part).or_default().expected = Some(count);
                touched.push(part);
            }
        }
        touched.sort_unstable();
        touched.dedup();
        for &part in &touched {
            // Taken out only once every domain of the part is in.
            let buf = match open.entry(part) {
                Entry::Occupied(b) if b.get().expected == Some(b.get().domains.len()) => b.remove(),
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
            buf.domains.len(),
            buf.expected
        );
    }
    Ok(committed.len() as u64)
}
