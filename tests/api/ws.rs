//! The authenticated WebSocket, over a real connection.

use serde_json::json;
use tether::domain::EndReason;
use tether::ws::handlers;
use tether::ws::protocol::{ErrorCode, MessageId, ServerEvent, ServerFrame};

use crate::helpers::{connect, Seen, TestApp};

crate::on_every_stack!(
    upgrade_without_a_valid_session_is_401,
    upgrade_from_an_unlisted_origin_is_403,
    hello_is_the_first_frame_and_names_user_and_session,
    built_in_types_reply_and_check_permissions,
    bad_frames_get_an_error_reply_and_the_socket_stays_open,
    a_frame_over_the_size_limit_closes_with_1009,
    logout_closes_every_socket_of_that_session_and_only_those,
    a_role_change_takes_effect_on_the_next_message,
    disabling_a_user_closes_their_sockets,
    chat_reaches_every_socket_allowed_to_read_it,
    a_burst_of_chat_arrives_whole_and_in_order,
    a_close_from_the_client_is_answered_with_a_close,
    after_a_closing_handshake_the_server_ends_the_connection,
);

/// More chat than a socket sends per wake-up (32) queued at once: every
/// message arrives, in order, and the socket still answers its own requests.
/// The burst is the sender's whole message burst (`TETHER_WS_MESSAGE_BURST`).
async fn a_burst_of_chat_arrives_whole_and_in_order(app: TestApp) {
    const BURST: usize = 100;
    let alice = app.login_new_user("alice", &["user"]).await;
    let bob = app.login_new_user("bob", &["user"]).await;
    let mut a = alice.socket(&app).await;
    let mut b = bob.socket(&app).await;
    for i in 0..BURST {
        a.send_text(
            json!({"id": i + 1, "type": "chat.send", "data": {"room": "r", "text": format!("m{i}")}})
                .to_string(),
        )
        .await;
    }
    let mut texts = Vec::new();
    while texts.len() < BURST {
        match b.next_frame().await {
            ServerFrame::Event(ServerEvent::ChatMessage { text, .. }) => texts.push(text),
            other => panic!("expected chat, got {other:?}"),
        }
    }
    let expected: Vec<String> = (0..BURST).map(|i| format!("m{i}")).collect();
    assert_eq!(texts, expected);
    assert!(b.ask::<handlers::ping::Ping>(json!({})).await.ok);
}

async fn a_close_from_the_client_is_answered_with_a_close(app: TestApp) {
    let browser = app.login_admin().await;
    let mut socket = browser.socket(&app).await;
    assert_eq!(socket.close_from_client(1000).await, Some(1000));
    let mut other = browser.socket(&app).await;
    assert_eq!(other.close_from_client(4000).await, Some(4000));
}

/// Whoever starts the closing handshake, the server then closes the TCP
/// connection (RFC 6455 §7.1.1) rather than wait for the client to, so a
/// client that keeps it open holds no file descriptor of ours.
async fn after_a_closing_handshake_the_server_ends_the_connection(app: TestApp) {
    let browser = app.login_admin().await;
    let mut socket = browser.socket(&app).await;
    assert_eq!(socket.close_from_client(1000).await, Some(1000));
    assert!(
        socket.server_ended_tcp().await,
        "connection still open after the client's close"
    );

    let mut revoked = browser.socket(&app).await;
    assert_eq!(
        browser.post(&app.url("/api/auth/logout")).await.status(),
        204
    );
    assert_eq!(revoked.closed().await.0, Some(4001));
    assert!(
        revoked.server_ended_tcp().await,
        "connection still open after the server's close"
    );
}

async fn upgrade_without_a_valid_session_is_401(app: TestApp) {
    let origin = app.origin();
    assert_eq!(connect(&app, None, Some(&origin)).await.err(), Some(401));
    let forged = connect(&app, Some("tether_session=forged"), Some(&origin)).await;
    assert_eq!(forged.err(), Some(401));
}

async fn upgrade_from_an_unlisted_origin_is_403(app: TestApp) {
    let browser = app.login_admin().await;
    let evil = browser.try_socket(&app, Some("https://evil.example")).await;
    assert_eq!(evil.err(), Some(403));
    // The same origin on another port is another origin.
    let other_port = format!("http://127.0.0.1:{}", app.port.wrapping_add(1));
    assert_eq!(
        browser.try_socket(&app, Some(&other_port)).await.err(),
        Some(403)
    );
    // Allowed: the app's own origins, and no Origin at all (non-browser clients).
    let localhost = format!("http://localhost:{}", app.port);
    assert!(browser.try_socket(&app, Some(&localhost)).await.is_ok());
    assert!(browser.try_socket(&app, None).await.is_ok());
}

async fn hello_is_the_first_frame_and_names_user_and_session(app: TestApp) {
    let browser = app.login_admin().await;
    let sid = browser.session_id(&app).await;
    let mut socket = browser.try_socket(&app, Some(&app.origin())).await.unwrap();
    match socket.next_frame().await {
        ServerFrame::Event(ServerEvent::Hello { user, session }) => {
            assert_eq!(user.username, "admin");
            assert_eq!(user.roles, vec!["admin"]);
            assert!(user.permissions.contains(&"read:admin-messages".to_owned()));
            assert_eq!(session.id, sid);
        }
        other => panic!("expected hello, got {other:?}"),
    }
}

async fn built_in_types_reply_and_check_permissions(app: TestApp) {
    let user = app.login_new_user("frank", &["user"]).await;
    let mut socket = user.socket(&app).await;

    let pong = socket.ask::<handlers::ping::Ping>(json!(null)).await;
    assert!(pong.ok);
    assert_eq!(pong.data, Some(json!("pong")));

    let who = socket.ask::<handlers::whoami::WhoAmI>(json!({})).await;
    assert_eq!(who.data.unwrap()["user"]["username"], "frank");

    for kind in ["messages.public", "messages.protected"] {
        let reply = socket.request(kind, json!({})).await;
        assert!(reply.ok, "{kind}");
        assert!(reply.data.unwrap()["text"].is_string());
    }
    let admin = socket.ask::<handlers::messages::Admin>(json!({})).await;
    assert!(!admin.ok);
    let error = admin.error.unwrap();
    assert_eq!(error.code, ErrorCode::Forbidden);
    assert_eq!(error.message, "Permission denied");

    // String ids work too, and come back as given.
    socket.send_text(r#"{"id":"abc","type":"ping"}"#).await;
    match socket.next_frame().await {
        ServerFrame::Reply(reply) => assert_eq!(reply.re, Some(MessageId::Text("abc".into()))),
        other => panic!("expected a reply, got {other:?}"),
    }
}

async fn bad_frames_get_an_error_reply_and_the_socket_stays_open(app: TestApp) {
    let browser = app.login_admin().await;
    let mut socket = browser.socket(&app).await;
    let cases = [
        ("not json at all", None, ErrorCode::BadRequest),
        ("[1,2,3]", None, ErrorCode::BadRequest),
        (r#"{"type":"ping"}"#, None, ErrorCode::BadRequest),
        (r#"{"id":{},"type":"ping"}"#, None, ErrorCode::BadRequest),
        (r#"{"id":1,"type":7}"#, Some(1), ErrorCode::BadRequest),
        (
            r#"{"id":2,"type":"no.such.type"}"#,
            Some(2),
            ErrorCode::UnknownType,
        ),
        (
            r#"{"id":3,"type":"chat.send","data":{"room":"x"}}"#,
            Some(3),
            ErrorCode::BadRequest,
        ),
        (
            r#"{"id":4,"type":"chat.send","data":{"room":"bad room!","text":"hi"}}"#,
            Some(4),
            ErrorCode::BadRequest,
        ),
        (
            r#"{"id":5,"type":"ping","data":"nope"}"#,
            Some(5),
            ErrorCode::BadRequest,
        ),
    ];
    for (text, re, code) in cases {
        socket.send_text(text).await;
        match socket.next_frame().await {
            ServerFrame::Reply(reply) => {
                assert!(!reply.ok, "{text}");
                assert_eq!(
                    reply.re,
                    re.map(|n: u64| MessageId::Number(n.into())),
                    "{text}"
                );
                assert_eq!(reply.error.unwrap().code, code, "{text}");
            }
            other => panic!("expected a reply to {text}, got {other:?}"),
        }
    }
    assert!(
        socket.ask::<handlers::ping::Ping>(json!({})).await.ok,
        "still open"
    );
}

async fn a_frame_over_the_size_limit_closes_with_1009(app: TestApp) {
    let browser = app.login_admin().await;
    let mut socket = browser.socket(&app).await;
    let big = format!(
        r#"{{"id":1,"type":"ping","data":{{"pad":"{}"}}}}"#,
        "x".repeat(70_000)
    );
    socket.send_text(big).await;
    let (code, _) = socket.closed().await;
    assert_eq!(code, Some(1009));
    // A browser fires `onclose`, and reconnects, only once the TCP connection ends.
    assert!(
        socket.server_ended_tcp().await,
        "connection still open after the 1009 close"
    );
}

async fn logout_closes_every_socket_of_that_session_and_only_those(app: TestApp) {
    let laptop = app.login_admin().await;
    let phone = app.login_admin().await;
    let mut tab1 = laptop.socket(&app).await;
    let mut tab2 = laptop.socket(&app).await;
    let mut other_device = phone.socket(&app).await;

    assert_eq!(
        laptop.post(&app.url("/api/auth/logout")).await.status(),
        204
    );
    for tab in [&mut tab1, &mut tab2] {
        let (code, events) = tab.closed().await;
        assert_eq!(code, Some(4001));
        assert_eq!(
            events,
            vec![ServerEvent::SessionRevoked {
                reason: EndReason::Logout
            }]
        );
    }
    assert!(other_device.ask::<handlers::ping::Ping>(json!({})).await.ok);
    // And the logged-out cookie cannot open a new socket.
    assert_eq!(laptop.try_socket(&app, None).await.err(), Some(401));
}

async fn a_role_change_takes_effect_on_the_next_message(app: TestApp) {
    let user = app.login_new_user("grace", &["user"]).await;
    let mut socket = user.socket(&app).await;
    assert!(!socket.ask::<handlers::messages::Admin>(json!({})).await.ok);

    app.set_roles("grace", &["user", "messages-admin"]).await;
    let (reply, events) = socket
        .request_with_events("messages.admin", json!({}))
        .await;
    assert!(reply.ok, "allowed right after the change: {reply:?}");
    assert!(
        events.iter().any(|e| matches!(e,
            ServerEvent::PermissionsChanged { permissions }
                if permissions.contains(&"read:admin-messages".to_owned()))),
        "the socket is told its new permissions: {events:?}"
    );

    app.set_roles("grace", &["user"]).await;
    let reply = socket.ask::<handlers::messages::Admin>(json!({})).await;
    assert_eq!(reply.error.unwrap().code, ErrorCode::Forbidden);
    let me = user.me(&app).await;
    assert_eq!(me["user"]["roles"], json!(["user"]));
}

async fn disabling_a_user_closes_their_sockets(app: TestApp) {
    let user = app.login_new_user("heidi", &["user"]).await;
    let mut socket = user.socket(&app).await;
    tether::users::disable(
        &app.state.db,
        &app.state.sessions,
        &tether::domain::Username::parse("heidi").unwrap(),
    )
    .await
    .unwrap();
    let (code, events) = socket.closed().await;
    assert_eq!(code, Some(4001));
    assert!(matches!(
        events.last(),
        Some(ServerEvent::SessionRevoked { reason }) if *reason == EndReason::Disabled
    ));
    assert_eq!(user.get(&app.url("/api/auth/me")).await.status(), 401);
}

async fn chat_reaches_every_socket_allowed_to_read_it(app: TestApp) {
    let alice = app.login_new_user("alice", &["user"]).await;
    let bob = app.login_new_user("bob", &["user"]).await;
    let mallory = app.login_new_user("mallory", &["messages-admin"]).await;
    let mut a = alice.socket(&app).await;
    let mut b = bob.socket(&app).await;
    let mut m = mallory.socket(&app).await;

    // mallory has no chat:write …
    let denied = m
        .ask::<handlers::chat::Send>(json!({"room": "lobby", "text": "hi"}))
        .await;
    assert_eq!(denied.error.unwrap().code, ErrorCode::Forbidden);

    let sent = a
        .ask::<handlers::chat::Send>(json!({"room": "lobby", "text": "hello bob"}))
        .await;
    assert!(sent.ok, "{sent:?}");
    for socket in [&mut a, &mut b] {
        match socket.next_frame().await {
            ServerFrame::Event(ServerEvent::ChatMessage {
                room, from, text, ..
            }) => {
                assert_eq!(
                    (room.as_str(), from.as_str(), text.as_str()),
                    ("lobby", "alice", "hello bob")
                );
            }
            other => panic!("expected the chat message, got {other:?}"),
        }
    }
    // … and no chat:read: the next thing mallory sees is her own reply.
    let pong = m.ask::<handlers::ping::Ping>(json!({})).await;
    assert!(pong.ok);
    match tokio::time::timeout(std::time::Duration::from_millis(200), m.next()).await {
        Err(_) => {}
        Ok(Seen::Frame(f)) => panic!("mallory must not see chat: {f:?}"),
        Ok(Seen::Closed(c)) => panic!("closed: {c:?}"),
    }
}
