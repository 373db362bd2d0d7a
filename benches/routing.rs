//! Routing decisions with 1,000 experts and 10,000 waiting tasks.
//!
//! - "one expert frees up": every expert is busy but one; deciding finds that expert's best task.
//!   This is the steady state of a busy conference, one assignment per decision.
//! - "everyone free": all 1,000 experts free at once; one decision pass makes every offer it can.
//!   Reported per offer.
//!
//! Run with `cargo bench --bench routing`. Target and results are in BENCHMARKS.md.

use std::hint::black_box;

use concierge::routing::expr::Expr;
use concierge::routing::{Availability, Board, Decision, Expert, Queue, Routing, Target, Task};
use criterion::{Criterion, criterion_group, criterion_main};
use jiff::{SignedDuration, Timestamp};

const SKILLS: [&str; 7] = [
    "video",
    "messaging",
    "voice",
    "contact_center",
    "security",
    "serverless",
    "data",
];

fn routing() -> Routing {
    Routing {
        queues: vec![
            Queue {
                name: "skilled".into(),
                expr: Expr::parse("skills HAS task.skill AND languages HAS task.language").unwrap(),
            },
            Queue {
                name: "anyone".into(),
                expr: Expr::parse("languages HAS task.language").unwrap(),
            },
        ],
        targets: vec![
            Target {
                queue: 0,
                timeout: Some(SignedDuration::from_secs(60)),
                priority: None,
            },
            Target {
                queue: 1,
                timeout: None,
                priority: None,
            },
        ],
        reservation_timeout: SignedDuration::from_secs(30),
        task_ttl: SignedDuration::from_hours(2),
    }
}

/// A deterministic pseudo-random sequence (xorshift), so every run builds the same board.
struct Rng(u64);

impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn board(routing: &Routing, busy: bool) -> (Board, Timestamp) {
    let start: Timestamp = "2026-06-09T17:00:00Z".parse().unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let experts: Vec<Expert> = (0..1000)
        .map(|i| {
            let mut skills = vec![SKILLS[rng.next(7) as usize].to_string()];
            if rng.next(2) == 0 {
                skills.push(SKILLS[rng.next(7) as usize].to_string());
            }
            let languages = if rng.next(4) == 0 {
                vec!["en".into(), "es".into()]
            } else {
                vec!["en".into()]
            };
            Expert {
                id: format!("expert-{i:04}"),
                name: format!("Expert {i}"),
                skills,
                languages,
                capacity: 1 + rng.next(3) as u32,
                status: if busy {
                    Availability::Busy
                } else {
                    Availability::Available
                },
                idle_since: start
                    .checked_sub(SignedDuration::from_secs(rng.next(3600) as i64))
                    .unwrap(),
            }
        })
        .collect();
    let mut board = Board::new(experts);
    for id in 0..10_000u64 {
        let created = start
            .checked_add(SignedDuration::from_millis(id as i64 * 50))
            .unwrap();
        let skill = Some(SKILLS[rng.next(7) as usize].into());
        let language = if rng.next(5) == 0 { "es" } else { "en" };
        let task = Task {
            priority: if rng.next(10) == 0 { 5 } else { 0 },
            ..Task::pending(
                id,
                &format!("sms:+1555{id:07}"),
                "sms",
                "can an expert help me",
                skill,
                language,
                created,
            )
        };
        board.add_task(task, routing, created);
    }
    let now = start.checked_add(SignedDuration::from_secs(500)).unwrap();
    // Bring the board up to date, as the service's ticks would have: escalations are applied.
    // With everyone busy that makes no offers.
    if busy {
        board.tick(routing, now);
    }
    (board, now)
}

fn benches(c: &mut Criterion) {
    let routing = routing();

    // One free expert among 1,000 busy ones.
    let (mut one_free, now) = board(&routing, true);
    one_free
        .set_status("expert-0500", Availability::Available, now)
        .unwrap();
    let offers = one_free
        .decide(&routing, now)
        .iter()
        .filter(|d| matches!(d, Decision::Offer { .. }))
        .count();
    assert!(offers >= 1, "the free expert gets an offer");
    c.bench_function(
        "routing: one expert frees up (1,000 experts, 10,000 waiting tasks)",
        |b| b.iter(|| black_box(one_free.decide(black_box(&routing), now))),
    );

    // Everyone free: one pass, reported per offer. Escalations due are applied first.
    let (mut all_free, now) = board(&routing, false);
    for expert in all_free
        .experts()
        .iter()
        .map(|e| e.id.clone())
        .collect::<Vec<_>>()
    {
        all_free
            .set_status(&expert, Availability::Busy, now)
            .unwrap();
    }
    all_free.tick(&routing, now);
    for expert in all_free
        .experts()
        .iter()
        .map(|e| e.id.clone())
        .collect::<Vec<_>>()
    {
        all_free
            .set_status(&expert, Availability::Available, now)
            .unwrap();
    }
    let offers = all_free
        .decide(&routing, now)
        .iter()
        .filter(|d| matches!(d, Decision::Offer { .. }))
        .count();
    println!("everyone free: one pass makes {offers} offers");
    let mut group = c.benchmark_group("routing");
    group.throughput(criterion::Throughput::Elements(offers as u64));
    group.bench_function("everyone free: one pass (per offer: see thrpt)", |b| {
        b.iter(|| black_box(all_free.decide(black_box(&routing), now)))
    });
    group.finish();
}

criterion_group!(routing_benches, benches);
criterion_main!(routing_benches);
