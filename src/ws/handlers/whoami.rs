//! `whoami`: the user and session, with current roles and permissions.

use super::NoData;
use crate::{
    auth::Me,
    domain::Permission,
    sessions::SessionJson,
    ws::dispatch::{Ctx, HandlerError, MessageHandler},
};

pub struct WhoAmI;

impl MessageHandler for WhoAmI {
    const TYPE: &'static str = "whoami";
    const PERMISSION: Option<Permission> = None;
    const SUMMARY: &'static str =
        "The user (current roles and permissions) and the session, as `GET /api/auth/me`.";
    type Payload = NoData;
    type Reply = Me;

    async fn handle(ctx: &Ctx<'_>, _: NoData) -> Result<Me, HandlerError> {
        Ok(Me {
            user: ctx.user.to_json(),
            session: SessionJson::from(ctx.session),
        })
    }
}
