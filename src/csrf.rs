//! Cross-site request forgery defence: one check in front of every route.
//!
//! `SameSite=Lax` alone lets a sibling subdomain (same *site*) post with the
//! user's cookie, so every unsafe request (anything but GET, HEAD, OPTIONS
//! and TRACE: sign-in and logout included) must come from an allowed origin.
//! Browsers say where a request comes from: `Origin` on every unsafe
//! request, `Sec-Fetch-Site` on every request of current ones. A present
//! `Origin` must be in `TETHER_ALLOWED_ORIGINS` or be the public URL's;
//! without one, a `Sec-Fetch-Site` of `cross-site` or `same-site` is refused.
//! A request with neither header (curl, the CLI, a server) is not from a
//! browser, so it carries no cookie a page could have made it send.
//!
//! Refused requests get 403 `forbidden` (`Origin not allowed`) before the
//! session is even loaded: nothing is changed, not even the idle deadline.
//! Safe methods are left alone; the WebSocket upgrade (a GET) checks its
//! `Origin` itself (`ws::route`).

use actix_web::{
    body::{EitherBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::{header, Method},
    middleware::Next,
    web, Error, HttpRequest,
};

use crate::{error::ApiError, state::AppState};

/// `Sec-Fetch-Site` (Fetch Metadata); a browser sends it, a page cannot set it.
const SEC_FETCH_SITE: &str = "sec-fetch-site";

pub async fn refuse_cross_site(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let allowed = match req.app_data::<web::Data<AppState>>() {
        Some(state) => is_allowed(req.request(), &state.allowed_origins),
        None => Err("no application state".to_owned()),
    };
    match allowed {
        Ok(()) => Ok(next.call(req).await?.map_into_left_body()),
        Err(why) => {
            log::info!(
                "event=cross_site_refused method={} path={:?} {why}",
                req.method(),
                req.path()
            );
            Ok(req
                .error_response(ApiError::OriginNotAllowed)
                .map_into_right_body())
        }
    }
}

fn is_safe(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// `Ok` when the request may go on; otherwise what gave it away, for the log.
fn is_allowed(req: &HttpRequest, allowed: &[String]) -> Result<(), String> {
    if is_safe(req.method()) {
        return Ok(());
    }
    let headers = req.headers();
    if let Some(origin) = headers.get(header::ORIGIN) {
        // `null` (a sandboxed frame, a redirect across origins) is never listed.
        return match origin.to_str() {
            Ok(o) if allowed.iter().any(|a| a.eq_ignore_ascii_case(o)) => Ok(()),
            _ => Err(format!("origin={origin:?}")),
        };
    }
    // Another site, or a sibling subdomain; `same-origin` and `none` (the
    // user's own navigation) pass.
    match headers.get(SEC_FETCH_SITE) {
        Some(site)
            if site.as_bytes().eq_ignore_ascii_case(b"cross-site")
                || site.as_bytes().eq_ignore_ascii_case(b"same-site") =>
        {
            Err(format!("sec_fetch_site={site:?}"))
        }
        _ => Ok(()),
    }
}
