//! The OpenAPI 3.1 document of every REST route, from the handlers'
//! `#[utoipa::path]` annotations. The permission a route needs is written
//! once, as the scope of its `session_cookie` security requirement
//! (`security(("session_cookie" = ["admin:users"]))`); [`document`] repeats
//! it as `x-tether-permission` and in the description.

use serde_json::{json, Value};
use utoipa::{
    openapi::security::{ApiKey, ApiKeyValue, SecurityScheme},
    OpenApi,
};

use crate::{
    admin, auth, config::Config, demo_messages, error::ErrorBody, error_docs, health, oidc, ws,
};

/// Every documented route. A new route's handler goes in `paths(…)`.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "tether",
        description = "Sign-in sessions and a WebSocket that is exactly as trustworthy as the login session. \
Requests and responses are JSON (bodies up to 64 KiB). Every error is `{\"error\":{\"code\",\"message\"}}`; \
a 500 (`internal`) says nothing of its cause. Every unsafe request (POST, PUT, PATCH, DELETE) from an origin \
that is neither the public URL nor in `TETHER_ALLOWED_ORIGINS` gets 403 `forbidden` (`Origin not allowed`). \
A wrong method is 404 on single-method paths and 405 `method_not_allowed` on multi-method ones. \
The WebSocket protocol at `/ws` is described by the AsyncAPI document at `/api/asyncapi.json`.",
    ),
    paths(
        health::healthz,
        health::readyz,
        auth::routes::login,
        auth::routes::logout,
        auth::routes::me,
        auth::password_routes::change_password,
        auth::own_sessions::list_mine,
        auth::own_sessions::end_one,
        auth::own_sessions::end_all_others,
        oidc::routes::providers,
        oidc::routes::start,
        oidc::routes::callback,
        oidc::routes::backchannel_logout,
        admin::sessions::list,
        admin::sessions::end_one,
        admin::sessions::end_users,
        admin::stats::stats,
        admin::audit::list,
        admin::users::list,
        admin::users::create,
        admin::users::set_disabled,
        admin::users::set_roles,
        admin::users::set_password,
        demo_messages::public,
        demo_messages::protected,
        demo_messages::admin,
        ws::route::upgrade,
        super::openapi_json,
        super::asyncapi_json,
    ),
    components(schemas(ErrorBody)),
    tags(
        (name = "auth", description = "Sign in, sign out, who am I, my password."),
        (name = "sessions", description = "A signed-in user's own sessions."),
        (name = "admin", description = "Users and sessions; each route needs the permission in `x-tether-permission`."),
        (name = "messages", description = "Demo messages with one access rule each."),
        (name = "websocket", description = "The upgrade to the socket; its protocol is `/api/asyncapi.json`."),
        (name = "health", description = "Liveness and readiness."),
        (name = "contract", description = "These documents."),
    ),
)]
pub struct RestApi;

/// The security scheme every signed-in route names.
pub const SESSION_COOKIE: &str = "session_cookie";

/// The document as served: the cookie scheme under this configuration's
/// cookie name, the shared error responses, and each route's permission.
pub fn document(config: &Config) -> Value {
    let mut doc = RestApi::openapi();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        SESSION_COOKIE,
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            config.cookie_name(),
            "The session cookie set by `POST /api/auth/login` (HttpOnly, SameSite=Lax; \
             `__Host-tether_session` with Secure behind an https public URL, else `tether_session`). \
             A scope on a requirement is the permission the route needs beyond being signed in.",
        ))),
    );
    components.responses.extend(error_docs::all());
    let mut doc = serde_json::to_value(doc).unwrap_or_else(|_| json!({}));
    mark_permissions(&mut doc);
    add_internal_error(&mut doc);
    doc
}

/// Any route can answer 500 `internal`; said once here rather than on
/// every annotation.
fn add_internal_error(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for item in paths.values_mut().filter_map(Value::as_object_mut) {
        for operation in item.values_mut().filter_map(Value::as_object_mut) {
            if let Some(responses) = operation
                .get_mut("responses")
                .and_then(Value::as_object_mut)
            {
                responses
                    .entry("500")
                    .or_insert_with(|| json!({ "$ref": "#/components/responses/Internal" }));
            }
        }
    }
}

/// The permission each operation needs, from its `session_cookie` scope:
/// `x-tether-permission` (absent where any signed-in user may call it), and
/// a line in its description.
fn mark_permissions(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for item in paths.values_mut().filter_map(Value::as_object_mut) {
        for operation in item.values_mut().filter_map(Value::as_object_mut) {
            let Some(scopes) = session_scopes(operation.get("security")) else {
                continue;
            };
            let needs = match scopes.as_slice() {
                [] => "Needs a signed-in user (the session cookie).".to_owned(),
                perms => format!("Needs a signed-in user holding `{}`.", perms.join("`, `")),
            };
            let description = match operation.get("description").and_then(Value::as_str) {
                Some(text) => format!("{text}\n\n{needs}"),
                None => needs,
            };
            operation.insert("description".into(), json!(description));
            if let Some(permission) = scopes.first() {
                operation.insert("x-tether-permission".into(), json!(permission));
            }
        }
    }
}

/// The scopes of the `session_cookie` requirement, if the operation has one.
fn session_scopes(security: Option<&Value>) -> Option<Vec<String>> {
    security?.as_array()?.iter().find_map(|requirement| {
        let scopes = requirement.get(SESSION_COOKIE)?.as_array()?;
        Some(
            scopes
                .iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect(),
        )
    })
}
