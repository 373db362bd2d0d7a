//! The HTTP server over a real bound port: health and readiness, error bodies, the body limit,
//! graceful shutdown that flushes the store, and the agenda chosen at start; and the same server
//! with its connections on connection threads, as `serve` runs it.

use std::path::Path;
use std::sync::Arc;

use concierge::clock::FixedClock;
use concierge::config::{Config, Origin, RawConfig};
use concierge::http::threads::ConnectionThreads;
use concierge::state::{AgendaBoot, AppState};
use concierge::store::{AgendaSource, Store};
use jiff::Timestamp;
use tokio::sync::oneshot;

fn config(data_dir: &Path) -> Config {
    let mut config = RawConfig::default()
        .validate(Origin {
            file: None,
            env: vec![],
        })
        .unwrap();
    config.data_dir = data_dir.to_path_buf();
    config
}

/// A server on 127.0.0.1:0 over the store in `dir`, with the clock at `now`.
struct Server {
    base: String,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    boot: AgendaBoot,
}

impl Server {
    async fn start(dir: &Path, now: &str) -> Server {
        Server::start_on(dir, now, 0).await
    }

    /// [`Server::start`] with connections served on `threads` connection threads (as `serve`
    /// does), or on the test's runtime with 0.
    async fn start_on(dir: &Path, now: &str, threads: usize) -> Server {
        let store = Store::open(dir, 8 * 1024 * 1024).unwrap();
        let clock = Arc::new(FixedClock::new(now.parse().unwrap()));
        let (state, boot) = AppState::open(config(dir), store, clock).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async {
            let _ = stopped.await;
        };
        let task = match threads {
            0 => tokio::spawn(concierge::http::run(listener, state, shutdown)),
            n => tokio::spawn(concierge::http::run_on(
                listener,
                state,
                shutdown,
                ConnectionThreads::start(n).unwrap(),
            )),
        };
        Server {
            base,
            stop: Some(stop),
            task,
            boot,
        }
    }

    async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        self.task.await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn health_readiness_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "2026-11-24T18:00:00Z").await;
    let client = reqwest::Client::new();

    let health = client
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok\n");

    let ready = client
        .get(format!("{}/readyz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["agenda"]["conference"], "Pacific Dev Summit 2026");
    assert_eq!(body["agenda"]["sessions"], 90);

    let missing = client
        .get(format!("{}/nope", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let body: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(body["error"], "not found");

    // A body over the limit is refused before any handler reads it.
    let big = client
        .get(format!("{}/healthz", server.base))
        .body(vec![b'x'; concierge::http::BODY_LIMIT + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), 413);

    server.stop().await;
}

#[tokio::test]
async fn an_empty_data_dir_gets_the_demo_placed_today_and_keeps_it_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    // 18:00 UTC on 24 November is 10:00 in Los Angeles, the demo's zone.
    let server = Server::start(dir.path(), "2026-11-24T18:00:00Z").await;
    assert_eq!(server.boot, AgendaBoot::DemoSeeded);
    server.stop().await;

    // Graceful shutdown flushed and closed the store: it reopens with the demo in it.
    let store = Store::open(dir.path(), 8 * 1024 * 1024).unwrap();
    let stored = store.load_agenda().unwrap().unwrap();
    assert_eq!(
        stored.source,
        AgendaSource::Demo {
            first_day: "2026-11-24".parse().unwrap(),
            pinned: false,
        }
    );
    let zone = &stored.agenda.conference.time_zone;
    assert_eq!(
        zone.rfc3339(stored.agenda.sessions[0].start),
        "2026-11-24T08:00:00-08:00"
    );
    drop(store);

    // The same day: the stored agenda is served as it is.
    let server = Server::start(dir.path(), "2026-11-24T23:00:00Z").await;
    assert_eq!(server.boot, AgendaBoot::Stored);
    server.stop().await;

    // Days later, the demo moves to the new today.
    let server = Server::start(dir.path(), "2026-12-02T18:00:00Z").await;
    assert_eq!(server.boot, AgendaBoot::DemoMoved);
    server.stop().await;
    let store = Store::open(dir.path(), 8 * 1024 * 1024).unwrap();
    let stored = store.load_agenda().unwrap().unwrap();
    assert_eq!(
        stored.agenda.conference.days[0].date.to_string(),
        "2026-12-02"
    );
}

#[tokio::test]
async fn an_imported_agenda_is_never_replaced_by_the_demo() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), 8 * 1024 * 1024).unwrap();
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/schedules/camp2019.frab.schedule.json");
    let imported = concierge::import::import_file(&file, &Default::default()).unwrap();
    let source = AgendaSource::File {
        name: "camp.json".into(),
        format: imported.format,
    };
    store
        .replace_agenda(imported.agenda, source, Timestamp::UNIX_EPOCH)
        .await
        .unwrap();
    drop(store);

    let server = Server::start(dir.path(), "2026-11-24T18:00:00Z").await;
    assert_eq!(server.boot, AgendaBoot::Stored);
    let body: serde_json::Value = reqwest::get(format!("{}/readyz", server.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        body["agenda"]["conference"],
        "Chaos Communication Camp 2019"
    );
    assert_eq!(body["agenda"]["sessions"], 79);
    server.stop().await;
}

/// A client that never finishes its request head is cut off after `HEADER_TIMEOUT`, and others
/// are served meanwhile; a slow body is cut off by the request timeout.
#[tokio::test]
async fn slow_clients_are_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "2026-06-09T17:05:00Z").await;
    let addr = server.base.trim_start_matches("http://").to_string();
    let started = std::time::Instant::now();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"POST /sms HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // Meanwhile everyone else is served.
    let r = reqwest::get(format!("{}/healthz", server.base))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut rest = Vec::new();
    let read = tokio::time::timeout(
        concierge::http::HEADER_TIMEOUT + std::time::Duration::from_secs(3),
        slow.read_to_end(&mut rest),
    )
    .await;
    assert!(read.is_ok(), "the slow connection is still open");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= concierge::http::HEADER_TIMEOUT - std::time::Duration::from_millis(100),
        "cut off too early: {elapsed:?}"
    );
    server.stop().await;
}

/// A client that sends its head but not all of its body is answered 408 once the request timeout
/// passes (the handler waiting for the body is dropped), not held forever.
#[tokio::test]
async fn a_slow_body_is_answered_408_after_the_request_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "2026-06-09T17:05:00Z").await;
    let addr = server.base.trim_start_matches("http://").to_string();
    let started = std::time::Instant::now();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(
        b"POST /sms HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
          Content-Length: 100\r\n\r\nBody=hel",
    )
    .await
    .unwrap();
    let mut answer = vec![0u8; 64];
    let read = tokio::time::timeout(
        concierge::http::REQUEST_TIMEOUT + std::time::Duration::from_secs(3),
        slow.read(&mut answer),
    )
    .await
    .expect("answered within the request timeout")
    .unwrap();
    let head = String::from_utf8_lossy(&answer[..read]).to_string();
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= concierge::http::REQUEST_TIMEOUT - std::time::Duration::from_millis(100),
        "answered too early: {elapsed:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn connection_threads_serve_many_connections_and_stop_with_the_store_flushed() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_on(dir.path(), "2026-11-24T18:00:00Z", 2).await;
    // A client each: a connection each, handed to the two threads in turn.
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let url = format!("{}/readyz", server.base);
        clients.spawn(async move {
            let client = reqwest::Client::new();
            let mut statuses = Vec::new();
            for _ in 0..3 {
                let response = client.get(&url).send().await.unwrap();
                statuses.push(response.status().as_u16());
                let body: serde_json::Value = response.json().await.unwrap();
                assert_eq!(body["agenda"]["conference"], "Pacific Dev Summit 2026");
            }
            statuses
        });
    }
    let answers = clients.join_all().await;
    assert_eq!(answers, vec![vec![200, 200, 200]; 8]);
    let missing = reqwest::get(format!("{}/no-such-page", server.base))
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    // Stopping ends the threads (it returns) and flushes the store: it reopens with the agenda.
    tokio::time::timeout(std::time::Duration::from_secs(20), server.stop())
        .await
        .expect("the server stops");
    let again = Server::start(dir.path(), "2026-11-24T18:00:00Z").await;
    assert_eq!(again.boot, AgendaBoot::Stored);
    again.stop().await;
}
