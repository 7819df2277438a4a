//! Deterministic sharding: which of N workers crawls a name.
//!
//! The assignment must be the same on every machine, in every run and in every version, so
//! that shards of one crawl can be run apart and merged, and a rerun of shard K touches the
//! same names. It is therefore a fixed function, **stable across versions**: 64-bit FNV-1a
//! over the bytes of the normalised name (lower case, A-labels, trailing dot, e.g.
//! `example.com.`), taken modulo N. Never std's `RandomState`, which is seeded per process.

use std::fmt;
use std::str::FromStr;

/// 64-bit FNV-1a (offset basis 0xcbf29ce484222325, prime 0x100000001b3). Part of the stable
/// sharding contract: do not change.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Shard K of N (1-based: `1/4` … `4/4`), as `--shard K/N` gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This shard, 1 ≤ k ≤ n.
    pub k: u64,
    /// Number of shards, ≥ 1.
    pub n: u64,
}

impl Shard {
    /// Whether a normalised name (`example.com.`) belongs to this shard.
    pub fn contains(&self, name: &str) -> bool {
        fnv1a64(name.as_bytes()) % self.n == self.k - 1
    }
}

impl FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("bad shard {s:?}: expected K/N with 1 <= K <= N, e.g. 2/8");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (k, n): (u64, u64) = (
            k.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if n == 0 || k == 0 || k > n {
            return Err(bad());
        }
        Ok(Shard { k, n })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_vectors() {
        // Pinned values: if these change, every published shard assignment changes.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
        assert_eq!(fnv1a64(b"example.com."), 0xad44_82bd_cc68_8638);
    }

    #[test]
    fn parse() {
        assert_eq!("2/8".parse::<Shard>().unwrap(), Shard { k: 2, n: 8 });
        for bad in ["0/8", "9/8", "1/0", "x/2", "3"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        let all: Vec<bool> = (1..=4)
            .map(|k| Shard { k, n: 4 }.contains("example.com."))
            .collect();
        assert_eq!(all.iter().filter(|&&b| b).count(), 1);
    }
}
