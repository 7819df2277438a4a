//! Snapshots: the Parquet tables a crawl writes and every report reads.

mod rows;

pub use rows::*;
