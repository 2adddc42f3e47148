//! `GET /api/admin/sessions` (filter `?user_id=`, paginated),
//! `DELETE /api/admin/sessions/{id}`, `DELETE /api/admin/users/{id}/sessions`.
//! All need `admin:sessions`.

use std::collections::HashMap;

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{paging, user_id_filter, UserIdPath};
use crate::{
    audit::{AuditEvent, RevokedBy},
    auth::{
        extractors::{from_client, perm},
        own_sessions::Ended,
        Authorized,
    },
    domain::EndReason,
    error::{ApiError, ErrorBody},
    error_docs,
    sessions::SessionSummary,
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

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this user's sessions.
    #[param(value_type = Option<uuid::Uuid>)]
    user_id: Option<String>,
    /// From 1 (default 1).
    #[param(minimum = 1)]
    page: Option<usize>,
    /// 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    per_page: Option<usize>,
}

/// A session as an admin sees it: `SESSION_INFO` plus the user's name.
#[derive(Serialize, ToSchema)]
pub struct AdminSession {
    #[serde(flatten)]
    pub info: SessionSummary,
    /// `null` when the user no longer exists.
    pub username: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SessionPage {
    /// Newest first.
    pub sessions: Vec<AdminSession>,
    pub page: usize,
    pub per_page: usize,
    /// Sessions matching the filter, over all pages.
    pub total: usize,
}

/// List sessions (everyone's, or one user's), newest first, a page at a time.
#[utoipa::path(
    get, path = "/api/admin/sessions", tag = "admin", operation_id = "list_sessions",
    security(("session_cookie" = ["admin:sessions"])),
    params(ListQuery),
    responses(
        (status = 200, description = "One page of sessions.", body = SessionPage),
        (status = 400, description = "`bad_request`: a bad query (`page` 0, `per_page` out of range, `user_id` not a UUID).", body = ErrorBody),
        (status = 401, response = error_docs::Unauthenticated),
        (status = 403, response = error_docs::Forbidden),
        (status = 503, response = error_docs::Unavailable),
    ),
)]
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
    let sessions = sessions
        .into_iter()
        .map(|info| AdminSession {
            username: info.user_id.and_then(|id| names.get(&id).cloned()),
            info,
        })
        .collect();
    Ok(HttpResponse::Ok().json(SessionPage {
        sessions,
        page,
        per_page,
        total,
    }))
}

/// End one session (reason `admin`).
///
/// Its sockets get `session.revoked` `admin` and close with 4001, on every
/// instance.
#[utoipa::path(
    delete, path = "/api/admin/sessions/{id}", tag = "admin", operation_id = "end_session",
    security(("session_cookie" = ["admin:sessions"])),
    params(("id" = String, Path, description = "A public session id.")),
    responses(
        (status = 204, description = "Ended."),
        (status = 401, response = error_docs::Unauthenticated),
        (status = 403, response = error_docs::Forbidden),
        (status = 404, description = "`not_found`: no such session.", body = ErrorBody),
        (status = 503, response = error_docs::Unavailable),
    ),
)]
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

/// End every session of a user (reason `admin`).
#[utoipa::path(
    delete, path = "/api/admin/users/{id}/sessions", tag = "admin", operation_id = "end_user_sessions",
    security(("session_cookie" = ["admin:sessions"])),
    params(("id" = Uuid, Path, description = "The user's id.")),
    responses(
        (status = 200, description = "How many sessions ended.", body = Ended),
        (status = 401, response = error_docs::Unauthenticated),
        (status = 403, response = error_docs::Forbidden),
        (status = 404, description = "`not_found`: no such user (or an id that is not a UUID).", body = ErrorBody),
        (status = 503, response = error_docs::Unavailable),
    ),
)]
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
    Ok(HttpResponse::Ok().json(Ended { ended: ended.len() }))
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
        let event = AuditEvent::session_revoked(
            admin.user.actor(),
            sid,
            EndReason::Admin,
            RevokedBy::Admin,
        );
        state.audit.record(from_client(req, event).owned_by(owner));
    }
}
