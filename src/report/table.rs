//! One tabular value, five renderings: an aligned text table, Markdown, CSV, JSON and Parquet.
//!
//! Every report builds a [`Table`] from its pure result and hands it here, so the formats
//! agree column for column and a new report gets all of them for free.

use std::fmt::Write as _;
use std::io::Write;
use std::sync::Arc;

use anyhow::Result;
use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};

/// An output format of the report commands (`--format`).
///
/// Exists so every report accepts the same spellings and renders through one path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for a terminal, numbers with thousands separators.
    Table,
    /// A Markdown table (for a report or an issue), numbers with thousands separators.
    Md,
    /// CSV with a header line, plain numbers.
    Csv,
    /// JSON: an array of objects, one per row (some reports add detail).
    Json,
    /// Parquet (binary): write it with `--output FILE` or redirect stdout.
    Parquet,
}

/// The type of a column, which decides alignment, the thousands separators and the Parquet
/// type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Text (Parquet `string`).
    Text,
    /// A whole number (Parquet `int64`); right-aligned, thousands separators in text forms.
    Int,
    /// A share between 0 and 1 (Parquet `double`); shown as a percentage in text forms.
    Share,
    /// A signed difference (Parquet `int64`); shown with its sign (`+4`) in text forms.
    Diff,
}

/// One value of a row; `Null` renders as `-` in text forms, empty in CSV, null elsewhere.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    /// Text.
    Text(String),
    /// A whole number.
    Int(i64),
    /// A share between 0 and 1.
    Share(f64),
    /// No value.
    Null,
}

impl From<&str> for Cell {
    fn from(s: &str) -> Cell {
        Cell::Text(s.to_owned())
    }
}
impl From<String> for Cell {
    fn from(s: String) -> Cell {
        Cell::Text(s)
    }
}
impl From<u64> for Cell {
    fn from(n: u64) -> Cell {
        Cell::Int(n as i64)
    }
}
impl From<i64> for Cell {
    fn from(n: i64) -> Cell {
        Cell::Int(n)
    }
}
impl<T: Into<Cell>> From<Option<T>> for Cell {
    fn from(v: Option<T>) -> Cell {
        v.map(Into::into).unwrap_or(Cell::Null)
    }
}

/// A report's rows under named, typed columns.
///
/// Exists so the report logic produces data once and [`Table::render`] decides the format.
#[derive(Clone, Debug, Default)]
pub struct Table {
    /// Column names and kinds: the machine names (CSV, JSON, Parquet) are `name`; text forms
    /// show `title`.
    pub columns: Vec<Column>,
    /// The rows, each as long as `columns`.
    pub rows: Vec<Vec<Cell>>,
}

/// One column of a [`Table`].
#[derive(Clone, Debug)]
pub struct Column {
    /// Machine name (snake_case).
    pub name: String,
    /// Heading in the text table and Markdown.
    pub title: String,
    /// Type.
    pub kind: Kind,
}

impl Table {
    /// A table with these `(name, title, kind)` columns and no rows.
    pub fn new(columns: &[(&str, &str, Kind)]) -> Table {
        Table {
            columns: columns
                .iter()
                .map(|(n, t, k)| Column {
                    name: (*n).into(),
                    title: (*t).into(),
                    kind: *k,
                })
                .collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row (it must have one cell per column).
    pub fn push(&mut self, row: Vec<Cell>) {
        debug_assert_eq!(row.len(), self.columns.len());
        self.rows.push(row);
    }

    /// Renders in `format`. JSON is an array of objects; Parquet is a file's bytes.
    pub fn render(&self, format: Format) -> Result<Vec<u8>> {
        Ok(match format {
            Format::Table => self.text().into_bytes(),
            Format::Md => self.markdown().into_bytes(),
            Format::Csv => self.csv().into_bytes(),
            Format::Json => {
                let mut v = serde_json::to_vec_pretty(&self.json())?;
                v.push(b'\n');
                v
            }
            Format::Parquet => self.parquet()?,
        })
    }

    fn human(kind: Kind, c: &Cell) -> String {
        match c {
            Cell::Text(s) => s.clone(),
            Cell::Int(n) if kind == Kind::Diff => signed(*n),
            Cell::Int(n) => thousands(*n),
            Cell::Share(f) => format!("{:.1}%", f * 100.0),
            Cell::Null => "-".into(),
        }
    }

    /// The aligned text table: numbers right-aligned with thousands separators.
    pub fn text(&self) -> String {
        let cells: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| {
                r.iter()
                    .zip(&self.columns)
                    .map(|(c, col)| Self::human(col.kind, c))
                    .collect()
            })
            .collect();
        let mut width: Vec<usize> = self
            .columns
            .iter()
            .map(|c| c.title.chars().count())
            .collect();
        for r in &cells {
            for (i, c) in r.iter().enumerate() {
                width[i] = width[i].max(c.chars().count());
            }
        }
        let line = |o: &mut String, vals: &[String]| {
            let mut s = String::new();
            for (i, v) in vals.iter().enumerate() {
                if i > 0 {
                    s.push_str("  ");
                }
                let pad = width[i].saturating_sub(v.chars().count());
                if self.columns[i].kind == Kind::Text {
                    s.push_str(v);
                    s.push_str(&" ".repeat(pad));
                } else {
                    s.push_str(&" ".repeat(pad));
                    s.push_str(v);
                }
            }
            let _ = writeln!(o, "{}", s.trim_end());
        };
        let mut o = String::new();
        let titles: Vec<String> = self.columns.iter().map(|c| c.title.clone()).collect();
        line(&mut o, &titles);
        let rule: Vec<String> = width.iter().map(|w| "-".repeat(*w)).collect();
        line(&mut o, &rule);
        for r in &cells {
            line(&mut o, r);
        }
        o
    }

    /// A Markdown table.
    pub fn markdown(&self) -> String {
        let mut o = String::new();
        let titles: Vec<String> = self.columns.iter().map(|c| c.title.clone()).collect();
        let _ = writeln!(o, "| {} |", titles.join(" | "));
        let rule: Vec<&str> = self
            .columns
            .iter()
            .map(|c| if c.kind == Kind::Text { "---" } else { "---:" })
            .collect();
        let _ = writeln!(o, "| {} |", rule.join(" | "));
        for r in &self.rows {
            let v: Vec<String> = r
                .iter()
                .zip(&self.columns)
                .map(|(c, col)| Self::human(col.kind, c).replace('|', "\\|"))
                .collect();
            let _ = writeln!(o, "| {} |", v.join(" | "));
        }
        o
    }

    /// CSV (RFC 4180 quoting), plain numbers, shares as fractions.
    pub fn csv(&self) -> String {
        let mut o = String::new();
        let names: Vec<String> = self.columns.iter().map(|c| csv_field(&c.name)).collect();
        let _ = writeln!(o, "{}", names.join(","));
        for r in &self.rows {
            let v: Vec<String> = r
                .iter()
                .map(|c| match c {
                    Cell::Text(s) => csv_field(s),
                    Cell::Int(n) => n.to_string(),
                    Cell::Share(f) => format!("{f:.6}"),
                    Cell::Null => String::new(),
                })
                .collect();
            let _ = writeln!(o, "{}", v.join(","));
        }
        o
    }

    /// The rows as JSON objects keyed by column name.
    pub fn json(&self) -> serde_json::Value {
        serde_json::Value::Array(
            self.rows
                .iter()
                .map(|r| {
                    let mut m = serde_json::Map::new();
                    for (c, v) in self.columns.iter().zip(r) {
                        m.insert(
                            c.name.clone(),
                            match v {
                                Cell::Text(s) => s.clone().into(),
                                Cell::Int(n) => (*n).into(),
                                Cell::Share(f) => serde_json::json!(f),
                                Cell::Null => serde_json::Value::Null,
                            },
                        );
                    }
                    serde_json::Value::Object(m)
                })
                .collect(),
        )
    }

    /// A Parquet file (one row group): `string`, `int64` and `double` columns, nullable.
    pub fn parquet(&self) -> Result<Vec<u8>> {
        let fields: Vec<Field> = self
            .columns
            .iter()
            .map(|c| {
                let t = match c.kind {
                    Kind::Text => DataType::Utf8,
                    Kind::Int | Kind::Diff => DataType::Int64,
                    Kind::Share => DataType::Float64,
                };
                Field::new(&c.name, t, true)
            })
            .collect();
        let schema = Arc::new(Schema::new(fields));
        let arrays: Vec<ArrayRef> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| -> ArrayRef {
                let col = self.rows.iter().map(|r| &r[i]);
                match c.kind {
                    Kind::Text => Arc::new(StringArray::from_iter(col.map(|v| match v {
                        Cell::Text(s) => Some(s.clone()),
                        Cell::Int(n) => Some(n.to_string()),
                        Cell::Share(f) => Some(f.to_string()),
                        Cell::Null => None,
                    }))),
                    Kind::Int | Kind::Diff => {
                        Arc::new(Int64Array::from_iter(col.map(|v| match v {
                            Cell::Int(n) => Some(*n),
                            _ => None,
                        })))
                    }
                    Kind::Share => Arc::new(Float64Array::from_iter(col.map(|v| match v {
                        Cell::Share(f) => Some(*f),
                        Cell::Int(n) => Some(*n as f64),
                        _ => None,
                    }))),
                }
            })
            .collect();
        let batch = RecordBatch::try_new(schema.clone(), arrays)?;
        let mut buf = Vec::new();
        {
            let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, schema, None)?;
            w.write(&batch)?;
            w.close()?;
        }
        Ok(buf)
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// `1234567` → `1,234,567` (and `-1,234`): the text forms' numbers.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut o = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            o.push(',');
        }
        o.push(ch);
    }
    if n < 0 {
        format!("-{o}")
    } else {
        o
    }
}

/// A signed difference for people: `+4`, `-1,234`, `0`.
pub fn signed(n: i64) -> String {
    if n > 0 {
        format!("+{}", thousands(n))
    } else {
        thousands(n)
    }
}

/// Writes `bytes` to `path`, or to stdout when `path` is `None`.
pub fn emit(bytes: &[u8], path: Option<&std::path::Path>) -> Result<()> {
    match path {
        Some(p) => std::fs::write(p, bytes)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", p.display())),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(bytes)?;
            out.flush()?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(-1234), "-1,234");
        assert_eq!(signed(4), "+4");
        assert_eq!(signed(-1000), "-1,000");
    }

    #[test]
    fn formats_agree() {
        let mut t = Table::new(&[
            ("provider", "provider", Kind::Text),
            ("dane", "DANE", Kind::Int),
            ("share", "share", Kind::Share),
        ]);
        t.push(vec!["a,b".into(), Cell::Int(1234), Cell::Share(0.5)]);
        t.push(vec!["c".into(), Cell::Int(7), Cell::Null]);
        let text = t.text();
        assert!(text.contains("a,b       1,234  50.0%"), "{text}");
        assert!(text.lines().nth(3).unwrap().ends_with('-'), "{text}");
        assert_eq!(
            t.csv(),
            "provider,dane,share\n\"a,b\",1234,0.500000\nc,7,\n"
        );
        assert!(t.markdown().contains("| a,b | 1,234 | 50.0% |"));
        assert_eq!(t.json()[1]["share"], serde_json::Value::Null);
        let pq = t.parquet().unwrap();
        assert_eq!(&pq[..4], b"PAR1");
    }
}
