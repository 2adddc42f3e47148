//! Close codes: every way the server closes a socket, with the code, the
//! reason text and when it happens, in one enum. `connection.rs` closes only
//! with one of these, and the AsyncAPI document lists them all.

/// Why the server closes a socket: the close code and reason text it sends
/// (`connection.rs` closes only with one of these), and when. The AsyncAPI
/// document lists [`CloseCause::ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseCause {
    SessionRevoked,
    MessageTooBig,
    HeartbeatTimeout,
    TooSlow,
    SessionStoreUnavailable,
    UserStoreUnavailable,
    ProtocolError,
    RateLimit,
    ShuttingDown,
}

impl CloseCause {
    pub const ALL: [CloseCause; 9] = [
        CloseCause::SessionRevoked,
        CloseCause::MessageTooBig,
        CloseCause::HeartbeatTimeout,
        CloseCause::TooSlow,
        CloseCause::SessionStoreUnavailable,
        CloseCause::UserStoreUnavailable,
        CloseCause::ProtocolError,
        CloseCause::RateLimit,
        CloseCause::ShuttingDown,
    ];

    pub const fn code(self) -> u16 {
        match self {
            CloseCause::SessionRevoked => super::CLOSE_SESSION_REVOKED,
            CloseCause::MessageTooBig => 1009,
            CloseCause::HeartbeatTimeout | CloseCause::ShuttingDown => 1001,
            CloseCause::TooSlow
            | CloseCause::SessionStoreUnavailable
            | CloseCause::UserStoreUnavailable => 1013,
            CloseCause::ProtocolError => 1002,
            CloseCause::RateLimit => 1008,
        }
    }

    /// The close frame's reason text.
    pub const fn reason(self) -> &'static str {
        match self {
            CloseCause::SessionRevoked => "session revoked",
            CloseCause::MessageTooBig => "message too big",
            CloseCause::HeartbeatTimeout => "heartbeat timeout",
            CloseCause::TooSlow => "too slow to keep up",
            CloseCause::SessionStoreUnavailable => "session store unavailable",
            CloseCause::UserStoreUnavailable => "user store unavailable",
            CloseCause::ProtocolError => "protocol error",
            CloseCause::RateLimit => "rate limit",
            CloseCause::ShuttingDown => "server shutting down",
        }
    }

    /// When it happens, for integrators.
    pub const fn when(self) -> &'static str {
        match self {
            CloseCause::SessionRevoked => "The session ended; `session.revoked` with the reason came just before. Do not reconnect without signing in.",
            CloseCause::MessageTooBig => "A message over `TETHER_WS_MAX_MESSAGE_BYTES` (fragments included).",
            CloseCause::HeartbeatTimeout => "Nothing (pongs included) heard from the client for longer than `TETHER_WS_CLIENT_TIMEOUT_SECS` (45 s).",
            CloseCause::TooSlow => "256 undelivered `chat.message` frames were queued for this socket.",
            CloseCause::SessionStoreUnavailable => "The idle deadline could not be checked against the session store.",
            CloseCause::UserStoreUnavailable => "The user's current permissions could not be re-read.",
            CloseCause::ProtocolError => "A WebSocket protocol violation.",
            CloseCause::RateLimit => "The socket stayed over its message rate (`TETHER_WS_MESSAGES_PER_SEC`) for 10 s in a row.",
            CloseCause::ShuttingDown => "SIGTERM or SIGINT: the server is stopping; sessions are untouched, so reconnect (to the next server).",
        }
    }
}
