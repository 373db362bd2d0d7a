//! Reminders in the sled store: scheduling 100,000 at once (one transaction, flushed), and finding
//! the due ones among 100,000 (100 due, the rest over the next two days).
//!
//! Run with `cargo bench --bench reminders`. Targets and results are in BENCHMARKS.md.

use std::hint::black_box;
use std::time::Duration;

use concierge::notices::reminders::Reminder;
use concierge::store::Store;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use jiff::{SignedDuration, Timestamp};

const N: usize = 100_000;

fn now() -> Timestamp {
    "2026-06-09T17:00:00Z".parse().unwrap()
}

/// 100,000 reminders: 5,000 attendees × 20 sessions; the first 100 due by `now`.
fn reminders() -> Vec<Reminder> {
    (0..N)
        .map(|i| {
            let offset = if i < 100 {
                -(i as i64) - 1
            } else {
                (i as i64 * 7919) % (2 * 24 * 3600)
            };
            Reminder {
                attendee: format!("sms:+1415555{:04}", i / 20),
                session: format!("s{:03}", i % 20),
                due: now()
                    .checked_add(SignedDuration::from_secs(offset))
                    .unwrap(),
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let list = reminders();

    let mut group = c.benchmark_group("reminders");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("schedule 100,000", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let store = Store::open(dir.path(), 64 << 20).unwrap();
                (dir, store)
            },
            |(dir, store)| {
                let n = runtime.block_on(store.schedule_reminders(&list)).unwrap();
                assert_eq!(n, N);
                (dir, store)
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), 64 << 20).unwrap();
    runtime.block_on(store.schedule_reminders(&list)).unwrap();
    assert_eq!(store.pending_reminders(), N);
    c.bench_function("reminders/find the 100 due among 100,000", |b| {
        b.iter(|| {
            let due = store.due_reminders(black_box(now()), 500).unwrap();
            assert_eq!(due.len(), 100);
            due
        });
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
