//! What every request runs in, as one layer ([`EdgeLayer`]): a tracing span, the body limit, the
//! request timeout and the metrics.
//!
//! One hand-written layer instead of tower-http's trace, timeout and body-limit layers and an
//! `axum::middleware::from_fn` for the metrics: each of those was a service cloned and a future
//! boxed or wrapped per request, the metrics' labels two strings allocated per request, and the
//! clock read three times. Together they were 9 % of the service's CPU per webhook request
//! (BENCHMARKS.md, SMS webhook step 30).
//!
//! In order, for each request:
//! - a span `http` with the method and the path (never the query, headers or body, which may hold
//!   phone numbers or tokens); the response's status and latency are a debug event in it;
//! - a `Content-Length` over the route group's limit is answered 413 before the handler runs (a
//!   body without one is limited where it is read: axum's extractors take the limit from
//!   `DefaultBodyLimit`, set with this layer by [`super::in_stack`]);
//! - a handler that has not answered within [`REQUEST_TIMEOUT`] is dropped and answered 408;
//! - every answer, 404s, 408s and 413s included, is counted by route pattern (never the path:
//!   no ids or tokens in labels), method and status, and timed by route pattern.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock, RwLock};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use super::{AppError, REQUEST_TIMEOUT};
use crate::metrics::Metrics;

/// Wraps a route in [`Edge`].
#[derive(Clone)]
pub struct EdgeLayer {
    metrics: Arc<Metrics>,
    body_limit: usize,
    route: Option<&'static str>,
}

impl EdgeLayer {
    /// For routes inside the router: each request's route pattern is the one the router matched.
    pub fn new(metrics: Arc<Metrics>, body_limit: usize) -> EdgeLayer {
        EdgeLayer {
            metrics,
            body_limit,
            route: None,
        }
    }

    /// For one route served outside the router ([`super::run`]'s webhook): its pattern is given.
    pub fn for_route(metrics: Arc<Metrics>, body_limit: usize, route: &'static str) -> EdgeLayer {
        EdgeLayer {
            route: Some(route),
            ..EdgeLayer::new(metrics, body_limit)
        }
    }
}

impl<S> tower::Layer<S> for EdgeLayer {
    type Service = Edge<S>;

    fn layer(&self, inner: S) -> Edge<S> {
        Edge {
            inner,
            metrics: self.metrics.clone(),
            body_limit: self.body_limit,
            route: self.route,
        }
    }
}

/// A route inside the edge (see the module doc).
#[derive(Clone)]
pub struct Edge<S> {
    inner: S,
    metrics: Arc<Metrics>,
    body_limit: usize,
    route: Option<&'static str>,
}

impl<S> tower::Service<Request> for Edge<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let started = Instant::now();
        let span =
            tracing::info_span!("http", method = %request.method(), path = %request.uri().path());
        let route = self
            .route
            .unwrap_or_else(|| route_label(request.extensions().get::<MatchedPath>()));
        let method = method_label(request.method());
        let too_large = content_length(&request).is_some_and(|n| n > self.body_limit as u64);
        // The service that was made ready goes into the future; its clone stays for the next call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let (metrics, limit) = (self.metrics.clone(), self.body_limit);
        Box::pin(
            async move {
                let response = if too_large {
                    AppError::PayloadTooLarge(limit).into_response()
                } else {
                    match tokio::time::timeout(REQUEST_TIMEOUT, inner.call(request)).await {
                        Ok(Ok(response)) => response,
                        Err(_elapsed) => StatusCode::REQUEST_TIMEOUT.into_response(),
                    }
                };
                let latency = started.elapsed();
                let status = response.status();
                metrics.served(route, method, status.as_u16(), latency.as_secs_f64());
                tracing::debug!(
                    status = status.as_u16(),
                    latency_us = latency.as_micros() as u64,
                    "response"
                );
                Ok(response)
            }
            .instrument(span),
        )
    }
}

fn content_length(request: &Request) -> Option<u64> {
    request
        .headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// The standard methods by name; anything else is `other`, so a client cannot add label values.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// The route pattern as a `&'static str`, so labels are made without allocating. Patterns come
/// from the router, a fixed set, so each is kept (leaked) once; no pattern is `unmatched`.
fn route_label(matched: Option<&MatchedPath>) -> &'static str {
    static ROUTES: OnceLock<RwLock<Vec<&'static str>>> = OnceLock::new();
    let Some(pattern) = matched.map(MatchedPath::as_str) else {
        return "unmatched";
    };
    let routes = ROUTES.get_or_init(Default::default);
    let find = |known: &[&'static str]| known.iter().copied().find(|r| *r == pattern);
    if let Some(known) = find(&routes.read().unwrap_or_else(|e| e.into_inner())) {
        return known;
    }
    let mut known = routes.write().unwrap_or_else(|e| e.into_inner());
    find(&known).unwrap_or_else(|| {
        let leaked: &'static str = Box::leak(pattern.to_string().into_boxed_str());
        known.push(leaked);
        leaked
    })
}
