//! `spawn_app`: the real application, built by the same `Application::build`
//! as `main`, on a random port, against one of the three supported stacks.
//! Plus small HTTP and WebSocket clients that speak the crate's own protocol types.

use std::{collections::HashMap, time::Duration};

use actix_web::{dev::ServerHandle, web};
use base64::Engine as _;
use futures_util::{SinkExt as _, StreamExt as _};
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::{json, Value};
use tether::{
    config::Config,
    domain::{Password, RoleName, Username},
    startup::Application,
    state::AppState,
    users,
    ws::{
        dispatch::MessageHandler,
        protocol::{Reply, ServerEvent, ServerFrame},
    },
};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest as _, Message};

use crate::{test_db::TestDb, test_redis::TestRedis};

pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";
/// How long a test waits for something that should happen at once.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// The supported combinations of user store and session store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stack {
    SqliteInProcess,
    SqliteRedis,
    PostgresRedis,
    /// SQLite, and Redis Sentinel (`TETHER_TEST_REDIS_SENTINEL_URL`).
    SqliteSentinel,
    /// SQLite, and Redis Cluster (`TETHER_TEST_REDIS_CLUSTER_URL`).
    SqliteCluster,
}

pub struct TestApp {
    pub port: u16,
    /// The metrics listener's port, when `TETHER_METRICS_BIND` was given.
    pub metrics_port: Option<u16>,
    pub address: String,
    pub state: web::Data<AppState>,
    pub redis: Option<std::sync::Arc<TestRedis>>,
    handle: ServerHandle,
    vars: HashMap<String, String>,
    _db: std::sync::Arc<TestDb>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Stop accepting and close connections; don't wait.
        drop(self.handle.stop(false));
    }
}

/// Starts the app on `stack`, or `None` if a service it needs is missing
/// (reported as SKIPPED; a failure in CI).
pub async fn spawn_app(test: &str, stack: Stack) -> Option<TestApp> {
    spawn_app_with(test, stack, &[]).await
}

pub async fn spawn_app_with(test: &str, stack: Stack, extra: &[(&str, &str)]) -> Option<TestApp> {
    let db = match stack {
        Stack::SqliteInProcess
        | Stack::SqliteRedis
        | Stack::SqliteSentinel
        | Stack::SqliteCluster => TestDb::sqlite(),
        Stack::PostgresRedis => TestDb::postgres(test)?,
    };
    let redis = match stack {
        Stack::SqliteInProcess => None,
        Stack::SqliteRedis | Stack::PostgresRedis => Some(TestRedis::new(test).await?),
        Stack::SqliteSentinel => Some(TestRedis::sentinel(test).await?),
        Stack::SqliteCluster => Some(TestRedis::cluster(test).await?),
    };
    let key = base64::engine::general_purpose::STANDARD.encode([42u8; 64]);
    let mut vars: HashMap<String, String> = [
        ("TETHER_BIND", "127.0.0.1:0"),
        ("DATABASE_URL", db.url.as_str()),
        ("TETHER_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ("TETHER_SESSION_KEY", key.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    if let Some(r) = &redis {
        vars.insert("REDIS_URL".into(), r.url.clone());
        vars.insert("TETHER_REDIS_PREFIX".into(), r.prefix.clone());
    }
    for (k, v) in extra {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    Some(
        start(
            vars,
            std::sync::Arc::new(db),
            redis.map(std::sync::Arc::new),
        )
        .await,
    )
}

async fn start(
    vars: HashMap<String, String>,
    db: std::sync::Arc<TestDb>,
    redis: Option<std::sync::Arc<TestRedis>>,
) -> TestApp {
    let config = Config::from_lookup(|k| vars.get(k).cloned()).expect("test config is valid");
    let app = Application::build(config)
        .await
        .expect("application builds");
    let port = app.port();
    let metrics_port = app.metrics_port();
    let state = app.state();
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        port,
        metrics_port,
        address: format!("http://127.0.0.1:{port}"),
        state,
        redis,
        handle,
        vars,
        _db: db,
    }
}

impl TestApp {
    /// A second instance sharing this one's user store, Redis and cookie key.
    pub async fn spawn_peer(&self) -> TestApp {
        start(self.vars.clone(), self._db.clone(), self.redis.clone()).await
    }

    /// As `spawn_peer`, with some settings replaced (e.g. its own `TETHER_BIND`).
    pub async fn spawn_peer_with(&self, extra: &[(&str, &str)]) -> TestApp {
        let mut vars = self.vars.clone();
        for (k, v) in extra {
            vars.insert((*k).to_owned(), (*v).to_owned());
        }
        start(vars, self._db.clone(), self.redis.clone()).await
    }

    /// The environment the app was configured from, for running the real
    /// `tether` binary (the CLI) against the same stores.
    pub fn env(&self) -> &HashMap<String, String> {
        &self.vars
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws", self.port)
    }

    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a user through the same service function the CLI uses.
    pub async fn create_user(&self, name: &str, roles: &[&str]) -> String {
        let password = format!("{name}-password");
        let roles: Vec<RoleName> = roles.iter().map(|r| RoleName::parse(r).unwrap()).collect();
        users::add_user(
            &self.state.db,
            &Username::parse(name).unwrap(),
            Password::parse_new(password.clone()).unwrap(),
            &roles,
        )
        .await
        .expect("create user");
        password
    }

    pub async fn set_roles(&self, name: &str, roles: &[&str]) {
        let roles: Vec<RoleName> = roles.iter().map(|r| RoleName::parse(r).unwrap()).collect();
        users::set_roles(
            &self.state.db,
            &self.state.sessions,
            &Username::parse(name).unwrap(),
            &roles,
        )
        .await
        .expect("set roles");
    }

    /// Signs in and returns a client carrying the session cookie.
    pub async fn login(&self, username: &str, password: &str) -> Browser {
        match self.try_login(username, password).await {
            Ok(browser) => browser,
            Err(status) => panic!("login as {username} failed: {status}"),
        }
    }

    /// `POST /api/auth/login`: a signed-in client, or the refusal's status.
    pub async fn try_login(&self, username: &str, password: &str) -> Result<Browser, u16> {
        let http = reqwest::Client::new();
        let res = http
            .post(self.url("/api/auth/login"))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .expect("login request");
        if res.status() != 200 {
            return Err(res.status().as_u16());
        }
        Ok(Browser {
            cookie: session_cookie(&res).expect("login sets the session cookie"),
            http,
        })
    }

    /// The id of user `name`, from the user store.
    pub async fn user_id(&self, name: &str) -> uuid::Uuid {
        let username = Username::parse(name).unwrap();
        self.state
            .db
            .find_user_by_username(&username)
            .await
            .expect("user store answers")
            .unwrap_or_else(|| panic!("no user {name}"))
            .id
    }

    pub async fn login_admin(&self) -> Browser {
        self.login("admin", ADMIN_PASSWORD).await
    }

    /// Signs in a new user with `roles`.
    pub async fn login_new_user(&self, name: &str, roles: &[&str]) -> Browser {
        let password = self.create_user(name, roles).await;
        self.login(name, &password).await
    }
}

/// What a run of the `tether` binary printed, and how it exited.
pub struct CliOutput {
    pub ok: bool,
    /// The exit code (`None` if a signal ended it).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the real `tether` binary with `app`'s configuration (and nothing else
/// from this process's environment), feeding `stdin`.
pub async fn tether_cli(app: &TestApp, args: &[&str], stdin: &str) -> CliOutput {
    use std::io::Write as _;
    let env = app.env().clone();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let stdin = stdin.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tether"))
            .args(&args)
            .env_clear()
            .envs(&env)
            .env("RUST_LOG", "warn")
            // Away from any developer's .env file.
            .current_dir(std::env::temp_dir())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run tether");
        if let Some(mut input) = child.stdin.take() {
            let _ = input.write_all(stdin.as_bytes());
        }
        let out = child.wait_with_output().expect("tether ran");
        CliOutput {
            ok: out.status.success(),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    })
    .await
    .expect("CLI runner")
}

/// `name=value` of the session cookie set by a response, if any: named
/// `tether_session`, or `__Host-tether_session` when it is `Secure`.
pub fn session_cookie(res: &reqwest::Response) -> Option<String> {
    session_set_cookie(res).map(|v| v.split(';').next().unwrap_or_default().to_owned())
}

/// The whole `Set-Cookie` value of the session cookie, flags included.
pub fn session_set_cookie(res: &reqwest::Response) -> Option<String> {
    res.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("tether_session=") || v.starts_with("__Host-tether_session="))
        .map(str::to_owned)
}

/// A signed-in client: the session cookie, sent by hand so tests can copy it
/// (a reloaded page, a second tab) or drop it.
#[derive(Clone)]
pub struct Browser {
    pub http: reqwest::Client,
    pub cookie: String,
}

impl Browser {
    pub async fn get(&self, url: &str) -> reqwest::Response {
        self.http
            .get(url)
            .header(COOKIE, &self.cookie)
            .send()
            .await
            .expect("GET")
    }

    pub async fn delete(&self, url: &str) -> reqwest::Response {
        self.http
            .delete(url)
            .header(COOKIE, &self.cookie)
            .send()
            .await
            .expect("DELETE")
    }

    pub async fn put_json(&self, url: &str, body: Value) -> reqwest::Response {
        self.http
            .put(url)
            .header(COOKIE, &self.cookie)
            .json(&body)
            .send()
            .await
            .expect("PUT")
    }

    pub async fn post(&self, url: &str) -> reqwest::Response {
        self.http
            .post(url)
            .header(COOKIE, &self.cookie)
            .send()
            .await
            .expect("POST")
    }

    pub async fn me(&self, app: &TestApp) -> Value {
        let res = self.get(&app.url("/api/auth/me")).await;
        assert_eq!(res.status(), 200);
        res.json().await.unwrap()
    }

    pub async fn session_id(&self, app: &TestApp) -> String {
        self.me(app).await["session"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Opens the WebSocket as a page of `app`'s origin would, and reads `hello`.
    pub async fn socket(&self, app: &TestApp) -> Socket {
        let mut socket = self
            .try_socket(app, Some(&app.origin()))
            .await
            .expect("WebSocket upgrade");
        match socket.next_frame().await {
            ServerFrame::Event(ServerEvent::Hello { .. }) => socket,
            other => panic!("expected hello first, got {other:?}"),
        }
    }

    pub async fn try_socket(&self, app: &TestApp, origin: Option<&str>) -> Result<Socket, u16> {
        connect(app, Some(&self.cookie), origin).await
    }
}

type Stream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub struct Socket {
    stream: Stream,
    next_id: u64,
}

/// Opens `/ws`; `Err(status)` when the server refuses the upgrade.
pub async fn connect(
    app: &TestApp,
    cookie: Option<&str>,
    origin: Option<&str>,
) -> Result<Socket, u16> {
    let mut request = app.ws_url().into_client_request().unwrap();
    if let Some(cookie) = cookie {
        request
            .headers_mut()
            .insert("Cookie", cookie.parse().unwrap());
    }
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("Origin", origin.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((stream, _)) => Ok(Socket { stream, next_id: 1 }),
        Err(tungstenite::Error::Http(res)) => Err(res.status().as_u16()),
        Err(e) => panic!("WebSocket connect failed: {e}"),
    }
}

/// What a socket saw next.
#[derive(Debug)]
pub enum Seen {
    Frame(ServerFrame),
    Closed(Option<u16>),
}

impl Socket {
    /// A WebSocket ping control frame (the server answers with a pong).
    pub async fn send_ping(&mut self) {
        self.stream
            .send(Message::Ping(Vec::new().into()))
            .await
            .expect("send ping");
    }

    pub async fn send_text(&mut self, text: impl Into<String>) {
        self.stream
            .send(Message::text(text.into()))
            .await
            .expect("send");
    }

    /// Sends a frame of the crate's own message type `H` (so renaming a type
    /// breaks the tests at compile time) and returns its reply.
    pub async fn ask<H: MessageHandler>(&mut self, data: Value) -> Reply {
        self.request(H::TYPE, data).await
    }

    /// Sends `{"id":n,"type":…,"data":…}` and returns its reply (skipping events).
    /// For types the server does not know; known ones go through [`Socket::ask`].
    pub async fn request(&mut self, kind: &str, data: Value) -> Reply {
        self.request_with_events(kind, data).await.0
    }

    /// As `request`, also returning the events that arrived before the reply.
    pub async fn request_with_events(
        &mut self,
        kind: &str,
        data: Value,
    ) -> (Reply, Vec<ServerEvent>) {
        let id = self.next_id;
        self.next_id += 1;
        self.send_text(json!({"id": id, "type": kind, "data": data}).to_string())
            .await;
        let mut events = Vec::new();
        loop {
            match self.next_frame().await {
                ServerFrame::Reply(reply) => {
                    assert_eq!(reply.re, Some(json_id(id)), "reply to the wrong id");
                    return (reply, events);
                }
                ServerFrame::Event(e) => events.push(e),
            }
        }
    }

    pub async fn next(&mut self) -> Seen {
        self.next_within(PATIENCE)
            .await
            .expect("the server said nothing in time")
    }

    /// The next frame or close within `limit`; `None` if nothing came.
    pub async fn next_within(&mut self, limit: Duration) -> Option<Seen> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .ok()?;
            match msg {
                Some(Ok(Message::Text(text))) => {
                    let frame = serde_json::from_str(text.as_str())
                        .unwrap_or_else(|e| panic!("undecodable frame {text}: {e}"));
                    return Some(Seen::Frame(frame));
                }
                Some(Ok(Message::Close(frame))) => {
                    return Some(Seen::Closed(frame.map(|f| u16::from(f.code))))
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Some(Seen::Closed(None)),
            }
        }
    }

    pub async fn next_frame(&mut self) -> ServerFrame {
        match self.next().await {
            Seen::Frame(frame) => frame,
            Seen::Closed(code) => panic!("socket closed ({code:?}) while a frame was expected"),
        }
    }

    /// Starts the closing handshake from the client's side; returns the code of
    /// the server's answering close frame (`None` if the connection just ended).
    pub async fn close_from_client(&mut self, code: u16) -> Option<u16> {
        use tokio_tungstenite::tungstenite::protocol::{frame::coding::CloseCode, CloseFrame};
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: "bye".into(),
        };
        self.stream
            .send(Message::Close(Some(frame)))
            .await
            .expect("send close");
        match self.next().await {
            Seen::Closed(code) => code,
            Seen::Frame(f) => panic!("expected the server's close, got {f:?}"),
        }
    }

    /// After the closing handshake: whether the server then ended the TCP
    /// connection (EOF or reset) within [`PATIENCE`]. RFC 6455 §7.1.1 has the
    /// server close first; a connection it leaves open is a file descriptor
    /// held for as long as the client pleases.
    pub async fn server_ended_tcp(&mut self) -> bool {
        use tokio::io::AsyncReadExt as _;
        let tokio_tungstenite::MaybeTlsStream::Plain(tcp) = self.stream.get_mut() else {
            panic!("tests speak plain TCP");
        };
        let mut buf = [0u8; 64];
        match tokio::time::timeout(PATIENCE, tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => true,
            Ok(Ok(n)) => panic!("{n} bytes arrived after the closing handshake"),
            Err(_) => false,
        }
    }

    /// Reads until the close; returns its code and the events seen before it.
    pub async fn closed(&mut self) -> (Option<u16>, Vec<ServerEvent>) {
        let mut events = Vec::new();
        loop {
            match self.next().await {
                Seen::Frame(ServerFrame::Event(e)) => events.push(e),
                Seen::Frame(ServerFrame::Reply(_)) => {}
                Seen::Closed(code) => return (code, events),
            }
        }
    }
}

fn json_id(id: u64) -> tether::ws::protocol::MessageId {
    tether::ws::protocol::MessageId::Number(id.into())
}

/// One module of tests, each running `super::case(app)` on `stack`.
#[macro_export]
macro_rules! stack_module {
    ($module:ident, $stack:ident, $($case:ident),*) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let name = concat!(module_path!(), "::", stringify!($case));
                    let stack = $crate::helpers::Stack::$stack;
                    // Not while a test fails the topology's primary over.
                    let _topology = match stack {
                        $crate::helpers::Stack::SqliteSentinel => {
                            Some($crate::test_redis::SENTINEL_TOPOLOGY.read().await)
                        }
                        $crate::helpers::Stack::SqliteCluster => {
                            Some($crate::test_redis::CLUSTER_TOPOLOGY.read().await)
                        }
                        _ => None,
                    };
                    if let Some(app) = $crate::helpers::spawn_app(name, stack).await {
                        super::$case(app).await;
                    }
                }
            )*
        }
    };
}

/// Runs each listed `async fn case(app: TestApp)` on every stack, as
/// `<module>::sqlite_in_process::case`, `…::sqlite_redis::case`,
/// `…::postgres_redis::case`, `…::sqlite_sentinel::case` and
/// `…::sqlite_cluster::case`.
#[macro_export]
macro_rules! on_every_stack {
    ($($case:ident),* $(,)?) => {
        $crate::stack_module!(sqlite_in_process, SqliteInProcess, $($case),*);
        $crate::on_redis_stacks!($($case),*);
    };
}

/// As `on_every_stack!`, for behaviour that needs Redis (several instances):
/// one Redis server, Redis Sentinel and Redis Cluster.
#[macro_export]
macro_rules! on_redis_stacks {
    ($($case:ident),* $(,)?) => {
        $crate::stack_module!(sqlite_redis, SqliteRedis, $($case),*);
        $crate::stack_module!(postgres_redis, PostgresRedis, $($case),*);
        $crate::stack_module!(sqlite_sentinel, SqliteSentinel, $($case),*);
        $crate::stack_module!(sqlite_cluster, SqliteCluster, $($case),*);
    };
}
