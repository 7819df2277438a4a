//! The tables in Arrow terms, the key-value metadata of every file, and the checks a reader
//! makes before it trusts a file.
//!
//! Types are chosen so DuckDB, pandas/pyarrow, polars and Spark read the files as they are:
//! UTF-8 strings (verdicts too, by their stable names), signed integers only (Spark has no
//! unsigned types), booleans, lists with the Parquet-standard `element` item name, lists of
//! structs, and timestamps in microseconds adjusted to UTC.

use std::sync::Arc;

use anyhow::{bail, Result};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use parquet::file::metadata::KeyValue;

use super::{Table, SCHEMA_VERSION};
use crate::verdict::TAXONOMY_VERSION;

/// File metadata key: the snapshot schema version ([`SCHEMA_VERSION`]) the file was written with.
pub const META_SCHEMA_VERSION: &str = "dane_survey.schema_version";
/// File metadata key: the verdict taxonomy version ([`TAXONOMY_VERSION`]) of its verdicts.
pub const META_TAXONOMY_VERSION: &str = "dane_survey.taxonomy_version";
/// File metadata key: which table the file belongs to (`domains`, `hosts`, `probes`).
pub const META_TABLE: &str = "dane_survey.table";

/// The key-value metadata written into every file of `table`.
pub(super) fn file_metadata(table: Table) -> Vec<KeyValue> {
    vec![
        KeyValue::new(META_SCHEMA_VERSION.to_owned(), SCHEMA_VERSION.to_string()),
        KeyValue::new(
            META_TAXONOMY_VERSION.to_owned(),
            TAXONOMY_VERSION.to_string(),
        ),
        KeyValue::new(META_TABLE.to_owned(), table.name().to_owned()),
    ]
}

fn utf8(name: &str) -> Field {
    Field::new(name, DataType::Utf8, false)
}

fn opt_utf8(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true)
}

/// Timestamp, microseconds, UTC (Parquet `TIMESTAMP(MICROS, isAdjustedToUTC=true)`).
pub(super) fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn ts(name: &str, nullable: bool) -> Field {
    Field::new(name, ts_type(), nullable)
}

/// The item field of every list column: non-null items named `element`, as the Parquet
/// LIST specification spells it.
pub(super) fn item(data_type: DataType) -> Arc<Field> {
    Arc::new(Field::new("element", data_type, false))
}

fn list(name: &str, item_type: DataType) -> Field {
    Field::new(name, DataType::List(item(item_type)), false)
}

/// The struct of an `mx` list item.
pub(super) fn mx_fields() -> Fields {
    Fields::from(vec![
        Field::new("preference", DataType::Int32, false),
        utf8("exchange"),
    ])
}

/// The struct of a `tlsa_lookups` list item.
pub(super) fn tlsa_lookup_fields() -> Fields {
    Fields::from(vec![utf8("name"), utf8("result")])
}

/// The struct of a `tlsa_unusable` list item.
pub(super) fn unusable_fields() -> Fields {
    Fields::from(vec![utf8("record"), utf8("reason")])
}

/// The Arrow schema of `table`, column for column as in the row structs ([`super::DomainRow`], …).
pub fn arrow_schema(table: Table) -> SchemaRef {
    let fields = match table {
        Table::Domains => vec![
            utf8("domain"),
            utf8("tld"),
            utf8("source"),
            utf8("mx_lookup"),
            opt_utf8("mx_security"),
            list("mx", DataType::Struct(mx_fields())),
            list("primary_hosts", DataType::Utf8),
            opt_utf8("provider"),
            list("providers", DataType::Utf8),
            utf8("verdict"),
            opt_utf8("all_hosts_verdict"),
            utf8("reason"),
            ts("checked_at", false),
        ],
        Table::Hosts => vec![
            utf8("host"),
            opt_utf8("provider"),
            utf8("address_lookup"),
            opt_utf8("address_security"),
            opt_utf8("canonical"),
            list("addresses", DataType::Utf8),
            list("tlsa_lookups", DataType::Struct(tlsa_lookup_fields())),
            opt_utf8("tlsa_base_domain"),
            list("tlsa", DataType::Utf8),
            list("tlsa_usable", DataType::Utf8),
            list("tlsa_unusable", DataType::Struct(unusable_fields())),
            utf8("verdict"),
            utf8("reason"),
            Field::new("opted_out", DataType::Boolean, false),
            ts("resolved_at", false),
        ],
        Table::Probes => vec![
            utf8("host"),
            utf8("address"),
            utf8("sni"),
            utf8("verdict"),
            utf8("reason"),
            opt_utf8("matched"),
            opt_utf8("stage_reached"),
            opt_utf8("banner"),
            Field::new("starttls_offered", DataType::Boolean, true),
            opt_utf8("tls_version"),
            opt_utf8("cipher"),
            list("cert_sha256", DataType::Utf8),
            list("spki_sha256", DataType::Utf8),
            list("leaf_names", DataType::Utf8),
            ts("leaf_not_before", true),
            ts("leaf_not_after", true),
            ts("chain_not_after_min", true),
            opt_utf8("leaf_3_1_1"),
            opt_utf8("error_stage"),
            opt_utf8("error_kind"),
            opt_utf8("error_message"),
            Field::new("reply_code", DataType::Int32, true),
            ts("probed_at", true),
            Field::new("duration_ms", DataType::Int64, true),
        ],
    };
    Arc::new(Schema::new(fields))
}

/// Checks that a file's key-value metadata and Arrow schema are those of `table` at a schema
/// version this build reads. `what` names the file in errors.
pub(super) fn check_file(
    what: &str,
    table: Table,
    kv: Option<&Vec<KeyValue>>,
    schema: &Schema,
) -> Result<()> {
    let get = |key: &str| {
        kv.and_then(|kv| kv.iter().find(|e| e.key == key))
            .and_then(|e| e.value.as_deref())
    };
    let Some(file_table) = get(META_TABLE) else {
        bail!("{what}: not a dane-survey snapshot file (no {META_TABLE} metadata)");
    };
    if file_table != table.name() {
        bail!(
            "{what}: a file of table {file_table:?}, read as table {:?}",
            table.name()
        );
    }
    let version = |key: &str, ours: u32| -> Result<u32> {
        let Some(v) = get(key) else {
            bail!("{what}: no {key} metadata");
        };
        let Ok(v) = v.trim().parse::<u32>() else {
            bail!("{what}: bad {key} {v:?}");
        };
        if v > ours {
            bail!(
                "{what}: written with {key} {v}, newer than this build's {ours}: \
                 read it with a newer dane-survey"
            );
        }
        Ok(v)
    };
    let schema_version = version(META_SCHEMA_VERSION, SCHEMA_VERSION)?;
    if schema_version != SCHEMA_VERSION {
        bail!(
            "{what}: schema version {schema_version} is older than this build's \
             {SCHEMA_VERSION} and has no reader here"
        );
    }
    version(META_TAXONOMY_VERSION, TAXONOMY_VERSION)?;

    let want = arrow_schema(table);
    let mut problems = Vec::new();
    if schema.fields().len() != want.fields().len() {
        problems.push(format!(
            "{} columns, expected {}",
            schema.fields().len(),
            want.fields().len()
        ));
    }
    for (i, w) in want.fields().iter().enumerate() {
        match schema.fields().get(i) {
            None => problems.push(format!("missing column {}", w.name())),
            Some(f) if f.name() != w.name() => problems.push(format!(
                "column {i} is {:?}, expected {:?}",
                f.name(),
                w.name()
            )),
            Some(f) if f.data_type() != w.data_type() || f.is_nullable() != w.is_nullable() => {
                problems.push(format!(
                    "column {} is {}{}, expected {}{}",
                    w.name(),
                    f.data_type(),
                    if f.is_nullable() { " (nullable)" } else { "" },
                    w.data_type(),
                    if w.is_nullable() { " (nullable)" } else { "" },
                ))
            }
            Some(_) => {}
        }
    }
    if !problems.is_empty() {
        bail!(
            "{what}: not the {} schema version {SCHEMA_VERSION}: {}",
            table.name(),
            problems.join("; ")
        );
    }
    Ok(())
}
