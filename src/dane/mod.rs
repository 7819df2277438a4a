//! Pure DANE-for-SMTP verification (RFC 7672, RFC 7671, RFC 6698), with no I/O.
//!
//! Why this module exists: the survey has to decide, for every MX host it
//! probes, whether the certificate chain the server presented would satisfy a
//! DANE-validating SMTP client given the host's published TLSA RRset.  That
//! decision must be reproducible (the same inputs always give the same answer,
//! so the time of the check is an explicit argument and never the wall clock)
//! and must never crash on hostile peer input (certificates and TLSA data come
//! from the network).  Keeping it free of DNS and TLS code lets it be tested
//! against fixed vectors such as OpenSSL's DANE test suite.
//!
//! The pieces:
//! * [`TlsaRecord`] — a TLSA record as published, parse/print in presentation form;
//! * [`usable_records`] — RFC 7672 §3.1.3 / RFC 7671 §9 filtering of an RRset
//!   into usable and unusable records (with reasons);
//! * [`verify`] — matches a presented chain against the usable records with
//!   SMTP semantics (DANE-EE(3): key/cert binding only; DANE-TA(2): chain,
//!   validity and name checks);
//! * [`name_matches`] / [`leaf_names`] — RFC 7672 §3.2.3 name checking helpers.

mod names;
mod tlsa;
mod usable;
mod verify;

#[cfg(test)]
pub(crate) mod testutil;

pub use names::{leaf_names, name_matches};
pub use tlsa::{tlsa_for, TlsaComputeError, TlsaParseError, TlsaRecord};
pub use usable::{usable_records, UnusableReason, Usability};
pub use verify::{verify, MatchOutcome, MatchedRecord, Verification};
