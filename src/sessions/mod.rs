//! Server-side sessions: the storage backends, the actix-session adapter,
//! the typed session a request carries, and the session service that
//! handlers, sockets and the CLI share.
//!
//! Sessions have two names. The cookie carries a 64-character random *key*,
//! the only credential. Everything else (Redis keys, logs, the API) uses the
//! *public id* `sid` = first 32 hex digits of SHA-256(key): one-way, so a Redis
//! dump or an admin screen never yields a usable cookie.
//!
//! Ending a session deletes it and announces [`Event::SessionEnded`] on the
//! event bus; a session that vanishes inside Redis (raw `DEL`, expiry) is
//! reported by the Redis backend's keyspace listener and announced the same way.

pub mod backend;
pub mod client;
mod current;
mod listing;
mod store;

use std::{sync::Arc, time::Duration};

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use uuid::Uuid;

pub use current::{ClientMeta, CurrentSession, ProviderLink, SessionJson};
pub use listing::SessionSummary;
pub use store::SessionStore;

use crate::{
    audit::{Actor, Audit, AuditEvent, RevokedBy},
    domain::{Disappearance, EndReason},
    events::{Event, EventBus},
    metrics::Metrics,
    time::now_ms,
};
use backend::{
    redis::KeyspaceNotice, MemoryBackend, RedisBackend, SessionBackend, StoreError, StoredSession,
};

/// The public id of the session whose cookie key is `key`.
pub fn public_id(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    hex::encode(&digest[..16])
}

/// See [`Sessions::touch_interval`].
pub const TOUCH_INTERVAL: Duration = Duration::from_secs(5);

/// An instance whose socket census is older than this is no longer counted
/// (it has died); live instances rewrite theirs well within it.
pub const CENSUS_STALE_AFTER: Duration = Duration::from_secs(10);

/// The census entry holding a user's socket count (beside the per-session
/// entries, which are sids: hex, never `u:`).
pub fn census_user_key(user_id: Uuid) -> String {
    format!("u:{user_id}")
}

/// The store in use, chosen once at start from `REDIS_URL`.
#[derive(Clone)]
pub enum AnyBackend {
    Memory(MemoryBackend),
    Redis(RedisBackend),
}

/// Runs one [`SessionBackend`] operation on whichever backend is configured:
/// `on_backend!(any_backend, b => b.load(sid, now))`.
macro_rules! on_backend {
    ($backend:expr, $b:ident => $call:expr) => {
        match $backend {
            $crate::sessions::AnyBackend::Memory($b) => $call.await,
            $crate::sessions::AnyBackend::Redis($b) => $call.await,
        }
    };
}
pub(crate) use on_backend;

/// The session service: what handlers, sockets and the CLI do with sessions.
#[derive(Clone)]
pub struct Sessions {
    backend: AnyBackend,
    pub idle: Duration,
    pub absolute: Duration,
    pub bus: EventBus,
    /// Sessions ended are counted here (`tether_sessions_ended_total`).
    metrics: Arc<Metrics>,
    /// Where sign-ins and sessions that vanish on their own are recorded
    /// (the server's; `None` for the CLI and for conformance tests).
    audit: Option<Audit>,
}

impl Sessions {
    pub fn new(
        backend: AnyBackend,
        idle: Duration,
        absolute: Duration,
        bus: EventBus,
        metrics: Arc<Metrics>,
    ) -> Self {
        if let AnyBackend::Redis(redis) = &backend {
            if redis.is_cluster() {
                // Acknowledgements are counted against the census there.
                let redis = redis.clone();
                bus.count_instances_with(Arc::new(move || {
                    let redis = redis.clone();
                    Box::pin(async move {
                        let stale = CENSUS_STALE_AFTER.as_millis() as i64;
                        Ok(redis.live_instances(now_ms(), stale).await?)
                    })
                }));
            }
        }
        Self {
            backend,
            idle,
            absolute,
            bus,
            metrics,
            audit: None,
        }
    }

    /// Records new sign-ins and sessions that end without tether ending them
    /// (expiry, raw `DEL`) in `audit`.
    pub fn with_audit(mut self, audit: Audit) -> Self {
        self.audit = Some(audit);
        self
    }

    /// Records `event` in the audit trail, if this service has one.
    pub(crate) fn audit(&self, event: AuditEvent) {
        if let Some(audit) = &self.audit {
            audit.record(event);
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

    pub(crate) fn backend(&self) -> &AnyBackend {
        &self.backend
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
        on_backend!(&self.backend, b => b.load(sid, now))
    }

    /// Records activity: extends the idle deadline. `None` if the session is gone.
    pub async fn touch(&self, sid: &str) -> Result<Option<i64>, StoreError> {
        let (idle, now) = (self.idle_ms(), now_ms());
        on_backend!(&self.backend, b => b.touch(sid, idle, now))
    }

    /// Ends a session: deletes it, then tells every socket of it, everywhere
    /// (also when it was already gone: its sockets may not know yet).
    pub async fn revoke(&self, sid: &str, reason: EndReason) -> Result<bool, StoreError> {
        let existed = on_backend!(&self.backend, b => b.delete(sid, reason.as_str()))?;
        if existed {
            self.count_own_end(reason);
        }
        self.announce_ended(sid, reason).await;
        Ok(existed)
    }

    /// Ends every session of a user (disabled, password changed, admin).
    pub async fn revoke_user(&self, user_id: Uuid, reason: EndReason) -> Result<usize, StoreError> {
        Ok(self.revoke_user_listed(user_id, reason).await?.len())
    }

    /// As [`Sessions::revoke_user`], returning the ids of the sessions ended.
    pub async fn revoke_user_listed(
        &self,
        user_id: Uuid,
        reason: EndReason,
    ) -> Result<Vec<String>, StoreError> {
        let sids =
            on_backend!(&self.backend, b => b.delete_user_sessions(user_id, reason.as_str()))?;
        for sid in &sids {
            self.count_own_end(reason);
            self.announce_ended(sid, reason).await;
        }
        Ok(sids)
    }

    /// Ends every session of a user except `keep` (the caller's own, when a
    /// user changes their password or signs out everywhere else).
    pub async fn revoke_user_except(
        &self,
        user_id: Uuid,
        keep: Option<&str>,
        reason: EndReason,
    ) -> Result<usize, StoreError> {
        Ok(self
            .revoke_user_except_listed(user_id, keep, reason)
            .await?
            .len())
    }

    /// As [`Sessions::revoke_user_except`], returning the ids of the sessions ended.
    pub async fn revoke_user_except_listed(
        &self,
        user_id: Uuid,
        keep: Option<&str>,
        reason: EndReason,
    ) -> Result<Vec<String>, StoreError> {
        let mut ended = Vec::new();
        for (sid, _) in self.list_user_sessions(user_id).await? {
            if Some(sid.as_str()) != keep && self.revoke(&sid, reason).await? {
                ended.push(sid);
            }
        }
        Ok(ended)
    }

    /// Counts a session this process ended. In Redis every end, whoever
    /// caused it (this server, another, the CLI, `DEL`, expiry), is counted
    /// from the keyspace notice instead, once over all instances.
    pub(crate) fn count_own_end(&self, reason: EndReason) {
        if matches!(self.backend, AnyBackend::Memory(_)) {
            self.metrics.session_ended(reason);
        }
    }

    async fn announce_ended(&self, sid: &str, reason: EndReason) {
        let sid = sid.to_owned();
        self.bus.publish(Event::SessionEnded { sid, reason }).await;
    }

    pub async fn list_user_sessions(
        &self,
        user_id: Uuid,
    ) -> Result<Vec<(String, StoredSession)>, StoreError> {
        let now = now_ms();
        on_backend!(&self.backend, b => b.list_user_sessions(user_id, now))
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        on_backend!(&self.backend, b => b.ping())
    }

    /// Which of `sids` still exist (for the sweep).
    pub async fn existing(&self, sids: &[String]) -> Result<Vec<bool>, StoreError> {
        let now = now_ms();
        on_backend!(&self.backend, b => b.existing(sids, now))
    }

    /// Why a session that is gone ended: its tombstone if this server or the
    /// CLI ended it, else what `seen` implies ([`EndReason::decide`]). A
    /// store that does not answer leaves only `seen` to go by.
    ///
    /// A session gone without a tombstone ended inside the store (expiry,
    /// raw `DEL`), and every instance may notice it (keyspace notice, sweep,
    /// a socket's deadline): the first to write the tombstone records it in
    /// the audit trail, so it is recorded once cluster-wide.
    pub async fn why_ended(&self, sid: &str, seen: Disappearance) -> EndReason {
        let tombstone = match on_backend!(&self.backend, b => b.ended_reason(sid)) {
            Ok(raw) => raw.as_deref().and_then(EndReason::parse),
            Err(e) => {
                log::warn!("event=tombstone_unreadable sid={sid} error={e}");
                None
            }
        };
        if let Some(reason) = tombstone {
            return reason;
        }
        let reason = EndReason::decide(None, seen);
        if self.audit.is_some() && self.claim_ended(sid, reason).await {
            let by = match reason {
                EndReason::Expired => RevokedBy::Expiry,
                _ => RevokedBy::RedisDelete,
            };
            self.audit(AuditEvent::session_revoked(Actor::System, sid, reason, by));
        }
        reason
    }

    /// Whether this instance is the one to record how `sid` ended. A store
    /// that does not answer: yes (recorded twice rather than never).
    async fn claim_ended(&self, sid: &str, reason: EndReason) -> bool {
        on_backend!(&self.backend, b => b.claim_ended(sid, reason.as_str())).unwrap_or_else(|e| {
            log::warn!("event=tombstone_claim_failed sid={sid} error={e}");
            true
        })
    }

    /// Publishes this instance's open sockets per session.
    pub async fn record_census(
        &self,
        instance: &str,
        counts: &std::collections::HashMap<String, usize>,
    ) -> Result<(), StoreError> {
        let ttl = (CENSUS_STALE_AFTER.as_millis() as i64) * 2;
        let now = now_ms();
        on_backend!(&self.backend, b => b.record_sockets(instance, counts, ttl, now))
    }

    /// The other instances whose socket census is current.
    pub async fn peers(&self, instance: &str) -> Result<Vec<String>, StoreError> {
        let (now, stale) = (now_ms(), CENSUS_STALE_AFTER.as_millis() as i64);
        let mut live = on_backend!(&self.backend, b => b.live_instances(now, stale))?;
        live.retain(|i| i != instance);
        Ok(live)
    }

    /// How many sockets `user_id` has open on `peers`, as their censuses say
    /// (at most a census refresh old). No store round trip without peers.
    pub async fn user_sockets_on(
        &self,
        peers: &[String],
        user_id: Uuid,
    ) -> Result<usize, StoreError> {
        if peers.is_empty() {
            return Ok(0);
        }
        let (key, now) = (census_user_key(user_id), now_ms());
        on_backend!(&self.backend, b => b.socket_count_on(peers, &key, now))
    }

    /// The Redis connection and key prefix, when sessions live in Redis.
    pub fn redis_connection(&self) -> Option<(crate::redis_link::PrimaryConnection, String)> {
        match &self.backend {
            AnyBackend::Redis(b) => {
                let (conn, prefix) = b.connection();
                Some((conn, prefix.to_owned()))
            }
            AnyBackend::Memory(_) => None,
        }
    }

    /// Redis only: announces sessions that vanish inside Redis (raw `DEL`,
    /// expiry) as [`Event::SessionEnded`] on this instance, and a lost
    /// subscription as [`Event::Resync`] (so the sweep re-checks at once).
    /// The in-process store announces its own expiries as sockets find them.
    /// Returns once the listener has subscribed (or [`LISTENER_START_WAIT`]
    /// passed: it keeps trying in the background).
    pub async fn start_keyspace_listener(&self) {
        let AnyBackend::Redis(redis) = &self.backend else {
            return;
        };
        let (notices, mut received) = mpsc::channel(KEYSPACE_QUEUE);
        let subscribed = redis.spawn_keyspace_listener(notices);
        let sessions = self.clone();
        tokio::spawn(async move {
            while let Some(notice) = received.recv().await {
                match notice {
                    KeyspaceNotice::SessionGone { sid, seen } => {
                        let reason = sessions.why_ended(&sid, seen).await;
                        let event = Event::SessionEnded {
                            sid: sid.clone(),
                            reason,
                        };
                        sessions.bus.deliver_here(&event);
                        // Beside, not before the next notice: counting costs a
                        // round trip, and revocation must not wait for it.
                        let counting = sessions.clone();
                        tokio::spawn(
                            async move { counting.count_notified_end(&sid, reason).await },
                        );
                    }
                    KeyspaceNotice::Resubscribed => sessions.bus.deliver_here(&Event::Resync),
                }
            }
        });
        if tokio::time::timeout(LISTENER_START_WAIT, subscribed)
            .await
            .is_err()
        {
            log::warn!("event=keyspace_listener_not_ready note=\"still trying; the sweep covers meanwhile\"");
        }
    }
}

impl Sessions {
    /// Counts a session Redis reported gone, if no other instance has.
    async fn count_notified_end(&self, sid: &str, reason: EndReason) {
        let AnyBackend::Redis(redis) = &self.backend else {
            return;
        };
        match redis.claim_end_count(sid).await {
            Ok(true) => self.metrics.session_ended(reason),
            Ok(false) => {}
            Err(e) => log::warn!("event=end_count_failed sid={sid} error={e}"),
        }
    }
}

/// How long start-up waits for a Redis subscription before going on without it.
pub const LISTENER_START_WAIT: Duration = Duration::from_secs(5);

/// Keyspace notices waiting for their tombstone to be read; when full the
/// listener waits (Redis buffers for it) rather than drop a revocation.
const KEYSPACE_QUEUE: usize = 1024;
