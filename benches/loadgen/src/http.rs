//! The REST calls the scenarios need: sign-in (returning the session cookie),
//! `me`, and the admin calls that create users and revoke sessions.

use anyhow::{bail, Context};
use reqwest::{header, Client, StatusCode};
use serde_json::json;

/// Name of tether's session cookie.
const COOKIE_NAME: &str = "tether_session";
/// Password of every user the harness creates.
pub const BENCH_PASSWORD: &str = "bench-password-1";

/// One server under test, as the harness reaches it.
#[derive(Clone)]
pub struct Server {
    pub label: String,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub pid: Option<u32>,
    pub client: Client,
}

impl Server {
    pub fn new(label: &str, base: &str, pid: Option<u32>) -> Self {
        let client = Client::builder()
            .pool_max_idle_per_host(1024)
            // Below actix's 5 s keep-alive: a pooled connection the server
            // has just closed would fail the next request ("connection
            // closed before message completed"), which a POST cannot retry.
            .pool_idle_timeout(std::time::Duration::from_secs(2))
            .build()
            .expect("reqwest client");
        Self {
            label: label.into(),
            base: base.trim_end_matches('/').into(),
            pid,
            client,
        }
    }

    pub fn ws_url(&self) -> String {
        format!("{}/ws", self.base.replacen("http", "ws", 1))
    }

    /// Signs in; returns the `Cookie` header value (`tether_session=…`).
    pub async fn login(&self, username: &str, password: &str) -> anyhow::Result<String> {
        let response = self
            .client
            .post(format!("{}/api/auth/login", self.base))
            .header(header::CONTENT_TYPE, "application/json")
            .body(json!({"username": username, "password": password}).to_string())
            .send()
            .await?;
        if response.status() != StatusCode::OK {
            bail!("login {username}: HTTP {}", response.status());
        }
        response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| {
                let pair = v.split(';').next()?.trim();
                pair.starts_with(&format!("{COOKIE_NAME}="))
                    .then(|| pair.to_string())
            })
            .context("login: no session cookie")
    }

    /// `GET /api/auth/me`; Ok only on 200 (the body is read to the end).
    pub async fn me(&self, cookie: &str) -> anyhow::Result<()> {
        self.me_body(cookie).await.map(drop)
    }

    /// `GET /api/auth/me`: the public session id and the user's id.
    pub async fn session(&self, cookie: &str) -> anyhow::Result<(String, String)> {
        let body: serde_json::Value = serde_json::from_slice(&self.me_body(cookie).await?)?;
        let field = |a: &str, b: &str| {
            body[a][b]
                .as_str()
                .map(str::to_owned)
                .with_context(|| format!("me: no {a}.{b}"))
        };
        Ok((field("session", "id")?, field("user", "id")?))
    }

    /// The body of a 200 to `GET /api/auth/me`; any other status is an error.
    async fn me_body(&self, cookie: &str) -> anyhow::Result<bytes::Bytes> {
        let response = self
            .client
            .get(format!("{}/api/auth/me", self.base))
            .header(header::COOKIE, cookie)
            .send()
            .await?;
        let status = response.status();
        let body = response.bytes().await?;
        if status != StatusCode::OK {
            bail!("me: HTTP {status}");
        }
        Ok(body)
    }

    /// Creates a user (a 409 for an existing name is fine: reruns reuse it).
    pub async fn ensure_user(&self, admin: &str, name: &str, role: &str) -> anyhow::Result<()> {
        let response = self
            .client
            .post(format!("{}/api/admin/users", self.base))
            .header(header::COOKIE, admin)
            .header(header::CONTENT_TYPE, "application/json")
            .body(
                json!({"username": name, "password": BENCH_PASSWORD, "roles": [role]}).to_string(),
            )
            .send()
            .await?;
        match response.status() {
            StatusCode::CREATED | StatusCode::CONFLICT => Ok(()),
            other => bail!("create user {name}: HTTP {other}"),
        }
    }

    /// `DELETE /api/admin/sessions/{sid}`: returns once the server answered 204.
    pub async fn revoke(&self, admin: &str, sid: &str) -> anyhow::Result<()> {
        let response = self
            .client
            .delete(format!("{}/api/admin/sessions/{sid}", self.base))
            .header(header::COOKIE, admin)
            .send()
            .await?;
        if response.status() != StatusCode::NO_CONTENT {
            bail!("revoke {sid}: HTTP {}", response.status());
        }
        Ok(())
    }
}

/// Signs in `count` sessions spread over `users`, `parallel` at a time.
pub async fn sessions(
    server: &Server,
    users: &[String],
    count: usize,
    parallel: usize,
) -> anyhow::Result<Vec<String>> {
    use futures_util::{stream, StreamExt, TryStreamExt};
    stream::iter(0..count)
        .map(|i| {
            let user = &users[i % users.len()];
            server.login(user, BENCH_PASSWORD)
        })
        .buffer_unordered(parallel.max(1))
        .try_collect()
        .await
}

/// One keep-alive HTTP/1.1 connection driven by hyper directly, for the
/// closed-loop `me` load: reqwest's pool, URL parsing and per-request setup
/// cost the load generator ~30 µs of CPU per request, which on two cores
/// shared with the server capped what the server could show (BENCHMARKS.md).
pub struct RawClient {
    sender: hyper::client::conn::http1::SendRequest<http_body_util::Empty<bytes::Bytes>>,
    host: String,
}

impl RawClient {
    pub async fn connect(base: &str) -> anyhow::Result<Self> {
        let host = base
            .strip_prefix("http://")
            .context("only http:// bases")?
            .trim_end_matches('/')
            .to_owned();
        let stream = tokio::net::TcpStream::connect(&host).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Self { sender, host })
    }

    /// `GET path` with `cookie`; Ok only on 200, after reading the whole body.
    pub async fn get(&mut self, path: &str, cookie: &str) -> anyhow::Result<()> {
        use http_body_util::BodyExt as _;
        self.sender.ready().await?;
        let request = hyper::Request::get(path)
            .header(hyper::header::HOST, &self.host)
            .header(hyper::header::COOKIE, cookie)
            .body(http_body_util::Empty::new())?;
        let response = self.sender.send_request(request).await?;
        let status = response.status();
        response.into_body().collect().await?;
        if status != hyper::StatusCode::OK {
            bail!("GET {path}: HTTP {status}");
        }
        Ok(())
    }
}
