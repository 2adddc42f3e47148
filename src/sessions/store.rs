//! actix-session's `SessionStore`, implemented over our backends.
//!
//! Why not the stock `RedisSessionStore`: it re-creates a missing key on
//! update (so a request in flight during logout resurrects the session) and
//! has no timeouts. Here an update never creates, the cookie key never
//! reaches the store (only its public id), TTLs are clamped to the absolute
//! deadline, and a store failure is reported as such, which the app maps to 503.

use actix_session::storage::{LoadError, SaveError, SessionKey, UpdateError};
use actix_web::cookie::time::Duration as CookieDuration;
use rand::distr::{Alphanumeric, SampleString};

use super::{
    backend::{NewSession, SessionBackend as _, SessionState, StoreError},
    on_backend, public_id, ClientMeta, CurrentSession, Sessions,
};
use crate::{
    audit::{Action, Actor, AuditEvent},
    domain::EndReason,
    time::now_ms,
};

/// The adapter handed to `SessionMiddleware`.
#[derive(Clone)]
pub struct SessionStore {
    sessions: Sessions,
}

impl SessionStore {
    pub fn new(sessions: Sessions) -> Self {
        Self { sessions }
    }
}

/// actix-session turns any store error into a 500 before a handler runs;
/// the app's outermost middleware maps every such 5xx to a 503 (fail
/// closed). The cause is logged here, where it is still known.
fn store_error(e: StoreError) -> anyhow::Error {
    log::error!("event=session_store_failed error={e:#}");
    anyhow::Error::new(e)
}

fn ttl_ms(ttl: &CookieDuration) -> i64 {
    ttl.whole_milliseconds().clamp(1, i64::MAX as i128) as i64
}

impl actix_session::storage::SessionStore for SessionStore {
    async fn load(&self, session_key: &SessionKey) -> Result<Option<SessionState>, LoadError> {
        let sid = public_id(session_key.as_ref());
        let now = now_ms();
        let Some(mut stored) = on_backend!(self.sessions.backend(), b => b.load(&sid, now))
            .map_err(|e| LoadError::Other(store_error(e)))?
        else {
            return Ok(None);
        };
        // This request is activity. Recording it costs a second round trip, so
        // only when the last recorded activity is older than the touch interval
        // (actix's per-request `update_ttl` is off for the same reason).
        let touch_every = self.sessions.touch_interval().as_millis() as i64;
        if now - stored.last_seen_ms >= touch_every {
            let idle = self.sessions.idle_ms();
            match on_backend!(self.sessions.backend(), b => b.touch(&sid, idle, now))
                .map_err(|e| LoadError::Other(store_error(e)))?
            {
                Some(expires_at) => stored.expires_at_ms = expires_at,
                None => return Ok(None),
            }
        }
        Ok(Some(CurrentSession::loaded_state(sid, stored)))
    }

    async fn save(
        &self,
        session_state: SessionState,
        ttl: &CookieDuration,
    ) -> Result<SessionKey, SaveError> {
        let key = Alphanumeric.sample_string(&mut rand::rng(), 64);
        let sid = public_id(&key);
        let now = now_ms();
        let mut state = CurrentSession::storable(session_state);
        let client = ClientMeta::lift(&mut state);
        let user_id = CurrentSession::user_of(&state);
        let audit_client = crate::audit::Client {
            ip: client.ip.clone(),
            user_agent: client.user_agent.clone(),
        };
        let new = NewSession {
            user_id,
            client_ip: client.ip,
            user_agent: client.user_agent,
            state,
            created_at_ms: now,
            absolute_deadline_ms: now + self.sessions.absolute.as_millis() as i64,
        };
        let ttl = ttl_ms(ttl);
        on_backend!(self.sessions.backend(), b => b.create(&sid, new, ttl, now))
            .map_err(|e| SaveError::Other(store_error(e)))?;
        // A signed-in session is only ever created by a sign-in, and only
        // here is its public id known: the sign-in is recorded here.
        if let Some(user_id) = user_id {
            self.sessions.audit(
                AuditEvent::new(Action::LoginSuccess, Actor::user(user_id, &sid))
                    .target_user(user_id)
                    .target_session(&sid)
                    .client(audit_client),
            );
        }
        SessionKey::try_from(key).map_err(|e| SaveError::Other(e.into()))
    }

    async fn update(
        &self,
        session_key: SessionKey,
        session_state: SessionState,
        ttl: &CookieDuration,
    ) -> Result<SessionKey, UpdateError> {
        let sid = public_id(session_key.as_ref());
        let (ttl, now) = (ttl_ms(ttl), now_ms());
        let state = CurrentSession::storable(session_state);
        // `false` means the session was deleted meanwhile: it stays deleted, and
        // the dead key in the cookie simply loads as "no session" next time.
        on_backend!(self.sessions.backend(), b => b.update_state(&sid, state, ttl, now))
            .map_err(|e| UpdateError::Other(store_error(e)))?;
        Ok(session_key)
    }

    async fn update_ttl(
        &self,
        session_key: &SessionKey,
        ttl: &CookieDuration,
    ) -> Result<(), anyhow::Error> {
        let sid = public_id(session_key.as_ref());
        let (ttl, now) = (ttl_ms(ttl), now_ms());
        on_backend!(self.sessions.backend(), b => b.touch(&sid, ttl, now)).map_err(store_error)?;
        Ok(())
    }

    /// Called on logout (purge) and when login renews the session key.
    async fn delete(&self, session_key: &SessionKey) -> Result<(), anyhow::Error> {
        let sid = public_id(session_key.as_ref());
        let reason = EndReason::Logout;
        let existed = on_backend!(self.sessions.backend(), b => b.delete(&sid, reason.as_str()))
            .map_err(store_error)?;
        if existed {
            self.sessions.count_own_end(reason);
            let event = crate::events::Event::SessionEnded { sid, reason };
            self.sessions.bus.publish(event).await;
        }
        Ok(())
    }
}
