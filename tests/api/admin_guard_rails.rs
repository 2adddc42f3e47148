//! Admin guard rails: someone always holds `admin:users` (through the API and
//! the CLI, also when two admins demote each other at once), and an admin's
//! own password is changed only with the current one, within the throttle.

use reqwest::{header::COOKIE, Method, Response};
use serde_json::{json, Value};
use tether::ws::handlers;

use crate::helpers::{spawn_app_with, tether_cli, Browser, Stack, TestApp, ADMIN_PASSWORD};

crate::on_every_stack!(
    the_last_admin_cannot_demote_themselves,
    disabled_admins_do_not_count_as_administrators,
    the_cli_refuses_to_demote_or_disable_the_last_admin,
    two_admins_demoting_each_other_at_once_leave_one_of_them,
    an_admins_own_password_needs_the_current_one_on_the_admin_route,
);

const LAST_ADMIN: &str = "the last administrator cannot lose admin:users";

async fn send(app: &TestApp, who: &Browser, method: Method, path: &str, body: Value) -> Response {
    who.http
        .request(method, app.url(path))
        .header(COOKIE, &who.cookie)
        .json(&body)
        .send()
        .await
        .expect("request")
}

async fn set_roles(app: &TestApp, who: &Browser, name: &str, roles: &[&str]) -> Response {
    let id = app.user_id(name).await;
    let path = format!("/api/admin/users/{id}/roles");
    send(app, who, Method::PUT, &path, json!({ "roles": roles })).await
}

async fn set_disabled(app: &TestApp, who: &Browser, name: &str, disabled: bool) -> Response {
    let id = app.user_id(name).await;
    let path = format!("/api/admin/users/{id}");
    send(
        app,
        who,
        Method::PATCH,
        &path,
        json!({ "disabled": disabled }),
    )
    .await
}

async fn assert_last_admin_refusal(res: Response) {
    assert_eq!(res.status(), 409);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["error"],
        json!({"code": "conflict", "message": LAST_ADMIN})
    );
}

async fn the_last_admin_cannot_demote_themselves(app: TestApp) {
    let admin = app.login_admin().await;
    assert_last_admin_refusal(set_roles(&app, &admin, "admin", &["user"]).await).await;
    assert_last_admin_refusal(set_roles(&app, &admin, "admin", &[]).await).await;
    assert_eq!(admin.me(&app).await["user"]["roles"], json!(["admin"]));
    // With a second administrator, stepping down is fine; the second is
    // then the last, and cannot.
    let bea = app.login_new_user("bea", &["admin"]).await;
    assert_eq!(
        set_roles(&app, &admin, "admin", &["user"]).await.status(),
        200
    );
    assert_last_admin_refusal(set_roles(&app, &bea, "bea", &["user"]).await).await;
    assert_eq!(bea.me(&app).await["user"]["roles"], json!(["admin"]));
    // Roles that keep admin:users are no loss.
    let res = set_roles(&app, &bea, "bea", &["admin", "messages-admin"]).await;
    assert_eq!(res.status(), 200);
}

async fn disabled_admins_do_not_count_as_administrators(app: TestApp) {
    let admin = app.login_admin().await;
    app.create_user("bea", &["admin"]).await;
    assert_eq!(set_disabled(&app, &admin, "bea", true).await.status(), 200);
    assert_last_admin_refusal(set_roles(&app, &admin, "admin", &["user"]).await).await;
    // A disabled admin may lose the role: it changes nobody's rights.
    assert_eq!(
        set_roles(&app, &admin, "bea", &["user"]).await.status(),
        200
    );
    assert_eq!(
        set_roles(&app, &admin, "bea", &["admin"]).await.status(),
        200
    );
    assert_eq!(set_disabled(&app, &admin, "bea", false).await.status(), 200);
    assert_eq!(
        set_roles(&app, &admin, "admin", &["user"]).await.status(),
        200
    );
}

async fn the_cli_refuses_to_demote_or_disable_the_last_admin(app: TestApp) {
    let admin = app.login_admin().await;
    let mut socket = admin.socket(&app).await;
    for args in [
        &["users", "set-roles", "admin", "user"][..],
        &["users", "disable", "admin"][..],
    ] {
        let out = tether_cli(&app, args, "").await;
        assert_eq!(out.code, Some(1), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(LAST_ADMIN), "{args:?}: {}", out.stderr);
    }
    // Nothing changed: the admin is signed in, with their rights, and can
    // sign in again.
    let me = admin.me(&app).await;
    assert_eq!(me["user"]["roles"], json!(["admin"]));
    assert!(socket.ask::<handlers::ping::Ping>(json!({})).await.ok);
    assert!(app.try_login("admin", ADMIN_PASSWORD).await.is_ok());
    // With another administrator the same commands work.
    app.create_user("bea", &["admin"]).await;
    let out = tether_cli(&app, &["users", "disable", "admin"], "").await;
    assert!(out.ok, "{}", out.stderr);
    let out = tether_cli(&app, &["users", "set-roles", "bea", "user"], "").await;
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains(LAST_ADMIN), "{}", out.stderr);
}

/// Without one lock over "who is admin" both demotions could see the other
/// admin still in place, and both commit.
async fn two_admins_demoting_each_other_at_once_leave_one_of_them(app: TestApp) {
    let admin = app.login_admin().await;
    let bea = app.login_new_user("bea", &["admin"]).await;
    for round in 0..3 {
        let (a, b) = tokio::join!(
            set_roles(&app, &admin, "bea", &["user"]),
            set_roles(&app, &bea, "admin", &["user"]),
        );
        let statuses = [a.status().as_u16(), b.status().as_u16()];
        // The loser was refused as the last admin (409), or had already lost
        // admin:users when its request was authorized (403).
        assert!(
            statuses.contains(&200) && statuses.iter().any(|s| [403, 409].contains(s)),
            "round {round}: {statuses:?}"
        );
        let users: Value = app_users(&app).await;
        let admins: Vec<&Value> = users["users"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|u| u["roles"] == json!(["admin"]))
            .collect();
        assert_eq!(admins.len(), 1, "round {round}: {users}");
        // Back to two admins for the next round.
        let remaining = if statuses[0] == 200 { &admin } else { &bea };
        let demoted = if statuses[0] == 200 { "bea" } else { "admin" };
        let res = set_roles(&app, remaining, demoted, &["admin"]).await;
        assert_eq!(res.status(), 200);
    }
}

/// Every user, as the store has them (not through either admin's session).
async fn app_users(app: &TestApp) -> Value {
    let users = app.state.db.list_users().await.unwrap();
    json!({"users": users.iter().map(|u| json!({"username": u.username, "roles": u.roles})).collect::<Vec<_>>()})
}

async fn an_admins_own_password_needs_the_current_one_on_the_admin_route(app: TestApp) {
    let admin = app.login_admin().await;
    let other_device = app.login_admin().await;
    let id = app.user_id("admin").await;
    let path = format!("/api/admin/users/{id}/password");
    for (body, message) in [
        (
            json!({"password": "stolen-password"}),
            "current_password is required to change your own password",
        ),
        (
            json!({"password": "stolen-password", "current_password": "a-wrong-guess"}),
            "current password is incorrect",
        ),
    ] {
        let res = send(&app, &admin, Method::PUT, &path, body).await;
        assert_eq!(res.status(), 400);
        let error: Value = res.json().await.unwrap();
        assert_eq!(
            error["error"],
            json!({"code": "bad_request", "message": message})
        );
    }
    // Nothing changed.
    assert_eq!(other_device.me(&app).await["user"]["username"], "admin");
    assert_eq!(
        app.try_login("admin", "stolen-password").await.err(),
        Some(401)
    );
    assert!(app.try_login("admin", ADMIN_PASSWORD).await.is_ok());
    // With it, the change is made; for another user none is asked.
    let body = json!({"password": "admin-new-password", "current_password": ADMIN_PASSWORD});
    let res = send(&app, &admin, Method::PUT, &path, body).await;
    assert_eq!(res.status(), 204);
    assert_eq!(
        other_device.get(&app.url("/api/auth/me")).await.status(),
        401
    );
    assert_eq!(admin.me(&app).await["user"]["username"], "admin");
    app.create_user("cleo", &["user"]).await;
    let cleo = app.user_id("cleo").await;
    let path = format!("/api/admin/users/{cleo}/password");
    let res = send(
        &app,
        &admin,
        Method::PUT,
        &path,
        json!({"password": "cleo-new-pw"}),
    )
    .await;
    assert_eq!(res.status(), 204);
    assert!(app.try_login("cleo", "cleo-new-pw").await.is_ok());
}

/// A wrong current password on the admin route is a failed password check:
/// a stolen admin session cannot guess its way to the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_current_password_on_the_admin_route_counts_toward_the_throttle() {
    let test =
        "admin_guard_rails::a_wrong_current_password_on_the_admin_route_counts_toward_the_throttle";
    let limit = [("TETHER_LOGIN_MAX_FAILURES", "2")];
    let Some(app) = spawn_app_with(test, Stack::SqliteRedis, &limit).await else {
        return;
    };
    let admin = app.login_admin().await;
    let id = app.user_id("admin").await;
    let path = format!("/api/admin/users/{id}/password");
    let guess = |current: &str| json!({"password": "stolen-password", "current_password": current});
    for n in 0..2 {
        let res = send(
            &app,
            &admin,
            Method::PUT,
            &path,
            guess(&format!("guess-{n}")),
        )
        .await;
        assert_eq!(res.status(), 400, "guess {n}");
    }
    // Even the right password is not checked now: this user, this address.
    let res = send(&app, &admin, Method::PUT, &path, guess(ADMIN_PASSWORD)).await;
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(
        app.try_login("admin", ADMIN_PASSWORD).await.err(),
        Some(429)
    );
    assert_eq!(admin.me(&app).await["user"]["username"], "admin");
}
