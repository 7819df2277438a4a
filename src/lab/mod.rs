//! The lab: a signed mini-internet on loopback, for testing the survey against ground truth.
//!
//! No machine of ours reaches the Internet, and a researcher should validate a scanner before
//! publishing its numbers; so the lab reproduces the parts of the Internet the survey touches
//! with the real software that runs them:
//!
//! * a private root, two private TLDs (`test.` signed with NSEC, `example.` with NSEC3) and
//!   second-level zones, signed by `ldns-signzone`, served by three `nsd` instances
//!   (127.53.0.1 root, .2 TLDs, .3 the rest);
//! * `unbound` on 127.53.0.53, validating, with the private root's DS as its only trust anchor
//!   and answering loopback clients only;
//! * one Postfix `smtpd` listener per MX host on its own 127.25.0.x address (and `[::1]` for the
//!   dual-stack host), with certificates made by `openssl` for the case, and TLSA records
//!   computed from those same certificates.
//!
//! [`scenario`] holds the world as data; `tests/lab/ground-truth.tsv` the expected verdicts.
//! `up` is idempotent, installs missing Debian packages, tracks every process it starts by pid
//! (and an environment marker), and reports ready only once the resolver validates the private
//! root; `down` stops exactly those processes.

mod build;
pub mod hostile;
mod run;
pub mod scenario;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hickory_proto::rr::Name;

use crate::dns::{selfcheck, Resolver, ResolverConfig};
pub use build::{xfr_key_file, XFR_KEY_NAME};
pub use run::{is_ours, Pids, Tracked};
use scenario::{Smtp, HOSTS, RESOLVER, ROOT_NS, SELFCHECK_BOGUS, SELFCHECK_SIGNED, SLD_NS, TLD_NS};

/// The Debian packages the lab runs on, and a binary each provides.
const PACKAGES: &[(&str, &str)] = &[
    ("nsd", "nsd"),
    ("unbound", "unbound"),
    ("ldnsutils", "ldns-signzone"),
    ("postfix", "postfix"),
    ("openssl", "openssl"),
];

/// The default lab directory (`$DANE_SURVEY_LAB_DIR`, else `/tmp/dane-survey-lab`).
pub fn default_dir() -> PathBuf {
    std::env::var_os("DANE_SURVEY_LAB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/dane-survey-lab"))
}

/// The lab resolver's address.
pub fn resolver_addr() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(RESOLVER), 53)
}

/// The names the resolver self-check uses in the lab: (signed, bogus).
pub fn selfcheck_names() -> (Name, Name) {
    (
        Name::from_ascii(SELFCHECK_SIGNED).unwrap_or_else(|_| Name::root()),
        Name::from_ascii(SELFCHECK_BOGUS).unwrap_or_else(|_| Name::root()),
    )
}

fn which(bin: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
        .unwrap_or(false)
        || Path::new("/usr/sbin").join(bin).is_file()
}

/// Installs the lab's Debian packages if any is missing, without letting the distribution
/// start its own unbound/nsd/postfix (they would take ports 53 and 25).
pub fn ensure_packages() -> Result<()> {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|(_, bin)| !which(bin))
        .map(|(pkg, _)| *pkg)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!(
            "the lab needs the Debian packages {}: install them as root \
             (apt-get install {}) or run `dane-survey lab up` as root",
            missing.join(" "),
            missing.join(" ")
        );
    }
    eprintln!("lab: installing {}", missing.join(" "));
    let policy = Path::new("/usr/sbin/policy-rc.d");
    let ours = !policy.exists();
    if ours {
        std::fs::write(
            policy,
            "#!/bin/sh\n# dane-survey lab: keep services stopped\nexit 101\n",
        )?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(policy, std::fs::Permissions::from_mode(0o755))?;
    }
    let result = (|| -> Result<()> {
        let mut sel = Command::new("debconf-set-selections");
        sel.stdin(std::process::Stdio::piped());
        if let Ok(mut child) = sel.spawn() {
            use std::io::Write;
            if let Some(stdin) = child.stdin.as_mut() {
                let _ =
                    stdin.write_all(b"postfix postfix/main_mailer_type select No configuration\n");
            }
            let _ = child.wait();
        }
        build::run(Command::new("apt-get").args(["update", "-qq"]))?;
        build::run(
            Command::new("apt-get")
                .args(["install", "-y", "-qq", "--no-install-recommends"])
                .args(&missing)
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )?;
        Ok(())
    })();
    if ours {
        let _ = std::fs::remove_file(policy);
    }
    result
}

/// What `status` found.
#[derive(Debug)]
pub struct Status {
    /// Each tracked process and whether it is running.
    pub processes: Vec<(Tracked, bool)>,
    /// The resolver self-check result.
    pub resolver: Result<(), String>,
}

impl Status {
    /// Whether every process runs and the resolver validates.
    pub fn healthy(&self) -> bool {
        !self.processes.is_empty()
            && self.processes.iter().all(|(_, up)| *up)
            && self.resolver.is_ok()
    }
}

async fn resolver_check() -> Result<(), String> {
    let mut cfg = ResolverConfig::new(vec![resolver_addr()]);
    cfg.timeout = Duration::from_secs(2);
    cfg.retries = 0;
    let resolver = Resolver::new(cfg)?;
    let (signed, bogus) = selfcheck_names();
    selfcheck(&resolver, &signed, &bogus)
        .await
        .map_err(|e| e.to_string())
}

/// Reports the lab's processes and whether its resolver validates.
pub async fn status(dir: &Path) -> Result<Status> {
    let pids = Pids::load(dir)?;
    let processes = pids
        .processes
        .into_iter()
        .map(|p| {
            let up = is_ours(p.pid, &p.marker);
            (p, up)
        })
        .collect::<Vec<_>>();
    let resolver = if processes.is_empty() {
        Err("the lab is not running".into())
    } else {
        resolver_check().await
    };
    Ok(Status {
        processes,
        resolver,
    })
}

/// The SMTP endpoints that must accept connections once the lab is up.
fn smtp_endpoints() -> Vec<SocketAddr> {
    let mut v = Vec::new();
    for h in HOSTS.iter().filter(|h| h.smtp != Smtp::Closed) {
        v.push(SocketAddr::new(IpAddr::V4(h.v4), 25));
        if h.v6_loopback {
            v.push("[::1]:25".parse().expect("literal"));
        }
    }
    for &(_, _, last) in hostile::HOSTILE {
        v.push(SocketAddr::new(IpAddr::V4(hostile::address(last)), 25));
    }
    v
}

/// The file in the lab directory that records which month of the scenario it plays.
const MONTH_FILE: &str = "month";

/// The month of the scenario the lab in `dir` was generated for (1 when it records none).
pub fn month(dir: &Path) -> u8 {
    std::fs::read_to_string(dir.join(MONTH_FILE))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(1)
}

/// Brings the lab up (idempotent): regenerates and starts it unless a healthy lab already runs
/// the requested `month` of the scenario ([`scenario::zones`]; `None`: whichever month runs,
/// month 1 when it must start). Switching months restarts the lab. Returns `false` when it was
/// already up.
pub async fn up(dir: &Path, month: Option<u8>) -> Result<bool> {
    if let Some(m) = month {
        if !(1..=scenario::MONTHS).contains(&m) {
            bail!("the lab has months 1 to {}, not {m}", scenario::MONTHS);
        }
    }
    if status(dir).await?.healthy() && month.is_none_or(|m| m == self::month(dir)) {
        return Ok(false);
    }
    let month = month.unwrap_or(1);
    ensure_packages()?;
    // Anything half-started before is ours to stop; then start from a clean directory.
    run::stop_all(dir)?;
    let mut dns: Vec<SocketAddr> = [ROOT_NS, TLD_NS, SLD_NS, RESOLVER]
        .iter()
        .map(|a| SocketAddr::new(IpAddr::V4(*a), 53))
        .collect();
    dns.extend(smtp_endpoints());
    run::ports_free(&dns)?;
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    build::generate(dir, now, month)?;
    std::fs::write(dir.join(MONTH_FILE), format!("{month}\n"))?;
    run::start_all(dir)?;
    // Ready only when the resolver validates the private root and every SMTP server listens.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let dns_ok = resolver_check().await;
        let smtp_down: Vec<SocketAddr> = smtp_endpoints()
            .into_iter()
            .filter(|a| {
                std::net::TcpStream::connect_timeout(a, Duration::from_millis(300)).is_err()
            })
            .collect();
        if dns_ok.is_ok() && smtp_down.is_empty() {
            return Ok(true);
        }
        if Instant::now() > deadline {
            let st = status(dir).await?;
            let dead: Vec<String> = st
                .processes
                .iter()
                .filter(|(_, up)| !up)
                .map(|(p, _)| p.name.clone())
                .collect();
            run::stop_all(dir)?;
            bail!(
                "the lab did not become ready within 30 s: resolver: {}; SMTP not listening: \
                 {:?}; processes that died: {:?}. Logs are under {}",
                dns_ok.err().unwrap_or_else(|| "ok".into()),
                smtp_down,
                dead,
                dir.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Stops every process the lab started; returns their names.
pub fn down(dir: &Path) -> Result<Vec<String>> {
    run::stop_all(dir)
}
