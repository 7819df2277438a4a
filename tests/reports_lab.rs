//! The reports over two lab months: crawl the lab as month 1 (2026-10-01), switch it to
//! month 2 (`lab up --month 2`), crawl again (2026-11-01), then check `rank` (places,
//! differences and the cause of every moved domain) against tests/lab/month2-rank.tsv and
//! month2-changes.tsv, `failures` and `adopters` against the lab's broken hosts and slow
//! adopters, the `trend` SVG, and the notebooks executed by nbconvert; then builds the web site
//! of the two months (`site`), checks its CSV files against the report commands' CSV, and opens
//! its pages in headless Chromium (tests/site_browser.py): no console error, no failed or
//! outside request, the expected figures in the DOM, and a screenshot of the index under
//! target/tmp for a person to look at. The lab is back at month 1 afterwards (other tests
//! expect it), also when an assertion fails.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use common::{dane_survey, text, Lab};

const M1: &str = "2026-10-01";
const M2: &str = "2026-11-01";

/// Puts the lab back to month 1 when dropped (before `Lab` releases the lock).
struct BackToMonth1;

impl Drop for BackToMonth1 {
    fn drop(&mut self) {
        let o = dane_survey(&["lab", "up", "--month", "1"]);
        assert!(o.status.success(), "lab up --month 1: {}", text(&o.stderr));
    }
}

fn run(args: &[&str]) -> String {
    let o = dane_survey(args);
    assert!(
        o.status.success(),
        "{args:?} failed:\n{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    text(&o.stdout)
}

fn crawl(out: &str, date: &str) {
    run(&[
        "crawl",
        "--lab",
        "--out",
        out,
        "--snapshot",
        date,
        "--no-progress",
    ]);
}

fn tsv(name: &str) -> Vec<Vec<String>> {
    let path = format!("{}/tests/lab/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

/// domain → (verdict, provider) of one snapshot, read with the crate's own reader.
fn domains(out: &Path, date: &str) -> BTreeMap<String, (String, String)> {
    let dir = dane_survey::snapshot::snapshot_dir(out, date);
    let mut m = BTreeMap::new();
    for (_, part) in
        dane_survey::snapshot::parts(&dir, dane_survey::snapshot::Table::Domains).unwrap()
    {
        for r in dane_survey::snapshot::read_domains(&part).unwrap() {
            m.insert(
                r.domain.clone(),
                (
                    r.verdict.to_string(),
                    r.provider.clone().unwrap_or_else(|| "-".into()),
                ),
            );
        }
    }
    m
}

/// The text of every output of an executed notebook.
fn notebook_outputs(path: &Path) -> (String, usize) {
    let nb: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let mut all = String::new();
    let mut images = 0;
    for cell in nb["cells"].as_array().unwrap() {
        for o in cell["outputs"].as_array().into_iter().flatten() {
            assert_ne!(o["output_type"], "error", "{}: {o}", path.display());
            if let Some(t) = o["text"].as_array() {
                all.extend(t.iter().filter_map(|l| l.as_str()));
            } else if let Some(t) = o["text"].as_str() {
                all.push_str(t);
            }
            if o["data"]["image/png"].is_string() {
                images += 1;
            }
        }
    }
    (all, images)
}

#[test]
fn reports_over_two_lab_months() {
    let _lab = Lab::up();
    let _back = BackToMonth1;
    let tmp = std::env::temp_dir().join(format!("dane-survey-reports-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let out = tmp.join("output");
    let o = out.to_str().unwrap();

    // Month 1 is the lab of the ground truth; month 2 its changed world.
    crawl(o, M1);
    let up = run(&["lab", "up", "--month", "2"]);
    assert!(up.contains("month 2"), "{up}");
    let st = run(&["lab", "status"]);
    assert!(st.contains("month      2"), "{st}");
    crawl(o, M2);

    // The snapshots agree with month2-changes.tsv before any report is asked.
    let d1 = domains(&out, M1);
    let d2 = domains(&out, M2);
    let changes = tsv("month2-changes.tsv");
    for c in &changes {
        let got1 = d1.get(&c[0]).cloned().unwrap_or(("-".into(), "-".into()));
        let got2 = d2.get(&c[0]).cloned().unwrap_or(("-".into(), "-".into()));
        assert_eq!(
            (got1, got2),
            ((c[1].clone(), c[3].clone()), (c[2].clone(), c[4].clone())),
            "{}",
            c[0]
        );
    }

    // rank: the table, exactly.
    let csv = run(&["rank", "--out", o, "--format", "csv"]);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "place,provider,dane,dane_last,diff,place_last,signed,share,from_lists,from_dnssec,\
         from_moves,from_tlsa"
    );
    let got: Vec<Vec<String>> = lines
        .map(|l| {
            l.split(',')
                .map(|f| match f {
                    "" => "-".to_string(),
                    "1.000000" => "1".into(),
                    "0.000000" => "0".into(),
                    f => f.into(),
                })
                .collect()
        })
        .collect();
    let want = tsv("month2-rank.tsv");
    assert_eq!(got, want, "rank --format csv:\n{csv}");

    // rank: the people's table (thousands separators, signs) and the explanation.
    let table = run(&["rank", "--out", o]);
    eprintln!("{table}");
    assert!(table.contains("2026-11 (snapshot 2026-11-01) vs 2026-10 (snapshot 2026-10-01)"));
    assert!(
        table.contains("12 DANE domains of 41 (14 of 41 in 2026-10)"),
        "{table}"
    );
    let row = |p: &str| {
        table
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(p))
            .unwrap_or_else(|| panic!("no row for {p}:\n{table}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(row("mailco.test"), "1 mailco.test 4 0 +4 - 4 100.0%");
    assert_eq!(row("hoster.example"), "- hoster.example 0 5 -5 1 3 0.0%");
    assert!(
        table.contains("-3 TLSA broke: shop1.test, shop3.test, shop4.example"),
        "{table}"
    );
    assert!(table.contains("+1 moved to its MX hosts: shop5.example (from hoster.example)"));
    assert!(table.contains("-1 zone lost DNSSEC: dualstack.test"));

    // rank: every moved domain under the right cause, and nothing else attributed.
    let json: Value =
        serde_json::from_str(&run(&["rank", "--out", o, "--format", "json"])).unwrap();
    let mut attributed = BTreeSet::new();
    for r in json["rows"].as_array().unwrap() {
        for m in r["explanation"]["domains"].as_array().unwrap() {
            attributed.insert((
                r["provider"].as_str().unwrap().to_string(),
                m["domain"].as_str().unwrap().to_string(),
                m["cause"].as_str().unwrap().to_string(),
                m["delta"].as_i64().unwrap(),
            ));
        }
    }
    let mut expected = BTreeSet::new();
    for c in &changes {
        for pd in c[6].split_whitespace() {
            let (p, d) = pd.split_once(':').unwrap();
            expected.insert((
                p.to_string(),
                c[0].clone(),
                c[5].clone(),
                d.parse::<i64>().unwrap(),
            ));
        }
    }
    assert_eq!(attributed, expected);
    assert_eq!(json["movers"][0], "hoster.example");
    assert_eq!(json["movers"][1], "mailco.test");
    // --vs the same month: nothing changed.
    let same = run(&[
        "rank", "--out", o, "--month", "2026-11", "--vs", "2026-11", "--format", "csv",
    ]);
    assert!(
        same.lines()
            .skip(1)
            .all(|l| l.split(',').nth(4) == Some("0")),
        "{same}"
    );
    // Parquet and Markdown render.
    let pq = tmp.join("rank.parquet");
    run(&[
        "rank",
        "--out",
        o,
        "--format",
        "parquet",
        "--output",
        pq.to_str().unwrap(),
    ]);
    assert_eq!(&std::fs::read(&pq).unwrap()[..4], b"PAR1");
    let md = run(&["rank", "--out", o, "--format", "md"]);
    assert!(
        md.contains("| 1 | mailco.test | 4 | 0 | +4 | - | 4 | 100.0% |"),
        "{md}"
    );

    // failures: exactly the lab's broken hosts of month 2, with their domain counts.
    let f: Value = serde_json::from_str(&run(&[
        "failures",
        "--out",
        o,
        "--format",
        "json",
        "--expiring-days",
        "400",
    ]))
    .unwrap();
    let failing: BTreeMap<String, (u64, u64, String)> = f["report"]["failing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["host"].as_str().unwrap().to_string(),
                (
                    h["domains"].as_u64().unwrap(),
                    h["signed_domains"].as_u64().unwrap(),
                    h["problem"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect();
    let want_failing: BTreeMap<String, (u64, u64, String)> = tsv("month2-failures.tsv")
        .into_iter()
        .map(|r| {
            (
                r[0].clone(),
                (r[1].parse().unwrap(), r[2].parse().unwrap(), r[3].clone()),
            )
        })
        .collect();
    assert_eq!(failing, want_failing);
    let hoster = f["report"]["failing"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == "mx1.hoster.example")
        .unwrap();
    assert_eq!(hoster["tlsa"].as_array().unwrap().len(), 1);
    let ev = &hoster["evidence"][0];
    assert_eq!(ev["address"], "127.25.0.20");
    assert_eq!(ev["cert_sha256"].as_array().unwrap().len(), 1);
    assert_eq!(ev["spki_sha256"].as_array().unwrap().len(), 1);
    assert!(ev["probed_at"].as_str().unwrap().starts_with("20"));
    // The published record is the correct one with its last byte flipped: the evidence shows
    // what should be published instead.
    let leaf = ev["leaf_3_1_1"].as_str().unwrap();
    let published = hoster["tlsa"][0].as_str().unwrap();
    assert_ne!(leaf, published);
    assert_eq!(leaf[..leaf.len() - 2], published[..published.len() - 2]);
    // Early warnings: every lab certificate lives 30 days, so a 400-day window holds every
    // DANE-valid host's and a 1-day window none; the rollover host has two usable records.
    let expiring: BTreeSet<&str> = f["report"]["expiring"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["host"].as_str().unwrap())
        .collect();
    assert!(expiring.contains("mx.ee311.test") && expiring.contains("mx.mailco.test"));
    assert!(!expiring.contains("mx1.hoster.example"));
    let single: BTreeMap<&str, u64> = f["report"]["single_record"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["host"].as_str().unwrap(), e["domains"].as_u64().unwrap()))
        .collect();
    assert_eq!(single.get("mx.mailco.test"), Some(&4));
    assert_eq!(single.get("mx.ee311.test"), Some(&1));
    assert!(!single.contains_key("mx.rollover.example"));
    let short: Value = serde_json::from_str(&run(&[
        "failures",
        "--out",
        o,
        "--format",
        "json",
        "--expiring-days",
        "1",
    ]))
    .unwrap();
    assert_eq!(short["report"]["expiring"].as_array().unwrap().len(), 0);
    let ftext = run(&["failures", "--out", o]);
    assert!(ftext.contains("mx1.hoster.example"), "{ftext}");
    assert!(ftext.contains("leaf as 3 1 1: 3 1 1 "), "{ftext}");

    // adopters: the signed-but-no-DANE providers, month 2 and month 1.
    let adopters = |month: &str| -> Vec<(String, String, String, String)> {
        run(&["adopters", "--out", o, "--month", month, "--format", "csv"])
            .lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (f[0].into(), f[1].into(), f[2].into(), f[6].into())
            })
            .collect()
    };
    let s = |a: &str, b: &str, c: &str, d: &str| {
        (a.to_string(), b.to_string(), c.to_string(), d.to_string())
    };
    assert_eq!(
        adopters("2026-11"),
        vec![
            s("1", "notlsa.test", "1", "0"),
            s("1", "unsigned-hoster.test", "1", "0")
        ]
    );
    assert_eq!(
        adopters("2026-10"),
        vec![
            s("1", "mailco.test", "2", "0"),
            s("2", "notlsa.test", "1", "0"),
            s("2", "unsigned-hoster.test", "1", "0")
        ]
    );

    // trend: the series and the SVG chart.
    let svg = tmp.join("trend.svg");
    let series = run(&[
        "trend",
        "--out",
        o,
        "--format",
        "csv",
        "--svg",
        svg.to_str().unwrap(),
    ]);
    assert!(series.contains("2026-10-01,all,,41,37,14"), "{series}");
    assert!(series.contains("2026-11-01,all,,41,36,12"), "{series}");
    assert!(
        series.contains("2026-10-01,provider,mailco.test,2,2,0"),
        "{series}"
    );
    assert!(
        series.contains("2026-11-01,provider,mailco.test,4,4,4"),
        "{series}"
    );
    let doc = std::fs::read_to_string(&svg).unwrap();
    assert!(doc.starts_with("<svg"));
    for want in [
        "domains surveyed: 41",
        "secure MX: 36",
        "DANE domains: 12",
        "2026-10-01",
        "2026-11-01",
    ] {
        assert!(doc.contains(want), "{want} not in the SVG");
    }
    // Every point is labelled with its value (a text element of its own).
    for value in ["41", "37", "36", "14", "12"] {
        assert!(
            doc.lines().any(|l| l.trim() == value),
            "no label {value} in the SVG"
        );
    }

    // The notebooks, top to bottom, against this output root.
    let nbdir = tmp.join("notebooks");
    for nb in ["trend", "providers"] {
        let src = format!("{}/notebooks/{nb}.ipynb", env!("CARGO_MANIFEST_DIR"));
        let o = Command::new("python3")
            .args([
                "-m",
                "nbconvert",
                "--to",
                "notebook",
                "--execute",
                &src,
                "--output-dir",
            ])
            .arg(&nbdir)
            .env("DANE_SURVEY_OUT", &out)
            .output()
            .expect("python3 -m nbconvert");
        assert!(o.status.success(), "nbconvert {nb}: {}", text(&o.stderr));
    }
    let (trend_out, trend_images) = notebook_outputs(&nbdir.join("trend.ipynb"));
    assert!(
        trend_out.contains("2026-10-01: domains=41 secure_mx=37 dane=14"),
        "{trend_out}"
    );
    assert!(
        trend_out.contains("2026-11-01: domains=41 secure_mx=36 dane=12"),
        "{trend_out}"
    );
    assert_eq!(trend_images, 1, "{trend_out}");
    let (prov_out, prov_images) = notebook_outputs(&nbdir.join("providers.ipynb"));
    assert!(
        prov_out.contains("providers by DANE domains, 2026-11 vs 2026-10"),
        "{prov_out}"
    );
    assert!(
        prov_out.contains("mailco.test: dane=4 last=0 change=+4 signed=4 share=100.0%"),
        "{prov_out}"
    );
    assert!(
        prov_out.contains("hoster.example: dane=0 last=5 change=-5 signed=3 share=0.0%"),
        "{prov_out}"
    );
    assert!(
        prov_out.contains("dualstack.test: dane=0 last=1 change=-1 signed=0 share=-"),
        "{prov_out}"
    );
    assert_eq!(prov_images, 1);

    check_site(&out);

    std::fs::remove_dir_all(&tmp).unwrap();
}

/// The rows of table `id` of a page as the browser shows them (cell texts).
fn dom_rows<'a>(page: &'a Value, id: &str) -> &'a Vec<Value> {
    page["dom"]["tables"][id]["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("no table {id}: {}", page["dom"]["tables"]))
}

/// The row of table `id` whose cell `col` is `key`, as strings.
fn dom_row(page: &Value, id: &str, col: usize, key: &str) -> Vec<String> {
    dom_rows(page, id)
        .iter()
        .find(|r| r[col] == key)
        .unwrap_or_else(|| panic!("no row {key} in {id}: {:?}", dom_rows(page, id)))
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect()
}

/// The web site of the two lab months: built, compared with the report commands, and opened in
/// headless Chromium.
fn check_site(out: &Path) {
    let o = out.to_str().unwrap();
    let target_tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dest = target_tmp.join("site-lab");
    let lookups = out.parent().unwrap().join("lookups.txt");
    std::fs::write(
        &lookups,
        "# lookup pages\nshop1.test   # broken TLSA in month 2\n\nnot-crawled.example\n",
    )
    .unwrap();
    let said = run(&[
        "site",
        "--out",
        o,
        "--dest",
        dest.to_str().unwrap(),
        "--lookup",
        "shop5.example",
        "--lookup",
        "SHOP5.Example.",
        "--lookup-file",
        lookups.to_str().unwrap(),
    ]);
    assert!(
        said.contains("site for 2026-11 (snapshot 2026-11-01 vs 2026-10-01)"),
        "{said}"
    );
    let file = |rel: &str| {
        std::fs::read_to_string(dest.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    };
    // The site's CSV files are the report commands' CSV, byte for byte.
    assert_eq!(
        file("ranking.csv"),
        run(&["rank", "--out", o, "--format", "csv"])
    );
    assert_eq!(
        file("adopters.csv"),
        run(&["adopters", "--out", o, "--format", "csv"])
    );
    assert_eq!(
        file("failures-all.csv"),
        run(&["failures", "--out", o, "--format", "csv"])
    );
    assert_eq!(
        file("trend.csv"),
        run(&["trend", "--out", o, "--format", "csv"])
    );
    let failing = file("failing-hosts.csv");
    assert_eq!(failing.lines().count(), 12, "{failing}");
    assert!(failing.contains("\nmx1.hoster.example,hoster.example,tlsa_mismatch,failing,4,3,"));
    // One page per ranked provider (11 < --providers 20) and per distinct domain asked.
    for rel in [
        "providers/mailco.test.html",
        "providers/hoster.example.html",
        "providers/mailco.test-domains.csv",
        "providers/mailco.test-hosts.csv",
        "providers/mailco.test.svg",
        "lookup/shop5.example.html",
        "lookup/shop1.test.html",
        "lookup/not-crawled.example.html",
        "lookup/shop5.example-probes.csv",
    ] {
        assert!(dest.join(rel).is_file(), "{rel} missing");
    }
    let pages: Vec<String> = std::fs::read_dir(dest.join("providers"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".html"))
        .collect();
    assert_eq!(pages.len(), 11, "{pages:?}");
    let lookup_csv = file("lookup/lookups.csv");
    assert_eq!(lookup_csv.lines().count(), 4, "{lookup_csv}");
    assert!(lookup_csv.contains("shop1.test,dane_failing,hoster.example,dane_valid"));
    assert!(lookup_csv.contains("not-crawled.example,not in the snapshot,,not in the snapshot"));

    // In the browser.
    let shot = target_tmp.join("site-index.png");
    let _ = std::fs::remove_file(&shot);
    let visit = [
        "index.html",
        "ranking.html",
        "providers/mailco.test.html",
        "failures.html",
        "adopters.html",
        "trend.html",
        "lookup/index.html",
        "lookup/shop5.example.html",
    ];
    let script = format!("{}/tests/site_browser.py", env!("CARGO_MANIFEST_DIR"));
    let b = Command::new("python3")
        .arg(&script)
        .arg(&dest)
        .arg(&shot)
        .args(visit)
        .output()
        .expect("python3 tests/site_browser.py");
    assert!(
        b.status.success(),
        "site_browser.py failed (chromium and websocket-client are installed by \
         scripts/test):\n{}{}",
        text(&b.stdout),
        text(&b.stderr)
    );
    let r: Value = serde_json::from_slice(&b.stdout).unwrap();
    let origin = r["origin"].as_str().unwrap();
    assert!(origin.starts_with("http://127.0.0.1:"), "{origin}");
    for rel in visit {
        let p = &r["pages"][rel];
        assert_eq!(p["errors"], serde_json::json!([]), "{rel}: console errors");
        assert_eq!(p["failed"], serde_json::json!([]), "{rel}: failed requests");
        for u in p["requests"].as_array().unwrap() {
            assert!(
                u.as_str().unwrap().starts_with(origin),
                "{rel} requested {u} outside the site"
            );
        }
        let dom = &p["dom"];
        assert_eq!(dom["scripts"], 0, "{rel}");
        assert_eq!(dom["lang"], "en", "{rel}");
        assert_eq!(dom["print"]["nav_display"], "none", "{rel}: nav printed");
        for img in dom["images"].as_array().unwrap() {
            assert_eq!(img[1], true, "{rel}: image {} did not load", img[0]);
        }
        for (id, t) in dom["tables"].as_object().unwrap() {
            assert!(
                t["caption"].as_str().is_some_and(|c| !c.is_empty()),
                "{rel}#{id}: no caption"
            );
            for h in t["head"].as_array().unwrap() {
                assert_eq!(h[1], "col", "{rel}#{id}: {h}");
            }
            for s in t["row_headers"].as_array().unwrap() {
                assert_eq!(s, "row", "{rel}#{id}");
            }
        }
    }
    let page = |rel: &str| &r["pages"][rel];
    let ids = |rel: &str| page(rel)["dom"]["ids"].clone();
    // The index: the headline figures.
    let idx = ids("index.html");
    assert_eq!(idx["fig-domains"], "41", "{idx}");
    assert_eq!(idx["fig-secure"], "36", "{idx}");
    assert_eq!(idx["fig-dane"], "12", "{idx}");
    assert_eq!(idx["fig-share"], "33.3%", "{idx}");
    assert_eq!(idx["fig-change"], "-2", "{idx}");
    assert_eq!(
        dom_row(page("index.html"), "headline", 0, "DANE domains"),
        ["DANE domains", "12", "14", "-2"]
    );
    assert_eq!(
        dom_row(page("index.html"), "coverage-tlds", 0, "test")[0],
        "test"
    );
    assert!(page("index.html")["dom"]["images"][0][0] == "trend.svg");
    // The ranking, as the rank command has it (month2-rank.tsv).
    let rk = page("ranking.html");
    assert_eq!(
        ids("ranking.html")["rank-summary"],
        "12 DANE domains of 41 domains surveyed (14 of 41 in 2026-10)."
    );
    assert_eq!(
        dom_row(rk, "ranking", 1, "mailco.test"),
        [
            "1",
            "mailco.test",
            "4",
            "0",
            "+4",
            "-",
            "4",
            "100.0%",
            "+1",
            "0",
            "+1",
            "+2"
        ]
    );
    assert_eq!(
        dom_row(rk, "ranking", 1, "hoster.example"),
        [
            "-",
            "hoster.example",
            "0",
            "5",
            "-5",
            "1",
            "3",
            "0.0%",
            "-1",
            "0",
            "-1",
            "-3"
        ]
    );
    assert_eq!(dom_rows(rk, "ranking").len(), 11);
    assert!(rk["dom"]["links"]
        .as_array()
        .unwrap()
        .contains(&Value::from("providers/mailco.test.html")));
    assert_eq!(
        dom_row(rk, "changes", 1, "shop5.example"),
        [
            "mailco.test",
            "shop5.example",
            "+1",
            "moved",
            "moved to its MX hosts",
            "hoster.example"
        ]
    );
    // A provider page.
    let mc = ids("providers/mailco.test.html");
    assert_eq!(
        (&mc["place"], &mc["dane"], &mc["change"]),
        (&"1".into(), &"4".into(), &"+4".into())
    );
    let mcp = page("providers/mailco.test.html");
    assert_eq!(
        dom_row(mcp, "mailco.test-verdicts", 0, "dane_valid"),
        ["dane_valid", "4", "100.0%"]
    );
    let host = dom_row(mcp, "mailco.test-hosts", 0, "mx.mailco.test");
    assert_eq!(&host[1..5], ["pass", "4", "4", "1"], "{host:?}");
    assert_eq!(dom_rows(mcp, "mailco.test-history").len(), 2);
    // The failures: the lab's 11 broken hosts.
    let fp = page("failures.html");
    assert_eq!(ids("failures.html")["failing-count"], "11");
    assert_eq!(dom_rows(fp, "failing-hosts").len(), 11);
    assert_eq!(
        &dom_row(fp, "failing-hosts", 0, "mx1.hoster.example")[..6],
        [
            "mx1.hoster.example",
            "hoster.example",
            "tlsa_mismatch",
            "failing",
            "4",
            "3"
        ]
    );
    let ev = dom_row(fp, "evidence", 0, "mx1.hoster.example");
    assert!(ev[5].starts_with("3 1 1 "), "{ev:?}");
    // Slow adopters and a lookup page.
    assert_eq!(dom_rows(page("adopters.html"), "adopters").len(), 2);
    assert_eq!(ids("lookup/shop5.example.html")["verdict"], "dane_valid");
    assert_eq!(dom_rows(page("lookup/index.html"), "lookups").len(), 3);

    let png = std::fs::read(&shot).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    eprintln!(
        "site of the lab's two months: {}; screenshot of its index: {}",
        dest.join("index.html").display(),
        shot.display()
    );
}
