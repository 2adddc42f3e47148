//! Redis session store, shared by every instance of the server.
//!
//! # Key layout
//!
//! Every key starts with the configured prefix (e.g. `tether:`); times are
//! Unix milliseconds.
//!
//! | Key | Type | Contents | Expiry |
//! |-----|------|----------|--------|
//! | `{prefix}session:{<sid>}` | HASH | `state`: JSON object of the session state map; `uid`: user UUID, empty when anonymous; `created`; `abs`: absolute deadline; `seen`: last activity; `exp`: when the key expires, as its TTL was last set; `ip`: client IP, `ua`: user agent (each ≤ 256 characters, empty when unknown) | `PEXPIRE` min(idle TTL, `abs` − now), renewed on activity |
//! | `{prefix}sessions` | ZSET | every sid, scored by absolute deadline | `PEXPIRE` latest deadline − now |
//! | `{prefix}user:{<uid>}:sessions` | ZSET | the user's sids, scored by absolute deadline | `PEXPIRE` latest deadline − now |
//! | `{prefix}ended:{<sid>}` | STRING | why a deleted session ended (`logout`, `admin`, …) | 60 s |
//! | `{prefix}{census}:{instance}` | HASH | sid → sockets that instance has open for it | `PEXPIRE` census TTL, replaced on every record |
//! | `{prefix}{census}:instances` | ZSET | instance ids, scored by when each last recorded its census | `PEXPIRE` census TTL, renewed on every record |
//!
//! `{<sid>}` and `{<uid>}` are literal braces around the id: a Redis
//! Cluster hash tag, so a session's hash and tombstone share a hash slot,
//! and every census key shares one. The same layout is used on every
//! topology. Each script touches one slot; what spans slots (indexing a
//! session, deleting all of a user's) is a sequence of steps ordered so that
//! no interleaving loses a revoke (see [`RedisBackend::create`]).
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
//! back. A session's hash is stored before its index entries, so an entry
//! whose hash is missing is a leftover (pruned by listings), never a session
//! about to appear.
//!
//! Every connection goes to the current primary ([`crate::redis_link`]
//! follows a Sentinel failover; on a Cluster, to each key's). Session deletes (revocations) wait until
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
use redis::{FromRedisValue, RedisError, RedisResult, Script, Value};
use uuid::Uuid;

use self::record::{encode_state, parse_session, with_ttl, Record, FIELDS};
use super::{
    client_field, NewSession, SessionBackend, SessionPage, SessionState, StoreError, StoredSession,
    TOMBSTONE_TTL_MS,
};
use crate::redis_link::{PrimaryConnection, RedisLink, Timeouts};

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
    index: Script,
    refresh: Script,
    delete: Script,
    delete_user: Script,
}

const DELETE_LUA: &str = include_str!("redis/delete.lua");
const INDEX_LUA: &str = include_str!("redis/index.lua");

impl Scripts {
    fn new() -> Self {
        Self {
            create: Script::new(include_str!("redis/create.lua")),
            index: Script::new(INDEX_LUA),
            refresh: Script::new(include_str!("redis/refresh.lua")),
            delete: Script::new(DELETE_LUA),
            delete_user: Script::new(include_str!("redis/delete_user.lua")),
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
            let timeouts = Timeouts {
                response: acks.within + RESPONSE_TIMEOUT,
                ..timeouts()
            };
            (link.connection(timeouts), acks)
        });
        let backend = RedisBackend {
            connection: link.connection(timeouts()),
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
            connection: self.link.connection(timeouts()),
            ..self.clone()
        }
    }

    /// Whether this store is on a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.link.is_cluster()
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

    /// Runs `delete.lua` on one session (only if it is `only_of`'s, when
    /// given); returns whether it existed and was deleted, and its user.
    ///
    /// When replicas must acknowledge deletes, the script goes by `EVAL` in
    /// one pipeline with `WAIT`, on the deletes' own connection, to the node
    /// that holds the session: `WAIT` covers only the writes sent before it
    /// on the same connection, and a pipeline is one write on one socket, so
    /// nothing can slip between the two. Too few acknowledgements in time do
    /// not fail the delete, which has happened: they are logged as a warning.
    async fn delete_one(
        &self,
        what: &'static str,
        sid: &str,
        reason: &str,
        only_of: Option<Uuid>,
    ) -> Result<(bool, String), StoreError> {
        let keys = [self.session_key(sid), self.ended_key(sid)];
        let mut args = vec![reason.to_owned(), TOMBSTONE_TTL_MS.to_string()];
        args.extend(only_of.map(|uid| uid.to_string()));
        let Some((connection, acks)) = &self.replicated_deletes else {
            let mut invocation = self.scripts.delete.prepare_invoke();
            invocation.key(&keys[..]).arg(&args[..]);
            let mut connection = self.conn();
            let (deleted, uid): (i64, String) =
                with_deadline(what, invocation.invoke_async(&mut connection)).await?;
            return Ok((deleted == 1, uid));
        };
        let (deleted, uid): (i64, String) =
            replicated_eval(what, connection, *acks, DELETE_LUA, &keys, &args).await?;
        Ok((deleted == 1, uid))
    }

    /// Runs the one-key `script` (whose source is `source`) on `key`,
    /// waiting for replicas as deletes do (see [`RedisBackend::delete_one`])
    /// when they must.
    async fn replicated_write<T: FromRedisValue>(
        &self,
        what: &'static str,
        (script, source): (&Script, &'static str),
        key: &str,
        args: &[String],
    ) -> Result<T, StoreError> {
        let keys = [key.to_owned()];
        match &self.replicated_deletes {
            Some((connection, acks)) => {
                replicated_eval(what, connection, *acks, source, &keys, args).await
            }
            None => {
                let mut invocation = script.key(key);
                invocation.arg(args);
                let mut connection = self.conn();
                with_deadline(what, invocation.invoke_async(&mut connection)).await
            }
        }
    }

    /// The key of a session's hash (the sid is its Cluster hash tag).
    pub fn session_key(&self, sid: &str) -> String {
        format!("{}session:{{{sid}}}", self.prefix)
    }

    /// The key of a user's session index (the uid is its hash tag).
    pub fn user_index_key(&self, user_id: Uuid) -> String {
        format!("{}user:{{{user_id}}}:sessions", self.prefix)
    }

    /// The key of the index of every session.
    pub fn sessions_index_key(&self) -> String {
        format!("{}sessions", self.prefix)
    }

    /// The key of a deleted session's tombstone, in its session's hash slot.
    pub fn ended_key(&self, sid: &str) -> String {
        format!("{}ended:{{{sid}}}", self.prefix)
    }

    /// Adds `sid` (stored already) to the global index and its user's, in
    /// one round trip (on a Cluster, one per index's node). When replicas
    /// must acknowledge deletes, they must acknowledge the user's index
    /// entry too: a failover that lost it would leave a live session that
    /// the next "delete every session of this user" cannot find.
    async fn index(
        &self,
        sid: &str,
        user_id: Option<Uuid>,
        absolute_deadline_ms: i64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let what = "index session";
        let mut global = self.scripts.index.key(self.sessions_index_key());
        global.arg(sid).arg(absolute_deadline_ms).arg(now_ms);
        let mut on_global = self.conn();
        let global = global.invoke_async::<i64>(&mut on_global);
        let Some(user_id) = user_id else {
            with_deadline(what, global).await?;
            return Ok(());
        };
        let index = self.user_index_key(user_id);
        let args = [
            sid.to_owned(),
            absolute_deadline_ms.to_string(),
            now_ms.to_string(),
        ];
        let own = self.replicated_write(what, (&self.scripts.index, INDEX_LUA), &index, &args);
        let (_, _): (i64, i64) = tokio::try_join!(with_deadline(what, global), own)?;
        Ok(())
    }

    /// Claims the counting of a session's end for this instance: every
    /// instance hears the same keyspace notice, and the first to set
    /// `{prefix}ended_counted:{<sid>}` (kept 60 s) counts it, so a session
    /// ended is counted once over all instances.
    pub async fn claim_end_count(&self, sid: &str) -> Result<bool, StoreError> {
        let mut set = redis::cmd("SET");
        set.arg(format!("{}ended_counted:{{{sid}}}", self.prefix))
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
        let keys: Vec<String> = sids.iter().map(|sid| self.session_key(sid)).collect();
        let connection = self.conn();
        let replies = with_deadline(
            "read sessions",
            connection.per_key(&keys, |pipe, key| {
                pipe.cmd("HMGET").arg(key).arg(&FIELDS[..]);
            }),
        )
        .await?;
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
            let untimed_keys: Vec<String> = untimed.iter().map(|&i| keys[i].clone()).collect();
            let ttls = with_deadline(
                "read session TTLs",
                connection.per_key(&untimed_keys, |pipe, key| {
                    pipe.cmd("PTTL").arg(key);
                }),
            )
            .await?;
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
        // The hash first, then its index entries: an entry therefore never
        // names a session that does not exist yet, so a listing that finds
        // one without its hash may drop it, and "delete every session of
        // this user" (which takes the user's index, then deletes what it
        // names) either finds this session or runs before its entry exists,
        // when the session counts as created after that revoke. No
        // interleaving leaves a live session out of its user's index.
        let mut invocation = self.scripts.create.key(self.session_key(sid));
        invocation
            .arg(encode_state(&new.state)?)
            .arg(new.user_id.map(|u| u.to_string()).unwrap_or_default())
            .arg(new.created_at_ms)
            .arg(new.absolute_deadline_ms)
            .arg(now_ms)
            .arg(idle_ttl_ms)
            .arg(client_field(new.client_ip).unwrap_or_default())
            .arg(client_field(new.user_agent).unwrap_or_default());
        let mut connection = self.conn();
        let stored: i64 =
            with_deadline("create session", invocation.invoke_async(&mut connection)).await?;
        if stored == 0 {
            // Dead on arrival (its deadline passed): nothing to index.
            return Ok(());
        }
        self.index(sid, new.user_id, new.absolute_deadline_ms, now_ms)
            .await
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
        let (existed, uid) = self.delete_one("delete session", sid, reason, None).await?;
        // The index entries go after the session (a listing would drop them
        // anyway once it finds the hash gone).
        let mut indexes = vec![self.sessions_index_key()];
        if let Ok(user_id) = Uuid::parse_str(&uid) {
            indexes.push(self.user_index_key(user_id));
        }
        listing::unindex(self, &indexes, &[sid.to_owned()]).await?;
        Ok(existed)
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
        let what = "delete user sessions";
        let taken = self.scripts.delete_user.key(self.user_index_key(user_id));
        let mut connection = self.conn();
        let sids: Vec<String> = with_deadline(what, taken.invoke_async(&mut connection)).await?;
        let deletes = sids
            .iter()
            .map(|sid| self.delete_one(what, sid, reason, Some(user_id)));
        let outcomes = futures_util::future::try_join_all(deletes).await?;
        let deleted: Vec<String> = sids
            .iter()
            .zip(&outcomes)
            .filter(|(_, (deleted, _))| *deleted)
            .map(|(sid, _)| sid.clone())
            .collect();
        // Gone already, or just deleted: either way out of the global index.
        // (A hash with another uid cannot come from this store; leave it.)
        let unindexed: Vec<String> = sids
            .into_iter()
            .zip(&outcomes)
            .filter(|(_, (_, uid))| uid.is_empty() || *uid == user_id.to_string())
            .map(|(sid, _)| sid)
            .collect();
        listing::unindex(self, &[self.sessions_index_key()], &unindexed).await?;
        Ok(deleted)
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

/// Runs script `source` by `EVAL` in one pipeline with `WAIT`, on
/// `connection`, to the node holding `keys[0]`: `WAIT` covers only the
/// writes sent before it on the same connection, and a pipeline is one write
/// on one socket, so nothing can slip between the two. Too few
/// acknowledgements in time do not fail the write, which has happened: they
/// are logged as a warning.
async fn replicated_eval<T: FromRedisValue>(
    what: &'static str,
    connection: &PrimaryConnection,
    acks: ReplicaAck,
    source: &'static str,
    keys: &[String],
    args: &[String],
) -> Result<T, StoreError> {
    let wait_ms = acks.within.as_millis() as u64;
    let mut pipe = redis::pipe();
    pipe.cmd("EVAL")
        .arg(source)
        .arg(keys.len())
        .arg(keys)
        .arg(args);
    pipe.cmd("WAIT").arg(acks.replicas).arg(wait_ms);
    let replied = tokio::time::timeout(
        acks.within + OPERATION_DEADLINE,
        connection.pipeline_at(&keys[0], &pipe),
    )
    .await
    .map_err(|_elapsed| StoreError::Unavailable(anyhow!("Redis: {what}: no answer in time")))?;
    let replies = replied.map_err(|e| unavailable(what, e))?;
    let (result, acked): (T, usize) = FromRedisValue::from_redis_value(Value::Array(replies))
        .map_err(|e| unavailable(what, e.into()))?;
    if acked < acks.replicas {
        let event = if what.starts_with("delete") {
            "delete_not_replicated"
        } else {
            "write_not_replicated"
        };
        log::warn!(
            "event={event} what=\"{what}\" acked={acked} wanted={} \
             waited_ms={wait_ms} note=\"answered anyway; losing the primary now could undo it\"",
            acks.replicas
        );
    }
    Ok(result)
}

/// A store connection's timeouts and retries (see above).
fn timeouts() -> Timeouts {
    Timeouts {
        connect: CONNECTION_TIMEOUT,
        response: RESPONSE_TIMEOUT,
        retries: Some(RECONNECT_RETRIES),
    }
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
