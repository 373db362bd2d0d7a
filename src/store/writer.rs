//! The store's writer: one thread commits conversation turns in batches and makes writes durable
//! with one flush for everyone waiting (group commit).
//!
//! Why a thread of its own. In sled 0.34 every transaction seals the log's IO buffer twice
//! (`PageCache::pin_log` rolls it before and after the batch reservation), each sealed buffer is a
//! `pwrite` and a `sync_file_range` on sled's IO thread pool, and that pool wakes every idle IO
//! thread for each job. At one transaction per message this cost more CPU than everything else a
//! message does (measured: 2.1 buffer writes, 28 futex calls and 18 context switches per webhook
//! request; see BENCHMARKS.md). So a caller prepares its turn (everything encoded, ids drawn) and
//! hands it over; the thread takes every job queued, writes all the turns in one transaction,
//! updates the in-memory reminder schedule, flushes once and answers everyone. Under load a batch
//! grows by itself, because turns queue while the previous batch is written; at rest a batch is
//! one turn and nobody waits for a timer.
//!
//! Invariants:
//! - A turn is answered only after its batch's flush: an acknowledged turn is on disk.
//! - A turn's idempotency check runs inside the transaction and sees the turns before it in the
//!   same batch, so a redelivery queued beside its original is still answered as a duplicate, and
//!   a duplicate writes nothing.
//! - A batch is one transaction: if it fails, every turn in it fails and nothing of it is written.
//!
//! Writers outside turns write themselves and then call [`Writer::durable`], which joins the next
//! batch's flush. This is also how concierge avoids `flush_async`, which deadlocks when called
//! concurrently in sled 0.34 (spacejam/sled#1308).

use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use sled::Transactional;
use sled::transaction::{ConflictableTransactionResult, TransactionalTree};

use super::StoreError;
use super::notices::{self, Moved, ReminderKey, Schedule};

/// The most jobs one batch takes; the rest wait for the next one.
const MAX_BATCH: usize = 1024;

/// The least time from one batch's start to the next one's. It caps the batches at 500 a second,
/// so sled's fixed cost per transaction and flush (three IO buffer writes) is paid at most that
/// often, and adds at most this much to a message's wait (nothing when the writer was idle that
/// long). Measured with `concierge load` (64 connections, 2 cores, server CPU per request):
/// no spacing 10,900 req/s; 1 ms 11,000–12,850 req/s, 113 µs; 2 ms 12,750–13,050 req/s, 94 µs;
/// 4 ms 11,850 req/s, 87 µs (batches too far apart for 64 connections). Running the flush on a
/// thread of its own, beside the next transaction, was slower (6,100 req/s without spacing,
/// 12,000–12,450 with 2 ms): the two contend inside sled.
const BATCH_SPACING: Duration = Duration::from_millis(2);

/// One turn's writes, encoded by its caller.
#[derive(Debug, Default)]
pub(super) struct PreparedTurn {
    /// The idempotency key and the record to store under it.
    pub idempotency: Option<(Vec<u8>, Vec<u8>)>,
    /// The attendee's key and state.
    pub attendee: (Vec<u8>, Vec<u8>),
    pub transcript: Vec<(Vec<u8>, Vec<u8>)>,
    /// Opt-out changes in order: a value inserts it, `None` removes the number.
    pub opt_outs: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    pub tasks: Vec<([u8; 8], Vec<u8>)>,
    pub log: ([u8; 16], Vec<u8>),
    /// Pairs (session, attendee) whose reminder goes.
    pub unremind: Vec<Vec<u8>>,
    pub remind: Vec<ReminderKey>,
}

/// What became of a turn.
#[derive(Debug)]
pub(super) enum TurnWritten {
    Done,
    /// Its idempotency key was stored before: nothing was written; the stored record.
    Duplicate(sled::IVec),
}

/// The trees a turn writes.
#[derive(Clone, Debug)]
pub(super) struct TurnTrees {
    pub idempotency: sled::Tree,
    pub attendees: sled::Tree,
    pub transcript: sled::Tree,
    pub opt_outs: sled::Tree,
    pub tasks: sled::Tree,
    pub intent_log: sled::Tree,
    pub reminders: sled::Tree,
    pub reminded: sled::Tree,
}

type Answer<T> = tokio::sync::oneshot::Sender<Result<T, StoreError>>;

enum Job {
    Turn(Box<PreparedTurn>, Answer<TurnWritten>),
    Durable(Answer<()>),
}

/// Owns the writer thread; dropping it lets the thread finish the jobs queued and joins it (so
/// the database is closed when the last store handle goes).
#[derive(Debug)]
pub(super) struct Writer {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    pub(super) fn start(
        db: sled::Db,
        trees: TurnTrees,
        schedule: Arc<Schedule>,
    ) -> std::io::Result<Writer> {
        let (jobs, queue) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run(&db, &trees, &schedule, &queue))?;
        Ok(Writer {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// False once the thread has ended (only if it panicked: it runs as long as the handle).
    pub(super) fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Writes a turn with the next batch; returns once it is on disk.
    pub(super) async fn commit(&self, turn: PreparedTurn) -> Result<TurnWritten, StoreError> {
        self.submit(|answer| Job::Turn(Box::new(turn), answer))
            .await
    }

    /// Returns once everything written before the call is on disk.
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
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The thread: batch, write, flush, answer, until every sender is gone.
fn run(db: &sled::Db, trees: &TurnTrees, schedule: &Schedule, queue: &mpsc::Receiver<Job>) {
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
        last = (batch.len() > 1).then(Instant::now);
        let turns: Vec<&PreparedTurn> = batch
            .iter()
            .filter_map(|job| match job {
                Job::Turn(turn, _) => Some(&**turn),
                Job::Durable(_) => None,
            })
            .collect();
        let written = if turns.is_empty() {
            Ok(Vec::new())
        } else {
            write_turns(trees, &turns).map(|(written, moved)| {
                schedule.apply(&moved);
                written
            })
        };
        let flushed = db.flush().map(drop).map_err(|err| err.to_string());
        let mut written = written.map(Vec::into_iter);
        for job in batch {
            match job {
                Job::Turn(_, answer) => {
                    let result = match (&mut written, &flushed) {
                        (Err(message), _) => Err(StoreError::Commit {
                            message: message.clone(),
                        }),
                        (Ok(_), Err(message)) => Err(StoreError::Flush {
                            message: message.clone(),
                        }),
                        (Ok(outcomes), Ok(())) => outcomes.next().ok_or(StoreError::Commit {
                            message: "a turn was left out of its batch".into(),
                        }),
                    };
                    let _ = answer.send(result);
                }
                Job::Durable(answer) => {
                    let _ = answer.send(
                        flushed
                            .clone()
                            .map_err(|message| StoreError::Flush { message }),
                    );
                }
            }
        }
    }
}

/// Writes the turns, in order, in one transaction. Returns what became of each and how the
/// reminders moved.
fn write_turns(
    trees: &TurnTrees,
    turns: &[&PreparedTurn],
) -> Result<(Vec<TurnWritten>, Vec<Moved>), String> {
    (
        &trees.idempotency,
        &trees.attendees,
        &trees.transcript,
        &trees.opt_outs,
        &trees.tasks,
        &trees.intent_log,
        &trees.reminders,
        &trees.reminded,
    )
        .transaction(
            |(idem, attendees, transcript, opt_outs, tasks, log, reminders, reminded)| {
                let mut written = Vec::with_capacity(turns.len());
                let mut moved = Vec::new();
                for turn in turns {
                    if let Some((key, record)) = &turn.idempotency {
                        if let Some(earlier) = idem.get(key)? {
                            written.push(TurnWritten::Duplicate(earlier));
                            continue;
                        }
                        idem.insert(key.as_slice(), record.as_slice())?;
                    }
                    write_turn(
                        turn,
                        [attendees, transcript, opt_outs, tasks, log],
                        reminders,
                        reminded,
                        &mut moved,
                    )?;
                    written.push(TurnWritten::Done);
                }
                Ok((written, moved))
            },
        )
        .map_err(
            |err: sled::transaction::TransactionError<std::convert::Infallible>| err.to_string(),
        )
}

/// Everything of one turn but its idempotency record, inside the batch's transaction.
fn write_turn(
    turn: &PreparedTurn,
    [attendees, transcript, opt_outs, tasks, log]: [&TransactionalTree; 5],
    reminders: &TransactionalTree,
    reminded: &TransactionalTree,
    moved: &mut Vec<Moved>,
) -> ConflictableTransactionResult<(), std::convert::Infallible> {
    attendees.insert(turn.attendee.0.as_slice(), turn.attendee.1.as_slice())?;
    for (key, entry) in &turn.transcript {
        transcript.insert(key.as_slice(), entry.as_slice())?;
    }
    for (phone, change) in &turn.opt_outs {
        match change {
            Some(record) => opt_outs.insert(phone.as_slice(), record.as_slice())?,
            None => opt_outs.remove(phone.as_slice())?,
        };
    }
    for (key, task) in &turn.tasks {
        tasks.insert(&key[..], task.as_slice())?;
    }
    log.insert(&turn.log.0[..], turn.log.1.as_slice())?;
    for pair in &turn.unremind {
        moved.extend(notices::unschedule_in(reminders, pair)?);
    }
    for key in &turn.remind {
        moved.extend(notices::schedule_in(reminders, reminded, key)?);
    }
    Ok(())
}
