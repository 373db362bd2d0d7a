//! The conversion shared by the frab family (frab and pretalx `schedule.json`, frab and Pentabarf
//! `schedule.xml`): both readers turn their syntax into these drafts, and [`build`] turns drafts into
//! an [`Agenda`].
//!
//! What real files do, and how it is handled here:
//! - A schedule day runs past midnight (38C3's end at 06:00): a session keeps the day of the `<day>`
//!   block it is in, whatever its calendar date.
//! - Offsets are mixed within one file (38C3 writes day bounds in `+00:00` and events in `+01:00`):
//!   every time is converted to an instant at once, so offsets never meet.
//! - Files without `time_zone_name` (pretalx): see [`super::choose_zone`].
//! - Events without `<date>` (older frab): the day's date plus `<start>`, moved to the next calendar
//!   date when that falls before the day's start.
//! - Abstracts in HTML (FOSDEM): converted to plain text.

use std::collections::HashMap;

use jiff::civil::{Date, Time};
use jiff::{SignedDuration, Timestamp};

use super::{FlexTime, ImportError, ImportOptions, Place, choose_zone, offset_of};
use crate::agenda::{Agenda, Conference, Day, Room, Session, SessionKind, Speaker, Track};
use crate::text::html_to_text;

/// Conference-level facts from the file.
#[derive(Debug, Default)]
pub struct MetaDraft {
    pub title: String,
    pub acronym: Option<String>,
    pub time_zone_name: Option<String>,
    pub url: Option<String>,
    pub venue: Option<String>,
    /// Rooms in the order the file lists them (declared rooms first, then as met in days).
    pub rooms: Vec<String>,
    /// Tracks declared at the top of the file (FOSDEM), in order.
    pub tracks: Vec<String>,
}

#[derive(Debug)]
pub struct DayDraft {
    pub index: u32,
    pub date: Date,
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
}

#[derive(Debug)]
pub struct PersonDraft {
    pub id: Option<String>,
    pub name: String,
    pub bio: Option<String>,
}

#[derive(Debug)]
pub struct EventDraft {
    /// Index of the day block the event is in.
    pub day: u32,
    pub id: String,
    /// The `date` field, with its original text for the offset.
    pub date: Option<(FlexTime, String)>,
    /// The `start` field, `HH:MM`.
    pub start: Option<String>,
    pub duration_secs: i64,
    pub room: String,
    pub title: String,
    pub subtitle: Option<String>,
    pub track: Option<String>,
    pub kind_text: String,
    pub language: Option<String>,
    pub abstract_html: Option<String>,
    pub description_html: Option<String>,
    pub persons: Vec<PersonDraft>,
    /// `(href, title)` pairs.
    pub links: Vec<(String, String)>,
    pub url: Option<String>,
    /// Where the event is in the file, for errors.
    pub place: Place,
}

/// Builds the agenda from drafts.
pub fn build(
    file: &str,
    meta: MetaDraft,
    days: Vec<DayDraft>,
    events: Vec<EventDraft>,
    options: &ImportOptions,
    warnings: &mut Vec<String>,
) -> Result<Agenda, ImportError> {
    let first_offset = events
        .iter()
        .find_map(|e| e.date.as_ref().and_then(|(_, raw)| offset_of(raw)));
    let zone = choose_zone(
        file,
        meta.time_zone_name.as_deref(),
        options,
        first_offset,
        warnings,
    )?;
    let day_by_index: HashMap<u32, &DayDraft> = days.iter().map(|d| (d.index, d)).collect();

    let mut speakers: Vec<Speaker> = Vec::new();
    let mut speaker_pos: HashMap<String, usize> = HashMap::new();
    let mut seen_ids: HashMap<String, Place> = HashMap::new();
    let mut sessions = Vec::with_capacity(events.len());
    for event in events {
        if let Some(first) = seen_ids.get(&event.id) {
            let first_line = first
                .line
                .map_or(String::new(), |(l, _)| format!(" (line {l})"));
            return Err(ImportError {
                file: file.into(),
                place: Some(event.place),
                message: format!(
                    "event id {:?} is used twice; its first use is earlier{first_line}",
                    event.id
                ),
            });
        }
        let day = day_by_index.get(&event.day).copied();
        let start = match (&event.date, &event.start, day) {
            (Some((date, _)), _, _) => date.resolve(&zone),
            (None, Some(start), Some(day)) => {
                let time = parse_clock(start).map_err(|msg| event_error(file, &event, msg))?;
                let mut ts = FlexTime::Local(day.date.to_datetime(time)).resolve(&zone);
                if day.start.is_some_and(|s| ts < s) {
                    // Before the day began: it is after midnight, on the next calendar date.
                    ts = FlexTime::Local(day.date.tomorrow().unwrap_or(day.date).to_datetime(time))
                        .resolve(&zone);
                }
                ts
            }
            _ => {
                return Err(event_error(
                    file,
                    &event,
                    "the event has neither a date nor a start time within a day".into(),
                ));
            }
        };
        let end = start
            .checked_add(SignedDuration::from_secs(event.duration_secs))
            .map_err(|_| event_error(file, &event, "the event's end is out of range".into()))?;

        let mut speaker_ids = Vec::with_capacity(event.persons.len());
        for person in &event.persons {
            let name = person.name.trim();
            if name.is_empty() {
                continue;
            }
            let id = person
                .id
                .clone()
                .unwrap_or_else(|| format!("name:{}", crate::text::fold(name)));
            match speaker_pos.get(&id) {
                Some(&i) => {
                    if speakers[i].bio.is_none() {
                        speakers[i].bio = person.bio.clone().filter(|b| !b.trim().is_empty());
                    }
                }
                None => {
                    speaker_pos.insert(id.clone(), speakers.len());
                    speakers.push(Speaker {
                        id: id.clone(),
                        name: name.to_string(),
                        bio: person
                            .bio
                            .as_deref()
                            .map(html_to_text)
                            .filter(|b| !b.is_empty()),
                        sessions: Vec::new(),
                    });
                }
            }
            if !speaker_ids.contains(&id) {
                speaker_ids.push(id);
            }
        }

        let mut abstract_text = [&event.abstract_html, &event.description_html]
            .into_iter()
            .flatten()
            .map(|html| html_to_text(html))
            .find(|t| !t.is_empty())
            .unwrap_or_default();
        // The title stays as the schedule prints it; a subtitle leads the abstract, where search
        // still finds it.
        if let Some(sub) = event.subtitle.as_deref().map(str::trim) {
            if !sub.is_empty() && !abstract_text.contains(sub) {
                abstract_text = if abstract_text.is_empty() {
                    sub.to_string()
                } else {
                    format!("{sub}\n\n{abstract_text}")
                };
            }
        }
        let title = event.title.trim().to_string();
        let kind = SessionKind::guess(&event.kind_text, &event.title);
        let mut tags = Vec::new();
        let kind_text = event.kind_text.trim();
        if !kind_text.is_empty() && !kind_text.eq_ignore_ascii_case(kind.as_str()) {
            tags.push(kind_text.to_string());
        }
        let recording_url = event
            .links
            .iter()
            .find(|(href, title)| is_video_link(href, title))
            .map(|(href, _)| href.clone());
        sessions.push(Session {
            id: event.id.clone(),
            title,
            abstract_text,
            start,
            end,
            day: day.map_or(0, |d| d.index),
            room: Some(event.room.trim().to_string()).filter(|r| !r.is_empty()),
            track: event
                .track
                .as_deref()
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_string),
            kind,
            speakers: speaker_ids,
            tags,
            language: event.language.clone().filter(|l| !l.trim().is_empty()),
            url: event.url.clone().filter(|u| !u.trim().is_empty()),
            stream_url: None,
            recording_url,
        });
        seen_ids.insert(event.id, event.place);
    }

    let days = days
        .into_iter()
        .map(|d| {
            let start = d.start.unwrap_or_else(|| {
                FlexTime::Local(d.date.to_datetime(Time::midnight())).resolve(&zone)
            });
            Day {
                index: d.index,
                date: d.date,
                start,
                end: d.end.unwrap_or(start),
            }
        })
        .collect();
    let conference = Conference {
        name: Some(meta.title.trim())
            .filter(|t| !t.is_empty())
            .or(meta.acronym.as_deref())
            .unwrap_or("Conference")
            .to_string(),
        acronym: meta.acronym,
        time_zone: zone,
        url: meta.url,
        venue: meta.venue,
        days,
    };
    let rooms = meta.rooms.into_iter().map(|name| Room { name }).collect();
    let tracks = meta.tracks.into_iter().map(|name| Track { name }).collect();
    Agenda::new(conference, rooms, tracks, speakers, sessions)
        .map_err(|err| ImportError::from_agenda(file, err))
}

fn event_error(file: &str, event: &EventDraft, message: String) -> ImportError {
    ImportError {
        file: file.into(),
        place: Some(event.place.clone()),
        message,
    }
}

/// `HH:MM` or `HH:MM:SS` as a wall-clock time.
fn parse_clock(s: &str) -> Result<Time, String> {
    let secs = super::parse_duration(s)
        .map_err(|_| format!("{s:?} is not a time of day (expected HH:MM)"))?;
    if secs >= 24 * 3600 {
        return Err(format!("{s:?} is not a time of day (expected HH:MM)"));
    }
    Time::new(
        (secs / 3600) as i8,
        (secs % 3600 / 60) as i8,
        (secs % 60) as i8,
        0,
    )
    .map_err(|err| err.to_string())
}

fn is_video_link(href: &str, title: &str) -> bool {
    let href = href.to_ascii_lowercase();
    let title = title.to_ascii_lowercase();
    [".webm", ".mp4", ".m3u8", "media.ccc.de/v/"]
        .iter()
        .any(|ext| href.contains(ext))
        || title.contains("video")
        || title.contains("recording")
}

/// Adds `name` to `list` unless it is there already.
pub fn push_unique(list: &mut Vec<String>, name: &str) {
    let name = name.trim();
    if !name.is_empty() && !list.iter().any(|n| n == name) {
        list.push(name.to_string());
    }
}
