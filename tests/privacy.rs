//! The logs of a real run at info level hold no phone number and no message body.

mod common;

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

#[tokio::test]
async fn info_logs_hold_no_numbers_and_no_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = common::serve_command(port, &dir.path().join("data"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let started = Instant::now();
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "serve did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let secret = "my secret question about passkeys";
    for (i, body) in [secret, "talk to a security expert", "STOP"]
        .iter()
        .enumerate()
    {
        let form = [
            ("From", "+14155550123"),
            ("To", "+15550009999"),
            ("Body", body),
            ("MessageSid", &format!("SMprivacy{i:025}")),
            ("NumMedia", "0"),
        ];
        let r = client
            .post(format!("{base}/sms"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let token = common::new_chat(&base).await;
    let r = client
        .post(format!("{base}/chat/messages"))
        .json(
            &serde_json::json!({"token": token, "id": "1", "text": "another secret web question"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    child.kill().unwrap();
    let mut logs = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    child.wait().unwrap();

    assert!(
        logs.contains("message handled"),
        "nothing was logged:\n{logs}"
    );
    for leak in [
        "4155550123",
        "secret question",
        "secret web question",
        &token,
    ] {
        assert!(!logs.contains(leak), "{leak:?} is in the logs:\n{logs}");
    }
}
