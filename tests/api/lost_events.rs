//! No change is lost silently when Redis restarts or stalls (issue 14): a
//! role change made on one instance reaches the sockets and sign-ins of
//! another, either at once (the publish retries on a fresh connection) or
//! within the access recheck's bound; a restarted Redis gets its keyspace
//! notifications switched on again.

use std::time::Duration;

use serde_json::json;
use tether::ws::handlers;
use tether::{
    auth::access::RECHECK_EVERY,
    domain::RoleName,
    users,
    ws::protocol::{ServerEvent, ServerFrame},
};

use crate::{
    helpers::{Browser, Seen, Socket, TestApp, PATIENCE},
    test_redis::OwnRedis,
};

/// The admin-messages permission, held through role `messages-admin`.
const ADMIN_MESSAGES: &str = "read:admin-messages";

/// How long a change may take to reach another instance when its
/// announcement was lost: one recheck period, and slack for a busy machine.
fn convergence_limit() -> Duration {
    RECHECK_EVERY + PATIENCE
}

/// Waits for `permissions.changed` on `socket` (other events are skipped).
async fn permissions_changed(socket: &mut Socket, limit: Duration) -> Option<Vec<String>> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match socket.next_within(left).await? {
            Seen::Frame(ServerFrame::Event(ServerEvent::PermissionsChanged { permissions })) => {
                return Some(permissions)
            }
            Seen::Frame(_) => continue,
            Seen::Closed(code) => panic!("socket closed ({code:?}) before permissions.changed"),
        }
    }
}

/// Signs in, retrying while the instance is still reconnecting to Redis.
async fn login_when_ready(app: &TestApp, name: &str, password: &str) -> Browser {
    let deadline = tokio::time::Instant::now() + PATIENCE * 2;
    loop {
        if let Ok(browser) = app.try_login(name, password).await {
            return browser;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} could not sign in after the restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn permissions_of(browser: &Browser, app: &TestApp) -> Vec<String> {
    let me = browser.me(app).await;
    serde_json::from_value(me["user"]["permissions"].clone()).unwrap()
}

/// Two instances on one private Redis; alice (who may read admin messages)
/// has a socket on the second.
struct TwoInstances {
    redis: OwnRedis,
    a: TestApp,
    b: TestApp,
    alice_password: String,
}

async fn two_instances(test: &str) -> Option<TwoInstances> {
    // A long sweep, so only the paths under test can close sockets in time.
    let (redis, a) = OwnRedis::with_app(test, &[("TETHER_SWEEP_SECS", "3600")]).await?;
    let b = a.spawn_peer().await;
    let alice_password = a.create_user("alice", &["user", "messages-admin"]).await;
    Some(TwoInstances {
        redis,
        a,
        b,
        alice_password,
    })
}

async fn assert_can_read_admin_messages(socket: &mut Socket, expected: bool) {
    let reply = socket.ask::<handlers::messages::Admin>(json!({})).await;
    assert_eq!(reply.ok, expected, "{reply:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_change_right_after_a_redis_restart_reaches_the_other_instance() {
    let test = "lost_events::a_role_change_right_after_a_redis_restart_reaches_the_other_instance";
    let Some(TwoInstances {
        mut redis,
        a,
        b,
        alice_password,
    }) = two_instances(test).await
    else {
        return;
    };
    let _restarted = redis.restart();
    // Sessions were lost with the old Redis: sign in again on each instance.
    let admin = login_when_ready(&a, "admin", crate::helpers::ADMIN_PASSWORD).await;
    let alice = login_when_ready(&b, "alice", &alice_password).await;
    let mut socket = alice.socket(&b).await;
    assert_can_read_admin_messages(&mut socket, true).await;

    // Instance A's bus connection has not been used since the restart.
    let alice_id = a.user_id("alice").await;
    let res = admin
        .put_json(
            &a.url(&format!("/api/admin/users/{alice_id}/roles")),
            json!({"roles": ["user"]}),
        )
        .await;
    assert_eq!(res.status(), 200, "the change is announced, not a 503");

    let permissions = permissions_changed(&mut socket, PATIENCE)
        .await
        .expect("permissions.changed reached B at once");
    assert!(!permissions.iter().any(|p| p == ADMIN_MESSAGES));
    assert_can_read_admin_messages(&mut socket, false).await;
    let fresh = b.login("alice", &alice_password).await;
    assert!(!permissions_of(&fresh, &b)
        .await
        .iter()
        .any(|p| p == ADMIN_MESSAGES));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_redis_restart_a_raw_del_closes_the_socket_without_waiting_for_the_sweep() {
    let test = "lost_events::after_a_redis_restart_a_raw_del_closes_the_socket_without_waiting_for_the_sweep";
    let Some(TwoInstances {
        mut redis,
        a,
        b,
        alice_password,
    }) = two_instances(test).await
    else {
        return;
    };
    let restarted = redis.restart();
    let alice = login_when_ready(&b, "alice", &alice_password).await;
    let sid = alice.session_id(&b).await;
    let mut on_a = alice.socket(&a).await;
    let mut on_b = alice.socket(&b).await;

    let prefix = &a.env()["TETHER_REDIS_PREFIX"];
    let client = ::redis::Client::open(restarted.url()).unwrap();
    let mut conn = client.get_connection().unwrap();
    let deleted: i64 = ::redis::cmd("DEL")
        .arg(format!("{prefix}session:{{{sid}}}"))
        .query(&mut conn)
        .unwrap();
    assert_eq!(deleted, 1);
    // The sweep runs hourly here: only a keyspace notification closes these.
    for socket in [&mut on_a, &mut on_b] {
        let (code, _) = socket.closed().await;
        assert_eq!(code, Some(4001));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_change_announced_while_redis_is_paused_converges_on_the_other_instance() {
    let test = "lost_events::a_role_change_announced_while_redis_is_paused_converges_on_the_other_instance";
    let Some(TwoInstances {
        redis,
        a,
        b,
        alice_password,
    }) = two_instances(test).await
    else {
        return;
    };
    let alice = b.login("alice", &alice_password).await;
    let mut socket = alice.socket(&b).await;
    assert_can_read_admin_messages(&mut socket, true).await;
    let before_on_b = b.login("alice", &alice_password).await;
    assert!(permissions_of(&before_on_b, &b)
        .await
        .iter()
        .any(|p| p == ADMIN_MESSAGES));

    redis.pause();
    // The store commits; the announcement cannot get through, and says so.
    let alice_id = a.user_id("alice").await;
    let roles = [RoleName::parse("user").unwrap()];
    let result = users::set_roles_by_id(&a.state.db, &a.state.sessions, alice_id, &roles).await;
    assert!(
        matches!(result, Err(users::UserError::Bus(_))),
        "{result:?}"
    );
    // B hears nothing from Redis, yet its socket and its cache catch up.
    let permissions = permissions_changed(&mut socket, convergence_limit())
        .await
        .expect("permissions.changed within the recheck bound");
    assert!(!permissions.iter().any(|p| p == ADMIN_MESSAGES));
    redis.resume();
    assert_can_read_admin_messages(&mut socket, false).await;
    let fresh = b.login("alice", &alice_password).await;
    assert!(!permissions_of(&fresh, &b)
        .await
        .iter()
        .any(|p| p == ADMIN_MESSAGES));
}
