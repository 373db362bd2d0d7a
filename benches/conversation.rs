//! One conversation turn, end to end in the core: classify the message, run the engine over the
//! demo agenda, render the reply (and page it to two SMS segments). No IO.
//!
//! Run with `cargo bench --bench conversation`. Target and result are in BENCHMARKS.md.

use std::hint::black_box;
use std::path::PathBuf;

use concierge::agenda::AgendaIndex;
use concierge::conversation::{self, Attendee, Inbound, Settings};
use concierge::intents::Matcher;
use concierge::intents::file::load_dir;
use criterion::{Criterion, criterion_group, criterion_main};
use jiff::Timestamp;

const MESSAGES: &[&str] = &[
    "whats next",
    "whats next in the bay room",
    "talks about webrtc",
    "2",
    "where is the keynote",
    "who is maya chen",
    "my agenda",
    "wifi?",
    "que sigue",
    "can a video expert help me",
    "what's the weather",
    "more",
];

fn benches(c: &mut Criterion) {
    let agenda = concierge::agenda::demo::demo_agenda("2026-06-09".parse().unwrap()).unwrap();
    let defs = load_dir(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("intents")).unwrap();
    let matcher = Matcher::compile(&defs, Some(&agenda)).unwrap();
    let settings = Settings {
        conference: agenda.conference.name.clone(),
        ..Settings::default()
    };
    let index = AgendaIndex::new(agenda);
    let at: Timestamp = "2026-06-09T10:05:00-07:00".parse().unwrap();
    // An attendee with a list and a saved session, as mid-conversation.
    let mut attendee = Attendee::default();
    for text in ["whats next", "2"] {
        let c = matcher.classify(text);
        let inbound = Inbound {
            text,
            at,
            has_media: false,
            opted_out: false,
            handoff: None,
            queue: None,
            calendar_url: None,
        };
        attendee =
            conversation::turn(&attendee, &inbound, &c, &index, &matcher, &settings).attendee;
    }
    let mut i = 0;
    c.bench_function(
        "conversation turn (classify + engine + render), demo agenda",
        |b| {
            b.iter(|| {
                i = (i + 1) % MESSAGES.len();
                let text = MESSAGES[i];
                let c = matcher.classify(black_box(text));
                let inbound = Inbound {
                    text,
                    at,
                    has_media: false,
                    opted_out: false,
                    handoff: None,
                    queue: None,
                    calendar_url: None,
                };
                black_box(conversation::turn(
                    &attendee, &inbound, &c, &index, &matcher, &settings,
                ))
            })
        },
    );
}

criterion_group!(conversation_benches, benches);
criterion_main!(conversation_benches);
