//! `PUT /api/auth/password`: a signed-in user changes their own password.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::CurrentUser;
use crate::{domain::Password, error::ApiError, state::AppState, users};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/auth/password").route(web::put().to(change_password)));
}

#[derive(Deserialize)]
struct ChangePasswordBody {
    current_password: String,
    new_password: String,
}

/// 204; every other session of the user ends (`password_changed`), this one
/// stays signed in. A wrong current password is 400, not 401: the caller is
/// still signed in.
async fn change_password(
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
    // Empty or over-long cannot be the current password.
    let current = Password::parse(current_password)
        .map_err(|_| ApiError::from(users::UserError::WrongPassword))?;
    let (db, sessions, hasher) = (&state.db, &state.sessions, &state.hasher);
    users::change_own_password(db, sessions, hasher, &user.session, current, new).await?;
    Ok(HttpResponse::NoContent().finish())
}
