//! Crash safety: the real server as a separate process, under load from SMS and web chat clients
//! (hand-offs, opt-outs, agenda saves, announcements, client retries of the same `MessageSid`),
//! killed with SIGKILL at a random moment, four times, restarted on the same data dir each time.
//! Afterwards everything that got a 2xx is in the store, nothing was processed twice, and the
//! store opens cleanly.

use std::collections::BTreeSet;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;

use concierge::store::Store;
use serde_json::json;

const ADMIN: &str = "crash-test-admin-token-0123456789";

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Starts the service on `data`, its log going to `log`.
fn start(data: &std::path::Path, log: &std::path::Path) -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = common::serve_command(port, data)
        .env("CONCIERGE_ADMIN_TOKEN", ADMIN)
        // The store says at info what it recovered from its write-ahead log when it opens.
        .env("RUST_LOG", "error,concierge::store=info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    (child, format!("http://127.0.0.1:{port}"))
}

/// What the clients were told was done.
#[derive(Default)]
struct Acked {
    /// (number, MessageSid)
    sms: Vec<(String, String)>,
    /// Numbers whose STOP was acknowledged.
    stopped: BTreeSet<String>,
    /// Numbers whose hand-off request was acknowledged.
    handed_off: BTreeSet<String>,
    /// (conversation token, message id, saved session if a save)
    web: Vec<(String, String, Option<String>)>,
    announcements: Vec<String>,
}

async fn sms(client: &reqwest::Client, base: &str, from: &str, sid: &str, body: &str) -> bool {
    let form = [
        ("From", from),
        ("To", "+15550009999"),
        ("Body", body),
        ("MessageSid", sid),
        ("NumMedia", "0"),
    ];
    matches!(client.post(format!("{base}/sms")).form(&form).send().await,
        Ok(r) if r.status().is_success())
}

/// One round of load until the process is killed.
async fn load(
    base: String,
    round: u64,
    acked: Arc<Mutex<Acked>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    use std::sync::atomic::Ordering;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let mut tasks = Vec::new();
    // SMS: conversations with retries of the same MessageSid.
    for t in 0..6u64 {
        let (client, base, acked, stop) =
            (client.clone(), base.clone(), acked.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            let mut last: Option<(String, String, String)> = None;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let r = splitmix(round << 40 | t << 32 | n);
                let (from, sid, body) = match (&last, r % 5) {
                    // A client retry: the same message again.
                    (Some(prev), 0) => prev.clone(),
                    _ => {
                        let from = format!("+1555010{:04}", r % 40);
                        let body = [
                            "whats next",
                            "2",
                            "talks about video",
                            "hi",
                            "where is the keynote",
                        ][(r >> 8) as usize % 5];
                        (from, format!("SM{round:02}{t:02}{n:028}"), body.to_string())
                    }
                };
                if sms(&client, &base, &from, &sid, &body).await {
                    acked.lock().unwrap().sms.push((from.clone(), sid.clone()));
                }
                last = Some((from, sid, body));
            }
        }));
    }
    // Opt-outs and hand-offs from numbers of their own (one each).
    {
        let (client, base, acked, stop) =
            (client.clone(), base.clone(), acked.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let stop_number = format!("+1555020{round:02}{n:02}");
                let sid = format!("SMstop{round:02}{n:024}");
                if sms(&client, &base, &stop_number, &sid, "STOP").await {
                    acked.lock().unwrap().stopped.insert(stop_number);
                }
                let expert_number = format!("+1555030{round:02}{n:02}");
                let sid = format!("SMexpert{round:02}{n:022}");
                if sms(
                    &client,
                    &base,
                    &expert_number,
                    &sid,
                    "can a video expert help me",
                )
                .await
                {
                    acked.lock().unwrap().handed_off.insert(expert_number);
                }
            }
        }));
    }
    // Web chat: saves by button, and plain messages.
    for t in 0..2u64 {
        let (client, base, acked, stop) =
            (client.clone(), base.clone(), acked.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let Ok(r) = client.post(format!("{base}/chat/sessions")).send().await else {
                return;
            };
            let Ok(session) = r.json::<serde_json::Value>().await else {
                return;
            };
            let token = session["token"].as_str().unwrap_or_default().to_string();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) && n < 8 {
                n += 1;
                let id = format!("w{round}-{t}-{n}");
                let save = (n % 2 == 0).then(|| format!("s{:02}", 1 + (n % 20)));
                let body = json!({"token": token, "id": id, "text": "what's next", "save": save});
                let ok = matches!(client.post(format!("{base}/chat/messages")).json(&body).send().await,
                    Ok(r) if r.status().is_success());
                if ok {
                    acked.lock().unwrap().web.push((token.clone(), id, save));
                }
            }
        }));
    }
    // An announcement per round.
    {
        let (client, base, acked) = (client.clone(), base.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let id = format!("round-{round}");
            let r = client
                .post(format!("{base}/admin/announcements"))
                .bearer_auth(ADMIN)
                .json(&json!({"id": id, "text": "Coffee is served", "to": "everyone"}))
                .send()
                .await;
            if matches!(r, Ok(r) if r.status().is_success()) {
                acked.lock().unwrap().announcements.push(id);
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// How many batches the store applied from its write-ahead log when it opened, from its log
/// line (`... applied=12 already_held=3`); 0 if it had nothing to recover.
fn applied_on_open(log: &str) -> u64 {
    log.lines()
        .filter(|l| l.contains("recovered from the write-ahead log"))
        .filter_map(|l| l.split("applied=").nth(1))
        .filter_map(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .filter_map(|n| n.parse::<u64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_work_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let acked = Arc::new(Mutex::new(Acked::default()));
    // What each start recovered from the write-ahead log: sled has to be repaired from it after
    // at least one kill, or the test would not prove the log's replay.
    let mut recovered = Vec::new();
    for round in 0..4u64 {
        let log = dir.path().join(format!("serve-{round}.log"));
        let (mut child, base) = start(&data, &log);
        let started = Instant::now();
        loop {
            if let Ok(r) = reqwest::get(format!("{base}/readyz")).await {
                if r.status().is_success() {
                    break;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "round {round}: the store did not reopen"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let load = tokio::spawn(load(base, round, acked.clone(), stop.clone()));
        // Kill at a random moment, mid-load.
        let after = 300 + splitmix(round ^ 0xc0ffee) % 700;
        tokio::time::sleep(Duration::from_millis(after)).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        recovered.push(applied_on_open(&std::fs::read_to_string(&log).unwrap()));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        load.await.unwrap();
    }

    assert!(
        recovered.iter().any(|&batches| batches > 0),
        "no restart applied batches from the write-ahead log: {recovered:?}"
    );
    // The store opens cleanly after the last kill, and holds everything acknowledged.
    let store = Store::open(&data, 16 << 20).expect("the store opens after kill -9");
    let acked = acked.lock().unwrap();
    assert!(
        acked.sms.len() > 50,
        "too little load: {} SMS",
        acked.sms.len()
    );
    let mut numbers: BTreeSet<&str> = BTreeSet::new();
    for (from, _) in &acked.sms {
        numbers.insert(from);
    }
    for from in numbers {
        let transcript = store.transcript(&format!("sms:{from}")).unwrap();
        for (_, sid) in acked.sms.iter().filter(|(f, _)| f == from) {
            let times = transcript
                .iter()
                .filter(|e| e.inbound && e.message_id.as_deref() == Some(sid))
                .count();
            assert_eq!(
                times, 1,
                "{sid} from {from} is in the transcript {times} times"
            );
        }
    }
    assert!(!acked.stopped.is_empty());
    for number in &acked.stopped {
        assert!(
            store.is_opted_out(number).unwrap(),
            "{number}'s STOP was lost"
        );
    }
    let (_, tasks) = store.load_routing().unwrap();
    assert!(!acked.handed_off.is_empty());
    for number in &acked.handed_off {
        let key = format!("sms:{number}");
        let task = store.attendee(&key).unwrap().handoff;
        assert!(task.is_some(), "{number}'s hand-off was lost");
        assert!(
            tasks
                .iter()
                .any(|t| Some(t.id) == task && t.attendee == key),
            "{number}'s task is not stored"
        );
    }
    assert!(!acked.web.is_empty());
    for (token, id, save) in &acked.web {
        let key = concierge::http::chat::conversation_key(token).unwrap();
        let transcript = store.transcript(&key).unwrap();
        let times = transcript
            .iter()
            .filter(|e| e.inbound && e.message_id.as_deref() == Some(id))
            .count();
        assert_eq!(times, 1, "web message {id}: {times} times");
        if let Some(session) = save {
            assert!(
                store.attendee(&key).unwrap().saved.contains(session),
                "the save of {session} ({id}) was lost"
            );
        }
    }
    for id in &acked.announcements {
        assert!(
            store.announcement(id).unwrap().is_some(),
            "announcement {id} was lost"
        );
    }
}
