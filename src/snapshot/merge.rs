//! `dane-survey merge`: one snapshot out of the outputs of `crawl --shard K/N`.
//!
//! Shards partition the domains (by the stable hash of `zonelist::shard`), but not the MX
//! hosts: two shards' domains may share a host, so hosts and probes are de-duplicated by key,
//! keeping the row of the lowest shard. Domain parts are copied as they are, renumbered.
//! The result is built in a hidden sibling directory and swapped in at the end, so a merge
//! that fails or crashes leaves the previous output (if any) as it was.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::files::{create_dir_durable, sync_dir};
use super::tables::{part_rows, read_domain_names};
use super::{
    part_path, parts, read_hosts, read_probes, read_run, write_hosts, write_probes, write_run,
    InputInfo, RunInfo, Table, SCHEMA_VERSION,
};
use crate::verdict::TAXONOMY_VERSION;
use crate::zonelist::shard::Shard;

/// Rows per part of the merged hosts and probes tables.
const MERGE_PART_ROWS: usize = 4 * super::ROW_GROUP_ROWS;

/// Merges the shard snapshot directories `shards` into the snapshot directory `out` (the final
/// `…/snapshot=YYYY-MM-DD`), replacing it if it exists, and returns the merged `run.json`.
///
/// Refuses shards that are incomplete, not shard outputs, of different dates, schema or
/// taxonomy versions or shard counts, given twice, read from different inputs, or whose domain
/// rows do not belong to their shard. `complete` is true only when all N shards are present.
pub fn merge(shards: &[PathBuf], out: &Path) -> Result<RunInfo> {
    if shards.is_empty() {
        bail!("merge: no shard directories given");
    }
    let out_abs = absolute(out)?;
    let mut runs: Vec<(Shard, PathBuf, RunInfo)> = Vec::new();
    for dir in shards {
        if absolute(dir)? == out_abs {
            bail!("merge: {} is both a shard and the output", dir.display());
        }
        let run = read_run(dir)?
            .ok_or_else(|| anyhow!("{}: no run.json: not a crawl output", dir.display()))?;
        let shard: Shard = match &run.shard {
            Some(s) => s
                .parse()
                .map_err(|e| anyhow!("{}: run.json: {e}", dir.display()))?,
            None => bail!(
                "{}: not a shard's output (run.json has no shard)",
                dir.display()
            ),
        };
        if !run.complete {
            bail!(
                "{}: shard {shard} is incomplete: resume its crawl first",
                dir.display()
            );
        }
        if run.schema_version != SCHEMA_VERSION || run.taxonomy_version != TAXONOMY_VERSION {
            bail!(
                "{}: schema/taxonomy version {}/{}, this build writes {SCHEMA_VERSION}/\
                 {TAXONOMY_VERSION}: merge with the dane-survey that crawled it",
                dir.display(),
                run.schema_version,
                run.taxonomy_version
            );
        }
        runs.push((shard, dir.clone(), run));
    }
    runs.sort_by_key(|(s, _, _)| s.k);
    let runs_only: Vec<(Shard, &Path, &RunInfo)> =
        runs.iter().map(|(s, d, r)| (*s, d.as_path(), r)).collect();
    let mut merged = merge_runs(&runs_only)?;

    let tmp = sibling(out, "merge-tmp")?;
    if tmp.exists() {
        fs::remove_dir_all(&tmp).with_context(|| format!("remove {}", tmp.display()))?;
    }
    create_dir_durable(&tmp)?;
    let result = (|| {
        let mut rows = BTreeMap::new();
        rows.insert("domains".to_owned(), copy_domains(&runs, &tmp)?);
        rows.insert(
            "hosts".to_owned(),
            dedup(&runs, &tmp, Table::Hosts, read_hosts, write_hosts, |h| {
                h.host.clone()
            })?,
        );
        rows.insert(
            "probes".to_owned(),
            dedup(&runs, &tmp, Table::Probes, read_probes, write_probes, |p| {
                (p.host.clone(), p.address.clone())
            })?,
        );
        merged.rows = rows;
        write_run(&tmp, &merged)?;
        for t in Table::ALL {
            sync_dir(&tmp.join(t.name()))?;
        }
        replace_dir(&tmp, out)
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    result.with_context(|| format!("merge into {}", out.display()))?;
    Ok(merged)
}

/// Copies every domain part of every shard (in shard order) into `tmp`, renumbered from 0,
/// after checking each part's schema and that its domains belong to its shard. Returns the
/// number of rows.
fn copy_domains(runs: &[(Shard, PathBuf, RunInfo)], tmp: &Path) -> Result<u64> {
    create_dir_durable(&tmp.join(Table::Domains.name()))?;
    let (mut next, mut total) = (0u64, 0u64);
    for (shard, dir, run) in runs {
        let mut shard_rows = 0u64;
        for path in parts(dir, Table::Domains)?.values() {
            shard_rows += part_rows(path, Table::Domains)?;
            for d in read_domain_names(path)? {
                if !shard.contains(&format!("{d}.")) {
                    bail!(
                        "{}: domain {d} does not belong to shard {shard}",
                        path.display()
                    );
                }
            }
            let dest = part_path(tmp, Table::Domains, next);
            fs::copy(path, &dest)
                .with_context(|| format!("copy {} to {}", path.display(), dest.display()))?;
            fs::File::open(&dest)
                .and_then(|f| f.sync_all())
                .with_context(|| format!("fsync {}", dest.display()))?;
            next += 1;
        }
        if let Some(&want) = run.rows.get("domains") {
            if want != shard_rows {
                bail!(
                    "{}: run.json counts {want} domain rows, its parts hold {shard_rows}",
                    dir.display()
                );
            }
        }
        total += shard_rows;
    }
    Ok(total)
}

/// Writes the rows of `table` of all shards into `tmp`, the first row of each key only (shards
/// are in ascending order). Memory: the keys seen plus one output part. Returns the row count.
fn dedup<R, K: std::hash::Hash + Eq>(
    runs: &[(Shard, PathBuf, RunInfo)],
    tmp: &Path,
    table: Table,
    read: fn(&Path) -> Result<Vec<R>>,
    write: fn(&Path, &[R]) -> Result<()>,
    key: impl Fn(&R) -> K,
) -> Result<u64> {
    create_dir_durable(&tmp.join(table.name()))?;
    let mut seen = HashSet::new();
    let (mut buf, mut next, mut total) = (Vec::new(), 0u64, 0u64);
    for (_, dir, _) in runs {
        for path in parts(dir, table)?.values() {
            for row in read(path)? {
                if seen.insert(key(&row)) {
                    buf.push(row);
                }
            }
            if buf.len() >= MERGE_PART_ROWS {
                write(&part_path(tmp, table, next), &buf)?;
                (next, total) = (next + 1, total + buf.len() as u64);
                buf.clear();
            }
        }
    }
    if !buf.is_empty() {
        write(&part_path(tmp, table, next), &buf)?;
        total += buf.len() as u64;
    }
    Ok(total)
}

/// The merged `run.json` (without `rows`, which the merge counts as it writes). `runs` are
/// sorted by shard index.
fn merge_runs(runs: &[(Shard, &Path, &RunInfo)]) -> Result<RunInfo> {
    let (first_shard, first_dir, first) = runs.first().ok_or_else(|| anyhow!("no shards"))?;
    let mut seen: BTreeMap<u64, &Path> = BTreeMap::new();
    for (shard, dir, run) in runs {
        if run.snapshot != first.snapshot {
            bail!(
                "{} is snapshot {}, {} is snapshot {}: one date per merge",
                first_dir.display(),
                first.snapshot,
                dir.display(),
                run.snapshot
            );
        }
        if run.schema_version != first.schema_version
            || run.taxonomy_version != first.taxonomy_version
        {
            bail!(
                "{} and {}: different schema/taxonomy versions",
                first_dir.display(),
                dir.display()
            );
        }
        if shard.n != first_shard.n {
            bail!(
                "{} is shard {first_shard}, {} is shard {shard}: different shard counts",
                first_dir.display(),
                dir.display()
            );
        }
        if let Some(other) = seen.insert(shard.k, dir) {
            bail!(
                "{} and {} are both shard {shard}",
                other.display(),
                dir.display()
            );
        }
    }

    let mut m = RunInfo {
        tool_version: first.tool_version.clone(),
        schema_version: first.schema_version,
        taxonomy_version: first.taxonomy_version,
        snapshot: first.snapshot.clone(),
        shard: None,
        merged_shards: runs.iter().map(|(s, _, _)| s.to_string()).collect(),
        settings: first.settings.clone(),
        complete: (1..=first_shard.n).all(|k| seen.contains_key(&k)),
        judged_at: runs
            .iter()
            .map(|(_, _, r)| r.judged_at)
            .min()
            .unwrap_or(first.judged_at),
        ..RunInfo::default()
    };
    m.inputs = merge_inputs(runs)?;
    for (_, _, r) in runs {
        m.domains_input += r.domains_input;
        m.domains_opted_out += r.domains_opted_out;
        for (v, n) in &r.verdicts {
            *m.verdicts.entry(v.clone()).or_default() += n;
        }
        for res in &r.resolvers {
            if !m.resolvers.contains(res) {
                m.resolvers.push(res.clone());
            }
        }
    }
    let time = |dir: &Path, what: &str, s: &str| {
        OffsetDateTime::parse(s, &Rfc3339).map_err(|e| {
            anyhow!(
                "{}: run.json {what} {s:?} is not RFC 3339: {e}",
                dir.display()
            )
        })
    };
    let mut started: Option<(OffsetDateTime, &str)> = None;
    let mut finished: Option<(OffsetDateTime, &str)> = None;
    for (_, dir, r) in runs {
        let t = time(dir, "started", &r.started)?;
        if started.is_none_or(|(s, _)| t < s) {
            started = Some((t, &r.started));
        }
        if let Some(f) = &r.finished {
            let t = time(dir, "finished", f)?;
            if finished.is_none_or(|(s, _)| t > s) {
                finished = Some((t, f));
            }
        }
    }
    m.started = started.map(|(_, s)| s.to_owned()).unwrap_or_default();
    m.finished = finished.map(|(_, s)| s.to_owned());
    Ok(m)
}

/// Sums the inputs per source. Every shard reads every input in full and keeps its share, so
/// the per-shard counts (`in_shard`, `tlds`) add up, while `names` and `bad_lines` (counted
/// before sharding) must be the same in every shard: if they differ, the shards read different
/// inputs and their union would not cover any one input exactly once.
fn merge_inputs(runs: &[(Shard, &Path, &RunInfo)]) -> Result<Vec<InputInfo>> {
    let (_, first_dir, first) = runs[0];
    let mut merged: Vec<InputInfo> = Vec::new();
    for (_, dir, r) in runs {
        let sources = |r: &RunInfo| {
            r.inputs
                .iter()
                .map(|i| i.source.clone())
                .collect::<Vec<_>>()
        };
        let mut a = sources(first);
        let mut b = sources(r);
        a.sort();
        b.sort();
        if a != b {
            bail!(
                "{} read inputs {a:?}, {} read {b:?}: shards must read the same inputs",
                first_dir.display(),
                dir.display()
            );
        }
        for input in &r.inputs {
            match merged.iter_mut().find(|m| m.source == input.source) {
                None => merged.push(input.clone()),
                Some(m) => {
                    if m.names != input.names || m.bad_lines != input.bad_lines {
                        bail!(
                            "{}: input {} has {} names and {} bad lines, {} saw {} and {}: \
                             the shards read different versions of it",
                            dir.display(),
                            input.source,
                            input.names,
                            input.bad_lines,
                            first_dir.display(),
                            m.names,
                            m.bad_lines
                        );
                    }
                    m.in_shard += input.in_shard;
                    for (tld, n) in &input.tlds {
                        *m.tlds.entry(tld.clone()).or_default() += n;
                    }
                }
            }
        }
    }
    Ok(merged)
}

fn absolute(p: &Path) -> Result<PathBuf> {
    let abs = std::path::absolute(p).with_context(|| format!("resolve {}", p.display()))?;
    Ok(fs::canonicalize(&abs).unwrap_or(abs))
}

/// A hidden sibling of `dir` (`.NAME.TAG`): invisible to `snapshot=*` globs and Hive readers.
fn sibling(dir: &Path, tag: &str) -> Result<PathBuf> {
    let name = dir
        .file_name()
        .ok_or_else(|| anyhow!("{}: not a directory name", dir.display()))?
        .to_string_lossy();
    Ok(dir.with_file_name(format!(".{name}.{tag}")))
}

/// Puts the finished directory `tmp` in the place of `out`: an atomic exchange where the
/// kernel offers one, else two renames (a short window without `out`, never a mixed one).
fn replace_dir(tmp: &Path, out: &Path) -> Result<()> {
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !out.exists() {
        fs::rename(tmp, out)
            .with_context(|| format!("rename {} to {}", tmp.display(), out.display()))?;
        return sync_dir(&parent);
    }
    if exchange(tmp, out).is_ok() {
        sync_dir(&parent)?;
        // `tmp` now holds the previous output.
        return fs::remove_dir_all(tmp).with_context(|| format!("remove {}", tmp.display()));
    }
    let old = sibling(out, "merge-old")?;
    if old.exists() {
        fs::remove_dir_all(&old).with_context(|| format!("remove {}", old.display()))?;
    }
    fs::rename(out, &old)
        .with_context(|| format!("rename {} to {}", out.display(), old.display()))?;
    fs::rename(tmp, out)
        .with_context(|| format!("rename {} to {}", tmp.display(), out.display()))?;
    sync_dir(&parent)?;
    fs::remove_dir_all(&old).with_context(|| format!("remove {}", old.display()))
}

/// Atomically swaps two paths (Linux `renameat2(RENAME_EXCHANGE)`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let a = CString::new(a.as_os_str().as_bytes())?;
    let b = CString::new(b.as_os_str().as_bytes())?;
    // SAFETY: both are valid NUL-terminated paths; AT_FDCWD resolves them like rename(2).
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn exchange(_: &Path, _: &Path) -> std::io::Result<()> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}
