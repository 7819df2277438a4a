//! Generating the lab: certificates, TLSA data, zones, signatures and server configurations.
//!
//! Every cryptographic artefact is made by the real tools a zone operator or mail admin would
//! use (openssl, ldns-keygen, ldns-signzone, ldns-key2ds), so the lab cannot inherit a bug
//! from the code it is meant to test. The TLSA digests are computed from the DER the openssl
//! CLI emits for each certificate and its public key.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, bail, Context, Result};

use super::scenario::{
    host_spec, parent_of, HostSpec, Level, Signing, Smtp, ZoneSpec, HOSTS, RESOLVER, ROOT_NS,
};

/// Validity of every certificate and signature, in days.
const VALIDITY_DAYS: i64 = 30;

/// Runs a command, returning its stdout; a failure names the command and shows its stderr.
pub(super) fn run(cmd: &mut Command) -> Result<Vec<u8>> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {:?} (is it installed?)", cmd.get_program()))?;
    if !out.status.success() {
        bail!(
            "{:?} failed ({}): {}",
            cmd,
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}

fn sh(script: &str) -> Result<Vec<u8>> {
    run(Command::new("sh").arg("-c").arg(script))
}

/// Paths of one host's certificate material.
pub(super) struct CertFiles {
    /// Private key (PEM).
    pub key: PathBuf,
    /// Leaf certificate (PEM).
    pub cert: PathBuf,
    /// The file Postfix serves: key, leaf, then the issuing CA if any.
    pub chain: PathBuf,
    /// The certificate a DANE-TA record designates (the CA), if the leaf is CA-issued.
    pub ta: Option<PathBuf>,
    /// A previous certificate (rolled-over key), if the host has one.
    pub old: Option<PathBuf>,
}

pub(super) fn cert_files(dir: &Path, host: &HostSpec) -> CertFiles {
    let d = dir.join("certs").join(host.name);
    CertFiles {
        key: d.join("key.pem"),
        cert: d.join("cert.pem"),
        chain: d.join("chain.pem"),
        ta: (host.smtp == Smtp::PrivateCa).then(|| dir.join("certs/ca/cert.pem")),
        old: host.old_key.then(|| d.join("old.pem")),
    }
}

fn self_signed(key: &Path, cert: &Path, name: &str) -> Result<()> {
    run(Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:P-256", "-nodes", "-keyout"])
        .arg(key)
        .arg("-out")
        .arg(cert)
        .args([
            "-days",
            &VALIDITY_DAYS.to_string(),
            "-subj",
            &format!("/CN={name}"),
        ])
        .args(["-addext", &format!("subjectAltName=DNS:{name}")]))?;
    Ok(())
}

/// Makes the private CA and every host's key and certificate.
fn generate_certs(dir: &Path) -> Result<()> {
    let ca = dir.join("certs/ca");
    fs::create_dir_all(&ca)?;
    run(Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout"])
        .arg(ca.join("key.pem"))
        .arg("-out")
        .arg(ca.join("cert.pem"))
        .args(["-days", &VALIDITY_DAYS.to_string()])
        .args(["-subj", "/O=dane-survey lab/CN=dane-survey lab private CA"])
        .args(["-addext", "basicConstraints=critical,CA:TRUE"])
        .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]))?;
    for host in HOSTS {
        let f = cert_files(dir, host);
        let d = f.key.parent().ok_or_else(|| anyhow!("bad path"))?;
        fs::create_dir_all(d)?;
        let name = host.cert_name.unwrap_or(host.name);
        let mut chain = Vec::new();
        if host.smtp == Smtp::PrivateCa {
            let csr = d.join("req.csr");
            run(Command::new("openssl")
                .args([
                    "req",
                    "-new",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                ])
                .args(["-nodes", "-keyout"])
                .arg(&f.key)
                .arg("-out")
                .arg(&csr)
                .args(["-subj", &format!("/CN={name}")]))?;
            let ext = d.join("ext.cnf");
            fs::write(
                &ext,
                format!(
                    "subjectAltName=DNS:{name}\nbasicConstraints=CA:FALSE\n\
                     keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
                ),
            )?;
            run(Command::new("openssl")
                .args(["x509", "-req", "-in"])
                .arg(&csr)
                .arg("-CA")
                .arg(ca.join("cert.pem"))
                .arg("-CAkey")
                .arg(ca.join("key.pem"))
                .arg("-CAserial")
                .arg(ca.join("serial"))
                .args([
                    "-CAcreateserial",
                    "-days",
                    &VALIDITY_DAYS.to_string(),
                    "-out",
                ])
                .arg(&f.cert)
                .arg("-extfile")
                .arg(&ext))?;
        } else {
            self_signed(&f.key, &f.cert, name)?;
        }
        chain.extend(fs::read(&f.key)?);
        chain.extend(fs::read(&f.cert)?);
        if let Some(ta) = &f.ta {
            chain.extend(fs::read(ta)?);
        }
        fs::write(&f.chain, chain)?;
        if let Some(old) = &f.old {
            self_signed(&d.join("old-key.pem"), old, name)?;
        }
    }
    Ok(())
}

/// The DER bytes a TLSA selector covers: 0 = the certificate, 1 = its SubjectPublicKeyInfo.
fn selected_der(cert: &Path, selector: u8) -> Result<Vec<u8>> {
    let c = cert.display();
    match selector {
        0 => sh(&format!("openssl x509 -in '{c}' -outform DER")),
        1 => sh(&format!(
            "openssl x509 -in '{c}' -noout -pubkey | openssl pkey -pubin -outform DER"
        )),
        s => bail!("selector {s} has no DER form"),
    }
}

fn tlsa_rdata(cert: &Path, usage: u8, selector: u8, mtype: u8) -> Result<Vec<u8>> {
    let der = selected_der(cert, selector)?;
    Ok(match mtype {
        0 => der,
        1 => ring::digest::digest(&ring::digest::SHA256, &der)
            .as_ref()
            .to_vec(),
        2 => ring::digest::digest(&ring::digest::SHA512, &der)
            .as_ref()
            .to_vec(),
        m => bail!("matching type {m} unknown (usage {usage})"),
    })
}

/// Replaces the `{tlsa …}` placeholders of a zone body with computed records.
fn expand_placeholders(dir: &Path, body: &str) -> Result<String> {
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .map(|e| start + e)
            .ok_or_else(|| anyhow!("unclosed placeholder in {body:?}"))?;
        let words: Vec<&str> = rest[start + 1..end].split_whitespace().collect();
        let [kind, u, s, m, host] = words[..] else {
            bail!("bad placeholder {:?}", &rest[start..=end]);
        };
        let (u, s, m): (u8, u8, u8) = (u.parse()?, s.parse()?, m.parse()?);
        let spec =
            host_spec(host).ok_or_else(|| anyhow!("placeholder names unknown host {host}"))?;
        let files = cert_files(dir, spec);
        let cert = match kind {
            "tlsa" | "tlsa-bad" if u == 2 => files
                .ta
                .clone()
                .ok_or_else(|| anyhow!("{host} has no CA"))?,
            "tlsa" | "tlsa-bad" => files.cert.clone(),
            "tlsa-old" => files
                .old
                .clone()
                .ok_or_else(|| anyhow!("{host} has no old key"))?,
            k => bail!("unknown placeholder kind {k}"),
        };
        let mut data = tlsa_rdata(&cert, u, s, m)?;
        if kind == "tlsa-bad" {
            if let Some(last) = data.last_mut() {
                *last ^= 0x01;
            }
        }
        write!(out, "{u} {s} {m} {}", hex::encode(data))?;
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn zone_file_stem(z: &ZoneSpec) -> String {
    match z.origin.trim_end_matches('.') {
        "" => "root".into(),
        o => o.into(),
    }
}

fn ns_name(z: &ZoneSpec) -> String {
    if z.origin == "." {
        "ns1.".into()
    } else {
        format!("ns1.{}", z.origin)
    }
}

/// Time in the `YYYYMMDDhhmmss` form ldns-signzone takes.
fn sig_time(unix: i64) -> Result<String> {
    let t = time::OffsetDateTime::from_unix_timestamp(unix)?;
    Ok(format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    ))
}

fn keygen(keys: &Path, origin: &str, ksk: bool) -> Result<String> {
    let mut cmd = Command::new("ldns-keygen");
    cmd.current_dir(keys).args(["-a", "ECDSAP256SHA256"]);
    if ksk {
        cmd.arg("-k");
    }
    let out = run(cmd.arg(origin))?;
    let base = String::from_utf8_lossy(&out).trim().to_string();
    if base.is_empty() {
        bail!("ldns-keygen printed no key name for {origin}");
    }
    Ok(base)
}

fn ds_of(keys: &Path, base: &str) -> Result<String> {
    let out = run(Command::new("ldns-key2ds")
        .current_dir(keys)
        .args(["-n", "-2"])
        .arg(format!("{base}.key")))?;
    Ok(String::from_utf8_lossy(&out).trim().to_string())
}

/// Writes and signs every zone, deepest first so each DS reaches its parent before the parent
/// is signed. Returns the root's DS (the trust anchor).
fn generate_zones(dir: &Path, zones: &[&ZoneSpec], now: i64) -> Result<String> {
    let zones_dir = dir.join("zones");
    let keys = dir.join("keys");
    fs::create_dir_all(&zones_dir)?;
    fs::create_dir_all(&keys)?;
    let mut order: Vec<&ZoneSpec> = zones.to_vec();
    order.sort_by_key(|z| std::cmp::Reverse(z.origin.matches('.').count() + z.origin.len()));
    order.sort_by_key(|z| {
        std::cmp::Reverse(
            z.origin
                .trim_end_matches('.')
                .split('.')
                .filter(|l| !l.is_empty())
                .count(),
        )
    });
    let mut delegations: BTreeMap<&str, String> = BTreeMap::new();
    let mut root_ds = String::new();
    for z in order {
        let level_addr = z.level().addr();
        let mut text = format!(
            "$ORIGIN {o}\n$TTL 300\n@ SOA {ns} hostmaster.{h} {serial} 3600 600 86400 300\n\
             @ NS {ns}\n{ns} A {level_addr}\n",
            o = z.origin,
            ns = ns_name(z),
            h = if z.origin == "." { "" } else { z.origin },
            serial = now,
        );
        text.push_str(&expand_placeholders(dir, z.body)?);
        text.push('\n');
        if let Some(d) = delegations.get(z.origin) {
            text.push_str(d);
        }
        let stem = zone_file_stem(z);
        let plain = zones_dir.join(format!("{stem}.zone"));
        fs::write(&plain, &text)?;
        // The delegation this zone needs in its parent.
        let mut deleg = format!(
            "{o} NS {ns}\n{ns} A {a}\n",
            o = z.origin,
            ns = ns_name(z),
            a = z.level().addr()
        );
        if z.signing != Signing::Unsigned {
            let ksk = keygen(&keys, z.origin, true)?;
            let zsk = keygen(&keys, z.origin, false)?;
            let (inception, expiration) = if z.signing == Signing::Expired {
                (now - 40 * 86400, now - 86400)
            } else {
                (now - 3600, now + VALIDITY_DAYS * 86400)
            };
            let mut cmd = Command::new("ldns-signzone");
            cmd.current_dir(&keys);
            if matches!(z.signing, Signing::Nsec3) {
                cmd.args(["-n", "-t", "0"]);
            }
            run(cmd
                .args(["-i", &sig_time(inception)?, "-e", &sig_time(expiration)?])
                .args(["-o", z.origin, "-f"])
                .arg(zones_dir.join(format!("{stem}.zone.signed")))
                .arg(&plain)
                .arg(&ksk)
                .arg(&zsk))?;
            let ds = if z.signing == Signing::BogusDs {
                // A DS for a key the zone never published: the chain of trust is broken.
                let decoy = keygen(&keys, z.origin, true)?;
                ds_of(&keys, &decoy)?
            } else {
                ds_of(&keys, &ksk)?
            };
            if z.origin == "." {
                root_ds = ds.clone();
            }
            deleg.push_str(&ds);
            deleg.push('\n');
        } else {
            fs::copy(&plain, zones_dir.join(format!("{stem}.zone.signed")))?;
        }
        if let Some(parent) = parent_of(z) {
            delegations
                .entry(parent.origin)
                .or_default()
                .push_str(&deleg);
        }
    }
    if root_ds.is_empty() {
        bail!("the root zone was not signed");
    }
    Ok(root_ds)
}

fn nsd_conf(dir: &Path, zones: &[&ZoneSpec], level: Level) -> String {
    let d = dir.join(format!("nsd-{}", level.name()));
    let d = d.display();
    let mut conf = format!(
        "server:\n  ip-address: {addr}\n  port: 53\n  username: \"\"\n  chroot: \"\"\n  \
         zonesdir: \"{z}\"\n  database: \"\"\n  pidfile: \"{d}/nsd.pid\"\n  \
         xfrdfile: \"{d}/xfrd.state\"\n  xfrdir: \"{d}\"\n  zonelistfile: \"{d}/zone.list\"\n  \
         logfile: \"{d}/nsd.log\"\n  server-count: 1\n  verbosity: 1\n  hide-version: yes\n  \
         do-ip6: no\n  reuseport: no\n\nremote-control:\n  control-enable: no\n\n",
        addr = level.addr(),
        z = dir.join("zones").display(),
    );
    // Zone transfers for `zonelists fetch`: unsigned, or signed with the lab's TSIG key.
    let _ = write!(
        conf,
        "key:\n  name: \"{XFR_KEY_NAME}\"\n  algorithm: hmac-sha256\n  secret: \"{XFR_KEY_SECRET}\"\n\n"
    );
    for z in zones.iter().filter(|z| z.level() == level) {
        let _ = write!(
            conf,
            "zone:\n  name: \"{}\"\n  zonefile: \"{}.zone.signed\"\n  \
             provide-xfr: 127.0.0.0/8 NOKEY\n  provide-xfr: 127.0.0.0/8 {XFR_KEY_NAME}\n\n",
            z.origin,
            zone_file_stem(z)
        );
    }
    conf
}

/// The TSIG key the lab's nsd accepts for zone transfers (loopback only, so a fixed secret).
pub const XFR_KEY_NAME: &str = "lab-xfr.";
/// Its HMAC-SHA256 secret, base64.
pub const XFR_KEY_SECRET: &str = "ZGFuZS1zdXJ2ZXkgbGFiIHhmciBrZXkgMjAyNg==";

/// The key file (BIND/nsd `key` clause) for [`XFR_KEY_NAME`], as `zonelists fetch` reads it.
pub fn xfr_key_file() -> String {
    format!(
        "key \"{XFR_KEY_NAME}\" {{\n\talgorithm hmac-sha256;\n\tsecret \"{XFR_KEY_SECRET}\";\n}};\n"
    )
}

fn unbound_conf(dir: &Path, zones: &[&ZoneSpec]) -> String {
    let d = dir.join("unbound");
    let d = d.display();
    let mut conf = format!(
        "server:\n  interface: {RESOLVER}\n  port: 53\n  do-ip6: no\n  \
         access-control: 0.0.0.0/0 refuse\n  access-control: ::0/0 refuse\n  \
         access-control: 127.0.0.0/8 allow\n  access-control: ::1/128 allow\n  \
         do-not-query-localhost: no\n  username: \"\"\n  chroot: \"\"\n  directory: \"{d}\"\n  \
         pidfile: \"{d}/unbound.pid\"\n  use-syslog: no\n  logfile: \"{d}/unbound.log\"\n  \
         verbosity: 1\n  val-log-level: 2\n  ede: yes\n  num-threads: 1\n  \
         root-hints: \"{d}/root.hints\"\n  trust-anchor-file: \"{d}/root.ds\"\n  \
         module-config: \"validator iterator\"\n  harden-dnssec-stripped: yes\n  \
         serve-expired: no\n  prefetch: no\n  cache-max-ttl: 300\n  val-bogus-ttl: 0\n  \
         so-rcvbuf: 4m\n  so-sndbuf: 4m\n  msg-cache-size: 64m\n  rrset-cache-size: 128m\n  \
         num-queries-per-thread: 4096\n"
    );
    // Names under RFC 6761 special-use TLDs are answered by unbound itself unless released.
    for z in zones.iter().filter(|z| z.level() == Level::Tld) {
        let _ = writeln!(conf, "  local-zone: \"{}\" nodefault", z.origin);
    }
    conf.push_str("\nremote-control:\n  control-enable: no\n");
    conf
}

fn postfix_conf(dir: &Path) -> (String, String) {
    let pf = dir.join("postfix");
    let main = format!(
        "compatibility_level = 3.6\nqueue_directory = {q}\ndata_directory = {data}\n\
         mail_owner = postfix\nmyhostname = lab.test\nmydestination =\n\
         inet_interfaces = loopback-only\ninet_protocols = all\n\
         maillog_file_prefixes = {dir}\nmaillog_file = {pf}/maillog\n\
         smtpd_banner = $myhostname ESMTP dane-survey lab\n\
         smtpd_tls_security_level = may\nsmtpd_tls_loglevel = 1\n\
         smtpd_relay_restrictions = reject\nbiff = no\n\
         alias_maps =\nalias_database =\nlocal_recipient_maps =\n",
        q = pf.join("spool").display(),
        data = pf.join("data").display(),
        dir = dir.display(),
        pf = pf.display(),
    );
    let mut master = String::from(
        "postlog unix-dgram n - n - 1 postlogd\nanvil unix - - n - 1 anvil\n\
         tlsmgr unix - - n 1000? 1 tlsmgr\n\
         rewrite unix - - n - - trivial-rewrite\nproxymap unix - - n - - proxymap\n\
         cleanup unix n - n - 0 cleanup\n",
    );
    for h in HOSTS.iter().filter(|h| h.smtp != Smtp::Closed) {
        let files = cert_files(dir, h);
        let tls = match h.smtp {
            Smtp::NoStarttls => "-o smtpd_tls_security_level=none".to_string(),
            // OpenSSL 3 allows TLS 1.0 only at security level 0.
            Smtp::Tls10Only => format!(
                "-o smtpd_tls_chain_files={} \
                 -o smtpd_tls_protocols=TLSv1,!TLSv1.1,!TLSv1.2,!TLSv1.3 \
                 -o tls_medium_cipherlist=DEFAULT:@SECLEVEL=0",
                files.chain.display()
            ),
            _ => format!("-o smtpd_tls_chain_files={}", files.chain.display()),
        };
        let mut addrs = vec![h.v4.to_string()];
        if h.v6_loopback {
            addrs.push("[::1]".into());
        }
        for a in addrs {
            let _ = writeln!(
                master,
                "{a}:25 inet n - n - - smtpd -o myhostname={n} {tls} -o syslog_name=lab/{n}",
                n = h.name
            );
        }
    }
    (main, master)
}

/// Generates the whole lab into `dir` (which must be empty or absent): returns nothing, the
/// files are the product. `now` is the unix time the certificates and signatures start from;
/// `month` picks the scenario's zones ([`super::scenario::zones`]).
pub fn generate(dir: &Path, now: i64, month: u8) -> Result<()> {
    fs::create_dir_all(dir)?;
    let zones = super::scenario::zones(month);
    generate_certs(dir).context("generating certificates")?;
    let root_ds = generate_zones(dir, &zones, now).context("generating and signing zones")?;
    for level in [Level::Root, Level::Tld, Level::Sld] {
        let d = dir.join(format!("nsd-{}", level.name()));
        fs::create_dir_all(&d)?;
        fs::write(d.join("nsd.conf"), nsd_conf(dir, &zones, level))?;
    }
    let ub = dir.join("unbound");
    fs::create_dir_all(&ub)?;
    fs::write(ub.join("unbound.conf"), unbound_conf(dir, &zones))?;
    fs::write(ub.join("root.ds"), format!("{root_ds}\n"))?;
    fs::write(
        ub.join("root.hints"),
        format!(". 3600000 NS ns1.\nns1. 3600000 A {ROOT_NS}\n"),
    )?;
    let pf = dir.join("postfix");
    fs::create_dir_all(pf.join("spool"))?;
    fs::create_dir_all(pf.join("data"))?;
    run(Command::new("chown").arg("postfix").arg(pf.join("data")))?;
    let (main, master) = postfix_conf(dir);
    fs::write(pf.join("main.cf"), main)?;
    fs::write(pf.join("master.cf"), master)?;
    Ok(())
}
