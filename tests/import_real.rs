//! The four real schedules in ../shared/data/schedules import with the counts in that folder's
//! README, and events picked by hand come out with the right title, local times and room.

mod common;

use common::{import_schedule, ts};
use concierge::agenda::{Agenda, SessionKind};

/// Expected shape of one imported schedule, from ../shared/data/schedules/README.md.
struct Expect {
    file: &'static str,
    conference: &'static str,
    zone: &'static str,
    sessions: usize,
    rooms: usize,
    tracks: usize,
    per_day: &'static [usize],
}

const EXPECTED: &[Expect] = &[
    Expect {
        file: "camp2019.frab.schedule.json",
        conference: "Chaos Communication Camp 2019",
        zone: "Europe/Berlin",
        sessions: 79,
        rooms: 2,
        tracks: 7,
        per_day: &[17, 17, 19, 17, 9],
    },
    Expect {
        file: "rc3-channels-2020.pretalx.schedule.json",
        conference: "rC3 Channels",
        zone: "+01:00",
        sessions: 48,
        rooms: 5,
        tracks: 5,
        per_day: &[12, 15, 14, 7],
    },
    Expect {
        file: "38c3.frab.schedule.xml",
        conference: "38C3",
        zone: "Europe/Berlin",
        sessions: 1007,
        rooms: 72,
        tracks: 7,
        per_day: &[245, 320, 306, 136],
    },
    Expect {
        file: "fosdem-2026.pentabarf.schedule.xml",
        conference: "FOSDEM 2026",
        zone: "Europe/Brussels",
        sessions: 883,
        rooms: 30,
        tracks: 62,
        per_day: &[484, 399],
    },
];

#[test]
fn real_schedules_import_with_the_published_counts() {
    for expect in EXPECTED {
        let agenda = import_schedule(expect.file);
        let f = expect.file;
        assert_eq!(agenda.conference.name, expect.conference, "{f}");
        assert_eq!(agenda.conference.time_zone.name(), expect.zone, "{f}");
        assert_eq!(agenda.sessions.len(), expect.sessions, "{f} sessions");
        assert_eq!(agenda.rooms.len(), expect.rooms, "{f} rooms");
        assert_eq!(agenda.tracks.len(), expect.tracks, "{f} tracks");
        let per_day: Vec<usize> = agenda
            .conference
            .days
            .iter()
            .map(|d| agenda.sessions.iter().filter(|s| s.day == d.index).count())
            .collect();
        assert_eq!(per_day, expect.per_day, "{f} sessions per day");
    }
}

/// Finds a session by id and checks its title, local start and end (with offset) and room.
fn check(agenda: &Agenda, id: &str, title: &str, start: &str, end: &str, room: &str, day: u32) {
    let s = agenda
        .session(id)
        .unwrap_or_else(|| panic!("no session {id}"));
    let zone = &agenda.conference.time_zone;
    assert_eq!(s.title, title, "{id} title");
    assert_eq!(zone.rfc3339(s.start), start, "{id} start");
    assert_eq!(zone.rfc3339(s.end), end, "{id} end");
    assert_eq!(s.room.as_deref(), Some(room), "{id} room");
    assert_eq!(s.day, day, "{id} day");
}

#[test]
fn hand_picked_events_38c3() {
    let agenda = import_schedule("38c3.frab.schedule.xml");
    check(
        &agenda,
        "2",
        "38C3: Opening Ceremony",
        "2024-12-27T10:30:00+01:00",
        "2024-12-27T11:00:00+01:00",
        "Saal 1",
        1,
    );
    // After midnight, but part of the first schedule day (which ends at 06:00).
    check(
        &agenda,
        "248",
        "Desiring Technology. Über Porno, Abhängigkeit und Fortschritt",
        "2024-12-28T00:15:00+01:00",
        "2024-12-28T00:55:00+01:00",
        "Saal 1",
        1,
    );
    check(
        &agenda,
        "159",
        "Hacker Jeopardy",
        "2024-12-30T00:15:00+01:00",
        "2024-12-30T02:15:00+01:00",
        "Saal 1",
        3,
    );
    let opening = agenda.session("2").unwrap();
    assert_eq!(opening.track.as_deref(), Some("CCC"));
    let speakers: Vec<&str> = opening
        .speakers
        .iter()
        .map(|id| agenda.speaker(id).unwrap().name.as_str())
        .collect();
    assert_eq!(speakers, ["Gabriela Bogk", "Senficon", "Aline Blankertz"]);
}

#[test]
fn after_midnight_events_of_38c3_stay_on_their_schedule_day() {
    let agenda = import_schedule("38c3.frab.schedule.xml");
    let zone = &agenda.conference.time_zone;
    let mut after_midnight = 0;
    for s in &agenda.sessions {
        let day = agenda
            .conference
            .days
            .iter()
            .find(|d| d.index == s.day)
            .unwrap();
        let local_date = zone.at(s.start).date();
        if local_date != day.date {
            after_midnight += 1;
            assert_eq!(local_date, day.date.tomorrow().unwrap(), "{}", s.id);
            assert!(
                zone.at(s.start).hour() < 6,
                "{} starts at {}",
                s.id,
                zone.at(s.start)
            );
        }
        assert!(
            day.start <= s.start && s.start < day.end,
            "{} outside its day",
            s.id
        );
    }
    assert_eq!(after_midnight, 58);
}

#[test]
fn hand_picked_events_fosdem_2026() {
    let agenda = import_schedule("fosdem-2026.pentabarf.schedule.xml");
    check(
        &agenda,
        "8376",
        "Welcome to FOSDEM 2026",
        "2026-01-31T09:30:00+01:00",
        "2026-01-31T09:50:00+01:00",
        "Janson",
        1,
    );
    check(
        &agenda,
        "9174",
        "Open source firmware for high assurance confidential infrastructure",
        "2026-02-01T12:25:00+01:00",
        "2026-02-01T12:45:00+01:00",
        "UD6.215",
        2,
    );
    let s = agenda.session("8376").unwrap();
    // The abstract is HTML in the file and plain text here.
    assert_eq!(s.abstract_text, "FOSDEM welcome and opening talk.");
    assert_eq!(s.track.as_deref(), Some("Main Track"));
    let names: Vec<&str> = agenda
        .session("9174")
        .unwrap()
        .speakers
        .iter()
        .map(|id| agenda.speaker(id).unwrap().name.as_str())
        .collect();
    assert_eq!(names, ["Michał Żygowski", "Piotr Król"]);
    assert!(
        agenda
            .rooms
            .iter()
            .any(|r| r.name == "K.1.105 (La Fontaine)")
    );
}

#[test]
fn hand_picked_events_camp2019_and_rc3() {
    let camp = import_schedule("camp2019.frab.schedule.json");
    check(
        &camp,
        "10344",
        "Achtung, Datenpannen!",
        "2019-08-22T23:00:00+02:00",
        "2019-08-23T00:30:00+02:00",
        "Meitner",
        2,
    );
    assert_eq!(
        camp.rooms
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        ["Curie", "Meitner"]
    );

    let rc3 = import_schedule("rc3-channels-2020.pretalx.schedule.json");
    check(
        &rc3,
        "144",
        "Still not lovin gentrification",
        "2020-12-28T19:55:00+01:00",
        "2020-12-28T20:35:00+01:00",
        "backspace / franconian.net - Bamberg",
        2,
    );
    // Messy room names survive as written, umlauts included.
    assert!(
        rc3.rooms.iter().any(|r| r.name.contains("Gängeviertel")),
        "{:?}",
        rc3.rooms
    );
    let gluon = rc3.session("15").unwrap();
    assert_eq!(gluon.language.as_deref(), Some("de"));
    assert_eq!(gluon.kind, SessionKind::Talk);
    assert!(
        gluon
            .abstract_text
            .starts_with("Eine wichtige Komponente von Freifunk")
    );
}

#[test]
fn mixed_offsets_in_38c3_are_one_timeline() {
    // Day bounds are written in +00:00 and events in +01:00; both must name the same instants.
    let agenda = import_schedule("38c3.frab.schedule.xml");
    let day1 = &agenda.conference.days[0];
    assert_eq!(day1.start, ts("2024-12-27T09:30:00Z"));
    let first = agenda.sessions.iter().find(|s| s.day == 1).unwrap();
    assert!(first.start >= day1.start);
}

#[test]
fn export_then_import_gives_the_same_agenda() {
    for expect in EXPECTED {
        let agenda = import_schedule(expect.file);
        let json = concierge::import::native::export(&agenda).to_string();
        let again =
            concierge::import::import_bytes("export.json", json.as_bytes(), &Default::default())
                .unwrap_or_else(|err| panic!("{}: {err}", expect.file))
                .agenda;
        assert_eq!(again, agenda, "{}", expect.file);
    }
}

#[test]
fn sessionize_view_all() {
    let options = concierge::import::ImportOptions {
        time_zone: Some(concierge::agenda::Zone::parse("Europe/Madrid").unwrap()),
        conference_name: Some("Open Source Comms 2026".into()),
        ..Default::default()
    };
    let imported =
        concierge::import::import_file(&common::fixture("sessionize-sample.json"), &options)
            .unwrap();
    assert_eq!(imported.format, concierge::import::Format::Sessionize);
    let agenda = &imported.agenda;
    assert_eq!(agenda.conference.name, "Open Source Comms 2026");
    // The unscheduled session is left out, and the operator is told.
    assert_eq!(agenda.sessions.len(), 4);
    assert!(
        imported
            .warnings
            .iter()
            .any(|w| w.contains("1 session(s) have no start time"))
    );
    assert!(
        imported
            .warnings
            .iter()
            .any(|w| w.contains("\"404\" has no end time"))
    );

    check(
        agenda,
        "401",
        "Opening Keynote: Ten Years of Open Source Communications",
        "2026-04-14T09:00:00+02:00",
        "2026-04-14T10:00:00+02:00",
        "Hall A",
        1,
    );
    check(
        agenda,
        "402",
        "WebRTC Debugging Workshop",
        "2026-04-14T10:30:00+02:00",
        "2026-04-14T12:00:00+02:00",
        "Lab 2",
        1,
    );
    check(
        agenda,
        "404",
        "Mensajería segura con cifrado de extremo a extremo",
        "2026-04-15T09:30:00+02:00",
        "2026-04-15T10:00:00+02:00",
        "Hall A",
        2,
    );

    let keynote = agenda.session("401").unwrap();
    assert_eq!(keynote.kind, SessionKind::Keynote);
    assert_eq!(keynote.track.as_deref(), Some("Community"));
    assert_eq!(
        keynote.stream_url.as_deref(),
        Some("https://live.example.org/hall-a")
    );
    assert_eq!(
        keynote.abstract_text,
        "Where the community has been, and where it goes next."
    );
    let workshop = agenda.session("402").unwrap();
    assert_eq!(workshop.kind, SessionKind::Workshop);
    assert_eq!(workshop.track.as_deref(), Some("Video"));
    assert!(workshop.tags.contains(&"Advanced".to_string()));
    let names: Vec<&str> = workshop
        .speakers
        .iter()
        .map(|id| agenda.speaker(id).unwrap().name.as_str())
        .collect();
    assert_eq!(names, ["Kofi Asante", "Inés Peña"]);
    assert_eq!(agenda.session("403").unwrap().kind, SessionKind::Meal);
    assert_eq!(
        agenda.session("404").unwrap().recording_url.as_deref(),
        Some("https://recordings.example.org/404")
    );
}
