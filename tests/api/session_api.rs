//! Listing and ending sessions over REST: one's own devices, and an admin's view.

use std::time::Duration;

use reqwest::header::{COOKIE, USER_AGENT};
use serde_json::{json, Value};
use tether::domain::EndReason;
use tether::ws::handlers;
use tether::ws::protocol::ServerEvent;

use crate::helpers::{spawn_app_with, Browser, Stack, TestApp, PATIENCE};

crate::on_every_stack!(
    my_sessions_show_ip_agent_and_live_sockets_with_the_current_one_marked,
    signing_out_one_device_closes_only_its_sockets,
    signing_out_everywhere_else_keeps_this_session,
    admins_list_sessions_by_user_and_page,
    admins_end_one_session_or_all_of_a_users,
);

async fn login_as(app: &TestApp, name: &str, password: &str, agent: &str) -> Browser {
    let http = reqwest::Client::new();
    let res = http
        .post(app.url("/api/auth/login"))
        .header(USER_AGENT, agent)
        .json(&json!({"username": name, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    Browser {
        http,
        cookie: crate::helpers::session_cookie(&res).unwrap(),
    }
}

async fn get_json(browser: &Browser, url: &str) -> (u16, Value) {
    let res = browser.get(url).await;
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

async fn delete(browser: &Browser, url: &str) -> reqwest::Response {
    browser
        .http
        .delete(url)
        .header(COOKIE, &browser.cookie)
        .send()
        .await
        .unwrap()
}

/// Polls `url` until `done` holds (socket counts are published asynchronously).
async fn eventually(browser: &Browser, url: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (_, body) = get_json(browser, url).await;
        if done(&body) || tokio::time::Instant::now() > deadline {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn sockets_of(body: &Value, sid: &str) -> Option<u64> {
    body["sessions"]
        .as_array()?
        .iter()
        .find(|s| s["id"] == sid)?["sockets"]
        .as_u64()
}

async fn my_sessions_show_ip_agent_and_live_sockets_with_the_current_one_marked(app: TestApp) {
    let password = app.create_user("quinn", &["user"]).await;
    let laptop = login_as(&app, "quinn", &password, "Laptop/1.0").await;
    let phone = login_as(&app, "quinn", &password, "Phone/2.0").await;
    let laptop_sid = laptop.session_id(&app).await;
    let _s1 = laptop.socket(&app).await;
    let _s2 = laptop.socket(&app).await;
    let url = app.url("/api/auth/sessions");
    let body = eventually(&laptop, &url, |b| sockets_of(b, &laptop_sid) == Some(2)).await;
    let sessions = body["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{body}");
    let mine = sessions.iter().find(|s| s["id"] == laptop_sid).unwrap();
    assert_eq!(mine["current"], true);
    assert_eq!(mine["user_agent"], "Laptop/1.0");
    assert_eq!(mine["client_ip"], "127.0.0.1");
    assert_eq!(mine["sockets"], 2);
    for field in [
        "created_at",
        "last_seen_at",
        "expires_at",
        "absolute_expires_at",
    ] {
        assert!(mine[field].is_string(), "{field}: {mine}");
    }
    let other = sessions.iter().find(|s| s["id"] != laptop_sid).unwrap();
    assert_eq!(other["current"], false);
    assert_eq!(other["user_agent"], "Phone/2.0");
    assert_eq!(other["sockets"], 0);
    // The phone sees the same two, itself marked.
    let (_, theirs) = get_json(&phone, &url).await;
    assert_eq!(theirs["sessions"].as_array().unwrap().len(), 2);
}

async fn signing_out_one_device_closes_only_its_sockets(app: TestApp) {
    let password = app.create_user("rita", &["user"]).await;
    let laptop = app.login("rita", &password).await;
    let phone = app.login("rita", &password).await;
    let phone_sid = phone.session_id(&app).await;
    let mut on_laptop = laptop.socket(&app).await;
    let mut on_phone = phone.socket(&app).await;

    let res = delete(
        &laptop,
        &app.url(&format!("/api/auth/sessions/{phone_sid}")),
    )
    .await;
    assert_eq!(res.status(), 204);
    let (code, events) = on_phone.closed().await;
    assert_eq!(code, Some(4001));
    assert_eq!(
        events.last(),
        Some(&ServerEvent::SessionRevoked {
            reason: EndReason::Logout
        })
    );
    assert_eq!(phone.get(&app.url("/api/auth/me")).await.status(), 401);
    assert!(on_laptop.ask::<handlers::ping::Ping>(json!({})).await.ok);

    // Someone else's session, an ended one, or nonsense: 404.
    let stranger = app.login_admin().await;
    let stranger_sid = stranger.session_id(&app).await;
    for id in [stranger_sid.as_str(), phone_sid.as_str(), "nope"] {
        let res = delete(&laptop, &app.url(&format!("/api/auth/sessions/{id}"))).await;
        assert_eq!(res.status(), 404, "{id}");
    }
    assert_eq!(stranger.get(&app.url("/api/auth/me")).await.status(), 200);
}

async fn signing_out_everywhere_else_keeps_this_session(app: TestApp) {
    let password = app.create_user("sam", &["user"]).await;
    let here = app.login("sam", &password).await;
    let a = app.login("sam", &password).await;
    let b = app.login("sam", &password).await;
    let mut a_socket = a.socket(&app).await;
    let res = delete(&here, &app.url("/api/auth/sessions")).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["ended"], 2);
    assert_eq!(a_socket.closed().await.0, Some(4001));
    assert_eq!(a.get(&app.url("/api/auth/me")).await.status(), 401);
    assert_eq!(b.get(&app.url("/api/auth/me")).await.status(), 401);
    assert_eq!(here.get(&app.url("/api/auth/me")).await.status(), 200);
    let (_, list) = get_json(&here, &app.url("/api/auth/sessions")).await;
    assert_eq!(list["sessions"].as_array().unwrap().len(), 1);
}

async fn admins_list_sessions_by_user_and_page(app: TestApp) {
    let admin = app.login_admin().await;
    let password = app.create_user("tina", &["user"]).await;
    let tina_id = {
        let t = app.login("tina", &password).await;
        t.me(&app).await["user"]["id"].as_str().unwrap().to_owned()
    };
    for _ in 0..3 {
        app.login("tina", &password).await;
    }
    let plain = app.login_new_user("uma", &["user"]).await;
    // 1 admin + 4 tina + 1 uma.
    let url = |q: &str| app.url(&format!("/api/admin/sessions{q}"));
    let (status, all) = get_json(&admin, &url("")).await;
    assert_eq!(status, 200);
    assert_eq!(all["total"], 6, "{all}");
    let mut seen = std::collections::HashSet::new();
    for page in 1..=3 {
        let (_, body) = get_json(&admin, &url(&format!("?per_page=2&page={page}"))).await;
        assert_eq!(body["total"], 6);
        let sessions = body["sessions"].as_array().unwrap();
        assert_eq!(sessions.len(), 2, "page {page}");
        for s in sessions {
            assert!(
                seen.insert(s["id"].as_str().unwrap().to_owned()),
                "no repeats"
            );
        }
    }
    let (_, past_end) = get_json(&admin, &url("?per_page=2&page=4")).await;
    assert_eq!(past_end["sessions"].as_array().unwrap().len(), 0);
    let (_, tinas) = get_json(&admin, &url(&format!("?user_id={tina_id}"))).await;
    let tinas = tinas["sessions"].as_array().unwrap();
    assert_eq!(tinas.len(), 4);
    assert!(tinas
        .iter()
        .all(|s| s["username"] == "tina" && s["user_id"] == tina_id.as_str()));

    for q in [
        "?per_page=0",
        "?per_page=201",
        "?page=0",
        "?user_id=nope",
        "?page=x",
    ] {
        let (status, body) = get_json(&admin, &url(q)).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("bad_request")),
            "{q}"
        );
    }
    assert_eq!(plain.get(&url("")).await.status(), 403);
    assert_eq!(reqwest::get(url("")).await.unwrap().status(), 401);
}

async fn admins_end_one_session_or_all_of_a_users(app: TestApp) {
    let admin = app.login_admin().await;
    let password = app.create_user("vera", &["user"]).await;
    let first = app.login("vera", &password).await;
    let second = app.login("vera", &password).await;
    let vera_id = first.me(&app).await["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let first_sid = first.session_id(&app).await;
    let mut first_socket = first.socket(&app).await;
    let mut second_socket = second.socket(&app).await;

    let one = app.url(&format!("/api/admin/sessions/{first_sid}"));
    assert_eq!(delete(&admin, &one).await.status(), 204);
    let (code, events) = first_socket.closed().await;
    assert_eq!(code, Some(4001));
    assert_eq!(
        events.last(),
        Some(&ServerEvent::SessionRevoked {
            reason: EndReason::Admin
        })
    );
    assert!(
        second_socket
            .ask::<handlers::ping::Ping>(json!({}))
            .await
            .ok,
        "the other session stays up"
    );
    assert_eq!(delete(&admin, &one).await.status(), 404);

    let all = app.url(&format!("/api/admin/users/{vera_id}/sessions"));
    let res = delete(&admin, &all).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["ended"], 1);
    assert_eq!(second_socket.closed().await.0, Some(4001));
    assert_eq!(admin.get(&app.url("/api/auth/me")).await.status(), 200);

    let unknown = app.url(&format!(
        "/api/admin/users/{}/sessions",
        uuid::Uuid::new_v4()
    ));
    assert_eq!(delete(&admin, &unknown).await.status(), 404);
    let plain = app.login_new_user("walt", &["user"]).await;
    assert_eq!(delete(&plain, &all).await.status(), 403);
}

#[tokio::test]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    let name = "session_api::forwarded_for_is_believed_only_from_trusted_proxies";
    for (trusted, expected) in [("127.0.0.1", "198.51.100.7"), ("10.0.0.0/8", "127.0.0.1")] {
        let extra = [("TETHER_TRUSTED_PROXIES", trusted)];
        let Some(app) = spawn_app_with(name, Stack::SqliteInProcess, &extra).await else {
            return;
        };
        let res = reqwest::Client::new()
            .post(app.url("/api/auth/login"))
            .header("X-Forwarded-For", "198.51.100.7")
            .json(&json!({"username": "admin", "password": crate::helpers::ADMIN_PASSWORD}))
            .send()
            .await
            .unwrap();
        let browser = Browser {
            http: reqwest::Client::new(),
            cookie: crate::helpers::session_cookie(&res).unwrap(),
        };
        let (_, body) = get_json(&browser, &app.url("/api/auth/sessions")).await;
        assert_eq!(
            body["sessions"][0]["client_ip"], expected,
            "trusting {trusted}"
        );
    }
}
