//! The DNS client benchmark: how fast the transport pushes a query workload through one server.
//!
//! Exists so the claim "the client is never the bottleneck" is a measured number: it runs the
//! same query file `dnsperf` reads (`NAME TYPE` per line), with the same cap on queries in
//! flight, and reports completed queries per second, CPU seconds per 100k queries and peak
//! memory. `scripts/bench-dns` runs both side by side against the same servers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use hickory_proto::rr::{Name, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use serde::Serialize;

use super::client::{Resolver, StatsSnapshot};

/// One benchmark run's figures.
#[derive(Debug, Serialize)]
pub struct BenchReport {
    /// Queries issued (each counted once, whatever its retries).
    pub queries: u64,
    /// Queries that got an answer (any RCODE).
    pub completed: u64,
    /// Queries that ended in a failure (timeout, network error).
    pub failed: u64,
    /// Wall time of the run, seconds.
    pub elapsed_s: f64,
    /// Completed queries per second.
    pub qps: f64,
    /// User CPU seconds of this process during the run.
    pub cpu_user_s: f64,
    /// System CPU seconds of this process during the run.
    pub cpu_sys_s: f64,
    /// (user + system) CPU seconds per 100,000 completed queries.
    pub cpu_s_per_100k: f64,
    /// Peak resident memory of the process, MiB.
    pub max_rss_mib: f64,
    /// Most queries in flight allowed.
    pub in_flight: usize,
    /// The transport's counters.
    pub transport: StatsSnapshot,
}

/// Reads a dnsperf-style query file: `NAME TYPE` per line, `#` comments and blank lines skipped.
pub fn read_queries(text: &str) -> Result<Vec<(Name, RecordType)>> {
    let mut out = Vec::new();
    let mut wire = Vec::with_capacity(256);
    // Byte-wise splitting (lines, then ASCII whitespace): the `str` pattern machinery cost
    // more per line than the name itself.
    let ws = |b: &u8| b.is_ascii_whitespace();
    for (i, line) in text.split('\n').enumerate() {
        let line = line.trim_ascii();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut w = line.as_bytes().split(ws).filter(|t| !t.is_empty());
        // Splitting at ASCII bytes keeps UTF-8 boundaries.
        let mut word = || w.next().and_then(|t| std::str::from_utf8(t).ok());
        let (Some(name), Some(rtype)) = (word(), word()) else {
            bail!("line {}: expected `NAME TYPE`, got {line:?}", i + 1);
        };
        let name = match plain_name(name, &mut wire) {
            Some(n) => n,
            None => {
                let fq = if name.ends_with('.') {
                    name.to_string()
                } else {
                    format!("{name}.")
                };
                Name::from_ascii(&fq)
                    .with_context(|| format!("line {}: bad name {name:?}", i + 1))?
            }
        };
        let rtype = match rtype {
            "A" | "a" => RecordType::A,
            "AAAA" | "aaaa" => RecordType::AAAA,
            "MX" | "mx" => RecordType::MX,
            "TLSA" | "tlsa" => RecordType::TLSA,
            other => other
                .to_ascii_uppercase()
                .parse()
                .with_context(|| format!("line {}: bad type {other:?}", i + 1))?,
        };
        out.push((name, rtype));
    }
    if out.is_empty() {
        bail!("the query file holds no query");
    }
    Ok(out)
}

/// The fully qualified name for a name of plain host-name characters (letters, digits, `-`,
/// `_`, `*`), decoded from its wire form: a query file holds hundreds of thousands of names,
/// and the general presentation-format parser (escapes, IDNA checks) costs more per name
/// than a query does. `None` sends anything else to that parser.
fn plain_name(text: &str, wire: &mut Vec<u8>) -> Option<Name> {
    let text = text.strip_suffix('.').unwrap_or(text).as_bytes();
    if text.is_empty() || text.len() > 253 {
        return None;
    }
    wire.clear();
    wire.push(0);
    let mut label_start = 0;
    for &b in text {
        if b == b'.' {
            let len = wire.len() - label_start - 1;
            if len == 0 || len > 63 {
                return None;
            }
            wire[label_start] = len as u8;
            label_start = wire.len();
            wire.push(0);
        } else if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'*') {
            wire.push(b);
        } else {
            return None;
        }
    }
    let len = wire.len() - label_start - 1;
    if len == 0 || len > 63 {
        return None;
    }
    wire[label_start] = len as u8;
    wire.push(0);
    Name::read(&mut BinDecoder::new(wire)).ok()
}

fn rusage() -> (f64, f64, f64) {
    // SAFETY: getrusage fills the struct we pass; zeroed is a valid initial value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (
        secs(ru.ru_utime),
        secs(ru.ru_stime),
        ru.ru_maxrss as f64 / 1024.0,
    )
}

/// Sends `count` queries, cycling through `queries`, with at most `in_flight` outstanding.
pub async fn run(
    resolver: Arc<Resolver>,
    queries: &[(Name, RecordType)],
    count: u64,
    in_flight: usize,
) -> BenchReport {
    let (u0, s0, _) = rusage();
    let before = resolver.stats();
    let started = Instant::now();
    let n = queries.len() as u64;
    let next = AtomicU64::new(0);
    // A fixed pool of `in_flight` workers, each asking one query after another (the way a
    // survey's workers drive the client), rather than one new future per query.
    let workers = (0..count.min(in_flight.max(1) as u64)).map(|_| {
        let (resolver, next) = (&resolver, &next);
        // Outside tokio's cooperative budget: thousands of futures polled from one task
        // would otherwise exhaust it every tick and spin re-waking each other.
        tokio::task::unconstrained(async move {
            let (mut ok, mut bad) = (0u64, 0u64);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break (ok, bad);
                }
                let (name, rtype) = &queries[(i % n) as usize];
                match resolver.query(name, *rtype).await {
                    Ok(_) => ok += 1,
                    Err(_) => bad += 1,
                }
            }
        })
    });
    let (completed, failed) = futures::future::join_all(workers)
        .await
        .into_iter()
        .fold((0, 0), |(ok, bad), (o, b)| (ok + o, bad + b));
    let elapsed = started.elapsed().as_secs_f64();
    let (u1, s1, rss) = rusage();
    let after = resolver.stats();
    let cpu = (u1 - u0) + (s1 - s0);
    BenchReport {
        queries: count,
        completed,
        failed,
        elapsed_s: elapsed,
        qps: completed as f64 / elapsed.max(1e-9),
        cpu_user_s: u1 - u0,
        cpu_sys_s: s1 - s0,
        cpu_s_per_100k: if completed > 0 {
            cpu * 100_000.0 / completed as f64
        } else {
            0.0
        },
        max_rss_mib: rss,
        in_flight,
        transport: after.since(&before),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_files() {
        let q = read_queries("# c\nexample.com A\n\n_25._tcp.mx.example. tlsa\n").unwrap();
        assert_eq!(q.len(), 2);
        assert_eq!(q[1].1, RecordType::TLSA);
        assert!(read_queries("example.com\n").is_err());
        assert!(read_queries("example.com NOPE\n").is_err());
        assert!(read_queries("# only\n").is_err());
        // The fast path and the general parser agree.
        for n in [
            "Mx1.Example.COM",
            "_25._tcp.mx.example.",
            "*.w.test",
            "a\\.b.test",
            "x..y",
        ] {
            let fast = plain_name(n, &mut Vec::new());
            let slow = Name::from_ascii(if n.ends_with('.') {
                n.to_string()
            } else {
                format!("{n}.")
            });
            match fast {
                Some(f) => {
                    let s = slow.unwrap();
                    assert_eq!(f, s, "{n}");
                    assert_eq!(f.to_ascii(), s.to_ascii(), "{n}");
                    assert!(f.is_fqdn(), "{n}");
                }
                None => assert!(n.contains('\\') || slow.is_err(), "{n}"),
            }
        }
    }
}
