//! End to end over HTTP: an attendee's SMS asks for a video expert; the expert signs in with a
//! token, goes available, accepts and replies; the reply reaches a local stub of the Twilio API; the
//! attendee's next SMS reaches the expert's conversation; completing with a lead returns the
//! attendee to the bot and the lead is exported (with consent only).

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use concierge::clock::FixedClock;
use concierge::config::{Origin, RawConfig, Secret, TwilioConfig};
use concierge::sms::signature;
use concierge::state::AppState;
use concierge::store::Store;
use serde_json::{Value, json};

const TOKEN: &str = "twilio-test-auth-token";
const ACCOUNT: &str = "AC00000000000000000000000000000001";
const PUBLIC: &str = "https://concierge.example.org";
const ADMIN: &str = "admin-token-0123456789abcdef";
const FROM: &str = "+15551239999";

struct World {
    base: String,
    client: reqwest::Client,
    state: AppState,
    sent: common::Sent,
    _dir: tempfile::TempDir,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let (api, sent) = common::twilio_stub().await;
    let mut config = RawConfig::default()
        .validate(Origin {
            file: None,
            env: vec![],
        })
        .unwrap();
    config.data_dir = dir.path().to_path_buf();
    config.routing_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/routing.toml");
    config.admin_token = Some(Secret::new(ADMIN));
    config.public_url = Some(PUBLIC.parse().unwrap());
    config.sms.send_rate_per_second = 100.0;
    config.twilio = Some(TwilioConfig {
        account_sid: ACCOUNT.into(),
        auth_token: Secret::new(TOKEN),
        sender: "+15550009999".into(),
        api_base: api.clone(),
        timeout_secs: 2,
    });
    let store = Store::open(dir.path(), 8 << 20).unwrap();
    let clock = Arc::new(FixedClock::new("2026-06-09T20:00:00Z".parse().unwrap()));
    let (state, _) = AppState::open(config, store, clock).await.unwrap();
    let sender = concierge::outbound::TwilioSender::new(
        &api,
        ACCOUNT,
        Secret::new(TOKEN),
        "+15550009999",
        None,
        Duration::from_secs(2),
    )
    .unwrap();
    tokio::spawn(concierge::outbound::run(
        state.store.clone(),
        Arc::new(sender),
        Arc::new(concierge::clock::SystemClock),
        state.outbox_wake.clone(),
        concierge::outbound::WorkerSettings {
            retry: concierge::outbound::Retry::default(),
            rate_per_second: 100.0,
            poll: Duration::from_millis(20),
            failures: None,
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    // On two connection threads, as `serve` answers requests (`http::threads`).
    tokio::spawn(concierge::http::run_on(
        listener,
        state.clone(),
        std::future::pending(),
        concierge::http::threads::ConnectionThreads::start(2).unwrap(),
    ));
    World {
        base,
        client: reqwest::Client::new(),
        state,
        sent,
        _dir: dir,
    }
}

impl World {
    async fn sms(&self, sid: &str, body: &str) -> String {
        let pairs: Vec<(String, String)> = [
            ("MessageSid", sid),
            ("AccountSid", ACCOUNT),
            ("From", FROM),
            ("To", "+15550009999"),
            ("Body", body),
            ("NumMedia", "0"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let sig = signature::compute(TOKEN, &format!("{PUBLIC}/sms"), &pairs);
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&pairs)
            .finish();
        let r = self
            .client
            .post(format!("{}/sms", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-twilio-signature", sig)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.text().await.unwrap()
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut r = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Waits until the stub has received `n` messages; returns their bodies.
    async fn sent_bodies(&self, n: usize) -> Vec<String> {
        for _ in 0..150 {
            let sent = self.sent.lock().unwrap().clone();
            if sent.len() >= n {
                return sent
                    .iter()
                    .map(|f| f.iter().find(|(k, _)| k == "Body").unwrap().1.clone())
                    .collect();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "the stub got {} messages, expected {n}",
            self.sent.lock().unwrap().len()
        );
    }
}

#[tokio::test]
async fn an_attendee_reaches_a_video_expert_and_comes_back() {
    let w = world().await;
    use reqwest::Method;

    // The expert's token, from the admin API; without it, 401; with a wrong one, 403.
    let (status, issued) = w
        .call(Method::POST, "/admin/experts/nora/token", ADMIN, None)
        .await;
    assert_eq!(status, 200, "{issued}");
    let nora = issued["token"].as_str().unwrap().to_string();
    let (status, _) = w.call(Method::GET, "/expert/me", "not-a-token", None).await;
    assert_eq!(status, 403);
    let response = w
        .client
        .get(format!("{}/expert/me", w.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    // The attendee asks; Nora is offline, so they are told nobody is online yet.
    let reply = w.sms("SM9000", "can a video expert help me?").await;
    assert!(reply.contains("finding a video expert"), "{reply}");

    // Nora goes available: the task is offered to her.
    let (status, _) = w
        .call(
            Method::PUT,
            "/expert/status",
            &nora,
            Some(json!({"status": "available"})),
        )
        .await;
    assert_eq!(status, 200);
    let (_, me) = w.call(Method::GET, "/expert/me", &nora, None).await;
    let offers = me["offers"].as_array().unwrap();
    assert_eq!(offers.len(), 1, "{me}");
    let task = offers[0]["id"].as_u64().unwrap();
    assert_eq!(offers[0]["question"], "can a video expert help me?");

    // Someone else cannot accept it; Nora can.
    let (_, other) = w
        .call(Method::POST, "/admin/experts/mateo/token", ADMIN, None)
        .await;
    let mateo = other["token"].as_str().unwrap().to_string();
    let (status, _) = w
        .call(
            Method::POST,
            &format!("/expert/tasks/{task}/accept"),
            &mateo,
            None,
        )
        .await;
    assert_eq!(status, 409);
    let (status, _) = w
        .call(
            Method::POST,
            &format!("/expert/tasks/{task}/accept"),
            &nora,
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = w
        .call(
            Method::POST,
            &format!("/expert/tasks/{task}/messages"),
            &nora,
            Some(json!({"text": "Hi! Happy to help with video. What are you building?"})),
        )
        .await;
    assert_eq!(status, 200);
    let bodies = w.sent_bodies(2).await;
    assert_eq!(
        bodies[0],
        "You're now talking with Nora Whitfield. Reply here; text BOT to come back to me."
    );
    assert_eq!(
        bodies[1],
        "Hi! Happy to help with video. What are you building?"
    );
    assert!(
        w.sent
            .lock()
            .unwrap()
            .iter()
            .all(|f| f.iter().any(|(k, v)| k == "To" && v == FROM))
    );

    // The attendee's next SMS goes to the conversation, with no bot reply.
    let reply = w.sms("SM9001", "a telehealth app with webrtc").await;
    assert!(reply.ends_with("<Response/>"), "{reply}");
    let (_, me) = w.call(Method::GET, "/expert/me", &nora, None).await;
    let messages = &me["conversations"][0]["messages"];
    assert_eq!(messages[0][1], "a telehealth app with webrtc", "{me}");

    // Completing with a lead: the attendee is told and is back with the bot.
    let lead = json!({"notes": "wants SFU sizing", "lead": {"name": "Sam Lee", "company": "=Acme, Inc", "email": "sam@example.org", "interest": "video", "consent": true}});
    let (status, done) = w
        .call(
            Method::POST,
            &format!("/expert/tasks/{task}/complete"),
            &nora,
            Some(lead),
        )
        .await;
    assert_eq!(status, 200, "{done}");
    let bodies = w.sent_bodies(3).await;
    assert!(bodies[2].starts_with("Your conversation with the expert has ended"));
    let reply = w.sms("SM9002", "whats next").await;
    assert!(reply.contains("Next up:"), "{reply}");

    // A second lead without consent is not exported.
    w.sms("SM9003", "talk to a video expert").await;
    let (_, me) = w.call(Method::GET, "/expert/me", &nora, None).await;
    let task2 = me["offers"][0]["id"].as_u64().unwrap();
    w.call(
        Method::POST,
        &format!("/expert/tasks/{task2}/accept"),
        &nora,
        None,
    )
    .await;
    let (status, _) = w
        .call(
            Method::POST,
            &format!("/expert/tasks/{task2}/complete"),
            &nora,
            Some(
                json!({"lead": {"name": "No Consent", "email": "x@example.org", "consent": false}}),
            ),
        )
        .await;
    assert_eq!(status, 200);
    let csv = w
        .client
        .get(format!("{}/admin/leads.csv", w.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert_eq!(lines[0], concierge::store::Lead::CSV_HEADER);
    assert!(
        lines[1].contains("nora")
            && lines[1].contains("Sam Lee")
            && lines[1].contains("\"'=Acme, Inc\""),
        "{csv}"
    );
    assert_eq!(w.state.store.leads().unwrap().len(), 2);

    // An operator takes Nora offline; the admin list shows it.
    let (status, _) = w
        .call(
            Method::PUT,
            "/admin/experts/nora/status",
            ADMIN,
            Some(json!({"status": "offline"})),
        )
        .await;
    assert_eq!(status, 200);
    let (_, list) = w.call(Method::GET, "/admin/experts", ADMIN, None).await;
    let nora_row = list["experts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["expert"]["id"] == "nora")
        .unwrap();
    assert_eq!(nora_row["expert"]["status"], "offline");
    let (status, _) = w
        .call(
            Method::PUT,
            "/admin/experts/nobody/status",
            ADMIN,
            Some(json!({"status": "offline"})),
        )
        .await;
    assert_eq!(status, 404);

    // Queue statistics for the console.
    let (status, stats) = w.call(Method::GET, "/expert/queue", &nora, None).await;
    assert_eq!(status, 200);
    assert!(stats["queues"].as_array().unwrap().len() == 2, "{stats}");
}

#[tokio::test]
async fn the_console_gets_offers_and_messages_live() {
    let w = world().await;
    use reqwest::Method;
    let (_, issued) = w
        .call(Method::POST, "/admin/experts/nora/token", ADMIN, None)
        .await;
    let nora = issued["token"].as_str().unwrap().to_string();
    w.call(
        Method::PUT,
        "/expert/status",
        &nora,
        Some(json!({"status": "available"})),
    )
    .await;
    let mut events = w
        .client
        .get(format!("{}/expert/events", w.base))
        .bearer_auth(&nora)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    assert!(
        events.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );

    w.sms("SM9100", "can a video expert help me").await;
    w.sms("SM9101", "it's about recording").await;
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while !(seen.contains("\"offered\"") && seen.contains("it's about recording")) {
        let chunk = tokio::time::timeout_at(deadline, events.chunk())
            .await
            .expect("events within 3 s")
            .unwrap()
            .expect("the stream stays open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("event: desk"), "{seen}");
    assert!(seen.contains("\"expert\":\"nora\""), "{seen}");
    // Another expert's stream carries none of it.
    let (_, other) = w
        .call(Method::POST, "/admin/experts/hugo/token", ADMIN, None)
        .await;
    let hugo = other["token"].as_str().unwrap().to_string();
    let mut theirs = w
        .client
        .get(format!("{}/expert/events", w.base))
        .bearer_auth(&hugo)
        .send()
        .await
        .unwrap();
    w.sms("SM9102", "anyone there?").await;
    let quiet = tokio::time::timeout(Duration::from_millis(300), theirs.chunk()).await;
    assert!(quiet.is_err(), "hugo's stream got {quiet:?}");
}
