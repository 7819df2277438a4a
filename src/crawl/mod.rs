//! The crawl: every name of the zone lists through the RFC 7672 decision procedure, into a
//! Parquet snapshot — polite, bounded, resumable.
//!
//! ```text
//! input thread ──(index, name)×256──▶ dispatcher: domain futures ──DomainDone×256──▶ writer
//!  (zonelist, dedupe,     bounded      (≤ domains in flight,          bounded      (parts,
//!   opt-out, parts)       channel       ≤ open parts; MX → hosts      channel       atomic)
//!                                       (memo) → verdict → row)
//!                                              │ first domain of a host
//!                                              ▼
//!                                       host stage task (DNS, SMTP probes: memo, limits)
//! ```
//!
//! * [`input`] numbers the distinct names and cuts them into parts of `part_size`.
//! * A dispatcher (one per `--threads`, each on a current-thread runtime with DNS sockets of its
//!   own; the first reads the input and passes batches on) drives each domain as a future of
//!   its own task: [`crate::survey::mx_stage`],
//!   then for each MX host the memoised [`crate::survey::check_host`] (one resolution per
//!   host per snapshot, on a task of its own), whose SMTP sessions
//!   go through [`politeness::CrawlProber`] (one session per address and SNI per snapshot,
//!   global, per-address and per-provider limits, the opt-out list), and finally the pure
//!   [`crate::survey::judge_domain_row`] (`check`'s [`crate::survey::judge_domain`] without
//!   the per-host detail). `check` runs the same procedure for one domain.
//! * [`parts`] commits each part (hosts, probes, then domains) atomically, so a crash loses at
//!   most the parts in progress; a restart with the same command finds the committed parts,
//!   reloads the memo tables from them and crawls the rest, and the finished snapshot has
//!   every domain exactly once.
//!
//! Memory: bounded by the domains in flight and the open parts, plus the memo tables, which
//! grow with the distinct MX hosts and SMTP sessions (not with the domains). The exact
//! de-duplication across sources works on disk, one hash bucket at a time ([`input`]).

pub mod input;
pub mod memo;
pub mod parts;
pub mod politeness;
pub mod progress;
pub mod records;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use hickory_proto::rr::Name;
use serde::Serialize;
use tokio::sync::{mpsc, watch};

use crate::dns::{selfcheck, Resolver, ResolverConfig};
use crate::names::name_from_canonical;
use crate::smtp::ProbeConfig;
use crate::snapshot::{self, HostRow, ProbeRow, RunInfo, Table};
use crate::survey::{
    check_host, judge_domain_row, mx_stage, CheckContext, DomainJudgement, DomainReport,
    HostSummary, MxHost, MAX_MX_HOSTS,
};
use crate::verdict::TAXONOMY_VERSION;
use crate::zonelist::{shard::Shard, Coverage, Format, NameReader};

use memo::Memo;
use parts::{DomainDone, WriterMsg};
use politeness::{CrawlProber, OptOut, SmtpLimits};
use progress::{Progress, Tally};

/// Everything a crawl is told.
///
/// Exists so the command line, the lab tests and the scale benchmark start the same crawl
/// with explicit settings.
#[derive(Debug, Clone)]
pub struct CrawlConfig {
    /// Zone files or lists (`-` for stdin).
    pub inputs: Vec<String>,
    /// Input format.
    pub format: Format,
    /// `$ORIGIN` for zones without SOA or `$ORIGIN`.
    pub origin: Option<String>,
    /// This machine's shard.
    pub shard: Option<Shard>,
    /// Output root (`output/`).
    pub out: PathBuf,
    /// Snapshot date `YYYY-MM-DD`; `None` = resume the latest unfinished snapshot of the same
    /// crawl, else today (UTC).
    pub snapshot: Option<String>,
    /// Start the snapshot over, deleting what an earlier run wrote.
    pub fresh: bool,
    /// The resolver(s).
    pub resolver: ResolverConfig,
    /// Self-check names: a signed one and a bogus one.
    pub selfcheck: (Name, Name),
    /// SMTP probe settings (EHLO name, timeouts).
    pub probe: ProbeConfig,
    /// Judge certificates at this unix time (default: when the snapshot was started).
    pub at: Option<i64>,
    /// Probe loopback addresses (the lab).
    pub allow_loopback: bool,
    /// Also probe MX hosts without TLSA.
    pub probe_all: bool,
    /// SMTP politeness limits.
    pub smtp: SmtpLimits,
    /// Domains in progress at once (in all, split over the dispatchers).
    pub domains_in_flight: usize,
    /// Dispatcher threads: each drives its share of the domains on a runtime of its own,
    /// with DNS sockets of its own ([`Resolver::sibling`]) under the shared limits.
    pub dispatchers: usize,
    /// Domains per part.
    pub part_size: u64,
    /// Parts allowed open (in progress) at once.
    pub max_open_parts: u64,
    /// The opt-out file.
    pub optout: Option<PathBuf>,
    /// Progress bars on a terminal.
    pub progress_bars: bool,
    /// Interval of the one-line summaries without bars.
    pub progress_interval: Duration,
}

/// What a crawl did, for the closing message.
#[derive(Debug, Serialize)]
pub struct CrawlSummary {
    /// The snapshot directory.
    pub dir: PathBuf,
    /// `run.json` as written.
    pub run: RunInfo,
    /// Whether this run resumed an unfinished snapshot.
    pub resumed: bool,
    /// Domains crawled by this run.
    pub domains_this_run: u64,
    /// MX hosts resolved by this run.
    pub hosts_this_run: u64,
    /// SMTP sessions opened by this run.
    pub sessions_this_run: u64,
    /// Wall time of this run.
    pub seconds: f64,
}

/// A host as the memo keeps it: the domain-independent summary, plus its rows until the
/// domain that resolved it hands them to the writer.
struct HostEntry {
    summary: HostSummary,
    /// The judgement of a domain whose only MX host this is, unless it depends on the domain
    /// ([`HostSummary::depends_on_domain`]): most domains have one MX host, and judging each
    /// of them afresh was 2% of a crawl's CPU.
    alone: Option<DomainJudgement>,
    rows: Mutex<Option<(HostRow, Vec<ProbeRow>)>>,
}

impl HostEntry {
    fn new(summary: HostSummary, rows: Option<(HostRow, Vec<ProbeRow>)>) -> HostEntry {
        let alone = (!summary.depends_on_domain())
            .then(|| judge_domain_row(&summary.name, &[(true, &summary)]));
        HostEntry {
            summary,
            alone,
            rows: Mutex::new(rows),
        }
    }
}

/// What the domains of one dispatcher share: its DNS client, and the crawl's memo tables,
/// SMTP limits and counters (the same for every dispatcher, so each host is resolved and each
/// address probed once however the domains are split).
struct Shared {
    ctx: CheckContext,
    prober: Arc<CrawlProber>,
    /// By the host's name as [`display`] prints it (lower case, no trailing dot): each domain
    /// looks its hosts up here, and comparing and hashing that text is cheaper than hickory's
    /// case-insensitive walk over a `Name`'s labels (3–4% of a warm crawl's samples).
    hosts: Arc<Memo<String, Arc<HostEntry>>>,
    optout: Arc<OptOut>,
    sources: Arc<[String]>,
    tally: Arc<Tally>,
}

impl Shared {
    /// The same for a dispatcher on another thread: a sibling DNS client on that thread's
    /// runtime (call it there), everything else shared.
    fn sibling(&self) -> Result<Shared> {
        let c = &self.ctx;
        Ok(Shared {
            ctx: CheckContext {
                resolver: c.resolver.sibling().map_err(|e| anyhow!(e))?,
                probe: c.probe.clone(),
                at: c.at,
                allow_loopback: c.allow_loopback,
                smtp_port: c.smtp_port,
                probe_without_tlsa: c.probe_without_tlsa,
            },
            prober: self.prober.clone(),
            hosts: self.hosts.clone(),
            optout: self.optout.clone(),
            sources: self.sources.clone(),
            tally: self.tally.clone(),
        })
    }
}

/// Where the input stage spills the names between its two passes, inside the snapshot being
/// written (the leading `_` keeps it out of Hive-style readers); removed when the input ends.
pub const SPILL_DIR: &str = "_spill";

/// The snapshot directory of a crawl.
pub fn snapshot_dir(out: &Path, date: &str, shard: Option<Shard>) -> PathBuf {
    match shard {
        // `_shards` is skipped by Spark/Hadoop and by `snapshot=*` globs, so shard outputs
        // under the same root never mix with merged snapshots.
        Some(s) => snapshot::snapshot_dir(&shard_root(out, s), date),
        None => snapshot::snapshot_dir(out, date),
    }
}

/// Where shard K of N writes under an output root.
pub fn shard_root(out: &Path, s: Shard) -> PathBuf {
    out.join("_shards").join(s.to_string().replace('/', "-of-"))
}

fn today() -> String {
    let d = time::OffsetDateTime::now_utc().date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

fn rfc3339_now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Checks a `YYYY-MM-DD` date.
pub fn check_date(d: &str) -> Result<()> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(d, &fmt)
        .map(|_| ())
        .map_err(|e| anyhow!("bad snapshot date {d:?}: {e} (expected YYYY-MM-DD)"))
}

/// A digest of everything that decides which names fall in which part and how they are
/// judged: a resumed crawl must have the same, or its parts would not fit together.
fn fingerprint(cfg: &CrawlConfig, optout: &OptOut) -> String {
    let files: Vec<(String, u64, i64)> = cfg
        .inputs
        .iter()
        .map(|f| {
            let m = std::fs::metadata(f).ok();
            let mtime = m
                .as_ref()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs() as i64);
            (f.clone(), m.map_or(0, |m| m.len()), mtime)
        })
        .collect();
    let text = format!(
        "{files:?}|{}|{:?}|{:?}|{:?}|{}|{}|{}|{}",
        input::NUMBERING,
        cfg.format,
        cfg.origin,
        cfg.shard.map(|s| s.to_string()),
        cfg.part_size,
        optout.fingerprint,
        cfg.allow_loopback,
        cfg.probe_all
    );
    hex::encode(&ring::digest::digest(&ring::digest::SHA256, text.as_bytes()).as_ref()[..16])
}

/// Picks the snapshot directory: the date given, else the latest unfinished snapshot of this
/// same crawl (so "run the same command again" resumes even after midnight), else today.
fn choose_dir(cfg: &CrawlConfig, fp: &str) -> Result<(String, PathBuf)> {
    if let Some(d) = &cfg.snapshot {
        check_date(d)?;
        return Ok((d.clone(), snapshot_dir(&cfg.out, d, cfg.shard)));
    }
    let root = match cfg.shard {
        Some(s) => shard_root(&cfg.out, s),
        None => cfg.out.clone(),
    };
    if root.is_dir() {
        for e in snapshot::catalogue(&root)?.into_iter().rev() {
            if let Some(run) = &e.run {
                if !run.complete && run.settings.get("fingerprint").map(String::as_str) == Some(fp)
                {
                    return Ok((e.date.clone(), e.dir.clone()));
                }
            }
        }
    }
    let d = today();
    Ok((d.clone(), snapshot_dir(&cfg.out, &d, cfg.shard)))
}

fn settings(cfg: &CrawlConfig, fp: &str, optout: &OptOut) -> BTreeMap<String, String> {
    let mut s = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        s.insert(k.to_string(), v);
    };
    put("fingerprint", fp.to_string());
    put("part_size", cfg.part_size.to_string());
    put("domains_in_flight", cfg.domains_in_flight.to_string());
    put("threads", cfg.dispatchers.to_string());
    put("dns_max_in_flight", cfg.resolver.max_in_flight.to_string());
    put(
        "dns_timeout_ms",
        cfg.resolver.timeout.as_millis().to_string(),
    );
    put("dns_retries", cfg.resolver.retries.to_string());
    put(
        "dns_qps",
        cfg.resolver
            .qps
            .map_or("unlimited".into(), |q| q.to_string()),
    );
    put("smtp_sessions", cfg.smtp.sessions.to_string());
    put(
        "smtp_sessions_per_address",
        cfg.smtp.sessions_per_address.to_string(),
    );
    put(
        "smtp_per_provider_rate",
        cfg.smtp
            .per_provider_rate
            .map_or("unlimited".into(), |r| format!("{r}/s")),
    );
    put("ehlo_name", cfg.probe.ehlo_name.clone());
    put("probe_all_hosts", cfg.probe_all.to_string());
    put("allow_loopback", cfg.allow_loopback.to_string());
    put("opt_out_entries", optout.len().to_string());
    s
}

/// Runs (or resumes) a crawl and writes its snapshot.
pub async fn run(cfg: CrawlConfig) -> Result<CrawlSummary> {
    let started_at = Instant::now();
    if cfg.part_size == 0 {
        bail!("--part-size must be at least 1");
    }
    if cfg.inputs.iter().filter(|f| f.as_str() == "-").count() > 1 {
        bail!("stdin (-) given more than once");
    }
    // Every input is opened (and its head checked) before the first query.
    let readers = cfg
        .inputs
        .iter()
        .map(|f| NameReader::open(f, cfg.format, cfg.origin.as_deref(), cfg.shard))
        .collect::<Result<Vec<_>, _>>()?;
    let optout = Arc::new(match &cfg.optout {
        Some(p) => OptOut::load(p)?,
        None => OptOut::default(),
    });
    let resolver = Resolver::new(cfg.resolver.clone()).map_err(|e| anyhow!(e))?;
    selfcheck(&resolver, &cfg.selfcheck.0, &cfg.selfcheck.1).await?;

    let fp = fingerprint(&cfg, &optout);
    let (date, dir) = choose_dir(&cfg, &fp)?;
    let mut previous = snapshot::read_run(&dir)?;
    if cfg.fresh && dir.exists() {
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("cannot remove {}", dir.display()))?;
        previous = None;
    }
    if let Some(p) = &previous {
        if p.complete {
            return Ok(CrawlSummary {
                dir,
                run: p.clone(),
                resumed: false,
                domains_this_run: 0,
                hosts_this_run: 0,
                sessions_this_run: 0,
                seconds: started_at.elapsed().as_secs_f64(),
            });
        }
        if p.settings.get("fingerprint") != Some(&fp) {
            bail!(
                "{} holds an unfinished snapshot of a different crawl (other inputs, shard, part \
                 size or opt-out list); rerun that crawl to finish it, or pass --fresh to start \
                 this one over",
                dir.display()
            );
        }
    }
    for t in Table::ALL {
        std::fs::create_dir_all(dir.join(t.name()))
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let done = parts::recover(&dir)?;
    let resumed = previous.is_some() && !done.is_empty();
    let at = cfg
        .at
        .or(previous.as_ref().map(|p| p.judged_at))
        .unwrap_or_else(|| time::OffsetDateTime::now_utc().unix_timestamp());
    let mut run = RunInfo {
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        schema_version: snapshot::SCHEMA_VERSION,
        taxonomy_version: TAXONOMY_VERSION,
        snapshot: date.clone(),
        shard: cfg.shard.map(|s| s.to_string()),
        resolvers: cfg.resolver.servers.iter().map(|s| s.to_string()).collect(),
        judged_at: at,
        started: previous
            .as_ref()
            .map(|p| p.started.clone())
            .unwrap_or_else(rfc3339_now),
        settings: settings(&cfg, &fp, &optout),
        ..RunInfo::default()
    };
    snapshot::write_run(&dir, &run)?;

    let tally = Arc::new(Tally::default());
    let shared = Arc::new(Shared {
        ctx: CheckContext {
            resolver,
            probe: cfg.probe.clone(),
            at,
            allow_loopback: cfg.allow_loopback,
            smtp_port: 25,
            probe_without_tlsa: cfg.probe_all,
        },
        prober: Arc::new(CrawlProber::new(&cfg.smtp, optout.clone(), tally.clone())),
        hosts: Arc::new(Memo::default()),
        optout: optout.clone(),
        sources: cfg.inputs.clone().into(),
        tally: tally.clone(),
    });
    preload(&shared, &dir, &done)?;

    let progress = Progress::start(tally.clone(), cfg.progress_bars, cfg.progress_interval);
    if resumed {
        progress.println(&format!(
            "resuming {}: {} parts already written",
            dir.display(),
            done.len()
        ));
    }
    // In batches of up to input::NAME_BATCH names.
    let (in_tx, in_rx) = mpsc::channel(16);
    let reader = input::spawn(
        readers,
        dir.join(SPILL_DIR),
        cfg.part_size,
        input::AHEAD_NAMES,
        done.clone(),
        optout.clone(),
        tally.clone(),
        in_tx,
    );
    // In batches of up to WRITER_BATCH finished domains.
    let (w_tx, w_rx) = mpsc::channel(64);
    let (low_tx, low_rx) = watch::channel(0u64);
    let writer = tokio::spawn(parts::run(
        dir.clone(),
        cfg.part_size,
        done.clone(),
        w_rx,
        low_tx,
        tally.clone(),
    ));

    let dispatchers = cfg.dispatchers.max(1);
    let limits = Limits {
        // Split evenly, rounded up: the total may exceed the setting by a few domains.
        domains_in_flight: cfg.domains_in_flight.max(1).div_ceil(dispatchers),
        dns_in_flight: cfg.resolver.max_in_flight.max(1).div_ceil(dispatchers),
        part_size: cfg.part_size,
        open_parts: cfg.max_open_parts.max(1),
    };
    let mut helpers = Vec::new();
    let mut helper_threads = Vec::new();
    for k in 1..dispatchers {
        let (h_tx, h_rx) = mpsc::channel(HELPER_BATCHES);
        let (shared, low_rx, w_tx) = (shared.clone(), low_rx.clone(), w_tx.clone());
        let thread = std::thread::Builder::new()
            .name(format!("dispatch-{k}"))
            .spawn(move || -> Result<()> {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                rt.block_on(async move {
                    let shared = Arc::new(shared.sibling()?);
                    let mut helper = Dispatch {
                        shared: &shared,
                        limits,
                        progress: None,
                        in_rx: h_rx,
                        helpers: Vec::new(),
                        low_rx,
                        w_tx,
                    };
                    helper.run().await;
                    Ok(())
                })
            })
            .context("cannot start a dispatcher thread")?;
        helpers.push(h_tx);
        helper_threads.push(thread);
    }
    let mut dispatch = Dispatch {
        shared: &shared,
        limits,
        progress: Some(&progress),
        in_rx,
        helpers,
        low_rx,
        w_tx,
    };
    let (coverage, distinct, failure) = dispatch.run().await;
    drop(dispatch);
    for t in helper_threads {
        // Joined off this thread: the writer runs here, and a helper may still be handing
        // it rows.
        match tokio::task::spawn_blocking(move || t.join()).await {
            Ok(Ok(Ok(()))) => {}
            // Whatever it was given and did not finish is missing from its parts, which
            // the row count below reports; a rerun crawls them.
            Ok(Ok(Err(e))) => progress.println(&format!("warning: a dispatcher failed: {e:#}")),
            Ok(Err(_)) | Err(_) => progress.println("warning: a dispatcher thread panicked"),
        }
    }
    let _ = reader.join();
    let written = writer.await.context("the snapshot writer panicked")?;
    progress.finish();
    if let Some(e) = failure {
        return Err(e.context(format!(
            "the snapshot in {} is incomplete; fix the input and rerun the same command to \
             finish it",
            dir.display()
        )));
    }
    written?;
    let coverage = coverage.ok_or_else(|| anyhow!("internal: the input stage ended early"))?;

    // Totals from what is on disk, so a resumed snapshot counts every part exactly once
    // (the verdict column and the footers only: decoding every row would cost seconds).
    for (_, path) in snapshot::parts(&dir, Table::Domains)? {
        for (verdict, n) in snapshot::verdict_counts(&path)? {
            *run.verdicts.entry(verdict.to_string()).or_insert(0) += n;
            *run.rows.entry("domains".into()).or_insert(0) += n;
        }
    }
    for table in [Table::Hosts, Table::Probes] {
        for (_, path) in snapshot::parts(&dir, table)? {
            *run.rows.entry(table.name().into()).or_insert(0) += snapshot::part_rows(&path, table)?;
        }
    }
    let in_domains = run.rows.get("domains").copied().unwrap_or(0);
    if in_domains != distinct {
        bail!(
            "internal: {} domain rows for {distinct} distinct input names in {}",
            in_domains,
            dir.display()
        );
    }
    run.inputs = coverage
        .sources
        .iter()
        .map(|s| snapshot::InputInfo {
            source: s.source.clone(),
            format: s.format.map(|f| format!("{f:?}").to_lowercase()),
            apex: s.apex.clone(),
            names: s.names,
            in_shard: s.in_shard,
            bad_lines: s.bad_lines,
            tlds: s.tlds.clone(),
        })
        .collect();
    run.domains_input = distinct;
    run.domains_opted_out = tally.opted_out.load(std::sync::atomic::Ordering::Relaxed);
    run.finished = Some(rfc3339_now());
    run.complete = true;
    snapshot::write_run(&dir, &run)?;
    use std::sync::atomic::Ordering::Relaxed;
    Ok(CrawlSummary {
        dir,
        run,
        resumed,
        domains_this_run: tally.domains.load(Relaxed),
        hosts_this_run: tally.hosts.load(Relaxed),
        sessions_this_run: tally.probes.load(Relaxed),
        seconds: started_at.elapsed().as_secs_f64(),
    })
}

/// Finished domains per message to the writer.
const WRITER_BATCH: usize = 256;

/// Batches of names waiting for a helper dispatcher: few, so that names go to whichever
/// dispatcher has room (the first keeps a batch when its helper's queue is full).
const HELPER_BATCHES: usize = 2;

/// What a dispatcher may start.
#[derive(Clone, Copy)]
struct Limits {
    /// Its share of the domains in flight.
    domains_in_flight: usize,
    /// Its share of the DNS queries in flight: how many of its domains may be in their MX
    /// lookup at once ([`MxGate`]).
    dns_in_flight: usize,
    part_size: u64,
    /// Parts open (their rows held) at once, counted from the lowest unwritten part.
    open_parts: u64,
}

/// A dispatcher: starts each numbered name's domain procedure within the limits and hands
/// the finished ones to the writer.
///
/// The first dispatcher reads the input stage and passes batches of names on to the others
/// (helpers, one per thread, see [`CrawlConfig::dispatchers`]) in turn, keeping a batch when
/// its helper is still busy with earlier ones; each hands its finished domains to the writer
/// itself.
///
/// The domains in progress are futures of this one task (not a task each): starting one is
/// an allocation, and an answer from the resolver wakes this task once for however many
/// domains it completes, instead of a runtime task and a wake-up per domain. What is slow and
/// rare (a host's resolution and SMTP probes) runs as tasks of its own ([`host_entry`]), so
/// that it holds up only the domains that need that host; its certificate checks go to the
/// blocking pool. Each dispatcher and its tasks run on one thread (the first on the `crawl`
/// command's current-thread runtime, see [`crate::operations::main`]).
struct Dispatch<'a> {
    shared: &'a Arc<Shared>,
    limits: Limits,
    /// The first dispatcher's (helpers are only ever sent names).
    progress: Option<&'a Progress>,
    in_rx: mpsc::Receiver<input::InputMsg>,
    /// The helpers' queues, in turn; dropped when the input ends.
    helpers: Vec<mpsc::Sender<input::InputMsg>>,
    low_rx: watch::Receiver<u64>,
    w_tx: mpsc::Sender<WriterMsg>,
}

/// What the input stage reported when it ended: what each source contributed, the distinct
/// names, and the failure that stopped it early.
type InputEnd = (Option<Coverage>, u64, Option<anyhow::Error>);

/// Keeps a dispatcher's domains in their MX lookup within its share of the DNS queries in
/// flight.
///
/// Exists because the domains in flight are more than the queries in flight (the rest wait
/// for their MX hosts' first resolution and probes), and a domain started while every query
/// permit is taken only waits for one: parked, woken and polled again, which cost a warm crawl
/// 8% of its CPU when the permits were the limit.
struct MxGate {
    now: AtomicUsize,
    limit: usize,
    /// Woken when `now` drops below `limit`: a domain can leave its MX lookup to wait for a
    /// host without finishing, so the dispatcher would not otherwise look again.
    room: tokio::sync::Notify,
}

/// A domain's place in its MX lookup, given back on drop.
struct InMx<'a>(&'a MxGate);

impl MxGate {
    fn enter(&self) -> InMx<'_> {
        self.now.fetch_add(1, Ordering::Relaxed);
        InMx(self)
    }

    fn full(&self) -> bool {
        self.now.load(Ordering::Relaxed) >= self.limit
    }
}

impl Drop for InMx<'_> {
    fn drop(&mut self) {
        if self.0.now.fetch_sub(1, Ordering::Relaxed) == self.0.limit {
            self.0.room.notify_one();
        }
    }
}

impl Dispatch<'_> {
    async fn run(&mut self) -> InputEnd {
        let gate = MxGate {
            now: AtomicUsize::new(0),
            limit: self.limits.dns_in_flight.max(1),
            room: tokio::sync::Notify::new(),
        };
        let cap = self.limits.domains_in_flight.max(1);
        let open_parts = self.limits.open_parts;
        let part_size = self.limits.part_size;
        let mut turn = 0usize;
        let (mut coverage, mut distinct, mut failure) = (None, 0, None);
        let mut running = FuturesUnordered::new();
        let mut queued: VecDeque<input::Numbered> = VecDeque::new();
        let mut finished: Vec<DomainDone> = Vec::with_capacity(WRITER_BATCH);
        let mut input_open = true;
        loop {
            // Start what the limits allow: domains in flight, and parts open (the rows they
            // hold) at once.
            let window = *self.low_rx.borrow() + open_parts;
            let in_window = |n: &input::Numbered| n.index / part_size < window;
            while running.len() < cap && !gate.full() && queued.front().is_some_and(in_window) {
                let Some(n) = queued.pop_front() else { break };
                running.push(crawl_domain(self.shared, n, gate.enter()));
            }
            // Collect what has finished without waiting, then hand it over in one message.
            while finished.len() < WRITER_BATCH {
                match futures::FutureExt::now_or_never(running.next()) {
                    Some(Some(done)) => finished.push(done),
                    _ => break,
                }
            }
            if !finished.is_empty() {
                let mut batch = std::mem::replace(&mut finished, Vec::with_capacity(WRITER_BATCH));
                // Finished within this turn of the loop: one clock read for all of them.
                let now = records::now_micros();
                for done in &mut batch {
                    done.row.checked_at = now;
                }
                if self.w_tx.send(WriterMsg::Done(batch)).await.is_err() {
                    // The writer stopped on a failed write (its error is reported from
                    // there): start nothing more.
                    input_open = false;
                    queued.clear();
                }
                continue;
            }
            if !input_open && queued.is_empty() && running.is_empty() {
                break;
            }
            let held_by_window = queued.front().is_some_and(|n| !in_window(n));
            let held_by_gate = !queued.is_empty() && running.len() < cap && gate.full();
            tokio::select! {
                _ = gate.room.notified(), if held_by_gate => {}
                done = running.next(), if !running.is_empty() => {
                    finished.extend(done);
                }
                _ = self.low_rx.changed(), if held_by_window => {}
                msg = self.in_rx.recv(), if input_open && queued.len() < cap => match msg {
                    None => {
                        input_open = false;
                        self.helpers.clear();
                    }
                    Some(input::InputMsg::Names(names)) => {
                        turn = (turn + 1) % (self.helpers.len() + 1);
                        // A helper's place is reserved before the batch moves, so a full
                        // (or gone) helper leaves it here.
                        let place = turn.checked_sub(1).map(|h| self.helpers[h].try_reserve());
                        match place {
                            Some(Ok(place)) => place.send(input::InputMsg::Names(names)),
                            None | Some(Err(_)) => queued.extend(names),
                        }
                    }
                    Some(input::InputMsg::Sealed { part, count }) => {
                        let _ = self.w_tx.send(WriterMsg::Sealed { part, count }).await;
                    }
                    Some(input::InputMsg::Bad(b)) => {
                        if let Some(p) = self.progress {
                            p.println(&format!("warning: {b}"));
                        }
                    }
                    Some(input::InputMsg::End { coverage: c, distinct: d }) => {
                        coverage = Some(c);
                        distinct = d;
                    }
                    Some(input::InputMsg::Failed(e)) => {
                        // Stop: what is in progress finishes and is written, the rest waits
                        // for the rerun.
                        failure = Some(anyhow!("input failed: {e}"));
                        input_open = false;
                        queued.clear();
                        self.helpers.clear();
                    }
                },
            }
        }
        (coverage, distinct, failure)
    }
}

/// Fills the host memo from the parts an earlier run committed, so a resumed crawl judges
/// its remaining domains on the same host facts and never writes a host twice.
fn preload(shared: &Shared, dir: &Path, done: &BTreeSet<u64>) -> Result<()> {
    if done.is_empty() {
        return Ok(());
    }
    let mut probes: BTreeMap<String, Vec<ProbeRow>> = BTreeMap::new();
    for (_, path) in snapshot::parts(dir, Table::Probes)? {
        for p in snapshot::read_probes(&path)? {
            probes.entry(p.host.clone()).or_default().push(p);
        }
    }
    for (_, path) in snapshot::parts(dir, Table::Hosts)? {
        for h in snapshot::read_hosts(&path)? {
            let mine = probes.remove(&h.host).unwrap_or_default();
            // Probe rows are sorted by address on disk; the summary needs the host's order.
            let order: Vec<&ProbeRow> = h
                .addresses
                .iter()
                .filter_map(|a| mine.iter().find(|p| &p.address == a))
                .collect();
            let summary = records::summary_from_rows(&h, &order);
            if name_from_canonical(&h.host).is_none() {
                bail!(
                    "{}: host {:?} is not a domain name; start over with --fresh",
                    dir.display(),
                    h.host
                );
            }
            shared
                .hosts
                .insert_ready(h.host.clone(), Arc::new(HostEntry::new(summary, None)));
        }
    }
    Ok(())
}

/// Pauses before asking again after a DNS failure that may pass (timeouts, a SERVFAIL that is
/// not a DNSSEC verdict): the client has already retried within seconds, so these wait for an
/// overloaded resolver or a lame server to recover. A host's result stands for every domain it
/// serves (a provider's one failed lookup would otherwise fail a million domains), so it gets
/// both pauses; a domain's own MX lookup gets the first.
const RETRY_PAUSES: [Duration; 2] = [Duration::from_secs(2), Duration::from_secs(8)];

/// One domain through the whole procedure.
///
/// A domain's future is one allocation per domain, and every byte of it is copied when it is
/// started: only the MX lookup is awaited here, and what follows is a plain function that
/// either finishes the domain or hands back a boxed future for the rare paths (a second MX
/// lookup, hosts nobody has resolved yet).
async fn crawl_domain(sh: &Arc<Shared>, mut n: input::Numbered, in_mx: InMx<'_>) -> DomainDone {
    let printed = std::mem::take(&mut n.text);
    let (report, hosts) = mx_stage(&sh.ctx, &n.name, printed).await;
    drop(in_mx);
    match after_mx(sh, n, report, hosts) {
        Ok(done) => done,
        Err(rest) => rest.await,
    }
}

/// What follows a domain's MX lookup: its row at once when its hosts are in the memo (nearly
/// every domain names hosts resolved long ago), without a future per host; otherwise the rest
/// of its procedure, boxed.
fn after_mx<'a>(
    sh: &'a Arc<Shared>,
    n: input::Numbered,
    report: DomainReport,
    hosts: Option<(Vec<MxHost>, u16)>,
) -> Result<DomainDone, BoxFuture<'a, DomainDone>> {
    if report.transient_failure {
        return Err(Box::pin(async move {
            tokio::time::sleep(RETRY_PAUSES[0]).await;
            let (report, hosts) = mx_stage(&sh.ctx, &n.name, report.domain).await;
            resolve_and_finish(sh, n, report, hosts).await
        }));
    }
    let ready = hosts.as_ref().map(|(hosts, _)| {
        hosts
            .iter()
            .take(MAX_MX_HOSTS)
            .map(|h| {
                let key = report.mx.records[h.record].1.as_str();
                sh.hosts.get_ready(key).map(|e| (e, false))
            })
            .collect::<Option<Vec<_>>>()
    });
    match ready {
        None => Ok(finish_domain(sh, n, report, hosts, Vec::new())),
        Some(Some(entries)) => Ok(finish_domain(sh, n, report, hosts, entries)),
        Some(None) => Err(Box::pin(resolve_and_finish(sh, n, report, hosts))),
    }
}

/// [`finish_domain`] after taking the memo entries of the domain's MX hosts (the first
/// [`MAX_MX_HOSTS`]), resolving those nobody has; an entry's flag marks the hosts this
/// domain resolved (it writes their rows).
async fn resolve_and_finish(
    sh: &Arc<Shared>,
    n: input::Numbered,
    report: DomainReport,
    hosts: Option<(Vec<MxHost>, u16)>,
) -> DomainDone {
    let entries = match &hosts {
        None => Vec::new(),
        Some((hosts, _)) => {
            futures::future::join_all(
                hosts
                    .iter()
                    .take(MAX_MX_HOSTS)
                    .map(|h| host_entry(sh, &h.name, &report.mx.records[h.record].1)),
            )
            .await
        }
    };
    finish_domain(sh, n, report, hosts, entries)
}

/// A domain from its MX lookup and its hosts' memo entries: the verdict and its rows.
fn finish_domain(
    sh: &Shared,
    n: input::Numbered,
    mut report: DomainReport,
    hosts: Option<(Vec<MxHost>, u16)>,
    entries: Vec<(Arc<HostEntry>, bool)>,
) -> DomainDone {
    let mut new_hosts = Vec::new();
    let mut new_probes = Vec::new();
    if let Some((hosts, lowest)) = hosts {
        for (entry, mine) in &entries {
            if *mine {
                let rows = entry.rows.lock().unwrap_or_else(|e| e.into_inner()).take();
                if let Some((h, p)) = rows {
                    new_hosts.push(h);
                    new_probes.extend(p);
                }
            }
        }
        // A lone MX host judged once for all its domains, unless the domain matters.
        let alone = match (hosts.as_slice(), entries.as_slice()) {
            ([_], [(entry, _)]) => entry.alone.as_ref(),
            _ => None,
        };
        let judged = match alone {
            Some(judged) => judged.clone(),
            None => {
                let list: Vec<(bool, &HostSummary)> = hosts
                    .iter()
                    .zip(&entries)
                    .map(|(h, (e, _))| (h.preference == lowest, &e.summary))
                    .collect();
                judge_domain_row(&report.domain, &list)
            }
        };
        report.verdict = judged.verdict;
        report.all_hosts_verdict = Some(judged.all_hosts_verdict);
        report.reason = judged.reason;
    }
    sh.tally.verdict(report.verdict);
    let source = sh.sources.get(n.source).map_or("", String::as_str);
    DomainDone {
        index: n.index,
        row: records::domain_row(report, source),
        hosts: new_hosts,
        probes: new_probes,
    }
}

/// The memoised host stage: resolved and probed by the first domain that names the host, on
/// a task of its own. `key` is the host's printed name.
async fn host_entry(sh: &Arc<Shared>, host: &Name, key: &str) -> (Arc<HostEntry>, bool) {
    let key = key.to_string();
    sh.hosts
        .get_or_init(&key, || {
            let (sh, host, key) = (sh.clone(), host.clone(), key.clone());
            let stage = tokio::spawn(async move {
                let mut report = check_host(&sh.ctx, &host, &*sh.prober).await;
                for pause in RETRY_PAUSES {
                    if !report.transient_failure {
                        break;
                    }
                    tokio::time::sleep(pause).await;
                    report = check_host(&sh.ctx, &host, &*sh.prober).await;
                }
                let opted_out = sh.optout.covers_name(&key);
                let (row, probes) = records::host_rows(&report, opted_out);
                sh.tally
                    .hosts
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Arc::new(HostEntry::new(
                    HostSummary::of(&report),
                    Some((row, probes)),
                ))
            });
            async move {
                match stage.await {
                    Ok(entry) => entry,
                    Err(e) => std::panic::resume_unwind(e.into_panic()),
                }
            }
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future `make` would return (never called).
    fn future_size<F: std::future::Future>(_make: &dyn Fn() -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// A domain with a lone MX host takes the judgement made once for the host: it must be
    /// the one judging the domain afresh would give, for every host verdict, and there must
    /// be none when a DANE-TA leaf naming the domain could change it.
    #[test]
    fn a_lone_host_is_judged_once_as_each_of_its_domains_would_be() {
        use crate::verdict::{AddressVerdict as A, HostVerdict};
        let leaf = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        for &verdict in HostVerdict::ALL {
            for (usable_tlsa, addresses) in [
                (false, vec![]),
                (true, vec![(A::Pass, leaf(&["mx.hoster.example"]))]),
                (
                    true,
                    vec![(A::TlsaMismatch, leaf(&[])), (A::Pass, leaf(&[]))],
                ),
                (true, vec![(A::NameMismatch, leaf(&["customer.example"]))]),
            ] {
                let summary = HostSummary {
                    name: "mx.hoster.example".into(),
                    verdict,
                    reason: "the host's reason".into(),
                    usable_tlsa,
                    addresses,
                };
                let entry = HostEntry::new(summary.clone(), None);
                assert_eq!(entry.alone.is_none(), summary.depends_on_domain());
                for domain in ["customer.example", "other.example"] {
                    let afresh = judge_domain_row(domain, &[(true, &summary)]);
                    if let Some(alone) = &entry.alone {
                        assert_eq!(alone, &afresh, "{verdict:?} for {domain}");
                    }
                }
            }
        }
    }

    /// A domain's future is allocated and copied for each of millions of domains, with
    /// thousands in flight: what it holds across its await (a parsed message, a report) costs
    /// every domain. It was 1,088 bytes before the DNS answer and the domain's report were kept
    /// out of it; the bound leaves room for compiler changes, not for a message.
    #[test]
    #[allow(unreachable_code, unused_variables)]
    fn a_domain_future_stays_small() {
        let domain = future_size(&|| crawl_domain(todo!(), todo!(), todo!()));
        let query = future_size(&|| {
            let r: &crate::dns::Resolver = todo!();
            r.query(todo!(), todo!())
        });
        assert!(query <= 320, "a query's future is {query} bytes");
        assert!(domain <= 768, "a domain's future is {domain} bytes");
    }
}
