//! Built-in message types, one file each. To add a type: write a file with a
//! `MessageHandler` impl and register it below. Nothing else changes.

pub mod chat;
pub mod messages;
pub mod ping;
pub mod session_refresh;
pub mod whoami;

use serde::Deserialize;

use super::dispatch::MessageHandlers;

/// Payload of types that take no data (`data` absent, null or `{}`; other
/// fields are ignored).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NoData {}

pub fn registry() -> MessageHandlers {
    MessageHandlers::default()
        .register::<ping::Ping>()
        .register::<whoami::WhoAmI>()
        .register::<messages::Public>()
        .register::<messages::Protected>()
        .register::<messages::Admin>()
        .register::<chat::Send>()
        .register::<session_refresh::Refresh>()
}
