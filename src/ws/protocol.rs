//! The wire protocol: client frames, replies, server events and error codes.
//! Tests decode with these same types, so a rename breaks them at compile time.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::domain::EndReason;

/// The `id` a client puts on a frame and gets back as `re`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum MessageId {
    #[schema(value_type = f64)]
    Number(serde_json::Number),
    Text(String),
}

/// `{"id":…,"type":"…","data":{…}}`, with `data` still untyped.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientFrame {
    pub id: MessageId,
    pub kind: String,
    pub data: Value,
}

/// A frame that could not be read: what to reply (`re` may be unknown).
#[derive(Debug, Clone, PartialEq)]
pub struct BadFrame {
    pub id: Option<MessageId>,
    pub message: String,
}

/// A well-formed frame's fields, read in one pass.
#[derive(Deserialize)]
struct Envelope {
    id: Value,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: Option<Value>,
}

impl ClientFrame {
    /// Reads a client frame, or says what is wrong with it.
    pub fn parse(text: &str) -> Result<ClientFrame, BadFrame> {
        Self::parse_well_formed(text).map_or_else(|| Self::parse_checked(text), Ok)
    }

    /// The common case, straight into [`Envelope`]: building a map of the
    /// whole frame first cost a third of the server's work per message
    /// (callgrind). `None` for anything unusual, which
    /// [`Self::parse_checked`] then reads, or explains in its error reply.
    fn parse_well_formed(text: &str) -> Option<ClientFrame> {
        // serde would also accept a struct written as a JSON array.
        if !text.trim_start().starts_with('{') {
            return None;
        }
        let envelope: Envelope = serde_json::from_str(text).ok()?;
        let id = match envelope.id {
            Value::Number(n) => MessageId::Number(n),
            Value::String(s) => MessageId::Text(s),
            _ => return None,
        };
        let data = match envelope.data {
            None => Value::Object(Default::default()),
            Some(data @ Value::Object(_)) => data,
            Some(_) => return None,
        };
        Some(ClientFrame {
            id,
            kind: envelope.kind,
            data,
        })
    }

    fn parse_checked(text: &str) -> Result<ClientFrame, BadFrame> {
        let bad = |id: Option<MessageId>, message: &str| BadFrame {
            id,
            message: message.to_owned(),
        };
        let value: Value =
            serde_json::from_str(text).map_err(|_| bad(None, "frame is not valid JSON"))?;
        let Value::Object(mut obj) = value else {
            return Err(bad(None, "frame must be a JSON object"));
        };
        let id = match obj.remove("id") {
            Some(Value::Number(n)) => Some(MessageId::Number(n)),
            Some(Value::String(s)) => Some(MessageId::Text(s)),
            _ => None,
        };
        let Some(id) = id else {
            return Err(bad(None, "\"id\" must be a number or a string"));
        };
        let kind = match obj.remove("type") {
            Some(Value::String(kind)) => kind,
            _ => return Err(bad(Some(id), "\"type\" must be a string")),
        };
        let data = match obj.remove("data") {
            None | Some(Value::Null) => Value::Object(Default::default()),
            Some(data @ Value::Object(_)) => data,
            Some(_) => return Err(bad(Some(id), "\"data\" must be an object")),
        };
        Ok(ClientFrame { id, kind, data })
    }
}

/// Stable error codes of failed replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ReplyErrorCode)]
pub enum ErrorCode {
    /// Not a well-formed frame, a binary frame, or `data` that does not fit the type.
    BadRequest,
    /// No handler has this `type`.
    UnknownType,
    /// The user lacks the type's permission now.
    Forbidden,
    /// The user store did not answer while permissions were re-read.
    Unavailable,
    /// Reserved: no built-in handler returns it.
    Internal,
    /// Over the socket's message rate: the message was not handled.
    RateLimited,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 6] = [
        ErrorCode::BadRequest,
        ErrorCode::UnknownType,
        ErrorCode::Forbidden,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
        ErrorCode::RateLimited,
    ];

    /// When a reply carries it, for the AsyncAPI document.
    pub const fn when(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "The frame is not JSON, not an object, has no number or string `id`, no string `type`, or a non-object `data`; a binary frame; or `data` that does not fit the type (`invalid data for TYPE: …`). `re` is `null` when no `id` could be read.",
            ErrorCode::UnknownType => "No handler has this `type`.",
            ErrorCode::Forbidden => "The user lacks the type's permission now (`Permission denied`).",
            ErrorCode::Unavailable => "The user store did not answer while current permissions were being re-read: the message is refused, not served on stale permissions.",
            ErrorCode::Internal => "Reserved. No built-in handler returns it.",
            ErrorCode::RateLimited => "Over the socket's message rate (`TETHER_WS_MESSAGES_PER_SEC`, burst `TETHER_WS_MESSAGE_BURST`): the message was not handled (`Too many messages`).",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = ReplyError)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
}

/// `{"re":…,"ok":true,"data":…}` or `{"re":…,"ok":false,"error":{…}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Reply {
    pub re: Option<MessageId>,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub data: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

impl Reply {
    pub fn ok(re: MessageId, data: Value) -> Self {
        Self {
            re: Some(re),
            ok: true,
            data: Some(data),
            error: None,
        }
    }

    pub fn error(re: Option<MessageId>, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            re,
            ok: false,
            data: None,
            error: Some(ErrorBody {
                code,
                message: message.into(),
            }),
        }
    }
}

pub use crate::{auth::UserJson, sessions::SessionJson};

/// Which deadline `session.expiring` warns of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExpiringKind {
    /// The session lapses unless there is activity (`session.refresh`).
    Idle,
    /// The session's fixed lifetime ends; nothing extends it.
    Absolute,
}

/// Events the server pushes: `{"event":"…","data":{…}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "event", content = "data")]
pub enum ServerEvent {
    /// The first frame on every socket: who is signed in, and the session.
    #[serde(rename = "hello")]
    Hello {
        user: UserJson,
        session: SessionJson,
    },
    /// The session ended; a 4001 close follows. `logout`: the user signed out
    /// this or another device (or signed in again from this browser);
    /// `admin`: an admin or `tether sessions revoke`; `expired`: the idle or
    /// absolute deadline; `password_changed`; `disabled`; `deleted`: gone
    /// from the store with no reason recorded.
    #[serde(rename = "session.revoked")]
    SessionRevoked { reason: EndReason },
    /// Sent once before a deadline (`TETHER_SESSION_EXPIRING_NOTICE_SECS`
    /// ahead, or at once if less is left). For `idle`, a `session.refresh`
    /// (or any message) extends the session.
    #[serde(rename = "session.expiring")]
    SessionExpiring { in_secs: u64, kind: ExpiringKind },
    /// The user's permission set changed; it applies from the next message on.
    #[serde(rename = "permissions.changed")]
    PermissionsChanged { permissions: Vec<String> },
    /// A `chat.send` on any instance, to every socket whose user holds
    /// `chat:read` at delivery time, the sender's included.
    #[serde(rename = "chat.message")]
    ChatMessage {
        room: String,
        from: String,
        text: String,
        at: String,
    },
}

impl ServerEvent {
    pub fn to_text(&self) -> String {
        // Serialising these plain structs cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Anything the server sends as text, for clients that decode one type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ServerFrame {
    Reply(Reply),
    Event(ServerEvent),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_parse_or_say_what_is_wrong() {
        let f = ClientFrame::parse(r#"{"id":1,"type":"ping"}"#).unwrap();
        assert_eq!(f.kind, "ping");
        assert_eq!(f.data, serde_json::json!({}));
        let f = ClientFrame::parse(r#"{"id":"a","type":"x","data":{"k":1}}"#).unwrap();
        assert_eq!(f.id, MessageId::Text("a".into()));

        assert_eq!(ClientFrame::parse("nope").unwrap_err().id, None);
        assert_eq!(ClientFrame::parse("[1]").unwrap_err().id, None);
        assert_eq!(
            ClientFrame::parse(r#"{"type":"ping"}"#).unwrap_err().id,
            None
        );
        let e = ClientFrame::parse(r#"{"id":7,"type":3}"#).unwrap_err();
        assert_eq!(e.id, Some(MessageId::Number(7.into())));
        assert!(ClientFrame::parse(r#"{"id":7,"type":"x","data":5}"#).is_err());
    }

    /// The one-pass reader and the checked one agree on every frame, good or bad.
    #[test]
    fn the_fast_path_reads_frames_exactly_as_the_checked_one() {
        let frames = [
            r#"{"id":1,"type":"ping"}"#,
            r#"  {"id":1.5,"type":"ping","data":null}"#,
            r#"{"type":"chat.send","data":{"room":"r","text":"é\"x"},"id":"abc"}"#,
            r#"{"id":-3,"type":"x","data":{},"extra":[1,{"a":2}]}"#,
            r#"{"id":1,"id":2,"type":"dup"}"#,
            r#"{"id":1,"type":"a","type":"b"}"#,
            r#"[1,"ping",{}]"#,
            r#"{"id":true,"type":"ping"}"#,
            r#"{"id":null,"type":"ping"}"#,
            r#"{"id":1,"type":null}"#,
            r#"{"id":1}"#,
            r#"{"id":1,"type":"x","data":[1]}"#,
            r#"{"id":1,"type":"x","data":"s"}"#,
            r#"{"id":1,"type":"x"} trailing"#,
            r#"{"id":1,"type":"x""#,
            "",
            "null",
            "{}",
        ];
        for text in frames {
            let checked = ClientFrame::parse_checked(text);
            assert_eq!(ClientFrame::parse(text), checked, "{text}");
            if let Some(fast) = ClientFrame::parse_well_formed(text) {
                assert_eq!(Ok(fast), checked, "{text}");
            }
        }
        assert!(ClientFrame::parse_well_formed(r#"{"id":1,"type":"ping"}"#).is_some());
    }

    #[test]
    fn replies_and_events_have_the_documented_shape() {
        let r = Reply::error(None, ErrorCode::BadRequest, "x");
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            serde_json::json!({"re":null,"ok":false,"error":{"code":"bad_request","message":"x"}})
        );
        let e = ServerEvent::SessionRevoked {
            reason: EndReason::Logout,
        };
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({"event":"session.revoked","data":{"reason":"logout"}})
        );
        let e = ServerEvent::SessionExpiring {
            in_secs: 60,
            kind: ExpiringKind::Absolute,
        };
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({"event":"session.expiring","data":{"in_secs":60,"kind":"absolute"}})
        );
    }

    mod fuzz {
        use proptest::prelude::*;
        use serde_json::Value;

        use super::super::ClientFrame;

        /// JSON of any shape, with the envelope's field names over-represented.
        fn json() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<f64>().prop_map(
                    |f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
                ),
                ".{0,12}".prop_map(Value::from),
            ];
            leaf.prop_recursive(4, 32, 6, |inner| {
                let key = prop_oneof![
                    Just("id".to_owned()),
                    Just("type".to_owned()),
                    Just("data".to_owned()),
                    "[a-z]{1,4}",
                ];
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    prop::collection::vec((key, inner), 0..5)
                        .prop_map(|fields| Value::Object(fields.into_iter().collect())),
                ]
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn any_text_is_read_or_explained_the_same_way_by_both_readers(text in "\\PC{0,64}") {
                prop_assert_eq!(ClientFrame::parse(&text), ClientFrame::parse_checked(&text));
            }

            #[test]
            fn any_json_is_read_or_explained_the_same_way_by_both_readers(value in json()) {
                let text = value.to_string();
                let read = ClientFrame::parse(&text);
                prop_assert_eq!(&read, &ClientFrame::parse_checked(&text));
                if let Ok(frame) = read {
                    // What was read is what was sent.
                    prop_assert_eq!(Some(&Value::String(frame.kind)), value.get("type"));
                }
            }
        }
    }
}
