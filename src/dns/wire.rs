//! Wire-level helpers for the transport: building queries and matching answers to them
//! without a full parse, so the receive loop stays cheap at hundreds of thousands of answers
//! per second and the full (hickory) parse happens on the querying task.

use std::ops::Range;

use hickory_proto::rr::{Name, RecordType};

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
