//! The web chat's JSON transport over a real port: sessions with unguessable tokens, answers from
//! the same engine as SMS (not cut to SMS segments), idempotent retries, history to resume, limits,
//! and expert messages showing up in the history.

mod common;

use concierge::config::RawConfig;
use concierge::state::AppState;
use serde_json::{Value, json};

async fn server() -> (String, AppState, tempfile::TempDir) {
    server_with(RawConfig::default()).await
}

async fn server_with(raw: RawConfig) -> (String, AppState, tempfile::TempDir) {
    common::serve(raw, "2026-06-09T17:05:00Z").await
}

async fn post(base: &str, path: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_web_conversation() {
    let (base, state, _dir) = server().await;
    let (status, session) = post(&base, "/chat/sessions", json!({})).await;
    assert_eq!(status, 200);
    let token = session["token"].as_str().unwrap().to_string();
    assert_eq!(token.len(), 64);
    let (_, other) = post(&base, "/chat/sessions", json!({})).await;
    assert_ne!(other["token"], session["token"], "tokens are random");

    let (status, reply) = post(
        &base,
        "/chat/messages",
        json!({"token": token, "id": "m1", "text": "whats next?"}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let messages = reply["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{reply}");
    assert_eq!(messages[0]["n"], 1);
    assert_eq!(messages[0]["from"], "attendee");
    assert_eq!(messages[0]["text"], "whats next?");
    assert_eq!(messages[1]["n"], 2);
    // The reply's own words, and all seven sessions of the next slot as cards (not numbered
    // lines, and not cut to SMS segments).
    assert_eq!(messages[1]["text"], "Next up:", "{reply}");
    let cards = messages[1]["sessions"].as_array().unwrap();
    assert_eq!(cards.len(), 7, "{reply}");
    assert_eq!(cards[0]["room"], "Main Stage");
    assert_eq!(cards[0]["time"], "10:30–11:15", "{}", cards[0]);
    assert_eq!(cards[0]["time_zone"], "America/Los_Angeles");
    assert_eq!(cards[0]["saved"], false);
    assert_eq!(cards[6]["room"], "Presidio Lab");
    assert_eq!(reply["state"], json!({"mode": "bot"}));
    assert_eq!(reply["quick_replies"][0], "What's next?");

    // A retry of the same message id gets the same answer and does not run twice.
    let (_, again) = post(
        &base,
        "/chat/messages",
        json!({"token": token, "id": "m1", "text": "whats next?"}),
    )
    .await;
    assert_eq!(again["duplicate"], true);
    assert_eq!(
        again["messages"],
        json!([]),
        "a duplicate's messages are in the history"
    );
    let (_, saved) = post(
        &base,
        "/chat/messages",
        json!({"token": token, "id": "m2", "text": "2"}),
    )
    .await;
    let text = saved["messages"][1]["text"].as_str().unwrap();
    assert!(
        text.starts_with("Saved to your agenda: Scaling WebRTC"),
        "{text}"
    );
    assert_eq!(saved["messages"][1]["sessions"][0]["saved"], true);
    // The card's button saves by id, whatever the text says.
    let third = cards[2]["id"].as_str().unwrap();
    let (status, pressed) = post(
        &base,
        "/chat/messages",
        json!({"token": token, "id": "m2b", "text": "Add to my agenda", "save": third}),
    )
    .await;
    assert_eq!(status, 200, "{pressed}");
    assert_eq!(pressed["messages"][1]["sessions"][0]["id"], third);
    assert_eq!(pressed["messages"][1]["sessions"][0]["saved"], true);
    // The side panel's agenda: both, in time order, each overlapping the other.
    let agenda = pressed["agenda"].as_array().unwrap();
    assert_eq!(agenda.len(), 2, "{pressed}");
    assert_eq!(agenda[0]["overlaps"], json!([agenda[1]["title"]]));
    // The panel's Remove button, by id.
    let (status, removed) = post(
        &base,
        "/chat/messages",
        json!({"token": token, "id": "m2r", "text": "Remove", "remove": third}),
    )
    .await;
    assert_eq!(status, 200, "{removed}");
    assert!(
        removed["messages"][1]["text"]
            .as_str()
            .unwrap()
            .starts_with("Removed from your agenda")
    );
    assert_eq!(removed["agenda"].as_array().unwrap().len(), 1);
    post(
        &base,
        "/chat/messages",
        json!({"token": token, "id": "m2s", "text": "Add", "save": third}),
    )
    .await;
    let (status, _) = post(
        &base,
        "/chat/messages",
        json!({"token": token, "id": "m2c", "text": "Add", "save": "no-such-session"}),
    )
    .await;
    assert_eq!(status, 400);

    // History, to resume after a reload.
    let history: Value = reqwest::get(format!("{base}/chat/messages?token={token}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let messages = history["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 10);
    assert_eq!(messages[0]["from"], "attendee");
    assert_eq!(messages[1]["from"], "concierge");
    assert_eq!(messages[1]["sessions"].as_array().unwrap().len(), 7);
    assert_eq!(
        messages[1]["sessions"][1]["saved"], true,
        "cards show what is saved now"
    );
    let later: Value = reqwest::get(format!("{base}/chat/messages?token={token}&after=9"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(later["messages"].as_array().unwrap().len(), 1);
    assert_eq!(later["messages"][0]["n"], 10);

    // Limits and garbage: 400s.
    let long = "a".repeat(1001);
    for body in [
        json!({"token": "nope", "id": "x", "text": "hi"}),
        json!({"token": token, "id": "x", "text": long}),
        json!({"token": token, "id": "x", "text": "   "}),
        json!({"token": token, "id": "", "text": "hi"}),
        json!({"token": token}),
    ] {
        let (status, _) = post(&base, "/chat/messages", body.clone()).await;
        assert_eq!(status, 400, "{body}");
    }

    // A hand-off from the web; the expert's message shows in the history.
    let (_, reply) = post(
        &base,
        "/chat/messages",
        json!({"token": token, "id": "m3", "text": "can a video expert help me"}),
    )
    .await;
    assert!(
        reply["messages"][1]["text"]
            .as_str()
            .unwrap()
            .contains("finding a video expert")
    );
    assert_eq!(reply["state"]["mode"], "waiting", "{reply}");
    assert_eq!(reply["state"]["position"], 1, "{reply}");
    assert_eq!(reply["quick_replies"], json!(["Back to the bot"]));
    let key = concierge::http::chat::conversation_key(&token).unwrap();
    let task = state.store.attendee(&key).unwrap().handoff.unwrap();
    assert_eq!(state.desk.task(task).unwrap().channel, "web");
    concierge::outbound::to_attendee(
        &state.store,
        &state.outbox_wake,
        &key,
        "Hi, Nora here.",
        "expert",
        Some("Nora"),
        state.clock.now(),
    )
    .await
    .unwrap();
    let history: Value = reqwest::get(format!("{base}/chat/messages?token={token}&after=12"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(history["messages"][0]["text"], "Hi, Nora here.");
    assert_eq!(history["messages"][0]["from"], "expert");
    assert_eq!(history["messages"][0]["by"], "Nora");
    assert_eq!(history["messages"][0]["n"], 13);
    // Nothing was queued for SMS.
    assert!(
        state
            .store
            .due_outgoing(jiff::Timestamp::MAX, 10)
            .unwrap()
            .is_empty()
    );
}

/// Sends a frame and waits for the next text frame.
async fn ws_call(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    frame: Value,
) -> Value {
    use futures_util::SinkExt;
    ws.send(tokio_tungstenite::tungstenite::Message::Text(
        frame.to_string().into(),
    ))
    .await
    .unwrap();
    next_frame(ws).await
}

async fn next_frame(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> Value {
    use futures_util::StreamExt;
    loop {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(3), ws.next())
            .await
            .expect("a frame within 3 s")
            .unwrap()
            .unwrap();
        if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

#[tokio::test]
async fn the_websocket_answers_resumes_and_pushes() {
    let (base, state, _dir) = server().await;
    let (_, session) = post(&base, "/chat/sessions", json!({})).await;
    let token = session["token"].as_str().unwrap().to_string();
    let url = format!("{}/chat/ws?token={token}", base.replace("http://", "ws://"));
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();

    let reply = ws_call(
        &mut ws,
        json!({"type": "message", "id": "w1", "text": "hi"}),
    )
    .await;
    assert_eq!(reply["type"], "reply");
    assert_eq!(reply["id"], "w1");
    assert!(
        reply["messages"][1]["text"]
            .as_str()
            .unwrap()
            .starts_with("Hi! I'm the Pacific Dev Summit 2026 concierge")
    );
    let bad = ws_call(&mut ws, json!({"type": "dance"})).await;
    assert_eq!(bad["type"], "error");
    let empty = ws_call(&mut ws, json!({"type": "message", "id": "w2", "text": ""})).await;
    assert_eq!(empty["type"], "error");
    assert_eq!(empty["message"], "text is empty");

    // The connection drops; a new one resumes the same conversation, nothing lost or doubled.
    drop(ws);
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let again = ws_call(
        &mut ws,
        json!({"type": "message", "id": "w1", "text": "hi"}),
    )
    .await;
    assert_eq!(again["duplicate"], true);
    let history = ws_call(&mut ws, json!({"type": "resume", "after": 0})).await;
    assert_eq!(history["type"], "history");
    assert_eq!(history["messages"].as_array().unwrap().len(), 2);

    // An expert's message is pushed to the open socket.
    let reply = ws_call(
        &mut ws,
        json!({"type": "message", "id": "w3", "text": "talk to an expert"}),
    )
    .await;
    assert!(
        reply["messages"][1]["text"]
            .as_str()
            .unwrap()
            .contains("finding an expert"),
        "{reply}"
    );
    let key = concierge::http::chat::conversation_key(&token).unwrap();
    concierge::outbound::to_attendee_live(
        &state,
        &key,
        "Hello from an expert",
        "expert",
        Some("Nora"),
        state.clock.now(),
    )
    .await
    .unwrap();
    let push = next_frame(&mut ws).await;
    assert_eq!(push["type"], "push", "{push}");
    assert_eq!(push["message"]["text"], "Hello from an expert");
    assert_eq!(push["message"]["from"], "expert");
    assert_eq!(push["message"]["n"], 5, "numbered after the four before it");
    assert_eq!(push["state"]["mode"], "waiting");

    // A bad token is refused before the upgrade.
    let bad = tokio_tungstenite::connect_async(format!(
        "{}/chat/ws?token=nope",
        base.replace("http://", "ws://")
    ))
    .await;
    assert!(bad.is_err());
}

#[tokio::test]
async fn rate_limits_per_conversation_and_per_address() {
    let raw = RawConfig {
        web: Some(concierge::config::RawWeb {
            messages_per_minute: Some(1),
            messages_burst: Some(3),
            address_requests_per_minute: Some(1),
            address_requests_burst: Some(12),
            trusted_proxies: None,
        }),
        ..RawConfig::default()
    };
    let (base, _state, _dir) = server_with(raw).await;
    let (_, a) = post(&base, "/chat/sessions", json!({})).await;
    let (_, b) = post(&base, "/chat/sessions", json!({})).await;
    let (a, b) = (a["token"].as_str().unwrap(), b["token"].as_str().unwrap());
    for i in 0..3 {
        let (status, _) = post(
            &base,
            "/chat/messages",
            json!({"token": a, "id": format!("a{i}"), "text": "hi"}),
        )
        .await;
        assert_eq!(status, 200);
    }
    let over = reqwest::Client::new()
        .post(format!("{base}/chat/messages"))
        .json(&json!({"token": a, "id": "a3", "text": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(over.status(), 429);
    let retry: u64 = over.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=61).contains(&retry), "{retry}");
    // A retry of a message already answered is not refused; another conversation is unaffected.
    let (status, again) = post(
        &base,
        "/chat/messages",
        json!({"token": a, "id": "a1", "text": "hi"}),
    )
    .await;
    assert_eq!((status, &again["duplicate"]), (200, &json!(true)));
    let (status, _) = post(
        &base,
        "/chat/messages",
        json!({"token": b, "id": "b0", "text": "hi"}),
    )
    .await;
    assert_eq!(status, 200);
    // The address: 12 at once, counting everything above (2 sessions + 6 messages), then 429
    // for new conversations from it too.
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(post(&base, "/chat/sessions", json!({})).await.0);
    }
    assert_eq!(statuses, [200, 200, 200, 200, 429, 429]);
}

/// New conversations from `from`, through a proxy that says so in X-Forwarded-For.
async fn new_sessions_via_proxy(base: &str, from: &str, n: usize) -> Vec<u16> {
    let mut statuses = Vec::new();
    for _ in 0..n {
        let r = reqwest::Client::new()
            .post(format!("{base}/chat/sessions"))
            .header("x-forwarded-for", from)
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    statuses
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_limit() {
    let web = |trusted: Option<Vec<String>>| RawConfig {
        web: Some(concierge::config::RawWeb {
            address_requests_per_minute: Some(1),
            address_requests_burst: Some(2),
            trusted_proxies: trusted,
            ..Default::default()
        }),
        ..RawConfig::default()
    };
    // The test's requests come from 127.0.0.1, the proxy.
    let (base, _state, _dir) = server_with(web(Some(vec!["127.0.0.0/8".into()]))).await;
    assert_eq!(
        new_sessions_via_proxy(&base, "203.0.113.1", 3).await,
        [200, 200, 429]
    );
    assert_eq!(
        new_sessions_via_proxy(&base, "203.0.113.2", 2).await,
        [200, 200]
    );
    // A client cannot pick a fresh address by writing the header itself: the proxy appends the
    // real one, and that is the one counted.
    assert_eq!(
        new_sessions_via_proxy(&base, "198.51.100.9, 203.0.113.1", 1).await,
        [429]
    );

    // Without trusted proxies the header is ignored: everyone is the proxy's address.
    let (base, _state, _dir) = server_with(web(None)).await;
    assert_eq!(
        new_sessions_via_proxy(&base, "203.0.113.1", 2).await,
        [200, 200]
    );
    assert_eq!(new_sessions_via_proxy(&base, "203.0.113.2", 1).await, [429]);
}

#[tokio::test]
async fn quick_replies_are_read_as_they_say() {
    let (base, state, _dir) = server().await;
    let (_, session) = post(&base, "/chat/sessions", json!({})).await;
    let token = session["token"].as_str().unwrap().to_string();
    for (lang_hint, expected) in [
        ("hello", ["next_session", "talk_to_expert", "my_agenda"]),
        ("hola", ["next_session", "talk_to_expert", "my_agenda"]),
    ] {
        let (_, reply) = post(
            &base,
            "/chat/messages",
            json!({"token": token, "id": format!("{lang_hint}-0"), "text": lang_hint}),
        )
        .await;
        let buttons: Vec<String> = reply["quick_replies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b.as_str().unwrap().to_string())
            .collect();
        assert_eq!(buttons.len(), 3, "{reply}");
        let matcher = state.intents.matcher();
        for (button, intent) in buttons.iter().zip(expected) {
            assert_eq!(&*matcher.classify(button).intent, intent, "{button}");
        }
    }
    // Waiting for an expert: the one button leaves the queue.
    let (_, reply) = post(
        &base,
        "/chat/messages",
        json!({"token": token, "id": "x", "text": "talk to an expert"}),
    )
    .await;
    let leave = reply["quick_replies"][0].as_str().unwrap().to_string();
    let (_, back) = post(
        &base,
        "/chat/messages",
        json!({"token": token, "id": "y", "text": leave}),
    )
    .await;
    assert_eq!(back["state"]["mode"], "bot", "{back}");
}
