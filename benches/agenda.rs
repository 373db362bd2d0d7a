//! Agenda benchmarks: the next-session query over the 38C3 agenda (1,007 sessions, 72 rooms) and the
//! import of the FOSDEM 2026 schedule. Targets and results are in BENCHMARKS.md.
//!
//! Run with `cargo bench --bench agenda`. The schedules are read from ../shared/data/schedules.

use std::hint::black_box;
use std::path::PathBuf;

use concierge::agenda::{AgendaIndex, Filter};
use concierge::import::{self, ImportOptions};
use criterion::{Criterion, criterion_group, criterion_main};
use jiff::{SignedDuration, Timestamp};

fn schedule(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/schedules")
        .join(name)
}

/// Query times spread over the congress, every 7 minutes from the first day's start, so the
/// benchmark is not one lucky position in the agenda.
fn query_times(index: &AgendaIndex) -> Vec<Timestamp> {
    let days = &index.agenda().conference.days;
    let (start, end) = (days[0].start, days[days.len() - 1].end);
    let mut times = Vec::new();
    let mut t = start;
    while t < end {
        times.push(t);
        t = t.checked_add(SignedDuration::from_mins(7)).unwrap();
    }
    times
}

fn queries(c: &mut Criterion) {
    let agenda = import::import_file(
        &schedule("38c3.frab.schedule.xml"),
        &ImportOptions::default(),
    )
    .expect("38C3 imports")
    .agenda;
    let index = AgendaIndex::new(agenda);
    let times = query_times(&index);
    let all = Filter::default();
    let saal1 = Filter {
        room: index.room("Saal 1"),
        ..Filter::default()
    };
    let security = Filter {
        track: index.track("Security"),
        ..Filter::default()
    };

    let mut group = c.benchmark_group("38c3");
    let mut i = 0;
    let mut next_time = || {
        i = (i + 1) % times.len();
        times[i]
    };
    group.bench_function("next 5 sessions, all rooms", |b| {
        b.iter(|| black_box(index.next(black_box(next_time()), &all, 5)))
    });
    group.bench_function("next slot, all rooms", |b| {
        b.iter(|| black_box(index.next_slot(black_box(next_time()), &all)))
    });
    group.bench_function("next 3 sessions, one room", |b| {
        b.iter(|| black_box(index.next(black_box(next_time()), &saal1, 3)))
    });
    group.bench_function("next 3 sessions, one track", |b| {
        b.iter(|| black_box(index.next(black_box(next_time()), &security, 3)))
    });
    group.bench_function("now, all rooms", |b| {
        b.iter(|| black_box(index.now(black_box(next_time()), &all)))
    });
    group.bench_function("search \"security\"", |b| {
        b.iter(|| black_box(index.search(black_box("security"), None, 10)))
    });
    group.finish();
}

fn imports(c: &mut Criterion) {
    let mut group = c.benchmark_group("import");
    group.sample_size(20);
    let fosdem = std::fs::read(schedule("fosdem-2026.pentabarf.schedule.xml")).unwrap();
    group.bench_function("FOSDEM 2026 schedule.xml (883 events, 2.6 MiB)", |b| {
        b.iter(|| {
            import::import_bytes("fosdem.xml", black_box(&fosdem), &ImportOptions::default())
                .unwrap()
        })
    });
    let agenda = import::import_bytes("fosdem.xml", &fosdem, &ImportOptions::default())
        .unwrap()
        .agenda;
    group.bench_function("FOSDEM 2026 index build", |b| {
        b.iter(|| AgendaIndex::new(black_box(agenda.clone())))
    });
    let c3 = std::fs::read(schedule("38c3.frab.schedule.xml")).unwrap();
    group.bench_function("38C3 schedule.xml (1,007 events, 2.1 MiB)", |b| {
        b.iter(|| {
            import::import_bytes("38c3.xml", black_box(&c3), &ImportOptions::default()).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, queries, imports);
criterion_main!(benches);
