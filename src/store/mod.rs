//! The sled store: the one module that talks to sled.
//!
//! Layout (tree names are the constants in [`trees`]):
//!
//! | tree | key | value |
//! |---|---|---|
//! | `meta` | `b"schema"` | store schema version, `u32` big-endian |
//! | `meta` | `b"agenda"` | the current agenda, a versioned [`StoredAgenda`] |
//! | `meta` | `b"wal"` | the last write-ahead log batch applied to sled, `u64` big-endian |
//! | `imports` | import id, `u64` big-endian (so keys sort by time) | a versioned [`ImportRecord`] |
//! | `attendees` | attendee key (`web:…`, `local:…`) | an [`Attendee`] (context, saved sessions), binary (version 2) or JSON (version 1); SMS attendees (`sms:+15551234567`) are in the `attendees/` journal, and here only from before it |
//! | `transcript` | attendee key, `0xff`, entry id `u64` big-endian | a versioned [`TranscriptEntry`] (version 1), or a turn's entries (version 3, binary; version 2, JSON; see `TurnEntries`); turns and expert replies are in the `transcripts/` journal with the same keys and values, notices here |
//! | `opt_outs` | E.164 number | a versioned [`OptOut`] |
//! | `idempotency` | `MessageSid` or idempotency token | a [`Processed`], binary (version 2) or JSON (version 1): the reply given; new records are in the `processed/` journal, this tree holds older ones until they expire |
//! | `delivery` | outbound `MessageSid` | a versioned [`Delivery`]: the latest status |
//! | `outbox` | message id, `u64` big-endian (so keys sort by age) | a versioned [`Outgoing`], still queued |
//! | `outbox_done` | message id, `u64` big-endian | a versioned [`Outgoing`]: sent, failed or suppressed |
//! | `experts` | expert id | a versioned [`Expert`]: status and idle time as last saved |
//! | `tasks` | task id, `u64` big-endian; or a task id and a message's index, `u32` big-endian | a versioned [`Task`] (hand-off requests and their routing); or a [`TaskNote`]'s message: both are in the `tasks/` journal with the same keys and values, and here only from before it |
//! | `expert_tokens` | SHA-256 of an expert's bearer token | the expert id (tokens themselves are never stored) |
//! | `leads` | lead id, `u64` big-endian | a versioned [`Lead`] |
//!
//! The journals (`DATA_DIR/transcripts/`, `DATA_DIR/processed/`, `DATA_DIR/attendees/`,
//! `DATA_DIR/tasks/`, `DATA_DIR/intent_log/`, see `records`) hold the records every message
//! writes and the hand-offs, which sled's B-tree made costly.
//!
//! Every value is versioned: one byte of format version, then JSON, or for the records every
//! message writes (attendees, a turn's transcript entries, idempotency records) the binary format
//! of `binary`, whose older JSON versions are still read (`Compact`). A value with a version this
//! code does not know is an error, never misread.
//!
//! Invariants:
//! - Replacing the agenda and recording the import happen in one sled transaction, and are flushed
//!   to disk (`Store::durable`, group commit) before the caller is told it succeeded. A reader of the store sees
//!   the old agenda or the new one, never a mix.
//! - One inbound message is one change to the store's writer: its idempotency record, transcript
//!   entries, the attendee's new state, opt-out changes and routing tasks are logged together in
//!   the write-ahead log (file `wal` beside sled's folder, see `wal` and `writer`) and synced
//!   before the webhook answers 200, then applied to the journals and sled; a crash before they
//!   have it on disk is repaired from the log when the store opens. A redelivered message finds its idempotency
//!   record and gets the same reply; nothing is processed twice.
//! - Delivery statuses only move forward (see [`Delivery::rank`]).
//! - Nothing outside this module names a tree or encodes a key.

use std::fmt;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use jiff::civil::Date;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sled::transaction::TransactionError;

use crate::agenda::Agenda;
use crate::conversation::{Attendee, Effect};
use crate::import::Format;
use crate::outbound::{OutState, Outgoing};
use crate::routing::{Expert, Task};

mod binary;
mod journal;
mod logmap;
mod maps;
mod notices;
mod records;
mod resident;
mod wal;
mod writer;
pub use notices::{Announcement, Fired, Notice, ReminderKey};
use wal::{Logged, Op};
pub use writer::{BATCH_SPACING, COMMIT_BUCKETS, CommitTimes};

/// Tree names.
pub mod trees {
    pub const META: &str = "meta";
    pub const IMPORTS: &str = "imports";
    pub const ATTENDEES: &str = "attendees";
    pub const TRANSCRIPT: &str = "transcript";
    pub const OPT_OUTS: &str = "opt_outs";
    pub const IDEMPOTENCY: &str = "idempotency";
    pub const DELIVERY: &str = "delivery";
    pub const OUTBOX: &str = "outbox";
    pub const OUTBOX_DONE: &str = "outbox_done";
    pub const EXPERTS: &str = "experts";
    pub const TASKS: &str = "tasks";
    pub const EXPERT_TOKENS: &str = "expert_tokens";
    pub const LEADS: &str = "leads";
    /// What each message was read as, by time: hits per intent and the operator's list of
    /// messages nothing matched. Key: time (µs, big-endian) and an id; value: one event
    /// (version 1) or a batch of turns' events (version 2, one entry per writer batch). Kept for
    /// [`super::INTENT_LOG_TTL`]. New entries go to the `intent_log/` journal (same keys and
    /// values); this tree holds older ones until they expire.
    pub const INTENT_LOG: &str = "intent_log";
    /// Calendar feed tokens: `a/` + attendee key → token, `t/` + token → attendee key.
    pub const CALENDARS: &str = "calendars";
    /// Pending reminders: session + 0x00 + attendee → due (µs, big-endian). The due-ordered view
    /// is kept in memory (see `notices::Schedule`).
    pub const REMINDERS: &str = "reminders";
    /// Reminders sent: session + 0x00 + attendee → when (never a second one).
    pub const REMINDED: &str = "reminded";
    /// Announcements made, by their id (a repeated id sends nothing).
    pub const ANNOUNCEMENTS: &str = "announcements";
}

/// How long the intent log keeps a message's reading.
pub const INTENT_LOG_TTL: jiff::SignedDuration = jiff::SignedDuration::from_hours(7 * 24);

const SCHEMA_KEY: &[u8] = b"schema";
/// The write-ahead log's file in the data dir (beside sled's folder).
const WAL_FILE: &str = "wal";
const AGENDA_KEY: &[u8] = b"agenda";

/// The layout version this code writes. Opening a store with a newer one is refused.
pub const SCHEMA_VERSION: u32 = 1;

/// A value stored with a format version byte.
trait Versioned: Serialize + DeserializeOwned {
    const VERSION: u8;
    const WHAT: &'static str;

    fn encode(&self) -> Result<Vec<u8>, StoreError> {
        // Most records are a few hundred bytes: one allocation instead of a series of growths.
        let mut bytes = Vec::with_capacity(256);
        bytes.push(Self::VERSION);
        serde_json::to_writer(&mut bytes, self).map_err(|err| StoreError::Encode {
            what: Self::WHAT,
            message: err.to_string(),
        })?;
        Ok(bytes)
    }

    fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        match bytes.split_first() {
            Some((&version, json)) if version == Self::VERSION => serde_json::from_slice(json)
                .map_err(|err| StoreError::Decode {
                    what: Self::WHAT,
                    message: err.to_string(),
                }),
            Some((&version, _)) => Err(StoreError::Decode {
                what: Self::WHAT,
                message: format!(
                    "stored with format version {version}, this build reads version {}",
                    Self::VERSION
                ),
            }),
            None => Err(StoreError::Decode {
                what: Self::WHAT,
                message: "the value is empty".into(),
            }),
        }
    }
}

/// A value written in the binary format of [`binary`] (its own version byte), whose JSON version
/// ([`Versioned::VERSION`]) is still read. For the records every message writes: the binary
/// format spares them JSON's escaping and parsing.
trait Compact: Versioned {
    /// The binary format's version byte.
    const COMPACT: u8;

    /// An earlier binary format's version byte, still read (by [`Compact::get_older`]).
    const OLDER_COMPACT: Option<u8> = None;

    fn put(&self, out: &mut binary::Out<'_>);
    fn get(input: &mut binary::In<'_>) -> Result<Self, String>;

    /// Reads a value of the [`Compact::OLDER_COMPACT`] format.
    fn get_older(_input: &mut binary::In<'_>) -> Result<Self, String> {
        Err("no older binary format is read".into())
    }

    fn encode_compact(&self) -> Vec<u8> {
        binary::encode(Self::COMPACT, 256, |out| self.put(out))
    }

    /// A value in either format.
    fn decode_any(bytes: &[u8]) -> Result<Self, StoreError> {
        let decode_error = |message: String| StoreError::Decode {
            what: Self::WHAT,
            message,
        };
        match bytes.split_first() {
            Some((&version, rest))
                if version == Self::COMPACT || Some(version) == Self::OLDER_COMPACT =>
            {
                let mut input = binary::In::new(rest);
                let value = if version == Self::COMPACT {
                    Self::get(&mut input)
                } else {
                    Self::get_older(&mut input)
                };
                let value = value.map_err(decode_error)?;
                input.end().map_err(decode_error)?;
                Ok(value)
            }
            Some((&version, _)) if version == Self::VERSION => Self::decode(bytes),
            Some((&version, _)) => Err(decode_error(format!(
                "stored with format version {version}, this build reads versions {} and {}",
                Self::VERSION,
                Self::COMPACT
            ))),
            None => Err(decode_error("the value is empty".into())),
        }
    }
}

/// Where the current agenda came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AgendaSource {
    /// The embedded demo, placed with its first day on `first_day`. Unless `pinned` (placed on a
    /// date by the operator), `serve` moves it to today.
    Demo {
        first_day: Date,
        #[serde(default)]
        pinned: bool,
    },
    /// An imported file.
    File { name: String, format: Format },
}

/// The agenda as stored, with where and when it came from.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredAgenda {
    pub agenda: Agenda,
    pub source: AgendaSource,
    pub imported_at: Timestamp,
}

impl Versioned for StoredAgenda {
    const VERSION: u8 = 1;
    const WHAT: &'static str = "the agenda";
}

/// One import attempt, kept for the operator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImportRecord {
    pub id: u64,
    pub at: Timestamp,
    pub source: String,
    pub outcome: ImportOutcome,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum ImportOutcome {
    Replaced {
        format: Option<Format>,
        conference: String,
        sessions: usize,
        rooms: usize,
        days: usize,
    },
    Failed {
        error: String,
    },
}

impl Versioned for ImportRecord {
    const VERSION: u8 = 1;
    const WHAT: &'static str = "an import record";
}

/// A lead an expert captured when completing a conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lead {
    pub id: u64,
    pub at: Timestamp,
    pub expert: String,
    pub task: u64,
    pub name: String,
    pub company: String,
    pub email: String,
    pub interest: String,
    /// The attendee agreed to be contacted. Only leads with consent are exported.
    pub consent: bool,
    pub notes: String,
}

impl Lead {
    pub const CSV_HEADER: &'static str = "id,at,expert,task,name,company,email,interest,notes";

    /// The lead as a CSV row (RFC 4180 quoting; cells that a spreadsheet would run as a formula
    /// are prefixed with an apostrophe).
    pub fn csv_row(&self) -> String {
        let cell = |s: &str| {
            let s = if s.starts_with(['=', '+', '-', '@']) {
                format!("'{s}")
            } else {
                s.to_string()
            };
            if s.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s
            }
        };
        [
            self.id.to_string(),
            self.at.to_string(),
            cell(&self.expert),
            self.task.to_string(),
            cell(&self.name),
            cell(&self.company),
            cell(&self.email),
            cell(&self.interest),
            cell(&self.notes),
        ]
        .join(",")
    }
}

/// Leads with consent, as CSV with a header line.
pub fn leads_csv(leads: &[Lead]) -> String {
    let mut out = String::from(Lead::CSV_HEADER);
    out.push('\n');
    for lead in leads.iter().filter(|l| l.consent) {
        out.push_str(&lead.csv_row());
        out.push('\n');
    }
    out
}

impl Versioned for Lead {
    const VERSION: u8 = 1;
    const WHAT: &'static str = "a lead";
}

impl Versioned for Expert {
    const VERSION: u8 = 1;
    const WHAT: &'static str = "an expert";
}

impl Versioned for Task {
    const VERSION: u8 = 1;
    const WHAT: &'static str = "a task";
}

/// A message the attendee added to their hand-off, written with their turn under the task's key
/// and its place among the task's messages: attaching one writes it alone, not the whole task
/// again. (Rewriting the task, messages and all, for each message made a long wait quadratic
/// and was most of sled's writes under load.) A task's record holds its messages as of its last
/// save; [`Store::load_routing`] adds the notes from there on.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskNote {
    pub task: u64,
    /// Where the message goes in the task's messages (how many it held before).
    pub index: u32,
    pub at: Timestamp,
    pub text: String,
}

impl TaskNote {
    /// The key: the task's own, then the index (so a task's notes follow it, in order).
    fn key(&self) -> [u8; 12] {
        let mut key = [0; 12];
        key[..8].copy_from_slice(&self.task.to_be_bytes());
        key[8..].copy_from_slice(&self.index.to_be_bytes());
        key
    }

    /// The task and index of a note's key; `None` for a task's own key (8 bytes).
    fn split_key(key: &[u8]) -> Option<(u64, u32)> {
        let (task, index) = <&[u8; 12]>::try_from(key).ok()?.split_at(8);
        Some((
            u64::from_be_bytes(task.try_into().ok()?),
            u32::from_be_bytes(index.try_into().ok()?),
        ))
    }
}

/// A [`TaskNote`]'s stored value.
#[derive(Serialize, Deserialize)]
struct StoredNote {
    at: Timestamp,
    text: String,
}

impl Versioned for StoredNote {
    const VERSION: u8 = 1;
    const WHAT: &'static str = "a message added to a task";
}

impl Versioned for Outgoing {
    const VERSION: u8 = 1;
    const WHAT: &'static str = "an outbound message";
}

impl Versioned for Attendee {
    const VERSION: u8 = 1;
    const WHAT: &'static str = "an attendee";
}

impl Compact for Attendee {
    const COMPACT: u8 = 2;

    fn put(&self, out: &mut binary::Out<'_>) {
        binary::put_attendee(out, self);
    }

    fn get(input: &mut binary::In<'_>) -> Result<Self, String> {
        binary::get_attendee(input)
    }
}

/// One message in a conversation, either way.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TranscriptEntry {
    pub at: Timestamp,
    pub inbound: bool,
    pub text: String,
    /// The channel's message id (Twilio's `MessageSid`), when there is one.
    pub message_id: Option<String>,
    /// For inbound messages: the intent it was read as.
    pub intent: Option<String>,
    /// For web chat replies: the sessions shown as cards under the text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sessions: Vec<String>,
    /// For messages an expert wrote: the expert's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

impl Versioned for TranscriptEntry {
    const VERSION: u8 = 1;
    const WHAT: &'static str = "a transcript entry";
}

/// A turn's transcript entries (the message and its replies) under one key: one insert per turn
/// instead of one per message. Written as format version 3: the version byte, the number of
/// entries (so counting decodes nothing), then the entries in the binary format of [`binary`].
/// Version 2 (the same with the entries as a JSON list) and entries written one at a time
/// (version 1: expert replies, notices, turns before version 2) are read as well.
struct TurnEntries;

impl TurnEntries {
    const VERSION: u8 = 3;
    const JSON: u8 = 2;
    /// The most entries one value holds (the count is one byte); a turn with more takes several.
    const MAX: usize = u8::MAX as usize;

    fn encode(entries: &[&TranscriptEntry]) -> Result<Vec<u8>, StoreError> {
        let count = u8::try_from(entries.len()).map_err(|_| StoreError::Encode {
            what: TranscriptEntry::WHAT,
            message: format!("{} entries under one key", entries.len()),
        })?;
        let mut bytes = Vec::with_capacity(512);
        bytes.extend([Self::VERSION, count]);
        let mut out = binary::Out(&mut bytes);
        for entry in entries {
            binary::put_entry(&mut out, entry);
        }
        Ok(bytes)
    }

    /// The entries of a stored value of any version.
    fn decode_any(bytes: &[u8]) -> Result<Vec<TranscriptEntry>, StoreError> {
        let decode_error = |message: String| StoreError::Decode {
            what: TranscriptEntry::WHAT,
            message,
        };
        match bytes {
            [Self::VERSION, count, rest @ ..] => {
                let mut input = binary::In::new(rest);
                let entries = (0..*count)
                    .map(|_| binary::get_entry(&mut input))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(decode_error)?;
                input.end().map_err(decode_error)?;
                Ok(entries)
            }
            [Self::JSON, _, json @ ..] => {
                serde_json::from_slice(json).map_err(|err| decode_error(err.to_string()))
            }
            _ => Ok(vec![TranscriptEntry::decode(bytes)?]),
        }
    }

    /// How many entries a stored value holds.
    fn count(bytes: &[u8]) -> usize {
        match bytes {
            [Self::VERSION | Self::JSON, count, ..] => usize::from(*count),
            _ => 1,
        }
    }
}

/// An opted-out number.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OptOut {
    pub at: Timestamp,
    /// The message that opted out (`STOP`, `OptOutType=STOP`, error 21610).
    pub reason: String,
}

impl Versioned for OptOut {
    const VERSION: u8 = 1;
    const WHAT: &'static str = "an opt-out";
}

/// One reply to a message: its text and, for the web chat, the sessions it shows as cards.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub text: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sessions: Vec<String>,
}

/// A message that was processed: what was answered, so a redelivery gets the same answer.
///
/// Written in the binary format, version 3 (the time, then the replies). Still read: binary
/// version 2 and JSON version 1, whose `reply` is the replies as a JSON list (of replies, or of
/// texts before replies carried cards).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ProcessedJson", into = "ProcessedJson")]
pub struct Processed {
    pub at: Timestamp,
    pub replies: Vec<Reply>,
}

/// [`Processed`] as JSON (format version 1) writes it: the replies as a JSON string.
#[derive(Serialize, Deserialize)]
struct ProcessedJson {
    at: Timestamp,
    reply: String,
}

impl TryFrom<ProcessedJson> for Processed {
    type Error = String;

    fn try_from(json: ProcessedJson) -> Result<Self, String> {
        Ok(Processed {
            at: json.at,
            replies: replies_from_json(&json.reply)?,
        })
    }
}

impl From<Processed> for ProcessedJson {
    fn from(processed: Processed) -> Self {
        ProcessedJson {
            at: processed.at,
            reply: serde_json::to_string(&processed.replies).unwrap_or_else(|_| "[]".into()),
        }
    }
}

/// The replies of an idempotency record written before version 3: a JSON list of replies, or of
/// texts (before replies carried cards).
fn replies_from_json(json: &str) -> Result<Vec<Reply>, String> {
    serde_json::from_str(json).or_else(|err| {
        serde_json::from_str::<Vec<String>>(json)
            .map(|texts| {
                texts
                    .into_iter()
                    .map(|text| Reply {
                        text,
                        sessions: Vec::new(),
                    })
                    .collect()
            })
            .map_err(|_| format!("the stored replies are not a list of replies: {err}"))
    })
}

impl Versioned for Processed {
    const VERSION: u8 = 1;
    const WHAT: &'static str = "an idempotency record";
}

impl Compact for Processed {
    const COMPACT: u8 = 3;
    const OLDER_COMPACT: Option<u8> = Some(2);

    fn put(&self, out: &mut binary::Out<'_>) {
        // Destructured so a new field is a compile error here.
        let Processed { at, replies } = self;
        binary::put_processed(
            out,
            *at,
            replies
                .iter()
                .map(|r| (r.text.as_str(), r.sessions.as_slice())),
        );
    }

    fn get(input: &mut binary::In<'_>) -> Result<Self, String> {
        binary::get_processed(input)
    }

    fn get_older(input: &mut binary::In<'_>) -> Result<Self, String> {
        let (at, json) = binary::get_processed_v2(input)?;
        Ok(Processed {
            at,
            replies: replies_from_json(&json)?,
        })
    }
}

/// The delivery status of an outbound message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub status: String,
    pub error_code: Option<String>,
    pub updated_at: Timestamp,
}

impl Delivery {
    /// How far along a status is. A callback never moves a message to a lower rank.
    pub fn rank(status: &str) -> u8 {
        match status {
            "accepted" | "scheduled" | "queued" => 1,
            "sending" => 2,
            "sent" => 3,
            "delivered" | "undelivered" | "failed" | "canceled" | "partially_delivered" => 4,
            "read" => 5,
            _ => 0,
        }
    }
}

impl Versioned for Delivery {
    const VERSION: u8 = 1;
    const WHAT: &'static str = "a delivery status";
}

/// Everything one inbound message changes, written in one transaction by [`Store::commit_turn`].
#[derive(Clone, Debug)]
pub struct TurnRecord {
    pub attendee_key: String,
    /// The number, for opt-outs (SMS only).
    pub phone: Option<String>,
    pub attendee: Attendee,
    pub inbound: TranscriptEntry,
    pub outbound: Vec<TranscriptEntry>,
    pub effects: Vec<Effect>,
    /// The idempotency key: a redelivery with it gets the replies (`outbound`) again.
    pub idempotency: Option<String>,
    /// Routing tasks the turn created (a hand-off request).
    pub tasks: Vec<Task>,
    /// Messages the turn added to the attendee's task.
    pub notes: Vec<TaskNote>,
    /// The message's reading, for the operator's statistics.
    pub log: IntentEvent,
    /// Reminders for sessions the turn saved.
    pub remind: Vec<crate::notices::reminders::Reminder>,
    /// Sessions the turn removed: their reminders go.
    pub unremind: Vec<String>,
}

/// One message's reading, in the intent log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IntentEvent {
    pub intent: String,
    /// For messages nothing matched: the message (at most 160 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmatched: Option<String>,
}

impl Versioned for IntentEvent {
    const VERSION: u8 = 1;
    const WHAT: &'static str = "an intent log entry";
}

/// The intent log entry of a batch of turns: every message's reading, in order. (Version 1
/// entries, one message each, are still read.)
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
struct IntentEvents(Vec<IntentEvent>);

impl Versioned for IntentEvents {
    const VERSION: u8 = 2;
    const WHAT: &'static str = "an intent log entry";
}

impl IntentEvents {
    /// The stored entry of events already encoded as JSON one by one.
    fn encode_joined(events: &[Vec<u8>]) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(3 + events.iter().map(|e| e.len() + 1).sum::<usize>());
        bytes.push(Self::VERSION);
        bytes.push(b'[');
        for (i, event) in events.iter().enumerate() {
            if i > 0 {
                bytes.push(b',');
            }
            bytes.extend_from_slice(event);
        }
        bytes.push(b']');
        bytes
    }

    /// The events of a stored entry of either version.
    fn decode_any(bytes: &[u8]) -> Result<Vec<IntentEvent>, StoreError> {
        match bytes.first() {
            Some(&IntentEvent::VERSION) => Ok(vec![IntentEvent::decode(bytes)?]),
            _ => Ok(IntentEvents::decode(bytes)?.0),
        }
    }
}

/// What the intent log says about a period: hits per intent (most first) and the messages that
/// fell to fallback, grouped by their folded text, most frequent first.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct IntentReport {
    pub messages: u64,
    pub hits: Vec<(String, u64)>,
    pub unmatched: Vec<Unmatched>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Unmatched {
    /// The most recent wording.
    pub text: String,
    pub count: u64,
    pub last: Timestamp,
}

/// The stored idempotency record of `key`: the journal's, else one sled holds from before the
/// journals (until it expires), read only when the count of sled's keys says it may be there.
fn stored_processed(
    records: &records::Records,
    resident: &resident::Resident,
    idempotency: &sled::Tree,
    key: &[u8],
) -> Result<Option<Vec<u8>>, StoreError> {
    if let Some(bytes) = records.processed(key).map_err(journal_error)? {
        return Ok(Some(bytes));
    }
    if !resident.idempotency.may_hold(key) {
        return Ok(None);
    }
    Ok(idempotency.get(key)?.map(|b| b.to_vec()))
}

/// The intent log key: the time (microseconds, big-endian, so keys sort by time) and a unique id.
fn intent_log_key(at: Timestamp, id: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    let micros = u64::try_from(at.as_microsecond()).unwrap_or(0);
    key[..8].copy_from_slice(&micros.to_be_bytes());
    key[8..].copy_from_slice(&id.to_be_bytes());
    key
}

/// What [`Store::commit_turn`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum Committed {
    Done,
    /// The message was processed before; these are the replies given then.
    Duplicate(Vec<Reply>),
}

#[derive(Debug)]
pub enum StoreError {
    /// Another process (usually a running `concierge serve`) holds the database.
    Locked {
        path: PathBuf,
    },
    Open {
        path: PathBuf,
        message: String,
    },
    /// The store was written by a newer concierge.
    Schema {
        found: u32,
    },
    Sled(sled::Error),
    /// Making writes durable failed.
    Flush {
        message: String,
    },
    /// A batch of conversation turns could not be written (nothing of it was).
    Commit {
        message: String,
    },
    /// A journal (transcripts, processed messages, SMS attendees) could not be read or written.
    Journal {
        message: String,
    },
    Encode {
        what: &'static str,
        message: String,
    },
    Decode {
        what: &'static str,
        message: String,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Locked { path } => write!(
                f,
                "the data dir {} is in use by another concierge process (is `concierge serve` running?); \
                 stop it first, or point this command at another --data-dir",
                path.display()
            ),
            StoreError::Open { path, message } => {
                write!(f, "cannot open the store in {}: {message}", path.display())
            }
            StoreError::Schema { found } => write!(
                f,
                "the store has layout version {found}, newer than this build's {SCHEMA_VERSION}; upgrade concierge"
            ),
            StoreError::Sled(err) => write!(f, "storage error: {err}"),
            StoreError::Flush { message } => write!(f, "storage flush failed: {message}"),
            StoreError::Commit { message } => write!(f, "storage write failed: {message}"),
            StoreError::Journal { message } => write!(f, "journal error: {message}"),
            StoreError::Encode { what, message } => write!(f, "cannot encode {what}: {message}"),
            StoreError::Decode { what, message } => {
                write!(f, "cannot read {what} from the store: {message}")
            }
        }
    }
}

impl std::error::Error for StoreError {}

impl From<sled::Error> for StoreError {
    fn from(err: sled::Error) -> StoreError {
        StoreError::Sled(err)
    }
}

/// What [`Store::in_memory`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InMemory {
    pub attendees: usize,
    pub idempotency_keys: usize,
}

/// How long [`Store::open`] waits for sled's lock on its files before reporting it held.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// A handle on the store. Cheap to clone (one reference count); all clones share one database.
#[derive(Clone)]
pub struct Store(std::sync::Arc<Inner>);

impl std::ops::Deref for Store {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// The database and its trees, behind every [`Store`] handle.
pub struct Inner {
    db: sled::Db,
    meta: sled::Tree,
    imports: sled::Tree,
    attendees: sled::Tree,
    transcript: sled::Tree,
    idempotency: sled::Tree,
    delivery: sled::Tree,
    outbox: sled::Tree,
    outbox_done: sled::Tree,
    experts: sled::Tree,
    expert_tokens: sled::Tree,
    leads: sled::Tree,
    intent_log: sled::Tree,
    calendars: sled::Tree,
    reminders: sled::Tree,
    schedule: std::sync::Arc<notices::Schedule>,
    writer: writer::Writer,
    /// The opt-outs and the hashes of the idempotency keys sled holds (from before the
    /// journals), in memory: see [`resident`].
    resident: std::sync::Arc<resident::Resident>,
    /// Transcript turns, idempotency records, SMS attendees' records and tasks, in journals: see
    /// [`records`].
    records: std::sync::Arc<records::Records>,
    /// The write-ahead log's file (for its size on disk).
    wal_path: PathBuf,
    commit_times: CommitTimes,
    reminded: sled::Tree,
    announcements: sled::Tree,
}

/// The key of an expert token: its SHA-256, so a stolen database holds no usable tokens.
fn token_hash(token: &str) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(token.trim().as_bytes()).to_vec()
}

pub(super) fn journal_error(err: std::io::Error) -> StoreError {
    StoreError::Journal {
        message: err.to_string(),
    }
}

/// Two lists sorted by id, merged (ties: `a` first).
fn merge_by_id(a: Vec<(u64, Vec<u8>)>, b: Vec<(u64, Vec<u8>)>) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if y.0 < x.0 => b.next(),
            (Some(_), _) => a.next(),
            (None, _) => b.next(),
        };
        match next {
            Some(item) => out.push(item),
            None => return out,
        }
    }
}

/// The transcript key prefix of an attendee: its key and a `0xff` separator (never in UTF-8).
fn transcript_prefix(attendee: &str) -> Vec<u8> {
    let mut key = attendee.as_bytes().to_vec();
    key.push(0xff);
    key
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the store in `dir`, with `cache_bytes` of page cache. A data
    /// dir it creates is readable by its owner only (it holds phone numbers and messages).
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Store, StoreError> {
        let mut create = std::fs::DirBuilder::new();
        create.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut create, 0o700);
        create.create(dir).map_err(|err| StoreError::Open {
            path: dir.to_path_buf(),
            message: err.to_string(),
        })?;
        let config = sled::Config::new()
            .path(dir.join("sled"))
            .cache_capacity(cache_bytes)
            // Durability comes from the write-ahead log and the checkpoints' flushes, so sled's
            // own flush every 500 ms only competed with the writer's inserts: without it the
            // open loop's p99 at 15,000 req/s measured 11.7-30.1 ms against 19.7-87.6 ms (three
            // interleaved pairs of runs), and checkpoints still took 0.4-0.5 ms.
            .flush_every_ms(None);
        // sled lets go of its file lock when the last of its IO threads drops its handle, a
        // moment after the previous store in this process closed (sled's own tests block on the
        // lock for this reason): 9 of 150 runs of the unit tests that reopen a store failed
        // without this wait. Another process holding the lock is reported after it.
        let started = std::time::Instant::now();
        let db = loop {
            match config.open() {
                Ok(db) => break db,
                Err(err) => {
                    // sled reports a held lock as an IO error whose text names the lock.
                    let message = err.to_string();
                    if !message.contains("could not acquire lock") {
                        return Err(StoreError::Open {
                            path: dir.to_path_buf(),
                            message,
                        });
                    }
                    if started.elapsed() >= LOCK_WAIT {
                        return Err(StoreError::Locked {
                            path: dir.to_path_buf(),
                        });
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
            }
        };
        // Opened after sled, whose lock keeps a second process away from the log and the
        // journals too.
        let (wal, logged) =
            wal::Wal::open(&dir.join(WAL_FILE)).map_err(|err| StoreError::Open {
                path: dir.to_path_buf(),
                message: format!("cannot open the write-ahead log {WAL_FILE}: {err}"),
            })?;
        let records = records::Records::open(dir).map_err(|err| StoreError::Open {
            path: dir.to_path_buf(),
            message: format!("cannot open the journals: {err}"),
        })?;
        Store::from_db(db, wal, logged, records)
    }

    /// A store that lives in a temporary directory and is deleted on drop, for tests.
    pub fn temporary() -> Result<Store, StoreError> {
        let db = sled::Config::new().temporary(true).open()?;
        let wal = wal::Wal::temporary().map_err(|err| StoreError::Open {
            path: std::env::temp_dir(),
            message: format!("cannot create a write-ahead log: {err}"),
        })?;
        let records = records::Records::temporary().map_err(|err| StoreError::Open {
            path: std::env::temp_dir(),
            message: format!("cannot create the journals: {err}"),
        })?;
        Store::from_db(db, wal, Vec::new(), records)
    }

    /// Opens the store on `db` and the journals in `records`, first applying what `wal` holds
    /// that they may not (after a crash); `logged` is what [`wal::Wal::open`] read.
    fn from_db(
        db: sled::Db,
        mut wal: wal::Wal,
        logged: Vec<wal::Batch>,
        records: records::Records,
    ) -> Result<Store, StoreError> {
        let meta = db.open_tree(trees::META)?;
        let imports = db.open_tree(trees::IMPORTS)?;
        match meta.get(SCHEMA_KEY)? {
            None => {
                meta.insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes())?;
            }
            Some(bytes) => {
                let found = <[u8; 4]>::try_from(bytes.as_ref())
                    .map(u32::from_be_bytes)
                    .map_err(|_| StoreError::Decode {
                        what: "the schema version",
                        message: format!("{} bytes, expected 4", bytes.len()),
                    })?;
                if found > SCHEMA_VERSION {
                    return Err(StoreError::Schema { found });
                }
            }
        }
        let wal_path = wal.path().to_path_buf();
        let records = std::sync::Arc::new(records);
        let writer_trees = writer::Trees::open(&db, records.clone())?;
        let seq = writer::replay(&db, &writer_trees, &mut wal, logged)?;
        writer_trees.load_resident()?;
        let resident = writer_trees.resident.clone();
        let reminders = db.open_tree(trees::REMINDERS)?;
        let schedule = std::sync::Arc::new(notices::Schedule::load(&reminders)?);
        let commit_times = CommitTimes::default();
        let writer = writer::Writer::start(
            db.clone(),
            writer_trees,
            schedule.clone(),
            wal,
            seq,
            commit_times.clone(),
        )
        .map_err(|err| StoreError::Flush {
            message: format!("cannot start the store's writer thread: {err}"),
        })?;
        Ok(Store(std::sync::Arc::new(Inner {
            attendees: db.open_tree(trees::ATTENDEES)?,
            transcript: db.open_tree(trees::TRANSCRIPT)?,
            idempotency: db.open_tree(trees::IDEMPOTENCY)?,
            delivery: db.open_tree(trees::DELIVERY)?,
            outbox: db.open_tree(trees::OUTBOX)?,
            outbox_done: db.open_tree(trees::OUTBOX_DONE)?,
            experts: db.open_tree(trees::EXPERTS)?,
            expert_tokens: db.open_tree(trees::EXPERT_TOKENS)?,
            leads: db.open_tree(trees::LEADS)?,
            intent_log: db.open_tree(trees::INTENT_LOG)?,
            calendars: db.open_tree(trees::CALENDARS)?,
            schedule,
            writer,
            resident,
            records,
            wal_path,
            commit_times,
            reminders,
            reminded: db.open_tree(trees::REMINDED)?,
            announcements: db.open_tree(trees::ANNOUNCEMENTS)?,
            db,
            meta,
            imports,
        })))
    }

    /// The current agenda, if one was ever stored.
    pub fn load_agenda(&self) -> Result<Option<StoredAgenda>, StoreError> {
        self.meta
            .get(AGENDA_KEY)?
            .map(|bytes| StoredAgenda::decode(&bytes))
            .transpose()
    }

    /// Replaces the agenda and records the import, atomically, and returns once both are on disk.
    pub async fn replace_agenda(
        &self,
        agenda: Agenda,
        source: AgendaSource,
        now: Timestamp,
    ) -> Result<ImportRecord, StoreError> {
        self.replace_agenda_with(agenda, source, now, &[], &[])
            .await
    }

    /// The import record and the stored agenda's bytes for a replacement.
    fn agenda_record(
        &self,
        agenda: Agenda,
        source: AgendaSource,
        now: Timestamp,
    ) -> Result<(ImportRecord, Vec<u8>, Vec<u8>), StoreError> {
        let record = ImportRecord {
            id: self.db.generate_id()?,
            at: now,
            source: match &source {
                AgendaSource::Demo { .. } => crate::agenda::demo::DEMO_SOURCE.to_string(),
                AgendaSource::File { name, .. } => name.clone(),
            },
            outcome: ImportOutcome::Replaced {
                format: match &source {
                    AgendaSource::Demo { .. } => Some(Format::Native),
                    AgendaSource::File { format, .. } => Some(*format),
                },
                conference: agenda.conference.name.clone(),
                sessions: agenda.sessions.len(),
                rooms: agenda.rooms.len(),
                days: agenda.conference.days.len(),
            },
        };
        let stored = StoredAgenda {
            agenda,
            source,
            imported_at: now,
        };
        let agenda_bytes = stored.encode()?;
        let record_bytes = record.encode()?;
        Ok((record, agenda_bytes, record_bytes))
    }

    /// Records an import that failed, so the operator can see it. The agenda is not touched.
    pub async fn record_failed_import(
        &self,
        source: &str,
        error: &str,
        now: Timestamp,
    ) -> Result<ImportRecord, StoreError> {
        let record = ImportRecord {
            id: self.db.generate_id()?,
            at: now,
            source: source.to_string(),
            outcome: ImportOutcome::Failed {
                error: error.to_string(),
            },
        };
        self.imports
            .insert(record.id.to_be_bytes(), record.encode()?)?;
        self.durable().await?;
        Ok(record)
    }

    /// The most recent imports, newest first.
    pub fn recent_imports(&self, limit: usize) -> Result<Vec<ImportRecord>, StoreError> {
        self.imports
            .iter()
            .rev()
            .take(limit)
            .map(|entry| {
                let (_, bytes) = entry?;
                ImportRecord::decode(&bytes)
            })
            .collect()
    }

    /// What the store remembers of an attendee (a new attendee if nothing).
    pub fn attendee(&self, key: &str) -> Result<Attendee, StoreError> {
        let key = key.as_bytes();
        let stored = if records::holds_attendee(key) {
            self.records.attendees.get(key)
        } else {
            self.attendees.get(key)?
        };
        Ok(stored
            .map(|b| Attendee::decode_any(&b))
            .transpose()?
            .unwrap_or_default())
    }

    pub fn is_opted_out(&self, phone: &str) -> Result<bool, StoreError> {
        Ok(self.resident.opt_outs.contains(phone.as_bytes()))
    }

    /// How long the writer's log syncs and batches take (histograms the metrics listener serves).
    pub fn commit_times(&self) -> &CommitTimes {
        &self.commit_times
    }

    /// How much the store holds in memory: SMS attendees' records and idempotency keys (their
    /// hashes), for the metrics.
    pub fn in_memory(&self) -> InMemory {
        InMemory {
            attendees: self.records.attendees.len(),
            idempotency_keys: self.records.processed_len() + self.resident.idempotency.len(),
        }
    }

    /// The reply given to a message already processed, if it was.
    pub fn processed(&self, key: &str) -> Result<Option<Processed>, StoreError> {
        stored_processed(
            &self.records,
            &self.resident,
            &self.idempotency,
            key.as_bytes(),
        )?
        .map(|b| Processed::decode_any(&b))
        .transpose()
    }

    /// The transcript of an attendee, oldest first: the journaled turns and the entries in sled
    /// (notices, and anything from before the journals), merged by their ids.
    pub fn transcript(&self, attendee: &str) -> Result<Vec<TranscriptEntry>, StoreError> {
        let journaled = self
            .records
            .transcript(attendee.as_bytes())
            .map_err(journal_error)?;
        let mut stored = Vec::new();
        for entry in self.transcript.scan_prefix(transcript_prefix(attendee)) {
            let (key, bytes) = entry?;
            let id = records::split_transcript_key(&key).map_or(0, |(_, id)| id);
            stored.push((id, bytes.to_vec()));
        }
        let mut values = merge_by_id(journaled, stored);
        let mut entries = Vec::with_capacity(values.len());
        for (_, bytes) in values.drain(..) {
            entries.extend(TurnEntries::decode_any(&bytes)?);
        }
        Ok(entries)
    }

    /// How many entries an attendee's transcript has (without decoding them).
    pub fn transcript_len(&self, attendee: &str) -> Result<usize, StoreError> {
        let mut n: usize = self
            .records
            .turns_of(attendee.as_bytes())
            .iter()
            .map(|turn| turn.entries as usize)
            .sum();
        for entry in self.transcript.scan_prefix(transcript_prefix(attendee)) {
            let (_, bytes) = entry?;
            n += TurnEntries::count(&bytes);
        }
        Ok(n)
    }

    /// Writes everything one message changed at once (with the other changes queued at the same
    /// moment, see `writer`), and returns once it is on disk. If the message was processed
    /// already (same idempotency key), nothing is written and the earlier reply returned.
    pub async fn commit_turn(
        &self,
        record: &TurnRecord,
        now: Timestamp,
    ) -> Result<Committed, StoreError> {
        let prefix = transcript_prefix(&record.attendee_key);
        let mut ops = Vec::with_capacity(record.outbound.len() + record.tasks.len() + 4);
        ops.push(Op::insert(
            Logged::Attendees,
            record.attendee_key.as_bytes(),
            record.attendee.encode_compact(),
        ));
        let entries: Vec<&TranscriptEntry> = std::iter::once(&record.inbound)
            .chain(&record.outbound)
            .collect();
        for chunk in entries.chunks(TurnEntries::MAX) {
            let mut key = prefix.clone();
            key.extend_from_slice(&self.db.generate_id()?.to_be_bytes());
            ops.push(Op::insert(
                Logged::Transcript,
                key,
                TurnEntries::encode(chunk)?,
            ));
        }
        let idempotency = record.idempotency.as_ref().map(|key| {
            // What `Processed { at: now, replies }.encode_compact()` writes, from the turn's
            // outbound entries instead of copies of them.
            let size: usize = record.outbound.iter().map(|e| e.text.len() + 4).sum();
            let bytes = binary::encode(Processed::COMPACT, size + 16, |out| {
                binary::put_processed(
                    out,
                    now,
                    record
                        .outbound
                        .iter()
                        .map(|e| (e.text.as_str(), e.sessions.as_slice())),
                )
            });
            (key.as_bytes().to_vec(), bytes)
        });
        if let Some(phone) = &record.phone {
            for effect in &record.effects {
                match effect {
                    Effect::OptOut => ops.push(Op::insert(
                        Logged::OptOuts,
                        phone.as_bytes(),
                        OptOut {
                            at: now,
                            // Why: the message's first words.
                            reason: record.inbound.text.trim().chars().take(32).collect(),
                        }
                        .encode()?,
                    )),
                    Effect::OptIn => ops.push(Op::remove(Logged::OptOuts, phone.as_bytes())),
                    _ => {}
                }
            }
        }
        for task in &record.tasks {
            ops.push(Op::insert(
                Logged::Tasks,
                task.id.to_be_bytes(),
                task.encode()?,
            ));
        }
        for note in &record.notes {
            let value = StoredNote {
                at: note.at,
                text: note.text.clone(),
            };
            ops.push(Op::insert(Logged::Tasks, note.key(), value.encode()?));
        }
        let intent = serde_json::to_vec(&record.log).map_err(|err| StoreError::Encode {
            what: IntentEvent::WHAT,
            message: err.to_string(),
        })?;
        let change = writer::Change {
            idempotency,
            ops,
            intent: Some((now, intent)),
            unremind: record
                .unremind
                .iter()
                .map(|session| notices::pair(session, &record.attendee_key))
                .collect(),
            remind: record.remind.iter().map(ReminderKey::of).collect(),
        };
        match self.writer.commit(change).await? {
            writer::Outcome::Done => Ok(Committed::Done),
            writer::Outcome::Duplicate(earlier) => Ok(Committed::Duplicate(
                Processed::decode_any(&earlier)?.replies,
            )),
        }
    }

    /// Writes `ops` at once, through the writer's log; returns once they are on disk.
    async fn write(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        self.writer.commit(writer::Change::ops(ops)).await.map(drop)
    }

    /// Records an opt-out outside a conversation (Twilio error 21610 when sending).
    pub async fn opt_out(
        &self,
        phone: &str,
        reason: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let record = OptOut {
            at: now,
            reason: reason.into(),
        };
        self.write(vec![Op::insert(
            Logged::OptOuts,
            phone.as_bytes(),
            record.encode()?,
        )])
        .await
    }

    /// Applies a delivery status callback if it moves the message forward. Returns the status the
    /// message has afterwards.
    pub async fn update_delivery(
        &self,
        sid: &str,
        status: &str,
        error_code: Option<String>,
        now: Timestamp,
    ) -> Result<String, StoreError> {
        let update = Delivery {
            status: status.to_string(),
            error_code,
            updated_at: now,
        };
        let bytes = update.encode()?;
        let result = self.delivery.transaction(|tree| {
            if let Some(current) = tree.get(sid.as_bytes())? {
                let current = Delivery::decode(&current)
                    .map_err(|_| sled::transaction::ConflictableTransactionError::Abort(()))?;
                if Delivery::rank(&current.status) >= Delivery::rank(status) {
                    return Ok(current.status);
                }
            }
            tree.insert(sid.as_bytes(), bytes.as_slice())?;
            Ok(status.to_string())
        });
        let kept = result.map_err(|err| match err {
            TransactionError::Storage(err) => StoreError::Sled(err),
            TransactionError::Abort(()) => StoreError::Decode {
                what: Delivery::WHAT,
                message: format!("the stored status of {sid} is unreadable"),
            },
        })?;
        self.durable().await?;
        Ok(kept)
    }

    pub fn delivery(&self, sid: &str) -> Result<Option<Delivery>, StoreError> {
        self.delivery
            .get(sid.as_bytes())?
            .map(|b| Delivery::decode(&b))
            .transpose()
    }

    /// Forgets idempotency records older than `before`. Returns how many were removed.
    pub fn expire_processed(&self, before: Timestamp) -> Result<usize, StoreError> {
        let mut removed = self
            .records
            .expire_processed(before)
            .map_err(journal_error)?;
        for entry in self.idempotency.iter() {
            let (key, bytes) = entry?;
            if Processed::decode_any(&bytes).is_ok_and(|p| p.at < before)
                && self.idempotency.remove(&key)?.is_some()
            {
                self.resident.idempotency.removed(&key);
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Hits per intent and the unmatched messages from `since` on; the `top` most frequent
    /// unmatched messages.
    pub fn intent_report(&self, since: Timestamp, top: usize) -> Result<IntentReport, StoreError> {
        let mut report = IntentReport::default();
        let mut hits: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
        let mut unmatched: std::collections::HashMap<String, Unmatched> =
            std::collections::HashMap::new();
        let mut count = |key: &[u8], bytes: &[u8]| -> Result<(), StoreError> {
            let at = records::intent_log_at(key)
                .and_then(|micros| Timestamp::from_microsecond(micros).ok())
                .unwrap_or(since);
            for event in IntentEvents::decode_any(bytes)? {
                report.messages += 1;
                *hits.entry(event.intent).or_default() += 1;
                if let Some(text) = event.unmatched {
                    let group = crate::text::fold(text.trim())
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ")
                        .trim_matches(|c: char| !c.is_alphanumeric())
                        .to_string();
                    let u = unmatched.entry(group).or_insert(Unmatched {
                        text: text.clone(),
                        count: 0,
                        last: at,
                    });
                    u.count += 1;
                    if at >= u.last {
                        u.last = at;
                        u.text = text;
                    }
                }
            }
            Ok(())
        };
        // The journal's entries, then sled's from before it (the order does not matter).
        let mut failed = Ok(());
        self.records
            .intent_log(since, |key, value| {
                if failed.is_ok() {
                    failed = count(key, value);
                }
            })
            .map_err(journal_error)?;
        failed?;
        for entry in self.intent_log.range(intent_log_key(since, 0)..) {
            let (key, bytes) = entry?;
            count(&key, &bytes)?;
        }
        report.hits = hits.into_iter().collect();
        report
            .hits
            .sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let mut unmatched: Vec<Unmatched> = unmatched.into_values().collect();
        unmatched.sort_by(|a, b| b.count.cmp(&a.count).then(b.last.cmp(&a.last)));
        unmatched.truncate(top);
        report.unmatched = unmatched;
        Ok(report)
    }

    /// The attendee's calendar feed token, made (random, 128 bits) and stored on first use. The
    /// same attendee always gets the same token, so a subscribed calendar keeps working.
    pub async fn calendar_token(&self, attendee: &str) -> Result<String, StoreError> {
        let by_attendee = [b"a/".as_slice(), attendee.as_bytes()].concat();
        if let Some(token) = self.calendars.get(&by_attendee)? {
            return Ok(String::from_utf8_lossy(&token).into_owned());
        }
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|err| StoreError::Encode {
            what: "a calendar token",
            message: format!("no randomness: {err}"),
        })?;
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let by_token = [b"t/".as_slice(), token.as_bytes()].concat();
        let result = self.calendars.transaction(|tx| {
            if let Some(existing) = tx.get(&by_attendee)? {
                return Ok(String::from_utf8_lossy(&existing).into_owned());
            }
            tx.insert(by_attendee.as_slice(), token.as_bytes())?;
            tx.insert(by_token.as_slice(), attendee.as_bytes())?;
            Ok(token.clone())
        });
        let token = result.map_err(|err: TransactionError<()>| match err {
            TransactionError::Storage(err) => StoreError::Sled(err),
            TransactionError::Abort(()) => StoreError::Sled(sled::Error::ReportableBug(
                "calendar token transaction aborted".into(),
            )),
        })?;
        self.durable().await?;
        Ok(token)
    }

    /// The attendee a calendar feed token belongs to.
    pub fn calendar_owner(&self, token: &str) -> Result<Option<String>, StoreError> {
        let by_token = [b"t/".as_slice(), token.as_bytes()].concat();
        Ok(self
            .calendars
            .get(by_token)?
            .map(|key| String::from_utf8_lossy(&key).into_owned()))
    }

    /// Forgets intent log entries before `before`; returns how many entries (one holds the
    /// messages of one batch of turns).
    pub fn expire_intent_log(&self, before: Timestamp) -> Result<usize, StoreError> {
        let mut removed = self
            .records
            .expire_intent_log(before)
            .map_err(journal_error)?;
        // Entries from before the journal.
        for entry in self.intent_log.range(..intent_log_key(before, 0)) {
            let (key, _) = entry?;
            self.intent_log.remove(key)?;
            removed += 1;
        }
        Ok(removed)
    }

    /// Stores a message to send; returns its id once it is on disk.
    pub async fn enqueue_outgoing(
        &self,
        to: &str,
        body: &str,
        reason: &str,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let id = self.db.generate_id()?;
        let msg = Outgoing {
            id,
            to: to.to_string(),
            body: body.to_string(),
            reason: reason.to_string(),
            created: now,
            attempts: 0,
            next_attempt: now,
            state: OutState::Queued,
            last_error: None,
        };
        self.write(vec![Op::insert(
            Logged::Outbox,
            id.to_be_bytes(),
            msg.encode()?,
        )])
        .await?;
        Ok(id)
    }

    /// How many outbound messages are waiting to be sent.
    pub fn outbox_len(&self) -> usize {
        self.outbox.len()
    }

    /// Queued messages due at `now`, oldest first.
    pub fn due_outgoing(&self, now: Timestamp, limit: usize) -> Result<Vec<Outgoing>, StoreError> {
        let mut due = Vec::new();
        for entry in self.outbox.iter() {
            let (_, bytes) = entry?;
            let msg = Outgoing::decode(&bytes)?;
            if msg.state == OutState::Queued && msg.next_attempt <= now {
                due.push(msg);
                if due.len() == limit {
                    break;
                }
            }
        }
        Ok(due)
    }

    /// Records a message's new state and returns once it is on disk. A message that is no longer
    /// queued moves to `outbox_done` in the same write, so the queue only ever holds what is still
    /// to send.
    pub async fn update_outgoing(&self, msg: &Outgoing) -> Result<(), StoreError> {
        let key = msg.id.to_be_bytes();
        let bytes = msg.encode()?;
        let ops = if msg.state == OutState::Queued {
            vec![Op::insert(Logged::Outbox, key, bytes)]
        } else {
            vec![
                Op::insert(Logged::OutboxDone, key, bytes),
                Op::remove(Logged::Outbox, key),
            ]
        };
        self.write(ops).await
    }

    pub fn outgoing(&self, id: u64) -> Result<Option<Outgoing>, StoreError> {
        let key = id.to_be_bytes();
        match self.outbox.get(key)? {
            Some(b) => Ok(Some(Outgoing::decode(&b)?)),
            None => self
                .outbox_done
                .get(key)?
                .map(|b| Outgoing::decode(&b))
                .transpose(),
        }
    }

    /// Saves experts and tasks at once; returns once they are on disk.
    pub async fn save_routing(
        &self,
        experts: &[Expert],
        tasks: &[&Task],
    ) -> Result<(), StoreError> {
        let mut ops = Vec::with_capacity(experts.len() + tasks.len());
        for expert in experts {
            ops.push(Op::insert(
                Logged::Experts,
                expert.id.as_bytes(),
                expert.encode()?,
            ));
        }
        for task in tasks {
            ops.push(Op::insert(
                Logged::Tasks,
                task.id.to_be_bytes(),
                task.encode()?,
            ));
        }
        self.write(ops).await
    }

    /// Experts and tasks as last saved.
    pub fn load_routing(&self) -> Result<(Vec<Expert>, Vec<Task>), StoreError> {
        let experts = self
            .experts
            .iter()
            .map(|e| Expert::decode(&e?.1))
            .collect::<Result<_, _>>()?;
        let mut entries = self.records.tasks.entries();
        // A task's key (8 bytes) sorts just before its notes' keys.
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut tasks: Vec<Task> = Vec::new();
        for (key, value) in entries {
            let Some((id, index)) = TaskNote::split_key(&key) else {
                tasks.push(Task::decode(&value)?);
                continue;
            };
            let index = index as usize;
            let note = StoredNote::decode(&value)?;
            match tasks.last_mut() {
                // Notes below the count are in the record already (saved after them).
                Some(task) if task.id == id && index >= task.messages.len() => {
                    task.messages.push((note.at, note.text));
                }
                Some(task) if task.id == id => {}
                _ => tracing::warn!(task = id, "a message added to a task that is not stored"),
            }
        }
        Ok((experts, tasks))
    }

    /// Issues a new bearer token for an expert: returns the token (shown once) and stores only its
    /// SHA-256. Earlier tokens of the expert keep working until revoked.
    pub async fn issue_expert_token(&self, expert: &str) -> Result<String, StoreError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|err| StoreError::Encode {
            what: "an expert token",
            message: format!("no randomness available: {err}"),
        })?;
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        self.write(vec![Op::insert(
            Logged::ExpertTokens,
            token_hash(&token),
            expert.as_bytes().to_vec(),
        )])
        .await?;
        Ok(token)
    }

    /// Revokes every token of an expert (a lost laptop, someone leaving the team); returns how
    /// many there were. Requests with them get 403 from then on.
    pub async fn revoke_expert_tokens(&self, expert: &str) -> Result<usize, StoreError> {
        let mut revoke = Vec::new();
        for entry in self.expert_tokens.iter() {
            let (hash, owner) = entry?;
            if owner.as_ref() == expert.as_bytes() {
                revoke.push(Op::remove(Logged::ExpertTokens, hash.to_vec()));
            }
        }
        let revoked = revoke.len();
        self.write(revoke).await?;
        Ok(revoked)
    }

    /// The expert a bearer token belongs to.
    pub fn expert_for_token(&self, token: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .expert_tokens
            .get(token_hash(token))?
            .map(|id| String::from_utf8_lossy(&id).into_owned()))
    }

    /// Stores a lead; returns once it is on disk.
    pub async fn add_lead(&self, mut lead: Lead) -> Result<Lead, StoreError> {
        lead.id = self.db.generate_id()?;
        self.write(vec![Op::insert(
            Logged::Leads,
            lead.id.to_be_bytes(),
            lead.encode()?,
        )])
        .await?;
        Ok(lead)
    }

    /// Every lead, oldest first.
    pub fn leads(&self) -> Result<Vec<Lead>, StoreError> {
        self.leads.iter().map(|e| Lead::decode(&e?.1)).collect()
    }

    /// Appends a message the attendee was sent outside a turn (an expert's reply) to the
    /// attendee's transcript.
    pub async fn append_transcript(
        &self,
        attendee: &str,
        entry: &TranscriptEntry,
    ) -> Result<(), StoreError> {
        let mut key = transcript_prefix(attendee);
        key.extend_from_slice(&self.db.generate_id()?.to_be_bytes());
        self.write(vec![Op::insert(Logged::Transcript, key, entry.encode()?)])
            .await
    }

    /// A new id for a task, unique in this store.
    pub fn new_id(&self) -> Result<u64, StoreError> {
        Ok(self.db.generate_id()?)
    }

    /// True when the database answers a read and its writer thread runs.
    pub fn is_healthy(&self) -> bool {
        self.writer.is_running() && self.meta.get(SCHEMA_KEY).is_ok()
    }

    /// Writes everything to disk.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.durable().await
    }

    /// Waits until everything written to sled before the call is on disk (see `writer`: one
    /// checkpoint for all who wait at once).
    async fn durable(&self) -> Result<(), StoreError> {
        self.writer.durable().await
    }

    /// Bytes the database takes on disk.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        let wal = std::fs::metadata(&self.wal_path).map_or(0, |m| m.len());
        Ok(self.db.size_on_disk()? + wal + self.records.size())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versioned_values_refuse_unknown_versions() {
        let record = ImportRecord {
            id: 7,
            at: Timestamp::UNIX_EPOCH,
            source: "x".into(),
            outcome: ImportOutcome::Failed { error: "e".into() },
        };
        let mut bytes = record.encode().unwrap();
        assert_eq!(ImportRecord::decode(&bytes).unwrap(), record);
        bytes[0] = 9;
        let err = ImportRecord::decode(&bytes).unwrap_err().to_string();
        assert!(err.contains("format version 9"), "{err}");
        assert!(ImportRecord::decode(&[]).is_err());
    }

    #[test]
    fn compact_values_are_written_binary_and_older_json_is_still_read() {
        let attendee = Attendee {
            saved: vec!["s1".into()],
            handoff: Some(4),
            ..Attendee::default()
        };
        let binary = attendee.encode_compact();
        assert_eq!(binary[0], <Attendee as Compact>::COMPACT);
        assert_eq!(Attendee::decode_any(&binary).unwrap(), attendee);
        let json = Versioned::encode(&attendee).unwrap();
        assert_eq!(Attendee::decode_any(&json).unwrap(), attendee);
        let mut unknown = binary.clone();
        unknown[0] = 9;
        let err = Attendee::decode_any(&unknown).unwrap_err().to_string();
        assert!(err.contains("format version 9"), "{err}");
        let mut trailing = binary;
        trailing.push(0);
        assert!(Attendee::decode_any(&trailing).is_err());

        // An idempotency record: version 3 (binary replies), 2 (binary, the replies as JSON), 1
        // (JSON, the replies as JSON), and in 1 and 2 the list of texts written before cards.
        let processed = Processed {
            at: Timestamp::UNIX_EPOCH,
            replies: vec![reply("Q&A \"now\"", &["s1", "s2"]), reply("ß 🎤\n2", &[])],
        };
        let json = r#"[{"text":"Q&A \"now\"","sessions":["s1","s2"]},{"text":"ß 🎤\n2"}]"#;
        let v2 = |json: &str| {
            binary::encode(2, 64, |out| {
                binary::put_processed_v2(out, Timestamp::UNIX_EPOCH, json)
            })
        };
        let v1 = |json: &str| {
            let mut bytes = vec![1];
            serde_json::to_writer(
                &mut bytes,
                &serde_json::json!({"at": "1970-01-01T00:00:00Z", "reply": json}),
            )
            .unwrap();
            bytes
        };
        let texts = Processed {
            at: Timestamp::UNIX_EPOCH,
            replies: vec![reply("a", &[]), reply("b", &[])],
        };
        for (bytes, expected) in [
            (processed.encode_compact(), &processed),
            (processed.encode().unwrap(), &processed),
            (v2(json), &processed),
            (v1(json), &processed),
            (v2(r#"["a","b"]"#), &texts),
            (v1(r#"["a","b"]"#), &texts),
        ] {
            assert_eq!(
                &Processed::decode_any(&bytes).unwrap(),
                expected,
                "{:?}",
                bytes[0]
            );
            assert_eq!(records::processed_at(&bytes), Some(0), "{:?}", bytes[0]);
        }
        assert_eq!(processed.encode_compact()[0], 3);
        assert_eq!(processed.encode().unwrap()[0], 1);
        for broken in [v2("<Response/>"), v1("{}")] {
            let err = Processed::decode_any(&broken).unwrap_err().to_string();
            assert!(err.contains("not a list of replies"), "{err}");
        }

        // A turn's entries: version 3 (binary), version 2 (a JSON list), version 1 (one entry).
        let record = turn("sms:+15550001", "SM1");
        let entries = [&record.inbound, &record.outbound[0]];
        let v3 = TurnEntries::encode(&entries).unwrap();
        let mut v2 = vec![TurnEntries::JSON, 2];
        serde_json::to_writer(&mut v2, &entries).unwrap();
        let v1 = record.inbound.encode().unwrap();
        let both = vec![record.inbound.clone(), record.outbound[0].clone()];
        assert_eq!(TurnEntries::decode_any(&v3).unwrap(), both);
        assert_eq!(TurnEntries::decode_any(&v2).unwrap(), both);
        assert_eq!(TurnEntries::decode_any(&v1).unwrap(), [record.inbound]);
        assert_eq!([&v3, &v2, &v1].map(|b| TurnEntries::count(b)), [2, 2, 1]);
        // A count larger than the entries that follow is an error.
        let mut short = v3.clone();
        short[1] = 3;
        assert!(TurnEntries::decode_any(&short).is_err());
    }

    fn reply(text: &str, sessions: &[&str]) -> Reply {
        Reply {
            text: text.into(),
            sessions: sessions.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn turn(attendee: &str, message: &str) -> TurnRecord {
        let entry = |inbound: bool, text: &str| TranscriptEntry {
            at: Timestamp::UNIX_EPOCH,
            inbound,
            text: text.into(),
            message_id: inbound.then(|| message.to_string()),
            intent: None,
            sessions: Vec::new(),
            by: None,
        };
        TurnRecord {
            attendee_key: attendee.into(),
            phone: None,
            attendee: Attendee::default(),
            inbound: entry(true, "hi"),
            outbound: vec![entry(false, &format!("reply to {message}"))],
            effects: Vec::new(),
            idempotency: Some(message.into()),
            tasks: Vec::new(),
            notes: Vec::new(),
            log: IntentEvent {
                intent: "greeting".into(),
                unmatched: None,
            },
            remind: Vec::new(),
            unremind: Vec::new(),
        }
    }

    /// A task's messages come back in order and once each, whether they are in its record (a
    /// save after them), only in notes (attached since its last save), or both; after a reopen too.
    #[tokio::test]
    async fn a_tasks_messages_are_its_record_and_the_notes_since() {
        let dir = tempfile::tempdir().unwrap();
        let now = Timestamp::UNIX_EPOCH;
        let at = |s: i64| Timestamp::from_second(s).unwrap();
        let task = Task::pending(7, "sms:+15550001", "sms", "help", None, "en", now);
        let note = |index: u32, text: &str| TaskNote {
            task: 7,
            index,
            at: at(i64::from(index) + 1),
            text: text.into(),
        };
        let texts = |store: &Store| -> Vec<String> {
            let (_, tasks) = store.load_routing().unwrap();
            assert_eq!(tasks.len(), 1, "notes are not tasks");
            tasks[0].messages.iter().map(|m| m.1.clone()).collect()
        };
        {
            let store = Store::open(dir.path(), 1 << 20).unwrap();
            let mut first = turn("sms:+15550001", "SM1");
            first.tasks.push(task.clone());
            store.commit_turn(&first, now).await.unwrap();
            for (sid, index, text) in [("SM2", 0, "one"), ("SM3", 1, "two")] {
                let mut record = turn("sms:+15550001", sid);
                record.notes.push(note(index, text));
                store.commit_turn(&record, now).await.unwrap();
            }
            assert_eq!(texts(&store), ["one", "two"]);
            // Saved again holding the first message (the second came after the save).
            let mut saved = task.clone();
            saved.messages.push((at(1), "one".into()));
            store.save_routing(&[], &[&saved]).await.unwrap();
            assert_eq!(texts(&store), ["one", "two"]);
            let mut record = turn("sms:+15550001", "SM4");
            record.notes.push(note(2, "three"));
            store.commit_turn(&record, now).await.unwrap();
        }
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(texts(&store), ["one", "two", "three"]);
    }

    /// Every message delivered twice at the same moment: the two land in the same batch (or in
    /// consecutive ones), and exactly one of them is written.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_redelivery_in_the_same_batch_writes_nothing() {
        let store = Store::temporary().unwrap();
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let tasks: Vec<_> = (0..400)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let (attendee, message) = (format!("a{}", i / 2), format!("SM{}", i / 2));
                    store.commit_turn(&turn(&attendee, &message), now).await
                })
            })
            .collect();
        let (mut done, mut duplicates) = (0, 0);
        for task in tasks {
            match task.await.unwrap().unwrap() {
                Committed::Done => done += 1,
                Committed::Duplicate(replies) => {
                    assert!(replies[0].text.starts_with("reply to SM"), "{replies:?}");
                    duplicates += 1;
                }
            }
        }
        assert_eq!((done, duplicates), (200, 200));
        for a in 0..200 {
            assert_eq!(store.transcript_len(&format!("a{a}")).unwrap(), 2, "a{a}");
            let transcript = store.transcript(&format!("a{a}")).unwrap();
            assert!(transcript[0].inbound && !transcript[1].inbound, "a{a}");
            assert_eq!(
                store.records.turns_of(format!("a{a}").as_bytes()).len(),
                1,
                "a turn is one journaled record"
            );
        }
        // Turns and idempotency records are journaled, not in sled.
        assert!(store.transcript.is_empty() && store.idempotency.is_empty());
        assert_eq!(store.in_memory().idempotency_keys, 200);
        assert_eq!(
            store.processed("SM7").unwrap().unwrap().replies,
            [reply("reply to SM7", &[])]
        );
        // The intent log holds each message once, in one entry per batch; an entry written one
        // message at a time (format version 1) still counts.
        let old = IntentEvent {
            intent: "fallback".into(),
            unmatched: Some("purple elephant".into()),
        };
        store
            .intent_log
            .insert(intent_log_key(now, 1), old.encode().unwrap())
            .unwrap();
        let report = store.intent_report(Timestamp::UNIX_EPOCH, 5).unwrap();
        assert_eq!(report.messages, 201);
        assert_eq!(
            report.hits,
            vec![("greeting".to_string(), 200), ("fallback".to_string(), 1)]
        );
        assert_eq!(report.unmatched[0].text, "purple elephant");
        // The batches' entries are journaled, one per batch; sled holds only the old entry.
        assert_eq!(store.intent_log.len(), 1);
        let mut journaled = 0;
        store
            .records
            .intent_log(Timestamp::UNIX_EPOCH, |_, _| journaled += 1)
            .unwrap();
        assert!((1..200).contains(&journaled), "{journaled} entries");
    }

    /// A data dir the store creates, and its log, are its owner's alone.
    #[cfg(unix)]
    #[test]
    fn a_new_data_dir_and_its_log_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("data");
        drop(Store::open(&dir, 1 << 20).unwrap());
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(WAL_FILE)), 0o600);
    }

    fn applied(dir: &Path) -> u64 {
        let store = Store::open(dir, 1 << 20).unwrap();
        let bytes = store.meta.get(writer::APPLIED_KEY).unwrap().unwrap();
        u64::from_be_bytes(bytes.as_ref().try_into().unwrap())
    }

    /// A crash after a batch reached the log but before sled had it on disk: the batch is applied
    /// when the store opens. A record sled already holds is not applied again, so it cannot put
    /// back an older value over a later write.
    #[tokio::test]
    async fn the_store_opens_with_what_the_log_holds_and_sled_lost() {
        let dir = tempfile::tempdir().unwrap();
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let opt_out = OptOut {
            at: now,
            reason: "STOP".into(),
        }
        .encode()
        .unwrap();
        {
            let store = Store::open(dir.path(), 1 << 20).unwrap();
            store.opt_out("+15550001", "STOP", now).await.unwrap();
            store.commit_turn(&turn("a1", "SM1"), now).await.unwrap();
        }
        let seq = applied(dir.path());
        {
            let (mut wal, logged) = wal::Wal::open(&dir.path().join(WAL_FILE)).unwrap();
            assert!(
                logged.iter().all(|b| b.seq <= seq),
                "after a clean close sled holds everything logged"
            );
            // Stale: an opt-in of the first number, numbered as if applied already.
            wal.append(seq, &[Op::remove(Logged::OptOuts, "+15550001")])
                .unwrap();
            // Lost by sled: an opt-out of a second number and a transcript entry.
            let entry = turn("a1", "SM2").inbound.encode().unwrap();
            let mut key = transcript_prefix("a1");
            key.extend_from_slice(&u64::MAX.to_be_bytes());
            wal.append(
                seq + 1,
                &[
                    Op::insert(Logged::OptOuts, "+15550002", opt_out.clone()),
                    Op::insert(Logged::Transcript, key, entry),
                ],
            )
            .unwrap();
        }
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        assert!(
            store.size_on_disk().unwrap()
                >= std::fs::metadata(dir.path().join(WAL_FILE)).unwrap().len()
        );
        assert!(store.is_opted_out("+15550001").unwrap());
        assert!(store.is_opted_out("+15550002").unwrap());
        assert!(!store.is_opted_out("+15550003").unwrap());
        assert_eq!(store.transcript_len("a1").unwrap(), 3);
        // What the store keeps in memory was filled from sled and the log.
        assert_eq!(
            store.processed("SM1").unwrap().unwrap().replies,
            [reply("reply to SM1", &[])]
        );
        assert!(store.processed("SM2").unwrap().is_none());
        assert!(matches!(
            store.commit_turn(&turn("a1", "SM1"), now).await.unwrap(),
            Committed::Duplicate(_)
        ));
        // The writer goes on after the replayed batch's number.
        store.commit_turn(&turn("a2", "SM3"), now).await.unwrap();
        drop(store);
        assert_eq!(applied(dir.path()), seq + 2);
    }

    /// A plain SMS message's batch writes journals only, and sled not even its number: the writer
    /// goes on from the highest number a journal holds, so no later batch is taken for one the
    /// journals hold already (and skipped by them).
    #[tokio::test]
    async fn the_writer_goes_on_after_the_journals_last_batch() {
        let dir = tempfile::tempdir().unwrap();
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let attendee = "sms:+15550001";
        {
            let store = Store::open(dir.path(), 1 << 20).unwrap();
            let before = store.meta.get(writer::APPLIED_KEY).unwrap();
            store
                .commit_turn(&turn(attendee, "SM1"), now)
                .await
                .unwrap();
            assert_eq!(
                store.meta.get(writer::APPLIED_KEY).unwrap(),
                before,
                "nothing of the batch went to sled"
            );
        }
        let seq = applied(dir.path());
        {
            // A batch the journals hold beyond sled's mark and the log.
            let records = records::Records::open(dir.path()).unwrap();
            let mut key = transcript_prefix(attendee);
            key.extend_from_slice(&(u64::MAX - 1).to_be_bytes());
            let entry = turn(attendee, "SM2").inbound.encode().unwrap();
            records
                .append(seq + 5, vec![Op::insert(Logged::Transcript, key, entry)])
                .unwrap();
            records.sync().unwrap();
        }
        {
            let store = Store::open(dir.path(), 1 << 20).unwrap();
            store
                .commit_turn(&turn(attendee, "SM3"), now)
                .await
                .unwrap();
        }
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        // SM1's message and reply, SM2's message, SM3's message and reply.
        assert_eq!(store.transcript_len(attendee).unwrap(), 5);
        assert!(store.processed("SM3").unwrap().is_some());
        drop(store);
        assert_eq!(applied(dir.path()), seq + 6);
    }

    /// A transcript key of `attendee` with entry id `id`.
    fn transcript_key(attendee: &str, id: u64) -> Vec<u8> {
        let mut key = transcript_prefix(attendee);
        key.extend_from_slice(&id.to_be_bytes());
        key
    }

    /// A crash after batches reached the log but before the journals had them all on disk: each
    /// journal gets the batches it lacks when the store opens, and none twice.
    #[tokio::test]
    async fn the_journals_get_what_the_log_holds_and_they_lost_once() {
        let dir = tempfile::tempdir().unwrap();
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        {
            let store = Store::open(dir.path(), 1 << 20).unwrap();
            store.commit_turn(&turn("a1", "SM1"), now).await.unwrap();
        }
        let seq = applied(dir.path());
        let ops = |n: u64| {
            let entry = turn("a1", &format!("SM{n}")).inbound.encode().unwrap();
            let processed = Processed {
                at: now,
                replies: vec![reply(&format!("reply to SM{n}"), &[])],
            };
            vec![
                Op::insert(
                    Logged::Transcript,
                    transcript_key("a1", u64::MAX - 10 + n),
                    entry,
                ),
                Op::insert(
                    Logged::Idempotency,
                    format!("SM{n}"),
                    processed.encode().unwrap(),
                ),
            ]
        };
        {
            // The journals got batch seq + 1 before the crash, not seq + 2.
            let records = records::Records::open(dir.path()).unwrap();
            records.append(seq + 1, ops(2)).unwrap();
            drop(records);
            let (mut wal, _) = wal::Wal::open(&dir.path().join(WAL_FILE)).unwrap();
            wal.append(seq + 1, &ops(2)).unwrap();
            wal.append(seq + 2, &ops(3)).unwrap();
        }
        for _ in 0..2 {
            let store = Store::open(dir.path(), 1 << 20).unwrap();
            // SM1's turn (message and reply), SM2's and SM3's messages.
            assert_eq!(store.transcript_len("a1").unwrap(), 4);
            let texts: Vec<Option<String>> = store
                .transcript("a1")
                .unwrap()
                .into_iter()
                .map(|e| e.message_id)
                .collect();
            assert_eq!(
                texts,
                [
                    Some("SM1".into()),
                    None,
                    Some("SM2".into()),
                    Some("SM3".into())
                ]
            );
            for sid in ["SM1", "SM2", "SM3"] {
                assert_eq!(
                    store.processed(sid).unwrap().unwrap().replies,
                    [reply(&format!("reply to {sid}"), &[])]
                );
            }
            assert_eq!(store.in_memory().idempotency_keys, 3);
            // Nothing of the replayed batches went to sled's trees for these records.
            assert!(store.transcript.is_empty() && store.idempotency.is_empty());
        }
    }

    /// Transcript entries and idempotency records in sled (written before the journals, or, for
    /// transcript entries, by notices in sled transactions) are read beside the journaled ones.
    #[tokio::test]
    async fn records_in_sled_are_read_beside_the_journals() {
        let dir = tempfile::tempdir().unwrap();
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let old = Processed {
            at: now - jiff::SignedDuration::from_hours(2),
            replies: vec![reply("an older reply", &[])],
        };
        {
            let store = Store::open(dir.path(), 1 << 20).unwrap();
            let entry = turn("a1", "SM0").inbound.encode().unwrap();
            store
                .transcript
                .insert(transcript_key("a1", 1), entry)
                .unwrap();
            store
                .idempotency
                .insert("SM0", old.encode().unwrap())
                .unwrap();
        }
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(store.in_memory().idempotency_keys, 1);
        assert_eq!(store.processed("SM0").unwrap(), Some(old.clone()));
        assert_eq!(
            store.commit_turn(&turn("a1", "SM0"), now).await.unwrap(),
            Committed::Duplicate(vec![reply("an older reply", &[])])
        );
        store.commit_turn(&turn("a1", "SM1"), now).await.unwrap();
        // A notice after the turn, written to sled with a newer id.
        let notice = TranscriptEntry {
            text: "a notice".into(),
            ..turn("a1", "SM9").inbound
        };
        let id = store.new_id().unwrap();
        store
            .transcript
            .insert(transcript_key("a1", id), notice.encode().unwrap())
            .unwrap();
        let transcript = store.transcript("a1").unwrap();
        let order: Vec<(Option<&str>, &str)> = transcript
            .iter()
            .map(|e| (e.message_id.as_deref(), e.text.as_str()))
            .collect();
        assert_eq!(
            order,
            [
                (Some("SM0"), "hi"),
                (Some("SM1"), "hi"),
                (None, "reply to SM1"),
                (Some("SM9"), "a notice")
            ]
        );
        assert_eq!(store.transcript_len("a1").unwrap(), 4);
        // Expiry forgets records in both places: the older one first.
        assert_eq!(
            store
                .expire_processed(now - jiff::SignedDuration::from_hours(1))
                .unwrap(),
            1
        );
        assert_eq!(store.processed("SM0").unwrap(), None);
        assert!(store.processed("SM1").unwrap().is_some());
        assert_eq!(
            store
                .expire_processed(now + jiff::SignedDuration::from_secs(1))
                .unwrap(),
            1
        );
        assert_eq!(store.in_memory().idempotency_keys, 0);
        assert_eq!(store.processed("SM1").unwrap(), None);
    }

    /// Tasks and their messages are journaled; those sled held from before are still loaded,
    /// each until a journaled save of its key replaces it.
    #[tokio::test]
    async fn tasks_are_journaled_and_older_ones_read_from_sled() {
        let dir = tempfile::tempdir().unwrap();
        let at = |s: i64| Timestamp::from_second(1_800_000_000 + s).unwrap();
        let task = |id: u64, messages: &[&str]| {
            let mut task = Task::pending(id, "sms:+15550001", "sms", "help", None, "en", at(0));
            task.messages = messages.iter().map(|m| (at(1), m.to_string())).collect();
            task
        };
        let loaded = |store: &Store| -> Vec<(u64, Vec<String>)> {
            let (_, tasks) = store.load_routing().unwrap();
            tasks
                .into_iter()
                .map(|t| (t.id, t.messages.into_iter().map(|m| m.1).collect()))
                .collect()
        };
        let strings = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        {
            let store = Store::open(dir.path(), 1 << 20).unwrap();
            let sled_tasks = store.db.open_tree(trees::TASKS).unwrap();
            let note = TaskNote {
                task: 7,
                index: 1,
                at: at(2),
                text: "added".into(),
            };
            let value = StoredNote {
                at: note.at,
                text: note.text.clone(),
            };
            sled_tasks
                .insert(7u64.to_be_bytes(), task(7, &["first"]).encode().unwrap())
                .unwrap();
            sled_tasks
                .insert(note.key(), value.encode().unwrap())
                .unwrap();
            sled_tasks
                .insert(8u64.to_be_bytes(), task(8, &["old"]).encode().unwrap())
                .unwrap();
        }
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(
            loaded(&store),
            [(7, strings(&["first", "added"])), (8, strings(&["old"]))]
        );
        store
            .save_routing(&[], &[&task(8, &["old", "new"])])
            .await
            .unwrap();
        let expected = [
            (7, strings(&["first", "added"])),
            (8, strings(&["old", "new"])),
        ];
        assert_eq!(loaded(&store), expected);
        // The save went to the journal; sled keeps its older copy.
        let sled_tasks = store.db.open_tree(trees::TASKS).unwrap();
        let in_sled = Task::decode(&sled_tasks.get(8u64.to_be_bytes()).unwrap().unwrap());
        assert_eq!(in_sled.unwrap().messages.len(), 1);
        drop((sled_tasks, store));
        assert_eq!(loaded(&Store::open(dir.path(), 1 << 20).unwrap()), expected);
    }

    /// SMS attendees' records are journaled; one sled held from before is read until the
    /// attendee writes again, and web chat attendees stay in sled.
    #[tokio::test]
    async fn sms_attendees_are_journaled_and_older_ones_read_from_sled() {
        let dir = tempfile::tempdir().unwrap();
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let with_saved = |id: &str| Attendee {
            saved: vec![id.to_string()],
            ..Attendee::default()
        };
        {
            let store = Store::open(dir.path(), 1 << 20).unwrap();
            for (key, saved) in [("sms:+15550001", "s1"), ("sms:+15550002", "s2")] {
                let bytes = with_saved(saved).encode().unwrap();
                store.attendees.insert(key, bytes).unwrap();
            }
        }
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(store.attendee("sms:+15550001").unwrap().saved, ["s1"]);
        let mut sms = turn("sms:+15550002", "SM1");
        sms.attendee = with_saved("s9");
        let mut web = turn("web:abc", "SM2");
        web.attendee = with_saved("w1");
        store.commit_turn(&sms, now).await.unwrap();
        store.commit_turn(&web, now).await.unwrap();
        let check = |store: &Store| {
            assert_eq!(store.attendee("sms:+15550002").unwrap().saved, ["s9"]);
            assert_eq!(store.attendee("sms:+15550001").unwrap().saved, ["s1"]);
            assert_eq!(store.attendee("web:abc").unwrap().saved, ["w1"]);
            let all: Vec<(String, Vec<String>)> = store
                .all_attendees()
                .unwrap()
                .into_iter()
                .map(|(key, a)| (key, a.saved))
                .collect();
            assert_eq!(
                all,
                [
                    ("sms:+15550001".to_string(), vec!["s1".to_string()]),
                    ("sms:+15550002".to_string(), vec!["s9".to_string()]),
                    ("web:abc".to_string(), vec!["w1".to_string()]),
                ]
            );
            assert_eq!(store.in_memory().attendees, 2);
        };
        check(&store);
        // The SMS attendee's write went to its journal; sled keeps its older copy.
        let in_sled = Attendee::decode(&store.attendees.get("sms:+15550002").unwrap().unwrap());
        assert_eq!(in_sled.unwrap().saved, ["s2"]);
        assert!(store.attendees.get("web:abc").unwrap().is_some());
        drop(store);
        check(&Store::open(dir.path(), 1 << 20).unwrap());
    }
}
