//! Sign-in, sign-out, "who am I", the demo messages and health, over real HTTP.

use reqwest::header::{CONTENT_TYPE, COOKIE, SET_COOKIE};
use serde_json::{json, Value};

use crate::helpers::{session_cookie, TestApp, ADMIN_PASSWORD};

crate::on_every_stack!(
    login_returns_the_user_and_a_hardened_session_cookie,
    wrong_password_unknown_user_and_disabled_user_are_the_same_401,
    malformed_login_bodies_are_400_not_500,
    me_restores_the_user_for_a_reloaded_page,
    login_renews_the_session_id,
    logout_deletes_the_session_and_is_idempotent,
    messages_are_guarded_by_sign_in_and_permission,
    health_and_readiness_answer,
    unknown_routes_are_json_404,
);

async fn error_code(res: reqwest::Response) -> (u16, String) {
    let status = res.status().as_u16();
    let body: Value = res.json().await.expect("error bodies are JSON");
    (
        status,
        body["error"]["code"].as_str().unwrap_or("").to_owned(),
    )
}

async fn post_login(app: &TestApp, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url("/api/auth/login"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn login_returns_the_user_and_a_hardened_session_cookie(app: TestApp) {
    let res = post_login(
        &app,
        json!({"username": "admin", "password": ADMIN_PASSWORD}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let set_cookie = res
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("tether_session="))
        .expect("session cookie");
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    assert!(set_cookie.contains("Path=/"), "{set_cookie}");
    assert!(
        !set_cookie.contains("Secure"),
        "loopback bind: not Secure: {set_cookie}"
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["username"], "admin");
    assert_eq!(body["user"]["roles"], json!(["admin"]));
    let permissions = body["user"]["permissions"].as_array().unwrap();
    assert_eq!(
        permissions.len(),
        tether::domain::Permission::ALL.len(),
        "admin holds every permission"
    );
    assert!(body["user"]["id"].as_str().unwrap().len() == 36);
}

async fn wrong_password_unknown_user_and_disabled_user_are_the_same_401(app: TestApp) {
    let password = app.create_user("carol", &["user"]).await;
    tether::users::disable(
        &app.state.db,
        &app.state.sessions,
        &tether::domain::Username::parse("carol").unwrap(),
    )
    .await
    .unwrap();
    let mut answers = Vec::new();
    for (user, pw) in [
        ("admin", "wrong-password"),
        ("nobody", "whatever-password"),
        ("carol", password.as_str()),
        ("not a valid name!", "x"),
    ] {
        let res = post_login(&app, json!({"username": user, "password": pw})).await;
        assert!(session_cookie(&res).is_none(), "no session for {user}");
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap();
        answers.push((status, body));
    }
    for answer in &answers {
        assert_eq!(answer, &answers[0], "all failures look the same");
    }
    assert_eq!(answers[0].0, 401);
    assert_eq!(answers[0].1["error"]["code"], "invalid_credentials");
}

async fn malformed_login_bodies_are_400_not_500(app: TestApp) {
    let client = reqwest::Client::new();
    let url = app.url("/api/auth/login");
    let cases: Vec<reqwest::RequestBuilder> = vec![
        client
            .post(&url)
            .header(CONTENT_TYPE, "application/json")
            .body("{not json"),
        client.post(&url).json(&json!({"username": "admin"})),
        client
            .post(&url)
            .json(&json!({"username": 5, "password": "x"})),
        client
            .post(&url)
            .json(&json!({"username": "", "password": ""})),
        client.post(&url).json(&json!([1, 2])),
        client
            .post(&url)
            .header(CONTENT_TYPE, "text/plain")
            .body("username=admin"),
        client.post(&url),
    ];
    for case in cases {
        let (status, code) = error_code(case.send().await.unwrap()).await;
        assert_eq!((status, code.as_str()), (400, "bad_request"));
    }
}

async fn me_restores_the_user_for_a_reloaded_page(app: TestApp) {
    let anonymous = reqwest::Client::new()
        .get(app.url("/api/auth/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(anonymous).await, (401, "unauthenticated".into()));

    let browser = app.login_admin().await;
    // A reloaded page is a new client holding only the cookie.
    let reloaded = reqwest::Client::new()
        .get(app.url("/api/auth/me"))
        .header(COOKIE, &browser.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(reloaded.status(), 200);
    let body: Value = reloaded.json().await.unwrap();
    assert_eq!(body["user"]["username"], "admin");
    let session = &body["session"];
    let sid = session["id"].as_str().unwrap();
    assert_eq!(sid.len(), 32, "public id");
    assert!(
        !browser.cookie.contains(sid),
        "the public id is not the cookie"
    );
    let created =
        chrono::DateTime::parse_from_rfc3339(session["created_at"].as_str().unwrap()).unwrap();
    let expires =
        chrono::DateTime::parse_from_rfc3339(session["expires_at"].as_str().unwrap()).unwrap();
    let idle = (expires - created).num_seconds();
    assert!(
        (1795..=1805).contains(&idle),
        "idle deadline ≈ 30 min ahead, got {idle}s"
    );

    // A garbage cookie is simply not signed in.
    let forged = reqwest::Client::new()
        .get(app.url("/api/auth/me"))
        .header(COOKIE, "tether_session=forged")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
}

async fn login_renews_the_session_id(app: TestApp) {
    let first = app.login_admin().await;
    let first_sid = first.session_id(&app).await;
    // Signing in again while holding a session must not keep its id (fixation).
    let res = first
        .http
        .post(app.url("/api/auth/login"))
        .header(COOKIE, &first.cookie)
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let second_cookie = session_cookie(&res).expect("a new cookie");
    assert_ne!(second_cookie, first.cookie);
    let second = crate::helpers::Browser {
        http: reqwest::Client::new(),
        cookie: second_cookie,
    };
    assert_ne!(second.session_id(&app).await, first_sid);
    assert_eq!(first.get(&app.url("/api/auth/me")).await.status(), 401);
}

async fn logout_deletes_the_session_and_is_idempotent(app: TestApp) {
    let browser = app.login_admin().await;
    let sid = browser.session_id(&app).await;
    let res = browser.post(&app.url("/api/auth/logout")).await;
    assert_eq!(res.status(), 204);
    let cleared = res
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .any(|v| v.to_str().unwrap().starts_with("tether_session=;"));
    assert!(cleared, "the cookie is cleared");
    // The old cookie no longer works: the session is gone server-side.
    assert_eq!(browser.get(&app.url("/api/auth/me")).await.status(), 401);
    assert!(app.state.sessions.load(&sid).await.unwrap().is_none());
    if let Some(redis) = &app.redis {
        assert!(
            !redis
                .keys()
                .iter()
                .any(|k| k.ends_with(&format!("session:{{{sid}}}"))),
            "no Redis key left for the session"
        );
    }
    // Again, and without any cookie: still 204.
    assert_eq!(
        browser.post(&app.url("/api/auth/logout")).await.status(),
        204
    );
    let anonymous = reqwest::Client::new()
        .post(app.url("/api/auth/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 204);
}

async fn messages_are_guarded_by_sign_in_and_permission(app: TestApp) {
    let anonymous = reqwest::Client::new();
    let get = |path: &str| anonymous.get(app.url(path)).send();
    assert_eq!(get("/api/messages/public").await.unwrap().status(), 200);
    let res = get("/api/messages/protected").await.unwrap();
    assert_eq!(error_code(res).await, (401, "unauthenticated".into()));
    let res = get("/api/messages/admin").await.unwrap();
    assert_eq!(error_code(res).await, (401, "unauthenticated".into()));

    let user = app.login_new_user("dave", &["user"]).await;
    let res = user.get(&app.url("/api/messages/protected")).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert!(body["text"].as_str().unwrap().contains("dave"));
    let res = user.get(&app.url("/api/messages/admin")).await;
    assert_eq!(res.status(), 403);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden");
    assert_eq!(body["error"]["message"], "Permission denied");

    let reader = app.login_new_user("erin", &["messages-admin"]).await;
    assert_eq!(
        reader.get(&app.url("/api/messages/admin")).await.status(),
        200
    );
}

async fn health_and_readiness_answer(app: TestApp) {
    let client = reqwest::Client::new();
    assert_eq!(
        client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let ready = client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["user_store"], "ok");
    assert_eq!(body["checks"]["session_store"], "ok");
}

async fn unknown_routes_are_json_404(app: TestApp) {
    let res = reqwest::get(app.url("/api/nope")).await.unwrap();
    assert_eq!(error_code(res).await, (404, "not_found".into()));
    // A wrong method is a JSON error too: 404 where the method is part of
    // the route (`cfg.route`), 405 on multi-method resources.
    let res = reqwest::get(app.url("/api/auth/logout")).await.unwrap();
    assert_eq!(error_code(res).await, (404, "not_found".into()));
    let res = reqwest::Client::new()
        .post(app.url("/api/auth/sessions"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res).await, (405, "method_not_allowed".into()));
}
