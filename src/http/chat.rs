//! The web chat's HTTP JSON transport (the page and its WebSocket come with the web chat issue).
//!
//! | route | what |
//! |---|---|
//! | `POST /chat/sessions` | a new conversation: `{"token": …}`, random and unguessable, kept by the browser |
//! | `POST /chat/messages` | `{"token", "id", "text"}` → the bot's replies; the same `id` again gives the same replies |
//! | `GET /chat/messages?token=…&after=N` | the conversation so far (entries after the Nth), to resume after a reload |
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
}

/// The conversation key for a token: `web:` and the first 32 hex digits of its SHA-256.
fn key_of(token: &str) -> Result<String, AppError> {
    let token = token.trim();
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AppError::BadRequest("token is not a chat token".into()));
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(token.as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    Ok(format!("web:{hex}"))
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
    let text = request.text.trim();
    if text.is_empty() {
        return Err(AppError::BadRequest("text is empty".into()));
    }
    if text.chars().count() > MAX_TEXT {
        return Err(AppError::BadRequest(format!(
            "text is longer than {MAX_TEXT} characters"
        )));
    }
    let id = request.id.trim();
    if id.is_empty() || id.len() > 64 {
        return Err(AppError::BadRequest("id must be 1 to 64 characters".into()));
    }
    let message = Message {
        sender: Sender::Web(key.clone()),
        text: text.to_string(),
        has_media: false,
        message_id: Some(id.to_string()),
        idempotency_key: Some(format!("{key}:{id}")),
        opt_out_type: None,
    };
    let outcome = inbox::handle(&state, message, state.clock.now())
        .await
        .map_err(|err| AppError::Internal(err.to_string()))?;
    Ok(Json(
        json!({ "replies": outcome.replies, "duplicate": outcome.duplicate }),
    ))
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
    let entries = state
        .store
        .transcript(&key)
        .map_err(|err| AppError::Internal(err.to_string()))?;
    let messages: Vec<Value> = entries
        .iter()
        .enumerate()
        .skip(q.after)
        .map(|(i, e)| json!({ "n": i + 1, "at": e.at, "from": if e.inbound { "attendee" } else { "concierge" }, "text": e.text }))
        .collect();
    Ok(Json(json!({ "messages": messages })))
}
