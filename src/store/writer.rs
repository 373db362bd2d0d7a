//! The store's writer: one thread commits changes (conversation turns, routing saves, outbox
//! entries, ...) in batches, with one append to the write-ahead log ([`super::wal`]) and one
//! `fdatasync` for everyone waiting (group commit).
//!
//! Why a thread and a log of its own. In sled 0.34 every transaction seals the log's IO buffer
//! twice (`PageCache::pin_log`), each sealed buffer is a `pwrite` and a `sync_file_range` on
//! sled's IO thread pool, that pool wakes every idle IO thread for each job, and a `flush` writes
//! and syncs whatever sled has buffered. Measured at one transaction and flush per message, this
//! cost more CPU than everything else a message does (see BENCHMARKS.md). So a caller prepares
//! its change (everything encoded, ids drawn) and hands it over; the thread takes every job
//! queued, resolves the changes in order (idempotency and reminder checks) into plain writes,
//! appends them to the log as one record, syncs it, appends the transcript, idempotency, intent
//! log and SMS attendee records to their journals ([`super::records`]), applies the rest to sled
//! with plain inserts, and answers everyone. sled is flushed only at a checkpoint (when someone
//! needs it durable, or the log has grown), after which the log starts over. Under load a batch
//! grows by itself, because changes queue while the previous batch is written; at rest a batch
//! is one change and nobody waits for a timer. The thread asks the kernel for a short time
//! slice ([`crate::sched`]), so that it runs as soon as it wakes instead of queueing behind the
//! connection threads that wait for it.
//!
//! Invariants:
//! - A change is answered only after its batch's log record is synced and applied to the
//!   journals and sled: an acknowledged change is on disk, and readers see it before its writer
//!   hears back.
//! - Nothing reaches sled or a journal before its record is in the log, so neither holds part of
//!   a batch the log does not hold whole. A checkpoint syncs the journals and flushes sled before
//!   the log starts over; replay gives each journal the batches numbered above its last one.
//! - After applying a batch that writes to sled the writer records its sequence number in `meta`
//!   (the `wal` key), after the batch's writes, and a checkpoint records the last batch's number
//!   before it flushes. sled 0.34 recovers a prefix of its own log (recovery stops at the first
//!   torn message), so if sled holds a write made after a batch was applied it holds the whole
//!   batch and its number; [`replay`] applies only batches with a higher number, and never puts
//!   back an older value over a later write (a routing save, an erasure). A batch that writes
//!   only journals (a plain SMS message) leaves sled alone: the writer goes on from the highest
//!   number sled, the log or a journal holds.
//! - A change's idempotency check sees the changes before it in the same batch, so a redelivery
//!   queued beside its original is still answered as a duplicate, and a duplicate writes nothing.
//! - If the log cannot be written, the batch fails whole and the thread stops: later calls fail
//!   and `/readyz` reports the store unavailable (fail-stop; a restart replays the log).
//!
//! Writers outside the log (sled transactions that read and decide: delivery statuses, reminder
//! firing, agenda replacement) write sled themselves and call [`Writer::durable`], which makes
//! the next batch a checkpoint. This is also how concierge avoids `flush_async`, which deadlocks
//! when called concurrently in sled 0.34 (spacejam/sled#1308).

use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use prometheus_client::metrics::histogram::Histogram;
use rustc_hash::FxHashMap;

use super::StoreError;
use super::notices::{Moved, ReminderKey, Schedule, due_of};
use super::records::{self, Records};
use super::resident::Resident;
use super::wal::{Batch, Logged, Op, Wal};

/// The most jobs one batch takes; the rest wait for the next one.
const MAX_BATCH: usize = 1024;

/// The least time from one batch's start to the next one's, when the previous batch had company.
/// It bounds the batches (and their `fdatasync`) at 2,000 a second under load and adds at most
/// this much to a message's wait (nothing when the writer was idle). Measured with `concierge
/// load` (64 connections, two interleaved runs each), once transcripts and idempotency records
/// went to journals: 0.25 ms 29,377 / 27,509 req/s; 0.5 ms 29,140 / 28,401; 1 ms 26,443 /
/// 25,124; none 28,441 / 26,486; open loop at 15,000 req/s p99 28.1 ms at 0.5 ms, 35.9 ms at
/// 1 ms. (With every record in sled, 1 ms was best: 17,300-17,900 against 12,700-17,400.)
/// On a long-running service (`load --no-baseline --rate 20000 --duration 8 --runs 24`, tests
/// interleaved, BENCHMARKS.md step 58), runs with p99 within 10 ms: 0.5 ms 150 of 168; 1 ms 36
/// of 48 (half the syncs, more requests in flight); 0.25 ms 67 of 72 and none 61 of 72, at 37-40
/// and 48-49 µs of CPU a request against 33-37 (two and four times the syncs).
pub const BATCH_SPACING: Duration = Duration::from_micros(500);

/// The log's size that makes the next batch a checkpoint (sled flushed, log started over). It bounds
/// the log on disk and the work of a replay after a crash.
const CHECKPOINT_BYTES: u64 = 64 << 20;

/// How often the journals' appends are written out (not synced: [`Records::write_back`]), and the
/// write-ahead log grown ahead of its appends ([`super::wal::Space::extend_ahead`]), in the
/// background. The write-out is so that a checkpoint finds little to write: without it, the
/// journals' sync at a checkpoint wrote everything appended since the last one and held the
/// writer 14-34 ms (measured at 15,000 req/s), which was an open loop's p99. Every 250 ms
/// instead: 46 of 48 long runs within 10 ms against 150 of 168 (no difference resolved, step 58).
const JOURNAL_SYNC_EVERY: Duration = Duration::from_millis(50);

/// A log sync slower than this is logged as a warning: the disk is stalling, and every message
/// waits for it (etcd warns of a slow WAL `fdatasync` the same way, at 1 s; concierge's
/// acknowledgements aim at 10 ms).
const SLOW_SYNC: Duration = Duration::from_millis(100);

/// The bounds of [`CommitTimes`]' buckets, in seconds.
pub const COMMIT_BUCKETS: [f64; 15] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5,
];

/// How long the writer's steps take, for the metrics listener: the log's append with its
/// `fdatasync` (what the disk costs every acknowledged message), and a whole batch (resolving,
/// logging, journals, sled, a checkpoint when due). Under load a message waits about one batch
/// in the queue and one for its own, so the batch histogram bounds what the store adds to a
/// request's latency, and a disk stall shows in both (BENCHMARKS.md, SMS webhook step 50).
#[derive(Clone, Debug)]
pub struct CommitTimes {
    pub log_sync: Histogram,
    pub batch: Histogram,
}

impl Default for CommitTimes {
    fn default() -> CommitTimes {
        // 50 µs to 2.5 s in steps of 1, 2.5, 5: 10 ms (the p99 concierge aims at) is a bound.
        let buckets = || Histogram::new(COMMIT_BUCKETS.iter().copied());
        CommitTimes {
            log_sync: buckets(),
            batch: buckets(),
        }
    }
}

/// The `meta` key under which the sequence number of the last batch applied to sled is kept.
pub(super) const APPLIED_KEY: &[u8] = b"wal";

/// One change, encoded by its caller.
#[derive(Debug, Default)]
pub(super) struct Change {
    /// Written only if this idempotency key was never stored: the key and its record.
    pub idempotency: Option<(Vec<u8>, Vec<u8>)>,
    pub ops: Vec<Op>,
    /// Pairs (session, attendee) whose pending reminder goes.
    pub unremind: Vec<Vec<u8>>,
    /// Reminders to schedule, unless their pair was reminded already.
    pub remind: Vec<ReminderKey>,
    /// The message's reading for the intent log (JSON of an `IntentEvent`), and when. A batch
    /// writes one intent log entry for all its turns: one journal write instead of one per turn.
    pub intent: Option<(jiff::Timestamp, Vec<u8>)>,
}

impl Change {
    pub(super) fn ops(ops: Vec<Op>) -> Change {
        Change {
            ops,
            ..Change::default()
        }
    }
}

/// What became of a change.
#[derive(Debug)]
pub(super) enum Outcome {
    Done,
    /// Its idempotency key was stored before: nothing was written; the stored record.
    Duplicate(Vec<u8>),
}

/// Where the writer writes: the trees indexed by [`Logged`], `meta` for the applied mark, and
/// the journals of the records kept out of sled.
#[derive(Clone, Debug)]
pub(super) struct Trees {
    logged: Vec<sled::Tree>,
    meta: sled::Tree,
    /// Follows every write to the trees it mirrors.
    pub(super) resident: Arc<Resident>,
    /// Transcript, idempotency, intent log and SMS attendees' records ([`records::journaled`]).
    pub(super) records: Arc<Records>,
}

impl Trees {
    pub(super) fn open(db: &sled::Db, records: Arc<Records>) -> Result<Trees, StoreError> {
        Ok(Trees {
            logged: Logged::ALL
                .iter()
                .map(|t| db.open_tree(t.tree_name()))
                .collect::<Result<_, _>>()?,
            meta: db.open_tree(super::trees::META)?,
            resident: Arc::new(Resident::new()),
            records,
        })
    }

    fn tree(&self, which: Logged) -> &sled::Tree {
        &self.logged[which as usize]
    }

    /// Fills the in-memory part from sled, and the SMS attendees and tasks sled holds from
    /// before their journals (what a journal holds is newer): once the log is replayed, before
    /// anyone reads.
    pub(super) fn load_resident(&self) -> Result<(), sled::Error> {
        for entry in self
            .tree(Logged::Attendees)
            .scan_prefix(records::HELD_ATTENDEES)
        {
            let (key, value) = entry?;
            self.records.attendees.hold_if_absent(&key, value);
        }
        for entry in self.tree(Logged::Tasks).iter() {
            let (key, value) = entry?;
            self.records.tasks.hold_if_absent(&key, value);
        }
        self.resident
            .load(self.tree(Logged::OptOuts), self.tree(Logged::Idempotency))
    }

    /// The sequence number of the last batch applied to sled.
    fn applied(&self) -> Result<u64, StoreError> {
        Ok(self
            .meta
            .get(APPLIED_KEY)?
            .and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
            .map_or(0, u64::from_be_bytes))
    }

    /// Journals a batch's writes kept in journals ([`records::journaled`]), unless the journals
    /// hold them already (a replay); returns the others.
    fn journal(&self, seq: u64, ops: Vec<Op>) -> Result<Vec<Op>, StoreError> {
        self.records.append(seq, ops).map_err(super::journal_error)
    }

    /// Writes a batch's writes that are not journaled to sled (and to the in-memory part), then
    /// its sequence number; nothing if it has none.
    fn apply(&self, seq: u64, ops: Vec<Op>) -> Result<(), sled::Error> {
        if ops.is_empty() {
            return Ok(());
        }
        for op in ops {
            let tree = self.tree(op.tree);
            let (value, old) = match op.value {
                Some(value) => {
                    let value = sled::IVec::from(value);
                    let old = tree.insert(&op.key, value.clone())?;
                    (Some(value), old)
                }
                None => (None, tree.remove(&op.key)?),
            };
            self.resident
                .wrote(op.tree, &op.key, value.as_ref(), old.is_some());
        }
        self.mark_applied(seq)
    }

    /// Records that sled holds every batch up to `seq`.
    fn mark_applied(&self, seq: u64) -> Result<(), sled::Error> {
        self.meta.insert(APPLIED_KEY, &seq.to_be_bytes())?;
        Ok(())
    }
}

/// Applies the log's batches that sled does not hold yet (after a crash), flushes sled and starts
/// the log over. Returns the sequence number the writer goes on from. Runs before anything reads
/// the store.
pub(super) fn replay(
    db: &sled::Db,
    trees: &Trees,
    wal: &mut Wal,
    batches: Vec<Batch>,
) -> Result<u64, StoreError> {
    let mut last = trees.applied()?;
    // Batches that wrote only journals did not move sled's mark.
    let mut next_after = last.max(trees.records.last_seq());
    let (mut applied, mut held) = (0, 0);
    for batch in batches {
        next_after = next_after.max(batch.seq);
        let rest = trees.journal(batch.seq, batch.ops)?;
        if batch.seq > last {
            trees.apply(batch.seq, rest)?;
            last = batch.seq;
            applied += 1;
        } else {
            held += 1;
        }
    }
    // A log started over keeps its size, so older records are read again after a clean stop:
    // only batches sled lacked mean the last run ended without a checkpoint.
    if applied > 0 {
        tracing::info!(
            applied,
            already_held = held,
            "recovered from the write-ahead log (the last run ended without a checkpoint)"
        );
    } else if held > 0 {
        tracing::debug!(
            already_held = held,
            "sled held every batch of the write-ahead log"
        );
    }
    trees.records.sync().map_err(super::journal_error)?;
    trees.mark_applied(next_after)?;
    db.flush()?;
    wal.reset().map_err(|err| StoreError::Flush {
        message: format!("cannot start the write-ahead log over: {err}"),
    })?;
    Ok(next_after)
}

type Answer<T> = tokio::sync::oneshot::Sender<Result<T, StoreError>>;

enum Job {
    Change(Box<Change>, Answer<Outcome>),
    Durable(Answer<()>),
}

/// Owns the writer thread and the journals' background sync; dropping it lets the writer finish
/// the jobs queued, checkpoint and end, and joins both threads (so the database is closed when
/// the last store handle goes).
#[derive(Debug)]
pub(super) struct Writer {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Dropped to stop the journals' background sync.
    stop_sync: Option<mpsc::Sender<()>>,
    sync_thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    /// Starts the thread; `seq` is the last batch's sequence number (from [`replay`]).
    pub(super) fn start(
        db: sled::Db,
        trees: Trees,
        schedule: Arc<Schedule>,
        wal: Wal,
        seq: u64,
        times: CommitTimes,
    ) -> std::io::Result<Writer> {
        let (stop_sync, stopped) = mpsc::channel::<()>();
        let records = trees.records.clone();
        let space = wal.space();
        let sync_thread = std::thread::Builder::new()
            .name("journal-sync".into())
            .spawn(move || {
                let mut failing = false;
                let mut since = 0;
                while let Err(mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(JOURNAL_SYNC_EVERY)
                {
                    // Both only spare the writer work: the checkpoint's own sync reports
                    // failures, and an append past the zeros grows the log itself.
                    let extended = space.extend_ahead(since, CHECKPOINT_BYTES).map(|len| {
                        since = len;
                    });
                    records.prepare_growth();
                    match extended
                        .and(records.write_back())
                        .and(records.delete_retired())
                    {
                        Err(err) if !failing => {
                            tracing::warn!(error = %err, "syncing the journals, deleting retired segments or growing the write-ahead log in the background failed");
                            failing = true;
                        }
                        Err(_) => {}
                        Ok(()) => failing = false,
                    }
                }
            })?;
        let (jobs, queue) = mpsc::channel();
        let mut state = Thread {
            db,
            trees,
            schedule,
            wal,
            seq,
            times,
        };
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || {
                // Every acknowledgement waits for this thread: it should run as soon as it wakes,
                // not queue behind the connection threads (`crate::sched`).
                let slice = crate::sched::request_slice(crate::sched::PROMPT_SLICE_NS);
                tracing::debug!(?slice, "the store's writer asked for a short time slice");
                state.run(&queue)
            })?;
        Ok(Writer {
            jobs: Some(jobs),
            thread: Some(thread),
            stop_sync: Some(stop_sync),
            sync_thread: Some(sync_thread),
        })
    }

    /// False once the thread has ended (after a failed log write, or a panic).
    pub(super) fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Writes a change with the next batch; returns once it is on disk.
    pub(super) async fn commit(&self, change: Change) -> Result<Outcome, StoreError> {
        self.submit(|answer| Job::Change(Box::new(change), answer))
            .await
    }

    /// Returns once everything written to sled before the call is on disk.
    pub(super) async fn durable(&self) -> Result<(), StoreError> {
        self.submit(Job::Durable).await
    }

    async fn submit<T>(&self, job: impl FnOnce(Answer<T>) -> Job) -> Result<T, StoreError> {
        let stopped = || StoreError::Flush {
            message: "the store's writer has stopped".into(),
        };
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.jobs
            .as_ref()
            .ok_or_else(stopped)?
            .send(job(answer))
            .map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop_sync.take();
        if let Some(thread) = self.sync_thread.take() {
            let _ = thread.join();
        }
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What the thread owns.
struct Thread {
    db: sled::Db,
    trees: Trees,
    schedule: Arc<Schedule>,
    wal: Wal,
    /// The last batch's sequence number.
    seq: u64,
    times: CommitTimes,
}

impl Thread {
    /// Batch, log, apply, answer, until every sender is gone or the log fails.
    fn run(&mut self, queue: &mpsc::Receiver<Job>) {
        // When the previous batch started, if it had company (more than one job): a lone writer
        // is never kept waiting.
        let mut last: Option<Instant> = None;
        while let Ok(first) = queue.recv() {
            // Under load, wait out the spacing so the batch fills.
            if let Some(wait) = last.and_then(|l| BATCH_SPACING.checked_sub(l.elapsed())) {
                std::thread::sleep(wait);
            }
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            let started = Instant::now();
            last = (batch.len() > 1).then_some(started);
            let result = self.batch(batch);
            self.times.batch.observe(started.elapsed().as_secs_f64());
            if let Err(fatal) = result {
                tracing::error!(error = %fatal, "the store's writer stopped; restart to recover from the write-ahead log");
                return;
            }
        }
        if let Err(failure) = self.checkpoint() {
            tracing::error!(error = %failure.message(), "the store's last checkpoint failed; the write-ahead log is replayed on the next start");
        }
    }

    /// Writes one batch and answers its jobs. An error return is fatal: the thread stops.
    fn batch(&mut self, batch: Vec<Job>) -> Result<(), String> {
        let mut changes = Vec::new();
        let mut answers = Vec::new();
        let mut durable = Vec::new();
        for job in batch {
            match job {
                Job::Change(change, answer) => {
                    changes.push(*change);
                    answers.push(answer);
                }
                Job::Durable(answer) => durable.push(answer),
            }
        }
        let written = self.write(changes);
        let checkpoint = match &written {
            Err(Failure::Fatal(_)) => {
                Err(Failure::Fatal("the store's writer has stopped".to_string()))
            }
            _ if !durable.is_empty() || self.wal.len() >= CHECKPOINT_BYTES => self.checkpoint(),
            _ => Ok(()),
        };
        let fatal = [written.as_ref().err(), checkpoint.as_ref().err()]
            .into_iter()
            .flatten()
            .find_map(Failure::fatal)
            .map(str::to_string);
        match written {
            Ok(outcomes) => {
                for (answer, outcome) in answers.into_iter().zip(outcomes) {
                    let _ = answer.send(Ok(outcome));
                }
            }
            Err(failure) => {
                for answer in answers {
                    let _ = answer.send(Err(StoreError::Commit {
                        message: failure.message().to_string(),
                    }));
                }
            }
        }
        for answer in durable {
            let _ =
                answer.send(
                    checkpoint
                        .as_ref()
                        .map(|_| ())
                        .map_err(|failure| StoreError::Flush {
                            message: failure.message().to_string(),
                        }),
                );
        }
        fatal.map_or(Ok(()), Err)
    }

    /// Resolves the changes, logs them and applies them; what became of each.
    fn write(&mut self, changes: Vec<Change>) -> Result<Vec<Outcome>, Failure> {
        let mut pending = Pending::new(&self.trees);
        let mut outcomes = Vec::new();
        for change in changes {
            outcomes.push(pending.resolve(change).map_err(Failure::Batch)?);
        }
        let Pending {
            mut ops,
            moved,
            intents,
            ..
        } = pending;
        let seq = self.seq + 1;
        if let Some(&(at, _)) = intents.first() {
            let events: Vec<Vec<u8>> = intents.into_iter().map(|(_, e)| e).collect();
            ops.push(Op::insert(
                Logged::IntentLog,
                // The high bit keeps a batch's key apart from the per-message keys of version
                // 1 entries (transcript ids, far below it).
                super::intent_log_key(at, seq | 1 << 63),
                super::IntentEvents::encode_joined(&events),
            ));
        }
        if ops.is_empty() {
            return Ok(outcomes);
        }
        let appending = Instant::now();
        self.wal
            .append(seq, &ops)
            .map_err(|err| Failure::Fatal(format!("cannot write the write-ahead log: {err}")))?;
        let took = appending.elapsed();
        self.times.log_sync.observe(took.as_secs_f64());
        if took >= SLOW_SYNC {
            tracing::warn!(
                ms = took.as_millis(),
                "the write-ahead log's sync was slow: every message of the batch waited for the disk"
            );
        }
        self.seq = seq;
        // The batch is durable now; failing to apply it would leave the journals or sled behind
        // the log.
        let rest = self
            .trees
            .journal(seq, ops)
            .map_err(|err| Failure::Fatal(format!("cannot journal a logged batch: {err}")))?;
        self.trees.apply(seq, rest).map_err(|err| {
            Failure::Fatal(format!("cannot apply a logged batch to the store: {err}"))
        })?;
        self.schedule.apply(&moved);
        Ok(outcomes)
    }

    /// Syncs the journals, flushes sled and starts the log over. A failed sync or flush fails
    /// only those who wait for it; a log that cannot be started over is fatal (appending after
    /// sled flushed it would be unsafe).
    fn checkpoint(&mut self) -> Result<(), Failure> {
        self.trees
            .records
            .sync()
            .map_err(|err| Failure::Batch(format!("cannot sync the journals: {err}")))?;
        // The log's older records, left behind it once it starts over, are numbered at most this.
        self.trees
            .mark_applied(self.seq)
            .map_err(|err| Failure::Batch(err.to_string()))?;
        self.db
            .flush()
            .map_err(|err| Failure::Batch(err.to_string()))?;
        self.wal
            .reset()
            .map_err(|err| Failure::Fatal(format!("cannot start the write-ahead log over: {err}")))
    }
}

enum Failure {
    /// Nothing of the batch was logged, or a checkpoint's flush failed; the writer goes on.
    Batch(String),
    /// The log or sled failed; the writer stops.
    Fatal(String),
}

impl Failure {
    fn message(&self) -> &str {
        match self {
            Failure::Batch(message) | Failure::Fatal(message) => message,
        }
    }

    fn fatal(&self) -> Option<&str> {
        match self {
            Failure::Fatal(message) => Some(message),
            Failure::Batch(_) => None,
        }
    }
}

/// The trees a batch reads its own writes back from while it is resolved (idempotency keys and
/// reminders), by their place in [`Pending`]'s `written`.
fn read_back(tree: Logged) -> Option<usize> {
    match tree {
        Logged::Idempotency => Some(0),
        Logged::Reminders => Some(1),
        Logged::Reminded => Some(2),
        _ => None,
    }
}

/// A batch being resolved: its writes so far, and what they do to the trees the resolution reads.
struct Pending<'a> {
    trees: &'a Trees,
    ops: Vec<Op>,
    /// The batch's own writes to the trees [`Pending::get`] reads: for each key, where its newest
    /// write is in `ops`. A map per tree (see [`read_back`]), so a lookup takes the caller's key
    /// as it is; FxHash, as the store's other maps of these keys ([`super::maps::Hasher`]).
    written: [FxHashMap<Vec<u8>, usize>; 3],
    moved: Vec<Moved>,
    /// The intent log events of the batch's turns.
    intents: Vec<(jiff::Timestamp, Vec<u8>)>,
}

impl<'a> Pending<'a> {
    fn new(trees: &'a Trees) -> Pending<'a> {
        Pending {
            trees,
            ops: Vec::new(),
            written: Default::default(),
            moved: Vec::new(),
            intents: Vec::new(),
        }
    }

    /// A value as it will be once the batch so far is applied.
    fn get(&self, tree: Logged, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        if let Some(&at) = read_back(tree).and_then(|i| self.written[i].get(key)) {
            return Ok(self.ops[at].value.clone());
        }
        if tree == Logged::Idempotency {
            return super::stored_processed(
                &self.trees.records,
                &self.trees.resident,
                self.trees.tree(tree),
                key,
            )
            .map_err(|err| err.to_string());
        }
        self.trees
            .tree(tree)
            .get(key)
            .map(|v| v.map(|v| v.to_vec()))
            .map_err(|err| err.to_string())
    }

    fn push(&mut self, op: Op) {
        if let Some(i) = read_back(op.tree) {
            self.written[i].insert(op.key.clone(), self.ops.len());
        }
        self.ops.push(op);
    }

    fn resolve(&mut self, change: Change) -> Result<Outcome, String> {
        if let Some((key, record)) = change.idempotency {
            if let Some(earlier) = self.get(Logged::Idempotency, &key)? {
                return Ok(Outcome::Duplicate(earlier));
            }
            self.push(Op::insert(Logged::Idempotency, key, record));
        }
        for op in change.ops {
            self.push(op);
        }
        self.intents.extend(change.intent);
        for pair in &change.unremind {
            if let Some(old) = self.get(Logged::Reminders, pair)? {
                self.push(Op::remove(Logged::Reminders, pair.clone()));
                self.moved.push((pair.clone(), Some(due_of(&old)), None));
            }
        }
        for key in &change.remind {
            if self.get(Logged::Reminded, key.pair())?.is_some() {
                continue;
            }
            let old = self.get(Logged::Reminders, key.pair())?;
            self.push(Op::insert(
                Logged::Reminders,
                key.pair().to_vec(),
                key.due_bytes().to_vec(),
            ));
            self.moved.push((
                key.pair().to_vec(),
                old.map(|o| due_of(&o)),
                Some(key.due()),
            ));
        }
        Ok(Outcome::Done)
    }
}
