//! `whoami`: the user and session, with current roles and permissions.

use serde_json::{json, Value};

use super::NoData;
use crate::{
    domain::Permission,
    sessions::SessionJson,
    ws::dispatch::{Ctx, HandlerError, MessageHandler},
};

pub struct WhoAmI;

impl MessageHandler for WhoAmI {
    const TYPE: &'static str = "whoami";
    const PERMISSION: Option<Permission> = None;
    type Payload = NoData;

    async fn handle(ctx: &Ctx<'_>, _: NoData) -> Result<Value, HandlerError> {
        Ok(json!({
            "user": ctx.user.to_json(),
            "session": SessionJson::from(ctx.session),
        }))
    }
}
