//! The HTTP API: routes, handlers, bearer-token auth, body limits, request
//! ids, and panics turned into JSON 500s.

use std::{path::PathBuf, sync::Arc, time::Instant};

use axum::{
    body::Bytes,
    extract::{rejection::BytesRejection, DefaultBodyLimit, Request, State},
    http::{header, HeaderValue, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
    Extension, Json, Router,
};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tower_http::{
    catch_panic::CatchPanicLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};
use utoipa::{OpenApi, ToSchema};

use crate::{
    config::ServeConfig,
    error::{ApiError, ErrorBody},
    infer::{Admission, Infer},
    metrics,
    model::{ModelSlot, Reloader},
    queue::Queue,
    request::{json_error, parse_score_request, ModelRef, ScoreRequest, ScoreResponse},
};

/// Shared state of the handlers.
pub struct AppState {
    /// Scoring.
    pub infer: Arc<Infer>,
    /// The model served.
    pub slot: Arc<ModelSlot>,
    /// The batching queue (for `/info`).
    pub queue: Arc<Queue>,
    /// Bundle loading.
    pub reloader: Arc<Reloader>,
    /// Prometheus exposition.
    pub metrics: PrometheusHandle,
    /// The configuration served under.
    pub config: ServeConfig,
}

/// Builds the router.
pub fn router(state: Arc<AppState>) -> Router {
    // Layers run outermost (last added) first: the token check, then
    // admission, and only then is the body read.
    let scoring = Router::new()
        .route("/v1/score", post(score))
        .route_layer(middleware::from_fn_with_state(state.infer.clone(), admit))
        .route_layer(middleware::from_fn_with_state(
            state.config.api_token.clone().map(Arc::<str>::from),
            require_token,
        ));
    let admin = Router::new()
        .route("/admin/reload", post(reload))
        .route_layer(middleware::from_fn_with_state(
            state.config.admin_token.clone().map(Arc::<str>::from),
            require_token,
        ))
        .route_layer(middleware::from_fn_with_state(
            state.config.admin_enabled(),
            require_admin_enabled,
        ));
    Router::new()
        .merge(scoring)
        .merge(admin)
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/info", get(info))
        .route("/metrics", get(prometheus))
        .route("/openapi.json", get(openapi))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(
            TraceLayer::new_for_http()
                // Failures are logged by the handlers, with their reason.
                .on_failure(())
                .make_span_with(|req: &Request| {
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
            }),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    ApiError::Internal("the server failed on this request".into()).into_response()
}

/// Checks `Authorization: Bearer <token>` when a token is configured.
async fn require_token(
    State(token): State<Option<Arc<str>>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(token) = token {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes())) {
            return ApiError::Unauthorized("missing or wrong bearer token".into()).into_response();
        }
    }
    next.run(request).await
}

/// Answers 403 on `/admin/*` when the server runs on a non-loopback
/// address without an admin token (and without --open-admin).
async fn require_admin_enabled(
    State(enabled): State<bool>,
    request: Request,
    next: Next,
) -> Response {
    if !enabled {
        return ApiError::Forbidden(
            "admin routes are off: this server listens on a non-loopback address without \
             --admin-token (set one, or --open-admin to allow them without)"
                .into(),
        )
        .into_response();
    }
    next.run(request).await
}

/// Admits a scoring request before its body is read (429 beyond the
/// in-flight limit); the admission travels to the handler in the request's
/// extensions and is held until the response is ready.
async fn admit(State(infer): State<Arc<Infer>>, mut request: Request, next: Next) -> Response {
    match infer.admit() {
        Ok(admission) => {
            request.extensions_mut().insert(Arc::new(admission));
            next.run(request).await
        }
        Err(e) => finish::<()>("score", Instant::now(), Err(e)),
    }
}

/// Compares two byte strings in time that depends on their lengths only.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn body_error(rejection: BytesRejection, limit: usize) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge(format!("request body over the {limit}-byte limit"))
    } else {
        ApiError::BadRequest(format!(
            "cannot read the request body: {}",
            rejection.body_text()
        ))
    }
}

/// Counts and times a finished request and turns its outcome into the
/// response; server-side failures are logged (client errors only at
/// debug level: they are the client's business).
fn finish<T: Serialize>(
    route: &'static str,
    started: Instant,
    result: Result<T, ApiError>,
) -> Response {
    match result {
        Ok(body) => {
            metrics::request(route, "ok", started.elapsed());
            Json(body).into_response()
        }
        Err(e) => {
            metrics::request(route, e.error_type(), started.elapsed());
            if e.status().is_server_error() {
                tracing::warn!(route, error_type = e.error_type(), "{e}");
            } else {
                tracing::debug!(route, error_type = e.error_type(), "{e}");
            }
            e.into_response()
        }
    }
}

/// Score sessions, or bare prompts with the bundle's prompt head.
#[utoipa::path(
    post,
    path = "/v1/score",
    request_body = ScoreRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "One result per session, in request order", body = ScoreResponse),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 422, description = "Valid JSON that breaks the contract (the message names the session and field), or bare prompts for a bundle without a prompt head", body = ErrorBody),
        (status = 429, description = "Too many requests in flight", body = ErrorBody),
        (status = 500, description = "The model failed on the batch", body = ErrorBody),
        (status = 503, description = "No model loaded, or the worker is down", body = ErrorBody),
        (status = 504, description = "Not scored within the request timeout", body = ErrorBody),
    )
)]
async fn score(
    State(state): State<Arc<AppState>>,
    Extension(admission): Extension<Arc<Admission>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let result = async {
        let body = body.map_err(|r| body_error(r, state.config.max_body_bytes))?;
        let request = parse_score_request(&body, state.config.max_sessions_per_request)?;
        state.infer.score(&admission, request).await
    }
    .await;
    finish(
        "score",
        started,
        result.map(|results| ScoreResponse { results }),
    )
}

/// Body of `POST /admin/reload` (optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ReloadRequest {
    /// Bundle directory to load instead of the one served now (under
    /// `--bundle-root`).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    model_dir: Option<PathBuf>,
}

/// Body of a successful `POST /admin/reload`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Reloaded {
    /// `reloaded`.
    status: &'static str,
    /// The model now served.
    model: ModelRef,
    /// Its bundle directory.
    #[schema(value_type = Option<String>)]
    model_dir: Option<PathBuf>,
}

/// Load a bundle from disk and swap it in; the old one keeps serving when
/// the load fails.
#[utoipa::path(
    post,
    path = "/admin/reload",
    request_body(content = Option<ReloadRequest>, description = "Optional: the bundle directory to load"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Reloaded", body = Reloaded),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 403, description = "Admin routes are off on this address, or the directory is outside the bundle root", body = ErrorBody),
        (status = 422, description = "The bundle cannot be loaded", body = ErrorBody),
    )
)]
async fn reload(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let result = async {
        let body = body.map_err(|r| body_error(r, state.config.max_body_bytes))?;
        let request: ReloadRequest = if body.iter().all(u8::is_ascii_whitespace) {
            ReloadRequest::default()
        } else {
            serde_json::from_slice(&body).map_err(|e| json_error(e, "."))?
        };
        state.reloader.reload(request.model_dir).await
    }
    .await;
    finish(
        "reload",
        started,
        result.map(|model| Reloaded {
            status: "reloaded",
            model,
            model_dir: state.slot.current_dir(),
        }),
    )
}

/// Body of `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    status: &'static str,
}

/// Liveness: answers while the process runs.
#[utoipa::path(get, path = "/health", responses((status = 200, description = "Alive", body = Health)))]
async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Body of `GET /ready` when a model serves.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    /// `ready`.
    status: &'static str,
    /// The model served.
    model: ModelRef,
}

/// Readiness: a model is loaded and the worker runs.
#[utoipa::path(
    get,
    path = "/ready",
    responses(
        (status = 200, description = "Ready", body = Ready),
        (status = 503, description = "Not ready, with the reason", body = ErrorBody),
    )
)]
async fn ready(State(state): State<Arc<AppState>>) -> Response {
    match state.infer.readiness() {
        Ok(model) => Json(Ready {
            status: "ready",
            model: model.model_ref.clone(),
        })
        .into_response(),
        Err(e) => e.into_response(),
    }
}

/// Model metadata (bundle, thresholds, validation and test metrics),
/// limits, batching settings and the current load.
#[utoipa::path(get, path = "/info", responses((status = 200, description = "Server, model, limits, batching and load", body = Object)))]
async fn info(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let c = &state.config;
    let model = state.slot.current().map(|m| {
        let b = &m.bundle;
        json!({
            "name": m.model_ref.name,
            "version": m.model_ref.version,
            "dir": state.slot.current_dir(),
            "created_at": b.metadata.created_at,
            "trained_by": b.metadata.version,
            "base_model": b.metadata.base_model,
            "threshold": b.threshold,
            "precision": b.precision(),
            "kernels": b.kernels(),
            "max_tokens": b.head.max_tokens,
            "max_prompts": b.head.max_prompts,
            "validation_metrics": b.metadata.validation_metrics,
            "test_metrics": b.metadata.test_metrics,
            "campaign_map": m.campaign_map.as_ref().map(|c| json!({
                "accounts": c.accounts.len(),
                "window_start": c.window_start,
                "window_end": c.window_end,
                "created_at": c.created_at,
            })),
        })
    });
    Json(json!({
        "server": {"name": "distill-guard serve", "version": env!("CARGO_PKG_VERSION")},
        "model": model,
        "last_load_error": state.slot.last_error(),
        "device": c.device,
        "limits": {
            "max_concurrent_requests": c.max_concurrent,
            "max_sessions_per_request": c.max_sessions_per_request,
            "max_body_bytes": c.max_body_bytes,
            "request_timeout_ms": c.request_timeout_ms,
        },
        "batching": {
            "max_batch_size": c.max_batch_size,
            "max_batch_tokens": c.max_batch_tokens,
            "max_wait_ms": c.max_wait_ms,
            "model_threads": c.model_threads,
        },
        "auth": {"scoring": c.api_token.is_some(), "admin": c.admin_token.is_some()},
        "load": {"in_flight_requests": state.infer.in_flight(), "queued_sessions": state.queue.depth()},
    }))
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain")))]
async fn prometheus(State(state): State<Arc<AppState>>) -> Response {
    metrics::score_drift(state.slot.current().as_deref());
    state.metrics.run_upkeep();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", responses((status = 200, description = "The OpenAPI document", body = Object)))]
async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// The API's OpenAPI document, generated from the handlers and types.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "distill-guard serve",
        description = "Scores prompt sessions for distillation (capability-extraction) traffic. Errors are `{\"error\", \"error_type\"}` with the status. Every response carries `x-request-id`."
    ),
    paths(score, reload, health, ready, info, prometheus, openapi),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// Declares the bearer-token scheme the scoring and admin routes use.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::MethodNotAllowed(format!(
        "{} is not allowed on {}",
        request.method(),
        request.uri().path()
    ))
}

async fn not_found(request: Request) -> ApiError {
    ApiError::NotFound(format!(
        "no route {} {}",
        request.method(),
        request.uri().path()
    ))
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }

    #[test]
    fn the_openapi_document_lists_every_route() {
        use utoipa::OpenApi;
        let doc = serde_json::to_value(super::ApiDoc::openapi()).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        for route in [
            "/v1/score",
            "/admin/reload",
            "/health",
            "/ready",
            "/info",
            "/metrics",
            "/openapi.json",
        ] {
            assert!(paths.contains_key(route), "openapi.json lacks {route}");
        }
    }
}
