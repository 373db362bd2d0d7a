//! The SMS channel: Twilio's incoming-message webhook (`POST /sms`) and delivery status callbacks
//! (`POST /sms/status`).
//!
//! Order of checks, so nothing unverified is processed or stored: content type (415), form syntax
//! (400), `X-Twilio-Signature` (400 when missing, 403 when wrong), `AccountSid` (403), then the
//! fields (`From` must be E.164, `MessageSid` present: 400). Only then is the message handed to
//! [`crate::inbox`]. The signed URL is the configured `public_url` followed by the path and query
//! of the request.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use super::AppError;
use crate::inbox::{self, Message, Sender};
use crate::sms::phone::Phone;
use crate::sms::{form, twiml};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/sms", post(inbound))
        .route("/sms/status", post(status))
}

fn xml(body: String) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

/// A webhook request's head and body. The request is taken whole so its headers and URI move out
/// of it (the `HeaderMap` and `Uri` extractors clone them); the body is read by axum's `Bytes`
/// extractor, under the route's body limit, and its rejection is the answer if it fails.
async fn split(state: &AppState, request: Request) -> Result<(HeaderMap, Uri, Bytes), Response> {
    let (mut parts, body) = request.into_parts();
    let headers = std::mem::take(&mut parts.headers);
    let uri = std::mem::take(&mut parts.uri);
    let body = Bytes::from_request(Request::from_parts(parts, body), state)
        .await
        .map_err(IntoResponse::into_response)?;
    Ok((headers, uri, body))
}

/// Runs `handle` on the request's parts ([`split`]); its error, or the body's rejection, is the
/// answer if there is one.
async fn with_parts(
    state: &AppState,
    request: Request,
    handle: impl AsyncFnOnce(&AppState, &HeaderMap, &Uri, &[u8]) -> Result<Response, AppError>,
) -> Response {
    match split(state, request).await {
        Ok((headers, uri, body)) => handle(state, &headers, &uri, &body)
            .await
            .unwrap_or_else(IntoResponse::into_response),
        Err(rejection) => rejection,
    }
}

/// Parses and authenticates a Twilio request. Returns its parameters.
fn verified<'b>(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    body: &'b [u8],
) -> Result<form::Params<'b>, AppError> {
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if !form_type {
        return Err(AppError::UnsupportedMediaType(
            "expected application/x-www-form-urlencoded, as Twilio sends".into(),
        ));
    }
    let params = form::parse(body).map_err(|err| AppError::BadRequest(err.to_string()))?;
    if !state.config.sms.skip_signature {
        let presented = headers
            .get("x-twilio-signature")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| AppError::BadRequest("missing X-Twilio-Signature".into()))?;
        if state.config.twilio.is_none() {
            return Err(AppError::Forbidden(
                "signatures cannot be checked: no Twilio auth token is configured".into(),
            ));
        }
        let Some(signatures) = &state.signatures else {
            return Err(AppError::Forbidden(
                "signatures cannot be checked: public_url is not configured".into(),
            ));
        };
        let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
        if !signatures.verify(path, &params, presented) {
            return Err(AppError::Forbidden("invalid X-Twilio-Signature".into()));
        }
    }
    if let Some(twilio) = &state.config.twilio {
        let account = form::get(&params, "AccountSid");
        if account.is_some_and(|a| a != twilio.account_sid) {
            return Err(AppError::Forbidden(
                "AccountSid is not this service's account".into(),
            ));
        }
    }
    Ok(params)
}

pub(super) async fn inbound(State(state): State<AppState>, request: Request) -> Response {
    with_parts(&state, request, answer).await
}

async fn answer(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    body: &[u8],
) -> Result<Response, AppError> {
    let params = verified(state, headers, uri, body)?;
    let from =
        form::get(&params, "From").ok_or_else(|| AppError::BadRequest("missing From".into()))?;
    let phone = Phone::parse(from)
        .ok_or_else(|| AppError::BadRequest("From is not an E.164 phone number".into()))?;
    let message_sid = form::get(&params, "MessageSid").map(str::to_string);
    let token = headers
        .get("i-twilio-idempotency-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let idempotency_key = message_sid
        .clone()
        .or(token)
        .ok_or_else(|| AppError::BadRequest("missing MessageSid".into()))?;
    // A redelivery of a message already answered gets the same answer, and is not counted
    // against the number's rate.
    if let Some(outcome) = inbox::earlier(state, &idempotency_key)
        .map_err(|err| AppError::Internal(err.to_string()))?
    {
        return Ok(xml(twiml::response(outcome.texts())));
    }
    // One number flooding cannot starve the others: over its rate it gets 429, and nothing is
    // stored.
    if let Err(wait) = state
        .limits
        .per_number
        .check(phone.as_str(), state.clock.now())
    {
        tracing::info!(from = %phone.redacted(), "rate limited");
        return Err(AppError::TooManyRequests(wait.as_secs().max(0) as u64 + 1));
    }
    let media: usize = form::get(&params, "NumMedia")
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    let text = match form::get(&params, "Body") {
        Some(body) => body.to_string(),
        None if media > 0 => String::new(),
        None => return Err(AppError::BadRequest("missing Body".into())),
    };
    let message = Message {
        sender: Sender::Sms(phone),
        text,
        has_media: media > 0,
        message_id: message_sid,
        idempotency_key: Some(idempotency_key),
        opt_out_type: form::get(&params, "OptOutType").map(str::to_string),
        save: None,
        remove: None,
    };
    let outcome = inbox::handle(state, message, state.clock.now())
        .await
        .map_err(|err| AppError::Internal(err.to_string()))?;
    Ok(xml(twiml::response(outcome.texts())))
}

async fn status(State(state): State<AppState>, request: Request) -> Response {
    with_parts(&state, request, delivery).await
}

async fn delivery(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    body: &[u8],
) -> Result<Response, AppError> {
    let params = verified(state, headers, uri, body)?;
    let sid = form::get(&params, "MessageSid")
        .ok_or_else(|| AppError::BadRequest("missing MessageSid".into()))?;
    let status = form::get(&params, "MessageStatus")
        .or_else(|| form::get(&params, "SmsStatus"))
        .ok_or_else(|| AppError::BadRequest("missing MessageStatus".into()))?;
    if crate::store::Delivery::rank(status) == 0 {
        return Err(AppError::BadRequest(format!(
            "unknown MessageStatus {status:?}"
        )));
    }
    let error_code = form::get(&params, "ErrorCode")
        .filter(|c| !c.is_empty())
        .map(str::to_string);
    let kept = state
        .store
        .update_delivery(sid, status, error_code, state.clock.now())
        .await
        .map_err(|err| AppError::Internal(err.to_string()))?;
    tracing::debug!(sid, status, kept = %kept, "delivery status");
    Ok(xml(twiml::response::<[&str; 0]>([])))
}
