//! The outbox against a local stub of the Twilio Messages API (a real HTTP server on 127.0.0.1 that
//! records requests and answers as each test scripts it): success, retries on 500 and slow replies,
//! no retry on 4xx, error 21610 opting the number out, opt-outs checked at send time, the rate
//! limit, and a restart that resumes the queue.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use concierge::clock::SystemClock;
use concierge::config::Secret;
use concierge::outbound::{self, OutState, Retry, TwilioSender, WorkerSettings};
use concierge::store::Store;
use jiff::SignedDuration;
use tokio::sync::Notify;

const ACCOUNT: &str = "AC00000000000000000000000000000001";

/// How the stub answers the next request.
#[derive(Clone, Copy, Debug)]
enum Answer {
    Created,
    OptedOut,
    BadNumber,
    ServerError,
    Slow,
}

/// A request the stub received: when, its Authorization header, its form.
type Received = (Instant, String, Vec<(String, String)>);

#[derive(Clone, Default)]
struct Stub {
    script: Arc<Mutex<VecDeque<Answer>>>,
    received: Arc<Mutex<Vec<Received>>>,
}

async fn messages(State(stub): State<Stub>, headers: HeaderMap, body: String) -> Response {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    stub.received
        .lock()
        .unwrap()
        .push((Instant::now(), auth, form));
    let answer = stub
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(Answer::Created);
    let n = stub.received.lock().unwrap().len();
    match answer {
        Answer::Created => (StatusCode::CREATED, axum::Json(serde_json::json!({"sid": format!("SM{n:032}"), "status": "queued"}))).into_response(),
        Answer::OptedOut => (StatusCode::BAD_REQUEST, axum::Json(serde_json::json!({"code": 21610, "message": "Attempt to send to unsubscribed recipient", "status": 400}))).into_response(),
        Answer::BadNumber => (StatusCode::BAD_REQUEST, axum::Json(serde_json::json!({"code": 21211, "message": "Invalid 'To' Phone Number", "status": 400}))).into_response(),
        Answer::ServerError => (StatusCode::INTERNAL_SERVER_ERROR, "oops").into_response(),
        Answer::Slow => {
            tokio::time::sleep(Duration::from_millis(800)).await;
            (StatusCode::CREATED, axum::Json(serde_json::json!({"sid": "SMslow", "status": "queued"}))).into_response()
        }
    }
}

async fn stub(script: &[Answer]) -> (String, Stub) {
    let stub = Stub::default();
    stub.script.lock().unwrap().extend(script.iter().copied());
    let app = axum::Router::new()
        .route(
            "/2010-04-01/Accounts/{account}/Messages.json",
            post(messages),
        )
        .with_state(stub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, stub)
}

fn sender(base: &str) -> Arc<TwilioSender> {
    Arc::new(
        TwilioSender::new(
            base,
            ACCOUNT,
            Secret::new("stub-token"),
            "+15550009999",
            Some("https://concierge.example.org/sms/status".into()),
            Duration::from_millis(300),
        )
        .unwrap(),
    )
}

fn settings(rate: f64) -> WorkerSettings {
    WorkerSettings {
        retry: Retry {
            base: SignedDuration::from_millis(50),
            max: SignedDuration::from_millis(200),
            max_attempts: 4,
        },
        rate_per_second: rate,
        poll: Duration::from_millis(20),
        failures: None,
    }
}

fn start_worker(
    store: &Store,
    base: &str,
    rate: f64,
) -> (Arc<Notify>, tokio::task::JoinHandle<()>) {
    let wake = Arc::new(Notify::new());
    let task = tokio::spawn(outbound::run(
        store.clone(),
        sender(base),
        Arc::new(SystemClock),
        wake.clone(),
        settings(rate),
    ));
    (wake, task)
}

/// Waits until message `id` leaves the queue; returns its final state.
async fn settled(store: &Store, id: u64) -> concierge::outbound::Outgoing {
    for _ in 0..150 {
        if let Some(m) = store.outgoing(id).unwrap() {
            if m.state != OutState::Queued {
                return m;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "message {id} still queued after 3 s: {:?}",
        store.outgoing(id).unwrap()
    );
}

fn now() -> jiff::Timestamp {
    jiff::Timestamp::now()
}

#[tokio::test]
async fn a_message_is_sent_with_the_fields_twilio_expects() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), 8 << 20).unwrap();
    let (base, stub) = stub(&[Answer::Created]).await;
    let (wake, worker) = start_worker(&store, &base, 50.0);
    let id = outbound::enqueue(
        &store,
        &wake,
        "+15551230001",
        "Your expert says: hi & welcome",
        "expert reply",
        now(),
    )
    .await
    .unwrap();
    let m = settled(&store, id).await;
    assert_eq!(
        m.state,
        OutState::Sent {
            sid: format!("SM{:032}", 1)
        }
    );
    assert_eq!(m.attempts, 1);
    let received = stub.received.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    let (_, auth, form) = &received[0];
    use base64::Engine;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT}:stub-token"))
    );
    assert_eq!(auth, &expected);
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("To"), Some("+15551230001"));
    assert_eq!(get("From"), Some("+15550009999"));
    assert_eq!(get("Body"), Some("Your expert says: hi & welcome"));
    assert_eq!(
        get("StatusCallback"),
        Some("https://concierge.example.org/sms/status")
    );
    // The delivery status starts as queued, for the callbacks to move on.
    assert_eq!(
        store
            .delivery(&format!("SM{:032}", 1))
            .unwrap()
            .unwrap()
            .status,
        "queued"
    );
    worker.abort();
}

#[tokio::test]
async fn transient_failures_are_retried_and_4xx_are_final() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), 8 << 20).unwrap();
    let (base, stub) = stub(&[
        Answer::ServerError,
        Answer::Slow,
        Answer::Created,
        Answer::BadNumber,
    ])
    .await;
    let (wake, worker) = start_worker(&store, &base, 50.0);
    let first = outbound::enqueue(&store, &wake, "+15551230001", "one", "test", now())
        .await
        .unwrap();
    let m = settled(&store, first).await;
    assert!(matches!(m.state, OutState::Sent { .. }), "{m:?}");
    assert_eq!(m.attempts, 3, "500, then a timeout, then 201");
    let second = outbound::enqueue(&store, &wake, "+15551230002", "two", "test", now())
        .await
        .unwrap();
    let m = settled(&store, second).await;
    assert!(
        matches!(&m.state, OutState::Failed { error } if error.contains("21211")),
        "{m:?}"
    );
    assert_eq!(m.attempts, 1, "no retry on 4xx");
    assert!(!store.is_opted_out("+15551230002").unwrap());
    assert_eq!(stub.received.lock().unwrap().len(), 4);
    worker.abort();
}

#[tokio::test]
async fn error_21610_opts_out_and_opted_out_numbers_are_never_sent_to() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), 8 << 20).unwrap();
    let (base, stub) = stub(&[Answer::OptedOut]).await;
    let (wake, worker) = start_worker(&store, &base, 50.0);
    let id = outbound::enqueue(&store, &wake, "+15551230003", "hello", "test", now())
        .await
        .unwrap();
    assert!(matches!(
        settled(&store, id).await.state,
        OutState::Failed { .. }
    ));
    assert!(store.is_opted_out("+15551230003").unwrap());
    // Queued while opted out: checked at send time, never sent.
    let id = outbound::enqueue(&store, &wake, "+15551230003", "again", "test", now())
        .await
        .unwrap();
    assert_eq!(settled(&store, id).await.state, OutState::Suppressed);
    assert_eq!(stub.received.lock().unwrap().len(), 1);
    worker.abort();
}

#[tokio::test]
async fn sends_are_spaced_to_the_rate() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), 8 << 20).unwrap();
    let (base, stub) = stub(&[]).await;
    let wake = Notify::new();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            outbound::enqueue(
                &store,
                &wake,
                &format!("+1555123100{i}"),
                "hi",
                "test",
                now(),
            )
            .await
            .unwrap(),
        );
    }
    let (_, worker) = start_worker(&store, &base, 10.0);
    for id in &ids {
        settled(&store, *id).await;
    }
    let times: Vec<Instant> = stub.received.lock().unwrap().iter().map(|r| r.0).collect();
    assert_eq!(times.len(), 5);
    for pair in times.windows(2) {
        let gap = pair[1].duration_since(pair[0]);
        assert!(
            gap >= Duration::from_millis(90),
            "sends {gap:?} apart at 10 per second"
        );
    }
    worker.abort();
}

#[tokio::test]
async fn a_restart_resumes_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let (base, stub) = stub(&[]).await;
    let id = {
        let store = Store::open(dir.path(), 8 << 20).unwrap();
        let wake = Notify::new();
        // Stored, but no worker runs: the service stops before sending.
        outbound::enqueue(
            &store,
            &wake,
            "+15551230009",
            "after the restart",
            "test",
            now(),
        )
        .await
        .unwrap()
    };
    let store = Store::open(dir.path(), 8 << 20).unwrap();
    assert_eq!(store.outgoing(id).unwrap().unwrap().state, OutState::Queued);
    let (_, worker) = start_worker(&store, &base, 50.0);
    assert!(matches!(
        settled(&store, id).await.state,
        OutState::Sent { .. }
    ));
    assert_eq!(stub.received.lock().unwrap().len(), 1);
    worker.abort();
}
