//! Rate limits: a token bucket per key (a chat token, a client address), sans-IO.
//!
//! Each key may spend `burst` requests at once and then `per_minute` a minute, refilled
//! continuously. The caller passes the time, so tests use a fixed clock. Memory is bounded: when
//! more than `max_keys` keys are tracked, the ones whose buckets are full again (idle long enough
//! to be indistinguishable from new) are forgotten, and if that is not enough the oldest are.
//!
//! Buckets are found by a 64-bit hash of the key, keyed at random when the limiter is made
//! (SipHash, std's `RandomState`), not by the key itself: no copy of each key is kept, and a
//! lookup reads one table instead of chasing a pointer to each candidate's key. Two keys could
//! share a bucket only if their hashes collide: with 100,000 keys tracked, a chance of about
//! 1 in 1.8 × 10^14 per new key (100,000 / 2^64), and a sender cannot aim for it without the
//! random key.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;

use jiff::{SignedDuration, Timestamp};

/// A limit: `per_minute` sustained, `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    pub per_minute: u32,
    pub burst: u32,
}

/// Token buckets by key.
#[derive(Debug)]
pub struct RateLimiter {
    rate: Rate,
    max_keys: usize,
    keys: RandomState,
    /// By the hash of the key (see the module doc); the hash is spread already.
    buckets: Mutex<HashMap<u64, Bucket, rustc_hash::FxBuildHasher>>,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Timestamp,
}

impl Bucket {
    /// Refills the bucket up to `now`, then takes a token if there is one.
    fn take(&mut self, now: Timestamp, per_second: f64, burst: f64) -> Result<(), SignedDuration> {
        let elapsed = now.duration_since(self.at).as_secs_f64().max(0.0);
        self.tokens = (self.tokens + elapsed * per_second).min(burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(SignedDuration::from_secs_f64(
                (1.0 - self.tokens) / per_second,
            ))
        }
    }
}

impl RateLimiter {
    pub fn new(rate: Rate, max_keys: usize) -> RateLimiter {
        RateLimiter {
            rate,
            max_keys: max_keys.max(1),
            keys: RandomState::new(),
            buckets: Mutex::new(HashMap::default()),
        }
    }

    /// Takes one request for `key` at `now`: `Ok` if allowed, else how long until one is.
    pub fn check(&self, key: &str, now: Timestamp) -> Result<(), SignedDuration> {
        let per_second = f64::from(self.rate.per_minute.max(1)) / 60.0;
        let burst = f64::from(self.rate.burst.max(1));
        let hash = self.keys.hash_one(key);
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(bucket) = buckets.get_mut(&hash) {
            return bucket.take(now, per_second, burst);
        }
        if buckets.len() >= self.max_keys {
            forget_idle(&mut buckets, now, per_second, burst, self.max_keys);
        }
        let mut bucket = Bucket {
            tokens: burst,
            at: now,
        };
        let answer = bucket.take(now, per_second, burst);
        buckets.insert(hash, bucket);
        answer
    }

    /// How many keys are tracked.
    pub fn len(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Drops buckets that have refilled; if still at the cap, the least recently used half.
fn forget_idle(
    buckets: &mut HashMap<u64, Bucket, rustc_hash::FxBuildHasher>,
    now: Timestamp,
    per_second: f64,
    burst: f64,
    max_keys: usize,
) {
    buckets.retain(|_, b| {
        let elapsed = now.duration_since(b.at).as_secs_f64().max(0.0);
        b.tokens + elapsed * per_second < burst
    });
    if buckets.len() >= max_keys {
        let mut ages: Vec<Timestamp> = buckets.values().map(|b| b.at).collect();
        ages.sort_unstable();
        let cutoff = ages[ages.len() / 2];
        buckets.retain(|_, b| b.at > cutoff);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    #[test]
    fn a_burst_then_the_sustained_rate() {
        let limiter = RateLimiter::new(
            Rate {
                per_minute: 60,
                burst: 3,
            },
            100,
        );
        for _ in 0..3 {
            assert!(limiter.check("a", t(0)).is_ok());
        }
        let wait = limiter.check("a", t(0)).unwrap_err();
        assert_eq!(wait.as_secs(), 1);
        // Another key is not affected.
        assert!(limiter.check("b", t(0)).is_ok());
        // One a second comes back.
        assert!(limiter.check("a", t(1)).is_ok());
        assert!(limiter.check("a", t(1)).is_err());
        // Long idle: the whole burst again, not more.
        for _ in 0..3 {
            assert!(limiter.check("a", t(100)).is_ok());
        }
        assert!(limiter.check("a", t(100)).is_err());
    }

    #[test]
    fn memory_stays_bounded_and_refilled_keys_go_first() {
        let rate = Rate {
            per_minute: 6,
            burst: 2,
        };
        let limiter = RateLimiter::new(rate, 10);
        for i in 0..1000 {
            let _ = limiter.check(&format!("k{i}"), t(i));
        }
        assert!(limiter.len() <= 10, "{} keys", limiter.len());

        let limiter = RateLimiter::new(rate, 2);
        assert!(limiter.check("idle", t(0)).is_ok());
        assert!(limiter.check("busy", t(100)).is_ok());
        assert!(limiter.check("busy", t(100)).is_ok());
        // A third key at the cap: "idle" has refilled and is forgotten, "busy" is kept and
        // still limited.
        assert!(limiter.check("new", t(100)).is_ok());
        assert_eq!(limiter.len(), 2);
        assert!(limiter.check("busy", t(100)).is_err());
    }
}
