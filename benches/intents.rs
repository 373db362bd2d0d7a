//! Intent matcher benchmarks: classifying SMS-length messages with the shipped catalog plus the
//! entities of the 38C3 agenda (over 1,000 entity phrases), compiling that set, and a naive
//! baseline (one regular expression per intent, tried in turn) on the same messages.
//!
//! Run with `cargo bench --bench intents`. Targets and results are in BENCHMARKS.md.

use std::hint::black_box;
use std::path::PathBuf;

use concierge::intents::file::load_dir;
use concierge::intents::{Definitions, Matcher};
use criterion::{Criterion, criterion_group, criterion_main};
use regex::Regex;

/// Messages as attendees text them: short, mixed, some noise.
const MESSAGES: &[&str] = &[
    "whats next",
    "what's next in saal 1?",
    "nxt talk about security pls",
    "is there a talk about hardware hacking tomorrow",
    "where is stage huff",
    "who is speaking in saal 1 right now",
    "can i talk to a video expert",
    "thx!",
    "hi 👋",
    "STOP",
    "wifi password?",
    "when is lunch",
    "save 2",
    "my agenda",
    "que sigue en el saal 1",
    "what's the weather like tomorrow",
    "i missed the keynote, is there a recording",
    "whaaat's happening now",
    "remind me about hacker jeopardy",
    "how do i get to the chaos west stage",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn setup() -> (Definitions, concierge::agenda::Agenda) {
    let defs = load_dir(&root().join("intents")).expect("shipped intents load");
    let agenda = concierge::import::import_file(
        &root().join("../shared/data/schedules/38c3.frab.schedule.xml"),
        &Default::default(),
    )
    .expect("38C3 imports")
    .agenda;
    (defs, agenda)
}

/// The naive approach: per intent, one regex of all its phrases and keywords as alternatives
/// between word boundaries, over the lower-cased message; intents tried in priority order, first
/// match wins.
struct Naive {
    intents: Vec<(String, Regex)>,
}

impl Naive {
    fn new(defs: &Definitions) -> Naive {
        let mut intents: Vec<_> = defs
            .intents
            .iter()
            .filter(|i| !i.phrases.is_empty() || !i.any.is_empty())
            .map(|i| {
                let words: Vec<String> = i
                    .phrases
                    .iter()
                    .map(|(_, p)| &p.text)
                    .chain(i.any.iter().map(|k| &k.text))
                    .map(|t| regex::escape(&t.to_lowercase()))
                    .collect();
                let regex = Regex::new(&format!(r"\b(?:{})\b", words.join("|"))).unwrap();
                (i.priority, i.name.clone(), regex)
            })
            .collect();
        intents.sort_by_key(|i| std::cmp::Reverse(i.0));
        Naive {
            intents: intents.into_iter().map(|(_, n, r)| (n, r)).collect(),
        }
    }

    fn classify(&self, message: &str) -> &str {
        let lower = message.to_lowercase();
        self.intents
            .iter()
            .find(|(_, r)| r.is_match(&lower))
            .map_or("fallback", |(n, _)| n)
    }
}

fn benches(c: &mut Criterion) {
    let (defs, agenda) = setup();
    let matcher = Matcher::compile(&defs, Some(&agenda)).unwrap();
    let stats = matcher.stats();
    println!(
        "set: {} intents, {} phrases, {} entity phrases, {} patterns, {} words",
        stats.intents, stats.phrases, stats.entity_phrases, stats.patterns, stats.vocabulary
    );
    let naive = Naive::new(&defs);
    let demo = concierge::agenda::demo::demo_agenda("2026-06-09".parse().unwrap()).unwrap();
    report_accuracy(&Matcher::compile(&defs, Some(&demo)).unwrap(), &naive);

    let mut group = c.benchmark_group("intents");
    let mut i = 0;
    group.bench_function("classify (catalog + 38C3 entities), per message", |b| {
        b.iter(|| {
            i = (i + 1) % MESSAGES.len();
            black_box(matcher.classify(black_box(MESSAGES[i])))
        })
    });
    let mut j = 0;
    group.bench_function("naive baseline (one regex per intent), per message", |b| {
        b.iter(|| {
            j = (j + 1) % MESSAGES.len();
            black_box(naive.classify(black_box(MESSAGES[j])))
        })
    });
    group.sample_size(20);
    group.bench_function("compile catalog + 38C3 entities", |b| {
        b.iter(|| Matcher::compile(black_box(&defs), Some(black_box(&agenda))).unwrap())
    });
    group.bench_function("naive baseline compile", |b| {
        b.iter(|| Naive::new(black_box(&defs)))
    });
    group.finish();
}

/// Prints how often each approach is right on the attendee test sets (which name the demo
/// conference's rooms and speakers, so the matcher gets the demo's entities here), so the speed
/// ratio is read next to what each one gets right.
fn report_accuracy(matcher: &Matcher, naive: &Naive) {
    let mut total = 0;
    let (mut ours, mut theirs) = (0, 0);
    for set in ["attendee_messages.tsv", "attendee_messages_2.tsv"] {
        let text = std::fs::read_to_string(root().join("tests/data").join(set)).unwrap();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let (intent, message) = line.split_once('\t').unwrap();
            total += 1;
            ours += usize::from(&*matcher.classify(message).intent == intent);
            theirs += usize::from(naive.classify(message) == intent);
        }
    }
    println!(
        "attendee accuracy: matcher {ours}/{total} ({:.1}%), naive {theirs}/{total} ({:.1}%)",
        100.0 * ours as f64 / total as f64,
        100.0 * theirs as f64 / total as f64
    );
}

criterion_group!(intent_benches, benches);
criterion_main!(intent_benches);
