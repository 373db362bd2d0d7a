//! Agenda queries: what is on at a time, what is next, text search, speakers, time windows.
//!
//! An [`AgendaIndex`] is built once from an [`Agenda`] (when it is loaded or imported) and then only
//! read. Every query is a plain function of the index and its arguments; the time is always passed in,
//! never read from a clock, so queries are deterministic and tested at chosen instants.
//!
//! Semantics at the edges, relied on by the conversation engine:
//! - "now" at `t` means `start <= t < end`: a session ending at 11:00 is not on at 11:00.
//! - "next" at `t` means `start >= t`: a session starting exactly at `t` is next (the attendee can
//!   still walk in), and it is also "now".
//! - Breaks, meals and socials are left out unless a [`Filter`] asks for them.

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};

use super::{Agenda, Day, Session, Speaker};
use crate::text::{contains_word_prefix, fold, words};

/// Position of a room in [`Agenda::rooms`], obtained from [`AgendaIndex::room`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoomId(usize);

/// Position of a track in [`Agenda::tracks`], obtained from [`AgendaIndex::track`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrackId(usize);

/// Which sessions a query considers. The default is every programme session (no breaks or meals).
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub room: Option<RoomId>,
    pub track: Option<TrackId>,
    /// Folded words that must all appear in the session's searchable text (see [`AgendaIndex::search`]).
    pub topic: Option<Vec<String>>,
    /// Only sessions of this kind (a kind that is not programme, such as a meal, includes itself).
    pub kind: Option<super::SessionKind>,
    /// Include breaks, meals and socials.
    pub include_breaks: bool,
}

impl Filter {
    pub fn topic(mut self, text: &str) -> Filter {
        let words = content_words(&fold(text));
        self.topic = (!words.is_empty()).then_some(words);
        self
    }
}

/// A search result: the session and its score (higher is better; see [`AgendaIndex::search`]).
#[derive(Clone, Debug)]
pub struct SearchHit<'a> {
    pub session: &'a Session,
    pub score: u32,
}

/// How much a query word matching a field is worth (see [`AgendaIndex::search`]).
const TITLE: u8 = 8;
const TRACK: u8 = 5;
const TAG: u8 = 5;
const SPEAKER: u8 = 5;
const ROOM: u8 = 3;
const ABSTRACT: u8 = 1;

/// Every folded word of every session's searchable fields, sorted, so the sessions with a word that
/// starts with a query word are one binary search and a short scan away.
#[derive(Debug, Default)]
struct WordIndex {
    /// `(word, session position, field score)`, sorted by word then session.
    entries: Vec<(Box<str>, u32, u8)>,
}

impl WordIndex {
    fn add(&mut self, session: usize, text: &str, score: u8) {
        for word in words(&fold(text)) {
            self.entries.push((word.into(), session as u32, score));
        }
    }

    fn finish(mut self) -> WordIndex {
        self.entries.sort_unstable();
        self.entries
            .dedup_by(|a, b| a.0 == b.0 && a.1 == b.1 && a.2 <= b.2);
        self
    }

    /// For each session, the best field score of `term` as a word prefix (0: no match).
    fn scores(&self, term: &str, sessions: usize) -> Vec<u8> {
        let mut best = vec![0u8; sessions];
        let from = self.entries.partition_point(|(w, _, _)| &**w < term);
        for (_, session, score) in self.entries[from..]
            .iter()
            .take_while(|(w, _, _)| w.starts_with(term))
        {
            let slot = &mut best[*session as usize];
            *slot = (*slot).max(*score);
        }
        best
    }

    /// The sessions matching every term, with their summed scores (0: not all terms match).
    fn all_terms(&self, terms: &[String], sessions: usize) -> Vec<u32> {
        let mut total = vec![0u32; sessions];
        for (k, term) in terms.iter().enumerate() {
            let scores = self.scores(term, sessions);
            for (t, s) in total.iter_mut().zip(scores) {
                *t = if s == 0 || (k > 0 && *t == 0) {
                    0
                } else {
                    *t + u32::from(s)
                };
            }
        }
        total
    }
}

/// An agenda plus the lookup structures its queries need. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct AgendaIndex {
    agenda: Agenda,
    /// `sessions[i].start`, in order, for binary search.
    starts: Vec<Timestamp>,
    /// The longest session, which bounds how far back "now" has to look.
    longest: SignedDuration,
    /// Per room and per track, the positions of their sessions in start order.
    by_room: Vec<Vec<u32>>,
    by_track: Vec<Vec<u32>>,
    room_of: Vec<Option<usize>>,
    track_of: Vec<Option<usize>>,
    words: WordIndex,
    folded_titles: Vec<String>,
    folded_rooms: Vec<String>,
    folded_tracks: Vec<String>,
    folded_speakers: Vec<String>,
    session_pos: HashMap<String, usize>,
    speaker_pos: HashMap<String, usize>,
}

impl AgendaIndex {
    pub fn new(agenda: Agenda) -> AgendaIndex {
        let room_pos: HashMap<&str, usize> = agenda
            .rooms
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.as_str(), i))
            .collect();
        let track_pos: HashMap<&str, usize> = agenda
            .tracks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.as_str(), i))
            .collect();
        let speaker_pos: HashMap<String, usize> = agenda
            .speakers
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.clone(), i))
            .collect();

        let mut by_room = vec![Vec::new(); agenda.rooms.len()];
        let mut by_track = vec![Vec::new(); agenda.tracks.len()];
        let mut room_of = Vec::with_capacity(agenda.sessions.len());
        let mut track_of = Vec::with_capacity(agenda.sessions.len());
        let mut words = WordIndex::default();
        let mut longest = SignedDuration::ZERO;
        for (i, s) in agenda.sessions.iter().enumerate() {
            let room = s.room.as_deref().and_then(|r| room_pos.get(r)).copied();
            let track = s.track.as_deref().and_then(|t| track_pos.get(t)).copied();
            if let Some(r) = room {
                by_room[r].push(i as u32);
            }
            if let Some(t) = track {
                by_track[t].push(i as u32);
            }
            room_of.push(room);
            track_of.push(track);
            longest = longest.max(s.end.duration_since(s.start));
            words.add(i, &s.title, TITLE);
            words.add(i, s.track.as_deref().unwrap_or(""), TRACK);
            for tag in &s.tags {
                words.add(i, tag, TAG);
            }
            for id in &s.speakers {
                if let Some(&p) = speaker_pos.get(id) {
                    words.add(i, &agenda.speakers[p].name, SPEAKER);
                }
            }
            words.add(i, s.room.as_deref().unwrap_or(""), ROOM);
            words.add(i, &s.abstract_text, ABSTRACT);
        }
        AgendaIndex {
            starts: agenda.sessions.iter().map(|s| s.start).collect(),
            longest,
            by_room,
            by_track,
            room_of,
            track_of,
            words: words.finish(),
            folded_titles: agenda.sessions.iter().map(|s| fold(&s.title)).collect(),
            folded_rooms: agenda.rooms.iter().map(|r| fold(&r.name)).collect(),
            folded_tracks: agenda.tracks.iter().map(|t| fold(&t.name)).collect(),
            folded_speakers: agenda.speakers.iter().map(|s| fold(&s.name)).collect(),
            session_pos: agenda
                .sessions
                .iter()
                .enumerate()
                .map(|(i, s)| (s.id.clone(), i))
                .collect(),
            speaker_pos,
            agenda,
        }
    }

    pub fn agenda(&self) -> &Agenda {
        &self.agenda
    }

    pub fn session(&self, id: &str) -> Option<&Session> {
        self.session_pos.get(id).map(|&i| &self.agenda.sessions[i])
    }

    pub fn speaker(&self, id: &str) -> Option<&Speaker> {
        self.speaker_pos.get(id).map(|&i| &self.agenda.speakers[i])
    }

    /// The speakers of a session, in the order the session lists them.
    pub fn speakers_of<'a>(&'a self, session: &'a Session) -> impl Iterator<Item = &'a Speaker> {
        session.speakers.iter().filter_map(|id| self.speaker(id))
    }

    /// Finds a room by name, case- and accent-insensitively: an exact match first, then the only room
    /// whose name contains the words asked for ("henriot" finds "UA2.118 (Henriot)").
    pub fn room(&self, name: &str) -> Option<RoomId> {
        find_named(&self.folded_rooms, name).map(RoomId)
    }

    /// Finds a track by name, like [`AgendaIndex::room`].
    pub fn track(&self, name: &str) -> Option<TrackId> {
        find_named(&self.folded_tracks, name).map(TrackId)
    }

    pub fn room_name(&self, id: RoomId) -> &str {
        &self.agenda.rooms[id.0].name
    }

    pub fn track_name(&self, id: TrackId) -> &str {
        &self.agenda.tracks[id.0].name
    }

    /// Sessions running at `at` (`start <= at < end`), in room order.
    pub fn now(&self, at: Timestamp, filter: &Filter) -> Vec<&Session> {
        let upper = self.starts.partition_point(|&s| s <= at);
        let earliest = at.checked_sub(self.longest).unwrap_or(Timestamp::MIN);
        let lower = self.starts[..upper].partition_point(|&s| s < earliest);
        let resolved = self.resolve(filter);
        let mut on: Vec<usize> = (lower..upper)
            .filter(|&i| self.agenda.sessions[i].end > at && self.matches(i, &resolved))
            .collect();
        on.sort_by_key(|&i| (self.room_of[i].unwrap_or(usize::MAX), i));
        on.into_iter().map(|i| &self.agenda.sessions[i]).collect()
    }

    /// Up to `limit` sessions starting at or after `at`, in start order.
    pub fn next(&self, at: Timestamp, filter: &Filter, limit: usize) -> Vec<&Session> {
        self.candidates_from(at, filter)
            .take(limit)
            .map(|i| &self.agenda.sessions[i])
            .collect()
    }

    /// The sessions of the next time slot: every matching session that starts at the earliest start
    /// time at or after `at`.
    pub fn next_slot(&self, at: Timestamp, filter: &Filter) -> Vec<&Session> {
        let mut it = self.candidates_from(at, filter).peekable();
        let Some(&first) = it.peek() else {
            return Vec::new();
        };
        let slot = self.starts[first];
        it.take_while(|&i| self.starts[i] == slot)
            .map(|i| &self.agenda.sessions[i])
            .collect()
    }

    /// Sessions starting in `[from, to)`, in start order.
    pub fn starting_between(
        &self,
        from: Timestamp,
        to: Timestamp,
        filter: &Filter,
    ) -> Vec<&Session> {
        self.candidates_from(from, filter)
            .take_while(|&i| self.starts[i] < to)
            .map(|i| &self.agenda.sessions[i])
            .collect()
    }

    /// The schedule day with this 1-based index.
    pub fn day(&self, index: u32) -> Option<&Day> {
        self.agenda
            .conference
            .days
            .iter()
            .find(|d| d.index == index)
    }

    /// The schedule day `at` falls in, if any (days that run past midnight count as the earlier day).
    pub fn day_at(&self, at: Timestamp) -> Option<&Day> {
        self.agenda
            .conference
            .days
            .iter()
            .find(|d| d.start <= at && at < d.end)
    }

    /// Full-text search over titles, tracks, tags, speakers, rooms and abstracts, case- and
    /// accent-insensitive. Every content word of the query must match the start of a word somewhere
    /// in the session. Scores, per query word: title 8, track 5, tag 5, speaker 5, room 3, abstract 1
    /// (the best field counts), plus 4 if the whole query appears in the title. Results are sorted by
    /// score, then start. With `after`, only sessions starting at or after it are returned.
    pub fn search(
        &self,
        query: &str,
        after: Option<Timestamp>,
        limit: usize,
    ) -> Vec<SearchHit<'_>> {
        let folded = fold(query);
        let terms = content_words(&folded);
        if terms.is_empty() {
            return Vec::new();
        }
        let phrase = terms.join(" ");
        let first = after.map_or(0, |t| self.starts.partition_point(|&s| s < t));
        let totals = self.words.all_terms(&terms, self.starts.len());
        let mut hits: Vec<(u32, usize)> = totals
            .into_iter()
            .enumerate()
            .skip(first)
            .filter(|&(_, score)| score > 0)
            .map(|(i, score)| {
                let bonus = if terms.len() > 1 && self.folded_titles[i].contains(&phrase) {
                    4
                } else {
                    0
                };
                (score + bonus, i)
            })
            .collect();
        hits.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        hits.into_iter()
            .take(limit)
            .map(|(score, i)| SearchHit {
                session: &self.agenda.sessions[i],
                score,
            })
            .collect()
    }

    /// Speakers whose name matches: an exact (folded) match alone if there is one, else every speaker
    /// whose name contains each query word at the start of a word ("lauf" finds "Dr. Mixæl Swan
    /// Laufer").
    pub fn find_speakers(&self, name: &str) -> Vec<&Speaker> {
        let folded = fold(name);
        let terms: Vec<&str> = words(&folded).collect();
        if terms.is_empty() {
            return Vec::new();
        }
        let wanted = terms.join(" ");
        if let Some(i) = self
            .folded_speakers
            .iter()
            .position(|s| words(s).collect::<Vec<_>>().join(" ") == wanted)
        {
            return vec![&self.agenda.speakers[i]];
        }
        self.folded_speakers
            .iter()
            .enumerate()
            .filter(|(_, s)| terms.iter().all(|t| contains_word_prefix(s, t)))
            .map(|(i, _)| &self.agenda.speakers[i])
            .collect()
    }

    /// Positions of sessions starting at or after `at` that pass `filter`, in start order. Uses the
    /// per-room or per-track lists when the filter names one, so a filtered query does not scan the
    /// whole agenda.
    fn candidates_from<'a>(
        &'a self,
        at: Timestamp,
        filter: &'a Filter,
    ) -> Box<dyn Iterator<Item = usize> + 'a> {
        let resolved = self.resolve(filter);
        let list = match (filter.room, filter.track) {
            (Some(RoomId(r)), _) => Some(&self.by_room[r]),
            (None, Some(TrackId(t))) => Some(&self.by_track[t]),
            (None, None) => None,
        };
        match list {
            Some(list) => {
                let from = list.partition_point(|&i| self.starts[i as usize] < at);
                Box::new(
                    list[from..]
                        .iter()
                        .map(|&i| i as usize)
                        .filter(move |&i| self.matches(i, &resolved)),
                )
            }
            None => {
                let from = self.starts.partition_point(|&s| s < at);
                Box::new((from..self.starts.len()).filter(move |&i| self.matches(i, &resolved)))
            }
        }
    }

    /// Resolves a filter for one query: a topic becomes the set of sessions matching it, worked out
    /// once from the word index instead of per candidate.
    fn resolve<'a>(&self, filter: &'a Filter) -> Resolved<'a> {
        Resolved {
            filter,
            topic: filter
                .topic
                .as_ref()
                .map(|terms| self.words.all_terms(terms, self.starts.len())),
        }
    }

    fn matches(&self, i: usize, resolved: &Resolved) -> bool {
        let filter = resolved.filter;
        let s = &self.agenda.sessions[i];
        (filter.include_breaks || s.kind.is_programme() || filter.kind == Some(s.kind))
            && filter.kind.is_none_or(|k| s.kind == k)
            && filter
                .room
                .is_none_or(|RoomId(r)| self.room_of[i] == Some(r))
            && filter
                .track
                .is_none_or(|TrackId(t)| self.track_of[i] == Some(t))
            && resolved.topic.as_ref().is_none_or(|scores| scores[i] > 0)
    }
}

/// A [`Filter`] ready for one query.
struct Resolved<'a> {
    filter: &'a Filter,
    /// Per session, its topic score (0: does not match the topic).
    topic: Option<Vec<u32>>,
}

/// An exact folded match, else the only name containing every word of `wanted` at word starts.
fn find_named(folded_names: &[String], wanted: &str) -> Option<usize> {
    let wanted = fold(wanted);
    let wanted = wanted.trim();
    if wanted.is_empty() {
        return None;
    }
    if let Some(i) = folded_names.iter().position(|n| n == wanted) {
        return Some(i);
    }
    let terms: Vec<&str> = words(wanted).collect();
    let mut found = folded_names
        .iter()
        .enumerate()
        .filter(|(_, n)| !terms.is_empty() && terms.iter().all(|t| contains_word_prefix(n, t)));
    match (found.next(), found.next()) {
        (Some((i, _)), None) => Some(i),
        _ => None,
    }
}

/// Words that carry no topic in a search ("talks about video" searches for "video"). English, Spanish
/// and German function words and the words people use for a session itself.
const STOP_WORDS: &[&str] = &[
    "a",
    "about",
    "an",
    "and",
    "any",
    "are",
    "at",
    "for",
    "in",
    "is",
    "of",
    "on",
    "or",
    "the",
    "there",
    "to",
    "with",
    "talk",
    "talks",
    "session",
    "sessions",
    "presentation",
    "presentations",
    "de",
    "del",
    "el",
    "en",
    "la",
    "las",
    "los",
    "sobre",
    "un",
    "una",
    "y",
    "charla",
    "charlas",
    "sesion",
    "sesiones",
    "der",
    "die",
    "das",
    "und",
    "uber",
    "vortrag",
    "vortrage",
];

/// The words of a folded query with stop words removed; all of them if nothing else is left.
fn content_words(folded: &str) -> Vec<String> {
    let all: Vec<&str> = words(folded).collect();
    let content: Vec<String> = all
        .iter()
        .filter(|w| !STOP_WORDS.contains(w))
        .map(|w| w.to_string())
        .collect();
    if content.is_empty() {
        all.into_iter().map(str::to_string).collect()
    } else {
        content
    }
}
