//! Sessions as listed to their user, an admin or an operator: the stored
//! facts plus how many sockets each has open right now, on every instance.

use serde::Serialize;
use uuid::Uuid;

use super::{
    backend::{SessionBackend as _, StoreError, StoredSession},
    on_backend, Sessions, CENSUS_STALE_AFTER,
};
use crate::time::{now_ms, rfc3339};

/// A session as listed to its user, an admin or an operator.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = SessionInfo)]
pub struct SessionSummary {
    /// The public session id.
    pub id: String,
    pub user_id: Option<Uuid>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub last_seen_at: String,
    /// When it ends if nothing touches it: min(idle deadline, absolute deadline).
    #[schema(format = DateTime)]
    pub expires_at: String,
    #[schema(format = DateTime)]
    pub absolute_expires_at: String,
    /// The TCP peer, or the right-most `X-Forwarded-For` address that is not
    /// a trusted proxy.
    pub client_ip: Option<String>,
    /// Cut to 256 characters.
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
        let sids: Vec<String> = stored.iter().map(|(sid, _)| sid.clone()).collect();
        let (now, stale) = (now_ms(), CENSUS_STALE_AFTER.as_millis() as i64);
        let counts = on_backend!(self.backend(), b => b.socket_counts(&sids, now, stale))?;
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
        let page = on_backend!(self.backend(), b => b.list_sessions(user_id, offset, limit, now))?;
        Ok((page.total, self.summarize(page.sessions).await?))
    }
}
