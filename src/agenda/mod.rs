//! The agenda model: a conference, its days, rooms, tracks, speakers and sessions.
//!
//! An [`Agenda`] is what every importer produces and what the store keeps. It is plain data with one
//! constructor that matters, [`Agenda::new`], which checks the invariants below and derives what can
//! be derived; nothing else builds an `Agenda` from parts, so every `Agenda` in the program holds:
//!
//! - sessions are sorted by start, then end, then room order, then id, and their ids are unique;
//! - every session ends at or after it starts;
//! - every room, track and speaker a session names exists in the lists (they are added if the source
//!   forgot them), every track has a session, and every speaker's `sessions` lists exactly the
//!   sessions naming it;
//! - every session belongs to a day of `conference.days` (`Session::day` is that day's index), and the
//!   days are sorted and cover their sessions.
//!
//! Times are instants ([`jiff::Timestamp`]); they are shown in the conference's time zone
//! ([`Zone`]). Queries over an agenda live in [`query`]; this module does no IO.

pub mod demo;
pub mod query;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use jiff::civil::Date;
use jiff::tz::{Offset, TimeZone};
use jiff::{Timestamp, Zoned};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use query::{AgendaIndex, Filter, SearchHit};

/// A whole conference agenda. Build one with [`Agenda::new`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Agenda {
    pub conference: Conference,
    pub rooms: Vec<Room>,
    pub tracks: Vec<Track>,
    pub speakers: Vec<Speaker>,
    pub sessions: Vec<Session>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Conference {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acronym: Option<String>,
    pub time_zone: Zone,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub venue: Option<String>,
    /// Schedule days in order. A day may run past midnight (38C3's days end at 06:00 the next
    /// morning), so a session's day is not always its local calendar date.
    pub days: Vec<Day>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Day {
    /// 1-based, as the schedule numbers them.
    pub index: u32,
    /// The calendar date the schedule gives the day.
    pub date: Date,
    pub start: Timestamp,
    pub end: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Room {
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Track {
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Speaker {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bio: Option<String>,
    /// Ids of the sessions this speaker is in, in agenda order. Derived by [`Agenda::new`].
    #[serde(default)]
    pub sessions: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    pub title: String,
    #[serde(rename = "abstract", default, skip_serializing_if = "String::is_empty")]
    pub abstract_text: String,
    pub start: Timestamp,
    pub end: Timestamp,
    /// Index of the schedule day this session belongs to (see [`Day::index`]).
    #[serde(default)]
    pub day: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track: Option<String>,
    #[serde(default)]
    pub kind: SessionKind,
    /// Speaker ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub speakers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// The session's page on the conference site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_url: Option<String>,
}

/// What sort of slot a session is. Breaks and meals are in the agenda so "when is lunch" works, but
/// answers about talks leave them out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionKind {
    #[default]
    Talk,
    Keynote,
    Workshop,
    Panel,
    Lightning,
    Break,
    Meal,
    Social,
    Other,
}

impl SessionKind {
    /// Guesses the kind from a schedule's free-text type (`"Talk 30 min + 10min Q&A"`,
    /// `"maintrack"`, `"Bits & Bäume - Workshop"`) and, failing that, the title.
    pub fn guess(kind_text: &str, title: &str) -> SessionKind {
        let kind = crate::text::fold(kind_text);
        let title = crate::text::fold(title);
        let has = |s: &str, w: &str| crate::text::contains_word_prefix(s, w);
        let by = |s: &str| {
            if has(s, "keynote") {
                Some(SessionKind::Keynote)
            } else if has(s, "workshop") || has(s, "hands-on") || has(s, "lab") {
                Some(SessionKind::Workshop)
            } else if has(s, "panel") || has(s, "podium") {
                Some(SessionKind::Panel)
            } else if has(s, "lightning") {
                Some(SessionKind::Lightning)
            } else if has(s, "lunch") || has(s, "breakfast") || has(s, "dinner") || has(s, "meal") {
                Some(SessionKind::Meal)
            } else if has(s, "break") || has(s, "pause") || has(s, "coffee") {
                Some(SessionKind::Break)
            } else if has(s, "party") || has(s, "reception") || has(s, "concert") || has(s, "dj") {
                Some(SessionKind::Social)
            } else {
                None
            }
        };
        by(&kind)
            .or_else(|| if title.len() < 40 { by(&title) } else { None })
            .unwrap_or(SessionKind::Talk)
    }

    /// Breaks, meals and socials are not talks an attendee asks about as "what's next".
    pub fn is_programme(self) -> bool {
        !matches!(
            self,
            SessionKind::Break | SessionKind::Meal | SessionKind::Social
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SessionKind::Talk => "talk",
            SessionKind::Keynote => "keynote",
            SessionKind::Workshop => "workshop",
            SessionKind::Panel => "panel",
            SessionKind::Lightning => "lightning",
            SessionKind::Break => "break",
            SessionKind::Meal => "meal",
            SessionKind::Social => "social",
            SessionKind::Other => "other",
        }
    }
}

/// A conference time zone: an IANA zone (`Europe/Berlin`) or, for files that give only UTC offsets,
/// a fixed offset (`+01:00`). Serialised as that name.
#[derive(Clone, Debug, PartialEq)]
pub struct Zone {
    name: String,
    tz: TimeZone,
}

impl Zone {
    /// Parses an IANA name or a `±HH:MM` offset.
    pub fn parse(name: &str) -> Result<Zone, String> {
        let name = name.trim();
        if let Some(offset) = parse_offset(name) {
            return Ok(Zone::fixed(offset));
        }
        match TimeZone::get(name) {
            Ok(tz) => Ok(Zone {
                name: name.to_string(),
                tz,
            }),
            Err(_) => Err(format!(
                "{name:?} is not a known time zone (use an IANA name such as \"Europe/Berlin\" or an offset such as \"+01:00\")"
            )),
        }
    }

    pub fn fixed(offset: Offset) -> Zone {
        let secs = offset.seconds();
        let sign = if secs < 0 { '-' } else { '+' };
        let secs = secs.unsigned_abs();
        Zone {
            name: format!("{sign}{:02}:{:02}", secs / 3600, secs % 3600 / 60),
            tz: TimeZone::fixed(offset),
        }
    }

    pub fn utc() -> Zone {
        Zone {
            name: "UTC".into(),
            tz: TimeZone::UTC,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn tz(&self) -> &TimeZone {
        &self.tz
    }

    /// `ts` as a zoned date-time in this zone.
    pub fn at(&self, ts: Timestamp) -> Zoned {
        ts.to_zoned(self.tz.clone())
    }

    /// `ts` in RFC 3339 with this zone's offset at that instant: `2024-12-27T10:30:00+01:00`.
    pub fn rfc3339(&self, ts: Timestamp) -> String {
        let offset = self.tz.to_offset(ts);
        ts.display_with_offset(offset).to_string()
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl Serialize for Zone {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name)
    }
}

impl<'de> Deserialize<'de> for Zone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Zone, D::Error> {
        let name = String::deserialize(d)?;
        Zone::parse(&name).map_err(serde::de::Error::custom)
    }
}

/// Parses `+01:00`, `-07:00`, `+0100`, `Z`. Returns `None` for anything else.
pub fn parse_offset(s: &str) -> Option<Offset> {
    if s == "Z" || s == "z" {
        return Some(Offset::UTC);
    }
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hours: i32 = digits[..2].parse().ok()?;
    let minutes: i32 = digits[2..].parse().ok()?;
    if hours > 18 || minutes > 59 {
        return None;
    }
    Offset::from_seconds(sign * (hours * 3600 + minutes * 60)).ok()
}

/// Why a set of parts is not a valid agenda.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgendaError {
    Empty,
    DuplicateSession { id: String },
    EndsBeforeStart { id: String },
    EmptyTitle { id: String },
}

impl fmt::Display for AgendaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgendaError::Empty => f.write_str("the schedule contains no sessions"),
            AgendaError::DuplicateSession { id } => {
                write!(f, "two sessions have the same id {id:?}")
            }
            AgendaError::EndsBeforeStart { id } => {
                write!(f, "session {id:?} ends before it starts")
            }
            AgendaError::EmptyTitle { id } => write!(f, "session {id:?} has no title"),
        }
    }
}

impl std::error::Error for AgendaError {}

impl Agenda {
    /// Checks the parts and derives the rest (see the module doc for the invariants). `conference.days`
    /// may be empty: days are then derived from the sessions' local dates. Sessions whose `day` is 0
    /// get the day that contains their start.
    pub fn new(
        mut conference: Conference,
        mut rooms: Vec<Room>,
        mut tracks: Vec<Track>,
        mut speakers: Vec<Speaker>,
        mut sessions: Vec<Session>,
    ) -> Result<Agenda, AgendaError> {
        if sessions.is_empty() {
            return Err(AgendaError::Empty);
        }
        let mut ids = HashSet::new();
        for s in &sessions {
            if !ids.insert(s.id.as_str()) {
                return Err(AgendaError::DuplicateSession { id: s.id.clone() });
            }
            if s.end < s.start {
                return Err(AgendaError::EndsBeforeStart { id: s.id.clone() });
            }
            if s.title.trim().is_empty() {
                return Err(AgendaError::EmptyTitle { id: s.id.clone() });
            }
        }

        // Rooms, tracks and speakers that sessions name but the lists lack are added, in order of
        // first use, so queries never meet a dangling name.
        add_missing(
            &mut rooms,
            sessions.iter().filter_map(|s| s.room.as_deref()),
            |n| Room { name: n.into() },
        );
        add_missing(
            &mut tracks,
            sessions.iter().filter_map(|s| s.track.as_deref()),
            |n| Track { name: n.into() },
        );
        // A track no session is in (FOSDEM declares 70 and uses 62) is noise for every question
        // about tracks, so it is dropped.
        let used: HashSet<&str> = sessions.iter().filter_map(|s| s.track.as_deref()).collect();
        tracks.retain(|t| used.contains(t.name.as_str()));
        let mut known: HashSet<String> = speakers.iter().map(|sp| sp.id.clone()).collect();
        for s in &sessions {
            for id in &s.speakers {
                if known.insert(id.clone()) {
                    speakers.push(Speaker {
                        id: id.clone(),
                        name: id.clone(),
                        bio: None,
                        sessions: Vec::new(),
                    });
                }
            }
        }

        let room_order: HashMap<&str, usize> = rooms
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.as_str(), i))
            .collect();
        let room_rank = |s: &Session| {
            s.room
                .as_deref()
                .and_then(|r| room_order.get(r))
                .copied()
                .unwrap_or(usize::MAX)
        };
        sessions.sort_by(|a, b| {
            (a.start, a.end, room_rank(a), &a.id).cmp(&(b.start, b.end, room_rank(b), &b.id))
        });

        if conference.days.is_empty() {
            conference.days = derive_days(&conference.time_zone, &sessions);
        }
        conference.days.sort_by_key(|d| (d.start, d.index));
        assign_days(&mut conference.days, &conference.time_zone, &mut sessions);

        let mut by_speaker: HashMap<&str, Vec<String>> = HashMap::new();
        for s in &sessions {
            for id in &s.speakers {
                by_speaker.entry(id).or_default().push(s.id.clone());
            }
        }
        for sp in &mut speakers {
            sp.sessions = by_speaker.remove(sp.id.as_str()).unwrap_or_default();
        }

        Ok(Agenda {
            conference,
            rooms,
            tracks,
            speakers,
            sessions,
        })
    }

    /// Re-checks an agenda that was deserialised from the store or a file of our own format.
    pub fn revalidate(self) -> Result<Agenda, AgendaError> {
        Agenda::new(
            self.conference,
            self.rooms,
            self.tracks,
            self.speakers,
            self.sessions,
        )
    }

    pub fn session(&self, id: &str) -> Option<&Session> {
        self.sessions.iter().find(|s| s.id == id)
    }

    pub fn speaker(&self, id: &str) -> Option<&Speaker> {
        self.speakers.iter().find(|s| s.id == id)
    }

    /// A one-line summary for logs and the CLI.
    pub fn summary(&self) -> String {
        format!(
            "{}: {} sessions, {} rooms, {} tracks, {} speakers, {} days ({})",
            self.conference.name,
            self.sessions.len(),
            self.rooms.len(),
            self.tracks.len(),
            self.speakers.len(),
            self.conference.days.len(),
            self.conference.time_zone,
        )
    }
}

fn add_missing<'a, T>(
    list: &mut Vec<T>,
    used: impl Iterator<Item = &'a str>,
    make: impl Fn(&str) -> T,
) where
    T: HasName,
{
    let mut seen: HashSet<String> = list.iter().map(|t| t.name().to_string()).collect();
    for name in used {
        if seen.insert(name.to_string()) {
            list.push(make(name));
        }
    }
}

trait HasName {
    fn name(&self) -> &str;
}

impl HasName for Room {
    fn name(&self) -> &str {
        &self.name
    }
}

impl HasName for Track {
    fn name(&self) -> &str {
        &self.name
    }
}

/// One day per local calendar date that has a session starting on it, spanning its sessions.
fn derive_days(zone: &Zone, sessions: &[Session]) -> Vec<Day> {
    let mut by_date: BTreeMap<Date, (Timestamp, Timestamp)> = BTreeMap::new();
    for s in sessions {
        let date = zone.at(s.start).date();
        let span = by_date.entry(date).or_insert((s.start, s.end));
        span.0 = span.0.min(s.start);
        span.1 = span.1.max(s.end);
    }
    by_date
        .into_iter()
        .enumerate()
        .map(|(i, (date, (start, end)))| Day {
            index: i as u32 + 1,
            date,
            start,
            end,
        })
        .collect()
}

/// Gives every session a valid day: its own if the source set one that exists, else the day whose
/// span contains its start, else the day of its local date, else the nearest day before it. Days are
/// widened to cover their sessions.
fn assign_days(days: &mut [Day], zone: &Zone, sessions: &mut [Session]) {
    let known: HashSet<u32> = days.iter().map(|d| d.index).collect();
    for s in sessions.iter_mut() {
        if known.contains(&s.day) {
            continue;
        }
        let date = zone.at(s.start).date();
        let containing = days
            .iter()
            .find(|d| d.start <= s.start && s.start < d.end)
            .or_else(|| days.iter().find(|d| d.date == date))
            .or_else(|| days.iter().rev().find(|d| d.start <= s.start))
            .or(days.first());
        if let Some(day) = containing {
            s.day = day.index;
        }
    }
    for day in days.iter_mut() {
        for s in sessions.iter().filter(|s| s.day == day.index) {
            day.start = day.start.min(s.start);
            day.end = day.end.max(s.end);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn session(id: &str, start: &str, end: &str) -> Session {
        Session {
            id: id.into(),
            title: format!("Session {id}"),
            abstract_text: String::new(),
            start: ts(start),
            end: ts(end),
            day: 0,
            room: Some("A".into()),
            track: None,
            kind: SessionKind::Talk,
            speakers: vec!["sp".into()],
            tags: vec![],
            language: None,
            url: None,
            stream_url: None,
            recording_url: None,
        }
    }

    fn conference() -> Conference {
        Conference {
            name: "Test".into(),
            acronym: None,
            time_zone: Zone::parse("Europe/Berlin").unwrap(),
            url: None,
            venue: None,
            days: vec![],
        }
    }

    #[test]
    fn new_sorts_derives_and_links() {
        let agenda = Agenda::new(
            conference(),
            vec![],
            vec![],
            vec![],
            vec![
                session("2", "2024-12-28T10:00:00Z", "2024-12-28T11:00:00Z"),
                session("1", "2024-12-27T10:00:00Z", "2024-12-27T11:00:00Z"),
            ],
        )
        .unwrap();
        let ids: Vec<_> = agenda.sessions.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["1", "2"]);
        assert_eq!(agenda.conference.days.len(), 2);
        assert_eq!(agenda.sessions[1].day, 2);
        assert_eq!(agenda.rooms, vec![Room { name: "A".into() }]);
        assert_eq!(agenda.speakers[0].sessions, vec!["1", "2"]);
    }

    #[test]
    fn new_rejects_bad_parts() {
        let cases = [
            (vec![], AgendaError::Empty),
            (
                vec![
                    session("1", "2024-12-27T10:00:00Z", "2024-12-27T11:00:00Z"),
                    session("1", "2024-12-27T12:00:00Z", "2024-12-27T13:00:00Z"),
                ],
                AgendaError::DuplicateSession { id: "1".into() },
            ),
            (
                vec![session("9", "2024-12-27T10:00:00Z", "2024-12-27T09:00:00Z")],
                AgendaError::EndsBeforeStart { id: "9".into() },
            ),
        ];
        for (sessions, expected) in cases {
            let err = Agenda::new(conference(), vec![], vec![], vec![], sessions).unwrap_err();
            assert_eq!(err, expected);
        }
    }

    #[test]
    fn zone_parse_and_format() {
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        assert_eq!(
            berlin.rfc3339(ts("2024-12-27T09:30:00Z")),
            "2024-12-27T10:30:00+01:00"
        );
        let fixed = Zone::parse("+01:00").unwrap();
        assert_eq!(fixed.name(), "+01:00");
        assert_eq!(
            fixed.rfc3339(ts("2020-12-27T10:30:00Z")),
            "2020-12-27T11:30:00+01:00"
        );
        assert!(Zone::parse("Mars/Olympus").is_err());
        assert_eq!(parse_offset("-07:00").unwrap().seconds(), -7 * 3600);
        assert_eq!(parse_offset("+0530").unwrap().seconds(), 5 * 3600 + 1800);
        assert!(parse_offset("+25:00").is_none());
    }

    #[test]
    fn kind_guess_table() {
        let cases = [
            (
                "Talk 30 min + 10min Q&A",
                "Der faule Admin",
                SessionKind::Talk,
            ),
            ("maintrack", "Welcome to FOSDEM 2026", SessionKind::Talk),
            ("Bits & Bäume - Workshop", "x", SessionKind::Workshop),
            ("Keynote", "x", SessionKind::Keynote),
            ("", "Lunch", SessionKind::Meal),
            ("", "Coffee break", SessionKind::Break),
            ("DJ Set", "x", SessionKind::Social),
            ("Live Concert", "x", SessionKind::Social),
            ("lecture", "Opening Ceremony", SessionKind::Talk),
        ];
        for (kind, title, expected) in cases {
            assert_eq!(
                SessionKind::guess(kind, title),
                expected,
                "{kind:?} {title:?}"
            );
        }
    }
}
