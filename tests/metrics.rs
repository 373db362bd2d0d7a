//! Prometheus metrics on their own listener: a scrape after some traffic has every metric, by
//! route pattern (never a raw path), with the counts the traffic implies.

mod common;

use concierge::config::RawConfig;
use serde_json::json;

#[tokio::test]
async fn a_scrape_names_every_metric_with_the_right_counts() {
    let (base, state, _dir) = common::serve(RawConfig::default(), "2026-06-09T17:05:00Z").await;
    assert_eq!(
        state.config.metrics_bind,
        Some("127.0.0.1:9464".parse().unwrap()),
        "on by default, loopback only"
    );
    let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let scrape_url = format!("http://{}/metrics", metrics.local_addr().unwrap());
    let app = concierge::metrics::router(state.clone());
    tokio::spawn(async move { axum::serve(metrics, app).await.unwrap() });

    let client = reqwest::Client::new();
    let token = &common::new_chat(&base).await;
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
        "concierge_store_attendees_in_memory",
        "concierge_store_idempotency_keys",
        "concierge_store_log_sync_seconds_bucket",
        "concierge_store_batch_seconds_bucket",
        "concierge_runtime_lag_seconds_bucket",
        "concierge_runtime_busy_seconds_total{runtime=\"accept\"}",
        "concierge_runtime_busy_seconds_total{runtime=\"conn-0\"}",
        "concierge_runtime_busy_seconds_total{runtime=\"conn-1\"}",
        "concierge_runtime_parks_total{runtime=\"conn-1\"}",
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
    // Each request's latency is in its route's histogram, every request counted once.
    let routes_requests = |route: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(&format!("concierge_http_requests_total{{route=\"{route}\"")))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum()
    };
    for route in ["/chat/messages", "unmatched"] {
        assert_eq!(
            value(&format!(
                "concierge_http_request_duration_seconds_count{{route=\"{route}\"}}"
            )),
            routes_requests(route),
            "{route}"
        );
    }
    // The connection threads answered the requests: busy for some time, asleep in between.
    let threads = |metric: &str| {
        (0..2)
            .map(|n| value(&format!("{metric}{{runtime=\"conn-{n}\"}}")))
            .sum::<f64>()
    };
    assert!(threads("concierge_runtime_busy_seconds_total") > 0.0);
    assert!(threads("concierge_runtime_parks_total") >= 1.0);
    // Each thread by name, from /proc (Linux): the store writer ran the messages' batches.
    if std::path::Path::new("/proc/self/task").exists() {
        for thread in ["store-writer", "conn-0", "conn-1"] {
            let cpu = value(&format!(
                "concierge_thread_cpu_seconds_total{{thread=\"{thread}\"}}"
            ));
            let wait = value(&format!(
                "concierge_thread_wait_seconds_total{{thread=\"{thread}\"}}"
            ));
            assert!(cpu > 0.0 && wait >= 0.0, "{thread}: cpu {cpu}, wait {wait}");
        }
    }
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
    // Web chat attendees stay in sled; each processed chat message's key is remembered.
    assert_eq!(value("concierge_store_attendees_in_memory"), 0.0);
    assert_eq!(value("concierge_store_idempotency_keys"), 3.0);
    // Each of the three messages was written and synced (one at a time, so a batch each at
    // least); a batch that logs nothing has no sync.
    let syncs = value("concierge_store_log_sync_seconds_count");
    assert!(syncs >= 3.0, "{syncs} log syncs");
    assert!(value("concierge_store_batch_seconds_count") >= syncs);
    assert!(value("concierge_store_log_sync_seconds_sum") > 0.0);
}
