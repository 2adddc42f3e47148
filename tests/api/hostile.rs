//! Hostile clients cannot beat the session promises (issue 13): racing the
//! sign-in throttle, locking someone else out, flooding the hash queue,
//! opening sockets without end, flooding messages, not reading, and a
//! server shutdown that clients can tell from a crash.

use std::{net::IpAddr, time::Duration};

use futures_util::{future::join_all, SinkExt as _};
use serde_json::{json, Value};
use tether::ws::{handlers, protocol::ErrorCode};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest as _, Message};

use crate::helpers::{spawn_app_with, Browser, Seen, Stack, TestApp, ADMIN_PASSWORD, PATIENCE};

// ---------------------------------------------------------------------------
// Sign-in throttle

/// A client whose connections come from `from` (any 127.0.0.0/8 address
/// reaches the server on 127.0.0.1).
fn client_from(from: &str) -> reqwest::Client {
    let ip: IpAddr = from.parse().unwrap();
    reqwest::Client::builder()
        .local_address(ip)
        .build()
        .unwrap()
}

async fn sign_in(client: &reqwest::Client, app: &TestApp, name: &str, password: &str) -> u16 {
    client
        .post(app.url("/api/auth/login"))
        .json(&json!({"username": name, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

crate::on_every_stack!(
    concurrent_wrong_guesses_reach_the_password_check_at_most_the_limit,
    the_owner_signs_in_from_elsewhere_while_the_guesser_is_locked_out,
    a_stolen_session_cannot_guess_the_current_password,
);

async fn concurrent_wrong_guesses_reach_the_password_check_at_most_the_limit(app: TestApp) {
    let client = client_from("127.0.0.1");
    let guesses = (0..30).map(|_| sign_in(&client, &app, "admin", "wrong-guess"));
    let statuses = join_all(guesses).await;
    let checked = statuses.iter().filter(|&&s| s == 401).count();
    let refused = statuses.iter().filter(|&&s| s == 429).count();
    assert_eq!(checked + refused, 30, "{statuses:?}");
    assert!(
        checked <= 5,
        "{checked} guesses reached argon2: {statuses:?}"
    );
    assert!(checked >= 1, "{statuses:?}");
}

async fn the_owner_signs_in_from_elsewhere_while_the_guesser_is_locked_out(app: TestApp) {
    let attacker = client_from("127.0.0.1");
    for _ in 0..5 {
        assert_eq!(sign_in(&attacker, &app, "Admin", "wrong-guess").await, 401);
    }
    assert_eq!(sign_in(&attacker, &app, "admin", ADMIN_PASSWORD).await, 429);
    let owner = client_from("127.0.0.2");
    assert_eq!(sign_in(&owner, &app, "admin", ADMIN_PASSWORD).await, 200);
    // The owner's success does not unlock the guesser.
    assert_eq!(sign_in(&attacker, &app, "admin", ADMIN_PASSWORD).await, 429);
}

async fn a_stolen_session_cannot_guess_the_current_password(app: TestApp) {
    let password = app.create_user("carol", &["user"]).await;
    let thief = app.login("carol", &password).await;
    let change = |current: &'static str| {
        let (thief, url) = (&thief, app.url("/api/auth/password"));
        async move {
            thief
                .put_json(
                    &url,
                    json!({"current_password": current, "new_password": "stolen-new-password"}),
                )
                .await
                .status()
                .as_u16()
        }
    };
    for _ in 0..5 {
        assert_eq!(change("a-wrong-guess").await, 400);
    }
    assert_eq!(change("a-wrong-guess").await, 429);
    // The limit is for this user from this address: the owner signs in elsewhere.
    let owner = client_from("127.0.0.3");
    assert_eq!(sign_in(&owner, &app, "carol", &password).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_username_wide_ceiling_holds_across_addresses() {
    let name = "hostile::the_username_wide_ceiling_holds_across_addresses";
    let extra = [
        ("TETHER_LOGIN_MAX_FAILURES", "2"),
        ("TETHER_LOGIN_MAX_FAILURES_PER_USER", "5"),
    ];
    let Some(app) = spawn_app_with(name, Stack::SqliteInProcess, &extra).await else {
        return;
    };
    let mut failures = 0;
    for host in 2..=4 {
        let client = client_from(&format!("127.0.0.{host}"));
        while sign_in(&client, &app, "admin", "wrong-guess").await == 401 {
            failures += 1;
        }
    }
    assert_eq!(failures, 5, "the ceiling, not 3 × 2");
    let owner = client_from("127.0.0.9");
    assert_eq!(sign_in(&owner, &app, "admin", ADMIN_PASSWORD).await, 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_address_wide_limit_holds_across_usernames() {
    let name = "hostile::the_address_wide_limit_holds_across_usernames";
    let extra = [("TETHER_LOGIN_MAX_FAILURES_PER_IP", "4")];
    let Some(app) = spawn_app_with(name, Stack::SqliteRedis, &extra).await else {
        return;
    };
    let sprayer = client_from("127.0.0.5");
    for i in 0..4 {
        let user = format!("victim{i}");
        assert_eq!(sign_in(&sprayer, &app, &user, "wrong-guess").await, 401);
    }
    assert_eq!(sign_in(&sprayer, &app, "victim9", "wrong-guess").await, 429);
    assert_eq!(sign_in(&sprayer, &app, "admin", ADMIN_PASSWORD).await, 429);
    let elsewhere = client_from("127.0.0.6");
    assert_eq!(
        sign_in(&elsewhere, &app, "admin", ADMIN_PASSWORD).await,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_hash_queue_answers_503_at_once() {
    let name = "hostile::a_full_hash_queue_answers_503_at_once";
    let extra = [
        ("TETHER_MAX_CONCURRENT_HASHES", "1"),
        ("TETHER_MAX_QUEUED_HASHES", "1"),
        ("TETHER_LOGIN_MAX_FAILURES_PER_IP", "1000"),
    ];
    let Some(app) = spawn_app_with(name, Stack::SqliteInProcess, &extra).await else {
        return;
    };
    let client = client_from("127.0.0.1");
    let attempts = (0..12).map(|i| {
        let client = client.clone();
        let url = app.url("/api/auth/login");
        async move {
            let res = client
                .post(url)
                .json(&json!({"username": format!("user{i}"), "password": "some-guess"}))
                .send()
                .await
                .unwrap();
            let retry_after = res.headers().get("retry-after").is_some();
            let status = res.status().as_u16();
            let body: Value = res.json().await.unwrap();
            (status, retry_after, body)
        }
    });
    let answers = join_all(attempts).await;
    let busy: Vec<_> = answers.iter().filter(|(s, _, _)| *s == 503).collect();
    assert!(!busy.is_empty(), "{answers:?}");
    for (_, retry_after, body) in &busy {
        assert!(*retry_after);
        assert_eq!(body["error"]["code"], "unavailable");
    }
    assert!(answers.iter().all(|(s, _, _)| *s == 401 || *s == 503));
    // Turned away, not counted: the same names can try again.
    let again = sign_in(&client, &app, "user0", "some-guess").await;
    assert_eq!(again, 401);
}

// ---------------------------------------------------------------------------
// Socket caps and message rate

async fn refused_upgrade(browser: &Browser, app: &TestApp) -> u16 {
    browser
        .try_socket(app, Some(&app.origin()))
        .await
        .err()
        .expect("the upgrade is refused")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_and_a_user_have_a_socket_cap_and_a_closed_socket_frees_its_slot() {
    let name = "hostile::a_session_and_a_user_have_a_socket_cap_and_a_closed_socket_frees_its_slot";
    let extra = [
        ("TETHER_WS_MAX_PER_SESSION", "2"),
        ("TETHER_WS_MAX_PER_USER", "3"),
    ];
    let Some(app) = spawn_app_with(name, Stack::SqliteInProcess, &extra).await else {
        return;
    };
    let password = app.create_user("dave", &["user"]).await;
    let phone = app.login("dave", &password).await;
    let mut first = phone.socket(&app).await;
    let _second = phone.socket(&app).await;
    assert_eq!(refused_upgrade(&phone, &app).await, 429);
    let res = phone.get(&app.url("/ws")).await;
    // A plain GET is not an upgrade, but the cap is checked first all the same.
    assert_eq!(res.status(), 429);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(body["error"]["message"], "Too many open connections");

    let laptop = app.login("dave", &password).await;
    let _third = laptop.socket(&app).await;
    assert_eq!(refused_upgrade(&laptop, &app).await, 429, "the user's cap");
    assert_eq!(first.close_from_client(1000).await, Some(1000));
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while laptop.try_socket(&app, Some(&app.origin())).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot was not freed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_user_cap_counts_sockets_on_other_instances() {
    let name = "hostile::the_user_cap_counts_sockets_on_other_instances";
    let extra = [
        ("TETHER_WS_MAX_PER_SESSION", "5"),
        ("TETHER_WS_MAX_PER_USER", "3"),
    ];
    let Some(a) = spawn_app_with(name, Stack::SqliteRedis, &extra).await else {
        return;
    };
    let b = a.spawn_peer().await;
    let password = a.create_user("erin", &["user"]).await;
    let erin = a.login("erin", &password).await;
    let _on_a = [erin.socket(&a).await, erin.socket(&a).await];
    // B learns of A's sockets through the census (a refresh or two).
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut held_on_b = Vec::new();
    loop {
        match erin.try_socket(&b, Some(&b.origin())).await {
            Ok(socket) => held_on_b.push(socket),
            Err(status) => {
                assert_eq!(status, 429);
                break;
            }
        }
        assert!(
            held_on_b.len() <= 3 && tokio::time::Instant::now() < deadline,
            "B never counted A's sockets"
        );
        if held_on_b.len() == 1 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    assert!(held_on_b.len() <= 1, "{} sockets on B", held_on_b.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_is_served_then_messages_are_refused_with_rate_limited() {
    let name = "hostile::a_burst_is_served_then_messages_are_refused_with_rate_limited";
    let extra = [
        ("TETHER_WS_MESSAGES_PER_SEC", "1"),
        ("TETHER_WS_MESSAGE_BURST", "5"),
    ];
    let Some(app) = spawn_app_with(name, Stack::SqliteInProcess, &extra).await else {
        return;
    };
    let admin = app.login_admin().await;
    let mut socket = admin.socket(&app).await;
    let mut served = 0;
    let mut refused = 0;
    for _ in 0..12 {
        let reply = socket.ask::<handlers::ping::Ping>(json!({})).await;
        if reply.ok {
            served += 1;
        } else {
            let error = reply.error.expect("an error body");
            assert_eq!(error.code, ErrorCode::RateLimited);
            assert_eq!(error.message, "Too many messages");
            refused += 1;
        }
    }
    assert!((5..=6).contains(&served), "{served} served");
    assert_eq!(served + refused, 12);
    // Pings and pongs do not count: the heartbeat never uses the bucket.
    socket.send_ping().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(socket.ask::<handlers::ping::Ping>(json!({})).await.ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sustained_flood_is_closed_with_1008() {
    let name = "hostile::a_sustained_flood_is_closed_with_1008";
    let extra = [
        ("TETHER_WS_MESSAGES_PER_SEC", "1"),
        ("TETHER_WS_MESSAGE_BURST", "1"),
    ];
    let Some(app) = spawn_app_with(name, Stack::SqliteInProcess, &extra).await else {
        return;
    };
    let admin = app.login_admin().await;
    let mut socket = admin.socket(&app).await;
    let started = tokio::time::Instant::now();
    let limit = tether::ws::rate::CLOSE_AFTER + PATIENCE;
    loop {
        assert!(started.elapsed() < limit, "still open after {limit:?}");
        socket.send_text(r#"{"id":1,"type":"ping"}"#).await;
        match socket.next_within(Duration::from_millis(100)).await {
            Some(Seen::Closed(code)) => {
                assert_eq!(code, Some(1008));
                break;
            }
            Some(Seen::Frame(_)) | None => {}
        }
    }
    assert!(started.elapsed() >= tether::ws::rate::CLOSE_AFTER);
}

// ---------------------------------------------------------------------------
// Clients that do not read

/// The server's established TCP connection from `client_port` to
/// `server_port`, as the kernel sees it (`ss`): its send queue in bytes, or
/// `None` if there is no such connection.
fn server_send_queue(server_port: u16, client_port: u16) -> Option<u64> {
    let out = std::process::Command::new("ss")
        .args(["-Htn", "state", "established"])
        .arg(format!(
            "( sport = :{server_port} and dport = :{client_port} )"
        ))
        .output()
        .expect("ss (iproute2) runs");
    let out = String::from_utf8_lossy(&out.stdout);
    // Columns: Recv-Q Send-Q Local Peer.
    let line = out.lines().next()?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn server_holds_connection(server_port: u16, client_port: u16) -> bool {
    server_send_queue(server_port, client_port).is_some()
}

/// A WebSocket whose client has a 4 KiB receive buffer and never reads;
/// returns the sink to write with and the client's port.
async fn socket_that_never_reads(
    app: &TestApp,
    cookie: &str,
) -> (
    futures_util::stream::SplitSink<
        tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
        Message,
    >,
    u16,
) {
    use futures_util::StreamExt as _;
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], app.port).into();
    socket.connect(&addr.into()).unwrap();
    socket.set_nonblocking(true).unwrap();
    let tcp = tokio::net::TcpStream::from_std(socket.into()).unwrap();
    let client_port = tcp.local_addr().unwrap().port();
    let mut request = app.ws_url().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Cookie", cookie.parse().unwrap());
    request
        .headers_mut()
        .insert("Origin", app.origin().parse().unwrap());
    let (stream, _) = tokio_tungstenite::client_async(request, tcp).await.unwrap();
    let (sink, never_read) = stream.split();
    // Keep the reading half alive, unread, for as long as the sink lives.
    std::mem::forget(never_read);
    (sink, client_port)
}

/// Sends requests whose replies the client never reads, in the background.
fn flood(
    mut sink: futures_util::stream::SplitSink<
        tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
        Message,
    >,
) {
    tokio::spawn(async move {
        for id in 0..20_000 {
            let frame = json!({"id": id, "type": "whoami"}).to_string();
            if sink.send(Message::text(frame)).await.is_err() {
                return;
            }
        }
    });
}

async fn until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const FAST_SENDS: [(&str, &str); 3] = [
    ("TETHER_WS_SEND_TIMEOUT_SECS", "1"),
    ("TETHER_WS_MESSAGES_PER_SEC", "1000000"),
    ("TETHER_WS_MESSAGE_BURST", "1000000"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_dropped_after_the_send_deadline() {
    let name = "hostile::a_client_that_never_reads_is_dropped_after_the_send_deadline";
    let Some(app) = spawn_app_with(name, Stack::SqliteInProcess, &FAST_SENDS).await else {
        return;
    };
    let admin = app.login_admin().await;
    let (sink, client_port) = socket_that_never_reads(&app, &admin.cookie).await;
    until("the socket registers", PATIENCE, || {
        app.state.hub.socket_count() == 1
    })
    .await;
    flood(sink);
    let limit = Duration::from_secs(1) + PATIENCE;
    until("the socket's task ends", limit, || {
        app.state.hub.socket_count() == 0
    })
    .await;
    until("the server drops the TCP connection", limit, || {
        !server_holds_connection(app.port, client_port)
    })
    .await;
    // The server itself is fine.
    assert_eq!(admin.me(&app).await["user"]["username"], "admin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_client_that_is_revoked_loses_its_tcp_connection_within_the_deadline() {
    let name =
        "hostile::a_stuck_client_that_is_revoked_loses_its_tcp_connection_within_the_deadline";
    let mut extra = FAST_SENDS;
    extra[0].1 = "3";
    let Some(app) = spawn_app_with(name, Stack::SqliteRedis, &extra).await else {
        return;
    };
    let password = app.create_user("frank", &["user"]).await;
    let frank = app.login("frank", &password).await;
    let sid = frank.session_id(&app).await;
    let (sink, client_port) = socket_that_never_reads(&app, &frank.cookie).await;
    flood(sink);
    // Stuck: the server's send queue is full and stays so (every buffer
    // between the socket's task and the client is full, so the task itself
    // waits in a send and cannot act on the revocation).
    let mut last = 0;
    let mut steady = 0;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while steady < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the socket never got stuck"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        let queued = server_send_queue(app.port, client_port).unwrap_or(0);
        steady = if queued > 0 && queued == last {
            steady + 1
        } else {
            0
        };
        last = queued;
    }
    let admin = app.login_admin().await;
    let revoked = admin
        .delete(&app.url(&format!("/api/admin/sessions/{sid}")))
        .await;
    assert_eq!(revoked.status(), 204);
    let limit = Duration::from_secs(3) + PATIENCE;
    until("the server drops the TCP connection", limit, || {
        !server_holds_connection(app.port, client_port)
    })
    .await;
    assert_eq!(app.state.hub.socket_count(), 0);
}

// ---------------------------------------------------------------------------
// Graceful shutdown, on the real binary

struct Server {
    child: std::process::Child,
    port: u16,
}

impl Server {
    fn start(app: &TestApp, port: u16) -> Server {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_tether"))
            .arg("serve")
            .env_clear()
            .envs(app.env())
            .env("TETHER_BIND", format!("127.0.0.1:{port}"))
            .env("TETHER_SHUTDOWN_GRACE_SECS", "5")
            .env("RUST_LOG", "warn")
            .current_dir(std::env::temp_dir())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("run tether");
        Server { child, port }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn ready(&self) {
        let deadline = tokio::time::Instant::now() + PATIENCE * 2;
        while reqwest::get(self.url("/healthz")).await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "tether did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_every_socket_with_1001_and_the_session_survives_a_restart() {
    use futures_util::StreamExt as _;
    let name = "hostile::sigterm_closes_every_socket_with_1001_and_the_session_survives_a_restart";
    // Only for its stores and settings: the real binary runs beside it.
    let Some(app) = spawn_app_with(name, Stack::SqliteRedis, &[]).await else {
        return;
    };
    let port = free_port();
    let mut server = Server::start(&app, port);
    server.ready().await;
    let login = reqwest::Client::new()
        .post(server.url("/api/auth/login"))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let cookie = crate::helpers::session_cookie(&login).unwrap();
    let mut sockets = Vec::new();
    for _ in 0..2 {
        let mut request = format!("ws://127.0.0.1:{port}/ws")
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("Cookie", cookie.parse().unwrap());
        let (socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        sockets.push(socket);
    }

    let status = std::process::Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    for socket in &mut sockets {
        let code = tokio::time::timeout(PATIENCE, async {
            while let Some(message) = socket.next().await {
                if let Ok(Message::Close(frame)) = message {
                    return frame.map(|f| u16::from(f.code));
                }
            }
            None
        })
        .await
        .expect("a close frame in time");
        assert_eq!(code, Some(1001));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5) + PATIENCE;
    let exit = loop {
        if let Some(exit) = server.child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "tether did not exit"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "{exit:?}");

    let restarted = Server::start(&app, port);
    restarted.ready().await;
    let me = reqwest::Client::new()
        .get(restarted.url("/api/auth/me"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200, "the Redis session outlives the server");
}

// ---------------------------------------------------------------------------
// The frame reader and the dispatcher under arbitrary input

/// Frames of every shape: well-formed ones for real and unknown types,
/// JSON of the wrong shape, and text that is not JSON at all.
fn arbitrary_frame() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let kind = prop_oneof![
        Just("ping".to_owned()),
        Just("whoami".to_owned()),
        Just("messages.admin".to_owned()),
        Just("chat.send".to_owned()),
        Just("session.refresh".to_owned()),
        "[a-z.]{0,12}",
    ];
    let data = prop_oneof![
        Just(json!({})),
        Just(json!({"room": "r", "text": "hi"})),
        Just(json!({"room": "", "text": ""})),
        Just(json!(null)),
        Just(json!([1, 2])),
        "\\PC{0,16}".prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
    ];
    let id = prop_oneof![
        any::<u32>().prop_map(Value::from),
        "[a-z0-9]{0,8}".prop_map(Value::from),
        Just(Value::Null),
        Just(json!({"nested": true})),
    ];
    prop_oneof![
        (id, kind, data).prop_map(|(id, kind, data)| {
            json!({"id": id, "type": kind, "data": data}).to_string()
        }),
        "\\PC{0,40}",
        Just(String::new()),
        Just("[]".to_owned()),
        Just("{\"id\":1,\"type\":\"ping\"".to_owned()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arbitrary_frames_each_get_one_reply_and_never_close_the_socket() {
    use proptest::strategy::{Strategy as _, ValueTree as _};
    let name = "hostile::arbitrary_frames_each_get_one_reply_and_never_close_the_socket";
    let extra = [
        ("TETHER_WS_MESSAGES_PER_SEC", "1000000"),
        ("TETHER_WS_MESSAGE_BURST", "1000000"),
    ];
    let Some(app) = spawn_app_with(name, Stack::SqliteInProcess, &extra).await else {
        return;
    };
    let admin = app.login_admin().await;
    let mut socket = admin.socket(&app).await;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = arbitrary_frame();
    for _ in 0..300 {
        let frame = strategy.new_tree(&mut runner).unwrap().current();
        socket.send_text(frame.clone()).await;
        loop {
            match socket.next().await {
                Seen::Frame(tether::ws::protocol::ServerFrame::Reply(_)) => break,
                Seen::Frame(tether::ws::protocol::ServerFrame::Event(_)) => continue,
                Seen::Closed(code) => panic!("{frame:?} closed the socket ({code:?})"),
            }
        }
    }
    assert!(socket.ask::<handlers::ping::Ping>(json!({})).await.ok);
}
