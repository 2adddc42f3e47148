//! Sign-in through OpenID Connect providers beside passwords, ending in the
//! same session as a password sign-in (`auth::sign_in`), and back-channel
//! logout from those providers.
//!
//! `provider` (discovery, authorization URL, code exchange and ID token
//! checks), `logout_token`, `store` (short-lived records) and `flow` (a
//! sign-in under way) are below the application state; `linking` (who a
//! login is), `logout` (which sessions a logout ends) and `routes` are above it.

pub mod flow;
pub mod linking;
pub mod logout;
pub mod logout_token;
pub mod provider;
pub mod routes;
pub mod store;

use std::{sync::Arc, time::Duration};

use crate::{config::Config, db::Db, sessions::Sessions};
use provider::OidcProvider;
use store::OidcStore;

/// How long a sign-in under way may take, from `start` to `callback`.
pub const FLOW_TTL: Duration = Duration::from_secs(600);

/// The configured providers and their records.
pub struct Oidc {
    pub providers: Vec<Arc<OidcProvider>>,
    pub store: OidcStore,
}

impl Oidc {
    /// Builds every configured provider and starts its discovery (a failed
    /// first attempt is a warning; it is retried in the background).
    pub async fn start(
        config: &Config,
        public_origin: &str,
        sessions: &Sessions,
        db: &Db,
    ) -> anyhow::Result<Self> {
        check_default_roles(config, db).await?;
        let store = match sessions.redis_connection() {
            Some((conn, prefix)) => OidcStore::redis(conn, &prefix),
            None => OidcStore::memory(),
        };
        let providers = config
            .oidc_providers
            .iter()
            .map(|p| OidcProvider::new(p.clone(), public_origin).map(Arc::new))
            .collect::<anyhow::Result<Vec<_>>>()?;
        // All at once: start-up waits for the slowest provider's first
        // discovery (bounded), not for their sum.
        futures_util::future::join_all(providers.iter().map(|p| p.start_discovery())).await;
        Ok(Self { providers, store })
    }

    pub fn provider(&self, id: &str) -> Option<&Arc<OidcProvider>> {
        self.providers.iter().find(|p| p.config.id.as_str() == id)
    }
}

/// Every provider's `_DEFAULT_ROLES` must name roles the user store has:
/// otherwise every first sign-in through it would fail.
async fn check_default_roles(config: &Config, db: &Db) -> anyhow::Result<()> {
    if config.oidc_providers.is_empty() {
        return Ok(());
    }
    let known = db.role_names().await?;
    for provider in &config.oidc_providers {
        if let Some(unknown) = provider
            .default_roles
            .iter()
            .find(|r| !known.iter().any(|k| k == r.as_str()))
        {
            anyhow::bail!(
                "{}: unknown role {:?} (known: {})",
                provider.id.var("DEFAULT_ROLES"),
                unknown.as_str(),
                known.join(", ")
            );
        }
    }
    Ok(())
}
