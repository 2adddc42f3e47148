//! The error responses of [`crate::error::ApiError`] as OpenAPI components,
//! so a route's annotation names them (`response = error_docs::Unavailable`)
//! instead of repeating status, body, example and headers. Beside `error.rs`,
//! on the same low floor, so the routes can use them.

use serde_json::json;
use utoipa::{
    openapi::{
        header::HeaderBuilder, ContentBuilder, Ref, RefOr, Response, ResponseBuilder, Schema,
    },
    ToResponse,
};

/// One error response: its description, an example body with `code` and
/// `message`, and `Retry-After` when the status carries it.
fn error_response(description: &str, code: &str, message: &str, retry_after: bool) -> Response {
    let content = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("ErrorBody")))
        .example(Some(
            json!({ "error": { "code": code, "message": message } }),
        ))
        .build();
    let mut response = ResponseBuilder::new()
        .description(description)
        .content("application/json", content);
    if retry_after {
        let seconds = HeaderBuilder::new()
            .schema(RefOr::T(Schema::Object(
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::Type::Integer)
                    .minimum(Some(1))
                    .build(),
            )))
            .description(Some("Seconds to wait before trying again."))
            .build();
        response = response.header("Retry-After", seconds);
    }
    response.build()
}

/// Declares a unit type per reusable error response.
macro_rules! error_responses {
    ($($name:ident => ($description:expr, $code:expr, $message:expr, $retry:expr);)*) => {
        $(
            #[doc = $description]
            pub struct $name;

            impl<'r> ToResponse<'r> for $name {
                fn response() -> (&'r str, RefOr<Response>) {
                    (
                        stringify!($name),
                        RefOr::T(error_response($description, $code, $message, $retry)),
                    )
                }
            }
        )*
    };
}

error_responses! {
    BadRequest => ("`bad_request`: malformed JSON, missing or invalid fields, a wrong `Content-Type`.",
        "bad_request", "Request body is not valid JSON", false);
    Unauthenticated => ("`unauthenticated`: no valid session, or its user is disabled or deleted.",
        "unauthenticated", "Sign in required", false);
    Forbidden => ("`forbidden`: the user lacks the route's permission (`Permission denied`), or an unsafe request came from an origin not allowed (`Origin not allowed`, README \"Cross-site requests\").",
        "forbidden", "Permission denied", false);
    CrossSite => ("`forbidden` (`Origin not allowed`): an unsafe request from an origin that is neither the public URL nor in `TETHER_ALLOWED_ORIGINS` (README \"Cross-site requests\"). Nothing changes.",
        "forbidden", "Origin not allowed", false);
    NotFound => ("`not_found`: no such resource (or one that is not the caller's).",
        "not_found", "Not found", false);
    Conflict => ("`conflict`: a username taken (in any case), or a change that would leave no enabled user holding `admin:users`.",
        "conflict", "the last administrator cannot lose admin:users", false);
    RateLimited => ("`rate_limited`: too many failed password checks for this username from this address, for the username overall, or from this address (README \"Sign-in throttle\").",
        "rate_limited", "Too many sign-in attempts. Try again in 60 s.", true);
    Unavailable => ("`unavailable`: Redis or the user store did not answer in time, the password-hashing queue is full, or the server is shutting down. The server fails closed. `Retry-After: 5`.",
        "unavailable", "Service temporarily unavailable", true);
    Internal => ("`internal`: anything else. The cause is logged, never sent.",
        "internal", "Internal server error", false);
}

/// Every reusable response, for `#[openapi(components(responses(…)))]`.
pub fn all() -> Vec<(String, RefOr<Response>)> {
    [
        BadRequest::response(),
        Unauthenticated::response(),
        Forbidden::response(),
        CrossSite::response(),
        NotFound::response(),
        Conflict::response(),
        RateLimited::response(),
        Unavailable::response(),
        Internal::response(),
    ]
    .into_iter()
    .map(|(name, response)| (name.to_owned(), response))
    .collect()
}
