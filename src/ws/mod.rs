//! The authenticated WebSocket at `GET /ws`.
//!
//! `route` checks Origin and session and upgrades; `connection` runs one task
//! per socket; `dispatch` parses frames, checks permissions and replies once
//! for every message type; `handlers/` holds one file per type; `hub` knows
//! which sockets are open; `live/` carries events (revocation, permission
//! changes, chat) to them; `close` is every way the server closes a socket.

pub mod close;
pub mod connection;
pub mod deadlines;
pub mod dispatch;
pub mod handlers;
pub mod hub;
pub mod live;
pub mod protocol;
pub mod rate;
pub mod route;

pub use hub::Hub;

/// Close code sent when the session ends.
pub const CLOSE_SESSION_REVOKED: u16 = 4001;
/// Events queued for one socket before it counts as too slow and is closed.
pub const OUTBOX_CAPACITY: usize = 256;
