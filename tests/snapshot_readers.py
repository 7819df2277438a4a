"""Reads the snapshot tree written by tests/snapshot_readers.rs with pyarrow, DuckDB, polars and
pandas, and asserts exact values: an independent check that the Parquet files mean what
output/README.md says, in the readers researchers use.

Usage: python3 tests/snapshot_readers.py OUT   (OUT holds snapshot=2026-01-01/, snapshot=2026-02-01/)
"""

import datetime as dt
import glob
import json
import os
import sys

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds

OUT = sys.argv[1]
UTC = dt.timezone.utc
JAN, FEB = dt.date(2026, 1, 1), dt.date(2026, 2, 1)


def files(table):
    return sorted(glob.glob(os.path.join(OUT, "snapshot=*", table, "*.parquet")))


def glob_of(table):
    return os.path.join(OUT, "snapshot=*", table, "*.parquet")


MX = [{"preference": 10, "exchange": "mx1.example.com"},
      {"preference": 20, "exchange": "mx2.example.net"}]
# (snapshot, domain, verdict, all_hosts_verdict, mx, primary_hosts, provider, mx_security,
#  reason, checked_at)
DOMAINS = [
    (JAN, "example.com", "dane_valid", "dane_partial", MX, ["mx1.example.com"], "example.com",
     "secure", "every primary MX host passes",
     dt.datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)),
    (JAN, "xn--bcher-kva.de", "nxdomain", None, [], [], None, None, "ünïcødé — 日本語",
     dt.datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC)),
    (FEB, "example.com", "dane_failing", "dane_partial", MX, ["mx1.example.com"], "example.com",
     "secure", "every primary MX host passes", dt.datetime(2026, 2, 1, tzinfo=UTC)),
]
LEAF_NOT_BEFORE = dt.datetime(2026, 1, 1, tzinfo=UTC)
LEAF_NOT_AFTER = dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
CHAIN_NOT_AFTER_MIN = dt.datetime(2027, 1, 1, tzinfo=UTC)
PROBED_AT = dt.datetime(2026, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)


def same_ts(got, want):
    """Compares a datetime-like (datetime, pandas Timestamp) with an aware datetime."""
    if want is None:
        assert got is None or pd.isna(got), got
        return
    got = pd.Timestamp(got)
    assert got.tzinfo is not None, f"{got!r} has no time zone"
    assert got.to_pydatetime() == want, (got, want)


def check_domains(rows, snapshot_as):
    """rows: dicts with the domain columns plus `snapshot`; snapshot_as converts a date to the
    reader's representation of the partition value."""
    rows = sorted(rows, key=lambda r: (str(r["snapshot"]), r["domain"]))
    assert len(rows) == len(DOMAINS), rows
    for r, w in zip(rows, DOMAINS):
        snap, domain, verdict, all_hosts, mx, primary, provider, sec, reason, checked = w
        assert r["snapshot"] == snapshot_as(snap), (r["snapshot"], snap)
        assert r["domain"] == domain and r["verdict"] == verdict, r
        assert r["all_hosts_verdict"] == all_hosts, r
        assert [dict(m) for m in r["mx"]] == mx, r["mx"]
        assert list(r["primary_hosts"]) == primary, r["primary_hosts"]
        assert list(r["providers"]) == ([] if provider is None else [provider]), r["providers"]
        assert r["provider"] == provider and r["mx_security"] == sec, r
        assert r["reason"] == reason, r["reason"]
        same_ts(r["checked_at"], checked)
        assert r["tld"] == domain.rsplit(".", 1)[1]
        assert r["source"] == "zonelists/sample.txt"


def check_host(h):
    assert h["host"] == "mx1.example.com" and h["verdict"] == "pass", h
    assert list(h["addresses"]) == ["192.0.2.1", "2001:db8::1"]
    assert [dict(x) for x in h["tlsa_lookups"]] == [
        {"name": "_25._tcp.mx1.example.com", "result": "secure data (2)"}]
    assert list(h["tlsa"]) == ["3 1 1 aabb", "0 0 1 ccdd"]
    assert list(h["tlsa_usable"]) == ["3 1 1 aabb"]
    assert [dict(x) for x in h["tlsa_unusable"]] == [
        {"record": "0 0 1 ccdd", "reason": "PKIX-TA(0) is unusable for SMTP"}]
    assert h["canonical"] is None, h["canonical"]
    assert not h["opted_out"] and h["opted_out"] is not None
    same_ts(h["resolved_at"], dt.datetime(2026, 1, 1, tzinfo=UTC))


def check_probes(rows):
    rows = sorted(rows, key=lambda r: r["address"])
    assert [r["address"] for r in rows] == ["192.0.2.1", "2001:db8::1"], rows
    p, u = rows
    assert p["verdict"] == "pass" and u["verdict"] == "unreachable"
    assert p["starttls_offered"] and bool(p["starttls_offered"]) is True
    assert u["starttls_offered"] is None or pd.isna(u["starttls_offered"])
    assert list(p["cert_sha256"]) == ["c1", "c2"] and list(u["cert_sha256"]) == []
    assert list(p["spki_sha256"]) == ["s1", "s2"] and list(p["leaf_names"]) == ["mx1.example.com"]
    same_ts(p["leaf_not_before"], LEAF_NOT_BEFORE)
    same_ts(p["leaf_not_after"], LEAF_NOT_AFTER)
    same_ts(p["chain_not_after_min"], CHAIN_NOT_AFTER_MIN)
    same_ts(p["probed_at"], PROBED_AT)
    for c in ["leaf_not_before", "leaf_not_after", "chain_not_after_min", "probed_at"]:
        same_ts(u[c], None)
    assert int(p["duration_ms"]) == 42 and (u["duration_ms"] is None or pd.isna(u["duration_ms"]))
    assert int(u["reply_code"]) == 421 and (p["reply_code"] is None or pd.isna(p["reply_code"]))
    assert p["tls_version"] == "TLSv1.3" and u["tls_version"] is None
    assert u["error_message"] == "421 too busy" and p["error_message"] is None


def check_pyarrow():
    def dataset(table):
        return ds.dataset(files(table), format="parquet", partitioning="hive",
                          partition_base_dir=OUT)
    dom = dataset("domains").to_table()
    assert dom.schema.field("checked_at").type == pa.timestamp("us", tz="UTC")
    assert dom.schema.field("verdict").type == pa.string()
    assert dom.schema.field("mx").type == pa.list_(pa.field("element", pa.struct([
        pa.field("preference", pa.int32(), nullable=False),
        pa.field("exchange", pa.string(), nullable=False)]), nullable=False))
    check_domains(dom.to_pylist(), lambda d: d.isoformat())
    hosts = dataset("hosts").to_table().to_pylist()
    assert len(hosts) == 1 and hosts[0]["snapshot"] == "2026-01-01"
    check_host(hosts[0])
    probes = dataset("probes").to_table()
    assert probes.schema.field("reply_code").type == pa.int32()
    assert probes.schema.field("duration_ms").type == pa.int64()
    check_probes(probes.to_pylist())
    # The metadata every file carries.
    import pyarrow.parquet as pq
    for table in ["domains", "hosts", "probes"]:
        for f in files(table):
            md = pq.ParquetFile(f).metadata.metadata
            assert md[b"dane_survey.table"] == table.encode(), (f, md)
            assert md[b"dane_survey.schema_version"] == b"1"
            assert md[b"dane_survey.taxonomy_version"] == b"1"
            meta = pq.ParquetFile(f).metadata
            for rg in range(meta.num_row_groups):
                assert meta.row_group(rg).column(0).compression == "ZSTD"
    print("pyarrow: ok")


def check_duckdb():
    con = duckdb.connect()
    q = f"read_parquet('{glob_of('domains')}', hive_partitioning=true)"
    types = dict(con.execute(f"select column_name, column_type from (describe select * from {q})").fetchall())
    assert types["snapshot"] == "DATE", types
    assert types["checked_at"] == "TIMESTAMP WITH TIME ZONE", types
    assert types["mx"] == "STRUCT(preference INTEGER, exchange VARCHAR)[]", types
    assert types["primary_hosts"] == "VARCHAR[]", types
    cur = con.execute(f"select * from {q}")
    names = [d[0] for d in cur.description]
    check_domains([dict(zip(names, row)) for row in cur.fetchall()], lambda d: d)
    counts = con.execute(
        f"select snapshot, verdict, count(*) from {q} group by all order by all").fetchall()
    assert counts == [(JAN, "dane_valid", 1), (JAN, "nxdomain", 1), (FEB, "dane_failing", 1)]
    cur = con.execute(f"select * from read_parquet('{glob_of('hosts')}', hive_partitioning=true)")
    names = [d[0] for d in cur.description]
    hosts = [dict(zip(names, row)) for row in cur.fetchall()]
    assert len(hosts) == 1 and hosts[0]["snapshot"] == JAN
    check_host(hosts[0])
    cur = con.execute(f"select * from read_parquet('{glob_of('probes')}', hive_partitioning=true)")
    names = [d[0] for d in cur.description]
    check_probes([dict(zip(names, row)) for row in cur.fetchall()])
    # A join across tables, as the reports do.
    joined = con.execute(f"""
        with d as (select snapshot, domain, unnest(primary_hosts) as host from {q}),
             h as (select * from read_parquet('{glob_of('hosts')}', hive_partitioning=true)),
             p as (select * from read_parquet('{glob_of('probes')}', hive_partitioning=true))
        select d.domain, h.verdict, p.address
        from d join h using (snapshot, host) join p using (snapshot, host)
        order by all""").fetchall()
    assert joined == [("example.com", "pass", "192.0.2.1"), ("example.com", "pass", "2001:db8::1")], joined
    print("duckdb: ok")


def check_polars():
    dom = pl.read_parquet(glob_of("domains"), hive_partitioning=True)
    assert dom.schema["snapshot"] == pl.Date, dom.schema
    assert dom.schema["checked_at"] == pl.Datetime("us", "UTC"), dom.schema
    check_domains(dom.to_dicts(), lambda d: d)
    hosts = pl.read_parquet(glob_of("hosts"), hive_partitioning=True).to_dicts()
    assert len(hosts) == 1
    check_host(hosts[0])
    check_probes(pl.read_parquet(glob_of("probes"), hive_partitioning=True).to_dicts())
    by_verdict = (pl.scan_parquet(glob_of("domains"), hive_partitioning=True)
                  .filter(pl.col("snapshot") == FEB).select("verdict").collect())
    assert by_verdict["verdict"].to_list() == ["dane_failing"]
    print("polars: ok")


def check_pandas():
    dom = pd.read_parquet(files("domains"), partitioning="hive")
    assert str(dom["checked_at"].dtype) == "datetime64[us, UTC]", dom.dtypes
    check_domains(dom.to_dict("records"), lambda d: d.isoformat())
    hosts = pd.read_parquet(files("hosts"), partitioning="hive").to_dict("records")
    assert len(hosts) == 1
    check_host(hosts[0])
    probes = pd.read_parquet(files("probes"), partitioning="hive")
    # The 9999-12-31 expiry survives: pandas keeps microseconds (nanoseconds would overflow).
    assert str(probes["leaf_not_after"].dtype) == "datetime64[us, UTC]", probes.dtypes
    check_probes(probes.to_dict("records"))
    print("pandas: ok")


def check_run_json():
    for date in ["2026-01-01", "2026-02-01"]:
        with open(os.path.join(OUT, f"snapshot={date}", "run.json")) as f:
            run = json.load(f)
        assert run["snapshot"] == date and run["complete"] is True and run["schema_version"] == 1


check_run_json()
check_pyarrow()
check_duckdb()
check_polars()
check_pandas()
