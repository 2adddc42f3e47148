//! `messages.public`, `messages.protected`, `messages.admin`: the same texts
//! and the same rule as the REST routes in `crate::demo_messages`.

use serde_json::{json, Value};

use super::NoData;
use crate::{
    demo_messages::MessageKind,
    domain::Permission,
    ws::dispatch::{Ctx, HandlerError, MessageHandler},
};

fn read(ctx: &Ctx<'_>, kind: MessageKind) -> Result<Value, HandlerError> {
    Ok(json!({ "text": kind.text(Some(ctx.user)) }))
}

pub struct Public;

impl MessageHandler for Public {
    const TYPE: &'static str = "messages.public";
    const PERMISSION: Option<Permission> = MessageKind::Public.permission();
    type Payload = NoData;

    async fn handle(ctx: &Ctx<'_>, _: NoData) -> Result<Value, HandlerError> {
        read(ctx, MessageKind::Public)
    }
}

pub struct Protected;

impl MessageHandler for Protected {
    const TYPE: &'static str = "messages.protected";
    const PERMISSION: Option<Permission> = MessageKind::Protected.permission();
    type Payload = NoData;

    async fn handle(ctx: &Ctx<'_>, _: NoData) -> Result<Value, HandlerError> {
        read(ctx, MessageKind::Protected)
    }
}

pub struct Admin;

impl MessageHandler for Admin {
    const TYPE: &'static str = "messages.admin";
    const PERMISSION: Option<Permission> = MessageKind::Admin.permission();
    type Payload = NoData;

    async fn handle(ctx: &Ctx<'_>, _: NoData) -> Result<Value, HandlerError> {
        read(ctx, MessageKind::Admin)
    }
}
