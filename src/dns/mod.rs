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
//! The transport is deliberately simple here: one UDP socket per query on a random source port
//! with a random query id, answers checked against the id, the question and the server address
//! (anything else is dropped), TCP fallback on truncation (RFC 7766 framing), a timeout per try
//! and bounded retries.

mod client;
mod lookup;

pub use client::{Resolver, ResolverConfig, Response};
pub use lookup::{selfcheck, DnsFailure, Ede, Lookup, LookupData, Security, SelfCheckError};
