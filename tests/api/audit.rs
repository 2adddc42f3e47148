//! The audit trail: every security event through the API and the CLI, with
//! its actor and target; the route's permission, paging and filters; a
//! session that vanishes inside Redis recorded once however many instances
//! see it; retention pruning.

use std::time::Duration;

use reqwest::{header::COOKIE, Method, Response};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{
    spawn_app, spawn_app_with, tether_cli, Browser, Stack, TestApp, ADMIN_PASSWORD, PATIENCE,
};

crate::on_every_stack!(
    sign_ins_sign_outs_and_refusals_are_recorded_with_actor_and_client,
    user_changes_by_an_admin_and_by_the_user_are_recorded_with_before_and_after,
    ending_sessions_records_who_ended_them,
    the_route_needs_admin_audit,
    pages_and_filters_narrow_the_trail_and_bad_values_get_400,
    user_changes_from_the_cli_are_recorded_as_cli_and_audit_list_shows_them,
    entries_past_retention_are_pruned_in_the_background,
);

mod with_redis {
    use super::{
        a_session_deleted_in_redis_is_recorded_once_though_two_instances_see_it,
        sessions_revoked_from_the_cli_are_recorded_as_cli,
    };
    crate::on_redis_stacks!(
        a_session_deleted_in_redis_is_recorded_once_though_two_instances_see_it,
        sessions_revoked_from_the_cli_are_recorded_as_cli,
    );
}

/// `GET /api/admin/audit?{query}` as `who`: the events (newest first) and
/// the whole body.
async fn trail(app: &TestApp, who: &Browser, query: &str) -> (Vec<Value>, Value) {
    let res = who
        .get(&app.url(&format!("/api/admin/audit?{query}")))
        .await;
    assert_eq!(res.status(), 200, "audit listing answers 200");
    let body: Value = res.json().await.unwrap();
    let events = body["events"].as_array().cloned().unwrap_or_default();
    (events, body)
}

/// The events of `action`, newest first.
async fn of(app: &TestApp, admin: &Browser, action: &str) -> Vec<Value> {
    trail(app, admin, &format!("action={action}&per_page=200"))
        .await
        .0
}

/// Waits (up to `PATIENCE`) until `query` lists `count` events; returns them.
async fn eventually(app: &TestApp, admin: &Browser, query: &str, count: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (events, _) = trail(app, admin, query).await;
        if events.len() >= count || tokio::time::Instant::now() > deadline {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn send(
    app: &TestApp,
    who: &Browser,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Response {
    let mut req = who
        .http
        .request(method, app.url(path))
        .header(COOKIE, &who.cookie);
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.expect("request")
}

fn id_of(v: &Value) -> Uuid {
    Uuid::parse_str(v.as_str().expect("an id")).expect("a UUID")
}

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

async fn the_route_needs_admin_audit(app: TestApp) {
    let res = reqwest::get(app.url("/api/admin/audit")).await.unwrap();
    assert_eq!(res.status(), 401);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthenticated");
    // admin:users and admin:sessions are not admin:audit.
    let user = app
        .login_new_user("rolf", &["user", "messages-admin"])
        .await;
    let res = user.get(&app.url("/api/admin/audit")).await;
    assert_eq!(res.status(), 403);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden");
    let admin = app.login_admin().await;
    assert!(admin.me(&app).await["user"]["permissions"]
        .as_array()
        .unwrap()
        .contains(&json!("admin:audit")));
}

async fn pages_and_filters_narrow_the_trail_and_bad_values_get_400(app: TestApp) {
    let admin = app.login_admin().await;
    let password = app.create_user("sven", &["user"]).await;
    for _ in 0..4 {
        app.login("sven", &password).await;
    }
    let sven = app.user_id("sven").await;
    let (all, body) = trail(&app, &admin, "").await;
    assert_eq!(body["page"], 1);
    assert_eq!(body["per_page"], 50);
    assert_eq!(body["total"], 5);
    assert_eq!(all.len(), 5);
    let ids: Vec<i64> = all.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");

    let (page2, body) = trail(&app, &admin, "per_page=2&page=2").await;
    assert_eq!(body["total"], 5);
    assert_eq!(page2, all[2..4].to_vec());
    let (page3, _) = trail(&app, &admin, "per_page=2&page=3").await;
    assert_eq!(page3, all[4..].to_vec());

    let (svens, body) = trail(&app, &admin, &format!("user_id={sven}")).await;
    assert_eq!(body["total"], 4);
    assert!(svens.iter().all(|e| e["target"]["username"] == "sven"));
    let (logins, _) = trail(&app, &admin, "action=login.success").await;
    assert_eq!(logins.len(), 5);
    let (none, _) = trail(&app, &admin, "action=logout").await;
    assert!(none.is_empty());
    let (recent, _) = trail(&app, &admin, "since=1h").await;
    assert_eq!(recent.len(), 5);
    let (future, _) = trail(&app, &admin, "since=2999-01-01T00:00:00Z").await;
    assert!(future.is_empty());

    for bad in [
        "user_id=nope",
        "action=login",
        "since=yesterday",
        "page=0",
        "per_page=201",
        "per_page=many",
    ] {
        let res = admin
            .get(&app.url(&format!("/api/admin/audit?{bad}")))
            .await;
        assert_eq!(res.status(), 400, "{bad}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "bad_request", "{bad}");
        assert!(
            body["error"]["message"].as_str().unwrap().len() > 5,
            "{bad}"
        );
    }
}

async fn user_changes_from_the_cli_are_recorded_as_cli_and_audit_list_shows_them(app: TestApp) {
    let add = [
        "users",
        "add",
        "tilda",
        "--role",
        "user",
        "--password-stdin",
    ];
    let out = tether_cli(&app, &add, "tilda-password-1\n").await;
    assert!(out.ok, "{}", out.stderr);
    let set = ["users", "set-roles", "tilda", "user", "messages-admin"];
    assert!(tether_cli(&app, &set, "").await.ok);
    assert!(
        tether_cli(&app, &["users", "disable", "tilda"], "")
            .await
            .ok
    );

    let admin = app.login_admin().await;
    let tilda = app.user_id("tilda").await;
    let (events, _) = trail(&app, &admin, &format!("user_id={tilda}")).await;
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["user.disabled", "user.roles_changed", "user.created"]
    );
    for e in &events {
        assert_eq!(e["actor"]["type"], "cli", "{e}");
        assert_eq!(e["actor"]["user_id"], Value::Null);
        assert_eq!(id_of(&e["target"]["user_id"]), tilda);
    }
    assert_eq!(
        events[1]["details"],
        json!({"before": ["user"], "after": ["messages-admin", "user"]})
    );

    let out = tether_cli(&app, &["audit", "list", "--user", "tilda"], "").await;
    assert!(out.ok, "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().skip(1).collect();
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    assert!(
        lines[0].contains("user.disabled") && lines[0].contains("cli"),
        "{}",
        lines[0]
    );
    let out = tether_cli(&app, &["audit", "list", "--action", "login.success"], "").await;
    assert!(out.ok, "{}", out.stderr);
    assert_eq!(out.stdout.lines().count(), 2, "{}", out.stdout);
    assert!(out.stdout.contains("admin"));
    for bad in [
        &["audit", "list", "--action", "login"][..],
        &["audit", "list", "--since", "soon"][..],
        &["audit", "list", "--user", "nobody"][..],
    ] {
        let out = tether_cli(&app, bad, "").await;
        assert!(!out.ok, "{bad:?}");
        assert!(out.stderr.contains("tether:"), "{}", out.stderr);
    }
}

async fn entries_past_retention_are_pruned_in_the_background(app: TestApp) {
    use tether::db::AuditEntry;
    let entry = |days_ago: i64, action: &str| AuditEntry {
        at: chrono::Utc::now() - chrono::Duration::days(days_ago),
        action: action.into(),
        actor: "system".into(),
        actor_user_id: None,
        actor_session_id: None,
        target_user_id: None,
        target_session_id: Some(format!("{days_ago}")),
        client_ip: None,
        user_agent: None,
        details: json!({}),
    };
    let old = vec![
        entry(100, "logout"),
        entry(91, "logout"),
        entry(89, "logout"),
    ];
    app.state.db.append_audit(old).await.unwrap();
    // Another instance with the default 90 days prunes as it starts.
    let peer = app.spawn_peer().await;
    let admin = peer.login_admin().await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let left = loop {
        let left = of(&peer, &admin, "logout").await;
        if left.len() == 1 || tokio::time::Instant::now() > deadline {
            break left;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["target"]["session_id"], "89");
    // The function the background task runs, with a shorter retention.
    let day = Duration::from_secs(24 * 3600);
    let pruned = tether::audit::prune_once(&app.state.db, 30 * day)
        .await
        .unwrap();
    assert_eq!(pruned, 1);
    assert!(of(&peer, &admin, "logout").await.is_empty());
    assert_eq!(of(&peer, &admin, "login.success").await.len(), 1);
}

async fn a_session_deleted_in_redis_is_recorded_once_though_two_instances_see_it(a: TestApp) {
    // Relies on keyspace notifications, a server-wide setting other tests toggle.
    let _config = crate::test_redis::SERVER_CONFIG.read().await;
    let b = a.spawn_peer().await;
    let user = a.login_new_user("ulla", &["user"]).await;
    let sid = user.session_id(&a).await;
    let mut on_a = user.socket(&a).await;
    let mut on_b = user.socket(&b).await;
    let redis = a.redis.as_ref().unwrap();
    redis.delete_key(&format!("{}session:{sid}", redis.prefix));
    for socket in [&mut on_a, &mut on_b] {
        assert_eq!(socket.closed().await.0, Some(4001));
    }
    let admin = a.login_admin().await;
    let events = eventually(&a, &admin, "action=session.revoked", 1).await;
    // Both instances have had every chance to record it by now.
    tokio::time::sleep(Duration::from_millis(300)).await;
    b.state.audit.flush().await;
    let (events_later, _) = trail(&a, &admin, "action=session.revoked").await;
    assert_eq!(events_later, events);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["actor"]["type"], "system");
    assert_eq!(events[0]["target"]["session_id"], sid.as_str());
    assert_eq!(
        events[0]["details"],
        json!({"reason": "deleted", "by": "redis_delete"})
    );
}

async fn sessions_revoked_from_the_cli_are_recorded_as_cli(app: TestApp) {
    let password = app.create_user("vera", &["user"]).await;
    let vera = app.user_id("vera").await;
    let one = app.login("vera", &password).await;
    app.login("vera", &password).await;
    let sid = one.session_id(&app).await;
    let out = tether_cli(&app, &["sessions", "revoke", &sid], "").await;
    assert!(out.ok, "{}", out.stderr);
    let out = tether_cli(&app, &["sessions", "revoke", "--user", "vera"], "").await;
    assert!(out.ok, "{}", out.stderr);

    let admin = app.login("admin", ADMIN_PASSWORD).await;
    let events = of(&app, &admin, "session.revoked").await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[1]["target"]["session_id"], sid.as_str());
    for e in &events {
        assert_eq!(e["actor"]["type"], "cli");
        assert_eq!(id_of(&e["target"]["user_id"]), vera);
        assert_eq!(e["details"], json!({"reason": "admin", "by": "cli"}));
    }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_is_recorded_once_as_expiry() {
    let short = [
        ("TETHER_SESSION_IDLE_SECS", "2"),
        ("TETHER_SESSION_ABSOLUTE_SECS", "60"),
    ];
    let test = "audit::an_expired_session_is_recorded_once_as_expiry";
    let Some(a) = spawn_app_with(test, Stack::SqliteRedis, &short).await else {
        return;
    };
    let _config = crate::test_redis::SERVER_CONFIG.read().await;
    let b = a.spawn_peer().await;
    let user = a.login_new_user("xavier", &["user"]).await;
    let sid = user.session_id(&a).await;
    let mut on_a = user.socket(&a).await;
    let mut on_b = user.socket(&b).await;
    for socket in [&mut on_a, &mut on_b] {
        assert_eq!(socket.closed().await.0, Some(4001));
    }
    // Every way of noticing has had its chance (keyspace notice on both
    // instances, both sockets at their deadline); read the store directly,
    // since an admin's session would expire here too.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for app in [&a, &b] {
        app.state.audit.flush().await;
    }
    let filter = tether::db::AuditFilter {
        action: Some("session.revoked".into()),
        ..Default::default()
    };
    let (total, events) = a.state.db.audit_page(filter, 0, 10).await.unwrap();
    assert_eq!(total, 1, "{events:?}");
    let e = &events[0].entry;
    assert_eq!(e.actor, "system");
    assert_eq!(e.target_session_id.as_deref(), Some(sid.as_str()));
    assert_eq!(e.details, json!({"reason": "expired", "by": "expiry"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_stores_everything_queued_in_batches() {
    use tether::audit::{Action, Actor, AuditEvent};
    let test = "audit::a_flush_stores_everything_queued_in_batches";
    let Some(app) = spawn_app(test, Stack::SqliteInProcess).await else {
        return;
    };
    // What a graceful shutdown (and every CLI command) does before exiting.
    for i in 0..1200 {
        let event = AuditEvent::new(Action::UserEnabled, Actor::System).detail("n", i);
        app.state.audit.record(event);
    }
    app.state.audit.flush().await;
    let filter = tether::db::AuditFilter {
        action: Some("user.enabled".into()),
        ..Default::default()
    };
    let (total, newest) = app.state.db.audit_page(filter, 0, 1).await.unwrap();
    assert_eq!(total, 1200);
    assert_eq!(newest[0].entry.details, json!({"n": 1199}));
}
