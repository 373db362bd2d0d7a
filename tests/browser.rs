//! The three pages end to end in headless Chromium: the real server on a loopback port, Debian's
//! `chromium` driven through `chromedriver` with fantoccini (a Rust WebDriver client, so the tests
//! stay inside `cargo test` with no Node toolchain), on a phone-sized screen (390 × 844).
//!
//! Without `chromedriver` on the PATH (or in `CHROMEDRIVER`) these tests say so and pass, unless
//! `CONCIERGE_BROWSER_TESTS=required` (which `.ci/run` sets) makes that a failure. On a failure,
//! a screenshot and the HTML of every open page go to `target/tmp/browser-artifacts/`
//! (`CONCIERGE_BROWSER_SCREENSHOTS=always` saves them after every test).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use concierge::clock::{Clock, FixedClock, SystemClock};
use concierge::config::{Origin, RawConfig};
use concierge::state::AppState;
use concierge::store::Store;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

const ENTER: &str = "\u{E007}";
const TAB: &str = "\u{E004}";
const ADMIN_TOKEN: &str = "operator-token-for-browser-tests";
/// Ten o'clock five in the morning on the demo conference's first day, in San Francisco.
const FIXED_NOW: &str = "2026-06-09T17:05:00Z";

// --- the browser --------------------------------------------------------------------------------

/// A chromedriver process, killed when dropped.
struct Driver {
    child: std::process::Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// Starts chromedriver with the browser in time zone `tz`; `None` (test skipped) when there is
/// no chromedriver and the tests are not required.
async fn driver(tz: &str) -> Option<Driver> {
    let binary = std::env::var_os("CHROMEDRIVER")
        .map(PathBuf::from)
        .or_else(|| find_in_path("chromedriver"));
    let Some(binary) = binary else {
        if std::env::var("CONCIERGE_BROWSER_TESTS").as_deref() == Ok("required") {
            panic!("chromedriver is not installed (apt-get install chromium chromium-driver)");
        }
        eprintln!(
            "skipped: no chromedriver on the PATH (apt-get install chromium chromium-driver)"
        );
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new(binary)
        .arg(format!("--port={port}"))
        .env("TZ", tz)
        .env("LANG", "en_US.UTF-8")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let started = Instant::now();
    loop {
        if let Ok(r) = reqwest::get(format!("{}/status", driver.url)).await {
            if r.status().is_success() {
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "chromedriver did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Some(driver)
}

/// A new browser (its own profile: a separate context with its own storage).
async fn browser(driver: &Driver) -> Client {
    let args = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--lang=en-US",
        // The machine's network is closed: no calls home at start.
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
    ];
    // A phone's screen: 390 × 844 CSS pixels.
    let mut options = json!({
        "args": args,
        "mobileEmulation": { "deviceMetrics": { "width": 390, "height": 844, "pixelRatio": 2.0 } },
    });
    if let Some(chrome) = std::env::var_os("CHROME_BIN")
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from("/usr/bin/chromium")).filter(|p| p.exists()))
    {
        options["binary"] = json!(chrome);
    }
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert("goog:chromeOptions".into(), options);
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a browser session")
}

/// Runs a test body with its browsers; on a failure, saves a screenshot and the HTML of each
/// page, then fails. Closes the browsers either way.
async fn scenario<F>(name: &str, pages: Vec<(&'static str, Client)>, body: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let outcome = tokio::spawn(body).await;
    let always = std::env::var("CONCIERGE_BROWSER_SCREENSHOTS").as_deref() == Ok("always");
    if outcome.is_err() || always {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-artifacts");
        std::fs::create_dir_all(&dir).unwrap();
        for (page, client) in &pages {
            if let Ok(png) = client.screenshot().await {
                let _ = std::fs::write(dir.join(format!("{name}-{page}.png")), png);
            }
            if let Ok(html) = client.source().await {
                let _ = std::fs::write(dir.join(format!("{name}-{page}.html")), html);
            }
        }
        if let Err(err) = &outcome {
            eprintln!("{name} failed ({err}); screenshots in {}", dir.display());
        }
    }
    for (_, client) in pages {
        let _ = client.close().await;
    }
    if let Err(err) = outcome {
        std::panic::resume_unwind(err.into_panic());
    }
}

/// Polls `probe` until it returns `Some`, for up to 10 s; fails with `what` and the last value.
async fn until<T, P, Fut>(what: &str, mut probe: P) -> T
where
    P: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>, String>>,
{
    let started = Instant::now();
    let mut last = String::new();
    loop {
        match probe().await {
            Ok(Some(v)) => return v,
            Ok(None) => {}
            Err(e) => last = e,
        }
        if started.elapsed() > Duration::from_secs(10) {
            panic!("timed out waiting for {what} (last seen: {last})");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The text of every element matching `css`.
async fn texts(client: &Client, css: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(elements) = client.find_all(Locator::Css(css)).await {
        for e in elements {
            out.push(e.text().await.unwrap_or_default());
        }
    }
    out
}

/// Waits until the elements matching `css` satisfy `ok`; returns their texts.
async fn wait_texts(client: &Client, css: &str, ok: impl Fn(&[String]) -> bool) -> Vec<String> {
    until(&format!("`{css}`"), || async {
        let t = texts(client, css).await;
        if ok(&t) {
            Ok(Some(t))
        } else {
            Err(format!("{t:?}"))
        }
    })
    .await
}

async fn js(client: &Client, script: &str) -> Value {
    client
        .execute(script, vec![])
        .await
        .expect("the script runs")
}

async fn type_into(client: &Client, css: &str, text: &str) {
    let input = client.find(Locator::Css(css)).await.expect(css);
    input.send_keys(text).await.expect("typing");
}

async fn click(client: &Client, css: &str) {
    let started = Instant::now();
    loop {
        match client.find(Locator::Css(css)).await {
            Ok(e) if e.click().await.is_ok() => return,
            _ if started.elapsed() > Duration::from_secs(10) => panic!("cannot click `{css}`"),
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Types a message in the chat and sends it with Enter.
async fn say(client: &Client, text: &str) {
    type_into(client, "#text", &format!("{text}{ENTER}")).await;
}

/// The numbers of the messages the chat shows, in order.
async fn shown_numbers(client: &Client) -> Vec<u64> {
    let v = js(
        client,
        "return [...document.querySelectorAll('#log li[data-n]')].map(li => Number(li.dataset.n));",
    )
    .await;
    serde_json::from_value(v).unwrap_or_default()
}

async fn connected(client: &Client) {
    wait_texts(client, "#connection", |t| t == ["Connected"]).await;
}

// --- the server ---------------------------------------------------------------------------------

struct Server {
    base: String,
    state: AppState,
    _dir: tempfile::TempDir,
}

async fn server(clock: Arc<dyn Clock>) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let raw = RawConfig {
        admin_token: Some(ADMIN_TOKEN.into()),
        ..RawConfig::default()
    };
    let mut config = raw
        .validate(Origin {
            file: None,
            env: vec![],
        })
        .unwrap();
    config.data_dir = dir.path().to_path_buf();
    config.routing_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/routing.toml");
    config.intents_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("intents");
    let store = Store::open(dir.path(), 16 << 20).unwrap();
    let (state, _) = AppState::open(config, store, clock).await.unwrap();
    tokio::spawn(concierge::desk::run(
        state.clone(),
        Duration::from_millis(200),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    // On two connection threads, as `serve` answers requests (`http::threads`).
    tokio::spawn(concierge::http::run_on(
        listener,
        state.clone(),
        std::future::pending(),
        concierge::http::threads::ConnectionThreads::start(2).unwrap(),
    ));
    Server {
        base,
        state,
        _dir: dir,
    }
}

fn fixed_clock() -> Arc<dyn Clock> {
    Arc::new(FixedClock::new(FIXED_NOW.parse().unwrap()))
}

/// A TCP proxy in front of the server whose connections the test can cut, as a network drop
/// would, and which can refuse new ones for a while.
struct Proxy {
    base: String,
    connections: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    refusing: Arc<std::sync::atomic::AtomicBool>,
}

impl Proxy {
    async fn start(upstream: &str) -> Proxy {
        let upstream: SocketAddr = upstream.trim_start_matches("http://").parse().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let connections = Arc::new(Mutex::new(Vec::new()));
        let refusing = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (list, refuse) = (connections.clone(), refusing.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if refuse.load(std::sync::atomic::Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                list.lock().unwrap().push(task.abort_handle());
            }
        });
        Proxy {
            base,
            connections,
            refusing,
        }
    }

    /// Cuts every open connection.
    fn cut(&self) {
        for c in self.connections.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    fn refuse(&self, on: bool) {
        self.refusing.store(on, std::sync::atomic::Ordering::SeqCst);
    }
}

// --- the tests ----------------------------------------------------------------------------------

#[tokio::test]
async fn whats_next_shows_session_cards_for_the_right_sessions() {
    // The browser is in Berlin, the conference in San Francisco: cards show both clocks.
    let Some(driver) = driver("Europe/Berlin").await else {
        return;
    };
    let server = server(fixed_clock()).await;
    let now: jiff::Timestamp = FIXED_NOW.parse().unwrap();
    let expected: Vec<String> = server
        .state
        .agenda()
        .next_slot(now, &concierge::agenda::Filter::default())
        .iter()
        .map(|s| s.title.clone())
        .collect();
    assert_eq!(expected.len(), 7, "the demo's 10:30 slot");
    let attendee = browser(&driver).await;
    let (page, base) = (attendee.clone(), server.base.clone());
    scenario("whats-next", vec![("attendee", attendee)], async move {
        page.goto(&base).await.unwrap();
        connected(&page).await;
        assert_eq!(
            js(
                &page,
                "return document.getElementById('log').getAttribute('aria-live');"
            )
            .await,
            "polite"
        );
        // Keyboard only: Tab to the skip link, Enter to the message box, type, Enter.
        page.active_element()
            .await
            .unwrap()
            .send_keys(TAB)
            .await
            .unwrap();
        let focused = page.active_element().await.unwrap();
        assert_eq!(focused.text().await.unwrap(), "Skip to the message box");
        focused.send_keys(ENTER).await.unwrap();
        let focused = page.active_element().await.unwrap();
        assert_eq!(focused.attr("id").await.unwrap().as_deref(), Some("text"));
        focused
            .send_keys(&format!("what's next?{ENTER}"))
            .await
            .unwrap();
        let titles = wait_texts(&page, "#log .card .title", |t| t.len() == 7).await;
        assert_eq!(titles, expected);
        let when = texts(&page, "#log .card .when").await;
        assert!(when[0].contains("10:30–11:15"), "{when:?}");
        assert!(when[0].contains("America/Los_Angeles"), "{when:?}");
        let local = texts(&page, "#log .card .local").await;
        assert!(local[0].contains("19:30–20:15 your time"), "{local:?}");
        let rooms = texts(&page, "#log .card .where").await;
        assert!(rooms[0].starts_with("Main Stage"), "{rooms:?}");
        // The reply is the heading and the cards, not numbered SMS lines.
        let replies = texts(&page, "#log .from-concierge .text").await;
        assert_eq!(replies.last().unwrap(), "Next up:");

        // "Add to my agenda" on the second card; then "My agenda" from the quick replies.
        click(&page, "#log .card:nth-child(2) button.save").await;
        wait_texts(&page, "#log .from-concierge .text", |t| {
            t.last()
                .is_some_and(|l| l.starts_with("Saved to your agenda"))
        })
        .await;
        wait_texts(&page, "#log .cards .card:nth-child(2) button.save", |t| {
            t.first().is_some_and(|b| b == "Saved ✓")
        })
        .await;
        let buttons = texts(&page, "#quick button").await;
        assert_eq!(buttons, ["What's next?", "Talk to an expert", "My agenda"]);
        click(&page, "#quick button:nth-child(3)").await;
        let mine = wait_texts(&page, "#log li:last-child .card .title", |t| t.len() == 1).await;
        assert_eq!(mine[0], expected[1]);

        // The agenda panel, opened from the header, lists it; Remove takes it off, and its card
        // can be added again.
        assert_eq!(texts(&page, "#agenda-count").await, ["1"]);
        click(&page, "#agenda-toggle").await;
        let panel = wait_texts(&page, "#my-agenda .title", |t| t.len() == 1).await;
        assert_eq!(panel[0], expected[1]);
        click(&page, "#my-agenda button.remove").await;
        wait_texts(&page, "#log .from-concierge .text", |t| {
            t.last()
                .is_some_and(|l| l.starts_with("Removed from your agenda"))
        })
        .await;
        wait_texts(&page, "#agenda-count", |t| t == ["0"]).await;
        assert!(texts(&page, "#my-agenda li").await.is_empty());
        let again = texts(&page, "#log .cards .card:nth-child(2) button.save").await;
        assert_eq!(again[0], "Add to my agenda");
        click(&page, "#agenda-toggle").await;

        // Phone width: nothing wider than the screen.
        let wide = js(
            &page,
            "return document.documentElement.scrollWidth > window.innerWidth;",
        )
        .await;
        assert_eq!(wide, false, "the page scrolls sideways at phone width");
    })
    .await;
}

#[tokio::test]
async fn an_expert_takes_a_web_conversation_from_the_console() {
    let Some(driver) = driver("America/Los_Angeles").await else {
        return;
    };
    // Real time, so the console's countdown to the offer's deadline is real.
    let server = server(Arc::new(SystemClock)).await;
    let token = server.state.store.issue_expert_token("nora").await.unwrap();
    let attendee = browser(&driver).await;
    let expert = browser(&driver).await;
    let (a, e, base, state) = (
        attendee.clone(),
        expert.clone(),
        server.base.clone(),
        server.state.clone(),
    );
    let pages = vec![("attendee", attendee), ("console", expert)];
    scenario("expert", pages, async move {
        a.goto(&base).await.unwrap();
        connected(&a).await;
        let question = "can a video expert help me with my WebRTC app?";
        say(&a, question).await;
        // Nobody is online yet: the attendee waits, first in line.
        wait_texts(&a, "#queue", |t| {
            t.first().is_some_and(|q| q.starts_with("You're #1"))
        })
        .await;
        assert_eq!(texts(&a, "#quick button").await, ["Back to the bot"]);

        // The expert signs in (second browser), becomes available, and is offered the question.
        e.goto(&format!("{base}/console")).await.unwrap();
        type_into(&e, "#token", &format!("{token}{ENTER}")).await;
        wait_texts(&e, "#who", |t| {
            t.first().is_some_and(|w| w.starts_with("Nora Whitfield"))
        })
        .await;
        click(&e, "input[name=status][value=available]").await;
        // The offer's element can be on the page a moment before its text.
        let offer = wait_texts(&e, "#offers .offer .question", |t| {
            t.len() == 1 && !t[0].is_empty()
        })
        .await;
        assert_eq!(offer[0], question);
        let countdown = wait_texts(&e, "#offers .countdown", |t| {
            t.first().is_some_and(|c| c.ends_with("s left to accept"))
        })
        .await;
        let seconds: u32 = countdown[0].split(' ').next().unwrap().parse().unwrap();
        assert!((1..=30).contains(&seconds), "{countdown:?}");
        click(&e, "#offers .offer button.accept").await;

        // The console shows the conversation, with the question that was handed off marked.
        let handed = wait_texts(&e, "#history .handoff .text", |t| t.len() == 1).await;
        assert_eq!(handed[0], question);
        wait_texts(&a, "#queue", |t| {
            t.first()
                .is_some_and(|q| q == "You're chatting with Nora Whitfield")
        })
        .await;

        // Live both ways.
        type_into(
            &e,
            "#reply-text",
            &format!("Hi, Nora here. Which SDK?{ENTER}"),
        )
        .await;
        wait_texts(&a, "#log .from-expert .text", |t| {
            t.last().is_some_and(|m| m == "Hi, Nora here. Which SDK?")
        })
        .await;
        assert_eq!(
            texts(&a, "#log .from-expert .who").await.last().unwrap(),
            "Nora Whitfield"
        );
        say(&a, "The JavaScript one").await;
        wait_texts(&e, "#history .from-attendee .text", |t| {
            t.last().is_some_and(|m| m == "The JavaScript one")
        })
        .await;

        // Complete with a lead; the attendee is back with the bot.
        click(&e, "#complete-box summary").await;
        type_into(&e, "#notes", "Wants SFU sizing advice").await;
        type_into(&e, "#lead-name", "Sam Rivera").await;
        type_into(&e, "#lead-email", "sam@example.com").await;
        click(&e, "#lead-consent").await;
        click(&e, "#complete button[type=submit]").await;
        wait_texts(&e, "#no-conversations", |t| {
            t.first().is_some_and(|m| !m.is_empty())
        })
        .await;
        wait_texts(&a, "#quick button", |t| t.len() == 3).await;
        assert!(texts(&a, "#queue").await.iter().all(String::is_empty));
        say(&a, "what's next").await;
        wait_texts(&a, "#log li:last-child .card", |t| !t.is_empty()).await;
        let leads = state.store.leads().unwrap();
        assert_eq!(leads.len(), 1);
        assert_eq!(
            (
                leads[0].email.as_str(),
                leads[0].consent,
                leads[0].notes.as_str()
            ),
            ("sam@example.com", true, "Wants SFU sizing advice")
        );
    })
    .await;
}

#[tokio::test]
async fn a_reload_keeps_the_history_and_a_dropped_socket_reconnects() {
    let Some(driver) = driver("America/Los_Angeles").await else {
        return;
    };
    let server = server(fixed_clock()).await;
    let proxy = Proxy::start(&server.base).await;
    let attendee = browser(&driver).await;
    let (page, state, base) = (attendee.clone(), server.state.clone(), proxy.base.clone());
    scenario("reload", vec![("attendee", attendee)], async move {
        page.goto(&base).await.unwrap();
        connected(&page).await;
        say(&page, "hi").await;
        wait_texts(&page, "#log li[data-n]", |t| t.len() == 2).await;
        say(&page, "what's next").await;
        wait_texts(&page, "#log li[data-n]", |t| t.len() == 4).await;
        assert_eq!(shown_numbers(&page).await, [1, 2, 3, 4]);

        // A reload shows the same conversation, once.
        page.refresh().await.unwrap();
        connected(&page).await;
        wait_texts(&page, "#log li[data-n]", |t| t.len() == 4).await;
        assert_eq!(shown_numbers(&page).await, [1, 2, 3, 4]);
        assert_eq!(
            texts(&page, "#log .card").await.len(),
            7,
            "cards come back too"
        );

        // The network drops and stays down while an expert writes; when it is back, the page
        // reconnects and shows what it missed, once.
        proxy.refuse(true);
        proxy.cut();
        wait_texts(&page, "#connection", |t| t == ["Reconnecting…"]).await;
        let token = js(
            &page,
            "return localStorage.getItem('concierge.chat.token');",
        )
        .await;
        let key = concierge::http::chat::conversation_key(token.as_str().unwrap()).unwrap();
        concierge::outbound::to_attendee_live(
            &state,
            &key,
            "Sent while you were away",
            "expert",
            Some("Nora Whitfield"),
            state.clock.now(),
        )
        .await
        .unwrap();
        proxy.refuse(false);
        connected(&page).await;
        wait_texts(&page, "#log .from-expert .text", |t| {
            t == ["Sent while you were away"]
        })
        .await;
        say(&page, "where is the keynote").await;
        wait_texts(&page, "#log li[data-n]", |t| t.len() == 7).await;
        assert_eq!(shown_numbers(&page).await, [1, 2, 3, 4, 5, 6, 7]);
    })
    .await;
}

#[tokio::test]
async fn markup_in_titles_and_messages_is_shown_as_text() {
    let Some(driver) = driver("America/Los_Angeles").await else {
        return;
    };
    let server = server(fixed_clock()).await;
    // An agenda whose 10:30 sessions have hostile titles, uploaded through the operator page.
    let script_title = "<script>window.__xss = 'title'</script>Live coding";
    let img_title = "<img src=x onerror=\"window.__xss='img'\"> Media servers";
    let mut agenda: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/agenda.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut changed = 0;
    for s in agenda["sessions"].as_array_mut().unwrap() {
        if s["start"] == "2026-06-09T10:30" && changed < 2 {
            s["title"] = json!(if changed == 0 {
                script_title
            } else {
                img_title
            });
            changed += 1;
        }
    }
    assert_eq!(changed, 2);
    let file = server._dir.path().join("hostile-agenda.json");
    std::fs::write(&file, serde_json::to_vec(&agenda).unwrap()).unwrap();

    let operator = browser(&driver).await;
    let attendee = browser(&driver).await;
    let (o, a, base) = (operator.clone(), attendee.clone(), server.base.clone());
    let pages = vec![("operator", operator), ("attendee", attendee)];
    scenario("xss", pages, async move {
        o.goto(&format!("{base}/admin")).await.unwrap();
        type_into(&o, "#token", &format!("{ADMIN_TOKEN}{ENTER}")).await;
        wait_texts(&o, "#agenda dd", |t| !t.is_empty()).await;
        type_into(&o, "#file", file.to_str().unwrap()).await;
        click(&o, "#upload button[type=submit]").await;
        wait_texts(&o, "#upload-result", |t| t.first().is_some_and(|r| r.starts_with("Imported"))).await;

        a.goto(&base).await.unwrap();
        connected(&a).await;
        say(&a, "what's next").await;
        let titles = wait_texts(&a, "#log .card .title", |t| t.len() == 7).await;
        assert!(titles.contains(&script_title.to_string()), "{titles:?}");
        assert!(titles.contains(&img_title.to_string()), "{titles:?}");
        let message = "<img src=x onerror=\"window.__xss='message'\"><b>bold?</b>";
        say(&a, message).await;
        wait_texts(&a, "#log .from-attendee .text", |t| t.last().is_some_and(|m| m == message)).await;
        wait_texts(&a, "#log li[data-n]", |t| t.len() == 4).await;
        let injected = js(
            &a,
            "return [document.querySelectorAll('#log img, #log script, #log b').length, window.__xss === undefined];",
        )
        .await;
        assert_eq!(injected, json!([0, true]), "markup was parsed");

        // The same message is on the operator's list, as text too.
        o.refresh().await.unwrap();
        wait_texts(&o, "#unmatched tbody td.text", |t| t.iter().any(|m| m == message)).await;
        let injected = js(
            &o,
            "return [document.querySelectorAll('#unmatched img, #unmatched b').length, window.__xss === undefined];",
        )
        .await;
        assert_eq!(injected, json!([0, true]), "markup was parsed on the operator page");
    })
    .await;
}

#[tokio::test]
async fn the_operator_page_lists_what_the_bot_did_not_understand() {
    let Some(driver) = driver("America/Los_Angeles").await else {
        return;
    };
    let server = server(fixed_clock()).await;
    let attendee = browser(&driver).await;
    let operator = browser(&driver).await;
    let (a, o, base) = (attendee.clone(), operator.clone(), server.base.clone());
    let pages = vec![("attendee", attendee), ("operator", operator)];
    scenario("operator", pages, async move {
        a.goto(&base).await.unwrap();
        connected(&a).await;
        say(&a, "purple elephant banana").await;
        wait_texts(&a, "#log li[data-n]", |t| t.len() == 2).await;
        say(&a, "Purple elephant banana!").await;
        wait_texts(&a, "#log li[data-n]", |t| t.len() == 4).await;
        say(&a, "what's next").await;
        wait_texts(&a, "#log li[data-n]", |t| t.len() == 6).await;

        o.goto(&format!("{base}/admin")).await.unwrap();
        type_into(&o, "#token", &format!("{ADMIN_TOKEN}{ENTER}")).await;
        let rows = wait_texts(&o, "#unmatched tbody tr", |t| !t.is_empty()).await;
        // Both wordings count as one message, shown as last written, twice.
        assert!(rows[0].starts_with("Purple elephant banana!"), "{rows:?}");
        let count = texts(&o, "#unmatched tbody tr:first-child td:nth-child(2)").await;
        assert_eq!(count, ["2"]);
        let hits = texts(&o, "#hits tbody tr").await;
        assert!(hits.iter().any(|h| h == "fallback 2"), "{hits:?}");
        assert!(hits.iter().any(|h| h == "next_session 1"), "{hits:?}");
        let agenda = texts(&o, "#agenda dd").await;
        assert_eq!(agenda[0], "Pacific Dev Summit 2026");
        let intents = texts(&o, "#intents dd").await;
        assert!(intents[3].contains("agenda.toml"), "{intents:?}");

        // A wrong token is refused and the page says so.
        o.execute("sessionStorage.clear();", vec![]).await.unwrap();
        o.refresh().await.unwrap();
        type_into(&o, "#token", &format!("not-the-token{ENTER}")).await;
        wait_texts(&o, "#sign-in-error", |t| {
            t == ["That is not the admin token."]
        })
        .await;
    })
    .await;
}
