//! The attendee's calendar feed: `GET /calendar/{token}.ics`, an iCalendar document of their saved
//! sessions (see [`crate::ical`]). The token is unguessable (128 random bits), made the first time
//! the attendee asks for the link, and the same ever after, so a subscription keeps working.

use axum::Router;
use axum::extract::State;

use super::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppError;
use crate::config::Config;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/calendar/{file}", get(feed))
}

/// The feed's address for a token: under `public_url` when it is set, else the bind address.
pub fn feed_url(config: &Config, token: &str) -> String {
    let base = match &config.public_url {
        Some(url) => url.as_str().trim_end_matches('/').to_string(),
        None => format!("http://{}", config.bind),
    };
    format!("{base}/calendar/{token}.ics")
}

async fn feed(
    State(state): State<AppState>,
    Path(file): Path<String>,
) -> Result<Response, AppError> {
    let token = file.strip_suffix(".ics").unwrap_or(&file);
    if token.len() != 32 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AppError::NotFound);
    }
    let attendee = state
        .store
        .calendar_owner(token)
        .map_err(|err| AppError::Internal(err.to_string()))?
        .ok_or(AppError::NotFound)?;
    let saved = state
        .store
        .attendee(&attendee)
        .map_err(|err| AppError::Internal(err.to_string()))?
        .saved;
    let agenda = state.agenda();
    let mut sessions: Vec<_> = saved.iter().filter_map(|id| agenda.session(id)).collect();
    sessions.sort_by_key(|s| (s.start, s.end));
    let name = format!("{} · my agenda", agenda.agenda().conference.name);
    let body = crate::ical::calendar(&agenda, &sessions, &name, state.clock.now());
    Ok((
        [
            (header::CONTENT_TYPE, "text/calendar; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "inline; filename=\"agenda.ics\"",
            ),
            (header::CACHE_CONTROL, "private, max-age=300"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response())
}
