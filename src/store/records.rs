//! The records every message writes, kept in journals ([`super::journal`]) with an index in
//! memory, instead of in sled: transcript turns (folder `transcripts/`), processed messages'
//! idempotency records (folder `processed/`), SMS attendees' records (folder `attendees/`, a
//! [`LogMap`]: the latest record of each attendee in memory), routing tasks and the messages
//! added to them (folder `tasks/`, a [`LogMap`] too) and the intent log (folder `intent_log/`,
//! one entry per batch of turns, read by time range).
//!
//! The writer hands every logged batch's writes to those trees ([`Logged::Transcript`],
//! [`Logged::Idempotency`], [`Logged::Attendees`] for SMS attendees, [`Logged::Tasks`],
//! [`Logged::IntentLog`]) to [`Records::append`] instead of sled, right after the batch is in
//! the write-ahead log; everything else still goes to sled. The tree numbers of the log keep
//! their meaning, so a log written before journals existed replays into them.
//!
//! What sled still holds, read beside the journals:
//! - Transcript entries written in sled transactions (reminders, announcements, schedule-change
//!   notices, each atomic with its outbox message) and any written before journals existed. Every
//!   transcript key ends in an id from one counter (`sled::Db::generate_id`), so
//!   [`super::Store::transcript`] merges both by id.
//! - Idempotency records from before journals existed, until they expire.
//! - SMS attendees' records from before journals existed, read until the attendee writes again
//!   (the store fills the map with them when it opens, never over a journaled one); tasks and
//!   their messages from before their journal, likewise.
//! - Intent log entries from before journals existed, until they expire.
//!
//! Invariants:
//! - The indexes change only after the journal holds the write, in the writer's thread, before
//!   the batch is answered; so a reader never misses an acknowledged record.
//! - The processed index is exact: a key's hash leads to every record with that hash, and the
//!   record read back is compared by its key.
//! - Idempotency records are appended in batch order and expire by age, so the oldest segment
//!   of `processed/` is retired once none of its records is live. Transcript segments are kept.
//! - An intent log entry older than the last expiry's limit is never read, and is gone from disk
//!   within [`INTENT_LOG_SEGMENT_SPAN`] of it: the head segment of `intent_log/` is sealed once
//!   its entries span that long (or all are expired), and a sealed segment is retired once its
//!   newest entry is expired.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use jiff::Timestamp;

use super::journal::{Journal, Loc, inserts};
use super::logmap::LogMap;
use super::maps::{Growing, Shard, hash, lock, read, shard_of, shards, write};
use super::wal::{Logged, Op};

/// The prefix of the attendee keys kept here: SMS attendees (`Phone::attendee_key`). Their
/// number is bounded by the phones that texted us; anyone can open web chats (300 a minute from
/// one address by default), so those attendees, like local ones, stay in sled.
pub(super) const HELD_ATTENDEES: &[u8] = b"sms:";

/// Whether an attendee's record is kept here (else in sled).
pub(super) fn holds_attendee(key: &[u8]) -> bool {
    key.starts_with(HELD_ATTENDEES)
}

/// How long the entries of one intent log segment may span before it is sealed: entries are
/// gone from disk at most this long after they expire.
pub(super) const INTENT_LOG_SEGMENT_SPAN: jiff::SignedDuration =
    jiff::SignedDuration::from_hours(24);

/// How long the background sync spends on the idempotency index's next tables a tick
/// ([`Records::prepare_growth`]): ~6 % of a CPU at most, so that a wave of shards about to grow
/// does not take a CPU from the request thread (whole at once, a wave's tables took 25-40 % of
/// one for seconds). At 20,000 messages a second a wave of 28,672-entry shards is ready in
/// ~6 s, within the ~11 s before its first shard grows.
const PREPARING_BUDGET: std::time::Duration = std::time::Duration::from_millis(3);

/// Whether this write goes to a journal (else to sled).
pub(super) fn journaled(tree: Logged, key: &[u8]) -> bool {
    match tree {
        Logged::Transcript | Logged::Idempotency | Logged::IntentLog | Logged::Tasks => true,
        Logged::Attendees => holds_attendee(key),
        _ => false,
    }
}

/// A transcript key's attendee part and entry id (the key is the attendee's key, `0xff`, the id
/// big-endian; see `super::transcript_prefix`).
pub(super) fn split_transcript_key(key: &[u8]) -> Option<(&[u8], u64)> {
    let (attendee, rest) = key.split_at_checked(key.len().checked_sub(9)?)?;
    let (&separator, id) = rest.split_first()?;
    (separator == 0xff).then_some((attendee, u64::from_be_bytes(id.try_into().ok()?)))
}

/// One transcript key's record: its id, where it is and how many entries it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Turn {
    pub id: u64,
    pub loc: Loc,
    pub entries: u32,
}

/// The idempotency records whose keys share a hash: almost always one, held inline, so that
/// indexing a message allocates nothing (a `Vec` was a 96-byte allocation per message, most of
/// the index's memory).
type Slots = smallvec::SmallVec<[Slot; 1]>;

/// An idempotency record's place and age.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    loc: Loc,
    /// When the message was processed, in microseconds since the epoch.
    at: i64,
}

/// The `at` of an idempotency record's value (a [`Processed`](super::Processed) in any of its
/// formats), without its replies.
pub(super) fn processed_at(value: &[u8]) -> Option<i64> {
    use super::{Compact, Processed, Versioned};
    #[derive(serde::Deserialize)]
    struct At {
        at: Timestamp,
    }
    let at = match value.split_first()? {
        // Both binary formats begin with the time.
        (&v, rest) if v == Processed::COMPACT || Some(v) == Processed::OLDER_COMPACT => {
            super::binary::get_processed_at(&mut super::binary::In::new(rest)).ok()?
        }
        (&Processed::VERSION, json) => serde_json::from_slice::<At>(json).ok()?.at,
        _ => return None,
    };
    Some(at.as_microsecond())
}

/// When an intent log entry was written, from its key (`super::intent_log_key`: microseconds
/// since the epoch, big-endian, then an id).
pub(super) fn intent_log_at(key: &[u8]) -> Option<i64> {
    let micros = u64::from_be_bytes(key.get(..8)?.try_into().ok()?);
    i64::try_from(micros).ok()
}

/// The entries of one intent log segment: how many, the earliest and the latest (µs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    entries: usize,
    first: i64,
    last: i64,
}

impl Span {
    fn note(spans: &mut BTreeMap<u32, Span>, segment: u32, key: &[u8]) {
        let Some(at) = intent_log_at(key) else {
            tracing::warn!("a journaled intent log key has no time; it is not indexed");
            return;
        };
        spans
            .entry(segment)
            .and_modify(|span| {
                span.entries += 1;
                span.first = span.first.min(at);
                span.last = span.last.max(at);
            })
            .or_insert(Span {
                entries: 1,
                first: at,
                last: at,
            });
    }
}

/// Both journals and their indexes: see the module doc.
#[derive(Debug)]
pub(super) struct Records {
    transcripts: Journal,
    processed: Journal,
    /// SMS attendees' records, the latest of each in memory (folder `attendees/`).
    pub(super) attendees: LogMap,
    /// Routing tasks and the messages added to them, keyed as in sled's `tasks` tree (folder
    /// `tasks/`). Read whole only when routing loads; the board holds the tasks meanwhile.
    pub(super) tasks: LogMap,
    /// Attendee key → its journaled transcript records, oldest first.
    turns: Vec<Shard<sled::IVec, Vec<Turn>>>,
    /// Hash of an idempotency key → the records with that hash.
    slots: Growing<u64, Slots>,
    /// Live idempotency records per segment of `processed/`.
    live: Mutex<BTreeMap<u32, usize>>,
    intent_log: Journal,
    /// The entries of each segment of `intent_log/` that has any.
    intent_spans: Mutex<BTreeMap<u32, Span>>,
    /// Intent log entries before this (µs) are expired: never read, whatever their segment.
    intent_expired: AtomicI64,
    /// A temporary store's folder, removed with it.
    temporary: Option<PathBuf>,
}

impl Records {
    /// Opens (creating if needed) the journals in `dir` and indexes what they hold.
    pub(super) fn open(dir: &Path) -> std::io::Result<Records> {
        let turns = shards();
        let slots = Growing::new();
        let live = Mutex::new(BTreeMap::new());
        // Journals hold inserts only (see `append`).
        let transcripts = Journal::open(&dir.join("transcripts"), |segment, record| {
            inserts(record, segment, |key, value, loc| {
                index_turn(&turns, key, value, loc)
            });
        })?;
        let processed = Journal::open(&dir.join("processed"), |segment, record| {
            inserts(record, segment, |key, value, loc| {
                index_slot(&slots, &mut lock(&live), key, value, loc);
            });
        })?;
        let attendees = LogMap::open(&dir.join("attendees"), Logged::Attendees)?;
        let tasks = LogMap::open(&dir.join("tasks"), Logged::Tasks)?;
        let mut spans = BTreeMap::new();
        let intent_log = Journal::open(&dir.join("intent_log"), |segment, record| {
            inserts(record, segment, |key, _, _| {
                Span::note(&mut spans, segment, key);
            });
        })?;
        Ok(Records {
            transcripts,
            processed,
            attendees,
            tasks,
            turns,
            slots,
            live,
            intent_log,
            intent_spans: Mutex::new(spans),
            intent_expired: AtomicI64::new(i64::MIN),
            temporary: None,
        })
    }

    /// Journals in a new folder of the system's temporary directory, removed when dropped.
    pub(super) fn temporary() -> std::io::Result<Records> {
        let dir = super::wal::temporary_path("records")?;
        let mut records = Records::open(&dir)?;
        records.temporary = Some(dir);
        Ok(records)
    }

    /// Journals the writes of batch `seq` to the trees kept here; returns the others, for sled.
    /// During a replay, a journal that holds the batch already skips it. These records are
    /// written once and expire; a removal of one is refused (nothing writes one).
    pub(super) fn append(&self, seq: u64, ops: Vec<Op>) -> std::io::Result<Vec<Op>> {
        if ops
            .iter()
            .any(|op| journaled(op.tree, &op.key) && op.value.is_none())
        {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "transcript, idempotency, SMS attendee, task and intent log records are never removed one by one",
            ));
        }
        let (mut transcript, mut processed, mut attendees) = (Vec::new(), Vec::new(), Vec::new());
        let (mut intents, mut tasks) = (Vec::new(), Vec::new());
        let mut rest = Vec::with_capacity(ops.len());
        for op in ops {
            match op.tree {
                _ if !journaled(op.tree, &op.key) => rest.push(op),
                Logged::Transcript => transcript.push(op),
                Logged::Idempotency => processed.push(op),
                Logged::IntentLog => intents.push(op),
                Logged::Tasks => tasks.push(op),
                _ => attendees.push(op),
            }
        }
        self.attendees.append(seq, attendees)?;
        self.tasks.append(seq, tasks)?;
        if !intents.is_empty() && seq > self.intent_log.last_seq() {
            self.append_intents(seq, &intents)?;
        }
        if !transcript.is_empty() && seq > self.transcripts.last_seq() {
            let locs = self.transcripts.append(seq, &transcript)?;
            for (op, loc) in transcript.iter().zip(locs) {
                let value = op.value.as_deref().unwrap_or_default();
                index_turn(&self.turns, &op.key, value, loc);
            }
        }
        if !processed.is_empty() && seq > self.processed.last_seq() {
            let locs = self.processed.append(seq, &processed)?;
            let mut live = lock(&self.live);
            for (op, loc) in processed.iter().zip(locs) {
                let value = op.value.as_deref().unwrap_or_default();
                index_slot(&self.slots, &mut live, &op.key, value, loc);
            }
        }
        Ok(rest)
    }

    /// Journals intent log entries, sealing the head segment first once its entries span
    /// [`INTENT_LOG_SEGMENT_SPAN`].
    fn append_intents(&self, seq: u64, entries: &[Op]) -> std::io::Result<()> {
        let mut spans = lock(&self.intent_spans);
        let head = self.intent_log.head_segment();
        let newest = entries.iter().filter_map(|op| intent_log_at(&op.key)).max();
        if let (Some(span), Some(newest)) = (spans.get(&head), newest)
            && newest.saturating_sub(span.first) >= INTENT_LOG_SEGMENT_SPAN.as_micros() as i64
        {
            self.intent_log.rotate()?;
        }
        let locs = self.intent_log.append(seq, entries)?;
        for (op, loc) in entries.iter().zip(locs) {
            Span::note(&mut spans, loc.segment, &op.key);
        }
        Ok(())
    }

    /// Shows `visit` every journaled intent log entry (key, value) written at `since` or later,
    /// and not expired, oldest segment first.
    pub(super) fn intent_log(
        &self,
        since: Timestamp,
        mut visit: impl FnMut(&[u8], &[u8]),
    ) -> std::io::Result<()> {
        let since = since
            .as_microsecond()
            .max(self.intent_expired.load(Ordering::Relaxed));
        let segments: Vec<u32> = lock(&self.intent_spans)
            .iter()
            .filter(|(_, span)| span.last >= since)
            .map(|(&segment, _)| segment)
            .collect();
        for segment in segments {
            self.intent_log.visit(segment, |record| {
                inserts(record, segment, |key, value, _| {
                    if intent_log_at(key).is_some_and(|at| at >= since) {
                        visit(key, value);
                    }
                });
            })?;
        }
        Ok(())
    }

    /// Expires the intent log entries written before `before`: from now on they are not read,
    /// and the segments holding only such entries are retired (the head is sealed first when all
    /// of its entries are expired). Returns how many entries went with their segments.
    pub(super) fn expire_intent_log(&self, before: Timestamp) -> std::io::Result<usize> {
        let before = before.as_microsecond();
        self.intent_expired.fetch_max(before, Ordering::Relaxed);
        let mut spans = lock(&self.intent_spans);
        let head = self.intent_log.head_segment();
        if spans.get(&head).is_some_and(|span| span.last < before) {
            self.intent_log.rotate()?;
        }
        let mut forgotten = 0;
        while let Some(oldest) = self.intent_log.oldest_sealed() {
            if spans.get(&oldest).is_some_and(|span| span.last >= before) {
                break;
            }
            self.intent_log.retire_oldest();
            forgotten += spans.remove(&oldest).map_or(0, |span| span.entries);
        }
        drop(spans);
        self.intent_log.delete_retired()?;
        Ok(forgotten)
    }

    /// The highest batch number any journal holds.
    pub(super) fn last_seq(&self) -> u64 {
        self.transcripts
            .last_seq()
            .max(self.processed.last_seq())
            .max(self.intent_log.last_seq())
            .max(self.attendees.last_seq())
            .max(self.tasks.last_seq())
    }

    /// Syncs the journals: after this, the write-ahead log may start over.
    pub(super) fn sync(&self) -> std::io::Result<()> {
        self.transcripts.sync()?;
        self.processed.sync()?;
        self.intent_log.sync()?;
        self.attendees.sync()?;
        self.tasks.sync()
    }

    /// Writes the journals' appends so far to disk without syncing them ([`Journal::write_back`]),
    /// so that the checkpoint's [`Records::sync`] finds little to write.
    pub(super) fn write_back(&self) -> std::io::Result<()> {
        let results = [
            self.transcripts.write_back(),
            self.processed.write_back(),
            self.intent_log.write_back(),
            self.attendees.write_back(),
            self.tasks.write_back(),
        ];
        results.into_iter().collect()
    }

    /// Deletes the files of retired segments (the store's background sync calls it, away from
    /// the locks the writer takes; the expiry deletes what it retires itself).
    pub(super) fn delete_retired(&self) -> std::io::Result<()> {
        let results = [
            self.transcripts.delete_retired(),
            self.processed.delete_retired(),
            self.intent_log.delete_retired(),
            self.attendees.delete_retired(),
            self.tasks.delete_retired(),
        ];
        results.into_iter().collect()
    }

    /// Prepares the bigger tables of the idempotency index's shards about to grow, a piece at a
    /// time (the store's background sync calls it every 50 ms): see [`Growing`].
    pub(super) fn prepare_growth(&self) {
        self.slots.prepare(PREPARING_BUDGET);
    }

    /// The idempotency record of `key`, if one is live.
    pub(super) fn processed(&self, key: &[u8]) -> std::io::Result<Option<Vec<u8>>> {
        let hash = hash(key);
        let candidates = read(self.slots.shard(hash).0)
            .get(&hash)
            .cloned()
            .unwrap_or_default();
        for slot in candidates {
            if let Some((stored, Some(value))) = self.processed.read(slot.loc)?
                && stored == key
            {
                return Ok(Some(value));
            }
        }
        Ok(None)
    }

    /// How many idempotency records are live.
    pub(super) fn processed_len(&self) -> usize {
        lock(&self.live).values().sum()
    }

    /// Forgets the idempotency records processed before `before`, and retires the segments left
    /// without a live record. Returns how many records it forgot.
    pub(super) fn expire_processed(&self, before: Timestamp) -> std::io::Result<usize> {
        let before = before.as_microsecond();
        let mut forgotten = 0;
        for shard in self.slots.shards() {
            // `live` one shard at a time: it keeps the writer from growing the shard meanwhile
            // (`index_slot`), and the writer waits for one shard's scan at most.
            let mut live = lock(&self.live);
            write(shard).retain(|_, slots| {
                slots.retain(|slot| {
                    let keep = slot.at >= before;
                    if !keep {
                        forgotten += 1;
                        if let Some(n) = live.get_mut(&slot.loc.segment) {
                            *n = n.saturating_sub(1);
                        }
                    }
                    keep
                });
                !slots.is_empty()
            });
        }
        let mut live = lock(&self.live);
        while let Some(oldest) = self.processed.oldest_sealed() {
            if live.get(&oldest).is_some_and(|&n| n > 0) {
                break;
            }
            self.processed.retire_oldest();
            live.remove(&oldest);
        }
        // The writer takes `live` for every idempotency record: delete without it.
        drop(live);
        self.processed.delete_retired()?;
        Ok(forgotten)
    }

    /// The journaled transcript records of an attendee, by id (the order they were made in;
    /// the journal's order can differ a little, when two changes for one attendee were queued
    /// at once), with their values.
    pub(super) fn transcript(&self, attendee: &[u8]) -> std::io::Result<Vec<(u64, Vec<u8>)>> {
        let mut turns = self.turns_of(attendee);
        turns.sort_by_key(|turn| turn.id);
        let mut out = Vec::with_capacity(turns.len());
        for turn in turns {
            if let Some((_, Some(value))) = self.transcripts.read(turn.loc)? {
                out.push((turn.id, value));
            }
        }
        Ok(out)
    }

    /// The journaled transcript records of an attendee, oldest first.
    pub(super) fn turns_of(&self, attendee: &[u8]) -> Vec<Turn> {
        read(&self.turns[shard_of(hash(attendee))])
            .get(attendee)
            .cloned()
            .unwrap_or_default()
    }

    /// Bytes the journals take on disk.
    pub(super) fn size(&self) -> u64 {
        self.transcripts.bytes()
            + self.processed.bytes()
            + self.intent_log.bytes()
            + self.attendees.bytes()
            + self.tasks.bytes()
    }
}

impl Drop for Records {
    fn drop(&mut self) {
        if let Some(dir) = &self.temporary {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Indexes one transcript record.
fn index_turn(turns: &[Shard<sled::IVec, Vec<Turn>>], key: &[u8], value: &[u8], loc: Loc) {
    let Some((attendee, id)) = split_transcript_key(key) else {
        tracing::warn!("a journaled transcript key has no entry id; it is not indexed");
        return;
    };
    let turn = Turn {
        id,
        loc,
        entries: super::TurnEntries::count(value) as u32,
    };
    let mut shard = write(&turns[shard_of(hash(attendee))]);
    match shard.get_mut(attendee) {
        Some(list) => list.push(turn),
        None => {
            shard.insert(attendee.into(), vec![turn]);
        }
    }
}

/// Indexes one idempotency record. The writer stores a key only when it has none, so a key has
/// one record; records of other keys with the same hash are kept beside it. `live` is the
/// records' `live`, locked: holding it keeps expiry from changing the shard while it grows.
fn index_slot(
    slots: &Growing<u64, Slots>,
    live: &mut BTreeMap<u32, usize>,
    key: &[u8],
    value: &[u8],
    loc: Loc,
) {
    let Some(at) = processed_at(value) else {
        tracing::warn!("a journaled idempotency record is unreadable; it is not indexed");
        return;
    };
    let hash = hash(key);
    let (shard, index) = slots.shard(hash);
    slots.make_room(index);
    write(shard).entry(hash).or_default().push(Slot { loc, at });
    *live.entry(loc.segment).or_default() += 1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Compact, Processed, Reply};

    fn processed(sid: &str, at: Timestamp, text: String) -> Op {
        let replies = vec![Reply {
            text,
            sessions: Vec::new(),
        }];
        let record = Processed { at, replies }.encode_compact();
        Op::insert(Logged::Idempotency, sid, record)
    }

    #[test]
    fn expired_records_are_forgotten_and_their_segment_retired() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = Timestamp::from_second(1_800_000_000).unwrap();
        let t1 = t0 + jiff::SignedDuration::from_hours(1);
        let records = Records::open(dir.path()).unwrap();
        // A record filling the first segment, so the next one starts another.
        let big = "x".repeat(64 << 20);
        records.append(1, vec![processed("SM1", t0, big)]).unwrap();
        records
            .append(2, vec![processed("SM2", t1, "two".into())])
            .unwrap();
        let segments = || {
            std::fs::read_dir(dir.path().join("processed"))
                .unwrap()
                .count()
        };
        assert_eq!(segments(), 2);
        assert_eq!(records.processed_len(), 2);
        assert!(records.processed(b"SM1").unwrap().is_some());

        assert_eq!(records.expire_processed(t0).unwrap(), 0);
        assert_eq!(records.expire_processed(t1).unwrap(), 1);
        assert_eq!(records.processed(b"SM1").unwrap(), None);
        assert_eq!(segments(), 1, "the first segment has nothing live");
        let two = records.processed(b"SM2").unwrap().unwrap();
        assert_eq!(Processed::decode_any(&two).unwrap().replies[0].text, "two");
        // A key never stored, and one whose hash is stored but not the key itself, are absent.
        assert_eq!(records.processed(b"SM3").unwrap(), None);
        records.sync().unwrap();
        drop(records);

        let records = Records::open(dir.path()).unwrap();
        assert_eq!(records.processed_len(), 1);
        assert!(records.processed(b"SM2").unwrap().is_some());
        // The journal goes on from the last batch, whose segment was kept.
        assert_eq!(records.processed.last_seq(), 2);
    }

    #[test]
    fn keys_sharing_a_hash_each_find_their_own_record() {
        let at = Timestamp::from_second(1_800_000_000).unwrap();
        let records = Records::temporary().unwrap();
        records
            .append(1, vec![processed("SM1", at, "one".into())])
            .unwrap();
        records
            .append(2, vec![processed("SM2", at, "two".into())])
            .unwrap();
        // Plant SM2's record under SM1's hash too, as a colliding key would put it: SM1's slots
        // then hold two records and spill from inline storage to the heap.
        let (one, two) = (hash(b"SM1"), hash(b"SM2"));
        let planted = read(records.slots.shard(two).0)[&two][0];
        write(records.slots.shard(one).0)
            .get_mut(&one)
            .unwrap()
            .insert(0, planted);
        assert!(read(records.slots.shard(one).0)[&one].spilled());

        let text = |key: &[u8]| {
            let value = records.processed(key).unwrap().unwrap();
            Processed::decode_any(&value).unwrap().replies[0]
                .text
                .clone()
        };
        assert_eq!(text(b"SM1"), "one", "the other key's record is skipped");
        assert_eq!(text(b"SM2"), "two");
        assert_eq!(records.expire_processed(at).unwrap(), 0);
        assert_eq!(
            records
                .expire_processed(at + jiff::SignedDuration::from_secs(1))
                .unwrap(),
            3,
            "every slot expires, the planted one included"
        );
        assert_eq!(records.processed(b"SM1").unwrap(), None);
    }

    #[test]
    fn a_removal_of_a_journaled_record_is_refused() {
        let records = Records::temporary().unwrap();
        let err = records
            .append(1, vec![Op::remove(Logged::Idempotency, "SM1")])
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        // Other trees' writes are left to sled.
        let rest = records
            .append(2, vec![Op::remove(Logged::OptOuts, "+1555")])
            .unwrap();
        assert_eq!(rest, [Op::remove(Logged::OptOuts, "+1555")]);
        assert_eq!(records.processed_len(), 0);
    }

    #[test]
    fn intent_log_entries_expire_and_their_segments_are_retired() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = Timestamp::from_second(1_800_000_000).unwrap();
        let hours = |h: i64| t0 + jiff::SignedDuration::from_hours(h);
        let entry = |at: Timestamp, id: u64| {
            Op::insert(
                Logged::IntentLog,
                crate::store::intent_log_key(at, id).to_vec(),
                format!("entry {id}").into_bytes(),
            )
        };
        let seen = |records: &Records, since: Timestamp| {
            let mut values = Vec::new();
            records
                .intent_log(since, |_, value| {
                    values.push(String::from_utf8(value.to_vec()).unwrap());
                })
                .unwrap();
            values
        };
        let segments = || {
            std::fs::read_dir(dir.path().join("intent_log"))
                .unwrap()
                .count()
        };
        let records = Records::open(dir.path()).unwrap();
        let rest = records.append(1, vec![entry(t0, 1)]).unwrap();
        assert!(rest.is_empty(), "intent log entries are journaled");
        records.append(2, vec![entry(hours(1), 2)]).unwrap();
        assert_eq!(segments(), 1);
        // An entry a day after the head's first one goes to a new segment.
        records.append(3, vec![entry(hours(25), 3)]).unwrap();
        assert_eq!(segments(), 2);
        assert_eq!(seen(&records, t0), ["entry 1", "entry 2", "entry 3"]);
        assert_eq!(seen(&records, hours(1)), ["entry 2", "entry 3"]);

        // Expired entries are not read, even while their segment holds newer ones.
        assert_eq!(
            records
                .expire_intent_log(hours(0) + jiff::SignedDuration::from_mins(30))
                .unwrap(),
            0
        );
        assert_eq!(seen(&records, t0), ["entry 2", "entry 3"]);
        assert_eq!(segments(), 2);
        // A segment whose newest entry is expired is retired.
        assert_eq!(records.expire_intent_log(hours(2)).unwrap(), 2);
        assert_eq!(segments(), 1);
        assert_eq!(seen(&records, t0), ["entry 3"]);
        // When every entry of the head is expired, the head is sealed and retired too.
        assert_eq!(records.expire_intent_log(hours(26)).unwrap(), 1);
        assert_eq!(segments(), 1, "a new, empty head");
        assert!(seen(&records, t0).is_empty());
        assert_eq!(records.expire_intent_log(hours(27)).unwrap(), 0);
        assert_eq!(segments(), 1, "an empty head is not sealed again");
        records.sync().unwrap();
        drop(records);

        let records = Records::open(dir.path()).unwrap();
        assert!(seen(&records, t0).is_empty());
        // A replayed batch the journal held is skipped; the next one is journaled.
        records.append(3, vec![entry(hours(25), 3)]).unwrap();
        records.append(4, vec![entry(hours(28), 4)]).unwrap();
        assert_eq!(seen(&records, t0), ["entry 4"]);
        // A removal is refused, like the other journals'.
        let err = records
            .append(
                5,
                vec![Op::remove(
                    Logged::IntentLog,
                    crate::store::intent_log_key(hours(28), 4).to_vec(),
                )],
            )
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    }

    #[test]
    fn transcript_keys_split_into_attendee_and_id() {
        let mut key = b"sms:+1555".to_vec();
        key.push(0xff);
        key.extend_from_slice(&7u64.to_be_bytes());
        assert_eq!(split_transcript_key(&key), Some((&b"sms:+1555"[..], 7)));
        assert_eq!(split_transcript_key(b"short"), None);
        key[9] = b'x';
        assert_eq!(split_transcript_key(&key), None);
    }
}
