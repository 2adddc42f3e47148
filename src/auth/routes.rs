//! `POST /api/auth/login`, `POST /api/auth/logout`, `GET /api/auth/me`.

use actix_identity::Identity;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use uuid::Uuid;

use super::{
    sign_in::{start_session, SignInMethod},
    throttle::Checked,
    CurrentSession, CurrentUser,
};
use crate::{
    domain::{Password, Username},
    error::ApiError,
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

#[derive(Deserialize)]
struct LoginBody {
    username: String,
    password: String,
}

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
    let user_id = authenticate(&state, ip, &username, password).await?;
    let access = start_session(&req, &state, user_id, SignInMethod::Password)
        .await?
        .ok_or(ApiError::InvalidCredentials)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "user": access.to_json() })))
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

async fn logout(req: HttpRequest, identity: Option<Identity>) -> HttpResponse {
    if let Some(identity) = identity {
        if let Some(session) = CurrentSession::from_request(&req) {
            log::info!("event=logout sid={}", session.sid);
        }
        // Purges the session: the store deletes it and the bus closes its sockets
        // before this response is sent.
        identity.logout();
    }
    HttpResponse::NoContent().finish()
}

async fn me(user: CurrentUser) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "user": user.access.to_json(),
        "session": SessionJson::from(&user.session),
    }))
}
