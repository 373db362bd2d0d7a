//! Reminders, agenda-change notices and announcements in the store. Each message is written in the
//! same transaction as what keeps it from being sent twice: a fired reminder's `reminded` mark,
//! the new agenda, the announcement's id.
//!
//! A message for an attendee ([`Notice`]) is a transcript entry, and for SMS attendees also an
//! outbox entry the outbox worker sends (re-checking opt-outs at send time).

use jiff::Timestamp;
use sled::Transactional;
use sled::transaction::{
    ConflictableTransactionError, ConflictableTransactionResult, TransactionError,
    TransactionalTree,
};

use super::{
    AGENDA_KEY, AgendaSource, ImportRecord, Store, StoreError, TranscriptEntry, Versioned,
    transcript_prefix,
};
use crate::agenda::Agenda;
use crate::conversation::Attendee;
use crate::notices::announce::Audience;
use crate::notices::reminders::Reminder;
use crate::outbound::{OutState, Outgoing};

impl Versioned for Reminder {
    const VERSION: u8 = 1;
    const WHAT: &'static str = "a reminder";
}

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

fn micros(ts: Timestamp) -> [u8; 8] {
    u64::try_from(ts.as_microsecond())
        .unwrap_or(0)
        .to_be_bytes()
}

/// A reminder ready to write: its key and its bytes.
type Encoded = (ReminderKey, Vec<u8>);

/// A reminder's key in the `reminders` tree: its due time, then its pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReminderKey(Vec<u8>);

impl ReminderKey {
    pub fn of(r: &Reminder) -> ReminderKey {
        let mut key = micros(r.due).to_vec();
        key.extend_from_slice(&pair(&r.session, &r.attendee));
        ReminderKey(key)
    }

    pub fn full(&self) -> &[u8] {
        &self.0
    }

    pub fn pair(&self) -> &[u8] {
        &self.0[8..]
    }

    pub fn due_bytes(&self) -> [u8; 8] {
        self.0[..8].try_into().unwrap_or([0; 8])
    }
}

/// Removes a pair's pending reminder, if there is one (inside a transaction).
pub(super) fn unschedule<E>(
    reminders: &TransactionalTree,
    index: &TransactionalTree,
    pair: &[u8],
) -> ConflictableTransactionResult<(), E> {
    if let Some(due) = index.remove(pair)? {
        let mut key = due.to_vec();
        key.extend_from_slice(pair);
        reminders.remove(key)?;
    }
    Ok(())
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
        let mut end = micros(now).to_vec();
        end.push(0xff);
        let mut out = Vec::new();
        for entry in self.reminders.range(..end).take(limit) {
            let (_, bytes) = entry?;
            out.push(Reminder::decode(&bytes)?);
        }
        Ok(out)
    }

    /// How many reminders are waiting.
    pub fn pending_reminders(&self) -> usize {
        self.reminders.len()
    }

    /// Schedules reminders in one transaction, replacing each pair's pending one; pairs already
    /// reminded are skipped. Returns how many were scheduled.
    pub async fn schedule_reminders(&self, list: &[Reminder]) -> Result<usize, StoreError> {
        let prepared: Vec<(ReminderKey, Vec<u8>)> = list
            .iter()
            .map(|r| Ok((ReminderKey::of(r), r.encode()?)))
            .collect::<Result<_, StoreError>>()?;
        let n = (&self.reminders, &self.reminder_index, &self.reminded)
            .transaction(|(reminders, index, reminded)| {
                let mut n = 0;
                for (key, bytes) in &prepared {
                    if reminded.get(key.pair())?.is_some() {
                        continue;
                    }
                    unschedule::<()>(reminders, index, key.pair())?;
                    reminders.insert(key.full(), bytes.as_slice())?;
                    index.insert(key.pair(), &key.due_bytes()[..])?;
                    n += 1;
                }
                Ok(n)
            })
            .map_err(|err| abort_error(err, "scheduling reminders"))?;
        self.db.flush_async().await?;
        Ok(n)
    }

    /// Takes a reminder off the schedule and, with `notice`, writes its message and marks the
    /// pair reminded, all at once; without, just drops it.
    pub async fn fire_reminder(
        &self,
        r: &Reminder,
        notice: Option<&Notice>,
        now: Timestamp,
    ) -> Result<Fired, StoreError> {
        let key = ReminderKey::of(r);
        let prepared = notice.map(|d| self.prepare(d, now)).transpose()?;
        let at = now.to_string();
        let fired = (
            &self.reminders,
            &self.reminder_index,
            &self.reminded,
            &self.outbox,
            &self.transcript,
        )
            .transaction(|(reminders, index, reminded, outbox, transcript)| {
                reminders.remove(key.full())?;
                if index.get(key.pair())?.as_deref() == Some(&key.due_bytes()[..]) {
                    index.remove(key.pair())?;
                }
                let Some(p) = &prepared else {
                    return Ok(Fired::Dropped);
                };
                if reminded.get(key.pair())?.is_some() {
                    return Ok(Fired::AlreadySent);
                }
                reminded.insert(key.pair(), at.as_bytes())?;
                transcript.insert(p.transcript_key.as_slice(), p.transcript.as_slice())?;
                if let Some((id, bytes)) = &p.outbox {
                    outbox.insert(&id[..], bytes.as_slice())?;
                }
                Ok::<_, ConflictableTransactionError<()>>(Fired::Sent)
            })
            .map_err(|err| abort_error(err, "firing a reminder"))?;
        self.db.flush_async().await?;
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
        for entry in self.reminder_index.scan_prefix(&prefix) {
            let (key, due) = entry?;
            let micros = u64::from_be_bytes(due.as_ref().try_into().unwrap_or([0; 8]));
            out.push(Reminder {
                attendee: String::from_utf8_lossy(&key[prefix.len()..]).into_owned(),
                session: session.to_string(),
                due: Timestamp::from_microsecond(micros as i64).unwrap_or(Timestamp::UNIX_EPOCH),
            });
        }
        Ok(out)
    }

    /// Every attendee with something saved, by key.
    pub fn attendees_with_saved(&self) -> Result<Vec<(String, Attendee)>, StoreError> {
        let mut out = Vec::new();
        for entry in self.attendees.iter() {
            let (key, bytes) = entry?;
            let a = Attendee::decode(&bytes)?;
            if !a.saved.is_empty() {
                out.push((String::from_utf8_lossy(&key).into_owned(), a));
            }
        }
        Ok(out)
    }

    /// Every attendee, by key.
    pub fn all_attendees(&self) -> Result<Vec<(String, Attendee)>, StoreError> {
        let mut out = Vec::new();
        for entry in self.attendees.iter() {
            let (key, bytes) = entry?;
            out.push((
                String::from_utf8_lossy(&key).into_owned(),
                Attendee::decode(&bytes)?,
            ));
        }
        Ok(out)
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
        let moves: Vec<(ReminderKey, Option<Encoded>)> = moves
            .iter()
            .map(|(old, new)| {
                let new = new
                    .as_ref()
                    .map(|n| Ok::<_, StoreError>((ReminderKey::of(n), n.encode()?)))
                    .transpose()?;
                Ok((ReminderKey::of(old), new))
            })
            .collect::<Result<_, StoreError>>()?;
        (
            &self.meta,
            &self.imports,
            &self.outbox,
            &self.transcript,
            &self.reminders,
            &self.reminder_index,
        )
            .transaction(|(meta, imports, outbox, transcript, reminders, index)| {
                meta.insert(AGENDA_KEY, agenda_bytes.as_slice())?;
                imports.insert(&key, record_bytes.as_slice())?;
                for p in &prepared {
                    transcript.insert(p.transcript_key.as_slice(), p.transcript.as_slice())?;
                    if let Some((id, bytes)) = &p.outbox {
                        outbox.insert(&id[..], bytes.as_slice())?;
                    }
                }
                for (old, new) in &moves {
                    reminders.remove(old.full())?;
                    index.remove(old.pair())?;
                    if let Some((key, bytes)) = new {
                        reminders.insert(key.full(), bytes.as_slice())?;
                        index.insert(key.pair(), &key.due_bytes()[..])?;
                    }
                }
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(|err| abort_error(err, "the agenda transaction"))?;
        self.db.flush_async().await?;
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
                self.db.flush_async().await?;
                Ok(Ok(()))
            }
            Err(TransactionError::Abort(earlier)) => Ok(Err(Announcement::decode(&earlier)?)),
            Err(TransactionError::Storage(err)) => Err(StoreError::Sled(err)),
        }
    }
}
