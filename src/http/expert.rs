//! The expert API, used by the console: each expert signs in with their own bearer token.
//!
//! | route | what |
//! |---|---|
//! | `GET /expert/me` | the expert, their offers and their conversations |
//! | `PUT /expert/status` | `{"status": "available" \| "busy" \| "offline"}` |
//! | `GET /expert/tasks/{id}` | an offered or own conversation: the task and the attendee's history with the bot |
//! | `POST /expert/tasks/{id}/accept` | take an offered conversation; the attendee is told who it is |
//! | `POST /expert/tasks/{id}/reject` | pass; it goes to someone else |
//! | `POST /expert/tasks/{id}/messages` | `{"text": …}` to the attendee (through the outbox) |
//! | `POST /expert/tasks/{id}/complete` | `{"notes": …, "lead": {…}}`; the attendee is back with the bot |
//! | `GET /expert/queue` | queue statistics |
//! | `GET /expert/events` | server-sent events: offers, withdrawn offers, attendee messages, cancellations |
//!
//! Admin: `POST /admin/experts/{id}/token` issues a token (shown once).

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppError;
use super::admin::Admin;
use super::extract::Path;
use crate::desk::DeskError;
use crate::routing::{Availability, TaskStatus};
use crate::state::AppState;
use crate::store::Lead;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/expert/me", get(me))
        .route("/expert/status", put(set_status))
        .route("/expert/queue", get(queue))
        .route("/expert/events", get(events))
        .route("/expert/tasks/{id}", get(task_detail))
        .route("/expert/tasks/{id}/accept", post(accept))
        .route("/expert/tasks/{id}/reject", post(reject))
        .route("/expert/tasks/{id}/messages", post(message))
        .route("/expert/tasks/{id}/complete", post(complete))
        .route("/admin/experts/{id}/token", post(issue_token))
        .route("/admin/experts/{id}/tokens", delete(revoke_tokens))
        .route("/admin/routing/reload", post(reload_routing))
        .route("/admin/experts", get(list_experts))
        .route("/admin/experts/{id}/status", put(admin_set_status))
}

/// The expert a request's bearer token belongs to. No header: 401; unknown token: 403.
pub struct ExpertAuth(pub String);

/// The bearer token of a request that passed [`ExpertAuth`], for streams that must end when it
/// is revoked.
#[derive(Clone)]
struct BearerToken(String);

impl FromRequestParts<AppState> for ExpertAuth {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<ExpertAuth, AppError> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .ok_or(AppError::Unauthorized)?;
        match state.store.expert_for_token(token) {
            Ok(Some(id)) if state.desk.experts().iter().any(|e| e.id == id) => {
                parts.extensions.insert(BearerToken(token.to_string()));
                Ok(ExpertAuth(id))
            }
            Ok(_) => Err(AppError::Forbidden("unknown expert token".into())),
            Err(err) => Err(AppError::Internal(err.to_string())),
        }
    }
}

/// The engine's sentences in a task's language.
fn texts(language: &str) -> crate::conversation::render::Texts {
    crate::conversation::render::Texts::new(
        crate::intents::Lang::parse(language).unwrap_or(crate::intents::Lang::En),
    )
}

fn desk_error(err: DeskError) -> AppError {
    match err {
        DeskError::Routing(err) => AppError::Conflict(err.to_string()),
        DeskError::Store(err) => AppError::Internal(err.to_string()),
    }
}

fn json_body<T>(
    body: Result<Json<T>, axum::extract::rejection::JsonRejection>,
) -> Result<T, AppError> {
    body.map(|Json(t)| t)
        .map_err(|err| AppError::BadRequest(err.body_text()))
}

async fn me(
    ExpertAuth(id): ExpertAuth,
    State(state): State<AppState>,
) -> Result<Json<Value>, AppError> {
    let expert = state
        .desk
        .experts()
        .into_iter()
        .find(|e| e.id == id)
        .ok_or(AppError::NotFound)?;
    let tasks = state.desk.tasks_of(&id);
    let offers: Vec<Value> = tasks
        .iter()
        .filter(|t| t.status == TaskStatus::Reserved)
        .map(task_view)
        .collect();
    let active: Vec<Value> = tasks
        .iter()
        .filter(|t| matches!(t.status, TaskStatus::Assigned | TaskStatus::Wrapping))
        .map(task_view)
        .collect();
    Ok(Json(
        json!({ "expert": expert, "offers": offers, "conversations": active }),
    ))
}

#[derive(Deserialize)]
struct StatusRequest {
    status: Availability,
}

async fn set_status(
    ExpertAuth(id): ExpertAuth,
    State(state): State<AppState>,
    body: Result<Json<StatusRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, AppError> {
    let request = json_body(body)?;
    state
        .desk
        .set_status(&id, request.status, state.clock.now())
        .await
        .map_err(desk_error)?;
    Ok(Json(json!({ "status": request.status })))
}

/// Server-sent events for this expert: offers, withdrawn offers, attendee messages, cancellations.
async fn events(
    ExpertAuth(id): ExpertAuth,
    axum::Extension(BearerToken(token)): axum::Extension<BearerToken>,
    State(state): State<AppState>,
) -> axum::response::Sse<
    impl tokio_stream::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>>,
> {
    use tokio_stream::StreamExt;
    let desk = tokio_stream::wrappers::BroadcastStream::new(state.desk.subscribe()).map(Some);
    // A tick now and then, so a stream with nothing to say still notices a revoked token.
    let ticks = tokio_stream::wrappers::IntervalStream::new(tokio::time::interval(TOKEN_RECHECK))
        .map(|_| None);
    let store = state.store.clone();
    let expert = id.clone();
    let stream = desk
        .merge(ticks)
        .take_while(move |_| {
            matches!(store.expert_for_token(&token), Ok(Some(owner)) if owner == id.as_str())
        })
        .filter_map(move |item| {
            let event = match item? {
                Ok(e) if e.expert() == expert => e,
                Ok(_) => return None,
                // Fell behind: tell the console to reload its state.
                Err(_) => {
                    return Some(Ok(axum::response::sse::Event::default()
                        .event("lagged")
                        .data("reload")));
                }
            };
            let data = serde_json::to_string(&event).unwrap_or_default();
            Some(Ok(axum::response::sse::Event::default()
                .event("desk")
                .data(data)))
        });
    axum::response::Sse::new(stream).keep_alive(axum::response::sse::KeepAlive::default())
}

/// How often an open event stream checks that its token still stands.
const TOKEN_RECHECK: std::time::Duration = std::time::Duration::from_secs(2);

async fn queue(_: ExpertAuth, State(state): State<AppState>) -> Json<Value> {
    Json(json!(state.desk.stats(state.clock.now())))
}

/// A task offered to or assigned to this expert, with the attendee's conversation so far (what
/// they asked the bot, the question that was handed off, what was said since). The attendee is
/// shown by channel and a redacted number, never the whole number.
async fn task_detail(
    ExpertAuth(id): ExpertAuth,
    State(state): State<AppState>,
    Path(task): Path<u64>,
) -> Result<Json<Value>, AppError> {
    let t = state.desk.task(task).ok_or(AppError::NotFound)?;
    let offered = t.reservation.as_ref().is_some_and(|r| r.expert == id);
    let mine = t.expert.as_deref() == Some(id.as_str());
    if !(offered || mine) {
        return Err(AppError::Forbidden(format!(
            "task {task} is not offered to you or yours"
        )));
    }
    let transcript = state
        .store
        .transcript(&t.attendee)
        .map_err(|err| AppError::Internal(err.to_string()))?;
    let agenda = state.agenda();
    let history: Vec<Value> = transcript
        .iter()
        .map(|e| {
            let mut text = e.text.clone();
            // Cards the attendee saw in the web chat, as lines.
            let today = crate::conversation::render::local_day(&agenda, e.at);
            let lang = crate::intents::Lang::parse(&t.language).unwrap_or(crate::intents::Lang::En);
            for (i, s) in e
                .sessions
                .iter()
                .filter_map(|id| agenda.session(id))
                .enumerate()
            {
                text.push('\n');
                crate::conversation::render::write_line(&mut text, &agenda, s, i + 1, today, lang);
            }
            json!({
                "at": e.at,
                "from": match (e.inbound, &e.by) {
                    (true, _) => "attendee",
                    (false, Some(_)) => "expert",
                    (false, None) => "concierge",
                },
                "by": e.by,
                "text": text,
                "intent": e.intent,
            })
        })
        .collect();
    Ok(Json(json!({ "task": task_view(&t), "history": history })))
}

/// A task as an expert sees it: the attendee by channel and a redacted number, not their key
/// (which holds the whole number).
fn task_view(t: &crate::routing::Task) -> Value {
    let attendee = match t.attendee.split_once(':') {
        Some(("sms", phone)) => crate::sms::phone::Phone::parse(phone)
            .map_or_else(|| "SMS".to_string(), |p| format!("SMS {}", p.redacted())),
        Some(("web", _)) => "web chat".to_string(),
        _ => "local".to_string(),
    };
    let mut v = json!(t);
    v["attendee"] = json!(attendee);
    v
}

/// Sends a message to a task's attendee by their channel, and records it in the transcript.
/// `by`: the expert's name for what an expert wrote; `None` for concierge's own notices.
async fn tell_attendee(
    state: &AppState,
    attendee: &str,
    text: &str,
    by: Option<&str>,
) -> Result<(), AppError> {
    let reason = if by.is_some() { "expert" } else { "notice" };
    crate::outbound::to_attendee_live(state, attendee, text, reason, by, state.clock.now())
        .await
        .map_err(|err| AppError::Internal(err.to_string()))
}

async fn accept(
    ExpertAuth(id): ExpertAuth,
    State(state): State<AppState>,
    Path(task): Path<u64>,
) -> Result<Json<Value>, AppError> {
    state
        .desk
        .accept(task, &id, state.clock.now())
        .await
        .map_err(desk_error)?;
    let t = state.desk.task(task).ok_or(AppError::NotFound)?;
    let hello = texts(&t.language).expert_joined(&state.desk.expert_name(&id));
    tell_attendee(&state, &t.attendee, &hello, None).await?;
    Ok(Json(task_view(&t)))
}

async fn reject(
    ExpertAuth(id): ExpertAuth,
    State(state): State<AppState>,
    Path(task): Path<u64>,
) -> Result<Json<Value>, AppError> {
    state
        .desk
        .reject(task, &id, state.clock.now())
        .await
        .map_err(desk_error)?;
    Ok(Json(json!({ "rejected": task })))
}

#[derive(Deserialize)]
struct MessageRequest {
    text: String,
}

async fn message(
    ExpertAuth(id): ExpertAuth,
    State(state): State<AppState>,
    Path(task): Path<u64>,
    body: Result<Json<MessageRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, AppError> {
    let request = json_body(body)?;
    let text = request.text.trim();
    if text.is_empty() || text.chars().count() > 1600 {
        return Err(AppError::BadRequest(
            "text must be 1 to 1600 characters".into(),
        ));
    }
    let t = state.desk.task(task).ok_or(AppError::NotFound)?;
    if t.expert.as_deref() != Some(id.as_str())
        || !matches!(t.status, TaskStatus::Assigned | TaskStatus::Wrapping)
    {
        return Err(AppError::Conflict(format!(
            "task {task} is not a conversation of yours"
        )));
    }
    tell_attendee(
        &state,
        &t.attendee,
        text,
        Some(&state.desk.expert_name(&id)),
    )
    .await?;
    Ok(Json(json!({ "sent": true })))
}

#[derive(Deserialize)]
struct LeadRequest {
    #[serde(default)]
    name: String,
    #[serde(default)]
    company: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    interest: String,
    #[serde(default)]
    consent: bool,
}

#[derive(Deserialize)]
struct CompleteRequest {
    #[serde(default)]
    notes: String,
    #[serde(default)]
    lead: Option<LeadRequest>,
}

async fn complete(
    ExpertAuth(id): ExpertAuth,
    State(state): State<AppState>,
    Path(task): Path<u64>,
    body: Result<Json<CompleteRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, AppError> {
    let request = json_body(body)?;
    let now = state.clock.now();
    if let Some(lead) = &request.lead {
        if lead.email.trim().len() > 254
            || (!lead.email.trim().is_empty() && !lead.email.contains('@'))
        {
            return Err(AppError::BadRequest(
                "lead.email is not an email address".into(),
            ));
        }
    }
    state
        .desk
        .complete(task, &id, now)
        .await
        .map_err(desk_error)?;
    let t = state.desk.task(task).ok_or(AppError::NotFound)?;
    let lead = match request.lead {
        Some(l) => Some(
            state
                .store
                .add_lead(Lead {
                    id: 0,
                    at: now,
                    expert: id.clone(),
                    task,
                    name: l.name.trim().into(),
                    company: l.company.trim().into(),
                    email: l.email.trim().into(),
                    interest: l.interest.trim().into(),
                    consent: l.consent,
                    notes: request.notes.trim().into(),
                })
                .await
                .map_err(|err| AppError::Internal(err.to_string()))?,
        ),
        None => None,
    };
    let bye = texts(&t.language).expert_done();
    tell_attendee(&state, &t.attendee, bye, None).await?;
    Ok(Json(json!({ "completed": task, "lead": lead })))
}

async fn issue_token(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    if !state.desk.experts().iter().any(|e| e.id == id) {
        return Err(AppError::NotFound);
    }
    let token = state
        .store
        .issue_expert_token(&id)
        .await
        .map_err(|err| AppError::Internal(err.to_string()))?;
    Ok(Json(json!({ "expert": id, "token": token })))
}

/// Revokes every token of an expert. Any id is accepted, so the tokens of an expert who has left
/// the routing file can still be revoked.
async fn revoke_tokens(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let revoked = state
        .store
        .revoke_expert_tokens(&id)
        .await
        .map_err(|err| AppError::Internal(err.to_string()))?;
    tracing::info!(expert = %id, revoked, "expert tokens revoked");
    Ok(Json(json!({ "expert": id, "revoked": revoked })))
}

/// Re-reads the routing file; a file with a problem changes nothing (422 with the problems).
async fn reload_routing(_: Admin, State(state): State<AppState>) -> Result<Json<Value>, AppError> {
    match state.desk.reload(state.clock.now()).await {
        Ok(experts) => Ok(Json(json!({ "experts": experts }))),
        Err(problems) => Err(AppError::Unprocessable(json!({
            "error": "the routing file does not load; the running configuration is unchanged",
            "problems": problems,
        }))),
    }
}

/// Every expert with their status and load.
async fn list_experts(_: Admin, State(state): State<AppState>) -> Json<Value> {
    let experts: Vec<Value> = state
        .desk
        .experts()
        .into_iter()
        .map(|e| {
            let load = state
                .desk
                .tasks_of(&e.id)
                .iter()
                .filter(|t| !t.status.is_over())
                .count();
            json!({ "expert": e, "load": load })
        })
        .collect();
    Json(json!({ "experts": experts }))
}

/// An operator sets an expert's availability (for example offline at the end of their shift).
async fn admin_set_status(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<StatusRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, AppError> {
    let request = json_body(body)?;
    if !state.desk.experts().iter().any(|e| e.id == id) {
        return Err(AppError::NotFound);
    }
    state
        .desk
        .set_status(&id, request.status, state.clock.now())
        .await
        .map_err(desk_error)?;
    Ok(Json(json!({ "expert": id, "status": request.status })))
}
