//! One function per concern of the configuration; each returns the values it
//! parsed, so nothing is parsed twice.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use base64::Engine as _;
use secrecy::SecretString;

use super::{invalid, ConfigError, CookieKey, RedisTopology, DEFAULT_DATABASE_URL};
use crate::{
    db::Backend,
    domain::{Password, Username},
};

/// Where the server listens and whom it believes about the client.
pub(super) struct Network {
    pub(super) bind: SocketAddr,
    pub(super) metrics_bind: Option<SocketAddr>,
    pub(super) allowed_origins: Option<Vec<String>>,
    pub(super) trusted_proxies: Vec<ipnet::IpNet>,
}

pub(super) fn network(get: &impl Fn(&str) -> Option<String>) -> Result<Network, ConfigError> {
    let bind = match get("TETHER_BIND") {
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| invalid("TETHER_BIND", format!("{v:?} is not HOST:PORT")))?,
        None => SocketAddr::from(([127, 0, 0, 1], 8080)),
    };
    let metrics_bind = match get("TETHER_METRICS_BIND") {
        Some(v) => Some(
            v.trim()
                .parse()
                .map_err(|_| invalid("TETHER_METRICS_BIND", format!("{v:?} is not IP:PORT")))?,
        ),
        None => None,
    };
    Ok(Network {
        bind,
        metrics_bind,
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
pub(super) struct Stores {
    pub(super) database_url: SecretString,
    pub(super) database_backend: Backend,
    pub(super) redis: Option<RedisTopology>,
    pub(super) redis_prefix: String,
    pub(super) redis_min_replicas_ack: usize,
    pub(super) redis_replica_wait: Duration,
}

pub(super) fn stores(get: &impl Fn(&str) -> Option<String>) -> Result<Stores, ConfigError> {
    let database_url = get("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.into());
    let database_backend =
        Backend::from_url(&database_url).map_err(|reason| invalid("DATABASE_URL", reason))?;
    let redis = get("REDIS_URL")
        .map(|v| super::redis::parse(&v).map_err(|reason| invalid("REDIS_URL", reason)))
        .transpose()?;
    let redis_prefix = get("TETHER_REDIS_PREFIX").unwrap_or_else(|| "tether:".into());
    if redis_prefix.chars().any(|c| c.is_whitespace() || c == '*') {
        return Err(invalid(
            "TETHER_REDIS_PREFIX",
            "must not contain whitespace or '*'",
        ));
    }
    // A revoke waits for a replica where there is one to wait for.
    let default_acks = usize::from(redis.as_ref().is_some_and(RedisTopology::has_replicas));
    Ok(Stores {
        database_url: SecretString::from(database_url),
        database_backend,
        redis,
        redis_prefix,
        redis_min_replicas_ack: number(get, "TETHER_REDIS_MIN_REPLICAS_ACK", default_acks, 0, 16)?,
        redis_replica_wait: Duration::from_millis(number(
            get,
            "TETHER_REDIS_REPLICA_WAIT_MS",
            1000,
            1,
            60_000,
        )? as u64),
    })
}

/// The session cookie and the session's deadlines.
pub(super) struct SessionSettings {
    pub(super) session_key: Option<CookieKey>,
    pub(super) session_idle: Duration,
    pub(super) session_absolute: Duration,
    pub(super) cookie_secure: bool,
    pub(super) sweep_interval: Duration,
    pub(super) session_expiring_notice: Duration,
}

pub(super) fn sessions(
    get: &impl Fn(&str) -> Option<String>,
    public_url: Option<&str>,
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
        // Where users reach the app decides, not the address bound: behind a
        // TLS-terminating proxy tether binds loopback and speaks plain http.
        None => public_url.is_some_and(|url| url.starts_with("https://")),
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

/// `TETHER_PUBLIC_URL`: where users reach the app, as the origin a browser
/// sends (`scheme://host[:port]`); default: the first `TETHER_ALLOWED_ORIGINS`
/// entry. `None` when neither is set: then it is `http://localhost:PORT`, known
/// once bound.
pub(super) fn public_url(
    get: &impl Fn(&str) -> Option<String>,
    allowed_origins: Option<&[String]>,
) -> Result<Option<String>, ConfigError> {
    match get("TETHER_PUBLIC_URL") {
        Some(v) => public_origin(&v).map(Some),
        None => Ok(allowed_origins.and_then(|list| list.first()).cloned()),
    }
}

/// `v` as a browser's `Origin` would show it: scheme and host lower-cased, the
/// scheme's default port and a trailing `/` dropped. A path, query, fragment
/// or user name is refused: the app is served at `/` of its origin.
fn public_origin(v: &str) -> Result<String, ConfigError> {
    let refuse = |why: &str| invalid("TETHER_PUBLIC_URL", format!("{v:?} {why}"));
    let lower = v.trim().to_ascii_lowercase();
    let (scheme, rest) = lower
        .split_once("://")
        .ok_or_else(|| refuse("is not an http:// or https:// URL"))?;
    let default_port = match scheme {
        "http" => "80",
        "https" => "443",
        _ => return Err(refuse("is not an http:// or https:// URL")),
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains(['/', '?', '#', '@']) || authority.contains(char::is_whitespace) {
        return Err(refuse(
            "must be scheme://host[:port] with nothing after it (tether is served at /)",
        ));
    }
    // `[v6]:port`, `[v6]`, `host:port` or `host`.
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !port.ends_with(']') => (host, Some(port)),
        _ => (authority, None),
    };
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => {
            !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
        }
    };
    if !host_ok {
        return Err(refuse("has no valid host"));
    }
    let port = match port {
        Some(p) if p.parse::<u16>().is_ok_and(|n| n > 0) => p,
        Some(_) => return Err(refuse("has an invalid port")),
        None => default_port,
    };
    Ok(if port == default_port {
        format!("{scheme}://{host}")
    } else {
        format!("{scheme}://{host}:{port}")
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
pub(super) struct Sockets {
    pub(super) ws_max_message_bytes: usize,
    pub(super) ws_heartbeat: Duration,
    pub(super) ws_client_timeout: Duration,
    pub(super) ws_max_per_session: usize,
    pub(super) ws_max_per_user: usize,
    pub(super) ws_messages_per_sec: u32,
    pub(super) ws_message_burst: u32,
    pub(super) ws_send_timeout: Duration,
}

pub(super) fn sockets(get: &impl Fn(&str) -> Option<String>) -> Result<Sockets, ConfigError> {
    let ws_max_message_bytes = number(get, "TETHER_WS_MAX_MESSAGE_BYTES", 65536, 128, 16 << 20)?;
    let ws_heartbeat = secs(get, "TETHER_WS_HEARTBEAT_SECS", 15)?;
    let ws_client_timeout = secs(get, "TETHER_WS_CLIENT_TIMEOUT_SECS", 45)?;
    if ws_client_timeout <= ws_heartbeat {
        return Err(invalid(
            "TETHER_WS_CLIENT_TIMEOUT_SECS",
            "must be longer than TETHER_WS_HEARTBEAT_SECS",
        ));
    }
    let ws_max_per_session = number(get, "TETHER_WS_MAX_PER_SESSION", 16, 1, 100_000)?;
    let ws_max_per_user = number(get, "TETHER_WS_MAX_PER_USER", 64, 1, 1_000_000)?;
    Ok(Sockets {
        ws_max_message_bytes,
        ws_heartbeat,
        ws_client_timeout,
        ws_max_per_session,
        ws_max_per_user,
        ws_messages_per_sec: number(get, "TETHER_WS_MESSAGES_PER_SEC", 50, 1, 1_000_000)? as u32,
        ws_message_burst: number(get, "TETHER_WS_MESSAGE_BURST", 100, 1, 1_000_000)? as u32,
        ws_send_timeout: secs(get, "TETHER_WS_SEND_TIMEOUT_SECS", 10)?,
    })
}

/// What sign-in may cost: failures before lockout, hashes at once.
pub(super) struct SignIn {
    pub(super) login_max_failures: u32,
    pub(super) login_max_failures_per_user: u32,
    pub(super) login_max_failures_per_ip: u32,
    pub(super) login_lockout: Duration,
    pub(super) max_concurrent_hashes: usize,
    pub(super) max_queued_hashes: usize,
}

pub(super) fn sign_in(get: &impl Fn(&str) -> Option<String>) -> Result<SignIn, ConfigError> {
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    Ok(SignIn {
        login_max_failures: number(get, "TETHER_LOGIN_MAX_FAILURES", 5, 1, 1000)? as u32,
        login_max_failures_per_user: number(
            get,
            "TETHER_LOGIN_MAX_FAILURES_PER_USER",
            100,
            1,
            1_000_000,
        )? as u32,
        login_max_failures_per_ip: number(
            get,
            "TETHER_LOGIN_MAX_FAILURES_PER_IP",
            50,
            1,
            1_000_000,
        )? as u32,
        login_lockout: secs(get, "TETHER_LOGIN_LOCKOUT_SECS", 900)?,
        max_concurrent_hashes: number(get, "TETHER_MAX_CONCURRENT_HASHES", cpus, 1, 1024)?,
        max_queued_hashes: number(get, "TETHER_MAX_QUEUED_HASHES", 64, 1, 100_000)?,
    })
}

/// The admin created when the user store is empty.
pub(super) struct BootstrapAdmin {
    pub(super) admin_username: Username,
    pub(super) admin_password: Option<Password>,
}

pub(super) fn bootstrap_admin(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<BootstrapAdmin, ConfigError> {
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
pub(super) fn web_dir(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Option<PathBuf>, ConfigError> {
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

/// How long a graceful shutdown may take (`TETHER_SHUTDOWN_GRACE_SECS`).
pub(super) fn shutdown_grace(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Duration, ConfigError> {
    secs(get, "TETHER_SHUTDOWN_GRACE_SECS", 10)
}

/// How long audit entries are kept (`TETHER_AUDIT_RETENTION_DAYS`).
pub(super) fn audit_retention(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Duration, ConfigError> {
    number(get, "TETHER_AUDIT_RETENTION_DAYS", 90, 1, 36_500)
        .map(|days| Duration::from_secs(days as u64 * 24 * 3600))
}
