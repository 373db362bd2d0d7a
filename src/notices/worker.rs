//! The IO of notices: the reminder loop, replacing the agenda with its schedule-change notices,
//! and announcements. Decisions come from the pure modules beside this one; the store writes each
//! message with what keeps it from being sent twice.

use jiff::Timestamp;

use super::announce::{self, Audience};
use super::changes::{self, ChangeKind};
use super::reminders::{self, Recipient, Reminder, Verdict};
use crate::agenda::{Agenda, AgendaIndex};
use crate::intents::Lang;
use crate::state::AppState;
use crate::store::{AgendaSource, Announcement, Fired, ImportRecord, Notice, Store, StoreError};

/// Reminders taken per pass of the loop.
const BATCH: usize = 500;

/// Sends due reminders every `every`, until the task is dropped. A reminder due while the service
/// was down is found on the first pass and sent if its session has not started.
pub async fn run_reminders(state: AppState, every: std::time::Duration) {
    loop {
        match reminders_pass(&state).await {
            Ok(n) if n > 0 => tracing::debug!(handled = n, "reminders"),
            Ok(_) => {}
            Err(err) => tracing::error!(error = %err, "the reminder pass failed"),
        }
        tokio::time::sleep(every).await;
    }
}

/// One pass: every reminder due now. Returns how many were handled.
pub async fn reminders_pass(state: &AppState) -> Result<usize, StoreError> {
    let mut handled = 0;
    loop {
        let now = state.clock.now();
        let due = state.store.due_reminders(now, BATCH)?;
        if due.is_empty() {
            return Ok(handled);
        }
        for r in &due {
            handle(state, r, now).await?;
            handled += 1;
        }
        if due.len() < BATCH {
            return Ok(handled);
        }
    }
}

async fn handle(state: &AppState, r: &Reminder, now: Timestamp) -> Result<(), StoreError> {
    let _turn = state.locks.lock(&r.attendee).await;
    let attendee = state.store.attendee(&r.attendee)?;
    let opted_out = match r.attendee.strip_prefix("sms:") {
        Some(phone) => state.store.is_opted_out(phone)?,
        None => false,
    };
    let who = Recipient {
        saved: &attendee.saved,
        language: attendee.language.unwrap_or(Lang::En),
        opted_out,
    };
    let agenda = state.agenda();
    match reminders::decide(r, &agenda, &who, &state.config.reminders, now) {
        Verdict::Send(text) => {
            let notice = Notice {
                attendee: r.attendee.clone(),
                text: text.clone(),
                reason: "reminder".into(),
            };
            if state.store.fire_reminder(r, Some(&notice), now).await? == Fired::Sent {
                state.outbox_wake.notify_one();
                crate::outbound::push_web(state, &r.attendee, &text, None)?;
                tracing::info!(session = %r.session, "reminder sent");
            }
        }
        Verdict::Later(at) => state.store.postpone_reminder(r, at).await?,
        Verdict::Drop(why) => {
            state.store.fire_reminder(r, None, now).await?;
            tracing::debug!(session = %r.session, why, "reminder dropped");
        }
    }
    Ok(())
}

/// Replaces the stored agenda with `new` and, in the same transaction, tells every attendee who
/// saved a session that moved or went (once, in one message), and moves their reminders. Returns
/// the import record and the notices written (for live pushes). `notify: false` (the demo moved
/// to today) moves reminders without telling anyone.
pub async fn replace_agenda(
    store: &Store,
    old: &AgendaIndex,
    new: Agenda,
    source: AgendaSource,
    settings: &reminders::Settings,
    notify: bool,
    now: Timestamp,
) -> Result<(ImportRecord, Vec<Notice>), StoreError> {
    let changes = changes::diff(old.agenda(), &new);
    let new_index = AgendaIndex::new(new.clone());
    let mut moves = Vec::new();
    for c in &changes {
        for r in store.reminders_of(&c.session)? {
            let next = match &c.kind {
                ChangeKind::Moved { .. } => new_index.session(&c.session).map(|s| Reminder {
                    due: reminders::due(s, settings),
                    ..r.clone()
                }),
                ChangeKind::Removed => None,
            };
            moves.push((r, next));
        }
    }
    let mut notices = Vec::new();
    if notify && !changes.is_empty() {
        for (key, a) in store.attendees_with_saved()? {
            if let Some(phone) = key.strip_prefix("sms:") {
                if store.is_opted_out(phone)? {
                    continue;
                }
            }
            let lang = a.language.unwrap_or(Lang::En);
            if let Some(text) = changes::notice(&changes, &a.saved, old, &new_index, lang, now) {
                notices.push(Notice {
                    attendee: key,
                    text,
                    reason: "schedule change".into(),
                });
            }
        }
    }
    let record = store
        .replace_agenda_with(new, source, now, &notices, &moves)
        .await?;
    if !changes.is_empty() {
        tracing::info!(
            changes = changes.len(),
            told = notices.len(),
            reminders_moved = moves.len(),
            "the agenda changed"
        );
    }
    Ok((record, notices))
}

/// What an announcement did, or would do.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Announced {
    pub id: String,
    pub recipients: usize,
    pub sms: usize,
    pub web: usize,
    pub dry_run: bool,
    /// The id was used before: nothing was sent now; `recipients` is what was sent then.
    pub duplicate: bool,
}

/// Who is in an announcement's audience, opted-out numbers excluded.
pub fn audience(
    store: &Store,
    agenda: &AgendaIndex,
    audience: &Audience,
) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    for (key, a) in store.all_attendees()? {
        if !audience.includes(&a, agenda) {
            continue;
        }
        match key.strip_prefix("sms:") {
            Some(phone) if store.is_opted_out(phone)? => continue,
            Some(_) => {}
            // Web conversations read it on their next visit; local ones are for testing.
            None if key.starts_with("web:") => {}
            None => continue,
        }
        out.push(key);
    }
    Ok(out)
}

/// Why an announcement was refused.
#[derive(Debug)]
pub enum AnnounceError {
    Invalid(String),
    Store(StoreError),
}

impl From<StoreError> for AnnounceError {
    fn from(err: StoreError) -> AnnounceError {
        AnnounceError::Store(err)
    }
}

/// Sends (or with `dry_run`, counts) an announcement. A repeated id sends nothing and reports the
/// first sending. Messages go through the outbox at its rate.
pub async fn announce(
    state: &AppState,
    id: &str,
    text: &str,
    to: &Audience,
    dry_run: bool,
) -> Result<Announced, AnnounceError> {
    announce::check(id, text).map_err(AnnounceError::Invalid)?;
    let agenda = state.agenda();
    to.check(&agenda).map_err(AnnounceError::Invalid)?;
    if let Some(earlier) = state.store.announcement(id)? {
        return Ok(duplicate(earlier, dry_run));
    }
    // Every conversation waits while the messages are written, so transcript numbers stay in order.
    let _all = state.locks.lock_all().await;
    let recipients = audience(&state.store, &agenda, to)?;
    let sms = recipients.iter().filter(|k| k.starts_with("sms:")).count();
    let mut result = Announced {
        id: id.to_string(),
        recipients: recipients.len(),
        sms,
        web: recipients.len() - sms,
        dry_run,
        duplicate: false,
    };
    if dry_run {
        return Ok(result);
    }
    let text = text.trim().to_string();
    let notices: Vec<Notice> = recipients
        .iter()
        .map(|k| Notice {
            attendee: k.clone(),
            text: text.clone(),
            reason: format!("announcement {id}"),
        })
        .collect();
    let now = state.clock.now();
    let record = Announcement {
        id: id.to_string(),
        at: now,
        text: text.clone(),
        audience: to.clone(),
        recipients: notices.len(),
    };
    match state.store.announce(&record, &notices, now).await? {
        Ok(()) => {
            state.outbox_wake.notify_one();
            for n in &notices {
                crate::outbound::push_web(state, &n.attendee, &n.text, None)?;
            }
            tracing::info!(id, recipients = notices.len(), "announcement queued");
            Ok(result)
        }
        Err(earlier) => {
            result = duplicate(earlier, dry_run);
            Ok(result)
        }
    }
}

fn duplicate(earlier: Announcement, dry_run: bool) -> Announced {
    Announced {
        id: earlier.id,
        recipients: earlier.recipients,
        sms: 0,
        web: 0,
        dry_run,
        duplicate: true,
    }
}
