//! Admin routes (`/api/admin/…`: sessions, users, the audit trail): thin HTTP over the same service functions
//! the CLI and the socket use. The permission each route needs is in its
//! handler's signature (`Authorized<perm::…>`).

pub mod audit;
pub mod sessions;
pub mod stats;
pub mod users;

use std::future::{ready, Ready};

use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use uuid::Uuid;

use crate::error::ApiError;

/// The `{id}` of a `/api/admin/users/{id}/…` path. Not a UUID names no user:
/// 404, like an unknown one.
#[derive(Debug, Clone, Copy)]
pub struct UserIdPath(pub Uuid);

impl FromRequest for UserIdPath {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let id = req
            .match_info()
            .get("id")
            .and_then(|raw| Uuid::parse_str(raw).ok());
        ready(id.map(UserIdPath).ok_or(ApiError::NotFound))
    }
}

/// Page size of the paginated listings (sessions, audit trail).
pub const DEFAULT_PER_PAGE: usize = 50;
pub const MAX_PER_PAGE: usize = 200;

/// `page` from 1; `per_page` 1–200 (default 50).
fn paging(page: Option<usize>, per_page: Option<usize>) -> Result<(usize, usize), ApiError> {
    let page = page.unwrap_or(1);
    let per_page = per_page.unwrap_or(DEFAULT_PER_PAGE);
    if page == 0 {
        return Err(ApiError::BadRequest("page starts at 1".into()));
    }
    if !(1..=MAX_PER_PAGE).contains(&per_page) {
        return Err(ApiError::BadRequest(format!(
            "per_page must be 1-{MAX_PER_PAGE}"
        )));
    }
    Ok((page, per_page))
}

/// The `user_id` filter of a listing: absent, or a UUID (else 400).
fn user_id_filter(raw: Option<&str>) -> Result<Option<Uuid>, ApiError> {
    raw.map(|raw| {
        Uuid::parse_str(raw).map_err(|_| ApiError::BadRequest("user_id is not a UUID".into()))
    })
    .transpose()
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    audit::configure(cfg);
    sessions::configure(cfg);
    stats::configure(cfg);
    users::configure(cfg);
}
