//! Hostile SMTP servers for the lab: servers that were never written with a scanner in mind.
//!
//! Each behaviour listens on its own 127.25.1.x address with port 25, behind an MX host of the
//! signed zone `hostile.test` that publishes a usable TLSA record, so `check` meets it exactly
//! as the survey would meet such a server on the Internet. Every write is bounded in size and
//! every connection in time, so the lab itself cannot run away.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{sleep, timeout};

/// How one hostile server misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Sends its banner one byte per second.
    SlowBanner,
    /// Answers EHLO with an endless multi-line 250 reply.
    Endless250,
    /// Sends a 1 MiB banner line.
    LongLine,
    /// Greets with 421 and closes.
    Greet421,
    /// Offers STARTTLS, then answers it with 454.
    Starttls454,
    /// Accepts STARTTLS, then sends garbage instead of a ServerHello.
    GarbageHello,
    /// Accepts STARTTLS, reads the ClientHello, closes.
    CloseHandshake,
    /// Pipelines an extra reply right after `220 Ready to start TLS`.
    Pipelined,
}

/// Every hostile server: behaviour, MX host label under `hostile.test`, last octet.
pub const HOSTILE: &[(Behaviour, &str, u8)] = &[
    (Behaviour::SlowBanner, "slowbanner", 1),
    (Behaviour::Endless250, "endless250", 2),
    (Behaviour::LongLine, "longline", 3),
    (Behaviour::Greet421, "greet421", 4),
    (Behaviour::Starttls454, "starttls454", 5),
    (Behaviour::GarbageHello, "garbagehello", 6),
    (Behaviour::CloseHandshake, "closehandshake", 7),
    (Behaviour::Pipelined, "pipelined", 8),
];

/// The address of a hostile server.
pub fn address(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 25, 1, last)
}

/// Longest a connection is kept open, whatever the client does.
const CONNECTION_LIMIT: Duration = Duration::from_secs(60);
/// Most bytes an endless reply writes before giving up.
const ENDLESS_LIMIT: usize = 16 << 20;

/// Reads one command line from the client (bounded), or `None` if it closed.
async fn read_line(s: &mut TcpStream) -> Option<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.len() < 4096 {
        match s.read(&mut byte).await {
            Ok(1) => {
                line.push(byte[0]);
                if byte[0] == b'\n' {
                    return Some(String::from_utf8_lossy(&line).trim().to_string());
                }
            }
            _ => return None,
        }
    }
    None
}

/// Greets, answers EHLO offering STARTTLS, and waits for STARTTLS.
async fn until_starttls(s: &mut TcpStream, name: &str) -> Option<()> {
    s.write_all(format!("220 {name} ESMTP hostile\r\n").as_bytes())
        .await
        .ok()?;
    loop {
        let cmd = read_line(s).await?.to_ascii_uppercase();
        if cmd.starts_with("EHLO") {
            s.write_all(format!("250-{name}\r\n250-PIPELINING\r\n250 STARTTLS\r\n").as_bytes())
                .await
                .ok()?;
        } else if cmd.starts_with("STARTTLS") {
            return Some(());
        } else {
            s.write_all(b"503 5.5.1 bad sequence\r\n").await.ok()?;
        }
    }
}

/// Accepts STARTTLS (`220 Ready`) and reads the client's first TLS bytes (its ClientHello).
async fn accept_starttls(s: &mut TcpStream, name: &str, ready: &[u8]) -> Option<()> {
    until_starttls(s, name).await?;
    s.write_all(ready).await.ok()?;
    let mut hello = [0u8; 512];
    let _ = s.read(&mut hello).await.ok()?;
    Some(())
}

async fn handle(behaviour: Behaviour, mut s: TcpStream, name: String) -> Option<()> {
    match behaviour {
        Behaviour::SlowBanner => {
            for b in format!("220 {name} ESMTP a very slow greeting\r\n").bytes() {
                s.write_all(&[b]).await.ok()?;
                sleep(Duration::from_secs(1)).await;
            }
            read_line(&mut s).await?;
        }
        Behaviour::Endless250 => {
            s.write_all(format!("220 {name} ESMTP\r\n").as_bytes())
                .await
                .ok()?;
            read_line(&mut s).await?;
            let line = format!("250-{name} says hello again and again\r\n");
            let mut written = 0;
            while written < ENDLESS_LIMIT {
                s.write_all(line.as_bytes()).await.ok()?;
                written += line.len();
            }
        }
        Behaviour::LongLine => {
            let mut banner = b"220 ".to_vec();
            banner.resize(1 << 20, b'x');
            banner.extend_from_slice(b"\r\n");
            s.write_all(&banner).await.ok()?;
            read_line(&mut s).await?;
        }
        Behaviour::Greet421 => {
            s.write_all(b"421 4.3.2 service not available, closing\r\n")
                .await
                .ok()?;
        }
        Behaviour::Starttls454 => {
            until_starttls(&mut s, &name).await?;
            s.write_all(b"454 4.7.0 TLS not available due to local problem\r\n")
                .await
                .ok()?;
            read_line(&mut s).await?;
        }
        Behaviour::GarbageHello => {
            accept_starttls(&mut s, &name, b"220 2.0.0 Ready to start TLS\r\n").await?;
            s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\nthis is not TLS")
                .await
                .ok()?;
            let _ = s.read(&mut [0u8; 512]).await;
        }
        Behaviour::CloseHandshake => {
            accept_starttls(&mut s, &name, b"220 2.0.0 Ready to start TLS\r\n").await?;
        }
        Behaviour::Pipelined => {
            let ready = b"220 2.0.0 Ready to start TLS\r\n250 2.0.0 injected reply\r\n";
            accept_starttls(&mut s, &name, ready).await?;
        }
    }
    Some(())
}

/// Serves every hostile behaviour until the process is stopped.
pub async fn serve() -> std::io::Result<()> {
    let mut listeners = Vec::new();
    for &(behaviour, label, last) in HOSTILE {
        let l = TcpListener::bind(SocketAddr::from((address(last), 25))).await?;
        listeners.push((behaviour, format!("mx.{label}.hostile.test"), l));
    }
    let mut tasks = Vec::new();
    for (behaviour, name, l) in listeners {
        tasks.push(tokio::spawn(async move {
            loop {
                let Ok((s, _)) = l.accept().await else {
                    continue;
                };
                let name = name.clone();
                tokio::spawn(async move {
                    let _ = timeout(CONNECTION_LIMIT, handle(behaviour, s, name)).await;
                });
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    Ok(())
}
