//! `chat.send {"room","text"}` (needs `chat:write`): delivers `chat.message` to
//! every open socket, on every instance, whose user holds `chat:read`.

use serde::{Deserialize, Serialize};

use crate::{
    domain::Permission,
    events::Event,
    time::{now_ms, rfc3339},
    ws::dispatch::{Ctx, HandlerError, MessageHandler},
};

pub const MAX_ROOM_LEN: usize = 64;
pub const MAX_TEXT_LEN: usize = 2000;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SendPayload {
    /// 1 to 64 characters from `A-Z a-z 0-9 - _ .`.
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,64}$")]
    room: String,
    /// 1 to 2000 characters, not blank.
    #[schema(min_length = 1, max_length = 2000)]
    text: String,
}

/// Where and when the message was sent.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Sent {
    pub room: String,
    /// RFC 3339 UTC.
    #[schema(format = DateTime)]
    pub at: String,
}

pub struct Send;

impl MessageHandler for Send {
    const TYPE: &'static str = "chat.send";
    const PERMISSION: Option<Permission> = Some(Permission::ChatWrite);
    const SUMMARY: &'static str = "Sends a chat message: every open socket (every instance) whose user holds `chat:read` gets `chat.message`, the sender's included.";
    type Payload = SendPayload;
    type Reply = Sent;

    async fn handle(ctx: &Ctx<'_>, p: SendPayload) -> Result<Sent, HandlerError> {
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
        Ok(Sent { room: p.room, at })
    }
}
