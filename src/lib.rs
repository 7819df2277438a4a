//! dane-survey measures DANE for SMTP (RFC 7672) across mail domains: which domains are
//! protected, which providers host them, and where TLSA records no longer match.
//!
//! # A map of the crate
//!
//! The survey is a pipeline; each stage is a module:
//!
//! * [`names`] — domain names as the survey accepts them (normalisation, MX target
//!   validity, the provider of an MX host via the public suffix list).
//! * [`zonelist`] — **inputs**: TLD zones (RFC 1035 master files, registry dumps, AXFR) and
//!   domain lists, streamed in bounded memory into normalised names, sharded, with coverage.
//! * [`dns`] — **collects** DNS facts: DO-bit queries to a trusted validating resolver, each
//!   answer classified secure / insecure / failed (with its Extended DNS Error), and the
//!   resolver self-check that refuses a resolver which does not validate.
//! * [`smtp`] — **collects** TLS facts: the bounded STARTTLS probe that records banner, EHLO,
//!   TLS version, cipher and the presented chain, without judging it.
//! * [`dane`] — **validates**, purely: TLSA usability, digest agility, DANE-EE and DANE-TA
//!   matching, name checks (RFC 6698, 7671, 7672). No I/O, so it is tested exhaustively.
//! * [`verdict`] — the versioned verdict taxonomy and the pure aggregation from addresses to
//!   hosts to domains.
//! * [`survey`] — **orchestrates** the decision procedure over the stages above (one domain
//!   for `check`; the crawl reuses the same steps).
//! * [`snapshot`] — **outputs** for machines: the versioned Parquet tables (domains, hosts,
//!   probes) and `run.json` of each snapshot, written atomically part by part.
//! * [`crawl`] — **orchestrates** the survey: every input name through the same procedure,
//!   with memo tables (a host resolved once, an address probed once), politeness limits,
//!   progress, and resumable Parquet snapshots.
//! * [`report`] — **outputs** for people: the `check` report, and the reports over the
//!   snapshots (`rank` with its change explanation, `adopters`, `failures`, `trend` and its
//!   SVG chart), each pure logic over rows with one I/O module that picks and streams
//!   snapshots.
//! * [`site`] — **outputs** for the public: the monthly report as a static web site (HTML,
//!   CSS, SVG charts, a CSV beside every table, no JavaScript), rendered from the same report
//!   computations as the commands above, with a page per top provider and per domain asked.
//! * [`lab`] — the offline mini-internet (nsd, unbound, Postfix on 127.x) with ground truth.
//! * [`operations`] — the command line; `main.rs` is a thin front-end over it.

pub mod crawl;
pub mod dane;
pub mod dns;
pub mod lab;
pub mod names;
pub mod operations;
pub mod report;
pub mod site;
pub mod smtp;
pub mod snapshot;
pub mod survey;
pub mod verdict;
pub mod zonelist;
