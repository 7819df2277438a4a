//! Zone transfer (AXFR, RFC 5936) over TCP into a local master file, optionally signed with
//! TSIG (HMAC-SHA256, RFC 8945).
//!
//! Some ccTLD registries publish their zones by AXFR (.se and .nu by IIS, .ch and .li by
//! SWITCH). The transfer is written record by record to a temporary file beside the target and
//! renamed into place only when the closing SOA arrived (and, with TSIG, every signature
//! verified), so a reader never sees half a zone. Messages are parsed by hickory-proto; TSIG
//! is done here with `ring` because hickory's TSIG support sits behind its heavier DNSSEC
//! features.

use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

/// Seconds of clock skew a TSIG signature may have (RFC 8945 recommends 300).
const FUDGE: u16 = 300;
/// Longest silence from the server before the transfer is abandoned.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// RFC 8945 §5.3.1: at most 99 unsigned messages between signed ones.
const MAX_UNSIGNED_RUN: usize = 99;
/// Most bytes accepted in one transfer. The largest ccTLD zones offered by AXFR are a few
/// hundred MB of wire data; a server that never sends the closing SOA must not fill the disk.
const MAX_TRANSFER_BYTES: u64 = 16 << 30;
/// Longest a whole transfer may take (each read also has [`IO_TIMEOUT`]).
const MAX_TRANSFER_TIME: Duration = Duration::from_secs(6 * 3600);

/// A TSIG key: its name and HMAC-SHA256 secret.
#[derive(Clone)]
pub struct TsigKey {
    /// The key name, as configured on the server (`xfr-key.`).
    pub name: Name,
    /// The shared secret.
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TsigKey({})", self.name)
    }
}

impl TsigKey {
    /// Reads a key file in the BIND/nsd form `tsig-keygen` writes:
    /// `key "name" { algorithm hmac-sha256; secret "base64"; };`.
    pub fn load(path: &Path) -> Result<TsigKey> {
        let text = fs::read_to_string(path)
            .with_context(|| format!("cannot read TSIG key {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("in TSIG key {}", path.display()))
    }

    /// Parses the text of a key file.
    pub fn parse(text: &str) -> Result<TsigKey> {
        let field = |kw: &str| -> Option<String> {
            let i = text.find(kw)? + kw.len();
            let rest = text[i..].trim_start();
            let end = rest.find([';', '{'])?;
            Some(rest[..end].trim().trim_matches('"').to_string())
        };
        let name = field("key").ok_or_else(|| anyhow!("no `key \"name\"`"))?;
        let alg = field("algorithm").ok_or_else(|| anyhow!("no `algorithm`"))?;
        if !alg.eq_ignore_ascii_case("hmac-sha256") {
            bail!("algorithm {alg} not supported (only hmac-sha256)");
        }
        let secret = field("secret").ok_or_else(|| anyhow!("no `secret`"))?;
        let secret = data_encoding::BASE64
            .decode(secret.as_bytes())
            .map_err(|e| anyhow!("bad secret: {e}"))?;
        let name = Name::from_ascii(&name)
            .map_err(|e| anyhow!("bad key name {name:?}: {e}"))?
            .to_lowercase();
        let mut name = name;
        name.set_fqdn(true);
        Ok(TsigKey { name, secret })
    }
}

/// What a finished transfer delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AxfrSummary {
    /// Records written (both SOAs included).
    pub records: u64,
    /// DNS messages received.
    pub messages: u64,
    /// Whether every signed message's TSIG verified (false when no key was used).
    pub tsig_verified: bool,
}

/// Transfers `zone` from `server` and atomically writes it as a master file to `dest`.
pub fn fetch(server: &str, zone: &str, key: Option<&TsigKey>, dest: &Path) -> Result<AxfrSummary> {
    let addr = resolve_server(server)?;
    let mut zone_name = Name::from_ascii(zone).map_err(|e| anyhow!("bad zone {zone:?}: {e}"))?;
    zone_name.set_fqdn(true);
    let dir = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = temp_path(dest);
    let result = (|| {
        let file =
            File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        let mut out = BufWriter::new(file);
        let summary = transfer(addr, &zone_name, key, &mut out)?;
        let file = out.into_inner().map_err(|e| anyhow!("writing: {e}"))?;
        file.sync_all()?;
        fs::rename(&tmp, dest)
            .with_context(|| format!("cannot rename {} to {}", tmp.display(), dest.display()))?;
        Ok(summary)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn temp_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}", std::process::id()));
    dest.with_file_name(name)
}

fn resolve_server(server: &str) -> Result<SocketAddr> {
    if let Ok(a) = server.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Ok(ip) = server.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    let with_port = if server.contains(':') {
        server.to_string()
    } else {
        format!("{server}:53")
    };
    with_port
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve server {server}"))?
        .next()
        .ok_or_else(|| anyhow!("server {server} has no address"))
}

/// Runs the transfer over one TCP connection, writing records in presentation form.
fn transfer(
    addr: SocketAddr,
    zone: &Name,
    key: Option<&TsigKey>,
    out: &mut dyn Write,
) -> Result<AxfrSummary> {
    let id: u16 = rand::random();
    let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
    msg.add_query(Query::query(zone.clone(), RecordType::AXFR));
    let mut request = msg.to_vec().map_err(|e| anyhow!("encoding query: {e}"))?;
    let mut tsig = key.map(|k| TsigState::new(k.clone()));
    if let Some(t) = &mut tsig {
        t.sign_request(&mut request, id);
    }
    let mut tcp = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
        .with_context(|| format!("cannot connect to {addr}"))?;
    tcp.set_read_timeout(Some(IO_TIMEOUT))?;
    tcp.set_write_timeout(Some(IO_TIMEOUT))?;
    let len = u16::try_from(request.len()).expect("a query is small");
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(&request);
    tcp.write_all(&framed)?;

    writeln!(out, "; AXFR of {zone} from {addr}")?;
    let (mut records, mut messages, mut soa_seen) = (0u64, 0u64, 0u32);
    let (started, mut received) = (std::time::Instant::now(), 0u64);
    loop {
        if received > MAX_TRANSFER_BYTES || started.elapsed() > MAX_TRANSFER_TIME {
            bail!(
                "{addr}: transfer of {zone} exceeded {} bytes or {:?} without its closing SOA",
                MAX_TRANSFER_BYTES,
                MAX_TRANSFER_TIME
            );
        }
        let mut lenbuf = [0u8; 2];
        tcp.read_exact(&mut lenbuf)
            .with_context(|| format!("{addr}: connection ended before the closing SOA"))?;
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(lenbuf))];
        tcp.read_exact(&mut buf)
            .with_context(|| format!("{addr}: truncated message"))?;
        messages += 1;
        received += buf.len() as u64 + 2;
        let resp = Message::from_vec(&buf).map_err(|e| anyhow!("{addr}: bad message: {e}"))?;
        if resp.metadata.id != id || resp.metadata.message_type != MessageType::Response {
            bail!("{addr}: answer does not match the query (id or QR bit)");
        }
        if resp.metadata.response_code != ResponseCode::NoError {
            let hint = match (resp.metadata.response_code, key.is_some()) {
                (ResponseCode::NotAuth, true) => " (TSIG key rejected, or the zone is not served)",
                (ResponseCode::NotAuth | ResponseCode::Refused, false) => {
                    " (transfers not allowed to us, or the zone is not served)"
                }
                _ => "",
            };
            bail!(
                "{addr}: transfer of {zone} refused: {}{hint}",
                resp.metadata.response_code
            );
        }
        if let Some(t) = &mut tsig {
            t.verify_response(&buf)
                .with_context(|| format!("{addr}: TSIG"))?;
        }
        for r in &resp.answers {
            if r.record_type() == RecordType::SOA {
                if records == 0 && r.name != *zone {
                    bail!("{addr}: first SOA is for {}, not {zone}", r.name);
                }
                soa_seen += 1;
            } else if records == 0 {
                bail!("{addr}: the transfer does not start with the SOA");
            }
            write_record(out, r)?;
            records += 1;
        }
        if resp.answers.is_empty() {
            bail!("{addr}: empty transfer message");
        }
        if soa_seen >= 2 {
            break;
        }
    }
    if let Some(t) = &tsig {
        if t.unsigned_run > 0 {
            bail!("{addr}: TSIG: the last message is not signed");
        }
    }
    out.flush()?;
    Ok(AxfrSummary {
        records,
        messages,
        tsig_verified: tsig.is_some(),
    })
}

/// Writes a record in presentation form; types hickory only knows as opaque data (the DNSSEC
/// types, without its DNSSEC features) in the RFC 3597 generic form `TYPEnnn \# LEN HEX`, so
/// the file stays a valid master file for any tool.
fn write_record(out: &mut dyn Write, r: &hickory_proto::rr::Record) -> std::io::Result<()> {
    use hickory_proto::rr::RData;
    match &r.data {
        RData::Unknown { code, rdata } => writeln!(
            out,
            "{} {} {} TYPE{} \\# {} {}",
            r.name,
            r.ttl,
            r.dns_class,
            u16::from(*code),
            rdata.anything.len(),
            hex::encode(&rdata.anything)
        ),
        _ => writeln!(out, "{r}"),
    }
}

/// TSIG state across the messages of one transfer (RFC 8945 §5.3.1).
struct TsigState {
    key: TsigKey,
    prev_mac: Vec<u8>,
    unsigned: Vec<u8>,
    unsigned_run: usize,
    signed_any: bool,
}

fn name_wire(name: &Name) -> Vec<u8> {
    let mut w = Vec::new();
    for label in name.to_lowercase().iter() {
        w.push(label.len() as u8);
        w.extend_from_slice(label);
    }
    w.push(0);
    w
}

fn alg_wire() -> Vec<u8> {
    name_wire(&Name::from_ascii("hmac-sha256.").expect("valid name"))
}

fn now_u48() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        & 0xffff_ffff_ffff
}

impl TsigState {
    fn new(key: TsigKey) -> Self {
        TsigState {
            key,
            prev_mac: Vec::new(),
            unsigned: Vec::new(),
            unsigned_run: 0,
            signed_any: false,
        }
    }

    fn hmac(&self, data: &[u8]) -> Vec<u8> {
        let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.key.secret);
        ring::hmac::sign(&k, data).as_ref().to_vec()
    }

    /// Appends a TSIG RR to `request` and increments ARCOUNT.
    fn sign_request(&mut self, request: &mut Vec<u8>, id: u16) {
        let time = now_u48();
        let mut data = request.clone();
        data.extend_from_slice(&name_wire(&self.key.name));
        data.extend_from_slice(&255u16.to_be_bytes()); // class ANY
        data.extend_from_slice(&0u32.to_be_bytes()); // TTL
        data.extend_from_slice(&alg_wire());
        data.extend_from_slice(&time.to_be_bytes()[2..]);
        data.extend_from_slice(&FUDGE.to_be_bytes());
        data.extend_from_slice(&0u16.to_be_bytes()); // error
        data.extend_from_slice(&0u16.to_be_bytes()); // other len
        let mac = self.hmac(&data);
        let mut rdata = alg_wire();
        rdata.extend_from_slice(&time.to_be_bytes()[2..]);
        rdata.extend_from_slice(&FUDGE.to_be_bytes());
        rdata.extend_from_slice(&(mac.len() as u16).to_be_bytes());
        rdata.extend_from_slice(&mac);
        rdata.extend_from_slice(&id.to_be_bytes());
        rdata.extend_from_slice(&0u16.to_be_bytes());
        rdata.extend_from_slice(&0u16.to_be_bytes());
        request.extend_from_slice(&name_wire(&self.key.name));
        request.extend_from_slice(&250u16.to_be_bytes()); // TSIG
        request.extend_from_slice(&255u16.to_be_bytes());
        request.extend_from_slice(&0u32.to_be_bytes());
        request.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        request.extend_from_slice(&rdata);
        let ar = u16::from_be_bytes([request[10], request[11]]) + 1;
        request[10..12].copy_from_slice(&ar.to_be_bytes());
        self.prev_mac = mac;
    }

    /// Verifies one response message (raw bytes).
    fn verify_response(&mut self, msg: &[u8]) -> Result<()> {
        let last = last_rr_offset(msg);
        let has_tsig = last.is_some_and(|o| {
            skip_name(msg, o)
                .and_then(|j| msg.get(j..j + 2))
                .is_some_and(|t| t == [0, 250])
        }) && u16::from_be_bytes([msg[10], msg[11]]) > 0;
        if !has_tsig {
            if !self.signed_any {
                bail!("the first response is not signed");
            }
            self.unsigned_run += 1;
            if self.unsigned_run > MAX_UNSIGNED_RUN {
                bail!("more than {MAX_UNSIGNED_RUN} unsigned messages in a row");
            }
            self.unsigned.extend_from_slice(msg);
            return Ok(());
        }
        let start = last.ok_or_else(|| anyhow!("cannot locate the TSIG record"))?;
        let t = parse_tsig(&msg[start..]).ok_or_else(|| anyhow!("malformed TSIG record"))?;
        if t.key_name != name_wire(&self.key.name) {
            bail!("signed with another key");
        }
        if t.algorithm != alg_wire() {
            bail!("signed with another algorithm");
        }
        if t.error != 0 {
            bail!("server reports TSIG error {}", t.error);
        }
        // The message as it was before signing: without the TSIG RR, ARCOUNT one less, and the
        // original id.
        let mut stripped = msg[..start].to_vec();
        let ar = u16::from_be_bytes([stripped[10], stripped[11]]).saturating_sub(1);
        stripped[10..12].copy_from_slice(&ar.to_be_bytes());
        stripped[0..2].copy_from_slice(&t.original_id.to_be_bytes());
        let mut data = Vec::with_capacity(stripped.len() + self.unsigned.len() + 64);
        data.extend_from_slice(&(self.prev_mac.len() as u16).to_be_bytes());
        data.extend_from_slice(&self.prev_mac);
        data.extend_from_slice(&self.unsigned);
        data.extend_from_slice(&stripped);
        if !self.signed_any {
            data.extend_from_slice(&t.key_name);
            data.extend_from_slice(&255u16.to_be_bytes());
            data.extend_from_slice(&0u32.to_be_bytes());
            data.extend_from_slice(&t.algorithm);
            data.extend_from_slice(&t.time.to_be_bytes()[2..]);
            data.extend_from_slice(&t.fudge.to_be_bytes());
            data.extend_from_slice(&t.error.to_be_bytes());
            data.extend_from_slice(&(t.other.len() as u16).to_be_bytes());
            data.extend_from_slice(&t.other);
        } else {
            data.extend_from_slice(&t.time.to_be_bytes()[2..]);
            data.extend_from_slice(&t.fudge.to_be_bytes());
        }
        let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.key.secret);
        ring::hmac::verify(&k, &data, &t.mac).map_err(|_| anyhow!("bad signature (MAC)"))?;
        let now = now_u48();
        if now.abs_diff(t.time) > u64::from(t.fudge) {
            bail!(
                "signature time {} outside the fudge of {} s",
                t.time,
                t.fudge
            );
        }
        self.prev_mac = t.mac;
        self.unsigned.clear();
        self.unsigned_run = 0;
        self.signed_any = true;
        Ok(())
    }
}

struct TsigRr {
    key_name: Vec<u8>,
    algorithm: Vec<u8>,
    time: u64,
    fudge: u16,
    mac: Vec<u8>,
    original_id: u16,
    error: u16,
    other: Vec<u8>,
}

/// Skips a (possibly compressed) name at `i`, returning the offset after it.
fn skip_name(m: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let l = *m.get(i)?;
        match l {
            0 => return Some(i + 1),
            l if l & 0xc0 == 0xc0 => return Some(i + 2).filter(|&e| e <= m.len()),
            l if l & 0xc0 == 0 => i += 1 + usize::from(l),
            _ => return None,
        }
    }
}

/// The uncompressed owner name at `i` (TSIG owners are never compressed by nsd or BIND;
/// a compressed one is rejected), lower-cased, and the offset after it.
fn read_plain_name(m: &[u8], mut i: usize) -> Option<(Vec<u8>, usize)> {
    let mut out = Vec::new();
    loop {
        let l = usize::from(*m.get(i)?);
        if l & 0xc0 != 0 {
            return None;
        }
        out.push(l as u8);
        if l == 0 {
            return Some((out, i + 1));
        }
        out.extend(m.get(i + 1..i + 1 + l)?.iter().map(u8::to_ascii_lowercase));
        i += 1 + l;
    }
}

/// Offset of the last resource record of the message (the TSIG RR is always last).
fn last_rr_offset(m: &[u8]) -> Option<usize> {
    if m.len() < 12 {
        return None;
    }
    let count = |o: usize| usize::from(u16::from_be_bytes([m[o], m[o + 1]]));
    let (qd, rrs) = (count(4), count(6) + count(8) + count(10));
    if rrs == 0 {
        return None;
    }
    let mut i = 12;
    for _ in 0..qd {
        i = skip_name(m, i)? + 4;
    }
    let mut last = i;
    for _ in 0..rrs {
        last = i;
        let j = skip_name(m, i)?;
        let rdlen = usize::from(u16::from_be_bytes([*m.get(j + 8)?, *m.get(j + 9)?]));
        i = j + 10 + rdlen;
        if i > m.len() {
            return None;
        }
    }
    Some(last)
}

fn parse_tsig(rr: &[u8]) -> Option<TsigRr> {
    let (key_name, i) = read_plain_name(rr, 0)?;
    let u16_at = |o: usize| Some(u16::from_be_bytes([*rr.get(o)?, *rr.get(o + 1)?]));
    if u16_at(i)? != 250 {
        return None;
    }
    let rd = i + 10;
    let (algorithm, mut j) = read_plain_name(rr, rd)?;
    let t = rr.get(j..j + 6)?;
    let time = t.iter().fold(0u64, |a, &b| (a << 8) | u64::from(b));
    j += 6;
    let fudge = u16_at(j)?;
    let mac_len = usize::from(u16_at(j + 2)?);
    let mac = rr.get(j + 4..j + 4 + mac_len)?.to_vec();
    j += 4 + mac_len;
    let original_id = u16_at(j)?;
    let error = u16_at(j + 2)?;
    let other_len = usize::from(u16_at(j + 4)?);
    let other = rr.get(j + 6..j + 6 + other_len)?.to_vec();
    Some(TsigRr {
        key_name,
        algorithm,
        time,
        fudge,
        mac,
        original_id,
        error,
        other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file() {
        let k = TsigKey::parse(
            "key \"Lab-XFR\" {\n\talgorithm hmac-sha256;\n\tsecret \"c2VjcmV0c2VjcmV0\";\n};\n",
        )
        .unwrap();
        assert_eq!(k.name.to_ascii(), "lab-xfr.");
        assert_eq!(k.secret, b"secretsecret");
        assert!(TsigKey::parse("key \"x\" { algorithm hmac-md5; secret \"AA==\"; };").is_err());
    }

    #[test]
    fn signs_and_locates_tsig() {
        let key = TsigKey::parse("key x. { algorithm hmac-sha256; secret \"AAAA\"; };").unwrap();
        let mut msg = Message::new(7, MessageType::Query, OpCode::Query);
        msg.add_query(Query::query(
            Name::from_ascii("test.").unwrap(),
            RecordType::AXFR,
        ));
        let mut req = msg.to_vec().unwrap();
        let plain_len = req.len();
        let mut st = TsigState::new(key);
        st.sign_request(&mut req, 7);
        assert_eq!(last_rr_offset(&req), Some(plain_len));
        let t = parse_tsig(&req[plain_len..]).unwrap();
        assert_eq!(t.mac.len(), 32);
        assert_eq!(t.original_id, 7);
        // The request verifies as a first response would against an empty previous MAC.
        assert!(Message::from_vec(&req).is_ok());
    }
}
