//! One conformance suite for every session store: each case is a generic
//! async fn over [`SessionBackend`], run once against [`MemoryBackend`] and
//! once against [`RedisBackend`] (under a private key prefix), as
//! `<file>::memory::<case>` and `<file>::redis::<case>`. For Redis, what
//! the store leaves behind is also checked on the raw keys.
//!
//! - `lifecycle`: create, load, update, touch, delete, expiry, the delete race
//! - `user_index`: a user's sessions, listed and deleted together
//! - `listing`: pages of all sessions or one user's, newest first
//! - `revocation`: tombstones (why a session ended) and the existence sweep
//! - `census`: open sockets per session, summed over instances
//! - `redis_only`: the key layout, keyspace notifications, timeouts

use std::{
    collections::HashSet,
    time::{SystemTime, UNIX_EPOCH},
};

use tether::sessions::backend::{
    MemoryBackend, NewSession, RedisBackend, SessionBackend, SessionState,
};
use uuid::Uuid;

use crate::test_redis::TestRedis;

/// Runs every listed case (a generic fn of the invoking module) against
/// both stores, as `memory::<case>` and `redis::<case>`.
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case($crate::session_store::memory_store()).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let name = concat!(module_path!(), "::", stringify!($case));
                    let Some(store) = $crate::session_store::redis_store(name).await else {
                        return;
                    };
                    super::$case(store).await;
                }
            )*
        }
    };
}

mod census;
mod lifecycle;
mod listing;
mod redis_only;
mod revocation;
mod user_index;

pub const IDLE_MS: i64 = 60_000;
pub const LIFETIME_MS: i64 = 3_600_000;

/// A store under test, with raw access to Redis when it is the Redis store.
pub struct Store<B> {
    pub backend: B,
    pub redis: Option<TestRedis>,
}

impl<B: SessionBackend + Clone> Store<B> {
    /// Redis keys holding sessions under this test's prefix (none for memory).
    pub fn raw_session_keys(&self) -> Vec<String> {
        let Some(redis) = &self.redis else {
            return Vec::new();
        };
        redis
            .keys()
            .into_iter()
            .filter(|key| key.contains("session:"))
            .collect()
    }

    /// The members of the sorted set `{prefix}{key}` (`None` for memory).
    pub fn raw_zset(&self, key: &str) -> Option<HashSet<String>> {
        let redis = self.redis.as_ref()?;
        let members: Vec<String> = ::redis::cmd("ZRANGE")
            .arg(format!("{}{key}", redis.prefix))
            .arg(0)
            .arg(-1)
            .query(&mut redis.raw_connection())
            .expect("ZRANGE a sorted set");
        Some(members.into_iter().collect())
    }

    /// The members of a user's Redis index (`None` for memory).
    pub fn raw_index(&self, user_id: Uuid) -> Option<HashSet<String>> {
        self.raw_zset(&format!("user:{{{user_id}}}:sessions"))
    }

    /// The members of the Redis index of all sessions (`None` for memory).
    pub fn raw_global_index(&self) -> Option<HashSet<String>> {
        self.raw_zset("sessions")
    }

    /// Deletes a session the way an operator would (`redis-cli DEL`); the
    /// in-process store has no back door, so it is deleted through the front.
    pub async fn delete_behind_the_back(&self, sid: &str) {
        match &self.redis {
            Some(redis) => redis.delete_key(&format!("{}session:{{{sid}}}", redis.prefix)),
            None => assert!(self.backend.delete(sid, "deleted").await.unwrap()),
        }
    }

    pub async fn assert_nothing_stored(&self, sid: &str) {
        assert_eq!(self.backend.load(sid, now_ms()).await.unwrap(), None);
        let raw: Vec<String> = self
            .raw_session_keys()
            .into_iter()
            .filter(|key| key.ends_with(sid))
            .collect();
        assert!(raw.is_empty(), "session written back to Redis: {raw:?}");
    }
}

pub fn memory_store() -> Store<MemoryBackend> {
    Store {
        backend: MemoryBackend::new(),
        redis: None,
    }
}

pub async fn redis_store(test_name: &str) -> Option<Store<RedisBackend>> {
    let redis = TestRedis::new(test_name).await?;
    let backend = RedisBackend::connect(&redis.url, &redis.prefix)
        .await
        .expect("connect the Redis session store");
    Some(Store {
        backend,
        redis: Some(redis),
    })
}

pub fn now_ms() -> i64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(since_epoch.as_millis()).unwrap()
}

pub fn new_sid() -> String {
    format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple())
}

pub fn state(pairs: &[(&str, &str)]) -> SessionState {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A session for `user_id`, created now, dying `lifetime_ms` from now.
pub fn session(user_id: Option<Uuid>, lifetime_ms: i64) -> NewSession {
    session_created_at(user_id, now_ms(), lifetime_ms)
}

/// A session for `user_id`, created at `created_at_ms` (so deadlines, and
/// with them listing order, can be told apart to the millisecond).
pub fn session_created_at(
    user_id: Option<Uuid>,
    created_at_ms: i64,
    lifetime_ms: i64,
) -> NewSession {
    NewSession {
        state: state(&[("user", "\"alice\"")]),
        user_id,
        created_at_ms,
        absolute_deadline_ms: created_at_ms + lifetime_ms,
        client_ip: Some("203.0.113.7".into()),
        user_agent: Some("tether-conformance/1.0".into()),
    }
}

/// Creates a session and returns its sid.
pub async fn create<B: SessionBackend>(
    store: &B,
    user_id: Option<Uuid>,
    lifetime_ms: i64,
) -> String {
    let sid = new_sid();
    let new = session(user_id, lifetime_ms);
    store.create(&sid, new, IDLE_MS, now_ms()).await.unwrap();
    sid
}
