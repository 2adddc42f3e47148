//! The three demo messages and who may read them: one rule, used by the REST
//! routes here and by the WebSocket handlers in `ws/handlers/messages.rs`.

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    auth::{extractors::perm, Authorized, CurrentUser, UserAccess},
    domain::Permission,
    error_docs,
};

/// `{"text":"…"}`: a demo message, here and as the socket's reply.
#[derive(Serialize, ToSchema)]
pub struct MessageText {
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Public,
    Protected,
    Admin,
}

impl MessageKind {
    /// The permission needed beyond being signed in.
    pub const fn permission(self) -> Option<Permission> {
        match self {
            MessageKind::Public | MessageKind::Protected => None,
            MessageKind::Admin => Some(Permission::ReadAdminMessages),
        }
    }

    pub fn text(self, reader: Option<&UserAccess>) -> String {
        match (self, reader) {
            (MessageKind::Public, _) => "Hello, world. Anyone can read this.".into(),
            (MessageKind::Protected, Some(u)) => {
                format!("Hello, {}. Only signed-in users can read this.", u.username)
            }
            (MessageKind::Protected, None) => "Only signed-in users can read this.".into(),
            (MessageKind::Admin, _) => "Admin eyes only: you hold read:admin-messages.".into(),
        }
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/messages")
            .route("/public", web::get().to(public))
            .route("/protected", web::get().to(protected))
            .route("/admin", web::get().to(admin)),
    );
}

fn reply(kind: MessageKind, reader: Option<&UserAccess>) -> HttpResponse {
    HttpResponse::Ok().json(MessageText {
        text: kind.text(reader),
    })
}

/// The public message: anyone can read it.
#[utoipa::path(
    get, path = "/api/messages/public", tag = "messages", operation_id = "public_message",
    responses(
        (status = 200, description = "`Hello, world. Anyone can read this.`", body = MessageText),
        (status = 503, response = error_docs::Unavailable),
    ),
)]
async fn public() -> HttpResponse {
    reply(MessageKind::Public, None)
}

/// The protected message: any signed-in user.
#[utoipa::path(
    get, path = "/api/messages/protected", tag = "messages", operation_id = "protected_message",
    security(("session_cookie" = [])),
    responses(
        (status = 200, description = "`Hello, NAME. Only signed-in users can read this.`", body = MessageText),
        (status = 401, response = error_docs::Unauthenticated),
        (status = 503, response = error_docs::Unavailable),
    ),
)]
async fn protected(user: CurrentUser) -> HttpResponse {
    reply(MessageKind::Protected, Some(&user.access))
}

/// The admin message.
#[utoipa::path(
    get, path = "/api/messages/admin", tag = "messages", operation_id = "admin_message",
    security(("session_cookie" = ["read:admin-messages"])),
    responses(
        (status = 200, description = "`Admin eyes only: you hold read:admin-messages.`", body = MessageText),
        (status = 401, response = error_docs::Unauthenticated),
        (status = 403, response = error_docs::Forbidden),
        (status = 503, response = error_docs::Unavailable),
    ),
)]
async fn admin(auth: Authorized<perm::ReadAdminMessages>) -> HttpResponse {
    reply(MessageKind::Admin, Some(&auth.user.access))
}
