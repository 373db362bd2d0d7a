//! The conversation engine: one turn of a conversation as a plain function.
//!
//! [`turn`] takes what the attendee's conversation remembers ([`Attendee`]), the message, its
//! [`Classification`], the agenda and the time, and returns the replies, the new state and the side
//! effects the channel must carry out ([`Effect`]: opt-out, save a session, hand off to an expert).
//! It does no IO and reads no clock, so every conversation is a test that runs in microseconds.
//!
//! What it remembers between messages, and for how long (`Settings::context_ttl` of silence):
//! - the last list of sessions, numbered, so "2", "save 3", "that one", "the first one" and MORE
//!   work on it;
//! - the unsent pages of a long answer (MORE);
//! - a question it asked ("Which topic?"), so the next message can answer it;
//! - how many messages in a row it did not understand (the third offers an expert).
//!
//! The attendee's saved sessions and language are kept beyond that.
//!
//! Wording comes from the intent files (each intent's `reply` and `empty` templates); the few
//! sentences of the engine's own (list footers, "I can only read text") are in [`render`].

pub mod render;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::agenda::{AgendaIndex, Filter, Session, SessionKind};
use crate::intents::matcher::{EntityValue, Templates};
use crate::intents::time::{self, TimeExpr};
use crate::intents::{Action, Classification, Lang, Matcher};
use crate::routing::{Estimate, TaskStatus};
use render::Texts;

/// What concierge remembers about one attendee.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Attendee {
    #[serde(default)]
    pub context: Context,
    /// Saved session ids, in the order saved.
    #[serde(default)]
    pub saved: Vec<String>,
    #[serde(default)]
    pub language: Option<Lang>,
    /// The hand-off task the attendee is in, if any.
    #[serde(default)]
    pub handoff: Option<u64>,
}

/// The short-term memory of a conversation. Forgotten after `Settings::context_ttl` of silence.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Context {
    pub last_at: Option<Timestamp>,
    /// The last numbered list of sessions; "2" means `list[1]`.
    #[serde(default)]
    pub list: Vec<String>,
    /// Pages of the last answer not sent yet.
    #[serde(default)]
    pub pages: Vec<String>,
    /// A question the bot asked and the intent it will run with the answer.
    #[serde(default)]
    pub pending: Option<Pending>,
    /// Messages in a row that fell to fallback.
    #[serde(default)]
    pub fallbacks: u8,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    pub intent: String,
    pub slot: String,
}

/// A message as the engine sees it.
#[derive(Clone, Debug)]
pub struct Inbound<'a> {
    pub text: &'a str,
    pub at: Timestamp,
    /// The message carried pictures or other media.
    pub has_media: bool,
    /// The attendee has opted out of messages (only opt-in words get an answer).
    pub opted_out: bool,
    /// The attendee's hand-off task, as the desk sees it now.
    pub handoff: Option<HandOffView>,
    /// For a hand-off request: where it would stand in the queue.
    pub queue: Option<Estimate>,
    /// For a calendar link request: the attendee's calendar feed URL.
    pub calendar_url: Option<String>,
}

/// A hand-off task as the engine needs to see it.
#[derive(Clone, Debug, PartialEq)]
pub struct HandOffView {
    pub task: u64,
    pub status: TaskStatus,
    /// The expert's display name, once one accepted.
    pub expert: Option<String>,
}

/// What the channel must do besides replying.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    OptOut,
    OptIn,
    SaveSession {
        id: String,
    },
    RemoveSession {
        id: String,
    },
    HandOff {
        skill: Option<String>,
        question: String,
    },
    /// A message for the expert while the attendee waits or talks to them.
    Attach {
        task: u64,
        text: String,
    },
    /// The attendee leaves the hand-off (back to the bot, or opted out).
    CancelHandOff {
        task: u64,
    },
}

/// The outcome of one turn.
#[derive(Clone, Debug)]
pub struct Turn {
    pub replies: Vec<String>,
    /// The sessions the reply is about, for channels that can show them as cards (the web chat).
    pub cards: Option<Cards>,
    pub effects: Vec<Effect>,
    pub attendee: Attendee,
    /// The intent the turn acted on (after follow-ups), for logs and metrics.
    pub intent: String,
}

/// A reply about sessions, in a form a richer channel can show: the reply's own words without
/// the numbered lines, and the sessions those lines named, in order. SMS sends the full text.
#[derive(Clone, Debug, PartialEq)]
pub struct Cards {
    /// The reply without its list lines (the heading, a speaker's bio, a session's details).
    pub text: String,
    pub sessions: Vec<String>,
}

/// How the engine shapes its answers.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Longest reply, in SMS segments; longer answers are paged with MORE. `None`: no limit (web).
    pub max_segments: Option<usize>,
    pub context_ttl: SignedDuration,
    /// Sessions listed per answer before MORE.
    pub list_size: usize,
    pub conference: String,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            max_segments: Some(2),
            context_ttl: SignedDuration::from_mins(30),
            list_size: 5,
            conference: "the conference".into(),
        }
    }
}

/// Words that accept an offer ("want an expert? reply YES").
const YES: &[&str] = &[
    "yes", "y", "yeah", "yep", "sure", "ok", "si", "sí", "vale", "claro", "expert",
];

/// Runs one turn. Pure: the same arguments always give the same turn.
pub fn turn(
    attendee: &Attendee,
    inbound: &Inbound,
    c: &Classification,
    agenda: &AgendaIndex,
    matcher: &Matcher,
    settings: &Settings,
) -> Turn {
    let mut next = attendee.clone();
    let expired = next
        .context
        .last_at
        .is_some_and(|t| inbound.at.duration_since(t) > settings.context_ttl);
    if expired {
        next.context = Context::default();
    }
    next.context.last_at = Some(inbound.at);
    let lang = if c.language_known {
        c.language
    } else {
        next.language.unwrap_or(c.language)
    };
    next.language = Some(lang);
    let texts = Texts::new(lang);
    let mut t = Engine {
        next,
        inbound,
        c,
        agenda,
        matcher,
        settings,
        texts,
        lang,
        effects: Vec::new(),
        intent: c.intent.to_string(),
        cards: None,
    };
    let reply = t.run();
    let replies = match reply {
        None => Vec::new(),
        Some(text) => vec![t.page(text)],
    };
    Turn {
        replies,
        cards: t.cards,
        effects: t.effects,
        attendee: t.next,
        intent: t.intent,
    }
}

struct Engine<'a> {
    next: Attendee,
    inbound: &'a Inbound<'a>,
    c: &'a Classification,
    agenda: &'a AgendaIndex,
    matcher: &'a Matcher,
    settings: &'a Settings,
    texts: Texts,
    lang: Lang,
    effects: Vec<Effect>,
    intent: String,
    cards: Option<Cards>,
}

impl<'a> Engine<'a> {
    /// The reply text, or `None` for silence.
    fn run(&mut self) -> Option<String> {
        let action = self.c.action;
        // Opted out: only an opt-in (START, UNSTOP, or YES) is answered.
        if self.inbound.opted_out {
            let yes = plain(&self.c.text) == "yes";
            if action == Action::OptIn || yes {
                self.intent = "opt_in".into();
                self.effects.push(Effect::OptIn);
                return Some(self.reply_template("opt_in"));
            }
            return None;
        }
        if self.inbound.has_media && self.inbound.text.trim().is_empty() {
            return Some(self.texts.media_only().to_string());
        }
        // With an expert (or waiting for one): messages go to the task, not to the bot.
        if let Some(h) = self.inbound.handoff.clone() {
            let active = matches!(
                h.status,
                TaskStatus::Pending
                    | TaskStatus::Reserved
                    | TaskStatus::Assigned
                    | TaskStatus::Wrapping
            );
            if !active {
                self.next.handoff = None;
            } else {
                match action {
                    Action::OptOut => {
                        self.effects.push(Effect::OptOut);
                        self.effects.push(Effect::CancelHandOff { task: h.task });
                        self.next.handoff = None;
                        self.next.context = Context::default();
                        return Some(self.reply_template("opt_out"));
                    }
                    Action::Leave => {
                        self.intent = "back_to_bot".into();
                        self.effects.push(Effect::CancelHandOff { task: h.task });
                        self.next.handoff = None;
                        return Some(self.reply_template("back_to_bot"));
                    }
                    _ => {
                        self.intent = "to_expert".into();
                        self.effects.push(Effect::Attach {
                            task: h.task,
                            text: self.inbound.text.trim().to_string(),
                        });
                        return match h.status {
                            TaskStatus::Assigned | TaskStatus::Wrapping => None,
                            _ => Some(self.texts.still_waiting().to_string()),
                        };
                    }
                }
            }
        }
        match action {
            Action::OptOut => {
                self.effects.push(Effect::OptOut);
                self.next.context = Context::default();
                return Some(self.reply_template("opt_out"));
            }
            Action::OptIn => {
                self.effects.push(Effect::OptIn);
                return Some(self.reply_template("opt_in"));
            }
            _ => {}
        }

        // An answer to a question the bot asked.
        if let Some(pending) = self.next.context.pending.take() {
            let is_fallback = self.c.intent.as_ref() == crate::intents::FALLBACK;
            if pending.slot == "confirm" && pending.intent == "talk_to_expert" {
                if YES.contains(&plain(&self.c.text).as_str()) {
                    self.intent = "talk_to_expert".into();
                    return Some(self.hand_off());
                }
            } else if is_fallback || *self.c.intent == *pending.intent {
                self.intent = pending.intent.clone();
                self.next.context.fallbacks = 0;
                let answer = self.inbound.text.trim();
                return Some(self.act(action_of(&pending.intent), Some(answer)));
            }
        }

        if self.c.intent.as_ref() == crate::intents::FALLBACK {
            return Some(self.fallback());
        }
        self.next.context.fallbacks = 0;
        Some(self.act(action, None))
    }

    /// Carries out an action. `answer` is the text of a reply to a follow-up question.
    fn act(&mut self, action: Action, answer: Option<&str>) -> String {
        match action {
            Action::NextSessions => self.next_sessions(),
            Action::CurrentSessions => self.current_sessions(),
            Action::SearchSessions => self.search(answer),
            Action::SpeakerInfo => self.speaker_info(answer),
            Action::WhereIs => self.where_is(answer),
            Action::AddToAgenda => self.add_to_agenda(),
            Action::RemoveFromAgenda => self.remove_from_agenda(),
            Action::MyAgenda => self.my_agenda(),
            Action::CalendarLink => self.calendar_link(),
            Action::HandOff => self.hand_off(),
            Action::More => self.more(),
            Action::Leave => self.fill("back_to_bot", true, &[]),
            Action::OptOut | Action::OptIn | Action::Reply => {
                let intent = self.intent.clone();
                self.reply_template(&intent)
            }
        }
    }

    fn templates(&self, intent: &str) -> Option<&Templates> {
        self.matcher.templates(intent)
    }

    /// The intent's reply, with `{conference}` filled in.
    fn reply_template(&self, intent: &str) -> String {
        self.fill(intent, false, &[])
    }

    /// The intent's `reply` (or, with `empty`, its `empty`) template with placeholders filled.
    fn fill(&self, intent: &str, empty: bool, values: &[(&str, &str)]) -> String {
        let template = self
            .templates(intent)
            .and_then(|t| Templates::pick(if empty { &t.empty } else { &t.reply }, self.lang))
            .unwrap_or("");
        render::substitute(template, |name| match name {
            "conference" => Some(self.settings.conference.as_str()),
            name => values.iter().find(|(k, _)| *k == name).map(|(_, v)| *v),
        })
    }

    fn fallback(&mut self) -> String {
        self.next.context.fallbacks = self.next.context.fallbacks.saturating_add(1);
        if self.next.context.fallbacks >= 3 {
            self.next.context.fallbacks = 0;
            self.next.context.pending = Some(Pending {
                intent: "talk_to_expert".into(),
                slot: "confirm".into(),
            });
            return self.texts.offer_expert().to_string();
        }
        self.reply_template(crate::intents::FALLBACK)
    }

    /// The first entity value of a kind, as text. Words inside a time expression are the time's
    /// ("after lunch" is a time, not the lunch session).
    fn entity(&self, kind: &str) -> Option<&str> {
        let in_time = |e: &crate::intents::EntityMatch| {
            self.c.entities.iter().any(|t| {
                matches!(t.value, EntityValue::Time(_))
                    && t.tokens.start < e.tokens.end
                    && e.tokens.start < t.tokens.end
            })
        };
        self.c
            .entities
            .iter()
            .filter(|e| &*e.kind == kind && !in_time(e))
            .find_map(|e| match &e.value {
                EntityValue::Text(t) => Some(&**t),
                EntityValue::Time(_) => None,
            })
    }

    fn time(&self) -> Option<TimeExpr> {
        self.c.entities.iter().find_map(|e| match e.value {
            EntityValue::Time(t) => Some(t),
            EntityValue::Text(_) => None,
        })
    }

    /// The filter the message asks for (room, track, topic, kind) and words describing it.
    fn filter(&self, answer: Option<&str>) -> (Filter, String) {
        let mut filter = Filter::default();
        let mut scope = String::new();
        if let Some(room) = self.entity("room").and_then(|r| self.agenda.room(r)) {
            filter.room = Some(room);
            scope.push_str(&format!(
                " {} {}",
                self.texts.in_word(),
                self.agenda.room_name(room)
            ));
        }
        if let Some(kind) = self.entity("kind").and_then(kind_of) {
            filter.kind = Some(kind);
        }
        let topic = answer.map(str::to_string).or_else(|| {
            // A track narrows by track; other topics search the text.
            if let Some(track) = self.entity("track").and_then(|t| self.agenda.track(t)) {
                filter.track = Some(track);
                scope.push_str(&format!(" ({})", self.agenda.track_name(track)));
                return None;
            }
            self.entity("topic")?;
            let topic = self.c.entities.iter().find(|e| &*e.kind == "topic")?;
            Some(topic.text.clone())
        });
        if let Some(topic) = topic.filter(|t| !t.trim().is_empty()) {
            filter = filter.topic(&topic);
            scope.push_str(&format!(" {} {}", self.texts.about_word(), topic.trim()));
        }
        (filter, scope)
    }

    /// The instant the message is about: its time expression resolved, else now.
    fn from(&self) -> (Timestamp, Option<Timestamp>, String) {
        let now = self.inbound.at;
        let said = self
            .c
            .entities
            .iter()
            .find(|e| matches!(e.value, EntityValue::Time(_)));
        match self
            .time()
            .and_then(|t| time::resolve(t, now, self.agenda).map(|w| (t, w)))
        {
            Some((expr, w)) => {
                // The scope says the time as the attendee said it ("after lunch").
                let label = match (expr, said) {
                    (TimeExpr::Now, _) => String::new(),
                    (_, Some(e)) => format!(" {}", e.text),
                    (_, None) => format!(" {}", self.texts.from_word(&self.local(w.from))),
                };
                (w.from, w.to, label)
            }
            None => (now, None, String::new()),
        }
    }

    fn local(&self, ts: Timestamp) -> String {
        render::clock(self.agenda, ts, self.inbound.at, self.lang)
    }

    fn next_sessions(&mut self) -> String {
        let (filter, mut scope) = self.filter(None);
        let (at, _, when) = self.from();
        scope.push_str(&when);
        let plain = filter.room.is_none()
            && filter.track.is_none()
            && filter.topic.is_none()
            && filter.kind.is_none();
        let sessions = if plain {
            self.agenda.next_slot(at, &filter)
        } else {
            self.agenda.next(at, &filter, self.settings.list_size)
        };
        self.list("next_session", sessions, &scope)
    }

    fn current_sessions(&mut self) -> String {
        let (filter, scope) = self.filter(None);
        let (at, _, _) = self.from();
        let sessions = self.agenda.now(at, &filter);
        self.list("current_sessions", sessions, &scope)
    }

    fn search(&mut self, answer: Option<&str>) -> String {
        let (filter, mut scope) = self.filter(answer);
        let (from, to, when) = self.from();
        scope.push_str(&when);
        let has_time = self.time().is_some();
        if filter.topic.is_none()
            && filter.track.is_none()
            && filter.room.is_none()
            && filter.kind.is_none()
            && !has_time
        {
            // Nothing to search for: ask.
            return self.ask("session_search", "topic");
        }
        let sessions: Vec<&Session> = match (has_time, to) {
            (true, Some(to)) => self.agenda.starting_between(from, to, &filter),
            (true, None) => self.agenda.next(from, &filter, 50),
            // No time: upcoming matches first, then earlier ones.
            (false, _) => {
                let mut upcoming = self.agenda.next(self.inbound.at, &filter, 50);
                if upcoming.is_empty() {
                    upcoming = self.agenda.next(Timestamp::MIN, &filter, 50);
                }
                upcoming
            }
        };
        self.list("session_search", sessions, &scope)
    }

    /// Asks for a missing slot and remembers the question.
    fn ask(&mut self, intent: &str, slot: &str) -> String {
        let question = self
            .templates(intent)
            .and_then(|t| t.slots.iter().find(|s| s.0 == slot))
            .and_then(|s| Templates::pick(&s.3, self.lang))
            .map(str::to_string)
            .unwrap_or_else(|| self.fill(intent, true, &[("scope", ""), ("count", "0")]));
        self.next.context.pending = Some(Pending {
            intent: intent.into(),
            slot: slot.into(),
        });
        question
    }

    /// A numbered list of sessions under the intent's heading, remembered for "2" and MORE.
    fn list(&mut self, intent: &str, sessions: Vec<&Session>, scope: &str) -> String {
        if sessions.is_empty() {
            return self.fill(intent, true, &[("scope", scope), ("count", "0")]);
        }
        let count = sessions.len().to_string();
        let heading = self.fill(intent, false, &[("scope", scope), ("count", &count)]);
        self.show(&heading, &sessions);
        let mut out = heading;
        self.numbered(&mut out, &sessions);
        out.push('\n');
        out.push_str(&self.texts.save_hint(sessions.len()));
        out
    }

    /// Remembers `sessions` as the list "2" and "that one" refer to, and as the reply's cards.
    fn show(&mut self, text: &str, sessions: &[&Session]) {
        let ids: Vec<String> = sessions.iter().map(|s| s.id.clone()).collect();
        self.next.context.list = ids.clone();
        self.cards = Some(Cards {
            text: text.to_string(),
            sessions: ids,
        });
    }

    /// One session's details, remembered as "that one".
    fn detail(&mut self, s: &Session) -> String {
        let text = render::session_detail(self.agenda, s, self.inbound.at, self.lang);
        self.show(&text, &[s]);
        text
    }

    /// Appends `sessions` as numbered lines.
    fn numbered(&self, out: &mut String, sessions: &[&Session]) {
        let today = render::local_day(self.agenda, self.inbound.at);
        for (i, s) in sessions.iter().enumerate() {
            out.push('\n');
            render::write_line(out, self.agenda, s, i + 1, today, self.lang);
        }
    }

    fn speaker_info(&mut self, answer: Option<&str>) -> String {
        let name = answer.or_else(|| self.entity("speaker"));
        let speakers = match name {
            Some(n) => self.agenda.find_speakers(n),
            None => {
                // "who is speaking in the bay room (now)": the speakers of what is on there.
                let (filter, _) = self.filter(None);
                let (at, _, _) = self.from();
                let on = self.agenda.now(at, &filter);
                let on = if on.is_empty() {
                    self.agenda.next_slot(at, &filter)
                } else {
                    on
                };
                if on.is_empty()
                    || (filter.room.is_none()
                        && filter.kind.is_none()
                        && self.entity("session").is_none())
                {
                    if let Some(id) = self.entity("session") {
                        if let Some(s) = self.agenda.session(id) {
                            return self.detail(s);
                        }
                    }
                    return self.ask("speaker_info", "speaker");
                }
                let mut out = String::new();
                for s in on.iter().take(self.settings.list_size) {
                    if !out.is_empty() {
                        out.push('\n');
                    }
                    out.push_str(&render::session_detail(
                        self.agenda,
                        s,
                        self.inbound.at,
                        self.lang,
                    ));
                }
                let shown = &on[..on.len().min(self.settings.list_size)];
                self.show(&out, shown);
                self.next.context.list = on.iter().map(|s| s.id.clone()).collect();
                return out;
            }
        };
        let Some(speaker) = speakers.first() else {
            return self.fill("speaker_info", true, &[]);
        };
        let sessions: Vec<&Session> = speaker
            .sessions
            .iter()
            .filter_map(|id| self.agenda.session(id))
            .collect();
        let mut out = speaker.name.clone();
        if let Some(bio) = &speaker.bio {
            out.push_str(": ");
            out.push_str(bio);
        }
        self.show(&out, &sessions);
        self.numbered(&mut out, &sessions);
        out
    }

    fn where_is(&mut self, answer: Option<&str>) -> String {
        if let Some(id) = self.entity("session") {
            if let Some(s) = self.agenda.session(id) {
                return self.detail(s);
            }
        }
        // A kind ("the keynote", "the workshop"): the one on now, else the next one.
        if let Some(kind) = self.entity("kind").and_then(kind_of) {
            let filter = Filter {
                kind: Some(kind),
                ..Filter::default()
            };
            let now = self.inbound.at;
            let found = self
                .agenda
                .now(now, &filter)
                .into_iter()
                .next()
                .or_else(|| self.agenda.next(now, &filter, 1).into_iter().next());
            if let Some(s) = found {
                return self.detail(s);
            }
        }
        if let Some(room) = self.entity("room").and_then(|r| self.agenda.room(r)) {
            return render::room_detail(self.agenda, room, self.inbound.at, self.lang);
        }
        if let Some(text) = answer.or_else(|| self.entity("topic")) {
            if let Some(hit) = self.agenda.search(text, None, 1).into_iter().next() {
                return self.detail(hit.session);
            }
        }
        self.ask("where_is", "session")
    }

    /// The session a save or remove is about: a number or "that one" from the last list, a title
    /// the matcher recognised, or words of a title among `candidates`. Several equally good
    /// title matches are listed to choose from (`Err` with that reply); none is `Ok(None)`.
    fn pick(
        &mut self,
        intent: &str,
        candidates: &[&'a Session],
    ) -> Result<Option<&'a Session>, String> {
        let list = &self.next.context.list;
        let by_list = match self.entity("ordinal") {
            Some("last") => list.last().cloned(),
            Some("that") => list.first().cloned(),
            Some(n) => n
                .parse::<usize>()
                .ok()
                .and_then(|n| list.get(n.wrapping_sub(1)).cloned()),
            None => None,
        };
        let by_name = || self.entity("session").map(str::to_string);
        if let Some(id) = by_list.or_else(by_name) {
            return Ok(self.agenda.session(&id));
        }
        let words = title_words(&self.c.text);
        let found = best_titles(&words, candidates);
        match found.as_slice() {
            // No words to go by: the one session just shown, if it was one.
            [] if words.is_empty() && list.len() == 1 => Ok(self.agenda.session(&list[0])),
            [] => Ok(None),
            [one] => Ok(self.agenda.session(&one.id)),
            several => {
                let several: Vec<&Session> = several
                    .iter()
                    .take(self.settings.list_size)
                    .filter_map(|s| self.agenda.session(&s.id))
                    .collect();
                let mut out = self.texts.which_one().to_string();
                self.show(&out.clone(), &several);
                self.numbered(&mut out, &several);
                self.next.context.pending = Some(Pending {
                    intent: intent.into(),
                    slot: "which".into(),
                });
                Err(out)
            }
        }
    }

    fn add_to_agenda(&mut self) -> String {
        let programme: Vec<&Session> = self
            .agenda
            .agenda()
            .sessions
            .iter()
            .filter(|s| s.kind.is_programme())
            .collect();
        let session = match self.pick("add_to_agenda", &programme) {
            Ok(Some(s)) => s,
            Ok(None) => return self.fill("add_to_agenda", true, &[]),
            Err(question) => return question,
        };
        let title = render::short(self.agenda, session, self.inbound.at, self.lang);
        if self.next.saved.contains(&session.id) {
            return self.texts.already_saved(&title);
        }
        self.next.saved.push(session.id.clone());
        self.effects.push(Effect::SaveSession {
            id: session.id.clone(),
        });
        let mut out = self.fill("add_to_agenda", false, &[("title", &title)]);
        if let Some(clash) = self.overlap(session) {
            out.push_str(&format!(" {}", self.texts.overlaps(&clash.title)));
        }
        self.cards = Some(Cards {
            text: out.clone(),
            sessions: vec![session.id.clone()],
        });
        out
    }

    /// A saved session (other than `s`) that overlaps `s`.
    fn overlap(&self, s: &Session) -> Option<&Session> {
        self.next
            .saved
            .iter()
            .filter(|id| **id != s.id)
            .filter_map(|id| self.agenda.session(id))
            .find(|o| o.start < s.end && s.start < o.end)
    }

    fn remove_from_agenda(&mut self) -> String {
        let saved: Vec<&Session> = self
            .next
            .saved
            .iter()
            .filter_map(|id| self.agenda.session(id))
            .collect();
        let session = match self.pick("remove_from_agenda", &saved) {
            Ok(Some(s)) => s,
            Ok(None) => {
                // Words of a session that is not saved: say so rather than ask which.
                let all: Vec<&Session> = self.agenda.agenda().sessions.iter().collect();
                if let [one] = best_titles(&title_words(&self.c.text), &all).as_slice() {
                    let title = render::short(self.agenda, one, self.inbound.at, self.lang);
                    return self.texts.not_saved(&title);
                }
                return self.fill("remove_from_agenda", true, &[]);
            }
            Err(question) => return question,
        };
        let title = render::short(self.agenda, session, self.inbound.at, self.lang);
        if !self.next.saved.contains(&session.id) {
            return self.texts.not_saved(&title);
        }
        self.next.saved.retain(|id| *id != session.id);
        self.effects.push(Effect::RemoveSession {
            id: session.id.clone(),
        });
        self.fill("remove_from_agenda", false, &[("title", &title)])
    }

    fn calendar_link(&mut self) -> String {
        match self.inbound.calendar_url.clone() {
            Some(url) => self.fill("calendar_link", false, &[("url", &url)]),
            None => self.fill("calendar_link", true, &[]),
        }
    }

    fn my_agenda(&mut self) -> String {
        let mut sessions: Vec<&Session> = self
            .next
            .saved
            .iter()
            .filter_map(|id| self.agenda.session(id))
            .collect();
        sessions.sort_by_key(|s| (s.start, s.end));
        if let Some(day) = self
            .time()
            .and_then(|t| time::resolve(t, self.inbound.at, self.agenda))
        {
            sessions.retain(|s| s.start >= day.from && day.to.is_none_or(|to| s.start < to));
        }
        if sessions.is_empty() {
            return self.fill("my_agenda", true, &[]);
        }
        let count = sessions.len().to_string();
        let mut out = self.fill("my_agenda", false, &[("count", &count)]);
        self.show(&out, &sessions);
        let today = render::local_day(self.agenda, self.inbound.at);
        for (i, s) in sessions.iter().enumerate() {
            out.push('\n');
            render::write_line(&mut out, self.agenda, s, i + 1, today, self.lang);
            if let Some(j) = sessions
                .iter()
                .position(|o| o.id != s.id && o.start < s.end && s.start < o.end)
            {
                out.push_str(&format!(" ({})", self.texts.overlaps_number(j + 1)));
            }
        }
        let now = self.inbound.at;
        if let Some(next) = sessions.iter().find(|s| s.start > now) {
            out.push('\n');
            out.push_str(&self.texts.next_for_you(&render::short(
                self.agenda,
                next,
                now,
                self.lang,
            )));
        }
        if let Some(cards) = &mut self.cards {
            cards.text = out.lines().next().unwrap_or_default().to_string();
            if let Some(next) = sessions.iter().find(|s| s.start > now) {
                cards.text.push('\n');
                cards.text.push_str(&self.texts.next_for_you(&render::short(
                    self.agenda,
                    next,
                    now,
                    self.lang,
                )));
            }
        }
        out
    }

    fn hand_off(&mut self) -> String {
        let skill = self.entity("skill").map(str::to_string).or_else(|| {
            self.templates("talk_to_expert")
                .and_then(|t| t.skill.clone())
        });
        self.effects.push(Effect::HandOff {
            skill: skill.clone(),
            question: self.inbound.text.trim().to_string(),
        });
        let label = skill
            .as_deref()
            .map(|s| self.matcher.label("skill", s, self.lang));
        let who = self.texts.expert(label.as_deref());
        let mut out = self.fill("talk_to_expert", false, &[("skill", &who)]);
        if let Some(q) = &self.inbound.queue {
            out.push(' ');
            out.push_str(&self.texts.wait(q, &who, label.as_deref()));
        }
        out
    }

    fn more(&mut self) -> String {
        if self.next.context.pages.is_empty() {
            return self.fill("more", true, &[]);
        }
        self.next.context.pages.remove(0)
    }

    /// Splits a reply that is too long for SMS into pages: sends the first, keeps the rest for MORE.
    fn page(&mut self, text: String) -> String {
        let Some(max) = self.settings.max_segments else {
            return text;
        };
        if self.c.action == Action::More && !text.is_empty() {
            // A page is already sized.
            return text;
        }
        let mut pages = crate::sms::segments::paginate(&text, max, self.texts.more_hint());
        let first = pages.remove(0);
        self.next.context.pages = pages;
        first
    }
}

/// Words of a message that could be words of a title: folded, without the words of saving and
/// removing ("save", "my agenda", "the", "talk").
fn title_words(text: &str) -> Vec<String> {
    const COMMAND: &[&str] = &[
        "save", "add", "bookmark", "star", "remind", "me", "about", "to", "my", "agenda",
        "schedule", "calendar", "list", "the", "a", "an", "that", "this", "one", "talk", "session",
        "workshop", "panel", "please", "pls", "it", "remove", "delete", "drop", "unsave", "from",
        "off", "take", "on", "in", "of", "i", "want", "go", "and", "for", "put", "cant", "make",
        "not", "going", "anymore", "guarda", "guardar", "agrega", "agregar", "quita", "quitar",
        "borra", "borrar", "la", "el", "de", "mi", "charla", "sesion", "y", "por", "favor",
    ];
    crate::text::fold(text)
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() >= 2 && !COMMAND.contains(w))
        .map(str::to_string)
        .collect()
}

/// The sessions whose titles share the most of `words` (a word counts when a title word starts
/// with it and it has 3+ letters, or equals it), if any share one; several when tied.
fn best_titles<'s>(words: &[String], candidates: &[&'s Session]) -> Vec<&'s Session> {
    if words.is_empty() {
        return Vec::new();
    }
    let mut best = 0usize;
    let mut found: Vec<&Session> = Vec::new();
    for s in candidates {
        let title = crate::text::fold(&s.title);
        let title: Vec<&str> = title.split(|c: char| !c.is_alphanumeric()).collect();
        let hits = words
            .iter()
            .filter(|w| {
                title
                    .iter()
                    .any(|t| *t == w.as_str() || (w.len() >= 3 && t.starts_with(w.as_str())))
            })
            .count();
        if hits == 0 || hits < best {
            continue;
        }
        if hits > best {
            best = hits;
            found.clear();
        }
        found.push(s);
    }
    found
}

/// The message as a whole, folded and trimmed of punctuation ("Yes!" → "yes").
fn plain(text: &str) -> String {
    crate::text::fold(text.trim())
        .trim_matches(|c: char| !c.is_alphanumeric())
        .to_string()
}

fn action_of(intent: &str) -> Action {
    match intent {
        "next_session" => Action::NextSessions,
        "current_sessions" => Action::CurrentSessions,
        "session_search" => Action::SearchSessions,
        "speaker_info" => Action::SpeakerInfo,
        "where_is" => Action::WhereIs,
        "add_to_agenda" => Action::AddToAgenda,
        "remove_from_agenda" => Action::RemoveFromAgenda,
        "my_agenda" => Action::MyAgenda,
        "calendar_link" => Action::CalendarLink,
        "talk_to_expert" => Action::HandOff,
        _ => Action::Reply,
    }
}

/// The session kind an entity value of `kind` names.
fn kind_of(value: &str) -> Option<SessionKind> {
    Some(match value {
        "keynote" => SessionKind::Keynote,
        "workshop" => SessionKind::Workshop,
        "meal" => SessionKind::Meal,
        "break" => SessionKind::Break,
        "social" => SessionKind::Social,
        _ => return None,
    })
}
