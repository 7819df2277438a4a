//! The reports' I/O: which snapshots a report reads, and streaming their tables part by part.
//!
//! Reports use complete snapshots only (`run.json` with `complete: true`); a month is
//! represented by its latest complete snapshot.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::snapshot::{self, DomainRow, HostRow, ProbeRow, SnapshotEntry, Table};

/// The latest complete snapshot of each month (`YYYY-MM`) under `out`, oldest month first.
pub fn months(out: &Path) -> Result<BTreeMap<String, SnapshotEntry>> {
    let mut m = BTreeMap::new();
    for s in snapshot::catalogue(out)? {
        let complete = s
            .run
            .as_ref()
            .is_some_and(|r| r.complete && r.shard.is_none());
        if complete {
            // The catalogue is sorted by date: a later snapshot of the month replaces.
            m.insert(s.date[..7].to_string(), s);
        }
    }
    Ok(m)
}

/// Every complete snapshot under `out`, oldest first.
pub fn complete(out: &Path) -> Result<Vec<SnapshotEntry>> {
    Ok(snapshot::catalogue(out)?
        .into_iter()
        .filter(|s| {
            s.run
                .as_ref()
                .is_some_and(|r| r.complete && r.shard.is_none())
        })
        .collect())
}

fn check_month(m: &str) -> Result<()> {
    let b = m.as_bytes();
    if m.len() != 7
        || b[4] != b'-'
        || !m[..4]
            .bytes()
            .chain(m[5..].bytes())
            .all(|c| c.is_ascii_digit())
    {
        bail!("bad month {m:?}: expected YYYY-MM");
    }
    Ok(())
}

/// The snapshot of `month` (default: the latest month with a complete snapshot) and of `vs`
/// (default: the previous month with one; `None` when there is none).
pub fn pick(
    out: &Path,
    month: Option<&str>,
    vs: Option<&str>,
) -> Result<(SnapshotEntry, Option<SnapshotEntry>)> {
    let all = months(out)?;
    if all.is_empty() {
        bail!(
            "no complete snapshot under {} (run `dane-survey crawl` first; a snapshot counts \
             once its run.json says complete)",
            out.display()
        );
    }
    let this_key = match month {
        Some(m) => {
            check_month(m)?;
            m.to_string()
        }
        None => all.keys().next_back().cloned().unwrap_or_default(),
    };
    let Some(this) = all.get(&this_key).cloned() else {
        bail!(
            "no complete snapshot in {this_key} under {} (months with one: {})",
            out.display(),
            all.keys().cloned().collect::<Vec<_>>().join(", ")
        );
    };
    let last =
        match vs {
            Some(v) => {
                check_month(v)?;
                Some(all.get(v).cloned().with_context(|| {
                    format!("no complete snapshot in {v} under {}", out.display())
                })?)
            }
            None => all.range(..this_key).next_back().map(|(_, s)| s.clone()),
        };
    Ok((this, last))
}

/// Calls `f` with every row of the snapshot's domains table, one part in memory at a time;
/// returns the number of rows.
pub fn for_each_domain(dir: &Path, mut f: impl FnMut(&DomainRow)) -> Result<u64> {
    let mut n = 0;
    for (_, part) in snapshot::parts(dir, Table::Domains)? {
        for row in snapshot::read_domains(&part)? {
            f(&row);
            n += 1;
        }
    }
    Ok(n)
}

/// The whole hosts table of a snapshot.
pub fn hosts(dir: &Path) -> Result<Vec<HostRow>> {
    let mut v = Vec::new();
    for (_, part) in snapshot::parts(dir, Table::Hosts)? {
        v.extend(snapshot::read_hosts(&part)?);
    }
    Ok(v)
}

/// The whole probes table of a snapshot.
pub fn probes(dir: &Path) -> Result<Vec<ProbeRow>> {
    let mut v = Vec::new();
    for (_, part) in snapshot::parts(dir, Table::Probes)? {
        v.extend(snapshot::read_probes(&part)?);
    }
    Ok(v)
}
