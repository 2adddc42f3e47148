//! `GET /api/admin/stats` (needs `admin:sessions`): the per-second series of
//! the last 15 minutes, summed over every instance (see `stats`).

use actix_web::{web, HttpResponse};

use crate::{
    auth::{extractors::perm, Authorized},
    error::ApiError,
    error_docs,
    state::AppState,
    stats::StatsSeries,
};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/admin/stats", web::get().to(stats));
}

/// The per-second series of the last 15 minutes, summed over every instance.
#[utoipa::path(
    get, path = "/api/admin/stats", tag = "admin", operation_id = "live_stats",
    security(("session_cookie" = ["admin:sessions"])),
    responses(
        (status = 200, description = "The series.", body = StatsSeries),
        (status = 401, response = error_docs::Unauthenticated),
        (status = 403, response = error_docs::Forbidden),
        (status = 503, response = error_docs::Unavailable),
    ),
)]
pub(crate) async fn stats(
    _: Authorized<perm::AdminSessions>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let series = state
        .stats
        .snapshot()
        .await
        .map_err(ApiError::Unavailable)?;
    Ok(HttpResponse::Ok().json(series))
}
