//! Sign-in through the real OpenID Provider, end to end.

use reqwest::StatusCode;
use serde_json::json;
use tether::ws::protocol::ServerEvent;

use super::{query, with_real_provider, OidcBrowser, CLIENT_ID, PROVIDER};
use crate::helpers::{tether_cli, Stack, PATIENCE};

async fn first_sign_in_creates_a_linked_user_with_a_session_like_a_password_one(stack: Stack) {
    let name = format!("first_sign_in_{stack:?}");
    let Some((app, provider)) = with_real_provider(&name, stack).await else {
        return;
    };
    provider
        .set_account(json!({
            "sub": "ann-sub-1", "preferred_username": "ann", "email": "ann@corp.example",
            "tether_roles": ["user", "messages-admin", "no-such-role"],
        }))
        .await;
    let browser = OidcBrowser::new();

    // start: exactly a 302 to the authorization endpoint with PKCE S256.
    let start = app.url(&format!(
        "/api/auth/oidc/{PROVIDER}/start?return_to=%2F%23%2Fsessions"
    ));
    let (status, location) = browser.get(&start).await;
    assert_eq!(status, StatusCode::FOUND);
    let location = location.unwrap();
    assert!(
        location.starts_with(&format!("{}/auth?", provider.issuer)),
        "{location}"
    );
    let q = query(&location);
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(
        q["redirect_uri"],
        app.url(&format!("/api/auth/oidc/{PROVIDER}/callback"))
    );
    assert_eq!(q["scope"], "openid profile email");
    assert_eq!(q["code_challenge_method"], "S256");
    for p in ["state", "nonce", "code_challenge"] {
        assert!(q[p].len() >= 16, "{p} is random: {:?}", q[p]);
    }

    // Through the provider and back: to return_to, with a new session.
    let landed = browser.sign_in(&app, "/#/sessions").await;
    assert_eq!(landed, app.url("/#/sessions"));
    let me = browser
        .tether(&app)
        .expect("a session cookie")
        .me(&app)
        .await;
    assert_eq!(me["user"]["username"], "ann");
    // The roles claim, unknown names ignored.
    assert_eq!(me["user"]["roles"], json!(["messages-admin", "user"]));
    let mut socket = browser.tether(&app).unwrap().socket(&app).await;
    socket.send_ping().await;

    // The user is linked, has no password, and `users list` shows the link.
    let refused = app.try_login("ann", "any-password-at-all").await;
    assert_eq!(
        refused.err(),
        Some(401),
        "no password sign-in for a provider user"
    );
    let out = tether_cli(&app, &["users", "list"], "").await;
    assert!(out.ok, "{}", out.stderr);
    let line = out
        .stdout
        .lines()
        .find(|l| l.contains("ann"))
        .expect("ann listed");
    assert!(line.contains(&format!("{PROVIDER}:ann-sub-1")), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_sign_in_on_sqlite_in_process() {
    first_sign_in_creates_a_linked_user_with_a_session_like_a_password_one(Stack::SqliteInProcess)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_sign_in_on_postgres_redis() {
    first_sign_in_creates_a_linked_user_with_a_session_like_a_password_one(Stack::PostgresRedis)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_sign_in_finds_the_same_user_and_its_roles_follow_the_claim_live() {
    let Some((app, provider)) =
        with_real_provider("a_later_sign_in_finds_the_same_user", Stack::SqliteRedis).await
    else {
        return;
    };
    let account =
        json!({ "sub": "bob-sub", "preferred_username": "bob", "tether_roles": ["user"] });
    provider.set_account(account).await;
    let first = OidcBrowser::new();
    first.sign_in(&app, "/").await;
    let first_me = first.tether(&app).unwrap().me(&app).await;
    let mut socket = first.tether(&app).unwrap().socket(&app).await;

    // Same person, new roles at the provider, another browser.
    provider
        .set_account(json!({
            "sub": "bob-sub", "preferred_username": "someone-else",
            "tether_roles": ["user", "messages-admin"],
        }))
        .await;
    let second = OidcBrowser::new();
    second.sign_in(&app, "/").await;
    let second_me = second.tether(&app).unwrap().me(&app).await;
    assert_eq!(second_me["user"]["id"], first_me["user"]["id"]);
    assert_eq!(second_me["user"]["username"], "bob", "the name is kept");
    assert_eq!(
        second_me["user"]["roles"],
        json!(["messages-admin", "user"])
    );
    assert_ne!(second_me["session"]["id"], first_me["session"]["id"]);

    // The first browser's socket hears about it.
    let changed = tokio::time::timeout(PATIENCE, async {
        loop {
            if let crate::helpers::Seen::Frame(tether::ws::protocol::ServerFrame::Event(
                ServerEvent::PermissionsChanged { permissions },
            )) = socket.next().await
            {
                return permissions;
            }
        }
    })
    .await
    .expect("permissions.changed reaches the live socket");
    assert!(
        changed.iter().any(|p| p == "read:admin-messages"),
        "{changed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_name_gets_a_suffix_and_an_email_never_links_to_an_existing_user() {
    let Some((app, provider)) =
        with_real_provider("a_taken_name_gets_a_suffix", Stack::SqliteInProcess).await
    else {
        return;
    };
    app.create_user("carol", &["admin"]).await;
    let local_id = app.user_id("carol").await.to_string();
    provider
        .set_account(json!({ "sub": "carol-at-idp", "email": "carol@corp.example" }))
        .await;
    let browser = OidcBrowser::new();
    browser.sign_in(&app, "/").await;
    let me = browser.tether(&app).unwrap().me(&app).await;
    assert_eq!(me["user"]["username"], "carol-2");
    assert_ne!(me["user"]["id"], local_id.as_str());
    // No roles claim in the token: the default roles.
    assert_eq!(me["user"]["roles"], json!(["user"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_user_cannot_sign_in_through_the_provider() {
    let Some((app, provider)) =
        with_real_provider("a_disabled_user_cannot_sign_in", Stack::SqliteRedis).await
    else {
        return;
    };
    provider
        .set_account(json!({ "sub": "dan-sub", "preferred_username": "dan" }))
        .await;
    OidcBrowser::new().sign_in(&app, "/").await;
    let out = tether_cli(&app, &["users", "disable", "dan"], "").await;
    assert!(out.ok, "{}", out.stderr);

    let browser = OidcBrowser::new();
    let landed = browser.sign_in(&app, "/#/admin").await;
    assert_eq!(landed, app.url("/#/signin?error=disabled"));
    assert!(browser.tether(&app).is_none(), "no session cookie");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_is_usable_once_and_only_by_the_browser_that_started_it() {
    let Some((app, provider)) =
        with_real_provider("a_callback_is_usable_once", Stack::SqliteRedis).await
    else {
        return;
    };
    provider
        .set_account(json!({ "sub": "eve-sub", "preferred_username": "eve" }))
        .await;

    // Another browser cannot finish this browser's sign-in.
    let victim = OidcBrowser::new();
    let callback = victim.reach_callback(&app, "/").await;
    let attacker = OidcBrowser::new();
    let (status, location) = attacker.get(&callback).await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(location.unwrap(), app.url("/#/signin?error=state"));
    assert!(attacker.tether(&app).is_none());

    // The state was used up by that attempt: not even its own browser can now.
    let (_, location) = victim.get(&callback).await;
    assert_eq!(location.unwrap(), app.url("/#/signin?error=state"));

    // A fresh sign-in works once; the same callback again is refused.
    let callback = victim.reach_callback(&app, "/").await;
    let (_, location) = victim.get(&callback).await;
    assert_eq!(location.unwrap(), app.url("/"));
    let (_, location) = victim.get(&callback).await;
    assert_eq!(location.unwrap(), app.url("/#/signin?error=state"));

    // Missing state, an unknown one, and an error from the provider.
    for path in [
        "callback?code=x",
        "callback?code=x&state=never-issued",
        "callback?error=access_denied&state=never-issued",
    ] {
        let (status, location) = victim
            .get(&app.url(&format!("/api/auth/oidc/{PROVIDER}/{path}")))
            .await;
        assert_eq!(status, StatusCode::FOUND, "{path}");
        assert_eq!(
            location.unwrap(),
            app.url("/#/signin?error=state"),
            "{path}"
        );
    }
    let (state, _) = super::issuer::start(&victim, &app, "/").await;
    let path = format!("callback?error=access_denied&state={state}");
    let (_, location) = victim
        .get(&app.url(&format!("/api/auth/oidc/{PROVIDER}/{path}")))
        .await;
    assert_eq!(location.unwrap(), app.url("/#/signin?error=denied"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn return_to_never_leaves_the_site() {
    let Some((app, provider)) =
        with_real_provider("return_to_never_leaves_the_site", Stack::SqliteInProcess).await
    else {
        return;
    };
    provider
        .set_account(json!({ "sub": "fay-sub", "preferred_username": "fay" }))
        .await;
    for evil in [
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil.example",
        "evil",
    ] {
        let landed = OidcBrowser::new().sign_in(&app, evil).await;
        assert_eq!(landed, app.url("/"), "{evil}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_again_in_the_same_browser_ends_its_earlier_session() {
    let Some((app, provider)) = with_real_provider(
        "signing_in_again_ends_the_earlier_session",
        Stack::SqliteRedis,
    )
    .await
    else {
        return;
    };
    provider
        .set_account(json!({ "sub": "oli-sub", "preferred_username": "oli" }))
        .await;
    let browser = OidcBrowser::new();
    browser.sign_in(&app, "/").await;
    let earlier = browser.tether(&app).unwrap();
    let earlier_id = earlier.session_id(&app).await;
    // The provider remembers the browser: no login page this time.
    browser.sign_in(&app, "/").await;
    let now = browser.tether(&app).unwrap();
    assert_ne!(now.cookie, earlier.cookie, "a fresh session key");
    assert_ne!(now.session_id(&app).await, earlier_id);
    let res = earlier.get(&app.url("/api/auth/me")).await;
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "the earlier session ended"
    );
}

/// A provider sign-in is counted under its provider id and audited like a
/// password one; a failed callback is counted by its outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_sign_in_is_counted_and_audited() {
    let test = "a_provider_sign_in_is_counted_and_audited";
    let port = super::free_port();
    let Some(provider) = super::RealProvider::start(test, port).await else {
        return;
    };
    let vars = super::provider_vars(&provider.issuer, port);
    let Some(app) = super::spawn_with(
        test,
        Stack::SqliteInProcess,
        &vars,
        &[("TETHER_METRICS_BIND", "127.0.0.1:0")],
    )
    .await
    else {
        return;
    };
    provider
        .set_account(json!({ "sub": "mia-sub", "preferred_username": "mia" }))
        .await;
    let browser = OidcBrowser::new();
    assert_eq!(browser.sign_in(&app, "/").await, app.url("/"));
    let (status, location) = OidcBrowser::new()
        .get(&app.url(&format!(
            "/api/auth/oidc/{PROVIDER}/callback?code=x&state=never-issued"
        )))
        .await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(location, Some(app.url("/#/signin?error=state")));

    let scrape = crate::metrics::scrape(&app).await;
    let logins = |provider: &str, outcome: &str| {
        crate::metrics::value(
            &scrape,
            "tether_logins_total",
            &[("provider", provider), ("outcome", outcome)],
        )
    };
    assert_eq!(logins(PROVIDER, "success"), 1.0);
    assert_eq!(logins(PROVIDER, "bad_request"), 1.0, "the unknown state");
    assert_eq!(logins("password", "success"), 0.0, "not a password sign-in");

    let admin = app.login_admin().await;
    let events = crate::audit::eventually(&app, &admin, "action=login.success", 2).await;
    let mia = events
        .iter()
        .find(|e| e["target"]["username"] == "mia")
        .unwrap_or_else(|| panic!("mia's sign-in is audited: {events:?}"));
    assert_eq!(mia["actor"]["type"], "user");
    assert_eq!(mia["actor"]["username"], "mia");
    assert!(mia["target"]["session_id"].is_string(), "{mia}");
}
