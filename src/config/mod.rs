//! Typed configuration, read once at start from the environment (and `.env`).
//!
//! Nothing else in the crate reads environment variables: the binary builds a
//! `Config` here and passes it down, and the tests build one directly.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use secrecy::{ExposeSecret, SecretBox, SecretString};

use crate::{
    db::Backend,
    domain::{Password, Username},
};

mod oidc;
mod parse;
mod redis;
#[cfg(test)]
mod tests;

pub use self::oidc::{OidcProviderConfig, ProviderId};
pub use self::redis::{RedisNode, RedisTopology};
use parse::{bootstrap_admin, network, sessions, sign_in, sockets, stores, web_dir};

/// A configuration value that could not be used; names the variable.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {var}: {reason}")]
pub struct ConfigError {
    /// Owned for the per-provider variables (`TETHER_OIDC_<ID>_…`).
    pub var: std::borrow::Cow<'static, str>,
    pub reason: String,
}

fn invalid(
    var: impl Into<std::borrow::Cow<'static, str>>,
    reason: impl Into<String>,
) -> ConfigError {
    ConfigError {
        var: var.into(),
        reason: reason.into(),
    }
}

/// Everything the server and the CLI need to know about their surroundings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the HTTP server listens (`TETHER_BIND`). Port 0 picks a free port.
    pub bind: SocketAddr,
    /// Where `GET /metrics` is served (`TETHER_METRICS_BIND`), on a listener
    /// of its own; `None` = no metrics listener.
    pub metrics_bind: Option<SocketAddr>,
    /// User store (`DATABASE_URL`): `postgres://…` or `sqlite://path`.
    /// Secret because it may hold a password.
    pub database_url: SecretString,
    /// Which database `database_url` points at, read from its scheme.
    pub database_backend: Backend,
    /// Session store (`REDIS_URL`): one node, Sentinel or Cluster;
    /// `None` = in-process store.
    pub redis: Option<RedisTopology>,
    /// Prefix of every Redis key and channel (`TETHER_REDIS_PREFIX`).
    pub redis_prefix: String,
    /// Replicas that must acknowledge a session delete before a revoke
    /// answers (`TETHER_REDIS_MIN_REPLICAS_ACK`; default 1 on Sentinel and
    /// Cluster, 0 on one node), waited for at most `redis_replica_wait`
    /// (`TETHER_REDIS_REPLICA_WAIT_MS`): a revoke acknowledged to its caller
    /// then survives the loss of the primary.
    pub redis_min_replicas_ack: usize,
    pub redis_replica_wait: Duration,
    /// Cookie signing/encryption key material (`TETHER_SESSION_KEY`, ≥ 64 bytes);
    /// `None` = a random key per process.
    pub session_key: Option<CookieKey>,
    /// Origins allowed to open the WebSocket (`TETHER_ALLOWED_ORIGINS`);
    /// `None` = derived from the bound address once it is known.
    pub allowed_origins: Option<Vec<String>>,
    /// Where users reach the app (`TETHER_PUBLIC_URL`, as an origin; default:
    /// the first allowed origin); `None` = `http://localhost:PORT` once bound.
    /// Its scheme decides whether the session cookie is `Secure`.
    pub public_url: Option<String>,
    /// Idle timeout (`TETHER_SESSION_IDLE_SECS`): activity extends the session.
    pub session_idle: Duration,
    /// Absolute timeout (`TETHER_SESSION_ABSOLUTE_SECS`): never extended.
    pub session_absolute: Duration,
    /// `Secure` flag of the session cookie (`TETHER_COOKIE_SECURE`; default:
    /// whether `public_url` is `https://`). Also turns on HSTS.
    pub cookie_secure: bool,
    /// Largest WebSocket message accepted (`TETHER_WS_MAX_MESSAGE_BYTES`).
    pub ws_max_message_bytes: usize,
    /// Peers whose `X-Forwarded-For` is believed (`TETHER_TRUSTED_PROXIES`,
    /// comma list of IPs or CIDR ranges); empty = the TCP peer is the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// How often each instance re-checks that the sessions of its open sockets
    /// still exist (`TETHER_SWEEP_SECS`): the safety net under every other
    /// revocation path.
    pub sweep_interval: Duration,
    /// Failed sign-ins per username before further attempts get 429
    /// (`TETHER_LOGIN_MAX_FAILURES`); a client IP may fail ten times as often.
    pub login_max_failures: u32,
    /// How long that window lasts (`TETHER_LOGIN_LOCKOUT_SECS`).
    pub login_lockout: Duration,
    /// Failed password checks for one username from all addresses before
    /// further attempts get 429 (`TETHER_LOGIN_MAX_FAILURES_PER_USER`).
    pub login_max_failures_per_user: u32,
    /// Failed password checks from one address (IPv6: its /64) across
    /// usernames (`TETHER_LOGIN_MAX_FAILURES_PER_IP`).
    pub login_max_failures_per_ip: u32,
    /// Password checks waiting for a hashing thread (`TETHER_MAX_QUEUED_HASHES`);
    /// one more gets 503 at once rather than waiting without bound.
    pub max_queued_hashes: usize,
    /// Open sockets per session (`TETHER_WS_MAX_PER_SESSION`) and per user
    /// (`TETHER_WS_MAX_PER_USER`, counted over every instance); the next
    /// upgrade gets 429.
    pub ws_max_per_session: usize,
    pub ws_max_per_user: usize,
    /// Per-socket message rate (`TETHER_WS_MESSAGES_PER_SEC`) and burst
    /// (`TETHER_WS_MESSAGE_BURST`): a token bucket.
    pub ws_messages_per_sec: u32,
    pub ws_message_burst: u32,
    /// How long one frame may take to be written to a socket
    /// (`TETHER_WS_SEND_TIMEOUT_SECS`) before its connection is dropped.
    pub ws_send_timeout: Duration,
    /// How long a shutdown waits for sockets and requests to finish
    /// (`TETHER_SHUTDOWN_GRACE_SECS`).
    pub shutdown_grace: Duration,
    /// How long before a deadline sockets get `session.expiring`
    /// (`TETHER_SESSION_EXPIRING_NOTICE_SECS`).
    pub session_expiring_notice: Duration,
    /// How often the server pings each socket (`TETHER_WS_HEARTBEAT_SECS`).
    pub ws_heartbeat: Duration,
    /// A socket silent this long is closed (`TETHER_WS_CLIENT_TIMEOUT_SECS`).
    pub ws_client_timeout: Duration,
    /// Name of the admin created when the user store is empty (`TETHER_ADMIN_USERNAME`).
    pub admin_username: Username,
    /// Its password (`TETHER_ADMIN_PASSWORD`), checked as a new password;
    /// `None` = random, printed once. `Debug` shows `[REDACTED]`.
    pub admin_password: Option<Password>,
    /// Folder the browser app is served from (`TETHER_WEB_DIR`, checked to be
    /// a folder); `None` = the copy embedded in the binary (`web_app`).
    pub web_dir: Option<PathBuf>,
    /// How many argon2id hashes may run at once (`TETHER_MAX_CONCURRENT_HASHES`);
    /// default: the number of CPUs. Bounds the CPU sign-ins can take.
    pub max_concurrent_hashes: usize,
    /// How long audit trail entries are kept (`TETHER_AUDIT_RETENTION_DAYS`,
    /// 1–36500 days, default 90); older ones are pruned in the background.
    pub audit_retention: Duration,
    /// OpenID Connect providers (`TETHER_OIDC_PROVIDERS` and the
    /// `TETHER_OIDC_<ID>_…` variables), in the order listed.
    pub oidc_providers: Vec<OidcProviderConfig>,
}

/// Raw key material for the cookie key. Kept as bytes so `Config` stays `Clone`
/// and `Debug` without ever printing it.
#[derive(Clone)]
pub struct CookieKey(std::sync::Arc<SecretBox<Vec<u8>>>);

impl CookieKey {
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, String> {
        if bytes.len() < 64 {
            return Err(format!(
                "must decode to at least 64 bytes, got {}",
                bytes.len()
            ));
        }
        Ok(Self(std::sync::Arc::new(SecretBox::new(Box::new(bytes)))))
    }

    pub fn to_key(&self) -> actix_web::cookie::Key {
        actix_web::cookie::Key::derive_from(self.0.expose_secret())
    }
}

impl std::fmt::Debug for CookieKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CookieKey([REDACTED])")
    }
}

pub const DEFAULT_DATABASE_URL: &str = "sqlite://tether.db";

impl Config {
    /// Reads `.env` (if present) and the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        // A missing .env is normal; a malformed one is worth knowing about.
        if let Err(e) = dotenvy::dotenv() {
            if !e.not_found() {
                return Err(invalid(".env", e.to_string()));
            }
        }
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Builds a config from any key→value lookup (the environment in
    /// production, a map in tests). Each concern is read by a function of its
    /// own below; the values they parse are kept, not parsed again later.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());

        let network = network(&get)?;
        let stores = stores(&get)?;
        let public_url = parse::public_url(&get, network.allowed_origins.as_deref())?;
        let sessions = sessions(&get, public_url.as_deref())?;
        let sockets = sockets(&get)?;
        let sign_in = sign_in(&get)?;
        let admin = bootstrap_admin(&get)?;
        Ok(Config {
            bind: network.bind,
            metrics_bind: network.metrics_bind,
            allowed_origins: network.allowed_origins,
            public_url,
            trusted_proxies: network.trusted_proxies,
            database_url: stores.database_url,
            database_backend: stores.database_backend,
            redis: stores.redis,
            redis_prefix: stores.redis_prefix,
            redis_min_replicas_ack: stores.redis_min_replicas_ack,
            redis_replica_wait: stores.redis_replica_wait,
            session_key: sessions.session_key,
            session_idle: sessions.session_idle,
            session_absolute: sessions.session_absolute,
            cookie_secure: sessions.cookie_secure,
            sweep_interval: sessions.sweep_interval,
            session_expiring_notice: sessions.session_expiring_notice,
            ws_max_message_bytes: sockets.ws_max_message_bytes,
            ws_heartbeat: sockets.ws_heartbeat,
            ws_client_timeout: sockets.ws_client_timeout,
            login_max_failures: sign_in.login_max_failures,
            login_lockout: sign_in.login_lockout,
            login_max_failures_per_user: sign_in.login_max_failures_per_user,
            login_max_failures_per_ip: sign_in.login_max_failures_per_ip,
            max_queued_hashes: sign_in.max_queued_hashes,
            ws_max_per_session: sockets.ws_max_per_session,
            ws_max_per_user: sockets.ws_max_per_user,
            ws_messages_per_sec: sockets.ws_messages_per_sec,
            ws_message_burst: sockets.ws_message_burst,
            ws_send_timeout: sockets.ws_send_timeout,
            shutdown_grace: parse::shutdown_grace(&get)?,
            max_concurrent_hashes: sign_in.max_concurrent_hashes,
            admin_username: admin.admin_username,
            admin_password: admin.admin_password,
            web_dir: web_dir(&get)?,
            audit_retention: parse::audit_retention(&get)?,
            oidc_providers: oidc::providers(&get)?,
        })
    }

    /// The origins allowed to open the WebSocket and to send unsafe requests
    /// (`TETHER_ALLOWED_ORIGINS` and the public URL), given the port actually
    /// bound.
    pub fn effective_allowed_origins(&self, port: u16) -> Vec<String> {
        let mut origins = match &self.allowed_origins {
            Some(list) => list.clone(),
            None => vec![
                format!("http://localhost:{port}"),
                format!("http://127.0.0.1:{port}"),
            ],
        };
        let public = self.public_origin(port);
        if !origins.iter().any(|o| o.eq_ignore_ascii_case(&public)) {
            origins.push(public);
        }
        origins
    }

    /// Where users reach the app, given the port actually bound.
    pub fn public_origin(&self, port: u16) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://localhost:{port}"))
    }

    /// The session cookie's name: a `Secure` cookie gets the `__Host-` prefix,
    /// with which a browser accepts it only from a secure origin, with
    /// `Path=/` and no `Domain`, so a sibling subdomain cannot plant or
    /// overwrite it.
    pub fn cookie_name(&self) -> &'static str {
        if self.cookie_secure {
            "__Host-tether_session"
        } else {
            "tether_session"
        }
    }

    pub fn database_url(&self) -> &str {
        self.database_url.expose_secret()
    }
}
