//! Schedule importers: bytes of a schedule file in, a validated [`Agenda`] out.
//!
//! Four formats are understood, detected from the content (or chosen with [`ImportOptions::format`]):
//!
//! | format | module | recognised by |
//! |---|---|---|
//! | concierge agenda JSON | [`native`] | `"format": "concierge-agenda"` |
//! | frab / pretalx `schedule.json` | [`frab_json`] | a top-level `"schedule"` object |
//! | frab / Pentabarf `schedule.xml` (FOSDEM's flavour too) | [`frab_xml`] | a `<schedule>` root element |
//! | Sessionize `view/All` JSON | [`sessionize`] | top-level `"sessions"` and `"speakers"` arrays |
//!
//! The frab family shares its conversion in [`frab`]. Importers are pure: they never touch the store,
//! so a file that fails to import cannot change anything. An error names the file and the place
//! (line and column, and the field path where there is one), see [`ImportError`].

pub mod frab;
pub mod frab_json;
pub mod frab_xml;
pub mod native;
pub mod sessionize;

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use jiff::civil::DateTime;
use jiff::{Timestamp, tz::Disambiguation};
use serde::{Deserialize, Deserializer};

use crate::agenda::{Agenda, AgendaError, Zone};

/// A schedule file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// concierge's own agenda JSON (`fixtures/agenda.json`).
    Native,
    /// frab or pretalx `schedule.json`.
    FrabJson,
    /// frab `schedule.xml`, including FOSDEM's Pentabarf flavour.
    FrabXml,
    /// Sessionize API `view/All` JSON.
    Sessionize,
}

impl Format {
    pub const ALL: [Format; 4] = [
        Format::Native,
        Format::FrabJson,
        Format::FrabXml,
        Format::Sessionize,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::Native => "native",
            Format::FrabJson => "frab-json",
            Format::FrabXml => "frab-xml",
            Format::Sessionize => "sessionize",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Format, String> {
        match s.to_ascii_lowercase().as_str() {
            "native" | "concierge" => Ok(Format::Native),
            "frab-json" | "pretalx" | "pretalx-json" | "json" => Ok(Format::FrabJson),
            "frab-xml" | "pentabarf" | "fosdem" | "xml" => Ok(Format::FrabXml),
            "sessionize" => Ok(Format::Sessionize),
            _ => Err(format!(
                "unknown format {s:?}: expected one of native, frab-json (pretalx), frab-xml (pentabarf), sessionize"
            )),
        }
    }
}

/// How to import.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// Skip detection and read the file as this format.
    pub format: Option<Format>,
    /// The conference time zone for files that do not name one (Sessionize never does; some pretalx
    /// exports give only offsets). A zone named in the file wins.
    pub time_zone: Option<Zone>,
    /// The conference name to use instead of the file's (Sessionize exports have none).
    pub conference_name: Option<String>,
}

/// A successful import.
#[derive(Debug)]
pub struct Imported {
    pub agenda: Agenda,
    pub format: Format,
    /// Things the importer repaired or skipped, in words, for the operator.
    pub warnings: Vec<String>,
}

/// Where in a file an error is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Place {
    /// 1-based line and column, when known.
    pub line: Option<(usize, usize)>,
    /// The byte offset in the file, when the line is not worked out yet: [`import_bytes`] turns it
    /// into `line` before an error leaves this module (counting lines is only paid for on error).
    pub offset: Option<usize>,
    /// The field path (`schedule.conference.days[2].rooms.Saal 1[4].duration`), when known.
    pub path: Option<String>,
}

impl Place {
    pub fn line(line: usize, column: usize) -> Place {
        Place {
            line: Some((line, column)),
            ..Place::default()
        }
    }

    pub fn path(path: impl Into<String>) -> Place {
        Place {
            path: Some(path.into()),
            ..Place::default()
        }
    }

    pub fn offset(offset: usize, path: impl Into<String>) -> Place {
        Place {
            offset: Some(offset),
            path: Some(path.into()),
            ..Place::default()
        }
    }

    /// Works out `line` from `offset` in `text`.
    fn resolve(&mut self, text: &str) {
        if let (None, Some(offset)) = (self.line, self.offset.take()) {
            let before = &text.as_bytes()[..offset.min(text.len())];
            let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
            let line_start = before
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            let column = String::from_utf8_lossy(&before[line_start..])
                .chars()
                .count()
                + 1;
            self.line = Some((line, column));
        }
    }
}

/// Why a file could not be imported. Its message is a sentence an operator can act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportError {
    pub file: String,
    pub place: Option<Place>,
    pub message: String,
}

impl ImportError {
    fn new(file: &str, place: Option<Place>, message: impl Into<String>) -> ImportError {
        ImportError {
            file: file.to_string(),
            place,
            message: message.into(),
        }
    }

    /// An error about the file as a whole.
    pub fn whole(file: &str, message: impl Into<String>) -> ImportError {
        ImportError::new(file, None, message)
    }

    /// An error from reading JSON with serde_path_to_error: the path and the line come from it.
    fn from_json(file: &str, err: serde_path_to_error::Error<serde_json::Error>) -> ImportError {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let line = (inner.line() > 0).then(|| (inner.line(), inner.column()));
        // serde_json appends " at line L column C"; the place says that already.
        let message = inner.to_string();
        let message = match message.rfind(" at line ") {
            Some(i) => message[..i].to_string(),
            None => message,
        };
        let path = (path != "." && !path.is_empty()).then_some(path);
        ImportError::new(
            file,
            Some(Place {
                line,
                offset: None,
                path,
            }),
            message,
        )
    }

    fn from_agenda(file: &str, err: AgendaError) -> ImportError {
        ImportError::whole(file, err.to_string())
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(place) = &self.place {
            if let Some((line, column)) = place.line {
                write!(f, ":{line}:{column}")?;
            }
            if let Some(path) = &place.path {
                write!(f, ": at {path}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ImportError {}

/// Reads and imports a file. The file name in errors is `path` as given.
pub fn import_file(path: &Path, options: &ImportOptions) -> Result<Imported, ImportError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path)
        .map_err(|err| ImportError::whole(&name, format!("cannot read the file: {err}")))?;
    import_bytes(&name, &bytes, options)
}

/// Imports the bytes of a schedule file; `file` names it in errors.
pub fn import_bytes(
    file: &str,
    bytes: &[u8],
    options: &ImportOptions,
) -> Result<Imported, ImportError> {
    let text = std::str::from_utf8(bytes).map_err(|err| {
        let line = bytes[..err.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        ImportError::new(
            file,
            Some(Place::line(line, 1)),
            "the file is not valid UTF-8",
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(ImportError::whole(file, "the file is empty"));
    }
    let format = match options.format {
        Some(format) => format,
        None => detect(file, text)?,
    };
    let mut warnings = Vec::new();
    let result = match format {
        Format::Native => native::import(file, text, options),
        Format::FrabJson => frab_json::import(file, text, options, &mut warnings),
        Format::FrabXml => frab_xml::import(file, text, options, &mut warnings),
        Format::Sessionize => sessionize::import(file, text, options, &mut warnings),
    };
    let mut agenda = result.map_err(|mut err| {
        if let Some(place) = &mut err.place {
            place.resolve(text);
        }
        err
    })?;
    if let Some(name) = options
        .conference_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        agenda.conference.name = name.to_string();
    }
    Ok(Imported {
        agenda,
        format,
        warnings,
    })
}

/// Tells the format from the content. JSON is read once with every value ignored but the top-level
/// keys, which also finds syntax errors (with their line) before any typed parsing.
pub fn detect(file: &str, text: &str) -> Result<Format, ImportError> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('<') {
        return Ok(Format::FrabXml);
    }
    if !trimmed.starts_with('{') {
        return Err(ImportError::whole(file, unknown_format_message()));
    }

    #[derive(Deserialize)]
    struct TopLevel {
        format: Option<serde::de::IgnoredAny>,
        schedule: Option<serde::de::IgnoredAny>,
        sessions: Option<serde::de::IgnoredAny>,
        speakers: Option<serde::de::IgnoredAny>,
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let top: TopLevel = serde_path_to_error::deserialize(&mut de)
        .map_err(|err| ImportError::from_json(file, err))?;
    de.end().map_err(|err| {
        ImportError::new(
            file,
            Some(Place::line(err.line(), err.column())),
            "unexpected text after the end of the JSON document",
        )
    })?;
    match top {
        TopLevel {
            format: Some(_), ..
        } => Ok(Format::Native),
        TopLevel {
            schedule: Some(_), ..
        } => Ok(Format::FrabJson),
        TopLevel {
            sessions: Some(_),
            speakers: Some(_),
            ..
        } => Ok(Format::Sessionize),
        _ => Err(ImportError::whole(file, unknown_format_message())),
    }
}

fn unknown_format_message() -> String {
    "cannot tell the schedule format: expected concierge agenda JSON (\"format\": \"concierge-agenda\"), \
     frab/pretalx schedule.json (a top-level \"schedule\" object), Sessionize view/All JSON \
     (top-level \"sessions\" and \"speakers\"), or frab/Pentabarf schedule.xml (a <schedule> root); \
     pass --format to choose one"
        .to_string()
}

/// Deserialises a JSON document with the field path of any error, and checks nothing follows it.
fn from_json<'a, T: Deserialize<'a>>(file: &str, text: &'a str) -> Result<T, ImportError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut de)
        .map_err(|err| ImportError::from_json(file, err))?;
    Ok(value)
}

/// A time as schedules write it: an instant with an offset (`2019-08-21T11:00:00+02:00`) or a local
/// wall-clock time (`2017-11-02T09:00:00`) read in the conference zone.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FlexTime {
    Instant(Timestamp),
    Local(DateTime),
}

impl FlexTime {
    pub fn parse(s: &str) -> Result<FlexTime, String> {
        let s = s.trim();
        if let Ok(ts) = s.parse::<Timestamp>() {
            return Ok(FlexTime::Instant(ts));
        }
        s.parse::<DateTime>().map(FlexTime::Local).map_err(|_| {
            format!(
                "{s:?} is not a date and time (expected ISO 8601 such as \"2024-12-27T10:30:00+01:00\" or \"2024-12-27T10:30\")"
            )
        })
    }

    /// The instant this names in `zone`. Local times in a DST gap or fold resolve as RFC 5545 says:
    /// the earlier of two, or shifted forward over a gap.
    pub fn resolve(self, zone: &Zone) -> Timestamp {
        match self {
            FlexTime::Instant(ts) => ts,
            FlexTime::Local(dt) => zone
                .tz()
                .to_ambiguous_zoned(dt)
                .disambiguate(Disambiguation::Compatible)
                .map(|z| z.timestamp())
                // Compatible disambiguation cannot fail inside jiff's supported range.
                .unwrap_or_else(|_| Timestamp::UNIX_EPOCH),
        }
    }
}

impl<'de> Deserialize<'de> for FlexTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<FlexTime, D::Error> {
        let s = String::deserialize(d)?;
        FlexTime::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A duration as schedules write it: `HH:MM`, `HH:MM:SS`, or `D:HH:MM` for multi-day events, in
/// seconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let parts: Vec<&str> = s.trim().split(':').collect();
    let nums: Option<Vec<i64>> = parts
        .iter()
        .map(|p| {
            (!p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
                .then(|| p.parse().ok())
                .flatten()
        })
        .collect();
    let bad = || format!("{s:?} is not a duration (expected HH:MM or HH:MM:SS)");
    let nums = nums.ok_or_else(bad)?;
    let secs = match nums.as_slice() {
        [h, m] if *m < 60 => h * 3600 + m * 60,
        [h, m, sec] if *m < 60 && *sec < 60 => h * 3600 + m * 60 + sec,
        _ => return Err(bad()),
    };
    Ok(secs)
}

/// An id that a schedule writes as a number or a string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnyId(pub String);

impl<'de> Deserialize<'de> for AnyId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<AnyId, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(i64),
            Str(String),
        }
        match Raw::deserialize(d) {
            Ok(Raw::Int(i)) => Ok(AnyId(i.to_string())),
            Ok(Raw::Str(s)) => Ok(AnyId(s)),
            Err(_) => Err(serde::de::Error::custom(
                "expected an id (a number or a string)",
            )),
        }
    }
}

/// Picks the conference zone: the one the file names, else the one the operator gave, else a fixed
/// zone from the first offset seen in the file, else UTC.
fn choose_zone(
    file: &str,
    named: Option<&str>,
    options: &ImportOptions,
    first_offset: Option<jiff::tz::Offset>,
    warnings: &mut Vec<String>,
) -> Result<Zone, ImportError> {
    if let Some(name) = named.map(str::trim).filter(|n| !n.is_empty()) {
        return Zone::parse(name).map_err(|msg| {
            ImportError::whole(file, format!("the time zone name is not usable: {msg}"))
        });
    }
    if let Some(zone) = &options.time_zone {
        return Ok(zone.clone());
    }
    if let Some(offset) = first_offset {
        let zone = Zone::fixed(offset);
        warnings.push(format!(
            "the file names no time zone; using the fixed offset {zone} from its times (pass --tz for daylight-saving-aware local times)"
        ));
        return Ok(zone);
    }
    warnings.push("the file names no time zone and none was given; using UTC".into());
    Ok(Zone::utc())
}

/// The offset written at the end of an ISO 8601 date-time (`…+01:00`, `…Z`), if any.
fn offset_of(text: &str) -> Option<jiff::tz::Offset> {
    let text = text.trim();
    if text.ends_with('Z') || text.ends_with('z') {
        return Some(jiff::tz::Offset::UTC);
    }
    let tail = text.get(text.len().checked_sub(6)?..)?;
    crate::agenda::parse_offset(tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let cases = [
            ("00:30", Ok(1800)),
            ("01:00", Ok(3600)),
            ("00:05:00", Ok(300)),
            ("10:15:30", Ok(36930)),
            ("1:30", Ok(5400)),
            ("", Err(())),
            ("00:60", Err(())),
            ("ab:cd", Err(())),
            ("30", Err(())),
            ("-1:00", Err(())),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_duration(input).map_err(|_| ()), expected, "{input:?}");
        }
    }

    #[test]
    fn flex_times() {
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        let cases = [
            ("2024-12-27T10:30:00+01:00", "2024-12-27T09:30:00Z"),
            ("2024-12-27T10:30:00Z", "2024-12-27T10:30:00Z"),
            ("2024-12-27T10:30:00", "2024-12-27T09:30:00Z"),
            ("2024-07-27T10:30", "2024-07-27T08:30:00Z"),
        ];
        for (input, expected) in cases {
            let ts = FlexTime::parse(input).unwrap().resolve(&berlin);
            assert_eq!(ts.to_string(), expected, "{input:?}");
        }
        assert!(FlexTime::parse("tomorrow").is_err());
    }

    #[test]
    fn detection() {
        let cases = [
            ("<?xml version=\"1.0\"?><schedule/>", Some(Format::FrabXml)),
            ("{\"schedule\": {}}", Some(Format::FrabJson)),
            (
                "{\"sessions\": [], \"speakers\": []}",
                Some(Format::Sessionize),
            ),
            ("{\"format\": \"concierge-agenda\"}", Some(Format::Native)),
            ("{\"hello\": 1}", None),
            ("hello", None),
            ("{\"schedule\": ", None),
        ];
        for (input, expected) in cases {
            assert_eq!(detect("f", input).ok(), expected, "{input:?}");
        }
    }

    #[test]
    fn error_display_names_file_and_place() {
        let err = ImportError::new(
            "a.json",
            Some(Place {
                line: Some((3, 14)),
                offset: None,
                path: Some("schedule.conference".into()),
            }),
            "missing field `days`",
        );
        assert_eq!(
            err.to_string(),
            "a.json:3:14: at schedule.conference: missing field `days`"
        );
    }
}
