//! Sign-in through the real provider in Chromium (`tests/browser/oidc.mjs`):
//! the provider button, the deep link kept over the round trip, back-channel
//! logout seen by the page, and a provider error in words.

use std::{path::Path, time::Duration};

use serde_json::json;

use super::with_real_provider;
use crate::{
    browser::{chromium, missing_prerequisite, run_node, ONE_BROWSER_AT_A_TIME},
    helpers::Stack,
    services::service_missing,
};

const RUN_LIMIT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_through_the_provider_in_chromium() {
    let test = "oidc::browser::signing_in_through_the_provider_in_chromium";
    if let Some(why) = missing_prerequisite() {
        service_missing(test, "Chromium/Playwright", &why);
        return;
    }
    let _one_at_a_time = ONE_BROWSER_AT_A_TIME.lock().await;
    let Some((app, provider)) = with_real_provider(test, Stack::SqliteRedis).await else {
        return;
    };
    provider
        .set_account(json!({ "sub": "nia-sub", "preferred_username": "nia" }))
        .await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let artifacts = root.join("test-artifacts/oidc-browser");
    let _ = std::fs::remove_dir_all(&artifacts);
    std::fs::create_dir_all(&artifacts).expect("artifacts folder");

    let mut command = std::process::Command::new("node");
    command
        .arg("oidc.mjs")
        .current_dir(root.join("tests/browser"))
        .env("TETHER_URL", &app.address)
        .env("TETHER_OIDC_ISSUER", &provider.issuer)
        .env("TETHER_OIDC_SUB", "nia-sub")
        .env("TETHER_CHROMIUM", chromium())
        .env("TETHER_ARTIFACTS", &artifacts);
    let (status, log) = run_node(command, RUN_LIMIT).await;
    let _ = std::fs::write(artifacts.join("run.log"), &log);
    let status = status.unwrap_or_else(|| panic!("the run took over {RUN_LIMIT:?}:\n{log}"));
    assert!(status.success(), "the run failed ({status}):\n{log}");
    assert!(log.contains("oidc browser run: ok"), "{log}");
}
