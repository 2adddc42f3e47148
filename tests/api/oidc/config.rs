//! Provider settings, the providers list, and a provider that is not
//! reachable at start.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use super::{free_port, issuer::SigningIssuer, provider_vars, spawn_with, OidcBrowser, PROVIDER};
use crate::{cli::run_plain, helpers::Stack};

#[test]
fn invalid_provider_settings_stop_start_up_with_exit_2_naming_the_variable() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("TETHER_OIDC_PROVIDERS", "Not_An_Id")],
            "TETHER_OIDC_PROVIDERS",
        ),
        (
            &[("TETHER_OIDC_PROVIDERS", "okta")],
            "TETHER_OIDC_OKTA_ISSUER",
        ),
        (
            &[
                ("TETHER_OIDC_PROVIDERS", "okta"),
                ("TETHER_OIDC_OKTA_ISSUER", "http://idp.example.com"),
                ("TETHER_OIDC_OKTA_CLIENT_ID", "c"),
            ],
            "TETHER_OIDC_OKTA_ISSUER",
        ),
        (
            &[
                ("TETHER_OIDC_PROVIDERS", "okta"),
                ("TETHER_OIDC_OKTA_ISSUER", "https://idp.example.com"),
            ],
            "TETHER_OIDC_OKTA_CLIENT_ID",
        ),
    ];
    for (env, var) in cases {
        let out = run_plain(env, &["serve"]);
        assert_eq!(out.code, Some(2), "{var}: {}", out.stderr);
        assert!(out.stderr.contains(var), "{var}: {}", out.stderr);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_issuer_answers_503_until_discovery_succeeds() {
    let issuer_port = free_port();
    let issuer_url = format!("http://127.0.0.1:{issuer_port}");
    let mut vars = provider_vars(&issuer_url, free_port());
    vars.extend(
        [
            ("TETHER_OIDC_PROVIDERS", "corp,google-like"),
            ("TETHER_OIDC_GOOGLE_LIKE_ISSUER", "https://127.0.0.1:1"),
            ("TETHER_OIDC_GOOGLE_LIKE_CLIENT_ID", "g"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    let started = Instant::now();
    let Some(app) = spawn_with("unreachable_issuer", Stack::SqliteInProcess, &vars, &[]).await
    else {
        return;
    };
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "start-up was not blocked"
    );

    // Listed, in order, after password.
    let list: serde_json::Value = reqwest::get(app.url("/api/auth/providers"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        list,
        json!({ "providers": [
            { "id": "password", "kind": "password" },
            { "id": PROVIDER, "kind": "oidc", "name": "Corp SSO",
              "start_url": format!("/api/auth/oidc/{PROVIDER}/start") },
            { "id": "google-like", "kind": "oidc", "name": "google-like",
              "start_url": "/api/auth/oidc/google-like/start" },
        ]})
    );

    let browser = OidcBrowser::new();
    let start = app.url(&format!("/api/auth/oidc/{PROVIDER}/start"));
    let res = browser.http.get(&start).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable");

    // The provider comes up: discovery is retried in the background.
    let _issuer = SigningIssuer::start_on(issuer_port).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, _) = browser.get(&start).await;
        if status == StatusCode::FOUND {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {status} after the issuer came up"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_roles_the_user_store_lacks_stop_start_up_naming_the_variable() {
    let db = crate::test_db::TestDb::sqlite();
    let vars: std::collections::HashMap<String, String> =
        provider_vars("http://127.0.0.1:1", free_port())
            .into_iter()
            .chain([
                ("DATABASE_URL".to_owned(), db.url.clone()),
                (
                    "TETHER_OIDC_CORP_DEFAULT_ROLES".to_owned(),
                    "user,no-such-role".to_owned(),
                ),
            ])
            .collect();
    let config = tether::config::Config::from_lookup(|k| vars.get(k).cloned()).unwrap();
    let err = match tether::startup::Application::build(config).await {
        Ok(_) => panic!("start-up must refuse an unknown default role"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("TETHER_OIDC_CORP_DEFAULT_ROLES"), "{err}");
    assert!(err.contains("no-such-role"), "{err}");
}
