//! The admin users API (`/api/admin/users…`, needs `admin:users`) and the
//! self-service password change (`PUT /api/auth/password`), over real HTTP,
//! with their effect on live sockets.

use reqwest::{header::COOKIE, Method, Response};
use serde_json::{json, Value};
use tether::domain::EndReason;
use tether::ws::handlers;
use tether::ws::protocol::{ErrorCode, ServerEvent};

use crate::helpers::{Browser, Socket, TestApp, ADMIN_PASSWORD};

crate::on_every_stack!(
    every_admin_users_route_is_401_signed_out_and_403_without_admin_users,
    list_shows_every_user_by_username_with_account_state,
    create_is_201_and_the_new_user_can_sign_in,
    create_refuses_bad_input_with_400_and_creates_nothing,
    create_with_a_taken_username_is_409,
    set_roles_reaches_the_users_open_socket_before_the_next_message,
    unknown_and_malformed_user_ids_are_404,
    disabling_closes_the_users_sockets_and_refuses_their_cookie_and_sign_in,
    enabling_lets_a_disabled_user_sign_in_again,
    an_admin_cannot_disable_their_own_account,
    admin_password_change_ends_every_session_of_that_user,
    admin_changing_their_own_password_keeps_their_current_session,
    self_service_password_change_ends_the_other_sessions_and_keeps_this_one,
    self_service_with_a_wrong_current_password_is_400_and_changes_nothing,
);

/// Sends `method path` with an optional JSON body, as `who` (or signed out).
async fn call(
    app: &TestApp,
    who: Option<&Browser>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Response {
    let http = reqwest::Client::new();
    let mut req = http.request(method, app.url(path));
    if let Some(browser) = who {
        req = req.header(COOKIE, &browser.cookie);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.expect("request")
}

/// Status and error code of an error response.
async fn error_of(res: Response) -> (u16, String) {
    let status = res.status().as_u16();
    let body: Value = res.json().await.expect("error bodies are JSON");
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (status, code)
}

async fn login_status(app: &TestApp, username: &str, password: &str) -> (u16, String) {
    let body = json!({"username": username, "password": password});
    let res = call(app, None, Method::POST, "/api/auth/login", Some(body)).await;
    if res.status() == 200 {
        return (200, String::new());
    }
    error_of(res).await
}

async fn user_id(app: &TestApp, browser: &Browser) -> String {
    browser.me(app).await["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn expect_revoked(socket: &mut Socket, reason: EndReason) {
    let (code, events) = socket.closed().await;
    assert_eq!(code, Some(4001));
    assert!(
        matches!(events.last(), Some(ServerEvent::SessionRevoked { reason: r }) if *r == reason),
        "expected session.revoked {reason:?}: {events:?}"
    );
}

/// The five admin routes, with a body each would accept.
fn admin_routes(id: &str) -> Vec<(Method, String, Option<Value>)> {
    vec![
        (Method::GET, "/api/admin/users".into(), None),
        (
            Method::POST,
            "/api/admin/users".into(),
            Some(json!({"username": "zed", "password": "zed-password", "roles": []})),
        ),
        (
            Method::PUT,
            format!("/api/admin/users/{id}/roles"),
            Some(json!({"roles": ["admin"]})),
        ),
        (
            Method::PATCH,
            format!("/api/admin/users/{id}"),
            Some(json!({"disabled": true})),
        ),
        (
            Method::PUT,
            format!("/api/admin/users/{id}/password"),
            Some(json!({"password": "new-password"})),
        ),
    ]
}

async fn every_admin_users_route_is_401_signed_out_and_403_without_admin_users(app: TestApp) {
    // messages-admin holds a permission, just not admin:users.
    let user = app
        .login_new_user("ivan", &["user", "messages-admin"])
        .await;
    let id = user_id(&app, &user).await;
    for (method, path, body) in admin_routes(&id) {
        let anonymous = call(&app, None, method.clone(), &path, body.clone()).await;
        assert_eq!(
            error_of(anonymous).await,
            (401, "unauthenticated".into()),
            "{method} {path}"
        );
        let res = call(&app, Some(&user), method.clone(), &path, body).await;
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap();
        assert_eq!(status, 403, "{method} {path}");
        assert_eq!(
            body["error"],
            json!({"code": "forbidden", "message": "Permission denied"})
        );
    }
    // Nothing was done on ivan's behalf.
    assert_eq!(login_status(&app, "ivan", "ivan-password").await.0, 200);
    assert_eq!(login_status(&app, "zed", "zed-password").await.0, 401);
    let body = json!({"current_password": "x", "new_password": "new-password"});
    let anonymous = call(&app, None, Method::PUT, "/api/auth/password", Some(body)).await;
    assert_eq!(error_of(anonymous).await, (401, "unauthenticated".into()));
}

async fn list_shows_every_user_by_username_with_account_state(app: TestApp) {
    let admin = app.login_admin().await;
    app.create_user("zoe", &["user"]).await;
    app.create_user("bea", &["user", "messages-admin"]).await;
    let res = admin.get(&app.url("/api/admin/users")).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let users = body["users"].as_array().unwrap();
    let names: Vec<&str> = users
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "bea", "zoe"]);
    let bea = &users[1];
    assert_eq!(bea["roles"], json!(["messages-admin", "user"]));
    assert_eq!(
        bea["permissions"],
        json!(["read:admin-messages", "chat:read", "chat:write"])
    );
    assert_eq!(bea["disabled"], false);
    for field in ["created_at", "updated_at"] {
        let at = bea[field].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(at).is_ok(), "{at}");
    }
    assert!(uuid::Uuid::parse_str(bea["id"].as_str().unwrap()).is_ok());
}

async fn create_is_201_and_the_new_user_can_sign_in(app: TestApp) {
    let admin = app.login_admin().await;
    let body = json!({"username": "judy", "password": "judy-secret", "roles": ["user"]});
    let res = call(
        &app,
        Some(&admin),
        Method::POST,
        "/api/admin/users",
        Some(body),
    )
    .await;
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    let user = &created["user"];
    assert_eq!(user["username"], "judy");
    assert_eq!(user["roles"], json!(["user"]));
    assert_eq!(user["permissions"], json!(["chat:read", "chat:write"]));
    assert_eq!(user["disabled"], false);

    let judy = app.login("judy", "judy-secret").await;
    assert_eq!(judy.me(&app).await["user"]["id"], user["id"]);
}

async fn create_refuses_bad_input_with_400_and_creates_nothing(app: TestApp) {
    let admin = app.login_admin().await;
    let cases = [
        (
            json!({"username": "bad name", "password": "long-enough", "roles": []}),
            "username may contain only",
        ),
        (
            json!({"username": "", "password": "long-enough", "roles": []}),
            "username must not be empty",
        ),
        (
            json!({"username": "ok", "password": "short", "roles": []}),
            "at least 8 characters",
        ),
        (
            json!({"username": "ok", "password": "long-enough", "roles": ["wizard"]}),
            "wizard",
        ),
        (
            json!({"username": "ok", "password": "long-enough", "roles": ["Bad Role"]}),
            "invalid role name",
        ),
        (
            json!({"username": "ok", "password": "long-enough"}),
            "roles",
        ),
        (json!({"username": "ok", "roles": []}), "password"),
        (json!(["ok"]), "Invalid request body"),
    ];
    for (body, message) in cases {
        let res = call(
            &app,
            Some(&admin),
            Method::POST,
            "/api/admin/users",
            Some(body.clone()),
        )
        .await;
        assert_eq!(res.status(), 400, "{body}");
        let error: Value = res.json().await.unwrap();
        assert_eq!(error["error"]["code"], "bad_request", "{body}");
        let text = error["error"]["message"].as_str().unwrap();
        assert!(text.contains(message), "{body}: {text}");
    }
    let not_json = admin
        .http
        .post(app.url("/api/admin/users"))
        .header(COOKIE, &admin.cookie)
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(not_json).await, (400, "bad_request".into()));

    let list: Value = admin
        .get(&app.url("/api/admin/users"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["users"].as_array().unwrap().len(), 1, "only admin");
}

async fn create_with_a_taken_username_is_409(app: TestApp) {
    let admin = app.login_admin().await;
    app.create_user("kim", &["user"]).await;
    let body = json!({"username": "kim", "password": "another-password", "roles": []});
    let res = call(
        &app,
        Some(&admin),
        Method::POST,
        "/api/admin/users",
        Some(body),
    )
    .await;
    assert_eq!(error_of(res).await, (409, "conflict".into()));
    // The first kim keeps her password.
    assert_eq!(login_status(&app, "kim", "kim-password").await.0, 200);
}

async fn set_roles_reaches_the_users_open_socket_before_the_next_message(app: TestApp) {
    let admin = app.login_admin().await;
    let leo = app.login_new_user("leo", &["user"]).await;
    let id = user_id(&app, &leo).await;
    let mut socket = leo.socket(&app).await;
    assert!(!socket.ask::<handlers::messages::Admin>(json!({})).await.ok);

    let path = format!("/api/admin/users/{id}/roles");
    let body = json!({"roles": ["user", "messages-admin"]});
    let res = call(&app, Some(&admin), Method::PUT, &path, Some(body)).await;
    assert_eq!(res.status(), 200);
    let updated: Value = res.json().await.unwrap();
    assert_eq!(updated["user"]["roles"], json!(["messages-admin", "user"]));

    let (reply, events) = socket
        .request_with_events("messages.admin", json!({}))
        .await;
    assert!(reply.ok, "allowed on the next message: {reply:?}");
    assert!(
        events.iter().any(|e| matches!(e,
            ServerEvent::PermissionsChanged { permissions }
                if permissions.contains(&"read:admin-messages".to_owned()))),
        "the socket is told its new permissions: {events:?}"
    );

    // Taking it away works the same way; an unknown role changes nothing.
    let body = json!({"roles": ["user"]});
    let res = call(&app, Some(&admin), Method::PUT, &path, Some(body)).await;
    assert_eq!(res.status(), 200);
    let reply = socket.ask::<handlers::messages::Admin>(json!({})).await;
    assert_eq!(reply.error.unwrap().code, ErrorCode::Forbidden);
    let body = json!({"roles": ["user", "wizard"]});
    let res = call(&app, Some(&admin), Method::PUT, &path, Some(body)).await;
    assert_eq!(error_of(res).await, (400, "bad_request".into()));
    assert_eq!(leo.me(&app).await["user"]["roles"], json!(["user"]));
}

async fn unknown_and_malformed_user_ids_are_404(app: TestApp) {
    let admin = app.login_admin().await;
    for id in [uuid::Uuid::new_v4().to_string(), "not-a-uuid".to_owned()] {
        for (method, path, body) in admin_routes(&id).into_iter().skip(2) {
            let res = call(&app, Some(&admin), method.clone(), &path, body).await;
            assert_eq!(
                error_of(res).await,
                (404, "not_found".into()),
                "{method} {path}"
            );
        }
    }
}

async fn disable(app: &TestApp, admin: &Browser, id: &str, disabled: bool) -> Value {
    let path = format!("/api/admin/users/{id}");
    let body = json!({"disabled": disabled});
    let res = call(app, Some(admin), Method::PATCH, &path, Some(body)).await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn disabling_closes_the_users_sockets_and_refuses_their_cookie_and_sign_in(app: TestApp) {
    let admin = app.login_admin().await;
    let mia = app.login_new_user("mia", &["user"]).await;
    let mia_phone = app.login("mia", "mia-password").await;
    let id = user_id(&app, &mia).await;
    let mut laptop = mia.socket(&app).await;
    let mut phone = mia_phone.socket(&app).await;
    let mut admins = admin.socket(&app).await;

    let body = disable(&app, &admin, &id, true).await;
    assert_eq!(body["user"]["disabled"], true);
    for socket in [&mut laptop, &mut phone] {
        expect_revoked(socket, EndReason::Disabled).await;
    }
    for browser in [&mia, &mia_phone] {
        let res = browser.get(&app.url("/api/auth/me")).await;
        assert_eq!(error_of(res).await, (401, "unauthenticated".into()));
    }
    assert_eq!(
        login_status(&app, "mia", "mia-password").await,
        (401, "invalid_credentials".into())
    );
    assert!(
        admins.ask::<handlers::ping::Ping>(json!({})).await.ok,
        "others stay up"
    );
    // Only `disabled` is patchable.
    let path = format!("/api/admin/users/{id}");
    let body = json!({"disabled": false, "roles": ["admin"]});
    let res = call(&app, Some(&admin), Method::PATCH, &path, Some(body)).await;
    assert_eq!(error_of(res).await, (400, "bad_request".into()));
}

async fn enabling_lets_a_disabled_user_sign_in_again(app: TestApp) {
    let admin = app.login_admin().await;
    app.create_user("ned", &["user"]).await;
    let ned = app.login("ned", "ned-password").await;
    let id = user_id(&app, &ned).await;
    disable(&app, &admin, &id, true).await;
    assert_eq!(login_status(&app, "ned", "ned-password").await.0, 401);

    let body = disable(&app, &admin, &id, false).await;
    assert_eq!(body["user"]["disabled"], false);
    let ned = app.login("ned", "ned-password").await;
    assert!(
        ned.socket(&app)
            .await
            .ask::<handlers::ping::Ping>(json!({}))
            .await
            .ok
    );
}

async fn an_admin_cannot_disable_their_own_account(app: TestApp) {
    let admin = app.login_admin().await;
    let id = user_id(&app, &admin).await;
    let path = format!("/api/admin/users/{id}");
    let res = call(
        &app,
        Some(&admin),
        Method::PATCH,
        &path,
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["error"]["message"],
        "you cannot disable your own account"
    );
    assert_eq!(admin.me(&app).await["user"]["username"], "admin");
}

async fn set_password_as_admin(app: &TestApp, admin: &Browser, id: &str, body: Value) {
    let path = format!("/api/admin/users/{id}/password");
    let res = call(app, Some(admin), Method::PUT, &path, Some(body)).await;
    assert_eq!(res.status(), 204);
}

async fn admin_password_change_ends_every_session_of_that_user(app: TestApp) {
    let admin = app.login_admin().await;
    let olga = app.login_new_user("olga", &["user"]).await;
    let olga_phone = app.login("olga", "olga-password").await;
    let id = user_id(&app, &olga).await;
    let mut laptop = olga.socket(&app).await;
    let mut phone = olga_phone.socket(&app).await;

    let path = format!("/api/admin/users/{id}/password");
    let short = call(
        &app,
        Some(&admin),
        Method::PUT,
        &path,
        Some(json!({"password": "short"})),
    )
    .await;
    assert_eq!(error_of(short).await, (400, "bad_request".into()));
    assert!(
        laptop.ask::<handlers::ping::Ping>(json!({})).await.ok,
        "nothing changed"
    );

    let body = json!({"password": "olga-new-password"});
    set_password_as_admin(&app, &admin, &id, body).await;
    for socket in [&mut laptop, &mut phone] {
        expect_revoked(socket, EndReason::PasswordChanged).await;
    }
    assert_eq!(olga.get(&app.url("/api/auth/me")).await.status(), 401);
    assert_eq!(
        login_status(&app, "olga", "olga-password").await,
        (401, "invalid_credentials".into())
    );
    assert_eq!(login_status(&app, "olga", "olga-new-password").await.0, 200);
    assert_eq!(admin.me(&app).await["user"]["username"], "admin");
}

async fn admin_changing_their_own_password_keeps_their_current_session(app: TestApp) {
    let admin = app.login_admin().await;
    let other_device = app.login_admin().await;
    let mut other_socket = other_device.socket(&app).await;
    let mut own_socket = admin.socket(&app).await;
    let id = user_id(&app, &admin).await;

    // Their own account: with the current password (admin_guard_rails.rs).
    let body = json!({"password": "admin-new-password", "current_password": ADMIN_PASSWORD});
    set_password_as_admin(&app, &admin, &id, body).await;
    expect_revoked(&mut other_socket, EndReason::PasswordChanged).await;
    assert!(own_socket.ask::<handlers::ping::Ping>(json!({})).await.ok);
    assert_eq!(admin.me(&app).await["user"]["username"], "admin");
    assert_eq!(login_status(&app, "admin", ADMIN_PASSWORD).await.0, 401);
    assert_eq!(
        login_status(&app, "admin", "admin-new-password").await.0,
        200
    );
}

async fn change_own_password(app: &TestApp, who: &Browser, current: &str, new: &str) -> Response {
    let body = json!({"current_password": current, "new_password": new});
    call(
        app,
        Some(who),
        Method::PUT,
        "/api/auth/password",
        Some(body),
    )
    .await
}

async fn self_service_password_change_ends_the_other_sessions_and_keeps_this_one(app: TestApp) {
    let here = app.login_new_user("pia", &["user"]).await;
    let elsewhere = app.login("pia", "pia-password").await;
    let mut here_socket = here.socket(&app).await;
    let mut elsewhere_socket = elsewhere.socket(&app).await;

    let res = change_own_password(&app, &here, "pia-password", "pia-new-password").await;
    assert_eq!(res.status(), 204);
    expect_revoked(&mut elsewhere_socket, EndReason::PasswordChanged).await;
    assert_eq!(elsewhere.get(&app.url("/api/auth/me")).await.status(), 401);
    assert_eq!(here.me(&app).await["user"]["username"], "pia");
    assert!(here_socket.ask::<handlers::ping::Ping>(json!({})).await.ok);
    assert_eq!(login_status(&app, "pia", "pia-password").await.0, 401);
    assert_eq!(login_status(&app, "pia", "pia-new-password").await.0, 200);
}

async fn self_service_with_a_wrong_current_password_is_400_and_changes_nothing(app: TestApp) {
    let here = app.login_new_user("quinn", &["user"]).await;
    let elsewhere = app.login("quinn", "quinn-password").await;
    let mut elsewhere_socket = elsewhere.socket(&app).await;

    let res = change_own_password(&app, &here, "wrong-password", "quinn-new-password").await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["error"],
        json!({"code": "bad_request", "message": "current password is incorrect"})
    );
    let res = change_own_password(&app, &here, "quinn-password", "short").await;
    assert_eq!(error_of(res).await, (400, "bad_request".into()));

    assert_eq!(here.me(&app).await["user"]["username"], "quinn");
    assert!(
        elsewhere_socket
            .ask::<handlers::ping::Ping>(json!({}))
            .await
            .ok
    );
    assert_eq!(login_status(&app, "quinn", "quinn-password").await.0, 200);
}
