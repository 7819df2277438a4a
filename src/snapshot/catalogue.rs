//! `run.json` and the catalogue of the snapshots under an output root.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::files::write_atomic;
use super::RunInfo;

/// The name of a snapshot's provenance file.
pub const RUN_FILE: &str = "run.json";

/// Reads `dir/run.json`; `None` when the snapshot has none yet (a crawl that has not written
/// its first checkpoint). A file that does not parse is an error.
pub fn read_run(dir: &Path) -> Result<Option<RunInfo>> {
    let path = dir.join(RUN_FILE);
    let text = match fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
    };
    let run = serde_json::from_slice(&text).with_context(|| format!("parse {}", path.display()))?;
    Ok(Some(run))
}

/// Writes `dir/run.json` atomically (temporary file, fsync, rename, fsync of `dir`), as pretty
/// JSON, so people can read it too.
pub fn write_run(dir: &Path, run: &RunInfo) -> Result<()> {
    let mut text = serde_json::to_vec_pretty(run)?;
    text.push(b'\n');
    write_atomic(&dir.join(RUN_FILE), |mut file| {
        file.write_all(&text)?;
        Ok(file)
    })
}

/// One snapshot directory under an output root.
///
/// Exists so reports and `merge` pick snapshots (and skip incomplete ones) without each
/// re-implementing the directory naming.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotEntry {
    /// The snapshot date, `YYYY-MM-DD`, from the directory name.
    pub date: String,
    /// The snapshot directory (`out/snapshot=YYYY-MM-DD`).
    pub dir: PathBuf,
    /// Its `run.json`, if written yet. Use only snapshots whose `run.complete` is true.
    pub run: Option<RunInfo>,
}

/// Every `snapshot=YYYY-MM-DD` directory under `out` with its `run.json`, sorted by date.
/// Other entries (temporary directories of a merge, files, other names) are skipped; a missing
/// `out` has no snapshots; an unreadable `run.json` is an error naming it.
pub fn catalogue(out: &Path) -> Result<Vec<SnapshotEntry>> {
    let entries = match fs::read_dir(out) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("list {}", out.display())),
    };
    let mut snapshots = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("list {}", out.display()))?;
        let name = entry.file_name();
        let Some(date) = name.to_str().and_then(|n| n.strip_prefix("snapshot=")) else {
            continue;
        };
        if !is_date(date) || !entry.path().is_dir() {
            continue;
        }
        let dir = entry.path();
        let run = read_run(&dir)?;
        snapshots.push(SnapshotEntry {
            date: date.to_owned(),
            dir,
            run,
        });
    }
    snapshots.sort_by(|a, b| a.date.cmp(&b.date));
    Ok(snapshots)
}

/// Whether `s` is a calendar date spelled `YYYY-MM-DD`.
pub(super) fn is_date(s: &str) -> bool {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    s.len() == 10 && time::Date::parse(s, &format).is_ok()
}
