//! The dispatcher: one place that reads a frame, finds its handler, checks the
//! permission against the user's current permissions, types the payload, and
//! turns every failure into a reply. Handlers only do their own work.

use std::{collections::HashMap, future::Future, sync::Arc};

use futures_util::future::LocalBoxFuture;
use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;
use utoipa::{
    openapi::{RefOr, Schema},
    ToSchema,
};

use super::protocol::{ClientFrame, ErrorCode, Reply};
use crate::{
    auth::{CurrentSession, UserAccess},
    domain::Permission,
    metrics::{MessageCounters, MessageOutcome, Metrics},
    state::AppState,
};

/// What a handler gets to work with.
pub struct Ctx<'a> {
    pub state: &'a AppState,
    pub user: &'a Arc<UserAccess>,
    pub session: &'a CurrentSession,
    /// What the handler learnt about the session, for the connection to act on.
    pub session_outcome: std::cell::Cell<SessionOutcome>,
}

/// Set by handlers that touch the session (`session.refresh`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SessionOutcome {
    #[default]
    Unchanged,
    /// The idle deadline moved to this Unix-ms time.
    ExtendedTo(i64),
    /// The session no longer exists.
    Ended,
}

/// A failed reply from a handler.
#[derive(Debug)]
pub struct HandlerError {
    pub code: ErrorCode,
    pub message: String,
}

impl HandlerError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::BadRequest,
            message: message.into(),
        }
    }

    pub fn unavailable() -> Self {
        Self {
            code: ErrorCode::Unavailable,
            message: "Service temporarily unavailable".into(),
        }
    }
}

/// One message type. Implement this in a new file under `handlers/` and add
/// one `.register::<YourHandler>()` line in `handlers::registry()`.
///
/// `Payload` and `Reply` are typed, with schemas (`ToSchema`), so the AsyncAPI
/// document at `/api/asyncapi.json` describes every registered type from
/// these same types.
pub trait MessageHandler: 'static {
    /// The `type` clients send.
    const TYPE: &'static str;
    /// Needed beyond being signed in; `None` = any signed-in user.
    const PERMISSION: Option<Permission>;
    /// One line for the AsyncAPI document: what the type does.
    const SUMMARY: &'static str;
    /// The typed `data`; use `handlers::NoData` for none.
    type Payload: DeserializeOwned + ToSchema;
    /// The reply's `data`.
    type Reply: Serialize + ToSchema;

    fn handle(
        ctx: &Ctx<'_>,
        payload: Self::Payload,
    ) -> impl Future<Output = Result<Self::Reply, HandlerError>>;
}

type Call = for<'a> fn(&'a Ctx<'a>, Value) -> LocalBoxFuture<'a, Result<Value, HandlerError>>;

struct Entry {
    permission: Option<Permission>,
    call: Call,
    /// This type's `tether_ws_messages_total` counters, resolved once.
    counters: MessageCounters,
    doc: fn() -> HandlerDoc,
}

/// A registered type as the AsyncAPI document describes it.
pub struct HandlerDoc {
    pub kind: &'static str,
    pub permission: Option<Permission>,
    pub summary: &'static str,
    pub payload: TypeSchema,
    pub reply: TypeSchema,
}

/// A type's JSON schema (inline), and the named schemas it refers to.
pub struct TypeSchema {
    pub schema: RefOr<Schema>,
    pub components: Vec<(String, RefOr<Schema>)>,
}

impl TypeSchema {
    pub fn of<T: ToSchema>() -> Self {
        let mut components = Vec::new();
        T::schemas(&mut components);
        Self {
            schema: T::schema(),
            components,
        }
    }
}

fn doc<H: MessageHandler>() -> HandlerDoc {
    HandlerDoc {
        kind: H::TYPE,
        permission: H::PERMISSION,
        summary: H::SUMMARY,
        payload: TypeSchema::of::<H::Payload>(),
        reply: TypeSchema::of::<H::Reply>(),
    }
}

fn call<'a, H: MessageHandler>(
    ctx: &'a Ctx<'a>,
    data: Value,
) -> LocalBoxFuture<'a, Result<Value, HandlerError>> {
    Box::pin(async move {
        let payload: H::Payload = serde_json::from_value(data)
            .map_err(|e| HandlerError::bad_request(format!("invalid data for {}: {e}", H::TYPE)))?;
        let reply = H::handle(ctx, payload).await?;
        // The reply types are plain data; serialising them cannot fail.
        serde_json::to_value(reply).map_err(|e| HandlerError {
            code: ErrorCode::Internal,
            message: format!("reply of {} not serialisable: {e}", H::TYPE),
        })
    })
}

/// Message type → handler.
pub struct MessageHandlers {
    entries: HashMap<&'static str, Entry>,
    /// Counters of messages whose type is not registered (or unreadable).
    unknown: MessageCounters,
}

impl Default for MessageHandlers {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
            unknown: MessageCounters::detached(),
        }
    }
}

/// The outcome a reply's error code stands for.
fn outcome(code: ErrorCode) -> MessageOutcome {
    match code {
        ErrorCode::BadRequest => MessageOutcome::BadRequest,
        ErrorCode::UnknownType => MessageOutcome::UnknownType,
        ErrorCode::Forbidden => MessageOutcome::Forbidden,
        ErrorCode::Unavailable => MessageOutcome::Unavailable,
        ErrorCode::Internal => MessageOutcome::Internal,
        ErrorCode::RateLimited => MessageOutcome::RateLimited,
    }
}

impl MessageHandlers {
    /// Counts every message in `metrics`: one counter handle per (type,
    /// outcome) is resolved here, once, so counting a message is one atomic
    /// add on the message path.
    pub fn counted(mut self, metrics: &Metrics) -> Self {
        for (kind, entry) in &mut self.entries {
            entry.counters = metrics.message_counters(kind);
        }
        self.unknown = metrics.message_counters("unknown");
        self
    }

    /// Every type's counters and `unknown`'s (for the per-second series).
    pub fn counters(&self) -> Vec<MessageCounters> {
        let types = self.entries.values().map(|e| e.counters.clone());
        types.chain([self.unknown.clone()]).collect()
    }

    /// Counts a message answered outside [`MessageHandlers::dispatch`]
    /// (unparsable, over the rate, permissions unknown); `kind` is its
    /// `type` if one could be read.
    pub fn count_refused(&self, kind: Option<&str>, code: ErrorCode) {
        let counters = kind
            .and_then(|k| self.entries.get(k))
            .map_or(&self.unknown, |e| &e.counters);
        counters.record(outcome(code));
    }

    pub fn register<H: MessageHandler>(mut self) -> Self {
        let previous = self.entries.insert(
            H::TYPE,
            Entry {
                permission: H::PERMISSION,
                call: call::<H>,
                counters: MessageCounters::detached(),
                doc: doc::<H>,
            },
        );
        assert!(
            previous.is_none(),
            "message type {} registered twice",
            H::TYPE
        );
        self
    }

    /// Every registered type, sorted by `type`, for the AsyncAPI document.
    pub fn docs(&self) -> Vec<HandlerDoc> {
        let mut docs: Vec<HandlerDoc> = self.entries.values().map(|e| (e.doc)()).collect();
        docs.sort_by_key(|d| d.kind);
        docs
    }

    /// Handles one frame and produces its reply.
    pub async fn dispatch(&self, ctx: &Ctx<'_>, frame: ClientFrame) -> Reply {
        let Some(entry) = self.entries.get(frame.kind.as_str()) else {
            self.unknown.record(MessageOutcome::UnknownType);
            return Reply::error(
                Some(frame.id),
                ErrorCode::UnknownType,
                format!("unknown message type {:?}", frame.kind),
            );
        };
        if let Some(permission) = entry.permission {
            if !ctx.user.can(permission) {
                entry.counters.record(MessageOutcome::Forbidden);
                return Reply::error(Some(frame.id), ErrorCode::Forbidden, "Permission denied");
            }
        }
        match (entry.call)(ctx, frame.data).await {
            Ok(data) => {
                entry.counters.record(MessageOutcome::Ok);
                Reply::ok(frame.id, data)
            }
            Err(e) => {
                entry.counters.record(outcome(e.code));
                Reply::error(Some(frame.id), e.code, e.message)
            }
        }
    }
}
