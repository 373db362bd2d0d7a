//! Reminders, schedule-change notices and announcements, on a real store with a fixed clock:
//! reminders come once, before the session, never after it started, never to an opted-out number,
//! not in quiet hours, and still after a downtime; a re-import tells exactly those who saved a
//! changed session, once; announcements reach their audience through the outbox and a local stub
//! of the Twilio API, skip opted-out numbers, and a repeated id sends nothing.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use concierge::clock::FixedClock;
use concierge::config::{Origin, RawConfig, RawReminders, Secret, TwilioConfig};
use concierge::inbox::{self, Message, Sender};
use concierge::notices::worker;
use concierge::sms::phone::Phone;
use concierge::state::AppState;
use concierge::store::Store;
use jiff::Timestamp;
use serde_json::{Value, json};

/// 10:05 in San Francisco on the demo's first day; s02 (Scaling WebRTC, Video, Golden Gate Hall)
/// and s03 (Designing SMS Conversations, Messaging, Bay Room) start at 10:30.
const TEN_O_FIVE: &str = "2026-06-09T17:05:00Z";
const A: &str = "+14155550101";
const B: &str = "+14155550102";
const C: &str = "+14155550103";
const ADMIN: &str = "admin-token-0123456789abcdef";

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

struct World {
    state: AppState,
    clock: Arc<FixedClock>,
    dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

async fn open(dir: &Path, now: &str, quiet: Option<&str>, twilio: Option<&str>) -> World {
    let raw = RawConfig {
        reminders: Some(RawReminders {
            minutes_before: Some(10),
            quiet_hours: quiet.map(str::to_string),
        }),
        admin_token: Some(ADMIN.into()),
        ..RawConfig::default()
    };
    let mut config = raw
        .validate(Origin {
            file: None,
            env: vec![],
        })
        .unwrap();
    config.data_dir = dir.to_path_buf();
    config.routing_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/routing.toml");
    config.sms.send_rate_per_second = 100.0;
    if let Some(api) = twilio {
        config.twilio = Some(TwilioConfig {
            account_sid: "AC00000000000000000000000000000001".into(),
            auth_token: Secret::new("twilio-test-auth-token"),
            sender: "+15550009999".into(),
            api_base: api.into(),
            timeout_secs: 2,
        });
    }
    let store = Store::open(dir, 8 << 20).unwrap();
    let clock = Arc::new(FixedClock::new(t(now)));
    let (state, _) = AppState::open(config, store, clock.clone()).await.unwrap();
    World {
        state,
        clock,
        dir: dir.to_path_buf(),
        _tmp: None,
    }
}

async fn world(quiet: Option<&str>) -> World {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = open(tmp.path(), TEN_O_FIVE, quiet, None).await;
    w._tmp = Some(tmp);
    w
}

fn sms(number: &str) -> Sender {
    Sender::Sms(Phone::parse(number).unwrap())
}

async fn send(w: &World, from: Sender, text: &str, save: Option<&str>) -> String {
    let n = w.state.store.transcript_len(&from.attendee_key()).unwrap();
    let message = Message {
        sender: from,
        text: text.into(),
        has_media: false,
        message_id: Some(format!("m{n}")),
        idempotency_key: None,
        opt_out_type: None,
        save: save.map(str::to_string),
        remove: None,
    };
    let outcome = inbox::handle(&w.state, message, w.state.clock.now())
        .await
        .unwrap();
    outcome.texts().collect::<Vec<_>>().join("\n")
}

async fn save(w: &World, from: Sender, session: &str) {
    let reply = send(w, from, "Add to my agenda", Some(session)).await;
    assert!(reply.starts_with("Saved to your agenda"), "{reply}");
}

/// Queued outbound messages: (to, body).
fn outbox(w: &World) -> Vec<(String, String)> {
    w.state
        .store
        .due_outgoing(Timestamp::MAX, 1000)
        .unwrap()
        .into_iter()
        .map(|m| (m.to, m.body))
        .collect()
}

async fn pass_at(w: &World, at: &str) -> usize {
    w.clock.set(t(at));
    worker::reminders_pass(&w.state).await.unwrap()
}

#[tokio::test]
async fn a_reminder_comes_once_ten_minutes_before() {
    let w = world(None).await;
    save(&w, sms(A), "s02").await;
    let web = Sender::Web("web:0123456789abcdef0123456789abcdef".into());
    save(&w, web.clone(), "s03").await;
    assert_eq!(w.state.store.pending_reminders(), 2);

    assert_eq!(pass_at(&w, "2026-06-09T17:19:59Z").await, 0);
    assert!(outbox(&w).is_empty());
    assert_eq!(pass_at(&w, "2026-06-09T17:20:00Z").await, 2);
    let sent = outbox(&w);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].0, A);
    assert_eq!(
        sent[0].1,
        "Reminder: Scaling WebRTC to 10,000 Viewers with an SFU starts at 10:30 in Golden Gate Hall. \
         https://pacificdevsummit.example.org/2026/sessions/s02"
    );
    // The web attendee finds it in the conversation.
    let transcript = w.state.store.transcript(&web.attendee_key()).unwrap();
    assert!(
        transcript
            .last()
            .unwrap()
            .text
            .starts_with("Reminder: Designing SMS Conversations People Answer starts at 10:30")
    );

    // Never a second one: later passes, and the same session scheduled again, send nothing.
    assert_eq!(pass_at(&w, "2026-06-09T17:21:00Z").await, 0);
    let again = concierge::notices::reminders::Reminder {
        attendee: sms(A).attendee_key(),
        session: "s02".into(),
        due: t("2026-06-09T17:25:00Z"),
    };
    assert_eq!(w.state.store.schedule_reminders(&[again]).await.unwrap(), 0);
    assert_eq!(pass_at(&w, "2026-06-09T17:26:00Z").await, 0);
    assert_eq!(outbox(&w).len(), 1);

    // Saving a session that starts within the lead schedules nothing; removing one unschedules.
    w.clock.set(t("2026-06-09T17:22:00Z"));
    save(&w, sms(B), "s04").await;
    assert_eq!(w.state.store.pending_reminders(), 0);
    save(&w, sms(B), "s07").await; // 11:30
    assert_eq!(w.state.store.pending_reminders(), 1);
    let reply = send(&w, sms(B), "remove the speech recognition talk", None).await;
    assert!(reply.starts_with("Removed from your agenda"), "{reply}");
    assert_eq!(w.state.store.pending_reminders(), 0);
}

#[tokio::test]
async fn after_a_downtime_due_reminders_go_out_unless_the_session_started() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let w = open(tmp.path(), TEN_O_FIVE, None, None).await;
        save(&w, sms(A), "s02").await; // 10:30, due 10:20
        save(&w, sms(A), "s07").await; // 11:30, due 11:20
        assert_eq!(w.state.store.pending_reminders(), 2);
        w.state.store.flush().await.unwrap();
    }
    // Down from 10:05 to 11:25: s02 has started, s07 has not.
    let w = open(tmp.path(), "2026-06-09T18:25:00Z", None, None).await;
    assert_eq!(
        w.state.store.pending_reminders(),
        2,
        "reminders survive a restart"
    );
    assert_eq!(worker::reminders_pass(&w.state).await.unwrap(), 2);
    let sent = outbox(&w);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        sent[0]
            .1
            .starts_with("Reminder: Speech Recognition Accuracy")
    );
    assert_eq!(w.state.store.pending_reminders(), 0);
    let _ = &w.dir;
}

#[tokio::test]
async fn quiet_hours_delay_a_reminder_or_drop_it() {
    // Quiet until 10:25: the 10:20 reminder waits until 10:25, before the 10:30 start.
    let w = world(Some("10:00-10:25")).await;
    save(&w, sms(A), "s02").await;
    assert_eq!(pass_at(&w, "2026-06-09T17:20:00Z").await, 1);
    assert!(outbox(&w).is_empty());
    assert_eq!(pass_at(&w, "2026-06-09T17:24:59Z").await, 0);
    assert_eq!(pass_at(&w, "2026-06-09T17:25:00Z").await, 1);
    assert_eq!(outbox(&w).len(), 1);

    // Quiet until 11:00: the session starts first, so no reminder at all.
    let w = world(Some("10:00-11:00")).await;
    save(&w, sms(A), "s02").await;
    assert_eq!(pass_at(&w, "2026-06-09T17:20:00Z").await, 1);
    assert_eq!(pass_at(&w, "2026-06-09T18:00:00Z").await, 0);
    assert!(outbox(&w).is_empty());
    assert_eq!(w.state.store.pending_reminders(), 0);
}

#[tokio::test]
async fn an_opted_out_number_gets_no_reminder() {
    let w = world(None).await;
    save(&w, sms(A), "s02").await;
    send(&w, sms(A), "STOP", None).await;
    assert_eq!(pass_at(&w, "2026-06-09T17:20:00Z").await, 1);
    assert!(outbox(&w).is_empty());
    assert_eq!(w.state.store.pending_reminders(), 0);
}

/// The demo agenda with s02 an hour later in another room and s03 gone.
fn changed_agenda() -> concierge::import::Imported {
    let mut agenda: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/agenda.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let sessions = agenda["sessions"].as_array_mut().unwrap();
    sessions.retain(|s| s["id"] != "s03");
    for s in sessions.iter_mut() {
        if s["id"] == "s02" {
            s["start"] = json!("2026-06-09T11:30");
            s["end"] = json!("2026-06-09T12:15");
            s["room"] = json!("Bay Room");
        }
    }
    let bytes = serde_json::to_vec(&agenda).unwrap();
    concierge::import::import_bytes("v2.json", &bytes, &Default::default()).unwrap()
}

#[tokio::test]
async fn a_reimport_tells_exactly_those_who_saved_a_changed_session_once() {
    let w = world(None).await;
    save(&w, sms(A), "s02").await;
    save(&w, sms(A), "s03").await;
    save(&w, sms(B), "s05").await; // unchanged
    save(&w, sms(C), "s02").await;
    send(&w, sms(C), "STOP", None).await;
    let web = Sender::Web("web:0123456789abcdef0123456789abcdef".into());
    save(&w, web.clone(), "s02").await;
    send(&w, web.clone(), "hola", None).await; // the web attendee writes in Spanish

    w.state
        .replace_agenda(changed_agenda(), "v2.json")
        .await
        .unwrap();
    let sent = outbox(&w);
    assert_eq!(sent.len(), 1, "only A, by SMS: {sent:?}");
    assert_eq!(sent[0].0, A);
    assert_eq!(
        sent[0].1,
        "Changes to your agenda:\n\
         - Scaling WebRTC to 10,000 Viewers with an SFU: now 11:30, Bay Room (was 10:30, Golden Gate Hall)\n\
         - Designing SMS Conversations People Answer (10:30, Bay Room): canceled"
    );
    let transcript = w.state.store.transcript(&web.attendee_key()).unwrap();
    assert_eq!(
        transcript.last().unwrap().text,
        "Cambios en tu agenda:\n- Scaling WebRTC to 10,000 Viewers with an SFU: ahora 11:30, Bay Room (antes 10:30, Golden Gate Hall)"
    );
    // Reminders follow: s02's move to 11:20, s03's is gone.
    let s02 = w.state.store.reminders_of("s02").unwrap();
    assert_eq!(s02.len(), 3);
    assert!(
        s02.iter().all(|r| r.due == t("2026-06-09T18:20:00Z")),
        "{s02:?}"
    );
    assert!(w.state.store.reminders_of("s03").unwrap().is_empty());
    assert_eq!(w.state.store.reminders_of("s05").unwrap().len(), 1);

    // The same file again: nothing changed, nobody is told.
    w.state
        .replace_agenda(changed_agenda(), "v2.json")
        .await
        .unwrap();
    assert_eq!(outbox(&w).len(), 1);
    assert_eq!(
        w.state.store.transcript(&web.attendee_key()).unwrap().len(),
        transcript.len()
    );
}

async fn post_announcement(base: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{base}/admin/announcements"))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn announcements_reach_their_audience_once_and_never_opted_out_numbers() {
    let (api, sent) = common::twilio_stub().await;
    let tmp = tempfile::tempdir().unwrap();
    let w = open(tmp.path(), TEN_O_FIVE, None, Some(&api)).await;
    let sender = concierge::outbound::TwilioSender::new(
        &api,
        "AC00000000000000000000000000000001",
        Secret::new("twilio-test-auth-token"),
        "+15550009999",
        None,
        Duration::from_secs(2),
    )
    .unwrap();
    tokio::spawn(concierge::outbound::run(
        w.state.store.clone(),
        Arc::new(sender),
        w.clock.clone(),
        w.state.outbox_wake.clone(),
        concierge::outbound::WorkerSettings {
            retry: concierge::outbound::Retry::default(),
            rate_per_second: 100.0,
            poll: Duration::from_millis(20),
            failures: None,
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(concierge::http::run(
        listener,
        w.state.clone(),
        std::future::pending(),
    ));

    save(&w, sms(A), "s02").await; // Video
    save(&w, sms(B), "s05").await; // Contact Center
    save(&w, sms(C), "s02").await;
    send(&w, sms(C), "STOP", None).await;
    let web = Sender::Web("web:0123456789abcdef0123456789abcdef".into());
    save(&w, web.clone(), "s07").await; // Data & AI

    // Dry runs count without sending.
    let (status, dry) = post_announcement(
        &base,
        json!({"id": "video-1", "text": "Video track moves to Bay Room", "to": "track", "track": "video", "dry_run": true}),
    )
    .await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(
        (dry["recipients"].as_u64(), dry["sms"].as_u64()),
        (Some(1), Some(1))
    );
    let (_, dry) = post_announcement(
        &base,
        json!({"id": "all-1", "text": "x", "to": "everyone", "dry_run": true}),
    )
    .await;
    assert_eq!(dry["recipients"], 3, "A, B and the web chat; not C: {dry}");
    let (_, dry) = post_announcement(
        &base,
        json!({"id": "s05-1", "text": "x", "to": "session", "session": "s05", "dry_run": true}),
    )
    .await;
    assert_eq!(dry["recipients"], 1);

    // Bad requests.
    for body in [
        json!({"id": "x", "text": "hi", "to": "track", "track": "Knitting"}),
        json!({"id": "x", "text": "hi", "to": "session", "session": "nope"}),
        json!({"id": "bad id!", "text": "hi", "to": "everyone"}),
        json!({"id": "x", "text": "   ", "to": "everyone"}),
        json!({"id": "x", "text": "hi", "to": "martians"}),
    ] {
        let (status, _) = post_announcement(&base, body.clone()).await;
        assert!(status == 400 || status == 422, "{status} for {body}");
    }

    // The real thing, through the CLI (a client of the admin API), then again with the same id.
    // (The server runs on this test's thread: the CLI waits off it.)
    let cli = |id: &'static str| {
        let (base, data) = (base.clone(), tmp.path().join("unused"));
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_concierge"))
                .args([
                    "announce",
                    "--id",
                    id,
                    "--text",
                    "Drinks at the Expo Hall at 18:00!",
                    "--url",
                    &base,
                ])
                .env("CONCIERGE_ADMIN_TOKEN", ADMIN)
                .env("CONCIERGE_DATA_DIR", data)
                .output()
                .unwrap()
        })
    };
    let out = cli("drinks-1").await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("queued for 3 (2 by SMS, 1 in the web chat)"),
        "{said}"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while sent.lock().unwrap().len() < 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let out = cli("drinks-1").await.unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("was sent before, to 3; nothing sent now"),
        "{said}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = sent.lock().unwrap().clone();
    let mut to: Vec<&str> = sent
        .iter()
        .map(|form| form.iter().find(|(k, _)| k == "To").unwrap().1.as_str())
        .collect();
    to.sort_unstable();
    assert_eq!(to, [A, B], "C opted out; nothing twice");
    assert!(sent.iter().all(|f| {
        f.iter()
            .any(|(k, v)| k == "Body" && v == "Drinks at the Expo Hall at 18:00!")
    }));
    let transcript = w.state.store.transcript(&web.attendee_key()).unwrap();
    assert_eq!(
        transcript.last().unwrap().text,
        "Drinks at the Expo Hall at 18:00!"
    );
}
