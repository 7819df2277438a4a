//! The transport: one multiplexed client for millions of DO-bit queries to validating resolvers.
//!
//! * **UDP**: each resolver gets a small pool of connected UDP sockets ("lanes"), each on a
//!   kernel-chosen random source port and shared by every query in flight. A lane's receive
//!   task matches each datagram to its query by id *and* by the question echoed in it (names
//!   compared ignoring case); anything else — unknown or late id, wrong question, not a
//!   response, too short — is dropped and counted in [`Stats`]. Datagrams from any other
//!   source address never reach us: the sockets are connected, so the kernel filters them.
//! * **TCP** (RFC 7766): a truncated UDP answer is asked again over one persistent, pipelined
//!   connection per resolver (length-prefixed framing, answers matched by id and question in
//!   any order), reconnected on demand.
//! * **Limits**: a cap on queries in flight (a semaphore), an optional global rate in queries
//!   per second (governor), a timeout per try that doubles on each retry (bounded backoff),
//!   and a bounded number of retries, each to the least-loaded resolver.
//!
//! The receive loop only reads the header and compares the question bytes; the full parse
//! (hickory-proto) happens on the querying task, so parsing spreads over the runtime's workers.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use hickory_proto::op::Message;
use hickory_proto::rr::{Name, RecordType};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{oneshot, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::timeout;

use super::lookup::{ede, DnsFailure};
use super::wire::{
    build_query, is_response, is_truncated, message_id, question_span, same_question,
};

/// Largest datagram accepted (we advertise 1232; larger is odd but harmless).
const UDP_RECV_MAX: usize = 4096;
/// Kernel receive buffer asked for each UDP socket, so bursts of answers are not dropped.
const SOCKET_BUFFER: libc::c_int = 4 << 20;
/// Attempts to draw an id not already in flight on a lane before giving up.
const ID_DRAWS: usize = 64;

/// Where and how to ask: the resolvers, and how hard to push them.
///
/// Exists so the CLI, the crawl, the benchmark and the tests state the resolver policy in one
/// place: addresses, whether a non-loopback resolver is trusted for the AD bit, timeouts,
/// retries, and the politeness limits (queries in flight, queries per second).
#[derive(Clone, Debug)]
pub struct ResolverConfig {
    /// Validating resolvers; each query goes to the least-loaded one.
    pub servers: Vec<SocketAddr>,
    /// Time allowed for the first try; each retry doubles it, up to `max_timeout`.
    pub timeout: Duration,
    /// Upper bound of the per-try timeout.
    pub max_timeout: Duration,
    /// Tries per query after the first.
    pub retries: u32,
    /// Accept the AD bit from a resolver that is not on loopback. Only sound over a channel the
    /// user trusts (RFC 6698 §4.1, RFC 4035 §4.9.3).
    pub trust_remote: bool,
    /// Most queries in flight at once (callers beyond it wait).
    pub max_in_flight: usize,
    /// Global rate limit in queries per second (retries included); `None` = unlimited.
    pub qps: Option<NonZeroU32>,
    /// UDP sockets per resolver.
    pub udp_sockets: usize,
}

impl ResolverConfig {
    /// A configuration for the given resolvers with the defaults a survey wants.
    pub fn new(servers: Vec<SocketAddr>) -> Self {
        ResolverConfig {
            servers,
            timeout: Duration::from_millis(1500),
            max_timeout: Duration::from_secs(6),
            retries: 2,
            trust_remote: false,
            max_in_flight: 10_000,
            qps: None,
            udp_sockets: 8,
        }
    }

    /// Parses `ADDR`, `ADDR:PORT`, `[V6]:PORT` into a socket address (port 53 by default).
    pub fn parse_server(text: &str) -> Result<SocketAddr, String> {
        if let Ok(sa) = text.parse::<SocketAddr>() {
            return Ok(sa);
        }
        if let Ok(ip) = text
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<IpAddr>()
        {
            return Ok(SocketAddr::new(ip, 53));
        }
        Err(format!(
            "invalid resolver address {text:?}: expected ADDR, ADDR:PORT or [IPV6]:PORT"
        ))
    }
}

/// Counters of what the transport did, for progress lines, benchmarks and tests.
///
/// Exists because a survey must account for every query: an answer that was dropped (spoofed,
/// late, malformed) or a query that timed out is a number in the snapshot, never a silence.
#[derive(Debug, Default)]
pub struct Stats {
    sent: AtomicU64,
    answered: AtomicU64,
    retries: AtomicU64,
    timeouts: AtomicU64,
    tcp_queries: AtomicU64,
    dropped_unknown_id: AtomicU64,
    dropped_wrong_question: AtomicU64,
    dropped_malformed: AtomicU64,
    network_errors: AtomicU64,
}

/// A copy of [`Stats`] at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StatsSnapshot {
    /// Datagrams and TCP messages sent (retries included).
    pub sent: u64,
    /// Answers accepted.
    pub answered: u64,
    /// Retries after a timeout, a network error or an unusable answer.
    pub retries: u64,
    /// Tries that timed out.
    pub timeouts: u64,
    /// Queries asked again over TCP after a truncated answer.
    pub tcp_queries: u64,
    /// Answers whose id matched nothing in flight (late after a timeout, or forged).
    pub dropped_unknown_id: u64,
    /// Answers with an id in flight but another question (forged or confused).
    pub dropped_wrong_question: u64,
    /// Answers too short, not responses, or undecodable.
    pub dropped_malformed: u64,
    /// Socket errors (refused, reset, …).
    pub network_errors: u64,
}

impl StatsSnapshot {
    /// What happened between `earlier` and this snapshot.
    pub fn since(&self, earlier: &StatsSnapshot) -> StatsSnapshot {
        StatsSnapshot {
            sent: self.sent.saturating_sub(earlier.sent),
            answered: self.answered.saturating_sub(earlier.answered),
            retries: self.retries.saturating_sub(earlier.retries),
            timeouts: self.timeouts.saturating_sub(earlier.timeouts),
            tcp_queries: self.tcp_queries.saturating_sub(earlier.tcp_queries),
            dropped_unknown_id: self
                .dropped_unknown_id
                .saturating_sub(earlier.dropped_unknown_id),
            dropped_wrong_question: self
                .dropped_wrong_question
                .saturating_sub(earlier.dropped_wrong_question),
            dropped_malformed: self
                .dropped_malformed
                .saturating_sub(earlier.dropped_malformed),
            network_errors: self.network_errors.saturating_sub(earlier.network_errors),
        }
    }
}

impl Stats {
    fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> StatsSnapshot {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            sent: g(&self.sent),
            answered: g(&self.answered),
            retries: g(&self.retries),
            timeouts: g(&self.timeouts),
            tcp_queries: g(&self.tcp_queries),
            dropped_unknown_id: g(&self.dropped_unknown_id),
            dropped_wrong_question: g(&self.dropped_wrong_question),
            dropped_malformed: g(&self.dropped_malformed),
            network_errors: g(&self.network_errors),
        }
    }
}

/// What a waiting query receives: the raw answer, or why the transport gave up on it.
type Delivery = Result<Vec<u8>, DnsFailure>;

/// A query waiting for its answer on a lane or a TCP connection.
struct Waiter {
    question: Box<[u8]>,
    tx: oneshot::Sender<Delivery>,
}

/// The queries in flight on one socket or connection, by id.
#[derive(Default)]
struct Pending {
    map: Mutex<HashMap<u16, Waiter>>,
}

impl Pending {
    /// Registers a query under a random id not in flight; returns the id.
    fn register(
        &self,
        question: Box<[u8]>,
    ) -> Result<(u16, oneshot::Receiver<Delivery>), DnsFailure> {
        let (tx, rx) = oneshot::channel();
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        for _ in 0..ID_DRAWS {
            let id: u16 = rand::random();
            if let std::collections::hash_map::Entry::Vacant(e) = map.entry(id) {
                e.insert(Waiter { question, tx });
                return Ok((id, rx));
            }
        }
        Err(DnsFailure::Network(
            "no free query id on the socket (too many queries in flight)".into(),
        ))
    }

    /// Builds the query for `name`/`rtype` and registers it under a fresh id: returns the id,
    /// the wire message carrying it, and the receiver of its answer.
    fn enqueue(
        &self,
        name: &Name,
        rtype: RecordType,
    ) -> Result<(u16, Vec<u8>, oneshot::Receiver<Delivery>), DnsFailure> {
        let mut wire = build_query(0, name, rtype)?;
        let span = question_span(&wire)
            .ok_or_else(|| DnsFailure::Malformed("cannot locate our own question".into()))?;
        let (id, rx) = self.register(wire[span].into())?;
        wire[..2].copy_from_slice(&id.to_be_bytes());
        Ok((id, wire, rx))
    }

    fn forget(&self, id: u16) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }

    /// Hands an answer to its waiter if id and question match; counts it otherwise.
    fn deliver(&self, msg: &[u8], stats: &Stats) {
        let (Some(id), true) = (message_id(msg), is_response(msg)) else {
            Stats::bump(&stats.dropped_malformed);
            return;
        };
        let Some(span) = question_span(msg) else {
            Stats::bump(&stats.dropped_malformed);
            return;
        };
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(&id) {
            None => Stats::bump(&stats.dropped_unknown_id),
            Some(w) if !same_question(&w.question, &msg[span]) => {
                Stats::bump(&stats.dropped_wrong_question)
            }
            Some(_) => {
                if let Some(w) = map.remove(&id) {
                    drop(map);
                    let _ = w.tx.send(Ok(msg.to_vec()));
                }
            }
        }
    }

    /// Fails every waiter (the socket or connection is gone).
    fn fail_all(&self, why: &str) {
        let drained: Vec<Waiter> = self
            .map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .map(|(_, w)| w)
            .collect();
        for w in drained {
            let _ = w.tx.send(Err(DnsFailure::Network(why.to_string())));
        }
    }
}

/// One connected UDP socket and the queries in flight on it.
struct UdpLane {
    /// Queries to send; the lane's sender task writes them in batches with `sendmmsg(2)`,
    /// so a burst of new queries costs one system call (and one wake-up of the server).
    outbox: tokio::sync::mpsc::UnboundedSender<Vec<u8>>,
    pending: Arc<Pending>,
    task: JoinHandle<()>,
    sender: JoinHandle<()>,
}

impl UdpLane {
    fn open(server: SocketAddr, stats: Arc<Stats>) -> std::io::Result<UdpLane> {
        let bind: SocketAddr = if server.is_ipv4() {
            SocketAddr::from(([0, 0, 0, 0], 0))
        } else {
            SocketAddr::from(([0u16; 8], 0))
        };
        let std_sock = std::net::UdpSocket::bind(bind)?;
        std_sock.connect(server)?;
        std_sock.set_nonblocking(true)?;
        for opt in [libc::SO_RCVBUF, libc::SO_SNDBUF] {
            // SAFETY: setsockopt on a socket we own, with a correctly sized int value.
            unsafe {
                libc::setsockopt(
                    std_sock.as_raw_fd(),
                    libc::SOL_SOCKET,
                    opt,
                    (&SOCKET_BUFFER as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
        let sock = Arc::new(UdpSocket::from_std(std_sock)?);
        let pending = Arc::new(Pending::default());
        let (outbox, queue) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(Self::receive(sock.clone(), pending.clone(), stats.clone()));
        let sender = tokio::spawn(Self::send(sock, queue, pending.clone(), stats));
        Ok(UdpLane {
            outbox,
            pending,
            task,
            sender,
        })
    }

    async fn send(
        sock: Arc<UdpSocket>,
        mut queue: tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>,
        pending: Arc<Pending>,
        stats: Arc<Stats>,
    ) {
        let mut batch: Vec<Vec<u8>> = Vec::with_capacity(SEND_BATCH);
        while queue.recv_many(&mut batch, SEND_BATCH).await > 0 {
            let mut sent = 0;
            while sent < batch.len() {
                if let Err(e) = sock.writable().await {
                    Stats::bump(&stats.network_errors);
                    pending.fail_all(&e.to_string());
                    break;
                }
                match sock.try_io(tokio::io::Interest::WRITABLE, || {
                    send_batch(sock.as_raw_fd(), &batch[sent..])
                }) {
                    Ok(n) => sent += n.max(1),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    Err(e) => {
                        // A refused or unreachable resolver: those queries will not be answered.
                        Stats::bump(&stats.network_errors);
                        pending.fail_all(&e.to_string());
                        break;
                    }
                }
            }
            batch.clear();
        }
    }

    async fn receive(sock: Arc<UdpSocket>, pending: Arc<Pending>, stats: Arc<Stats>) {
        let mut batch = RecvBatch::new();
        loop {
            // On a connected socket an ICMP error (port unreachable: no resolver there) is
            // reported as error readiness: take it and fail every query on the lane at once
            // instead of letting each wait for its timeout.
            let interest = tokio::io::Interest::READABLE.add(tokio::io::Interest::ERROR);
            let ready = match sock.ready(interest).await {
                Ok(r) => r,
                Err(e) => {
                    Stats::bump(&stats.network_errors);
                    pending.fail_all(&e.to_string());
                    continue;
                }
            };
            if ready.is_error() {
                let taken = sock.try_io(tokio::io::Interest::ERROR, || match sock.take_error() {
                    Ok(Some(e)) => Ok(e),
                    Ok(None) => Err(std::io::ErrorKind::WouldBlock.into()),
                    Err(e) => Err(e),
                });
                if let Ok(e) = taken {
                    Stats::bump(&stats.network_errors);
                    pending.fail_all(&e.to_string());
                }
                if !ready.is_readable() {
                    continue;
                }
            }
            // Drain everything queued with as few system calls as possible.
            loop {
                match sock.try_io(tokio::io::Interest::READABLE, || {
                    batch.recv(sock.as_raw_fd())
                }) {
                    Ok(n) => {
                        for msg in batch.messages(n) {
                            pending.deliver(msg, &stats);
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        Stats::bump(&stats.network_errors);
                        pending.fail_all(&e.to_string());
                        break;
                    }
                }
            }
        }
    }
}

/// Datagrams sent per `sendmmsg(2)` call.
const SEND_BATCH: usize = 64;

/// One non-blocking `sendmmsg` of `msgs` on a connected socket; returns how many were sent.
fn send_batch(fd: std::os::fd::RawFd, msgs: &[Vec<u8>]) -> std::io::Result<usize> {
    let n = msgs.len().min(SEND_BATCH);
    let mut iovs: Vec<libc::iovec> = msgs[..n]
        .iter()
        .map(|m| libc::iovec {
            iov_base: m.as_ptr() as *mut libc::c_void,
            iov_len: m.len(),
        })
        .collect();
    // SAFETY: an all-zero mmsghdr is valid (no address: the socket is connected).
    let mut hdrs: Vec<libc::mmsghdr> = (0..n).map(|_| unsafe { std::mem::zeroed() }).collect();
    for (h, iov) in hdrs.iter_mut().zip(iovs.iter_mut()) {
        h.msg_hdr.msg_iov = iov;
        h.msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: each header points at one iovec over a live buffer the kernel only reads.
    let r = unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), n as libc::c_uint, libc::MSG_DONTWAIT) };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// Datagrams received per `recvmmsg(2)` call.
const RECV_BATCH: usize = 32;

/// Buffers for receiving up to [`RECV_BATCH`] datagrams in one system call.
struct RecvBatch {
    bufs: Vec<[u8; UDP_RECV_MAX]>,
    lens: [usize; RECV_BATCH],
}

impl RecvBatch {
    fn new() -> Self {
        RecvBatch {
            bufs: vec![[0u8; UDP_RECV_MAX]; RECV_BATCH],
            lens: [0; RECV_BATCH],
        }
    }

    /// One non-blocking `recvmmsg`; returns how many datagrams arrived.
    fn recv(&mut self, fd: std::os::fd::RawFd) -> std::io::Result<usize> {
        let mut iovs: Vec<libc::iovec> = self
            .bufs
            .iter_mut()
            .map(|b| libc::iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: b.len(),
            })
            .collect();
        // SAFETY: an all-zero mmsghdr is valid (null name, no control data).
        let mut hdrs: Vec<libc::mmsghdr> = (0..RECV_BATCH)
            .map(|_| unsafe { std::mem::zeroed() })
            .collect();
        for (h, iov) in hdrs.iter_mut().zip(iovs.iter_mut()) {
            h.msg_hdr.msg_iov = iov;
            h.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: every header points at one live iovec over a live buffer of the stated
        // length; the kernel writes at most that much and reports the lengths in msg_len.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                hdrs.as_mut_ptr(),
                RECV_BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let n = n as usize;
        for (len, h) in self.lens.iter_mut().zip(&hdrs).take(n) {
            *len = (h.msg_len as usize).min(UDP_RECV_MAX);
        }
        Ok(n)
    }

    /// The first `n` datagrams of the last call.
    fn messages(&self, n: usize) -> impl Iterator<Item = &[u8]> {
        self.bufs
            .iter()
            .zip(&self.lens)
            .take(n)
            .map(|(b, &l)| &b[..l])
    }
}

/// One persistent, pipelined TCP connection (RFC 7766).
struct TcpLane {
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    pending: Arc<Pending>,
    alive: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl TcpLane {
    async fn open(
        server: SocketAddr,
        stats: Arc<Stats>,
        wait: Duration,
    ) -> Result<TcpLane, DnsFailure> {
        let stream = timeout(wait, TcpStream::connect(server))
            .await
            .map_err(|_| DnsFailure::Timeout)?
            .map_err(|e| DnsFailure::Network(format!("TCP to {server}: {e}")))?;
        let _ = stream.set_nodelay(true);
        let (mut reader, writer) = stream.into_split();
        let pending = Arc::new(Pending::default());
        let alive = Arc::new(AtomicBool::new(true));
        let (p, a) = (pending.clone(), alive.clone());
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; usize::from(u16::MAX)];
            let why = loop {
                let mut len = [0u8; 2];
                if let Err(e) = reader.read_exact(&mut len).await {
                    break e.to_string();
                }
                let n = usize::from(u16::from_be_bytes(len));
                if let Err(e) = reader.read_exact(&mut buf[..n]).await {
                    break e.to_string();
                }
                p.deliver(&buf[..n], &stats);
            };
            a.store(false, Ordering::Release);
            p.fail_all(&format!("TCP connection closed: {why}"));
        });
        Ok(TcpLane {
            writer: tokio::sync::Mutex::new(writer),
            pending,
            alive,
            task,
        })
    }
}

/// One resolver: its lanes, its TCP connection, its load.
struct Server {
    addr: SocketAddr,
    lanes: Vec<UdpLane>,
    next_lane: AtomicUsize,
    tcp: tokio::sync::Mutex<Option<Arc<TcpLane>>>,
    load: AtomicUsize,
}

impl Drop for Server {
    fn drop(&mut self) {
        for l in &self.lanes {
            l.task.abort();
            l.sender.abort();
        }
        if let Ok(mut tcp) = self.tcp.try_lock() {
            if let Some(t) = tcp.take() {
                t.task.abort();
            }
        }
    }
}

/// A validated-resolver client.
///
/// Exists to own the resolver policy of [`ResolverConfig`] and the shared transport state
/// (sockets, in-flight table, rate limiter), and to hand out raw answers that
/// [`super::Lookup`] classifies. It refuses untrusted resolvers at construction so no code path
/// can read an AD bit that means nothing. Cheap to share: wrap it in an `Arc`.
pub struct Resolver {
    config: ResolverConfig,
    servers: Vec<Server>,
    limiter: Option<DefaultDirectRateLimiter>,
    in_flight: Semaphore,
    stats: Arc<Stats>,
    next: AtomicUsize,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A resolver answer that passed the transport checks (id, question, source address).
#[derive(Debug)]
pub struct Response {
    /// The decoded message.
    pub message: Message,
    /// The server that sent it.
    pub server: SocketAddr,
}

/// Whether an answer is a SERVFAIL worth asking again: every SERVFAIL except a DNSSEC
/// validation failure (EDE 6–12), which the resolver will repeat (and cache) anyway.
fn transient_servfail(msg: &Message) -> bool {
    msg.metadata.response_code == hickory_proto::op::ResponseCode::ServFail
        && !ede(msg).is_some_and(|e| e.is_dnssec_failure())
}

/// Decrements a server's load when a try ends, however it ends.
struct LoadGuard<'a>(&'a AtomicUsize);

impl Drop for LoadGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Resolver {
    /// Builds a client (inside a Tokio runtime); fails when a resolver is not on loopback and
    /// `trust_remote` is off, or when its sockets cannot be opened.
    pub fn new(config: ResolverConfig) -> Result<Self, String> {
        if config.servers.is_empty() {
            return Err("no resolver given".into());
        }
        for s in &config.servers {
            if !s.ip().is_loopback() && !config.trust_remote {
                return Err(format!(
                    "resolver {s} is not on loopback: its AD bit could be forged on the way. \
                     Run a validating resolver locally (e.g. unbound on 127.0.0.1) or pass \
                     --trust-resolver if the path to it is authenticated"
                ));
            }
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err("Resolver::new must be called inside a Tokio runtime".into());
        }
        let stats = Arc::new(Stats::default());
        let mut servers = Vec::with_capacity(config.servers.len());
        for &addr in &config.servers {
            let lanes = (0..config.udp_sockets.max(1))
                .map(|_| UdpLane::open(addr, stats.clone()))
                .collect::<std::io::Result<Vec<_>>>()
                .map_err(|e| format!("cannot open a UDP socket to {addr}: {e}"))?;
            servers.push(Server {
                addr,
                lanes,
                next_lane: AtomicUsize::new(0),
                tcp: tokio::sync::Mutex::new(None),
                load: AtomicUsize::new(0),
            });
        }
        Ok(Resolver {
            limiter: config
                .qps
                .map(|q| RateLimiter::direct(Quota::per_second(q))),
            in_flight: Semaphore::new(config.max_in_flight.max(1)),
            servers,
            config,
            stats,
            next: AtomicUsize::new(0),
        })
    }

    /// The resolver configuration in force.
    pub fn config(&self) -> &ResolverConfig {
        &self.config
    }

    /// What the transport has done so far.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// The least-loaded server (ties broken round robin).
    fn pick(&self) -> &Server {
        let n = self.servers.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|i| &self.servers[(start + i) % n])
            .min_by_key(|s| s.load.load(Ordering::Relaxed))
            .unwrap_or(&self.servers[0])
    }

    /// Sends one query (RD, DO, EDNS payload 1232) and returns the first acceptable answer,
    /// retrying lost, late and unusable answers with a doubling timeout.
    pub async fn query(&self, name: &Name, rtype: RecordType) -> Result<Response, DnsFailure> {
        let _permit = self
            .in_flight
            .acquire()
            .await
            .map_err(|_| DnsFailure::Network("resolver shut down".into()))?;
        let mut wait = self.config.timeout;
        let mut last = DnsFailure::Timeout;
        let mut last_servfail = None;
        for attempt in 0..=self.config.retries {
            if attempt > 0 {
                Stats::bump(&self.stats.retries);
            }
            if let Some(l) = &self.limiter {
                l.until_ready().await;
            }
            let server = self.pick();
            server.load.fetch_add(1, Ordering::Relaxed);
            let _load = LoadGuard(&server.load);
            let outcome = match self.try_udp(server, name, rtype, wait).await {
                Ok(bytes) if is_truncated(&bytes) => {
                    Stats::bump(&self.stats.tcp_queries);
                    self.try_tcp(server, name, rtype, wait).await
                }
                other => other,
            };
            match outcome.and_then(|bytes| self.decode(&bytes)) {
                Ok(message) => {
                    Stats::bump(&self.stats.answered);
                    let response = Response {
                        message,
                        server: server.addr,
                    };
                    if !transient_servfail(&response.message) {
                        return Ok(response);
                    }
                    // A SERVFAIL that is not a DNSSEC verdict (no EDE, or a lame/unreachable
                    // authority) may pass: ask again after a pause, keep it if it persists.
                    last_servfail = Some(response);
                    if attempt < self.config.retries {
                        tokio::time::sleep(wait / 2).await;
                    }
                }
                Err(e) => last = e,
            }
            wait = (wait * 2).min(self.config.max_timeout);
        }
        last_servfail.ok_or(last)
    }

    fn decode(&self, bytes: &[u8]) -> Result<Message, DnsFailure> {
        Message::from_vec(bytes).map_err(|e| {
            Stats::bump(&self.stats.dropped_malformed);
            DnsFailure::Malformed(format!("undecodable answer: {e}"))
        })
    }

    async fn await_answer(
        &self,
        pending: &Pending,
        id: u16,
        rx: oneshot::Receiver<Delivery>,
        wait: Duration,
    ) -> Result<Vec<u8>, DnsFailure> {
        match timeout(wait, rx).await {
            Ok(Ok(Ok(bytes))) => Ok(bytes),
            Ok(Ok(Err(e))) => Err(e),
            Ok(Err(_)) => Err(DnsFailure::Network("transport task ended".into())),
            Err(_) => {
                pending.forget(id);
                Stats::bump(&self.stats.timeouts);
                Err(DnsFailure::Timeout)
            }
        }
    }

    async fn try_udp(
        &self,
        server: &Server,
        name: &Name,
        rtype: RecordType,
        wait: Duration,
    ) -> Result<Vec<u8>, DnsFailure> {
        let i = server.next_lane.fetch_add(1, Ordering::Relaxed) % server.lanes.len();
        let lane = &server.lanes[i];
        let (id, wire, rx) = lane.pending.enqueue(name, rtype)?;
        Stats::bump(&self.stats.sent);
        if lane.outbox.send(wire).is_err() {
            lane.pending.forget(id);
            return Err(DnsFailure::Network(format!(
                "send to {}: sender stopped",
                server.addr
            )));
        }
        self.await_answer(&lane.pending, id, rx, wait).await
    }

    async fn tcp_lane(&self, server: &Server, wait: Duration) -> Result<Arc<TcpLane>, DnsFailure> {
        let mut slot = server.tcp.lock().await;
        if let Some(l) = slot.as_ref() {
            if l.alive.load(Ordering::Acquire) {
                return Ok(l.clone());
            }
        }
        let lane = Arc::new(TcpLane::open(server.addr, self.stats.clone(), wait).await?);
        if let Some(old) = slot.replace(lane.clone()) {
            old.task.abort();
        }
        Ok(lane)
    }

    async fn try_tcp(
        &self,
        server: &Server,
        name: &Name,
        rtype: RecordType,
        wait: Duration,
    ) -> Result<Vec<u8>, DnsFailure> {
        let lane = self.tcp_lane(server, wait).await?;
        let (id, wire, rx) = lane.pending.enqueue(name, rtype)?;
        let len = u16::try_from(wire.len())
            .map_err(|_| DnsFailure::Malformed("query longer than 65535 bytes".into()))?;
        let mut framed = Vec::with_capacity(wire.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&wire);
        Stats::bump(&self.stats.sent);
        let written = {
            let mut w = lane.writer.lock().await;
            timeout(wait, w.write_all(&framed)).await
        };
        match written {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                lane.pending.forget(id);
                lane.alive.store(false, Ordering::Release);
                Stats::bump(&self.stats.network_errors);
                return Err(DnsFailure::Network(format!(
                    "TCP write to {}: {e}",
                    server.addr
                )));
            }
            Err(_) => {
                lane.pending.forget(id);
                lane.alive.store(false, Ordering::Release);
                return Err(DnsFailure::Timeout);
            }
        }
        self.await_answer(&lane.pending, id, rx, wait).await
    }
}
