//! `GET /healthz` (the process answers) and `GET /readyz` (its dependencies do).

use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::state::AppState;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// 200 only when both the user store and the session store answer in time.
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let db = tokio::time::timeout(CHECK_TIMEOUT, state.db.ping()).await;
    let store = tokio::time::timeout(CHECK_TIMEOUT, state.sessions.ping()).await;
    let db_ok = matches!(db, Ok(Ok(())));
    let store_ok = matches!(store, Ok(Ok(())));
    if !db_ok {
        log::warn!("event=readyz_failed check=user_store result={db:?}");
    }
    if !store_ok {
        log::warn!("event=readyz_failed check=session_store result={store:?}");
    }
    let body = json!({
        "status": if db_ok && store_ok { "ready" } else { "unavailable" },
        "checks": {
            "user_store": if db_ok { "ok" } else { "unavailable" },
            "session_store": if store_ok { "ok" } else { "unavailable" },
        }
    });
    if db_ok && store_ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
