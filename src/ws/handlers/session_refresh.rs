//! `session.refresh`: extends the idle deadline in-band, without reconnecting
//! or an HTTP request. The absolute deadline never moves.

use serde_json::{json, Value};

use super::NoData;
use crate::{
    domain::Permission,
    time::rfc3339,
    ws::dispatch::{Ctx, HandlerError, MessageHandler, SessionOutcome},
};

pub struct Refresh;

impl MessageHandler for Refresh {
    const TYPE: &'static str = "session.refresh";
    const PERMISSION: Option<Permission> = None;
    type Payload = NoData;

    async fn handle(ctx: &Ctx<'_>, _: NoData) -> Result<Value, HandlerError> {
        match ctx.state.sessions.touch(&ctx.session.sid).await {
            Ok(Some(expires_at)) => {
                ctx.session_outcome
                    .set(SessionOutcome::ExtendedTo(expires_at));
                Ok(json!({ "expires_at": rfc3339(expires_at) }))
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
