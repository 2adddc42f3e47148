//! Typed configuration, read once at start from the environment (and `.env`).
//!
//! Nothing else in the crate reads environment variables: the binary builds a
//! `Config` here and passes it down, and the tests build one directly.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretBox, SecretString};

use crate::{
    db::Backend,
    domain::{Password, Username},
};

/// A configuration value that could not be used; names the variable.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {var}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

fn invalid(var: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        reason: reason.into(),
    }
}

/// Everything the server and the CLI need to know about their surroundings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the HTTP server listens (`TETHER_BIND`). Port 0 picks a free port.
    pub bind: SocketAddr,
    /// User store (`DATABASE_URL`): `postgres://…` or `sqlite://path`.
    /// Secret because it may hold a password.
    pub database_url: SecretString,
    /// Which database `database_url` points at, read from its scheme.
    pub database_backend: Backend,
    /// Session store (`REDIS_URL`); `None` = in-process store.
    pub redis_url: Option<SecretString>,
    /// Prefix of every Redis key and channel (`TETHER_REDIS_PREFIX`).
    pub redis_prefix: String,
    /// Cookie signing/encryption key material (`TETHER_SESSION_KEY`, ≥ 64 bytes);
    /// `None` = a random key per process.
    pub session_key: Option<CookieKey>,
    /// Origins allowed to open the WebSocket (`TETHER_ALLOWED_ORIGINS`);
    /// `None` = derived from the bound address once it is known.
    pub allowed_origins: Option<Vec<String>>,
    /// Idle timeout (`TETHER_SESSION_IDLE_SECS`): activity extends the session.
    pub session_idle: Duration,
    /// Absolute timeout (`TETHER_SESSION_ABSOLUTE_SECS`): never extended.
    pub session_absolute: Duration,
    /// `Secure` flag of the session cookie (`TETHER_COOKIE_SECURE`).
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
        let sessions = sessions(&get, &network.bind)?;
        let sockets = sockets(&get)?;
        let sign_in = sign_in(&get)?;
        let admin = bootstrap_admin(&get)?;
        Ok(Config {
            bind: network.bind,
            allowed_origins: network.allowed_origins,
            trusted_proxies: network.trusted_proxies,
            database_url: stores.database_url,
            database_backend: stores.database_backend,
            redis_url: stores.redis_url,
            redis_prefix: stores.redis_prefix,
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
            max_concurrent_hashes: sign_in.max_concurrent_hashes,
            admin_username: admin.admin_username,
            admin_password: admin.admin_password,
            web_dir: web_dir(&get)?,
        })
    }

    /// The origins allowed to open the WebSocket, given the port actually bound.
    pub fn effective_allowed_origins(&self, port: u16) -> Vec<String> {
        match &self.allowed_origins {
            Some(list) => list.clone(),
            None => vec![
                format!("http://localhost:{port}"),
                format!("http://127.0.0.1:{port}"),
            ],
        }
    }

    pub fn database_url(&self) -> &str {
        self.database_url.expose_secret()
    }
}

/// Where the server listens and whom it believes about the client.
struct Network {
    bind: SocketAddr,
    allowed_origins: Option<Vec<String>>,
    trusted_proxies: Vec<ipnet::IpNet>,
}

fn network(get: &impl Fn(&str) -> Option<String>) -> Result<Network, ConfigError> {
    let bind = match get("TETHER_BIND") {
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| invalid("TETHER_BIND", format!("{v:?} is not HOST:PORT")))?,
        None => SocketAddr::from(([127, 0, 0, 1], 8080)),
    };
    Ok(Network {
        bind,
        allowed_origins: get("TETHER_ALLOWED_ORIGINS")
            .map(|v| allowed_origins(&v))
            .transpose()?,
        trusted_proxies: match get("TETHER_TRUSTED_PROXIES") {
            Some(v) => trusted_proxies(&v)?,
            None => Vec::new(),
        },
    })
}

fn allowed_origins(v: &str) -> Result<Vec<String>, ConfigError> {
    let origins: Vec<String> = v
        .split(',')
        .map(|o| o.trim().trim_end_matches('/').to_owned())
        .filter(|o| !o.is_empty())
        .collect();
    if let Some(bad) = origins
        .iter()
        .find(|o| !(o.starts_with("http://") || o.starts_with("https://")))
    {
        return Err(invalid(
            "TETHER_ALLOWED_ORIGINS",
            format!("{bad:?} is not an http(s) origin"),
        ));
    }
    Ok(origins)
}

fn trusted_proxies(v: &str) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<ipnet::IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    invalid(
                        "TETHER_TRUSTED_PROXIES",
                        format!("{s:?} is not an IP or CIDR"),
                    )
                })
        })
        .collect()
}

/// The user store and the session store.
struct Stores {
    database_url: SecretString,
    database_backend: Backend,
    redis_url: Option<SecretString>,
    redis_prefix: String,
}

fn stores(get: &impl Fn(&str) -> Option<String>) -> Result<Stores, ConfigError> {
    let database_url = get("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.into());
    let database_backend =
        Backend::from_url(&database_url).map_err(|reason| invalid("DATABASE_URL", reason))?;
    let redis_url = match get("REDIS_URL") {
        Some(v) if v.starts_with("redis://") || v.starts_with("rediss://") => {
            Some(SecretString::from(v))
        }
        Some(_) => {
            return Err(invalid(
                "REDIS_URL",
                "must start with redis:// or rediss://",
            ))
        }
        None => None,
    };
    let redis_prefix = get("TETHER_REDIS_PREFIX").unwrap_or_else(|| "tether:".into());
    if redis_prefix.chars().any(|c| c.is_whitespace() || c == '*') {
        return Err(invalid(
            "TETHER_REDIS_PREFIX",
            "must not contain whitespace or '*'",
        ));
    }
    Ok(Stores {
        database_url: SecretString::from(database_url),
        database_backend,
        redis_url,
        redis_prefix,
    })
}

/// The session cookie and the session's deadlines.
struct SessionSettings {
    session_key: Option<CookieKey>,
    session_idle: Duration,
    session_absolute: Duration,
    cookie_secure: bool,
    sweep_interval: Duration,
    session_expiring_notice: Duration,
}

fn sessions(
    get: &impl Fn(&str) -> Option<String>,
    bind: &SocketAddr,
) -> Result<SessionSettings, ConfigError> {
    let session_key = get("TETHER_SESSION_KEY")
        .map(|v| cookie_key(&v))
        .transpose()?;
    let session_idle = secs(get, "TETHER_SESSION_IDLE_SECS", 1800)?;
    let session_absolute = secs(get, "TETHER_SESSION_ABSOLUTE_SECS", 28800)?;
    if session_absolute < session_idle {
        return Err(invalid(
            "TETHER_SESSION_ABSOLUTE_SECS",
            "must not be shorter than TETHER_SESSION_IDLE_SECS",
        ));
    }
    let cookie_secure = match get("TETHER_COOKIE_SECURE") {
        Some(v) => parse_bool(&v)
            .ok_or_else(|| invalid("TETHER_COOKIE_SECURE", format!("{v:?} is not true/false")))?,
        None => !bind.ip().is_loopback(),
    };
    Ok(SessionSettings {
        session_key,
        session_idle,
        session_absolute,
        cookie_secure,
        sweep_interval: secs(get, "TETHER_SWEEP_SECS", 10)?,
        session_expiring_notice: secs(get, "TETHER_SESSION_EXPIRING_NOTICE_SECS", 60)?,
    })
}

fn cookie_key(v: &str) -> Result<CookieKey, ConfigError> {
    // `openssl rand -base64 64` wraps its output; line breaks are not key material.
    let v: String = v.split_whitespace().collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&v)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(&v))
        .map_err(|_| invalid("TETHER_SESSION_KEY", "is not valid base64"))?;
    CookieKey::from_bytes(bytes).map_err(|r| invalid("TETHER_SESSION_KEY", r))
}

/// The WebSocket's limits and heartbeat.
struct Sockets {
    ws_max_message_bytes: usize,
    ws_heartbeat: Duration,
    ws_client_timeout: Duration,
}

fn sockets(get: &impl Fn(&str) -> Option<String>) -> Result<Sockets, ConfigError> {
    let ws_max_message_bytes = number(get, "TETHER_WS_MAX_MESSAGE_BYTES", 65536, 128, 16 << 20)?;
    let ws_heartbeat = secs(get, "TETHER_WS_HEARTBEAT_SECS", 15)?;
    let ws_client_timeout = secs(get, "TETHER_WS_CLIENT_TIMEOUT_SECS", 45)?;
    if ws_client_timeout <= ws_heartbeat {
        return Err(invalid(
            "TETHER_WS_CLIENT_TIMEOUT_SECS",
            "must be longer than TETHER_WS_HEARTBEAT_SECS",
        ));
    }
    Ok(Sockets {
        ws_max_message_bytes,
        ws_heartbeat,
        ws_client_timeout,
    })
}

/// What sign-in may cost: failures before lockout, hashes at once.
struct SignIn {
    login_max_failures: u32,
    login_lockout: Duration,
    max_concurrent_hashes: usize,
}

fn sign_in(get: &impl Fn(&str) -> Option<String>) -> Result<SignIn, ConfigError> {
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    Ok(SignIn {
        login_max_failures: number(get, "TETHER_LOGIN_MAX_FAILURES", 5, 1, 1000)? as u32,
        login_lockout: secs(get, "TETHER_LOGIN_LOCKOUT_SECS", 900)?,
        max_concurrent_hashes: number(get, "TETHER_MAX_CONCURRENT_HASHES", cpus, 1, 1024)?,
    })
}

/// The admin created when the user store is empty.
struct BootstrapAdmin {
    admin_username: Username,
    admin_password: Option<Password>,
}

fn bootstrap_admin(get: &impl Fn(&str) -> Option<String>) -> Result<BootstrapAdmin, ConfigError> {
    let username = get("TETHER_ADMIN_USERNAME").unwrap_or_else(|| "admin".into());
    let admin_username =
        Username::parse(&username).map_err(|e| invalid("TETHER_ADMIN_USERNAME", e.0))?;
    let admin_password = get("TETHER_ADMIN_PASSWORD")
        .map(|v| Password::parse_new(v).map_err(|e| invalid("TETHER_ADMIN_PASSWORD", e.0)))
        .transpose()?;
    Ok(BootstrapAdmin {
        admin_username,
        admin_password,
    })
}

/// `TETHER_WEB_DIR`: a folder to serve the browser app from instead of the
/// copy built in. A path that is not a folder is refused, never served as
/// nothing.
fn web_dir(get: &impl Fn(&str) -> Option<String>) -> Result<Option<PathBuf>, ConfigError> {
    let Some(v) = get("TETHER_WEB_DIR") else {
        return Ok(None);
    };
    if !std::path::Path::new(&v).is_dir() {
        return Err(invalid("TETHER_WEB_DIR", format!("{v:?} is not a folder")));
    }
    Ok(Some(PathBuf::from(v)))
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn number(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: usize,
    min: usize,
    max: usize,
) -> Result<usize, ConfigError> {
    let Some(v) = get(var) else {
        return Ok(default);
    };
    let n: usize = v
        .trim()
        .parse()
        .map_err(|_| invalid(var, format!("{v:?} is not a whole number")))?;
    if n < min || n > max {
        return Err(invalid(var, format!("must be between {min} and {max}")));
    }
    Ok(n)
}

fn secs(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: usize,
) -> Result<Duration, ConfigError> {
    number(get, var, default, 1, 10 * 365 * 24 * 3600).map(|n| Duration::from_secs(n as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_work_on_a_bare_machine() {
        let c = config(&[]).unwrap();
        assert_eq!(c.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database_url(), DEFAULT_DATABASE_URL);
        assert!(c.redis_url.is_none());
        assert_eq!(c.redis_prefix, "tether:");
        assert!(
            !c.cookie_secure,
            "loopback bind defaults to non-secure cookies"
        );
        assert_eq!(c.session_idle, Duration::from_secs(1800));
        assert_eq!(c.session_absolute, Duration::from_secs(28800));
        assert_eq!(c.ws_max_message_bytes, 65536);
        assert_eq!(c.ws_heartbeat, Duration::from_secs(15));
        assert_eq!(c.ws_client_timeout, Duration::from_secs(45));
        assert_eq!(
            c.effective_allowed_origins(8080),
            vec!["http://localhost:8080", "http://127.0.0.1:8080"]
        );
    }

    #[test]
    fn a_public_bind_defaults_to_secure_cookies() {
        assert!(
            config(&[("TETHER_BIND", "0.0.0.0:8080")])
                .unwrap()
                .cookie_secure
        );
    }

    #[test]
    fn invalid_values_name_the_variable() {
        for (var, value) in [
            ("TETHER_BIND", "nope"),
            ("DATABASE_URL", "mysql://x"),
            ("REDIS_URL", "http://x"),
            ("TETHER_SESSION_KEY", "dG9vIHNob3J0"),
            ("TETHER_SESSION_IDLE_SECS", "-5"),
            ("TETHER_COOKIE_SECURE", "maybe"),
            ("TETHER_WS_MAX_MESSAGE_BYTES", "12"),
            ("TETHER_ALLOWED_ORIGINS", "example.com"),
            ("TETHER_ADMIN_PASSWORD", "short"),
            ("TETHER_WS_CLIENT_TIMEOUT_SECS", "10"),
            ("TETHER_TRUSTED_PROXIES", "10.0.0.0/8, not-an-ip"),
        ] {
            let err = config(&[(var, value)]).expect_err(var);
            assert_eq!(err.var, var);
            assert!(err.to_string().contains(var));
        }
    }

    #[test]
    fn a_wrapped_base64_session_key_is_accepted() {
        let key = base64::engine::general_purpose::STANDARD.encode([9u8; 64]);
        let wrapped = format!("{}\n{}\n", &key[..40], &key[40..]);
        assert!(config(&[("TETHER_SESSION_KEY", &wrapped)])
            .unwrap()
            .session_key
            .is_some());
    }

    #[test]
    fn parsed_values_are_kept() {
        let c = config(&[
            ("TETHER_ADMIN_USERNAME", "ops.lead"),
            ("TETHER_ADMIN_PASSWORD", "long-enough-pw"),
            ("DATABASE_URL", "postgres://u:p@db/tether"),
        ])
        .unwrap();
        assert_eq!(c.admin_username, Username::parse("ops.lead").unwrap());
        assert_eq!(c.admin_password.unwrap().expose(), "long-enough-pw");
        assert_eq!(c.database_backend, Backend::Postgres);

        let c = config(&[]).unwrap();
        assert_eq!(c.admin_username, Username::parse("admin").unwrap());
        assert!(c.admin_password.is_none());
        assert_eq!(c.database_backend, Backend::Sqlite);
        let err = config(&[("TETHER_ADMIN_USERNAME", "no spaces")]).unwrap_err();
        assert_eq!(err.var, "TETHER_ADMIN_USERNAME");
    }

    #[test]
    fn the_web_dir_is_the_embedded_app_unless_a_folder_is_named() {
        assert_eq!(config(&[]).unwrap().web_dir, None);
        let here = env!("CARGO_MANIFEST_DIR");
        let dir = format!("{here}/web");
        assert_eq!(
            config(&[("TETHER_WEB_DIR", &dir)]).unwrap().web_dir,
            Some(PathBuf::from(&dir))
        );
        for not_a_folder in [format!("{here}/Cargo.toml"), format!("{here}/no-such-dir")] {
            let err = config(&[("TETHER_WEB_DIR", &not_a_folder)]).expect_err(&not_a_folder);
            assert_eq!(err.var, "TETHER_WEB_DIR");
            assert!(err.to_string().contains("is not a folder"), "{err}");
        }
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let key = base64::engine::general_purpose::STANDARD.encode([7u8; 64]);
        let c = config(&[
            ("TETHER_SESSION_KEY", &key),
            ("TETHER_ADMIN_PASSWORD", "s3cret-admin-pw"),
            ("REDIS_URL", "redis://:redispw@localhost"),
        ])
        .unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("s3cret-admin-pw"));
        assert!(!dbg.contains("redispw"));
        assert!(!dbg.contains(&key));
    }
}
