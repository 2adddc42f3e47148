//! `ping`: answers `"pong"`; lets clients measure round trips.

use serde_json::{json, Value};

use super::NoData;
use crate::{
    domain::Permission,
    ws::dispatch::{Ctx, HandlerError, MessageHandler},
};

pub struct Ping;

impl MessageHandler for Ping {
    const TYPE: &'static str = "ping";
    const PERMISSION: Option<Permission> = None;
    type Payload = NoData;

    async fn handle(_: &Ctx<'_>, _: NoData) -> Result<Value, HandlerError> {
        Ok(json!("pong"))
    }
}
