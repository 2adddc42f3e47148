//! `PUT /api/auth/password`: a signed-in user changes their own password
//! (`change_own`, which the admin route uses for an admin's own account too).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{extractors::audit_event, throttle::Checked, CurrentUser};
use crate::{
    audit::Action,
    domain::{Password, Username},
    error::{ApiError, ErrorBody},
    error_docs,
    sessions::client::client_ip,
    state::AppState,
    users,
};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/auth/password").route(web::put().to(change_password)));
}

#[derive(Deserialize, ToSchema)]
pub struct ChangePasswordBody {
    current_password: String,
    new_password: String,
}

/// Change my password.
///
/// Every *other* session of the user ends (their sockets get
/// `session.revoked` `password_changed`, then close with 4001); this session
/// stays signed in. A wrong current password counts in the sign-in throttle.
#[utoipa::path(
    put, path = "/api/auth/password", tag = "auth", operation_id = "change_own_password",
    security(("session_cookie" = [])),
    request_body = ChangePasswordBody,
    responses(
        (status = 204, description = "Changed."),
        (status = 400, description = "`bad_request`: `current password is incorrect`, a new password under 8 characters, or a bad body.",
            body = ErrorBody, example = json!({"error":{"code":"bad_request","message":"current password is incorrect"}})),
        (status = 401, response = error_docs::Unauthenticated),
        (status = 403, response = error_docs::CrossSite),
        (status = 429, response = error_docs::RateLimited),
        (status = 503, response = error_docs::Unavailable),
    ),
)]
async fn change_password(
    req: HttpRequest,
    user: CurrentUser,
    state: web::Data<AppState>,
    body: web::Json<ChangePasswordBody>,
) -> Result<HttpResponse, ApiError> {
    let ChangePasswordBody {
        current_password,
        new_password,
    } = body.into_inner();
    let new =
        Password::parse_new(new_password).map_err(|e| ApiError::BadRequest(format!("new {e}")))?;
    change_own(&req, &state, &user, current_password, new).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The signed-in `user` changes their own password, proving it with the
/// current one: here and on the admin route for one's own account. A wrong
/// current password is 400, not 401: the caller is still signed in. It counts
/// as a failed password check for this user from this address, so a stolen
/// session cannot guess the password (429 after the sign-in limit).
pub async fn change_own(
    req: &HttpRequest,
    state: &AppState,
    user: &CurrentUser,
    current_password: String,
    new: Password,
) -> Result<(), ApiError> {
    // Empty or over-long cannot be the current password.
    let current = Password::parse(current_password)
        .map_err(|_| ApiError::from(users::UserError::WrongPassword))?;
    let ip = client_ip(req, &state.config.trusted_proxies);
    let name = Username::parse(&user.access.username).ok();
    let (db, sessions, hasher) = (&state.db, &state.sessions, &state.hasher);
    let changed = state.throttle.check(name.as_ref(), ip, async {
        match users::change_own_password(db, sessions, hasher, &user.session, current, new).await {
            Ok(()) => Ok(Checked::Right(())),
            Err(users::UserError::WrongPassword) => Ok(Checked::Wrong),
            Err(e) => Err(e.into()),
        }
    });
    match changed.await? {
        Checked::Right(()) => {
            let event = audit_event(req, Action::PasswordChanged, user.actor())
                .target_user(user.access.id)
                .detail("by", "self");
            state.audit.record(event);
            Ok(())
        }
        Checked::Wrong => Err(users::UserError::WrongPassword.into()),
    }
}
