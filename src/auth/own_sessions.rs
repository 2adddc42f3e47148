//! A user's own sessions: `GET /api/auth/sessions` (current one marked),
//! `DELETE /api/auth/sessions/{id}` (sign out that device) and
//! `DELETE /api/auth/sessions` (sign out everywhere else).

use actix_identity::Identity;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::{extractors::from_client, routes::audit_logout};
use crate::{
    audit::{AuditEvent, RevokedBy},
    auth::CurrentUser,
    domain::EndReason,
    error::{ApiError, ErrorBody},
    error_docs,
    sessions::SessionSummary,
    state::AppState,
};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/auth/sessions")
            .route(web::get().to(list_mine))
            .route(web::delete().to(end_all_others)),
    )
    .route("/api/auth/sessions/{id}", web::delete().to(end_one));
}

/// One of the caller's sessions: `SESSION_INFO` plus `current`.
#[derive(Serialize, ToSchema)]
pub struct OwnSession {
    #[serde(flatten)]
    pub info: SessionSummary,
    /// This is the session the request came with.
    pub current: bool,
}

#[derive(Serialize, ToSchema)]
pub struct OwnSessions {
    /// Newest first.
    pub sessions: Vec<OwnSession>,
}

/// How many sessions a bulk sign-out ended.
#[derive(Serialize, ToSchema)]
pub struct Ended {
    pub ended: usize,
}

/// My sessions, newest first, the current one marked.
#[utoipa::path(
    get, path = "/api/auth/sessions", tag = "sessions", operation_id = "list_own_sessions",
    security(("session_cookie" = [])),
    responses(
        (status = 200, description = "The caller's live sessions.", body = OwnSessions),
        (status = 401, response = error_docs::Unauthenticated),
        (status = 503, response = error_docs::Unavailable),
    ),
)]
async fn list_mine(
    user: CurrentUser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let sessions = state.sessions.list_user(user.access.id).await?;
    let sessions = sessions
        .into_iter()
        .map(|info| OwnSession {
            current: info.id == user.session.sid,
            info,
        })
        .collect();
    Ok(HttpResponse::Ok().json(OwnSessions { sessions }))
}

/// Sign out one of my devices.
///
/// Its sockets get `session.revoked` `logout` and close with 4001. If `{id}`
/// is the current session this is a logout and the cookie is cleared.
#[utoipa::path(
    delete, path = "/api/auth/sessions/{id}", tag = "sessions", operation_id = "end_own_session",
    security(("session_cookie" = [])),
    params(("id" = String, Path, description = "A public session id (`session.id`).")),
    responses(
        (status = 204, description = "Signed out."),
        (status = 401, response = error_docs::Unauthenticated),
        (status = 403, response = error_docs::CrossSite),
        (status = 404, description = "`not_found`: not one of the caller's sessions.", body = ErrorBody),
        (status = 503, response = error_docs::Unavailable),
    ),
)]
async fn end_one(
    req: HttpRequest,
    user: CurrentUser,
    identity: Identity,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let sid = id.into_inner();
    // Someone else's session, or none at all: the same 404.
    let mine = state.sessions.load(&sid).await?;
    if mine.and_then(|s| s.user_id) != Some(user.access.id) {
        return Err(ApiError::NotFound);
    }
    if sid == user.session.sid {
        // This device: a normal logout, which also clears the cookie.
        state.audit.record(audit_logout(&req, &user.session));
        identity.logout();
    } else {
        state.sessions.revoke(&sid, EndReason::Logout).await?;
        audit_ended(&req, &state, &user, &[sid]);
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Sign out everywhere else (reason `logout`); this session stays.
#[utoipa::path(
    delete, path = "/api/auth/sessions", tag = "sessions", operation_id = "end_other_sessions",
    security(("session_cookie" = [])),
    responses(
        (status = 200, description = "How many sessions ended.", body = Ended),
        (status = 401, response = error_docs::Unauthenticated),
        (status = 403, response = error_docs::CrossSite),
        (status = 503, response = error_docs::Unavailable),
    ),
)]
async fn end_all_others(
    req: HttpRequest,
    user: CurrentUser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let ended = state
        .sessions
        .revoke_user_except_listed(user.access.id, Some(&user.session.sid), EndReason::Logout)
        .await?;
    audit_ended(&req, &state, &user, &ended);
    Ok(HttpResponse::Ok().json(Ended { ended: ended.len() }))
}

/// The user ended these sessions of their own from this one.
fn audit_ended(req: &HttpRequest, state: &AppState, user: &CurrentUser, sids: &[String]) {
    for sid in sids {
        let event = AuditEvent::session_revoked(
            user.actor(),
            sid,
            EndReason::Logout,
            RevokedBy::SelfService,
        );
        state
            .audit
            .record(from_client(req, event).target_user(user.access.id));
    }
}
