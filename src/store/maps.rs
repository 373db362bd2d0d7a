//! Plumbing of the store's in-memory maps (`resident`, `records`, `logmap`): shards picked by
//! an FxHash of the key, so the writer thread and the request threads rarely meet on one lock;
//! and poison-tolerant locks. A poisoned lock (a thread panicked holding it) is taken anyway:
//! the maps are updated one entry at a time, so a panic leaves them consistent, and a store that
//! stops answering would lose more than one stale entry could cost.
//!
//! The maps' keys are `sled::IVec`s, which hold up to 22 bytes inline (an attendee's key, a phone
//! number): comparing a key found in the table reads the table's own slot instead of following a
//! pointer to a separate allocation, one cache miss fewer per lookup in a map of 100,000 keys.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash};
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use rustc_hash::FxHasher;

/// How many shards each map has. Many, so that a shard's hash table is small when it grows: the
/// shards of a map fill alike and grow at about the same moment, each resize rehashing its whole
/// shard in the writer's thread. With 16, a store 40-100 s into 20,000 req/s had batches held
/// 4.5-17 ms by its tasks map growing; with 256, none over 4 ms (BENCHMARKS.md, SMS webhook
/// step 49).
const SHARDS: usize = 256;

/// The maps' hasher (keys are phone numbers, message ids and hashes: no flooding concern that
/// SipHash would answer, since every key comes from a verified request or the store itself).
pub(super) type Hasher = BuildHasherDefault<FxHasher>;

/// A key's hash.
pub(super) fn hash(key: &[u8]) -> u64 {
    Hasher::default().hash_one(key)
}

/// The shard a hash falls in.
pub(super) fn shard_of(hash: u64) -> usize {
    (hash % SHARDS as u64) as usize
}

/// A map's shards, empty.
pub(super) fn shards<T: Default>() -> Vec<T> {
    (0..SHARDS).map(|_| T::default()).collect()
}

/// A shard of a map.
pub(super) type Shard<K, V> = RwLock<HashMap<K, V, Hasher>>;

/// A sharded map that grows without making anyone wait for a rehash: for a map that grows with
/// every message (the idempotency index), where a table's growth was the longest thing a batch
/// or a request waited for (BENCHMARKS.md, SMS webhook step 60).
///
/// - Its one writer grows a shard before an insert would ([`Growing::make_room`]): it copies the
///   shard into the bigger table under the read lock, so readers go on meanwhile, and holds the
///   write lock only to swap the tables.
/// - The bigger table is made ahead of time, its memory paged in, by a background thread
///   ([`Growing::prepare`]): fresh memory costs a page fault per 4 KiB, 10-20 µs each on the VMs
///   measured, 4-5 ms for a table of 28,672 entries when the writer allocated it itself.
/// - The shards fill alike (keys spread evenly), so with one threshold they would all grow
///   within seconds of each other; [`grows_at`] staggers them in eight waves.
#[derive(Debug)]
pub(super) struct Growing<K, V> {
    shards: Vec<Shard<K, V>>,
    /// Each shard's next table, while it is made ready and once it is.
    spares: Vec<Mutex<Option<Spare<K, V>>>>,
}

/// A shard's next table: twice its capacity, filled with placeholders a piece at a time (which
/// pages its memory in), then emptied.
#[derive(Debug)]
struct Spare<K, V> {
    table: HashMap<K, V, Hasher>,
    /// Placeholders put in so far.
    placed: usize,
    /// Emptied, for the writer to take.
    ready: bool,
}

impl<K, V> Growing<K, V>
where
    K: Eq + Hash + Clone + From<u64>,
    V: Clone + Default,
{
    pub(super) fn new() -> Growing<K, V> {
        Growing {
            shards: shards(),
            spares: shards(),
        }
    }

    /// The shard `hash` falls in, and its index.
    pub(super) fn shard(&self, hash: u64) -> (&Shard<K, V>, usize) {
        let index = shard_of(hash);
        (&self.shards[index], index)
    }

    pub(super) fn shards(&self) -> &[Shard<K, V>] {
        &self.shards
    }

    /// Grows shard `index` if it is full enough ([`grows_at`]), into its spare table if that is
    /// ready. Only the map's one writer may call this, before inserting, and it must keep
    /// everything else from changing the shard until this returns (a change between the copy
    /// and the swap would be lost): the caller says how.
    pub(super) fn make_room(&self, index: usize) {
        let shard = &self.shards[index];
        let bigger = {
            let map = read(shard);
            let capacity = map.capacity();
            if map.len() < grows_at(capacity, index) {
                return;
            }
            let wanted = grown(capacity);
            // A spare not ready yet is for this growth too: of no use after it.
            let spare = lock(&self.spares[index]).take();
            let mut bigger = match spare {
                Some(spare) if spare.ready && spare.table.capacity() >= wanted => spare.table,
                _ => HashMap::with_capacity_and_hasher(wanted, Hasher::default()),
            };
            bigger.extend(map.iter().map(|(k, v)| (k.clone(), v.clone())));
            bigger
        };
        let old = std::mem::replace(&mut *write(shard), bigger);
        // Freed after the write lock is let go.
        drop(old);
    }

    /// Makes ready, a piece at a time until `budget` is spent, the next tables of the shards
    /// that will grow soon ([`grows_soon`]). For a background thread, which
    /// calls it again and again: a piece is small, so that the page faults of a wave of shards
    /// about to grow are spread thin instead of taking a CPU. Returns how many tables it made
    /// ready.
    pub(super) fn prepare(&self, budget: std::time::Duration) -> usize {
        let started = std::time::Instant::now();
        let mut ready = 0;
        for (index, shard) in self.shards.iter().enumerate() {
            let (len, capacity) = {
                let map = read(shard);
                (map.len(), map.capacity())
            };
            if !grows_soon(len, capacity, index) {
                continue;
            }
            let wanted = grown(capacity);
            // Taken out while it is filled, so that the writer never waits for a page fault.
            let mut spare = match lock(&self.spares[index]).take() {
                Some(spare) if spare.table.capacity() >= wanted => spare,
                _ => Spare {
                    table: HashMap::with_capacity_and_hasher(wanted, Hasher::default()),
                    placed: 0,
                    ready: false,
                },
            };
            while !spare.ready && started.elapsed() < budget {
                let to = (spare.placed + PLACED_AT_ONCE).min(spare.table.capacity());
                spare
                    .table
                    .extend((spare.placed as u64..to as u64).map(|k| (K::from(k), V::default())));
                spare.placed = to;
                if to == spare.table.capacity() {
                    spare.table.clear();
                    spare.ready = true;
                    ready += 1;
                }
            }
            *lock(&self.spares[index]) = Some(spare);
            if started.elapsed() >= budget {
                break;
            }
        }
        ready
    }
}

/// How full shard `index`'s table of `capacity` entries may get before it grows: from 9/16 of
/// its capacity to all of it, by the shard's index modulo 8.
fn grows_at(capacity: usize, index: usize) -> usize {
    capacity - capacity * (index % 8) / 16
}

/// Whether shard `index`, `len` entries in a table of `capacity`, will grow soon enough, and
/// into a big enough table, for [`Growing::prepare`] to make its next table ready: within a
/// 32nd of its capacity (a spare is memory held until its shard grows, up to a wave of shards'
/// worth).
fn grows_soon(len: usize, capacity: usize, index: usize) -> bool {
    capacity >= PREPARED_FROM && len + capacity / 32 >= grows_at(capacity, index)
}

/// The capacity a shard of `capacity` grows to.
fn grown(capacity: usize) -> usize {
    (capacity * 2).max(32)
}

/// Tables smaller than this grow in well under a millisecond: no spare is prepared for them.
const PREPARED_FROM: usize = 1024;

/// Placeholders a spare table takes between two looks at the clock: at most 128 page faults.
const PLACED_AT_ONCE: usize = 128;

pub(super) fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(super) fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hashes that fall in shard `index`, one per `k`.
    fn in_shard(index: usize, k: u64) -> u64 {
        k * SHARDS as u64 + index as u64
    }

    fn insert(map: &Growing<u64, u64>, hash: u64) {
        let (shard, index) = map.shard(hash);
        map.make_room(index);
        write(shard).insert(hash, hash * 3);
    }

    #[test]
    fn shards_grow_in_eight_staggered_waves() {
        let thresholds: Vec<usize> = (0..SHARDS).map(|index| grows_at(1792, index)).collect();
        assert_eq!(thresholds[0], 1792);
        assert_eq!(thresholds[7], 1792 - 1792 * 7 / 16);
        let mut distinct = thresholds.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 8);
        assert!(
            thresholds
                .iter()
                .all(|t| (1792 * 9 / 16..=1792).contains(t))
        );
        assert_eq!(thresholds[3], thresholds[3 + 8]);
    }

    #[test]
    fn a_shard_grows_into_the_table_prepared_for_it() {
        let map: Growing<u64, u64> = Growing::new();
        let index = 0;
        let mut k = 0;
        // Fill the shard until it is close to growing, with a table big enough to be prepared.
        while {
            let map = read(&map.shards[index]);
            !grows_soon(map.len(), map.capacity(), index)
        } {
            insert(&map, in_shard(index, k));
            k += 1;
        }
        let capacity = read(&map.shards[index]).capacity();
        assert_eq!(map.prepare(std::time::Duration::from_secs(10)), 1);
        let prepared = lock(&map.spares[index]).as_ref().map(|spare| {
            assert!(spare.ready);
            assert!(spare.table.is_empty());
            spare.table.capacity()
        });
        assert!(prepared.is_some_and(|c| c >= 2 * capacity), "{prepared:?}");
        // Other shards are far from growing: nothing prepared for them.
        assert!(map.spares[1..].iter().all(|spare| lock(spare).is_none()));
        while read(&map.shards[index]).capacity() == capacity {
            insert(&map, in_shard(index, k));
            k += 1;
        }
        assert!(lock(&map.spares[index]).is_none(), "the spare was taken");
        assert_eq!(Some(read(&map.shards[index]).capacity()), prepared);
        let shard = read(&map.shards[index]);
        assert_eq!(shard.len() as u64, k);
        assert!((0..k).all(|k| shard.get(&in_shard(index, k)) == Some(&(in_shard(index, k) * 3))));
    }

    #[test]
    fn growing_keeps_every_entry_with_or_without_a_spare() {
        let map: Growing<u64, u64> = Growing::new();
        // Four shards, each through tables prepared for from 1,792 entries (of four waves).
        let hashes: Vec<u64> = (0..6_000)
            .flat_map(|k| (0..4).map(move |index| in_shard(index, k)))
            .collect();
        for (n, &hash) in hashes.iter().enumerate() {
            insert(&map, hash);
            // A background thread's calls, in between: a small budget, so some shards grow with
            // a spare half made (then without it).
            if n % 100 == 0 {
                map.prepare(std::time::Duration::from_micros(200));
            }
        }
        let total: usize = map.shards().iter().map(|shard| read(shard).len()).sum();
        assert_eq!(total, hashes.len());
        assert!((0..4).all(|index| read(&map.shards[index]).capacity() >= 7_168));
        for &hash in &hashes {
            assert_eq!(read(map.shard(hash).0).get(&hash), Some(&(hash * 3)));
        }
    }
}
