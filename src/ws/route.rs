//! `GET /ws`: refuses before upgrading unless the Origin is allowed (defence
//! against cross-site WebSocket hijacking) and the session is valid.

use actix_web::{http::header, web, HttpRequest, HttpResponse};

use super::{
    connection::Connection,
    hub::{Caps, Refused},
    rate::MessageRate,
};
use crate::{
    audit::{Action, Actor},
    auth::{extractors::audit_event, CurrentSession, CurrentUser},
    error::{ApiError, ErrorBody},
    error_docs,
    state::AppState,
};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/ws", web::get().to(upgrade));
}

/// An absent Origin (non-browser client) is allowed; a present one must be listed.
fn check_origin(req: &HttpRequest, allowed: &[String]) -> Result<(), ApiError> {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().map_err(|_| ApiError::OriginNotAllowed)?;
    if allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)) {
        Ok(())
    } else {
        log::info!("event=ws_origin_refused origin={origin:?}");
        Err(ApiError::OriginNotAllowed)
    }
}

/// The caps this user's next socket must fit under: the user's cap counts
/// their sockets on other instances too (from the census, at most a refresh
/// old; exact on one instance). Refused here, before any upgrade work.
async fn caps(state: &AppState, user_id: uuid::Uuid) -> Result<Caps, ApiError> {
    let elsewhere = state
        .sessions
        .user_sockets_on(&state.hub.peers(), user_id)
        .await?;
    let config = &state.config;
    if elsewhere >= config.ws_max_per_user {
        return Err(ApiError::TooManyConnections);
    }
    Ok(Caps {
        per_session: config.ws_max_per_session,
        per_user_here: config.ws_max_per_user - elsewhere,
    })
}

/// Open the WebSocket.
///
/// The protocol on it (frames, replies, events, close codes) is the AsyncAPI
/// document at `/api/asyncapi.json`. The first frame is the `hello` event.
#[utoipa::path(
    get, path = "/ws", tag = "websocket", operation_id = "open_websocket",
    security(("session_cookie" = [])),
    responses(
        (status = 101, description = "Switching Protocols: the socket is open."),
        (status = 400, description = "`bad_request`: not a WebSocket handshake.", body = ErrorBody),
        (status = 401, response = error_docs::Unauthenticated),
        (status = 403, description = "`forbidden` (`Origin not allowed`): an `Origin` that is neither the public URL nor in `TETHER_ALLOWED_ORIGINS`. A request without `Origin` is allowed.", body = ErrorBody,
            example = json!({"error":{"code":"forbidden","message":"Origin not allowed"}})),
        (status = 429, description = "`rate_limited` (`Too many open connections`): the per-session or per-user socket cap is reached. No `Retry-After`.", body = ErrorBody,
            example = json!({"error":{"code":"rate_limited","message":"Too many open connections"}})),
        (status = 503, response = error_docs::Unavailable),
    ),
)]
async fn upgrade(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    open(req.clone(), body, state.clone())
        .await
        .inspect_err(|e| audit_refused(&req, &state, e))
}

/// Records a refused upgrade (bad origin, not signed in, a socket cap);
/// per-message refusals are not audited.
fn audit_refused(req: &HttpRequest, state: &AppState, e: &ApiError) {
    let reason = match e {
        ApiError::OriginNotAllowed => "origin",
        ApiError::Unauthenticated => "unauthenticated",
        ApiError::TooManyConnections => "cap",
        _ => return,
    };
    let session = CurrentSession::from_request(req);
    let actor = match &session {
        Some(s) => Actor::user(s.user_id, &s.sid),
        None => Actor::Anonymous,
    };
    let origin = req.headers().get(header::ORIGIN).map(|o| {
        let origin = String::from_utf8_lossy(o.as_bytes());
        origin.chars().take(256).collect::<String>()
    });
    let mut event = audit_event(req, Action::WsRefused, actor)
        .detail("reason", reason)
        .detail("origin", origin);
    if let Some(s) = session {
        event = event.target_user(s.user_id).target_session(&s.sid);
    }
    state.audit.record(event);
}

async fn open(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    check_origin(&req, &state.allowed_origins)?;
    let user = CurrentUser::from_request(&req).await?;
    let caps = caps(&state, user.access.id).await?;
    if state.hub.at_cap(&user.session.sid, user.access.id, caps) {
        return Err(ApiError::TooManyConnections);
    }
    let access_generation = state.access.generation();
    let (response, ws, stream) = actix_ws::handle(&req, body)
        .map_err(|e| ApiError::BadRequest(format!("not a WebSocket upgrade: {e}")))?;
    let max = state.config.ws_max_message_bytes;
    let stream = stream
        .max_frame_size(max)
        .aggregate_continuations()
        .max_continuation_size(max);
    // Checked again, atomically, as the socket registers (the caps above
    // were read before the upgrade).
    let registration = state
        .hub
        .register(&user.session.sid, user.access.id, caps)
        .map_err(|refused| match refused {
            Refused::TooMany => ApiError::TooManyConnections,
            Refused::ShuttingDown => ApiError::Unavailable(anyhow::anyhow!("server shutting down")),
        })?;
    log::debug!("event=ws_open sid={}", user.session.sid);
    let connection = Connection {
        state: state.clone(),
        ws,
        stream,
        registration,
        session: user.session,
        user: user.access,
        access_generation,
        rate: MessageRate::new(
            state.config.ws_messages_per_sec,
            state.config.ws_message_burst,
        ),
    };
    actix_web::rt::spawn(connection.run());
    Ok(response)
}
