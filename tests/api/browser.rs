//! The browser app in real browsers, against the real app on SQLite + Redis,
//! so an admin's revocation takes the production path. One scenario
//! (`tests/browser/scenario.mjs`) runs in each browser, through its driver:
//!
//! - Chromium: `tests/browser/chromium.mjs` (playwright-core) drives Debian's
//!   `/usr/bin/chromium`.
//! - Firefox: `tests/browser/firefox.mjs` (selenium-webdriver over WebDriver
//!   classic + BiDi) drives Debian's `/usr/bin/firefox-esr` through
//!   `geckodriver` (from crates.io), since Playwright drives only its own
//!   patched Firefox build, which cannot be downloaded here.
//!
//! Screenshots land in `test-artifacts/browser/` (Firefox's as `firefox-*`).

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use crate::{
    helpers::{spawn_app, spawn_app_with, Stack, ADMIN_PASSWORD},
    services::service_missing,
};

/// The whole Chromium run, Chromium's start included; the script stops itself earlier.
const RUN_LIMIT: Duration = Duration::from_secs(150);
/// The whole Firefox run, both Firefox starts included; the script stops itself earlier.
const FIREFOX_RUN_LIMIT: Duration = Duration::from_secs(100);
/// Firefox's files in the artifacts folder start with this; Chromium's do not.
const FIREFOX_PREFIX: &str = "firefox-";

/// One browser run at a time: two browsers at once on a small machine would
/// slow each other past the tests' timing checks (revocation within 2 s).
pub(crate) static ONE_BROWSER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Chromium to drive: `TETHER_TEST_CHROMIUM`, else Debian's.
pub(crate) fn chromium() -> PathBuf {
    std::env::var_os("TETHER_TEST_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Firefox to drive: `TETHER_TEST_FIREFOX`, else Debian's ESR.
fn firefox() -> PathBuf {
    std::env::var_os("TETHER_TEST_FIREFOX")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/firefox-esr"))
}

/// geckodriver: `TETHER_TEST_GECKODRIVER`, else the first on PATH, else
/// `~/.cargo/bin/geckodriver` (where `cargo install` puts it).
fn geckodriver() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("TETHER_TEST_GECKODRIVER") {
        return Some(PathBuf::from(path)).filter(|path| path.is_file());
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("geckodriver"));
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))
        .map(|cargo| cargo.join("bin/geckodriver"));
    on_path.chain(cargo_bin).find(|path| path.is_file())
}

fn node_missing() -> Option<String> {
    let node = std::process::Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !node.is_ok_and(|s| s.success()) {
        return Some("node is not on PATH".into());
    }
    None
}

fn npm_package_missing(package: &str) -> Option<String> {
    let manifest = root().join(format!("tests/browser/node_modules/{package}/package.json"));
    (!manifest.is_file())
        .then(|| format!("{package} is not installed (cd tests/browser && npm ci)"))
}

/// Why the Chromium run cannot happen here, if it cannot.
pub(crate) fn missing_prerequisite() -> Option<String> {
    if let Some(why) = node_missing().or_else(|| npm_package_missing("playwright-core")) {
        return Some(why);
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

/// Why the Firefox run cannot happen here, if it cannot.
fn missing_firefox_prerequisite() -> Result<PathBuf, String> {
    if let Some(why) = node_missing().or_else(|| npm_package_missing("selenium-webdriver")) {
        return Err(why);
    }
    let firefox = firefox();
    if !firefox.is_file() {
        return Err(format!(
            "{} is missing (apt-get install firefox-esr)",
            firefox.display()
        ));
    }
    geckodriver().ok_or_else(|| {
        "no geckodriver at TETHER_TEST_GECKODRIVER, on PATH or in ~/.cargo/bin \
         (cargo install geckodriver --locked)"
            .into()
    })
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
    let chromium = chromium();
    let browser_env = [("TETHER_CHROMIUM", chromium.as_os_str())];
    run_browser_script(test, "chromium.mjs", &browser_env, RUN_LIMIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_app_works_end_to_end_in_firefox() {
    let test = "browser::the_browser_app_works_end_to_end_in_firefox";
    let geckodriver = match missing_firefox_prerequisite() {
        Ok(geckodriver) => geckodriver,
        Err(why) => {
            service_missing(test, "Firefox/geckodriver/selenium-webdriver", &why);
            return;
        }
    };
    let firefox = firefox();
    let browser_env = [
        ("TETHER_FIREFOX", firefox.as_os_str()),
        ("TETHER_GECKODRIVER", geckodriver.as_os_str()),
    ];
    run_browser_script(test, "firefox.mjs", &browser_env, FIREFOX_RUN_LIMIT).await;
}

/// Starts the app (SQLite + Redis, serving `web/`), creates the admin's two
/// users, runs `node tests/browser/{script}` against it and fails with its log
/// unless it passes within `limit`. The run's log goes to the artifacts folder.
async fn run_browser_script(
    test: &str,
    script: &str,
    browser_env: &[(&str, &std::ffi::OsStr)],
    limit: Duration,
) {
    let _one_at_a_time = ONE_BROWSER_AT_A_TIME.lock().await;
    let firefox = script == "firefox.mjs";
    // No TETHER_WEB_DIR: the browsers get the app embedded in the binary,
    // as users do.
    let Some(app) = spawn_app_with(test, Stack::SqliteRedis, &[]).await else {
        return;
    };
    let alice = app.create_user("alice", &["user"]).await;
    let bob = app.create_user("bob", &["user"]).await;
    let artifacts = root().join("test-artifacts/browser");
    clear_artifacts(&artifacts, firefox);

    let mut command = std::process::Command::new("node");
    command
        .arg(script)
        .current_dir(root().join("tests/browser"))
        .env("TETHER_URL", &app.address)
        .env("TETHER_ADMIN_USER", "admin")
        .env("TETHER_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("TETHER_USER_A", "alice")
        .env("TETHER_PASSWORD_A", &alice)
        .env("TETHER_USER_B", "bob")
        .env("TETHER_PASSWORD_B", &bob)
        .env("TETHER_ARTIFACTS", &artifacts)
        .envs(browser_env.iter().copied());
    let (status, log) = run_node(command, limit).await;
    let log_name = if firefox {
        "firefox-run.log"
    } else {
        "run.log"
    };
    let _ = std::fs::write(artifacts.join(log_name), &log);
    println!("{log}");
    let status = status.unwrap_or_else(|| panic!("the browser run took over {limit:?}:\n{log}"));
    assert!(
        status.success(),
        "the browser run failed ({status}); screenshots and page HTML in {}:\n{log}",
        artifacts.display()
    );
}

/// Removes the previous run's files of one browser (Firefox's `firefox-*`, or
/// all the others for Chromium), leaving the other browser's in place.
fn clear_artifacts(artifacts: &Path, firefox: bool) {
    std::fs::create_dir_all(artifacts).expect("create test-artifacts/browser");
    for entry in std::fs::read_dir(artifacts).expect("read test-artifacts/browser") {
        let Ok(entry) = entry else { continue };
        let is_firefox = entry
            .file_name()
            .to_string_lossy()
            .starts_with(FIREFOX_PREFIX);
        if is_firefox == firefox {
            let path = entry.path();
            let _ = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
        }
    }
}

/// Runs `command` (a node script) in its own process group, so a run over
/// `limit` is ended with its browsers and drivers. Polls rather than blocks:
/// the server under test runs on this runtime. Returns the exit status
/// (`None`: killed at the limit) and stdout then stderr.
pub(crate) async fn run_node(
    mut command: std::process::Command,
    limit: Duration,
) -> (Option<std::process::ExitStatus>, String) {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command.spawn().expect("start node");
    let stdout = read_all(child.stdout.take());
    let stderr = read_all(child.stderr.take());
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for node") {
            break Some(status);
        }
        if started.elapsed() > limit {
            kill_group(&mut child);
            break None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let log = format!(
        "{}{}",
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default()
    );
    (status, log)
}

/// Ends a run over its limit: node, and the browsers and drivers it started.
fn kill_group(child: &mut std::process::Child) {
    #[cfg(unix)]
    let _ = std::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .status();
    let _ = child.kill();
    let _ = child.wait();
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
