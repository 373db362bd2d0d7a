//! concierge's own agenda JSON, the format of `fixtures/agenda.json`, written for people to edit.
//!
//! ```json
//! {
//!   "format": "concierge-agenda", "version": 1,
//!   "conference": {"name": "…", "time_zone": "America/Los_Angeles"},
//!   "rooms": ["Main Stage", …], "tracks": ["Video", …],
//!   "speakers": [{"id": "ada", "name": "Ada Lovelace", "bio": "…"}],
//!   "sessions": [{"id": "k1", "title": "…", "start": "2026-06-09T09:00", "end": "2026-06-09T10:00",
//!                 "room": "Main Stage", "track": "Video", "kind": "keynote", "speakers": ["ada"]}]
//! }
//! ```
//!
//! Times may be local (read in the conference zone) or carry an offset. Unknown fields are errors, so
//! a misspelt field name is caught instead of silently ignored. [`export`] writes the same format.

use serde::{Deserialize, Serialize};

use super::{FlexTime, ImportError, ImportOptions, from_json};
use crate::agenda::{Agenda, Conference, Day, Room, Session, SessionKind, Speaker, Track, Zone};

/// The value of the `format` field.
pub const FORMAT_TAG: &str = "concierge-agenda";
/// The version this code reads and writes.
pub const VERSION: u32 = 1;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    format: String,
    version: u32,
    conference: ConferenceJson,
    #[serde(default)]
    rooms: Vec<String>,
    #[serde(default)]
    tracks: Vec<String>,
    /// Optional: schedule days, for days that run past midnight. Derived from dates when absent.
    #[serde(default)]
    days: Vec<DayJson>,
    #[serde(default)]
    speakers: Vec<SpeakerJson>,
    sessions: Vec<SessionJson>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DayJson {
    index: u32,
    date: jiff::civil::Date,
    start: FlexTime,
    end: FlexTime,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConferenceJson {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    acronym: Option<String>,
    time_zone: Zone,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    venue: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpeakerJson {
    id: String,
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bio: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionJson {
    id: String,
    title: String,
    #[serde(default, rename = "abstract")]
    abstract_text: String,
    start: FlexTime,
    end: FlexTime,
    /// The schedule day, when it differs from the start's calendar date.
    #[serde(default)]
    day: Option<u32>,
    #[serde(default)]
    room: Option<String>,
    #[serde(default)]
    track: Option<String>,
    #[serde(default)]
    kind: SessionKind,
    #[serde(default)]
    speakers: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    stream_url: Option<String>,
    #[serde(default)]
    recording_url: Option<String>,
}

pub fn import(file: &str, text: &str, _options: &ImportOptions) -> Result<Agenda, ImportError> {
    let parsed: File = from_json(file, text)?;
    if parsed.format != FORMAT_TAG {
        return Err(ImportError::whole(
            file,
            format!("\"format\" is {:?}, expected {FORMAT_TAG:?}", parsed.format),
        ));
    }
    if parsed.version != VERSION {
        return Err(ImportError::whole(
            file,
            format!(
                "this is version {} of the agenda format; this concierge reads version {VERSION}",
                parsed.version
            ),
        ));
    }
    let zone = parsed.conference.time_zone;
    let speaker_ids: std::collections::HashSet<&str> =
        parsed.speakers.iter().map(|s| s.id.as_str()).collect();
    for (i, s) in parsed.sessions.iter().enumerate() {
        if let Some(missing) = s
            .speakers
            .iter()
            .find(|id| !speaker_ids.contains(id.as_str()))
        {
            return Err(ImportError {
                file: file.into(),
                place: Some(super::Place::path(format!("sessions[{i}].speakers"))),
                message: format!("speaker {missing:?} is not in \"speakers\""),
            });
        }
    }
    let sessions = parsed
        .sessions
        .into_iter()
        .map(|s| Session {
            id: s.id,
            title: s.title,
            abstract_text: s.abstract_text,
            start: s.start.resolve(&zone),
            end: s.end.resolve(&zone),
            day: s.day.unwrap_or(0),
            room: s.room,
            track: s.track,
            kind: s.kind,
            speakers: s.speakers,
            tags: s.tags,
            language: s.language,
            url: s.url,
            stream_url: s.stream_url,
            recording_url: s.recording_url,
        })
        .collect();
    let conference = Conference {
        name: parsed.conference.name,
        acronym: parsed.conference.acronym,
        time_zone: zone.clone(),
        url: parsed.conference.url,
        venue: parsed.conference.venue,
        days: parsed
            .days
            .into_iter()
            .map(|d| Day {
                index: d.index,
                date: d.date,
                start: d.start.resolve(&zone),
                end: d.end.resolve(&zone),
            })
            .collect(),
    };
    Agenda::new(
        conference,
        parsed.rooms.into_iter().map(|name| Room { name }).collect(),
        parsed
            .tracks
            .into_iter()
            .map(|name| Track { name })
            .collect(),
        parsed
            .speakers
            .into_iter()
            .map(|s| Speaker {
                id: s.id,
                name: s.name,
                bio: s.bio,
                sessions: Vec::new(),
            })
            .collect(),
        sessions,
    )
    .map_err(|err| ImportError::from_agenda(file, err))
}

/// Writes an agenda in this format, times in conference local time with their offset, so that
/// importing the output gives the same agenda.
pub fn export(agenda: &Agenda) -> serde_json::Value {
    let zone = &agenda.conference.time_zone;
    let sessions: Vec<serde_json::Value> = agenda
        .sessions
        .iter()
        .map(|s| {
            let mut v = serde_json::json!({
                "id": s.id,
                "title": s.title,
                "start": zone.rfc3339(s.start),
                "end": zone.rfc3339(s.end),
                "kind": s.kind,
                "day": s.day,
            });
            let obj = v.as_object_mut().expect("json! of an object is an object");
            let mut put = |key: &str, value: serde_json::Value| {
                if !value.is_null()
                    && value != serde_json::json!([])
                    && value != serde_json::json!("")
                {
                    obj.insert(key.into(), value);
                }
            };
            put("abstract", s.abstract_text.clone().into());
            put("room", s.room.clone().into());
            put("track", s.track.clone().into());
            put("speakers", s.speakers.clone().into());
            put("tags", s.tags.clone().into());
            put("language", s.language.clone().into());
            put("url", s.url.clone().into());
            put("stream_url", s.stream_url.clone().into());
            put("recording_url", s.recording_url.clone().into());
            v
        })
        .collect();
    serde_json::json!({
        "format": FORMAT_TAG,
        "version": VERSION,
        "conference": ConferenceJson {
            name: agenda.conference.name.clone(),
            acronym: agenda.conference.acronym.clone(),
            time_zone: zone.clone(),
            url: agenda.conference.url.clone(),
            venue: agenda.conference.venue.clone(),
        },
        "days": agenda.conference.days.iter().map(|d| serde_json::json!({
            "index": d.index,
            "date": d.date.to_string(),
            "start": zone.rfc3339(d.start),
            "end": zone.rfc3339(d.end),
        })).collect::<Vec<_>>(),
        "rooms": agenda.rooms.iter().map(|r| &r.name).collect::<Vec<_>>(),
        "tracks": agenda.tracks.iter().map(|t| &t.name).collect::<Vec<_>>(),
        "speakers": agenda.speakers.iter().map(|s| SpeakerJson {
            id: s.id.clone(),
            name: s.name.clone(),
            bio: s.bio.clone(),
        }).collect::<Vec<_>>(),
        "sessions": sessions,
    })
}
