//! The HTTP edge: one composition point, [`app`], and the server loop, [`run`].
//!
//! Each channel contributes its routes here; the edge layer (tracing, body limit, timeout,
//! metrics: [`edge`]) is applied in one place. [`run`] serves the SMS webhook (`POST /sms`)
//! before the router, in the same edge ([`webhook`]); its route stays in [`app`] too.
//! [`AppError`] is the only thing that turns into an error response: bad input passes its
//! status through and is not logged; internal errors get a generic body and are logged once.

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tokio::net::TcpListener;

use crate::state::AppState;

pub mod admin;
pub mod calendar;
pub mod chat;
pub mod client_addr;
mod edge;
pub mod expert;
pub mod extract;
pub mod pages;
pub mod sms;
pub mod threads;

/// The largest request body a route accepts (Twilio's webhook bodies are far smaller), but the
/// agenda upload ([`admin::UPLOAD_LIMIT`]).
pub const BODY_LIMIT: usize = 64 * 1024;

/// How long a request may take before it is answered with 408.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a client may take to send a request's head; slower connections are closed.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// How long graceful shutdown waits for requests in flight before it stops anyway.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The backlog asked of the kernel for a listening socket: connections it completes before
/// the service accepts them. Linux caps it at `net.core.somaxconn` (4096 since 5.4), as Go's
/// listeners ask for. `TcpListener::bind` asks for 128, and a burst of more connections at once
/// (a keynote ends: the webhook's senders all connect) overflows that queue; the kernel then
/// drops the handshakes it has no room for, and each of those clients waits a second for its
/// SYN to be sent again (BENCHMARKS.md, SMS webhook step 69).
pub const LISTEN_BACKLOG: u32 = 4096;

/// A listener on `addr` with [`LISTEN_BACKLOG`], address reuse on as `TcpListener::bind` has it
/// on Unix (a restart binds while the last run's connections are in `TIME_WAIT`).
pub fn listen(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// The router with every route and layer.
pub fn app(state: AppState) -> Router {
    // Each `Router::layer` call wraps every route in one more boxed service, cloned for every
    // request; so each group of routes gets its whole stack in one call (BENCHMARKS.md, SMS
    // webhook step 27). The fallback is in the first group and gets its stack too.
    let small = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/openapi.json", get(openapi))
        .merge(admin::routes())
        .merge(sms::routes())
        .merge(expert::routes())
        .merge(chat::routes())
        .merge(pages::routes())
        .merge(calendar::routes())
        .fallback(not_found);
    let small = in_stack(small, &state, BODY_LIMIT);
    let large = in_stack(admin::upload_routes(), &state, admin::UPLOAD_LIMIT);
    Router::new().merge(small).merge(large).with_state(state)
}

/// The routes in what every route runs in: the edge ([`edge`]: span, body limit, timeout,
/// metrics), and the body limit for axum's extractors.
fn in_stack(routes: Router<AppState>, state: &AppState, body_limit: usize) -> Router<AppState> {
    routes.layer(
        tower::ServiceBuilder::new()
            .layer(edge::EdgeLayer::new(state.metrics.clone(), body_limit))
            .layer(DefaultBodyLimit::max(body_limit)),
    )
}

/// `POST /sms` as a service of its own, in the same edge and body limit as the routes of
/// [`app`] (where the route is too, for every other method and for [`app`]'s own callers).
fn webhook(
    state: &AppState,
) -> impl tower::Service<Request, Response = Response, Error = Infallible, Future: Send>
+ Clone
+ Send
+ 'static {
    let handler_state = state.clone();
    tower::ServiceBuilder::new()
        .layer(edge::EdgeLayer::for_route(
            state.metrics.clone(),
            BODY_LIMIT,
            "/sms",
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .service_fn(move |request: Request| {
            let state = handler_state.clone();
            async move { Ok::<_, Infallible>(sms::inbound(State(state), request).await) }
        })
}

/// Whether a request is for [`webhook`]: exactly `POST /sms`, any query.
fn is_webhook<B>(request: &axum::http::Request<B>) -> bool {
    request.method() == axum::http::Method::POST && request.uri().path() == "/sms"
}

/// Serves `app(state)` on `listener`, every connection on this runtime, until `shutdown`
/// completes, then flushes the store.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve(listener, state, shutdown, None).await
}

/// [`run`], with each accepted connection served on one of `threads` in turn ([`threads`]),
/// which are stopped once the requests in flight at shutdown are answered. The metrics watch
/// every runtime involved: this one (`accept`) and each thread's (`conn-N`, with its lag).
pub async fn run_on(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
    threads: threads::ConnectionThreads,
) -> std::io::Result<()> {
    let metrics = state.metrics.clone();
    metrics.watch_runtime("accept", &tokio::runtime::Handle::current());
    for (n, handle) in threads.handles().iter().enumerate() {
        metrics.watch_runtime(&format!("conn-{n}"), handle);
    }
    threads.spawn_on_each(|| crate::metrics::watch_runtime_lag(metrics.clone()));
    serve(listener, state, shutdown, Some(threads)).await
}

async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
    mut threads: Option<threads::ConnectionThreads>,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use tower::Service;
    let store = state.store.clone();
    let webhook = webhook(&state);
    let mut make = app(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(err) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(router) = make.call(peer).await;
        // The SMS webhook is served before the router: under load nearly every request is one,
        // and the router's own work per request (matching the path, the extensions it adds, the
        // boxed services it clones) was about a twentieth of the webhook's CPU (BENCHMARKS.md,
        // SMS webhook step 32). Everything else goes through the router.
        let webhook = webhook.clone();
        let service = tower::service_fn(move |request: Request<hyper::body::Incoming>| {
            let (mut webhook, mut router) = (webhook.clone(), router.clone());
            async move {
                if is_webhook(&request) {
                    webhook.call(request.map(Body::new)).await
                } else {
                    router.call(request).await
                }
            }
        });
        let service = hyper_util::service::TowerToHyperService::new(service);
        let (builder, watcher) = (builder.clone(), graceful.watcher());
        let connection = move |stream: tokio::net::TcpStream| async move {
            let connection = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .into_owned();
            // A closed or timed-out connection is not an error of ours.
            let _ = watcher.watch(connection).await;
        };
        match &mut threads {
            None => drop(tokio::spawn(connection(stream))),
            Some(threads) => {
                // The socket leaves this runtime's reactor and joins the thread's.
                let stream = match stream.into_std() {
                    Ok(stream) => stream,
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot hand a connection to its thread");
                        continue;
                    }
                };
                threads.spawn(async move {
                    if let Ok(stream) = tokio::net::TcpStream::from_std(stream) {
                        connection(stream).await;
                    }
                });
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after {DRAIN_TIMEOUT:?}; stopping anyway");
    }
    if let Some(threads) = threads {
        // Joining blocks: off this runtime's thread.
        let _ = tokio::task::spawn_blocking(move || threads.stop()).await;
    }
    if let Err(err) = store.flush().await {
        tracing::error!(error = %err, "flushing the store at shutdown failed");
    }
    Ok(())
}

/// Completes on SIGINT (ctrl-c) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutdown requested; finishing requests in flight");
}

/// The process is up and answering.
async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready to serve attendees: the store answers and an agenda is loaded.
async fn readyz(State(state): State<AppState>) -> Response {
    let intents = state.intents.status();
    let agenda = state.agenda();
    let store_ok = state.store.is_healthy();
    let body = json!({
        "status": if store_ok { "ready" } else { "not ready" },
        "store": if store_ok { "ok" } else { "unavailable" },
        "agenda": {
            "conference": agenda.agenda().conference.name,
            "sessions": agenda.agenda().sessions.len(),
            "days": agenda.agenda().conference.days.len(),
        },
        "started": state.started().to_string(),
        "intents": {
            "generation": intents.generation,
            "intents": intents.stats.intents,
        },
    });
    let status = if store_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// The OpenAPI document of every route. `tests/openapi.rs` checks it against the routes in the
/// source, both ways.
pub const OPENAPI: &str = include_str!("openapi.json");

async fn openapi() -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
}

async fn not_found() -> AppError {
    AppError::NotFound
}

/// Every error a handler can return, and its HTTP face.
#[derive(Debug)]
pub enum AppError {
    NotFound,
    /// The request is wrong; the message says how, and is safe to show.
    BadRequest(String),
    /// No credentials.
    Unauthorized,
    /// Credentials that do not allow this.
    Forbidden(String),
    /// Well-formed, but it cannot be done; the body says why.
    Unprocessable(serde_json::Value),
    /// A body of a type the route does not take.
    UnsupportedMediaType(String),
    /// The request conflicts with the current state (accepting a task not offered to you).
    Conflict(String),
    /// Too many requests; try again after this many seconds.
    TooManyRequests(u64),
    /// A body larger than the route takes (this many bytes).
    PayloadTooLarge(usize),
    /// Something on our side failed. The detail is logged, never sent.
    Internal(String),
}

impl AppError {
    /// What the client is told (internal details stay in the log).
    pub fn message(&self) -> String {
        match self {
            AppError::NotFound => "not found".into(),
            AppError::BadRequest(m)
            | AppError::Forbidden(m)
            | AppError::UnsupportedMediaType(m)
            | AppError::Conflict(m) => m.clone(),
            AppError::Unauthorized => "missing bearer token".into(),
            AppError::TooManyRequests(secs) => {
                format!("too many requests; try again in {secs} s")
            }
            AppError::PayloadTooLarge(limit) => {
                format!("the body is larger than {limit} bytes")
            }
            AppError::Unprocessable(v) => {
                v["error"].as_str().unwrap_or("cannot be done").to_string()
            }
            AppError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                "internal error".into()
            }
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = match &self {
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        match self {
            AppError::Unauthorized => (
                status,
                [(axum::http::header::WWW_AUTHENTICATE, "Bearer")],
                Json(json!({ "error": self.message() })),
            )
                .into_response(),
            AppError::Unprocessable(body) => (status, Json(body)).into_response(),
            AppError::TooManyRequests(secs) => (
                status,
                [(axum::http::header::RETRY_AFTER, secs.to_string())],
                Json(json!({ "error": self.message() })),
            )
                .into_response(),
            other => (status, Json(json!({ "error": other.message() }))).into_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    /// Clients that connect at once are all queued by the kernel until the service accepts
    /// them, up to the system's cap: none waits for its handshake to be sent again. With
    /// `TcpListener::bind`'s backlog of 128, those past the 129th wait a second.
    #[tokio::test]
    async fn a_burst_of_connections_fits_in_the_listen_queue() {
        let cap: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(super::LISTEN_BACKLOG as usize);
        let clients = cap.min(500);
        let listener = super::listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        // Nothing accepts: every connection waits in the queue.
        let connects: Vec<_> = (0..clients)
            .map(|_| {
                tokio::spawn(tokio::time::timeout(
                    Duration::from_millis(600),
                    tokio::net::TcpStream::connect(addr),
                ))
            })
            .collect();
        let mut connected = Vec::new();
        for connect in connects {
            if let Ok(stream) = connect.await.unwrap() {
                connected.push(stream.unwrap());
            }
        }
        assert_eq!(
            connected.len(),
            clients,
            "the others waited for their handshake to be sent again"
        );
        drop(listener);
    }
}
