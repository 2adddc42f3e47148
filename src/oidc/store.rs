//! Short-lived OpenID Connect records: sign-ins under way (state, nonce, PKCE
//! verifier, return_to), logout tokens already seen (`jti`), provider
//! sessions' users (`sid`) and the per-address `start` counter. In Redis
//! when sessions are (so every instance sees them), else in process memory,
//! bounded.
//!
//! Redis keys (all under the key prefix): `oidc:flow:{state}`,
//! `oidc:jti:{provider}:{sha256(jti)}`, `oidc:sid:{provider}:{sha256(sid)}`,
//! `oidc:start:{address}`.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use redis::AsyncCommands as _;
use sha2::{Digest, Sha256};

use crate::redis_link::PrimaryConnection;

/// Most records the in-process store keeps; past it new ones are refused.
const MEMORY_CAP: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("OIDC store unavailable: {0}")]
    Unavailable(#[source] anyhow::Error),
    /// The in-process store is full (only reachable by flooding `start`
    /// from many addresses).
    #[error("OIDC store full")]
    Full,
}

impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> Self {
        StoreError::Unavailable(e.into())
    }
}

pub enum OidcStore {
    Redis {
        conn: PrimaryConnection,
        prefix: String,
    },
    Memory(Mutex<HashMap<String, (String, Instant)>>),
}

/// A one-way name for a value that must not sit in a key as it is.
pub fn digest(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

/// INCR that starts a fixed window on the first count.
const COUNT_SCRIPT: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n";

impl OidcStore {
    pub fn redis(conn: PrimaryConnection, prefix: &str) -> Self {
        OidcStore::Redis {
            conn,
            prefix: prefix.to_owned(),
        }
    }

    pub fn memory() -> Self {
        OidcStore::Memory(Mutex::new(HashMap::new()))
    }

    fn memory_lock(
        map: &Mutex<HashMap<String, (String, Instant)>>,
    ) -> std::sync::MutexGuard<'_, HashMap<String, (String, Instant)>> {
        // Nothing panics while it is held; a poisoned map is still sound.
        map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Room for one more record: drops the expired ones when near the cap.
    fn make_room(map: &mut HashMap<String, (String, Instant)>) -> Result<(), StoreError> {
        if map.len() >= MEMORY_CAP / 2 {
            let now = Instant::now();
            map.retain(|_, (_, until)| *until > now);
        }
        if map.len() >= MEMORY_CAP {
            return Err(StoreError::Full);
        }
        Ok(())
    }

    /// Stores `value` under `key` for `ttl` unless the key exists; `false`
    /// when it did (a replayed `jti`).
    pub async fn put_new(&self, key: &str, value: &str, ttl: Duration) -> Result<bool, StoreError> {
        match self {
            OidcStore::Redis { conn, prefix } => {
                let set: Option<String> = redis::cmd("SET")
                    .arg(format!("{prefix}{key}"))
                    .arg(value)
                    .arg("PX")
                    .arg(ttl.as_millis() as u64)
                    .arg("NX")
                    .query_async(&mut conn.clone())
                    .await?;
                Ok(set.is_some())
            }
            OidcStore::Memory(map) => {
                let mut map = Self::memory_lock(map);
                let now = Instant::now();
                if map.get(key).is_some_and(|(_, until)| *until > now) {
                    return Ok(false);
                }
                Self::make_room(&mut map)?;
                map.insert(key.to_owned(), (value.to_owned(), now + ttl));
                Ok(true)
            }
        }
    }

    /// Stores `value` under `key` for `ttl`, replacing what was there.
    pub async fn put(&self, key: &str, value: &str, ttl: Duration) -> Result<(), StoreError> {
        match self {
            OidcStore::Redis { conn, prefix } => {
                let ms = ttl.as_millis() as u64;
                let () = conn
                    .clone()
                    .pset_ex(format!("{prefix}{key}"), value, ms)
                    .await?;
                Ok(())
            }
            OidcStore::Memory(map) => {
                let mut map = Self::memory_lock(map);
                Self::make_room(&mut map)?;
                map.insert(key.to_owned(), (value.to_owned(), Instant::now() + ttl));
                Ok(())
            }
        }
    }

    /// The value under `key`, removed in the same step: a record is usable once.
    pub async fn take(&self, key: &str) -> Result<Option<String>, StoreError> {
        match self {
            OidcStore::Redis { conn, prefix } => Ok(redis::cmd("GETDEL")
                .arg(format!("{prefix}{key}"))
                .query_async(&mut conn.clone())
                .await?),
            OidcStore::Memory(map) => {
                let taken = Self::memory_lock(map).remove(key);
                Ok(taken
                    .filter(|(_, until)| *until > Instant::now())
                    .map(|(v, _)| v))
            }
        }
    }

    /// The value under `key`, left in place.
    pub async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        match self {
            OidcStore::Redis { conn, prefix } => {
                Ok(conn.clone().get(format!("{prefix}{key}")).await?)
            }
            OidcStore::Memory(map) => Ok(Self::memory_lock(map)
                .get(key)
                .filter(|(_, until)| *until > Instant::now())
                .map(|(v, _)| v.clone())),
        }
    }

    /// Counts one more under `key` in a fixed window of `window` from the
    /// first count; returns the count so far.
    pub async fn count(&self, key: &str, window: Duration) -> Result<u64, StoreError> {
        match self {
            OidcStore::Redis { conn, prefix } => Ok(redis::Script::new(COUNT_SCRIPT)
                .key(format!("{prefix}{key}"))
                .arg(window.as_millis() as u64)
                .invoke_async(&mut conn.clone())
                .await?),
            OidcStore::Memory(map) => {
                let mut map = Self::memory_lock(map);
                let now = Instant::now();
                let n = match map.get(key) {
                    Some((n, until)) if *until > now => n.parse::<u64>().unwrap_or(0) + 1,
                    _ => {
                        Self::make_room(&mut map)?;
                        map.insert(key.to_owned(), ("0".into(), now + window));
                        1
                    }
                };
                if let Some(entry) = map.get_mut(key) {
                    entry.0 = n.to_string();
                }
                Ok(n)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_record_is_taken_once_and_a_key_is_new_once() {
        let store = OidcStore::memory();
        let ttl = Duration::from_secs(60);
        store.put("k", "v", ttl).await.unwrap();
        assert_eq!(store.take("k").await.unwrap().as_deref(), Some("v"));
        assert_eq!(store.take("k").await.unwrap(), None);
        assert!(store.put_new("j", "1", ttl).await.unwrap());
        assert!(!store.put_new("j", "1", ttl).await.unwrap());
        assert_eq!(store.count("c", ttl).await.unwrap(), 1);
        assert_eq!(store.count("c", ttl).await.unwrap(), 2);
        store.put("gone", "v", Duration::ZERO).await.unwrap();
        assert_eq!(store.get("gone").await.unwrap(), None);
    }
}
