//! Back-channel logout: the provider tells tether a user signed out there.

use reqwest::StatusCode;
use serde_json::json;
use tether::{domain::EndReason, ws::protocol::ServerEvent};

use super::{
    free_port,
    issuer::{self, SigningIssuer},
    provider_vars, spawn_with, with_real_provider, OidcBrowser, PROVIDER,
};
use crate::helpers::{Browser, Stack, TestApp, PATIENCE};

/// A socket's closing: its code and whether `session.revoked` (`logout`) came first.
async fn closed_for_logout(socket: &mut crate::helpers::Socket) -> (Option<u16>, bool) {
    let (code, events) = tokio::time::timeout(PATIENCE, socket.closed())
        .await
        .expect("the socket closes");
    let revoked = events.iter().any(
        |e| matches!(e, ServerEvent::SessionRevoked { reason } if *reason == EndReason::Logout),
    );
    (code, revoked)
}

async fn status_of_me(browser: &Browser, app: &TestApp) -> StatusCode {
    browser.get(&app.url("/api/auth/me")).await.status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_at_the_provider_ends_that_session_and_its_sockets_on_every_instance() {
    signing_out_at_the_provider_on(Stack::SqliteRedis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_at_the_provider_on_redis_sentinel() {
    // Not while a test fails the Sentinel primary over.
    let _topology = crate::test_redis::SENTINEL_TOPOLOGY.read().await;
    signing_out_at_the_provider_on(Stack::SqliteSentinel).await;
}

async fn signing_out_at_the_provider_on(stack: Stack) {
    let name = format!("signing_out_at_the_provider_{stack:?}");
    let Some((app, provider)) = with_real_provider(&name, stack).await else {
        return;
    };
    let peer = app.spawn_peer_with(&[("TETHER_BIND", "127.0.0.1:0")]).await;
    provider
        .set_account(json!({ "sub": "gil-sub", "preferred_username": "gil" }))
        .await;
    // Two provider sessions (two browsers) of the same user, and a password user.
    let kept = OidcBrowser::new();
    kept.sign_in(&app, "/").await;
    let ended = OidcBrowser::new();
    ended.sign_in(&app, "/").await;
    let (kept, ended) = (kept.tether(&app).unwrap(), ended.tether(&app).unwrap());
    let bystander = app.login_new_user("hal", &["user"]).await;
    let mut on_this = ended.socket(&app).await;
    let mut on_peer = ended.socket(&peer).await;
    let mut kept_socket = kept.socket(&peer).await;

    // The provider ends the latest provider session (`ended`'s sid).
    let answer = provider.sign_out_at_provider("gil-sub").await;
    assert_eq!(answer, json!({ "delivered": true }), "tether answered 200");

    for socket in [&mut on_this, &mut on_peer] {
        let (code, revoked) = closed_for_logout(socket).await;
        assert_eq!(code, Some(4001));
        assert!(revoked, "session.revoked with reason logout first");
    }
    assert_eq!(status_of_me(&ended, &app).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        status_of_me(&kept, &peer).await,
        StatusCode::OK,
        "other provider session"
    );
    assert_eq!(status_of_me(&bystander, &app).await, StatusCode::OK);
    kept_socket.send_ping().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_at_the_provider_works_with_in_process_sessions() {
    let Some((app, provider)) =
        with_real_provider("signing_out_in_process", Stack::SqliteInProcess).await
    else {
        return;
    };
    provider
        .set_account(json!({ "sub": "ida-sub", "preferred_username": "ida" }))
        .await;
    let browser = OidcBrowser::new();
    browser.sign_in(&app, "/").await;
    let session = browser.tether(&app).unwrap();
    let mut socket = session.socket(&app).await;
    let answer = provider.sign_out_at_provider("ida-sub").await;
    assert_eq!(answer, json!({ "delivered": true }));
    let (code, revoked) = closed_for_logout(&mut socket).await;
    assert_eq!((code, revoked), (Some(4001), true));
    assert_eq!(status_of_me(&session, &app).await, StatusCode::UNAUTHORIZED);
}

/// The app on `stack` with the signing issuer as provider [`PROVIDER`].
pub async fn with_signing_issuer(test: &str, stack: Stack) -> Option<(TestApp, SigningIssuer)> {
    let issuer = SigningIssuer::start().await;
    let app = spawn_with(
        test,
        stack,
        &provider_vars(&issuer.issuer, free_port()),
        &[],
    )
    .await?;
    Some((app, issuer))
}

/// Signs `sub` in through the signing issuer with provider session `sid`.
pub async fn sign_in(app: &TestApp, issuer: &SigningIssuer, sub: &str, sid: &str) -> Browser {
    let browser = OidcBrowser::new();
    let (state, nonce) = issuer::start(&browser, app, "/").await;
    let mut claims = issuer.id_claims(sub, &nonce);
    claims["sid"] = sid.into();
    issuer.queue_id_token(issuer.sign(&claims));
    assert_eq!(issuer::callback(&browser, app, &state).await, "/");
    browser.tether(app).expect("signed in")
}

pub async fn post_logout_token(app: &TestApp, token: &str) -> StatusCode {
    reqwest::Client::new()
        .post(app.url(&format!("/api/auth/oidc/{PROVIDER}/backchannel-logout")))
        .form(&[("logout_token", token)])
        .send()
        .await
        .expect("POST")
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_token_with_only_sub_ends_every_session_of_that_user_from_the_provider() {
    let Some((app, issuer)) = with_signing_issuer("logout_by_sub", Stack::SqliteRedis).await else {
        return;
    };
    let one = sign_in(&app, &issuer, "jo", "sid-1").await;
    let two = sign_in(&app, &issuer, "jo", "sid-2").await;
    let other = sign_in(&app, &issuer, "kim", "sid-3").await;
    let mut socket = two.socket(&app).await;
    let token = issuer.sign(&issuer.logout_claims(Some("jo"), None));
    assert_eq!(post_logout_token(&app, &token).await, StatusCode::OK);
    assert_eq!(closed_for_logout(&mut socket).await, (Some(4001), true));
    assert_eq!(status_of_me(&one, &app).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status_of_me(&two, &app).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status_of_me(&other, &app).await, StatusCode::OK);

    // The same token again is a replay.
    assert_eq!(
        post_logout_token(&app, &token).await,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_token_with_only_sid_ends_that_provider_session_alone() {
    for stack in [Stack::SqliteInProcess, Stack::SqliteRedis] {
        let Some((app, issuer)) = with_signing_issuer("logout_by_sid", stack).await else {
            return;
        };
        let kept = sign_in(&app, &issuer, "lee", "sid-a").await;
        let ended = sign_in(&app, &issuer, "lee", "sid-b").await;
        // `exp` is optional in a logout token.
        let mut claims = issuer.logout_claims(None, Some("sid-b"));
        claims.as_object_mut().unwrap().remove("exp");
        let token = issuer.sign(&claims);
        assert_eq!(
            post_logout_token(&app, &token).await,
            StatusCode::OK,
            "{stack:?}"
        );
        assert_eq!(status_of_me(&ended, &app).await, StatusCode::UNAUTHORIZED);
        assert_eq!(status_of_me(&kept, &app).await, StatusCode::OK);
        // Unknown sid or sub: nothing to end, still 200.
        let token = issuer.sign(&issuer.logout_claims(Some("nobody"), Some("nothing")));
        assert_eq!(post_logout_token(&app, &token).await, StatusCode::OK);
        assert_eq!(status_of_me(&kept, &app).await, StatusCode::OK);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_logout_token_is_refused_and_ends_nothing() {
    let Some((app, issuer)) = with_signing_issuer("invalid_logout_token", Stack::SqliteRedis).await
    else {
        return;
    };
    let session = sign_in(&app, &issuer, "max", "sid-m").await;
    let valid = issuer.logout_claims(Some("max"), Some("sid-m"));
    let mut cases = Vec::new();
    cases.push(("forged signature", issuer.forge(&valid)));
    cases.push(("alg none", issuer::unsigned(&valid)));
    let mut other_victim = valid.clone();
    other_victim["sub"] = "someone-else".into();
    cases.push(("tampered payload", issuer.tampered(&valid, &other_victim)));
    let with = |key: &str, value: serde_json::Value| {
        let mut c = valid.clone();
        c[key] = value;
        issuer.sign(&c)
    };
    let without = |key: &str| {
        let mut c = valid.clone();
        c.as_object_mut().unwrap().remove(key);
        issuer.sign(&c)
    };
    cases.push(("wrong aud", with("aud", "another-client".into())));
    cases.push(("wrong iss", with("iss", "http://127.0.0.1:1".into())));
    cases.push(("a nonce", with("nonce", "n".into())));
    cases.push((
        "expired",
        with("exp", (chrono::Utc::now().timestamp() - 600).into()),
    ));
    cases.push((
        "old iat",
        with("iat", (chrono::Utc::now().timestamp() - 3600).into()),
    ));
    cases.push((
        "future iat",
        with("iat", (chrono::Utc::now().timestamp() + 3600).into()),
    ));
    cases.push(("no events", without("events")));
    cases.push((
        "wrong event",
        with("events", json!({ "http://example/other": {} })),
    ));
    cases.push(("no jti", without("jti")));
    cases.push(("no iat", without("iat")));
    let mut neither = valid.clone();
    neither.as_object_mut().unwrap().remove("sub");
    neither.as_object_mut().unwrap().remove("sid");
    cases.push(("neither sub nor sid", issuer.sign(&neither)));
    cases.push(("not a JWT", "garbage".into()));
    for (what, token) in cases {
        assert_eq!(
            post_logout_token(&app, &token).await,
            StatusCode::BAD_REQUEST,
            "{what}"
        );
    }
    let res = reqwest::Client::new()
        .post(app.url(&format!("/api/auth/oidc/{PROVIDER}/backchannel-logout")))
        .form(&[("other", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::BAD_REQUEST,
        "no logout_token field"
    );
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_request");
    assert_eq!(
        status_of_me(&session, &app).await,
        StatusCode::OK,
        "nothing ended"
    );
}
