//! What the `tether` binary does is recorded with the actor `cli`, and
//! `tether audit list` reads the trail.

use serde_json::{json, Value};

use super::{id_of, of, trail};
use crate::helpers::{tether_cli, TestApp, ADMIN_PASSWORD};

crate::on_every_stack!(user_changes_from_the_cli_are_recorded_as_cli_and_audit_list_shows_them);

/// `sessions …` needs Redis (the CLI reads the shared store).
mod with_redis {
    use super::sessions_revoked_from_the_cli_are_recorded_as_cli;
    crate::on_redis_stacks!(sessions_revoked_from_the_cli_are_recorded_as_cli);
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
