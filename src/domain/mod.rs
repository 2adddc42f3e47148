//! Domain newtypes, parsed once at the edge (HTTP body, CLI argument, WebSocket
//! payload) so the core never re-validates them.

mod end_reason;
mod password;
mod permission;
mod return_to;
mod role;
mod username;

pub use end_reason::{Disappearance, EndReason};
pub use password::Password;
pub use permission::{Permission, PermissionSet};
pub use return_to::ReturnTo;
pub use role::RoleName;
pub use username::Username;

/// Why a piece of input was refused; the message is safe to show the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);
