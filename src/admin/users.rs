//! `/api/admin/users…` (needs `admin:users`): list, create, set roles,
//! enable/disable and set a user's password, over the service functions in
//! `crate::users` that the CLI uses too.
//!
//! Plain resources, not a `web::scope("/api/admin/users")`: a scope answers
//! every path under its prefix (404 when nothing inside matches), which would
//! hide `/api/admin/users/{id}/sessions` registered by `admin::sessions`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::UserIdPath;
use crate::{
    audit::{Action, AuditEvent},
    auth::{
        extractors::{audit_event, perm},
        password_routes, Authorized,
    },
    db::UserRecord,
    domain::{ParseError, Password, PermissionSet, RoleName, Username},
    error::{ApiError, ErrorBody},
    error_docs,
    state::AppState,
    time::rfc3339,
    users,
};

type Admin = Authorized<perm::AdminUsers>;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/admin/users")
            .route(web::get().to(list))
            .route(web::post().to(create)),
    )
    .service(web::resource("/api/admin/users/{id}").route(web::patch().to(set_disabled)))
    .service(web::resource("/api/admin/users/{id}/roles").route(web::put().to(set_roles)))
    .service(web::resource("/api/admin/users/{id}/password").route(web::put().to(set_password)));
}

/// A user as the admin API shows it: the public `USER` plus account state.
#[derive(Serialize, ToSchema)]
#[schema(as = AdminUser)]
pub struct AdminUserView {
    id: Uuid,
    username: String,
    roles: Vec<String>,
    /// Sorted by name.
    #[schema(value_type = Vec<String>)]
    permissions: PermissionSet,
    disabled: bool,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
}

/// `{"user":ADMIN_USER}`.
#[derive(Serialize, ToSchema)]
pub struct AdminUserEnvelope {
    pub user: AdminUserView,
}

/// `{"users":[ADMIN_USER,…]}`.
#[derive(Serialize, ToSchema)]
pub struct AdminUsers {
    /// Ordered by username, ignoring case.
    pub users: Vec<AdminUserView>,
}

impl From<UserRecord> for AdminUserView {
    fn from(u: UserRecord) -> Self {
        Self {
            id: u.id,
            username: u.username,
            roles: u.roles,
            permissions: u.permissions,
            disabled: u.disabled,
            created_at: rfc3339(u.created_at.timestamp_millis()),
            updated_at: rfc3339(u.updated_at.timestamp_millis()),
        }
    }
}

fn user_json(user: UserRecord) -> AdminUserEnvelope {
    AdminUserEnvelope { user: user.into() }
}

fn bad_request(e: ParseError) -> ApiError {
    ApiError::BadRequest(e.0)
}

fn parse_roles(raw: &[String]) -> Result<Vec<RoleName>, ApiError> {
    raw.iter()
        .map(|r| RoleName::parse(r).map_err(bad_request))
        .collect()
}

/// List users, ordered by username (ignoring case).
#[utoipa::path(
    get, path = "/api/admin/users", tag = "admin", operation_id = "list_users",
    security(("session_cookie" = ["admin:users"])),
    responses(
        (status = 200, description = "Every user.", body = AdminUsers),
        (status = 401, response = error_docs::Unauthenticated),
        (status = 403, response = error_docs::Forbidden),
        (status = 503, response = error_docs::Unavailable),
    ),
)]
async fn list(_admin: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let users: Vec<AdminUserView> = state
        .db
        .list_users()
        .await?
        .into_iter()
        .map(AdminUserView::from)
        .collect();
    Ok(HttpResponse::Ok().json(AdminUsers { users }))
}

#[derive(Deserialize, ToSchema)]
pub struct CreateBody {
    username: String,
    password: String,
    roles: Vec<String>,
}

/// An audit event of `action` by `admin` about user `target`.
fn audited(req: &HttpRequest, admin: &Admin, action: Action, target: Uuid) -> AuditEvent {
    audit_event(req, action, admin.user.actor()).target_user(target)
}

/// Create a user.
#[utoipa::path(
    post, path = "/api/admin/users", tag = "admin", operation_id = "create_user",
    security(("session_cookie" = ["admin:users"])),
    request_body = CreateBody,
    responses(
        (status = 201, description = "Created.", body = AdminUserEnvelope),
        (status = 400, description = "`bad_request`: an invalid username, a password under 8 characters, an unknown or invalid role, or a bad body.", body = ErrorBody),
        (status = 401, response = error_docs::Unauthenticated),
        (status = 403, response = error_docs::Forbidden),
        (status = 409, description = "`conflict`: `Username already taken` (in any case).", body = ErrorBody,
            example = json!({"error":{"code":"conflict","message":"Username already taken"}})),
        (status = 503, response = error_docs::Unavailable),
    ),
)]
async fn create(
    req: HttpRequest,
    admin: Admin,
    state: web::Data<AppState>,
    body: web::Json<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let CreateBody {
        username,
        password,
        roles,
    } = body.into_inner();
    let username = Username::parse(&username).map_err(bad_request)?;
    let password = Password::parse_new(password).map_err(bad_request)?;
    let roles = parse_roles(&roles)?;
    let user = users::create_user(&state.db, &state.hasher, &username, password, &roles).await?;
    let event = audited(&req, &admin, Action::UserCreated, user.id)
        .detail("username", &user.username)
        .detail("roles", &user.roles);
    state.audit.record(event);
    Ok(HttpResponse::Created().json(user_json(user)))
}

#[derive(Deserialize, ToSchema)]
pub struct RolesBody {
    roles: Vec<String>,
}

/// Replace a user's roles.
///
/// Returns once every instance uses them. Open sockets of the user get
/// `permissions.changed`, and their next message is checked against the new
/// set.
#[utoipa::path(
    put, path = "/api/admin/users/{id}/roles", tag = "admin", operation_id = "set_user_roles",
    security(("session_cookie" = ["admin:users"])),
    params(("id" = Uuid, Path, description = "The user's id.")),
    request_body = RolesBody,
    responses(
        (status = 200, description = "The user with the new roles.", body = AdminUserEnvelope),
        (status = 400, description = "`bad_request`: an unknown role, or a bad body.", body = ErrorBody),
        (status = 401, response = error_docs::Unauthenticated),
        (status = 403, response = error_docs::Forbidden),
        (status = 404, description = "`not_found`: no such user.", body = ErrorBody),
        (status = 409, response = error_docs::Conflict),
        (status = 503, response = error_docs::Unavailable),
    ),
)]
async fn set_roles(
    req: HttpRequest,
    admin: Admin,
    state: web::Data<AppState>,
    UserIdPath(id): UserIdPath,
    body: web::Json<RolesBody>,
) -> Result<HttpResponse, ApiError> {
    let roles = parse_roles(&body.roles)?;
    let before = state.db.find_user(id).await?.ok_or(ApiError::NotFound)?;
    let user = users::set_roles_by_id(&state.db, &state.sessions, id, &roles).await?;
    let event = audited(&req, &admin, Action::UserRolesChanged, id)
        .detail("before", before.roles)
        .detail("after", &user.roles);
    state.audit.record(event);
    Ok(HttpResponse::Ok().json(user_json(user)))
}

/// Only `disabled` can be patched; anything else is refused rather than ignored.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchBody {
    disabled: bool,
}

/// Disable or enable a user.
///
/// Disabling ends every session of the user on every instance (sockets get
/// `session.revoked` `disabled`, then 4001) and sign-in fails with 401.
/// Enabling only clears the flag.
#[utoipa::path(
    patch, path = "/api/admin/users/{id}", tag = "admin", operation_id = "set_user_disabled",
    security(("session_cookie" = ["admin:users"])),
    params(("id" = Uuid, Path, description = "The user's id.")),
    request_body = PatchBody,
    responses(
        (status = 200, description = "The user.", body = AdminUserEnvelope),
        (status = 400, description = "`bad_request`: a bad body (any field but `disabled`), or disabling your own account.", body = ErrorBody),
        (status = 401, response = error_docs::Unauthenticated),
        (status = 403, response = error_docs::Forbidden),
        (status = 404, description = "`not_found`: no such user.", body = ErrorBody),
        (status = 409, response = error_docs::Conflict),
        (status = 503, response = error_docs::Unavailable),
    ),
)]
async fn set_disabled(
    req: HttpRequest,
    admin: Admin,
    state: web::Data<AppState>,
    UserIdPath(id): UserIdPath,
    body: web::Json<PatchBody>,
) -> Result<HttpResponse, ApiError> {
    // An admin locking themselves out could leave nobody able to undo it.
    if body.disabled && id == admin.user.access.id {
        return Err(ApiError::BadRequest(
            "you cannot disable your own account".into(),
        ));
    }
    let user = users::set_disabled(&state.db, &state.sessions, id, body.disabled).await?;
    let action = match body.disabled {
        true => Action::UserDisabled,
        false => Action::UserEnabled,
    };
    state.audit.record(audited(&req, &admin, action, id));
    Ok(HttpResponse::Ok().json(user_json(user)))
}

#[derive(Deserialize, ToSchema)]
pub struct PasswordBody {
    password: String,
    /// Required, and checked, when the account is the caller's own.
    current_password: Option<String>,
}

/// Set a user's password.
///
/// Every session of the user ends (`password_changed`). On the caller's
/// own account this is a self-service change: a stolen admin session must not
/// be able to lock the real admin out, so the current password is required
/// and checked within the sign-in throttle, and this session stays.
#[utoipa::path(
    put, path = "/api/admin/users/{id}/password", tag = "admin", operation_id = "set_user_password",
    security(("session_cookie" = ["admin:users"])),
    params(("id" = Uuid, Path, description = "The user's id.")),
    request_body = PasswordBody,
    responses(
        (status = 204, description = "Set; every session of the user ended (the caller's own stays when it is their account)."),
        (status = 400, description = "`bad_request`: under 8 characters; on your own account, `current_password is required to change your own password` or `current password is incorrect`.", body = ErrorBody),
        (status = 401, response = error_docs::Unauthenticated),
        (status = 403, response = error_docs::Forbidden),
        (status = 404, description = "`not_found`: no such user.", body = ErrorBody),
        (status = 429, response = error_docs::RateLimited),
        (status = 503, response = error_docs::Unavailable),
    ),
)]
async fn set_password(
    req: HttpRequest,
    admin: Admin,
    state: web::Data<AppState>,
    UserIdPath(id): UserIdPath,
    body: web::Json<PasswordBody>,
) -> Result<HttpResponse, ApiError> {
    let PasswordBody {
        password,
        current_password,
    } = body.into_inner();
    let password = Password::parse_new(password).map_err(bad_request)?;
    if id == admin.user.access.id {
        let current = current_password.ok_or_else(|| {
            ApiError::BadRequest("current_password is required to change your own password".into())
        })?;
        password_routes::change_own(&req, &state, &admin.user, current, password).await?;
        return Ok(HttpResponse::NoContent().finish());
    }
    let (db, sessions, hasher) = (&state.db, &state.sessions, &state.hasher);
    users::set_password(db, sessions, hasher, id, password, None).await?;
    let event = audited(&req, &admin, Action::PasswordChanged, id).detail("by", "admin");
    state.audit.record(event);
    Ok(HttpResponse::NoContent().finish())
}
