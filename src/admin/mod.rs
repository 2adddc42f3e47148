//! Admin routes (`/api/admin/…`): thin HTTP over the same service functions
//! the CLI and the socket use. The permission each route needs is in its
//! handler's signature (`Authorized<perm::…>`).

pub mod sessions;
pub mod users;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    // Sessions first: `/api/admin/users/{id}/sessions` must not be swallowed
    // by a `/api/admin/users` scope.
    sessions::configure(cfg);
    users::configure(cfg);
}
