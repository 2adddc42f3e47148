//! Revocation that bites: however a session ends (REST on any instance, the
//! CLI, a raw `redis-cli DEL`, a lost notification), its sockets close with
//! 4001 and the right reason, and no other session's sockets do.

use std::time::Duration;

use serde_json::json;
use tether::domain::EndReason;
use tether::ws::handlers;
use tether::ws::protocol::ServerEvent;

use crate::{
    failover::session_key,
    helpers::{Stack, TestApp},
    test_redis::OwnRedis,
};

crate::on_redis_stacks!(
    a_raw_redis_del_closes_the_sessions_sockets_everywhere,
    an_admin_revocation_on_one_instance_closes_sockets_on_the_other,
    the_cli_lists_sessions_and_revokes_them_on_running_servers,
);

fn revoked(reason: EndReason) -> Option<ServerEvent> {
    Some(ServerEvent::SessionRevoked { reason })
}

async fn a_raw_redis_del_closes_the_sessions_sockets_everywhere(a: TestApp) {
    // Relies on keyspace notifications, a server-wide setting other tests toggle.
    let _config = crate::test_redis::SERVER_CONFIG.read().await;
    let b = a.spawn_peer().await;
    let victim = a.login_new_user("xena", &["user"]).await;
    let bystander = a.login_new_user("yuri", &["user"]).await;
    let sid = victim.session_id(&a).await;
    let mut on_a = victim.socket(&a).await;
    let mut on_b = victim.socket(&b).await;
    let mut other = bystander.socket(&b).await;

    a.redis.as_ref().unwrap().delete_key(&session_key(&a, &sid));
    for socket in [&mut on_a, &mut on_b] {
        let (code, events) = socket.closed().await;
        assert_eq!(code, Some(4001));
        assert_eq!(events.last().cloned(), revoked(EndReason::Deleted));
    }
    assert!(other.ask::<handlers::ping::Ping>(json!({})).await.ok);
    assert_eq!(victim.get(&a.url("/api/auth/me")).await.status(), 401);
}

async fn an_admin_revocation_on_one_instance_closes_sockets_on_the_other(a: TestApp) {
    let b = a.spawn_peer().await;
    let admin = a.login_admin().await;
    let user = a.login_new_user("zoe", &["user"]).await;
    let sid = user.session_id(&a).await;
    let mut on_b = user.socket(&b).await;
    let res = admin
        .http
        .delete(a.url(&format!("/api/admin/sessions/{sid}")))
        .header("Cookie", &admin.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let (code, events) = on_b.closed().await;
    assert_eq!(code, Some(4001));
    assert_eq!(events.last().cloned(), revoked(EndReason::Admin));
}

async fn tether(app: &TestApp, args: &[&str]) -> (bool, String, String) {
    let out = crate::helpers::tether_cli(app, args, "").await;
    (out.ok, out.stdout, out.stderr)
}

async fn the_cli_lists_sessions_and_revokes_them_on_running_servers(a: TestApp) {
    let b = a.spawn_peer().await;
    let password = a.create_user("abel", &["user"]).await;
    let one = a.login("abel", &password).await;
    let two = a.login("abel", &password).await;
    let three = a.login("abel", &password).await;
    let sid_one = one.session_id(&a).await;
    let mut s_one = one.socket(&b).await;
    let mut s_two = two.socket(&a).await;
    let mut s_three = three.socket(&b).await;
    let _ = s_one.ask::<handlers::ping::Ping>(json!({})).await;

    // Counts are published asynchronously; poll the listing for a bounded time.
    let mut listed = String::new();
    for _ in 0..100 {
        let (ok, out, err) = tether(&a, &["sessions", "list", "--user", "abel"]).await;
        assert!(ok, "{err}");
        listed = out;
        let line = listed
            .lines()
            .find(|l| l.starts_with(&sid_one))
            .unwrap_or("");
        if line.contains("127.0.0.1") && line.split_whitespace().any(|w| w == "1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        listed.lines().filter(|l| l.contains("abel")).count(),
        3,
        "{listed}"
    );
    let line = listed
        .lines()
        .find(|l| l.starts_with(&sid_one))
        .expect("listed by id");
    assert!(line.contains("127.0.0.1"), "{line}");

    let (ok, _, err) = tether(&a, &["sessions", "revoke", &sid_one]).await;
    assert!(ok, "{err}");
    let (code, events) = s_one.closed().await;
    assert_eq!(
        (code, events.last().cloned()),
        (Some(4001), revoked(EndReason::Admin))
    );
    assert!(
        s_two.ask::<handlers::ping::Ping>(json!({})).await.ok,
        "only that session"
    );

    let (ok, out, err) = tether(&a, &["sessions", "revoke", "--user", "abel"]).await;
    assert!(ok, "{err}");
    assert!(out.contains('2'), "{out}");
    for socket in [&mut s_two, &mut s_three] {
        assert_eq!(socket.closed().await.0, Some(4001));
    }

    for args in [
        &["sessions", "revoke", "no-such-session"][..],
        &["sessions", "revoke", "--user", "nobody"],
        &["sessions", "revoke"],
        &["sessions", "list", "--user", "bad name"],
    ] {
        let (ok, _, err) = tether(&a, args).await;
        assert!(!ok, "{args:?} must fail");
        assert!(
            !err.is_empty() && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_refuses_session_commands_without_redis() {
    let name = "revocation::the_cli_refuses_session_commands_without_redis";
    let Some(app) = crate::helpers::spawn_app(name, Stack::SqliteInProcess).await else {
        return;
    };
    let (ok, _, err) = tether(&app, &["sessions", "list"]).await;
    assert!(!ok);
    assert!(err.contains("REDIS_URL"), "{err}");
}

/// Keyspace notifications are lossy (and often forbidden on managed Redis):
/// with them off, the periodic sweep still closes a raw-deleted session's sockets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_closes_sockets_whose_session_vanished_without_a_notification() {
    let name = "revocation::the_sweep_closes_sockets_whose_session_vanished";
    let extra = [("TETHER_SWEEP_SECS", "1")];
    let Some((redis, app)) = OwnRedis::with_app(name, &extra).await else {
        return;
    };
    let mut raw = redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("notify-keyspace-events")
        .arg("")
        .query(&mut raw)
        .unwrap();
    let user = app.login_new_user("bea", &["user"]).await;
    let sid = user.session_id(&app).await;
    let mut socket = user.socket(&app).await;
    let prefix = &app.env()["TETHER_REDIS_PREFIX"];
    let _: i64 = redis::cmd("DEL")
        .arg(format!("{prefix}session:{{{sid}}}"))
        .query(&mut raw)
        .unwrap();
    let (code, events) = socket.closed().await;
    assert_eq!(code, Some(4001));
    assert_eq!(events.last().cloned(), revoked(EndReason::Deleted));
}

/// A Redis restart without persistence loses every session, and the
/// notifications for them are never sent. When the subscription comes back,
/// the instance re-checks its sockets at once — not at the next periodic sweep.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_are_rechecked_as_soon_as_redis_comes_back() {
    let name = "revocation::sockets_are_rechecked_as_soon_as_redis_comes_back";
    // A periodic sweep far slower than the test's patience.
    let extra = [("TETHER_SWEEP_SECS", "600")];
    let Some((mut redis, app)) = OwnRedis::with_app(name, &extra).await else {
        return;
    };
    let user = app.login_new_user("cleo", &["user"]).await;
    let mut socket = user.socket(&app).await;

    let restarted = redis.restart();
    let (code, events) = socket.closed().await;
    assert_eq!(code, Some(4001));
    assert_eq!(events.last().cloned(), revoked(EndReason::Deleted));
    drop(restarted);
}
