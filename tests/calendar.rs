//! The calendar feed: the link the bot texts serves the attendee's saved sessions as iCalendar,
//! checked by an independent parser (the `icalendar` crate, whose time zones come from chrono-tz,
//! not from the bundled database concierge uses).

mod common;

use std::path::Path;

use concierge::agenda::AgendaIndex;
use concierge::config::RawConfig;
use concierge::state::AppState;
use icalendar::{CalendarComponent, Component, DatePerhapsTime, EventLike};
use serde_json::{Value, json};

async fn server() -> (String, AppState, tempfile::TempDir) {
    let raw = RawConfig {
        public_url: Some("https://concierge.example.org".into()),
        ..RawConfig::default()
    };
    common::serve(raw, "2026-06-09T17:05:00Z").await
}

async fn say(base: &str, token: &str, id: &str, text: &str) -> Value {
    reqwest::Client::new()
        .post(format!("{base}/chat/messages"))
        .json(&json!({"token": token, "id": id, "text": text}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn start_utc(e: &icalendar::Event) -> chrono::DateTime<chrono::Utc> {
    match e.get_start() {
        Some(DatePerhapsTime::DateTime(dt)) => dt.try_into_utc().expect("a zone chrono-tz knows"),
        other => panic!("not a date-time: {other:?}"),
    }
}

fn to_chrono(ts: jiff::Timestamp) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(ts.as_second(), 0).unwrap()
}

#[tokio::test]
async fn the_texted_link_serves_the_saved_sessions_as_icalendar() {
    let (base, state, _dir) = server().await;
    let token = &common::new_chat(&base).await;
    say(&base, token, "1", "add scaling webrtc to my schedule").await;
    say(&base, token, "2", "save the telehealth video talk").await;
    let reply = say(&base, token, "3", "can I add my agenda to my calendar?").await;
    let text = reply["messages"][1]["text"].as_str().unwrap().to_string();
    let url = text
        .split_whitespace()
        .find(|w| w.starts_with("https://"))
        .unwrap_or_else(|| panic!("no link in {text:?}"));
    let path = url
        .strip_prefix("https://concierge.example.org")
        .expect("under public_url");
    assert!(
        path.starts_with("/calendar/") && path.ends_with(".ics"),
        "{path}"
    );
    // Asking again gives the same link.
    let again = say(&base, token, "4", "calendar").await;
    assert!(again["messages"][1]["text"].as_str().unwrap().contains(url));

    let response = reqwest::get(format!("{base}{path}")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/calendar; charset=utf-8"
    );
    let body = response.text().await.unwrap();
    assert!(body.ends_with("\r\n"));
    for line in body.split("\r\n") {
        assert!(line.len() <= 75, "an unfolded line: {line:?}");
        assert!(!line.contains('\n'), "a bare newline: {line:?}");
    }
    // America/Los_Angeles with its real transitions around June 2026.
    assert!(body.contains("BEGIN:VTIMEZONE\r\nTZID:America/Los_Angeles\r\n"));
    assert!(body.contains("BEGIN:DAYLIGHT\r\nDTSTART:20260308T020000\r\nTZOFFSETFROM:-0800\r\nTZOFFSETTO:-0700\r\nTZNAME:PDT\r\n"), "{body}");
    assert!(body.contains("BEGIN:STANDARD\r\nDTSTART:20261101T020000\r\nTZOFFSETFROM:-0700\r\nTZOFFSETTO:-0800\r\nTZNAME:PST\r\n"), "{body}");

    let calendar: icalendar::Calendar = body.parse().expect("the icalendar crate parses it");
    let events: Vec<&icalendar::Event> = calendar
        .components
        .iter()
        .filter_map(|c| match c {
            CalendarComponent::Event(e) => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(events.len(), 2);
    let agenda = state.agenda();
    let saved = state
        .store
        .attendee(&concierge::http::chat::conversation_key(token).unwrap())
        .unwrap()
        .saved;
    for (event, id) in events.iter().zip(&saved) {
        let s = agenda.session(id).unwrap();
        assert_eq!(event.get_summary(), Some(s.title.as_str()));
        assert_eq!(start_utc(event), to_chrono(s.start), "{}", s.title);
        assert!(
            event
                .get_location()
                .unwrap()
                .starts_with(s.room.as_deref().unwrap())
        );
        assert!(event.get_uid().unwrap().starts_with(&s.id));
    }

    // Unknown and malformed tokens: 404.
    for path in [
        "/calendar/00000000000000000000000000000000.ics",
        "/calendar/nope.ics",
        "/calendar/..%2F..%2Fetc.ics",
    ] {
        let r = reqwest::get(format!("{base}{path}")).await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
}

/// Every session of two real schedules in one feed: titles with commas, semicolons, quotes and
/// non-ASCII come back intact, and every start is the same instant for the other parser.
#[test]
fn real_schedules_survive_a_round_trip() {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/schedules");
    for (file, zone) in [
        ("fosdem-2026.pentabarf.schedule.xml", "Europe/Brussels"),
        ("38c3.frab.schedule.xml", "Europe/Berlin"),
    ] {
        let imported = concierge::import::import_file(
            &shared.join(file),
            &concierge::import::ImportOptions::default(),
        )
        .unwrap();
        let index = AgendaIndex::new(imported.agenda);
        assert_eq!(index.agenda().conference.time_zone.name(), zone);
        let sessions: Vec<_> = index.agenda().sessions.iter().collect();
        let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let text = concierge::ical::calendar(&index, &sessions, "all of it", now);
        let calendar: icalendar::Calendar = text.parse().unwrap();
        let events: Vec<&icalendar::Event> = calendar
            .components
            .iter()
            .filter_map(|c| match c {
                CalendarComponent::Event(e) => Some(e),
                _ => None,
            })
            .collect();
        assert_eq!(events.len(), sessions.len(), "{file}");
        for (event, s) in events.iter().zip(&sessions) {
            assert_eq!(event.get_summary(), Some(s.title.as_str()), "{file}");
            assert_eq!(start_utc(event), to_chrono(s.start), "{file}: {}", s.title);
        }
    }
}
