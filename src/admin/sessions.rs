//! `GET /api/admin/sessions` (filter `?user_id=`, paginated),
//! `DELETE /api/admin/sessions/{id}`, `DELETE /api/admin/users/{id}/sessions`.
//! All need `admin:sessions`.

use std::collections::HashMap;

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::UserIdPath;
use crate::{
    auth::{extractors::perm, Authorized},
    domain::EndReason,
    error::ApiError,
    state::AppState,
};

pub const DEFAULT_PER_PAGE: usize = 50;
pub const MAX_PER_PAGE: usize = 200;

type Admin = Authorized<perm::AdminSessions>;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/admin/sessions", web::get().to(list))
        .route("/api/admin/sessions/{id}", web::delete().to(end_one))
        .route(
            "/api/admin/users/{id}/sessions",
            web::delete().to(end_users),
        );
}

#[derive(Deserialize)]
struct ListQuery {
    user_id: Option<String>,
    page: Option<usize>,
    per_page: Option<usize>,
}

/// `page` from 1; `per_page` 1–200 (default 50).
fn paging(q: &ListQuery) -> Result<(usize, usize), ApiError> {
    let page = q.page.unwrap_or(1);
    let per_page = q.per_page.unwrap_or(DEFAULT_PER_PAGE);
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

async fn list(
    _: Admin,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let (page, per_page) = paging(&query)?;
    let user_id = match query.user_id.as_deref() {
        Some(raw) => Some(
            Uuid::parse_str(raw)
                .map_err(|_| ApiError::BadRequest("user_id is not a UUID".into()))?,
        ),
        None => None,
    };
    let (total, sessions) = state
        .sessions
        .list_page(user_id, (page - 1) * per_page, per_page)
        .await?;
    let ids: Vec<Uuid> = sessions.iter().filter_map(|s| s.user_id).collect();
    let names: HashMap<Uuid, String> = state
        .db
        .find_users(&ids)
        .await?
        .into_iter()
        .map(|u| (u.id, u.username))
        .collect();
    let sessions: Vec<_> = sessions
        .into_iter()
        .map(|s| {
            let username = s.user_id.and_then(|id| names.get(&id).cloned());
            let mut v = serde_json::to_value(s).unwrap_or_default();
            v["username"] = json!(username);
            v
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "sessions": sessions, "page": page, "per_page": per_page, "total": total,
    })))
}

async fn end_one(
    _: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    if state.sessions.revoke(&id, EndReason::Admin).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound)
    }
}

async fn end_users(
    _: Admin,
    state: web::Data<AppState>,
    UserIdPath(user_id): UserIdPath,
) -> Result<HttpResponse, ApiError> {
    state
        .db
        .find_user(user_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let ended = state
        .sessions
        .revoke_user(user_id, EndReason::Admin)
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "ended": ended })))
}
