//! Cross-site request forgery: every unsafe request from a foreign origin
//! (by `Origin`, or by `Sec-Fetch-Site` without one) is refused with 403 and
//! changes nothing; the same requests from the app's own origin, or from a
//! client that is no browser (neither header), go through.

use reqwest::{header::COOKIE, Method, Response};
use serde_json::{json, Value};

use crate::helpers::{session_cookie, Browser, TestApp, ADMIN_PASSWORD};

crate::stack_module!(
    sqlite_redis,
    SqliteRedis,
    a_foreign_origin_is_refused_on_every_unsafe_route_and_changes_nothing,
    the_apps_own_origin_and_clients_without_browser_headers_pass,
    safe_methods_and_the_websocket_are_not_affected
);

/// Where a request says it comes from: a header and its value.
type FromWhere = (&'static str, String);

/// Requests a hostile page could make a signed-in browser send: the
/// attacker's site, a sandboxed frame, and a sibling subdomain (same site,
/// which `SameSite=Lax` does not stop).
fn foreign(app: &TestApp) -> Vec<FromWhere> {
    vec![
        ("Origin", "https://evil.example".into()),
        ("Origin", "null".into()),
        ("Origin", format!("http://evil.localhost:{}", app.port)),
        ("Sec-Fetch-Site", "cross-site".into()),
        ("Sec-Fetch-Site", "same-site".into()),
    ]
}

async fn send(
    app: &TestApp,
    who: Option<&Browser>,
    method: Method,
    path: &str,
    body: Option<Value>,
    from: Option<&FromWhere>,
) -> Response {
    let mut req = reqwest::Client::new().request(method, app.url(path));
    if let Some(browser) = who {
        req = req.header(COOKIE, &browser.cookie);
    }
    if let Some((name, value)) = from {
        req = req.header(*name, value);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.expect("request")
}

struct Route {
    method: Method,
    path: String,
    body: Option<Value>,
    who: Option<Browser>,
}

/// Every kind of unsafe route: sign-in, logout, own sessions and password,
/// the admin users and sessions APIs.
async fn unsafe_routes(app: &TestApp, admin: &Browser, alice: &Browser) -> Vec<Route> {
    let alice_id = app.user_id("alice").await;
    let sid = alice.session_id(app).await;
    let route = |method: Method, path: String, body: Option<Value>, who: Option<&Browser>| Route {
        method,
        path,
        body,
        who: who.cloned(),
    };
    vec![
        route(
            Method::POST,
            "/api/auth/login".into(),
            Some(json!({"username": "admin", "password": ADMIN_PASSWORD})),
            None,
        ),
        route(Method::POST, "/api/auth/logout".into(), None, Some(alice)),
        route(
            Method::PUT,
            "/api/auth/password".into(),
            Some(json!({"current_password": "alice-password", "new_password": "stolen-pw"})),
            Some(alice),
        ),
        route(
            Method::DELETE,
            format!("/api/auth/sessions/{sid}"),
            None,
            Some(alice),
        ),
        route(
            Method::DELETE,
            "/api/auth/sessions".into(),
            None,
            Some(alice),
        ),
        route(
            Method::POST,
            "/api/admin/users".into(),
            Some(json!({"username": "mallory", "password": "mallory-pw", "roles": ["admin"]})),
            Some(admin),
        ),
        route(
            Method::PUT,
            format!("/api/admin/users/{alice_id}/roles"),
            Some(json!({"roles": ["admin"]})),
            Some(admin),
        ),
        route(
            Method::PATCH,
            format!("/api/admin/users/{alice_id}"),
            Some(json!({"disabled": true})),
            Some(admin),
        ),
        route(
            Method::PUT,
            format!("/api/admin/users/{alice_id}/password"),
            Some(json!({"password": "stolen-password"})),
            Some(admin),
        ),
        route(
            Method::DELETE,
            format!("/api/admin/sessions/{sid}"),
            None,
            Some(admin),
        ),
        route(
            Method::DELETE,
            format!("/api/admin/users/{alice_id}/sessions"),
            None,
            Some(admin),
        ),
    ]
}

async fn a_foreign_origin_is_refused_on_every_unsafe_route_and_changes_nothing(app: TestApp) {
    let admin = app.login_admin().await;
    let alice = app.login_new_user("alice", &["user"]).await;
    let alice_phone = app.login("alice", "alice-password").await;
    let before = alice.me(&app).await;
    for route in unsafe_routes(&app, &admin, &alice).await {
        for from in foreign(&app) {
            let res = send(
                &app,
                route.who.as_ref(),
                route.method.clone(),
                &route.path,
                route.body.clone(),
                Some(&from),
            )
            .await;
            let what = format!("{} {} with {from:?}", route.method, route.path);
            assert_eq!(res.status(), 403, "{what}");
            assert!(session_cookie(&res).is_none(), "{what}: a cookie was set");
            let body: Value = res.json().await.unwrap();
            assert_eq!(
                body["error"],
                json!({"code": "forbidden", "message": "Origin not allowed"}),
                "{what}"
            );
        }
    }
    // Nothing was done: both of alice's sessions live, unchanged; her
    // password, roles and account are as they were; no mallory.
    let after = alice.me(&app).await;
    assert_eq!(after["user"], before["user"]);
    assert_eq!(after["session"]["id"], before["session"]["id"]);
    assert_eq!(alice_phone.me(&app).await["user"]["roles"], json!(["user"]));
    assert!(app.try_login("alice", "alice-password").await.is_ok());
    assert_eq!(
        app.try_login("mallory", "mallory-pw").await.err(),
        Some(401)
    );
    let sessions: Value = alice
        .get(&app.url("/api/auth/sessions"))
        .await
        .json()
        .await
        .unwrap();
    // Both devices, and the sign-in just made.
    assert_eq!(sessions["sessions"].as_array().unwrap().len(), 3);
}

async fn the_apps_own_origin_and_clients_without_browser_headers_pass(app: TestApp) {
    let admin = app.login_admin().await;
    let origin = app.origin();
    let own: Vec<Option<FromWhere>> = vec![
        Some(("Origin", origin.clone())),
        // Origins compare case-insensitively, and both default ones count.
        Some(("Origin", origin.to_uppercase())),
        Some(("Origin", format!("http://localhost:{}", app.port))),
        Some(("Sec-Fetch-Site", "same-origin".into())),
        Some(("Sec-Fetch-Site", "none".into())),
        // curl, the CLI, a server: no browser, so no ambient cookie.
        None,
    ];
    let login = json!({"username": "admin", "password": ADMIN_PASSWORD});
    for (n, from) in own.iter().enumerate() {
        let what = format!("{from:?}");
        let res = send(
            &app,
            None,
            Method::POST,
            "/api/auth/login",
            Some(login.clone()),
            from.as_ref(),
        )
        .await;
        assert_eq!(res.status(), 200, "login {what}");
        let signed_in = Browser {
            http: reqwest::Client::new(),
            cookie: session_cookie(&res).expect("a session cookie"),
        };
        let name = format!("user{n}");
        let body = json!({"username": name, "password": "long-enough-pw", "roles": ["user"]});
        let res = send(
            &app,
            Some(&admin),
            Method::POST,
            "/api/admin/users",
            Some(body),
            from.as_ref(),
        )
        .await;
        assert_eq!(res.status(), 201, "create {what}");
        let id = app.user_id(&name).await;
        let path = format!("/api/admin/users/{id}");
        let body = json!({"disabled": true});
        let res = send(
            &app,
            Some(&admin),
            Method::PATCH,
            &path,
            Some(body),
            from.as_ref(),
        )
        .await;
        assert_eq!(res.status(), 200, "disable {what}");
        let sid = signed_in.session_id(&app).await;
        let path = format!("/api/auth/sessions/{sid}");
        let res = send(
            &app,
            Some(&admin),
            Method::DELETE,
            &path,
            None,
            from.as_ref(),
        )
        .await;
        assert_eq!(res.status(), 204, "end own session {what}");
        assert_eq!(signed_in.get(&app.url("/api/auth/me")).await.status(), 401);
    }
    let res = send(
        &app,
        Some(&admin),
        Method::POST,
        "/api/auth/logout",
        None,
        Some(&("Origin", origin)),
    )
    .await;
    assert_eq!(res.status(), 204);
    assert_eq!(admin.get(&app.url("/api/auth/me")).await.status(), 401);
}

async fn safe_methods_and_the_websocket_are_not_affected(app: TestApp) {
    let alice = app.login_new_user("alice", &["user"]).await;
    for from in foreign(&app) {
        let res = send(
            &app,
            Some(&alice),
            Method::GET,
            "/api/auth/me",
            None,
            Some(&from),
        )
        .await;
        assert_eq!(res.status(), 200, "{from:?}");
        let res = send(&app, None, Method::HEAD, "/", None, Some(&from)).await;
        assert_eq!(res.status(), 200, "{from:?}");
    }
    // The upgrade is a GET: the app's own origin opens it; a foreign one is
    // refused by the route's own check, as before.
    let mut socket = alice.socket(&app).await;
    assert!(
        socket
            .ask::<tether::ws::handlers::ping::Ping>(json!({}))
            .await
            .ok
    );
    let refused = alice.try_socket(&app, Some("https://evil.example")).await;
    assert_eq!(refused.err(), Some(403));
}
