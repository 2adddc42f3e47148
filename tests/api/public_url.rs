//! The session cookie follows `TETHER_PUBLIC_URL`, not the bound address:
//! behind a TLS-terminating reverse proxy tether binds loopback and speaks
//! plain http, yet its users are on https and the cookie must be `Secure`.

use reqwest::header::COOKIE;
use serde_json::json;

use crate::{
    cli::run_plain,
    helpers::{session_set_cookie, spawn_app, spawn_app_with, Browser, Stack, ADMIN_PASSWORD},
};

const PUBLIC: &str = "https://tether.example";

/// The cookie's attributes, lower-cased, without its value.
fn flags(set_cookie: &str) -> Vec<String> {
    set_cookie
        .split(';')
        .skip(1)
        .map(|f| f.trim().to_ascii_lowercase())
        .collect()
}

#[tokio::test]
async fn an_https_public_url_gives_a_secure_host_cookie_that_works_over_plain_http() {
    let test =
        "public_url::an_https_public_url_gives_a_secure_host_cookie_that_works_over_plain_http";
    let Some(app) =
        spawn_app_with(test, Stack::SqliteRedis, &[("TETHER_PUBLIC_URL", PUBLIC)]).await
    else {
        return;
    };
    assert!(app.state.config.bind.ip().is_loopback());
    // What the proxy forwards: plain http, the browser's Origin kept.
    let http = reqwest::Client::new();
    let res = http
        .post(app.url("/api/auth/login"))
        .header("Origin", PUBLIC)
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["strict-transport-security"],
        "max-age=63072000"
    );
    let set_cookie = session_set_cookie(&res).expect("a session cookie");
    assert!(
        set_cookie.starts_with("__Host-tether_session="),
        "{set_cookie}"
    );
    let set_flags = flags(&set_cookie);
    for wanted in ["secure", "httponly", "path=/", "samesite=lax"] {
        assert!(
            set_flags.iter().any(|f| f == wanted),
            "{wanted}: {set_cookie}"
        );
    }
    assert!(
        !set_flags.iter().any(|f| f.starts_with("domain=")),
        "a __Host- cookie has no Domain: {set_cookie}"
    );
    // The cookie, sent back over the proxy's plain http, is a session.
    let browser = Browser {
        http: http.clone(),
        cookie: set_cookie.split(';').next().unwrap().to_owned(),
    };
    assert_eq!(browser.me(&app).await["user"]["username"], "admin");
    let mut socket = browser
        .try_socket(&app, Some(PUBLIC))
        .await
        .expect("the public origin may open the socket");
    assert!(matches!(
        socket.next_frame().await,
        tether::ws::protocol::ServerFrame::Event(tether::ws::protocol::ServerEvent::Hello { .. })
    ));
    let res = http
        .post(app.url("/api/auth/logout"))
        .header("Origin", PUBLIC)
        .header(COOKIE, &browser.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let cleared = session_set_cookie(&res).expect("logout clears the cookie");
    assert!(cleared.starts_with("__Host-tether_session=;"), "{cleared}");
    // A browser applies the removal only with the prefix's own flags.
    let cleared_flags = flags(&cleared);
    assert!(
        ["secure", "path=/"]
            .iter()
            .all(|f| cleared_flags.iter().any(|c| c == f)),
        "{cleared}"
    );
    assert_eq!(browser.get(&app.url("/api/auth/me")).await.status(), 401);
}

#[tokio::test]
async fn the_default_http_public_url_keeps_a_plain_cookie_and_no_hsts() {
    let test = "public_url::the_default_http_public_url_keeps_a_plain_cookie_and_no_hsts";
    let Some(app) = spawn_app(test, Stack::SqliteInProcess).await else {
        return;
    };
    let res = reqwest::Client::new()
        .post(app.url("/api/auth/login"))
        .header("Origin", format!("http://localhost:{}", app.port))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("strict-transport-security").is_none());
    let set_cookie = session_set_cookie(&res).expect("a session cookie");
    assert!(set_cookie.starts_with("tether_session="), "{set_cookie}");
    assert!(
        !flags(&set_cookie).iter().any(|f| f == "secure"),
        "{set_cookie}"
    );
}

#[test]
fn an_invalid_public_url_stops_start_up_with_exit_code_2() {
    for value in ["tether.example", "https://tether.example/app"] {
        let out = run_plain(&[("TETHER_PUBLIC_URL", value)], &["serve"]);
        assert_eq!(out.code, Some(2), "{value}: {}", out.stderr);
        assert!(
            out.stderr.contains("TETHER_PUBLIC_URL") && out.stderr.contains(value),
            "{}",
            out.stderr
        );
    }
}
