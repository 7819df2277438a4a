//! The snapshot files read by other people's readers: a small two-date snapshot tree written
//! through our API, then read with pyarrow, DuckDB, polars and pandas by
//! `tests/snapshot_readers.py`, which asserts the exact values (verdicts, lists, structs,
//! timestamps, the `snapshot` partition column). Needs python3 with pyarrow, duckdb, polars
//! and pandas (`scripts/test` installs them); `DANE_SURVEY_PYTHON` picks another interpreter.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use dane_survey::snapshot::{
    part_path, snapshot_dir, write_domains, write_hosts, write_probes, write_run, DomainRow,
    HostRow, MxRecord, ProbeRow, RunInfo, Table, TlsaLookup, UnusableTlsa, SCHEMA_VERSION,
};
use dane_survey::verdict::{AddressVerdict, DomainVerdict, HostVerdict, TAXONOMY_VERSION};

fn tmpdir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("dane-survey-readers-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn domain(name: &str, verdict: DomainVerdict, checked_at: i64) -> DomainRow {
    DomainRow {
        domain: name.to_owned(),
        tld: name.rsplit('.').next().unwrap().to_owned(),
        source: "zonelists/sample.txt".to_owned(),
        mx_lookup: "secure data (2)".to_owned(),
        mx_security: Some("secure".to_owned()),
        mx: vec![
            MxRecord {
                preference: 10,
                exchange: "mx1.example.com".to_owned(),
            },
            MxRecord {
                preference: 20,
                exchange: "mx2.example.net".to_owned(),
            },
        ],
        primary_hosts: vec!["mx1.example.com".to_owned()],
        provider: Some("example.com".to_owned()),
        providers: vec!["example.com".to_owned()],
        verdict,
        all_hosts_verdict: Some(DomainVerdict::DanePartial),
        reason: "every primary MX host passes".to_owned(),
        checked_at,
    }
}

fn write_snapshot(out: &Path) {
    // 2026-01-01: two domains, one host, two probes.
    let jan = snapshot_dir(out, "2026-01-01");
    let bare = DomainRow {
        domain: "xn--bcher-kva.de".to_owned(),
        tld: "de".to_owned(),
        mx_lookup: "insecure NXDOMAIN".to_owned(),
        mx_security: None,
        mx: vec![],
        primary_hosts: vec![],
        provider: None,
        providers: vec![],
        all_hosts_verdict: None,
        reason: "ünïcødé — 日本語".to_owned(),
        ..domain(
            "xn--bcher-kva.de",
            DomainVerdict::Nxdomain,
            1_767_225_601_000_000,
        )
    };
    write_domains(
        &part_path(&jan, Table::Domains, 0),
        // 2026-01-01T00:00:00.123456Z
        &[domain(
            "example.com",
            DomainVerdict::DaneValid,
            1_767_225_600_123_456,
        )],
    )
    .unwrap();
    write_domains(&part_path(&jan, Table::Domains, 1), &[bare]).unwrap();
    let host = HostRow {
        host: "mx1.example.com".to_owned(),
        provider: Some("example.com".to_owned()),
        address_lookup: "secure data (1) / secure data (1)".to_owned(),
        address_security: Some("secure".to_owned()),
        canonical: None,
        addresses: vec!["192.0.2.1".to_owned(), "2001:db8::1".to_owned()],
        tlsa_lookups: vec![TlsaLookup {
            name: "_25._tcp.mx1.example.com".to_owned(),
            result: "secure data (2)".to_owned(),
        }],
        tlsa_base_domain: Some("mx1.example.com".to_owned()),
        tlsa: vec!["3 1 1 aabb".to_owned(), "0 0 1 ccdd".to_owned()],
        tlsa_usable: vec!["3 1 1 aabb".to_owned()],
        tlsa_unusable: vec![UnusableTlsa {
            record: "0 0 1 ccdd".to_owned(),
            reason: "PKIX-TA(0) is unusable for SMTP".to_owned(),
        }],
        verdict: HostVerdict::Pass,
        reason: "every reachable address passes".to_owned(),
        opted_out: false,
        resolved_at: 1_767_225_600_000_000,
    };
    write_hosts(&part_path(&jan, Table::Hosts, 0), &[host]).unwrap();
    let pass = ProbeRow {
        host: "mx1.example.com".to_owned(),
        address: "192.0.2.1".to_owned(),
        sni: "mx1.example.com".to_owned(),
        verdict: AddressVerdict::Pass,
        reason: "3 1 1 matches".to_owned(),
        matched: Some("3 1 1 aabb".to_owned()),
        stage_reached: Some("done".to_owned()),
        banner: Some("220 mx1.example.com ESMTP".to_owned()),
        starttls_offered: Some(true),
        tls_version: Some("TLSv1.3".to_owned()),
        cipher: Some("TLS13_AES_256_GCM_SHA384".to_owned()),
        cert_sha256: vec!["c1".to_owned(), "c2".to_owned()],
        spki_sha256: vec!["s1".to_owned(), "s2".to_owned()],
        leaf_names: vec!["mx1.example.com".to_owned()],
        leaf_not_before: Some(1_767_225_600), // 2026-01-01T00:00:00Z
        leaf_not_after: Some(253_402_300_799), // 9999-12-31T23:59:59Z
        chain_not_after_min: Some(1_798_761_600), // 2027-01-01T00:00:00Z
        leaf_3_1_1: Some("3 1 1 aabb".to_owned()),
        error_stage: None,
        error_kind: None,
        error_message: None,
        reply_code: None,
        probed_at: Some(1_767_225_600_500_000),
        duration_ms: Some(42),
    };
    let refused = ProbeRow {
        address: "2001:db8::1".to_owned(),
        verdict: AddressVerdict::Unreachable,
        reason: "421 at greeting".to_owned(),
        matched: None,
        stage_reached: Some("connect".to_owned()),
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
        error_stage: Some("banner".to_owned()),
        error_kind: Some("smtp_reply".to_owned()),
        error_message: Some("421 too busy".to_owned()),
        reply_code: Some(421),
        probed_at: None,
        duration_ms: None,
        ..pass.clone()
    };
    write_probes(&part_path(&jan, Table::Probes, 0), &[pass, refused]).unwrap();
    write_run(&jan, &run("2026-01-01", 2)).unwrap();

    // 2026-02-01: one domain, empty hosts and probes parts.
    let feb = snapshot_dir(out, "2026-02-01");
    write_domains(
        &part_path(&feb, Table::Domains, 0),
        &[domain(
            "example.com",
            DomainVerdict::DaneFailing,
            1_769_904_000_000_000,
        )],
    )
    .unwrap();
    write_hosts(&part_path(&feb, Table::Hosts, 0), &[]).unwrap();
    write_probes(&part_path(&feb, Table::Probes, 0), &[]).unwrap();
    write_run(&feb, &run("2026-02-01", 1)).unwrap();
}

fn run(date: &str, domains: u64) -> RunInfo {
    RunInfo {
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        schema_version: SCHEMA_VERSION,
        taxonomy_version: TAXONOMY_VERSION,
        snapshot: date.to_owned(),
        started: format!("{date}T00:00:00Z"),
        finished: Some(format!("{date}T01:00:00Z")),
        complete: true,
        rows: BTreeMap::from([("domains".to_owned(), domains)]),
        ..RunInfo::default()
    }
}

#[test]
fn python_readers_see_exact_values() {
    let out = tmpdir();
    write_snapshot(&out);
    let python = std::env::var("DANE_SURVEY_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshot_readers.py");
    let result = Command::new(&python)
        .arg(&script)
        .arg(&out)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {python}: {e} (scripts/test installs python3 and its packages)")
        });
    let stdout = String::from_utf8_lossy(&result.stdout);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        result.status.success(),
        "{} failed ({}):\n{stdout}\n{stderr}\n(missing modules? run ./scripts/test, which \
         installs pyarrow, duckdb, polars and pandas)",
        script.display(),
        result.status
    );
    for reader in ["pyarrow", "duckdb", "polars", "pandas"] {
        assert!(
            stdout.contains(&format!("{reader}: ok")),
            "{reader} did not run:\n{stdout}"
        );
    }
    std::fs::remove_dir_all(&out).unwrap();
}
