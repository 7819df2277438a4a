//! The DNS client benchmark: how fast the transport pushes a query workload through one server.
//!
//! Exists so the claim "the client is never the bottleneck" is a measured number: it runs the
//! same query file `dnsperf` reads (`NAME TYPE` per line), with the same cap on queries in
//! flight, and reports completed queries per second, CPU seconds per 100k queries and peak
//! memory. `scripts/bench-dns` runs both side by side against the same servers.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use futures::stream::{self, StreamExt};
use hickory_proto::rr::{Name, RecordType};
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
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut w = line.split_whitespace();
        let (Some(name), Some(rtype)) = (w.next(), w.next()) else {
            bail!("line {}: expected `NAME TYPE`, got {line:?}", i + 1);
        };
        let fq = if name.ends_with('.') {
            name.to_string()
        } else {
            format!("{name}.")
        };
        let name =
            Name::from_ascii(&fq).with_context(|| format!("line {}: bad name {name:?}", i + 1))?;
        let rtype: RecordType = rtype
            .to_ascii_uppercase()
            .parse()
            .with_context(|| format!("line {}: bad type {rtype:?}", i + 1))?;
        out.push((name, rtype));
    }
    if out.is_empty() {
        bail!("the query file holds no query");
    }
    Ok(out)
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
    let (completed, failed) = stream::iter(0..count)
        .map(|i| {
            let resolver = resolver.clone();
            let (name, rtype) = &queries[(i % n) as usize];
            // Outside tokio's cooperative budget: thousands of futures polled from one task
            // would otherwise exhaust it every tick and spin re-waking each other.
            tokio::task::unconstrained(async move { resolver.query(name, *rtype).await.is_ok() })
        })
        .buffer_unordered(in_flight.max(1))
        .fold((0u64, 0u64), |(ok, bad), r| async move {
            if r {
                (ok + 1, bad)
            } else {
                (ok, bad + 1)
            }
        })
        .await;
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
    }
}
