//! The audit trail: who signed in, out or failed to, which sessions ended
//! and why, who changed which user, which sockets were refused. Kept in the
//! user store (`audit_events`), listed by `GET /api/admin/audit` and
//! `tether audit list`, and written as one log line each (target `audit`).
//!
//! Recording never waits on the database: [`Audit::record`] logs the event
//! and puts it on a bounded queue; a background writer (`writer`) stores
//! the queue in batches and prunes what is past retention. Nothing is lost
//! silently: a full queue or a failed write logs the event at error level.

pub mod query;
mod writer;

use std::time::Duration;

use chrono::Utc;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::{
    db::{AuditEntry, Db},
    domain::EndReason,
};

pub use writer::prune_once;

/// Events waiting for the writer. Far above any burst the writer cannot
/// absorb within a batch or two; a full queue is an error worth a log line.
pub const QUEUE_CAPACITY: usize = 10_000;

/// How long [`Audit::flush`] waits for the writer before giving up.
const FLUSH_WAIT: Duration = Duration::from_secs(5);

/// What happened. The names are the API's and the table's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    LoginSuccess,
    /// `details.username` as typed; never the password.
    LoginFailure,
    /// Refused by the sign-in throttle before any password check.
    LoginThrottled,
    Logout,
    /// `details.reason` (the `EndReason`) and `details.by` ([`RevokedBy`]).
    SessionRevoked,
    PasswordChanged,
    UserCreated,
    /// `details.before` → `details.after` (role names).
    UserRolesChanged,
    UserDisabled,
    UserEnabled,
    /// `details.reason`: `origin`, `unauthenticated` or `cap`.
    WsRefused,
}

impl Action {
    pub const ALL: [Action; 11] = [
        Action::LoginSuccess,
        Action::LoginFailure,
        Action::LoginThrottled,
        Action::Logout,
        Action::SessionRevoked,
        Action::PasswordChanged,
        Action::UserCreated,
        Action::UserRolesChanged,
        Action::UserDisabled,
        Action::UserEnabled,
        Action::WsRefused,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Action::LoginSuccess => "login.success",
            Action::LoginFailure => "login.failure",
            Action::LoginThrottled => "login.throttled",
            Action::Logout => "logout",
            Action::SessionRevoked => "session.revoked",
            Action::PasswordChanged => "password.changed",
            Action::UserCreated => "user.created",
            Action::UserRolesChanged => "user.roles_changed",
            Action::UserDisabled => "user.disabled",
            Action::UserEnabled => "user.enabled",
            Action::WsRefused => "ws.refused",
        }
    }

    pub fn parse(raw: &str) -> Option<Action> {
        Self::ALL.into_iter().find(|a| a.as_str() == raw)
    }
}

/// Who did it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A signed-in user, through the session with this public id.
    User { user_id: Uuid, session_id: String },
    /// The `tether` command line.
    Cli,
    /// tether itself, or Redis under it (an expiry, a raw delete).
    System,
    /// A client that is not signed in (a failed sign-in, a refused socket).
    Anonymous,
}

impl Actor {
    pub fn user(user_id: Uuid, session_id: &str) -> Actor {
        Actor::User {
            user_id,
            session_id: session_id.to_owned(),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Actor::User { .. } => "user",
            Actor::Cli => "cli",
            Actor::System => "system",
            Actor::Anonymous => "anonymous",
        }
    }
}

/// Who ended a session (`details.by` of `session.revoked`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokedBy {
    /// The session's own user (another device, or "everywhere else").
    SelfService,
    Admin,
    Cli,
    /// Its key was deleted in Redis by something other than tether.
    RedisDelete,
    /// It timed out.
    Expiry,
}

impl RevokedBy {
    pub const fn as_str(self) -> &'static str {
        match self {
            RevokedBy::SelfService => "self",
            RevokedBy::Admin => "admin",
            RevokedBy::Cli => "cli",
            RevokedBy::RedisDelete => "redis_delete",
            RevokedBy::Expiry => "expiry",
        }
    }
}

/// The client a request came from, as far as it is known (already bounded
/// in length by whoever read it from the request).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Client {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// One event, built where it happens:
/// `AuditEvent::new(Action::Logout, actor).target_session(sid)`.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    action: Action,
    actor: Actor,
    target_user: Option<Uuid>,
    target_session: Option<String>,
    /// A target user known only by the name a client typed, resolved to an
    /// id by the writer (off the request path).
    target_named: Option<String>,
    client: Client,
    details: serde_json::Map<String, serde_json::Value>,
}

impl AuditEvent {
    pub fn new(action: Action, actor: Actor) -> Self {
        Self {
            action,
            actor,
            target_user: None,
            target_session: None,
            target_named: None,
            client: Client::default(),
            details: serde_json::Map::new(),
        }
    }

    /// A `session.revoked` event: which session, why it ended (`reason`) and
    /// who ended it (`by`); the one shape every revocation path records.
    pub fn session_revoked(actor: Actor, sid: &str, reason: EndReason, by: RevokedBy) -> Self {
        Self::new(Action::SessionRevoked, actor)
            .target_session(sid)
            .detail("reason", reason)
            .detail("by", by.as_str())
    }

    /// The session's owner, when known.
    pub fn owned_by(self, owner: Option<Uuid>) -> Self {
        match owner {
            Some(user_id) => self.target_user(user_id),
            None => self,
        }
    }

    pub fn target_user(mut self, user_id: Uuid) -> Self {
        self.target_user = Some(user_id);
        self
    }

    pub fn target_session(mut self, sid: &str) -> Self {
        self.target_session = Some(sid.to_owned());
        self
    }

    /// The target user, named as a client typed it (a failed sign-in): the
    /// writer looks the name up, so a listing by user shows attempts on
    /// that account. An unknown name leaves no target user.
    pub fn target_named(mut self, username: &str) -> Self {
        self.target_named = Some(username.to_owned());
        self
    }

    pub fn client(mut self, client: Client) -> Self {
        self.client = client;
        self
    }

    /// Adds `details.key`. Never a secret: details are shown to admins and logged.
    pub fn detail(mut self, key: &str, value: impl Serialize) -> Self {
        let value = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
        self.details.insert(key.to_owned(), value);
        self
    }

    fn into_queued(self) -> Queued {
        let target_named = self.target_named.clone();
        Queued {
            entry: self.into_entry(),
            target_named,
        }
    }

    fn into_entry(self) -> AuditEntry {
        let (actor_user_id, actor_session_id) = match &self.actor {
            Actor::User {
                user_id,
                session_id,
            } => (Some(*user_id), Some(session_id.clone())),
            Actor::Cli | Actor::System | Actor::Anonymous => (None, None),
        };
        AuditEntry {
            at: Utc::now(),
            action: self.action.as_str().to_owned(),
            actor: self.actor.kind().to_owned(),
            actor_user_id,
            actor_session_id,
            target_user_id: self.target_user,
            target_session_id: self.target_session,
            client_ip: self.client.ip,
            user_agent: self.client.user_agent,
            details: serde_json::Value::Object(self.details),
        }
    }
}

/// An entry on its way to the store.
struct Queued {
    entry: AuditEntry,
    /// See [`AuditEvent::target_named`].
    target_named: Option<String>,
}

enum Message {
    Entry(Box<Queued>),
    /// Answered once everything queued before it is stored (or given up on).
    Flush(oneshot::Sender<()>),
}

/// Records audit events; cheap to clone. One writer per process.
#[derive(Clone)]
pub struct Audit {
    queue: mpsc::Sender<Message>,
}

impl Audit {
    /// Starts the writer (and the pruning of entries older than
    /// `retention`) on the current Tokio runtime.
    pub fn start(db: Db, retention: Duration) -> Audit {
        let (queue, received) = mpsc::channel(QUEUE_CAPACITY);
        writer::spawn(db, received, Some(retention));
        Audit { queue }
    }

    /// As [`Audit::start`], without pruning: for the CLI, which runs briefly
    /// beside a server that prunes.
    pub fn start_writer_only(db: Db) -> Audit {
        let (queue, received) = mpsc::channel(QUEUE_CAPACITY);
        writer::spawn(db, received, None);
        Audit { queue }
    }

    /// Logs the event (one line, target `audit`) and queues it for the
    /// store; never waits.
    pub fn record(&self, event: AuditEvent) {
        let queued = event.into_queued();
        log::info!(target: "audit", "{}", log_line(&queued.entry));
        match self.queue.try_send(Message::Entry(Box::new(queued))) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(Message::Entry(queued))) => log::error!(
                target: "audit",
                "event=audit_not_stored reason=queue_full {}",
                log_line(&queued.entry)
            ),
            Err(e) => {
                if let Message::Entry(queued) = e.into_inner() {
                    log::error!(
                        target: "audit",
                        "event=audit_not_stored reason=writer_stopped {}",
                        log_line(&queued.entry)
                    );
                }
            }
        }
    }

    /// Waits until every event recorded so far is stored (or logged as not
    /// stored), at most a few seconds: before a listing, at shutdown, and
    /// before the CLI exits.
    pub async fn flush(&self) {
        let (done, stored) = oneshot::channel();
        let wait = async {
            if self.queue.send(Message::Flush(done)).await.is_ok() {
                let _ = stored.await;
            }
        };
        if tokio::time::timeout(FLUSH_WAIT, wait).await.is_err() {
            log::error!(target: "audit", "event=audit_flush_timed_out");
        }
    }
}

/// The entry as key=value text. Free text (user agent, details) is quoted
/// or JSON-encoded, so it cannot forge fields or lines.
fn log_line(e: &AuditEntry) -> String {
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
    format!(
        "action={} actor={} actor_user_id={} actor_session_id={} target_user_id={} \
         target_session_id={} client_ip={} user_agent={:?} details={}",
        e.action,
        e.actor,
        or_dash(e.actor_user_id.map(|id| id.to_string())),
        or_dash(e.actor_session_id.clone()),
        or_dash(e.target_user_id.map(|id| id.to_string())),
        or_dash(e.target_session_id.clone()),
        or_dash(e.client_ip.clone()),
        e.user_agent.as_deref().unwrap_or("-"),
        e.details
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_names_round_trip() {
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(a));
        }
        assert_eq!(Action::parse("login"), None);
    }

    #[test]
    fn a_log_line_cannot_be_split_by_what_a_client_sent() {
        let entry = AuditEvent::new(Action::LoginFailure, Actor::Anonymous)
            .client(Client {
                ip: Some("192.0.2.1".into()),
                user_agent: Some("evil\naction=logout".into()),
            })
            .detail("username", "bob\nactor=cli")
            .into_entry();
        let line = log_line(&entry);
        assert!(!line.contains('\n'), "{line}");
        assert!(line.starts_with("action=login.failure actor=anonymous"));
        assert!(
            line.contains(r#"details={"username":"bob\nactor=cli"}"#),
            "{line}"
        );
    }
}
