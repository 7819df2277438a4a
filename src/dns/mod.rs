//! DNS lookups with their DNSSEC security state.
//!
//! The survey never validates signatures itself: it asks a *validating* resolver that it trusts
//! (one on loopback, or one the user explicitly marks as trusted) with the DO bit set, and reads
//! the resolver's judgement from the answer. That judgement is the whole point of every lookup,
//! so a lookup never returns bare records: it returns a [`Lookup`] that carries the
//! [`Security`] of the data (or of the denial), and failures keep the resolver's RCODE and
//! Extended DNS Error (RFC 8914) so DNSSEC failures stay distinguishable from lame servers and
//! timeouts.
//!
//! ## How secure, insecure and bogus are told apart
//! * **secure** — the resolver set the AD bit. RFC 4035 §3.2.3: AD is set only when every
//!   RRset in the answer and authority sections is authentic, so a CNAME chain reported with
//!   AD is secure link by link.
//! * **insecure** — NOERROR/NXDOMAIN *without* AD from a validating resolver. A validating
//!   resolver answers SERVFAIL for bogus data, so an answer without AD means the resolver proved
//!   the name lies below an insecure delegation (or an unsigned CNAME target). This costs no
//!   extra query per domain; it is only sound because [`selfcheck`] proved at start-up that the
//!   resolver validates (AD on a signed name, SERVFAIL on a bogus one).
//! * **error** — SERVFAIL (with its EDE code when the resolver sends one), REFUSED, other
//!   RCODEs, timeouts and malformed answers, each kept distinct in [`DnsFailure`].
//!
//! ## Cost
//! One query per lookup: no extra queries are spent proving insecurity, because the validating
//! resolver has already walked the chain of trust (and cached it) to decide whether to set AD.
//! A CNAME chain costs nothing extra either: the resolver follows it and AD covers every link.
//!
//! ## Transport
//! See [`client`]: a multiplexed UDP client over a few connected sockets per resolver, answers
//! matched by id and question, TCP fallback on truncation over one pipelined connection per
//! resolver, doubling timeouts, bounded retries, a cap on queries in flight and an optional
//! rate limit.

pub mod bench;
pub mod client;
mod lookup;
pub mod wire;

pub use client::{Resolver, ResolverConfig, Response, Stats, StatsSnapshot};
pub use lookup::{selfcheck, DnsFailure, Ede, Lookup, LookupData, Security, SelfCheckError};
