//! `GET /api/admin/audit`: its permission, paging and filters; retention
//! pruning; the writer's flush.

use std::time::Duration;

use serde_json::{json, Value};

use super::{of, trail};
use crate::helpers::{spawn_app, Stack, TestApp, PATIENCE};

crate::on_every_stack!(
    the_route_needs_admin_audit,
    pages_and_filters_narrow_the_trail_and_bad_values_get_400,
    entries_past_retention_are_pruned_in_the_background,
);

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
    // The first admin, created at start-up, then five sign-ins.
    let (all, body) = trail(&app, &admin, "").await;
    assert_eq!(body["page"], 1);
    assert_eq!(body["per_page"], 50);
    assert_eq!(body["total"], 6);
    assert_eq!(all.len(), 6);
    let ids: Vec<i64> = all.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    let first = &all[5];
    assert_eq!(first["action"], "user.created");
    assert_eq!(first["actor"]["type"], "system");
    assert_eq!(first["target"]["username"], "admin");

    let (page2, body) = trail(&app, &admin, "per_page=2&page=2").await;
    assert_eq!(body["total"], 6);
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
    assert_eq!(recent.len(), 6);
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
