//! Prometheus metrics on their own listener: a scrape after some traffic has every metric, by
//! route pattern (never a raw path), with the counts the traffic implies.

use std::path::Path;
use std::sync::Arc;

use concierge::clock::FixedClock;
use concierge::config::{Origin, RawConfig};
use concierge::state::AppState;
use concierge::store::Store;
use serde_json::{Value, json};

#[tokio::test]
async fn a_scrape_names_every_metric_with_the_right_counts() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = RawConfig::default()
        .validate(Origin {
            file: None,
            env: vec![],
        })
        .unwrap();
    config.data_dir = dir.path().to_path_buf();
    config.routing_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/routing.toml");
    assert_eq!(
        config.metrics_bind,
        Some("127.0.0.1:9464".parse().unwrap()),
        "on by default, loopback only"
    );
    let store = Store::open(dir.path(), 8 << 20).unwrap();
    let clock = Arc::new(FixedClock::new("2026-06-09T17:05:00Z".parse().unwrap()));
    let (state, _) = AppState::open(config, store, clock).await.unwrap();
    let api = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", api.local_addr().unwrap());
    tokio::spawn(concierge::http::run(
        api,
        state.clone(),
        std::future::pending(),
    ));
    let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let scrape_url = format!("http://{}/metrics", metrics.local_addr().unwrap());
    let app = concierge::metrics::router(state.clone());
    tokio::spawn(async move { axum::serve(metrics, app).await.unwrap() });

    let client = reqwest::Client::new();
    let session: Value = client
        .post(format!("{base}/chat/sessions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = session["token"].as_str().unwrap();
    for (id, text) in [
        ("1", "what's next"),
        ("2", "purple elephant"),
        ("3", "talk to a video expert"),
    ] {
        let r = client
            .post(format!("{base}/chat/messages"))
            .json(&json!({"token": token, "id": id, "text": text}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    // A redelivery is not a new message; an unknown path is counted as unmatched.
    client
        .post(format!("{base}/chat/messages"))
        .json(&json!({"token": token, "id": "1", "text": "what's next"}))
        .send()
        .await
        .unwrap();
    client
        .get(format!("{base}/no/such/{token}"))
        .send()
        .await
        .unwrap();

    let r = reqwest::get(&scrape_url).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = r.text().await.unwrap();
    for name in [
        "concierge_http_requests_total",
        "concierge_http_request_duration_seconds_bucket",
        "concierge_messages_total",
        "concierge_intent_hits_total",
        "concierge_fallback_ratio",
        "concierge_matcher_seconds_count",
        "concierge_queue_waiting",
        "concierge_queue_longest_wait_seconds",
        "concierge_experts_available",
        "concierge_outbox_backlog",
        "concierge_outbox_send_failures_total",
        "concierge_reminders_pending",
        "concierge_store_size_bytes",
    ] {
        assert!(text.contains(&format!("\n{name}")), "no {name} in\n{text}");
    }
    let value = |series: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(series))
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(
        value(
            r#"concierge_http_requests_total{route="/chat/messages",method="POST",status="200"}"#
        ),
        4.0
    );
    assert_eq!(
        value(r#"concierge_http_requests_total{route="unmatched",method="GET",status="404"}"#),
        1.0
    );
    assert!(!text.contains(token), "a token leaked into a label");
    assert_eq!(value(r#"concierge_messages_total{channel="web"}"#), 3.0);
    assert_eq!(
        value(r#"concierge_intent_hits_total{intent="fallback"}"#),
        1.0
    );
    assert_eq!(
        value(r#"concierge_intent_hits_total{intent="next_session"}"#),
        1.0
    );
    assert!((value("concierge_fallback_ratio") - 1.0 / 3.0).abs() < 1e-9);
    assert_eq!(value("concierge_matcher_seconds_count"), 3.0);
    // The hand-off waits in the skilled queue (nobody is online).
    assert_eq!(value(r#"concierge_queue_waiting{queue="skilled"}"#), 1.0);
    assert_eq!(value("concierge_outbox_send_failures_total"), 0.0);
    assert!(value("concierge_store_size_bytes") > 0.0);
}
