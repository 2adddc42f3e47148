//! Configuration: defaults, validation messages, secrets kept out of `Debug`.

use base64::Engine as _;

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
    assert_eq!(c.metrics_bind, None, "no metrics listener unless asked for");
    assert_eq!(c.database_url(), DEFAULT_DATABASE_URL);
    assert!(c.redis.is_none());
    assert_eq!(c.redis_min_replicas_ack, 0);
    assert_eq!(c.redis_replica_wait, Duration::from_millis(1000));
    assert_eq!(c.redis_prefix, "tether:");
    assert!(
        !c.cookie_secure,
        "the default public URL (http://localhost) gets a cookie without Secure"
    );
    assert_eq!(c.cookie_name(), "tether_session");
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
fn cookies_follow_the_public_url_not_the_bind_address() {
    let secure = |pairs: &[(&str, &str)]| {
        let c = config(pairs).unwrap();
        (c.cookie_secure, c.cookie_name())
    };
    let plain = (false, "tether_session");
    let host_only = (true, "__Host-tether_session");
    assert_eq!(secure(&[]), plain, "cargo run: http://localhost");
    assert_eq!(secure(&[("TETHER_BIND", "0.0.0.0:8080")]), plain);
    // Behind a TLS-terminating proxy: loopback bind, https public URL.
    let proxied = [
        ("TETHER_BIND", "127.0.0.1:8080"),
        ("TETHER_PUBLIC_URL", "https://tether.example"),
    ];
    assert_eq!(secure(&proxied), host_only);
    // The default public URL is the first allowed origin.
    let origins = "https://tether.example,http://localhost:8080";
    assert_eq!(secure(&[("TETHER_ALLOWED_ORIGINS", origins)]), host_only);
    let origins = "http://localhost:8080,https://tether.example";
    assert_eq!(secure(&[("TETHER_ALLOWED_ORIGINS", origins)]), plain);
    // TETHER_COOKIE_SECURE still overrides, either way.
    let mut forced = proxied.to_vec();
    forced.push(("TETHER_COOKIE_SECURE", "false"));
    assert_eq!(secure(&forced), plain);
    assert_eq!(secure(&[("TETHER_COOKIE_SECURE", "true")]), host_only);
}

#[test]
fn the_public_url_is_an_origin_and_is_allowed() {
    let c = config(&[("TETHER_PUBLIC_URL", "HTTPS://Tether.Example:443/")]).unwrap();
    assert_eq!(c.public_url.as_deref(), Some("https://tether.example"));
    assert_eq!(
        c.effective_allowed_origins(8080),
        vec![
            "http://localhost:8080",
            "http://127.0.0.1:8080",
            "https://tether.example"
        ]
    );
    for (given, kept) in [
        ("http://10.0.0.1:8080", "http://10.0.0.1:8080"),
        ("http://[::1]:80", "http://[::1]"),
        ("https://[2001:db8::1]:8443", "https://[2001:db8::1]:8443"),
    ] {
        let c = config(&[("TETHER_PUBLIC_URL", given)]).unwrap();
        assert_eq!(c.public_url.as_deref(), Some(kept), "{given}");
    }
    let c = config(&[]).unwrap();
    assert_eq!(c.public_url, None);
    assert_eq!(c.public_origin(8080), "http://localhost:8080");
    for bad in [
        "tether.example",
        "ftp://tether.example",
        "https://",
        "https://tether.example/app",
        "https://tether.example?x",
        "https://user@tether.example",
        "https://tether.example:0",
        "https://tether.example:99999",
        "https://bad_host",
        "https://[nope]",
    ] {
        let err = config(&[("TETHER_PUBLIC_URL", bad)]).expect_err(bad);
        assert_eq!(err.var, "TETHER_PUBLIC_URL", "{bad}");
        assert!(err.to_string().contains(bad), "{err}");
    }
}

#[test]
fn invalid_values_name_the_variable() {
    for (var, value) in [
        ("TETHER_BIND", "nope"),
        ("TETHER_METRICS_BIND", "localhost:9100"),
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
        ("TETHER_PUBLIC_URL", "tether.example"),
        ("REDIS_URL", "redis+sentinel://127.0.0.1:26379"),
        ("REDIS_URL", "redis+cluster://127.0.0.1"),
        ("TETHER_REDIS_MIN_REPLICAS_ACK", "-1"),
        ("TETHER_REDIS_REPLICA_WAIT_MS", "0"),
    ] {
        let err = config(&[(var, value)]).expect_err(var);
        assert_eq!(err.var, var);
        assert!(err.to_string().contains(var));
    }
}

#[test]
fn sentinel_and_cluster_wait_for_a_replica_by_default() {
    for url in [
        "redis+sentinel://127.0.0.1:26201/mymaster",
        "redis+cluster://127.0.0.1:7101",
    ] {
        let c = config(&[("REDIS_URL", url)]).unwrap();
        assert!(c.redis.as_ref().is_some_and(RedisTopology::has_replicas));
        assert_eq!(c.redis_min_replicas_ack, 1, "{url}");
    }
    let c = config(&[("REDIS_URL", "redis://127.0.0.1:6379")]).unwrap();
    assert_eq!(c.redis_min_replicas_ack, 0);
    let c = config(&[
        ("REDIS_URL", "redis+sentinel://127.0.0.1:26201/mymaster"),
        ("TETHER_REDIS_MIN_REPLICAS_ACK", "0"),
        ("TETHER_REDIS_REPLICA_WAIT_MS", "250"),
    ])
    .unwrap();
    assert_eq!(c.redis_min_replicas_ack, 0);
    assert_eq!(c.redis_replica_wait, Duration::from_millis(250));
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
    assert!(!dbg.contains("redispw"));
    let c = config(&[("REDIS_URL", "redis+sentinel://:redispw@localhost:26379/m")]).unwrap();
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("s3cret-admin-pw"));
    assert!(!dbg.contains("redispw"));
    assert!(!dbg.contains(&key));
}

#[test]
fn audit_retention_is_whole_days_within_range() {
    let day = Duration::from_secs(24 * 3600);
    assert_eq!(config(&[]).unwrap().audit_retention, 90 * day);
    let c = config(&[("TETHER_AUDIT_RETENTION_DAYS", "7")]).unwrap();
    assert_eq!(c.audit_retention, 7 * day);
    for bad in ["0", "-1", "1.5", "36501", "ninety"] {
        let err = config(&[("TETHER_AUDIT_RETENTION_DAYS", bad)]).expect_err(bad);
        assert_eq!(err.var, "TETHER_AUDIT_RETENTION_DAYS");
    }
}
