//! Plumbing of the store's in-memory maps (`resident`, `records`, `logmap`): shards picked by
//! an FxHash of the key, so the writer thread and the request threads rarely meet on one lock;
//! and poison-tolerant locks. A poisoned lock (a thread panicked holding it) is taken anyway:
//! the maps are updated one entry at a time, so a panic leaves them consistent, and a store that
//! stops answering would lose more than one stale entry could cost.
//!
//! The maps' keys are `sled::IVec`s, which hold up to 22 bytes inline (an attendee's key, a phone
//! number): comparing a key found in the table reads the table's own slot instead of following a
//! pointer to a separate allocation, one cache miss fewer per lookup in a map of 100,000 keys.

use std::hash::{BuildHasher, BuildHasherDefault};
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
