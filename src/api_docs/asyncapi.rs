//! The AsyncAPI 3.0 document of the WebSocket at `/ws`, built from the
//! protocol's own types: every registered message type (the dispatcher's
//! registry: `type`, permission, `Payload`, `Reply`), every [`ServerEvent`]
//! variant (from its schema), the reply error codes ([`ErrorCode`]) and the
//! close codes ([`CloseCause::ALL`]). A new handler or event appears here
//! without any edit to this file.

use serde_json::{json, Map, Value};
use utoipa::{
    openapi::{RefOr, Schema},
    PartialSchema, ToSchema,
};

use super::openapi::SESSION_COOKIE;
use crate::{
    config::Config,
    ws::{
        close::CloseCause,
        dispatch::{HandlerDoc, MessageHandlers, TypeSchema},
        protocol::{ErrorBody, ErrorCode, MessageId, ServerEvent},
    },
};

const CHANNEL: &str = "socket";

/// The document for this configuration, its server at `origin`
/// (`http(s)://host[:port]`, the public URL or the address asked).
pub fn document(config: &Config, handlers: &MessageHandlers, origin: &str) -> Value {
    let mut schemas = Map::new();
    let mut messages = Map::new();
    let mut operations = Map::new();
    add_named::<MessageId>(&mut schemas);
    add_named::<ErrorBody>(&mut schemas);

    for handler in handlers.docs() {
        add_request_type(handler, &mut schemas, &mut messages, &mut operations);
    }
    messages.insert("error".into(), error_reply_message());
    operations.insert(
        "receiveErrorReply".into(),
        json!({
            "action": "receive",
            "channel": { "$ref": format!("#/channels/{CHANNEL}") },
            "summary": "A failed reply to a frame that could not be read (`re` may be `null`) or to any request.",
            "messages": [{ "$ref": format!("#/channels/{CHANNEL}/messages/error") }],
        }),
    );
    for event in server_events(&mut schemas) {
        let name = format!("event.{}", event.name);
        messages.insert(name.clone(), event_message(&event));
        operations.insert(
            operation_id("receive", &event.name),
            json!({
                "action": "receive",
                "channel": { "$ref": format!("#/channels/{CHANNEL}") },
                "summary": format!("The server pushes `{}`.", event.name),
                "messages": [{ "$ref": format!("#/channels/{CHANNEL}/messages/{name}") }],
            }),
        );
    }

    let channel_messages: Map<String, Value> = messages
        .keys()
        .map(|name| {
            (
                name.clone(),
                json!({ "$ref": format!("#/components/messages/{name}") }),
            )
        })
        .collect();
    let (protocol, host) = match origin.split_once("://") {
        Some(("https", host)) => ("wss", host),
        Some((_, host)) => ("ws", host),
        None => ("ws", origin),
    };
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "tether WebSocket",
            "version": env!("CARGO_PKG_VERSION"),
            "description": INFO,
        },
        "defaultContentType": "application/json",
        "servers": {
            "tether": {
                "host": host,
                "protocol": protocol,
                "description": "The same origin as the REST API (`/api/openapi.json`).",
                "security": [{ "$ref": format!("#/components/securitySchemes/{SESSION_COOKIE}") }],
            }
        },
        "channels": {
            CHANNEL: {
                "address": "/ws",
                "title": "The authenticated socket",
                "description": UPGRADE,
                "messages": channel_messages,
                "x-tether-close-codes": close_codes(),
            }
        },
        "operations": operations,
        "components": {
            "schemas": schemas,
            "messages": messages,
            "securitySchemes": {
                SESSION_COOKIE: {
                    "type": "httpApiKey",
                    "in": "cookie",
                    "name": config.cookie_name(),
                    "description": "The session cookie set by `POST /api/auth/login`; the upgrade without it is refused (401).",
                }
            },
        },
    })
}

const INFO: &str = "Every message is a JSON text frame. A client frame is \
`{\"id\":1,\"type\":\"ping\",\"data\":{}}`: `id` (number or string) comes back as `re`; `data` is an object, \
absent or `null` meaning `{}`. Every frame gets one reply, `{\"re\",\"ok\":true,\"data\"}` or \
`{\"re\",\"ok\":false,\"error\":{\"code\",\"message\"}}`; a bad frame never closes the socket. \
Each type's permission (`x-tether-permission` on its operation) is checked against the user's \
permissions as they are now, for every message. The server also pushes events \
`{\"event\",\"data\"}` and closes with the codes in the channel's `x-tether-close-codes`.";

const UPGRADE: &str =
    "`GET /ws` with the session cookie. An `Origin`, if sent, must be the public URL \
or in `TETHER_ALLOWED_ORIGINS` (else HTTP 403 `forbidden`); no valid session is HTTP 401 \
`unauthenticated`; a socket cap reached is HTTP 429 `rate_limited`; not a handshake is 400. \
The first frame is the `hello` event. The server pings every 15 s and closes (1001) a socket \
silent for 45 s. Close codes: see `x-tether-close-codes`.";

/// A named schema and those it refers to, into `components.schemas`.
fn add_named<T: ToSchema>(schemas: &mut Map<String, Value>) {
    let mut deps = Vec::new();
    T::schemas(&mut deps);
    deps.push((T::name().into_owned(), T::schema()));
    add_components(schemas, deps);
}

fn add_components(schemas: &mut Map<String, Value>, deps: Vec<(String, RefOr<Schema>)>) {
    for (name, schema) in deps {
        schemas.insert(name, to_json(&schema));
    }
}

fn to_json(schema: &RefOr<Schema>) -> Value {
    serde_json::to_value(schema).unwrap_or_else(|_| json!({}))
}

/// `sendChatSend`, `receiveSessionRevoked`: an operation id from a dotted name.
fn operation_id(action: &str, name: &str) -> String {
    let mut id = action.to_owned();
    for part in name.split(['.', '_']) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            id.extend(first.to_uppercase());
            id.push_str(chars.as_str());
        }
    }
    id
}

fn take(schemas: &mut Map<String, Value>, typed: TypeSchema) -> Value {
    add_components(schemas, typed.components);
    to_json(&typed.schema)
}

/// One request type: its frame message, its reply message, and the `send`
/// operation with the reply and the permission.
fn add_request_type(
    handler: HandlerDoc,
    schemas: &mut Map<String, Value>,
    messages: &mut Map<String, Value>,
    operations: &mut Map<String, Value>,
) {
    let kind = handler.kind;
    let payload = take(schemas, handler.payload);
    let reply = take(schemas, handler.reply);
    let permission = handler.permission.map(|p| p.as_str());
    let needs = match permission {
        Some(p) => format!("Needs `{p}`: without it the reply is `forbidden`."),
        None => "Any signed-in user.".to_owned(),
    };
    messages.insert(
        kind.to_owned(),
        json!({
            "name": kind,
            "title": format!("`{kind}` request"),
            "summary": handler.summary,
            "description": needs,
            "payload": {
                "type": "object",
                "required": ["id", "type"],
                "properties": {
                    "id": { "$ref": "#/components/schemas/MessageId" },
                    "type": { "type": "string", "const": kind },
                    "data": payload,
                },
            },
        }),
    );
    let reply_name = format!("{kind}.reply");
    messages.insert(
        reply_name.clone(),
        json!({
            "name": reply_name,
            "title": format!("Reply to `{kind}`"),
            "payload": {
                "oneOf": [
                    {
                        "type": "object",
                        "required": ["re", "ok", "data"],
                        "properties": {
                            "re": { "$ref": "#/components/schemas/MessageId" },
                            "ok": { "const": true },
                            "data": reply,
                        },
                    },
                    failed_reply_schema(),
                ],
            },
        }),
    );
    let mut operation = json!({
        "action": "send",
        "channel": { "$ref": format!("#/channels/{CHANNEL}") },
        "summary": handler.summary,
        "description": needs,
        "messages": [{ "$ref": format!("#/channels/{CHANNEL}/messages/{kind}") }],
        "reply": {
            "channel": { "$ref": format!("#/channels/{CHANNEL}") },
            "messages": [{ "$ref": format!("#/channels/{CHANNEL}/messages/{reply_name}") }],
        },
    });
    if let Some(p) = permission {
        operation["x-tether-permission"] = json!(p);
    }
    operations.insert(operation_id("send", kind), operation);
}

fn failed_reply_schema() -> Value {
    json!({
        "type": "object",
        "required": ["re", "ok", "error"],
        "properties": {
            "re": { "oneOf": [{ "$ref": "#/components/schemas/MessageId" }, { "type": "null" }] },
            "ok": { "const": false },
            "error": { "$ref": "#/components/schemas/ReplyError" },
        },
    })
}

/// The failed reply on its own, with what each code means.
fn error_reply_message() -> Value {
    let codes: Vec<Value> = ErrorCode::ALL
        .iter()
        .map(|code| json!({ "code": code, "when": code.when() }))
        .collect();
    json!({
        "name": "error",
        "title": "Failed reply",
        "summary": "`ok: false` with a stable code; `re` is `null` when no `id` could be read.",
        "payload": failed_reply_schema(),
        "x-tether-error-codes": codes,
    })
}

/// Each [`ServerEvent`] variant's name and `data` schema, read from the
/// enum's own schema (one `oneOf` branch per variant).
fn server_events(schemas: &mut Map<String, Value>) -> Vec<ServerEventDoc> {
    let mut deps = Vec::new();
    ServerEvent::schemas(&mut deps);
    add_components(schemas, deps);
    let schema = to_json(&<ServerEvent as PartialSchema>::schema());
    let branches = schema
        .get("oneOf")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    branches
        .into_iter()
        .filter_map(|branch| {
            let properties = branch.get("properties")?;
            let name = properties
                .get("event")
                .and_then(|e| e.get("enum"))
                .and_then(|e| e.get(0))
                .and_then(Value::as_str)?
                .to_owned();
            let description = branch.get("description").cloned().unwrap_or(Value::Null);
            Some(ServerEventDoc {
                name,
                description,
                data: properties.get("data")?.clone(),
            })
        })
        .collect()
}

struct ServerEventDoc {
    name: String,
    /// From the variant's doc comment.
    description: Value,
    data: Value,
}

fn event_message(event: &ServerEventDoc) -> Value {
    let (name, data) = (&event.name, &event.data);
    json!({
        "name": name,
        "title": format!("`{name}` event"),
        "description": event.description,
        "payload": {
            "type": "object",
            "required": ["event", "data"],
            "properties": {
                "event": { "type": "string", "const": name },
                "data": data,
            },
        },
    })
}

fn close_codes() -> Value {
    CloseCause::ALL
        .iter()
        .map(|c| json!({ "code": c.code(), "reason": c.reason(), "when": c.when() }))
        .collect()
}
