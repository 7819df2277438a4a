//! Runs `dane::verify` over OpenSSL's DANE test vectors, re-read with SMTP
//! (RFC 7672) semantics as documented in the vectors' README.md.
//!
//! Why: the vectors are an independent, widely used reference for TLSA
//! matching and match depths; asserting every case pins our behaviour down.

use std::path::PathBuf;

use dane_survey::dane::{verify, MatchOutcome, TlsaRecord};

/// 2026-11-28T00:00:00Z. The vector certificates are valid until 2116 or later.
const AT: i64 = 1_795_824_000;

fn vectors_dir() -> PathBuf {
    let primary = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/openssl");
    if primary.is_dir() {
        primary
    } else {
        PathBuf::from("/work/shared/conformance/openssl")
    }
}

/// One case as the OpenSSL driver loads it.
struct Case {
    /// The `# N` label.
    number: usize,
    records: Vec<TlsaRecord>,
    chain: Vec<Vec<u8>>,
    /// OpenSSL's expected verify error (0 = OK).
    want_error: i64,
    /// OpenSSL's expected match depth (-1 = none).
    want_depth: i64,
}

fn b64decode(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            c if c.is_ascii_whitespace() => continue,
            other => panic!("bad base64 byte {other:#x}"),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    out
}

/// Parses a `.in` file exactly like OpenSSL's `danetest.c`: a header, then
/// exactly `<TLSA-count>` record lines, then `<cert-count>` PEM blocks (any
/// other text before a `-----BEGIN` line, including stray record lines, is
/// skipped).
fn parse_cases(file: &str) -> Vec<Case> {
    let path = vectors_dir().join(file);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut lines = text.lines().peekable();
    let mut cases = Vec::new();
    let mut label: Option<usize> = None;
    loop {
        // Next header, remembering the last "# N" label.
        let header = loop {
            match lines.next() {
                None => return cases,
                Some(l) if l.trim().is_empty() => {}
                Some(l) if l.starts_with('#') => {
                    let rest = l.trim_start_matches('#').trim();
                    if let Ok(n) = rest.parse::<usize>() {
                        label = Some(n);
                    }
                }
                Some(l) => break l,
            }
        };
        let nums: Vec<i64> = header
            .split_whitespace()
            .map(|t| {
                t.parse()
                    .unwrap_or_else(|_| panic!("bad header {header:?}"))
            })
            .collect();
        let [ntlsa, ncert, _nonamechecks, want_error, want_depth] = nums[..] else {
            panic!("header must have 5 integers: {header:?}");
        };
        let mut records = Vec::new();
        while records.len() < usize::try_from(ntlsa).expect("count") {
            let l = lines.next().expect("TLSA line");
            if l.trim().is_empty() || l.starts_with('#') {
                continue;
            }
            records.push(
                l.parse::<TlsaRecord>()
                    .unwrap_or_else(|e| panic!("TLSA line {l:?}: {e}")),
            );
        }
        let mut chain = Vec::new();
        while chain.len() < usize::try_from(ncert).expect("count") {
            let l = lines.next().expect("PEM block");
            if l.starts_with("-----BEGIN") {
                let mut b64 = String::new();
                for l in lines.by_ref() {
                    if l.starts_with("-----END") {
                        break;
                    }
                    b64.push_str(l.trim());
                }
                chain.push(b64decode(&b64));
            }
        }
        cases.push(Case {
            number: label.take().expect("every case has a # N label"),
            records,
            chain,
            want_error,
            want_depth,
        });
    }
}

use MatchOutcome::{NameMismatch, NoUsableRecords, Pass, TlsaMismatch};

/// Expected SMTP outcome and match depth for each `danetest.in` case,
/// derived from the README's table and its "Reading the vectors with SMTP
/// semantics" section.
fn danetest_expectation(case: usize) -> (MatchOutcome, Option<usize>) {
    match case {
        1..=4 => (Pass, Some(0)), // DANE-EE, never-valid nameless leaf: no checks
        5..=8 => (TlsaMismatch, None), // digests off by one
        9..=12 => (Pass, Some(0)), // DANE-EE
        13..=16 => (Pass, Some(1)), // DANE-TA on the intermediate
        17..=20 => (Pass, Some(2)), // DANE-TA on the root
        21..=38 => (NoUsableRecords, None), // PKIX-only
        39 => (Pass, Some(0)),    // only the declared 3 1 2 record loads
        40 => (Pass, Some(1)),
        41 | 42 => (Pass, Some(2)),
        43 => (Pass, Some(2)), // 2 0 0 root not presented
        44 => (Pass, Some(1)), // 2 0 0 intermediate not presented
        45 => (Pass, Some(0)), // 2 1 0 intermediate key: depth of the cert it signs
        46 => (Pass, Some(1)), // 2 1 0 root key
        47 => (Pass, Some(0)),
        48 => (NameMismatch, Some(1)),
        49 => (NameMismatch, Some(2)),
        50 => (Pass, Some(0)), // OpenSSL 62; SMTP: no name check for DANE-EE
        _ => panic!("unexpected case {case}"),
    }
}

fn run(case: &Case, reference: &str) -> (MatchOutcome, Option<usize>, String) {
    let v = verify(&case.records, &case.chain, &[reference.to_string()], AT);
    (v.outcome, v.matched.map(|m| m.depth), v.detail)
}

/// Translates OpenSSL's expectation into SMTP terms independently of the
/// table above: all-PKIX → no usable records; otherwise OpenSSL's depth, and
/// error 62 only counts for DANE-TA matches (depth > 0 in these vectors).
fn openssl_translated(case: &Case) -> (MatchOutcome, Option<usize>) {
    if case.records.iter().all(|r| r.usage < 2) {
        return (NoUsableRecords, None);
    }
    let depth = usize::try_from(case.want_depth).ok();
    let outcome = match case.want_error {
        0 => Pass,
        65 => TlsaMismatch,
        62 if case.want_depth == 0 => Pass,
        62 => NameMismatch,
        e => panic!("case {}: unexpected error code {e}", case.number),
    };
    (outcome, depth)
}

#[test]
fn danetest_in_all_50_cases() {
    let cases = parse_cases("danetest.in");
    assert_eq!(cases.len(), 50);
    let labels: Vec<usize> = cases.iter().map(|c| c.number).collect();
    assert_eq!(labels, (1..=50).collect::<Vec<_>>());
    // Quirk: cases 39-42 declare one record (and have a second, stray line).
    for c in &cases {
        if (39..=42).contains(&c.number) {
            assert_eq!(c.records.len(), 1, "case {}", c.number);
        }
    }
    let mut failures = Vec::new();
    for c in &cases {
        let want = danetest_expectation(c.number);
        assert_eq!(
            want,
            openssl_translated(c),
            "case {}: table disagrees with the file header",
            c.number
        );
        let (outcome, depth, detail) = run(c, "example.com");
        if (outcome, depth) != want {
            failures.push(format!(
                "case {}: got {outcome:?} depth {depth:?}, want {want:?} ({detail})",
                c.number
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn dane_cross_in() {
    let cases = parse_cases("dane-cross.in");
    assert_eq!(cases.len(), 1);
    let c = &cases[0];
    assert_eq!(c.chain.len(), 4);
    assert_eq!(openssl_translated(c), (Pass, Some(2)));
    let (outcome, depth, detail) = run(c, "server.example");
    assert_eq!((outcome, depth), (Pass, Some(2)), "{detail}");
    // The published TA is not byte-identical to any presented certificate.
    assert!(c.records.iter().all(|r| !c.chain.contains(&r.data)));
}

#[test]
fn danetest_3_3_in_all_54_cases() {
    let cases = parse_cases("danetest-3.3.in");
    assert_eq!(cases.len(), 54);
    let mut failures = Vec::new();
    for c in &cases {
        let want = match c.number {
            1 | 2 => (Pass, Some(0)),           // new: 3 0 0 / 3 1 0
            23 | 24 => (NoUsableRecords, None), // new: PKIX-EE only
            n @ 3..=22 => danetest_expectation(n - 2),
            n @ 25..=54 => danetest_expectation(n - 4),
            n => panic!("unexpected case {n}"),
        };
        assert_eq!(want, openssl_translated(c), "case {}", c.number);
        let (outcome, depth, detail) = run(c, "example.com");
        if (outcome, depth) != want {
            failures.push(format!(
                "case {}: got {outcome:?} depth {depth:?}, want {want:?} ({detail})",
                c.number
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The new Full(0) EE cases really carry full data.
    for c in cases.iter().filter(|c| c.number <= 2) {
        assert!(c
            .records
            .iter()
            .all(|r| r.usage == 3 && r.matching_type == 0));
    }
}

#[test]
fn danetest_at_current_time_too() {
    // Same results with the real clock (the test harness may read it; the
    // library never does).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(AT);
    for c in parse_cases("danetest.in") {
        let v = verify(&c.records, &c.chain, &["example.com".to_string()], now);
        assert_eq!(
            (v.outcome, v.matched.map(|m| m.depth)),
            danetest_expectation(c.number),
            "case {}",
            c.number
        );
    }
}
