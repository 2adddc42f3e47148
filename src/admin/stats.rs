//! `GET /api/admin/stats` (needs `admin:sessions`): the per-second series of
//! the last 15 minutes, summed over every instance (see `stats`).

use actix_web::{web, HttpResponse};

use crate::{
    auth::{extractors::perm, Authorized},
    error::ApiError,
    state::AppState,
};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/admin/stats", web::get().to(stats));
}

async fn stats(
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
