//! `chat.send {"room","text"}` (needs `chat:write`): delivers `chat.message` to
//! every open socket, on every instance, whose user holds `chat:read`.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::{
    domain::Permission,
    events::Event,
    time::{now_ms, rfc3339},
    ws::dispatch::{Ctx, HandlerError, MessageHandler},
};

pub const MAX_ROOM_LEN: usize = 64;
pub const MAX_TEXT_LEN: usize = 2000;

#[derive(Debug, Deserialize)]
pub struct SendPayload {
    room: String,
    text: String,
}

pub struct Send;

impl MessageHandler for Send {
    const TYPE: &'static str = "chat.send";
    const PERMISSION: Option<Permission> = Some(Permission::ChatWrite);
    type Payload = SendPayload;

    async fn handle(ctx: &Ctx<'_>, p: SendPayload) -> Result<Value, HandlerError> {
        let room_ok = !p.room.is_empty()
            && p.room.len() <= MAX_ROOM_LEN
            && p.room
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !room_ok {
            return Err(HandlerError::bad_request(format!(
                "room must be 1-{MAX_ROOM_LEN} letters, digits, '-', '_' or '.'"
            )));
        }
        if p.text.trim().is_empty() || p.text.chars().count() > MAX_TEXT_LEN {
            return Err(HandlerError::bad_request(format!(
                "text must be 1-{MAX_TEXT_LEN} characters"
            )));
        }
        let at = rfc3339(now_ms());
        ctx.state
            .sessions
            .bus
            .publish(Event::Chat {
                room: p.room.clone(),
                from: ctx.user.username.clone(),
                text: p.text,
                at: at.clone(),
            })
            .await;
        Ok(json!({ "room": p.room, "at": at }))
    }
}
