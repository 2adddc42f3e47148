//! Which tether sessions a verified logout token ends, and ending them.

use uuid::Uuid;

use super::{logout_token::Logout, provider::OidcProvider, store::digest};
use crate::{domain::EndReason, error::ApiError, sessions::ProviderLink, state::AppState};

/// The key under which a provider session's user is kept (for logout
/// tokens that name only the `sid`).
pub fn sid_key(provider: &str, sid: &str) -> String {
    format!("oidc:sid:{provider}:{}", digest(sid))
}

/// Ends the sessions `logout` names: with `sid`, those signed in through that
/// provider session; with only `sub`, all of that user's signed in through
/// this provider. Each ends with reason `logout` (sockets get
/// `session.revoked` and close with 4001 on every instance). Returns how many.
pub async fn end_sessions(
    state: &AppState,
    provider: &OidcProvider,
    logout: &Logout,
) -> Result<usize, ApiError> {
    let id = provider.config.id.as_str();
    let user_id = match (&logout.sub, &logout.sid) {
        (Some(sub), _) => {
            state
                .db
                .find_linked_user(&provider.config.issuer, sub)
                .await?
        }
        (None, Some(sid)) => {
            let found = state.oidc.store.get(&sid_key(id, sid)).await?;
            found.and_then(|u| Uuid::parse_str(&u).ok())
        }
        (None, None) => None,
    };
    let Some(user_id) = user_id else {
        return Ok(0);
    };
    let mut ended = 0;
    for (sid, stored) in state.sessions.list_user_sessions(user_id).await? {
        let Some(link) = ProviderLink::of(&stored) else {
            continue;
        };
        let same_session = logout.sid.is_none() || link.sid == logout.sid;
        if link.provider == id && same_session {
            state.sessions.revoke(&sid, EndReason::Logout).await?;
            ended += 1;
        }
    }
    Ok(ended)
}
