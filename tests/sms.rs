//! The SMS webhook over a real bound port: Twilio signatures, idempotent redelivery, opt-out and
//! opt-in, HELP, bad input (never a 5xx), TwiML escaping, delivery status callbacks, and what is on
//! disk afterwards.

use std::path::Path;
use std::sync::Arc;

use concierge::clock::FixedClock;
use concierge::config::{Origin, RawConfig, Secret, TwilioConfig};
use concierge::sms::signature;
use concierge::state::AppState;
use concierge::store::Store;
use tokio::sync::oneshot;

const TOKEN: &str = "twilio-test-auth-token";
const ACCOUNT: &str = "AC00000000000000000000000000000001";
const PUBLIC: &str = "https://concierge.example.org";
const FROM: &str = "+15551230001";

struct Server {
    base: String,
    client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    store: Store,
    state: AppState,
}

/// 17:05 UTC is 10:05 in Los Angeles (PDT) on 2026-06-09, the demo's first day when placed today.
const NOW: &str = "2026-06-09T17:05:00Z";

async fn start(dir: &Path, twilio: bool) -> Server {
    let mut config = RawConfig::default()
        .validate(Origin {
            file: None,
            env: vec![],
        })
        .unwrap();
    config.data_dir = dir.to_path_buf();
    if twilio {
        config.twilio = Some(TwilioConfig {
            account_sid: ACCOUNT.into(),
            auth_token: Secret::new(TOKEN),
            sender: "+15550009999".into(),
            api_base: "http://127.0.0.1:9".into(),
            timeout_secs: 10,
        });
        config.public_url = Some(PUBLIC.parse().unwrap());
    }
    let store = Store::open(dir, 8 << 20).unwrap();
    let clock = Arc::new(FixedClock::new(NOW.parse().unwrap()));
    config.routing_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/routing.toml");
    let (state, _) = AppState::open(config, store.clone(), clock).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(concierge::http::run(listener, state.clone(), async {
        let _ = stopped.await;
    }));
    Server {
        base,
        client: reqwest::Client::new(),
        stop: Some(stop),
        task,
        store,
        state,
    }
}

impl Server {
    async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        self.task.await.unwrap().unwrap();
    }

    /// Posts a form signed as Twilio would sign it for `url` (or unsigned with `sign: None`).
    async fn post_signed(
        &self,
        path: &str,
        params: &[(&str, &str)],
        url: Option<&str>,
    ) -> (u16, String) {
        let pairs: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let body = encode(&pairs);
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(url) = url {
            request = request.header("x-twilio-signature", signature::compute(TOKEN, url, &pairs));
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    async fn sms(&self, sid: &str, body: &str) -> (u16, String) {
        let params = inbound(sid, body);
        let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.post_signed("/sms", &params, Some(&format!("{PUBLIC}/sms")))
            .await
    }
}

fn encode(pairs: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// The parameters of an inbound SMS as Twilio sends them.
fn inbound(sid: &str, body: &str) -> Vec<(&'static str, String)> {
    vec![
        ("ToCountry", "US".into()),
        ("SmsMessageSid", sid.into()),
        ("NumMedia", "0".into()),
        ("SmsSid", sid.into()),
        ("SmsStatus", "received".into()),
        ("Body", body.into()),
        ("To", "+15550009999".into()),
        ("NumSegments", "1".into()),
        ("MessageSid", sid.into()),
        ("AccountSid", ACCOUNT.into()),
        ("From", FROM.into()),
        ("ApiVersion", "2010-04-01".into()),
    ]
}

fn messages(twiml: &str) -> Vec<String> {
    twiml
        .split("<Message>")
        .skip(1)
        .map(|m| m.split("</Message>").next().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn signed_messages_get_twiml_answers_and_bad_signatures_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), true).await;

    let (status, body) = server.sms("SM0001", "whats next?").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>Next up:"),
        "{body}"
    );
    assert!(
        body.contains("1) 10:30 Main Stage: Retrieval-Augmented Assistants"),
        "{body}"
    );

    // Twilio may sign the URL with the default port written out.
    let params = inbound("SM0002", "hi");
    let p: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, _) = server
        .post_signed("/sms", &p, Some("https://concierge.example.org:443/sms"))
        .await;
    assert_eq!(status, 200);

    // Missing signature: 400. Signed for other content, wrong URL, or another token: 403.
    let (status, _) = server.post_signed("/sms", &p, None).await;
    assert_eq!(status, 400);
    let (status, _) = server
        .post_signed("/sms", &p, Some("https://evil.example.org/sms"))
        .await;
    assert_eq!(status, 403);
    let tampered = inbound("SM0003", "hi");
    let pairs: Vec<(String, String)> = tampered
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let good = signature::compute(TOKEN, &format!("{PUBLIC}/sms"), &pairs);
    let mut altered = pairs.clone();
    altered.iter_mut().find(|(k, _)| k == "Body").unwrap().1 = "STOP".into();
    let response = server
        .client
        .post(format!("{}/sms", server.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", good)
        .body(encode(&altered))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let forged: Vec<(String, String)> = pairs.clone();
    let response = server
        .client
        .post(format!("{}/sms", server.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .header(
            "x-twilio-signature",
            signature::compute("another-token", &format!("{PUBLIC}/sms"), &forged),
        )
        .body(encode(&forged))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    // Another account's message, correctly signed: 403.
    let mut other = inbound("SM0004", "hi");
    other
        .iter_mut()
        .find(|(k, _)| *k == "AccountSid")
        .unwrap()
        .1 = "AC99999999999999999999999999999999".into();
    let p: Vec<(&str, &str)> = other.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, _) = server
        .post_signed("/sms", &p, Some(&format!("{PUBLIC}/sms")))
        .await;
    assert_eq!(status, 403);

    // Only the two accepted messages reached the transcript, and no opt-out happened.
    let transcript = server.store.transcript(&format!("sms:{FROM}")).unwrap();
    let inbound_texts: Vec<&str> = transcript
        .iter()
        .filter(|e| e.inbound)
        .map(|e| e.text.as_str())
        .collect();
    assert_eq!(inbound_texts, ["whats next?", "hi"]);
    assert!(!server.store.is_opted_out(FROM).unwrap());
    server.stop().await;
}

#[tokio::test]
async fn redelivery_is_processed_once_and_gets_the_same_reply() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), true).await;
    let (_, first) = server.sms("SM1000", "whats next").await;
    let (_, save) = server.sms("SM1001", "2").await;
    assert!(save.contains("Saved to your agenda"), "{save}");
    // Twilio retries both: same answers, nothing saved twice, no "already saved".
    let (status, again) = server.sms("SM1001", "2").await;
    assert_eq!(status, 200);
    assert_eq!(again, save);
    let (_, again) = server.sms("SM1000", "whats next").await;
    assert_eq!(again, first);
    let transcript = server.store.transcript(&format!("sms:{FROM}")).unwrap();
    assert_eq!(transcript.iter().filter(|e| e.inbound).count(), 2);
    let attendee = server.store.attendee(&format!("sms:{FROM}")).unwrap();
    assert_eq!(attendee.saved, ["s02"]);

    // The idempotency token header works when MessageSid is missing.
    let params: Vec<(String, String)> = inbound("x", "hi")
        .into_iter()
        .filter(|(k, _)| !k.contains("Sid") || *k == "AccountSid")
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let sig = signature::compute(TOKEN, &format!("{PUBLIC}/sms"), &params);
    for _ in 0..2 {
        let response = server
            .client
            .post(format!("{}/sms", server.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-twilio-signature", &sig)
            .header("i-twilio-idempotency-token", "token-1")
            .body(encode(&params))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let transcript = server.store.transcript(&format!("sms:{FROM}")).unwrap();
    assert_eq!(transcript.iter().filter(|e| e.inbound).count(), 3);
    server.stop().await;
}

#[tokio::test]
async fn opt_out_silences_everything_until_start() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), true).await;
    let (_, help) = server.sms("SM2000", "HELP").await;
    assert!(
        help.contains("Pacific Dev Summit 2026") && help.contains("STOP"),
        "{help}"
    );

    let (_, stop) = server.sms("SM2001", " Stop! ").await;
    assert_eq!(messages(&stop).len(), 1);
    assert!(stop.contains("unsubscribed"), "{stop}");
    assert!(server.store.is_opted_out(FROM).unwrap());
    for (i, text) in ["whats next", "HELP", "talk to an expert"]
        .iter()
        .enumerate()
    {
        let (status, body) = server.sms(&format!("SM201{i}"), text).await;
        assert_eq!(status, 200);
        assert!(body.ends_with("<Response/>"), "{text}: {body}");
    }
    let (_, start_reply) = server.sms("SM2020", "START").await;
    assert!(start_reply.contains("subscribed"), "{start_reply}");
    assert!(!server.store.is_opted_out(FROM).unwrap());

    // Twilio's OptOutType wins over the text.
    let mut params = inbound("SM2030", "please stop texting me");
    params.push(("OptOutType", "STOP".into()));
    let p: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (_, body) = server
        .post_signed("/sms", &p, Some(&format!("{PUBLIC}/sms")))
        .await;
    assert!(body.contains("unsubscribed"), "{body}");
    assert!(server.store.is_opted_out(FROM).unwrap());
    // YES while opted out opts back in.
    let (_, body) = server.sms("SM2031", "yes").await;
    assert!(body.contains("subscribed"), "{body}");
    assert!(!server.store.is_opted_out(FROM).unwrap());
    server.stop().await;
}

#[tokio::test]
async fn bad_input_never_gets_a_5xx() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), true).await;
    let url = format!("{PUBLIC}/sms");
    let sign = |pairs: &[(String, String)]| signature::compute(TOKEN, &url, pairs);
    let post_raw = |body: Vec<u8>, content_type: &str, sig: Option<String>| {
        let mut r = server
            .client
            .post(format!("{}/sms", server.base))
            .header("content-type", content_type.to_string())
            .body(body);
        if let Some(s) = sig {
            r = r.header("x-twilio-signature", s);
        }
        r.send()
    };
    // Wrong content type.
    let r = post_raw(
        b"{\"Body\":\"hi\"}".to_vec(),
        "application/json",
        Some("x".into()),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 415);
    // Too big.
    let r = post_raw(
        vec![b'a'; 70 * 1024],
        "application/x-www-form-urlencoded",
        Some("x".into()),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 413);
    // Invalid UTF-8 and percent-encoding.
    let r = post_raw(
        b"Body=%FF%FE&From=%2B15551230001".to_vec(),
        "application/x-www-form-urlencoded",
        Some("x".into()),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    let r = post_raw(
        b"Body=%ZZ".to_vec(),
        "application/x-www-form-urlencoded",
        Some("x".into()),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    // Signed, but missing or wrong fields.
    let cases: Vec<(Vec<(String, String)>, u16)> = vec![
        (
            vec![
                ("MessageSid".into(), "SM1".into()),
                ("Body".into(), "hi".into()),
            ],
            400,
        ),
        (
            vec![
                ("MessageSid".into(), "SM2".into()),
                ("From".into(), FROM.into()),
            ],
            400,
        ),
        (
            vec![
                ("MessageSid".into(), "SM3".into()),
                ("From".into(), "5551230001".into()),
                ("Body".into(), "hi".into()),
            ],
            400,
        ),
        (
            vec![("From".into(), FROM.into()), ("Body".into(), "hi".into())],
            400,
        ),
    ];
    for (pairs, expected) in cases {
        let r = post_raw(
            encode(&pairs).into_bytes(),
            "application/x-www-form-urlencoded",
            Some(sign(&pairs)),
        )
        .await
        .unwrap();
        assert_eq!(r.status().as_u16(), expected, "{pairs:?}");
    }
    // MMS with no text: a polite answer.
    let mut mms: Vec<(String, String)> = inbound("SM3000", "")
        .into_iter()
        .filter(|(k, _)| *k != "Body")
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    mms.iter_mut().find(|(k, _)| k == "NumMedia").unwrap().1 = "1".into();
    mms.push(("MediaUrl0".into(), "https://api.twilio.com/media/1".into()));
    mms.push(("MediaContentType0".into(), "image/jpeg".into()));
    let r = post_raw(
        encode(&mms).into_bytes(),
        "application/x-www-form-urlencoded",
        Some(sign(&mms)),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("I can only read text"));
    // Long bodies, emoji, markup and control characters get answers, escaped.
    for (sid, text) in [
        ("SM3001", "a".repeat(1600)),
        ("SM3002", "🎉🎉 whats next 🎉".into()),
        (
            "SM3003",
            "talks about <script>alert(1)</script> & more".into(),
        ),
        ("SM3004", "hi\u{0}\u{7} there".into()),
    ] {
        let (status, body) = server.sms(sid, &text).await;
        assert_eq!(status, 200, "{text:?}");
        assert!(!body.contains("<script>"), "{body}");
        assert!(!body.contains('\u{0}'), "{body:?}");
    }
    // Replies are XML-escaped (the topic is echoed in its normalised form, so no markup survives).
    let (_, body) = server.sms("SM3005", "talks about <b>x</b> & y").await;
    assert!(
        body.contains("couldn&apos;t find a session about b x b y"),
        "{body}"
    );
    assert!(body.contains("&quot;what&apos;s next&quot;"), "{body}");
    // The follow-up question names "Identity & Security", which TwiML carries as "&amp;".
    let (_, body) = server.sms("SM3006", "is there a talk").await;
    assert!(body.contains("Identity &amp; Security"), "{body}");
    server.stop().await;
}

#[tokio::test]
async fn without_twilio_credentials_nothing_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), false).await;
    let (status, body) = server.sms("SM4000", "hi").await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("no Twilio auth token"), "{body}");
    server.stop().await;
}

#[tokio::test]
async fn status_callbacks_only_move_forward() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), true).await;
    let url = format!("{PUBLIC}/sms/status");
    let callback = |status: &'static str| {
        vec![
            ("MessageSid", "SM5000"),
            ("MessageStatus", status),
            ("AccountSid", ACCOUNT),
            ("From", "+15550009999"),
            ("To", FROM),
        ]
    };
    for (sent, kept) in [
        ("sent", "sent"),
        ("delivered", "delivered"),
        ("sending", "delivered"),
        ("queued", "delivered"),
        ("read", "read"),
        ("delivered", "read"),
    ] {
        let (status, body) = server
            .post_signed("/sms/status", &callback(sent), Some(&url))
            .await;
        assert_eq!(status, 200, "{body}");
        assert!(body.ends_with("<Response/>"));
        assert_eq!(
            server.store.delivery("SM5000").unwrap().unwrap().status,
            kept,
            "after {sent}"
        );
    }
    let (status, _) = server
        .post_signed("/sms/status", &callback("sent"), None)
        .await;
    assert_eq!(status, 400);
    let (status, _) = server
        .post_signed("/sms/status", &callback("exploded"), Some(&url))
        .await;
    assert_eq!(status, 400);
    server.stop().await;
}

#[tokio::test]
async fn conversations_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), true).await;
    server.sms("SM6000", "whats next").await;
    server.sms("SM6001", "save 3").await;
    server.sms("SM6002", "STOP").await;
    server.stop().await;

    let server = start(dir.path(), true).await;
    assert!(server.store.is_opted_out(FROM).unwrap());
    let attendee = server.store.attendee(&format!("sms:{FROM}")).unwrap();
    assert_eq!(attendee.saved, ["s03"]);
    assert_eq!(
        server
            .store
            .transcript(&format!("sms:{FROM}"))
            .unwrap()
            .len(),
        6
    );
    // The idempotency records survived too.
    let (_, body) = server.sms("SM6001", "save 3").await;
    assert!(body.contains("Saved to your agenda"), "{body}");
    server.stop().await;
}

#[tokio::test]
async fn idempotency_records_expire() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), true).await;
    server.sms("SM7000", "hi").await;
    assert!(server.store.processed("SM7000").unwrap().is_some());
    let held = server.store.in_memory();
    assert_eq!((held.attendees, held.idempotency_keys), (1, 1));
    let now: jiff::Timestamp = NOW.parse().unwrap();
    assert_eq!(server.store.expire_processed(now).unwrap(), 0);
    let later = now.checked_add(jiff::SignedDuration::from_secs(1)).unwrap();
    assert_eq!(server.store.expire_processed(later).unwrap(), 1);
    assert!(server.store.processed("SM7000").unwrap().is_none());
    assert_eq!(server.store.in_memory().idempotency_keys, 0);
    // Once forgotten, the same MessageSid is a new message again, and remembered again.
    server.sms("SM7000", "hi").await;
    assert!(server.store.processed("SM7000").unwrap().is_some());
    assert_eq!(server.store.expire_processed(later).unwrap(), 1);
    assert!(server.store.processed("SM7000").unwrap().is_none());
    server.stop().await;
}

#[tokio::test]
async fn a_hand_off_queues_a_task_that_an_expert_takes_and_survives_a_restart() {
    use concierge::routing::{Availability, TaskStatus};
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), true).await;
    let now: jiff::Timestamp = NOW.parse().unwrap();
    // Nobody is online yet: the attendee is told so, and the task waits.
    let (_, body) = server.sms("SM8000", "can a video expert help me?").await;
    assert!(body.contains("finding a video expert"), "{body}");
    assert!(
        body.contains("No one is online for that right now"),
        "{body}"
    );
    let attendee = server.store.attendee(&format!("sms:{FROM}")).unwrap();
    let task = attendee.handoff.expect("the attendee is in a hand-off");
    assert_eq!(server.state.desk.waiting(), [task]);
    let (_, body) = server.sms("SM8001", "it is about simulcast").await;
    assert!(body.contains("still in line"), "{body}");
    server.stop().await;

    // After a restart the task is still queued, with the attendee's message.
    let server = start(dir.path(), true).await;
    assert_eq!(server.state.desk.waiting(), [task]);
    let t = server.state.desk.task(task).unwrap();
    assert_eq!(t.skill.as_deref(), Some("video"));
    assert_eq!(t.messages.len(), 1);
    assert_eq!(t.messages[0].1, "it is about simulcast");

    // Nora (video) comes online: she is offered it, accepts; the attendee's next message goes to
    // her with no bot reply; when she completes, the bot answers again.
    let desk = &server.state.desk;
    let decisions = desk
        .set_status("nora", Availability::Available, now)
        .await
        .unwrap();
    assert!(
        matches!(&decisions[..], [concierge::routing::Decision::Offer { expert, .. }] if expert == "nora"),
        "{decisions:?}"
    );
    desk.accept(task, "nora", now).await.unwrap();
    let (status, body) = server.sms("SM8002", "are you there?").await;
    assert_eq!(status, 200);
    assert!(body.ends_with("<Response/>"), "{body}");
    assert_eq!(desk.task(task).unwrap().messages.len(), 2);
    desk.complete(task, "nora", now).await.unwrap();
    assert_eq!(desk.task(task).unwrap().status, TaskStatus::Completed);
    let (_, body) = server.sms("SM8003", "whats next").await;
    assert!(body.contains("Next up:"), "{body}");
    assert!(
        server
            .store
            .attendee(&format!("sms:{FROM}"))
            .unwrap()
            .handoff
            .is_none()
    );
    server.stop().await;

    // Each message was stored on its own with its turn; the task's record, saved again when it
    // was accepted and completed, holds them too: read back once each, in order.
    let server = start(dir.path(), true).await;
    let t = server.state.desk.task(task).unwrap();
    assert_eq!(t.status, TaskStatus::Completed);
    let texts: Vec<&str> = t.messages.iter().map(|(_, text)| text.as_str()).collect();
    assert_eq!(texts, ["it is about simulcast", "are you there?"]);
    server.stop().await;
}

/// "whats next" from the flooding number of the test below, signed; the status.
async fn flood(server: &Server, sid: &str) -> u16 {
    let params: Vec<(&str, String)> = inbound(sid, "whats next")
        .into_iter()
        .map(|(k, v)| {
            if k == "From" {
                (k, FLOODER.to_string())
            } else {
                (k, v)
            }
        })
        .collect();
    let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    server
        .post_signed("/sms", &params, Some(&format!("{PUBLIC}/sms")))
        .await
        .0
}

const FLOODER: &str = "+14155550199";

#[tokio::test]
async fn a_flood_from_one_number_does_not_starve_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), true).await;
    let flooder = FLOODER;
    let mut statuses = Vec::new();
    for i in 0..15 {
        let sid = format!("SMflood{i:027}");
        statuses.push(flood(&server, &sid).await);
    }
    // The burst (10), then refused; nothing of the refused ones is stored.
    assert_eq!(&statuses[..10], &[200; 10]);
    assert_eq!(&statuses[10..], &[429; 5]);
    let transcript = server.store.transcript(&format!("sms:{flooder}")).unwrap();
    assert_eq!(transcript.iter().filter(|e| e.inbound).count(), 10);
    // Another number is answered at once; a redelivery of an answered message still is too.
    let (status, twiml) = server
        .sms("SMother000000000000000000000000001", "whats next")
        .await;
    assert_eq!(status, 200);
    assert!(messages(&twiml)[0].starts_with("Next up"), "{twiml}");
    let status = flood(&server, "SMflood000000000000000000000000000").await;
    assert_eq!(status, 200, "a redelivery is answered");
    server.stop().await;
}

/// `POST /sms` is served before the router (`http::run`), in the same edge: a body over the limit
/// is refused even without a `Content-Length`, a query is part of the signed URL, every answer
/// is counted under the route's pattern, and other methods still get the router's answer.
#[tokio::test]
async fn the_webhook_served_before_the_router_keeps_the_edge() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), true).await;

    let addr = server.base.trim_start_matches("http://").to_string();
    let mut chunked = tokio::net::TcpStream::connect(&addr).await.unwrap();
    chunked
        .write_all(
            b"POST /sms HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
              X-Twilio-Signature: x\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
        .await
        .unwrap();
    let chunk = format!("400\r\n{}\r\n", "a".repeat(1024));
    for _ in 0..70 {
        if chunked.write_all(chunk.as_bytes()).await.is_err() {
            break; // answered and closed before the whole body
        }
    }
    let _ = chunked.write_all(b"0\r\n\r\n").await;
    let mut answer = vec![0u8; 64];
    let read = chunked.read(&mut answer).await.unwrap();
    let head = String::from_utf8_lossy(&answer[..read]).to_string();
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");

    let params = inbound("SMquery0001", "what's next");
    let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, twiml) = server
        .post_signed(
            "/sms?source=twilio",
            &params,
            Some(&format!("{PUBLIC}/sms?source=twilio")),
        )
        .await;
    assert_eq!(status, 200, "{twiml}");
    assert!(twiml.contains("<Message>"), "{twiml}");
    // Signed for the URL without its query: refused.
    let (status, _) = server
        .post_signed(
            "/sms?source=twilio",
            &params,
            Some(&format!("{PUBLIC}/sms")),
        )
        .await;
    assert_eq!(status, 403);

    let r = server
        .client
        .get(format!("{}/sms", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);

    let text = server.state.metrics.render(&Default::default());
    for series in [
        r#"concierge_http_requests_total{route="/sms",method="POST",status="413"} 1"#,
        r#"concierge_http_requests_total{route="/sms",method="POST",status="200"} 1"#,
        r#"concierge_http_requests_total{route="/sms",method="POST",status="403"} 1"#,
        r#"concierge_http_requests_total{route="/sms",method="GET",status="405"} 1"#,
        r#"concierge_http_request_duration_seconds_count{route="/sms"} 4"#,
    ] {
        assert!(text.contains(series), "no {series} in\n{text}");
    }
    server.stop().await;
}
