//! The browser app is built into the binary and served at `/`, wherever the
//! binary runs; `TETHER_WEB_DIR` serves a folder on disk instead. Unknown
//! paths stay JSON 404s.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use reqwest::{header, StatusCode};

use crate::{
    helpers::{spawn_app, spawn_app_with, Stack, ADMIN_PASSWORD},
    test_db::TestDb,
};

/// The app's sources, to compare what is served with.
fn source(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("web").join(name))
        .unwrap_or_else(|e| panic!("web/{name}: {e}"))
}

fn content_type(res: &reqwest::Response) -> String {
    res.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_embedded_app_is_served_without_a_web_dir() {
    let Some(app) = spawn_app(
        "web::the_embedded_app_is_served_without_a_web_dir",
        Stack::SqliteInProcess,
    )
    .await
    else {
        return;
    };
    assert_eq!(app.state.config.web_dir, None);
    let http = reqwest::Client::new();
    for (path, file, kind) in [
        ("/", "index.html", "text/html"),
        ("/index.html", "index.html", "text/html"),
        ("/js/main.js", "js/main.js", "javascript"),
        ("/js/views/signin.js", "js/views/signin.js", "javascript"),
        ("/css/app.css", "css/app.css", "text/css"),
        ("/favicon.svg", "favicon.svg", "image/svg+xml"),
    ] {
        let res = http.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        assert!(
            content_type(&res).contains(kind),
            "{path}: {}",
            content_type(&res)
        );
        assert_eq!(res.text().await.unwrap(), source(file), "{path}");
    }
    // HEAD: the same headers, no body.
    let head = http.head(app.url("/")).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert!(content_type(&head).starts_with("text/html"));
    assert!(head.bytes().await.unwrap().is_empty());
    // The API still wins over the files.
    let health = http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(content_type(&health).starts_with("application/json"));
}

/// Integrators import the client module from the server itself, and read its types beside it.
#[tokio::test]
async fn the_client_module_is_served_at_the_root_with_its_types() {
    let Some(app) = spawn_app(
        "web::the_client_module_is_served_at_the_root_with_its_types",
        Stack::SqliteInProcess,
    )
    .await
    else {
        return;
    };
    let http = reqwest::Client::new();
    let module = http.get(app.url("/tether-client.js")).send().await.unwrap();
    assert_eq!(module.status(), 200);
    // A browser runs a module only with a JavaScript type.
    assert!(
        content_type(&module).starts_with("text/javascript"),
        "{}",
        content_type(&module)
    );
    assert_eq!(module.headers()[header::CACHE_CONTROL], "no-cache");
    let text = module.text().await.unwrap();
    assert_eq!(text, source("tether-client.js"));
    assert!(text.contains("export class Tether "), "no Tether export");
    assert!(
        text.contains("export class TetherError "),
        "no TetherError export"
    );

    let types = http
        .get(app.url("/tether-client.d.ts"))
        .send()
        .await
        .unwrap();
    assert_eq!(types.status(), 200);
    assert_eq!(
        types.headers()["content-type"],
        "text/plain; charset=utf-8",
        "a declaration file is text, not the MPEG stream `.ts` also names"
    );
    let text = types.text().await.unwrap();
    assert_eq!(text, source("tether-client.d.ts"));
    assert!(
        text.contains("export declare class Tether "),
        "no Tether type"
    );
}

#[tokio::test]
async fn a_browser_revalidates_with_the_etag_and_gets_304() {
    let Some(app) = spawn_app(
        "web::a_browser_revalidates_with_the_etag_and_gets_304",
        Stack::SqliteInProcess,
    )
    .await
    else {
        return;
    };
    let http = reqwest::Client::new();
    let first = http.get(app.url("/js/main.js")).send().await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()[header::CACHE_CONTROL], "no-cache");
    let etag = first.headers()[header::ETAG].clone();
    assert!(etag.to_str().unwrap().starts_with('"'), "{etag:?}");

    let again = http
        .get(app.url("/js/main.js"))
        .header(header::IF_NONE_MATCH, etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(again.headers()[header::ETAG], etag);
    assert_eq!(again.headers()[header::CACHE_CONTROL], "no-cache");
    assert!(again.bytes().await.unwrap().is_empty());

    // Another file, or an old version of this one, is sent in full.
    for (path, tag) in [
        ("/css/app.css", etag.to_str().unwrap()),
        ("/js/main.js", "\"an-older-version\""),
    ] {
        let res = http
            .get(app.url(path))
            .header(header::IF_NONE_MATCH, tag)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{path}");
        assert!(!res.bytes().await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn unknown_files_are_json_404s_and_files_only_answer_get() {
    let Some(app) = spawn_app(
        "web::unknown_files_are_json_404s_and_files_only_answer_get",
        Stack::SqliteInProcess,
    )
    .await
    else {
        return;
    };
    let http = reqwest::Client::new();
    for path in [
        "/no-such-file.js",
        "/js/",
        "/js/../../Cargo.toml",
        "/api/nope",
    ] {
        let res = http.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 404, "{path}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found", "{path}");
    }
    let post = http.post(app.url("/index.html")).send().await.unwrap();
    assert_eq!(post.status(), 405);
    let body: serde_json::Value = post.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");
}

/// A fresh folder under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "tether-test-{what}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn tether_web_dir_serves_live_files_from_disk() {
    let dir = TempDir::new("web-dir");
    std::fs::write(dir.0.join("index.html"), "<p>first</p>").unwrap();
    let dir_str = dir.0.to_str().unwrap().to_owned();
    let Some(app) = spawn_app_with(
        "web::tether_web_dir_serves_live_files_from_disk",
        Stack::SqliteInProcess,
        &[("TETHER_WEB_DIR", &dir_str)],
    )
    .await
    else {
        return;
    };
    let get = |path: &'static str| {
        let url = app.url(path);
        async move { reqwest::get(url).await.unwrap() }
    };
    assert_eq!(get("/").await.text().await.unwrap(), "<p>first</p>");
    // An edit shows without a restart, and so does a new file.
    std::fs::write(dir.0.join("index.html"), "<p>second, longer</p>").unwrap();
    std::fs::write(dir.0.join("extra.js"), "export const x = 1;").unwrap();
    assert_eq!(
        get("/").await.text().await.unwrap(),
        "<p>second, longer</p>"
    );
    let js = get("/extra.js").await;
    assert!(content_type(&js).contains("javascript"));
    assert_eq!(js.text().await.unwrap(), "export const x = 1;");
    // The embedded app is not mixed in; unknown files stay JSON 404s.
    let missing = get("/js/main.js").await;
    assert_eq!(missing.status(), 404);
    let body: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
}

/// The `tether` binary, killed when the test ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_binary_serves_the_app_from_an_empty_working_directory() {
    let workdir = TempDir::new("empty-cwd");
    let db = TestDb::sqlite();
    // A free port, given to the binary (which binds it with SO_REUSEADDR).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bind = format!("127.0.0.1:{port}");
    let mut server = Server(
        Command::new(env!("CARGO_BIN_EXE_tether"))
            .arg("serve")
            .env_clear()
            .envs([
                ("TETHER_BIND", bind.as_str()),
                ("DATABASE_URL", db.url.as_str()),
                ("TETHER_ADMIN_PASSWORD", ADMIN_PASSWORD),
                ("RUST_LOG", "warn"),
            ])
            .current_dir(&workdir.0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run tether"),
    );
    // Start-up migrates and hashes the admin password; wait for it generously
    // (a bound, not a target) while checking it has not exited.
    let http = reqwest::Client::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let index = loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            let mut stderr = String::new();
            use std::io::Read as _;
            let _ = server.0.stderr.take().unwrap().read_to_string(&mut stderr);
            panic!("tether exited with {status}: {stderr}");
        }
        if let Ok(res) = http.get(format!("http://{bind}/")).send().await {
            break res;
        }
        assert!(std::time::Instant::now() < deadline, "tether did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(index.status(), 200);
    assert!(content_type(&index).starts_with("text/html"));
    assert_eq!(index.text().await.unwrap(), source("index.html"));
    assert_eq!(
        std::fs::read_dir(&workdir.0).unwrap().count(),
        0,
        "nothing was needed in, nor written to, the working directory"
    );
}
