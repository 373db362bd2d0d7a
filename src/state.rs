//! The service's shared state: a bundle of cheap handles, cloned into every request.
//!
//! The current agenda is an `Arc<AgendaIndex>` behind an [`ArcSwap`]: a request loads the pointer once
//! and works on that agenda to the end, while an import swaps in a new one whole. No lock is held
//! while a request works.
//!
//! [`AppState::open`] also decides which agenda to serve at start: the stored one, or the demo
//! conference (see [`crate::agenda::demo`]) when the store has none. A stored demo is moved to today
//! at start, so a data dir made last week still shows a running conference.

use std::sync::Arc;

use arc_swap::ArcSwap;
use jiff::Timestamp;

use crate::agenda::demo;
use crate::agenda::{Agenda, AgendaIndex};
use crate::clock::Clock;
use crate::config::Config;
use crate::import::Imported;
use crate::intents::Diagnostic;
use crate::live_intents::LiveIntents;
use crate::store::{AgendaSource, ImportRecord, Store, StoreError, StoredAgenda};

/// A message for a web chat conversation outside a turn (an expert's reply, a notice), for its
/// open WebSockets.
#[derive(Clone, Debug)]
pub struct WebPush {
    /// The conversation key (`web:…`).
    pub to: String,
    /// The message's number in the conversation.
    pub n: usize,
    pub text: String,
    /// The expert's name when an expert wrote it.
    pub by: Option<String>,
}

/// The state handed to every request: one reference count to clone.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What an [`AppState`] shares.
pub struct Shared {
    pub config: Arc<Config>,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub intents: Arc<LiveIntents>,
    /// One attendee's messages are handled one at a time (see `crate::inbox`).
    pub locks: Arc<crate::locks::Locks>,
    /// The expert desk: routing of hand-offs.
    pub desk: Arc<crate::desk::Desk>,
    /// Messages for web chat attendees sent outside a turn (expert replies), for open WebSockets.
    pub web_push: tokio::sync::broadcast::Sender<WebPush>,
    /// Wakes the outbox worker when a message is queued.
    pub outbox_wake: Arc<tokio::sync::Notify>,
    /// Rate limits of the web chat and of SMS senders.
    pub limits: Arc<RateLimits>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Checks the SMS webhook's signatures; `None` without a Twilio auth token or a public URL.
    pub signatures: Option<crate::sms::signature::Verifier>,
    agenda: Arc<ArcSwap<AgendaIndex>>,
    started: Timestamp,
}

/// Rate limiters: the web chat (see `crate::http::chat`) and SMS senders.
#[derive(Debug)]
pub struct RateLimits {
    pub per_conversation: crate::limits::RateLimiter,
    pub per_address: crate::limits::RateLimiter,
    /// SMS messages per number (the webhook).
    pub per_number: crate::limits::RateLimiter,
}

/// What start-up did about the agenda, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgendaBoot {
    /// The stored agenda, as it was.
    Stored,
    /// The store was empty: the demo was loaded with its first day today.
    DemoSeeded,
    /// The stored demo was moved to start today.
    DemoMoved,
}

#[derive(Debug)]
pub enum StateError {
    Store(StoreError),
    Demo(crate::import::ImportError),
    /// The intent files do not load; there is nothing to answer with.
    Intents(Vec<Diagnostic>),
    /// The routing file does not load.
    Routing(Vec<Diagnostic>),
}

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateError::Store(err) => err.fmt(f),
            StateError::Demo(err) => write!(f, "the embedded demo conference is broken: {err}"),
            StateError::Routing(problems) => {
                write!(f, "the routing file does not load:")?;
                for p in problems {
                    write!(f, "\n  {p}")?;
                }
                Ok(())
            }
            StateError::Intents(problems) => {
                write!(f, "the intent files do not load:")?;
                for p in problems {
                    write!(f, "\n  {p}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for StateError {}

impl From<StoreError> for StateError {
    fn from(err: StoreError) -> StateError {
        StateError::Store(err)
    }
}

impl AppState {
    /// Builds the state over an open store, loading (or seeding) the agenda.
    pub async fn open(
        config: Config,
        store: Store,
        clock: Arc<dyn Clock>,
    ) -> Result<(AppState, AgendaBoot), StateError> {
        let now = clock.now();
        let (agenda, boot) = load_or_seed_agenda(&store, now).await?;
        let intents =
            LiveIntents::open(&config.intents_dir, &agenda, now).map_err(StateError::Intents)?;
        let desk = crate::desk::Desk::open(store.clone(), &config.routing_file, now)
            .map_err(StateError::Routing)?;
        let limits = RateLimits {
            per_conversation: crate::limits::RateLimiter::new(config.web.per_conversation, 100_000),
            per_address: crate::limits::RateLimiter::new(config.web.per_address, 100_000),
            per_number: crate::limits::RateLimiter::new(config.sms.per_number, 100_000),
        };
        let signatures =
            config
                .twilio
                .as_ref()
                .zip(config.public_url.as_ref())
                .map(|(twilio, url)| {
                    crate::sms::signature::Verifier::new(twilio.auth_token.expose(), url)
                });
        let mut metrics = crate::metrics::Metrics::new();
        metrics.register_store(store.commit_times());
        let state = AppState(Arc::new(Shared {
            signatures,
            metrics: Arc::new(metrics),
            limits: Arc::new(limits),
            config: Arc::new(config),
            store,
            clock,
            intents: Arc::new(intents),
            locks: Arc::new(crate::locks::Locks::new()),
            desk: Arc::new(desk),
            outbox_wake: Arc::new(tokio::sync::Notify::new()),
            web_push: tokio::sync::broadcast::channel(1024).0,
            agenda: Arc::new(ArcSwap::from_pointee(AgendaIndex::new(agenda))),
            started: now,
        }));
        Ok((state, boot))
    }

    /// The current agenda. Hold the returned `Arc` for the whole of one request.
    pub fn agenda(&self) -> Arc<AgendaIndex> {
        self.agenda.load_full()
    }

    /// Stores an imported agenda and then makes it current, and recompiles the intents with its
    /// entities. Attendees who saved a session that moved or went are told, once, in the same
    /// transaction (see [`crate::notices::worker::replace_agenda`]). If storing fails, nothing
    /// changes.
    pub async fn replace_agenda(
        &self,
        imported: Imported,
        file: &str,
    ) -> Result<ImportRecord, StoreError> {
        let source = AgendaSource::File {
            name: file.to_string(),
            format: imported.format,
        };
        let index = Arc::new(AgendaIndex::new(imported.agenda.clone()));
        // No turn runs meanwhile: turns see the old agenda or the new one, and the notices'
        // transcript entries stay in order with the conversations'.
        let all = self.locks.lock_all().await;
        let old = self.agenda();
        let (record, notices) = crate::notices::worker::replace_agenda(
            &self.store,
            &old,
            imported.agenda,
            source,
            &self.config.reminders,
            true,
            self.clock.now(),
        )
        .await?;
        self.agenda.store(index.clone());
        for n in &notices {
            crate::outbound::push_web(self, &n.attendee, &n.text, None)?;
        }
        drop(all);
        if !notices.is_empty() {
            self.outbox_wake.notify_one();
        }
        // The old matcher keeps serving if the new entities do not compile; the error is recorded.
        let _ = self.intents.agenda_changed(index, self.clock.now()).await;
        Ok(record)
    }

    pub fn started(&self) -> Timestamp {
        self.started
    }
}

/// The agenda to serve: the stored one; the demo if there is none; the demo moved to today if the
/// stored agenda is the demo placed on another day.
pub async fn load_or_seed_agenda(
    store: &Store,
    now: Timestamp,
) -> Result<(Agenda, AgendaBoot), StateError> {
    let today = demo::today_for_demo(now).map_err(StateError::Demo)?;
    let (boot, stored) = match store.load_agenda()? {
        Some(StoredAgenda {
            source:
                AgendaSource::Demo {
                    first_day,
                    pinned: false,
                },
            ..
        }) if first_day != today => (AgendaBoot::DemoMoved, None),
        Some(stored) => (AgendaBoot::Stored, Some(stored)),
        None => (AgendaBoot::DemoSeeded, None),
    };
    match stored {
        Some(stored) => Ok((stored.agenda, boot)),
        None => {
            let agenda = demo::demo_agenda(today).map_err(StateError::Demo)?;
            store
                .replace_agenda(
                    agenda.clone(),
                    AgendaSource::Demo {
                        first_day: today,
                        pinned: false,
                    },
                    now,
                )
                .await?;
            Ok((agenda, boot))
        }
    }
}
