//! Session storage backends: Redis (shared, durable) and in-process (single
//! instance, for `cargo run` on a bare machine). Both implement
//! [`SessionBackend`] and pass one conformance suite (`tests/api/session_store.rs`).
//!
//! Backends are addressed by the *public* session id (`sid`), never by the
//! cookie's secret key: the key never reaches Redis.
//!
//! INTERFACE STUB — being implemented; signatures are the contract.

use std::{collections::HashMap, future::Future};

use uuid::Uuid;

pub mod memory;
pub mod redis;

pub use memory::MemoryBackend;
pub use redis::RedisBackend;

/// actix-session's state map (key → JSON-encoded value).
pub type SessionState = HashMap<String, String>;

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
}

/// What is known when a session is first stored.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub state: SessionState,
    pub user_id: Option<Uuid>,
    pub created_at_ms: i64,
    pub absolute_deadline_ms: i64,
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
    /// Deletes the session; `true` if it existed.
    fn delete(&self, sid: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// The live sessions of a user (sid, session), without scanning the keyspace.
    fn list_user_sessions(
        &self,
        user_id: Uuid,
        now_ms: i64,
    ) -> impl Future<Output = Result<Vec<(String, StoredSession)>, StoreError>> + Send;
    /// Deletes every session of a user; returns the sids deleted.
    fn delete_user_sessions(
        &self,
        user_id: Uuid,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
    /// Answers when the store is reachable.
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
}
