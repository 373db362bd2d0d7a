//! The operator's API over a real port: the overview (what was not understood, hits per intent,
//! queues, agenda), the agenda upload through the importers (a bad file changes nothing), and
//! what experts see of a conversation.

mod common;

use std::path::Path;

use concierge::clock::FixedClock;
use concierge::config::RawConfig;
use concierge::state::AppState;
use serde_json::{Value, json};

const TOKEN: &str = "an-operator-token-of-some-length";

async fn server() -> (String, AppState, tempfile::TempDir) {
    let raw = RawConfig {
        admin_token: Some(TOKEN.into()),
        ..RawConfig::default()
    };
    common::serve(raw, "2026-06-09T17:05:00Z").await
}

async fn chat(base: &str, token: &str, id: &str, text: &str) -> Value {
    reqwest::Client::new()
        .post(format!("{base}/chat/messages"))
        .json(&json!({"token": token, "id": id, "text": text}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn overview(base: &str) -> Value {
    let r = reqwest::Client::new()
        .get(format!("{base}/admin/overview"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn the_overview_counts_what_was_not_understood() {
    let (base, state, _dir) = server().await;
    let a = common::new_chat(&base).await;
    let b = common::new_chat(&base).await;
    chat(&base, &a, "1", "purple elephant banana").await;
    chat(&base, &b, "1", "Purple  elephant BANANA?").await;
    chat(&base, &a, "2", "where can I park my spaceship").await;
    chat(&base, &a, "3", "what's next").await;
    chat(&base, &a, "3", "what's next").await; // a retry is not counted again

    let o = overview(&base).await;
    assert_eq!(o["messages"], 4);
    assert_eq!(o["fallback_rate"], 0.75);
    let unmatched = o["unmatched"].as_array().unwrap();
    assert_eq!(unmatched.len(), 2, "{o}");
    assert_eq!(unmatched[0]["count"], 2);
    assert_eq!(
        unmatched[0]["text"], "Purple  elephant BANANA?",
        "the latest wording"
    );
    assert_eq!(unmatched[1]["text"], "where can I park my spaceship");
    assert_eq!(o["hits"][0], json!({"intent": "fallback", "count": 3}));
    assert_eq!(o["hits"][1], json!({"intent": "next_session", "count": 1}));
    assert_eq!(o["agenda"]["conference"], "Pacific Dev Summit 2026");
    assert_eq!(o["agenda"]["sessions"], 90);
    assert_eq!(o["experts"]["total"], 12);
    assert!(o["intents"]["files"].as_array().unwrap().len() >= 5);
    assert!(o["queues"]["queues"].is_array());

    // The period is the last 24 hours: a day later, nothing; the log is kept a week.
    let clock = FixedClock::new("2026-06-10T17:06:00Z".parse().unwrap());
    let later = state.store.intent_report(
        concierge::clock::Clock::now(&clock)
            .checked_sub(jiff::SignedDuration::from_hours(24))
            .unwrap(),
        20,
    );
    assert_eq!(later.unwrap().messages, 0);
    assert_eq!(
        state
            .store
            .expire_intent_log("2026-06-09T17:05:00.000001Z".parse().unwrap())
            .unwrap(),
        4
    );

    // No token: 401; a wrong one: 403.
    let r = reqwest::get(format!("{base}/admin/overview"))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = reqwest::Client::new()
        .get(format!("{base}/admin/overview"))
        .bearer_auth("wrong-token-wrong-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

async fn upload(base: &str, query: &str, body: Vec<u8>) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{base}/admin/agenda?{query}"))
        .bearer_auth(TOKEN)
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_uploaded_schedule_replaces_the_agenda_and_a_bad_one_changes_nothing() {
    let (base, state, _dir) = server().await;
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/schedules");
    let fosdem = std::fs::read(shared.join("fosdem-2026.pentabarf.schedule.xml")).unwrap();
    assert!(
        fosdem.len() > 64 * 1024,
        "larger than the other routes take"
    );

    // Broken files: 422 with the place, and the agenda is still the demo.
    let mut broken = fosdem.clone();
    broken.truncate(fosdem.len() / 2);
    let (status, body) = upload(&base, "name=fosdem.xml", broken).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["problem"].as_str().unwrap().starts_with("fosdem.xml:"),
        "{body}"
    );
    assert!(body["line"].as_u64().is_some(), "{body}");
    let (status, body) = upload(&base, "name=x.json", b"{\"schedule\": 3}".to_vec()).await;
    assert_eq!(status, 422, "{body}");
    let (status, _) = upload(&base, "", Vec::new()).await;
    assert_eq!(status, 400);
    let (status, _) = upload(&base, "format=docx", b"x".to_vec()).await;
    assert_eq!(status, 400);
    let (status, _) = upload(&base, "tz=Mars/Olympus", b"x".to_vec()).await;
    assert_eq!(status, 400);
    assert_eq!(
        state.agenda().agenda().conference.name,
        "Pacific Dev Summit 2026"
    );
    let o = overview(&base).await;
    let imports = o["agenda"]["imports"].as_array().unwrap();
    assert_eq!(imports[0]["outcome"]["result"], "failed", "{o}");

    // The whole FOSDEM schedule (3 MB) goes in through the upload.
    let (status, body) = upload(&base, "name=fosdem-2026.xml&format=auto", fosdem).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["format"], "frab-xml");
    let agenda = state.agenda();
    assert_eq!(agenda.agenda().sessions.len(), 883);
    assert_eq!(
        agenda.agenda().conference.time_zone.name(),
        "Europe/Brussels"
    );
    // The intents know the new agenda's entities.
    let c = state.intents.matcher().classify("where is Janson");
    assert!(c.entity("room").is_some(), "{c:?}");

    // Without the token, nothing is read.
    let r = reqwest::Client::new()
        .post(format!("{base}/admin/agenda"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // The other routes keep their small body limit.
    let r = reqwest::Client::new()
        .post(format!("{base}/admin/classify"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(vec![b' '; 200 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
}

/// An SMS attendee (+1 415 555 0123) asks for a video expert, through the inbox the webhook uses.
async fn hand_off(state: &AppState) {
    let message = concierge::inbox::Message {
        sender: concierge::inbox::Sender::Sms(
            concierge::sms::phone::Phone::parse("+14155550123").unwrap(),
        ),
        text: "can a video expert help me".into(),
        has_media: false,
        message_id: Some("SM1".into()),
        idempotency_key: Some("SM1".into()),
        opt_out_type: None,
        save: None,
        remove: None,
    };
    concierge::inbox::handle(state, message, state.clock.now())
        .await
        .unwrap();
}

#[tokio::test]
async fn experts_see_the_history_but_not_the_number() {
    let (base, state, _dir) = server().await;
    hand_off(&state).await;
    let task = state
        .store
        .attendee("sms:+14155550123")
        .unwrap()
        .handoff
        .unwrap();
    let nora = state.store.issue_expert_token("nora").await.unwrap();
    let ben = state.store.issue_expert_token("mateo").await.unwrap();
    let client = reqwest::Client::new();
    client
        .put(format!("{base}/expert/status"))
        .bearer_auth(&nora)
        .json(&json!({"status": "available"}))
        .send()
        .await
        .unwrap();
    state.desk.tick(state.clock.now()).await.unwrap();
    let detail: Value = client
        .get(format!("{base}/expert/tasks/{task}"))
        .bearer_auth(&nora)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(detail["task"]["status"], "reserved", "{detail}");
    let shown = detail["task"]["attendee"].as_str().unwrap();
    assert!(
        shown.starts_with("SMS ") && !shown.contains("5550123"),
        "{shown}"
    );
    assert_eq!(detail["history"][0]["text"], "can a video expert help me");
    assert_eq!(detail["history"][0]["from"], "attendee");
    assert_eq!(detail["history"][1]["from"], "concierge");
    let me: Value = client
        .get(format!("{base}/expert/me"))
        .bearer_auth(&nora)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!me.to_string().contains("5550123"), "{me}");
    // Another expert may not read it.
    let r = client
        .get(format!("{base}/expert/tasks/{task}"))
        .bearer_auth(&ben)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

/// A path or query parameter that does not parse gets the API's JSON error, like every other
/// error (axum's own rejections answer in plain text).
#[tokio::test]
async fn unparsable_paths_and_queries_get_json_errors() {
    let (base, state, _dir) = server().await;
    let nora = state.store.issue_expert_token("nora").await.unwrap();
    let client = reqwest::Client::new();
    for (request, token) in [
        (
            client.get(format!("{base}/expert/tasks/not-a-number")),
            &nora,
        ),
        (client.post(format!("{base}/expert/tasks/-1/accept")), &nora),
        (
            client.get(format!("{base}/admin/overview?hours=lots")),
            &TOKEN.to_string(),
        ),
    ] {
        let r = request.bearer_auth(token).send().await.unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(
            r.headers()["content-type"].to_str().unwrap(),
            "application/json"
        );
        let body: Value = r.json().await.unwrap();
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{body}"
        );
    }
}

/// A revoked expert token is refused at once, and an event stream opened with it ends.
#[tokio::test]
async fn revoked_expert_tokens_are_refused_and_their_streams_end() {
    let (base, state, _dir) = server().await;
    let first = state.store.issue_expert_token("nora").await.unwrap();
    let second = state.store.issue_expert_token("nora").await.unwrap();
    let other = state.store.issue_expert_token("mateo").await.unwrap();
    let client = reqwest::Client::new();
    let me = |token: &str| {
        client
            .get(format!("{base}/expert/me"))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(me(&first).await.unwrap().status(), 200);
    let mut stream = client
        .get(format!("{base}/expert/events"))
        .bearer_auth(&first)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    // The stream is running: it carries the offer of a hand-off to nora.
    let r = client
        .put(format!("{base}/expert/status"))
        .bearer_auth(&first)
        .json(&json!({"status": "available"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    hand_off(&state).await;
    state.desk.tick(state.clock.now()).await.unwrap();
    let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), stream.chunk())
        .await
        .expect("no event within 10 s")
        .unwrap()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&chunk).contains("event: desk"),
        "{chunk:?}"
    );

    // Only the admin may revoke.
    let r = client
        .delete(format!("{base}/admin/experts/nora/tokens"))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = client
        .delete(format!("{base}/admin/experts/nora/tokens"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body, json!({"expert": "nora", "revoked": 2}));

    assert_eq!(me(&first).await.unwrap().status(), 403);
    assert_eq!(me(&second).await.unwrap().status(), 403);
    assert_eq!(
        me(&other).await.unwrap().status(),
        200,
        "other experts keep theirs"
    );
    // The open stream ends (the body finishes) within the recheck interval.
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Some(_chunk) = stream.chunk().await.unwrap() {}
    })
    .await;
    assert!(
        ended.is_ok(),
        "the event stream was still open 10 s after revoking"
    );
    // A new token works again.
    let fresh = state.store.issue_expert_token("nora").await.unwrap();
    assert_eq!(me(&fresh).await.unwrap().status(), 200);
}
