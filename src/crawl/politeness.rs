//! Politeness: who the crawl never touches, and how gently it touches the rest.
//!
//! A survey connects to hundreds of thousands of other people's mail servers. Each of them
//! sees at most one session per SNI from us per snapshot, never more than
//! `sessions_per_address` at a time, never faster than the per-provider rate, with an EHLO
//! name that says who we are and a QUIT after the handshake; and anyone who asks is left out
//! entirely (the opt-out file).

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context, Result};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use hickory_proto::rr::Name;
use tokio::sync::Semaphore;

use crate::names::{display, normalize_domain, provider_of};
use crate::smtp;
use crate::survey::{address_policy, CheckContext, Probed, Prober};

use super::memo::Memo;
use super::progress::Tally;

/// The opt-out list: domain names (each covers its subdomains, for domains and MX hosts
/// alike) and address blocks (CIDR) that the crawl must never query or connect to.
///
/// Exists because a polite scanner honours requests to be left alone, at every stage: an
/// opted-out domain is never looked up and is not in the snapshot (only counted); an
/// opted-out MX host or address is never connected to (its addresses show as `skipped`).
#[derive(Debug, Default, Clone)]
pub struct OptOut {
    names: std::collections::HashSet<String>,
    nets: Vec<(IpAddr, u8)>,
    /// A digest of the file, so a resumed crawl can tell the list changed.
    pub fingerprint: String,
}

impl OptOut {
    /// Reads an opt-out file: one entry a line (`example.com`, `192.0.2.0/24`, `2001:db8::/32`,
    /// a bare address), `#` comments. A bad line stops the crawl with file:line, before any
    /// query: a typo must not silently survey someone who asked to be left alone.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the opt-out file {}", path.display()))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses opt-out text (see [`OptOut::load`]); `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self> {
        let mut o = OptOut {
            fingerprint: hex::encode(
                &ring::digest::digest(&ring::digest::SHA256, text.as_bytes()).as_ref()[..16],
            ),
            ..OptOut::default()
        };
        for (i, line) in text.lines().enumerate() {
            let entry = line.split('#').next().unwrap_or("").trim();
            if entry.is_empty() {
                continue;
            }
            let at = || format!("{file}:{}", i + 1);
            if let Some((addr, len)) = entry.split_once('/') {
                let ip: IpAddr = addr
                    .parse()
                    .with_context(|| format!("{}: bad address in {entry:?}", at()))?;
                let len: u8 = len
                    .parse()
                    .ok()
                    .filter(|l| *l <= if ip.is_ipv4() { 32 } else { 128 })
                    .with_context(|| format!("{}: bad prefix length in {entry:?}", at()))?;
                o.nets.push((ip, len));
            } else if let Ok(ip) = entry.parse::<IpAddr>() {
                o.nets.push((ip, if ip.is_ipv4() { 32 } else { 128 }));
            } else {
                match normalize_domain(entry) {
                    Ok(n) => {
                        o.names.insert(display(&n));
                    }
                    Err(e) => bail!("{}: bad opt-out entry {entry:?}: {e}", at()),
                }
            }
        }
        Ok(o)
    }

    /// Whether `name` (a domain or MX host, without trailing dot) or a parent is opted out.
    pub fn covers_name(&self, name: &str) -> bool {
        if self.names.is_empty() {
            return false;
        }
        let name = name.strip_suffix('.').unwrap_or(name);
        let mut rest = name;
        loop {
            if self.names.contains(rest) {
                return true;
            }
            match rest.split_once('.') {
                Some((_, parent)) => rest = parent,
                None => return false,
            }
        }
    }

    /// Whether `ip` is inside an opted-out block.
    pub fn covers_address(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|(net, len)| in_prefix(ip, *net, *len))
    }

    /// Entries in the list.
    pub fn len(&self) -> usize {
        self.names.len() + self.nets.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn in_prefix(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// The SMTP limits of a crawl.
#[derive(Debug, Clone)]
pub struct SmtpLimits {
    /// SMTP sessions in flight, in all.
    pub sessions: usize,
    /// SMTP sessions in flight to one address.
    pub sessions_per_address: usize,
    /// New SMTP sessions per second to one provider (registrable domain of the MX host).
    pub per_provider_rate: Option<NonZeroU32>,
}

/// The crawl's prober: the memo table of SMTP sessions plus every politeness limit.
///
/// Exists so the decision procedure ([`crate::survey::check_host`]) stays the same as for
/// `check` while the crawl decides when, whether and how often a server is contacted.
pub struct CrawlProber {
    memo: Memo<(IpAddr, String), Probed>,
    sessions: Semaphore,
    per_address: Mutex<HashMap<IpAddr, Arc<Semaphore>>>,
    sessions_per_address: usize,
    provider_rate: Option<DefaultKeyedRateLimiter<String>>,
    optout: Arc<OptOut>,
    tally: Arc<Tally>,
}

impl CrawlProber {
    /// A prober with these limits and this opt-out list.
    pub fn new(limits: &SmtpLimits, optout: Arc<OptOut>, tally: Arc<Tally>) -> Self {
        CrawlProber {
            memo: Memo::default(),
            sessions: Semaphore::new(limits.sessions.max(1)),
            per_address: Mutex::new(HashMap::new()),
            sessions_per_address: limits.sessions_per_address.max(1),
            provider_rate: limits
                .per_provider_rate
                .map(|r| RateLimiter::keyed(Quota::per_second(r))),
            optout,
            tally,
        }
    }

    /// Sessions recorded (probes run, memoised).
    pub fn sessions_run(&self) -> usize {
        self.memo.len()
    }

    async fn session(&self, ctx: &CheckContext, host: &Name, ip: IpAddr, sni: &str) -> Probed {
        if let Some(limiter) = &self.provider_rate {
            let provider = provider_of(&display(host)).unwrap_or_else(|| display(host));
            limiter.until_key_ready(&provider).await;
            // Keyed limiters keep one entry per key; forget idle providers now and then.
            if limiter.len() > 100_000 {
                limiter.retain_recent();
            }
        }
        let per_address = {
            let mut map = self.per_address.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(ip)
                .or_insert_with(|| Arc::new(Semaphore::new(self.sessions_per_address)))
                .clone()
        };
        let result = {
            // Semaphores are never closed, so acquiring cannot fail; if it did, probing
            // without the permit would break a promise, so record a skip instead.
            let (Ok(_a), Ok(_s)) = (per_address.acquire().await, self.sessions.acquire().await)
            else {
                return Probed::Skipped("not probed: the crawl is shutting down".into());
            };
            self.tally.sessions_active.fetch_add(1, Ordering::Relaxed);
            let r = smtp::probe(
                std::net::SocketAddr::new(ip, ctx.smtp_port),
                sni,
                &ctx.probe,
            )
            .await;
            self.tally.sessions_active.fetch_sub(1, Ordering::Relaxed);
            r
        };
        {
            let mut map = self.per_address.lock().unwrap_or_else(|e| e.into_inner());
            if Arc::strong_count(&per_address) == 2 {
                map.remove(&ip);
            }
        }
        self.tally.probes.fetch_add(1, Ordering::Relaxed);
        Probed::Done(Arc::new(result))
    }
}

impl Prober for CrawlProber {
    async fn probe(&self, ctx: &CheckContext, host: &Name, ip: IpAddr, sni: &str) -> Probed {
        if let Some(why) = address_policy(ctx, ip) {
            return Probed::Skipped(why);
        }
        if self.optout.covers_name(&display(host)) {
            return Probed::Skipped("not probed: the MX host is on the opt-out list".into());
        }
        if self.optout.covers_address(ip) {
            return Probed::Skipped("not probed: the address is on the opt-out list".into());
        }
        let key = (ip, sni.to_string());
        self.memo
            .get_or_init(&key, || self.session(ctx, host, ip, sni))
            .await
            .0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opt_out_entries() {
        let o = OptOut::parse(
            "# ask us\nExample.COM\n192.0.2.0/24 # lab\n2001:db8::/32\n198.51.100.7\n",
            "optout.txt",
        )
        .unwrap();
        assert_eq!(o.len(), 4);
        assert!(o.covers_name("example.com"));
        assert!(o.covers_name("mx1.example.com."));
        assert!(!o.covers_name("notexample.com"));
        assert!(!o.covers_name("com"));
        assert!(o.covers_address("192.0.2.200".parse().unwrap()));
        assert!(!o.covers_address("192.0.3.1".parse().unwrap()));
        assert!(o.covers_address("2001:db8::25".parse().unwrap()));
        assert!(o.covers_address("198.51.100.7".parse().unwrap()));
        assert!(!o.covers_address("198.51.100.8".parse().unwrap()));
    }

    #[test]
    fn opt_out_errors_name_the_line() {
        let e = OptOut::parse("ok.example\n10.0.0.0/33\n", "o.txt").unwrap_err();
        assert!(
            e.to_string().starts_with("o.txt:2: bad prefix length"),
            "{e}"
        );
        let e = OptOut::parse("bad name!\n", "o.txt").unwrap_err();
        assert!(
            e.to_string().starts_with("o.txt:1: bad opt-out entry"),
            "{e}"
        );
        let e = OptOut::parse("300.1.2.3/8\n", "o.txt").unwrap_err();
        assert!(e.to_string().starts_with("o.txt:1: bad address"), "{e}");
    }

    #[test]
    fn prefixes() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(in_prefix(ip("10.1.2.3"), ip("10.0.0.0"), 8));
        assert!(in_prefix(ip("1.2.3.4"), ip("0.0.0.0"), 0));
        assert!(!in_prefix(ip("1.2.3.4"), ip("::"), 0));
        assert!(in_prefix(ip("2001:db8::1"), ip("2001:db8::"), 32));
        assert!(!in_prefix(ip("2001:db9::1"), ip("2001:db8::"), 32));
    }
}
