//! The web chat's JSON transport over a real port: sessions with unguessable tokens, answers from
//! the same engine as SMS (not cut to SMS segments), idempotent retries, history to resume, limits,
//! and expert messages showing up in the history.

use std::path::Path;
use std::sync::Arc;

use concierge::clock::FixedClock;
use concierge::config::{Origin, RawConfig};
use concierge::state::AppState;
use concierge::store::Store;
use serde_json::{Value, json};

async fn server() -> (String, AppState, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = RawConfig::default()
        .validate(Origin {
            file: None,
            env: vec![],
        })
        .unwrap();
    config.data_dir = dir.path().to_path_buf();
    config.routing_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/routing.toml");
    let store = Store::open(dir.path(), 8 << 20).unwrap();
    let clock = Arc::new(FixedClock::new("2026-06-09T17:05:00Z".parse().unwrap()));
    let (state, _) = AppState::open(config, store, clock).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(concierge::http::run(
        listener,
        state.clone(),
        std::future::pending(),
    ));
    (base, state, dir)
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
    let text = reply["replies"][0].as_str().unwrap();
    // All seven sessions of the next slot at once: the web is not cut to SMS segments.
    assert!(text.starts_with("Next up:\n1) 10:30 Main Stage"), "{text}");
    assert!(text.contains("7) 10:30 Presidio Lab"), "{text}");
    assert!(!text.contains("MORE"), "{text}");

    // A retry of the same message id gets the same answer and does not run twice.
    let (_, again) = post(
        &base,
        "/chat/messages",
        json!({"token": token, "id": "m1", "text": "whats next?"}),
    )
    .await;
    assert_eq!(again["replies"], reply["replies"]);
    assert_eq!(again["duplicate"], true);
    let (_, saved) = post(
        &base,
        "/chat/messages",
        json!({"token": token, "id": "m2", "text": "2"}),
    )
    .await;
    assert!(
        saved["replies"][0]
            .as_str()
            .unwrap()
            .starts_with("Saved to your agenda: Scaling WebRTC")
    );

    // History, to resume after a reload.
    let history: Value = reqwest::get(format!("{base}/chat/messages?token={token}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let messages = history["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 4);
    assert_eq!(messages[0]["from"], "attendee");
    assert_eq!(messages[1]["from"], "concierge");
    let later: Value = reqwest::get(format!("{base}/chat/messages?token={token}&after=3"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(later["messages"].as_array().unwrap().len(), 1);
    assert_eq!(later["messages"][0]["n"], 4);

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
        reply["replies"][0]
            .as_str()
            .unwrap()
            .contains("finding a video expert")
    );
    let key = concierge::http::chat::conversation_key(&token).unwrap();
    let task = state.store.attendee(&key).unwrap().handoff.unwrap();
    assert_eq!(state.desk.task(task).unwrap().channel, "web");
    concierge::outbound::to_attendee(
        &state.store,
        &state.outbox_wake,
        &key,
        "Hi, Nora here.",
        "expert",
        state.clock.now(),
    )
    .await
    .unwrap();
    let history: Value = reqwest::get(format!("{base}/chat/messages?token={token}&after=6"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(history["messages"][0]["text"], "Hi, Nora here.");
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
        reply["replies"][0]
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
        reply["replies"][0]
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
        state.clock.now(),
    )
    .await
    .unwrap();
    let push = next_frame(&mut ws).await;
    assert_eq!(
        push,
        json!({"type": "push", "text": "Hello from an expert"})
    );

    // A bad token is refused before the upgrade.
    let bad = tokio_tungstenite::connect_async(format!(
        "{}/chat/ws?token=nope",
        base.replace("http://", "ws://")
    ))
    .await;
    assert!(bad.is_err());
}
