//! The input stage: names from the zone lists, each once, numbered, cut into parts.
//!
//! Two passes, so memory stays flat however many names the inputs hold:
//! 1. **Spill**: every source is read in order and each name is appended to one of
//!    [`SPILL_BUCKETS`] files on disk, chosen by a hash of the name. Only the write buffers
//!    are in memory.
//! 2. **Number**: the buckets are read back one after the other; a name already seen *in its
//!    bucket* is a repeat across (or within) sources and is dropped — the same name always
//!    lands in the same bucket, so a set per bucket is exact. Memory is one bucket's set
//!    (16 bytes a distinct name, about 1/256 of the input).
//!
//! Every name gets a stable index (its position in that order), and part `k` holds the names
//! with index in `[k·size, (k+1)·size)`. The same inputs give the same numbering, which is what
//! lets a crashed crawl skip exactly the parts it already wrote; the spill is simply redone
//! on resume (it costs one read of the inputs). The hash order also spreads each provider's
//! customers over the whole run instead of crawling a registry's sorted neighbours together.
//!
//! Disk: about the size of the names plus 3 bytes each (a .com-sized input of 160 million
//! names spills ~4 GB), freed bucket by bucket as the crawl goes.

use std::collections::{BTreeSet, HashSet};
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{BufReader, BufWriter, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use hickory_proto::rr::Name;
use tokio::sync::mpsc;

use crate::names::name_from_canonical;
use crate::zonelist::{BadLine, Coverage, Entry, NameReader};

use super::politeness::OptOut;
use super::progress::Tally;

/// Files the names are spread over between the two passes (each holds about 1/256 of them,
/// and the second pass keeps one bucket's set in memory at a time).
pub const SPILL_BUCKETS: usize = 256;
/// Write buffer per bucket during the spill.
const SPILL_BUFFER: usize = 32 << 10;

/// Names per [`InputMsg::Names`]: one channel hand-over (and at most one wake-up of the
/// dispatcher) per batch instead of per name.
pub const NAME_BATCH: usize = 256;

/// A name to crawl, numbered.
#[derive(Debug)]
pub struct Numbered {
    /// Its index among the distinct names.
    pub index: u64,
    /// The name.
    pub name: Name,
    /// Index of its source in the input list.
    pub source: usize,
}

/// What the input stage hands to the dispatcher, in this order: names (in batches) and the
/// sizes of the parts they fill, then the end or a failure.
#[derive(Debug)]
pub enum InputMsg {
    /// Names to crawl, in index order, at most [`NAME_BATCH`].
    Names(Vec<Numbered>),
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

/// Exact de-duplication within a bucket in 16 bytes a name: two independent 64-bit SipHash
/// digests (a collision of both would need ~2^64 names).
#[derive(Default)]
struct Seen(HashSet<u128>);

/// The 128-bit digest of a name; its low bits pick the spill bucket.
fn digest(name: &[u8]) -> u128 {
    let mut a = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut a);
    let mut b = std::collections::hash_map::DefaultHasher::new();
    0x9e37_79b9_7f4a_7c15u64.hash(&mut b);
    name.hash(&mut b);
    u128::from(a.finish()) << 64 | u128::from(b.finish())
}

impl Seen {
    fn insert(&mut self, name: &[u8]) -> bool {
        self.0.insert(digest(name))
    }
}

fn bucket_path(spill: &Path, bucket: usize) -> PathBuf {
    spill.join(format!("bucket-{bucket:03}"))
}

/// Pass 1: every source's names, in order, into the bucket files (the count goes to
/// `tally.estimate`). Returns the coverage, or `None` when the dispatcher has gone away.
fn spill_names(
    readers: Vec<NameReader>,
    spill: &Path,
    optout: &OptOut,
    tally: &Tally,
    send: &dyn Fn(InputMsg) -> bool,
) -> Result<Option<Coverage>, String> {
    let io = |what: &str, e: std::io::Error| format!("spill {what} in {}: {e}", spill.display());
    if spill.exists() {
        std::fs::remove_dir_all(spill).map_err(|e| io("cleanup", e))?;
    }
    std::fs::create_dir_all(spill).map_err(|e| io("directory", e))?;
    let mut buckets = (0..SPILL_BUCKETS)
        .map(|b| {
            File::create(bucket_path(spill, b)).map(|f| BufWriter::with_capacity(SPILL_BUFFER, f))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| io("file", e))?;
    let mut coverage = Coverage::default();
    let mut spilled = 0u64;
    for (source, mut reader) in readers.into_iter().enumerate() {
        let source = u16::try_from(source).map_err(|_| "more than 65535 inputs".to_string())?;
        for entry in reader.by_ref() {
            let name = match entry {
                Ok(Entry::Name(n)) => n,
                Ok(Entry::Bad(b)) => {
                    if !send(InputMsg::Bad(b)) {
                        return Ok(None);
                    }
                    continue;
                }
                Err(e) => return Err(e.to_string()),
            };
            if optout.covers_name(&name) {
                tally.opted_out.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let Ok(len) = u8::try_from(name.len()) else {
                return Err(format!("internal: name longer than 255 bytes: {name:?}"));
            };
            let w = &mut buckets[digest(name.as_bytes()) as usize % SPILL_BUCKETS];
            let [s0, s1] = source.to_le_bytes();
            w.write_all(&[s0, s1, len])
                .and_then(|()| w.write_all(name.as_bytes()))
                .map_err(|e| io("write", e))?;
            spilled += 1;
            if spilled % 4096 == 0 {
                tally.estimate.store(spilled, Ordering::Relaxed);
            }
        }
        coverage.add(reader.into_coverage());
    }
    for w in buckets {
        w.into_inner().map_err(|e| io("write", e.into_error()))?;
    }
    tally.estimate.store(spilled, Ordering::Relaxed);
    Ok(Some(coverage))
}

/// One spilled entry: the source's index and the name, or `None` at the end of the file.
fn read_entry(r: &mut impl Read, buf: &mut Vec<u8>) -> std::io::Result<Option<usize>> {
    let mut head = [0u8; 3];
    match r.read_exact(&mut head) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    buf.resize(usize::from(head[2]), 0);
    r.read_exact(buf)?;
    Ok(Some(usize::from(u16::from_le_bytes([head[0], head[1]]))))
}

/// Reads every source on a thread of its own (spilling them to `spill`, see the module
/// documentation) and sends the numbered names down `tx`. Names of `done` parts are numbered
/// but not sent; names on the opt-out list are neither. The spill directory is removed at the
/// end.
pub fn spawn(
    readers: Vec<NameReader>,
    spill: PathBuf,
    part_size: u64,
    done: BTreeSet<u64>,
    optout: Arc<OptOut>,
    tally: Arc<Tally>,
    tx: mpsc::Sender<InputMsg>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let send = |m: InputMsg| tx.blocking_send(m).is_ok();
        let coverage = match spill_names(readers, &spill, &optout, &tally, &send) {
            Ok(Some(c)) => c,
            Ok(None) => return,
            Err(e) => {
                send(InputMsg::Failed(e));
                return;
            }
        };
        let mut index = 0u64;
        let mut name = Vec::with_capacity(256);
        let mut batch = Vec::with_capacity(NAME_BATCH);
        let flush = |batch: &mut Vec<Numbered>| {
            batch.is_empty()
                || send(InputMsg::Names(std::mem::replace(
                    batch,
                    Vec::with_capacity(NAME_BATCH),
                )))
        };
        for bucket in 0..SPILL_BUCKETS {
            let path = bucket_path(&spill, bucket);
            let mut r = match File::open(&path) {
                Ok(f) => BufReader::with_capacity(SPILL_BUFFER, f),
                Err(e) => {
                    send(InputMsg::Failed(format!("spill {}: {e}", path.display())));
                    return;
                }
            };
            let mut seen = Seen::default();
            loop {
                let source = match read_entry(&mut r, &mut name) {
                    Ok(Some(s)) => s,
                    Ok(None) => break,
                    Err(e) => {
                        send(InputMsg::Failed(format!("spill {}: {e}", path.display())));
                        return;
                    }
                };
                if !seen.insert(&name) {
                    continue;
                }
                let parsed = std::str::from_utf8(&name)
                    .ok()
                    .and_then(name_from_canonical);
                let Some(parsed) = parsed else {
                    // NameReader hands out normalised names only; a failure here is our bug,
                    // but losing one name silently is worse than stopping.
                    send(InputMsg::Failed(format!(
                        "internal: unparsable name {:?}",
                        String::from_utf8_lossy(&name)
                    )));
                    return;
                };
                let part = index / part_size;
                tally.names.fetch_add(1, Ordering::Relaxed);
                if done.contains(&part) {
                    tally.resumed.fetch_add(1, Ordering::Relaxed);
                } else {
                    batch.push(Numbered {
                        index,
                        name: parsed,
                        source,
                    });
                    if batch.len() == NAME_BATCH && !flush(&mut batch) {
                        return;
                    }
                }
                index += 1;
                if index % part_size == 0
                    && !done.contains(&part)
                    && !(flush(&mut batch)
                        && send(InputMsg::Sealed {
                            part,
                            count: part_size as usize,
                        }))
                {
                    return;
                }
            }
            // Read to the end: its disk space is no longer needed (a resume spills again).
            let _ = std::fs::remove_file(&path);
        }
        let _ = std::fs::remove_dir_all(&spill);
        if !flush(&mut batch) {
            return;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_is_exact_for_distinct_names() {
        let mut s = Seen::default();
        for i in 0..100_000 {
            assert!(s.insert(format!("d{i}.example.").as_bytes()));
        }
        assert!(!s.insert(b"d5.example."));
    }

    /// What one run of the input stage sent: names (index, name, source), sealed parts,
    /// distinct names, names opted out, and whether its spill was left behind.
    type StageOutput = (Vec<(u64, String, usize)>, Vec<(u64, usize)>, u64, u64, bool);

    /// Runs the input stage over `lists` (one list file each) and collects what it sends.
    fn run_stage(lists: &[&str], part_size: u64, done: &[u64], optout: &str) -> StageOutput {
        let dir = std::env::temp_dir().join(format!(
            "dane-survey-input-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let readers = lists
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let f = dir.join(format!("list{i}.txt"));
                std::fs::write(&f, text).unwrap();
                NameReader::open(
                    f.to_str().unwrap(),
                    crate::zonelist::Format::List,
                    None,
                    None,
                )
                .unwrap()
            })
            .collect();
        let optout = Arc::new(OptOut::parse(optout, "optout.txt").unwrap());
        let tally = Arc::new(Tally::default());
        let (tx, mut rx) = mpsc::channel(16);
        let spill = dir.join("_spill");
        let h = spawn(
            readers,
            spill.clone(),
            part_size,
            done.iter().copied().collect(),
            optout,
            tally.clone(),
            tx,
        );
        let (mut names, mut sealed, mut distinct) = (Vec::new(), Vec::new(), None);
        while let Some(m) = rx.blocking_recv() {
            match m {
                InputMsg::Names(batch) => {
                    assert!(!batch.is_empty() && batch.len() <= NAME_BATCH);
                    names.extend(
                        batch
                            .into_iter()
                            .map(|n| (n.index, n.name.to_ascii(), n.source)),
                    );
                }
                InputMsg::Sealed { part, count } => sealed.push((part, count)),
                InputMsg::End { distinct: d, .. } => distinct = Some(d),
                InputMsg::Bad(_) => {}
                InputMsg::Failed(e) => panic!("{e}"),
            }
        }
        h.join().unwrap();
        let opted = tally.opted_out.load(Ordering::Relaxed);
        let spill_left = spill.exists();
        std::fs::remove_dir_all(&dir).unwrap();
        (names, sealed, distinct.unwrap(), opted, spill_left)
    }

    #[test]
    fn every_distinct_name_once_numbered_the_same_way_each_time() {
        // Repeats within a source (not consecutive) and across sources, case differences,
        // an opted-out name, more names than one part.
        let mut a: Vec<String> = (0..2500).map(|i| format!("d{i}.test")).collect();
        a.push("D7.Test".into());
        a.push("d1.test".into());
        a.push("blocked.example".into());
        let b: Vec<String> = (2000..3000).map(|i| format!("d{i}.test")).collect();
        let (a, b) = (a.join("\n"), b.join("\n"));
        let (names, sealed, distinct, opted, spill_left) =
            run_stage(&[&a, &b], 1000, &[], "blocked.example\n");
        assert_eq!(distinct, 3000);
        assert_eq!(opted, 1);
        assert!(!spill_left, "the spill is removed at the end");
        let mut seen: Vec<&str> = names.iter().map(|(_, n, _)| n.as_str()).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 3000, "each name once");
        assert!(names
            .iter()
            .enumerate()
            .all(|(i, (ix, _, _))| *ix == i as u64));
        // A name from both sources is attributed to the first source it appears in.
        for (_, n, src) in &names {
            let i: u32 = n[1..n.find('.').unwrap()].parse().unwrap();
            assert_eq!(*src, usize::from(i >= 2500), "{n}");
        }
        assert_eq!(sealed, vec![(0, 1000), (1, 1000), (2, 1000)]);
        // Same inputs, same numbering; a resumed run skips the parts it has.
        let (again, sealed2, _, _, _) = run_stage(&[&a, &b], 1000, &[1], "blocked.example\n");
        assert_eq!(sealed2, vec![(0, 1000), (2, 1000)]);
        let expect: Vec<_> = names
            .iter()
            .filter(|(ix, _, _)| !(1000..2000).contains(ix))
            .cloned()
            .collect();
        assert_eq!(again, expect);
    }
}
