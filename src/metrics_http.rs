//! The HTTP side of metrics: the middleware that counts every request (and,
//! from their answers, sign-ins and WebSocket upgrades), and the separate
//! listener that serves `GET /metrics` (`TETHER_METRICS_BIND`), never the
//! main one.

use std::{net::SocketAddr, sync::Arc, time::Instant};

use actix_web::{
    body::MessageBody,
    dev::{Server, ServiceRequest, ServiceResponse},
    http::{header::ContentType, Method},
    middleware::Next,
    web, App, Error, HttpResponse, HttpServer,
};

use crate::{
    metrics::{LoginOutcome, Metrics, UpgradeOutcome},
    state::AppState,
    stats::SocketCount,
};

/// The `route` label of requests no route pattern matched: the browser
/// app's files and unknown paths (never the raw path: unbounded).
pub const UNMATCHED: &str = "unmatched";

/// Counts the request by its matched route pattern, method and status. Its
/// status also tells how a sign-in or an upgrade went: each status of those
/// two routes stands for one outcome (README "Errors"), so they are counted
/// here rather than at every early return of their handlers.
pub async fn record(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next.call(req).await;
    };
    let started = Instant::now();
    let route = req.match_pattern();
    let method = method_label(req.method());
    let result = next.call(req).await;
    let status = match &result {
        Ok(res) => res.status(),
        Err(e) => e.as_response_error().status_code(),
    };
    let route = route.as_deref().unwrap_or(UNMATCHED);
    let metrics = &state.metrics;
    metrics.http_request(
        route,
        method,
        status.as_str(),
        started.elapsed().as_secs_f64(),
    );
    match (route, method) {
        ("/api/auth/login", "POST") => metrics.login(LoginOutcome::from_status(status.as_u16())),
        ("/ws", "GET") => metrics.upgrade(UpgradeOutcome::from_status(status.as_u16())),
        _ => {}
    }
    result
}

/// Methods by name; anything else is `other` (a label must stay bounded).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The metrics listener: `GET /metrics` in the text exposition format 0.0.4,
/// 404 for anything else. One worker: a scrape every few seconds needs no more.
/// `open_sockets` is read at each scrape for `tether_ws_connections`.
pub fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    open_sockets: SocketCount,
) -> std::io::Result<(Server, u16)> {
    let listener = std::net::TcpListener::bind(addr)?;
    let port = listener.local_addr()?.port();
    let server = HttpServer::new(move || {
        let metrics = metrics.clone();
        let open_sockets = open_sockets.clone();
        App::new()
            .route(
                "/metrics",
                web::get().to(move || {
                    let metrics = metrics.clone();
                    let open_sockets = open_sockets.clone();
                    async move {
                        metrics.ws_connections.set(open_sockets() as i64);
                        HttpResponse::Ok()
                            .content_type(ContentType(
                                "text/plain; version=0.0.4; charset=utf-8"
                                    .parse()
                                    .expect("a valid media type"),
                            ))
                            .body(metrics.render())
                    }
                }),
            )
            .default_service(web::to(|| async { HttpResponse::NotFound().finish() }))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)?
    .run();
    Ok((server, port))
}
