//! ID tokens no honest provider sends, and `start` under load: each ends on
//! the sign-in screen with an error code, no session, never a 5xx.

use reqwest::StatusCode;
use serde_json::json;

use super::{
    backchannel::{post_logout_token, with_signing_issuer},
    issuer::{self, SigningIssuer},
    OidcBrowser, PROVIDER,
};
use crate::helpers::{Stack, TestApp};

/// One sign-in whose code exchange answers `token(issuer, nonce)`; where it lands.
async fn sign_in_with(
    app: &TestApp,
    issuer: &SigningIssuer,
    token: impl Fn(&SigningIssuer, &str) -> Option<String>,
) -> (String, bool) {
    let browser = OidcBrowser::new();
    let (state, nonce) = issuer::start(&browser, app, "/#/admin").await;
    if let Some(token) = token(issuer, &nonce) {
        issuer.queue_id_token(token);
    }
    let landed = issuer::callback(&browser, app, &state).await;
    (landed, browser.tether(app).is_some())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_token_failing_any_check_signs_nobody_in() {
    let Some((app, issuer)) = with_signing_issuer("id_token_checks", Stack::SqliteInProcess).await
    else {
        return;
    };
    // The honest token works, and lands on the deep link.
    let (landed, signed_in) = sign_in_with(&app, &issuer, |i, nonce| {
        Some(i.sign(&i.id_claims("ok", nonce)))
    })
    .await;
    assert_eq!((landed.as_str(), signed_in), ("/#/admin", true));

    type Make = Box<dyn Fn(&SigningIssuer, &str) -> Option<String>>;
    let changed = |key: &'static str, value: serde_json::Value| -> Make {
        Box::new(move |i, nonce| {
            let mut c = i.id_claims("mallory", nonce);
            c[key] = value.clone();
            Some(i.sign(&c))
        })
    };
    let now = chrono::Utc::now().timestamp();
    let cases: Vec<(&str, Make, &str)> = vec![
        (
            "forged signature",
            Box::new(|i, nonce| Some(i.forge(&i.id_claims("mallory", nonce)))),
            "token",
        ),
        (
            "tampered payload",
            Box::new(|i, nonce| {
                let honest = i.id_claims("ok", nonce);
                let mut evil = honest.clone();
                evil["sub"] = "admin".into();
                Some(i.tampered(&honest, &evil))
            }),
            "token",
        ),
        (
            "alg none",
            Box::new(|i, nonce| Some(issuer::unsigned(&i.id_claims("mallory", nonce)))),
            "token",
        ),
        (
            "wrong aud",
            changed("aud", "another-client".into()),
            "token",
        ),
        (
            "wrong iss",
            changed("iss", "http://127.0.0.1:1".into()),
            "token",
        ),
        (
            "wrong nonce",
            changed("nonce", "not-the-nonce".into()),
            "token",
        ),
        ("expired", changed("exp", (now - 600).into()), "token"),
        (
            "an audience besides this client",
            changed("aud", json!([super::CLIENT_ID, "other"])),
            "token",
        ),
        (
            "no ID token (exchange refused)",
            Box::new(|_, _| None),
            "exchange",
        ),
    ];
    for (what, make, code) in cases {
        let (landed, signed_in) = sign_in_with(&app, &issuer, make).await;
        assert_eq!(landed, format!("/#/signin?error={code}"), "{what}");
        assert!(!signed_in, "{what}: no session");
    }
    let me = reqwest::Client::new()
        .get(app.url("/api/auth/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_naming_another_issuer_is_refused() {
    let Some((app, issuer)) = with_signing_issuer("callback_iss", Stack::SqliteInProcess).await
    else {
        return;
    };
    let browser = OidcBrowser::new();
    let (state, nonce) = issuer::start(&browser, &app, "/").await;
    issuer.queue_id_token(issuer.sign(&issuer.id_claims("ok", &nonce)));
    let url = app.url(&format!(
        "/api/auth/oidc/{PROVIDER}/callback?code=c&state={}&iss=https%3A%2F%2Fevil.example",
        super::urlencode(&state)
    ));
    let (status, location) = browser.get(&url).await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(location.unwrap(), app.url("/#/signin?error=token"));
    assert!(browser.tether(&app).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_is_throttled_per_address() {
    for stack in [Stack::SqliteInProcess, Stack::SqliteRedis] {
        let Some((app, _issuer)) = with_signing_issuer("start_throttle", stack).await else {
            return;
        };
        let browser = OidcBrowser::new();
        let url = app.url(&format!("/api/auth/oidc/{PROVIDER}/start"));
        let mut statuses = Vec::new();
        for _ in 0..32 {
            statuses.push(browser.get(&url).await.0);
        }
        assert!(
            statuses[..30].iter().all(|s| *s == StatusCode::FOUND),
            "{stack:?}"
        );
        assert_eq!(statuses[31], StatusCode::TOO_MANY_REQUESTS, "{stack:?}");
        let res = browser.http.get(&url).send().await.unwrap();
        assert!(res.headers().contains_key("retry-after"));
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "rate_limited");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_provider_is_404() {
    let Some((app, _issuer)) =
        with_signing_issuer("unknown_provider", Stack::SqliteInProcess).await
    else {
        return;
    };
    let (status, _) = OidcBrowser::new()
        .get(&app.url("/api/auth/oidc/nope/start"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, location) = OidcBrowser::new()
        .get(&app.url("/api/auth/oidc/nope/callback?code=x&state=y"))
        .await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(location.unwrap(), app.url("/#/signin?error=provider"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_signed_with_a_key_published_after_start_up_are_accepted() {
    let Some((app, issuer)) = with_signing_issuer("key_rotation", Stack::SqliteInProcess).await
    else {
        return;
    };
    // The provider publishes a new key after tether fetched its keys.
    issuer.rotate();
    let (landed, signed_in) = sign_in_with(&app, &issuer, |i, nonce| {
        Some(i.sign_with_new_key(&i.id_claims("rot", nonce)))
    })
    .await;
    assert_eq!((landed.as_str(), signed_in), ("/#/admin", true));

    // The same for a logout token, on an instance that started before the rotation.
    let Some((other, issuer)) =
        with_signing_issuer("key_rotation_logout", Stack::SqliteInProcess).await
    else {
        return;
    };
    issuer.rotate();
    let token = issuer.sign_with_new_key(&issuer.logout_claims(Some("rot"), None));
    assert_eq!(post_logout_token(&other, &token).await, StatusCode::OK);
    // A key it never published stays refused.
    let forged = issuer.forge(&issuer.logout_claims(Some("rot"), None));
    assert_eq!(
        post_logout_token(&other, &forged).await,
        StatusCode::BAD_REQUEST
    );
}
