//! Operator endpoints, behind the admin token: the intent set's status, reload, and classifying a
//! message with the running set to see why it matched.

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

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/intents", get(intents_status))
        .route("/admin/reload", post(reload))
        .route("/admin/classify", post(classify))
        .route("/admin/leads.csv", get(leads_csv))
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
