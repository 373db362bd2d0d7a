//! Conversations as data: every file in `fixtures/conversations/` is a transcript that the engine
//! must reproduce exactly, run against the demo conference (placed on 2026-06-09 and 10, Los
//! Angeles time) and the shipped intents.
//!
//! ```text
//! # a comment
//! @ 2026-06-09T10:05        the clock, in conference local time (or RFC 3339); "+ 20m" moves it on
//! > whats next             what the attendee sends
//! < Next up:               the reply, one line per line; no "<" line means no reply at all
//! < 1) 10:30 …
//! ! save_session s02       effects, when the transcript wants them checked (all of them)
//! = assigned               the desk: the attendee's hand-off task is now assigned (or
//!                          "completed", "canceled"); a hand-off effect makes a pending task
//! ```
//!
//! `CONCIERGE_BLESS=1 cargo test --test conversations` rewrites the files with what the engine
//! says now; read the diff before committing it.

use std::path::{Path, PathBuf};

use concierge::agenda::AgendaIndex;
use concierge::conversation::{self, Attendee, Effect, HandOffView, Inbound, Settings};
use concierge::import::FlexTime;
use concierge::intents::Matcher;
use concierge::intents::file::load_dir;
use concierge::routing::TaskStatus;
use jiff::{SignedDuration, Timestamp};

struct World {
    agenda: AgendaIndex,
    matcher: Matcher,
    settings: Settings,
}

fn world() -> World {
    let agenda = concierge::agenda::demo::demo_agenda("2026-06-09".parse().unwrap()).unwrap();
    let defs = load_dir(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("intents")).unwrap();
    let matcher = Matcher::compile(&defs, Some(&agenda)).unwrap();
    let settings = Settings {
        conference: agenda.conference.name.clone(),
        ..Settings::default()
    };
    World {
        agenda: AgendaIndex::new(agenda),
        matcher,
        settings,
    }
}

fn effect_text(e: &Effect) -> String {
    match e {
        Effect::OptOut => "opt_out".into(),
        Effect::OptIn => "opt_in".into(),
        Effect::SaveSession { id } => format!("save_session {id}"),
        Effect::RemoveSession { id } => format!("remove_session {id}"),
        Effect::HandOff { skill, .. } => format!("hand_off {}", skill.as_deref().unwrap_or("any")),
        Effect::Attach { task, text } => format!("attach {task} {text}"),
        Effect::CancelHandOff { task } => format!("cancel_hand_off {task}"),
    }
}

/// Runs a transcript; returns it as the engine would write it.
fn run(world: &World, text: &str) -> String {
    let zone = &world.agenda.agenda().conference.time_zone;
    let mut out = String::new();
    let mut now: Option<Timestamp> = None;
    let mut attendee = Attendee::default();
    let mut opted_out = false;
    // The desk, as far as the engine sees it: the hand-off task's status (set by "= " lines).
    let mut task_status = TaskStatus::Pending;
    let mut next_task = 1u64;
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if let Some(at) = line.strip_prefix("@ ") {
            now = Some(
                FlexTime::parse(at)
                    .unwrap_or_else(|e| panic!("{e}"))
                    .resolve(zone),
            );
            out.push_str(line);
            out.push('\n');
        } else if let Some(by) = line.strip_prefix("+ ") {
            let minutes: i64 = by.trim_end_matches('m').parse().expect("+ Nm");
            now = now.map(|t| t.checked_add(SignedDuration::from_mins(minutes)).unwrap());
            out.push_str(line);
            out.push('\n');
        } else if let Some(event) = line.strip_prefix("= ") {
            // Desk events: "= assigned", "= completed", "= canceled".
            task_status = match event.trim() {
                "assigned" => TaskStatus::Assigned,
                "completed" => TaskStatus::Completed,
                "canceled" => TaskStatus::Canceled,
                other => panic!("unknown desk event {other:?}"),
            };
            out.push_str(line);
            out.push('\n');
        } else if let Some(message) = line.strip_prefix("> ") {
            // Skip the expected reply and effect lines; they are regenerated.
            while lines
                .peek()
                .is_some_and(|l| l.starts_with("< ") || *l == "<" || l.starts_with("! "))
            {
                lines.next();
            }
            let at = now.expect("set the clock with @ before the first message");
            let c = world.matcher.classify(message);
            let inbound = Inbound {
                text: message,
                at,
                has_media: false,
                opted_out,
                handoff: attendee.handoff.map(|task| HandOffView {
                    task,
                    status: task_status,
                    expert: None,
                }),
                queue: None,
                calendar_url: Some("https://concierge.example/calendar/TOKEN.ics".into()),
            };
            let turn = conversation::turn(
                &attendee,
                &inbound,
                &c,
                &world.agenda,
                &world.matcher,
                &world.settings,
            );
            out.push_str(line);
            out.push('\n');
            for reply in &turn.replies {
                for l in reply.lines() {
                    if l.is_empty() {
                        out.push_str("<\n");
                    } else {
                        out.push_str(&format!("< {l}\n"));
                    }
                }
            }
            for e in &turn.effects {
                match e {
                    Effect::OptOut => opted_out = true,
                    Effect::OptIn => opted_out = false,
                    Effect::HandOff { .. } => {
                        // What the inbox does: a new task, pending.
                        task_status = TaskStatus::Pending;
                    }
                    _ => {}
                }
                out.push_str(&format!("! {}\n", effect_text(e)));
            }
            attendee = turn.attendee;
            if turn
                .effects
                .iter()
                .any(|e| matches!(e, Effect::HandOff { .. }))
            {
                attendee.handoff = Some(next_task);
                next_task += 1;
            }
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

fn transcripts() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/conversations");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_transcript_is_reproduced() {
    let world = world();
    let bless = std::env::var("CONCIERGE_BLESS").is_ok();
    let files = transcripts();
    assert!(
        files.len() >= 8,
        "expected the transcript files in fixtures/conversations"
    );
    let mut failures = Vec::new();
    for file in files {
        let expected = std::fs::read_to_string(&file).unwrap();
        let actual = run(&world, &expected);
        if actual != expected {
            if bless {
                std::fs::write(&file, &actual).unwrap();
            } else {
                failures.push(format!(
                    "{}:\n--- expected\n{expected}\n--- actual\n{actual}",
                    file.display()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_catalog_intent_appears_in_a_transcript() {
    let world = world();
    let mut seen = std::collections::BTreeSet::new();
    for file in transcripts() {
        for line in std::fs::read_to_string(file).unwrap().lines() {
            if let Some(message) = line.strip_prefix("> ") {
                seen.insert(world.matcher.classify(message).intent.to_string());
            }
        }
    }
    for intent in concierge::intents::CATALOG {
        assert!(seen.contains(*intent), "no transcript covers {intent}");
    }
}
