//! The rows of a snapshot: one struct per table, in the vocabulary of RFC 7672.
//!
//! These are the survey's durable record: researchers query them for years, so every field
//! says what was seen (the RRsets as published, the digests of what was presented) next to
//! what was concluded (the verdicts), and a change of meaning bumps [`SCHEMA_VERSION`].
//! Times are unix microseconds (UTC) unless the name says seconds; the `*_at` and
//! `duration_ms` fields are timings, the only fields that differ between two crawls of an
//! unchanged world.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::verdict::{AddressVerdict, DomainVerdict, HostVerdict};

/// Version of the snapshot schema (the tables below, their columns and their meanings).
/// Written into every Parquet file's key-value metadata and into `run.json`.
pub const SCHEMA_VERSION: u32 = 1;

/// One MX record as published.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MxRecord {
    /// MX preference (lower is preferred).
    pub preference: i32,
    /// The exchange, absolute, lower case, without the trailing dot (`.` for a null MX).
    pub exchange: String,
}

/// How one TLSA candidate name was answered (RFC 7672 §2.2.3 tries the CNAME-expanded name
/// first, then the host as published).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsaLookup {
    /// The query name (`_25._tcp.<candidate base domain>`).
    pub name: String,
    /// The answer in words (`secure data (2)`, `insecure NODATA`, `SERVFAIL (EDE 9 …)`).
    pub result: String,
}

/// A TLSA record that cannot be used for SMTP, with the reason (RFC 7672 §3.1.3, RFC 7671 §9).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnusableTlsa {
    /// The record in presentation form (`3 1 1 <hex>`).
    pub record: String,
    /// Why it is unusable.
    pub reason: String,
}

/// One row of `domains/`: a domain of the input and its headline verdict.
///
/// Exists because the monthly figures are counts of domains: the domain table is what
/// `rank`, `adopters` and `trend` group and count; hosts and probes are joined in for evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainRow {
    /// The domain, normalised (lower case, A-labels), without the trailing dot.
    pub domain: String,
    /// Its top-level domain (`com`, `xn--p1ai`).
    pub tld: String,
    /// The input source it came from (first one, if several named it).
    pub source: String,
    /// The MX lookup in words (`secure data (2)`, `insecure NXDOMAIN`, `SERVFAIL …`).
    pub mx_lookup: String,
    /// `secure` or `insecure` when the MX lookup got an answer or a denial; null on failure.
    pub mx_security: Option<String>,
    /// The MX RRset as published, sorted by preference and exchange (empty unless the lookup
    /// returned data).
    pub mx: Vec<MxRecord>,
    /// The primary (lowest-preference) MX hosts, sorted.
    pub primary_hosts: Vec<String>,
    /// The provider: registrable domain (public suffix list) of the first primary MX host.
    pub provider: Option<String>,
    /// The providers of all primary MX hosts, sorted and distinct.
    pub providers: Vec<String>,
    /// The headline verdict over the primary MX hosts.
    pub verdict: DomainVerdict,
    /// The verdict over every MX host (null when the MX RRset was not secure data).
    pub all_hosts_verdict: Option<DomainVerdict>,
    /// Why, in a sentence.
    pub reason: String,
    /// When the domain's row was completed (unix µs; the crawl stamps the domains finished
    /// together with one reading) — a timing.
    pub checked_at: i64,
}

/// One row of `hosts/`: an MX host's DNS facts, resolved once per snapshot.
///
/// Exists because thousands of domains share a host: its TLSA RRset and verdict are stored
/// once, and the domain rows refer to it by name (`primary_hosts`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRow {
    /// The MX host name as published in MX records, without the trailing dot.
    pub host: String,
    /// Registrable domain of the host (the provider), if it has one.
    pub provider: Option<String>,
    /// The A and AAAA lookups in words.
    pub address_lookup: String,
    /// `secure` when both address answers validated, `insecure` otherwise; null on failure.
    pub address_security: Option<String>,
    /// The CNAME-expanded name, when the host is an alias.
    pub canonical: Option<String>,
    /// The addresses found (at most 16 are probed), text form.
    pub addresses: Vec<String>,
    /// Each TLSA candidate asked, in order.
    pub tlsa_lookups: Vec<TlsaLookup>,
    /// The TLSA base domain whose secure RRset was used (RFC 7672 §2.2.3), if any.
    pub tlsa_base_domain: Option<String>,
    /// The TLSA RRset as published, presentation form, sorted.
    pub tlsa: Vec<String>,
    /// The usable subset (RFC 7672 §3.1.3 with digest agility).
    pub tlsa_usable: Vec<String>,
    /// The unusable records and why.
    pub tlsa_unusable: Vec<UnusableTlsa>,
    /// The host verdict (domain-independent: reference identifiers are the TLSA base domain and
    /// the host; a domain row may still pass a DANE-TA leaf that names the domain itself).
    pub verdict: HostVerdict,
    /// Why, in a sentence.
    pub reason: String,
    /// The host (or all its addresses) is on the opt-out list: its addresses were not probed.
    pub opted_out: bool,
    /// When its DNS facts were complete (unix µs) — a timing.
    pub resolved_at: i64,
}

/// One row of `probes/`: one address of one MX host, probed with STARTTLS and judged.
///
/// Exists as the evidence behind every failure report: what the server presented (digests,
/// expiry, names) and how it matched the host's TLSA records. The SMTP session behind it is
/// shared by every host that resolves to the same address with the same SNI.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeRow {
    /// The MX host.
    pub host: String,
    /// The address, text form.
    pub address: String,
    /// The SNI sent (the TLSA base domain, or the host when it has no TLSA).
    pub sni: String,
    /// The address verdict.
    pub verdict: AddressVerdict,
    /// Why, in a sentence.
    pub reason: String,
    /// The TLSA record that matched (presentation form).
    pub matched: Option<String>,
    /// Last stage completed (`connect`, `banner`, `ehlo`, `starttls`, `tls_handshake`, `done`);
    /// null when not probed.
    pub stage_reached: Option<String>,
    /// The greeting text (bounded).
    pub banner: Option<String>,
    /// Whether EHLO listed STARTTLS (null when EHLO was not reached).
    pub starttls_offered: Option<bool>,
    /// `TLSv1.3` / `TLSv1.2` once the handshake completed.
    pub tls_version: Option<String>,
    /// Negotiated cipher suite.
    pub cipher: Option<String>,
    /// SHA-256 of each presented certificate (DER), hex, leaf first.
    pub cert_sha256: Vec<String>,
    /// SHA-256 of each presented certificate's SubjectPublicKeyInfo, hex, leaf first.
    pub spki_sha256: Vec<String>,
    /// The leaf's DNS names (subjectAltName dNSNames, or the CN when there are none).
    pub leaf_names: Vec<String>,
    /// The leaf's notBefore, unix seconds.
    pub leaf_not_before: Option<i64>,
    /// The leaf's notAfter, unix seconds.
    pub leaf_not_after: Option<i64>,
    /// The earliest notAfter over the presented chain, unix seconds.
    pub chain_not_after_min: Option<i64>,
    /// What the server would need published: its leaf as a `3 1 1` record.
    pub leaf_3_1_1: Option<String>,
    /// Stage at which the probe stopped early.
    pub error_stage: Option<String>,
    /// Error kind (`connect_refused`, `timeout`, `starttls_not_offered`, `tls`, …).
    pub error_kind: Option<String>,
    /// Error text (bounded).
    pub error_message: Option<String>,
    /// SMTP reply code of the failing reply, if any.
    pub reply_code: Option<i32>,
    /// When the probe started (unix µs) — a timing.
    pub probed_at: Option<i64>,
    /// How long it took — a timing.
    pub duration_ms: Option<i64>,
}

/// One input source's contribution, as recorded in `run.json`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputInfo {
    /// The source as given.
    pub source: String,
    /// `zone` or `list`.
    pub format: Option<String>,
    /// The zone apex, for a zone.
    pub apex: Option<String>,
    /// Names extracted (before sharding and de-duplication across sources).
    pub names: u64,
    /// Names in this shard.
    pub in_shard: u64,
    /// Malformed lines skipped.
    pub bad_lines: u64,
    /// Names per TLD in this shard.
    pub tlds: BTreeMap<String, u64>,
}

/// `run.json`: what a snapshot is, how it was made, and whether it is complete.
///
/// Exists so a snapshot documents its own coverage and provenance; reports use only
/// snapshots whose `complete` is true.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    /// `dane-survey` version that wrote the snapshot.
    pub tool_version: String,
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// [`crate::verdict::TAXONOMY_VERSION`].
    pub taxonomy_version: u32,
    /// The snapshot date, `YYYY-MM-DD`.
    pub snapshot: String,
    /// `K/N` when this is one shard's output; null for a whole (or merged) snapshot.
    pub shard: Option<String>,
    /// Shards merged into this snapshot (by `dane-survey merge`), as `K/N`.
    pub merged_shards: Vec<String>,
    /// The inputs with their counts.
    pub inputs: Vec<InputInfo>,
    /// Names handed to the crawl after de-duplication across sources.
    pub domains_input: u64,
    /// Domains skipped because they (or a parent) are on the opt-out list.
    pub domains_opted_out: u64,
    /// Resolver addresses used.
    pub resolvers: Vec<String>,
    /// The time certificates were judged at, unix seconds.
    pub judged_at: i64,
    /// Crawl start and end (RFC 3339); `finished` null while incomplete.
    pub started: String,
    /// See `started`.
    pub finished: Option<String>,
    /// True once every part is written and the counts below are final.
    pub complete: bool,
    /// Domain rows per verdict.
    pub verdicts: BTreeMap<String, u64>,
    /// Rows written per table (`domains`, `hosts`, `probes`).
    pub rows: BTreeMap<String, u64>,
    /// Crawl settings worth knowing when comparing snapshots (rates, caps, EHLO name, …).
    pub settings: BTreeMap<String, String>,
}
