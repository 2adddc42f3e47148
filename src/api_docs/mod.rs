//! The API's contract, generated from the code: `GET /api/openapi.json`
//! (OpenAPI 3.1, from the handlers' `#[utoipa::path]` annotations and the
//! request/response types) and `GET /api/asyncapi.json` (AsyncAPI 3, from the
//! registered WebSocket handlers and the protocol types).
//!
//! Adding a REST route: annotate its handler with `#[utoipa::path(…)]` and
//! list it in [`openapi::RestApi`]'s `paths(…)`. `tests/api/api_docs.rs`
//! fails while a registered route is missing there (or a listed one is not
//! registered). A WebSocket type needs nothing here: its handler's `Payload`,
//! `Reply`, `PERMISSION` and `SUMMARY` are read from the registry.

pub mod asyncapi;
pub mod openapi;

use actix_web::{web, HttpRequest, HttpResponse};

use crate::{error_docs, state::AppState};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/openapi.json", web::get().to(openapi_json))
        .route("/api/asyncapi.json", web::get().to(asyncapi_json));
}

/// The REST API's OpenAPI 3.1 document (this one included).
#[utoipa::path(
    get, path = "/api/openapi.json", tag = "contract",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document.", content_type = "application/json", body = Object),
        (status = 503, response = error_docs::Unavailable),
    ),
)]
async fn openapi_json(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(openapi::document(&state.config))
}

/// The WebSocket protocol's AsyncAPI 3 document.
#[utoipa::path(
    get, path = "/api/asyncapi.json", tag = "contract",
    responses(
        (status = 200, description = "The AsyncAPI 3.0 document of `/ws`.", content_type = "application/json", body = Object),
        (status = 503, response = error_docs::Unavailable),
    ),
)]
async fn asyncapi_json(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let host = match &state.config.public_url {
        Some(url) => url.clone(),
        None => {
            let info = req.connection_info();
            format!("{}://{}", info.scheme(), info.host())
        }
    };
    HttpResponse::Ok().json(asyncapi::document(&state.config, &state.ws_handlers, &host))
}
