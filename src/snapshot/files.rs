//! Atomic file writes, the listing of committed parts, and the leftovers of a crash.
//!
//! A file is first written under a hidden temporary name in its final directory
//! (`.part-00000042.parquet.tmp-<pid>`), fsynced, renamed to its final name, and the directory
//! is fsynced: after a crash a part is either absent or whole. Hidden names are invisible to
//! [`parts`] and to the `*.parquet` globs and dataset readers of other tools.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{part_file_name, Table};

/// Marker inside the name of every temporary file (`.NAME.tmp-<pid>`).
const TMP_MARK: &str = ".tmp-";

/// The temporary sibling under which `path` is written before it is renamed into place.
pub(super) fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}{TMP_MARK}{}", std::process::id()))
}

/// Whether a directory entry's name is one of our temporary files.
fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.contains(TMP_MARK)
}

/// fsync a directory, so the renames and creations inside it are durable.
pub(super) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("fsync directory {}", dir.display()))
}

/// Creates `dir` (and parents) if needed, fsyncing the parent of each directory created so the
/// new entries survive a crash.
pub(super) fn create_dir_durable(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir_durable(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("create directory {}", dir.display())),
    }
    match dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => sync_dir(parent),
        None => Ok(()),
    }
}

/// Writes `path` atomically: `fill` writes the content into a temporary file in the same
/// directory, which is then fsynced and renamed over `path`; the directory is fsynced last.
/// On error the temporary file is removed and `path` is untouched.
pub(super) fn write_atomic<F>(path: &Path, fill: F) -> Result<()>
where
    F: FnOnce(File) -> Result<File>,
{
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    create_dir_durable(&dir)?;
    let tmp = temp_path(path);
    let result = (|| {
        let file = File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
        let mut file = fill(file)?;
        file.flush()?;
        file.sync_all()
            .with_context(|| format!("fsync {}", tmp.display()))?;
        drop(file);
        fs::rename(&tmp, path)
            .with_context(|| format!("rename {} to {}", tmp.display(), path.display()))?;
        sync_dir(&dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("write {}", path.display()))
}

/// The committed parts of `table` in the snapshot directory `dir`, by part number.
///
/// Only names spelled exactly as [`part_path`](super::part_path) spells them count: temporary files,
/// hidden files and anything else in the directory are ignored. A missing table directory
/// has no parts.
pub fn parts(dir: &Path, table: Table) -> Result<BTreeMap<u64, PathBuf>> {
    let tdir = dir.join(table.name());
    let mut out = BTreeMap::new();
    let entries = match fs::read_dir(&tdir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).with_context(|| format!("list {}", tdir.display())),
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("list {}", tdir.display()))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(n) = parse_part_name(name) else {
            continue;
        };
        if entry.file_type().map(|t| t.is_file()).unwrap_or(false) {
            out.insert(n, entry.path());
        }
    }
    Ok(out)
}

/// The part number of a canonical part file name (`part-00000042.parquet` → 42).
fn parse_part_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("part-")?.strip_suffix(".parquet")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    (part_file_name(n) == name).then_some(n)
}

/// Removes the temporary files a crash left in the snapshot directory `dir` and its table
/// directories (`.NAME.tmp-<pid>`); returns how many were removed. Call it only while no
/// writer is active in `dir` (at the start of a resumed crawl).
pub fn remove_temp_files(dir: &Path) -> Result<usize> {
    let mut removed = 0;
    let dirs =
        std::iter::once(dir.to_path_buf()).chain(Table::ALL.iter().map(|t| dir.join(t.name())));
    for d in dirs {
        let entries = match fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("list {}", d.display())),
        };
        let mut any = false;
        for entry in entries {
            let entry = entry.with_context(|| format!("list {}", d.display()))?;
            let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
            if is_file && entry.file_name().to_str().is_some_and(is_temp_name) {
                fs::remove_file(entry.path())
                    .with_context(|| format!("remove {}", entry.path().display()))?;
                removed += 1;
                any = true;
            }
        }
        if any {
            sync_dir(&d)?;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_names() {
        assert_eq!(parse_part_name("part-00000042.parquet"), Some(42));
        assert_eq!(parse_part_name("part-123456789.parquet"), Some(123_456_789));
        for bad in [
            "part-42.parquet",
            "part-000000042.parquet",
            "part-0000004a.parquet",
            "part-.parquet",
            ".part-00000042.parquet.tmp-7",
            "part-00000042.parquet.tmp-7",
            "part-00000042.parq",
        ] {
            assert_eq!(parse_part_name(bad), None, "{bad}");
        }
        assert!(is_temp_name(".part-00000001.parquet.tmp-99"));
        assert!(is_temp_name(".run.json.tmp-1"));
        assert!(!is_temp_name("part-00000001.parquet"));
    }
}
