//! Admin routes (`/api/admin/…`): thin HTTP over the same service functions
//! the CLI and the socket use. The permission each route needs is in its
//! handler's signature (`Authorized<perm::…>`).

pub mod sessions;
pub mod users;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    users::configure(cfg);
    sessions::configure(cfg);
}
