//! API errors: every failure a client can see, with its HTTP status and a
//! JSON body `{"error": "...", "error_type": "..."}`.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use serde::Serialize;

/// A failed request, as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The body is not valid JSON (400).
    #[error("{0}")]
    BadRequest(String),
    /// Missing or wrong bearer token (401).
    #[error("{0}")]
    Unauthorized(String),
    /// A route or path this server does not allow (403).
    #[error("{0}")]
    Forbidden(String),
    /// No such route (404).
    #[error("{0}")]
    NotFound(String),
    /// The route exists, but not for this method (405).
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The body is larger than the configured limit (413).
    #[error("{0}")]
    PayloadTooLarge(String),
    /// Valid JSON that breaks the request contract; names the session and
    /// field (422).
    #[error("{0}")]
    Validation(String),
    /// Too many requests in flight (429).
    #[error("{0}")]
    Overloaded(String),
    /// A bundle given to reload cannot be loaded; the old one keeps serving
    /// (422).
    #[error("{0}")]
    BundleInvalid(String),
    /// Something failed inside the server (500).
    #[error("{0}")]
    Internal(String),
    /// No model is loaded, or the model worker is gone (503).
    #[error("{0}")]
    NotReady(String),
    /// The request did not finish within the per-request timeout (504).
    #[error("{0}")]
    Timeout(String),
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for a person.
    pub error: String,
    /// A stable machine-readable kind (see [`ApiError::error_type`]).
    pub error_type: &'static str,
}

impl ApiError {
    /// HTTP status of the error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Validation(_) | ApiError::BundleInvalid(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::Overloaded(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::NotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// Machine-readable kind, also the `outcome` label of request metrics.
    pub fn error_type(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::Validation(_) => "validation",
            ApiError::Overloaded(_) => "overloaded",
            ApiError::BundleInvalid(_) => "bundle_invalid",
            ApiError::Internal(_) => "internal",
            ApiError::NotReady(_) => "not_ready",
            ApiError::Timeout(_) => "timeout",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.to_string(),
            error_type: self.error_type(),
        };
        (self.status(), Json(body)).into_response()
    }
}
