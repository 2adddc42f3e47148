//! Each action through the API: sign-ins, sign-outs and refusals, user
//! changes, sessions ended by their user or an admin.

use reqwest::Method;
use serde_json::{json, Value};

use super::{id_of, of, send, trail};
use crate::helpers::{spawn_app_with, Stack, TestApp};

crate::on_every_stack!(
    sign_ins_sign_outs_and_refusals_are_recorded_with_actor_and_client,
    user_changes_by_an_admin_and_by_the_user_are_recorded_with_before_and_after,
    ending_sessions_records_who_ended_them,
);

async fn sign_ins_sign_outs_and_refusals_are_recorded_with_actor_and_client(app: TestApp) {
    let admin = app.login_admin().await;
    let admin_sid = admin.session_id(&app).await;
    let admin_id = app.user_id("admin").await;

    let success = of(&app, &admin, "login.success").await;
    let mine = success
        .iter()
        .find(|e| e["actor"]["session_id"] == admin_sid.as_str())
        .expect("the admin's sign-in is listed");
    assert_eq!(mine["actor"]["type"], "user");
    assert_eq!(id_of(&mine["actor"]["user_id"]), admin_id);
    assert_eq!(mine["actor"]["username"], "admin");
    assert_eq!(id_of(&mine["target"]["user_id"]), admin_id);
    assert_eq!(mine["target"]["session_id"], admin_sid.as_str());
    assert_eq!(mine["client_ip"], "127.0.0.1");

    // A failure keeps the name as typed and never the password.
    let res = reqwest::Client::new()
        .post(app.url("/api/auth/login"))
        .header("User-Agent", "audit-test/1.0")
        .json(&json!({"username": "Nobody-Here", "password": "guess-one-two"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let failures = of(&app, &admin, "login.failure").await;
    assert_eq!(failures.len(), 1, "{failures:?}");
    let failure = &failures[0];
    assert_eq!(failure["actor"]["type"], "anonymous");
    assert_eq!(failure["details"], json!({"username": "Nobody-Here"}));
    assert_eq!(failure["user_agent"], "audit-test/1.0");
    assert_eq!(failure["target"]["user_id"], Value::Null, "no such user");
    assert!(!failure.to_string().contains("guess-one-two"));

    // Refused sockets: a foreign origin, and no session at all.
    let refused = admin.try_socket(&app, Some("https://evil.example")).await;
    assert_eq!(refused.err(), Some(403));
    let anonymous = crate::helpers::connect(&app, None, Some(&app.origin())).await;
    assert_eq!(anonymous.err(), Some(401));
    let refusals = of(&app, &admin, "ws.refused").await;
    let reasons: Vec<&str> = refusals
        .iter()
        .map(|e| e["details"]["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["unauthenticated", "origin"], "{refusals:?}");
    assert_eq!(refusals[1]["details"]["origin"], "https://evil.example");
    assert_eq!(refusals[1]["actor"]["session_id"], admin_sid.as_str());
    assert_eq!(refusals[0]["actor"]["type"], "anonymous");

    // Sign-out of this device.
    let user = app.login_new_user("olga", &["user"]).await;
    let user_sid = user.session_id(&app).await;
    assert_eq!(user.post(&app.url("/api/auth/logout")).await.status(), 204);
    let logouts = of(&app, &admin, "logout").await;
    assert_eq!(logouts.len(), 1, "{logouts:?}");
    assert_eq!(logouts[0]["actor"]["username"], "olga");
    assert_eq!(logouts[0]["target"]["session_id"], user_sid.as_str());
}

async fn user_changes_by_an_admin_and_by_the_user_are_recorded_with_before_and_after(app: TestApp) {
    let admin = app.login_admin().await;
    let admin_sid = admin.session_id(&app).await;
    let body = json!({"username": "petra", "password": "petra-password-1", "roles": ["user"]});
    let res = send(&app, &admin, Method::POST, "/api/admin/users", Some(body)).await;
    assert_eq!(res.status(), 201);
    let petra = app.user_id("petra").await;
    let path = |tail: &str| format!("/api/admin/users/{petra}{tail}");

    let roles = json!({"roles": ["user", "messages-admin"]});
    let res = send(&app, &admin, Method::PUT, &path("/roles"), Some(roles)).await;
    assert_eq!(res.status(), 200);
    for disabled in [true, false] {
        let patch = json!({ "disabled": disabled });
        let res = send(&app, &admin, Method::PATCH, &path(""), Some(patch)).await;
        assert_eq!(res.status(), 200);
    }
    let password = json!({"password": "petra-password-2"});
    let res = send(
        &app,
        &admin,
        Method::PUT,
        &path("/password"),
        Some(password),
    )
    .await;
    assert_eq!(res.status(), 204);
    // …and petra changes her own.
    let own = app.login("petra", "petra-password-2").await;
    let change =
        json!({"current_password": "petra-password-2", "new_password": "petra-password-3"});
    let res = send(&app, &own, Method::PUT, "/api/auth/password", Some(change)).await;
    assert_eq!(res.status(), 204);

    let (events, _) = trail(&app, &admin, &format!("user_id={petra}&per_page=200")).await;
    let events: Vec<Value> = events
        .into_iter()
        .filter(|e| e["action"] != "login.success")
        .collect();
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "password.changed",
            "password.changed",
            "user.enabled",
            "user.disabled",
            "user.roles_changed",
            "user.created"
        ]
    );
    let by_admin: Vec<&Value> = events
        .iter()
        .filter(|e| e["actor"]["session_id"] == admin_sid.as_str())
        .collect();
    assert_eq!(
        by_admin.len(),
        5,
        "every admin change names the admin's session"
    );
    for e in &events {
        assert_eq!(id_of(&e["target"]["user_id"]), petra, "{e}");
    }
    let created = events.last().unwrap();
    assert_eq!(
        created["details"],
        json!({"username": "petra", "roles": ["user"]})
    );
    let changed = &events
        .iter()
        .find(|e| e["action"] == "user.roles_changed")
        .unwrap()["details"];
    assert_eq!(changed["before"], json!(["user"]));
    assert_eq!(changed["after"], json!(["messages-admin", "user"]));
    assert_eq!(events[0]["details"]["by"], "self");
    assert_eq!(events[0]["actor"]["username"], "petra");
    assert_eq!(events[1]["details"]["by"], "admin");
    assert!(!events
        .iter()
        .any(|e| e.to_string().contains("petra-password")));
}

async fn ending_sessions_records_who_ended_them(app: TestApp) {
    let admin = app.login_admin().await;
    let password = app.create_user("quinn", &["user"]).await;
    let quinn = app.user_id("quinn").await;
    let laptop = app.login("quinn", &password).await;
    let phone = app.login("quinn", &password).await;
    let tablet = app.login("quinn", &password).await;
    let (laptop_sid, phone_sid, tablet_sid) = (
        laptop.session_id(&app).await,
        phone.session_id(&app).await,
        tablet.session_id(&app).await,
    );
    // The user ends one other device, then an admin ends another.
    let res = laptop
        .delete(&app.url(&format!("/api/auth/sessions/{phone_sid}")))
        .await;
    assert_eq!(res.status(), 204);
    let res = admin
        .delete(&app.url(&format!("/api/admin/sessions/{tablet_sid}")))
        .await;
    assert_eq!(res.status(), 204);

    let revoked = of(&app, &admin, "session.revoked").await;
    assert_eq!(revoked.len(), 2, "{revoked:?}");
    let (by_admin, by_self) = (&revoked[0], &revoked[1]);
    assert_eq!(by_self["target"]["session_id"], phone_sid.as_str());
    assert_eq!(by_self["actor"]["session_id"], laptop_sid.as_str());
    assert_eq!(
        by_self["details"],
        json!({"reason": "logout", "by": "self"})
    );
    assert_eq!(by_admin["target"]["session_id"], tablet_sid.as_str());
    assert_eq!(id_of(&by_admin["target"]["user_id"]), quinn);
    assert_eq!(by_admin["actor"]["username"], "admin");
    assert_eq!(
        by_admin["details"],
        json!({"reason": "admin", "by": "admin"})
    );

    // "Everywhere else", then an admin ending all of the user's sessions.
    let desk = app.login("quinn", &password).await;
    let desk_sid = desk.session_id(&app).await;
    let res = laptop.delete(&app.url("/api/auth/sessions")).await;
    assert_eq!(res.status(), 200);
    let res = admin
        .delete(&app.url(&format!("/api/admin/users/{quinn}/sessions")))
        .await;
    assert_eq!(res.status(), 200);
    let revoked = of(&app, &admin, "session.revoked").await;
    assert_eq!(revoked.len(), 4, "{revoked:?}");
    assert_eq!(revoked[0]["target"]["session_id"], laptop_sid.as_str());
    assert_eq!(revoked[0]["details"]["by"], "admin");
    assert_eq!(revoked[1]["target"]["session_id"], desk_sid.as_str());
    assert_eq!(revoked[1]["actor"]["session_id"], laptop_sid.as_str());
    assert_eq!(revoked[1]["details"]["by"], "self");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_sign_in_and_a_socket_over_its_cap_are_recorded() {
    let limits = [
        ("TETHER_LOGIN_MAX_FAILURES", "1"),
        ("TETHER_WS_MAX_PER_SESSION", "1"),
    ];
    let test = "audit::a_throttled_sign_in_and_a_socket_over_its_cap_are_recorded";
    let Some(app) = spawn_app_with(test, Stack::SqliteInProcess, &limits).await else {
        return;
    };
    let user = app.login_new_user("wanda", &["user"]).await;
    let sid = user.session_id(&app).await;
    assert_eq!(
        app.try_login("wanda", "wrong-password").await.err(),
        Some(401)
    );
    assert_eq!(app.try_login("wanda", "wrong-again").await.err(), Some(429));
    let _first = user.socket(&app).await;
    assert_eq!(
        user.try_socket(&app, Some(&app.origin())).await.err(),
        Some(429)
    );

    let admin = app.login_admin().await;
    let throttled = of(&app, &admin, "login.throttled").await;
    assert_eq!(throttled.len(), 1, "{throttled:?}");
    assert_eq!(throttled[0]["details"], json!({"username": "wanda"}));
    // Attempts on an account are found by that account.
    let wanda = app.user_id("wanda").await;
    assert_eq!(id_of(&throttled[0]["target"]["user_id"]), wanda);
    let failures = of(&app, &admin, "login.failure").await;
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0]["target"]["username"], "wanda");
    let refused = of(&app, &admin, "ws.refused").await;
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["details"]["reason"], "cap");
    assert_eq!(refused[0]["actor"]["session_id"], sid.as_str());
    assert_eq!(refused[0]["target"]["username"], "wanda");
}
