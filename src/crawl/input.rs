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
//! Except the first [`AHEAD_NAMES`] distinct names: pass 1 numbers them itself, in input
//! order, and hands them over while it goes on spilling the rest, so the crawl starts at
//! once instead of after a full read of the inputs (which a .com-sized zone makes minutes,
//! and which the first domains' MX hosts, resolved and probed meanwhile, would add to). Their
//! digests (16 bytes each) stay in memory so that their repeats are not spilled.
//!
//! Every name gets a stable index (its position in that order), and part `k` holds the names
//! with index in `[k·size, (k+1)·size)`. The same inputs give the same numbering, which is what
//! lets a crashed crawl skip exactly the parts it already wrote; the spill is simply redone
//! on resume (it costs one read of the inputs). The hash order also spreads each provider's
//! customers over the rest of the run instead of crawling a registry's sorted neighbours
//! together.
//!
//! Disk: about the size of the names plus 3 bytes each (a .com-sized input of 160 million
//! names spills ~4 GB), freed bucket by bucket as the crawl goes.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::fs::File;
use std::io::{BufReader, BufWriter, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use hickory_proto::rr::Name;
use tokio::sync::mpsc;

use crate::names::name_and_display;
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

/// Distinct names the crawl has pass 1 number, in input order (see the module
/// documentation): about a second of crawling, and a few MiB of digests and of names waiting
/// to be handed over. Part of the numbering, so it never changes between a crawl and its
/// resumption.
pub const AHEAD_NAMES: usize = 1 << 16;

/// A name to crawl, numbered.
#[derive(Debug)]
pub struct Numbered {
    /// Its index among the distinct names.
    pub index: u64,
    /// The name.
    pub name: Name,
    /// The name as the survey prints it ([`crate::names::display`]), from the input's text.
    pub text: String,
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

/// Exact de-duplication in 16 bytes a name: each name's XXH3-128 under a seed drawn for
/// this set. Zone files are peer input, and an unseeded non-cryptographic digest could be
/// made to collide on purpose (one of the two names would silently be dropped as a repeat);
/// under an unknown seed a collision is chance alone, which would need ~2^64 names. The seed
/// changes nothing else: which names are repeats, and so the numbering, is the same in
/// every run.
struct Seen {
    seed: u64,
    digests: HashSet<u128, foldhash::quality::RandomState>,
}

impl Default for Seen {
    fn default() -> Self {
        Seen {
            seed: rand::random(),
            digests: HashSet::default(),
        }
    }
}

impl Seen {
    fn digest(&self, name: &[u8]) -> u128 {
        twox_hash::XxHash3_128::oneshot_with_seed(self.seed, name)
    }

    /// Whether `name` is new (it is seen from now on).
    fn insert(&mut self, name: &[u8]) -> bool {
        let d = self.digest(name);
        self.digests.insert(d)
    }

    fn contains(&self, name: &[u8]) -> bool {
        self.digests.contains(&self.digest(name))
    }

    fn len(&self) -> usize {
        self.digests.len()
    }
}

/// Which hash places names in the spill buckets, part of the crawl's fingerprint: the
/// numbering follows from it, so a crawl is never resumed under another one.
pub const NUMBERING: &str = "xxh3-128 buckets";

/// The unseeded hash that places a name: XXH3-128 is specified (the same on every platform
/// and in every release, which the numbering needs; std's SipHash `DefaultHasher`, used
/// before, is not) and several times cheaper than SipHash on names.
fn placement(name: &[u8]) -> u128 {
    twox_hash::XxHash3_128::oneshot(name)
}

/// The spill bucket of a name.
fn bucket_of(name: &[u8]) -> usize {
    // The remainder is below SPILL_BUCKETS, so the conversion cannot truncate.
    (placement(name) % SPILL_BUCKETS as u128) as usize
}

/// Gives the distinct names their indices and the dispatcher its messages: names in batches,
/// each part sealed once its last name is numbered. Names of `done` parts are numbered but
/// not sent.
struct Numbering<'a> {
    next: u64,
    part_size: u64,
    done: &'a BTreeSet<u64>,
    tally: &'a Tally,
    batch: Vec<Numbered>,
    /// Messages not handed over yet (pass 1 does not wait for the dispatcher).
    outbox: VecDeque<InputMsg>,
}

impl<'a> Numbering<'a> {
    fn new(part_size: u64, done: &'a BTreeSet<u64>, tally: &'a Tally) -> Self {
        Numbering {
            next: 0,
            part_size,
            done,
            tally,
            batch: Vec::with_capacity(NAME_BATCH),
            outbox: VecDeque::new(),
        }
    }

    /// Numbers the next distinct name.
    fn push(&mut self, (name, text): (Name, String), source: usize) {
        let index = self.next;
        let part = index / self.part_size;
        self.tally.names.fetch_add(1, Ordering::Relaxed);
        let skipped = self.done.contains(&part);
        if skipped {
            self.tally.resumed.fetch_add(1, Ordering::Relaxed);
        } else {
            self.batch.push(Numbered {
                index,
                name,
                text,
                source,
            });
            if self.batch.len() == NAME_BATCH {
                self.flush();
            }
        }
        self.next += 1;
        if self.next % self.part_size == 0 && !skipped {
            self.flush();
            self.outbox.push_back(InputMsg::Sealed {
                part,
                count: self.part_size as usize,
            });
        }
    }

    fn flush(&mut self) {
        if !self.batch.is_empty() {
            let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(NAME_BATCH));
            self.outbox.push_back(InputMsg::Names(batch));
        }
    }

    /// Hands over what the channel takes now. False when the dispatcher has gone away.
    fn offer(&mut self, tx: &mpsc::Sender<InputMsg>) -> bool {
        while let Some(m) = self.outbox.pop_front() {
            match tx.try_send(m) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(m)) => {
                    self.outbox.push_front(m);
                    return true;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return false,
            }
        }
        true
    }

    /// Hands over everything, waiting for room. False when the dispatcher has gone away.
    fn deliver(&mut self, tx: &mpsc::Sender<InputMsg>) -> bool {
        while let Some(m) = self.outbox.pop_front() {
            if tx.blocking_send(m).is_err() {
                return false;
            }
        }
        true
    }

    /// Seals the last part (if it is not full, and not done) and returns the distinct names.
    fn finish(&mut self) -> u64 {
        self.flush();
        let last = self.next / self.part_size;
        if self.next % self.part_size != 0 && !self.done.contains(&last) {
            let count = (self.next - last * self.part_size) as usize;
            self.outbox
                .push_back(InputMsg::Sealed { part: last, count });
        }
        self.next
    }
}

/// A name as the zone-list readers hand it out (normalised), parsed, with its printed text.
/// They hand out nothing else, so a failure is our bug; but losing one name silently would be
/// worse than stopping.
fn parse_normalised(name: &[u8]) -> Result<(Name, String), String> {
    std::str::from_utf8(name)
        .ok()
        .and_then(name_and_display)
        .ok_or_else(|| {
            format!(
                "internal: unparsable name {:?}",
                String::from_utf8_lossy(name)
            )
        })
}

fn bucket_path(spill: &Path, bucket: usize) -> PathBuf {
    spill.join(format!("bucket-{bucket:03}"))
}

/// Pass 1: the first `ahead` distinct names numbered, every other name of every source, in
/// order, into the bucket files (the count goes to `tally.estimate`). Returns the coverage,
/// or `None` when the dispatcher has gone away.
fn spill_names(
    readers: Vec<NameReader>,
    spill: &Path,
    optout: &OptOut,
    numbering: &mut Numbering,
    ahead_names: usize,
    tx: &mpsc::Sender<InputMsg>,
) -> Result<Option<Coverage>, String> {
    let tally = numbering.tally;
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
    // Names numbered here or spilled: the progress bar's estimate of the distinct names.
    let mut counted = 0u64;
    let mut ahead = Seen::default();
    for (source, mut reader) in readers.into_iter().enumerate() {
        let source = u16::try_from(source).map_err(|_| "more than 65535 inputs".to_string())?;
        for entry in reader.by_ref() {
            let name = match entry {
                Ok(Entry::Name(n)) => n,
                Ok(Entry::Bad(b)) => {
                    if tx.blocking_send(InputMsg::Bad(b)).is_err() {
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
            if ahead.len() < ahead_names {
                if ahead.insert(name.as_bytes()) {
                    counted += 1;
                    numbering.push(parse_normalised(name.as_bytes())?, usize::from(source));
                    if !numbering.offer(tx) {
                        return Ok(None);
                    }
                }
                continue;
            }
            if ahead.contains(name.as_bytes()) {
                continue;
            }
            let w = &mut buckets[bucket_of(name.as_bytes())];
            let [s0, s1] = source.to_le_bytes();
            w.write_all(&[s0, s1, len])
                .and_then(|()| w.write_all(name.as_bytes()))
                .map_err(|e| io("write", e))?;
            counted += 1;
            if counted % 4096 == 0 {
                tally.estimate.store(counted, Ordering::Relaxed);
            }
        }
        coverage.add(reader.into_coverage());
    }
    for w in buckets {
        w.into_inner().map_err(|e| io("write", e.into_error()))?;
    }
    tally.estimate.store(counted, Ordering::Relaxed);
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
/// documentation) and sends the numbered names down `tx`, the first `ahead` distinct ones
/// (the crawl's is [`AHEAD_NAMES`]) while it spills. Names of `done` parts are numbered but
/// not sent; names on the opt-out list are neither. The spill directory is removed at the
/// end.
#[allow(clippy::too_many_arguments)]
pub fn spawn(
    readers: Vec<NameReader>,
    spill: PathBuf,
    part_size: u64,
    ahead: usize,
    done: BTreeSet<u64>,
    optout: Arc<OptOut>,
    tally: Arc<Tally>,
    tx: mpsc::Sender<InputMsg>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let send = |m: InputMsg| tx.blocking_send(m).is_ok();
        let mut numbering = Numbering::new(part_size, &done, &tally);
        let coverage = match spill_names(readers, &spill, &optout, &mut numbering, ahead, &tx) {
            Ok(Some(c)) => c,
            Ok(None) => return,
            Err(e) => {
                send(InputMsg::Failed(e));
                return;
            }
        };
        // What pass 1 numbered and the channel had no room for yet.
        if !numbering.deliver(&tx) {
            return;
        }
        let mut name = Vec::with_capacity(256);
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
                match parse_normalised(&name) {
                    Ok(parsed) => numbering.push(parsed, source),
                    Err(e) => {
                        send(InputMsg::Failed(e));
                        return;
                    }
                }
                if !numbering.deliver(&tx) {
                    return;
                }
            }
            // Read to the end: its disk space is no longer needed (a resume spills again).
            let _ = std::fs::remove_file(&path);
        }
        let _ = std::fs::remove_dir_all(&spill);
        let distinct = numbering.finish();
        if numbering.deliver(&tx) {
            send(InputMsg::End { coverage, distinct });
        }
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

    #[test]
    fn names_are_placed_by_the_hash_the_numbering_names() {
        // The numbering (which bucket a name spills to) follows from this hash, and a resumed
        // crawl must number as the first run did: a different hash needs a new NUMBERING.
        // XXH3-128 of "example.com.", as the reference implementation computes it (Python's
        // `xxhash.xxh3_128_intdigest`).
        assert_eq!(NUMBERING, "xxh3-128 buckets");
        assert_eq!(
            placement(b"example.com."),
            0x1483_6830_9775_1f79_6baf_26dc_3b6c_5ee4
        );
        assert_eq!(bucket_of(b"example.com."), 0xe4);
    }

    /// What one run of the input stage sent: names (index, name, source), sealed parts,
    /// distinct names, names opted out, and whether its spill was left behind.
    type StageOutput = (Vec<(u64, String, usize)>, Vec<(u64, usize)>, u64, u64, bool);

    /// Runs the input stage over `lists` (one list file each) and collects what it sends.
    fn run_stage(
        lists: &[&str],
        part_size: u64,
        ahead: usize,
        done: &[u64],
        optout: &str,
    ) -> StageOutput {
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
            ahead,
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
        // an opted-out name, more names than one part; none, some, and all of them numbered
        // by pass 1.
        let mut a: Vec<String> = (0..2500).map(|i| format!("d{i}.test")).collect();
        a.insert(10, "d5.test".into());
        a.insert(20, "blocked.example".into());
        a.push("D7.Test".into());
        a.push("d1.test".into());
        let b: Vec<String> = (2000..3000).map(|i| format!("d{i}.test")).collect();
        let (a, b) = (a.join("\n"), b.join("\n"));
        for ahead in [0, 1, 700, 2999, 3000, 10_000] {
            let (names, sealed, distinct, opted, spill_left) =
                run_stage(&[&a, &b], 1000, ahead, &[], "blocked.example\n");
            assert_eq!(distinct, 3000, "ahead {ahead}");
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
            // Pass 1 numbers the first distinct names in input order (the opted-out one and
            // the repeat of d5 are not among them).
            let first = ahead.min(3000);
            assert!(
                names[..first]
                    .iter()
                    .enumerate()
                    .all(|(i, (_, n, _))| *n == format!("d{i}.test.")),
                "ahead {ahead}"
            );
            // A name from both sources is attributed to the first source it appears in.
            for (_, n, src) in &names {
                let i: u32 = n[1..n.find('.').unwrap()].parse().unwrap();
                assert_eq!(*src, usize::from(i >= 2500), "{n}");
            }
            assert_eq!(sealed, vec![(0, 1000), (1, 1000), (2, 1000)]);
            // Same inputs, same numbering; a resumed run skips the parts it has.
            let (again, sealed2, _, _, _) =
                run_stage(&[&a, &b], 1000, ahead, &[1], "blocked.example\n");
            assert_eq!(sealed2, vec![(0, 1000), (2, 1000)]);
            let expect: Vec<_> = names
                .iter()
                .filter(|(ix, _, _)| !(1000..2000).contains(ix))
                .cloned()
                .collect();
            assert_eq!(again, expect, "ahead {ahead}");
        }
    }
}
