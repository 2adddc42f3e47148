//! The browser app's files are served at `/`; unknown paths stay JSON 404s.

use crate::helpers::{spawn_app, Stack};

#[tokio::test]
async fn the_web_folder_is_served_at_the_root() {
    let Some(app) = spawn_app(
        "web::the_web_folder_is_served_at_the_root",
        Stack::SqliteInProcess,
    )
    .await
    else {
        return;
    };
    let index = reqwest::get(app.url("/")).await.unwrap();
    assert_eq!(index.status(), 200);
    assert!(index.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let missing = reqwest::get(app.url("/no-such-file.js")).await.unwrap();
    assert_eq!(missing.status(), 404);
    let body: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
}
