//! Reloading the routing file in a running service: a bad expression is refused with its place and
//! the running configuration stays; a good edit adds experts and keeps waiting tasks.

use std::sync::Arc;

use concierge::clock::FixedClock;
use concierge::config::{Origin, RawConfig, Secret};
use concierge::state::AppState;
use concierge::store::Store;

#[tokio::test]
async fn a_broken_routing_file_never_replaces_a_working_one() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("routing.toml");
    let original = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/routing.toml"
    ))
    .unwrap();
    std::fs::write(&file, &original).unwrap();
    let mut config = RawConfig::default()
        .validate(Origin {
            file: None,
            env: vec![],
        })
        .unwrap();
    config.data_dir = dir.path().join("data");
    config.routing_file = file.clone();
    config.admin_token = Some(Secret::new("admin-token-0123456789abcdef"));
    let store = Store::open(&config.data_dir, 8 << 20).unwrap();
    let now: jiff::Timestamp = "2026-06-09T20:00:00Z".parse().unwrap();
    let (state, _) = AppState::open(config, store, Arc::new(FixedClock::new(now)))
        .await
        .unwrap();
    let before = state.desk.experts().len();
    // A waiting task (nobody online).
    let task = state
        .desk
        .new_task(
            "sms:+15551230001",
            "sms",
            "help",
            Some("video".into()),
            "en",
            now,
        )
        .unwrap();
    let id = task.id;
    state.desk.adopt(task, now).await.unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(concierge::http::run(
        listener,
        state.clone(),
        std::future::pending(),
    ));
    let reload = || async {
        let r = reqwest::Client::new()
            .post(format!("{base}/admin/routing/reload"))
            .bearer_auth("admin-token-0123456789abcdef")
            .send()
            .await
            .unwrap();
        (
            r.status().as_u16(),
            r.json::<serde_json::Value>().await.unwrap(),
        )
    };

    std::fs::write(
        &file,
        original.replace("skills HAS task.skill AND", "skills HAS task.skill AN"),
    )
    .unwrap();
    let (status, body) = reload().await;
    assert_eq!(status, 422, "{body}");
    let problem = &body["problems"][0];
    assert!(
        problem["message"]
            .as_str()
            .unwrap()
            .contains("queue \"skilled\""),
        "{body}"
    );
    assert!(problem["loc"]["line"].as_u64().unwrap() > 1, "{body}");
    assert_eq!(state.desk.experts().len(), before, "nothing changed");
    assert_eq!(state.desk.waiting(), [id]);

    let added =
        format!("{original}\n[[expert]]\nid = \"zed\"\nname = \"Zed\"\nskills = [\"video\"]\n");
    std::fs::write(&file, added).unwrap();
    let (status, body) = reload().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["experts"], before + 1);
    assert_eq!(state.desk.waiting(), [id], "waiting tasks are kept");
}
