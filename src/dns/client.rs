//! The transport: one multiplexed client for millions of DO-bit queries to validating resolvers.
//!
//! * **UDP**: each resolver gets a small pool of connected UDP sockets ("lanes"), each on a
//!   kernel-chosen random source port and shared by every query in flight. A lane's receive
//!   task matches each datagram to its query by id *and* by the question echoed in it (names
//!   compared ignoring case); anything else — unknown or late id, wrong question, not a
//!   response, too short — is dropped and counted in [`Stats`]. Datagrams from any other
//!   source address never reach us: the sockets are connected, so the kernel filters them.
//!   Queries take the lanes in turn, a run of `lane_run` at a time (the in-flight cap over
//!   the lanes): each lane's queries leave and its answers arrive in bursts, many per
//!   `sendmmsg` and `recvmmsg`, instead of a few per call on every socket (a run of one cost a
//!   warm crawl 6% more CPU); and as the run is the lane's share of the cap, every lane still
//!   carries queries while the cap is reached, so a resolver that spreads its clients over its
//!   threads by source port (`SO_REUSEPORT`) still sees them all.
//! * **TCP** (RFC 7766): a truncated UDP answer is asked again over one persistent, pipelined
//!   connection per resolver (length-prefixed framing, answers matched by id and question in
//!   any order), reconnected on demand.
//! * **Limits**: a cap on queries in flight (a lock-free counter), an optional global rate in
//!   queries per second (governor), a timeout per try that doubles on each retry (bounded
//!   backoff), and a bounded number of retries, each to the least-loaded resolver.
//!
//! The receive loop only reads the header and compares the question bytes; the full parse
//! (hickory-proto) happens on the querying task, so parsing spreads over the runtime's workers.
//!
//! **Cost per query**: the hot path allocates almost nothing and uses no runtime timer or
//! channel per query. Queries are encoded straight into the lane's send queue (the sender task
//! takes the whole queue per `sendmmsg` round), waiting queries live in reused slots of a
//! per-lane table indexed by query id, and one sweeper task per client expires the deadlines
//! kept in per-lane queues, in time order.

use std::collections::VecDeque;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use hickory_proto::op::Message;
use hickory_proto::rr::{Name, RecordType};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::timeout;

use super::lookup::{ede, servfail_may_pass, DnsFailure};
use super::wire::{
    decode_answer, is_response, is_truncated, message_id, question_span, same_question, write_query,
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
    /// Keep the resolver's EXTRA-TEXT of Extended DNS Errors (RFC 8914) in failures. The
    /// crawl turns it off: the text depends on the resolver's cache state (unbound says "key
    /// marked as invalid because of a previous validation failure" the second time), so two
    /// crawls of the same world would differ; the INFO-CODE and its name stay.
    pub ede_text: bool,
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
            ede_text: true,
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

/// Marks a free entry of the id table (so a socket holds fewer slots than this).
const NO_SLOT: u16 = u16::MAX;

/// A slot index as the id table holds it: slots are only made below [`NO_SLOT`], so it fits.
fn id_entry(index: u32) -> u16 {
    u16::try_from(index).unwrap_or(NO_SLOT)
}

/// Where one query stands.
enum SlotState {
    /// Not in use (on the free list).
    Free,
    /// Sent (or queued), its id in the id table, waiting for an answer or its deadline.
    Waiting,
    /// Answered, failed or timed out; the querying task has not collected it yet.
    Done(Delivery),
}

/// One query in flight. Slots are reused, so steady state allocates nothing per query here.
struct Slot {
    /// Bumped each time the slot is freed, so stale deadlines and futures cannot touch the
    /// slot's next query.
    generation: u32,
    id: u16,
    state: SlotState,
    /// The question as sent (name, type, class), compared with the one echoed in the answer.
    question: Vec<u8>,
    waker: Option<Waker>,
}

/// The deadlines of the tries that share one timeout: pushed in time order, so the earliest
/// is always in front and a sweep looks at the front only.
struct Deadlines {
    wait: Duration,
    queue: VecDeque<(Instant, u32, u32)>,
}

/// The queries in flight on one socket or connection: a slot each, found by query id.
///
/// Exists so that registering, matching and expiring a query costs a few array accesses under
/// one uncontended lock — no allocation, no channel and no runtime timer per query, which is
/// what let the transport keep up with `dnsperf`.
struct Table {
    /// Slot index by query id ([`NO_SLOT`] when the id is free). Ids are drawn at random, so
    /// each query touches a random entry: 16-bit entries halve the table (128 KiB a socket)
    /// and the cache misses it costs.
    by_id: Box<[u16]>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// Slots in [`SlotState::Waiting`].
    waiting: usize,
    /// Deadlines by timeout value (a query's tries double it, so a handful of values).
    deadlines: Vec<Deadlines>,
    /// Entries in all of `deadlines` (live or stale).
    deadline_entries: usize,
}

impl Table {
    fn new() -> Self {
        Table {
            by_id: vec![NO_SLOT; 1 << 16].into_boxed_slice(),
            slots: Vec::new(),
            free: Vec::new(),
            waiting: 0,
            deadlines: Vec::new(),
            deadline_entries: 0,
        }
    }

    /// Registers a query with `question` under a random id not in flight, with an optional
    /// deadline after `wait`; returns the id, the slot and its generation.
    fn register(
        &mut self,
        question: &[u8],
        wait: Option<Duration>,
    ) -> Result<(u16, u32, u32), DnsFailure> {
        let mut id = None;
        for _ in 0..ID_DRAWS {
            let candidate: u16 = rand::random();
            if self.by_id[usize::from(candidate)] == NO_SLOT {
                id = Some(candidate);
                break;
            }
        }
        let id = id.ok_or_else(|| {
            DnsFailure::Network(
                "no free query id on the socket (too many queries in flight)".into(),
            )
        })?;
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                let i = u16::try_from(self.slots.len())
                    .ok()
                    .filter(|&i| i != NO_SLOT)
                    .map(u32::from)
                    .ok_or_else(|| DnsFailure::Network("too many queries in flight".into()))?;
                self.slots.push(Slot {
                    generation: 0,
                    id: 0,
                    state: SlotState::Free,
                    question: Vec::new(),
                    waker: None,
                });
                i
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.id = id;
        slot.state = SlotState::Waiting;
        slot.question.clear();
        slot.question.extend_from_slice(question);
        let generation = slot.generation;
        self.by_id[usize::from(id)] = id_entry(index);
        self.waiting += 1;
        if let Some(wait) = wait {
            let due = Instant::now() + wait;
            let queue = match self.deadlines.iter().position(|d| d.wait == wait) {
                Some(i) => &mut self.deadlines[i].queue,
                None => {
                    self.deadlines.push(Deadlines {
                        wait,
                        queue: VecDeque::new(),
                    });
                    &mut self.deadlines.last_mut().expect("just pushed").queue
                }
            };
            queue.push_back((due, index, generation));
            self.deadline_entries += 1;
            if self.deadline_entries > 2 * self.waiting + 1024 {
                self.compact_deadlines();
            }
        }
        Ok((id, index, generation))
    }

    /// Drops the deadlines of queries already answered, so a straggler at the front of a queue
    /// cannot make it grow with every answer behind it.
    fn compact_deadlines(&mut self) {
        let slots = &self.slots;
        let live = |&(_, i, g): &(Instant, u32, u32)| {
            let s = &slots[i as usize];
            s.generation == g && matches!(s.state, SlotState::Waiting)
        };
        let mut entries = 0;
        for d in &mut self.deadlines {
            d.queue.retain(live);
            entries += d.queue.len();
        }
        self.deadline_entries = entries;
    }

    /// Ends a waiting query with `outcome`: frees its id and wakes its task.
    fn complete(&mut self, index: u32, outcome: Delivery, wakers: &mut Vec<Waker>) {
        let slot = &mut self.slots[index as usize];
        if !matches!(slot.state, SlotState::Waiting) {
            return;
        }
        if self.by_id[usize::from(slot.id)] == id_entry(index) {
            self.by_id[usize::from(slot.id)] = NO_SLOT;
        }
        slot.state = SlotState::Done(outcome);
        self.waiting -= 1;
        if let Some(w) = slot.waker.take() {
            wakers.push(w);
        }
    }

    /// Returns a slot to the free list (its query is over and collected, or abandoned).
    fn release(&mut self, index: u32) {
        let slot = &mut self.slots[index as usize];
        match std::mem::replace(&mut slot.state, SlotState::Free) {
            SlotState::Free => return,
            SlotState::Waiting => {
                self.waiting -= 1;
                if self.by_id[usize::from(slot.id)] == id_entry(index) {
                    self.by_id[usize::from(slot.id)] = NO_SLOT;
                }
            }
            SlotState::Done(_) => {}
        }
        slot.generation = slot.generation.wrapping_add(1);
        slot.waker = None;
        self.free.push(index);
    }

    /// Takes the outcome of a finished query and frees its slot; `None` while it waits.
    fn collect(&mut self, index: u32) -> Option<Delivery> {
        let slot = &mut self.slots[index as usize];
        if !matches!(slot.state, SlotState::Done(_)) {
            return None;
        }
        let SlotState::Done(outcome) = std::mem::replace(&mut slot.state, SlotState::Free) else {
            return None;
        };
        slot.generation = slot.generation.wrapping_add(1);
        slot.waker = None;
        self.free.push(index);
        Some(outcome)
    }

    /// Hands an answer to its query if id and question match; counts it otherwise.
    fn deliver(&mut self, msg: &[u8], stats: &Stats, wakers: &mut Vec<Waker>) {
        let (Some(id), true) = (message_id(msg), is_response(msg)) else {
            Stats::bump(&stats.dropped_malformed);
            return;
        };
        let Some(span) = question_span(msg) else {
            Stats::bump(&stats.dropped_malformed);
            return;
        };
        let entry = self.by_id[usize::from(id)];
        if entry == NO_SLOT {
            Stats::bump(&stats.dropped_unknown_id);
            return;
        }
        let index = u32::from(entry);
        if !same_question(&self.slots[index as usize].question, &msg[span]) {
            Stats::bump(&stats.dropped_wrong_question);
            return;
        }
        self.complete(index, Ok(msg.to_vec()), wakers);
    }

    /// Times out every query whose deadline has passed; returns how many.
    fn expire(&mut self, now: Instant, wakers: &mut Vec<Waker>) -> u64 {
        let mut expired = 0;
        for d in 0..self.deadlines.len() {
            while let Some(&(due, index, generation)) = self.deadlines[d].queue.front() {
                let slot = &self.slots[index as usize];
                let live =
                    slot.generation == generation && matches!(slot.state, SlotState::Waiting);
                if live && due > now {
                    break;
                }
                self.deadlines[d].queue.pop_front();
                self.deadline_entries -= 1;
                if live {
                    self.complete(index, Err(DnsFailure::Timeout), wakers);
                    expired += 1;
                }
            }
        }
        expired
    }

    /// Fails every waiting query (the socket or connection is gone).
    fn fail_all(&mut self, why: &str, wakers: &mut Vec<Waker>) {
        for index in 0..self.slots.len() as u32 {
            if matches!(self.slots[index as usize].state, SlotState::Waiting) {
                self.complete(index, Err(DnsFailure::Network(why.to_string())), wakers);
            }
        }
    }
}

/// The state of one lane behind its lock: the in-flight table and the datagrams waiting to be
/// sent (back to back in `out`, their lengths in `out_lens`).
struct LaneState {
    table: Table,
    out: Vec<u8>,
    out_lens: Vec<u16>,
}

/// The shared part of a UDP lane or a TCP connection.
struct Pending {
    state: Mutex<LaneState>,
    /// Wakes the lane's sender task when `out` goes from empty to not empty.
    send_ready: Notify,
}

impl Pending {
    fn new() -> Self {
        Pending {
            state: Mutex::new(LaneState {
                table: Table::new(),
                out: Vec::new(),
                out_lens: Vec::new(),
            }),
            send_ready: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, LaneState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes the query for `name`/`rtype` into the send queue under a fresh id and registers
    /// it with a deadline `wait` from now; returns its slot and generation.
    fn enqueue_udp(
        &self,
        name: &Name,
        rtype: RecordType,
        wait: Duration,
    ) -> Result<(u32, u32), DnsFailure> {
        let mut guard = self.lock();
        let st = &mut *guard;
        let start = st.out.len();
        let span = write_query(&mut st.out, 0, name, rtype)?;
        let (id, index, generation) = match st.table.register(&st.out[span], Some(wait)) {
            Ok(r) => r,
            Err(e) => {
                st.out.truncate(start);
                return Err(e);
            }
        };
        st.out[start..start + 2].copy_from_slice(&id.to_be_bytes());
        let len = st.out.len() - start;
        let first = st.out_lens.is_empty();
        st.out_lens.push(len as u16);
        drop(guard);
        if first {
            self.send_ready.notify_one();
        }
        Ok((index, generation))
    }

    /// Hands each message to its query, under one lock, and wakes the tasks after it.
    fn deliver_all<'m>(
        &self,
        msgs: impl Iterator<Item = &'m [u8]>,
        stats: &Stats,
        wakers: &mut Vec<Waker>,
    ) {
        {
            let mut st = self.lock();
            for m in msgs {
                st.table.deliver(m, stats, wakers);
            }
        }
        wakers.drain(..).for_each(Waker::wake);
    }

    /// Fails every waiting query (the socket or connection is gone).
    fn fail_all(&self, why: &str) {
        let mut wakers = Vec::new();
        self.lock().table.fail_all(why, &mut wakers);
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Waits for the outcome of the query in `index`/`generation`.
    fn answer(&self, index: u32, generation: u32) -> Answer<'_> {
        Answer {
            pending: self,
            index,
            generation,
            finished: false,
        }
    }
}

/// The outcome of one registered query; dropping it before it resolves abandons the query
/// (its id is freed, a late answer is counted as unknown).
struct Answer<'a> {
    pending: &'a Pending,
    index: u32,
    generation: u32,
    finished: bool,
}

impl Future for Answer<'_> {
    type Output = Delivery;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Delivery> {
        if self.finished {
            return Poll::Ready(Err(DnsFailure::Network("answer polled twice".into())));
        }
        let mut st = self.pending.lock();
        let table = &mut st.table;
        let slot = &mut table.slots[self.index as usize];
        if slot.generation != self.generation {
            drop(st);
            self.finished = true;
            return Poll::Ready(Err(DnsFailure::Network("query slot reused".into())));
        }
        if let Some(outcome) = table.collect(self.index) {
            drop(st);
            self.finished = true;
            return Poll::Ready(outcome);
        }
        let slot = &mut table.slots[self.index as usize];
        match &mut slot.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            w => *w = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl Drop for Answer<'_> {
    fn drop(&mut self) {
        if !self.finished {
            let mut st = self.pending.lock();
            if st.table.slots[self.index as usize].generation == self.generation {
                st.table.release(self.index);
            }
        }
    }
}

/// One connected UDP socket and the queries in flight on it.
struct UdpLane {
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
        // The FORCE options pass the system's cap (net.core.rmem_max, 208 KiB on a stock
        // Debian, less than a run of answers can need) where we may (CAP_NET_ADMIN); elsewhere
        // the plain ones give what the cap allows.
        for (force, opt) in [
            (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF),
            (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF),
        ] {
            let set = |opt| {
                // SAFETY: setsockopt on a socket we own, with a correctly sized int value.
                unsafe {
                    libc::setsockopt(
                        std_sock.as_raw_fd(),
                        libc::SOL_SOCKET,
                        opt,
                        (&SOCKET_BUFFER as *const libc::c_int).cast(),
                        std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                    )
                }
            };
            if set(force) != 0 {
                set(opt);
            }
        }
        let sock = Arc::new(UdpSocket::from_std(std_sock)?);
        let pending = Arc::new(Pending::new());
        let task = tokio::spawn(Self::receive(sock.clone(), pending.clone(), stats.clone()));
        let sender = tokio::spawn(Self::send(sock, pending.clone(), stats));
        Ok(UdpLane {
            pending,
            task,
            sender,
        })
    }

    /// Sends what the queries queued, in batches of `sendmmsg(2)`: a burst of new queries
    /// costs one system call (and one wake-up of the server).
    async fn send(sock: Arc<UdpSocket>, pending: Arc<Pending>, stats: Arc<Stats>) {
        let mut out: Vec<u8> = Vec::new();
        let mut lens: Vec<u16> = Vec::new();
        loop {
            pending.send_ready.notified().await;
            loop {
                {
                    let mut st = pending.lock();
                    if st.out_lens.is_empty() {
                        break;
                    }
                    std::mem::swap(&mut st.out, &mut out);
                    std::mem::swap(&mut st.out_lens, &mut lens);
                }
                let (mut sent, mut at) = (0, 0);
                while sent < lens.len() {
                    if let Err(e) = sock.writable().await {
                        Stats::bump(&stats.network_errors);
                        pending.fail_all(&e.to_string());
                        break;
                    }
                    match sock.try_io(tokio::io::Interest::WRITABLE, || {
                        send_batch(sock.as_raw_fd(), &out[at..], &lens[sent..])
                    }) {
                        Ok((n, bytes)) => {
                            sent += n;
                            at += bytes;
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                        Err(e) => {
                            // A refused or unreachable resolver: those queries will not be
                            // answered.
                            Stats::bump(&stats.network_errors);
                            pending.fail_all(&e.to_string());
                            break;
                        }
                    }
                }
                out.clear();
                lens.clear();
            }
        }
    }

    async fn receive(sock: Arc<UdpSocket>, pending: Arc<Pending>, stats: Arc<Stats>) {
        let mut batch = RecvBatch::new();
        let mut wakers = Vec::new();
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
                    Ok(n) => pending.deliver_all(batch.messages(n), &stats, &mut wakers),
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

/// One non-blocking `sendmmsg` on a connected socket of the datagrams laid back to back in
/// `out` with lengths `lens`; returns how many were sent and their total length (at least one
/// datagram: one the kernel refuses without an error is skipped, not retried forever).
fn send_batch(fd: std::os::fd::RawFd, out: &[u8], lens: &[u16]) -> std::io::Result<(usize, usize)> {
    let n = lens.len().min(SEND_BATCH);
    // SAFETY: an all-zero iovec/mmsghdr is valid (no address: the socket is connected).
    let mut iovs: [libc::iovec; SEND_BATCH] = unsafe { std::mem::zeroed() };
    let mut hdrs: [libc::mmsghdr; SEND_BATCH] = unsafe { std::mem::zeroed() };
    let mut at = 0;
    for ((&len, iov), h) in lens[..n].iter().zip(iovs.iter_mut()).zip(hdrs.iter_mut()) {
        let m = &out[at..at + usize::from(len)];
        at += m.len();
        iov.iov_base = m.as_ptr() as *mut libc::c_void;
        iov.iov_len = m.len();
        h.msg_hdr.msg_iov = iov;
        h.msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: each of the first n headers points at one iovec over a live buffer the kernel
    // only reads.
    let r = unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), n as libc::c_uint, libc::MSG_DONTWAIT) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let done = (r as usize).clamp(1, n);
    let bytes = lens[..done].iter().map(|&l| usize::from(l)).sum();
    Ok((done, bytes))
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
        // SAFETY: an all-zero iovec/mmsghdr is valid (null name, no control data).
        let mut iovs: [libc::iovec; RECV_BATCH] = unsafe { std::mem::zeroed() };
        let mut hdrs: [libc::mmsghdr; RECV_BATCH] = unsafe { std::mem::zeroed() };
        for ((b, iov), h) in self
            .bufs
            .iter_mut()
            .zip(iovs.iter_mut())
            .zip(hdrs.iter_mut())
        {
            iov.iov_base = b.as_mut_ptr().cast();
            iov.iov_len = b.len();
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
        let pending = Arc::new(Pending::new());
        let alive = Arc::new(AtomicBool::new(true));
        let (p, a) = (pending.clone(), alive.clone());
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; usize::from(u16::MAX)];
            let mut wakers = Vec::new();
            let why = loop {
                let mut len = [0u8; 2];
                if let Err(e) = reader.read_exact(&mut len).await {
                    break e.to_string();
                }
                let n = usize::from(u16::from_be_bytes(len));
                if let Err(e) = reader.read_exact(&mut buf[..n]).await {
                    break e.to_string();
                }
                p.deliver_all(std::iter::once(&buf[..n]), &stats, &mut wakers);
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
    /// Queries sent over UDP so far: with [`lane_run`], which lane the next one takes.
    next_lane: AtomicUsize,
    /// Consecutive queries per lane ([`lane_run`]).
    lane_run: usize,
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

/// The cap on queries in flight, shared by a client and its siblings.
///
/// Exists because every query takes and returns a permit: tokio's `Semaphore` locks its
/// waiter list on every return (a few per cent of a crawl's CPU), while this takes a permit
/// with one compare-and-swap and returns it with one add, touching the waiters only when
/// someone waits — which, with the crawl's domains in flight sized to the cap, is rare.
struct InFlight {
    /// Permits free.
    free: AtomicUsize,
    /// Queries parked in [`InFlight::acquire`].
    waiting: AtomicUsize,
    returned: Notify,
}

/// A query's place in flight, given back on drop.
struct InFlightPermit<'a>(&'a InFlight);

impl Drop for InFlightPermit<'_> {
    fn drop(&mut self) {
        let cap = self.0;
        cap.free.fetch_add(1, Ordering::SeqCst);
        if cap.waiting.load(Ordering::SeqCst) > 0 {
            cap.returned.notify_one();
        }
    }
}

impl InFlight {
    fn new(permits: usize) -> Self {
        InFlight {
            free: AtomicUsize::new(permits),
            waiting: AtomicUsize::new(0),
            returned: Notify::new(),
        }
    }

    fn try_acquire(&self) -> Option<InFlightPermit<'_>> {
        self.free
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .ok()
            .map(|_| InFlightPermit(self))
    }

    async fn acquire(&self) -> InFlightPermit<'_> {
        loop {
            // Registered before looking again, so a permit returned in between either is
            // seen here or notifies us (both sides use SeqCst on `waiting` and `free`). A
            // notification we do not use is passed on to the next waiter when `returned` is
            // dropped.
            let returned = self.returned.notified();
            tokio::pin!(returned);
            returned.as_mut().enable();
            self.waiting.fetch_add(1, Ordering::SeqCst);
            if let Some(p) = self.try_acquire() {
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                return p;
            }
            returned.await;
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            if let Some(p) = self.try_acquire() {
                return p;
            }
        }
    }
}

/// Times out the UDP queries of every lane.
///
/// One task per client instead of one runtime timer per query: it looks at the front of each
/// lane's deadline queues every `tick` while queries are waiting, and parks when none is (a
/// registration wakes it), so a timeout fires between `wait` and `wait + tick` late.
struct Sweeper {
    idle: AtomicBool,
    wake: Notify,
}

impl Sweeper {
    /// Wakes the sweeper if it parked; called after each registration (one relaxed load when
    /// it is already running).
    fn nudge(&self) {
        if self.idle.load(Ordering::SeqCst) && self.idle.swap(false, Ordering::SeqCst) {
            self.wake.notify_one();
        }
    }

    async fn run(self: Arc<Self>, lanes: Vec<Arc<Pending>>, stats: Arc<Stats>, tick: Duration) {
        let mut wakers = Vec::new();
        loop {
            let now = Instant::now();
            let mut waiting = false;
            for lane in &lanes {
                let mut st = lane.lock();
                let expired = st.table.expire(now, &mut wakers);
                waiting |= st.table.deadline_entries > 0;
                drop(st);
                stats.timeouts.fetch_add(expired, Ordering::Relaxed);
                wakers.drain(..).for_each(Waker::wake);
            }
            if waiting {
                tokio::time::sleep(tick).await;
                continue;
            }
            self.idle.store(true, Ordering::SeqCst);
            if lanes.iter().any(|l| l.lock().table.deadline_entries > 0) {
                self.idle.store(false, Ordering::SeqCst);
                continue;
            }
            self.wake.notified().await;
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
    /// Shared with the client's siblings ([`Resolver::sibling`]), like `in_flight` and
    /// `stats`: the limits hold for the survey, not per thread.
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
    in_flight: Arc<InFlight>,
    stats: Arc<Stats>,
    next: AtomicUsize,
    sweeper: Arc<Sweeper>,
    sweeper_task: JoinHandle<()>,
}

impl Drop for Resolver {
    fn drop(&mut self) {
        self.sweeper_task.abort();
    }
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
    /// The decoded message: header, question, answer section without its DNSSEC proof
    /// material, and the EDNS OPT (see [`decode_answer`]); the
    /// authority section and other additional records are checked but not kept.
    pub message: Message,
    /// The server that sent it.
    pub server: SocketAddr,
}

/// Whether an answer is a SERVFAIL worth asking again ([`servfail_may_pass`]).
fn transient_servfail(msg: &Message) -> bool {
    msg.metadata.response_code == hickory_proto::op::ResponseCode::ServFail
        && servfail_may_pass(ede(msg).as_ref())
}

/// Why an attempt did not end a query.
enum Settled {
    /// No usable answer (lost, late, malformed).
    Failed(DnsFailure),
    /// A SERVFAIL that may pass, kept in case it persists.
    ServFail(Box<Response>),
}

/// How many consecutive queries a lane takes before the next lane's turn: its share of the
/// queries in flight, at most [`MAX_LANE_RUN`] (the module documentation says why).
fn lane_run(max_in_flight: usize, lanes: usize) -> usize {
    (max_in_flight / lanes.max(1)).clamp(1, MAX_LANE_RUN)
}

/// The longest run of queries on one lane.
const MAX_LANE_RUN: usize = 1024;

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
        let limiter = config
            .qps
            .map(|q| Arc::new(RateLimiter::direct(Quota::per_second(q))));
        let in_flight = Arc::new(InFlight::new(config.max_in_flight.max(1)));
        Self::with_transport(config, limiter, in_flight, Arc::new(Stats::default()))
    }

    /// Another client for the same resolvers, with sockets (and their tasks) of its own on
    /// the calling thread's runtime, under this client's limits (rate, queries in flight) and
    /// counting into its [`Stats`].
    ///
    /// Exists so that several current-thread runtimes can each ask the resolvers without an
    /// answer ever crossing threads to reach its query (a wake-up, often a context switch,
    /// per answer), while the survey stays as polite as one client.
    pub fn sibling(&self) -> Result<Self, String> {
        Self::with_transport(
            self.config.clone(),
            self.limiter.clone(),
            self.in_flight.clone(),
            self.stats.clone(),
        )
    }

    /// Opens the sockets and starts their tasks and the sweeper's on the current runtime.
    fn with_transport(
        config: ResolverConfig,
        limiter: Option<Arc<DefaultDirectRateLimiter>>,
        in_flight: Arc<InFlight>,
        stats: Arc<Stats>,
    ) -> Result<Self, String> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err("a Resolver must be made inside a Tokio runtime".into());
        }
        let mut servers = Vec::with_capacity(config.servers.len());
        for &addr in &config.servers {
            let lanes = (0..config.udp_sockets.max(1))
                .map(|_| UdpLane::open(addr, stats.clone()))
                .collect::<std::io::Result<Vec<_>>>()
                .map_err(|e| format!("cannot open a UDP socket to {addr}: {e}"))?;
            servers.push(Server {
                addr,
                lane_run: lane_run(config.max_in_flight, lanes.len()),
                lanes,
                next_lane: AtomicUsize::new(0),
                tcp: tokio::sync::Mutex::new(None),
                load: AtomicUsize::new(0),
            });
        }
        let sweeper = Arc::new(Sweeper {
            idle: AtomicBool::new(false),
            wake: Notify::new(),
        });
        let lanes = servers
            .iter()
            .flat_map(|s| s.lanes.iter().map(|l| l.pending.clone()))
            .collect();
        let tick = (config.timeout / 8).clamp(Duration::from_millis(5), Duration::from_millis(100));
        let sweeper_task = tokio::spawn(sweeper.clone().run(lanes, stats.clone(), tick));
        Ok(Resolver {
            limiter,
            in_flight,
            servers,
            config,
            stats,
            next: AtomicUsize::new(0),
            sweeper,
            sweeper_task,
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
        if n == 1 {
            return &self.servers[0];
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|i| &self.servers[(start + i) % n])
            .min_by_key(|s| s.load.load(Ordering::Relaxed))
            .unwrap_or(&self.servers[0])
    }

    /// Sends one query (RD, DO, EDNS payload 1232) and returns the first acceptable answer,
    /// retrying lost, late and unusable answers with a doubling timeout.
    pub async fn query(&self, name: &Name, rtype: RecordType) -> Result<Response, DnsFailure> {
        let _permit = match self.in_flight.try_acquire() {
            Some(p) => p,
            // Boxed: waiting is rare, and its future would make every query's larger.
            None => Box::pin(self.in_flight.acquire()).await,
        };
        let mut wait = self.config.timeout;
        let mut last = DnsFailure::Timeout;
        let mut last_servfail = None;
        for attempt in 0..=self.config.retries {
            if attempt > 0 {
                Stats::bump(&self.stats.retries);
            }
            if let Some(l) = &self.limiter {
                // Boxed, and only when no token is free now: the waiting future is large,
                // and every query's future would otherwise carry it.
                if l.check().is_err() {
                    Box::pin(l.until_ready()).await;
                }
            }
            let server = self.pick();
            server.load.fetch_add(1, Ordering::Relaxed);
            let _load = LoadGuard(&server.load);
            let outcome = match self.try_udp(server, name, rtype, wait).await {
                Ok(bytes) if is_truncated(&bytes) => {
                    Stats::bump(&self.stats.tcp_queries);
                    // Boxed: the TCP path's state (connect, locks, writes) is large and rare,
                    // and would otherwise make every query's future that large.
                    Box::pin(self.try_tcp(server, name, rtype, wait)).await
                }
                other => other,
            };
            // Settled before the pause below: a message (or a match on one) held across an
            // await would make every query's future, one per domain in flight, hundreds of
            // bytes larger.
            let pause = match self.settle(outcome, server.addr) {
                Ok(response) => return Ok(response),
                Err(Settled::Failed(e)) => {
                    last = e;
                    false
                }
                Err(Settled::ServFail(response)) => {
                    // A SERVFAIL that is not a DNSSEC verdict (no EDE, or a lame/unreachable
                    // authority) may pass: ask again after a pause, keep it if it persists.
                    last_servfail = Some(response);
                    attempt < self.config.retries
                }
            };
            if pause {
                Box::pin(tokio::time::sleep(wait / 2)).await;
            }
            wait = (wait * 2).min(self.config.max_timeout);
        }
        last_servfail.map(|r| *r).ok_or(last)
    }

    /// An attempt's outcome: the answer to return, or why to go on.
    fn settle(
        &self,
        outcome: Result<Vec<u8>, DnsFailure>,
        server: SocketAddr,
    ) -> Result<Response, Settled> {
        let message = outcome
            .and_then(|bytes| self.decode(&bytes))
            .map_err(Settled::Failed)?;
        Stats::bump(&self.stats.answered);
        let response = Response { message, server };
        if transient_servfail(&response.message) {
            return Err(Settled::ServFail(Box::new(response)));
        }
        Ok(response)
    }

    fn decode(&self, bytes: &[u8]) -> Result<Message, DnsFailure> {
        decode_answer(bytes).map_err(|e| {
            Stats::bump(&self.stats.dropped_malformed);
            DnsFailure::Malformed(format!("undecodable answer: {e}"))
        })
    }

    async fn try_udp(
        &self,
        server: &Server,
        name: &Name,
        rtype: RecordType,
        wait: Duration,
    ) -> Result<Vec<u8>, DnsFailure> {
        let lane = if server.lanes.len() == 1 {
            &server.lanes[0]
        } else {
            let sent = server.next_lane.fetch_add(1, Ordering::Relaxed);
            let i = (sent / server.lane_run) % server.lanes.len();
            &server.lanes[i]
        };
        let (index, generation) = lane.pending.enqueue_udp(name, rtype, wait)?;
        Stats::bump(&self.stats.sent);
        self.sweeper.nudge();
        lane.pending.answer(index, generation).await
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
        let mut framed = vec![0u8; 2];
        let span = write_query(&mut framed, 0, name, rtype)?;
        let (id, index, generation) = lane.pending.lock().table.register(&framed[span], None)?;
        let answer = lane.pending.answer(index, generation);
        framed[2..4].copy_from_slice(&id.to_be_bytes());
        let len = u16::try_from(framed.len() - 2)
            .map_err(|_| DnsFailure::Malformed("query longer than 65535 bytes".into()))?;
        framed[..2].copy_from_slice(&len.to_be_bytes());
        Stats::bump(&self.stats.sent);
        let written = {
            let mut w = lane.writer.lock().await;
            timeout(wait, w.write_all(&framed)).await
        };
        match written {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                lane.alive.store(false, Ordering::Release);
                Stats::bump(&self.stats.network_errors);
                return Err(DnsFailure::Network(format!(
                    "TCP write to {}: {e}",
                    server.addr
                )));
            }
            Err(_) => {
                lane.alive.store(false, Ordering::Release);
                return Err(DnsFailure::Timeout);
            }
        }
        match timeout(wait, answer).await {
            Ok(outcome) => outcome,
            Err(_) => {
                Stats::bump(&self.stats.timeouts);
                Err(DnsFailure::Timeout)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lane_run_is_its_share_of_the_cap_within_bounds() {
        assert_eq!(lane_run(2000, 8), 250);
        assert_eq!(lane_run(10, 8), 1);
        assert_eq!(lane_run(100_000, 8), MAX_LANE_RUN);
        assert_eq!(lane_run(5, 0), 5);
        assert_eq!(lane_run(0, 4), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn in_flight_cap_holds_under_contention_and_nobody_is_forgotten() {
        let cap = Arc::new(InFlight::new(3));
        let (now, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let jobs: Vec<_> = (0..400)
            .map(|i| {
                let (cap, now, peak) = (cap.clone(), now.clone(), peak.clone());
                tokio::spawn(async move {
                    let _p = match cap.try_acquire() {
                        Some(p) => p,
                        None => cap.acquire().await,
                    };
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(n, Ordering::SeqCst);
                    if i % 7 == 0 {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    } else {
                        tokio::task::yield_now().await;
                    }
                    now.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for j in jobs {
            j.await.unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 3);
        assert_eq!(cap.free.load(Ordering::SeqCst), 3);
        assert_eq!(cap.waiting.load(Ordering::SeqCst), 0);
    }
}
