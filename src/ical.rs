//! iCalendar (RFC 5545) for an attendee's saved sessions: the feed behind the link the bot texts.
//! Pure: the agenda, the sessions and the time in, the text out.
//!
//! Times are written in the conference's zone (`DTSTART;TZID=America/Los_Angeles:20260609T103000`)
//! with a `VTIMEZONE` that lists the zone's real transitions around the conference (from the time
//! zone database bundled with jiff), so calendar apps show the right time wherever the phone is. A
//! conference with only a fixed offset gets UTC times (`…Z`) and no `VTIMEZONE`. Lines end with
//! CRLF and are folded at 75 octets on character boundaries; text values are escaped.

use jiff::{SignedDuration, Timestamp};

use crate::agenda::{AgendaIndex, Session};

/// The product identifier in every feed.
const PRODID: &str = "-//concierge//personal agenda//EN";

/// The attendee's saved sessions as a calendar named `name`.
pub fn calendar(agenda: &AgendaIndex, sessions: &[&Session], name: &str, now: Timestamp) -> String {
    let conference = &agenda.agenda().conference;
    let zone = &conference.time_zone;
    let tzid = zone.tz().iana_name().map(str::to_string);
    let mut out = Lines::default();
    out.push("BEGIN:VCALENDAR");
    out.push("VERSION:2.0");
    out.push(&format!("PRODID:{PRODID}"));
    out.push("CALSCALE:GREGORIAN");
    out.push("METHOD:PUBLISH");
    out.push(&format!("X-WR-CALNAME:{}", text(name)));
    if let Some(id) = &tzid {
        out.push(&format!("X-WR-TIMEZONE:{id}"));
        vtimezone(&mut out, agenda, id);
    }
    let domain = uid_domain(conference.url.as_deref());
    for s in sessions {
        out.push("BEGIN:VEVENT");
        out.push(&format!("UID:{}@{domain}", text(&s.id)));
        out.push(&format!("DTSTAMP:{}", utc(now)));
        match &tzid {
            Some(id) => {
                out.push(&format!("DTSTART;TZID={id}:{}", local(agenda, s.start)));
                out.push(&format!("DTEND;TZID={id}:{}", local(agenda, s.end)));
            }
            None => {
                out.push(&format!("DTSTART:{}", utc(s.start)));
                out.push(&format!("DTEND:{}", utc(s.end)));
            }
        }
        out.push(&format!("SUMMARY:{}", text(&s.title)));
        if let Some(room) = &s.room {
            let location = match &conference.venue {
                Some(venue) => format!("{room}, {venue}"),
                None => room.clone(),
            };
            out.push(&format!("LOCATION:{}", text(&location)));
        }
        let mut description = Vec::new();
        let speakers: Vec<&str> = agenda.speakers_of(s).map(|p| p.name.as_str()).collect();
        if !speakers.is_empty() {
            description.push(speakers.join(", "));
        }
        if let Some(track) = &s.track {
            description.push(format!("Track: {track}"));
        }
        if !s.abstract_text.is_empty() {
            description.push(s.abstract_text.chars().take(1000).collect());
        }
        if !description.is_empty() {
            out.push(&format!("DESCRIPTION:{}", text(&description.join("\n\n"))));
        }
        if let Some(url) = s.url.as_deref().filter(|u| is_uri(u)) {
            out.push(&format!("URL:{url}"));
        }
        if let Some(track) = &s.track {
            out.push(&format!("CATEGORIES:{}", text(track)));
        }
        out.push("END:VEVENT");
    }
    out.push("END:VCALENDAR");
    out.0
}

/// The zone's transitions from a year before the conference to a year after, each as a
/// `STANDARD` or `DAYLIGHT` block whose `DTSTART` is the local time (in the offset before) at
/// which it happens; a zone without transitions then gets one `STANDARD` block.
fn vtimezone(out: &mut Lines, agenda: &AgendaIndex, id: &str) {
    let a = agenda.agenda();
    let tz = a.conference.time_zone.tz();
    let first = a
        .sessions
        .first()
        .map_or(Timestamp::UNIX_EPOCH, |s| s.start);
    let last = a.sessions.last().map_or(first, |s| s.end);
    let year = SignedDuration::from_hours(366 * 24);
    let from = first.checked_sub(year).unwrap_or(first);
    let to = last.checked_add(year).unwrap_or(last);
    out.push("BEGIN:VTIMEZONE");
    out.push(&format!("TZID:{id}"));
    let mut before = tz.to_offset(from);
    let mut any = false;
    for t in tz.following(from) {
        if t.timestamp() > to {
            break;
        }
        let after = t.offset();
        if after == before {
            continue;
        }
        let kind = if t.dst().is_dst() {
            "DAYLIGHT"
        } else {
            "STANDARD"
        };
        let onset = t.timestamp().to_zoned(jiff::tz::TimeZone::fixed(before));
        out.push(&format!("BEGIN:{kind}"));
        out.push(&format!("DTSTART:{}", onset.strftime("%Y%m%dT%H%M%S")));
        out.push(&format!("TZOFFSETFROM:{}", offset(before)));
        out.push(&format!("TZOFFSETTO:{}", offset(after)));
        out.push(&format!("TZNAME:{}", text(t.abbreviation())));
        out.push(&format!("END:{kind}"));
        before = after;
        any = true;
    }
    if !any {
        let info = tz.to_offset_info(first);
        out.push("BEGIN:STANDARD");
        out.push("DTSTART:19700101T000000");
        out.push(&format!("TZOFFSETFROM:{}", offset(info.offset())));
        out.push(&format!("TZOFFSETTO:{}", offset(info.offset())));
        out.push(&format!("TZNAME:{}", text(info.abbreviation())));
        out.push("END:STANDARD");
    }
    out.push("END:VTIMEZONE");
}

/// `-0700`, `+0530`.
fn offset(o: jiff::tz::Offset) -> String {
    let secs = o.seconds();
    let sign = if secs < 0 { '-' } else { '+' };
    let secs = secs.unsigned_abs();
    format!("{sign}{:02}{:02}", secs / 3600, secs % 3600 / 60)
}

fn utc(ts: Timestamp) -> String {
    ts.strftime("%Y%m%dT%H%M%SZ").to_string()
}

fn local(agenda: &AgendaIndex, ts: Timestamp) -> String {
    agenda
        .agenda()
        .conference
        .time_zone
        .at(ts)
        .strftime("%Y%m%dT%H%M%S")
        .to_string()
}

/// The right-hand side of UIDs: the conference site's host, else a fixed name.
fn uid_domain(url: Option<&str>) -> String {
    url.and_then(|u| url::Url::parse(u).ok())
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "concierge.invalid".into())
}

/// A URL a calendar app can take: http(s), no spaces or control characters.
fn is_uri(u: &str) -> bool {
    (u.starts_with("https://") || u.starts_with("http://"))
        && !u.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// A TEXT value (RFC 5545 §3.3.11): backslash, semicolon, comma and newlines escaped; other
/// control characters dropped.
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Content lines, CRLF-terminated and folded at 75 octets.
#[derive(Default)]
struct Lines(String);

impl Lines {
    fn push(&mut self, line: &str) {
        let mut width = 0;
        for c in line.chars() {
            let len = c.len_utf8();
            if width + len > 75 {
                self.0.push_str("\r\n ");
                width = 1;
            }
            self.0.push(c);
            width += len;
        }
        self.0.push_str("\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_fold_at_75_octets_without_splitting_characters() {
        let mut l = Lines::default();
        let line = format!("SUMMARY:{}", "é".repeat(60));
        l.push(&line);
        for physical in l.0.split("\r\n").filter(|p| !p.is_empty()) {
            assert!(physical.len() <= 75, "{} octets", physical.len());
        }
        let unfolded = l.0.replace("\r\n ", "");
        assert_eq!(unfolded, format!("{line}\r\n"));
    }

    #[test]
    fn text_values_are_escaped() {
        assert_eq!(text("a, b; c\\d\ne\r"), "a\\, b\\; c\\\\d\\ne");
    }
}
