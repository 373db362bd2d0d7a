//! Bad schedule files: every importer refuses them with an error that names the file and the place
//! (line:column and/or field path), and a refused import leaves the stored agenda exactly as it was.

mod common;

use std::process::Command;

use common::{fixture, schedule};
use concierge::import::{self, Format, ImportOptions};

fn read(name: &str) -> String {
    std::fs::read_to_string(schedule(name)).unwrap()
}

/// Imports `text` as file `name` and returns the error's text, which must start with the file name.
fn error_of(name: &str, text: &str, format: Option<Format>) -> String {
    let options = ImportOptions {
        format,
        time_zone: Some(concierge::agenda::Zone::parse("Europe/Berlin").unwrap()),
        ..ImportOptions::default()
    };
    match import::import_bytes(name, text.as_bytes(), &options) {
        Ok(imported) => panic!(
            "{name} imported ({}), expected an error",
            imported.agenda.summary()
        ),
        Err(err) => {
            let text = err.to_string();
            assert!(
                text.starts_with(name),
                "the error must name the file: {text}"
            );
            text
        }
    }
}

/// Replaces the first occurrence of `from` in `text`, which must be there.
fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "test input lacks {from:?}");
    text.replacen(from, to, 1)
}

#[test]
fn every_importer_names_the_place_of_the_error() {
    let camp = read("camp2019.frab.schedule.json");
    let c3 = read("38c3.frab.schedule.xml");
    let fosdem = read("fosdem-2026.pentabarf.schedule.xml");
    let demo = std::fs::read_to_string(fixture("agenda.json")).unwrap();
    let sessionize = std::fs::read_to_string(fixture("sessionize-sample.json")).unwrap();

    // (file name, content, forced format, what the error must contain)
    let cases: Vec<(&str, String, Option<Format>, &str)> = vec![
        ("empty.json", String::new(), None, "empty.json: the file is empty"),
        ("blank.xml", " \n\t\n".into(), None, "blank.xml: the file is empty"),
        ("notes.txt", "hello, this is not a schedule".into(), None, "cannot tell the schedule format"),
        ("other.json", "{\"hello\": [1, 2]}".into(), None, "cannot tell the schedule format"),
        // frab JSON
        ("camp-truncated.json", camp[..camp.len() / 2].to_string(), None, "camp-truncated.json:"),
        (
            "camp-types.json",
            edit(&camp, "\"duration\": \"00:30\"", "\"duration\": 30"),
            None,
            "at schedule.conference.days[0].rooms.Curie[0].duration: invalid type: integer `30`, expected a string",
        ),
        (
            "camp-duration.json",
            edit(&camp, "\"duration\": \"00:30\"", "\"duration\": \"half an hour\""),
            None,
            "at schedule.conference.days[0].rooms.Curie[0].duration: \"half an hour\" is not a duration",
        ),
        (
            "camp-date.json",
            edit(&camp, "\"date\": \"2019-08-21T11:00:00+02:00\"", "\"date\": \"next tuesday\""),
            None,
            "at schedule.conference.days[0].rooms.Curie[0].date: \"next tuesday\" is not a date and time",
        ),
        (
            "camp-nodays.json",
            edit(&camp, "\"days\": [", "\"dayz\": ["),
            None,
            "missing field `days`",
        ),
        // frab XML and FOSDEM
        ("38c3-truncated.xml", c3[..c3.len() / 3].to_string(), None, "38c3-truncated.xml:"),
        (
            "38c3-duration.xml",
            edit(&c3, "<duration>00:30</duration>", "<duration>thirty</duration>"),
            None,
            "38c3-duration.xml:27:17: at /schedule/day[1]/room[Saal 1]/event[2]/duration: \"thirty\" is not a duration",
        ),
        (
            "38c3-date.xml",
            edit(&c3, "<date>2024-12-27T10:30:00+01:00</date>", "<date>27.12.2024 10:30</date>"),
            None,
            "/schedule/day[1]/room[Saal 1]/event[2]/date: \"27.12.2024 10:30\" is not a date and time",
        ),
        (
            "fosdem-notitle.xml",
            edit(&fosdem, "<title>Welcome to FOSDEM 2026</title>", "<title></title>"),
            None,
            "/schedule/day[1]/room[Janson]/event[8376]: the event has no <title>",
        ),
        (
            "fosdem-dupe.xml",
            edit(&fosdem, "id=\"7886\"", "id=\"8376\""),
            None,
            "event id \"8376\" is used twice",
        ),
        (
            "fosdem-badday.xml",
            edit(&fosdem, "date=\"2026-01-31\"", "date=\"Saturday\""),
            None,
            "/schedule/day[1]: date=\"Saturday\" is not a date",
        ),
        ("wrong-root.xml", "<?xml version=\"1.0\"?><html><body/></html>".into(), None, "the root element is <html>, expected <schedule>"),
        ("no-days.xml", "<schedule><conference><title>x</title></conference></schedule>".into(), None, "the schedule has no <day> elements"),
        ("dtd.xml", "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"aaaa\">]><schedule/>".into(), None, "dtd.xml:1:"),
        // Sessionize
        (
            "sessionize-types.json",
            edit(&sessionize, "\"isServiceSession\": false", "\"isServiceSession\": \"no\""),
            None,
            "at sessions[0].isServiceSession: invalid type: string \"no\", expected a boolean",
        ),
        (
            "sessionize-time.json",
            edit(&sessionize, "\"startsAt\": \"2026-04-14T09:00:00\"", "\"startsAt\": \"9am\""),
            None,
            "at sessions[0].startsAt: \"9am\" is not a date and time",
        ),
        ("sessionize-truncated.json", sessionize[..sessionize.len() - 40].to_string(), None, "sessionize-truncated.json:"),
        // concierge's own format
        (
            "demo-typo.json",
            edit(&demo, "\"stream_url\"", "\"stream_ulr\""),
            None,
            "unknown field `stream_ulr`",
        ),
        (
            "demo-speaker.json",
            edit(&demo, "\"speakers\": [\n    \"arjun-mehta\"", "\"speakers\": [\n    \"nobody\""),
            None,
            "speaker \"nobody\" is not in \"speakers\"",
        ),
        (
            "demo-backwards.json",
            edit(&demo, "\"end\": \"2026-06-09T10:00\"", "\"end\": \"2026-06-09T08:00\""),
            None,
            "session \"k1\" ends before it starts",
        ),
        (
            "demo-empty.json",
            "{\"format\":\"concierge-agenda\",\"version\":1,\"conference\":{\"name\":\"x\",\"time_zone\":\"UTC\"},\"sessions\":[]}".into(),
            None,
            "the schedule contains no sessions",
        ),
        (
            "demo-zone.json",
            edit(&demo, "\"America/Los_Angeles\"", "\"Pacific Time\""),
            None,
            "at conference.time_zone: \"Pacific Time\" is not a known time zone",
        ),
        // A format forced onto the wrong file
        ("forced.json", camp.clone(), Some(Format::Sessionize), "missing field `sessions`"),
        ("forced.xml", camp.clone(), Some(Format::FrabXml), "the XML is not well-formed"),
    ];
    for (name, text, format, expected) in cases {
        let err = error_of(name, &text, format);
        assert!(
            err.contains(expected),
            "{name}: expected {expected:?} in:\n{err}"
        );
    }
}

#[test]
fn truncated_files_report_a_line() {
    let camp = read("camp2019.frab.schedule.json");
    let err = error_of("camp.json", &camp[..camp.len() / 2], None);
    let line = err
        .strip_prefix("camp.json:")
        .and_then(|rest| rest.split(':').next())
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or_else(|| panic!("no line number in {err}"));
    assert!(line > 1000, "{err}");
    assert!(err.contains("EOF while parsing"), "{err}");

    let c3 = read("38c3.frab.schedule.xml");
    let err = error_of("38c3.xml", &c3[..c3.len() / 3], None);
    assert!(err.starts_with("38c3.xml:"), "{err}");
    assert!(err.contains("not well-formed"), "{err}");
}

#[test]
fn invalid_utf8_is_refused_with_its_line() {
    let mut bytes = b"{\n\"schedule\": \n\"caf".to_vec();
    bytes.push(0xE9);
    bytes.extend_from_slice(b"\"}");
    let err = import::import_bytes("latin1.json", &bytes, &ImportOptions::default())
        .unwrap_err()
        .to_string();
    assert_eq!(err, "latin1.json:3:1: the file is not valid UTF-8");
}

#[test]
fn sessionize_without_a_time_zone_is_refused() {
    let err = import::import_file(
        &fixture("sessionize-sample.json"),
        &ImportOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("the conference time zone is needed: pass --tz"),
        "{err}"
    );
}

fn concierge(data_dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_concierge"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run concierge")
}

#[test]
fn a_refused_import_leaves_the_stored_agenda_exactly_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let good = schedule("camp2019.frab.schedule.json");
    let out = concierge(&data, &["import", good.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = concierge(&data, &["agenda", "export"]);
    assert!(before.status.success());

    let camp = read("camp2019.frab.schedule.json");
    let bad_files = [
        ("truncated.json", camp[..camp.len() / 2].to_string()),
        (
            "types.json",
            edit(&camp, "\"duration\": \"00:30\"", "\"duration\": 30"),
        ),
        ("empty.json", String::new()),
        ("unknown.json", "{\"hello\": 1}".into()),
        ("broken.xml", "<schedule><day date=\"x\"".into()),
    ];
    for (name, text) in bad_files {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let out = concierge(&data, &["import", path.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(
            stderr.contains(name),
            "{name}: the error must name the file: {stderr}"
        );
        assert!(
            stderr.contains("the stored agenda was not changed"),
            "{stderr}"
        );
        let after = concierge(&data, &["agenda", "export"]);
        assert_eq!(
            after.stdout, before.stdout,
            "{name} changed the stored agenda"
        );
    }

    // The refusals are on record for the operator, newest first.
    let store = concierge::store::Store::open(&data, 8 * 1024 * 1024).unwrap();
    let imports = store.recent_imports(10).unwrap();
    assert_eq!(imports.len(), 6);
    assert!(matches!(
        imports[0].outcome,
        concierge::store::ImportOutcome::Failed { .. }
    ));
    assert!(imports[0].source.ends_with("broken.xml"));
    assert!(matches!(
        imports[5].outcome,
        concierge::store::ImportOutcome::Replaced { sessions: 79, .. }
    ));
}
