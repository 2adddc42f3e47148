//! `AppState`: what every handler and socket shares. It lives on a low floor
//! of its own so that routes and sockets never import `startup`, which
//! builds it.

use std::sync::Arc;

use crate::{
    auth::{throttle::LoginThrottle, AccessCache, Hasher},
    config::Config,
    db::Db,
    oidc::Oidc,
    sessions::Sessions,
    ws::{dispatch::MessageHandlers, Hub},
};

/// Shared by every handler and socket.
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub sessions: Sessions,
    pub access: Arc<AccessCache>,
    pub hasher: Hasher,
    pub throttle: LoginThrottle,
    pub hub: Arc<Hub>,
    /// Origins allowed to open the socket, with the port actually bound.
    pub allowed_origins: Vec<String>,
    pub ws_handlers: Arc<MessageHandlers>,
    /// OpenID Connect providers and their short-lived records.
    pub oidc: Arc<Oidc>,
}
