//! Agenda queries at chosen times, edges included: exactly at a start, during the last session of a
//! day, between days, after the conference; filters, search, speakers and day windows.

mod common;

use common::{fixture, import_schedule, ts};
use concierge::agenda::{AgendaIndex, Filter};
use concierge::import::{self, ImportOptions};

/// The demo fixture as written (2026-06-09 and 10, America/Los_Angeles, UTC-7 in June).
fn demo() -> AgendaIndex {
    let agenda = import::import_file(&fixture("agenda.json"), &ImportOptions::default())
        .unwrap()
        .agenda;
    AgendaIndex::new(agenda)
}

fn ids<'a>(sessions: impl IntoIterator<Item = &'a concierge::agenda::Session>) -> Vec<&'a str> {
    sessions.into_iter().map(|s| s.id.as_str()).collect()
}

const SLOT1_DAY1: &[&str] = &["s01", "s02", "s03", "s04", "s05", "s06", "w1"];

#[test]
fn now_and_next_at_the_edges() {
    let index = demo();
    let all = Filter::default();
    let with_breaks = Filter {
        include_breaks: true,
        ..Filter::default()
    };
    // (time, what is on now, the next slot)
    let cases: &[(&str, &[&str], &[&str])] = &[
        // Before the conference: nothing on, the opening keynote is next.
        ("2026-06-01T12:00:00-07:00", &[], &["k1"]),
        // During the morning break: no programme session is on; the first talks are next.
        ("2026-06-09T10:05:00-07:00", &[], SLOT1_DAY1),
        // Exactly at a start: the sessions starting now are both on and next.
        ("2026-06-09T10:30:00-07:00", SLOT1_DAY1, SLOT1_DAY1),
        // Exactly at an end: the 45-minute talks are over; the workshop runs on.
        (
            "2026-06-09T11:15:00-07:00",
            &["w1"],
            &["s07", "s08", "s09", "s10", "s11", "s12"],
        ),
        // During the last sessions of day 1: next is the day 2 keynote.
        (
            "2026-06-09T17:00:00-07:00",
            &["s31", "s32", "s33", "s34", "s35", "s36", "w3"],
            &["k2"],
        ),
        // Between the days.
        ("2026-06-09T23:00:00-07:00", &[], &["k2"]),
        // During the closing keynote, the last session of all.
        ("2026-06-10T18:00:00-07:00", &["k3"], &[]),
        // After the conference.
        ("2026-06-10T20:00:00-07:00", &[], &[]),
    ];
    for (at, now, next) in cases {
        let at = ts(at);
        assert_eq!(ids(index.now(at, &all)), *now, "now at {at}");
        assert_eq!(ids(index.next_slot(at, &all)), *next, "next slot at {at}");
    }
    // Breaks and meals only when asked for.
    let at = ts("2026-06-09T10:05:00-07:00");
    assert_eq!(ids(index.now(at, &with_breaks)), ["d1-am-break"]);
    assert_eq!(ids(index.next(at, &all, 3)), ["s01", "s02", "s03"]);
    let at = ts("2026-06-09T12:20:00-07:00");
    assert_eq!(ids(index.now(at, &with_breaks)), ["d1-lunch"]);
}

#[test]
fn next_by_room_track_and_topic() {
    let index = demo();
    let at = ts("2026-06-09T10:05:00-07:00");
    let room = |name: &str| Filter {
        room: Some(index.room(name).unwrap_or_else(|| panic!("no room {name}"))),
        ..Filter::default()
    };
    let track = |name: &str| Filter {
        track: Some(
            index
                .track(name)
                .unwrap_or_else(|| panic!("no track {name}")),
        ),
        ..Filter::default()
    };
    assert_eq!(
        ids(index.next(at, &room("Golden Gate Hall"), 2)),
        ["s02", "s08"]
    );
    // Case, accents and partial names.
    assert_eq!(ids(index.next(at, &room("golden gate"), 1)), ["s02"]);
    assert_eq!(ids(index.next(at, &room("PRESIDIO"), 1)), ["w1"]);
    assert_eq!(
        ids(index.next(at, &track("video"), 3)),
        ["s02", "w1", "s08"]
    );
    assert_eq!(
        ids(index.next(at, &track("identity & security"), 1)),
        ["s06"]
    );
    assert_eq!(ids(index.next(at, &track("data ai"), 1)), ["s01"]);
    // A topic searches titles, tags, abstracts and speakers.
    let webrtc = Filter::default().topic("webrtc");
    assert_eq!(ids(index.next(at, &webrtc, 3)), ["s02", "w1", "s08"]);
    let later = ts("2026-06-10T12:00:00-07:00");
    assert_eq!(
        ids(index.next(later, &room("golden gate").topic("webrtc"), 5)),
        ["s50", "s56", "s62"]
    );
    // An ambiguous or unknown name finds nothing rather than guessing.
    assert!(index.room("room").is_none());
    assert!(index.room("ballroom").is_none());
    assert!(index.track("").is_none());
}

#[test]
fn search_is_case_and_accent_insensitive() {
    let index = demo();
    let top = |q: &str| {
        index
            .search(q, None, 3)
            .into_iter()
            .map(|h| h.session.title.as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        top("mensajeria")[0],
        "Mensajería en WhatsApp para Latinoamérica"
    );
    assert_eq!(
        top("MENSAJERÍA")[0],
        "Mensajería en WhatsApp para Latinoamérica"
    );
    assert_eq!(
        top("talks about passkeys"),
        [
            "Passkeys for Real Users",
            "Workshop: Add Passkeys to a Web App"
        ]
    );
    // Speakers count: a talk by Zoë Martin is found as "zoe".
    let zoe = index.search("zoe", None, 10);
    assert!(!zoe.is_empty());
    for hit in zoe {
        assert!(
            index
                .speakers_of(hit.session)
                .any(|sp| sp.name == "Zoë Martin"),
            "{}",
            hit.session.title
        );
    }
    // Every word must match somewhere.
    assert!(index.search("webrtc kubernetes", None, 10).is_empty());
    assert!(index.search("", None, 10).is_empty());
    assert!(index.search("!!! ???", None, 10).is_empty());
    // A title match outranks an abstract match.
    let hits = index.search("recording", None, 10);
    assert_eq!(
        hits[0].session.title,
        "Recording and Composing Video in the Cloud"
    );
    assert!(hits[0].score > hits.last().unwrap().score);
    // Only upcoming sessions when asked.
    let after = ts("2026-06-10T00:00:00-07:00");
    for hit in index.search("webrtc", Some(after), 10) {
        assert!(hit.session.start >= after);
    }
}

#[test]
fn speakers_by_name() {
    let index = demo();
    let names = |q: &str| {
        index
            .find_speakers(q)
            .into_iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(names("Lucía Fernández"), ["Lucía Fernández"]);
    assert_eq!(names("lucia fernandez"), ["Lucía Fernández"]);
    assert_eq!(names("fernandez"), ["Lucía Fernández"]);
    assert_eq!(names("zoe"), ["Zoë Martin"]);
    assert_eq!(names("chloe"), ["Chloé Dubois"]);
    assert_eq!(names("o'brien"), ["James O'Brien"]);
    assert!(names("nobody at all").is_empty());
    let lucia = index.find_speakers("lucia")[0];
    assert_eq!(lucia.sessions, ["s09", "w2", "s57"]);
}

#[test]
fn day_windows() {
    let index = demo();
    let day2 = index.day(2).unwrap();
    assert_eq!(day2.date.to_string(), "2026-06-10");
    let every = Filter {
        include_breaks: true,
        ..Filter::default()
    };
    assert_eq!(
        index.starting_between(day2.start, day2.end, &every).len(),
        45
    );
    assert_eq!(
        index
            .starting_between(day2.start, day2.end, &Filter::default())
            .len(),
        41
    );
    // "Tomorrow morning" on day 1 is a window the caller computes; the query takes any window.
    let morning = index.starting_between(
        ts("2026-06-10T08:00:00-07:00"),
        ts("2026-06-10T12:00:00-07:00"),
        &Filter::default(),
    );
    assert_eq!(morning.len(), 1 + 7 + 6);
    assert_eq!(
        index.day_at(ts("2026-06-09T12:00:00-07:00")).unwrap().index,
        1
    );
    assert!(index.day_at(ts("2026-06-09T23:00:00-07:00")).is_none());
    assert!(index.day(3).is_none());
}

#[test]
fn real_schedule_queries_38c3() {
    let index = AgendaIndex::new(import_schedule("38c3.frab.schedule.xml"));
    // 00:20 on the 28th belongs to schedule day 1, and the late show in Saal 1 is on.
    let at = ts("2024-12-28T00:20:00+01:00");
    assert_eq!(index.day_at(at).unwrap().index, 1);
    let saal1 = Filter {
        room: index.room("Saal 1"),
        ..Filter::default()
    };
    assert_eq!(ids(index.now(at, &saal1)), ["248"]);
    assert_eq!(ids(index.next(at, &saal1, 1)), ["215"]);
    // Umlauts fold: "baume" finds "Bits & Bäume".
    assert!(
        index
            .search("baume", None, 50)
            .iter()
            .any(|h| h.session.title.contains("Bäume"))
    );
    // Between days 4 and the end: nothing.
    assert!(
        index
            .next(ts("2024-12-31T12:00:00+01:00"), &Filter::default(), 5)
            .is_empty()
    );
}

#[test]
fn real_schedule_queries_fosdem() {
    let index = AgendaIndex::new(import_schedule("fosdem-2026.pentabarf.schedule.xml"));
    let room = index.room("henriot").expect("a room named … (Henriot)");
    assert_eq!(index.room_name(room), "UA2.118 (Henriot)");
    let track = index.track("rust").expect("the Rust track");
    let next = index.next(
        ts("2026-02-01T09:00:00+01:00"),
        &Filter {
            track: Some(track),
            ..Filter::default()
        },
        3,
    );
    assert_eq!(next.len(), 3);
    for s in next {
        assert_eq!(s.track.as_deref(), Some(index.track_name(track)));
    }
    assert!(!index.find_speakers("Piotr Król").is_empty());
}
