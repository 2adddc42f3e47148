//! A sign-in under way, from `start` to `callback`: its secrets kept on the
//! server under the `state` sent to the provider (10 minutes, usable once),
//! and the cookie that binds it to the browser that started it.

use actix_web::{
    cookie::{time::Duration as CookieDuration, Cookie, SameSite},
    HttpRequest,
};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};

use super::{
    store::{digest, OidcStore, StoreError},
    FLOW_TTL,
};

/// What the callback needs to finish a sign-in.
#[derive(Serialize, Deserialize)]
pub struct Flow {
    pub provider: String,
    /// SHA-256 of the binding cookie: only the browser that started the
    /// sign-in can finish it.
    binding: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub return_to: String,
}

impl Flow {
    pub fn new(
        provider: &str,
        binding: &Binding,
        nonce: String,
        pkce_verifier: String,
        return_to: String,
    ) -> Self {
        Self {
            provider: provider.to_owned(),
            binding: digest(&binding.value),
            nonce,
            pkce_verifier,
            return_to,
        }
    }

    /// Keeps the flow under `state` for [`FLOW_TTL`].
    pub async fn save(&self, store: &OidcStore, state: &str) -> Result<(), StoreError> {
        let record = serde_json::to_string(self).map_err(|e| StoreError::Unavailable(e.into()))?;
        store.put(&key(state), &record, FLOW_TTL).await
    }

    /// The flow kept under `state`, removed in the same step; `None` if
    /// there is none (never issued, expired, used) or it is unreadable.
    pub async fn take(store: &OidcStore, state: &str) -> Result<Option<Flow>, StoreError> {
        let record = store.take(&key(state)).await?;
        Ok(record.and_then(|r| serde_json::from_str(&r).ok()))
    }

    /// Whether `req` comes from the browser that started this flow.
    pub fn started_by(&self, req: &HttpRequest, secure: bool) -> bool {
        req.cookie(Binding::name(secure))
            .is_some_and(|c| digest(c.value()) == self.binding)
    }
}

fn key(state: &str) -> String {
    format!("oidc:flow:{}", digest(state))
}

/// The random value that ties sign-ins to one browser, in an HttpOnly
/// cookie (`tether_oidc`, `__Secure-tether_oidc` with Secure cookies).
pub struct Binding {
    value: String,
}

impl Binding {
    fn name(secure: bool) -> &'static str {
        if secure {
            "__Secure-tether_oidc"
        } else {
            "tether_oidc"
        }
    }

    /// The browser's binding, or a new one: one per browser, so sign-ins
    /// started in two tabs both finish.
    pub fn of(req: &HttpRequest, secure: bool) -> Self {
        let existing = req
            .cookie(Self::name(secure))
            .map(|c| c.value().to_owned())
            .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()));
        let value = existing.unwrap_or_else(|| {
            let mut bytes = [0u8; 32];
            rand::rng().fill_bytes(&mut bytes);
            hex::encode(bytes)
        });
        Self { value }
    }

    /// The cookie that (re)sets it: only sent to the OIDC routes, for as
    /// long as a flow lives.
    pub fn cookie(&self, secure: bool) -> Cookie<'static> {
        Cookie::build(Self::name(secure), self.value.clone())
            .path("/api/auth/oidc/")
            .http_only(true)
            .secure(secure)
            .same_site(SameSite::Lax)
            .max_age(CookieDuration::seconds(FLOW_TTL.as_secs() as i64))
            .finish()
    }
}
