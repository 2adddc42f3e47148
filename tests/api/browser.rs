//! The browser app in a real Chromium: `tests/browser/run.mjs` (playwright-core)
//! drives Debian's `/usr/bin/chromium` against the real app on SQLite + Redis,
//! so an admin's revocation takes the production path. Screenshots land in
//! `test-artifacts/browser/`.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use crate::{
    helpers::{spawn_app, spawn_app_with, Stack, ADMIN_PASSWORD},
    services::service_missing,
};

/// The whole browser run, Chromium's start included; the script stops itself earlier.
const RUN_LIMIT: Duration = Duration::from_secs(150);

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Chromium to drive: `TETHER_TEST_CHROMIUM`, else Debian's.
fn chromium() -> PathBuf {
    std::env::var_os("TETHER_TEST_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Why the browser run cannot happen here, if it cannot.
fn missing_prerequisite() -> Option<String> {
    let node = std::process::Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !node.is_ok_and(|s| s.success()) {
        return Some("node is not on PATH".into());
    }
    let package = root().join("tests/browser/node_modules/playwright-core/package.json");
    if !package.is_file() {
        return Some("playwright-core is not installed (cd tests/browser && npm ci)".into());
    }
    let chromium = chromium();
    if !chromium.is_file() {
        return Some(format!(
            "{} is missing (apt-get install chromium)",
            chromium.display()
        ));
    }
    None
}

/// The app has no inline script or style, so the strict policy costs it nothing.
#[tokio::test]
async fn every_response_carries_a_strict_content_security_policy() {
    let test = "browser::every_response_carries_a_strict_content_security_policy";
    let Some(app) = spawn_app(test, Stack::SqliteInProcess).await else {
        return;
    };
    for (path, status) in [("/", 200), ("/api/auth/me", 401), ("/no-such-file.js", 404)] {
        let res = reqwest::get(app.url(path)).await.unwrap();
        assert_eq!(res.status(), status, "{path}");
        let csp = res
            .headers()
            .get("content-security-policy")
            .unwrap_or_else(|| panic!("no Content-Security-Policy on {path}"))
            .to_str()
            .unwrap();
        assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_app_works_end_to_end_in_chromium() {
    let test = "browser::the_browser_app_works_end_to_end_in_chromium";
    if let Some(why) = missing_prerequisite() {
        service_missing(test, "Chromium/Playwright", &why);
        return;
    }
    let web = root().join("web");
    let web = web.to_str().expect("the checkout path is UTF-8");
    let Some(app) = spawn_app_with(test, Stack::SqliteRedis, &[("TETHER_WEB_DIR", web)]).await
    else {
        return;
    };
    let alice = app.create_user("alice", &["user"]).await;
    let bob = app.create_user("bob", &["user"]).await;
    let artifacts = root().join("test-artifacts/browser");
    let _ = std::fs::remove_dir_all(&artifacts);
    std::fs::create_dir_all(&artifacts).expect("create test-artifacts/browser");

    let mut child = std::process::Command::new("node")
        .arg("run.mjs")
        .current_dir(root().join("tests/browser"))
        .env("TETHER_URL", &app.address)
        .env("TETHER_ADMIN_USER", "admin")
        .env("TETHER_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("TETHER_USER_A", "alice")
        .env("TETHER_PASSWORD_A", &alice)
        .env("TETHER_USER_B", "bob")
        .env("TETHER_PASSWORD_B", &bob)
        .env("TETHER_ARTIFACTS", &artifacts)
        .env("TETHER_CHROMIUM", chromium())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start node");
    let stdout = read_all(child.stdout.take());
    let stderr = read_all(child.stderr.take());
    // Poll rather than block: the server under test runs on this runtime.
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for node") {
            break Some(status);
        }
        if started.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let log = format!(
        "{}{}",
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default()
    );
    let _ = std::fs::write(artifacts.join("run.log"), &log);
    println!("{log}");
    let status =
        status.unwrap_or_else(|| panic!("the browser run took over {RUN_LIMIT:?}:\n{log}"));
    assert!(
        status.success(),
        "the browser run failed ({status}); screenshots and page HTML in {}:\n{log}",
        artifacts.display()
    );
}

/// Reads a child's pipe to the end on its own thread, so a full pipe never stalls the child.
fn read_all(pipe: Option<impl std::io::Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        text
    })
}
