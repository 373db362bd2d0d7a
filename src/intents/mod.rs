//! Intents: what an attendee's message is asking for.
//!
//! Operators write intent files (TOML, in `intents/`); [`file`] reads them into [`Definitions`],
//! [`matcher`] compiles definitions plus the agenda's entities into a [`Matcher`], and
//! [`Matcher::classify`] turns a message into a [`Classification`]: the intent, a confidence in
//! [0, 1], the entities found and an explanation. [`check`] runs every example and counter-example.
//!
//! - [`normalize`]: case and accent folding, SMS spellings, repeated letters, typo correction.
//! - [`time`]: time expressions ("at 3pm", "mañana por la tarde", "after lunch").
//!
//! Everything here is pure: files are read by [`file::load_dir`] and nothing else; the matcher does
//! no IO and has no clock. A compiled matcher is immutable; the service swaps a whole new one in on
//! reload (see `crate::reload`).

pub mod check;
pub mod file;
pub mod matcher;
pub mod normalize;
pub mod time;

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

pub use file::Diagnostic;
pub use matcher::{Classification, EntityMatch, Matcher};

/// The intents every shipped set must have. Other tools and tests rely on these names.
pub const CATALOG: &[&str] = &[
    "greeting",
    "thanks",
    "help",
    "opt_out",
    "opt_in",
    "next_session",
    "current_sessions",
    "session_search",
    "speaker_info",
    "where_is",
    "add_to_agenda",
    "my_agenda",
    "talk_to_expert",
    "faq_recordings",
    "faq_wifi",
    "faq_food",
    "faq_code_of_conduct",
    "fallback",
];

/// The intent returned when nothing is confident enough.
pub const FALLBACK: &str = "fallback";

/// Entity kinds concierge finds by itself. Operator entities add to these.
pub const BUILTIN_ENTITIES: &[&str] = &[
    "room", "track", "tag", "speaker", "session", "time", "ordinal", "topic",
];

/// A language concierge speaks.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    En,
    Es,
}

impl Lang {
    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "en" => Some(Lang::En),
            "es" => Some(Lang::Es),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Es => "es",
        }
    }
}

/// A place in an intent file.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Loc {
    pub file: Arc<str>,
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// A string from an intent file and where it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sourced {
    pub text: String,
    pub loc: Loc,
}

/// What the service does for an intent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Answer with the intent's reply template.
    #[default]
    Reply,
    NextSessions,
    CurrentSessions,
    SearchSessions,
    SpeakerInfo,
    WhereIs,
    AddToAgenda,
    RemoveFromAgenda,
    MyAgenda,
    /// Text the link of the attendee's calendar feed (iCalendar).
    CalendarLink,
    HandOff,
    OptOut,
    OptIn,
    /// The next page of the last answer.
    More,
    /// Leave the expert and come back to the bot.
    Leave,
}

impl Action {
    pub const NAMES: &[&str] = &[
        "reply",
        "next_sessions",
        "current_sessions",
        "search_sessions",
        "speaker_info",
        "where_is",
        "add_to_agenda",
        "remove_from_agenda",
        "my_agenda",
        "calendar_link",
        "hand_off",
        "opt_out",
        "opt_in",
        "more",
        "leave",
    ];

    pub fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "reply" => Action::Reply,
            "next_sessions" => Action::NextSessions,
            "current_sessions" => Action::CurrentSessions,
            "search_sessions" => Action::SearchSessions,
            "speaker_info" => Action::SpeakerInfo,
            "where_is" => Action::WhereIs,
            "add_to_agenda" => Action::AddToAgenda,
            "remove_from_agenda" => Action::RemoveFromAgenda,
            "my_agenda" => Action::MyAgenda,
            "calendar_link" => Action::CalendarLink,
            "hand_off" => Action::HandOff,
            "opt_out" => Action::OptOut,
            "opt_in" => Action::OptIn,
            "more" => Action::More,
            "leave" => Action::Leave,
            _ => return None,
        })
    }
}

/// An intent's response: an action, and reply templates per language.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    pub action: Action,
    /// For `hand_off`: the skill to ask for when the message names none.
    pub skill: Option<Sourced>,
    pub reply: Vec<(Lang, Sourced)>,
    /// For actions that list sessions: what to say when there are none.
    pub empty: Vec<(Lang, Sourced)>,
}

/// A slot an intent fills from the entities of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    pub name: String,
    pub entity: Sourced,
    pub required: bool,
    /// The follow-up question when a required slot is missing.
    pub ask: Vec<(Lang, String)>,
}

/// An intent as written in a file, checked locally.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntentDef {
    pub name: String,
    pub description: String,
    pub priority: i32,
    pub phrases: Vec<(Lang, Sourced)>,
    pub any: Vec<Sourced>,
    pub all: Vec<Sourced>,
    pub none: Vec<Sourced>,
    pub patterns: Vec<Sourced>,
    pub exact: Vec<Sourced>,
    pub alone: Vec<Sourced>,
    /// Entity kinds the intent is about: without one of them in the message, its strong evidence
    /// counts only as a keyword ("where can i find the slides" is not a room question).
    pub needs: Vec<Sourced>,
    /// Greetings and thanks: their words do not count against other intents in the same message.
    pub social: bool,
    pub slots: Vec<Slot>,
    pub response: Response,
    pub examples: Vec<Sourced>,
    pub counter_examples: Vec<Sourced>,
    pub loc: Loc,
}

/// An operator entity list: values, each with its synonyms (the value itself included).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntityDef {
    pub name: String,
    pub description: String,
    pub values: Vec<(String, Vec<Sourced>)>,
    /// `(language, value, label)`: how a value is written in replies.
    pub labels: Vec<(Lang, String, String)>,
    pub loc: Loc,
}

/// Tuning of the matcher (see [`matcher`] for what they mean).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Settings {
    pub threshold: f32,
    pub margin: f32,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            threshold: 0.5,
            margin: 0.1,
        }
    }
}

/// Everything read from a folder of intent files.
#[derive(Clone, Debug, Default)]
pub struct Definitions {
    /// File names, in the order read.
    pub files: Vec<String>,
    pub intents: Vec<IntentDef>,
    pub entities: Vec<EntityDef>,
    pub spellings: Vec<(Sourced, String)>,
    pub filler: Vec<String>,
    pub settings: Settings,
}

impl Definitions {
    pub fn intent(&self, name: &str) -> Option<&IntentDef> {
        self.intents.iter().find(|i| i.name == name)
    }
}
