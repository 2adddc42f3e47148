//! Issue 17, metrics: `GET /metrics` on its own listener (`TETHER_METRICS_BIND`),
//! parsed with a real exposition-format parser, moving for real actions;
//! `GET /api/admin/stats`, its permission and its sums over instances.

use std::time::Duration;

use prometheus_parse::{Sample, Scrape, Value as Metric};
use serde_json::{json, Value};
use tether::ws::handlers::{messages, ping};

use crate::helpers::{spawn_app_with, Stack, TestApp, PATIENCE};

const METRICS_ON: (&str, &str) = ("TETHER_METRICS_BIND", "127.0.0.1:0");

async fn spawn(test: &str, stack: Stack) -> Option<TestApp> {
    spawn_app_with(test, stack, &[METRICS_ON]).await
}

async fn metrics_body(app: &TestApp) -> reqwest::Response {
    let port = app.metrics_port.expect("metrics listener is on");
    reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .expect("metrics listener answers")
}

pub(crate) async fn scrape(app: &TestApp) -> Scrape {
    let text = metrics_body(app).await.text().await.expect("metrics body");
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("valid exposition format")
}

fn matches(sample: &Sample, name: &str, labels: &[(&str, &str)]) -> bool {
    sample.metric == name && labels.iter().all(|(k, v)| sample.labels.get(k) == Some(*v))
}

/// The sum of the samples of `name` with these labels (0 if none).
pub(crate) fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| matches(s, name, labels))
        .map(|s| match s.value {
            Metric::Counter(v) | Metric::Gauge(v) | Metric::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

/// Waits (up to `PATIENCE`) until `name{labels}` reaches `at_least`.
async fn until_reaches(app: &TestApp, name: &str, labels: &[(&str, &str)], at_least: f64) -> f64 {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let now = value(&scrape(app).await, name, labels);
        if now >= at_least || tokio::time::Instant::now() >= deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_on_their_own_listener_only() {
    let test = "metrics::metrics_are_served_on_their_own_listener_only";
    let Some(app) = spawn(test, Stack::SqliteInProcess).await else {
        return;
    };
    let res = metrics_body(&app).await;
    assert_eq!(res.status(), 200);
    let kind = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    let text = res.text().await.unwrap();
    let parsed = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        value(&parsed, "tether_build_info", &[("version", version)]),
        1.0
    );
    for family in ["process_resident_memory_bytes", "process_open_fds"] {
        assert!(value(&parsed, family, &[]) > 0.0, "{family} missing");
    }
    // Whole seconds so far (the crate rounds down): present, maybe still 0.
    let cpu = "process_cpu_seconds_total";
    assert!(
        parsed.samples.iter().any(|s| s.metric == cpu),
        "{cpu} missing"
    );
    for family in [
        "tether_ws_connections",
        "tether_ws_upgrades_total",
        "tether_ws_messages_total",
        "tether_logins_total",
        "tether_sessions_ended_total",
        "tether_revocation_close_seconds",
        "tether_redis_errors_total",
    ] {
        assert!(parsed.docs.contains_key(family), "{family} not exported");
    }

    // Not on the main listener; nothing else on the metrics one.
    assert_eq!(
        reqwest::get(app.url("/metrics")).await.unwrap().status(),
        404
    );
    let port = app.metrics_port.unwrap();
    let other = reqwest::get(format!("http://127.0.0.1:{port}/api/auth/me"))
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_metrics_bind_there_is_no_metrics_listener() {
    let test = "metrics::without_metrics_bind_there_is_no_metrics_listener";
    let Some(app) = spawn_app_with(test, Stack::SqliteInProcess, &[]).await else {
        return;
    };
    assert_eq!(app.metrics_port, None);
    assert_eq!(
        reqwest::get(app.url("/metrics")).await.unwrap().status(),
        404
    );
}

/// Sign-ins, upgrades, messages, a revoke: each moves its counter by exactly
/// what was done (the app is this test's own).
async fn counters_move_for_real_actions(app: TestApp) {
    let login = "tether_logins_total";
    let before = scrape(&app).await;
    assert_eq!(value(&before, login, &[("outcome", "success")]), 0.0);

    assert_eq!(
        app.try_login("admin", "wrong-password").await.err(),
        Some(401)
    );
    let admin = app.login_admin().await;
    let bob = app.login_new_user("bob", &["user"]).await;
    let after = scrape(&app).await;
    let logins = |outcome| {
        value(
            &after,
            login,
            &[("provider", "password"), ("outcome", outcome)],
        )
    };
    assert_eq!(logins("success"), 2.0);
    assert_eq!(logins("invalid_credentials"), 1.0);
    let me = [
        ("route", "/api/auth/login"),
        ("method", "POST"),
        ("status", "200"),
    ];
    assert_eq!(value(&after, "tether_http_requests_total", &me), 2.0);
    let timed = [("route", "/api/auth/login"), ("method", "POST")];
    assert_eq!(
        value(&after, "tether_http_request_duration_seconds_count", &timed),
        3.0
    );

    // Upgrades: one refused without a session, one from a foreign origin, one open.
    let anonymous = crate::helpers::connect(&app, None, None).await;
    assert_eq!(anonymous.err(), Some(401));
    assert_eq!(
        bob.try_socket(&app, Some("https://evil.example"))
            .await
            .err(),
        Some(403)
    );
    let mut socket = bob.socket(&app).await;
    let upgrades = scrape(&app).await;
    let upgrade = |outcome| {
        value(
            &upgrades,
            "tether_ws_upgrades_total",
            &[("outcome", outcome)],
        )
    };
    assert_eq!(upgrade("ok"), 1.0);
    assert_eq!(upgrade("unauthenticated"), 1.0);
    assert_eq!(upgrade("forbidden_origin"), 1.0);
    assert_eq!(value(&upgrades, "tether_ws_connections", &[]), 1.0);

    // Messages: ok, forbidden, unknown type, unreadable.
    assert!(socket.ask::<ping::Ping>(json!({})).await.ok);
    assert!(!socket.ask::<messages::Admin>(json!({})).await.ok);
    assert!(!socket.request("no.such.type", json!({})).await.ok);
    socket.send_text("not json").await;
    let _ = socket.next_frame().await;
    let messages = scrape(&app).await;
    let message = |kind, outcome| {
        value(
            &messages,
            "tether_ws_messages_total",
            &[("type", kind), ("outcome", outcome)],
        )
    };
    assert_eq!(message("ping", "ok"), 1.0);
    assert_eq!(message("messages.admin", "forbidden"), 1.0);
    assert_eq!(message("unknown", "unknown_type"), 1.0);
    assert_eq!(message("unknown", "bad_request"), 1.0);

    // A revoke: counted once by reason, and the socket's close timed.
    let sid = bob.session_id(&app).await;
    let res = admin
        .delete(&app.url(&format!("/api/admin/sessions/{sid}")))
        .await;
    assert_eq!(res.status(), 204);
    let (code, _) = socket.closed().await;
    assert_eq!(code, Some(4001));
    let ended = [("reason", "admin")];
    assert_eq!(
        until_reaches(&app, "tether_sessions_ended_total", &ended, 1.0).await,
        1.0
    );
    let closes = "tether_revocation_close_seconds_count";
    assert_eq!(until_reaches(&app, closes, &[], 1.0).await, 1.0);
    assert_eq!(
        until_reaches(&app, "tether_ws_connections", &[], 0.0).await,
        0.0
    );
    // A logout too; each counted once, not again by the keyspace notice or
    // another path.
    assert_eq!(admin.post(&app.url("/api/auth/logout")).await.status(), 204);
    let logout = [("reason", "logout")];
    assert_eq!(
        until_reaches(&app, "tether_sessions_ended_total", &logout, 1.0).await,
        1.0
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let last = scrape(&app).await;
    assert_eq!(value(&last, "tether_sessions_ended_total", &[]), 2.0);
}

/// The in-process store counts an expiry when it finds one (here: the
/// socket's own idle deadline, 1 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiry_is_counted_in_process() {
    let test = "metrics::an_expiry_is_counted_in_process";
    let idle = ("TETHER_SESSION_IDLE_SECS", "1");
    let notice = ("TETHER_SESSION_EXPIRING_NOTICE_SECS", "1");
    let Some(app) = spawn_app_with(test, Stack::SqliteInProcess, &[METRICS_ON, idle, notice]).await
    else {
        return;
    };
    let bob = app.login_new_user("bob", &["user"]).await;
    let mut socket = bob.socket(&app).await;
    let (code, _) = socket.closed().await;
    assert_eq!(code, Some(4001));
    let expired = [("reason", "expired")];
    assert_eq!(
        until_reaches(&app, "tether_sessions_ended_total", &expired, 1.0).await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_move_for_real_actions_in_process() {
    let test = "metrics::counters_move_for_real_actions_in_process";
    if let Some(app) = spawn(test, Stack::SqliteInProcess).await {
        counters_move_for_real_actions(app).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_move_for_real_actions_on_redis() {
    let test = "metrics::counters_move_for_real_actions_on_redis";
    if let Some(app) = spawn(test, Stack::SqliteRedis).await {
        counters_move_for_real_actions(app).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_move_for_real_actions_on_postgres_and_redis() {
    let test = "metrics::counters_move_for_real_actions_on_postgres_and_redis";
    if let Some(app) = spawn(test, Stack::PostgresRedis).await {
        counters_move_for_real_actions(app).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_redis_is_counted() {
    let test = "metrics::a_failing_redis_is_counted";
    let Some((mut redis, app)) = crate::test_redis::OwnRedis::with_app(test, &[METRICS_ON]).await
    else {
        return;
    };
    let browser = app.login_admin().await;
    let before = value(&scrape(&app).await, "tether_redis_errors_total", &[]);
    redis.stop();
    assert_eq!(browser.get(&app.url("/api/auth/me")).await.status(), 503);
    let after = value(&scrape(&app).await, "tether_redis_errors_total", &[]);
    assert!(after > before, "{before} -> {after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_need_admin_sessions() {
    let test = "metrics::stats_need_admin_sessions";
    let Some(app) = spawn(test, Stack::SqliteInProcess).await else {
        return;
    };
    let anonymous = reqwest::get(app.url("/api/admin/stats")).await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let body: Value = anonymous.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthenticated");
    let bob = app.login_new_user("bob", &["user"]).await;
    let res = bob.get(&app.url("/api/admin/stats")).await;
    assert_eq!(res.status(), 403);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden");

    let admin = app.login_admin().await;
    let stats = stats(&app, &admin).await;
    assert_eq!(stats["interval_secs"], 1);
    assert_eq!(stats["seconds"], 900);
    assert_eq!(stats["instances"], 1);
    assert_eq!(stats["sockets"].as_array().unwrap().len(), 900);
    for (series, names) in [
        (
            "messages",
            &[
                "ok",
                "forbidden",
                "bad_request",
                "unknown_type",
                "rate_limited",
                "unavailable",
            ][..],
        ),
        (
            "logins",
            &[
                "success",
                "invalid_credentials",
                "rate_limited",
                "unavailable",
            ][..],
        ),
        (
            "sessions_ended",
            &[
                "logout",
                "admin",
                "expired",
                "password_changed",
                "disabled",
                "deleted",
            ][..],
        ),
    ] {
        for name in names {
            let points = stats[series][name].as_array();
            assert_eq!(points.map(Vec::len), Some(900), "{series}.{name}");
        }
    }
}

async fn stats(app: &TestApp, admin: &crate::helpers::Browser) -> Value {
    let res = admin.get(&app.url("/api/admin/stats")).await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

fn total(series: &Value) -> u64 {
    series
        .as_array()
        .expect("a series")
        .iter()
        .map(|v| v.as_u64().unwrap())
        .sum()
}

fn last(series: &Value) -> u64 {
    series.as_array().unwrap().last().unwrap().as_u64().unwrap()
}

/// Each instance publishes its own seconds; either instance answers with
/// their sum (and events cross the bus, counted on both sides).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_are_summed_over_instances() {
    let test = "metrics::stats_are_summed_over_instances";
    let Some(a) = spawn(test, Stack::SqliteRedis).await else {
        return;
    };
    let b = a.spawn_peer().await;
    let alice_password = a.create_user("alice", &["user"]).await;
    let alice_on_a = a.login("alice", &alice_password).await;
    let alice_on_b = b.login("alice", &alice_password).await;
    let admin = a.login_admin().await;
    let mut on_a = alice_on_a.socket(&a).await;
    let mut on_b = alice_on_b.socket(&b).await;
    assert!(on_a.ask::<ping::Ping>(json!({})).await.ok);
    assert!(on_b.ask::<ping::Ping>(json!({})).await.ok);
    assert!(
        on_a.request("chat.send", json!({"room": "r", "text": "hi"}))
            .await
            .ok
    );

    // A saw two sign-ins and two messages, B one and one: the sums are 3 and 3.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(6);
    let summed = loop {
        let s = stats(&b, &admin).await;
        let done = total(&s["logins"]["success"]) == 3
            && total(&s["messages"]["ok"]) == 3
            && last(&s["sockets"]) == 2;
        if done || tokio::time::Instant::now() >= deadline {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(summed["instances"], 2);
    assert_eq!(total(&summed["logins"]["success"]), 3);
    assert_eq!(total(&summed["messages"]["ok"]), 3);
    assert_eq!(last(&summed["sockets"]), 2);

    let chat = [("type", "chat")];
    let sent = value(
        &scrape(&a).await,
        "tether_bus_events_total",
        &[chat[0], ("direction", "out")],
    );
    assert_eq!(sent, 1.0);
    let received = until_reaches(
        &b,
        "tether_bus_events_total",
        &[chat[0], ("direction", "in")],
        1.0,
    )
    .await;
    assert_eq!(received, 1.0);
}
