//! Sign-in throttling: repeated failures get 429 with `Retry-After`, on
//! every instance, until the window passes.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, Stack, TestApp, ADMIN_PASSWORD};

crate::on_every_stack!(
    repeated_failures_lock_the_name_out_with_retry_after,
    a_successful_sign_in_forgives_earlier_failures,
);

async fn attempt(app: &TestApp, username: &str, password: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url("/api/auth/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap()
}

async fn repeated_failures_lock_the_name_out_with_retry_after(app: TestApp) {
    for _ in 0..5 {
        assert_eq!(attempt(&app, "admin", "wrong-password").await.status(), 401);
    }
    // Locked: even the right password is refused, before it is checked.
    let res = attempt(&app, "admin", ADMIN_PASSWORD).await;
    assert_eq!(res.status(), 429);
    let wait: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&wait), "{wait}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains(&format!("{wait} s")));
    // Names that do not exist are counted the same way: no account enumeration.
    for _ in 0..5 {
        assert_eq!(attempt(&app, "ghost", "whatever-pw").await.status(), 401);
    }
    assert_eq!(attempt(&app, "ghost", "whatever-pw").await.status(), 429);
    // Another account from the same address is not locked out.
    let password = app.create_user("dora", &["user"]).await;
    assert_eq!(attempt(&app, "dora", &password).await.status(), 200);
}

async fn a_successful_sign_in_forgives_earlier_failures(app: TestApp) {
    for _ in 0..4 {
        assert_eq!(attempt(&app, "admin", "wrong-password").await.status(), 401);
    }
    assert_eq!(attempt(&app, "admin", ADMIN_PASSWORD).await.status(), 200);
    for _ in 0..4 {
        assert_eq!(attempt(&app, "admin", "wrong-password").await.status(), 401);
    }
    assert_eq!(attempt(&app, "admin", ADMIN_PASSWORD).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lockout_ends_with_its_window_and_is_shared_by_instances() {
    let name = "throttle::the_lockout_ends_with_its_window_and_is_shared_by_instances";
    let extra = [
        ("TETHER_LOGIN_MAX_FAILURES", "2"),
        ("TETHER_LOGIN_LOCKOUT_SECS", "1"),
    ];
    for stack in [Stack::SqliteInProcess, Stack::SqliteRedis] {
        let Some(app) = spawn_app_with(name, stack, &extra).await else {
            continue;
        };
        for _ in 0..2 {
            assert_eq!(attempt(&app, "admin", "wrong-password").await.status(), 401);
        }
        assert_eq!(attempt(&app, "admin", ADMIN_PASSWORD).await.status(), 429);
        if stack == Stack::SqliteRedis {
            let peer = app.spawn_peer().await;
            assert_eq!(attempt(&peer, "admin", ADMIN_PASSWORD).await.status(), 429);
        }
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(
            attempt(&app, "admin", ADMIN_PASSWORD).await.status(),
            200,
            "{stack:?}"
        );
    }
}
