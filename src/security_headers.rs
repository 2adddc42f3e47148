//! The headers every response carries, errors included: what a browser may
//! load, sniff, send on and keep (README, "Security headers").

use actix_web::{
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::{
        header::{
            HeaderMap, HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_SECURITY_POLICY,
            REFERRER_POLICY, STRICT_TRANSPORT_SECURITY, X_CONTENT_TYPE_OPTIONS,
        },
        StatusCode,
    },
    middleware::Next,
    web, Error, HttpResponse, ResponseError,
};

use crate::state::AppState;

/// Only this origin's own files and sockets, no framing, no `<base>`, forms
/// posted only here. The browser app has no inline script or style, so every
/// response can carry it.
const CONTENT_SECURITY_POLICY_VALUE: &str =
    "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Links out of the app tell the other site nothing (not even the origin).
const REFERRER_POLICY_VALUE: &str = "no-referrer";

/// Two years: browsers then use https for the public URL without asking.
/// Sent only with `Secure` cookies, i.e. when users reach the app over https;
/// not `includeSubDomains`, which would bind sites tether does not know of.
const STRICT_TRANSPORT_SECURITY_VALUE: &str = "max-age=63072000";

/// Adds the headers to whatever the inner services answered. An error that a
/// middleware inside returned (not a handler's, which is already a response)
/// is answered by the server after every middleware has run, so it is
/// wrapped to add them to its response when that is made.
pub async fn add(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let hsts = req
        .app_data::<web::Data<AppState>>()
        .is_some_and(|state| state.config.cookie_secure);
    let api = req.path().starts_with("/api/");
    match next.call(req).await {
        Ok(mut res) => {
            harden(res.headers_mut(), hsts, api);
            Ok(res)
        }
        Err(inner) => Err(Hardened { inner, hsts, api }.into()),
    }
}

fn harden(headers: &mut HeaderMap, hsts: bool, api: bool) {
    let mut set_default = |name: HeaderName, value: &'static str| {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    };
    set_default(X_CONTENT_TYPE_OPTIONS, "nosniff");
    set_default(REFERRER_POLICY, REFERRER_POLICY_VALUE);
    set_default(CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY_VALUE);
    if hsts {
        set_default(STRICT_TRANSPORT_SECURITY, STRICT_TRANSPORT_SECURITY_VALUE);
    }
    // Who is signed in, their sessions, the user list: never kept by a
    // browser or a shared proxy. (The app's files revalidate: `no-cache`.)
    if api {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// An error from inside, answered as it would be, with the headers added.
#[derive(Debug)]
struct Hardened {
    inner: Error,
    hsts: bool,
    api: bool,
}

impl std::fmt::Display for Hardened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl ResponseError for Hardened {
    fn status_code(&self) -> StatusCode {
        self.inner.as_response_error().status_code()
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = self.inner.error_response();
        harden(res.headers_mut(), self.hsts, self.api);
        res
    }
}
