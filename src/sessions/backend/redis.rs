//! Redis session store, shared by every instance of the server.
//!
//! # Key layout
//!
//! Every key starts with the configured prefix (e.g. `tether:`); times are
//! Unix milliseconds.
//!
//! | Key | Type | Contents | Expiry |
//! |-----|------|----------|--------|
//! | `{prefix}session:{sid}` | HASH | `state`: JSON object of the session state map; `uid`: user UUID, empty when anonymous; `created`; `abs`: absolute deadline; `seen`: last activity; `exp`: when the key expires, as its TTL was last set; `ip`: client IP, `ua`: user agent (each ≤ 256 characters, empty when unknown) | `PEXPIRE` min(idle TTL, `abs` − now), renewed on activity |
//! | `{prefix}sessions` | ZSET | every sid, scored by absolute deadline | `PEXPIRE` latest deadline − now |
//! | `{prefix}user:{uid}:sessions` | ZSET | the user's sids, scored by absolute deadline | `PEXPIRE` latest deadline − now |
//! | `{prefix}ended:{sid}` | STRING | why a deleted session ended (`logout`, `admin`, …) | 60 s |
//! | `{prefix}census:{instance}` | HASH | sid → sockets that instance has open for it | `PEXPIRE` census TTL, replaced on every record |
//! | `{prefix}instances` | ZSET | instance ids, scored by when each last recorded its census | `PEXPIRE` census TTL, renewed on every record |
//!
//! The indexes let sessions be listed, paged and revoked without `SCAN`.
//! Members past their deadline are pruned on create and on list, and members
//! whose session is gone are dropped on list.
//!
//! # Guarantees
//!
//! Every write after creation is a Lua script that first checks the session
//! key exists: unlike actix-session's stock store, a session deleted (logout,
//! revocation, `redis-cli DEL`) while a request is in flight is never written
//! back. Scripts derive session and index keys from the prefix, so the store
//! expects one primary (a single server, or Sentinel's), not a Cluster.
//!
//! Every connection goes to the current primary ([`crate::redis_link`]
//! follows a Sentinel failover). Session deletes (revocations) wait until
//! `TETHER_REDIS_MIN_REPLICAS_ACK` replicas have them (`WAIT`) before they
//! answer, so an acknowledged revoke survives the loss of the primary.
//!
//! Connections time out, answers time out, and every operation has an overall
//! deadline: a stalled Redis makes requests fail with
//! [`StoreError::Unavailable`] rather than hang.

mod census;
mod keyspace;

pub use keyspace::KeyspaceNotice;
mod listing;
mod record;

use std::{collections::HashMap, future::Future, sync::Arc, time::Duration};

use anyhow::anyhow;
use redis::{aio::ConnectionManagerConfig, RedisError, RedisResult, Script, Value};
use uuid::Uuid;

use self::record::{encode_state, parse_session, with_ttl, Record, FIELDS};
use super::{
    client_field, NewSession, SessionBackend, SessionPage, SessionState, StoreError, StoredSession,
    TOMBSTONE_TTL_MS,
};
use crate::redis_link::{PrimaryConnection, RedisLink};

/// How long one attempt to open a connection may take.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);
/// How long Redis may take to answer one command.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// The most any one store operation may take, reconnection included.
pub const OPERATION_DEADLINE: Duration = Duration::from_secs(3);
/// Reconnection attempts before a command fails; kept low because a request
/// waiting on a dead Redis should fail fast, not retry for long.
const RECONNECT_RETRIES: usize = 2;
/// The most keys one pipeline reads, so a sweep over every socket's session
/// neither builds one huge reply nor blocks Redis for long.
pub const READ_BATCH: usize = 1000;

/// How many replicas must have a session delete before a revoke answers
/// (`TETHER_REDIS_MIN_REPLICAS_ACK`), and how long to wait for them
/// (`TETHER_REDIS_REPLICA_WAIT_MS`). A revoke acknowledged to its caller then
/// survives the loss of the primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaAck {
    pub replicas: usize,
    pub within: Duration,
}

impl ReplicaAck {
    /// Deletes answer without waiting for any replica.
    pub const NONE: ReplicaAck = ReplicaAck {
        replicas: 0,
        within: Duration::ZERO,
    };
}

/// Sessions in Redis under `{prefix}session:{sid}` (see the module docs).
/// Cheap to clone: clones share its auto-reconnecting connection(s).
#[derive(Clone)]
pub struct RedisBackend {
    link: RedisLink,
    /// Shared by clones; a worker's clone has one of its own
    /// ([`RedisBackend::for_worker`]).
    connection: PrimaryConnection,
    /// Session deletes and their `WAIT`, on a connection of their own: `WAIT`
    /// covers the writes of the connection it is sent on, and blocks it.
    /// `None` when no replica need acknowledge.
    replicated_deletes: Option<(PrimaryConnection, ReplicaAck)>,
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

const DELETE_LUA: &str = include_str!("redis/delete.lua");
const DELETE_USER_LUA: &str = include_str!("redis/delete_user.lua");

impl Scripts {
    fn new() -> Self {
        Self {
            create: Script::new(include_str!("redis/create.lua")),
            refresh: Script::new(include_str!("redis/refresh.lua")),
            delete: Script::new(DELETE_LUA),
            delete_user: Script::new(DELETE_USER_LUA),
        }
    }
}

/// What `refresh.lua` returns when the session no longer exists.
const REFRESH_GONE: i64 = -1;
/// What `refresh.lua` returns when the record has no readable deadline.
const REFRESH_CORRUPT: i64 = -2;

impl RedisBackend {
    /// One Redis node at `url`, deletes not waiting for replicas. Fails with
    /// [`StoreError::Unavailable`] if Redis cannot be reached now.
    pub async fn connect(url: &str, prefix: &str) -> Result<RedisBackend, StoreError> {
        let link = RedisLink::single(url).map_err(StoreError::Unavailable)?;
        Self::on_link(link, prefix, ReplicaAck::NONE).await
    }

    /// Sessions on whatever primary `link` leads to, with connection and
    /// response timeouts, so a stalled Redis makes requests fail (503) rather
    /// than hang. Fails with [`StoreError::Unavailable`] if the primary cannot
    /// be reached now.
    pub async fn on_link(
        link: RedisLink,
        prefix: &str,
        acks: ReplicaAck,
    ) -> Result<RedisBackend, StoreError> {
        let replicated_deletes = (acks.replicas > 0).then(|| {
            // The response timeout must outlast the longest `WAIT`.
            let config =
                manager_config().set_response_timeout(Some(acks.within + RESPONSE_TIMEOUT));
            (link.connection(config), acks)
        });
        let backend = RedisBackend {
            connection: link.connection(manager_config()),
            link,
            replicated_deletes,
            prefix: prefix.into(),
            scripts: Arc::new(Scripts::new()),
        };
        backend.ping().await?;
        Ok(backend)
    }

    /// A clone for one HTTP worker thread, whose operations go over a
    /// connection of its own, opened on first use from that thread.
    ///
    /// Why: redis-rs drives a connection from a task on the runtime that
    /// opened it. Every actix worker is a runtime of its own, so over the
    /// shared connection (opened at start, on the main thread) each request's
    /// session load crossed threads twice: a wake-up of the main thread to
    /// send, another of the worker for the reply (−15 % `me` throughput,
    /// BENCHMARKS.md).
    pub fn for_worker(&self) -> RedisBackend {
        RedisBackend {
            connection: self.link.connection(manager_config()),
            ..self.clone()
        }
    }

    /// The connection this backend's operations use (it follows the primary).
    fn conn(&self) -> PrimaryConnection {
        self.connection.clone()
    }

    /// The shared connection and key prefix, for other server state kept in the
    /// same Redis (the sign-in throttle).
    pub fn connection(&self) -> (PrimaryConnection, &str) {
        (self.connection.clone(), &self.prefix)
    }

    /// Runs a delete script (`script`, whose source is `source`). When
    /// replicas must acknowledge deletes, the script goes by `EVAL` in one
    /// pipeline with `WAIT`, on the deletes' own connection: `WAIT` covers
    /// only the writes sent before it on the same connection, and a pipeline
    /// is one write on one socket, so nothing can slip between the two.
    /// Too few acknowledgements in time do not fail the delete, which has
    /// happened: they are logged as a warning.
    async fn run_delete<T: redis::FromRedisValue>(
        &self,
        what: &'static str,
        (script, source): (&Script, &'static str),
        keys: &[String],
        args: &[String],
    ) -> Result<T, StoreError> {
        let Some((connection, acks)) = &self.replicated_deletes else {
            let mut invocation = script.prepare_invoke();
            for key in keys {
                invocation.key(key);
            }
            for arg in args {
                invocation.arg(arg);
            }
            let mut connection = self.conn();
            return with_deadline(what, invocation.invoke_async(&mut connection)).await;
        };
        let wait_ms = acks.within.as_millis() as u64;
        let mut pipe = redis::pipe();
        pipe.cmd("EVAL")
            .arg(source)
            .arg(keys.len())
            .arg(keys)
            .arg(args);
        pipe.cmd("WAIT").arg(acks.replicas).arg(wait_ms);
        let mut connection = connection.clone();
        let replied = tokio::time::timeout(
            acks.within + OPERATION_DEADLINE,
            pipe.query_async::<(T, usize)>(&mut connection),
        )
        .await
        .map_err(|_elapsed| StoreError::Unavailable(anyhow!("Redis: {what}: no answer in time")))?;
        let (result, acked) = replied.map_err(|e| unavailable(what, e))?;
        if acked < acks.replicas {
            log::warn!(
                "event=delete_not_replicated what=\"{what}\" acked={acked} wanted={} \
                 waited_ms={wait_ms} note=\"answered anyway; losing the primary now could undo it\"",
                acks.replicas
            );
        }
        Ok(result)
    }

    /// The key of a session's hash.
    pub fn session_key(&self, sid: &str) -> String {
        format!("{}session:{sid}", self.prefix)
    }

    /// The key of a user's session index.
    pub fn user_index_key(&self, user_id: Uuid) -> String {
        format!("{}user:{user_id}:sessions", self.prefix)
    }

    /// The key of the index of every session.
    pub fn sessions_index_key(&self) -> String {
        format!("{}sessions", self.prefix)
    }

    /// The key of a deleted session's tombstone.
    pub fn ended_key(&self, sid: &str) -> String {
        format!("{}ended:{sid}", self.prefix)
    }

    /// Claims the counting of a session's end for this instance: every
    /// instance hears the same keyspace notice, and the first to set
    /// `{prefix}ended_counted:{sid}` (kept 60 s) counts it, so a session
    /// ended is counted once over all instances.
    pub async fn claim_end_count(&self, sid: &str) -> Result<bool, StoreError> {
        let mut set = redis::cmd("SET");
        set.arg(format!("{}ended_counted:{sid}", self.prefix))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(60_000);
        let mut connection = self.conn();
        let reply: Option<String> =
            with_deadline("claim end count", set.query_async(&mut connection)).await?;
        Ok(reply.is_some())
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
        let mut connection = self.conn();
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

    /// Reads sessions in one round trip (one `HMGET` each); `None` for each
    /// one that is absent or past its absolute deadline.
    ///
    /// The hash carries its own expiry (`exp`), so no `PTTL` is needed: one
    /// command per session, not two, on every authenticated request and
    /// upgrade. Sessions stored by an older version, without `exp`,
    /// cost a second round trip for their TTL until their next refresh.
    async fn fetch(
        &self,
        sids: &[String],
        now_ms: i64,
    ) -> Result<Vec<Option<StoredSession>>, StoreError> {
        if sids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for sid in sids {
            pipe.cmd("HMGET")
                .arg(self.session_key(sid))
                .arg(&FIELDS[..]);
        }
        let mut connection = self.conn();
        let replies: Vec<Value> =
            with_deadline("read sessions", pipe.query_async(&mut connection)).await?;
        if replies.len() != sids.len() {
            return Err(StoreError::Corrupt(format!(
                "expected {} replies from Redis, got {}",
                sids.len(),
                replies.len()
            )));
        }
        let mut sessions = Vec::with_capacity(sids.len());
        let mut untimed = Vec::new();
        for (i, reply) in replies.iter().enumerate() {
            sessions.push(match parse_session(reply, now_ms)? {
                Record::Gone => None,
                Record::Live(session) => Some(session),
                Record::LacksExpiry(session) => {
                    untimed.push(i);
                    Some(session)
                }
            });
        }
        if !untimed.is_empty() {
            let mut pipe = redis::pipe();
            for &i in &untimed {
                pipe.cmd("PTTL").arg(self.session_key(&sids[i]));
            }
            let ttls: Vec<Value> =
                with_deadline("read session TTLs", pipe.query_async(&mut connection)).await?;
            for (&i, ttl) in untimed.iter().zip(&ttls) {
                if let Some(session) = sessions[i].take() {
                    sessions[i] = with_ttl(session, ttl, now_ms)?;
                }
            }
        }
        Ok(sessions)
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
        invocation.key(self.sessions_index_key());
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
            .arg(sid)
            .arg(client_field(new.client_ip).unwrap_or_default())
            .arg(client_field(new.user_agent).unwrap_or_default());
        let mut connection = self.conn();
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

    async fn delete(&self, sid: &str, reason: &str) -> Result<bool, StoreError> {
        let keys = [
            self.session_key(sid),
            self.sessions_index_key(),
            self.ended_key(sid),
        ];
        let args = [
            self.prefix.to_string(),
            sid.to_owned(),
            reason.to_owned(),
            TOMBSTONE_TTL_MS.to_string(),
        ];
        let script = (&self.scripts.delete, DELETE_LUA);
        let existed: i64 = self
            .run_delete("delete session", script, &keys, &args)
            .await?;
        Ok(existed == 1)
    }

    async fn list_user_sessions(
        &self,
        user_id: Uuid,
        now_ms: i64,
    ) -> Result<Vec<(String, StoredSession)>, StoreError> {
        listing::list_user_sessions(self, user_id, now_ms).await
    }

    async fn delete_user_sessions(
        &self,
        user_id: Uuid,
        reason: &str,
    ) -> Result<Vec<String>, StoreError> {
        let keys = [self.user_index_key(user_id), self.sessions_index_key()];
        let args = [
            self.prefix.to_string(),
            user_id.to_string(),
            reason.to_owned(),
            TOMBSTONE_TTL_MS.to_string(),
        ];
        let script = (&self.scripts.delete_user, DELETE_USER_LUA);
        self.run_delete("delete user sessions", script, &keys, &args)
            .await
    }

    async fn list_sessions(
        &self,
        user_id: Option<Uuid>,
        offset: usize,
        limit: usize,
        now_ms: i64,
    ) -> Result<SessionPage, StoreError> {
        listing::list_sessions(self, user_id, offset, limit, now_ms).await
    }

    async fn ended_reason(&self, sid: &str) -> Result<Option<String>, StoreError> {
        let mut get = redis::cmd("GET");
        get.arg(self.ended_key(sid));
        let mut connection = self.conn();
        with_deadline("read tombstone", get.query_async(&mut connection)).await
    }

    async fn claim_ended(&self, sid: &str, reason: &str) -> Result<bool, StoreError> {
        let mut set = redis::cmd("SET");
        set.arg(self.ended_key(sid))
            .arg(reason)
            .arg("NX")
            .arg("PX")
            .arg(TOMBSTONE_TTL_MS);
        let mut connection = self.conn();
        let written: Option<String> =
            with_deadline("claim tombstone", set.query_async(&mut connection)).await?;
        Ok(written.is_some())
    }

    async fn existing(&self, sids: &[String], now_ms: i64) -> Result<Vec<bool>, StoreError> {
        listing::existing(self, sids, now_ms).await
    }

    async fn record_sockets(
        &self,
        instance: &str,
        counts: &HashMap<String, usize>,
        ttl_ms: i64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        census::record_sockets(self, instance, counts, ttl_ms, now_ms).await
    }

    async fn socket_counts(
        &self,
        sids: &[String],
        now_ms: i64,
        stale_after_ms: i64,
    ) -> Result<HashMap<String, usize>, StoreError> {
        census::socket_counts(self, sids, now_ms, stale_after_ms).await
    }

    async fn live_instances(
        &self,
        now_ms: i64,
        stale_after_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        census::live_instances(self, now_ms, stale_after_ms).await
    }

    async fn socket_count_on(
        &self,
        instances: &[String],
        key: &str,
        _now_ms: i64,
    ) -> Result<usize, StoreError> {
        census::socket_count_on(self, instances, key).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut connection = self.conn();
        let _pong: String =
            with_deadline("ping", redis::cmd("PING").query_async(&mut connection)).await?;
        Ok(())
    }
}

/// An auto-reconnecting connection's timeouts and retries (see above).
fn manager_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CONNECTION_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
        .set_number_of_retries(RECONNECT_RETRIES)
        .set_max_delay(Duration::from_millis(500))
}

/// Runs one Redis operation under [`OPERATION_DEADLINE`], turning every
/// failure into [`StoreError::Unavailable`] with what was being done.
async fn with_deadline<T>(
    what: &'static str,
    operation: impl Future<Output = RedisResult<T>>,
) -> Result<T, StoreError> {
    deadline(what, operation)
        .await?
        .map_err(|e| unavailable(what, e))
}

/// Runs one Redis operation under [`OPERATION_DEADLINE`], leaving Redis's
/// own answer (success or error reply) to the caller.
async fn deadline<T>(
    what: &'static str,
    operation: impl Future<Output = RedisResult<T>>,
) -> Result<RedisResult<T>, StoreError> {
    tokio::time::timeout(OPERATION_DEADLINE, operation)
        .await
        .map_err(|_elapsed| {
            StoreError::Unavailable(anyhow!(
                "Redis: {what}: no answer within {OPERATION_DEADLINE:?}"
            ))
        })
}

fn unavailable(what: &'static str, e: RedisError) -> StoreError {
    StoreError::Unavailable(anyhow::Error::new(e).context(format!("Redis: {what}")))
}
