//! `dane-survey zonelists names` end to end: formats, compression by magic, sharding, and
//! hostile input (every error names file:line; garbage stops the run before any name).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_dane-survey");

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dane-survey-zl-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn names(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(BIN)
        .args(["zonelists", "names"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut sin = child.stdin.take().unwrap();
    if let Some(data) = stdin {
        sin.write_all(data).unwrap();
    }
    drop(sin);
    child.wait_with_output().unwrap()
}

fn lines(o: &Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A registry-style dump: SOA, apex NS, then per delegation NS, NS, DS (+ glue now and then).
fn registry_zone(n: usize) -> String {
    let mut z = String::from(
        "xyz.\t900\tin\tsoa\ta.nic.xyz. hostmaster.xyz. 1 7200 900 1209600 3600\n\
         xyz.\t172800\tin\tns\ta.nic.xyz.\n",
    );
    for i in 0..n {
        z.push_str(&format!(
            "d{i}.xyz.\t3600\tin\tns\tns1.d{i}.xyz.\nd{i}.xyz.\t3600\tin\tns\tns2.example.\n\
             d{i}.xyz.\t3600\tin\tds\t1 13 2 ABCD\n"
        ));
        if i % 7 == 0 {
            z.push_str(&format!("ns1.d{i}.xyz.\t3600\tin\ta\t192.0.2.1\n"));
        }
    }
    z
}

#[test]
fn sharding_partitions_the_names() {
    let d = tmpdir("shard");
    let f = d.join("xyz.zone");
    std::fs::write(&f, registry_zone(3000)).unwrap();
    let all = names(&[p(&f)], None);
    assert!(all.status.success(), "{}", err(&all));
    let all = lines(&all);
    assert_eq!(all.len(), 3000);
    let all_set: BTreeSet<_> = all.iter().cloned().collect();
    assert_eq!(all_set.len(), 3000, "duplicates in the unsharded output");
    let mut union = BTreeSet::new();
    let mut total = 0;
    for k in 1..=4 {
        let o = names(&["--shard", &format!("{k}/4"), p(&f)], None);
        assert!(o.status.success(), "{}", err(&o));
        let part = lines(&o);
        assert!(part.len() > 500, "shard {k}/4 has only {}", part.len());
        total += part.len();
        union.extend(part);
    }
    assert_eq!(total, 3000, "a name in two shards");
    assert_eq!(union, all_set);
    // Stable: the same shard twice is the same list.
    let a = lines(&names(&["--shard", "3/4", p(&f)], None));
    let b = lines(&names(&["--shard", "3/4", p(&f)], None));
    assert_eq!(a, b);
    assert!(!names(&["--shard", "5/4", p(&f)], None).status.success());
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn compression_by_magic_and_stdin() {
    let d = tmpdir("magic");
    let zone = registry_zone(50);
    let plain = names(&["-"], Some(zone.as_bytes()));
    assert!(plain.status.success(), "{}", err(&plain));
    let want = lines(&plain);
    assert_eq!(want.len(), 50);
    // gzip named .txt, zstd named .gz: the names lie, the magic does not.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(zone.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    std::fs::write(d.join("zone.txt"), &gz).unwrap();
    std::fs::write(
        d.join("zone.gz"),
        zstd::stream::encode_all(zone.as_bytes(), 3).unwrap(),
    )
    .unwrap();
    for f in ["zone.txt", "zone.gz"] {
        let o = names(&[p(&d.join(f))], None);
        assert!(o.status.success(), "{f}: {}", err(&o));
        assert_eq!(lines(&o), want, "{f}");
    }
    let o = names(&["--json", "-"], Some(&gz));
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(lines(&o), want);
    let cov: serde_json::Value = serde_json::from_str(&err(&o)).unwrap();
    assert_eq!(cov["sources"][0]["compression"], "gzip");
    assert_eq!(cov["sources"][0]["apex"], "xyz.");
    assert_eq!(cov["sources"][0]["tlds"]["xyz"], 50);
    assert_eq!(cov["names"], 50);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn master_file_syntax() {
    let zone = "; a hand-written zone\n\
        $ORIGIN example.\n\
        $TTL 1h\n\
        @ IN SOA ns1 hostmaster (\n\
        \t\t2026112801 ; serial\n\
        \t\t7200 900 1209600 300 )\n\
        \tIN NS ns1\n\
        ns1 IN A 192.0.2.53\n\
        child 3600 NS ns1.child ; relative owner, relative target\n\
        \tNS ns2.example.net.\n\
        ns1.child A 192.0.2.54\n\
        Other.example. IN 300 NS ( ns.other.net. )\n\
        \\065bc NS ns.abc.net.\n\
        $ORIGIN sub.example.\n\
        deep NS ns.deep.net.\n\
        $ORIGIN example.\n\
        last DS 1 13 2 ( ABCDEF\n\
        0123 )\n\
        last NS ns.last.net.\n";
    let o = names(&["-"], Some(zone.as_bytes()));
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        lines(&o),
        [
            "child.example.",
            "other.example.",
            "abc.example.",
            "last.example."
        ]
    );
    assert!(err(&o).contains("0 bad lines"), "{}", err(&o));
}

#[test]
fn lists_with_idna() {
    let list = "# mail domains\nBücher.DE\nexample.com.\n\nexample.com\nmünchen.de # city\n\
                ☃.net\nnot a name\n192.0.2.1\n";
    let o = names(&["-"], Some(list.as_bytes()));
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        lines(&o),
        [
            "xn--bcher-kva.de.",
            "example.com.",
            "xn--mnchen-3ya.de.",
            "xn--n3h.net."
        ]
    );
    let e = err(&o);
    assert!(e.contains("-:8: "), "{e}");
    assert!(e.contains("-:9: "), "{e}");
    assert!(e.contains("2 bad lines"), "{e}");
}

#[test]
fn hostile_inputs() {
    let d = tmpdir("hostile");
    // Binary garbage: stops before any name, naming the file and line.
    let mut garbage = b"good.example\n".to_vec();
    garbage.clear();
    garbage.extend((0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8));
    let g = d.join("garbage.bin");
    std::fs::write(&g, &garbage).unwrap();
    let ok = d.join("ok.txt");
    std::fs::write(&ok, "example.com\n").unwrap();
    // The good file comes first; the garbage still stops the run before anything is printed.
    let o = names(&[p(&ok), p(&g)], None);
    assert!(!o.status.success());
    assert!(lines(&o).is_empty(), "names printed before the error");
    let e = err(&o);
    assert!(e.contains(&format!("{}:", p(&g))), "{e}");
    assert!(e.contains("NUL byte") || e.contains("not a zone"), "{e}");

    // Text garbage without NULs: too many bad lines before a good one.
    let t = d.join("text.txt");
    let junk: String = (0..50).map(|i| format!("<html> <p>{i}</p>\n")).collect();
    std::fs::write(&t, junk).unwrap();
    let o = names(&[p(&t)], None);
    assert!(!o.status.success());
    assert!(
        err(&o).contains(&format!("{}:11: not a zone", p(&t))),
        "{}",
        err(&o)
    );

    // Truncated gzip: an error with file:line, after the names before the cut.
    let zone = registry_zone(2000);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(zone.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    let tr = d.join("trunc.gz");
    std::fs::write(&tr, &gz[..gz.len() / 2]).unwrap();
    let o = names(&[p(&tr)], None);
    assert!(!o.status.success());
    let e = err(&o);
    assert!(
        e.contains(&format!("{}:", p(&tr))) && e.contains("read error"),
        "{e}"
    );

    // A 100 kB line, a bad \DDD escape, an owner outside the zone: reported, counted, skipped.
    let mut z = String::from("xyz. 900 IN SOA a.nic.xyz. h.xyz. 1 2 3 4 5\na.xyz. NS ns.a.\n");
    z.push_str(&format!("b.xyz. TXT \"{}\"\n", "x".repeat(100_000)));
    z.push_str("\\999c.xyz. NS ns.c.\n");
    z.push_str("d.example. NS ns.d.\n");
    z.push_str("e.xyz. NS ns.e.\n");
    let h = d.join("hostile.zone");
    std::fs::write(&h, z).unwrap();
    let o = names(&[p(&h)], None);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(lines(&o), ["a.xyz.", "e.xyz."]);
    let e = err(&o);
    for (line, what) in [
        (3, "longer than"),
        (4, "\\DDD"),
        (5, "outside the zone xyz."),
    ] {
        let loc = format!("{}:{line}: ", p(&h));
        assert!(
            e.lines().any(|l| l.contains(&loc) && l.contains(what)),
            "no {what:?} at {loc}: {e}"
        );
    }
    assert!(e.contains("3 bad lines"), "{e}");
    let _ = std::fs::remove_dir_all(&d);
}
