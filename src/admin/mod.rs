//! Admin routes (`/api/admin/…`): thin HTTP over the same service functions
//! the CLI and the socket use. The permission each route needs is in its
//! handler's signature (`Authorized<perm::…>`).

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

pub fn configure(cfg: &mut web::ServiceConfig) {
    sessions::configure(cfg);
    stats::configure(cfg);
    users::configure(cfg);
}
