//! Session storage backends: Redis (shared, durable) and in-process (single
//! instance, for `cargo run` on a bare machine). Both implement
//! [`SessionBackend`] and pass one conformance suite (`tests/api/session_store/`).
//!
//! Backends are addressed by the *public* session id (`sid`), never by the
//! cookie's secret key: the key never reaches Redis.
//!
//! Besides the sessions themselves, a store keeps what revocation and the
//! session admin screens need: an index of all sessions and one per user
//! (listing without scanning), tombstones saying why a session was deleted,
//! and a census of the sockets each instance has open per session.

use std::{collections::HashMap, future::Future};

use uuid::Uuid;

pub mod memory;
pub mod redis;

pub use memory::MemoryBackend;
pub use redis::RedisBackend;

/// actix-session's state map (key → JSON-encoded value).
pub type SessionState = HashMap<String, String>;

/// The longest client IP or user agent a backend keeps, in characters;
/// longer values are cut, so a client cannot make its session record large.
pub const MAX_CLIENT_FIELD_CHARS: usize = 256;

/// How long the reason a session was deleted stays readable
/// ([`SessionBackend::ended_reason`]), in ms.
pub const TOMBSTONE_TTL_MS: i64 = 60_000;

/// A session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    pub state: SessionState,
    pub user_id: Option<Uuid>,
    pub created_at_ms: i64,
    /// Never moves: the session dies here whatever the activity.
    pub absolute_deadline_ms: i64,
    /// When the session dies if nothing touches it: min(last activity + idle, absolute).
    pub expires_at_ms: i64,
    /// The last activity (creation, touch or state update).
    pub last_seen_ms: i64,
    /// As seen when the session was created, at most [`MAX_CLIENT_FIELD_CHARS`].
    pub client_ip: Option<String>,
    /// As sent when the session was created, at most [`MAX_CLIENT_FIELD_CHARS`].
    pub user_agent: Option<String>,
}

/// What is known when a session is first stored.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub state: SessionState,
    pub user_id: Option<Uuid>,
    pub created_at_ms: i64,
    pub absolute_deadline_ms: i64,
    /// Cut to [`MAX_CLIENT_FIELD_CHARS`] by the backend.
    pub client_ip: Option<String>,
    /// Cut to [`MAX_CLIENT_FIELD_CHARS`] by the backend.
    pub user_agent: Option<String>,
}

/// One page of a session listing, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionPage {
    /// How many live sessions match, over all pages.
    pub total: usize,
    /// (sid, session), by absolute deadline, latest first.
    pub sessions: Vec<(String, StoredSession)>,
}

/// `value` cut to [`MAX_CLIENT_FIELD_CHARS`] characters (not bytes, so a
/// multi-byte character is never split); an empty value is no value.
pub fn client_field(value: Option<String>) -> Option<String> {
    let value = value?;
    if value.is_empty() {
        return None;
    }
    match value.char_indices().nth(MAX_CLIENT_FIELD_CHARS) {
        Some((cut, _)) => Some(value[..cut].to_owned()),
        None => Some(value),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store did not answer (connection refused, timeout): fail closed.
    #[error("session store unavailable: {0}")]
    Unavailable(#[source] anyhow::Error),
    /// A stored record could not be read back.
    #[error("corrupt session record: {0}")]
    Corrupt(String),
}

/// Operations every session store offers. `now_ms` is passed in (Unix ms) so
/// every instance computes deadlines the same way and tests can reason about them.
pub trait SessionBackend: Send + Sync + 'static {
    /// Stores a new session; its TTL is min(idle, absolute deadline − now).
    fn create(
        &self,
        sid: &str,
        new: NewSession,
        idle_ttl_ms: i64,
        now_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// `None` when absent, expired, or past its absolute deadline.
    fn load(
        &self,
        sid: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<Option<StoredSession>, StoreError>> + Send;
    /// Replaces the state and extends the idle TTL. Returns `false`, writing
    /// nothing, when the session no longer exists: a deleted session stays deleted.
    fn update_state(
        &self,
        sid: &str,
        state: SessionState,
        idle_ttl_ms: i64,
        now_ms: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Extends the idle TTL (clamped to the absolute deadline). Returns the new
    /// `expires_at_ms`, or `None` (writing nothing) when the session is gone.
    fn touch(
        &self,
        sid: &str,
        idle_ttl_ms: i64,
        now_ms: i64,
    ) -> impl Future<Output = Result<Option<i64>, StoreError>> + Send;
    /// Deletes the session; `true` if it existed. A session that existed
    /// leaves a tombstone holding `reason` for [`TOMBSTONE_TTL_MS`].
    fn delete(
        &self,
        sid: &str,
        reason: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// The live sessions of a user (sid, session), without scanning the keyspace.
    fn list_user_sessions(
        &self,
        user_id: Uuid,
        now_ms: i64,
    ) -> impl Future<Output = Result<Vec<(String, StoredSession)>, StoreError>> + Send;
    /// Deletes every session of a user; returns the sids deleted, each of
    /// which leaves a tombstone holding `reason`.
    fn delete_user_sessions(
        &self,
        user_id: Uuid,
        reason: &str,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
    /// One page of live sessions, every user's or one user's, newest first
    /// (latest absolute deadline first), without scanning the keyspace.
    /// Index entries of sessions that are gone are dropped on the way.
    fn list_sessions(
        &self,
        user_id: Option<Uuid>,
        offset: usize,
        limit: usize,
        now_ms: i64,
    ) -> impl Future<Output = Result<SessionPage, StoreError>> + Send;
    /// Why a session was deleted, for [`TOMBSTONE_TTL_MS`] after it was;
    /// `None` if it was not deleted through this store (expired, raw `DEL`).
    fn ended_reason(
        &self,
        sid: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    /// Writes a tombstone holding `reason` unless the sid already has one;
    /// `true` if this call wrote it. For a session that vanished without
    /// one (expired, raw `DEL`): of all the instances that notice, the one
    /// whose claim wins records it in the audit trail.
    fn claim_ended(
        &self,
        sid: &str,
        reason: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// For each sid, whether its session still exists and is before its
    /// absolute deadline; batched, for sweeps over every live socket.
    fn existing(
        &self,
        sids: &[String],
        now_ms: i64,
    ) -> impl Future<Output = Result<Vec<bool>, StoreError>> + Send;
    /// Replaces this instance's socket census (sid → open sockets), which
    /// lapses after `ttl_ms` unless recorded again.
    fn record_sockets(
        &self,
        instance: &str,
        counts: &HashMap<String, usize>,
        ttl_ms: i64,
        now_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Open sockets per sid, summed over every instance that recorded its
    /// census within `stale_after_ms`; staler instances are forgotten. A sid
    /// with no socket may be absent or 0.
    fn socket_counts(
        &self,
        sids: &[String],
        now_ms: i64,
        stale_after_ms: i64,
    ) -> impl Future<Output = Result<HashMap<String, usize>, StoreError>> + Send;
    /// The instances that recorded a census within `stale_after_ms`
    /// (forgetting the others).
    fn live_instances(
        &self,
        now_ms: i64,
        stale_after_ms: i64,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
    /// `key`'s count summed over the censuses of `instances` (lapsed ones
    /// count 0): one round trip, for a check on every upgrade.
    fn socket_count_on(
        &self,
        instances: &[String],
        key: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;
    /// Answers when the store is reachable.
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
}
