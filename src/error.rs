//! The API error type and its one mapping to HTTP.
//!
//! Every error a client sees is `{"error":{"code":"…","message":"…"}}`. A 5xx
//! says nothing of its cause to the client and everything in the log.

use actix_web::{http::StatusCode, HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{db::DbError, sessions::backend::StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("Invalid username or password")]
    InvalidCredentials,
    #[error("Sign in required")]
    Unauthenticated,
    #[error("Permission denied")]
    Forbidden,
    #[error("Origin not allowed")]
    OriginNotAllowed,
    #[error("Not found")]
    NotFound,
    #[error("Method not allowed")]
    MethodNotAllowed,
    /// Too many failed sign-ins; retry after this long.
    #[error("Too many sign-in attempts. Try again in {} s.", retry_secs(*.0))]
    RateLimited(std::time::Duration),
    /// A socket cap (`TETHER_WS_MAX_PER_SESSION`/`_PER_USER`) is reached.
    #[error("Too many open connections")]
    TooManyConnections,
    #[error("{0}")]
    Conflict(String),
    /// A dependency (user store, session store) did not answer: fail closed.
    #[error("Service temporarily unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("Internal server error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// The stable machine-readable code clients switch on.
    pub fn code(&self) -> &'static str {
        self.error_code().as_str()
    }

    pub fn error_code(&self) -> ErrorCode {
        match self {
            ApiError::BadRequest(_) => ErrorCode::BadRequest,
            ApiError::InvalidCredentials => ErrorCode::InvalidCredentials,
            ApiError::Unauthenticated => ErrorCode::Unauthenticated,
            ApiError::Forbidden | ApiError::OriginNotAllowed => ErrorCode::Forbidden,
            ApiError::NotFound => ErrorCode::NotFound,
            ApiError::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            ApiError::RateLimited(_) | ApiError::TooManyConnections => ErrorCode::RateLimited,
            ApiError::Conflict(_) => ErrorCode::Conflict,
            ApiError::Unavailable(_) => ErrorCode::Unavailable,
            ApiError::Internal(_) => ErrorCode::Internal,
        }
    }
}

/// The `code` of an error body: what clients switch on (README "Errors").
/// A type rather than strings so the OpenAPI document lists every code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ApiErrorCode)]
pub enum ErrorCode {
    BadRequest,
    InvalidCredentials,
    Unauthenticated,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    RateLimited,
    Conflict,
    Unavailable,
    Internal,
}

impl ErrorCode {
    /// As sent (the serde name).
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::InvalidCredentials => "invalid_credentials",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

/// `{"error":{"code":"…","message":"…"}}`: the body of every error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    /// A sentence to show; never the cause of a 5xx.
    pub message: String,
}

/// Whole seconds to wait, never 0.
fn retry_secs(wait: std::time::Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::InvalidCredentials | ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden | ApiError::OriginNotAllowed => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::RateLimited(_) | ApiError::TooManyConnections => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ApiError::Unavailable(e) => log::error!("event=unavailable error={e:#}"),
            ApiError::Internal(e) => log::error!("event=internal_error error={e:#}"),
            _ => {}
        }
        let mut res = HttpResponse::build(self.status_code());
        match self {
            ApiError::Unavailable(_) => {
                res.insert_header(("Retry-After", "5"));
            }
            ApiError::RateLimited(wait) => {
                res.insert_header(("Retry-After", retry_secs(*wait).to_string()));
            }
            _ => {}
        }
        res.json(ErrorBody {
            error: ErrorDetail {
                code: self.error_code(),
                message: self.to_string(),
            },
        })
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Unavailable(e) => ApiError::Unavailable(e),
            DbError::NotFound => ApiError::NotFound,
            DbError::UsernameTaken => ApiError::Conflict("Username already taken".into()),
            DbError::LastAdministrator => ApiError::Conflict(e.to_string()),
            DbError::UnknownRole(r) => ApiError::BadRequest(format!("Unknown role {r:?}")),
            DbError::IdentityTaken => ApiError::Conflict(e.to_string()),
            DbError::Other(e) => ApiError::Internal(e),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(e) => ApiError::Unavailable(e),
            StoreError::Corrupt(what) => ApiError::Internal(anyhow::anyhow!(what)),
        }
    }
}

/// 400 for every way a JSON body can be wrong (malformed, missing fields,
/// wrong content type), instead of actix's plain-text default.
pub fn json_config() -> actix_web::web::JsonConfig {
    actix_web::web::JsonConfig::default()
        .limit(64 * 1024)
        .error_handler(|err, _req| {
            use actix_web::error::JsonPayloadError as E;
            let message = match &err {
                E::ContentType => "Expected Content-Type: application/json".to_owned(),
                E::Deserialize(e) if e.is_data() => format!("Invalid request body: {e}"),
                E::Deserialize(_) => "Request body is not valid JSON".to_owned(),
                E::OverflowKnownLength { .. } | E::Overflow { .. } => {
                    "Request body too large".to_owned()
                }
                _ => "Could not read request body".to_owned(),
            };
            ApiError::BadRequest(message).into()
        })
}

/// 400 for malformed path segments and query strings.
pub fn path_config() -> actix_web::web::PathConfig {
    actix_web::web::PathConfig::default()
        .error_handler(|err, _| ApiError::BadRequest(format!("Invalid path: {err}")).into())
}

pub fn query_config() -> actix_web::web::QueryConfig {
    actix_web::web::QueryConfig::default()
        .error_handler(|err, _| ApiError::BadRequest(format!("Invalid query: {err}")).into())
}

/// actix answers a known path with the wrong method by an empty 405; give it
/// the same JSON body as every other error.
pub fn method_not_allowed<B>(
    res: actix_web::dev::ServiceResponse<B>,
) -> actix_web::Result<actix_web::middleware::ErrorHandlerResponse<B>> {
    let (req, _) = res.into_parts();
    let res = ApiError::MethodNotAllowed.error_response();
    Ok(actix_web::middleware::ErrorHandlerResponse::Response(
        actix_web::dev::ServiceResponse::new(req, res).map_into_right_body(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_code_is_sent_as_its_name() {
        let errors = [
            ApiError::BadRequest("x".into()),
            ApiError::InvalidCredentials,
            ApiError::Unauthenticated,
            ApiError::Forbidden,
            ApiError::NotFound,
            ApiError::MethodNotAllowed,
            ApiError::TooManyConnections,
            ApiError::Conflict("x".into()),
            ApiError::Unavailable(anyhow::anyhow!("x")),
            ApiError::Internal(anyhow::anyhow!("x")),
        ];
        for e in errors {
            assert_eq!(
                serde_json::to_value(e.error_code()).unwrap(),
                serde_json::json!(e.code())
            );
        }
    }
}
