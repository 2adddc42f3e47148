//! `POST /api/auth/login`, `POST /api/auth/logout`, `GET /api/auth/me`.

use actix_identity::Identity;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    extractors::audit_event,
    sign_in::{start_session, SignInMethod},
    throttle::Checked,
    CurrentSession, CurrentUser, Me, UserJson,
};
use crate::{
    audit::{Action, Actor},
    domain::{Password, Username},
    error::{ApiError, ErrorBody},
    error_docs,
    sessions::{client::client_ip, SessionJson},
    state::AppState,
};

/// Plain routes, not a `web::scope("/api/auth")`: a scope answers every path
/// under its prefix (404 if nothing inside matches), which would hide the
/// other `/api/auth/…` routes registered by `own_sessions` and `password_routes`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/auth/login", web::post().to(login))
        .route("/api/auth/logout", web::post().to(logout))
        .route("/api/auth/me", web::get().to(me));
}

#[derive(Deserialize, ToSchema)]
pub struct LoginBody {
    /// Matched regardless of case.
    username: String,
    password: String,
}

/// `{"user":USER}`: who signed in.
#[derive(Serialize, ToSchema)]
pub struct UserEnvelope {
    pub user: UserJson,
}

/// Sign in.
///
/// Issues a new session (the previous session of this browser, if any, is
/// deleted) and records the client IP and user agent with it. Unknown user,
/// wrong password and disabled user answer alike, in the same time.
#[utoipa::path(
    post, path = "/api/auth/login", tag = "auth",
    request_body = LoginBody,
    responses(
        (status = 200, description = "Signed in; `Set-Cookie` carries the new session cookie.",
            body = UserEnvelope,
            headers(("Set-Cookie" = String, description = "The session cookie (README \"Session cookie\")."))),
        (status = 400, response = error_docs::BadRequest),
        (status = 401, description = "`invalid_credentials`: wrong password (also one over 1024 bytes), unknown or disabled user.",
            body = ErrorBody, example = json!({"error":{"code":"invalid_credentials","message":"Invalid username or password"}})),
        (status = 403, response = error_docs::CrossSite),
        (status = 429, response = error_docs::RateLimited),
        (status = 503, response = error_docs::Unavailable),
    ),
)]
async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<LoginBody>,
) -> Result<HttpResponse, ApiError> {
    let LoginBody { username, password } = body.into_inner();
    if username.is_empty() || password.is_empty() {
        return Err(ApiError::BadRequest(
            "username and password are required".into(),
        ));
    }
    let ip = client_ip(&req, &state.config.trusted_proxies);
    let user_id = authenticate(&state, ip, &username, password)
        .await
        .inspect_err(|e| audit_refused(&req, &state, &username, e))?;
    let access = start_session(&req, &state, user_id, SignInMethod::Password)
        .await?
        .ok_or(ApiError::InvalidCredentials)?;
    Ok(HttpResponse::Ok().json(UserEnvelope {
        user: access.to_json(),
    }))
}

/// Records a refused sign-in: the name as typed (cut to 256 characters),
/// never the password. A store that failed is not a refusal.
fn audit_refused(req: &HttpRequest, state: &AppState, username: &str, e: &ApiError) {
    let action = match e {
        ApiError::InvalidCredentials => Action::LoginFailure,
        ApiError::RateLimited(_) => Action::LoginThrottled,
        _ => return,
    };
    let typed: String = username.chars().take(256).collect();
    state.audit.record(
        audit_event(req, action, Actor::Anonymous)
            .target_named(&typed)
            .detail("username", typed),
    );
}

/// Checks a username and password, within the sign-in throttle. Unknown
/// user, wrong password and disabled user are indistinguishable, in the
/// answer and in the time it takes.
async fn authenticate(
    state: &AppState,
    ip: Option<std::net::IpAddr>,
    username: &str,
    password: String,
) -> Result<Uuid, ApiError> {
    let name = Username::parse(username).ok();
    let checked = state.throttle.check(name.as_ref(), ip, async {
        Ok(
            match check_password(state, name.as_ref(), password).await? {
                Some(user_id) => Checked::Right(user_id),
                None => Checked::Wrong,
            },
        )
    });
    match checked.await? {
        Checked::Right(user_id) => Ok(user_id),
        Checked::Wrong => {
            log::info!("event=login_failed");
            Err(ApiError::InvalidCredentials)
        }
    }
}

/// The user's id if `password` is theirs and they may sign in.
async fn check_password(
    state: &AppState,
    name: Option<&Username>,
    password: String,
) -> Result<Option<Uuid>, ApiError> {
    // Emptiness was refused earlier; anything else unusable (too long) is
    // simply a wrong password.
    let Ok(password) = Password::parse(password) else {
        return Ok(None);
    };
    let credentials = match name {
        Some(name) => state.db.find_credentials(name).await?,
        None => None,
    };
    // A user created through a provider has no password (an empty hash): it
    // is checked against the dummy hash like an unknown user, so the answer
    // and its timing do not say why it failed.
    let (user_id, hash, disabled) = match credentials {
        Some(c) if c.password_hash.is_empty() => (None, None, c.disabled),
        Some(c) => (Some(c.user_id), Some(c.password_hash), c.disabled),
        None => (None, None, false),
    };
    let valid = state.hasher.verify(password, hash).await?;
    Ok(user_id.filter(|_| valid && !disabled))
}

/// Sign out.
///
/// Deletes the session on the server and clears the cookie; its sockets are
/// closed before the answer. Idempotent: 204 without a session too.
#[utoipa::path(
    post, path = "/api/auth/logout", tag = "auth",
    responses(
        (status = 204, description = "Signed out (or was not signed in)."),
        (status = 403, response = error_docs::CrossSite),
        (status = 503, response = error_docs::Unavailable),
    ),
)]
async fn logout(
    req: HttpRequest,
    identity: Option<Identity>,
    state: web::Data<AppState>,
) -> HttpResponse {
    if let Some(identity) = identity {
        if let Some(session) = CurrentSession::from_request(&req) {
            log::info!("event=logout sid={}", session.sid);
            state.audit.record(audit_logout(&req, &session));
        }
        // Purges the session: the store deletes it and the bus closes its sockets
        // before this response is sent.
        identity.logout();
    }
    HttpResponse::NoContent().finish()
}

/// A user signing out of `session` (this device).
pub(super) fn audit_logout(
    req: &HttpRequest,
    session: &CurrentSession,
) -> crate::audit::AuditEvent {
    audit_event(
        req,
        Action::Logout,
        Actor::user(session.user_id, &session.sid),
    )
    .target_user(session.user_id)
    .target_session(&session.sid)
}

/// Who am I: the user (current roles and permissions) and this session.
#[utoipa::path(
    get, path = "/api/auth/me", tag = "auth",
    security(("session_cookie" = [])),
    responses(
        (status = 200, description = "The signed-in user and session.", body = Me),
        (status = 401, response = error_docs::Unauthenticated),
        (status = 503, response = error_docs::Unavailable),
    ),
)]
async fn me(user: CurrentUser) -> HttpResponse {
    HttpResponse::Ok().json(Me {
        user: user.access.to_json(),
        session: SessionJson::from(&user.session),
    })
}
