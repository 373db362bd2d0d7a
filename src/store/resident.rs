//! What the store keeps in memory beside sled, so that a message's reads do not walk sled's
//! trees: a complete copy of the opt-outs tree, and a count of the idempotency keys sled holds
//! (by hash). New idempotency records and SMS attendees' records go to journals
//! ([`super::records`], which keeps the attendees' latest records in memory); sled's
//! idempotency tree only holds records from before the journals, until they expire, and the
//! count keeps those from costing a sled read per message.
//!
//! Why. Under load a message read three trees (its idempotency key, its attendee, its opt-out)
//! and the writer read the idempotency key once more; sled's lookups, with the epoch collection
//! they trigger, were about a tenth of the service's CPU (BENCHMARKS.md, SMS webhook step 10).
//! Opt-outs are few; a key's hash and count are 16 bytes or so.
//!
//! Invariants:
//! - Every write to the mirrored trees goes through the writer ([`super::writer`]), which
//!   updates this copy right after sled, in the same thread, before anyone hears back; the
//!   idempotency tree's expiry updates the count after each removal. So a reader never sees
//!   less here than an acknowledged write put in sled.
//! - [`Resident::load`] fills it from sled once the log has been replayed, before the store is
//!   used; nothing else fills it, so it never holds a value sled does not.
//! - The idempotency count is exact about absence: a hash whose count is zero has no key in the
//!   tree (a count is raised for each key sled did not hold, lowered for each key it removed).
//!   A non-zero count only means "look in sled" (another key may share the hash).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock};

use super::maps::{Hasher, hash, lock, read, shard_of, shards, write};
use super::wal::Logged;

/// One shard of a [`Mirror`]: keys and their values.
type Entries = HashMap<sled::IVec, sled::IVec, Hasher>;

/// A tree's keys and values, in memory.
#[derive(Debug)]
pub(super) struct Mirror {
    shards: Vec<RwLock<Entries>>,
}

impl Mirror {
    fn new() -> Mirror {
        Mirror { shards: shards() }
    }

    fn shard(&self, key: &[u8]) -> &RwLock<Entries> {
        &self.shards[shard_of(hash(key))]
    }

    pub(super) fn contains(&self, key: &[u8]) -> bool {
        read(self.shard(key)).contains_key(key)
    }

    fn set(&self, key: &[u8], value: Option<&sled::IVec>) {
        let mut shard = write(self.shard(key));
        match value {
            Some(value) => {
                shard.insert(key.into(), value.clone());
            }
            None => {
                shard.remove(key);
            }
        }
    }

    fn clear(&self) {
        for shard in &self.shards {
            write(shard).clear();
        }
    }
}

/// How many keys of a tree have each hash.
#[derive(Debug)]
pub(super) struct KeyCount {
    shards: Vec<Mutex<HashMap<u64, u32, Hasher>>>,
    /// How many keys in all.
    keys: AtomicUsize,
}

impl KeyCount {
    fn new() -> KeyCount {
        KeyCount {
            shards: shards(),
            keys: AtomicUsize::new(0),
        }
    }

    fn shard(&self, hash: u64) -> std::sync::MutexGuard<'_, HashMap<u64, u32, Hasher>> {
        lock(&self.shards[shard_of(hash)])
    }

    /// False if the tree certainly does not hold `key`; true if it may.
    pub(super) fn may_hold(&self, key: &[u8]) -> bool {
        let hash = hash(key);
        self.shard(hash).contains_key(&hash)
    }

    pub(super) fn added(&self, key: &[u8]) {
        let hash = hash(key);
        *self.shard(hash).entry(hash).or_insert(0) += 1;
        self.keys.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn len(&self) -> usize {
        self.keys.load(Ordering::Relaxed)
    }

    pub(super) fn removed(&self, key: &[u8]) {
        let hash = hash(key);
        let mut shard = self.shard(hash);
        if let Some(count) = shard.get_mut(&hash) {
            self.keys.fetch_sub(1, Ordering::Relaxed);
            *count -= 1;
            if *count == 0 {
                shard.remove(&hash);
            }
        }
    }

    fn clear(&self) {
        for shard in &self.shards {
            lock(shard).clear();
        }
        self.keys.store(0, Ordering::Relaxed);
    }
}

/// The store's in-memory part: see the module doc.
#[derive(Debug)]
pub(super) struct Resident {
    pub(super) opt_outs: Mirror,
    pub(super) idempotency: KeyCount,
}

impl Resident {
    pub(super) fn new() -> Resident {
        Resident {
            opt_outs: Mirror::new(),
            idempotency: KeyCount::new(),
        }
    }

    /// Fills it from sled (whatever it held before is dropped).
    pub(super) fn load(
        &self,
        opt_outs: &sled::Tree,
        idempotency: &sled::Tree,
    ) -> Result<(), sled::Error> {
        self.opt_outs.clear();
        for entry in opt_outs.iter() {
            let (key, value) = entry?;
            self.opt_outs.set(&key, Some(&value));
        }
        self.idempotency.clear();
        for key in idempotency.iter().keys() {
            self.idempotency.added(&key?);
        }
        Ok(())
    }

    /// Follows one write the writer made to sled: `value` is what `key` now holds (`None`:
    /// removed) and `old` whether sled held the key before.
    pub(super) fn wrote(&self, tree: Logged, key: &[u8], value: Option<&sled::IVec>, old: bool) {
        match tree {
            Logged::OptOuts => self.opt_outs.set(key, value),
            Logged::Idempotency => match (old, value.is_some()) {
                (false, true) => self.idempotency.added(key),
                (true, false) => self.idempotency.removed(key),
                _ => {}
            },
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_count_is_exact_about_absence() {
        let count = KeyCount::new();
        assert!(!count.may_hold(b"SM1"));
        count.added(b"SM1");
        count.added(b"SM2");
        assert!(count.may_hold(b"SM1") && count.may_hold(b"SM2"));
        count.removed(b"SM1");
        assert!(!count.may_hold(b"SM1"));
        assert!(count.may_hold(b"SM2"));
        // Removing what was never added changes nothing.
        count.removed(b"SM3");
        assert!(count.may_hold(b"SM2"));
        assert_eq!(count.len(), 1);
    }

    #[test]
    fn writes_follow_sled_for_the_mirrored_trees_only() {
        let resident = Resident::new();
        let value = sled::IVec::from(b"record".as_slice());
        resident.wrote(Logged::OptOuts, b"+1555", Some(&value), false);
        resident.wrote(Logged::Attendees, b"+1666", Some(&value), false);
        assert!(resident.opt_outs.contains(b"+1555"));
        assert!(!resident.opt_outs.contains(b"+1666"));
        resident.wrote(Logged::OptOuts, b"+1555", None, true);
        assert!(!resident.opt_outs.contains(b"+1555"));
        // An overwrite of a held idempotency key does not count it twice.
        resident.wrote(Logged::Idempotency, b"SM1", Some(&value), false);
        resident.wrote(Logged::Idempotency, b"SM1", Some(&value), true);
        resident.wrote(Logged::Idempotency, b"SM1", None, true);
        assert!(!resident.idempotency.may_hold(b"SM1"));
    }
}
