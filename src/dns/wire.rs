//! Wire-level helpers for the transport: building queries and matching answers to them
//! without a full parse, so the receive loop stays cheap at hundreds of thousands of answers
//! per second and the full (hickory) parse happens on the querying task.

use std::ops::Range;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};

use super::lookup::DnsFailure;

/// Largest UDP payload we advertise (the DNS Flag Day 2020 value, avoids IP fragmentation).
pub const EDNS_PAYLOAD: u16 = 1232;
/// Size of the DNS header.
const HEADER: usize = 12;

/// Builds a query: RD set, EDNS0 with DO and a 1232-byte payload.
pub fn build_query(id: u16, name: &Name, rtype: RecordType) -> Result<Vec<u8>, DnsFailure> {
    let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(name.clone(), rtype));
    let mut edns = Edns::new();
    edns.set_max_payload(EDNS_PAYLOAD);
    edns.set_dnssec_ok(true);
    msg.set_edns(edns);
    msg.to_vec()
        .map_err(|e| DnsFailure::Malformed(format!("cannot encode query for {name}: {e}")))
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
    a.len() == b.len()
        && a.len() >= 5
        && a[..a.len() - 4].eq_ignore_ascii_case(&b[..b.len() - 4])
        && a[a.len() - 4..] == b[b.len() - 4..]
}

#[cfg(test)]
mod tests {
    use super::*;

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
