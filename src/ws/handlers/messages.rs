//! `messages.public`, `messages.protected`, `messages.admin`: the same texts
//! and the same rule as the REST routes in `crate::demo_messages`.

use super::NoData;
use crate::{
    demo_messages::{MessageKind, MessageText},
    domain::Permission,
    ws::dispatch::{Ctx, HandlerError, MessageHandler},
};

fn read(ctx: &Ctx<'_>, kind: MessageKind) -> Result<MessageText, HandlerError> {
    Ok(MessageText {
        text: kind.text(Some(ctx.user)),
    })
}

pub struct Public;

impl MessageHandler for Public {
    const TYPE: &'static str = "messages.public";
    const PERMISSION: Option<Permission> = MessageKind::Public.permission();
    const SUMMARY: &'static str = "The public message, as `GET /api/messages/public`.";
    type Payload = NoData;
    type Reply = MessageText;

    async fn handle(ctx: &Ctx<'_>, _: NoData) -> Result<MessageText, HandlerError> {
        read(ctx, MessageKind::Public)
    }
}

pub struct Protected;

impl MessageHandler for Protected {
    const TYPE: &'static str = "messages.protected";
    const PERMISSION: Option<Permission> = MessageKind::Protected.permission();
    const SUMMARY: &'static str = "The protected message, as `GET /api/messages/protected`.";
    type Payload = NoData;
    type Reply = MessageText;

    async fn handle(ctx: &Ctx<'_>, _: NoData) -> Result<MessageText, HandlerError> {
        read(ctx, MessageKind::Protected)
    }
}

pub struct Admin;

impl MessageHandler for Admin {
    const TYPE: &'static str = "messages.admin";
    const PERMISSION: Option<Permission> = MessageKind::Admin.permission();
    const SUMMARY: &'static str = "The admin message, as `GET /api/messages/admin`.";
    type Payload = NoData;
    type Reply = MessageText;

    async fn handle(ctx: &Ctx<'_>, _: NoData) -> Result<MessageText, HandlerError> {
        read(ctx, MessageKind::Admin)
    }
}
