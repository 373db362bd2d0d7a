//! Hot reload of the intents in a running server: admin auth, good and broken edits through
//! `POST /admin/reload` and through the folder watcher, a new agenda's entities, and reloads while
//! messages are being classified.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use concierge::clock::FixedClock;
use concierge::config::{Origin, RawConfig, Secret};
use concierge::state::AppState;
use concierge::store::Store;
use serde_json::{Value, json};

const TOKEN: &str = "test-admin-token-0123456789";

fn copy_intents(to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    let from = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("intents");
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
    }
}

struct Server {
    base: String,
    state: AppState,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
    intents: PathBuf,
}

impl Server {
    async fn start(admin_token: Option<&str>) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let intents = dir.path().join("intents");
        copy_intents(&intents);
        let mut config = RawConfig::default()
            .validate(Origin {
                file: None,
                env: vec![],
            })
            .unwrap();
        config.data_dir = dir.path().join("data");
        config.intents_dir = intents.clone();
        config.admin_token = admin_token.map(Secret::new);
        let store = Store::open(&config.data_dir, 8 << 20).unwrap();
        let clock = Arc::new(FixedClock::new("2026-11-24T18:00:00Z".parse().unwrap()));
        let (state, _) = AppState::open(config, store, clock).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(concierge::http::run(
            listener,
            state.clone(),
            std::future::pending(),
        ));
        Server {
            base,
            state,
            client: reqwest::Client::new(),
            _dir: dir,
            intents,
        }
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    async fn get(&self, path: &str) -> Value {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    async fn intent_of(&self, text: &str) -> String {
        let (status, body) = self.post("/admin/classify", json!({ "text": text })).await;
        assert_eq!(status, 200, "{body}");
        body["intent"].as_str().unwrap().to_string()
    }
}

const ZEBRA: &str = "[[intent]]\nname = \"zebra\"\ndescription = \"test\"\nphrases.en = [\"zebra crossing\"]\nresponse.reply.en = \"stripes\"\nexamples = [\"zebra crossing\"]\n";

#[tokio::test]
async fn admin_endpoints_refuse_missing_and_wrong_tokens() {
    let server = Server::start(Some(TOKEN)).await;
    let url = format!("{}/admin/intents", server.base);
    let none = server.client.get(&url).send().await.unwrap();
    assert_eq!(none.status(), 401);
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    let wrong = server
        .client
        .get(&url)
        .bearer_auth("test-admin-token-0123456780")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 403);
    let garbage = server
        .client
        .get(&url)
        .header("authorization", "Basic abc")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 401);
    let ok = server
        .client
        .get(&url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);

    let disabled = Server::start(None).await;
    let response = disabled
        .client
        .post(format!("{}/admin/reload", disabled.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("admin API is disabled")
    );

    // Garbage bodies are 400s, never 500s.
    let bad = server
        .client
        .post(format!("{}/admin/classify", server.base))
        .bearer_auth(TOKEN)
        .body("{not json")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn a_good_edit_changes_behaviour_and_a_broken_one_changes_nothing() {
    let server = Server::start(Some(TOKEN)).await;
    assert_eq!(server.intent_of("zebra crossing").await, "fallback");
    let status = server.get("/admin/intents").await;
    assert_eq!(status["generation"], 1);
    assert_eq!(status["trigger"], "start");
    assert!(status["last_error"].is_null());

    std::fs::write(server.intents.join("zebra.toml"), ZEBRA).unwrap();
    let (code, body) = server.post("/admin/reload", json!({})).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["generation"], 2);
    assert_eq!(server.intent_of("zebra crossing").await, "zebra");

    // A broken edit: the error names the file and place, and the running set keeps serving.
    std::fs::write(
        server.intents.join("zebra.toml"),
        format!("{ZEBRA}patterns = ['(unclosed']\n"),
    )
    .unwrap();
    let (code, body) = server.post("/admin/reload", json!({})).await;
    assert_eq!(code, 422, "{body}");
    let problem = body["problems"][0]["message"].as_str().unwrap();
    assert!(problem.contains("invalid regular expression"), "{body}");
    assert!(
        body["problems"][0]["loc"]["file"]
            .as_str()
            .unwrap()
            .ends_with("zebra.toml")
    );
    assert_eq!(body["problems"][0]["loc"]["line"], 7);
    assert_eq!(server.intent_of("zebra crossing").await, "zebra");
    let status = server.get("/admin/intents").await;
    assert_eq!(status["generation"], 2);
    assert_eq!(status["last_error"]["trigger"], "admin");

    // A syntax error is refused the same way.
    std::fs::write(server.intents.join("zebra.toml"), "[[intent]\nname = ").unwrap();
    let (code, _) = server.post("/admin/reload", json!({})).await;
    assert_eq!(code, 422);
    assert_eq!(server.intent_of("zebra crossing").await, "zebra");
    assert_eq!(server.intent_of("what's next").await, "next_session");
}

/// Waits until `check` holds, polling every 50 ms for at most 5 s.
async fn eventually(mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..100 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("condition not met within 5 s");
}

#[tokio::test]
async fn the_folder_watcher_reloads_on_edits() {
    let server = Server::start(Some(TOKEN)).await;
    let state = server.state.clone();
    let watcher_state = state.clone();
    tokio::spawn(concierge::live_intents::watch(
        state.intents.clone(),
        move || watcher_state.agenda(),
        jiff::Timestamp::now,
        Duration::from_millis(40),
    ));
    tokio::time::sleep(Duration::from_millis(100)).await;

    std::fs::write(server.intents.join("zebra.toml"), ZEBRA).unwrap();
    eventually(async || state.intents.status().generation == 2).await;
    assert_eq!(state.intents.status().trigger, "file change");
    assert_eq!(server.intent_of("zebra crossing").await, "zebra");

    std::fs::write(
        server.intents.join("zebra.toml"),
        "[[intent]]\nname = \"zebra\"\nnope = 1\n",
    )
    .unwrap();
    eventually(async || state.intents.status().last_error.is_some()).await;
    assert_eq!(state.intents.status().generation, 2);
    assert_eq!(server.intent_of("zebra crossing").await, "zebra");
    let error = state.intents.status().last_error.unwrap();
    assert!(
        error.problems[0]
            .to_string()
            .contains("zebra.toml:3:1: unknown field `nope`"),
        "{error:?}"
    );

    std::fs::remove_file(server.intents.join("zebra.toml")).unwrap();
    eventually(async || state.intents.status().generation == 3).await;
    assert!(state.intents.status().last_error.is_none());
    assert_eq!(server.intent_of("zebra crossing").await, "fallback");
}

#[tokio::test]
async fn a_new_agenda_brings_its_entities() {
    let server = Server::start(Some(TOKEN)).await;
    let (_, before) = server
        .post(
            "/admin/classify",
            json!({ "text": "what's next in saal 1" }),
        )
        .await;
    assert!(before["entities"]["room"].is_null(), "{before}");

    let file = common::schedule("38c3.frab.schedule.xml");
    let imported = concierge::import::import_file(&file, &Default::default()).unwrap();
    server
        .state
        .replace_agenda(imported, "38c3.xml")
        .await
        .unwrap();
    let (_, after) = server
        .post(
            "/admin/classify",
            json!({ "text": "what's next in saal 1" }),
        )
        .await;
    assert_eq!(after["intent"], "next_session");
    assert_eq!(after["entities"]["room"], "Saal 1");
    assert_eq!(server.get("/admin/intents").await["trigger"], "agenda");
}

#[tokio::test]
async fn classifying_during_reloads_always_sees_a_whole_set() {
    let server = Server::start(Some(TOKEN)).await;
    let state = server.state.clone();
    // Two versions of one file: "zebra crossing" means zebra in one and fallback in the other.
    let path = server.intents.join("zebra.toml");
    let reloader = {
        let state = state.clone();
        let path = path.clone();
        tokio::spawn(async move {
            for i in 0..20 {
                if i % 2 == 0 {
                    std::fs::write(&path, ZEBRA).unwrap();
                } else {
                    let _ = std::fs::remove_file(&path);
                }
                state
                    .intents
                    .reload(state.agenda(), "test", jiff::Timestamp::now())
                    .await
                    .unwrap();
            }
        })
    };
    let mut seen = std::collections::BTreeSet::new();
    while !reloader.is_finished() {
        let matcher = state.intents.matcher();
        let a = matcher.classify("zebra crossing");
        let b = matcher.classify("what's next");
        // One matcher, one set: the second answer never changes under the first.
        assert_eq!(&*b.intent, "next_session");
        seen.insert(a.intent.to_string());
        tokio::task::yield_now().await;
    }
    reloader.await.unwrap();
    assert!(
        seen.iter().all(|i| i == "zebra" || i == "fallback"),
        "{seen:?}"
    );
    assert_eq!(state.intents.status().generation, 21);
}
