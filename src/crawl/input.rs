//! The input stage: names from the zone lists, each once, numbered, cut into parts.
//!
//! Every name gets a stable index (its position among the distinct names of the inputs, in
//! order), and part `k` holds the names with index in `[k·size, (k+1)·size)`. The same inputs
//! give the same numbering, which is what lets a crashed crawl skip exactly the parts it
//! already wrote.

use std::collections::{BTreeSet, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use hickory_proto::rr::Name;
use tokio::sync::mpsc;

use crate::zonelist::{BadLine, Coverage, Entry, NameReader};

use super::politeness::OptOut;
use super::progress::Tally;

/// What the input stage hands to the dispatcher.
#[derive(Debug)]
pub enum InputMsg {
    /// A name to crawl.
    Name {
        /// Its index among the distinct names.
        index: u64,
        /// The name.
        name: Name,
        /// Index of its source in the input list.
        source: usize,
    },
    /// Part `part` holds `count` names, all already sent (or none, if it was written before).
    Sealed {
        /// The part.
        part: u64,
        /// Its size.
        count: usize,
    },
    /// A malformed input line (reported, counted, skipped).
    Bad(BadLine),
    /// The inputs are exhausted.
    End {
        /// What each source contributed.
        coverage: Coverage,
        /// Distinct names in all.
        distinct: u64,
    },
    /// An input failed mid-stream (corrupt compression…): the crawl stops, incomplete.
    Failed(String),
}

/// Exact de-duplication across sources in 16 bytes a name: two independent 64-bit SipHash
/// digests (a collision of both would need ~2^64 names).
#[derive(Default)]
struct Seen(HashSet<u128>);

impl Seen {
    fn insert(&mut self, name: &str) -> bool {
        let mut a = std::collections::hash_map::DefaultHasher::new();
        name.hash(&mut a);
        let mut b = std::collections::hash_map::DefaultHasher::new();
        0x9e37_79b9_7f4a_7c15u64.hash(&mut b);
        name.hash(&mut b);
        self.0
            .insert(u128::from(a.finish()) << 64 | u128::from(b.finish()))
    }
}

/// Reads every source on a thread of its own and sends numbered names down `tx`. Names of
/// `done` parts are numbered but not sent; names on the opt-out list are neither.
pub fn spawn(
    readers: Vec<NameReader>,
    part_size: u64,
    done: BTreeSet<u64>,
    optout: Arc<OptOut>,
    tally: Arc<Tally>,
    tx: mpsc::Sender<InputMsg>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut seen = Seen::default();
        let mut coverage = Coverage::default();
        let mut index = 0u64;
        let send = |m: InputMsg| tx.blocking_send(m).is_ok();
        for (source, mut reader) in readers.into_iter().enumerate() {
            for entry in reader.by_ref() {
                let name = match entry {
                    Ok(Entry::Name(n)) => n,
                    Ok(Entry::Bad(b)) => {
                        if !send(InputMsg::Bad(b)) {
                            return;
                        }
                        continue;
                    }
                    Err(e) => {
                        send(InputMsg::Failed(e.to_string()));
                        return;
                    }
                };
                if optout.covers_name(&name) {
                    tally.opted_out.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                if !seen.insert(&name) {
                    continue;
                }
                let Ok(parsed) = Name::from_ascii(&name) else {
                    // NameReader hands out normalised names only; a failure here is our bug,
                    // but losing one name silently is worse than stopping.
                    send(InputMsg::Failed(format!(
                        "internal: unparsable name {name:?}"
                    )));
                    return;
                };
                let part = index / part_size;
                tally.names.fetch_add(1, Ordering::Relaxed);
                if done.contains(&part) {
                    tally.resumed.fetch_add(1, Ordering::Relaxed);
                } else if !send(InputMsg::Name {
                    index,
                    name: parsed,
                    source,
                }) {
                    return;
                }
                index += 1;
                if index % part_size == 0
                    && !done.contains(&part)
                    && !send(InputMsg::Sealed {
                        part,
                        count: part_size as usize,
                    })
                {
                    return;
                }
            }
            coverage.add(reader.into_coverage());
        }
        let last = index / part_size;
        if index % part_size != 0 && !done.contains(&last) {
            let count = (index - last * part_size) as usize;
            if !send(InputMsg::Sealed { part: last, count }) {
                return;
            }
        }
        send(InputMsg::End {
            coverage,
            distinct: index,
        });
    })
}

/// Counts the names of the inputs on a thread of its own, for the progress bar's length
/// (an estimate: names repeated across sources are counted twice).
pub fn spawn_estimate(
    files: Vec<String>,
    open: impl Fn(&str) -> Option<NameReader> + Send + 'static,
    tally: Arc<Tally>,
) {
    if files.iter().any(|f| f == "-") {
        return;
    }
    std::thread::spawn(move || {
        let mut n = 0u64;
        for f in &files {
            let Some(r) = open(f) else { return };
            n += r.filter(|e| matches!(e, Ok(Entry::Name(_)))).count() as u64;
        }
        tally.estimate.store(n, Ordering::Relaxed);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_is_exact_for_distinct_names() {
        let mut s = Seen::default();
        for i in 0..100_000 {
            assert!(s.insert(&format!("d{i}.example.")));
        }
        assert!(!s.insert("d5.example."));
    }
}
