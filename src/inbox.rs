//! Where an attendee's message is handled, whatever channel it came by: the IO around one
//! conversation turn.
//!
//! For one message: the channel first asks [`earlier`] for the answer given if it was processed
//! before (idempotency), so a redelivery costs one read and skips rate limits. Then [`handle`]
//! takes the attendee's lock, so their messages are handled one at a time and in order; loads
//! what the store remembers; classifies with the running intents; runs the pure
//! [`conversation::turn`]; and hands everything the turn changed to the store as one change,
//! which returns once it is on disk. Only then is the answer returned, so a 200 means it is on
//! disk. A redelivery that slips in between (two deliveries at once) is refused by the store's
//! writer, and answered as the duplicate it is.

use jiff::{SignedDuration, Timestamp};

use crate::conversation::{self, Effect, HandOffView, Inbound};
use crate::intents::{Action, Classification, Lang};
use crate::sms::phone::Phone;
use crate::state::AppState;
pub use crate::store::Reply;
use crate::store::{Committed, StoreError, TaskNote, TranscriptEntry, TurnRecord};

/// How long a processed message's answer is kept for redeliveries. Twilio retries within minutes;
/// a day leaves room for a replay by hand from its error log.
pub const IDEMPOTENCY_TTL: SignedDuration = SignedDuration::from_hours(24);

/// Forgets processed-message records older than [`IDEMPOTENCY_TTL`] and intent log entries older
/// than [`crate::store::INTENT_LOG_TTL`], at start and then every `every`. Runs until the task
/// is dropped.
pub async fn expire_records(state: AppState, every: std::time::Duration) {
    loop {
        // The expiry reads files and scans sled's older records: off the request threads.
        let (store, now) = (state.store.clone(), state.clock.now());
        let expired = tokio::task::spawn_blocking(move || expire_once(&store, now)).await;
        if let Err(err) = expired {
            tracing::warn!(error = %err, "the expiry task failed");
        }
        tokio::time::sleep(every).await;
    }
}

/// One pass of [`expire_records`] at `now`.
fn expire_once(store: &crate::store::Store, now: Timestamp) {
    let before = now.checked_sub(IDEMPOTENCY_TTL).unwrap_or(Timestamp::MIN);
    match store.expire_processed(before) {
        Ok(0) => {}
        Ok(n) => tracing::debug!(removed = n, "expired idempotency records"),
        Err(err) => tracing::warn!(error = %err, "expiring idempotency records failed"),
    }
    let before = now
        .checked_sub(crate::store::INTENT_LOG_TTL)
        .unwrap_or(Timestamp::MIN);
    match store.expire_intent_log(before) {
        Ok(0) => {}
        Ok(n) => tracing::debug!(removed = n, "expired intent log entries"),
        Err(err) => tracing::warn!(error = %err, "expiring the intent log failed"),
    }
}

/// Who sent a message.
#[derive(Clone, Debug)]
pub enum Sender {
    Sms(Phone),
    /// A local conversation (`concierge chat --from NAME`).
    Local(String),
    /// A web chat conversation, by its key (`web:` and a hash of the browser's token).
    Web(String),
}

impl Sender {
    pub fn attendee_key(&self) -> String {
        match self {
            Sender::Sms(phone) => phone.attendee_key(),
            Sender::Local(name) => format!("local:{name}"),
            Sender::Web(key) => key.clone(),
        }
    }

    /// How the sender is shown in logs: never a whole number.
    pub fn redacted(&self) -> String {
        match self {
            Sender::Sms(phone) => phone.redacted(),
            Sender::Local(name) => format!("local:{name}"),
            Sender::Web(key) => format!("{}…", &key[..key.len().min(12)]),
        }
    }

    fn phone(&self) -> Option<&Phone> {
        match self {
            Sender::Sms(phone) => Some(phone),
            Sender::Local(_) | Sender::Web(_) => None,
        }
    }
}

/// A message to handle.
#[derive(Clone, Debug)]
pub struct Message {
    pub sender: Sender,
    pub text: String,
    pub has_media: bool,
    /// The channel's id of the message (Twilio's `MessageSid`).
    pub message_id: Option<String>,
    /// Redeliveries carry the same key; the first answer is given again.
    pub idempotency_key: Option<String>,
    /// Twilio's `OptOutType` (`STOP`, `START`, `HELP`), which wins over our own reading.
    pub opt_out_type: Option<String>,
    /// A session to save, whatever the text says (the web chat's "add to my agenda" button).
    pub save: Option<String>,
    /// A session to remove, whatever the text says (the web chat's agenda panel).
    pub remove: Option<String>,
}

/// The answer to a message.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub replies: Vec<Reply>,
    /// The message was processed before; `replies` are the ones given then.
    pub duplicate: bool,
    pub intent: String,
    /// Web chat: the message's number in the conversation (its replies follow it); `None` for
    /// other channels and for duplicates.
    pub n: Option<usize>,
}

impl Outcome {
    /// The replies' texts, as SMS sends them.
    pub fn texts(&self) -> impl Iterator<Item = &str> + Clone {
        self.replies.iter().map(|r| r.text.as_str())
    }
}

/// The engine settings for this state's configuration and agenda.
pub fn engine_settings(state: &AppState, sms: bool) -> conversation::Settings {
    conversation::Settings {
        max_segments: sms.then_some(state.config.sms.max_segments),
        context_ttl: SignedDuration::from_mins(i64::from(state.config.sms.context_idle_minutes)),
        list_size: 5,
        conference: state.agenda().agenda().conference.name.clone(),
    }
}

/// The answer given to the message with this idempotency key, if it was processed before.
pub fn earlier(state: &AppState, idempotency_key: &str) -> Result<Option<Outcome>, StoreError> {
    Ok(state
        .store
        .processed(idempotency_key)?
        .map(|earlier| duplicate(earlier.replies)))
}

/// Handles one message, after the channel found no [`earlier`] answer to it. See the module doc
/// for the order of things.
pub async fn handle(
    state: &AppState,
    message: Message,
    now: Timestamp,
) -> Result<Outcome, StoreError> {
    let key = message.sender.attendee_key();
    let _turn = state.locks.lock(&key).await;
    let attendee = state.store.attendee(&key)?;
    let opted_out = match message.sender.phone() {
        Some(phone) => state.store.is_opted_out(phone.as_str())?,
        None => false,
    };
    let agenda = state.agenda();
    let matcher = state.intents.matcher();
    let started = std::time::Instant::now();
    let mut classification = matcher.classify(&message.text);
    state
        .metrics
        .matcher
        .observe(started.elapsed().as_secs_f64());
    apply_opt_out_type(&mut classification, message.opt_out_type.as_deref());
    if let Some(id) = &message.save {
        read_as(
            &mut classification,
            "add_to_agenda",
            Action::AddToAgenda,
            id,
        );
    }
    if let Some(id) = &message.remove {
        read_as(
            &mut classification,
            "remove_from_agenda",
            Action::RemoveFromAgenda,
            id,
        );
    }
    let handoff = attendee.handoff.and_then(|id| {
        state.desk.read_task(id, |t| HandOffView {
            task: t.id,
            status: t.status,
            expert: t.expert.clone(),
        })
    });
    let queue = (classification.action == Action::HandOff && handoff.is_none()).then(|| {
        let skill = classification.entity("skill").and_then(|e| match &e.value {
            crate::intents::matcher::EntityValue::Text(t) => Some(t.to_string()),
            crate::intents::matcher::EntityValue::Time(_) => None,
        });
        state
            .desk
            .estimate(skill.as_deref(), classification.language.code(), now)
    });
    // A calendar link is made (and stored) before it is texted.
    let calendar_url = if classification.action == Action::CalendarLink {
        let token = state.store.calendar_token(&key).await?;
        Some(crate::http::calendar::feed_url(&state.config, &token))
    } else {
        None
    };
    let inbound = Inbound {
        text: &message.text,
        at: now,
        has_media: message.has_media,
        opted_out,
        handoff,
        queue,
        calendar_url,
    };
    let settings = engine_settings(state, matches!(message.sender, Sender::Sms(_)));
    let mut turn = conversation::turn(
        &attendee,
        &inbound,
        &classification,
        &agenda,
        &matcher,
        &settings,
    );

    // Hand-off effects: a new task goes into the turn's transaction; a message for the expert is
    // added to the task, and leaving is done, once the turn is on disk (so the expert's console,
    // told at once, finds the message in the transcript).
    let mut new_tasks = Vec::new();
    let mut cancels = Vec::new();
    let mut notes = Vec::new();
    for effect in &turn.effects {
        match effect {
            Effect::HandOff { skill, question } => {
                let channel = match message.sender {
                    Sender::Sms(_) => "sms",
                    Sender::Local(_) => "local",
                    Sender::Web(_) => "web",
                };
                let task = state.desk.new_task(
                    &key,
                    channel,
                    question,
                    skill.clone(),
                    turn.attendee.language.unwrap_or(Lang::En).code(),
                    now,
                )?;
                turn.attendee.handoff = Some(task.id);
                new_tasks.push(task);
            }
            Effect::Attach { task, text } => {
                // Stored with the turn, under its place among the task's messages (this
                // attendee's lock keeps that place free until the desk has the message).
                let Some(held) = state.desk.message_count(*task) else {
                    tracing::warn!(task, "a message for a task that takes none; not attached");
                    continue;
                };
                let earlier = notes.iter().filter(|n: &&TaskNote| n.task == *task).count();
                notes.push(TaskNote {
                    task: *task,
                    index: u32::try_from(held + earlier).unwrap_or(u32::MAX),
                    at: now,
                    text: text.clone(),
                });
            }
            Effect::CancelHandOff { task } => cancels.push(*task),
            _ => {}
        }
    }
    // The web chat shows a list's sessions as cards under the reply's own words; SMS sends the
    // numbered lines.
    let reply_count = turn.replies.len();
    let replies: Vec<Reply> = match (&message.sender, turn.cards.take()) {
        (Sender::Web(_), Some(cards)) if reply_count == 1 => vec![Reply {
            text: cards.text,
            sessions: cards.sessions,
        }],
        _ => std::mem::take(&mut turn.replies)
            .into_iter()
            .map(|text| Reply {
                text,
                sessions: Vec::new(),
            })
            .collect(),
    };
    // Reminders follow what the turn saved and removed.
    let mut remind = Vec::new();
    let mut unremind = Vec::new();
    for effect in &turn.effects {
        match effect {
            Effect::SaveSession { id } => {
                if let Some(s) = agenda.session(id) {
                    let due = crate::notices::reminders::due(s, &state.config.reminders);
                    if due > now {
                        remind.push(crate::notices::reminders::Reminder {
                            attendee: key.clone(),
                            session: id.clone(),
                            due,
                        });
                    }
                }
            }
            Effect::RemoveSession { id } => unremind.push(id.clone()),
            _ => {}
        }
    }
    let unmatched = (turn.intent == crate::intents::FALLBACK)
        .then(|| message.text.trim().chars().take(160).collect());
    tracing::debug!(from = %message.sender.redacted(), body = %message.text, "message body");
    // The record owns what the turn wrote (moved, not copied); what the reply needs is taken
    // back from it once it is on disk.
    let record = TurnRecord {
        attendee_key: key.clone(),
        phone: message.sender.phone().map(|p| p.as_str().to_string()),
        attendee: turn.attendee,
        inbound: TranscriptEntry {
            at: now,
            inbound: true,
            text: message.text,
            message_id: message.message_id,
            intent: Some(turn.intent.clone()),
            sessions: Vec::new(),
            by: None,
        },
        outbound: replies
            .into_iter()
            .map(|reply| TranscriptEntry {
                at: now,
                inbound: false,
                text: reply.text,
                message_id: None,
                intent: None,
                sessions: reply.sessions,
                by: None,
            })
            .collect(),
        effects: turn.effects,
        idempotency: message.idempotency_key,
        tasks: new_tasks,
        notes,
        log: crate::store::IntentEvent {
            intent: turn.intent,
            unmatched,
        },
        remind,
        unremind,
    };
    match state.store.commit_turn(&record, now).await? {
        Committed::Duplicate(earlier) => Ok(duplicate(earlier)),
        Committed::Done => {
            let TurnRecord {
                outbound,
                tasks,
                notes,
                log,
                ..
            } = record;
            for task in tasks {
                state.desk.adopt(task, now).await?;
            }
            for note in notes {
                if let Err(err) = state.desk.noted(note.task, note.at, &note.text) {
                    tracing::warn!(task = note.task, error = %err, "could not attach a message to its task");
                }
            }
            for task in cancels {
                if let Err(err) = state
                    .desk
                    .cancel(task, "the attendee left the hand-off")
                    .await
                {
                    tracing::warn!(task, error = %err, "could not cancel a hand-off");
                }
            }
            state.metrics.message(
                match message.sender {
                    Sender::Sms(_) => "sms",
                    Sender::Local(_) => "local",
                    Sender::Web(_) => "web",
                },
                &log.intent,
            );
            tracing::info!(
                from = %message.sender.redacted(),
                intent = %log.intent,
                confidence = classification.confidence,
                replies = reply_count,
                "message handled"
            );
            let replies: Vec<Reply> = outbound
                .into_iter()
                .map(|entry| Reply {
                    text: entry.text,
                    sessions: entry.sessions,
                })
                .collect();
            // Numbered while the attendee's lock is held, so no other entry slips in between.
            let n = match message.sender {
                Sender::Web(_) => Some(state.store.transcript_len(&key)? - replies.len()),
                _ => None,
            };
            Ok(Outcome {
                replies,
                duplicate: false,
                intent: log.intent,
                n,
            })
        }
    }
}

fn duplicate(replies: Vec<Reply>) -> Outcome {
    Outcome {
        replies,
        duplicate: true,
        intent: String::new(),
        n: None,
    }
}

/// A button press about a session (save it, remove it): the message is read as that intent for
/// exactly that session.
fn read_as(c: &mut Classification, intent: &str, action: Action, session: &str) {
    c.intent = intent.into();
    c.action = action;
    c.confidence = 1.0;
    c.language_known = false;
    c.entities = vec![crate::intents::matcher::EntityMatch {
        kind: "session".into(),
        value: crate::intents::matcher::EntityValue::Text(session.into()),
        text: String::new(),
        tokens: 0..0,
    }];
}

/// Twilio's own reading of STOP, START and HELP wins over ours.
fn apply_opt_out_type(c: &mut Classification, opt_out_type: Option<&str>) {
    let (intent, action) = match opt_out_type.map(str::to_ascii_uppercase).as_deref() {
        Some("STOP") => ("opt_out", Action::OptOut),
        Some("START") => ("opt_in", Action::OptIn),
        Some("HELP") => ("help", Action::Reply),
        _ => return,
    };
    c.intent = intent.into();
    c.action = action;
    c.confidence = 1.0;
}
