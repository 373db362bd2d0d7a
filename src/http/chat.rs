//! The web chat's transport: a JSON route and a WebSocket carrying the same exchange. The page at
//! `/` (see [`super::pages`]) speaks the WebSocket and falls back to the JSON route.
//!
//! | route | what |
//! |---|---|
//! | `POST /chat/sessions` | a new conversation: `{"token": …}`, random and unguessable, kept by the browser |
//! | `POST /chat/messages` | `{"token", "id", "text", "save"?, "remove"?}` → the exchange; the same `id` again gives the same replies |
//! | `GET /chat/messages?token=…&after=N` | the conversation after its Nth message, and its state, to resume |
//! | `GET /chat/ws?token=…` | a WebSocket with the same exchange, expert messages and queue changes pushed live |
//!
//! Every message of a conversation has a number `n` (from 1, in order). A client keeps the highest
//! `n` it has shown and resumes after it, so a reload or a dropped socket neither loses nor
//! repeats a message. A message is `{"n", "at", "from": "attendee" | "concierge" | "expert",
//! "text", "sessions": [card…], "by"?}`; a card is a session with its times (instants plus the
//! conference's own clock and zone, so the page can add the browser's), room, track, speakers and
//! whether the attendee saved it. `save` (a session id) is the card's "add to my agenda" button:
//! the message is read as saving that session, whatever its text says; `remove` likewise is the
//! agenda panel's button.
//!
//! The conversation's `state` comes with every answer: `{"mode": "bot"}`, `{"mode": "waiting",
//! "position", "minutes"}` or `{"mode": "expert", "expert"}`, with `quick_replies` for it and the
//! attendee's `agenda` (saved sessions as cards in time order, each with the titles it
//! `overlaps`) for the side panel.
//!
//! WebSocket frames (JSON text):
//! - client → `{"type": "message", "id", "text", "save"?, "remove"?}`; server → `{"type": "reply", "id",
//!   "messages": […], "state", "quick_replies", "duplicate"}`;
//! - client → `{"type": "resume", "after": N}`; server → `{"type": "history", "messages", "state",
//!   "quick_replies"}`;
//! - server → `{"type": "push", "message", "state", "quick_replies"}` when an expert or a notice
//!   writes; `{"type": "state", …}` when the queue position changes; `{"type": "resync"}` when the
//!   server lost track (resume); `{"type": "error", "id"?, "message"}` for a frame it cannot take
//!   (with the message's id when it was a message; the socket stays open).
//!
//! Limits: messages of at most [`MAX_TEXT`] characters; a rate per conversation and per client
//! address (`[web]` in the configuration; 429 with `Retry-After`). The conversation is keyed by a
//! hash of the token, so the store never holds a usable token. Nothing here renders HTML: the page
//! puts every string in as text.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppError;
use super::client_addr::ClientAddr;
use super::extract::Query;
use crate::agenda::{AgendaIndex, Session};
use crate::conversation::Attendee;
use crate::inbox::{self, Message, Sender};
use crate::intents::Lang;
use crate::routing::TaskStatus;
use crate::state::AppState;
use crate::store::TranscriptEntry;

/// The longest message the chat accepts, in characters.
pub const MAX_TEXT: usize = 1000;

/// How often an open socket of a waiting attendee checks whether their place in the queue moved.
const QUEUE_POLL: std::time::Duration = std::time::Duration::from_secs(3);

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/chat/sessions", post(new_session))
        .route("/chat/messages", post(send).get(history))
        .route("/chat/ws", axum::routing::get(websocket))
}

/// The conversation key for a chat token: `web:` and the first 32 hex digits of its SHA-256;
/// `None` for anything that is not a chat token.
pub fn conversation_key(token: &str) -> Option<String> {
    let token = token.trim();
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(token.as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    Some(format!("web:{hex}"))
}

fn key_of(token: &str) -> Result<String, AppError> {
    conversation_key(token).ok_or_else(|| AppError::BadRequest("token is not a chat token".into()))
}

fn retry_after(wait: jiff::SignedDuration) -> AppError {
    AppError::TooManyRequests(wait.as_secs().max(0) as u64 + 1)
}

fn limit_address(state: &AppState, addr: &ClientAddr) -> Result<(), AppError> {
    state
        .limits
        .per_address
        .check(&addr.0, state.clock.now())
        .map_err(retry_after)
}

fn limit_conversation(state: &AppState, key: &str) -> Result<(), AppError> {
    state
        .limits
        .per_conversation
        .check(key, state.clock.now())
        .map_err(retry_after)
}

async fn new_session(
    State(state): State<AppState>,
    addr: ClientAddr,
) -> Result<Json<Value>, AppError> {
    limit_address(&state, &addr)?;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|err| AppError::Internal(format!("no randomness: {err}")))?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(Json(json!({ "token": token })))
}

#[derive(Deserialize)]
struct SendRequest {
    token: String,
    /// The browser's id for this message; a retry with the same id is answered, not re-run.
    id: String,
    text: String,
    /// A session to save (the card's button).
    #[serde(default)]
    save: Option<String>,
    /// A session to remove (the agenda panel's button).
    #[serde(default)]
    remove: Option<String>,
}

async fn send(
    State(state): State<AppState>,
    addr: ClientAddr,
    body: Result<Json<SendRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, AppError> {
    limit_address(&state, &addr)?;
    let Json(request) = body.map_err(|err| AppError::BadRequest(err.body_text()))?;
    let key = key_of(&request.token)?;
    let outgoing = Outgoing {
        id: request.id,
        text: request.text,
        save: request.save,
        remove: request.remove,
    };
    Ok(Json(exchange(&state, &key, outgoing).await?))
}

/// A message from the browser, whichever transport carried it.
struct Outgoing {
    id: String,
    text: String,
    save: Option<String>,
    remove: Option<String>,
}

/// One message through the engine; the answer as the transports send it.
async fn exchange(state: &AppState, key: &str, m: Outgoing) -> Result<Value, AppError> {
    let text = m.text.trim();
    if text.is_empty() {
        return Err(AppError::BadRequest("text is empty".into()));
    }
    if text.chars().count() > MAX_TEXT {
        return Err(AppError::BadRequest(format!(
            "text is longer than {MAX_TEXT} characters"
        )));
    }
    let id = m.id.trim();
    if id.is_empty() || id.len() > 64 {
        return Err(AppError::BadRequest("id must be 1 to 64 characters".into()));
    }
    for id in m.save.iter().chain(&m.remove) {
        if state.agenda().session(id).is_none() {
            return Err(AppError::BadRequest(format!(
                "there is no session {id:?} in the agenda"
            )));
        }
    }
    let idempotency_key = format!("{key}:{id}");
    // A retry is answered even when the conversation is over its rate: it costs nothing.
    let earlier = inbox::earlier(state, &idempotency_key).map_err(internal)?;
    if earlier.is_none() {
        limit_conversation(state, key)?;
    }
    let message = Message {
        sender: Sender::Web(key.to_string()),
        text: text.to_string(),
        has_media: false,
        message_id: Some(id.to_string()),
        idempotency_key: Some(idempotency_key),
        opt_out_type: None,
        save: m.save,
        remove: m.remove,
    };
    let now = state.clock.now();
    let outcome = match earlier {
        Some(outcome) => outcome,
        None => inbox::handle(state, message, now).await.map_err(internal)?,
    };
    let attendee = state.store.attendee(key).map_err(internal)?;
    let agenda = state.agenda();
    // A duplicate's messages are already numbered in the history; the client resumes for them.
    let messages: Vec<Value> = match outcome.n {
        Some(n) => std::iter::once(json!({
            "n": n, "at": now, "from": "attendee", "text": text, "sessions": [],
        }))
        .chain(outcome.replies.iter().enumerate().map(|(i, r)| {
            json!({
                "n": n + 1 + i,
                "at": now,
                "from": "concierge",
                "text": r.text,
                "sessions": cards(&agenda, &r.sessions, &attendee),
            })
        }))
        .collect(),
        None => Vec::new(),
    };
    let mut answer = json!({ "messages": messages, "duplicate": outcome.duplicate });
    add_state(state, &attendee, &mut answer);
    Ok(answer)
}

fn internal(err: impl std::fmt::Display) -> AppError {
    AppError::Internal(err.to_string())
}

#[derive(Deserialize)]
struct HistoryQuery {
    token: String,
    #[serde(default)]
    after: usize,
}

async fn history(
    State(state): State<AppState>,
    addr: ClientAddr,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<Value>, AppError> {
    limit_address(&state, &addr)?;
    let key = key_of(&q.token)?;
    Ok(Json(resume(&state, &key, q.after)?))
}

/// The conversation after its `after`th message, with its state.
fn resume(state: &AppState, key: &str, after: usize) -> Result<Value, AppError> {
    let entries = state.store.transcript(key).map_err(internal)?;
    let attendee = state.store.attendee(key).map_err(internal)?;
    let agenda = state.agenda();
    let messages: Vec<Value> = entries
        .iter()
        .enumerate()
        .skip(after)
        .map(|(i, e)| message_view(&agenda, &attendee, i + 1, e))
        .collect();
    let mut answer = json!({ "messages": messages });
    add_state(state, &attendee, &mut answer);
    Ok(answer)
}

/// One transcript entry as the page shows it.
fn message_view(agenda: &AgendaIndex, attendee: &Attendee, n: usize, e: &TranscriptEntry) -> Value {
    let from = match (e.inbound, &e.by) {
        (true, _) => "attendee",
        (false, Some(_)) => "expert",
        (false, None) => "concierge",
    };
    let mut v = json!({
        "n": n,
        "at": e.at,
        "from": from,
        "text": e.text,
        "sessions": cards(agenda, &e.sessions, attendee),
    });
    if let Some(by) = &e.by {
        v["by"] = json!(by);
    }
    v
}

/// Session cards for the ids still in the agenda.
fn cards(agenda: &AgendaIndex, ids: &[String], attendee: &Attendee) -> Vec<Value> {
    ids.iter()
        .filter_map(|id| agenda.session(id))
        .map(|s| card(agenda, s, attendee.saved.contains(&s.id)))
        .collect()
}

/// One session as a card: the page shows the conference clock, and the browser's own when the
/// browser is elsewhere.
pub fn card(agenda: &AgendaIndex, s: &Session, saved: bool) -> Value {
    let zone = &agenda.agenda().conference.time_zone;
    let (start, end) = (zone.at(s.start), zone.at(s.end));
    let speakers: Vec<&str> = agenda.speakers_of(s).map(|p| p.name.as_str()).collect();
    json!({
        "id": s.id,
        "title": s.title,
        "start": s.start,
        "end": s.end,
        "time_zone": zone.name(),
        "day": start.strftime("%a %-d %b").to_string(),
        "time": format!("{}–{}", start.strftime("%H:%M"), end.strftime("%H:%M")),
        "room": s.room,
        "track": s.track,
        "kind": s.kind.as_str(),
        "speakers": speakers,
        "url": s.url,
        "saved": saved,
    })
}

/// Adds the conversation's `state`, its `quick_replies` and the attendee's `agenda` to an answer.
fn add_state(state: &AppState, attendee: &Attendee, answer: &mut Value) {
    let view = conversation_state(state, attendee);
    let lang = attendee.language.unwrap_or(Lang::En);
    answer["quick_replies"] = json!(quick_replies(&view, lang));
    answer["state"] = view;
    answer["agenda"] = json!(my_agenda(&state.agenda(), attendee));
}

/// The saved sessions as cards in time order, each with the titles it overlaps.
fn my_agenda(agenda: &AgendaIndex, attendee: &Attendee) -> Vec<Value> {
    let mut sessions: Vec<&Session> = attendee
        .saved
        .iter()
        .filter_map(|id| agenda.session(id))
        .collect();
    sessions.sort_by_key(|s| (s.start, s.end));
    sessions
        .iter()
        .map(|s| {
            let mut c = card(agenda, s, true);
            let overlaps: Vec<&str> = sessions
                .iter()
                .filter(|o| o.id != s.id && o.start < s.end && s.start < o.end)
                .map(|o| o.title.as_str())
                .collect();
            c["overlaps"] = json!(overlaps);
            c
        })
        .collect()
}

/// Where the conversation is: with the bot, waiting for an expert, or with one.
fn conversation_state(state: &AppState, attendee: &Attendee) -> Value {
    let Some(task) = attendee.handoff.and_then(|id| state.desk.task(id)) else {
        return json!({ "mode": "bot" });
    };
    match task.status {
        TaskStatus::Pending | TaskStatus::Reserved => {
            let standing = state.desk.standing(task.id, state.clock.now());
            json!({
                "mode": "waiting",
                "position": standing.as_ref().map(|e| e.position),
                "minutes": standing.and_then(|e| e.minutes),
            })
        }
        TaskStatus::Assigned | TaskStatus::Wrapping => {
            let name = task.expert.as_deref().map(|id| state.desk.expert_name(id));
            json!({ "mode": "expert", "expert": name })
        }
        TaskStatus::Completed | TaskStatus::Canceled => json!({ "mode": "bot" }),
    }
}

/// The buttons under the conversation: each sends its text as a message, which the shipped
/// intents read as the button says.
fn quick_replies(view: &Value, lang: Lang) -> Vec<&'static str> {
    match (view["mode"].as_str(), lang) {
        (Some("bot"), Lang::Es) => vec!["¿Qué sigue?", "Hablar con un experto", "Mi agenda"],
        (Some("bot"), _) => vec!["What's next?", "Talk to an expert", "My agenda"],
        (_, Lang::Es) => vec!["Volver al bot"],
        (_, _) => vec!["Back to the bot"],
    }
}

#[derive(Deserialize)]
struct WsQuery {
    token: String,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Frame {
    Message {
        id: String,
        text: String,
        #[serde(default)]
        save: Option<String>,
        #[serde(default)]
        remove: Option<String>,
    },
    Resume {
        after: usize,
    },
}

async fn websocket(
    State(state): State<AppState>,
    addr: ClientAddr,
    Query(q): Query<WsQuery>,
    upgrade: axum::extract::ws::WebSocketUpgrade,
) -> Result<axum::response::Response, AppError> {
    limit_address(&state, &addr)?;
    let key = key_of(&q.token)?;
    Ok(upgrade
        .max_message_size(16 * 1024)
        .on_upgrade(move |socket| serve_socket(state, key, socket)))
}

/// One browser's socket: frames in, answers and pushes out, until either side closes. While the
/// attendee waits for an expert, their place in the queue is sent whenever it changes.
async fn serve_socket(state: AppState, key: String, mut socket: axum::extract::ws::WebSocket) {
    use axum::extract::ws::Message as Ws;
    let mut pushes = state.web_push.subscribe();
    let mut poll = tokio::time::interval(QUEUE_POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_state = Value::Null;
    loop {
        let out = tokio::select! {
            frame = socket.recv() => match frame {
                Some(Ok(Ws::Text(text))) => Some(answer(&state, &key, &text).await),
                Some(Ok(Ws::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => None,
            },
            push = pushes.recv() => match push {
                Ok(push) if push.to == key => Some(pushed(&state, &key, push)),
                Ok(_) => None,
                // Missed pushes are in the history; tell the page to resume.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => Some(json!({ "type": "resync" })),
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            },
            _ = poll.tick() => {
                match state.store.attendee(&key) {
                    Ok(a) if a.handoff.is_some() || last_state.get("mode").is_some_and(|m| m != "bot") => {
                        let mut v = json!({ "type": "state" });
                        add_state(&state, &a, &mut v);
                        Some(v)
                    }
                    _ => None,
                }
            }
        };
        let Some(value) = out else { continue };
        if let Some(s) = value.get("state") {
            if value["type"] == "state" && *s == last_state {
                continue;
            }
            last_state = s.clone();
        }
        if socket
            .send(Ws::Text(value.to_string().into()))
            .await
            .is_err()
        {
            break;
        }
    }
}

/// A push frame for this socket's conversation.
fn pushed(state: &AppState, key: &str, push: crate::state::WebPush) -> Value {
    let entry = TranscriptEntry {
        at: state.clock.now(),
        inbound: false,
        text: push.text,
        message_id: None,
        intent: None,
        sessions: Vec::new(),
        by: push.by,
    };
    let attendee = state.store.attendee(key).unwrap_or_default();
    let mut v = json!({
        "type": "push",
        "message": message_view(&state.agenda(), &attendee, push.n, &entry),
    });
    add_state(state, &attendee, &mut v);
    v
}

/// Reads a client frame; the error says what is wrong with it (the fuzz target's entry point).
pub fn read_frame(text: &str) -> Result<(), String> {
    parse_frame(text).map(|_| ())
}

fn parse_frame(text: &str) -> Result<Frame, String> {
    serde_json::from_str(text).map_err(|err| format!("not a frame this server takes: {err}"))
}

async fn answer(state: &AppState, key: &str, text: &str) -> Value {
    let frame = match parse_frame(text) {
        Ok(f) => f,
        Err(message) => return json!({ "type": "error", "message": message }),
    };
    match frame {
        Frame::Message {
            id,
            text,
            save,
            remove,
        } => {
            let m = Outgoing {
                id: id.clone(),
                text,
                save,
                remove,
            };
            match exchange(state, key, m).await {
                Ok(mut v) => {
                    v["type"] = json!("reply");
                    v["id"] = json!(id);
                    v
                }
                // The id tells the page which message was not taken.
                Err(err) => json!({ "type": "error", "id": id, "message": err.message() }),
            }
        }
        Frame::Resume { after } => match resume(state, key, after) {
            Ok(mut v) => {
                v["type"] = json!("history");
                v
            }
            Err(err) => json!({ "type": "error", "message": err.message() }),
        },
    }
}
