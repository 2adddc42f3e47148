//! Sessions that end inside Redis (a raw `DEL`, an expiry) are recorded by
//! the actor `system`, once, however many instances notice.

use std::time::Duration;

use serde_json::json;

use super::{eventually, trail};
use crate::helpers::{spawn_app_with, Stack, TestApp};

crate::on_redis_stacks!(a_session_deleted_in_redis_is_recorded_once_though_two_instances_see_it);

async fn a_session_deleted_in_redis_is_recorded_once_though_two_instances_see_it(a: TestApp) {
    // Relies on keyspace notifications, a server-wide setting other tests toggle.
    let _config = crate::test_redis::SERVER_CONFIG.read().await;
    let b = a.spawn_peer().await;
    let user = a.login_new_user("ulla", &["user"]).await;
    let sid = user.session_id(&a).await;
    let mut on_a = user.socket(&a).await;
    let mut on_b = user.socket(&b).await;
    let redis = a.redis.as_ref().unwrap();
    redis.delete_key(&crate::failover::session_key(&a, &sid));
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
