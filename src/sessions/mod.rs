//! Server-side sessions: storage backends, the actix-session adapter, and the
//! event bus that carries "this session ended" and "this user changed" to
//! every live socket, on this instance and every other one.
//!
//! Sessions have two names. The cookie carries a 64-character random *key*,
//! the only credential. Everything else (Redis keys, logs, the API) uses the
//! *public id* `sid` = first 32 hex digits of SHA-256(key): one-way, so a Redis
//! dump or an admin screen never yields a usable cookie.

pub mod backend;
pub mod bus;
pub mod client;
pub mod routes;
mod store;

use std::time::Duration;

use sha2::{Digest, Sha256};
use uuid::Uuid;

pub use bus::{EndReason, Event, EventBus};
pub use store::SessionStore;

use backend::{MemoryBackend, RedisBackend, SessionBackend, StoreError, StoredSession};
use serde::Serialize;

/// Keys the adapter adds to the state it hands to actix-session on load, so
/// handlers can read the session's public facts. Never stored.
pub(crate) mod state_keys {
    pub const SID: &str = "tether.sid";
    pub const CREATED_AT: &str = "tether.created_at";
    pub const EXPIRES_AT: &str = "tether.expires_at";
    pub const ABSOLUTE_EXPIRES_AT: &str = "tether.absolute_expires_at";
    pub const PREFIX: &str = "tether.";
    /// Written by actix-identity on login.
    pub const IDENTITY_USER_ID: &str = "actix_identity.user_id";
    /// Set by the login handler for the store to record with a new session;
    /// lifted out of the state, never stored in it.
    pub const CLIENT_IP: &str = "tether-meta.client_ip";
    pub const USER_AGENT: &str = "tether-meta.user_agent";
}

/// The public id of the session whose cookie key is `key`.
pub fn public_id(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    hex::encode(&digest[..16])
}

/// See [`Sessions::touch_interval`].
pub const TOUCH_INTERVAL: Duration = Duration::from_secs(5);

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The store in use, chosen once at start from `REDIS_URL`.
#[derive(Clone)]
pub enum AnyBackend {
    Memory(MemoryBackend),
    Redis(RedisBackend),
}

/// Forwards each operation to whichever backend is configured.
macro_rules! dispatch {
    ($self:expr, $b:ident => $call:expr) => {
        match &$self.backend {
            AnyBackend::Memory($b) => $call.await,
            AnyBackend::Redis($b) => $call.await,
        }
    };
}

/// The session service: what handlers, sockets and the CLI do with sessions.
#[derive(Clone)]
pub struct Sessions {
    backend: AnyBackend,
    pub idle: Duration,
    pub absolute: Duration,
    pub bus: EventBus,
}

impl Sessions {
    pub fn new(backend: AnyBackend, idle: Duration, absolute: Duration, bus: EventBus) -> Self {
        Self {
            backend,
            idle,
            absolute,
            bus,
        }
    }

    /// A clone for one HTTP worker thread: on Redis, its operations use a
    /// connection of that thread's own (see [`RedisBackend::for_worker`]).
    pub fn for_worker(&self) -> Sessions {
        let backend = match &self.backend {
            AnyBackend::Redis(b) => AnyBackend::Redis(b.for_worker()),
            AnyBackend::Memory(b) => AnyBackend::Memory(b.clone()),
        };
        Sessions {
            backend,
            ..self.clone()
        }
    }

    pub fn idle_ms(&self) -> i64 {
        self.idle.as_millis() as i64
    }

    /// Activity is written to the store at most this often (5 s, or a quarter
    /// of the idle timeout if shorter): enough that an active client never
    /// lets the session lapse, rare enough that a request costs one store
    /// round trip, not two.
    pub fn touch_interval(&self) -> Duration {
        TOUCH_INTERVAL.min(self.idle / 4)
    }

    pub async fn load(&self, sid: &str) -> Result<Option<StoredSession>, StoreError> {
        let now = now_ms();
        dispatch!(self, b => b.load(sid, now))
    }

    /// Records activity: extends the idle deadline. `None` if the session is gone.
    pub async fn touch(&self, sid: &str) -> Result<Option<i64>, StoreError> {
        let (idle, now) = (self.idle_ms(), now_ms());
        dispatch!(self, b => b.touch(sid, idle, now))
    }

    /// Ends a session: deletes it, then tells every socket of it, everywhere.
    pub async fn revoke(&self, sid: &str, reason: EndReason) -> Result<bool, StoreError> {
        let existed = dispatch!(self, b => b.delete(sid, reason.as_str()))?;
        self.bus
            .publish(Event::SessionEnded {
                sid: sid.to_owned(),
                reason,
            })
            .await;
        Ok(existed)
    }

    /// Ends every session of a user (disabled, password changed, admin).
    pub async fn revoke_user(&self, user_id: Uuid, reason: EndReason) -> Result<usize, StoreError> {
        let sids = dispatch!(self, b => b.delete_user_sessions(user_id, reason.as_str()))?;
        for sid in &sids {
            self.bus
                .publish(Event::SessionEnded {
                    sid: sid.clone(),
                    reason,
                })
                .await;
        }
        Ok(sids.len())
    }

    /// Ends every session of a user except `keep` (the caller's own, when a
    /// user changes their password or signs out everywhere else).
    pub async fn revoke_user_except(
        &self,
        user_id: Uuid,
        keep: Option<&str>,
        reason: EndReason,
    ) -> Result<usize, StoreError> {
        let mut ended = 0;
        for (sid, _) in self.list_user_sessions(user_id).await? {
            if Some(sid.as_str()) != keep && self.revoke(&sid, reason).await? {
                ended += 1;
            }
        }
        Ok(ended)
    }

    pub async fn list_user_sessions(
        &self,
        user_id: Uuid,
    ) -> Result<Vec<(String, StoredSession)>, StoreError> {
        let now = now_ms();
        dispatch!(self, b => b.list_user_sessions(user_id, now))
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        dispatch!(self, b => b.ping())
    }

    fn backend(&self) -> &AnyBackend {
        &self.backend
    }
}

/// A session as listed to its user, an admin or an operator.
#[derive(Debug, Clone, Serialize)]
pub struct SessionSummary {
    pub id: String,
    pub user_id: Option<Uuid>,
    pub created_at: String,
    pub last_seen_at: String,
    /// When it ends if nothing touches it: min(idle deadline, absolute deadline).
    pub expires_at: String,
    pub absolute_expires_at: String,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    /// Open sockets right now, on every instance.
    pub sockets: usize,
}

impl Sessions {
    /// Adds socket counts from the census to stored sessions.
    async fn summarize(
        &self,
        stored: Vec<(String, StoredSession)>,
    ) -> Result<Vec<SessionSummary>, StoreError> {
        use crate::auth::routes::rfc3339;
        let sids: Vec<String> = stored.iter().map(|(sid, _)| sid.clone()).collect();
        let (now, stale) = (now_ms(), crate::ws::census::STALE_AFTER.as_millis() as i64);
        let counts = dispatch!(self, b => b.socket_counts(&sids, now, stale))?;
        Ok(stored
            .into_iter()
            .map(|(sid, s)| SessionSummary {
                sockets: counts.get(&sid).copied().unwrap_or(0),
                id: sid,
                user_id: s.user_id,
                created_at: rfc3339(s.created_at_ms),
                last_seen_at: rfc3339(s.last_seen_ms),
                expires_at: rfc3339(s.expires_at_ms),
                absolute_expires_at: rfc3339(s.absolute_deadline_ms),
                client_ip: s.client_ip,
                user_agent: s.user_agent,
            })
            .collect())
    }

    /// A user's live sessions, newest first.
    pub async fn list_user(&self, user_id: Uuid) -> Result<Vec<SessionSummary>, StoreError> {
        let mut stored = self.list_user_sessions(user_id).await?;
        stored.sort_by_key(|(_, s)| std::cmp::Reverse(s.created_at_ms));
        self.summarize(stored).await
    }

    /// One page of live sessions (all, or one user's), newest first, and the total.
    pub async fn list_page(
        &self,
        user_id: Option<Uuid>,
        offset: usize,
        limit: usize,
    ) -> Result<(usize, Vec<SessionSummary>), StoreError> {
        let now = now_ms();
        let page = dispatch!(self, b => b.list_sessions(user_id, offset, limit, now))?;
        Ok((page.total, self.summarize(page.sessions).await?))
    }

    /// Which of `sids` still exist (for the sweep).
    pub async fn existing(&self, sids: &[String]) -> Result<Vec<bool>, StoreError> {
        let now = now_ms();
        dispatch!(self, b => b.existing(sids, now))
    }

    /// Why a recently deleted session ended, if this server (or the CLI) ended it.
    pub async fn ended_reason(&self, sid: &str) -> Result<Option<EndReason>, StoreError> {
        let raw = dispatch!(self, b => b.ended_reason(sid))?;
        Ok(raw.as_deref().and_then(EndReason::parse))
    }

    /// Publishes this instance's open sockets per session.
    pub async fn record_census(
        &self,
        instance: &str,
        counts: &std::collections::HashMap<String, usize>,
    ) -> Result<(), StoreError> {
        let ttl = (crate::ws::census::STALE_AFTER.as_millis() as i64) * 2;
        let now = now_ms();
        dispatch!(self, b => b.record_sockets(instance, counts, ttl, now))
    }

    /// The Redis connection and key prefix, when sessions live in Redis.
    pub fn redis_connection(&self) -> Option<(redis::aio::ConnectionManager, String)> {
        match &self.backend {
            AnyBackend::Redis(b) => {
                let (conn, prefix) = b.connection();
                Some((conn, prefix.to_owned()))
            }
            AnyBackend::Memory(_) => None,
        }
    }

    /// Redis only: turns keyspace notifications on so raw deletes reach sockets.
    pub async fn enable_keyspace_events(&self) -> bool {
        match &self.backend {
            AnyBackend::Redis(b) => b.enable_keyspace_events().await.unwrap_or_else(|e| {
                log::warn!("event=keyspace_events_unavailable error={e}");
                false
            }),
            AnyBackend::Memory(_) => false,
        }
    }
}
