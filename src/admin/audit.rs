//! `GET /api/admin/audit` (needs `admin:audit`): the audit trail, newest
//! first, filtered by `user_id`, `action` and `since`, paginated like
//! `/api/admin/sessions`.

use std::collections::HashMap;

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{paging, user_id_filter};
use crate::{
    audit::query,
    auth::{extractors::perm, Authorized},
    db::StoredAuditEntry,
    error::ApiError,
    state::AppState,
    time::rfc3339,
};

type Auditor = Authorized<perm::AdminAudit>;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/admin/audit", web::get().to(list));
}

#[derive(Deserialize)]
struct ListQuery {
    user_id: Option<String>,
    action: Option<String>,
    since: Option<String>,
    page: Option<usize>,
    per_page: Option<usize>,
}

async fn list(
    _: Auditor,
    state: web::Data<AppState>,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let (page, per_page) = paging(q.page, q.per_page)?;
    let user_id = user_id_filter(q.user_id.as_deref())?;
    let filter = query::filter(user_id, q.action.as_deref(), q.since.as_deref())
        .map_err(|e| ApiError::BadRequest(e.0))?;
    // This instance's own recent events first, so a listing shows what was
    // just done here.
    state.audit.flush().await;
    let (total, entries) = state
        .db
        .audit_page(filter, (page - 1) * per_page, per_page)
        .await?;
    let names = usernames(&state, &entries).await?;
    let events: Vec<Value> = entries.iter().map(|e| entry_json(e, &names)).collect();
    Ok(HttpResponse::Ok().json(json!({
        "events": events, "page": page, "per_page": per_page, "total": total,
    })))
}

/// The names of the users a page mentions (deleted users are left out).
async fn usernames(
    state: &AppState,
    entries: &[StoredAuditEntry],
) -> Result<HashMap<Uuid, String>, ApiError> {
    let ids: Vec<Uuid> = entries
        .iter()
        .flat_map(|e| [e.entry.actor_user_id, e.entry.target_user_id])
        .flatten()
        .collect();
    let users = state.db.find_users(&ids).await?;
    Ok(users.into_iter().map(|u| (u.id, u.username)).collect())
}

fn entry_json(stored: &StoredAuditEntry, names: &HashMap<Uuid, String>) -> Value {
    let e = &stored.entry;
    let name = |id: Option<Uuid>| id.and_then(|id| names.get(&id).cloned());
    json!({
        "id": stored.id,
        "at": rfc3339(e.at.timestamp_millis()),
        "action": e.action,
        "actor": {
            "type": e.actor,
            "user_id": e.actor_user_id,
            "username": name(e.actor_user_id),
            "session_id": e.actor_session_id,
        },
        "target": {
            "user_id": e.target_user_id,
            "username": name(e.target_user_id),
            "session_id": e.target_session_id,
        },
        "client_ip": e.client_ip,
        "user_agent": e.user_agent,
        "details": e.details,
    })
}
