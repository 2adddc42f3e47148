//! Sign-in through OpenID Connect providers and back-channel logout.
//!
//! Two providers stand in for the real ones:
//! - a real OpenID Provider, npm `oidc-provider` (`tests/oidc/provider.mjs`,
//!   started per test on a random port): the whole flow, end to end;
//! - a small signing issuer in this process (`issuer.rs`): discovery, keys
//!   and a token endpoint answering whatever ID token the test made, for the
//!   tokens no honest provider sends (tampered, wrong audience, `alg: none`…).

mod backchannel;
mod browser;
mod config;
mod issuer;
mod negative;
mod sign_in;

use std::{collections::HashMap, path::Path, process::Stdio, sync::Arc, time::Duration};

use reqwest::{cookie::CookieStore as _, header::LOCATION, redirect::Policy, StatusCode};
use serde_json::{json, Value};
use tokio::io::AsyncBufReadExt as _;

use crate::{
    helpers::{spawn_app_with, Browser, Stack, TestApp},
    services::service_missing,
};

pub const CLIENT_ID: &str = "tether-test";
pub const CLIENT_SECRET: &str = "tether-test-client-secret-0123456789";
/// The provider id the tests configure.
pub const PROVIDER: &str = "corp";

/// A free loopback port, for an app whose redirect URI must be known before
/// it starts (the provider registers it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The settings of one provider named [`PROVIDER`] at `issuer`.
pub fn provider_vars(issuer: &str, port: u16) -> Vec<(String, String)> {
    [
        ("TETHER_BIND", format!("127.0.0.1:{port}")),
        ("TETHER_PUBLIC_URL", format!("http://127.0.0.1:{port}")),
        ("TETHER_OIDC_PROVIDERS", PROVIDER.into()),
        ("TETHER_OIDC_CORP_ISSUER", issuer.into()),
        ("TETHER_OIDC_CORP_CLIENT_ID", CLIENT_ID.into()),
        ("TETHER_OIDC_CORP_CLIENT_SECRET", CLIENT_SECRET.into()),
        ("TETHER_OIDC_CORP_NAME", "Corp SSO".into()),
        ("TETHER_OIDC_CORP_ROLES_CLAIM", "tether_roles".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Starts the app configured with `vars` (plus `extra`) on `stack`.
pub async fn spawn_with(
    test: &str,
    stack: Stack,
    vars: &[(String, String)],
    extra: &[(&str, &str)],
) -> Option<TestApp> {
    let mut all: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    all.extend_from_slice(extra);
    spawn_app_with(test, stack, &all).await
}

/// The real OpenID Provider (`tests/oidc/provider.mjs`), ended when dropped.
pub struct RealProvider {
    pub issuer: String,
    http: reqwest::Client,
    _process: tokio::process::Child,
}

impl RealProvider {
    /// `None` (SKIPPED, or a failure in CI) without Node or `npm ci` in tests/oidc.
    pub async fn start(test: &str, tether_port: u16) -> Option<RealProvider> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc");
        if !dir.join("node_modules/oidc-provider").is_dir() {
            service_missing(test, "oidc-provider", "run `npm ci` in tests/oidc");
            return None;
        }
        let tether = format!("http://127.0.0.1:{tether_port}/api/auth/oidc/{PROVIDER}");
        let settings = json!({
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_uri": format!("{tether}/callback"),
            "backchannel_logout_uri": format!("{tether}/backchannel-logout"),
        });
        let spawned = tokio::process::Command::new("node")
            .arg("provider.mjs")
            .current_dir(&dir)
            .env("OIDC_TEST_CONFIG", settings.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn();
        let mut process = match spawned {
            Ok(p) => p,
            Err(e) => {
                service_missing(test, "node", &e.to_string());
                return None;
            }
        };
        let stdout = process.stdout.take().expect("piped stdout");
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the provider starts within 30 s")
            .expect("the provider's output")
            .expect("the provider prints READY");
        let issuer = ready
            .strip_prefix("READY ")
            .expect("READY <issuer>")
            .to_owned();
        // Keep reading: a closed pipe would end the provider at its next line.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Some(RealProvider {
            issuer,
            http: reqwest::Client::new(),
            _process: process,
        })
    }

    /// The account the next sign-in at the provider approves.
    pub async fn set_account(&self, account: Value) {
        let res = self
            .http
            .post(format!("{}/__test/account", self.issuer))
            .json(&account)
            .send()
            .await
            .expect("provider control");
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
    }

    /// The provider sends tether a logout token for `sub`'s latest provider
    /// session, as when the user signs out there; `true` once tether said 200.
    pub async fn sign_out_at_provider(&self, sub: &str) -> Value {
        self.http
            .post(format!("{}/__test/backchannel-logout", self.issuer))
            .json(&json!({ "sub": sub }))
            .send()
            .await
            .expect("provider control")
            .json()
            .await
            .expect("JSON")
    }
}

/// A browser: one cookie jar for every site, redirects followed by the test.
pub struct OidcBrowser {
    pub http: reqwest::Client,
    jar: Arc<reqwest::cookie::Jar>,
}

impl OidcBrowser {
    pub fn new() -> Self {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let http = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(Policy::none())
            .build()
            .expect("client");
        Self { http, jar }
    }

    /// GET `url`; the `Location` of a redirect (absolute), or `None`.
    pub async fn get(&self, url: &str) -> (StatusCode, Option<String>) {
        let res = self.http.get(url).send().await.expect("GET");
        let location = res
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(|l| absolute(url, l));
        (res.status(), location)
    }

    /// Follows redirects from `url` until one leads to `until` (a URL
    /// prefix) and returns that location, not followed.
    pub async fn follow_until(&self, url: &str, until: &str) -> String {
        let mut next = url.to_owned();
        for _ in 0..12 {
            let (status, location) = self.get(&next).await;
            let location = location.unwrap_or_else(|| panic!("{status} from {next}, no redirect"));
            if location.starts_with(until) {
                return location;
            }
            next = location;
        }
        panic!("no redirect to {until} within 12 hops");
    }

    /// Signs in through the provider from tether's `start` (with
    /// `return_to`) and returns where tether sent the browser at the end.
    pub async fn sign_in(&self, app: &TestApp, return_to: &str) -> String {
        let callback = self.reach_callback(app, return_to).await;
        let (status, location) = self.get(&callback).await;
        assert_eq!(status, StatusCode::FOUND, "the callback redirects");
        location.expect("a Location")
    }

    /// Goes through the provider up to (not into) tether's callback; returns its URL.
    pub async fn reach_callback(&self, app: &TestApp, return_to: &str) -> String {
        let start = app.url(&format!(
            "/api/auth/oidc/{PROVIDER}/start?return_to={}",
            urlencode(return_to)
        ));
        self.follow_until(
            &start,
            &app.url(&format!("/api/auth/oidc/{PROVIDER}/callback")),
        )
        .await
    }

    /// The tether session cookie this browser holds, as a [`Browser`].
    pub fn tether(&self, app: &TestApp) -> Option<Browser> {
        let url = app.url("/").parse().expect("URL");
        let cookies = self.jar.cookies(&url)?;
        let cookie = cookies
            .to_str()
            .ok()?
            .split("; ")
            .find(|c| c.starts_with("tether_session="))?
            .to_owned();
        Some(Browser {
            http: reqwest::Client::new(),
            cookie,
        })
    }
}

/// `location` resolved against `base`.
fn absolute(base: &str, location: &str) -> String {
    let base: reqwest::Url = base.parse().expect("URL");
    base.join(location).expect("a Location").to_string()
}

pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The query parameters of `url`.
pub fn query(url: &str) -> HashMap<String, String> {
    let url: reqwest::Url = url.parse().expect("URL");
    url.query_pairs().into_owned().collect()
}

/// Starts the real provider and the app on `stack` wired to each other.
pub async fn with_real_provider(test: &str, stack: Stack) -> Option<(TestApp, RealProvider)> {
    let port = free_port();
    let provider = RealProvider::start(test, port).await?;
    let app = spawn_with(test, stack, &provider_vars(&provider.issuer, port), &[]).await?;
    Some((app, provider))
}
