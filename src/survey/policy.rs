//! Address policy: which addresses a polite scanner never connects to.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why `ip` is a special-purpose address (RFC 6890 registries) that the survey does not probe,
/// or `None` for an ordinary global unicast address.
pub fn special_purpose(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => special_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return special_v4(v4).or(Some("IPv4-mapped"));
            }
            special_v6(v6)
        }
    }
}

fn special_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    Some(match o {
        [127, ..] => "loopback",
        [0, ..] => "this-network",
        [10, ..] | [192, 168, ..] => "private",
        [172, b, ..] if (16..=31).contains(&b) => "private",
        [100, b, ..] if (64..=127).contains(&b) => "shared (CGN)",
        [169, 254, ..] => "link-local",
        [192, 0, 0, _] => "IETF protocol assignment",
        [192, 0, 2, _] | [198, 51, 100, _] | [203, 0, 113, _] => "documentation",
        [198, b, ..] if b == 18 || b == 19 => "benchmarking",
        [a, ..] if a >= 224 => "multicast or reserved",
        _ => return None,
    })
}

fn special_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    Some(if ip.is_loopback() {
        "loopback"
    } else if ip.is_unspecified() {
        "unspecified"
    } else if s[0] & 0xfe00 == 0xfc00 {
        "unique local"
    } else if s[0] & 0xffc0 == 0xfe80 {
        "link-local"
    } else if s[0] & 0xff00 == 0xff00 {
        "multicast"
    } else if s[0] == 0x2001 && s[1] == 0x0db8 {
        "documentation"
    } else if s[0] == 0x0064 && s[1] == 0xff9b {
        "NAT64"
    } else {
        return None;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies() {
        let sp = |s: &str| special_purpose(s.parse().unwrap());
        assert_eq!(sp("127.25.0.1"), Some("loopback"));
        assert_eq!(sp("::1"), Some("loopback"));
        assert_eq!(sp("10.1.2.3"), Some("private"));
        assert_eq!(sp("172.20.0.1"), Some("private"));
        assert_eq!(sp("172.32.0.1"), None);
        assert_eq!(sp("192.0.2.7"), Some("documentation"));
        assert_eq!(sp("2001:db8::25"), Some("documentation"));
        assert_eq!(sp("fd00::1"), Some("unique local"));
        assert_eq!(sp("::ffff:10.0.0.1"), Some("private"));
        assert_eq!(sp("46.30.211.1"), None);
        assert_eq!(sp("2a02:2350::1"), None);
    }
}
