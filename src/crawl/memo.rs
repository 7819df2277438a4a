//! Memo tables: each MX host resolved once, each (address, SNI) probed once per snapshot.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

/// A table of results computed at most once per key, however many tasks ask at the same
/// time: the first asker computes, the others wait for its result.
///
/// Exists because a million domains share a few thousand MX hosts: without it the survey
/// would be a million times slower and a million times ruder.
pub struct Memo<K, V> {
    cells: Mutex<Cells<K, V>>,
}

/// The table behind the lock. Its keys come from peers (MX host names), so it is keyed with
/// a per-run random seed, but by foldhash rather than SipHash: the crawl looks a host up
/// for every domain, and SipHash was most of that lookup.
type Cells<K, V> = HashMap<K, Arc<OnceCell<V>>, foldhash::quality::RandomState>;

impl<K: Eq + Hash + Clone, V: Clone> Default for Memo<K, V> {
    fn default() -> Self {
        Memo {
            cells: Mutex::new(Cells::default()),
        }
    }
}

impl<K: Eq + Hash + Clone, V: Clone> Memo<K, V> {
    /// Records a result known in advance (a resumed crawl's finished hosts).
    pub fn insert_ready(&self, key: K, value: V) {
        let cell = Arc::new(OnceCell::new_with(Some(value)));
        self.lock().insert(key, cell);
    }

    /// The result for `key`, computing it with `init` if nobody has. The flag is true for the
    /// one caller whose `init` produced the value (it owns writing it out).
    pub async fn get_or_init<F, Fut>(&self, key: &K, init: F) -> (V, bool)
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = V>,
    {
        let cell = {
            let mut map = self.lock();
            match map.get(key) {
                Some(c) => c.clone(),
                None => {
                    let c = Arc::new(OnceCell::new());
                    map.insert(key.clone(), c.clone());
                    c
                }
            }
        };
        let mut mine = false;
        let v = cell
            .get_or_init(|| {
                mine = true;
                init()
            })
            .await
            .clone();
        (v, mine)
    }

    /// The result for `key` if it has been computed (not if it is in progress).
    pub fn get_ready<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.lock().get(key).and_then(|c| c.get().cloned())
    }

    /// Entries (computed or in progress).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cells<K, V>> {
        // A panic while holding this lock cannot leave the map inconsistent (inserts are
        // single calls), so a poisoned lock is still usable.
        self.cells.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn computes_once_under_contention() {
        let memo: Arc<Memo<String, u32>> = Arc::new(Memo::default());
        let calls = Arc::new(AtomicU32::new(0));
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..50 {
            let (memo, calls) = (memo.clone(), calls.clone());
            set.spawn(async move {
                memo.get_or_init(&"mx.example".to_string(), || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    7
                })
                .await
            });
        }
        let mut owners = 0;
        while let Some(r) = set.join_next().await {
            let (v, mine) = r.unwrap();
            assert_eq!(v, 7);
            owners += mine as u32;
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(owners, 1);
    }

    #[tokio::test]
    async fn ready_entries_are_not_recomputed() {
        let memo: Memo<u8, &str> = Memo::default();
        memo.insert_ready(1, "old");
        let (v, mine) = memo.get_or_init(&1, || async { "new" }).await;
        assert_eq!((v, mine), ("old", false));
        assert_eq!(memo.len(), 1);
    }
}
