//! A user's own sessions: `GET /api/auth/sessions` (current one marked),
//! `DELETE /api/auth/sessions/{id}` (sign out that device) and
//! `DELETE /api/auth/sessions` (sign out everywhere else).

use actix_identity::Identity;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::{extractors::audit_event, routes::audit_logout};
use crate::{
    audit::{Action, RevokedBy},
    auth::CurrentUser,
    domain::EndReason,
    error::ApiError,
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

async fn list_mine(
    user: CurrentUser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let sessions = state.sessions.list_user(user.access.id).await?;
    let sessions: Vec<_> = sessions
        .into_iter()
        .map(|s| {
            let current = s.id == user.session.sid;
            let mut v = serde_json::to_value(s).unwrap_or_default();
            v["current"] = json!(current);
            v
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "sessions": sessions })))
}

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
    Ok(HttpResponse::Ok().json(json!({ "ended": ended.len() })))
}

/// The user ended these sessions of their own from this one.
fn audit_ended(req: &HttpRequest, state: &AppState, user: &CurrentUser, sids: &[String]) {
    for sid in sids {
        let event = audit_event(req, Action::SessionRevoked, user.actor())
            .target_user(user.access.id)
            .target_session(sid)
            .detail("reason", EndReason::Logout)
            .detail("by", RevokedBy::SelfService.as_str());
        state.audit.record(event);
    }
}
