//! `session.refresh`: extends the idle deadline in-band, without reconnecting
//! or an HTTP request. The absolute deadline never moves.

use serde::Serialize;

use super::NoData;
use crate::{
    domain::Permission,
    time::rfc3339,
    ws::dispatch::{Ctx, HandlerError, MessageHandler, SessionOutcome},
};

pub struct Refresh;

/// The new idle deadline.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Refreshed {
    /// RFC 3339 UTC.
    #[schema(format = DateTime)]
    pub expires_at: String,
}

impl MessageHandler for Refresh {
    const TYPE: &'static str = "session.refresh";
    const PERMISSION: Option<Permission> = None;
    const SUMMARY: &'static str = "Extends the idle deadline in-band; the absolute one never moves. If the session has already ended: `bad_request`, then the socket closes (4001 `expired`).";
    type Payload = NoData;
    type Reply = Refreshed;

    async fn handle(ctx: &Ctx<'_>, _: NoData) -> Result<Refreshed, HandlerError> {
        match ctx.state.sessions.touch(&ctx.session.sid).await {
            Ok(Some(expires_at)) => {
                ctx.session_outcome
                    .set(SessionOutcome::ExtendedTo(expires_at));
                Ok(Refreshed {
                    expires_at: rfc3339(expires_at),
                })
            }
            Ok(None) => {
                ctx.session_outcome.set(SessionOutcome::Ended);
                Err(HandlerError::bad_request("the session has ended"))
            }
            Err(e) => {
                log::error!("event=ws_refresh_failed error={e}");
                Err(HandlerError::unavailable())
            }
        }
    }
}
