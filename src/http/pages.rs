//! The three pages the binary serves, with their assets embedded at build time (no Node step):
//! the attendee web chat at `/`, the expert console at `/console` and the operator page at
//! `/admin`. They are static; everything they show comes from the JSON APIs, and they put every
//! string into the page as text (`textContent`), never as HTML.
//!
//! Every page is sent with a Content-Security-Policy that allows only this origin's scripts,
//! styles and connections, no inline script, and no framing.

use super::extract::Path;
use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppError;
use crate::state::AppState;

/// Each asset: its name under `/assets/`, its content type, its bytes.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("assets/style.css"),
    ),
    (
        "common.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/common.js"),
    ),
    (
        "chat.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/chat.js"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/console.js"),
    ),
    (
        "admin.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/admin.js"),
    ),
];

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(chat_page))
        .route("/console", get(console_page))
        .route("/admin", get(admin_page))
        .route("/assets/{name}", get(asset))
}

async fn chat_page() -> Response {
    page(include_str!("assets/chat.html"))
}

async fn console_page() -> Response {
    page(include_str!("assets/console.html"))
}

async fn admin_page() -> Response {
    page(include_str!("assets/admin.html"))
}

fn page(html: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        html,
    )
        .into_response()
}

async fn asset(Path(name): Path<String>) -> Result<Response, AppError> {
    let (_, content_type, body) = ASSETS
        .iter()
        .find(|(n, _, _)| *n == name)
        .ok_or(AppError::NotFound)?;
    Ok((
        [
            (header::CONTENT_TYPE, *content_type),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        *body,
    )
        .into_response())
}
