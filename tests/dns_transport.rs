//! The DNS transport against misbehaving servers on loopback: lost answers, forged answers
//! (wrong id, wrong question, wrong source), truncation with TCP fallback and pipelining,
//! 0x20 case echo, and a resolver that is not there; and, over a server that answers any MX
//! query with a chosen RRset, how the MX stage reads targets that cannot be mail hosts.
//!
//! These servers set the AD bit by fiat: they exercise the transport (ids, questions,
//! framing, timing) and the reading of answers, not DNSSEC, whose correctness is tested
//! against the real lab in `tests/lab.rs`.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dane_survey::dns::{DnsFailure, Resolver, ResolverConfig, Response};
use hickory_proto::op::{Message, MessageType, OpCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

/// How the fake server treats each UDP query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Behaviour {
    /// Answer at once.
    Answer,
    /// Drop the first `n` copies of each query, then answer.
    DropFirst(usize),
    /// Never answer.
    Silent,
    /// Send forgeries (wrong id, wrong question, wrong source) before the real answer.
    Forge,
    /// Answer with TC set (the real answer is on TCP).
    Truncate,
    /// Echo the question name in upper case (0x20).
    UpperCase,
    /// SERVFAIL without EDE the first time (a lame authority), then answer.
    ServFailOnce,
    /// SERVFAIL with EDE 6 (DNSSEC Bogus) every time.
    ServFailBogus,
    /// Answer with the signed MX RRset [`mx_records`] gives for the name.
    Mx,
}

const REAL: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const FORGED: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 66);

fn answer_to(query: &Message, addr: Ipv4Addr) -> Message {
    let mut m = Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.metadata.recursion_available = true;
    m.metadata.authentic_data = true;
    for q in &query.queries {
        m.add_query(q.clone());
        m.add_answer(Record::from_rdata(q.name().clone(), 60, RData::A(A(addr))));
    }
    m
}

/// The MX RRset of a name in [`Behaviour::Mx`]: its first label is the shape.
fn mx_records(name: &Name) -> Vec<(u16, &'static str)> {
    let first = name.iter().next().unwrap_or_default();
    match first {
        b"null" => vec![(0, ".")],
        b"lone-root" => vec![(10, ".")],
        b"ip" => vec![(10, "192.0.2.25.")],
        b"root-primary" => vec![(10, "mx.provider.example."), (10, ".")],
        b"root-backup" => vec![(10, "mx.provider.example."), (20, ".")],
        _ => vec![(10, "mx.provider.example.")],
    }
}

struct Fake {
    addr: SocketAddr,
    udp_seen: Arc<AtomicUsize>,
    /// The source port of each UDP query, in arrival order.
    udp_ports: Arc<std::sync::Mutex<Vec<u16>>>,
    tcp_connections: Arc<AtomicUsize>,
}

/// Starts the fake server on 127.0.0.1 (UDP and TCP on one port).
async fn fake(behaviour: Behaviour) -> Fake {
    let (udp, tcp) = loop {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = udp.local_addr().unwrap().port();
        if let Ok(tcp) = TcpListener::bind(("127.0.0.1", port)).await {
            break (udp, tcp);
        }
    };
    let addr = udp.local_addr().unwrap();
    let udp_seen = Arc::new(AtomicUsize::new(0));
    let tcp_connections = Arc::new(AtomicUsize::new(0));
    let udp_ports = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (seen, ports) = (udp_seen.clone(), udp_ports.clone());
    tokio::spawn(async move {
        let udp = Arc::new(udp);
        let forger = Arc::new(UdpSocket::bind("127.0.0.2:0").await.unwrap());
        let mut copies: std::collections::HashMap<String, usize> = Default::default();
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, peer)) = udp.recv_from(&mut buf).await else {
                return;
            };
            seen.fetch_add(1, Ordering::SeqCst);
            ports.lock().unwrap().push(peer.port());
            let Ok(q) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let key = q.queries[0].name().to_string();
            let count = copies.entry(key).or_default();
            *count += 1;
            match behaviour {
                Behaviour::Answer => {}
                Behaviour::Silent => continue,
                Behaviour::DropFirst(k) if *count <= k => continue,
                Behaviour::DropFirst(_) => {}
                Behaviour::Truncate => {
                    let mut m = answer_to(&q, FORGED);
                    m.answers.clear();
                    m.metadata.truncation = true;
                    udp.send_to(&m.to_vec().unwrap(), peer).await.unwrap();
                    continue;
                }
                Behaviour::UpperCase => {
                    let mut m = answer_to(&q, REAL);
                    let upper =
                        Name::from_ascii(q.queries[0].name().to_ascii().to_uppercase()).unwrap();
                    m.queries[0].set_name(upper);
                    udp.send_to(&m.to_vec().unwrap(), peer).await.unwrap();
                    continue;
                }
                Behaviour::ServFailOnce | Behaviour::ServFailBogus
                    if *count == 1 || behaviour == Behaviour::ServFailBogus =>
                {
                    let mut m = answer_to(&q, FORGED);
                    m.answers.clear();
                    m.metadata.response_code = hickory_proto::op::ResponseCode::ServFail;
                    if behaviour == Behaviour::ServFailBogus {
                        let mut edns = hickory_proto::op::Edns::new();
                        edns.options_mut().insert(
                            hickory_proto::rr::rdata::opt::EdnsOption::Unknown(15, vec![0, 6]),
                        );
                        m.set_edns(edns);
                    }
                    udp.send_to(&m.to_vec().unwrap(), peer).await.unwrap();
                    continue;
                }
                Behaviour::ServFailOnce => {}
                Behaviour::ServFailBogus => unreachable!(),
                Behaviour::Mx => {
                    let mut m = answer_to(&q, REAL);
                    m.answers.clear();
                    let owner = q.queries[0].name().clone();
                    for (pref, host) in mx_records(&owner) {
                        let mx = hickory_proto::rr::rdata::MX::new(pref, name(host));
                        m.add_answer(Record::from_rdata(owner.clone(), 60, RData::MX(mx)));
                    }
                    udp.send_to(&m.to_vec().unwrap(), peer).await.unwrap();
                    continue;
                }
                Behaviour::Forge => {
                    // Wrong id.
                    let mut m = answer_to(&q, FORGED);
                    m.metadata.id = q.metadata.id.wrapping_add(1);
                    udp.send_to(&m.to_vec().unwrap(), peer).await.unwrap();
                    // Right id, wrong question.
                    let mut m = answer_to(&q, FORGED);
                    m.queries[0].set_name(Name::from_ascii("evil.example.").unwrap());
                    udp.send_to(&m.to_vec().unwrap(), peer).await.unwrap();
                    // Right id and question, wrong source address.
                    let m = answer_to(&q, FORGED);
                    forger.send_to(&m.to_vec().unwrap(), peer).await.unwrap();
                    // Not a response at all.
                    udp.send_to(&buf[..n], peer).await.unwrap();
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            udp.send_to(&answer_to(&q, REAL).to_vec().unwrap(), peer)
                .await
                .unwrap();
        }
    });
    let conns = tcp_connections.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = tcp.accept().await else {
                return;
            };
            conns.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                // Read a few pipelined queries, then answer them in reverse order (RFC 7766
                // allows out-of-order answers) to prove matching is by id and question.
                let mut batch = Vec::new();
                loop {
                    let mut len = [0u8; 2];
                    let read =
                        tokio::time::timeout(Duration::from_millis(100), s.read_exact(&mut len))
                            .await;
                    match read {
                        Ok(Ok(_)) => {
                            let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
                            if s.read_exact(&mut body).await.is_err() {
                                return;
                            }
                            batch.push(Message::from_vec(&body).unwrap());
                        }
                        Ok(Err(_)) => return,
                        Err(_) => {
                            for q in batch.drain(..).rev() {
                                let a = answer_to(&q, REAL).to_vec().unwrap();
                                let mut framed = (a.len() as u16).to_be_bytes().to_vec();
                                framed.extend_from_slice(&a);
                                if s.write_all(&framed).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                }
            });
        }
    });
    Fake {
        addr,
        udp_seen,
        udp_ports,
        tcp_connections,
    }
}

fn config(server: SocketAddr) -> ResolverConfig {
    let mut c = ResolverConfig::new(vec![server]);
    c.timeout = Duration::from_millis(200);
    c.max_timeout = Duration::from_millis(400);
    c.retries = 2;
    c
}

fn a_of(m: &Message) -> Vec<Ipv4Addr> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect()
}

fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

/// `count` A queries for `<prefix><i>.example.`, each a task on the current runtime.
fn spawn_queries(
    r: &Arc<Resolver>,
    prefix: &str,
    count: usize,
) -> Vec<tokio::task::JoinHandle<Result<Response, DnsFailure>>> {
    (0..count)
        .map(|i| {
            let (r, q) = (r.clone(), name(&format!("{prefix}{i}.example.")));
            tokio::spawn(async move { r.query(&q, RecordType::A).await })
        })
        .collect()
}

/// Runs `work` on a thread of its own with a current-thread runtime (as the crawl's further
/// dispatchers do).
fn on_own_runtime<T: Send + 'static, F: std::future::Future<Output = T> + 'static>(
    work: impl FnOnce() -> F + Send + 'static,
) -> std::thread::JoinHandle<T> {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(work())
    })
}

#[tokio::test]
async fn lost_answers_are_retried() {
    let f = fake(Behaviour::DropFirst(2)).await;
    let r = Resolver::new(config(f.addr)).unwrap();
    let resp = r
        .query(&name("lost.example."), RecordType::A)
        .await
        .unwrap();
    assert_eq!(a_of(&resp.message), vec![REAL]);
    let s = r.stats();
    assert_eq!(
        (s.sent, s.retries, s.timeouts, s.answered),
        (3, 2, 2, 1),
        "{s:?}"
    );
    assert_eq!(f.udp_seen.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn silence_becomes_a_timeout_after_the_retries() {
    let f = fake(Behaviour::Silent).await;
    let r = Resolver::new(config(f.addr)).unwrap();
    let started = std::time::Instant::now();
    let e = r
        .query(&name("void.example."), RecordType::A)
        .await
        .unwrap_err();
    assert_eq!(e, DnsFailure::Timeout);
    // 200 ms + 400 ms + 400 ms (doubling, capped), not less: every try waited its turn.
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "{:?}",
        started.elapsed()
    );
    let s = r.stats();
    assert_eq!((s.sent, s.timeouts, s.answered), (3, 3, 0), "{s:?}");
}

#[tokio::test]
async fn forgeries_are_dropped_and_counted() {
    let f = fake(Behaviour::Forge).await;
    let r = Resolver::new(config(f.addr)).unwrap();
    let resp = r
        .query(&name("target.example."), RecordType::A)
        .await
        .unwrap();
    assert_eq!(a_of(&resp.message), vec![REAL], "a forgery was accepted");
    let s = r.stats();
    assert_eq!(s.dropped_unknown_id, 1, "{s:?}");
    assert_eq!(s.dropped_wrong_question, 1, "{s:?}");
    assert_eq!(
        s.dropped_malformed, 1,
        "the echoed query (QR=0) is not an answer: {s:?}"
    );
    assert_eq!(s.retries, 0, "{s:?}");
    // The wrong-source forgery never reaches us: the socket is connected to the server.
}

#[tokio::test]
async fn truncated_answers_are_asked_again_over_one_pipelined_tcp_connection() {
    let f = fake(Behaviour::Truncate).await;
    let r = Arc::new(Resolver::new(config(f.addr)).unwrap());
    let jobs: Vec<_> = (0..20)
        .map(|i| {
            let r = r.clone();
            tokio::spawn(async move {
                r.query(&name(&format!("big{i}.example.")), RecordType::A)
                    .await
            })
        })
        .collect();
    for j in jobs {
        let resp = j.await.unwrap().unwrap();
        assert_eq!(a_of(&resp.message), vec![REAL]);
        assert!(!resp.message.metadata.truncation);
    }
    assert_eq!(r.stats().tcp_queries, 20);
    assert_eq!(
        f.tcp_connections.load(Ordering::SeqCst),
        1,
        "TCP connection not reused"
    );
}

#[tokio::test]
async fn servfail_without_a_dnssec_reason_is_asked_again() {
    let f = fake(Behaviour::ServFailOnce).await;
    let r = Resolver::new(config(f.addr)).unwrap();
    let resp = r
        .query(&name("lame.example."), RecordType::A)
        .await
        .unwrap();
    assert_eq!(a_of(&resp.message), vec![REAL]);
    assert_eq!(r.stats().retries, 1);
}

#[tokio::test]
async fn servfail_for_bogus_data_is_final() {
    let f = fake(Behaviour::ServFailBogus).await;
    let r = Resolver::new(config(f.addr)).unwrap();
    let resp = r
        .query(&name("bogus.example."), RecordType::A)
        .await
        .unwrap();
    assert_eq!(
        resp.message.metadata.response_code,
        hickory_proto::op::ResponseCode::ServFail
    );
    assert_eq!((r.stats().sent, r.stats().retries), (1, 0));
}

#[tokio::test]
async fn question_case_echo_is_accepted() {
    let f = fake(Behaviour::UpperCase).await;
    let r = Resolver::new(config(f.addr)).unwrap();
    let resp = r
        .query(&name("MiXeD.example."), RecordType::A)
        .await
        .unwrap();
    assert_eq!(a_of(&resp.message), vec![REAL]);
}

#[tokio::test]
async fn many_in_flight_share_few_sockets() {
    let f = fake(Behaviour::Answer).await;
    let mut c = config(f.addr);
    c.udp_sockets = 2;
    c.max_in_flight = 500;
    let r = Arc::new(Resolver::new(c).unwrap());
    for j in spawn_queries(&r, "n", 2000) {
        assert_eq!(a_of(&j.await.unwrap().unwrap().message), vec![REAL]);
    }
    assert_eq!(r.stats().answered, 2000);
}

#[tokio::test]
async fn queries_take_the_lanes_in_runs_of_their_share_of_the_cap() {
    let f = fake(Behaviour::Answer).await;
    let mut c = config(f.addr);
    c.udp_sockets = 4;
    c.max_in_flight = 12; // a run of 3 queries per socket
    let r = Resolver::new(c).unwrap();
    for i in 0..24 {
        r.query(&name(&format!("q{i}.example.")), RecordType::A)
            .await
            .unwrap();
    }
    let ports = f.udp_ports.lock().unwrap().clone();
    assert_eq!(ports.len(), 24);
    let runs: Vec<&[u16]> = ports.chunks(3).collect();
    for run in &runs {
        assert!(
            run.iter().all(|p| *p == run[0]),
            "a run spans sockets: {ports:?}"
        );
    }
    // Four sockets in turn, twice.
    let first: Vec<u16> = runs[..4].iter().map(|run| run[0]).collect();
    let distinct: std::collections::BTreeSet<u16> = first.iter().copied().collect();
    assert_eq!(distinct.len(), 4, "{ports:?}");
    let second: Vec<u16> = runs[4..].iter().map(|run| run[0]).collect();
    assert_eq!(first, second);
}

#[tokio::test]
async fn rate_limit_is_honoured() {
    let f = fake(Behaviour::Answer).await;
    let mut c = config(f.addr);
    c.qps = std::num::NonZeroU32::new(20);
    let r = Arc::new(Resolver::new(c).unwrap());
    let started = std::time::Instant::now();
    for j in spawn_queries(&r, "r", 40) {
        j.await.unwrap().unwrap();
    }
    // 40 queries at 20/s with a burst of 20: at least ~1 s.
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn absent_resolver_fails_fast() {
    // Bind and drop to find a port nobody listens on.
    let port = UdpSocket::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let r = Resolver::new(config(SocketAddr::from(([127, 0, 0, 1], port)))).unwrap();
    let e = r
        .query(&name("x.example."), RecordType::A)
        .await
        .unwrap_err();
    // A network error (ICMP port unreachable on the connected socket), not a timeout.
    assert!(matches!(e, DnsFailure::Network(_)), "{e:?} {:?}", r.stats());
    assert_eq!(r.stats().timeouts, 0);
}

#[tokio::test]
async fn untrusted_resolver_is_refused() {
    let e = Resolver::new(ResolverConfig::new(vec!["192.0.2.53:53".parse().unwrap()])).unwrap_err();
    assert!(e.contains("not on loopback"), "{e}");
}

#[tokio::test]
async fn siblings_share_the_cap_and_the_counts() {
    // A sibling on another thread's runtime (the crawl's second dispatcher) answers its own
    // queries, counts them with the first client's stats, and shares its cap on queries in
    // flight: with a silent server and a cap of 3, ten queries over both clients put exactly
    // three on the wire.
    let silent = fake(Behaviour::Silent).await;
    let mut c = config(silent.addr);
    c.timeout = Duration::from_secs(5);
    c.max_timeout = Duration::from_secs(5);
    c.retries = 0;
    c.max_in_flight = 3;
    let r = Arc::new(Resolver::new(c).unwrap());
    let on_main = spawn_queries(&r, "m", 5);
    let (r2, stop) = (r.clone(), Arc::new(tokio::sync::Notify::new()));
    let stop2 = stop.clone();
    let other = on_own_runtime(move || async move {
        let s = Arc::new(r2.sibling().unwrap());
        let _queries = spawn_queries(&s, "o", 5);
        stop2.notified().await;
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(silent.udp_seen.load(Ordering::SeqCst), 3);
    assert_eq!(r.stats().sent, 3);
    stop.notify_one();
    other.join().unwrap();
    on_main.iter().for_each(|j| j.abort());

    let f = fake(Behaviour::Answer).await;
    let r = Arc::new(Resolver::new(config(f.addr)).unwrap());
    let r2 = r.clone();
    let answers = on_own_runtime(move || async move {
        let s = Arc::new(r2.sibling().unwrap());
        let mut got = Vec::new();
        for j in spawn_queries(&s, "s", 20) {
            got.push(a_of(&j.await.unwrap().unwrap().message));
        }
        got
    });
    // Joined off this runtime's thread, which serves the fake resolver.
    let answers = tokio::task::spawn_blocking(move || answers.join().unwrap())
        .await
        .unwrap();
    assert!(answers.iter().all(|a| a == &vec![REAL]));
    assert_eq!(r.stats().answered, 20);
}

#[tokio::test]
async fn mx_targets_that_cannot_be_mail_hosts_make_the_domain_invalid() {
    // RFC 7505: only a lone `0 .` is a null MX; the root as any other (primary) target, or
    // an IP address as a target, cannot be a mail host (the primer's `invalid_mx`).
    use dane_survey::survey::{mx_stage, CheckContext};
    use dane_survey::verdict::DomainVerdict;
    let server = fake(Behaviour::Mx).await;
    let ctx = CheckContext {
        resolver: Resolver::new(config(server.addr)).unwrap(),
        probe: Default::default(),
        at: 0,
        allow_loopback: true,
        smtp_port: 25,
        probe_without_tlsa: false,
    };
    for (domain, verdict, hosts_follow) in [
        ("null.example.", DomainVerdict::NullMx, false),
        ("lone-root.example.", DomainVerdict::InvalidMx, false),
        ("ip.example.", DomainVerdict::InvalidMx, false),
        ("root-primary.example.", DomainVerdict::InvalidMx, false),
        ("root-backup.example.", DomainVerdict::MxLookupFailed, true),
        ("fine.example.", DomainVerdict::MxLookupFailed, true),
    ] {
        let printed = domain.trim_end_matches('.').to_string();
        let (report, hosts) = mx_stage(&ctx, &name(domain), printed).await;
        // Domains whose hosts are still to be checked keep the placeholder verdict.
        assert_eq!(report.verdict, verdict, "{domain}: {}", report.reason);
        assert_eq!(hosts.is_some(), hosts_follow, "{domain}");
        if verdict == DomainVerdict::InvalidMx {
            assert!(
                report.reason.starts_with("primary MX host "),
                "{}",
                report.reason
            );
        }
        if hosts_follow {
            assert_eq!(report.providers, ["provider.example"], "{domain}");
        }
    }
}
