//! Writing and reading the parts of the three tables.
//!
//! Writing converts rows to Arrow columns in chunks of [`ROW_GROUP_ROWS`] (one row group
//! each), ZSTD-compressed with dictionary encoding (verdicts, providers and TLSA records
//! repeat a lot), and commits the file atomically. Reading checks the file's metadata and
//! schema first and converts back exactly: `read_x(write_x(rows)) == rows`.

use std::collections::BTreeMap;
use std::fs::File;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use arrow_array::builder::{OffsetBufferBuilder, StringBuilder};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Int32Array, Int64Array, ListArray, RecordBatch, StringArray,
    StructArray, TimestampMicrosecondArray,
};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use super::files::write_atomic;
use super::schema::{
    arrow_schema, check_file, file_metadata, item, mx_fields, tlsa_lookup_fields, unusable_fields,
};
use crate::verdict::DomainVerdict;

use super::{DomainRow, HostRow, MxRecord, ProbeRow, Table, TlsaLookup, UnusableTlsa};

/// Most rows per row group (and per in-memory Arrow batch while writing).
pub const ROW_GROUP_ROWS: usize = 128 * 1024;

/// ZSTD level 1: the columns are mostly dictionary indices and repeated phrases, which the
/// fastest level compresses as well as zstd's default of 3 (a 10,000-domain part of the
/// scale benchmark: 26.5 against 27.1 KB) for a tenth less of the writer's CPU.
const ZSTD_LEVEL: i32 = 1;

/// Rows per batch when reading.
const READ_BATCH_ROWS: usize = 8192;

const MICROS_PER_SECOND: i64 = 1_000_000;

// ---------------------------------------------------------------------------------------------
// Writing

/// Writes `rows` as one part of the domains table at `path`, atomically.
pub fn write_domains(path: &Path, rows: &[DomainRow]) -> Result<()> {
    write_table(path, Table::Domains, rows, encode_domains)
}

/// Writes `rows` as one part of the hosts table at `path`, atomically.
pub fn write_hosts(path: &Path, rows: &[HostRow]) -> Result<()> {
    write_table(path, Table::Hosts, rows, encode_hosts)
}

/// Writes `rows` as one part of the probes table at `path`, atomically.
pub fn write_probes(path: &Path, rows: &[ProbeRow]) -> Result<()> {
    write_table(path, Table::Probes, rows, encode_probes)
}

fn writer_properties(table: Table) -> Result<WriterProperties> {
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL)?))
        .set_dictionary_enabled(true)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_key_value_metadata(Some(file_metadata(table)));
    // Columns that hardly repeat: a dictionary would only be built to be thrown away (every
    // value hashed for nothing) before the writer falls back to plain encoding.
    if table == Table::Domains {
        for column in ["domain", "checked_at"] {
            props = props.set_column_dictionary_enabled(ColumnPath::from(column), false);
        }
    }
    Ok(props.build())
}

fn write_table<R>(
    path: &Path,
    table: Table,
    rows: &[R],
    encode: fn(&[R]) -> Result<Vec<ArrayRef>>,
) -> Result<()> {
    let schema = arrow_schema(table);
    let props = writer_properties(table)?;
    write_atomic(path, |file| {
        let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(props))?;
        for chunk in rows.chunks(ROW_GROUP_ROWS) {
            let batch = RecordBatch::try_new(schema.clone(), encode(chunk)?)?;
            writer.write(&batch)?;
        }
        Ok(writer.into_inner()?)
    })
}

/// A `Utf8` column, its buffers sized up front (growing them copies every value again).
fn strs<'a>(values: impl Iterator<Item = &'a str> + Clone) -> ArrayRef {
    let (count, bytes) = values
        .clone()
        .fold((0, 0), |(n, b), v| (n + 1, b + v.len()));
    let mut b = StringBuilder::with_capacity(count, bytes);
    values.for_each(|v| b.append_value(v));
    Arc::new(b.finish())
}

fn opt_strs<'a>(values: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(StringArray::from_iter(values))
}

/// A `List<Utf8>` column.
fn str_lists<'a>(lists: impl Iterator<Item = &'a [String]> + Clone) -> Result<ArrayRef> {
    let (count, bytes) = lists
        .clone()
        .flatten()
        .fold((0, 0), |(n, b), v| (n + 1, b + v.len()));
    let mut offsets = OffsetBufferBuilder::<i32>::new(0);
    let mut values = StringBuilder::with_capacity(count, bytes);
    for list in lists {
        offsets.push_length(list.len());
        for v in list {
            values.append_value(v);
        }
    }
    let values: ArrayRef = Arc::new(values.finish());
    Ok(Arc::new(ListArray::try_new(
        item(DataType::Utf8),
        offsets.finish(),
        values,
        None,
    )?))
}

/// A `List<Struct<…>>` column from the per-row list lengths and the flattened struct columns.
fn struct_lists(
    fields: arrow_schema::Fields,
    lengths: impl Iterator<Item = usize>,
    columns: Vec<ArrayRef>,
) -> Result<ArrayRef> {
    let mut offsets = OffsetBufferBuilder::<i32>::new(0);
    lengths.for_each(|n| offsets.push_length(n));
    let values: ArrayRef = Arc::new(StructArray::try_new(fields.clone(), columns, None)?);
    let field = item(DataType::Struct(fields));
    Ok(Arc::new(ListArray::try_new(
        field,
        offsets.finish(),
        values,
        None,
    )?))
}

/// A timestamp column from unix microseconds.
fn micros(values: impl Iterator<Item = Option<i64>>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from_iter(values).with_timezone("UTC"))
}

/// A timestamp column from unix seconds; a value beyond the microsecond range is an error.
fn seconds<'a, R: 'a>(
    rows: &'a [R],
    column: &str,
    get: impl Fn(&R) -> Option<i64>,
    key: impl Fn(&R) -> String,
) -> Result<ArrayRef> {
    let values = rows
        .iter()
        .map(|r| match get(r) {
            None => Ok(None),
            Some(s) => s.checked_mul(MICROS_PER_SECOND).map(Some).ok_or_else(|| {
                anyhow!("{}: {column} = {s} s is beyond the timestamp range", key(r))
            }),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(micros(values.into_iter()))
}

pub(super) fn encode_domains(rows: &[DomainRow]) -> Result<Vec<ArrayRef>> {
    let mx = rows.iter().flat_map(|r| r.mx.iter());
    let mx = struct_lists(
        mx_fields(),
        rows.iter().map(|r| r.mx.len()),
        vec![
            Arc::new(Int32Array::from_iter_values(
                mx.clone().map(|m| m.preference),
            )),
            strs(mx.map(|m| m.exchange.as_str())),
        ],
    )?;
    Ok(vec![
        strs(rows.iter().map(|r| r.domain.as_str())),
        strs(rows.iter().map(|r| r.tld.as_str())),
        strs(rows.iter().map(|r| r.source.as_str())),
        strs(rows.iter().map(|r| r.mx_lookup.as_str())),
        opt_strs(rows.iter().map(|r| r.mx_security.as_deref())),
        mx,
        str_lists(rows.iter().map(|r| r.primary_hosts.as_slice()))?,
        opt_strs(rows.iter().map(|r| r.provider.as_deref())),
        str_lists(rows.iter().map(|r| r.providers.as_slice()))?,
        strs(rows.iter().map(|r| r.verdict.as_str())),
        opt_strs(rows.iter().map(|r| r.all_hosts_verdict.map(|v| v.as_str()))),
        strs(rows.iter().map(|r| r.reason.as_str())),
        micros(rows.iter().map(|r| Some(r.checked_at))),
    ])
}

pub(super) fn encode_hosts(rows: &[HostRow]) -> Result<Vec<ArrayRef>> {
    let lookups = rows.iter().flat_map(|r| r.tlsa_lookups.iter());
    let lookups = struct_lists(
        tlsa_lookup_fields(),
        rows.iter().map(|r| r.tlsa_lookups.len()),
        vec![
            strs(lookups.clone().map(|l| l.name.as_str())),
            strs(lookups.map(|l| l.result.as_str())),
        ],
    )?;
    let unusable = rows.iter().flat_map(|r| r.tlsa_unusable.iter());
    let unusable = struct_lists(
        unusable_fields(),
        rows.iter().map(|r| r.tlsa_unusable.len()),
        vec![
            strs(unusable.clone().map(|u| u.record.as_str())),
            strs(unusable.map(|u| u.reason.as_str())),
        ],
    )?;
    Ok(vec![
        strs(rows.iter().map(|r| r.host.as_str())),
        opt_strs(rows.iter().map(|r| r.provider.as_deref())),
        strs(rows.iter().map(|r| r.address_lookup.as_str())),
        opt_strs(rows.iter().map(|r| r.address_security.as_deref())),
        opt_strs(rows.iter().map(|r| r.canonical.as_deref())),
        str_lists(rows.iter().map(|r| r.addresses.as_slice()))?,
        lookups,
        opt_strs(rows.iter().map(|r| r.tlsa_base_domain.as_deref())),
        str_lists(rows.iter().map(|r| r.tlsa.as_slice()))?,
        str_lists(rows.iter().map(|r| r.tlsa_usable.as_slice()))?,
        unusable,
        strs(rows.iter().map(|r| r.verdict.as_str())),
        strs(rows.iter().map(|r| r.reason.as_str())),
        Arc::new(BooleanArray::from_iter(
            rows.iter().map(|r| Some(r.opted_out)),
        )),
        micros(rows.iter().map(|r| Some(r.resolved_at))),
    ])
}

pub(super) fn encode_probes(rows: &[ProbeRow]) -> Result<Vec<ArrayRef>> {
    let key = |r: &ProbeRow| format!("probe {} {}", r.host, r.address);
    Ok(vec![
        strs(rows.iter().map(|r| r.host.as_str())),
        strs(rows.iter().map(|r| r.address.as_str())),
        strs(rows.iter().map(|r| r.sni.as_str())),
        strs(rows.iter().map(|r| r.verdict.as_str())),
        strs(rows.iter().map(|r| r.reason.as_str())),
        opt_strs(rows.iter().map(|r| r.matched.as_deref())),
        opt_strs(rows.iter().map(|r| r.stage_reached.as_deref())),
        opt_strs(rows.iter().map(|r| r.banner.as_deref())),
        Arc::new(BooleanArray::from_iter(
            rows.iter().map(|r| r.starttls_offered),
        )),
        opt_strs(rows.iter().map(|r| r.tls_version.as_deref())),
        opt_strs(rows.iter().map(|r| r.cipher.as_deref())),
        str_lists(rows.iter().map(|r| r.cert_sha256.as_slice()))?,
        str_lists(rows.iter().map(|r| r.spki_sha256.as_slice()))?,
        str_lists(rows.iter().map(|r| r.leaf_names.as_slice()))?,
        seconds(rows, "leaf_not_before", |r| r.leaf_not_before, key)?,
        seconds(rows, "leaf_not_after", |r| r.leaf_not_after, key)?,
        seconds(rows, "chain_not_after_min", |r| r.chain_not_after_min, key)?,
        opt_strs(rows.iter().map(|r| r.leaf_3_1_1.as_deref())),
        opt_strs(rows.iter().map(|r| r.error_stage.as_deref())),
        opt_strs(rows.iter().map(|r| r.error_kind.as_deref())),
        opt_strs(rows.iter().map(|r| r.error_message.as_deref())),
        Arc::new(Int32Array::from_iter(rows.iter().map(|r| r.reply_code))),
        micros(rows.iter().map(|r| r.probed_at)),
        Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.duration_ms))),
    ])
}

// ---------------------------------------------------------------------------------------------
// Reading

/// Reads one part of the domains table. Errors (never panics) on a file of another table, of a
/// newer schema version, with an unknown verdict, or corrupt.
pub fn read_domains(path: &Path) -> Result<Vec<DomainRow>> {
    read_table(path, Table::Domains, decode_domains)
}

/// Reads one part of the hosts table; see [`read_domains`].
pub fn read_hosts(path: &Path) -> Result<Vec<HostRow>> {
    read_table(path, Table::Hosts, decode_hosts)
}

/// Reads one part of the probes table; see [`read_domains`].
pub fn read_probes(path: &Path) -> Result<Vec<ProbeRow>> {
    read_table(path, Table::Probes, decode_probes)
}

/// Opens `path` as a part of `table` and checks its metadata and schema.
fn open_checked(path: &Path, table: Table) -> Result<ParquetRecordBatchReaderBuilder<File>> {
    let file = File::open(path).with_context(|| format!("open {}", path.display()))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .with_context(|| format!("{}: not a readable Parquet file", path.display()))?;
    check_file(
        &path.display().to_string(),
        table,
        builder.metadata().file_metadata().key_value_metadata(),
        builder.schema(),
    )?;
    Ok(builder)
}

/// Runs `f`, turning a panic inside the Parquet decoder (a corrupt file) into an error.
fn no_panic<T>(path: &Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| p.downcast_ref::<&str>().copied())
                .unwrap_or("panic");
            bail!("{}: corrupt file ({msg})", path.display())
        }
    }
}

fn read_table<R>(
    path: &Path,
    table: Table,
    decode: fn(&Cols, &mut Vec<R>) -> Result<()>,
) -> Result<Vec<R>> {
    no_panic(path, || {
        let builder = open_checked(path, table)?;
        let reader = builder.with_batch_size(READ_BATCH_ROWS).build()?;
        let mut rows = Vec::new();
        for batch in reader {
            let batch = batch.with_context(|| format!("{}: corrupt data", path.display()))?;
            let cols = Cols {
                path,
                batch: &batch,
                first_row: rows.len(),
            };
            decode(&cols, &mut rows)?;
        }
        Ok(rows)
    })
}

/// The number of rows of a part, from its footer, after the checks of [`read_domains`].
pub fn part_rows(path: &Path, table: Table) -> Result<u64> {
    no_panic(path, || {
        let builder = open_checked(path, table)?;
        let n = builder.metadata().file_metadata().num_rows();
        u64::try_from(n).map_err(|_| anyhow!("{}: negative row count {n}", path.display()))
    })
}

/// How many domains of a part have each verdict, reading only the `verdict` column: the
/// totals of `run.json` over a million-domain snapshot without decoding every row.
pub fn verdict_counts(path: &Path) -> Result<BTreeMap<DomainVerdict, u64>> {
    no_panic(path, || {
        let builder = open_checked(path, Table::Domains)?;
        let column = builder.schema().index_of("verdict")?;
        let mask = ProjectionMask::roots(builder.parquet_schema(), [column]);
        let reader = builder
            .with_projection(mask)
            .with_batch_size(READ_BATCH_ROWS)
            .build()?;
        let mut counts = BTreeMap::new();
        let mut first_row = 0;
        for batch in reader {
            let batch = batch.with_context(|| format!("{}: corrupt data", path.display()))?;
            let cols = Cols {
                path,
                batch: &batch,
                first_row,
            };
            let verdict = cols.strs("verdict")?;
            for i in 0..batch.num_rows() {
                let v: DomainVerdict = cols.verdict("verdict", i, verdict.value(i))?;
                *counts.entry(v).or_insert(0) += 1;
            }
            first_row += batch.num_rows();
        }
        Ok(counts)
    })
}

/// The `domain` column of a part of the domains table (for the shard check of merge).
pub(super) fn read_domain_names(path: &Path) -> Result<Vec<String>> {
    no_panic(path, || {
        let builder = open_checked(path, Table::Domains)?;
        let mask = ProjectionMask::roots(builder.parquet_schema(), [0]);
        let reader = builder
            .with_projection(mask)
            .with_batch_size(READ_BATCH_ROWS)
            .build()?;
        let mut names = Vec::new();
        for batch in reader {
            let batch = batch.with_context(|| format!("{}: corrupt data", path.display()))?;
            let cols = Cols {
                path,
                batch: &batch,
                first_row: names.len(),
            };
            let domain = cols.strs("domain")?;
            names.extend((0..batch.num_rows()).map(|i| domain.value(i).to_owned()));
        }
        Ok(names)
    })
}

/// The columns of one batch being decoded, with what errors need to name the place.
struct Cols<'a> {
    path: &'a Path,
    batch: &'a RecordBatch,
    /// Index in the file of the batch's first row.
    first_row: usize,
}

impl<'a> Cols<'a> {
    fn len(&self) -> usize {
        self.batch.num_rows()
    }

    fn col<T: Array + 'static>(&self, name: &str) -> Result<&'a T> {
        let batch: &'a RecordBatch = self.batch;
        batch
            .column_by_name(name)
            .and_then(|c| c.as_any().downcast_ref::<T>())
            .ok_or_else(|| anyhow!("{}: column {name} missing or mistyped", self.path.display()))
    }

    fn strs(&self, name: &str) -> Result<&'a StringArray> {
        self.col(name)
    }

    fn list_strs(&self, name: &str) -> Result<StrLists<'a>> {
        let list: &'a ListArray = self.col(name)?;
        let values = list
            .values()
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| {
                anyhow!(
                    "{}: column {name} is not a list of strings",
                    self.path.display()
                )
            })?;
        Ok(StrLists {
            offsets: list.value_offsets(),
            values,
        })
    }

    /// The offsets and the struct columns of a `List<Struct<…>>` column.
    fn struct_list(&self, name: &str) -> Result<(&'a [i32], &'a StructArray)> {
        let list: &'a ListArray = self.col(name)?;
        let values = list
            .values()
            .as_any()
            .downcast_ref::<StructArray>()
            .ok_or_else(|| {
                anyhow!(
                    "{}: column {name} is not a list of structs",
                    self.path.display()
                )
            })?;
        Ok((list.value_offsets(), values))
    }

    fn struct_field<T: Array + 'static>(
        &self,
        list: &str,
        s: &'a StructArray,
        field: &str,
    ) -> Result<&'a T> {
        s.column_by_name(field)
            .and_then(|c| c.as_any().downcast_ref::<T>())
            .ok_or_else(|| {
                anyhow!(
                    "{}: column {list}.{field} missing or mistyped",
                    self.path.display()
                )
            })
    }

    fn micros(&self, name: &str) -> Result<&'a TimestampMicrosecondArray> {
        self.col(name)
    }

    /// Parses a verdict name, naming the file, row and value when it is unknown.
    fn verdict<V: std::str::FromStr<Err = String>>(
        &self,
        column: &str,
        row: usize,
        s: &str,
    ) -> Result<V> {
        s.parse().map_err(|e: String| {
            anyhow!(
                "{}: row {}: column {column}: {e} (written by a newer taxonomy?)",
                self.path.display(),
                self.first_row + row
            )
        })
    }
}

/// A `List<Utf8>` column ready to be read row by row.
struct StrLists<'a> {
    offsets: &'a [i32],
    values: &'a StringArray,
}

impl StrLists<'_> {
    fn get(&self, row: usize) -> Vec<String> {
        range(self.offsets, row)
            .map(|j| self.values.value(j).to_owned())
            .collect()
    }
}

/// The child indices of list row `row`.
fn range(offsets: &[i32], row: usize) -> std::ops::Range<usize> {
    let start = usize::try_from(offsets[row]).unwrap_or(0);
    let end = usize::try_from(offsets[row + 1]).unwrap_or(0);
    start..end.max(start)
}

fn opt_str(a: &StringArray, i: usize) -> Option<String> {
    a.is_valid(i).then(|| a.value(i).to_owned())
}

fn opt_i64(a: &TimestampMicrosecondArray, i: usize) -> Option<i64> {
    a.is_valid(i).then(|| a.value(i))
}

/// Seconds from a timestamp written as seconds × 10⁶ (floor, for files written elsewhere).
fn opt_secs(a: &TimestampMicrosecondArray, i: usize) -> Option<i64> {
    opt_i64(a, i).map(|us| us.div_euclid(MICROS_PER_SECOND))
}

fn decode_domains(c: &Cols, out: &mut Vec<DomainRow>) -> Result<()> {
    let (domain, tld, source, mx_lookup) = (
        c.strs("domain")?,
        c.strs("tld")?,
        c.strs("source")?,
        c.strs("mx_lookup")?,
    );
    let mx_security = c.strs("mx_security")?;
    let (mx_off, mx) = c.struct_list("mx")?;
    let mx_pref: &Int32Array = c.struct_field("mx", mx, "preference")?;
    let mx_exch: &StringArray = c.struct_field("mx", mx, "exchange")?;
    let primary_hosts = c.list_strs("primary_hosts")?;
    let provider = c.strs("provider")?;
    let providers = c.list_strs("providers")?;
    let verdict = c.strs("verdict")?;
    let all_hosts_verdict = c.strs("all_hosts_verdict")?;
    let reason = c.strs("reason")?;
    let checked_at = c.micros("checked_at")?;
    out.reserve(c.len());
    for i in 0..c.len() {
        out.push(DomainRow {
            domain: domain.value(i).to_owned(),
            tld: tld.value(i).to_owned(),
            source: source.value(i).to_owned(),
            mx_lookup: mx_lookup.value(i).to_owned(),
            mx_security: opt_str(mx_security, i),
            mx: range(mx_off, i)
                .map(|j| MxRecord {
                    preference: mx_pref.value(j),
                    exchange: mx_exch.value(j).to_owned(),
                })
                .collect(),
            primary_hosts: primary_hosts.get(i),
            provider: opt_str(provider, i),
            providers: providers.get(i),
            verdict: c.verdict("verdict", i, verdict.value(i))?,
            all_hosts_verdict: match opt_str(all_hosts_verdict, i) {
                Some(v) => Some(c.verdict("all_hosts_verdict", i, &v)?),
                None => None,
            },
            reason: reason.value(i).to_owned(),
            checked_at: checked_at.value(i),
        });
    }
    Ok(())
}

fn decode_hosts(c: &Cols, out: &mut Vec<HostRow>) -> Result<()> {
    let (host, provider) = (c.strs("host")?, c.strs("provider")?);
    let (address_lookup, address_security) =
        (c.strs("address_lookup")?, c.strs("address_security")?);
    let canonical = c.strs("canonical")?;
    let addresses = c.list_strs("addresses")?;
    let (lk_off, lk) = c.struct_list("tlsa_lookups")?;
    let lk_name: &StringArray = c.struct_field("tlsa_lookups", lk, "name")?;
    let lk_result: &StringArray = c.struct_field("tlsa_lookups", lk, "result")?;
    let tlsa_base_domain = c.strs("tlsa_base_domain")?;
    let (tlsa, tlsa_usable) = (c.list_strs("tlsa")?, c.list_strs("tlsa_usable")?);
    let (un_off, un) = c.struct_list("tlsa_unusable")?;
    let un_record: &StringArray = c.struct_field("tlsa_unusable", un, "record")?;
    let un_reason: &StringArray = c.struct_field("tlsa_unusable", un, "reason")?;
    let (verdict, reason) = (c.strs("verdict")?, c.strs("reason")?);
    let opted_out: &BooleanArray = c.col("opted_out")?;
    let resolved_at = c.micros("resolved_at")?;
    out.reserve(c.len());
    for i in 0..c.len() {
        out.push(HostRow {
            host: host.value(i).to_owned(),
            provider: opt_str(provider, i),
            address_lookup: address_lookup.value(i).to_owned(),
            address_security: opt_str(address_security, i),
            canonical: opt_str(canonical, i),
            addresses: addresses.get(i),
            tlsa_lookups: range(lk_off, i)
                .map(|j| TlsaLookup {
                    name: lk_name.value(j).to_owned(),
                    result: lk_result.value(j).to_owned(),
                })
                .collect(),
            tlsa_base_domain: opt_str(tlsa_base_domain, i),
            tlsa: tlsa.get(i),
            tlsa_usable: tlsa_usable.get(i),
            tlsa_unusable: range(un_off, i)
                .map(|j| UnusableTlsa {
                    record: un_record.value(j).to_owned(),
                    reason: un_reason.value(j).to_owned(),
                })
                .collect(),
            verdict: c.verdict("verdict", i, verdict.value(i))?,
            reason: reason.value(i).to_owned(),
            opted_out: opted_out.value(i),
            resolved_at: resolved_at.value(i),
        });
    }
    Ok(())
}

fn decode_probes(c: &Cols, out: &mut Vec<ProbeRow>) -> Result<()> {
    let (host, address, sni) = (c.strs("host")?, c.strs("address")?, c.strs("sni")?);
    let (verdict, reason, matched) = (c.strs("verdict")?, c.strs("reason")?, c.strs("matched")?);
    let (stage_reached, banner) = (c.strs("stage_reached")?, c.strs("banner")?);
    let starttls_offered: &BooleanArray = c.col("starttls_offered")?;
    let (tls_version, cipher) = (c.strs("tls_version")?, c.strs("cipher")?);
    let cert_sha256 = c.list_strs("cert_sha256")?;
    let spki_sha256 = c.list_strs("spki_sha256")?;
    let leaf_names = c.list_strs("leaf_names")?;
    let leaf_not_before = c.micros("leaf_not_before")?;
    let leaf_not_after = c.micros("leaf_not_after")?;
    let chain_not_after_min = c.micros("chain_not_after_min")?;
    let leaf_3_1_1 = c.strs("leaf_3_1_1")?;
    let (error_stage, error_kind) = (c.strs("error_stage")?, c.strs("error_kind")?);
    let error_message = c.strs("error_message")?;
    let reply_code: &Int32Array = c.col("reply_code")?;
    let probed_at = c.micros("probed_at")?;
    let duration_ms: &Int64Array = c.col("duration_ms")?;
    out.reserve(c.len());
    for i in 0..c.len() {
        out.push(ProbeRow {
            host: host.value(i).to_owned(),
            address: address.value(i).to_owned(),
            sni: sni.value(i).to_owned(),
            verdict: c.verdict("verdict", i, verdict.value(i))?,
            reason: reason.value(i).to_owned(),
            matched: opt_str(matched, i),
            stage_reached: opt_str(stage_reached, i),
            banner: opt_str(banner, i),
            starttls_offered: starttls_offered
                .is_valid(i)
                .then(|| starttls_offered.value(i)),
            tls_version: opt_str(tls_version, i),
            cipher: opt_str(cipher, i),
            cert_sha256: cert_sha256.get(i),
            spki_sha256: spki_sha256.get(i),
            leaf_names: leaf_names.get(i),
            leaf_not_before: opt_secs(leaf_not_before, i),
            leaf_not_after: opt_secs(leaf_not_after, i),
            chain_not_after_min: opt_secs(chain_not_after_min, i),
            leaf_3_1_1: opt_str(leaf_3_1_1, i),
            error_stage: opt_str(error_stage, i),
            error_kind: opt_str(error_kind, i),
            error_message: opt_str(error_message, i),
            reply_code: reply_code.is_valid(i).then(|| reply_code.value(i)),
            probed_at: opt_i64(probed_at, i),
            duration_ms: duration_ms.is_valid(i).then(|| duration_ms.value(i)),
        });
    }
    Ok(())
}
