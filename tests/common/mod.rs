//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use concierge::agenda::Agenda;
use concierge::import::{self, ImportOptions};
use jiff::Timestamp;

/// `../shared/data/schedules/NAME`: the real conference schedules beside the project.
pub fn schedule(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/schedules")
        .join(name);
    assert!(
        path.is_file(),
        "{} is missing: the tests read the real schedules from ../shared beside the project",
        path.display()
    );
    path
}

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

pub fn import_schedule(name: &str) -> Agenda {
    import::import_file(&schedule(name), &ImportOptions::default())
        .unwrap_or_else(|err| panic!("{err}"))
        .agenda
}

pub fn ts(s: &str) -> Timestamp {
    s.parse()
        .unwrap_or_else(|err| panic!("bad timestamp {s:?} in test: {err}"))
}

/// What the local Twilio API stub received: each request's form fields.
pub type Sent = std::sync::Arc<std::sync::Mutex<Vec<Vec<(String, String)>>>>;

/// A local stand-in for Twilio's Messages API on a loopback port: records each request's form
/// and answers 201 with a new `SM…` SID. Returns its base URL.
pub async fn twilio_stub() -> (String, Sent) {
    use axum::extract::State;
    use serde_json::{Value, json};
    let sent: Sent = Sent::default();
    async fn messages(
        State(sent): State<Sent>,
        body: String,
    ) -> (axum::http::StatusCode, axum::Json<Value>) {
        let form: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect();
        let n = {
            let mut s = sent.lock().unwrap();
            s.push(form);
            s.len()
        };
        (
            axum::http::StatusCode::CREATED,
            axum::Json(json!({"sid": format!("SM{n:032}"), "status": "queued"})),
        )
    }
    let app = axum::Router::new()
        .route(
            "/2010-04-01/Accounts/{account}/Messages.json",
            axum::routing::post(messages),
        )
        .with_state(sent.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, sent)
}

/// The service in-process on a loopback port: `raw` validated, a fresh data dir, the demo routing
/// file, a fixed clock at `now`. Returns the base URL, the state and the data dir (kept alive).
pub async fn serve(
    raw: concierge::config::RawConfig,
    now: &str,
) -> (String, concierge::state::AppState, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = raw
        .validate(concierge::config::Origin {
            file: None,
            env: vec![],
        })
        .unwrap();
    config.data_dir = dir.path().to_path_buf();
    config.routing_file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/routing.toml");
    let store = concierge::store::Store::open(dir.path(), 8 << 20).unwrap();
    let clock = std::sync::Arc::new(concierge::clock::FixedClock::new(now.parse().unwrap()));
    let (state, _) = concierge::state::AppState::open(config, store, clock)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    // On two connection threads, as `serve` answers requests (`http::threads`).
    tokio::spawn(concierge::http::run_on(
        listener,
        state.clone(),
        std::future::pending(),
        concierge::http::threads::ConnectionThreads::start(2).unwrap(),
    ));
    (base, state, dir)
}

/// A new web chat conversation on a running service: its token.
pub async fn new_chat(base: &str) -> String {
    let session: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/chat/sessions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    session["token"].as_str().unwrap().to_string()
}

/// `concierge serve` as a separate process on `127.0.0.1:port` over `data_dir`: signatures not
/// checked, no metrics listener, the repository's intents and routing file. The caller adds its
/// own environment and output handling, then spawns it.
pub fn serve_command(port: u16, data_dir: &std::path::Path) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_concierge"));
    command
        .args(["serve", "--dev-skip-signature", "--bind"])
        .arg(format!("127.0.0.1:{port}"))
        .env("CONCIERGE_DATA_DIR", data_dir)
        .env("CONCIERGE_METRICS_BIND", "off")
        .env(
            "CONCIERGE_ROUTING_FILE",
            concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/routing.toml"),
        )
        .env(
            "CONCIERGE_INTENTS_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/intents"),
        );
    command
}
