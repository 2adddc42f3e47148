//! `AppState`: what every handler and socket shares. It lives on a low floor
//! of its own so that routes and sockets never import `startup`, which
//! builds it.

use std::sync::Arc;

use crate::{
    audit::Audit,
    auth::{throttle::LoginThrottle, AccessCache, Hasher},
    config::Config,
    db::Db,
    metrics::Metrics,
    oidc::Oidc,
    sessions::Sessions,
    stats::LiveStats,
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
    /// This process's metrics (`metrics`), and the per-second series made of them.
    pub metrics: Arc<Metrics>,
    pub stats: LiveStats,
    /// The audit trail (`crate::audit`).
    pub audit: Audit,
    /// OpenID Connect providers and their short-lived records.
    pub oidc: Arc<Oidc>,
}
