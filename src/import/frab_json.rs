//! frab and pretalx `schedule.json` (the c3voc schema): `schedule.conference.days[].rooms{name:
//! [event]}`. Typed with serde, so a wrong type or a missing field is reported with its field path and
//! line. Unknown fields are ignored: real exports carry many (`answers`, `feedback_url`, ...).

use std::fmt;

use jiff::Timestamp;
use jiff::civil::Date;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::frab::{self, DayDraft, EventDraft, MetaDraft, PersonDraft, push_unique};
use super::{AnyId, FlexTime, ImportError, ImportOptions, Place, from_json, parse_duration};
use crate::agenda::Agenda;

#[derive(Deserialize)]
struct File {
    schedule: Schedule,
}

#[derive(Deserialize)]
struct Schedule {
    #[serde(default)]
    base_url: Option<String>,
    conference: ConferenceJson,
}

#[derive(Deserialize)]
struct ConferenceJson {
    #[serde(default)]
    acronym: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    time_zone_name: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    rooms: Vec<RoomJson>,
    #[serde(default)]
    tracks: Vec<TrackJson>,
    days: Vec<DayJson>,
}

#[derive(Deserialize)]
struct RoomJson {
    name: String,
}

#[derive(Deserialize)]
struct TrackJson {
    name: String,
}

#[derive(Deserialize)]
struct DayJson {
    index: u32,
    date: Date,
    #[serde(default)]
    day_start: Option<Timestamp>,
    #[serde(default)]
    day_end: Option<Timestamp>,
    rooms: Ordered<Vec<EventJson>>,
}

#[derive(Deserialize)]
struct EventJson {
    id: AnyId,
    #[serde(default)]
    guid: Option<String>,
    #[serde(default)]
    date: Option<String>,
    #[serde(default)]
    start: Option<String>,
    duration: Duration,
    #[serde(default)]
    room: Option<String>,
    title: String,
    #[serde(default)]
    subtitle: Option<String>,
    #[serde(default)]
    track: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    language: Option<String>,
    #[serde(default, rename = "abstract")]
    abstract_text: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    persons: Vec<PersonJson>,
    #[serde(default)]
    links: Vec<LinkJson>,
    #[serde(default)]
    url: Option<String>,
}

#[derive(Deserialize)]
struct PersonJson {
    #[serde(default)]
    id: Option<AnyId>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    guid: Option<String>,
    #[serde(default)]
    public_name: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    biography: Option<String>,
}

#[derive(Deserialize)]
struct LinkJson {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    href: Option<String>,
    #[serde(default)]
    title: Option<String>,
}

/// A duration string, checked while parsing so its error carries the field path.
struct Duration(i64);

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s)
            .map(Duration)
            .map_err(serde::de::Error::custom)
    }
}

/// A JSON object read as a list of pairs in file order (frab keys rooms by name, and their order is
/// the order people expect).
struct Ordered<V>(Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Ordered<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Ordered<V>, D::Error> {
        struct OrderedVisitor<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for OrderedVisitor<V> {
            type Value = Ordered<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object keyed by room name")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered<V>, A::Error> {
                let mut pairs = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, V>()? {
                    pairs.push((k, v));
                }
                Ok(Ordered(pairs))
            }
        }
        d.deserialize_map(OrderedVisitor(std::marker::PhantomData))
    }
}

pub fn import(
    file: &str,
    text: &str,
    options: &ImportOptions,
    warnings: &mut Vec<String>,
) -> Result<Agenda, ImportError> {
    let parsed: File = from_json(file, text)?;
    let conf = parsed.schedule.conference;
    let mut meta = MetaDraft {
        title: conf.title.unwrap_or_default(),
        acronym: conf.acronym,
        time_zone_name: conf.time_zone_name,
        url: conf.url.or(parsed.schedule.base_url),
        venue: None,
        rooms: Vec::new(),
        tracks: Vec::new(),
    };
    for room in &conf.rooms {
        push_unique(&mut meta.rooms, &room.name);
    }
    for track in &conf.tracks {
        push_unique(&mut meta.tracks, &track.name);
    }

    let mut days = Vec::with_capacity(conf.days.len());
    let mut events = Vec::new();
    for (day_pos, day) in conf.days.into_iter().enumerate() {
        for (room_name, room_events) in day.rooms.0 {
            push_unique(&mut meta.rooms, &room_name);
            for (event_pos, event) in room_events.into_iter().enumerate() {
                let place = Place::path(format!(
                    "schedule.conference.days[{day_pos}].rooms.{room_name}[{event_pos}]"
                ));
                let date = match event.date {
                    Some(raw) => Some((
                        FlexTime::parse(&raw).map_err(|msg| ImportError {
                            file: file.into(),
                            place: place
                                .path
                                .as_ref()
                                .map(|p| Place::path(format!("{p}.date"))),
                            message: msg,
                        })?,
                        raw,
                    )),
                    None => None,
                };
                let persons = event
                    .persons
                    .into_iter()
                    .map(|p| PersonDraft {
                        id: p.code.or(p.guid).or(p.id.map(|id| id.0)),
                        name: p.public_name.or(p.name).unwrap_or_default(),
                        bio: p.biography,
                    })
                    .collect();
                events.push(EventDraft {
                    day: day.index,
                    id: if event.id.0.is_empty() {
                        event.guid.unwrap_or_default()
                    } else {
                        event.id.0
                    },
                    date,
                    start: event.start,
                    duration_secs: event.duration.0,
                    room: event.room.unwrap_or_else(|| room_name.clone()),
                    title: event.title,
                    subtitle: event.subtitle,
                    track: event.track,
                    kind_text: event.kind.unwrap_or_default(),
                    language: event.language,
                    abstract_html: event.abstract_text,
                    description_html: event.description,
                    persons,
                    links: event
                        .links
                        .into_iter()
                        .filter_map(|l| l.url.or(l.href).map(|u| (u, l.title.unwrap_or_default())))
                        .collect(),
                    url: event.url,
                    place,
                });
            }
        }
        days.push(DayDraft {
            index: day.index,
            date: day.date,
            start: day.day_start,
            end: day.day_end,
        });
    }
    frab::build(file, meta, days, events, options, warnings)
}
