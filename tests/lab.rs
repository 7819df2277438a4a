//! End to end against the lab: `lab up`, `check` for every ground-truth domain, an independent
//! oracle (dig + `openssl s_client -dane_tlsa_rrdata`) for the DANE cases, the bad-input
//! errors, and `lab down`.
//!
//! The lab uses fixed 127.x addresses, so everything that needs it runs inside one test,
//! under a lock file that makes a second test process wait instead of fighting for the ports.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};

use serde_json::Value;

mod common;

use common::{dane_survey, ground_truth, text, Lab, RESOLVER};

fn check_json(domain: &str) -> Value {
    let out = dane_survey(&["check", "--lab", "--json", domain]);
    assert!(
        out.status.success(),
        "check {domain}: {}",
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn dig(args: &[&str]) -> String {
    let out = Command::new("dig")
        .arg(format!("@{RESOLVER}"))
        .args(["+dnssec", "+noall", "+answer", "+comments"])
        .args(args)
        .output()
        .expect("dig (Debian package dnsutils) must be installed");
    text(&out.stdout)
}

/// The oracle's view of one DANE host, from dig alone: (TLSA base domain, TLSA rdata, addresses).
fn oracle_host(host: &str) -> (String, Vec<String>, Vec<String>) {
    let cname = dig(&["+short", host, "CNAME"]);
    let base = cname
        .lines()
        .next()
        .map(|t| t.trim_end_matches('.').to_string())
        .filter(|t| !t.is_empty());
    let base = base.unwrap_or_else(|| host.to_string());
    let tlsa_out = dig(&[&format!("_25._tcp.{base}"), "TLSA"]);
    assert!(
        tlsa_out.contains("flags: qr rd ra ad"),
        "TLSA for {base} not AD: {tlsa_out}"
    );
    // dig aligns columns with tabs or spaces depending on the owner's length: split on both.
    let tlsa: Vec<String> = tlsa_out
        .lines()
        .filter(|l| !l.starts_with(';'))
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|w| w.len() >= 8 && w[3] == "TLSA")
        .map(|w| format!("{} {} {} {}", w[4], w[5], w[6], w[7..].concat()))
        .collect();
    let mut addrs = Vec::new();
    for t in ["A", "AAAA"] {
        for l in dig(&["+short", host, t]).lines() {
            if l.parse::<std::net::IpAddr>().is_ok() {
                addrs.push(l.to_string());
            }
        }
    }
    (base, tlsa, addrs)
}

/// OpenSSL's DANE verdict for one address: Some(true) verified, Some(false) failed.
fn openssl_dane(addr: &str, base: &str, tlsa: &[String]) -> (bool, String) {
    let target = if addr.contains(':') {
        format!("[{addr}]:25")
    } else {
        format!("{addr}:25")
    };
    let mut cmd = Command::new("openssl");
    cmd.args([
        "s_client",
        "-starttls",
        "smtp",
        "-connect",
        &target,
        "-servername",
        base,
    ])
    .args([
        "-dane_tlsa_domain",
        base,
        "-dane_ee_no_namechecks",
        "-verify_return_error",
    ]);
    for t in tlsa {
        cmd.args(["-dane_tlsa_rrdata", t]);
    }
    let out = cmd.stdin(Stdio::null()).output().expect("openssl");
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    let ok = all.contains("Verification: OK") && all.contains("Verify return code: 0 (ok)");
    (ok, all)
}

/// What a lookup must come back as: (variant, security, CNAME links, EDE wanted).
fn dns_security_states() {
    use dane_survey::dns::{DnsFailure, Lookup, Resolver, ResolverConfig, Security};
    use hickory_proto::rr::{Name, RecordType};
    use Security::{Insecure as I, Secure as S};

    #[derive(Debug, PartialEq)]
    enum Want {
        Data(Security, usize),
        NoData(Security),
        NxDomain(Security),
        ServFail,
    }
    use Want::*;
    let cases: &[(&str, RecordType, Want)] = &[
        ("ee311.test.", RecordType::MX, Data(S, 0)),
        ("nomx.test.", RecordType::MX, NoData(S)),
        ("doesnotexist.test.", RecordType::MX, NxDomain(S)),
        ("doesnotexist.example.", RecordType::MX, NxDomain(S)), // NSEC3 denial
        ("unsigned.test.", RecordType::MX, Data(I, 0)),
        ("unsigned-hoster.test.", RecordType::MX, NoData(I)),
        ("bogus.test.", RecordType::MX, ServFail),
        ("expired.example.", RecordType::MX, ServFail),
        ("mx.ee311.test.", RecordType::A, Data(S, 0)),
        ("mail.unsigned-hoster.test.", RecordType::A, Data(I, 0)),
        ("nope.unsigned.test.", RecordType::A, NxDomain(I)),
        ("bogus.test.", RecordType::A, ServFail),
        ("mx.dualstack.test.", RecordType::AAAA, Data(S, 0)),
        ("mx.ee311.test.", RecordType::AAAA, NoData(S)),
        ("mx.ee301.example.", RecordType::AAAA, NoData(S)), // NSEC3 NODATA
        ("mx.unsigned.test.", RecordType::AAAA, NoData(I)),
        ("bogus.test.", RecordType::AAAA, ServFail),
        ("expired.example.", RecordType::AAAA, ServFail),
        ("_25._tcp.mx.ee311.test.", RecordType::TLSA, Data(S, 0)),
        ("_25._tcp.mx.ee312.example.", RecordType::TLSA, Data(S, 0)),
        ("_25._tcp.mx.notlsa.test.", RecordType::TLSA, NxDomain(S)),
        ("_25._tcp.mx.unsigned.test.", RecordType::TLSA, Data(I, 0)),
        ("_25._tcp.mx.tlsacname.test.", RecordType::TLSA, Data(S, 1)),
        ("_25._tcp.mx.bogus.test.", RecordType::TLSA, ServFail),
        ("mx.cnamehost.test.", RecordType::CNAME, Data(S, 0)),
        ("mx.cnamehost.test.", RecordType::A, Data(S, 1)),
        ("alias.unsigned.test.", RecordType::A, Data(I, 1)),
        ("into-unsigned.notlsa.test.", RecordType::A, Data(I, 1)),
        ("into-bogus.notlsa.test.", RecordType::A, ServFail),
    ];
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let r = Resolver::new(ResolverConfig::new(vec![format!("{RESOLVER}:53")
            .parse()
            .unwrap()]))
        .unwrap();
        let mut wrong = Vec::new();
        for (qname, rtype, want) in cases {
            let l = r
                .lookup(&Name::from_ascii(qname).unwrap(), *rtype, |d| {
                    Some(d.clone())
                })
                .await;
            let got = match &l {
                Lookup::Data(d) => Data(d.security, d.cname_chain.len()),
                Lookup::NoData(d) => NoData(d.security),
                Lookup::NxDomain(d) => NxDomain(d.security),
                Lookup::Failed(DnsFailure::ServFail { ede }) => {
                    // unbound is configured with `ede: yes`: a DNSSEC failure says so.
                    assert!(
                        ede.as_ref().is_some_and(|e| e.is_dnssec_failure()),
                        "{qname} {rtype}: SERVFAIL without a DNSSEC EDE: {ede:?}"
                    );
                    ServFail
                }
                Lookup::Failed(e) => panic!("{qname} {rtype}: {e}"),
            };
            if &got != want {
                wrong.push(format!("{qname} {rtype}: want {want:?}, got {got:?}"));
            }
        }
        assert!(wrong.is_empty(), "security states:\n{}", wrong.join("\n"));
    });
}

/// `zonelists fetch` transfers the lab's `test.` zone from its nsd (without and with TSIG),
/// and `zonelists names` lists exactly the zones delegated directly below `test.`.
fn zonelists_axfr() {
    let dir = std::env::temp_dir().join(format!("dane-survey-axfr-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("xfr.key"), dane_survey::lab::xfr_key_file()).unwrap();
    std::fs::write(
        dir.join("bad.key"),
        "key \"lab-xfr.\" { algorithm hmac-sha256; secret \"d3Jvbmcgc2VjcmV0\"; };\n",
    )
    .unwrap();
    let manifest = dir.join("sources.toml");
    std::fs::write(
        &manifest,
        "[source.plain]\npath = \"plain.zone\"\naxfr = { server = \"127.53.0.2:53\", zone = \"test.\" }\n\
         [source.tsig]\npath = \"zones/tsig.zone\"\n\
         axfr = { server = \"127.53.0.2\", zone = \"test.\", tsig_key = \"xfr.key\" }\n\
         [source.badkey]\npath = \"badkey.zone\"\n\
         axfr = { server = \"127.53.0.2\", zone = \"test.\", tsig_key = \"bad.key\" }\n\
         [source.notserved]\npath = \"notserved.zone\"\n\
         axfr = { server = \"127.53.0.2\", zone = \"ee311.test.\" }\n",
    )
    .unwrap();
    let m = manifest.to_str().unwrap();
    let want: BTreeSet<String> = dane_survey::lab::scenario::ZONES
        .iter()
        .filter(|z| z.origin.ends_with(".test.") && z.origin.matches('.').count() == 2)
        .map(|z| z.origin.to_string())
        .collect();
    assert!(want.len() >= 20, "{want:?}");
    for (source, file, signed) in [
        ("plain", "plain.zone", false),
        ("tsig", "zones/tsig.zone", true),
    ] {
        let out = dane_survey(&["zonelists", "fetch", source, "--sources", m]);
        assert!(
            out.status.success(),
            "fetch {source}: {}",
            text(&out.stderr)
        );
        assert_eq!(
            text(&out.stderr).contains("TSIG verified"),
            signed,
            "{}",
            text(&out.stderr)
        );
        let path = dir.join(file);
        let out = dane_survey(&["zonelists", "names", path.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "names {source}: {}",
            text(&out.stderr)
        );
        let got: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
        let got_set: BTreeSet<String> = got.iter().cloned().collect();
        assert_eq!(got.len(), got_set.len(), "duplicates in {got:?}");
        assert_eq!(got_set, want, "delegations of test. from {source}");
        assert!(
            text(&out.stderr).contains("0 bad lines"),
            "{}",
            text(&out.stderr)
        );
    }
    for (source, why) in [("badkey", "TSIG"), ("notserved", "refused")] {
        let out = dane_survey(&["zonelists", "fetch", source, "--sources", m]);
        assert!(!out.status.success(), "fetch {source} succeeded");
        assert!(
            text(&out.stderr).contains(why),
            "{source}: {}",
            text(&out.stderr)
        );
        assert!(!dir.join(format!("{source}.zone")).exists());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn lab_end_to_end() {
    let lab = Lab::up();
    let truth = ground_truth();
    assert!(truth.len() >= 30, "ground truth too small");

    // 1. `check` agrees with the ground truth for every lab domain.
    let mut failures = Vec::new();
    let mut reports = Vec::new();
    for t in &truth {
        let r = check_json(&t.domain);
        let got = (
            r["verdict"].as_str().unwrap_or("?").to_string(),
            r["all_hosts_verdict"].as_str().unwrap_or("-").to_string(),
            r["provider"].as_str().unwrap_or("-").to_string(),
        );
        let want = (t.verdict.clone(), t.all_hosts.clone(), t.provider.clone());
        if got != want {
            failures.push(format!("{}: want {want:?}, got {got:?}", t.domain));
        }
        reports.push((t, r));
    }
    assert!(
        failures.is_empty(),
        "disagreements with the ground truth:\n{}",
        failures.join("\n")
    );

    // Every ground-truth domain exists in the lab's zones and vice versa (no silent drift).
    let truth_set: BTreeSet<&str> = truth.iter().map(|t| t.domain.as_str()).collect();
    for (t, r) in &reports {
        if t.verdict != "nxdomain" {
            assert_ne!(
                r["verdict"], "nxdomain",
                "{} missing from the lab",
                t.domain
            );
        }
    }
    assert!(truth_set.contains("doesnotexist.test"));

    // 2. The lab is right: OpenSSL, fed only what dig says, agrees on every DANE host.
    let mut checked = 0;
    for (t, r) in &reports {
        let expect_pass = t.verdict == "dane_valid";
        let expect_fail = matches!(t.domain.as_str(), "mismatch.test" | "ta-wrongname.test");
        if !expect_pass && !expect_fail {
            continue;
        }
        for h in r["hosts"].as_array().unwrap() {
            if !(h["primary"].as_bool().unwrap() && h["tlsa_base_domain"].is_string()) {
                continue;
            }
            let host = h["name"].as_str().unwrap();
            let (base, tlsa, addrs) = oracle_host(host);
            assert_eq!(
                base,
                h["tlsa_base_domain"].as_str().unwrap(),
                "base domain of {host}"
            );
            assert!(!addrs.is_empty(), "no address for {host}");
            // With -dane_ee_no_namechecks OpenSSL still checks names for DANE-TA, as RFC 7672 does.
            for a in &addrs {
                let (ok, log) = openssl_dane(a, &base, &tlsa);
                assert_eq!(
                    ok, expect_pass,
                    "openssl on {} {a} ({base}, {tlsa:?}):\n{log}",
                    t.domain
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 15, "oracle checked only {checked} addresses");

    // 2b. The time is an input: far in the future the DANE-TA chain has expired (a DANE-TA
    // failure), while DANE-EE ignores expiry (RFC 7672 §3.1.1).
    for (domain, verdict, address) in [
        ("ta211.test", "dane_failing", "cert_expired"),
        ("ee311.test", "dane_valid", "pass"),
    ] {
        let out = dane_survey(&[
            "check",
            "--lab",
            "--json",
            "--at",
            "2099-01-01T00:00:00Z",
            domain,
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let r: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(r["verdict"], verdict, "{domain} in 2099");
        assert_eq!(
            r["hosts"][0]["probes"][0]["verdict"], address,
            "{domain} in 2099"
        );
    }

    // 2b'. The TLS 1.0-only server is recorded as such, at the handshake.
    let (_, r) = reports
        .iter()
        .find(|(t, _)| t.domain == "tls10.test")
        .unwrap();
    let err = &r["hosts"][0]["probes"][0]["probe"]["error"];
    assert_eq!(err["stage"], "tls_handshake", "{err}");
    assert_eq!(err["kind"], "tls_incompatible", "{err}");

    // 2b''. Every hostile server: the probe stops at the right stage, for the right reason,
    // within its bound (`check --lab`: 5 s per stage, 20 s per session), with the right
    // address verdict.
    for (label, stage, kind, address) in [
        ("slowbanner", "banner", "timeout", "unreachable"),
        ("endless250", "ehlo", "too_many_lines", "starttls_missing"),
        ("longline", "banner", "reply_too_long", "starttls_missing"),
        ("greet421", "banner", "rejected", "unreachable"),
        ("starttls454", "starttls", "rejected", "starttls_missing"),
        ("garbagehello", "tls_handshake", "tls", "tls_failed"),
        ("closehandshake", "tls_handshake", "tls", "tls_failed"),
        ("pipelined", "starttls", "pipelined_data", "tls_failed"),
    ] {
        let domain = format!("{label}.hostile.test");
        let (_, r) = reports.iter().find(|(t, _)| t.domain == domain).unwrap();
        let p = &r["hosts"][0]["probes"][0];
        let err = &p["probe"]["error"];
        assert_eq!(
            (err["stage"].as_str(), err["kind"].as_str()),
            (Some(stage), Some(kind)),
            "{domain}: {p}"
        );
        assert_eq!(p["verdict"], address, "{domain}: {p}");
        let ms = p["probe"]["elapsed_ms"].as_u64().unwrap();
        assert!(
            ms <= 5_000 + 2_000,
            "{domain}: the probe took {ms} ms, past its 5 s stage bound"
        );
    }

    // 2c. Every security state of every record type the survey uses, through the library.
    dns_security_states();

    // 2d. Zone transfer of the lab's test. TLD into a zonelist (unsigned and with TSIG).
    zonelists_axfr();

    // 3. Bad input gets a clear error.
    let out = dane_survey(&["check", "--resolver", "127.53.9.9", "ee311.test"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("does not answer"),
        "{}",
        text(&out.stderr)
    );

    // nsd at the root is authoritative and does not validate: no AD bit → refused.
    let out = dane_survey(&["check", "--resolver", "127.53.0.1", "ee311.test"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("does not validate DNSSEC"),
        "{}",
        text(&out.stderr)
    );

    // A validating resolver that answers the bogus self-check name is not validating either:
    // using a name that is fine instead of the bogus one must be rejected.
    let out = dane_survey(&[
        "check",
        "--resolver",
        RESOLVER,
        "--selfcheck-bogus",
        "ee311.test",
        "ee311.test",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("instead of SERVFAIL"),
        "{}",
        text(&out.stderr)
    );

    for bad in ["exa mple..com", "192.0.2.1", "", &"a".repeat(64)] {
        let out = dane_survey(&["check", "--lab", bad]);
        assert!(!out.status.success(), "accepted {bad:?}");
        assert!(
            text(&out.stderr).starts_with("error: "),
            "{}",
            text(&out.stderr)
        );
    }

    // Loopback MX addresses are not probed without --allow-loopback.
    let out = dane_survey(&[
        "check",
        "--json",
        "--resolver",
        RESOLVER,
        "--selfcheck-bogus",
        "bogus.test",
        "ee311.test",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let probe = &r["hosts"][0]["probes"][0];
    assert_eq!(probe["verdict"], "skipped", "{probe}");
    assert!(
        probe["probe"].is_null(),
        "a loopback address was probed: {probe}"
    );

    drop(lab);
}
