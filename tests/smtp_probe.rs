//! Integration tests for the SMTP STARTTLS probe against scripted in-test
//! servers on 127.0.0.1 (ephemeral ports only).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dane_survey::smtp::{probe, ProbeConfig, ProbeErrorKind, ProbeResult, Stage};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;

// ---------------------------------------------------------------- helpers

fn config() -> ProbeConfig {
    ProbeConfig {
        ehlo_name: "probe.test".into(),
        connect_timeout: Duration::from_secs(2),
        stage_timeout: Duration::from_secs(2),
        session_timeout: Duration::from_secs(5),
        ..ProbeConfig::default()
    }
}

/// A CA and a leaf for `mx.test` signed by it.
struct Pki {
    leaf: CertificateDer<'static>,
    ca: CertificateDer<'static>,
    leaf_key: Vec<u8>,
    other_key: Vec<u8>,
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["mx.test".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    Pki {
        leaf: leaf.der().clone(),
        ca: ca.der().clone(),
        leaf_key: leaf_key.serialize_der(),
        other_key: KeyPair::generate().unwrap().serialize_der(),
    }
}

fn key_der(bytes: &[u8]) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(bytes.to_vec()))
}

fn tls_acceptor(pki: &Pki, versions: &[&'static rustls::SupportedProtocolVersion]) -> TlsAcceptor {
    let cfg =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(versions)
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![pki.leaf.clone(), pki.ca.clone()],
                key_der(&pki.leaf_key),
            )
            .unwrap();
    TlsAcceptor::from(Arc::new(cfg))
}

/// Presents the real chain but signs with a different key.
#[derive(Debug)]
struct WrongKey(Arc<CertifiedKey>);

impl ResolvesServerCert for WrongKey {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

fn wrong_key_acceptor(pki: &Pki) -> TlsAcceptor {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let signer = provider
        .key_provider
        .load_private_key(key_der(&pki.other_key))
        .unwrap();
    let ck = CertifiedKey::new(vec![pki.leaf.clone(), pki.ca.clone()], signer);
    let cfg = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(WrongKey(Arc::new(ck))));
    TlsAcceptor::from(Arc::new(cfg))
}

/// Serves one connection with `handler` on an ephemeral loopback port.
async fn serve<F, Fut>(handler: F) -> SocketAddr
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        if let Ok((stream, _)) = listener.accept().await {
            handler(stream).await;
        }
    });
    addr
}

/// Reads one CRLF line byte by byte (so nothing past it is consumed).
async fn read_line(s: &mut TcpStream) -> String {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while let Ok(1) = s.read(&mut b).await {
        line.push(b[0]);
        if b[0] == b'\n' {
            break;
        }
    }
    String::from_utf8_lossy(&line).into_owned()
}

/// Banner + EHLO exchange shared by most scripts.
async fn greet(s: &mut TcpStream, ehlo_reply: &[u8]) {
    s.write_all(b"220 mx.test ESMTP test\r\n").await.unwrap();
    let ehlo = read_line(s).await;
    assert_eq!(ehlo, "EHLO probe.test\r\n");
    s.write_all(ehlo_reply).await.unwrap();
}

const EHLO_OK: &[u8] = b"250-mx.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 STARTTLS\r\n";

/// Up to STARTTLS; returns after reading the STARTTLS command.
async fn until_starttls(s: &mut TcpStream) {
    greet(s, EHLO_OK).await;
    assert_eq!(read_line(s).await, "STARTTLS\r\n");
}

fn assert_error(r: &ProbeResult, stage: Stage, kind: ProbeErrorKind) {
    let e = r
        .error
        .as_ref()
        .unwrap_or_else(|| panic!("expected {kind:?} at {stage:?}, got success: {r:?}"));
    assert_eq!((e.stage, e.kind), (stage, kind), "{r:?}");
}

/// Runs a full good STARTTLS server; reports the SNI it saw and whether
/// QUIT arrived over TLS.
async fn good_server(
    pki: &Pki,
    versions: &[&'static rustls::SupportedProtocolVersion],
    ehlo_reply: &'static [u8],
) -> (SocketAddr, oneshot::Receiver<(Option<String>, String)>) {
    let acceptor = tls_acceptor(pki, versions);
    let (tx, rx) = oneshot::channel();
    let addr = serve(move |mut s| async move {
        greet(&mut s, ehlo_reply).await;
        assert_eq!(read_line(&mut s).await, "STARTTLS\r\n");
        s.write_all(b"220 2.0.0 Ready to start TLS\r\n")
            .await
            .unwrap();
        let mut tls = acceptor.accept(s).await.unwrap();
        let sni = tls.get_ref().1.server_name().map(str::to_owned);
        let mut buf = [0u8; 64];
        let n = tls.read(&mut buf).await.unwrap_or(0);
        let quit = String::from_utf8_lossy(&buf[..n]).into_owned();
        let _ = tls.write_all(b"221 2.0.0 Bye\r\n").await;
        let _ = tls.shutdown().await;
        let _ = tx.send((sni, quit));
    })
    .await;
    (addr, rx)
}

// ------------------------------------------------------------------ tests

#[tokio::test]
async fn good_starttls_tls13() {
    let pki = pki();
    let (addr, seen) = good_server(
        &pki,
        &[&rustls::version::TLS13, &rustls::version::TLS12],
        EHLO_OK,
    )
    .await;
    let r = probe(addr, "mx.test.", &config()).await;
    assert!(r.error.is_none(), "{r:?}");
    assert_eq!(r.stage_reached, Stage::Done);
    assert_eq!(r.banner.as_deref(), Some("mx.test ESMTP test"));
    assert_eq!(
        r.ehlo_extensions,
        vec!["PIPELINING", "SIZE 10240000", "STARTTLS"]
    );
    assert!(r.starttls_offered);
    assert_eq!(r.tls_version.as_deref(), Some("TLSv1.3"));
    assert!(r.cipher.as_deref().unwrap().starts_with("TLS13_"), "{r:?}");
    assert_eq!(r.chain, vec![pki.leaf.to_vec(), pki.ca.to_vec()]);
    assert!(!r.is_unreachable());
    let (sni, quit) = seen.await.unwrap();
    assert_eq!(sni.as_deref(), Some("mx.test"));
    assert_eq!(quit, "QUIT\r\n");
    // Serialisation omits the chain and uses snake_case stages.
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["stage_reached"], "done");
    assert!(json.get("chain").is_none());
}

#[tokio::test]
async fn good_starttls_tls12_lowercase_keyword_ip_sni() {
    let pki = pki();
    let (addr, seen) = good_server(
        &pki,
        &[&rustls::version::TLS12],
        b"250-mx.test\r\n250 starttls\n",
    )
    .await;
    let r = probe(addr, "127.0.0.1", &config()).await;
    assert!(r.error.is_none(), "{r:?}");
    assert_eq!(r.stage_reached, Stage::Done);
    assert_eq!(r.tls_version.as_deref(), Some("TLSv1.2"));
    assert!(
        r.cipher.as_deref().unwrap().starts_with("TLS_ECDHE_"),
        "{r:?}"
    );
    assert_eq!(r.chain, vec![pki.leaf.to_vec(), pki.ca.to_vec()]);
    let (sni, _) = seen.await.unwrap();
    assert_eq!(sni, None, "IP literal must not be sent as SNI");
}

#[tokio::test]
async fn starttls_not_offered() {
    let (tx, rx) = oneshot::channel();
    let addr = serve(|mut s| async move {
        greet(
            &mut s,
            b"250-mx.test\r\n250-SIZE 1000\r\n250 X-STARTTLS-NOT\r\n",
        )
        .await;
        let _ = tx.send(read_line(&mut s).await);
    })
    .await;
    let r = probe(addr, "mx.test", &config()).await;
    assert_error(&r, Stage::Starttls, ProbeErrorKind::StarttlsNotOffered);
    assert_eq!(r.stage_reached, Stage::Ehlo);
    assert!(!r.starttls_offered);
    assert_eq!(r.ehlo_extensions, vec!["SIZE 1000", "X-STARTTLS-NOT"]);
    assert!(!r.is_unreachable());
    assert_eq!(rx.await.unwrap(), "QUIT\r\n");
}

#[tokio::test]
async fn starttls_answered_454() {
    let addr = serve(|mut s| async move {
        until_starttls(&mut s).await;
        s.write_all(b"454 4.7.0 TLS not available\r\n")
            .await
            .unwrap();
        let _ = read_line(&mut s).await;
    })
    .await;
    let r = probe(addr, "mx.test", &config()).await;
    assert_error(&r, Stage::Starttls, ProbeErrorKind::Rejected);
    assert_eq!(r.stage_reached, Stage::Ehlo);
    assert!(r.error.unwrap().message.contains("454"));
}

#[tokio::test]
async fn greeting_421() {
    let addr = serve(|mut s| async move {
        s.write_all(b"421-mx.test busy\r\n421 try later\r\n")
            .await
            .unwrap();
        let _ = read_line(&mut s).await;
    })
    .await;
    let r = probe(addr, "mx.test", &config()).await;
    assert_error(&r, Stage::Banner, ProbeErrorKind::Rejected);
    assert_eq!(r.banner.as_deref(), Some("mx.test busy"));
    assert!(r.is_unreachable());
}

#[tokio::test]
async fn ehlo_rejected() {
    let addr = serve(|mut s| async move {
        greet(&mut s, b"550 go away\r\n").await;
        let _ = read_line(&mut s).await;
    })
    .await;
    let r = probe(addr, "mx.test", &config()).await;
    assert_error(&r, Stage::Ehlo, ProbeErrorKind::Rejected);
    assert_eq!(r.stage_reached, Stage::Banner);
    assert!(!r.is_unreachable());
}

/// Writes `line` until the client goes away.
async fn flood(mut s: TcpStream, prefix: &'static [u8], line: &'static [u8]) {
    let _ = s.write_all(prefix).await;
    let chunk = line.repeat(64);
    while s.write_all(&chunk).await.is_ok() {}
}

#[tokio::test]
async fn endless_multiline_ehlo_reply_too_many_lines() {
    let addr = serve(|mut s| async move {
        s.write_all(b"220 mx.test\r\n").await.unwrap();
        let _ = read_line(&mut s).await;
        flood(
            s,
            b"",
            b"250-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n",
        )
        .await;
    })
    .await;
    let start = Instant::now();
    let r = probe(addr, "mx.test", &config()).await;
    assert_error(&r, Stage::Ehlo, ProbeErrorKind::TooManyLines);
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn endless_multiline_reply_byte_budget() {
    let addr = serve(|s| {
        flood(
            s,
            b"",
            b"220-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n",
        )
    })
    .await;
    let cfg = ProbeConfig {
        max_reply_lines: 1_000_000,
        max_session_bytes: 64 * 1024,
        ..config()
    };
    let start = Instant::now();
    let r = probe(addr, "mx.test", &cfg).await;
    assert_error(&r, Stage::Banner, ProbeErrorKind::TooManyBytes);
    assert!(!r.is_unreachable());
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn one_mib_line() {
    let addr = serve(|mut s| async move {
        let mut big = b"220 ".to_vec();
        big.extend(std::iter::repeat_n(b'a', 1 << 20));
        big.extend_from_slice(b"\r\n");
        let _ = s.write_all(&big).await;
    })
    .await;
    let start = Instant::now();
    let r = probe(addr, "mx.test", &config()).await;
    assert_error(&r, Stage::Banner, ProbeErrorKind::ReplyTooLong);
    assert_eq!(r.banner, None);
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn garbage_banner_is_malformed() {
    let addr = serve(|mut s| async move {
        let _ = s.write_all(b"SSH-2.0-OpenSSH_9.6\r\n").await;
        let _ = read_line(&mut s).await;
    })
    .await;
    let r = probe(addr, "mx.test", &config()).await;
    assert_error(&r, Stage::Banner, ProbeErrorKind::Malformed);
    assert!(!r.is_unreachable());
}

/// After its 220 to STARTTLS the server sends an SMTP reply. Sent with the 220, the probe
/// must abort before its ClientHello (the bytes are never fed to TLS); sent a moment later,
/// it must tell this from a broken TLS stack. Either way nothing but TLS follows STARTTLS.
async fn pipelined(same_write: bool) {
    let (tx, rx) = oneshot::channel();
    let addr = serve(move |mut s| async move {
        until_starttls(&mut s).await;
        if same_write {
            s.write_all(b"220 Ready\r\n250 injected\r\n").await.unwrap();
        } else {
            s.write_all(b"220 Ready\r\n").await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
            s.write_all(b"250 injected\r\n").await.unwrap();
        }
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut rest)).await;
        let _ = tx.send(rest);
    })
    .await;
    let r = probe(addr, "mx.test", &config()).await;
    let stage = if same_write {
        Stage::Starttls
    } else {
        Stage::TlsHandshake
    };
    assert_error(&r, stage, ProbeErrorKind::PipelinedData);
    assert_eq!(r.tls_version, None);
    assert!(r.chain.is_empty());
    let after = rx.await.unwrap();
    if same_write {
        assert!(after.is_empty(), "client sent {after:?} after STARTTLS");
    } else {
        // The ClientHello (a TLS handshake record), perhaps an alert; no SMTP.
        assert_eq!(
            after.first(),
            Some(&0x16),
            "client sent {after:?} after STARTTLS"
        );
        assert!(!after.windows(4).any(|w| w == b"QUIT"), "{after:?}");
    }
}

#[tokio::test]
async fn pipelined_after_starttls_220_same_segment() {
    pipelined(true).await;
}

#[tokio::test]
async fn pipelined_after_starttls_220_separate_write() {
    pipelined(false).await;
}

/// A server that sends TLS-looking bytes before it has seen the ClientHello cannot pass
/// them off as a handshake: the probe fails in TLS and records no certificate.
#[tokio::test]
async fn early_tls_bytes_do_not_make_a_handshake() {
    let addr = serve(move |mut s| async move {
        until_starttls(&mut s).await;
        s.write_all(b"220 Ready\r\n").await.unwrap();
        s.write_all(b"\x16\x03\x03\x00\x04\x02\x00\x00\x00")
            .await
            .unwrap();
        let mut rest = [0u8; 512];
        let _ = tokio::time::timeout(Duration::from_secs(1), s.read(&mut rest)).await;
    })
    .await;
    let r = probe(addr, "mx.test", &config()).await;
    assert_error(&r, Stage::TlsHandshake, ProbeErrorKind::Tls);
    assert_eq!(r.tls_version, None);
    assert!(r.chain.is_empty());
}

#[tokio::test]
async fn unsolicited_reply_before_starttls() {
    let addr = serve(|mut s| async move {
        greet(
            &mut s,
            b"250-mx.test\r\n250 STARTTLS\r\n220 fake go ahead\r\n",
        )
        .await;
        let _ = read_line(&mut s).await;
    })
    .await;
    let r = probe(addr, "mx.test", &config()).await;
    assert_error(&r, Stage::Starttls, ProbeErrorKind::PipelinedData);
    assert_eq!(r.stage_reached, Stage::Ehlo);
}

#[tokio::test]
async fn garbage_instead_of_server_hello() {
    let addr = serve(|mut s| async move {
        until_starttls(&mut s).await;
        s.write_all(b"220 Ready\r\n").await.unwrap();
        let mut buf = [0u8; 1];
        let _ = s.read(&mut buf).await; // wait for the ClientHello
        assert_eq!(buf[0], 0x16);
        let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    })
    .await;
    let r = probe(addr, "mx.test", &config()).await;
    assert_error(&r, Stage::TlsHandshake, ProbeErrorKind::Tls);
    assert_eq!(r.stage_reached, Stage::Starttls);
}

#[tokio::test]
async fn close_mid_handshake() {
    let addr = serve(|mut s| async move {
        until_starttls(&mut s).await;
        s.write_all(b"220 Ready\r\n").await.unwrap();
        let mut buf = [0u8; 5];
        let _ = s.read_exact(&mut buf).await;
        drop(s);
    })
    .await;
    let r = probe(addr, "mx.test", &config()).await;
    assert_error(&r, Stage::TlsHandshake, ProbeErrorKind::Tls);
    assert!(!r.is_unreachable());
}

#[tokio::test]
async fn server_without_the_leaf_key_fails_handshake() {
    let pki = pki();
    let acceptor = wrong_key_acceptor(&pki);
    let addr = serve(move |mut s| async move {
        until_starttls(&mut s).await;
        s.write_all(b"220 Ready\r\n").await.unwrap();
        let _ = acceptor.accept(s).await;
    })
    .await;
    let r = probe(addr, "mx.test", &config()).await;
    assert_error(&r, Stage::TlsHandshake, ProbeErrorKind::Tls);
    assert_eq!(r.tls_version, None);
    // The chain as presented is still recorded for analysis.
    assert_eq!(r.chain, vec![pki.leaf.to_vec(), pki.ca.to_vec()]);
}

#[tokio::test]
async fn connection_refused_is_unreachable() {
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let r = probe(addr, "mx.test", &config()).await;
    assert_error(&r, Stage::Connect, ProbeErrorKind::Refused);
    assert_eq!(r.stage_reached, Stage::Connect);
    assert!(r.is_unreachable());
}

#[tokio::test]
async fn closed_before_banner_is_unreachable() {
    let addr = serve(|s| async move { drop(s) }).await;
    let r = probe(addr, "mx.test", &config()).await;
    assert_error(&r, Stage::Banner, ProbeErrorKind::Io);
    assert!(r.is_unreachable());
}

#[tokio::test]
async fn banner_never_comes() {
    let addr = serve(|s| async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        drop(s);
    })
    .await;
    let cfg = ProbeConfig {
        stage_timeout: Duration::from_millis(300),
        ..config()
    };
    let start = Instant::now();
    let r = probe(addr, "mx.test", &cfg).await;
    assert_error(&r, Stage::Banner, ProbeErrorKind::Timeout);
    assert!(r.is_unreachable());
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn slow_drip_hits_session_timeout() {
    // Each byte arrives well within the stage timeout, but the session
    // timeout still bounds the whole probe.
    let addr = serve(|mut s| async move {
        let _ = s.write_all(b"220-").await;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if s.write_all(b"a").await.is_err() {
                break;
            }
        }
    })
    .await;
    let cfg = ProbeConfig {
        session_timeout: Duration::from_millis(300),
        ..config()
    };
    let start = Instant::now();
    let r = probe(addr, "mx.test", &cfg).await;
    assert_error(&r, Stage::Banner, ProbeErrorKind::Timeout);
    assert!(r.error.as_ref().unwrap().message.contains("session"));
    assert!(start.elapsed() < Duration::from_secs(2));
}
