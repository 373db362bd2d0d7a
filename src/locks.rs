//! Per-conversation locks. A turn holds its attendee's lock from reading the attendee until its
//! writes are committed, so two messages from one person are answered one after the other, each
//! from the state the last one left. Reminders and outbox sends to a conversation take the same
//! lock; the rare writes that touch every conversation (schedule-change notices, announcements)
//! take them all at once with [`Locks::lock_all`].
//!
//! The locks are exact: one per key held or waited for, made on first use and forgotten when the
//! last holder or waiter lets go. Two attendees never wait for each other. (Hashing keys onto a
//! fixed set of mutexes made a turn that shared a mutex wait out the other's commit; under load,
//! with a few dozen turns awaiting the writer at once, those waits queued behind one another and
//! were much of the open loop's tail: `concierge load --rate 20000`, p90 2.9-5.1 ms with 256
//! mutexes against 1.6-1.8 ms with 65,536, and exact locks measured like 65,536 without a fixed
//! table; BENCHMARKS.md, step 22.)
//!
//! Invariants:
//! - `held` has an entry for a key exactly while some [`Turn`] for it exists or is being waited
//!   for (its count says how many); a cancelled wait lets go like a finished turn.
//! - Every turn holds `gate` shared, so [`Locks::lock_all`] (exclusive) waits for the turns in
//!   progress and holds back new ones; tokio's lock is fair, so waiting turns cannot starve it.

use std::sync::{Arc, Mutex, MutexGuard};

use rustc_hash::FxHashMap;

/// The lock of each conversation in use.
#[derive(Default)]
pub struct Locks {
    gate: tokio::sync::RwLock<()>,
    held: Mutex<FxHashMap<Box<str>, Entry>>,
}

/// A key's mutex and how many turns hold or wait for it.
struct Entry {
    mutex: Arc<tokio::sync::Mutex<()>>,
    users: usize,
}

/// One conversation's lock, held until dropped.
#[must_use = "the conversation is locked only while the guard lives"]
pub struct Turn<'a> {
    // Fields drop in order: the mutex is released before the claim is given up.
    _guard: tokio::sync::OwnedMutexGuard<()>,
    _claim: Claim<'a>,
    _gate: tokio::sync::RwLockReadGuard<'a, ()>,
}

/// Every conversation's lock, held until dropped.
#[must_use = "conversations are locked only while the guard lives"]
pub struct All<'a> {
    _gate: tokio::sync::RwLockWriteGuard<'a, ()>,
}

/// A turn's interest in a key's entry, from before it waits for the mutex until after it
/// releases it.
struct Claim<'a> {
    locks: &'a Locks,
    key: &'a str,
}

impl Locks {
    pub fn new() -> Locks {
        Locks::default()
    }

    /// Waits until no other turn holds `key`'s conversation, then holds it.
    pub async fn lock<'a>(&'a self, key: &'a str) -> Turn<'a> {
        let gate = self.gate.read().await;
        let mutex = {
            let mut held = self.held();
            match held.get_mut(key) {
                Some(entry) => {
                    entry.users += 1;
                    entry.mutex.clone()
                }
                None => {
                    let mutex = Arc::new(tokio::sync::Mutex::new(()));
                    held.insert(
                        key.into(),
                        Entry {
                            mutex: mutex.clone(),
                            users: 1,
                        },
                    );
                    mutex
                }
            }
        };
        // From here a cancelled wait drops the claim, which gives the entry up.
        let claim = Claim { locks: self, key };
        Turn {
            _guard: mutex.lock_owned().await,
            _claim: claim,
            _gate: gate,
        }
    }

    /// Waits for the turns in progress to end and holds back every new one until dropped. For
    /// the rare writes that touch many conversations at once.
    pub async fn lock_all(&self) -> All<'_> {
        All {
            _gate: self.gate.write().await,
        }
    }

    /// Conversations locked or waited for.
    pub fn len(&self) -> usize {
        self.held().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn held(&self) -> MutexGuard<'_, FxHashMap<Box<str>, Entry>> {
        // Nothing panics while holding it; a poisoned map is still consistent.
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let mut held = self.locks.held();
        if let Some(entry) = held.get_mut(self.key) {
            entry.users -= 1;
            if entry.users == 0 {
                held.remove(self.key);
            }
        }
    }
}

impl std::fmt::Debug for Locks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Locks({} held)", self.len())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Whether `future` is still pending after the runtime has had a chance to run it.
    async fn blocks<F: std::future::Future>(future: F) -> bool {
        tokio::time::timeout(Duration::from_millis(50), future)
            .await
            .is_err()
    }

    #[tokio::test]
    async fn one_conversation_waits_others_do_not() {
        let locks = Locks::new();
        let a = locks.lock("sms:+15550000001").await;
        assert!(blocks(locks.lock("sms:+15550000001")).await);
        // Any other key goes through, however many there are.
        for i in 2..2000 {
            let key = format!("sms:+1555{i:07}");
            assert!(!blocks(locks.lock(&key)).await, "{key} waited");
        }
        drop(a);
        assert!(!blocks(locks.lock("sms:+15550000001")).await);
    }

    #[tokio::test]
    async fn the_next_turn_gets_the_lock_when_the_first_lets_go() {
        let locks = Arc::new(Locks::new());
        let first = locks.lock("web:a").await;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let second = tokio::spawn({
            let locks = locks.clone();
            async move {
                let _turn = locks.lock("web:a").await;
                tx.send(()).unwrap();
            }
        });
        assert!(blocks(rx.recv()).await);
        drop(first);
        second.await.unwrap();
        assert_eq!(rx.recv().await, Some(()));
    }

    #[tokio::test]
    async fn keys_are_forgotten_when_no_one_holds_or_waits() {
        let locks = Locks::new();
        let a = locks.lock("a").await;
        let b = locks.lock("b").await;
        assert_eq!(locks.len(), 2);
        // A wait given up (a request cancelled while queued) lets go like a turn.
        assert!(blocks(locks.lock("a")).await);
        assert_eq!(locks.len(), 2);
        drop(a);
        assert_eq!(locks.len(), 1);
        drop(b);
        assert!(locks.is_empty());
    }

    #[tokio::test]
    async fn lock_all_waits_for_turns_and_holds_back_new_ones() {
        let locks = Locks::new();
        let a = locks.lock("a").await;
        assert!(blocks(locks.lock_all()).await);
        drop(a);
        let all = locks.lock_all().await;
        assert!(blocks(locks.lock("b")).await);
        drop(all);
        assert!(!blocks(locks.lock("b")).await);
    }
}
