#!/usr/bin/env python3
"""Reads a dane-survey snapshot with independent readers (pyarrow and DuckDB) and prints it
as JSON for the Rust tests: every table's rows without the timing columns, sorted, plus
DuckDB's verdict counts over the Hive-partitioned layout.

usage: read_snapshot.py OUT_ROOT DATE
"""
import json
import sys

import duckdb
import pyarrow.dataset as ds

TIMINGS = {"checked_at", "resolved_at", "probed_at", "duration_ms"}


def table(root, date, name):
    path = f"{root}/snapshot={date}/{name}"
    import os
    if not os.path.isdir(path) or not any(f.endswith(".parquet") for f in os.listdir(path)):
        return []
    t = ds.dataset(path, format="parquet").to_table()
    rows = []
    for r in t.to_pylist():
        rows.append({k: v for k, v in r.items() if k not in TIMINGS})
    rows.sort(key=lambda r: json.dumps(r, sort_keys=True, default=str))
    return rows


def main():
    root, date = sys.argv[1], sys.argv[2]
    out = {name: table(root, date, name) for name in ("domains", "hosts", "probes")}
    con = duckdb.connect()
    q = f"""select snapshot::varchar, verdict, count(*) from read_parquet(
              '{root}/snapshot=*/domains/*.parquet', hive_partitioning=true)
            group by all order by all"""
    out["duckdb_verdicts"] = [[str(s), v, n] for s, v, n in con.execute(q).fetchall()]
    print(json.dumps(out, default=str, sort_keys=True))


if __name__ == "__main__":
    main()
