//! Reminders, agenda-change notices and announcements in the store. Each message is written in the
//! same transaction as what keeps it from being sent twice: a fired reminder's `reminded` mark,
//! the new agenda, the announcement's id.
//!
//! A message for an attendee ([`Notice`]) is a transcript entry, and for SMS attendees also an
//! outbox entry the outbox worker sends (re-checking opt-outs at send time).

use jiff::Timestamp;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::{
    AGENDA_KEY, AgendaSource, Compact, ImportRecord, Store, StoreError, TranscriptEntry, Versioned,
    transcript_prefix,
};
use crate::agenda::Agenda;
use crate::conversation::Attendee;
use crate::notices::announce::Audience;
use crate::notices::reminders::Reminder;
use crate::outbound::{OutState, Outgoing};

/// An announcement as recorded.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Announcement {
    pub id: String,
    pub at: Timestamp,
    pub text: String,
    pub audience: Audience,
    pub recipients: usize,
}

impl Versioned for Announcement {
    const VERSION: u8 = 1;
    const WHAT: &'static str = "an announcement";
}

/// session + 0x00 + attendee: one attendee's reminder of one session.
pub(super) fn pair(session: &str, attendee: &str) -> Vec<u8> {
    let mut key = session.as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(attendee.as_bytes());
    key
}

fn micros(ts: Timestamp) -> u64 {
    u64::try_from(ts.as_microsecond()).unwrap_or(0)
}

/// A due time as stored: microseconds, big-endian.
pub(super) fn due_of(bytes: &[u8]) -> u64 {
    u64::from_be_bytes(bytes.try_into().unwrap_or([0; 8]))
}

/// A reminder as the store keys it: its pair and its due time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReminderKey {
    pair: Vec<u8>,
    due: u64,
}

impl ReminderKey {
    pub fn of(r: &Reminder) -> ReminderKey {
        ReminderKey {
            pair: pair(&r.session, &r.attendee),
            due: micros(r.due),
        }
    }

    pub fn pair(&self) -> &[u8] {
        &self.pair
    }

    pub fn due(&self) -> u64 {
        self.due
    }

    pub fn due_bytes(&self) -> [u8; 8] {
        self.due.to_be_bytes()
    }
}

/// The reminder a pair and a due time stand for.
fn reminder(pair: &[u8], due: u64) -> Result<Reminder, StoreError> {
    let bad = || StoreError::Decode {
        what: "a reminder key",
        message: "not session + 0x00 + attendee".into(),
    };
    let zero = pair.iter().position(|&b| b == 0).ok_or_else(bad)?;
    Ok(Reminder {
        session: String::from_utf8(pair[..zero].to_vec()).map_err(|_| bad())?,
        attendee: String::from_utf8(pair[zero + 1..].to_vec()).map_err(|_| bad())?,
        due: Timestamp::from_microsecond(i64::try_from(due).map_err(|_| bad())?)
            .map_err(|_| bad())?,
    })
}

/// A change to the schedule that a committed write made: a pair's old and new due time.
pub(super) type Moved = (Vec<u8>, Option<u64>, Option<u64>);

/// The due-ordered view of the `reminders` tree, kept in memory (rebuilt from the tree when the
/// store opens), so finding the due reminders is a range of a `BTreeSet`. Changed only after the
/// write it mirrors committed; writes to one pair are serialised by the attendee's lock.
#[derive(Debug, Default)]
pub(super) struct Schedule(std::sync::Mutex<std::collections::BTreeSet<(u64, Vec<u8>)>>);

impl Schedule {
    pub(super) fn load(tree: &sled::Tree) -> Result<Schedule, StoreError> {
        let mut set = std::collections::BTreeSet::new();
        for entry in tree.iter() {
            let (pair, due) = entry?;
            set.insert((due_of(&due), pair.to_vec()));
        }
        Ok(Schedule(std::sync::Mutex::new(set)))
    }

    pub(super) fn apply(&self, moved: &[Moved]) {
        let mut set = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for (pair, old, new) in moved {
            if let Some(old) = old {
                set.remove(&(*old, pair.clone()));
            }
            if let Some(new) = new {
                set.insert((*new, pair.clone()));
            }
        }
    }

    fn due(&self, now: u64, limit: usize) -> Vec<(u64, Vec<u8>)> {
        let set = self.0.lock().unwrap_or_else(|p| p.into_inner());
        set.range(..(now.saturating_add(1), Vec::new()))
            .take(limit)
            .cloned()
            .collect()
    }

    fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// A message for an attendee outside a turn.
#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    /// The attendee key (`sms:+1…`, `web:…`).
    pub attendee: String,
    pub text: String,
    /// Why it is sent, for the outbox ("reminder", "schedule change", "announcement").
    pub reason: String,
}

/// What firing a reminder did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fired {
    /// Written for sending.
    Sent,
    /// A reminder of this session was sent to this attendee before; nothing was written.
    AlreadySent,
    /// Dropped without a message.
    Dropped,
}

/// A notice's writes, prepared outside a transaction (ids are generated there).
struct Prepared {
    transcript_key: Vec<u8>,
    transcript: Vec<u8>,
    outbox: Option<([u8; 8], Vec<u8>)>,
}

fn abort_error<T>(err: TransactionError<T>, what: &str) -> StoreError {
    match err {
        TransactionError::Storage(err) => StoreError::Sled(err),
        TransactionError::Abort(_) => {
            StoreError::Sled(sled::Error::Unsupported(format!("{what} aborted")))
        }
    }
}

impl Store {
    fn prepare(&self, d: &Notice, now: Timestamp) -> Result<Prepared, StoreError> {
        let mut transcript_key = transcript_prefix(&d.attendee);
        transcript_key.extend_from_slice(&self.db.generate_id()?.to_be_bytes());
        let transcript = TranscriptEntry {
            at: now,
            inbound: false,
            text: d.text.clone(),
            message_id: None,
            intent: None,
            sessions: Vec::new(),
            by: None,
        }
        .encode()?;
        let outbox = match d.attendee.strip_prefix("sms:") {
            Some(phone) => {
                let id = self.db.generate_id()?;
                let msg = Outgoing {
                    id,
                    to: phone.to_string(),
                    body: d.text.clone(),
                    reason: d.reason.clone(),
                    created: now,
                    attempts: 0,
                    next_attempt: now,
                    state: OutState::Queued,
                    last_error: None,
                };
                Some((id.to_be_bytes(), msg.encode()?))
            }
            None => None,
        };
        Ok(Prepared {
            transcript_key,
            transcript,
            outbox,
        })
    }

    /// Reminders due at `now` or before, earliest first, at most `limit`.
    pub fn due_reminders(&self, now: Timestamp, limit: usize) -> Result<Vec<Reminder>, StoreError> {
        self.schedule
            .due(micros(now), limit)
            .into_iter()
            .map(|(due, pair)| reminder(&pair, due))
            .collect()
    }

    /// How many reminders are waiting.
    pub fn pending_reminders(&self) -> usize {
        self.schedule.len()
    }

    /// Schedules reminders in one atomic batch, replacing each pair's pending one; pairs already
    /// reminded are skipped. Returns how many were scheduled.
    pub async fn schedule_reminders(&self, list: &[Reminder]) -> Result<usize, StoreError> {
        let mut batch = sled::Batch::default();
        let mut moved = Vec::with_capacity(list.len());
        for r in list {
            let key = ReminderKey::of(r);
            if self.reminded.contains_key(key.pair())? {
                continue;
            }
            let old = self.reminders.get(key.pair())?.map(|o| due_of(&o));
            batch.insert(key.pair(), &key.due_bytes()[..]);
            moved.push((key.pair().to_vec(), old, Some(key.due())));
        }
        self.reminders.apply_batch(batch)?;
        self.schedule.apply(&moved);
        self.durable().await?;
        Ok(moved.len())
    }

    /// Takes a reminder off the schedule and, with `notice`, writes its message and marks the
    /// pair reminded, all at once; without, just drops it. A reminder rescheduled meanwhile (its
    /// due time changed) is left alone.
    pub async fn fire_reminder(
        &self,
        r: &Reminder,
        notice: Option<&Notice>,
        now: Timestamp,
    ) -> Result<Fired, StoreError> {
        let key = ReminderKey::of(r);
        let prepared = notice.map(|d| self.prepare(d, now)).transpose()?;
        let at = now.to_string();
        let (fired, moved) = (
            &self.reminders,
            &self.reminded,
            &self.outbox,
            &self.transcript,
        )
            .transaction(|(reminders, reminded, outbox, transcript)| {
                let current = reminders.get(key.pair())?.map(|d| due_of(&d));
                if current != Some(key.due()) {
                    return Ok((Fired::Dropped, None));
                }
                reminders.remove(key.pair())?;
                let moved = Some((key.pair().to_vec(), current, None));
                let Some(p) = &prepared else {
                    return Ok((Fired::Dropped, moved));
                };
                if reminded.get(key.pair())?.is_some() {
                    return Ok((Fired::AlreadySent, moved));
                }
                reminded.insert(key.pair(), at.as_bytes())?;
                transcript.insert(p.transcript_key.as_slice(), p.transcript.as_slice())?;
                if let Some((id, bytes)) = &p.outbox {
                    outbox.insert(&id[..], bytes.as_slice())?;
                }
                Ok::<_, ConflictableTransactionError<()>>((Fired::Sent, moved))
            })
            .map_err(|err| abort_error(err, "firing a reminder"))?;
        self.schedule.apply(moved.as_slice());
        self.durable().await?;
        Ok(fired)
    }

    /// Moves a reminder to `until`.
    pub async fn postpone_reminder(
        &self,
        r: &Reminder,
        until: Timestamp,
    ) -> Result<(), StoreError> {
        let later = Reminder {
            due: until,
            ..r.clone()
        };
        self.schedule_reminders(std::slice::from_ref(&later))
            .await?;
        Ok(())
    }

    /// The pending reminders of one session.
    pub fn reminders_of(&self, session: &str) -> Result<Vec<Reminder>, StoreError> {
        let mut prefix = session.as_bytes().to_vec();
        prefix.push(0);
        let mut out = Vec::new();
        for entry in self.reminders.scan_prefix(&prefix) {
            let (pair, due) = entry?;
            out.push(reminder(&pair, due_of(&due))?);
        }
        Ok(out)
    }

    /// Every attendee with something saved, by key.
    pub fn attendees_with_saved(&self) -> Result<Vec<(String, Attendee)>, StoreError> {
        let mut all = self.all_attendees()?;
        all.retain(|(_, a)| !a.saved.is_empty());
        Ok(all)
    }

    /// Every attendee, by key: SMS attendees from their journal, the others from sled.
    pub fn all_attendees(&self) -> Result<Vec<(String, Attendee)>, StoreError> {
        let mut records = self.records.attendees.entries();
        for entry in self.attendees.iter() {
            let (key, bytes) = entry?;
            // sled's copies of SMS attendees are from before their journal, which holds them all.
            if !super::records::holds_attendee(&key) {
                records.push((key.to_vec(), bytes));
            }
        }
        records.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        records
            .into_iter()
            .map(|(key, bytes)| {
                Ok((
                    String::from_utf8_lossy(&key).into_owned(),
                    Attendee::decode_any(&bytes)?,
                ))
            })
            .collect()
    }

    /// Replaces the agenda and, in the same transaction, writes the schedule-change notices and
    /// moves reminders: each `(old, new)` removes `old` and schedules `new` (none: the session is
    /// gone). A crash leaves either the old agenda and no notices, or the new one and all of them.
    pub async fn replace_agenda_with(
        &self,
        agenda: Agenda,
        source: AgendaSource,
        now: Timestamp,
        notices: &[Notice],
        moves: &[(Reminder, Option<Reminder>)],
    ) -> Result<ImportRecord, StoreError> {
        let (record, agenda_bytes, record_bytes) = self.agenda_record(agenda, source, now)?;
        let key = record.id.to_be_bytes();
        let prepared: Vec<Prepared> = notices
            .iter()
            .map(|d| self.prepare(d, now))
            .collect::<Result<_, StoreError>>()?;
        let moves: Vec<(ReminderKey, Option<ReminderKey>)> = moves
            .iter()
            .map(|(old, new)| (ReminderKey::of(old), new.as_ref().map(ReminderKey::of)))
            .collect();
        let moved = (
            &self.meta,
            &self.imports,
            &self.outbox,
            &self.transcript,
            &self.reminders,
        )
            .transaction(|(meta, imports, outbox, transcript, reminders)| {
                meta.insert(AGENDA_KEY, agenda_bytes.as_slice())?;
                imports.insert(&key, record_bytes.as_slice())?;
                for p in &prepared {
                    transcript.insert(p.transcript_key.as_slice(), p.transcript.as_slice())?;
                    if let Some((id, bytes)) = &p.outbox {
                        outbox.insert(&id[..], bytes.as_slice())?;
                    }
                }
                let mut moved = Vec::new();
                for (old, new) in &moves {
                    let was = reminders.remove(old.pair())?.map(|d| due_of(&d));
                    let now = new.as_ref().map(|n| n.due());
                    if let Some(n) = new {
                        reminders.insert(n.pair(), &n.due_bytes()[..])?;
                    }
                    moved.push((old.pair().to_vec(), was, now));
                }
                Ok::<_, ConflictableTransactionError<()>>(moved)
            })
            .map_err(|err| abort_error(err, "the agenda transaction"))?;
        self.schedule.apply(&moved);
        self.durable().await?;
        Ok(record)
    }

    /// The announcement with this id, if it was made.
    pub fn announcement(&self, id: &str) -> Result<Option<Announcement>, StoreError> {
        self.announcements
            .get(id.as_bytes())?
            .map(|b| Announcement::decode(&b))
            .transpose()
    }

    /// Records an announcement and writes its messages in one transaction. If the id was used
    /// before, nothing is written and the earlier announcement is returned as `Err`.
    pub async fn announce(
        &self,
        a: &Announcement,
        notices_out: &[Notice],
        now: Timestamp,
    ) -> Result<Result<(), Announcement>, StoreError> {
        let bytes = a.encode()?;
        let prepared: Vec<Prepared> = notices_out
            .iter()
            .map(|d| self.prepare(d, now))
            .collect::<Result<_, StoreError>>()?;
        let result = (&self.announcements, &self.outbox, &self.transcript).transaction(
            |(announcements, outbox, transcript)| {
                if let Some(earlier) = announcements.get(a.id.as_bytes())? {
                    return sled::transaction::abort(earlier.to_vec());
                }
                announcements.insert(a.id.as_bytes(), bytes.as_slice())?;
                for p in &prepared {
                    transcript.insert(p.transcript_key.as_slice(), p.transcript.as_slice())?;
                    if let Some((id, bytes)) = &p.outbox {
                        outbox.insert(&id[..], bytes.as_slice())?;
                    }
                }
                Ok(())
            },
        );
        match result {
            Ok(()) => {
                self.durable().await?;
                Ok(Ok(()))
            }
            Err(TransactionError::Abort(earlier)) => Ok(Err(Announcement::decode(&earlier)?)),
            Err(TransactionError::Storage(err)) => Err(StoreError::Sled(err)),
        }
    }
}
