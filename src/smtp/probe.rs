//! The STARTTLS probe itself: SMTP dialogue up to and through the TLS
//! handshake, with every stage bounded in time and bytes.
//!
//! See the module documentation of [`crate::smtp`] for the stages and bounds.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;

use super::reply::{Reply, ReplyError, ReplyLimits, ReplyParser};
use super::verifier::RecordingVerifier;

/// Upper bound for the polite goodbye (QUIT, 221, close) on any path.
const QUIT_TIMEOUT: Duration = Duration::from_secs(2);
/// Size of one socket read while reading plaintext replies.
const READ_CHUNK: usize = 4096;
/// Longest EHLO argument we send (RFC 5321 domain length limit).
const MAX_EHLO_NAME: usize = 255;

/// Tunables for one probe.
///
/// Exists so the scheduler can trade thoroughness for throughput and tests
/// can use tiny bounds; the defaults suit a large survey of public MX hosts.
#[derive(Clone, Debug)]
pub struct ProbeConfig {
    /// Identifying name sent in EHLO. Characters outside printable ASCII
    /// (including spaces and CR/LF) are removed before sending; an empty
    /// result is replaced by `localhost`.
    pub ehlo_name: String,
    /// TCP connect timeout (default 10 s).
    pub connect_timeout: Duration,
    /// Per-stage timeout: banner, EHLO reply, STARTTLS reply, TLS handshake
    /// (default 30 s). Includes sending the command that starts the stage.
    pub stage_timeout: Duration,
    /// Timeout for the whole session (default 90 s).
    pub session_timeout: Duration,
    /// Maximum bytes per reply line, terminator excluded (default 4096).
    pub max_line_len: usize,
    /// Maximum lines per multi-line reply (default 128).
    pub max_reply_lines: usize,
    /// Maximum bytes read from the server before TLS (default 256 KiB).
    pub max_session_bytes: usize,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            ehlo_name: "localhost".to_owned(),
            connect_timeout: Duration::from_secs(10),
            stage_timeout: Duration::from_secs(30),
            session_timeout: Duration::from_secs(90),
            max_line_len: 4096,
            max_reply_lines: 128,
            max_session_bytes: 256 * 1024,
        }
    }
}

impl ProbeConfig {
    fn reply_limits(&self) -> ReplyLimits {
        ReplyLimits {
            max_line_len: self.max_line_len,
            max_reply_lines: self.max_reply_lines,
        }
    }
}

/// Stages of the probe, in order.
///
/// Exists so results can say how far a server got and where it failed;
/// the ordering lets analyses ask "reached at least EHLO".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// TCP connection.
    Connect,
    /// Server greeting.
    Banner,
    /// EHLO command and its reply.
    Ehlo,
    /// STARTTLS command and its reply (and the pipelined-data check).
    Starttls,
    /// TLS handshake.
    TlsHandshake,
    /// QUIT sent over TLS; the probe completed.
    Done,
}

/// Classification of a probe failure.
///
/// Exists so failures can be counted and compared across millions of
/// probes without parsing free-text messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeErrorKind {
    /// TCP connection refused.
    Refused,
    /// A connect, stage or session timeout expired.
    Timeout,
    /// Other I/O failure, including the server closing the connection.
    Io,
    /// A reply line exceeded `max_line_len`.
    ReplyTooLong,
    /// A reply exceeded `max_reply_lines`.
    TooManyLines,
    /// More than `max_session_bytes` were read before TLS.
    TooManyBytes,
    /// A reply violated the RFC 5321 reply grammar.
    Malformed,
    /// A 4xx/5xx (or otherwise unexpected) code where 2xx / 220 was expected.
    Rejected,
    /// The EHLO reply did not list STARTTLS.
    StarttlsNotOffered,
    /// The server sent bytes nobody asked for: after a reply before our next
    /// command, or an SMTP reply after the STARTTLS 220 where its side of the
    /// TLS handshake belongs. Bytes received with the 220 are never fed to TLS;
    /// a reply arriving later ends the handshake.
    PipelinedData,
    /// The TLS handshake failed (including the peer closing mid-handshake).
    Tls,
    /// The server speaks no TLS version, cipher suite or signature scheme the probe has
    /// (rustls: TLS 1.2 and 1.3, modern suites) — e.g. a TLS 1.0-only server. Recorded apart
    /// from [`ProbeErrorKind::Tls`] because it is a limit of the probe as much as a fault of
    /// the server (a current OpenSSL-based sender fails the same way).
    TlsIncompatible,
}

/// A probe failure: where, what class, and a human-readable detail.
///
/// Exists as the serialisable error record attached to a [`ProbeResult`].
/// Peer-supplied text in `message` is escaped and truncated.
#[derive(Clone, Debug, Serialize, thiserror::Error)]
#[error("{stage:?}: {kind:?}: {message}")]
pub struct ProbeError {
    /// Stage in progress when the failure happened.
    pub stage: Stage,
    /// Failure class.
    pub kind: ProbeErrorKind,
    /// Detail for humans.
    pub message: String,
    /// The server's reply code, for [`ProbeErrorKind::Rejected`].
    pub reply_code: Option<u16>,
}

/// Everything one probe of one address learned.
///
/// Exists as the unit of measurement the survey stores: even a failed
/// probe is data (how far it got, what the server said).
#[derive(Clone, Debug, Serialize)]
pub struct ProbeResult {
    /// The address probed.
    pub address: SocketAddr,
    /// Last stage completed successfully (`Done` = TLS up and QUIT sent).
    /// When the TCP connect itself fails this is `Connect` too; `error`
    /// (with `stage == Connect`) tells the two apart. `TlsHandshake` with
    /// no error means TLS came up but the QUIT could not be sent.
    pub stage_reached: Stage,
    /// Text of the first greeting line (after the code), bounded by
    /// `max_line_len`. Recorded for negative greetings too.
    pub banner: Option<String>,
    /// EHLO reply lines after the first (keywords with parameters).
    pub ehlo_extensions: Vec<String>,
    /// Whether the EHLO reply listed STARTTLS.
    pub starttls_offered: bool,
    /// `"TLSv1.3"` or `"TLSv1.2"` once the handshake completed.
    pub tls_version: Option<String>,
    /// rustls cipher suite name, e.g. `"TLS13_AES_256_GCM_SHA384"`.
    pub cipher: Option<String>,
    /// DER certificates as presented, leaf first. Filled whenever the
    /// server's Certificate message was received, even if the handshake
    /// then failed (e.g. bad signature); check `tls_version` for success.
    #[serde(skip)]
    pub chain: Vec<Vec<u8>>,
    /// Why the probe stopped early, if it did.
    pub error: Option<ProbeError>,
    /// Wall-clock duration of the probe in milliseconds.
    pub elapsed_ms: u64,
}

impl ProbeResult {
    /// A result for `address` before anything happened (nothing connected yet).
    pub fn new(address: SocketAddr) -> Self {
        ProbeResult {
            address,
            stage_reached: Stage::Connect,
            banner: None,
            ehlo_extensions: Vec::new(),
            starttls_offered: false,
            tls_version: None,
            cipher: None,
            chain: Vec::new(),
            error: None,
            elapsed_ms: 0,
        }
    }

    /// True if a sender could not even try TLS here, for reasons that are not a DANE
    /// failure (such a host is skipped, and mail waits or goes elsewhere): any failure to
    /// connect, a 4xx/5xx greeting, a temporary (4xx) answer to EHLO such as `421 too many
    /// connections`, or a timeout, reset or close before the TLS handshake. A refusal of
    /// STARTTLS itself (even 454) is not: it is what a sender sees when the server's TLS is
    /// broken, and it defers mail to a DANE domain.
    pub fn is_unreachable(&self) -> bool {
        let Some(e) = &self.error else { return false };
        match e.stage {
            Stage::Connect => true,
            Stage::Banner => matches!(
                e.kind,
                ProbeErrorKind::Timeout | ProbeErrorKind::Rejected | ProbeErrorKind::Io
            ),
            Stage::Ehlo => match e.kind {
                ProbeErrorKind::Timeout | ProbeErrorKind::Io => true,
                ProbeErrorKind::Rejected => e.reply_code.is_some_and(|c| (400..500).contains(&c)),
                _ => false,
            },
            Stage::Starttls => matches!(e.kind, ProbeErrorKind::Timeout | ProbeErrorKind::Io),
            Stage::TlsHandshake | Stage::Done => false,
        }
    }
}

/// A stage-local failure; the session attaches the stage.
struct Failure {
    kind: ProbeErrorKind,
    message: String,
    reply_code: Option<u16>,
}

impl Failure {
    fn new(kind: ProbeErrorKind, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
            reply_code: None,
        }
    }
}

impl From<ReplyError> for Failure {
    fn from(e: ReplyError) -> Self {
        let kind = match e {
            ReplyError::LineTooLong { .. } => ProbeErrorKind::ReplyTooLong,
            ReplyError::TooManyLines { .. } => ProbeErrorKind::TooManyLines,
            ReplyError::Malformed(_) => ProbeErrorKind::Malformed,
        };
        Failure::new(kind, e.to_string())
    }
}

/// Probes `address` for SMTP STARTTLS, using `sni` as the TLS server name.
///
/// Never panics on peer input and always returns a result; see
/// [`ProbeResult::error`] for why it stopped early.
pub async fn probe(address: SocketAddr, sni: &str, config: &ProbeConfig) -> ProbeResult {
    let start = Instant::now();
    let mut session = Session {
        config,
        in_progress: Stage::Connect,
        verifier: None,
        result: ProbeResult::new(address),
    };
    let outcome = timeout(config.session_timeout, session.run(sni)).await;
    let error = match outcome {
        Ok(Ok(())) => None,
        Ok(Err(f)) => Some((f.kind, f.message, f.reply_code)),
        // Timing out while saying goodbye after a completed handshake is
        // not a failure of the probe.
        Err(_) if session.in_progress == Stage::Done => None,
        Err(_) => Some((
            ProbeErrorKind::Timeout,
            format!("session timeout ({:?}) expired", config.session_timeout),
            None,
        )),
    };
    let Session {
        in_progress,
        verifier,
        mut result,
        ..
    } = session;
    result.error = error.map(|(kind, message, reply_code)| ProbeError {
        stage: in_progress,
        kind,
        message,
        reply_code,
    });
    if result.chain.is_empty() {
        if let Some(chain) = verifier.and_then(|v| v.chain()) {
            result.chain = chain;
        }
    }
    result.elapsed_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    result
}

/// State of one probe while it runs; survives a session timeout so the
/// partial result can still be reported.
struct Session<'a> {
    config: &'a ProbeConfig,
    in_progress: Stage,
    verifier: Option<Arc<RecordingVerifier>>,
    result: ProbeResult,
}

impl Session<'_> {
    async fn run(&mut self, sni: &str) -> Result<(), Failure> {
        let cfg = self.config;
        let stage_timeout = cfg.stage_timeout;

        // Connect.
        self.in_progress = Stage::Connect;
        let stream =
            match timeout(cfg.connect_timeout, TcpStream::connect(self.result.address)).await {
                Err(_) => {
                    return Err(Failure::new(
                        ProbeErrorKind::Timeout,
                        format!("connect timeout ({:?}) expired", cfg.connect_timeout),
                    ))
                }
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    return Err(Failure::new(ProbeErrorKind::Refused, e.to_string()))
                }
                Ok(Err(e)) => return Err(Failure::new(ProbeErrorKind::Io, e.to_string())),
                Ok(Ok(s)) => s,
            };
        // Best effort: small commands should not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let mut conn = PlainConn {
            stream,
            pending: Vec::new(),
            budget: cfg.max_session_bytes,
            limits: cfg.reply_limits(),
        };
        self.result.stage_reached = Stage::Connect;

        // Banner.
        self.in_progress = Stage::Banner;
        let banner = staged(stage_timeout, "greeting", conn.read_reply()).await?;
        self.result.banner = Some(banner.first_line().to_owned());
        if !banner.is_positive() {
            return Err(rejected("greeting", &banner));
        }
        self.result.stage_reached = Stage::Banner;

        // EHLO.
        self.in_progress = Stage::Ehlo;
        conn.ensure_nothing_pending("before EHLO")?;
        let ehlo_cmd = format!("EHLO {}\r\n", sanitize_ehlo_name(&cfg.ehlo_name));
        let ehlo = staged(stage_timeout, "EHLO reply", async {
            conn.send(ehlo_cmd.as_bytes()).await?;
            conn.read_reply().await
        })
        .await?;
        if !ehlo.is_positive() {
            conn.quit_best_effort(stage_timeout).await;
            return Err(rejected("EHLO", &ehlo));
        }
        self.result.ehlo_extensions = ehlo.lines.iter().skip(1).cloned().collect();
        self.result.starttls_offered = self.result.ehlo_extensions.iter().any(|line| {
            line.split_ascii_whitespace()
                .next()
                .is_some_and(|kw| kw.eq_ignore_ascii_case("STARTTLS"))
        });
        self.result.stage_reached = Stage::Ehlo;

        // STARTTLS.
        self.in_progress = Stage::Starttls;
        if !self.result.starttls_offered {
            conn.quit_best_effort(stage_timeout).await;
            return Err(Failure::new(
                ProbeErrorKind::StarttlsNotOffered,
                "EHLO reply does not list STARTTLS",
            ));
        }
        conn.ensure_nothing_pending("before STARTTLS")?;
        let starttls = staged(stage_timeout, "STARTTLS reply", async {
            conn.send(b"STARTTLS\r\n").await?;
            conn.read_reply().await
        })
        .await?;
        if starttls.code != 220 {
            conn.quit_best_effort(stage_timeout).await;
            return Err(rejected("STARTTLS", &starttls));
        }
        conn.ensure_nothing_pending("after the STARTTLS 220 reply")?;
        self.result.stage_reached = Stage::Starttls;

        // TLS handshake. Nothing was read past the 220 reply (checked
        // above), so the TLS layer starts from a clean socket.
        self.in_progress = Stage::TlsHandshake;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = Arc::new(RecordingVerifier::new(provider.clone()));
        self.verifier = Some(verifier.clone());
        let mut tls_config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| Failure::new(ProbeErrorKind::Tls, format!("TLS config: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone())
            .with_no_client_auth();
        tls_config.resumption = rustls::client::Resumption::disabled();
        let connector = TlsConnector::from(Arc::new(tls_config));
        let server_name = tls_server_name(sni, self.result.address);
        let watched = Watched {
            stream: conn.stream,
            head: Vec::new(),
        };
        let handshake = connector.connect(server_name, watched).into_fallible();
        let mut tls = match timeout(stage_timeout, handshake).await {
            Err(_) => {
                return Err(Failure::new(
                    ProbeErrorKind::Timeout,
                    format!("TLS handshake not complete within {stage_timeout:?}"),
                ))
            }
            Ok(Err((_, watched))) if is_smtp_reply(&watched.head) => {
                return Err(Failure::new(
                    ProbeErrorKind::PipelinedData,
                    format!(
                        "server sent an SMTP reply ({:?}…) after its STARTTLS 220, where the \
                             TLS handshake belongs",
                        String::from_utf8_lossy(&watched.head)
                    ),
                ));
            }
            Ok(Err((e, _))) => {
                let rustls_error = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
                let kind = match rustls_error {
                    Some(rustls::Error::PeerIncompatible(_))
                    | Some(rustls::Error::AlertReceived(
                        rustls::AlertDescription::ProtocolVersion
                        | rustls::AlertDescription::InsufficientSecurity,
                    )) => ProbeErrorKind::TlsIncompatible,
                    _ => ProbeErrorKind::Tls,
                };
                return Err(Failure::new(kind, format!("TLS handshake failed: {e}")));
            }
            Ok(Ok(tls)) => tls,
        };
        {
            let (_, client) = tls.get_ref();
            self.result.tls_version = client.protocol_version().map(version_name);
            self.result.cipher = client.negotiated_cipher_suite().map(|s| {
                let suite = s.suite();
                suite
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("{suite:?}"))
            });
            self.result.chain = verifier.chain().unwrap_or_else(|| {
                client
                    .peer_certificates()
                    .map(|certs| certs.iter().map(|c| c.as_ref().to_vec()).collect())
                    .unwrap_or_default()
            });
        }
        self.result.stage_reached = Stage::TlsHandshake;

        // QUIT over TLS; everything from here is best effort.
        self.in_progress = Stage::Done;
        let goodbye = QUIT_TIMEOUT.min(stage_timeout);
        let sent = matches!(
            timeout(goodbye, async {
                tls.write_all(b"QUIT\r\n").await?;
                tls.flush().await
            })
            .await,
            Ok(Ok(()))
        );
        if sent {
            self.result.stage_reached = Stage::Done;
            let limits = ReplyLimits {
                max_line_len: cfg.max_line_len,
                max_reply_lines: cfg.max_reply_lines.min(8),
            };
            let mut pending = Vec::new();
            let mut budget = cfg.max_line_len.saturating_mul(2);
            let _ = timeout(
                goodbye,
                read_reply_from(&mut tls, &mut pending, &mut budget, limits),
            )
            .await;
        }
        let _ = timeout(goodbye, tls.shutdown()).await;
        Ok(())
    }
}

/// The socket under TLS, remembering the first bytes the server sent after its STARTTLS 220.
///
/// Exists so the probe need not pause before its ClientHello to tell a server that pipelines
/// SMTP replies after the 220 (the STARTTLS injection class) from one whose TLS is broken:
/// the ClientHello goes out at once, and a handshake that fails on an SMTP reply is reported
/// as [`ProbeErrorKind::PipelinedData`]. Feeding those bytes to TLS is harmless: nothing is
/// accepted from the server before it has completed an authenticated handshake.
struct Watched {
    stream: TcpStream,
    /// Up to [`WATCHED_BYTES`] first bytes.
    head: Vec<u8>,
}

/// Bytes [`Watched`] keeps: enough for a reply code and its separator.
const WATCHED_BYTES: usize = 4;

/// Whether `head` begins like an SMTP reply (RFC 5321 §4.2: a code of three digits, then a
/// space or a hyphen), which no TLS record does (its first byte is a content type, 20–24).
fn is_smtp_reply(head: &[u8]) -> bool {
    matches!(head, [a, b, c, sep, ..]
        if (b'2'..=b'5').contains(a) && b.is_ascii_digit() && c.is_ascii_digit()
            && matches!(sep, b' ' | b'-'))
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.stream).poll_read(cx, buf);
        let room = WATCHED_BYTES - self.head.len();
        if room > 0 {
            let new = &buf.filled()[before..];
            let take = &new[..new.len().min(room)];
            self.head.extend_from_slice(take);
        }
        polled
    }
}

impl tokio::io::AsyncWrite for Watched {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Runs one stage's I/O under the stage timeout.
async fn staged<T>(
    limit: Duration,
    what: &str,
    fut: impl std::future::Future<Output = Result<T, Failure>>,
) -> Result<T, Failure> {
    match timeout(limit, fut).await {
        Ok(r) => r,
        Err(_) => Err(Failure::new(
            ProbeErrorKind::Timeout,
            format!("no complete {what} within {limit:?}"),
        )),
    }
}

/// The plaintext half of the connection, with its byte budget.
struct PlainConn {
    stream: TcpStream,
    /// Bytes read past the end of the last reply (at most one read chunk).
    pending: Vec<u8>,
    /// Bytes still allowed to be read before TLS.
    budget: usize,
    limits: ReplyLimits,
}

impl PlainConn {
    async fn read_reply(&mut self) -> Result<Reply, Failure> {
        read_reply_from(
            &mut self.stream,
            &mut self.pending,
            &mut self.budget,
            self.limits,
        )
        .await
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        self.stream
            .write_all(bytes)
            .await
            .map_err(|e| Failure::new(ProbeErrorKind::Io, format!("write failed: {e}")))
    }

    /// Fails if the server sent bytes beyond the last reply that we already
    /// hold. Without PIPELINING (we never use it) every reply answers
    /// exactly one command, so such bytes are unsolicited.
    fn ensure_nothing_pending(&self, when: &str) -> Result<(), Failure> {
        if self.pending.is_empty() {
            Ok(())
        } else {
            Err(Failure::new(
                ProbeErrorKind::PipelinedData,
                format!(
                    "server sent {} unsolicited byte(s) {when}",
                    self.pending.len()
                ),
            ))
        }
    }

    /// Sends QUIT and closes our side, ignoring all errors, bounded in time.
    async fn quit_best_effort(&mut self, stage_timeout: Duration) {
        let _ = timeout(QUIT_TIMEOUT.min(stage_timeout), async {
            self.stream.write_all(b"QUIT\r\n").await?;
            self.stream.shutdown().await
        })
        .await;
    }
}

/// Reads exactly one reply from `stream`, starting with `pending` bytes,
/// never reading more than `budget` bytes in total across calls. Bytes
/// past the reply's end are left in `pending`.
async fn read_reply_from<S: AsyncRead + Unpin>(
    stream: &mut S,
    pending: &mut Vec<u8>,
    budget: &mut usize,
    limits: ReplyLimits,
) -> Result<Reply, Failure> {
    let mut parser = ReplyParser::new(limits);
    if !pending.is_empty() {
        let feed = parser.feed(pending)?;
        pending.drain(..feed.consumed);
        if let Some(reply) = feed.reply {
            return Ok(reply);
        }
    }
    let mut buf = vec![0u8; READ_CHUNK];
    let mut total = 0usize;
    loop {
        if *budget == 0 {
            return Err(Failure::new(
                ProbeErrorKind::TooManyBytes,
                "read byte budget exhausted before the reply completed",
            ));
        }
        let want = buf.len().min(*budget);
        let n = stream
            .read(&mut buf[..want])
            .await
            .map_err(|e| Failure::new(ProbeErrorKind::Io, format!("read failed: {e}")))?;
        if n == 0 {
            let msg = if total == 0 {
                "connection closed by server before a reply"
            } else {
                "connection closed by server in the middle of a reply"
            };
            return Err(Failure::new(ProbeErrorKind::Io, msg));
        }
        total += n;
        *budget -= n;
        let feed = parser.feed(&buf[..n])?;
        if let Some(reply) = feed.reply {
            pending.extend_from_slice(&buf[feed.consumed..n]);
            return Ok(reply);
        }
    }
}

/// Error for a reply with an unexpected code, quoting its first line.
fn rejected(what: &str, reply: &Reply) -> Failure {
    const SHOW: usize = 200;
    let text: String = reply.first_line().chars().take(SHOW).collect();
    Failure {
        reply_code: Some(reply.code),
        ..Failure::new(
            ProbeErrorKind::Rejected,
            format!("{what} answered {} {text:?}", reply.code),
        )
    }
}

/// Keeps only printable, non-space ASCII so the EHLO line cannot be broken
/// or extended by the configured name.
fn sanitize_ehlo_name(name: &str) -> String {
    let clean: String = name
        .chars()
        .filter(char::is_ascii_graphic)
        .take(MAX_EHLO_NAME)
        .collect();
    if clean.is_empty() {
        "localhost".to_owned()
    } else {
        clean
    }
}

/// The TLS server name for `sni`. A trailing dot is removed. IP literals
/// and names that are not valid DNS names yield the peer's IP address,
/// for which rustls sends no SNI extension.
fn tls_server_name(sni: &str, address: SocketAddr) -> ServerName<'static> {
    let trimmed = sni.strip_suffix('.').unwrap_or(sni);
    match ServerName::try_from(trimmed.to_owned()) {
        Ok(name) => name,
        Err(_) => ServerName::IpAddress(address.ip().into()),
    }
}

fn version_name(v: rustls::ProtocolVersion) -> String {
    match v {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_owned(),
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_owned(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ehlo_name_is_sanitized() {
        assert_eq!(sanitize_ehlo_name("probe.example.org"), "probe.example.org");
        assert_eq!(sanitize_ehlo_name("a\r\nMAIL FROM:<x>"), "aMAILFROM:<x>");
        assert_eq!(sanitize_ehlo_name(" \r\n"), "localhost");
        assert_eq!(sanitize_ehlo_name(&"a".repeat(1000)).len(), MAX_EHLO_NAME);
    }

    #[test]
    fn server_name_choice() {
        let addr: SocketAddr = "192.0.2.1:25".parse().unwrap();
        assert!(matches!(
            tls_server_name("mx.example.com.", addr),
            ServerName::DnsName(d) if d.as_ref() == "mx.example.com"
        ));
        assert!(matches!(
            tls_server_name("198.51.100.7", addr),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            tls_server_name("not a name!", addr),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            tls_server_name("", addr),
            ServerName::IpAddress(_)
        ));
    }

    #[test]
    fn unreachable_classification() {
        let mut r = ProbeResult::new("192.0.2.1:25".parse().unwrap());
        assert!(!r.is_unreachable());
        let err = |stage, kind| {
            Some(ProbeError {
                stage,
                kind,
                message: String::new(),
                reply_code: None,
            })
        };
        r.error = err(Stage::Connect, ProbeErrorKind::Refused);
        assert!(r.is_unreachable());
        r.error = err(Stage::Banner, ProbeErrorKind::Rejected);
        assert!(r.is_unreachable());
        r.error = err(Stage::Banner, ProbeErrorKind::Malformed);
        assert!(!r.is_unreachable());
        r.error = err(Stage::Ehlo, ProbeErrorKind::Timeout);
        assert!(
            r.is_unreachable(),
            "a stall before TLS is not a DANE failure"
        );
        r.error = Some(ProbeError {
            stage: Stage::Starttls,
            kind: ProbeErrorKind::Rejected,
            message: String::new(),
            reply_code: Some(454),
        });
        assert!(
            !r.is_unreachable(),
            "454 to STARTTLS: the server's TLS is broken"
        );
        r.error = Some(ProbeError {
            stage: Stage::Ehlo,
            kind: ProbeErrorKind::Rejected,
            message: String::new(),
            reply_code: Some(421),
        });
        assert!(r.is_unreachable(), "421 to EHLO is temporary");
        r.error = Some(ProbeError {
            stage: Stage::Starttls,
            kind: ProbeErrorKind::Rejected,
            message: String::new(),
            reply_code: Some(502),
        });
        assert!(!r.is_unreachable(), "502 to STARTTLS: no TLS here");
        r.error = err(Stage::TlsHandshake, ProbeErrorKind::Timeout);
        assert!(!r.is_unreachable());
        r.error = err(Stage::Starttls, ProbeErrorKind::StarttlsNotOffered);
        assert!(!r.is_unreachable());
    }

    #[test]
    fn serializes_snake_case() {
        let e = ProbeError {
            stage: Stage::TlsHandshake,
            kind: ProbeErrorKind::PipelinedData,
            message: "x".into(),
            reply_code: None,
        };
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(
            json,
            r#"{"stage":"tls_handshake","kind":"pipelined_data","message":"x","reply_code":null}"#
        );
    }
}
