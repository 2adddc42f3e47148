//! Redis session store, shared by every instance of the server.
//!
//! # Key layout
//!
//! Every key starts with the configured prefix (e.g. `tether:`); times are
//! Unix milliseconds.
//!
//! | Key | Type | Contents | Expiry |
//! |-----|------|----------|--------|
//! | `{prefix}session:{sid}` | HASH | `state`: JSON object of the session state map; `uid`: user UUID, empty when anonymous; `created`; `abs`: absolute deadline; `seen`: last activity | `PEXPIRE` min(idle TTL, `abs` − now), renewed on activity |
//! | `{prefix}user:{uid}:sessions` | ZSET | the user's sids, scored by absolute deadline | `PEXPIRE` latest deadline − now |
//!
//! The user index lets a user's sessions be listed and revoked without
//! `SCAN`. Members past their deadline are pruned on create and on list,
//! and members whose session is gone are dropped on list.
//!
//! # Guarantees
//!
//! Every write after creation is a Lua script that first checks the session
//! key exists: unlike actix-session's stock store, a session deleted (logout,
//! revocation, `redis-cli DEL`) while a request is in flight is never written
//! back. Scripts derive session and index keys from the prefix, so the store
//! expects a single Redis server, not a Cluster.
//!
//! Connections time out, answers time out, and every operation has an overall
//! deadline: a stalled Redis makes requests fail with
//! [`StoreError::Unavailable`] rather than hang.

use std::{collections::HashMap, future::Future, sync::Arc, time::Duration};

use anyhow::anyhow;
use redis::{aio::ConnectionManager, aio::ConnectionManagerConfig, RedisResult, Script, Value};
use uuid::Uuid;

use super::{NewSession, SessionBackend, SessionState, StoreError, StoredSession};

/// How long one attempt to open a connection may take.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);
/// How long Redis may take to answer one command.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// The most any one store operation may take, reconnection included.
pub const OPERATION_DEADLINE: Duration = Duration::from_secs(3);
/// Reconnection attempts before a command fails; kept low because a request
/// waiting on a dead Redis should fail fast, not retry for long.
const RECONNECT_RETRIES: usize = 2;

/// Sessions in Redis under `{prefix}session:{sid}` (see the module docs).
/// Cheap to clone: clones share one auto-reconnecting connection.
#[derive(Clone)]
pub struct RedisBackend {
    connection: ConnectionManager,
    prefix: Arc<str>,
    scripts: Arc<Scripts>,
}

/// The Lua scripts behind every multi-step write, loaded lazily by `EVALSHA`.
struct Scripts {
    create: Script,
    refresh: Script,
    delete: Script,
    delete_user: Script,
}

impl Scripts {
    fn new() -> Self {
        Self {
            create: Script::new(include_str!("redis/create.lua")),
            refresh: Script::new(include_str!("redis/refresh.lua")),
            delete: Script::new(include_str!("redis/delete.lua")),
            delete_user: Script::new(include_str!("redis/delete_user.lua")),
        }
    }
}

/// What `refresh.lua` returns when the session no longer exists.
const REFRESH_GONE: i64 = -1;
/// What `refresh.lua` returns when the record has no readable deadline.
const REFRESH_CORRUPT: i64 = -2;

impl RedisBackend {
    /// Connects with connection and response timeouts, so a stalled Redis
    /// makes requests fail (503) rather than hang. Fails with
    /// [`StoreError::Unavailable`] if Redis cannot be reached now.
    pub async fn connect(url: &str, prefix: &str) -> Result<RedisBackend, StoreError> {
        // The URL may hold a password: it never goes into an error.
        let client = redis::Client::open(url).map_err(|e| {
            StoreError::Unavailable(anyhow::Error::new(e).context("invalid Redis URL"))
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECTION_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(RECONNECT_RETRIES)
            .set_max_delay(Duration::from_millis(500));
        let connection = with_deadline(
            "connect to Redis",
            ConnectionManager::new_with_config(client, config),
        )
        .await?;
        let backend = RedisBackend {
            connection,
            prefix: prefix.into(),
            scripts: Arc::new(Scripts::new()),
        };
        backend.ping().await?;
        Ok(backend)
    }

    /// The key of a session's hash.
    pub fn session_key(&self, sid: &str) -> String {
        format!("{}session:{sid}", self.prefix)
    }

    /// The key of a user's session index.
    pub fn user_index_key(&self, user_id: Uuid) -> String {
        format!("{}user:{user_id}:sessions", self.prefix)
    }

    /// Runs `refresh.lua`: renews the TTL, and replaces the state if given.
    /// Returns the new expiry, or `None` when the session is gone.
    async fn refresh(
        &self,
        sid: &str,
        state: Option<&SessionState>,
        idle_ttl_ms: i64,
        now_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        let mut invocation = self.scripts.refresh.key(self.session_key(sid));
        invocation.arg(now_ms).arg(idle_ttl_ms);
        if let Some(state) = state {
            invocation.arg(encode_state(state)?);
        }
        let mut connection = self.connection.clone();
        let expires_at_ms: i64 =
            with_deadline("refresh session", invocation.invoke_async(&mut connection)).await?;
        match expires_at_ms {
            REFRESH_GONE => Ok(None),
            REFRESH_CORRUPT => Err(StoreError::Corrupt(
                "session hash has no readable `abs` field".into(),
            )),
            expires_at_ms => Ok(Some(expires_at_ms)),
        }
    }

    /// Reads sessions (hash and remaining TTL) in one atomic round trip;
    /// `None` for each one that is absent or past its absolute deadline.
    async fn fetch(
        &self,
        sids: &[String],
        now_ms: i64,
    ) -> Result<Vec<Option<StoredSession>>, StoreError> {
        if sids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        for sid in sids {
            let key = self.session_key(sid);
            pipe.cmd("HGETALL").arg(&key).cmd("PTTL").arg(&key);
        }
        let mut connection = self.connection.clone();
        let replies: Vec<Value> =
            with_deadline("read sessions", pipe.query_async(&mut connection)).await?;
        if replies.len() != 2 * sids.len() {
            return Err(StoreError::Corrupt(format!(
                "expected {} replies from Redis, got {}",
                2 * sids.len(),
                replies.len()
            )));
        }
        replies
            .chunks_exact(2)
            .map(|pair| parse_session(&pair[0], &pair[1], now_ms))
            .collect()
    }
}

impl SessionBackend for RedisBackend {
    async fn create(
        &self,
        sid: &str,
        new: NewSession,
        idle_ttl_ms: i64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut invocation = self.scripts.create.key(self.session_key(sid));
        if let Some(user_id) = new.user_id {
            invocation.key(self.user_index_key(user_id));
        }
        invocation
            .arg(encode_state(&new.state)?)
            .arg(new.user_id.map(|u| u.to_string()).unwrap_or_default())
            .arg(new.created_at_ms)
            .arg(new.absolute_deadline_ms)
            .arg(now_ms)
            .arg(idle_ttl_ms)
            .arg(sid);
        let mut connection = self.connection.clone();
        let _stored: i64 =
            with_deadline("create session", invocation.invoke_async(&mut connection)).await?;
        Ok(())
    }

    async fn load(&self, sid: &str, now_ms: i64) -> Result<Option<StoredSession>, StoreError> {
        let mut sessions = self.fetch(&[sid.to_owned()], now_ms).await?;
        Ok(sessions.pop().flatten())
    }

    async fn update_state(
        &self,
        sid: &str,
        state: SessionState,
        idle_ttl_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let expires_at_ms = self.refresh(sid, Some(&state), idle_ttl_ms, now_ms).await?;
        Ok(expires_at_ms.is_some())
    }

    async fn touch(
        &self,
        sid: &str,
        idle_ttl_ms: i64,
        now_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        self.refresh(sid, None, idle_ttl_ms, now_ms).await
    }

    async fn delete(&self, sid: &str) -> Result<bool, StoreError> {
        let mut invocation = self.scripts.delete.key(self.session_key(sid));
        invocation.arg(&*self.prefix).arg(sid);
        let mut connection = self.connection.clone();
        let existed: i64 =
            with_deadline("delete session", invocation.invoke_async(&mut connection)).await?;
        Ok(existed == 1)
    }

    async fn list_user_sessions(
        &self,
        user_id: Uuid,
        now_ms: i64,
    ) -> Result<Vec<(String, StoredSession)>, StoreError> {
        let index = self.user_index_key(user_id);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("ZREMRANGEBYSCORE")
            .arg(&index)
            .arg("-inf")
            .arg(now_ms)
            .ignore()
            .cmd("ZRANGE")
            .arg(&index)
            .arg(0)
            .arg(-1);
        let mut connection = self.connection.clone();
        let (sids,): (Vec<String>,) =
            with_deadline("read user index", pipe.query_async(&mut connection)).await?;

        let sessions = self.fetch(&sids, now_ms).await?;
        let mut live = Vec::with_capacity(sids.len());
        let mut stale = Vec::new();
        for (sid, session) in sids.into_iter().zip(sessions) {
            match session {
                Some(session) if session.user_id == Some(user_id) => live.push((sid, session)),
                _ => stale.push(sid),
            }
        }
        if !stale.is_empty() {
            let mut zrem = redis::cmd("ZREM");
            zrem.arg(&index).arg(&stale);
            let _removed: i64 =
                with_deadline("prune user index", zrem.query_async(&mut connection)).await?;
        }
        Ok(live)
    }

    async fn delete_user_sessions(&self, user_id: Uuid) -> Result<Vec<String>, StoreError> {
        let mut invocation = self.scripts.delete_user.key(self.user_index_key(user_id));
        invocation.arg(&*self.prefix).arg(user_id.to_string());
        let mut connection = self.connection.clone();
        with_deadline(
            "delete user sessions",
            invocation.invoke_async(&mut connection),
        )
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        let _pong: String =
            with_deadline("ping", redis::cmd("PING").query_async(&mut connection)).await?;
        Ok(())
    }
}

/// Runs one Redis operation under [`OPERATION_DEADLINE`], turning every
/// failure into [`StoreError::Unavailable`] with what was being done.
async fn with_deadline<T>(
    what: &'static str,
    operation: impl Future<Output = RedisResult<T>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(OPERATION_DEADLINE, operation).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(StoreError::Unavailable(
            anyhow::Error::new(e).context(format!("Redis: {what}")),
        )),
        Err(_elapsed) => Err(StoreError::Unavailable(anyhow!(
            "Redis: {what}: no answer within {OPERATION_DEADLINE:?}"
        ))),
    }
}

fn encode_state(state: &SessionState) -> Result<String, StoreError> {
    // Serializing a map of strings cannot fail; stay total anyway.
    serde_json::to_string(state)
        .map_err(|e| StoreError::Corrupt(format!("session state not serializable: {e}")))
}

/// Builds a session from its `HGETALL` and `PTTL` replies. Error messages
/// name fields, never their contents: the state may hold anything.
fn parse_session(
    hash: &Value,
    pttl: &Value,
    now_ms: i64,
) -> Result<Option<StoredSession>, StoreError> {
    let fields: HashMap<String, String> = redis::from_redis_value_ref(hash)
        .map_err(|_| StoreError::Corrupt("session key is not a hash of strings".into()))?;
    let pttl_ms: i64 = redis::from_redis_value_ref(pttl)
        .map_err(|_| StoreError::Corrupt("PTTL reply is not an integer".into()))?;
    if fields.is_empty() || pttl_ms == -2 {
        return Ok(None);
    }
    let field = |name: &str| {
        fields
            .get(name)
            .ok_or_else(|| StoreError::Corrupt(format!("session hash lacks field `{name}`")))
    };
    let millis = |name: &str| {
        field(name)?.parse::<i64>().map_err(|_| {
            StoreError::Corrupt(format!("session hash field `{name}` is not an integer"))
        })
    };
    let absolute_deadline_ms = millis("abs")?;
    if absolute_deadline_ms <= now_ms {
        return Ok(None);
    }
    let state: SessionState = serde_json::from_str(field("state")?).map_err(|_| {
        StoreError::Corrupt("session hash field `state` is not a JSON object of strings".into())
    })?;
    let user_id =
        match field("uid")?.as_str() {
            "" => None,
            uid => Some(Uuid::parse_str(uid).map_err(|_| {
                StoreError::Corrupt("session hash field `uid` is not a UUID".into())
            })?),
        };
    // No TTL (-1) cannot come from this store; the deadline still bounds it.
    let expires_at_ms = if pttl_ms >= 0 {
        now_ms.saturating_add(pttl_ms).min(absolute_deadline_ms)
    } else {
        absolute_deadline_ms
    };
    Ok(Some(StoredSession {
        state,
        user_id,
        created_at_ms: millis("created")?,
        absolute_deadline_ms,
        expires_at_ms,
    }))
}
