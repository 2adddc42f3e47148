//! `GET /api/admin/audit` (needs `admin:audit`): the audit trail, newest
//! first, filtered by `user_id`, `action` and `since`, paginated like
//! `/api/admin/sessions`.

use std::collections::HashMap;

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{paging, user_id_filter};
use crate::{
    audit::query,
    auth::{extractors::perm, Authorized},
    db::StoredAuditEntry,
    error::{ApiError, ErrorBody},
    error_docs,
    state::AppState,
    time::rfc3339,
};

type Auditor = Authorized<perm::AdminAudit>;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/admin/audit", web::get().to(list));
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only events where this user is the actor or the target.
    #[param(value_type = Option<uuid::Uuid>)]
    user_id: Option<String>,
    /// Only this action (README "Audit trail" lists them).
    action: Option<String>,
    /// Only events at or after this time: RFC 3339, a date `YYYY-MM-DD`
    /// (UTC), or a span back from now such as `30m`, `12h`, `7d`.
    since: Option<String>,
    /// From 1 (default 1).
    #[param(minimum = 1)]
    page: Option<usize>,
    /// 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    per_page: Option<usize>,
}

/// One page of the audit trail, newest first.
#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    pub events: Vec<AuditEventJson>,
    pub page: usize,
    pub per_page: usize,
    /// Events matching the filter, over all pages.
    pub total: i64,
}

/// One recorded event.
#[derive(Serialize, ToSchema)]
pub struct AuditEventJson {
    /// Grows with every event.
    pub id: i64,
    /// When it happened (RFC 3339).
    pub at: String,
    /// e.g. `login.success`, `session.revoked`.
    pub action: String,
    pub actor: AuditActor,
    pub target: AuditTarget,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    /// Action-specific details (a JSON object), e.g. `reason` and `by` of a revoke.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

/// Who did it.
#[derive(Serialize, ToSchema)]
pub struct AuditActor {
    /// `user`, `anonymous`, `cli` or `system`.
    #[serde(rename = "type")]
    pub kind: String,
    pub user_id: Option<Uuid>,
    /// `null` when the user no longer exists (or for other actors).
    pub username: Option<String>,
    /// The public session id the user acted from.
    pub session_id: Option<String>,
}

/// What it was done to.
#[derive(Serialize, ToSchema)]
pub struct AuditTarget {
    pub user_id: Option<Uuid>,
    pub username: Option<String>,
    pub session_id: Option<String>,
}

/// The audit trail, newest first, a page at a time.
#[utoipa::path(
    get, path = "/api/admin/audit", tag = "admin", operation_id = "list_audit_events",
    security(("session_cookie" = ["admin:audit"])),
    params(ListQuery),
    responses(
        (status = 200, description = "One page of events.", body = AuditPage),
        (status = 400, description = "`bad_request`: a value that cannot be used (the message says which and why).", body = ErrorBody),
        (status = 401, response = error_docs::Unauthenticated),
        (status = 403, response = error_docs::Forbidden),
        (status = 503, response = error_docs::Unavailable),
    ),
)]
pub(crate) async fn list(
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
    let events = entries.iter().map(|e| entry_json(e, &names)).collect();
    Ok(HttpResponse::Ok().json(AuditPage {
        events,
        page,
        per_page,
        total,
    }))
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

fn entry_json(stored: &StoredAuditEntry, names: &HashMap<Uuid, String>) -> AuditEventJson {
    let e = &stored.entry;
    let name = |id: Option<Uuid>| id.and_then(|id| names.get(&id).cloned());
    AuditEventJson {
        id: stored.id,
        at: rfc3339(e.at.timestamp_millis()),
        action: e.action.clone(),
        actor: AuditActor {
            kind: e.actor.clone(),
            user_id: e.actor_user_id,
            username: name(e.actor_user_id),
            session_id: e.actor_session_id.clone(),
        },
        target: AuditTarget {
            user_id: e.target_user_id,
            username: name(e.target_user_id),
            session_id: e.target_session_id.clone(),
        },
        client_ip: e.client_ip.clone(),
        user_agent: e.user_agent.clone(),
        details: e.details.clone(),
    }
}
