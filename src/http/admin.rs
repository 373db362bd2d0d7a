//! Operator endpoints, behind the admin token: the intent set's status, reload, and classifying a
//! message with the running set to see why it matched; the overview the operator page shows
//! (what the bot did not understand, hits per intent, queues, the agenda); and the agenda upload.
//!
//! The upload (`POST /admin/agenda`) takes the schedule file as the body, up to [`UPLOAD_LIMIT`],
//! and runs the same importers as `concierge import`. A file that does not import changes
//! nothing: 422 with the error and its place, and the failure is in the import log.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use super::AppError;
use crate::intents::Classification;
use crate::state::AppState;

/// The largest schedule file the upload takes (FOSDEM's whole-conference XML is about 3 MB).
pub const UPLOAD_LIMIT: usize = 32 * 1024 * 1024;

/// How many of the most frequent unmatched messages the overview lists.
const UNMATCHED_TOP: usize = 20;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/intents", get(intents_status))
        .route("/admin/reload", post(reload))
        .route("/admin/classify", post(classify))
        .route("/admin/leads.csv", get(leads_csv))
        .route("/admin/overview", get(overview))
        .route("/admin/announcements", post(announce))
}

/// Routes that take large bodies; `super::app` gives them their own body limit.
pub fn upload_routes() -> Router<AppState> {
    Router::new().route("/admin/agenda", post(upload_agenda))
}

/// Proof that the request carries the admin token (`Authorization: Bearer …`). No header: 401.
/// A wrong token, or no admin token configured: 403. The comparison takes the same time however
/// much of the token is right.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Admin, AppError> {
        let Some(header) = parts.headers.get(axum::http::header::AUTHORIZATION) else {
            return Err(AppError::Unauthorized);
        };
        let presented = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(AppError::Unauthorized)?;
        let Some(expected) = &state.config.admin_token else {
            return Err(AppError::Forbidden(
                "the admin API is disabled: set admin_token (CONCIERGE_ADMIN_TOKEN)".into(),
            ));
        };
        if bool::from(presented.as_bytes().ct_eq(expected.expose().as_bytes())) {
            Ok(Admin)
        } else {
            Err(AppError::Forbidden("wrong admin token".into()))
        }
    }
}

async fn intents_status(_: Admin, State(state): State<AppState>) -> Json<Value> {
    Json(json!(state.intents.status()))
}

async fn reload(_: Admin, State(state): State<AppState>) -> Result<Json<Value>, AppError> {
    match state
        .intents
        .reload(state.agenda(), "admin", state.clock.now())
        .await
    {
        Ok(status) => Ok(Json(json!(status))),
        Err(error) => Err(AppError::Unprocessable(json!({
            "error": "the intent files do not load; the running set is unchanged",
            "problems": error.problems,
        }))),
    }
}

#[derive(Deserialize)]
struct ClassifyRequest {
    text: String,
}

async fn classify(
    _: Admin,
    State(state): State<AppState>,
    body: Result<Json<ClassifyRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Classification>, AppError> {
    let Json(request) = body.map_err(|err| AppError::BadRequest(err.body_text()))?;
    Ok(Json(state.intents.matcher().explain(&request.text)))
}

/// Leads with consent, as CSV.
async fn leads_csv(
    _: Admin,
    State(state): State<AppState>,
) -> Result<axum::response::Response, AppError> {
    use axum::response::IntoResponse;
    let leads = state
        .store
        .leads()
        .map_err(|err| AppError::Internal(err.to_string()))?;
    let csv = crate::store::leads_csv(&leads);
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                axum::http::header::CONTENT_DISPOSITION,
                "attachment; filename=\"leads.csv\"",
            ),
        ],
        csv,
    )
        .into_response())
}

#[derive(Deserialize)]
struct OverviewQuery {
    /// The period for hits and unmatched messages, in hours (default 24).
    #[serde(default)]
    hours: Option<u32>,
}

/// What the operator page shows: the intent set, what fell to fallback and the hits per intent in
/// the period, the queues, and the agenda with its recent imports.
async fn overview(
    _: Admin,
    State(state): State<AppState>,
    super::extract::Query(q): super::extract::Query<OverviewQuery>,
) -> Result<Json<Value>, AppError> {
    let hours = q.hours.unwrap_or(24).clamp(1, 24 * 7);
    let now = state.clock.now();
    let since = now
        .checked_sub(jiff::SignedDuration::from_hours(i64::from(hours)))
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let report = state
        .store
        .intent_report(since, UNMATCHED_TOP)
        .map_err(|err| AppError::Internal(err.to_string()))?;
    let fallbacks = report
        .hits
        .iter()
        .find(|(intent, _)| intent == crate::intents::FALLBACK)
        .map_or(0, |(_, n)| *n);
    let agenda = state.agenda();
    let a = agenda.agenda();
    let imports = state
        .store
        .recent_imports(5)
        .map_err(|err| AppError::Internal(err.to_string()))?;
    let experts = state.desk.experts();
    Ok(Json(json!({
        "now": now,
        "intents": state.intents.status(),
        "period_hours": hours,
        "messages": report.messages,
        "fallback_rate": if report.messages == 0 { 0.0 } else { fallbacks as f64 / report.messages as f64 },
        "unmatched": report.unmatched,
        "hits": report.hits.iter().map(|(intent, n)| json!({ "intent": intent, "count": n })).collect::<Vec<_>>(),
        "queues": state.desk.stats(now),
        "experts": {
            "total": experts.len(),
            "online": experts.iter().filter(|e| e.status != crate::routing::Availability::Offline).count(),
        },
        "agenda": {
            "conference": a.conference.name,
            "time_zone": a.conference.time_zone.name(),
            "days": a.conference.days.iter().map(|d| d.date.to_string()).collect::<Vec<_>>(),
            "sessions": a.sessions.len(),
            "rooms": a.rooms.len(),
            "tracks": a.tracks.len(),
            "speakers": a.speakers.len(),
            "imports": imports,
        },
    })))
}

#[derive(Deserialize)]
struct UploadQuery {
    /// The file's name, for the import log and error messages.
    #[serde(default)]
    name: Option<String>,
    /// `auto` (default) or a format name (`frab-json`, `frab-xml`, `sessionize`, `native`).
    #[serde(default)]
    format: Option<String>,
    /// The conference time zone for files that name none (Sessionize).
    #[serde(default)]
    tz: Option<String>,
    /// The conference name for files without one.
    #[serde(default)]
    conference: Option<String>,
}

/// Imports a schedule file and makes it the agenda. Nothing changes unless it imports.
async fn upload_agenda(
    _: Admin,
    State(state): State<AppState>,
    super::extract::Query(q): super::extract::Query<UploadQuery>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<Value>, AppError> {
    use crate::import::{Format, ImportOptions};
    let bytes = body.map_err(|err| AppError::BadRequest(err.body_text()))?;
    if bytes.is_empty() {
        return Err(AppError::BadRequest(
            "the body is empty: send the schedule file as the request body".into(),
        ));
    }
    let name: String = q
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or("upload")
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    let format = match q.format.as_deref().map(str::trim) {
        None | Some("") | Some("auto") => None,
        Some(f) => Some(f.parse::<Format>().map_err(AppError::BadRequest)?),
    };
    let time_zone = match q.tz.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        Some(tz) => Some(crate::agenda::Zone::parse(tz).map_err(AppError::BadRequest)?),
        None => state.config.time_zone.clone(),
    };
    let options = ImportOptions {
        format,
        time_zone,
        conference_name: q.conference.filter(|c| !c.trim().is_empty()),
    };
    let file = name.clone();
    let result =
        tokio::task::spawn_blocking(move || crate::import::import_bytes(&file, &bytes, &options))
            .await
            .map_err(|err| AppError::Internal(format!("the import task failed: {err}")))?;
    let now = state.clock.now();
    match result {
        Ok(imported) => {
            let format = imported.format;
            let warnings = imported.warnings.clone();
            let summary = imported.agenda.summary();
            let record = state
                .replace_agenda(imported, &name)
                .await
                .map_err(|err| AppError::Internal(err.to_string()))?;
            tracing::info!(import = record.id, file = %name, "agenda replaced by upload");
            Ok(Json(json!({
                "import": record,
                "format": format.name(),
                "summary": summary,
                "warnings": warnings,
            })))
        }
        Err(err) => {
            if let Err(store_err) = state
                .store
                .record_failed_import(&name, &err.to_string(), now)
                .await
            {
                tracing::error!(error = %store_err, "could not record a failed import");
            }
            Err(AppError::Unprocessable(json!({
                "error": "the file does not import; the agenda is unchanged",
                "problem": err.to_string(),
                "line": err.place.as_ref().and_then(|p| p.line).map(|l| l.0),
                "column": err.place.as_ref().and_then(|p| p.line).map(|l| l.1),
                "path": err.place.as_ref().and_then(|p| p.path.clone()),
            })))
        }
    }
}

#[derive(Deserialize)]
struct AnnounceRequest {
    /// Makes a repeated request harmless: an id already used sends nothing.
    id: String,
    text: String,
    #[serde(flatten)]
    audience: crate::notices::announce::Audience,
    #[serde(default)]
    dry_run: bool,
}

/// An announcement to everyone, to those who saved a session, or to those interested in a track;
/// `dry_run` only counts. Opted-out numbers are never included.
async fn announce(
    _: Admin,
    State(state): State<AppState>,
    body: Result<Json<AnnounceRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, AppError> {
    use crate::notices::worker::{self, AnnounceError};
    let Json(request) = body.map_err(|err| AppError::BadRequest(err.body_text()))?;
    match worker::announce(
        &state,
        request.id.trim(),
        &request.text,
        &request.audience,
        request.dry_run,
    )
    .await
    {
        Ok(done) => Ok(Json(json!(done))),
        Err(AnnounceError::Invalid(message)) => Err(AppError::BadRequest(message)),
        Err(AnnounceError::Store(err)) => Err(AppError::Internal(err.to_string())),
    }
}
