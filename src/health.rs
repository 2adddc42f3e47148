//! `GET /healthz` (the process answers) and `GET /readyz` (its dependencies do).

use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz));
}

/// `{"status":"ok"}`.
#[derive(Serialize, ToSchema)]
pub struct Liveness {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// A check's or the whole's state.
#[derive(Serialize, ToSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CheckState {
    Ok,
    Ready,
    Unavailable,
}

#[derive(Serialize, ToSchema)]
pub struct Checks {
    /// `ok` or `unavailable`.
    pub user_store: CheckState,
    /// `ok` or `unavailable`.
    pub session_store: CheckState,
}

/// `{"status","checks":{"user_store","session_store"}}`.
#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `unavailable`.
    pub status: CheckState,
    pub checks: Checks,
}

/// Liveness: the process answers. Always 200.
#[utoipa::path(
    get, path = "/healthz", tag = "health",
    responses((status = 200, description = "Alive.", body = Liveness)),
)]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Liveness { status: "ok" })
}

/// Readiness: 200 only when both the user store and the session store answer
/// in time (2 s each).
#[utoipa::path(
    get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Both stores answer.", body = Readiness,
            example = json!({"status":"ready","checks":{"user_store":"ok","session_store":"ok"}})),
        (status = 503, description = "A store did not answer: the same shape, `status` `unavailable` and the failing check `unavailable`.", body = Readiness,
            example = json!({"status":"unavailable","checks":{"user_store":"ok","session_store":"unavailable"}})),
    ),
)]
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
    let check = |ok: bool| {
        if ok {
            CheckState::Ok
        } else {
            CheckState::Unavailable
        }
    };
    let body = Readiness {
        status: if db_ok && store_ok {
            CheckState::Ready
        } else {
            CheckState::Unavailable
        },
        checks: Checks {
            user_store: check(db_ok),
            session_store: check(store_ok),
        },
    };
    if db_ok && store_ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
