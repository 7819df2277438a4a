//! The command line: every operation the `dane-survey` binary offers, and how each is run.
//!
//! `main.rs` only calls [`main`]; everything a user can type is defined here with its `--help`
//! text, so the help output is the reference documentation of the tool.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use hickory_proto::rr::Name;

use crate::dns::{selfcheck, Resolver, ResolverConfig};
use crate::names::normalize_domain;
use crate::smtp::ProbeConfig;
use crate::survey::{check_domain, CheckContext};
use crate::{lab, report};

/// Measures DANE for SMTP (RFC 7672): which mail domains are protected, who hosts them,
/// and where TLSA records no longer match.
#[derive(Debug, Parser)]
#[command(name = "dane-survey", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The main job: crawl every name of the zone lists through the RFC 7672 decision
    /// procedure and write a Parquet snapshot (output/snapshot=YYYY-MM-DD/{domains,hosts,
    /// probes}/part-*.parquet and run.json). Each MX host is resolved once and each address
    /// probed once per SNI; rates and sessions are limited; an interrupted crawl resumes when
    /// the same command is run again. `--lab` crawls the offline lab.
    Crawl(Box<CrawlArgs>),
    /// Combine the snapshots of a sharded crawl (`crawl --shard K/N` on N machines) into one.
    Merge(MergeArgs),
    /// Providers ranked by DANE domains (verdict dane_valid) this month against last month:
    /// place, DANE domains now and then, the change, last month's place, and the share of the
    /// provider's signed domains (secure MX) that have DANE. The top movers' changes are
    /// explained domain by domain: came or went through the zone lists, zone lost or gained
    /// DNSSEC, moved to or from the provider's MX hosts, TLSA broke or was fixed. A month is
    /// its latest complete snapshot.
    Rank(RankArgs),
    /// Slow adopters: providers ranked by their signed domains (secure MX) whose verdict is
    /// no_tlsa or insecure_mx_host — one TLSA RRset at the provider would protect them — with
    /// the share already on DANE.
    Adopters(AdoptersArgs),
    /// MX hosts where DANE senders defer mail (TLSA does not match, TLSA lookup fails,
    /// STARTTLS missing), with the domains affected and the evidence (TLSA RRset, presented
    /// chain's digests, the leaf as 3 1 1, probe time); plus early warnings: certificates of
    /// DANE-valid hosts expiring soon, and TLSA RRsets with a single usable record.
    Failures(FailuresArgs),
    /// The series over every complete snapshot: domains surveyed, with secure MX, DANE
    /// domains — in all, per TLD and for the top providers; optionally an SVG line chart.
    Trend(TrendArgs),
    /// The monthly report as a static web site in --dest: headline figures and coverage,
    /// the provider ranking with every change explained, slow adopters, failures with
    /// evidence and early warnings, the trend charts, one page per top provider and a lookup
    /// page per domain named with --lookup. HTML, CSS and SVG only (no JavaScript, no external
    /// requests), every table also as CSV next to its page; publish the directory anywhere.
    Site(SiteArgs),
    /// Run the whole RFC 7672 decision procedure for one domain and print the evidence:
    /// MX RRset, primary MX hosts, addresses, TLSA, a STARTTLS probe of every address, and
    /// the DANE-EE/DANE-TA match.
    Check(CheckArgs),
    /// Match a certificate chain against TLSA records offline, with RFC 7672 semantics (like
    /// `ldns-dane verify`): usages 0/1 unusable, DANE-EE without name or date checks, DANE-TA
    /// with path building, signatures, validity at --at and name checks. Exit 0 on a match,
    /// 1 on no match.
    Verify(VerifyArgs),
    /// Benchmarks (numbers for the record, never pass/fail).
    Bench {
        #[command(subcommand)]
        target: BenchTarget,
        /// Runtime worker threads (1 = a single-threaded runtime, like `dnsperf -T 1`).
        #[arg(long, global = true, default_value_t = 1)]
        threads: usize,
    },
    /// Run the offline lab: a signed DNS hierarchy (nsd), a validating resolver (unbound) and
    /// SMTP servers with STARTTLS (Postfix) on 127.x addresses, with known expected verdicts.
    Lab {
        #[command(subcommand)]
        action: LabAction,
        /// Lab directory (generated files, logs, pids) [env: DANE_SURVEY_LAB_DIR]
        #[arg(long, global = true)]
        dir: Option<PathBuf>,
    },
    /// The crawl's inputs: TLD zones and domain lists (see zonelists/README.md).
    Zonelists {
        #[command(subcommand)]
        action: ZonelistsAction,
    },
}

#[derive(Debug, Args)]
struct CrawlArgs {
    /// Zone files or domain lists, gzip/zstd or plain, `-` for stdin
    /// [default: zonelists/sample.txt; with --lab: zonelists/lab.txt, or
    /// zonelists/lab-month2.txt while the lab runs month 2].
    inputs: Vec<String>,
    /// Output root; the snapshot goes to OUT/snapshot=DATE (OUT/_shards/K-of-N/snapshot=DATE
    /// with --shard).
    #[arg(long, default_value = "output")]
    out: PathBuf,
    /// Snapshot date (YYYY-MM-DD) [default: resume the latest unfinished snapshot of the same
    /// crawl, else today, UTC].
    #[arg(long)]
    snapshot: Option<String>,
    /// Start the snapshot over, deleting what an earlier run of it wrote.
    #[arg(long)]
    fresh: bool,
    /// Crawl only shard K of N (1-based) of the names; combine the shards with `merge`.
    /// Under a Kubernetes Indexed Job or a Slurm array, pass
    /// `--shard $((JOB_COMPLETION_INDEX+1))/N` or `--shard $SLURM_ARRAY_TASK_ID/N`.
    #[arg(long)]
    shard: Option<crate::zonelist::shard::Shard>,
    /// Input format: auto, zone or list.
    #[arg(long, default_value = "auto")]
    format: crate::zonelist::Format,
    /// The zone apex of a master file that starts with neither SOA nor $ORIGIN.
    #[arg(long)]
    origin: Option<String>,
    /// Validating resolver, ADDR or ADDR:PORT; repeat to spread the load over several
    /// [default: the nameservers of /etc/resolv.conf]. Must be on loopback unless
    /// --trust-resolver.
    #[arg(long = "resolver")]
    resolvers: Vec<String>,
    /// Accept the AD bit from resolvers that are not on loopback (only over a trusted path).
    #[arg(long)]
    trust_resolver: bool,
    /// A signed name that must come back with the AD bit (resolver self-check).
    #[arg(long, default_value = ".")]
    selfcheck_signed: String,
    /// A deliberately broken name that must come back SERVFAIL (resolver self-check).
    #[arg(long, default_value = "dnssec-failed.org")]
    selfcheck_bogus: String,
    /// DNS queries per second, retries included (0 = unlimited).
    #[arg(long, default_value_t = 5000)]
    qps: u32,
    /// DNS queries in flight.
    #[arg(long, default_value_t = 2000)]
    dns_in_flight: usize,
    /// Seconds to wait for a DNS answer on the first try; each retry doubles it, up to 6 s
    /// (or this, if longer). Raise it for a distant or busy resolver.
    #[arg(long, default_value_t = 1.5, value_parser = positive_seconds)]
    dns_timeout: f64,
    /// DNS tries after the first, each to the least-loaded resolver.
    #[arg(long, default_value_t = 2)]
    dns_retries: u32,
    /// Domains in progress at once.
    #[arg(long, default_value_t = 5000)]
    domains_in_flight: usize,
    /// Threads that drive the domains, each with DNS sockets of its own; the limits above
    /// hold for all of them together (reading the input, writing Parquet and checking
    /// certificates have threads of their own). Default: half the cores, at most 8 — the
    /// other half is left to the resolver, which must run on this machine or next to it. A
    /// second thread costs ~9% more CPU per domain, so it pays only with cores to spare.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=64))]
    threads: Option<u16>,
    /// SMTP sessions in flight, in all.
    #[arg(long, default_value_t = 200)]
    smtp_sessions: usize,
    /// SMTP sessions in flight to any one address.
    #[arg(long, default_value_t = 1)]
    sessions_per_address: usize,
    /// New SMTP sessions per second to any one provider (registrable domain of the MX host;
    /// 0 = unlimited).
    #[arg(long, default_value_t = 5)]
    provider_rate: u32,
    /// Name sent in EHLO: set it to a host name of yours whose web page explains the survey
    /// and how to opt out.
    #[arg(long, default_value = "dane-survey.invalid")]
    ehlo: String,
    /// Per-stage SMTP timeout in seconds.
    #[arg(long, default_value_t = 30)]
    smtp_timeout: u64,
    /// Also probe MX hosts without TLSA (insecure hosts, no TLSA); their verdicts do not
    /// depend on it, so by default they are not contacted.
    #[arg(long)]
    probe_all_hosts: bool,
    /// Opt-out file: domains (with their subdomains) and CIDR blocks never queried or probed.
    #[arg(long)]
    opt_out: Option<PathBuf>,
    /// Probe MX hosts on loopback addresses (for the lab).
    #[arg(long)]
    allow_loopback: bool,
    /// Judge certificate validity at this time (RFC 3339) [default: when the snapshot started].
    #[arg(long)]
    at: Option<String>,
    /// Domains per Parquet part (the unit of commit and of resume).
    #[arg(long, default_value_t = 10_000)]
    part_size: u64,
    /// No progress bars: print a summary line every --progress-interval seconds instead (the
    /// default without a terminal).
    #[arg(long)]
    no_progress: bool,
    /// Seconds between summary lines without progress bars.
    #[arg(long, default_value_t = 10)]
    progress_interval: u64,
    /// Crawl the lab: bring it up if needed, use its resolver and self-check names, allow
    /// loopback, short SMTP timeouts, and zonelists/lab.txt as the default input.
    #[arg(long)]
    lab: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct MergeArgs {
    /// Shard snapshot directories [default: OUT/_shards/*/snapshot=DATE].
    shards: Vec<PathBuf>,
    /// Output root; the merged snapshot goes to OUT/snapshot=DATE.
    #[arg(long, default_value = "output")]
    out: PathBuf,
    /// Snapshot date [default: the date of the first shard given, or the latest under
    /// OUT/_shards].
    #[arg(long)]
    snapshot: Option<String>,
}

/// What every report command shares: where the snapshots are and how to print.
#[derive(Debug, Args)]
struct ReportCommon {
    /// Output root holding the snapshots (OUT/snapshot=YYYY-MM-DD); only complete ones are
    /// read.
    #[arg(long, default_value = "output")]
    out: PathBuf,
    /// Output format: table (aligned, thousands separators), md (Markdown), csv, json, or
    /// parquet (binary; use --output).
    #[arg(long, value_enum, default_value = "table")]
    format: report::table::Format,
    /// Write to this file instead of stdout.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Provider alias file: `provider group` per line (or TOML `"provider" = "group"`), to
    /// report providers with several MX zones as one.
    #[arg(long)]
    aliases: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct RankArgs {
    #[command(flatten)]
    common: ReportCommon,
    /// The month to rank (YYYY-MM) [default: the latest month with a complete snapshot].
    #[arg(long)]
    month: Option<String>,
    /// The month to compare with (YYYY-MM) [default: the previous month with a complete
    /// snapshot].
    #[arg(long)]
    vs: Option<String>,
    /// Rows to print.
    #[arg(long, default_value_t = 20)]
    top: usize,
    /// Top movers (largest changes) whose change is explained.
    #[arg(long, default_value_t = 5)]
    movers: usize,
    /// Domains named per provider, cause and direction in the explanation (the counts are
    /// always complete).
    #[arg(long, default_value_t = 10)]
    examples: usize,
}

#[derive(Debug, Args)]
struct AdoptersArgs {
    #[command(flatten)]
    common: ReportCommon,
    /// The month (YYYY-MM) [default: the latest month with a complete snapshot].
    #[arg(long)]
    month: Option<String>,
    /// Rows to print.
    #[arg(long, default_value_t = 20)]
    top: usize,
}

#[derive(Debug, Args)]
struct FailuresArgs {
    #[command(flatten)]
    common: ReportCommon,
    /// The month (YYYY-MM) [default: the latest month with a complete snapshot].
    #[arg(long)]
    month: Option<String>,
    /// Warn about leaf certificates of DANE-valid hosts that expire within this many days of
    /// the snapshot's judged_at.
    #[arg(long, default_value_t = 14)]
    expiring_days: i64,
}

#[derive(Debug, Args)]
struct TrendArgs {
    #[command(flatten)]
    common: ReportCommon,
    /// Providers in the series: the ones with the most DANE domains in the latest snapshot.
    #[arg(long, default_value_t = 5)]
    top: usize,
    /// Also draw the chart (domains surveyed, secure MX, DANE domains per snapshot) into this
    /// SVG file.
    #[arg(long)]
    svg: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct SiteArgs {
    /// Output root holding the snapshots (OUT/snapshot=YYYY-MM-DD); only complete ones are
    /// read.
    #[arg(long, default_value = "output")]
    out: PathBuf,
    /// Directory to write the site to. It is written beside and then swapped in whole; an
    /// existing DIR is replaced only when it is empty or an earlier site (it holds
    /// .dane-survey-site), anything else is refused.
    #[arg(long)]
    dest: PathBuf,
    /// The month of the report (YYYY-MM) [default: the latest month with a complete
    /// snapshot].
    #[arg(long)]
    month: Option<String>,
    /// The month to compare with (YYYY-MM) [default: the previous month with a complete
    /// snapshot].
    #[arg(long)]
    vs: Option<String>,
    /// Provider alias file: `provider group` per line (or TOML `"provider" = "group"`).
    #[arg(long)]
    aliases: Option<PathBuf>,
    /// A domain that gets a lookup page (lookup/DOMAIN.html); repeat for more.
    #[arg(long = "lookup", value_name = "DOMAIN")]
    lookup: Vec<String>,
    /// A file of domains that get a lookup page: one per line, `#` comments and blank lines
    /// skipped.
    #[arg(long, value_name = "FILE")]
    lookup_file: Option<PathBuf>,
    /// Providers from the top of the ranking that get a page of their own.
    #[arg(long, default_value_t = 20)]
    providers: usize,
    /// Rows shown per table on a page (the CSV next to it always has every row).
    #[arg(long, default_value_t = 200)]
    rows: usize,
    /// Top movers whose change is explained in words on the ranking page.
    #[arg(long, default_value_t = 10)]
    movers: usize,
    /// Domains named per provider, cause and direction in the explanation.
    #[arg(long, default_value_t = 10)]
    examples: usize,
    /// Warn about leaf certificates of DANE-valid hosts that expire within this many days of
    /// the snapshot's judged_at.
    #[arg(long, default_value_t = 14)]
    expiring_days: i64,
}

#[derive(Debug, Subcommand)]
enum ZonelistsAction {
    /// Fetch a zone-transfer source of the manifest (AXFR over TCP, TSIG if a key file is
    /// configured) and write it atomically to the source's path.
    Fetch {
        /// The source's name in the manifest.
        name: String,
        /// The sources manifest.
        #[arg(long, default_value = "zonelists/sources.toml")]
        sources: PathBuf,
    },
    /// Print the names the crawl would read, one per line: a zone's delegations (each once,
    /// consecutive duplicates dropped) or a list's names, normalised. gzip/zstd by magic
    /// bytes, `-` is stdin. Bad lines go to stderr with file:line; counts per source (and per
    /// TLD) go to stderr at the end.
    Names(ZonelistNamesArgs),
}

#[derive(Debug, Args)]
struct ZonelistNamesArgs {
    /// Zone files or lists (`-` for stdin) [default: zonelists/sample.txt].
    files: Vec<String>,
    /// Only shard K of N (1-based), by a hash of the name that is stable across versions.
    #[arg(long)]
    shard: Option<crate::zonelist::shard::Shard>,
    /// Also count names per TLD.
    #[arg(long)]
    tld_counts: bool,
    /// Write the coverage counts to stderr as JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Input format: auto, zone or list.
    #[arg(long, default_value = "auto")]
    format: crate::zonelist::Format,
    /// The zone apex of a master file that starts with neither SOA nor $ORIGIN.
    #[arg(long)]
    origin: Option<String>,
    /// Do not print bad lines (they are still counted).
    #[arg(long)]
    quiet: bool,
}

#[derive(Debug, Subcommand)]
enum BenchTarget {
    /// Push a dnsperf-style query file (`NAME TYPE` per line) through the DNS client and
    /// report completed queries/s, CPU seconds per 100k queries and peak memory (JSON).
    /// `scripts/bench-dns` runs it beside dnsperf against the same servers.
    Dns(BenchDnsArgs),
    /// Write synthetic complete snapshots (month 1, 2, … of N domains over a skewed set of
    /// providers, with every kind of month-over-month change) with the crate's own snapshot
    /// writer, for timing the reports and `site` at scale (`scripts/bench-site`).
    Snapshots(BenchSnapshotsArgs),
}

#[derive(Debug, Args)]
struct BenchSnapshotsArgs {
    /// Output root to write the snapshots under.
    #[arg(long)]
    out: PathBuf,
    /// Domains in month 1.
    #[arg(long, default_value_t = 1_000_000)]
    domains: u64,
    /// Months: snapshots 2030-01-01, 2030-02-01, …
    #[arg(long, default_value_t = 2)]
    months: u64,
}

#[derive(Debug, Args)]
struct BenchDnsArgs {
    /// The server to query, ADDR or ADDR:PORT (loopback; the benchmark trusts nothing).
    #[arg(long)]
    server: String,
    /// The query file.
    #[arg(long)]
    queries: PathBuf,
    /// Queries to send in all (the file is cycled).
    #[arg(long, default_value_t = 200_000)]
    count: u64,
    /// Most queries in flight (dnsperf's -q).
    #[arg(long, default_value_t = 1000)]
    in_flight: usize,
    /// Retries per query (0, like dnsperf, so completed queries compare).
    #[arg(long, default_value_t = 0)]
    retries: u32,
    /// Per-try timeout in seconds.
    #[arg(long, default_value_t = 5)]
    timeout: u64,
    /// UDP sockets.
    #[arg(long, default_value_t = 8)]
    sockets: usize,
}

#[derive(Debug, Subcommand)]
enum LabAction {
    /// Generate certificates and zones, sign them, start the servers; wait until the resolver
    /// validates the private root. Does nothing if a healthy lab of the same month already
    /// runs; another month restarts it.
    Up {
        /// The month of the scenario: 1 is the lab of tests/lab/ground-truth.tsv; 2 is the
        /// same world a month later (mailco.test adopts DANE, hoster.example's TLSA breaks,
        /// dualstack.test loses its DS, shop5.example moves; see tests/lab/month2-changes.tsv),
        /// for month-over-month reports. `crawl --lab` crawls whichever month runs, with that
        /// month's zone list.
        #[arg(long, default_value_t = 1)]
        month: u8,
    },
    /// Stop exactly the processes `up` started.
    Down,
    /// Show the lab's processes and whether its resolver validates (exit 1 if not healthy).
    Status,
    /// Serve the lab's hostile SMTP servers (started by `up`; not for direct use).
    #[command(hide = true)]
    HostileSmtpd,
}

#[derive(Debug, Args)]
struct VerifyArgs {
    /// A TLSA record in presentation form, e.g. "3 1 1 ab12…" (repeat for an RRset).
    #[arg(long = "tlsa", required = true)]
    tlsa: Vec<String>,
    /// PEM file with the chain as the server presents it, leaf first.
    #[arg(long)]
    chain: PathBuf,
    /// A reference identifier: the TLSA base domain, the MX host name, the domain (repeat).
    #[arg(long = "name", required = true)]
    names: Vec<String>,
    /// Judge certificate validity at this time (RFC 3339) instead of now.
    #[arg(long)]
    at: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Largest chain file `verify` reads (a chain of 32 large certificates fits easily).
const MAX_CHAIN_FILE: u64 = 1 << 20;

#[derive(Debug, Args)]
struct CheckArgs {
    /// The mail domain to check (U-labels are converted to A-labels).
    domain: String,
    /// Validating resolver, ADDR or ADDR:PORT; must be on loopback unless --trust-resolver.
    #[arg(long, default_value = "127.0.0.1")]
    resolver: String,
    /// Accept the AD bit from a resolver that is not on loopback (only over a trusted path).
    #[arg(long)]
    trust_resolver: bool,
    /// Probe MX hosts on loopback addresses (for the lab; other special-purpose addresses
    /// are never probed).
    #[arg(long)]
    allow_loopback: bool,
    /// Use the lab: its resolver, --allow-loopback, its self-check names, and SMTP timeouts of
    /// 5 s per stage and 20 s per session (its hostile servers would otherwise take minutes).
    #[arg(long)]
    lab: bool,
    /// Judge certificate validity at this time (RFC 3339) instead of now.
    #[arg(long)]
    at: Option<String>,
    /// Name sent in EHLO, so server operators can tell who probed them.
    #[arg(long, default_value = "dane-survey.invalid")]
    ehlo: String,
    /// A signed name that must come back with the AD bit (resolver self-check).
    #[arg(long, default_value = ".")]
    selfcheck_signed: String,
    /// A deliberately broken name that must come back SERVFAIL (resolver self-check).
    #[arg(long, default_value = "dnssec-failed.org")]
    selfcheck_bogus: String,
    /// Per-stage SMTP timeout in seconds.
    #[arg(long, default_value_t = 20)]
    smtp_timeout: u64,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// A timeout in seconds: positive, finite and at most an hour (clap's parser for
/// `--dns-timeout`).
fn positive_seconds(text: &str) -> std::result::Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s > 0.0 && s <= 3600.0 => Ok(s),
        Ok(_) => Err("must be more than 0 and at most 3600 seconds".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// The crawl's dispatcher threads when `--threads` is not given: half the cores (at least one,
/// at most 8).
fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).clamp(1, 8))
}

/// Parses the command line and runs the operation; the binary's whole `main`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let built = match &cli.command {
        Command::Bench { threads, .. } if *threads <= 1 => {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        }
        Command::Bench { threads, .. } => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(*threads)
            .enable_all()
            .build(),
        // One thread for the first dispatcher's async work (its domains, DNS sockets and SMTP
        // sessions; further `--threads` each get a runtime like this one); the input stage,
        // the Parquet writer and the certificate checks have threads of their own. On several
        // threads every DNS answer crossed between them (sender, receiver and dispatcher each
        // on whichever worker was free, and a wake-up, often a context switch, at each
        // hand-over): two 1M-name crawls run side by side used 15.1 s of CPU each on the
        // multi-threaded runtime and 11.3 s on this one.
        Command::Crawl(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        _ => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
    };
    let rt = match built {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Check(args) => check(args).await,
        Command::Crawl(args) => crawl(*args).await,
        Command::Merge(args) => merge(args),
        Command::Rank(args) => rank(args),
        Command::Adopters(args) => adopters(args),
        Command::Failures(args) => failures(args),
        Command::Trend(args) => trend(args),
        Command::Site(args) => site(args),
        Command::Verify(args) => verify(args),
        Command::Bench {
            target: BenchTarget::Dns(args),
            ..
        } => bench_dns(args).await,
        Command::Bench {
            target: BenchTarget::Snapshots(args),
            ..
        } => bench_snapshots(args),
        Command::Lab { action, dir } => {
            let dir = dir.unwrap_or_else(lab::default_dir);
            lab_op(action, &dir).await
        }
        Command::Zonelists { action } => zonelists_op(action),
    }
}

fn zonelists_op(action: ZonelistsAction) -> Result<ExitCode> {
    use crate::zonelist;
    match action {
        ZonelistsAction::Fetch { name, sources } => {
            let m = zonelist::manifest::Manifest::load(&sources)?;
            let (path, s) = zonelist::fetch_source(&m, &name)?;
            eprintln!(
                "{name}: {} records in {} messages{} written to {}",
                s.records,
                s.messages,
                if s.tsig_verified {
                    ", TSIG verified,"
                } else {
                    ""
                },
                path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        ZonelistsAction::Names(a) => {
            let files = if a.files.is_empty() {
                vec![zonelist::DEFAULT_INPUT.to_string()]
            } else {
                a.files
            };
            let cov = zonelist::print_names(
                &files,
                a.format,
                a.origin.as_deref(),
                a.shard,
                &mut std::io::stdout().lock(),
                &mut |b| {
                    if !a.quiet {
                        eprintln!("warning: {b}");
                    }
                },
            )?;
            if a.json {
                eprintln!("{}", serde_json::to_string_pretty(&cov)?);
            } else {
                eprint!("{}", zonelist::coverage_text(&cov, a.tld_counts));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn parse_name(what: &str, s: &str) -> Result<Name> {
    if s.trim() == "." {
        return Ok(Name::root());
    }
    normalize_domain(s).with_context(|| format!("bad {what}"))
}

/// `--at` as unix seconds (now when absent).
fn parse_at(at: Option<&str>) -> Result<i64> {
    Ok(match at {
        Some(t) => time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
            .map_err(|e| anyhow!("bad --at {t:?}: {e} (expected e.g. 2026-11-28T00:00:00Z)"))?
            .unix_timestamp(),
        None => time::OffsetDateTime::now_utc().unix_timestamp(),
    })
}

fn verify(args: VerifyArgs) -> Result<ExitCode> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    use std::io::Read;

    let at = parse_at(args.at.as_deref())?;
    let rrset = args
        .tlsa
        .iter()
        .map(|t| {
            t.parse::<crate::dane::TlsaRecord>()
                .map_err(|e| anyhow!("bad --tlsa {t:?}: {e}"))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut pem = Vec::new();
    std::fs::File::open(&args.chain)
        .with_context(|| format!("cannot open {}", args.chain.display()))?
        .take(MAX_CHAIN_FILE + 1)
        .read_to_end(&mut pem)?;
    if pem.len() as u64 > MAX_CHAIN_FILE {
        bail!(
            "{} is larger than {} bytes",
            args.chain.display(),
            MAX_CHAIN_FILE
        );
    }
    let chain = CertificateDer::pem_slice_iter(&pem)
        .map(|c| c.map(|c| c.as_ref().to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("{}: bad PEM: {e:?}", args.chain.display()))?;
    if chain.is_empty() {
        bail!("{} holds no certificate", args.chain.display());
    }
    let names = args
        .names
        .iter()
        .map(|n| normalize_domain(n).map(|n| crate::names::display(&n)))
        .collect::<Result<Vec<_>, _>>()?;
    let v = crate::dane::verify(&rrset, &chain, &names, at);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("{}: {}", v.outcome, v.detail);
    }
    Ok(if v.outcome == crate::dane::MatchOutcome::Pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn check(args: CheckArgs) -> Result<ExitCode> {
    let domain = normalize_domain(&args.domain)?;
    let at = parse_at(args.at.as_deref())?;
    let (server, signed, bogus, allow_loopback) = if args.lab {
        let (s, b) = lab::selfcheck_names();
        (lab::resolver_addr(), s, b, true)
    } else {
        (
            ResolverConfig::parse_server(&args.resolver).map_err(|e| anyhow!(e))?,
            parse_name("--selfcheck-signed", &args.selfcheck_signed)?,
            parse_name("--selfcheck-bogus", &args.selfcheck_bogus)?,
            args.allow_loopback,
        )
    };
    let mut cfg = ResolverConfig::new(vec![server]);
    cfg.trust_remote = args.trust_resolver;
    let resolver = Resolver::new(cfg).map_err(|e| anyhow!(e))?;
    selfcheck(&resolver, &signed, &bogus).await?;
    let mut probe = ProbeConfig {
        ehlo_name: args.ehlo.clone(),
        stage_timeout: Duration::from_secs(args.smtp_timeout),
        ..ProbeConfig::default()
    };
    if args.lab {
        probe.stage_timeout = probe.stage_timeout.min(Duration::from_secs(5));
        probe.session_timeout = Duration::from_secs(20);
    }
    let ctx = CheckContext {
        resolver,
        probe,
        at,
        allow_loopback,
        smtp_port: 25,
        probe_without_tlsa: true,
    };
    let report = check_domain(&ctx, &domain).await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report::check_text(&report));
    }
    Ok(ExitCode::SUCCESS)
}

/// The nameservers of /etc/resolv.conf (127.0.0.1 if it names none).
fn system_resolvers() -> Vec<String> {
    let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let v: Vec<String> = text
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("nameserver")).then(|| w.next().map(str::to_string))?
        })
        .collect();
    if v.is_empty() {
        vec!["127.0.0.1".into()]
    } else {
        v
    }
}

async fn crawl(a: CrawlArgs) -> Result<ExitCode> {
    use crate::crawl::{politeness::SmtpLimits, CrawlConfig};
    use std::num::NonZeroU32;
    let (servers, selfcheck_names, allow_loopback) = if a.lab {
        let dir = lab::default_dir();
        if lab::up(&dir, None).await? {
            eprintln!("lab started in {}", dir.display());
        }
        (vec![lab::resolver_addr()], lab::selfcheck_names(), true)
    } else {
        let given = if a.resolvers.is_empty() {
            system_resolvers()
        } else {
            a.resolvers.clone()
        };
        let servers = given
            .iter()
            .map(|s| ResolverConfig::parse_server(s).map_err(|e| anyhow!(e)))
            .collect::<Result<Vec<_>>>()?;
        (
            servers,
            (
                parse_name("--selfcheck-signed", &a.selfcheck_signed)?,
                parse_name("--selfcheck-bogus", &a.selfcheck_bogus)?,
            ),
            a.allow_loopback,
        )
    };
    let mut resolver = ResolverConfig::new(servers);
    resolver.trust_remote = a.trust_resolver;
    resolver.max_in_flight = a.dns_in_flight.max(1);
    resolver.timeout = Duration::from_secs_f64(a.dns_timeout);
    resolver.max_timeout = resolver.max_timeout.max(resolver.timeout);
    resolver.retries = a.dns_retries;
    resolver.qps = NonZeroU32::new(a.qps);
    resolver.ede_text = false;
    let mut probe = ProbeConfig {
        ehlo_name: a.ehlo.clone(),
        stage_timeout: Duration::from_secs(a.smtp_timeout),
        ..ProbeConfig::default()
    };
    if a.lab {
        probe.stage_timeout = probe.stage_timeout.min(Duration::from_secs(5));
        probe.session_timeout = Duration::from_secs(20);
    }
    let inputs = if !a.inputs.is_empty() {
        a.inputs.clone()
    } else if a.lab {
        vec![lab::scenario::zonelist(lab::month(&lab::default_dir())).to_string()]
    } else {
        vec![crate::zonelist::DEFAULT_INPUT.to_string()]
    };
    let cfg = CrawlConfig {
        inputs,
        format: a.format,
        origin: a.origin.clone(),
        shard: a.shard,
        out: a.out.clone(),
        snapshot: a.snapshot.clone(),
        fresh: a.fresh,
        resolver,
        selfcheck: selfcheck_names,
        probe,
        at: a.at.as_deref().map(|t| parse_at(Some(t))).transpose()?,
        allow_loopback,
        probe_all: a.probe_all_hosts,
        smtp: SmtpLimits {
            sessions: a.smtp_sessions.max(1),
            sessions_per_address: a.sessions_per_address.max(1),
            per_provider_rate: NonZeroU32::new(a.provider_rate),
        },
        domains_in_flight: a.domains_in_flight.max(1),
        dispatchers: a.threads.map_or_else(default_threads, usize::from),
        part_size: a.part_size,
        max_open_parts: 64,
        optout: a.opt_out.clone(),
        progress_bars: !a.no_progress,
        progress_interval: Duration::from_secs(a.progress_interval.max(1)),
    };
    let s = crate::crawl::run(cfg).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        print!("{}", report::crawl_text(&s));
    }
    Ok(ExitCode::SUCCESS)
}

fn merge(a: MergeArgs) -> Result<ExitCode> {
    use crate::snapshot;
    let shards = if a.shards.is_empty() {
        let root = a.out.join("_shards");
        let mut dirs = Vec::new();
        let mut dates = std::collections::BTreeSet::new();
        for e in std::fs::read_dir(&root)
            .with_context(|| format!("no shard outputs under {}", root.display()))?
        {
            let shard_root = e?.path();
            for s in snapshot::catalogue(&shard_root)? {
                if a.snapshot.as_ref().is_none_or(|d| *d == s.date) {
                    dates.insert(s.date.clone());
                    dirs.push((s.date, s.dir));
                }
            }
        }
        let Some(date) = a.snapshot.clone().or_else(|| dates.last().cloned()) else {
            bail!("no shard snapshots under {}", root.display());
        };
        dirs.into_iter()
            .filter(|(d, _)| *d == date)
            .map(|(_, p)| p)
            .collect()
    } else {
        a.shards.clone()
    };
    let Some(first) = shards.first() else {
        bail!("nothing to merge");
    };
    let date = match &a.snapshot {
        Some(d) => d.clone(),
        None => {
            snapshot::read_run(first)?
                .with_context(|| format!("{} has no run.json", first.display()))?
                .snapshot
        }
    };
    crate::crawl::check_date(&date)?;
    let dest = snapshot::snapshot_dir(&a.out, &date);
    let run = snapshot::merge(&shards, &dest)?;
    println!(
        "merged {} shard(s) into {}: {} domains, complete: {}",
        shards.len(),
        dest.display(),
        run.rows.get("domains").copied().unwrap_or(0),
        run.complete
    );
    Ok(ExitCode::SUCCESS)
}

fn aliases(c: &ReportCommon) -> Result<report::rank::Aliases> {
    read_aliases(c.aliases.as_deref())
}

fn read_aliases(path: Option<&std::path::Path>) -> Result<report::rank::Aliases> {
    match path {
        Some(p) => report::rank::Aliases::parse(
            &std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
        )
        .with_context(|| format!("in {}", p.display())),
        None => Ok(report::rank::Aliases::default()),
    }
}

fn rank(a: RankArgs) -> Result<ExitCode> {
    use report::rank::{explain_text, table, Compare};
    use report::source;
    use report::table::Format;
    let aliases = aliases(&a.common)?;
    let (this, last) = source::pick(&a.common.out, a.month.as_deref(), a.vs.as_deref())?;
    let mut cmp = Compare::new(&aliases, last.is_some(), Some(a.examples));
    if let Some(l) = &last {
        source::for_each_domain(&l.dir, |r| cmp.add_last(r))?;
    }
    source::for_each_domain(&this.dir, |r| cmp.add_this(r))?;
    let ranking = cmp.finish();
    let month = &this.date[..7];
    let vs = last.as_ref().map(|l| &l.date[..7]);
    let bytes = match a.common.format {
        Format::Table | Format::Md => {
            let md = a.common.format == Format::Md;
            let th = report::table::thousands;
            let mut o = format!(
                "{}Providers by DANE domains, {month} (snapshot {}){}: {} DANE domains of {}{}\n\n",
                if md { "## " } else { "" },
                this.date,
                last.as_ref()
                    .map(|l| format!(" vs {} (snapshot {})", &l.date[..7], l.date))
                    .unwrap_or_default(),
                th(ranking.dane_total as i64),
                th(ranking.domains as i64),
                match (ranking.dane_total_last, ranking.domains_last) {
                    (Some(d), Some(n)) => format!(
                        " ({} of {} in {})",
                        th(d as i64),
                        th(n as i64),
                        vs.unwrap_or("")
                    ),
                    _ => " (no earlier month to compare with)".into(),
                }
            );
            let t = table(&ranking, month, vs, a.top, false);
            o.push_str(&if md { t.markdown() } else { t.text() });
            let ex = explain_text(&ranking, a.movers, md);
            if !ex.is_empty() {
                o.push_str(&format!(
                    "\n{}Changes explained (top {} movers):\n{}",
                    if md { "### " } else { "" },
                    a.movers,
                    if md { "\n" } else { "" }
                ));
                o.push_str(&ex);
            }
            o.into_bytes()
        }
        Format::Json => {
            let mut rows = ranking.rows.clone();
            rows.truncate(a.top);
            let movers: Vec<&str> = ranking
                .movers(a.movers)
                .iter()
                .map(|r| r.provider.as_str())
                .collect();
            let v = serde_json::json!({
                "month": month,
                "snapshot": this.date,
                "vs": vs,
                "vs_snapshot": last.as_ref().map(|l| l.date.clone()),
                "dane_total": ranking.dane_total,
                "dane_total_last": ranking.dane_total_last,
                "domains": ranking.domains,
                "domains_last": ranking.domains_last,
                "rows": rows,
                "movers": movers,
            });
            let mut b = serde_json::to_vec_pretty(&v)?;
            b.push(b'\n');
            b
        }
        f => table(&ranking, month, vs, a.top, true).render(f)?,
    };
    report::table::emit(&bytes, a.common.output.as_deref())?;
    Ok(ExitCode::SUCCESS)
}

fn adopters(a: AdoptersArgs) -> Result<ExitCode> {
    use report::adopters::{table, Adopters};
    use report::source;
    use report::table::Format;
    let aliases = aliases(&a.common)?;
    let (this, _) = source::pick(&a.common.out, a.month.as_deref(), None)?;
    let mut t = Adopters::new(&aliases);
    source::for_each_domain(&this.dir, |r| t.add(r))?;
    let rows = t.finish();
    let bytes = match a.common.format {
        Format::Table | Format::Md => {
            let md = a.common.format == Format::Md;
            let tab = table(&rows, a.top);
            format!(
                "{}Slow adopters, {} (snapshot {}): providers by signed domains without DANE\n\n{}",
                if md { "## " } else { "" },
                &this.date[..7],
                this.date,
                if md { tab.markdown() } else { tab.text() }
            )
            .into_bytes()
        }
        f => table(&rows, a.top).render(f)?,
    };
    report::table::emit(&bytes, a.common.output.as_deref())?;
    Ok(ExitCode::SUCCESS)
}

fn failures(a: FailuresArgs) -> Result<ExitCode> {
    use report::failures::{failures, flat, text, HostUse};
    use report::source;
    use report::table::Format;
    let (this, _) = source::pick(&a.common.out, a.month.as_deref(), None)?;
    let hosts = source::hosts(&this.dir)?;
    let probes = source::probes(&this.dir)?;
    let mut used = HostUse::default();
    source::for_each_domain(&this.dir, |r| used.add(r))?;
    let judged_at = this.run.as_ref().map(|r| r.judged_at).unwrap_or(0);
    let f = failures(&hosts, &probes, &used, judged_at, a.expiring_days);
    let bytes = match a.common.format {
        Format::Table | Format::Md => {
            let md = a.common.format == Format::Md;
            format!(
                "{}Failures, {} (snapshot {})\n{}",
                if md { "# " } else { "" },
                &this.date[..7],
                this.date,
                text(&f, md)
            )
            .into_bytes()
        }
        Format::Json => {
            let mut b = serde_json::to_vec_pretty(&serde_json::json!({
                "snapshot": this.date,
                "report": f,
            }))?;
            b.push(b'\n');
            b
        }
        fmt => flat(&f).render(fmt)?,
    };
    report::table::emit(&bytes, a.common.output.as_deref())?;
    Ok(ExitCode::SUCCESS)
}

fn trend(a: TrendArgs) -> Result<ExitCode> {
    use report::source;
    use report::trend::{series, svg, table, Counts};
    let aliases = aliases(&a.common)?;
    let snaps = source::complete(&a.common.out)?;
    if snaps.is_empty() {
        bail!("no complete snapshot under {}", a.common.out.display());
    }
    let mut counts = Vec::new();
    for s in &snaps {
        let mut c = Counts::default();
        source::for_each_domain(&s.dir, |r| c.add(r, &aliases))?;
        counts.push((s.date.clone(), c));
    }
    let points = series(&counts, a.top);
    if let Some(path) = &a.svg {
        std::fs::write(path, svg(&points)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("chart written to {}", path.display());
    }
    let bytes = match a.common.format {
        report::table::Format::Json => {
            let mut b = serde_json::to_vec_pretty(&points)?;
            b.push(b'\n');
            b
        }
        f => table(&points).render(f)?,
    };
    report::table::emit(&bytes, a.common.output.as_deref())?;
    Ok(ExitCode::SUCCESS)
}

fn site(a: SiteArgs) -> Result<ExitCode> {
    use crate::site::{load, pages, Options};
    let started = std::time::Instant::now();
    let aliases = read_aliases(a.aliases.as_deref())?;
    let mut asked: Vec<(String, String)> = a
        .lookup
        .iter()
        .map(|d| (d.clone(), "--lookup".to_string()))
        .collect();
    if let Some(p) = &a.lookup_file {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if !line.is_empty() {
                asked.push((line.to_string(), format!("{}:{}", p.display(), i + 1)));
            }
        }
    }
    let mut lookups = Vec::new();
    for (d, from) in asked {
        let name = normalize_domain(&d).map_err(|e| anyhow!("{from}: {e}"))?;
        lookups.push(crate::names::display(&name));
    }
    let options = Options {
        provider_pages: a.providers,
        rows: a.rows,
        movers: a.movers,
        examples: a.examples,
        expiring_days: a.expiring_days,
        ..Options::default()
    };
    let data = load::load(&load::Request {
        out: &a.out,
        month: a.month.as_deref(),
        vs: a.vs.as_deref(),
        aliases: &aliases,
        lookups: &lookups,
        options,
    })?;
    let loaded = started.elapsed();
    let files = pages::build(&data)?;
    files.write(&a.dest)?;
    println!(
        "site for {} (snapshot {}{}) written to {}: {}, {:.1} MB, {}, {}; {:.1} s (reading the \
         snapshots {:.1} s)",
        data.month,
        data.snapshot,
        data.vs
            .as_ref()
            .map(|(_, s)| format!(" vs {s}"))
            .unwrap_or_default(),
        a.dest.display(),
        report::counted(files.files.len() as u64 + 1, "file"),
        files.bytes() as f64 / 1e6,
        report::counted(data.providers.len() as u64, "provider page"),
        report::counted(data.lookups.len() as u64, "lookup page"),
        started.elapsed().as_secs_f64(),
        loaded.as_secs_f64(),
    );
    Ok(ExitCode::SUCCESS)
}

fn bench_snapshots(a: BenchSnapshotsArgs) -> Result<ExitCode> {
    let s = crate::site::synth::Synth::new(a.domains);
    for m in 1..=a.months {
        let date = format!("{}-{:02}-01", 2030 + (m - 1) / 12, (m - 1) % 12 + 1);
        let started = std::time::Instant::now();
        let n = s.write(&a.out, &date, m)?;
        println!(
            "snapshot {date}: {n} domains, {} providers, {:.1} s",
            s.providers,
            started.elapsed().as_secs_f64()
        );
    }
    let examples: Vec<String> = [1, 42, 4242, 99_999]
        .into_iter()
        .filter(|&i| i < a.domains)
        .map(crate::site::synth::Synth::domain)
        .collect();
    println!("example domains: {}", examples.join(" "));
    Ok(ExitCode::SUCCESS)
}

async fn bench_dns(args: BenchDnsArgs) -> Result<ExitCode> {
    let text = std::fs::read_to_string(&args.queries)
        .with_context(|| format!("cannot read {}", args.queries.display()))?;
    let queries = crate::dns::bench::read_queries(&text)
        .with_context(|| format!("in {}", args.queries.display()))?;
    let mut cfg = ResolverConfig::new(vec![
        ResolverConfig::parse_server(&args.server).map_err(|e| anyhow!(e))?
    ]);
    cfg.max_in_flight = args.in_flight;
    cfg.retries = args.retries;
    cfg.timeout = Duration::from_secs(args.timeout);
    cfg.max_timeout = cfg.timeout;
    cfg.udp_sockets = args.sockets;
    let resolver = std::sync::Arc::new(Resolver::new(cfg).map_err(|e| anyhow!(e))?);
    let report = crate::dns::bench::run(resolver, &queries, args.count, args.in_flight).await;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(ExitCode::SUCCESS)
}

async fn lab_op(action: LabAction, dir: &std::path::Path) -> Result<ExitCode> {
    match action {
        LabAction::Up { month } => {
            let started = std::time::Instant::now();
            if lab::up(dir, Some(month)).await? {
                println!(
                    "lab up in {:.1} s (month {month}): resolver {} validates the private root; \
                     files in {}",
                    started.elapsed().as_secs_f64(),
                    lab::resolver_addr(),
                    dir.display()
                );
            } else {
                println!(
                    "lab already up (month {month}, resolver {})",
                    lab::resolver_addr()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        LabAction::Down => {
            let stopped = lab::down(dir)?;
            if stopped.is_empty() {
                println!("lab was not running");
            } else {
                println!("lab down: stopped {}", stopped.join(", "));
            }
            Ok(ExitCode::SUCCESS)
        }
        LabAction::HostileSmtpd => {
            lab::hostile::serve()
                .await
                .context("hostile SMTP servers")?;
            Ok(ExitCode::SUCCESS)
        }
        LabAction::Status => {
            let st = lab::status(dir).await?;
            for (p, up) in &st.processes {
                println!(
                    "{:<10} pid {:<8} {}",
                    p.name,
                    p.pid,
                    if *up { "running" } else { "NOT RUNNING" }
                );
            }
            println!("month      {}", lab::month(dir));
            match &st.resolver {
                Ok(()) => println!(
                    "resolver   {} validates the private root",
                    lab::resolver_addr()
                ),
                Err(e) => println!("resolver   {}: {e}", lab::resolver_addr()),
            }
            Ok(if st.healthy() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_timeout_must_be_a_sane_positive_number() {
        let crawl = |t: &str| Cli::try_parse_from(["dane-survey", "crawl", "--dns-timeout", t]);
        for bad in ["0", "-1", "nan", "inf", "3601", "soon"] {
            assert!(crawl(bad).is_err(), "{bad}");
        }
        let Command::Crawl(a) = crawl("4.5").expect("4.5 s is fine").command else {
            panic!("not the crawl");
        };
        assert_eq!(a.dns_timeout, 4.5);
        assert_eq!(a.dns_retries, 2);
    }
}
