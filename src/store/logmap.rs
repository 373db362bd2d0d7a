//! A map kept as a log: the latest value of every key in memory, every change appended to a
//! journal ([`super::journal`]), and the journal's oldest segments cleaned as it fills with
//! values written over since. The store keeps SMS attendees' records and routing tasks this way
//! (see [`super::records`]).
//!
//! Why. An SMS attendee's record changes with every message (its conversation's context). In
//! sled each change was a B-tree update (a lookup, a delta linked to the leaf, its share of
//! sled's log and page cache), about a tenth of the service's CPU under load; the records were
//! held in memory for reading anyway (BENCHMARKS.md, SMS webhook step 10 and 15). Routing
//! tasks and the messages added to them were most of what sled still wrote under load, and
//! sled's folder grew ~8 MB a second with them (step 49); they are read only when routing loads.
//!
//! Cleaning. Once the journal holds more than twice the live records and a segment more, the
//! writer reads the oldest sealed segment a piece at a time, with each batch it appends (at
//! least twice as many bytes as the batch writes, so cleaning outruns the garbage), and appends
//! again, in front of the batch's own writes, every record still live there (the map points at
//! it). A segment read to its end is retired after the next sync, so its live records are on
//! disk in their new place first.
//!
//! Invariants:
//! - The map changes only after the journal holds the write, in the writer's thread.
//! - Opening reads the segments in order and the records in order, so the last write of a key
//!   wins; a record copied by cleaning is in a later segment than the one it was copied from.
//! - A segment is retired only when every record the map points at has been copied out of it,
//!   and only after a sync that began after those copies were appended.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};

use super::journal::{Journal, Loc, inserts};
use super::maps::{self, Hasher, hash, lock, read, shard_of, shards, write};
use super::wal::{self, Logged, Op};

/// The least a batch cleans, once cleaning is due: a page. Small, so that cleaning keeps pace
/// with the writes instead of running ahead in a burst (64 KiB a batch read a 64 MiB segment in
/// half a second at 20,000 messages/s, holding every message for the writer meanwhile).
const CLEAN_AT_LEAST: u64 = 4 << 10;

type Shard = RwLock<HashMap<sled::IVec, Held, Hasher>>;

/// A key's latest value and where it is in the journal (`None`: read from sled when the store
/// opened, not written since).
#[derive(Clone, Debug)]
struct Held {
    value: sled::IVec,
    loc: Option<Loc>,
}

/// Where cleaning is.
#[derive(Debug, Default)]
struct Cleaner {
    /// The segment being read, and how far.
    at: Option<(u32, u64)>,
    /// Segments read to their end, oldest first: retired after the next sync.
    cleaned: Vec<u32>,
    /// The last cleaning failed (reported once until one succeeds).
    failing: bool,
}

/// See the module doc.
#[derive(Debug)]
pub(super) struct LogMap {
    journal: Journal,
    shards: Vec<Shard>,
    /// Bytes of the records the map points at.
    live: AtomicU64,
    cleaner: Mutex<Cleaner>,
    /// The tree the writes are logged as.
    tree: Logged,
}

impl LogMap {
    /// Opens (creating if needed) the journal in `dir` and reads every key's latest value.
    pub(super) fn open(dir: &Path, tree: Logged) -> std::io::Result<LogMap> {
        let shards: Vec<Shard> = shards();
        let mut live = 0;
        let journal = Journal::open(dir, |segment, record| {
            inserts(record, segment, |key, value, loc| {
                let held = Held {
                    value: value.into(),
                    loc: Some(loc),
                };
                let old = maps::write(&shards[shard_of(hash(key))]).insert(key.into(), held);
                live += u64::from(loc.len);
                if let Some(old) = old.and_then(|held| held.loc) {
                    live -= u64::from(old.len);
                }
            });
        })?;
        Ok(LogMap {
            journal,
            shards,
            live: AtomicU64::new(live),
            cleaner: Mutex::default(),
            tree,
        })
    }

    fn shard(&self, key: &[u8]) -> &Shard {
        &self.shards[shard_of(hash(key))]
    }

    /// The latest value of `key`.
    pub(super) fn get(&self, key: &[u8]) -> Option<sled::IVec> {
        read(self.shard(key))
            .get(key)
            .map(|held| held.value.clone())
    }

    /// How many keys it holds.
    pub(super) fn len(&self) -> usize {
        self.shards.iter().map(|shard| read(shard).len()).sum()
    }

    /// Every key and value, in no particular order.
    pub(super) fn entries(&self) -> Vec<(Vec<u8>, sled::IVec)> {
        let mut out = Vec::new();
        for shard in &self.shards {
            out.extend(
                read(shard)
                    .iter()
                    .map(|(key, held)| (key.to_vec(), held.value.clone())),
            );
        }
        out
    }

    /// Holds `value` for `key` unless the key has one (a record sled held before the journal
    /// existed: anything journaled is newer).
    pub(super) fn hold_if_absent(&self, key: &[u8], value: sled::IVec) {
        write(self.shard(key))
            .entry(key.into())
            .or_insert(Held { value, loc: None });
    }

    fn set(&self, key: &[u8], value: sled::IVec, loc: Option<Loc>) {
        let held = Held { value, loc };
        let old = {
            let mut shard = write(self.shard(key));
            match shard.get_mut(key) {
                Some(slot) => Some(std::mem::replace(slot, held)),
                None => shard.insert(key.into(), held),
            }
        };
        if let Some(loc) = loc {
            self.live.fetch_add(u64::from(loc.len), Ordering::Relaxed);
        }
        if let Some(old) = old.and_then(|held| held.loc) {
            self.live.fetch_sub(u64::from(old.len), Ordering::Relaxed);
        }
    }

    /// Journals batch `seq`'s writes (inserts only), with what cleaning copies in front of them,
    /// unless the journal holds the batch already (a replay).
    pub(super) fn append(&self, seq: u64, ops: Vec<Op>) -> std::io::Result<()> {
        if ops.is_empty() || seq <= self.journal.last_seq() {
            return Ok(());
        }
        let written: u64 = ops
            .iter()
            .map(|op| (op.key.len() + op.value.as_ref().map_or(0, Vec::len) + 10) as u64)
            .sum();
        // Cleaning only keeps the journal small: if it fails (a segment unreadable), the batch
        // is written all the same and the next one tries again.
        let (mut all, finished) = match self.clean((2 * written).max(CLEAN_AT_LEAST)) {
            Ok(cleaned) => {
                lock(&self.cleaner).failing = false;
                cleaned
            }
            Err(err) => {
                let mut cleaner = lock(&self.cleaner);
                if !cleaner.failing {
                    tracing::warn!(journal = self.tree.tree_name(), error = %err, "cleaning a journal failed");
                    cleaner.failing = true;
                }
                (Vec::new(), Vec::new())
            }
        };
        all.extend(ops);
        let locs = self.journal.append(seq, &all)?;
        for (op, loc) in all.into_iter().zip(locs) {
            let value = op.value.unwrap_or_default();
            self.set(&op.key, value.into(), Some(loc));
        }
        lock(&self.cleaner).cleaned.extend(finished);
        Ok(())
    }

    /// Whether the journal holds enough written-over records to clean.
    fn needs_cleaning(&self) -> bool {
        self.journal.bytes() > 2 * self.live.load(Ordering::Relaxed) + self.journal.segment_bytes()
    }

    /// Reads about `budget` bytes of the oldest segments not cleaned yet; the live records there
    /// (to append again) and the segments read to their end.
    fn clean(&self, budget: u64) -> std::io::Result<(Vec<Op>, Vec<u32>)> {
        let mut cleaner = lock(&self.cleaner);
        let (mut copies, mut finished) = (Vec::new(), Vec::new());
        let mut read = 0;
        while read < budget {
            let (segment, at) = match cleaner.at {
                Some(at) => at,
                None => {
                    let last = finished.last().or(cleaner.cleaned.last()).copied();
                    let next = self
                        .journal
                        .sealed()
                        .into_iter()
                        .find(|&n| last.is_none_or(|last| n > last));
                    match next {
                        Some(next) if self.needs_cleaning() => (next, 0),
                        _ => break,
                    }
                }
            };
            // At least a record's header: a piece shorter than one holds no whole record, and
            // would read as damage.
            let want = usize::try_from(budget - read)
                .unwrap_or(usize::MAX)
                .max(wal::HEADER);
            let mut chunk = self.journal.read_raw(segment, at, want)?;
            let (mut records, mut whole) = wal::records(&chunk);
            if whole == 0 && chunk.len() >= wal::HEADER {
                // A record longer than the piece read: read it whole.
                let len = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
                chunk = self
                    .journal
                    .read_raw(segment, at, wal::HEADER + len as usize)?;
                (records, whole) = wal::records(&chunk);
            }
            for record in &records {
                for write in &record.writes {
                    let loc = Loc {
                        segment,
                        at: (at as usize + write.span.start) as u32,
                        len: write.span.len() as u32,
                    };
                    let live = read_held(self, write.key).is_some_and(|h| h.loc == Some(loc));
                    if let (true, Some(value)) = (live, write.value) {
                        copies.push(Op::insert(self.tree, write.key, value.to_vec()));
                    }
                }
            }
            drop(records);
            if whole == 0 {
                if !chunk.is_empty() {
                    // Damage (the file changed under us, or a record the opening read no longer
                    // reads): whatever the map still points at past here is copied from memory.
                    tracing::error!(
                        journal = self.tree.tree_name(),
                        segment,
                        at,
                        "a segment of a journal is damaged; its live records are written again from memory"
                    );
                    copies.extend(self.live_in(segment, at));
                }
                finished.push(segment);
                cleaner.at = None;
            } else {
                cleaner.at = Some((segment, at + whole as u64));
                read += whole as u64;
            }
        }
        Ok((copies, finished))
    }

    /// The writes of the keys whose latest record is in `segment` at `at` or later.
    fn live_in(&self, segment: u32, at: u64) -> Vec<Op> {
        let mut out = Vec::new();
        for shard in &self.shards {
            for (key, held) in read(shard).iter() {
                if held
                    .loc
                    .is_some_and(|loc| loc.segment == segment && u64::from(loc.at) >= at)
                {
                    out.push(Op::insert(self.tree, key.to_vec(), held.value.to_vec()));
                }
            }
        }
        out
    }

    /// The highest batch number the journal holds.
    pub(super) fn last_seq(&self) -> u64 {
        self.journal.last_seq()
    }

    /// Writes the journal's appends to disk without syncing them ([`Journal::write_back`]); or,
    /// once segments wait to be retired, syncs it ([`LogMap::sync`]), so that cleaning frees
    /// their space without waiting for the writer's next checkpoint.
    pub(super) fn write_back(&self) -> std::io::Result<()> {
        if lock(&self.cleaner).cleaned.is_empty() {
            self.journal.write_back()
        } else {
            self.sync()
        }
    }

    /// Syncs the journal, then retires the segments cleaned before the sync began (their files
    /// are deleted by [`LogMap::delete_retired`], without the cleaner's lock).
    pub(super) fn sync(&self) -> std::io::Result<()> {
        let cleaned = lock(&self.cleaner).cleaned.clone();
        self.journal.sync()?;
        if cleaned.is_empty() {
            return Ok(());
        }
        let mut cleaner = lock(&self.cleaner);
        for number in cleaned {
            // Cleaned segments are the oldest, in order; another sync may have retired it.
            if self.journal.oldest_sealed() == Some(number) {
                self.journal.retire_oldest();
            }
            cleaner.cleaned.retain(|&n| n != number);
        }
        Ok(())
    }

    /// Deletes the files of the segments retired so far ([`Journal::delete_retired`]).
    pub(super) fn delete_retired(&self) -> std::io::Result<()> {
        self.journal.delete_retired()
    }

    /// Bytes the journal takes.
    pub(super) fn bytes(&self) -> u64 {
        self.journal.bytes()
    }

    #[cfg(test)]
    fn with_segment_bytes(mut self, bytes: u64) -> LogMap {
        self.journal = self.journal.with_segment_bytes(bytes);
        self
    }
}

fn read_held(map: &LogMap, key: &[u8]) -> Option<Held> {
    read(map.shard(key)).get(key).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(map: &LogMap, seq: u64, key: &str, value: &str) {
        map.append(
            seq,
            vec![Op::insert(
                Logged::Attendees,
                key.as_bytes(),
                value.as_bytes().to_vec(),
            )],
        )
        .unwrap();
    }

    /// A map over a journal in `dir` holding `records` writes of one key (100-byte values) in
    /// segments of `segment` bytes: all but the last garbage.
    fn written_over(dir: &Path, segment: u64, records: u64) -> LogMap {
        {
            let journal = Journal::open(dir, |_, _| {})
                .unwrap()
                .with_segment_bytes(segment);
            for seq in 1..=records {
                let op = Op::insert(Logged::Attendees, b"sms:+1", vec![b'v'; 100]);
                journal.append(seq, &[op]).unwrap();
            }
            journal.sync().unwrap();
        }
        LogMap::open(dir, Logged::Attendees)
            .unwrap()
            .with_segment_bytes(segment)
    }

    fn segments(dir: &Path) -> usize {
        std::fs::read_dir(dir).unwrap().count()
    }

    #[test]
    fn the_latest_value_wins_and_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let map = LogMap::open(dir.path(), Logged::Attendees).unwrap();
        put(&map, 1, "sms:+1", "one");
        put(&map, 2, "sms:+2", "two");
        put(&map, 3, "sms:+1", "uno");
        map.hold_if_absent(b"sms:+1", sled::IVec::from(&b"from sled"[..]));
        map.hold_if_absent(b"sms:+3", sled::IVec::from(&b"from sled"[..]));
        assert_eq!(map.get(b"sms:+1").unwrap(), &b"uno"[..]);
        assert_eq!(map.get(b"sms:+3").unwrap(), &b"from sled"[..]);
        // A batch the journal holds already (a replay) changes nothing.
        put(&map, 3, "sms:+2", "stale");
        assert_eq!(map.get(b"sms:+2").unwrap(), &b"two"[..]);
        map.sync().unwrap();
        drop(map);
        let map = LogMap::open(dir.path(), Logged::Attendees).unwrap();
        assert_eq!(map.len(), 2);
        assert_eq!(map.get(b"sms:+1").unwrap(), &b"uno"[..]);
        assert_eq!(map.get(b"sms:+2").unwrap(), &b"two"[..]);
        let mut entries = map.entries();
        entries.sort();
        assert_eq!(entries[0].0, b"sms:+1");
    }

    /// Writing the same few keys over and over: cleaning keeps the journal near its live size,
    /// and every key reads back its latest value, before and after a reopen.
    #[test]
    fn cleaning_bounds_the_journal_and_keeps_every_latest_value() {
        let dir = tempfile::tempdir().unwrap();
        let segment = 4096;
        let map = LogMap::open(dir.path(), Logged::Attendees)
            .unwrap()
            .with_segment_bytes(segment);
        let value = |key: usize, round: usize| format!("{key}-{round}-{}", "x".repeat(40));
        // A key written once at the start must survive every cleaning.
        put(&map, 1, "sms:+0", "written once");
        let mut seq = 1;
        for round in 0..300 {
            for key in 1..10 {
                seq += 1;
                put(&map, seq, &format!("sms:+{key}"), &value(key, round));
            }
            if round % 10 == 0 {
                map.sync().unwrap();
            }
        }
        map.sync().unwrap();
        map.delete_retired().unwrap();
        // 10 live records of ~70 bytes: without cleaning the journal would be ~200 KiB.
        assert!(
            map.bytes() < 2 * 1000 + 3 * segment,
            "{} bytes",
            map.bytes()
        );
        assert!(
            segments(dir.path()) <= 5,
            "{} segments",
            segments(dir.path())
        );
        let check = |map: &LogMap| {
            assert_eq!(map.get(b"sms:+0").unwrap(), &b"written once"[..]);
            for key in 1..10 {
                let key_bytes = format!("sms:+{key}");
                assert_eq!(
                    map.get(key_bytes.as_bytes()).unwrap(),
                    value(key, 299).as_bytes()
                );
            }
        };
        check(&map);
        drop(map);
        let map = LogMap::open(dir.path(), Logged::Attendees)
            .unwrap()
            .with_segment_bytes(segment);
        assert_eq!(map.len(), 10);
        check(&map);
        // Cleaning goes on without a sync (nothing retired), then the process stops: the copies
        // and the segments they came from are read back in order, and the latest values win.
        for round in 300..340 {
            for key in 1..10 {
                seq += 1;
                put(&map, seq, &format!("sms:+{key}"), &value(key, round));
            }
        }
        drop(map);
        let map = LogMap::open(dir.path(), Logged::Attendees).unwrap();
        assert_eq!(map.get(b"sms:+0").unwrap(), &b"written once"[..]);
        for key in 1..10 {
            let key_bytes = format!("sms:+{key}");
            assert_eq!(
                map.get(key_bytes.as_bytes()).unwrap(),
                value(key, 339).as_bytes()
            );
        }
    }

    /// A batch's piece of cleaning that ends a few bytes into a record's header: the next piece
    /// reads that record whole. (It used to read the few bytes, take them for damage, finish the
    /// segment early and copy every live record past them from memory in one batch: 13,325
    /// records at once, and an error logged, in a load test.)
    #[test]
    fn cleaning_in_pieces_goes_on_where_a_piece_ended() {
        let dir = tempfile::tempdir().unwrap();
        let map = written_over(dir.path(), 8 << 10, 300);
        assert!(map.needs_cleaning());
        let oldest = map.journal.sealed()[0];
        let bytes = map.journal.read_raw(oldest, 0, 64).unwrap();
        let first =
            (wal::HEADER + u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize) as u64;

        let (copies, finished) = map.clean(first + 3).unwrap();

        assert_eq!(
            finished,
            Vec::<u32>::new(),
            "the segment was finished early"
        );
        assert!(copies.is_empty(), "the live record is in the head segment");
        // The first record, then the second read whole (records of the same size).
        assert_eq!(lock(&map.cleaner).at, Some((oldest, 2 * first)));
        assert_eq!(map.get(b"sms:+1").unwrap(), &[b'v'; 100][..]);
    }

    /// Once cleaning is due, a batch cleans about twice what it writes (at least
    /// [`CLEAN_AT_LEAST`]), not a segment at once: cleaning keeps pace with the writes instead
    /// of holding the writer for a burst.
    #[test]
    fn a_batch_cleans_a_piece_in_step_with_what_it_writes() {
        let dir = tempfile::tempdir().unwrap();
        let segment = 64 << 10;
        // ~180 KiB of one key written over: two sealed segments of garbage.
        let map = written_over(dir.path(), segment, 1500);
        assert!(map.needs_cleaning());
        let oldest = map.journal.sealed()[0];

        put(&map, 1501, "sms:+2", "small");

        let (segment_read, at) = lock(&map.cleaner).at.expect("cleaning began");
        assert_eq!(segment_read, oldest);
        // A page's worth of whole records and the one that crosses it: a sixteenth of the
        // segment, not all of it.
        assert!(
            (4096..4096 + 200).contains(&at),
            "read {at} bytes of a {segment}-byte segment"
        );
        assert!(lock(&map.cleaner).cleaned.is_empty());
    }

    /// A sealed segment damaged while the service runs: cleaning writes what the map still
    /// points at there again from memory, so retiring the segment loses nothing.
    #[cfg(unix)]
    #[test]
    fn cleaning_a_damaged_segment_keeps_its_live_records() {
        let dir = tempfile::tempdir().unwrap();
        let map = LogMap::open(dir.path(), Logged::Attendees)
            .unwrap()
            .with_segment_bytes(2048);
        let mut seq = 0;
        for key in 0..40 {
            seq += 1;
            put(
                &map,
                seq,
                &format!("sms:+{key}"),
                &format!("first {key} {}", "y".repeat(40)),
            );
        }
        // Damage the first segment's second half: the records there can no longer be read.
        let first = dir.path().join("00000001.seg");
        let len = std::fs::metadata(&first).unwrap().len();
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&first)
            .unwrap();
        std::os::unix::fs::FileExt::write_all_at(&file, &vec![0xee; (len / 2) as usize], len / 2)
            .unwrap();
        // Writing a few keys over and over makes cleaning due.
        for round in 0..200 {
            seq += 1;
            put(
                &map,
                seq,
                &format!("sms:+{}", round % 3),
                &format!("round {round}"),
            );
            if round % 20 == 0 {
                map.sync().unwrap();
            }
        }
        map.sync().unwrap();
        map.delete_retired().unwrap();
        assert!(
            !first.exists(),
            "the damaged segment was cleaned and retired"
        );
        drop(map);
        let map = LogMap::open(dir.path(), Logged::Attendees).unwrap();
        assert_eq!(map.len(), 40);
        for key in 3..40 {
            let expected = format!("first {key} {}", "y".repeat(40));
            assert_eq!(
                map.get(format!("sms:+{key}").as_bytes()).unwrap(),
                expected.as_bytes()
            );
        }
    }
}
