//! `ping`: answers `"pong"`; lets clients measure round trips.

use serde::Serialize;

use super::NoData;
use crate::{
    domain::Permission,
    ws::dispatch::{Ctx, HandlerError, MessageHandler},
};

pub struct Ping;

/// The reply's data: the string `"pong"`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub enum Pong {
    #[serde(rename = "pong")]
    Pong,
}

impl MessageHandler for Ping {
    const TYPE: &'static str = "ping";
    const PERMISSION: Option<Permission> = None;
    const SUMMARY: &'static str = "Answers \"pong\" (round-trip check).";
    type Payload = NoData;
    type Reply = Pong;

    async fn handle(_: &Ctx<'_>, _: NoData) -> Result<Pong, HandlerError> {
        Ok(Pong::Pong)
    }
}
