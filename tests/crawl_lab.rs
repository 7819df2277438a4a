//! The crawl against the lab, read back by independent readers (pyarrow, DuckDB):
//! verdicts equal the ground truth, each host is resolved and probed once, a crawl killed
//! with SIGKILL at random moments and resumed equals an uninterrupted one row for row, shards
//! merge into the same snapshot, and the opt-out list is honoured.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::{dane_survey, ground_truth, text, Lab, BIN};

const DATE: &str = "2026-11-01";

fn crawl(out: &Path, extra: &[&str]) -> Value {
    let mut args = vec![
        "crawl",
        "--lab",
        "--out",
        out.to_str().unwrap(),
        "--snapshot",
        DATE,
        "--no-progress",
        "--part-size",
        "4",
        "--json",
    ];
    args.extend_from_slice(extra);
    let o = dane_survey(&args);
    assert!(
        o.status.success(),
        "crawl {extra:?} failed:\n{}",
        text(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o.stdout)))
}

/// The snapshot as pyarrow and DuckDB read it (timings dropped, rows sorted).
fn read(out: &Path) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/read_snapshot.py");
    let o = Command::new("python3")
        .args([script, out.to_str().unwrap(), DATE])
        .output()
        .expect("python3");
    assert!(o.status.success(), "read_snapshot.py: {}", text(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn rows<'a>(v: &'a Value, table: &str) -> &'a Vec<Value> {
    v[table].as_array().unwrap()
}

/// Rows only in `a` and rows only in `b`, for a readable failure message.
fn assert_same_rows(a: &[Value], b: &[Value], what: &str) {
    let only_a: Vec<&Value> = a.iter().filter(|r| !b.contains(r)).collect();
    let only_b: Vec<&Value> = b.iter().filter(|r| !a.contains(r)).collect();
    assert!(
        only_a.is_empty() && only_b.is_empty() && a.len() == b.len(),
        "{what}: {} vs {} rows\nonly in the first:\n{}\nonly in the second:\n{}",
        a.len(),
        b.len(),
        only_a
            .iter()
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
            .join("\n"),
        only_b
            .iter()
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or("-").to_string()
}

#[test]
fn crawl_lab() {
    let _lab = Lab::up();
    let tmp = std::env::temp_dir().join(format!("dane-survey-crawl-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let truth = ground_truth();

    // 1. An uninterrupted crawl: the snapshot read back by pyarrow equals the ground truth.
    let a = tmp.join("a");
    let summary = crawl(&a, &[]);
    assert_eq!(summary["run"]["complete"], true, "{summary}");
    let snap = read(&a);
    let domains = rows(&snap, "domains");
    assert_eq!(domains.len(), truth.len(), "one row per domain");
    let by_name: BTreeMap<String, &Value> = domains.iter().map(|d| (s(&d["domain"]), d)).collect();
    let mut wrong = Vec::new();
    for t in &truth {
        let Some(d) = by_name.get(&t.domain) else {
            wrong.push(format!("{}: missing", t.domain));
            continue;
        };
        let got = (
            s(&d["verdict"]),
            s(&d["all_hosts_verdict"]),
            s(&d["provider"]),
        );
        let want = (t.verdict.clone(), t.all_hosts.clone(), t.provider.clone());
        if got != want {
            wrong.push(format!("{}: want {want:?}, got {got:?}", t.domain));
        }
    }
    assert!(
        wrong.is_empty(),
        "snapshot vs ground truth:\n{}",
        wrong.join("\n")
    );
    // DuckDB over the Hive layout agrees with run.json's totals and sees the partition.
    let mut duck: BTreeMap<String, u64> = BTreeMap::new();
    for r in snap["duckdb_verdicts"].as_array().unwrap() {
        assert_eq!(r[0], DATE);
        duck.insert(s(&r[1]), r[2].as_u64().unwrap());
    }
    let run: BTreeMap<String, u64> =
        serde_json::from_value(summary["run"]["verdicts"].clone()).unwrap();
    assert_eq!(duck, run);

    // Each MX host once, each (host, address) once, each (address, SNI) probed once.
    let hosts = rows(&snap, "hosts");
    let names: BTreeSet<String> = hosts.iter().map(|h| s(&h["host"])).collect();
    assert_eq!(names.len(), hosts.len(), "a host written twice");
    for d in domains {
        for h in d["primary_hosts"].as_array().unwrap() {
            if d["mx_security"] == "secure" && d["verdict"] != "invalid_mx" {
                assert!(names.contains(&s(h)), "{} has no host row", s(h));
            }
        }
    }
    let probes = rows(&snap, "probes");
    let keys: BTreeSet<(String, String)> = probes
        .iter()
        .map(|p| (s(&p["host"]), s(&p["address"])))
        .collect();
    assert_eq!(keys.len(), probes.len(), "a probe written twice");
    let sessions: BTreeSet<(String, String)> = probes
        .iter()
        .filter(|p| !p["stage_reached"].is_null())
        .map(|p| (s(&p["address"]), s(&p["sni"])))
        .collect();
    assert_eq!(
        summary["sessions_this_run"].as_u64().unwrap(),
        sessions.len() as u64
    );
    // Evidence is there: a DANE-valid host has its leaf digests and expiry.
    let ee = probes
        .iter()
        .find(|p| p["host"] == "mx.ee311.test")
        .unwrap();
    assert_eq!(ee["verdict"], "pass");
    assert_eq!(ee["cert_sha256"].as_array().unwrap().len(), 1);
    assert!(!ee["leaf_not_after"].is_null());
    assert_eq!(ee["tls_version"], "TLSv1.3");

    // 2. The same command again finds the snapshot complete and changes nothing.
    let again = crawl(&a, &[]);
    assert_eq!(again["domains_this_run"], 0);
    assert_eq!(read(&a), snap);

    // 3. SIGKILL at random moments, resume each time: the same snapshot, row for row. These
    // runs split the domains over three dispatcher threads (the first crawl had one on this
    // machine): still each host resolved once and each session opened once.
    let b = tmp.join("b");
    let args = [
        "crawl",
        "--lab",
        "--out",
        b.to_str().unwrap(),
        "--snapshot",
        DATE,
        "--no-progress",
        "--part-size",
        "4",
        "--threads",
        "3",
    ];
    let mut seed = std::process::id() as u64 | 1;
    let mut kills = 0;
    for round in 0..5 {
        // xorshift: different moments each run, in 0.2–3.2 s (a whole lab crawl takes longer).
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_millis(200 + seed % 3000);
        let mut child = Command::new(BIN)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let t0 = Instant::now();
        while t0.elapsed() < delay {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        let _ = child.wait();
        eprintln!("round {round}: killed after {delay:?}");
    }
    assert!(kills >= 3, "the crawl finished before it could be killed");
    let resumed = crawl(&b, &["--threads", "3"]);
    assert_eq!(resumed["run"]["complete"], true);
    let snap_b = read(&b);
    for t in ["domains", "hosts", "probes"] {
        assert_same_rows(
            rows(&snap_b, t),
            rows(&snap, t),
            &format!("{t} after kill -9"),
        );
    }

    // 4. Two shards, merged, make the same snapshot.
    let c = tmp.join("c");
    // Shard 1 with two queries in flight over two threads: each thread lets one domain at a
    // time into its MX lookup, and must look again when that domain goes on to wait for a
    // host's probes instead of finishing.
    let s1 = crawl(
        &c,
        &["--shard", "1/2", "--dns-in-flight", "2", "--threads", "2"],
    );
    let s2 = crawl(&c, &["--shard", "2/2"]);
    let n1 = s1["run"]["rows"]["domains"].as_u64().unwrap();
    let n2 = s2["run"]["rows"]["domains"].as_u64().unwrap();
    assert_eq!(n1 + n2, truth.len() as u64);
    assert!(n1 > 0 && n2 > 0);
    let m = dane_survey(&["merge", "--out", c.to_str().unwrap(), "--snapshot", DATE]);
    assert!(m.status.success(), "merge: {}", text(&m.stderr));
    let snap_c = read(&c);
    for t in ["domains", "hosts", "probes"] {
        assert_same_rows(
            rows(&snap_c, t),
            rows(&snap, t),
            &format!("{t} after merge"),
        );
    }

    // 5. The opt-out list: a domain never crawled, an address and a host never probed.
    let d = tmp.join("d");
    let optout = tmp.join("optout.txt");
    std::fs::write(
        &optout,
        "# test\nta211.test\n127.25.0.1/32\nmx.ee312.example\n",
    )
    .unwrap();
    let sd = crawl(&d, &["--opt-out", optout.to_str().unwrap()]);
    assert_eq!(sd["run"]["domains_opted_out"], 1);
    let snap_d = read(&d);
    let domains_d = rows(&snap_d, "domains");
    assert_eq!(domains_d.len(), truth.len() - 1);
    assert!(domains_d.iter().all(|d| d["domain"] != "ta211.test"));
    let verdict = |dom: &str| s(&domains_d.iter().find(|d| d["domain"] == dom).unwrap()["verdict"]);
    assert_eq!(verdict("ee311.test"), "unreachable");
    assert_eq!(verdict("ee312.example"), "unreachable");
    for p in rows(&snap_d, "probes") {
        if p["address"] == "127.25.0.1" || p["host"] == "mx.ee312.example" {
            assert_eq!(p["verdict"], "skipped", "{p}");
            assert!(s(&p["reason"]).contains("opt-out"), "{p}");
            assert!(p["stage_reached"].is_null());
        }
    }
    let h = rows(&snap_d, "hosts")
        .iter()
        .find(|h| h["host"] == "mx.ee312.example")
        .unwrap();
    assert_eq!(h["opted_out"], true);

    std::fs::remove_dir_all(&tmp).unwrap();
}
