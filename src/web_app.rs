//! The browser app (`web/`), embedded in the binary at build time and served
//! at `/`, so a `tether` started from any folder serves the app it was built
//! with. `TETHER_WEB_DIR` swaps in a folder on disk for development
//! (`startup.rs`).

use actix_web::{
    http::{
        header::{CacheControl, CacheDirective, ContentType, ETag, EntityTag, IfNoneMatch},
        Method,
    },
    HttpMessage as _, HttpRequest, HttpResponse,
};

use crate::error::ApiError;

/// Every file under `web/`, keyed by its path relative to it (`js/main.js`).
#[derive(rust_embed::Embed)]
#[folder = "web/"]
struct WebFiles;

/// Answers a request no API route took: the embedded file at its path
/// (`index.html` for a folder), else the JSON 404 every unknown path gets.
pub async fn serve(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let file = WebFiles::get(&file_name(req.path())).ok_or(ApiError::NotFound)?;
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return Err(ApiError::MethodNotAllowed);
    }
    let etag = etag(&file.metadata.sha256_hash());
    // The JS modules import each other by plain names (not fingerprinted), so
    // a browser must ask again every time; the ETag makes that a 304.
    let revalidate = CacheControl(vec![CacheDirective::NoCache]);
    if already_has(&req, &etag) {
        return Ok(HttpResponse::NotModified()
            .insert_header(ETag(etag.clone()))
            .insert_header(revalidate)
            .finish());
    }
    Ok(HttpResponse::Ok()
        .insert_header(content_type(mime_of(&req, file.metadata.mimetype())))
        .insert_header(ETag(etag.clone()))
        .insert_header(revalidate)
        .body(file.data))
}

/// `/` → `index.html`, `/js/main.js` → `js/main.js`.
fn file_name(path: &str) -> String {
    let name = path.trim_start_matches('/');
    if name.is_empty() || name.ends_with('/') {
        format!("{name}index.html")
    } else {
        name.to_owned()
    }
}

/// A strong tag from the content hash computed at build time, so the same on
/// every instance built from the same `web/`; 128 of its bits are plenty.
fn etag(sha256: &[u8; 32]) -> EntityTag {
    EntityTag::new_strong(hex::encode(&sha256[..16]))
}

/// `If-None-Match` names this version (weak comparison, as RFC 9110 asks).
fn already_has(req: &HttpRequest, etag: &EntityTag) -> bool {
    match req.get_header::<IfNoneMatch>() {
        Some(IfNoneMatch::Any) => true,
        Some(IfNoneMatch::Items(tags)) => tags.iter().any(|t| t.weak_eq(etag)),
        None => false,
    }
}

/// The type guessed from the extension at build time; text is UTF-8.
/// The embedded type, except for TypeScript declarations: mime_guess calls
/// `.ts` an MPEG transport stream, but `tether-client.d.ts` is text.
fn mime_of<'a>(req: &HttpRequest, embedded: &'a str) -> &'a str {
    if req.path().ends_with(".d.ts") {
        "text/plain"
    } else {
        embedded
    }
}

fn content_type(mime: &str) -> ContentType {
    let mime = if mime.starts_with("text/") {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_owned()
    };
    ContentType(
        mime.parse()
            .unwrap_or(actix_web::mime::APPLICATION_OCTET_STREAM),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_map_to_their_index_file() {
        assert_eq!(file_name("/"), "index.html");
        assert_eq!(file_name("/js/main.js"), "js/main.js");
        assert_eq!(file_name("/js/"), "js/index.html");
    }

    #[test]
    fn every_file_of_the_app_is_embedded_with_a_known_type() {
        for name in ["index.html", "css/app.css", "js/main.js", "favicon.svg"] {
            let file = WebFiles::get(name).unwrap_or_else(|| panic!("{name} is embedded"));
            assert_ne!(
                content_type(file.metadata.mimetype()).0,
                actix_web::mime::APPLICATION_OCTET_STREAM,
                "{name}"
            );
        }
        assert!(WebFiles::get("../Cargo.toml").is_none());
    }
}
