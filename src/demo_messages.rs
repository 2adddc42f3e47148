//! The three demo messages and who may read them: one rule, used by the REST
//! routes here and by the WebSocket handlers in `ws/handlers/messages.rs`.

use actix_web::{web, HttpResponse};

use crate::{
    auth::{extractors::perm, Authorized, CurrentUser, UserAccess},
    domain::Permission,
};

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
    HttpResponse::Ok().json(serde_json::json!({ "text": kind.text(reader) }))
}

async fn public() -> HttpResponse {
    reply(MessageKind::Public, None)
}

async fn protected(user: CurrentUser) -> HttpResponse {
    reply(MessageKind::Protected, Some(&user.access))
}

async fn admin(auth: Authorized<perm::ReadAdminMessages>) -> HttpResponse {
    reply(MessageKind::Admin, Some(&auth.user.access))
}
