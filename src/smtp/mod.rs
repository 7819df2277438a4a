//! SMTP STARTTLS probe: gets from a TCP address to the certificate chain a
//! mail server presents over STARTTLS, and records how far it got.
//!
//! # Why this module exists
//!
//! DANE for SMTP (RFC 7672) is judged against the chain an MX host actually
//! presents after `STARTTLS`. To measure it across millions of mail domains
//! we must drive the SMTP dialogue up to the TLS handshake against servers
//! we did not write and cannot trust: they may be slow, chatty, broken or
//! hostile. This module does exactly that dialogue, never sends mail, and
//! bounds every resource a peer could make it spend. The DANE judgement
//! itself is done elsewhere, from [`ProbeResult::chain`].
//!
//! # Stages
//!
//! 1. [`Stage::Connect`]: TCP connect, bounded by `connect_timeout`.
//! 2. [`Stage::Banner`]: read the greeting; any 2xx is accepted (multi-line
//!    allowed), 4xx/5xx is [`ProbeErrorKind::Rejected`].
//! 3. [`Stage::Ehlo`]: send `EHLO <ehlo_name>`, read the 250 reply, record
//!    the extension lines, look for the `STARTTLS` keyword.
//! 4. [`Stage::Starttls`]: if not offered, send `QUIT` (best effort) and
//!    stop with [`ProbeErrorKind::StarttlsNotOffered`]; otherwise send
//!    `STARTTLS` and require `220`. If the server has sent *anything* after
//!    that 220 with it (bytes already read), the probe aborts with
//!    [`ProbeErrorKind::PipelinedData`]: bytes received in plaintext are
//!    never fed to TLS (the STARTTLS command-injection class, CVE-2011-0411
//!    and relatives), and nothing is sent between `STARTTLS` and the
//!    ClientHello. The ClientHello follows at once, without waiting to see
//!    whether more comes (a pause here would cost every session its length,
//!    and sessions to one address go one at a time): an SMTP reply arriving
//!    later fails the handshake and is reported as pipelined data too, while
//!    other bytes are TLS's to reject (no certificate is recorded without a
//!    handshake signed by the leaf's key).
//! 5. [`Stage::TlsHandshake`]: TLS 1.3 or 1.2 via rustls (ring provider),
//!    SNI set from the caller's name unless it is an IP literal or not a
//!    valid DNS name. The [`verifier::RecordingVerifier`] records the chain
//!    without judging it but still checks handshake signatures, so the
//!    server proves possession of the leaf's key.
//! 6. [`Stage::Done`]: `QUIT` sent over TLS; the 221 is read best effort
//!    with a short timeout and the connection closed.
//!
//! # Bounds
//!
//! * every reply line at most `max_line_len` bytes, every reply at most
//!   `max_reply_lines` lines, at most `max_session_bytes` read in
//!   plaintext in total ([`reply::ReplyParser`] is incremental and never
//!   buffers beyond these);
//! * each stage (banner, EHLO reply, STARTTLS reply, TLS handshake) within
//!   `stage_timeout`, including the write of the command that starts it;
//! * the whole probe within `session_timeout`; on expiry the error is
//!   [`ProbeErrorKind::Timeout`] at the stage that was in progress;
//! * TLS-layer message sizes are bounded by rustls itself.
//!
//! Peer text that ends up in results (banner, EHLO lines) is lossily
//! decoded UTF-8 and bounded by the limits above; peer bytes quoted in
//! error messages are escaped and truncated.

pub mod probe;
pub mod reply;
pub mod verifier;

pub use probe::{probe, ProbeConfig, ProbeError, ProbeErrorKind, ProbeResult, Stage};
