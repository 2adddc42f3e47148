//! The typed session: what a request knows of its session (id, deadlines,
//! the signed-in user) and what sign-in records with a new one (client IP
//! and user agent). Read and written only here: no other module touches the
//! string keys of actix-session's state map.
//!
//! How the facts travel: the store adapter's `load` adds them to the state it
//! hands actix-session (under `tether.`, never stored); `CurrentSession`
//! reads them back. Sign-in puts the client's facts in the state under
//! `tether-meta.`; the adapter's `save` lifts them out and stores them beside
//! the session, not in its state.

use actix_session::SessionExt as _;
use actix_web::HttpRequest;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::backend::{client_field, SessionState, StoredSession};
use crate::time::rfc3339;

/// The state map's keys; values are JSON, as actix-session expects.
mod keys {
    pub const SID: &str = "tether.sid";
    pub const CREATED_AT: &str = "tether.created_at";
    pub const EXPIRES_AT: &str = "tether.expires_at";
    pub const ABSOLUTE_EXPIRES_AT: &str = "tether.absolute_expires_at";
    /// What every key added on load starts with.
    pub const INJECTED: &str = "tether.";
    /// Written by actix-identity on login.
    pub const IDENTITY_USER_ID: &str = "actix_identity.user_id";
    pub const CLIENT_IP: &str = "tether-meta.client_ip";
    pub const USER_AGENT: &str = "tether-meta.user_agent";
    /// Kept in the stored state of a session signed in through a provider.
    pub const LINK_PROVIDER: &str = "tether-oidc.provider";
    pub const LINK_SID: &str = "tether-oidc.sid";
}

/// The caller's signed-in session, as loaded by the session middleware. No I/O.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentSession {
    pub sid: String,
    pub user_id: Uuid,
    pub created_at_ms: i64,
    /// The idle deadline as the store held it when the request began.
    pub expires_at_ms: i64,
    pub absolute_expires_at_ms: i64,
}

impl CurrentSession {
    /// `None` when the request has no signed-in session.
    pub fn from_request(req: &HttpRequest) -> Option<Self> {
        let session = req.get_session();
        let user_id: String = session.get(keys::IDENTITY_USER_ID).ok()??;
        Some(Self {
            sid: session.get(keys::SID).ok()??,
            user_id: Uuid::parse_str(&user_id).ok()?,
            created_at_ms: session.get(keys::CREATED_AT).ok()??,
            expires_at_ms: session.get(keys::EXPIRES_AT).ok()??,
            absolute_expires_at_ms: session.get(keys::ABSOLUTE_EXPIRES_AT).ok()??,
        })
    }

    /// The state handed to actix-session on load: the stored state plus the
    /// facts [`CurrentSession::from_request`] reads.
    pub(super) fn loaded_state(sid: String, stored: StoredSession) -> SessionState {
        let mut state = stored.state;
        let facts = [
            (keys::SID, serde_json::Value::from(sid).to_string()),
            (keys::CREATED_AT, stored.created_at_ms.to_string()),
            (keys::EXPIRES_AT, stored.expires_at_ms.to_string()),
            (
                keys::ABSOLUTE_EXPIRES_AT,
                stored.absolute_deadline_ms.to_string(),
            ),
        ];
        for (key, value) in facts {
            state.insert(key.into(), value);
        }
        state
    }

    /// The state to store: without the facts added on load.
    pub(super) fn storable(mut state: SessionState) -> SessionState {
        state.retain(|k, _| !k.starts_with(keys::INJECTED));
        state
    }

    /// The signed-in user a state names, if any.
    pub(super) fn user_of(state: &SessionState) -> Option<Uuid> {
        let raw = state.get(keys::IDENTITY_USER_ID)?;
        let id: String = serde_json::from_str(raw).ok()?;
        Uuid::parse_str(&id).ok()
    }
}

/// Who is signing in, recorded with the new session for session listings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientMeta {
    /// As seen (see [`super::client::client_ip`]), at most 256 characters.
    pub ip: Option<String>,
    /// As sent, at most 256 characters.
    pub user_agent: Option<String>,
}

impl ClientMeta {
    pub fn new(ip: Option<std::net::IpAddr>, user_agent: Option<&str>) -> Self {
        Self {
            ip: client_field(ip.map(|ip| ip.to_string())),
            user_agent: client_field(user_agent.map(str::to_owned)),
        }
    }

    /// Puts these facts where the store's `save` finds them: call before
    /// `Identity::login`, which stores the new session.
    pub fn record(&self, req: &HttpRequest) -> Result<(), actix_session::SessionInsertError> {
        let session = req.get_session();
        session.insert(keys::CLIENT_IP, &self.ip)?;
        session.insert(keys::USER_AGENT, &self.user_agent)
    }

    /// Takes the facts [`ClientMeta::record`] put in `state` out of it.
    pub(super) fn lift(state: &mut SessionState) -> Self {
        let mut take = |key: &str| {
            let raw = state.remove(key)?;
            serde_json::from_str::<Option<String>>(&raw).ok().flatten()
        };
        Self {
            ip: take(keys::CLIENT_IP),
            user_agent: take(keys::USER_AGENT),
        }
    }
}

/// Which provider session a tether session was signed in through: the
/// provider's id and its `sid` claim (when it sent one). Kept in the session's
/// stored state, so a back-channel logout can find the sessions to end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderLink {
    pub provider: String,
    pub sid: Option<String>,
}

impl ProviderLink {
    /// Puts the link in the session being signed in: call before
    /// `Identity::login`, which stores the new session.
    pub fn record(&self, req: &HttpRequest) -> Result<(), actix_session::SessionInsertError> {
        let session = req.get_session();
        session.insert(keys::LINK_PROVIDER, &self.provider)?;
        session.insert(keys::LINK_SID, &self.sid)
    }

    /// The link a stored session carries, if it was signed in through a provider.
    pub fn of(stored: &StoredSession) -> Option<Self> {
        let provider = stored.state.get(keys::LINK_PROVIDER)?;
        let sid = stored.state.get(keys::LINK_SID);
        Some(Self {
            provider: serde_json::from_str(provider).ok()?,
            sid: sid.and_then(|raw| serde_json::from_str(raw).ok()).flatten(),
        })
    }
}

/// The `session` object of the API and of the socket's `hello`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = Session)]
pub struct SessionJson {
    /// The public session id (32 hex digits), never the cookie's key.
    #[schema(example = "0123456789abcdef0123456789abcdef")]
    pub id: String,
    /// RFC 3339 UTC, to the second.
    #[schema(format = DateTime, example = "2026-01-01T12:00:00Z")]
    pub created_at: String,
    /// min(now + idle timeout, absolute deadline). The idle deadline the
    /// store holds (activity is recorded at most every few seconds, so it
    /// may lag a little).
    #[schema(format = DateTime, example = "2026-01-01T12:30:00Z")]
    pub expires_at: String,
}

impl From<&CurrentSession> for SessionJson {
    fn from(s: &CurrentSession) -> Self {
        Self {
            id: s.sid.clone(),
            created_at: rfc3339(s.created_at_ms),
            expires_at: rfc3339(s.expires_at_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_added_on_load_are_never_stored() {
        let stored = StoredSession {
            state: [("k".to_owned(), "1".to_owned())].into(),
            user_id: None,
            created_at_ms: 1,
            absolute_deadline_ms: 4,
            expires_at_ms: 3,
            last_seen_ms: 2,
            client_ip: None,
            user_agent: None,
        };
        let loaded = CurrentSession::loaded_state("abc".into(), stored);
        assert_eq!(loaded[keys::SID], "\"abc\"");
        assert_eq!(loaded[keys::ABSOLUTE_EXPIRES_AT], "4");
        let storable = CurrentSession::storable(loaded);
        assert_eq!(storable, [("k".to_owned(), "1".to_owned())].into());
    }

    #[test]
    fn client_facts_are_cut_and_lifted_out_of_the_state() {
        let long = "é".repeat(300);
        let meta = ClientMeta::new(Some([10, 0, 0, 1].into()), Some(&long));
        assert_eq!(meta.ip.as_deref(), Some("10.0.0.1"));
        assert_eq!(meta.user_agent.as_ref().unwrap().chars().count(), 256);

        let mut state: SessionState = [
            (keys::CLIENT_IP.to_owned(), "\"10.0.0.1\"".to_owned()),
            (keys::USER_AGENT.to_owned(), "null".to_owned()),
            ("other".to_owned(), "1".to_owned()),
        ]
        .into();
        let lifted = ClientMeta::lift(&mut state);
        assert_eq!(lifted.ip.as_deref(), Some("10.0.0.1"));
        assert_eq!(lifted.user_agent, None);
        assert_eq!(state.len(), 1);
    }
}
