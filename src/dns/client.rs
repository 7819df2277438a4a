//! The transport: DO-bit queries to a validating resolver over UDP with TCP fallback.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{timeout, Instant};

use super::lookup::DnsFailure;

/// Largest UDP payload we advertise (the DNS Flag Day 2020 value, avoids IP fragmentation).
const EDNS_PAYLOAD: u16 = 1232;
/// Largest datagram we accept; anything larger than the advertised payload is odd but harmless.
const UDP_RECV_MAX: usize = 4096;

/// Where and how to ask: the resolvers, and how long to wait for them.
///
/// Exists so the CLI and the tests state the resolver policy (addresses, timeouts, retries,
/// whether a non-loopback resolver is trusted for the AD bit) in one place.
#[derive(Clone, Debug)]
pub struct ResolverConfig {
    /// Validating resolvers, used round robin.
    pub servers: Vec<SocketAddr>,
    /// Time allowed for one try over UDP (or one TCP exchange).
    pub timeout: Duration,
    /// Tries per query after the first (each to the next server).
    pub retries: u32,
    /// Accept the AD bit from a resolver that is not on loopback. Only sound over a channel the
    /// user trusts (RFC 6698 §4.1, RFC 4035 §4.9.3).
    pub trust_remote: bool,
}

impl ResolverConfig {
    /// A configuration for the given resolvers with the defaults a survey wants.
    pub fn new(servers: Vec<SocketAddr>) -> Self {
        ResolverConfig {
            servers,
            timeout: Duration::from_secs(5),
            retries: 2,
            trust_remote: false,
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

/// A validated-resolver client.
///
/// Exists to own the resolver policy of [`ResolverConfig`] and to hand out raw answers that
/// [`super::Lookup`] then classifies; it refuses untrusted resolvers at construction so no code
/// path can read an AD bit that means nothing.
#[derive(Debug)]
pub struct Resolver {
    config: ResolverConfig,
    next: AtomicUsize,
}

/// A resolver answer that passed the transport checks (id, question, source address).
#[derive(Debug)]
pub struct Response {
    /// The decoded message.
    pub message: Message,
    /// The server that sent it.
    pub server: SocketAddr,
}

impl Resolver {
    /// Builds a client; fails when a resolver is not on loopback and `trust_remote` is off.
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
        Ok(Resolver {
            config,
            next: AtomicUsize::new(0),
        })
    }

    /// The resolver configuration in force.
    pub fn config(&self) -> &ResolverConfig {
        &self.config
    }

    /// Sends one query (RD, DO, EDNS payload 1232) and returns the first acceptable answer.
    pub async fn query(&self, name: &Name, rtype: RecordType) -> Result<Response, DnsFailure> {
        let mut last = DnsFailure::Timeout;
        for _ in 0..=self.config.retries {
            let i = self.next.fetch_add(1, Ordering::Relaxed) % self.config.servers.len();
            let server = self.config.servers[i];
            match self.exchange(server, name, rtype).await {
                Ok(r) => return Ok(r),
                Err(e @ (DnsFailure::Timeout | DnsFailure::Network(_))) => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    async fn exchange(
        &self,
        server: SocketAddr,
        name: &Name,
        rtype: RecordType,
    ) -> Result<Response, DnsFailure> {
        let id: u16 = rand::random();
        let wire = build_query(id, name, rtype)?;
        let asked = Asked { id, name, rtype };
        let msg = timeout(self.config.timeout, udp_exchange(server, &wire, &asked))
            .await
            .map_err(|_| DnsFailure::Timeout)??;
        let msg = if msg.metadata.truncation {
            timeout(self.config.timeout, tcp_exchange(server, &wire, &asked))
                .await
                .map_err(|_| DnsFailure::Timeout)??
        } else {
            msg
        };
        Ok(Response {
            message: msg,
            server,
        })
    }
}

fn build_query(id: u16, name: &Name, rtype: RecordType) -> Result<Vec<u8>, DnsFailure> {
    let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(name.clone(), rtype));
    let mut edns = Edns::new();
    edns.set_max_payload(EDNS_PAYLOAD);
    edns.set_dnssec_ok(true);
    msg.set_edns(edns);
    msg.to_vec()
        .map_err(|e| DnsFailure::Malformed(format!("cannot encode query: {e}")))
}

/// One outstanding question: what an answer must echo to be accepted.
struct Asked<'a> {
    id: u16,
    name: &'a Name,
    rtype: RecordType,
}

impl Asked<'_> {
    /// Whether `msg` answers this question: a response with our id and exactly our question
    /// (names compared case-insensitively, RFC 4343 — hickory's `Name` equality does that).
    fn answered_by(&self, msg: &Message) -> bool {
        msg.metadata.id == self.id
            && msg.metadata.message_type == MessageType::Response
            && msg.queries.len() == 1
            && msg.queries[0].query_type() == self.rtype
            && msg.queries[0].name() == self.name
    }
}

async fn udp_exchange(
    server: SocketAddr,
    wire: &[u8],
    asked: &Asked<'_>,
) -> Result<Message, DnsFailure> {
    let bind: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse().expect("literal")
    } else {
        "[::]:0".parse().expect("literal")
    };
    let sock = UdpSocket::bind(bind).await.map_err(net)?;
    // A connected socket: the kernel drops datagrams from any other source, and an ICMP
    // port-unreachable surfaces at once as ECONNREFUSED instead of a silent timeout.
    sock.connect(server).await.map_err(net)?;
    sock.send(wire).await.map_err(net)?;
    let mut buf = vec![0u8; UDP_RECV_MAX];
    loop {
        let n = sock.recv(&mut buf).await.map_err(net)?;
        let Ok(msg) = Message::from_vec(&buf[..n]) else {
            continue; // garbage: keep waiting for the real answer until the timeout
        };
        if asked.answered_by(&msg) {
            return Ok(msg);
        }
    }
}

async fn tcp_exchange(
    server: SocketAddr,
    wire: &[u8],
    asked: &Asked<'_>,
) -> Result<Message, DnsFailure> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(server).await.map_err(net)?;
    let len = u16::try_from(wire.len())
        .map_err(|_| DnsFailure::Malformed("query longer than 65535 bytes".into()))?;
    let mut framed = Vec::with_capacity(wire.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(wire);
    stream.write_all(&framed).await.map_err(net)?;
    // RFC 7766 framing: a two-byte length, then the message (so at most 65535 bytes).
    let mut lenbuf = [0u8; 2];
    stream.read_exact(&mut lenbuf).await.map_err(net)?;
    let n = usize::from(u16::from_be_bytes(lenbuf));
    let mut buf = vec![0u8; n];
    stream.read_exact(&mut buf).await.map_err(net)?;
    let msg = Message::from_vec(&buf)
        .map_err(|e| DnsFailure::Malformed(format!("undecodable TCP answer from {server}: {e}")))?;
    if !asked.answered_by(&msg) {
        return Err(DnsFailure::Malformed(format!(
            "TCP answer from {server} after {:?} does not match the question",
            started.elapsed()
        )));
    }
    Ok(msg)
}

fn net(e: std::io::Error) -> DnsFailure {
    DnsFailure::Network(e.to_string())
}
