//! The web chat's HTTP JSON transport (the page and its WebSocket come with the web chat issue).
//!
//! | route | what |
//! |---|---|
//! | `POST /chat/sessions` | a new conversation: `{"token": …}`, random and unguessable, kept by the browser |
//! | `POST /chat/messages` | `{"token", "id", "text"}` → the bot's replies; the same `id` again gives the same replies |
//! | `GET /chat/messages?token=…&after=N` | the conversation so far (entries after the Nth), to resume after a reload |
//! | `GET /chat/ws?token=…` | a WebSocket with the same exchange, and expert messages pushed live |
//!
//! WebSocket protocol, JSON text frames:
//! - client → `{"type": "message", "id": "m1", "text": "whats next"}`; server → `{"type": "reply",
//!   "id": "m1", "replies": […], "duplicate": false}` (a resent id gets the same replies);
//! - client → `{"type": "resume", "after": N}`; server → `{"type": "history", "messages": […]}`;
//! - server → `{"type": "push", "text": …}` when an expert writes;
//! - server → `{"type": "error", "message": …}` for a frame it cannot take (the socket stays open).
//!
//! The conversation is keyed by a hash of the token, so the store never holds a usable token. The
//! same engine as SMS answers (no segment limit). Expert messages appear in the history.

use axum::extract::{Query, State};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppError;
use crate::inbox::{self, Message, Sender};
use crate::state::AppState;

/// The longest message the chat accepts, in characters.
pub const MAX_TEXT: usize = 1000;

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

async fn new_session() -> Result<Json<Value>, AppError> {
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
}

async fn send(
    State(state): State<AppState>,
    body: Result<Json<SendRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, AppError> {
    let Json(request) = body.map_err(|err| AppError::BadRequest(err.body_text()))?;
    let key = key_of(&request.token)?;
    Ok(Json(
        exchange(&state, &key, &request.id, &request.text).await?,
    ))
}

/// One message through the engine; the answer as the transport sends it.
async fn exchange(state: &AppState, key: &str, id: &str, text: &str) -> Result<Value, AppError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(AppError::BadRequest("text is empty".into()));
    }
    if text.chars().count() > MAX_TEXT {
        return Err(AppError::BadRequest(format!(
            "text is longer than {MAX_TEXT} characters"
        )));
    }
    let id = id.trim();
    if id.is_empty() || id.len() > 64 {
        return Err(AppError::BadRequest("id must be 1 to 64 characters".into()));
    }
    let message = Message {
        sender: Sender::Web(key.to_string()),
        text: text.to_string(),
        has_media: false,
        message_id: Some(id.to_string()),
        idempotency_key: Some(format!("{key}:{id}")),
        opt_out_type: None,
    };
    let outcome = inbox::handle(state, message, state.clock.now())
        .await
        .map_err(|err| AppError::Internal(err.to_string()))?;
    Ok(json!({ "replies": outcome.replies, "duplicate": outcome.duplicate }))
}

#[derive(Deserialize)]
struct HistoryQuery {
    token: String,
    #[serde(default)]
    after: usize,
}

async fn history(
    State(state): State<AppState>,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<Value>, AppError> {
    let key = key_of(&q.token)?;
    Ok(Json(
        json!({ "messages": messages_after(&state, &key, q.after)? }),
    ))
}

/// The conversation's messages after the `after`th, numbered from 1.
fn messages_after(state: &AppState, key: &str, after: usize) -> Result<Vec<Value>, AppError> {
    let entries = state
        .store
        .transcript(key)
        .map_err(|err| AppError::Internal(err.to_string()))?;
    Ok(entries
        .iter()
        .enumerate()
        .skip(after)
        .map(|(i, e)| json!({ "n": i + 1, "at": e.at, "from": if e.inbound { "attendee" } else { "concierge" }, "text": e.text }))
        .collect())
}

#[derive(Deserialize)]
struct WsQuery {
    token: String,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Frame {
    Message { id: String, text: String },
    Resume { after: usize },
}

async fn websocket(
    State(state): State<AppState>,
    Query(q): Query<WsQuery>,
    upgrade: axum::extract::ws::WebSocketUpgrade,
) -> Result<axum::response::Response, AppError> {
    let key = key_of(&q.token)?;
    Ok(upgrade
        .max_message_size(16 * 1024)
        .on_upgrade(move |socket| serve_socket(state, key, socket)))
}

/// One browser's socket: frames in, answers and pushes out, until either side closes.
async fn serve_socket(state: AppState, key: String, mut socket: axum::extract::ws::WebSocket) {
    use axum::extract::ws::Message as Ws;
    let mut pushes = state.web_push.subscribe();
    loop {
        let out = tokio::select! {
            frame = socket.recv() => match frame {
                Some(Ok(Ws::Text(text))) => Some(answer(&state, &key, &text).await),
                Some(Ok(Ws::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => None,
            },
            push = pushes.recv() => match push {
                Ok((to, text)) if to == key => Some(json!({ "type": "push", "text": text })),
                Ok(_) => None,
                // Missed pushes are in the history; tell the page to resume.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => Some(json!({ "type": "resync" })),
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            },
        };
        if let Some(value) = out {
            if socket
                .send(Ws::Text(value.to_string().into()))
                .await
                .is_err()
            {
                break;
            }
        }
    }
}

async fn answer(state: &AppState, key: &str, text: &str) -> Value {
    let frame: Frame = match serde_json::from_str(text) {
        Ok(f) => f,
        Err(err) => {
            return json!({ "type": "error", "message": format!("not a frame this server takes: {err}") });
        }
    };
    let result = match frame {
        Frame::Message { id, text } => exchange(state, key, &id, &text).await.map(|mut v| {
            v["type"] = json!("reply");
            v["id"] = json!(id);
            v
        }),
        Frame::Resume { after } => {
            messages_after(state, key, after).map(|m| json!({ "type": "history", "messages": m }))
        }
    };
    result.unwrap_or_else(|err| json!({ "type": "error", "message": err.message() }))
}
