//! Extractors that authenticate a request, so the permission a handler needs
//! is visible in its signature: `CurrentUser` (signed in) and
//! `Authorized<P>` (signed in and holding permission `P`).

use std::{future::Future, marker::PhantomData, pin::Pin, sync::Arc};

use actix_web::{dev::Payload, web, FromRequest, HttpRequest};

use super::UserAccess;
use crate::{
    audit::{Action, Actor, AuditEvent},
    domain::Permission,
    error::ApiError,
    sessions::{client::audit_client, CurrentSession},
    state::AppState,
};

fn state(req: &HttpRequest) -> Result<web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("AppState not registered")))
}

/// A signed-in, enabled user with their current permissions.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub session: CurrentSession,
    pub access: Arc<UserAccess>,
}

impl CurrentUser {
    pub async fn from_request(req: &HttpRequest) -> Result<Self, ApiError> {
        let session = CurrentSession::from_request(req).ok_or(ApiError::Unauthenticated)?;
        let state = state(req)?;
        match state.access.get(session.user_id).await? {
            Some(access) if !access.disabled => Ok(Self { session, access }),
            // Deleted or disabled users keep no session.
            _ => Err(ApiError::Unauthenticated),
        }
    }
}

impl CurrentUser {
    /// This user, acting through this session, as the audit trail names them.
    pub fn actor(&self) -> Actor {
        Actor::user(self.access.id, &self.session.sid)
    }
}

/// An audit event of `action` by `actor`, from the client that sent `req`.
pub fn audit_event(req: &HttpRequest, action: Action, actor: Actor) -> AuditEvent {
    from_client(req, AuditEvent::new(action, actor))
}

/// `event`, with the client that sent `req`.
pub fn from_client(req: &HttpRequest, event: AuditEvent) -> AuditEvent {
    let client = match state(req) {
        Ok(state) => audit_client(req, &state.config.trusted_proxies),
        Err(_) => audit_client(req, &[]),
    };
    event.client(client)
}

impl FromRequest for CurrentUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { CurrentUser::from_request(&req).await })
    }
}

/// Names a permission at the type level, for [`Authorized`].
pub trait RequiredPermission {
    const PERMISSION: Permission;
}

/// Type-level permission names.
pub mod perm {
    use super::{Permission, RequiredPermission};

    macro_rules! marker {
        ($name:ident => $perm:ident) => {
            #[derive(Debug)]
            pub struct $name;
            impl RequiredPermission for $name {
                const PERMISSION: Permission = Permission::$perm;
            }
        };
    }
    marker!(ReadAdminMessages => ReadAdminMessages);
    marker!(AdminUsers => AdminUsers);
    marker!(AdminSessions => AdminSessions);
    marker!(AdminAudit => AdminAudit);
}

/// A signed-in user holding permission `P`; 401 if not signed in, 403 if not allowed.
#[derive(Debug)]
pub struct Authorized<P: RequiredPermission> {
    pub user: CurrentUser,
    _permission: PhantomData<P>,
}

impl<P: RequiredPermission + 'static> FromRequest for Authorized<P> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let user = CurrentUser::from_request(&req).await?;
            if !user.access.can(P::PERMISSION) {
                return Err(ApiError::Forbidden);
            }
            Ok(Self {
                user,
                _permission: PhantomData,
            })
        })
    }
}
