//! The headers on every response: API, static files and errors alike, the
//! errors raised before any handler runs included.

use reqwest::{Method, Response};
use serde_json::json;

use crate::{
    helpers::{spawn_app, Stack, TestApp},
    test_redis::OwnRedis,
};

const CSP: &str = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn header_of(res: &Response, name: &str) -> Option<String> {
    res.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

/// The headers every response carries, whatever answered it.
fn assert_hardened(res: &Response, what: &str) {
    assert_eq!(
        header_of(res, "x-content-type-options").as_deref(),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(
        header_of(res, "referrer-policy").as_deref(),
        Some("no-referrer"),
        "{what}"
    );
    assert_eq!(
        header_of(res, "content-security-policy").as_deref(),
        Some(CSP),
        "{what}"
    );
    // The cookie is not Secure here (http://), so no HSTS.
    assert_eq!(header_of(res, "strict-transport-security"), None, "{what}");
}

async fn request(app: &TestApp, method: Method, path: &str) -> Response {
    reqwest::Client::new()
        .request(method, app.url(path))
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn every_response_has_them_and_api_responses_are_never_stored() {
    let test = "security_headers::every_response_has_them_and_api_responses_are_never_stored";
    let Some(app) = spawn_app(test, Stack::SqliteInProcess).await else {
        return;
    };
    let admin = app.login_admin().await;
    let api = [
        (admin.get(&app.url("/api/auth/me")).await, 200),
        (admin.get(&app.url("/api/admin/users")).await, 200),
        (
            request(&app, Method::GET, "/api/messages/public").await,
            200,
        ),
        (request(&app, Method::GET, "/api/auth/me").await, 401),
        (request(&app, Method::GET, "/api/nope").await, 404),
        (request(&app, Method::GET, "/api/auth/sessions").await, 401),
        (request(&app, Method::PUT, "/api/auth/sessions").await, 405),
        // Refused by the CSRF middleware, before any route.
        (
            reqwest::Client::new()
                .post(app.url("/api/auth/logout"))
                .header("Origin", "https://evil.example")
                .send()
                .await
                .unwrap(),
            403,
        ),
        (
            reqwest::Client::new()
                .post(app.url("/api/auth/login"))
                .json(&json!({"username": "admin"}))
                .send()
                .await
                .unwrap(),
            400,
        ),
    ];
    for (res, status) in api {
        let what = format!("{} {}", res.url().path(), res.status());
        assert_eq!(res.status(), status, "{what}");
        assert_hardened(&res, &what);
        assert_eq!(
            header_of(&res, "cache-control").as_deref(),
            Some("no-store"),
            "{what}"
        );
    }
    // The app's files keep revalidating (no-cache); other paths are not API.
    for (method, path, status, cache) in [
        (Method::GET, "/", 200, Some("no-cache")),
        (Method::GET, "/js/main.js", 200, Some("no-cache")),
        (Method::HEAD, "/css/app.css", 200, Some("no-cache")),
        (Method::GET, "/no-such-file.js", 404, None),
        (Method::POST, "/index.html", 405, None),
        (Method::GET, "/healthz", 200, None),
        (Method::GET, "/ws", 401, None),
    ] {
        let res = request(&app, method.clone(), path).await;
        let what = format!("{method} {path}");
        assert_eq!(res.status(), status, "{what}");
        assert_hardened(&res, &what);
        assert_eq!(header_of(&res, "cache-control").as_deref(), cache, "{what}");
    }
}

/// A store failure is an error the session middleware returns before any
/// handler runs; its 503 gets the headers too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_store_failure_has_them_too() {
    let test = "security_headers::a_session_store_failure_has_them_too";
    let Some((mut redis, app)) = OwnRedis::with_app(test, &[]).await else {
        return;
    };
    let admin = app.login_admin().await;
    redis.stop();
    let res = admin.get(&app.url("/api/auth/me")).await;
    assert_eq!(res.status(), 503);
    assert_hardened(&res, "503");
    assert_eq!(
        header_of(&res, "cache-control").as_deref(),
        Some("no-store")
    );
}
