//! Wire-level helpers for the transport: building queries and matching answers to them
//! without a full parse, so the receive loop stays cheap at hundreds of thousands of answers
//! per second and the full (hickory) parse happens on the querying task.

use std::ops::Range;

use hickory_proto::op::{Edns, Header, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, DecodeError};

use super::lookup::DnsFailure;

/// Largest UDP payload we advertise (the DNS Flag Day 2020 value, avoids IP fragmentation).
pub const EDNS_PAYLOAD: u16 = 1232;
/// Size of the DNS header.
const HEADER: usize = 12;

/// Builds a query: RD set, EDNS0 with DO and a 1232-byte payload.
pub fn build_query(id: u16, name: &Name, rtype: RecordType) -> Result<Vec<u8>, DnsFailure> {
    let mut buf = Vec::with_capacity(HEADER + name.len() + 2 + 4 + OPT_RR.len());
    write_query(&mut buf, id, name, rtype)?;
    Ok(buf)
}

/// The OPT pseudo-record every query carries: root owner, type OPT, class = UDP payload 1232,
/// extended RCODE 0, version 0, flags DO, no options.
const OPT_RR: [u8; 11] = [
    0,
    0,
    41,
    (EDNS_PAYLOAD >> 8) as u8,
    EDNS_PAYLOAD as u8,
    0,
    0,
    0x80,
    0,
    0,
    0,
];

/// Appends the query [`build_query`] builds to `buf` and returns the byte range of its
/// question within `buf`.
///
/// Written by hand rather than through a hickory `Message`: at hundreds of thousands of
/// queries per second the generic encoder (allocations, compression table) cost more than the
/// rest of the transport. The bytes are identical to hickory's (tested below).
pub fn write_query(
    buf: &mut Vec<u8>,
    id: u16,
    name: &Name,
    rtype: RecordType,
) -> Result<Range<usize>, DnsFailure> {
    let start = buf.len();
    // id, flags (RD), QDCOUNT 1, ANCOUNT 0, NSCOUNT 0, ARCOUNT 1 (the OPT record)
    let [i0, i1] = id.to_be_bytes();
    buf.extend_from_slice(&[i0, i1, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1]);
    let question = buf.len();
    for label in name.iter() {
        if label.is_empty() || label.len() > 63 || buf.len() - question + label.len() + 2 > 255 {
            buf.truncate(start);
            return Err(DnsFailure::Malformed(format!(
                "cannot encode query for {name}: bad label or name too long"
            )));
        }
        buf.push(label.len() as u8);
        buf.extend_from_slice(label);
    }
    buf.push(0);
    let [t0, t1] = u16::from(rtype).to_be_bytes();
    buf.extend_from_slice(&[t0, t1, 0, 1]);
    let end = buf.len();
    buf.extend_from_slice(&OPT_RR);
    Ok(question..end)
}

/// The message id, if the buffer holds at least a header.
pub fn message_id(msg: &[u8]) -> Option<u16> {
    (msg.len() >= HEADER).then(|| u16::from_be_bytes([msg[0], msg[1]]))
}

/// Whether the QR bit is set.
pub fn is_response(msg: &[u8]) -> bool {
    msg.len() >= HEADER && msg[2] & 0x80 != 0
}

/// Whether the TC bit is set.
pub fn is_truncated(msg: &[u8]) -> bool {
    msg.len() >= HEADER && msg[2] & 0x02 != 0
}

/// The byte range of the single question (name, type, class), or `None` if the message does
/// not hold exactly one well-formed, uncompressed question. (The first name of a message has
/// nothing before it to point to, so a compression pointer there is malformed.)
pub fn question_span(msg: &[u8]) -> Option<Range<usize>> {
    if msg.len() < HEADER || u16::from_be_bytes([msg[4], msg[5]]) != 1 {
        return None;
    }
    let mut i = HEADER;
    loop {
        let len = usize::from(*msg.get(i)?);
        if len == 0 {
            i += 1;
            break;
        }
        if len > 63 || i - HEADER > 255 {
            return None;
        }
        i += 1 + len;
    }
    let end = i + 4;
    (end <= msg.len()).then_some(HEADER..end)
}

/// Whether two question sections are the same question: names equal ignoring ASCII case
/// (resolvers may echo 0x20-randomised case), type and class equal byte for byte.
pub fn same_question(a: &[u8], b: &[u8]) -> bool {
    // Most servers echo the question byte for byte: one memcmp decides.
    a.len() == b.len()
        && a.len() >= 5
        && (a == b
            || (a[..a.len() - 4].eq_ignore_ascii_case(&b[..b.len() - 4])
                && a[a.len() - 4..] == b[b.len() - 4..]))
}

/// Record types that are DNSSEC proof material: the validating resolver has already judged
/// them (its verdict is the AD bit or a SERVFAIL), so the survey never reads them.
const PROOF_TYPES: [u16; 3] = [46 /* RRSIG */, 47 /* NSEC */, 50 /* NSEC3 */];
/// The OPT pseudo-record type.
const OPT_TYPE: u16 = 41;

/// Decodes an answer into the parts the survey reads: the header (RCODE, AD, …), the question,
/// the answer section without its DNSSEC proof material (RRSIG, NSEC, NSEC3), and the EDNS OPT
/// record (extended RCODE, Extended DNS Errors). The authority section and every other
/// additional record are walked — so a malformed one still fails the whole answer — but not
/// built.
///
/// Exists because with the DO bit set most of an answer is signatures and denial proofs: a
/// full hickory parse spent most of its time building RRSIG and NSEC records that no verdict
/// looks at, since the resolver's validation is what the AD bit reports. Every record that is
/// kept is decoded by hickory exactly as [`Message::from_vec`] would (tested below).
pub fn decode_answer(bytes: &[u8]) -> Result<Message, DecodeError> {
    let mut d = BinDecoder::new(bytes);
    let Header {
        mut metadata,
        counts,
    } = Header::read(&mut d)?;
    let mut msg = Message::new(metadata.id, MessageType::Response, OpCode::Query);
    msg.queries = Vec::with_capacity(usize::from(counts.queries.min(1)));
    for _ in 0..counts.queries {
        msg.queries.push(Query::read(&mut d)?);
    }
    let mut answers = Vec::with_capacity(usize::from(counts.answers.min(8)));
    for _ in 0..counts.answers {
        match peek_type(bytes, d.index())? {
            OPT_TYPE => return Err(DecodeError::RecordNotInAdditionalSection(RecordType::OPT)),
            t if PROOF_TYPES.contains(&t) => skip_record(bytes, &mut d)?,
            _ => {
                let record = Record::read(&mut d)?;
                // As hickory's own decoder: an empty RDATA is only valid in UPDATE messages.
                if matches!(record.data, RData::Update0(_)) {
                    return Err(DecodeError::InvalidEmptyRecord);
                }
                answers.push(record);
            }
        }
    }
    for _ in 0..counts.authorities {
        if peek_type(bytes, d.index())? == OPT_TYPE {
            return Err(DecodeError::RecordNotInAdditionalSection(RecordType::OPT));
        }
        skip_record(bytes, &mut d)?;
    }
    let mut edns = None;
    for _ in 0..counts.additionals {
        if peek_type(bytes, d.index())? == OPT_TYPE {
            let opt = Record::read(&mut d)?;
            if edns.is_some() {
                return Err(DecodeError::DuplicateEdns);
            }
            edns = Some(Edns::from(&opt));
        } else {
            skip_record(bytes, &mut d)?;
        }
    }
    if let Some(e) = &edns {
        metadata.merge_response_code(e.rcode_high());
    }
    msg.metadata = metadata;
    msg.answers = answers;
    msg.edns = edns;
    Ok(msg)
}

/// The end of the (possibly compressed) owner name starting at `at`.
fn name_end(bytes: &[u8], mut at: usize) -> Result<usize, DecodeError> {
    let start = at;
    loop {
        let len = *bytes.get(at).ok_or(DecodeError::InsufficientBytes)?;
        match len & 0xC0 {
            0x00 if len == 0 => return Ok(at + 1),
            0x00 => at += 1 + usize::from(len),
            // A pointer ends the name; where it points is not our concern when skipping.
            0xC0 => return Ok(at + 2),
            _ => return Err(DecodeError::UnrecognizedLabelCode(len)),
        }
        if at - start > 255 {
            return Err(DecodeError::DomainNameTooLong(at - start));
        }
    }
}

/// The type of the record starting at `at`.
fn peek_type(bytes: &[u8], at: usize) -> Result<u16, DecodeError> {
    let t = name_end(bytes, at)?;
    match bytes.get(t..t + 2) {
        Some(b) => Ok(u16::from_be_bytes([b[0], b[1]])),
        None => Err(DecodeError::InsufficientBytes),
    }
}

/// Moves the decoder past one record without building it, checking that it fits.
fn skip_record(bytes: &[u8], d: &mut BinDecoder<'_>) -> Result<(), DecodeError> {
    let at = d.index();
    let fixed = name_end(bytes, at)?;
    // type, class, TTL, then RDLENGTH
    let len = bytes
        .get(fixed + 8..fixed + 10)
        .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
        .ok_or(DecodeError::InsufficientBytes)?;
    d.read_slice(fixed - at + 10 + len)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What hickory encodes for the same query.
    fn hickory_query(id: u16, name: &Name, rtype: RecordType) -> Vec<u8> {
        use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
        let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
        msg.metadata.recursion_desired = true;
        msg.add_query(Query::query(name.clone(), rtype));
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_PAYLOAD);
        edns.set_dnssec_ok(true);
        msg.set_edns(edns);
        msg.to_vec().unwrap()
    }

    #[test]
    fn hand_encoding_matches_hickory() {
        for (n, t) in [
            (".", RecordType::NS),
            ("example.", RecordType::MX),
            ("_25._tcp.Mx1.Example.COM.", RecordType::TLSA),
            (
                "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z.",
                RecordType::AAAA,
            ),
            ("relative.example", RecordType::A),
        ] {
            let name = Name::from_ascii(n).unwrap();
            let ours = build_query(0xbeef, &name, t).unwrap();
            assert_eq!(ours, hickory_query(0xbeef, &name, t), "{n} {t}");
            let parsed = hickory_proto::op::Message::from_vec(&ours).unwrap();
            assert!(parsed.queries[0].name().eq_ignore_root(&name), "{n}");
            assert!(parsed.edns.as_ref().unwrap().flags().dnssec_ok);
        }
        let long = Name::from_ascii(format!("{}.", vec!["a".repeat(63); 3].join("."))).unwrap();
        let mut buf = vec![7u8];
        let span = write_query(&mut buf, 1, &long, RecordType::A).unwrap();
        assert_eq!(&buf[1..], &hickory_query(1, &long, RecordType::A)[..]);
        assert_eq!(
            question_span(&buf[1..]).unwrap(),
            span.start - 1..span.end - 1
        );
    }

    /// The lab unbound's answers kept in testdata (signed data, NSEC and NSEC3 denials,
    /// SERVFAIL with EDE, CNAME chains, an unsigned answer).
    fn unbound_answers() -> Vec<(String, Vec<u8>)> {
        let text = include_str!("testdata/unbound-answers.hex");
        let mut out = Vec::new();
        let mut label = String::new();
        for line in text.lines() {
            if let Some(l) = line.strip_prefix("# ") {
                label = l.to_string();
            } else if !line.is_empty() {
                out.push((label.clone(), hex::decode(line).unwrap()));
            }
        }
        assert!(out.len() >= 10);
        out
    }

    /// What `decode_answer` must return: hickory's full parse minus what it leaves out.
    fn expected(full: &Message) -> Message {
        let mut m = full.clone();
        m.answers
            .retain(|r| !PROOF_TYPES.contains(&u16::from(r.record_type())));
        m.authorities.clear();
        m.additionals.clear();
        m
    }

    #[test]
    fn lean_decode_agrees_with_hickory() {
        let mut proof_skipped = 0;
        for (label, bytes) in unbound_answers() {
            let full = Message::from_vec(&bytes).unwrap();
            let lean = decode_answer(&bytes).unwrap();
            assert_eq!(lean, expected(&full), "{label}");
            proof_skipped += full.answers.len() - lean.answers.len() + full.authorities.len();
        }
        assert!(proof_skipped > 10);
    }

    #[test]
    fn lean_decode_on_hostile_bytes() {
        // Random corruptions and cuts of real answers: never a panic, and whenever hickory
        // accepts the bytes, the lean decoder agrees with it on what it keeps.
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let (mut agreed, mut rejected) = (0, 0);
        for (label, bytes) in unbound_answers() {
            for _ in 0..3000 {
                let mut m = bytes.clone();
                match next() % 3 {
                    0 => m.truncate((next() as usize) % m.len()),
                    _ => {
                        for _ in 0..1 + next() % 3 {
                            let i = (next() as usize) % m.len();
                            m[i] = next() as u8;
                        }
                    }
                }
                let lean = decode_answer(&m);
                match Message::from_vec(&m) {
                    Ok(full) => {
                        assert_eq!(lean.as_ref().ok(), Some(&expected(&full)), "{label}");
                        agreed += 1;
                    }
                    Err(_) => rejected += usize::from(lean.is_err()),
                }
            }
        }
        assert!(agreed > 1000 && rejected > 1000, "{agreed} {rejected}");
    }

    #[test]
    fn lean_decode_rejects_misplaced_opt() {
        // An OPT record in the answer section, as hickory rejects it.
        let name = Name::from_ascii("x.test.").unwrap();
        let mut m = build_query(7, &name, RecordType::A).unwrap();
        m[2] |= 0x80;
        m[7] = 1; // ANCOUNT 1
        m[11] = 0; // ARCOUNT 0: the OPT now sits in the answer section
        assert!(Message::from_vec(&m).is_err());
        assert!(decode_answer(&m).is_err());
        m[11] = 1;
        m[7] = 0;
        assert!(decode_answer(&m).unwrap().edns.is_some());
        // Two OPT records.
        let opt = m[m.len() - 11..].to_vec();
        m.extend_from_slice(&opt);
        m[11] = 2;
        assert!(decode_answer(&m).is_err());
    }

    #[test]
    fn question_round_trip() {
        let name = Name::from_ascii("Mx.Example.").unwrap();
        let q = build_query(0x1234, &name, RecordType::TLSA).unwrap();
        assert_eq!(message_id(&q), Some(0x1234));
        assert!(!is_response(&q));
        let span = question_span(&q).unwrap();
        // 2+1+7+1 label bytes + root + type + class
        assert_eq!(span.len(), 1 + 2 + 1 + 7 + 1 + 4);
        let lower = build_query(
            1,
            &Name::from_ascii("mx.example.").unwrap(),
            RecordType::TLSA,
        )
        .unwrap();
        assert!(same_question(
            &q[span.clone()],
            &lower[question_span(&lower).unwrap()]
        ));
        let other =
            build_query(1, &Name::from_ascii("mx.example.").unwrap(), RecordType::A).unwrap();
        assert!(!same_question(
            &q[span],
            &other[question_span(&other).unwrap()]
        ));
    }

    #[test]
    fn type_bytes_are_not_case_folded() {
        // Type 0x0041 (HTTPS) must not equal type 0x0061 even though 'A' ~ 'a'.
        let a = [1u8, b'x', 0, 0x00, 0x41, 0, 1];
        let b = [1u8, b'X', 0, 0x00, 0x61, 0, 1];
        assert!(!same_question(&a, &b));
        let c = [1u8, b'X', 0, 0x00, 0x41, 0, 1];
        assert!(same_question(&a, &c));
    }

    #[test]
    fn hostile_questions() {
        assert_eq!(question_span(&[]), None);
        let mut m = vec![0u8; 12];
        m[5] = 1;
        assert_eq!(question_span(&m), None); // no name
        m.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1]); // compression pointer
        assert_eq!(question_span(&m), None);
        let mut two = vec![0u8; 12];
        two[5] = 2;
        two.extend_from_slice(&[0, 0, 1, 0, 1]);
        assert_eq!(question_span(&two), None);
        let mut long = vec![0u8; 12];
        long[5] = 1;
        for _ in 0..200 {
            long.extend_from_slice(&[3, b'a', b'b', b'c']);
        }
        long.extend_from_slice(&[0, 0, 1, 0, 1]);
        assert_eq!(question_span(&long), None); // name longer than 255
    }
}
