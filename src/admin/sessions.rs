//! `GET /api/admin/sessions` (filter `?user_id=`, paginated),
//! `DELETE /api/admin/sessions/{id}`, `DELETE /api/admin/users/{id}/sessions`.
//! All need `admin:sessions`.

use std::collections::HashMap;

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::{paging, user_id_filter, UserIdPath};
use crate::{
    audit::{Action, RevokedBy},
    auth::{
        extractors::{audit_event, perm},
        Authorized,
    },
    domain::EndReason,
    error::ApiError,
    state::AppState,
};

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

async fn list(
    _: Admin,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let (page, per_page) = paging(query.page, query.per_page)?;
    let user_id = user_id_filter(query.user_id.as_deref())?;
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
    req: HttpRequest,
    admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    // Whose it was, for the audit trail.
    let owner = state.sessions.load(&id).await?.and_then(|s| s.user_id);
    if state.sessions.revoke(&id, EndReason::Admin).await? {
        audit_ended(&req, &admin, &state, owner, &[id.into_inner()]);
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound)
    }
}

async fn end_users(
    req: HttpRequest,
    admin: Admin,
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
        .revoke_user_listed(user_id, EndReason::Admin)
        .await?;
    audit_ended(&req, &admin, &state, Some(user_id), &ended);
    Ok(HttpResponse::Ok().json(json!({ "ended": ended.len() })))
}

/// An admin ended these sessions (of `owner`, when known).
fn audit_ended(
    req: &HttpRequest,
    admin: &Admin,
    state: &AppState,
    owner: Option<Uuid>,
    sids: &[String],
) {
    for sid in sids {
        let mut event = audit_event(req, Action::SessionRevoked, admin.user.actor())
            .target_session(sid)
            .detail("reason", EndReason::Admin)
            .detail("by", RevokedBy::Admin.as_str());
        if let Some(owner) = owner {
            event = event.target_user(owner);
        }
        state.audit.record(event);
    }
}
