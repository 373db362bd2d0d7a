//! Routing decisions with a fake clock: skill and language matching, escalation after a target's
//! timeout, longest-idle fairness, capacity, reject and timeout passing the task on, nobody online,
//! time-to-live, and priority order.

use concierge::routing::expr::Expr;
use concierge::routing::{
    Availability, Board, Decision, Expert, Queue, Routing, Target, Task, TaskStatus,
};
use jiff::{SignedDuration, Timestamp};

fn t(s: &str) -> Timestamp {
    format!("2026-06-09T{s}Z").parse().unwrap()
}

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
                priority: Some(5),
            },
        ],
        reservation_timeout: SignedDuration::from_secs(30),
        task_ttl: SignedDuration::from_mins(10),
    }
}

fn expert(
    id: &str,
    skills: &[&str],
    languages: &[&str],
    capacity: u32,
    idle_since: &str,
) -> Expert {
    Expert {
        id: id.into(),
        name: id.into(),
        skills: skills.iter().map(|s| s.to_string()).collect(),
        languages: languages.iter().map(|s| s.to_string()).collect(),
        capacity,
        status: Availability::Available,
        idle_since: t(idle_since),
    }
}

fn task(id: u64, skill: &str, language: &str, priority: i32, created: &str) -> Task {
    Task {
        priority,
        ..Task::pending(
            id,
            &format!("sms:+1555000{id:04}"),
            "sms",
            &format!("help with {skill}"),
            Some(skill.into()),
            language,
            t(created),
        )
    }
}

/// Decides and applies everything at `now`; returns the decisions as short strings.
fn step(board: &mut Board, routing: &Routing, now: &str) -> Vec<String> {
    board
        .tick(routing, t(now))
        .iter()
        .map(|d| match d {
            Decision::Offer { task, expert, .. } => format!("offer {task} to {expert}"),
            Decision::ReservationTimedOut { task, expert } => format!("timeout {task} at {expert}"),
            Decision::Escalate { task, to } => format!("escalate {task} to {to}"),
            Decision::Expire { task } => format!("expire {task}"),
        })
        .collect()
}

#[test]
fn skill_and_language_decide_and_the_longest_idle_gets_the_offer() {
    let routing = routing();
    let mut board = Board::new(vec![
        expert("ana", &["video", "messaging"], &["en", "es"], 1, "09:00:00"),
        expert("bo", &["video"], &["en"], 1, "08:00:00"),
        expert("cy", &["voice"], &["en"], 1, "07:00:00"),
    ]);
    board.add_task(
        task(1, "video", "en", 0, "10:00:00"),
        &routing,
        t("10:00:00"),
    );
    board.add_task(
        task(2, "video", "es", 0, "10:00:01"),
        &routing,
        t("10:00:01"),
    );
    board.add_task(
        task(3, "voice", "en", 0, "10:00:02"),
        &routing,
        t("10:00:02"),
    );
    // bo has been idle longer than ana; ana is the only Spanish video expert; cy takes voice.
    assert_eq!(
        step(&mut board, &routing, "10:00:03"),
        ["offer 1 to bo", "offer 2 to ana", "offer 3 to cy"]
    );
    assert_eq!(board.task(1).unwrap().status, TaskStatus::Reserved);
    board.accept(1, "bo", t("10:00:00")).unwrap();
    assert_eq!(board.task(1).unwrap().status, TaskStatus::Assigned);
    // Only the expert offered the task may accept it.
    assert!(board.accept(2, "bo", t("10:00:00")).is_err());
}

#[test]
fn capacity_is_respected_and_priority_then_age_decide_the_order() {
    let routing = routing();
    let mut board = Board::new(vec![expert("ana", &["video"], &["en"], 2, "09:00:00")]);
    board.add_task(
        task(1, "video", "en", 0, "10:00:00"),
        &routing,
        t("10:00:00"),
    );
    board.add_task(
        task(2, "video", "en", 0, "10:00:01"),
        &routing,
        t("10:00:01"),
    );
    board.add_task(
        task(3, "video", "en", 9, "10:00:02"),
        &routing,
        t("10:00:02"),
    );
    // Highest priority first, then the oldest; two at once at most.
    assert_eq!(
        step(&mut board, &routing, "10:00:03"),
        ["offer 3 to ana", "offer 1 to ana"]
    );
    assert_eq!(board.load("ana"), 2);
    board.accept(3, "ana", t("10:00:00")).unwrap();
    board.accept(1, "ana", t("10:00:00")).unwrap();
    assert!(step(&mut board, &routing, "10:00:04").is_empty());
    board.complete(3, "ana", t("10:00:30")).unwrap();
    assert_eq!(step(&mut board, &routing, "10:00:31"), ["offer 2 to ana"]);
}

#[test]
fn reject_and_timeout_pass_the_task_to_the_next_expert() {
    let routing = routing();
    let mut board = Board::new(vec![
        expert("ana", &["video"], &["en"], 1, "07:00:00"),
        expert("bo", &["video"], &["en"], 1, "08:00:00"),
        expert("cy", &["video"], &["en"], 1, "09:00:00"),
    ]);
    board.add_task(
        task(1, "video", "en", 0, "10:00:00"),
        &routing,
        t("10:00:00"),
    );
    assert_eq!(step(&mut board, &routing, "10:00:00"), ["offer 1 to ana"]);
    board.reject(1, "ana", &routing, t("10:00:05")).unwrap();
    assert_eq!(step(&mut board, &routing, "10:00:05"), ["offer 1 to bo"]);
    // bo does not answer within 30 s.
    assert!(step(&mut board, &routing, "10:00:34").is_empty());
    assert_eq!(
        step(&mut board, &routing, "10:00:35"),
        ["timeout 1 at bo", "offer 1 to cy"]
    );
    board.accept(1, "cy", t("10:00:00")).unwrap();
    assert_eq!(board.task(1).unwrap().passed_by, ["ana", "bo"]);
}

#[test]
fn escalation_after_the_target_timeout_reaches_the_broader_queue() {
    let routing = routing();
    let mut board = Board::new(vec![expert("gen", &["messaging"], &["en"], 1, "09:00:00")]);
    board.add_task(
        task(1, "video", "en", 0, "10:00:00"),
        &routing,
        t("10:00:00"),
    );
    // No video expert: the task waits at the first target…
    assert!(step(&mut board, &routing, "10:00:30").is_empty());
    // …and after 60 s moves to "anyone", where gen can take it.
    assert_eq!(
        step(&mut board, &routing, "10:01:00"),
        ["escalate 1 to 1", "offer 1 to gen"]
    );
    assert_eq!(board.task(1).unwrap().target, 1);
}

#[test]
fn nobody_online_waits_and_the_time_to_live_cancels() {
    let routing = routing();
    let mut board = Board::new(vec![expert("ana", &["video"], &["en"], 1, "09:00:00")]);
    board
        .set_status("ana", Availability::Offline, t("09:30:00"))
        .unwrap();
    board.add_task(
        task(1, "video", "en", 0, "10:00:00"),
        &routing,
        t("10:00:00"),
    );
    assert!(step(&mut board, &routing, "10:00:10").is_empty());
    assert_eq!(step(&mut board, &routing, "10:01:00"), ["escalate 1 to 1"]);
    assert_eq!(board.waiting(), [1]);
    assert_eq!(step(&mut board, &routing, "10:10:00"), ["expire 1"]);
    assert_eq!(board.task(1).unwrap().status, TaskStatus::Canceled);
    assert!(board.waiting().is_empty());
    // Coming online later finds nothing to do, and idle time restarts.
    board
        .set_status("ana", Availability::Available, t("10:20:00"))
        .unwrap();
    assert!(step(&mut board, &routing, "10:20:00").is_empty());
    assert_eq!(board.expert("ana").unwrap().idle_since, t("10:20:00"));
}

#[test]
fn canceling_frees_the_expert() {
    let routing = routing();
    let mut board = Board::new(vec![expert("ana", &["video"], &["en"], 1, "09:00:00")]);
    board.add_task(
        task(1, "video", "en", 0, "10:00:00"),
        &routing,
        t("10:00:00"),
    );
    board.add_task(
        task(2, "video", "en", 0, "10:00:01"),
        &routing,
        t("10:00:01"),
    );
    assert_eq!(step(&mut board, &routing, "10:00:02"), ["offer 1 to ana"]);
    board
        .cancel(1, "the attendee went back to the bot", &routing)
        .unwrap();
    assert_eq!(board.load("ana"), 0);
    assert_eq!(step(&mut board, &routing, "10:00:03"), ["offer 2 to ana"]);
    assert!(board.cancel(1, "again", &routing).is_err());
}

#[test]
fn deciding_changes_nothing_and_agrees_with_tick() {
    let routing = routing();
    let mut board = Board::new(vec![
        expert("ana", &["video"], &["en"], 2, "07:00:00"),
        expert("bo", &["voice"], &["en", "es"], 1, "08:00:00"),
    ]);
    for (i, skill) in ["video", "voice", "video", "data"].iter().enumerate() {
        board.add_task(
            task(i as u64 + 1, skill, "en", 0, "10:00:00"),
            &routing,
            t("10:00:00"),
        );
    }
    let preview = board.decide(&routing, t("10:00:10"));
    assert_eq!(
        board.waiting(),
        [1, 2, 3, 4],
        "decide must not change the board"
    );
    let done = board.tick(&routing, t("10:00:10"));
    assert_eq!(preview, done);
    assert_eq!(board.waiting(), [4]);
}

#[test]
fn the_demo_routing_file_covers_every_skill() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("fixtures/routing.toml")).unwrap();
    let file = concierge::routing::config::RoutingFile::parse(
        "fixtures/routing.toml",
        &text,
        t("08:00:00"),
    )
    .unwrap_or_else(|errs| panic!("{errs:?}"));
    assert!(file.experts.len() >= 10);
    assert!(
        file.experts
            .iter()
            .filter(|e| e.languages.len() > 1)
            .count()
            >= 3
    );
    let defs = concierge::intents::file::load_dir(&root.join("intents")).unwrap();
    let skills = defs.entities.iter().find(|e| e.name == "skill").unwrap();
    for (skill, _) in &skills.values {
        for language in ["en", "es"] {
            let covered = file
                .experts
                .iter()
                .any(|e| e.skills.contains(skill) && e.languages.iter().any(|l| l == language));
            assert!(covered, "no expert for {skill} in {language}");
        }
        assert!(
            file.experts
                .iter()
                .filter(|e| e.skills.contains(skill))
                .count()
                >= 2,
            "{skill}"
        );
    }
}

#[test]
fn a_restored_board_carries_on_where_it_stopped() {
    let routing = routing();
    let mut board = Board::new(vec![
        expert("ana", &["video"], &["en"], 1, "07:00:00"),
        expert("bo", &["video"], &["en"], 1, "08:00:00"),
    ]);
    for i in 1..=4 {
        board.add_task(
            task(i, "video", "en", 0, &format!("10:00:0{i}")),
            &routing,
            t(&format!("10:00:0{i}")),
        );
    }
    assert_eq!(
        step(&mut board, &routing, "10:00:05"),
        ["offer 1 to ana", "offer 2 to bo"]
    );
    board.accept(1, "ana", t("10:00:06")).unwrap();
    // The service stops; experts and tasks are read back from the store.
    let experts = board.experts().to_vec();
    let tasks: Vec<Task> = board.tasks().cloned().collect();
    let mut restored = Board::restore(experts, tasks, &routing);
    assert_eq!(
        restored.waiting(),
        [3, 4],
        "pending tasks are still queued in order"
    );
    assert_eq!(restored.load("ana"), 1);
    assert_eq!(restored.load("bo"), 1);
    // bo's offer times out at its stored deadline (10:00:35), not later.
    assert!(step(&mut restored, &routing, "10:00:34").is_empty());
    assert_eq!(
        step(&mut restored, &routing, "10:00:35"),
        ["timeout 2 at bo", "offer 3 to bo"]
    );
}

#[test]
fn estimates_and_statistics() {
    let routing = routing();
    let mut board = Board::new(vec![
        expert("ana", &["video"], &["en"], 1, "07:00:00"),
        expert("bo", &["video"], &["en"], 1, "08:00:00"),
        expert("cy", &["voice"], &["es"], 1, "08:00:00"),
    ]);
    board
        .set_status("cy", Availability::Offline, t("09:00:00"))
        .unwrap();
    // An expert free now: no wait.
    let e = board.estimate(&routing, Some("video"), "en", t("10:00:00"));
    assert_eq!((e.position, e.minutes, e.experts_online), (1, Some(0), 2));
    // Nobody online for Spanish voice.
    let e = board.estimate(&routing, Some("voice"), "es", t("10:00:00"));
    assert_eq!((e.minutes, e.experts_online), (None, 0));

    for i in 1..=4 {
        board.add_task(
            task(i, "video", "en", 0, "10:00:00"),
            &routing,
            t("10:00:00"),
        );
    }
    step(&mut board, &routing, "10:00:00");
    board.accept(1, "ana", t("10:00:20")).unwrap();
    board.accept(2, "bo", t("10:00:40")).unwrap();
    board.complete(1, "ana", t("10:06:20")).unwrap();
    board.accept(3, "ana", t("10:06:30")).unwrap_err();
    step(&mut board, &routing, "10:06:30");
    // Task 4 waits (escalated to "anyone"); a new one would be second; handling took 6 minutes,
    // and two experts share the work: about 6 minutes.
    let e = board.estimate(&routing, Some("video"), "en", t("10:06:30"));
    assert_eq!(e.position, 2);
    assert_eq!(e.minutes, Some(6));
    let stats = board.stats(&routing, t("10:06:30"));
    assert_eq!(stats.available_experts, 0);
    assert_eq!(
        (stats.queues[0].queue.as_str(), stats.queues[0].waiting),
        ("skilled", 0)
    );
    assert_eq!(
        (stats.queues[1].queue.as_str(), stats.queues[1].waiting),
        ("anyone", 1)
    );
    assert_eq!(stats.queues[1].longest_wait_seconds, 390);
    // Waits until accepted in the last 15 minutes: 20 s and 40 s.
    assert_eq!(stats.average_wait_seconds_15m, Some(30.0));

    // Where waiting tasks stand: task 4 first; newer ones behind it, in order.
    board.add_task(
        task(5, "video", "en", 0, "10:07:00"),
        &routing,
        t("10:07:00"),
    );
    board.add_task(
        task(6, "video", "en", 0, "10:08:00"),
        &routing,
        t("10:08:00"),
    );
    let at = t("10:08:00");
    let position = |id| board.standing(&routing, id, at).map(|e| e.position);
    assert_eq!(position(4), Some(1));
    assert_eq!(position(5), Some(2));
    assert_eq!(position(6), Some(3));
    assert_eq!(position(1), None, "a completed task is not waiting");
    let wait = |id| board.standing(&routing, id, at).and_then(|e| e.minutes);
    assert!(wait(6) > wait(5), "{:?} {:?}", wait(6), wait(5));

    // The handling time is the last hour's: three tasks ahead, two experts, 6 minutes each
    // while task 1's completion (10:06:20) is within the hour, the default 5 minutes after.
    let minutes = |board: &Board, at| board.estimate(&routing, Some("video"), "en", t(at)).minutes;
    assert_eq!(minutes(&board, "11:06:00"), Some(12));
    assert_eq!(minutes(&board, "11:07:00"), Some(10));
    // Waits until accepted count for 15 minutes.
    let average = |board: &Board, at| board.stats(&routing, t(at)).average_wait_seconds_15m;
    assert_eq!(average(&board, "10:15:00"), Some(30.0));
    assert_eq!(average(&board, "10:15:30"), Some(40.0));
    assert_eq!(average(&board, "10:16:00"), None);
    // A board restored from its tasks says the same.
    let restored = Board::restore(
        board.experts().to_vec(),
        board.tasks().cloned().collect(),
        &routing,
    );
    assert_eq!(minutes(&restored, "11:06:00"), Some(12));
    assert_eq!(minutes(&restored, "11:07:00"), Some(10));
    assert_eq!(average(&restored, "10:15:00"), Some(30.0));
    assert_eq!(average(&restored, "10:15:30"), Some(40.0));
}
