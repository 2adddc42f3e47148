//! Starting a signed-in session for a user: the one path every way of
//! signing in (password, OpenID Connect) ends in, so the cookie, the session
//! record and what sockets rely on are the same whichever way was used.

use std::sync::Arc;

use actix_identity::Identity;
use actix_session::SessionExt as _;
use actix_web::{HttpMessage as _, HttpRequest};
use uuid::Uuid;

use super::UserAccess;
use crate::{
    error::ApiError,
    sessions::{
        client::{client_ip, user_agent},
        ClientMeta, ProviderLink,
    },
    state::AppState,
};

/// How the user proved who they are.
pub enum SignInMethod {
    Password,
    Provider(ProviderLink),
}

/// Starts a new session for `user_id` on this request's response: a fresh
/// session key (`Identity::login` renews it, so no session fixation; the
/// browser's earlier session is deleted), the client's IP and agent recorded
/// with it. `None` when the user is gone or disabled: no session is started.
pub async fn start_session(
    req: &HttpRequest,
    state: &AppState,
    user_id: Uuid,
    method: SignInMethod,
) -> Result<Option<Arc<UserAccess>>, ApiError> {
    let access = match state.access.get(user_id).await? {
        Some(access) if !access.disabled => access,
        _ => return Ok(None),
    };
    let internal = |e: actix_session::SessionInsertError| {
        ApiError::Internal(anyhow::anyhow!("session insert: {e}"))
    };
    // Nothing of an earlier sign-in of this browser (a provider link) carries over.
    req.get_session().clear();
    let ip = client_ip(req, &state.config.trusted_proxies);
    ClientMeta::new(ip, user_agent(req))
        .record(req)
        .map_err(internal)?;
    let via = match &method {
        SignInMethod::Password => "password".to_owned(),
        SignInMethod::Provider(link) => {
            link.record(req).map_err(internal)?;
            link.provider.clone()
        }
    };
    Identity::login(&req.extensions(), user_id.to_string())
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("login failed: {e}")))?;
    log::info!("event=login user_id={user_id} via={via}");
    Ok(Some(access))
}
