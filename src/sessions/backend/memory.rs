//! In-process session store: one instance's memory, for `cargo run` on a
//! machine without Redis. Same semantics as the Redis store (a deleted
//! session stays deleted, deadlines clamp every renewal), but neither shared
//! between instances nor durable across restarts.
//!
//! Expiry is a timestamp check on every access, plus a sweep of all expired
//! entries every [`PURGE_EVERY_CREATES`] creations so abandoned sessions do
//! not pile up in a long-running process.
//!
//! The map of sessions is itself the index of all sessions; the per-user
//! index, tombstones ([`tombstones`]) and the socket census ([`census`])
//! mirror their Redis keys. Tombstones expire on the monotonic clock, since
//! deletes carry no `now_ms`.

mod census;
mod tombstones;

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use uuid::Uuid;

use self::{census::Census, tombstones::Tombstones};
use super::{
    client_field, NewSession, SessionBackend, SessionPage, SessionState, StoreError, StoredSession,
};

/// How many creations between two sweeps of expired sessions. A sweep walks
/// every entry, so this keeps its cost amortized to O(1) per creation.
pub const PURGE_EVERY_CREATES: u64 = 256;

/// Sessions in this process's memory: neither shared nor durable.
/// Cheap to clone: clones share the same sessions.
#[derive(Clone, Default)]
pub struct MemoryBackend {
    sessions: Arc<Mutex<Sessions>>,
    census: Arc<Mutex<Census>>,
}

impl MemoryBackend {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts each session this store finds expired in `expired` (on the
    /// access that finds it, or the sweep: nothing else notices an expiry
    /// in process memory).
    pub fn counting_expiries(self, expired: prometheus::IntCounter) -> Self {
        self.lock().expired = Some(expired);
        self
    }

    /// How many entries are held, including expired ones not yet swept.
    pub fn stored_count(&self) -> usize {
        self.lock().by_sid.len()
    }

    /// The lock is never held across an `.await`: every method below locks,
    /// works synchronously, and returns.
    fn lock(&self) -> MutexGuard<'_, Sessions> {
        // A panic while holding the lock cannot leave a half-applied change
        // that matters more than losing every session, so keep serving.
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn census(&self) -> MutexGuard<'_, Census> {
        // The census is rebuilt by every instance's next record: keep serving.
        self.census.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The sessions by sid, the per-user index over them, and the tombstones of
/// deleted ones (under one lock, so a delete and its tombstone are atomic).
#[derive(Default)]
struct Sessions {
    by_sid: HashMap<String, StoredSession>,
    by_user: HashMap<Uuid, HashSet<String>>,
    tombstones: Tombstones,
    creates_since_purge: u64,
    /// `tether_sessions_ended_total{reason="expired"}`, when counted.
    expired: Option<prometheus::IntCounter>,
}

impl Sessions {
    fn insert(&mut self, sid: &str, session: StoredSession) {
        self.remove(sid);
        if let Some(user_id) = session.user_id {
            self.by_user
                .entry(user_id)
                .or_default()
                .insert(sid.to_owned());
        }
        self.by_sid.insert(sid.to_owned(), session);
    }

    /// Removes a session and its index entry, whether or not it has expired.
    fn remove(&mut self, sid: &str) -> Option<StoredSession> {
        let session = self.by_sid.remove(sid)?;
        if let Some(user_id) = session.user_id {
            self.unindex(user_id, sid);
        }
        Some(session)
    }

    fn unindex(&mut self, user_id: Uuid, sid: &str) {
        if let Some(sids) = self.by_user.get_mut(&user_id) {
            sids.remove(sid);
            if sids.is_empty() {
                self.by_user.remove(&user_id);
            }
        }
    }

    /// The session if it is still alive at `now_ms`; an expired one is
    /// removed on the way.
    fn live(&mut self, sid: &str, now_ms: i64) -> Option<&mut StoredSession> {
        if self.by_sid.get(sid).is_some_and(|s| !is_alive(s, now_ms)) {
            self.remove_expired(sid);
        }
        self.by_sid.get_mut(sid)
    }

    /// Renews the idle TTL of a live session, clamped to its absolute
    /// deadline; `None` (and the session removed) if nothing is left of it.
    fn renew(&mut self, sid: &str, idle_ttl_ms: i64, now_ms: i64) -> Option<&mut StoredSession> {
        let session = self.live(sid, now_ms)?;
        let expires_at_ms = expiry(session.absolute_deadline_ms, idle_ttl_ms, now_ms);
        if expires_at_ms <= now_ms {
            self.remove_expired(sid);
            return None;
        }
        let session = self.by_sid.get_mut(sid)?;
        session.expires_at_ms = expires_at_ms;
        session.last_seen_ms = now_ms;
        Some(session)
    }

    fn purge_expired(&mut self, now_ms: i64) {
        let expired: Vec<String> = self
            .by_sid
            .iter()
            .filter(|(_, s)| !is_alive(s, now_ms))
            .map(|(sid, _)| sid.clone())
            .collect();
        for sid in expired {
            self.remove_expired(&sid);
        }
        self.creates_since_purge = 0;
    }

    fn remove_expired(&mut self, sid: &str) {
        if self.remove(sid).is_some() {
            if let Some(expired) = &self.expired {
                expired.inc();
            }
        }
    }
}

fn is_alive(session: &StoredSession, now_ms: i64) -> bool {
    session.expires_at_ms > now_ms && session.absolute_deadline_ms > now_ms
}

/// When a session touched at `now_ms` dies if nothing touches it again.
fn expiry(absolute_deadline_ms: i64, idle_ttl_ms: i64, now_ms: i64) -> i64 {
    now_ms.saturating_add(idle_ttl_ms).min(absolute_deadline_ms)
}

impl SessionBackend for MemoryBackend {
    async fn create(
        &self,
        sid: &str,
        new: NewSession,
        idle_ttl_ms: i64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut sessions = self.lock();
        sessions.creates_since_purge += 1;
        if sessions.creates_since_purge >= PURGE_EVERY_CREATES {
            sessions.purge_expired(now_ms);
        }
        let expires_at_ms = expiry(new.absolute_deadline_ms, idle_ttl_ms, now_ms);
        if expires_at_ms <= now_ms {
            // Dead on arrival: store nothing, as Redis would with a TTL ≤ 0.
            sessions.remove(sid);
            return Ok(());
        }
        let session = StoredSession {
            state: new.state,
            user_id: new.user_id,
            created_at_ms: new.created_at_ms,
            absolute_deadline_ms: new.absolute_deadline_ms,
            expires_at_ms,
            last_seen_ms: now_ms,
            client_ip: client_field(new.client_ip),
            user_agent: client_field(new.user_agent),
        };
        sessions.insert(sid, session);
        Ok(())
    }

    async fn load(&self, sid: &str, now_ms: i64) -> Result<Option<StoredSession>, StoreError> {
        Ok(self.lock().live(sid, now_ms).map(|s| s.clone()))
    }

    async fn update_state(
        &self,
        sid: &str,
        state: SessionState,
        idle_ttl_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut sessions = self.lock();
        match sessions.renew(sid, idle_ttl_ms, now_ms) {
            Some(session) => {
                session.state = state;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn touch(
        &self,
        sid: &str,
        idle_ttl_ms: i64,
        now_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        let mut sessions = self.lock();
        Ok(sessions
            .renew(sid, idle_ttl_ms, now_ms)
            .map(|s| s.expires_at_ms))
    }

    /// `true` (and a tombstone) if the entry was present, even if it had
    /// expired but not yet been swept (there is no `now_ms` here to tell).
    async fn delete(&self, sid: &str, reason: &str) -> Result<bool, StoreError> {
        let mut sessions = self.lock();
        let existed = sessions.remove(sid).is_some();
        if existed {
            sessions.tombstones.insert(sid, reason);
        }
        Ok(existed)
    }

    async fn list_user_sessions(
        &self,
        user_id: Uuid,
        now_ms: i64,
    ) -> Result<Vec<(String, StoredSession)>, StoreError> {
        let mut sessions = self.lock();
        let sids: Vec<String> = sessions
            .by_user
            .get(&user_id)
            .map(|sids| sids.iter().cloned().collect())
            .unwrap_or_default();
        let mut live = Vec::with_capacity(sids.len());
        for sid in sids {
            // `live` drops expired sessions, and their index entries with them.
            if let Some(session) = sessions.live(&sid, now_ms) {
                live.push((sid, session.clone()));
            }
        }
        live.sort_by_key(|(_, s)| s.created_at_ms);
        Ok(live)
    }

    async fn delete_user_sessions(
        &self,
        user_id: Uuid,
        reason: &str,
    ) -> Result<Vec<String>, StoreError> {
        let mut sessions = self.lock();
        let sids = sessions.by_user.remove(&user_id).unwrap_or_default();
        let mut deleted: Vec<String> = sids
            .into_iter()
            .filter(|sid| sessions.by_sid.remove(sid).is_some())
            .collect();
        deleted.sort();
        for sid in &deleted {
            sessions.tombstones.insert(sid, reason);
        }
        Ok(deleted)
    }

    async fn list_sessions(
        &self,
        user_id: Option<Uuid>,
        offset: usize,
        limit: usize,
        now_ms: i64,
    ) -> Result<SessionPage, StoreError> {
        let mut sessions = self.lock();
        let candidates: Vec<String> = match user_id {
            Some(user_id) => sessions
                .by_user
                .get(&user_id)
                .map(|sids| sids.iter().cloned().collect())
                .unwrap_or_default(),
            None => sessions.by_sid.keys().cloned().collect(),
        };
        // `live` drops expired sessions, and their index entries with them.
        let mut live: Vec<(i64, String)> = candidates
            .into_iter()
            .filter_map(|sid| {
                let deadline = sessions.live(&sid, now_ms)?.absolute_deadline_ms;
                Some((deadline, sid))
            })
            .collect();
        // Latest deadline first, ties by sid descending, as Redis's ZREVRANGE.
        live.sort_unstable_by(|a, b| b.cmp(a));
        let page = live
            .iter()
            .skip(offset)
            .take(limit)
            .filter_map(|(_, sid)| Some((sid.clone(), sessions.by_sid.get(sid)?.clone())))
            .collect();
        Ok(SessionPage {
            total: live.len(),
            sessions: page,
        })
    }

    async fn ended_reason(&self, sid: &str) -> Result<Option<String>, StoreError> {
        Ok(self.lock().tombstones.reason(sid))
    }

    async fn claim_ended(&self, sid: &str, reason: &str) -> Result<bool, StoreError> {
        let mut sessions = self.lock();
        if sessions.tombstones.reason(sid).is_some() {
            return Ok(false);
        }
        sessions.tombstones.insert(sid, reason);
        Ok(true)
    }

    async fn existing(&self, sids: &[String], now_ms: i64) -> Result<Vec<bool>, StoreError> {
        let mut sessions = self.lock();
        Ok(sids
            .iter()
            .map(|sid| sessions.live(sid, now_ms).is_some())
            .collect())
    }

    async fn record_sockets(
        &self,
        instance: &str,
        counts: &HashMap<String, usize>,
        ttl_ms: i64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.census().record(instance, counts, ttl_ms, now_ms);
        Ok(())
    }

    async fn socket_counts(
        &self,
        sids: &[String],
        now_ms: i64,
        stale_after_ms: i64,
    ) -> Result<HashMap<String, usize>, StoreError> {
        Ok(self.census().counts(sids, now_ms, stale_after_ms))
    }

    async fn live_instances(
        &self,
        now_ms: i64,
        stale_after_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        Ok(self.census().live(now_ms, stale_after_ms))
    }

    async fn socket_count_on(
        &self,
        instances: &[String],
        key: &str,
        now_ms: i64,
    ) -> Result<usize, StoreError> {
        Ok(self.census().count_on(instances, key, now_ms))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
