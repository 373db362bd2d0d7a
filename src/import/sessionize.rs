//! Sessionize API `view/All` JSON: `{sessions, speakers, categories, rooms, questions}`.
//!
//! Sessionize writes local wall-clock times without an offset, so the conference zone must come from
//! the operator ([`ImportOptions::time_zone`], `--tz` or the config's `time_zone`); without one the
//! import is refused rather than guessed. Sessions without a start time (accepted but not yet
//! scheduled) are skipped with a warning. A category named like "Track" gives the session's track, a
//! category like "Format" or "Type" helps tell keynotes and workshops apart, and every category item
//! becomes a tag. Service sessions (`isServiceSession`) are breaks or meals.

use std::collections::HashMap;

use jiff::SignedDuration;
use serde::Deserialize;

use super::{AnyId, FlexTime, ImportError, ImportOptions, from_json};
use crate::agenda::{Agenda, Conference, Room, Session, SessionKind, Speaker, Track};
use crate::text::{fold, html_to_text};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct File {
    sessions: Vec<SessionJson>,
    speakers: Vec<SpeakerJson>,
    #[serde(default)]
    categories: Vec<CategoryJson>,
    #[serde(default)]
    rooms: Vec<RoomJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SessionJson {
    id: AnyId,
    title: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    starts_at: Option<FlexTime>,
    #[serde(default)]
    ends_at: Option<FlexTime>,
    #[serde(default)]
    is_service_session: bool,
    #[serde(default)]
    is_plenum_session: bool,
    #[serde(default)]
    speakers: Vec<AnyId>,
    #[serde(default)]
    category_items: Vec<i64>,
    #[serde(default)]
    room_id: Option<i64>,
    #[serde(default)]
    live_url: Option<String>,
    #[serde(default)]
    recording_url: Option<String>,
    #[serde(default)]
    status: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpeakerJson {
    id: AnyId,
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
    #[serde(default)]
    full_name: Option<String>,
    #[serde(default)]
    bio: Option<String>,
    #[serde(default)]
    tag_line: Option<String>,
}

#[derive(Deserialize)]
struct CategoryJson {
    #[serde(default)]
    title: String,
    #[serde(default)]
    items: Vec<CategoryItemJson>,
}

#[derive(Deserialize)]
struct CategoryItemJson {
    id: i64,
    name: String,
}

#[derive(Deserialize)]
struct RoomJson {
    id: i64,
    name: String,
}

/// What a category means for a session.
#[derive(Clone, Copy, PartialEq)]
enum CategoryRole {
    Track,
    Format,
    Other,
}

/// Sessions without an end get this length, with a warning.
const DEFAULT_LENGTH: SignedDuration = SignedDuration::from_mins(30);

pub fn import(
    file: &str,
    text: &str,
    options: &ImportOptions,
    warnings: &mut Vec<String>,
) -> Result<Agenda, ImportError> {
    let parsed: File = from_json(file, text)?;
    let zone = options.time_zone.clone().ok_or_else(|| {
        ImportError::whole(
            file,
            "Sessionize times carry no UTC offset, so the conference time zone is needed: pass --tz \
             (for example --tz Europe/Berlin) or set time_zone in the config",
        )
    })?;

    let mut items: HashMap<i64, (CategoryRole, String)> = HashMap::new();
    let mut tracks = Vec::new();
    for category in &parsed.categories {
        let title = fold(&category.title);
        let role = if title.contains("track") || title.contains("topic") {
            CategoryRole::Track
        } else if title.contains("format") || title.contains("type") {
            CategoryRole::Format
        } else {
            CategoryRole::Other
        };
        for item in &category.items {
            items.insert(item.id, (role, item.name.trim().to_string()));
            if role == CategoryRole::Track {
                tracks.push(Track {
                    name: item.name.trim().to_string(),
                });
            }
        }
    }
    let rooms_by_id: HashMap<i64, &str> =
        parsed.rooms.iter().map(|r| (r.id, r.name.trim())).collect();

    let mut sessions = Vec::with_capacity(parsed.sessions.len());
    let mut unscheduled = 0;
    for s in parsed.sessions {
        if s.status
            .as_deref()
            .is_some_and(|st| !st.eq_ignore_ascii_case("accepted"))
        {
            continue;
        }
        let Some(starts_at) = s.starts_at else {
            unscheduled += 1;
            continue;
        };
        let start = starts_at.resolve(&zone);
        let end = match s.ends_at {
            Some(end) => end.resolve(&zone),
            None => {
                warnings.push(format!(
                    "session {:?} has no end time; assumed {} minutes",
                    s.id.0,
                    DEFAULT_LENGTH.as_mins()
                ));
                start.checked_add(DEFAULT_LENGTH).unwrap_or(start)
            }
        };
        let mut track = None;
        let mut format_text = String::new();
        let mut tags = Vec::new();
        for item in &s.category_items {
            if let Some((role, name)) = items.get(item) {
                match role {
                    CategoryRole::Track if track.is_none() => track = Some(name.clone()),
                    CategoryRole::Format => format_text.push_str(name),
                    _ => {}
                }
                tags.push(name.clone());
            }
        }
        let mut kind = SessionKind::guess(&format_text, &s.title);
        if s.is_service_session && kind.is_programme() {
            kind = SessionKind::Break;
        }
        if s.is_plenum_session && kind == SessionKind::Talk && fold(&s.title).contains("keynote") {
            kind = SessionKind::Keynote;
        }
        sessions.push(Session {
            id: s.id.0,
            title: s.title.trim().to_string(),
            abstract_text: s
                .description
                .as_deref()
                .map(html_to_text)
                .unwrap_or_default(),
            start,
            end,
            day: 0,
            room: s
                .room_id
                .and_then(|id| rooms_by_id.get(&id))
                .map(|r| r.to_string()),
            track,
            kind,
            speakers: s.speakers.into_iter().map(|id| id.0).collect(),
            tags,
            language: None,
            url: None,
            stream_url: s.live_url.filter(|u| !u.trim().is_empty()),
            recording_url: s.recording_url.filter(|u| !u.trim().is_empty()),
        });
    }
    if unscheduled > 0 {
        warnings.push(format!(
            "{unscheduled} session(s) have no start time yet and were left out"
        ));
    }

    let speakers = parsed
        .speakers
        .into_iter()
        .map(|sp| {
            let joined = [sp.first_name.as_deref(), sp.last_name.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            let name = sp
                .full_name
                .filter(|n| !n.trim().is_empty())
                .unwrap_or(joined);
            let bio = sp
                .bio
                .or(sp.tag_line)
                .map(|b| html_to_text(&b))
                .filter(|b| !b.is_empty());
            Speaker {
                id: sp.id.0,
                name: name.trim().to_string(),
                bio,
                sessions: Vec::new(),
            }
        })
        .collect();
    let conference = Conference {
        name: std::path::Path::new(file)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "Conference".into()),
        acronym: None,
        time_zone: zone,
        url: None,
        venue: None,
        days: Vec::new(),
    };
    let rooms = parsed
        .rooms
        .into_iter()
        .map(|r| Room {
            name: r.name.trim().to_string(),
        })
        .collect();
    Agenda::new(conference, rooms, tracks, speakers, sessions)
        .map_err(|err| ImportError::from_agenda(file, err))
}
