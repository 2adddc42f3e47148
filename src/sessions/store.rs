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
use uuid::Uuid;

use super::{
    backend::{NewSession, SessionBackend, SessionState, StoreError},
    now_ms, public_id, state_keys, AnyBackend, EndReason, Event, Sessions,
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

/// Marker in the error chain: the session store did not answer. The app's
/// outermost middleware turns the session middleware's opaque 500 into a 503.
#[derive(Debug, thiserror::Error)]
#[error("session store unavailable")]
pub struct SessionStoreUnavailable;

fn store_error(e: StoreError) -> anyhow::Error {
    match e {
        StoreError::Unavailable(source) => {
            log::error!("event=session_store_unavailable error={source:#}");
            anyhow::Error::new(SessionStoreUnavailable)
        }
        StoreError::Corrupt(what) => anyhow::anyhow!("corrupt session record: {what}"),
    }
}

fn ttl_ms(ttl: &CookieDuration) -> i64 {
    ttl.whole_milliseconds().clamp(1, i64::MAX as i128) as i64
}

/// Drops the keys the adapter injects on load, so they are never stored.
fn without_injected(mut state: SessionState) -> SessionState {
    state.retain(|k, _| !k.starts_with(state_keys::PREFIX));
    state
}

fn user_id_of(state: &SessionState) -> Option<Uuid> {
    let raw = state.get(state_keys::IDENTITY_USER_ID)?;
    let id: String = serde_json::from_str(raw).ok()?;
    Uuid::parse_str(&id).ok()
}

macro_rules! on_backend {
    ($self:expr, $b:ident => $call:expr) => {
        match $self.sessions.backend() {
            AnyBackend::Memory($b) => $call.await,
            AnyBackend::Redis($b) => $call.await,
        }
    };
}

impl actix_session::storage::SessionStore for SessionStore {
    async fn load(&self, session_key: &SessionKey) -> Result<Option<SessionState>, LoadError> {
        let sid = public_id(session_key.as_ref());
        let now = now_ms();
        let Some(mut stored) = on_backend!(self, b => b.load(&sid, now))
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
            match on_backend!(self, b => b.touch(&sid, idle, now))
                .map_err(|e| LoadError::Other(store_error(e)))?
            {
                Some(expires_at) => stored.expires_at_ms = expires_at,
                None => return Ok(None),
            }
        }
        let mut state = stored.state;
        // Values are JSON, as actix-session expects: a quoted string, bare numbers.
        state.insert(
            state_keys::SID.into(),
            serde_json::Value::from(sid).to_string(),
        );
        state.insert(
            state_keys::CREATED_AT.into(),
            stored.created_at_ms.to_string(),
        );
        state.insert(
            state_keys::EXPIRES_AT.into(),
            stored.expires_at_ms.to_string(),
        );
        state.insert(
            state_keys::ABSOLUTE_EXPIRES_AT.into(),
            stored.absolute_deadline_ms.to_string(),
        );
        Ok(Some(state))
    }

    async fn save(
        &self,
        session_state: SessionState,
        ttl: &CookieDuration,
    ) -> Result<SessionKey, SaveError> {
        let key = Alphanumeric.sample_string(&mut rand::rng(), 64);
        let sid = public_id(&key);
        let now = now_ms();
        let mut state = without_injected(session_state);
        let mut lift = |key: &str| {
            let raw = state.remove(key)?;
            serde_json::from_str::<Option<String>>(&raw).ok().flatten()
        };
        let (client_ip, user_agent) = (lift(state_keys::CLIENT_IP), lift(state_keys::USER_AGENT));
        let new = NewSession {
            user_id: user_id_of(&state),
            client_ip,
            user_agent,
            state,
            created_at_ms: now,
            absolute_deadline_ms: now + self.sessions.absolute.as_millis() as i64,
        };
        let ttl = ttl_ms(ttl);
        on_backend!(self, b => b.create(&sid, new, ttl, now))
            .map_err(|e| SaveError::Other(store_error(e)))?;
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
        let state = without_injected(session_state);
        // `false` means the session was deleted meanwhile: it stays deleted, and
        // the dead key in the cookie simply loads as "no session" next time.
        on_backend!(self, b => b.update_state(&sid, state, ttl, now))
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
        on_backend!(self, b => b.touch(&sid, ttl, now)).map_err(store_error)?;
        Ok(())
    }

    /// Called on logout (purge) and when login renews the session key.
    async fn delete(&self, session_key: &SessionKey) -> Result<(), anyhow::Error> {
        let sid = public_id(session_key.as_ref());
        let reason = EndReason::Logout;
        let existed =
            on_backend!(self, b => b.delete(&sid, reason.as_str())).map_err(store_error)?;
        if existed {
            self.sessions
                .bus
                .publish(Event::SessionEnded { sid, reason })
                .await;
        }
        Ok(())
    }
}
