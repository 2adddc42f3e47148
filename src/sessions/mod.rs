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
mod store;

use std::time::Duration;

use sha2::{Digest, Sha256};
use uuid::Uuid;

pub use bus::{EndReason, Event, EventBus};
pub use store::SessionStore;

use backend::{MemoryBackend, RedisBackend, SessionBackend, StoreError, StoredSession};

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
}

/// The public id of the session whose cookie key is `key`.
pub fn public_id(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    hex::encode(&digest[..16])
}

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

    pub fn idle_ms(&self) -> i64 {
        self.idle.as_millis() as i64
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
