//! Sign-in throttling: after too many failed sign-ins for one username, or
//! from one client IP, further attempts get 429 with `Retry-After` until the
//! window passes. Counted in Redis when there is one, so every instance
//! enforces the same limit; in process memory otherwise.
//!
//! Attempts are refused *before* the password is checked, so a locked-out
//! attacker costs no argon2 time. Counting by name applies equally to names
//! that do not exist, so the 429 reveals nothing about which accounts exist.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use redis::aio::ConnectionManager;

/// A client IP may fail this many times more than one username may.
const IP_FACTOR: u32 = 10;

/// Counter in Redis: `{prefix}throttle:{kind}:{subject}`, a fixed window
/// started by the first failure.
const HIT: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
";

enum Store {
    Redis {
        conn: ConnectionManager,
        prefix: String,
    },
    Memory(Mutex<HashMap<String, (u32, Instant)>>),
}

pub struct LoginThrottle {
    store: Store,
    max_failures: u32,
    window: Duration,
}

/// What is counted for one attempt.
pub struct Subjects {
    keys: Vec<(String, u32)>,
}

impl LoginThrottle {
    pub fn redis(
        conn: ConnectionManager,
        prefix: &str,
        max_failures: u32,
        window: Duration,
    ) -> Self {
        let prefix = prefix.to_owned();
        Self {
            store: Store::Redis { conn, prefix },
            max_failures,
            window,
        }
    }

    pub fn memory(max_failures: u32, window: Duration) -> Self {
        Self {
            store: Store::Memory(Mutex::new(HashMap::new())),
            max_failures,
            window,
        }
    }

    /// The counters an attempt touches: the username (when it is a valid
    /// name) and the client IP (when known), each with its limit.
    pub fn subjects(&self, username: Option<&str>, ip: Option<std::net::IpAddr>) -> Subjects {
        let prefix = match &self.store {
            Store::Redis { prefix, .. } => prefix.as_str(),
            Store::Memory(_) => "",
        };
        let mut keys = Vec::new();
        if let Some(name) = username {
            keys.push((
                format!("{prefix}throttle:user:{}", name.to_lowercase()),
                self.max_failures,
            ));
        }
        if let Some(ip) = ip {
            keys.push((
                format!("{prefix}throttle:ip:{ip}"),
                self.max_failures * IP_FACTOR,
            ));
        }
        Subjects { keys }
    }

    /// `Some(wait)` if any counter is at its limit.
    pub async fn blocked(&self, subjects: &Subjects) -> anyhow::Result<Option<Duration>> {
        let mut wait = None;
        for (key, limit) in &subjects.keys {
            let (count, left) = self.read(key).await?;
            if count >= *limit {
                wait = wait.max(Some(left));
            }
        }
        Ok(wait)
    }

    pub async fn failed(&self, subjects: &Subjects) -> anyhow::Result<()> {
        for (key, _) in &subjects.keys {
            self.hit(key).await?;
        }
        Ok(())
    }

    /// A successful sign-in forgives the username's failures (not the IP's).
    pub async fn succeeded(&self, subjects: &Subjects) -> anyhow::Result<()> {
        if let Some((key, _)) = subjects
            .keys
            .iter()
            .find(|(k, _)| k.contains("throttle:user:"))
        {
            match &self.store {
                Store::Redis { conn, .. } => {
                    let _: () = redis::cmd("DEL")
                        .arg(key)
                        .query_async(&mut conn.clone())
                        .await?;
                }
                Store::Memory(map) => {
                    map.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
                }
            }
        }
        Ok(())
    }

    async fn read(&self, key: &str) -> anyhow::Result<(u32, Duration)> {
        match &self.store {
            Store::Redis { conn, .. } => {
                let (count, pttl): (Option<u32>, i64) = redis::pipe()
                    .get(key)
                    .pttl(key)
                    .query_async(&mut conn.clone())
                    .await?;
                Ok((
                    count.unwrap_or(0),
                    Duration::from_millis(pttl.max(0) as u64),
                ))
            }
            Store::Memory(map) => {
                let map = map.lock().unwrap_or_else(|p| p.into_inner());
                Ok(match map.get(key) {
                    Some((n, start)) if start.elapsed() < self.window => {
                        (*n, self.window - start.elapsed())
                    }
                    _ => (0, Duration::ZERO),
                })
            }
        }
    }

    async fn hit(&self, key: &str) -> anyhow::Result<()> {
        match &self.store {
            Store::Redis { conn, .. } => {
                let _: u32 = redis::Script::new(HIT)
                    .key(key)
                    .arg(self.window.as_millis() as u64)
                    .invoke_async(&mut conn.clone())
                    .await?;
            }
            Store::Memory(map) => {
                let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
                // Forget finished windows, so the map cannot grow without bound.
                if map.len() > 10_000 {
                    map.retain(|_, (_, start)| start.elapsed() < self.window);
                }
                let entry = map.entry(key.to_owned()).or_insert((0, Instant::now()));
                if entry.1.elapsed() >= self.window {
                    *entry = (0, Instant::now());
                }
                entry.0 += 1;
            }
        }
        Ok(())
    }
}
