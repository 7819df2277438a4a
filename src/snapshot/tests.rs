//! Tests of the snapshot writer, reader, catalogue and merge.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, StringArray};
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use super::schema::{arrow_schema, file_metadata};
use super::tables::encode_domains;
use super::*;
use crate::verdict::{AddressVerdict, DomainVerdict, HostVerdict};
use crate::zonelist::shard::Shard;

/// A fresh, empty directory for one test.
fn tmpdir(tag: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let d = std::env::temp_dir().join(format!(
        "dane-survey-snap-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

pub(super) fn domain(name: &str, verdict: DomainVerdict) -> DomainRow {
    DomainRow {
        domain: name.to_owned(),
        tld: name.rsplit('.').next().unwrap().to_owned(),
        source: "zonelists/sample.txt".to_owned(),
        mx_lookup: "secure data (2)".to_owned(),
        mx_security: Some("secure".to_owned()),
        mx: vec![
            MxRecord {
                preference: 10,
                exchange: format!("mx1.{name}"),
            },
            MxRecord {
                preference: 20,
                exchange: "mx.provider.example".to_owned(),
            },
        ],
        primary_hosts: vec![format!("mx1.{name}")],
        provider: Some(name.to_owned()),
        providers: vec![name.to_owned()],
        verdict,
        all_hosts_verdict: Some(DomainVerdict::DanePartial),
        reason: "every primary MX host passes".to_owned(),
        checked_at: 1_767_225_600_123_456,
    }
}

fn host(name: &str, reason: &str) -> HostRow {
    HostRow {
        host: name.to_owned(),
        provider: Some("provider.example".to_owned()),
        address_lookup: "secure data (1) / secure NODATA".to_owned(),
        address_security: Some("secure".to_owned()),
        canonical: None,
        addresses: vec!["192.0.2.1".to_owned(), "2001:db8::1".to_owned()],
        tlsa_lookups: vec![TlsaLookup {
            name: format!("_25._tcp.{name}"),
            result: "secure data (2)".to_owned(),
        }],
        tlsa_base_domain: Some(name.to_owned()),
        tlsa: vec!["3 1 1 aa".to_owned(), "0 0 1 bb".to_owned()],
        tlsa_usable: vec!["3 1 1 aa".to_owned()],
        tlsa_unusable: vec![UnusableTlsa {
            record: "0 0 1 bb".to_owned(),
            reason: "PKIX-TA is unusable for SMTP".to_owned(),
        }],
        verdict: HostVerdict::Pass,
        reason: reason.to_owned(),
        opted_out: false,
        resolved_at: 1_767_225_600_000_001,
    }
}

fn probe(host: &str, address: &str, reason: &str) -> ProbeRow {
    ProbeRow {
        host: host.to_owned(),
        address: address.to_owned(),
        sni: host.to_owned(),
        verdict: AddressVerdict::Pass,
        reason: reason.to_owned(),
        matched: Some("3 1 1 aa".to_owned()),
        stage_reached: Some("done".to_owned()),
        banner: Some("220 mx ESMTP".to_owned()),
        starttls_offered: Some(true),
        tls_version: Some("TLSv1.3".to_owned()),
        cipher: Some("TLS13_AES_256_GCM_SHA384".to_owned()),
        cert_sha256: vec!["c1".to_owned(), "c2".to_owned()],
        spki_sha256: vec!["s1".to_owned(), "s2".to_owned()],
        leaf_names: vec![host.to_owned()],
        leaf_not_before: Some(1_700_000_000),
        leaf_not_after: Some(253_402_300_799), // 9999-12-31T23:59:59Z
        chain_not_after_min: Some(-86_400),
        leaf_3_1_1: Some("3 1 1 aa".to_owned()),
        error_stage: None,
        error_kind: None,
        error_message: None,
        reply_code: None,
        probed_at: Some(1_767_225_600_500_000),
        duration_ms: Some(123),
    }
}

/// A probe row with every optional field null and every list empty.
fn bare_probe() -> ProbeRow {
    ProbeRow {
        host: String::new(),
        address: "::".to_owned(),
        sni: String::new(),
        verdict: AddressVerdict::Skipped,
        reason: String::new(),
        matched: None,
        stage_reached: None,
        banner: None,
        starttls_offered: None,
        tls_version: None,
        cipher: None,
        cert_sha256: vec![],
        spki_sha256: vec![],
        leaf_names: vec![],
        leaf_not_before: None,
        leaf_not_after: None,
        chain_not_after_min: None,
        leaf_3_1_1: None,
        error_stage: None,
        error_kind: None,
        error_message: None,
        reply_code: None,
        probed_at: None,
        duration_ms: None,
    }
}

#[test]
fn paths() {
    let dir = snapshot_dir(Path::new("output"), "2026-01-01");
    assert_eq!(dir, Path::new("output/snapshot=2026-01-01"));
    assert_eq!(
        part_path(&dir, Table::Probes, 42),
        Path::new("output/snapshot=2026-01-01/probes/part-00000042.parquet")
    );
    assert_eq!(Table::ALL.map(Table::name), ["domains", "hosts", "probes"]);
    assert_eq!(Table::from_name("hosts"), Some(Table::Hosts));
}

#[test]
fn domains_round_trip() {
    let dir = tmpdir("dom");
    let mut rows = vec![
        domain("example.com", DomainVerdict::DaneValid),
        domain("xn--bcher-kva.de", DomainVerdict::NoTlsa),
    ];
    // Nulls and empty lists.
    let mut bare = domain("nx.example", DomainVerdict::Nxdomain);
    bare.mx_security = None;
    bare.mx = vec![];
    bare.primary_hosts = vec![];
    bare.provider = None;
    bare.providers = vec![];
    bare.all_hosts_verdict = None;
    bare.checked_at = i64::MIN;
    rows.push(bare);
    // Unicode and long strings.
    let mut odd = domain("unicode.example", DomainVerdict::MxLookupFailed);
    odd.reason = "SERVFAIL (EDE 9 « DNSKEY missing » — 日本語, emoji 🚀)".repeat(50);
    odd.mx_lookup = "x".repeat(200_000);
    odd.mx[0].preference = i32::MIN;
    odd.mx[1].preference = i32::MAX;
    odd.checked_at = i64::MAX;
    rows.push(odd);
    for v in DomainVerdict::ALL {
        rows.push(domain(
            &format!("{}.test", v.as_str().replace('_', "-")),
            *v,
        ));
    }
    let path = part_path(&dir, Table::Domains, 0);
    write_domains(&path, &rows).unwrap();
    assert_eq!(read_domains(&path).unwrap(), rows);

    // Empty part.
    let empty = part_path(&dir, Table::Domains, 1);
    write_domains(&empty, &[]).unwrap();
    assert_eq!(read_domains(&empty).unwrap(), vec![]);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn many_rows_span_row_groups() {
    let dir = tmpdir("many");
    let base = domain("example.com", DomainVerdict::DaneValid);
    let rows: Vec<DomainRow> = (0..ROW_GROUP_ROWS + 1000)
        .map(|i| {
            let mut r = base.clone();
            r.domain = format!("d{i}.example");
            if i % 3 == 0 {
                r.mx.clear();
                r.provider = None;
            }
            r
        })
        .collect();
    let path = part_path(&dir, Table::Domains, 0);
    write_domains(&path, &rows).unwrap();
    let file = fs::File::open(&path).unwrap();
    let meta = parquet::file::reader::FileReader::metadata(
        &parquet::file::reader::SerializedFileReader::new(file).unwrap(),
    )
    .clone();
    assert_eq!(meta.num_row_groups(), 2);
    let kv = meta.file_metadata().key_value_metadata().unwrap();
    let get = |k: &str| kv.iter().find(|e| e.key == k).and_then(|e| e.value.clone());
    assert_eq!(get(META_TABLE).as_deref(), Some("domains"));
    assert_eq!(get(META_SCHEMA_VERSION), Some(SCHEMA_VERSION.to_string()));
    assert_eq!(
        get(META_TAXONOMY_VERSION),
        Some(crate::verdict::TAXONOMY_VERSION.to_string())
    );
    let col = meta.row_group(0).column(9); // verdict
    assert!(
        col.compression().to_string().starts_with("ZSTD"),
        "{:?}",
        col.compression()
    );
    assert!(
        col.dictionary_page_offset().is_some(),
        "verdict is dictionary-encoded"
    );
    assert_eq!(read_domains(&path).unwrap(), rows);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn hosts_round_trip() {
    let dir = tmpdir("hosts");
    let mut bare = host("bare.example", "");
    bare.provider = None;
    bare.address_security = None;
    bare.canonical = Some("alias.example".to_owned());
    bare.addresses = vec![];
    bare.tlsa_lookups = vec![];
    bare.tlsa_base_domain = None;
    bare.tlsa = vec![];
    bare.tlsa_usable = vec![];
    bare.tlsa_unusable = vec![];
    bare.opted_out = true;
    bare.verdict = HostVerdict::EncryptOnly;
    let mut rows = vec![
        host("mx1.example.com", "ok"),
        bare,
        host("mx.ünï.example", &"é".repeat(70_000)),
    ];
    for v in HostVerdict::ALL {
        let mut h = host(&format!("{}.test", v.as_str()), "r");
        h.verdict = *v;
        rows.push(h);
    }
    let path = part_path(&dir, Table::Hosts, 7);
    write_hosts(&path, &rows).unwrap();
    assert_eq!(read_hosts(&path).unwrap(), rows);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn probes_round_trip() {
    let dir = tmpdir("probes");
    let mut failed = probe("mx.example", "192.0.2.9", "TLS handshake failed");
    failed.verdict = AddressVerdict::TlsFailed;
    failed.error_stage = Some("tls_handshake".to_owned());
    failed.error_kind = Some("tls".to_owned());
    failed.error_message = Some("alert: handshake_failure «x»".to_owned());
    failed.reply_code = Some(454);
    failed.starttls_offered = Some(false);
    failed.leaf_not_before = Some(i64::MAX / 1_000_000);
    failed.leaf_not_after = Some(i64::MIN / 1_000_000);
    let mut rows = vec![
        probe("mx.example", "2001:db8::25", "matched 3 1 1"),
        bare_probe(),
        failed,
    ];
    for v in AddressVerdict::ALL {
        let mut p = probe("v.example", v.as_str(), "r");
        p.verdict = *v;
        rows.push(p);
    }
    let path = part_path(&dir, Table::Probes, 0);
    write_probes(&path, &rows).unwrap();
    assert_eq!(read_probes(&path).unwrap(), rows);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn seconds_beyond_range_is_an_error() {
    let dir = tmpdir("range");
    let mut p = probe("mx.example", "192.0.2.1", "r");
    p.chain_not_after_min = Some(i64::MAX / 1_000_000 + 1);
    let path = part_path(&dir, Table::Probes, 0);
    let err = write_probes(&path, &[p]).unwrap_err();
    assert!(
        format!("{err:#}").contains("chain_not_after_min"),
        "{err:#}"
    );
    assert!(!path.exists());
    assert_eq!(
        fs::read_dir(dir.join("probes")).unwrap().count(),
        0,
        "no temp file left"
    );
    fs::remove_dir_all(&dir).unwrap();
}

/// Writes a domains-schema file with the given columns and metadata, bypassing the checks.
fn write_raw(path: &Path, columns: Vec<ArrayRef>, kv: Vec<KeyValue>) {
    let schema = arrow_schema(Table::Domains);
    let props = WriterProperties::builder()
        .set_key_value_metadata(Some(kv))
        .build();
    let file = fs::File::create(path).unwrap();
    let mut w = ArrowWriter::try_new(file, schema.clone(), Some(props)).unwrap();
    w.write(&RecordBatch::try_new(schema, columns).unwrap())
        .unwrap();
    w.close().unwrap();
}

#[test]
fn reader_refuses_foreign_files() {
    let dir = tmpdir("refuse");
    // A hosts part read as domains.
    let hosts = part_path(&dir, Table::Hosts, 0);
    write_hosts(&hosts, &[host("mx.example", "ok")]).unwrap();
    let err = format!("{:#}", read_domains(&hosts).unwrap_err());
    assert!(
        err.contains("\"hosts\"") && err.contains("part-00000000.parquet"),
        "{err}"
    );

    // A newer schema version.
    let rows = [domain("example.com", DomainVerdict::DaneValid)];
    let newer = dir.join("newer.parquet");
    let mut kv = file_metadata(Table::Domains);
    kv[0].value = Some((SCHEMA_VERSION + 1).to_string());
    write_raw(&newer, encode_domains(&rows).unwrap(), kv);
    let err = format!("{:#}", read_domains(&newer).unwrap_err());
    assert!(err.contains("newer"), "{err}");

    // No metadata at all (someone else's Parquet file).
    let foreign = dir.join("foreign.parquet");
    write_raw(&foreign, encode_domains(&rows).unwrap(), vec![]);
    let err = format!("{:#}", read_domains(&foreign).unwrap_err());
    assert!(err.contains("not a dane-survey snapshot file"), "{err}");

    // An unknown verdict names the file and the value.
    let unknown = dir.join("unknown.parquet");
    let mut cols = encode_domains(&rows).unwrap();
    cols[9] = Arc::new(StringArray::from(vec!["dane_splendid"]));
    write_raw(&unknown, cols, file_metadata(Table::Domains));
    let err = format!("{:#}", read_domains(&unknown).unwrap_err());
    assert!(
        err.contains("unknown.parquet") && err.contains("dane_splendid"),
        "{err}"
    );

    // Not Parquet, truncated, and bytes flipped all over: errors, never panics.
    let good = part_path(&dir, Table::Domains, 0);
    write_domains(&good, &rows).unwrap();
    let bytes = fs::read(&good).unwrap();
    let bad = dir.join("bad.parquet");
    fs::write(&bad, b"hello").unwrap();
    assert!(read_domains(&bad).is_err());
    fs::write(&bad, &bytes[..bytes.len() - 10]).unwrap();
    assert!(read_domains(&bad).is_err());
    for i in (0..bytes.len()).step_by(7) {
        let mut b = bytes.clone();
        b[i] ^= 0x5a;
        fs::write(&bad, &b).unwrap();
        let _ = read_domains(&bad); // must return, Ok or Err
    }
    assert!(read_domains(&dir.join("missing.parquet")).is_err());
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn parts_ignore_temp_files() {
    let dir = tmpdir("parts");
    assert!(parts(&dir, Table::Domains).unwrap().is_empty());
    for n in [3, 0, 12] {
        write_domains(&part_path(&dir, Table::Domains, n), &[]).unwrap();
    }
    let tdir = dir.join("domains");
    fs::write(tdir.join(".part-00000004.parquet.tmp-999"), b"half").unwrap();
    fs::write(tdir.join("part-5.parquet"), b"odd name").unwrap();
    fs::write(tdir.join("notes.txt"), b"").unwrap();
    fs::write(dir.join(".run.json.tmp-999"), b"{").unwrap();
    let got = parts(&dir, Table::Domains).unwrap();
    assert_eq!(got.keys().copied().collect::<Vec<_>>(), [0, 3, 12]);
    assert_eq!(got[&12], part_path(&dir, Table::Domains, 12));
    assert_eq!(remove_temp_files(&dir).unwrap(), 2);
    assert_eq!(remove_temp_files(&dir).unwrap(), 0);
    assert!(tdir.join("part-5.parquet").exists());
    fs::remove_dir_all(&dir).unwrap();
}

fn run_info(date: &str, shard: Option<&str>) -> RunInfo {
    RunInfo {
        tool_version: "0.1.0".to_owned(),
        schema_version: SCHEMA_VERSION,
        taxonomy_version: crate::verdict::TAXONOMY_VERSION,
        snapshot: date.to_owned(),
        shard: shard.map(str::to_owned),
        started: "2026-01-01T00:00:00Z".to_owned(),
        finished: Some("2026-01-01T01:00:00Z".to_owned()),
        complete: true,
        judged_at: 1_767_225_600,
        resolvers: vec!["127.0.0.1:53".to_owned()],
        settings: BTreeMap::from([("rate".to_owned(), "100".to_owned())]),
        ..RunInfo::default()
    }
}

#[test]
fn run_json_and_catalogue() {
    let out = tmpdir("cat");
    assert!(catalogue(&out.join("missing")).unwrap().is_empty());
    let d2 = snapshot_dir(&out, "2026-02-01");
    let d1 = snapshot_dir(&out, "2026-01-01");
    assert_eq!(read_run(&d1).unwrap(), None);
    let mut run = run_info("2026-02-01", None);
    run.inputs.push(InputInfo {
        source: "zonelists/sample.txt".to_owned(),
        tlds: BTreeMap::from([("com".to_owned(), 3)]),
        ..InputInfo::default()
    });
    write_run(&d2, &run).unwrap();
    assert_eq!(read_run(&d2).unwrap(), Some(run.clone()));
    let text = fs::read_to_string(d2.join(RUN_FILE)).unwrap();
    assert!(text.contains("\n  \"tool_version\""), "pretty JSON: {text}");
    fs::create_dir_all(&d1).unwrap();
    fs::create_dir_all(out.join(".snapshot=2026-03-01.merge-tmp")).unwrap();
    fs::create_dir_all(out.join("snapshot=2026-13-01")).unwrap();
    fs::create_dir_all(out.join("snapshot=latest")).unwrap();
    fs::write(out.join("snapshot=2026-04-01"), b"a file").unwrap();
    let cat = catalogue(&out).unwrap();
    assert_eq!(
        cat,
        vec![
            SnapshotEntry {
                date: "2026-01-01".to_owned(),
                dir: d1.clone(),
                run: None
            },
            SnapshotEntry {
                date: "2026-02-01".to_owned(),
                dir: d2.clone(),
                run: Some(run)
            },
        ]
    );
    fs::write(d1.join(RUN_FILE), b"{ not json").unwrap();
    let err = format!("{:#}", catalogue(&out).unwrap_err());
    assert!(err.contains("run.json"), "{err}");
    fs::remove_dir_all(&out).unwrap();
}

/// `count` domain names that belong to shard `k` of `n`.
fn shard_domains(k: u64, n: u64, count: usize) -> Vec<String> {
    let shard = Shard { k, n };
    (0..)
        .map(|i| format!("d{i}.example"))
        .filter(|d| shard.contains(&format!("{d}.")))
        .take(count)
        .collect()
}

/// Writes a complete shard output for shard `k` of `n` with the given hosts and probes.
fn write_shard(
    dir: &Path,
    k: u64,
    n: u64,
    hosts: &[HostRow],
    probes: &[ProbeRow],
) -> Vec<DomainRow> {
    let names = shard_domains(k, n, 5);
    let rows: Vec<DomainRow> = names
        .iter()
        .map(|d| domain(d, DomainVerdict::DaneValid))
        .collect();
    write_domains(&part_path(dir, Table::Domains, 0), &rows[..3]).unwrap();
    write_domains(&part_path(dir, Table::Domains, 1), &rows[3..]).unwrap();
    write_hosts(&part_path(dir, Table::Hosts, 0), hosts).unwrap();
    write_probes(&part_path(dir, Table::Probes, 0), probes).unwrap();
    let mut run = run_info("2026-01-01", Some(&format!("{k}/{n}")));
    run.started = format!("2026-01-01T0{k}:00:00Z");
    run.finished = Some(format!("2026-01-01T1{k}:00:00+00:00"));
    run.judged_at += k as i64;
    run.resolvers = vec![format!("127.0.0.{k}:53"), "127.0.0.1:53".to_owned()];
    run.settings.insert("k".to_owned(), k.to_string());
    run.domains_input = 5;
    run.domains_opted_out = k;
    run.verdicts = BTreeMap::from([("dane_valid".to_owned(), 5)]);
    run.rows = BTreeMap::from([
        ("domains".to_owned(), 5),
        ("hosts".to_owned(), hosts.len() as u64),
        ("probes".to_owned(), probes.len() as u64),
    ]);
    run.inputs = vec![InputInfo {
        source: "zonelists/sample.txt".to_owned(),
        format: Some("list".to_owned()),
        apex: None,
        names: 100,
        in_shard: 50,
        bad_lines: 2,
        tlds: BTreeMap::from([("example".to_owned(), 50), (format!("t{k}"), 1)]),
    }];
    write_run(dir, &run).unwrap();
    rows
}

#[test]
fn merge_two_shards_with_shared_hosts() {
    let root = tmpdir("merge");
    let (s1, s2) = (
        root.join("s1/snapshot=2026-01-01"),
        root.join("s2/snapshot=2026-01-01"),
    );
    let d1 = write_shard(
        &s1,
        1,
        2,
        &[
            host("shared.example", "from shard 1"),
            host("only1.example", "1"),
        ],
        &[
            probe("shared.example", "192.0.2.1", "from shard 1"),
            probe("only1.example", "192.0.2.2", "1"),
        ],
    );
    let d2 = write_shard(
        &s2,
        2,
        2,
        &[
            host("only2.example", "2"),
            host("shared.example", "from shard 2"),
        ],
        &[
            probe("shared.example", "192.0.2.1", "from shard 2"),
            probe("shared.example", "192.0.2.3", "2"),
        ],
    );
    let out = snapshot_dir(&root.join("merged"), "2026-01-01");
    // Shards given out of order: the lowest index still wins.
    let merged = merge(&[s2.clone(), s1.clone()], &out).unwrap();

    let all_domains: Vec<DomainRow> = parts(&out, Table::Domains)
        .unwrap()
        .values()
        .flat_map(|p| read_domains(p).unwrap())
        .collect();
    assert_eq!(parts(&out, Table::Domains).unwrap().len(), 4);
    assert_eq!(all_domains, [d1, d2].concat());

    let hosts: Vec<HostRow> = parts(&out, Table::Hosts)
        .unwrap()
        .values()
        .flat_map(|p| read_hosts(p).unwrap())
        .collect();
    let host_reasons: Vec<(&str, &str)> = hosts
        .iter()
        .map(|h| (h.host.as_str(), h.reason.as_str()))
        .collect();
    assert_eq!(
        host_reasons,
        [
            ("shared.example", "from shard 1"),
            ("only1.example", "1"),
            ("only2.example", "2")
        ]
    );
    let probes: Vec<ProbeRow> = parts(&out, Table::Probes)
        .unwrap()
        .values()
        .flat_map(|p| read_probes(p).unwrap())
        .collect();
    let probe_keys: Vec<(&str, &str, &str)> = probes
        .iter()
        .map(|p| (p.host.as_str(), p.address.as_str(), p.reason.as_str()))
        .collect();
    assert_eq!(
        probe_keys,
        [
            ("shared.example", "192.0.2.1", "from shard 1"),
            ("only1.example", "192.0.2.2", "1"),
            ("shared.example", "192.0.2.3", "2"),
        ]
    );

    assert_eq!(merged.shard, None);
    assert_eq!(merged.merged_shards, ["1/2", "2/2"]);
    assert!(merged.complete);
    assert_eq!(merged.snapshot, "2026-01-01");
    assert_eq!(merged.started, "2026-01-01T01:00:00Z");
    assert_eq!(
        merged.finished.as_deref(),
        Some("2026-01-01T12:00:00+00:00")
    );
    assert_eq!(merged.judged_at, 1_767_225_601);
    assert_eq!(merged.resolvers, ["127.0.0.1:53", "127.0.0.2:53"]);
    assert_eq!(merged.settings["k"], "1");
    assert_eq!(merged.domains_input, 10);
    assert_eq!(merged.domains_opted_out, 3);
    assert_eq!(merged.verdicts["dane_valid"], 10);
    assert_eq!(
        merged.rows,
        BTreeMap::from([
            ("domains".into(), 10),
            ("hosts".into(), 3),
            ("probes".into(), 3)
        ])
    );
    let input = &merged.inputs[0];
    assert_eq!(
        (input.names, input.in_shard, input.bad_lines),
        (100, 100, 2)
    );
    assert_eq!(
        input.tlds,
        BTreeMap::from([("example".into(), 100), ("t1".into(), 1), ("t2".into(), 1)])
    );
    assert_eq!(read_run(&out).unwrap(), Some(merged.clone()));

    // Idempotent: merging again replaces the output, leaving nothing behind.
    fs::write(out.join("domains/part-00000099.parquet"), b"stale").unwrap();
    let again = merge(&[s1.clone(), s2.clone()], &out).unwrap();
    assert_eq!(again, merged);
    assert_eq!(parts(&out, Table::Domains).unwrap().len(), 4);
    let siblings: Vec<String> = fs::read_dir(root.join("merged"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(siblings, ["snapshot=2026-01-01"]);

    // One shard alone merges, but is not complete.
    let partial = merge(
        std::slice::from_ref(&s2),
        &root.join("partial/snapshot=2026-01-01"),
    )
    .unwrap();
    assert!(!partial.complete);
    assert_eq!(partial.merged_shards, ["2/2"]);
    fs::remove_dir_all(&root).unwrap();
}

#[test]
fn merge_refuses_bad_inputs() {
    let root = tmpdir("merge-bad");
    let s1 = root.join("s1");
    let s2 = root.join("s2");
    write_shard(&s1, 1, 2, &[], &[]);
    write_shard(&s2, 2, 2, &[], &[]);
    let out = root.join("out/snapshot=2026-01-01");
    let refuse = |shards: &[PathBuf], want: &str| {
        let err = format!("{:#}", merge(shards, &out).unwrap_err());
        assert!(err.contains(want), "expected {want:?} in {err}");
        assert!(!out.exists(), "{err}");
    };
    refuse(&[], "no shard");
    refuse(&[s1.clone(), s1.clone()], "both shard 1/2");
    refuse(&[root.join("nothing")], "no run.json");
    refuse(&[s1.clone(), out.clone()], "both a shard and the output");

    let edit = |dir: &Path, f: &dyn Fn(&mut RunInfo)| {
        let mut run = read_run(dir).unwrap().unwrap();
        f(&mut run);
        write_run(dir, &run).unwrap();
    };
    let s3 = root.join("s3");
    write_shard(&s3, 2, 2, &[], &[]);
    edit(&s3, &|r| r.complete = false);
    refuse(&[s1.clone(), s3.clone()], "incomplete");
    edit(&s3, &|r| {
        r.complete = true;
        r.snapshot = "2026-02-01".into();
    });
    refuse(&[s1.clone(), s3.clone()], "one date per merge");
    edit(&s3, &|r| {
        r.snapshot = "2026-01-01".into();
        r.shard = None;
    });
    refuse(&[s1.clone(), s3.clone()], "not a shard");
    edit(&s3, &|r| r.shard = Some("2/3".into()));
    refuse(&[s1.clone(), s3.clone()], "different shard counts");
    edit(&s3, &|r| r.shard = Some("3/2".into()));
    refuse(&[s1.clone(), s3.clone()], "bad shard");
    edit(&s3, &|r| {
        r.shard = Some("2/2".into());
        r.taxonomy_version += 1;
    });
    refuse(&[s1.clone(), s3.clone()], "taxonomy");
    edit(&s3, &|r| {
        r.taxonomy_version -= 1;
        r.inputs[0].names += 1;
    });
    refuse(&[s1.clone(), s3.clone()], "different versions");
    edit(&s3, &|r| {
        r.inputs[0].names -= 1;
        r.rows.insert("domains".into(), 4);
    });
    refuse(&[s1.clone(), s3.clone()], "counts 4 domain rows");
    edit(&s3, &|r| {
        r.rows.insert("domains".into(), 5);
    });
    // Domains of shard 1 in a directory that claims to be shard 2.
    for (n, p) in parts(&s1, Table::Domains).unwrap() {
        fs::copy(p, part_path(&s3, Table::Domains, n)).unwrap();
    }
    refuse(&[s1.clone(), s3.clone()], "does not belong to shard 2/2");
    // And a corrupt part.
    fs::write(part_path(&s3, Table::Domains, 0), b"garbage").unwrap();
    refuse(&[s1.clone(), s3.clone()], "not a readable Parquet file");

    // A failed merge leaves a previous output untouched.
    merge(&[s1.clone(), s2.clone()], &out).unwrap();
    let before = read_run(&out).unwrap();
    assert!(merge(&[s1.clone(), s3.clone()], &out).is_err());
    assert_eq!(read_run(&out).unwrap(), before);
    assert!(!root.join("out/.snapshot=2026-01-01.merge-tmp").exists());
    fs::remove_dir_all(&root).unwrap();
}
