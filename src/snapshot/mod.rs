//! Snapshots: the Parquet tables a crawl writes and every report reads.
//!
//! A snapshot is one directory per crawl date, Hive-style, so DuckDB, Spark, pyarrow and
//! polars read one month or the whole history as a single table with a `snapshot` column:
//!
//! ```text
//! out/snapshot=YYYY-MM-DD/domains/part-00000000.parquet   one row per domain   (DomainRow)
//! out/snapshot=YYYY-MM-DD/hosts/part-00000000.parquet     one row per MX host  (HostRow)
//! out/snapshot=YYYY-MM-DD/probes/part-00000000.parquet    one row per probe    (ProbeRow)
//! out/snapshot=YYYY-MM-DD/run.json                        provenance, counts, completeness
//! ```
//!
//! * `rows` — the row structs (the schema in Rust).
//! * `schema` — the same schema in Arrow terms, the file metadata, and the checks a reader
//!   makes before it trusts a file.
//! * `tables` — writing and reading parts ([`write_domains`], [`read_domains`], …).
//! * `files` — atomic file writes, part listing, crash leftovers.
//! * `catalogue` — `run.json` and the list of snapshots under an output root.
//! * `merge` — combining the outputs of `crawl --shard K/N` into one snapshot.
//!
//! Every file is written to a hidden temporary name in its final directory, fsynced and
//! renamed, so a crash never leaves a half-written file that looks whole; hidden names are
//! skipped by every reader (ours, pyarrow, Spark, and the `*.parquet` globs of DuckDB/polars).

mod catalogue;
mod files;
mod merge;
mod rows;
mod schema;
mod tables;

use std::path::{Path, PathBuf};

pub use catalogue::{catalogue, read_run, write_run, SnapshotEntry, RUN_FILE};
pub use files::{parts, remove_temp_files};
pub use merge::merge;
pub use rows::*;
pub use schema::{META_SCHEMA_VERSION, META_TABLE, META_TAXONOMY_VERSION};
pub use tables::{
    part_rows, read_domains, read_hosts, read_probes, verdict_counts, write_domains, write_hosts,
    write_probes, ROW_GROUP_ROWS,
};

/// The three tables of a snapshot.
///
/// Exists so paths, schemas and metadata are chosen by one value instead of by strings that
/// could drift apart between the writer, the reader and the merge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// One row per domain ([`DomainRow`]).
    Domains,
    /// One row per MX host ([`HostRow`]).
    Hosts,
    /// One row per (host, address) probe ([`ProbeRow`]).
    Probes,
}

impl Table {
    /// Every table, in the order they are written.
    pub const ALL: [Table; 3] = [Table::Domains, Table::Hosts, Table::Probes];

    /// The table's directory name inside a snapshot, also its `dane_survey.table` metadata.
    pub fn name(self) -> &'static str {
        match self {
            Table::Domains => "domains",
            Table::Hosts => "hosts",
            Table::Probes => "probes",
        }
    }

    /// The table with this name.
    pub fn from_name(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The directory of the snapshot of `date` (`YYYY-MM-DD`) under the output root `out`:
/// `out/snapshot=YYYY-MM-DD` (a Hive partition).
pub fn snapshot_dir(out: &Path, date: &str) -> PathBuf {
    out.join(format!("snapshot={date}"))
}

/// The path of part number `part` of `table` in the snapshot directory `dir`:
/// `dir/<table>/part-00000042.parquet` (at least eight digits, so names sort by number).
pub fn part_path(dir: &Path, table: Table, part: u64) -> PathBuf {
    dir.join(table.name()).join(part_file_name(part))
}

/// `part-00000042.parquet`: the one spelling [`parts`] accepts for part 42.
fn part_file_name(part: u64) -> String {
    format!("part-{part:08}.parquet")
}

#[cfg(test)]
mod tests;
