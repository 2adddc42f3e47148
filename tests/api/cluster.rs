//! Two instances sharing one Redis and one user store, as in production.

use serde_json::json;
use tether::domain::EndReason;
use tether::ws::handlers;
use tether::ws::protocol::{ServerEvent, ServerFrame};

use crate::helpers::TestApp;

crate::on_redis_stacks!(
    a_session_signed_in_on_one_instance_works_on_the_other,
    logout_on_one_instance_closes_sockets_on_the_other,
    a_role_change_on_one_instance_applies_to_the_next_message_on_the_other,
    chat_crosses_instances,
);

async fn a_session_signed_in_on_one_instance_works_on_the_other(a: TestApp) {
    let b = a.spawn_peer().await;
    let browser = a.login_admin().await;
    assert_eq!(browser.me(&b).await["user"]["username"], "admin");
    let mut socket = browser.socket(&b).await;
    assert!(socket.ask::<handlers::ping::Ping>(json!({})).await.ok);
}

async fn logout_on_one_instance_closes_sockets_on_the_other(a: TestApp) {
    let b = a.spawn_peer().await;
    let browser = a.login_admin().await;
    let other = a.login_admin().await;
    let mut on_b = browser.socket(&b).await;
    let mut other_on_b = other.socket(&b).await;
    assert_eq!(browser.post(&a.url("/api/auth/logout")).await.status(), 204);
    let (code, events) = on_b.closed().await;
    assert_eq!(code, Some(4001));
    assert_eq!(
        events,
        vec![ServerEvent::SessionRevoked {
            reason: EndReason::Logout
        }]
    );
    assert!(other_on_b.ask::<handlers::ping::Ping>(json!({})).await.ok);
}

async fn a_role_change_on_one_instance_applies_to_the_next_message_on_the_other(a: TestApp) {
    let b = a.spawn_peer().await;
    let user = a.login_new_user("nina", &["user"]).await;
    let mut on_b = user.socket(&b).await;
    assert!(!on_b.ask::<handlers::messages::Admin>(json!({})).await.ok);
    // Made through instance A's services; returns once B has applied it.
    a.set_roles("nina", &["user", "messages-admin"]).await;
    let (reply, events) = on_b.request_with_events("messages.admin", json!({})).await;
    assert!(reply.ok, "{reply:?}");
    assert!(
        events.iter().any(|e| matches!(e,
            ServerEvent::PermissionsChanged { permissions }
                if permissions.contains(&"read:admin-messages".to_owned()))),
        "instance B told the socket: {events:?}"
    );
}

async fn chat_crosses_instances(a: TestApp) {
    let b = a.spawn_peer().await;
    let sender = a.login_new_user("olga", &["user"]).await;
    let reader = a.login_new_user("pete", &["user"]).await;
    let mut on_a = sender.socket(&a).await;
    let mut on_b = reader.socket(&b).await;
    assert!(
        on_a.ask::<handlers::chat::Send>(json!({"room": "r1", "text": "across"}))
            .await
            .ok
    );
    match on_b.next_frame().await {
        ServerFrame::Event(ServerEvent::ChatMessage { from, text, .. }) => {
            assert_eq!((from.as_str(), text.as_str()), ("olga", "across"));
        }
        other => panic!("expected chat on instance B, got {other:?}"),
    }
}
