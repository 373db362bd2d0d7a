//! The matcher with the shipped intents: a table of cases, the shipped set's own examples, real
//! schedules as entities, and every kind of error an intent file can have, with its place.

mod common;

use std::path::PathBuf;

use concierge::agenda::Agenda;
use concierge::intents::file::{load_dir, parse_files};
use concierge::intents::{CATALOG, Matcher, check};

fn intents_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("intents")
}

fn demo() -> Agenda {
    concierge::agenda::demo::demo_agenda("2026-06-09".parse().unwrap()).unwrap()
}

fn shipped(agenda: &Agenda) -> Matcher {
    let defs = load_dir(&intents_dir()).unwrap_or_else(|errs| panic!("{errs:?}"));
    Matcher::compile(&defs, Some(agenda)).unwrap_or_else(|errs| panic!("{errs:?}"))
}

/// `(message, intent, entity checks as "kind=value")`
fn check_cases(matcher: &Matcher, cases: &[(&str, &str, &[&str])]) {
    for (message, intent, entities) in cases {
        let c = matcher.classify(message);
        assert_eq!(
            &*c.intent,
            *intent,
            "{message:?}: {:#?}",
            matcher.explain(message).explain
        );
        assert!(
            (0.0..=1.0).contains(&c.confidence),
            "{message:?}: {}",
            c.confidence
        );
        for want in *entities {
            let (kind, value) = want.split_once('=').unwrap();
            let got = c
                .entities
                .iter()
                .filter(|e| &*e.kind == kind)
                .map(|e| serde_json::to_value(&e.value).unwrap())
                .collect::<Vec<_>>();
            assert!(
                got.iter()
                    .any(|v| v.as_str() == Some(value) || v.to_string().as_str() == value),
                "{message:?}: no {kind}={value} in {got:?}"
            );
        }
    }
}

#[test]
fn matcher_cases() {
    let matcher = shipped(&demo());
    let cases: &[(&str, &str, &[&str])] = &[
        // Word boundaries: "hi" is not in "this", "end" is not in "attend".
        ("hi", "greeting", &[]),
        ("this", "fallback", &[]),
        ("i want to attend", "fallback", &[]),
        // Typos on long words, none on short ones.
        ("whens the keynot", "session_search", &["kind=keynote"]),
        ("are the seesions recordigns online", "faq_recordings", &[]),
        ("wat", "fallback", &[]),
        // SMS spellings and repeated letters.
        ("nxt talk pls", "next_session", &[]),
        ("whaaaat's nxt", "next_session", &[]),
        ("thx!!!", "thanks", &[]),
        // Entities from the agenda and the operator's lists.
        (
            "whats next in the bay room",
            "next_session",
            &["room=Bay Room"],
        ),
        (
            "next talk about webrtc",
            "next_session",
            &["skill=video", "tag=webrtc"],
        ),
        (
            "can a video expert help me",
            "talk_to_expert",
            &["skill=video"],
        ),
        (
            "who is lucia fernandez",
            "speaker_info",
            &["speaker=Lucía Fernández"],
        ),
        (
            "when does okafor speak",
            "speaker_info",
            &["speaker=David Okafor"],
        ),
        (
            "where is scaling webrtc to 10,000 viewers with an sfu",
            "where_is",
            &["session=s02"],
        ),
        ("Golden Gate Hall", "where_is", &["room=Golden Gate Hall"]),
        ("save 2", "add_to_agenda", &["ordinal=2"]),
        ("that one", "add_to_agenda", &["ordinal=that"]),
        // Time expressions.
        (
            "what's on tomorrow afternoon",
            "session_search",
            &["time={\"kind\":\"part\",\"offset\":1,\"part\":\"afternoon\"}"],
        ),
        (
            "whats next after lunch",
            "next_session",
            &["time={\"kind\":\"after\",\"milestone\":\"lunch\"}"],
        ),
        // Spanish.
        (
            "¿Qué sigue en el Main Stage?",
            "next_session",
            &["room=Main Stage"],
        ),
        (
            "quiero hablar con un experto en mensajería",
            "talk_to_expert",
            &["skill=messaging"],
        ),
        (
            "hay charlas sobre seguridad mañana",
            "session_search",
            &["skill=security"],
        ),
        // Emoji, empty and noise.
        ("👋", "greeting", &[]),
        ("🙏", "thanks", &[]),
        ("🍕", "fallback", &[]),
        ("", "fallback", &[]),
        ("   ", "fallback", &[]),
        ("?!?!", "fallback", &[]),
        // Opt-out only as the whole message.
        ("STOP", "opt_out", &[]),
        ("  stop.  ", "opt_out", &[]),
        ("please stop the music", "fallback", &[]),
        ("cancel my reminder", "fallback", &[]),
        ("HELP", "help", &[]),
        ("Start", "opt_in", &[]),
    ];
    check_cases(&matcher, cases);

    let c = matcher.classify("¿Qué sigue?");
    assert_eq!(c.language, concierge::intents::Lang::Es);
    let c = matcher.classify("what's next");
    assert_eq!(c.language, concierge::intents::Lang::En);
    assert_eq!(c.confidence, 1.0);
}

/// A `keywords.none` word rules its intent out wherever it stands, inside a longer phrase of
/// another intent too, and an explanation names it; without the word the intent wins.
#[test]
fn a_none_keyword_rules_its_intent_out_wherever_it_stands() {
    let text = r#"
[[intent]]
name = "fallback"
response.reply.en = "sorry"

[[intent]]
name = "wifi"
response.reply.en = "The network is concierge-guest."
keywords.any = ["wifi", "trainees"]
keywords.none = ["password reset", "train"]

[[intent]]
name = "reset"
priority = 10
response.reply.en = "Ask at the desk."
phrases.en = ["password reset desk"]
"#;
    let defs = parse_files(&[("f.toml".to_string(), text.to_string())]).unwrap();
    let matcher = Matcher::compile(&defs, None).unwrap();
    assert_eq!(&*matcher.classify("wifi").intent, "wifi");
    assert_eq!(&*matcher.classify("the wifi").intent, "wifi");
    for message in [
        "wifi on the train",
        "wifi password reset",
        // The none phrase sits inside a longer phrase the automaton finds instead.
        "wifi password reset desk",
    ] {
        let explained = matcher.explain(message);
        assert_ne!(&*explained.intent, "wifi", "{message:?}");
        let explain = explained.explain.unwrap();
        assert!(
            explain.ruled_out.iter().any(|(intent, _)| intent == "wifi"),
            "{message:?}: {:?}",
            explain.ruled_out
        );
    }
    let explain = matcher.explain("wifi on the train").explain.unwrap();
    assert_eq!(
        explain.ruled_out,
        [("wifi".to_string(), "train".to_string())]
    );
    let explain = matcher.explain("wifi password reset").explain.unwrap();
    assert_eq!(
        explain.ruled_out,
        [("wifi".to_string(), "password reset".to_string())]
    );
    // A word that only contains a none word does not rule the intent out.
    assert_eq!(&*matcher.classify("wifi trainees").intent, "wifi");
}

/// The language of a message no phrase decided: marker words of each language are counted
/// (some are markers of both), and Spanish punctuation counts for Spanish.
#[test]
fn the_language_is_guessed_from_marker_words() {
    let matcher = shipped(&demo());
    let cases = [
        ("asdf qwerty", concierge::intents::Lang::En, false),
        ("donde esta la sala", concierge::intents::Lang::Es, true),
        ("where is the room", concierge::intents::Lang::En, true),
        ("¿asdf?", concierge::intents::Lang::Es, true),
        // One marker each: a tie, read as English but not known.
        ("para with", concierge::intents::Lang::En, false),
    ];
    for (message, language, known) in cases {
        let c = matcher.classify(message);
        assert_eq!(
            (c.language, c.language_known),
            (language, known),
            "{message:?}"
        );
    }
}

#[test]
fn very_long_input_is_handled() {
    let matcher = shipped(&demo());
    let long = "what's next ".repeat(200);
    assert_eq!(&*matcher.classify(&long).intent, "next_session");
    let noise = "blah ".repeat(400) + "what's next";
    let c = matcher.classify(&noise);
    assert_eq!(
        &*c.intent, "fallback",
        "one phrase in 400 words of noise is not confident"
    );
    let unicode = "🎉".repeat(1600);
    assert_eq!(&*matcher.classify(&unicode).intent, "fallback");
}

#[test]
fn classification_is_deterministic() {
    let agenda = demo();
    let a = shipped(&agenda);
    let b = shipped(&agenda);
    for message in [
        "whats next about video",
        "hola",
        "where is the keynote",
        "save 2",
        "asdf",
    ] {
        let (x, y) = (a.classify(message), b.classify(message));
        assert_eq!(
            serde_json::to_string(&x).unwrap(),
            serde_json::to_string(&y).unwrap()
        );
        assert_eq!(
            serde_json::to_string(&x).unwrap(),
            serde_json::to_string(&a.classify(message)).unwrap()
        );
        // Explaining does not change the answer.
        let explained = a.explain(message);
        assert_eq!(
            (explained.intent, explained.confidence),
            (x.intent, x.confidence)
        );
        assert!(explained.explain.is_some());
    }
}

#[test]
fn the_shipped_set_passes_its_own_check_and_has_the_catalog() {
    let defs = load_dir(&intents_dir()).unwrap();
    for name in CATALOG {
        assert!(
            defs.intent(name).is_some(),
            "the catalog intent {name} is missing"
        );
    }
    let agenda = demo();
    let matcher = Matcher::compile(&defs, Some(&agenda)).unwrap();
    let report = check::run(&defs, &matcher, &agenda.conference.name);
    let long_replies: Vec<_> = report
        .warnings
        .iter()
        .filter(|w| w.message.contains("SMS segments"))
        .collect();
    assert!(long_replies.is_empty(), "{long_replies:#?}");
    assert!(report.passed(), "{report}");
    assert!(
        report
            .intents
            .iter()
            .all(|r| r.name == "fallback" || r.examples >= 5),
        "{report}"
    );
}

#[test]
fn real_schedules_as_entities() {
    let c3 = common::import_schedule("38c3.frab.schedule.xml");
    assert_eq!(c3.rooms.len(), 72);
    let matcher = shipped(&c3);
    assert!(
        matcher.stats().entity_phrases > 1000,
        "{:?}",
        matcher.stats()
    );
    check_cases(
        &matcher,
        &[
            ("whats next in saal 1", "next_session", &["room=Saal 1"]),
            ("where is stage huff", "where_is", &["room=Stage HUFF"]),
            ("hacker jeopardy", "session_search", &["session=159"]),
            (
                "talks about security",
                "session_search",
                &["track=Security"],
            ),
        ],
    );

    let fosdem = common::import_schedule("fosdem-2026.pentabarf.schedule.xml");
    assert_eq!(fosdem.tracks.len(), 62);
    let matcher = shipped(&fosdem);
    check_cases(
        &matcher,
        &[
            ("next talk in the rust devroom", "next_session", &[]),
            ("where is henriot", "where_is", &["room=UA2.118 (Henriot)"]),
            (
                "anything on databases",
                "session_search",
                &["track=Databases"],
            ),
        ],
    );
}

/// Parses one file named `f.toml` holding the shipped fallback plus `extra`, and compiles it.
fn problems(extra: &str) -> Vec<String> {
    let fallback = "[[intent]]\nname = \"fallback\"\nresponse.reply.en = \"sorry\"\n";
    let text = format!("{fallback}{extra}");
    let files = vec![("f.toml".to_string(), text)];
    match parse_files(&files) {
        Err(errs) => errs.iter().map(ToString::to_string).collect(),
        Ok(defs) => match Matcher::compile(&defs, None) {
            Err(errs) => errs.iter().map(ToString::to_string).collect(),
            Ok(_) => vec![],
        },
    }
}

#[test]
fn every_kind_of_file_error_is_reported_with_its_place() {
    let intent = |body: &str| {
        format!("[[intent]]\nname = \"x\"\nresponse.action = \"next_sessions\"\n{body}\n")
    };
    let cases: Vec<(String, &str)> = vec![
        (intent("phrasez.en = [\"a\"]"), "f.toml:7:1: unknown field `phrasez`"),
        (intent("patterns = ['(unclosed']"), "f.toml:7:13: invalid regular expression"),
        (intent("patterns = ['(?P<flavour>x)']"), "f.toml:7:13: capture group \"flavour\" is not an entity kind"),
        (
            format!("{}{}", intent("phrases.en = [\"hello\"]"), intent("phrases.en = [\"bye\"]")),
            "f.toml:9:8: intent \"x\" is defined twice; first at f.toml:5:8",
        ),
        (
            "[[intent]]\nname = \"a\"\nresponse.action = \"help\"\nphrases.en = [\"hi\"]\n".into(),
            "f.toml:6:19: unknown action \"help\"",
        ),
        (
            "[[intent]]\nname = \"a\"\nresponse.action = \"next_sessions\"\nphrases.en = [\"whats next\"]\n[[intent]]\nname = \"b\"\nresponse.action = \"next_sessions\"\nphrases.en = [\"What's next?\"]\n".into(),
            "f.toml:11:15: phrase \"whats next\" is claimed by \"a\" and \"b\" at the same priority (50); first at f.toml:7:15",
        ),
        (
            "[[intent]]\nname = \"a\"\npriority = 60\nresponse.action = \"next_sessions\"\nphrases.en = [\"next\"]\n[[intent]]\nname = \"b\"\nresponse.action = \"next_sessions\"\nphrases.en = [\"next\"]\n".into(),
            "f.toml:10:8: intent \"b\" can never win",
        ),
        (intent(""), "f.toml:5:8: intent \"x\" is empty"),
        (intent("phrases.en = [\"hi\"]\nalone = [\"colour\"]"), "f.toml:8:10: unknown entity kind \"colour\""),
        (
            "[[intent]]\nname = \"x\"\nphrases.en = [\"hi\"]\nresponse.reply.en = \"Hi {name}\"\n".into(),
            "f.toml:7:21: unknown placeholder {name}",
        ),
        (intent("phrases.de = [\"hallo\"]"), "f.toml:7:9: unknown language \"de\""),
        (intent("priority = 500\nphrases.en = [\"hi\"]"), "f.toml:7:12: priority 500 must be between 0 and 100"),
        ("[[intent]\nname = 1".into(), "f.toml:4:10: unclosed array table"),
        ("[[intent]]\nname = \"Bad Name\"\nphrases.en = [\"x\"]\nresponse.action = \"my_agenda\"\n".into(), "f.toml:5:8: intent name \"Bad Name\" must be"),
        ("[[intent]]\nname = \"a\"\nphrases.en = [\"x\"]\n".into(), "f.toml:5:8: intent \"a\" has no response"),
        (intent("phrases.en = [\"!!!\"]"), "f.toml:7:15: phrase \"!!!\" has no words"),
        ("[[entity]]\nname = \"room\"\nvalues.a = [\"b\"]\n".into(), "f.toml:5:8: entity \"room\" is defined twice (or is a built-in entity)"),
        ("[spellings]\nnxt = \"next\"\n[settings]\nthreshold = 2.0\n".into(), "f.toml:6:1: settings.threshold = 2 must be between 0 and 1"),
    ];
    for (text, expected) in cases {
        let got = problems(&text);
        assert!(
            got.iter().any(|p| p.contains(expected)),
            "expected {expected:?} in {got:#?}\nfor:\n{text}"
        );
    }
    // The fallback intent is required.
    let files = vec![(
        "g.toml".to_string(),
        "[[intent]]\nname = \"a\"\nphrases.en = [\"hi\"]\nresponse.reply.en = \"hi\"\n".to_string(),
    )];
    let errs = Matcher::compile(&parse_files(&files).unwrap(), None).unwrap_err();
    assert!(
        errs[0].to_string().contains("no intent named \"fallback\""),
        "{errs:?}"
    );
    // A good file gives no problems.
    assert!(problems(&intent("phrases.en = [\"whats next\"]")).is_empty());
}
