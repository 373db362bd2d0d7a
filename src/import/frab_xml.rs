//! frab `schedule.xml` and FOSDEM's Pentabarf flavour: `<schedule><conference/><day><room><event>`.
//!
//! Read with roxmltree (a read-only DOM that keeps byte positions), so every error names the line and
//! column of the element at fault and an element path such as
//! `/schedule/day[2]/room[Saal 1]/event[316]/duration`. FOSDEM adds a top-level `<tracks>` list,
//! `<venue>`, `<day_change>` and `HH:MM:SS` durations; all are understood.

use jiff::Timestamp;
use jiff::civil::Date;
use roxmltree::{Document, Node, ParsingOptions};

use super::frab::{self, DayDraft, EventDraft, MetaDraft, PersonDraft, push_unique};
use super::{FlexTime, ImportError, ImportOptions, Place, parse_duration};
use crate::agenda::Agenda;

pub fn import(
    file: &str,
    text: &str,
    options: &ImportOptions,
    warnings: &mut Vec<String>,
) -> Result<Agenda, ImportError> {
    let doc = Document::parse_with_options(
        text,
        ParsingOptions {
            allow_dtd: false,
            ..ParsingOptions::default()
        },
    )
    .map_err(|err| {
        let pos = err.pos();
        ImportError {
            file: file.into(),
            place: Some(Place::line(pos.row as usize, pos.col as usize)),
            message: format!("the XML is not well-formed: {err}"),
        }
    })?;
    let reader = Reader { file, doc: &doc };
    reader.read(options, warnings)
}

struct Reader<'a, 'input> {
    file: &'a str,
    doc: &'a Document<'input>,
}

impl<'a, 'input> Reader<'a, 'input> {
    fn read(
        &self,
        options: &ImportOptions,
        warnings: &mut Vec<String>,
    ) -> Result<Agenda, ImportError> {
        let root = self.doc.root_element();
        if root.tag_name().name() != "schedule" {
            return Err(self.error(
                root,
                "/".into(),
                format!(
                    "the root element is <{}>, expected <schedule> (frab or Pentabarf schedule.xml)",
                    root.tag_name().name()
                ),
            ));
        }
        let conference = child(root, "conference").ok_or_else(|| {
            self.error(
                root,
                "/schedule".into(),
                "<schedule> has no <conference> element".into(),
            )
        })?;
        let mut meta = MetaDraft {
            title: text_of(conference, "title").unwrap_or_default(),
            acronym: text_of(conference, "acronym"),
            time_zone_name: text_of(conference, "time_zone_name"),
            url: text_of(conference, "url").or_else(|| text_of(conference, "base_url")),
            venue: text_of(conference, "venue"),
            rooms: Vec::new(),
            tracks: Vec::new(),
        };
        // Tracks: FOSDEM lists them in <schedule><tracks>, c3voc as <conference><track name="…"/>.
        for track in children(root, "tracks").flat_map(|t| children(t, "track")) {
            push_unique(&mut meta.tracks, &node_text(track));
        }
        for track in children(conference, "track") {
            if let Some(name) = track.attribute("name") {
                push_unique(&mut meta.tracks, name);
            }
        }
        for room in children(root, "rooms").flat_map(|r| children(r, "room")) {
            let name = room
                .attribute("name")
                .map(str::to_string)
                .unwrap_or_else(|| node_text(room));
            push_unique(&mut meta.rooms, &name);
        }

        let mut days = Vec::new();
        let mut events = Vec::new();
        for (day_pos, day) in children(root, "day").enumerate() {
            let day_path = format!("/schedule/day[{}]", day_pos + 1);
            let index = match day.attribute("index") {
                Some(raw) => raw.trim().parse::<u32>().map_err(|_| {
                    self.error(
                        day,
                        day_path.clone(),
                        format!("index={raw:?} is not a day number"),
                    )
                })?,
                None => day_pos as u32 + 1,
            };
            let date = self
                .attr_parse::<Date>(day, &day_path, "date", "a date such as 2024-12-27")?
                .ok_or_else(|| {
                    self.error(day, day_path.clone(), "<day> has no date attribute".into())
                })?;
            let start =
                self.attr_parse::<Timestamp>(day, &day_path, "start", "a date-time with offset")?;
            let end =
                self.attr_parse::<Timestamp>(day, &day_path, "end", "a date-time with offset")?;
            days.push(DayDraft {
                index,
                date,
                start,
                end,
            });
            for room in children(day, "room") {
                let room_name = room.attribute("name").unwrap_or("").trim().to_string();
                push_unique(&mut meta.rooms, &room_name);
                let room_path = format!("{day_path}/room[{room_name}]");
                for event in children(room, "event") {
                    events.push(self.event(event, &room_path, index, &room_name)?);
                }
            }
        }
        if days.is_empty() {
            return Err(self.error(
                root,
                "/schedule".into(),
                "the schedule has no <day> elements".into(),
            ));
        }
        frab::build(self.file, meta, days, events, options, warnings)
    }

    fn event(
        &self,
        event: Node,
        room_path: &str,
        day: u32,
        room_name: &str,
    ) -> Result<EventDraft, ImportError> {
        let id = event
            .attribute("id")
            .or_else(|| event.attribute("guid"))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                self.error(
                    event,
                    format!("{room_path}/event"),
                    "<event> has no id attribute".into(),
                )
            })?;
        let path = format!("{room_path}/event[{id}]");
        let title = text_of(event, "title")
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| self.error(event, path.clone(), "the event has no <title>".into()))?;
        let duration_node = child(event, "duration")
            .ok_or_else(|| self.error(event, path.clone(), "the event has no <duration>".into()))?;
        let duration_secs = parse_duration(&node_text(duration_node))
            .map_err(|msg| self.error(duration_node, format!("{path}/duration"), msg))?;
        let date = match child(event, "date") {
            Some(node) if !node_text(node).trim().is_empty() => {
                let raw = node_text(node);
                let parsed = FlexTime::parse(&raw)
                    .map_err(|msg| self.error(node, format!("{path}/date"), msg))?;
                Some((parsed, raw))
            }
            _ => None,
        };
        let persons = children(event, "persons")
            .flat_map(|p| children(p, "person"))
            .map(|p| PersonDraft {
                id: p
                    .attribute("guid")
                    .or_else(|| p.attribute("id"))
                    .map(str::to_string),
                name: node_text(p),
                bio: None,
            })
            .collect();
        let links = children(event, "links")
            .flat_map(|l| children(l, "link"))
            .filter_map(|l| l.attribute("href").map(|h| (h.to_string(), node_text(l))))
            .collect();
        Ok(EventDraft {
            day,
            id,
            date,
            start: text_of(event, "start"),
            duration_secs,
            room: text_of(event, "room").unwrap_or_else(|| room_name.to_string()),
            title,
            subtitle: text_of(event, "subtitle"),
            track: text_of(event, "track"),
            kind_text: text_of(event, "type").unwrap_or_default(),
            language: text_of(event, "language"),
            abstract_html: text_of(event, "abstract"),
            description_html: text_of(event, "description"),
            persons,
            links,
            url: text_of(event, "url"),
            place: self.place(event, path),
        })
    }

    /// Parses an optional attribute, with an error at the element if it is present but malformed.
    fn attr_parse<T: std::str::FromStr>(
        &self,
        node: Node,
        path: &str,
        name: &str,
        expected: &str,
    ) -> Result<Option<T>, ImportError> {
        match node.attribute(name) {
            None => Ok(None),
            Some(raw) => raw.trim().parse::<T>().map(Some).map_err(|_| {
                self.error(
                    node,
                    path.to_string(),
                    format!("{name}={raw:?} is not {expected}"),
                )
            }),
        }
    }

    /// Where `node` is: its byte offset (turned into a line only if an error is reported) and path.
    fn place(&self, node: Node, path: String) -> Place {
        Place::offset(node.range().start, path)
    }

    fn error(&self, node: Node, path: String, message: String) -> ImportError {
        ImportError {
            file: self.file.into(),
            place: Some(self.place(node, path)),
            message,
        }
    }
}

fn child<'a, 'input>(node: Node<'a, 'input>, name: &str) -> Option<Node<'a, 'input>> {
    node.children().find(|c| c.has_tag_name(name))
}

fn children<'a, 'input: 'a>(
    node: Node<'a, 'input>,
    name: &'a str,
) -> impl Iterator<Item = Node<'a, 'input>> + 'a {
    node.children().filter(move |c| c.has_tag_name(name))
}

/// The text of an element, CDATA included, trimmed.
fn node_text(node: Node) -> String {
    let text: String = node
        .descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect();
    text.trim().to_string()
}

fn text_of(node: Node, name: &str) -> Option<String> {
    child(node, name).map(node_text).filter(|t| !t.is_empty())
}
